// Subgroup variant (adapters with Features::SUBGROUP, subgroups of at most 64 lanes): a
// workgroup of 64 threads computes one output row i and 256 columns, 1×4 per thread. All lanes
// need the same A(i, r), so each lane loads one of the next `subgroup_size` of them and the
// others take it with subgroupShuffle: no workgroup memory, no barriers, A read once per
// subgroup instead of once per thread. Each output still sums r = 0, 1, … as acc += a * b.

const THREADS: u32 = 64u;

fn mm_sg(lay: u32, wid: vec3<u32>, lid: u32, lane: u32, size: u32) {
    let d = dims(lay);
    let rows = d.x;
    let cols = d.y;
    let depth = d.z;
    // Uniform over the workgroup: ragged rows leave whole workgroups idle, never half a
    // subgroup, so every lane reaches every shuffle.
    let i = wid.y;
    let j0 = wid.x * 256u + lid * 4u;
    var acc = vec4<f32>(0.0);
    var bsum = 0.0;
    for (var r0 = 0u; r0 < depth; r0 += size) {
        let mine = load_a(lay, i, r0 + lane, rows, depth);
        for (var q = 0u; q < size; q++) {
            let a = subgroupShuffle(mine, q);
            let r = r0 + q;
            if (r < depth) {
                let bv = vec4<f32>(
                    load_b(lay, r, j0, cols, depth),
                    load_b(lay, r, j0 + 1u, cols, depth),
                    load_b(lay, r, j0 + 2u, cols, depth),
                    load_b(lay, r, j0 + 3u, cols, depth),
                );
                acc += a * bv;
                bsum += a;
            }
        }
    }
    if (i >= rows) {
        return;
    }
    if (lay == LAYOUT_TN && j0 == 0u) {
        store_db(i, bsum);
    }
    for (var jj = 0u; jj < 4u; jj++) {
        if (j0 + jj < cols) {
            store(lay, i, j0 + jj, cols, acc[jj]);
        }
    }
}

@compute @workgroup_size(THREADS)
fn matmul_nt(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
) {
    mm_sg(LAYOUT_NT, wid, lid, lane, size);
}

@compute @workgroup_size(THREADS)
fn matmul_nn(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
) {
    mm_sg(LAYOUT_NN, wid, lid, lane, size);
}

@compute @workgroup_size(THREADS)
fn matmul_tn(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
) {
    mm_sg(LAYOUT_TN, wid, lid, lane, size);
}
