//! The top floor: the command line as clap structs, and dispatch to `cmd`. Flags with a fixed
//! set of values are `ValueEnum`s and counts are ranged integers, so clap refuses a bad value
//! (naming the flag, exit 2) before any work starts. Nothing below `cli` and `cmd` imports them.

use std::path::PathBuf;

use clap::builder::{PossibleValue, RangedU64ValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::backend::gpu::DeviceChoice;
use crate::error::Result;
use crate::model::Init;
use crate::spec::{Activation, Optimizer, Task};

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

// Parsed once per run: boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Train every combination of --grid values (data read once; CPU runs in parallel), each
    /// in its own run folder, ranked by validation loss into leaderboard.csv.
    Sweep(SweepArgs),
    /// Time every GPU matmul variant on a network's shapes and cache the fastest per shape.
    Tune(TuneArgs),
}

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> Result<()> {
    use crate::cmd;
    match cli.command {
        Command::Train(a) => cmd::train::run(&a).map(|_| ()),
        Command::Predict(a) => cmd::predict::run(&a),
        Command::Eval(a) => cmd::eval::run(&a).map(|_| ()),
        Command::Devices => cmd::devices::run(),
        Command::Check(a) => cmd::check::run(&a),
        Command::Plot(a) => cmd::plot::run(&a),
        Command::Bench(a) => cmd::bench::run(&a),
        Command::Sweep(a) => cmd::sweep::run(&a),
        Command::Tune(a) => cmd::tune::run(&a),
    }
}

// ---- value types --------------------------------------------------------------------------

/// `--loss`: the name only; which `spec::Loss` it means depends on the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LossName {
    Mse,
    Mae,
    Ce,
}

impl LossName {
    pub fn as_str(self) -> &'static str {
        match self {
            LossName::Mse => "mse",
            LossName::Mae => "mae",
            LossName::Ce => "ce",
        }
    }
}

/// `--lr-schedule`; its parameters come from `--lr-step`, `--lr-gamma`, `--lr-min`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScheduleKind {
    Constant,
    Step,
    Cosine,
}

// `DeviceChoice` belongs to the GPU backend; its command-line spelling belongs here.
impl ValueEnum for DeviceChoice {
    fn value_variants<'a>() -> &'a [Self] {
        &[DeviceChoice::Auto, DeviceChoice::Gpu, DeviceChoice::Cpu]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Gpu => "gpu",
            DeviceChoice::Cpu => "cpu",
        }))
    }
}

/// Layer widths such as `100,100` (possibly empty: the linear model).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Widths(pub Vec<usize>);

/// `--hidden 100,100` → [100, 100]; `none` or empty → [] (the linear model).
pub fn parse_hidden(s: &str) -> std::result::Result<Widths, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(Widths(Vec::new()));
    }
    s.split(',')
        .map(|w| match w.trim().parse::<usize>() {
            Ok(0) => Err(format!("'{s}': a layer needs at least one unit")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!(
                "'{s}' is not a list of widths like 100,100 (or none)"
            )),
        })
        .collect::<std::result::Result<_, _>>()
        .map(Widths)
}

/// `--layers 56,100,1` → [56, 100, 1]: inputs, hidden widths, outputs.
pub fn parse_layers(s: &str) -> std::result::Result<Widths, String> {
    let sizes: Vec<usize> = s
        .split(',')
        .map(|w| w.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("'{s}' is not a list of widths like 56,100,1"))?;
    if sizes.len() < 2 {
        return Err("give at least the inputs and the outputs".into());
    }
    Ok(Widths(sizes))
}

fn number(s: &str) -> std::result::Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("'{s}' is not a number"))
}

/// A finite number > 0 (learning rate, clip norm).
fn positive(s: &str) -> std::result::Result<f64, String> {
    let v = number(s)?;
    (v.is_finite() && v > 0.0)
        .then_some(v)
        .ok_or_else(|| format!("{v} must be a positive number"))
}

