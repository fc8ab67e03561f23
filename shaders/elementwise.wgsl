// softmax, in place over the view x[x_off ..] of [m, n].

struct Params {
    m: u32,
    n: u32,
    x_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

// One workgroup per row: max and sum are the prelude's tree reductions (fixed order),
// and the max is subtracted before exp so large logits cannot overflow.
const SW: u32 = 64u;

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
    mx = tree_max_f32(lid, SW, mx);

    var sum = 0.0;
    for (var j = lid; j < n; j += SW) {
        sum += exp(x[base + j] - mx);
    }
    sum = tree_sum_f32(lid, SW, sum);

    for (var j = lid; j < n; j += SW) {
        x[base + j] = exp(x[base + j] - mx) / sum;
    }
}
