//! The fast path from a file to a [`Dataset`]: the text is streamed and parsed straight into
//! the feature and target matrices, on every core, without a string per cell or a vector per
//! row.
//!
//! It gives the same dataset and the same errors (file, line, column, wording) as
//! [`Dataset::from_table`] / [`Dataset::for_model`] over [`super::read_table`], which stay as
//! the reference (and still serve series mode and single-column files, where the order of
//! blank lines matters). One difference: the column choices (`--target`, `--drop`, the model's
//! columns) are checked against the header before the rows are read, so a misspelt column
//! name is reported at once rather than after a 2 GB file has been parsed.
//!
//! Each block of text becomes a [`Chunk`]: its rows' numbers, the file line of each row, the
//! class labels it saw (interned per block, remapped when merged), and the first problem of
//! each kind. Merged in file order, the first problem of each kind is the first in the file,
//! and the kinds are reported in the order the reference reports them: the file's shape
//! (UTF-8, field counts), then features, then targets.
//!
//! A block of plain text (ASCII, no quotes) goes through `Plan::plain_records` (`rows.rs`),
//! which parses each short decimal as its comma is found and hands any other record to the
//! same per-record code as here.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;

use super::dataset::{
    DataSpec, Dataset, Role, check_two_classes, name_list, no_features, parse_num, sort_labels,
    value_error_at,
};
use super::num::fast_f32_in;
use super::scan::{self, Fields, Opened};
use super::schema::Schema;
use super::table::{Table, read_table, unique_names};
use crate::error::{Error, Result};
use crate::spec::Task;

/// How a load behaves beyond what it reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// A progress bar by file bytes on stderr (a terminal only) once a load passes a second.
    pub progress: bool,
    /// Bytes of text per parallel block; 0 = the default (4 MiB). Tests make it tiny so that
    /// small files cross many block boundaries.
    pub block_bytes: usize,
}

/// Distinct target labels a block keeps while the task is still unknown; past this the target
/// is surely a number, and if it is not, the labels are read again (see [`Dataset::load`]).
pub(super) const LABEL_CAP: usize = 4096;

#[derive(Clone, Copy)]
pub(super) enum Slot {
    Skip,
    Feature(u32),
    Target(u32),
}

pub(super) enum Labels {
    /// Targets are numbers only.
    Off,
    /// Intern every label (with `Some(cap)`: give up past `cap` distinct ones in a block).
    Intern(Option<usize>),
    /// A model's classes: label → class id.
    Known(HashMap<String, u32>),
}

/// How each column of a file is read.
pub(super) struct Plan {
    pub cols: usize,
    pub slots: Vec<Slot>,
    pub nf: usize,
    pub nt: usize,
    pub numeric_targets: bool,
    /// Look for a target that is not a number (task inference).
    pub infer: bool,
    pub labels: Labels,
}

impl Plan {
    /// Training: targets are numbers unless the task says classes; with no task given, a
    /// single target's labels are kept too (up to `cap` distinct ones per block).
    pub(super) fn training(
        cols: usize,
        fcols: &[usize],
        tcols: &[usize],
        task: Option<Task>,
        cap: usize,
    ) -> Plan {
        Plan {
            cols,
            slots: slots(cols, fcols, tcols),
            nf: fcols.len(),
            nt: tcols.len(),
            numeric_targets: task != Some(Task::Classification),
            infer: task.is_none(),
            labels: match task {
                Some(Task::Classification) => Labels::Intern(None),
                None if tcols.len() == 1 => Labels::Intern(Some(cap)),
                _ => Labels::Off,
            },
        }
    }
}

/// A value problem: where, and the reason as [`parse_num`] words it.
#[derive(Clone, Debug)]
pub(super) struct Problem {
    pub line: u64,
    pub slot: u32,
    pub col: usize,
    pub why: String,
}

/// Problems with the file's shape: they stop the load wherever they are.
pub(super) enum Fatal {
    Utf8 { field: usize },
    Ragged { fields: usize },
}

impl Fatal {
    fn error(&self, path: &Path, line: u64, cols: usize) -> Error {
        match *self {
            Fatal::Utf8 { field } => Error::data(
                path,
                line,
                field as u64 + 1,
                format!(
                    "invalid UTF-8 in field {} (is the file UTF-8 text?)",
                    field + 1
                ),
            ),
            Fatal::Ragged { fields } => Error::data(
                path,
                line,
                0,
                format!("line {line} has {fields} fields, header has {cols}"),
            ),
        }
    }
}

