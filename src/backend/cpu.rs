//! The CPU reference: every op of the `Backend` trait as a plain function over slices, generic
//! over f32 (training) and f64 (the gradient checks). The WGSL kernels in `shaders/` are
//! verified against these functions; read them side by side.
//!
//! The three matrix products go through the `gemm` crate (strides express the transposed
//! layouts, so no copies; the strides are bounds-checked before every call); `*_naive` keeps
//! the textbook loops as the reference. The `CpuBackend` itself runs the f32 fast path of
//! `fast.rs` (a persistent thread pool, fused epilogues, vectorized optimizer), which is
//! tested against the functions here.

use std::time::Instant;

use super::fast::{self, AdamStep};
use super::pool::Pool;
use super::{Backend, Buf, STATS_WIDTH, StepParams};
use crate::error::{Error, Result};
use crate::spec::{ADAM_BETA1, ADAM_BETA2, ADAM_EPS, Activation, Loss, MOMENTUM, Optimizer};

/// f32 or f64: just what the reference ops need.
pub trait Real:
    Copy
    + PartialOrd
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    /// c[m, n] = a[m, k] · b[k, n] with arbitrary (row, column) strides; panics (never reads
    /// out of bounds) when the strides reach past a slice.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        sa: (usize, usize),
        b: &[Self],
        sb: (usize, usize),
        c: &mut [Self],
    );
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                a: &[Self],
                sa: (usize, usize),
                b: &[Self],
                sb: (usize, usize),
                c: &mut [Self],
            ) {
                super::fast::gemm(m, n, k, a, sa, b, sb, c, n, 1.0);
            }
        }
    };
}
impl_real!(f32);
impl_real!(f64);

// ---- activations -------------------------------------------------------------------------

pub fn act_forward<F: Real>(act: Activation, z: F) -> F {
    match act {
        Activation::Identity => z,
        Activation::Relu => {
            if z > F::ZERO {
                z
            } else {
                F::ZERO
            }
        }
        Activation::Sigmoid => F::ONE / (F::ONE + (-z).exp()),
    }
}

/// act'(z) written through the output y = act(z).
pub fn act_derivative<F: Real>(act: Activation, y: F) -> F {
    match act {
        Activation::Identity => F::ONE,
        Activation::Relu => {
            if y > F::ZERO {
                F::ONE
            } else {
                F::ZERO
            }
        }
        Activation::Sigmoid => y * (F::ONE - y),
    }
}

/// g[i] *= act'(y[i])
pub fn act_backward<F: Real>(act: Activation, y: &[F], g: &mut [F]) {
    for (g, &y) in g.iter_mut().zip(y) {
        *g *= act_derivative(act, y);
    }
}

// ---- matrix products ---------------------------------------------------------------------

/// y[m, n] = act(x[m, k] · w[n, k]ᵀ + b[n])
#[allow(clippy::too_many_arguments)]
pub fn matmul_nt<F: Real>(
    x: &[F],
    w: &[F],
    b: Option<&[F]>,
    act: Activation,
    y: &mut [F],
    m: usize,
    n: usize,
    k: usize,
) {
    F::gemm(m, k, n, x, (k, 1), w, (1, k), y);
    epilogue(b, act, y, m, n);
}

fn epilogue<F: Real>(b: Option<&[F]>, act: Activation, y: &mut [F], m: usize, n: usize) {
    for row in y[..m * n].chunks_exact_mut(n.max(1)) {
        for (j, v) in row.iter_mut().enumerate() {
            let z = *v + b.map_or(F::ZERO, |b| b[j]);
            *v = act_forward(act, z);
        }
    }
}

/// dx[m, k] = dy[m, n] · w[n, k]
pub fn matmul_nn<F: Real>(dy: &[F], w: &[F], dx: &mut [F], m: usize, n: usize, k: usize) {
    F::gemm(m, n, k, dy, (n, 1), w, (k, 1), dx);
}

/// dw[n, k] = dy[m, n]ᵀ · x[m, k]
pub fn matmul_tn<F: Real>(dy: &[F], x: &[F], dw: &mut [F], m: usize, n: usize, k: usize) {
    F::gemm(n, m, k, dy, (1, n), x, (k, 1), dw);
}

