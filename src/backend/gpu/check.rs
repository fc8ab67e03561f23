//! GPU-against-CPU parity checks: `wgtrain check` and `tests/gpu_parity.rs` both run these,
//! so there is one implementation of the comparison.
//!
//! Every case draws fresh inputs from a seeded generator (never all zeros or ones), poisons
//! the outputs with NaN on both backends so that an element a kernel forgets to write fails,
//! runs the op on both, and compares |gpu − cpu| ≤ atol + rtol·|cpu| with tolerances that
//! grow with the reduction length.

use super::GpuBackend;
use crate::backend::cpu::CpuBackend;
use crate::backend::{Backend, Buf, STATS_WIDTH, StepParams};
use crate::error::Result;
use crate::rng::Rng;
use crate::spec::{Activation, Loss, Optimizer};

/// One line of `wgtrain check`.
#[derive(Clone, Debug)]
pub struct CheckLine {
    pub op: String,
    pub shape: String,
    /// |gpu − cpu| at the element closest to (or furthest past) its tolerance.
    pub max_err: f32,
    /// The tolerance at that element.
    pub tol: f32,
    pub pass: bool,
    /// Evidence: the worst element, both values, and the first few values side by side.
    pub detail: String,
}

impl std::fmt::Display for CheckLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<4} {:<22} {:<26} max_err {:.3e}  tol {:.3e}",
            if self.pass { "PASS" } else { "FAIL" },
            self.op,
            self.shape,
            self.max_err,
            self.tol
        )?;
        if !self.pass {
            write!(f, "\n     {}", self.detail)?;
        }
        Ok(())
    }
}

/// The outcome of comparing one output.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub max_err: f32,
    pub tol: f32,
    pub pass: bool,
    pub detail: String,
}

/// Compares `gpu` with the reference `cpu` element by element: |g − c| ≤ atol + rtol·|c|.
/// A NaN (an unwritten, poisoned element) or a length mismatch fails.
pub fn compare(gpu: &[f32], cpu: &[f32], atol: f32, rtol: f32) -> Comparison {
    if gpu.len() != cpu.len() {
        return Comparison {
            max_err: f32::INFINITY,
            tol: atol,
            pass: false,
            detail: format!("length: gpu {} cpu {}", gpu.len(), cpu.len()),
        };
    }
    let mut worst = (0usize, -1.0f32, 0.0f32, atol); // index, err/tol, err, tol
    let mut pass = true;
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let tol = atol + rtol * c.abs();
        let err = if g.is_nan() || c.is_nan() {
            f32::INFINITY
        } else {
            (g - c).abs()
        };
        let ok = err <= tol;
        pass &= ok;
        let ratio = if tol > 0.0 {
            err / tol
        } else if err == 0.0 {
            0.0
        } else {
            f32::INFINITY
        };
        if ratio > worst.1 {
            worst = (i, ratio, err, tol);
        }
    }
    let (i, _, err, tol) = worst;
    let mut detail = String::new();
    if !cpu.is_empty() {
        detail = format!(
            "worst [{i}]: gpu {:e} cpu {:e}; first (gpu, cpu):",
            gpu[i], cpu[i]
        );
        for (g, c) in gpu.iter().zip(cpu).take(6) {
            detail.push_str(&format!(" ({g:.6e}, {c:.6e})"));
        }
    }
    Comparison {
        max_err: err,
        tol,
        pass,
        detail,
    }
}

/// Folds several compared outputs of one op into one line: the worst output (a failing one
/// first) gives the numbers and the evidence.
fn line(op: &str, shape: String, parts: &[(&str, Comparison)]) -> CheckLine {
    let badness = |c: &Comparison| {
        if !c.pass {
            f32::INFINITY
        } else {
            c.max_err / c.tol.max(f32::MIN_POSITIVE)
        }
    };
    let mut out = CheckLine {
        op: op.to_string(),
        shape,
        max_err: 0.0,
        tol: 0.0,
        pass: true,
        detail: String::new(),
    };
    if let Some((name, c)) = parts
        .iter()
        .max_by(|a, b| badness(&a.1).total_cmp(&badness(&b.1)))
    {
        out.max_err = c.max_err;
        out.tol = c.tol;
        out.detail = format!("{name}: {}", c.detail);
    }
    out.pass = parts.iter().all(|(_, c)| c.pass);
    out
}

