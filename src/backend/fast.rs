//! The CPU backend's fast path: the plain ops of `cpu.rs`, run the way the machine likes them.
//!
//! - Products go through the `gemm` crate (AVX-512 kernels with its `x86-v4` feature; chosen
//!   over `matrixmultiply` by measurement, see bench/RESULTS.md), always single-threaded.
//! - Threads come from one persistent `Pool`. Each op's output is cut into at most
//!   `pool.threads()` row blocks, the cut chosen from the shape alone, and every output element
//!   is computed by exactly one part in the reference's order: the result is the same bit for
//!   bit whichever thread runs which part and however the run is timed.
//! - Epilogues (bias + activation after the forward product) run inside the part that just
//!   wrote the block, while it is still in cache, instead of as another pass over memory.
//! - Element-wise loops (epilogues, the optimizer) are compiled for AVX-512 and AVX2 and
//!   picked at run time; IEEE operations give the same bits at every vector width (no FMA
//!   contraction in Rust), so the fast ops equal the plain ones exactly.
//!
//! Everything here is f32 and allocation-free per call.

use super::StepParams;
use super::pool::Pool;
use crate::spec::{ADAM_BETA1, ADAM_BETA2, ADAM_EPS, Activation, MOMENTUM, Optimizer};

/// Below this many multiply-adds a part is not worth a thread: waking a spinning worker and
/// waiting for it costs about a microsecond, about 50k FMAs on one core.
const MIN_PART_FMAS: usize = 64 * 1024;
/// Element-wise ops split only above this many elements per part (4K Adam elements take a
/// few µs, above the hand-off). At 16K the lecture network's 25.7K-parameter optimizer step
/// ran on one thread, the stretch that let the other one park: 0.33 vs 0.36–0.39 ms per
/// lecture-size step with two threads (bench/RESULTS.md).
const MIN_PART_ELEMS: usize = 4 * 1024;
/// Row blocks are whole multiples of this (a cache line of f32, and the kernels' tile height).
const ROW_GRAIN: usize = 16;

/// c[rows, cols] (row-major, row stride `ldc`) = a · b, where element (i, p) of a is
/// a[i·sa.0 + p·sa.1] and element (p, j) of b is b[p·sb.0 + j·sb.1]. Every index the strides
/// can reach is checked against the slices before the unsafe call, so no caller can make it
/// read or write out of bounds; a violation is a programming error and panics.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Copy + Default + 'static>(
    rows: usize,
    cols: usize,
    depth: usize,
    a: &[T],
    sa: (usize, usize),
    b: &[T],
    sb: (usize, usize),
    c: &mut [T],
    ldc: usize,
    one: T,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = |n: usize, s: usize| (n - 1).checked_mul(s);
    let reach = |r: Option<usize>, q: Option<usize>| r.zip(q).and_then(|(r, q)| r.checked_add(q));
    assert!(
        cols <= ldc
            && reach(last(rows, ldc), Some(cols - 1)).is_some_and(|e| e < c.len())
            && (depth == 0
                || (reach(last(rows, sa.0), last(depth, sa.1)).is_some_and(|e| e < a.len())
                    && reach(last(depth, sb.0), last(cols, sb.1)).is_some_and(|e| e < b.len()))),
        "gemm: a {rows}x{depth}x{cols} product does not fit its buffers"
    );
    if depth == 0 {
        for row in c.chunks_mut(ldc).take(rows) {
            row[..cols].fill(T::default());
        }
        return;
    }
    // Safety: the assertion above bounds every element the strides reach in a, b and c.
    unsafe {
        ::gemm::gemm(
            rows,
            cols,
            depth,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            false,
            a.as_ptr(),
            sa.1 as isize,
            sa.0 as isize,
            b.as_ptr(),
            sb.1 as isize,
            sb.0 as isize,
            T::default(),
            one,
            false,
            false,
            false,
            ::gemm::Parallelism::None,
        )
    }
}

/// How many row blocks of `grain` rows to cut `rows` into: at most the pool's threads, and
/// only as many as keep `work_per_row · rows / parts` above `min`. A function of the shape
/// and the thread count alone.
fn parts_for(pool: &Pool, rows: usize, work_per_row: usize, min: usize) -> usize {
    let by_work = (rows.saturating_mul(work_per_row) / min.max(1)).max(1);
    pool.threads()
        .min(by_work)
        .min(rows.div_ceil(ROW_GRAIN))
        .max(1)
}

