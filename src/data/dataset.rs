//! From a table of text to numbers: which columns are features and targets, the task, the
//! class labels, and the parsed row-major matrices.

use std::collections::HashMap;

use super::schema::Schema;
use super::table::Table;
use super::window;
use crate::error::{Error, Result};
use crate::spec::Task;

/// What the user asked for on the command line (`--target`, `--drop`, `--task`, `--window`).
#[derive(Clone, Copy, Debug)]
pub struct DataSpec<'a> {
    pub targets: &'a [String],
    pub drop: &'a [String],
    pub task: Option<Task>,
    pub window: Option<usize>,
}

/// Features and targets as numbers, ready for a backend.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Which columns the matrices hold and what they mean.
    pub schema: Schema,
    /// `[rows, features.len()]`, row-major.
    pub x: Vec<f32>,
    /// Regression: `[rows, targets.len()]`; classification: `[rows]`, the class id as f32.
    pub y: Vec<f32>,
    pub rows: usize,
    /// The file line each row came from (for messages).
    pub lines: Vec<u64>,
}

impl Dataset {
    /// The training view of a table: `spec.targets` are the targets, every other column that is
    /// not dropped is a numeric feature.
    pub fn from_table(t: &Table, spec: &DataSpec) -> Result<Dataset> {
        let (tcols, fcols) = training_columns(t, spec)?;
        if let Some(n) = spec.window {
            return window::from_table(t, spec, n, tcols, &fcols);
        }
        if fcols.is_empty() {
            return Err(no_features(t, spec));
        }

        let task = match spec.task {
            Some(task) => task,
            None => match first_non_numeric(t, &tcols) {
                Some(_) => Task::Classification,
                None if few_whole_values(t, &tcols) => Task::Classification,
                None => Task::Regression,
            },
        };
        if task == Task::Classification && tcols.len() != 1 {
            let mut msg = format!(
                "classification needs exactly one target column, got {} ({})",
                tcols.len(),
                spec.targets.join(", ")
            );
            if let (None, Some((row, col))) = (spec.task, first_non_numeric(t, &tcols)) {
                msg.push_str(&format!(
                    "; classes were inferred because column '{}' holds '{}' at line {}",
                    t.header[col],
                    t.records[row].get(col).unwrap_or(""),
                    line_of(t, row)
                ));
            }
            return Err(Error::flag("--target", msg));
        }

        let rows: Vec<usize> = (0..t.records.len()).collect();
        let x = parse_columns(t, &rows, &fcols, Role::Feature)?;
        let (y, classes) = match task {
            Task::Regression => (parse_columns(t, &rows, &tcols, Role::Target)?, Vec::new()),
            Task::Classification => {
                let col = tcols[0];
                let classes = class_labels(t, col)?;
                (label_ids(t, col, &classes, false)?, classes)
            }
        };
        Ok(Dataset {
            schema: Schema {
                features: names(t, &fcols),
                targets: names(t, &tcols),
                task,
                classes,
                window: None,
            },
            x,
            y,
            rows: t.records.len(),
            lines: t.lines.clone(),
        })
    }

    /// The view of a table that a trained model needs (predict / eval): the model's feature
    /// columns by name (extra columns are ignored), and its targets when the file has them.
    /// Returns the dataset and whether it holds targets (`y` is empty when not).
    pub fn for_schema(t: &Table, schema: &Schema, need_targets: bool) -> Result<(Dataset, bool)> {
        if let Some(n) = schema.window {
            return window::for_schema(t, schema, n);
        }
        let (features, targets) = (&schema.features, &schema.targets);
        let mut missing = Vec::new();
        let fcols = find_columns(t, features, &mut missing);
        if !missing.is_empty() {
            return Err(Error::data(
                &t.path,
                1,
                0,
                format!("missing the model's columns: {}", name_list(&missing)),
            ));
        }
        let mut missing_targets = Vec::new();
        let tcols = find_columns(t, targets, &mut missing_targets);
        // predict (need_targets false) never reads the targets: absent, empty or `?` is fine.
        let has_targets = need_targets && !targets.is_empty() && missing_targets.is_empty();
        if !has_targets && need_targets {
            let msg = if targets.is_empty() {
                "the model names no target columns".to_string()
            } else {
                format!(
                    "missing the target columns: {}",
                    name_list(&missing_targets)
                )
            };
            return Err(Error::data(&t.path, 1, 0, msg));
        }

        let rows: Vec<usize> = (0..t.records.len()).collect();
        let x = parse_columns(t, &rows, &fcols, Role::Target)?;
        let y = match (has_targets, schema.task) {
            (false, _) => Vec::new(),
            (true, Task::Regression) => parse_columns(t, &rows, &tcols, Role::Target)?,
            (true, Task::Classification) => {
                if tcols.len() != 1 {
                    return Err(Error::data(
                        &t.path,
                        1,
                        0,
                        format!(
                            "a classifier has one target column, the model names {}",
                            targets.len()
                        ),
                    ));
                }
                label_ids(t, tcols[0], &schema.classes, true)?
            }
        };
        let ds = Dataset {
            schema: schema.clone(),
            x,
            y,
            rows: t.records.len(),
            lines: t.lines.clone(),
        };
        Ok((ds, has_targets))
    }

