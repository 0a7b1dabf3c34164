//! ZooKeeper path rules: validation (as the Java client's `PathUtils`), chroot
//! stripping on a `/` boundary, and the walk from a path up to the root.

use crate::status::{zk_status, Result};

/// Checks a znode path as ZooKeeper's `PathUtils.validatePath` does: absolute,
/// no trailing `/` (except the root), no empty, `.` or `..` component, no
/// control, private-use or non-character code points, and nothing beyond the
/// Basic Multilingual Plane (Java sees those as surrogates, which it rejects).
pub fn validate(path: &str) -> Result<()> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(zk_status::ZK_ERR_INVALID_PATH);
    }
    if bytes.len() == 1 {
        return Ok(());
    }
    // Branch-free over the bytes (the compiler vectorizes it): ASCII control
    // bytes; other code points are checked below, only for non-ASCII paths.
    let control = bytes
        .iter()
        .fold(false, |bad, &b| bad | (b < 0x20) | (b == 0x7f));
    // Each component (between slashes) must not be empty, "." or "..".
    let bad_component = bytes[1..]
        .split(|&b| b == b'/')
        .any(|c| c.is_empty() || c == b"." || c == b"..");
    if control || bad_component {
        return Err(zk_status::ZK_ERR_INVALID_PATH);
    }
    let bad = |c: char| matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..);
    if !bytes.is_ascii() && path.chars().any(bad) {
        return Err(zk_status::ZK_ERR_INVALID_PATH);
    }
    Ok(())
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
