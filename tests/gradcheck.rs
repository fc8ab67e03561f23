//! Gradient checks: the backward ops of the CPU reference against central finite differences,
//! in f64, on small random networks — every activation, every loss, the input gradient too.

use wgtrain::backend::StepParams;
use wgtrain::backend::cpu::{
    act_backward, bias_grad, loss_grad, matmul_nn, matmul_nt, matmul_tn, optimizer_step,
};
use wgtrain::rng::Rng;
use wgtrain::spec::{Activation, Loss, Optimizer};

struct Case {
    sizes: Vec<usize>,
    act: Activation,
    loss: Loss,
    m: usize,
}

/// params = [w0, b0, w1, b1, …]; returns L = 1/m Σ eₙ.
fn loss_of(c: &Case, params: &[Vec<f64>], x: &[f64], t: &[f64]) -> f64 {
    let mut a = x.to_vec();
    let layers = c.sizes.len() - 1;
    for l in 0..layers {
        let (k, n) = (c.sizes[l], c.sizes[l + 1]);
        let act = if l + 1 == layers {
            Activation::Identity
        } else {
            c.act
        };
        let mut y = vec![f64::NAN; c.m * n];
        matmul_nt(
            &a,
            &params[2 * l],
            Some(&params[2 * l + 1]),
            act,
            &mut y,
            c.m,
            n,
            k,
        );
        a = y;
    }
    let mut g = vec![0.0; a.len()];
    loss_grad(c.loss, &a, t, None, &mut g, c.m, *c.sizes.last().unwrap()) / c.m as f64
}

/// Analytic gradients by backpropagation through the reference ops: (param grads, input grad).
fn grads_of(c: &Case, params: &[Vec<f64>], x: &[f64], t: &[f64]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let layers = c.sizes.len() - 1;
    let act_of = |l: usize| {
        if l + 1 == layers {
            Activation::Identity
        } else {
            c.act
        }
    };
    let mut acts = vec![x.to_vec()];
    for l in 0..layers {
        let (k, n) = (c.sizes[l], c.sizes[l + 1]);
        let mut y = vec![f64::NAN; c.m * n];
        matmul_nt(
            &acts[l],
            &params[2 * l],
            Some(&params[2 * l + 1]),
            act_of(l),
            &mut y,
            c.m,
            n,
            k,
        );
        acts.push(y);
    }
    let n_out = *c.sizes.last().unwrap();
    let mut g = vec![f64::NAN; c.m * n_out];
    loss_grad(c.loss, &acts[layers], t, None, &mut g, c.m, n_out);
    let mut out = vec![Vec::new(); 2 * layers];
    for l in (0..layers).rev() {
        let (k, n) = (c.sizes[l], c.sizes[l + 1]);
        let mut dw = vec![f64::NAN; n * k];
        let mut db = vec![f64::NAN; n];
        matmul_tn(&g, &acts[l], &mut dw, c.m, n, k);
        bias_grad(&g, &mut db, c.m, n);
        let mut dx = vec![f64::NAN; c.m * k];
        matmul_nn(&g, &params[2 * l], &mut dx, c.m, n, k);
        if l > 0 {
            act_backward(act_of(l - 1), &acts[l], &mut dx);
        }
        out[2 * l] = dw;
        out[2 * l + 1] = db;
        g = dx;
    }
    (out, g)
}

fn check(c: Case, seed: u64) {
    let mut r = Rng::new(seed);
    let mut params = Vec::new();
    for w in c.sizes.windows(2) {
        params.push(
            (0..w[0] * w[1])
                .map(|_| r.normal() * 0.8)
                .collect::<Vec<f64>>(),
        );
        params.push((0..w[1]).map(|_| r.normal() * 0.3).collect::<Vec<f64>>());
    }
    let x: Vec<f64> = (0..c.m * c.sizes[0])
        .map(|_| r.normal() * 1.3 + 0.2)
        .collect();
    let n_out = *c.sizes.last().unwrap();
    let t: Vec<f64> = match c.loss {
        Loss::Mse | Loss::Mae => (0..c.m * n_out).map(|_| r.normal()).collect(),
        _ => (0..c.m).map(|_| r.below(n_out) as f64).collect(),
    };
    let (analytic, dx) = grads_of(&c, &params, &x, &t);
    let h = 1e-6;
    let mut worst = (0.0f64, String::new());
    let mut compare = |what: String, a: f64, num: f64| {
        let err = (a - num).abs() / (1e-7 + 1e-5 * num.abs().max(a.abs()));
        if err > worst.0 {
            worst = (err, format!("{what}: analytic {a:.9e} numeric {num:.9e}"));
        }
    };
    for p in 0..params.len() {
        for i in 0..params[p].len() {
            let mut plus = params.clone();
            plus[p][i] += h;
            let mut minus = params.clone();
            minus[p][i] -= h;
            let num = (loss_of(&c, &plus, &x, &t) - loss_of(&c, &minus, &x, &t)) / (2.0 * h);
            let name = if p % 2 == 0 { "weight" } else { "bias" };
            compare(format!("layers.{}.{name}[{i}]", p / 2), analytic[p][i], num);
        }
    }
    for i in 0..x.len() {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[i] += h;
        xm[i] -= h;
        let num = (loss_of(&c, &params, &xp, &t) - loss_of(&c, &params, &xm, &t)) / (2.0 * h);
        compare(format!("input[{i}]"), dx[i], num);
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
