//! End-to-end tests of the `wgtrain` binary: train → predict → eval on bundled data, the
//! contracts (model file, metrics, eval --json), reproducibility, and bad input.

mod common;

use std::path::{Path, PathBuf};

use common::{repo, s, tmp, wgtrain};

fn ok(args: &[&str]) -> String {
    let out = wgtrain(args);
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "wgtrain {args:?} failed:\n{se}\n{so}");
    so.into_owned()
}

/// Runs a command that must fail cleanly: non-zero exit, a message containing `want`, no panic.
fn fails(args: &[&str], want: &str) -> String {
    let out = wgtrain(args);
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "wgtrain {args:?} should fail");
    assert!(!se.contains("panicked"), "wgtrain {args:?} panicked:\n{se}");
    assert!(
        se.contains(want),
        "wgtrain {args:?}: stderr does not mention '{want}':\n{se}"
    );
    se
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn iris_train_predict_eval_end_to_end() {
    let d = tmp();
    let model = d.path().join("iris.safetensors");
    let metrics = d.path().join("m.csv");
    let log = ok(&[
        "train",
        &repo("data/iris.csv"),
        "--target",
        "species",
        "--epochs",
        "200",
        "--seed",
        "2",
        "--device",
        "cpu",
        "--out",
        &s(&model),
        "--metrics",
        &s(&metrics),
    ]);
    assert_eq!(
        log.lines().filter(|l| l.starts_with("epoch")).count(),
        200,
        "one line per epoch:\n{log}"
    );
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        m.starts_with("epoch,train_loss,val_loss,val_accuracy"),
        "{m}"
    );
    let last: Vec<f64> = m
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(last[3] >= 0.95, "held-out accuracy {} on iris", last[3]);
    let first: Vec<f64> = m
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        last[1] < first[1] / 3.0,
        "train loss fell from {} to {}",
        first[1],
        last[1]
    );

    let e = json(&ok(&[
        "eval",
        &s(&model),
        &repo("data/iris.csv"),
        "--json",
        "--device",
        "cpu",
    ]));
    assert_eq!(e["rows"], 150);
    assert!(e["accuracy"].as_f64().unwrap() > 0.95, "{e}");
    assert!(e["cross_entropy"].as_f64().unwrap() < 0.3, "{e}");

    let pred = d.path().join("p.csv");
    ok(&[
        "predict",
        &s(&model),
        &repo("data/iris.csv"),
        "--out",
        &s(&pred),
        "--device",
        "cpu",
    ]);
    let p = std::fs::read_to_string(&pred).unwrap();
    let mut lines = p.lines();
    assert_eq!(
        lines.next().unwrap(),
        "species,prob_setosa,prob_versicolor,prob_virginica"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 150);
    let correct = rows
        .iter()
        .zip(
            std::fs::read_to_string(repo("data/iris.csv"))
                .unwrap()
                .lines()
                .skip(1),
        )
        .filter(|(p, truth)| p.split(',').next() == truth.split(',').next_back())
        .count();
    assert!(
        correct as f64 / 150.0 > 0.95,
        "{correct} of 150 predicted right"
    );
    for r in &rows {
        let probs: f64 = r
            .split(',')
            .skip(1)
            .map(|v| v.parse::<f64>().unwrap())
            .sum();
        assert!(
            (probs - 1.0).abs() < 1e-4,
            "probabilities sum to {probs}: {r}"
        );
    }
}

#[test]
fn same_seed_gives_the_same_model_file_byte_for_byte() {
    let d = tmp();
    let run = |name: &str, seed: &str| -> Vec<u8> {
        let out = d.path().join(name);
        ok(&[
            "train",
            &repo("data/iris.csv"),
            "--target",
            "species",
            "--epochs",
            "15",
            "--seed",
            seed,
            "--hidden",
            "16,8",
            "--device",
            "cpu",
            "--out",
            &s(&out),
            "-q",
        ]);
        std::fs::read(out).unwrap()
    };
    let a = run("a.safetensors", "5");
    assert_eq!(a, run("b.safetensors", "5"), "same seed, same bytes");
    assert_ne!(a, run("c.safetensors", "6"), "another seed, another model");
}

