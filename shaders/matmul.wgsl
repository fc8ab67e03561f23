// The baseline variant: one workgroup computes a TILE×TILE output tile; each thread owns a
// 4×4 block (256 threads for TILE = 64). A and B are staged through workgroup memory 16
// reduction steps at a time (2 × 4 KiB), and the transposed layouts are handled by the
// addressing in the tile loads. The host also builds this file with TILE = 32 (64 threads)
// for products whose output is too small to keep a GPU busy with 64×64 tiles.

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

fn mm(lay: u32, wid: vec3<u32>, lid: u32) {
    let d = dims(lay);
    let rows = d.x;
    let cols = d.y;
    let depth = d.z;
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

    if (lay == LAYOUT_TN && wid.x == 0u && tx == 0u) {
        for (var ii = 0u; ii < 4u; ii++) {
            let i = row0 + ty * 4u + ii;
            if (i < rows) {
                store_db(i, bsum[ii]);
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
            store(lay, i, j, cols, accs[ii][jj]);
        }
    }
}
