//! Autotuning of the matmul variants on the user's own adapter: time every variant on the
//! shape classes training uses, verify each against the CPU reference (and against the
//! baseline's bits), and cache the fastest per shape class in a JSON file keyed by adapter,
//! backend, driver and wgtrain version.
//!
//! The clock: timestamp queries at the boundaries of one compute pass holding a batch of
//! products where the device has `Features::TIMESTAMP_QUERY` (the GPU's time alone), else the
//! wall clock around the batch and a read-back. Each cache entry records which.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::GpuBackend;
use super::kernels::{Layout, Variant};
use crate::backend::cpu::CpuBackend;
use crate::backend::{Backend, Buf};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::spec::Activation;

/// Products are grouped by layout and the ⌈log₂⌉ of m, n and k: shapes of one class run
/// best with the same variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShapeClass {
    pub layout: Layout,
    pub m: u8,
    pub n: u8,
    pub k: u8,
}

fn log2_ceil(x: usize) -> u8 {
    (usize::BITS - x.max(1).saturating_sub(1).leading_zeros()) as u8
}

impl ShapeClass {
    pub fn of(layout: Layout, m: usize, n: usize, k: usize) -> ShapeClass {
        ShapeClass {
            layout,
            m: log2_ceil(m),
            n: log2_ceil(n),
            k: log2_ceil(k),
        }
    }

    /// The cache's key, e.g. `nt m8 n7 k6` (m ≤ 2⁸, n ≤ 2⁷, k ≤ 2⁶).
    pub fn key(&self) -> String {
        format!(
            "{} m{} n{} k{}",
            &self.layout.entry()[7..],
            self.m,
            self.n,
            self.k
        )
    }

    pub fn parse(s: &str) -> Option<ShapeClass> {
        let mut it = s.split(' ');
        let layout = match it.next()? {
            "nt" => Layout::Nt,
            "nn" => Layout::Nn,
            "tn" => Layout::Tn,
            _ => return None,
        };
        let mut num = |c: char| it.next()?.strip_prefix(c)?.parse::<u8>().ok();
        let (m, n, k) = (num('m')?, num('n')?, num('k')?);
        Some(ShapeClass { layout, m, n, k })
    }
}

/// The products one training step runs for layer sizes [in, hidden…, out] at batch m:
/// per layer the forward (nt), the weight gradient (tn) and, above the first layer, the input
/// gradient (nn). Duplicates of a class are dropped.
pub fn step_products(sizes: &[usize], m: usize) -> Vec<(ShapeClass, (usize, usize, usize))> {
    let mut out: Vec<(ShapeClass, (usize, usize, usize))> = Vec::new();
    for (l, w) in sizes.windows(2).enumerate() {
        let (k, n) = (w[0], w[1]);
        let mut layouts = vec![Layout::Nt, Layout::Tn];
        if l > 0 {
            layouts.push(Layout::Nn);
        }
        for layout in layouts {
            let class = ShapeClass::of(layout, m, n, k);
            if !out.iter().any(|(c, _)| *c == class) {
                out.push((class, (m, n, k)));
            }
        }
    }
    out
}

/// What one shape class measured: microseconds per product for each variant that passed
/// verification, the fastest, and the clock they were timed with.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub best: String,
    pub shape: [usize; 3],
    pub us: BTreeMap<String, f64>,
    /// `timestamp` or `wall` (`Clock::name`); entries written before timestamps were
    /// measured by the wall clock.
    #[serde(default = "wall_clock")]
    pub clock: String,
}

fn wall_clock() -> String {
    Clock::Wall.name().to_string()
}

/// How `tune` times a batch of products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Timestamp queries at the compute pass's boundaries: the GPU's own time.
    Timestamp,
    /// The host's clock around recording, submitting and a read-back.
    Wall,
}

impl Clock {
    pub fn name(self) -> &'static str {
        match self {
            Clock::Timestamp => "timestamp",
            Clock::Wall => "wall",
        }
    }
}

