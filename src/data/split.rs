//! Which rows train and which validate.

use super::dataset::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::spec::Task;

/// `(train, val)` row indices, both sorted ascending.
///
/// - `val_frac` in [0, 1); 0 puts every row in training.
/// - `chronological`: the last `round(frac·rows)` rows, in file order, validate (for series).
/// - classification: stratified, each class gives `round(frac·count)` of its rows to
///   validation, chosen by a shuffle seeded with `Rng::derive(seed, 1)`.
/// - regression: `round(frac·rows)` rows chosen by the same seeded shuffle.
pub fn split_indices(
    ds: &Dataset,
    val_frac: f64,
    seed: u64,
    chronological: bool,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..1.0).contains(&val_frac) {
        return Err(Error::flag(
            "--val-split",
            format!("must be in [0, 1), got {val_frac}"),
        ));
    }
    let rows = ds.rows;
    if val_frac == 0.0 {
        return Ok(((0..rows).collect(), Vec::new()));
    }
    let mut rng = Rng::derive(seed, 1);
    let mut val = Vec::new();
    if chronological {
        let k = count(val_frac, rows);
        val.extend(rows - k.min(rows)..rows);
    } else if ds.schema.task == Task::Classification
        && ds.y.len() == rows
        && !ds.schema.classes.is_empty()
    {
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); ds.schema.classes.len()];
        for (i, &c) in ds.y.iter().enumerate() {
            if let Some(v) = by_class.get_mut(c as usize) {
                v.push(i);
            }
        }
        for mut members in by_class {
            let k = count(val_frac, members.len());
            rng.shuffle(&mut members);
            val.extend_from_slice(&members[..k.min(members.len())]);
        }
    } else {
        let mut perm: Vec<usize> = (0..rows).collect();
        rng.shuffle(&mut perm);
        val.extend_from_slice(&perm[..count(val_frac, rows).min(rows)]);
    }
    val.sort_unstable();
    let train = complement(rows, &val);
    if val.is_empty() || train.is_empty() {
        let which = if val.is_empty() {
            "no validation rows"
        } else {
            "no training rows"
        };
        return Err(Error::flag(
            "--val-split",
            format!("{val_frac} of {rows} rows leaves {which}; use more data or another fraction"),
        ));
    }
    Ok((train, val))
}

/// The course's homework dev split: row `i` is dev when `i % n == 0` (every n-th row, starting
/// with the first), the rest train. Returns `(train, dev)`. `n == 0` means no dev rows.
pub fn every_nth(rows: usize, n: usize) -> (Vec<usize>, Vec<usize>) {
    if n == 0 {
        return ((0..rows).collect(), Vec::new());
    }
    (0..rows).partition(|i| i % n != 0)
}

fn count(frac: f64, n: usize) -> usize {
    (frac * n as f64).round() as usize
}

/// 0..rows without the sorted `taken`.
fn complement(rows: usize, taken: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(rows - taken.len().min(rows));
    let mut t = taken.iter().peekable();
    for i in 0..rows {
        if t.peek() == Some(&&i) {
            t.next();
        } else {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tenth_is_dev() {
        let (train, dev) = every_nth(23, 10);
        assert_eq!(dev, [0, 10, 20]);
        assert_eq!(train.len(), 20);
        assert_eq!(&train[..3], [1, 2, 3]);
        assert_eq!(every_nth(3, 0), (vec![0, 1, 2], vec![]));
    }

    #[test]
    fn complement_skips_taken() {
        assert_eq!(complement(6, &[0, 3, 5]), [1, 2, 4]);
    }
}
