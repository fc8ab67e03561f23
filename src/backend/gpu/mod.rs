//! The wgpu backend: the `Backend` ops as WGSL compute kernels (`shaders/*.wgsl`).
//!
//! Ops are recorded into one command encoder (consecutive dispatches share one compute pass;
//! wgpu places the barriers between them) and submitted together when the params ring fills,
//! or on `flush`, `read` and `write`. Each op's parameters take their own slot of the
//! ring (a uniform buffer bound with a dynamic offset), filled on the host and uploaded with
//! one `write_buffer` just before the submit, so the ops of one submission never share a slot.
//! Pipelines are built once; bind groups are cached by kernel and backing buffers (views
//! reach their elements through offsets in the params), so steady-state training creates no
//! GPU objects. Content checks (a row or class index out of range) set bits in a fault word
//! that every `read` copies back with its data and returns as an error. Uncaptured wgpu errors and device loss are recorded by
//! callbacks and returned as `Err` from the next `flush`/`read` (and every call after).

pub mod check;
pub mod device;
mod kernels;
pub mod tune;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use device::{AdapterInfoRow, DeviceChoice, list_adapters, select_adapter};
use kernels::{
    GatherParams, Kernel, Kernels, LossParams, MatmulParams, OptimParams, PARAMS_BYTES,
    SoftmaxParams, SumSquaresParams,
};
pub use kernels::{Layout, Variant};
pub use tune::ShapeClass;

use super::{Backend, Buf, Clip, DType, Fault, Gather, STATS_WIDTH, StepParams};
use crate::error::{Error, Result};
use crate::spec::{self, Activation, Loss, Optimizer};

/// Slots in the params ring: ops recorded before a submit is forced.
const RING_SLOTS: u32 = 1024;
/// Threads per workgroup of the element-wise kernels (matches the shaders).
const WG: u64 = 256;
/// A matmul whose 64×64 tiles give fewer workgroups than this runs with 32×32 tiles (four
/// times as many workgroups) on a GPU: a batch of 128 through a 256-wide layer is only 8 big
/// tiles, far too few for the dozens of compute units of a discrete GPU.
const FILL_GROUPS: u64 = 128;
/// Reads up to this size reuse one staging buffer; larger ones get a temporary one.
const STAGING_KEEP: u64 = 16 << 20;

/// The device memory behind one `Buf`. Buffers larger than one storage binding (a data set)
/// are split into chunks of `chunk_elems` elements; only `gather_rows` reads those.
struct Store {
    chunks: Vec<wgpu::Buffer>,
    chunk_elems: usize,
    len: usize,
    dtype: DType,
}

/// Bind groups are keyed by kernel, the backing buffers at bindings 1..=n and the chunk of
/// the first one.
type BindKey = (Kernel, [u32; 6], u32);

/// Reserved ids: small buffers bound where an op's buffer is optional (one read-only, one
/// written, so a dispatch never binds one buffer both ways), and the fault word.
const DUMMY_IN: u32 = 0;
const DUMMY_OUT: u32 = 1;
const FAULT: u32 = 2;

pub struct GpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    kernels: Kernels,
    /// Indexed by `Buf::id` (`None` once freed); ids 0..=2 are reserved (`DUMMY_IN`, …).
    bufs: Vec<Option<Store>>,
    dispatches: u64,
    /// Bytes one storage binding (and one chunk) may hold on this device.
    max_binding: u64,
    max_groups: u32,
    /// A matmul variant forced for every product (tests, `check`, `tune`).
    matmul_force: Option<Variant>,
    /// The variant per shape class, from `wgtrain tune`; other classes take the default.
    matmul_plan: HashMap<ShapeClass, Variant>,
    ring: wgpu::Buffer,
    ring_stride: u64,
    ring_host: Vec<u8>,
    ring_used: u32,
    /// The open compute pass of `encoder`: consecutive ops share it (wgpu still places a
    /// barrier between dispatches that touch the same buffer), which saves a pass per op.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    staging: Option<wgpu::Buffer>,
    /// The first uncaptured error or device loss, reported by the next `read`/`flush`.
    error: Arc<Mutex<Option<String>>>,
    /// Timestamp queries for `tune` (devices with `Features::TIMESTAMP_QUERY`), and whether
    /// the next compute pass begun writes them at its boundaries.
    timer: Option<tune::Timer>,
    timing: bool,
}

fn u32_of(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        Error::gpu(format!(
            "{what} = {v} does not fit the GPU kernels' 32-bit indices"
        ))
    })
}

