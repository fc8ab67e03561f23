//! CSV reading, column selection, splits and the normalizer.
//!
//! The flow: [`read_table`] turns a `.csv` / `.csv.gz` file into a [`Table`] of trimmed text
//! fields with the file line of every record; [`Dataset::from_table`] (training) or
//! [`Dataset::for_schema`] (predict / eval, with the model's [`Schema`]) picks the feature and target columns and parses them
//! into row-major `f32` matrices; [`split_indices`] / [`every_nth`] choose the validation rows;
//! [`Normalizer`] standardizes features (and regression targets) with statistics of the
//! training rows only.
//!
//! A header that repeats a name (the course's covid file repeats its 18 survey columns for each
//! of three days) is read with pandas' names, `cli`, `cli.1`, `cli.2`, so every column can be
//! named; a bare repeated name is refused as `--target`, since the first one is rarely meant.
//!
//! Every problem in a file is reported as [`crate::Error::Data`] with the file, the 1-based
//! line of the file (the header is line 1) and the 1-based column; problems with what the user
//! asked for on the command line are [`crate::Error::Flag`].

mod dataset;
pub mod folds;
mod loader;
mod normalize;
mod num;
mod parquet;
mod rows;
mod scan;
mod schema;
pub mod select;
mod split;
mod stream;
mod table;
mod window;

pub use dataset::{DataSpec, Dataset};
pub use loader::LoadOptions;
pub use normalize::Normalizer;
pub use schema::Schema;
pub use split::{every_nth, split_indices};
pub use stream::{
    Shard, ShardRows, StreamPlan, Welford, auto_budget, estimate_matrix_bytes, is_val_row,
    parse_size,
};
pub use table::{Table, read_table};
pub use window::{Forecast, window_names};
