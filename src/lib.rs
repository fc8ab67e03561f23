//! wgtrain: train multilayer perceptrons from CSV files on any GPU (wgpu) or on the CPU.
//!
//! CSV → [`data::Dataset`] → [`data::Normalizer`] → [`model::Model`] → a [`backend::Backend`]
//! running forward, backward and the optimizer → metrics per epoch → a safetensors model file.

pub mod app;
pub mod backend;
pub mod bench;
pub mod data;
pub mod error;
pub mod grid;
pub mod model;
pub mod plot;
pub mod report;
pub mod rng;
pub mod runs;
pub mod spec;
pub mod train;

pub use error::{Error, Result};
