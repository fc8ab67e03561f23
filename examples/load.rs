//! Load a CSV / CSV.gz file the way `wgtrain train` does and report rows, time and MB/s:
//! the loader alone, for bench/load.sh (peak memory comes from `/usr/bin/time -v`).
//!
//! cargo run --release --example load -- FILE --target COL [--task classification] [--reference]
//!
//! `--reference` uses the text reader (`read_table` + `Dataset::from_table`) instead.
//! `--stream SIZE` runs the streaming first pass and one epoch over the shards instead (the
//! data side of a streaming epoch: read, parse, shuffle, standardize; no training).

use std::path::PathBuf;
use std::time::Instant;

use wgtrain::data::{DataSpec, Dataset, LoadOptions, StreamPlan, parse_size, read_table};
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
    if let Some(size) = flag("--stream") {
        stream(&path, &spec, &size);
        return;
    }
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

fn stream(path: &std::path::Path, spec: &DataSpec, size: &str) {
    let run = || -> wgtrain::Result<()> {
        let budget = parse_size(size)?;
        let t0 = Instant::now();
        let plan = StreamPlan::scan(path, spec, budget, 0.2, 1)?;
        let scan = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let mut rows = 0;
        plan.epoch(1, false, |s| {
            rows += s.rows;
            Ok(())
        })?;
        let epoch = t1.elapsed().as_secs_f64();
        println!(
            "{}: budget {size}, {} shards, first pass {scan:.3} s, epoch of {rows} training rows {epoch:.3} s",
            path.display(),
            plan.shards.len()
        );
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
