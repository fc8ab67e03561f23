//! One training run from its flags, on a table already read: the data view (`--features`,
//! `--group`), the validation rows (a holdout or `--cv` folds), `--select-k` on the training
//! rows only, the fit, what is written (a run folder or `--out`) and what is printed.
//! `train` does one run; `sweep` does many on one table.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::cli::TrainArgs;
use crate::data::folds::{self, Holdout};
use crate::data::select::{drop_list, file_header, keep_features, select_columns, select_k};
use crate::data::{DataSpec, Dataset, LoadOptions, read_table};
use crate::error::{Error, Result};
use crate::model::{Model, layer_sizes};
use crate::runs;
use crate::spec::{Loss, Task};
use crate::train::{self, History, Rows, TrainConfig};

/// The rows every run of one data view shares: read and parsed once.
pub struct Data {
    /// Every row, with the `--features` / `--drop` columns.
    pub ds: Dataset,
    /// `--group`: the group of every row.
    pub groups: Option<Vec<usize>>,
    /// `--val FILE`, read with the same columns.
    pub val_file: Option<Dataset>,
    pub loss: Loss,
    /// The data files, for run.json.
    pub files: Vec<PathBuf>,
}

/// The parts of `a` that decide [`Data`] (a sweep reloads only when one of them varies).
pub fn data_key(a: &TrainArgs) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        a.target, a.drop, a.features, a.task, a.window, a.group, a.val, a.loss
    )
}

/// The dataset `a` asks for. Column patterns are expanded against the file's header first,
/// so the loader sees exact names.
pub fn load(a: &TrainArgs) -> Result<Data> {
    if a.window.is_some() && !a.features.is_empty() {
        return Err(Error::flag(
            "--features",
            "series mode (--window) builds its own features from the target",
        ));
    }
    let header = file_header(&a.data)?;
    let drop = drop_list(&header, &a.target, &a.drop, &a.features)?;
    let spec = DataSpec {
        targets: &a.target,
        drop: &drop,
        task: a.task,
        window: a.window,
    };
    let opts = LoadOptions {
        progress: !a.quiet,
        block_bytes: 0,
    };
    let ds = Dataset::load(&a.data, &spec, &opts)?;
    if a.task.is_none() && !a.quiet && ds.schema.task == Task::Classification && whole_labels(&ds) {
        crate::errln!(
            "wgtrain: note: '{}' holds {} whole-number values, read as classes; \
             add --task regression to treat them as numbers",
            ds.schema.targets[0],
            ds.schema.classes.len()
        );
    }
    let loss = Loss::for_task(ds.schema.task, a.loss.map(|l| l.as_str()))?;
    let groups = match a.group.as_slice() {
        [] => None,
        _ if a.window.is_some() => {
            return Err(Error::flag("--group", "is not for series mode (--window)"));
        }
        pats => Some(group_of_rows(a, &header, pats, &ds)?),
    };
    if groups.is_some() && (a.val.is_some() || a.val_every.is_some()) {
        return Err(Error::flag(
            "--group",
            "decides validation rows with --val-split, --val-last or --cv, not with --val / --val-every",
        ));
    }
    let mut files = vec![a.data.clone()];
    let val_file = match &a.val {
        Some(path) => {
            let (v, _) = Dataset::load_for_schema(path, &ds.schema, true, &opts)?;
            files.push(path.clone());
            Some(v)
        }
        None => None,
    };
    Ok(Data {
        ds,
        groups,
        val_file,
        loss,
        files,
    })
}

/// The `--group` of every row: from the feature matrix when every group column is a feature
/// (a one-hot block), else from the file's text.
fn group_of_rows(
    a: &TrainArgs,
    header: &[String],
    pats: &[String],
    ds: &Dataset,
) -> Result<Vec<usize>> {
    let cols = select_columns(header, "--group", pats)?;
    let names: Vec<&String> = cols.iter().map(|&c| &header[c]).collect();
    let idx: Option<Vec<usize>> = names
        .iter()
        .map(|n| ds.schema.features.iter().position(|f| f == *n))
        .collect();
    if let Some(idx) = idx {
        let nf = ds.schema.features.len();
        return Ok(folds::group_ids((0..ds.rows).map(|r| {
            idx.iter()
                .map(|&j| ds.x[r * nf + j].to_bits())
                .collect::<Vec<u32>>()
        })));
    }
    let table = read_table(&a.data)?;
    if table.records.len() != ds.rows {
        return Err(Error::internal(format!(
            "--group: {} rows as text, {} as numbers",
            table.records.len(),
            ds.rows
        )));
    }
    Ok(folds::group_keys(&table, &cols))
}

