//! `wgtrain train DATA.csv --target COL`: read, split, standardize, train, save, report.

use std::path::Path;

use crate::backend::Backend;
use crate::cli::{ScheduleKind, TrainArgs};
use crate::data::{Dataset, Normalizer};
use crate::error::{Error, Result};
use crate::metrics::EpochMetrics;
use crate::model::{Model, init_layers_with, layer_sizes};
use crate::spec::{Activation, Loss, Task};
use crate::train::{self, History, Rows, Schedule, TrainConfig};

pub struct TrainOutcome {
    /// None after `--cv --no-refit`.
    pub model: Option<Model>,
    pub history: Option<History>,
}

pub fn run(a: &TrainArgs) -> Result<TrainOutcome> {
    let cfg = config(a)?;
    if let Some(path) = &a.plot {
        crate::plot::format_of(path)?;
    }
    // --out's clashes are refused before any data is read; a run folder is new, so its
    // files are planned (and locked) once it exists.
    let mut planned = match &a.out {
        Some(_) => Some(plan_outputs(a, &super::fit::Outputs::plan(a, None)?)?),
        None => None,
    };
    let data = super::fit::load(a)?;
    let mut be = a.dev.open()?;
    let out = super::fit::Outputs::plan(a, None)?;
    if planned.is_none() {
        planned = Some(plan_outputs(a, &out)?);
    }
    let o = match super::fit::run(a, &cfg, &data, be.as_mut(), &out, &train_argv()) {
        Ok(o) => o,
        Err(e) => {
            // A failed run leaves no half-filled run folder behind to be mistaken for a result.
            if let Some(dir) = &out.dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            return Err(e);
        }
    };
    drop(planned);
    crate::errln!("{}", o.line);
    if a.json {
        crate::outln!("{}", o.summary);
    }
    Ok(TrainOutcome {
        model: o.model,
        history: o.history,
    })
}

/// This process's arguments from `train` on (`train` standing in for the program name), for
/// run.json; empty when the process was not started as `wgtrain train` (a test, say).
fn train_argv() -> Vec<std::ffi::OsString> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.iter().position(|s| s == "train") {
        Some(i) => args[i..].to_vec(),
        None => Vec::new(),
    }
}

/// Every file this run writes, checked before any data is read (see [`crate::io`]).
pub(super) fn plan_outputs(a: &TrainArgs, out: &super::fit::Outputs) -> Result<crate::io::Planned> {
    let mut plan = crate::io::OutputPlan::new();
    plan.input("the training data", &a.data);
    if let Some(v) = &a.val {
        plan.input("the --val data", v);
    }
    if let Some(m) = &out.model {
        plan.output("--out", m);
    }
    if let Some(m) = &out.metrics {
        plan.output("--metrics", m);
    }
    if let Some(p) = &out.plot {
        plan.output("--plot", &crate::plot::accuracy_path(p));
        plan.output("--plot", p);
        // The predictions plot beside it (drawn for regression only; planned anyway).
        let pred = crate::plot::predictions_path;
        if a.target.len() > 1 {
            for t in &a.target {
                plan.output("--plot", &pred(p, Some(t)));
            }
        } else {
            plan.output("--plot", &pred(p, None));
        }
    }
    plan.check()
}

/// The training hyper-parameters; clap has checked each flag alone, this checks them together.
pub(super) fn config(a: &TrainArgs) -> Result<TrainConfig> {
    if a.activation == Activation::Identity {
        return Err(Error::flag(
            "--activation",
            "use --hidden none for a linear model; hidden layers take relu or sigmoid",
        ));
    }
    let schedule = match a.lr_schedule {
        ScheduleKind::Constant => Schedule::Constant,
        ScheduleKind::Step => Schedule::Step {
            every: a.lr_step,
            gamma: a.lr_gamma,
        },
        ScheduleKind::Cosine if a.lr_min < a.lr => Schedule::Cosine { min: a.lr_min },
        ScheduleKind::Cosine => {
            return Err(Error::flag(
                "--lr-min",
                format!("{} must be in [0, --lr)", a.lr_min),
            ));
        }
    };
    Ok(TrainConfig {
        optimizer: a.optimizer,
        lr: a.lr as f32,
        schedule,
        batch_size: a.batch_size,
        epochs: a.epochs,
        seed: a.seed,
        weight_decay: a.weight_decay as f32,
        patience: a.patience,
        clip: a.clip.map(|c| c as f32),
        progress: !a.quiet,
    })
}

/// A freshly initialized model whose normalizers are fitted on the training rows.
pub(super) fn new_model(a: &TrainArgs, train_ds: &Dataset, loss: Loss) -> Result<Model> {
    let schema = train_ds.schema.clone();
    let (d, n_out, rows) = (schema.n_features(), schema.n_outputs(), train_ds.rows);
    let standardize = !a.no_standardize;
    let normalizer = if standardize {
        Normalizer::fit(&train_ds.x, rows, d)
    } else {
        Normalizer::identity(d)
    };
    let target_normalizer = match schema.task {
        Task::Regression if standardize => Normalizer::fit(&train_ds.y, rows, n_out),
        Task::Regression => Normalizer::identity(n_out),
        Task::Classification => Normalizer::identity(0),
    };
    let sizes = layer_sizes(d, &a.hidden.0, n_out);
    let layers = init_layers_with(&sizes, a.activation, a.init, a.seed);
    Model::new(
        schema,
        a.activation,
        loss,
        a.seed,
        layers,
        normalizer,
        target_normalizer,
    )
}

