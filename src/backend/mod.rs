//! The `Backend` trait: one method per op, implemented by the CPU reference (`cpu.rs`) and by
//! the GPU (`gpu/`, kernels in `shaders/*.wgsl` with entry points of the same names).
//!
//! Buffers live inside the backend and are named by `Buf` handles, so the training loop is
//! written once and never touches device memory. All matrices are row-major. Every op only
//! *records* work on the GPU; `read` (or `flush`) is where the host waits.

pub mod cpu;
pub mod gpu;

use crate::error::Result;
use crate::spec::{Activation, Loss, Optimizer};

/// The backend `--device` asks for: `Cpu`, a GPU adapter (`--adapter` picks one by index or
/// name), or for `Auto` a hardware GPU when there is one and else the CPU, saying so on stderr.
pub fn open(choice: gpu::DeviceChoice, adapter: Option<&str>) -> Result<Box<dyn Backend>> {
    match gpu::device::select_adapter(choice, adapter)? {
        Some(a) => Ok(Box::new(gpu::GpuBackend::new(a)?)),
        None => {
            if choice == gpu::DeviceChoice::Auto {
                eprintln!("wgtrain: no hardware GPU adapter found; running on the CPU");
            }
            Ok(Box::new(cpu::CpuBackend::new()))
        }
    }
}

/// A handle to a backend buffer of `len` 32-bit elements (f32, or u32 for index buffers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buf {
    pub id: u32,
    pub len: usize,
}

/// Hyper-parameters of one optimizer update. The host computes the Adam bias corrections
/// in f64 so that every backend uses bit-identical factors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepParams {
    pub lr: f32,
    /// L2 penalty added to the gradient (sgd, momentum) or decoupled decay (adam, AdamW-style).
    pub weight_decay: f32,
    /// 1 / (1 − β₁ᵗ) and 1 / (1 − β₂ᵗ) for Adam at step t (1-based); unused otherwise.
    pub bias_correction1: f32,
    pub bias_correction2: f32,
}

impl StepParams {
    pub fn new(lr: f32, weight_decay: f32, step: u64) -> Self {
        let t = step.max(1) as i32;
        let c1 = 1.0 / (1.0 - (crate::spec::ADAM_BETA1 as f64).powi(t));
        let c2 = 1.0 / (1.0 - (crate::spec::ADAM_BETA2 as f64).powi(t));
        StepParams {
            lr,
            weight_decay,
            bias_correction1: c1 as f32,
            bias_correction2: c2 as f32,
        }
    }
}

/// Number of f32 slots `eval_stats` writes per call.
pub const STATS_WIDTH: usize = 4;

pub trait Backend {
    /// A one-line description for logs, e.g. "cpu (matrixmultiply sgemm)" or the adapter name.
    fn describe(&self) -> String;

    // ---- memory -------------------------------------------------------------------------
    /// A new buffer of `len` elements, zero-filled.
    fn alloc(&mut self, len: usize) -> Result<Buf>;
    fn upload(&mut self, data: &[f32]) -> Result<Buf>;
    fn upload_u32(&mut self, data: &[u32]) -> Result<Buf>;
    /// Overwrite the whole buffer (`data.len() == buf.len`), ordered after earlier ops.
    fn write(&mut self, buf: Buf, data: &[f32]) -> Result<()>;
    fn write_u32(&mut self, buf: Buf, data: &[u32]) -> Result<()>;
    /// Wait for every recorded op, then copy the buffer to the host.
    fn read(&mut self, buf: Buf) -> Result<Vec<f32>>;
    /// Submit recorded work without waiting (GPU); nothing on the CPU.
    fn flush(&mut self) -> Result<()>;

    // ---- forward ------------------------------------------------------------------------
    /// dst[r, :] = src[idx[start + r], :] for r in 0..count; src is [_, cols], dst [count, cols].
    /// How a batch is taken from the data set uploaded once, through a shuffled index buffer.
    fn gather_rows(
        &mut self,
        src: Buf,
        cols: usize,
        idx: Buf,
        start: usize,
        count: usize,
        dst: Buf,
    ) -> Result<()>;

