// gather: x_dst[r, :] = x_src[idx[start + r], :] and, in the same dispatch, the same rows of
// the targets y — how a batch is taken from a data set uploaded once.
// A data set larger than one storage binding is held in several chunk buffers that split it at
// arbitrary element boundaries (a row may straddle two chunks); the host dispatches once per
// chunk and each dispatch writes exactly the x elements whose source lies in its chunk (y,
// always bound whole, only in the first). A row index past the source raises FAULT_ROW_INDEX.

struct Params {
    count: u32,
    idx_at: u32,
    x_cols: u32,
    x_rows: u32,
    x_src_off: u32,
    x_dst_off: u32,
    chunk_start: u32,
    chunk_len: u32,
    y_cols: u32,
    y_rows: u32,
    y_src_off: u32,
    y_dst_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x_src: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read> y_src: array<f32>;
@group(0) @binding(4) var<storage, read_write> x_dst: array<f32>;
@group(0) @binding(5) var<storage, read_write> y_dst: array<f32>;
@group(0) @binding(6) var<storage, read_write> fault: array<atomic<u32>>;

@compute @workgroup_size(256)
fn gather(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = linear_index(wid, nwg, lid);
    let nx = p.count * p.x_cols;
    if (e < nx) {
        let r = e / p.x_cols;
        let c = e % p.x_cols;
        let row = idx[p.idx_at + r];
        if (row >= p.x_rows) {
            atomicOr(&fault[0], FAULT_ROW_INDEX);
            return;
        }
        let s = p.x_src_off + row * p.x_cols + c;
        // Unsigned wrap-around makes one comparison test both ends of the chunk.
        let local = s - p.chunk_start;
        if (s >= p.chunk_start && local < p.chunk_len) {
            x_dst[p.x_dst_off + e] = x_src[local];
        }
        return;
    }
    let ey = e - nx;
    if (ey < p.count * p.y_cols) {
        let r = ey / p.y_cols;
        let c = ey % p.y_cols;
        let row = idx[p.idx_at + r];
        if (row >= p.y_rows) {
            atomicOr(&fault[0], FAULT_ROW_INDEX);
            return;
        }
        y_dst[p.y_dst_off + ey] = y_src[p.y_src_off + row * p.y_cols + c];
    }
}
