//! Whole training runs on the GPU against the CPU path: the per-epoch losses follow each other,
//! the accuracy is the same, and two GPU runs with one seed write identical model files.
//! Without an adapter these tests say that they skip, unless WGTRAIN_REQUIRE_GPU=1.

use std::path::Path;
use std::process::Command;

mod common;

use common::gpu;
use wgtrain::backend::cpu::CpuBackend;
use wgtrain::data::{Normalizer, Schema};
use wgtrain::model::{Model, init_layers, layer_sizes};
use wgtrain::rng::Rng;
use wgtrain::spec::{Activation, Loss, Optimizer, Task};
use wgtrain::train::{self, EpochMetrics, Metrics, Rows, TrainConfig};

/// A seeded synthetic problem: 3 classes from 6 features, or 2 regression targets.
fn problem(task: Task, rows: usize, seed: u64) -> Rows {
    let mut r = Rng::new(seed);
    let d = 6;
    let x: Vec<f32> = (0..rows * d).map(|_| r.normal() as f32).collect();
    let y = (0..rows)
        .flat_map(|i| {
            let v = &x[i * d..(i + 1) * d];
            let s = v[0] * v[1] + v[2] - 0.5 * v[3];
            match task {
                Task::Classification => vec![if s > 0.7 {
                    2.0
                } else if s > -0.4 {
                    1.0
                } else {
                    0.0
                }],
                Task::Regression => vec![s + 0.1 * r.normal() as f32, (v[4] * 2.0).sin()],
            }
        })
        .collect();
    Rows { x, y, rows }
}

fn model(task: Task, loss: Loss, act: Activation, hidden: &[usize]) -> Model {
    let classification = task == Task::Classification;
    let n_out = if classification { 3 } else { 2 };
    let schema = Schema {
        features: (0..6).map(|i| format!("f{i}")).collect(),
        targets: if classification {
            vec!["c".into()]
        } else {
            vec!["a".into(), "b".into()]
        },
        task,
        classes: if classification {
            vec!["x".into(), "y".into(), "z".into()]
        } else {
            vec![]
        },
        window: None,
    };
    // A target scale that is not 1, so the reported losses go through the scale buffer.
    let target = if classification {
        Normalizer::identity(0)
    } else {
        Normalizer {
            mean: vec![0.0, 0.0],
            std: vec![2.0, 0.5],
        }
    };
    let layers = init_layers(&layer_sizes(6, hidden, n_out), act, 3);
    Model::new(
        schema,
        act,
        loss,
        3,
        layers,
        Normalizer::identity(6),
        target,
    )
    .unwrap()
}

fn cfg(opt: Optimizer, lr: f32, batch: usize, epochs: usize) -> TrainConfig {
    TrainConfig {
        optimizer: opt,
        lr,
        schedule: train::Schedule::Constant,
        batch_size: batch,
        epochs,
        seed: 9,
        weight_decay: 0.0,
        patience: None,
        clip: None,
        progress: false,
    }
}

