//! The commands behind the CLI: `train`, `predict`, `eval`, `devices`, `check`. `main.rs` only
//! parses arguments and maps errors to exit codes; tests call these functions too.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::data::{DataSpec, Dataset, LoadOptions, ModelColumns, Normalizer, Table, read_table};
use crate::error::{Error, Result};
use crate::model::{Init, Model, init_layers_with, layer_sizes};
use crate::spec::{Activation, Loss, Optimizer, Task};
use crate::train::{self, EpochMetrics, Metrics, Rows, Schedule, TrainConfig};

#[derive(Parser, Debug)]
#[command(
    name = "wgtrain",
    version,
    about = "Train MLPs from CSV files on any GPU (wgpu) or on the CPU"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train an MLP on a CSV file and write a model file.
    Train(TrainArgs),
    /// Write predictions of a model for the rows of a CSV file.
    Predict(PredictArgs),
    /// Print a model's metrics on a CSV file that has the target columns.
    Eval(EvalArgs),
    /// List the GPU adapters wgpu finds, and which one `--device auto` takes.
    Devices,
    /// Check every GPU kernel against the CPU reference on this machine's adapter.
    Check(CheckArgs),
    /// Time training steps (or one matmul) on random data: steps/s, samples/s, GFLOP/s.
    Bench(BenchArgs),
    /// Draw the loss curves of a `--metrics` CSV file as PNG or SVG.
    Plot(PlotArgs),
}

