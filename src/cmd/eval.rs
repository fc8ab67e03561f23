//! `wgtrain eval MODEL DATA.csv [--json]`: a model's metrics on rows that have the targets.

use crate::cli::EvalArgs;
use crate::error::Result;
use crate::spec::Task;
use crate::train::{self, Metrics};

pub fn run(a: &EvalArgs) -> Result<Metrics> {
    let (model, _, ds, _) = super::load_for_data(&a.model, &a.data, true)?;
    let rows = super::model_rows(&model, &ds);
    let mut be = a.dev.open()?;
    let m = train::evaluate(be.as_mut(), &model, &rows)?;
    let json = match model.task {
        Task::Regression => {
            serde_json::json!({ "rows": m.rows, "mse": m.mse, "rmse": m.mse.sqrt(), "mae": m.mae })
        }
        Task::Classification => {
            serde_json::json!({ "rows": m.rows, "accuracy": m.accuracy, "cross_entropy": m.cross_entropy })
        }
    };
    if a.json {
        println!("{json}");
    } else {
        let mut line = format!("rows {}", m.rows);
        let shown: &[&str] = match model.task {
            Task::Regression => &["mse", "rmse", "mae"],
            Task::Classification => &["accuracy", "cross_entropy"],
        };
        for k in shown {
            line += &format!("  {k} {:.6}", json[k].as_f64().unwrap_or(f64::NAN));
        }
        println!("{line}");
    }
    Ok(m)
}
