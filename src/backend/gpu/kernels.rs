//! Shader modules and compute pipelines, built once when the backend is created.
//!
//! Every kernel binds the op's parameters as a uniform at binding 0 (a slot of the params
//! ring, chosen by a dynamic offset) and its buffers as read-write storage at bindings
//! 1..=n, so one bind group layout per buffer count serves all kernels.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// The line of matmul.wgsl that sets the output tile, and its replacement for the small-tile
/// build (checked at start-up, so an edit of the shader cannot silently drop the variant).
const TILE_64: &str = "const TILE: u32 = 64u;";
const TILE_32: &str = "const TILE: u32 = 32u;";

/// Bytes of one op's parameters: 16 words, the `Params` struct of every shader.
pub const PARAMS_BYTES: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    GatherRows,
    MatmulNt,
    MatmulNn,
    MatmulTn,
    MatmulNt32,
    MatmulNn32,
    MatmulTn32,
    ActBackward,
    BiasGrad,
    Softmax,
    LossGrad,
    EvalStats,
    SgdStep,
    MomentumStep,
    AdamStep,
    SumSquares,
    ClipScale,
}

impl Kernel {
    /// In declaration order, so that `kernel as usize` indexes the pipelines.
    pub const ALL: [Kernel; 17] = [
        Kernel::GatherRows,
        Kernel::MatmulNt,
        Kernel::MatmulNn,
        Kernel::MatmulTn,
        Kernel::MatmulNt32,
        Kernel::MatmulNn32,
        Kernel::MatmulTn32,
        Kernel::ActBackward,
        Kernel::BiasGrad,
        Kernel::Softmax,
        Kernel::LossGrad,
        Kernel::EvalStats,
        Kernel::SgdStep,
        Kernel::MomentumStep,
        Kernel::AdamStep,
        Kernel::SumSquares,
        Kernel::ClipScale,
    ];

    /// (shader file, entry point, storage buffers bound).
    pub fn spec(self) -> (Shader, &'static str, usize) {
        match self {
            Kernel::GatherRows => (Shader::Gather, "gather_rows", 3),
            Kernel::MatmulNt => (Shader::Matmul, "matmul_nt", 4),
            Kernel::MatmulNn => (Shader::Matmul, "matmul_nn", 4),
            Kernel::MatmulTn => (Shader::Matmul, "matmul_tn", 4),
            Kernel::MatmulNt32 => (Shader::Matmul32, "matmul_nt", 4),
            Kernel::MatmulNn32 => (Shader::Matmul32, "matmul_nn", 4),
            Kernel::MatmulTn32 => (Shader::Matmul32, "matmul_tn", 4),
            Kernel::ActBackward => (Shader::Elementwise, "act_backward", 2),
            Kernel::BiasGrad => (Shader::Reduce, "bias_grad", 2),
            Kernel::Softmax => (Shader::Elementwise, "softmax", 1),
            Kernel::LossGrad => (Shader::Loss, "loss_grad", 5),
            Kernel::EvalStats => (Shader::Loss, "eval_stats", 4),
            Kernel::SgdStep => (Shader::Optim, "optimizer_step_sgd", 2),
            Kernel::MomentumStep => (Shader::Optim, "optimizer_step_momentum", 3),
            Kernel::AdamStep => (Shader::Optim, "optimizer_step_adam", 4),
            Kernel::SumSquares => (Shader::Clip, "sum_squares", 2),
            Kernel::ClipScale => (Shader::Clip, "clip_scale", 2),
        }
    }

    pub fn buffers(self) -> usize {
        self.spec().2
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Matmul,
    /// matmul.wgsl with 32×32 output tiles.
    Matmul32,
    Elementwise,
    Gather,
    Loss,
    Reduce,
    Optim,
    Clip,
}

impl Shader {
    /// In declaration order, so that `shader as usize` indexes the modules.
    const ALL: [Shader; 8] = [
        Shader::Matmul,
        Shader::Matmul32,
        Shader::Elementwise,
        Shader::Gather,
        Shader::Loss,
        Shader::Reduce,
        Shader::Optim,
        Shader::Clip,
    ];

    fn source(self) -> (&'static str, Cow<'static, str>) {
        let matmul = include_str!("../../../shaders/matmul.wgsl");
        let (name, src) = match self {
            Shader::Matmul => ("matmul.wgsl", matmul),
            Shader::Matmul32 => {
                return (
                    "matmul.wgsl (32x32 tiles)",
                    matmul.replace(TILE_64, TILE_32).into(),
                );
            }
            Shader::Elementwise => (
                "elementwise.wgsl",
                include_str!("../../../shaders/elementwise.wgsl"),
            ),
            Shader::Gather => ("gather.wgsl", include_str!("../../../shaders/gather.wgsl")),
            Shader::Loss => ("loss.wgsl", include_str!("../../../shaders/loss.wgsl")),
            Shader::Reduce => ("reduce.wgsl", include_str!("../../../shaders/reduce.wgsl")),
            Shader::Optim => ("optim.wgsl", include_str!("../../../shaders/optim.wgsl")),
            Shader::Clip => ("clip.wgsl", include_str!("../../../shaders/clip.wgsl")),
        };
        (name, src.into())
    }
}

/// The most storage buffers any kernel binds.
const MAX_BUFFERS: usize = 5;

pub struct Kernels {
    /// `layouts[n]`: params uniform + n storage buffers.
    layouts: Vec<wgpu::BindGroupLayout>,
    pipelines: Vec<(Kernel, wgpu::ComputePipeline)>,
}

impl Kernels {
    /// Compiles every shader and builds every pipeline. Shader or pipeline errors are caught
    /// by an error scope and returned, never raised as a panic.
    pub fn new(device: &wgpu::Device) -> Result<Kernels> {
        if !include_str!("../../../shaders/matmul.wgsl").contains(TILE_64) {
            return Err(Error::gpu(format!(
                "matmul.wgsl lacks the line `{TILE_64}`"
            )));
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let built = Self::build(device);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::gpu(format!(
                "building the compute pipelines failed: {e}"
            )));
        }
        Ok(built)
    }

    fn build(device: &wgpu::Device) -> Kernels {
        let layouts: Vec<wgpu::BindGroupLayout> = (0..=MAX_BUFFERS)
            .map(|n| {
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
                entries.extend((1..=n as u32).map(|binding| wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                }));
                device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(&format!("wgtrain params+{n}")),
                    entries: &entries,
                })
            })
            .collect();
        // In `Shader::ALL` order, which is declaration order, so `shader as usize` indexes it.
        let modules: Vec<wgpu::ShaderModule> = Shader::ALL
            .iter()
            .map(|&s| {
                let (name, src) = s.source();
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(name),
                    source: wgpu::ShaderSource::Wgsl(src),
                })
            })
            .collect();
        let pipelines = Kernel::ALL
            .iter()
            .map(|&k| {
                let (shader, entry, n) = k.spec();
                let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(entry),
                    bind_group_layouts: &[Some(&layouts[n])],
                    immediate_size: 0,
                });
                let module = &modules[shader as usize];
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
        Kernels { layouts, pipelines }
    }

    pub fn layout(&self, buffers: usize) -> &wgpu::BindGroupLayout {
        &self.layouts[buffers]
    }

    pub fn pipeline(&self, k: Kernel) -> &wgpu::ComputePipeline {
        // Built for every kernel in `Kernel::ALL`, in that order.
        &self.pipelines[k as usize].1
    }
}
