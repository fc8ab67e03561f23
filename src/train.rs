//! The training loop, written once against the `Backend` trait: upload the data once, gather
//! each batch through a shuffled index buffer, forward, loss, backward, optimizer step; read
//! back only the per-epoch sums.

use std::time::Instant;

use crate::backend::{Backend, Buf, Clip, Gather, ParamLayout, STATS_WIDTH, StepParams};
use crate::budget;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::rng::Rng;
use crate::spec::{Activation, Loss, Optimizer, Task};

pub mod stream;

/// Rows ready for the network: features standardized, regression targets standardized,
/// class targets as indices. `y` is [rows, targets] or [rows].
#[derive(Clone, Debug, Default)]
pub struct Rows {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub rows: usize,
}

/// How the learning rate moves over the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// lr · gamma^⌊(epoch − 1) / every⌋: drops by `gamma` every `every` epochs.
    Step {
        every: usize,
        gamma: f64,
    },
    /// Cosine from lr down to `min` over all steps of the run (updated every step).
    Cosine {
        min: f64,
    },
}

impl Schedule {
    /// The learning rate for `step` (0-based, of `total` steps) in `epoch` (1-based).
    pub fn lr(&self, base: f64, epoch: usize, step: u64, total: u64) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => {
                base * gamma.powi(((epoch - 1) / every.max(1)) as i32)
            }
            Schedule::Cosine { min } => {
                let t = step as f64 / total.max(1) as f64;
                min + (base - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub optimizer: Optimizer,
    pub lr: f32,
    pub schedule: Schedule,
    pub batch_size: usize,
    pub epochs: usize,
    pub seed: u64,
    pub weight_decay: f32,
    /// Early stopping: stop after this many epochs without a better validation loss, and keep
    /// the best epoch's weights.
    pub patience: Option<usize>,
    /// Clip the gradient (all parameters together) to this L2 norm before each update.
    pub clip: Option<f32>,
    /// Show a progress bar for epochs with many batches (only when stderr is a terminal).
    pub progress: bool,
}

pub use crate::metrics::EpochMetrics;

/// Metrics over a set of rows, in the target's own units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metrics {
    /// Mean squared and mean absolute error.
    Regression { rows: usize, mse: f64, mae: f64 },
    /// Cross-entropy, MSE of the softmax against one-hot, and the share of rows whose largest
    /// output is the right class.
    Classification {
        rows: usize,
        cross_entropy: f64,
        softmax_mse: f64,
        accuracy: f64,
    },
}

impl Metrics {
    /// From `eval_stats` sums over `rows` rows: slots 0 and 1 hold mse and mae (regression)
    /// or cross-entropy and softmax MSE (classification), slot 2 the correct rows.
    /// Regression errors summed in `unit`s (see `target_unit`) back in the target's units.
    fn in_units(self, unit: f64) -> Metrics {
        match self {
            Metrics::Regression { rows, mse, mae } => Metrics::Regression {
                rows,
                mse: mse * unit * unit,
                mae: mae * unit,
            },
            m => m,
        }
    }

    fn from_sums(task: Task, sums: [f64; STATS_WIDTH], rows: usize) -> Metrics {
        let r = rows.max(1) as f64;
        match task {
            Task::Regression => Metrics::Regression {
                rows,
                mse: sums[0] / r,
                mae: sums[1] / r,
            },
            Task::Classification => Metrics::Classification {
                rows,
                cross_entropy: sums[0] / r,
                softmax_mse: sums[1] / r,
                accuracy: sums[2] / r,
            },
        }
    }

    pub fn rows(&self) -> usize {
        match *self {
            Metrics::Regression { rows, .. } | Metrics::Classification { rows, .. } => rows,
        }
    }

    /// The value of `loss` over these rows (what `val_loss` reports); NaN for a loss of the
    /// other task.
    pub fn loss(&self, loss: Loss) -> f64 {
        match (*self, loss) {
            (Metrics::Regression { mse, .. }, Loss::Mse) => mse,
            (Metrics::Regression { mae, .. }, Loss::Mae) => mae,
            (Metrics::Classification { cross_entropy, .. }, Loss::CrossEntropy) => cross_entropy,
            (Metrics::Classification { softmax_mse, .. }, Loss::SoftmaxMse) => softmax_mse,
            _ => f64::NAN,
        }
    }

    /// Accuracy for classification, RMSE for regression.
    pub fn headline(&self) -> f64 {
        match *self {
            Metrics::Regression { mse, .. } => mse.sqrt(),
            Metrics::Classification { accuracy, .. } => accuracy,
        }
    }
}

/// The network's buffers on a backend: the parameter slab (every weight, then every bias:
/// `ParamLayout`) with a view per layer, and the activations of one batch.
struct Net {
    sizes: Vec<usize>,
    act: Activation,
    layout: ParamLayout,
    params: Buf,
    w: Vec<Buf>,
    b: Vec<Buf>,
    /// a[0] is the input batch [batch, sizes[0]]; a[l + 1] the output of layer l.
    a: Vec<Buf>,
    batch: usize,
}

/// One view per layer of a slab laid out by `layout`: (weights, biases).
fn layer_views(slab: Buf, layout: &ParamLayout) -> Result<(Vec<Buf>, Vec<Buf>)> {
    let w = layout
        .w
        .iter()
        .map(|&(o, l)| slab.view(o, l))
        .collect::<Result<_>>()?;
    let b = layout
        .b
        .iter()
        .map(|&(o, l)| slab.view(o, l))
        .collect::<Result<_>>()?;
    Ok((w, b))
}

impl Net {
    fn new<B: Backend + ?Sized>(be: &mut B, model: &Model, batch: usize) -> Result<Net> {
        let sizes = model.sizes();
        let layout = ParamLayout::new(&sizes);
        let mut host = vec![0f32; layout.len];
        for (l, layer) in model.layers.iter().enumerate() {
            let ((wo, wl), (bo, bl)) = (layout.w[l], layout.b[l]);
            if layer.weight.len() != wl || layer.bias.len() != bl {
                return Err(Error::internal(format!(
                    "layer {l} holds {} weights and {} biases, its sizes say {wl} and {bl}",
                    layer.weight.len(),
                    layer.bias.len()
                )));
            }
            host[wo..wo + wl].copy_from_slice(&layer.weight);
            host[bo..bo + bl].copy_from_slice(&layer.bias);
        }
        let params = be.upload(&host)?;
        let (w, b) = layer_views(params, &layout)?;
        let a = sizes
            .iter()
            .map(|&s| be.alloc(batch * s))
            .collect::<Result<_>>()?;
        Ok(Net {
            sizes,
            act: model.activation,
            layout,
            params,
            w,
            b,
            a,
            batch,
        })
    }

