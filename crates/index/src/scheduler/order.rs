//! A stream's rendezvous order over a region's edges, kept per worker thread.
//!
//! Each edge's score for a stream is `scale × draw × (1 − load)`: `scale` is its weight times
//! its capacity, `draw` is `−1 / ln(u)` with `u` uniform in (0, 1) from the hash of the stream and
//! the edge (so each edge wins a share of streams proportional to its scale). The first two
//! factors do not depend on load, only on the stream and the region's edges, so the order they
//! give — the best score each edge could reach — is computed once per (stream, region layout)
//! and a play request walks it best first, stopping as soon as no edge left can beat the ones it
//! kept. A region of 45 edges then costs a handful of loads instead of 45 logarithms.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::directory::{FastHash, RegionEdges, mix};

/// Entries kept per worker thread (8 bytes each, 8 MiB): past it the cache starts over, so a
/// cluster with more streams than that only loses the saving, never memory.
const MAX_ENTRIES: usize = 1 << 20;

/// The draw of the edge seeded `seed` for the stream hashed `key_hash`.
pub fn draw(seed: u64, key_hash: u64) -> f64 {
    // A uniform value in (0, 1), never 0 or 1.
    let u = ((mix(key_hash ^ seed) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -1.0 / u.ln()
}

/// A region's edges for one stream, best reachable score first: (scale × draw, slot index).
pub type Order = [(f32, u32)];

/// One worker thread's orders, by (stream hash, region layout).
#[derive(Default)]
pub struct Orders {
    by_stream: HashMap<(u64, u64), Box<Order>, FastHash>,
    held: usize,
}

impl Orders {
    /// The order of `region`'s edges for the stream hashed `key_hash`.
    pub fn of(&mut self, key_hash: u64, region: &RegionEdges) -> &Order {
        let n = region.slots.len();
        if self.held + n > MAX_ENTRIES {
            self.by_stream.clear();
            self.held = 0;
        }
        let held = &mut self.held;
        self.by_stream.entry((key_hash, region.layout)).or_insert_with(|| {
            *held += n;
            let mut order: Vec<(f32, u32)> = region
                .slots
                .iter()
                .enumerate()
                .map(|(i, e)| ((e.scale * draw(e.seed, key_hash)) as f32, i as u32))
                .collect();
            order.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            order.into_boxed_slice()
        })
    }
}

thread_local! {
    /// This worker thread's orders and candidate buffer, reused by every request.
    pub static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Per-thread working memory of the scheduler.
#[derive(Default)]
pub struct Scratch {
    pub orders: Orders,
    /// Candidates of the region being ranked.
    pub tier: Vec<super::Candidate>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::EdgeSlot;

    fn region(scales: &[f64]) -> RegionEdges {
        let slots: Vec<EdgeSlot> = scales
            .iter()
            .enumerate()
            .map(|(node, &scale)| EdgeSlot {
                node,
                seed: mix(node as u64),
                scale,
                per_viewer: 1.0,
                per_kbps: 0.0,
                viewers: 0,
                kbps_out: 0,
            })
            .collect();
        RegionEdges::new(slots, scales.len())
    }

    #[test]
    fn the_order_is_by_scale_times_draw_and_follows_the_layout() {
        let mut o = Orders::default();
        let a = region(&[1.0, 2.0, 3.0]);
        let first = o.of(42, &a).to_vec();
        let mut expect: Vec<(f32, u32)> =
            (0..3).map(|i| ((a.slots[i].scale * draw(a.slots[i].seed, 42)) as f32, i as u32)).collect();
        expect.sort_by(|x, y| y.0.total_cmp(&x.0));
        assert_eq!(first, expect);
        assert_eq!(o.of(42, &a), &first[..], "same stream, same layout: the same order");
        let b = region(&[1.0, 2.0, 6.0]);
        assert_ne!(a.layout, b.layout, "a scale change is a new layout");
        assert!(o.of(42, &b).iter().any(|&(s, i)| i == 2 && s == (6.0 * draw(b.slots[2].seed, 42)) as f32));
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut o = Orders::default();
        let r = region(&[1.0; 1000]);
        for key in 0..(MAX_ENTRIES / 1000 + 10) as u64 {
            o.of(key, &r);
            assert!(o.held <= MAX_ENTRIES);
        }
    }
}
