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

/// [`fast_f32`] of the cell `chunk[a..e]`, reading up to 8 bytes past its end when `chunk`
/// has them (the cells that follow, never used).
#[inline]
pub(crate) fn fast_f32_in(chunk: &[u8], a: usize, e: usize) -> Option<f32> {
    short_decimal(chunk, a, e).or_else(|| fast_f32(&chunk[a..e]))
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// The common cell, `[+-]?` then at most 16 bytes of digits with at most one `.`, without a
/// branch on its length or sign: the byte loops of [`fast_f32`] mispredict their exits on most
/// cells, since the number of digits varies from cell to cell. The dot is cut out of the
/// loaded bytes and the digits around it are valued together. `None` (the caller takes
/// [`fast_f32`]) for any other shape. The mantissa (< 10^15) and scale are those [`fast_f32`]
/// computes, so the result is its bits (0 / 10^k and m / 1 are exact).
#[inline(always)]
pub(crate) fn short_decimal(chunk: &[u8], a: usize, e: usize) -> Option<f32> {
    let first = *chunk.get(a)?;
    let neg = first == b'-';
    let s = a + (neg | (first == b'+')) as usize;
    let len = e.checked_sub(s)?;
    let (mant, n2) = if len <= 8 {
        one_word(chunk, s, len)?
    } else {
        two_words(chunk, s, len)?
    };
    // Below 2^53: the signed conversion is one instruction, the unsigned one a sequence.
    let v = mant as i64 as f64 / POW10[n2];
    // The sign by its bit: a branch on it mispredicts on half the cells of centred data.
    Some(f64::from_bits(v.to_bits() | (neg as u64) << 63) as f32)
}

/// The mantissa and number of fraction digits of the `len` (≤ 8) bytes at `chunk[s..]`.
#[inline(always)]
fn one_word(chunk: &[u8], s: usize, len: usize) -> Option<(u64, usize)> {
    let w = u64::from_le_bytes(chunk.get(s..s + 8)?.try_into().ok()?);
    let n1 = leading_digits(w);
    let (digits, nd) = if n1 >= len {
        (w, len)
    } else {
        if (w >> (8 * n1)) as u8 != b'.' {
            return None;
        }
        let low = (1u64 << (8 * n1)) - 1;
        ((w & low) | ((w >> 8) & !low), len - 1)
    };
    if nd == 0 || leading_digits(digits) < nd {
        return None;
    }
    Some((digits_value(digits, nd), nd - n1.min(nd)))
}

/// The same for 9 to 16 bytes with a dot among the first 8 (`0.0940123`, a tenth of the cells
/// of centred data written with 6 significant digits).
#[cold]
fn two_words(chunk: &[u8], s: usize, len: usize) -> Option<(u64, usize)> {
    if len > 16 {
        return None;
    }
    let v = u128::from_le_bytes(chunk.get(s..s + 16)?.try_into().ok()?);
    let n1 = leading_digits(v as u64);
    if n1 >= 8 || (v >> (8 * n1)) as u8 != b'.' {
        return None;
    }
    let low = (1u128 << (8 * n1)) - 1;
    let digits = (v & low) | ((v >> 8) & !low);
    let (head, tail, nt) = (digits as u64, (digits >> 64) as u64, len - 9);
    if leading_digits(head) < 8 || leading_digits(tail) < nt {
        return None;
    }
    let mant = digits_value(head, 8) * POW10[nt] as u64 + digits_value(tail, nt);
    Some((mant, len - 1 - n1))
}

/// How many of the 8 bytes of `w` (first byte lowest) are ASCII digits before the first
/// non-digit. A byte is flagged when it is ≥ 0x80, above '9' (adding 0x46 carries into bit 7)
/// or below '0' (subtracting 0x30 borrows). Carries and borrows only move to later bytes, and
/// the bytes before the first flagged one are digits, which make neither: that byte is exact.
#[inline]
fn leading_digits(w: u64) -> usize {
    let flags = (w | w.wrapping_add(0x46 * ONES) | w.wrapping_sub(0x30 * ONES)) & (0x80 * ONES);
    (flags.trailing_zeros() / 8) as usize
}

/// The value of the first `n` (0..=8) digits of `w`: the rest are shifted out, which leaves
/// leading zeros in front; then pairs, quads and the eight are combined by multiplies.
#[inline]
fn digits_value(w: u64, n: usize) -> u64 {
    let v = (w & (0x0F * ONES))
        .checked_shl(8 * (8 - n) as u32)
        .unwrap_or(0);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let mask = 0x0000_00FF_0000_00FF;
    let mul1 = 100 + (1_000_000 << 32);
    let mul2 = 1 + (10_000 << 32);
    ((v & mask)
        .wrapping_mul(mul1)
        .wrapping_add(((v >> 16) & mask).wrapping_mul(mul2)))
        >> 32
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

    /// Every cell, short or not, gives `fast_f32`'s answer with whatever bytes follow it.
    #[test]
    fn cells_in_place_agree_with_fast_f32() {
        let mut rng = Rng::new(5);
        let pool = b"0000123456789.-+e,\n\r x\x7f\x80\xff/:";
        for _ in 0..300_000 {
            let len = 1 + rng.below(30);
            let b: Vec<u8> = (0..len).map(|_| pool[rng.below(pool.len())]).collect();
            let a = rng.below(len);
            let e = a + rng.below(len - a + 1);
            let want = fast_f32(&b[a..e]).map(f32::to_bits);
            let got = fast_f32_in(&b, a, e).map(f32::to_bits);
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&b[a..e]));
        }
        for cell in [
            "0.12573",
            "-0.132105",
            "1.304",
            "-2.32503",
            "7",
            "+.5",
            "3.",
            "0.123456",
            "12345.6789",
            "0.0940123",
            "-0.00445413",
            "1234567.12345678",
            "0.",
        ] {
            let row = format!("{cell},9.87654321,1");
            let want = fast_f32(cell.as_bytes()).map(f32::to_bits);
            assert!(want.is_some(), "{cell}");
            assert_eq!(
                fast_f32_in(row.as_bytes(), 0, cell.len()).map(f32::to_bits),
                want
            );
            assert!(
                short_decimal(row.as_bytes(), 0, cell.len()).is_some(),
                "{cell}"
            );
        }
        for cell in [
            "123456789.5",
            "0.1234567890123456",
            "1e5",
            "1.2.3",
            ".",
            "-",
            "1 2",
        ] {
            let row = format!("{cell},9.87654321,1");
            assert_eq!(short_decimal(row.as_bytes(), 0, cell.len()), None, "{cell}");
            let want = fast_f32(cell.as_bytes()).map(f32::to_bits);
            let got = fast_f32_in(row.as_bytes(), 0, cell.len()).map(f32::to_bits);
            assert_eq!(got, want, "{cell}");
        }
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
