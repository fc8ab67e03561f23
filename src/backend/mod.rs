//! The `Backend` trait: one method per op, implemented by the CPU reference (`cpu.rs`) and by
//! the GPU (`gpu/`, kernels in `shaders/*.wgsl` with entry points of the same names).
//!
//! Buffers live inside the backend and are named by `Buf` handles, so the training loop is
//! written once and never touches device memory. A `Buf` is a view (offset + length) into a
//! backing buffer; parameters, gradients and each optimizer state are one backing buffer each
//! (a slab, see `ParamLayout`) and the layers are views into them. All matrices are row-major.
//! Every op only *records* work on the GPU; `read` (or `flush`) is where the host waits.
//!
//! Each op is a provided method that checks shapes, ranges, element types and aliasing once,
//! then calls the backend's `*_impl`: both backends refuse the same misuse with the same error.
//! Checks that depend on buffer *contents* (a row index past the data set, a class index past
//! the outputs) cannot run on the host without a read-back: the CPU returns them at once, the
//! GPU raises a fault flag that the next `read` returns, with the same message (`Fault`).

pub mod cpu;
mod fast;
pub mod gpu;
mod pool;

use crate::error::{Error, Result};
use crate::spec::{Activation, Loss, Optimizer};

/// The backend `--device` asks for: `Cpu`, a GPU adapter (`--adapter` picks one by index or
/// name), or for `Auto` a hardware GPU when there is one and else the CPU, saying so on stderr.
pub fn open(choice: gpu::DeviceChoice, adapter: Option<&str>) -> Result<Box<dyn Backend>> {
    match gpu::device::select_adapter(choice, adapter)? {
        Some(a) => Ok(Box::new(gpu::GpuBackend::new(a)?)),
        None => {
            if choice == gpu::DeviceChoice::Auto {
                crate::errln!("wgtrain: no hardware GPU adapter found; running on the CPU");
            }
            Ok(Box::new(cpu::CpuBackend::new()))
        }
    }
}

/// What the 32-bit elements of a buffer hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    /// Row indices (`gather`).
    U32,
}

/// A view of `len` elements starting at element `offset` of the backing buffer `id`.
/// `alloc`/`upload` return whole buffers (offset 0); `view` cuts parts out of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buf {
    pub id: u32,
    pub offset: usize,
    pub len: usize,
    pub dtype: DType,
}

impl Buf {
    /// Elements offset..offset + len of this view, as a view of the same backing buffer.
    pub fn view(self, offset: usize, len: usize) -> Result<Buf> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(Buf {
                offset: self.offset + offset,
                len,
                ..self
            }),
            _ => Err(Error::internal(format!(
                "view {offset}..{offset}+{len} of a buffer of {} elements",
                self.len
            ))),
        }
    }
    pub fn end(self) -> usize {
        self.offset + self.len
    }
    fn overlaps(self, o: Buf) -> bool {
        self.id == o.id && self.offset < o.end() && o.offset < self.end()
    }
}

/// Where a network's parameters lie in its flat slab: every weight matrix in layer order
/// (layer l's `[out, in]`, row-major), then every bias in layer order. Gradients and each
/// optimizer state use the same layout. Weight decay applies to the first `weights_len`
/// elements (the weights) and never to the biases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    /// (offset, len) of layer l's weights.
    pub w: Vec<(usize, usize)>,
    /// (offset, len) of layer l's biases.
    pub b: Vec<(usize, usize)>,
    pub weights_len: usize,
    pub len: usize,
}

