// Tiled matrix products for the three layouts of a linear layer (see `Backend` in
// src/backend/mod.rs), with their fused epilogues: bias + activation (nt), the activation
// backward (nn), the bias gradient (tn). One workgroup computes a TILE×TILE output tile; each thread owns a 4×4
// block (256 threads for TILE = 64). A and B are staged through workgroup memory 16 reduction
// steps at a time (2 × 4 KiB), and the transposed layouts are handled by the addressing in the
// tile loads. The host also builds this file with TILE = 32 (64 threads) for products whose
// output is too small to keep a GPU busy with 64×64 tiles. Every output is summed in the same
// order (r = 0, 1, …) whatever the tile: results are reproducible bit for bit.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    act: u32,     // nt: the activation applied; nn: the activation differentiated
    a_off: u32,   // element offsets of the views in their bound buffers
    b_off: u32,
    epi_off: u32,
    c_off: u32,
    db_off: u32,
    has_epi: u32, // nt: bias bound; nn: the layer output y bound
    has_db: u32,  // tn: 1 db bound, 2 db lies in c's buffer (at db_off)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
// The epilogue's input: bias[n] (nt), or the previous layer's output y[m, k] (nn).
@group(0) @binding(3) var<storage, read> epi: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
// tn only: the bias gradient db[n] = Σ_r dy[r, n].
@group(0) @binding(5) var<storage, read_write> db: array<f32>;

const TILE: u32 = 64u;
const TM: u32 = TILE;
const TN: u32 = TILE;
const TK: u32 = 16u;
const TPR: u32 = TILE / 4u;          // threads along a tile edge, 4 outputs each
const THREADS: u32 = TPR * TPR;
const LOADS: u32 = TILE * TK / THREADS; // tile elements each thread stages per operand

// [TK][TM/4] and [TK][TN/4]: a thread reads its 4 rows (or 4 columns) as one vec4.
var<workgroup> tile_a: array<vec4<f32>, TK * TPR>;
var<workgroup> tile_b: array<vec4<f32>, TK * TPR>;

const LAYOUT_NT: u32 = 0u; // y[m,n]  = x[m,k] · w[n,k]ᵀ   A(i,r) = x[i,r],  B(r,j) = w[j,r]
const LAYOUT_NN: u32 = 1u; // dx[m,k] = dy[m,n] · w[n,k]   A(i,r) = dy[i,r], B(r,j) = w[r,j]
const LAYOUT_TN: u32 = 2u; // dw[n,k] = dy[m,n]ᵀ · x[m,k]  A(i,r) = dy[r,i], B(r,j) = x[r,j]

fn load_a(lay: u32, i: u32, r: u32, rows: u32, depth: u32) -> f32 {
    // Zero padding makes ragged edges contribute nothing to the sums.
    if (i >= rows || r >= depth) {
        return 0.0;
    }
    switch lay {
        case 0u: { return a[p.a_off + i * p.k + r]; }
        case 1u: { return a[p.a_off + i * p.n + r]; }
        default: { return a[p.a_off + r * p.n + i]; }
    }
}

fn load_b(lay: u32, r: u32, j: u32, cols: u32, depth: u32) -> f32 {
    if (j >= cols || r >= depth) {
        return 0.0;
    }
    switch lay {
        case 0u: { return b[p.b_off + j * p.k + r]; }
        default: { return b[p.b_off + r * p.k + j]; }
    }
}

fn mm(lay: u32, wid: vec3<u32>, lid: u32) {
    var rows: u32;
    var cols: u32;
    var depth: u32;
    switch lay {
        case 0u: { rows = p.m; cols = p.n; depth = p.k; }
        case 1u: { rows = p.m; cols = p.k; depth = p.n; }
        default: { rows = p.n; cols = p.k; depth = p.m; }
    }
    let tx = lid % TPR;
    let ty = lid / TPR;
    let row0 = wid.y * TM;
    let col0 = wid.x * TN;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // tn: Σ_r A(i, r) = Σ_r dy[r, i] for this thread's 4 rows, summed r = 0, 1, … in order
    // (the CPU's bias_grad order); zero padding past the depth adds nothing.
    var bsum = vec4<f32>(0.0);

    let tiles = (depth + TK - 1u) / TK;
    for (var t = 0u; t < tiles; t++) {
        let r0 = t * TK;
        // Consecutive threads walk the operand's contiguous dimension so that global reads
        // are coalesced.
        for (var q = 0u; q < LOADS; q++) {
            let e = lid + THREADS * q;
            var i: u32;
            var r: u32;
            if (lay == LAYOUT_TN) {
                r = e / TM;
                i = e % TM;
            } else {
                i = e / TK;
                r = e % TK;
            }
            tile_a[r * TPR + i / 4u][i % 4u] = load_a(lay, row0 + i, r0 + r, rows, depth);
            var j: u32;
            if (lay == LAYOUT_NT) {
                j = e / TK;
                r = e % TK;
            } else {
                r = e / TN;
                j = e % TN;
            }
            tile_b[r * TPR + j / 4u][j % 4u] = load_b(lay, r0 + r, col0 + j, cols, depth);
        }
        workgroupBarrier();
        for (var r = 0u; r < TK; r++) {
            let av = tile_a[r * TPR + ty];
            let bv = tile_b[r * TPR + tx];
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
            if (lay == LAYOUT_TN) {
                bsum += av;
            }
        }
        workgroupBarrier();
    }

    if (lay == LAYOUT_TN && p.has_db != 0u && wid.x == 0u && tx == 0u) {
        for (var ii = 0u; ii < 4u; ii++) {
            let i = row0 + ty * 4u + ii;
            if (i < rows) {
                // has_db 2: db is a view of the buffer bound as c (one gradient slab).
                if (p.has_db == 2u) {
                    c[p.db_off + i] = bsum[ii];
                } else {
                    db[p.db_off + i] = bsum[ii];
                }
            }
        }
    }

    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var ii = 0u; ii < 4u; ii++) {
        let i = row0 + ty * 4u + ii;
        if (i >= rows) {
            break;
        }
        for (var jj = 0u; jj < 4u; jj++) {
            let j = col0 + tx * 4u + jj;
            if (j >= cols) {
                break;
            }
            var v = accs[ii][jj];
            if (lay == LAYOUT_NT) {
                // The forward epilogue: bias and activation fused, no extra pass.
                if (p.has_epi != 0u) {
                    v += epi[p.epi_off + j];
                }
                v = activate(v, p.act);
            } else if (lay == LAYOUT_NN && p.has_epi != 0u) {
                // The backward epilogue: through the previous layer's activation.
                v *= act_deriv(epi[p.epi_off + i * cols + j], p.act);
            }
            c[p.c_off + i * cols + j] = v;
        }
    }
}

@compute @workgroup_size(THREADS)
fn matmul_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    mm(LAYOUT_NT, wid, lid);
}

@compute @workgroup_size(THREADS)
fn matmul_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    mm(LAYOUT_NN, wid, lid);
}

@compute @workgroup_size(THREADS)
fn matmul_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    mm(LAYOUT_TN, wid, lid);
}