/// The textbook triple loop, in the same three layouts: the reference for the fast path.
/// `layout`: "nt" y = x·wᵀ (a [m,k], b [n,k]); "nn" a [m,n]·b [n,k]; "tn" aᵀ·b with a [m,n], b [m,k].
pub fn matmul_naive<F: Real>(
    layout: &str,
    a: &[F],
    b: &[F],
    m: usize,
    n: usize,
    k: usize,
) -> Vec<F> {
    match layout {
        "nt" => {
            let mut y = vec![F::ZERO; m * n];
            for i in 0..m {
                for j in 0..n {
                    let mut s = F::ZERO;
                    for p in 0..k {
                        s += a[i * k + p] * b[j * k + p];
                    }
                    y[i * n + j] = s;
                }
            }
            y
        }
        "nn" => {
            let mut y = vec![F::ZERO; m * k];
            for i in 0..m {
                for p in 0..k {
                    let mut s = F::ZERO;
                    for j in 0..n {
                        s += a[i * n + j] * b[j * k + p];
                    }
                    y[i * k + p] = s;
                }
            }
            y
        }
        "tn" => {
            let mut y = vec![F::ZERO; n * k];
            for j in 0..n {
                for p in 0..k {
                    let mut s = F::ZERO;
                    for i in 0..m {
                        s += a[i * n + j] * b[i * k + p];
                    }
                    y[j * k + p] = s;
                }
            }
            y
        }
        _ => panic!("matmul_naive: unknown layout {layout}"),
    }
}

/// db[n] = Σ_r dz[r, n]
pub fn bias_grad<F: Real>(dz: &[F], db: &mut [F], m: usize, n: usize) {
    db[..n].iter_mut().for_each(|v| *v = F::ZERO);
    for row in dz[..m * n].chunks_exact(n.max(1)) {
        for (d, &g) in db.iter_mut().zip(row) {
            *d += g;
        }
    }
}

/// x[r, :] = softmax(x[r, :]), with the row maximum subtracted first so exp never overflows.
pub fn softmax<F: Real>(x: &mut [F], m: usize, n: usize) {
    for row in x[..m * n].chunks_exact_mut(n.max(1)) {
        let max = row
            .iter()
            .copied()
            .fold(row[0], |a, b| if b > a { b } else { a });
        let mut sum = F::ZERO;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        for v in row.iter_mut() {
            *v = *v / sum;
        }
    }
}

/// log Σ exp(row), computed stably.
fn log_sum_exp<F: Real>(row: &[F]) -> F {
    let max = row
        .iter()
        .copied()
        .fold(row[0], |a, b| if b > a { b } else { a });
    let sum = row.iter().fold(F::ZERO, |s, &v| s + (v - max).exp());
    max + sum.ln()
}

fn class_of<F: Real>(t: F, n: usize) -> usize {
    let c = t.to_f64();
    assert!(
        c >= 0.0 && (c as usize) < n,
        "class index {c} out of range 0..{n}"
    );
    c as usize
}

// ---- losses ------------------------------------------------------------------------------

