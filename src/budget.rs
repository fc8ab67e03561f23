//! Sizes before allocation: what a training run will hold, counted before any of it is
//! allocated, and refused with the numbers when it cannot fit. `--hidden 100000000` used to
//! abort in the allocator after the data was read; now it is a message naming the flag.

use crate::error::{Error, Result};
use crate::spec::Optimizer;

/// The 4-byte values a run holds, by part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// Weights and biases.
    pub params: u128,
    /// Gradients and optimizer state (one slab each, shaped like the parameters).
    pub training: u128,
    /// Activations and their gradients for one batch.
    pub activations: u128,
    /// Training and validation rows (features and targets), on the host and the device.
    pub data: u128,
}

impl Needs {
    /// Counts for layer widths `sizes` ([inputs, hidden…, outputs]), `batch` rows per step,
    /// `rows` data rows with `y_cols` target values each.
    pub fn of(sizes: &[usize], batch: usize, rows: usize, y_cols: usize, opt: Optimizer) -> Needs {
        let w = |x: usize| x as u128;
        let params: u128 = sizes.windows(2).map(|p| w(p[0]) * w(p[1]) + w(p[1])).sum();
        let widths: u128 = sizes.iter().map(|&s| w(s)).sum();
        let row = w(sizes.first().copied().unwrap_or(0)) + w(y_cols);
        Needs {
            params,
            training: params * (1 + opt.state_slots() as u128),
            activations: 2 * w(batch) * widths,
            data: w(rows) * row,
        }
    }

    pub fn bytes(&self) -> u128 {
        4 * (self.params + self.training + self.activations + self.data)
    }
}

/// Human units for a byte count.
pub fn human(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Memory this machine can still give (Linux `MemAvailable`), if known.
pub fn available() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses, naming `--hidden` (and `--batch-size` when activations dominate), a run whose buffers cannot fit in
/// `available` bytes (the host holds the model and the data on every device) or whose single
/// largest buffer exceeds what an allocation can address.
pub fn check(needs: &Needs, available: Option<u128>) -> Result<()> {
    let total = needs.bytes();
    let parts = format!(
        "{} parameters ({}), gradients and optimizer state ({}), activations of one batch ({}), data ({})",
        needs.params,
        human(4 * needs.params),
        human(4 * needs.training),
        human(4 * needs.activations),
        human(4 * needs.data)
    );
    if 4 * needs.params.max(needs.activations).max(needs.data) > isize::MAX as u128 {
        return Err(Error::flag(
            "--hidden",
            format!("this network cannot be addressed: {parts}"),
        ));
    }
    if let Some(avail) = available
        && total > avail
    {
        // Activations grow with both the widths and the batch.
        let flag = if needs.activations > needs.params {
            "--hidden, --batch-size"
        } else {
            "--hidden"
        };
        return Err(Error::flag(
            flag,
            format!(
                "the run needs about {} but {} of memory is available: {parts}",
                human(total),
                human(avail)
            ),
        ));
    }
    Ok(())
}

// ---- the device side --------------------------------------------------------------------
//
// wgpu reports no free device memory, only per-allocation limits: a buffer within them can
// still fail to allocate (the backend then says so, without a panic). What is checked here,
// before any buffer is made, is that every buffer fits those limits.

/// The device buffers of a run, in 4-byte values. The gather op reads the feature rows in
/// chunks of one binding each; every other buffer is bound whole by the ops that use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceNeeds {
    /// The parameter slab; the gradient slab and each optimizer-state slab are as large.
    pub params: u128,
    /// The largest activation buffer (its gradient is as large): `batch` rows × `widest`.
    pub activation: u128,
    pub batch: usize,
    /// Values per row of the widest layer, and the layer (0: the inputs).
    pub widest: usize,
    pub widest_layer: usize,
    /// The largest upload's rows (training or validation set), its targets and its index.
    pub rows: usize,
    pub targets: u128,
    /// The same rows' features: chunked, so only the kernels' 32-bit element index bounds them.
    pub features: u128,
}