    /// The rows `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let nf = self.n_features();
        let ny = self.y.len().checked_div(self.rows).unwrap_or(0);
        let mut x = Vec::with_capacity(idx.len() * nf);
        let mut y = Vec::with_capacity(idx.len() * ny);
        let mut lines = Vec::with_capacity(idx.len());
        for &i in idx {
            x.extend_from_slice(&self.x[i * nf..(i + 1) * nf]);
            y.extend_from_slice(&self.y[i * ny..(i + 1) * ny]);
            lines.push(self.lines[i]);
        }
        Dataset {
            schema: self.schema.clone(),
            x,
            y,
            rows: idx.len(),
            lines,
        }
    }

    /// `(self.subset(keep), self.subset(take))` without a second copy of the kept rows: they
    /// are moved down in place (`keep` must be ascending, as the splits give it), so a split
    /// costs the taken rows, not the whole matrix again.
    pub fn split(mut self, keep: &[usize], take: &[usize]) -> (Dataset, Dataset) {
        let taken = self.subset(take);
        if !keep.windows(2).all(|w| w[0] < w[1]) {
            return (self.subset(keep), taken);
        }
        let nf = self.schema.features.len();
        let ny = self.y.len().checked_div(self.rows).unwrap_or(0);
        for (k, &i) in keep.iter().enumerate() {
            self.x.copy_within(i * nf..(i + 1) * nf, k * nf);
            self.y.copy_within(i * ny..(i + 1) * ny, k * ny);
            self.lines[k] = self.lines[i];
        }
        self.x.truncate(keep.len() * nf);
        self.y.truncate(keep.len() * ny);
        self.lines.truncate(keep.len());
        self.x.shrink_to_fit();
        self.y.shrink_to_fit();
        self.rows = keep.len();
        (self, taken)
    }

    pub fn n_features(&self) -> usize {
        self.schema.n_features()
    }

    /// Width of the network's output: the number of classes, or of target columns.
    pub fn n_outputs(&self) -> usize {
        self.schema.n_outputs()
    }
}

/// The target and feature columns (every column neither a target nor dropped) of a training
/// run, checked; the features may be none (series mode needs only the target).
pub(crate) fn training_columns(t: &Table, spec: &DataSpec) -> Result<(Vec<usize>, Vec<usize>)> {
    if spec.targets.is_empty() {
        return Err(Error::flag("--target", "no target column given"));
    }
    let tcols = resolve(t, "--target", spec.targets)?;
    for name in spec.targets {
        refuse_repeated_target(t, name)?;
    }
    for (i, name) in spec.targets.iter().enumerate() {
        if spec.targets[..i].contains(name) {
            return Err(Error::flag(
                "--target",
                format!("column '{name}' is named twice"),
            ));
        }
    }
    let dcols = resolve(t, "--drop", spec.drop)?;
    if let Some(name) = spec.drop.iter().find(|d| spec.targets.contains(d)) {
        return Err(Error::flag(
            "--drop",
            format!("'{name}' is a target column; it cannot also be dropped"),
        ));
    }
    let fcols: Vec<usize> = (0..t.header.len())
        .filter(|c| !tcols.contains(c) && !dcols.contains(c))
        .collect();
    Ok((tcols, fcols))
}

/// Column indices of names the user gave on the command line for `flag`.
pub(crate) fn resolve(t: &Table, flag: &str, names: &[String]) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| t.column(n).ok_or_else(|| t.no_column(flag, n)))
        .collect()
}

/// A target named by a name the file uses for several columns is refused: taking the first
/// (as pandas would) silently trains on the wrong column, e.g. day 1 of the covid file's three
/// `tested_positive` columns where the course means the last.
pub(crate) fn refuse_repeated_target(t: &Table, name: &str) -> Result<()> {
    let cols = t.repeats(name);
    if cols.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = cols
        .iter()
        .map(|&c| format!("{} (column {})", t.header[c], c + 1))
        .collect();
    Err(Error::flag(
        "--target",
        format!(
            "{} has {} columns called '{name}'; they are read as {}: name the one you mean",
            t.path.display(),
            cols.len(),
            named.join(", ")
        ),
    ))
}

