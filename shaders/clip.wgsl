// sum_squares: the squared norm of a gradient slab as one multi-workgroup reduction in a fixed
// order. Workgroup w sums block w (elements w·block .. (w+1)·block) lane-strided, then the
// prelude's tree_sum_f32, into parts[w]; the optimizer adds the parts in index order to get ‖g‖²
// and scales g by min(1, max_norm / (‖g‖ + 1e-6)).

struct Params {
    len: u32,
    x_off: u32,
    parts_off: u32,
    block: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> parts: array<f32>;

@compute @workgroup_size(256)
fn sum_squares(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let lo = min(wid.x * p.block, p.len);
    let hi = min(lo + p.block, p.len);
    var s = 0.0;
    for (var i = lo + lid; i < hi; i += WG) {
        let v = x[p.x_off + i];
        s += v * v;
    }
    let total = tree_sum_f32(lid, WG, s);
    if (lid == 0u) {
        parts[p.parts_off + wid.x] = total;
    }
}
