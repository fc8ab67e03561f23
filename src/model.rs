//! The MLP: layer sizes, seeded initialization, and the safetensors model file
//! (PyTorch `nn.Linear` names and shapes; see `../shared/DESIGN.md`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::spec::{Activation, Loss, Task};

pub const FORMAT: &str = "wgtrain-mlp-1";

/// One linear layer, `weight` [outputs, inputs] row-major like PyTorch's `nn.Linear`.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub task: Task,
    /// Activation of the hidden layers; the output layer is linear (softmax lives in the loss).
    pub activation: Activation,
    pub loss: Loss,
    pub features: Vec<String>,
    pub targets: Vec<String>,
    pub classes: Vec<String>,
    pub seed: u64,
    /// `--window N`: features are the N previous values of the target series.
    pub window: Option<usize>,
    pub layers: Vec<Layer>,
    /// x' = (x − mean) / std per feature (identity with `--no-standardize`).
    pub feature_mean: Vec<f32>,
    pub feature_std: Vec<f32>,
    /// Regression only: prediction = output · std + mean per target.
    pub target_mean: Vec<f32>,
    pub target_std: Vec<f32>,
}

/// Layer sizes from inputs, hidden widths and outputs: [in, h1, …, out].
pub fn layer_sizes(inputs: usize, hidden: &[usize], outputs: usize) -> Vec<usize> {
    std::iter::once(inputs)
        .chain(hidden.iter().copied())
        .chain(std::iter::once(outputs))
        .collect()
}

/// How the weights start (`--init`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Init {
    /// Xavier/Glorot uniform ±√(6/(in+out)) for every layer: what scikit-learn's MLP does,
    /// and what matched it best on iris and friedman1 (bench/RESULTS.md).
    #[value(alias = "glorot")]
    Xavier,
    /// He-normal (std √(2/in)) for layers followed by ReLU, Xavier for the others.
    #[value(alias = "kaiming")]
    He,
}

impl Init {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "xavier" | "glorot" => Ok(Init::Xavier),
            "he" | "kaiming" => Ok(Init::He),
            _ => Err(Error::flag(
                "--init",
                format!("'{s}' is not one of xavier, he"),
            )),
        }
    }
}

/// Seeded Xavier initialization; biases start at zero.
pub fn init_layers(sizes: &[usize], activation: Activation, seed: u64) -> Vec<Layer> {
    init_layers_with(sizes, activation, Init::Xavier, seed)
}

/// Seeded initialization by `init`; biases start at zero.
pub fn init_layers_with(
    sizes: &[usize],
    activation: Activation,
    init: Init,
    seed: u64,
) -> Vec<Layer> {
    let mut rng = Rng::derive(seed, 0x1417);
    sizes
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let (inputs, outputs) = (w[0], w[1]);
            let relu = init == Init::He && activation == Activation::Relu && i + 2 < sizes.len();
            let weight = (0..inputs * outputs)
                .map(|_| {
                    if relu {
                        (rng.normal() * (2.0 / inputs as f64).sqrt()) as f32
                    } else {
                        let a = (6.0 / (inputs + outputs) as f64).sqrt();
                        ((rng.uniform() * 2.0 - 1.0) * a) as f32
                    }
                })
                .collect();
            Layer {
                inputs,
                outputs,
                weight,
                bias: vec![0.0; outputs],
            }
        })
        .collect()
}

