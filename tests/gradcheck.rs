//! Gradient checks: the real training wiring (`train::GradProbe` runs `Stepper`'s gather,
//! `Net::forward`, the loss and `backward`, exactly what every training step runs) on the CPU
//! backend in f64, against central finite differences, on small random networks — every
//! activation, every loss.

use wgtrain::backend::StepParams;
use wgtrain::backend::cpu::{CpuBackend, optimizer_step};
use wgtrain::data::{Normalizer, Schema};
use wgtrain::model::{Layer, Model};
use wgtrain::rng::Rng;
use wgtrain::spec::{Activation, Loss, Optimizer, Task};
use wgtrain::train::{GradProbe, Rows};

struct Case {
    sizes: Vec<usize>,
    act: Activation,
    loss: Loss,
    m: usize,
}

fn model_of(c: &Case) -> Model {
    let n_out = *c.sizes.last().unwrap();
    let d = c.sizes[0];
    let names = |p: &str, n: usize| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    let (task, targets, classes) = match c.loss {
        Loss::Mse | Loss::Mae => (Task::Regression, names("y", n_out), vec![]),
        _ => (Task::Classification, vec!["y".into()], names("c", n_out)),
    };
    let target_cols = if task == Task::Regression { n_out } else { 0 };
    let layers = c
        .sizes
        .windows(2)
        .map(|w| Layer {
            inputs: w[0],
            outputs: w[1],
            weight: vec![0.0; w[0] * w[1]],
            bias: vec![0.0; w[1]],
        })
        .collect();
    let schema = Schema {
        features: names("x", d),
        targets,
        task,
        classes,
        window: None,
    };
    Model::new(
        schema,
        c.act,
        c.loss,
        0,
        layers,
        Normalizer::identity(d),
        Normalizer::identity(target_cols),
    )
    .expect("a valid model")
}

/// L = 1/m Σ eₙ at `params` (the probe's parameter slab, in f64).
fn loss_at(be: &mut CpuBackend<f64>, probe: &GradProbe, params: &[f64], m: usize) -> f64 {
    be.write_f64(probe.params(), params).expect("write params");
    let stats = probe.run(be).expect("forward, loss, backward");
    be.read_f64(stats).expect("read loss")[0] / m as f64
}

fn check(c: Case, seed: u64) {
    let mut r = Rng::new(seed);
    let model = model_of(&c);
    let n_out = *c.sizes.last().unwrap();
    // Inputs and targets travel as f32 (the data path); the parameters are f64 throughout.
    let x: Vec<f32> = (0..c.m * c.sizes[0])
        .map(|_| (r.normal() * 1.3 + 0.2) as f32)
        .collect();
    let y: Vec<f32> = match c.loss {
        Loss::Mse | Loss::Mae => (0..c.m * n_out).map(|_| r.normal() as f32).collect(),
        _ => (0..c.m).map(|_| r.below(n_out) as f32).collect(),
    };
    let rows = Rows { x, y, rows: c.m };
    let mut be = CpuBackend::new_f64();
    let probe = GradProbe::new(&mut be, &model, &rows).expect("probe");
    let layout = probe.layout().clone();
    let mut params = vec![0.0f64; layout.len];
    for l in 0..layout.w.len() {
        let ((wo, wl), (bo, bl)) = (layout.w[l], layout.b[l]);
        params[wo..wo + wl]
            .iter_mut()
            .for_each(|v| *v = r.normal() * 0.8);
        params[bo..bo + bl]
            .iter_mut()
            .for_each(|v| *v = r.normal() * 0.3);
    }
    loss_at(&mut be, &probe, &params, c.m);
    let analytic = be.read_f64(probe.grads()).expect("read gradient");
    let name = |i: usize| {
        for l in 0..layout.w.len() {
            let ((wo, wl), (bo, bl)) = (layout.w[l], layout.b[l]);
            if (wo..wo + wl).contains(&i) {
                return format!("layers.{l}.weight[{}]", i - wo);
            }
            if (bo..bo + bl).contains(&i) {
                return format!("layers.{l}.bias[{}]", i - bo);
            }
        }
        format!("param[{i}]")
    };
    let h = 1e-6;
    let mut worst = (0.0f64, String::new());
    for i in 0..params.len() {
        let (mut plus, mut minus) = (params.clone(), params.clone());
        plus[i] += h;
        minus[i] -= h;
        let num = (loss_at(&mut be, &probe, &plus, c.m) - loss_at(&mut be, &probe, &minus, c.m))
            / (2.0 * h);
        let a = analytic[i];
        let err = (a - num).abs() / (1e-7 + 1e-5 * num.abs().max(a.abs()));
        if err > worst.0 {
            worst = (
                err,
                format!("{}: analytic {a:.9e} numeric {num:.9e}", name(i)),
            );
        }
    }
    println!(
        "{:?} {:?} {:?}: worst relative error {:.3} of tolerance at {}",
        c.sizes, c.act, c.loss, worst.0, worst.1
    );
    assert!(
        worst.0 <= 1.0,
        "{:?} {:?} {:?}: gradient mismatch at {}",
        c.sizes,
        c.act,
        c.loss,
        worst.1
    );
}

