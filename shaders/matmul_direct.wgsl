// No workgroup memory: each thread owns a 4×4 output block and reads its operands straight
// from global memory (16 threads × 16 threads = 64×64 outputs per workgroup, as the baseline).
// On CPU-like adapters (lavapipe, SwiftShader, WARP) the caches already do what workgroup
// staging does on a GPU, and the staging and its barriers only cost.

const THREADS: u32 = 256u;
const TPR: u32 = 16u;

fn mm(lay: u32, wid: vec3<u32>, lid: u32) {
    let d = dims(lay);
    let rows = d.x;
    let cols = d.y;
    let depth = d.z;
    let tx = lid % TPR;
    let ty = lid / TPR;
    let i0 = wid.y * 64u + ty * 4u;
    let j0 = wid.x * 64u + tx * 4u;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var bsum = vec4<f32>(0.0);
    for (var r = 0u; r < depth; r++) {
        let av = load_a4(lay, i0, r, rows, depth);
        let bv = load_b4(lay, r, j0, cols, depth);
        acc0 += av.x * bv;
        acc1 += av.y * bv;
        acc2 += av.z * bv;
        acc3 += av.w * bv;
        if (lay == LAYOUT_TN) {
            bsum += av;
        }
    }

    if (lay == LAYOUT_TN && j0 == 0u) {
        for (var ii = 0u; ii < 4u; ii++) {
            if (i0 + ii < rows) {
                store_db(i0 + ii, bsum[ii]);
            }
        }
    }
    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var ii = 0u; ii < 4u; ii++) {
        for (var jj = 0u; jj < 4u; jj++) {
            if (i0 + ii < rows && j0 + jj < cols) {
                store(lay, i0 + ii, j0 + jj, cols, accs[ii][jj]);
            }
        }
    }
}
