// The operands as scalar arrays (every variant but reg8v4). `VEC4` is false, so a variant's
// vec4 paths are dead code here and compiled away.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

const VEC4: bool = false;

fn a_at(e: u32) -> f32 {
    return a[e];
}

fn b_at(e: u32) -> f32 {
    return b[e];
}

fn a4_at(e: u32) -> vec4<f32> {
    return vec4<f32>(a[e], a[e + 1u], a[e + 2u], a[e + 3u]);
}

fn b4_at(e: u32) -> vec4<f32> {
    return vec4<f32>(b[e], b[e + 1u], b[e + 2u], b[e + 3u]);
}