/// Column indices of `names`; the ones the table lacks are pushed onto `missing`.
pub(crate) fn find_columns(t: &Table, names: &[String], missing: &mut Vec<String>) -> Vec<usize> {
    let mut cols = Vec::with_capacity(names.len());
    for n in names {
        match t.column(n) {
            Some(c) => cols.push(c),
            None => missing.push(n.clone()),
        }
    }
    cols
}

pub(crate) fn names(t: &Table, cols: &[usize]) -> Vec<String> {
    cols.iter().map(|&c| t.header[c].clone()).collect()
}

/// "a, b, c", cut short after 30 names.
pub(crate) fn name_list(names: &[String]) -> String {
    const SHOW: usize = 30;
    if names.len() <= SHOW {
        names.join(", ")
    } else {
        format!("{}, … ({} in all)", names[..SHOW].join(", "), names.len())
    }
}

pub(crate) fn no_features(t: &Table, spec: &DataSpec) -> Error {
    let msg = format!(
        "no feature columns left: the targets are {} and the dropped columns {}",
        spec.targets.join(", "),
        if spec.drop.is_empty() {
            "none".to_string()
        } else {
            spec.drop.join(", ")
        }
    );
    if spec.drop.is_empty() {
        Error::data(&t.path, 1, 0, msg)
    } else {
        Error::flag("--drop", msg)
    }
}

/// A feature or regression target value: a finite number that fits in an f32.
/// The error is the reason, to follow "column 'x': ".
pub(crate) fn parse_num(s: &str) -> std::result::Result<f32, String> {
    if let Some(v) = small_int(s) {
        return Ok(v);
    }
    if s.is_empty() {
        return Err("missing value".to_string());
    }
    match s.parse::<f64>() {
        Err(_) => Err(format!("'{s}' is not a number")),
        Ok(v) if v.is_nan() => Err(format!("'{s}' is NaN")),
        Ok(v) if v.is_infinite() => Err(format!("'{s}' is infinite")),
        Ok(v) => {
            let f = v as f32;
            if f.is_infinite() {
                Err(format!(
                    "'{s}' is infinite as a 32-bit float (beyond ±3.4e38)"
                ))
            } else {
                Ok(f)
            }
        }
    }
}

/// What a parsed column is for, to give a useful hint when a value is not a number.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A feature chosen by elimination at training time: `--drop` can leave it out.
    Feature,
    /// A target, or a feature a trained model needs: nothing to suggest.
    Target,
    Series,
}

/// Fast path for plain integers of up to 15 digits (pixels, counts, one-hot columns): exact in
/// f64, so the same f32 as `parse::<f64>` gives, several times faster.
#[inline]
fn small_int(s: &str) -> Option<f32> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (d - b'0') as u64;
    }
    let v = v as f64;
    Some(if neg { -v as f32 } else { v as f32 })
}

/// The file line of record `row` (0 if the table does not know it).
fn line_of(t: &Table, row: usize) -> u64 {
    t.lines.get(row).copied().unwrap_or(0)
}

/// The error for a value that `parse_num` rejected.
pub(crate) fn value_error(t: &Table, row: usize, col: usize, why: String, role: Role) -> Error {
    value_error_at(t, line_of(t, row), col, why, role)
}

/// The same for a value at a known file line.
pub(crate) fn value_error_at(t: &Table, line: u64, col: usize, why: String, role: Role) -> Error {
    let name = &t.header[col];
    let hint = match role {
        _ if !why.ends_with("is not a number") => String::new(),
        Role::Feature => format!(" (a text column? leave it out with --drop {name})"),
        Role::Target => String::new(),
        Role::Series => " (series mode needs a numeric target)".to_string(),
    };
    Error::data(
        &t.path,
        line,
        col as u64 + 1,
        format!("column '{name}': {why}{hint}"),
    )
}

/// The cells `cols` of records `rows`, parsed into a row-major `[rows, cols]` matrix.
pub(crate) fn parse_columns(
    t: &Table,
    rows: &[usize],
    cols: &[usize],
    role: Role,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(rows.len() * cols.len());
    for &r in rows {
        let rec = &t.records[r];
        for &c in cols {
            // Every record has the header's width (read_table checks), so `get` always succeeds.
            let s = rec.get(c).unwrap_or("");
            match parse_num(s) {
                Ok(v) => out.push(v),
                Err(why) => return Err(value_error(t, r, c, why, role)),
            }
        }
    }
    Ok(out)
}

