//! Side by side on the training step's own products: matrixmultiply (the old path) against the
//! `gemm` crate, single-threaded, with its own rayon threading, and split in two fixed halves
//! over the one rayon pool (what `backend::gemm` does). Prints µs per product and GFLOP/s.
//!
//!     cargo run --release --example gemm_shapes
//!     MATMUL_NUM_THREADS=1 cargo run --release --example gemm_shapes
//!
//! Single-threaded variants are timed by the thread's CPU clock, so a busy shared machine
//! does not inflate them; threaded ones by the wall clock (median of 7 runs).
//!
//! A benchmark, not a test: figures go to bench/RESULTS.md with the date and the machine.

use std::time::Instant;

use gemm::Parallelism;

/// (name, m, n, k, layout): layouts as in cpu.rs — "nt" y[m,n] = x[m,k]·w[n,k]ᵀ,
/// "nn" dx[m,k] = dy[m,n]·w[n,k], "tn" dw[n,k] = dy[m,n]ᵀ·x[m,k].
const SHAPES: &[(&str, usize, usize, usize, &str)] = &[
    ("mnist fwd L0", 200, 100, 784, "nt"),
    ("mnist dW L0", 200, 100, 784, "tn"),
    ("mnist fwd L1", 200, 10, 100, "nt"),
    ("mnist dX L1", 200, 10, 100, "nn"),
    ("mnist dW L1", 200, 10, 100, "tn"),
    ("lecture fwd 56", 256, 100, 56, "nt"),
    ("lecture fwd 100", 256, 100, 100, "nt"),
    ("lecture dX 100", 256, 100, 100, "nn"),
    ("lecture dW 100", 256, 100, 100, "tn"),
    ("lecture dW 56", 256, 100, 56, "tn"),
    ("square 1024", 1024, 1024, 1024, "nt"),
];

/// (rows, cols, a strides, b strides) of the product c[rows, cols] = a · b for a layout.
type Plan = (usize, usize, usize, (isize, isize), (isize, isize));

fn plan(m: usize, n: usize, k: usize, layout: &str) -> Plan {
    match layout {
        // c[m,n] = a[m,k] · (b[n,k])ᵀ
        "nt" => (m, n, k, (k as isize, 1), (1, k as isize)),
        // c[m,k] = a[m,n] · b[n,k]
        "nn" => (m, k, n, (n as isize, 1), (k as isize, 1)),
        // c[n,k] = (a[m,n])ᵀ · b[m,k]
        _ => (n, k, m, (1, n as isize), (k as isize, 1)),
    }
}

fn run_mm(p: Plan, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (r, cc, d, sa, sb) = p;
    unsafe {
        matrixmultiply::sgemm(
            r,
            d,
            cc,
            1.0,
            a.as_ptr(),
            sa.0,
            sa.1,
            b.as_ptr(),
            sb.0,
            sb.1,
            0.0,
            c.as_mut_ptr(),
            cc as isize,
            1,
        )
    }
}

fn run_gemm(p: Plan, a: &[f32], b: &[f32], c: &mut [f32], par: Parallelism) {
    let (r, cc, d, sa, sb) = p;
    unsafe {
        gemm::gemm(
            r,
            cc,
            d,
            c.as_mut_ptr(),
            1,
            cc as isize,
            false,
            a.as_ptr(),
            sa.1,
            sa.0,
            b.as_ptr(),
            sb.1,
            sb.0,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// Two fixed halves of the output rows, each a single-threaded gemm, on rayon's pool.
fn run_split(p: Plan, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (r, cc, d, sa, sb) = p;
    let h = r.div_ceil(2);
    let (c0, c1) = c.split_at_mut(h * cc);
    let a1 = h as isize * sa.0;
    let pa = (a.as_ptr() as usize, b.as_ptr() as usize);
    let part = |rows: usize, off: isize, out: &mut [f32]| unsafe {
        gemm::gemm(
            rows,
            cc,
            d,
            out.as_mut_ptr(),
            1,
            cc as isize,
            false,
            (pa.0 as *const f32).offset(off),
            sa.1,
            sa.0,
            pa.1 as *const f32,
            sb.1,
            sb.0,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    };
    rayon::join(|| part(h, 0, c0), || part(r - h, a1, c1));
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}
unsafe extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// This thread's CPU seconds (Linux CLOCK_THREAD_CPUTIME_ID): for single-threaded variants
/// it does not count time the scheduler gave to other jobs on a shared machine.
fn thread_cpu() -> f64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    unsafe { clock_gettime(3, &mut ts) };
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}

/// Median seconds per call over 7 runs, by this thread's CPU clock (single-threaded code).
fn time_cpu(reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..reps.div_ceil(10) {
        f();
    }
    let mut runs = Vec::new();
    for _ in 0..7 {
        let t = thread_cpu();
        for _ in 0..reps {
            f();
        }
        runs.push((thread_cpu() - t) / reps as f64);
    }
    runs.sort_by(f64::total_cmp);
    runs[3]
}

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..reps.div_ceil(10) {
        f();
    }
    let mut runs = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        runs.push(t.elapsed().as_secs_f64() / reps as f64);
    }
    runs.sort_by(f64::total_cmp);
    runs[3]
}

/// One core's fp32 peak: 24 independent 16-wide FMA chains (AVX-512), 2 FLOP per lane.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn peak_core(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(0.0); 24];
    let (x, y) = (_mm512_set1_ps(0.999_99), _mm512_set1_ps(1e-7));
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, x, y);
        }
    }
    acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
}