#[test]
fn mse_gradients_match_finite_differences() {
    check(
        Case {
            sizes: vec![3, 5, 4, 2],
            act: Activation::Relu,
            loss: Loss::Mse,
            m: 7,
        },
        1,
    );
    check(
        Case {
            sizes: vec![3, 5, 1],
            act: Activation::Sigmoid,
            loss: Loss::Mse,
            m: 4,
        },
        2,
    );
}

#[test]
fn mae_gradients_match_finite_differences() {
    check(
        Case {
            sizes: vec![4, 6, 2],
            act: Activation::Relu,
            loss: Loss::Mae,
            m: 5,
        },
        3,
    );
    check(
        Case {
            sizes: vec![4, 3, 3, 1],
            act: Activation::Sigmoid,
            loss: Loss::Mae,
            m: 6,
        },
        4,
    );
}

#[test]
fn cross_entropy_gradients_match_finite_differences() {
    check(
        Case {
            sizes: vec![4, 6, 3],
            act: Activation::Relu,
            loss: Loss::CrossEntropy,
            m: 9,
        },
        5,
    );
    check(
        Case {
            sizes: vec![2, 5, 5, 2],
            act: Activation::Sigmoid,
            loss: Loss::CrossEntropy,
            m: 3,
        },
        6,
    );
}

#[test]
fn softmax_mse_gradients_match_finite_differences() {
    check(
        Case {
            sizes: vec![4, 6, 3],
            act: Activation::Relu,
            loss: Loss::SoftmaxMse,
            m: 8,
        },
        7,
    );
    check(
        Case {
            sizes: vec![3, 4, 5],
            act: Activation::Sigmoid,
            loss: Loss::SoftmaxMse,
            m: 5,
        },
        8,
    );
}

#[test]
fn linear_model_gradients_match_finite_differences() {
    // --hidden none: the lecture's y = b + Wx, one layer and no activation.
    check(
        Case {
            sizes: vec![5, 1],
            act: Activation::Relu,
            loss: Loss::Mse,
            m: 11,
        },
        9,
    );
    check(
        Case {
            sizes: vec![5, 4],
            act: Activation::Relu,
            loss: Loss::CrossEntropy,
            m: 6,
        },
        10,
    );
}

fn hp(lr: f32, wd: f32, step: u64) -> StepParams {
    StepParams::new(lr, wd, step)
}

