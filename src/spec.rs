//! The vocabulary shared by the data pipeline, the model, the backends and the CLI.

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Task {
    Regression,
    Classification,
}

/// Activation of the hidden layers. `Identity` is what the output layer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Activation {
    // Accepted on the command line only to explain that `--hidden none` is the linear model.
    #[value(hide = true, alias = "linear")]
    Identity,
    Relu,
    Sigmoid,
}

/// The loss as the backends see it: the task is folded in.
/// Per-row error eₙ, with L = 1/N Σ eₙ over the batch:
/// - `Mse`:        mean over outputs of (o − t)²            (regression)
/// - `Mae`:        mean over outputs of |o − t|             (regression)
/// - `CrossEntropy`: −log softmax(o)[y]                     (classification)
/// - `SoftmaxMse`: Σ over classes of (softmax(o) − onehot(y))²  (the lecture's comparison)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    Mse,
    Mae,
    CrossEntropy,
    SoftmaxMse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Optimizer {
    Sgd,
    Momentum,
    Adam,
}

pub const MOMENTUM: f32 = 0.9;
pub const ADAM_BETA1: f32 = 0.9;
pub const ADAM_BETA2: f32 = 0.999;
pub const ADAM_EPS: f32 = 1e-8;

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Regression => "regression",
            Task::Classification => "classification",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "regression" => Ok(Task::Regression),
            "classification" => Ok(Task::Classification),
            _ => Err(Error::flag(
                "--task",
                format!("'{s}' is not one of regression, classification"),
            )),
        }
    }
}

impl Activation {
    pub fn as_str(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "relu" => Ok(Activation::Relu),
            "sigmoid" => Ok(Activation::Sigmoid),
            "identity" | "linear" => Ok(Activation::Identity),
            _ => Err(Error::flag(
                "--activation",
                format!("'{s}' is not one of relu, sigmoid"),
            )),
        }
    }
    /// The code the WGSL kernels switch on.
    pub fn code(self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Relu => 1,
            Activation::Sigmoid => 2,
        }
    }
}

impl Loss {
    /// The name on the command line and in the model file (`ce`, `mse`, `mae`).
    pub fn as_str(self) -> &'static str {
        match self {
            Loss::Mse | Loss::SoftmaxMse => "mse",
            Loss::Mae => "mae",
            Loss::CrossEntropy => "ce",
        }
    }
    /// `--loss NAME` for a task; `None` picks the default (mse, or ce for classes).
    pub fn for_task(task: Task, name: Option<&str>) -> Result<Self> {
        match (task, name) {
            (Task::Regression, None | Some("mse")) => Ok(Loss::Mse),
            (Task::Regression, Some("mae")) => Ok(Loss::Mae),
            (Task::Classification, None | Some("ce")) => Ok(Loss::CrossEntropy),
            (Task::Classification, Some("mse")) => Ok(Loss::SoftmaxMse),
            (Task::Regression, Some("ce")) => Err(Error::flag(
                "--loss",
                "ce needs class labels; use --task classification or --loss mse|mae",
            )),
            (Task::Classification, Some("mae")) => Err(Error::flag(
                "--loss",
                "mae is for regression; classes use ce or mse",
            )),
            (_, Some(s)) => Err(Error::flag(
                "--loss",
                format!("'{s}' is not one of mse, mae, ce"),
            )),
        }
    }
    pub fn task(self) -> Task {
        match self {
            Loss::Mse | Loss::Mae => Task::Regression,
            Loss::CrossEntropy | Loss::SoftmaxMse => Task::Classification,
        }
    }
    /// The code the WGSL kernels switch on.
    pub fn code(self) -> u32 {
        match self {
            Loss::Mse => 0,
            Loss::Mae => 1,
            Loss::CrossEntropy => 2,
            Loss::SoftmaxMse => 3,
        }
    }
}

impl Optimizer {
    pub fn as_str(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Momentum => "momentum",
            Optimizer::Adam => "adam",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "sgd" => Ok(Optimizer::Sgd),
            "momentum" => Ok(Optimizer::Momentum),
            "adam" => Ok(Optimizer::Adam),
            _ => Err(Error::flag(
                "--optimizer",
                format!("'{s}' is not one of sgd, momentum, adam"),
            )),
        }
    }
    /// How many state vectors of the parameter's size the optimizer keeps.
    pub fn state_slots(self) -> usize {
        match self {
            Optimizer::Sgd => 0,
            Optimizer::Momentum => 1,
            Optimizer::Adam => 2,
        }
    }
}

impl Activation {
    pub const ALL: [Activation; 3] = [Activation::Identity, Activation::Relu, Activation::Sigmoid];
}

