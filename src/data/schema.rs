//! What the columns mean: the one description a `Dataset` is read with and a `Model` is
//! trained for, so predict and eval read a file exactly as training did.

use crate::spec::Task;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// Feature column names, in file order (series mode: `"COL[t-N]"`…`"COL[t-1]"` first).
    pub features: Vec<String>,
    pub targets: Vec<String>,
    pub task: Task,
    /// Classification only: the class labels; the index is the class id.
    pub classes: Vec<String>,
    /// `--window N`: the features start with the N previous values of the target series.
    pub window: Option<usize>,
}

impl Schema {
    pub fn n_features(&self) -> usize {
        self.features.len()
    }

    /// Width of the network's output: the number of classes, or of target columns.
    pub fn n_outputs(&self) -> usize {
        match self.task {
            Task::Classification => self.classes.len(),
            Task::Regression => self.targets.len(),
        }
    }

    /// Columns of `y` per row: one class id, or one value per target.
    pub fn target_cols(&self) -> usize {
        match self.task {
            Task::Classification => 1,
            Task::Regression => self.targets.len(),
        }
    }
}
