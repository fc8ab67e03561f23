//! Honest validation: time-ordered and grouped splits, and cross-validation folds.
//!
//! Rows that are near copies of each other (the homework's sliding 3-day windows of one state)
//! must not sit on both sides of a split, or the validation score measures memory. Groups
//! (`--group COLS`: rows with equal values in those columns) and file order (`--val-last F`)
//! keep them apart:
//! - [`val_last`]: the last F of the rows, or with groups the last F of each group's rows;
//! - [`group_split`]: whole groups to validation (scikit-learn's `GroupShuffleSplit`);
//! - [`kfold`]: K folds, stratified for classes (`StratifiedKFold`) or grouped (`GroupKFold`).
//!
//! Every function returns sorted row indices and refuses splits that leave a side empty.

use std::collections::HashMap;
use std::hash::Hash;

use super::dataset::Dataset;
use super::table::Table;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::spec::Task;

/// The group of every record of `t`: records with equal text in all of `cols` share one.
pub fn group_keys(t: &Table, cols: &[usize]) -> Vec<usize> {
    group_ids(t.records.iter().map(|rec| {
        cols.iter()
            .map(|&c| rec.get(c).unwrap_or(""))
            .collect::<Vec<_>>()
    }))
}

/// How the validation rows of one training run are chosen.
#[derive(Clone, Copy, Debug)]
pub struct Holdout<'a> {
    /// `--val-split`: a seeded random fraction (whole groups with `groups`).
    pub val_split: f64,
    /// `--val-last`: the last fraction of the rows (of each group's rows with `groups`).
    pub val_last: Option<f64>,
    /// `--group`: a group id per row.
    pub groups: Option<&'a [usize]>,
    pub seed: u64,
    /// Series mode: `--val-split` takes the last rows instead of a random sample.
    pub chronological: bool,
}

/// `(train, val)` rows of `ds` as `h` asks; `val` is empty when `--val-split 0` and nothing
/// else asks for validation rows.
pub fn holdout(ds: &Dataset, h: &Holdout) -> Result<(Vec<usize>, Vec<usize>)> {
    match (h.val_last, h.groups) {
        (Some(f), g) => val_last(ds.rows, f, g),
        (None, Some(_)) if h.val_split == 0.0 => Ok(((0..ds.rows).collect(), Vec::new())),
        (None, Some(g)) => group_split(g, h.val_split, h.seed),
        (None, None) => super::split_indices(ds, h.val_split, h.seed, h.chronological),
    }
}

/// The `--cv` fold of every row of `ds`: grouped with `groups`, else stratified for classes,
/// else shuffled rows.
pub fn cv_folds(ds: &Dataset, k: usize, seed: u64, groups: Option<&[usize]>) -> Result<Vec<usize>> {
    if let Some(g) = groups {
        return kfold(ds.rows, k, seed, FoldBy::Groups(g));
    }
    if ds.schema.task == Task::Classification && ds.y.len() == ds.rows {
        let y: Vec<usize> = ds.y.iter().map(|&c| c as usize).collect();
        return kfold(ds.rows, k, seed, FoldBy::Classes(&y));
    }
    kfold(ds.rows, k, seed, FoldBy::Rows)
}

/// A group id per row (0, 1, … in order of first appearance) from a key per row.
pub fn group_ids<K: Eq + Hash>(keys: impl IntoIterator<Item = K>) -> Vec<usize> {
    let mut seen: HashMap<K, usize> = HashMap::new();
    keys.into_iter()
        .map(|k| {
            let next = seen.len();
            *seen.entry(k).or_insert(next)
        })
        .collect()
}

/// Group ids renumbered 0.. in order of first appearance, whatever ids the caller used.
fn dense(groups: &[usize]) -> Vec<usize> {
    group_ids(groups.iter().copied())
}

/// The number of groups in dense ids.
fn n_groups(groups: &[usize]) -> usize {
    groups.iter().max().map_or(0, |&g| g + 1)
}

/// `(train, val)`: the last `round(frac·n)` rows in file order, or with `groups` the last
/// `round(frac·n_g)` rows of each group (its own file order), so every group is seen in
/// training and validated on its future.
pub fn val_last(
    rows: usize,
    frac: f64,
    groups: Option<&[usize]>,
) -> Result<(Vec<usize>, Vec<usize>)> {
    check_frac("--val-last", frac)?;
    let mut val = Vec::new();
    match groups {
        None => {
            let k = count(frac, rows);
            val.extend(rows - k.min(rows)..rows);
        }
        Some(g) => {
            let g = &dense(g);
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_groups(g)];
            for (i, &gi) in g.iter().enumerate() {
                members[gi].push(i);
            }
            for m in members {
                let k = count(frac, m.len()).min(m.len());
                val.extend_from_slice(&m[m.len() - k..]);
            }
            val.sort_unstable();
        }
    }
    finish("--val-last", frac, rows, val)
}

