//! The path index: a seeded path hash and an open-addressing table from path
//! hashes to positions in the registry's dense array of path entries.
//!
//! A table slot is one `u64`: the path's 32-bit hash in the high half and
//! the entry's position plus one in the low half (0: empty). Linear probing
//! keeps a lookup on one or two cache lines; deletion shifts the following
//! slots back (no tombstones), and the table grows at 1/2 full (a lookup of an absent path, the common case
//! when walking ancestors, then reads about 2.5 slots) and shrinks at
//! 1/8, so a lookup of an absent path ends at the first empty slot. The
//! stored hash answers both where a slot belongs (its low bits) and, before
//! any path is compared, whether it can be the one sought.

/// A seeded hash of paths, eight bytes at a time. Each ancestor of a path
/// is hashed on its own (a few words each), which costs less than a
/// byte-by-byte hash that yields every prefix on the way.
#[derive(Copy, Clone)]
pub(super) struct PathHasher {
    seed: u64,
}

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xd6e8_feb8_6659_fd93;

impl PathHasher {
    /// A hasher with a random seed (colliding paths cannot be chosen in advance).
    pub(super) fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x7a6b_2d73_7461_7465);
        PathHasher { seed: h.finish() }
    }

    fn mix(h: u64, word: u64) -> u64 {
        (h ^ word).wrapping_mul(K1).rotate_left(31)
    }

    /// The hash of a path.
    pub(super) fn hash(self, path: &[u8]) -> u32 {
        let mut h = self.seed ^ (path.len() as u64).wrapping_mul(K2);
        let mut words = path.chunks_exact(8);
        for w in &mut words {
            h = Self::mix(h, u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            h = Self::mix(h, u64::from_le_bytes(last));
        }
        let x = (h ^ (h >> 32)).wrapping_mul(K2);
        ((x ^ (x >> 29)) >> 32) as u32
    }

    /// `(hash, length)` of `/`, of each ancestor, then of the path itself (for
    /// a validated absolute path), in that order.
    pub(super) fn prefixes(self, path: &[u8], out: &mut Vec<(u32, usize)>) {
        out.clear();
        out.push((self.hash(b"/"), 1));
        for (i, &b) in path.iter().enumerate().skip(1) {
            if b == b'/' {
                out.push((self.hash(&path[..i]), i));
            }
        }
        if path.len() > 1 {
            out.push((self.hash(path), path.len()));
        }
    }
}

const MIN_SLOTS: usize = 16;

fn pack(hash: u32, entry: u32) -> u64 {
    (u64::from(hash) << 32) | (u64::from(entry) + 1)
}

fn hash_of(slot: u64) -> u32 {
    (slot >> 32) as u32
}

fn entry_of(slot: u64) -> u32 {
    (slot as u32).wrapping_sub(1)
}

/// Path hash -> entry position.
pub(super) struct PathIndex {
    slots: Vec<u64>,
    len: usize,
}

impl Default for PathIndex {
    fn default() -> Self {
        PathIndex {
            slots: vec![0; MIN_SLOTS],
            len: 0,
        }
    }
}

impl PathIndex {
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn home(&self, hash: u32) -> usize {
        hash as usize & self.mask()
    }

    /// Reads the first slot a lookup of `hash` reads. Issuing these reads for
    /// several paths before looking any of them up lets their cache misses
    /// overlap.
    pub(super) fn touch(&self, hash: u32) -> u64 {
        self.slots[self.home(hash)]
    }

