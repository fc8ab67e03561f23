//! Decimal text to f32 without going through `str::parse` for the common shapes.
//!
//! The loader's contract is that a cell becomes exactly the f32 that `s.parse::<f64>()? as f32`
//! gives (what the text reader has always done, and what pandas' float64 → float32 gives).
//! [`fast_f32`] returns that value for plain decimals whose mantissa fits in 53 bits and whose
//! power of ten is at most 22 — there both the mantissa and 10^k are exact in f64, so one
//! multiplication or division is correctly rounded (Clinger's fast path, the same first step
//! `core::num::dec2flt` takes), and the result is bit for bit the standard library's. Anything
//! else (long mantissas, big exponents, `inf`, `nan`, junk) returns `None` and goes to the slow
//! path, which also words the error.

/// Exact powers of ten representable in f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `[+-]? digits [. digits] [(e|E) [+-]? digits]` (at least one digit before the exponent),
/// as the f32 of the correctly rounded f64; `None` when the shape or size needs the slow path.
#[inline]
pub(crate) fn fast_f32(b: &[u8]) -> Option<f32> {
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut mant: u64 = 0;
    let int_start = i;
    while let Some(d) = b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d < 10) {
        mant = mant.wrapping_mul(10).wrapping_add(d as u64);
        i += 1;
    }
    let mut digits = i - int_start;
    let mut scale: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while let Some(d) = b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d < 10) {
            mant = mant.wrapping_mul(10).wrapping_add(d as u64);
            i += 1;
        }
        scale = -((i - frac_start) as i64);
        digits += i - frac_start;
    }
    // 19 digits always fit in a u64 (leading zeros count too: rare, and the slow path is exact).
    if digits == 0 || digits > 19 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let eneg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut e: i64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            if e < 100_000 {
                e = e * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        scale += if eneg { -e } else { e };
    }
    if i != b.len() || mant > (1u64 << 53) {
        return None;
    }
    let m = mant as f64;
    let v = if mant == 0 {
        0.0
    } else if (0..=22).contains(&scale) {
        m * POW10[scale as usize]
    } else if (-22..0).contains(&scale) {
        m / POW10[(-scale) as usize]
    } else {
        return None;
    };
    let v = if neg { -v } else { v } as f32;
    // m < 2^53 times at most 1e22 stays below f32::MAX, but say so rather than assume.
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn std_f32(s: &str) -> Option<f32> {
        s.parse::<f64>().ok().map(|v| v as f32)
    }

    #[test]
    fn same_bits_as_the_standard_parser() {
        let fixed = [
            "0",
            "-0",
            "+0",
            "007",
            "1.",
            ".5",
            "-.5",
            "0.1",
            "0.3",
            "1e5",
            "1E-5",
            "-2.5e+3",
            "123456789012345678",
            "9007199254740993",
            "0.000000000000000000001",
            "1e22",
            "1e-22",
            "4.35",
            "5.1",
            "3.4028235e38",
            "1.17549435e-38",
            "0.0000",
            "00000.00001",
        ];
        for s in fixed {
            if let Some(v) = fast_f32(s.as_bytes()) {
                assert_eq!(Some(v.to_bits()), std_f32(s).map(f32::to_bits), "{s}");
            }
        }
        // Random decimals of the shapes files hold: the fast path must never differ.
        let mut rng = Rng::new(11);
        let mut hits = 0;
        for _ in 0..200_000 {
            let int = rng.below(1_000_000_000) as u64;
            let frac = rng.below(1_000_000_000) as u64;
            let fd = rng.below(10);
            let e = rng.below(61) as i64 - 30;
            let sign = if rng.below(2) == 0 { "-" } else { "" };
            let frac = format!("{frac:09}");
            let s = match rng.below(3) {
                0 => format!("{sign}{int}.{}", &frac[..fd]),
                1 => format!("{sign}{int}.{}e{e}", &frac[..fd]),
                _ => format!("{sign}0.{}", &frac[..fd]),
            };
            if let Some(v) = fast_f32(s.as_bytes()) {
                hits += 1;
                assert_eq!(Some(v.to_bits()), std_f32(&s).map(f32::to_bits), "{s}");
            }
        }
        assert!(hits > 150_000, "the fast path took only {hits} of 200000");
    }

    #[test]
    fn odd_shapes_go_to_the_slow_path() {
        for s in [
            "",
            "-",
            "+",
            ".",
            "-.",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            "1,5",
            " 1",
            "1 ",
            "inf",
            "NaN",
            "0x10",
            "1_000",
            "12345678901234567890",
            "1e400",
            "1e-400",
            "--1",
            "1e5x",
        ] {
            assert_eq!(fast_f32(s.as_bytes()), None, "{s:?}");
        }
    }
}