/// Trains the same model on both backends and compares epoch by epoch.
fn follow(task: Task, loss: Loss, act: Activation, opt: Optimizer, lr: f32, batch: usize) {
    let Some(mut g) = gpu() else { return };
    let (tr, va) = (problem(task, 300, 1), problem(task, 77, 2));
    let hidden = [33, 17];
    let c = cfg(opt, lr, batch, 6);
    let mut m_cpu = model(task, loss, act, &hidden);
    let mut m_gpu = m_cpu.clone();
    let h_cpu = train::train(
        &mut CpuBackend::new(),
        &mut m_cpu,
        &tr,
        Some(&va),
        &c,
        |_| {},
    )
    .unwrap();
    let h_gpu = train::train(&mut g, &mut m_gpu, &tr, Some(&va), &c, |_| {}).unwrap();
    println!("{task:?} {loss:?} {act:?} {opt:?} batch {batch}:");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 + 1e-3 * b.abs();
    for (a, b) in h_gpu.epochs.iter().zip(&h_cpu.epochs) {
        let EpochMetrics {
            epoch,
            train_loss,
            val_loss,
            val_metric,
            ..
        } = a;
        println!(
            "  epoch {epoch}: train {train_loss:.7} vs cpu {:.7}, val {:.7} vs {:.7}, metric {:.5} vs {:.5}",
            b.train_loss,
            val_loss.unwrap(),
            b.val_loss.unwrap(),
            val_metric.unwrap(),
            b.val_metric.unwrap()
        );
        assert!(
            close(*train_loss, b.train_loss),
            "epoch {epoch}: train loss {train_loss} on the GPU, {} on the CPU",
            b.train_loss
        );
        assert!(
            close(val_loss.unwrap(), b.val_loss.unwrap()),
            "epoch {epoch}: val loss differs"
        );
        if task == Task::Classification {
            // An accuracy moves in steps of 1/77: allow one row to flip on a near tie.
            assert!((val_metric.unwrap() - b.val_metric.unwrap()).abs() <= 1.0 / 77.0 + 1e-9);
        }
    }
    let first = h_cpu.epochs[0].train_loss;
    let last = h_cpu.epochs.last().unwrap().train_loss;
    assert!(last < first, "the runs learn something: {first} → {last}");
    let worst = m_gpu
        .layers
        .iter()
        .zip(&m_cpu.layers)
        .flat_map(|(a, b)| a.weight.iter().zip(&b.weight))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!("  largest weight difference after 6 epochs: {worst:.3e}");
    assert!(worst < 2e-3, "weights drifted apart by {worst}");
}

#[test]
fn classification_with_cross_entropy_and_adam_follows_the_cpu() {
    follow(
        Task::Classification,
        Loss::CrossEntropy,
        Activation::Relu,
        Optimizer::Adam,
        0.01,
        32,
    );
}

#[test]
fn classification_with_softmax_mse_and_momentum_follows_the_cpu() {
    follow(
        Task::Classification,
        Loss::SoftmaxMse,
        Activation::Sigmoid,
        Optimizer::Momentum,
        0.1,
        64,
    );
}

#[test]
fn regression_with_mse_and_sgd_follows_the_cpu() {
    follow(
        Task::Regression,
        Loss::Mse,
        Activation::Relu,
        Optimizer::Sgd,
        0.05,
        17,
    );
}

#[test]
fn regression_with_mae_and_adam_follows_the_cpu() {
    follow(
        Task::Regression,
        Loss::Mae,
        Activation::Sigmoid,
        Optimizer::Adam,
        0.01,
        300,
    );
}

#[test]
fn predict_and_evaluate_on_the_gpu_match_the_cpu() {
    let Some(mut g) = gpu() else { return };
    let m = model(
        Task::Classification,
        Loss::CrossEntropy,
        Activation::Relu,
        &[40],
    );
    let data = problem(Task::Classification, 257, 4);
    let p_gpu = train::predict(&mut g, &m, &data.x, data.rows).unwrap();
    let p_cpu = train::predict(&mut CpuBackend::new(), &m, &data.x, data.rows).unwrap();
    let worst = p_gpu
        .iter()
        .zip(&p_cpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "probabilities differ by {worst}");
    let e_gpu = train::evaluate(&mut g, &m, &data).unwrap();
    let e_cpu = train::evaluate(&mut CpuBackend::new(), &m, &data).unwrap();
    let (
        Metrics::Classification {
            accuracy: acc_gpu,
            cross_entropy: ce_gpu,
            ..
        },
        Metrics::Classification {
            accuracy: acc_cpu,
            cross_entropy: ce_cpu,
            ..
        },
    ) = (e_gpu, e_cpu)
    else {
        panic!("classification metrics expected: {e_gpu:?} {e_cpu:?}");
    };
    assert_eq!(acc_gpu, acc_cpu);
    assert!((ce_gpu - ce_cpu).abs() < 1e-5);
}

