//! `wgtrain eval MODEL DATA.csv [--json]`: a model's metrics on rows that have the targets.

use crate::cli::EvalArgs;
use crate::error::Result;
use crate::train::{self, Metrics};

pub fn run(a: &EvalArgs) -> Result<Metrics> {
    let (model, _, ds, _) = super::load_for_data(&a.model, &a.data, true, false)?;
    let rows = super::model_rows(&model, &ds);
    let mut be = a.dev.open()?;
    let m = train::evaluate(be.as_mut(), &model, &rows)?;
    let json = match m {
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
    if a.json {
        crate::outln!("{json}");
    } else {
        let mut line = format!("rows {}", m.rows());
        let shown: &[&str] = match m {
            Metrics::Regression { .. } => &["mse", "rmse", "mae"],
            Metrics::Classification { .. } => &["accuracy", "cross_entropy"],
        };
        for k in shown {
            line += &format!("  {k} {:.6}", json[k].as_f64().unwrap_or(f64::NAN));
        }
        crate::outln!("{line}");
    }
    Ok(m)
}
