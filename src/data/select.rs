//! Column lists as the user types them (`--features`, `--drop`, `--keep`, `--group`), and the
//! univariate ranking behind `--select-k`.
//!
//! A pattern is, in this order of precedence:
//! - an exact column name (so a header that itself holds `*` or `:` can still be named);
//! - a glob: `*` any run of characters, `?` one character (`cli*` → `cli`, `cli.1`, `cli.2`);
//! - an inclusive range in header order, `FIRST:LAST` (`AL:WI` → the 40 state columns).
//!
//! A pattern that matches nothing is an error naming the flag and the closest column names,
//! since a silently empty selection trains on the wrong inputs.

use super::dataset::Dataset;
use crate::error::{Error, Result};
use crate::spec::Task;

/// The columns of `header` that `patterns` name, each once, in the order the patterns give
/// them (a glob or a range expands in header order).
pub fn select_columns(header: &[String], flag: &str, patterns: &[String]) -> Result<Vec<usize>> {
    let mut out: Vec<usize> = Vec::new();
    for p in patterns {
        let p = p.trim();
        if p.is_empty() {
            return Err(Error::flag(flag, "empty column name in the list"));
        }
        for c in expand(header, flag, p)? {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// The columns one pattern names, in header order.
fn expand(header: &[String], flag: &str, p: &str) -> Result<Vec<usize>> {
    if let Some(c) = header.iter().position(|h| h == p) {
        return Ok(vec![c]);
    }
    if p.contains(['*', '?']) {
        let hits: Vec<usize> = (0..header.len())
            .filter(|&c| glob_match(p.as_bytes(), header[c].as_bytes()))
            .collect();
        if hits.is_empty() {
            return Err(Error::flag(
                flag,
                format!("no column matches '{p}'{}", hint(header, p)),
            ));
        }
        return Ok(hits);
    }
    if let Some((a, b)) = p.split_once(':') {
        let end = |name: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                Error::flag(
                    flag,
                    format!("range '{p}': no column '{name}'{}", hint(header, name)),
                )
            })
        };
        let (first, last) = (end(a.trim())?, end(b.trim())?);
        if first > last {
            return Err(Error::flag(
                flag,
                format!(
                    "range '{p}': '{}' (column {}) comes after '{}' (column {}); ranges follow the header order",
                    a.trim(),
                    first + 1,
                    b.trim(),
                    last + 1
                ),
            ));
        }
        return Ok((first..=last).collect());
    }
    Err(Error::flag(
        flag,
        format!("no column '{p}'{}", hint(header, p)),
    ))
}

/// `*` matches any run of bytes, `?` exactly one; everything else literally.
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    // Iterative matcher with one backtrack point: linear for the patterns people type.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// "; did you mean: a, b, c?" with up to five close names, or the first columns when none is
/// close.
fn hint(header: &[String], name: &str) -> String {
    let close = close_matches(header, name, 5);
    if close.is_empty() {
        let shown: Vec<&str> = header.iter().take(12).map(String::as_str).collect();
        let more = if header.len() > shown.len() {
            format!(", … ({} columns in all)", header.len())
        } else {
            String::new()
        };
        format!("; columns are: {}{more}", shown.join(", "))
    } else {
        format!("; did you mean: {}?", close.join(", "))
    }
}

/// Up to `n` header names close to `name`: same letters ignoring case, a shared prefix or
/// containment, or a small edit distance; closest first, ties in header order.
pub fn close_matches(header: &[String], name: &str, n: usize) -> Vec<String> {
    let key = name.trim_matches(['*', '?']).to_lowercase();
    if key.is_empty() {
        return Vec::new();
    }
    let limit = (key.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, usize)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let hl = h.to_lowercase();
            let d = strsim::levenshtein(&key, &hl);
            let score = if hl == key {
                0
            } else if hl.starts_with(&key) || key.starts_with(&hl) || hl.contains(&key) {
                1
            } else if d <= limit {
                1 + d
            } else {
                return None;
            };
            Some((score, i))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(n)
        .map(|(_, i)| header[i].clone())
        .collect()
}