impl Loss {
    pub const ALL: [Loss; 4] = [Loss::Mse, Loss::Mae, Loss::CrossEntropy, Loss::SoftmaxMse];
    /// The name of its WGSL constant (`LOSS_MSE`, …).
    fn wgsl_name(self) -> &'static str {
        match self {
            Loss::Mse => "MSE",
            Loss::Mae => "MAE",
            Loss::CrossEntropy => "CROSS_ENTROPY",
            Loss::SoftmaxMse => "SOFTMAX_MSE",
        }
    }
}

/// Content checks a kernel makes as it runs (the GPU reports them at the next `read`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A gather index past the rows of its source.
    RowIndex = 1,
    /// A class target that is not an integer in 0..outputs.
    ClassIndex = 2,
}

impl Fault {
    /// The bit the GPU kernels set in the fault word (generated into the WGSL prelude).
    pub fn bit(self) -> u32 {
        self as u32
    }
    /// The error both backends return; `bits` may hold several faults.
    pub fn error(bits: u32) -> Error {
        let mut what = Vec::new();
        if bits & Fault::RowIndex.bit() != 0 {
            what.push("a gather row index is past the end of its data");
        }
        if bits & Fault::ClassIndex.bit() != 0 {
            what.push("a class target is not an integer in 0..outputs");
        }
        Error::internal(format!("backend fault: {}", what.join("; ")))
    }
}

/// The WGSL prelude every shader is compiled with: the activation, loss and fault codes
/// generated from this file (so Rust and WGSL cannot disagree), the optimizer constants, and
/// the helpers every kernel family shares.
pub fn wgsl_prelude() -> String {
    use std::fmt::Write;
    let mut s = String::from("// ---- generated from src/spec.rs: do not edit ----\n");
    for a in Activation::ALL {
        let _ = writeln!(
            s,
            "const ACT_{}: u32 = {}u;",
            a.as_str().to_uppercase(),
            a.code()
        );
    }
    for l in Loss::ALL {
        let _ = writeln!(s, "const LOSS_{}: u32 = {}u;", l.wgsl_name(), l.code());
    }
    for (name, f) in [
        ("ROW_INDEX", Fault::RowIndex),
        ("CLASS_INDEX", Fault::ClassIndex),
    ] {
        let _ = writeln!(s, "const FAULT_{name}: u32 = {}u;", f.bit());
    }
    s.push_str(PRELUDE_HELPERS);
    s.push_str("// ---- end of prelude ----\n");
    s
}

const PRELUDE_HELPERS: &str = r#"
// Threads per workgroup of the 1-D kernels.
const WG: u32 = 256u;

// Large 1-D work is dispatched as a 2-D grid (at most 65535 workgroups per dimension);
// this flattens it back.
fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

fn activate(v: f32, act: u32) -> f32 {
    switch act {
        case ACT_RELU: { return select(v, 0.0, v < 0.0); }
        case ACT_SIGMOID: { return 1.0 / (1.0 + exp(-v)); }
        default: { return v; }
    }
}

// Fixed-order tree reductions in workgroup memory, shared by every kernel that reduces
// (softmax, the losses, the clip norm): `width` threads (a power of two, at most 256) bring one
// value each and every thread gets the total, summed in the same order on every run. Call from
// uniform control flow. The closing barrier lets the caller reuse the tree at once.
var<workgroup> tree_f32: array<f32, 256>;
var<workgroup> tree_vec3: array<vec3<f32>, 256>;

fn tree_sum_f32(lid: u32, width: u32, v: f32) -> f32 {
    tree_f32[lid] = v;
    workgroupBarrier();
    for (var s = width / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            tree_f32[lid] += tree_f32[lid + s];
        }
        workgroupBarrier();
    }
    let total = tree_f32[0];
    workgroupBarrier();
    return total;
}

fn tree_max_f32(lid: u32, width: u32, v: f32) -> f32 {
    tree_f32[lid] = v;
    workgroupBarrier();
    for (var s = width / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            tree_f32[lid] = max(tree_f32[lid], tree_f32[lid + s]);
        }
        workgroupBarrier();
    }
    let total = tree_f32[0];
    workgroupBarrier();
    return total;
}

fn tree_sum_vec3(lid: u32, width: u32, v: vec3<f32>) -> vec3<f32> {
    tree_vec3[lid] = v;
    workgroupBarrier();
    for (var s = width / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            tree_vec3[lid] += tree_vec3[lid + s];
        }
        workgroupBarrier();
    }
    let total = tree_vec3[0];
    workgroupBarrier();
    return total;
}

// act'(z) written through the output y = act(z).
fn act_deriv(y: f32, act: u32) -> f32 {
    switch act {
        case ACT_RELU: { return select(0.0, 1.0, y > 0.0); }
        case ACT_SIGMOID: { return y * (1.0 - y); }
        default: { return 1.0; }
    }
}
"#;
