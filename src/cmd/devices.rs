//! `wgtrain devices`: the adapters wgpu finds and which one `--device auto` takes.

use crate::error::Result;

pub fn run() -> Result<()> {
    let rows = crate::backend::gpu::device::list_adapters();
    if rows.is_empty() {
        println!(
            "no GPU adapters found (WGPU_BACKEND narrows the search); --device auto runs on the CPU"
        );
        return Ok(());
    }
    let mib = |b: u64| format!("{} MiB", b >> 20);
    for r in &rows {
        println!("{}{}: {}", if r.auto { "*" } else { " " }, r.index, r.name);
        println!(
            "     backend {}, type {}, driver {} {}",
            r.backend, r.device_type, r.driver, r.driver_info
        );
        println!(
            "     max buffer {}, max storage binding {}, workgroup memory {} KiB, invocations {}, subgroup size {}..{}",
            mib(r.max_buffer_size),
            mib(r.max_storage_buffer_binding_size),
            r.max_compute_workgroup_storage_size / 1024,
            r.max_compute_invocations_per_workgroup,
            r.subgroup_min_size,
            r.subgroup_max_size
        );
        let yes = |b: bool| if b { "yes" } else { "no" };
        println!(
            "     subgroup operations {} (matmul variant `subgroup`), timestamp queries {} (tune's clock)",
            yes(r.subgroups),
            yes(r.timestamps)
        );
    }
    match rows.iter().find(|r| r.auto) {
        Some(r) => println!("--device auto takes * ({})", r.name),
        None => println!(
            "--device auto runs on the CPU (no hardware GPU); --device gpu takes a software adapter"
        ),
    }
    Ok(())
}
