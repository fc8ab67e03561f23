//! The wgpu backend: the `Backend` ops as WGSL compute kernels (`shaders/*.wgsl`).
//!
//! Ops are recorded into one command encoder (consecutive dispatches share one compute pass;
//! wgpu places the barriers between them) and submitted together when the params ring fills,
//! or on `flush`, `read` and `write`. Each op's parameters take their own slot of the
//! ring (a uniform buffer bound with a dynamic offset), filled on the host and uploaded with
//! one `write_buffer` just before the submit, so the ops of one submission never share a slot.
//! Pipelines are built once; bind groups are cached by kernel and buffers, so steady-state
//! training creates no GPU objects. Uncaptured wgpu errors and device loss are recorded by
//! callbacks and returned as `Err` from the next `flush`/`read` (and every call after).

pub mod check;
pub mod device;
mod kernels;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use device::{AdapterInfoRow, DeviceChoice, list_adapters, select_adapter};
use kernels::{Kernel, Kernels, PARAMS_BYTES};

use super::{Backend, Buf, StepParams};
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
/// Columns per workgroup of bias_grad (matches reduce.wgsl).
const BIAS_COLS: u64 = 32;
/// Reads up to this size reuse one staging buffer; larger ones get a temporary one.
const STAGING_KEEP: u64 = 16 << 20;

/// The device memory behind one `Buf`. Buffers larger than one storage binding (a data set)
/// are split into chunks of `chunk_elems` elements; only `gather_rows` reads those.
struct Store {
    chunks: Vec<wgpu::Buffer>,
    chunk_elems: usize,
    len: usize,
}

/// Bind groups are keyed by kernel, the buffers at bindings 1..=n and the source chunk.
type BindKey = (Kernel, [u32; 5], u32);

