//! `wgtrain train DATA.csv --target COL`: read, split, standardize, train, save, report.

use std::path::Path;

use crate::backend::Backend;
use crate::cli::{ScheduleKind, TrainArgs};
use crate::data::{DataSpec, Dataset, Normalizer, read_table};
use crate::error::{Error, Result};
use crate::metrics::{EpochMetrics, MetricsLog};
use crate::model::{Model, init_layers_with, layer_sizes};
use crate::spec::{Activation, Loss, Task};
use crate::train::{self, History, Rows, Schedule, TrainConfig};

pub struct TrainOutcome {
    pub model: Model,
    pub history: History,
}

pub fn run(a: &TrainArgs) -> Result<TrainOutcome> {
    let cfg = config(a)?;
    if let Some(path) = &a.plot {
        crate::plot::format_of(path)?;
    }
    let (train_ds, val_ds, loss) = read_data(a)?;
    let mut model = new_model(a, &train_ds, loss);
    let train_rows = super::model_rows(&model, &train_ds);
    let val_rows = val_ds.as_ref().map(|v| super::model_rows(&model, v));

    let mut be = a.dev.open()?;
    if !a.quiet {
        announce(a, &model, be.as_ref(), &train_rows, val_rows.as_ref());
    }
    let metric_name = metric_name(model.task);
    let mut log = match &a.metrics {
        Some(path) => Some(MetricsLog::create(path, metric_name)?),
        None => None,
    };
    let mut log_err = None;
    let history = train::train(
        be.as_mut(),
        &mut model,
        &train_rows,
        val_rows.as_ref(),
        &cfg,
        |m| {
            if !a.quiet {
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
    report(a, &history, metric_name);
    if let Some(path) = &a.plot {
        let val = val_ds.as_ref().zip(val_rows.as_ref());
        draw_train_plots(a, path, be.as_mut(), &model, &history, val)?;
    }
    Ok(TrainOutcome { model, history })
}

/// The training hyper-parameters; clap has checked each flag alone, this checks them together.
fn config(a: &TrainArgs) -> Result<TrainConfig> {
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

/// The training rows, the validation rows (`--val`, `--val-every` or `--val-split`), and the
/// loss the task takes.
fn read_data(a: &TrainArgs) -> Result<(Dataset, Option<Dataset>, Loss)> {
    let table = read_table(&a.data)?;
    let spec = DataSpec {
        targets: &a.target,
        drop: &a.drop,
        task: a.task,
        window: a.window,
    };
    let ds = Dataset::from_table(&table, &spec)?;
    if ds.task == Task::Regression && a.task.is_none() && !a.quiet && looks_like_labels(&ds) {
        eprintln!(
            "wgtrain: note: '{}' holds a few integer values, read as numbers (regression); \
             add --task classification to treat them as classes",
            ds.targets[0]
        );
    }
    let loss = Loss::for_task(ds.task, a.loss.map(|l| l.as_str()))?;
    let (train_ds, val_ds) = match (&a.val, a.val_every) {
        (Some(path), _) => {
            let vt = read_table(path)?;
            let (v, _) = Dataset::for_model(
                &vt,
                &ds.features,
                &ds.targets,
                ds.task,
                &ds.classes,
                a.window,
                true,
            )?;
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
    Ok((train_ds, val_ds, loss))
}

/// A freshly initialized model whose normalizers are fitted on the training rows.
fn new_model(a: &TrainArgs, train_ds: &Dataset, loss: Loss) -> Model {
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
    let sizes = layer_sizes(d, &a.hidden.0, n_out);
    Model {
        task: train_ds.task,
        activation: a.activation,
        loss,
        features: train_ds.features.clone(),
        targets: train_ds.targets.clone(),
        classes: train_ds.classes.clone(),
        seed: a.seed,
        window: a.window,
        layers: init_layers_with(&sizes, a.activation, a.init, a.seed),
        feature_mean: fnorm.mean,
        feature_std: fnorm.std,
        target_mean: tnorm.mean,
        target_std: tnorm.std,
    }
}

/// The one line on stderr that says what is about to be trained, on what.
fn announce(a: &TrainArgs, model: &Model, be: &dyn Backend, tr: &Rows, val: Option<&Rows>) {
    let d = model.layers.first().map_or(0, |l| l.inputs);
    let shape: Vec<String> = model
        .layers
        .first()
        .map(|l| l.inputs)
        .into_iter()
        .chain(model.layers.iter().map(|l| l.outputs))
        .map(|s| s.to_string())
        .collect();
    eprintln!(
        "wgtrain: {} on {}: {} train / {} val rows, {} {}, mlp {} ({} parameters, {}), {} lr {} batch {}",
        model.task.as_str(),
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

fn metric_name(task: Task) -> &'static str {
    match task {
        Task::Classification => "val_accuracy",
        Task::Regression => "val_rmse",
    }
}

/// The closing lines on stderr: early stop, and the epoch whose weights were written.
fn report(a: &TrainArgs, history: &History, metric_name: &str) {
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
}

/// `train --plot`: the loss curves, and for regression with validation rows, predicted vs real.
fn draw_train_plots(
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
    eprintln!("wgtrain: loss curves in {}", path.display());
    if let (Task::Regression, Some((ds, rows))) = (model.task, val)
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
