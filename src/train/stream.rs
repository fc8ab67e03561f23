//! Training on rows read shard by shard (`--max-memory`): the same steps, optimizer, schedule,
//! early stopping and stop requests as in-memory training (one epoch loop drives both), on
//! rows that [`StreamPlan::epoch_ahead`] reads from the file while the previous shard trains.
//!
//! Each shard's rows (already shuffled and standardized by the plan) are uploaded, trained in
//! batches in that order, and freed before the next shard is uploaded, so the backend holds one
//! shard and the host at most the next one. The rows that do not fill a last batch are carried
//! over and appended to the next shard, so every batch but the epoch's last is full and an
//! epoch takes as many steps as in memory (short batches of a few rows at every shard's end
//! made tiny shards train measurably worse). Every batch writes its loss into its own slot of
//! one buffer read once per epoch, and the validation rows, streamed after the epoch, into
//! their own slots of another: sums in a fixed order, so a seed gives the same model bit for
//! bit.

use std::ops::ControlFlow;

use super::{
    Backend, Buf, Epochs, History, Metrics, Rows, STATS_WIDTH, Schedule, Snapshot, Stepper,
    TrainConfig, Uploaded, epoch_loop, sum_stats, target_cols, target_unit, upload,
};
use crate::budget;
use crate::data::{ShardRows, StreamPlan};
use crate::error::{Error, Result};
use crate::metrics::EpochMetrics;
use crate::model::Model;
use crate::spec::{Loss, Task};

/// The training state of a streamed run (see the module doc).
pub struct StreamTrainer<'p> {
    plan: &'p StreamPlan,
    st: Stepper,
    batch: usize,
    /// One loss sum per training batch of an epoch, every shard's batches in turn.
    losses: Buf,
    n_batches: usize,
    /// `STATS_WIDTH` sums per batch-sized chunk of validation rows (none without them).
    val_stats: Option<Buf>,
    /// Passes begun (the schedule's epoch, 1-based).
    epoch: usize,
    /// Batches of the current pass done when a stop request ended it (0 after a whole pass):
    /// where a checkpoint taken then resumes.
    next_batch: usize,
    /// Batches of the current pass to pass over, without a step: a run resumed within a pass
    /// reads that pass's shards again from its start (their order and rows are the seed's)
    /// and steps from where it stopped.
    skip: usize,
    lr: f64,
    schedule: Schedule,
    total_steps: u64,
    task: Task,
    /// See `target_unit`.
    unit: f64,
    y_cols: usize,
}

/// Chunks of at most `batch` rows over every shard's validation rows.
fn val_chunks(plan: &StreamPlan, batch: usize) -> usize {
    plan.shards
        .iter()
        .map(|s| ((s.rows - s.train_rows) as usize).div_ceil(batch))
        .sum()
}

/// Training rows left over from the previous shard (fewer than a batch).
#[derive(Default)]
struct Carry {
    x: Vec<f32>,
    y: Vec<f32>,
    rows: usize,
}