    /// y[m, n] = act(x[m, k] · w[n, k]ᵀ + b[n]) — the forward product of a linear layer
    /// (w has PyTorch's [out, in] layout), bias and activation fused.
    #[allow(clippy::too_many_arguments)]
    fn matmul_nt(
        &mut self,
        x: Buf,
        w: Buf,
        b: Option<Buf>,
        act: Activation,
        y: Buf,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<()>;

    /// dx[m, k] = dy[m, n] · w[n, k] — the gradient flowing back to a layer's input.
    fn matmul_nn(&mut self, dy: Buf, w: Buf, dx: Buf, m: usize, n: usize, k: usize) -> Result<()>;

    /// dw[n, k] = dy[m, n]ᵀ · x[m, k] — the weight gradient (sum over the batch).
    fn matmul_tn(&mut self, dy: Buf, x: Buf, dw: Buf, m: usize, n: usize, k: usize) -> Result<()>;

    /// In place: g[i] *= act'(·), written through the activation's *output* y
    /// (relu: y > 0; sigmoid: y·(1 − y); identity: 1). `len` elements.
    fn act_backward(&mut self, act: Activation, y: Buf, g: Buf, len: usize) -> Result<()>;

    /// db[n] = Σ_r dz[r, n] over m rows, in a fixed order.
    fn bias_grad(&mut self, dz: Buf, db: Buf, m: usize, n: usize) -> Result<()>;

    /// In place, row by row: x[r, :] = softmax(x[r, :]) for x [m, n].
    fn softmax(&mut self, x: Buf, m: usize, n: usize) -> Result<()>;

    // ---- losses -------------------------------------------------------------------------
    /// The loss of a batch of m rows and its gradient.
    /// `out` [m, n] is the network's raw output (logits for classification).
    /// `target` is [m, n] for regression (standardized units), [m] class indices (as f32)
    /// for classification. `scale` [n] (regression only, optional = 1) converts an error to
    /// the target's own units for the *reported* loss; the gradient is of the unscaled loss.
    /// Writes grad[m, n] = ∂L/∂out with L = 1/m Σ eₙ (see `Loss`), and
    /// stats[slot] = Σ eₙ over the m rows in reported units, summed in a fixed order.
    #[allow(clippy::too_many_arguments)]
    fn loss_grad(
        &mut self,
        loss: Loss,
        out: Buf,
        target: Buf,
        scale: Option<Buf>,
        grad: Buf,
        m: usize,
        n: usize,
        stats: Buf,
        slot: usize,
    ) -> Result<()>;

    /// Evaluation sums over m rows, written to stats[slot*4 .. slot*4+4] in a fixed order:
    /// regression (`classes == false`): [Σ mean_j (s_j·(o−t))², Σ mean_j |s_j·(o−t)|, 0, 0];
    /// classification: [Σ −log p_y, Σ_c (p_c − onehot_c)², correct predictions, 0], where the
    /// prediction is the first index of the largest logit.
    #[allow(clippy::too_many_arguments)]
    fn eval_stats(
        &mut self,
        classes: bool,
        out: Buf,
        target: Buf,
        scale: Option<Buf>,
        m: usize,
        n: usize,
        stats: Buf,
        slot: usize,
    ) -> Result<()>;

    // ---- gradient clipping ------------------------------------------------------------
    /// out[slot] = Σ x[i]² over `len` elements, summed in a fixed order.
    fn sum_squares(&mut self, x: Buf, len: usize, out: Buf, slot: usize) -> Result<()>;

    /// In place: x[i] *= min(1, max_norm / (‖g‖ + 1e-6)) where ‖g‖² = Σ partials[0..count]
    /// (the squared norms `sum_squares` wrote, summed in index order): clipping by the global
    /// gradient norm without a read-back.
    fn clip_scale(
        &mut self,
        x: Buf,
        len: usize,
        partials: Buf,
        count: usize,
        max_norm: f32,
    ) -> Result<()>;

    // ---- optimizer ----------------------------------------------------------------------
    /// In place update of `param` from `grad` (both `len`), with `state` holding
    /// `opt.state_slots()` buffers of `len` (velocity; or Adam's m and v).
    /// sgd:      g' = g + wd·p;            p −= lr·g'
    /// momentum: g' = g + wd·p; v = 0.9·v + g';  p −= lr·v
    /// adam:     m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²;
    ///           p −= lr·(m·c₁ / (√(v·c₂) + ε) + wd·p)
    fn optimizer_step(
        &mut self,
        opt: Optimizer,
        param: Buf,
        grad: Buf,
        state: &[Buf],
        len: usize,
        p: StepParams,
    ) -> Result<()>;
}