#[test]
fn sgd_and_momentum_follow_their_update_rules() {
    let g = [0.5f64, -2.0, 0.25];
    let mut p = vec![1.0f64, 2.0, -3.0];
    optimizer_step(Optimizer::Sgd, &mut p, &g, &mut [], hp(0.1, 0.0, 1));
    // lr travels as f32, so 0.1 is 0.1 to about 1e-8.
    for (got, want) in p.iter().zip([0.95, 2.2, -3.025]) {
        assert!((got - want).abs() < 1e-7, "sgd: {p:?}");
    }
    // L2 decay adds wd·p to the gradient.
    let mut p = vec![1.0f64, 2.0, -3.0];
    optimizer_step(Optimizer::Sgd, &mut p, &g, &mut [], hp(0.1, 0.5, 1));
    assert!((p[0] - (1.0 - 0.1 * (0.5 + 0.5))).abs() < 1e-7);
    // Momentum: v = 0.9 v + g; p −= lr v. Two steps with the same gradient.
    let mut p = vec![1.0f64, 2.0, -3.0];
    let mut v = vec![0.0f64; 3];
    for _ in 0..2 {
        optimizer_step(
            Optimizer::Momentum,
            &mut p,
            &g,
            &mut [&mut v],
            hp(0.1, 0.0, 1),
        );
    }
    for i in 0..3 {
        assert!((v[i] - 1.9 * g[i]).abs() < 1e-6, "velocity {v:?}");
        assert!(
            (p[i] - ([1.0, 2.0, -3.0][i] - 0.1 * (1.0 + 1.9) * g[i])).abs() < 1e-6,
            "param {p:?}"
        );
    }
}

#[test]
fn adam_first_step_moves_each_weight_by_lr_times_sign() {
    let g = [0.5f64, -2.0, 1e-3];
    let mut p = vec![1.0f64, 2.0, -3.0];
    let (mut m, mut v) = (vec![0.0f64; 3], vec![0.0f64; 3]);
    optimizer_step(
        Optimizer::Adam,
        &mut p,
        &g,
        &mut [&mut m, &mut v],
        hp(0.01, 0.0, 1),
    );
    for i in 0..3 {
        let moved = [1.0, 2.0, -3.0][i] - p[i];
        assert!(
            (moved - 0.01 * g[i].signum()).abs() < 1e-6,
            "step {i}: moved {moved}"
        );
    }
    // Step 2 with a gradient of the opposite sign: m̂ and v̂ bias-corrected at t = 2.
    let g2 = [-0.5f64, 2.0, -1e-3];
    optimizer_step(
        Optimizer::Adam,
        &mut p,
        &g2,
        &mut [&mut m, &mut v],
        hp(0.01, 0.0, 2),
    );
    let (b1, b2) = (0.9f64, 0.999f64);
    let mhat = ((1.0 - b1) * b1 * 0.5 + (1.0 - b1) * -0.5) / (1.0 - b1 * b1);
    let vhat = ((1.0 - b2) * b2 * 0.25 + (1.0 - b2) * 0.25) / (1.0 - b2 * b2);
    let want = 1.0 - 0.01 - 0.01 * mhat / (vhat.sqrt() + 1e-8);
    assert!(
        (p[0] - want).abs() < 1e-5,
        "adam step 2: {} vs {want}",
        p[0]
    );
}

#[test]
fn clipping_scales_the_whole_gradient_to_the_norm_and_leaves_small_ones_alone() {
    use wgtrain::backend::cpu::{clip_scale, sum_squares};
    let (mut a, mut b) = (vec![3.0f64, 0.0], vec![4.0f64]);
    let parts = [sum_squares(&a), sum_squares(&b)];
    assert_eq!(parts, [9.0, 16.0]);
    clip_scale(&mut a, &parts, 1.0);
    clip_scale(&mut b, &parts, 1.0);
    let norm = (a[0] * a[0] + b[0] * b[0]).sqrt();
    assert!((norm - 1.0).abs() < 1e-6, "clipped to norm 1: {a:?} {b:?}");
    assert!((a[0] / b[0] - 0.75).abs() < 1e-12, "direction kept");
    let mut c = vec![0.3f64, -0.4];
    clip_scale(&mut c, &[0.25], 1.0);
    assert_eq!(
        c,
        vec![0.3, -0.4],
        "a gradient inside the norm is untouched"
    );
}
