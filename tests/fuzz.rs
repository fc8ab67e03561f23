//! Property tests: random and mutated bytes never panic the CSV reader, the model loader or
//! the flag parser. Each target runs a bounded, seeded number of cases in `cargo test`; the
//! `#[ignore]`d `*_long` twins run for WGTRAIN_FUZZ_SECS seconds (default 600) with fresh
//! seeds and print how many cases ran:
//!
//! `cargo test --release --test fuzz -- --ignored --nocapture`

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use wgtrain::backend::cpu::CpuBackend;
use wgtrain::backend::gpu::DeviceChoice;
use wgtrain::cli::{Cli, Command, DeviceArgs, EvalArgs, PredictArgs};
use wgtrain::data::{
    DataSpec, Dataset, Forecast, LoadOptions, Normalizer, Schema, Table, read_table, split_indices,
};
use wgtrain::model::{Model, init_layers};
use wgtrain::spec::{Activation, Loss, Task};

/// Runs `test` on `cases` values of `strategy` from `seed`; panics with the (shrunk) input.
fn run_cases<S: Strategy>(
    name: &str,
    strategy: &S,
    cases: u32,
    seed: u64,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    match runner.run(strategy, test) {
        Ok(()) => {}
        Err(TestError::Fail(why, value)) => {
            let shown = format!("{value:?}");
            panic!(
                "{name}: seed {seed}: {why}\ninput: {}",
                &shown[..shown.len().min(4000)]
            )
        }
        Err(TestError::Abort(why)) => panic!("{name}: seed {seed}: aborted: {why}"),
    }
}

/// The long form: rounds of 1000 cases with a new seed each until `WGTRAIN_FUZZ_SECS` pass.
fn run_for<S: Strategy>(
    name: &str,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError> + Copy,
) where
    S::Value: std::fmt::Debug,
{
    let secs: u64 = std::env::var("WGTRAIN_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let start = Instant::now();
    let first_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs());
    let (mut cases, mut round) = (0u64, 0u64);
    while start.elapsed() < Duration::from_secs(secs) {
        run_cases(name, strategy, 1000, first_seed + round, test);
        cases += 1000;
        round += 1;
    }
    println!(
        "{name}: {cases} cases in {:.0} s without a panic (seeds {first_seed}..{})",
        start.elapsed().as_secs_f64(),
        first_seed + round
    );
}

// ---------------------------------------------------------------------------------------
// CSV reader

const CSVS: &[&str] = &[
    "x1,x2,y\n1,2,3\n4,5,6\n7,8,9.5\n-1,0.5,2\n3,3,3\n",
    "id,a,label\n1,0.5,cat\n2,0.25,dog\n3,1.5,cat\n4,2.5,dog\n5,3,bird\n",
    "day,views\n1,10\n2,12\n3,15\n4,13\n5,\n6,?\n",
    "\"q,uoted\",b,y\n\"1,5\",2,3\n\"x\"\"y\",4,5\n",
];

/// Pieces that break readers: empty, missing values, non-numbers, huge numbers, quotes,
/// separators, line ends, invalid UTF-8, NUL, long runs.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"".to_vec()),
        Just(b"?".to_vec()),
        Just(b"nan".to_vec()),
        Just(b"-inf".to_vec()),
        Just(b"1e400".to_vec()),
        Just(b"-1e-400".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\"\"".to_vec()),
        Just(b",".to_vec()),
        Just(b",,,".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"\0".to_vec()),
        Just("é".as_bytes().to_vec()),
        Just(b"y".to_vec()),
        Just(b"label".to_vec()),
        Just(b"x1".to_vec()),
        Just(vec![b'9'; 400]),
        Just(b"18446744073709551616".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ]
}

