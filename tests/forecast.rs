//! Forecasting with series models (issue 7, item 8): `predict` never reads a row's own target,
//! so the rows at the end of a file whose target is empty or `?` are forecast from the rows
//! before them, one step at a time, each step's window taking the forecasts before it.

mod common;

use std::path::{Path, PathBuf};

use common::{repo, s, tmp, wgtrain};
use wgtrain::backend::cpu::CpuBackend;
use wgtrain::data::{Dataset, read_table};
use wgtrain::model::Model;

const WINDOW: usize = 7;

/// A window-7 model trained on the bundled views series (a few epochs: the forecasts only
/// have to be the model's, not good ones).
fn train_views(dir: &Path) -> PathBuf {
    let model = dir.join("views.safetensors");
    let o = wgtrain(&[
        "train",
        &repo("data/views.csv"),
        "--target",
        "views",
        "--drop",
        "date",
        "--window",
        &WINDOW.to_string(),
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--out",
        &s(&model),
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    model
}

/// The last `known` days of views.csv, then one row per entry of `tail`: (date, target cell).
fn series(dir: &Path, name: &str, known: usize, tail: &[(&str, &str)]) -> PathBuf {
    let text = std::fs::read_to_string(repo("data/views.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut body = format!("{}\n", lines[0]);
    for l in &lines[lines.len() - known..] {
        body += &format!("{l}\n");
    }
    for (date, v) in tail {
        body += &format!("{date},{v}\n");
    }
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// `predict` on the CPU: the CSV rows (header first), each split on commas.
fn predict(model: &Path, data: &Path) -> Vec<Vec<String>> {
    predict_on("cpu", model, data)
}

fn predict_on(device: &str, model: &Path, data: &Path) -> Vec<Vec<String>> {
    let o = wgtrain(&[
        "predict",
        &s(model),
        &s(data),
        "--keep",
        "date",
        "--device",
        device,
        "--tune",
        "off",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

const DAYS: [&str; 4] = ["2022-01-01", "2022-01-02", "2022-01-03", "2022-01-04"];

#[test]
fn trailing_empty_targets_are_forecast_and_marked() {
    let d = tmp();
    let model = train_views(d.path());
    let tail = [(DAYS[0], ""), (DAYS[1], "?"), (DAYS[2], ""), (DAYS[3], "")];
    let data = series(d.path(), "next.csv", 30, &tail);
    let rows = predict(&model, &data);
    assert_eq!(rows[0], ["date", "views", "forecast"]);
    // 30 known days give 30 - 7 samples, then the 4 forecasts.
    assert_eq!(rows.len(), 1 + 30 - WINDOW + 4, "{rows:?}");
    let last4 = &rows[rows.len() - 4..];
    for (h, r) in last4.iter().enumerate() {
        assert_eq!(r[0], DAYS[h]);
        assert_eq!(r[2], (h + 1).to_string(), "step of {r:?}");
        let v: f32 = r[1].parse().unwrap();
        assert!(v.is_finite() && v > 0.0, "forecast {h}: {v}");
    }
    for r in &rows[1..rows.len() - 4] {
        assert_eq!(r[2], "0", "a known row is no forecast: {r:?}");
    }
}

#[test]
fn the_first_forecast_never_reads_its_own_target() {
    let d = tmp();
    let model = train_views(d.path());
    let empty = series(d.path(), "empty.csv", 30, &[(DAYS[0], "")]);
    let forecast = predict(&model, &empty);
    let step1 = &forecast[forecast.len() - 1];
    assert_eq!(step1[2], "1");
    // Filled with any value, the row is predicted as usual: from the same window.
    for fill in ["0", "123456", "-7.5"] {
        let filled = series(d.path(), "filled.csv", 30, &[(DAYS[0], fill)]);
        let pred = predict(&model, &filled);
        assert_eq!(pred[0], ["date", "views"], "no forecast, no column");
        let last = &pred[pred.len() - 1];
        assert_eq!(last[0], DAYS[0]);
        assert_eq!(
            last[1], step1[1],
            "target {fill}: the forecast must not read it"
        );
    }
    // The rows before are predicted as in the file without the row to forecast.
    let known = predict(&model, &series(d.path(), "known.csv", 30, &[]));
    assert_eq!(known.len() + 1, forecast.len());
    for (a, b) in known[1..].iter().zip(&forecast[1..]) {
        assert_eq!(a[..2], b[..2]);
    }
}

#[test]
fn later_steps_take_the_forecasts_before_them_as_their_window() {
    later_steps_use_earlier_forecasts("cpu");
}

/// The same on the GPU (lavapipe in CI): the forecasts are that device's own predictions.
#[test]
fn later_steps_take_the_forecasts_before_them_on_the_gpu() {
    if common::adapter().is_none() {
        return;
    }
    later_steps_use_earlier_forecasts("gpu");
}

fn later_steps_use_earlier_forecasts(device: &str) {
    let d = tmp();
    let model = train_views(d.path());
    let predict = |m: &Path, p: &Path| predict_on(device, m, p);
    let tail = [(DAYS[0], ""), (DAYS[1], ""), (DAYS[2], "")];
    let rows = predict(&model, &series(d.path(), "three.csv", 30, &tail));
    let f: Vec<String> = rows[rows.len() - 3..]
        .iter()
        .map(|r| r[1].clone())
        .collect();
    // Each forecast written back as if it had been seen: the next row's prediction (from a
    // window that now holds it, its own target filled with junk) is the next forecast. The
    // values print as the shortest text that reads back as the same f32.
    for step in 1..3 {
        let mut tail: Vec<(&str, &str)> = (0..step).map(|h| (DAYS[h], f[h].as_str())).collect();
        tail.push((DAYS[step], "99999"));
        let pred = predict(&model, &series(d.path(), "fed.csv", 30, &tail));
        let last = &pred[pred.len() - 1];
        assert_eq!(last[0], DAYS[step]);
        assert_eq!(
            last[1],
            f[step],
            "step {} must use the forecasts before it",
            step + 1
        );
    }
    // And the window really moved: the three steps are not one value repeated.
    assert!(f[0] != f[1] || f[1] != f[2], "{f:?}");
}

#[test]
fn an_empty_target_in_the_middle_is_an_error_naming_file_line_col() {
    let d = tmp();
    let model = train_views(d.path());
    let data = series(d.path(), "gap.csv", 30, &[(DAYS[0], ""), (DAYS[1], "4000")]);
    let o = wgtrain(&["predict", &s(&model), &s(&data), "--device", "cpu"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Header, 30 known rows, then the gap on line 32, column 2 (views).
    for want in ["gap.csv:32:2", "column 'views'", "only the rows at the end"] {
        assert!(err.contains(want), "stderr lacks '{want}': {err}");
    }
    // Too few known values for the first forecast's window.
    let short = series(d.path(), "short.csv", 5, &[(DAYS[0], ""), (DAYS[1], "")]);
    let o = wgtrain(&["predict", &s(&model), &s(&short), "--device", "cpu"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("short.csv:7:2") && err.contains("needs the 7 values"),
        "{err}"
    );
    // eval needs every target: the same rows are an error there, named as before.
    let o = wgtrain(&["eval", &s(&model), &s(&data), "--device", "cpu"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("gap.csv:32:2") && err.contains("missing value"),
        "{err}"
    );
}

/// Without empty targets at the end, predict writes what it always wrote: the model's
/// predictions of `Dataset::for_schema`'s windows, one `{v}` per row under the target name.
#[test]
fn predict_without_trailing_empty_rows_is_unchanged() {
    let d = tmp();
    let model_path = train_views(d.path());
    let data = repo("data/views.csv");
    let o = wgtrain(&["predict", &s(&model_path), &data, "--device", "cpu"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = Model::load(&model_path).unwrap();
    let table = read_table(Path::new(&data)).unwrap();
    let (ds, _) = Dataset::for_schema(&table, &model.schema, false).unwrap();
    let mut x = ds.x.clone();
    model.normalizer.apply(&mut x);
    let y = wgtrain::train::predict(&mut CpuBackend::new(), &model, &x, ds.rows).unwrap();
    let mut want = String::from("views\n");
    for v in &y {
        want += &format!("{v}\n");
    }
    assert_eq!(String::from_utf8(o.stdout).unwrap(), want);
}
