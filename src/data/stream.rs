//! Tables larger than memory: one pass for the statistics, then epochs read shard by shard.
//!
//! [`StreamPlan::scan`] reads the file once through the streaming loader's parser and keeps no
//! rows: it counts them, holds validation rows out by a seeded hash of the row number
//! ([`is_val_row`]: the same rows every epoch, no index in memory), accumulates the
//! normalizer's mean and variance of the training rows with Welford's update in f64 (in file
//! order, so bit-reproducible), learns the class labels, and cuts the file into shards: runs
//! of whole blocks whose rows fit in half the memory budget (the other half is the next shard
//! being read while this one trains). A Parquet file's shards are runs of whole row groups
//! (`stream_parquet.rs`).
//!
//! [`StreamPlan::epoch`] then yields shards in a seeded random order (a plain CSV file is read
//! at each shard's byte offset; gzip cannot seek, so its shards come in file order), each with
//! its training rows shuffled by a generator seeded from (seed, epoch, shard) and standardized.
//! How this differs from in-memory shuffling: a batch only mixes rows of one shard, and a row
//! meets the same shard-mates every epoch (in a new order); with shards of more than a few
//! thousand rows from a file without long sorted runs, SGD does not see the difference.

#[path = "stream_parquet.rs"]
mod pq;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::dataset::{DataSpec, FewWhole, Role, check_two_classes, sort_labels, value_error_at};
use super::loader::{Chunk, LABEL_CAP, Labels, Plan, Problem, one_target, training_columns};
use super::normalize::Normalizer;
use super::scan;
use super::schema::Schema;
use super::table::{Table, unique_names};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::spec::Task;

/// `--max-memory SIZE`: bytes, with an optional K, M, G or T suffix (powers of 1024; `512M`,
/// `1.5G`, `800k`).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                'B' => 1,
                _ => 0,
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    match num.trim().parse::<f64>() {
        Ok(v) if mult > 0 && v.is_finite() && v >= 1.0 => Ok((v * mult as f64) as u64),
        _ => Err(Error::flag(
            "--max-memory",
            format!("'{s}' is not a size: give bytes or e.g. 512M, 2G"),
        )),
    }
}

/// About how many bytes the f32 matrix of a CSV / CSV.gz file takes, before reading it: its
/// columns from the first line, its rows from the file's size and the first MiB of text (for
/// gzip, scaled by that MiB's compression ratio); a Parquet file's, exactly, from its footer.
/// For deciding whether to stream only: an estimate, never used for an allocation.
pub fn estimate_matrix_bytes(path: &Path) -> Result<u128> {
    // A pipe (`<(zcat …)`) would lose the text read here (and opening a FIFO waits for a
    // writer); its size is unknown anyway.
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::flag(
            "--max-memory",
            "only a regular file is estimated",
        ));
    }
    if super::parquet::is_parquet(path) {
        // Exact from the footer: its rows times its columns.
        let o = super::parquet::open(path)?;
        return Ok(4 * o.rows as u128 * o.table.header.len() as u128);
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = meta.len() as u128;
    let mut raw = std::io::BufReader::new(file);
    let gz = matches!(std::io::BufRead::fill_buf(&mut raw), Ok([0x1f, 0x8b, ..]));
    let counted = CountingRead { inner: raw, n: 0 };
    const SAMPLE: u64 = 1 << 20;
    let mut text = Vec::new();
    let consumed = if gz {
        let mut d = flate2::read::MultiGzDecoder::new(counted);
        d.by_ref()
            .take(SAMPLE)
            .read_to_end(&mut text)
            .map_err(|e| Error::io(path, e))?;
        d.get_ref().n as u128
    } else {
        let mut c = counted;
        c.by_ref()
            .take(SAMPLE)
            .read_to_end(&mut text)
            .map_err(|e| Error::io(path, e))?;
        c.n as u128
    };
    let first = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let cols = first.iter().filter(|&&b| b == b',').count() as u128 + 1;
    let lines = text.iter().filter(|&&b| b == b'\n').count().max(1) as u128;
    let total_text = match consumed {
        0 => 0,
        c if gz => text.len() as u128 * len / c,
        _ => len,
    };
    let rows = total_text * lines / (text.len() as u128).max(1);
    Ok(rows * cols * 4)
}

