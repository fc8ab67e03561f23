// The entry points of the matmul variants that define `THREADS` and `fn mm`.

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
