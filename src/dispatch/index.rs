//! The path index: a seeded path hash, and the open-addressing table that
//! places the registry's path entries in buckets.
//!
//! The registry keeps its path entries in a bucket array, each entry in the
//! bucket this table gives it, so that finding a path costs one read of its
//! entry. The table itself is one tag byte per bucket (0: empty, else a byte
//! of the path's hash): a million paths take about 1.5 MB of tags, small
//! enough to stay in cache, so a lookup of an absent path (the common case
//! when walking ancestors) reads only tags, and a lookup of a present one
//! reads tags and then its entry, whose bucket is usually the one the hash
//! points at (`home`), so it can be read before the tags are.
//!
//! Buckets are found by linear probing from `home`, which maps the 32-bit
//! hash onto any bucket count (multiply and shift), so the registry can size
//! the table to its paths rather than to a power of two. Paths are only ever
//! added one at a time; removals happen in bulk, by the registry building a
//! new table.

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

    /// Appends `(hash, length)` of `/`, of each ancestor, then of the path
    /// itself (for a validated absolute path), in that order.
    pub(super) fn prefixes(self, path: &[u8], out: &mut Vec<(u32, usize)>) {
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

/// A byte of the hash that is never 0 (0 marks an empty bucket). The low
/// byte: `home` depends on the high bits.
fn tag(hash: u32) -> u8 {
    (hash as u8).max(1)
}

/// Path hash -> bucket, for a bucket array of the same length (at least one
/// bucket always empty: the registry keeps the table at most 4/5 full).
pub(super) struct PathIndex {
    tags: Vec<u8>,
}

impl PathIndex {
    /// An empty table of `buckets` buckets (at least 1).
    pub(super) fn with_buckets(buckets: usize) -> Self {
        debug_assert!(buckets > 0);
        let mut tags = Vec::with_capacity(buckets);
        // Read at random, like the entries (see `hint::advise_huge`).
        crate::hint::advise_huge(tags.spare_capacity_mut());
        tags.resize(buckets, 0);
        PathIndex { tags }
    }

    /// The number of buckets.
    pub(super) fn buckets(&self) -> usize {
        self.tags.len()
    }

    /// The bucket where a lookup of `hash` starts, and where the path lives
    /// unless another took it first.
    pub(super) fn home(&self, hash: u32) -> usize {
        ((u64::from(hash) * self.tags.len() as u64) >> 32) as usize
    }

    /// Asks the cache for the tag `touch` reads, without waiting for it.
    pub(super) fn prefetch(&self, hash: u32) {
        crate::hint::prefetch(&self.tags[self.home(hash)]);
    }

    /// Reads the first tag a lookup of `hash` reads. Issuing these reads for
    /// several paths before looking any of them up lets their cache misses
    /// overlap.
    pub(super) fn touch(&self, hash: u32) -> u8 {
        self.tags[self.home(hash)]
    }

    /// The first bucket from `home` whose tag is this hash's (or the empty
    /// bucket that ends the search): where a lookup most likely reads an
    /// entry. Found from the tags alone.
    pub(super) fn likely(&self, hash: u32) -> usize {
        let want = tag(hash);
        let mut i = self.home(hash);
        loop {
            let t = self.tags[i];
            if t == 0 || t == want {
                return i;
            }
            i += 1;
            if i == self.tags.len() {
                i = 0;
            }
        }
    }

    /// Whether `bucket` holds a path whose hash may be `hash` (its tag).
    pub(super) fn holds(&self, bucket: u32, hash: u32) -> bool {
        self.tags[bucket as usize] == tag(hash)
    }

    /// The bucket holding a path with this hash for which `is` says yes.
    pub(super) fn find(&self, hash: u32, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        let want = tag(hash);
        let mut i = self.home(hash);
        loop {
            let t = self.tags[i];
            if t == 0 {
                return None;
            }
            if t == want && is(i as u32) {
                return Some(i as u32);
            }
            i += 1;
            if i == self.tags.len() {
                i = 0;
            }
        }
    }

    /// Takes an empty bucket for a path with this hash (not present yet) and
    /// returns it. The caller keeps a bucket empty (see the struct).
    pub(super) fn claim(&mut self, hash: u32) -> u32 {
        let mut i = self.home(hash);
        while self.tags[i] != 0 {
            i += 1;
            if i == self.tags.len() {
                i = 0;
            }
        }
        self.tags[i] = tag(hash);
        i as u32
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
            out.clear();
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

    /// Claims against a model, with hashes of few bits so that probe chains
    /// collide and wrap around the table's end, in tables filled to all but
    /// one bucket, of sizes that are not powers of two.
    #[test]
    fn index_matches_a_model() {
        let mut next = super::super::xorshift(0x2545_f491_4f6c_dd1d);
        for buckets in [1usize, 2, 7, 100, 1000, 4099] {
            let mut index = PathIndex::with_buckets(buckets);
            let mut model: Vec<(u32, u32)> = Vec::new(); // (hash, bucket)
            for _ in 0..buckets - 1 {
                let hash = (next() % 512) as u32 | ((next() % 4) as u32) << 30;
                let bucket = index.claim(hash);
                assert!((bucket as usize) < buckets);
                assert!(model.iter().all(|&(_, b)| b != bucket), "claimed twice");
                model.push((hash, bucket));
            }
            for &(hash, bucket) in &model {
                assert_eq!(index.find(hash, |b| b == bucket), Some(bucket), "{buckets}");
            }
            // An absent path: nothing matches, and the probe ends.
            assert_eq!(index.find(0x1234_5678, |_| false), None);
            assert_eq!(index.buckets(), buckets);
        }
    }
}