/// `Features::TIMESTAMP_QUERY` when the adapter offers it and `WGTRAIN_NO_TIMESTAMPS` is not
/// set (the wall clock then times the variants); else none.
pub fn timestamp_feature(adapter: &wgpu::Adapter) -> wgpu::Features {
    let ts = wgpu::Features::TIMESTAMP_QUERY;
    if adapter.features().contains(ts) && std::env::var_os("WGTRAIN_NO_TIMESTAMPS").is_none() {
        ts
    } else {
        wgpu::Features::empty()
    }
}

/// Two timestamps (a pass's beginning and end), their resolve buffer and a mappable copy.
pub struct Timer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
}

impl Timer {
    /// `None` when the device was opened without `Features::TIMESTAMP_QUERY`.
    pub fn new(device: &wgpu::Device) -> Option<Timer> {
        if !device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return None;
        }
        let buffer = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgtrain timestamps"),
                size: 16,
                usage,
                mapped_at_creation: false,
            })
        };
        Some(Timer {
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("wgtrain tune timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            read: buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
        })
    }

    pub fn writes(&self) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        }
    }
}

impl GpuBackend {
    /// The clock `tune` times the variants with on this device.
    pub fn tune_clock(&self) -> Clock {
        if self.timer.is_some() {
            Clock::Timestamp
        } else {
            Clock::Wall
        }
    }

    /// Drops the timestamp queries: `tune` times by the wall clock from now on.
    pub fn disable_timestamps(&mut self) {
        self.timer = None;
    }

    /// Microseconds that the ops `record` records take, by `tune_clock`. With timestamps,
    /// the ops run in one compute pass of their own with a timestamp at each boundary (so
    /// they must fit one params ring); a device whose timestamps do not advance loses its
    /// timer (`None` returned).
    pub fn time_us(
        &mut self,
        record: &mut dyn FnMut(&mut GpuBackend) -> Result<()>,
    ) -> Result<Option<f64>> {
        if self.timer.is_none() {
            let t0 = Instant::now();
            record(self)?;
            let fault = self.fault_buffer()?;
            self.read_segment(&fault, 0, 0, &mut Vec::new())?;
            return Ok(Some(t0.elapsed().as_secs_f64() * 1e6));
        }
        self.submit()?; // earlier ops stay outside the timed pass
        let before = self.dispatches;
        self.timing = true;
        let recorded = record(self);
        self.timing = false;
        recorded?;
        let ops = self.dispatches - before;
        if ops == 0 {
            return Ok(Some(0.0)); // no pass began: nothing to time
        }
        if ops > u64::from(self.ring_used) {
            // A full ring submitted mid-way and split the pass: the timestamps would cover
            // only its first part.
            return Err(Error::internal(format!(
                "tune: {ops} timed ops overflow the params ring"
            )));
        }
        self.pass = None; // ends the timed pass
        let Some(timer) = self.timer.as_ref() else {
            return Err(Error::internal("the timer vanished"));
        };
        let device = &self.device;
        let encoder = self
            .encoder
            .get_or_insert_with(|| super::new_encoder(device));
        encoder.resolve_query_set(&timer.set, 0..2, &timer.resolve, 0);
        encoder.copy_buffer_to_buffer(&timer.resolve, 0, &timer.read, 0, 16);
        let read = timer.read.clone();
        self.submit()?;
        let ticks = read_u64s(&self.device, &read)?;
        self.check_error()?;
        if ticks[1] <= ticks[0] {
            self.timer = None;
            return Ok(None);
        }
        let ns = (ticks[1] - ticks[0]) as f64 * self.queue.get_timestamp_period() as f64;
        Ok(Some(ns / 1e3))
    }
}

/// Maps `buf` (16 bytes) and returns its two u64.
fn read_u64s(device: &wgpu::Device, buf: &wgpu::Buffer) -> Result<[u64; 2]> {
    let slice = buf.slice(..16);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::gpu(format!("waiting for the GPU: {e}")))?;
    match rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Error::gpu(format!("reading timestamps: {e}"))),
        Err(_) => {
            return Err(Error::gpu(
                "reading timestamps: the map request was dropped",
            ));
        }
    }
    let ticks = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::gpu(format!("reading timestamps: {e}")))?;
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&view[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        [word(0), word(1)]
    };
    buf.unmap();
    Ok(ticks)
}