/// Largest |x| of a slice (at least a tiny positive value, to scale tolerances).
fn amax(v: &[f32]) -> f32 {
    v.iter().fold(1e-30f32, |m, x| m.max(x.abs()))
}

/// Tolerance of a sum of `depth` products of magnitude up to `mag`: rounding errors of f32
/// sums in different orders grow like √depth.
fn sum_atol(depth: usize, mag: f32) -> f32 {
    2e-6 * (depth.max(1) as f32).sqrt() * mag
}

// ---- running one op on a backend ---------------------------------------------------------

/// An input of an op.
enum Input {
    F(Vec<f32>),
    U(Vec<u32>),
}

/// An op under test: runs on the handles of its inputs, then its outputs.
type Op<'a> = &'a dyn Fn(&mut dyn Backend, &[Buf]) -> Result<()>;
/// Every buffer of a run read back, indexed like the handles.
type Reads = Vec<Vec<f32>>;

/// Uploads `inputs`, allocates the `outputs` (lengths) poisoned with NaN, runs `op` with the
/// input then output handles, and reads back every buffer (inputs too, for in-place ops).
fn exec(b: &mut dyn Backend, inputs: &[Input], outputs: &[usize], op: Op) -> Result<Reads> {
    let mut bufs = Vec::new();
    for input in inputs {
        bufs.push(match input {
            Input::F(v) => b.upload(v)?,
            Input::U(v) => b.upload_u32(v)?,
        });
    }
    for &len in outputs {
        let buf = b.alloc(len)?;
        b.write(buf, &vec![f32::NAN; len])?;
        bufs.push(buf);
    }
    op(b, &bufs)?;
    let mut out = Vec::new();
    for (i, &buf) in bufs.iter().enumerate() {
        // u32 inputs are not compared; skip reading them.
        out.push(if matches!(inputs.get(i), Some(Input::U(_))) {
            Vec::new()
        } else {
            b.read(buf)?
        });
    }
    Ok(out)
}

/// Runs the same op on both backends: (gpu results, cpu results), indexed like `exec`'s.
fn both(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    inputs: &[Input],
    outputs: &[usize],
    op: Op,
) -> Result<(Reads, Reads)> {
    Ok((
        exec(gpu, inputs, outputs, op)?,
        exec(cpu, inputs, outputs, op)?,
    ))
}

/// Values like normal·0.5 + 0.1: signed, off-centre, never all zeros or ones.
fn randn(rng: &mut Rng, len: usize) -> Vec<f32> {
    (0..len)
        .map(|_| (rng.normal() * 0.5 + 0.1) as f32)
        .collect()
}

fn uniform(rng: &mut Rng, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..len)
        .map(|_| lo + (hi - lo) * rng.uniform() as f32)
        .collect()
}

// ---- the cases -----------------------------------------------------------------------------

pub const MATMUL_SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (3, 17, 65),
    (64, 64, 64),
    (65, 63, 257),
    (257, 1000, 3),
    (1000, 17, 64),
];

pub fn gather_rows(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    rows: usize,
    cols: usize,
    count: usize,
) -> Result<CheckLine> {
    let src = randn(rng, rows * cols);
    let start = rng.below(3);
    let idx: Vec<u32> = (0..start + count + 2)
        .map(|_| rng.below(rows) as u32)
        .collect();
    let op = |b: &mut dyn Backend, v: &[Buf]| b.gather_rows(v[0], cols, v[1], start, count, v[2]);
    let (g, c) = both(
        gpu,
        cpu,
        &[Input::F(src), Input::U(idx)],
        &[count * cols],
        &op,
    )?;
    Ok(line(
        "gather_rows",
        format!("{rows}x{cols} take {count}"),
        &[("dst", compare(&g[2], &c[2], 0.0, 0.0))],
    ))
}