#[derive(Args, Debug, Clone)]
pub struct PlotArgs {
    /// A metrics file written by `train --metrics`.
    pub metrics: PathBuf,
    /// The image to write, .png or .svg (default: the metrics file with .png).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The plot's title (default: the metrics file's name).
    #[arg(long)]
    pub title: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// auto: a hardware GPU if there is one, else the CPU; gpu: any adapter (software too); cpu.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Adapter name (substring) or index from `wgtrain devices`.
    #[arg(long)]
    pub adapter: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The training data: a CSV file with a header (.csv or .csv.gz).
    pub data: PathBuf,
    /// Target column(s); several (a,b) mean multi-output regression.
    #[arg(long, value_delimiter = ',', required = true)]
    pub target: Vec<String>,
    /// Columns to ignore (e.g. an id).
    #[arg(long, value_delimiter = ',')]
    pub drop: Vec<String>,
    /// Series mode: the features of a row are the N previous values of the target column
    /// (the lecture's views of the previous N days); validation is the last fraction of rows.
    #[arg(long)]
    pub window: Option<usize>,
    /// regression | classification (default: classification when the target is not numeric).
    #[arg(long)]
    pub task: Option<String>,
    /// Hidden layer widths, e.g. 100,100; `none` for the linear model y = b + Wx.
    #[arg(long, default_value = "100")]
    pub hidden: String,
    /// Weight initialization: xavier (Glorot uniform, as scikit-learn) | he (He-normal for ReLU).
    #[arg(long, default_value = "xavier")]
    pub init: String,
    /// relu | sigmoid, for the hidden layers.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// mse | mae (regression, default mse); ce | mse (classification, default ce).
    #[arg(long)]
    pub loss: Option<String>,
    /// sgd | momentum | adam.
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Learning rate.
    #[arg(long, default_value_t = 0.001, allow_negative_numbers = true)]
    pub lr: f64,
    /// constant | step (× --lr-gamma every --lr-step epochs) | cosine (down to --lr-min).
    #[arg(long, default_value = "constant")]
    pub lr_schedule: String,
    /// step schedule: epochs between drops.
    #[arg(long, default_value_t = 30, allow_negative_numbers = true)]
    pub lr_step: i64,
    /// step schedule: the factor of each drop.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub lr_gamma: f64,
    /// cosine schedule: the learning rate at the end.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub lr_min: f64,
    #[arg(long, default_value_t = 32, allow_negative_numbers = true)]
    pub batch_size: i64,
    /// Passes over the training rows (scikit-learn's MLP default, 200, suits small tables).
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    pub epochs: i64,
    /// Fraction of rows held out for validation (seeded, stratified for classes); 0 = none.
    #[arg(long, default_value_t = 0.2, allow_negative_numbers = true)]
    pub val_split: f64,
    /// Validation rows from their own CSV file instead of a split.
    #[arg(long, conflicts_with_all = ["val_split", "val_every"])]
    pub val: Option<PathBuf>,
    /// Every N-th row (row index divisible by N) is validation: the course's homework-1 dev split.
    #[arg(long, conflicts_with = "val_split")]
    pub val_every: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Early stopping: stop when the validation loss has not improved for N epochs, and save
    /// the best epoch's weights.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Clip the gradient to this L2 norm (all parameters together) before each update.
    #[arg(long, allow_negative_numbers = true)]
    pub clip: Option<f64>,
    /// L2 weight decay (decoupled, AdamW-style, for adam).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// Train on the raw features and targets, without standardizing them.
    #[arg(long)]
    pub no_standardize: bool,
    #[command(flatten)]
    pub dev: DeviceArgs,
    /// The model file to write.
    #[arg(long, default_value = "model.safetensors")]
    pub out: PathBuf,
    /// Write per-epoch metrics to this CSV file.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Draw the loss curves to this .png or .svg file after training (and, for regression,
    /// validation predictions vs real values to FILE-stem.pred.EXT).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Print only the final line.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct PredictArgs {
    pub model: PathBuf,
    pub data: PathBuf,
    /// Where to write the predictions (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Columns of the input copied through to the output (e.g. id).
    #[arg(long, value_delimiter = ',')]
    pub keep: Vec<String>,
    /// Names for the prediction columns instead of the target names (one per target).
    #[arg(long, value_delimiter = ',')]
    pub names: Vec<String>,
    #[command(flatten)]
    pub dev: DeviceArgs,
}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    pub model: PathBuf,
    pub data: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dev: DeviceArgs,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub dev: DeviceArgs,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Layer widths from inputs to outputs, e.g. 56,100,100,100,1.
    #[arg(long)]
    pub layers: Option<String>,
    /// Time matmul_nt with M = N = K = this size instead of training steps.
    #[arg(long)]
    pub matmul: Option<usize>,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// sgd | momentum | adam.
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    #[arg(long, default_value_t = 0.001)]
    pub lr: f64,
    /// regression | classification (default: regression for one output, else classification).
    #[arg(long)]
    pub task: Option<String>,
    /// Timed steps (matmuls) per run [default: 200 (matmul: 10)].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Untimed steps (matmuls) before the first run [default: 20 (matmul: 3)].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Batches in the random data set (rows = batch × batches); reshuffled every pass.
    #[arg(long, default_value_t = 8)]
    pub batches: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dev: DeviceArgs,
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => run_train(&a).map(|_| ()),
        Command::Predict(a) => run_predict(&a),
        Command::Eval(a) => run_eval(&a).map(|_| ()),
        Command::Devices => run_devices(),
        Command::Check(a) => run_check(&a),
        Command::Plot(a) => run_plot(&a),
        Command::Bench(a) => crate::bench::run(&a),
    }
}

/// `--hidden 100,100` → [100, 100]; `none` or empty → [] (the linear model).
pub fn parse_hidden(s: &str) -> Result<Vec<usize>> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|w| match w.trim().parse::<usize>() {
            Ok(0) => Err(Error::flag(
                "--hidden",
                format!("'{s}': a layer needs at least one unit"),
            )),
            Ok(n) => Ok(n),
            Err(_) => Err(Error::flag(
                "--hidden",
                format!("'{s}' is not a list of widths like 100,100 (or none)"),
            )),
        })
        .collect()
}

struct Parsed {
    hidden: Vec<usize>,
    activation: Activation,
    optimizer: Optimizer,
    task: Option<Task>,
    cfg: TrainConfig,
}

