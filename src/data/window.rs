//! Series mode (`--window N`): each sample sees the N previous values of the target column
//! ("views of the previous N days") plus the other columns of its own row, and predicts the
//! value itself. The first N records have no full window and yield no sample.

use super::dataset::{DataSpec, Dataset, Role, find_columns, name_list, names, parse_columns};
use super::schema::Schema;
use super::table::Table;
use crate::error::{Error, Result};
use crate::spec::Task;

/// The names of the window features of column `col`, oldest first: `col[t-N]` … `col[t-1]`.
pub fn window_names(col: &str, n: usize) -> Vec<String> {
    (1..=n).rev().map(|k| format!("{col}[t-{k}]")).collect()
}

pub(super) fn from_table(
    t: &Table,
    spec: &DataSpec,
    n: usize,
    tcols: Vec<usize>,
    other: &[usize],
) -> Result<Dataset> {
    if tcols.len() != 1 {
        return Err(Error::flag(
            "--window",
            format!(
                "series mode needs exactly one target column, got {} ({})",
                tcols.len(),
                spec.targets.join(", ")
            ),
        ));
    }
    if spec.task == Some(Task::Classification) {
        return Err(Error::flag(
            "--window",
            "series mode predicts a number; it needs --task regression",
        ));
    }
    check_n(t, n)?;
    let col = tcols[0];
    let series = series(t, col)?;
    let mut features = window_names(&t.header[col], n);
    features.extend(names(t, other));
    build(t, features, names(t, &tcols), Vec::new(), &series, n, other)
}

pub(super) fn for_schema(t: &Table, schema: &Schema, n: usize) -> Result<(Dataset, bool)> {
    let (tcol, other) = model_columns(t, schema, n)?;
    check_n(t, n)?;
    let series = series(t, tcol)?;
    Ok((model_view(t, schema, &series, n, &other)?, true))
}

/// The samples of a series file as a model with a window of `n` sees them.
fn model_view(
    t: &Table,
    schema: &Schema,
    series: &[f32],
    n: usize,
    other: &[usize],
) -> Result<Dataset> {
    build(
        t,
        schema.features.clone(),
        schema.targets.clone(),
        schema.classes.clone(),
        series,
        n,
        other,
    )
}

/// The target column and the other feature columns of a series model in `t`, once the model
/// is known to be one (a regressor whose first features are a window of `n` over its target).
fn model_columns(t: &Table, schema: &Schema, n: usize) -> Result<(usize, Vec<usize>)> {
    let (features, targets) = (&schema.features, &schema.targets);
    if schema.task != Task::Regression {
        return Err(Error::flag(
            "--window",
            "series mode predicts a number; the model is a classifier",
        ));
    }
    let [target] = &targets[..] else {
        return Err(Error::flag(
            "--window",
            format!(
                "series mode needs exactly one target column, the model names {}",
                targets.len()
            ),
        ));
    };
    let expect = window_names(target, n);
    if features.len() < n || features[..n] != expect[..] {
        return Err(Error::flag(
            "--window",
            format!(
                "the model's first features are not a window of {n} over '{target}' ({})",
                name_list(&expect)
            ),
        ));
    }
    let mut missing = Vec::new();
    let tcols = find_columns(t, targets, &mut missing);
    let other = find_columns(t, &features[n..], &mut missing);
    if !missing.is_empty() {
        return Err(Error::data(
            &t.path,
            1,
            0,
            format!(
                "missing the model's columns: {} (series mode builds its window from '{target}')",
                name_list(&missing)
            ),
        ));
    }
    Ok((tcols[0], other))
}

/// A target cell that `predict` forecasts instead of reading: empty or `?`.
fn unknown(cell: &str) -> bool {
    cell.is_empty() || cell == "?"
}

/// A series file read for `predict`: its samples, the last `steps` of which are forecasts.
///
/// Rows at the end of the file whose target is empty or `?` have no value yet (the next days):
/// they are forecast one after another, and a window slot that falls on such a row takes that
/// row's forecast (recursive multi-step forecasting). Until [`Forecast::features`] fills them,
/// those slots hold NaN in `ds.x`; `ds.y` is empty when `steps > 0`.
#[derive(Clone, Debug)]
pub struct Forecast {
    pub ds: Dataset,
    pub steps: usize,
}