/// What one block of text became.
#[derive(Default)]
pub(super) struct Chunk {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    /// `\n`s before each row within the block.
    pub lines: Vec<u64>,
    pub ids: Vec<u32>,
    pub labels: Vec<String>,
    pub overflow: bool,
    pub newlines: u64,
    pub bytes: usize,
    pub fatal: Option<(u64, Fatal)>,
    pub feature: Option<Problem>,
    pub target: Option<Problem>,
    pub non_numeric: Option<Problem>,
    pub label: Option<Problem>,
}

/// Keep `p` if it is the first problem of its kind: earlier line, or the same line and an
/// earlier column in the order the columns are read.
fn note(slot: &mut Option<Problem>, p: Problem) {
    match slot {
        Some(q) if (q.line, q.slot) <= (p.line, p.slot) => {}
        _ => *slot = Some(p),
    }
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

impl Chunk {
    /// The first problem in this block that stops a streaming pass, on file lines counted
    /// from `base` newlines before it; with `task` unknown, target problems wait (the caller
    /// decides the task from `non_numeric` first).
    pub(super) fn error(&self, t: &Table, base: u64, task: Option<Task>) -> Option<Error> {
        if let Some((nl, f)) = &self.fatal {
            return Some(f.error(&t.path, base + nl + 1, t.header.len()));
        }
        let at =
            |p: &Problem, role| value_error_at(t, base + p.line + 1, p.col, p.why.clone(), role);
        if let Some(p) = &self.feature {
            return Some(at(p, Role::Feature));
        }
        match task {
            Some(Task::Regression) => self.target.as_ref().map(|p| at(p, Role::Target)),
            Some(Task::Classification) => self.label.as_ref().map(|p| at(p, Role::Target)),
            None => None,
        }
    }
}

impl Plan {
    pub(super) fn parse_chunk(&self, block: &[u8]) -> Chunk {
        let mut c = Chunk {
            bytes: block.len(),
            ..Chunk::default()
        };
        let ascii = block.is_ascii();
        let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
        c.newlines = if ascii && self.cols > 1 && memchr::memchr(b'"', block).is_none() {
            self.plain_records(block, &mut c, &mut seen)
        } else {
            scan::for_each_record(block, |f, nl| self.record(&mut c, &mut seen, f, nl, ascii))
        };
        c
    }

    pub(super) fn record(
        &self,
        c: &mut Chunk,
        seen: &mut HashMap<Vec<u8>, u32>,
        f: &Fields,
        nl: u64,
        ascii: bool,
    ) -> ControlFlow<()> {
        if f.is_blank() {
            return ControlFlow::Continue(());
        }
        if !ascii && let Some(i) = (0..f.len()).find(|&i| std::str::from_utf8(f.get(i)).is_err()) {
            c.fatal = Some((nl, Fatal::Utf8 { field: i }));
            return ControlFlow::Break(());
        }
        if f.len() != self.cols {
            c.fatal = Some((nl, Fatal::Ragged { fields: f.len() }));
            return ControlFlow::Break(());
        }
        let (xb, yb) = (c.x.len(), c.y.len());
        c.x.resize(xb + self.nf, 0.0);
        if self.numeric_targets {
            c.y.resize(yb + self.nt, 0.0);
        }
        for (col, slot) in self.slots.iter().enumerate() {
            match *slot {
                Slot::Skip => {}
                Slot::Feature(i) => {
                    let (a, e) = f.range(col);
                    c.x[xb + i as usize] = match fast_f32_in(f.bytes, a, e) {
                        Some(v) => v,
                        None => match parse_num(text(&f.bytes[a..e])) {
                            Ok(v) => v,
                            Err(why) => {
                                let p = Problem {
                                    line: nl,
                                    slot: i,
                                    col,
                                    why,
                                };
                                note(&mut c.feature, p);
                                0.0
                            }
                        },
                    }
                }
                Slot::Target(i) => {
                    let (a, e) = f.range(col);
                    self.target(c, seen, (f.bytes, a, e), (nl, i, col, yb))
                }
            }
        }
        c.lines.push(nl);
        ControlFlow::Continue(())
    }

    /// Target cell `bytes[a..e]` of column `col` (target `slot`) on the row of line `nl`,
    /// whose numbers start at `y[yb]`.
    pub(super) fn target(
        &self,
        c: &mut Chunk,
        seen: &mut HashMap<Vec<u8>, u32>,
        (bytes, a, e): (&[u8], usize, usize),
        (nl, slot, col, yb): (u64, u32, usize, usize),
    ) {
        let b = &bytes[a..e];
        let problem = |why: String| Problem {
            line: nl,
            slot,
            col,
            why,
        };
        if self.numeric_targets {
            let v = match fast_f32_in(bytes, a, e) {
                Some(v) => Ok(v),
                None => parse_num(text(b)),
            };
            match v {
                Ok(v) => c.y[yb + slot as usize] = v,
                Err(why) => {
                    if self.infer && !b.is_empty() && text(b).parse::<f64>().is_err() {
                        note(&mut c.non_numeric, problem(text(b).to_string()));
                    }
                    note(&mut c.target, problem(why));
                }
            }
        }
        match &self.labels {
            Labels::Off => {}
            _ if b.is_empty() => {
                note(&mut c.label, problem("missing value".to_string()));
                c.ids.push(0);
            }
            Labels::Known(map) => match map.get(text(b)) {
                Some(&id) => c.ids.push(id),
                None => {
                    note(&mut c.label, problem(text(b).to_string()));
                    c.ids.push(0);
                }
            },
            Labels::Intern(cap) => {
                if c.overflow {
                    return;
                }
                let next = c.labels.len() as u32;
                let id = *seen.entry(b.to_vec()).or_insert_with(|| {
                    c.labels.push(text(b).to_string());
                    next
                });
                c.ids.push(id);
                if cap.is_some_and(|cap| c.labels.len() > cap) {
                    (c.overflow, c.ids, c.labels) = (true, Vec::new(), Vec::new());
                    seen.clear();
                }
            }
        }
    }
}

/// All blocks merged in file order, errors on global lines.
#[derive(Default)]
struct Merged {
    x: Vec<f32>,
    y: Vec<f32>,
    lines: Vec<u64>,
    ids: Vec<u32>,
    labels: Vec<String>,
    overflow: bool,
    fatal: Option<Error>,
    feature: Option<Problem>,
    target: Option<Problem>,
    non_numeric: Option<Problem>,
    label: Option<Problem>,
    header_line: u64,
}

fn run(o: Opened, plan: &Plan, opts: &LoadOptions) -> Result<Merged> {
    let path = o.path.clone();
    let cols = plan.cols;
    let mut base = o.newlines_before;
    let (gz, file_len) = (o.gz || o.file_len == 0, o.file_len);
    let mut m = Merged {
        header_line: o.header_line,
        ..Merged::default()
    };
    let mut index: HashMap<String, u32> = HashMap::new();
    scan::scan(
        o,
        opts.progress,
        opts.block_bytes,
        |b| plan.parse_chunk(b),
        |k, c| {
            let at = |nl: u64| base + nl + 1;
            if let Some((nl, fatal)) = &c.fatal {
                m.fatal = Some(fatal.error(&path, at(*nl), cols));
                return ControlFlow::Break(());
            }
            if k == 0 && !gz && c.bytes > 0 {
                // Reserve for the whole file from the first block's density; pages never
                // touched cost no memory, and a short guess only means the vector grows.
                let rows =
                    (c.lines.len() as f64 * file_len as f64 / c.bytes as f64 * 1.02) as usize;
                m.x.reserve(rows.saturating_mul(plan.nf));
                m.y.reserve(rows.saturating_mul(plan.nt));
                m.lines.reserve(rows);
            }
            let global = |p: Option<Problem>| {
                p.map(|p| Problem {
                    line: at(p.line),
                    ..p
                })
            };
            for (mine, theirs) in [
                (&mut m.feature, global(c.feature)),
                (&mut m.target, global(c.target)),
                (&mut m.non_numeric, global(c.non_numeric)),
                (&mut m.label, global(c.label)),
            ] {
                if mine.is_none() {
                    *mine = theirs;
                }
            }
            m.x.extend_from_slice(&c.x);
            m.y.extend_from_slice(&c.y);
            m.lines.extend(c.lines.iter().map(|&nl| at(nl)));
            m.overflow |= c.overflow;
            if !m.overflow && !c.labels.is_empty() {
                let remap: Vec<u32> = c
                    .labels
                    .into_iter()
                    .map(|l| {
                        let next = m.labels.len() as u32;
                        *index.entry(l.clone()).or_insert_with(|| {
                            m.labels.push(l);
                            next
                        })
                    })
                    .collect();
                m.ids.extend(c.ids.iter().map(|&i| remap[i as usize]));
            } else if matches!(plan.labels, Labels::Known(_)) {
                m.ids.extend_from_slice(&c.ids);
            }
            base += c.newlines;
            ControlFlow::Continue(())
        },
    )?;
    m.x.shrink_to_fit();
    m.y.shrink_to_fit();
    Ok(m)
}

/// The header of an opened file as a [`Table`] without records, for the column checks.
fn header_table(o: &Opened) -> Table {
    Table {
        path: o.path.clone(),
        header: unique_names(&o.raw_header),
        records: Vec::new(),
        lines: Vec::new(),
        raw_header: o.raw_header.clone(),
    }
}

fn slots(cols: usize, fcols: &[usize], tcols: &[usize]) -> Vec<Slot> {
    let mut s = vec![Slot::Skip; cols];
    for (i, &c) in fcols.iter().enumerate() {
        s[c] = Slot::Feature(i as u32);
    }
    for (i, &c) in tcols.iter().enumerate() {
        s[c] = Slot::Target(i as u32);
    }
    s
}

impl Dataset {
    /// Read the training view of a `.csv` / `.csv.gz` file: what
    /// `Dataset::from_table(&read_table(path)?, spec)` gives, several times faster and in a
    /// fraction of the memory.
    ///
    /// A Parquet file (by its magic bytes) is read by [`super::parquet`] instead.
    pub fn load(path: &Path, spec: &DataSpec, opts: &LoadOptions) -> Result<Dataset> {
        if super::parquet::is_parquet(path) {
            return super::parquet::load(path, spec);
        }
        let o = scan::open(path)?;
        if spec.window.is_some() || o.raw_header.len() == 1 {
            drop(o);
            return Dataset::from_table(&read_table(path)?, spec);
        }
        let t = header_table(&o);
        let (tcols, fcols) = training_columns(&t, spec)?;
        if spec.task == Some(Task::Classification) && tcols.len() != 1 {
            return Err(one_target(tcols.len(), spec, None));
        }
        let nt = tcols.len();
        let plan = Plan::training(t.header.len(), &fcols, &tcols, spec.task, LABEL_CAP);
        let m = run(o, &plan, opts)?;
        let m = checked(&t, m, Role::Feature)?;
        let task = spec.task.unwrap_or(match m.non_numeric {
            Some(_) => Task::Classification,
            None => Task::Regression,
        });
        // A single target of a few whole numbers is classes (issue 9). Its labels were kept
        // on the way (as text, as a known task keeps them), so no second read is needed
        // unless there were too many to keep, which the classification arm handles.
        let whole = || {
            let rows = m.lines.len();
            super::dataset::few_whole_numbers(m.y.iter().map(|&v| Some(v as f64)), rows)
        };
        let task = if spec.task.is_none()
            && task == Task::Regression
            && nt == 1
            && m.target.is_none()
            && whole()
        {
            Task::Classification
        } else {
            task
        };
        if task == Task::Classification && nt != 1 {
            let why = m
                .non_numeric
                .as_ref()
                .map(|p| (&t.header[p.col], &p.why, p.line));
            return Err(one_target(nt, spec, why));
        }
        let (y, classes) = match task {
            Task::Regression => {
                if let Some(p) = m.target {
                    return Err(value_error_at(&t, p.line, p.col, p.why, Role::Target));
                }
                (m.y, Vec::new())
            }
            // Too many labels to keep while the task was unknown: read them again, knowing.
            Task::Classification if m.overflow => {
                let spec = DataSpec {
                    task: Some(Task::Classification),
                    ..*spec
                };
                return Dataset::load(path, &spec, opts);
            }
            Task::Classification => {
                if let Some(p) = m.label {
                    return Err(value_error_at(&t, p.line, p.col, p.why, Role::Target));
                }
                let classes = check_two_classes(&t, tcols[0], sort_labels(m.labels.clone()))?;
                (class_ids(&m.labels, &classes, &m.ids), classes)
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
            rows: m.lines.len(),
            x: m.x,
            y,
            lines: m.lines,
        })
    }

    /// The view of a file that a trained model needs (predict / eval): what
    /// `Dataset::for_model(&read_table(path)?, …)` gives, streamed.
    pub fn load_for_schema(
        path: &Path,
        model: &Schema,
        need_targets: bool,
        opts: &LoadOptions,
    ) -> Result<(Dataset, bool)> {
        if super::parquet::is_parquet(path) {
            return super::parquet::load_for_schema(path, model, need_targets);
        }
        let o = scan::open(path)?;
        if model.window.is_some() || o.raw_header.len() == 1 {
            drop(o);
            let t = read_table(path)?;
            return Dataset::for_schema(&t, model, need_targets);
        }
        let t = header_table(&o);
        let (plan, has_targets) = model_plan(&t, model, need_targets)?;
        let classify = matches!(plan.labels, Labels::Known(_));
        let m = run(o, &plan, opts)?;
        let m = checked(&t, m, Role::Target)?;
        let y = match (has_targets, classify) {
            (false, _) => Vec::new(),
            (true, false) => {
                if let Some(p) = m.target {
                    return Err(value_error_at(&t, p.line, p.col, p.why, Role::Target));
                }
                m.y
            }
            (true, true) => {
                if let Some(p) = m.label {
                    let why = match p.why.as_str() {
                        "missing value" => p.why,
                        s => format!(
                            "label '{s}' is not one of the model's classes: {}",
                            name_list(&model.classes)
                        ),
                    };
                    return Err(value_error_at(&t, p.line, p.col, why, Role::Target));
                }
                m.ids.iter().map(|&i| i as f32).collect()
            }
        };
        let ds = Dataset {
            schema: model.clone(),
            rows: m.lines.len(),
            x: m.x,
            y,
            lines: m.lines,
        };
        Ok((ds, has_targets))
    }
}

/// The columns a model reads from table `t` and how; and whether the file has the targets.
pub(super) fn model_plan(t: &Table, model: &Schema, need_targets: bool) -> Result<(Plan, bool)> {
    let path = &t.path;
    let find = |names: &[String], missing: &mut Vec<String>| {
        names
            .iter()
            .filter_map(|n| {
                let c = t.column(n);
                if c.is_none() {
                    missing.push(n.clone());
                }
                c
            })
            .collect::<Vec<usize>>()
    };
    let mut missing = Vec::new();
    let fcols = find(&model.features, &mut missing);
    if !missing.is_empty() {
        return Err(Error::data(
            path,
            1,
            0,
            format!("missing the model's columns: {}", name_list(&missing)),
        ));
    }
    let tcols = find(&model.targets, &mut missing);
    // predict (need_targets false) never reads the targets: absent, empty or `?` is fine.
    let has_targets = need_targets && !model.targets.is_empty() && missing.is_empty();
    if !has_targets && need_targets {
        let msg = if model.targets.is_empty() {
            "the model names no target columns".to_string()
        } else {
            format!("missing the target columns: {}", name_list(&missing))
        };
        return Err(Error::data(path, 1, 0, msg));
    }
    let classify = has_targets && model.task == Task::Classification;
    if classify && tcols.len() != 1 {
        return Err(Error::data(
            path,
            1,
            0,
            format!(
                "a classifier has one target column, the model names {}",
                model.targets.len()
            ),
        ));
    }
    let tcols = if has_targets { tcols } else { Vec::new() };
    let plan = Plan {
        cols: t.header.len(),
        slots: slots(t.header.len(), &fcols, &tcols),
        nf: fcols.len(),
        nt: tcols.len(),
        numeric_targets: has_targets && !classify,
        infer: false,
        labels: match classify {
            true => Labels::Known(
                model
                    .classes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.clone(), i as u32))
                    .collect(),
            ),
            false => Labels::Off,
        },
    };
    Ok((plan, has_targets))
}

