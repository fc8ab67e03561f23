//! Loss curves and predicted-vs-real plots as PNG or SVG, drawn with `plotters`.
//!
//! Text is set in DejaVu Sans, embedded in the binary (`assets/fonts`, Bitstream Vera / public
//! domain licence), so plots render the same on a bare machine without fonts or fontconfig.
//! Images are rendered in memory and written through a temporary file + rename, so a failure
//! never leaves a half-written image behind.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::io::write_atomically;
use crate::metrics::EpochMetrics;

/// DejaVu Sans 2.37 (upstream release), licence in `assets/fonts/DejaVuSans-LICENSE`.
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Image size in pixels (PNG) or user units (SVG).
pub const WIDTH: u32 = 1000;
pub const HEIGHT: u32 = 620;

/// Log-scale y axis when max/min of the losses exceeds 10^1.5.
const LOG_SPAN: f64 = 31.622776601683793;

/// Series with at most this many points also get a dot per point.
const MARKERS_UP_TO: usize = 40;

const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const VAL_COLOR: RGBColor = RGBColor(255, 127, 14);
const REAL_COLOR: RGBColor = RGBColor(0, 70, 220);
const PRED_COLOR: RGBColor = RGBColor(220, 20, 20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

/// The image format `path`'s extension asks for; anything but .png/.svg is a `--plot` error.
pub fn format_of(path: &Path) -> Result<Format> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => Ok(Format::Png),
        Some("svg") => Ok(Format::Svg),
        _ => Err(Error::flag(
            "--plot",
            format!(
                "{}: give a file name ending in .png or .svg",
                path.display()
            ),
        )),
    }
}

/// `loss.png` → `loss.pred.png`; with `suffix` (one plot per target) `loss.pred.<suffix>.png`.
pub fn predictions_path(path: &Path, suffix: Option<&str>) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match suffix {
        Some(s) => {
            let safe: String = s
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || "-_".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("{stem}.pred.{safe}.{ext}")
        }
        None => format!("{stem}.pred.{ext}"),
    };
    path.with_file_name(name)
}

/// Whether the loss curves get a logarithmic y axis: every loss positive and the finite ones
/// spanning more than about 1.5 decades.
pub fn use_log_scale(history: &[EpochMetrics]) -> bool {
    let values: Vec<f64> = losses(history).collect();
    if values.is_empty() || values.iter().any(|&v| v <= 0.0) {
        return false;
    }
    let (lo, hi) = min_max(values.iter().copied());
    hi / lo > LOG_SPAN
}

/// Train (and, where there is one, validation) loss per epoch.
pub fn loss_curves(
    path: &Path,
    history: &[EpochMetrics],
    loss_name: &str,
    title: &str,
) -> Result<()> {
    let format = format_of(path)?;
    let train: Vec<(f64, f64)> = history
        .iter()
        .map(|m| (m.epoch as f64, m.train_loss))
        .collect();
    let val: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|m| m.val_loss.map(|v| (m.epoch as f64, v)))
        .collect();
    let mut series = vec![Series {
        label: "train",
        color: TRAIN_COLOR,
        points: train,
    }];
    if !val.is_empty() {
        series.push(Series {
            label: "validation",
            color: VAL_COLOR,
            points: val,
        });
    }
    let plot = Plot {
        title,
        x_desc: "epoch",
        y_desc: loss_name,
        integer_x: true,
        log_y: use_log_scale(history),
        series,
    };
    render(path, format, &plot)
}

/// `loss.png` → `loss.acc.png`: where the validation accuracy of a classifier goes.
pub fn accuracy_path(path: &Path) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.acc.{ext}"))
}

/// Validation accuracy per epoch (classification). Nothing is drawn without validation rows.
/// Returns whether a plot was written.
pub fn accuracy_curve(path: &Path, history: &[EpochMetrics], title: &str) -> Result<bool> {
    let format = format_of(path)?;
    let points: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|m| m.val_metric.map(|v| (m.epoch as f64, v)))
        .collect();
    if points.is_empty() {
        return Ok(false);
    }
    let plot = Plot {
        title,
        x_desc: "epoch",
        y_desc: "validation accuracy",
        integer_x: true,
        log_y: false,
        series: vec![Series {
            label: "validation",
            color: VAL_COLOR,
            points,
        }],
    };
    render(path, format, &plot)?;
    Ok(true)
}