/// A finite number ≥ 0 (weight decay, final learning rate).
fn non_negative(s: &str) -> std::result::Result<f64, String> {
    let v = number(s)?;
    (v.is_finite() && v >= 0.0)
        .then_some(v)
        .ok_or_else(|| format!("{v} must be zero or positive"))
}

/// A fraction in [0, 1) (the validation split).
fn fraction(s: &str) -> std::result::Result<f64, String> {
    let v = number(s)?;
    (0.0..1.0)
        .contains(&v)
        .then_some(v)
        .ok_or_else(|| format!("{v} is outside [0, 1)"))
}

/// A factor in (0, 1] (the step schedule's drop).
fn open_fraction(s: &str) -> std::result::Result<f64, String> {
    let v = number(s)?;
    (v > 0.0 && v < 1.0)
        .then_some(v)
        .ok_or_else(|| format!("{v} is outside (0, 1)"))
}

fn factor(s: &str) -> std::result::Result<f64, String> {
    let v = number(s)?;
    (v > 0.0 && v <= 1.0)
        .then_some(v)
        .ok_or_else(|| format!("{v} is outside (0, 1]"))
}

/// A count of at least `MIN`, as usize.
fn at_least<const MIN: u64>() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(MIN..)
}

// ---- commands' arguments ------------------------------------------------------------------

#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// auto: with a hardware GPU, times this network on it and on the CPU (training steps for
    /// train and bench, the forward pass for predict and eval) and keeps the faster, cached per
    /// adapter and network; gpu: any adapter (software too); cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// Adapter name (substring) or index from `wgtrain devices`.
    #[arg(long)]
    pub adapter: Option<String>,
    /// GPU matmul variants: auto uses the tuning cache and tunes missing shapes briefly;
    /// force tunes again; off uses the defaults. Never changes results.
    #[arg(long, value_enum, default_value = "auto")]
    pub tune: crate::backend::gpu::tune::Mode,
}

impl DeviceArgs {
    /// The backend these flags ask for.
    pub fn open(&self) -> Result<Box<dyn crate::backend::Backend>> {
        crate::backend::open(self.device, self.adapter.as_deref())
    }

