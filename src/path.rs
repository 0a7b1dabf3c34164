//! ZooKeeper path rules: validation (as the Java client's `PathUtils`), chroot
//! stripping on a `/` boundary, and the walk from a path up to the root.

use crate::simd;
use crate::status::{zk_status, Result};

/// Checks a znode path as ZooKeeper's `PathUtils.validatePath` does: absolute,
/// no trailing `/` (except the root), no empty, `.` or `..` component, no
/// control, private-use or non-character code points, and nothing beyond the
/// Basic Multilingual Plane (Java sees those as surrogates, which it rejects).
#[inline]
pub fn validate(path: &str) -> Result<()> {
    // The common case (8 to 63 plain bytes) inline, the others out of line.
    let valid = match vector_check(path.as_bytes()) {
        Some(valid) => valid,
        None => validate_other(path),
    };
    if valid {
        Ok(())
    } else {
        Err(zk_status::ZK_ERR_INVALID_PATH)
    }
}

/// `validate` for the paths `vector_check` leaves.
#[inline(never)]
fn validate_other(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    if bytes.len() == 1 {
        return true;
    }
    match quick_check(bytes) {
        Some(valid) => valid,
        None => byte_check(bytes) && (bytes.is_ascii() || !path.chars().any(bad_char)),
    }
}

/// Code points `PathUtils` rejects (beyond ASCII control bytes); anything
/// above the BMP is a surrogate pair to Java, which it rejects too.
fn bad_char(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// 0x80 in each byte of `w` equal to `b`, 0 elsewhere (exact, no carries
/// between bytes).
fn bytes_equal(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    !(((x & !HIGH).wrapping_add(!HIGH)) | x | !HIGH)
}

/// 0x80 in each byte of `w` below `n` (for ASCII bytes of `w`, `n <= 0x80`).
fn bytes_below(w: u64, n: u8) -> u64 {
    !((w & !HIGH).wrapping_add(ONES * u64::from(0x80 - n))) & !w & HIGH
}

/// Validates a path of 8 to 63 bytes from its byte classes (`simd`): the
/// answer for paths without control or non-ASCII bytes, `None` otherwise
/// (and for other lengths, and on other architectures).
#[inline]
fn vector_check(bytes: &[u8]) -> Option<bool> {
    let c = simd::path_classes(bytes)?;
    if c.odd != 0 {
        return None;
    }
    let n = bytes.len();
    let s = c.slashes;
    // Slashes and the end: what may follow a component.
    let ends = s | (1 << n);
    // Not absolute; a slash then a dot; a slash then `.` then the end of
    // the component; the same with `..`; two slashes in a row, or a slash
    // at the end.
    let relative = !s & 1;
    let dot_after = s & (c.dots >> 1);
    let dot = dot_after & (ends >> 2);
    let dot_dot = dot_after & (c.dots >> 2) & (ends >> 3);
    let empty = (s & (s >> 1)) | (s >> (n - 1));
    Some((relative | dot | dot_dot | empty) == 0)
}

/// Validates an absolute path longer than `/` eight bytes at a time: the
/// answer for ASCII paths without a `.`, `None` (ask `byte_check`) otherwise.
fn quick_check(bytes: &[u8]) -> Option<bool> {
    let n = bytes.len();
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    // Whether the byte before the word is a slash (false where that pair
    // was checked already).
    let mut slash_before = false;
    let check = |w: u64, slash_before: &mut bool| -> Option<bool> {
        if w & HIGH != 0 || bytes_equal(w, b'.') != 0 {
            return None;
        }
        if bytes_below(w, 0x20) | bytes_equal(w, 0x7f) != 0 {
            return Some(false);
        }
        let slashes = bytes_equal(w, b'/');
        // Two slashes in a row: an empty component.
        if slashes & (slashes << 8) != 0 || (*slash_before && slashes & 0x80 != 0) {
            return Some(false);
        }
        *slash_before = slashes >> 63 != 0;
        Some(true)
    };
    if n < 8 {
        // Padded with ordinary bytes.
        let mut w = [b'a'; 8];
        w[..n].copy_from_slice(bytes);
        if !check(u64::from_le_bytes(w), &mut slash_before)? {
            return Some(false);
        }
    } else {
        let mut at = 0;
        while at + 8 <= n {
            if !check(word(at), &mut slash_before)? {
                return Some(false);
            }
            at += 8;
        }
        if at < n {
            // The last eight bytes, overlapping the previous word: the pairs
            // across its start lie in that word and were checked there.
            slash_before = false;
            if !check(word(n - 8), &mut slash_before)? {
                return Some(false);
            }
        }
    }
    Some(bytes[n - 1] != b'/')
}

/// Validates an absolute path longer than `/` byte by byte: components
/// neither empty, `.` nor `..`, no ASCII control byte (other code points are
/// the caller's).
fn byte_check(bytes: &[u8]) -> bool {
    let mut len = 0usize; // bytes in the current component
    let mut dots = true; // the component so far is only dots
    for &b in &bytes[1..] {
        if b == b'/' {
            if len == 0 || (dots && len <= 2) {
                return false;
            }
            len = 0;
            dots = true;
        } else {
            if b < 0x20 || b == 0x7f {
                return false;
            }
            dots &= b == b'.';
            len += 1;
        }
    }
    !(len == 0 || (dots && len <= 2))
}

/// Strips `chroot` from a server path on a `/` boundary: the chroot itself
/// becomes `/`; a path outside the chroot gives `None` (kazoo's prefix strip
/// would turn `/application` under `/app` into `lication`).
pub fn unchroot<'a>(chroot: Option<&str>, path: &'a str) -> Option<&'a str> {
    let Some(chroot) = chroot else {
        return Some(path);
    };
    let rest = path.strip_prefix(chroot)?;
    if rest.is_empty() {
        Some("/")
    } else if rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

