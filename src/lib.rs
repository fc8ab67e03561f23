//! wgtrain: train multilayer perceptrons from CSV files on any GPU (wgpu) or on the CPU.
//!
//! CSV → [`data::Dataset`] → [`data::Normalizer`] → [`model::Model`] → a [`backend::Backend`]
//! running forward, backward and the optimizer → metrics per epoch → a safetensors model file.
//!
//! Layers, top down: `cli` (flags) → `cmd` (one module per command) → `train`, `model`,
//! `data`, `metrics`, `plot`, `io` → `backend`. Nothing imports a layer above itself.

pub mod auto;
pub mod backend;
pub mod budget;
pub mod checkpoint;
pub mod cli;
pub mod cmd;
pub mod console;
pub mod data;
pub mod error;
pub mod grid;
pub mod io;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod report;
pub mod rng;
pub mod runs;
pub mod signals;
pub mod spec;
pub mod train;

pub use error::{Error, Result};
