//! Every GPU op against the CPU reference (`wgtrain::backend::gpu::check`, the same code
//! `wgtrain check` runs), on lavapipe in CI. Without an adapter each test prints
//! "skipping TEST: no GPU adapter" (past the harness's capture) and passes, unless
//! WGTRAIN_REQUIRE_GPU=1.

mod common;

use common::{adapter, gpu};
use wgtrain::backend::cpu::CpuBackend;
use wgtrain::backend::gpu::GpuBackend;
use wgtrain::backend::gpu::check::{self, CheckLine};
use wgtrain::rng::Rng;

/// Prints every line (the evidence) and fails if any line failed.
fn assert_all(lines: wgtrain::Result<Vec<CheckLine>>) {
    let lines = match lines {
        Ok(l) => l,
        Err(e) => panic!("a check could not run: {e}"),
    };
    for l in &lines {
        println!("{l}");
    }
    let failed: Vec<String> = lines
        .iter()
        .filter(|l| !l.pass)
        .map(|l| l.to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        lines.len(),
        failed.join("\n")
    );
}

#[test]
fn gather_of_features_and_targets_matches_cpu_including_chunked_data_sets() {
    let Some(mut g) = gpu() else { return };
    assert_all(check::gather_cases(
        &mut g,
        &mut CpuBackend::new(),
        &mut Rng::new(11),
    ));
}

#[test]
/// Every matmul variant, each with the fused epilogues: bias + activation (nt), the
/// activation backward (nn), the bias gradient (tn, in its own buffer and as a view of one
/// gradient slab); and each word for word against the baseline.
fn matmuls_match_cpu_on_ragged_shapes_with_both_tile_sizes() {
    let Some(mut g) = gpu() else { return };
    let variants = g.variants();
    println!("variants on this adapter: {variants:?}");
    assert!(variants.len() >= 5, "{variants:?}");
    if let Some(a) = adapter()
        && a.features().contains(wgpu::Features::SUBGROUP)
        && a.get_info().subgroup_max_size <= 64
    {
        assert!(variants.contains(&wgtrain::backend::gpu::Variant::Subgroup));
    }
    assert_all(check::matmul_tile_cases(
        &mut g,
        &mut CpuBackend::new(),
        &mut Rng::new(12),
    ));
}

/// reg8v4: operands whose views allow it are staged with 16-byte vec4 loads, the others
/// with scalars; both against the CPU and word for word against the baseline.
#[test]
fn reg8v4_vec4_loads_match_cpu_and_baseline_bits_aligned_or_not() {
    let Some(mut g) = gpu() else { return };
    let lines = check::matmul_vec4_cases(&mut g, &mut CpuBackend::new(), &mut Rng::new(19));
    if let Ok(l) = &lines {
        let tagged = |t: &str| l.iter().filter(|c| c.shape.contains(t)).count();
        assert!(
            tagged("vec4 a+b") >= 3 && tagged("scalar") >= 3,
            "both paths ran"
        );
    }
    assert_all(lines);
}

#[test]
fn softmax_matches_cpu() {
    let Some(mut g) = gpu() else { return };
    assert_all(check::elementwise_cases(
        &mut g,
        &mut CpuBackend::new(),
        &mut Rng::new(13),
    ));
}

#[test]
fn losses_and_eval_stats_match_cpu() {
    let Some(mut g) = gpu() else { return };
    assert_all(check::loss_cases(
        &mut g,
        &mut CpuBackend::new(),
        &mut Rng::new(14),
    ));
}

#[test]
fn both_backends_refuse_misuse_and_bad_indices_alike() {
    let Some(mut g) = gpu() else { return };
    assert_all(check::refusal_cases(&mut g, &mut CpuBackend::new()));
}

#[test]
fn optimizers_match_cpu() {
    let Some(mut g) = gpu() else { return };
    assert_all(check::optimizer_cases(
        &mut g,
        &mut CpuBackend::new(),
        &mut Rng::new(15),
    ));
}

#[test]
fn gradient_clipping_matches_cpu() {
    let Some(mut g) = gpu() else { return };
    assert_all(check::clip_cases(
        &mut g,
        &mut CpuBackend::new(),
        &mut Rng::new(17),
    ));
}

#[test]
fn two_runs_are_bit_identical() {
    let Some(mut g) = gpu() else { return };
    assert_all(check::determinism(&mut g, &mut Rng::new(16)).map(|l| vec![l]));
}

/// A data set beyond the (forced) binding limit is stored in chunks and still gathered right;
/// any other op on it is refused with an error that names the way out.
#[test]
fn chunked_buffers_gather_and_other_ops_refuse() {
    use wgtrain::backend::Backend;
    let Some(a) = adapter() else { return };
    // 1000 bytes per binding: a 300x17 data set takes 21 chunks and rows straddle them.
    let mut g = GpuBackend::with_max_binding(a, 1000).expect("backend");
    let mut rng = Rng::new(17);
    assert_all(check::gather_chunked(&mut g, &mut rng, (300, 17, 14), 1000).map(|l| vec![l]));
    let data: Vec<f32> = (0..1000).map(|i| i as f32 * 0.25 - 3.0).collect();
    let big = g.upload(&data).expect("upload");
    let err = g
        .softmax(big, 100, 10)
        .expect_err("softmax on a chunked buffer must fail");
    assert!(err.to_string().contains("--batch-size"), "{err}");
    // Reads and writes still see the whole buffer, in order.
    assert_eq!(g.read(big).expect("read"), data);
    let rev: Vec<f32> = data.iter().rev().copied().collect();
    g.write(big, &rev).expect("write");
    assert_eq!(g.read(big).expect("read"), rev);
}

