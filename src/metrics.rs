//! The per-epoch metrics file (`train --metrics`), written and read back (`wgtrain plot`) by
//! the same serde record, so the two cannot drift apart.
//!
//! Columns: `epoch,train_loss,val_loss,<val_accuracy|val_rmse>,seconds`; the validation cells
//! are empty when training had no validation rows.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// One epoch of training, as printed, logged and plotted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    /// Mean loss over the epoch's batches, weighted by rows, in the target's own units.
    #[serde(serialize_with = "shortest")]
    pub train_loss: f64,
    #[serde(serialize_with = "shortest_opt")]
    pub val_loss: Option<f64>,
    /// Accuracy for classification, RMSE (target units) for regression. The column is named
    /// after which one it is.
    #[serde(
        rename = "val_metric",
        alias = "val_accuracy",
        alias = "val_rmse",
        serialize_with = "shortest_opt"
    )]
    pub val_metric: Option<f64>,
    #[serde(serialize_with = "four_places", deserialize_with = "empty_is_zero")]
    pub seconds: f64,
}

/// The header's fixed columns around the validation metric's name.
const LEADING: [&str; 3] = ["epoch", "train_loss", "val_loss"];
const TRAILING: &str = "seconds";
/// The names the validation metric column can have.
pub const METRIC_NAMES: [&str; 2] = ["val_accuracy", "val_rmse"];

// Rust's `{}` (the shortest text that reads back to the same f64) rather than the csv
// crate's float format, so files stay byte-identical to what earlier versions wrote.
fn shortest<S: Serializer>(v: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}
fn shortest_opt<S: Serializer>(v: &Option<f64>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_str(""),
    }
}
fn four_places<S: Serializer>(v: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:.4}"))
}
fn empty_is_zero<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(0.0))
}

/// A metrics file being written one epoch at a time, flushed after each so a run that is
/// stopped still leaves every finished epoch on disk.
pub struct MetricsLog {
    path: PathBuf,
    w: csv::Writer<std::fs::File>,
}

impl MetricsLog {
    /// Creates (truncates) `path` and writes the header; `metric_name` is one of
    /// [`METRIC_NAMES`].
    pub fn create(path: &Path, metric_name: &str) -> Result<Self> {
        let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut log = MetricsLog {
            path: path.to_path_buf(),
            w: csv::WriterBuilder::new().has_headers(false).from_writer(f),
        };
        let [a, b, c] = LEADING;
        log.w
            .write_record([a, b, c, metric_name, TRAILING])
            .map_err(|e| log.err(e))?;
        Ok(log)
    }

    pub fn write(&mut self, m: &EpochMetrics) -> Result<()> {
        self.w.serialize(m).map_err(|e| self.err(e))?;
        self.w.flush().map_err(|e| Error::io(&self.path, e))
    }

    fn err(&self, e: csv::Error) -> Error {
        match e.into_kind() {
            csv::ErrorKind::Io(io) => Error::io(&self.path, io),
            other => Error::internal(format!("{}: {other:?}", self.path.display())),
        }
    }
}

/// Reads a metrics file back. Errors name the file, line and (where known) column.
pub fn read(path: &Path) -> Result<Vec<EpochMetrics>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let header = r
        .headers()
        .map_err(|e| located(path, e, &[]))?
        .iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    check_header(path, &header)?;
    let mut out = Vec::new();
    for rec in r.deserialize::<EpochMetrics>() {
        out.push(rec.map_err(|e| located(path, e, &header))?);
    }
    if out.is_empty() {
        return Err(Error::data(path, 2, 0, "no epochs after the header"));
    }
    Ok(out)
}

fn check_header(path: &Path, names: &[String]) -> Result<()> {
    if names.iter().all(|n| n.is_empty()) {
        return Err(Error::data(
            path,
            1,
            0,
            "empty file: expected the header epoch,train_loss,val_loss,<metric>,seconds",
        ));
    }
    let fits = names.len() == 5
        && names[..3] == LEADING
        && METRIC_NAMES.contains(&names[3].as_str())
        && names[4] == TRAILING;
    if !fits {
        return Err(Error::data(
            path,
            1,
            0,
            format!(
                "header '{}' is not a wgtrain metrics header \
                 (epoch,train_loss,val_loss,val_accuracy|val_rmse,seconds)",
                names.join(",")
            ),
        ));
    }
    Ok(())
}

/// A csv error as `file:line:col: column: what`.
fn located(path: &Path, e: csv::Error, header: &[String]) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        csv::ErrorKind::Deserialize { err, .. } => {
            let col = err.field().map_or(0, |f| f + 1);
            let name = err
                .field()
                .and_then(|f| header.get(f as usize))
                .map_or("", String::as_str);
            Error::data(path, line, col, format!("{name}: {}", err.kind()))
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Error::data(
            path,
            line,
            0,
            format!("expected {expected_len} fields, found {len}"),
        ),
        csv::ErrorKind::Utf8 { err, .. } => {
            Error::data(path, line, 0, format!("not UTF-8 text: {err}"))
        }
        other => Error::data(path, line, 0, format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(epoch: usize, train: f64, val: Option<(f64, f64)>, seconds: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: train,
            val_loss: val.map(|v| v.0),
            val_metric: val.map(|v| v.1),
            seconds,
        }
    }

    #[test]
    fn the_written_file_reads_back_the_same_records() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.csv");
        let rows = [
            m(1, 0.1 + 0.2, Some((1e-7, 0.7905694150420949)), 0.01234),
            m(2, 3.0, None, 12.5),
        ];
        let mut log = MetricsLog::create(&p, "val_rmse").unwrap();
        for r in &rows {
            log.write(r).unwrap();
        }
        drop(log);
        let text = std::fs::read_to_string(&p).unwrap();
        // The exact bytes earlier versions wrote: `{}` floats, `{:.4}` seconds.
        assert_eq!(
            text,
            "epoch,train_loss,val_loss,val_rmse,seconds\n\
             1,0.30000000000000004,0.0000001,0.7905694150420949,0.0123\n\
             2,3,,,12.5000\n"
        );
        let back = read(&p).unwrap();
        assert_eq!(back[0].train_loss, rows[0].train_loss);
        assert_eq!(back[0].val_loss, rows[0].val_loss);
        assert_eq!(back[0].val_metric, rows[0].val_metric);
        assert_eq!(back[0].seconds, 0.0123);
        assert_eq!(back[1], rows[1]);
    }

    #[test]
    fn header_only_and_empty_files_are_located_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.csv");
        std::fs::write(&p, "").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("m.csv:1") && e.contains("empty file"), "{e}");
        std::fs::write(&p, "epoch,train_loss,val_loss,val_accuracy,seconds\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("m.csv:2") && e.contains("no epochs"), "{e}");
        std::fs::write(
            &p,
            "epoch,train_loss,val_loss,val_loss_2,seconds\n1,1,1,1,1\n",
        )
        .unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("m.csv:1") && e.contains("not a wgtrain"), "{e}");
    }
}
