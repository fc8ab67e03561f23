//! What `--checkpoint` costs per write at MNIST size (784-100-10, Adam, 48,000 training rows):
//! serialize + write to a temp file + fsync + rename, median of 20; and the one-off content
//! hash of the data file at the start of a run.
//!
//! `cargo run --release --example checkpoint_cost [DATA]`

use std::path::Path;
use std::time::Instant;

use wgtrain::checkpoint::{Checkpoint, DataFile, Progress};
use wgtrain::data::{Normalizer, Schema};
use wgtrain::model::{Model, init_layers};
use wgtrain::spec::{Activation, Loss, Task};

fn main() {
    let data = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/work/shared/data/mnist/mnist_train.csv.gz".into());
    let schema = Schema {
        features: (0..784).map(|i| format!("px{i}")).collect(),
        targets: vec!["label".into()],
        task: Task::Classification,
        classes: (0..10).map(|c| c.to_string()).collect(),
        window: None,
    };
    let layers = init_layers(&[784, 100, 10], Activation::Relu, 1);
    let params: usize = layers.iter().map(|l| l.weight.len() + l.bias.len()).sum();
    let model = Model::new(
        schema,
        Activation::Relu,
        Loss::CrossEntropy,
        1,
        layers,
        Normalizer::identity(784),
        Normalizer::identity(0),
    )
    .expect("model");
    let t = Instant::now();
    let file = DataFile::of("training data", Path::new(&data)).expect("data file");
    let hash_s = t.elapsed().as_secs_f64();
    let c = Checkpoint {
        args: serde_json::json!({ "argv": ["wgtrain", "train", data] }),
        data: vec![file.clone()],
        progress: Progress {
            rng: "12345".into(),
            ..Progress::default()
        },
        best: Some(model.clone()),
        model,
        order: (0..48_000).collect(),
        state: vec![
            ("optimizer.00".into(), vec![0.5; params]),
            ("optimizer.01".into(), vec![0.25; params]),
        ],
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("c.ckpt");
    let mut times: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            wgtrain::io::write_atomically(&path, &c.to_bytes().expect("bytes")).expect("write");
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "checkpoint of 784-100-10 Adam ({params} parameters, best weights kept, 48000-row order): {size} bytes, median write {:.2} ms (min {:.2}, max {:.2}) over 20",
        times[10] * 1e3,
        times[0] * 1e3,
        times[19] * 1e3
    );
    println!(
        "content hash of {} ({} bytes): {:.3} s, once per run",
        data, file.bytes, hash_s
    );
}
