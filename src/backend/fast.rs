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

use super::pool::Pool;
use crate::spec::Activation;

/// Below this many multiply-adds a part is not worth a thread: waking a spinning worker and
/// waiting for it costs about a microsecond, about 50k FMAs on one core.
const MIN_PART_FMAS: usize = 64 * 1024;
/// Element-wise ops split only above this many elements per part.
const MIN_PART_ELEMS: usize = 16 * 1024;
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

/// dx[m, k] = dy[m, n] · w[n, k]: row blocks of dx.
pub fn matmul_nn(pool: &Pool, dy: &[f32], w: &[f32], dx: &mut [f32], m: usize, n: usize, k: usize) {
    assert!(dy.len() >= m * n && w.len() >= n * k && dx.len() >= m * k);
    let parts = parts_for(pool, m, n * k, MIN_PART_FMAS);
    let out = Shared::new(&mut dx[..m * k]);
    pool.run(parts, &|p| {
        let rows = block(m, parts, p);
        let dx = out.range(rows.start * k..rows.end * k);
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
    });
}

/// dw[n, k] = dy[m, n]ᵀ · x[m, k]: row blocks of dw (each a full sum over the batch).
pub fn matmul_tn(pool: &Pool, dy: &[f32], x: &[f32], dw: &mut [f32], m: usize, n: usize, k: usize) {
    assert!(dy.len() >= m * n && x.len() >= m * k && dw.len() >= n * k);
    if m == 0 {
        dw[..n * k].fill(0.0);
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
                Activation::Relu => row.iter_mut().for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 }),
                Activation::Sigmoid => row.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
            }
        }
    }
}

/// The Adam constants of one step, as f32 exactly as the reference converts them.
#[derive(Clone, Copy)]
pub struct AdamStep {
    pub lr: f32,
    pub wd: f32,
    pub b1: f32,
    pub b2: f32,
    pub eps: f32,
    pub c1: f32,
    pub c2: f32,
}

multiversion! {
    fn adam_block(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: AdamStep) {
        let (one_b1, one_b2) = (1.0 - s.b1, 1.0 - s.b2);
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = s.b1 * *m + one_b1 * g;
            *v = s.b2 * *v + one_b2 * g * g;
            *p -= s.lr * (*m * s.c1 / ((*v * s.c2).sqrt() + s.eps) + s.wd * *p);
        }
    }
}

multiversion! {
    fn sgd_block(p: &mut [f32], g: &[f32], lr: f32, wd: f32) {
        for (p, &g) in p.iter_mut().zip(g) {
            *p -= lr * (g + wd * *p);
        }
    }
}

multiversion! {
    fn momentum_block(p: &mut [f32], g: &[f32], v: &mut [f32], mu: f32, lr: f32, wd: f32) {
        for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
            *v = mu * *v + g + wd * *p;
            *p -= lr * *v;
        }
    }
}

/// Plain SGD over a whole slab, in blocks across the pool.
pub fn sgd(pool: &Pool, p: &mut [f32], g: &[f32], lr: f32, wd: f32) {
    let len = p.len();
    assert!(g.len() == len);
    let parts = parts_for(pool, len, 1, MIN_PART_ELEMS);
    let ps = Shared::new(p);
    pool.run(parts, &|i| {
        let r = block(len, parts, i);
        sgd_block(ps.range(r.clone()), &g[r], lr, wd);
    });
}

/// SGD with momentum `mu` over a whole slab, in blocks across the pool.
pub fn momentum(pool: &Pool, p: &mut [f32], g: &[f32], v: &mut [f32], mu: f32, lr: f32, wd: f32) {
    let len = p.len();
    assert!(g.len() == len && v.len() == len);
    let parts = parts_for(pool, len, 1, MIN_PART_ELEMS);
    let (ps, vs) = (Shared::new(p), Shared::new(v));
    pool.run(parts, &|i| {
        let r = block(len, parts, i);
        momentum_block(ps.range(r.clone()), &g[r.clone()], vs.range(r), mu, lr, wd);
    });
}

/// Adam over a whole parameter slab, in blocks across the pool.
pub fn adam(pool: &Pool, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: AdamStep) {
    let len = p.len();
    assert!(g.len() == len && m.len() == len && v.len() == len);
    let parts = parts_for(pool, len, 1, MIN_PART_ELEMS);
    let (ps, ms, vs) = (Shared::new(p), Shared::new(m), Shared::new(v));
    pool.run(parts, &|i| {
        let r = block(len, parts, i);
        adam_block(
            ps.range(r.clone()),
            &g[r.clone()],
            ms.range(r.clone()),
            vs.range(r),
            s,
        );
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
                matmul_nn(pool, &dy, &w, &mut dx, m, n, k);
                assert_close(
                    &format!("nn {m}x{n}x{k}"),
                    &dx,
                    &f32s(cpu::matmul_naive("nn", &dy64, &w64, m, n, k)),
                    n,
                );
                let mut dw = vec![f32::NAN; n * k];
                matmul_tn(pool, &dy, &x, &mut dw, m, n, k);
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

    #[test]
    fn fast_optimizers_equal_the_plain_ones_bit_for_bit() {
        use crate::backend::StepParams;
        use crate::spec::{ADAM_BETA1, ADAM_BETA2, ADAM_EPS, MOMENTUM, Optimizer};
        let pool = Pool::new(2);
        let mut r = Rng::new(9);
        let len = 40_000 + 13;
        let (p0, g) = (rand_vec(&mut r, len), rand_vec(&mut r, len));
        let hp = StepParams::new(0.01, 0.001, 3);
        let (m0, v0): (Vec<f32>, Vec<f32>) = (
            rand_vec(&mut r, len),
            rand_vec(&mut r, len).iter().map(|v| v.abs()).collect(),
        );
        // Adam
        let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
        let s = AdamStep {
            lr: hp.lr,
            wd: hp.weight_decay,
            b1: ADAM_BETA1,
            b2: ADAM_BETA2,
            eps: ADAM_EPS,
            c1: hp.bias_correction1,
            c2: hp.bias_correction2,
        };
        adam(&pool, &mut p, &g, &mut m, &mut v, s);
        let (mut pr, mut mr, mut vr) = (p0.clone(), m0.clone(), v0.clone());
        cpu::optimizer_step(Optimizer::Adam, &mut pr, &g, &mut [&mut mr, &mut vr], hp);
        assert!(
            p == pr && m == mr && v == vr,
            "adam differs from the reference"
        );
        // Momentum
        let (mut p, mut v) = (p0.clone(), m0.clone());
        momentum(&pool, &mut p, &g, &mut v, MOMENTUM, hp.lr, hp.weight_decay);
        let (mut pr, mut vr) = (p0.clone(), m0.clone());
        cpu::optimizer_step(Optimizer::Momentum, &mut pr, &g, &mut [&mut vr], hp);
        assert!(p == pr && v == vr, "momentum differs from the reference");
        // SGD
        let mut p = p0.clone();
        sgd(&pool, &mut p, &g, hp.lr, hp.weight_decay);
        let mut pr = p0.clone();
        cpu::optimizer_step(Optimizer::Sgd, &mut pr, &g, &mut [], hp);
        assert!(p == pr, "sgd differs from the reference");
        assert!(p != p0, "the step moved the parameters");
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
