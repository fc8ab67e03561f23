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
    let (features, targets, classes) = (&schema.features, &schema.targets, &schema.classes);
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
    check_n(t, n)?;
    let series = series(t, tcols[0])?;
    let ds = build(
        t,
        features.to_vec(),
        targets.to_vec(),
        classes.to_vec(),
        &series,
        n,
        &other,
    )?;
    Ok((ds, true))
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