/// Writes grad = ∂L/∂out for L = 1/m Σ eₙ and returns Σ eₙ in reported units (see `Loss`).
#[allow(clippy::too_many_arguments)]
pub fn loss_grad<F: Real>(
    loss: Loss,
    out: &[F],
    target: &[F],
    scale: Option<&[F]>,
    grad: &mut [F],
    m: usize,
    n: usize,
) -> F {
    let inv_m = F::ONE / F::from_f64(m as f64);
    let s = |j: usize| scale.map_or(F::ONE, |s| s[j]);
    let mut total = F::ZERO;
    for r in 0..m {
        let o = &out[r * n..(r + 1) * n];
        let g = &mut grad[r * n..(r + 1) * n];
        let mut e = F::ZERO;
        match loss {
            Loss::Mse | Loss::Mae => {
                let t = &target[r * n..(r + 1) * n];
                let inv_n = F::ONE / F::from_f64(n as f64);
                for j in 0..n {
                    let d = o[j] - t[j];
                    if loss == Loss::Mse {
                        e += s(j) * d * s(j) * d * inv_n;
                        g[j] = F::from_f64(2.0) * d * inv_n * inv_m;
                    } else {
                        e += (s(j) * d).abs() * inv_n;
                        let sign = if d > F::ZERO {
                            F::ONE
                        } else if d < F::ZERO {
                            -F::ONE
                        } else {
                            F::ZERO
                        };
                        g[j] = sign * inv_n * inv_m;
                    }
                }
            }
            Loss::CrossEntropy => {
                let y = class_of(target[r], n);
                let lse = log_sum_exp(o);
                e = lse - o[y];
                for j in 0..n {
                    let p = (o[j] - lse).exp();
                    let onehot = if j == y { F::ONE } else { F::ZERO };
                    g[j] = (p - onehot) * inv_m;
                }
            }
            Loss::SoftmaxMse => {
                let y = class_of(target[r], n);
                let lse = log_sum_exp(o);
                // dL/dp_c = 2(p_c − y_c)/m, then through the softmax Jacobian:
                // dL/dz_j = p_j (dL/dp_j − Σ_c dL/dp_c p_c).
                let p: Vec<F> = o.iter().map(|&v| (v - lse).exp()).collect();
                let mut dot = F::ZERO;
                for j in 0..n {
                    let d = p[j] - if j == y { F::ONE } else { F::ZERO };
                    e += d * d;
                    dot += F::from_f64(2.0) * d * p[j];
                }
                for j in 0..n {
                    let d = p[j] - if j == y { F::ONE } else { F::ZERO };
                    g[j] = p[j] * (F::from_f64(2.0) * d - dot) * inv_m;
                }
            }
        }
        total += e;
    }
    total
}

/// The evaluation sums of `Backend::eval_stats`, in the same slot order.
pub fn eval_stats<F: Real>(
    classes: bool,
    out: &[F],
    target: &[F],
    scale: Option<&[F]>,
    m: usize,
    n: usize,
) -> [F; STATS_WIDTH] {
    let mut acc = [F::ZERO; STATS_WIDTH];
    let inv_n = F::ONE / F::from_f64(n as f64);
    for r in 0..m {
        let o = &out[r * n..(r + 1) * n];
        if classes {
            let y = class_of(target[r], n);
            let lse = log_sum_exp(o);
            acc[0] += lse - o[y];
            for (j, &v) in o.iter().enumerate() {
                let d = (v - lse).exp() - if j == y { F::ONE } else { F::ZERO };
                acc[1] += d * d;
            }
            let mut best = 0;
            for j in 1..n {
                if o[j] > o[best] {
                    best = j;
                }
            }
            if best == y {
                acc[2] += F::ONE;
            }
        } else {
            let t = &target[r * n..(r + 1) * n];
            for j in 0..n {
                let d = scale.map_or(F::ONE, |s| s[j]) * (o[j] - t[j]);
                acc[0] += d * d * inv_n;
                acc[1] += d.abs() * inv_n;
            }
        }
    }
    acc
}

// ---- gradient clipping -------------------------------------------------------------------

/// Σ x² in index order.
pub fn sum_squares<F: Real>(x: &[F]) -> F {
    x.iter().fold(F::ZERO, |s, &v| s + v * v)
}

/// The factor that clips a gradient of squared norm Σ partials to `max_norm`.
pub fn clip_factor<F: Real>(partials: &[F], max_norm: F) -> F {
    let norm = partials.iter().fold(F::ZERO, |s, &v| s + v).sqrt();
    let f = max_norm / (norm + F::from_f64(1e-6));
    if f < F::ONE { f } else { F::ONE }
}

/// x *= clip_factor(partials, max_norm)
pub fn clip_scale<F: Real>(x: &mut [F], partials: &[F], max_norm: F) {
    let f = clip_factor(partials, max_norm);
    x.iter_mut().for_each(|v| *v *= f);
}

// ---- optimizer ---------------------------------------------------------------------------

