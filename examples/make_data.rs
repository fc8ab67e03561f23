//! Writes the generated data sets that ship in `data/`, bit for bit the same on every run:
//!
//! - `friedman1.csv`: Friedman #1 regression (Friedman 1991), 2000 rows,
//!   x1..x10 ~ U(0,1), y = 10 sin(π x1 x2) + 20 (x3 − 0.5)² + 10 x4 + 5 x5 + N(0,1).
//! - `views.csv`: a synthetic daily view-count series, 2017-01-01..2021-12-31, for series mode
//!   (`--window N`): rising trend × weekly rhythm × mild yearly season × noise with spikes.
//!
//! `cargo run --release --example make_data [OUT_DIR]` (default: the crate's `data/`).

use std::f64::consts::PI;
use std::fmt::Write as _;
use std::path::PathBuf;

use wgtrain::rng::Rng;

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data"));
    for (name, text) in [("friedman1.csv", friedman1(2000)), ("views.csv", views())] {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("make_data: {}: {e}", path.display());
            std::process::exit(1);
        }
        println!("wrote {} ({} bytes)", path.display(), text.len());
    }
}

/// Friedman #1: five informative inputs, five noise inputs.
fn friedman1(rows: usize) -> String {
    let mut rng = Rng::derive(1991, 1);
    let mut s = String::new();
    let names: Vec<String> = (1..=10).map(|i| format!("x{i}")).collect();
    s.push_str(&names.join(","));
    s.push_str(",y\n");
    for _ in 0..rows {
        let x: Vec<f64> = (0..10).map(|_| rng.uniform()).collect();
        let y = 10.0 * (PI * x[0] * x[1]).sin()
            + 20.0 * (x[2] - 0.5).powi(2)
            + 10.0 * x[3]
            + 5.0 * x[4]
            + rng.normal();
        for v in &x {
            s.push_str(&sig6(*v));
            s.push(',');
        }
        s.push_str(&sig6(y));
        s.push('\n');
    }
    s
}

/// Daily views: trend 3000 → 6000 over the five years, weekends low (Fri/Sat about 0.7),
/// a mild yearly season (lower in summer and around the new year), 5% multiplicative noise and
/// now and then a spike (a video that takes off).
fn views() -> String {
    const WEEK: [f64; 7] = [1.00, 1.03, 1.02, 0.97, 0.72, 0.68, 0.90]; // Mon..Sun
    let mut rng = Rng::derive(2017, 2);
    let start = days_from_civil(2017, 1, 1);
    let end = days_from_civil(2021, 12, 31);
    let span = (end - start) as f64;
    let mut s = String::from("date,views\n");
    for day in start..=end {
        let t = (day - start) as f64;
        let trend = 3000.0 * 2f64.powf(t / span);
        // 1970-01-01 was a Thursday (index 3 with Monday = 0).
        let week = WEEK[(day + 3).rem_euclid(7) as usize];
        let (y, m, d) = civil_from_days(day);
        let doy = (day - days_from_civil(y, 1, 1)) as f64;
        // Higher in winter, a dip in the summer holidays (around day 200, mid-July).
        let season = 1.0 + 0.05 * (2.0 * PI * doy / 365.25).cos()
            - 0.08 * (-((doy - 200.0) / 30.0).powi(2)).exp();
        let noise = (0.05 * rng.normal()).exp();
        let spike = if rng.uniform() < 0.01 {
            1.5 + 1.5 * rng.uniform()
        } else {
            1.0
        };
        let v = (trend * week * season * noise * spike).round();
        writeln!(s, "{y:04}-{m:02}-{d:02},{v}").ok();
    }
    s
}

/// `v` with 6 significant digits, as C's `%.6g` writes it.
fn sig6(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let sci = format!("{v:.5e}"); // d.ddddde±x, rounded to 6 digits
    let exp: i32 = sci
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if (-4..6).contains(&exp) {
        let fixed = format!("{v:.*}", (5 - exp) as usize);
        if fixed.contains('.') {
            fixed
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        } else {
            fixed
        }
    } else {
        let (mant, e) = sci.split_once('e').unwrap_or((&sci, "0"));
        let mant = if mant.contains('.') {
            mant.trim_end_matches('0').trim_end_matches('.')
        } else {
            mant
        };
        format!("{mant}e{e}")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of `days_from_civil`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig6_matches_printf_g() {
        assert_eq!(sig6(0.123456789), "0.123457");
        assert_eq!(sig6(12.5), "12.5");
        assert_eq!(sig6(0.0999999999), "0.1");
        assert_eq!(sig6(-3.0), "-3");
        assert_eq!(sig6(0.00001234567), "1.23457e-5");
        assert_eq!(sig6(0.0001234567), "0.000123457");
        assert_eq!(sig6(1234567.0), "1.23457e6");
    }

    #[test]
    fn calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2020, 2, 29)), (2020, 2, 29));
        // 2017-01-01 was a Sunday: index 6 with Monday = 0.
        assert_eq!((days_from_civil(2017, 1, 1) + 3).rem_euclid(7), 6);
    }
}
