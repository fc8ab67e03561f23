//! `wgtrain sweep DATA --target COL [train flags] --grid FLAG=V1|V2|…`: every combination of
//! the grid, trained on a table read once, each in its own run folder inside one sweep folder,
//! ranked by validation loss (the mean over folds with `--cv`) into `leaderboard.csv`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::fit::{self, Data, Outputs};
use crate::backend::gpu::DeviceChoice;
use crate::cli::{SweepArgs, TrainArgs};
use crate::error::{Error, Result};
use crate::grid;
use crate::runs;

/// One configuration of the grid.
struct Config {
    combo: Vec<(String, String)>,
    args: TrainArgs,
    argv: Vec<OsString>,
    /// Its run folder, numbered in grid order.
    out: Outputs,
}

/// How one configuration ended.
struct Row {
    val_loss: f64,
    metric: f64,
    epoch: Option<u64>,
    seconds: f64,
    dir: PathBuf,
    error: Option<String>,
}

pub fn run(a: &SweepArgs) -> Result<()> {
    let (specs, opts, train_flags) = split_flags(&a.args)?;
    let axes = grid::parse_grid(&specs)?;
    let base = parse_train(&train_flags, "the train flags")?;
    refuse_outputs(&base)?;
    let configs: Vec<Config> = grid::combinations(&axes)
        .into_iter()
        .map(|combo| {
            let args = grid::apply(&train_flags, &combo);
            let mut parsed = parse_train(&args, "--grid")?;
            parsed.quiet = true;
            parsed.json = false;
            let argv = std::iter::once("train".to_string())
                .chain(args)
                .map(OsString::from)
                .collect();
            Ok(Config {
                combo,
                args: parsed,
                argv,
                out: Outputs::default(),
            })
        })
        .collect::<Result<_>>()?;
    // The data once per distinct data view (usually one); configurations share it.
    let mut views: HashMap<String, Data> = HashMap::new();
    for c in &configs {
        let key = fit::data_key(&c.args);
        if let std::collections::hash_map::Entry::Vacant(slot) = views.entry(key) {
            slot.insert(fit::load(&c.args)?);
        }
    }
    let dir = runs::create_numbered_dir(
        &base.runs,
        &format!("{}-sweep", runs::data_stem(&base.data)),
    )?;
    let mut configs = configs;
    for c in &mut configs {
        c.out = Outputs::plan(&c.args, Some(&dir))?;
    }
    let metric = views
        .values()
        .next()
        .map_or("val_metric", |d| fit::metric_name(d.ds.schema.task));
    let jobs = match base.dev.device {
        DeviceChoice::Cpu => opts
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        // One device, one queue: configurations take turns.
        _ => 1,
    }
    .clamp(1, configs.len().max(1));
    if !base.quiet {
        crate::errln!(
            "wgtrain: sweep of {} configurations over {}, {jobs} at a time, into {}/",
            configs.len(),
            axes.iter()
                .map(|x| x.flag.as_str())
                .collect::<Vec<_>>()
                .join(" × "),
            dir.display()
        );
    }
    let rows = run_all(&configs, &views, jobs, base.quiet, metric)?;
    leaderboard(&dir, &axes, &configs, &rows, metric, opts.top, base.json)
}

/// Sweep-only flags: `--grid` (repeatable), `--top N`, `--jobs N`; the rest are train flags.
struct Opts {
    top: usize,
    jobs: Option<usize>,
}

fn split_flags(args: &[String]) -> Result<(Vec<String>, Opts, Vec<String>)> {
    let mut specs = Vec::new();
    let mut opts = Opts {
        top: 10,
        jobs: None,
    };
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !matches!(name, "--grid" | "--top" | "--jobs") {
            rest.push(arg.clone());
            continue;
        }
        let value = match inline.or_else(|| it.next().cloned()) {
            Some(v) => v,
            None => return Err(Error::flag(name, "needs a value")),
        };
        let count = |v: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| Error::flag(name, format!("'{v}' is not a positive whole number")))
        };
        match name {
            "--grid" => specs.push(value),
            "--top" => opts.top = count(&value)?,
            _ => opts.jobs = Some(count(&value)?),
        }
    }
    Ok((specs, opts, rest))
}

/// Train flags as `train` parses them; clap's message names the flag.
fn parse_train(args: &[String], what: &str) -> Result<TrainArgs> {
    crate::cli::parse_train_args(args).map_err(|e| {
        let msg = e.render().to_string();
        let first = msg
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ");
        Error::flag("sweep", format!("{what}: {first}"))
    })
}

