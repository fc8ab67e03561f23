// Gradient clipping by the global norm, without a read-back:
// sum_squares writes one squared norm per gradient buffer into a small partials buffer;
// clip_scale has every invocation add the partials up (in index order, so all agree bit for
// bit) and scale its element by min(1, max_norm / (‖g‖ + 1e-6)).

struct Params {
    len: u32,    // elements of x
    slot: u32,   // sum_squares: where the sum goes
    count: u32,  // clip_scale: how many partials make the norm
    _p0: u32,
    _p1: vec4<u32>,
    f: vec4<f32>, // f.x = max_norm
    _p2: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> parts: array<f32>;

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

// One workgroup: lane l sums elements l, l+256, …, then a tree in workgroup memory.
@compute @workgroup_size(256)
fn sum_squares(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.len; i += WG) {
        let v = x[i];
        s += v * v;
    }
    red[lid] = s;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w >>= 1u) {
        if (lid < w) {
            red[lid] += red[lid + w];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        parts[p.slot] = red[0];
    }
}

@compute @workgroup_size(256)
fn clip_scale(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.len) {
        return;
    }
    var total = 0.0;
    for (var j = 0u; j < p.count; j++) {
        total += parts[j];
    }
    let f = min(1.0, p.f.x / (sqrt(total) + 1e-6));
    x[i] = x[i] * f;
}
