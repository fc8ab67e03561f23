//! `wgtrain train DATA.csv --target COL`: read, split, standardize, train, save, report.

use std::path::Path;

use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::cli::{ScheduleKind, TrainArgs};
use crate::data::{DataSpec, Dataset, LoadOptions, Normalizer};
use crate::error::{Error, Result};
use crate::metrics::{EpochMetrics, MetricsLog};
use crate::model::{Model, init_layers_with, layer_sizes};
use crate::spec::{Activation, Loss, Task};
use crate::train::{self, History, Rows, Schedule, TrainConfig};

pub struct TrainOutcome {
    /// None after `--cv --no-refit`.
    pub model: Option<Model>,
    pub history: Option<History>,
}

pub fn run(a: &TrainArgs) -> Result<TrainOutcome> {
    if let Some(path) = &a.resume {
        let (orig, ckpt) = super::resume::load(a, path)?;
        // A streamed run resumes streamed, with its budget (its shards depend on it).
        return match (ckpt.stream_budget(), plain(&orig)) {
            (Some(budget), _) => super::stream::run(&orig, budget, Some(ckpt)),
            (None, true) => run_from(&orig, Some(ckpt)),
            (None, false) => run_fit(&orig, Some(ckpt)),
        };
    }
    // --max-memory, or a table that would not fit in memory: trained by streaming.
    if let Some(budget) = super::stream::wanted(a)? {
        return super::stream::run(a, budget, None);
    }
    // A plain run into --out keeps the one path with every guard (sizes, label warnings,
    // auto by measurement, Ctrl-C saving, the validator before the save).
    if plain(a) {
        return run_from(a, None);
    }
    if a.checkpoint.is_some() && a.cv.is_some() {
        return Err(Error::flag(
            "--checkpoint",
            "a checkpoint holds one training loop, and --cv runs K folds and a refit, each its \
             own loop from fresh weights (a resumed fold would also need the folds' scores so \
             far); leave out --checkpoint, or checkpoint the final model alone: train without \
             --cv, with --epochs set to the folds' mean stopping epoch that --cv prints",
        ));
    }
    // Run folders, --cv, --select-k, splits by group, --json, sweeps (cmd/fit.rs); a single
    // fit among them checkpoints too.
    run_fit(a, None)
}

/// A run into --out without the run-folder features: the `run_from` path.
fn plain(a: &TrainArgs) -> bool {
    a.out.is_some() && !uses_flow_flags(a)
}

/// Whether a flag only the run-folder path (cmd/fit.rs) handles is given.
fn uses_flow_flags(a: &TrainArgs) -> bool {
    a.cv.is_some()
        || a.select_k.is_some()
        || a.val_last.is_some()
        || !a.group.is_empty()
        || !a.features.is_empty()
        || a.init_from.is_some()
        || a.json
}