fn refuse_outputs(a: &TrainArgs) -> Result<()> {
    let named = [
        ("--out", a.out.is_some()),
        ("--metrics", a.metrics.is_some()),
        ("--plot", a.plot.is_some()),
    ];
    if let Some((flag, _)) = named.iter().find(|(_, set)| *set) {
        return Err(Error::flag(
            *flag,
            "a sweep writes each configuration's files into its own run folder",
        ));
    }
    let validates = a.cv.is_some()
        || a.val.is_some()
        || a.val_every.is_some()
        || a.val_last.is_some()
        || a.val_split > 0.0;
    if !validates {
        return Err(Error::flag(
            "--val-split",
            "a sweep ranks by validation loss: give --val-split > 0, --val-last, --val, --val-every or --cv",
        ));
    }
    if a.no_refit {
        return Err(Error::flag(
            "--no-refit",
            "a sweep keeps each configuration's model; leave --no-refit out",
        ));
    }
    Ok(())
}

/// Runs every configuration, `jobs` at a time, each worker with its own backend.
fn run_all(
    configs: &[Config],
    views: &HashMap<String, Data>,
    jobs: usize,
    quiet: bool,
    metric: &str,
) -> Result<Vec<Row>> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<Row>>> = Mutex::new((0..configs.len()).map(|_| None).collect());
    let worker = || -> Result<()> {
        let mut be = match configs.first() {
            Some(c) => c.args.dev.open()?,
            None => return Ok(()),
        };
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(c) = configs.get(i) else {
                return Ok(());
            };
            let row = run_one(c, views, be.as_mut());
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            if !quiet {
                crate::errln!(
                    "wgtrain: [{n}/{}] {}",
                    configs.len(),
                    progress(c, &row, metric)
                );
            }
            if let Ok(mut r) = rows.lock() {
                r[i] = Some(row);
            }
        }
    };
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..jobs).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::internal("a sweep worker panicked")))
            })
            .collect()
    });
    results.into_iter().collect::<Result<Vec<()>>>()?;
    let rows = rows
        .into_inner()
        .map_err(|_| Error::internal("sweep results poisoned"))?;
    rows.into_iter()
        .map(|r| r.ok_or_else(|| Error::internal("a configuration did not run")))
        .collect()
}

/// One configuration in its run folder; a failure (a learning rate that diverges, say) is
/// recorded in its row rather than ending the sweep.
fn run_one(c: &Config, views: &HashMap<String, Data>, be: &mut dyn crate::backend::Backend) -> Row {
    let start = std::time::Instant::now();
    let out = &c.out;
    let run_dir = out.dir.clone().unwrap_or_default();
    let result = match views.get(&fit::data_key(&c.args)) {
        Some(data) => crate::cmd::train::config(&c.args)
            .and_then(|cfg| fit::run(&c.args, &cfg, data, be, out, &c.argv)),
        None => Err(Error::internal("sweep: data view missing")),
    };
    let seconds = start.elapsed().as_secs_f64();
    match result {
        Ok(o) => {
            let (val_loss, metric, epoch) = score(&o.summary);
            Row {
                val_loss,
                metric,
                epoch,
                seconds,
                dir: run_dir,
                error: None,
            }
        }
        Err(e) => Row {
            val_loss: f64::NAN,
            metric: f64::NAN,
            epoch: None,
            seconds,
            dir: run_dir,
            error: Some(e.to_string()),
        },
    }
}

/// (val_loss, metric, epoch) a configuration is ranked by: the folds' means with `--cv`, else
/// the epoch whose weights the model holds.
fn score(summary: &Value) -> (f64, f64, Option<u64>) {
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    if let Some(cv) = summary.get("cv") {
        let metric = num(&cv["mean"]);
        let epoch = cv["epoch_mean"].as_f64().map(|e| e.round() as u64);
        return (num(&cv["val_loss_mean"]), metric, epoch);
    }
    let held = summary["weights_epoch"].as_u64();
    let name = summary
        .get("best")
        .and_then(|b| b.as_object())
        .and_then(|b| {
            b.keys()
                .find(|k| k.starts_with("val_") && *k != "val_loss")
                .cloned()
        });
    // `best` is the lowest validation loss; without early stopping the weights are the last
    // epoch's, so read the epoch the model holds.
    let at = if summary["best_epoch"].as_u64() == held {
        &summary["best"]
    } else {
        &summary["final"]
    };
    let metric = name.map_or(f64::NAN, |n| num(&at[&n]));
    (num(&at["val_loss"]), metric, held)
}

