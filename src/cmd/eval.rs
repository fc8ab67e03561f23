//! `wgtrain eval MODEL DATA.csv [--json]`: a model's metrics on rows that have the targets,
//! and for classes the confusion matrix and per-class scores.

use crate::cli::EvalArgs;
use crate::error::{Error, Result};
use crate::report;
use crate::train::{self, Metrics};

pub fn run(a: &EvalArgs) -> Result<Metrics> {
    let (model, _, ds, _) = super::load_for_data(&a.model, &a.data, true, false)?;
    let rows = super::model_rows(&model, &ds);
    let mut be = a.dev.open_for_inference(&model, rows.rows)?;
    let m = train::evaluate(be.as_mut(), &model, &rows)?;
    let out = train::predict(be.as_mut(), &model, &rows.x, rows.rows)?;
    refuse_overflow(a, &m, &out)?;
    let mut json = match m {
        Metrics::Regression { rows, mse, mae } => {
            serde_json::json!({ "rows": rows, "mse": mse, "rmse": mse.sqrt(), "mae": mae })
        }
        Metrics::Classification {
            rows,
            accuracy,
            cross_entropy,
            ..
        } => {
            serde_json::json!({ "rows": rows, "accuracy": accuracy, "cross_entropy": cross_entropy })
        }
    };
    // Only added keys: the contract's keys above keep their meaning.
    let classes = match m {
        Metrics::Regression { .. } => {
            json["r2"] = serde_json::json!(report::r2(&ds.y, &out, model.outputs()));
            None
        }
        Metrics::Classification { .. } => {
            let truth: Vec<usize> = ds.y.iter().map(|&c| c as usize).collect();
            let pred = report::argmax_rows(&out, model.outputs());
            let r = report::ClassReport::new(&model.schema.classes, &truth, &pred);
            if let Some(obj) = json.as_object_mut() {
                r.add_json(obj);
            }
            Some(r)
        }
    };
    if a.json {
        crate::outln!("{json}");
    } else {
        let mut line = format!("rows {}", m.rows());
        let shown: &[&str] = match m {
            Metrics::Regression { .. } => &["mse", "rmse", "mae", "r2"],
            Metrics::Classification { .. } => &["accuracy", "cross_entropy", "macro_f1"],
        };
        for k in shown {
            line += &format!("  {k} {:.6}", json[k].as_f64().unwrap_or(f64::NAN));
        }
        crate::outln!("{line}");
        if let Some(r) = classes {
            crate::outln!("\n{}", r.render().trim_end());
        }
    }
    Ok(m)
}

/// A metric that overflowed (a model predicting far outside its training data: its squared
/// errors pass f32's range) would print as `null` in the JSON contract's numbers: an error
/// instead, with the largest prediction.
fn refuse_overflow(a: &EvalArgs, m: &Metrics, out: &[f32]) -> Result<()> {
    let finite = match *m {
        Metrics::Regression { mse, mae, .. } => mse.is_finite() && mae.is_finite(),
        Metrics::Classification { cross_entropy, .. } => cross_entropy.is_finite(),
    };
    if finite && out.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    let largest = out.iter().fold(0f32, |acc, v| acc.max(v.abs()));
    Err(Error::model(
        &a.model,
        format!(
            "its errors on {} are not finite numbers (largest prediction {largest:e}): the \
             model predicts far outside the data it was trained on",
            a.data.display()
        ),
    ))
}
