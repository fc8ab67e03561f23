//! Parquet input (`.parquet`, recognised by its `PAR1` magic) through the Apache Arrow
//! project's `parquet` crate, without its Arrow layer: each needed column chunk is decoded
//! once, row group by row group, straight into the f32 matrices.
//!
//! The same column choices and checks as CSV (`--target`, `--drop`, the model's columns, task
//! inference: a text target that is not all numbers makes a classifier). Numbers of any width
//! (booleans, 8- to 64-bit integers, decimals, f32, f64) become the f32 their decimal text
//! would give; text columns hold class labels, or numbers written as text. A null is a missing
//! value. Problems name the file, the row group, the column and the row (1-based, counted over
//! the whole file), which is also what `Dataset::lines` holds for a Parquet file.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use parquet::basic::{LogicalType, Type as Physical};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::DataType;
use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use parquet::schema::types::ColumnDescriptor;

use super::dataset::{DataSpec, Dataset, Role, check_two_classes, parse_num, sort_labels};
use super::loader::{Labels, Plan, Slot, model_plan, one_target, training_columns};
use super::num::fast_f32;
use super::schema::Schema;
use super::table::{Table, unique_names};
use crate::error::{Error, Result};
use crate::spec::Task;

/// Whether `path` starts with Parquet's magic bytes. Only a regular file is looked at: the
/// bytes read from a pipe (`/dev/stdin`, `<(zcat …)`) would be lost to the CSV reader after.
pub(crate) fn is_parquet(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|_| &magic == b"PAR1")
}

pub(super) struct Opened {
    reader: SerializedFileReader<File>,
    /// Leaf column index in the file of each of the table's columns.
    leaf: Vec<usize>,
    pub table: Table,
    pub rows: usize,
}

pub(super) fn open(path: &Path) -> Result<Opened> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| Error::data(path, 0, 0, format!("cannot read Parquet: {e}")))?;
    let meta = reader.metadata();
    let schema = meta.file_metadata().schema_descr();
    let mut names = Vec::new();
    let mut leaf = Vec::new();
    for (i, c) in schema.columns().iter().enumerate() {
        // pandas keeps a named index as a column of its own; it is no feature.
        if c.name().starts_with("__index_level_") {
            continue;
        }
        if c.max_rep_level() > 0 || c.path().parts().len() > 1 {
            return Err(Error::data(
                path,
                0,
                0,
                format!(
                    "column '{}' is nested (a list or struct); only flat tables can be read",
                    c.path().string()
                ),
            ));
        }
        names.push(c.name().to_string());
        leaf.push(i);
    }
    let rows = meta.file_metadata().num_rows().max(0) as usize;
    let table = Table {
        path: path.to_path_buf(),
        header: unique_names(&names),
        records: Vec::new(),
        lines: Vec::new(),
        raw_header: names,
    };
    Ok(Opened {
        reader,
        leaf,
        table,
        rows,
    })
}

/// One column chunk's values: numbers (any width, as f64) or text, and which rows are null.
enum Values {
    Num(Vec<f64>),
    Text(Vec<parquet::data_type::ByteArray>),
}

struct Column {
    values: Values,
    /// Per row: present (not null).
    present: Vec<bool>,
}

/// A cell as the loader sees it.
enum Cell<'a> {
    Null,
    Num(f64),
    Text(&'a [u8]),
}

impl Column {
    fn cells(&self) -> impl Iterator<Item = Cell<'_>> {
        let mut k = 0;
        self.present.iter().map(move |&p| {
            if !p {
                return Cell::Null;
            }
            k += 1;
            match &self.values {
                Values::Num(v) => Cell::Num(v[k - 1]),
                Values::Text(v) => Cell::Text(v[k - 1].data()),
            }
        })
    }
}

fn read_all<T: DataType>(
    r: &mut ColumnReaderImpl<T>,
    rows: usize,
    nullable: bool,
) -> parquet::errors::Result<(Vec<T::T>, Vec<bool>)> {
    let mut values = Vec::with_capacity(rows);
    let mut defs = Vec::with_capacity(if nullable { rows } else { 0 });
    let mut total = 0;
    while total < rows {
        let d = if nullable { Some(&mut defs) } else { None };
        let (records, _, _) = r.read_records(rows - total, d, None, &mut values)?;
        if records == 0 {
            break;
        }
        total += records;
    }
    let present = if nullable {
        defs.iter().map(|&d| d > 0).collect()
    } else {
        vec![true; total]
    };
    Ok((values, present))
}

