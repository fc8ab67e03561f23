//! Shader modules, compute pipelines and the typed parameters of every kernel family, built
//! once when the backend is created.
//!
//! Every kernel binds its parameters as a uniform at binding 0 (a slot of the params ring,
//! chosen by a dynamic offset) and its buffers at bindings 1..=n, read-only where the kernel
//! only reads (`Access`). Buffers are bound whole; views reach their elements through the
//! `*_off` offsets in the parameters. Every shader is compiled after the generated prelude
//! (`spec::wgsl_prelude`).

use std::borrow::Cow;
use std::collections::HashMap;

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};

/// The line of matmul.wgsl that sets the output tile, and its replacement for the small-tile
/// build (checked at start-up, so an edit of the shader cannot silently drop the variant).
const TILE_64: &str = "const TILE: u32 = 64u;";
const TILE_32: &str = "const TILE: u32 = 32u;";

/// Bytes of one params ring slot: the largest parameter struct fits.
pub const PARAMS_BYTES: u64 = 128;

/// `gather`: x (and y) rows through one index buffer (gather.wgsl `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct GatherParams {
    pub count: u32,
    /// idx offset + start: where this batch's positions begin in the index buffer.
    pub idx_at: u32,
    pub x_cols: u32,
    pub x_rows: u32,
    pub x_src_off: u32,
    pub x_dst_off: u32,
    /// Element range of the x chunk bound in this dispatch (in the whole backing buffer).
    pub chunk_start: u32,
    pub chunk_len: u32,
    /// 0 when this dispatch gathers no y.
    pub y_cols: u32,
    pub y_rows: u32,
    pub y_src_off: u32,
    pub y_dst_off: u32,
}

/// The three matmul layouts (matmul.wgsl `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    /// matmul_nt: the activation applied; matmul_nn: the activation differentiated.
    pub act: u32,
    pub a_off: u32,
    pub b_off: u32,
    /// Epilogue input: the bias (nt) or the previous layer's output (nn).
    pub epi_off: u32,
    pub c_off: u32,
    pub db_off: u32,
    /// 1 when `epi` (nt, nn) or `db` (tn) is bound to real data.
    pub has_epi: u32,
    pub has_db: u32,
    /// Bit 0: A, bit 1: B may be staged with aligned vec4 loads (`vec4_operands`).
    pub vec4: u32,
}

impl MatmulParams {
    /// Which operands of this product a vec4 kernel may read 16 bytes at a time: bit 0 for
    /// A, bit 1 for B, when the view's offset, its row stride and its contiguous extent are
    /// all multiples of 4 elements. Then every vec4 a thread loads starts 16-byte aligned and
    /// lies wholly inside the view or wholly past its edge (where the scalar path reads
    /// zeros), so the staged tile holds the same values either way.
    ///   nt: A = x[m,k] (stride k), B = w[n,k] (stride k);
    ///   nn: A = dy[m,n] (stride n), B = w[n,k] (stride k);
    ///   tn: A = dy[m,n] (stride n), B = x[m,k] (stride k).
    pub fn vec4_operands(&self, layout: Layout) -> u32 {
        let a_stride = match layout {
            Layout::Nt => self.k,
            Layout::Nn | Layout::Tn => self.n,
        };
        let a = self.a_off.is_multiple_of(4) && a_stride.is_multiple_of(4);
        let b = self.b_off.is_multiple_of(4) && self.k.is_multiple_of(4);
        u32::from(a) | (u32::from(b) << 1)
    }

    /// These parameters with `vec4` set for `layout`.
    pub fn with_vec4(mut self, layout: Layout) -> MatmulParams {
        self.vec4 = self.vec4_operands(layout);
        self
    }
}

/// softmax (elementwise.wgsl `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct SoftmaxParams {
    pub m: u32,
    pub n: u32,
    pub x_off: u32,
}