/// The tuning cache: per adapter key (`adapter_key`), per shape class key, an `Entry`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cache {
    pub format: String,
    pub adapters: BTreeMap<String, BTreeMap<String, Entry>>,
}

pub const FORMAT: &str = "wgtrain-tune-1";

/// Adapter name, backend, driver, driver info, wgtrain version and the matmul variants it
/// has: a new driver, a new wgtrain or a new variant (between versions too) tunes again.
pub fn adapter_key(info: &wgpu::AdapterInfo) -> String {
    let variants: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
    format!(
        "{} | {} | {} {} | wgtrain {} | {}",
        info.name,
        info.backend.to_str(),
        info.driver,
        info.driver_info,
        env!("CARGO_PKG_VERSION"),
        variants.join(" ")
    )
}

/// `$WGTRAIN_CACHE_DIR/tune.json`, else the OS cache folder's `wgtrain/tune.json`.
pub fn cache_path() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = env("WGTRAIN_CACHE_DIR") {
        return Some(d.join("tune.json"));
    }
    let base = if cfg!(target_os = "windows") {
        env("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library/Caches"))
    } else {
        env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|h| h.join(".cache")))
    };
    base.map(|b| b.join("wgtrain").join("tune.json"))
}

impl Cache {
    /// The cache at `path`; a missing file is an empty cache, a corrupt one is an empty
    /// cache and a warning.
    pub fn load(path: &Path) -> (Cache, Option<String>) {
        let empty = Cache {
            format: FORMAT.to_string(),
            ..Default::default()
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (empty, None),
            Err(e) => {
                return (
                    empty,
                    Some(format!("{}: {e}; tuning again", path.display())),
                );
            }
        };
        match serde_json::from_str::<Cache>(&text) {
            Ok(c) if c.format == FORMAT => (c, None),
            Ok(c) => (
                empty,
                Some(format!(
                    "{}: format '{}' is not {FORMAT}; ignoring it",
                    path.display(),
                    c.format
                )),
            ),
            Err(e) => (
                empty,
                Some(format!(
                    "{}: corrupt tuning cache ({e}); ignoring it",
                    path.display()
                )),
            ),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| Error::internal(format!("tuning cache: {e}")))?;
        crate::io::write_atomically(path, json.as_bytes())
    }

    /// The variant per shape class this cache holds for one adapter.
    pub fn plan(&self, key: &str) -> HashMap<ShapeClass, Variant> {
        self.adapters
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|(c, e)| Some((ShapeClass::parse(c)?, Variant::parse(&e.best)?)))
            .collect()
    }
}

fn randn(rng: &mut Rng, len: usize) -> Vec<f32> {
    (0..len)
        .map(|_| (rng.normal() * 0.5 + 0.1) as f32)
        .collect()
}

/// Random operands of one product on both backends, and the CPU's result.
struct Trial {
    bufs: [Buf; 5],
    want: Vec<f32>,
    atol: f32,
}

fn trial(gpu: &mut GpuBackend, layout: Layout, (m, n, k): (usize, usize, usize)) -> Result<Trial> {
    let mut rng = Rng::new(0x7e57 ^ (m * 31 + n * 7 + k) as u64);
    let (a_len, b_len, out_len, epi_len) = match layout {
        Layout::Nt => (m * k, n * k, m * n, n),
        Layout::Nn => (m * n, n * k, m * k, m * k),
        Layout::Tn => (m * n, m * k, n * k + n, 0),
    };
    let (a, b, e) = (
        randn(&mut rng, a_len),
        randn(&mut rng, b_len),
        randn(&mut rng, epi_len),
    );
    let mut cpu = CpuBackend::new();
    let want = run(&mut cpu, layout, (m, n, k), [&a, &b, &e], None)?.1;
    let depth = match layout {
        Layout::Nt => k,
        Layout::Nn => n,
        Layout::Tn => m,
    };
    let atol = 4e-6 * (depth.max(1) as f32).sqrt() * 2.0;
    let bufs = [
        gpu.upload(&a)?,
        gpu.upload(&b)?,
        gpu.upload(&e)?,
        gpu.alloc(out_len)?,
        gpu.alloc(1)?,
    ];
    debug_assert_eq!(want.len(), out_len);
    Ok(Trial { bufs, want, atol })
}