/// Class labels that are all whole numbers: inferred from a numeric column, worth a note.
fn whole_labels(ds: &Dataset) -> bool {
    ds.schema
        .classes
        .iter()
        .all(|c| c.parse::<f64>().is_ok_and(|v| v.fract() == 0.0))
}

/// Where a run writes its files.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// The run folder, when there is no `--out`.
    pub dir: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub metrics: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    /// `--checkpoint` of a single fit (`train` sets it; a --cv run or a sweep has none).
    pub checkpoint: Option<PathBuf>,
}

impl Outputs {
    /// `--out` as given, or a new folder under `--runs` (created here) holding everything.
    pub fn plan(a: &TrainArgs, root: Option<&Path>) -> Result<Outputs> {
        if let Some(path) = &a.plot {
            crate::plot::format_of(path)?;
        }
        let refit = !a.no_refit;
        if let Some(out) = &a.out {
            return Ok(Outputs {
                dir: None,
                model: refit.then(|| out.clone()),
                metrics: a.metrics.clone(),
                plot: a.plot.clone(),
                checkpoint: None,
            });
        }
        let dir = runs::create_run_dir(root.unwrap_or(&a.runs), &a.data)?;
        Ok(Outputs {
            model: refit.then(|| dir.join(runs::MODEL_FILE)),
            metrics: Some(a.metrics.clone().unwrap_or_else(|| dir.join("metrics.csv"))),
            plot: Some(a.plot.clone().unwrap_or_else(|| dir.join("loss.png"))),
            dir: Some(dir),
            checkpoint: None,
        })
    }
}

/// What a run produced.
pub struct Outcome {
    pub model: Option<Model>,
    pub history: Option<History>,
    /// The `train --json` object.
    pub summary: Value,
    /// The one line `-q` still prints (the caller prints it).
    pub line: String,
}

/// The metric a run reports beside its loss.
pub fn metric_name(task: Task) -> &'static str {
    super::train::metric_name(task)
}

/// Trains as `a` asks on `data` and writes `out`; `argv` (the train arguments, program name
/// first) goes into run.json. Prints nothing but the summary line when `a.quiet`.
pub fn run(
    a: &TrainArgs,
    cfg: &TrainConfig,
    data: &Data,
    be: &mut dyn Backend,
    out: &Outputs,
    argv: &[OsString],
) -> Result<Outcome> {
    run_resumed(a, cfg, data, be, out, argv, None)
}