fn parse_train_flags(a: &TrainArgs) -> Result<Parsed> {
    if !(a.lr.is_finite() && a.lr > 0.0) {
        return Err(Error::flag(
            "--lr",
            format!("{} must be a positive number", a.lr),
        ));
    }
    if a.batch_size < 1 {
        return Err(Error::flag(
            "--batch-size",
            format!("{} must be at least 1", a.batch_size),
        ));
    }
    if a.epochs < 1 {
        return Err(Error::flag(
            "--epochs",
            format!("{} must be at least 1", a.epochs),
        ));
    }
    if !(0.0..1.0).contains(&a.val_split) {
        return Err(Error::flag(
            "--val-split",
            format!("{} is outside [0, 1)", a.val_split),
        ));
    }
    if a.val_every.is_some_and(|n| n < 2) {
        return Err(Error::flag("--val-every", "must be at least 2"));
    }
    if !(a.weight_decay.is_finite() && a.weight_decay >= 0.0) {
        return Err(Error::flag(
            "--weight-decay",
            format!("{} must be zero or positive", a.weight_decay),
        ));
    }
    let activation = Activation::parse(&a.activation)?;
    if activation == Activation::Identity {
        return Err(Error::flag(
            "--activation",
            "use --hidden none for a linear model; hidden layers take relu or sigmoid",
        ));
    }
    let optimizer = Optimizer::parse(&a.optimizer)?;
    let schedule = match a.lr_schedule.as_str() {
        "constant" => Schedule::Constant,
        "step" => {
            if a.lr_step < 1 {
                return Err(Error::flag(
                    "--lr-step",
                    format!("{} must be at least 1 epoch", a.lr_step),
                ));
            }
            if !(a.lr_gamma > 0.0 && a.lr_gamma <= 1.0) {
                return Err(Error::flag(
                    "--lr-gamma",
                    format!("{} is outside (0, 1]", a.lr_gamma),
                ));
            }
            Schedule::Step {
                every: a.lr_step as usize,
                gamma: a.lr_gamma,
            }
        }
        "cosine" => {
            if !(a.lr_min >= 0.0 && a.lr_min < a.lr) {
                return Err(Error::flag(
                    "--lr-min",
                    format!("{} must be in [0, --lr)", a.lr_min),
                ));
            }
            Schedule::Cosine { min: a.lr_min }
        }
        s => {
            return Err(Error::flag(
                "--lr-schedule",
                format!("'{s}' is not one of constant, step, cosine"),
            ));
        }
    };
    if a.clip.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
        return Err(Error::flag("--clip", "must be a positive number"));
    }
    if a.window == Some(0) {
        return Err(Error::flag("--window", "must be at least 1"));
    }
    Ok(Parsed {
        hidden: parse_hidden(&a.hidden)?,
        activation,
        optimizer,
        task: a.task.as_deref().map(Task::parse).transpose()?,
        cfg: TrainConfig {
            optimizer,
            lr: a.lr as f32,
            schedule,
            batch_size: a.batch_size as usize,
            epochs: a.epochs as usize,
            seed: a.seed,
            weight_decay: a.weight_decay as f32,
            patience: a.patience,
            clip: a.clip.map(|c| c as f32),
            progress: !a.quiet,
        },
    })
}

/// The backend `--device` asks for. `auto` falls back to the CPU, saying so on stderr.
pub fn open_backend(dev: &DeviceArgs) -> Result<Box<dyn Backend>> {
    match dev.device.as_str() {
        "cpu" => Ok(Box::new(CpuBackend::new())),
        "auto" | "gpu" => match gpu_backend(dev.device == "gpu", dev.adapter.as_deref())? {
            Some(g) => Ok(g),
            None => {
                eprintln!("wgtrain: no hardware GPU adapter found; running on the CPU");
                Ok(Box::new(CpuBackend::new()))
            }
        },
        other => Err(Error::flag(
            "--device",
            format!("'{other}' is not one of auto, gpu, cpu"),
        )),
    }
}

/// Features standardized with the model's normalizer (a copy).
fn model_inputs(model: &Model, ds: &Dataset) -> Vec<f32> {
    let mut x = ds.x.clone();
    Normalizer {
        mean: model.feature_mean.clone(),
        std: model.feature_std.clone(),
    }
    .apply(&mut x);
    x
}

/// Targets in the network's units: standardized for regression, indices for classes.
fn model_targets(model: &Model, ds: &Dataset) -> Vec<f32> {
    let mut y = ds.y.clone();
    if model.task == Task::Regression {
        Normalizer {
            mean: model.target_mean.clone(),
            std: model.target_std.clone(),
        }
        .apply(&mut y);
    }
    y
}

pub struct TrainOutcome {
    pub model: Model,
    pub history: train::History,
}

