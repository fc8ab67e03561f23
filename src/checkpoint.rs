//! Checkpoints: everything a run needs to continue exactly where it stopped, in one
//! safetensors file (format `wgtrain-checkpoint-1`, so `predict` on it says it is not a
//! model). Tensors: `model` (the model file's bytes: weights and normalizers), `best_model`
//! (early stopping's best weights, when kept), `order` (the current shuffle of the training
//! rows, u32) and `state.NAME` (optimizer buffers, f32). The header's metadata holds the
//! flags of the run, the data files (path, size, content hash) and where the loop stands.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Model;

pub const FORMAT: &str = "wgtrain-checkpoint-1";

/// A data file as the run read it: a checkpoint refuses to resume on different data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// How the run named it (`DATA`, `--val`).
    pub role: String,
    /// Absolute, so a resume from another folder finds it.
    pub path: PathBuf,
    pub bytes: u64,
    /// FNV-1a 64 of the content, hex: stable across versions and platforms.
    pub fnv64: String,
}

/// FNV-1a, 64 bit, over everything `r` yields.
fn fnv64(mut r: impl Read) -> std::io::Result<(u64, u64)> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            return Ok((h, n));
        }
        for &b in &buf[..k] {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        n += k as u64;
    }
}

impl DataFile {
    pub fn of(role: &str, path: &Path) -> Result<DataFile> {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let (h, bytes) = fnv64(f).map_err(|e| Error::io(path, e))?;
        Ok(DataFile {
            role: role.to_string(),
            path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            bytes,
            fnv64: format!("{h:016x}"),
        })
    }

    /// Refuses when the file is gone or its size or content changed since the checkpoint.
    pub fn check(&self, checkpoint: &Path) -> Result<()> {
        let now = DataFile::of(&self.role, &self.path).map_err(|e| {
            Error::model(
                checkpoint,
                format!(
                    "the run's {} '{}' cannot be read: {e}",
                    self.role,
                    self.path.display()
                ),
            )
        })?;
        if now.bytes != self.bytes || now.fnv64 != self.fnv64 {
            return Err(Error::model(
                checkpoint,
                format!(
                    "the run's {} '{}' changed since the checkpoint ({} bytes, hash {} then; {} bytes, hash {} now); resuming on other data would not continue the same run",
                    self.role,
                    self.path.display(),
                    self.bytes,
                    self.fnv64,
                    now.bytes,
                    now.fnv64
                ),
            ));
        }
        Ok(())
    }
}

/// One epoch's metrics as the checkpoint keeps them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Epoch {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub val_metric: Option<f64>,
    pub seconds: f64,
}

/// Where the loop stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The epoch in progress (1-based); `batch` of its batches are done.
    pub epoch: usize,
    pub batch: usize,
    /// Optimizer steps taken (Adam's t and the schedule's position).
    pub step: u64,
    /// The shuffle generator's position, as a decimal string (u128 does not fit JSON).
    pub rng: String,
    /// Early stopping: the best epoch and its validation loss so far.
    pub best: Option<(usize, f64)>,
    /// Every finished epoch's metrics.
    pub history: Vec<Epoch>,
    /// The losses of the batches done in the epoch in progress.
    pub partial_losses: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The run's flags, as the command serialized them.
    pub args: serde_json::Value,
    pub data: Vec<DataFile>,
    pub progress: Progress,
    /// The current weights (and normalizers, names, task: a whole model).
    pub model: Model,
    /// Early stopping's best weights so far.
    pub best: Option<Model>,
    /// The current order of the training rows.
    pub order: Vec<u32>,
    /// Optimizer buffers by name, in the loop's own layout.
    pub state: Vec<(String, Vec<f32>)>,
}