    fn layer_act(&self, l: usize) -> Activation {
        if l + 1 == self.w.len() {
            Activation::Identity
        } else {
            self.act
        }
    }

    /// Runs the network on the m rows already in a[0]; the raw output lands in the last a.
    fn forward<B: Backend + ?Sized>(&self, be: &mut B, m: usize) -> Result<()> {
        for l in 0..self.w.len() {
            let (k, n) = (self.sizes[l], self.sizes[l + 1]);
            be.matmul_nt(
                self.a[l],
                self.w[l],
                Some(self.b[l]),
                self.layer_act(l),
                self.a[l + 1],
                m,
                n,
                k,
            )?;
        }
        Ok(())
    }

    fn output(&self) -> Buf {
        self.a[self.a.len() - 1]
    }

    /// Copies the parameters back into the model (one read of the slab).
    fn download<B: Backend + ?Sized>(&self, be: &mut B, model: &mut Model) -> Result<()> {
        let host = be.read(self.params)?;
        for (i, l) in model.layers.iter_mut().enumerate() {
            let ((wo, wl), (bo, bl)) = (self.layout.w[i], self.layout.b[i]);
            l.weight = host[wo..wo + wl].to_vec();
            l.bias = host[bo..bo + bl].to_vec();
        }
        Ok(())
    }

    /// Releases the network's buffers (after `predict`/`evaluate` on a long-lived backend).
    fn free<B: Backend + ?Sized>(self, be: &mut B) -> Result<()> {
        be.free(self.params)?;
        for a in self.a {
            be.free(a)?;
        }
        Ok(())
    }
}

/// The gradients and optimizer state that training adds to a `Net`.
struct Grads {
    /// g[l] = ∂L/∂a[l] for l ≥ 1 (`None` for the input).
    g: Vec<Option<Buf>>,
    /// The gradient slab, laid out like the parameters, and its per-layer views.
    grad: Buf,
    dw: Vec<Buf>,
    db: Vec<Buf>,
    /// One slab per optimizer state (velocity; Adam's m and v), laid out like the parameters.
    state: Vec<Buf>,
}

impl Grads {
    fn new<B: Backend + ?Sized>(be: &mut B, net: &Net, opt: Optimizer) -> Result<Grads> {
        let mut g = vec![None];
        for &s in &net.sizes[1..] {
            g.push(Some(be.alloc(net.batch * s)?));
        }
        let grad = be.alloc(net.layout.len)?;
        let (dw, db) = layer_views(grad, &net.layout)?;
        let state = (0..opt.state_slots())
            .map(|_| be.alloc(net.layout.len))
            .collect::<Result<_>>()?;
        Ok(Grads {
            g,
            grad,
            dw,
            db,
            state,
        })
    }

    fn g(&self, l: usize) -> Result<Buf> {
        self.g[l].ok_or_else(|| Error::internal("no gradient buffer for the input layer"))
    }
}

/// Backpropagation from g[last] (already holding ∂L/∂output) down to every dw, db: per layer
/// one product for dw with db fused, and one for the gradient of the layer below with its
/// activation's derivative fused.
fn backward<B: Backend + ?Sized>(be: &mut B, net: &Net, gr: &Grads, m: usize) -> Result<()> {
    for l in (0..net.w.len()).rev() {
        let (k, n) = (net.sizes[l], net.sizes[l + 1]);
        let dy = gr.g(l + 1)?;
        be.matmul_tn(dy, net.a[l], gr.dw[l], Some(gr.db[l]), m, n, k)?;
        if l > 0 {
            let act = net.layer_act(l - 1);
            be.matmul_nn(dy, net.w[l], act, Some(net.a[l]), gr.g(l)?, m, n, k)?;
        }
    }
    Ok(())
}

/// Partial sums for the norm of every gradient together (`--clip`): a fixed partition, so
/// a fixed order of additions.
const CLIP_PARTS: usize = 64;

/// The squared norm of all gradients in `CLIP_PARTS` partial sums; the optimizer step adds
/// them up and scales the gradient by min(1, max_norm / ‖g‖) without a read-back.
fn clip_gradients<B: Backend + ?Sized>(
    be: &mut B,
    gr: &Grads,
    parts: Buf,
    max_norm: f32,
) -> Result<Clip> {
    be.sum_squares(gr.grad, parts)?;
    Ok(Clip {
        partials: parts,
        max_norm,
    })
}

/// The data set's rows on the backend, with an index buffer to gather batches through.
struct Uploaded {
    x: Buf,
    y: Buf,
    idx: Buf,
    rows: usize,
    y_cols: usize,
}

impl Uploaded {
    /// Rows start..start + count (in the index buffer's order): features into `x`, and
    /// targets into `y` when given, in one op.
    fn gather<B: Backend + ?Sized>(
        &self,
        be: &mut B,
        start: usize,
        count: usize,
        x: Buf,
        y: Option<Buf>,
    ) -> Result<()> {
        let cols = self.x.len.checked_div(self.rows).unwrap_or(0);
        let gx = Gather {
            src: self.x,
            cols,
            dst: x,
        };
        let gy = y.map(|dst| Gather {
            src: self.y,
            cols: self.y_cols,
            dst,
        });
        be.gather(self.idx, start, count, gx, gy)
    }