/// loss_grad and eval_stats (loss.wgsl `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LossParams {
    pub m: u32,
    pub n: u32,
    /// loss_grad: the loss code; eval_stats: 1 for classes.
    pub code: u32,
    pub has_scale: u32,
    pub out_off: u32,
    pub tgt_off: u32,
    pub scale_off: u32,
    pub grad_off: u32,
    /// Where the sums go (slot included).
    pub stats_at: u32,
}

/// sum_squares (clip.wgsl `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct SumSquaresParams {
    pub len: u32,
    pub x_off: u32,
    pub parts_off: u32,
    /// Elements per partial sum.
    pub block: u32,
}

/// optimizer_step_* (optim.wgsl `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct OptimParams {
    pub len: u32,
    pub decay_len: u32,
    pub p_off: u32,
    pub g_off: u32,
    pub m_off: u32,
    pub v_off: u32,
    /// Partial squared norms to add up for clipping (0 = no clipping).
    pub parts: u32,
    pub parts_off: u32,
    pub lr: f32,
    pub wd: f32,
    /// Adam bias corrections 1/(1 − β₁ᵗ), 1/(1 − β₂ᵗ).
    pub c1: f32,
    pub c2: f32,
    /// Also the momentum coefficient.
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub max_norm: f32,
}

/// How a kernel uses one of its storage bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
}
use Access::{Read as R, Write as W};

/// The three products of a linear layer (entry points `matmul_nt`, `matmul_nn`, `matmul_tn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layout {
    Nt,
    Nn,
    Tn,
}

impl Layout {
    pub const ALL: [Layout; 3] = [Layout::Nt, Layout::Nn, Layout::Tn];
    pub fn entry(self) -> &'static str {
        match self {
            Layout::Nt => "matmul_nt",
            Layout::Nn => "matmul_nn",
            Layout::Tn => "matmul_tn",
        }
    }
}

/// The matmul kernels. Every variant sums each output in the same order, so the choice
/// (by default, by `wgtrain tune`, or forced) never changes a result's bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// The baseline: 64×64 tiles, 4×4 outputs per thread, workgroup-memory staging.
    Tiled64,
    /// The baseline with 32×32 tiles: more workgroups for small outputs.
    Tiled32,
    /// No workgroup memory: 4×4 outputs per thread read straight from global memory.
    Direct,
    /// One output per thread, 16×16 per workgroup: for m ≤ 32.
    Small,
    /// 128×128 tiles, 8×8 outputs per thread, workgroup-memory staging.
    Reg8,
    /// Reg8 staging each operand with 16-byte vec4 global loads where its view is aligned
    /// (`MatmulParams::vec4_operands`), with scalar loads elsewhere.
    Reg8v4,
    /// One row per workgroup, A shared through subgroup shuffles (`Features::SUBGROUP`).
    Subgroup,
    /// Direct with 8×8 outputs per thread: half the loads per FMA, for CPU-like adapters.
    Direct8,
}

