//! Cached ancestry: whether any strict ancestor of a watched path has a
//! persistent-recursive watch, so that an event on a watched path need not
//! look up each of its ancestors (with many watches, each lookup is a cache
//! miss) while the recursive watches stay where they are.
//!
//! A path entry caches the answer with the registry's epoch (`Ancestry`).
//! Every path whose recursive watches a cached answer depends on (each
//! ancestor looked up to compute it) is recorded in `Deps`, by hash.
//! When a path gains its first recursive watch or loses its last, the epoch
//! moves on, and with it every cached answer goes stale, but only if the
//! path is in `Deps` (a leaf path, the usual place of a recursive watch, is
//! nobody's ancestor, and changes nothing).

/// Epochs run from 1 to this (23 bits); the registry forgets every cached
/// answer when it wraps (small in tests, so that they wrap).
#[cfg(not(test))]
pub(super) const EPOCH_LIMIT: u32 = 1 << 23;
#[cfg(test)]
pub(super) const EPOCH_LIMIT: u32 = 4;

/// A cached answer in three bytes: 0 (none), else the epoch and the answer.
#[derive(Copy, Clone, Default, Debug, PartialEq, Eq)]
pub(super) struct Ancestry([u8; 3]);

impl Ancestry {
    /// `has`, as known at `epoch` (1 to `EPOCH_LIMIT - 1`; 23 bits).
    pub(super) fn new(epoch: u32, has: bool) -> Ancestry {
        debug_assert!(epoch > 0 && epoch < 1 << 23);
        let v = (epoch << 1) | u32::from(has);
        let [a, b, c, _] = v.to_le_bytes();
        Ancestry([a, b, c])
    }

    /// The answer, if it was cached at `epoch`.
    pub(super) fn at(self, epoch: u32) -> Option<bool> {
        let [a, b, c] = self.0;
        let v = u32::from_le_bytes([a, b, c, 0]);
        (v != 0 && v >> 1 == epoch).then_some(v & 1 != 0)
    }
}

/// The paths some cached answer depends on, as 64-bit keys (two paths
/// sharing one would only cost an epoch). Open addressing, at most half
/// full; 0 marks an empty place (key 0 is stored as 1). Nothing is
/// removed: the registry starts it again from the answers still cached
/// once it has grown enough since it last did (`stale`).
pub(super) struct Deps {
    places: Vec<u64>,
    len: usize,
    /// `len` when it was started again.
    base: usize,
}

/// The fewest places of `Deps` (few in tests, so that it grows).
const MIN_PLACES: usize = if cfg!(test) { 4 } else { 64 };

impl Default for Deps {
    fn default() -> Self {
        Deps::with_places(MIN_PLACES)
    }
}

impl Deps {
    fn with_places(places: usize) -> Deps {
        debug_assert!(places.is_power_of_two());
        Deps {
            places: vec![0; places],
            len: 0,
            base: 0,
        }
    }

    /// Empty, with room for `keys` without growing.
    pub(super) fn for_keys(keys: usize) -> Deps {
        Deps::with_places((keys * 2).next_power_of_two().max(MIN_PLACES))
    }

    fn key(key: u64) -> u64 {
        key.max(1)
    }

    /// The place of `key`, or the empty place where it would go.
    fn place(&self, key: u64) -> usize {
        let mask = self.places.len() - 1;
        // The keys are hashes already; probing is linear.
        let mut i = ((key ^ (key >> 29)) as usize) & mask;
        while self.places[i] != 0 && self.places[i] != key {
            i = (i + 1) & mask;
        }
        i
    }

    pub(super) fn insert(&mut self, key: u64) {
        let key = Deps::key(key);
        let i = self.place(key);
        if self.places[i] == 0 {
            self.places[i] = key;
            self.len += 1;
            if self.len * 2 > self.places.len() {
                let base = self.base;
                let old = std::mem::replace(self, Deps::with_places(self.places.len() * 2));
                self.base = base;
                for key in old.places.into_iter().filter(|&k| k != 0) {
                    let i = self.place(key);
                    self.places[i] = key;
                    self.len += 1;
                }
            }
        }
    }

    pub(super) fn contains(&self, key: u64) -> bool {
        let key = Deps::key(key);
        self.places[self.place(key)] == key
    }

    /// Marks the current keys as what the live answers depend on.
    pub(super) fn started(&mut self) {
        self.base = self.len;
    }

    /// Whether it has grown enough since it was started again (by the
    /// keys then, and by the registry's `paths`) to start again, dropping
    /// the keys only stale answers depended on: a start, which reads every
    /// path, then costs O(1) per key added since.
    pub(super) fn stale(&self, paths: usize) -> bool {
        if cfg!(test) {
            // Often, so that tests start it again.
            self.len > self.base + 2
        } else {
            self.len > 2 * self.base + paths.max(1024)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_hold_only_at_their_epoch() {
        for epoch in [1, 2, EPOCH_LIMIT / 2 + 1, EPOCH_LIMIT - 1, (1 << 23) - 1] {
            for has in [false, true] {
                let a = Ancestry::new(epoch, has);
                assert_eq!(a.at(epoch), Some(has));
                assert_eq!(a.at(epoch + 1), None);
                assert_eq!(a.at(epoch - 1), None);
            }
        }
        assert_eq!(Ancestry::default().at(1), None);
    }

    #[test]
    fn deps_hold_exactly_what_was_inserted() {
        let mut d = Deps::default();
        let hashes: Vec<u64> = (0..5000u64)
            .map(|i| i.wrapping_mul(0x85eb_ca6b_c2b2_ae35))
            .collect();
        for &h in &hashes {
            d.insert(h);
            d.insert(h);
        }
        assert_eq!(d.len, hashes.len());
        assert!(hashes.iter().all(|&h| d.contains(h)));
        assert!((0..5000u64)
            .map(|i| i.wrapping_mul(0x85eb_ca6b_c2b2_ae35) ^ 1 << 63)
            .all(|k| !d.contains(k) || hashes.contains(&k)));
        // 0 is a hash like any other.
        assert!(!d.contains(0) || hashes.contains(&0) || hashes.contains(&1));
        d.insert(0);
        assert!(d.contains(0));
    }
}
