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
