//! The one model validator, run on every model read from a file and on every trained model
//! before it is written: a model that passes can be run on data without a panic and without
//! a silent NaN. Errors read `model FILE: …` and never name a flag the user did not give.

use std::collections::HashSet;
use std::path::Path;

use super::Model;
use crate::data::{Schema, window_names};
use crate::error::{Error, Result};
use crate::spec::{Loss, Task};

/// Checks everything a forward pass and the CSV mapping rely on (see the module note).
pub fn model(m: &Model, file: &Path) -> Result<()> {
    let bad = |msg: String| Err(Error::model(file, msg));
    let s = &m.schema;
    names(s, file)?;
    if Loss::for_task(s.task, Some(m.loss.as_str())).ok() != Some(m.loss) {
        return bad(format!(
            "loss '{}' does not fit a {} model",
            m.loss.as_str(),
            s.task.as_str()
        ));
    }
    layers(m, file)?;
    let d = s.features.len();
    let (n, t) = (&m.normalizer, &m.target_normalizer);
    vector("normalizer.mean", &n.mean, d, false, file)?;
    vector("normalizer.std", &n.std, d, true, file)?;
    match s.task {
        Task::Regression => {
            vector("target.mean", &t.mean, s.targets.len(), false, file)?;
            vector("target.std", &t.std, s.targets.len(), true, file)?;
        }
        Task::Classification if !(t.mean.is_empty() && t.std.is_empty()) => {
            return bad("a classifier has no target.mean / target.std".into());
        }
        Task::Classification => {}
    }
    window(s, file)
}

/// Non-empty, unique feature, target and class names; one target for a classifier.
fn names(m: &Schema, file: &Path) -> Result<()> {
    let bad = |msg: String| Err(Error::model(file, msg));
    for (what, list) in [("features", &m.features), ("targets", &m.targets)] {
        if list.is_empty() {
            return bad(format!("it lists no {what}"));
        }
    }
    if m.task == Task::Classification {
        if m.classes.is_empty() {
            return bad("a classifier with no classes".into());
        }
        if m.targets.len() != 1 {
            return bad(format!(
                "a classifier has one target, this one lists {}",
                m.targets.len()
            ));
        }
    } else if !m.classes.is_empty() {
        return bad("a regression model lists classes".into());
    }
    for (what, list) in [
        ("feature", &m.features),
        ("target", &m.targets),
        ("class", &m.classes),
    ] {
        let mut seen = HashSet::new();
        if let Some(dup) = list.iter().find(|n| !seen.insert(n.as_str())) {
            return bad(format!(
                "{what} '{}' is listed twice",
                crate::error::cut(dup, 80)
            ));
        }
    }
    Ok(())
}

/// Layers chained from the features to the outputs, each weight [out, in], finite.
fn layers(m: &Model, file: &Path) -> Result<()> {
    let bad = |msg: String| Err(Error::model(file, msg));
    if m.layers.is_empty() {
        return bad("it has no layers".into());
    }
    let s = &m.schema;
    let mut inputs = s.features.len();
    for (i, l) in m.layers.iter().enumerate() {
        if l.inputs != inputs {
            return bad(format!(
                "layers.{i} takes {} inputs, the layer before gives {inputs}",
                l.inputs
            ));
        }
        if l.outputs == 0 {
            return bad(format!("layers.{i} has no outputs"));
        }
        if Some(l.weight.len()) != l.outputs.checked_mul(l.inputs) || l.bias.len() != l.outputs {
            return bad(format!(
                "layers.{i} holds {} weights and {} biases for [{}, {}]",
                l.weight.len(),
                l.bias.len(),
                l.outputs,
                l.inputs
            ));
        }
        for (name, v) in [("weight", &l.weight), ("bias", &l.bias)] {
            if let Some(j) = v.iter().position(|x| !x.is_finite()) {
                return bad(format!("layers.{i}.{name}[{j}] is {}", v[j]));
            }
        }
        inputs = l.outputs;
    }
    let (want, what) = match s.task {
        Task::Classification => (s.classes.len(), "classes"),
        Task::Regression => (s.targets.len(), "targets"),
    };
    if inputs != want {
        return bad(format!(
            "the last layer has {inputs} outputs for {want} {what}"
        ));
    }
    Ok(())
}

/// `len` finite values; for a std, every one positive.
fn vector(name: &str, v: &[f32], len: usize, std: bool, file: &Path) -> Result<()> {
    let bad = |msg: String| Err(Error::model(file, msg));
    if v.len() != len {
        return bad(format!("{name} has {} values, expected {len}", v.len()));
    }
    if let Some(j) = v.iter().position(|x| !x.is_finite() || (std && *x <= 0.0)) {
        let want = if std { "finite and positive" } else { "finite" };
        return bad(format!("{name}[{j}] is {}; it must be {want}", v[j]));
    }
    Ok(())
}

