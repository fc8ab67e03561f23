// optimizer_step, one entry point per optimizer, in place and element by element.
// The formulas are the ones in `Backend::optimizer_step`; the constants (momentum, Adam's
// β₁, β₂, ε) come from src/spec.rs through the params so that both backends share them.

struct Params {
    len: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
    _p3: vec4<u32>,
    lr: f32,
    wd: f32,
    c1: f32, // Adam bias corrections 1/(1 − β₁ᵗ), 1/(1 − β₂ᵗ)
    c2: f32,
    beta1: f32, // also the momentum coefficient
    beta2: f32,
    eps: f32,
    _f0: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> s0: array<f32>;
@group(0) @binding(4) var<storage, read_write> s1: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn optimizer_step_sgd(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let w = param[i];
    let g = grad[i] + p.wd * w;
    param[i] = w - p.lr * g;
}

@compute @workgroup_size(256)
fn optimizer_step_momentum(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let w = param[i];
    // Summed in the CPU reference's order: μ·v + g + wd·p.
    let v = p.beta1 * s0[i] + grad[i] + p.wd * w;
    s0[i] = v;
    param[i] = w - p.lr * v;
}

@compute @workgroup_size(256)
fn optimizer_step_adam(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let w = param[i];
    let g = grad[i];
    let m = p.beta1 * s0[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * s1[i] + (1.0 - p.beta2) * g * g;
    s0[i] = m;
    s1[i] = v;
    param[i] = w - p.lr * (m * p.c1 / (sqrt(v * p.c2) + p.eps) + p.wd * w);
}
