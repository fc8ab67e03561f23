// Losses and evaluation sums over a batch (see `Loss` in src/spec.rs).
// One workgroup of 256 threads: thread t handles rows t, t+256, … in order and the per-thread
// sums are combined by the prelude's tree_sum_vec3, so the result is the same on every run
// (no float atomics). A batch is small; even 60000 evaluation rows are a few hundred per thread.

struct Params {
    m: u32,
    n: u32,
    code: u32,      // loss_grad: loss code; eval_stats: 1 for classes
    has_scale: u32, // 1 when `scale` holds real data
    out_off: u32,
    tgt_off: u32,
    scale_off: u32,
    grad_off: u32,
    stats_at: u32,  // where the sums go (slot included)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> out: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> fault: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> grad: array<f32>;

fn scale_of(j: u32) -> f32 {
    if (p.has_scale != 0u) {
        return scale[p.scale_off + j];
    }
    return 1.0;
}

// The class of row r; anything but 0 <= t < n raises FAULT_CLASS_INDEX (the result is then
// garbage, and the next read returns the fault).
fn class_of(r: u32, n: u32) -> u32 {
    let t = tgt[p.tgt_off + r];
    if (!(t >= 0.0 && t < f32(n))) {
        atomicOr(&fault[0], FAULT_CLASS_INDEX);
        return 0u;
    }
    return u32(t);
}

fn row_max(base: u32, n: u32) -> f32 {
    var mx = out[base];
    for (var j = 1u; j < n; j++) {
        mx = max(mx, out[base + j]);
    }
    return mx;
}

fn row_sum_exp(base: u32, n: u32, mx: f32) -> f32 {
    var s = 0.0;
    for (var j = 0u; j < n; j++) {
        s += exp(out[base + j] - mx);
    }
    return s;
}

fn onehot(j: u32, y: u32) -> f32 {
    return select(0.0, 1.0, j == y);
}

// Row error eₙ in reported units, and grad = ∂L/∂out with L = 1/m Σ eₙ (unscaled).
fn loss_row(r: u32) -> f32 {
    let n = p.n;
    let base = p.out_off + r * n;
    let tb = p.tgt_off + r * n;
    let gb = p.grad_off + r * n;
    let inv_m = 1.0 / f32(p.m);
    switch p.code {
        case LOSS_MSE: {
            var e = 0.0;
            for (var j = 0u; j < n; j++) {
                let d = out[base + j] - tgt[tb + j];
                let sd = scale_of(j) * d;
                e += sd * sd;
                grad[gb + j] = 2.0 * d / f32(n) * inv_m;
            }
            return e / f32(n);
        }
        case LOSS_MAE: {
            var e = 0.0;
            for (var j = 0u; j < n; j++) {
                let d = out[base + j] - tgt[tb + j];
                e += abs(scale_of(j) * d);
                grad[gb + j] = sign(d) / f32(n) * inv_m;
            }
            return e / f32(n);
        }
        case LOSS_CROSS_ENTROPY: { // softmax + cross-entropy, through log-sum-exp
            let y = class_of(r, n);
            let mx = row_max(base, n);
            let lse = mx + log(row_sum_exp(base, n, mx));
            for (var j = 0u; j < n; j++) {
                grad[gb + j] = (exp(out[base + j] - lse) - onehot(j, y)) * inv_m;
            }
            return lse - out[base + y];
        }
        default: { // softmax + squared error against the one-hot tgt
            let y = class_of(r, n);
            let mx = row_max(base, n);
            let lse = mx + log(row_sum_exp(base, n, mx));
            // e = Σ_c (p_c − t_c)²;  ∂e/∂o_j = 2 p_j ((p_j − t_j) − Σ_c (p_c − t_c) p_c)
            var e = 0.0;
            var dot = 0.0;
            for (var j = 0u; j < n; j++) {
                let pj = exp(out[base + j] - lse);
                let d = pj - onehot(j, y);
                e += d * d;
                dot += d * pj;
            }
            for (var j = 0u; j < n; j++) {
                let pj = exp(out[base + j] - lse);
                grad[gb + j] = 2.0 * pj * ((pj - onehot(j, y)) - dot) * inv_m;
            }
            return e;
        }
    }
}

@compute @workgroup_size(256)
fn loss_grad(@builtin(local_invocation_index) lid: u32) {
    var sum = 0.0;
    for (var r = lid; r < p.m; r += WG) {
        sum += loss_row(r);
    }
    let total = tree_sum_vec3(lid, WG, vec3<f32>(sum, 0.0, 0.0));
    if (lid == 0u) {
        stats[p.stats_at] = total.x;
    }
}

// [Σ mean_j (s_j·(o−t))², Σ mean_j |s_j·(o−t)|, 0] for regression;
// [Σ −log p_y, Σ_c (p_c − onehot_c)², correct predictions] for classes (code 1).
fn eval_row(r: u32) -> vec3<f32> {
    let n = p.n;
    let base = p.out_off + r * n;
    let tb = p.tgt_off + r * n;
    if (p.code == 0u) {
        var sq = 0.0;
        var ab = 0.0;
        for (var j = 0u; j < n; j++) {
            let d = scale_of(j) * (out[base + j] - tgt[tb + j]);
            sq += d * d;
            ab += abs(d);
        }
        return vec3<f32>(sq / f32(n), ab / f32(n), 0.0);
    }
    let y = class_of(r, n);
    // First index of the largest logit, like the CPU's argmax.
    var best = 0u;
    var mx = out[base];
    for (var j = 1u; j < n; j++) {
        let v = out[base + j];
        if (v > mx) {
            mx = v;
            best = j;
        }
    }
    // p = exp(o − log-sum-exp), as in the CPU reference.
    let lse = mx + log(row_sum_exp(base, n, mx));
    var sq = 0.0;
    for (var j = 0u; j < n; j++) {
        let d = exp(out[base + j] - lse) - onehot(j, y);
        sq += d * d;
    }
    return vec3<f32>(lse - out[base + y], sq, select(0.0, 1.0, best == y));
}

@compute @workgroup_size(256)
fn eval_stats(@builtin(local_invocation_index) lid: u32) {
    var sum = vec3<f32>(0.0);
    for (var r = lid; r < p.m; r += WG) {
        sum += eval_row(r);
    }
    let total = tree_sum_vec3(lid, WG, sum);
    if (lid == 0u) {
        let o = p.stats_at;
        stats[o] = total.x;
        stats[o + 1u] = total.y;
        stats[o + 2u] = total.z;
        stats[o + 3u] = 0.0;
    }
}