/// `(train, val)` with whole groups in validation: `round(frac·G)` of the `G` groups (at least
/// one, at most G−1), chosen by a shuffle seeded with `Rng::derive(seed, 1)`.
pub fn group_split(groups: &[usize], frac: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    check_frac("--val-split", frac)?;
    let groups = &dense(groups);
    let g = n_groups(groups);
    if g < 2 {
        return Err(Error::flag(
            "--group",
            format!("found {g} group(s); a grouped split needs at least 2"),
        ));
    }
    let mut order: Vec<usize> = (0..g).collect();
    Rng::derive(seed, 1).shuffle(&mut order);
    let take = count(frac, g).clamp(1, g - 1);
    let mut is_val = vec![false; g];
    for &gi in &order[..take] {
        is_val[gi] = true;
    }
    let val: Vec<usize> = (0..groups.len()).filter(|&i| is_val[groups[i]]).collect();
    finish("--val-split", frac, groups.len(), val)
}

/// How K-fold assigns rows.
#[derive(Clone, Copy, Debug)]
pub enum FoldBy<'a> {
    /// Shuffled rows cut into K nearly equal chunks (`KFold(shuffle=True)`).
    Rows,
    /// Per class, its shuffled rows dealt round the folds, so each fold keeps the class mix
    /// (`StratifiedKFold`). The class id per row.
    Classes(&'a [usize]),
    /// Whole groups, largest first, each to the fold with the fewest rows so far
    /// (`GroupKFold`); groups of equal size in seeded order. The group id per row.
    Groups(&'a [usize]),
}

/// The fold (0..k) of every row.
pub fn kfold(rows: usize, k: usize, seed: u64, by: FoldBy) -> Result<Vec<usize>> {
    if k < 2 {
        return Err(Error::flag(
            "--cv",
            format!("needs at least 2 folds, got {k}"),
        ));
    }
    if k > rows {
        return Err(Error::flag(
            "--cv",
            format!("{k} folds need at least {k} rows; the data has {rows}"),
        ));
    }
    let mut rng = Rng::derive(seed, 2);
    let mut fold = vec![0usize; rows];
    match by {
        FoldBy::Rows => {
            let mut perm: Vec<usize> = (0..rows).collect();
            rng.shuffle(&mut perm);
            // The first rows % k folds get one row more, as KFold sizes them.
            let (base, extra) = (rows / k, rows % k);
            let mut at = 0;
            for (f, chunk) in (0..k).map(|f| (f, base + usize::from(f < extra))) {
                for &r in &perm[at..at + chunk] {
                    fold[r] = f;
                }
                at += chunk;
            }
        }
        FoldBy::Classes(y) => {
            let mut members: Vec<Vec<usize>> =
                vec![Vec::new(); y.iter().max().map_or(0, |&c| c + 1)];
            for (i, &c) in y.iter().enumerate() {
                members[c].push(i);
            }
            // Continue dealing where the previous class stopped, so fold sizes stay within one.
            let mut next = 0;
            for mut m in members {
                rng.shuffle(&mut m);
                for r in m {
                    fold[r] = next;
                    next = (next + 1) % k;
                }
            }
        }
        FoldBy::Groups(g) => {
            let g = &dense(g);
            let ng = n_groups(g);
            if k > ng {
                return Err(Error::flag(
                    "--cv",
                    format!("{k} folds need at least {k} groups; --group found {ng}"),
                ));
            }
            let mut size = vec![0usize; ng];
            for &gi in g {
                size[gi] += 1;
            }
            let mut order: Vec<usize> = (0..ng).collect();
            rng.shuffle(&mut order);
            order.sort_by(|&a, &b| size[b].cmp(&size[a]));
            let mut load = vec![0usize; k];
            let mut fold_of_group = vec![0usize; ng];
            for gi in order {
                let f = (0..k).min_by_key(|&f| (load[f], f)).unwrap_or(0);
                load[f] += size[gi];
                fold_of_group[gi] = f;
            }
            for (i, &gi) in g.iter().enumerate() {
                fold[i] = fold_of_group[gi];
            }
        }
    }
    Ok(fold)
}

/// `(train, val)` for fold `f`: the rows of that fold validate, the rest train.
pub fn fold_split(fold: &[usize], f: usize) -> (Vec<usize>, Vec<usize>) {
    (0..fold.len()).partition(|&i| fold[i] != f)
}

fn check_frac(flag: &str, frac: f64) -> Result<()> {
    if frac > 0.0 && frac < 1.0 {
        Ok(())
    } else {
        Err(Error::flag(flag, format!("must be in (0, 1), got {frac}")))
    }
}

fn count(frac: f64, n: usize) -> usize {
    (frac * n as f64).round() as usize
}

/// Sort-checked `(train, val)`, refusing an empty side.
fn finish(flag: &str, frac: f64, rows: usize, val: Vec<usize>) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut is_val = vec![false; rows];
    for &v in &val {
        is_val[v] = true;
    }
    let train: Vec<usize> = (0..rows).filter(|&i| !is_val[i]).collect();
    if val.is_empty() || train.is_empty() {
        let which = if val.is_empty() {
            "no validation rows"
        } else {
            "no training rows"
        };
        return Err(Error::flag(
            flag,
            format!("{frac} of {rows} rows leaves {which}; use more data or another fraction"),
        ));
    }
    Ok((train, val))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_in_order_of_first_appearance() {
        assert_eq!(group_ids(["b", "a", "b", "c", "a"]), [0, 1, 0, 2, 1]);
    }

    #[test]
    fn val_last_takes_the_tail_of_the_file_or_of_each_group() {
        let (train, val) = val_last(10, 0.3, None).unwrap();
        assert_eq!(val, [7, 8, 9]);
        assert_eq!(train, [0, 1, 2, 3, 4, 5, 6]);
        // Two interleaved groups of 5 rows: the last 2 of each (round(0.3·5) = 2).
        let g = group_ids([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        let (train, val) = val_last(10, 0.3, Some(&g)).unwrap();
        assert_eq!(val, [6, 7, 8, 9]);
        assert_eq!(train, [0, 1, 2, 3, 4, 5]);
        // Groups in blocks, of unequal size: 4 rows and 6 rows → last 1 and last 2.
        let g = group_ids([5, 5, 5, 5, 9, 9, 9, 9, 9, 9]);
        let (_, val) = val_last(10, 0.25, Some(&g)).unwrap();
        assert_eq!(val, [3, 8, 9]);
    }

    #[test]
    fn splits_refuse_an_empty_side_naming_the_flag() {
        let e = val_last(3, 0.1, None).unwrap_err().to_string();
        assert!(
            e.starts_with("--val-last:") && e.contains("no validation rows"),
            "{e}"
        );
        assert!(val_last(3, 1.0, None).is_err());
        let e = group_split(&[0, 0, 0], 0.5, 1).unwrap_err().to_string();
        assert!(e.starts_with("--group:"), "{e}");
    }

    #[test]
    fn group_split_moves_whole_groups() {
        let g: Vec<usize> = (0..60).map(|i| (i * 7) % 10).collect();
        for seed in 0..5 {
            let (train, val) = group_split(&g, 0.3, seed).unwrap();
            let vg: std::collections::BTreeSet<usize> = val.iter().map(|&i| g[i]).collect();
            assert_eq!(vg.len(), 3, "round(0.3·10) groups validate");
            assert!(
                train.iter().all(|&i| !vg.contains(&g[i])),
                "a group on both sides"
            );
            assert_eq!(train.len() + val.len(), 60);
        }
        assert_eq!(
            group_split(&g, 0.3, 4).unwrap(),
            group_split(&g, 0.3, 4).unwrap()
        );
        assert_ne!(
            group_split(&g, 0.3, 4).unwrap(),
            group_split(&g, 0.3, 5).unwrap()
        );
    }

    #[test]
    fn kfold_rows_sizes_like_sklearn_and_covers_each_row_once() {
        let fold = kfold(23, 5, 7, FoldBy::Rows).unwrap();
        let mut sizes = [0; 5];
        for &f in &fold {
            sizes[f] += 1;
        }
        assert_eq!(sizes, [5, 5, 5, 4, 4]);
        assert_ne!(
            fold,
            kfold(23, 5, 8, FoldBy::Rows).unwrap(),
            "the seed shuffles"
        );
        let (train, val) = fold_split(&fold, 2);
        assert_eq!((train.len(), val.len()), (18, 5));
    }

    #[test]
    fn stratified_folds_keep_the_class_mix() {
        // 30 of class 0, 12 of class 1, 6 of class 2, interleaved irregularly.
        let mut y = vec![0usize; 30];
        y.extend([1; 12]);
        y.extend([2; 6]);
        Rng::derive(3, 9).shuffle(&mut y);
        let fold = kfold(y.len(), 3, 11, FoldBy::Classes(&y)).unwrap();
        for f in 0..3 {
            let per: Vec<usize> = (0..3)
                .map(|c| (0..y.len()).filter(|&i| fold[i] == f && y[i] == c).count())
                .collect();
            assert_eq!(per, [10, 4, 2], "fold {f}");
        }
    }

    #[test]
    fn grouped_folds_never_split_a_group() {
        let g: Vec<usize> = (0..97).map(|i| (i * 7 + i / 10) % 13).collect();
        let fold = kfold(g.len(), 4, 1, FoldBy::Groups(&g)).unwrap();
        for gi in 0..13 {
            let fs: std::collections::BTreeSet<usize> = (0..g.len())
                .filter(|&i| g[i] == gi)
                .map(|i| fold[i])
                .collect();
            assert!(fs.len() <= 1, "group {gi} in folds {fs:?}");
        }
        let mut sizes = [0usize; 4];
        for &f in &fold {
            sizes[f] += 1;
        }
        assert!(sizes.iter().all(|&s| s > 0), "{sizes:?}");
        let e = kfold(g.len(), 14, 1, FoldBy::Groups(&g))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--group found 13"), "{e}");
        assert!(kfold(5, 1, 1, FoldBy::Rows).is_err());
        assert!(kfold(5, 6, 1, FoldBy::Rows).is_err());
    }

    fn dataset(task: Task, y: Vec<f32>) -> Dataset {
        let rows = y.len();
        Dataset {
            schema: crate::data::Schema {
                features: vec!["x".into()],
                targets: vec!["y".into()],
                task,
                classes: if task == Task::Classification {
                    vec!["a".into(), "b".into()]
                } else {
                    vec![]
                },
                window: None,
            },
            x: (0..rows).map(|i| i as f32 * 0.25).collect(),
            y,
            rows,
            lines: (2..rows as u64 + 2).collect(),
        }
    }

    #[test]
    fn holdout_follows_the_flags() {
        let ds = dataset(Task::Regression, (0..20).map(|i| i as f32).collect());
        let g: Vec<usize> = (0..20).map(|i| i % 4).collect();
        let base = Holdout {
            val_split: 0.25,
            val_last: None,
            groups: None,
            seed: 3,
            chronological: false,
        };
        let (_, val) = holdout(
            &ds,
            &Holdout {
                val_last: Some(0.2),
                ..base
            },
        )
        .unwrap();
        assert_eq!(val, [16, 17, 18, 19]);
        let (_, val) = holdout(
            &ds,
            &Holdout {
                val_last: Some(0.2),
                groups: Some(&g),
                ..base
            },
        )
        .unwrap();
        assert_eq!(val, [16, 17, 18, 19], "the last of each of 4 groups of 5");
        let (_, val) = holdout(
            &ds,
            &Holdout {
                groups: Some(&g),
                ..base
            },
        )
        .unwrap();
        assert_eq!(val.len(), 5, "one whole group (of 4) of 5 rows");
        assert!(val.iter().all(|&i| g[i] == g[val[0]]));
        let (train, val) = holdout(
            &ds,
            &Holdout {
                val_split: 0.0,
                groups: Some(&g),
                ..base
            },
        )
        .unwrap();
        assert_eq!((train.len(), val.len()), (20, 0));
        let (_, val) = holdout(&ds, &base).unwrap();
        assert_eq!(val.len(), 5);
    }

    #[test]
    fn cv_folds_stratify_classes_and_respect_groups() {
        let y: Vec<f32> = (0..12).map(|i| if i < 8 { 0.0 } else { 1.0 }).collect();
        let ds = dataset(Task::Classification, y.clone());
        let fold = cv_folds(&ds, 4, 0, None).unwrap();
        for f in 0..4 {
            let ones = (0..12).filter(|&i| fold[i] == f && y[i] == 1.0).count();
            assert_eq!(ones, 1, "fold {f} keeps the 2:1 class mix");
        }
        let g: Vec<usize> = (0..12).map(|i| i / 3).collect();
        let fold = cv_folds(&ds, 2, 0, Some(&g)).unwrap();
        for i in 0..12 {
            assert_eq!(fold[i], fold[g[i] * 3], "row {i} left its group");
        }
    }
}