/// Rows of block `p` of `parts` over `rows`: whole grains, the earlier blocks never smaller.
fn block(rows: usize, parts: usize, p: usize) -> std::ops::Range<usize> {
    let grains = rows.div_ceil(ROW_GRAIN);
    let (base, extra) = (grains / parts, grains % parts);
    let start = (p * base + p.min(extra)) * ROW_GRAIN;
    let end = ((p + 1) * base + (p + 1).min(extra)) * ROW_GRAIN;
    start.min(rows)..end.min(rows)
}

/// A mutable slice shared by parts that write disjoint ranges of it.
#[derive(Clone, Copy)]
struct Shared(*mut f32, usize);
// Safety: parts only form disjoint sub-slices (`range`), and `Pool::run` joins them all.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn new(s: &mut [f32]) -> Shared {
        Shared(s.as_mut_ptr(), s.len())
    }
    /// Elements r of the slice. Callers give each part a range no other part touches.
    #[allow(clippy::mut_from_ref)]
    fn range(&self, r: std::ops::Range<usize>) -> &mut [f32] {
        assert!(
            r.start <= r.end && r.end <= self.1,
            "part range out of bounds"
        );
        // Safety: in bounds (checked), and disjoint between parts (callers' contract).
        unsafe { std::slice::from_raw_parts_mut(self.0.add(r.start), r.end - r.start) }
    }
}

/// y[m, n] = act(x[m, k] · w[n, k]ᵀ + b[n]): row blocks of y, each product followed at once
/// by its bias and activation.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nt(
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
    assert!(x.len() >= m * k && w.len() >= n * k && y.len() >= m * n);
    assert!(b.is_none_or(|b| b.len() >= n));
    let parts = parts_for(pool, m, n * k, MIN_PART_FMAS);
    let out = Shared::new(&mut y[..m * n]);
    pool.run(parts, &|p| {
        let rows = block(m, parts, p);
        let y = out.range(rows.start * n..rows.end * n);
        gemm(
            rows.len(),
            n,
            k,
            &x[rows.start * k..rows.end * k],
            (k, 1),
            w,
            (1, k),
            y,
            n,
            1.0,
        );
        bias_act(b, act, y, n);
    });
}

/// dx[m, k] = (dy[m, n] · w[n, k]) ⊙ act'(y[m, k]): row blocks of dx, each scaled by the
/// activation's derivative (through its output y) right after its product.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nn(
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
    assert!(dy.len() >= m * n && w.len() >= n * k && dx.len() >= m * k);
    let y = y.filter(|_| act != Activation::Identity);
    assert!(y.is_none_or(|y| y.len() >= m * k));
    let parts = parts_for(pool, m, n * k, MIN_PART_FMAS);
    let out = Shared::new(&mut dx[..m * k]);
    pool.run(parts, &|p| {
        let rows = block(m, parts, p);
        let span = rows.start * k..rows.end * k;
        let dx = out.range(span.clone());
        gemm(
            rows.len(),
            k,
            n,
            &dy[rows.start * n..rows.end * n],
            (n, 1),
            w,
            (k, 1),
            dx,
            k,
            1.0,
        );
        if let Some(y) = y {
            act_grad(act, &y[span], dx);
        }
    });
}

/// dw[n, k] = dy[m, n]ᵀ · x[m, k] and, when given, db[n] = Σ_r dy[r, n] (r in order, as
/// `cpu::bias_grad` sums): row blocks of dw with the matching entries of db.
#[allow(clippy::too_many_arguments)]
pub fn matmul_tn(
    pool: &Pool,
    dy: &[f32],
    x: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    m: usize,
    n: usize,
    k: usize,
) {
    assert!(dy.len() >= m * n && x.len() >= m * k && dw.len() >= n * k);
    assert!(db.as_ref().is_none_or(|db| db.len() >= n));
    let dbs = db.map(|db| Shared::new(&mut db[..n]));
    if m == 0 {
        dw[..n * k].fill(0.0);
        if let Some(db) = dbs {
            db.range(0..n).fill(0.0);
        }
        return;
    }
    let parts = parts_for(pool, n, m * k, MIN_PART_FMAS);
    let out = Shared::new(&mut dw[..n * k]);
    pool.run(parts, &|p| {
        let rows = block(n, parts, p);
        let dw = out.range(rows.start * k..rows.end * k);
        // Rows j of dw read column j of dy: start the view at dy[0, j].
        let dy_cols = &dy[rows.start..(m - 1) * n + rows.end];
        gemm(rows.len(), k, m, dy_cols, (1, n), x, (k, 1), dw, k, 1.0);
        if let Some(db) = &dbs {
            column_sums(&dy[..m * n], n, rows.clone(), db.range(rows));
        }
    });
}