pub fn run_train(a: &TrainArgs) -> Result<TrainOutcome> {
    let p = parse_train_flags(a)?;
    if let Some(path) = &a.plot {
        crate::plot::format_of(path)?;
    }
    let spec = DataSpec {
        targets: &a.target,
        drop: &a.drop,
        task: p.task,
        window: a.window,
    };
    let load = LoadOptions {
        progress: !a.quiet,
        block_bytes: 0,
    };
    let ds = Dataset::load(&a.data, &spec, &load)?;
    if ds.task == Task::Regression && p.task.is_none() && !a.quiet && looks_like_labels(&ds) {
        eprintln!(
            "wgtrain: note: '{}' holds a few integer values, read as numbers (regression); \
             add --task classification to treat them as classes",
            ds.targets[0]
        );
    }
    let loss = Loss::for_task(ds.task, a.loss.as_deref())?;

    let (train_ds, val_ds) = match (&a.val, a.val_every) {
        (Some(path), _) => {
            let cols = ModelColumns {
                features: &ds.features,
                targets: &ds.targets,
                task: ds.task,
                classes: &ds.classes,
                window: a.window,
            };
            let (v, _) = Dataset::load_for_model(path, &cols, true, &load)?;
            (ds, Some(v))
        }
        (None, Some(n)) => {
            let (tr, va) = crate::data::every_nth(ds.rows, n);
            (ds.subset(&tr), Some(ds.subset(&va)))
        }
        (None, None) => {
            // A series validates on its last rows, as the lecture trains on 2017–2020 and tests on 2021.
            let (tr, va) =
                crate::data::split_indices(&ds, a.val_split, a.seed, a.window.is_some())?;
            let val = (!va.is_empty()).then(|| ds.subset(&va));
            (ds.subset(&tr), val)
        }
    };

    let d = train_ds.n_features();
    let n_out = train_ds.n_outputs();
    let standardize = !a.no_standardize;
    let fnorm = if standardize {
        Normalizer::fit(&train_ds.x, train_ds.rows, d)
    } else {
        Normalizer::identity(d)
    };
    let tnorm = match train_ds.task {
        Task::Regression if standardize => Normalizer::fit(&train_ds.y, train_ds.rows, n_out),
        Task::Regression => Normalizer::identity(n_out),
        Task::Classification => Normalizer {
            mean: vec![],
            std: vec![],
        },
    };
    let sizes = layer_sizes(d, &p.hidden, n_out);
    let mut model = Model {
        task: train_ds.task,
        activation: p.activation,
        loss,
        features: train_ds.features.clone(),
        targets: train_ds.targets.clone(),
        classes: train_ds.classes.clone(),
        seed: a.seed,
        window: a.window,
        layers: init_layers_with(&sizes, p.activation, Init::parse(&a.init)?, a.seed),
        feature_mean: fnorm.mean,
        feature_std: fnorm.std,
        target_mean: tnorm.mean,
        target_std: tnorm.std,
    };
    let rows = |ds: &Dataset| Rows {
        x: model_inputs(&model, ds),
        y: model_targets(&model, ds),
        rows: ds.rows,
    };
    let train_rows = rows(&train_ds);
    let val_rows = val_ds.as_ref().map(rows);

    let mut be = open_backend(&a.dev)?;
    if !a.quiet {
        let shape: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
        eprintln!(
            "wgtrain: {} on {}: {} train / {} val rows, {} {}, mlp {} ({} parameters, {}), {} lr {} batch {}",
            model.task.as_str(),
            be.describe(),
            train_rows.rows,
            val_rows.as_ref().map_or(0, |v| v.rows),
            d,
            if d == 1 { "feature" } else { "features" },
            shape.join("-"),
            model.parameter_count(),
            p.activation.as_str(),
            p.optimizer.as_str(),
            a.lr,
            a.batch_size,
        );
    }
    let metric_name = if model.task == Task::Classification {
        "val_accuracy"
    } else {
        "val_rmse"
    };
    let mut log = match &a.metrics {
        Some(path) => Some(MetricsLog::create(path, metric_name)?),
        None => None,
    };
    let mut log_err = None;
    let quiet = a.quiet;
    let history = train::train(
        be.as_mut(),
        &mut model,
        &train_rows,
        val_rows.as_ref(),
        &p.cfg,
        |m| {
            if !quiet {
                println!("{}", epoch_line(m, metric_name));
            }
            if let Some(l) = log.as_mut()
                && let Err(e) = l.write(m)
            {
                log_err.get_or_insert(e);
            }
        },
    )?;
    if let Some(e) = log_err {
        return Err(e);
    }
    model.save(&a.out)?;
    let (ran, best) = (history.epochs.len(), history.best_epoch);
    if history.stopped_early {
        eprintln!(
            "wgtrain: stopped early at epoch {ran}: val_loss has not improved for {} epochs since epoch {best}",
            a.patience.unwrap_or(0)
        );
    }
    if let Some(m) = history.epochs.get(best.wrapping_sub(1)) {
        let val = match (m.val_loss, m.val_metric) {
            (Some(l), Some(v)) => format!(", val_loss {l:.6}, {metric_name} {v:.4}"),
            _ => String::new(),
        };
        let which = if best == ran {
            String::new()
        } else {
            format!(" (weights of epoch {best})")
        };
        eprintln!(
            "wgtrain: wrote {} after {ran} epochs{which}: train_loss {:.6}{val}",
            a.out.display(),
            m.train_loss
        );
    }
    if let Some(path) = &a.plot {
        draw_train_plots(
            a,
            path,
            be.as_mut(),
            &model,
            &history,
            val_ds.as_ref(),
            val_rows.as_ref(),
        )?;
    }
    Ok(TrainOutcome { model, history })
}