/// Records one product (on fresh buffers, or on `bufs`) and returns the buffers and, for
/// fresh ones, the result read back.
fn run(
    be: &mut dyn Backend,
    layout: Layout,
    (m, n, k): (usize, usize, usize),
    data: [&[f32]; 3],
    bufs: Option<[Buf; 5]>,
) -> Result<([Buf; 5], Vec<f32>)> {
    let fresh = bufs.is_none();
    let bufs = match bufs {
        Some(b) => b,
        None => {
            let out_len = match layout {
                Layout::Nt => m * n,
                Layout::Nn => m * k,
                Layout::Tn => n * k + n,
            };
            [
                be.upload(data[0])?,
                be.upload(data[1])?,
                be.upload(data[2])?,
                be.alloc(out_len)?,
                be.alloc(1)?,
            ]
        }
    };
    let [a, b, e, out, _] = bufs;
    match layout {
        Layout::Nt => be.matmul_nt(a, b, Some(e), Activation::Relu, out, m, n, k)?,
        Layout::Nn => be.matmul_nn(a, b, Activation::Sigmoid, Some(e), out, m, n, k)?,
        Layout::Tn => {
            let (dw, db) = (out.view(0, n * k)?, out.view(n * k, n)?);
            be.matmul_tn(a, b, dw, Some(db), m, n, k)?
        }
    }
    let got = if fresh { be.read(out)? } else { Vec::new() };
    Ok((bufs, got))
}

/// Whether `variant` matches the CPU (within the trial's tolerance) and the baseline's bits,
/// word for word, on one product; its first run also warms it up for timing.
fn verify(
    gpu: &mut GpuBackend,
    layout: Layout,
    shape: (usize, usize, usize),
    t: &Trial,
    variant: Variant,
    baseline: &[u32],
) -> Result<bool> {
    gpu.set_matmul_variant(Some(variant));
    let out = t.bufs[3];
    run(gpu, layout, shape, [&[], &[], &[]], Some(t.bufs))?;
    let got = gpu.read(out)?;
    Ok(got
        .iter()
        .zip(&t.want)
        .all(|(g, w)| (g - w).abs() <= t.atol * (1.0 + w.abs()))
        && got.iter().map(|v| v.to_bits()).eq(baseline.iter().copied()))
}

/// Timed batches per variant; the fastest counts (other processes only ever add time).
const ROUNDS: usize = 5;

/// Microseconds per product of one batch of `variant` (`GpuBackend::time_us`); `None` when
/// the timestamps proved unusable (the caller then times the product again by the wall
/// clock).
fn time_batch(
    gpu: &mut GpuBackend,
    layout: Layout,
    shape: (usize, usize, usize),
    t: &Trial,
    variant: Variant,
) -> Result<Option<f64>> {
    gpu.set_matmul_variant(Some(variant));
    let (m, n, k) = shape;
    let flops = 2.0 * (m * n * k) as f64;
    // Enough products per timed batch that the submit and read-back do not dominate.
    let per = ((2e7 / flops.max(1.0)) as usize).clamp(4, 64);
    let mut batch = |g: &mut GpuBackend| {
        for _ in 0..per {
            run(g, layout, shape, [&[], &[], &[]], Some(t.bufs))?;
        }
        Ok(())
    };
    Ok(gpu.time_us(&mut batch)?.map(|us| us / per as f64))
}

/// Times every variant on one product; variants that fail verification drop out (`None`
/// when all do).
pub fn tune_product(
    gpu: &mut GpuBackend,
    layout: Layout,
    shape: (usize, usize, usize),
) -> Result<Option<Entry>> {
    let saved = gpu.matmul_variant();
    let t = trial(gpu, layout, shape)?;
    let mut clock = gpu.tune_clock();
    let mut result = time_variants(gpu, layout, shape, &t);
    if result.is_ok() && gpu.tune_clock() != clock {
        // The timestamps did not advance: all variants again, by the wall clock.
        clock = gpu.tune_clock();
        result = time_variants(gpu, layout, shape, &t);
    }
    gpu.set_matmul_variant(saved);
    for b in t.bufs {
        gpu.free(b)?;
    }
    let us = result?;
    // None passed (the baseline disagrees with the CPU: a broken driver, or wgpu's noop
    // backend): nothing to choose, and nothing worth caching.
    let Some(best) = us
        .iter()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(v, _)| v.clone())
    else {
        return Ok(None);
    };
    Ok(Some(Entry {
        best,
        shape: [shape.0, shape.1, shape.2],
        us,
        clock: clock.name().to_string(),
    }))
}