#[test]
fn two_gpu_runs_with_one_seed_write_identical_model_files() {
    if gpu().is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let iris = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv");
    let run = |name: &str| -> Vec<u8> {
        let out = d.path().join(name);
        let st = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
            .args([
                "train",
                &iris.to_string_lossy(),
                "--target",
                "species",
                "--epochs",
                "8",
                "--hidden",
                "32,16",
            ])
            .args([
                "--device",
                "gpu",
                "--seed",
                "11",
                "-q",
                "--out",
                &out.to_string_lossy(),
            ])
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::read(out).unwrap()
    };
    let a = run("a.safetensors");
    assert_eq!(
        a,
        run("b.safetensors"),
        "the same seed on the same device gives the same bytes"
    );
}

#[test]
fn clipping_weight_decay_and_schedules_follow_the_cpu() {
    let Some(mut g) = gpu() else { return };
    let (tr, va) = (
        problem(Task::Regression, 200, 5),
        problem(Task::Regression, 50, 6),
    );
    for (opt, schedule) in [
        (Optimizer::Adam, train::Schedule::Cosine { min: 0.001 }),
        (
            Optimizer::Momentum,
            train::Schedule::Step {
                every: 2,
                gamma: 0.5,
            },
        ),
    ] {
        let c = TrainConfig {
            clip: Some(0.5),
            weight_decay: 0.01,
            schedule,
            ..cfg(opt, 0.05, 32, 5)
        };
        let mut m_cpu = model(Task::Regression, Loss::Mse, Activation::Relu, &[24]);
        let mut m_gpu = m_cpu.clone();
        let h_cpu = train::train(
            &mut CpuBackend::new(),
            &mut m_cpu,
            &tr,
            Some(&va),
            &c,
            |_| {},
        )
        .unwrap();
        let h_gpu = train::train(&mut g, &mut m_gpu, &tr, Some(&va), &c, |_| {}).unwrap();
        for (a, b) in h_gpu.epochs.iter().zip(&h_cpu.epochs) {
            println!(
                "{opt:?} epoch {}: gpu {:.7} cpu {:.7}",
                a.epoch, a.train_loss, b.train_loss
            );
            assert!(
                (a.train_loss - b.train_loss).abs() <= 1e-4 + 1e-3 * b.train_loss,
                "epoch {}",
                a.epoch
            );
        }
    }
}

/// The lecture's controls through the CLI on both devices: a series window, early stopping,
/// weight decay, clipping and a schedule give the same per-epoch metrics on the GPU.
#[test]
fn windows_early_stopping_and_schedules_match_through_the_cli() {
    if gpu().is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let views = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/views.csv");
    let run = |device: &str| -> (Vec<Vec<f64>>, Vec<u8>) {
        let (out, metrics) = (
            d.path().join(format!("{device}.st")),
            d.path().join(format!("{device}.csv")),
        );
        let st = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
            .args([
                "train",
                &views.to_string_lossy(),
                "--target",
                "views",
                "--drop",
                "date",
                "--window",
                "14",
            ])
            .args([
                "--hidden",
                "32,32",
                "--epochs",
                "40",
                "--patience",
                "4",
                "--weight-decay",
                "0.001",
                "--clip",
                "1",
            ])
            .args([
                "--lr",
                "0.01",
                "--lr-schedule",
                "step",
                "--lr-step",
                "5",
                "--lr-gamma",
                "0.5",
            ])
            .args([
                "--device",
                device,
                "-q",
                "--out",
                &out.to_string_lossy(),
                "--metrics",
                &metrics.to_string_lossy(),
            ])
            .status()
            .unwrap();
        assert!(st.success());
        let rows = std::fs::read_to_string(&metrics)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').take(4).map(|v| v.parse().unwrap()).collect())
            .collect();
        (rows, std::fs::read(out).unwrap())
    };
    let (cpu, _) = run("cpu");
    let (gpu_rows, _) = run("gpu");
    assert_eq!(
        cpu.len(),
        gpu_rows.len(),
        "early stopping ends at the same epoch"
    );
    for (g, c) in gpu_rows.iter().zip(&cpu) {
        println!("epoch {}: gpu {:?} cpu {:?}", c[0], &g[1..], &c[1..]);
        for j in 1..4 {
            assert!(
                (g[j] - c[j]).abs() <= 1e-3 * c[j].abs() + 1e-6,
                "epoch {}: column {j}: {} vs {}",
                c[0],
                g[j],
                c[j]
            );
        }
    }
}

