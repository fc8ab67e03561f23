//! `wgtrain train DATA --max-memory SIZE`, and runs whose table would not fit in memory: the
//! file streamed shard by shard (`data::StreamPlan`, `train::stream`) into `--out`.

use crate::checkpoint::Checkpoint;
use crate::cli::TrainArgs;
use crate::data::{DataSpec, StreamPlan, auto_budget, estimate_matrix_bytes, parse_size};
use crate::error::{Error, Result};
use crate::metrics::EpochMetrics;
use crate::model::{Model, init_layers_with, layer_sizes};
use crate::spec::{Loss, Task};
use crate::train::{self, Rows};

use super::train::TrainOutcome;

/// Test hook: the bytes of memory to take as available instead of /proc/meminfo's
/// MemAvailable, so a test can see the automatic switch without filling the machine.
const AVAILABLE_ENV: &str = "WGTRAIN_AVAILABLE_MEMORY";

/// The first flag given that a streamed run cannot honour: each needs every row at once
/// (folds, feature ranking, groups, series windows, a validation file or a split by
/// position). `--resume` takes its budget from the checkpoint (`cmd::train::run`).
fn unstreamable(a: &TrainArgs) -> Option<&'static str> {
    [
        ("--cv", a.cv.is_some()),
        ("--select-k", a.select_k.is_some()),
        ("--val-last", a.val_last.is_some()),
        ("--val-every", a.val_every.is_some()),
        ("--val", a.val.is_some()),
        ("--group", !a.group.is_empty()),
        ("--features", !a.features.is_empty()),
        ("--window", a.window.is_some()),
        ("--init-from", a.init_from.is_some()),
        ("--json", a.json),
        ("--resume", a.resume.is_some()),
    ]
    .into_iter()
    .find(|(_, set)| *set)
    .map(|(flag, _)| flag)
}

/// The memory budget to stream with: `--max-memory`, or (without it) half the available
/// memory when the table would not fit in memory, said in one line; `None`: train in memory.
pub fn wanted(a: &TrainArgs) -> Result<Option<u64>> {
    if let Some(s) = &a.max_memory {
        let budget = parse_size(s)?;
        if let Some(flag) = unstreamable(a) {
            return Err(Error::flag(
                format!("--max-memory, {flag}"),
                format!("{flag} needs every row in memory; it does not combine with streaming"),
            ));
        }
        return Ok(Some(budget));
    }
    if a.resume.is_some() || a.data.as_os_str() == "-" {
        return Ok(None);
    }
    // A file that cannot be estimated (missing, unreadable) is left to the loader's messages.
    let Ok(matrix) = estimate_matrix_bytes(&a.data) else {
        return Ok(None);
    };
    // The loader peaks near 2.5 × the matrix (goal of issue 11), training then holds it once
    // on the host side of the backend; 64 MiB for the program and the network.
    let need = matrix * 5 / 2 + (64 << 20);
    let available = match std::env::var(AVAILABLE_ENV).ok() {
        Some(v) => v.parse::<u128>().ok(),
        None => crate::budget::available(),
    };
    let Some(budget) = auto_budget(need, available) else {
        return Ok(None);
    };
    let human = crate::budget::human;
    let why = format!(
        "{} needs about {} to train in memory but {} is available",
        a.data.display(),
        human(need),
        human(available.unwrap_or(0))
    );
    if let Some(flag) = unstreamable(a) {
        return Err(Error::flag(
            flag,
            format!("{why}, and {flag} does not combine with streaming (--max-memory)"),
        ));
    }
    if a.out.is_none() {
        return Err(Error::flag(
            "--out",
            format!("{why}; streaming it needs --out (run folders are not streamed yet)"),
        ));
    }
    if !a.quiet {
        crate::errln!(
            "wgtrain: {why}: streaming it in shards within {} (--max-memory sets this)",
            human(budget as u128)
        );
    }
    Ok(Some(budget))
}

/// A freshly initialized model for the plan's columns, its normalizers the first pass's.
fn new_model(a: &TrainArgs, plan: &StreamPlan, loss: Loss) -> Result<Model> {
    let s = plan.schema.clone();
    let sizes = layer_sizes(s.n_features(), &a.hidden.0, s.n_outputs());
    let layers = init_layers_with(&sizes, a.activation, a.init, a.seed);
    let (x, y) = (plan.features.clone(), plan.targets.clone());
    let (x, y) = match (a.no_standardize, s.task) {
        (false, Task::Regression) => (x, y),
        (false, Task::Classification) => (x, crate::data::Normalizer::identity(0)),
        (true, Task::Regression) => (
            crate::data::Normalizer::identity(x.mean.len()),
            crate::data::Normalizer::identity(y.mean.len()),
        ),
        (true, Task::Classification) => (
            crate::data::Normalizer::identity(x.mean.len()),
            crate::data::Normalizer::identity(0),
        ),
    };
    Model::new(s, a.activation, loss, a.seed, layers, x, y)
}

/// The first pass over `a.data` within `budget` bytes of rows.
fn scan(a: &TrainArgs, budget: u64) -> Result<StreamPlan> {
    let spec = DataSpec {
        targets: &a.target,
        drop: &a.drop,
        task: a.task,
        window: None,
    };
    let mut plan = StreamPlan::scan(&a.data, &spec, budget, a.val_split, a.seed)?;
    if a.no_standardize {
        // The plan standardizes every shard with these: identity keeps the raw values.
        plan.features = crate::data::Normalizer::identity(plan.features.mean.len());
        plan.targets = crate::data::Normalizer::identity(plan.targets.mean.len());
    }
    Ok(plan)
}

