//! Nothing lost, nothing panics (issue 7), end to end through the binary on the CPU: outputs
//! planned before work, printing that cannot kill a run, locks, signals, checkpoints.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgtrain"));
    c.env("WGTRAIN_LOG", "");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the wgtrain binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Must exit with `code`, saying `want` on stderr, without a panic.
fn refused(args: &[&str], code: i32, want: &[&str]) -> String {
    let o = run(args);
    let se = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "wgtrain {args:?}:\n{se}");
    assert!(!se.contains("panicked"), "{se}");
    for w in want {
        assert!(
            se.contains(w),
            "wgtrain {args:?}: stderr lacks '{w}':\n{se}"
        );
    }
    se
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A copy of iris in `dir` (tests may try to overwrite their data).
fn iris_in(dir: &Path) -> PathBuf {
    let p = dir.join("iris.csv");
    std::fs::copy(repo("data/iris.csv"), &p).expect("copy iris");
    p
}

#[test]
fn outputs_that_are_inputs_or_each_other_are_refused_before_any_work() {
    let d = tempfile::tempdir().unwrap();
    let data = iris_in(d.path());
    let before = std::fs::read(&data).unwrap();
    let base = [
        "train",
        s(&data),
        "--target",
        "species",
        "--epochs",
        "1",
        "--device",
        "cpu",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|x| x.to_string()).collect()
    };
    let png = d.path().join("x.png");
    let model = d.path().join("m.safetensors");
    for (extra, want) in [
        (vec!["--out", s(&data)], vec!["--out", "the training data"]),
        (
            vec!["--out", s(&model), "--metrics", s(&data)],
            vec!["--metrics", "the training data"],
        ),
        (
            vec!["--out", s(&png), "--plot", s(&png)],
            vec!["--plot", "--out", "x.png"],
        ),
        (
            vec!["--out", s(&model), "--val", s(&data), "--metrics", s(&data)],
            vec!["--metrics", "iris.csv"],
        ),
    ] {
        let args = with(&extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let se = refused(&args, 2, &want);
        assert!(!se.contains("epoch"), "refused before training:\n{se}");
    }
    assert_eq!(
        std::fs::read(&data).unwrap(),
        before,
        "the data is untouched"
    );
    assert!(!model.exists() && !png.exists());

    // predict --out onto its own input, or onto the model.
    let trained = d.path().join("t.safetensors");
    let o = run(&[&base[..], &["--out", s(&trained)]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let model_bytes = std::fs::read(&trained).unwrap();
    refused(
        &[
            "predict",
            s(&trained),
            s(&data),
            "--out",
            s(&data),
            "--device",
            "cpu",
        ],
        2,
        &["--out", "the data"],
    );
    refused(
        &[
            "predict",
            s(&trained),
            s(&data),
            "--out",
            s(&trained),
            "--device",
            "cpu",
        ],
        2,
        &["--out", "the model"],
    );
    assert_eq!(std::fs::read(&data).unwrap(), before);
    assert_eq!(std::fs::read(&trained).unwrap(), model_bytes);
}

#[test]
fn a_missing_output_folder_fails_at_once_not_after_training() {
    let d = tempfile::tempdir().unwrap();
    let data = iris_in(d.path());
    let ok_out = d.path().join("ok.safetensors");
    for flag in ["--out", "--metrics", "--plot"] {
        let target = d.path().join(if flag == "--plot" {
            "nodir/p.png"
        } else {
            "nodir/m.st"
        });
        let mut args = vec!["train", s(&data), "--target", "species", "--device", "cpu"];
        if flag != "--out" {
            args.extend(["--out", s(&ok_out)]);
        }
        args.extend([flag, s(&target)]);
        let se = refused(&args, 2, &[flag, "nodir", "does not exist"]);
        assert!(!se.contains("epoch"), "{se}");
    }
}

/// Spawns a training run with stdout and stderr as pipes whose reading ends are closed at
/// once, like `wgtrain train … | head -0` with `2>&1`.
#[test]
fn closed_stdout_and_stderr_never_stop_training_or_lose_the_model() {
    let d = tempfile::tempdir().unwrap();
    let data = iris_in(d.path());
    let model = d.path().join("m.safetensors");
    let mut child = bin()
        .args([
            "train",
            s(&data),
            "--target",
            "species",
            "--epochs",
            "30",
            "--device",
            "cpu",
            "--out",
            s(&model),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "exit {status:?} with closed output streams"
    );
    wgtrain::model::Model::load(&model).expect("the model was written and loads");
}

/// Starts a run that takes a while and returns it once its first epoch line is out.
fn start_long_run(args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("epoch"), "first line: {line:?}");
    (child, out)
}

#[test]
fn a_second_run_writing_the_same_model_is_refused_while_the_first_runs() {
    let d = tempfile::tempdir().unwrap();
    let data = iris_in(d.path());
    let model = d.path().join("m.safetensors");
    let args = [
        "train",
        s(&data),
        "--target",
        "species",
        "--epochs",
        "100000",
        "--device",
        "cpu",
        "--out",
        s(&model),
    ];
    let (mut first, _out) = start_long_run(&args);
    let se = refused(&args, 2, &["--out", "another wgtrain run"]);
    assert!(!se.contains("epoch"), "{se}");
    // Killed hard, the kernel drops its lock: the next run is not blocked by a stale lock.
    first.kill().unwrap();
    first.wait().unwrap();
    let mut again = args.to_vec();
    again[5] = "1"; // --epochs
    let o = run(&again);
    assert!(o.status.success(), "{}", stderr(&o));
}
