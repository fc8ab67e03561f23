//! Adapter discovery and selection: what `wgtrain devices` lists and what `--device` /
//! `--adapter` pick.

use crate::error::{Error, Result};

/// One adapter as `wgtrain devices` shows it.
#[derive(Clone, Debug)]
pub struct AdapterInfoRow {
    pub index: usize,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    /// The optional features wgtrain uses when offered: the subgroup matmul variant, and GPU
    /// timestamps for the tuner's timing.
    pub subgroups: bool,
    pub timestamps: bool,
    /// Whether `--device auto` would pick this adapter.
    pub auto: bool,
}

/// `--device`: `Auto` uses a hardware GPU when there is one (else the caller falls back to
/// the CPU backend), `Gpu` insists on a GPU adapter (software ones such as lavapipe
/// included), `Cpu` never touches the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Gpu,
    Cpu,
}

impl DeviceChoice {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "gpu" => Ok(DeviceChoice::Gpu),
            "cpu" => Ok(DeviceChoice::Cpu),
            _ => Err(Error::flag(
                "--device",
                format!("'{s}' is not one of auto, gpu, cpu"),
            )),
        }
    }
}

/// wgpu's primary backends (Vulkan, Metal, DX12), or what `WGPU_BACKEND` names, as wgpu's
/// own tools do.
fn backends() -> wgpu::Backends {
    wgpu::Backends::PRIMARY.with_env()
}

/// Every adapter the primary backends offer, in wgpu's enumeration order (the order
/// `--adapter INDEX` refers to).
pub fn enumerate() -> Vec<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends();
    let instance = wgpu::Instance::new(desc);
    pollster::block_on(instance.enumerate_adapters(backends()))
}

/// Preference among device types: a discrete GPU first, then integrated, then virtual; a
/// software rasterizer (lavapipe, SwiftShader, WARP) last.
fn rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Index of the best adapter (first among equals), optionally hardware only.
fn best(adapters: &[wgpu::Adapter], hardware_only: bool) -> Option<usize> {
    adapters
        .iter()
        .enumerate()
        .filter(|(_, a)| !hardware_only || a.get_info().device_type != wgpu::DeviceType::Cpu)
        .min_by_key(|(i, a)| (rank(a.get_info().device_type), *i))
        .map(|(i, _)| i)
}

fn row(index: usize, a: &wgpu::Adapter, auto: bool) -> AdapterInfoRow {
    let info = a.get_info();
    let l = a.limits();
    AdapterInfoRow {
        index,
        name: info.name,
        backend: info.backend.to_str().to_string(),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        max_buffer_size: l.max_buffer_size,
        max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
        max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
        max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
        subgroup_min_size: info.subgroup_min_size,
        subgroup_max_size: info.subgroup_max_size,
        subgroups: a.features().contains(wgpu::Features::SUBGROUP),
        timestamps: a.features().contains(wgpu::Features::TIMESTAMP_QUERY),
        auto,
    }
}

pub fn list_adapters() -> Vec<AdapterInfoRow> {
    let adapters = enumerate();
    let auto = best(&adapters, true);
    adapters
        .iter()
        .enumerate()
        .map(|(i, a)| row(i, a, Some(i) == auto))
        .collect()
}

/// "0: llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)" lines, for error messages.
fn describe_all(adapters: &[wgpu::Adapter]) -> String {
    if adapters.is_empty() {
        return "none found".to_string();
    }
    adapters
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let info = a.get_info();
            format!(
                "{i}: {} ({}, {:?})",
                info.name,
                info.backend.to_str(),
                info.device_type
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The adapter to train on, or `None` when the CPU backend should be used (`Cpu`, or `Auto`
/// with software adapters only). `adapter` is an index into `list_adapters` or a
/// case-insensitive substring of an adapter's name; it overrides the type preference.
pub fn select_adapter(
    choice: DeviceChoice,
    adapter: Option<&str>,
) -> Result<Option<wgpu::Adapter>> {
    if choice == DeviceChoice::Cpu {
        return Ok(None);
    }
    let mut adapters = enumerate();
    if let Some(spec) = adapter {
        let spec = spec.trim();
        let found = match spec.parse::<usize>() {
            Ok(i) if i < adapters.len() => Some(i),
            Ok(_) => None,
            Err(_) => {
                let needle = spec.to_lowercase();
                adapters
                    .iter()
                    .position(|a| a.get_info().name.to_lowercase().contains(&needle))
            }
        };
        return match found {
            Some(i) => Ok(Some(adapters.swap_remove(i))),
            None => Err(Error::flag(
                "--adapter",
                format!(
                    "'{spec}' matches no adapter (adapters: {})",
                    describe_all(&adapters)
                ),
            )),
        };
    }
    match best(&adapters, choice == DeviceChoice::Auto) {
        Some(i) => Ok(Some(adapters.swap_remove(i))),
        None if choice == DeviceChoice::Auto => Ok(None),
        None => Err(Error::gpu(
            "no GPU adapter found (install a Vulkan driver, e.g. mesa-vulkan-drivers for lavapipe)",
        )),
    }
}

/// The allocation limits `device` was created with (the adapter's own, see `GpuBackend::new`),
/// with `binding` the bytes one binding holds on the backend.
pub fn limits_of(device: &wgpu::Device, binding: u64) -> crate::backend::Limits {
    let l = device.limits();
    crate::backend::Limits {
        max_buffer_size: l.max_buffer_size,
        max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
        binding,
    }
}