impl Model {
    pub fn sizes(&self) -> Vec<usize> {
        let mut s: Vec<usize> = self.layers.iter().map(|l| l.inputs).collect();
        s.extend(self.layers.last().map(|l| l.outputs));
        s
    }
    pub fn hidden(&self) -> Vec<usize> {
        let s = self.sizes();
        s[1..s.len() - 1].to_vec()
    }
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weight.len() + l.bias.len())
            .sum()
    }

    /// Writes the model to a temporary file beside `path`, then renames it into place, so an
    /// interrupted or failed run never harms an existing file.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::write_atomically(path, &self.to_bytes()?)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let mut add = |name: String, shape: Vec<usize>, v: &[f32]| {
            tensors.push((name, shape, bytemuck::cast_slice(v).to_vec()));
        };
        for (i, l) in self.layers.iter().enumerate() {
            add(
                format!("layers.{i}.weight"),
                vec![l.outputs, l.inputs],
                &l.weight,
            );
            add(format!("layers.{i}.bias"), vec![l.outputs], &l.bias);
        }
        add(
            "normalizer.mean".into(),
            vec![self.feature_mean.len()],
            &self.feature_mean,
        );
        add(
            "normalizer.std".into(),
            vec![self.feature_std.len()],
            &self.feature_std,
        );
        if self.task == Task::Regression {
            add(
                "target.mean".into(),
                vec![self.target_mean.len()],
                &self.target_mean,
            );
            add(
                "target.std".into(),
                vec![self.target_std.len()],
                &self.target_std,
            );
        }
        let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("task".into(), self.task.as_str().into());
        meta.insert("activation".into(), self.activation.as_str().into());
        meta.insert("loss".into(), self.loss.as_str().into());
        meta.insert("features".into(), json(&self.features));
        meta.insert("targets".into(), json(&self.targets));
        if self.task == Task::Classification {
            meta.insert("classes".into(), json(&self.classes));
        }
        meta.insert("seed".into(), self.seed.to_string());
        if let Some(w) = self.window {
            meta.insert("window".into(), w.to_string());
        }
        let views = tensors
            .iter()
            .map(|(n, s, d)| Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), d)?)))
            .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
            .map_err(|e| Error::internal(format!("model serialization: {e}")))?;
        let bytes = safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::internal(format!("model serialization: {e}")))?;
        Ok(canonical_header(bytes))
    }

    pub fn load(path: &Path) -> Result<Model> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Model> {
        let bad = |msg: String| Error::model(path, msg);
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a valid safetensors file ({e})")))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("unreadable header ({e})")))?;
        let meta = header
            .metadata()
            .clone()
            .ok_or_else(|| bad("no __metadata__ in the header; not a wgtrain model".into()))?;
        let get = |k: &str| {
            meta.get(k)
                .cloned()
                .ok_or_else(|| bad(format!("metadata has no '{k}'")))
        };
        let list = |k: &str| -> Result<Vec<String>> {
            serde_json::from_str(&get(k)?).map_err(|e| {
                bad(format!(
                    "metadata '{k}' is not a JSON list of strings ({e})"
                ))
            })
        };
        if get("format")? != FORMAT {
            return Err(bad(format!("format '{}' is not {FORMAT}", get("format")?)));
        }
        let task = Task::parse(&get("task")?).map_err(|_| bad("unknown task".into()))?;
        let activation =
            Activation::parse(&get("activation")?).map_err(|_| bad("unknown activation".into()))?;
        let loss = Loss::for_task(task, Some(&get("loss")?))
            .map_err(|_| bad("unknown loss for its task".into()))?;
        let features = list("features")?;
        let targets = list("targets")?;
        let classes = if task == Task::Classification {
            list("classes")?
        } else {
            Vec::new()
        };
        let seed = get("seed")?
            .parse()
            .map_err(|_| bad("seed is not an integer".into()))?;
        let window = match meta.get("window") {
            Some(w) => Some(
                w.parse()
                    .map_err(|_| bad("window is not an integer".into()))?,
            ),
            None => None,
        };
        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = st
                .tensor(name)
                .map_err(|_| bad(format!("missing tensor '{name}'")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(bad(format!(
                    "tensor '{name}' is {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            let v: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(bad(format!("tensor '{name}' holds NaN or infinity")));
            }
            Ok(v)
        };
        let mut layers = Vec::new();
        let mut inputs = features.len();
        while let Ok(w) = st.tensor(&format!("layers.{}.weight", layers.len())) {
            let (outputs, got_in) = match w.shape() {
                [o, i] => (*o, *i),
                s => {
                    return Err(bad(format!(
                        "layers.{}.weight has shape {s:?}, expected [out, in]",
                        layers.len()
                    )));
                }
            };
            if got_in != inputs {
                return Err(bad(format!(
                    "layers.{}.weight takes {got_in} inputs, expected {inputs}",
                    layers.len()
                )));
            }
            let i = layers.len();
            let weight = tensor(&format!("layers.{i}.weight"), &[outputs, inputs])?;
            let bias = tensor(&format!("layers.{i}.bias"), &[outputs])?;
            layers.push(Layer {
                inputs,
                outputs,
                weight,
                bias,
            });
            inputs = outputs;
        }
        if layers.is_empty() {
            return Err(bad("no layers.0.weight tensor".into()));
        }
        let want_out = if task == Task::Classification {
            classes.len()
        } else {
            targets.len()
        };
        if inputs != want_out {
            return Err(bad(format!(
                "the last layer has {inputs} outputs, expected {want_out}"
            )));
        }
        let d = features.len();
        let (target_mean, target_std) = if task == Task::Regression {
            (
                tensor("target.mean", &[want_out])?,
                tensor("target.std", &[want_out])?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Model {
            task,
            activation,
            loss,
            features,
            targets,
            classes,
            seed,
            window,
            layers,
            feature_mean: tensor("normalizer.mean", &[d])?,
            feature_std: tensor("normalizer.std", &[d])?,
            target_mean,
            target_std,
        })
    }
}

/// safetensors writes `__metadata__` from a HashMap, whose order changes from run to run.
/// Re-serialize the header through serde_json's sorted map so a seed gives the same bytes.
fn canonical_header(bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8])) as usize;
    let Ok(header) =
        serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(&bytes[8..8 + n])
    else {
        return bytes;
    };
    let mut json = serde_json::to_vec(&header).unwrap_or_default();
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend((json.len() as u64).to_le_bytes());
    out.extend(json);
    out.extend(&bytes[8 + n..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(task: Task) -> Model {
        let layers = init_layers(&[3, 5, 2], Activation::Relu, 4);
        let reg = task == Task::Regression;
        Model {
            task,
            activation: Activation::Relu,
            loss: if task == Task::Regression {
                Loss::Mse
            } else {
                Loss::CrossEntropy
            },
            features: vec!["a".into(), "b".into(), "c".into()],
            targets: vec!["y".into(), "z".into()],
            classes: if task == Task::Classification {
                vec!["no".into(), "yes".into()]
            } else {
                vec![]
            },
            seed: 4,
            window: None,
            layers,
            feature_mean: vec![0.5, -1.0, 2.0],
            feature_std: vec![1.5, 2.0, 0.25],
            target_mean: if reg { vec![10.0, -3.0] } else { vec![] },
            target_std: if reg { vec![2.0, 0.5] } else { vec![] },
        }
    }

    #[test]
    fn model_file_round_trips_and_is_deterministic() {
        for task in [Task::Regression, Task::Classification] {
            let m = sample(task);
            let bytes = m.to_bytes().unwrap();
            assert_eq!(bytes, m.to_bytes().unwrap(), "same model, same bytes");
            let back = Model::from_bytes(&bytes, Path::new("x")).unwrap();
            assert_eq!(back, m);
        }
    }

    #[test]
    fn model_file_uses_pytorch_linear_names_and_shapes() {
        let bytes = sample(Task::Regression).to_bytes().unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("layers.0.weight").unwrap().shape(), &[5, 3]);
        assert_eq!(st.tensor("layers.1.bias").unwrap().shape(), &[2]);
        assert_eq!(st.tensor("target.std").unwrap().shape(), &[2]);
        let (_, h) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = h.metadata().as_ref().unwrap();
        assert_eq!(meta["format"], FORMAT);
        assert_eq!(meta["features"], r#"["a","b","c"]"#);
    }

    #[test]
    fn truncated_or_corrupt_model_files_are_errors() {
        let bytes = sample(Task::Classification).to_bytes().unwrap();
        for cut in [0, 7, 8, 40, bytes.len() - 1] {
            let e = Model::from_bytes(&bytes[..cut], Path::new("m.safetensors")).unwrap_err();
            assert!(e.to_string().contains("m.safetensors"), "{e}");
        }
        let mut flipped = bytes.clone();
        flipped[10] = b'#';
        assert!(Model::from_bytes(&flipped, Path::new("m")).is_err());
    }

    #[test]
    fn init_is_seeded_and_scaled() {
        let a = init_layers_with(&[200, 300, 1], Activation::Relu, Init::He, 9);
        assert_eq!(
            a,
            init_layers_with(&[200, 300, 1], Activation::Relu, Init::He, 9)
        );
        assert_ne!(
            a,
            init_layers_with(&[200, 300, 1], Activation::Relu, Init::He, 10)
        );
        let x = init_layers(&[200, 300, 1], Activation::Relu, 9);
        let b0 = (6.0f64 / 500.0).sqrt() as f32;
        assert!(
            x[0].weight.iter().all(|v| v.abs() <= b0),
            "Xavier bound for the hidden layer"
        );
        let var =
            x[0].weight.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x[0].weight.len() as f64;
        assert!((var - 2.0 / 500.0).abs() < 0.0005, "Xavier variance {var}");
        let w = &a[0].weight;
        let var = w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((var - 2.0 / 200.0).abs() < 0.001, "He variance {var}");
        let bound = (6.0f64 / 301.0).sqrt() as f32;
        assert!(a[1].weight.iter().all(|v| v.abs() <= bound));
    }
}
