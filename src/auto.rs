//! `--device auto` for training, by measurement: when a GPU adapter is there, time a few real
//! training steps of this run's network on it and on the CPU, keep the faster backend, and say
//! so in one line with both figures. A small GPU (or a slow driver) loses to the CPU path on
//! small networks, so taking any hardware GPU is often the wrong choice.
//!
//! The figures are cached per adapter (the tuning cache's key: name, backend, driver, wgtrain
//! version) and network shape in `device-auto.json` beside the tuning cache, so a second run
//! with the same shape decides at once. Software adapters (lavapipe) never enter
//! auto, except when the test-only variable WGTRAIN_AUTO_SOFTWARE=1 lets them in, so a test can
//! prove that auto measures and picks the CPU here.
//!
//! Sits between `cmd` and `train`: it runs `train::Trainer` steps on both backends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::tune::{self, Mode};
use crate::backend::gpu::{self, DeviceChoice, GpuBackend};
use crate::backend::{self, Backend, Limits};
use crate::budget;
use crate::error::Result;
use crate::model::Model;
use crate::rng::Rng;
use crate::spec::Task;
use crate::train::{Rows, Schedule, TrainConfig, Trainer};

/// Time spent measuring one device, after its warm-up step (at least one timed step).
const BUDGET: Duration = Duration::from_millis(120);
/// Timed steps to stop at when they are fast.
const MAX_STEPS: usize = 20;
const FORMAT: &str = "wgtrain-device-auto-1";

/// Both figures of one decision, in ms per training step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub cpu_ms: f64,
    pub gpu_ms: f64,
}

impl Timing {
    pub fn gpu_wins(&self) -> bool {
        self.gpu_ms < self.cpu_ms
    }
    /// `auto: cpu 0.21 ms/step, Intel Iris Xe 0.55 ms/step → cpu` (`unit` "step", or
    /// "1000 rows" for inference).
    pub fn line(&self, adapter: &str, cached: bool, unit: &str) -> String {
        format!(
            "auto: cpu {:.3} ms/{unit}, {adapter} {:.3} ms/{unit} → {}{}",
            self.cpu_ms,
            self.gpu_ms,
            if self.gpu_wins() { "gpu" } else { "cpu" },
            if cached { " (cached)" } else { "" }
        )
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    format: String,
    /// adapter key → network key → timing
    entries: BTreeMap<String, BTreeMap<String, Timing>>,
}

/// What a training run will put on the device: the network and its settings, the batch, and
/// the rows of its largest upload (training or validation set, or a streamed shard).
pub struct Workload<'a> {
    pub model: &'a Model,
    pub cfg: &'a TrainConfig,
    pub batch: usize,
    pub rows: usize,
}

/// The backend for training `w`, its kernels tuned as `tune` says: `--device gpu|cpu` and
/// `--adapter` as always; `auto` measures (see the module notes), and takes the CPU when the
/// GPU cannot hold the run (its binding limits; said in one line).
pub fn open_for_training(
    choice: DeviceChoice,
    adapter: Option<&str>,
    w: Workload,
    tune: Mode,
    say: bool,
) -> Result<Box<dyn Backend>> {
    let (model, batch) = (w.model, w.batch);
    let sizes = model.sizes();
    let tuned = |be| tuned(be, &sizes, batch, tune, say);
    let needs = budget::DeviceNeeds::of(&sizes, batch, w.rows, model.schema.target_cols());
    let fits = |lim: &Limits| budget::check_device(&needs, lim, budget::DeviceRun::Training);
    if choice != DeviceChoice::Auto || adapter.is_some() {
        // A forced GPU that cannot hold the run is refused before the tuner spends its budget.
        let be = backend::open(choice, adapter)?;
        be.limits().map(|lim| fits(&lim)).transpose()?;
        return tuned(be);
    }
    let Some(adapter) = auto_adapter(say)? else {
        return tuned(Box::<CpuBackend>::default());
    };
    let cfg = TrainConfig {
        batch_size: batch,
        ..w.cfg.clone()
    };
    let measure = |gpu_be: &mut dyn Backend| -> Result<Timing> {
        Ok(Timing {
            cpu_ms: ms_per_step(&mut CpuBackend::new(), model, &cfg)?,
            gpu_ms: ms_per_step(gpu_be, model, &cfg)?,
        })
    };
    let key = network_key(model, &cfg);
    choose(&adapter, &key, "step", say, tuned, measure, fits)
}