/// `gather_rows` from a data set split into chunks of `chunk_bytes` (rows straddle chunks),
/// against a host-side gather: the path a data set beyond one storage binding takes.
pub fn gather_rows_chunked(
    gpu: &mut GpuBackend,
    rng: &mut Rng,
    (rows, cols, count): (usize, usize, usize),
    chunk_bytes: u64,
) -> Result<CheckLine> {
    let src = randn(rng, rows * cols);
    let idx: Vec<u32> = (0..count).map(|_| rng.below(rows) as u32).collect();
    let saved = gpu.max_binding;
    gpu.max_binding = chunk_bytes;
    let data = gpu.upload(&src);
    gpu.max_binding = saved;
    let data = data?;
    let chunks = gpu.bufs[data.id as usize].chunks.len();
    let ib = gpu.upload_u32(&idx)?;
    let dst = gpu.alloc(count * cols)?;
    gpu.write(dst, &vec![f32::NAN; count * cols])?;
    gpu.gather_rows(data, cols, ib, 0, count, dst)?;
    let got = gpu.read(dst)?;
    let want: Vec<f32> = idx
        .iter()
        .flat_map(|&r| {
            src[r as usize * cols..(r as usize + 1) * cols]
                .iter()
                .copied()
        })
        .collect();
    let mut l = line(
        "gather_rows (chunked)",
        format!("{rows}x{cols} in {chunks} chunks"),
        &[("dst", compare(&got, &want, 0.0, 0.0))],
    );
    if chunks < 2 {
        l.pass = false;
        l.detail = format!("the data set was not split ({chunks} chunk)");
    }
    Ok(l)
}

#[allow(clippy::too_many_arguments)]
pub fn matmul_nt(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    m: usize,
    n: usize,
    k: usize,
    act: Activation,
    bias: bool,
) -> Result<CheckLine> {
    let x = randn(rng, m * k);
    let w = randn(rng, n * k);
    let b = randn(rng, n);
    let atol = sum_atol(k, amax(&x) * amax(&w)) + 1e-6 * amax(&b);
    let op = |be: &mut dyn Backend, v: &[Buf]| {
        be.matmul_nt(v[0], v[1], bias.then_some(v[2]), act, v[3], m, n, k)
    };
    let (g, c) = both(
        gpu,
        cpu,
        &[Input::F(x), Input::F(w), Input::F(b)],
        &[m * n],
        &op,
    )?;
    let shape = format!(
        "{m}x{n}x{k} {}{}",
        act.as_str(),
        if bias { "+bias" } else { "" }
    );
    Ok(line(
        "matmul_nt",
        shape,
        &[("y", compare(&g[3], &c[3], atol, 1e-5))],
    ))
}

pub fn matmul_nn(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    m: usize,
    n: usize,
    k: usize,
) -> Result<CheckLine> {
    let dy = randn(rng, m * n);
    let w = randn(rng, n * k);
    let atol = sum_atol(n, amax(&dy) * amax(&w));
    let op = |b: &mut dyn Backend, v: &[Buf]| b.matmul_nn(v[0], v[1], v[2], m, n, k);
    let (g, c) = both(gpu, cpu, &[Input::F(dy), Input::F(w)], &[m * k], &op)?;
    Ok(line(
        "matmul_nn",
        format!("{m}x{n}x{k}"),
        &[("dx", compare(&g[2], &c[2], atol, 1e-5))],
    ))
}

pub fn matmul_tn(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    m: usize,
    n: usize,
    k: usize,
) -> Result<CheckLine> {
    let dy = randn(rng, m * n);
    let x = randn(rng, m * k);
    let atol = sum_atol(m, amax(&dy) * amax(&x));
    let op = |b: &mut dyn Backend, v: &[Buf]| b.matmul_tn(v[0], v[1], v[2], m, n, k);
    let (g, c) = both(gpu, cpu, &[Input::F(dy), Input::F(x)], &[n * k], &op)?;
    Ok(line(
        "matmul_tn",
        format!("{m}x{n}x{k}"),
        &[("dw", compare(&g[2], &c[2], atol, 1e-5))],
    ))
}

