// Small batches (m ≤ 32: inference of a few rows, tiny training batches): one output per
// thread, 16×16 outputs per workgroup, no workgroup memory. With few rows the tiled variants
// leave most of their 64×64 tile empty; here every thread does useful work.

const THREADS: u32 = 256u;

fn mm(lay: u32, wid: vec3<u32>, lid: u32) {
    let d = dims(lay);
    let rows = d.x;
    let cols = d.y;
    let depth = d.z;
    let i = wid.y * 16u + lid / 16u;
    let j = wid.x * 16u + lid % 16u;
    var acc = 0.0;
    var bsum = 0.0;
    for (var r = 0u; r < depth; r++) {
        let av = load_a(lay, i, r, rows, depth);
        acc += av * load_b(lay, r, j, cols, depth);
        if (lay == LAYOUT_TN) {
            bsum += av;
        }
    }
    if (i < rows && j == 0u && lay == LAYOUT_TN) {
        store_db(i, bsum);
    }
    if (i < rows && j < cols) {
        store(lay, i, j, cols, acc);
    }
}
