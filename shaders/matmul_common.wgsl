// What every matmul variant shares (compiled before the variant's file): the parameters and
// bindings, the three layouts with their operand addressing, and the fused epilogues. The
// operands a and b are declared by matmul_bind_scalar.wgsl or matmul_bind_vec4.wgsl (read
// through `a_at`/`b_at`, and `a4_at`/`b4_at` for aligned vec4). A variant
// defines `THREADS` and `fn mm(lay, wid, lid)` for matmul_entries.wgsl (or its own entry
// points), and must sum every output in the same order (r = 0, 1, …, as `acc += a * b`) so that
// all variants give the same bits.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    act: u32,     // nt: the activation applied; nn: the activation differentiated
    a_off: u32,   // element offsets of the views in their bound buffers
    b_off: u32,
    epi_off: u32,
    c_off: u32,
    db_off: u32,
    has_epi: u32, // nt: bias bound; nn: the layer output y bound
    has_db: u32,  // tn: 1 db bound, 2 db lies in c's buffer (at db_off)
    // Bit 0: A, bit 1: B may be read as aligned vec4 (the view's offset and the operand's
    // row stride are multiples of 4; the host's `vec4_operands` decides).
    vec4: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// The epilogue's input: bias[n] (nt), or the previous layer's output y[m, k] (nn).
@group(0) @binding(3) var<storage, read> epi: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
// tn only: the bias gradient db[n] = Σ_r dy[r, n].
@group(0) @binding(5) var<storage, read_write> db: array<f32>;

const LAYOUT_NT: u32 = 0u; // y[m,n]  = x[m,k] · w[n,k]ᵀ   A(i,r) = x[i,r],  B(r,j) = w[j,r]
const LAYOUT_NN: u32 = 1u; // dx[m,k] = dy[m,n] · w[n,k]   A(i,r) = dy[i,r], B(r,j) = w[r,j]
const LAYOUT_TN: u32 = 2u; // dw[n,k] = dy[m,n]ᵀ · x[m,k]  A(i,r) = dy[r,i], B(r,j) = x[r,j]

fn load_a(lay: u32, i: u32, r: u32, rows: u32, depth: u32) -> f32 {
    // Zero padding makes ragged edges contribute nothing to the sums.
    if (i >= rows || r >= depth) {
        return 0.0;
    }
    switch lay {
        case 0u: { return a_at(p.a_off + i * p.k + r); }
        case 1u: { return a_at(p.a_off + i * p.n + r); }
        default: { return a_at(p.a_off + r * p.n + i); }
    }
}

fn load_b(lay: u32, r: u32, j: u32, cols: u32, depth: u32) -> f32 {
    if (j >= cols || r >= depth) {
        return 0.0;
    }
    switch lay {
        case 0u: { return b_at(p.b_off + j * p.k + r); }
        default: { return b_at(p.b_off + r * p.k + j); }
    }
}

// A(i..i+3, r) and B(r, j..j+3), for the variants that read global memory directly.
fn load_a4(lay: u32, i: u32, r: u32, rows: u32, depth: u32) -> vec4<f32> {
    return vec4<f32>(
        load_a(lay, i, r, rows, depth),
        load_a(lay, i + 1u, r, rows, depth),
        load_a(lay, i + 2u, r, rows, depth),
        load_a(lay, i + 3u, r, rows, depth),
    );
}

fn load_b4(lay: u32, r: u32, j: u32, cols: u32, depth: u32) -> vec4<f32> {
    return vec4<f32>(
        load_b(lay, r, j, cols, depth),
        load_b(lay, r, j + 1u, cols, depth),
        load_b(lay, r, j + 2u, cols, depth),
        load_b(lay, r, j + 3u, cols, depth),
    );
}

// (rows, cols, depth) of the output of layout `lay`.
fn dims(lay: u32) -> vec3<u32> {
    switch lay {
        case 0u: { return vec3<u32>(p.m, p.n, p.k); }
        case 1u: { return vec3<u32>(p.m, p.k, p.n); }
        default: { return vec3<u32>(p.n, p.k, p.m); }
    }
}

// Writes output (i, j) through the layout's epilogue; the caller checks i < rows, j < cols.
fn store(lay: u32, i: u32, j: u32, cols: u32, acc: f32) {
    var v = acc;
    if (lay == LAYOUT_NT) {
        // The forward epilogue: bias and activation fused, no extra pass.
        if (p.has_epi != 0u) {
            v += epi[p.epi_off + j];
        }
        v = activate(v, p.act);
    } else if (lay == LAYOUT_NN && p.has_epi != 0u) {
        // The backward epilogue: through the previous layer's activation.
        v *= act_deriv(epi[p.epi_off + i * cols + j], p.act);
    }
    c[p.c_off + i * cols + j] = v;
}

// tn: db[i] = Σ_r dy[r, i], accumulated by the thread that owns output column 0 of row i,
// over r = 0, 1, … in order (the CPU's bias_grad order).
fn store_db(i: u32, sum: f32) {
    // has_db 2: db is a view of the buffer bound as c (one gradient slab).
    if (p.has_db == 2u) {
        c[p.db_off + i] = sum;
    } else if (p.has_db == 1u) {
        db[p.db_off + i] = sum;
    }
}