/// The path itself, then each ancestor up to and including `/` (ZooKeeper's
/// `PathParentIterator.forAll`): `/a/b` gives `/a/b`, `/a`, `/`.
pub fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.rfind('/') {
            _ if current == "/" => None,
            Some(0) => Some("/"),
            Some(at) => Some(&current[..at]),
            None => None,
        };
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector check agrees with the byte loop wherever it answers, and
    /// answers every path of 8 to 63 bytes without control or non-ASCII
    /// bytes (on x86_64): every string of `/`, `.` and `a` of 8 to 12 bytes
    /// after a `/`, alone and after a 13-byte component (so that the
    /// components cross the 16-byte loads), then random paths up to 80 bytes.
    #[test]
    fn vector_check_agrees_with_byte_check() {
        let vector = cfg!(target_arch = "x86_64");
        let check = |p: &[u8]| {
            let plain = (8..64).contains(&p.len()) && p.iter().all(|&b| (0x20..0x7f).contains(&b));
            match vector_check(p) {
                Some(answer) => assert_eq!(
                    answer,
                    p[0] == b'/' && byte_check(p),
                    "{:?}",
                    String::from_utf8_lossy(p)
                ),
                None => assert!(!(vector && plain), "{:?}", String::from_utf8_lossy(p)),
            }
        };
        let mut valid = 0;
        for len in 7..=11 {
            for mut k in 0..3usize.pow(len) {
                let mut p = vec![b'/'];
                for _ in 0..len {
                    p.push([b'/', b'.', b'a'][k % 3]);
                    k /= 3;
                }
                check(&p);
                valid += usize::from(byte_check(&p));
                let mut q = b"/abcdefghijkl".to_vec();
                q.extend_from_slice(&p);
                check(&q);
            }
        }
        assert!(valid > 10_000, "{valid}");
        let alphabet: &[u8] = &[
            b'/', b'/', b'.', b'.', b'a', b'~', 0x00, 0x1f, 0x7f, 0x80, 0xc3,
        ];
        let mut next = crate::dispatch::xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..100_000 {
            let rng = next();
            let len = (rng % 80) as usize;
            // Now and then not absolute.
            let mut p = vec![if rng % 16 == 0 { b'a' } else { b'/' }];
            let mut r = rng;
            for _ in 0..len {
                p.push(alphabet[(r % alphabet.len() as u64) as usize]);
                r = r.rotate_right(5).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            }
            check(&p);
        }
    }

    /// The word-at-a-time check agrees with the byte loop wherever it answers.
    #[test]
    fn quick_check_agrees_with_byte_check() {
        // Mostly ASCII; a dot or a byte above 0x7f now and then.
        let alphabet: &[u8] = &[
            b'/', b'/', b'/', b'a', b'z', b'-', b'0', b'~', 0x00, 0x01, 0x1f, 0x20, 0x7e, 0x7f,
            b'a', b'b', b'c', b'd', b'e', b'f', b'.', 0x80, 0xc3, 0xff,
        ];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let (mut answered, mut valid) = (0, 0);
        for _ in 0..200_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let len = 1 + (rng % 40) as usize;
            let mut p = vec![b'/'];
            let mut r = rng;
            for _ in 0..len {
                p.push(alphabet[(r % alphabet.len() as u64) as usize]);
                r = r.rotate_right(5).wrapping_mul(0x2545_f491_4f6c_dd1d);
            }
            // A dot or a non-ASCII byte needs the full check, unless the
            // path is invalid anyway; plain ASCII is always answered.
            let odd = p.iter().any(|&b| b == b'.' || !b.is_ascii());
            match quick_check(&p) {
                Some(true) => assert!(!odd, "{p:?}"),
                None => assert!(odd, "{p:?}"),
                Some(false) => {}
            }
            if let Some(quick) = quick_check(&p) {
                answered += 1;
                valid += usize::from(quick);
                assert_eq!(quick, byte_check(&p), "{p:?}");
            }
        }
        assert!(answered > 10_000 && valid > 1_000, "{answered} {valid}");
    }

    #[test]
    fn validation_follows_path_utils() {
        for ok in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/..a",
            "/a/...",
            "/zookeeper",
            "/é/ü",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        for bad in [
            "/\u{1F600}",
            "",
            "a",
            "a/b",
            "/a/",
            "//",
            "/a//b",
            // Slash pairs across the 8-byte words of the quick check.
            "/abcdef//ghijklm",
            "/abcdefghijklmn//abcdefghijklmn",
            "/abcdefghijklmn/x/",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{e000}",
            "/\u{ffff}",
            "/x\u{85}",
        ] {
            assert_eq!(
                validate(bad),
                Err(zk_status::ZK_ERR_INVALID_PATH),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn chroot_strips_on_slash_boundary() {
        assert_eq!(unchroot(None, "/app/x"), Some("/app/x"));
        assert_eq!(unchroot(Some("/app"), "/app"), Some("/"));
        assert_eq!(unchroot(Some("/app"), "/app/x/y"), Some("/x/y"));
        assert_eq!(unchroot(Some("/app"), "/application"), None);
        assert_eq!(unchroot(Some("/app"), "/other"), None);
        assert_eq!(unchroot(Some("/a/b"), "/a/b/c"), Some("/c"));
    }

    #[test]
    fn ancestors() {
        let all = |p| self_and_ancestors(p).collect::<Vec<_>>();
        assert_eq!(all("/"), ["/"]);
        assert_eq!(all("/a"), ["/a", "/"]);
        assert_eq!(all("/a/b/c"), ["/a/b/c", "/a/b", "/a", "/"]);
    }
}
