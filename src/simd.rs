//! SSE2 byte classes for path validation, 16 bytes at a time
//! (`path::validate` runs for every event and registration on a path the
//! registry does not hold, and took a fifth of the feeder's instructions a
//! word at a time). The second `unsafe` outside `ffi`: the vector loads
//! read through raw pointers. Only the classes are computed here; `path`
//! applies ZooKeeper's rules to them.

/// One bit per path byte (bit `i` for byte `i`) of a path of 8 to 63 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PathClasses {
    /// Bytes below 0x20 (controls), 0x7f (DEL) and above 0x7f (non-ASCII).
    pub odd: u64,
    /// `/` bytes.
    pub slashes: u64,
    /// `.` bytes.
    pub dots: u64,
}

/// The longest path (exclusive) `path_classes` takes: its bits and the end
/// marker `1 << len` fit in a `u64`.
pub(crate) const CLASSES_MAX: usize = 64;

/// The byte classes of `bytes` when it is 8 to 63 bytes long (`None`
/// otherwise, and on other architectures).
#[cfg(target_arch = "x86_64")]
pub(crate) fn path_classes(bytes: &[u8]) -> Option<PathClasses> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadl_epi64, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let n = bytes.len();
    if !(8..CLASSES_MAX).contains(&n) {
        return None;
    }
    let p = bytes.as_ptr();
    let mut c = PathClasses {
        odd: 0,
        slashes: 0,
        dots: 0,
    };
    // SAFETY: SSE2 is part of x86_64. Every load reads inside `bytes`: 16
    // bytes at `at` with `at + 16 <= n`, or 8 bytes at `at` with
    // `at + 8 <= n`; both loads take unaligned addresses.
    unsafe {
        // Bytes at `at..at + width` (the lanes beyond `width` are ignored).
        let mut put = |v: __m128i, at: usize, width: u32| {
            let keep = (1u64 << width) - 1;
            // Signed: bytes above 0x7f are negative, so "below 0x20" takes
            // them too.
            let odd = _mm_or_si128(
                _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
            );
            let bits = |m: __m128i| (_mm_movemask_epi8(m) as u32 as u64 & keep) << at;
            c.odd |= bits(odd);
            c.slashes |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'/' as i8)));
            c.dots |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8)));
        };
        if n < 16 {
            // Two overlapping halves: the overlap sets the same bits twice.
            put(_mm_loadl_epi64(p.cast()), 0, 8);
            put(_mm_loadl_epi64(p.add(n - 8).cast()), n - 8, 8);
        } else {
            let mut at = 0;
            while at + 16 < n {
                put(_mm_loadu_si128(p.add(at).cast()), at, 16);
                at += 16;
            }
            // The last 16 bytes, overlapping the previous load.
            put(_mm_loadu_si128(p.add(n - 16).cast()), n - 16, 16);
        }
    }
    Some(c)
}

/// No vector classes on other architectures (`path` checks a word at a time).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn path_classes(_bytes: &[u8]) -> Option<PathClasses> {
    None
}