/// Decode column chunk `leaf` of row group `rg` (`rows` rows).
fn read_column(
    rg: &dyn RowGroupReader,
    leaf: usize,
    rows: usize,
    err: &dyn Fn(String) -> Error,
) -> Result<Column> {
    let descr: &ColumnDescriptor = &rg.metadata().schema_descr().column(leaf);
    let nullable = descr.max_def_level() > 0;
    let scale = match descr.logical_type_ref() {
        Some(LogicalType::Decimal(d)) => 10f64.powi(d.scale),
        Some(
            t @ (LogicalType::Date
            | LogicalType::Time(_)
            | LogicalType::Timestamp(_)
            | LogicalType::Uuid),
        ) => {
            return Err(err(format!(
                "holds {t:?} values, not numbers (leave it out with --drop)"
            )));
        }
        _ => 1.0,
    };
    let unsigned =
        matches!(descr.logical_type_ref(), Some(LogicalType::Integer(i)) if !i.is_signed);
    let pq = |e: parquet::errors::ParquetError| err(format!("cannot decode: {e}"));
    let reader = rg.get_column_reader(leaf).map_err(pq)?;
    let num = |v: Vec<f64>| {
        if scale == 1.0 {
            Values::Num(v)
        } else {
            Values::Num(v.into_iter().map(|x| x / scale).collect())
        }
    };
    let (values, present) = match reader {
        ColumnReader::BoolColumnReader(mut r) => {
            let (v, p) = read_all(&mut r, rows, nullable).map_err(pq)?;
            (
                num(v.into_iter().map(|b| f64::from(u8::from(b))).collect()),
                p,
            )
        }
        ColumnReader::Int32ColumnReader(mut r) => {
            let (v, p) = read_all(&mut r, rows, nullable).map_err(pq)?;
            let f = |x: i32| if unsigned { x as u32 as f64 } else { x as f64 };
            (num(v.into_iter().map(f).collect()), p)
        }
        ColumnReader::Int64ColumnReader(mut r) => {
            let (v, p) = read_all(&mut r, rows, nullable).map_err(pq)?;
            let f = |x: i64| if unsigned { x as u64 as f64 } else { x as f64 };
            (num(v.into_iter().map(f).collect()), p)
        }
        ColumnReader::FloatColumnReader(mut r) => {
            let (v, p) = read_all(&mut r, rows, nullable).map_err(pq)?;
            (Values::Num(v.into_iter().map(f64::from).collect()), p)
        }
        ColumnReader::DoubleColumnReader(mut r) => {
            let (v, p) = read_all(&mut r, rows, nullable).map_err(pq)?;
            (num(v), p)
        }
        ColumnReader::ByteArrayColumnReader(mut r)
            if descr.physical_type() == Physical::BYTE_ARRAY =>
        {
            let (v, p) = read_all(&mut r, rows, nullable).map_err(pq)?;
            (Values::Text(v), p)
        }
        _ => {
            return Err(err(format!(
                "holds {} values, which are neither numbers nor text (leave it out with --drop)",
                descr.physical_type()
            )));
        }
    };
    if present.len() != rows {
        return Err(err(format!(
            "holds {} values for {rows} rows",
            present.len()
        )));
    }
    Ok(Column { values, present })
}

/// A cell as a feature or numeric target, worded as the CSV reader words it.
fn number(c: &Cell) -> std::result::Result<f32, String> {
    match *c {
        Cell::Null => Err("missing value".to_string()),
        Cell::Num(v) if v.is_nan() => Err("value is NaN".to_string()),
        Cell::Num(v) if v.is_infinite() => Err("value is infinite".to_string()),
        Cell::Num(v) => {
            let f = v as f32;
            if f.is_finite() {
                Ok(f)
            } else {
                Err(format!(
                    "{v} is infinite as a 32-bit float (beyond ±3.4e38)"
                ))
            }
        }
        Cell::Text(b) => match fast_f32(b) {
            Some(v) => Ok(v),
            None => parse_num(std::str::from_utf8(b).unwrap_or("\u{fffd}")),
        },
    }
}

