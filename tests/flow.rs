//! End-to-end tests of the student's workflow (issue 9): column patterns, honest splits,
//! cross-validation, `train --json`, run folders, sweeps, class inference, `--init-from`, and
//! the readable `eval`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn wgtrain_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args(args)
        .current_dir(dir)
        .env("WGTRAIN_LOG", "")
        .output()
        .expect("the wgtrain binary runs")
}

/// (stdout, stderr) of a command that must succeed.
fn ok_in(dir: &Path, args: &[&str]) -> (String, String) {
    let out = wgtrain_in(dir, args);
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "wgtrain {args:?} failed:\n{se}\n{so}");
    (so, se)
}

/// A command that must fail with exit code 2 (a flag problem), naming `want`, without a panic.
fn flag_error(dir: &Path, args: &[&str], want: &str) -> String {
    let out = wgtrain_in(dir, args);
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "wgtrain {args:?}:\n{se}");
    assert!(!se.contains("panicked"), "{se}");
    assert!(se.contains(want), "wgtrain {args:?}: no '{want}' in:\n{se}");
    se
}

fn iris() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/iris.csv")
        .to_string_lossy()
        .into_owned()
}

fn last_json(stdout: &str) -> Value {
    let line = stdout.trim().lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {stdout}"))
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A homework-like table: `n_groups` states (one-hot ST0..), `days` rows each in time order,
/// a slowly drifting signal per state, the target the next value, and an id.
fn panel_csv(dir: &Path, n_groups: usize, days: usize) -> PathBuf {
    let mut r = wgtrain::rng::Rng::new(11);
    let mut text = String::from("id");
    for g in 0..n_groups {
        text += &format!(",ST{g}");
    }
    text += ",cli,cli.1,mask,noise,y\n";
    let mut id = 0;
    for g in 0..n_groups {
        let mut level = 5.0 + 3.0 * g as f64;
        for _ in 0..days {
            level += 0.3 * r.normal();
            let (c0, c1) = (level + 0.1 * r.normal(), level + 0.1 * r.normal());
            let mask = 50.0 - level + r.normal();
            text += &format!("{id}");
            for h in 0..n_groups {
                text += if h == g { ",1" } else { ",0" };
            }
            text += &format!(
                ",{c0:.4},{c1:.4},{mask:.4},{:.4},{:.4}\n",
                r.normal(),
                0.8 * level + 0.2 * c1 + 0.05 * r.normal()
            );
            id += 1;
        }
    }
    let p = dir.join("panel.csv");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn feature_patterns_and_select_k_choose_the_inputs() {
    let d = tempfile::tempdir().unwrap();
    let data = s(&panel_csv(d.path(), 4, 30));
    let base = [
        "train", &data, "--target", "y", "--epochs", "2", "--device", "cpu", "--json", "-q",
    ];
    let run = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        last_json(&ok_in(d.path(), &args).0)
    };
    let j = run(&["--features", "ST0:ST3,cli*", "--out", "a.safetensors"]);
    assert_eq!(
        j["features"],
        serde_json::json!(["ST0", "ST1", "ST2", "ST3", "cli", "cli.1"])
    );
    let j = run(&["--drop", "id,ST*,noi?e", "--out", "b.safetensors"]);
    assert_eq!(j["features"], serde_json::json!(["cli", "cli.1", "mask"]));
    // The target is never a feature, even when a pattern names it.
    let j = run(&[
        "--features",
        "*",
        "--drop",
        "id",
        "--select-k",
        "2",
        "--out",
        "c.safetensors",
    ]);
    let f = j["features"].as_array().unwrap();
    assert_eq!(f.len(), 2);
    assert!(f.iter().all(|n| n != "y" && n != "noise"), "{j}");
    let model = wgtrain::model::Model::load(&d.path().join("c.safetensors")).unwrap();
    assert_eq!(
        serde_json::json!(model.schema.features),
        j["features"],
        "stored in the model"
    );
    flag_error(
        d.path(),
        &[&base[..], &["--features", "cli_1"]].concat(),
        "did you mean: cli, cli.1",
    );
    flag_error(
        d.path(),
        &[&base[..], &["--drop", "ZZ*"]].concat(),
        "--drop: no column matches 'ZZ*'",
    );
    flag_error(
        d.path(),
        &[&base[..], &["--features", "cli.1:ST0"]].concat(),
        "comes after",
    );
    flag_error(
        d.path(),
        &[&base[..], &["--select-k", "99"]].concat(),
        "--select-k",
    );
}

#[test]
fn val_last_per_group_and_grouped_splits() {
    let d = tempfile::tempdir().unwrap();
    let data = s(&panel_csv(d.path(), 5, 20));
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train", &data, "--target", "y", "--drop", "id", "--epochs", "3",
        ];
        args.extend_from_slice(&["--device", "cpu", "--json", "-q", "--out", "m.safetensors"]);
        args.extend_from_slice(extra);
        last_json(&ok_in(d.path(), &args).0)
    };
    // The last 25% of each state's 20 days: 5 × 5 rows.
    let j = train(&["--val-last", "0.25", "--group", "ST0:ST4"]);
    assert_eq!(
        (j["train_rows"].as_u64(), j["val_rows"].as_u64()),
        (Some(75), Some(25))
    );
    // Without groups, the last 25 rows of the file: one state and a bit.
    let j = train(&["--val-last", "0.25"]);
    assert_eq!(j["val_rows"], 25);
    // --val-split with groups moves round(0.4·5) = 2 whole states.
    let j = train(&["--val-split", "0.4", "--group", "ST0:ST4"]);
    assert_eq!(j["val_rows"], 40);
    flag_error(
        d.path(),
        &["train", &data, "--target", "y", "--val-last", "1.5"],
        "--val-last",
    );
    flag_error(
        d.path(),
        &[
            "train",
            &data,
            "--target",
            "y",
            "--val-last",
            "0.2",
            "--val-every",
            "10",
        ],
        "--val-every",
    );
    flag_error(
        d.path(),
        &["train", &data, "--target", "y", "--group", "XX"],
        "--group: no column 'XX'",
    );
}