impl Variant {
    pub const ALL: [Variant; 8] = [
        Variant::Tiled64,
        Variant::Tiled32,
        Variant::Direct,
        Variant::Small,
        Variant::Reg8,
        Variant::Reg8v4,
        Variant::Subgroup,
        Variant::Direct8,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Variant::Tiled64 => "tiled64",
            Variant::Tiled32 => "tiled32",
            Variant::Direct => "direct",
            Variant::Small => "small",
            Variant::Reg8 => "reg8",
            Variant::Reg8v4 => "reg8v4",
            Variant::Subgroup => "subgroup",
            Variant::Direct8 => "direct8",
        }
    }
    pub fn parse(s: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == s)
    }
    /// Output rows and columns one workgroup covers.
    pub fn tile(self) -> (u64, u64) {
        match self {
            Variant::Tiled64 | Variant::Direct => (64, 64),
            Variant::Tiled32 => (32, 32),
            Variant::Small => (16, 16),
            Variant::Reg8 | Variant::Reg8v4 => (128, 128),
            Variant::Subgroup => (1, 256),
            Variant::Direct8 => (64, 64),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Gather,
    Matmul(Layout, Variant),
    Softmax,
    LossGrad,
    EvalStats,
    SgdStep,
    MomentumStep,
    AdamStep,
    SumSquares,
}

const MATMUL: &[Access] = &[R, R, R, W, W];

impl Kernel {
    /// Every kernel; the subgroup matmuls only when the device has subgroups.
    pub fn all(subgroups: bool) -> Vec<Kernel> {
        let mut v = vec![
            Kernel::Gather,
            Kernel::Softmax,
            Kernel::LossGrad,
            Kernel::EvalStats,
            Kernel::SgdStep,
            Kernel::MomentumStep,
            Kernel::AdamStep,
            Kernel::SumSquares,
        ];
        for var in Variant::ALL {
            if var != Variant::Subgroup || subgroups {
                v.extend(Layout::ALL.map(|l| Kernel::Matmul(l, var)));
            }
        }
        v
    }

    /// (shader file, entry point, storage bindings 1..=n in order).
    pub fn spec(self) -> (Shader, &'static str, &'static [Access]) {
        match self {
            // x_src, idx, y_src, x_dst, y_dst, fault
            Kernel::Gather => (Shader::Gather, "gather", &[R, R, R, W, W, W]),
            // a, b, epi, c, db
            Kernel::Matmul(l, v) => (Shader::Matmul(v), l.entry(), MATMUL),
            Kernel::Softmax => (Shader::Elementwise, "softmax", &[W]),
            // out, tgt, scale, stats, fault, grad
            Kernel::LossGrad => (Shader::Loss, "loss_grad", &[R, R, R, W, W, W]),
            // out, tgt, scale, stats, fault
            Kernel::EvalStats => (Shader::Loss, "eval_stats", &[R, R, R, W, W]),
            // param, grad, parts[, m[, v]]
            Kernel::SgdStep => (Shader::Optim, "optimizer_step_sgd", &[W, R, R]),
            Kernel::MomentumStep => (Shader::Optim, "optimizer_step_momentum", &[W, R, R, W]),
            Kernel::AdamStep => (Shader::Optim, "optimizer_step_adam", &[W, R, R, W, W]),
            // x, parts
            Kernel::SumSquares => (Shader::Clip, "sum_squares", &[R, W]),
        }
    }

    pub fn access(self) -> &'static [Access] {
        self.spec().2
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Matmul(Variant),
    Elementwise,
    Gather,
    Loss,
    Optim,
    Clip,
}

impl Shader {
    fn all(subgroups: bool) -> Vec<Shader> {
        let mut v = vec![
            Shader::Elementwise,
            Shader::Gather,
            Shader::Loss,
            Shader::Optim,
            Shader::Clip,
        ];
        v.extend(
            Variant::ALL
                .into_iter()
                .filter(|&x| x != Variant::Subgroup || subgroups)
                .map(Shader::Matmul),
        );
        v
    }

    fn source(self) -> (&'static str, Cow<'static, str>) {
        let common = include_str!("../../../shaders/matmul_common.wgsl");
        let scalar = include_str!("../../../shaders/matmul_bind_scalar.wgsl");
        let entries = include_str!("../../../shaders/matmul_entries.wgsl");
        let tiled = include_str!("../../../shaders/matmul.wgsl");
        let (name, src): (&str, Cow<str>) = match self {
            Shader::Matmul(v) => {
                // The operands' bindings: vec4 arrays for reg8v4, scalars for the others.
                let bind = match v {
                    Variant::Reg8v4 => include_str!("../../../shaders/matmul_bind_vec4.wgsl"),
                    _ => scalar,
                };
                let body: Cow<str> = match v {
                    Variant::Tiled64 => tiled.into(),
                    Variant::Tiled32 => tiled.replace(TILE_64, TILE_32).into(),
                    Variant::Direct => include_str!("../../../shaders/matmul_direct.wgsl").into(),
                    Variant::Small => include_str!("../../../shaders/matmul_small.wgsl").into(),
                    Variant::Direct8 => include_str!("../../../shaders/matmul_direct8.wgsl").into(),
                    Variant::Reg8 | Variant::Reg8v4 => {
                        include_str!("../../../shaders/matmul_reg8.wgsl").into()
                    }
                    Variant::Subgroup => {
                        let sg = include_str!("../../../shaders/matmul_subgroup.wgsl");
                        return (v.name(), format!("{common}{bind}{sg}").into());
                    }
                };
                return (v.name(), format!("{common}{bind}{body}{entries}").into());
            }
            Shader::Elementwise => (
                "elementwise.wgsl",
                include_str!("../../../shaders/elementwise.wgsl").into(),
            ),
            Shader::Gather => (
                "gather.wgsl",
                include_str!("../../../shaders/gather.wgsl").into(),
            ),
            Shader::Loss => (
                "loss.wgsl",
                include_str!("../../../shaders/loss.wgsl").into(),
            ),
            Shader::Optim => (
                "optim.wgsl",
                include_str!("../../../shaders/optim.wgsl").into(),
            ),
            Shader::Clip => (
                "clip.wgsl",
                include_str!("../../../shaders/clip.wgsl").into(),
            ),
        };
        (name, src)
    }
}

pub struct Kernels {
    /// One layout per access pattern.
    layouts: HashMap<&'static [Access], wgpu::BindGroupLayout>,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
    subgroups: bool,
}

fn layout(device: &wgpu::Device, access: &[Access]) -> wgpu::BindGroupLayout {
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(PARAMS_BYTES),
        },
        count: None,
    }];
    entries.extend(
        access
            .iter()
            .enumerate()
            .map(|(i, a)| wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *a == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }),
    );
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("wgtrain kernel bindings"),
        entries: &entries,
    })
}

