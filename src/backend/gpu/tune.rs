//! Autotuning of the matmul variants on the user's own adapter: time every variant on the
//! shape classes training uses, verify each against the CPU reference (and against the
//! baseline's bits), and cache the fastest per shape class in a JSON file keyed by adapter,
//! backend, driver and wgtrain version.

use super::kernels::Layout;

/// Products are grouped by layout and the ⌈log₂⌉ of m, n and k: shapes of one class run
/// best with the same variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShapeClass {
    pub layout: Layout,
    pub m: u8,
    pub n: u8,
    pub k: u8,
}

fn log2_ceil(x: usize) -> u8 {
    (usize::BITS - x.max(1).saturating_sub(1).leading_zeros()) as u8
}

impl ShapeClass {
    pub fn of(layout: Layout, m: usize, n: usize, k: usize) -> ShapeClass {
        ShapeClass {
            layout,
            m: log2_ceil(m),
            n: log2_ceil(n),
            k: log2_ceil(k),
        }
    }

    /// The cache's key, e.g. `nt m8 n7 k6` (m ≤ 2⁸, n ≤ 2⁷, k ≤ 2⁶).
    pub fn key(&self) -> String {
        format!(
            "{} m{} n{} k{}",
            &self.layout.entry()[7..],
            self.m,
            self.n,
            self.k
        )
    }

    pub fn parse(s: &str) -> Option<ShapeClass> {
        let mut it = s.split(' ');
        let layout = match it.next()? {
            "nt" => Layout::Nt,
            "nn" => Layout::Nn,
            "tn" => Layout::Tn,
            _ => return None,
        };
        let mut num = |c: char| it.next()?.strip_prefix(c)?.parse::<u8>().ok();
        let (m, n, k) = (num('m')?, num('n')?, num('k')?);
        Some(ShapeClass { layout, m, n, k })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_classes_bucket_by_log2_and_round_trip_through_their_key() {
        let c = ShapeClass::of(Layout::Tn, 256, 100, 56);
        assert_eq!((c.m, c.n, c.k), (8, 7, 6));
        assert_eq!(ShapeClass::of(Layout::Tn, 129, 65, 33), c);
        assert_ne!(ShapeClass::of(Layout::Tn, 257, 100, 56), c);
        assert_eq!(c.key(), "tn m8 n7 k6");
        assert_eq!(ShapeClass::parse(&c.key()), Some(c));
        assert_eq!(ShapeClass::of(Layout::Nt, 1, 1, 0).key(), "nt m0 n0 k0");
        assert_eq!(ShapeClass::parse("xx m1 n2 k3"), None);
    }
}