impl Checkpoint {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let internal = |e: String| Error::internal(format!("checkpoint serialization: {e}"));
        let model = self.model.to_bytes()?;
        let best = self.best.as_ref().map(Model::to_bytes).transpose()?;
        let mut blobs: Vec<(String, Dtype, Vec<usize>, &[u8])> = vec![
            ("model".into(), Dtype::U8, vec![model.len()], &model),
            (
                "order".into(),
                Dtype::U32,
                vec![self.order.len()],
                bytemuck::cast_slice(&self.order),
            ),
        ];
        if let Some(b) = &best {
            blobs.push(("best_model".into(), Dtype::U8, vec![b.len()], b));
        }
        for (name, v) in &self.state {
            blobs.push((
                format!("state.{name}"),
                Dtype::F32,
                vec![v.len()],
                bytemuck::cast_slice(v),
            ));
        }
        let views = blobs
            .iter()
            .map(|(n, t, s, d)| Ok((n.clone(), TensorView::new(*t, s.clone(), d)?)))
            .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
            .map_err(|e| internal(e.to_string()))?;
        let json = |v: serde_json::Result<String>| v.map_err(|e| internal(e.to_string()));
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("args".into(), json(serde_json::to_string(&self.args))?);
        meta.insert("data".into(), json(serde_json::to_string(&self.data))?);
        meta.insert(
            "progress".into(),
            json(serde_json::to_string(&self.progress))?,
        );
        safetensors::serialize(views, Some(meta)).map_err(|e| internal(e.to_string()))
    }

    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
        let bad = |msg: String| Error::model(path, msg);
        let not_ckpt = || {
            bad(format!(
                "not a wgtrain checkpoint (written by --checkpoint; format {FORMAT})"
            ))
        };
        let st = SafeTensors::deserialize(bytes).map_err(|_| not_ckpt())?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|_| not_ckpt())?;
        let meta = header.metadata().clone().ok_or_else(not_ckpt)?;
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(not_ckpt());
        }
        let field = |k: &str| -> Result<&String> {
            meta.get(k)
                .ok_or_else(|| bad(format!("checkpoint metadata has no '{k}'")))
        };
        let parse_err = |k: &str, e: serde_json::Error| bad(format!("checkpoint '{k}': {e}"));
        let args = serde_json::from_str(field("args")?).map_err(|e| parse_err("args", e))?;
        let data = serde_json::from_str(field("data")?).map_err(|e| parse_err("data", e))?;
        let progress: Progress =
            serde_json::from_str(field("progress")?).map_err(|e| parse_err("progress", e))?;
        progress
            .rng
            .parse::<u128>()
            .map_err(|_| bad("checkpoint 'progress.rng' is not a number".into()))?;
        let raw = |name: &str, dtype: Dtype| -> Result<Option<Vec<u8>>> {
            match st.tensor(name) {
                Ok(t) if t.dtype() == dtype && t.shape().len() == 1 => Ok(Some(t.data().to_vec())),
                Ok(_) => Err(bad(format!(
                    "checkpoint tensor '{name}' is not {dtype:?} [n]"
                ))),
                Err(_) => Ok(None),
            }
        };
        let model_bytes =
            raw("model", Dtype::U8)?.ok_or_else(|| bad("checkpoint has no 'model'".into()))?;
        let model = Model::from_bytes(&model_bytes, path)?;
        let best = raw("best_model", Dtype::U8)?
            .map(|b| Model::from_bytes(&b, path))
            .transpose()?;
        let words = |b: Vec<u8>| -> Vec<[u8; 4]> {
            b.chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect()
        };
        let order = raw("order", Dtype::U32)?
            .map(|b| words(b).into_iter().map(u32::from_le_bytes).collect())
            .unwrap_or_default();
        let mut state = Vec::new();
        for name in st.names() {
            if let Some(short) = name.strip_prefix("state.") {
                let b = raw(name, Dtype::F32)?.unwrap_or_default();
                let v: Vec<f32> = words(b).into_iter().map(f32::from_le_bytes).collect();
                state.push((short.to_string(), v));
            }
        }
        // names() follows a hash map: sort so the same file always gives the same order.
        state.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Checkpoint {
            args,
            data,
            progress,
            model,
            best,
            order,
            state,
        })
    }

    /// The shuffle generator's position.
    pub fn rng_position(&self) -> u128 {
        self.progress.rng.parse().unwrap_or(0)
    }

    /// The memory budget of a streamed run (`--max-memory`, or the one chosen for it), which
    /// its shards, and so its rows' order, depend on; `None` for a run in memory.
    pub fn stream_budget(&self) -> Option<u64> {
        self.args.get("stream_budget").and_then(|v| v.as_u64())
    }

    /// Refuses to resume when a data file changed (see [`DataFile::check`]).
    pub fn check_data(&self, path: &Path) -> Result<()> {
        self.data.iter().try_for_each(|d| d.check(path))
    }

    /// The optimizer buffer `name`, or an error naming the checkpoint.
    pub fn state(&self, name: &str, len: usize, path: &Path) -> Result<&[f32]> {
        match self.state.iter().find(|(n, _)| n == name) {
            Some((_, v)) if v.len() == len => Ok(v),
            Some((_, v)) => Err(Error::model(
                path,
                format!(
                    "checkpoint state '{name}' holds {} values, expected {len}",
                    v.len()
                ),
            )),
            None => Err(Error::model(
                path,
                format!("checkpoint has no state '{name}'"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Normalizer, Schema};
    use crate::model::init_layers;
    use crate::spec::{Activation, Loss, Task};

    fn sample() -> Checkpoint {
        let schema = Schema {
            features: vec!["a".into(), "b".into()],
            targets: vec!["y".into()],
            task: Task::Regression,
            classes: vec![],
            window: None,
        };
        let target = Normalizer {
            mean: vec![5.0],
            std: vec![3.0],
        };
        let layers = init_layers(&[2, 3, 1], Activation::Relu, 1);
        let model = Model::new(
            schema,
            Activation::Relu,
            Loss::Mse,
            1,
            layers,
            Normalizer::identity(2),
            target,
        )
        .unwrap();
        let mut best = model.clone();
        best.layers[0].weight[0] = 0.125;
        Checkpoint {
            args: serde_json::json!({"epochs": 10, "lr": 0.001}),
            data: vec![],
            progress: Progress {
                epoch: 3,
                batch: 2,
                step: 42,
                rng: (u64::MAX as u128 * 3).to_string(),
                best: Some((2, 0.1 + 0.2)),
                history: vec![Epoch {
                    epoch: 1,
                    train_loss: 1.0 / 3.0,
                    val_loss: Some(std::f64::consts::PI),
                    val_metric: None,
                    seconds: 0.5,
                }],
                partial_losses: vec![0.25, 1e-30],
            },
            model,
            best: Some(best),
            order: vec![3, 0, 2, 1],
            state: vec![("m.0".into(), vec![1.5, -2.0]), ("v.0".into(), vec![1e-20])],
        }
    }

    #[test]
    fn a_checkpoint_round_trips_exactly() {
        let c = sample();
        let back = Checkpoint::from_bytes(&c.to_bytes().unwrap(), Path::new("c")).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.rng_position(), u64::MAX as u128 * 3);
        assert_eq!(back.state("v.0", 1, Path::new("c")).unwrap(), [1e-20]);
        assert!(back.state("v.0", 2, Path::new("c")).is_err());
    }

    #[test]
    fn a_model_file_is_not_a_checkpoint_and_a_checkpoint_not_a_model() {
        let c = sample();
        let e =
            Checkpoint::from_bytes(&c.model.to_bytes().unwrap(), Path::new("m.st")).unwrap_err();
        assert!(e.to_string().contains("not a wgtrain checkpoint"), "{e}");
        let e = Checkpoint::from_bytes(b"epoch,loss\n1,2\n", Path::new("x.csv")).unwrap_err();
        assert!(
            e.to_string().contains("x.csv: not a wgtrain checkpoint"),
            "{e}"
        );
        let e = Model::from_bytes(&c.to_bytes().unwrap(), Path::new("c")).unwrap_err();
        assert!(e.to_string().contains(FORMAT), "{e}");
    }

    #[test]
    fn changed_data_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.csv");
        std::fs::write(&p, "x,y\n1,2\n").unwrap();
        let f = DataFile::of("DATA", &p).unwrap();
        f.check(Path::new("c")).unwrap();
        // Same size, one byte different.
        std::fs::write(&p, "x,y\n1,3\n").unwrap();
        let e = f.check(Path::new("c")).unwrap_err().to_string();
        assert!(e.contains("changed since the checkpoint"), "{e}");
        std::fs::remove_file(&p).unwrap();
        let e = f.check(Path::new("c")).unwrap_err().to_string();
        assert!(e.contains("cannot be read"), "{e}");
    }

    #[test]
    fn fnv64_matches_the_reference_values() {
        // From the FNV reference: "" and "a".
        assert_eq!(fnv64(&b""[..]).unwrap().0, 0xcbf29ce484222325);
        assert_eq!(fnv64(&b"a"[..]).unwrap().0, 0xaf63dc4c8601ec8c);
    }
}
