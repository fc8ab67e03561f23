//! `--device auto` by measurement: with the software adapter let in by the test-only variable
//! WGTRAIN_AUTO_SOFTWARE=1, auto must time both devices, pick the CPU on this machine (lavapipe
//! runs the same kernels on the same cores, far slower), say why in one line with both
//! figures, and decide from its cache the second time. `--device cpu|gpu` still force.
//! Without any adapter the test says it skips, unless WGTRAIN_REQUIRE_GPU=1.

use std::path::Path;
use std::process::{Command, Output};

use wgtrain::backend::gpu::{DeviceChoice, select_adapter};

fn has_adapter() -> bool {
    let required = std::env::var("WGTRAIN_REQUIRE_GPU").is_ok_and(|v| v == "1");
    match select_adapter(DeviceChoice::Gpu, None) {
        Ok(Some(_)) => true,
        other => {
            let why = other.err().map_or("none".to_string(), |e| e.to_string());
            assert!(!required, "WGTRAIN_REQUIRE_GPU=1 but no GPU adapter: {why}");
            println!("skipping: no GPU adapter ({why})");
            false
        }
    }
}

fn train(dir: &Path, device: &str, software: bool) -> Output {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv");
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgtrain"));
    c.args(["train", &data.to_string_lossy(), "--target", "species"])
        .args([
            "--hidden",
            "8",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--device",
            device,
        ])
        .arg("--out")
        .arg(dir.join("m.safetensors"))
        .env("WGTRAIN_CACHE_DIR", dir.join("cache"))
        .env_remove("WGTRAIN_AUTO_SOFTWARE");
    if software {
        c.env("WGTRAIN_AUTO_SOFTWARE", "1");
    }
    c.output().expect("the wgtrain binary runs")
}

fn stderr(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "wgtrain train failed:\n{e}");
    e
}

/// The `auto: cpu X ms/step, ADAPTER Y ms/step → cpu` line (ms/1000 rows for inference), parsed: (cpu ms, gpu ms, pick).
fn decision(err: &str) -> (f64, f64, String, String) {
    let line = err
        .lines()
        .find(|l| l.starts_with("auto: cpu "))
        .unwrap_or_else(|| panic!("no 'auto:' line in:\n{err}"));
    let nums: Vec<f64> = line
        .split_whitespace()
        .zip(line.split_whitespace().skip(1))
        .filter(|(_, unit)| unit.starts_with("ms/"))
        .filter_map(|(v, _)| v.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "two figures in '{line}'");
    let pick = line
        .split("→ ")
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("");
    (nums[0], nums[1], pick.to_string(), line.to_string())
}

#[test]
fn auto_measures_both_devices_picks_the_cpu_here_and_caches_the_choice() {
    if !has_adapter() {
        return;
    }
    let d = tempfile::tempdir().expect("temp dir");
    let err = stderr(&train(d.path(), "auto", true));
    let (cpu, gpu, pick, line) = decision(&err);
    println!("{line}");
    assert!(cpu > 0.0 && gpu > 0.0, "{line}");
    assert!(cpu < gpu, "the CPU path should beat lavapipe here: {line}");
    assert_eq!(pick, "cpu", "{line}");
    assert!(
        !line.ends_with("(cached)"),
        "the first run measures: {line}"
    );
    let cache = std::fs::read_to_string(d.path().join("cache/device-auto.json"))
        .expect("auto wrote its cache");
    assert!(
        cache.contains("4-8-3") && cache.contains("batch 16"),
        "{cache}"
    );

    let again = stderr(&train(d.path(), "auto", true));
    let (cpu2, gpu2, pick2, line2) = decision(&again);
    assert!(
        line2.ends_with("(cached)"),
        "the second run reads the cache: {line2}"
    );
    assert_eq!((cpu2, gpu2, pick2), (cpu, gpu, pick));
}

#[test]
fn without_the_test_variable_software_adapters_stay_out_of_auto() {
    let d = tempfile::tempdir().expect("temp dir");
    let err = stderr(&train(d.path(), "auto", false));
    // On a machine with a hardware GPU auto measures it; here there is only lavapipe.
    if !err.contains("auto: cpu ") {
        assert!(err.contains("running on the CPU"), "{err}");
        assert!(!d.path().join("cache/device-auto.json").exists());
    }
}