/// dst[r, :] = src[idx[r], :] for r in 0..idx.len(); rows are checked by the caller.
pub fn gather(pool: &Pool, src: &[f32], cols: usize, idx: &[u32], dst: &mut [f32]) {
    let count = idx.len();
    assert!(dst.len() >= count * cols);
    let parts = parts_for(pool, count, cols, MIN_PART_ELEMS);
    let out = Shared::new(&mut dst[..count * cols]);
    pool.run(parts, &|p| {
        let rows = block(count, parts, p);
        let d = out.range(rows.start * cols..rows.end * cols);
        for (row, &i) in d.chunks_exact_mut(cols.max(1)).zip(&idx[rows]) {
            let i = i as usize;
            row.copy_from_slice(&src[i * cols..(i + 1) * cols]);
        }
    });
}

// ---- element-wise kernels, compiled per vector width --------------------------------------

/// Defines `$name(args)` that runs `$body` compiled for AVX-512, AVX2 or the baseline,
/// whichever this CPU has. The body is the same code in all three, so the results are too.
macro_rules! multiversion {
    (fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn v4($($arg: $ty),*) { body($($arg),*) }
                #[target_feature(enable = "avx2")]
                fn v3($($arg: $ty),*) { body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // Safety: the CPU has the feature the function was compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // Safety: as above.
                    return unsafe { v3($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

multiversion! {
    fn bias_act(b: Option<&[f32]>, act: Activation, y: &mut [f32], n: usize) {
        for row in y.chunks_exact_mut(n.max(1)) {
            if let Some(b) = b {
                for (v, &bj) in row.iter_mut().zip(b) {
                    *v += bj;
                }
            }
            match act {
                Activation::Identity => {}
                // As cpu::act_forward: a NaN passes through (a ReLU must not hide divergence).
                Activation::Relu => row.iter_mut().for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v }),
                Activation::Sigmoid => row.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
            }
        }
    }
}

multiversion! {
    fn act_grad(act: Activation, y: &[f32], g: &mut [f32]) {
        match act {
            Activation::Identity => {}
            Activation::Relu => {
                for (g, &y) in g.iter_mut().zip(y) {
                    *g *= if y > 0.0 { 1.0 } else { 0.0 };
                }
            }
            Activation::Sigmoid => {
                for (g, &y) in g.iter_mut().zip(y) {
                    *g *= y * (1.0 - y);
                }
            }
        }
    }
}

multiversion! {
    fn column_sums(dy: &[f32], n: usize, cols: std::ops::Range<usize>, db: &mut [f32]) {
        db.fill(0.0);
        for row in dy.chunks_exact(n.max(1)) {
            for (d, &g) in db.iter_mut().zip(&row[cols.clone()]) {
                *d += g;
            }
        }
    }
}

/// The Adam constants of one step, as f32 exactly as the reference converts them.
#[derive(Clone, Copy)]
struct AdamStep {
    lr: f32,
    wd: f32,
    c1: f32,
    c2: f32,
}

// Each block takes the gradient times `scale` (the clipping factor, 1 without clipping: g·1
// is g exactly), the same product the reference makes before its update.

multiversion! {
    fn adam_block(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], scale: f32, s: AdamStep) {
        let (b1, b2, eps) = (ADAM_BETA1, ADAM_BETA2, ADAM_EPS);
        let (one_b1, one_b2) = (1.0 - b1, 1.0 - b2);
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = g * scale;
            *m = b1 * *m + one_b1 * g;
            *v = b2 * *v + one_b2 * g * g;
            *p -= s.lr * (*m * s.c1 / ((*v * s.c2).sqrt() + eps) + s.wd * *p);
        }
    }
}

multiversion! {
    fn sgd_block(p: &mut [f32], g: &[f32], scale: f32, lr: f32, wd: f32) {
        for (p, &g) in p.iter_mut().zip(g) {
            let g = g * scale;
            *p -= lr * (g + wd * *p);
        }
    }
}

multiversion! {
    fn momentum_block(p: &mut [f32], g: &[f32], v: &mut [f32], scale: f32, lr: f32, wd: f32) {
        for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
            let g = g * scale;
            *v = MOMENTUM * *v + g + wd * *p;
            *p -= lr * *v;
        }
    }
}