/// Microseconds per product of every variant that passes verification on trial `t`: the
/// fastest of `ROUNDS` batches, timed round-robin (each round times every variant once), so a
/// burst of load from other processes falls on all variants rather than on one variant's
/// consecutive batches. Stops early, with what it has, when the timestamps fail.
fn time_variants(
    gpu: &mut GpuBackend,
    layout: Layout,
    shape: (usize, usize, usize),
    t: &Trial,
) -> Result<BTreeMap<String, f64>> {
    gpu.set_matmul_variant(Some(Variant::Tiled64));
    run(gpu, layout, shape, [&[], &[], &[]], Some(t.bufs))?;
    let baseline: Vec<u32> = gpu.read(t.bufs[3])?.iter().map(|v| v.to_bits()).collect();
    let mut passed = Vec::new();
    for v in gpu.variants() {
        if verify(gpu, layout, shape, t, v, &baseline)? {
            passed.push(v);
        }
    }
    let mut us: BTreeMap<String, f64> = BTreeMap::new();
    for _ in 0..ROUNDS {
        for &v in &passed {
            let Some(time) = time_batch(gpu, layout, shape, t, v)? else {
                return Ok(us);
            };
            let best = us.entry(v.name().to_string()).or_insert(f64::INFINITY);
            *best = best.min(time);
        }
    }
    Ok(us)
}

/// `--tune`: `Off` uses the defaults; `Auto` uses the cache and tunes missing classes
/// within a small time budget; `Force` tunes every class again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Off,
    Auto,
    Force,
}

/// Time `Auto` may spend tuning missing classes before a run.
const AUTO_BUDGET_S: f64 = 3.0;

/// Loads the plan for a network of `sizes` at `batch` into `gpu`, tuning the shape classes
/// the cache lacks (all of them with `Force`) and saving what was measured. Returns lines
/// for the user (warnings and one line about what was tuned).
pub fn prepare(
    gpu: &mut GpuBackend,
    sizes: &[usize],
    batch: usize,
    mode: Mode,
) -> Result<Vec<String>> {
    prepare_entries(gpu, sizes, batch, mode).map(|(lines, _)| lines)
}

/// What a tuning run measured: (class, entry) per shape class.
pub type Measured = Vec<(ShapeClass, Entry)>;