impl DeviceNeeds {
    /// Layer widths `sizes`, `batch` rows per step, `rows` rows in the largest upload with
    /// `y_cols` target values each.
    pub fn of(sizes: &[usize], batch: usize, rows: usize, y_cols: usize) -> DeviceNeeds {
        let w = |x: usize| x as u128;
        let (widest_layer, widest) = sizes
            .iter()
            .copied()
            .enumerate()
            .fold((0, 0), |b, (i, s)| if s > b.1 { (i, s) } else { b });
        DeviceNeeds {
            params: sizes.windows(2).map(|p| w(p[0]) * w(p[1]) + w(p[1])).sum(),
            activation: w(batch) * w(widest),
            batch,
            widest,
            widest_layer,
            rows,
            targets: w(rows) * w(y_cols),
            features: w(rows) * w(sizes.first().copied().unwrap_or(0)),
        }
    }
}

/// What the device is asked to do: train (the flags name the sizes) or run a saved model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRun {
    Training,
    Inference,
}

/// The largest batch of `widest`-wide rows one binding of `binding` bytes holds (at least 1).
pub fn batch_within(binding: u64, widest: usize) -> usize {
    let per_row = 4 * widest.max(1) as u64;
    usize::try_from(binding / per_row)
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Refuses, before anything is allocated, a run whose buffers exceed what the device binds
/// (`lim`), with needed against available bytes and the flag that sets the size: `--hidden`
/// for the parameters, `--batch-size` (and `--hidden` when a hidden layer is the widest) for
/// the activations, `DATA` for the rows. A saved model's parameters name `--device`.
pub fn check_device(n: &DeviceNeeds, lim: &crate::backend::Limits, run: DeviceRun) -> Result<()> {
    let binding = lim.binding as u128;
    let limits = format!(
        "one GPU binding holds at most {} (max_storage_buffer_binding_size {}, max_buffer_size {})",
        human(binding),
        human(lim.max_storage_buffer_binding_size as u128),
        human(lim.max_buffer_size as u128)
    );
    let cpu = "or run on the CPU with --device cpu";
    if 4 * n.params > binding {
        let (flag, what) = match run {
            DeviceRun::Training => ("--hidden", "use a smaller --hidden"),
            DeviceRun::Inference => ("--device", "the model is too large for this GPU"),
        };
        return Err(Error::flag(
            flag,
            format!(
                "the {} parameters need {} in one slab (and as much again for gradients and \
                 each optimizer state) but {limits}; {what}, {cpu}",
                n.params,
                human(4 * n.params)
            ),
        ));
    }
    if 4 * n.activation > binding {
        let fit = batch_within(lim.binding, n.widest);
        let flag = if run == DeviceRun::Inference {
            "--device"
        } else if n.widest_layer == 0 {
            "--batch-size"
        } else {
            "--batch-size, --hidden"
        };
        return Err(Error::flag(
            flag,
            format!(
                "a batch of {} rows × {} values (layer {}) needs {} but {limits}; a batch of at \
                 most {fit} rows fits, {cpu}",
                n.batch,
                n.widest,
                n.widest_layer,
                human(4 * n.activation)
            ),
        ));
    }
    let index = n.rows as u128;
    if 4 * n.targets.max(index) > binding || n.features > u32::MAX as u128 {
        let need = if n.features > u32::MAX as u128 {
            format!(
                "{} feature values, more than the GPU kernels' 32-bit indices reach ({})",
                n.features,
                u32::MAX
            )
        } else {
            format!(
                "{} for their targets and row index in one binding but {limits}",
                human(4 * n.targets.max(index))
            )
        };
        return Err(Error::flag(
            "DATA",
            format!("{} rows need {need}; use fewer rows, {cpu}", n.rows),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod device_tests {
    use super::*;
    use crate::backend::Limits;

    fn lim(binding: u64) -> Limits {
        Limits {
            max_buffer_size: 1 << 30,
            max_storage_buffer_binding_size: binding,
            binding,
        }
    }

    #[test]
    fn a_run_within_the_binding_passes() {
        // 784-100-10, batch 200, 60000 rows: 318 KiB of parameters, 700 KiB of activations.
        let n = DeviceNeeds::of(&[784, 100, 10], 200, 60_000, 1);
        assert_eq!(n.params, 784 * 100 + 100 + 100 * 10 + 10);
        assert_eq!(
            (n.activation, n.widest, n.widest_layer),
            (200 * 784, 784, 0)
        );
        assert_eq!((n.targets, n.features), (60_000, 60_000 * 784));
        // The 188 MB feature slab is read in chunks: a 128 MiB binding is enough.
        check_device(&n, &lim(128 << 20), DeviceRun::Training).unwrap();
    }

    #[test]
    fn parameters_beyond_the_binding_name_hidden_with_both_numbers() {
        let n = DeviceNeeds::of(&[10, 1000, 1], 32, 100, 1);
        let e = check_device(&n, &lim(4096), DeviceRun::Training)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--hidden: the 12001 parameters need 46.9 KiB"),
            "{e}"
        );
        assert!(
            e.contains("at most 4.0 KiB (max_storage_buffer_binding_size 4.0 KiB"),
            "{e}"
        );
        // A saved model has no --hidden to change: the way out is the CPU.
        let e = check_device(&n, &lim(4096), DeviceRun::Inference)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--device: ") && e.contains("--device cpu"),
            "{e}"
        );
    }

    #[test]
    fn activations_beyond_the_binding_name_the_batch_and_what_fits() {
        // Inputs widest: only the batch size helps.
        let n = DeviceNeeds::of(&[64, 8, 1], 512, 10_000, 1);
        let e = check_device(&n, &lim(64 << 10), DeviceRun::Training)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--batch-size: a batch of 512 rows × 64 values (layer 0)"),
            "{e}"
        );
        assert!(
            e.contains("needs 128.0 KiB") && e.contains("at most 256 rows fits"),
            "{e}"
        );
        // A hidden layer widest: --hidden helps too.
        let n = DeviceNeeds::of(&[4, 300, 1], 256, 100, 1);
        let e = check_device(&n, &lim(256 << 10), DeviceRun::Training)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--batch-size, --hidden: "), "{e}");
        assert_eq!(batch_within(256 << 10, 300), 218);
        assert_eq!(batch_within(4, 300), 1);
    }

    #[test]
    fn rows_beyond_the_binding_or_the_index_name_the_data() {
        // 2000 rows × 3 targets: 23.4 KiB bound whole by the gather op.
        let n = DeviceNeeds::of(&[2, 4, 3], 8, 2000, 3);
        let e = check_device(&n, &lim(16 << 10), DeviceRun::Training)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("DATA: 2000 rows need 23.4 KiB"), "{e}");
        // Features are chunked: 2^32 values are past the kernels' indices even so.
        let n = DeviceNeeds::of(&[1 << 12, 1, 1], 1, 1 << 20, 1);
        let e = check_device(&n, &lim(1 << 30), DeviceRun::Inference)
            .unwrap_err()
            .to_string();
        assert!(e.contains("32-bit indices"), "{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_a_hand_count() {
        // 784-100-10 with Adam, batch 200, 60000 rows of 784 features and one label.
        let n = Needs::of(&[784, 100, 10], 200, 60_000, 1, Optimizer::Adam);
        assert_eq!(n.params, 784 * 100 + 100 + 100 * 10 + 10);
        assert_eq!(n.training, 3 * n.params);
        assert_eq!(n.activations, 2 * 200 * (784 + 100 + 10));
        assert_eq!(n.data, 60_000 * 785);
        check(&n, Some(1 << 30)).unwrap();
    }

    #[test]
    fn a_huge_network_is_refused_with_the_numbers() {
        let n = Needs::of(&[784, 100_000_000, 10], 32, 1000, 1, Optimizer::Adam);
        let e = check(&n, Some(24 << 30)).unwrap_err().to_string();
        assert!(e.starts_with("--hidden: the run needs about"), "{e}");
        assert!(e.contains("TiB") && e.contains("24.0 GiB"), "{e}");
        let n = Needs::of(&[10, usize::MAX / 2, 1], 1, 1, 1, Optimizer::Sgd);
        let e = check(&n, None).unwrap_err().to_string();
        assert!(e.contains("cannot be addressed"), "{e}");
        let n = Needs::of(&[10, 10, 1], 1 << 40, 100, 1, Optimizer::Sgd);
        let e = check(&n, Some(1 << 34)).unwrap_err().to_string();
        assert!(e.starts_with("--hidden, --batch-size: "), "{e}");
    }

    #[test]
    fn nothing_grows_with_epochs() {
        // The count has no epoch term at all: the same network for 1 or 10^12 epochs.
        let a = Needs::of(&[56, 100, 100, 100, 1], 256, 10_000, 1, Optimizer::Adam);
        assert!(a.bytes() < 10 << 20, "{}", human(a.bytes()));
    }
}