    fn free<B: Backend + ?Sized>(self, be: &mut B) -> Result<()> {
        for b in [self.x, self.y, self.idx] {
            be.free(b)?;
        }
        Ok(())
    }
}

fn upload<B: Backend + ?Sized>(be: &mut B, r: &Rows, y_cols: usize) -> Result<Uploaded> {
    let order: Vec<u32> = (0..r.rows as u32).collect();
    Ok(Uploaded {
        x: be.upload(&r.x)?,
        y: be.upload(&r.y)?,
        idx: be.upload_u32(&order)?,
        rows: r.rows,
        y_cols,
    })
}

fn target_cols(model: &Model) -> usize {
    model.schema.target_cols()
}

/// The factor from the network's standardized outputs back to the target's units.
fn scale_buf<B: Backend + ?Sized>(be: &mut B, model: &Model) -> Result<Option<Buf>> {
    let std = &model.target_normalizer.std;
    let unit = target_unit(model);
    match model.schema.task {
        Task::Regression if std.iter().any(|&s| s != 1.0) => {
            let rel: Vec<f32> = std.iter().map(|&s| (s as f64 / unit) as f32).collect();
            Ok(Some(be.upload(&rel)?))
        }
        _ => Ok(None),
    }
}

/// The unit the device sums regression errors in: the largest target std. The scale buffer
/// holds std / unit (at most 1), so the f32 sums stay near the standardized errors (targets
/// around 1e19 no longer overflow them), and the host multiplies back in f64.
fn target_unit(model: &Model) -> f64 {
    let std = &model.target_normalizer.std;
    match model.schema.task {
        Task::Regression if std.iter().any(|&s| s != 1.0) => std
            .iter()
            .fold(0f64, |m, &s| m.max(s as f64))
            .max(f64::MIN_POSITIVE),
        _ => 1.0,
    }
}

/// Records the forward pass and `eval_stats` over all rows of `data`, in chunks of the net's
/// batch size, one stats slot per chunk (`data.rows.div_ceil(net.batch)` slots).
fn record_eval<B: Backend + ?Sized>(
    be: &mut B,
    net: &Net,
    data: &Uploaded,
    y_batch: Buf,
    scale: Option<Buf>,
    classes: bool,
    stats: Buf,
) -> Result<()> {
    let n = *net.sizes.last().unwrap_or(&1);
    for (slot, start) in (0..data.rows).step_by(net.batch).enumerate() {
        let m = net.batch.min(data.rows - start);
        data.gather(be, start, m, net.a[0], Some(y_batch))?;
        net.forward(be, m)?;
        be.eval_stats(classes, net.output(), y_batch, scale, m, n, stats, slot)?;
    }
    Ok(())
}

/// The `eval_stats` slots summed in slot order (fixed, so the result is reproducible).
fn sum_stats(stats: &[f32]) -> [f64; STATS_WIDTH] {
    let mut acc = [0f64; STATS_WIDTH];
    for slot in stats.chunks_exact(STATS_WIDTH) {
        for (a, v) in acc.iter_mut().zip(slot) {
            *a += *v as f64;
        }
    }
    acc
}

/// What one optimizer step needs: the network, its gradients and optimizer state, and the
/// batch's targets. `train` and the public `Trainer` (the bench harness) both record their
/// steps through `Stepper::step`, so a benchmark times the very step training runs.
struct Stepper {
    net: Net,
    gr: Grads,
    y_batch: Buf,
    scale: Option<Buf>,
    loss: Loss,
    optimizer: Optimizer,
    weight_decay: f32,
    clip: Option<f32>,
    /// Partial squared norms of the gradient slab, for `--clip`.
    clip_parts: Buf,
    /// Optimizer steps taken so far (Adam's t).
    step: u64,
}

impl Stepper {
    /// The optimizer's state slabs (none for SGD; velocity; Adam's m and v), read back.
    fn optimizer_state<B: Backend + ?Sized>(&self, be: &mut B) -> Result<Vec<Vec<f32>>> {
        self.gr.state.iter().map(|&b| be.read(b)).collect()
    }

    /// Writes `state` (from [`Stepper::optimizer_state`] of a run like this one) back.
    fn set_optimizer_state<B: Backend + ?Sized>(
        &self,
        be: &mut B,
        state: &[Vec<f32>],
    ) -> Result<()> {
        let slab = self.net.layout.len;
        if state.len() != self.gr.state.len() || state.iter().any(|v| v.len() != slab) {
            return Err(Error::internal(
                "checkpoint does not fit: its optimizer state is for another optimizer or network",
            ));
        }
        for (&b, v) in self.gr.state.iter().zip(state) {
            be.write(b, v)?;
        }
        Ok(())
    }

    fn new<B: Backend + ?Sized>(
        be: &mut B,
        model: &Model,
        batch: usize,
        cfg: &TrainConfig,
    ) -> Result<Stepper> {
        let net = Net::new(be, model, batch)?;
        let gr = Grads::new(be, &net, cfg.optimizer)?;
        let y_batch = be.alloc(batch * target_cols(model))?;
        let scale = scale_buf(be, model)?;
        Ok(Stepper {
            net,
            gr,
            y_batch,
            scale,
            loss: model.loss,
            optimizer: cfg.optimizer,
            weight_decay: cfg.weight_decay,
            clip: cfg.clip,
            clip_parts: be.alloc(CLIP_PARTS)?,
            step: 0,
        })
    }

    /// Records one step on rows start..start + m of `data` (in its index buffer's order):
    /// gather, forward, loss (its sum into stats[slot]), backward, optimizer update.
    #[allow(clippy::too_many_arguments)]
    fn step<B: Backend + ?Sized>(
        &mut self,
        be: &mut B,
        data: &Uploaded,
        start: usize,
        m: usize,
        stats: Buf,
        slot: usize,
        lr: f32,
    ) -> Result<()> {
        self.gradients(be, data, start, m, stats, slot)?;
        let (net, gr) = (&self.net, &self.gr);
        let clip = match self.clip {
            Some(max_norm) => Some(clip_gradients(be, gr, self.clip_parts, max_norm)?),
            None => None,
        };
        self.step += 1;
        let hp = StepParams::new(lr, self.weight_decay, self.step);
        // One update of the whole slab; no weight decay on the biases, as is usual.
        be.optimizer_step(
            self.optimizer,
            net.params,
            gr.grad,
            &gr.state,
            net.layout.weights_len,
            hp,
            clip,
        )
    }

