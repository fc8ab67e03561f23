// No workgroup memory, 8×8 outputs per thread (8×8 threads = 64×64 outputs per workgroup):
// 16 loads per 64 FMAs, half of `direct`'s 8 per 16. Made for CPU-like adapters: lavapipe runs
// a workgroup as SIMD lanes and turns every load whose address differs between lanes into a
// loop over the lanes (Mesa 22's gallivm), so loads, not FMAs, bound a product there; it ran
// the lecture's 256×100×100 products 1.6× faster than `direct`. Written out in full: the
// shader compiler keeps these accumulators in registers, while loops over a local array were
// left as array accesses and ran slower than `direct`.
const THREADS: u32 = 64u;

fn mm(lay: u32, wid: vec3<u32>, lid: u32) {
    let d = dims(lay);
    let rows = d.x;
    let cols = d.y;
    let depth = d.z;
    let i0 = wid.y * 64u + (lid / 8u) * 8u;
    let j0 = wid.x * 64u + (lid % 8u) * 8u;

    var acc00 = vec4<f32>(0.0);
    var acc01 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0);
    var acc21 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0);
    var acc31 = vec4<f32>(0.0);
    var acc40 = vec4<f32>(0.0);
    var acc41 = vec4<f32>(0.0);
    var acc50 = vec4<f32>(0.0);
    var acc51 = vec4<f32>(0.0);
    var acc60 = vec4<f32>(0.0);
    var acc61 = vec4<f32>(0.0);
    var acc70 = vec4<f32>(0.0);
    var acc71 = vec4<f32>(0.0);
    var bsum0 = vec4<f32>(0.0);
    var bsum1 = vec4<f32>(0.0);
    for (var r = 0u; r < depth; r++) {
        let a0 = load_a4(lay, i0, r, rows, depth);
        let b0 = load_b4(lay, r, j0, cols, depth);
        let a1 = load_a4(lay, i0 + 4u, r, rows, depth);
        let b1 = load_b4(lay, r, j0 + 4u, cols, depth);
        acc00 += a0.x * b0;
        acc01 += a0.x * b1;
        acc10 += a0.y * b0;
        acc11 += a0.y * b1;
        acc20 += a0.z * b0;
        acc21 += a0.z * b1;
        acc30 += a0.w * b0;
        acc31 += a0.w * b1;
        acc40 += a1.x * b0;
        acc41 += a1.x * b1;
        acc50 += a1.y * b0;
        acc51 += a1.y * b1;
        acc60 += a1.z * b0;
        acc61 += a1.z * b1;
        acc70 += a1.w * b0;
        acc71 += a1.w * b1;
        if (lay == LAYOUT_TN) {
            bsum0 += a0;
            bsum1 += a1;
        }
    }
    var accs = array<vec4<f32>, 16>(
        acc00, acc01, acc10, acc11, acc20, acc21, acc30, acc31,
        acc40, acc41, acc50, acc51, acc60, acc61, acc70, acc71,
    );
    var sums = array<vec4<f32>, 2>(bsum0, bsum1);
    for (var x = 0u; x < 8u; x++) {
        let i = i0 + x;
        if (i < rows) {
            if (lay == LAYOUT_TN && j0 == 0u) {
                store_db(i, sums[x / 4u][x % 4u]);
            }
            for (var y = 0u; y < 8u; y++) {
                if (j0 + y < cols) {
                    store(lay, i, j0 + y, cols, accs[x * 2u + y / 4u][y % 4u]);
                }
            }
        }
    }
}