/// One update of a whole parameter slab, as `cpu::optimizer_step_slab` on g·scale: weight
/// decay on elements 0..decay_len only; `s0`, `s1` the optimizer's state (velocity, or Adam's
/// m and v). Blocks across the pool, one vectorized pass over each.
#[allow(clippy::too_many_arguments)]
pub fn optimizer_step(
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
    let len = p.len();
    let states = [&s0, &s1].iter().filter(|s| s.is_some()).count();
    assert!(g.len() == len && states == opt.state_slots());
    assert!(
        s0.as_ref().is_none_or(|s| s.len() == len) && s1.as_ref().is_none_or(|s| s.len() == len)
    );
    let parts = parts_for(pool, len, 1, MIN_PART_ELEMS);
    let (ps, s0, s1) = (Shared::new(p), s0.map(Shared::new), s1.map(Shared::new));
    pool.run(parts, &|i| {
        let r = block(len, parts, i);
        let cut = decay_len.clamp(r.start, r.end);
        for (r, wd) in [(r.start..cut, hp.weight_decay), (cut..r.end, 0.0)] {
            let (p, g) = (ps.range(r.clone()), &g[r.clone()]);
            match (opt, &s0, &s1) {
                (Optimizer::Sgd, _, _) => sgd_block(p, g, scale, hp.lr, wd),
                (Optimizer::Momentum, Some(v), _) => {
                    momentum_block(p, g, v.range(r), scale, hp.lr, wd)
                }
                (Optimizer::Adam, Some(m), Some(v)) => {
                    let s = AdamStep {
                        lr: hp.lr,
                        wd,
                        c1: hp.bias_correction1,
                        c2: hp.bias_correction2,
                    };
                    adam_block(p, g, m.range(r.clone()), v.range(r), scale, s)
                }
                _ => unreachable!("state buffers counted above"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu;
    use crate::rng::Rng;

    fn rand_vec(r: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| (r.normal() * 0.7 + 0.1) as f32).collect()
    }

    /// |got − want| ≤ atol + rtol·|want| with the tolerance grown with the reduction length;
    /// reports the worst index and both values.
    fn assert_close(what: &str, got: &[f32], want: &[f32], len: usize) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        let tol = |w: f32| 1e-5 * (len as f32).sqrt() * (1.0 + w.abs());
        let worst = got
            .iter()
            .zip(want)
            .enumerate()
            .map(|(i, (&g, &w))| {
                (
                    i,
                    g,
                    w,
                    if g.is_nan() {
                        f32::INFINITY
                    } else {
                        (g - w).abs() / tol(w)
                    },
                )
            })
            .fold((0, 0.0, 0.0, 0.0f32), |a, b| if b.3 > a.3 { b } else { a });
        assert!(
            worst.3 <= 1.0,
            "{what}: worst at {} got {} want {} ({:.2} of tolerance)",
            worst.0,
            worst.1,
            worst.2,
            worst.3
        );
    }

    /// The three products against the plain triple loop, ragged shapes, outputs NaN-poisoned,
    /// on a pool of 1, 2 and 3 threads; and bit for bit equal across pool sizes.
    #[test]
    fn fast_products_match_the_reference_on_ragged_shapes() {
        let pools = [Pool::new(1), Pool::new(2), Pool::new(3)];
        let mut r = Rng::new(5);
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 17, 65),
            (64, 63, 65),
            (257, 3, 17),
            (200, 100, 784),
            (65, 1, 100),
        ] {
            let (x, w, dy) = (
                rand_vec(&mut r, m * k),
                rand_vec(&mut r, n * k),
                rand_vec(&mut r, m * n),
            );
            let b = rand_vec(&mut r, n);
            let (x64, w64, dy64): (Vec<f64>, Vec<f64>, Vec<f64>) = (
                x.iter().map(|&v| v as f64).collect(),
                w.iter().map(|&v| v as f64).collect(),
                dy.iter().map(|&v| v as f64).collect(),
            );
            let f32s = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect::<Vec<f32>>();
            let mut first: Option<[Vec<f32>; 3]> = None;
            for pool in &pools {
                let mut y = vec![f32::NAN; m * n];
                matmul_nt(pool, &x, &w, Some(&b), Activation::Relu, &mut y, m, n, k);
                let mut want = cpu::matmul_naive("nt", &x64, &w64, m, n, k);
                for (i, v) in want.iter_mut().enumerate() {
                    *v = (*v + b[i % n] as f64).max(0.0);
                }
                assert_close(&format!("nt {m}x{n}x{k}"), &y, &f32s(want), k);
                let mut dx = vec![f32::NAN; m * k];
                matmul_nn(pool, &dy, &w, Activation::Identity, None, &mut dx, m, n, k);
                assert_close(
                    &format!("nn {m}x{n}x{k}"),
                    &dx,
                    &f32s(cpu::matmul_naive("nn", &dy64, &w64, m, n, k)),
                    n,
                );
                let mut dw = vec![f32::NAN; n * k];
                matmul_tn(pool, &dy, &x, &mut dw, None, m, n, k);
                assert_close(
                    &format!("tn {m}x{n}x{k}"),
                    &dw,
                    &f32s(cpu::matmul_naive("tn", &dy64, &x64, m, n, k)),
                    m,
                );
                match &first {
                    None => first = Some([y, dx, dw]),
                    Some(f) => assert!(
                        f[0] == y && f[1] == dx && f[2] == dw,
                        "{m}x{n}x{k}: {} threads change the bits",
                        pool.threads()
                    ),
                }
            }
        }
    }

    #[test]
    fn the_forward_epilogue_equals_the_plain_one_bit_for_bit() {
        let pool = Pool::new(2);
        let mut r = Rng::new(8);
        let (m, n, k) = (130, 33, 20);
        let (x, w, b) = (
            rand_vec(&mut r, m * k),
            rand_vec(&mut r, n * k),
            rand_vec(&mut r, n),
        );
        for act in [Activation::Identity, Activation::Relu, Activation::Sigmoid] {
            let mut fast = vec![f32::NAN; m * n];
            matmul_nt(&pool, &x, &w, Some(&b), act, &mut fast, m, n, k);
            let mut plain = vec![f32::NAN; m * n];
            cpu::matmul_nt(&x, &w, Some(&b), act, &mut plain, m, n, k);
            assert!(
                fast == plain,
                "{act:?}: the fused epilogue differs from cpu::matmul_nt"
            );
        }
    }

    #[test]
    fn gemm_refuses_strides_that_leave_the_buffers() {
        let a = vec![1.0f32; 12];
        let mut c = vec![0.0f32; 9];
        // 3x4 · 4x3 fits; a row stride of 5 would reach a[2·5 + 3] = a[13].
        gemm(3, 3, 4, &a, (4, 1), &a, (3, 1), &mut c, 3, 1.0);
        assert_eq!(c, vec![4.0; 9]);
        let bad = std::panic::catch_unwind(|| {
            let mut c = vec![0.0f32; 9];
            gemm(3, 3, 4, &a, (5, 1), &a, (3, 1), &mut c, 3, 1.0)
        });
        assert!(bad.is_err(), "a stride past the end must be refused");
        let bad = std::panic::catch_unwind(|| {
            let mut c = vec![0.0f32; 8];
            gemm(3, 3, 4, &a, (4, 1), &a, (3, 1), &mut c, 3, 1.0)
        });
        assert!(bad.is_err(), "an output too small must be refused");
    }

    #[test]
    fn blocks_cover_the_rows_once_in_whole_grains() {
        for rows in [1, 15, 16, 17, 200, 257] {
            for parts in 1..=4 {
                let mut next = 0;
                for p in 0..parts {
                    let b = block(rows, parts, p);
                    assert_eq!(
                        b.start,
                        next.min(rows),
                        "{rows} rows, {parts} parts, part {p}"
                    );
                    assert!(b.end == rows || b.end.is_multiple_of(ROW_GRAIN));
                    next = b.end;
                }
                assert_eq!(next, rows);
            }
        }
    }

    /// Every optimizer, with weight decay cut inside a block and with a clipping factor,
    /// against `cpu::optimizer_step_slab` on the pre-scaled gradient.
    #[test]
    fn fast_optimizers_equal_the_plain_ones_bit_for_bit() {
        let pool = Pool::new(2);
        let mut r = Rng::new(9);
        let len = 40_000 + 13;
        let (p0, g) = (rand_vec(&mut r, len), rand_vec(&mut r, len));
        let m0 = rand_vec(&mut r, len);
        let v0: Vec<f32> = rand_vec(&mut r, len).iter().map(|v| v.abs()).collect();
        let hp = StepParams::new(0.01, 0.001, 3);
        for (opt, scale) in [
            (Optimizer::Sgd, 1.0),
            (Optimizer::Momentum, 0.5),
            (Optimizer::Adam, 1.0),
            (Optimizer::Adam, 0.25),
        ] {
            let decay_len = 30_001;
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            let slots = opt.state_slots();
            let (s0, s1) = (
                (slots >= 1).then_some(&mut m[..]),
                (slots >= 2).then_some(&mut v[..]),
            );
            optimizer_step(&pool, opt, &mut p, &g, s0, s1, decay_len, hp, scale);
            let (mut pr, mut mr, mut vr) = (p0.clone(), m0.clone(), v0.clone());
            let gs: Vec<f32> = g.iter().map(|&x| x * scale).collect();
            let mut st: Vec<&mut [f32]> = vec![&mut mr[..], &mut vr[..]];
            st.truncate(slots);
            cpu::optimizer_step_slab(opt, &mut pr, &gs, &mut st, decay_len, hp);
            assert!(
                p == pr && m == mr && v == vr,
                "{opt:?} differs from the reference"
            );
            assert!(p != p0, "{opt:?}: the step moved the parameters");
        }
    }

    #[test]
    fn fused_backward_epilogues_equal_the_plain_ops_bit_for_bit() {
        let pool = Pool::new(2);
        let mut r = Rng::new(10);
        let (m, n, k) = (150, 40, 33);
        let (dy, w, x) = (
            rand_vec(&mut r, m * n),
            rand_vec(&mut r, n * k),
            rand_vec(&mut r, m * k),
        );
        let y: Vec<f32> = rand_vec(&mut r, m * k)
            .iter()
            .map(|v| v.abs().min(0.9))
            .collect();
        for act in [Activation::Relu, Activation::Sigmoid] {
            let mut fast_dx = vec![f32::NAN; m * k];
            matmul_nn(&pool, &dy, &w, act, Some(&y), &mut fast_dx, m, n, k);
            let mut dx = vec![f32::NAN; m * k];
            cpu::matmul_nn(&dy, &w, &mut dx, m, n, k);
            cpu::act_backward(act, &y, &mut dx);
            assert!(fast_dx == dx, "{act:?}: matmul_nn's epilogue differs");
        }
        let (mut dw, mut db) = (vec![f32::NAN; n * k], vec![f32::NAN; n]);
        matmul_tn(&pool, &dy, &x, &mut dw, Some(&mut db), m, n, k);
        let (mut dw_ref, mut db_ref) = (vec![f32::NAN; n * k], vec![f32::NAN; n]);
        cpu::matmul_tn(&dy, &x, &mut dw_ref, m, n, k);
        cpu::bias_grad(&dy, &mut db_ref, m, n);
        assert!(dw == dw_ref && db == db_ref, "matmul_tn with db differs");
    }

    #[test]
    fn gather_takes_the_indexed_rows() {
        let pool = Pool::new(2);
        let cols = 3;
        let src: Vec<f32> = (0..3000 * cols).map(|v| v as f32).collect();
        let idx: Vec<u32> = (0..2500).map(|i| (i * 7 % 3000) as u32).collect();
        let mut dst = vec![f32::NAN; idx.len() * cols];
        gather(&pool, &src, cols, &idx, &mut dst);
        for (r, &i) in idx.iter().enumerate() {
            assert_eq!(
                &dst[r * cols..(r + 1) * cols],
                &src[i as usize * cols..(i as usize + 1) * cols]
            );
        }
    }
}