    /// The part of `step` before the update: gather, forward, loss (its sum into
    /// stats[slot]), backward into the gradient slab.
    fn gradients<B: Backend + ?Sized>(
        &self,
        be: &mut B,
        data: &Uploaded,
        start: usize,
        m: usize,
        stats: Buf,
        slot: usize,
    ) -> Result<()> {
        let (net, gr) = (&self.net, &self.gr);
        let n_out = *net.sizes.last().unwrap_or(&1);
        data.gather(be, start, m, net.a[0], Some(self.y_batch))?;
        net.forward(be, m)?;
        be.loss_grad(
            self.loss,
            net.output(),
            self.y_batch,
            self.scale,
            gr.g(net.w.len())?,
            m,
            n_out,
            stats,
            slot,
        )?;
        backward(be, net, gr, m)
    }
}

/// The training step's own wiring without the update, for the gradient checks
/// (tests/gradcheck.rs, on `CpuBackend::new_f64`): all rows as one batch through gather,
/// forward, loss and backward, with the parameter and gradient slabs exposed.
#[doc(hidden)]
pub struct GradProbe {
    st: Stepper,
    data: Uploaded,
    stats: Buf,
}

#[doc(hidden)]
impl GradProbe {
    pub fn new<B: Backend + ?Sized>(be: &mut B, model: &Model, rows: &Rows) -> Result<GradProbe> {
        let cfg = TrainConfig {
            optimizer: Optimizer::Sgd,
            lr: 0.0,
            schedule: Schedule::Constant,
            batch_size: rows.rows,
            epochs: 1,
            seed: 0,
            weight_decay: 0.0,
            patience: None,
            clip: None,
            progress: false,
        };
        Ok(GradProbe {
            st: Stepper::new(be, model, rows.rows.max(1), &cfg)?,
            data: upload(be, rows, target_cols(model))?,
            stats: be.alloc(1)?,
        })
    }
    /// Every weight, then every bias (`ParamLayout`).
    pub fn params(&self) -> Buf {
        self.st.net.params
    }
    /// ∂L/∂params after `run`, laid out like `params`.
    pub fn grads(&self) -> Buf {
        self.st.gr.grad
    }
    pub fn layout(&self) -> &ParamLayout {
        &self.st.net.layout
    }
    /// One pass; returns the buffer whose element 0 is Σ eₙ (L = that / rows).
    pub fn run<B: Backend + ?Sized>(&self, be: &mut B) -> Result<Buf> {
        self.st
            .gradients(be, &self.data, 0, self.data.rows, self.stats, 0)?;
        Ok(self.stats)
    }
}

/// The training state on a backend: the model's network and optimizer state, the training
/// (and validation) rows uploaded once, and where in the pass over the rows it stands.
/// `train` drives it an epoch at a time (`run_epoch`, `validate`); the bench harness a step at
/// a time (`step`, `batch_loss`), so a benchmark times the very step training runs.
pub struct Trainer {
    st: Stepper,
    data: Uploaded,
    val: Option<Uploaded>,
    /// One loss sum per training batch of the current pass.
    losses: Buf,
    /// `STATS_WIDTH` sums per chunk of validation rows.
    val_stats: Option<Buf>,
    batch: usize,
    n_batches: usize,
    next_batch: usize,
    /// Passes over the training rows begun so far (the schedule's epoch, 1-based).
    epoch: usize,
    shuffle: Rng,
    order: Vec<u32>,
    lr: f64,
    schedule: Schedule,
    total_steps: u64,
    task: Task,
    /// See `target_unit`.
    unit: f64,
    bar: Option<indicatif::ProgressBar>,
}

impl Trainer {
    pub fn new<B: Backend + ?Sized>(
        be: &mut B,
        model: &Model,
        train: &Rows,
        val: Option<&Rows>,
        cfg: &TrainConfig,
    ) -> Result<Trainer> {
        if train.rows == 0 || cfg.batch_size == 0 {
            return Err(Error::flag(
                "--batch-size",
                "needs rows and a batch of at least 1",
            ));
        }
        let batch = cfg.batch_size.min(train.rows);
        let n_batches = train.rows.div_ceil(batch);
        let y_cols = target_cols(model);
        // Every device buffer within the device's limits, checked before any is made.
        if let Some(lim) = be.limits() {
            let rows = train.rows.max(val.map_or(0, |v| v.rows));
            let needs = budget::DeviceNeeds::of(&model.sizes(), batch, rows, y_cols);
            budget::check_device(&needs, &lim, budget::DeviceRun::Training)?;
        }
        let st = Stepper::new(be, model, batch, cfg)?;
        let data = upload(be, train, y_cols)?;
        let val = val
            .filter(|v| v.rows > 0)
            .map(|v| upload(be, v, y_cols))
            .transpose()?;
        let val_stats = match &val {
            Some(v) => Some(be.alloc(v.rows.div_ceil(batch) * STATS_WIDTH)?),
            None => None,
        };
        Ok(Trainer {
            st,
            losses: be.alloc(n_batches)?,
            data,
            val,
            val_stats,
            batch,
            n_batches,
            next_batch: 0,
            epoch: 0,
            shuffle: Rng::derive(cfg.seed, 2),
            order: (0..train.rows as u32).collect(),
            lr: cfg.lr as f64,
            schedule: cfg.schedule,
            // Saturating: --epochs is only bounded by usize, and nothing may overflow on it.
            total_steps: (n_batches as u64).saturating_mul(cfg.epochs as u64),
            task: model.schema.task,
            unit: target_unit(model),
            bar: progress_bar(cfg.progress && n_batches >= 100, n_batches),
        })
    }

    /// Records one optimizer step on the next batch; the first batch of a pass starts a new
    /// epoch with a fresh seeded shuffle of the rows.
    pub fn step<B: Backend + ?Sized>(&mut self, be: &mut B) -> Result<()> {
        if self.next_batch == 0 {
            self.epoch += 1;
            self.shuffle.shuffle(&mut self.order);
            be.write_u32(self.data.idx, &self.order)?;
        }
        let bi = self.next_batch;
        let start = bi * self.batch;
        let m = self.batch.min(self.data.rows - start);
        let lr = self
            .schedule
            .lr(self.lr, self.epoch, self.st.step, self.total_steps) as f32;
        self.st
            .step(be, &self.data, start, m, self.losses, bi, lr)?;
        self.next_batch = (bi + 1) % self.n_batches;
        Ok(())
    }

    /// Records the rest of the current pass over the training rows (a whole pass when called
    /// between passes) and returns its mean loss per row: one read.
    pub fn run_epoch<B: Backend + ?Sized>(&mut self, be: &mut B) -> Result<f64> {
        Ok(self.run_epoch_until(be, &|| false)?.unwrap_or(f64::NAN))
    }

