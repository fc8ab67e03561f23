//! `train --checkpoint FILE` and `train --resume FILE`: the glue between the training loop's
//! [`RunState`] / [`Resume`] and the checkpoint file ([`crate::checkpoint`]).

use std::path::{Path, PathBuf};

use clap::Parser;

use crate::checkpoint::{Checkpoint, DataFile, Epoch, Progress};
use crate::cli::{Cli, Command, TrainArgs};
use crate::error::{Error, Result};
use crate::metrics::EpochMetrics;
use crate::train::{Resume, RunState, Snapshot};

/// Flags a resume may give besides `--resume` itself: the rest come from the checkpoint.
const RESUME_FLAGS: [&str; 4] = ["--resume", "--epochs", "--quiet", "-q"];

/// The original run's flags (from the checkpoint's command line, with `--epochs` and
/// `--quiet` of this one) and the checkpoint, once its data files are found unchanged.
pub fn load(a: &TrainArgs, path: &Path) -> Result<(TrainArgs, Checkpoint)> {
    if let Some(extra) =
        a.argv.iter().skip(2).find(|s| {
            s.starts_with('-') && !RESUME_FLAGS.contains(&s.split('=').next().unwrap_or(s))
        })
    {
        return Err(Error::flag(
            "--resume",
            format!(
                "'{}': a resumed run takes its data and flags from the checkpoint; only --epochs and --quiet may be given",
                crate::error::cut(extra, 80)
            ),
        ));
    }
    let c = Checkpoint::load(path)?;
    let argv: Vec<String> = serde_json::from_value(c.args["argv"].clone()).unwrap_or_default();
    if argv.is_empty() {
        return Err(Error::model(
            path,
            "the checkpoint holds no command line to resume (it was not written by the wgtrain binary)",
        ));
    }
    let cli = Cli::try_parse_from(&argv).map_err(|e| {
        Error::model(
            path,
            format!("its command line no longer parses: {}", e.kind()),
        )
    })?;
    let Command::Train(mut orig) = cli.command else {
        return Err(Error::model(
            path,
            "its command line is not a train command",
        ));
    };
    if orig.resume.is_some() {
        return Err(Error::model(path, "its command line is itself a resume"));
    }
    orig.argv = argv;
    // The files the checkpoint fingerprinted, by their absolute paths: a resume from another
    // folder reads the same data.
    for d in &c.data {
        match d.role.as_str() {
            "training data" => orig.data = d.path.clone(),
            _ => orig.val = Some(d.path.clone()),
        }
    }
    if a.argv
        .iter()
        .any(|s| s == "--epochs" || s.starts_with("--epochs="))
    {
        if a.epochs < c.progress.history.len() {
            return Err(Error::flag(
                "--epochs",
                format!(
                    "{} is fewer than the {} epochs the checkpoint has already run",
                    a.epochs,
                    c.progress.history.len()
                ),
            ));
        }
        orig.epochs = a.epochs;
    }
    orig.quiet |= a.quiet;
    c.check_data(path)?;
    Ok((orig, c))
}

/// The loop's state from a checkpoint.
pub fn state(c: Checkpoint) -> Resume {
    let p = &c.progress;
    Resume {
        snapshot: Snapshot {
            epoch: p.epoch,
            batch: p.batch,
            step: p.step,
            rng: c.rng_position(),
            order: c.order.clone(),
            partial_losses: p.partial_losses.clone(),
            state: c.state.iter().map(|(_, v)| v.clone()).collect(),
        },
        best: p.best,
        history: p
            .history
            .iter()
            .map(|e| EpochMetrics {
                epoch: e.epoch,
                train_loss: e.train_loss,
                val_loss: e.val_loss,
                val_metric: e.val_metric,
                seconds: e.seconds,
            })
            .collect(),
        best_model: c.best,
    }
}

/// Writes checkpoints of one run to one file.
pub struct Saver {
    path: PathBuf,
    argv: Vec<String>,
    data: Vec<DataFile>,
    stream_budget: Option<u64>,
}

impl Saver {
    /// Fingerprints the run's data files now, so a resume can tell they did not change.
    pub fn new(a: &TrainArgs, path: &Path) -> Result<Saver> {
        let mut data = vec![DataFile::of("training data", &a.data)?];
        if let Some(v) = &a.val {
            data.push(DataFile::of("--val data", v)?);
        }
        Ok(Saver {
            path: path.to_path_buf(),
            argv: a.argv.clone(),
            data,
            stream_budget: None,
        })
    }

    /// For a streamed run: its budget goes into the checkpoint, so that a resume cuts the
    /// same shards (whatever memory it finds).
    pub fn streamed(self, budget: u64) -> Saver {
        Saver {
            stream_budget: Some(budget),
            ..self
        }
    }

    pub fn save(&self, s: RunState) -> Result<()> {
        let snap = &s.snapshot;
        let c = Checkpoint {
            args: match self.stream_budget {
                Some(b) => serde_json::json!({ "argv": self.argv, "stream_budget": b }),
                None => serde_json::json!({ "argv": self.argv }),
            },
            data: self.data.clone(),
            progress: Progress {
                epoch: snap.epoch,
                batch: snap.batch,
                step: snap.step,
                rng: snap.rng.to_string(),
                best: s.best,
                history: s
                    .history
                    .iter()
                    .map(|m| Epoch {
                        epoch: m.epoch,
                        train_loss: m.train_loss,
                        val_loss: m.val_loss,
                        val_metric: m.val_metric,
                        seconds: m.seconds,
                    })
                    .collect(),
                partial_losses: snap.partial_losses.clone(),
            },
            model: s.current,
            best: s.best_model.cloned(),
            order: snap.order.clone(),
            // Zero-padded so the names sort in slab order.
            state: snap
                .state
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("optimizer.{i:02}"), v.clone()))
                .collect(),
        };
        crate::io::write_atomically(&self.path, &c.to_bytes()?)
    }
}
