// gather_rows: dst[r, :] = src[idx[start + r], :], how a batch is taken from a data set
// uploaded once. A data set larger than one storage binding is held in several chunk
// buffers that split it at arbitrary element boundaries (a row may straddle two chunks);
// the host dispatches this kernel once per chunk and each dispatch writes exactly the
// elements whose source lies in its chunk, so every element is written once.

struct Params {
    len: u32,         // count · cols
    cols: u32,
    start: u32,       // first position in idx
    chunk_start: u32, // index of the chunk's first element in the whole data set
    chunk_len: u32,   // elements in this chunk
    _p0: u32,
    _p1: u32,
    _p2: u32,
    _f0: vec4<f32>,
    _p3: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn gather_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (e >= p.len) {
        return;
    }
    let r = e / p.cols;
    let c = e % p.cols;
    let s = idx[p.start + r] * p.cols + c;
    // Unsigned wrap-around makes one comparison test both ends of the chunk.
    let local = s - p.chunk_start;
    if (s >= p.chunk_start && local < p.chunk_len) {
        dst[e] = src[local];
    }
}