pub fn act_backward(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    act: Activation,
    len: usize,
) -> Result<CheckLine> {
    // y is an activation's output: relu's has exact zeros, sigmoid's lies in (0, 1).
    let y = match act {
        Activation::Relu => randn(rng, len).into_iter().map(|v| v.max(0.0)).collect(),
        Activation::Sigmoid => uniform(rng, len, 0.01, 0.99),
        Activation::Identity => randn(rng, len),
    };
    let gr = randn(rng, len);
    let op = |b: &mut dyn Backend, v: &[Buf]| b.act_backward(act, v[0], v[1], len);
    let (g, c) = both(gpu, cpu, &[Input::F(y), Input::F(gr)], &[], &op)?;
    Ok(line(
        "act_backward",
        format!("{} {len}", act.as_str()),
        &[("g", compare(&g[1], &c[1], 1e-7, 1e-6))],
    ))
}

pub fn bias_grad(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    m: usize,
    n: usize,
) -> Result<CheckLine> {
    let dz = randn(rng, m * n);
    let atol = sum_atol(m, amax(&dz));
    let op = |b: &mut dyn Backend, v: &[Buf]| b.bias_grad(v[0], v[1], m, n);
    let (g, c) = both(gpu, cpu, &[Input::F(dz)], &[n], &op)?;
    Ok(line(
        "bias_grad",
        format!("{m}x{n}"),
        &[("db", compare(&g[1], &c[1], atol, 1e-5))],
    ))
}

pub fn softmax(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    m: usize,
    n: usize,
) -> Result<CheckLine> {
    // Wide logits, and a first row shifted far up: exp without the max subtracted overflows.
    let mut x: Vec<f32> = randn(rng, m * n).into_iter().map(|v| v * 6.0).collect();
    for v in x.iter_mut().take(n) {
        *v += 100.0;
    }
    let op = |b: &mut dyn Backend, v: &[Buf]| b.softmax(v[0], m, n);
    let (g, c) = both(gpu, cpu, &[Input::F(x)], &[], &op)?;
    Ok(line(
        "softmax",
        format!("{m}x{n}"),
        &[("x", compare(&g[0], &c[0], 1e-7, 3e-5))],
    ))
}

fn loss_inputs(rng: &mut Rng, loss: Loss, m: usize, n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let out: Vec<f32> = randn(rng, m * n).into_iter().map(|v| v * 3.0).collect();
    let target = match loss {
        Loss::CrossEntropy | Loss::SoftmaxMse => (0..m).map(|_| rng.below(n) as f32).collect(),
        Loss::Mse | Loss::Mae => randn(rng, m * n),
    };
    let scale = uniform(rng, n, 0.5, 3.0);
    (out, target, scale)
}

#[allow(clippy::too_many_arguments)]
pub fn loss_grad(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    loss: Loss,
    m: usize,
    n: usize,
    scaled: bool,
) -> Result<CheckLine> {
    let (out, target, scale) = loss_inputs(rng, loss, m, n);
    let slot = 2;
    let op = |b: &mut dyn Backend, v: &[Buf]| {
        b.loss_grad(
            loss,
            v[0],
            v[1],
            scaled.then_some(v[2]),
            v[4],
            m,
            n,
            v[3],
            slot,
        )
    };
    let (g, c) = both(
        gpu,
        cpu,
        &[Input::F(out), Input::F(target), Input::F(scale)],
        &[slot + 3, m * n],
        &op,
    )?;
    let grad = compare(&g[4], &c[4], 1e-5 * amax(&c[4]), 3e-5);
    // A sum of m positive row errors: relative error grows like √m.
    let stat = compare(
        &g[3][slot..slot + 1],
        &c[3][slot..slot + 1],
        1e-6,
        2e-5 + 1e-6 * (m as f32).sqrt(),
    );
    let name = format!("loss_grad {}", loss_name(loss));
    Ok(line(
        &name,
        format!("{m}x{n}{}", if scaled { " scaled" } else { "" }),
        &[("grad", grad), ("stats", stat)],
    ))
}

fn loss_name(loss: Loss) -> &'static str {
    match loss {
        Loss::Mse => "mse",
        Loss::Mae => "mae",
        Loss::CrossEntropy => "ce",
        Loss::SoftmaxMse => "softmax-mse",
    }
}

