//! The streaming pieces: --max-memory sizes, the hashed validation hold-out, Welford's
//! statistics, and epochs read shard by shard with a tiny budget: every training row exactly
//! once per epoch, standardized with the statistics of the training rows, in an order fixed by
//! the seed and new each epoch; validation rows never among them; errors as the loader words
//! them. Then streamed training (`train --max-memory`): the quality of in-memory training on
//! the same rows, bit-reproducible by seed, flags that cannot stream refused, the automatic
//! switch when a table would not fit.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use wgtrain::backend::cpu::CpuBackend;
use wgtrain::data::{
    DataSpec, Dataset, LoadOptions, Normalizer, StreamPlan, Welford, auto_budget,
    estimate_matrix_bytes, is_val_row, parse_size,
};
use wgtrain::model::{Model, init_layers};
use wgtrain::rng::Rng;
use wgtrain::spec::{Activation, Loss, Optimizer, Task};
use wgtrain::train::{self, Control, Metrics, Rows, Schedule, TrainConfig};

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
    check_epochs_within(path, classes, gz, 16 << 10, 8);
}

/// Shards of several blocks each are parsed a part per core: the same rows, lines and order.
#[test]
fn shards_of_many_blocks_are_parsed_in_parts_with_the_same_rows_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "t.csv", &table(12_000, false));
    check_epochs_within(&p, false, false, 512 << 10, 2);
    let p = write(dir.path(), "c.csv", &table(12_000, true));
    check_epochs_within(&p, true, false, 512 << 10, 2);
}

fn check_epochs_within(path: &Path, classes: bool, gz: bool, budget: u64, shards: usize) {
    let targets = vec!["y".to_string()];
    let sp = spec(&targets, None);
    let p = StreamPlan::scan(path, &sp, budget, 0.25, 11).unwrap();
    let ds = Dataset::load(path, &sp, &LoadOptions::default()).unwrap();
    assert_eq!(p.schema, ds.schema);
    assert_eq!(p.rows, ds.rows as u64);
    assert!(p.shards.len() >= shards, "{} shards", p.shards.len());
    if shards < 8 {
        assert!(p.shards.iter().all(|s| s.blocks() >= 2), "{:?}", p.shards);
    }
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

/// `table(rows, classes)` as a Parquet file of row groups of `group` rows.
fn parquet_table(path: &Path, rows: usize, classes: bool, group: usize) {
    parquet_of(
        path,
        &String::from_utf8(table(rows, classes)).unwrap(),
        group,
    );
}

/// The CSV `text` (5 number columns and `y`) as a Parquet file of row groups of `group` rows,
/// written with the `parquet` crate's own writer: f64 columns, `y` as text unless every value
/// is a number.
fn parquet_of(path: &Path, text: &str, group: usize) {
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let cells: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let text_y = cells.iter().any(|r| r[5].parse::<f64>().is_err());
    let y = if text_y {
        "required binary y (UTF8)"
    } else {
        "required double y"
    };
    let schema = format!(
        "message t {{ required double a; required double b; required double c; \
         required double d; required double e; {y}; }}"
    );
    let schema = std::sync::Arc::new(parquet::schema::parser::parse_message_type(&schema).unwrap());
    let props = std::sync::Arc::new(WriterProperties::builder().build());
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, schema, props).unwrap();
    for chunk in cells.chunks(group) {
        let mut rg = w.next_row_group().unwrap();
        let mut col = 0;
        while let Some(mut c) = rg.next_column().unwrap() {
            if col == 5 && text_y {
                let v: Vec<ByteArray> = chunk.iter().map(|r| ByteArray::from(r[5])).collect();
                c.typed::<ByteArrayType>()
                    .write_batch(&v, None, None)
                    .unwrap();
            } else {
                let v: Vec<f64> = chunk.iter().map(|r| r[col].parse().unwrap()).collect();
                c.typed::<DoubleType>().write_batch(&v, None, None).unwrap();
            }
            c.close().unwrap();
            col += 1;
        }
        rg.close().unwrap();
    }
    w.close().unwrap();
}