fn progress(c: &Config, r: &Row, metric: &str) -> String {
    let flags: Vec<String> = c.combo.iter().map(|(f, v)| format!("{f}={v}")).collect();
    match &r.error {
        Some(e) => format!("{}: failed: {e}", flags.join(" ")),
        None => format!(
            "{}: val_loss {:.6}, {} {:.4} ({:.1}s, {})",
            flags.join(" "),
            r.val_loss,
            metric,
            r.metric,
            r.seconds,
            r.dir.display()
        ),
    }
}

/// leaderboard.csv (rank, every grid flag, val_loss, the metric, best epoch, seconds, run) in
/// the sweep folder, the top rows printed; failed configurations last, with their error.
fn leaderboard(
    dir: &Path,
    axes: &[grid::Axis],
    configs: &[Config],
    rows: &[Row],
    metric: &str,
    top: usize,
    json_out: bool,
) -> Result<()> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let key = |i: usize| {
        let v = rows[i].val_loss;
        if v.is_finite() { v } else { f64::INFINITY }
    };
    order.sort_by(|&x, &y| key(x).total_cmp(&key(y)).then(x.cmp(&y)));
    let mut header: Vec<String> = vec!["rank".into()];
    header.extend(axes.iter().map(|a| a.flag.clone()));
    header.extend(
        ["val_loss", metric, "best_epoch", "seconds", "run", "error"]
            .iter()
            .map(|s| s.to_string()),
    );
    let mut table: Vec<Vec<String>> = Vec::new();
    for (rank, &i) in order.iter().enumerate() {
        let r = &rows[i];
        let mut rec = vec![(rank + 1).to_string()];
        rec.extend(configs[i].combo.iter().map(|(_, v)| v.clone()));
        let num = |v: f64| {
            if v.is_finite() {
                format!("{v}")
            } else {
                String::new()
            }
        };
        rec.push(num(r.val_loss));
        rec.push(num(r.metric));
        rec.push(r.epoch.map_or(String::new(), |e| e.to_string()));
        rec.push(format!("{:.2}", r.seconds));
        rec.push(r.dir.display().to_string());
        rec.push(r.error.clone().unwrap_or_default());
        table.push(rec);
    }
    let csv_err = |e: csv::Error| Error::internal(format!("leaderboard: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).map_err(csv_err)?;
    for rec in &table {
        w.write_record(rec).map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::internal(format!("leaderboard: {e}")))?;
    let path = dir.join("leaderboard.csv");
    crate::io::write_atomically(&path, &bytes)?;
    print_top(&header, &table, top, axes.len());
    crate::errln!(
        "wgtrain: leaderboard of {} runs in {}",
        rows.len(),
        path.display()
    );
    if json_out {
        let objs: Vec<Value> = table
            .iter()
            .map(|rec| {
                Value::Object(
                    header
                        .iter()
                        .zip(rec)
                        .map(|(h, v)| (h.clone(), json!(v)))
                        .collect(),
                )
            })
            .collect();
        crate::outln!(
            "{}",
            json!({ "leaderboard": objs, "path": path.display().to_string() })
        );
    }
    Ok(())
}

/// The first `top` rows as an aligned table on stdout (the error column only when one failed).
fn print_top(header: &[String], table: &[Vec<String>], top: usize, n_axes: usize) {
    let any_error = table
        .iter()
        .any(|r| r.last().is_some_and(|e| !e.is_empty()));
    let cols = if any_error {
        header.len()
    } else {
        header.len() - 1
    };
    let shown: Vec<Vec<String>> = table[..top.min(table.len())]
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(c, v)| {
                    if c == n_axes + 1 || c == n_axes + 2 {
                        display(v)
                    } else {
                        v.clone()
                    }
                })
                .collect()
        })
        .collect();
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            shown
                .iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    crate::outln!("{}", line(header[..cols].to_vec()));
    for r in &shown {
        crate::outln!("{}", line(r[..cols].to_vec()));
    }
}

/// A score shortened for the screen (the CSV keeps it whole).
fn display(cell: &str) -> String {
    match cell.parse::<f64>() {
        Ok(v) => format!("{v:.6}"),
        Err(_) => cell.to_string(),
    }
}