impl GpuBackend {
    pub fn new(adapter: wgpu::Adapter) -> Result<GpuBackend> {
        Self::build(adapter, None)
    }

    /// Like `new`, but treats `bytes` as the largest storage binding, so tests can force a
    /// data set to be split into chunks.
    pub fn with_max_binding(adapter: wgpu::Adapter, bytes: u64) -> Result<GpuBackend> {
        Self::build(adapter, Some(bytes))
    }

    fn build(adapter: wgpu::Adapter, max_binding: Option<u64>) -> Result<GpuBackend> {
        let info = adapter.get_info();
        // The adapter's own limits: the defaults (128 MiB per binding) waste big GPUs.
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgtrain"),
            required_features: subgroup_feature(&adapter, &info)
                | tune::timestamp_feature(&adapter),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| {
            Error::gpu(format!(
                "cannot open {} ({}): {e}",
                info.name,
                info.backend.to_str()
            ))
        })?;

        // Errors outside an error scope would otherwise panic inside wgpu: keep the first
        // one and hand it to the caller at the next `read` or `flush`.
        let error = Arc::new(Mutex::new(None::<String>));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| record(&sink, e.to_string())));
        let sink = error.clone();
        device.set_device_lost_callback(move |reason, msg| {
            record(&sink, format!("device lost ({reason:?}): {msg}"))
        });

        let kernels = Kernels::new(&device)?;
        let timer = tune::Timer::new(&device);
        let wg_mem = limits.max_compute_workgroup_storage_size;
        if wg_mem < 8192 || limits.max_compute_invocations_per_workgroup < 256 {
            return Err(Error::gpu(format!(
                "{} allows {wg_mem} bytes of workgroup memory and {} invocations per workgroup; \
                 the kernels need 8192 and 256",
                info.name, limits.max_compute_invocations_per_workgroup
            )));
        }
        let mut binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        // Element indices are u32 in the kernels.
        binding = binding.min(u32::MAX as u64);
        if let Some(b) = max_binding {
            binding = binding.min(b);
        }
        // A multiple of 16: a full chunk, rounded up to 16 bytes, still fits one binding.
        let binding = (binding / 16 * 16).max(16);

        let ring_stride = (limits.min_uniform_buffer_offset_alignment as u64).max(PARAMS_BYTES);
        let ring = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgtrain params ring"),
            size: ring_stride * RING_SLOTS as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut gpu = GpuBackend {
            device,
            queue,
            info,
            kernels,
            bufs: Vec::new(),
            max_binding: binding,
            max_groups: limits.max_compute_workgroups_per_dimension,
            matmul_force: None,
            matmul_plan: HashMap::new(),
            ring,
            ring_stride,
            ring_host: vec![0; (ring_stride * RING_SLOTS as u64) as usize],
            ring_used: 0,
            pass: None,
            encoder: None,
            bind_groups: HashMap::new(),
            staging: None,
            error,
            dispatches: 0,
            timer,
            timing: false,
        };
        for _ in [DUMMY_IN, DUMMY_OUT, FAULT] {
            gpu.create_store(1, None, DType::U32)?;
        }
        Ok(gpu)
    }

    /// Bytes one storage binding (and one chunk of a data set) holds on this backend.
    pub fn max_binding_bytes(&self) -> u64 {
        self.max_binding
    }

    fn check_error(&self) -> Result<()> {
        let guard = self.error.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(msg) => Err(Error::gpu(msg.clone())),
            None => Ok(()),
        }
    }

    // ---- buffers ----------------------------------------------------------------------

    fn create_store(&mut self, len: usize, init: Option<&[u8]>, dtype: DType) -> Result<Buf> {
        self.check_error()?;
        let id = u32_of(self.bufs.len(), "buffer count")?;
        u32_of(len, "buffer length")?;
        let chunk_elems = (self.max_binding / 4) as usize;
        let n_chunks = len.div_ceil(chunk_elems).max(1);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let scope2 = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut chunks = Vec::with_capacity(n_chunks);
        for c in 0..n_chunks {
            let lo = c * chunk_elems;
            let elems = len.saturating_sub(lo).min(chunk_elems);
            // A zero-sized binding is invalid: even an empty `Buf` gets 16 bytes. Sizes are
            // rounded up to 16 so that a vec4 binding (reg8v4) reaches every element.
            let size = (elems as u64 * 4).max(4).next_multiple_of(16);
            let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgtrain buf"),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: init.is_some(),
            });
            if let Some(bytes) = init {
                let part = &bytes[lo * 4..(lo + elems) * 4];
                {
                    let mut view = buffer
                        .slice(..)
                        .get_mapped_range_mut()
                        .map_err(|e| Error::gpu(format!("mapping a new buffer: {e}")))?;
                    view.slice(..part.len()).copy_from_slice(part);
                }
                buffer.unmap();
            }
            chunks.push(buffer);
        }
        let validation = pollster::block_on(scope2.pop());
        let oom = pollster::block_on(scope.pop());
        if let Some(e) = validation.or(oom) {
            return Err(Error::gpu(format!(
                "cannot allocate {} bytes: {e}",
                len * 4
            )));
        }
        self.bufs.push(Some(Store {
            chunks,
            chunk_elems,
            len,
            dtype,
        }));
        Ok(Buf {
            id,
            offset: 0,
            len,
            dtype,
        })
    }

    fn store(&self, id: u32) -> Result<&Store> {
        match self.bufs.get(id as usize) {
            Some(Some(s)) if id > FAULT => Ok(s),
            _ => Err(Error::gpu(format!("unknown buffer id {id}"))),
        }
    }

    /// The id to bind for view `b`, which an op binds whole (views through their offsets).
    fn bindable(&self, b: Buf, what: &str) -> Result<u32> {
        let s = self.store(b.id)?;
        if s.chunks.len() > 1 {
            return Err(Error::gpu(format!(
                "{what} needs {} bytes, more than this adapter binds at once \
                 (max_storage_buffer_binding_size {} bytes); use a smaller --batch-size or hidden size",
                s.len * 4,
                self.max_binding
            )));
        }
        u32_of(b.end(), what)?;
        Ok(b.id)
    }

    /// (chunk, element offset in it, elements) of every chunk that view `b` touches.
    fn segments(&self, b: Buf) -> Result<Vec<(wgpu::Buffer, usize, usize)>> {
        let s = self.store(b.id)?;
        let mut out = Vec::new();
        let mut at = b.offset;
        while at < b.end() {
            let c = at / s.chunk_elems;
            let local = at - c * s.chunk_elems;
            let n = (s.chunk_elems - local).min(b.end() - at);
            out.push((s.chunks[c].clone(), local, n));
            at += n;
        }
        Ok(out)
    }

    // ---- recording --------------------------------------------------------------------

    /// Workgroups for `total` independent groups of work, folded into 2-D when one
    /// dimension's limit (65535 on most adapters) is not enough.
    fn grid(&self, total: u64) -> Result<(u32, u32)> {
        let max = self.max_groups.max(1) as u64;
        let x = total.clamp(1, max);
        let y = total.div_ceil(x).max(1);
        if y > max {
            return Err(Error::gpu(format!(
                "{total} workgroups exceed this adapter's dispatch limit; use a smaller --batch-size"
            )));
        }
        Ok((x as u32, y as u32))
    }

    /// Records one dispatch of `k` over the backing buffers `bufs` (bound at 1..=n; `chunk`
    /// selects the chunk of the first) with `params` in a fresh ring slot.
    fn dispatch<P: bytemuck::Pod>(
        &mut self,
        k: Kernel,
        bufs: &[u32],
        chunk: u32,
        params: P,
        groups: (u32, u32),
    ) -> Result<()> {
        if groups.0 > self.max_groups || groups.1 > self.max_groups {
            return Err(Error::gpu(format!(
                "{groups:?} workgroups exceed this adapter's dispatch limit of {} per dimension; \
                 use a smaller --batch-size or hidden size",
                self.max_groups
            )));
        }
        if bufs.len() != k.access().len() {
            return Err(Error::gpu(format!(
                "{}: {} buffers for {} bindings",
                k.spec().1,
                bufs.len(),
                k.access().len()
            )));
        }
        if self.ring_used == RING_SLOTS {
            self.submit()?;
        }
        let slot = self.ring_used;
        self.ring_used += 1;
        let at = (slot as u64 * self.ring_stride) as usize;
        let bytes = bytemuck::bytes_of(&params);
        self.ring_host[at..at + bytes.len()].copy_from_slice(bytes);

        let mut ids = [u32::MAX; 6];
        ids[..bufs.len()].copy_from_slice(bufs);
        let key = (k, ids, chunk);
        if !self.bind_groups.contains_key(&key) {
            let bg = self.bind_group(k, bufs, chunk)?;
            self.bind_groups.insert(key, bg);
        }
        let bg = &self.bind_groups[&key];
        let device = &self.device;
        let encoder = &mut self.encoder;
        let (timer, timing) = (self.timer.as_ref(), &mut self.timing);
        let pass = self.pass.get_or_insert_with(|| {
            let encoder = encoder.get_or_insert_with(|| new_encoder(device));
            // `tune`'s timed passes: timestamps at the pass's boundaries.
            let timestamp_writes = timer
                .filter(|_| std::mem::take(timing))
                .map(tune::Timer::writes);
            encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("wgtrain ops"),
                    timestamp_writes,
                })
                .forget_lifetime()
        });
        let Some(pipeline) = self.kernels.pipeline(k) else {
            return Err(Error::gpu(format!("no pipeline for {k:?} on this device")));
        };
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bg, &[(slot as u64 * self.ring_stride) as u32]);
        pass.dispatch_workgroups(groups.0, groups.1, 1);
        self.dispatches += 1;
        Ok(())
    }

    fn bind_group(&self, k: Kernel, bufs: &[u32], chunk: u32) -> Result<wgpu::BindGroup> {
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.ring,
                offset: 0,
                size: wgpu::BufferSize::new(PARAMS_BYTES),
            }),
        }];
        for (i, &id) in bufs.iter().enumerate() {
            let store = match self.bufs.get(id as usize) {
                Some(Some(s)) => s,
                _ => return Err(Error::gpu(format!("unknown buffer id {id}"))),
            };
            let c = if i == 0 { chunk as usize } else { 0 };
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: store.chunks[c].as_entire_binding(),
            });
        }
        Ok(self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(k.spec().1),
            layout: self.kernels.layout(k),
            entries: &entries,
        }))
    }

    /// The matmul kernel for a product of `layout` over (m, n, k) and its workgroups: the
    /// forced variant, else the tuned one for its shape class, else the default (64×64 tiles,
    /// or 32×32 when those give fewer than `FILL_GROUPS` workgroups). Every variant sums each
    /// output in the same order, so the choice never changes a result.
    fn matmul_kernel(&self, layout: Layout, m: usize, n: usize, k: usize) -> (Kernel, (u32, u32)) {
        let (rows, cols) = match layout {
            Layout::Nt => (m, n),
            Layout::Nn => (m, k),
            Layout::Tn => (n, k),
        };
        let groups = |v: Variant| {
            let (tr, tc) = v.tile();
            (
                groups_of(cols as u64, tc) as u32,
                groups_of(rows as u64, tr) as u32,
            )
        };
        let variant = self
            .matmul_force
            .filter(|&v| self.kernels.has(v))
            .or_else(|| {
                self.matmul_plan
                    .get(&ShapeClass::of(layout, m, n, k))
                    .copied()
                    .filter(|&v| self.kernels.has(v))
            })
            .unwrap_or_else(|| {
                let g = groups(Variant::Tiled64);
                if g.0 as u64 * g.1 as u64 >= FILL_GROUPS {
                    Variant::Tiled64
                } else {
                    Variant::Tiled32
                }
            });
        (Kernel::Matmul(layout, variant), groups(variant))
    }

    /// Forces the matmul tile edge (64 or 32), or `None` for the automatic choice: for tests
    /// and benchmarks that must exercise both kernels.
    pub fn set_matmul_tile(&mut self, tile: Option<u64>) {
        self.matmul_force = tile.map(|t| {
            if t <= 32 {
                Variant::Tiled32
            } else {
                Variant::Tiled64
            }
        });
    }

    /// Forces one matmul variant for every product, or `None` for the plan and defaults.
    pub fn set_matmul_variant(&mut self, v: Option<Variant>) {
        self.matmul_force = v;
    }

    pub fn matmul_variant(&self) -> Option<Variant> {
        self.matmul_force
    }

    /// The matmul variants built for this device (the subgroup one needs subgroups).
    pub fn variants(&self) -> Vec<Variant> {
        Variant::ALL
            .into_iter()
            .filter(|&v| self.kernels.has(v))
            .collect()
    }

    /// The variants to use per shape class (what `tune` found fastest on this adapter).
    pub fn set_matmul_plan(&mut self, plan: HashMap<ShapeClass, Variant>) {
        self.matmul_plan = plan;
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Uploads the ring's used slots, submits the recorded work, and starts a new ring.
    fn submit(&mut self) -> Result<()> {
        self.pass = None; // ends the pass, unlocking the encoder
        if let Some(encoder) = self.encoder.take() {
            let used = self.ring_used as usize * self.ring_stride as usize;
            if used > 0 {
                self.queue
                    .write_buffer(&self.ring, 0, &self.ring_host[..used]);
            }
            self.queue.submit([encoder.finish()]);
        }
        self.ring_used = 0;
        self.check_error()
    }

    /// Copies `elems` elements of `src` from element `at` to the host, and the fault word
    /// with them (one map): submit, map, wait. A raised fault is returned as the error.
    fn read_segment(
        &mut self,
        src: &wgpu::Buffer,
        at: usize,
        elems: usize,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let bytes = elems as u64 * 4;
        let total = bytes + 4;
        let keep = total <= STAGING_KEEP;
        let reuse = keep && self.staging.as_ref().is_some_and(|s| s.size() >= total);
        let staging = if reuse { self.staging.take() } else { None };
        let staging = staging.unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgtrain staging"),
                size: if keep { total.max(4096) } else { total },
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        self.pass = None; // copies are recorded outside compute passes
        let fault = self.fault_buffer()?;
        let device = &self.device;
        let encoder = self.encoder.get_or_insert_with(|| new_encoder(device));
        if bytes > 0 {
            encoder.copy_buffer_to_buffer(src, at as u64 * 4, &staging, 0, bytes);
        }
        encoder.copy_buffer_to_buffer(&fault, 0, &staging, bytes, 4);
        self.submit()?;

        let slice = staging.slice(..total);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::gpu(format!("waiting for the GPU: {e}")))?;
        self.check_error()?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::gpu(format!("reading a buffer back: {e}"))),
            Err(_) => {
                return Err(Error::gpu(
                    "reading a buffer back: the map request was dropped",
                ));
            }
        }
        let faults;
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::gpu(format!("reading a buffer back: {e}")))?;
            out.extend_from_slice(&view[..bytes as usize]);
            let f = &view[bytes as usize..total as usize];
            faults = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
        }
        staging.unmap();
        if keep {
            self.staging = Some(staging);
        }
        if faults != 0 {
            // Reported once, like the CPU's immediate error; later work starts clean.
            self.queue.write_buffer(&fault, 0, &[0; 4]);
            return Err(Fault::error(faults));
        }
        Ok(())
    }

    fn fault_buffer(&self) -> Result<wgpu::Buffer> {
        match self.bufs.get(FAULT as usize) {
            Some(Some(s)) => Ok(s.chunks[0].clone()),
            _ => Err(Error::gpu("the fault word is missing")),
        }
    }

    fn read_view(&mut self, buf: Buf) -> Result<Vec<u8>> {
        self.check_error()?;
        let mut out = Vec::with_capacity(buf.len * 4);
        let segments = self.segments(buf)?;
        if segments.is_empty() {
            let fault = self.fault_buffer()?;
            return self.read_segment(&fault, 0, 0, &mut out).map(|_| out);
        }
        for (chunk, at, n) in segments {
            self.read_segment(&chunk, at, n, &mut out)?;
        }
        Ok(out)
    }

    fn matmul_params(&self, m: usize, n: usize, k: usize, act: u32) -> Result<MatmulParams> {
        Ok(MatmulParams {
            m: u32_of(m, "m")?,
            n: u32_of(n, "n")?,
            k: u32_of(k, "k")?,
            act,
            ..Default::default()
        })
    }
}

