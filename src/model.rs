//! The MLP: layer sizes, seeded initialization, and the safetensors model file
//! (PyTorch `nn.Linear` names and shapes; see `../shared/DESIGN.md`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::data::{Normalizer, Schema};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::spec::{Activation, Loss, Task};

pub mod validate;

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
    /// The columns the network reads and predicts, and what they mean.
    pub schema: Schema,
    /// Activation of the hidden layers; the output layer is linear (softmax lives in the loss).
    pub activation: Activation,
    pub loss: Loss,
    pub seed: u64,
    pub layers: Vec<Layer>,
    /// x' = (x − mean) / std per feature (identity with `--no-standardize`).
    pub normalizer: Normalizer,
    /// Regression: the network learns standardized targets, a prediction is output · std +
    /// mean per target. Classification: empty.
    pub target_normalizer: Normalizer,
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
    /// The one constructor (training, loading, tests): refuses parts that do not fit together,
    /// so every `Model` in the program is consistent.
    pub fn new(
        schema: Schema,
        activation: Activation,
        loss: Loss,
        seed: u64,
        layers: Vec<Layer>,
        normalizer: Normalizer,
        target_normalizer: Normalizer,
    ) -> Result<Model> {
        let m = Model {
            schema,
            activation,
            loss,
            seed,
            layers,
            normalizer,
            target_normalizer,
        };
        m.check().map_err(Error::internal)?;
        Ok(m)
    }

    /// Why the parts do not fit together, if they do not.
    fn check(&self) -> std::result::Result<(), String> {
        let s = &self.schema;
        if self.loss.task() != s.task {
            return Err(format!(
                "loss {:?} does not suit {}",
                self.loss,
                s.task.as_str()
            ));
        }
        if self.layers.is_empty() {
            return Err("a network needs at least one layer".into());
        }
        let mut inputs = s.n_features();
        for (i, l) in self.layers.iter().enumerate() {
            if l.inputs != inputs || l.weight.len() != l.inputs * l.outputs {
                return Err(format!(
                    "layer {i} does not take the {inputs} inputs it is given"
                ));
            }
            if l.bias.len() != l.outputs {
                return Err(format!(
                    "layer {i} has {} biases for {} outputs",
                    l.bias.len(),
                    l.outputs
                ));
            }
            inputs = l.outputs;
        }
        if inputs != s.n_outputs() {
            return Err(format!(
                "the last layer has {inputs} outputs, expected {}",
                s.n_outputs()
            ));
        }
        let n = &self.normalizer;
        if n.cols() != s.n_features() || n.std.len() != n.cols() {
            return Err(format!(
                "the normalizer has {} columns for {} features",
                n.cols(),
                s.n_features()
            ));
        }
        let t = &self.target_normalizer;
        let want = match s.task {
            Task::Regression => s.targets.len(),
            Task::Classification => 0,
        };
        if t.cols() != want || t.std.len() != want {
            return Err(format!(
                "the target normalizer has {} columns, expected {want}",
                t.cols()
            ));
        }
        Ok(())
    }

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
        let (norm, target) = (&self.normalizer, &self.target_normalizer);
        add("normalizer.mean".into(), vec![norm.cols()], &norm.mean);
        add("normalizer.std".into(), vec![norm.cols()], &norm.std);
        if self.schema.task == Task::Regression {
            add("target.mean".into(), vec![target.cols()], &target.mean);
            add("target.std".into(), vec![target.cols()], &target.std);
        }
        let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
        let schema = &self.schema;
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("task".into(), schema.task.as_str().into());
        meta.insert("activation".into(), self.activation.as_str().into());
        meta.insert("loss".into(), self.loss.as_str().into());
        meta.insert("features".into(), json(&schema.features));
        meta.insert("targets".into(), json(&schema.targets));
        if schema.task == Task::Classification {
            meta.insert("classes".into(), json(&schema.classes));
        }
        meta.insert("seed".into(), self.seed.to_string());
        if let Some(w) = schema.window {
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
        let head = Header::read(&meta).map_err(bad)?;
        let layers = read_layers(&st, head.schema.n_features()).map_err(bad)?;
        let (d, out) = (head.schema.n_features(), head.schema.n_outputs());
        let last = layers.last().map_or(0, |l| l.outputs);
        if last != out {
            return Err(bad(format!(
                "the last layer has {last} outputs, expected {out}"
            )));
        }
        let norm = |name: &str, cols: usize| -> std::result::Result<Normalizer, String> {
            Ok(Normalizer {
                mean: tensor(&st, &format!("{name}.mean"), &[cols])?,
                std: tensor(&st, &format!("{name}.std"), &[cols])?,
            })
        };
        let normalizer = norm("normalizer", d).map_err(bad)?;
        let target_normalizer = match head.schema.task {
            Task::Regression => norm("target", out).map_err(bad)?,
            Task::Classification => Normalizer::identity(0),
        };
        let model = Model::new(
            head.schema,
            head.activation,
            head.loss,
            head.seed,
            layers,
            normalizer,
            target_normalizer,
        )
        .map_err(|e| bad(e.to_string()))?;
        validate::model(&model, path)?;
        Ok(model)
    }
}

/// What a model file's `__metadata__` says.
struct Header {
    schema: Schema,
    activation: Activation,
    loss: Loss,
    seed: u64,
}

