// Register tiling for large products: a 128×128 output tile per workgroup of 256 threads,
// each owning an 8×8 block (64 accumulators). A and B are staged through workgroup memory
// 8 reduction steps at a time (2 × 4 KiB); per step a thread reads 2 + 2 vec4 (64 bytes) from
// workgroup memory for 64 FMAs: 1 byte per FMA, half the baseline's 2 (32 bytes per 16).
//
// Built twice: reg8 (scalar bindings, 4 + 4 scalar global loads per thread per stage) and
// reg8v4 (vec4 bindings of the same buffers: an operand whose view allows it is staged with
// one 16-byte load per thread per stage, the other with scalar loads). The staged tiles hold
// the same values either way, so both sum every output in the same order, with the same bits.

const TILE: u32 = 128u;
const TK: u32 = 8u;
const TPR: u32 = 16u;                  // threads along a tile edge, 8 outputs each
const THREADS: u32 = 256u;
const LOADS: u32 = TILE * TK / THREADS; // 4 elements per operand per thread per stage
const V: u32 = TILE / 4u;               // vec4 per tile row of workgroup memory

var<workgroup> tile_a: array<vec4<f32>, TK * V>;
var<workgroup> tile_b: array<vec4<f32>, TK * V>;

// One 16-byte load of 4 consecutive elements of an operand stored `stride` apart per line:
// line `line`, elements `at`..`at`+3 of it (at % 4 == 0), zero when the line or `at` lies past
// the edge. The host only sets the operand's vec4 bit when its offset and stride are multiples
// of 4 and its contiguous extent (`ext`) is too: a vec4 is then wholly inside or wholly out.
fn vec4_a(line: u32, lines: u32, at: u32, ext: u32, stride: u32) -> vec4<f32> {
    if (line >= lines || at >= ext) {
        return vec4<f32>(0.0);
    }
    return a4_at(p.a_off + line * stride + at);
}

fn vec4_b(line: u32, lines: u32, at: u32, ext: u32, stride: u32) -> vec4<f32> {
    if (line >= lines || at >= ext) {
        return vec4<f32>(0.0);
    }
    return b4_at(p.b_off + line * stride + at);
}

// tile_a[r][i] = A(row0 + i, r0 + r) for the 128 × TK block of stage r0.
fn stage_a(lay: u32, row0: u32, r0: u32, rows: u32, depth: u32, lid: u32) {
    if (VEC4 && (p.vec4 & 1u) != 0u) {
        if (lay == LAYOUT_TN) {
            // A(i, r) = dy[r, i]: 4 rows of one step per thread, stored as they are.
            let r = lid / V;
            let i = (lid % V) * 4u;
            tile_a[r * V + i / 4u] = vec4_a(r0 + r, depth, row0 + i, rows, p.n);
        } else {
            // A(i, r) = x[i, r] or dy[i, r]: 4 steps of one row per thread.
            let i = lid / 2u;
            let r = (lid % 2u) * 4u;
            let v = vec4_a(row0 + i, rows, r0 + r, depth, select(p.n, p.k, lay == LAYOUT_NT));
            for (var q = 0u; q < 4u; q++) {
                tile_a[(r + q) * V + i / 4u][i % 4u] = v[q];
            }
        }
        return;
    }
    // Consecutive threads walk the operand's contiguous dimension: coalesced reads.
    for (var q = 0u; q < LOADS; q++) {
        let e = lid + THREADS * q;
        var i: u32;
        var r: u32;
        if (lay == LAYOUT_TN) {
            r = e / TILE;
            i = e % TILE;
        } else {
            i = e / TK;
            r = e % TK;
        }
        tile_a[r * V + i / 4u][i % 4u] = load_a(lay, row0 + i, r0 + r, rows, depth);
    }
}

// tile_b[r][j] = B(r0 + r, col0 + j).
fn stage_b(lay: u32, col0: u32, r0: u32, cols: u32, depth: u32, lid: u32) {
    if (VEC4 && (p.vec4 & 2u) != 0u) {
        if (lay == LAYOUT_NT) {
            // B(r, j) = w[j, r]: 4 steps of one column per thread.
            let j = lid / 2u;
            let r = (lid % 2u) * 4u;
            let v = vec4_b(col0 + j, cols, r0 + r, depth, p.k);
            for (var q = 0u; q < 4u; q++) {
                tile_b[(r + q) * V + j / 4u][j % 4u] = v[q];
            }
        } else {
            // B(r, j) = w[r, j] or x[r, j]: 4 columns of one step per thread.
            let r = lid / V;
            let j = (lid % V) * 4u;
            tile_b[r * V + j / 4u] = vec4_b(r0 + r, depth, col0 + j, cols, p.k);
        }
        return;
    }
    for (var q = 0u; q < LOADS; q++) {
        let e = lid + THREADS * q;
        var j: u32;
        var r: u32;
        if (lay == LAYOUT_NT) {
            j = e / TK;
            r = e % TK;
        } else {
            r = e / TILE;
            j = e % TILE;
        }
        tile_b[r * V + j / 4u][j % 4u] = load_b(lay, r0 + r, col0 + j, cols, depth);
    }
}

fn mm(lay: u32, wid: vec3<u32>, lid: u32) {
    let d = dims(lay);
    let rows = d.x;
    let cols = d.y;
    let depth = d.z;
    let tx = lid % TPR;
    let ty = lid / TPR;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;

    // acc[2·ii + h]: row ty·8 + ii, columns tx·8 + 4h .. +4.
    var acc: array<vec4<f32>, 16>;
    for (var q = 0u; q < 16u; q++) {
        acc[q] = vec4<f32>(0.0);
    }
    var bsum0 = vec4<f32>(0.0);
    var bsum1 = vec4<f32>(0.0);

    let tiles = (depth + TK - 1u) / TK;
    for (var t = 0u; t < tiles; t++) {
        let r0 = t * TK;
        stage_a(lay, row0, r0, rows, depth, lid);
        stage_b(lay, col0, r0, cols, depth, lid);
        workgroupBarrier();
        for (var r = 0u; r < TK; r++) {
            let a0 = tile_a[r * V + ty * 2u];
            let a1 = tile_a[r * V + ty * 2u + 1u];
            let b0 = tile_b[r * V + tx * 2u];
            let b1 = tile_b[r * V + tx * 2u + 1u];
            for (var ii = 0u; ii < 4u; ii++) {
                acc[2u * ii] += a0[ii] * b0;
                acc[2u * ii + 1u] += a0[ii] * b1;
                acc[8u + 2u * ii] += a1[ii] * b0;
                acc[8u + 2u * ii + 1u] += a1[ii] * b1;
            }
            if (lay == LAYOUT_TN) {
                bsum0 += a0;
                bsum1 += a1;
            }
        }
        workgroupBarrier();
    }

    if (lay == LAYOUT_TN && wid.x == 0u && tx == 0u) {
        for (var ii = 0u; ii < 8u; ii++) {
            let i = row0 + ty * 8u + ii;
            if (i < rows) {
                store_db(i, select(bsum1[ii % 4u], bsum0[ii % 4u], ii < 4u));
            }
        }
    }
    for (var ii = 0u; ii < 8u; ii++) {
        let i = row0 + ty * 8u + ii;
        if (i >= rows) {
            break;
        }
        for (var jj = 0u; jj < 8u; jj++) {
            let j = col0 + tx * 8u + jj;
            if (j >= cols) {
                break;
            }
            store(lay, i, j, cols, acc[2u * ii + jj / 4u][jj % 4u]);
        }
    }
}