/// A cell as a class label: text as it is, numbers as their shortest decimal.
fn label(c: &Cell) -> Option<String> {
    match *c {
        Cell::Null => None,
        Cell::Num(v) => Some(format!("{v}")),
        Cell::Text(b) => Some(String::from_utf8_lossy(b).into_owned()).filter(|s| !s.is_empty()),
    }
}

/// Where a problem is: row group, 0-based file row, table column.
pub(super) struct At {
    pub group: usize,
    pub row: usize,
    pub col: usize,
}

pub(super) fn problem(t: &Table, at: &At, why: String, role: Role) -> Error {
    let name = &t.header[at.col];
    let hint = match role {
        Role::Feature if why.ends_with("is not a number") => {
            format!(" (a text column? leave it out with --drop {name})")
        }
        _ => String::new(),
    };
    Error::data(
        &t.path,
        0,
        0,
        format!(
            "row group {}, column '{name}', row {}: {why}{hint}",
            at.group,
            at.row + 1
        ),
    )
}

/// What the target columns held: numbers, labels, and the first problem of each kind.
#[derive(Default)]
pub(super) struct Targets {
    pub y: Vec<f32>,
    pub labels: Vec<String>,
    pub ids: Vec<u32>,
    pub numeric_error: Option<(At, String)>,
    pub non_numeric: Option<(At, String)>,
    pub label_error: Option<(At, String)>,
}

impl Opened {
    /// Row groups in the file.
    pub(super) fn groups(&self) -> usize {
        self.reader.num_row_groups()
    }

    /// Rows of row group `g` (from the footer: nothing is decoded).
    pub(super) fn group_rows(&self, g: usize) -> usize {
        self.reader.metadata().row_group(g).num_rows().max(0) as usize
    }

    /// Bytes of row group `g`'s column chunks as stored (compressed).
    pub(super) fn group_bytes(&self, g: usize) -> u64 {
        self.reader.metadata().row_group(g).compressed_size().max(0) as u64
    }
}

/// Visit the row groups `groups`: `f(group index, its reader, first file row, rows)`.
fn each_group_in(
    o: &Opened,
    groups: std::ops::Range<usize>,
    mut f: impl FnMut(usize, &dyn RowGroupReader, usize, usize) -> Result<()>,
) -> Result<()> {
    let mut row0 = (0..groups.start).map(|g| o.group_rows(g)).sum();
    for g in groups {
        let rg = o.reader.get_row_group(g).map_err(|e| {
            Error::data(
                &o.table.path,
                0,
                0,
                format!("row group {g}: cannot read: {e}"),
            )
        })?;
        let rows = rg.metadata().num_rows().max(0) as usize;
        f(g, rg.as_ref(), row0, rows)?;
        row0 += rows;
    }
    Ok(())
}

fn column_error<'a>(t: &'a Table, g: usize, col: usize) -> impl Fn(String) -> Error + 'a {
    move |why| {
        Error::data(
            &t.path,
            0,
            0,
            format!("row group {g}, column '{}': {why}", t.header[col]),
        )
    }
}

fn read_targets(o: &Opened, plan: &Plan, tcols: &[usize]) -> Result<Targets> {
    read_targets_in(o, plan, tcols, 0..o.groups())
}

