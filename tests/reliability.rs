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

// ---------------------------------------------------------------------------------------
// Signals and checkpoints

mod common;

use wgtrain::backend::Backend;
use wgtrain::data::{Normalizer, Schema};
use wgtrain::model::{Model, init_layers};
use wgtrain::spec::{Activation, Loss, Optimizer, Task};
use wgtrain::train::{Control, Resume, Rows, RunState, Schedule, TrainConfig, train_with};

/// Seeded rows of y = sin(x·w) + noise over `d` features, drawn fresh (never zeros or ones).
fn rows(n: usize, d: usize, seed: u64) -> Rows {
    let mut r = wgtrain::rng::Rng::new(seed);
    let x: Vec<f32> = (0..n * d).map(|_| r.normal() as f32).collect();
    let y = x
        .chunks(d)
        .map(|row| {
            let s: f32 = row
                .iter()
                .enumerate()
                .map(|(j, v)| v * (j as f32 * 0.3 - 0.5))
                .sum();
            s.sin() + 0.1 * r.normal() as f32
        })
        .collect();
    Rows { x, y, rows: n }
}

fn small_model(d: usize) -> Model {
    let schema = Schema {
        features: (0..d).map(|j| format!("x{j}")).collect(),
        targets: vec!["y".into()],
        task: Task::Regression,
        classes: vec![],
        window: None,
    };
    let layers = init_layers(&[d, 17, 9, 1], Activation::Relu, 5);
    let (n, t) = (Normalizer::identity(d), Normalizer::identity(1));
    Model::new(schema, Activation::Relu, Loss::Mse, 5, layers, n, t).unwrap()
}

/// Everything that carries state across steps: Adam, a cosine schedule, decay, clipping,
/// early stopping with best weights.
fn config() -> TrainConfig {
    TrainConfig {
        optimizer: Optimizer::Adam,
        lr: 0.01,
        schedule: Schedule::Cosine { min: 0.0005 },
        batch_size: 16,
        epochs: 5,
        seed: 11,
        weight_decay: 0.01,
        patience: Some(100),
        clip: Some(1.0),
        progress: false,
    }
}

/// Trains with a stop after `stop_after` polls (None: never) and returns the model's bytes
/// and the state of the last checkpoint taken.
fn run_steered(
    be: &mut dyn Backend,
    model: Model,
    resume: Option<Resume>,
    stop_after: Option<usize>,
) -> (Vec<u8>, Option<Resume>, bool) {
    let (train, val) = (rows(203, 6, 1), rows(61, 6, 2));
    let polls = std::cell::Cell::new(0usize);
    let stop = || {
        polls.set(polls.get() + 1);
        stop_after.is_some_and(|n| polls.get() >= n)
    };
    let mut last: Option<Resume> = None;
    let mut keep = |s: RunState| {
        last = Some(Resume {
            snapshot: s.snapshot,
            best: s.best,
            best_model: s.best_model.cloned(),
            history: s.history.to_vec(),
        });
        // The weights to resume from travel as the model the trainer starts with.
        CURRENT.with(|c| *c.borrow_mut() = Some(s.current));
        Ok(())
    };
    let ctl = Control {
        stop: &stop,
        resume,
        checkpoint_every: Some(2),
        on_checkpoint: &mut keep,
    };
    let mut m = model;
    let h = train_with(be, &mut m, &train, Some(&val), &config(), |_| {}, ctl).unwrap();
    (m.to_bytes().unwrap(), last, h.interrupted)
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Model>> = const { std::cell::RefCell::new(None) };
}

/// Interrupts a run in the middle of an epoch, resumes it from its checkpoint state, and
/// expects the very bytes of a run that was never interrupted.
fn resume_is_exact(be: &mut dyn Backend) {
    let (full, _, interrupted) = run_steered(be, small_model(6), None, None);
    assert!(!interrupted);
    // 203 rows / 16 = 13 batches per epoch: poll 30 is mid-epoch 3.
    for stop_after in [1, 30, 13 * 4 + 5] {
        let (_, state, interrupted) = run_steered(be, small_model(6), None, Some(stop_after));
        assert!(interrupted, "stop after {stop_after} polls");
        let state = state.expect("an interrupted run hands over its state");
        let current = CURRENT.with(|c| c.borrow_mut().take()).unwrap();
        let (resumed, _, again) = run_steered(be, current, Some(state), None);
        assert!(!again);
        assert!(
            resumed == full,
            "stopped after {stop_after} polls: the resumed model differs from the uninterrupted one"
        );
    }
}