/// The file's shape and the features, checked in the reference's order.
fn checked(t: &Table, mut m: Merged, feature_role: Role) -> Result<Merged> {
    if let Some(e) = m.fatal.take() {
        return Err(e);
    }
    if m.lines.is_empty() {
        return Err(Error::data(
            &t.path,
            m.header_line + 1,
            0,
            "no data rows after the header",
        ));
    }
    if let Some(p) = m.feature.take() {
        return Err(value_error_at(t, p.line, p.col, p.why, feature_role));
    }
    Ok(m)
}

/// Class ids (as f32) in `classes` order of rows labelled by index into `seen`.
fn class_ids(seen: &[String], classes: &[String], ids: &[u32]) -> Vec<f32> {
    let at: HashMap<&str, f32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as f32))
        .collect();
    let remap: Vec<f32> = seen
        .iter()
        .map(|l| at.get(l.as_str()).copied().unwrap_or(0.0))
        .collect();
    ids.iter().map(|&i| remap[i as usize]).collect()
}

pub(super) fn one_target(
    n: usize,
    spec: &DataSpec,
    inferred: Option<(&String, &String, u64)>,
) -> Error {
    let mut msg = format!(
        "classification needs exactly one target column, got {n} ({})",
        spec.targets.join(", ")
    );
    if let Some((col, value, line)) = inferred {
        msg.push_str(&format!(
            "; classes were inferred because column '{col}' holds '{value}' at line {line}"
        ));
    }
    Error::flag("--target", msg)
}

/// The target and feature columns of a training run (as [`Dataset::from_table`] checks them),
/// with at least one feature.
pub(super) fn training_columns(t: &Table, spec: &DataSpec) -> Result<(Vec<usize>, Vec<usize>)> {
    let (tcols, fcols) = super::dataset::training_columns(t, spec)?;
    if fcols.is_empty() {
        return Err(no_features(t, spec));
    }
    Ok((tcols, fcols))
}