pub fn eval_stats(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    classes: bool,
    m: usize,
    n: usize,
    scaled: bool,
) -> Result<CheckLine> {
    let loss = if classes {
        Loss::CrossEntropy
    } else {
        Loss::Mse
    };
    let (out, target, scale) = loss_inputs(rng, loss, m, n);
    let slot = 1;
    let width = STATS_WIDTH;
    let op = |b: &mut dyn Backend, v: &[Buf]| {
        b.eval_stats(
            classes,
            v[0],
            v[1],
            scaled.then_some(v[2]),
            m,
            n,
            v[3],
            slot,
        )
    };
    let (g, c) = both(
        gpu,
        cpu,
        &[Input::F(out), Input::F(target), Input::F(scale)],
        &[3 * width],
        &op,
    )?;
    let r = slot * width..slot * width + width;
    let stat = compare(
        &g[3][r.clone()],
        &c[3][r],
        1e-6,
        2e-5 + 1e-6 * (m as f32).sqrt(),
    );
    let kind = if classes { "classes" } else { "regression" };
    Ok(line(
        "eval_stats",
        format!("{kind} {m}x{n}{}", if scaled { " scaled" } else { "" }),
        &[("stats", stat)],
    ))
}

pub fn optimizer_step(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    opt: Optimizer,
    len: usize,
    weight_decay: f32,
) -> Result<CheckLine> {
    let param = randn(rng, len);
    let grad = randn(rng, len);
    // Mid-training state: Adam's second moment is positive.
    let s0 = randn(rng, len).into_iter().map(|v| v * 0.1).collect();
    let s1 = uniform(rng, len, 1e-4, 0.1);
    let sp = StepParams::new(0.01, weight_decay, 3);
    let slots = opt.state_slots();
    let op = |b: &mut dyn Backend, v: &[Buf]| {
        b.optimizer_step(opt, v[0], v[1], &v[2..2 + slots], len, sp)
    };
    let mut inputs = vec![Input::F(param), Input::F(grad), Input::F(s0), Input::F(s1)];
    inputs.truncate(2 + slots);
    let (g, c) = both(gpu, cpu, &inputs, &[], &op)?;
    let mut parts = vec![("param", compare(&g[0], &c[0], 1e-6 * amax(&c[0]), 1e-5))];
    for s in 0..slots {
        parts.push((
            if s == 0 { "state0" } else { "state1" },
            compare(&g[2 + s], &c[2 + s], 1e-6 * amax(&c[2 + s]), 1e-5),
        ));
    }
    Ok(line(
        "optimizer_step",
        format!("{} {len} wd {weight_decay}", opt.as_str()),
        &parts,
    ))
}

