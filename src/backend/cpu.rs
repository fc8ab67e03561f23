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

use super::fast;
use super::pool::Pool;
use super::{Backend, Buf, Clip, DType, Fault, Gather, STATS_WIDTH, StepParams};
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
        // Written so a NaN passes through: a ReLU must not hide a diverged network.
        Activation::Relu => {
            if z < F::ZERO {
                F::ZERO
            } else {
                z
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
/// Test-only (it panics on an unknown layout): compiled for the crate's unit tests, not shipped.
#[cfg(test)]
pub(crate) fn matmul_naive<F: Real>(
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
                for (j, &pj) in p.iter().enumerate() {
                    let d = pj - if j == y { F::ONE } else { F::ZERO };
                    e += d * d;
                    dot += F::from_f64(2.0) * d * pj;
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

/// True when `t` names a class of 0..n, the test `class_of` asserts.
fn is_class<F: Real>(t: F, n: usize) -> bool {
    t >= F::ZERO && (t.to_f64() as usize) < n
}

/// The element type of a `CpuBackend`: f32 trains on the fast path of `fast.rs`; f64 runs the
/// plain reference ops, so the gradient checks go through the real training wiring in f64.
pub trait CpuReal: Real + Send + Sync + 'static {
    const NAME: &'static str;
    fn from_f32(v: f32) -> Self;
    fn to_f32(self) -> f32;
    /// Row indices share the arena with values: bit-cast in f32, as exact values in f64.
    fn from_index(u: u32) -> Self;
    fn to_index(self) -> u32;
    fn gather(pool: &Pool, src: &[Self], cols: usize, idx: &[Self], dst: &mut [Self]);
    #[allow(clippy::too_many_arguments)]
    fn matmul_nt(
        pool: &Pool,
        x: &[Self],
        w: &[Self],
        b: Option<&[Self]>,
        act: Activation,
        y: &mut [Self],
        m: usize,
        n: usize,
        k: usize,
    );
    #[allow(clippy::too_many_arguments)]
    fn matmul_nn(
        pool: &Pool,
        dy: &[Self],
        w: &[Self],
        act: Activation,
        y: Option<&[Self]>,
        dx: &mut [Self],
        m: usize,
        n: usize,
        k: usize,
    );
    #[allow(clippy::too_many_arguments)]
    fn matmul_tn(
        pool: &Pool,
        dy: &[Self],
        x: &[Self],
        dw: &mut [Self],
        db: Option<&mut [Self]>,
        m: usize,
        n: usize,
        k: usize,
    );
    #[allow(clippy::too_many_arguments)]
    fn optimizer_step(
        pool: &Pool,
        opt: Optimizer,
        p: &mut [Self],
        g: &[Self],
        s0: Option<&mut [Self]>,
        s1: Option<&mut [Self]>,
        decay_len: usize,
        hp: StepParams,
        scale: Self,
    );
}

impl CpuReal for f32 {
    const NAME: &'static str = "gemm crate";
    fn from_f32(v: f32) -> Self {
        v
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn from_index(u: u32) -> Self {
        f32::from_bits(u)
    }
    fn to_index(self) -> u32 {
        self.to_bits()
    }
    fn gather(pool: &Pool, src: &[f32], cols: usize, idx: &[f32], dst: &mut [f32]) {
        fast::gather(pool, src, cols, bytemuck::cast_slice(idx), dst);
    }
    fn matmul_nt(
        pool: &Pool,
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
        act: Activation,
        y: &mut [f32],
        m: usize,
        n: usize,
        k: usize,
    ) {
        fast::matmul_nt(pool, x, w, b, act, y, m, n, k)
    }
    fn matmul_nn(
        pool: &Pool,
        dy: &[f32],
        w: &[f32],
        act: Activation,
        y: Option<&[f32]>,
        dx: &mut [f32],
        m: usize,
        n: usize,
        k: usize,
    ) {
        fast::matmul_nn(pool, dy, w, act, y, dx, m, n, k)
    }
    fn matmul_tn(
        pool: &Pool,
        dy: &[f32],
        x: &[f32],
        dw: &mut [f32],
        db: Option<&mut [f32]>,
        m: usize,
        n: usize,
        k: usize,
    ) {
        fast::matmul_tn(pool, dy, x, dw, db, m, n, k)
    }
    fn optimizer_step(
        pool: &Pool,
        opt: Optimizer,
        p: &mut [f32],
        g: &[f32],
        s0: Option<&mut [f32]>,
        s1: Option<&mut [f32]>,
        decay_len: usize,
        hp: StepParams,
        scale: f32,
    ) {
        fast::optimizer_step(pool, opt, p, g, s0, s1, decay_len, hp, scale)
    }
}

impl CpuReal for f64 {
    const NAME: &'static str = "f64 reference";
    fn from_f32(v: f32) -> Self {
        v as f64
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn from_index(u: u32) -> Self {
        u as f64
    }
    fn to_index(self) -> u32 {
        self as u32
    }
    fn gather(_: &Pool, src: &[f64], cols: usize, idx: &[f64], dst: &mut [f64]) {
        gather_rows(src, cols, idx.iter().map(|&i| i as usize), dst);
    }
    fn matmul_nt(
        _: &Pool,
        x: &[f64],
        w: &[f64],
        b: Option<&[f64]>,
        act: Activation,
        y: &mut [f64],
        m: usize,
        n: usize,
        k: usize,
    ) {
        matmul_nt(x, w, b, act, y, m, n, k)
    }
    fn matmul_nn(
        _: &Pool,
        dy: &[f64],
        w: &[f64],
        act: Activation,
        y: Option<&[f64]>,
        dx: &mut [f64],
        m: usize,
        n: usize,
        k: usize,
    ) {
        matmul_nn(dy, w, dx, m, n, k);
        if let Some(y) = y {
            act_backward(act, &y[..m * k], &mut dx[..m * k]);
        }
    }
    fn matmul_tn(
        _: &Pool,
        dy: &[f64],
        x: &[f64],
        dw: &mut [f64],
        db: Option<&mut [f64]>,
        m: usize,
        n: usize,
        k: usize,
    ) {
        matmul_tn(dy, x, dw, m, n, k);
        if let Some(db) = db {
            bias_grad(dy, db, m, n);
        }
    }
    fn optimizer_step(
        _: &Pool,
        opt: Optimizer,
        p: &mut [f64],
        g: &[f64],
        s0: Option<&mut [f64]>,
        s1: Option<&mut [f64]>,
        decay_len: usize,
        hp: StepParams,
        scale: f64,
    ) {
        let g: Vec<f64> = g.iter().map(|&v| v * scale).collect();
        let mut states: Vec<&mut [f64]> = s0.into_iter().chain(s1).collect();
        optimizer_step_slab(opt, p, &g, &mut states, decay_len, hp);
    }
}

/// The CPU backend: buffers are plain vectors in an arena; every op runs at once, on the fast
/// path of `fast.rs` over one persistent thread pool. The `*_impl` methods run after the
/// trait's checks, so views lie inside live buffers and no output shares its backing buffer
/// with another operand.
/// `CpuBackend<f64>` (`new_f64`) runs the plain reference ops in f64 for the gradient checks.
pub struct CpuBackend<F: CpuReal = f32> {
    /// Indexed by `Buf::id`; `None` once freed (ids are never reused).
    bufs: Vec<Option<(Vec<F>, DType)>>,
    ops: u64,
    pool: Pool,
    /// Per-op wall time, kept when WGTRAIN_CPU_PROFILE is set and printed when dropped.
    profile: Option<Profile>,
}

impl Default for CpuBackend<f32> {
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

impl<F: CpuReal> Drop for CpuBackend<F> {
    fn drop(&mut self) {
        if let Some(p) = &self.profile {
            eprint!("cpu backend profile (wall time per op):\n{}", p.report());
        }
    }
}

impl CpuBackend<f32> {
    /// The training backend: f32, the fast path, one thread per core (WGTRAIN_CPU_THREADS).
    pub fn new() -> Self {
        CpuBackend::with_pool(Pool::from_env())
    }
}

impl CpuBackend<f64> {
    /// The f64 reference backend of the gradient checks (single-threaded).
    pub fn new_f64() -> Self {
        CpuBackend::with_pool(Pool::new(1))
    }
    /// Overwrites the f32 view `buf` with f64 values, at full precision.
    pub fn write_f64(&mut self, buf: Buf, data: &[f64]) -> Result<()> {
        self.check_buf(buf, "write_f64")?;
        if buf.dtype != DType::F32 || data.len() != buf.len {
            return Err(Error::internal(format!(
                "write_f64 of {} values to {buf:?}",
                data.len()
            )));
        }
        let mut v = self.take(buf);
        v[buf.offset..buf.end()].copy_from_slice(data);
        self.put(buf, v);
        Ok(())
    }
    /// The f32 view `buf` at full f64 precision.
    pub fn read_f64(&mut self, buf: Buf) -> Result<Vec<f64>> {
        self.check_buf(buf, "read_f64")?;
        Ok(self.get(buf).to_vec())
    }
}

impl<F: CpuReal> CpuBackend<F> {
    fn with_pool(pool: Pool) -> Self {
        CpuBackend {
            bufs: Vec::new(),
            ops: 0,
            pool,
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
    fn get(&self, b: Buf) -> &[F] {
        match &self.bufs[b.id as usize] {
            Some((v, _)) => &v[b.offset..b.end()],
            None => &[],
        }
    }
    fn take(&mut self, b: Buf) -> Vec<F> {
        match &mut self.bufs[b.id as usize] {
            Some((v, _)) => std::mem::take(v),
            None => Vec::new(),
        }
    }
    fn put(&mut self, b: Buf, v: Vec<F>) {
        if let Some((slot, _)) = &mut self.bufs[b.id as usize] {
            *slot = v;
        }
    }
    /// Runs `f` with the output view taken out of the arena, so inputs can be borrowed.
    fn with_out<R>(&mut self, out: Buf, f: impl FnOnce(&Self, &mut [F]) -> R) -> R {
        self.ops += 1;
        let mut o = self.take(out);
        let r = f(self, &mut o[out.offset..out.end()]);
        self.put(out, o);
        r
    }
    fn push(&mut self, v: Vec<F>, dtype: DType) -> Result<Buf> {
        let id = u32::try_from(self.bufs.len())
            .map_err(|_| Error::internal("cpu backend: too many buffers"))?;
        let len = v.len();
        self.bufs.push(Some((v, dtype)));
        Ok(Buf {
            id,
            offset: 0,
            len,
            dtype,
        })
    }
    fn classes_ok(&self, target: Buf, m: usize, n: usize) -> Result<()> {
        if self.get(target)[..m].iter().all(|&t| is_class(t, n)) {
            Ok(())
        } else {
            Err(Fault::error(Fault::ClassIndex.bit()))
        }
    }
}

fn idx_of<F: CpuReal>(v: F) -> usize {
    v.to_index() as usize
}

impl<F: CpuReal> Backend for CpuBackend<F> {
    fn describe(&self) -> String {
        format!("cpu ({}, {} threads)", F::NAME, self.pool.threads())
    }
    fn dispatches(&self) -> u64 {
        self.ops
    }
    fn alloc(&mut self, len: usize) -> Result<Buf> {
        self.push(vec![F::ZERO; len], DType::F32)
    }
    fn upload(&mut self, data: &[f32]) -> Result<Buf> {
        self.push(data.iter().map(|&v| F::from_f32(v)).collect(), DType::F32)
    }
    fn upload_u32(&mut self, data: &[u32]) -> Result<Buf> {
        self.push(data.iter().map(|&u| F::from_index(u)).collect(), DType::U32)
    }
    fn backing(&self, id: u32) -> Option<(usize, DType)> {
        match self.bufs.get(id as usize) {
            Some(Some((v, t))) => Some((v.len(), *t)),
            _ => None,
        }
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn free_impl(&mut self, buf: Buf) -> Result<()> {
        self.bufs[buf.id as usize] = None;
        Ok(())
    }
    fn write_impl(&mut self, buf: Buf, data: &[u32]) -> Result<()> {
        // f32 values arrive bit-cast as u32 (see `Backend::write`).
        let mut v = self.take(buf);
        for (d, &u) in v[buf.offset..buf.end()].iter_mut().zip(data) {
            *d = match buf.dtype {
                DType::F32 => F::from_f32(f32::from_bits(u)),
                DType::U32 => F::from_index(u),
            };
        }
        self.put(buf, v);
        Ok(())
    }
    fn read_impl(&mut self, buf: Buf) -> Result<Vec<f32>> {
        Ok(match buf.dtype {
            DType::F32 => self.get(buf).iter().map(|&v| v.to_f32()).collect(),
            DType::U32 => self
                .get(buf)
                .iter()
                .map(|&v| f32::from_bits(v.to_index()))
                .collect(),
        })
    }

    fn gather_impl(
        &mut self,
        idx: Buf,
        start: usize,
        count: usize,
        x: Gather,
        y: Option<Gather>,
    ) -> Result<()> {
        let positions = &self.get(idx)[start..start + count];
        for g in std::iter::once(&x).chain(y.as_ref()) {
            let rows = g.src.len / g.cols;
            if positions.iter().any(|&i| idx_of(i) >= rows) {
                return Err(Fault::error(Fault::RowIndex.bit()));
            }
        }
        let t0 = self.tic();
        for g in std::iter::once(x).chain(y) {
            self.with_out(g.dst, |s, d| {
                let idx = &s.get(idx)[start..start + count];
                F::gather(&s.pool, s.get(g.src), g.cols, idx, d);
            });
        }
        self.ops -= y.is_some() as u64; // one op, however many sources
        self.toc("gather", t0);
        Ok(())
    }
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
    ) -> Result<()> {
        let t0 = self.tic();
        self.with_out(y, |s, y| {
            let b = b.map(|b| s.get(b));
            F::matmul_nt(&s.pool, s.get(x), s.get(w), b, act, y, m, n, k)
        });
        self.toc("matmul_nt", t0);
        Ok(())
    }
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
    ) -> Result<()> {
        let t0 = self.tic();
        self.with_out(dx, |s, dx| {
            let y = y.filter(|_| act != Activation::Identity).map(|y| s.get(y));
            F::matmul_nn(&s.pool, s.get(dy), s.get(w), act, y, dx, m, n, k);
        });
        self.toc("matmul_nn", t0);
        Ok(())
    }
    fn matmul_tn_impl(
        &mut self,
        dy: Buf,
        x: Buf,
        dw: Buf,
        db: Option<Buf>,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<()> {
        let t0 = self.tic();
        // dw and db are usually views of one gradient slab: take each backing buffer out once.
        let mut o = self.take(dw);
        let db_apart = db.filter(|b| b.id != dw.id);
        let mut ob = db_apart.map(|b| self.take(b));
        let (dwv, dbv) = match (&mut ob, db) {
            (Some(ob), Some(b)) => (
                &mut o[dw.offset..dw.end()],
                Some(&mut ob[b.offset..b.end()]),
            ),
            _ => split_two(&mut o, dw.offset..dw.end(), db.map(|b| b.offset..b.end())),
        };
        F::matmul_tn(&self.pool, self.get(dy), self.get(x), dwv, dbv, m, n, k);
        self.put(dw, o);
        if let (Some(b), Some(v)) = (db_apart, ob) {
            self.put(b, v);
        }
        self.ops += 1;
        self.toc("matmul_tn", t0);
        Ok(())
    }
    fn softmax_impl(&mut self, x: Buf, m: usize, n: usize) -> Result<()> {
        self.with_out(x, |_, x| softmax(x, m, n));
        Ok(())
    }
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
    ) -> Result<()> {
        if loss.task() == crate::spec::Task::Classification {
            self.classes_ok(target, m, n)?;
        }
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
        self.with_out(stats, |_, st| st[slot] = sum);
        self.ops -= 1;
        self.toc("loss_grad", t0);
        Ok(())
    }
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
    ) -> Result<()> {
        if classes {
            self.classes_ok(target, m, n)?;
        }
        self.with_out(stats, |s, st| {
            let acc = eval_stats(
                classes,
                s.get(out),
                s.get(target),
                scale.map(|b| s.get(b)),
                m,
                n,
            );
            st[slot * STATS_WIDTH..(slot + 1) * STATS_WIDTH].copy_from_slice(&acc);
        });
        Ok(())
    }
    fn sum_squares_impl(&mut self, x: Buf, partials: Buf) -> Result<()> {
        self.with_out(partials, |s, parts| sum_squares_blocks(s.get(x), parts));
        Ok(())
    }
    fn optimizer_step_impl(
        &mut self,
        opt: Optimizer,
        param: Buf,
        grad: Buf,
        state: &[Buf],
        decay_len: usize,
        hp: StepParams,
        clip: Option<Clip>,
    ) -> Result<()> {
        let t0 = self.tic();
        // At most two state buffers (Adam's m, v), taken out of the arena without allocating.
        let [mut s0, mut s1] =
            [0, 1].map(|i| state.get(i).map_or_else(Vec::new, |&b| self.take(b)));
        self.with_out(param, |s, pv| {
            let factor = clip.map_or(F::ONE, |c| {
                clip_factor(s.get(c.partials), F::from_f32(c.max_norm))
            });
            let m = state.first().map(|b| &mut s0[b.offset..b.end()]);
            let v = state.get(1).map(|b| &mut s1[b.offset..b.end()]);
            let g = s.get(grad);
            F::optimizer_step(&s.pool, opt, pv, g, m, v, decay_len, hp, factor);
        });
        for (&b, v) in state.iter().zip([s0, s1]) {
            self.put(b, v);
        }
        self.toc("optimizer_step", t0);
        Ok(())
    }
}

/// Two disjoint ranges of one vector as two mutable slices (`b` may be absent).
fn split_two<F>(
    v: &mut [F],
    a: std::ops::Range<usize>,
    b: Option<std::ops::Range<usize>>,
) -> (&mut [F], Option<&mut [F]>) {
    match b {
        None => (&mut v[a], None),
        Some(b) if b.start >= a.end => {
            let (lo, hi) = v.split_at_mut(b.start);
            (&mut lo[a], Some(&mut hi[..b.end - b.start]))
        }
        Some(b) => {
            // The trait refuses overlapping dw and db, so b lies wholly before a here.
            let (lo, hi) = v.split_at_mut(a.start);
            (&mut hi[..a.end - a.start], Some(&mut lo[b]))
        }
    }
}

/// dst[r, :] = src[i_r, :] for the row indices i_r (already checked against src's rows).
pub fn gather_rows<F: Real>(
    src: &[F],
    cols: usize,
    idx: impl Iterator<Item = usize>,
    dst: &mut [F],
) {
    for (r, i) in idx.enumerate() {
        dst[r * cols..(r + 1) * cols].copy_from_slice(&src[i * cols..(i + 1) * cols]);
    }
}

/// parts[p] = Σ x² over block p of ⌈len / P⌉ elements (P = parts.len()), in index order.
pub fn sum_squares_blocks<F: Real>(x: &[F], parts: &mut [F]) {
    let block = x.len().div_ceil(parts.len().max(1)).max(1);
    for (p, out) in parts.iter_mut().enumerate() {
        let lo = (p * block).min(x.len());
        let hi = (lo + block).min(x.len());
        *out = sum_squares(&x[lo..hi]);
    }
}

/// One update of a whole slab: weight decay on 0..decay_len, none on the rest (the biases).
pub fn optimizer_step_slab<F: Real>(
    opt: Optimizer,
    p: &mut [F],
    g: &[F],
    state: &mut [&mut [F]],
    decay_len: usize,
    hp: StepParams,
) {
    let (p_lo, p_hi) = p.split_at_mut(decay_len);
    let (g_lo, g_hi) = g.split_at(decay_len);
    let mut lo: Vec<&mut [F]> = Vec::new();
    let mut hi: Vec<&mut [F]> = Vec::new();
    for s in state.iter_mut() {
        let (a, b) = s.split_at_mut(decay_len);
        lo.push(a);
        hi.push(b);
    }
    optimizer_step(opt, p_lo, g_lo, &mut lo, hp);
    let no_decay = StepParams {
        weight_decay: 0.0,
        ..hp
    };
    optimizer_step(opt, p_hi, g_hi, &mut hi, no_decay);
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
        let x = Gather { src, cols: 2, dst };
        b.gather(idx, 1, 2, x, None).unwrap();
        assert_eq!(b.read(dst).unwrap(), vec![5.0, 6.0, 1.0, 2.0]);
        assert!(
            b.gather(idx, 0, 2, x, None).is_err(),
            "row 9 is out of range"
        );
    }
}