/// The column names of a CSV file as wgtrain reads them (repeats renamed `cli`, `cli.1`, …),
/// from its header alone; a Parquet file's from its schema.
pub fn file_header(path: &std::path::Path) -> Result<Vec<String>> {
    if super::parquet::is_parquet(path) {
        return super::parquet::header(path);
    }
    let o = super::scan::open(path)?;
    Ok(super::table::unique_names(&o.raw_header))
}

/// The exact column names to drop so that only what `--features` names (all columns when it
/// is empty) minus what `--drop` names remain beside the targets. Patterns are expanded here,
/// once, against the file's header; a pattern that matches a target leaves the target alone,
/// while a target named exactly in `--drop` is still refused by the loader.
pub fn drop_list(
    header: &[String],
    targets: &[String],
    drop: &[String],
    features: &[String],
) -> Result<Vec<String>> {
    let dcols = select_columns(header, "--drop", drop)?;
    let wanted = match features {
        [] => None,
        pats => Some(select_columns(header, "--features", pats)?),
    };
    let mut out: Vec<String> = drop
        .iter()
        .filter(|d| targets.contains(d))
        .cloned()
        .collect();
    for (c, name) in header.iter().enumerate() {
        if targets.contains(name) {
            continue;
        }
        let unwanted = wanted.as_ref().is_some_and(|w| !w.contains(&c));
        if dcols.contains(&c) || unwanted {
            out.push(name.clone());
        }
    }
    Ok(out)
}

/// `ds` with only the feature columns `keep` (indices into `ds.schema.features`, kept in that order).
pub fn keep_features(ds: &Dataset, keep: &[usize]) -> Dataset {
    let nf = ds.schema.features.len();
    let mut x = Vec::with_capacity(ds.rows * keep.len());
    for row in ds.x.chunks(nf.max(1)).take(ds.rows) {
        x.extend(keep.iter().map(|&j| row[j]));
    }
    let mut schema = ds.schema.clone();
    schema.features = keep
        .iter()
        .map(|&j| ds.schema.features[j].clone())
        .collect();
    Dataset {
        schema,
        x,
        y: ds.y.clone(),
        rows: ds.rows,
        lines: ds.lines.clone(),
    }
}

/// `--select-k K`: the `K` features of `ds` that score best on the training rows `rows`
/// (indices into `ds.schema.features`, in file order) and every feature's score.
pub fn select_k(ds: &Dataset, rows: &[usize], k: usize) -> Result<(Vec<usize>, Vec<f64>)> {
    let nf = ds.schema.features.len();
    if k == 0 {
        return Err(Error::flag("--select-k", "must be at least 1"));
    }
    if k > nf {
        return Err(Error::flag(
            "--select-k",
            format!("{k} is more than the {nf} feature columns"),
        ));
    }
    if ds.schema.task == Task::Regression && ds.schema.targets.len() != 1 {
        return Err(Error::flag(
            "--select-k",
            format!(
                "ranks features against one target; {} are given ({})",
                ds.schema.targets.len(),
                ds.schema.targets.join(", ")
            ),
        ));
    }
    if rows.len() < 3 {
        return Err(Error::flag(
            "--select-k",
            format!(
                "needs at least 3 training rows to rank features, got {}",
                rows.len()
            ),
        ));
    }
    let scores = univariate_scores(
        &ds.x,
        nf,
        &ds.y,
        rows,
        ds.schema.task,
        ds.schema.classes.len(),
    );
    Ok((top_k(&scores, k), scores))
}