/// Labels of a log axis over [lo, hi]: 1, 2 and 5 times each power of ten when the range
/// spans few decades (so a curve between 0.1 and 0.7 still has numbers beside it), the powers
/// of ten alone when it spans many.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let steps: &[f64] = if last - first <= 4 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut out = Vec::new();
    for e in first..=last {
        for &m in steps {
            let v = m * 10f64.powi(e);
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
    }
    out
}

/// Regression on validation rows: real values (blue) and predicted values (red) in row order.
pub fn predictions(path: &Path, real: &[f32], predicted: &[f32], title: &str) -> Result<()> {
    let format = format_of(path)?;
    let pts = |v: &[f32]| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .map(|(i, &y)| (i as f64, y as f64))
            .collect()
    };
    let plot = Plot {
        title,
        x_desc: "validation row",
        y_desc: "value",
        integer_x: true,
        log_y: false,
        series: vec![
            Series {
                label: "real",
                color: REAL_COLOR,
                points: pts(real),
            },
            Series {
                label: "predicted",
                color: PRED_COLOR,
                points: pts(predicted),
            },
        ],
    };
    render(path, format, &plot)
}

/// Reads a `--metrics` CSV back (the reader lives beside the writer in `metrics`).
pub use crate::metrics::read as read_metrics;

struct Series {
    label: &'static str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

struct Plot<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    integer_x: bool,
    log_y: bool,
    series: Vec<Series>,
}

fn losses(history: &[EpochMetrics]) -> impl Iterator<Item = f64> + '_ {
    history
        .iter()
        .flat_map(|m| [Some(m.train_loss), m.val_loss])
        .flatten()
        .filter(|v| v.is_finite())
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::io(
            "<embedded font>",
            std::io::Error::other("the embedded DejaVu Sans font does not parse"),
        ))
    }
}

fn render(path: &Path, format: Format, plot: &Plot) -> Result<()> {
    register_font()?;
    let draw_err = |e: String| Error::io(path, std::io::Error::other(format!("drawing: {e}")));
    let bytes = match format {
        Format::Png => {
            let mut rgb = vec![0u8; WIDTH as usize * HEIGHT as usize * 3];
            {
                let root =
                    BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
                draw(&root, plot).map_err(draw_err)?;
            }
            encode_png(&rgb).map_err(|e| Error::io(path, e))?
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
                draw(&root, plot).map_err(draw_err)?;
            }
            svg.into_bytes()
        }
    };
    write_atomically(path, &bytes)
}

fn encode_png(rgb: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    // Flat-colour images: adaptive filtering makes them several times smaller.
    enc.set_compression(png::Compression::Best);
    enc.set_filter(png::FilterType::Paeth);
    enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut w = enc.write_header().map_err(std::io::Error::other)?;
    w.write_image_data(rgb).map_err(std::io::Error::other)?;
    w.finish().map_err(std::io::Error::other)?;
    Ok(out)
}

/// Axis ranges: x over the points, y padded a little (multiplicatively on a log axis).
fn ranges(plot: &Plot) -> ((f64, f64), (f64, f64)) {
    let finite = |f: fn(&(f64, f64)) -> f64| {
        plot.series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(f)
            .collect::<Vec<f64>>()
    };
    let xs = finite(|p| p.0);
    let ys = finite(|p| p.1);
    let (mut x0, mut x1) = if xs.is_empty() {
        (0.0, 1.0)
    } else {
        min_max(xs.into_iter())
    };
    if x1 <= x0 {
        // One point: centre it.
        x0 -= 0.5;
        x1 = x0 + 1.0;
    }
    let (y0, y1) = if ys.is_empty() {
        (0.0, 1.0)
    } else {
        min_max(ys.into_iter())
    };
    let y = if plot.log_y {
        (y0 / 1.25, y1 * 1.25)
    } else if y1 > y0 {
        let pad = (y1 - y0) * 0.05;
        let lo = if y0 >= 0.0 && y0 - pad < 0.0 {
            0.0
        } else {
            y0 - pad
        };
        (lo, y1 + pad)
    } else {
        let pad = if y0 == 0.0 { 1.0 } else { y0.abs() * 0.1 };
        (y0 - pad, y1 + pad)
    };
    ((x0, x1), y)
}