/// The tuner times the variants by timestamp queries where the adapter offers them (and by
/// the wall clock when they are turned off or missing); either way every shape class gets a
/// verified winner, the entry names its clock, and the saved cache loads back into a plan
/// for every class.
#[test]
fn tuner_picks_a_variant_per_class_by_timestamps_or_wall_clock() {
    use wgtrain::backend::gpu::tune::{self, Cache};
    let Some(a) = adapter() else { return };
    let offered = a.features().contains(wgpu::Features::TIMESTAMP_QUERY)
        && std::env::var_os("WGTRAIN_NO_TIMESTAMPS").is_none();
    println!("TIMESTAMP_QUERY offered: {offered}");
    let dir = common::tmp();
    for wall in [false, true] {
        let mut g = GpuBackend::new(adapter().expect("adapter")).expect("backend");
        if wall {
            g.disable_timestamps();
        }
        let want = if offered && !wall {
            "timestamp"
        } else {
            "wall"
        };
        assert_eq!(g.tune_clock().name(), want);
        let names: Vec<&str> = g.variants().iter().map(|v| v.name()).collect();
        let key = tune::adapter_key(g.adapter_info());
        let mut cache = Cache {
            format: tune::FORMAT.to_string(),
            ..Default::default()
        };
        let products = tune::step_products(&[12, 20, 1], 16);
        for &(class, shape) in &products {
            let e = tune::tune_product(&mut g, class.layout, shape)
                .expect("tuning runs")
                .expect("some variant matches the CPU");
            println!("{} {want}: {:?} best {}", class.key(), e.us, e.best);
            // The clock that really timed it: a timer whose timestamps failed is dropped
            // and the entry then says "wall".
            assert_eq!(e.clock, want, "{}", class.key());
            assert_eq!(
                e.us.len(),
                names.len(),
                "every variant verified: {:?}",
                e.us
            );
            assert!(
                e.us.values().all(|t| t.is_finite() && *t > 0.0),
                "{:?}",
                e.us
            );
            let fastest = e.us.iter().min_by(|x, y| x.1.total_cmp(y.1)).map(|x| x.0);
            assert_eq!(fastest, Some(&e.best));
            cache
                .adapters
                .entry(key.clone())
                .or_default()
                .insert(class.key(), e);
        }
        let path = dir.path().join(format!("tune-{want}-{wall}.json"));
        cache.save(&path).expect("save");
        let (back, warning) = Cache::load(&path);
        assert_eq!(warning, None);
        let plan = back.plan(&key);
        for (class, _) in &products {
            assert!(plan.contains_key(class), "{} in the plan", class.key());
        }
    }
}

#[test]
fn devices_are_listed() {
    let rows = wgtrain::backend::gpu::list_adapters();
    for r in &rows {
        println!("{r:?}");
    }
    if adapter().is_some() {
        assert!(!rows.is_empty());
    }
}

/// An MNIST-sized data set (60000 x 784 f32, 188 MB) exceeds lavapipe's 128 MiB storage
/// binding for real: it is split into chunks and gathered through them (about a second).
/// Adapters with larger bindings hold it whole, which must work just the same.
#[test]
fn mnist_sized_data_set_gathers_across_the_real_binding_limit() {
    use wgtrain::backend::Backend;
    let Some(mut g) = gpu() else { return };
    let (rows, cols, count) = (60000usize, 784usize, 512usize);
    let src: Vec<f32> = (0..rows * cols)
        .map(|i| (i % 9973) as f32 * 0.5 - 7.0)
        .collect();
    let data = g.upload(&src).expect("upload");
    // Rows on both sides of every chunk boundary, and the last row.
    let per_chunk = (g.max_binding_bytes() / 4) as usize;
    let mut idx: Vec<u32> = vec![(rows - 1) as u32, 0];
    let mut b = per_chunk;
    while b < rows * cols {
        idx.extend([
            (b / cols) as u32,
            (b / cols) as u32 + 1,
            (b / cols).saturating_sub(1) as u32,
        ]);
        b += per_chunk;
    }
    let mut rng = Rng::new(18);
    idx.extend((idx.len()..count).map(|_| rng.below(rows) as u32));
    let ib = g.upload_u32(&idx).expect("upload idx");
    let dst = g.alloc(count * cols).expect("alloc");
    g.write(dst, &vec![f32::NAN; count * cols]).expect("poison");
    let x = wgtrain::backend::Gather {
        src: data,
        cols,
        dst,
    };
    g.gather(ib, 0, count, x, None).expect("gather");
    let got = g.read(dst).expect("read");
    for (r, &i) in idx.iter().enumerate() {
        let want = &src[i as usize * cols..(i as usize + 1) * cols];
        assert_eq!(
            &got[r * cols..(r + 1) * cols],
            want,
            "row {r} (source row {i})"
        );
    }
}