/// `train --plot`: the loss curves, and for regression with validation rows, predicted vs real.
fn draw_train_plots(
    a: &TrainArgs,
    path: &Path,
    be: &mut dyn Backend,
    model: &Model,
    history: &train::History,
    val_ds: Option<&Dataset>,
    val_rows: Option<&Rows>,
) -> Result<()> {
    let data_name = a.data.file_name().map_or_else(
        || a.data.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let loss = match model.loss {
        Loss::Mse => "MSE",
        Loss::Mae => "MAE",
        Loss::CrossEntropy => "cross-entropy",
        Loss::SoftmaxMse => "softmax MSE",
    };
    let title = format!("{data_name}: {loss} loss per epoch");
    crate::plot::loss_curves(path, &history.epochs, &format!("{loss} loss"), &title)?;
    eprintln!("wgtrain: loss curves in {}", path.display());
    if let (Task::Regression, Some(ds), Some(rows)) = (model.task, val_ds, val_rows)
        && rows.rows > 0
    {
        let pred = train::predict(be, model, &rows.x, rows.rows)?;
        let n = model.outputs();
        for (j, name) in model.targets.iter().enumerate() {
            let column = |v: &[f32]| v.iter().skip(j).step_by(n).copied().collect::<Vec<f32>>();
            let out = crate::plot::predictions_path(path, (n > 1).then_some(name.as_str()));
            let title =
                format!("{data_name}: {name}, real (blue) and predicted (red) on validation rows");
            crate::plot::predictions(&out, &column(&ds.y), &column(&pred), &title)?;
            eprintln!("wgtrain: predictions vs real values in {}", out.display());
        }
    }
    Ok(())
}

/// `wgtrain plot METRICS.csv`: redraw the loss curves from a metrics file.
pub fn run_plot(a: &PlotArgs) -> Result<()> {
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.metrics.with_extension("png"));
    crate::plot::format_of(&out)?;
    let history = crate::plot::read_metrics(&a.metrics)?;
    let title = a.title.clone().unwrap_or_else(|| {
        a.metrics
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    });
    crate::plot::loss_curves(&out, &history, "loss", &title)?;
    eprintln!("wgtrain: loss curves in {}", out.display());
    Ok(())
}

/// A single numeric target with few distinct whole values (digit labels, say): probably classes.
fn looks_like_labels(ds: &Dataset) -> bool {
    if ds.targets.len() != 1 || ds.rows < 20 || ds.y.iter().any(|v| v.fract() != 0.0) {
        return false;
    }
    let mut distinct: Vec<i64> = ds.y.iter().map(|&v| v as i64).collect();
    distinct.sort_unstable();
    distinct.dedup();
    distinct.len() <= 20
}

pub fn epoch_line(m: &EpochMetrics, metric_name: &str) -> String {
    let mut s = format!("epoch {:>4}  train_loss {:>12.6}", m.epoch, m.train_loss);
    if let (Some(l), Some(v)) = (m.val_loss, m.val_metric) {
        s += &format!("  val_loss {l:>12.6}  {metric_name} {v:>9.4}");
    }
    s + &format!("  {:>7.3}s", m.seconds)
}