/// A target of a few whole numbers is classes when streamed too (the in-memory loader's
/// rule, applied a value at a time in the first pass), for CSV and Parquet: the same schema,
/// classes and class ids as loading the file.
#[test]
fn a_few_whole_numbers_stream_as_classes_as_they_load() {
    let dir = tempfile::tempdir().unwrap();
    let text = String::from_utf8(table(3000, false)).unwrap();
    let digits: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            0 => format!("{l}\n"),
            _ => format!("{},{}\n", l.rsplit_once(',').unwrap().0, i % 3),
        })
        .collect();
    let p = write(dir.path(), "d.csv", digits.as_bytes());
    check_epochs_within(&p, true, false, 16 << 10, 8);
    let targets = vec!["y".to_string()];
    let plan = StreamPlan::scan(&p, &spec(&targets, None), 16 << 10, 0.25, 11).unwrap();
    assert_eq!(plan.schema.task, Task::Classification);
    assert_eq!(plan.schema.classes, ["0", "1", "2"]);
    let q = dir.path().join("d.parquet");
    parquet_of(&q, &digits, 100);
    check_epochs_within(&q, true, false, 32 << 10, 8);
}

/// A Parquet file streams by whole row groups: every epoch yields each training row once,
/// standardized with the training rows' statistics, the validation rows by the same hash as
/// CSV, and the shards in a seeded order; as the in-memory Parquet loader reads the file.
#[test]
fn a_parquet_file_streams_by_row_groups_with_the_rows_of_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.parquet");
    parquet_table(&p, 1200, false, 100);
    check_epochs_within(&p, false, false, 32 << 10, 8);
    let p = dir.path().join("c.parquet");
    parquet_table(&p, 1200, true, 100);
    check_epochs_within(&p, true, false, 32 << 10, 8);
    // A null feature is named as the loader names it: file, row group, column and row.
    let nulls = PathBuf::from(common::repo("tests/data/nulls.parquet"));
    let targets = vec!["y".to_string()];
    let e = StreamPlan::scan(&nulls, &spec(&targets, None), 1 << 20, 0.25, 11).unwrap_err();
    let want = Dataset::load(&nulls, &spec(&targets, None), &LoadOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), want.to_string());
    assert!(
        e.to_string().contains("row group 1, column 'b', row 7"),
        "{e}"
    );
    // A row group that does not fit in half the budget is refused, naming it and the flag.
    let e = StreamPlan::scan(&p, &spec(&targets, None), 8 << 10, 0.25, 11).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("--max-memory") && msg.contains("row group 0"),
        "{msg}"
    );
}

/// `train --max-memory` on a Parquet file: streamed (said in one line), the same model file
/// from the same seed, and near the in-memory run's validation loss.
#[test]
fn a_parquet_file_trains_streamed_as_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("t.parquet");
    parquet_table(&data, 3000, false, 250);
    let data = common::s(&data);
    let run = |name: &str, extra: &[&str]| {
        let out = common::s(&dir.path().join(format!("{name}.st")));
        let metrics = common::s(&dir.path().join(format!("{name}.csv")));
        let args = [
            "train",
            &data,
            "--target",
            "y",
            "--epochs",
            "8",
            "--hidden",
            "16",
            "--device",
            "cpu",
            "--out",
            &out,
            "--metrics",
            &metrics,
        ];
        let o = common::wgtrain(&[&args[..], extra].concat());
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        o
    };
    let o = run("s1", &["--max-memory", "64K"]);
    assert!(stderr(&o).contains("streaming"), "{}", stderr(&o));
    run("s2", &["--max-memory", "64K"]);
    run("m", &[]);
    let bytes = |n: &str| std::fs::read(dir.path().join(format!("{n}.st"))).unwrap();
    assert_eq!(bytes("s1"), bytes("s2"), "same seed, same streamed model");
    let last_val = |n: &str| -> f64 {
        let m = losses(&dir.path().join(format!("{n}.csv")));
        m.last()
            .unwrap()
            .split(',')
            .nth(2)
            .unwrap()
            .parse()
            .unwrap()
    };
    let (s, m) = (last_val("s1"), last_val("m"));
    eprintln!("val_loss after 8 epochs: streamed {s}, in memory {m}");
    assert!(s <= 1.25 * m + 1e-3, "streamed {s} vs in memory {m}");
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

// ---- streamed training ----------------------------------------------------------------------