    /// [`Trainer::run_epoch`], asking `stop` after every step: `None` when it said stop
    /// before the pass ended (the step in flight is finished; the rest of the pass is left
    /// for a resume from [`Trainer::snapshot`]).
    pub fn run_epoch_until<B: Backend + ?Sized>(
        &mut self,
        be: &mut B,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<f64>> {
        loop {
            self.step(be)?;
            let done = match self.next_batch {
                0 => self.n_batches,
                n => n,
            };
            if let Some(b) = &self.bar {
                b.set_position(done as u64);
            }
            if self.next_batch == 0 {
                break;
            }
            if stop() {
                return Ok(None);
            }
        }
        if let Some(b) = &self.bar {
            b.reset();
        }
        let sums = be.read(self.losses)?;
        let per_unit = match self.st.loss {
            Loss::Mse => self.unit * self.unit,
            Loss::Mae => self.unit,
            _ => 1.0,
        };
        let sum = sums.iter().map(|&v| v as f64).sum::<f64>();
        Ok(Some(sum * per_unit / self.data.rows as f64))
    }

    /// Everything besides the weights that the next step depends on, read from the device.
    pub fn snapshot<B: Backend + ?Sized>(&self, be: &mut B) -> Result<Snapshot> {
        let losses = be.read(self.losses)?;
        Ok(Snapshot {
            epoch: self.epoch,
            batch: self.next_batch,
            step: self.st.step,
            rng: self.shuffle.position(),
            order: self.order.clone(),
            partial_losses: losses[..self.next_batch].to_vec(),
            state: self.st.optimizer_state(be)?,
        })
    }

    /// Continues from `s` (taken from a trainer built like this one, with the weights it had
    /// then): the following steps are the ones that run would have taken, bit for bit.
    pub fn restore<B: Backend + ?Sized>(&mut self, be: &mut B, s: &Snapshot) -> Result<()> {
        let bad = |msg: String| Err(Error::internal(format!("checkpoint does not fit: {msg}")));
        let rows = self.data.rows;
        let mut seen = vec![false; rows];
        let permutation = s.order.len() == rows
            && s.order
                .iter()
                .all(|&i| (i as usize) < rows && !std::mem::replace(&mut seen[i as usize], true));
        if !permutation {
            return bad(format!("its row order is not a permutation of {rows} rows"));
        }
        if s.batch >= self.n_batches || s.partial_losses.len() != s.batch {
            return bad(format!("batch {} of {}", s.batch, self.n_batches));
        }
        self.st.set_optimizer_state(be, &s.state)?;
        self.epoch = s.epoch;
        self.next_batch = s.batch;
        self.st.step = s.step;
        self.shuffle.set_position(s.rng);
        self.order = s.order.clone();
        be.write_u32(self.data.idx, &self.order)?;
        let mut losses = vec![0f32; self.n_batches];
        losses[..s.batch].copy_from_slice(&s.partial_losses);
        be.write(self.losses, &losses)
    }

    /// The current weights' metrics on the validation rows (`None` without them): one read.
    pub fn validate<B: Backend + ?Sized>(&mut self, be: &mut B) -> Result<Option<Metrics>> {
        let (Some(val), Some(stats)) = (&self.val, self.val_stats) else {
            return Ok(None);
        };
        let classes = self.task == Task::Classification;
        let (net, y, scale) = (&self.st.net, self.st.y_batch, self.st.scale);
        record_eval(be, net, val, y, scale, classes, stats)?;
        let sums = sum_stats(&be.read(stats)?);
        let m = Metrics::from_sums(self.task, sums, val.rows);
        Ok(Some(m.in_units(self.unit)))
    }

    /// Copies the current weights into `model`.
    pub fn download<B: Backend + ?Sized>(&self, be: &mut B, model: &mut Model) -> Result<()> {
        self.st.net.download(be, model)
    }

    /// Waits for every recorded step and returns the mean loss per row of the last batch:
    /// the readback that proves the work is finished.
    pub fn batch_loss<B: Backend + ?Sized>(&mut self, be: &mut B) -> Result<f64> {
        let last = (self.next_batch + self.n_batches - 1) % self.n_batches;
        let m = self.batch.min(self.data.rows - last * self.batch);
        let s = be.read(self.losses)?;
        Ok(s[last] as f64 / m as f64)
    }
}

impl Drop for Trainer {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Early stopping (`--patience N`): the best validation loss so far and its epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyStop {
    patience: usize,
    best: Option<(usize, f64)>,
}

/// What an epoch's validation loss means for early stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The best so far: keep these weights.
    pub improved: bool,
    /// `patience` epochs without improvement: stop.
    pub stop: bool,
}

impl EarlyStop {
    pub fn new(patience: usize) -> EarlyStop {
        EarlyStop {
            patience,
            best: None,
        }
    }

    pub fn observe(&mut self, epoch: usize, val_loss: f64) -> Verdict {
        let improved = self.best.is_none_or(|(_, b)| val_loss < b);
        if improved {
            self.best = Some((epoch, val_loss));
        }
        let since = epoch - self.best.map_or(epoch, |(e, _)| e);
        Verdict {
            improved,
            stop: since >= self.patience,
        }
    }

    /// The epoch with the lowest validation loss so far.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best.map(|(e, _)| e)
    }
}

/// What `train` did: every epoch's metrics, and where early stopping found the best weights.
#[derive(Clone, Debug)]
pub struct History {
    pub epochs: Vec<EpochMetrics>,
    /// The epoch whose weights the model holds (the last one without early stopping; the best
    /// one so far after an interruption, when there are validation rows; 0 if none ended).
    pub best_epoch: usize,
    /// Set when early stopping ended the run before `--epochs`.
    pub stopped_early: bool,
    /// Set when `Control::stop` ended the run (Ctrl-C, SIGTERM).
    pub interrupted: bool,
}

/// Where a run stands besides its weights (see [`Trainer::snapshot`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Passes over the training rows begun, and the next batch of the current one.
    pub epoch: usize,
    pub batch: usize,
    /// Optimizer steps taken: Adam's t and the schedule's position.
    pub step: u64,
    /// The shuffle generator's position, and the row order it last produced.
    pub rng: u128,
    pub order: Vec<u32>,
    /// The loss sums of the batches of the current pass done so far.
    pub partial_losses: Vec<f32>,
    /// The optimizer's state slabs (none for SGD; velocity; Adam's m and v).
    pub state: Vec<Vec<f32>>,
}