/// The one line on stderr that says what is about to be trained, on what.
pub(super) fn announce(
    a: &TrainArgs,
    model: &Model,
    be: &dyn Backend,
    tr: &Rows,
    val: Option<&Rows>,
) {
    let d = model.layers.first().map_or(0, |l| l.inputs);
    let shape: Vec<String> = model
        .layers
        .first()
        .map(|l| l.inputs)
        .into_iter()
        .chain(model.layers.iter().map(|l| l.outputs))
        .map(|s| s.to_string())
        .collect();
    crate::errln!(
        "wgtrain: {} on {}: {} train / {} val rows, {} {}, mlp {} ({} parameters, {}), {} lr {} batch {}",
        model.schema.task.as_str(),
        be.describe(),
        tr.rows,
        val.map_or(0, |v| v.rows),
        d,
        if d == 1 { "feature" } else { "features" },
        shape.join("-"),
        model.parameter_count(),
        a.activation.as_str(),
        a.optimizer.as_str(),
        a.lr,
        a.batch_size,
    );
}

pub(super) fn metric_name(task: Task) -> &'static str {
    match task {
        Task::Classification => "val_accuracy",
        Task::Regression => "val_rmse",
    }
}

/// The summary line to print (the one line `-q` keeps): where the model went, the epoch whose
/// weights it holds, and whether early stopping ended the run.
pub(super) fn report(
    a: &TrainArgs,
    out: &super::fit::Outputs,
    history: &History,
    metric_name: &str,
    extra: &str,
) -> String {
    let (ran, best) = (history.epochs.len(), history.best_epoch);
    let Some(m) = history.epochs.get(best.wrapping_sub(1)) else {
        return String::new();
    };
    let val = match (m.val_loss, m.val_metric) {
        (Some(l), Some(v)) => format!(", val_loss {l:.6}, {metric_name} {v:.4}"),
        _ => String::new(),
    };
    let which = match (history.stopped_early, best == ran) {
        (true, _) => format!(
            " (stopped early at epoch {ran}: val_loss has not improved for {} epochs; weights of epoch {best})",
            a.patience.unwrap_or(0)
        ),
        (false, true) => String::new(),
        (false, false) => format!(" (weights of epoch {best})"),
    };
    let wrote = match (&out.dir, &out.model) {
        (Some(dir), _) => format!("run folder {}/", dir.display()),
        (None, Some(model)) => model.display().to_string(),
        (None, None) => "nothing".to_string(),
    };
    format!(
        "wgtrain: wrote {wrote} after {ran} epochs{which}: train_loss {:.6}{val}{extra}",
        m.train_loss
    )
}

/// `train --plot`: the loss curves, and for regression with validation rows, predicted vs real.
pub(super) fn draw_train_plots(
    a: &TrainArgs,
    path: &Path,
    be: &mut dyn Backend,
    model: &Model,
    history: &History,
    val: Option<(&Dataset, &Rows)>,
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
    // Under -q only a --plot the user named is announced (not the run folder's own).
    let say = !a.quiet || a.plot.is_some();
    if say {
        crate::errln!("wgtrain: loss curves in {}", path.display());
    }
    if model.schema.task == Task::Classification {
        let acc = crate::plot::accuracy_path(path);
        let title = format!("{data_name}: validation accuracy per epoch");
        if crate::plot::accuracy_curve(&acc, &history.epochs, &title)? && say {
            crate::errln!("wgtrain: validation accuracy in {}", acc.display());
        }
    }
    if let (Task::Regression, Some((ds, rows))) = (model.schema.task, val)
        && rows.rows > 0
    {
        let pred = train::predict(be, model, &rows.x, rows.rows)?;
        let n = model.outputs();
        for (j, name) in model.schema.targets.iter().enumerate() {
            let column = |v: &[f32]| v.iter().skip(j).step_by(n).copied().collect::<Vec<f32>>();
            let out = crate::plot::predictions_path(path, (n > 1).then_some(name.as_str()));
            let title =
                format!("{data_name}: {name}, real (blue) and predicted (red) on validation rows");
            crate::plot::predictions(&out, &column(&ds.y), &column(&pred), &title)?;
            if say {
                crate::errln!("wgtrain: predictions vs real values in {}", out.display());
            }
        }
    }
    Ok(())
}

pub fn epoch_line(m: &EpochMetrics, metric_name: &str) -> String {
    let mut s = format!("epoch {:>4}  train_loss {:>12.6}", m.epoch, m.train_loss);
    if let (Some(l), Some(v)) = (m.val_loss, m.val_metric) {
        s += &format!("  val_loss {l:>12.6}  {metric_name} {v:>9.4}");
    }
    s + &format!("  {:>7.3}s", m.seconds)
}
