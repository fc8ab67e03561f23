// softmax, in place over the view x[x_off ..] of [m, n].

struct Params {
    m: u32,
    n: u32,
    x_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

// One workgroup per row: max and sum are tree reductions in workgroup memory (fixed order),
// and the max is subtracted before exp so large logits cannot overflow.
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
    if (row >= p.m) {
        return;
    }
    let n = p.n;
    let base = p.x_off + row * n;

    var mx = -3.4028235e38;
    for (var j = lid; j < n; j += SW) {
        mx = max(mx, x[base + j]);
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
        sum += exp(x[base + j] - mx);
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
        x[base + j] = exp(x[base + j] - mx) / sum;
    }
}