    /// The backend for a forward pass of `model` over `rows` rows: `auto` times both devices.
    pub fn open_for_inference(
        &self,
        model: &crate::model::Model,
        rows: usize,
    ) -> Result<Box<dyn crate::backend::Backend>> {
        let adapter = self.adapter.as_deref();
        crate::auto::open_for_inference(self.device, adapter, model, rows, self.tune, true)
    }
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The training data: a CSV file with a header (.csv or .csv.gz).
    #[arg(
        required_unless_present = "resume",
        default_value = "-",
        hide_default_value = true
    )]
    pub data: PathBuf,
    /// Target column(s); several (a,b) mean multi-output regression.
    #[arg(long, value_delimiter = ',', required_unless_present = "resume")]
    pub target: Vec<String>,
    /// Columns to ignore (e.g. an id).
    #[arg(long, value_delimiter = ',')]
    pub drop: Vec<String>,
    /// Series mode: the features of a row are the N previous values of the target column
    /// (the lecture's views of the previous N days); validation is the last fraction of rows.
    #[arg(long, value_parser = at_least::<1>())]
    pub window: Option<usize>,
    /// Default: classification when the target is not numeric.
    #[arg(long, value_enum)]
    pub task: Option<Task>,
    /// Hidden layer widths, e.g. 100,100; `none` for the linear model y = b + Wx.
    #[arg(long, default_value = "100", value_parser = parse_hidden)]
    pub hidden: Widths,
    /// Weight initialization: xavier (Glorot uniform, as scikit-learn) | he (He-normal for ReLU).
    #[arg(long, value_enum, default_value = "xavier")]
    pub init: Init,
    /// For the hidden layers.
    #[arg(long, value_enum, default_value = "relu")]
    pub activation: Activation,
    /// mse | mae (regression, default mse); ce | mse (classification, default ce).
    #[arg(long, value_enum)]
    pub loss: Option<LossName>,
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: Optimizer,
    /// Learning rate.
    #[arg(long, default_value = "0.001", allow_negative_numbers = true, value_parser = positive)]
    pub lr: f64,
    /// constant | step (× --lr-gamma every --lr-step epochs) | cosine (down to --lr-min).
    #[arg(long, value_enum, default_value = "constant")]
    pub lr_schedule: ScheduleKind,
    /// step schedule: epochs between drops.
    #[arg(long, default_value = "30", allow_negative_numbers = true, value_parser = at_least::<1>())]
    pub lr_step: usize,
    /// step schedule: the factor of each drop.
    #[arg(long, default_value = "0.1", allow_negative_numbers = true, value_parser = factor)]
    pub lr_gamma: f64,
    /// cosine schedule: the learning rate at the end.
    #[arg(long, default_value = "0", allow_negative_numbers = true, value_parser = non_negative)]
    pub lr_min: f64,
    #[arg(long, default_value = "32", allow_negative_numbers = true, value_parser = at_least::<1>())]
    pub batch_size: usize,
    /// Passes over the training rows (scikit-learn's MLP default, 200, suits small tables).
    #[arg(long, default_value = "200", allow_negative_numbers = true, value_parser = at_least::<1>())]
    pub epochs: usize,
    /// Fraction of rows held out for validation (seeded, stratified for classes); 0 = none.
    #[arg(long, default_value = "0.2", allow_negative_numbers = true, value_parser = fraction)]
    pub val_split: f64,
    /// Validation rows from their own CSV file instead of a split.
    #[arg(long, conflicts_with_all = ["val_split", "val_every"])]
    pub val: Option<PathBuf>,
    /// Every N-th row (row index divisible by N) is validation: the course's homework-1 dev split.
    #[arg(long, conflicts_with = "val_split", value_parser = at_least::<2>())]
    pub val_every: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Early stopping: stop when the validation loss has not improved for N epochs, and save
    /// the best epoch's weights.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Clip the gradient to this L2 norm (all parameters together) before each update.
    #[arg(long, allow_negative_numbers = true, value_parser = positive)]
    pub clip: Option<f64>,
    /// L2 weight decay (decoupled, AdamW-style, for adam).
    #[arg(long, default_value = "0", allow_negative_numbers = true, value_parser = non_negative)]
    pub weight_decay: f64,
    /// Train on the raw features and targets, without standardizing them.
    #[arg(long)]
    pub no_standardize: bool,
    /// Train by streaming the file in shards within this much memory (e.g. 512M, 2G): for
    /// tables larger than memory (CSV, CSV.gz). Chosen by itself, with half the free memory,
    /// when the data would not fit.
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub max_memory: Option<String>,
    #[command(flatten)]
    pub dev: DeviceArgs,
    /// The model file to write. Without it, the run gets its own folder under --runs
    /// (model.safetensors, metrics.csv, loss.png, run.json) and prints its name.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write per-epoch metrics to this CSV file.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Draw the loss curves to this .png or .svg file after training (and, for regression,
    /// validation predictions vs real values to FILE-stem.pred.EXT).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Print only the summary line (errors still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
    /// Only these columns are inputs: names, globs (cli*) and ranges in header order (AL:WI);
    /// the target never is one.
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,
    /// Keep the K features most related to the target on the training rows (|Pearson r| for
    /// regression, ANOVA F for classes, as scikit-learn's f_regression / f_classif rank them).
    #[arg(long, value_parser = at_least::<1>())]
    pub select_k: Option<usize>,
    /// The last fraction of rows in file order validate (of each group's rows with --group).
    #[arg(long, conflicts_with_all = ["val_split", "val", "val_every"], value_parser = open_fraction)]
    pub val_last: Option<f64>,
    /// Rows with equal values in these columns form a group (a one-hot block like AL:WI names
    /// a state): --val-split moves whole groups, --val-last the last rows of each, --cv folds
    /// never split one.
    #[arg(long, value_delimiter = ',')]
    pub group: Vec<String>,
    /// K-fold cross-validation (stratified for classes, grouped with --group): prints each
    /// fold and the mean ± std, then refits on all rows.
    #[arg(long, conflicts_with_all = ["val", "val_every", "val_last", "val_split"], value_parser = at_least::<2>())]
    pub cv: Option<usize>,
    /// With --cv: report the folds only, train no final model.
    #[arg(long, requires = "cv")]
    pub no_refit: bool,
    /// Print one JSON object with the final and best metrics as the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Start from this model's weights and normalizers (same features and layer sizes), to
    /// continue training or fine-tune. A run folder works too.
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Where run folders go when there is no --out.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Write a checkpoint (weights, optimizer state, random state, progress, flags, data
    /// hashes) to this file every --checkpoint-every epochs, when the run ends, and on Ctrl-C.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Epochs between checkpoints.
    #[arg(long, default_value = "1", value_parser = at_least::<1>())]
    pub checkpoint_every: usize,
    /// Continue the run a checkpoint holds, with its data and flags (--epochs may extend it).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// The command line as `main` received it, kept in checkpoints (empty for library calls).
    #[arg(skip)]
    pub argv: Vec<String>,
}