struct MetricsLog {
    path: PathBuf,
    w: std::io::BufWriter<std::fs::File>,
}

impl MetricsLog {
    fn create(path: &Path, metric_name: &str) -> Result<Self> {
        let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut log = MetricsLog {
            path: path.to_path_buf(),
            w: std::io::BufWriter::new(f),
        };
        writeln!(log.w, "epoch,train_loss,val_loss,{metric_name},seconds")
            .map_err(|e| Error::io(path, e))?;
        Ok(log)
    }
    fn write(&mut self, m: &EpochMetrics) -> Result<()> {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        writeln!(
            self.w,
            "{},{},{},{},{:.4}",
            m.epoch,
            m.train_loss,
            opt(m.val_loss),
            opt(m.val_metric),
            m.seconds
        )
        .and_then(|_| self.w.flush())
        .map_err(|e| Error::io(&self.path, e))
    }
}

fn load_for_data(
    model_path: &Path,
    data: &Path,
    need_targets: bool,
    text: bool,
) -> Result<(Model, Option<Table>, Dataset, bool)> {
    let model = Model::load(model_path)?;
    // Only `predict --keep` needs the text of the rows; the rest streams.
    if !text {
        let cols = ModelColumns {
            features: &model.features,
            targets: &model.targets,
            task: model.task,
            classes: &model.classes,
            window: model.window,
        };
        let (ds, has) =
            Dataset::load_for_model(data, &cols, need_targets, &LoadOptions::default())?;
        return Ok((model, None, ds, has));
    }
    let table = read_table(data)?;
    let (ds, has_targets) = Dataset::for_model(
        &table,
        &model.features,
        &model.targets,
        model.task,
        &model.classes,
        model.window,
        need_targets,
    )?;
    Ok((model, Some(table), ds, has_targets))
}