impl ParamLayout {
    /// The layout for layer sizes [in, hidden…, out].
    pub fn new(sizes: &[usize]) -> ParamLayout {
        let mut w = Vec::new();
        let mut at = 0;
        for s in sizes.windows(2) {
            w.push((at, s[0] * s[1]));
            at += s[0] * s[1];
        }
        let weights_len = at;
        let mut b = Vec::new();
        for &s in sizes.iter().skip(1) {
            b.push((at, s));
            at += s;
        }
        ParamLayout {
            w,
            b,
            weights_len,
            len: at,
        }
    }
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

/// Gradient clipping inside the optimizer step: the gradient is scaled by
/// min(1, max_norm / (‖g‖ + 1e-6)) with ‖g‖² = Σ partials (written by `sum_squares`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clip {
    pub partials: Buf,
    pub max_norm: f32,
}

/// One source of a `gather`: dst[r, :] = src[idx[start + r], :], src [_, cols], dst [count, cols].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gather {
    pub src: Buf,
    pub cols: usize,
    pub dst: Buf,
}

pub use crate::spec::Fault;

/// Number of f32 slots `eval_stats` writes per call.
pub const STATS_WIDTH: usize = 4;

fn bad(msg: String) -> Error {
    Error::internal(msg)
}

fn need(b: Buf, n: usize, what: &str) -> Result<()> {
    if b.dtype != DType::F32 {
        return Err(bad(format!(
            "{what}: expected f32 elements, got {:?}",
            b.dtype
        )));
    }
    if b.len < n {
        return Err(bad(format!(
            "{what} holds {} elements, the op needs {n}",
            b.len
        )));
    }
    Ok(())
}

fn mul(a: usize, b: usize, what: &str) -> Result<usize> {
    a.checked_mul(b)
        .ok_or_else(|| bad(format!("{what}: {a}·{b} elements overflow")))
}

/// No output may share its backing buffer with another operand: the GPU binds whole backing
/// buffers, and a buffer written and read in one dispatch is a race (and a wgpu error).
fn separate(outputs: &[Buf], inputs: &[Buf]) -> Result<()> {
    for (i, o) in outputs.iter().enumerate() {
        for x in inputs.iter().chain(&outputs[i + 1..]) {
            if o.id == x.id {
                return Err(bad(format!(
                    "an op's output (elements {}..+{}) shares its backing buffer with another \
                     operand (elements {}..+{})",
                    o.offset, o.len, x.offset, x.len
                )));
            }
        }
    }
    Ok(())
}

/// What one allocation on a device may hold, from the limits the device was created with.
/// wgpu has no query for free device memory: a buffer within these limits can still fail to
/// allocate, which the backend reports as an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    /// Bytes one binding holds on this backend: the smaller of both, cut to the kernels'
    /// 32-bit indices (and to a test's cap). A data set larger than this is read in chunks.
    pub binding: u64,
}

pub trait Backend {
    /// A one-line description for logs, e.g. "cpu (matrixmultiply sgemm)" or the adapter name.
    fn describe(&self) -> String;

    /// The device's allocation limits; `None` where buffers live in host memory (the CPU),
    /// which [`crate::budget::check`] counts.
    fn limits(&self) -> Option<Limits> {
        None
    }

    /// Kernels dispatched (GPU) or ops run (CPU) so far: `bench` reports them per step.
    fn dispatches(&self) -> u64;

    /// Chooses kernel variants for a network of layer `sizes` trained at `batch`: on the GPU
    /// from the tuning cache, tuning the shape classes it lacks as `mode` says. Returns lines
    /// for the user. Results never depend on it (every variant gives the same bits).
    fn tune(
        &mut self,
        sizes: &[usize],
        batch: usize,
        mode: gpu::tune::Mode,
    ) -> Result<Vec<String>> {
        let _ = (sizes, batch, mode);
        Ok(Vec::new())
    }

    // ---- memory -------------------------------------------------------------------------
    /// A new f32 buffer of `len` elements, zero-filled.
    fn alloc(&mut self, len: usize) -> Result<Buf>;
    fn upload(&mut self, data: &[f32]) -> Result<Buf>;
    fn upload_u32(&mut self, data: &[u32]) -> Result<Buf>;
    /// (elements, type) of backing buffer `id`; `None` when it never existed or was freed.
    fn backing(&self, id: u32) -> Option<(usize, DType)>;
    /// Submit recorded work without waiting (GPU); nothing on the CPU.
    fn flush(&mut self) -> Result<()>;

