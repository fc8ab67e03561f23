// bias_grad: db[j] = Σ_r dz[r, j], a column reduction in fixed order.
// A workgroup covers 32 columns with 8 lanes each: lane l sums rows l, l+8, … (32 adjacent
// columns per row, so reads are coalesced), then the 8 lane sums meet in a tree.

struct Params {
    m: u32,
    n: u32,
    _p0: u32,
    _p1: u32,
    _p2: vec4<u32>,
    _f0: vec4<f32>,
    _p3: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dz: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;

const COLS: u32 = 32u;
const LANES: u32 = 8u;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn bias_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = lid % COLS;
    let lane = lid / COLS;
    let col = (wid.y * nwg.x + wid.x) * COLS + c;
    var sum = 0.0;
    if (col < p.n) {
        for (var r = lane; r < p.m; r += LANES) {
            sum += dz[r * p.n + col];
        }
    }
    red[lid] = sum;
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            red[lid] += red[lid + s * COLS];
        }
        workgroupBarrier();
    }
    if (lane == 0u && col < p.n) {
        db[col] = red[c];
    }
}