/// Per-feature scores as scikit-learn's `f_regression` (regression, one target) or
/// `f_classif` (classes) compute them, over the rows `rows` of the row-major `x[rows, nf]`.
///
/// `y` is the target per row (regression) or the class id per row (classification). A score
/// that cannot be computed (a constant column) is NaN and ranks last, as sklearn's
/// `SelectKBest` ranks it.
pub fn univariate_scores(
    x: &[f32],
    nf: usize,
    y: &[f32],
    rows: &[usize],
    task: Task,
    n_classes: usize,
) -> Vec<f64> {
    match task {
        Task::Regression => f_regression(x, nf, y, rows),
        Task::Classification => f_classif(x, nf, y, rows, n_classes),
    }
}

/// F = r²/(1−r²)·(n−2) with r the Pearson correlation; a constant column or target scores 0
/// and a perfect correlation +inf, as sklearn's `force_finite=True` default does.
fn f_regression(x: &[f32], nf: usize, y: &[f32], rows: &[usize]) -> Vec<f64> {
    let n = rows.len() as f64;
    let ym = rows.iter().map(|&r| y[r] as f64).sum::<f64>() / n;
    let yss: f64 = rows.iter().map(|&r| (y[r] as f64 - ym).powi(2)).sum();
    (0..nf)
        .map(|j| {
            let xm = rows.iter().map(|&r| x[r * nf + j] as f64).sum::<f64>() / n;
            let (mut sxy, mut sxx) = (0.0, 0.0);
            for &r in rows {
                let dx = x[r * nf + j] as f64 - xm;
                sxy += dx * (y[r] as f64 - ym);
                sxx += dx * dx;
            }
            if sxx == 0.0 || yss == 0.0 {
                return 0.0;
            }
            let r2 = sxy * sxy / (sxx * yss);
            if r2 >= 1.0 {
                f64::INFINITY
            } else {
                r2 / (1.0 - r2) * (n - 2.0)
            }
        })
        .collect()
}

/// One-way ANOVA F per feature: between-class mean square over within-class mean square.
/// NaN when both are zero (a constant column), +inf when only the within part is.
fn f_classif(x: &[f32], nf: usize, y: &[f32], rows: &[usize], n_classes: usize) -> Vec<f64> {
    let mut count = vec![0usize; n_classes];
    for &r in rows {
        if let Some(c) = count.get_mut(y[r] as usize) {
            *c += 1;
        }
    }
    let k = count.iter().filter(|&&c| c > 0).count() as f64;
    let n = rows.len() as f64;
    (0..nf)
        .map(|j| {
            let mut sum = vec![0.0f64; n_classes];
            let mut total = 0.0;
            for &r in rows {
                let v = x[r * nf + j] as f64;
                if let Some(s) = sum.get_mut(y[r] as usize) {
                    *s += v;
                }
                total += v;
            }
            let mean = total / n;
            let mut within = 0.0;
            for &r in rows {
                let c = y[r] as usize;
                if c < n_classes {
                    let d = x[r * nf + j] as f64 - sum[c] / count[c] as f64;
                    within += d * d;
                }
            }
            let between: f64 = (0..n_classes)
                .filter(|&c| count[c] > 0)
                .map(|c| count[c] as f64 * (sum[c] / count[c] as f64 - mean).powi(2))
                .sum();
            let msb = between / (k - 1.0);
            let msw = within / (n - k);
            msb / msw
        })
        .collect()
}