#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Replace(usize, usize, Vec<u8>),
    DuplicateLine(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), token()).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<usize>(), 0usize..6).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), 0usize..4, token()).prop_map(|(i, n, t)| Edit::Replace(i, n, t)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut b: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match e {
            Edit::Insert(i, t) => {
                let i = at(*i, b.len());
                b.splice(i..i, t.iter().copied());
            }
            Edit::Delete(i, n) | Edit::Replace(i, n, _) => {
                let i = at(*i, b.len());
                let j = (i + n).min(b.len());
                let with = match e {
                    Edit::Replace(_, _, t) => t.clone(),
                    _ => vec![],
                };
                b.splice(i..j, with);
            }
            Edit::DuplicateLine(i) => {
                let lines: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(|l| l.to_vec()).collect();
                let k = i % lines.len();
                let mut out = Vec::new();
                for (j, l) in lines.iter().enumerate() {
                    out.extend(l);
                    out.push(b'\n');
                    if j == k {
                        out.extend(l);
                        out.push(b'\n');
                    }
                }
                b = out;
            }
            Edit::Truncate(i) => b.truncate(at(*i, b.len())),
        }
    }
    b
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// Random bytes, or a valid CSV with up to 8 edits, optionally gzipped (and maybe cut).
fn csv_case() -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        0..CSVS.len(),
        proptest::collection::vec(edit(), 0..8),
        0u8..4,
        any::<usize>(),
    )
        .prop_map(|(k, edits, gz, cut)| {
            let b = apply(CSVS[k].as_bytes().to_vec(), &edits);
            match gz {
                0 => {
                    let z = gzip(&b);
                    let n = z.len();
                    z[..cut % (n + 1)].to_vec()
                }
                1 => gzip(&b),
                _ => b,
            }
        });
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..300),
        6 => mutated,
    ]
}

/// Reads the bytes as a data file and takes every path a command takes through it.
fn csv_never_panics(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join("d.csv");
    std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let Ok(table) = read_table(&path) else {
        return Ok(());
    };
    let mut targets: Vec<String> = vec!["y".into(), "label".into(), "views".into()];
    targets.extend(table.header.first().cloned());
    targets.extend(table.header.last().cloned());
    for t in &targets {
        for (task, window) in [
            (None, None),
            (Some(Task::Classification), None),
            (Some(Task::Regression), Some(2)),
        ] {
            let target = std::slice::from_ref(t);
            let spec = DataSpec {
                targets: target,
                drop: &[],
                task,
                window,
            };
            // The loader train and predict use (parallel, straight into the matrix) must
            // agree with the table reader: both fail, or both give the same rows.
            // Tiny blocks: every few bytes a block boundary inside a record.
            let opts = LoadOptions {
                block_bytes: 7,
                ..LoadOptions::default()
            };
            let loaded = Dataset::load(&path, &spec, &opts);
            let Ok(ds) = Dataset::from_table(&table, &spec) else {
                continue;
            };
            if let Ok(l) = &loaded {
                prop_assert_eq!(l.rows, ds.rows);
                let _ = Dataset::load_for_schema(&path, &l.schema, false, &opts);
            }
            let _ = Normalizer::fit(&ds.x, ds.rows, ds.n_features());
            let _ = split_indices(&ds, 0.3, 1, window.is_some());
            let _ = Dataset::for_schema(&table, &ds.schema, false);
            if window.is_some() {
                forecast_never_panics(&table, &ds.schema, t, bytes.len());
            }
        }
    }
    Ok(())
}

/// predict's reader for series models on `table` with its last few `target` cells made
/// unknown (empty or `?`, and with `salt` odd one more in the middle), and the features of
/// every forecast step built from it.
fn forecast_never_panics(table: &Table, schema: &Schema, target: &str, salt: usize) {
    let mut t = table.clone();
    let Some(col) = t.column(target) else {
        return;
    };
    let n = t.records.len();
    let mut unknown: Vec<usize> = (n.saturating_sub(salt % 5)..n).collect();
    if salt % 2 == 1 && n > 2 {
        unknown.push(n / 2);
    }
    for (k, &r) in unknown.iter().enumerate() {
        let cells: Vec<&str> = t.records[r]
            .iter()
            .enumerate()
            .map(|(c, v)| if c == col { ["", "?"][k % 2] } else { v })
            .collect();
        t.records[r] = csv::StringRecord::from(cells);
    }
    if let Ok(f) = Forecast::read(&t, schema) {
        for h in 0..f.steps {
            assert_eq!(f.features(h, &vec![0.5; h]).len(), f.ds.n_features());
        }
    }
}