/// A small regression table with two targets, written to `dir`.
fn regression_csv(dir: &Path, name: &str, rows: usize, seed: u64) -> PathBuf {
    let mut r = wgtrain::rng::Rng::new(seed);
    let mut text = String::from("id,x1,x2,x3,y,z\n");
    for i in 0..rows {
        let x: Vec<f64> = (0..3).map(|_| r.uniform() * 4.0 - 2.0).collect();
        let y = 50.0 + 20.0 * (x[0] * x[1]).sin() + 5.0 * x[2] + r.normal();
        let z = -3.0 + 0.5 * x[0] * x[0] + 0.1 * r.normal();
        text += &format!("{i},{:.5},{:.5},{:.5},{y:.5},{z:.5}\n", x[0], x[1], x[2]);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn multi_output_regression_reports_losses_in_target_units_like_eval() {
    let d = tmp();
    let train = regression_csv(d.path(), "train.csv", 600, 1);
    let val = regression_csv(d.path(), "val.csv", 150, 2);
    let model = d.path().join("r.safetensors");
    let metrics = d.path().join("m.csv");
    ok(&[
        "train",
        &s(&train),
        "--target",
        "y,z",
        "--drop",
        "id",
        "--val",
        &s(&val),
        "--hidden",
        "32,32",
        "--epochs",
        "60",
        "--device",
        "cpu",
        "--out",
        &s(&model),
        "--metrics",
        &s(&metrics),
        "-q",
    ]);
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert!(m.starts_with("epoch,train_loss,val_loss,val_rmse"), "{m}");
    let last: Vec<f64> = m
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let e = json(&ok(&[
        "eval",
        &s(&model),
        &s(&val),
        "--json",
        "--device",
        "cpu",
    ]));
    let mse = e["mse"].as_f64().unwrap();
    assert!(
        (last[2] - mse).abs() <= 1e-4 * mse,
        "val_loss {} but eval mse {mse}",
        last[2]
    );
    assert!((e["rmse"].as_f64().unwrap() - mse.sqrt()).abs() < 1e-9);
    // Predicting the mean would give an MSE of about (var(y) + var(z)) / 2 ≈ 100; a fitted
    // network does far better, in the targets' own units.
    assert!(mse < 25.0, "eval mse {mse}");

    let pred = ok(&[
        "predict",
        &s(&model),
        &s(&val),
        "--keep",
        "id",
        "--device",
        "cpu",
    ]);
    let mut lines = pred.lines();
    assert_eq!(lines.next().unwrap(), "id,y,z");
    let first: Vec<f64> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(first[0], 0.0);
    assert!(
        first[1] > 15.0 && first[1] < 85.0,
        "y is predicted in its own units: {first:?}"
    );
}

#[test]
fn linear_model_and_mae_and_sgd_train() {
    let d = tmp();
    let train = regression_csv(d.path(), "t.csv", 300, 3);
    let model = d.path().join("lin.safetensors");
    let log = ok(&[
        "train",
        &s(&train),
        "--target",
        "z",
        "--drop",
        "id,y",
        "--hidden",
        "none",
        "--loss",
        "mae",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--epochs",
        "30",
        "--device",
        "cpu",
        "--out",
        &s(&model),
    ]);
    assert!(log.contains("val_rmse"), "{log}");
    let bytes = std::fs::read(&model).unwrap();
    let m = wgtrain::model::Model::from_bytes(&bytes, &model).unwrap();
    assert_eq!(m.sizes(), vec![3, 1], "y = b + Wx has one layer");
    assert_eq!(m.loss.as_str(), "mae");
}

#[test]
fn integer_labels_can_be_classes_and_softmax_mse_trains() {
    let d = tmp();
    let mut text = String::from("a,b,label\n");
    let mut r = wgtrain::rng::Rng::new(4);
    for _ in 0..240 {
        let (a, b) = (r.normal(), r.normal());
        let label = if a + b > 0.5 {
            2
        } else if a - b > 0.0 {
            10
        } else {
            1
        };
        text += &format!("{a:.4},{b:.4},{label}\n");
    }
    let data = d.path().join("c.csv");
    std::fs::write(&data, text).unwrap();
    let model = d.path().join("c.safetensors");
    let log = ok(&[
        "train",
        &s(&data),
        "--target",
        "label",
        "--task",
        "classification",
        "--loss",
        "mse",
        "--epochs",
        "80",
        "--device",
        "cpu",
        "--out",
        &s(&model),
        "--seed",
        "3",
    ]);
    let acc: f64 = log
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(7)
        .unwrap()
        .parse()
        .unwrap();
    assert!(acc > 0.85, "accuracy {acc}:\n{log}");
    let m = wgtrain::model::Model::load(&model).unwrap();
    assert_eq!(
        m.schema.classes,
        vec!["1", "2", "10"],
        "integer labels sorted as numbers"
    );
    let pred = ok(&["predict", &s(&model), &s(&data), "--device", "cpu"]);
    assert!(pred.starts_with("label,prob_1,prob_2,prob_10\n"), "{pred}");
}

#[test]
fn early_stopping_saves_the_best_epoch() {
    let d = tmp();
    // Few rows and a wide network: it overfits, so validation loss turns up.
    let train = regression_csv(d.path(), "t.csv", 60, 5);
    let val = regression_csv(d.path(), "v.csv", 200, 6);
    let model = d.path().join("e.safetensors");
    let metrics = d.path().join("m.csv");
    let out = wgtrain(&[
        "train",
        &s(&train),
        "--target",
        "y",
        "--drop",
        "id",
        "--val",
        &s(&val),
        "--hidden",
        "256,256",
        "--lr",
        "0.01",
        "--epochs",
        "400",
        "--patience",
        "10",
        "--device",
        "cpu",
        "--out",
        &s(&model),
        "--metrics",
        &s(&metrics),
        "-q",
    ]);
    assert!(out.status.success());
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(se.contains("stopped early at epoch"), "{se}");
    let rows: Vec<Vec<f64>> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert!(rows.len() < 400);
    let best = rows.iter().map(|r| r[2]).fold(f64::INFINITY, f64::min);
    let e = json(&ok(&[
        "eval",
        &s(&model),
        &s(&val),
        "--json",
        "--device",
        "cpu",
    ]));
    let mse = e["mse"].as_f64().unwrap();
    assert!(
        (mse - best).abs() <= 1e-4 * best,
        "saved model scores {mse}, best logged val_loss {best}"
    );
}

#[test]
fn bad_flags_are_named_and_never_panic() {
    let iris = repo("data/iris.csv");
    let d = tmp();
    let out = s(&d.path().join("m.safetensors"));
    let base = [
        "train",
        iris.as_str(),
        "--target",
        "species",
        "--device",
        "cpu",
        "--out",
        out.as_str(),
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    for (extra, want) in [
        (&["--batch-size", "0"][..], "--batch-size"),
        (&["--lr", "-0.1"][..], "--lr"),
        (&["--lr", "0"][..], "--lr"),
        (&["--val-split", "1.5"][..], "--val-split"),
        (&["--val-split", "1"][..], "--val-split"),
        (&["--hidden", "10,abc"][..], "--hidden"),
        (&["--hidden", "10,0"][..], "--hidden"),
        (&["--epochs", "0"][..], "--epochs"),
        (&["--activation", "tanh"][..], "--activation"),
        (&["--optimizer", "lbfgs"][..], "--optimizer"),
        (&["--loss", "mae"][..], "--loss"),
        (&["--device", "tpu"][..], "--device"),
        (&["--task", "ranking"][..], "--task"),
    ] {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let se = fails(&args, want);
        assert_eq!(
            wgtrain(&args).status.code(),
            Some(2),
            "a flag error exits 2: {se}"
        );
    }
    fails(
        &["train", &iris, "--target", "colour", "--device", "cpu"],
        "colour",
    );
    fails(
        &[
            "train", &iris, "--target", "species", "--drop", "petal", "--device", "cpu",
        ],
        "petal",
    );
    assert!(
        !d.path().join("m.safetensors").exists(),
        "nothing was written"
    );
}

#[test]
fn bad_files_are_named_with_line_and_column() {
    let d = tmp();
    let write = |name: &str, text: &str| -> String {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        s(&p)
    };
    let missing = s(&d.path().join("nope.csv"));
    fails(
        &["train", &missing, "--target", "y", "--device", "cpu"],
        "nope.csv",
    );
    let empty = write("empty.csv", "");
    fails(
        &["train", &empty, "--target", "y", "--device", "cpu"],
        "empty.csv",
    );
    let header = write("header.csv", "a,b,y\n");
    fails(
        &["train", &header, "--target", "y", "--device", "cpu"],
        "header.csv",
    );
    let ragged = write("ragged.csv", "a,b,y\n1,2,3\n4,5\n");
    fails(
        &["train", &ragged, "--target", "y", "--device", "cpu"],
        "ragged.csv:3",
    );
    let text = write("text.csv", "a,b,y\n1,2,3\n4,x,6\n7,8,9\n");
    fails(
        &["train", &text, "--target", "y", "--device", "cpu"],
        "text.csv:3:2",
    );
    let nan = write("nan.csv", "a,b,y\n1,2,3\n4,5,NaN\n7,8,9\n");
    fails(
        &["train", &nan, "--target", "y", "--device", "cpu"],
        "nan.csv:3:3",
    );
    let one_class = write("one.csv", "a,b,y\n1,2,cat\n4,5,cat\n7,8,cat\n");
    fails(
        &["train", &one_class, "--target", "y", "--device", "cpu"],
        "one class",
    );
    let few = write("few.csv", "a,y\n1,2\n");
    fails(
        &["train", &few, "--target", "y", "--device", "cpu"],
        "--val-split",
    );
}

#[test]
fn corrupt_models_and_missing_columns_are_clear_errors() {
    let d = tmp();
    let model = d.path().join("m.safetensors");
    ok(&[
        "train",
        &repo("data/iris.csv"),
        "--target",
        "species",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        &s(&model),
        "-q",
    ]);
    let bytes = std::fs::read(&model).unwrap();
    let cut = d.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &["eval", &s(&cut), &repo("data/iris.csv"), "--device", "cpu"],
        "cut.safetensors",
    );
    let junk = d.path().join("junk.safetensors");
    std::fs::write(&junk, b"this is not a model").unwrap();
    fails(
        &[
            "predict",
            &s(&junk),
            &repo("data/iris.csv"),
            "--device",
            "cpu",
        ],
        "junk.safetensors",
    );

    let csv = d.path().join("less.csv");
    std::fs::write(&csv, "sepal_length,petal_width,species\n5.1,0.2,setosa\n").unwrap();
    let se = fails(
        &["predict", &s(&model), &s(&csv), "--device", "cpu"],
        "sepal_width",
    );
    assert!(
        se.contains("petal_length"),
        "names every missing column: {se}"
    );
    // eval needs the target; predict does not.
    let no_target = d.path().join("nt.csv");
    std::fs::write(
        &no_target,
        "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n",
    )
    .unwrap();
    ok(&["predict", &s(&model), &s(&no_target), "--device", "cpu"]);
    fails(
        &["eval", &s(&model), &s(&no_target), "--device", "cpu"],
        "species",
    );
}

#[test]
fn a_failed_run_never_harms_an_existing_model_file() {
    let d = tmp();
    let model = d.path().join("keep.safetensors");
    std::fs::write(&model, b"precious").unwrap();
    let bad = d.path().join("bad.csv");
    std::fs::write(&bad, "a,y\n1,2\n3,oops\n").unwrap();
    fails(
        &[
            "train",
            &s(&bad),
            "--target",
            "y",
            "--task",
            "regression",
            "--device",
            "cpu",
            "--out",
            &s(&model),
        ],
        "bad.csv",
    );
    assert_eq!(std::fs::read(&model).unwrap(), b"precious");
    let leftovers: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temporary files are left behind");
}

/// The course's homework 1 from `../shared/data` (skipped where the data set is absent):
/// the Kaggle submission `id,tested_positive` comes straight out of predict.
#[test]
fn covid_homework_submission_has_the_kaggle_columns() {
    let shared = std::env::var("WGTRAIN_SHARED_DATA").unwrap_or_else(|_| repo("../shared/data"));
    let dir = Path::new(&shared).join("covid2021");
    if !dir.join("covid.train.csv").exists() {
        common::skip(&format!("{} not found", dir.display()));
        return;
    }
    let d = tmp();
    let model = d.path().join("covid.safetensors");
    ok(&[
        "train",
        &s(&dir.join("covid.train.csv")),
        "--target",
        "tested_positive.2",
        "--drop",
        "id",
        "--hidden",
        "64",
        "--optimizer",
        "momentum",
        "--lr",
        "0.05",
        "--batch-size",
        "270",
        "--epochs",
        "150",
        "--val-every",
        "10",
        "--device",
        "cpu",
        "--out",
        &s(&model),
        "-q",
    ]);
    let sub = d.path().join("sub.csv");
    ok(&[
        "predict",
        &s(&model),
        &s(&dir.join("covid.test.csv")),
        "--keep",
        "id",
        "--names",
        "tested_positive",
        "--out",
        &s(&sub),
        "--device",
        "cpu",
    ]);
    let text = std::fs::read_to_string(&sub).unwrap();
    assert!(text.starts_with("id,tested_positive\n"), "{}", &text[..40]);
    let first: Vec<f64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        first[0] == 0.0 && (2.0..45.0).contains(&first[1]),
        "a prediction in the target's range: {first:?}"
    );
    assert_eq!(text.lines().count(), 894);
}

#[test]
fn series_windows_train_on_the_past_and_predict_with_the_same_window() {
    let d = tmp();
    let model = d.path().join("w.safetensors");
    let metrics = d.path().join("m.csv");
    ok(&[
        "train",
        &repo("data/views.csv"),
        "--target",
        "views",
        "--drop",
        "date",
        "--window",
        "7",
        "--hidden",
        "32",
        "--epochs",
        "30",
        "--lr",
        "0.003",
        "--lr-schedule",
        "cosine",
        "--device",
        "cpu",
        "--out",
        &s(&model),
        "--metrics",
        &s(&metrics),
        "-q",
    ]);
    let m = wgtrain::model::Model::load(&model).unwrap();
    assert_eq!(m.schema.window, Some(7));
    assert_eq!(m.schema.features.len(), 7, "{:?}", m.schema.features);
    let records = std::fs::read_to_string(repo("data/views.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    let pred = ok(&[
        "predict",
        &s(&model),
        &repo("data/views.csv"),
        "--keep",
        "date",
        "--device",
        "cpu",
    ]);
    let lines: Vec<&str> = pred.lines().collect();
    assert_eq!(lines[0], "date,views");
    assert_eq!(
        lines.len() - 1,
        records - 7,
        "the first 7 days yield no sample"
    );
    assert!(
        lines[1].starts_with("2017-01-08,"),
        "day 8 is the first predicted: {}",
        lines[1]
    );
    // The network beats "tomorrow is like today" is too much to ask in 30 epochs, but it
    // must be far better than predicting the mean (the series' standard deviation ≈ 1000).
    let rmse: f64 = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!(rmse < 900.0, "validation RMSE {rmse}");
}

#[test]
fn schedule_flags_are_checked() {
    let iris = repo("data/iris.csv");
    let base = [
        "train",
        iris.as_str(),
        "--target",
        "species",
        "--device",
        "cpu",
        "--epochs",
        "1",
    ];
    let run = |extra: &[&str], want: &str| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        fails(&args, want);
    };
    run(&["--lr-schedule", "exp"], "--lr-schedule");
    run(&["--lr-schedule", "step", "--lr-step", "0"], "--lr-step");
    run(&["--lr-schedule", "step", "--lr-gamma", "2"], "--lr-gamma");
    run(&["--lr-schedule", "cosine", "--lr-min", "0.5"], "--lr-min");
    run(&["--window", "0"], "--window");
    run(&["--val-split", "0", "--patience", "3"], "--patience");
}