/// A learnable 3-class table: the class is the largest of a, b + 0.5 and c − 0.5 (with noise
/// features d and e), so accuracy well above a third means the network learned it.
fn classes_table(rows: usize) -> Vec<u8> {
    let mut rng = Rng::new(9);
    let mut s = String::from("a,b,c,d,e,y\n");
    for _ in 0..rows {
        let x: Vec<f64> = (0..5).map(|_| rng.normal()).collect();
        let score = [x[0], x[1] + 0.5, x[2] - 0.5];
        let k = (0..3).fold(0, |k, i| if score[i] > score[k] { i } else { k });
        let row: Vec<String> = x.iter().map(|v| format!("{v:.4}")).collect();
        s.push_str(&format!("{},{}\n", row.join(","), ["ant", "bee", "cow"][k]));
    }
    s.into_bytes()
}

fn config(epochs: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        optimizer: Optimizer::Adam,
        lr: 3e-3,
        schedule: Schedule::Constant,
        batch_size: 32,
        epochs,
        seed,
        weight_decay: 0.0,
        patience: None,
        clip: None,
        progress: false,
    }
}

fn no_control<'a>(none: &'a mut dyn FnMut(train::RunState) -> wgtrain::Result<()>) -> Control<'a> {
    Control {
        stop: &|| false,
        resume: None,
        checkpoint_every: None,
        on_checkpoint: none,
    }
}

/// Trains one network in memory and one streamed within `budget` on the same training rows
/// (the plan's hashed split, the plan's normalizers, the same initial weights and seed) and
/// returns both models' metrics on the same validation rows, and the plan's shard count.
fn memory_and_stream(path: &Path, budget: u64, epochs: usize) -> (Metrics, Metrics, usize) {
    let targets = vec!["y".to_string()];
    let sp = spec(&targets, None);
    let seed = 5;
    let plan = StreamPlan::scan(path, &sp, budget, 0.2, seed).unwrap();
    let ds = Dataset::load(path, &sp, &LoadOptions::default()).unwrap();
    let (tr, va): (Vec<usize>, Vec<usize>) =
        (0..ds.rows).partition(|&r| !is_val_row(seed, r as u64, 0.2));
    let (tr, va) = ds.split(&tr, &va);
    let task = plan.schema.task;
    let loss = Loss::for_task(task, None).unwrap();
    let sizes = [plan.schema.n_features(), 32, plan.schema.n_outputs()];
    let targets_norm = match task {
        Task::Regression => plan.targets.clone(),
        Task::Classification => Normalizer::identity(0),
    };
    let fresh = || {
        let layers = init_layers(&sizes, Activation::Relu, seed);
        let (x, y) = (plan.features.clone(), targets_norm.clone());
        Model::new(
            plan.schema.clone(),
            Activation::Relu,
            loss,
            seed,
            layers,
            x,
            y,
        )
        .unwrap()
    };
    let rows = |d: &Dataset, m: &Model| {
        let (mut x, mut y) = (d.x.clone(), d.y.clone());
        m.normalizer.apply(&mut x);
        if task == Task::Regression {
            m.target_normalizer.apply(&mut y);
        }
        Rows { x, y, rows: d.rows }
    };
    let cfg = config(epochs, seed);
    let mut be = CpuBackend::new();
    let mut mem = fresh();
    let (tr_rows, va_rows) = (rows(&tr, &mem), rows(&va, &mem));
    train::train(&mut be, &mut mem, &tr_rows, Some(&va_rows), &cfg, |_| {}).unwrap();
    let mut streamed = fresh();
    let mut none = |_: train::RunState| Ok(());
    let h = train::stream::train_stream(
        &mut be,
        &mut streamed,
        &plan,
        &cfg,
        |_| {},
        no_control(&mut none),
    )
    .unwrap();
    assert_eq!(h.epochs.len(), epochs);
    let last = h.epochs[epochs - 1].val_loss.unwrap();
    let on_val = |m: &Model| train::evaluate(&mut CpuBackend::new(), m, &va_rows).unwrap();
    let (a, b) = (on_val(&mem), on_val(&streamed));
    // The streamed run's own validation (rows read by hash from the file) is the same
    // measurement as evaluating its model on the in-memory validation rows.
    let same = b.loss(loss);
    assert!(
        (last - same).abs() <= 1e-4 * same.abs().max(1e-3),
        "streamed val_loss {last} vs evaluate {same}"
    );
    (a, b, plan.shards.len())
}