/// The first (row, col) among `cols` holding a value that is present but not a number.
fn first_non_numeric(t: &Table, cols: &[usize]) -> Option<(usize, usize)> {
    for (r, rec) in t.records.iter().enumerate() {
        for &c in cols {
            let s = rec.get(c).unwrap_or("");
            if !s.is_empty() && s.parse::<f64>().is_err() {
                return Some((r, c));
            }
        }
    }
    None
}

/// A single target whose values are all whole numbers, with 2 to 20 distinct values, each
/// seen twice on average: digit or rating labels, read as classes (`--task` overrides).
pub(crate) fn few_whole_values(t: &Table, cols: &[usize]) -> bool {
    let [col] = cols else { return false };
    let values = t
        .records
        .iter()
        .map(|rec| rec.get(*col).and_then(|s| s.parse::<f64>().ok()));
    few_whole_numbers(values, t.records.len())
}

/// The rule of [`few_whole_values`] over parsed values (`None`: not a number).
pub(crate) fn few_whole_numbers(values: impl Iterator<Item = Option<f64>>, rows: usize) -> bool {
    let mut w = FewWhole::default();
    for v in values {
        w.push(v);
        if w.broken {
            return false;
        }
    }
    w.holds(rows)
}

/// [`few_whole_numbers`] a value at a time, for the streaming first pass, which sees each
/// value once and keeps none.
#[derive(Debug, Default)]
pub(crate) struct FewWhole {
    broken: bool,
    seen: Vec<i64>,
}

impl FewWhole {
    pub(crate) fn push(&mut self, v: Option<f64>) {
        const MAX_CLASSES: usize = 20;
        if self.broken {
            return;
        }
        let Some(v) = v.filter(|v| v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15) else {
            self.broken = true;
            return;
        };
        if !self.seen.contains(&(v as i64)) {
            if self.seen.len() == MAX_CLASSES {
                self.broken = true;
                return;
            }
            self.seen.push(v as i64);
        }
    }

    /// Whether the values pushed, over `rows` rows, are classes.
    pub(crate) fn holds(&self, rows: usize) -> bool {
        !self.broken && self.seen.len() >= 2 && self.seen.len() * 2 <= rows
    }
}

/// The distinct labels of column `col`: numerically sorted when all are numbers (so "2" comes
/// before "10"), else sorted as strings. At least two, and none missing.
fn class_labels(t: &Table, col: usize) -> Result<Vec<String>> {
    let mut seen: HashMap<&str, ()> = HashMap::new();
    for (r, rec) in t.records.iter().enumerate() {
        let s = rec.get(col).unwrap_or("");
        if s.is_empty() {
            return Err(value_error(
                t,
                r,
                col,
                "missing value".to_string(),
                Role::Target,
            ));
        }
        seen.entry(s).or_insert(());
    }
    let labels = sort_labels(seen.into_keys().map(str::to_owned).collect());
    check_two_classes(t, col, labels)
}

/// Class labels in class-id order: numerically when all are numbers (so "2" comes before
/// "10"), else as strings.
pub(crate) fn sort_labels(mut labels: Vec<String>) -> Vec<String> {
    let numeric: Option<Vec<f64>> = labels.iter().map(|s| s.parse::<f64>().ok()).collect();
    match numeric {
        Some(_) => labels.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            x.total_cmp(&y).then_with(|| a.cmp(b))
        }),
        None => labels.sort(),
    }
    labels
}

/// `labels` of column `col`, refused when fewer than two.
pub(crate) fn check_two_classes(t: &Table, col: usize, labels: Vec<String>) -> Result<Vec<String>> {
    if labels.len() < 2 {
        return Err(Error::data(
            &t.path,
            1,
            col as u64 + 1,
            format!(
                "target column '{}' has only one class ('{}'); classification needs at least 2",
                t.header[col],
                labels.first().map_or("", String::as_str)
            ),
        ));
    }
    Ok(labels)
}