/// [`run`], continuing the single fit that checkpoint `resume` (of this run) stopped in.
pub fn run_resumed(
    a: &TrainArgs,
    cfg: &TrainConfig,
    data: &Data,
    be: &mut dyn Backend,
    out: &Outputs,
    argv: &[OsString],
    resume: Option<Checkpoint>,
) -> Result<Outcome> {
    let start = Instant::now();
    let mut outcome = match a.cv {
        Some(k) => cross_validate(a, cfg, data, be, out, k)?,
        None => {
            let ck = Checkpointing {
                path: out.checkpoint.clone(),
                resume,
            };
            holdout(a, cfg, data, be, out, ck)?
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    if let Value::Object(m) = &mut outcome.summary {
        m.insert("seconds".into(), json!(seconds));
        m.insert(
            "model".into(),
            json!(out.model.as_ref().map(|p| p.display().to_string())),
        );
        m.insert(
            "run".into(),
            json!(out.dir.as_ref().map(|p| p.display().to_string())),
        );
    }
    if let Some(dir) = &out.dir {
        write_run_json(dir, a, data, be, argv, &outcome.summary, seconds)?;
    }
    Ok(outcome)
}

/// The training rows and the validation set of a single run.
fn split(a: &TrainArgs, data: &Data) -> Result<(Vec<usize>, Option<Vec<usize>>)> {
    let ds = &data.ds;
    if data.val_file.is_some() {
        return Ok(((0..ds.rows).collect(), None));
    }
    if let Some(n) = a.val_every {
        let (tr, va) = crate::data::every_nth(ds.rows, n);
        return Ok((tr, Some(va)));
    }
    let (tr, va) = folds::holdout(
        ds,
        &Holdout {
            val_split: a.val_split,
            val_last: a.val_last,
            groups: data.groups.as_deref(),
            seed: a.seed,
            chronological: a.window.is_some(),
        },
    )?;
    Ok((tr, (!va.is_empty()).then_some(va)))
}

/// The train and validation datasets for training rows `tr`, with `--select-k` ranked on `tr`
/// alone (ranking on every row would leak the validation targets into the inputs).
fn view(
    a: &TrainArgs,
    data: &Data,
    tr: &[usize],
    va: Option<&[usize]>,
    say: bool,
) -> Result<(Dataset, Option<Dataset>)> {
    let Some(k) = a.select_k else {
        let val = match va {
            Some(v) => Some(data.ds.subset(v)),
            None => data.val_file.clone(),
        };
        return Ok((data.ds.subset(tr), val));
    };
    let (keep, scores) = select_k(&data.ds, tr, k)?;
    if say {
        let shown: Vec<String> = keep
            .iter()
            .map(|&j| format!("{} ({:.4})", data.ds.schema.features[j], scores[j]))
            .collect();
        let by = match data.ds.schema.task {
            Task::Regression => "F of |Pearson r|",
            Task::Classification => "ANOVA F",
        };
        crate::errln!(
            "wgtrain: --select-k {k} keeps, by {by} on the training rows: {}",
            shown.join(", ")
        );
    }
    let base = keep_features(&data.ds, &keep);
    let val = match va {
        Some(v) => Some(base.subset(v)),
        None => data.val_file.as_ref().map(|v| keep_features(v, &keep)),
    };
    Ok((base.subset(tr), val))
}

/// A model to train on `train_ds`: fresh, or `--init-from`'s weights and normalizers.
fn start_model(a: &TrainArgs, train_ds: &Dataset, loss: Loss) -> Result<Model> {
    let mut model = super::train::new_model(a, train_ds, loss)?;
    let Some(from) = &a.init_from else {
        return Ok(model);
    };
    let path = runs::resolve_model(from)?;
    let old = Model::load(&path)?;
    let bad = |msg: String| Error::flag("--init-from", format!("{}: {msg}", path.display()));
    if old.schema.features != model.schema.features {
        return Err(bad(format!(
            "the model's {} features are not this run's {} (same columns in the same order needed)",
            old.schema.features.len(),
            model.schema.features.len()
        )));
    }
    if old.schema.task != model.schema.task
        || old.schema.targets != model.schema.targets
        || old.schema.classes != model.schema.classes
    {
        return Err(bad(format!(
            "the model predicts {} ({}), this run {} ({})",
            old.schema.targets.join(","),
            old.schema.task.as_str(),
            model.schema.targets.join(","),
            model.schema.task.as_str()
        )));
    }
    let want = layer_sizes(model.schema.features.len(), &a.hidden.0, model.outputs());
    if old.sizes() != want {
        let dash = |v: Vec<usize>| {
            v.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("-")
        };
        return Err(bad(format!(
            "the model is {}, the flags ask for {}: give --hidden {}",
            dash(old.sizes()),
            dash(want),
            old.hidden()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )));
    }
    model.layers = old.layers;
    model.normalizer = old.normalizer;
    model.target_normalizer = old.target_normalizer;
    Ok(model)
}

/// One fit: the model, its history and the validation rows as the network saw them.
struct Fit {
    model: Model,
    history: History,
    val_rows: Option<Rows>,
}

/// The checkpoint file of a single fit and the checkpoint it continues (a --cv fold or refit
/// has neither: one checkpoint holds one training loop).
#[derive(Default)]
struct Checkpointing {
    path: Option<PathBuf>,
    resume: Option<Checkpoint>,
}

#[allow(clippy::too_many_arguments)]
fn fit_one(
    a: &TrainArgs,
    cfg: &TrainConfig,
    loss: Loss,
    (train_ds, val_ds): (&Dataset, Option<&Dataset>),
    be: &mut dyn Backend,
    metrics: Option<&Path>,
    show: bool,
    ck: Checkpointing,
) -> Result<Fit> {
    let s = &train_ds.schema;
    let sizes = crate::model::layer_sizes(s.n_features(), &a.hidden.0, s.n_outputs());
    let batch = cfg.batch_size.min(train_ds.rows.max(1));
    let rows = train_ds.rows + val_ds.map_or(0, |v| v.rows);
    let needs = crate::budget::Needs::of(&sizes, batch, rows, s.target_cols(), a.optimizer);
    crate::budget::check(&needs, crate::budget::available())?;
    if show {
        for w in super::train::label_warnings(train_ds, val_ds) {
            crate::errln!("wgtrain: warning: {w}");
        }
    }
    let saver = ck
        .path
        .as_ref()
        .map(|p| super::resume::Saver::new(a, p))
        .transpose()?;
    // A resumed fit starts from the checkpoint's model (weights and normalizers).
    let mut model = match &ck.resume {
        Some(c) => c.model.clone(),
        None => start_model(a, train_ds, loss)?,
    };
    let resume = ck.resume.map(super::resume::state);
    super::tune_for(be, &model.sizes(), batch, a.dev.tune, !a.quiet)?;
    let train_rows = super::model_rows(&model, train_ds);
    let val_rows = val_ds.map(|v| super::model_rows(&model, v));
    if show {
        super::train::announce(a, &model, be, &train_rows, val_rows.as_ref());
    }
    let name = metric_name(model.schema.task);
    let mut log = super::train::metrics_log(metrics, name, resume.as_ref())?;
    let mut log_err = None;
    let mut on_checkpoint = |s: train::RunState| saver.as_ref().map_or(Ok(()), |sv| sv.save(s));
    // The first Ctrl-C ends the run at this step; the caller saves what it has (exit 130).
    let control = train::Control {
        stop: &crate::signals::requested,
        resume,
        checkpoint_every: saver.as_ref().map(|_| a.checkpoint_every),
        on_checkpoint: &mut on_checkpoint,
    };
    let history = train::train_with(
        be,
        &mut model,
        &train_rows,
        val_rows.as_ref(),
        &TrainConfig {
            progress: show,
            ..cfg.clone()
        },
        |m| {
            if show {
                crate::outln!("{}", super::train::epoch_line(m, name));
            }
            if let Some(l) = log.as_mut()
                && let Err(e) = l.write(m)
            {
                log_err.get_or_insert(e);
            }
        },
        control,
    )?;
    if let Some(e) = log_err {
        return Err(e);
    }
    if history.interrupted && a.cv.is_some() {
        // A fold cut short says nothing, and a refit would save a barely trained model.
        return Err(Error::training(
            "stopped by a signal during --cv; no model was written",
        ));
    }
    Ok(Fit {
        model,
        history,
        val_rows,
    })
}

/// `--val-split` / `--val-last` / `--val-every` / `--val`: one model.
fn holdout(
    a: &TrainArgs,
    cfg: &TrainConfig,
    data: &Data,
    be: &mut dyn Backend,
    out: &Outputs,
    ck: Checkpointing,
) -> Result<Outcome> {
    let (tr, va) = split(a, data)?;
    let (train_ds, val_ds) = view(a, data, &tr, va.as_deref(), !a.quiet)?;
    let fit = fit_one(
        a,
        cfg,
        data.loss,
        (&train_ds, val_ds.as_ref()),
        be,
        out.metrics.as_deref(),
        !a.quiet,
        ck,
    )?;
    conclude(
        a,
        out,
        be,
        fit,
        (&train_ds, val_ds.as_ref()),
        Map::new(),
        "",
    )
}

/// What every fit ends with: the model validated and saved, the run's summary (`extra` adds
/// keys), the report line (`suffix` ends it) and the plots.
fn conclude(
    a: &TrainArgs,
    out: &Outputs,
    be: &mut dyn Backend,
    fit: Fit,
    (train_ds, val_ds): (&Dataset, Option<&Dataset>),
    extra: Map<String, Value>,
    suffix: &str,
) -> Result<Outcome> {
    if let Some(path) = &out.model {
        crate::model::validate::model(&fit.model, path)?;
        fit.model.save(path)?;
    }
    let name = metric_name(fit.model.schema.task);
    let mut summary = history_json(&fit.history, name);
    if let Value::Object(m) = &mut summary {
        m.insert("task".into(), json!(fit.model.schema.task.as_str()));
        m.insert("features".into(), json!(fit.model.schema.features));
        m.insert("train_rows".into(), json!(train_ds.rows));
        m.insert("val_rows".into(), json!(val_ds.map_or(0, |v| v.rows)));
        m.extend(extra);
    }
    let line = super::train::report_line(a, out, &fit.history, name, suffix);
    if let Some(path) = &out.plot {
        let val = val_ds.zip(fit.val_rows.as_ref());
        super::train::draw_train_plots(a, path, be, &fit.model, &fit.history, val)?;
    }
    Ok(Outcome {
        model: Some(fit.model),
        history: Some(fit.history),
        summary,
        line,
    })
}

/// `{epochs_run, best_epoch, weights_epoch, final, best}` of a history: `best` is the epoch of
/// the lowest validation loss (the last epoch without validation rows), `weights_epoch` the
/// one whose weights the model holds.
pub fn history_json(h: &History, metric: &str) -> Value {
    let epoch = |m: &crate::metrics::EpochMetrics| {
        let mut o = Map::new();
        o.insert("epoch".into(), json!(m.epoch));
        o.insert("train_loss".into(), json!(m.train_loss));
        o.insert("val_loss".into(), json!(m.val_loss));
        o.insert(metric.into(), json!(m.val_metric));
        Value::Object(o)
    };
    let best = h
        .epochs
        .iter()
        .filter(|m| m.val_loss.is_some_and(f64::is_finite))
        .min_by(|x, y| {
            x.val_loss
                .unwrap_or(0.0)
                .total_cmp(&y.val_loss.unwrap_or(0.0))
        })
        .or(h.epochs.last());
    json!({
        "epochs_run": h.epochs.len(),
        "best_epoch": best.map(|m| m.epoch),
        "weights_epoch": h.best_epoch,
        "final": h.epochs.last().map(epoch),
        "best": best.map(epoch),
    })
}

/// The metrics of the epoch whose weights a model holds: (val_loss, val_metric, epoch).
fn held(h: &History) -> (f64, f64, usize) {
    let m = h
        .epochs
        .get(h.best_epoch.wrapping_sub(1))
        .or(h.epochs.last());
    (
        m.and_then(|m| m.val_loss).unwrap_or(f64::NAN),
        m.and_then(|m| m.val_metric).unwrap_or(f64::NAN),
        m.map_or(0, |m| m.epoch),
    )
}

/// Mean and population standard deviation (numpy's default, what `scores.std()` prints).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// `--cv K`: K folds, each printed, the mean ± std, then a refit on every row.
fn cross_validate(
    a: &TrainArgs,
    cfg: &TrainConfig,
    data: &Data,
    be: &mut dyn Backend,
    out: &Outputs,
    k: usize,
) -> Result<Outcome> {
    let fold = folds::cv_folds(&data.ds, k, a.seed, data.groups.as_deref())?;
    let name = metric_name(data.ds.schema.task);
    let mut records = Vec::with_capacity(k);
    let (mut losses, mut metrics, mut epochs) = (Vec::new(), Vec::new(), Vec::new());
    for f in 0..k {
        let (tr, va) = folds::fold_split(&fold, f);
        let (train_ds, val_ds) = view(a, data, &tr, Some(&va), false)?;
        let fit = fit_one(
            a,
            cfg,
            data.loss,
            (&train_ds, val_ds.as_ref()),
            be,
            None,
            false,
            Checkpointing::default(),
        )?;
        let (loss, metric, epoch) = held(&fit.history);
        if !a.quiet {
            crate::errln!(
                "wgtrain: fold {}/{k}: {} train / {} val rows, epoch {epoch}: val_loss {loss:.6}, {name} {metric:.4}",
                f + 1,
                tr.len(),
                va.len()
            );
        }
        let mut r = Map::new();
        r.insert("fold".into(), json!(f + 1));
        r.insert("train_rows".into(), json!(tr.len()));
        r.insert("val_rows".into(), json!(va.len()));
        r.insert("epoch".into(), json!(epoch));
        r.insert("val_loss".into(), json!(loss));
        r.insert(name.into(), json!(metric));
        records.push(Value::Object(r));
        losses.push(loss);
        metrics.push(metric);
        epochs.push(epoch);
    }
    let (m, s) = mean_std(&metrics);
    let (lm, ls) = mean_std(&losses);
    let cv_line = format!("cv {k} folds: {name} {m:.4} ± {s:.4}, val_loss {lm:.6} ± {ls:.6}");
    let epoch_mean = epochs.iter().sum::<usize>() as f64 / k as f64;
    let cv = json!({
        "k": k, "metric": name, "folds": records, "mean": m, "std": s,
        "val_loss_mean": lm, "val_loss_std": ls, "epoch_mean": epoch_mean,
    });
    if a.no_refit {
        let line = format!("wgtrain: {cv_line} (no refit)");
        let summary = json!({ "task": data.ds.schema.task.as_str(), "cv": cv });
        return Ok(Outcome {
            model: None,
            history: None,
            summary,
            line,
        });
    }
    if !a.quiet {
        crate::errln!("wgtrain: {cv_line}");
    }
    refit(a, cfg, data, be, out, (cv, &cv_line), &epochs)
}

/// After `--cv`: one model on every row, written to the outputs. With `--patience` (which
/// needs validation rows this fit lacks) it trains for the folds' mean stopping epoch.
fn refit(
    a: &TrainArgs,
    cfg: &TrainConfig,
    data: &Data,
    be: &mut dyn Backend,
    out: &Outputs,
    (cv, cv_line): (Value, &str),
    fold_epochs: &[usize],
) -> Result<Outcome> {
    let all: Vec<usize> = (0..data.ds.rows).collect();
    let mut cfg = cfg.clone();
    if cfg.patience.take().is_some() {
        let mean = fold_epochs.iter().sum::<usize>() as f64 / fold_epochs.len().max(1) as f64;
        cfg.epochs = (mean.round() as usize).max(1);
        if !a.quiet {
            crate::errln!(
                "wgtrain: refit on all {} rows for {} epochs, the folds' mean stopping epoch",
                all.len(),
                cfg.epochs
            );
        }
    }
    let (train_ds, _) = view(a, data, &all, None, !a.quiet)?;
    let fit = fit_one(
        a,
        &cfg,
        data.loss,
        (&train_ds, None),
        be,
        out.metrics.as_deref(),
        !a.quiet,
        Checkpointing::default(),
    )?;
    let extra = Map::from_iter([("cv".to_string(), cv)]);
    conclude(
        a,
        out,
        be,
        fit,
        (&train_ds, None),
        extra,
        &format!("; {cv_line}"),
    )
}

/// run.json: what made the model in a run folder.
fn write_run_json(
    dir: &Path,
    a: &TrainArgs,
    data: &Data,
    be: &dyn Backend,
    argv: &[OsString],
    result: &Value,
    seconds: f64,
) -> Result<()> {
    use clap::Args;
    let cmd = TrainArgs::augment_args(clap::Command::new("train"));
    let flags = match cmd.clone().try_get_matches_from(argv) {
        Ok(m) => runs::flags_json(&cmd, &m),
        Err(_) => Value::Null,
    };
    let files: Vec<Value> = data
        .files
        .iter()
        .map(|p| runs::file_record(p))
        .collect::<Result<_>>()?;
    let when = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let record = json!({
        "wgtrain": env!("CARGO_PKG_VERSION"),
        "args": argv.iter().skip(1).map(|s| s.to_string_lossy()).collect::<Vec<_>>(),
        "flags": flags,
        "data": files,
        "target": a.target,
        "device": be.describe(),
        "finished_unix": when,
        "seconds": seconds,
        "result": result,
    });
    let text = serde_json::to_string_pretty(&record)
        .map_err(|e| Error::internal(format!("run.json: {e}")))?;
    crate::io::write_atomically(&dir.join("run.json"), format!("{text}\n").as_bytes())
}
