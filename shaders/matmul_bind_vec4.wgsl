// The operands as vec4 arrays over the same buffers (reg8v4): an aligned element index e
// (e % 4 == 0) reads 16 bytes in one load; any other element is one lane of its vec4. The
// host rounds every buffer up to 16 bytes, so the last elements lie inside arrayLength.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

const VEC4: bool = true;

fn a_at(e: u32) -> f32 {
    return a[e >> 2u][e & 3u];
}

fn b_at(e: u32) -> f32 {
    return b[e >> 2u][e & 3u];
}

// e % 4 == 0.
fn a4_at(e: u32) -> vec4<f32> {
    return a[e >> 2u];
}

fn b4_at(e: u32) -> vec4<f32> {
    return b[e >> 2u];
}