    /// The entry with this hash for which `is` says yes.
    pub(super) fn find(&self, hash: u32, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if hash_of(s) == hash && is(entry_of(s)) {
                return Some(entry_of(s));
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds an entry (not present yet).
    pub(super) fn insert(&mut self, hash: u32, entry: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.resize(self.slots.len() * 2);
        }
        self.place(pack(hash, entry));
        self.len += 1;
    }

    fn place(&mut self, slot: u64) {
        let mask = self.mask();
        let mut i = self.home(hash_of(slot));
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    fn position(&self, hash: u32, entry: u32) -> Option<usize> {
        let want = pack(hash, entry);
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            match self.slots[i] {
                0 => return None,
                s if s == want => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Records that the entry at `from` moved to `to`.
    pub(super) fn moved(&mut self, hash: u32, from: u32, to: u32) {
        let at = self.position(hash, from);
        debug_assert!(at.is_some(), "a moved entry is indexed");
        if let Some(i) = at {
            self.slots[i] = pack(hash, to);
        }
    }

    /// Removes an entry, shifting back the slots that probed past it.
    pub(super) fn remove(&mut self, hash: u32, entry: u32) {
        let at = self.position(hash, entry);
        debug_assert!(at.is_some(), "a removed entry is indexed");
        let Some(mut hole) = at else { return };
        let mask = self.mask();
        let mut i = hole;
        loop {
            i = (i + 1) & mask;
            let s = self.slots[i];
            if s == 0 {
                break;
            }
            // `s` may fill the hole if the hole lies between its home and `i`.
            let home = self.home(hash_of(s));
            if (i.wrapping_sub(home) & mask) >= (i.wrapping_sub(hole) & mask) {
                self.slots[hole] = s;
                hole = i;
            }
        }
        self.slots[hole] = 0;
        self.len -= 1;
        if self.slots.len() > MIN_SLOTS && self.len * 8 < self.slots.len() {
            self.resize(self.slots.len() / 2);
        }
    }

    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![0; slots]);
        for s in old.into_iter().filter(|&s| s != 0) {
            self.place(s);
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_hashes_equal_whole_hashes() {
        let h = PathHasher::new();
        let mut out = Vec::new();
        for path in ["/", "/a", "/a/b", "/app/svc-17/shard-3/node-42"] {
            h.prefixes(path.as_bytes(), &mut out);
            let want: Vec<(u32, usize)> = crate::path::self_and_ancestors(path)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(|p| (h.hash(p.as_bytes()), p.len()))
                .collect();
            assert_eq!(out, want, "{path}");
        }
    }

    /// Random inserts, moves and removals against a model, with a hash of
    /// few bits so that probe chains wrap around and collide.
    #[test]
    fn index_matches_a_model() {
        let mut index = PathIndex::default();
        let mut model: Vec<(u32, u32)> = Vec::new(); // (hash, entry)
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut next_entry = 0u32;
        for step in 0..200_000 {
            let r = next();
            // Grow to about 3,000 entries, then shrink back to none.
            let op = if step > 150_000 { 6 } else { r % 7 };
            match op {
                0..=3 if model.len() < 3000 => {
                    let hash = (next() % 1024) as u32 | ((next() % 4) as u32) << 30;
                    index.insert(hash, next_entry);
                    model.push((hash, next_entry));
                    next_entry += 1;
                }
                4 if !model.is_empty() => {
                    let (hash, entry) = model[(next() as usize) % model.len()];
                    let to = next_entry;
                    next_entry += 1;
                    index.moved(hash, entry, to);
                    model.iter_mut().find(|m| m.1 == entry).unwrap().1 = to;
                }
                _ if !model.is_empty() => {
                    let at = (next() as usize) % model.len();
                    let (hash, entry) = model.swap_remove(at);
                    index.remove(hash, entry);
                }
                _ => {}
            }
            if step % 997 == 0 || model.len() < 8 {
                assert_eq!(index.len, model.len());
                for &(hash, entry) in &model {
                    assert_eq!(index.find(hash, |e| e == entry), Some(entry), "step {step}");
                }
                assert_eq!(index.find(0x1234_5678, |_| true), None);
            }
        }
        assert!(index.capacity() >= MIN_SLOTS);
        while let Some((hash, entry)) = model.pop() {
            index.remove(hash, entry);
        }
        assert_eq!(index.len, 0);
        assert_eq!(index.capacity(), MIN_SLOTS);
    }
}