#[test]
fn csv_reader_never_panics_on_random_and_mutated_files() {
    run_cases("csv", &csv_case(), 1500, 7, csv_never_panics);
}

#[test]
#[ignore = "long fuzzing run: WGTRAIN_FUZZ_SECS (default 600)"]
fn csv_reader_long() {
    run_for("csv", &csv_case(), csv_never_panics);
}

// ---------------------------------------------------------------------------------------
// Model loader

fn base_models() -> Vec<Model> {
    let model = |features: &[&str], task: Task, classes: &[&str], window, sizes: &[usize]| {
        let schema = Schema {
            features: features.iter().map(|f| f.to_string()).collect(),
            targets: vec![
                if task == Task::Regression {
                    "y"
                } else {
                    "label"
                }
                .into(),
            ],
            task,
            classes: classes.iter().map(|c| c.to_string()).collect(),
            window,
        };
        let (loss, target) = match task {
            Task::Regression => (
                Loss::Mse,
                Normalizer {
                    mean: vec![10.0],
                    std: vec![2.0],
                },
            ),
            Task::Classification => (Loss::CrossEntropy, Normalizer::identity(0)),
        };
        let d = features.len();
        let normalizer = Normalizer {
            mean: (0..d).map(|i| i as f32 * 0.5 - 1.0).collect(),
            std: (0..d).map(|i| 0.25 + i as f32).collect(),
        };
        let layers = init_layers(sizes, Activation::Sigmoid, 3);
        Model::new(
            schema,
            Activation::Sigmoid,
            loss,
            3,
            layers,
            normalizer,
            target,
        )
        .unwrap()
    };
    vec![
        model(&["a", "b", "c"], Task::Regression, &[], None, &[3, 4, 1]),
        model(
            &["a", "b", "c"],
            Task::Classification,
            &["cat", "dog", "bird"],
            None,
            &[3, 5, 3],
        ),
        model(
            &["y[t-2]", "y[t-1]"],
            Task::Regression,
            &[],
            Some(2),
            &[2, 1],
        ),
    ]
}

/// Values a hostile or careless editor puts in a model header.
fn header_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        Just(json!("[]")),
        Just(json!("[\"a\",\"a\"]")),
        Just(json!("[\"a\",\"b\",\"c\",\"d\"]")),
        Just(json!("[\"y\",\"z\"]")),
        Just(json!("[1,2]")),
        Just(json!("99999999999999999999")),
        Just(json!("18446744073709551615")),
        Just(json!("4294967296")),
        Just(json!("-1")),
        Just(json!("0")),
        Just(json!("2")),
        Just(json!("nan")),
        Just(json!("")),
        Just(json!("regression")),
        Just(json!("classification")),
        Just(json!("identity")),
        Just(json!("ce")),
        Just(json!("mae")),
        Just(json!(null)),
        Just(json!([0, 99999999999u64])),
        Just(json!([1])),
        Just(json!([])),
        Just(json!("F16")),
        Just(json!("F64")),
        (0u64..200).prop_map(|n| json!(n)),
    ]
}

const META_KEYS: &[&str] = &[
    "format",
    "task",
    "activation",
    "loss",
    "features",
    "targets",
    "classes",
    "seed",
    "window",
];

#[derive(Clone, Debug)]
enum ModelEdit {
    /// Sets header field path[0] (or path[0].path[1]) to a value.
    Header(usize, usize, serde_json::Value),
    /// Removes a header entry or a metadata key.
    Remove(usize, usize),
    /// Overwrites 4 data bytes with an f32 (NaN, 0, −1, huge, …).
    Float(usize, f32),
    /// Sets a metadata key (format, task, …, window) to a value.
    Meta(usize, serde_json::Value),
    /// Flips a byte anywhere.
    Byte(usize, u8),
    Truncate(usize),
}