#[test]
fn an_interrupted_run_resumes_bit_for_bit_on_the_cpu() {
    resume_is_exact(&mut wgtrain::backend::cpu::CpuBackend::new());
}

#[test]
fn an_interrupted_run_resumes_bit_for_bit_on_the_gpu() {
    let Some(mut gpu) = common::gpu() else {
        return;
    };
    resume_is_exact(&mut gpu);
}

/// A regression CSV of `n` rows and `d` features (seeded).
fn write_csv(path: &Path, n: usize, d: usize) {
    let r = rows(n, d, 7);
    let mut text: String = (0..d).map(|j| format!("x{j},")).collect::<String>() + "y\n";
    for (row, y) in r.x.chunks(d).zip(&r.y) {
        for v in row {
            text += &format!("{v},");
        }
        text += &format!("{y}\n");
    }
    std::fs::write(path, text).unwrap();
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill on the pid of a child we spawned and have not waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Runs `train` on `dev` with Ctrl-C after the second epoch, then `--resume`, and compares
/// with a run never interrupted.
fn ctrl_c_then_resume(dev: &str) {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d.csv");
    write_csv(&data, 1500, 8);
    let (out, full, metrics, ckpt) = (
        d.path().join("m.st"),
        d.path().join("full.st"),
        d.path().join("m.csv"),
        d.path().join("c.ckpt"),
    );
    let common = [
        "train",
        s(&data),
        "--target",
        "y",
        "--epochs",
        "8",
        "--batch-size",
        "4",
        "--hidden",
        "32,16",
        "--lr-schedule",
        "cosine",
        "--patience",
        "50",
        "--device",
        dev,
    ];
    let o = run(&[&common[..], &["--out", s(&full), "-q"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let args = [
        &common[..],
        &[
            "--out",
            s(&out),
            "--metrics",
            s(&metrics),
            "--checkpoint",
            s(&ckpt),
        ],
    ]
    .concat();
    let (mut child, mut lines) = start_long_run(&args);
    let mut second = String::new();
    lines.read_line(&mut second).unwrap();
    signal(&child, libc::SIGINT);
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("stopped by Ctrl-C") && err.contains("--resume"),
        "{err}"
    );
    Model::load(&out).expect("the interrupted run's model loads");
    let logged = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        logged.lines().count() >= 3,
        "header and two epochs:\n{logged}"
    );
    assert!(
        logged.lines().count() < 10,
        "interrupted before the end:\n{logged}"
    );

    let o = run(&["train", "--resume", s(&ckpt)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&full).unwrap(),
        "the resumed run's model differs from the uninterrupted run's"
    );
    let logged = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(logged.lines().count(), 9, "every epoch once:\n{logged}");
}

#[test]
fn ctrl_c_saves_everything_exits_130_and_the_run_resumes_exactly_on_the_cpu() {
    ctrl_c_then_resume("cpu");
}

#[test]
fn ctrl_c_saves_everything_exits_130_and_the_run_resumes_exactly_on_the_gpu() {
    if common::adapter().is_none() {
        return;
    }
    ctrl_c_then_resume("gpu");
}

#[test]
fn a_second_signal_ends_the_run_at_once_without_touching_outputs() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d.csv");
    write_csv(&data, 512, 64);
    let (out, ckpt) = (d.path().join("m.st"), d.path().join("c.ckpt"));
    std::fs::write(&out, "the previous model").unwrap();
    // Steps of several seconds each (two 4000-wide layers, a batch of 512), so both signals
    // arrive during the first step.
    let mut child = bin()
        .args([
            "train",
            s(&data),
            "--target",
            "y",
            "--hidden",
            "4000,4000",
            "--batch-size",
            "512",
            "--device",
            "cpu",
            "--out",
            s(&out),
            "--checkpoint",
            s(&ckpt),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut announce = String::new();
    err.read_line(&mut announce).unwrap();
    assert!(announce.contains("regression on"), "{announce}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    std::thread::sleep(std::time::Duration::from_millis(100));
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "the previous model");
    assert!(
        !ckpt.exists(),
        "no checkpoint written after the second signal"
    );
}

#[test]
fn resume_refuses_changed_data_other_files_and_other_flags() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d.csv");
    write_csv(&data, 100, 3);
    let (out, ckpt) = (d.path().join("m.st"), d.path().join("c.ckpt"));
    let o = run(&[
        "train",
        s(&data),
        "--target",
        "y",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        s(&out),
        "--checkpoint",
        s(&ckpt),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    refused(
        &["train", "--resume", s(&out)],
        1,
        &["not a wgtrain checkpoint"],
    );
    refused(
        &["train", "--resume", s(&data)],
        1,
        &["not a wgtrain checkpoint"],
    );
    refused(
        &["train", "--resume", s(&ckpt), "--lr", "0.1"],
        2,
        &["--resume", "--lr", "only --epochs"],
    );
    refused(
        &["train", "--resume", s(&ckpt), "--epochs", "1"],
        2,
        &["--epochs", "fewer"],
    );
    let mut text = std::fs::read_to_string(&data).unwrap();
    text = text.replacen('1', "2", 1);
    std::fs::write(&data, text).unwrap();
    refused(
        &["train", "--resume", s(&ckpt)],
        1,
        &["changed since the checkpoint", "d.csv"],
    );
}

// ---------------------------------------------------------------------------------------
// Sizes, numerics, labels

#[test]
fn impossible_sizes_and_f32_underflow_are_refused_with_numbers() {
    let d = tempfile::tempdir().unwrap();
    let data = iris_in(d.path());
    let base = ["train", s(&data), "--target", "species", "--device", "cpu"];
    let se = refused(
        &[&base[..], &["--hidden", "100000000"]].concat(),
        2,
        &["--hidden", "the run needs about", "available"],
    );
    assert!(!se.contains("epoch"), "{se}");
    refused(
        &[&base[..], &["--lr", "1e-50"]].concat(),
        2,
        &["--lr", "32-bit"],
    );
    refused(
        &[&base[..], &["--lr", "1e39"]].concat(),
        2,
        &["--lr", "inf"],
    );
    refused(
        &[&base[..], &["--weight-decay", "1e-46"]].concat(),
        2,
        &["--weight-decay", "32-bit"],
    );
}

#[test]
fn a_trillion_epochs_allocates_nothing_for_them_and_stops_on_ctrl_c() {
    let d = tempfile::tempdir().unwrap();
    let data = iris_in(d.path());
    let out = d.path().join("m.st");
    let (mut child, _) = start_long_run(&[
        "train",
        s(&data),
        "--target",
        "species",
        "--epochs",
        "1000000000000",
        "--device",
        "cpu",
        "--out",
        s(&out),
    ]);
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    Model::load(&out).unwrap();
}

#[test]
fn labels_only_in_validation_or_differing_in_case_are_warnings() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d.csv");
    let mut text = String::from("x,label\n");
    for i in 0..40 {
        // Rows 0 and 2 (validation with --val-every 2) are the only birds.
        let label = match i {
            0 | 2 => "bird",
            _ if i % 3 == 0 => "Cat",
            _ if i % 3 == 1 => "cat",
            _ => "dog",
        };
        text += &format!("{},{label}\n", (i as f32 * 0.37).sin());
    }
    std::fs::write(&data, text).unwrap();
    let o = run(&[
        "train",
        s(&data),
        "--target",
        "label",
        "--val-every",
        "2",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--out",
        s(&d.path().join("m.st")),
    ]);
    let se = stderr(&o);
    assert!(o.status.success(), "{se}");
    assert!(
        se.contains("warning: class(es) bird appear only in the validation rows"),
        "{se}"
    );
    assert!(
        se.contains("warning: labels 'Cat', 'cat' differ only in case"),
        "{se}"
    );
}

#[test]
fn a_non_finite_prediction_is_an_error_naming_the_row() {
    let d = tempfile::tempdir().unwrap();
    let (data, model_path) = (d.path().join("d.csv"), d.path().join("m.st"));
    std::fs::write(&data, "a,b\n0,0\n1e30,2\n").unwrap();
    let schema = Schema {
        features: vec!["a".into(), "b".into()],
        targets: vec!["y".into()],
        task: Task::Regression,
        classes: vec![],
        window: None,
    };
    let mut layers = init_layers(&[2, 1], Activation::Relu, 1);
    layers[0].weight = vec![3e38, 1.0];
    let (n, t) = (Normalizer::identity(2), Normalizer::identity(1));
    let m = Model::new(schema, Activation::Relu, Loss::Mse, 1, layers, n, t).unwrap();
    m.save(&model_path).unwrap();
    refused(
        &["predict", s(&model_path), s(&data), "--device", "cpu"],
        1,
        &["d.csv:3", "predicts inf"],
    );
}

/// y[m,n] = relu(x[m,k]·w[n,k]ᵀ + b[n]) with a NaN planted in x: every output of that row
/// must be NaN (a ReLU that maps NaN to 0 hides a diverged network), the other rows finite.
fn relu_keeps_nan(be: &mut dyn Backend) {
    let (m, n, k) = (5, 3, 17);
    let mut r = wgtrain::rng::Rng::new(3);
    let mut x: Vec<f32> = (0..m * k).map(|_| r.normal() as f32).collect();
    x[2 * k + 7] = f32::NAN;
    let w: Vec<f32> = (0..n * k).map(|_| r.normal() as f32).collect();
    let b: Vec<f32> = (0..n).map(|_| r.normal() as f32).collect();
    let (xb, wb, bb) = (
        be.upload(&x).unwrap(),
        be.upload(&w).unwrap(),
        be.upload(&b).unwrap(),
    );
    let y = be.upload(&vec![0.5; m * n]).unwrap();
    be.matmul_nt(xb, wb, Some(bb), Activation::Relu, y, m, n, k)
        .unwrap();
    let out = be.read(y).unwrap();
    for (i, v) in out.iter().enumerate() {
        let row = i / n;
        assert_eq!(
            v.is_nan(),
            row == 2,
            "{} [{row},{}] = {v}",
            be.describe(),
            i % n
        );
    }
}

#[test]
fn relu_keeps_nan_visible_on_the_cpu_and_the_gpu() {
    relu_keeps_nan(&mut wgtrain::backend::cpu::CpuBackend::new());
    if let Some(mut gpu) = common::gpu() {
        relu_keeps_nan(&mut gpu);
    }
}

/// Targets around 1e19: the network learns standardized values and is fine; the reported
/// loss (about 1e38 in target units) used to overflow the f32 sums and read as divergence.
#[test]
fn targets_around_1e19_train_without_a_false_divergence() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("big.csv");
    let r = rows(300, 3, 9);
    let mut text = String::from("a,b,c,y\n");
    for (row, y) in r.x.chunks(3).zip(&r.y) {
        text += &format!("{},{},{},{}\n", row[0], row[1], row[2], 3e19 + 1e19 * y);
    }
    std::fs::write(&data, text).unwrap();
    let metrics = d.path().join("m.csv");
    for dev in ["cpu", "gpu"] {
        if dev == "gpu" && common::adapter().is_none() {
            continue;
        }
        let o = run(&[
            "train",
            s(&data),
            "--target",
            "y",
            "--epochs",
            "3",
            "--device",
            dev,
            "--out",
            s(&d.path().join("m.st")),
            "--metrics",
            s(&metrics),
        ]);
        assert!(o.status.success(), "{dev}: {}", stderr(&o));
        let logged = std::fs::read_to_string(&metrics).unwrap();
        let last = logged.lines().last().unwrap().to_string();
        let loss: f64 = last.split(',').nth(1).unwrap().parse().unwrap();
        assert!(
            loss.is_finite() && loss > 1e36 && loss < 1e40,
            "{dev}: {last}"
        );
    }
}

#[test]
fn predict_reads_only_the_feature_columns() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d.csv");
    write_csv(&data, 60, 3);
    let model = d.path().join("m.st");
    let o = run(&[
        "train",
        s(&data),
        "--target",
        "y",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        s(&model),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The target column empty, '?', or absent.
    let text = std::fs::read_to_string(&data).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.take(4).collect();
    let cut = |l: &str| l.rsplit_once(',').unwrap().0.to_string();
    let mut unknown = format!("{header}\n");
    for (i, r) in rows.iter().enumerate() {
        unknown += &format!("{},{}\n", cut(r), ["", "?", "", "?"][i]);
    }
    let mut absent = format!("{}\n", cut(header));
    for r in &rows {
        absent += &format!("{}\n", cut(r));
    }
    let mut outs = Vec::new();
    for (name, body) in [("unknown.csv", unknown), ("absent.csv", absent)] {
        let p = d.path().join(name);
        std::fs::write(&p, body).unwrap();
        let o = run(&["predict", s(&model), s(&p), "--device", "cpu"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        outs.push(String::from_utf8_lossy(&o.stdout).into_owned());
    }
    assert_eq!(outs[0].lines().count(), 5, "{}", outs[0]);
    assert_eq!(outs[0], outs[1], "the target column plays no part");
}

/// The run-folder path (no `--out`): the first Ctrl-C ends the run at a step, the folder keeps
/// a model that loads, and the exit code is 130.
#[test]
fn ctrl_c_in_a_run_folder_saves_the_model_and_exits_130() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d.csv");
    write_csv(&data, 512, 64);
    let mut child = bin()
        .current_dir(d.path())
        .args([
            "train",
            s(&data),
            "--target",
            "y",
            "--epochs",
            "1000000",
            "--device",
            "cpu",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut announce = String::new();
    err.read_line(&mut announce).unwrap();
    assert!(announce.contains("regression on"), "{announce}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    let model = d.path().join("runs/1-d/model.safetensors");
    assert!(model.is_file(), "no model in the run folder: {rest}");
    let out = bin()
        .args(["eval", s(&model), s(&data), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- GPU sizes before allocation (item 6) ---------------------------------------------------

/// A GPU run whose parameter slab is larger than the adapter's storage binding (lavapipe:
/// 128 MiB) is refused before any buffer is made: exit 2, `--hidden`, needed against
/// available bytes. The same network is no problem for the CPU's host-memory count.
#[test]
fn a_gpu_run_beyond_the_binding_limit_is_refused_with_the_numbers() {
    let Some(adapter) = common::adapter() else {
        return;
    };
    let l = adapter.limits();
    let binding = l
        .max_storage_buffer_binding_size
        .min(l.max_buffer_size)
        .min(u32::MAX as u64);
    // Two hidden layers of h: about h² parameters, just past one binding.
    let h = ((binding / 4) as f64).sqrt() as usize + 8;
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d.csv");
    write_csv(&data, 40, 3);
    let hidden = format!("{h},{h}");
    let model = d.path().join("m.st");
    let args = [
        "train",
        s(&data),
        "--target",
        "y",
        "--hidden",
        &hidden,
        "--optimizer",
        "sgd",
        "--device",
        "gpu",
        "--tune",
        "off",
        "--out",
        s(&model),
    ];
    let err = refused(
        &args,
        2,
        &[
            "--hidden: the ",
            "parameters need",
            "max_storage_buffer_binding_size",
        ],
    );
    assert!(!model.exists(), "a refused run writes no model");
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1 << 20) as f64);
    assert!(
        err.contains(&mib(binding)),
        "lacks the limit {}: {err}",
        mib(binding)
    );
}

/// The decision on a real device with an injected binding limit: training refuses a batch
/// whose activations exceed it (naming --batch-size and what fits), predict and eval on the
/// same device go on in smaller batches and give the CPU's numbers, and a model whose
/// parameters exceed it is refused for predict as well.
#[test]
fn an_injected_binding_limit_refuses_training_and_shrinks_inference_batches() {
    let Some(adapter) = common::adapter() else {
        return;
    };
    // 4 KiB per binding: the 6-17-9-1 network's 291 parameters fit, 64 rows × 6 inputs do not.
    let mut gpu = wgtrain::backend::gpu::GpuBackend::with_max_binding(adapter, 4096).unwrap();
    let lim = gpu.limits().expect("the GPU reports its limits");
    assert_eq!(lim.binding, 4096);
    assert!(lim.max_storage_buffer_binding_size >= 128 << 20, "{lim:?}");
    let (train, val) = (rows(203, 6, 1), rows(61, 6, 2));
    let mut model = small_model(6);
    let cfg = TrainConfig {
        batch_size: 200,
        ..config()
    };
    let e = wgtrain::train::train(&mut gpu, &mut model, &train, Some(&val), &cfg, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--batch-size, --hidden: a batch of 200 rows × 17 values (layer 1)"),
        "{e}"
    );
    assert!(
        e.contains("4.0 KiB") && e.contains("at most 60 rows fits"),
        "{e}"
    );

    // 203 rows × 17 values would need 13.5 KiB: predict runs 60 rows at a time instead.
    let model = small_model(6);
    let cpu = wgtrain::train::predict(
        &mut wgtrain::backend::cpu::CpuBackend::new(),
        &model,
        &train.x,
        train.rows,
    )
    .unwrap();
    let got = wgtrain::train::predict(&mut gpu, &model, &train.x, train.rows).unwrap();
    assert_eq!(got.len(), cpu.len());
    for (i, (g, c)) in got.iter().zip(&cpu).enumerate() {
        assert!(
            (g - c).abs() <= 1e-5 + 1e-4 * c.abs(),
            "row {i}: gpu {g} cpu {c}"
        );
    }
    let m = wgtrain::train::evaluate(&mut gpu, &model, &train).unwrap();
    let want = wgtrain::train::evaluate(
        &mut wgtrain::backend::cpu::CpuBackend::new(),
        &model,
        &train,
    )
    .unwrap();
    let (m, want) = (m.loss(Loss::Mse), want.loss(Loss::Mse));
    assert!(
        (m - want).abs() <= 1e-4 * want.abs().max(1.0),
        "gpu {m} cpu {want}"
    );

    // 6-300-1: 2401 parameters, 9.4 KiB in one slab.
    let schema = model.schema.clone();
    let layers = init_layers(&[6, 300, 1], Activation::Relu, 5);
    let big = Model::new(
        schema,
        Activation::Relu,
        Loss::Mse,
        5,
        layers,
        Normalizer::identity(6),
        Normalizer::identity(1),
    )
    .unwrap();
    let e = wgtrain::train::predict(&mut gpu, &big, &train.x, train.rows)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--device: the 2401 parameters need 9.4 KiB") && e.contains("--device cpu"),
        "{e}"
    );
}

// ---- checkpoints of run-folder runs (item 4) -----------------------------------------------

/// The run-folder path (here with --val-last, a flag only it handles, and no --out)
/// checkpoints through the same training loop: 4 epochs checkpointed, then resumed to 8, give
/// byte for byte the model (and the metrics, but for the seconds) of 8 epochs in one go. The
/// resumed run gets its own run folder. --cv refuses --checkpoint, saying why and what to do.
#[test]
fn a_run_folder_run_checkpoints_and_resumes_exactly() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d.csv");
    write_csv(&data, 300, 5);
    let train = |extra: &[&str]| {
        let mut args = vec!["train", s(&data), "--target", "y", "--val-last", "0.2"];
        args.extend(["--seed", "4", "--device", "cpu", "-q"]);
        args.extend(extra);
        let o = bin().current_dir(d.path()).args(&args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    train(&["--epochs", "8"]);
    train(&["--epochs", "4", "--checkpoint", "c.ckpt"]);
    assert!(d.path().join("runs/2-d/model.safetensors").is_file());
    let o = bin()
        .current_dir(d.path())
        .args(["train", "--resume", "c.ckpt", "--epochs", "8", "-q"])
        .output()
        .unwrap();
    assert!(o.status.success(), "resume: {}", stderr(&o));
    assert!(stderr(&o).contains("runs/3-d/"), "{}", stderr(&o));
    let read = |p: &str| std::fs::read(d.path().join(p)).unwrap();
    let (whole, resumed) = (
        read("runs/1-d/model.safetensors"),
        read("runs/3-d/model.safetensors"),
    );
    assert!(
        whole == resumed,
        "the resumed model differs from the one-go model"
    );
    let epochs = |p: &str| -> Vec<String> {
        let text = String::from_utf8(read(p)).unwrap();
        let rows: Vec<String> = text
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect();
        assert_eq!(rows.len(), 9, "{text}");
        rows
    };
    assert_eq!(
        epochs("runs/1-d/metrics.csv"),
        epochs("runs/3-d/metrics.csv")
    );

    let cv = refused(
        &[
            "train",
            s(&data),
            "--target",
            "y",
            "--cv",
            "3",
            "--checkpoint",
            s(&d.path().join("cv.ckpt")),
        ],
        2,
        &[
            "--checkpoint: a checkpoint holds one training loop",
            "--cv runs K folds",
        ],
    );
    assert!(cv.contains("train without --cv"), "{cv}");
    assert!(!d.path().join("cv.ckpt").exists());
}

// ---- tampered model files, end to end (item 5) ---------------------------------------------

/// A safetensors file's JSON header and its data bytes.
fn split_safetensors(bytes: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

fn join_safetensors(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let mut h = serde_json::to_vec(header).unwrap();
    // The data must start 8-aligned.
    while !(h.len() + 8).is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

/// `model` with metadata `key` set to `value`.
fn with_meta(model: &[u8], key: &str, value: &str) -> Vec<u8> {
    let (mut h, data) = split_safetensors(model);
    h["__metadata__"][key] = serde_json::Value::String(value.into());
    join_safetensors(&h, &data)
}

/// `model` with element `i` of tensor `name` set to `v`.
fn with_value(model: &[u8], name: &str, i: usize, v: f32) -> Vec<u8> {
    let (h, mut data) = split_safetensors(model);
    let at = h[name]["data_offsets"][0].as_u64().unwrap() as usize + 4 * i;
    data[at..at + 4].copy_from_slice(&v.to_le_bytes());
    join_safetensors(&h, &data)
}

/// The tampered files the issue found (empty targets or classes, a huge window, std 0 or
/// negative, duplicate features, a NaN weight) used to panic or give NaN with exit 0; now
/// predict and eval refuse each with `model FILE: …` and write nothing.
#[test]
fn tampered_model_files_are_refused_naming_the_model_file() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d.csv");
    write_csv(&data, 40, 3);
    let iris = iris_in(d.path());
    let views = repo("data/views.csv");
    let train = |data: &Path, extra: &[&str], name: &str| -> Vec<u8> {
        let m = d.path().join(name);
        let mut args = vec!["train", s(data), "--epochs", "2", "--device", "cpu"];
        args.extend(extra);
        args.extend(["--out", s(&m), "-q"]);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(&m).unwrap()
    };
    let reg = train(&data, &["--target", "y"], "reg.st");
    let cls = train(&iris, &["--target", "species"], "cls.st");
    let win = train(
        &views,
        &["--target", "views", "--drop", "date", "--window", "3"],
        "win.st",
    );
    let cases: Vec<(&str, Vec<u8>, &Path)> = vec![
        ("targets=[]", with_meta(&reg, "targets", "[]"), &data),
        ("classes=[]", with_meta(&cls, "classes", "[]"), &iris),
        (
            "huge window",
            with_meta(&win, "window", "18446744073709551615"),
            &views,
        ),
        ("std 0", with_value(&reg, "normalizer.std", 1, 0.0), &data),
        (
            "std < 0",
            with_value(&reg, "normalizer.std", 0, -2.0),
            &data,
        ),
        (
            "duplicate features",
            with_meta(&reg, "features", r#"["x0","x0","x2"]"#),
            &data,
        ),
        (
            "NaN weight",
            with_value(&reg, "layers.0.weight", 3, f32::NAN),
            &data,
        ),
    ];
    for (what, bytes, input) in cases {
        let m = d.path().join("tampered.st");
        std::fs::write(&m, bytes).unwrap();
        for cmd in ["predict", "eval"] {
            let o = run(&[cmd, s(&m), s(input), "--device", "cpu"]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{what}, {cmd}: {err}");
            assert!(!err.contains("panicked"), "{what}, {cmd}: {err}");
            let want = format!("wgtrain: error: model {}: ", m.display());
            assert!(err.starts_with(&want), "{what}, {cmd}: {err}");
            assert!(o.stdout.is_empty(), "{what}, {cmd}: wrote output");
        }
    }
}

// ---- SIGTERM, live metrics, a full stdout (items 2 and 3) ----------------------------------

/// With stdout on a full disk (/dev/full) every epoch line fails, and the run goes on; the
/// metrics file holds each finished epoch while the run is still going (`tail -f` works);
/// a first SIGTERM then saves the model and the checkpoint like Ctrl-C, exit 130, saying so.
#[test]
fn sigterm_saves_like_ctrl_c_while_metrics_stream_and_stdout_is_full() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d.csv");
    write_csv(&data, 2000, 16);
    let (out, metrics, ckpt) = (
        d.path().join("m.st"),
        d.path().join("m.csv"),
        d.path().join("c.ckpt"),
    );
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut child = bin()
        .args([
            "train",
            s(&data),
            "--target",
            "y",
            "--epochs",
            "1000000",
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--out",
            s(&out),
            "--metrics",
            s(&metrics),
            "--checkpoint",
            s(&ckpt),
            "--checkpoint-every",
            "1000",
        ])
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Three epochs in the file while the process still runs.
    let start = std::time::Instant::now();
    let epochs =
        || std::fs::read_to_string(&metrics).map_or(0, |t| t.lines().count().saturating_sub(1));
    while epochs() < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended early with stdout full"
        );
        assert!(
            start.elapsed().as_secs() < 120,
            "no epochs in the metrics file"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // --checkpoint-every 1000: nothing written yet, so what follows comes from the signal.
    assert!(!ckpt.exists());
    signal(&child, libc::SIGTERM);
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("stopped by SIGTERM"), "{err}");
    Model::load(&out).expect("the stopped run's model loads");
    assert!(ckpt.is_file(), "the signal writes the checkpoint: {err}");
    assert!(epochs() >= 3);
}

// ---- readable messages (item 9) -------------------------------------------------------------

/// A 5000-character value in a CSV cell, a 3000-character --target and a huge --keep
/// pattern: each message still names the place and stays one short line, the value cut.
#[test]
fn huge_values_in_files_and_flags_are_cut_in_messages() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("long.csv");
    let value = "x".repeat(5000);
    std::fs::write(&data, format!("a,b,y\n1,2,3\n1,{value},3\n2,3,4\n")).unwrap();
    let name = "q".repeat(3000);
    let model = d.path().join("m.st");
    // A model for the predict case: trained on rows without the long value.
    std::fs::write(d.path().join("ok.csv"), "a,b,y\n1,2,3\n2,3,4\n4,1,5\n").unwrap();
    let ok = d.path().join("ok.csv");
    let cases: [(Vec<&str>, &str); 3] = [
        (
            vec!["train", s(&data), "--target", "y", "--device", "cpu"],
            "long.csv:3:2: column 'b': 'xxx",
        ),
        (
            vec!["train", s(&data), "--target", &name, "--device", "cpu"],
            "--target: no column 'qqq",
        ),
        (
            vec![
                "predict",
                s(&model),
                s(&ok),
                "--keep",
                &name,
                "--device",
                "cpu",
            ],
            "--keep: no column 'qqq",
        ),
    ];
    let o = run(&[
        "train",
        s(&ok),
        "--target",
        "y",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--out",
        s(&model),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let head = |e: &str| e.chars().take(300).collect::<String>();
    for (args, want) in cases {
        let o = run(&args);
        let err = stderr(&o);
        assert!(!o.status.success() && !err.contains("panicked"), "{err}");
        assert!(err.contains(want), "lacks '{want}': {}", head(&err));
        assert!(err.contains('…'), "not cut: {}", head(&err));
        assert!(
            err.chars().count() < 300,
            "{} chars: {}",
            err.chars().count(),
            head(&err)
        );
    }
}