/// The target columns of row groups `groups`, their rows from 0.
pub(super) fn read_targets_in(
    o: &Opened,
    plan: &Plan,
    tcols: &[usize],
    groups: std::ops::Range<usize>,
) -> Result<Targets> {
    let t = &o.table;
    let base: usize = (0..groups.start).map(|g| o.group_rows(g)).sum();
    let rows: usize = groups.clone().map(|g| o.group_rows(g)).sum();
    let mut out = Targets {
        y: vec![0.0; rows * plan.nt],
        ..Targets::default()
    };
    let mut index: HashMap<String, u32> = match &plan.labels {
        Labels::Known(map) => map.clone(),
        _ => HashMap::new(),
    };
    let known = matches!(plan.labels, Labels::Known(_));
    each_group_in(o, groups, |g, rg, row0, rows| {
        for (slot, &col) in tcols.iter().enumerate() {
            let c = read_column(rg, o.leaf[col], rows, &column_error(t, g, col))?;
            for (r, cell) in c.cells().enumerate() {
                let at = || At {
                    group: g,
                    row: row0 + r,
                    col,
                };
                if plan.numeric_targets {
                    match number(&cell) {
                        Ok(v) => out.y[(row0 - base + r) * plan.nt + slot] = v,
                        Err(why) => {
                            if let (true, Cell::Text(b)) = (plan.infer, &cell) {
                                let s = String::from_utf8_lossy(b);
                                if !s.is_empty() && s.parse::<f64>().is_err() {
                                    out.non_numeric.get_or_insert((at(), s.into_owned()));
                                }
                            }
                            out.numeric_error.get_or_insert((at(), why));
                        }
                    }
                }
                if matches!(plan.labels, Labels::Off) {
                    continue;
                }
                let Some(l) = label(&cell) else {
                    out.label_error
                        .get_or_insert((at(), "missing value".into()));
                    out.ids.push(0);
                    continue;
                };
                let next = out.labels.len() as u32;
                let id = match index.get(&l) {
                    Some(&id) => id,
                    None if known => {
                        out.label_error.get_or_insert((at(), l));
                        0
                    }
                    None => {
                        index.insert(l.clone(), next);
                        out.labels.push(l);
                        next
                    }
                };
                out.ids.push(id);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// The features into `[rows, nf]`; the first bad cell (row group, then column, then row) is
/// the error.
fn read_features(o: &Opened, plan: &Plan, role: Role) -> Result<Vec<f32>> {
    read_features_in(o, plan, role, 0..o.groups())
}

/// The features of row groups `groups` into `[rows, nf]`, their rows from 0.
pub(super) fn read_features_in(
    o: &Opened,
    plan: &Plan,
    role: Role,
    groups: std::ops::Range<usize>,
) -> Result<Vec<f32>> {
    let t = &o.table;
    let base: usize = (0..groups.start).map(|g| o.group_rows(g)).sum();
    let rows: usize = groups.clone().map(|g| o.group_rows(g)).sum();
    let mut x = vec![0f32; rows * plan.nf];
    let fcols: Vec<(usize, usize)> = plan
        .slots
        .iter()
        .enumerate()
        .filter_map(|(c, s)| match *s {
            Slot::Feature(i) => Some((i as usize, c)),
            _ => None,
        })
        .collect();
    let mut fcols = fcols;
    fcols.sort_unstable();
    each_group_in(o, groups, |g, rg, row0, rows| {
        for &(slot, col) in &fcols {
            let c = read_column(rg, o.leaf[col], rows, &column_error(t, g, col))?;
            for (r, cell) in c.cells().enumerate() {
                match number(&cell) {
                    Ok(v) => x[(row0 - base + r) * plan.nf + slot] = v,
                    Err(why) => {
                        let at = At {
                            group: g,
                            row: row0 + r,
                            col,
                        };
                        return Err(problem(t, &at, why, role));
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(x)
}

fn no_rows(t: &Table) -> Error {
    Error::data(&t.path, 0, 0, "no data rows")
}

/// The column names of a Parquet file (for `--features` / `--drop` patterns).
pub(crate) fn header(path: &Path) -> Result<Vec<String>> {
    Ok(open(path)?.table.header)
}

/// The training view of a Parquet file (see [`Dataset::load`]).
pub(crate) fn load(path: &Path, spec: &DataSpec) -> Result<Dataset> {
    if spec.window.is_some() {
        return Err(Error::flag(
            "--window",
            "series mode reads CSV files; write the series as CSV",
        ));
    }
    let o = open(path)?;
    let t = &o.table;
    let (tcols, fcols) = training_columns(t, spec)?;
    if spec.task == Some(Task::Classification) && tcols.len() != 1 {
        return Err(one_target(tcols.len(), spec, None));
    }
    if o.rows == 0 {
        return Err(no_rows(t));
    }
    let nt = tcols.len();
    let plan = Plan::training(t.header.len(), &fcols, &tcols, spec.task, usize::MAX);
    let tg = read_targets(&o, &plan, &tcols)?;
    let task = spec.task.unwrap_or(match tg.non_numeric {
        Some(_) => Task::Classification,
        None => Task::Regression,
    });
    // A single target of a few whole numbers is classes, as for CSV: read again, knowing.
    if spec.task.is_none()
        && task == Task::Regression
        && nt == 1
        && tg.numeric_error.is_none()
        && super::dataset::few_whole_numbers(tg.y.iter().map(|&v| Some(v as f64)), o.rows)
    {
        let spec = DataSpec {
            task: Some(Task::Classification),
            ..*spec
        };
        return load(path, &spec);
    }
    if task == Task::Classification && nt != 1 {
        let why = tg
            .non_numeric
            .as_ref()
            .map(|(at, s)| (&t.header[at.col], s, at.row as u64 + 1));
        return Err(one_target(nt, spec, why));
    }
    let x = read_features(&o, &plan, Role::Feature)?;
    let (y, classes) = match task {
        Task::Regression => {
            if let Some((at, why)) = tg.numeric_error {
                return Err(problem(t, &at, why, Role::Target));
            }
            (tg.y, Vec::new())
        }
        Task::Classification => {
            if let Some((at, why)) = tg.label_error {
                return Err(problem(t, &at, why, Role::Target));
            }
            let classes = check_two_classes(t, tcols[0], sort_labels(tg.labels.clone()))?;
            let at: HashMap<&str, f32> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i as f32))
                .collect();
            let remap: Vec<f32> = tg
                .labels
                .iter()
                .map(|l| at.get(l.as_str()).copied().unwrap_or(0.0))
                .collect();
            (tg.ids.iter().map(|&i| remap[i as usize]).collect(), classes)
        }
    };
    Ok(Dataset {
        schema: Schema {
            features: fcols.iter().map(|&c| t.header[c].clone()).collect(),
            targets: tcols.iter().map(|&c| t.header[c].clone()).collect(),
            task,
            classes,
            window: None,
        },
        x,
        y,
        rows: o.rows,
        lines: (1..=o.rows as u64).collect(),
    })
}

/// The view of a Parquet file a trained model needs (see [`Dataset::load_for_schema`]).
pub(crate) fn load_for_schema(
    path: &Path,
    model: &Schema,
    need_targets: bool,
) -> Result<(Dataset, bool)> {
    if model.window.is_some() {
        return Err(Error::flag(
            "--window",
            "series mode reads CSV files; write the series as CSV",
        ));
    }
    let o = open(path)?;
    let t = &o.table;
    let (plan, has_targets) = model_plan(t, model, need_targets)?;
    if o.rows == 0 {
        return Err(no_rows(t));
    }
    let tcols: Vec<usize> = (0..plan.slots.len())
        .filter_map(|c| match plan.slots[c] {
            Slot::Target(i) => Some((i, c)),
            _ => None,
        })
        .collect::<std::collections::BTreeMap<u32, usize>>()
        .into_values()
        .collect();
    let tg = read_targets(&o, &plan, &tcols)?;
    let x = read_features(&o, &plan, Role::Target)?;
    let y = match (has_targets, matches!(plan.labels, Labels::Known(_))) {
        (false, _) => Vec::new(),
        (true, false) => {
            if let Some((at, why)) = tg.numeric_error {
                return Err(problem(t, &at, why, Role::Target));
            }
            tg.y
        }
        (true, true) => {
            if let Some((at, why)) = tg.label_error {
                let why = match why.as_str() {
                    "missing value" => why,
                    s => format!(
                        "label '{s}' is not one of the model's classes: {}",
                        super::dataset::name_list(&model.classes)
                    ),
                };
                return Err(problem(t, &at, why, Role::Target));
            }
            tg.ids.iter().map(|&i| i as f32).collect()
        }
    };
    let ds = Dataset {
        schema: model.clone(),
        x,
        y,
        rows: o.rows,
        lines: (1..=o.rows as u64).collect(),
    };
    Ok((ds, has_targets))
}