fn model_edit() -> impl Strategy<Value = ModelEdit> {
    let special = prop_oneof![
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(0.0f32),
        Just(-1.0f32),
        Just(f32::MAX),
        Just(1e-45f32),
        any::<f32>(),
    ];
    prop_oneof![
        4 => (any::<usize>(), any::<usize>(), header_value()).prop_map(|(a, b, v)| ModelEdit::Header(a, b, v)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| ModelEdit::Remove(a, b)),
        4 => (0..META_KEYS.len(), header_value()).prop_map(|(k, v)| ModelEdit::Meta(k, v)),
        2 => (any::<usize>(), special).prop_map(|(i, f)| ModelEdit::Float(i, f)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| ModelEdit::Byte(i, b)),
        1 => any::<usize>().prop_map(ModelEdit::Truncate),
    ]
}

fn split_model(bytes: &[u8]) -> Option<(serde_json::Map<String, serde_json::Value>, Vec<u8>)> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header = serde_json::from_slice(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    Some((header, bytes[8 + n..].to_vec()))
}

fn join_model(header: &serde_json::Map<String, serde_json::Value>, data: &[u8]) -> Vec<u8> {
    let mut json = serde_json::to_vec(header).unwrap();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    out.extend(data);
    out
}

fn apply_model_edit(bytes: Vec<u8>, e: &ModelEdit) -> Vec<u8> {
    let pick = |m: &serde_json::Map<String, serde_json::Value>, i: usize| {
        let keys: Vec<String> = m.keys().cloned().collect();
        keys.get(i % keys.len().max(1)).cloned()
    };
    match e {
        ModelEdit::Header(a, b, _) | ModelEdit::Remove(a, b) => {
            let Some((mut h, data)) = split_model(&bytes) else {
                return bytes;
            };
            let Some(k) = pick(&h, *a) else {
                return bytes;
            };
            let value = match e {
                ModelEdit::Header(_, _, v) => Some(v.clone()),
                _ => None,
            };
            // Objects are the tensor entries (dtype, shape, data_offsets) and __metadata__.
            match (h.get_mut(&k), value) {
                (Some(serde_json::Value::Object(inner)), v) => {
                    if let Some(k2) = pick(inner, *b) {
                        match v {
                            Some(v) => inner.insert(k2, v),
                            None => inner.remove(&k2),
                        };
                    }
                }
                (_, Some(v)) => {
                    h.insert(k, v);
                }
                (_, None) => {
                    h.remove(&k);
                }
            }
            join_model(&h, &data)
        }
        ModelEdit::Meta(k, v) => {
            let Some((mut h, data)) = split_model(&bytes) else {
                return bytes;
            };
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let Some(serde_json::Value::Object(meta)) = h.get_mut("__metadata__") {
                meta.insert(META_KEYS[*k].to_string(), serde_json::Value::String(text));
            }
            join_model(&h, &data)
        }
        ModelEdit::Float(i, f) => {
            let mut b = bytes;
            if let Some((_, data)) = split_model(&b)
                && data.len() >= 4
            {
                let off = b.len() - data.len() + (i % (data.len() / 4)) * 4;
                b[off..off + 4].copy_from_slice(&f.to_le_bytes());
            }
            b
        }
        ModelEdit::Byte(i, v) => {
            let mut b = bytes;
            if !b.is_empty() {
                let n = b.len();
                b[i % n] = *v;
            }
            b
        }
        ModelEdit::Truncate(i) => {
            let mut b = bytes;
            let n = b.len();
            b.truncate(i % (n + 1));
            b
        }
    }
}

fn model_case() -> impl Strategy<Value = Vec<u8>> {
    let mutated =
        (0usize..3, proptest::collection::vec(model_edit(), 1..5)).prop_map(|(k, edits)| {
            let m = &base_models()[k];
            let mut b = m.to_bytes().unwrap();
            for e in &edits {
                b = apply_model_edit(b, e);
            }
            b
        });
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        8 => mutated,
    ]
}

/// Data with every column the base models name, for `predict` and `eval` on a fuzzed model.
const MODEL_DATA: &str = "a,b,c,y,label\n\
    1,2,3,10,cat\n0.5,1,-2,11,dog\n2,2,2,9,bird\n-1,0,1,12,cat\n3,1,0,8,dog\n";