struct CountingRead<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// The memory budget to stream with when `--max-memory` is not given: `None` (train in
/// memory) while `need`, the bytes in-memory training would hold at its peak, stays within
/// 80% of `available`; else half of what is available, the rest left to the network, the
/// backend and everything else on the machine. Unknown availability never streams.
pub fn auto_budget(need: u128, available: Option<u128>) -> Option<u64> {
    let avail = available?;
    (need > avail / 10 * 8).then(|| (avail / 2).min(u64::MAX as u128) as u64)
}

/// Whether file row `row` (0-based data row) validates, for a fraction `frac` and `seed`:
/// a SplitMix64 hash of the row number, so the choice needs no index and is the same in every
/// pass.
pub fn is_val_row(seed: u64, row: u64, frac: f64) -> bool {
    let mut z = seed ^ row.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < frac
}

/// Running mean and variance per column (Welford), in f64.
#[derive(Clone, Debug)]
pub struct Welford {
    pub n: u64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Welford {
    pub fn new(cols: usize) -> Welford {
        Welford {
            n: 0,
            mean: vec![0.0; cols],
            m2: vec![0.0; cols],
        }
    }

    pub fn push(&mut self, row: &[f32]) {
        self.n += 1;
        let n = self.n as f64;
        for ((m, q), &v) in self.mean.iter_mut().zip(&mut self.m2).zip(row) {
            let d = v as f64 - *m;
            *m += d / n;
            *q += d * (v as f64 - *m);
        }
    }

    /// Mean and population std, as [`Normalizer::fit`] gives them (a constant column gets 1).
    pub fn normalizer(&self) -> Normalizer {
        if self.n == 0 {
            return Normalizer::identity(self.mean.len());
        }
        let std = self
            .m2
            .iter()
            .map(|q| {
                let s = (q / self.n as f64).sqrt();
                if s < 1e-12 { 1.0 } else { s as f32 }
            })
            .collect();
        Normalizer {
            mean: self.mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }
}

/// A run of whole blocks of the file's text.
#[derive(Clone, Debug, PartialEq)]
pub struct Shard {
    /// Byte offset of the text (after decompression) and its length; for a Parquet file, 0
    /// and the memory its row groups take to read.
    pub offset: u64,
    pub bytes: u64,
    /// Data rows before it and in it (training and validation), and its training rows.
    pub first_row: u64,
    pub rows: u64,
    pub train_rows: u64,
    /// `\n`s before it, for file lines in messages.
    newlines_before: u64,
    /// Where its blocks after the first start (bytes into its text): record boundaries, where
    /// its text can be cut to be parsed in parallel.
    cuts: Vec<u64>,
    /// Its row groups, in a Parquet file (empty for text).
    groups: std::ops::Range<usize>,
}

impl Shard {
    /// The blocks its text is made of (a shard of several is parsed in parallel parts).
    pub fn blocks(&self) -> usize {
        self.cuts.len() + 1
    }
}

/// What the first pass learned.
#[derive(Clone, Debug)]
pub struct StreamPlan {
    pub path: PathBuf,
    pub schema: Schema,
    pub shards: Vec<Shard>,
    pub rows: u64,
    pub train_rows: u64,
    pub val_rows: u64,
    /// Features (and, for regression, targets) of the training rows.
    pub features: Normalizer,
    pub targets: Normalizer,
    gz: bool,
    /// The header, for messages.
    table: Table,
    seed: u64,
    val_frac: f64,
    cols: usize,
    fcols: Vec<usize>,
    tcols: Vec<usize>,
    /// A Parquet file: shards are runs of row groups (`Shard::groups`), read by `pq`.
    parquet: bool,
}

/// The first pass's running state.
struct Pass {
    fw: Welford,
    tw: Welford,
    labels: HashMap<String, ()>,
    /// Text offset and `\n`s before the next block.
    offset: u64,
    newlines: u64,
    fail: Option<Error>,
    /// The first target problem and non-number (line, column, why), kept until the task is
    /// known.
    target_err: Option<(u64, usize, String)>,
    non_numeric: Option<(u64, usize, String)>,
    overflow: bool,
    shard_budget: u64,
    /// Whether a single target holds a few whole numbers (then classes, as the loader reads
    /// it when the task is not given).
    whole: FewWhole,
}

impl Pass {
    fn block(
        &mut self,
        p: &mut StreamPlan,
        t: &Table,
        task: Option<Task>,
        c: Chunk,
    ) -> ControlFlow<()> {
        if let Some(e) = c.error(t, self.newlines, task) {
            self.fail = Some(e);
            return ControlFlow::Break(());
        }
        let base = self.newlines;
        let at = |p: &Problem| (base + p.line + 1, p.col, p.why.clone());
        self.target_err = self.target_err.take().or(c.target.as_ref().map(at));
        self.non_numeric = self.non_numeric.take().or(c.non_numeric.as_ref().map(at));
        self.overflow |= c.overflow;
        let (nf, nt) = (p.fcols.len(), p.tcols.len());
        let rows = c.lines.len();
        let train = self.statistics(p, &c.x, &c.y, rows);
        if !self.overflow {
            self.labels.extend(c.labels.into_iter().map(|l| (l, ())));
        }
        let cost = 2 * row_bytes(nf, nt) * rows as u64;
        let size = (cost, self.shard_budget);
        let rows = (rows as u64, train);
        p.add_block(self.offset, c.bytes as u64, rows, self.newlines, size);
        self.offset += c.bytes as u64;
        self.newlines += c.newlines;
        ControlFlow::Continue(())
    }

    /// The next `rows` rows of the file (`x`; `y`, empty unless the targets are numbers) into
    /// the statistics: validation rows counted, training rows into the normalizers, every
    /// target into the whole-number test. Returns the training rows.
    fn statistics(&mut self, p: &mut StreamPlan, x: &[f32], y: &[f32], rows: usize) -> u64 {
        let (nf, nt) = (p.fcols.len(), p.tcols.len());
        let mut train = 0;
        for r in 0..rows {
            if is_val_row(p.seed, p.rows + r as u64, p.val_frac) {
                p.val_rows += 1;
                continue;
            }
            train += 1;
            self.fw.push(&x[r * nf..(r + 1) * nf]);
            if !y.is_empty() {
                self.tw.push(&y[r * nt..(r + 1) * nt]);
            }
        }
        if nt == 1 && !y.is_empty() {
            y.iter().for_each(|&v| self.whole.push(Some(v as f64)));
        }
        train
    }

    /// The task: given, else inferred as the loader infers it (a target that is not all
    /// numbers, or a single one of a few whole numbers, is classes).
    fn task(&self, spec: &DataSpec, p: &StreamPlan) -> Task {
        match spec.task {
            Some(t) => t,
            None if self.non_numeric.is_some() => Task::Classification,
            None if p.tcols.len() == 1
                && self.target_err.is_none()
                && self.whole.holds(p.rows as usize) =>
            {
                Task::Classification
            }
            None => Task::Regression,
        }
    }

    /// The task (given, or inferred as the loader infers it), its checks, the statistics.
    fn finish(self, mut p: StreamPlan, t: &Table, spec: &DataSpec) -> Result<StreamPlan> {
        if let Some(e) = self.fail {
            return Err(e);
        }
        let task = self.task(spec, &p);
        p.schema.task = task;
        match task {
            Task::Regression => {
                if let Some((line, col, why)) = self.target_err {
                    return Err(value_error_at(t, line, col, why, Role::Target));
                }
                p.targets = self.tw.normalizer();
            }
            Task::Classification => {
                let nt = p.tcols.len();
                if nt != 1 {
                    let why = self
                        .non_numeric
                        .as_ref()
                        .map(|(l, c, w)| (&t.header[*c], w, *l));
                    return Err(one_target(nt, spec, why));
                }
                if self.overflow {
                    return Err(Error::flag(
                        "--task",
                        "the target holds too many distinct labels to infer the task while \
                         streaming; say --task classification or --task regression",
                    ));
                }
                let all: Vec<String> = self.labels.into_keys().collect();
                p.schema.classes = check_two_classes(t, p.tcols[0], sort_labels(all))?;
            }
        }
        p.train_rows = self.fw.n;
        if p.rows == 0 {
            return Err(Error::data(&t.path, 0, 0, "no data rows after the header"));
        }
        if p.train_rows == 0 {
            return Err(Error::flag("--val-split", "leaves no training rows"));
        }
        p.features = self.fw.normalizer();
        Ok(p)
    }
}

/// One shard's training rows, shuffled and standardized, ready for a backend.
#[derive(Debug, PartialEq)]
pub struct ShardRows {
    pub index: usize,
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub rows: usize,
    /// File line of each row (for messages and tests).
    pub lines: Vec<u64>,
}

/// A parsed piece of a shard: its chunk, the `\n`s before it in the file, and the shard's
/// rows before it.
struct Part {
    c: Chunk,
    newlines_before: u64,
    first_row: usize,
}

/// Bytes of f32 per row of the matrices.
fn row_bytes(nf: usize, nt: usize) -> u64 {
    4 * (nf + nt.max(1)) as u64 + 8
}

impl StreamPlan {
    /// The first pass over a CSV / CSV.gz file (see the module doc), or a Parquet file
    /// (`scan_parquet`). `budget` is the memory for rows in bytes; `val_frac` of the rows (by
    /// hash) validate.
    pub fn scan(
        path: &Path,
        spec: &DataSpec,
        budget: u64,
        val_frac: f64,
        seed: u64,
    ) -> Result<StreamPlan> {
        if !(0.0..1.0).contains(&val_frac) {
            return Err(Error::flag(
                "--val-split",
                format!("must be in [0, 1), got {val_frac}"),
            ));
        }
        if super::parquet::is_parquet(path) {
            return StreamPlan::scan_parquet(path, spec, budget, val_frac, seed);
        }
        let o = scan::open(path)?;
        let t = Table {
            path: path.to_path_buf(),
            header: unique_names(&o.raw_header),
            records: Vec::new(),
            lines: Vec::new(),
            raw_header: o.raw_header.clone(),
        };
        let (mut p, mut pass) = StreamPlan::begin(&t, spec, budget, (seed, val_frac))?;
        (p.gz, pass.offset, pass.newlines) = (o.gz, o.data_start, o.newlines_before);
        let plan = Plan::training(p.cols, &p.fcols, &p.tcols, spec.task, LABEL_CAP);
        // Blocks are a 32nd of the budget so that a shard (half of it, see `begin`) is several
        // blocks even where the numbers take 5× the text (MNIST's one-digit cells): the cut is
        // fine, and a shard parses in parallel, a part per core.
        let block = ((budget / 32) as usize).clamp(1 << 12, scan::BLOCK);
        scan::scan(
            o,
            false,
            block,
            |b| plan.parse_chunk(b),
            |_, c| pass.block(&mut p, &t, spec.task, c),
        )?;
        pass.finish(p, &t, spec)
    }

    /// A plan for `t`'s training columns (`spec`) with no rows yet, and the first pass's
    /// state: what the CSV and the Parquet first passes both begin with.
    fn begin(
        t: &Table,
        spec: &DataSpec,
        budget: u64,
        (seed, val_frac): (u64, f64),
    ) -> Result<(StreamPlan, Pass)> {
        let (tcols, fcols) = training_columns(t, spec)?;
        if spec.task == Some(Task::Classification) && tcols.len() != 1 {
            return Err(one_target(tcols.len(), spec, None));
        }
        let (nf, nt) = (fcols.len(), tcols.len());
        let p = StreamPlan {
            path: t.path.clone(),
            schema: Schema {
                features: fcols.iter().map(|&c| t.header[c].clone()).collect(),
                targets: tcols.iter().map(|&c| t.header[c].clone()).collect(),
                task: spec.task.unwrap_or(Task::Regression),
                classes: Vec::new(),
                window: None,
            },
            shards: Vec::new(),
            rows: 0,
            train_rows: 0,
            val_rows: 0,
            features: Normalizer::identity(nf),
            targets: Normalizer::identity(nt),
            gz: false,
            table: t.clone(),
            seed,
            val_frac,
            cols: t.header.len(),
            fcols,
            tcols,
            parquet: false,
        };
        let pass = Pass {
            fw: Welford::new(nf),
            tw: Welford::new(nt),
            labels: HashMap::new(),
            offset: 0,
            newlines: 0,
            fail: None,
            target_err: None,
            non_numeric: None,
            overflow: false,
            // Half the budget per shard (one trains while the next is read): its text or
            // row groups, its rows as numbers and their shuffled copy.
            shard_budget: (budget / 2).max(1),
            whole: FewWhole::default(),
        };
        Ok((p, pass))
    }

    /// Grow the last shard by a block, or start a new one when it would not fit in `budget`
    /// bytes (its text plus `cost`, the block's rows as numbers, twice).
    /// `rows`: the block's data rows and training rows among them.
    fn add_block(
        &mut self,
        offset: u64,
        bytes: u64,
        rows: (u64, u64),
        newlines: u64,
        size: (u64, u64),
    ) {
        let ((rows, train), (cost, budget)) = (rows, size);
        let per_row = |s: &Shard| s.bytes + cost / rows.max(1) * s.rows;
        match self.shards.last_mut() {
            Some(s) if per_row(s) + bytes + cost <= budget => {
                s.cuts.push(s.bytes);
                s.bytes += bytes;
                s.rows += rows;
                s.train_rows += train;
            }
            _ => self.shards.push(Shard {
                offset,
                bytes,
                first_row: self.rows,
                rows,
                train_rows: train,
                newlines_before: newlines,
                cuts: Vec::new(),
                groups: 0..0,
            }),
        }
        self.rows += rows;
    }

    /// The parse plan for an epoch: class labels are known by now.
    fn epoch_plan(&self) -> Plan {
        let mut plan = Plan::training(
            self.cols,
            &self.fcols,
            &self.tcols,
            Some(self.schema.task),
            0,
        );
        if self.schema.task == Task::Classification {
            plan.labels = Labels::Known(
                self.schema
                    .classes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.clone(), i as u32))
                    .collect(),
            );
        }
        plan
    }