/// The backend for a forward pass of `model` over `rows` rows (`predict`, `eval`): as
/// [`open_for_training`], but `auto` times the forward pass itself, in ms per 1000 rows, on a
/// sample of up to two inference batches (cached per network and sample size).
pub fn open_for_inference(
    choice: DeviceChoice,
    adapter: Option<&str>,
    model: &Model,
    rows: usize,
    tune: Mode,
    say: bool,
) -> Result<Box<dyn Backend>> {
    let sizes = model.sizes();
    let batch = crate::train::INFER_BATCH.min(rows.max(1));
    let tuned = |be| tuned(be, &sizes, batch, tune, say);
    if choice != DeviceChoice::Auto || adapter.is_some() {
        return tuned(backend::open(choice, adapter)?);
    }
    let Some(adapter) = auto_adapter(say)? else {
        return tuned(Box::<CpuBackend>::default());
    };
    let sample = random_rows(model, rows.clamp(1, 2 * crate::train::INFER_BATCH));
    let measure = |gpu_be: &mut dyn Backend| -> Result<Timing> {
        Ok(Timing {
            cpu_ms: ms_per_kilorow(&mut CpuBackend::new(), model, &sample)?,
            gpu_ms: ms_per_kilorow(gpu_be, model, &sample)?,
        })
    };
    let sizes: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
    let key = format!(
        "{} {} infer {} rows",
        sizes.join("-"),
        model.activation.as_str(),
        sample.rows
    );
    // predict and eval shrink their batch to the binding: only the parameters must fit.
    let needs = budget::DeviceNeeds::of(&model.sizes(), 1, 0, 0);
    let fits = |lim: &Limits| budget::check_device(&needs, lim, budget::DeviceRun::Inference);
    choose(&adapter, &key, "1000 rows", say, tuned, measure, fits)
}

/// `be` with its kernels tuned for `sizes` at `batch`, the tuner's lines said unless quiet.
fn tuned(
    mut be: Box<dyn Backend>,
    sizes: &[usize],
    batch: usize,
    tune: Mode,
    say: bool,
) -> Result<Box<dyn Backend>> {
    for line in be.tune(sizes, batch, tune)? {
        if say {
            crate::errln!("{line}");
        }
    }
    Ok(be)
}

/// The hardware adapter `auto` may choose (software ones only with WGTRAIN_AUTO_SOFTWARE=1),
/// or None, said in one line, when the CPU is the only device.
fn auto_adapter(say: bool) -> Result<Option<wgpu::Adapter>> {
    let software = std::env::var("WGTRAIN_AUTO_SOFTWARE").is_ok_and(|v| v == "1");
    let found = match gpu::device::select_adapter(DeviceChoice::Auto, None)? {
        Some(a) => Some(a),
        // Test-only: let a software adapter compete (an error means there is none at all).
        None if software => gpu::device::select_adapter(DeviceChoice::Gpu, None)
            .ok()
            .flatten(),
        None => None,
    };
    if found.is_none() && say {
        crate::errln!("wgtrain: no hardware GPU adapter found; running on the CPU");
    }
    Ok(found)
}