impl<'p> StreamTrainer<'p> {
    pub fn new<B: Backend + ?Sized>(
        be: &mut B,
        model: &Model,
        plan: &'p StreamPlan,
        cfg: &TrainConfig,
    ) -> Result<StreamTrainer<'p>> {
        if plan.train_rows == 0 || cfg.batch_size == 0 {
            return Err(Error::flag(
                "--batch-size",
                "needs rows and a batch of at least 1",
            ));
        }
        let batch = cfg.batch_size.min(plan.train_rows as usize);
        let n_batches = (plan.train_rows as usize).div_ceil(batch);
        // Every device buffer within the device's limits (one shard is uploaded at a time).
        if let Some(lim) = be.limits() {
            let rows = plan.shards.iter().map(|s| s.rows).max().unwrap_or(0) as usize;
            let needs = budget::DeviceNeeds::of(&model.sizes(), batch, rows, target_cols(model));
            budget::check_device(&needs, &lim, budget::DeviceRun::Training)?;
        }
        let val_stats = match val_chunks(plan, batch) {
            0 => None,
            n => Some(be.alloc(n * STATS_WIDTH)?),
        };
        Ok(StreamTrainer {
            plan,
            st: Stepper::new(be, model, batch, cfg)?,
            batch,
            losses: be.alloc(n_batches)?,
            n_batches,
            val_stats,
            epoch: 0,
            next_batch: 0,
            skip: 0,
            lr: cfg.lr as f64,
            schedule: cfg.schedule,
            total_steps: (n_batches as u64).saturating_mul(cfg.epochs as u64),
            task: model.schema.task,
            unit: target_unit(model),
            y_cols: target_cols(model),
        })
    }

    /// A shard's rows on the backend; the host's copy is dropped here.
    fn upload_shard<B: Backend + ?Sized>(&self, be: &mut B, s: ShardRows) -> Result<Uploaded> {
        let rows = Rows {
            x: s.x,
            y: s.y,
            rows: s.rows,
        };
        upload(be, &rows, self.y_cols)
    }

    /// Trains one shard's rows and the rows carried over from the previous one in full
    /// batches (all of them in the epoch's `last` shard), the first batch's loss into
    /// `losses[*slot]`, and carries the rest over; `Break` when `stop` asked to end the run
    /// (after a step, never at the epoch's end).
    fn train_shard<B: Backend + ?Sized>(
        &mut self,
        be: &mut B,
        mut s: ShardRows,
        carry: &mut Carry,
        last: bool,
        slot: &mut usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<ControlFlow<()>> {
        // Within the capacity the plan reserved (`spare`): no reallocation.
        s.x.extend_from_slice(&carry.x);
        s.y.extend_from_slice(&carry.y);
        s.rows += carry.rows;
        let full = match last {
            true => s.rows,
            false => s.rows / self.batch * self.batch,
        };
        let (nx, ny) = (s.x.len() / s.rows.max(1), self.y_cols);
        *carry = Carry {
            x: s.x[full * nx..].to_vec(),
            y: s.y[full * ny..].to_vec(),
            rows: s.rows - full,
        };
        let batches = full.div_ceil(self.batch);
        if full == 0 || *slot + batches <= self.skip {
            *slot += batches;
            return Ok(ControlFlow::Continue(()));
        }
        let data = self.upload_shard(be, s)?;
        let mut flow = ControlFlow::Continue(());
        for start in (0..full).step_by(self.batch) {
            if *slot < self.skip {
                *slot += 1;
                continue;
            }
            let m = self.batch.min(full - start);
            let lr = self
                .schedule
                .lr(self.lr, self.epoch, self.st.step, self.total_steps);
            self.st
                .step(be, &data, start, m, self.losses, *slot, lr as f32)?;
            *slot += 1;
            if *slot < self.n_batches && stop() {
                flow = ControlFlow::Break(());
                break;
            }
        }
        data.free(be)?;
        Ok(flow)
    }

    /// Records the forward pass and `eval_stats` of one shard's validation rows, from
    /// `stats[*slot]` on.
    fn eval_shard<B: Backend + ?Sized>(
        &self,
        be: &mut B,
        s: ShardRows,
        stats: Buf,
        slot: &mut usize,
    ) -> Result<()> {
        if s.rows == 0 {
            return Ok(());
        }
        let data = self.upload_shard(be, s)?;
        let (net, y, scale) = (&self.st.net, self.st.y_batch, self.st.scale);
        let n = *net.sizes.last().unwrap_or(&1);
        let classes = self.task == Task::Classification;
        for start in (0..data.rows).step_by(self.batch) {
            let m = self.batch.min(data.rows - start);
            data.gather(be, start, m, net.a[0], Some(y))?;
            net.forward(be, m)?;
            be.eval_stats(classes, net.output(), y, scale, m, n, stats, *slot)?;
            *slot += 1;
        }
        data.free(be)
    }
}

