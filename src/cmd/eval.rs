//! `wgtrain eval MODEL DATA.csv [--json]`: a model's metrics on rows that have the targets,
//! and for classes the confusion matrix and per-class scores.

use crate::cli::EvalArgs;
use crate::error::Result;
use crate::report;
use crate::train::{self, Metrics};

pub fn run(a: &EvalArgs) -> Result<Metrics> {
    let (model, _, ds, _) = super::load_for_data(&a.model, &a.data, true, false)?;
    let rows = super::model_rows(&model, &ds);
    let mut be = a.dev.open_for_inference(&model, rows.rows)?;
    let m = train::evaluate(be.as_mut(), &model, &rows)?;
    let out = train::predict(be.as_mut(), &model, &rows.x, rows.rows)?;
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