/// fp32 FMA peak of one core, by the thread's CPU clock (a busy machine does not lower it).
fn peak() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let iters = 20_000_000;
        let flop = (iters * 24 * 16 * 2) as f64;
        let rates: Vec<f64> = (0..3)
            .map(|_| {
                let t = thread_cpu();
                std::hint::black_box(unsafe { peak_core(iters) });
                flop / (thread_cpu() - t) / 1e9
            })
            .collect();
        let best = rates.iter().copied().fold(0.0, f64::max);
        println!(
            "fp32 FMA peak of one core (24 chains of 16-wide AVX-512 FMA, best of 3): {best:.1} GFLOP/s"
        );
    }
}

fn main() {
    peak();
    // matrixmultiply reads its thread count once from the environment.
    let mm_single = std::env::var("MATMUL_NUM_THREADS").is_ok_and(|v| v == "1");
    println!(
        "{:<16} {:>5} {:>5} {:>5} {:>3} | µs per product (GFLOP/s): matrixmultiply [cpu clock when MATMUL_NUM_THREADS=1] | gemm 1 thread [cpu clock] | gemm 1 thread, rhs packed [cpu clock] | gemm rayon | gemm 2 fixed halves | nt: 1 thread via wᵀ copy [cpu clock]",
        "shape", "m", "n", "k", "lay"
    );
    for &(name, m, n, k, layout) in SHAPES {
        let mut s = 1u32;
        let mut rnd = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (s >> 8) as f32 / (1 << 24) as f32 - 0.5
                })
                .collect()
        };
        let p = plan(m, n, k, layout);
        let (a, b) = (rnd(p.0 * p.2), rnd(p.2 * p.1));
        let mut c = vec![0.0f32; p.0 * p.1];
        let flop = 2.0 * (m * n * k) as f64;
        let reps = ((2e8 / flop) as usize).clamp(3, 20_000);
        gemm::set_rhs_packing_threshold(gemm::DEFAULT_RHS_PACKING_THRESHOLD);
        let t1 = time_cpu(reps, || run_gemm(p, &a, &b, &mut c, Parallelism::None));
        gemm::set_rhs_packing_threshold(1);
        let t = [
            if mm_single {
                time_cpu(reps, || run_mm(p, &a, &b, &mut c))
            } else {
                time(reps, || run_mm(p, &a, &b, &mut c))
            },
            t1,
            time_cpu(reps, || run_gemm(p, &a, &b, &mut c, Parallelism::None)),
            time(reps, || run_gemm(p, &a, &b, &mut c, Parallelism::Rayon(0))),
            time(reps, || run_split(p, &a, &b, &mut c)),
        ];
        // nt through a transposed copy of w: the product becomes the fast "nn" layout.
        let t_copy = (layout == "nt").then(|| {
            let mut wt = vec![0.0f32; n * k];
            time_cpu(reps, || {
                for (j, row) in b.chunks_exact(k).enumerate().take(n) {
                    for (p, &v) in row.iter().enumerate() {
                        wt[p * n + j] = v;
                    }
                }
                run_gemm(
                    (m, n, k, (k as isize, 1), (n as isize, 1)),
                    &a,
                    &wt,
                    &mut c,
                    Parallelism::None,
                )
            })
        });
        let mut t = t.to_vec();
        t.extend(t_copy);
        let cells: Vec<String> = t
            .iter()
            .map(|s| format!("{:8.1} ({:5.1})", s * 1e6, flop / s / 1e9))
            .collect();
        println!(
            "{name:<16} {m:>5} {n:>5} {k:>5} {layout:>3} | {}",
            cells.join(" | ")
        );
    }
}
