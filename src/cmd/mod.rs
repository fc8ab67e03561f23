//! One module per command. Each takes its parsed arguments from `cli` and does the work
//! through the library below (data, model, train, backend, metrics, plot, io).

pub mod bench;
pub mod check;
pub mod devices;
pub mod eval;
pub mod fit;
pub mod plot;
pub mod predict;
pub mod resume;
pub mod stream;
pub mod sweep;
pub mod train;
pub mod tune;

use std::path::Path;

use crate::data::{Dataset, LoadOptions, Table, read_table};
use crate::error::Result;
use crate::model::Model;
use crate::spec::Task;
use crate::train::Rows;

/// Features standardized with the model's normalizer (a copy).
fn model_inputs(model: &Model, ds: &Dataset) -> Vec<f32> {
    let mut x = ds.x.clone();
    model.normalizer.apply(&mut x);
    x
}

/// Targets in the network's units: standardized for regression, indices for classes.
fn model_targets(model: &Model, ds: &Dataset) -> Vec<f32> {
    let mut y = ds.y.clone();
    if model.schema.task == Task::Regression {
        model.target_normalizer.apply(&mut y);
    }
    y
}

/// A data set's rows as the network sees them.
fn model_rows(model: &Model, ds: &Dataset) -> Rows {
    Rows {
        x: model_inputs(model, ds),
        y: model_targets(model, ds),
        rows: ds.rows,
    }
}

/// The same, moving the rows instead of copying them (for data not needed afterwards: the
/// training rows of a 188 MB MNIST matrix would otherwise be held twice).
fn into_model_rows(model: &Model, ds: Dataset) -> Rows {
    let (mut x, mut y) = (ds.x, ds.y);
    model.normalizer.apply(&mut x);
    if model.schema.task == Task::Regression {
        model.target_normalizer.apply(&mut y);
    }
    Rows {
        x,
        y,
        rows: ds.rows,
    }
}

/// A model file and a CSV file read for it (the model's columns, window and classes); with
/// `text`, the file's text too (for `predict --keep`), else it is streamed.
fn load_for_data(
    model_path: &Path,
    data: &Path,
    need_targets: bool,
    text: bool,
) -> Result<(Model, Option<Table>, Dataset, bool)> {
    // A run folder stands for the model in it.
    let model = Model::load(&crate::runs::resolve_model(model_path)?)?;
    if !text {
        let (ds, has) =
            Dataset::load_for_schema(data, &model.schema, need_targets, &LoadOptions::default())?;
        return Ok((model, None, ds, has));
    }
    let table = read_table(data)?;
    let (ds, has_targets) = Dataset::for_schema(&table, &model.schema, need_targets)?;
    Ok((model, Some(table), ds, has_targets))
}

/// Lets the backend pick (and if need be tune) its kernels for this network, saying so.
fn tune_for(
    be: &mut dyn crate::backend::Backend,
    sizes: &[usize],
    batch: usize,
    mode: crate::backend::gpu::tune::Mode,
    say: bool,
) -> Result<()> {
    for line in be.tune(sizes, batch, mode)? {
        if say {
            eprintln!("{line}");
        }
    }
    Ok(())
}