/// `Features::SUBGROUP` when the adapter has it and its subgroups fit the subgroup matmul's
/// 64-thread workgroups (every lane must reach every shuffle); else none.
fn subgroup_feature(adapter: &wgpu::Adapter, info: &wgpu::AdapterInfo) -> wgpu::Features {
    let sub = wgpu::Features::SUBGROUP;
    if adapter.features().contains(sub)
        && info.subgroup_max_size <= 64
        && info.subgroup_min_size >= 1
        && std::env::var_os("WGTRAIN_NO_SUBGROUPS").is_none()
    {
        sub
    } else {
        wgpu::Features::empty()
    }
}

fn new_encoder(device: &wgpu::Device) -> wgpu::CommandEncoder {
    device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("wgtrain ops"),
    })
}

fn record(sink: &Mutex<Option<String>>, msg: String) {
    let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        *guard = Some(msg);
    }
}

fn groups_of(elems: u64, per_group: u64) -> u64 {
    elems.div_ceil(per_group)
}

/// Element offset of a view, as the kernels' u32.
fn off(b: Buf) -> u32 {
    // `bindable` checked that b.end() fits a u32.
    b.offset as u32
}

impl Backend for GpuBackend {
    fn describe(&self) -> String {
        format!("{} ({})", self.info.name, self.info.backend.to_str())
    }

