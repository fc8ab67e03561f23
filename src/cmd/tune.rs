//! `wgtrain tune`: time every GPU matmul variant on the shapes a network trains with, verify
//! each against the CPU, and cache the fastest per shape class for this adapter.

use crate::backend::Backend;
use crate::backend::gpu::tune::{self, Mode};
use crate::backend::gpu::{DeviceChoice, GpuBackend, select_adapter};
use crate::cli::TuneArgs;
use crate::error::{Error, Result};

pub fn run(a: &TuneArgs) -> Result<()> {
    if a.dev.device == DeviceChoice::Cpu {
        return Err(Error::flag(
            "--device",
            "tune times GPU kernels; it needs auto or gpu",
        ));
    }
    let adapter = select_adapter(DeviceChoice::Gpu, a.dev.adapter.as_deref())?
        .ok_or_else(|| Error::gpu("no GPU adapter found"))?;
    let mut gpu = GpuBackend::new(adapter)?;
    let sizes = &a.layers.0;
    println!(
        "tuning {} for layers {} at batch {}",
        gpu.describe(),
        sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("-"),
        a.batch
    );
    let mode = if a.dev.tune == Mode::Off {
        Mode::Off
    } else {
        Mode::Force
    };
    let (lines, measured) = tune::prepare_entries(&mut gpu, sizes, a.batch, mode)?;
    let names: Vec<&str> = gpu.variants().iter().map(|v| v.name()).collect();
    println!(
        "{:<14} {:<16} {}  best",
        "class",
        "m n k",
        names.iter().map(|n| format!("{n:>11}")).collect::<String>()
    );
    for (class, e) in &measured {
        let times: String = names
            .iter()
            .map(|n| match e.us.get(*n) {
                Some(us) => format!("{us:>9.1}us"),
                None => format!("{:>11}", "failed"),
            })
            .collect();
        let shape = format!("{} {} {}", e.shape[0], e.shape[1], e.shape[2]);
        println!("{:<14} {shape:<16} {times}  {}", class.key(), e.best);
    }
    for l in lines {
        println!("{l}");
    }
    Ok(())
}
