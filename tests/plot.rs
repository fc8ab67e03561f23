//! Plots: PNG and SVG output, log-scale choice, the metrics reader, and the CLI end to end.

mod common;

use std::path::Path;

use common::{s, wgtrain};

use wgtrain::plot;
use wgtrain::train::EpochMetrics;

fn ok(args: &[&str]) -> String {
    let out = wgtrain(args);
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "wgtrain {args:?} failed:\n{se}");
    se
}

fn history(losses: &[(f64, Option<f64>)]) -> Vec<EpochMetrics> {
    losses
        .iter()
        .enumerate()
        .map(|(i, &(t, v))| EpochMetrics {
            epoch: i + 1,
            train_loss: t,
            val_loss: v,
            val_metric: v.map(|v| v.sqrt()),
            seconds: 0.01,
        })
        .collect()
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(p: &Path) -> (u32, u32) {
    let b = std::fs::read(p).expect("png written");
    assert!(b.len() > 33, "{} is too short for a PNG", p.display());
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&b[12..16], b"IHDR", "IHDR first");
    let be = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    (be(16), be(20))
}

fn assert_plausible_png(p: &Path) {
    let (w, h) = png_size(p);
    assert!(
        (400..=4000).contains(&w) && (300..=4000).contains(&h),
        "{w}x{h}"
    );
}

#[test]
fn png_has_signature_and_size() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("loss.png");
    let h = history(&[(1.0, Some(1.2)), (0.6, Some(0.8)), (0.4, Some(0.7))]);
    plot::loss_curves(&p, &h, "MSE loss", "test").unwrap();
    assert_eq!(png_size(&p), (plot::WIDTH, plot::HEIGHT));
    // Written through a temporary name: nothing else is left in the folder.
    let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn svg_is_svg_with_lines_and_text() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("loss.svg");
    let h = history(&[(2.0, None), (1.0, None), (0.5, None)]);
    plot::loss_curves(&p, &h, "cross-entropy loss", "my title").unwrap();
    let t = std::fs::read_to_string(&p).unwrap();
    assert!(t.contains("<svg"), "{t}");
    assert!(t.contains("<polyline") || t.contains("<path"), "{t}");
    assert!(t.trim_end().ends_with("</svg>"));
    assert!(t.contains("my title") && t.contains("epoch") && t.contains("train"));
    // No validation series without validation losses.
    assert!(!t.contains("validation"));
}

#[test]
fn predictions_plot() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("pred.svg");
    let real: Vec<f32> = (0..50).map(|i| (i as f32 * 0.3).sin()).collect();
    let pred: Vec<f32> = real.iter().map(|v| v * 0.9).collect();
    plot::predictions(&p, &real, &pred, "pred").unwrap();
    let t = std::fs::read_to_string(&p).unwrap();
    assert!(t.contains("real") && t.contains("predicted"));
    // The lecture's colours: real blue, predicted red.
    assert!(t.contains("#0046DC") && t.contains("#DC1414"), "{t}");
}

#[test]
fn log_scale_when_losses_span_decades() {
    let wide = history(&[(10.0, Some(12.0)), (1.0, Some(2.0)), (0.01, Some(0.05))]);
    assert!(plot::use_log_scale(&wide));
    let narrow = history(&[(1.0, Some(1.2)), (0.5, Some(0.6)), (0.2, Some(0.3))]);
    assert!(!plot::use_log_scale(&narrow));
    let with_zero = history(&[(10.0, None), (0.0, None), (0.001, None)]);
    assert!(!plot::use_log_scale(&with_zero));
    // A NaN (diverged epoch) neither decides the scale nor breaks drawing.
    let nan = history(&[(100.0, None), (f64::NAN, None), (0.01, None)]);
    assert!(plot::use_log_scale(&nan));
    let d = tempfile::tempdir().unwrap();
    plot::loss_curves(&d.path().join("w.png"), &wide, "loss", "wide").unwrap();
    plot::loss_curves(&d.path().join("n.svg"), &nan, "loss", "nan").unwrap();
}