#[test]
fn forced_devices_do_not_measure() {
    if !has_adapter() {
        return;
    }
    let d = tempfile::tempdir().expect("temp dir");
    for device in ["cpu", "gpu"] {
        let err = stderr(&train(d.path(), device, true));
        assert!(
            !err.contains("auto: "),
            "--device {device} measured:\n{err}"
        );
    }
}

/// `wgtrain eval MODEL iris.csv --json --device DEVICE` with the cache in `dir`.
fn eval(dir: &Path, device: &str) -> Output {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv");
    Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .arg("eval")
        .arg(dir.join("m.safetensors"))
        .arg(&data)
        .args(["--json", "--device", device])
        .env("WGTRAIN_CACHE_DIR", dir.join("cache"))
        .env("WGTRAIN_AUTO_SOFTWARE", "1")
        .output()
        .expect("the wgtrain binary runs")
}

fn accuracy(o: &Output) -> f64 {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("eval --json prints JSON");
    v["accuracy"].as_f64().expect("accuracy")
}

#[test]
fn auto_times_the_forward_pass_for_eval_and_follows_its_cache() {
    if !has_adapter() {
        return;
    }
    let d = tempfile::tempdir().expect("temp dir");
    stderr(&train(d.path(), "cpu", false));
    let on_cpu = eval(d.path(), "cpu");
    stderr(&on_cpu);

    let first = eval(d.path(), "auto");
    let (cpu, gpu, pick, line) = decision(&stderr(&first));
    println!("{line}");
    assert!(line.contains("ms/1000 rows"), "{line}");
    assert!(cpu > 0.0 && cpu < gpu && pick == "cpu", "{line}");
    assert_eq!(
        first.stdout, on_cpu.stdout,
        "auto chose the CPU: same output"
    );
    let cache_path = d.path().join("cache/device-auto.json");
    let cache = std::fs::read_to_string(&cache_path).expect("auto wrote its cache");
    assert!(cache.contains("4-8-3 relu infer 150 rows"), "{cache}");

    // A cache that says the GPU wins is followed without measuring again.
    let mut json: serde_json::Value = serde_json::from_str(&cache).expect("cache is JSON");
    for adapter in json["entries"]
        .as_object_mut()
        .expect("entries")
        .values_mut()
    {
        let t = &mut adapter["4-8-3 relu infer 150 rows"];
        t["cpu_ms"] = serde_json::json!(1000.0);
        t["gpu_ms"] = serde_json::json!(0.5);
    }
    let swapped = json.to_string();
    std::fs::write(&cache_path, swapped).expect("write the cache");
    let on_gpu = eval(d.path(), "auto");
    let (_, _, pick, line) = decision(&stderr(&on_gpu));
    assert!(pick == "gpu" && line.ends_with("(cached)"), "{line}");
    assert!((accuracy(&on_gpu) - accuracy(&on_cpu)).abs() < 1e-9);
}

#[test]
fn auto_takes_the_cpu_when_the_gpu_cannot_hold_the_run() {
    if !has_adapter() {
        return;
    }
    // 4-5800-5800-3 has 33.7 M parameters: 128.5 MiB in one slab, past lavapipe's 128 MiB
    // binding. `--device gpu` refuses such a run; auto must train it on the CPU instead.
    let d = tempfile::tempdir().expect("temp dir");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args(["train", &data.to_string_lossy(), "--target", "species"])
        .args(["--hidden", "5800,5800", "--epochs", "1", "--device", "auto"])
        .arg("--out")
        .arg(d.path().join("big.safetensors"))
        .env("WGTRAIN_CACHE_DIR", d.path().join("cache"))
        .env("WGTRAIN_AUTO_SOFTWARE", "1")
        .output()
        .expect("the wgtrain binary runs");
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("auto: "))
        .unwrap_or_else(|| panic!("no 'auto:' line in:\n{err}"));
    assert!(line.contains("cannot hold this run → cpu"), "{line}");
    assert!(line.contains("--hidden") && line.contains("128.5 MiB"), "{line}");
    assert!(d.path().join("big.safetensors").exists(), "{err}");
    assert!(
        !d.path().join("cache/device-auto.json").exists(),
        "nothing was timed, so nothing is cached"
    );
}