/// A series model: its first features are the window over its one numeric target.
fn window(m: &Schema, file: &Path) -> Result<()> {
    let Some(n) = m.window else {
        return Ok(());
    };
    let bad = |msg: String| Err(Error::model(file, msg));
    if n == 0 {
        return bad("window 0; a series model looks at least one step back".into());
    }
    if m.task != Task::Regression || m.targets.len() != 1 {
        return bad("a window needs one regression target".into());
    }
    if n > m.features.len() {
        return bad(format!(
            "window {n} is longer than its {} features",
            m.features.len()
        ));
    }
    if m.features[..n] != window_names(&m.targets[0], n)[..] {
        return bad(format!(
            "window {n}: its first features are not the {n} previous values of '{}'",
            crate::error::cut(&m.targets[0], 80)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Normalizer;
    use crate::model::{Layer, init_layers};
    use crate::spec::Activation;

    fn regression() -> Model {
        Model {
            schema: Schema {
                features: vec!["a".into(), "b".into()],
                targets: vec!["y".into()],
                task: Task::Regression,
                classes: vec![],
                window: None,
            },
            activation: Activation::Relu,
            loss: Loss::Mse,
            seed: 1,
            layers: init_layers(&[2, 3, 1], Activation::Relu, 1),
            normalizer: Normalizer {
                mean: vec![0.0, 1.0],
                std: vec![1.0, 2.0],
            },
            target_normalizer: Normalizer {
                mean: vec![5.0],
                std: vec![3.0],
            },
        }
    }

    fn classifier() -> Model {
        let mut m = regression();
        m.schema.task = Task::Classification;
        m.schema.classes = vec!["no".into(), "yes".into()];
        m.loss = Loss::CrossEntropy;
        m.layers = init_layers(&[2, 3, 2], Activation::Relu, 1);
        m.target_normalizer = Normalizer::identity(0);
        m
    }

    fn error_of(m: &Model) -> String {
        let e = model(m, Path::new("m.safetensors")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("model m.safetensors: "), "{s}");
        assert!(!s.contains("--"), "names no flag: {s}");
        s
    }

    #[test]
    fn sound_models_pass() {
        model(&regression(), Path::new("m")).unwrap();
        model(&classifier(), Path::new("m")).unwrap();
        let mut w = regression();
        w.schema.features = vec!["y[t-2]".into(), "y[t-1]".into(), "x".into()];
        w.schema.window = Some(2);
        w.layers = init_layers(&[3, 1], Activation::Relu, 2);
        w.normalizer = Normalizer::identity(3);
        model(&w, Path::new("m")).unwrap();
    }

    #[test]
    fn empty_lists_are_refused() {
        let mut m = classifier();
        m.schema.classes.clear();
        assert!(error_of(&m).contains("no classes"));
        let mut m = regression();
        m.schema.targets.clear();
        assert!(error_of(&m).contains("no targets"));
        let mut m = regression();
        m.schema.features.clear();
        assert!(error_of(&m).contains("no features"));
    }

    #[test]
    fn a_classifier_has_one_target_and_unique_names() {
        let mut m = classifier();
        m.schema.targets.push("z".into());
        assert!(error_of(&m).contains("one target"));
        let mut m = classifier();
        m.schema.classes = vec!["no".into(), "no".into()];
        assert!(error_of(&m).contains("class 'no' is listed twice"));
        let mut m = regression();
        m.schema.features = vec!["a".into(), "a".into()];
        assert!(error_of(&m).contains("feature 'a' is listed twice"));
    }

    #[test]
    fn shapes_must_chain_from_features_to_outputs() {
        let mut m = regression();
        m.layers[1] = Layer {
            inputs: 4,
            outputs: 1,
            weight: vec![0.5; 4],
            bias: vec![0.0],
        };
        assert!(error_of(&m).contains("layers.1 takes 4 inputs, the layer before gives 3"));
        let mut m = classifier();
        m.schema.classes.push("maybe".into());
        assert!(error_of(&m).contains("2 outputs for 3 classes"));
        let mut m = regression();
        m.layers[0].weight.pop();
        assert!(error_of(&m).contains("layers.0 holds 5 weights"));
        let mut m = regression();
        m.layers.clear();
        assert!(error_of(&m).contains("no layers"));
    }

    #[test]
    fn non_finite_weights_and_bad_std_are_refused() {
        let mut m = regression();
        m.layers[1].weight[2] = f32::NAN;
        assert!(error_of(&m).contains("layers.1.weight[2] is NaN"));
        for bad in [0.0, -1.0, f32::INFINITY] {
            let mut m = regression();
            m.normalizer.std[1] = bad;
            assert!(error_of(&m).contains("normalizer.std[1]"), "{bad}");
            let mut m = regression();
            m.target_normalizer.std[0] = bad;
            assert!(error_of(&m).contains("target.std[0]"), "{bad}");
        }
        let mut m = regression();
        m.normalizer.mean.push(0.0);
        assert!(error_of(&m).contains("normalizer.mean has 3 values, expected 2"));
    }

    #[test]
    fn windows_must_fit_the_features_and_target() {
        let mut m = regression();
        m.schema.window = Some(usize::MAX);
        assert!(error_of(&m).contains("longer than its 2 features"));
        m.schema.window = Some(0);
        assert!(error_of(&m).contains("window 0"));
        m.schema.window = Some(2);
        assert!(error_of(&m).contains("previous values of 'y'"));
    }

    #[test]
    fn the_loss_must_fit_the_task() {
        let mut m = regression();
        m.loss = Loss::CrossEntropy;
        assert!(error_of(&m).contains("loss 'ce' does not fit a regression model"));
    }
}
