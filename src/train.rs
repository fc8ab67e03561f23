//! The training loop, written once against the `Backend` trait: upload the data once, gather
//! each batch through a shuffled index buffer, forward, loss, backward, optimizer step; read
//! back only the per-epoch sums.

use std::time::Instant;

use crate::backend::{Backend, Buf, Clip, Gather, ParamLayout, STATS_WIDTH, StepParams};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::rng::Rng;
use crate::spec::{Activation, Loss, Optimizer, Task};

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
pub struct Metrics {
    pub rows: usize,
    /// Regression: mean squared / absolute error. Classification: cross-entropy, MSE of the
    /// softmax against one-hot, accuracy.
    pub mse: f64,
    pub mae: f64,
    pub cross_entropy: f64,
    pub softmax_mse: f64,
    pub accuracy: f64,
}

impl Metrics {
    /// The value of `loss` over these rows (what `val_loss` reports).
    pub fn loss(&self, loss: Loss) -> f64 {
        match loss {
            Loss::Mse => self.mse,
            Loss::Mae => self.mae,
            Loss::CrossEntropy => self.cross_entropy,
            Loss::SoftmaxMse => self.softmax_mse,
        }
    }
    /// Accuracy for classification, RMSE for regression.
    pub fn headline(&self, task: Task) -> f64 {
        match task {
            Task::Classification => self.accuracy,
            Task::Regression => self.mse.sqrt(),
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
    if model.task == Task::Classification {
        1
    } else {
        model.outputs()
    }
}

/// The factor from the network's standardized outputs back to the target's units.
fn scale_buf<B: Backend + ?Sized>(be: &mut B, model: &Model) -> Result<Option<Buf>> {
    match model.task {
        Task::Regression if model.target_std.iter().any(|&s| s != 1.0) => {
            Ok(Some(be.upload(&model.target_std)?))
        }
        _ => Ok(None),
    }
}

/// Records the forward pass and `eval_stats` over all rows of `data`, in chunks of the net's
/// batch size, into stats slots starting at `first_slot`. Returns the number of slots used.
#[allow(clippy::too_many_arguments)]
fn record_eval<B: Backend + ?Sized>(
    be: &mut B,
    net: &Net,
    data: &Uploaded,
    y_batch: Buf,
    scale: Option<Buf>,
    classes: bool,
    stats: Buf,
    first_slot: usize,
) -> Result<usize> {
    let n = *net.sizes.last().unwrap_or(&1);
    let mut slot = first_slot;
    for start in (0..data.rows).step_by(net.batch) {
        let m = net.batch.min(data.rows - start);
        data.gather(be, start, m, net.a[0], Some(y_batch))?;
        net.forward(be, m)?;
        be.eval_stats(classes, net.output(), y_batch, scale, m, n, stats, slot)?;
        slot += 1;
    }
    Ok(slot - first_slot)
}

fn sum_stats(stats: &[f32], first_slot: usize, slots: usize, rows: usize) -> Metrics {
    let mut acc = [0f64; STATS_WIDTH];
    for s in first_slot..first_slot + slots {
        for (a, v) in acc
            .iter_mut()
            .zip(&stats[s * STATS_WIDTH..(s + 1) * STATS_WIDTH])
        {
            *a += *v as f64;
        }
    }
    let r = rows.max(1) as f64;
    Metrics {
        rows,
        mse: acc[0] / r,
        mae: acc[1] / r,
        cross_entropy: acc[0] / r,
        softmax_mse: acc[1] / r,
        accuracy: acc[2] / r,
    }
}

fn classification_metrics(m: Metrics, task: Task) -> Metrics {
    match task {
        Task::Classification => Metrics {
            mse: f64::NAN,
            mae: f64::NAN,
            ..m
        },
        Task::Regression => Metrics {
            cross_entropy: f64::NAN,
            softmax_mse: f64::NAN,
            accuracy: f64::NAN,
            ..m
        },
    }
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
        backward(be, net, gr, m)?;
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
}

/// Training one step at a time, for the bench harness: the data uploaded once, batches taken
/// in `train`'s order (a fresh seeded shuffle at the start of every pass over the rows), each
/// step recorded through the same code as `train`. Nothing is read back until `batch_loss`.
pub struct Trainer {
    st: Stepper,
    /// The base learning rate (the bench harness times a constant schedule).
    lr: f32,
    data: Uploaded,
    stats: Buf,
    batch: usize,
    next_batch: usize,
    shuffle: Rng,
    order: Vec<u32>,
}

impl Trainer {
    pub fn new<B: Backend + ?Sized>(
        be: &mut B,
        model: &Model,
        rows: &Rows,
        cfg: &TrainConfig,
    ) -> Result<Trainer> {
        if rows.rows == 0 || cfg.batch_size == 0 {
            return Err(Error::flag(
                "--batch-size",
                "needs rows and a batch of at least 1",
            ));
        }
        let batch = cfg.batch_size.min(rows.rows);
        let st = Stepper::new(be, model, batch, cfg)?;
        let data = upload(be, rows, target_cols(model))?;
        let stats = be.alloc(rows.rows.div_ceil(batch))?;
        Ok(Trainer {
            st,
            lr: cfg.lr,
            data,
            stats,
            batch,
            next_batch: 0,
            shuffle: Rng::derive(cfg.seed, 2),
            order: (0..rows.rows as u32).collect(),
        })
    }

    /// Records one optimizer step on the next batch.
    pub fn step<B: Backend + ?Sized>(&mut self, be: &mut B) -> Result<()> {
        if self.next_batch == 0 {
            self.shuffle.shuffle(&mut self.order);
            be.write_u32(self.data.idx, &self.order)?;
        }
        let bi = self.next_batch;
        let start = bi * self.batch;
        let m = self.batch.min(self.data.rows - start);
        self.st
            .step(be, &self.data, start, m, self.stats, bi, self.lr)?;
        self.next_batch = (bi + 1) % self.data.rows.div_ceil(self.batch);
        Ok(())
    }

    /// Waits for every recorded step and returns the mean loss per row of the last batch:
    /// the readback that proves the work is finished.
    pub fn batch_loss<B: Backend + ?Sized>(&mut self, be: &mut B) -> Result<f64> {
        let n_batches = self.data.rows.div_ceil(self.batch);
        let last = (self.next_batch + n_batches - 1) % n_batches;
        let m = self.batch.min(self.data.rows - last * self.batch);
        let s = be.read(self.stats)?;
        Ok(s[last] as f64 / m as f64)
    }
}

/// What `train` did: every epoch's metrics, and where early stopping found the best weights.
#[derive(Clone, Debug)]
pub struct History {
    pub epochs: Vec<EpochMetrics>,
    /// The epoch whose weights the model holds (the last one without early stopping).
    pub best_epoch: usize,
    /// Set when early stopping ended the run before `--epochs`.
    pub stopped_early: bool,
}

/// Trains `model` (initialized, normalizers set) in place and returns the per-epoch metrics.
/// `on_epoch` sees each epoch as it ends (the CLI prints and logs from it).
pub fn train<B: Backend + ?Sized>(
    be: &mut B,
    model: &mut Model,
    train: &Rows,
    val: Option<&Rows>,
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochMetrics),
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
    if cfg.batch_size == 0 {
        return Err(Error::flag("--batch-size", "must be at least 1"));
    }
    let batch = cfg.batch_size.min(train.rows);
    let y_cols = target_cols(model);
    let classes = model.task == Task::Classification;

    let mut st = Stepper::new(be, model, batch, cfg)?;
    let tr = upload(be, train, y_cols)?;
    let va = val
        .filter(|v| v.rows > 0)
        .map(|v| upload(be, v, y_cols))
        .transpose()?;
    let n_batches = train.rows.div_ceil(batch);
    let val_slots = va.as_ref().map_or(0, |v| v.rows.div_ceil(batch));
    // One buffer, one read per epoch: validation sums (4 wide) first, then a loss per batch.
    let stats = be.alloc(val_slots * STATS_WIDTH + n_batches)?;
    let loss_base = val_slots * STATS_WIDTH;

    let mut shuffle = Rng::derive(cfg.seed, 2);
    let mut order: Vec<u32> = (0..train.rows as u32).collect();
    let total_steps = (n_batches * cfg.epochs) as u64;
    let mut history = Vec::with_capacity(cfg.epochs);
    let bar = progress_bar(cfg.progress && n_batches >= 100, n_batches);
    let mut best: Option<(usize, f64)> = None;
    let mut stopped_early = false;

    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        shuffle.shuffle(&mut order);
        be.write_u32(tr.idx, &order)?;
        for bi in 0..n_batches {
            let start = bi * batch;
            let m = batch.min(train.rows - start);
            let lr = cfg.schedule.lr(cfg.lr as f64, epoch, st.step, total_steps) as f32;
            st.step(be, &tr, start, m, stats, loss_base + bi, lr)?;
            if let Some(b) = &bar {
                b.set_position(bi as u64 + 1);
            }
        }
        if let Some(v) = &va {
            record_eval(be, &st.net, v, st.y_batch, st.scale, classes, stats, 0)?;
        }
        let s = be.read(stats)?;
        let train_loss = s[loss_base..].iter().map(|&v| v as f64).sum::<f64>() / train.rows as f64;
        if !train_loss.is_finite() {
            return Err(Error::flag(
                "--lr",
                format!(
                    "training diverged at epoch {epoch} (loss is {train_loss}); try a smaller learning rate"
                ),
            ));
        }
        let vm = va.as_ref().map(|v| sum_stats(&s, 0, val_slots, v.rows));
        let m = EpochMetrics {
            epoch,
            train_loss,
            val_loss: vm.map(|v| v.loss(model.loss)),
            val_metric: vm.map(|v| v.headline(model.task)),
            seconds: t0.elapsed().as_secs_f64(),
        };
        if let Some(b) = &bar {
            b.reset();
        }
        on_epoch(&m);
        if let (Some(patience), Some(vl)) = (cfg.patience, m.val_loss) {
            if best.is_none_or(|(_, b)| vl < b) {
                best = Some((epoch, vl));
                // A read of the weights only when they improve, never per step.
                st.net.download(be, model)?;
            }
            let since = epoch - best.map_or(epoch, |(e, _)| e);
            history.push(m);
            if since >= patience {
                stopped_early = epoch < cfg.epochs;
                break;
            }
            continue;
        }
        history.push(m);
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let best_epoch = match best {
        Some((e, _)) => e,
        None => {
            st.net.download(be, model)?;
            history.len()
        }
    };
    Ok(History {
        epochs: history,
        best_epoch,
        stopped_early,
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
const INFER_BATCH: usize = 4096;

/// The network's outputs for `x` (standardized features, [rows, features]): regression values
/// in the target's units, or class probabilities [rows, classes].
pub fn predict<B: Backend + ?Sized>(
    be: &mut B,
    model: &Model,
    x: &[f32],
    rows: usize,
) -> Result<Vec<f32>> {
    let batch = INFER_BATCH.min(rows.max(1));
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
        if model.task == Task::Classification {
            be.softmax(net.output(), m, n)?;
        }
        out.extend_from_slice(&be.read(net.output())?[..m * n]);
    }
    be.free(data)?;
    be.free(idx)?;
    net.free(be)?;
    if model.task == Task::Regression {
        for row in out.chunks_exact_mut(n) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = *v * model.target_std[j] + model.target_mean[j];
            }
        }
    }
    Ok(out)
}

/// Metrics of `model` on prepared rows (targets standardized like in training).
pub fn evaluate<B: Backend + ?Sized>(be: &mut B, model: &Model, data: &Rows) -> Result<Metrics> {
    let batch = INFER_BATCH.min(data.rows.max(1));
    let net = Net::new(be, model, batch)?;
    let up = upload(be, data, target_cols(model))?;
    let y_batch = be.alloc(batch * up.y_cols)?;
    let scale = scale_buf(be, model)?;
    let slots = data.rows.div_ceil(batch);
    let stats = be.alloc(slots * STATS_WIDTH)?;
    let classes = model.task == Task::Classification;
    record_eval(be, &net, &up, y_batch, scale, classes, stats, 0)?;
    let s = be.read(stats)?;
    for b in [y_batch, stats].into_iter().chain(scale) {
        be.free(b)?;
    }
    up.free(be)?;
    net.free(be)?;
    Ok(classification_metrics(
        sum_stats(&s, 0, slots, data.rows),
        model.task,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