#[test]
fn cross_validation_prints_folds_and_refits() {
    let d = tempfile::tempdir().unwrap();
    let iris = iris();
    let args = [
        "train",
        &iris,
        "--target",
        "species",
        "--cv",
        "3",
        "--epochs",
        "60",
        "--lr",
        "0.01",
        "--device",
        "cpu",
        "--json",
        "--out",
        "cv.safetensors",
    ];
    let (so, se) = ok_in(d.path(), &args);
    let j = last_json(&so);
    let cv = &j["cv"];
    assert_eq!(cv["k"], 3);
    let folds = cv["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 3);
    let accs: Vec<f64> = folds
        .iter()
        .map(|f| f["val_accuracy"].as_f64().unwrap())
        .collect();
    // Stratified: 150 rows, 3 classes of 50 → 50 validation rows per fold.
    assert!(
        folds
            .iter()
            .all(|f| f["val_rows"] == 50 && f["train_rows"] == 100),
        "{cv}"
    );
    let mean = accs.iter().sum::<f64>() / 3.0;
    assert!((cv["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!(mean > 0.8, "{cv}");
    assert!(se.contains("fold 1/3") && se.contains("fold 3/3"), "{se}");
    assert!(se.contains("cv 3 folds: val_accuracy"), "{se}");
    assert_eq!(j["train_rows"], 150, "the refit uses every row");
    assert!(d.path().join("cv.safetensors").is_file());
    // --no-refit: the folds only, no model file.
    let mut args = args.to_vec();
    args.extend_from_slice(&["--no-refit", "-q"]);
    args.retain(|a| *a != "--out" && *a != "cv.safetensors");
    let (so, se) = ok_in(d.path(), &args);
    let j = last_json(&so);
    assert_eq!(
        j["cv"]["mean"], cv["mean"],
        "the same seed gives the same folds"
    );
    assert_eq!(j["model"], Value::Null);
    assert_eq!(se.lines().count(), 1, "-q: only the summary line:\n{se}");
    flag_error(
        d.path(),
        &["train", &iris, "--target", "species", "--cv", "1"],
        "--cv",
    );
    flag_error(
        d.path(),
        &["train", &iris, "--target", "species", "--no-refit"],
        "--cv",
    );
}

#[test]
fn run_folders_record_the_run_and_serve_predict_and_eval() {
    let d = tempfile::tempdir().unwrap();
    let iris = iris();
    let args = [
        "train", &iris, "--target", "species", "--epochs", "5", "--device", "cpu", "-q",
    ];
    let (so, se) = ok_in(d.path(), &args);
    assert!(so.is_empty(), "-q: nothing on stdout without --json: {so}");
    assert_eq!(se.lines().count(), 1, "{se}");
    assert!(se.contains("runs/1-iris/"), "the folder is printed: {se}");
    let dir = d.path().join("runs/1-iris");
    for f in [
        "model.safetensors",
        "metrics.csv",
        "loss.png",
        "loss.acc.png",
        "run.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["flags"]["lr"], "0.001", "defaults are recorded");
    assert_eq!(run["flags"]["epochs"], "5");
    assert_eq!(
        run["data"][0]["bytes"],
        std::fs::metadata(&iris).unwrap().len()
    );
    assert_eq!(run["data"][0]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(run["wgtrain"], env!("CARGO_PKG_VERSION"));
    assert!(run["device"].as_str().unwrap().starts_with("cpu"));
    assert_eq!(run["result"]["epochs_run"], 5);
    // A second run never overwrites the first.
    ok_in(d.path(), &args);
    assert!(d.path().join("runs/2-iris/model.safetensors").is_file());
    // predict and eval take the folder.
    let (so, _) = ok_in(
        d.path(),
        &["eval", "runs/1-iris", &iris, "--json", "--device", "cpu"],
    );
    assert_eq!(last_json(&so)["rows"], 150);
    let (so, _) = ok_in(
        d.path(),
        &[
            "predict",
            "runs/1-iris",
            &iris,
            "--keep",
            "species",
            "--device",
            "cpu",
        ],
    );
    assert!(so.starts_with("species,species_pred,prob_setosa"), "{so}");
    let (so, _) = ok_in(
        d.path(),
        &[
            "predict",
            "runs/1-iris",
            &iris,
            "--keep",
            "sepal*",
            "--device",
            "cpu",
        ],
    );
    assert!(
        so.starts_with("sepal_length,sepal_width,species,prob_"),
        "{so}"
    );
    // A failed run leaves no folder.
    let out = wgtrain_in(
        d.path(),
        &[
            "train",
            &iris,
            "--target",
            "species",
            "--patience",
            "3",
            "--val-split",
            "0",
            "--device",
            "cpu",
        ],
    );
    assert!(!out.status.success());
    assert!(!d.path().join("runs/3-iris").exists());
}

#[test]
fn sweep_ranks_every_combination() {
    let d = tempfile::tempdir().unwrap();
    let iris = iris();
    let (so, _) = ok_in(
        d.path(),
        &[
            "sweep",
            &iris,
            "--target",
            "species",
            "--epochs",
            "30",
            "--device",
            "cpu",
            "--grid",
            "lr=0.01|0.0001",
            "--grid",
            "hidden=8|16,8",
            "--top",
            "2",
            "--jobs",
            "2",
        ],
    );
    let dir = d.path().join("runs/1-iris-sweep");
    let text = std::fs::read_to_string(dir.join("leaderboard.csv")).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        header,
        [
            "rank",
            "lr",
            "hidden",
            "val_loss",
            "val_accuracy",
            "best_epoch",
            "seconds",
            "run",
            "error"
        ]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 4);
    let losses: Vec<f64> = rows.iter().map(|x| x[3].parse().unwrap()).collect();
    assert!(
        losses.windows(2).all(|w| w[0] <= w[1]),
        "ranked by val_loss: {losses:?}"
    );
    let hidden: Vec<&str> = rows.iter().map(|x| x.get(2).unwrap()).collect();
    assert!(hidden.contains(&"16,8"), "a value with a comma: {hidden:?}");
    assert_eq!(&rows[0][1], "0.01", "the larger lr wins in 30 epochs");
    for row in &rows {
        let run = d.path().join(&row[7]);
        assert!(run.join("model.safetensors").is_file(), "{run:?}");
        let rec: Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
        assert_eq!(
            rec["flags"]["lr"],
            row[1].to_string(),
            "each folder records its own flags"
        );
    }
    // Grid order numbers the folders: lr=0.01,hidden=8 is the first.
    assert!(
        std::fs::read_to_string(dir.join("1-iris/run.json"))
            .unwrap()
            .contains("\"hidden\": \"8\"")
    );
    assert_eq!(so.lines().count(), 3, "--top 2: header and two rows:\n{so}");
    flag_error(
        d.path(),
        &["sweep", &iris, "--target", "species", "--grid", "lr=0.1|x"],
        "--lr",
    );
    flag_error(
        d.path(),
        &["sweep", &iris, "--target", "species", "--grid", "out=a|b"],
        "--grid",
    );
    flag_error(
        d.path(),
        &[
            "sweep", &iris, "--target", "species", "--grid", "lr=1", "--out", "m",
        ],
        "--out",
    );
}

#[test]
fn whole_number_labels_are_classes_unless_told() {
    let d = tempfile::tempdir().unwrap();
    let mut text = String::from("a,b,digit\n");
    let mut r = wgtrain::rng::Rng::new(2);
    for i in 0..90 {
        let c = i % 3;
        text += &format!(
            "{:.3},{:.3},{}\n",
            c as f64 + 0.3 * r.normal(),
            r.normal(),
            [4, 7, 9][c]
        );
    }
    std::fs::write(d.path().join("digits.csv"), text).unwrap();
    let args = [
        "train",
        "digits.csv",
        "--target",
        "digit",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--json",
        "--out",
        "m.safetensors",
    ];
    let (so, se) = ok_in(d.path(), &args);
    assert_eq!(last_json(&so)["task"], "classification");
    assert!(
        se.contains("read as classes") && se.contains("--task regression"),
        "{se}"
    );
    let (so, _) = ok_in(d.path(), &[&args[..], &["--task", "regression"]].concat());
    assert_eq!(last_json(&so)["task"], "regression");
}

#[test]
fn init_from_continues_a_saved_model() {
    let d = tempfile::tempdir().unwrap();
    let iris = iris();
    let base = [
        "train", &iris, "--target", "species", "--hidden", "16", "--lr", "0.01", "--device", "cpu",
        "--json", "-q",
    ];
    let first = last_json(
        &ok_in(
            d.path(),
            &[&base[..], &["--epochs", "20", "--out", "a.safetensors"]].concat(),
        )
        .0,
    );
    let cont = last_json(
        &ok_in(
            d.path(),
            &[
                &base[..],
                &[
                    "--epochs",
                    "1",
                    "--init-from",
                    "a.safetensors",
                    "--out",
                    "b.safetensors",
                ],
            ]
            .concat(),
        )
        .0,
    );
    let fresh = last_json(
        &ok_in(
            d.path(),
            &[&base[..], &["--epochs", "1", "--out", "c.safetensors"]].concat(),
        )
        .0,
    );
    let loss = |j: &Value| j["final"]["train_loss"].as_f64().unwrap();
    assert!(
        loss(&cont) < loss(&fresh),
        "continued {} vs fresh {}",
        loss(&cont),
        loss(&fresh)
    );
    assert!(
        loss(&cont) < loss(&first) * 1.5,
        "it starts where the first run ended"
    );
    let other: Vec<&str> = base
        .iter()
        .map(|a| if *a == "16" { "8" } else { a })
        .chain(["--init-from", "a.safetensors", "--out", "x"])
        .collect();
    flag_error(d.path(), &other, "give --hidden 16");
    flag_error(
        d.path(),
        &[
            &base[..],
            &[
                "--features",
                "petal*",
                "--init-from",
                "a.safetensors",
                "--out",
                "x",
            ],
        ]
        .concat(),
        "--init-from",
    );
}

#[test]
fn eval_reports_confusion_and_per_class_scores() {
    let d = tempfile::tempdir().unwrap();
    let iris = iris();
    ok_in(
        d.path(),
        &[
            "train",
            &iris,
            "--target",
            "species",
            "--epochs",
            "40",
            "--lr",
            "0.01",
            "--device",
            "cpu",
            "-q",
            "--out",
            "m.safetensors",
        ],
    );
    let (so, _) = ok_in(
        d.path(),
        &["eval", "m.safetensors", &iris, "--json", "--device", "cpu"],
    );
    let j = last_json(&so);
    let conf: Vec<Vec<u64>> = serde_json::from_value(j["confusion"].clone()).unwrap();
    assert_eq!(conf.iter().flatten().sum::<u64>(), 150);
    let diag: u64 = (0..3).map(|i| conf[i][i]).sum();
    assert!(
        (diag as f64 / 150.0 - j["accuracy"].as_f64().unwrap()).abs() < 1e-9,
        "{j}"
    );
    assert_eq!(j["support"], serde_json::json!([50, 50, 50]));
    for k in ["precision", "recall", "f1"] {
        assert_eq!(j[k].as_array().map(Vec::len), Some(3), "{k}");
    }
    let f1: Vec<f64> = serde_json::from_value(j["f1"].clone()).unwrap();
    assert!((j["macro_f1"].as_f64().unwrap() - f1.iter().sum::<f64>() / 3.0).abs() < 1e-12);
    let (so, _) = ok_in(
        d.path(),
        &["eval", "m.safetensors", &iris, "--device", "cpu"],
    );
    assert!(
        so.contains("confusion matrix (rows: true class") && so.contains("versicolor"),
        "{so}"
    );
}

/// The workflow on the GPU backend: `--cv` and a sweep (configurations take turns on the one
/// device). Skips without an adapter unless WGTRAIN_REQUIRE_GPU=1.
#[test]
fn cross_validation_and_sweep_on_the_gpu() {
    let d = tempfile::tempdir().unwrap();
    let iris = iris();
    let probe = wgtrain_in(d.path(), &["check", "--device", "gpu"]);
    if !probe.status.success() {
        let required = std::env::var("WGTRAIN_REQUIRE_GPU").is_ok_and(|v| v == "1");
        let why = String::from_utf8_lossy(&probe.stderr).into_owned();
        assert!(
            !required,
            "WGTRAIN_REQUIRE_GPU=1 but the GPU check failed: {why}"
        );
        println!("skipping: no GPU adapter ({why})");
        return;
    }
    let args = [
        "train",
        &iris,
        "--target",
        "species",
        "--cv",
        "3",
        "--epochs",
        "40",
        "--lr",
        "0.01",
        "--device",
        "gpu",
        "--json",
        "-q",
        "--no-refit",
    ];
    let gpu = last_json(&ok_in(d.path(), &args).0);
    let cpu_args: Vec<&str> = args
        .iter()
        .map(|a| if *a == "gpu" { "cpu" } else { a })
        .collect();
    let cpu = last_json(&ok_in(d.path(), &cpu_args).0);
    let (g, c) = (
        gpu["cv"]["mean"].as_f64().unwrap(),
        cpu["cv"]["mean"].as_f64().unwrap(),
    );
    assert!(g > 0.8, "{gpu}");
    // Same folds, same seeds; only float rounding differs between the devices.
    assert!((g - c).abs() <= 0.05, "gpu {g} vs cpu {c}");
    ok_in(
        d.path(),
        &[
            "sweep",
            &iris,
            "--target",
            "species",
            "--epochs",
            "10",
            "--device",
            "gpu",
            "--grid",
            "lr=0.01|0.001",
            "--runs",
            "sweeps",
        ],
    );
    let board =
        std::fs::read_to_string(d.path().join("sweeps/1-iris-sweep/leaderboard.csv")).unwrap();
    assert_eq!(board.lines().count(), 3, "{board}");
}

/// `-q` with the default `--device auto`: the device notice, auto's timing line and tuning
/// lines stay quiet, so stderr holds only the summary line, in both the run-folder path and the
/// `--out` path. (Without a hardware GPU, auto would otherwise say it runs on the CPU.)
#[test]
fn quiet_prints_only_the_summary_line_with_device_auto() {
    let d = tempfile::tempdir().unwrap();
    let iris = iris();
    for out in [None, Some("m.safetensors")] {
        let mut args = vec!["train", &iris, "--target", "species", "--epochs", "3", "-q"];
        if let Some(o) = out {
            args.extend_from_slice(&["--out", o]);
        }
        let (so, se) = ok_in(d.path(), &args);
        assert!(so.is_empty(), "{args:?}: stdout {so}");
        assert_eq!(se.lines().count(), 1, "{args:?}: stderr {se}");
        assert!(se.contains("wrote") || se.contains("runs/"), "{se}");
    }
}
