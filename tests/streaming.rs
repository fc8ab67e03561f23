//! The streaming pieces: --max-memory sizes, the hashed validation hold-out, Welford's
//! statistics, and epochs read shard by shard with a tiny budget: every training row exactly
//! once per epoch, standardized with the statistics of the training rows, in an order fixed by
//! the seed and new each epoch; validation rows never among them; errors as the loader words
//! them.

use std::io::Write;
use std::path::{Path, PathBuf};

use wgtrain::data::{
    DataSpec, Dataset, LoadOptions, Normalizer, StreamPlan, Welford, is_val_row, parse_size,
};
use wgtrain::rng::Rng;
use wgtrain::spec::Task;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(bytes))
        .expect("write temp file");
    p
}

/// `rows` rows of 5 features and a target (`y`, or a class label), seeded.
fn table(rows: usize, classes: bool) -> Vec<u8> {
    let mut rng = Rng::new(3);
    let mut s = String::from("a,b,c,d,e,y\n");
    for i in 0..rows {
        let x: Vec<f64> = (0..5).map(|_| rng.normal() * 3.0 + 1.0).collect();
        let row: Vec<String> = x.iter().map(|v| format!("{v:.5}")).collect();
        s.push_str(&row.join(","));
        if classes {
            s.push_str([",cat\n", ",dog\n", ",emu\n"][i % 3]);
        } else {
            s.push_str(&format!(",{:.4}\n", x[0] * 2.0 - x[3]));
        }
    }
    s.into_bytes()
}

fn spec(targets: &[String], task: Option<Task>) -> DataSpec<'_> {
    DataSpec {
        targets,
        drop: &[],
        task,
        window: None,
    }
}

#[test]
fn sizes_parse_with_suffixes_and_refuse_junk() {
    assert_eq!(parse_size("512M").unwrap(), 512 << 20);
    assert_eq!(parse_size("2g").unwrap(), 2 << 30);
    assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
    assert_eq!(parse_size("800k").unwrap(), 800 << 10);
    assert_eq!(parse_size("123456").unwrap(), 123456);
    for bad in ["", "M", "-1M", "12Q", "0", "abc", "nan"] {
        let e = parse_size(bad).unwrap_err().to_string();
        assert!(e.contains("--max-memory"), "{bad}: {e}");
    }
}

#[test]
fn hashed_holdout_is_seeded_and_near_the_fraction() {
    let n = 100_000u64;
    let val: Vec<u64> = (0..n).filter(|&r| is_val_row(7, r, 0.2)).collect();
    let frac = val.len() as f64 / n as f64;
    assert!((frac - 0.2).abs() < 0.006, "{frac}");
    let again: Vec<u64> = (0..n).filter(|&r| is_val_row(7, r, 0.2)).collect();
    assert_eq!(val, again);
    let other: Vec<u64> = (0..n).filter(|&r| is_val_row(8, r, 0.2)).collect();
    assert_ne!(val, other);
    assert!((0..1000).all(|r| !is_val_row(7, r, 0.0)));
}

#[test]
fn welford_matches_the_two_pass_fit() {
    let mut rng = Rng::new(1);
    let (rows, cols) = (5000, 4);
    let x: Vec<f32> = (0..rows * cols)
        .map(|i| (rng.normal() * 1e3 + 5e4 * (i % cols) as f64) as f32)
        .collect();
    let mut w = Welford::new(cols);
    for r in x.chunks_exact(cols) {
        w.push(r);
    }
    let (got, want) = (w.normalizer(), Normalizer::fit(&x, rows, cols));
    for c in 0..cols {
        let rel = |a: f32, b: f32| ((a - b) / b).abs();
        assert!(
            rel(got.mean[c], want.mean[c]) < 1e-6,
            "mean {c}: {got:?} vs {want:?}"
        );
        assert!(
            rel(got.std[c], want.std[c]) < 1e-5,
            "std {c}: {got:?} vs {want:?}"
        );
    }
}

/// (line, x, y) of every row an epoch yields.
fn epoch_rows(p: &StreamPlan, epoch: usize, val: bool) -> Vec<(u64, Vec<f32>, Vec<f32>)> {
    let (nf, ny) = (p.schema.features.len(), p.schema.target_cols());
    let mut out = Vec::new();
    p.epoch(epoch, val, |s| {
        for r in 0..s.rows {
            out.push((
                s.lines[r],
                s.x[r * nf..(r + 1) * nf].to_vec(),
                s.y[r * ny..(r + 1) * ny].to_vec(),
            ));
        }
        Ok(())
    })
    .unwrap();
    out
}