    fn limits(&self) -> Option<crate::backend::Limits> {
        Some(device::limits_of(&self.device, self.max_binding))
    }

    fn dispatches(&self) -> u64 {
        self.dispatches
    }

    fn tune(&mut self, sizes: &[usize], batch: usize, mode: tune::Mode) -> Result<Vec<String>> {
        tune::prepare(self, sizes, batch, mode)
    }

    fn alloc(&mut self, len: usize) -> Result<Buf> {
        self.create_store(len, None, DType::F32)
    }

    fn upload(&mut self, data: &[f32]) -> Result<Buf> {
        self.create_store(data.len(), Some(bytemuck::cast_slice(data)), DType::F32)
    }

    fn upload_u32(&mut self, data: &[u32]) -> Result<Buf> {
        self.create_store(data.len(), Some(bytemuck::cast_slice(data)), DType::U32)
    }

    fn backing(&self, id: u32) -> Option<(usize, DType)> {
        self.store(id).ok().map(|s| (s.len, s.dtype))
    }

    fn flush(&mut self) -> Result<()> {
        self.submit()
    }

    fn free_impl(&mut self, buf: Buf) -> Result<()> {
        // Recorded work may still use it: submit first (wgpu keeps a buffer alive until the
        // GPU is done with it once submitted).
        self.submit()?;
        self.bind_groups
            .retain(|(_, ids, _), _| !ids.contains(&buf.id));
        if let Some(s) = self.bufs.get_mut(buf.id as usize).and_then(Option::take) {
            for c in s.chunks {
                c.destroy();
            }
        }
        Ok(())
    }

