//! `wgtrain predict MODEL DATA.csv`: one output row per sample, with `--keep` columns copied
//! through, to standard output or atomically to `--out`.

use std::collections::HashMap;

use crate::cli::PredictArgs;
use crate::data::Table;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::spec::Task;
use crate::train;

pub fn run(a: &PredictArgs) -> Result<()> {
    let mut plan = crate::io::OutputPlan::new();
    plan.input("the model", &a.model).input("the data", &a.data);
    if let Some(out) = &a.out {
        plan.output("--out", out);
    }
    // Held to the end: its lock keeps a second run off --out.
    let _outputs = plan.check()?;
    let (model, table, ds, _) = super::load_for_data(&a.model, &a.data, false, !a.keep.is_empty())?;
    // Without --keep the rows were streamed: no text to copy through.
    let table = table.unwrap_or_else(|| Table {
        path: a.data.clone(),
        header: Vec::new(),
        records: Vec::new(),
        lines: Vec::new(),
        raw_header: Vec::new(),
    });
    let keep_cols = keep_columns(a, &table)?;
    let kept: Vec<String> = keep_cols.iter().map(|&c| table.header[c].clone()).collect();
    let header = header(a, &model, kept)?;
    let mut be = a.dev.open_for_inference(&model, ds.rows)?;
    let out = train::predict(
        be.as_mut(),
        &model,
        &super::model_inputs(&model, &ds),
        ds.rows,
    )?;

    // A NaN or infinite prediction is never written as if it were a number.
    let width = model.outputs().max(1);
    if let Some(i) = out.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(
            &a.data,
            ds.lines.get(i / width).copied().unwrap_or(0),
            0,
            format!(
                "the model predicts {} for this row (values far outside the training data?)",
                out[i]
            ),
        ));
    }

    // The record each sample came from (windows skip the first rows), for --keep.
    let record_of: HashMap<u64, usize> = table
        .lines
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, i))
        .collect();
    let csv_err = |e: csv::Error| Error::internal(format!("writing predictions: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).map_err(csv_err)?;
    let n = model.outputs();
    for r in 0..ds.rows {
        let mut rec: Vec<String> = Vec::with_capacity(header.len());
        let src = record_of.get(&ds.lines[r]).map(|&i| &table.records[i]);
        for &c in &keep_cols {
            rec.push(src.and_then(|s| s.get(c)).unwrap_or("").to_string());
        }
        let o = &out[r * n..(r + 1) * n];
        if model.schema.task == Task::Classification {
            let best = (0..n).fold(0, |b, j| if o[j] > o[b] { j } else { b });
            rec.push(model.schema.classes[best].clone());
            rec.extend(o.iter().map(|p| format!("{p:.6}")));
        } else {
            rec.extend(o.iter().map(|v| format!("{v}")));
        }
        w.write_record(&rec).map_err(csv_err)?;
    }
    let buf = w
        .into_inner()
        .map_err(|e| Error::internal(format!("writing predictions: {e}")))?;
    match &a.out {
        Some(path) => crate::io::write_atomically(path, &buf),
        None => crate::console::data_to_stdout(&buf),
    }
}

/// The input columns `--keep` names (names, globs, ranges), by index.
fn keep_columns(a: &PredictArgs, table: &Table) -> Result<Vec<usize>> {
    crate::data::select::select_columns(&table.header, "--keep", &a.keep)
}

/// `--keep` columns, one column per target (named by `--names` or the model), and for classes
/// one probability column per class.
fn header(a: &PredictArgs, model: &Model, kept: Vec<String>) -> Result<Vec<String>> {
    let names = if a.names.is_empty() {
        model.schema.targets.clone()
    } else {
        a.names.clone()
    };
    if names.len() != model.schema.targets.len() {
        return Err(Error::flag(
            "--names",
            format!(
                "give {} name(s), one per target",
                model.schema.targets.len()
            ),
        ));
    }
    // A kept column may be the target itself (to compare): the prediction is then <name>_pred.
    let mut header = kept.clone();
    header.extend(names.into_iter().map(|n| {
        if kept.contains(&n) {
            format!("{n}_pred")
        } else {
            n
        }
    }));
    if model.schema.task == Task::Classification {
        header.extend(model.schema.classes.iter().map(|c| format!("prob_{c}")));
    }
    Ok(header)
}