/// Short tick labels: 0.5, 12, 1500, 2e-5, 3e6.
fn tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        s.replace(".0e", "e")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".to_string()
        } else {
            s.to_string()
        }
    }
}

/// Finite runs of points: a NaN or infinite loss breaks the line instead of wrecking the axes.
fn segments(points: &[(f64, f64)], log_y: bool) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() && (!log_y || y > 0.0) {
            if let Some(last) = out.last_mut() {
                last.push((x, y));
            }
        } else if out.last().is_some_and(|l| !l.is_empty()) {
            out.push(Vec::new());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    plot: &Plot,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let ((x0, x1), (y0, y1)) = ranges(plot);
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(plot.title, (FAMILY, 26))
        .margin(18)
        .margin_right(30)
        .x_label_area_size(56)
        .y_label_area_size(86);
    let x_fmt = |v: &f64| {
        if plot.integer_x {
            if (v - v.round()).abs() < 1e-9 {
                format!("{}", v.round() as i64)
            } else {
                String::new()
            }
        } else {
            tick(*v)
        }
    };
    let y_fmt = |v: &f64| tick(*v);
    let x_labels = if plot.integer_x {
        ((x1 - x0).round() as usize + 1).clamp(2, 11)
    } else {
        10
    };

    // The same body for both y coordinate types (linear and logarithmic).
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(plot.x_desc)
                .y_desc(plot.y_desc)
                .x_labels(x_labels)
                .y_labels(10)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .label_style((FAMILY, 16))
                .axis_desc_style((FAMILY, 20))
                .light_line_style(RGBColor(235, 235, 235))
                .bold_line_style(RGBColor(200, 200, 200))
                .draw()
                .map_err(e)?;
            for s in &plot.series {
                // Thin lines where there are many points (a validation set), so both curves stay visible.
                let width = if s.points.len() > 200 { 1 } else { 2 };
                let style = s.color.stroke_width(width);
                for (i, seg) in segments(&s.points, plot.log_y).into_iter().enumerate() {
                    // Few points (a short run): mark them, so a single epoch still shows.
                    let dots = if seg.len() <= MARKERS_UP_TO {
                        seg.clone()
                    } else {
                        Vec::new()
                    };
                    chart
                        .draw_series(dots.into_iter().map(|p| Circle::new(p, 3, style.filled())))
                        .map_err(e)?;
                    let drawn = chart.draw_series(LineSeries::new(seg, style)).map_err(e)?;
                    if i == 0 {
                        let color = s.color;
                        drawn.label(s.label).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                        });
                    }
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .margin(12)
                .label_font((FAMILY, 18))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .draw()
                .map_err(e)?;
        }};
    }
    if plot.log_y {
        body!(
            builder
                .build_cartesian_2d(
                    x0..x1,
                    (y0..y1).log_scale().with_key_points(log_ticks(y0, y1))
                )
                .map_err(e)?
        );
    } else {
        body!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(e)?);
    }
    root.present().map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_label_every_decade_and_its_halves() {
        let t = log_ticks(0.0006, 0.7);
        assert_eq!(t.first().copied(), Some(0.001));
        assert!(
            t.contains(&0.2) && t.contains(&0.5) && t.contains(&0.01),
            "{t:?}"
        );
        assert!(t.iter().all(|&v| (0.0006..=0.7).contains(&v)));
        assert_eq!(
            log_ticks(1e-8, 1.0),
            [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
        );
        assert!(log_ticks(0.0, 1.0).is_empty());
    }
}