fn check_epochs_against_memory(path: &Path, classes: bool, gz: bool) {
    let targets = vec!["y".to_string()];
    let sp = spec(&targets, None);
    let budget = 16 << 10;
    let p = StreamPlan::scan(path, &sp, budget, 0.25, 11).unwrap();
    let ds = Dataset::load(path, &sp, &LoadOptions::default()).unwrap();
    assert_eq!(p.schema, ds.schema);
    assert_eq!(p.rows, ds.rows as u64);
    assert!(p.shards.len() >= 8, "{} shards", p.shards.len());
    // The reference: in-memory rows split by the same hash, standardized with their own fit.
    let (train, val): (Vec<usize>, Vec<usize>) =
        (0..ds.rows).partition(|&r| !is_val_row(11, r as u64, 0.25));
    let nf = ds.schema.features.len();
    let (tr, _) = ds.clone().split(&train, &val);
    let fit = Normalizer::fit(&tr.x, tr.rows, nf);
    for c in 0..nf {
        assert!(
            (p.features.mean[c] - fit.mean[c]).abs() < 1e-5,
            "{:?} {:?}",
            p.features,
            fit
        );
        assert!((p.features.std[c] / fit.std[c] - 1.0).abs() < 1e-5);
    }
    assert_eq!(
        (p.train_rows, p.val_rows),
        (train.len() as u64, val.len() as u64)
    );

    let e1 = epoch_rows(&p, 1, false);
    assert_eq!(e1.len(), train.len());
    assert_eq!(
        e1,
        epoch_rows(&p, 1, false),
        "an epoch is fixed by the seed"
    );
    let e2 = epoch_rows(&p, 2, false);
    assert_ne!(e1, e2, "each epoch is shuffled anew");
    let mut sorted = e1.clone();
    sorted.sort_by_key(|r| r.0);
    let mut e2s = e2;
    e2s.sort_by_key(|r| r.0);
    assert_eq!(sorted, e2s, "every epoch holds the same rows");
    for (k, (line, x, y)) in sorted.iter().enumerate() {
        let r = train[k];
        assert_eq!(*line, ds.lines[r]);
        let mut want = ds.x[r * nf..(r + 1) * nf].to_vec();
        p.features.apply(&mut want);
        assert_eq!(x, &want, "row of line {line}");
        if classes {
            assert_eq!(y[0], ds.y[r]);
        } else {
            let mut t = vec![ds.y[r]];
            p.targets.apply(&mut t);
            assert_eq!(y, &t);
        }
    }
    let v = epoch_rows(&p, 1, true);
    let lines: Vec<u64> = v.iter().map(|r| r.0).collect();
    let want: Vec<u64> = val.iter().map(|&r| ds.lines[r]).collect();
    assert_eq!(lines, want, "validation: the hashed rows, in file order");
    let order = p.shard_order(1);
    if gz {
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "gzip reads in file order"
        );
    } else {
        assert_ne!(order, p.shard_order(2), "shard order is shuffled per epoch");
    }
}

#[test]
fn epochs_cover_the_training_rows_once_with_a_tiny_budget() {
    let dir = tempfile::tempdir().unwrap();
    let text = table(3000, false);
    let p = write(dir.path(), "t.csv", &text);
    check_epochs_against_memory(&p, false, false);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&text).unwrap();
    let gz = write(dir.path(), "t.csv.gz", &e.finish().unwrap());
    check_epochs_against_memory(&gz, false, true);
    let p = write(dir.path(), "c.csv", &table(3000, true));
    check_epochs_against_memory(&p, true, false);
}

#[test]
fn a_bad_cell_late_in_the_file_is_named_as_the_loader_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = table(3000, false);
    let at = text.len() - 200;
    let comma = at + text[at..].iter().position(|&b| b == b',').unwrap();
    text.splice(comma + 1..comma + 1, b"oops".iter().copied());
    let p = write(dir.path(), "bad.csv", &text);
    let targets = vec!["y".to_string()];
    let sp = spec(&targets, None);
    let want = Dataset::load(&p, &sp, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    let got = StreamPlan::scan(&p, &sp, 16 << 10, 0.2, 1)
        .unwrap_err()
        .to_string();
    assert_eq!(got, want);
    assert!(got.contains("is not a number"), "{got}");
}