#[test]
fn read_metrics_round_trips_and_rejects_corrupt_files() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("m.csv");
    // As MetricsLog writes it: `{}` for floats, empty validation cells without validation.
    std::fs::write(
        &p,
        "epoch,train_loss,val_loss,val_rmse,seconds\n1,0.5,0.625,0.7905694150420949,0.0123\n2,0.25,,,0.0100\n",
    )
    .unwrap();
    let m = plot::read_metrics(&p).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].epoch, 1);
    assert_eq!(m[0].train_loss, 0.5);
    assert_eq!(m[0].val_loss, Some(0.625));
    assert_eq!(m[0].val_metric, Some(0.7905694150420949));
    assert_eq!(m[1].val_loss, None);
    assert_eq!(m[1].val_metric, None);
    assert_eq!(m[1].seconds, 0.01);

    std::fs::write(
        &p,
        "epoch,train_loss,val_loss,val_accuracy,seconds\n1,0.5,0.6,0.9,0.01\n2,zzz,0.5,0.9,0.01\n",
    )
    .unwrap();
    let e = plot::read_metrics(&p).unwrap_err().to_string();
    assert!(e.contains("m.csv:3:2"), "{e}");

    std::fs::write(&p, "a,b\n1,2\n").unwrap();
    let e = plot::read_metrics(&p).unwrap_err().to_string();
    assert!(e.contains("m.csv:1"), "{e}");
    std::fs::write(
        &p,
        "epoch,train_loss,val_loss,val_accuracy,seconds\n1,0.5\n",
    )
    .unwrap();
    let e = plot::read_metrics(&p).unwrap_err().to_string();
    assert!(e.contains("m.csv:2"), "{e}");
}

#[test]
fn bad_extension_is_a_plot_flag_error() {
    let h = history(&[(1.0, None)]);
    let e = plot::loss_curves(Path::new("loss.jpg"), &h, "loss", "t").unwrap_err();
    assert!(
        matches!(e, wgtrain::Error::Flag { ref flag, .. } if flag == "--plot"),
        "{e}"
    );
    assert!(plot::format_of(Path::new("noext")).is_err());
    assert_eq!(
        plot::predictions_path(Path::new("dir/loss.png"), None),
        Path::new("dir/loss.pred.png")
    );
}

#[test]
fn train_plot_and_plot_command_end_to_end() {
    let d = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv");
    let png = d.path().join("X.png");
    let metrics = d.path().join("m.csv");
    let model = d.path().join("m.safetensors");
    let se = ok(&[
        "train",
        &s(&data),
        "--target",
        "species",
        "--epochs",
        "5",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        &s(&model),
        "--metrics",
        &s(&metrics),
        "--plot",
        &s(&png),
    ]);
    assert!(se.contains("X.png"), "{se}");
    assert_plausible_png(&png);
    // Classification: no predictions plot.
    assert!(!d.path().join("X.pred.png").exists());

    ok(&["plot", &s(&metrics)]);
    assert_plausible_png(&d.path().join("m.png"));
    let svg = d.path().join("again.svg");
    ok(&["plot", &s(&metrics), "--out", &s(&svg), "--title", "iris"]);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("iris"));

    // A bad --plot extension fails before training, with exit code 2.
    let out = wgtrain(&[
        "train",
        &s(&data),
        "--target",
        "species",
        "--device",
        "cpu",
        "--plot",
        &s(&d.path().join("x.gif")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--plot"));
}

#[test]
fn regression_train_plot_draws_predictions() {
    let d = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/friedman1.csv");
    let png = d.path().join("loss.png");
    let se = ok(&[
        "train",
        &s(&data),
        "--target",
        "y",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        &s(&d.path().join("f.safetensors")),
        "--plot",
        &s(&png),
    ]);
    assert!(se.contains("loss.pred.png"), "{se}");
    assert_plausible_png(&png);
    assert_plausible_png(&d.path().join("loss.pred.png"));
}