/// A forward + backward + Adam step of a small network, run twice on the same GPU: every
/// output must be bit-identical (fixed-order reductions, no atomics).
pub fn determinism(gpu: &mut GpuBackend, rng: &mut Rng) -> Result<CheckLine> {
    let (m, k, h, c) = (257, 65, 63, 10);
    let x = randn(rng, m * k);
    let w1 = randn(rng, h * k);
    let b1 = randn(rng, h);
    let w2 = randn(rng, c * h);
    let labels: Vec<f32> = (0..m).map(|_| rng.below(c) as f32).collect();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let g = &mut *gpu;
        let xb = g.upload(&x)?;
        let w1b = g.upload(&w1)?;
        let b1b = g.upload(&b1)?;
        let w2b = g.upload(&w2)?;
        let yb = g.upload(&labels)?;
        let a1 = g.alloc(m * h)?;
        let out = g.alloc(m * c)?;
        let dout = g.alloc(m * c)?;
        let da1 = g.alloc(m * h)?;
        let dw1 = g.alloc(h * k)?;
        let db1 = g.alloc(h)?;
        let stats = g.alloc(8)?;
        let (s0, s1) = (g.alloc(h * k)?, g.alloc(h * k)?);
        g.matmul_nt(xb, w1b, Some(b1b), Activation::Sigmoid, a1, m, h, k)?;
        g.matmul_nt(a1, w2b, None, Activation::Identity, out, m, c, h)?;
        g.loss_grad(Loss::CrossEntropy, out, yb, None, dout, m, c, stats, 0)?;
        g.eval_stats(true, out, yb, None, m, c, stats, 1)?;
        g.matmul_nn(dout, w2b, da1, m, c, h)?;
        g.act_backward(Activation::Sigmoid, a1, da1, m * h)?;
        g.matmul_tn(da1, xb, dw1, m, h, k)?;
        g.bias_grad(da1, db1, m, h)?;
        g.optimizer_step(
            Optimizer::Adam,
            w1b,
            dw1,
            &[s0, s1],
            h * k,
            StepParams::new(1e-3, 0.0, 1),
        )?;
        g.softmax(out, m, c)?;
        let mut all = Vec::new();
        for b in [out, dout, da1, dw1, db1, stats, w1b, s0, s1] {
            all.extend(g.read(b)?.into_iter().map(f32::to_bits));
        }
        runs.push(all);
    }
    let diff = runs[0].iter().zip(&runs[1]).position(|(a, b)| a != b);
    Ok(CheckLine {
        op: "determinism".to_string(),
        shape: format!("mlp {k}-{h}-{c}, batch {m}, 2 runs"),
        max_err: diff.map_or(0.0, |_| f32::INFINITY),
        tol: 0.0,
        pass: diff.is_none(),
        detail: match diff {
            Some(i) => format!(
                "word {i} differs: {:e} vs {:e}",
                f32::from_bits(runs[0][i]),
                f32::from_bits(runs[1][i])
            ),
            None => String::new(),
        },
    })
}

// ---- families, shared by `wgtrain check` and the tests --------------------------------------

pub fn gather_cases(
    gpu: &mut GpuBackend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let mut v = Vec::new();
    for &(rows, cols, count) in &[(1, 1, 1), (50, 3, 17), (1000, 17, 257), (300, 65, 64)] {
        v.push(gather_rows(gpu, cpu, rng, rows, cols, count)?);
    }
    // Chunks of 1000 bytes: 250 floats, not a multiple of the 17-float rows.
    v.push(gather_rows_chunked(gpu, rng, (300, 17, 257), 1000)?);
    Ok(v)
}

pub fn matmul_cases(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let mut v = Vec::new();
    let acts = [Activation::Identity, Activation::Relu, Activation::Sigmoid];
    for (i, &(m, n, k)) in MATMUL_SHAPES.iter().enumerate() {
        v.push(matmul_nt(gpu, cpu, rng, m, n, k, acts[i % 3], i % 2 == 0)?);
        v.push(matmul_nn(gpu, cpu, rng, m, n, k)?);
        v.push(matmul_tn(gpu, cpu, rng, m, n, k)?);
    }
    // Every activation with and without bias on one ragged shape.
    for act in acts {
        for bias in [false, true] {
            v.push(matmul_nt(gpu, cpu, rng, 65, 17, 63, act, bias)?);
        }
    }
    Ok(v)
}

/// `matmul_cases` once with each tile size of the matmul kernels (64×64 and 32×32), whichever
/// the adapter would pick on its own.
pub fn matmul_tile_cases(
    gpu: &mut GpuBackend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let saved = gpu.matmul_tile;
    let mut v = Vec::new();
    for tile in [64, 32] {
        gpu.set_matmul_tile(Some(tile));
        let lines = matmul_cases(gpu, cpu, rng);
        gpu.matmul_tile = saved;
        v.extend(lines?.into_iter().map(|mut l| {
            l.shape.push_str(&format!(" t{tile}"));
            l
        }));
    }
    Ok(v)
}

pub fn elementwise_cases(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let mut v = Vec::new();
    for act in [Activation::Identity, Activation::Relu, Activation::Sigmoid] {
        for len in [1, 1000, 65 * 1024 + 3] {
            v.push(act_backward(gpu, cpu, rng, act, len)?);
        }
    }
    for &(m, n) in &[(1, 1), (3, 17), (64, 65), (1000, 63), (257, 1000)] {
        v.push(bias_grad(gpu, cpu, rng, m, n)?);
    }
    for &(m, n) in &[(1, 1), (3, 17), (64, 10), (257, 1000), (1000, 3)] {
        v.push(softmax(gpu, cpu, rng, m, n)?);
    }
    Ok(v)
}