impl Epochs for StreamTrainer<'_> {
    /// One pass over the file's training rows, shard by shard; its mean loss per row (one
    /// read), or `None` when `stop` ended it early.
    fn run_epoch_until<B: Backend + ?Sized>(
        &mut self,
        be: &mut B,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<f64>> {
        self.epoch += 1;
        let (plan, mut slot, mut stopped) = (self.plan, 0, false);
        let (mut carry, mut seen) = (Carry::default(), 0);
        plan.epoch_ahead(self.epoch, false, self.batch, |s| {
            seen += 1;
            let last = seen == plan.shards.len();
            let flow = self.train_shard(be, s, &mut carry, last, &mut slot, stop)?;
            stopped = flow.is_break();
            Ok(flow)
        })?;
        self.skip = 0;
        if stopped {
            self.next_batch = slot;
            return Ok(None);
        }
        self.next_batch = 0;
        if slot != self.n_batches {
            return Err(Error::internal(format!(
                "epoch {} took {slot} batches, the first pass planned {}",
                self.epoch, self.n_batches
            )));
        }
        let per_unit = match self.st.loss {
            Loss::Mse => self.unit * self.unit,
            Loss::Mae => self.unit,
            _ => 1.0,
        };
        let sum = be.read(self.losses)?.iter().map(|&v| v as f64).sum::<f64>();
        Ok(Some(sum * per_unit / self.plan.train_rows as f64))
    }

    /// The current weights' metrics on the held-out rows, streamed (one read).
    fn validate<B: Backend + ?Sized>(&mut self, be: &mut B) -> Result<Option<Metrics>> {
        let Some(stats) = self.val_stats else {
            return Ok(None);
        };
        let mut slot = 0;
        self.plan.epoch_ahead(self.epoch, true, 0, |s| {
            self.eval_shard(be, s, stats, &mut slot)?;
            Ok(ControlFlow::Continue(()))
        })?;
        let sums = sum_stats(&be.read(stats)?);
        let rows = self.plan.val_rows as usize;
        Ok(Some(
            Metrics::from_sums(self.task, sums, rows).in_units(self.unit),
        ))
    }

    fn download<B: Backend + ?Sized>(&self, be: &mut B, model: &mut Model) -> Result<()> {
        self.st.net.download(be, model)
    }

    /// No row order or generator position: a pass's shard order and rows come from the seed
    /// and the pass's number alone.
    fn snapshot<B: Backend + ?Sized>(&self, be: &mut B) -> Result<Snapshot> {
        let losses = be.read(self.losses)?;
        Ok(Snapshot {
            epoch: self.epoch,
            batch: self.next_batch,
            step: self.st.step,
            rng: 0,
            order: Vec::new(),
            partial_losses: losses[..self.next_batch].to_vec(),
            state: self.st.optimizer_state(be)?,
        })
    }

    fn restore<B: Backend + ?Sized>(&mut self, be: &mut B, s: &Snapshot) -> Result<()> {
        let bad = |msg: String| Err(Error::internal(format!("checkpoint does not fit: {msg}")));
        if !s.order.is_empty() {
            return bad("it holds a row order: it was taken in memory, not streamed".into());
        }
        if s.batch >= self.n_batches || s.partial_losses.len() != s.batch {
            return bad(format!("batch {} of {}", s.batch, self.n_batches));
        }
        self.st.set_optimizer_state(be, &s.state)?;
        // run_epoch_until begins the pass the snapshot was taken in again (s.batch > 0) or
        // the next one.
        self.epoch = s.epoch - usize::from(s.batch > 0);
        self.skip = s.batch;
        self.st.step = s.step;
        let mut losses = vec![0f32; self.n_batches];
        losses[..s.batch].copy_from_slice(&s.partial_losses);
        be.write(self.losses, &losses)
    }
}

/// Trains `model` (initialized, its normalizers the plan's) on the rows `plan` streams, as
/// [`super::train_with`] trains on rows in memory: the same epoch loop, metrics, early
/// stopping and stop requests. A checkpoint resumes within a pass (see `StreamTrainer::skip`).
pub fn train_stream<B: Backend + ?Sized>(
    be: &mut B,
    model: &mut Model,
    plan: &StreamPlan,
    cfg: &TrainConfig,
    on_epoch: impl FnMut(&EpochMetrics),
    mut ctl: super::Control,
) -> Result<History> {
    if cfg.patience.is_some() && plan.val_rows == 0 {
        return Err(Error::flag(
            "--patience",
            "early stopping needs validation rows (--val-split)",
        ));
    }
    let mut trainer = StreamTrainer::new(be, model, plan, cfg)?;
    let start = super::start(be, &mut trainer, model, cfg, plan.val_rows > 0, &mut ctl)?;
    epoch_loop(be, &mut trainer, model, cfg, start, on_epoch, ctl)
}