/// One update, in place; `state` holds 0 (sgd), 1 (velocity) or 2 (Adam m, v) slices.
pub fn optimizer_step<F: Real>(
    opt: Optimizer,
    p: &mut [F],
    g: &[F],
    state: &mut [&mut [F]],
    hp: StepParams,
) {
    let lr = F::from_f64(hp.lr as f64);
    let wd = F::from_f64(hp.weight_decay as f64);
    match opt {
        Optimizer::Sgd => {
            for (p, &g) in p.iter_mut().zip(g) {
                *p -= lr * (g + wd * *p);
            }
        }
        Optimizer::Momentum => {
            let mu = F::from_f64(MOMENTUM as f64);
            let [v] = state else {
                panic!("momentum needs one state buffer")
            };
            for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                *v = mu * *v + g + wd * *p;
                *p -= lr * *v;
            }
        }
        Optimizer::Adam => {
            let (b1, b2) = (
                F::from_f64(ADAM_BETA1 as f64),
                F::from_f64(ADAM_BETA2 as f64),
            );
            let eps = F::from_f64(ADAM_EPS as f64);
            let (c1, c2) = (
                F::from_f64(hp.bias_correction1 as f64),
                F::from_f64(hp.bias_correction2 as f64),
            );
            let [m, v] = state else {
                panic!("adam needs two state buffers")
            };
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + (F::ONE - b1) * g;
                *v = b2 * *v + (F::ONE - b2) * g * g;
                *p -= lr * (*m * c1 / ((*v * c2).sqrt() + eps) + wd * *p);
            }
        }
    }
}

// ---- the backend -------------------------------------------------------------------------