/// The indices of the `k` best scores, returned in ascending index order (file order).
/// Ranked as `SelectKBest` does: a stable ascending sort with NaN lowest, the last `k` kept,
/// so among equal scores the later column wins.
pub fn top_k(scores: &[f64], k: usize) -> Vec<usize> {
    let key = |s: f64| if s.is_nan() { f64::NEG_INFINITY } else { s };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| key(scores[a]).total_cmp(&key(scores[b])));
    let mut keep = order[scores.len() - k.min(scores.len())..].to_vec();
    keep.sort_unstable();
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn names(header: &[String], idx: &[usize]) -> Vec<String> {
        idx.iter().map(|&i| header[i].clone()).collect()
    }

    #[test]
    fn exact_glob_and_range() {
        let hd = h(&[
            "id",
            "AL",
            "AK",
            "WI",
            "cli",
            "ili",
            "cli.1",
            "tested_positive",
        ]);
        let sel = |p: &[&str]| names(&hd, &select_columns(&hd, "--features", &h(p)).unwrap());
        assert_eq!(sel(&["cli"]), ["cli"]);
        assert_eq!(sel(&["cli*"]), ["cli", "cli.1"]);
        assert_eq!(sel(&["?li"]), ["cli", "ili"]);
        assert_eq!(sel(&["AL:WI"]), ["AL", "AK", "WI"]);
        // Each column once, in the order the patterns give them.
        assert_eq!(sel(&["ili", "*li", "AK:AK"]), ["ili", "cli", "AK"]);
        assert_eq!(sel(&["*"]).len(), hd.len());
    }

    #[test]
    fn an_exact_name_wins_over_pattern_syntax() {
        let hd = h(&["a", "a:b", "b", "x*"]);
        let sel = |p: &str| select_columns(&hd, "--drop", &h(&[p])).unwrap();
        assert_eq!(sel("a:b"), [1]);
        assert_eq!(sel("x*"), [3]);
        assert_eq!(sel("a : b"), [0, 1, 2]);
    }

    #[test]
    fn errors_name_the_flag_and_close_matches() {
        let hd = h(&["wearing_mask", "tested_positive", "cli", "AL", "WI"]);
        let err = |p: &str| {
            select_columns(&hd, "--features", &h(&[p]))
                .unwrap_err()
                .to_string()
        };
        let e = err("tested_postive");
        assert!(
            e.starts_with("--features: no column 'tested_postive'"),
            "{e}"
        );
        assert!(e.contains("did you mean: tested_positive?"), "{e}");
        let e = err("mask*");
        assert!(e.contains("no column matches 'mask*'"), "{e}");
        assert!(e.contains("wearing_mask"), "{e}");
        let e = err("WI:AL");
        assert!(e.contains("comes after"), "{e}");
        let e = err("AL:ZZ");
        assert!(e.contains("range 'AL:ZZ': no column 'ZZ'"), "{e}");
        let e = err("zzzzzzz");
        assert!(e.contains("columns are: wearing_mask"), "{e}");
        assert!(select_columns(&hd, "--keep", &h(&[" "])).is_err());
    }

    #[test]
    fn glob_edge_cases() {
        assert!(glob_match(b"a*b*c", b"aXbYc"));
        assert!(glob_match(b"a*b*c", b"abc"));
        assert!(!glob_match(b"a*b*c", b"acb"));
        assert!(glob_match(b"*.1", b"cli.1"));
        assert!(!glob_match(b"*.1", b"cli.10"));
        assert!(glob_match(b"**", b""));
        assert!(!glob_match(b"?", b""));
    }

    #[test]
    fn f_regression_ranks_by_absolute_correlation() {
        // Feature 0: y exactly (perfect), 1: −y plus noise (strong negative), 2: constant,
        // 3: weakly related. Values from a seeded pattern, not zeros and ones.
        let rows = 40;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..rows {
            let t = i as f32 * 0.37 - 3.0;
            let noise = ((i * 7919) % 13) as f32 / 13.0 - 0.5;
            y.push(t);
            x.extend_from_slice(&[t, -t + 0.3 * noise, 2.5, noise + 0.05 * t]);
        }
        let idx: Vec<usize> = (0..rows).collect();
        let s = univariate_scores(&x, 4, &y, &idx, Task::Regression, 0);
        assert!(s[0].is_infinite(), "{s:?}");
        assert!(s[1] > s[3] && s[3] > 0.0, "{s:?}");
        assert_eq!(s[2], 0.0);
        assert_eq!(top_k(&s, 2), [0, 1]);
        assert_eq!(top_k(&s, 9), [0, 1, 2, 3]);
    }

    #[test]
    fn f_classif_matches_a_hand_computed_anova() {
        // Two classes: feature values {1,2,3} and {5,6,7}: means 2 and 6, grand mean 4;
        // between = 3·4 + 3·4 = 24 (df 1), within = 2 + 2 = 4 (df 4): F = 24 / 1 = 24.
        let x = [1.0, 5.0, 2.0, 6.0, 3.0, 7.0];
        let y = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let rows: Vec<usize> = (0..6).collect();
        let s = univariate_scores(&x, 1, &y, &rows, Task::Classification, 2);
        assert!((s[0] - 24.0).abs() < 1e-12, "{s:?}");
        // Only the training rows count: rows 0..4 give {1,2} vs {5,6}: F = 16/(1/2·... )
        let s = univariate_scores(&x, 1, &y, &[0, 1, 2, 3], Task::Classification, 2);
        // means 1.5 and 5.5, grand 3.5: between 2·4+2·4 = 16, within 0.5+0.5 = 1 (df 2): F = 32.
        assert!((s[0] - 32.0).abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn top_k_breaks_ties_like_select_k_best() {
        // Stable ascending sort, last k kept: of equal scores the later column wins; NaN last.
        assert_eq!(top_k(&[1.0, 3.0, 3.0, f64::NAN], 1), [2]);
        assert_eq!(top_k(&[f64::NAN, 0.5, f64::NAN], 2), [1, 2]);
        assert_eq!(top_k(&[2.0, 1.0], 0), Vec::<usize>::new());
    }

    fn regression_ds() -> Dataset {
        // y = 2·b − c/4; a is noise, d constant.
        let rows = 12;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..rows {
            let (a, b, c) = (((i * 5) % 7) as f32, i as f32 * 0.5, ((i * i) % 11) as f32);
            x.extend_from_slice(&[a, b, c, 3.0]);
            y.push(2.0 * b - c / 4.0);
        }
        Dataset {
            schema: crate::data::Schema {
                features: h(&["a", "b", "c", "d"]),
                targets: h(&["y"]),
                task: Task::Regression,
                classes: vec![],
                window: None,
            },
            x,
            y,
            rows,
            lines: (2..14).collect(),
        }
    }

    #[test]
    fn select_k_keeps_the_related_columns_in_file_order() {
        let ds = regression_ds();
        let rows: Vec<usize> = (0..ds.rows).collect();
        let (keep, scores) = select_k(&ds, &rows, 2).unwrap();
        assert_eq!(scores.len(), 4);
        assert_eq!(keep, [1, 2], "{scores:?}");
        let sub = keep_features(&ds, &keep);
        assert_eq!(sub.schema.features, ["b", "c"]);
        assert_eq!(&sub.x[..4], &[0.0, 0.0, 0.5, 1.0]);
        assert_eq!(sub.y, ds.y);
        let e = select_k(&ds, &rows, 5).unwrap_err().to_string();
        assert!(e.starts_with("--select-k: 5 is more than the 4"), "{e}");
        assert!(select_k(&ds, &rows, 0).is_err());
        assert!(select_k(&ds, &rows[..2], 1).is_err());
    }

    #[test]
    fn drop_list_expands_patterns_and_spares_the_target() {
        let hd = h(&["id", "AL", "AK", "cli", "cli.1", "y", "note"]);
        let t = h(&["y"]);
        assert_eq!(
            drop_list(&hd, &t, &h(&["cli*", "note"]), &[]).unwrap(),
            ["cli", "cli.1", "note"]
        );
        assert_eq!(
            drop_list(&hd, &t, &[], &h(&["AL:AK", "cli*", "y"])).unwrap(),
            ["id", "note"]
        );
        // A glob over every column never drops the target; an exact name is passed on (refused).
        assert_eq!(drop_list(&hd, &t, &h(&["*"]), &[]).unwrap().len(), 6);
        assert_eq!(drop_list(&hd, &t, &h(&["y"]), &[]).unwrap(), ["y"]);
        let e = drop_list(&hd, &t, &[], &h(&["nope"]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--features: no column 'nope'"), "{e}");
    }
}