impl Kernels {
    /// Compiles every shader and builds every pipeline. Shader or pipeline errors are caught
    /// by an error scope and returned, never raised as a panic.
    pub fn new(device: &wgpu::Device) -> Result<Kernels> {
        let subgroups = device.features().contains(wgpu::Features::SUBGROUP);
        if !include_str!("../../../shaders/matmul.wgsl").contains(TILE_64) {
            return Err(Error::gpu(format!(
                "matmul.wgsl lacks the line `{TILE_64}`"
            )));
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let built = Self::build(device, subgroups);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::gpu(format!(
                "building the compute pipelines failed: {e}"
            )));
        }
        Ok(built)
    }

    fn build(device: &wgpu::Device, subgroups: bool) -> Kernels {
        let mut layouts = HashMap::new();
        for k in Kernel::all(subgroups) {
            layouts
                .entry(k.access())
                .or_insert_with(|| layout(device, k.access()));
        }
        let prelude = crate::spec::wgsl_prelude();
        let modules: HashMap<Shader, wgpu::ShaderModule> = Shader::all(subgroups)
            .into_iter()
            .map(|s| {
                let (name, src) = s.source();
                // naga 30 takes the subgroup builtins with Features::SUBGROUP and refuses
                // WGSL's `enable subgroups;` ("not yet supported"): none is written.
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(name),
                    source: wgpu::ShaderSource::Wgsl(format!("{prelude}{src}").into()),
                });
                (s, module)
            })
            .collect();
        let pipelines = Kernel::all(subgroups)
            .into_iter()
            .map(|k| {
                let (shader, entry, access) = k.spec();
                let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(entry),
                    bind_group_layouts: &[Some(&layouts[access])],
                    immediate_size: 0,
                });
                let module = &modules[&shader];
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&layout),
                    module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                (k, pipeline)
            })
            .collect();
        Kernels {
            layouts,
            pipelines,
            subgroups,
        }
    }

    /// Whether `v` was built for this device.
    pub fn has(&self, v: Variant) -> bool {
        v != Variant::Subgroup || self.subgroups
    }

    pub fn layout(&self, k: Kernel) -> &wgpu::BindGroupLayout {
        // Built for every kernel's access pattern.
        &self.layouts[k.access()]
    }

    /// `None` only for a kernel this device lacks (the subgroup matmuls without subgroups).
    pub fn pipeline(&self, k: Kernel) -> Option<&wgpu::ComputePipeline> {
        self.pipelines.get(&k)
    }
}