/// A run to continue where it stopped.
#[derive(Clone, Debug)]
pub struct Resume {
    pub snapshot: Snapshot,
    /// The best validation epoch so far and its loss, and that epoch's weights.
    pub best: Option<(usize, f64)>,
    pub best_model: Option<Model>,
    /// The metrics of every finished epoch.
    pub history: Vec<EpochMetrics>,
}

/// What a checkpoint takes from the loop.
pub struct RunState<'a> {
    pub snapshot: Snapshot,
    /// The current weights.
    pub current: Model,
    pub best: Option<(usize, f64)>,
    pub best_model: Option<&'a Model>,
    pub history: &'a [EpochMetrics],
}

/// How a run is steered from outside: a stop request, a run to continue, checkpoints.
pub struct Control<'a> {
    /// Asked after every step; true ends the run at that step (the first Ctrl-C).
    pub stop: &'a dyn Fn() -> bool,
    pub resume: Option<Resume>,
    /// Hand a [`RunState`] to `on_checkpoint` every this many epochs and when the run ends.
    pub checkpoint_every: Option<usize>,
    pub on_checkpoint: &'a mut dyn FnMut(RunState) -> Result<()>,
}

/// Trains `model` (initialized, normalizers set) in place and returns the per-epoch metrics.
/// `on_epoch` sees each epoch as it ends (the CLI prints and logs from it).
pub fn train<B: Backend + ?Sized>(
    be: &mut B,
    model: &mut Model,
    train: &Rows,
    val: Option<&Rows>,
    cfg: &TrainConfig,
    on_epoch: impl FnMut(&EpochMetrics),
) -> Result<History> {
    let mut none = |_: RunState| Ok(());
    let ctl = Control {
        stop: &|| false,
        resume: None,
        checkpoint_every: None,
        on_checkpoint: &mut none,
    };
    train_with(be, model, train, val, cfg, on_epoch, ctl)
}

/// [`train`] steered by `ctl`. With validation rows the best epoch's weights are kept (read
/// back only when they improve), so an interrupted run saves those.
pub fn train_with<B: Backend + ?Sized>(
    be: &mut B,
    model: &mut Model,
    train: &Rows,
    val: Option<&Rows>,
    cfg: &TrainConfig,
    on_epoch: impl FnMut(&EpochMetrics),
    mut ctl: Control,
) -> Result<History> {
    if cfg.patience.is_some() && val.is_none_or(|v| v.rows == 0) {
        return Err(Error::flag(
            "--patience",
            "early stopping needs validation rows (--val-split, --val or --val-every)",
        ));
    }
    if train.rows == 0 {
        return Err(Error::flag("--val-split", "no training rows left"));
    }
    let mut trainer = Trainer::new(be, model, train, val, cfg)?;
    let has_val = val.is_some_and(|v| v.rows > 0);
    let start = start(be, &mut trainer, model, cfg, has_val, &mut ctl)?;
    epoch_loop(be, &mut trainer, model, cfg, start, on_epoch, ctl)
}

/// Where a run begins: epoch 1 with nothing behind it, or where `ctl.resume` stopped (its
/// optimizer and position restored into `trainer`, its best weights into `model`).
fn start<B: Backend + ?Sized, T: Epochs>(
    be: &mut B,
    trainer: &mut T,
    model: &mut Model,
    cfg: &TrainConfig,
    has_val: bool,
    ctl: &mut Control,
) -> Result<Start> {
    let patience = cfg.patience.unwrap_or(usize::MAX);
    let mut early = has_val.then(|| EarlyStop::new(patience));
    // Grown as epochs end: nothing is allocated in proportion to --epochs.
    let mut history = Vec::new();
    let mut first = 1;
    if let Some(r) = ctl.resume.take() {
        trainer.restore(be, &r.snapshot)?;
        if let Some(e) = early.as_mut() {
            e.best = r.best;
        }
        if let Some(m) = r.best_model {
            *model = m;
        }
        history = r.history;
        first = r.snapshot.epoch + usize::from(r.snapshot.batch == 0);
    }
    Ok(Start {
        first,
        history,
        early,
    })
}

/// Where [`epoch_loop`] begins: the first epoch to run, the metrics of those before it, and
/// early stopping's state (`None` without validation rows).
struct Start {
    first: usize,
    history: Vec<EpochMetrics>,
    early: Option<EarlyStop>,
}