/// A model that loads must run: `predict` and `eval` on a CSV end to end, predictions on
/// the CPU, and the same bytes back out.
fn model_never_panics(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let fail = |e: std::io::Error| TestCaseError::fail(e.to_string());
    let dir = tempfile::tempdir().map_err(fail)?;
    let (model_path, data) = (dir.path().join("m.st"), dir.path().join("d.csv"));
    std::fs::write(&model_path, &bytes).map_err(fail)?;
    std::fs::write(&data, MODEL_DATA).map_err(fail)?;
    let dev = DeviceArgs {
        device: DeviceChoice::Cpu,
        adapter: None,
        tune: wgtrain::backend::gpu::tune::Mode::Off,
    };
    let _ = wgtrain::cmd::predict::run(&PredictArgs {
        model: model_path.clone(),
        data: data.clone(),
        out: Some(dir.path().join("p.csv")),
        keep: vec!["label".into()],
        names: vec![],
        dev: dev.clone(),
    });
    let _ = wgtrain::cmd::eval::run(&EvalArgs {
        model: model_path,
        data,
        json: true,
        dev,
    });
    let Ok(m) = Model::from_bytes(&bytes, Path::new("fuzz.safetensors")) else {
        return Ok(());
    };
    let d = m.schema.features.len();
    let rows = 5;
    let x: Vec<f32> = (0..rows * d).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut be = CpuBackend::new();
    let out = wgtrain::train::predict(&mut be, &m, &x, rows)
        .map_err(|e| TestCaseError::fail(format!("a loaded model fails to predict: {e}")))?;
    prop_assert_eq!(out.len(), rows * m.outputs());
    let again = Model::from_bytes(&m.to_bytes().unwrap(), Path::new("again"))
        .map_err(|e| TestCaseError::fail(format!("a loaded model does not round-trip: {e}")))?;
    prop_assert_eq!(again, m);
    Ok(())
}

#[test]
fn model_loader_never_panics_on_random_and_mutated_files() {
    run_cases("model", &model_case(), 3000, 11, model_never_panics);
}

#[test]
#[ignore = "long fuzzing run: WGTRAIN_FUZZ_SECS (default 600)"]
fn model_loader_long() {
    run_for("model", &model_case(), model_never_panics);
}

// ---------------------------------------------------------------------------------------
// Flag parser

const FLAGS: &[&str] = &[
    "--target",
    "--drop",
    "--window",
    "--task",
    "--hidden",
    "--init",
    "--activation",
    "--loss",
    "--optimizer",
    "--lr",
    "--lr-schedule",
    "--lr-step",
    "--lr-gamma",
    "--lr-min",
    "--batch-size",
    "--epochs",
    "--val-split",
    "--val",
    "--val-every",
    "--seed",
    "--patience",
    "--clip",
    "--weight-decay",
    "--no-standardize",
    "--out",
    "--metrics",
    "--plot",
    "--keep",
    "--names",
    "--json",
    "--title",
    "--checkpoint",
    "--checkpoint-every",
    "--resume",
    "-q",
];

const VALUES: &[&str] = &[
    "y",
    "x1",
    "x1,x2",
    "label",
    "",
    "0",
    "1",
    "2",
    "3",
    "-1",
    "1e-50",
    "1e50",
    "1e-30",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "0.999",
    "1.5",
    "18446744073709551615",
    "99999999999",
    "none",
    "relu",
    "sigmoid",
    "identity",
    "adam",
    "sgd",
    "momentum",
    "mse",
    "mae",
    "ce",
    "constant",
    "step",
    "cosine",
    "regression",
    "classification",
    "he",
    "xavier",
    "1,0",
    "4,4",
    "3",
    ",",
    "é",
    "-",
    "@DATA",
    "@OUT",
    "@MET",
    "@PNG",
    "@SVG",
    "@NODIR",
    "@MODEL",
    "@VAL",
    "@CKPT",
];