/// `prepare`, also returning what was measured now.
pub fn prepare_entries(
    gpu: &mut GpuBackend,
    sizes: &[usize],
    batch: usize,
    mode: Mode,
) -> Result<(Vec<String>, Measured)> {
    let mut measured = Vec::new();
    if mode == Mode::Off {
        gpu.set_matmul_plan(HashMap::new());
        return Ok((Vec::new(), measured));
    }
    let mut lines = Vec::new();
    let path = cache_path();
    let (mut cache, warning) = match &path {
        Some(p) => Cache::load(p),
        None => (Cache::default(), None),
    };
    lines.extend(warning);
    cache.format = FORMAT.to_string();
    let key = adapter_key(gpu.adapter_info());
    let t0 = Instant::now();
    let mut tuned = 0;
    let mut skipped = 0;
    for (class, shape) in step_products(sizes, batch) {
        let have = cache
            .adapters
            .get(&key)
            .is_some_and(|m| m.contains_key(&class.key()));
        if have && mode == Mode::Auto {
            continue;
        }
        if mode == Mode::Auto && t0.elapsed().as_secs_f64() > AUTO_BUDGET_S {
            skipped += 1;
            continue;
        }
        match tune_product(gpu, class.layout, shape)? {
            Some(e) => {
                measured.push((class, e.clone()));
                let classes = cache.adapters.entry(key.clone()).or_default();
                classes.insert(class.key(), e);
                tuned += 1;
            }
            None => lines.push(format!(
                "tune: no matmul variant matches the CPU on {} {shape:?}; using the defaults",
                class.key()
            )),
        }
    }
    if tuned > 0 {
        let saved = match &path {
            Some(p) => match cache.save(p) {
                Ok(()) => format!("cached in {}", p.display()),
                Err(e) => format!("not cached: {e}"),
            },
            None => "not cached: no cache folder (set WGTRAIN_CACHE_DIR)".to_string(),
        };
        let clock = match gpu.tune_clock() {
            Clock::Timestamp => "GPU timestamps",
            Clock::Wall => "wall clock",
        };
        lines.push(format!(
            "tune: timed the matmul variants on {tuned} shape class(es) of this network by {clock} in {:.2} s{}; {saved}",
            t0.elapsed().as_secs_f64(),
            if skipped > 0 { format!(" ({skipped} left for later: time budget)") } else { String::new() },
        ));
    }
    gpu.set_matmul_plan(cache.plan(&key));
    Ok((lines, measured))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wgtrain-tune-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn a_corrupt_or_foreign_cache_is_ignored_with_a_warning() {
        let d = temp_dir("corrupt");
        let p = d.join("tune.json");
        assert_eq!(Cache::load(&p).1, None, "a missing cache is no warning");
        std::fs::write(&p, b"{ not json").expect("write");
        let (c, w) = Cache::load(&p);
        assert!(c.adapters.is_empty());
        assert!(w.is_some_and(|w| w.contains("corrupt")), "warns");
        std::fs::write(&p, br#"{"format":"other","adapters":{}}"#).expect("write");
        assert!(Cache::load(&p).1.is_some_and(|w| w.contains("format")));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_saved_cache_loads_back_into_a_plan_per_adapter() {
        let d = temp_dir("roundtrip");
        let p = d.join("sub").join("tune.json");
        let class = ShapeClass::of(Layout::Nn, 256, 100, 100);
        let mut c = Cache {
            format: FORMAT.to_string(),
            ..Default::default()
        };
        let e = Entry {
            best: "reg8".into(),
            shape: [256, 100, 100],
            us: [("reg8".to_string(), 1.5), ("tiled64".to_string(), 2.0)].into(),
            clock: "timestamp".into(),
        };
        c.adapters
            .entry("gpu A".into())
            .or_default()
            .insert(class.key(), e);
        c.save(&p).expect("save");
        let (back, w) = Cache::load(&p);
        assert_eq!((back.clone(), w), (c, None));
        assert_eq!(back.plan("gpu A").get(&class), Some(&Variant::Reg8));
        assert!(back.plan("gpu B").is_empty(), "keyed by adapter");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_step_uses_one_class_per_distinct_product() {
        let p = step_products(&[56, 100, 100, 100, 1], 256);
        let keys: Vec<String> = p.iter().map(|(c, _)| c.key()).collect();
        assert_eq!(
            keys,
            [
                "nt m8 n7 k6",
                "tn m8 n7 k6",
                "nt m8 n7 k7",
                "tn m8 n7 k7",
                "nn m8 n7 k7",
                "nt m8 n0 k7",
                "tn m8 n0 k7",
                "nn m8 n0 k7"
            ]
        );
    }

    #[test]
    fn shape_classes_bucket_by_log2_and_round_trip_through_their_key() {
        let c = ShapeClass::of(Layout::Tn, 256, 100, 56);
        assert_eq!((c.m, c.n, c.k), (8, 7, 6));
        assert_eq!(ShapeClass::of(Layout::Tn, 129, 65, 33), c);
        assert_ne!(ShapeClass::of(Layout::Tn, 257, 100, 56), c);
        assert_eq!(c.key(), "tn m8 n7 k6");
        assert_eq!(ShapeClass::parse(&c.key()), Some(c));
        assert_eq!(ShapeClass::of(Layout::Nt, 1, 1, 0).key(), "nt m0 n0 k0");
        assert_eq!(ShapeClass::parse("xx m1 n2 k3"), None);
    }
}
