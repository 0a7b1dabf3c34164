//! The path index: a seeded path hash and an open-addressing table from path
//! hashes to positions in the registry's dense array of path entries.
//!
//! A table slot is one `u64`: the path's 32-bit hash in the high half and
//! the entry's position plus one in the low half (0: empty). Linear probing
//! keeps a lookup on one or two cache lines. Entries are only ever added one
//! at a time; removals happen in bulk (the registry sweeps its empty entries
//! and rebuilds the index). The table is at most half full, so a lookup of an
//! absent path (the common case when walking ancestors) reads about 2.5
//! slots. The stored hash answers both where a slot belongs (its low bits)
//! and, before any path is compared, whether it can be the one sought.

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
        let rest = words.remainder().len();
        if rest != 0 {
            h = Self::mix(h, tail_word(path, rest));
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

/// The last `rest` (1 to 7) bytes of `path` as a little-endian word, zero
/// above them. Read as one word where the path is long enough, rather than
/// copied into a zeroed buffer: a word load from bytes just stored one by one
/// stalls on store forwarding.
fn tail_word(path: &[u8], rest: usize) -> u64 {
    let len = path.len();
    if len >= 8 {
        let last = u64::from_le_bytes(path[len - 8..].try_into().expect("8 bytes"));
        last >> (8 * (8 - rest))
    } else {
        path.iter()
            .rev()
            .fold(0u64, |word, &b| (word << 8) | u64::from(b))
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

    /// Replaces the whole index: entry `i` has the `i`-th hash.
    pub(super) fn rebuild(&mut self, hashes: impl ExactSizeIterator<Item = u32>) {
        let want = (hashes.len() * 2 + 1).next_power_of_two().max(MIN_SLOTS);
        self.slots = vec![0; want];
        self.len = 0;
        for (i, hash) in hashes.enumerate() {
            self.place(pack(hash, i as u32));
            self.len += 1;
        }
    }

    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![0; slots]);
        for s in old.into_iter().filter(|&s| s != 0) {
            self.place(s);
        }
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

    #[test]
    fn tail_words_are_the_zero_padded_last_bytes() {
        let bytes: Vec<u8> = (1..=40).collect();
        for len in 1..=bytes.len() {
            let rest = len % 8;
            if rest == 0 {
                continue;
            }
            let path = &bytes[..len];
            let mut want = [0u8; 8];
            want[..rest].copy_from_slice(&path[len - rest..]);
            assert_eq!(tail_word(path, rest), u64::from_le_bytes(want), "{len}");
        }
    }

    /// Inserts and rebuilds against a model, with hashes of few bits so
    /// that probe chains collide and wrap around the table's end.
    #[test]
    fn index_matches_a_model() {
        let mut index = PathIndex::default();
        let mut model: Vec<u32> = Vec::new(); // hash of entry i
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..20 {
            for _ in 0..500 {
                let hash = (next() % 512) as u32 | ((next() % 4) as u32) << 30;
                index.insert(hash, model.len() as u32);
                model.push(hash);
            }
            assert!(index.len * 2 <= index.slots.len(), "at most half full");
            for (entry, &hash) in model.iter().enumerate() {
                let entry = entry as u32;
                assert_eq!(
                    index.find(hash, |e| e == entry),
                    Some(entry),
                    "round {round}"
                );
            }
            assert_eq!(index.find(0x1234_5678, |_| true), None);
            // Drop every third entry, as a sweep does, and rebuild.
            model = model
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 3 != round % 3)
                .map(|(_, &h)| h)
                .collect();
            index.rebuild(model.iter().copied());
            assert_eq!(index.len, model.len());
        }
        index.rebuild(std::iter::empty());
        assert_eq!(index.slots.len(), MIN_SLOTS);
    }
}
