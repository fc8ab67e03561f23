//! Helpers every test file shares: running the binary, paths, and the GPU (or a visible skip).
//! Each test crate uses only some of them.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use wgtrain::backend::gpu::{DeviceChoice, GpuBackend, select_adapter};

/// Runs the `wgtrain` binary built for these tests.
pub fn wgtrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args(args)
        .env("WGTRAIN_LOG", "")
        .output()
        .expect("the wgtrain binary runs")
}

/// A path inside the repository (data/iris.csv, …), as a string for the command line.
pub fn repo(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .to_string_lossy()
        .into_owned()
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A path as a string for the command line.
pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Whether GPU tests must fail rather than skip without an adapter (CI sets it).
pub fn gpu_required() -> bool {
    std::env::var("WGTRAIN_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// Says that the running test skipped and why. Written to the real stderr, past the test
/// harness's capture, so a run without an adapter shows what it did not test.
pub fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "skipping {test}: {why}");
}

/// Any GPU adapter (lavapipe included), or `None` after saying so; with
/// WGTRAIN_REQUIRE_GPU=1 a missing adapter fails the test instead.
pub fn adapter() -> Option<wgpu::Adapter> {
    match select_adapter(DeviceChoice::Gpu, None) {
        Ok(Some(a)) => Some(a),
        other => {
            let why = other.err().map_or("none".to_string(), |e| e.to_string());
            assert!(
                !gpu_required(),
                "WGTRAIN_REQUIRE_GPU=1 but no GPU adapter: {why}"
            );
            skip(&format!("no GPU adapter ({why})"));
            None
        }
    }
}

/// The GPU backend on [`adapter`], or `None` (skipped).
pub fn gpu() -> Option<GpuBackend> {
    adapter().map(|a| match GpuBackend::new(a) {
        Ok(g) => g,
        Err(e) => panic!("creating the GPU backend failed: {e}"),
    })
}
