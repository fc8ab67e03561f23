//! `wgtrain bench`: how fast the training step and the forward matmul run on a backend.
//!
//! Training: random rows (seeded) are built on the host and uploaded once; `train::Trainer`
//! records each step through the same code as `wgtrain train` (gather through a shuffled index,
//! forward, loss, backward, optimizer). After `warmup` steps, each of `repeats` runs times
//! `steps` steps and ends with a flush and a readback of the last batch's loss, so the device
//! has really finished; the median run is reported.
//!
//! Matmul: `matmul_nt` of M = N = K (no bias, identity), `steps` products per run ended by a
//! readback of one element, GFLOP/s = 2·M·N·K / time per product.
//!
//! A benchmark is not a test: nothing here asserts a speed.

use std::time::Instant;

use crate::backend::Backend;
use crate::cli::BenchArgs;
use crate::data::{Normalizer, Schema};
use crate::error::{Error, Result};
use crate::model::{Model, init_layers};
use crate::rng::Rng;
use crate::spec::{Activation, Loss, Task};
use crate::train::{Rows, TrainConfig, Trainer};

pub fn run(a: &BenchArgs) -> Result<()> {
    match (a.matmul, &a.layers) {
        (Some(size), None) => bench_matmul(a, size),
        (None, Some(layers)) => bench_train(a, &layers.0),
        (Some(_), Some(_)) => Err(Error::flag(
            "--matmul",
            "times a matmul alone; leave out --layers",
        )),
        (None, None) => Err(Error::flag(
            "--layers",
            "give the network (e.g. --layers 56,100,100,100,1) or --matmul N",
        )),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn bench_train(a: &BenchArgs, sizes: &[usize]) -> Result<()> {
    let task = bench_task(a, sizes[sizes.len() - 1])?;
    let optimizer = a.optimizer;
    let (steps, warmup) = (a.steps.unwrap_or(200).max(1), a.warmup.unwrap_or(20));
    let data = random_rows(a.batch * a.batches, sizes, task, a.seed);
    let model = random_model(sizes, task, a.seed)?;
    let cfg = TrainConfig {
        optimizer,
        lr: a.lr as f32,
        schedule: crate::train::Schedule::Constant,
        batch_size: a.batch,
        epochs: 1,
        seed: a.seed,
        weight_decay: 0.0,
        patience: None,
        clip: None,
        progress: false,
    };

    let work = crate::auto::Workload {
        model: &model,
        cfg: &cfg,
        batch: a.batch,
        rows: data.rows,
    };
    let (dev, adapter) = (a.dev.device, a.dev.adapter.as_deref());
    let mut be = crate::auto::open_for_training(dev, adapter, work, a.dev.tune, true)?;
    let device = be.describe();
    let be = be.as_mut();
    let mut tr = Trainer::new(be, &model, &data, None, &cfg)?;
    let (runs_ms, loss, dispatches_per_step) = time_steps(be, &mut tr, warmup, a.repeats, steps)?;
    let ms = median(&runs_ms);
    let steps_per_s = 1e3 / ms;
    let samples_per_s = steps_per_s * a.batch as f64;
    let shape: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
    if a.json {
        let j = serde_json::json!({
            "mode": "train",
            "device": device,
            "layers": sizes,
            "batch": a.batch,
            "optimizer": optimizer.as_str(),
            "task": task.as_str(),
            "loss": model.loss.as_str(),
            "steps": steps,
            "warmup": warmup,
            "repeats": a.repeats,
            "steps_per_s": steps_per_s,
            "samples_per_s": samples_per_s,
            "median_ms_per_step": ms,
            "runs": runs_ms,
            "last_batch_loss": loss,
            "dispatches_per_step": dispatches_per_step,
        });
        println!("{j}");
    } else {
        println!(
            "bench train: mlp {} {} ({}), {} batch {} on {device}",
            shape.join("-"),
            task.as_str(),
            model.loss.as_str(),
            optimizer.as_str(),
            a.batch
        );
        let runs: Vec<String> = runs_ms.iter().map(|r| format!("{r:.3}")).collect();
        println!(
            "  {warmup} warm-up steps, {} runs of {steps} steps, ms/step: {}",
            a.repeats,
            runs.join(" ")
        );
        println!(
            "  median {ms:.3} ms/step = {steps_per_s:.1} steps/s = {samples_per_s:.0} samples/s (last batch loss {loss:.4}), {dispatches_per_step:.1} dispatches per step"
        );
    }
    Ok(())
}

/// `warmup` untimed steps, then `repeats` timed runs of `steps` steps, each ended by a flush
/// and a readback of the last batch's loss. Returns ms per step of each run, that loss, and
/// the dispatches recorded per timed step.
fn time_steps(
    be: &mut dyn Backend,
    tr: &mut Trainer,
    warmup: usize,
    repeats: usize,
    steps: usize,
) -> Result<(Vec<f64>, f64, f64)> {
    for _ in 0..warmup {
        tr.step(be)?;
    }
    tr.batch_loss(be)?;
    let mut runs_ms = Vec::with_capacity(repeats);
    let mut loss = f64::NAN;
    let dispatches0 = be.dispatches();
    for _ in 0..repeats {
        let t0 = Instant::now();
        for _ in 0..steps {
            tr.step(be)?;
        }
        be.flush()?;
        loss = tr.batch_loss(be)?;
        runs_ms.push(t0.elapsed().as_secs_f64() * 1e3 / steps as f64);
    }
    let dispatches_per_step =
        (be.dispatches() - dispatches0) as f64 / (steps * repeats.max(1)) as f64;
    Ok((runs_ms, loss, dispatches_per_step))
}

/// One output is a regression, several are classes, unless --task says otherwise.
fn bench_task(a: &BenchArgs, n_out: usize) -> Result<Task> {
    let task = match a.task {
        Some(t) => t,
        None if n_out == 1 => Task::Regression,
        None => Task::Classification,
    };
    if task == Task::Classification && n_out < 2 {
        return Err(Error::flag(
            "--task",
            "classification needs 2 or more outputs",
        ));
    }
    Ok(task)
}

/// Seeded random rows for a network of `sizes`: features ~ N(0, 1); targets ~ N(0, 1) or
/// uniform class indices.
fn random_rows(rows: usize, sizes: &[usize], task: Task, seed: u64) -> Rows {
    let (d, n_out) = (sizes[0], sizes[sizes.len() - 1]);
    let mut rng = Rng::new(seed);
    let x: Vec<f32> = (0..rows * d).map(|_| rng.normal() as f32).collect();
    let y: Vec<f32> = match task {
        Task::Regression => (0..rows * n_out).map(|_| rng.normal() as f32).collect(),
        Task::Classification => (0..rows).map(|_| rng.below(n_out) as f32).collect(),
    };
    Rows { x, y, rows }
}

/// A model with seeded Xavier weights, as `wgtrain train` would start from.
fn random_model(sizes: &[usize], task: Task, seed: u64) -> Result<Model> {
    let (d, n_out) = (sizes[0], sizes[sizes.len() - 1]);
    let names = |p: &str, n: usize| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    let schema = match task {
        Task::Classification => Schema {
            features: names("x", d),
            targets: vec!["y".into()],
            task,
            classes: (0..n_out).map(|c| c.to_string()).collect(),
            window: None,
        },
        Task::Regression => Schema {
            features: names("x", d),
            targets: names("y", n_out),
            task,
            classes: vec![],
            window: None,
        },
    };
    let target_normalizer = match task {
        Task::Regression => Normalizer::identity(n_out),
        Task::Classification => Normalizer::identity(0),
    };
    Model::new(
        schema,
        Activation::Relu,
        Loss::for_task(task, None)?,
        seed,
        init_layers(sizes, Activation::Relu, seed),
        Normalizer::identity(d),
        target_normalizer,
    )
}

fn bench_matmul(a: &BenchArgs, size: usize) -> Result<()> {
    let (m, n, k) = (size, size, size);
    let (iters, warmup) = (a.steps.unwrap_or(10).max(1), a.warmup.unwrap_or(3));
    let mut rng = Rng::new(a.seed);
    let mut rand = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.normal() as f32).collect() };
    let (xh, wh) = (rand(m * k), rand(n * k));

    let mut be = a.dev.open()?;
    let device = be.describe();
    let be = be.as_mut();
    let x = be.upload(&xh)?;
    let w = be.upload(&wh)?;
    let y = be.alloc(m * n)?;
    // One element read back ends a run: the queue runs in order, so every product is done.
    let sync = be.alloc(1)?;
    let product = |be: &mut dyn Backend| be.matmul_nt(x, w, None, Activation::Identity, y, m, n, k);
    for _ in 0..warmup {
        product(be)?;
    }
    be.flush()?;
    be.read(sync)?;

    let mut runs_ms = Vec::with_capacity(a.repeats);
    for _ in 0..a.repeats {
        let t0 = Instant::now();
        for _ in 0..iters {
            product(be)?;
        }
        be.flush()?;
        be.read(sync)?;
        runs_ms.push(t0.elapsed().as_secs_f64() * 1e3 / iters as f64);
    }
    let ms = median(&runs_ms);
    let gflops = 2.0 * (m * n * k) as f64 / (ms * 1e-3) / 1e9;
    if a.json {
        let j = serde_json::json!({
            "mode": "matmul",
            "device": device,
            "m": m, "n": n, "k": k,
            "iters": iters,
            "warmup": warmup,
            "repeats": a.repeats,
            "gflops": gflops,
            "median_ms": ms,
            "runs": runs_ms,
        });
        println!("{j}");
    } else {
        let runs: Vec<String> = runs_ms.iter().map(|r| format!("{r:.3}")).collect();
        println!("bench matmul_nt: M = N = K = {size} on {device}");
        println!(
            "  {warmup} warm-up products, {} runs of {iters}, ms/product: {}",
            a.repeats,
            runs.join(" ")
        );
        println!("  median {ms:.3} ms = {gflops:.1} GFLOP/s");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