impl Forecast {
    /// Reads `t` for the series model `schema`. An unknown target before the last known one
    /// is an error naming its file:line:col: only the end of a series can be forecast.
    pub fn read(t: &Table, schema: &Schema) -> Result<Forecast> {
        let n = schema.window.unwrap_or(0);
        let (tcol, other) = model_columns(t, schema, n)?;
        let cell = |r: usize| t.records[r].get(tcol).unwrap_or("");
        let rows = t.records.len();
        let known = (0..rows)
            .rev()
            .find(|&r| !unknown(cell(r)))
            .map_or(0, |r| r + 1);
        if let Some(r) = (0..known).find(|&r| unknown(cell(r))) {
            return Err(Error::data(
                &t.path,
                t.lines[r],
                tcol as u64 + 1,
                format!(
                    "column '{}': no value ('{}') before the last known one; only the rows at \
                     the end of a series may be empty or '?' (predict forecasts them)",
                    t.header[tcol],
                    cell(r)
                ),
            ));
        }
        let steps = rows - known;
        if steps > 0 && known < n {
            return Err(Error::data(
                &t.path,
                t.lines[known],
                tcol as u64 + 1,
                format!(
                    "the first row to forecast needs the {n} values before it (a window of {n}); \
                     {} has {known} known value(s) in column '{}'",
                    t.path.display(),
                    t.header[tcol]
                ),
            ));
        }
        check_n(t, n)?;
        let known_rows: Vec<usize> = (0..known).collect();
        let mut values = parse_columns(t, &known_rows, &[tcol], Role::Series)?;
        values.resize(rows, f32::NAN);
        let mut ds = model_view(t, schema, &values, n, &other)?;
        if steps > 0 {
            ds.y.clear();
        }
        Ok(Forecast { ds, steps })
    }

    /// The first forecast sample.
    pub fn first(&self) -> usize {
        self.ds.rows - self.steps
    }

    /// The features of forecast step `h` (0-based, in the data's units) with the forecasts of
    /// steps `0..h` (`forecasts`, in the target's units) in the window slots they fall on.
    pub fn features(&self, h: usize, forecasts: &[f32]) -> Vec<f32> {
        let n = self.ds.schema.window.unwrap_or(0);
        let nf = self.ds.n_features();
        let i = self.first() + h;
        let mut row = self.ds.x[i * nf..(i + 1) * nf].to_vec();
        // Slot j of sample i is record i + j; record first + n + q is forecast step q.
        for (j, slot) in row.iter_mut().enumerate().take(n).skip(n.saturating_sub(h)) {
            if let Some(&v) = forecasts.get(h + j - n) {
                *slot = v;
            }
        }
        row
    }
}

fn check_n(t: &Table, n: usize) -> Result<()> {
    let r = t.records.len();
    if n == 0 {
        return Err(Error::flag(
            "--window",
            "must be at least 1 (the number of previous rows to see)",
        ));
    }
    if n >= r {
        return Err(Error::flag(
            "--window",
            format!(
                "a window of {n} needs more than {n} rows; {} has {r}",
                t.path.display()
            ),
        ));
    }
    Ok(())
}

/// The target column of every record, as numbers.
fn series(t: &Table, col: usize) -> Result<Vec<f32>> {
    let rows: Vec<usize> = (0..t.records.len()).collect();
    parse_columns(t, &rows, &[col], Role::Series)
}

fn build(
    t: &Table,
    features: Vec<String>,
    targets: Vec<String>,
    classes: Vec<String>,
    series: &[f32],
    n: usize,
    other: &[usize],
) -> Result<Dataset> {
    let rows = t.records.len() - n;
    let idx: Vec<usize> = (n..t.records.len()).collect();
    let rest = parse_columns(t, &idx, other, Role::Feature)?;
    let nf = n + other.len();
    let mut x = Vec::with_capacity(rows * nf);
    for (i, r) in idx.iter().enumerate() {
        x.extend_from_slice(&series[r - n..*r]);
        x.extend_from_slice(&rest[i * other.len()..(i + 1) * other.len()]);
    }
    Ok(Dataset {
        schema: Schema {
            features,
            targets,
            task: Task::Regression,
            classes,
            window: Some(n),
        },
        x,
        y: series[n..].to_vec(),
        rows,
        lines: t.lines[n..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_oldest_first() {
        assert_eq!(window_names("v", 3), ["v[t-3]", "v[t-2]", "v[t-1]"]);
    }
}