#[test]
fn streamed_training_reaches_the_quality_of_in_memory_training() {
    // Regression on the bundled friedman1 (2000 rows) in 16 KiB: ~30 shards of ~50 rows, so a
    // batch of 32 never mixes rows of two shards and every shard ends in a short batch.
    let (mem, st, shards) =
        memory_and_stream(Path::new(&common::repo("data/friedman1.csv")), 16 << 10, 40);
    assert!(shards >= 20, "{shards} shards");
    let (Metrics::Regression { mse: m, .. }, Metrics::Regression { mse: s, .. }) = (mem, st) else {
        panic!("{mem:?} {st:?}");
    };
    eprintln!("friedman1 validation MSE after 40 epochs: in memory {m:.4}, streamed {s:.4}");
    // Both far below the target's variance (~24) and within 15% of each other.
    assert!(m < 3.0 && s < 3.0, "in memory {m}, streamed {s}");
    assert!((s - m).abs() <= 0.15 * m, "in memory {m}, streamed {s}");

    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "abc.csv", &classes_table(4000));
    let (mem, st, shards) = memory_and_stream(&p, 16 << 10, 15);
    assert!(shards >= 20, "{shards} shards");
    let (
        Metrics::Classification {
            accuracy: m,
            cross_entropy: mc,
            ..
        },
        Metrics::Classification {
            accuracy: s,
            cross_entropy: sc,
            ..
        },
    ) = (mem, st)
    else {
        panic!("{mem:?} {st:?}");
    };
    eprintln!(
        "3 classes, accuracy after 15 epochs: in memory {m:.4} (ce {mc:.4}), streamed {s:.4} (ce {sc:.4})"
    );
    assert!(m > 0.85 && s > 0.85, "in memory {m}, streamed {s}");
    assert!(
        (s - m).abs() <= 0.03,
        "accuracy: in memory {m}, streamed {s}"
    );
    assert!(
        (sc - mc).abs() <= 0.25 * mc,
        "cross-entropy: in memory {mc}, streamed {sc}"
    );
}

/// `wgtrain train` with an environment variable set.
fn wgtrain_env(args: &[&str], env: (&str, &str)) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args(args)
        .env("WGTRAIN_LOG", "")
        .env(env.0, env.1)
        .output()
        .expect("the wgtrain binary runs")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The loss columns of a --metrics file (its seconds column differs between runs).
fn losses(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(a, _)| a).to_string())
        .collect()
}

fn stream_run(dir: &Path, name: &str, data: &str, extra: &[&str]) -> std::process::Output {
    let out = common::s(&dir.join(format!("{name}.safetensors")));
    let metrics = common::s(&dir.join(format!("{name}.csv")));
    let mut args = vec![
        "train",
        data,
        "--target",
        "y",
        "--epochs",
        "4",
        "--out",
        &out,
        "--metrics",
        &metrics,
        "--max-memory",
        "16K",
        "--hidden",
        "16",
    ];
    args.extend_from_slice(extra);
    common::wgtrain(&args)
}