/// Trains `a.data` streamed within `budget` bytes of rows into `--out` (see the module doc),
/// from its start or from `resume`, a checkpoint of such a run.
pub fn run(a: &TrainArgs, budget: u64, resume: Option<Checkpoint>) -> Result<TrainOutcome> {
    let cfg = super::train::config(a)?;
    if let Some(path) = &a.plot {
        crate::plot::format_of(path)?;
    }
    let out = a.out.clone().ok_or_else(|| {
        Error::flag(
            "--max-memory",
            "needs --out (run folders are not streamed yet)",
        )
    })?;
    // Held to the end of the run: its locks keep a second run off these files.
    let _outputs = super::train::plan_outputs(a, &out)?;
    // Before the first pass, which reads the whole file.
    let available = crate::budget::available();
    if let Some(avail) = available.filter(|&m| budget as u128 > m) {
        return Err(Error::flag(
            "--max-memory",
            format!(
                "{} is more than the {} of memory available",
                crate::budget::human(budget as u128),
                crate::budget::human(avail)
            ),
        ));
    }
    let saver = a
        .checkpoint
        .as_ref()
        .map(|p| super::resume::Saver::new(a, p).map(|s| s.streamed(budget)))
        .transpose()?;
    let plan = scan(a, budget)?;
    let loss = Loss::for_task(plan.schema.task, a.loss.map(|l| l.as_str()))?;
    let mut model = match &resume {
        Some(c) => c.model.clone(),
        None => new_model(a, &plan, loss)?,
    };
    let sizes = model.sizes();
    let batch = cfg.batch_size.min(plan.train_rows as usize).max(1);
    let mut needs =
        crate::budget::Needs::of(&sizes, batch, 0, plan.schema.target_cols(), a.optimizer);
    needs.data = budget as u128 / 4;
    crate::budget::check(&needs, available)?;
    let (dev, adapter) = (a.dev.device, a.dev.adapter.as_deref());
    let work = crate::auto::Workload {
        model: &model,
        cfg: &cfg,
        batch,
        rows: plan.shards.iter().map(|s| s.rows).max().unwrap_or(0) as usize,
    };
    let mut be = crate::auto::open_for_training(dev, adapter, work, a.dev.tune, !a.quiet)?;
    if !a.quiet {
        let count = |rows: u64| Rows {
            rows: rows as usize,
            ..Rows::default()
        };
        let val = count(plan.val_rows);
        super::train::announce(a, &model, be.as_ref(), &count(plan.train_rows), Some(&val));
        let n = plan.shards.len();
        crate::errln!(
            "wgtrain: streaming {n} shard{} within {}; validation rows held out by hash",
            if n == 1 { "" } else { "s" },
            crate::budget::human(budget as u128)
        );
    }
    let resume = resume.map(super::resume::state);
    let run = (&plan, &cfg, saver.as_ref(), resume);
    let history = train_logged(a, be.as_mut(), &mut model, run)?;
    crate::model::validate::model(&model, &out)?;
    model.save(&out)?;
    if history.interrupted {
        super::train::report_interrupt(a, &history);
    } else {
        let metric_name = super::train::metric_name(model.schema.task);
        super::train::report(a, &history, metric_name);
        if let Some(path) = &a.plot {
            super::train::draw_train_plots(a, path, be.as_mut(), &model, &history, None)?;
        }
    }
    Ok(TrainOutcome {
        model: Some(model),
        history: Some(history),
    })
}

/// What a streamed run trains on and with: the plan, the configuration, the checkpoint
/// writer (`--checkpoint`) and the run to continue (`--resume`).
type StreamRun<'a> = (
    &'a StreamPlan,
    &'a train::TrainConfig,
    Option<&'a super::resume::Saver>,
    Option<train::Resume>,
);

/// The streamed training with the epoch lines, `--metrics`, Ctrl-C and checkpoints, as
/// `train` has them.
fn train_logged(
    a: &TrainArgs,
    be: &mut dyn crate::backend::Backend,
    model: &mut Model,
    (plan, cfg, saver, resume): StreamRun,
) -> Result<train::History> {
    let metric_name = super::train::metric_name(model.schema.task);
    let mut log = super::train::metrics_log(a.metrics.as_deref(), metric_name, resume.as_ref())?;
    let mut log_err = None;
    let on_epoch = |m: &EpochMetrics| {
        if !a.quiet {
            crate::outln!("{}", super::train::epoch_line(m, metric_name));
        }
        if let Some(l) = log.as_mut()
            && let Err(e) = l.write(m)
        {
            log_err.get_or_insert(e);
        }
    };
    let mut on_checkpoint = |s: train::RunState| saver.map_or(Ok(()), |sv| sv.save(s));
    let control = train::Control {
        stop: &crate::signals::requested,
        resume,
        checkpoint_every: saver.map(|_| a.checkpoint_every),
        on_checkpoint: &mut on_checkpoint,
    };
    let history = train::stream::train_stream(be, model, plan, cfg, on_epoch, control)?;
    match log_err {
        Some(e) => Err(e),
        None => Ok(history),
    }
}
