//! Parquet input: files written by pandas + pyarrow (tests/data/make_parquet.py) read into the
//! same dataset as the same rows in CSV; nulls and bad choices named by file, row group,
//! column and row; train, eval and predict on a .parquet file from the command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use wgtrain::data::{DataSpec, Dataset, LoadOptions, Schema};
use wgtrain::spec::Task;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn spec<'a>(targets: &'a [String], drop: &'a [String], task: Option<Task>) -> DataSpec<'a> {
    DataSpec {
        targets,
        drop,
        task,
        window: None,
    }
}

fn load(name: &str, target: &str, task: Option<Task>) -> wgtrain::Result<Dataset> {
    let targets = vec![target.to_string()];
    // The text column is a feature only when it is not the target.
    let drop: Vec<String> = if target == "species" || !name.starts_with("mixed") {
        Vec::new()
    } else {
        vec!["species".to_string()]
    };
    Dataset::load(
        &data(name),
        &spec(&targets, &drop, task),
        &LoadOptions::default(),
    )
}

#[test]
fn pandas_parquet_reads_like_the_same_csv() {
    let pq = load("mixed.parquet", "species", None).unwrap();
    let csv = load("mixed.csv", "species", None).unwrap();
    assert_eq!(pq.schema.task, Task::Classification);
    assert_eq!(pq.schema.features, ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(pq.schema.classes, ["setosa", "versicolor", "virginica"]);
    assert_eq!(pq.rows, 50);
    // Every width (f64, f32, int8, int64, uint16, bool) gives the f32 its text gives.
    for (i, (p, c)) in pq.x.iter().zip(&csv.x).enumerate() {
        assert_eq!(p.to_bits(), c.to_bits(), "cell {i}: parquet {p} csv {c}");
    }
    assert_eq!(pq.y, csv.y);
    // Rows are numbered from 1 over the whole file (4 row groups here).
    assert_eq!(pq.lines.first(), Some(&1));
    assert_eq!(pq.lines.last(), Some(&50));
    // A number column as a regression target, and as classes when asked.
    let reg = load("mixed.parquet", "c", None).unwrap();
    assert_eq!(reg.schema.task, Task::Regression);
    let by_csv = load("mixed.csv", "c", None).unwrap();
    assert_eq!((reg.y, reg.x), (by_csv.y, by_csv.x));
    let cls = load("mixed.parquet", "f", Some(Task::Classification)).unwrap();
    assert_eq!(cls.schema.classes, ["0", "1"]);
    // A few whole numbers are classes without being asked, in Parquet as in the CSV.
    let (pq_f, csv_f) = (
        load("mixed.parquet", "f", None).unwrap(),
        load("mixed.csv", "f", None).unwrap(),
    );
    assert_eq!(csv_f.schema.task, Task::Classification);
    assert_eq!(pq_f.schema.task, csv_f.schema.task);
    assert_eq!(pq_f.schema.classes, csv_f.schema.classes);
    assert_eq!(pq_f.y, csv_f.y);
}

#[test]
fn for_model_reads_parquet_columns_by_name() {
    let features: Vec<String> = ["e", "a"].iter().map(|s| s.to_string()).collect();
    let targets = vec!["species".to_string()];
    let classes: Vec<String> = ["setosa", "versicolor", "virginica"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cols = Schema {
        features,
        targets,
        task: Task::Classification,
        classes,
        window: None,
    };
    let opts = LoadOptions::default();
    let (pq, has) = Dataset::load_for_schema(&data("mixed.parquet"), &cols, true, &opts).unwrap();
    let (csv, _) = Dataset::load_for_schema(&data("mixed.csv"), &cols, true, &opts).unwrap();
    assert!(has);
    assert_eq!((pq.x, pq.y), (csv.x, csv.y));
    let few = ["setosa".to_string(), "virginica".to_string()];
    let cols = Schema {
        classes: few.to_vec(),
        ..cols
    };
    let e = Dataset::load_for_schema(&data("mixed.parquet"), &cols, true, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mixed.parquet") && e.contains("row group 0"),
        "{e}"
    );
    assert!(
        e.contains("'versicolor' is not one of the model's classes"),
        "{e}"
    );
}

#[test]
fn nulls_and_bad_choices_name_file_row_group_column_and_row() {
    let e = load("nulls.parquet", "y", None).unwrap_err().to_string();
    for part in [
        "nulls.parquet",
        "row group 1",
        "column 'b'",
        "row 7",
        "missing value",
    ] {
        assert!(e.contains(part), "expected {part:?} in {e}");
    }
    let e = load("nulls.parquet", "z", None).unwrap_err().to_string();
    assert!(
        e.contains("--target") && e.contains("columns are: a, b, y"),
        "{e}"
    );
    // Text that is not a number, as a feature.
    let targets = vec!["a".to_string()];
    let e = Dataset::load(
        &data("mixed.parquet"),
        &spec(&targets, &[], None),
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("column 'species', row 1") && e.contains("--drop species"),
        "{e}"
    );
}

fn wgtrain(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args(args)
        .output()
        .expect("run wgtrain")
}

#[test]
fn train_eval_predict_on_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let pq = data("mixed.parquet");
    let out = wgtrain(&[
        "train",
        pq.to_str().unwrap(),
        "--target",
        "d",
        "--drop",
        "species",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--out",
        model.to_str().unwrap(),
        "-q",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eval = wgtrain(&[
        "eval",
        model.to_str().unwrap(),
        pq.to_str().unwrap(),
        "--json",
        "--device",
        "cpu",
    ]);
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let json = String::from_utf8_lossy(&eval.stdout);
    assert!(json.contains("\"rows\":50"), "{json}");
    // The same rows as CSV give the same metrics.
    let csv = data("mixed.csv");
    let eval_csv = wgtrain(&[
        "eval",
        model.to_str().unwrap(),
        csv.to_str().unwrap(),
        "--json",
        "--device",
        "cpu",
    ]);
    assert_eq!(String::from_utf8_lossy(&eval_csv.stdout), json);
    let pred = wgtrain(&[
        "predict",
        model.to_str().unwrap(),
        pq.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(
        pred.status.success(),
        "{}",
        String::from_utf8_lossy(&pred.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&pred.stdout).lines().count(), 51);
}
