// optimizer_step: one dispatch updates a whole parameter slab in place, one entry point per
// optimizer. The formulas are the ones in `Backend::optimizer_step`; the constants (momentum,
// Adam's β₁, β₂, ε) come from src/spec.rs through the params so that both backends share them.
// Weight decay applies to elements below decay_len (the weights; the biases follow them in
// the slab). With clipping, each workgroup first adds the partial squared norms in index order
// (every workgroup gets the same bits) and scales g by the common factor.

struct Params {
    len: u32,
    decay_len: u32,
    p_off: u32,
    g_off: u32,
    m_off: u32,
    v_off: u32,
    parts: u32, // partial squared norms to add (0: no clipping)
    parts_off: u32,
    lr: f32,
    wd: f32,
    c1: f32, // Adam bias corrections 1/(1 − β₁ᵗ), 1/(1 − β₂ᵗ)
    c2: f32,
    beta1: f32, // also the momentum coefficient
    beta2: f32,
    eps: f32,
    max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read> parts: array<f32>;

var<workgroup> clip_factor: f32;

// The clip factor for this workgroup (1 without clipping); call in uniform control flow.
fn clip_scale(lid: u32) -> f32 {
    if (lid == 0u) {
        var f = 1.0;
        if (p.parts > 0u) {
            var total = 0.0;
            for (var j = 0u; j < p.parts; j++) {
                total += parts[p.parts_off + j];
            }
            f = min(1.0, p.max_norm / (sqrt(total) + 1e-6));
        }
        clip_factor = f;
    }
    return workgroupUniformLoad(&clip_factor);
}

fn decay(i: u32) -> f32 {
    return select(0.0, p.wd, i < p.decay_len);
}

@compute @workgroup_size(256)
fn optimizer_step_sgd(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let f = clip_scale(lid);
    let i = linear_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let w = param[p.p_off + i];
    let g = grad[p.g_off + i] * f + decay(i) * w;
    param[p.p_off + i] = w - p.lr * g;
}
// The momentum and Adam entry points bind their state after the shared three.
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn optimizer_step_momentum(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let f = clip_scale(lid);
    let i = linear_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let w = param[p.p_off + i];
    // Summed in the CPU reference's order: μ·v + g + wd·p.
    let vel = p.beta1 * m[p.m_off + i] + grad[p.g_off + i] * f + decay(i) * w;
    m[p.m_off + i] = vel;
    param[p.p_off + i] = w - p.lr * vel;
}

@compute @workgroup_size(256)
fn optimizer_step_adam(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let f = clip_scale(lid);
    let i = linear_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let w = param[p.p_off + i];
    let g = grad[p.g_off + i] * f;
    let m1 = p.beta1 * m[p.m_off + i] + (1.0 - p.beta1) * g;
    let v1 = p.beta2 * v[p.v_off + i] + (1.0 - p.beta2) * g * g;
    m[p.m_off + i] = m1;
    v[p.v_off + i] = v1;
    param[p.p_off + i] = w - p.lr * (m1 * p.c1 / (sqrt(v1 * p.c2) + p.eps) + decay(i) * w);
}
