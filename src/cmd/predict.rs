//! `wgtrain predict MODEL DATA.csv`: one output row per sample, with `--keep` columns copied
//! through, to standard output or atomically to `--out`. A series model (`--window N`)
//! forecasts the rows at the end of the file whose target is empty or `?`, one step at a time.

use std::collections::HashMap;

use crate::backend::Backend;
use crate::cli::PredictArgs;
use crate::data::{Dataset, Forecast, LoadOptions, Table, read_table};
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
    // A run folder stands for the model in it.
    let model = Model::load(&crate::runs::resolve_model(&a.model)?)?;
    let (table, ds, steps) = read_rows(a, &model)?;
    // Without --keep (and a window) the rows were streamed: no text to copy through.
    let table = table.unwrap_or_else(|| Table {
        path: a.data.clone(),
        header: Vec::new(),
        records: Vec::new(),
        lines: Vec::new(),
        raw_header: Vec::new(),
    });
    let keep_cols = keep_columns(a, &table)?;
    let kept: Vec<String> = keep_cols.iter().map(|&c| table.header[c].clone()).collect();
    let mut header = header(a, &model, kept)?;
    if steps.is_some() {
        header.push(forecast_column(&header));
    }
    let mut be = a.dev.open_for_inference(&model, ds.rows)?;
    let out = match &steps {
        Some(f) => forecast(be.as_mut(), &model, f)?,
        None => train::predict(
            be.as_mut(),
            &model,
            &super::model_inputs(&model, &ds),
            ds.rows,
        )?,
    };

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
    let first_forecast = steps.as_ref().map(|f| f.first());
    let buf = write_csv(
        &model,
        &ds,
        &table,
        &keep_cols,
        &header,
        &out,
        first_forecast,
    )?;
    match &a.out {
        Some(path) => crate::io::write_atomically(path, &buf),
        None => crate::console::data_to_stdout(&buf),
    }
}

/// The model's view of the data: the text too when `--keep` copies columns through, and for
/// a series model whose last targets are empty or `?`, the forecast to make (`Some` only then).
fn read_rows(a: &PredictArgs, model: &Model) -> Result<(Option<Table>, Dataset, Option<Forecast>)> {
    let schema = &model.schema;
    if schema.window.is_some() {
        let table = read_table(&a.data)?;
        let f = Forecast::read(&table, schema)?;
        let ds = f.ds.clone();
        let steps = (f.steps > 0).then_some(f);
        return Ok((Some(table), ds, steps));
    }
    if a.keep.is_empty() {
        let (ds, _) = Dataset::load_for_schema(&a.data, schema, false, &LoadOptions::default())?;
        return Ok((None, ds, None));
    }
    let table = read_table(&a.data)?;
    let (ds, _) = Dataset::for_schema(&table, schema, false)?;
    Ok((Some(table), ds, None))
}

/// Predictions of a series model for every sample: the ones whose window is known in one
/// pass (as for the file without the rows to forecast), then the forecasts one step at a time,
/// each step's window holding the forecasts of the steps before it (the model never sees the
/// unknown values themselves).
fn forecast(be: &mut dyn Backend, model: &Model, f: &Forecast) -> Result<Vec<f32>> {
    let first = f.first();
    let nf = f.ds.n_features();
    let mut out = Vec::with_capacity(f.ds.rows);
    if first > 0 {
        let mut x = f.ds.x[..first * nf].to_vec();
        model.normalizer.apply(&mut x);
        out = train::predict(be, model, &x, first)?;
    }
    let mut forecasts: Vec<f32> = Vec::with_capacity(f.steps);
    for h in 0..f.steps {
        // The forward pass that predicting the file with the forecasts (and any value for
        // this row) filled in would run on this row: the same rows in the same pass, so the
        // forecast is that prediction bit for bit even where a backend's sums depend on the
        // number of rows.
        let i = first + h;
        let batch = train::predict_batch(be, model, i + 1)?;
        let lo = i / batch * batch;
        let mut x = Vec::with_capacity((i + 1 - lo) * nf);
        for r in lo..=i {
            match r.checked_sub(first) {
                None => x.extend_from_slice(&f.ds.x[r * nf..(r + 1) * nf]),
                Some(step) => x.extend(f.features(step, &forecasts)),
            }
        }
        model.normalizer.apply(&mut x);
        let y = train::predict(be, model, &x, i + 1 - lo)?;
        // One target in series mode: the forecast is the next window's newest value.
        let v = y.last().copied().unwrap_or(f32::NAN);
        forecasts.push(v);
        out.push(v);
    }
    Ok(out)
}

/// The name of the column that marks forecasts: `forecast`, unless the output already has one.
fn forecast_column(header: &[String]) -> String {
    let mut name = "forecast".to_string();
    while header.contains(&name) {
        name.insert(0, '_');
    }
    name
}

/// The predictions as CSV: `--keep` columns, the predictions, and with forecasts a last
/// column holding 0 for a row whose value is known and h for the h-th step ahead.
fn write_csv(
    model: &Model,
    ds: &Dataset,
    table: &Table,
    keep_cols: &[usize],
    header: &[String],
    out: &[f32],
    first_forecast: Option<usize>,
) -> Result<Vec<u8>> {
    // The record each sample came from (windows skip the first rows), for --keep.
    let record_of: HashMap<u64, usize> = table
        .lines
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, i))
        .collect();
    let csv_err = |e: csv::Error| Error::internal(format!("writing predictions: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(csv_err)?;
    let n = model.outputs();
    for r in 0..ds.rows {
        let mut rec: Vec<String> = Vec::with_capacity(header.len());
        let src = record_of.get(&ds.lines[r]).map(|&i| &table.records[i]);
        for &c in keep_cols {
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
        if let Some(first) = first_forecast {
            rec.push((r + 1).saturating_sub(first).to_string());
        }
        w.write_record(&rec).map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| Error::internal(format!("writing predictions: {e}")))
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
