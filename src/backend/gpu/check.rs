//! GPU-against-CPU parity checks: `wgtrain check` and `tests/gpu_parity.rs` both run these,
//! so there is one implementation of the comparison.
//!
//! Every case draws fresh inputs from a seeded generator (never all zeros or ones), poisons
//! the outputs with NaN on both backends so that an element a kernel forgets to write fails,
//! runs the op on both, and compares |gpu − cpu| ≤ atol + rtol·|cpu| with tolerances that
//! grow with the reduction length.

use super::kernels::MatmulParams;
use super::{GpuBackend, Layout, Variant};
use crate::backend::cpu::CpuBackend;
use crate::backend::{Backend, Buf, Clip, Gather, STATS_WIDTH, StepParams};
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

/// Elements around every operand: ops run on views at odd offsets inside larger buffers, so
/// a kernel that ignores a view's offset, or writes past its end, fails.
const PAD: usize = 3;

/// Uploads `inputs` and allocates the `outputs` (lengths) poisoned with NaN, each as a view
/// with `pad` elements on both sides (`PAD`, or a multiple of 4 to put every view on a
/// 16-byte boundary as the vec4 loads want), runs `op` with the input then output views,
/// and reads back every view (inputs too, for in-place ops). An output's padding must stay
/// NaN.
fn exec_at(
    b: &mut dyn Backend,
    pad: usize,
    inputs: &[Input],
    outputs: &[usize],
    op: Op,
) -> Result<Reads> {
    let mut bufs = Vec::new();
    for input in inputs {
        let whole = match input {
            Input::F(v) => {
                let mut padded = vec![-7.5f32; pad];
                padded.extend_from_slice(v);
                padded.extend(std::iter::repeat_n(9.25f32, pad));
                b.upload(&padded)?
            }
            Input::U(v) => {
                let mut padded = vec![u32::MAX; pad];
                padded.extend_from_slice(v);
                padded.extend(std::iter::repeat_n(u32::MAX, pad));
                b.upload_u32(&padded)?
            }
        };
        bufs.push(whole.view(pad, whole.len - 2 * pad)?);
    }
    for &len in outputs {
        let whole = b.alloc(len + 2 * pad)?;
        b.write(whole, &vec![f32::NAN; len + 2 * pad])?;
        bufs.push(whole.view(pad, len)?);
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
        if i >= inputs.len() {
            let whole = Buf {
                offset: 0,
                len: buf.len + 2 * pad,
                ..buf
            };
            let all = b.read(whole)?;
            if let Some(j) = all[..pad]
                .iter()
                .chain(&all[pad + buf.len..])
                .position(|v| !v.is_nan())
            {
                return Err(crate::error::Error::internal(format!(
                    "{}: output {} was written outside its view (padding element {j})",
                    b.describe(),
                    i - inputs.len()
                )));
            }
        }
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
    both_at(gpu, cpu, PAD, inputs, outputs, op)
}

/// `both` with `pad` elements around every operand (`exec_at`).
fn both_at(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    pad: usize,
    inputs: &[Input],
    outputs: &[usize],
    op: Op,
) -> Result<(Reads, Reads)> {
    Ok((
        exec_at(gpu, pad, inputs, outputs, op)?,
        exec_at(cpu, pad, inputs, outputs, op)?,
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

/// `gather` of features (cols wide) and, with `y_cols`, targets in the same op.
pub fn gather(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    (rows, cols, count): (usize, usize, usize),
    y_cols: Option<usize>,
) -> Result<CheckLine> {
    let src = randn(rng, rows * cols);
    let ys = randn(rng, rows * y_cols.unwrap_or(1));
    let start = rng.below(3);
    let idx: Vec<u32> = (0..start + count + 2)
        .map(|_| rng.below(rows) as u32)
        .collect();
    let op = |b: &mut dyn Backend, v: &[Buf]| {
        let x = Gather {
            src: v[0],
            cols,
            dst: v[3],
        };
        let y = y_cols.map(|c| Gather {
            src: v[2],
            cols: c,
            dst: v[4],
        });
        b.gather(v[1], start, count, x, y)
    };
    let yc = y_cols.unwrap_or(1);
    let (g, c) = both(
        gpu,
        cpu,
        &[Input::F(src), Input::U(idx), Input::F(ys)],
        &[count * cols, count * yc],
        &op,
    )?;
    let mut parts = vec![("x", compare(&g[3], &c[3], 0.0, 0.0))];
    if y_cols.is_some() {
        parts.push(("y", compare(&g[4], &c[4], 0.0, 0.0)));
    }
    let with_y = y_cols.map_or(String::new(), |c| format!(" + y {c}"));
    Ok(line(
        "gather",
        format!("{rows}x{cols} take {count}{with_y}"),
        &parts,
    ))
}

/// `gather` from a data set split into chunks of `chunk_bytes` (rows straddle chunks),
/// against a host-side gather: the path a data set beyond one storage binding takes.
pub fn gather_chunked(
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
    let chunks = match gpu.bufs.get(data.id as usize) {
        Some(Some(s)) => s.chunks.len(),
        _ => 0,
    };
    let ib = gpu.upload_u32(&idx)?;
    let dst = gpu.alloc(count * cols)?;
    gpu.write(dst, &vec![f32::NAN; count * cols])?;
    let x = Gather {
        src: data,
        cols,
        dst,
    };
    gpu.gather(ib, 0, count, x, None)?;
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
        "gather (chunked)",
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
    pad: usize,
) -> Result<CheckLine> {
    let x = randn(rng, m * k);
    let w = randn(rng, n * k);
    let b = randn(rng, n);
    let atol = sum_atol(k, amax(&x) * amax(&w)) + 1e-6 * amax(&b);
    let op = |be: &mut dyn Backend, v: &[Buf]| {
        be.matmul_nt(v[0], v[1], bias.then_some(v[2]), act, v[3], m, n, k)
    };
    let (g, c) = both_at(
        gpu,
        cpu,
        pad,
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

/// dx = (dy·w) ⊙ act'(y), the activation backward fused into the product.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nn(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    m: usize,
    n: usize,
    k: usize,
    act: Activation,
    pad: usize,
) -> Result<CheckLine> {
    let dy = randn(rng, m * n);
    let w = randn(rng, n * k);
    let y = act_output(rng, act, m * k);
    let atol = sum_atol(n, amax(&dy) * amax(&w));
    let op = |b: &mut dyn Backend, v: &[Buf]| {
        let y = (act != Activation::Identity).then_some(v[2]);
        b.matmul_nn(v[0], v[1], act, y, v[3], m, n, k)
    };
    let (g, c) = both_at(
        gpu,
        cpu,
        pad,
        &[Input::F(dy), Input::F(w), Input::F(y)],
        &[m * k],
        &op,
    )?;
    Ok(line(
        "matmul_nn",
        format!("{m}x{n}x{k} {}'", act.as_str()),
        &[("dx", compare(&g[3], &c[3], atol, 1e-5))],
    ))
}

/// dw = dyᵀ·x with the bias gradient fused: db in its own buffer, or (`slab`) dw and db as
/// views of one gradient buffer, as training lays them out.
#[allow(clippy::too_many_arguments)]
pub fn matmul_tn(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    m: usize,
    n: usize,
    k: usize,
    db: Option<bool>,
    pad: usize,
) -> Result<CheckLine> {
    let dy = randn(rng, m * n);
    let x = randn(rng, m * k);
    let atol = sum_atol(m, amax(&dy) * amax(&x));
    let op = |b: &mut dyn Backend, v: &[Buf]| match db {
        None => b.matmul_tn(v[0], v[1], v[2], None, m, n, k),
        Some(false) => b.matmul_tn(v[0], v[1], v[2], Some(v[3]), m, n, k),
        Some(true) => {
            let (dw, dbv) = (v[2].view(0, n * k)?, v[2].view(n * k, n)?);
            b.matmul_tn(v[0], v[1], dw, Some(dbv), m, n, k)
        }
    };
    let outs = match db {
        None => vec![n * k],
        Some(false) => vec![n * k, n],
        Some(true) => vec![n * k + n],
    };
    let (g, c) = both_at(gpu, cpu, pad, &[Input::F(dy), Input::F(x)], &outs, &op)?;
    let mut parts = vec![("dw", compare(&g[2][..n * k], &c[2][..n * k], atol, 1e-5))];
    let (gdb, cdb) = match db {
        None => (None, None),
        Some(false) => (Some(&g[3][..]), Some(&c[3][..])),
        Some(true) => (Some(&g[2][n * k..]), Some(&c[2][n * k..])),
    };
    if let (Some(gd), Some(cd)) = (gdb, cdb) {
        parts.push(("db", compare(gd, cd, sum_atol(m, amax(&c[0])), 1e-5)));
    }
    let what = match db {
        None => "",
        Some(false) => " +db",
        Some(true) => " +db (one slab)",
    };
    Ok(line("matmul_tn", format!("{m}x{n}x{k}{what}"), &parts))
}

/// An activation's output: relu's has exact zeros, sigmoid's lies in (0, 1).
fn act_output(rng: &mut Rng, act: Activation, len: usize) -> Vec<f32> {
    match act {
        Activation::Relu => randn(rng, len).into_iter().map(|v| v.max(0.0)).collect(),
        Activation::Sigmoid => uniform(rng, len, 0.01, 0.99),
        Activation::Identity => randn(rng, len),
    }
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

/// One update of a slab whose first `decay_len` elements take weight decay, optionally
/// clipped by the partial squared norms `sum_squares` writes (over `parts` blocks).
#[allow(clippy::too_many_arguments)]
pub fn optimizer_step(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
    opt: Optimizer,
    len: usize,
    weight_decay: f32,
    clip: Option<(usize, f32)>,
) -> Result<CheckLine> {
    let param = randn(rng, len);
    let grad = randn(rng, len);
    // Mid-training state: Adam's second moment is positive.
    let s0 = randn(rng, len).into_iter().map(|v| v * 0.1).collect();
    let s1 = uniform(rng, len, 1e-4, 0.1);
    let sp = StepParams::new(0.01, weight_decay, 3);
    let slots = opt.state_slots();
    let decay_len = len * 2 / 3;
    let op = |b: &mut dyn Backend, v: &[Buf]| {
        let clip = match clip {
            Some((_, max_norm)) => {
                b.sum_squares(v[1], v[4])?;
                Some(Clip {
                    partials: v[4],
                    max_norm,
                })
            }
            None => None,
        };
        b.optimizer_step(opt, v[0], v[1], &v[2..2 + slots], decay_len, sp, clip)
    };
    let inputs = vec![Input::F(param), Input::F(grad), Input::F(s0), Input::F(s1)];
    let parts = clip.map_or(1, |(p, _)| p);
    let (g, c) = both(gpu, cpu, &inputs, &[parts], &op)?;
    let mut out = vec![("param", compare(&g[0], &c[0], 1e-6 * amax(&c[0]), 1e-5))];
    for s in 0..slots {
        out.push((
            if s == 0 { "state0" } else { "state1" },
            compare(&g[2 + s], &c[2 + s], 1e-6 * amax(&c[2 + s]), 1e-5),
        ));
    }
    let mut name = "optimizer_step";
    let mut shape = format!("{} {len} wd {weight_decay} on {decay_len}", opt.as_str());
    if let Some((p, max_norm)) = clip {
        let block = len.div_ceil(p);
        out.push((
            "sum_squares",
            compare(&g[4], &c[4], sum_atol(block, amax(&c[4])), 1e-5),
        ));
        name = "sum_squares+optimizer";
        shape.push_str(&format!(" clip {max_norm} over {p} parts"));
    }
    Ok(line(name, shape, &out))
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
        let w2b = g.upload(&w2)?;
        let yb = g.upload(&labels)?;
        let a1 = g.alloc(m * h)?;
        let out = g.alloc(m * c)?;
        let dout = g.alloc(m * c)?;
        let da1 = g.alloc(m * h)?;
        let grads = g.alloc(h * k + h)?;
        let (dw1, db1) = (grads.view(0, h * k)?, grads.view(h * k, h)?);
        let stats = g.alloc(8)?;
        let (s0, s1) = (g.alloc(h * k + h)?, g.alloc(h * k + h)?);
        let params = g.upload(&[w1.clone(), b1.clone()].concat())?;
        let parts = g.alloc(7)?;
        let (w1b, b1b) = (params.view(0, h * k)?, params.view(h * k, h)?);
        g.matmul_nt(xb, w1b, Some(b1b), Activation::Sigmoid, a1, m, h, k)?;
        g.matmul_nt(a1, w2b, None, Activation::Identity, out, m, c, h)?;
        g.loss_grad(Loss::CrossEntropy, out, yb, None, dout, m, c, stats, 0)?;
        g.eval_stats(true, out, yb, None, m, c, stats, 1)?;
        g.matmul_nn(dout, w2b, Activation::Sigmoid, Some(a1), da1, m, c, h)?;
        g.matmul_tn(da1, xb, dw1, Some(db1), m, h, k)?;
        g.sum_squares(grads, parts)?;
        let clip = Some(Clip {
            partials: parts,
            max_norm: 0.5,
        });
        let hp = StepParams::new(1e-3, 0.01, 1);
        g.optimizer_step(Optimizer::Adam, params, grads, &[s0, s1], h * k, hp, clip)?;
        g.softmax(out, m, c)?;
        let mut all = Vec::new();
        for b in [out, dout, da1, grads, stats, params, parts, s0, s1] {
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
    for (i, &shape) in [(1, 1, 1), (50, 3, 17), (1000, 17, 257), (300, 65, 64)]
        .iter()
        .enumerate()
    {
        v.push(gather(gpu, cpu, rng, shape, None)?);
        v.push(gather(gpu, cpu, rng, shape, Some(1 + 2 * i))?);
    }
    // Chunks of 1000 bytes: 250 floats, not a multiple of the 17-float rows.
    v.push(gather_chunked(gpu, rng, (300, 17, 257), 1000)?);
    Ok(v)
}

pub fn matmul_cases(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let mut v = Vec::new();
    let acts = [Activation::Identity, Activation::Relu, Activation::Sigmoid];
    let dbs = [None, Some(false), Some(true)];
    for (i, &(m, n, k)) in MATMUL_SHAPES.iter().enumerate() {
        v.push(matmul_nt(
            gpu,
            cpu,
            rng,
            m,
            n,
            k,
            acts[i % 3],
            i % 2 == 0,
            PAD,
        )?);
        v.push(matmul_nn(gpu, cpu, rng, m, n, k, acts[(i + 1) % 3], PAD)?);
        v.push(matmul_tn(gpu, cpu, rng, m, n, k, dbs[i % 3], PAD)?);
    }
    // Every activation with and without bias on one ragged shape, and every fused epilogue.
    for act in acts {
        for bias in [false, true] {
            v.push(matmul_nt(gpu, cpu, rng, 65, 17, 63, act, bias, PAD)?);
        }
        v.push(matmul_nn(gpu, cpu, rng, 65, 17, 63, act, PAD)?);
    }
    for db in dbs {
        v.push(matmul_tn(gpu, cpu, rng, 65, 17, 63, db, PAD)?);
    }
    Ok(v)
}

/// `matmul_cases` once with every matmul variant forced, each also compared bit for bit with
/// the baseline (64×64 tiles): a tuned run must give the same bits as an untuned one.
pub fn matmul_tile_cases(
    gpu: &mut GpuBackend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let saved = gpu.matmul_variant();
    let mut v = Vec::new();
    for variant in gpu.variants() {
        gpu.set_matmul_variant(Some(variant));
        let lines = matmul_cases(gpu, cpu, rng);
        gpu.set_matmul_variant(saved);
        v.extend(lines?.into_iter().map(|mut l| {
            l.shape.push_str(&format!(" {}", variant.name()));
            l
        }));
    }
    for variant in gpu.variants() {
        v.push(same_bits(gpu, rng, variant)?);
    }
    Ok(v)
}

/// Shapes and paddings (m, n, k, pad) for reg8v4: between them every layout stages each
/// operand both ways, with aligned vec4 loads and with scalar loads, over ragged tiles.
pub const VEC4_CASES: [(usize, usize, usize, usize); 6] = [
    // Every operand aligned.
    (64, 100, 56, 4),
    // n % 4 ≠ 0: nn and tn stage A (dy) with scalars, B with vec4.
    (68, 45, 132, 4),
    // k % 4 ≠ 0: B everywhere and A in nt with scalars; 130 rows cross a 128-row tile.
    (130, 100, 63, 4),
    // Aligned, ragged tiles in every direction.
    (257, 132, 260, 4),
    // Views off the 16-byte grid: scalars only.
    (64, 100, 56, 3),
    (1, 4, 4, 4),
];

/// The vec4 bits a product of `layout` gets with every view `pad` elements into its buffer.
pub fn vec4_bits(layout: Layout, (m, n, k): (usize, usize, usize), pad: usize) -> u32 {
    MatmulParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        a_off: pad as u32,
        b_off: pad as u32,
        ..Default::default()
    }
    .vec4_operands(layout)
}

fn vec4_tag(bits: u32) -> &'static str {
    match bits {
        0 => "scalar",
        1 => "vec4 a",
        2 => "vec4 b",
        _ => "vec4 a+b",
    }
}

/// reg8v4 against the CPU on `VEC4_CASES` (every fused epilogue), each line naming which
/// operands were staged with vec4 loads; then word for word against the baseline on aligned,
/// mixed and unaligned operands.
pub fn matmul_vec4_cases(
    gpu: &mut GpuBackend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let saved = gpu.matmul_variant();
    gpu.set_matmul_variant(Some(Variant::Reg8v4));
    let lines = vec4_products(gpu, cpu, rng);
    gpu.set_matmul_variant(saved);
    let mut v = lines?;
    for (shape, off) in [
        ((68, 44, 132), 0),
        ((68, 45, 132), 0),
        ((130, 100, 63), 0),
        ((68, 44, 132), 1),
    ] {
        let mut l = same_bits_at(gpu, rng, Variant::Reg8v4, shape, off)?;
        let tags: Vec<&str> = Layout::ALL
            .iter()
            .map(|&lay| vec4_tag(vec4_bits(lay, shape, off)))
            .collect();
        l.shape.push_str(&format!(" ({})", tags.join(", ")));
        v.push(l);
    }
    Ok(v)
}

fn vec4_products(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let mut v = Vec::new();
    let dbs = [None, Some(false), Some(true)];
    for (i, &(m, n, k, pad)) in VEC4_CASES.iter().enumerate() {
        let tag = |l: Layout| format!(" @{pad} reg8v4 {}", vec4_tag(vec4_bits(l, (m, n, k), pad)));
        let mut lines = [
            matmul_nt(gpu, cpu, rng, m, n, k, Activation::Relu, i % 2 == 0, pad)?,
            matmul_nn(gpu, cpu, rng, m, n, k, Activation::Sigmoid, pad)?,
            matmul_tn(gpu, cpu, rng, m, n, k, dbs[i % 3], pad)?,
        ];
        for (l, lay) in lines.iter_mut().zip(Layout::ALL) {
            l.shape.push_str(&tag(lay));
        }
        v.extend(lines);
    }
    Ok(v)
}

/// The three products of one ragged shape (with every fused epilogue) through `variant` and
/// through the baseline: every output word must be equal.
pub fn same_bits(gpu: &mut GpuBackend, rng: &mut Rng, variant: Variant) -> Result<CheckLine> {
    same_bits_at(gpu, rng, variant, (67, 45, 131), 0)
}

/// `same_bits` on one shape, every operand a view `off` elements into its buffer.
pub fn same_bits_at(
    gpu: &mut GpuBackend,
    rng: &mut Rng,
    variant: Variant,
    (m, n, k): (usize, usize, usize),
    off: usize,
) -> Result<CheckLine> {
    let x = randn(rng, m * k);
    let w = randn(rng, n * k);
    let bias = randn(rng, n);
    let dy = randn(rng, m * n);
    let y = act_output(rng, Activation::Sigmoid, m * k);
    let saved = gpu.matmul_variant();
    let mut runs = Vec::new();
    for v in [Variant::Tiled64, variant] {
        gpu.set_matmul_variant(Some(v));
        let r = products_bits(gpu, (&x, &w, &bias, &dy, &y), (m, n, k), off);
        gpu.set_matmul_variant(saved);
        runs.push(r?);
    }
    let diff = runs[0].iter().zip(&runs[1]).position(|(a, b)| a != b);
    Ok(CheckLine {
        op: "matmul same bits".to_string(),
        shape: format!(
            "{m}x{n}x{k}{} {} vs tiled64",
            if off > 0 {
                format!(" @{off}")
            } else {
                String::new()
            },
            variant.name()
        ),
        max_err: diff.map_or(0.0, |_| f32::INFINITY),
        tol: 0.0,
        pass: diff.is_none(),
        detail: diff.map_or(String::new(), |i| {
            format!(
                "word {i}: {:e} vs {:e}",
                f32::from_bits(runs[0][i]),
                f32::from_bits(runs[1][i])
            )
        }),
    })
}

type Operands<'a> = (&'a [f32], &'a [f32], &'a [f32], &'a [f32], &'a [f32]);

fn products_bits(
    g: &mut GpuBackend,
    (x, w, bias, dy, y): Operands,
    (m, n, k): (usize, usize, usize),
    off: usize,
) -> Result<Vec<u32>> {
    // Every operand `off` elements into its buffer.
    let (mut wholes, mut views) = (Vec::new(), Vec::new());
    for data in [x, w, bias, dy, y] {
        let mut padded = vec![0.5f32; off];
        padded.extend_from_slice(data);
        wholes.push(g.upload(&padded)?);
    }
    for len in [m * n, m * k, n * k + n] {
        wholes.push(g.alloc(off + len)?);
    }
    for b in &wholes {
        views.push(b.view(off, b.len - off)?);
    }
    let [xb, wb, bb, dyb, yb, out, dx, grads] = views[..] else {
        return Err(crate::error::Error::internal("products_bits: 8 views"));
    };
    g.matmul_nt(xb, wb, Some(bb), Activation::Relu, out, m, n, k)?;
    g.matmul_nn(dyb, wb, Activation::Sigmoid, Some(yb), dx, m, n, k)?;
    let (dw, db) = (grads.view(0, n * k)?, grads.view(n * k, n)?);
    g.matmul_tn(dyb, xb, dw, Some(db), m, n, k)?;
    let mut bits = Vec::new();
    for b in [out, dx, grads] {
        bits.extend(g.read(b)?.into_iter().map(f32::to_bits));
    }
    for b in wholes {
        g.free(b)?;
    }
    Ok(bits)
}

pub fn elementwise_cases(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let mut v = Vec::new();
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
            v.push(optimizer_step(gpu, cpu, rng, opt, len, wd, None)?);
        }
    }
    Ok(v)
}

/// Gradient clipping: `sum_squares` over a slab in P parts, then the optimizer scaling by the
/// common factor. `max_norm` small enough to clip, or large enough to leave the gradient alone.
pub fn clip_cases(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    rng: &mut Rng,
) -> Result<Vec<CheckLine>> {
    let mut v = Vec::new();
    for (opt, len, parts, max_norm) in [
        (Optimizer::Sgd, 21, 1, 0.1),
        (Optimizer::Momentum, 65 * 1024 + 3, 64, 5.0),
        (Optimizer::Adam, 1000, 7, 1e6),
        (Optimizer::Adam, 3, 64, 0.01),
    ] {
        v.push(optimizer_step(
            gpu,
            cpu,
            rng,
            opt,
            len,
            0.01,
            Some((parts, max_norm)),
        )?);
    }
    Ok(v)
}

/// Content faults and misuse: both backends must refuse each case with the same message.
pub fn refusal_cases(gpu: &mut dyn Backend, cpu: &mut dyn Backend) -> Result<Vec<CheckLine>> {
    let mut v = Vec::new();
    for (name, case) in REFUSALS {
        let g = run_refusal(gpu, *case);
        let c = run_refusal(cpu, *case);
        let pass = matches!((&g, &c), (Err(a), Err(b)) if a == b);
        v.push(CheckLine {
            op: "refuses".to_string(),
            shape: name.to_string(),
            max_err: if pass { 0.0 } else { f32::INFINITY },
            tol: 0.0,
            pass,
            detail: format!("gpu: {g:?}; cpu: {c:?}"),
        });
    }
    Ok(v)
}

type Refusal = fn(&mut dyn Backend) -> Result<()>;

/// Runs a refusal case and reads a buffer back (where the GPU reports content faults).
fn run_refusal(b: &mut dyn Backend, case: Refusal) -> std::result::Result<(), String> {
    let r = case(b).and_then(|_| b.alloc(1).and_then(|x| b.read(x)).map(|_| ()));
    r.map_err(|e| e.to_string())
}

const REFUSALS: &[(&str, Refusal)] = &[
    ("gather row past the data", |b| {
        let src = b.upload(&[1.0, 2.0, 3.0, 4.0])?;
        let idx = b.upload_u32(&[1, 2])?;
        let dst = b.alloc(4)?;
        b.gather(idx, 0, 2, Gather { src, cols: 2, dst }, None)
    }),
    ("class target past the outputs", |b| {
        let out = b.upload(&[0.5, -0.5, 1.0, 2.0])?;
        let (t, g, st) = (b.upload(&[1.0, 2.0])?, b.alloc(4)?, b.alloc(1)?);
        b.loss_grad(Loss::CrossEntropy, out, t, None, g, 2, 2, st, 0)
    }),
    ("negative class in eval", |b| {
        let out = b.upload(&[0.5, -0.5, 1.0, 2.0])?;
        let (t, st) = (b.upload(&[-1.0, 0.0])?, b.alloc(4)?);
        b.eval_stats(true, out, t, None, 2, 2, st, 0)
    }),
    ("view past the end", |b| {
        let x = b.alloc(4)?;
        let y = Buf { len: 5, ..x };
        b.softmax(y, 1, 5)
    }),
    ("output aliasing an input", |b| {
        let x = b.alloc(8)?;
        let (a, c) = (x.view(0, 4)?, x.view(4, 4)?);
        let w = b.alloc(4)?;
        b.matmul_nt(a, w, None, Activation::Relu, c, 2, 2, 2)
    }),
    ("u32 buffer as f32", |b| {
        let x = b.upload_u32(&[1, 2, 3, 4])?;
        b.softmax(x, 2, 2)
    }),
    ("freed buffer", |b| {
        let x = b.alloc(4)?;
        b.free(x)?;
        b.softmax(x, 2, 2)
    }),
];

pub fn run_checks(gpu: &mut GpuBackend, seed: u64) -> Result<Vec<CheckLine>> {
    let mut cpu = CpuBackend::new();
    let mut rng = Rng::new(seed);
    let mut v = gather_cases(gpu, &mut cpu, &mut rng)?;
    v.extend(matmul_tile_cases(gpu, &mut cpu, &mut rng)?);
    v.extend(matmul_vec4_cases(gpu, &mut cpu, &mut rng)?);
    v.extend(elementwise_cases(gpu, &mut cpu, &mut rng)?);
    v.extend(loss_cases(gpu, &mut cpu, &mut rng)?);
    v.extend(optimizer_cases(gpu, &mut cpu, &mut rng)?);
    v.extend(clip_cases(gpu, &mut cpu, &mut rng)?);
    v.extend(refusal_cases(gpu, &mut cpu)?);
    v.push(determinism(gpu, &mut rng)?);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `VEC4_CASES` must keep exercising both staging paths of reg8v4 for every operand of
    /// every layout, else a broken path could pass `check` unseen.
    #[test]
    fn vec4_cases_stage_every_operand_both_ways() {
        for layout in Layout::ALL {
            for (bit, name) in [(1, "A"), (2, "B")] {
                for vec in [true, false] {
                    assert!(
                        VEC4_CASES.iter().any(|&(m, n, k, pad)| (vec4_bits(
                            layout,
                            (m, n, k),
                            pad
                        ) & bit
                            != 0)
                            == vec),
                        "{layout:?} {name}: no case stages it with {}",
                        if vec { "vec4" } else { "scalars" }
                    );
                }
            }
        }
        // The rule itself: offsets and strides, per layout.
        assert_eq!(vec4_bits(Layout::Nt, (5, 7, 8), 4), 3);
        assert_eq!(vec4_bits(Layout::Nn, (5, 7, 8), 4), 2);
        assert_eq!(vec4_bits(Layout::Tn, (5, 8, 7), 4), 1);
        assert_eq!(vec4_bits(Layout::Nt, (4, 4, 4), 2), 0);
    }
}