#[test]
fn a_seed_gives_the_same_streamed_model_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::repo("data/friedman1.csv");
    let cpu = ["--device", "cpu"];
    for name in ["a", "b"] {
        let o = stream_run(dir.path(), name, &data, &cpu);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("streaming"), "{}", stderr(&o));
    }
    let o = stream_run(dir.path(), "c", &data, &["--device", "cpu", "--seed", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = |n: &str| std::fs::read(dir.path().join(format!("{n}.safetensors"))).unwrap();
    assert_eq!(bytes("a"), bytes("b"), "same seed, same model file");
    assert_ne!(bytes("a"), bytes("c"), "another seed, another model");
    let m = |n: &str| losses(&dir.path().join(format!("{n}.csv")));
    assert_eq!(m("a"), m("b"));
    assert_eq!(m("a").len(), 5, "a header and 4 epochs: {:?}", m("a"));
    // The model file serves eval like any other.
    let model = common::s(&dir.path().join("a.safetensors"));
    let o = common::wgtrain(&["eval", &model, &data, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn streamed_training_on_the_gpu_is_reproducible_and_matches_the_cpu() {
    if common::adapter().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = common::repo("data/friedman1.csv");
    for (name, dev) in [("g1", "gpu"), ("g2", "gpu"), ("c", "cpu")] {
        let o = stream_run(dir.path(), name, &data, &["--device", dev, "--tune", "off"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    let bytes = |n: &str| std::fs::read(dir.path().join(format!("{n}.safetensors"))).unwrap();
    assert_eq!(bytes("g1"), bytes("g2"), "same seed, same model on the GPU");
    let last_val = |n: &str| -> f64 {
        let m = losses(&dir.path().join(format!("{n}.csv")));
        let cols: Vec<&str> = m.last().unwrap().split(',').collect();
        cols[2].parse().unwrap()
    };
    let (g, c) = (last_val("g1"), last_val("c"));
    eprintln!("val_loss after 4 streamed epochs: gpu {g}, cpu {c}");
    assert!((g - c).abs() <= 1e-3 * c, "gpu {g} vs cpu {c}");
}

#[test]
fn flags_that_cannot_stream_are_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::repo("data/friedman1.csv");
    let cases: [(&[&str], &str); 5] = [
        (&["--cv", "3"], "--cv"),
        (&["--json"], "--json"),
        (&["--select-k", "3"], "--select-k"),
        (&["--val-every", "5"], "--val-every"),
        (&["--window", "3"], "--window"),
    ];
    for (extra, flag) in cases {
        let o = stream_run(dir.path(), "x", &data, extra);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flag}: {e}");
        assert!(e.contains(&format!("--max-memory, {flag}:")), "{flag}: {e}");
    }
    for bad in ["lots", "0", "-5M", "12Q"] {
        let o = common::wgtrain(&["train", &data, "--target", "y", "--max-memory", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("--max-memory: '"),
            "{bad}: {}",
            stderr(&o)
        );
    }
    let out = common::s(&dir.path().join("big.safetensors"));
    let args = [
        "train",
        &data,
        "--target",
        "y",
        "--out",
        &out,
        "--max-memory",
        "64T",
    ];
    let o = common::wgtrain(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--max-memory: 64.0 TiB is more than"),
        "{}",
        stderr(&o)
    );
    let o = common::wgtrain(&["train", &data, "--target", "y", "--max-memory", "1M"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("needs --out"), "{}", stderr(&o));
}

#[test]
fn the_switch_to_streaming_is_decided_by_the_available_memory() {
    const M: u128 = 1 << 20;
    assert_eq!(auto_budget(100 * M, Some(1000 * M)), None);
    assert_eq!(auto_budget(800 * M, Some(1000 * M)), None, "80% still fits");
    assert_eq!(auto_budget(801 * M, Some(1000 * M)), Some(500 << 20));
    assert_eq!(auto_budget(u128::MAX, None), None, "unknown memory: never");

    // The estimate the decision starts from: within 15% of the matrix, plain and gzip.
    let dir = tempfile::tempdir().unwrap();
    let text = table(40_000, false);
    let want = (40_000 * 6 * 4) as f64;
    let p = write(dir.path(), "big.csv", &text);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&text).unwrap();
    let gz = write(dir.path(), "big.csv.gz", &e.finish().unwrap());
    for f in [&p, &gz] {
        let got = estimate_matrix_bytes(f).unwrap() as f64;
        assert!(
            (got / want - 1.0).abs() < 0.15,
            "{}: {got} vs {want}",
            f.display()
        );
    }

    // A pipe is never sampled: the loader would miss the text read from it.
    #[cfg(unix)]
    {
        let fifo = dir.path().join("pipe.csv");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path in a temporary directory of ours.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(estimate_matrix_bytes(&fifo).is_err(), "a FIFO is not read");
    }

    // With (as the test hook says) 40 MiB available, friedman1 no longer fits: the run
    // streams within half of it and says so in one line.
    let out = common::s(&dir.path().join("auto.safetensors"));
    let data = common::repo("data/friedman1.csv");
    let args = [
        "train", &data, "--target", "y", "--epochs", "2", "--out", &out, "--device", "cpu",
    ];
    let avail = ("WGTRAIN_AVAILABLE_MEMORY", "41943040");
    let o = wgtrain_env(&args, avail);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    let said: Vec<&str> = e
        .lines()
        .filter(|l| l.contains("to train in memory"))
        .collect();
    assert_eq!(said.len(), 1, "{e}");
    assert!(
        said[0].contains("streaming it in shards within 20.0 MiB"),
        "{e}"
    );
    // With plenty it trains in memory, silently; and a flag that cannot stream is named.
    let o = wgtrain_env(&args, ("WGTRAIN_AVAILABLE_MEMORY", "1000000000000"));
    assert!(
        o.status.success() && !stderr(&o).contains("streaming"),
        "{}",
        stderr(&o)
    );
    let mut cv = args.to_vec();
    cv.extend(["--cv", "3"]);
    let o = wgtrain_env(&cv, avail);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--cv does not combine with streaming"),
        "{}",
        stderr(&o)
    );
}

/// Runs `wgtrain args`, sends SIGINT once it has printed two epoch lines, and returns its
/// stderr after checking that it exited 130.
fn ctrl_c_after_two_epochs(args: &[&str]) -> String {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args(args)
        .env("WGTRAIN_LOG", "")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    for _ in 0..2 {
        line.clear();
        lines.read_line(&mut line).unwrap();
        assert!(line.starts_with("epoch"), "{line:?}");
    }
    // SAFETY: kill on the pid of a child we spawned and have not waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    err
}

#[test]
fn ctrl_c_ends_a_streamed_run_at_a_step_and_keeps_the_best_weights() {
    let dir = tempfile::tempdir().unwrap();
    let (out, metrics) = (dir.path().join("m.st"), dir.path().join("m.csv"));
    let data = common::repo("data/friedman1.csv");
    let (out_s, metrics_s) = (common::s(&out), common::s(&metrics));
    let err = ctrl_c_after_two_epochs(&[
        "train",
        &data,
        "--target",
        "y",
        "--epochs",
        "100000",
        "--device",
        "cpu",
        "--max-memory",
        "16K",
        "--out",
        &out_s,
        "--metrics",
        &metrics_s,
    ]);
    assert!(
        err.contains("stopped by Ctrl-C") && err.contains("cannot be resumed"),
        "{err}"
    );
    assert!(
        err.contains("the weights of epoch"),
        "the best epoch's weights: {err}"
    );
    Model::load(&out).expect("the interrupted run's model loads");
    let n = std::fs::read_to_string(&metrics).unwrap().lines().count();
    assert!(
        (3..100_000).contains(&n),
        "header and the epochs that ended: {n} lines"
    );
}

/// A streamed run with `--checkpoint`, stopped by Ctrl-C within a pass, resumes (reading that
/// pass's shards again and stepping from where it stopped) to the model and the per-epoch
/// losses of the same run never stopped, bit for bit.
#[test]
fn a_streamed_run_stopped_by_ctrl_c_resumes_to_the_same_model_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::s(&write(dir.path(), "t.csv", &table(3000, false)));
    let p = |n: &str| common::s(&dir.path().join(n));
    let (full, full_log, out, log, ck) = (
        p("full.st"),
        p("full.csv"),
        p("m.st"),
        p("m.csv"),
        p("c.ck"),
    );
    let run: Vec<&str> = vec![
        "train",
        &data,
        "--target",
        "y",
        "--epochs",
        "6",
        "--batch-size",
        "4",
        "--hidden",
        "64,64",
        "--max-memory",
        "64K",
        "--device",
        "cpu",
        "--lr-schedule",
        "cosine",
        "--patience",
        "50",
    ];
    let o = common::wgtrain(&[&run[..], &["--out", &full, "--metrics", &full_log, "-q"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let extra = ["--out", &out, "--metrics", &log, "--checkpoint", &ck];
    let err = ctrl_c_after_two_epochs(&[&run[..], &extra[..]].concat());
    assert!(err.contains("wgtrain train --resume"), "{err}");
    let done = losses(Path::new(&log)).len() - 1;
    assert!(
        (2..6).contains(&done),
        "stopped before the end: {done} epochs logged"
    );

    let o = common::wgtrain(&["train", "--resume", &ck]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("streaming"), "{}", stderr(&o));
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&full).unwrap(),
        "the resumed streamed run's model differs from the uninterrupted run's"
    );
    assert_eq!(losses(Path::new(&log)), losses(Path::new(&full_log)));
}

#[test]
fn a_csv_from_a_pipe_keeps_its_first_bytes() {
    // Neither the Parquet sniff nor the streaming estimate may read from a pipe: the bytes
    // they took were missing from the header ("l_length" for "sepal_length").
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pipe.safetensors");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args([
            "train",
            "/dev/stdin",
            "--target",
            "species",
            "--epochs",
            "1",
        ])
        .args(["--device", "cpu", "-q", "--out", &common::s(&out)])
        .env("WGTRAIN_LOG", "")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read(common::repo("data/iris.csv")).unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let m = Model::load(&out).unwrap();
    assert_eq!(
        m.schema.features[0], "sepal_length",
        "{:?}",
        m.schema.features
    );
}
