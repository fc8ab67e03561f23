//! Load a CSV / CSV.gz file the way `wgtrain train` does and report rows, time and MB/s:
//! the loader alone, for bench/load.sh (peak memory comes from `/usr/bin/time -v`).
//!
//! cargo run --release --example load -- FILE --target COL [--task classification] [--reference]
//!
//! `--reference` uses the text reader (`read_table` + `Dataset::from_table`) instead.

use std::path::PathBuf;
use std::time::Instant;

use wgtrain::data::{DataSpec, Dataset, LoadOptions, read_table};
use wgtrain::spec::Task;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(path) = args.first().map(PathBuf::from) else {
        eprintln!("usage: load FILE --target COL [--task classification] [--reference]");
        std::process::exit(2);
    };
    let targets = vec![flag("--target").unwrap_or_else(|| "y".to_string())];
    let task = match flag("--task").as_deref() {
        Some("classification") => Some(Task::Classification),
        Some("regression") => Some(Task::Regression),
        _ => None,
    };
    let spec = DataSpec {
        targets: &targets,
        drop: &[],
        task,
        window: None,
    };
    let t0 = Instant::now();
    let ds = if args.iter().any(|a| a == "--reference") {
        read_table(&path).and_then(|t| Dataset::from_table(&t, &spec))
    } else {
        Dataset::load(&path, &spec, &LoadOptions::default())
    };
    let secs = t0.elapsed().as_secs_f64();
    match ds {
        Ok(ds) => {
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let matrix = (ds.x.len() + ds.y.len()) * 4;
            println!(
                "{}: {} rows x {} features, {:.3} s, {:.1} MB/s of file, {:.0} rows/s, f32 matrix {:.1} MB",
                path.display(),
                ds.rows,
                ds.n_features(),
                secs,
                bytes as f64 / 1e6 / secs,
                ds.rows as f64 / secs,
                matrix as f64 / 1e6
            );
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