/// `wgtrain sweep DATA --target COL [train flags] --grid FLAG=V1|V2|… [--grid …]`
#[derive(Args, Debug, Clone)]
#[command(after_help = "Sweep flags, anywhere among the train flags:\n  \
    --grid FLAG=V1|V2|…  values to try for a train flag (repeatable; values may hold commas: \
    'hidden=64|128,64')\n  \
    --top N              leaderboard rows to print (default 10)\n  \
    --jobs N             CPU configurations at a time (default: the cores)")]
pub struct SweepArgs {
    /// The training data and every train flag (--target included), plus the sweep flags.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, num_args = 1..)]
    pub args: Vec<String>,
}

/// Train flags (the data file first) parsed as `wgtrain train` parses them.
pub fn parse_train_args(args: &[String]) -> std::result::Result<TrainArgs, clap::Error> {
    #[derive(Parser)]
    #[command(name = "wgtrain train")]
    struct One {
        #[command(flatten)]
        a: TrainArgs,
    }
    let argv = std::iter::once("wgtrain train".to_string()).chain(args.iter().cloned());
    One::try_parse_from(argv).map(|o| o.a)
}

#[derive(Args, Debug, Clone)]
#[command(
    after_help = "The target columns are never read: they may be absent, empty or '?'.\n\
    Series models (trained with --window N) forecast: rows at the end of DATA whose target is \
    empty or '?' are predicted one after another, each step's window taking the forecasts of \
    the steps before it (recursive multi-step forecasting); a last column `forecast` then says \
    0 for a row whose value is known and h for the h-th step ahead. An empty target before the \
    last known one is an error."
)]
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
pub struct BenchArgs {
    /// Layer widths from inputs to outputs, e.g. 56,100,100,100,1.
    #[arg(long, value_parser = parse_layers)]
    pub layers: Option<Widths>,
    /// Time matmul_nt with M = N = K = this size instead of training steps.
    #[arg(long, value_parser = at_least::<1>())]
    pub matmul: Option<usize>,
    #[arg(long, default_value = "256", value_parser = at_least::<1>())]
    pub batch: usize,
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: Optimizer,
    #[arg(long, default_value = "0.001", value_parser = positive)]
    pub lr: f64,
    /// Default: regression for one output, else classification.
    #[arg(long, value_enum)]
    pub task: Option<Task>,
    /// Timed steps (matmuls) per run [default: 200 (matmul: 10)].
    #[arg(long, value_parser = at_least::<1>())]
    pub steps: Option<usize>,
    /// Untimed steps (matmuls) before the first run [default: 20 (matmul: 3)].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Timed runs; the median is reported.
    #[arg(long, default_value = "5", value_parser = at_least::<1>())]
    pub repeats: usize,
    /// Batches in the random data set (rows = batch × batches); reshuffled every pass.
    #[arg(long, default_value = "8", value_parser = at_least::<1>())]
    pub batches: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dev: DeviceArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(extra: &[&str]) -> std::result::Result<TrainArgs, clap::Error> {
        let args = ["wgtrain", "train", "d.csv", "--target", "y"];
        let cli = Cli::try_parse_from(args.iter().chain(extra))?;
        match cli.command {
            Command::Train(a) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let a = train(&[]).unwrap();
        assert_eq!(a.hidden, Widths(vec![100]));
        assert_eq!(
            (a.activation, a.optimizer),
            (Activation::Relu, Optimizer::Adam)
        );
        assert_eq!(
            (a.init, a.lr_schedule),
            (Init::Xavier, ScheduleKind::Constant)
        );
        assert_eq!(
            (a.lr, a.batch_size, a.epochs, a.val_split),
            (0.001, 32, 200, 0.2)
        );
        assert_eq!(a.dev.device, DeviceChoice::Auto);
        assert_eq!((a.task, a.loss), (None, None));
    }

    #[test]
    fn bad_values_are_refused_naming_the_flag() {
        for (extra, flag) in [
            (&["--batch-size", "0"][..], "--batch-size"),
            (&["--batch-size", "-3"][..], "--batch-size"),
            (&["--epochs", "0"][..], "--epochs"),
            (&["--lr", "0"][..], "--lr"),
            (&["--lr", "nan"][..], "--lr"),
            (&["--val-split", "1"][..], "--val-split"),
            (&["--val-every", "1"][..], "--val-every"),
            (&["--window", "0"][..], "--window"),
            (&["--lr-gamma", "0"][..], "--lr-gamma"),
            (&["--weight-decay", "-1"][..], "--weight-decay"),
            (&["--clip", "0"][..], "--clip"),
            (&["--hidden", "10,0"][..], "--hidden"),
            (&["--activation", "tanh"][..], "--activation"),
            (&["--loss", "hinge"][..], "--loss"),
            (&["--init", "zeros"][..], "--init"),
            (&["--device", "tpu"][..], "--device"),
        ] {
            let e = train(extra).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{extra:?}");
            assert!(e.to_string().contains(flag), "{extra:?}: {e}");
        }
    }

    #[test]
    fn aliases_and_lists_parse() {
        let a = train(&[
            "--init",
            "kaiming",
            "--hidden",
            "none",
            "--activation",
            "linear",
        ]);
        let a = a.unwrap();
        assert_eq!((a.init, a.activation), (Init::He, Activation::Identity));
        assert_eq!(a.hidden, Widths(vec![]));
        assert_eq!(parse_hidden(" 64, 32 ").unwrap(), Widths(vec![64, 32]));
        assert_eq!(parse_layers("56, 100,1").unwrap(), Widths(vec![56, 100, 1]));
        assert!(parse_layers("56").is_err());
        assert!(parse_layers("56,0,1").is_err());
        assert!(parse_layers("a,b").is_err());
    }
}

#[derive(Args, Debug, Clone)]
pub struct TuneArgs {
    /// Layer sizes of the network to tune for, input to output.
    #[arg(long, default_value = "56,100,100,100,1", value_parser = parse_layers)]
    pub layers: Widths,
    /// Training batch size.
    #[arg(long, default_value = "256", value_parser = at_least::<1>())]
    pub batch: usize,
    #[command(flatten)]
    pub dev: DeviceArgs,
}