impl Header {
    fn read(meta: &HashMap<String, String>) -> std::result::Result<Header, String> {
        let get = |k: &str| meta.get(k).cloned().ok_or(format!("metadata has no '{k}'"));
        let list = |k: &str| -> std::result::Result<Vec<String>, String> {
            serde_json::from_str(&get(k)?)
                .map_err(|e| format!("metadata '{k}' is not a JSON list of strings ({e})"))
        };
        if get("format")? != FORMAT {
            return Err(format!("format '{}' is not {FORMAT}", get("format")?));
        }
        let task = Task::parse(&get("task")?).map_err(|_| "unknown task".to_string())?;
        let activation =
            Activation::parse(&get("activation")?).map_err(|_| "unknown activation".to_string())?;
        let loss = Loss::for_task(task, Some(&get("loss")?))
            .map_err(|_| "unknown loss for its task".to_string())?;
        let classes = match task {
            Task::Classification => list("classes")?,
            Task::Regression => Vec::new(),
        };
        let seed = get("seed")?
            .parse()
            .map_err(|_| "seed is not an integer".to_string())?;
        let window = match meta.get("window") {
            Some(w) => Some(
                w.parse()
                    .map_err(|_| "window is not an integer".to_string())?,
            ),
            None => None,
        };
        let schema = Schema {
            features: list("features")?,
            targets: list("targets")?,
            task,
            classes,
            window,
        };
        Ok(Header {
            schema,
            activation,
            loss,
            seed,
        })
    }
}

/// An F32 tensor of exactly `shape`, every value finite.
fn tensor(st: &SafeTensors, name: &str, shape: &[usize]) -> std::result::Result<Vec<f32>, String> {
    let t = st
        .tensor(name)
        .map_err(|_| format!("missing tensor '{name}'"))?;
    if t.dtype() != Dtype::F32 || t.shape() != shape {
        return Err(format!(
            "tensor '{name}' is {:?} {:?}, expected F32 {shape:?}",
            t.dtype(),
            t.shape()
        ));
    }
    let v: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if v.iter().any(|x| !x.is_finite()) {
        return Err(format!("tensor '{name}' holds NaN or infinity"));
    }
    Ok(v)
}

/// `layers.0.weight`, `layers.0.bias`, … for as long as they go, each taking the previous
/// layer's outputs (the first: the `features` inputs).
fn read_layers(st: &SafeTensors, features: usize) -> std::result::Result<Vec<Layer>, String> {
    let mut layers = Vec::new();
    let mut inputs = features;
    while let Ok(w) = st.tensor(&format!("layers.{}.weight", layers.len())) {
        let i = layers.len();
        let (outputs, got_in) = match w.shape() {
            [o, i] => (*o, *i),
            s => {
                return Err(format!(
                    "layers.{i}.weight has shape {s:?}, expected [out, in]"
                ));
            }
        };
        if got_in != inputs {
            return Err(format!(
                "layers.{i}.weight takes {got_in} inputs, expected {inputs}"
            ));
        }
        layers.push(Layer {
            inputs,
            outputs,
            weight: tensor(st, &format!("layers.{i}.weight"), &[outputs, inputs])?,
            bias: tensor(st, &format!("layers.{i}.bias"), &[outputs])?,
        });
        inputs = outputs;
    }
    if layers.is_empty() {
        return Err("no layers.0.weight tensor".into());
    }
    Ok(layers)
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
        let reg = task == Task::Regression;
        let schema = Schema {
            features: vec!["a".into(), "b".into(), "c".into()],
            targets: if reg {
                vec!["y".into(), "z".into()]
            } else {
                vec!["y".into()]
            },
            task,
            classes: if reg {
                vec![]
            } else {
                vec!["no".into(), "yes".into()]
            },
            window: None,
        };
        let loss = if reg { Loss::Mse } else { Loss::CrossEntropy };
        let normalizer = Normalizer {
            mean: vec![0.5, -1.0, 2.0],
            std: vec![1.5, 2.0, 0.25],
        };
        let target = if reg {
            Normalizer {
                mean: vec![10.0, -3.0],
                std: vec![2.0, 0.5],
            }
        } else {
            Normalizer::identity(0)
        };
        let layers = init_layers(&[3, 5, 2], Activation::Relu, 4);
        Model::new(
            schema,
            Activation::Relu,
            loss,
            4,
            layers,
            normalizer,
            target,
        )
        .unwrap()
    }

    #[test]
    fn new_refuses_parts_that_do_not_fit() {
        let m = sample(Task::Regression);
        let parts = |m: &Model| (m.schema.clone(), m.activation, m.loss, m.seed);
        let (s, a, l, seed) = parts(&m);
        let (n, t) = (m.normalizer.clone(), m.target_normalizer.clone());
        let short = init_layers(&[2, 5, 2], Activation::Relu, 4);
        assert!(Model::new(s.clone(), a, l, seed, short, n.clone(), t.clone()).is_err());
        let one_out = init_layers(&[3, 5, 1], Activation::Relu, 4);
        assert!(Model::new(s.clone(), a, l, seed, one_out, n.clone(), t.clone()).is_err());
        let layers = m.layers.clone();
        let e = Model::new(
            s.clone(),
            a,
            Loss::CrossEntropy,
            seed,
            layers.clone(),
            n.clone(),
            t.clone(),
        );
        assert!(e.is_err(), "a classification loss on a regression schema");
        let e = Model::new(
            s.clone(),
            a,
            l,
            seed,
            layers.clone(),
            Normalizer::identity(2),
            t,
        );
        assert!(e.is_err(), "a normalizer for two of three features");
        let e = Model::new(s, a, l, seed, layers, n, Normalizer::identity(0));
        assert!(e.is_err(), "a regression without target statistics");
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