    fn free_impl(&mut self, buf: Buf) -> Result<()>;
    fn write_impl(&mut self, buf: Buf, data: &[u32]) -> Result<()>;
    fn read_impl(&mut self, buf: Buf) -> Result<Vec<f32>>;

    /// Checks that `b` names a live backing buffer of its type and lies inside it.
    /// `check_buf`, and the view holds exactly `len` elements.
    fn check_view(&self, b: Buf, len: usize, what: &str) -> Result<()> {
        self.check_buf(b, what)?;
        need(b, len, what)
    }

    fn check_buf(&self, b: Buf, what: &str) -> Result<()> {
        match self.backing(b.id) {
            Some((len, dtype))
                if dtype == b.dtype && b.offset.checked_add(b.len).is_some_and(|e| e <= len) =>
            {
                Ok(())
            }
            Some((len, dtype)) => Err(bad(format!(
                "{what}: a {:?} view of elements {}..{}+{} does not fit its backing buffer \
                 ({len} {dtype:?} elements)",
                b.dtype, b.offset, b.offset, b.len
            ))),
            None => Err(bad(format!("{what}: unknown or freed buffer"))),
        }
    }

    /// Releases a whole buffer (not a view); its views become invalid.
    fn free(&mut self, buf: Buf) -> Result<()> {
        self.check_buf(buf, "free")?;
        if self.backing(buf.id).map(|(l, _)| l) != Some(buf.len) || buf.offset != 0 {
            return Err(bad(format!(
                "free of a view {buf:?}: free the whole buffer"
            )));
        }
        self.free_impl(buf)
    }
    /// Overwrite the view (`data.len() == buf.len`), ordered after earlier ops.
    fn write(&mut self, buf: Buf, data: &[f32]) -> Result<()> {
        self.check_view(buf, 0, "write")?;
        if data.len() != buf.len {
            return Err(bad(format!(
                "write of {} elements to a view of {}",
                data.len(),
                buf.len
            )));
        }
        self.write_impl(buf, bytemuck::cast_slice(data))
    }
    fn write_u32(&mut self, buf: Buf, data: &[u32]) -> Result<()> {
        self.check_buf(buf, "write")?;
        if buf.dtype != DType::U32 || data.len() != buf.len {
            return Err(bad(format!(
                "write of {} u32 elements to {buf:?}",
                data.len()
            )));
        }
        self.write_impl(buf, data)
    }
    /// Wait for every recorded op, then copy the view to the host.
    fn read(&mut self, buf: Buf) -> Result<Vec<f32>> {
        self.check_buf(buf, "read")?;
        self.read_impl(buf)
    }
    fn read_u32(&mut self, buf: Buf) -> Result<Vec<u32>> {
        self.check_buf(buf, "read")?;
        Ok(self.read_impl(buf)?.into_iter().map(f32::to_bits).collect())
    }

