//! The loader's common case: a block of ASCII text without quotes whose feature cells are
//! short decimals. A record's commas are found 8 bytes at a time and each cell is parsed as
//! soon as its comma is, with no list of fields in between. A record of any other shape (a
//! cell that is not a short decimal, spaces, more or fewer fields than the header) goes
//! through the general path, [`Plan::record`], from its start, which words the errors: this
//! path only keeps a record whose numbers the general path would give bit for bit.

use std::collections::HashMap;
use std::ops::ControlFlow;

use super::loader::{Chunk, Plan, Slot};
use super::num::short_decimal;
use super::scan::{self, Fields};

/// A target cell met on the way: its range, target slot and column.
type TargetCell = (usize, usize, u32, usize);

impl Plan {
    /// [`scan::for_each_record`] with [`Plan::record`], taking the fast path where it can;
    /// returns the block's `\n`s (up to the record that stopped the block, if one did).
    pub(super) fn plain_records(
        &self,
        block: &[u8],
        c: &mut Chunk,
        seen: &mut HashMap<Vec<u8>, u32>,
    ) -> u64 {
        let mut ranges = Vec::with_capacity(self.cols);
        let mut targets = Vec::with_capacity(self.nt);
        scan::for_each_line(block, |(pos, end), nl| {
            if self.plain_record(block, (pos, end), c, &mut targets) {
                self.plain_targets(block, c, seen, &targets, nl);
                return ControlFlow::Continue(());
            }
            scan::split_fields(block, pos, end, &mut ranges);
            let f = Fields {
                bytes: block,
                ranges: &ranges,
            };
            self.record(c, seen, &f, nl, true)
        })
    }

    /// The features of record `block[pos..end]` into a new row of `c.x`, and its target cells
    /// into `targets`: true if it has `cols` fields and every feature cell is a short
    /// decimal, else false with `c` as it was.
    fn plain_record(
        &self,
        block: &[u8],
        (pos, end): (usize, usize),
        c: &mut Chunk,
        targets: &mut Vec<TargetCell>,
    ) -> bool {
        let xb = c.x.len();
        c.x.resize(xb + self.nf, 0.0);
        targets.clear();
        let (mut col, mut a) = (0, pos);
        let mut cell = |e: usize| {
            let ok = match self.slots.get(col) {
                Some(&Slot::Feature(i)) => short_decimal(block, a, e)
                    .map(|v| c.x[xb + i as usize] = v)
                    .is_some(),
                Some(&Slot::Target(i)) => {
                    targets.push((a, e, i, col));
                    true
                }
                Some(Slot::Skip) => true,
                None => false,
            };
            (col, a) = (col + 1, e + 1);
            ok
        };
        let ok = scan::for_each_comma(block, pos, end, &mut cell) && cell(end);
        if !ok || col != self.cols {
            c.x.truncate(xb);
            return false;
        }
        true
    }

    /// The target cells of a record the fast path took (trimmed as the general path trims
    /// them), then the record's line.
    fn plain_targets(
        &self,
        block: &[u8],
        c: &mut Chunk,
        seen: &mut HashMap<Vec<u8>, u32>,
        targets: &[TargetCell],
        nl: u64,
    ) {
        let yb = c.y.len();
        if self.numeric_targets {
            c.y.resize(yb + self.nt, 0.0);
        }
        for &(a, e, i, col) in targets {
            let (a, e) = scan::trimmed(block, a, e);
            let cell = (block, a as usize, e as usize);
            self.target(c, seen, cell, (nl, i, col, yb));
        }
        c.lines.push(nl);
    }
}