/// What the epoch loop drives: the rows in memory ([`Trainer`]) or read shard by shard
/// ([`stream::StreamTrainer`]); one loop for both, so early stopping, divergence, stop
/// requests and the kept weights behave alike.
trait Epochs {
    fn run_epoch_until<B: Backend + ?Sized>(
        &mut self,
        be: &mut B,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<f64>>;
    fn validate<B: Backend + ?Sized>(&mut self, be: &mut B) -> Result<Option<Metrics>>;
    fn download<B: Backend + ?Sized>(&self, be: &mut B, model: &mut Model) -> Result<()>;
    fn snapshot<B: Backend + ?Sized>(&self, be: &mut B) -> Result<Snapshot>;
    /// Continues from `s` (a snapshot of a run of this trainer's shape): the steps that
    /// follow are the ones that run would have taken, bit for bit.
    fn restore<B: Backend + ?Sized>(&mut self, be: &mut B, s: &Snapshot) -> Result<()>;
}

impl Epochs for Trainer {
    fn run_epoch_until<B: Backend + ?Sized>(
        &mut self,
        be: &mut B,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<f64>> {
        Trainer::run_epoch_until(self, be, stop)
    }
    fn validate<B: Backend + ?Sized>(&mut self, be: &mut B) -> Result<Option<Metrics>> {
        Trainer::validate(self, be)
    }
    fn download<B: Backend + ?Sized>(&self, be: &mut B, model: &mut Model) -> Result<()> {
        Trainer::download(self, be, model)
    }
    fn snapshot<B: Backend + ?Sized>(&self, be: &mut B) -> Result<Snapshot> {
        Trainer::snapshot(self, be)
    }
    fn restore<B: Backend + ?Sized>(&mut self, be: &mut B, s: &Snapshot) -> Result<()> {
        Trainer::restore(self, be, s)
    }
}

/// Epochs `start.first..=cfg.epochs` of `trainer`, then the model's final weights (the best
/// epoch's with early stopping or after a stop request, else the last).
fn epoch_loop<B: Backend + ?Sized, T: Epochs>(
    be: &mut B,
    trainer: &mut T,
    model: &mut Model,
    cfg: &TrainConfig,
    start: Start,
    mut on_epoch: impl FnMut(&EpochMetrics),
    mut ctl: Control,
) -> Result<History> {
    let Start {
        first,
        mut history,
        mut early,
    } = start;
    let (mut stopped_early, mut interrupted) = (false, false);
    for epoch in first..=cfg.epochs {
        let t0 = Instant::now();
        let Some(train_loss) = trainer.run_epoch_until(be, ctl.stop)? else {
            interrupted = true;
            break;
        };
        if !train_loss.is_finite() {
            return Err(Error::training(format!(
                "training diverged at epoch {epoch} (loss is {train_loss}); \
                 try a smaller learning rate (--lr)"
            )));
        }
        let vm = trainer.validate(be)?;
        let m = EpochMetrics {
            epoch,
            train_loss,
            val_loss: vm.map(|v| v.loss(model.loss)),
            val_metric: vm.map(|v| v.headline()),
            seconds: t0.elapsed().as_secs_f64(),
        };
        on_epoch(&m);
        let val_loss = m.val_loss;
        history.push(m);
        if let (Some(early), Some(vl)) = (early.as_mut(), val_loss) {
            let v = early.observe(epoch, vl);
            if v.improved {
                // A read of the weights only when they improve, never per step.
                trainer.download(be, model)?;
            }
            if v.stop {
                stopped_early = epoch < cfg.epochs;
                break;
            }
        }
        if (ctl.stop)() {
            interrupted = true;
            break;
        }
        if ctl.checkpoint_every.is_some_and(|n| epoch % n == 0) && epoch < cfg.epochs {
            checkpoint(be, trainer, model, early.as_ref(), &history, &mut ctl)?;
        }
    }
    checkpoint(be, trainer, model, early.as_ref(), &history, &mut ctl)?;
    let keep_best = cfg.patience.is_some() || interrupted;
    let best_epoch = match early.and_then(|e| e.best_epoch()).filter(|_| keep_best) {
        Some(e) => e,
        None => {
            trainer.download(be, model)?;
            history.last().map_or(0, |m| m.epoch)
        }
    };
    Ok(History {
        epochs: history,
        best_epoch,
        stopped_early,
        interrupted,
    })
}

/// Hands the run's state to `ctl.on_checkpoint` (when checkpoints are on).
fn checkpoint<B: Backend + ?Sized, T: Epochs>(
    be: &mut B,
    trainer: &T,
    model: &Model,
    early: Option<&EarlyStop>,
    history: &[EpochMetrics],
    ctl: &mut Control,
) -> Result<()> {
    if ctl.checkpoint_every.is_none() {
        return Ok(());
    }
    let mut current = model.clone();
    trainer.download(be, &mut current)?;
    let best = early.and_then(|e| e.best);
    (ctl.on_checkpoint)(RunState {
        snapshot: trainer.snapshot(be)?,
        current,
        best,
        best_model: best.map(|_| model),
        history,
    })
}

fn progress_bar(show: bool, len: usize) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("  {bar:40} {pos}/{len} batches {per_sec}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

/// Batch size for inference: large enough to keep a GPU busy, small enough for any memory.
pub const INFER_BATCH: usize = 4096;

/// The network's outputs for `x` (standardized features, [rows, features]): regression values
/// in the target's units, or class probabilities [rows, classes].
pub fn predict<B: Backend + ?Sized>(
    be: &mut B,
    model: &Model,
    x: &[f32],
    rows: usize,
) -> Result<Vec<f32>> {
    let batch = infer_batch(be, model, rows, 1)?;
    let net = Net::new(be, model, batch)?;
    let n = model.outputs();
    let data = be.upload(x)?;
    let idx = be.upload_u32(&(0..rows as u32).collect::<Vec<_>>())?;
    let mut out = Vec::with_capacity(rows * n);
    for start in (0..rows).step_by(batch) {
        let m = batch.min(rows - start);
        let x = Gather {
            src: data,
            cols: net.sizes[0],
            dst: net.a[0],
        };
        be.gather(idx, start, m, x, None)?;
        net.forward(be, m)?;
        if model.schema.task == Task::Classification {
            be.softmax(net.output(), m, n)?;
        }
        out.extend_from_slice(&be.read(net.output())?[..m * n]);
    }
    be.free(data)?;
    be.free(idx)?;
    net.free(be)?;
    if model.schema.task == Task::Regression {
        model.target_normalizer.invert(&mut out);
    }
    Ok(out)
}

/// Rows per forward pass that [`predict`] runs for `rows` rows on `be`: it cuts its input
/// into passes of this many rows from the first on.
pub fn predict_batch<B: Backend + ?Sized>(be: &B, model: &Model, rows: usize) -> Result<usize> {
    infer_batch(be, model, rows, 1)
}

/// Rows per forward pass of `predict` / `evaluate`: `INFER_BATCH`, fewer when the device
/// binds less at once; a model or data set beyond the device's limits is refused first.
fn infer_batch<B: Backend + ?Sized>(
    be: &B,
    model: &Model,
    rows: usize,
    y_cols: usize,
) -> Result<usize> {
    let batch = INFER_BATCH.min(rows.max(1));
    let Some(lim) = be.limits() else {
        return Ok(batch);
    };
    let sizes = model.sizes();
    let widest = sizes.iter().copied().max().unwrap_or(1);
    let batch = batch.min(budget::batch_within(lim.binding, widest));
    let needs = budget::DeviceNeeds::of(&sizes, batch, rows, y_cols);
    budget::check_device(&needs, &lim, budget::DeviceRun::Inference)?;
    Ok(batch)
}

/// Metrics of `model` on prepared rows (targets standardized like in training).
pub fn evaluate<B: Backend + ?Sized>(be: &mut B, model: &Model, data: &Rows) -> Result<Metrics> {
    let batch = infer_batch(be, model, data.rows, target_cols(model))?;
    let net = Net::new(be, model, batch)?;
    let up = upload(be, data, target_cols(model))?;
    let y_batch = be.alloc(batch * up.y_cols)?;
    let scale = scale_buf(be, model)?;
    let stats = be.alloc(data.rows.div_ceil(batch) * STATS_WIDTH)?;
    let task = model.schema.task;
    let classes = task == Task::Classification;
    record_eval(be, &net, &up, y_batch, scale, classes, stats)?;
    let sums = sum_stats(&be.read(stats)?);
    for b in [y_batch, stats].into_iter().chain(scale) {
        be.free(b)?;
    }
    up.free(be)?;
    net.free(be)?;
    Ok(Metrics::from_sums(task, sums, data.rows).in_units(target_unit(model)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stop_keeps_the_best_and_stops_after_patience() {
        let mut e = EarlyStop::new(2);
        let seen: Vec<Verdict> = [1.0, 0.5, 0.7, 0.5, 0.6]
            .iter()
            .enumerate()
            .map(|(i, &l)| e.observe(i + 1, l))
            .collect();
        let v = |improved, stop| Verdict { improved, stop };
        // A tie is no improvement: the earlier epoch's weights are kept.
        assert_eq!(
            seen,
            [
                v(true, false),
                v(true, false),
                v(false, false),
                v(false, true),
                v(false, true)
            ]
        );
        assert_eq!(e.best_epoch(), Some(2));
        let mut now = EarlyStop::new(0);
        assert_eq!(
            now.observe(1, 3.0),
            v(true, true),
            "patience 0 stops at once"
        );
    }

    #[test]
    fn metrics_name_their_task() {
        let r = Metrics::from_sums(Task::Regression, [8.0, 4.0, 0.0, 0.0], 2);
        assert_eq!(
            (r.rows(), r.loss(Loss::Mse), r.loss(Loss::Mae)),
            (2, 4.0, 2.0)
        );
        assert_eq!(r.headline(), 2.0, "RMSE");
        assert!(r.loss(Loss::CrossEntropy).is_nan());
        let c = Metrics::from_sums(Task::Classification, [3.0, 1.0, 3.0, 0.0], 4);
        assert_eq!(
            (c.loss(Loss::CrossEntropy), c.loss(Loss::SoftmaxMse)),
            (0.75, 0.25)
        );
        assert_eq!(c.headline(), 0.75, "accuracy");
        assert!(c.loss(Loss::Mse).is_nan());
    }

    /// A small regression model on two features and seeded rows y = a·b.
    fn product_problem(rows: usize) -> (Model, Rows) {
        use crate::data::{Normalizer, Schema};
        let schema = Schema {
            features: vec!["a".into(), "b".into()],
            targets: vec!["y".into()],
            task: Task::Regression,
            classes: vec![],
            window: None,
        };
        let layers = crate::model::init_layers(&[2, 8, 1], Activation::Relu, 1);
        let (n, t) = (Normalizer::identity(2), Normalizer::identity(1));
        let model = Model::new(schema, Activation::Relu, Loss::Mse, 1, layers, n, t).unwrap();
        let mut rng = Rng::new(5);
        let x: Vec<f32> = (0..2 * rows).map(|_| rng.normal() as f32 * 10.0).collect();
        let y: Vec<f32> = x.chunks(2).map(|r| r[0] * r[1]).collect();
        (model, Rows { x, y, rows })
    }

    fn config(optimizer: Optimizer, lr: f32, epochs: usize) -> TrainConfig {
        TrainConfig {
            optimizer,
            lr,
            schedule: Schedule::Cosine {
                min: lr as f64 / 10.0,
            },
            batch_size: 8,
            epochs,
            seed: 1,
            weight_decay: 0.0,
            patience: None,
            clip: None,
            progress: false,
        }
    }

    #[test]
    fn stepping_the_trainer_is_training() {
        // The bench harness steps a Trainer; `train` runs epochs of it. Three passes over 50
        // rows in batches of 8 (the last one ragged) must give the same weights either way.
        let (mut trained, rows) = product_problem(50);
        let cfg = config(Optimizer::Adam, 1e-3, 3);
        let mut be = crate::backend::cpu::CpuBackend::new();
        let h = train(&mut be, &mut trained, &rows, None, &cfg, |_| {}).unwrap();
        assert_eq!((h.epochs.len(), h.best_epoch), (3, 3));
        let (mut stepped, _) = product_problem(50);
        let mut tr = Trainer::new(&mut be, &stepped, &rows, None, &cfg).unwrap();
        for _ in 0..3 * 50usize.div_ceil(8) {
            tr.step(&mut be).unwrap();
        }
        tr.download(&mut be, &mut stepped).unwrap();
        assert_eq!(stepped.layers, trained.layers);
        assert_ne!(stepped.layers, product_problem(50).0.layers, "it trained");
    }

    #[test]
    fn divergence_is_a_training_error_not_a_flag_error() {
        let (mut model, rows) = product_problem(32);
        let mut cfg = config(Optimizer::Sgd, 1e6, 50);
        cfg.schedule = Schedule::Constant;
        let mut be = crate::backend::cpu::CpuBackend::new();
        let e = train(&mut be, &mut model, &rows, None, &cfg, |_| {}).unwrap_err();
        assert!(matches!(e, Error::Training(_)), "{e:?}");
        assert!(e.to_string().contains("diverged at epoch"), "{e}");
    }

    #[test]
    fn schedules_give_the_documented_rates() {
        let c = Schedule::Constant;
        assert_eq!(c.lr(0.1, 7, 300, 1000), 0.1);
        let s = Schedule::Step {
            every: 10,
            gamma: 0.5,
        };
        assert_eq!(s.lr(0.1, 1, 0, 100), 0.1);
        assert_eq!(s.lr(0.1, 10, 0, 100), 0.1);
        assert_eq!(s.lr(0.1, 11, 0, 100), 0.05);
        assert!((s.lr(0.1, 25, 0, 100) - 0.025).abs() < 1e-15);
        let cos = Schedule::Cosine { min: 0.01 };
        assert_eq!(cos.lr(0.1, 1, 0, 100), 0.1);
        assert!(
            (cos.lr(0.1, 1, 50, 100) - 0.055).abs() < 1e-12,
            "halfway is the midpoint"
        );
        assert!((cos.lr(0.1, 1, 100, 100) - 0.01).abs() < 1e-12);
        assert!(
            cos.lr(0.1, 1, 30, 100) > cos.lr(0.1, 1, 31, 100),
            "falls monotonically"
        );
    }
}