#[test]
fn divergence_exits_1_as_a_training_error() {
    let d = tmp();
    let model = d.path().join("m.safetensors");
    let args = [
        "train",
        &repo("data/friedman1.csv"),
        "--target",
        "y",
        "--optimizer",
        "sgd",
        "--lr",
        "1e6",
        "--epochs",
        "20",
        "--device",
        "cpu",
        "--out",
        &s(&model),
        "-q",
    ];
    let se = fails(&args, "diverged at epoch");
    assert_eq!(
        wgtrain(&args).status.code(),
        Some(1),
        "not a usage error: {se}"
    );
    assert!(!model.exists(), "no model file from a diverged run");
}

#[test]
fn eval_refuses_metrics_that_overflow_instead_of_printing_null() {
    let d = tmp();
    let data = regression_csv(d.path(), "r.csv", 80, 4);
    let model = d.path().join("r.safetensors");
    let train = [
        "train",
        &s(&data),
        "--target",
        "y",
        "--epochs",
        "2",
        "--device",
        "cpu",
    ];
    ok(&[&train[..], &["--out", &s(&model)]].concat());
    let sane = json(&ok(&[
        "eval",
        &s(&model),
        &s(&data),
        "--json",
        "--device",
        "cpu",
    ]));
    assert!(sane["mse"].is_number(), "{sane}");
    // Finite weights whose outputs (1e30 standardized units) square past f32's range.
    let mut m = wgtrain::model::Model::load(&model).unwrap();
    for b in &mut m.layers.last_mut().unwrap().bias {
        *b = 1e30;
    }
    m.save(&model).unwrap();
    let err = fails(
        &["eval", &s(&model), &s(&data), "--json", "--device", "cpu"],
        "not finite numbers",
    );
    assert!(
        err.contains("r.safetensors") && err.contains("largest prediction"),
        "{err}"
    );
}

#[test]
fn the_accuracy_plot_beside_plot_is_planned_like_every_other_output() {
    // `--plot p.png` also draws `p.acc.png` for classes: an --out run used to write it without
    // planning it, so a data file of that name was replaced by a PNG.
    let d = tmp();
    let data = d.path().join("p.acc.png");
    std::fs::copy(repo("data/iris.csv"), &data).unwrap();
    let before = std::fs::read(&data).unwrap();
    let err = fails(
        &[
            "train",
            &s(&data),
            "--target",
            "species",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            &s(&d.path().join("m.safetensors")),
            "--plot",
            &s(&d.path().join("p.png")),
        ],
        "--plot",
    );
    assert!(err.contains("p.acc.png"), "{err}");
    assert_eq!(
        std::fs::read(&data).unwrap(),
        before,
        "the data file is untouched"
    );
}