/// The faster backend for `net_key`: the cached figures, else `measure` on the GPU (then
/// cached); says both figures in one line. The GPU is opened only when it is timed or
/// chosen, checked against its limits first (`fits`: the CPU when it cannot hold the run),
/// and tuned before it is timed (it competes with the kernels it would run).
fn choose(
    adapter: &wgpu::Adapter,
    net_key: &str,
    unit: &str,
    say: bool,
    tuned: impl Fn(Box<dyn Backend>) -> Result<Box<dyn Backend>>,
    measure: impl FnOnce(&mut dyn Backend) -> Result<Timing>,
    fits: impl Fn(&Limits) -> Result<()>,
) -> Result<Box<dyn Backend>> {
    let info = adapter.get_info();
    let adapter_key = tune::adapter_key(&info);
    let path = cache_path();
    let cached = path
        .as_deref()
        .and_then(|p| lookup(p, &adapter_key, net_key));
    if let Some(t) = cached.as_ref().filter(|t| !t.gpu_wins()) {
        if say {
            crate::errln!("{}", t.line(&info.name, true, unit));
        }
        return tuned(Box::<CpuBackend>::default());
    }
    let gpu = GpuBackend::new(adapter.clone())?;
    if let Some(Err(e)) = gpu.limits().map(|lim| fits(&lim)) {
        if say {
            crate::errln!("auto: {} cannot hold this run → cpu ({e})", info.name);
        }
        return tuned(Box::<CpuBackend>::default());
    }
    let mut gpu_be = tuned(Box::new(gpu))?;
    let timing = match cached.clone() {
        Some(t) => t,
        None => {
            let t = measure(gpu_be.as_mut())?;
            if let Some(p) = &path
                && let Err(e) = store(p, &adapter_key, net_key, &t)
            {
                crate::errln!("wgtrain: could not cache the device choice: {e}");
            }
            t
        }
    };
    if say {
        crate::errln!("{}", timing.line(&info.name, cached.is_some(), unit));
    }
    if timing.gpu_wins() {
        Ok(gpu_be)
    } else {
        tuned(Box::<CpuBackend>::default())
    }
}

/// One warm-up pass over `sample` (buffers, first touches), then passes until BUDGET, each
/// ended by its read-back; ms per 1000 rows.
fn ms_per_kilorow<B: Backend + ?Sized>(be: &mut B, model: &Model, sample: &Rows) -> Result<f64> {
    crate::train::predict(be, model, &sample.x, sample.rows)?;
    let t0 = Instant::now();
    let mut passes = 0;
    while passes < MAX_STEPS && (passes == 0 || t0.elapsed() < BUDGET) {
        crate::train::predict(be, model, &sample.x, sample.rows)?;
        passes += 1;
    }
    let rows = (passes * sample.rows) as f64;
    Ok(t0.elapsed().as_secs_f64() * 1e6 / rows)
}

/// What the step time depends on: layer sizes, activation, loss, optimizer, batch.
fn network_key(model: &Model, cfg: &TrainConfig) -> String {
    let sizes: Vec<String> = model.sizes().iter().map(|s| s.to_string()).collect();
    format!(
        "{} {} {} {} batch {}",
        sizes.join("-"),
        model.activation.as_str(),
        model.loss.as_str(),
        cfg.optimizer.as_str(),
        cfg.batch_size
    )
}

/// Median-free, budgeted timing: one warm-up step (pipelines, first touches), then steps until
/// MAX_STEPS or BUDGET, each run ended by a read-back so the device has really finished.
pub fn ms_per_step<B: Backend + ?Sized>(
    be: &mut B,
    model: &Model,
    cfg: &TrainConfig,
) -> Result<f64> {
    let batch = cfg.batch_size.max(1);
    let rows = random_rows(model, batch * 2);
    let cfg = TrainConfig {
        schedule: Schedule::Constant,
        epochs: 1,
        patience: None,
        progress: false,
        ..cfg.clone()
    };
    let mut tr = Trainer::new(be, model, &rows, None, &cfg)?;
    tr.step(be)?;
    tr.batch_loss(be)?;
    let t0 = Instant::now();
    let mut steps = 0;
    while steps < MAX_STEPS && (steps == 0 || t0.elapsed() < BUDGET) {
        tr.step(be)?;
        be.flush()?;
        steps += 1;
        // Waiting every few steps keeps the budget honest on a device that queues work.
        if steps % 4 == 0 {
            tr.batch_loss(be)?;
        }
    }
    tr.batch_loss(be)?;
    Ok(t0.elapsed().as_secs_f64() * 1e3 / steps as f64)
}