pub fn run_predict(a: &PredictArgs) -> Result<()> {
    let (model, table, ds, _) = load_for_data(&a.model, &a.data, false, !a.keep.is_empty())?;
    let no_text = Table {
        path: a.data.clone(),
        header: Vec::new(),
        records: Vec::new(),
        lines: Vec::new(),
        raw_header: Vec::new(),
    };
    let table = table.unwrap_or(no_text);
    let keep_cols = a
        .keep
        .iter()
        .map(|k| {
            table.header.iter().position(|h| h == k).ok_or_else(|| {
                Error::flag(
                    "--keep",
                    format!(
                        "no column '{k}' in {}; columns are: {}",
                        a.data.display(),
                        table.header.join(", ")
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut be = open_backend(&a.dev)?;
    let out = train::predict(be.as_mut(), &model, &model_inputs(&model, &ds), ds.rows)?;

    // The record each sample came from (windows skip the first rows), for --keep.
    let record_of: std::collections::HashMap<u64, usize> = table
        .lines
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, i))
        .collect();
    let mut buf: Vec<u8> = Vec::new();
    {
        let mut w = csv::Writer::from_writer(&mut buf);
        let mut header: Vec<String> = a.keep.clone();
        let names = if a.names.is_empty() {
            model.targets.clone()
        } else {
            a.names.clone()
        };
        if names.len() != model.targets.len() {
            return Err(Error::flag(
                "--names",
                format!("give {} name(s), one per target", model.targets.len()),
            ));
        }
        header.extend(names);
        if model.task == Task::Classification {
            header.extend(model.classes.iter().map(|c| format!("prob_{c}")));
        }
        let csv_err = |e: csv::Error| Error::internal(format!("writing predictions: {e}"));
        w.write_record(&header).map_err(csv_err)?;
        let n = model.outputs();
        for r in 0..ds.rows {
            let mut rec: Vec<String> = Vec::with_capacity(header.len());
            let src = record_of.get(&ds.lines[r]).map(|&i| &table.records[i]);
            for &c in &keep_cols {
                rec.push(src.and_then(|s| s.get(c)).unwrap_or("").to_string());
            }
            let o = &out[r * n..(r + 1) * n];
            if model.task == Task::Classification {
                let best = (0..n).fold(0, |b, j| if o[j] > o[b] { j } else { b });
                rec.push(model.classes[best].clone());
                rec.extend(o.iter().map(|p| format!("{p:.6}")));
            } else {
                rec.extend(o.iter().map(|v| format!("{v}")));
            }
            w.write_record(&rec).map_err(csv_err)?;
        }
        w.flush()
            .map_err(|e| Error::io(a.out.as_deref().unwrap_or(Path::new("-")), e))?;
    }
    match &a.out {
        Some(path) => write_atomically(path, &buf),
        None => std::io::stdout()
            .write_all(&buf)
            .map_err(|e| Error::io("<stdout>", e)),
    }
}

/// Temporary file + rename, like the model file: an existing file is never half-written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(path, e)
        })
}

pub fn run_eval(a: &EvalArgs) -> Result<Metrics> {
    let (model, _, ds, _) = load_for_data(&a.model, &a.data, true, false)?;
    let rows = Rows {
        x: model_inputs(&model, &ds),
        y: model_targets(&model, &ds),
        rows: ds.rows,
    };
    let mut be = open_backend(&a.dev)?;
    let m = train::evaluate(be.as_mut(), &model, &rows)?;
    let json = match model.task {
        Task::Regression => {
            serde_json::json!({ "rows": m.rows, "mse": m.mse, "rmse": m.mse.sqrt(), "mae": m.mae })
        }
        Task::Classification => {
            serde_json::json!({ "rows": m.rows, "accuracy": m.accuracy, "cross_entropy": m.cross_entropy })
        }
    };
    if a.json {
        println!("{json}");
    } else {
        let mut line = format!("rows {}", m.rows);
        let shown: &[&str] = match model.task {
            Task::Regression => &["mse", "rmse", "mae"],
            Task::Classification => &["accuracy", "cross_entropy"],
        };
        for k in shown {
            line += &format!("  {k} {:.6}", json[k].as_f64().unwrap_or(f64::NAN));
        }
        println!("{line}");
    }
    Ok(m)
}

/// The wgpu backend `--device` asks for, or `None` where `auto` finds no hardware GPU.
fn gpu_backend(required: bool, adapter: Option<&str>) -> Result<Option<Box<dyn Backend>>> {
    use crate::backend::gpu::{GpuBackend, device};
    let choice = if required {
        device::DeviceChoice::Gpu
    } else {
        device::DeviceChoice::Auto
    };
    match device::select_adapter(choice, adapter)? {
        Some(a) => Ok(Some(Box::new(GpuBackend::new(a)?))),
        None => Ok(None),
    }
}

pub fn run_devices() -> Result<()> {
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
    }
    match rows.iter().find(|r| r.auto) {
        Some(r) => println!("--device auto takes * ({})", r.name),
        None => println!(
            "--device auto runs on the CPU (no hardware GPU); --device gpu takes a software adapter"
        ),
    }
    Ok(())
}

/// `check` needs a GPU: `auto` here means any adapter, software ones included.
pub fn run_check(a: &CheckArgs) -> Result<()> {
    use crate::backend::gpu::{GpuBackend, check, device};
    if a.dev.device == "cpu" {
        return Err(Error::flag(
            "--device",
            "check compares a GPU with the CPU; it needs auto or gpu",
        ));
    }
    let choice = device::DeviceChoice::parse(&a.dev.device)?;
    let choice = if choice == device::DeviceChoice::Auto {
        device::DeviceChoice::Gpu
    } else {
        choice
    };
    let adapter = device::select_adapter(choice, a.dev.adapter.as_deref())?
        .ok_or_else(|| Error::gpu("no GPU adapter found"))?;
    let mut gpu = GpuBackend::new(adapter)?;
    println!(
        "checking {} against the CPU reference (seed {})",
        gpu.describe(),
        a.seed
    );
    let lines = check::run_checks(&mut gpu, a.seed)?;
    for l in &lines {
        println!("{l}");
    }
    let failed = lines.iter().filter(|l| !l.pass).count();
    println!("{} passed, {failed} failed", lines.len() - failed);
    if failed > 0 {
        return Err(Error::gpu(format!(
            "{failed} of {} checks failed on {}",
            lines.len(),
            gpu.describe()
        )));
    }
    Ok(())
}