fn flag_case() -> impl Strategy<Value = (usize, Vec<(usize, usize, bool)>)> {
    (
        0usize..4,
        proptest::collection::vec((0..FLAGS.len(), 0..VALUES.len(), any::<bool>()), 0..10),
    )
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("id,x1,x2,label,y\n");
        for i in 0..30 {
            let (a, b) = ((i as f32 * 0.7).sin(), (i as f32 * 0.3).cos());
            let label = ["cat", "dog"][i % 2];
            csv += &format!("{i},{a},{b},{label},{}\n", a + 2.0 * b);
        }
        std::fs::write(dir.path().join("d.csv"), &csv).unwrap();
        std::fs::write(dir.path().join("v.csv"), &csv).unwrap();
        let mut model = base_models().remove(0);
        model.schema.features = vec!["x1".into(), "x2".into(), "id".into()];
        model.save(&dir.path().join("m.safetensors")).unwrap();
        // Values such as `regression` land as relative paths (`--out regression`): keep
        // them in the temp dir, never in the repository.
        std::env::set_current_dir(dir.path()).unwrap();
        Files { dir }
    }
    fn path(&self, v: &str) -> String {
        let p = |name: &str| self.dir.path().join(name).display().to_string();
        match v {
            "@DATA" => p("d.csv"),
            "@VAL" => p("v.csv"),
            "@OUT" => p("out.safetensors"),
            "@MET" => p("metrics.csv"),
            "@PNG" => p("plot.png"),
            "@SVG" => p("plot.svg"),
            "@NODIR" => p("nodir/x.csv"),
            "@MODEL" => p("m.safetensors"),
            "@CKPT" => p("c.ckpt"),
            other => other.to_string(),
        }
    }
}

fn args_of(files: &Files, (cmd, flags): &(usize, Vec<(usize, usize, bool)>)) -> Vec<String> {
    let mut args = vec!["wgtrain".to_string()];
    match cmd {
        0 | 1 => args.extend(["train".into(), files.path("@DATA")]),
        2 => {
            args.extend(["predict".into(), files.path("@MODEL"), files.path("@DATA")]);
            // Predictions to a file unless the case says where: stdout would flood the log.
            if !flags.iter().any(|&(f, _, _)| FLAGS[f] == "--out") {
                args.extend(["--out".into(), files.path("@OUT")]);
            }
        }
        _ => args.extend(["eval".into(), files.path("@MODEL"), files.path("@DATA")]),
    }
    if *cmd == 0 {
        args.extend(["--target".into(), "y".into()]);
    }
    for &(f, v, with_value) in flags {
        args.push(FLAGS[f].to_string());
        if with_value {
            args.push(files.path(VALUES[v]));
        }
    }
    // Only the CPU: the property is about flags, not adapters.
    args.extend(["--device".into(), "cpu".into()]);
    args
}

/// Parses the arguments like `main`; a command line that parses is run when it is cheap
/// (a few hundred tiny epochs at most), so every flag's check is reached.
fn flags_never_panic(case: (usize, Vec<(usize, usize, bool)>)) -> Result<(), TestCaseError> {
    thread_local! {
        static FILES: Files = Files::new();
    }
    FILES.with(|files| {
        let args = args_of(files, &case);
        let Ok(cli) = Cli::try_parse_from(&args) else {
            return Ok(());
        };
        match &cli.command {
            Command::Train(a) => {
                let cheap = a.epochs <= 200
                    && a.hidden.0.iter().all(|&w| w <= 128)
                    && a.patience.unwrap_or(0) <= 1000;
                if cheap {
                    let _ = wgtrain::cli::run(cli);
                }
            }
            Command::Predict(_) | Command::Eval(_) => {
                let _ = wgtrain::cli::run(cli);
            }
            _ => {}
        }
        Ok(())
    })
}

#[test]
fn flag_parser_never_panics_on_random_command_lines() {
    run_cases("flags", &flag_case(), 250, 5, flags_never_panic);
}

#[test]
#[ignore = "long fuzzing run: WGTRAIN_FUZZ_SECS (default 600)"]
fn flag_parser_long() {
    run_for("flags", &flag_case(), flags_never_panic);
}