/// Column `col` as class ids into `classes`.
fn label_ids(t: &Table, col: usize, classes: &[String], for_model: bool) -> Result<Vec<f32>> {
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut y = Vec::with_capacity(t.records.len());
    for (r, rec) in t.records.iter().enumerate() {
        let s = rec.get(col).unwrap_or("");
        match index.get(s) {
            Some(&i) => y.push(i as f32),
            None if s.is_empty() => {
                return Err(value_error(
                    t,
                    r,
                    col,
                    "missing value".to_string(),
                    Role::Target,
                ));
            }
            None => {
                let whose = if for_model { "the model's" } else { "the" };
                return Err(value_error(
                    t,
                    r,
                    col,
                    format!(
                        "label '{s}' is not one of {whose} classes: {}",
                        name_list(classes)
                    ),
                    Role::Target,
                ));
            }
        }
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut records: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
        let header: Vec<String> = records.remove(0).iter().map(str::to_owned).collect();
        let lines = (2..records.len() as u64 + 2).collect();
        Table {
            path: "mem.csv".into(),
            raw_header: header.clone(),
            header,
            records,
            lines,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parse_num_reasons() {
        assert_eq!(parse_num("2.5"), Ok(2.5));
        assert_eq!(parse_num("-3e2"), Ok(-300.0));
        assert_eq!(parse_num("255"), Ok(255.0));
        assert_eq!(parse_num("-0"), Ok(-0.0));
        assert_eq!(parse_num("007"), Ok(7.0));
        assert_eq!(parse_num("16777217"), Ok(16777216.0));
        assert_eq!(
            parse_num("123456789012345678"),
            Ok(123456789012345678f64 as f32)
        );
        assert_eq!(parse_num("-").unwrap_err(), "'-' is not a number");
        assert_eq!(parse_num("").unwrap_err(), "missing value");
        assert_eq!(parse_num("abc").unwrap_err(), "'abc' is not a number");
        assert_eq!(parse_num("NaN").unwrap_err(), "'NaN' is NaN");
        assert_eq!(parse_num("-inf").unwrap_err(), "'-inf' is infinite");
        assert!(parse_num("1e39").unwrap_err().contains("infinite"));
    }

    #[test]
    fn features_in_file_order_and_targets_apart() {
        let t = table("a,y,b,c\n1.5,10,2.5,7\n3.5,20,4.5,8\n");
        let targets = s(&["y"]);
        let drop = s(&["c"]);
        let spec = DataSpec {
            targets: &targets,
            drop: &drop,
            task: None,
            window: None,
        };
        let d = Dataset::from_table(&t, &spec).unwrap();
        assert_eq!(d.schema.features, ["a", "b"]);
        assert_eq!(d.x, [1.5, 2.5, 3.5, 4.5]);
        assert_eq!(d.y, [10.0, 20.0]);
        assert_eq!(d.schema.task, Task::Regression);
        assert_eq!(d.n_outputs(), 1);
        let sub = d.subset(&[1]);
        assert_eq!(
            (sub.x, sub.y, sub.lines, sub.rows),
            (vec![3.5, 4.5], vec![20.0], vec![3], 1)
        );
    }

    #[test]
    fn numeric_classes_sort_as_numbers() {
        let t = table("a,y\n1,10\n2,2\n3,10\n4,9\n");
        let targets = s(&["y"]);
        let spec = DataSpec {
            targets: &targets,
            drop: &[],
            task: Some(Task::Classification),
            window: None,
        };
        let d = Dataset::from_table(&t, &spec).unwrap();
        assert_eq!(d.schema.classes, ["2", "9", "10"]);
        assert_eq!(d.y, [2.0, 0.0, 2.0, 1.0]);
    }

    #[test]
    fn few_whole_numbers_are_classes_unless_told() {
        let mut text = String::from("a,y\n");
        for i in 0..30 {
            text += &format!("{}.5,{}\n", i, [3, 7, 1][i % 3]);
        }
        let t = table(&text);
        let targets = s(&["y"]);
        let spec = DataSpec {
            targets: &targets,
            drop: &[],
            task: None,
            window: None,
        };
        let d = Dataset::from_table(&t, &spec).unwrap();
        assert_eq!(d.schema.task, Task::Classification);
        assert_eq!(d.schema.classes, ["1", "3", "7"]);
        let told = DataSpec {
            task: Some(Task::Regression),
            ..spec
        };
        assert_eq!(
            Dataset::from_table(&t, &told).unwrap().schema.task,
            Task::Regression
        );
        // All distinct (a count per row), or fractional: numbers.
        let t = table("a,y\n1,10\n2,20\n3,30\n4,40\n");
        assert_eq!(
            Dataset::from_table(&t, &spec).unwrap().schema.task,
            Task::Regression
        );
        let t = table("a,y\n1,1.5\n2,1.5\n3,2\n4,2\n");
        assert_eq!(
            Dataset::from_table(&t, &spec).unwrap().schema.task,
            Task::Regression
        );
    }
}
