//! Runs you can find again: `runs/<N>-<data stem>/` folders and the `run.json` that says what
//! made the model in them (every flag with its default, the data files' sizes and hashes, the
//! version, the device, the timings and the final metrics).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The file a run folder keeps its model in.
pub const MODEL_FILE: &str = "model.safetensors";

/// Creates the next free `root/<N>-<stem>/`, N one more than the largest number already
/// there (1 for the first). `create_dir` is the claim, so two runs started at once never
/// share a folder: the loser takes the next number.
pub fn create_run_dir(root: &Path, data: &Path) -> Result<PathBuf> {
    create_numbered_dir(root, &data_stem(data))
}

/// Creates the next free `root/<N>-<name>/` (see [`create_run_dir`]).
pub fn create_numbered_dir(root: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let mut n = last_run_number(root)? + 1;
    loop {
        let dir = root.join(format!("{n}-{name}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
}

/// The largest N of the `<N>-…` entries in `root` (0 when none).
fn last_run_number(root: &Path) -> Result<u64> {
    let mut last = 0;
    for entry in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some((num, _)) = name.split_once('-')
            && let Ok(n) = num.parse::<u64>()
        {
            last = last.max(n);
        }
    }
    Ok(last)
}

/// `covid.train.csv.gz` → `covid.train`: the file name without `.gz` and `.csv`, limited to
/// characters that are safe in a folder name.
pub fn data_stem(data: &Path) -> String {
    let name = data
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let name = name.strip_suffix(".csv").unwrap_or(name);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || clean.chars().all(|c| c == '.') {
        "data".into()
    } else {
        clean
    }
}

/// The model path `predict` / `eval` should read for MODEL: the folder's model file when MODEL
/// is a run folder, MODEL itself otherwise.
pub fn resolve_model(model: &Path) -> Result<PathBuf> {
    if !model.is_dir() {
        return Ok(model.to_path_buf());
    }
    let file = model.join(MODEL_FILE);
    if file.is_file() {
        Ok(file)
    } else {
        Err(Error::model(
            model,
            format!(
                "is a folder without {MODEL_FILE}; give a run folder (runs/N-name) or a model file"
            ),
        ))
    }
}

/// `{path, bytes, sha256}` of a data file.
pub fn file_record(path: &Path) -> Result<Value> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(json!({ "path": path.display().to_string(), "bytes": bytes, "sha256": hex }))
}

/// Every argument of `matches` by its long name, defaults included: a flag given once or
/// with one value as a string, a list as an array, a switch as true/false, an unset optional
/// flag as null. Positional arguments are left out (the data files are recorded apart).
pub fn flags_json(cmd: &clap::Command, matches: &clap::ArgMatches) -> Value {
    let mut out = Map::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        let id = arg.get_id().as_str();
        let value = match arg.get_action() {
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse => {
                Value::Bool(matches.get_flag(id))
            }
            clap::ArgAction::Count => json!(matches.get_count(id)),
            clap::ArgAction::Help
            | clap::ArgAction::HelpShort
            | clap::ArgAction::HelpLong
            | clap::ArgAction::Version => continue,
            _ => match matches.get_raw(id) {
                None => Value::Null,
                Some(raw) => {
                    let vals: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
                    let list = arg.get_value_delimiter().is_some()
                        || matches!(arg.get_action(), clap::ArgAction::Append)
                        || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
                    match (list, vals.as_slice()) {
                        (false, [one]) => Value::String(one.clone()),
                        _ => json!(vals),
                    }
                }
            },
        };
        out.insert(long.to_string(), value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    #[test]
    fn stems_are_safe_folder_names() {
        assert_eq!(data_stem(Path::new("/d/covid.train.csv")), "covid.train");
        assert_eq!(data_stem(Path::new("mnist.csv.gz")), "mnist");
        assert_eq!(data_stem(Path::new("a b&c.tsv")), "a_b_c.tsv");
        assert_eq!(data_stem(Path::new("..")), "data");
    }

    #[test]
    fn run_numbers_count_up_and_never_collide() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().join("runs");
        let a = create_run_dir(&r, Path::new("iris.csv")).unwrap();
        let b = create_run_dir(&r, Path::new("x/covid.train.csv")).unwrap();
        assert_eq!(a.file_name().unwrap(), "1-iris");
        assert_eq!(b.file_name().unwrap(), "2-covid.train");
        std::fs::create_dir(r.join("17-old")).unwrap();
        std::fs::create_dir(r.join("notes")).unwrap();
        let c = create_run_dir(&r, Path::new("iris.csv")).unwrap();
        assert_eq!(c.file_name().unwrap(), "18-iris");
    }

    #[test]
    fn a_run_folder_resolves_to_its_model() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("3-iris");
        std::fs::create_dir(&dir).unwrap();
        let e = resolve_model(&dir).unwrap_err().to_string();
        assert!(e.contains("without model.safetensors"), "{e}");
        std::fs::write(dir.join(MODEL_FILE), b"x").unwrap();
        assert_eq!(resolve_model(&dir).unwrap(), dir.join(MODEL_FILE));
        let f = root.path().join("m.safetensors");
        assert_eq!(resolve_model(&f).unwrap(), f);
    }

    #[test]
    fn file_record_hashes_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, b"abc").unwrap();
        let r = file_record(&p).unwrap();
        assert_eq!(r["bytes"], 3);
        // sha256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            r["sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(file_record(&dir.path().join("none.csv")).is_err());
    }

    #[derive(clap::Parser, Debug)]
    struct Demo {
        data: String,
        #[arg(long, value_delimiter = ',')]
        hidden: Vec<usize>,
        #[arg(long, default_value_t = 0.001)]
        lr: f64,
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long, short)]
        quiet: bool,
    }

    #[test]
    fn flags_json_records_defaults_and_lists() {
        let cmd = Demo::augment_args(clap::Command::new("demo"));
        let m = cmd
            .clone()
            .try_get_matches_from(["demo", "d.csv", "--hidden", "64,32"])
            .unwrap();
        assert!(Demo::from_arg_matches(&m).is_ok());
        let j = flags_json(&cmd, &m);
        assert_eq!(j["lr"], "0.001");
        assert_eq!(j["hidden"], json!(["64", "32"]));
        assert_eq!(j["seed"], Value::Null);
        assert_eq!(j["quiet"], false);
        assert!(j.get("data").is_none());
    }
}