    /// The order shards are read in epoch `epoch` (1-based): seeded, except for gzip.
    pub fn shard_order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.shards.len()).collect();
        if !self.gz {
            Rng::derive(self.seed ^ 0x5eed_0000, epoch as u64).shuffle(&mut order);
        }
        order
    }

    /// Call `f` with every shard's training rows of epoch `epoch`, shuffled and standardized;
    /// `val` instead gives the validation rows, in file order.
    pub fn epoch(
        &self,
        epoch: usize,
        val: bool,
        f: impl FnMut(ShardRows) -> Result<()>,
    ) -> Result<()> {
        self.epoch_with(epoch, val, 0, f)
    }

    /// [`StreamPlan::epoch`], each shard's vectors with room for `spare` more rows (a trainer
    /// appends the rows it carries over from the previous shard without a reallocation).
    fn epoch_with(
        &self,
        epoch: usize,
        val: bool,
        spare: usize,
        mut f: impl FnMut(ShardRows) -> Result<()>,
    ) -> Result<()> {
        let plan = self.epoch_plan();
        let mut text = Vec::new();
        let mut gz = if self.gz { Some(self.open_gz()?) } else { None };
        let mut at = 0u64;
        let order = if val {
            (0..self.shards.len()).collect()
        } else {
            self.shard_order(epoch)
        };
        for k in order {
            if self.parquet {
                f(self.parquet_rows(&plan, k, epoch, val, spare)?)?;
                continue;
            }
            let s = &self.shards[k];
            text.clear();
            match &mut gz {
                Some(r) => {
                    // Gzip reads on: skip to the shard (shards come in file order).
                    let skip = s.offset - at;
                    std::io::copy(&mut r.by_ref().take(skip), &mut std::io::sink())
                        .map_err(|e| Error::io(&self.path, e))?;
                    r.by_ref()
                        .take(s.bytes)
                        .read_to_end(&mut text)
                        .map_err(|e| Error::io(&self.path, e))?;
                    at = s.offset + s.bytes;
                }
                None => {
                    let mut file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
                    file.seek(SeekFrom::Start(s.offset))
                        .and_then(|_| file.by_ref().take(s.bytes).read_to_end(&mut text))
                        .map_err(|e| Error::io(&self.path, e))?;
                }
            }
            let rows = self.shard_rows(&plan, k, epoch, &text, val, spare)?;
            f(rows)?;
        }
        Ok(())
    }

    /// [`StreamPlan::epoch`] with the next shard read and parsed on a thread of its own while
    /// `f` works on the current one: double buffering, so the trainer does not wait on the
    /// disk, and at most two shards are held (the one `f` has, the one being read; the reader
    /// starts a shard only once `f` has taken the previous one). `f` returns `Break` to end
    /// the epoch early (a stop request); the reader then stops at its next shard. `spare`:
    /// room for that many more rows in each shard's vectors (see `epoch_with`).
    pub fn epoch_ahead(
        &self,
        epoch: usize,
        val: bool,
        spare: usize,
        mut f: impl FnMut(ShardRows) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<ShardRows>(0);
            let reader = s.spawn(move || {
                self.epoch_with(epoch, val, spare, |rows| {
                    tx.send(rows)
                        .map_err(|_| Error::internal("the shard reader was left"))
                })
            });
            let (mut got, mut stopped) = (Ok(()), false);
            for rows in rx.iter() {
                match f(rows) {
                    Ok(ControlFlow::Continue(())) => {}
                    Ok(ControlFlow::Break(())) => {
                        stopped = true;
                        break;
                    }
                    Err(e) => {
                        got = Err(e);
                        break;
                    }
                }
            }
            // Unblocks a reader waiting to hand over a shard nobody will take.
            drop(rx);
            let read = reader
                .join()
                .unwrap_or_else(|_| Err(Error::internal("the shard reader panicked")));
            match got {
                Err(e) => Err(e),
                Ok(()) if stopped => Ok(()),
                Ok(()) => read,
            }
        })
    }

    fn open_gz(&self) -> Result<Box<dyn Read>> {
        let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::new(file),
        )))
    }

    /// A shard's text cut at block boundaries into about one part per core, parsed in
    /// parallel, in order; the first problem (in file order) is the error.
    fn parse_parts(&self, plan: &Plan, s: &Shard, text: &[u8]) -> Result<Vec<Part>> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let want = cores.min(s.cuts.len() + 1);
        let mut bounds = vec![0usize];
        for i in 1..want {
            let goal = (text.len() * i / want) as u64;
            let at = s.cuts.partition_point(|&c| c < goal);
            if let Some(&c) = s.cuts.get(at)
                && c as usize > *bounds.last().unwrap_or(&0)
                && (c as usize) < text.len()
            {
                bounds.push(c as usize);
            }
        }
        bounds.push(text.len());
        let chunks: Vec<Chunk> = std::thread::scope(|sc| {
            let handles: Vec<_> = bounds[1..]
                .iter()
                .zip(&bounds)
                .skip(1)
                .map(|(&e, &b)| sc.spawn(move || plan.parse_chunk(&text[b..e])))
                .collect();
            let first = plan.parse_chunk(&text[..bounds[1]]);
            let rest = handles.into_iter().map(|h| h.join());
            std::iter::once(Ok(first))
                .chain(rest)
                .collect::<std::thread::Result<Vec<Chunk>>>()
        })
        .map_err(|_| Error::internal("a shard parser panicked"))?;
        let (mut newlines, mut first_row) = (s.newlines_before, 0);
        let mut parts = Vec::with_capacity(chunks.len());
        for c in chunks {
            if let Some(e) = c.error(&self.table, newlines, Some(self.schema.task)) {
                return Err(e);
            }
            let n = c.lines.len();
            let next = newlines + c.newlines;
            parts.push(Part {
                c,
                newlines_before: newlines,
                first_row,
            });
            newlines = next;
            first_row += n;
        }
        Ok(parts)
    }

    /// Parse shard `k`'s text (its blocks on every core), keep its training (or validation)
    /// rows, shuffle, standardize. The shuffle and the rows do not depend on the cores.
    fn shard_rows(
        &self,
        plan: &Plan,
        k: usize,
        epoch: usize,
        text: &[u8],
        val: bool,
        spare: usize,
    ) -> Result<ShardRows> {
        let parts = self.parse_parts(plan, &self.shards[k], text)?;
        self.select(k, epoch, &parts, val, spare)
    }

    /// Shard `k`'s parsed `parts`: keep its training (or validation) rows, shuffle,
    /// standardize. The shuffle and the rows do not depend on how it was cut into parts.
    fn select(
        &self,
        k: usize,
        epoch: usize,
        parts: &[Part],
        val: bool,
        spare: usize,
    ) -> Result<ShardRows> {
        let s = &self.shards[k];
        // Row r of the shard is row r - start of the part with the last start ≤ r.
        let starts: Vec<usize> = parts.iter().map(|p| p.first_row).collect();
        let rows = parts.last().map_or(0, |p| p.first_row + p.c.lines.len());
        let (nf, ny) = (self.fcols.len(), self.schema.target_cols());
        let mut keep: Vec<usize> = (0..rows)
            .filter(|&r| is_val_row(self.seed, s.first_row + r as u64, self.val_frac) == val)
            .collect();
        if !val {
            let mix = self.seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            Rng::derive(mix, 1000 + epoch as u64).shuffle(&mut keep);
        }
        let classify = self.schema.task == Task::Classification;
        let mut x = Vec::with_capacity((keep.len() + spare) * nf);
        let mut y = Vec::with_capacity((keep.len() + spare) * ny);
        let mut lines = Vec::with_capacity(keep.len());
        for &row in &keep {
            let p = &parts[starts.partition_point(|&f| f <= row) - 1];
            let (c, r) = (&p.c, row - p.first_row);
            x.extend_from_slice(&c.x[r * nf..(r + 1) * nf]);
            if classify {
                y.push(c.ids[r] as f32);
            } else {
                y.extend_from_slice(&c.y[r * ny..(r + 1) * ny]);
            }
            lines.push(p.newlines_before + c.lines[r] + 1);
        }
        self.features.apply(&mut x);
        if !classify {
            self.targets.apply(&mut y);
        }
        Ok(ShardRows {
            index: k,
            rows: keep.len(),
            x,
            y,
            lines,
        })
    }
}