    // ---- forward ------------------------------------------------------------------------
    /// For `x` and, optionally, `y`: dst[r, :] = src[idx[start + r], :] for r in 0..count.
    /// How a batch (features and targets together) is taken from the data set uploaded once,
    /// through a shuffled index buffer. An index past src's rows is a `Fault::RowIndex`.
    fn gather(
        &mut self,
        idx: Buf,
        start: usize,
        count: usize,
        x: Gather,
        y: Option<Gather>,
    ) -> Result<()> {
        self.check_buf(idx, "gather index")?;
        if idx.dtype != DType::U32 || start.checked_add(count).is_none_or(|e| e > idx.len) {
            return Err(bad(format!(
                "gather: positions {start}..+{count} of index {idx:?}"
            )));
        }
        for g in std::iter::once(&x).chain(y.as_ref()) {
            self.check_buf(g.src, "gather source")?;
            self.check_buf(g.dst, "gather destination")?;
            need(g.src, 0, "gather source")?;
            need(g.dst, mul(count, g.cols, "gather")?, "gather destination")?;
            if g.cols == 0 || g.src.len % g.cols != 0 {
                return Err(bad(format!(
                    "gather: {} elements are not rows of {}",
                    g.src.len, g.cols
                )));
            }
        }
        let dsts: Vec<Buf> = std::iter::once(x.dst).chain(y.map(|g| g.dst)).collect();
        let srcs: Vec<Buf> = [idx, x.src].into_iter().chain(y.map(|g| g.src)).collect();
        separate(&dsts, &srcs)?;
        self.gather_impl(idx, start, count, x, y)
    }
    fn gather_impl(
        &mut self,
        idx: Buf,
        start: usize,
        count: usize,
        x: Gather,
        y: Option<Gather>,
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
    ) -> Result<()> {
        for (v, len, what) in [
            (x, mul(m, k, "x")?, "matmul_nt x"),
            (w, mul(n, k, "w")?, "matmul_nt w"),
            (y, mul(m, n, "y")?, "matmul_nt y"),
        ] {
            self.check_view(v, len, what)?;
        }
        if let Some(b) = b {
            self.check_view(b, n, "matmul_nt bias")?;
        }
        let ins: Vec<Buf> = [x, w].into_iter().chain(b).collect();
        separate(&[y], &ins)?;
        self.matmul_nt_impl(x, w, b, act, y, m, n, k)
    }
    #[allow(clippy::too_many_arguments)]
    fn matmul_nt_impl(
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

    /// dx[m, k] = (dy[m, n] · w[n, k]) ⊙ act'(y[m, k]) — the gradient flowing back to a
    /// layer's input, through the previous layer's activation, written through that
    /// activation's output `y` (relu: y > 0; sigmoid: y·(1 − y)). `y` may be `None` only for
    /// the identity.
    #[allow(clippy::too_many_arguments)]
    fn matmul_nn(
        &mut self,
        dy: Buf,
        w: Buf,
        act: Activation,
        y: Option<Buf>,
        dx: Buf,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<()> {
        for (v, len, what) in [
            (dy, mul(m, n, "dy")?, "matmul_nn dy"),
            (w, mul(n, k, "w")?, "matmul_nn w"),
            (dx, mul(m, k, "dx")?, "matmul_nn dx"),
        ] {
            self.check_view(v, len, what)?;
        }
        match y {
            Some(y) => {
                self.check_view(y, m * k, "matmul_nn y")?;
            }
            None if act != Activation::Identity => {
                return Err(bad(format!(
                    "matmul_nn: {} backward needs the layer output y",
                    act.as_str()
                )));
            }
            None => {}
        }
        let ins: Vec<Buf> = [dy, w].into_iter().chain(y).collect();
        separate(&[dx], &ins)?;
        self.matmul_nn_impl(dy, w, act, y, dx, m, n, k)
    }
    #[allow(clippy::too_many_arguments)]
    fn matmul_nn_impl(
        &mut self,
        dy: Buf,
        w: Buf,
        act: Activation,
        y: Option<Buf>,
        dx: Buf,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<()>;

    /// dw[n, k] = dy[m, n]ᵀ · x[m, k] — the weight gradient (sum over the batch), and when
    /// `db` is given the bias gradient db[n] = Σ_r dy[r, n], summed over r = 0, 1, … in order.
    #[allow(clippy::too_many_arguments)]
    fn matmul_tn(
        &mut self,
        dy: Buf,
        x: Buf,
        dw: Buf,
        db: Option<Buf>,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<()> {
        for (v, len, what) in [
            (dy, mul(m, n, "dy")?, "matmul_tn dy"),
            (x, mul(m, k, "x")?, "matmul_tn x"),
            (dw, mul(n, k, "dw")?, "matmul_tn dw"),
        ] {
            self.check_view(v, len, what)?;
        }
        if let Some(db) = db {
            self.check_view(db, n, "matmul_tn db")?;
            if db.overlaps(dw) {
                return Err(bad(format!("matmul_tn: db {db:?} overlaps dw {dw:?}")));
            }
        }
        // dw and db may be views of one gradient slab; neither may share one with an input.
        separate(&[dw], &[dy, x])?;
        if let Some(db) = db {
            separate(&[db], &[dy, x])?;
        }
        self.matmul_tn_impl(dy, x, dw, db, m, n, k)
    }
    #[allow(clippy::too_many_arguments)]
    fn matmul_tn_impl(
        &mut self,
        dy: Buf,
        x: Buf,
        dw: Buf,
        db: Option<Buf>,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<()>;

    /// In place, row by row: x[r, :] = softmax(x[r, :]) for x [m, n].
    fn softmax(&mut self, x: Buf, m: usize, n: usize) -> Result<()> {
        self.check_view(x, mul(m, n, "softmax")?, "softmax x")?;
        self.softmax_impl(x, m, n)
    }
    fn softmax_impl(&mut self, x: Buf, m: usize, n: usize) -> Result<()>;

    // ---- losses -------------------------------------------------------------------------
    /// The loss of a batch of m rows and its gradient.
    /// `out` [m, n] is the network's raw output (logits for classification).
    /// `target` is [m, n] for regression (standardized units), [m] class indices (as f32)
    /// for classification (anything but an integer in 0..n is a `Fault::ClassIndex`).
    /// `scale` [n] (regression only, optional = 1) converts an error to
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
    ) -> Result<()> {
        let classes = loss.task() == crate::spec::Task::Classification;
        self.check_loss_inputs("loss_grad", classes, out, target, scale, m, n)?;
        self.check_view(grad, m * n, "loss gradient")?;
        self.check_view(stats, slot + 1, "loss stats")?;
        let ins: Vec<Buf> = [out, target].into_iter().chain(scale).collect();
        separate(&[grad, stats], &ins)?;
        self.loss_grad_impl(
            loss,
            out,
            target,
            scale.filter(|_| !classes),
            grad,
            m,
            n,
            stats,
            slot,
        )
    }
    #[allow(clippy::too_many_arguments)]
    fn loss_grad_impl(
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
    ) -> Result<()> {
        self.check_loss_inputs("eval_stats", classes, out, target, scale, m, n)?;
        self.check_view(stats, (slot + 1) * STATS_WIDTH, "eval stats")?;
        let ins: Vec<Buf> = [out, target].into_iter().chain(scale).collect();
        separate(&[stats], &ins)?;
        self.eval_stats_impl(
            classes,
            out,
            target,
            scale.filter(|_| !classes),
            m,
            n,
            stats,
            slot,
        )
    }
    #[allow(clippy::too_many_arguments)]
    fn eval_stats_impl(
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

    #[allow(clippy::too_many_arguments)]
    #[doc(hidden)]
    fn check_loss_inputs(
        &self,
        op: &str,
        classes: bool,
        out: Buf,
        target: Buf,
        scale: Option<Buf>,
        m: usize,
        n: usize,
    ) -> Result<()> {
        if n == 0 && m > 0 {
            return Err(bad(format!("{op} over zero outputs")));
        }
        self.check_view(out, mul(m, n, op)?, "loss output")?;
        self.check_view(target, if classes { m } else { m * n }, "loss target")?;
        if let Some(s) = scale {
            self.check_view(s, n, "loss scale")?;
        }
        Ok(())
    }

    // ---- gradient clipping ------------------------------------------------------------
    /// partials[p] = Σ x[i]² over block p of x (P = partials.len blocks of ⌈len/P⌉ elements,
    /// the last one shorter), each summed in a fixed order: one multi-workgroup reduction whose
    /// P values `optimizer_step` adds in index order to get ‖x‖².
    fn sum_squares(&mut self, x: Buf, partials: Buf) -> Result<()> {
        self.check_view(x, 0, "sum_squares x")?;
        self.check_view(partials, 1, "sum_squares partials")?;
        separate(&[partials], &[x])?;
        self.sum_squares_impl(x, partials)
    }
    fn sum_squares_impl(&mut self, x: Buf, partials: Buf) -> Result<()>;

    // ---- optimizer ----------------------------------------------------------------------
    /// One update of every parameter of a slab, in place: `param`, `grad` and each of the
    /// `opt.state_slots()` buffers in `state` (velocity; or Adam's m and v) have one length.
    /// Weight decay applies to elements 0..decay_len only (the weights of a `ParamLayout`).
    /// With `clip`, g is first scaled by min(1, max_norm / (‖g‖ + 1e-6)).
    /// sgd:      g' = g + wd·p;            p −= lr·g'
    /// momentum: g' = g + wd·p; v = 0.9·v + g';  p −= lr·v
    /// adam:     m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²;
    ///           p −= lr·(m·c₁ / (√(v·c₂) + ε) + wd·p)
    #[allow(clippy::too_many_arguments)]
    fn optimizer_step(
        &mut self,
        opt: Optimizer,
        param: Buf,
        grad: Buf,
        state: &[Buf],
        decay_len: usize,
        hp: StepParams,
        clip: Option<Clip>,
    ) -> Result<()> {
        if state.len() != opt.state_slots() {
            return Err(bad(format!(
                "{} keeps {} state buffers, got {}",
                opt.as_str(),
                opt.state_slots(),
                state.len()
            )));
        }
        let len = param.len;
        for (b, what) in [(param, "parameters"), (grad, "gradient")]
            .into_iter()
            .chain(state.iter().map(|&s| (s, "optimizer state")))
        {
            self.check_view(b, len, what)?;
            if b.len != len {
                return Err(bad(format!(
                    "{what} holds {} elements, the parameters {len}",
                    b.len
                )));
            }
        }
        if decay_len > len {
            return Err(bad(format!(
                "weight decay over {decay_len} of {len} parameters"
            )));
        }
        let mut ins = vec![grad];
        if let Some(c) = clip {
            self.check_buf(c.partials, "clip partials")?;
            need(c.partials, 1, "clip partials")?;
            ins.push(c.partials);
        }
        let outs: Vec<Buf> = std::iter::once(param)
            .chain(state.iter().copied())
            .collect();
        separate(&outs, &ins)?;
        self.optimizer_step_impl(opt, param, grad, state, decay_len, hp, clip)
    }
    #[allow(clippy::too_many_arguments)]
    fn optimizer_step_impl(
        &mut self,
        opt: Optimizer,
        param: Buf,
        grad: Buf,
        state: &[Buf],
        decay_len: usize,
        hp: StepParams,
        clip: Option<Clip>,
    ) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_layout_puts_weights_first_then_biases() {
        let l = ParamLayout::new(&[3, 4, 2]);
        assert_eq!(l.w, vec![(0, 12), (12, 8)]);
        assert_eq!(l.b, vec![(20, 4), (24, 2)]);
        assert_eq!((l.weights_len, l.len), (20, 26));
    }

    #[test]
    fn views_stay_inside_their_buffer() {
        let b = Buf {
            id: 3,
            offset: 0,
            len: 10,
            dtype: DType::F32,
        };
        let v = b.view(4, 6).expect("fits");
        assert_eq!((v.offset, v.len, v.end()), (4, 6, 10));
        let vv = v.view(1, 2).expect("fits");
        assert_eq!(vv.offset, 5);
        assert!(v.view(1, 6).is_err());
        assert!(b.view(usize::MAX, 2).is_err());
        assert!(v.overlaps(vv) && !vv.overlaps(b.view(0, 5).expect("fits")));
    }
}