/// The CPU backend: buffers are plain vectors in an arena; every op runs at once, on the fast
/// path of `fast.rs` over one persistent thread pool.
pub struct CpuBackend {
    bufs: Vec<Vec<f32>>,
    pool: Pool,
    /// Per-op wall time, kept when WGTRAIN_CPU_PROFILE is set and printed when dropped.
    profile: Option<Profile>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// Calls and seconds per op name, in first-call order.
#[derive(Default)]
struct Profile {
    ops: Vec<(&'static str, u64, f64)>,
}

impl Profile {
    fn add(&mut self, op: &'static str, secs: f64) {
        match self.ops.iter_mut().find(|o| o.0 == op) {
            Some(o) => {
                o.1 += 1;
                o.2 += secs;
            }
            None => self.ops.push((op, 1, secs)),
        }
    }
    /// A table: op, calls, total ms, µs per call, share of the total.
    fn report(&self) -> String {
        let total: f64 = self.ops.iter().map(|o| o.2).sum();
        let mut ops = self.ops.clone();
        ops.sort_by(|a, b| b.2.total_cmp(&a.2));
        let mut out = format!(
            "{:<16} {:>9} {:>10} {:>10} {:>6}\n",
            "op", "calls", "total ms", "µs/call", "share"
        );
        for (op, calls, secs) in ops {
            out += &format!(
                "{op:<16} {calls:>9} {:>10.1} {:>10.2} {:>5.1}%\n",
                secs * 1e3,
                secs * 1e6 / calls as f64,
                100.0 * secs / total.max(1e-12)
            );
        }
        out
    }
}

impl Drop for CpuBackend {
    fn drop(&mut self) {
        if let Some(p) = &self.profile {
            eprint!("cpu backend profile (wall time per op):\n{}", p.report());
        }
    }
}

impl CpuBackend {
    pub fn new() -> Self {
        CpuBackend {
            bufs: Vec::new(),
            pool: Pool::from_env(),
            profile: std::env::var_os("WGTRAIN_CPU_PROFILE").map(|_| Profile::default()),
        }
    }
    /// The start of a timed op (None when not profiling).
    fn tic(&self) -> Option<Instant> {
        self.profile.as_ref().map(|_| Instant::now())
    }
    fn toc(&mut self, op: &'static str, t0: Option<Instant>) {
        if let (Some(p), Some(t0)) = (&mut self.profile, t0) {
            p.add(op, t0.elapsed().as_secs_f64());
        }
    }
    fn get(&self, b: Buf) -> &[f32] {
        &self.bufs[b.id as usize]
    }
    /// Runs `f` with the output buffer taken out of the arena, so inputs can be borrowed.
    fn with_out<R>(&mut self, out: Buf, f: impl FnOnce(&Self, &mut [f32]) -> R) -> R {
        let mut o = std::mem::take(&mut self.bufs[out.id as usize]);
        let r = f(self, &mut o);
        self.bufs[out.id as usize] = o;
        r
    }
    fn check(&self, b: Buf, need: usize, what: &str) -> Result<()> {
        if b.id as usize >= self.bufs.len() || self.bufs[b.id as usize].len() < need {
            return Err(Error::internal(format!(
                "cpu backend: {what} buffer holds {} of {need} elements",
                b.len
            )));
        }
        Ok(())
    }
}

fn idx_of(v: f32) -> usize {
    v.to_bits() as usize
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        format!("cpu (gemm crate, {} threads)", self.pool.threads())
    }
    fn alloc(&mut self, len: usize) -> Result<Buf> {
        self.bufs.push(vec![0.0; len]);
        Ok(Buf {
            id: (self.bufs.len() - 1) as u32,
            len,
        })
    }
    fn upload(&mut self, data: &[f32]) -> Result<Buf> {
        self.bufs.push(data.to_vec());
        Ok(Buf {
            id: (self.bufs.len() - 1) as u32,
            len: data.len(),
        })
    }
    fn upload_u32(&mut self, data: &[u32]) -> Result<Buf> {
        // Indices are kept bit-cast in the f32 arena; only gather_rows reads them.
        self.bufs
            .push(data.iter().map(|&u| f32::from_bits(u)).collect());
        Ok(Buf {
            id: (self.bufs.len() - 1) as u32,
            len: data.len(),
        })
    }
    fn write(&mut self, buf: Buf, data: &[f32]) -> Result<()> {
        self.check(buf, data.len(), "write")?;
        self.bufs[buf.id as usize][..data.len()].copy_from_slice(data);
        Ok(())
    }
    fn write_u32(&mut self, buf: Buf, data: &[u32]) -> Result<()> {
        self.check(buf, data.len(), "write")?;
        for (d, &u) in self.bufs[buf.id as usize].iter_mut().zip(data) {
            *d = f32::from_bits(u);
        }
        Ok(())
    }
    fn read(&mut self, buf: Buf) -> Result<Vec<f32>> {
        Ok(self.get(buf).to_vec())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn gather_rows(
        &mut self,
        src: Buf,
        cols: usize,
        idx: Buf,
        start: usize,
        count: usize,
        dst: Buf,
    ) -> Result<()> {
        self.check(idx, start + count, "gather index")?;
        self.check(dst, count * cols, "gather destination")?;
        let rows = self.get(src).len() / cols.max(1);
        if let Some(&bad) = self.get(idx)[start..start + count]
            .iter()
            .find(|&&i| idx_of(i) >= rows)
        {
            return Err(Error::internal(format!(
                "gather_rows: row {} out of range 0..{rows}",
                idx_of(bad)
            )));
        }
        let t0 = self.tic();
        self.with_out(dst, |s, d| {
            // Indices are stored bit-cast in the f32 arena.
            let idx: &[u32] = bytemuck::cast_slice(&s.get(idx)[start..start + count]);
            fast::gather(&s.pool, s.get(src), cols, idx, d);
        });
        self.toc("gather_rows", t0);
        Ok(())
    }
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
        self.check(y, m * n, "matmul_nt output")?;
        let t0 = self.tic();
        self.with_out(y, |s, y| {
            let b = b.map(|b| s.get(b));
            fast::matmul_nt(&s.pool, s.get(x), s.get(w), b, act, y, m, n, k)
        });
        self.toc("matmul_nt", t0);
        Ok(())
    }
    fn matmul_nn(&mut self, dy: Buf, w: Buf, dx: Buf, m: usize, n: usize, k: usize) -> Result<()> {
        self.check(dx, m * k, "matmul_nn output")?;
        let t0 = self.tic();
        self.with_out(dx, |s, dx| {
            fast::matmul_nn(&s.pool, s.get(dy), s.get(w), dx, m, n, k)
        });
        self.toc("matmul_nn", t0);
        Ok(())
    }
    fn matmul_tn(&mut self, dy: Buf, x: Buf, dw: Buf, m: usize, n: usize, k: usize) -> Result<()> {
        self.check(dw, n * k, "matmul_tn output")?;
        let t0 = self.tic();
        self.with_out(dw, |s, dw| {
            fast::matmul_tn(&s.pool, s.get(dy), s.get(x), dw, m, n, k)
        });
        self.toc("matmul_tn", t0);
        Ok(())
    }
    fn act_backward(&mut self, act: Activation, y: Buf, g: Buf, len: usize) -> Result<()> {
        let t0 = self.tic();
        self.with_out(g, |s, g| act_backward(act, &s.get(y)[..len], &mut g[..len]));
        self.toc("act_backward", t0);
        Ok(())
    }
    fn bias_grad(&mut self, dz: Buf, db: Buf, m: usize, n: usize) -> Result<()> {
        let t0 = self.tic();
        self.with_out(db, |s, db| bias_grad(s.get(dz), db, m, n));
        self.toc("bias_grad", t0);
        Ok(())
    }
    fn softmax(&mut self, x: Buf, m: usize, n: usize) -> Result<()> {
        softmax(&mut self.bufs[x.id as usize], m, n);
        Ok(())
    }
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
        self.check(stats, slot + 1, "stats")?;
        let t0 = self.tic();
        let sum = self.with_out(grad, |s, g| {
            loss_grad(
                loss,
                s.get(out),
                s.get(target),
                scale.map(|b| s.get(b)),
                g,
                m,
                n,
            )
        });
        self.bufs[stats.id as usize][slot] = sum;
        self.toc("loss_grad", t0);
        Ok(())
    }
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
        self.check(stats, (slot + 1) * STATS_WIDTH, "stats")?;
        let acc = eval_stats(
            classes,
            self.get(out),
            self.get(target),
            scale.map(|b| self.get(b)),
            m,
            n,
        );
        self.bufs[stats.id as usize][slot * STATS_WIDTH..(slot + 1) * STATS_WIDTH]
            .copy_from_slice(&acc);
        Ok(())
    }
    fn sum_squares(&mut self, x: Buf, len: usize, out: Buf, slot: usize) -> Result<()> {
        self.check(out, slot + 1, "sum_squares output")?;
        let v = sum_squares(&self.get(x)[..len]);
        self.bufs[out.id as usize][slot] = v;
        Ok(())
    }
    fn clip_scale(
        &mut self,
        x: Buf,
        len: usize,
        partials: Buf,
        count: usize,
        max_norm: f32,
    ) -> Result<()> {
        self.check(partials, count, "clip partials")?;
        self.with_out(x, |s, x| {
            clip_scale(&mut x[..len], &s.get(partials)[..count], max_norm)
        });
        Ok(())
    }
    fn optimizer_step(
        &mut self,
        opt: Optimizer,
        param: Buf,
        grad: Buf,
        state: &[Buf],
        len: usize,
        p: StepParams,
    ) -> Result<()> {
        if state.len() != opt.state_slots() {
            return Err(Error::internal(format!(
                "{} needs {} state buffers, got {}",
                opt.as_str(),
                opt.state_slots(),
                state.len()
            )));
        }
        let t0 = self.tic();
        // Take the state buffers out of the arena (no allocation: at most two).
        let [mut s0, mut s1] = [0, 1].map(|i| {
            state
                .get(i)
                .map_or_else(Vec::new, |b| std::mem::take(&mut self.bufs[b.id as usize]))
        });
        self.with_out(param, |s, pv| {
            let (pv, g) = (&mut pv[..len], &s.get(grad)[..len]);
            let (lr, wd) = (p.lr, p.weight_decay);
            match opt {
                Optimizer::Sgd => fast::sgd(&s.pool, pv, g, lr, wd),
                Optimizer::Momentum => {
                    fast::momentum(&s.pool, pv, g, &mut s0[..len], MOMENTUM, lr, wd)
                }
                Optimizer::Adam => {
                    let step = AdamStep {
                        lr,
                        wd,
                        b1: ADAM_BETA1,
                        b2: ADAM_BETA2,
                        eps: ADAM_EPS,
                        c1: p.bias_correction1,
                        c2: p.bias_correction2,
                    };
                    fast::adam(&s.pool, pv, g, &mut s0[..len], &mut s1[..len], step)
                }
            }
        });
        for (b, v) in state.iter().zip([s0, s1]) {
            self.bufs[b.id as usize] = v;
        }
        self.toc("optimizer_step", t0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn rand_vec(r: &mut Rng, n: usize) -> Vec<f64> {
        (0..n).map(|_| r.normal() * 0.7 + 0.1).collect()
    }

    #[test]
    fn fast_matmul_matches_the_triple_loop_in_all_layouts() {
        let mut r = Rng::new(11);
        for &(m, n, k) in &[(1, 1, 1), (3, 17, 65), (64, 63, 65), (257, 3, 17)] {
            let x = rand_vec(&mut r, m * k);
            let w = rand_vec(&mut r, n * k);
            let dy = rand_vec(&mut r, m * n);
            let mut y = vec![0.0; m * n];
            matmul_nt(&x, &w, None, Activation::Identity, &mut y, m, n, k);
            let mut dx = vec![0.0; m * k];
            matmul_nn(&dy, &w, &mut dx, m, n, k);
            let mut dw = vec![0.0; n * k];
            matmul_tn(&dy, &x, &mut dw, m, n, k);
            for (got, want, what) in [
                (y, matmul_naive("nt", &x, &w, m, n, k), "nt"),
                (dx, matmul_naive("nn", &dy, &w, m, n, k), "nn"),
                (dw, matmul_naive("tn", &dy, &x, m, n, k), "tn"),
            ] {
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(
                    worst < 1e-10 * k.max(m) as f64,
                    "{what} {m}x{n}x{k}: max diff {worst}"
                );
            }
        }
    }

    #[test]
    fn softmax_is_stable_for_huge_logits() {
        let mut x = vec![1000.0f32, 1001.0, 999.0, -1e30, 0.0, 1.0];
        softmax(&mut x, 2, 3);
        assert!(x.iter().all(|v| v.is_finite()));
        assert!((x[1] - 0.665_240_9).abs() < 1e-6, "{x:?}");
        assert!((x[0] + x[1] + x[2] - 1.0).abs() < 1e-6);
        let mut g = vec![0.0f32; 3];
        let e = loss_grad(
            Loss::CrossEntropy,
            &[1000.0, 1001.0, 999.0],
            &[2.0],
            None,
            &mut g,
            1,
            3,
        );
        assert!((e - 2.407_606).abs() < 1e-4, "ce {e}");
    }

    #[test]
    fn eval_stats_counts_first_argmax_and_scales_errors() {
        let out = [2.0f32, 2.0, 1.0, 0.0, 3.0, 1.0];
        let acc = eval_stats(true, &out, &[0.0, 2.0], None, 2, 3);
        assert_eq!(
            acc[2], 1.0,
            "ties go to the first index; row 2 predicts class 1 not 2"
        );
        let acc = eval_stats(false, &[1.0f32, 3.0], &[0.5, 1.0], Some(&[2.0, 10.0]), 1, 2);
        assert!(
            (acc[0] - (1.0 + 400.0) / 2.0).abs() < 1e-5
                && (acc[1] - (1.0 + 20.0) / 2.0).abs() < 1e-5,
            "{acc:?}"
        );
    }

    #[test]
    fn backend_gather_takes_rows_through_the_index() {
        let mut b = CpuBackend::new();
        let src = b.upload(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let idx = b.upload_u32(&[9, 2, 0]).unwrap();
        let dst = b.alloc(4).unwrap();
        b.gather_rows(src, 2, idx, 1, 2, dst).unwrap();
        assert_eq!(b.read(dst).unwrap(), vec![5.0, 6.0, 1.0, 2.0]);
        assert!(
            b.gather_rows(src, 2, idx, 0, 2, dst).is_err(),
            "row 9 is out of range"
        );
    }
}