pub struct GpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    kernels: Kernels,
    /// Indexed by `Buf::id`; id 0 is a small dummy bound where an op's buffer is optional.
    bufs: Vec<Store>,
    /// Bytes one storage binding (and one chunk) may hold on this device.
    max_binding: u64,
    max_groups: u32,
    /// Output tile edge of the matmuls: `None` picks per product (see `FILL_GROUPS`).
    matmul_tile: Option<u64>,
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
            required_features: wgpu::Features::empty(),
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
        let binding = (binding / 4 * 4).max(4);

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
            matmul_tile: None,
            ring,
            ring_stride,
            ring_host: vec![0; (ring_stride * RING_SLOTS as u64) as usize],
            ring_used: 0,
            pass: None,
            encoder: None,
            bind_groups: HashMap::new(),
            staging: None,
            error,
        };
        gpu.create_store(4, None)?; // id 0: the dummy
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

    fn create_store(&mut self, len: usize, init: Option<&[u8]>) -> Result<Buf> {
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
            // A zero-sized binding is invalid: even an empty `Buf` gets 4 bytes.
            let size = (elems as u64 * 4).max(4);
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
        self.bufs.push(Store {
            chunks,
            chunk_elems,
            len,
        });
        Ok(Buf { id, len })
    }

    fn store(&self, b: Buf) -> Result<&Store> {
        match self.bufs.get(b.id as usize) {
            Some(s) if b.id != 0 && s.len == b.len => Ok(s),
            _ => Err(Error::gpu(format!("unknown buffer {b:?}"))),
        }
    }

    /// Checks that `b` can be bound whole by an op and holds at least `need` elements.
    fn bindable(&self, b: Buf, need: usize, what: &str) -> Result<u32> {
        let s = self.store(b)?;
        if s.chunks.len() > 1 {
            return Err(Error::gpu(format!(
                "{what} needs {} bytes, more than this adapter binds at once \
                 (max_storage_buffer_binding_size {} bytes); use a smaller --batch-size or hidden size",
                s.len * 4,
                self.max_binding
            )));
        }
        if s.len < need {
            return Err(Error::gpu(format!(
                "{what} holds {} elements, the op needs {need}",
                s.len
            )));
        }
        Ok(b.id)
    }

    fn write_bytes(&mut self, buf: Buf, bytes: &[u8]) -> Result<()> {
        // `write_buffer` lands before the next submit's commands: submit the ops recorded so
        // far first, so that the write is ordered after them as the trait promises.
        self.submit()?;
        let s = self.store(buf)?;
        if bytes.len() != s.len * 4 {
            return Err(Error::gpu(format!(
                "write of {} elements to a buffer of {}",
                bytes.len() / 4,
                s.len
            )));
        }
        for (c, chunk) in s.chunks.iter().enumerate() {
            let lo = c * s.chunk_elems * 4;
            let hi = (lo + s.chunk_elems * 4).min(bytes.len());
            if hi > lo {
                self.queue.write_buffer(chunk, 0, &bytes[lo..hi]);
            }
        }
        Ok(())
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

    /// Records one dispatch of `k` over `bufs` (ids, bound at 1..=n; `chunk` selects the
    /// chunk of the first buffer) with `params` in a fresh ring slot.
    fn dispatch(
        &mut self,
        k: Kernel,
        bufs: &[u32],
        chunk: u32,
        params: [u32; 16],
        groups: (u32, u32),
    ) -> Result<()> {
        if groups.0 as u64 > self.max_groups as u64 || groups.1 as u64 > self.max_groups as u64 {
            return Err(Error::gpu(format!(
                "{groups:?} workgroups exceed this adapter's dispatch limit of {} per dimension; \
                 use a smaller --batch-size or hidden size",
                self.max_groups
            )));
        }
        if self.ring_used == RING_SLOTS {
            self.submit()?;
        }
        let slot = self.ring_used;
        self.ring_used += 1;
        let at = (slot as u64 * self.ring_stride) as usize;
        self.ring_host[at..at + PARAMS_BYTES as usize]
            .copy_from_slice(bytemuck::cast_slice(&params));

        let mut ids = [u32::MAX; 5];
        ids[..bufs.len()].copy_from_slice(bufs);
        let key = (k, ids, chunk);
        if !self.bind_groups.contains_key(&key) {
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.ring,
                    offset: 0,
                    size: wgpu::BufferSize::new(PARAMS_BYTES),
                }),
            }];
            for (i, &id) in bufs.iter().enumerate() {
                let store = &self.bufs[id as usize];
                let c = if i == 0 { chunk as usize } else { 0 };
                entries.push(wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: store.chunks[c].as_entire_binding(),
                });
            }
            let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(k.spec().1),
                layout: self.kernels.layout(k.buffers()),
                entries: &entries,
            });
            self.bind_groups.insert(key, bg);
        }
        let bg = &self.bind_groups[&key];
        let device = &self.device;
        let encoder = &mut self.encoder;
        let pass = self.pass.get_or_insert_with(|| {
            let encoder = encoder.get_or_insert_with(|| new_encoder(device));
            encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("wgtrain ops"),
                    timestamp_writes: None,
                })
                .forget_lifetime()
        });
        pass.set_pipeline(self.kernels.pipeline(k));
        pass.set_bind_group(0, bg, &[(slot as u64 * self.ring_stride) as u32]);
        pass.dispatch_workgroups(groups.0, groups.1, 1);
        Ok(())
    }

    /// The matmul kernel (64×64 or 32×32 tiles) and its workgroups for an output of
    /// rows × cols. Both tiles sum every output in the same order, so the choice never
    /// changes a result.
    fn matmul_tiles(
        &self,
        big: Kernel,
        small: Kernel,
        rows: usize,
        cols: usize,
    ) -> (Kernel, (u32, u32)) {
        let groups = |t: u64| {
            (
                groups_of(cols as u64, t) as u32,
                groups_of(rows as u64, t) as u32,
            )
        };
        let g = groups(64);
        let tile = self
            .matmul_tile
            .unwrap_or(if g.0 as u64 * g.1 as u64 >= FILL_GROUPS {
                64
            } else {
                32
            });
        if tile == 64 {
            (big, groups(64))
        } else {
            (small, groups(32))
        }
    }

    /// Forces the matmul tile edge (64 or 32), or `None` for the automatic choice: for tests
    /// and benchmarks that must exercise both kernels.
    pub fn set_matmul_tile(&mut self, tile: Option<u64>) {
        self.matmul_tile = tile.map(|t| if t <= 32 { 32 } else { 64 });
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

    /// Copies `bytes` bytes of `src` to the host: submit, map, wait.
    fn read_chunk(&mut self, src: &wgpu::Buffer, bytes: u64, out: &mut Vec<u8>) -> Result<()> {
        let keep = bytes <= STAGING_KEEP;
        let reuse = keep && self.staging.as_ref().is_some_and(|s| s.size() >= bytes);
        let staging = if reuse { self.staging.take() } else { None };
        let staging = staging.unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgtrain staging"),
                size: if keep { bytes.max(4096) } else { bytes },
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        self.pass = None; // copies are recorded outside compute passes
        let device = &self.device;
        let encoder = self.encoder.get_or_insert_with(|| new_encoder(device));
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        self.submit()?;

        let slice = staging.slice(..bytes);
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
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::gpu(format!("reading a buffer back: {e}")))?;
            out.extend_from_slice(&view);
        }
        staging.unmap();
        if keep {
            self.staging = Some(staging);
        }
        Ok(())
    }

    fn read_bytes(&mut self, buf: Buf) -> Result<Vec<u8>> {
        self.check_error()?;
        let s = self.store(buf)?;
        let chunks: Vec<(wgpu::Buffer, u64)> = s
            .chunks
            .iter()
            .enumerate()
            .map(|(c, b)| {
                (
                    b.clone(),
                    s_len_in_chunk(s.len, c, s.chunk_elems) as u64 * 4,
                )
            })
            .collect();
        let mut out = Vec::with_capacity(buf.len * 4);
        for (b, bytes) in chunks {
            if bytes > 0 {
                self.read_chunk(&b, bytes, &mut out)?;
            }
        }
        if out.is_empty() {
            self.submit()?;
        }
        Ok(out)
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

impl Backend for GpuBackend {
    fn describe(&self) -> String {
        format!("{} ({})", self.info.name, self.info.backend.to_str())
    }

    fn alloc(&mut self, len: usize) -> Result<Buf> {
        self.create_store(len, None)
    }

    fn upload(&mut self, data: &[f32]) -> Result<Buf> {
        self.create_store(data.len(), Some(bytemuck::cast_slice(data)))
    }

    fn upload_u32(&mut self, data: &[u32]) -> Result<Buf> {
        self.create_store(data.len(), Some(bytemuck::cast_slice(data)))
    }

    fn write(&mut self, buf: Buf, data: &[f32]) -> Result<()> {
        self.write_bytes(buf, bytemuck::cast_slice(data))
    }

    fn write_u32(&mut self, buf: Buf, data: &[u32]) -> Result<()> {
        self.write_bytes(buf, bytemuck::cast_slice(data))
    }

    fn read(&mut self, buf: Buf) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(buf)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn flush(&mut self) -> Result<()> {
        self.submit()
    }

    fn gather_rows(
        &mut self,
        src: Buf,
        cols: usize,
        idx: Buf,
        start: usize,
        count: usize,
        dst: Buf,
    ) -> Result<()> {
        let total = count * cols;
        let idx_id = self.bindable(idx, start + count, "gather_rows index")?;
        let dst_id = self.bindable(dst, total, "gather_rows destination")?;
        let s = self.store(src)?;
        let (n_chunks, chunk_elems) = (s.chunks.len(), s.chunk_elems);
        if total == 0 {
            return Ok(());
        }
        let groups = self.grid(groups_of(total as u64, WG))?;
        // One dispatch per chunk; each writes the elements whose source lies in its chunk.
        for c in 0..n_chunks {
            let lo = c * chunk_elems;
            let elems = s_len_in_chunk(src.len, c, chunk_elems);
            let mut p = [0u32; 16];
            p[0] = u32_of(total, "gather_rows count·cols")?;
            p[1] = u32_of(cols, "cols")?;
            p[2] = u32_of(start, "start")?;
            p[3] = u32_of(lo, "chunk start")?;
            p[4] = u32_of(elems, "chunk length")?;
            self.dispatch(
                Kernel::GatherRows,
                &[src.id, idx_id, dst_id],
                c as u32,
                p,
                groups,
            )?;
        }
        Ok(())
    }

    fn matmul_nt(
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
        let xi = self.bindable(x, m * k, "matmul_nt x")?;
        let wi = self.bindable(w, n * k, "matmul_nt w")?;
        let yi = self.bindable(y, m * n, "matmul_nt y")?;
        let bi = match b {
            Some(b) => self.bindable(b, n, "matmul_nt bias")?,
            None => 0,
        };
        if m == 0 || n == 0 {
            return Ok(());
        }
        let mut p = [0u32; 16];
        p[..5].copy_from_slice(&[
            u32_of(m, "m")?,
            u32_of(n, "n")?,
            u32_of(k, "k")?,
            act.code(),
            b.is_some() as u32,
        ]);
        let (kernel, groups) = self.matmul_tiles(Kernel::MatmulNt, Kernel::MatmulNt32, m, n);
        self.dispatch(kernel, &[xi, wi, yi, bi], 0, p, groups)
    }

    fn matmul_nn(&mut self, dy: Buf, w: Buf, dx: Buf, m: usize, n: usize, k: usize) -> Result<()> {
        let a = self.bindable(dy, m * n, "matmul_nn dy")?;
        let b = self.bindable(w, n * k, "matmul_nn w")?;
        let c = self.bindable(dx, m * k, "matmul_nn dx")?;
        if m == 0 || k == 0 {
            return Ok(());
        }
        let mut p = [0u32; 16];
        p[..3].copy_from_slice(&[u32_of(m, "m")?, u32_of(n, "n")?, u32_of(k, "k")?]);
        let (kernel, groups) = self.matmul_tiles(Kernel::MatmulNn, Kernel::MatmulNn32, m, k);
        self.dispatch(kernel, &[a, b, c, 0], 0, p, groups)
    }

    fn matmul_tn(&mut self, dy: Buf, x: Buf, dw: Buf, m: usize, n: usize, k: usize) -> Result<()> {
        let a = self.bindable(dy, m * n, "matmul_tn dy")?;
        let b = self.bindable(x, m * k, "matmul_tn x")?;
        let c = self.bindable(dw, n * k, "matmul_tn dw")?;
        if n == 0 || k == 0 {
            return Ok(());
        }
        let mut p = [0u32; 16];
        p[..3].copy_from_slice(&[u32_of(m, "m")?, u32_of(n, "n")?, u32_of(k, "k")?]);
        let (kernel, groups) = self.matmul_tiles(Kernel::MatmulTn, Kernel::MatmulTn32, n, k);
        self.dispatch(kernel, &[a, b, c, 0], 0, p, groups)
    }

    fn act_backward(&mut self, act: Activation, y: Buf, g: Buf, len: usize) -> Result<()> {
        let yi = self.bindable(y, len, "act_backward y")?;
        let gi = self.bindable(g, len, "act_backward g")?;
        if len == 0 || act == Activation::Identity {
            return Ok(());
        }
        let mut p = [0u32; 16];
        p[0] = u32_of(len, "len")?;
        p[2] = act.code();
        let groups = self.grid(groups_of(len as u64, WG))?;
        self.dispatch(Kernel::ActBackward, &[yi, gi], 0, p, groups)
    }

    fn bias_grad(&mut self, dz: Buf, db: Buf, m: usize, n: usize) -> Result<()> {
        let a = self.bindable(dz, m * n, "bias_grad dz")?;
        let b = self.bindable(db, n, "bias_grad db")?;
        if n == 0 {
            return Ok(());
        }
        let mut p = [0u32; 16];
        p[..2].copy_from_slice(&[u32_of(m, "m")?, u32_of(n, "n")?]);
        let groups = self.grid(groups_of(n as u64, BIAS_COLS))?;
        self.dispatch(Kernel::BiasGrad, &[a, b], 0, p, groups)
    }

    fn sum_squares(&mut self, x: Buf, len: usize, out: Buf, slot: usize) -> Result<()> {
        let xi = self.bindable(x, len, "sum_squares x")?;
        let oi = self.bindable(out, slot + 1, "sum_squares output")?;
        let mut p = [0u32; 16];
        p[..2].copy_from_slice(&[u32_of(len, "len")?, u32_of(slot, "slot")?]);
        // One workgroup: a fixed-order reduction (these are parameter-sized, not data-sized).
        self.dispatch(Kernel::SumSquares, &[xi, oi], 0, p, (1, 1))
    }

    fn clip_scale(
        &mut self,
        x: Buf,
        len: usize,
        partials: Buf,
        count: usize,
        max_norm: f32,
    ) -> Result<()> {
        let xi = self.bindable(x, len, "clip_scale x")?;
        let pi = self.bindable(partials, count, "clip_scale partials")?;
        if len == 0 {
            return Ok(());
        }
        let mut p = [0u32; 16];
        p[0] = u32_of(len, "len")?;
        p[2] = u32_of(count, "count")?;
        p[8] = max_norm.to_bits();
        let groups = self.grid(groups_of(len as u64, WG))?;
        self.dispatch(Kernel::ClipScale, &[xi, pi], 0, p, groups)
    }

    fn softmax(&mut self, x: Buf, m: usize, n: usize) -> Result<()> {
        let xi = self.bindable(x, m * n, "softmax x")?;
        if m == 0 || n == 0 {
            return Ok(());
        }
        let mut p = [0u32; 16];
        p[..2].copy_from_slice(&[u32_of(m, "m")?, u32_of(n, "n")?]);
        // One workgroup per row.
        let groups = self.grid(m as u64)?;
        self.dispatch(Kernel::Softmax, &[xi], 0, p, groups)
    }

    fn loss_grad(
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
        let classes = loss.task() == spec::Task::Classification;
        let o = self.bindable(out, m * n, "loss output")?;
        let t = self.bindable(target, if classes { m } else { m * n }, "loss target")?;
        let s = match scale {
            Some(s) if !classes => self.bindable(s, n, "loss scale")?,
            _ => 0,
        };
        let g = self.bindable(grad, m * n, "loss gradient")?;
        let st = self.bindable(stats, slot + 1, "loss stats")?;
        if n == 0 && m > 0 {
            return Err(Error::gpu("loss_grad over zero outputs"));
        }
        let mut p = [0u32; 16];
        p[..5].copy_from_slice(&[
            u32_of(m, "m")?,
            u32_of(n, "n")?,
            loss.code(),
            u32_of(slot, "slot")?,
            (s != 0) as u32,
        ]);
        self.dispatch(Kernel::LossGrad, &[o, t, s, st, g], 0, p, (1, 1))
    }

    fn eval_stats(
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
        let o = self.bindable(out, m * n, "eval output")?;
        let t = self.bindable(target, if classes { m } else { m * n }, "eval target")?;
        let s = match scale {
            Some(s) if !classes => self.bindable(s, n, "eval scale")?,
            _ => 0,
        };
        let width = super::STATS_WIDTH;
        let st = self.bindable(stats, slot * width + width, "eval stats")?;
        if n == 0 && m > 0 {
            return Err(Error::gpu("eval_stats over zero outputs"));
        }
        let mut p = [0u32; 16];
        p[..5].copy_from_slice(&[
            u32_of(m, "m")?,
            u32_of(n, "n")?,
            classes as u32,
            u32_of(slot, "slot")?,
            (s != 0) as u32,
        ]);
        self.dispatch(Kernel::EvalStats, &[o, t, s, st], 0, p, (1, 1))
    }

    fn optimizer_step(
        &mut self,
        opt: Optimizer,
        param: Buf,
        grad: Buf,
        state: &[Buf],
        len: usize,
        sp: StepParams,
    ) -> Result<()> {
        if state.len() != opt.state_slots() {
            return Err(Error::gpu(format!(
                "{} keeps {} state buffers, got {}",
                opt.as_str(),
                opt.state_slots(),
                state.len()
            )));
        }
        let mut ids = vec![
            self.bindable(param, len, "parameters")?,
            self.bindable(grad, len, "gradient")?,
        ];
        for &s in state {
            ids.push(self.bindable(s, len, "optimizer state")?);
        }
        if len == 0 {
            return Ok(());
        }
        let kernel = match opt {
            Optimizer::Sgd => Kernel::SgdStep,
            Optimizer::Momentum => Kernel::MomentumStep,
            Optimizer::Adam => Kernel::AdamStep,
        };
        let beta1 = match opt {
            Optimizer::Momentum => spec::MOMENTUM,
            _ => spec::ADAM_BETA1,
        };
        let mut p = [0u32; 16];
        p[0] = u32_of(len, "len")?;
        let floats = [
            sp.lr,
            sp.weight_decay,
            sp.bias_correction1,
            sp.bias_correction2,
            beta1,
            spec::ADAM_BETA2,
            spec::ADAM_EPS,
        ];
        for (i, f) in floats.iter().enumerate() {
            p[8 + i] = f.to_bits();
        }
        let groups = self.grid(groups_of(len as u64, WG))?;
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
            layout: gpu.kernels.layout(2),
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