    fn write_impl(&mut self, buf: Buf, data: &[u32]) -> Result<()> {
        // `write_buffer` lands before the next submit's commands: submit the ops recorded so
        // far first, so that the write is ordered after them as the trait promises.
        self.submit()?;
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let mut at = 0;
        for (chunk, local, n) in self.segments(buf)? {
            self.queue
                .write_buffer(&chunk, local as u64 * 4, &bytes[at * 4..(at + n) * 4]);
            at += n;
        }
        Ok(())
    }

    fn read_impl(&mut self, buf: Buf) -> Result<Vec<f32>> {
        let bytes = self.read_view(buf)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn gather_impl(
        &mut self,
        idx: Buf,
        start: usize,
        count: usize,
        x: Gather,
        y: Option<Gather>,
    ) -> Result<()> {
        let idx_id = self.bindable(idx, "gather index")?;
        let x_dst = self.bindable(x.dst, "gather destination")?;
        let (y_src, y_dst) = match y {
            Some(g) => (
                self.bindable(g.src, "gather targets")?,
                self.bindable(g.dst, "gather target destination")?,
            ),
            None => (DUMMY_IN, DUMMY_OUT),
        };
        let s = self.store(x.src.id)?;
        let (n_chunks, chunk_elems, src_len) = (s.chunks.len(), s.chunk_elems, s.len);
        let y_elems = y.map_or(0, |g| count * g.cols);
        let x_elems = count * x.cols;
        if x_elems + y_elems == 0 {
            return Ok(());
        }
        let mut p = GatherParams {
            count: u32_of(count, "count")?,
            idx_at: u32_of(idx.offset + start, "start")?,
            x_cols: u32_of(x.cols, "cols")?,
            x_rows: u32_of(x.src.len / x.cols, "rows")?,
            x_src_off: u32_of(x.src.offset, "offset")?,
            x_dst_off: off(x.dst),
            ..Default::default()
        };
        if let Some(g) = y {
            p.y_cols = u32_of(g.cols, "cols")?;
            p.y_rows = u32_of(g.src.len / g.cols, "rows")?;
            p.y_src_off = off(g.src);
            p.y_dst_off = off(g.dst);
        }
        u32_of(x_elems + y_elems, "gather count·cols")?;
        let groups = self.grid(groups_of((x_elems + y_elems) as u64, WG))?;
        // One dispatch per chunk of x that the view touches; y rides along in the first.
        let first = x.src.offset / chunk_elems;
        let last = (x.src.end().max(1) - 1) / chunk_elems;
        for c in first..=last.min(n_chunks - 1) {
            p.chunk_start = u32_of(c * chunk_elems, "chunk start")?;
            p.chunk_len = u32_of(s_len_in_chunk(src_len, c, chunk_elems), "chunk length")?;
            let bufs = [x.src.id, idx_id, y_src, x_dst, y_dst, FAULT];
            self.dispatch(Kernel::Gather, &bufs, c as u32, p, groups)?;
            p.y_cols = 0;
        }
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
        let ids = [
            self.bindable(x, "matmul_nt x")?,
            self.bindable(w, "matmul_nt w")?,
            match b {
                Some(b) => self.bindable(b, "matmul_nt bias")?,
                None => DUMMY_IN,
            },
            self.bindable(y, "matmul_nt y")?,
            DUMMY_OUT,
        ];
        if m == 0 || n == 0 {
            return Ok(());
        }
        let p = MatmulParams {
            a_off: off(x),
            b_off: off(w),
            epi_off: b.map_or(0, off),
            c_off: off(y),
            has_epi: b.is_some() as u32,
            ..self.matmul_params(m, n, k, act.code())?
        }
        .with_vec4(Layout::Nt);
        let (kernel, groups) = self.matmul_kernel(Layout::Nt, m, n, k);
        self.dispatch(kernel, &ids, 0, p, groups)
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
        let y = y.filter(|_| act != Activation::Identity);
        let ids = [
            self.bindable(dy, "matmul_nn dy")?,
            self.bindable(w, "matmul_nn w")?,
            match y {
                Some(y) => self.bindable(y, "matmul_nn y")?,
                None => DUMMY_IN,
            },
            self.bindable(dx, "matmul_nn dx")?,
            DUMMY_OUT,
        ];
        if m == 0 || k == 0 {
            return Ok(());
        }
        let p = MatmulParams {
            a_off: off(dy),
            b_off: off(w),
            epi_off: y.map_or(0, off),
            c_off: off(dx),
            has_epi: y.is_some() as u32,
            ..self.matmul_params(m, n, k, act.code())?
        }
        .with_vec4(Layout::Nn);
        let (kernel, groups) = self.matmul_kernel(Layout::Nn, m, n, k);
        self.dispatch(kernel, &ids, 0, p, groups)
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
        let dw_id = self.bindable(dw, "matmul_tn dw")?;
        let db_id = match db {
            Some(b) => self.bindable(b, "matmul_tn db")?,
            None => DUMMY_OUT,
        };
        // dw and db may be views of one gradient slab: bind it once (a buffer bound twice
        // for writing in one dispatch is an aliasing error); db's slot then holds a dummy
        // and the kernel writes db through the same binding at db_off.
        let same = db_id == dw_id;
        let ids = [
            self.bindable(dy, "matmul_tn dy")?,
            self.bindable(x, "matmul_tn x")?,
            DUMMY_IN,
            dw_id,
            if same { DUMMY_OUT } else { db_id },
        ];
        if n == 0 {
            return Ok(());
        }
        let p = MatmulParams {
            a_off: off(dy),
            b_off: off(x),
            c_off: off(dw),
            db_off: db.map_or(0, off),
            has_db: match db {
                None => 0,
                Some(_) if same => 2,
                Some(_) => 1,
            },
            ..self.matmul_params(m, n, k, 0)?
        }
        .with_vec4(Layout::Tn);
        // db needs the workgroups of the first output column even when k = 0.
        let (kernel, mut groups) = self.matmul_kernel(Layout::Tn, m, n, k);
        groups.0 = groups.0.max(1);
        self.dispatch(kernel, &ids, 0, p, groups)
    }

    fn softmax_impl(&mut self, x: Buf, m: usize, n: usize) -> Result<()> {
        let xi = self.bindable(x, "softmax x")?;
        if m == 0 || n == 0 {
            return Ok(());
        }
        let p = SoftmaxParams {
            m: u32_of(m, "m")?,
            n: u32_of(n, "n")?,
            x_off: off(x),
        };
        // One workgroup per row.
        let groups = self.grid(m as u64)?;
        self.dispatch(Kernel::Softmax, &[xi], 0, p, groups)
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
        let ids = [
            self.bindable(out, "loss output")?,
            self.bindable(target, "loss target")?,
            match scale {
                Some(s) => self.bindable(s, "loss scale")?,
                None => DUMMY_IN,
            },
            self.bindable(stats, "loss stats")?,
            FAULT,
            self.bindable(grad, "loss gradient")?,
        ];
        let p = LossParams {
            m: u32_of(m, "m")?,
            n: u32_of(n, "n")?,
            code: loss.code(),
            has_scale: scale.is_some() as u32,
            out_off: off(out),
            tgt_off: off(target),
            scale_off: scale.map_or(0, off),
            grad_off: off(grad),
            stats_at: u32_of(stats.offset + slot, "slot")?,
        };
        self.dispatch(Kernel::LossGrad, &ids, 0, p, (1, 1))
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
        let ids = [
            self.bindable(out, "eval output")?,
            self.bindable(target, "eval target")?,
            match scale {
                Some(s) => self.bindable(s, "eval scale")?,
                None => DUMMY_IN,
            },
            self.bindable(stats, "eval stats")?,
            FAULT,
        ];
        let p = LossParams {
            m: u32_of(m, "m")?,
            n: u32_of(n, "n")?,
            code: classes as u32,
            has_scale: scale.is_some() as u32,
            out_off: off(out),
            tgt_off: off(target),
            scale_off: scale.map_or(0, off),
            grad_off: 0,
            stats_at: u32_of(stats.offset + slot * STATS_WIDTH, "slot")?,
        };
        self.dispatch(Kernel::EvalStats, &ids, 0, p, (1, 1))
    }

    fn sum_squares_impl(&mut self, x: Buf, partials: Buf) -> Result<()> {
        let ids = [
            self.bindable(x, "sum_squares x")?,
            self.bindable(partials, "sum_squares partials")?,
        ];
        let parts = partials.len;
        let p = SumSquaresParams {
            len: u32_of(x.len, "len")?,
            x_off: off(x),
            parts_off: off(partials),
            block: u32_of(x.len.div_ceil(parts).max(1), "block")?,
        };
        // One workgroup per partial: a fixed partition, so a fixed order of additions.
        let groups = (u32_of(parts, "partials")?, 1);
        self.dispatch(Kernel::SumSquares, &ids, 0, p, groups)
    }

    fn optimizer_step_impl(
        &mut self,
        opt: Optimizer,
        param: Buf,
        grad: Buf,
        state: &[Buf],
        decay_len: usize,
        sp: StepParams,
        clip: Option<Clip>,
    ) -> Result<()> {
        let mut ids = vec![
            self.bindable(param, "parameters")?,
            self.bindable(grad, "gradient")?,
            match clip {
                Some(c) => self.bindable(c.partials, "clip partials")?,
                None => DUMMY_IN,
            },
        ];
        for &s in state {
            ids.push(self.bindable(s, "optimizer state")?);
        }
        if param.len == 0 {
            return Ok(());
        }
        let kernel = match opt {
            Optimizer::Sgd => Kernel::SgdStep,
            Optimizer::Momentum => Kernel::MomentumStep,
            Optimizer::Adam => Kernel::AdamStep,
        };
        let p = OptimParams {
            len: u32_of(param.len, "len")?,
            decay_len: u32_of(decay_len, "decay length")?,
            p_off: off(param),
            g_off: off(grad),
            m_off: state.first().map_or(0, |&s| off(s)),
            v_off: state.get(1).map_or(0, |&s| off(s)),
            parts: match clip {
                Some(c) => u32_of(c.partials.len, "partials")?,
                None => 0,
            },
            parts_off: clip.map_or(0, |c| off(c.partials)),
            lr: sp.lr,
            wd: sp.weight_decay,
            c1: sp.bias_correction1,
            c2: sp.bias_correction2,
            beta1: match opt {
                Optimizer::Momentum => spec::MOMENTUM,
                _ => spec::ADAM_BETA1,
            },
            beta2: spec::ADAM_BETA2,
            eps: spec::ADAM_EPS,
            max_norm: clip.map_or(0.0, |c| c.max_norm),
        };
        let groups = self.grid(groups_of(param.len as u64, WG))?;
        self.dispatch(kernel, &ids, 0, p, groups)
    }
}

/// Elements of a `len`-element buffer that fall into chunk `c`.
fn s_len_in_chunk(len: usize, c: usize, chunk_elems: usize) -> usize {
    len.saturating_sub(c * chunk_elems).min(chunk_elems)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wgpu validation error outside any error scope must come back as an `Err` from the
    /// next `flush`/`read`, not as a panic inside wgpu's default handler.
    #[test]
    fn uncaptured_errors_surface_as_results() {
        let Ok(Some(adapter)) = select_adapter(DeviceChoice::Gpu, None) else {
            println!("skipping: no GPU adapter");
            return;
        };
        let mut gpu = match GpuBackend::new(adapter) {
            Ok(g) => g,
            Err(e) => panic!("backend: {e}"),
        };
        assert!(gpu.flush().is_ok());
        // A bind group missing the buffers its layout asks for: invalid.
        let _bad = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("deliberately invalid"),
            layout: gpu.kernels.layout(Kernel::Gather),
            entries: &[],
        });
        let err = gpu
            .flush()
            .expect_err("the validation error must be reported");
        assert!(err.to_string().contains("gpu:"), "{err}");
        let buf = gpu.alloc(4);
        assert!(
            buf.is_err(),
            "later calls keep failing: the device state is unknown"
        );
    }
}
