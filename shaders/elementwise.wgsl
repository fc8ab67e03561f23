// Row and element kernels: act_backward, softmax (gather_rows is in gather.wgsl, which binds
// a u32 index buffer).
// Large 1-D work is dispatched as a 2-D grid (at most 65535 workgroups per dimension);
// `linear_index` flattens it back.

struct Params {
    len: u32,   // act_backward: elements; softmax: rows (m)
    cols: u32,  // softmax: n
    code: u32,  // act_backward: activation code
    _p0: u32,
    _p1: vec4<u32>,
    _f0: vec4<f32>,
    _p2: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> s1: array<f32>;
@group(0) @binding(2) var<storage, read_write> s2: array<f32>;

const WG: u32 = 256u;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

// g[i] *= act'(·) through the activation's output y (s1 = y, s2 = g).
@compute @workgroup_size(256)
fn act_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let y = s1[i];
    switch p.code {
        case 1u: { s2[i] = select(0.0, s2[i], y > 0.0); }
        case 2u: { s2[i] = s2[i] * (y * (1.0 - y)); }
        default: {}
    }
}

// Softmax in place, one workgroup per row: max and sum are tree reductions in workgroup
// memory (fixed order), and the max is subtracted before exp so large logits cannot overflow.
const SW: u32 = 64u;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn softmax(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Uniform per workgroup, so the early return keeps barriers in uniform control flow.
    let row = wid.y * nwg.x + wid.x;
    if (row >= p.len) {
        return;
    }
    let n = p.cols;
    let base = row * n;

    var mx = -3.4028235e38;
    for (var j = lid; j < n; j += SW) {
        mx = max(mx, s1[base + j]);
    }
    red[lid] = mx;
    workgroupBarrier();
    for (var s = SW / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    mx = red[0];
    workgroupBarrier();

    var sum = 0.0;
    for (var j = lid; j < n; j += SW) {
        sum += exp(s1[base + j] - mx);
    }
    red[lid] = sum;
    workgroupBarrier();
    for (var s = SW / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    sum = red[0];

    for (var j = lid; j < n; j += SW) {
        s1[base + j] = exp(s1[base + j] - mx) / sum;
    }
}