/// Seeded rows of the model's shape: features N(0, 1), targets N(0, 1) or class indices.
fn random_rows(model: &Model, rows: usize) -> Rows {
    let (d, n) = (model.sizes()[0], model.outputs());
    let mut rng = Rng::new(7);
    let x = (0..rows * d).map(|_| rng.normal() as f32).collect();
    let y = match model.schema.task {
        Task::Classification => (0..rows).map(|_| rng.below(n) as f32).collect(),
        Task::Regression => (0..rows * n).map(|_| rng.normal() as f32).collect(),
    };
    Rows { x, y, rows }
}

/// `device-auto.json` beside the GPU tuning cache (`$WGTRAIN_CACHE_DIR`, else the OS cache
/// folder's `wgtrain/`).
pub fn cache_path() -> Option<PathBuf> {
    tune::cache_path().map(|p| p.with_file_name("device-auto.json"))
}

/// The cache at `path`; missing, unreadable or of another format reads as empty (it is only a
/// cache: the worst case is measuring again).
fn load(path: &Path) -> Cache {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Cache>(&t).ok())
        .filter(|c| c.format == FORMAT)
        .unwrap_or_else(|| Cache {
            format: FORMAT.to_string(),
            ..Cache::default()
        })
}

fn lookup(path: &Path, adapter: &str, net: &str) -> Option<Timing> {
    load(path).entries.get(adapter)?.get(net).cloned()
}

fn store(path: &Path, adapter: &str, net: &str, t: &Timing) -> Result<()> {
    let mut c = load(path);
    c.entries
        .entry(adapter.to_string())
        .or_default()
        .insert(net.to_string(), t.clone());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| crate::error::Error::io(dir, e))?;
    }
    let text = serde_json::to_string_pretty(&c)
        .map_err(|e| crate::error::Error::internal(format!("device cache: {e}")))?;
    crate::io::write_atomically(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_both_figures_and_the_faster_device() {
        let t = Timing {
            cpu_ms: 0.21,
            gpu_ms: 0.55,
        };
        assert!(!t.gpu_wins());
        assert_eq!(
            t.line("Intel Iris Xe", false, "step"),
            "auto: cpu 0.210 ms/step, Intel Iris Xe 0.550 ms/step → cpu"
        );
        let t = Timing {
            cpu_ms: 3.0,
            gpu_ms: 0.5,
        };
        assert!(t.gpu_wins());
        assert!(t.line("H100", true, "step").ends_with("→ gpu (cached)"));
    }

    #[test]
    fn the_cache_keeps_entries_per_adapter_and_network() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub").join("device-auto.json");
        assert_eq!(
            lookup(&path, "a", "n"),
            None,
            "a missing file is an empty cache"
        );
        let t1 = Timing {
            cpu_ms: 1.0,
            gpu_ms: 2.0,
        };
        let t2 = Timing {
            cpu_ms: 3.0,
            gpu_ms: 0.5,
        };
        store(&path, "a", "n1", &t1).expect("store");
        store(&path, "a", "n2", &t2).expect("store");
        store(&path, "b", "n1", &t2).expect("store");
        assert_eq!(lookup(&path, "a", "n1"), Some(t1));
        assert_eq!(lookup(&path, "a", "n2"), Some(t2.clone()));
        assert_eq!(lookup(&path, "b", "n1"), Some(t2));
        assert_eq!(lookup(&path, "b", "n2"), None);
        std::fs::write(&path, "{ not json").expect("write");
        assert_eq!(
            lookup(&path, "a", "n1"),
            None,
            "a corrupt cache reads as empty"
        );
    }
}
