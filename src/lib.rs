//! wgtrain: train multilayer perceptrons from CSV files on any GPU (wgpu) or on the CPU.
//!
//! CSV → [`data::Dataset`] → [`data::Normalizer`] → [`model::Model`] → a [`backend::Backend`]
//! running forward, backward and the optimizer → metrics per epoch → a safetensors model file.

pub mod app;
pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod console;
pub mod data;
pub mod error;
pub mod io;
pub mod model;
pub mod plot;
pub mod rng;
pub mod signals;
pub mod spec;
pub mod train;
pub mod validate;

pub use error::{Error, Result};