/// One fit (checkpointed with --checkpoint, continuing `resume` when given), or --cv's folds
/// and refit, into --out or a run folder. A resumed run gets a new run folder.
fn run_fit(a: &TrainArgs, resume: Option<Checkpoint>) -> Result<TrainOutcome> {
    let cfg = config(a)?;
    if let Some(path) = &a.plot {
        crate::plot::format_of(path)?;
    }
    // --out's clashes are refused before any data is read; a run folder is new, so its
    // files are planned (and locked) once it exists.
    let mut planned = match &a.out {
        Some(_) => Some(plan_run_outputs(a, &super::fit::Outputs::plan(a, None)?)?),
        None => None,
    };
    let data = super::fit::load(a)?;
    // auto times this network on both devices (before --select-k narrows the inputs).
    let probe = new_model(a, &data.ds, data.loss)?;
    let batch = cfg.batch_size.min(data.ds.rows.max(1));
    let (dev, adapter) = (a.dev.device, a.dev.adapter.as_deref());
    let work = crate::auto::Workload {
        model: &probe,
        cfg: &cfg,
        batch,
        rows: data.ds.rows,
    };
    let mut be = crate::auto::open_for_training(dev, adapter, work, a.dev.tune, !a.quiet)?;
    let mut out = super::fit::Outputs::plan(a, None)?;
    out.checkpoint = a.checkpoint.clone();
    if planned.is_none() {
        planned = Some(plan_run_outputs(a, &out)?);
    }
    let argv = train_argv();
    let o = match super::fit::run_resumed(a, &cfg, &data, be.as_mut(), &out, &argv, resume) {
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
    if let (Some(c), Some(h)) = (&a.checkpoint, &o.history)
        && h.interrupted
    {
        crate::errln!(
            "wgtrain: continue with: wgtrain train --resume {}",
            c.display()
        );
    }
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

/// The --out of a plain run ([`plain`]: every other run, checkpointed or not, goes to
/// `run_fit`, which refuses --checkpoint with --cv).
fn checkpointable(a: &TrainArgs) -> Result<std::path::PathBuf> {
    match (&a.out, uses_flow_flags(a)) {
        (Some(out), false) => Ok(out.clone()),
        _ => Err(Error::internal(
            "a run folder or a run-folder flag reached the plain --out path",
        )),
    }
}

/// A run from its start, or from a checkpoint of it.
fn run_from(a: &TrainArgs, resume: Option<Checkpoint>) -> Result<TrainOutcome> {
    let cfg = config(a)?;
    if let Some(path) = &a.plot {
        crate::plot::format_of(path)?;
    }
    let out = checkpointable(a)?;
    // Held to the end of the run: its locks keep a second run off these files.
    let _outputs = plan_outputs(a, &out)?;
    let saver = a
        .checkpoint
        .as_ref()
        .map(|p| super::resume::Saver::new(a, p))
        .transpose()?;
    let (train_ds, val_ds, loss) = read_data(a)?;
    let s = &train_ds.schema;
    let sizes = layer_sizes(s.n_features(), &a.hidden.0, s.n_outputs());
    let rows = train_ds.rows + val_ds.as_ref().map_or(0, |v| v.rows);
    let batch = a.batch_size.min(train_ds.rows.max(1));
    let needs = crate::budget::Needs::of(&sizes, batch, rows, s.target_cols(), a.optimizer);
    crate::budget::check(&needs, crate::budget::available())?;
    let mut model = match &resume {
        Some(c) => c.model.clone(),
        None => new_model(a, &train_ds, loss)?,
    };
    let train_rows = super::into_model_rows(&model, train_ds);
    let val_rows = val_ds.as_ref().map(|v| super::model_rows(&model, v));

    let batch = cfg.batch_size.min(train_rows.rows.max(1));
    // auto times a few steps of this network on the (tuned) GPU and on the CPU and keeps the
    // faster; every choice is tuned for this network.
    let work = crate::auto::Workload {
        model: &model,
        cfg: &cfg,
        batch,
        rows: train_rows.rows.max(val_rows.as_ref().map_or(0, |v| v.rows)),
    };
    let (dev, adapter) = (a.dev.device, a.dev.adapter.as_deref());
    let mut be = crate::auto::open_for_training(dev, adapter, work, a.dev.tune, !a.quiet)?;
    if !a.quiet {
        announce(a, &model, be.as_ref(), &train_rows, val_rows.as_ref());
    }
    let metric_name = metric_name(model.schema.task);
    let resume = resume.map(super::resume::state);
    let mut log = metrics_log(a.metrics.as_deref(), metric_name, resume.as_ref())?;
    let mut log_err = None;
    let mut on_checkpoint = |s: train::RunState| saver.as_ref().map_or(Ok(()), |sv| sv.save(s));
    let control = train::Control {
        stop: &crate::signals::requested,
        resume,
        checkpoint_every: saver.as_ref().map(|_| a.checkpoint_every),
        on_checkpoint: &mut on_checkpoint,
    };
    let on_epoch = |m: &EpochMetrics| {
        if !a.quiet {
            crate::outln!("{}", epoch_line(m, metric_name));
        }
        if let Some(l) = log.as_mut()
            && let Err(e) = l.write(m)
        {
            log_err.get_or_insert(e);
        }
    };
    let (tr, va) = (&train_rows, val_rows.as_ref());
    let history = train::train_with(be.as_mut(), &mut model, tr, va, &cfg, on_epoch, control)?;
    if let Some(e) = log_err {
        return Err(e);
    }
    crate::model::validate::model(&model, &out)?;
    model.save(&out)?;
    if history.interrupted {
        report_interrupt(a, &history);
        return Ok(TrainOutcome {
            model: Some(model),
            history: Some(history),
        });
    }
    report(a, &history, metric_name);
    if let Some(path) = &a.plot {
        let val = val_ds.as_ref().zip(val_rows.as_ref());
        draw_train_plots(a, path, be.as_mut(), &model, &history, val)?;
    }
    Ok(TrainOutcome {
        model: Some(model),
        history: Some(history),
    })
}

/// What an interrupted run saved, and how to go on.
pub(super) fn report_interrupt(a: &TrainArgs, history: &History) {
    let weights = match history.best_epoch {
        0 => "the weights of the last step".to_string(),
        e => format!("the weights of epoch {e}"),
    };
    let out = a
        .out
        .as_deref()
        .map_or_else(String::new, |p| p.display().to_string());
    let mut saved = vec![format!("{out} ({weights})")];
    saved.extend(
        a.metrics
            .as_ref()
            .map(|m| format!("{} ({} epochs)", m.display(), history.epochs.len())),
    );
    saved.extend(a.checkpoint.as_ref().map(|c| c.display().to_string()));
    crate::errln!(
        "wgtrain: stopped by {} after {} epochs; saved {}",
        crate::signals::which(),
        history.epochs.len(),
        saved.join(", ")
    );
    match &a.checkpoint {
        Some(c) => crate::errln!(
            "wgtrain: continue with: wgtrain train --resume {}",
            c.display()
        ),
        None => crate::errln!("wgtrain: no --checkpoint was given, so this run cannot be resumed"),
    };
}

/// The `--metrics` log; a resumed run's starts with the epochs before its checkpoint.
pub(super) fn metrics_log(
    path: Option<&Path>,
    metric_name: &str,
    resume: Option<&train::Resume>,
) -> Result<Option<MetricsLog>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let mut log = MetricsLog::create(path, metric_name)?;
    for m in resume.iter().flat_map(|r| &r.history) {
        log.write(m)?;
    }
    Ok(Some(log))
}

/// Every file an `--out` run writes, checked before any data is read: the same plan as a
/// fit's, with `--out` as the model.
pub(super) fn plan_outputs(a: &TrainArgs, out: &Path) -> Result<crate::io::Planned> {
    let outputs = super::fit::Outputs {
        dir: None,
        model: Some(out.to_path_buf()),
        metrics: a.metrics.clone(),
        plot: a.plot.clone(),
        checkpoint: None,
    };
    plan_run_outputs(a, &outputs)
}

/// Every file a fit writes (--out or a run folder's), checked before any data is read (see [`crate::io`]).
pub(super) fn plan_run_outputs(
    a: &TrainArgs,
    out: &super::fit::Outputs,
) -> Result<crate::io::Planned> {
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
    if let Some(c) = &a.checkpoint {
        plan.output("--checkpoint", c);
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
    // A value that is fine as f64 but 0 or infinite as the f32 the kernels use would train
    // nothing, or NaN.
    for (flag, v) in [
        ("--lr", Some(a.lr)),
        ("--weight-decay", Some(a.weight_decay)),
        ("--clip", a.clip),
    ] {
        if let Some(v) = v
            && (v != 0.0 && (v as f32 == 0.0 || (v as f32).is_infinite()))
        {
            return Err(Error::flag(
                flag,
                format!("{v} is {} in 32-bit floats, which training uses", v as f32),
            ));
        }
    }
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
    let spec = DataSpec {
        targets: &a.target,
        drop: &a.drop,
        task: a.task,
        window: a.window,
    };
    let load = LoadOptions {
        progress: !a.quiet,
        block_bytes: 0,
    };
    let ds = Dataset::load(&a.data, &spec, &load)?;
    let task = ds.schema.task;
    if task == Task::Regression && a.task.is_none() && !a.quiet && looks_like_labels(&ds) {
        crate::errln!(
            "wgtrain: note: '{}' holds a few integer values, read as numbers (regression); \
             add --task classification to treat them as classes",
            ds.schema.targets[0]
        );
    }
    let loss = Loss::for_task(task, a.loss.map(|l| l.as_str()))?;
    let (train_ds, val_ds) = match (&a.val, a.val_every) {
        (Some(path), _) => {
            let (v, _) = Dataset::load_for_schema(path, &ds.schema, true, &load)?;
            (ds, Some(v))
        }
        (None, Some(n)) => {
            let (tr, va) = crate::data::every_nth(ds.rows, n);
            let (tr, va) = ds.split(&tr, &va);
            (tr, Some(va))
        }
        (None, None) => {
            // A series validates on its last rows, as the lecture trains on 2017–2020 and tests on 2021.
            let (tr, va) =
                crate::data::split_indices(&ds, a.val_split, a.seed, a.window.is_some())?;
            let (tr, val) = ds.split(&tr, &va);
            (tr, (val.rows > 0).then_some(val))
        }
    };
    if !a.quiet {
        for w in label_warnings(&train_ds, val_ds.as_ref()) {
            crate::errln!("wgtrain: warning: {w}");
        }
    }
    Ok((train_ds, val_ds, loss))
}

/// Classes that only the validation rows have (the network can never predict them), and
/// labels that differ only in case or spaces (probably one class typed two ways).
pub(super) fn label_warnings(train: &Dataset, val: Option<&Dataset>) -> Vec<String> {
    let classes = &train.schema.classes;
    if train.schema.task != Task::Classification {
        return Vec::new();
    }
    let mut seen = vec![false; classes.len()];
    for &y in &train.y {
        if let Some(s) = seen.get_mut(y as usize) {
            *s = true;
        }
    }
    let mut out = Vec::new();
    let only_val: Vec<&str> = val
        .map(|v| {
            v.y.iter()
                .map(|&y| y as usize)
                .collect::<std::collections::BTreeSet<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|&c| c < classes.len() && !seen[c])
        .map(|c| classes[c].as_str())
        .collect();
    if !only_val.is_empty() {
        out.push(format!(
            "class(es) {} appear only in the validation rows; the network never sees them in training",
            crate::error::cut(&only_val.join(", "), 80)
        ));
    }
    let mut by_key: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for c in classes {
        let key: String = c
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        by_key.entry(key).or_default().push(c);
    }
    for same in by_key.values().filter(|v| v.len() > 1) {
        let quoted: Vec<String> = same.iter().map(|c| format!("'{c}'")).collect();
        out.push(format!(
            "labels {} differ only in case or spaces; they are trained as different classes",
            crate::error::cut(&quoted.join(", "), 80)
        ));
    }
    out
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

/// The closing lines on stderr: early stop, and the epoch whose weights were written.
pub(super) fn report(a: &TrainArgs, history: &History, metric_name: &str) {
    let (ran, best) = (history.epochs.len(), history.best_epoch);
    if history.stopped_early {
        crate::errln!(
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
        crate::errln!(
            "wgtrain: wrote {} after {ran} epochs{which}: train_loss {:.6}{val}",
            a.out.as_deref().unwrap_or(Path::new("")).display(),
            m.train_loss
        );
    }
}

/// The summary line to print (the one line `-q` keeps): where the model went, the epoch whose
/// weights it holds, and whether early stopping ended the run.
pub(super) fn report_line(
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

/// A single numeric target with few distinct whole values (digit labels, say): probably classes.
fn looks_like_labels(ds: &Dataset) -> bool {
    if ds.schema.targets.len() != 1 || ds.rows < 20 || ds.y.iter().any(|v| v.fract() != 0.0) {
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
