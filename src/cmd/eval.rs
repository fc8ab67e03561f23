//! `wgtrain eval MODEL DATA.csv [--json]`: a model's metrics on rows that have the targets.

use crate::cli::EvalArgs;
use crate::error::Result;
use crate::report;
use crate::spec::Task;
use crate::train::{self, Metrics};

pub fn run(a: &EvalArgs) -> Result<Metrics> {
    let (model, _, ds, _) = super::load_for_data(&a.model, &a.data, true)?;
    let rows = super::model_rows(&model, &ds);
    let mut be = a.dev.open()?;
    let m = train::evaluate(be.as_mut(), &model, &rows)?;
    let out = train::predict(be.as_mut(), &model, &rows.x, rows.rows)?;
    let mut json = match model.task {
        Task::Regression => {
            serde_json::json!({ "rows": m.rows, "mse": m.mse, "rmse": m.mse.sqrt(), "mae": m.mae })
        }
        Task::Classification => {
            serde_json::json!({ "rows": m.rows, "accuracy": m.accuracy, "cross_entropy": m.cross_entropy })
        }
    };
    // Only added keys: the contract's keys above keep their meaning.
    let classes = match model.task {
        Task::Regression => {
            json["r2"] = serde_json::json!(report::r2(&ds.y, &out, model.outputs()));
            None
        }
        Task::Classification => {
            let truth: Vec<usize> = ds.y.iter().map(|&c| c as usize).collect();
            let pred = report::argmax_rows(&out, model.outputs());
            let r = report::ClassReport::new(&model.classes, &truth, &pred);
            if let Some(obj) = json.as_object_mut() {
                r.add_json(obj);
            }
            Some(r)
        }
    };
    if a.json {
        println!("{json}");
    } else {
        let mut line = format!("rows {}", m.rows);
        let shown: &[&str] = match model.task {
            Task::Regression => &["mse", "rmse", "mae", "r2"],
            Task::Classification => &["accuracy", "cross_entropy", "macro_f1"],
        };
        for k in shown {
            line += &format!("  {k} {:.6}", json[k].as_f64().unwrap_or(f64::NAN));
        }
        println!("{line}");
        if let Some(r) = classes {
            print!("\n{}", r.render());
        }
    }
    Ok(m)
}