/// The fused step: one gather, a product per layer forward, the loss, two products per layer
/// backward (one for the first), one optimizer update: 3L + 2 dispatches for L layers (14 at
/// the lecture's 4 layers), one more with --clip. Counted by both backends alike.
#[test]
fn a_step_records_3l_plus_2_dispatches() {
    use wgtrain::backend::Backend;
    use wgtrain::train::Trainer;
    let data = problem(Task::Regression, 64, 4);
    for hidden in [&[][..], &[9][..], &[33, 17, 5][..]] {
        let layers = hidden.len() + 1;
        for clip in [None, Some(1.0)] {
            let mut c = cfg(Optimizer::Adam, 0.01, 16, 1);
            c.clip = clip;
            let m = model(Task::Regression, Loss::Mse, Activation::Relu, hidden);
            let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::new())];
            if let Some(g) = gpu() {
                backends.push(Box::new(g));
            }
            for be in backends.iter_mut() {
                let be = be.as_mut();
                let mut tr = Trainer::new(be, &m, &data, None, &c).expect("trainer");
                tr.step(be).expect("warm-up step");
                let before = be.dispatches();
                tr.step(be).expect("step");
                let per_step = be.dispatches() - before;
                let want = 3 * layers as u64 + 2 + clip.is_some() as u64;
                println!(
                    "{}: {layers} layers, clip {clip:?}: {per_step}",
                    be.describe()
                );
                assert_eq!(per_step, want, "{} with {layers} layers", be.describe());
                assert!(tr.batch_loss(be).expect("loss").is_finite());
            }
        }
    }
}

/// `wgtrain tune` measures every variant on the network's shape classes and caches the
/// fastest; a later `--tune auto` run finds them all in the cache and tunes nothing; a
/// corrupt cache is ignored with a warning; runs give the same model bits tuned or not.
#[test]
fn tune_caches_per_adapter_and_training_uses_it() {
    if gpu().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("wgtrain-tune-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bin = env!("CARGO_BIN_EXE_wgtrain");
    let run = |args: &[&str]| {
        let o = Command::new(bin)
            .args(args)
            .env("WGTRAIN_CACHE_DIR", &dir)
            .output()
            .expect("run wgtrain");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "wgtrain {args:?} failed:\n{text}");
        text
    };
    let shape = ["--layers", "6,33,3", "--batch", "40", "--device", "gpu"];
    let out = run(&[&["tune"][..], &shape].concat());
    println!("{out}");
    assert!(out.contains("nt m6 n6 k3") && out.contains("best"), "{out}");
    let cache = std::fs::read_to_string(dir.join("tune.json")).expect("cache written");
    assert!(
        cache.contains("wgtrain-tune-1") && cache.contains("\"best\""),
        "{cache}"
    );
    let bench = [
        "bench",
        "--layers",
        "6,33,3",
        "--batch",
        "40",
        "--device",
        "gpu",
        "--steps",
        "3",
        "--repeats",
        "1",
    ];
    let out = run(&bench);
    assert!(!out.contains("tune: timed"), "all classes cached: {out}");
    // The tuned variants give the defaults' bits: the same loss after the same steps.
    let loss = |out: &str| {
        let j = out.lines().find(|l| l.starts_with('{')).expect("json line");
        serde_json::from_str::<serde_json::Value>(j).expect("json")["last_batch_loss"].clone()
    };
    let tuned = run(&[&bench[..], &["--json"]].concat());
    let untuned = run(&[&bench[..], &["--json", "--tune", "off"]].concat());
    assert_eq!(
        loss(&tuned),
        loss(&untuned),
        "tuned {tuned}\nuntuned {untuned}"
    );
    std::fs::write(dir.join("tune.json"), b"{ corrupt").expect("corrupt the cache");
    let out = run(&bench);
    assert!(out.contains("corrupt tuning cache"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
