//! Streaming a Parquet file (`--max-memory`): a shard is a run of whole row groups, decoded
//! by the loader's column reader (`parquet.rs`). The first pass reads one row group at a
//! time; each epoch reads a shard's row groups, then keeps, shuffles and standardizes its rows
//! exactly as for CSV (`StreamPlan::select`). A row's line in messages is its 1-based row in
//! the file, as the Parquet loader counts it.

use std::path::Path;

use super::super::dataset::{DataSpec, Role};
use super::super::loader::{Chunk, Plan};
use super::super::parquet::{self, At, Opened};
use super::{Part, Pass, Shard, ShardRows, StreamPlan, row_bytes};
use crate::error::{Error, Result};
use crate::spec::Task;

/// The first problem of each kind in the target columns, in file order.
#[derive(Default)]
struct TargetProblems {
    numeric: Option<(At, String)>,
    non_numeric: Option<(At, String)>,
    label: Option<(At, String)>,
}

impl StreamPlan {
    /// [`StreamPlan::scan`] for a Parquet file.
    pub(super) fn scan_parquet(
        path: &Path,
        spec: &DataSpec,
        budget: u64,
        val_frac: f64,
        seed: u64,
    ) -> Result<StreamPlan> {
        let o = parquet::open(path)?;
        let t = o.table.clone();
        let (mut p, mut pass) = StreamPlan::begin(&t, spec, budget, (seed, val_frac))?;
        p.parquet = true;
        // Every label is kept while the task is unknown: a row group's labels are in memory
        // anyway, and the set is what the pass is for.
        let plan = Plan::training(p.cols, &p.fcols, &p.tcols, spec.task, usize::MAX);
        let mut problems = TargetProblems::default();
        for g in 0..o.groups() {
            p.parquet_group(&o, &plan, g, (&mut pass, &mut problems), budget)?;
        }
        // The task, and the target problems worded as the Parquet loader words them.
        pass.non_numeric = problems
            .non_numeric
            .as_ref()
            .map(|(at, why)| (at.row as u64 + 1, at.col, why.clone()));
        let task = pass.task(spec, &p);
        let first = match task {
            Task::Regression => problems.numeric,
            Task::Classification => problems.label.filter(|_| p.tcols.len() == 1),
        };
        if let Some((at, why)) = first {
            return Err(parquet::problem(&t, &at, why, Role::Target));
        }
        pass.finish(p, &t, spec)
    }

    /// The first pass over row group `g`: its training rows into the statistics, its labels,
    /// its rows into the last shard or a new one.
    fn parquet_group(
        &mut self,
        o: &Opened,
        plan: &Plan,
        g: usize,
        (pass, problems): (&mut Pass, &mut TargetProblems),
        budget: u64,
    ) -> Result<()> {
        let (nf, nt) = (self.fcols.len(), self.tcols.len());
        let rows = o.group_rows(g);
        // Its compressed column chunks, one decoded column (f64), its rows as numbers twice
        // (read, then kept and shuffled).
        let cost = o.group_bytes(g) + 8 * rows as u64 + 2 * row_bytes(nf, nt) * rows as u64;
        if cost > pass.shard_budget {
            return Err(Error::flag(
                "--max-memory",
                format!(
                    "row group {g} of {} ({rows} rows) needs about {} to read, more than half \
                     of {}; raise --max-memory, or write the file with smaller row groups \
                     (pyarrow: row_group_size)",
                    self.path.display(),
                    crate::budget::human(cost as u128),
                    crate::budget::human(budget as u128)
                ),
            ));
        }
        let x = parquet::read_features_in(o, plan, Role::Feature, g..g + 1)?;
        let tg = parquet::read_targets_in(o, plan, &self.tcols, g..g + 1)?;
        if tg.numeric_error.is_some() {
            // Not all numbers: not classes by the whole-number rule.
            pass.whole.push(None);
        }
        let y: &[f32] = if plan.numeric_targets { &tg.y } else { &[] };
        let train = pass.statistics(self, &x, y, rows);
        problems.numeric = problems.numeric.take().or(tg.numeric_error);
        problems.non_numeric = problems.non_numeric.take().or(tg.non_numeric);
        problems.label = problems.label.take().or(tg.label_error);
        pass.labels.extend(tg.labels.into_iter().map(|l| (l, ())));
        let grows = |s: &Shard| {
            s.groups.end == g && s.bytes + cost <= pass.shard_budget && !s.groups.is_empty()
        };
        match self.shards.last_mut() {
            Some(s) if grows(s) => {
                s.groups.end = g + 1;
                s.bytes += cost;
                s.rows += rows as u64;
                s.train_rows += train;
            }
            _ => self.shards.push(Shard {
                offset: 0,
                // For a Parquet shard: the memory its row groups take to read.
                bytes: cost,
                first_row: self.rows,
                rows: rows as u64,
                train_rows: train,
                newlines_before: 0,
                cuts: Vec::new(),
                groups: g..g + 1,
            }),
        }
        self.rows += rows as u64;
        Ok(())
    }

    /// Shard `k` of a Parquet file: its row groups decoded, then its training (or validation)
    /// rows kept, shuffled and standardized as [`StreamPlan::select`] does for text.
    pub(super) fn parquet_rows(
        &self,
        plan: &Plan,
        k: usize,
        epoch: usize,
        val: bool,
        spare: usize,
    ) -> Result<ShardRows> {
        let s = &self.shards[k];
        let o = parquet::open(&self.path)?;
        let x = parquet::read_features_in(&o, plan, Role::Feature, s.groups.clone())?;
        let tg = parquet::read_targets_in(&o, plan, &self.tcols, s.groups.clone())?;
        let bad = match self.schema.task {
            Task::Regression => tg.numeric_error,
            Task::Classification => tg.label_error,
        };
        // The first pass read these cells: a problem now means the file changed since.
        if let Some((at, why)) = bad {
            return Err(parquet::problem(&self.table, &at, why, Role::Target));
        }
        let c = Chunk {
            x,
            y: if plan.numeric_targets {
                tg.y
            } else {
                Vec::new()
            },
            ids: tg.ids,
            lines: (0..s.rows).collect(),
            ..Chunk::default()
        };
        let parts = [Part {
            c,
            newlines_before: s.first_row,
            first_row: 0,
        }];
        self.select(k, epoch, &parts, val, spare)
    }
}