pub fn loss_cases(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let mut v = Vec::new();
    for loss in [Loss::Mse, Loss::Mae] {
        for &(m, n) in &[(1, 1), (3, 17), (257, 3), (1000, 1)] {
            v.push(loss_grad(gpu, cpu, rng, loss, m, n, m % 2 == 1)?);
        }
    }
    for loss in [Loss::CrossEntropy, Loss::SoftmaxMse] {
        for &(m, n) in &[(1, 2), (3, 17), (257, 10), (1000, 3), (64, 1000)] {
            v.push(loss_grad(gpu, cpu, rng, loss, m, n, false)?);
        }
    }
    for classes in [false, true] {
        for &(m, n) in &[(1, 2), (3, 17), (257, 10), (1000, 3)] {
            v.push(eval_stats(gpu, cpu, rng, classes, m, n, !classes && m > 1)?);
        }
    }
    Ok(v)
}

pub fn optimizer_cases(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let mut v = Vec::new();
    for opt in [Optimizer::Sgd, Optimizer::Momentum, Optimizer::Adam] {
        for (len, wd) in [(1, 0.0), (1000, 0.01), (65 * 1024 + 3, 0.0)] {
            v.push(optimizer_step(gpu, cpu, rng, opt, len, wd)?);
        }
    }
    Ok(v)
}

/// Every op against the CPU reference, plus the determinism check: what `wgtrain check`
/// prints, one line per case.
/// Gradient clipping: the squared norms of three buffers, then each scaled by the common
/// factor. `max_norm` small enough to clip, or large enough to leave the gradient alone.
pub fn clip(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    lens: [usize; 3],
    max_norm: f32,
) -> Result<CheckLine> {
    let xs: Vec<Vec<f32>> = lens.iter().map(|&l| randn(rng, l)).collect();
    let inputs: Vec<Input> = xs.iter().cloned().map(Input::F).collect();
    let op = |b: &mut dyn Backend, v: &[Buf]| {
        for (i, l) in lens.iter().enumerate() {
            b.sum_squares(v[i], *l, v[3], i)?;
        }
        for (i, l) in lens.iter().enumerate() {
            b.clip_scale(v[i], *l, v[3], 3, max_norm)?;
        }
        Ok(())
    };
    let (g, c) = both(gpu, cpu, &inputs, &[3], &op)?;
    let longest = *lens.iter().max().unwrap_or(&1);
    let mut parts = vec![(
        "sum_squares",
        compare(&g[3], &c[3], sum_atol(longest, amax(&c[3])), 1e-5),
    )];
    for i in 0..3 {
        parts.push((
            "clip_scale",
            compare(&g[i], &c[i], 1e-6 * amax(&c[i]), 1e-5),
        ));
    }
    Ok(line(
        "clip",
        format!("{lens:?} max_norm {max_norm}"),
        &parts,
    ))
}

pub fn clip_cases(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    Ok(vec![
        clip(gpu, cpu, rng, [1, 17, 3], 0.1)?,
        clip(gpu, cpu, rng, [65 * 1024 + 3, 257, 1000], 5.0)?,
        clip(gpu, cpu, rng, [63, 64, 65], 1e6)?,
    ])
}

pub fn run_checks(gpu: &mut GpuBackend, seed: u64) -> Result<Vec<CheckLine>> {
    let mut cpu = CpuBackend::new();
    let mut rng = Rng::new(seed);
    let mut v = gather_cases(gpu, &mut cpu, &mut rng)?;
    v.extend(matmul_tile_cases(gpu, &mut cpu, &mut rng)?);
    v.extend(elementwise_cases(gpu, &mut cpu, &mut rng)?);
    v.extend(loss_cases(gpu, &mut cpu, &mut rng)?);
    v.extend(optimizer_cases(gpu, &mut cpu, &mut rng)?);
    v.extend(clip_cases(gpu, &mut cpu, &mut rng)?);
    v.push(determinism(gpu, &mut rng)?);
    Ok(v)
}
