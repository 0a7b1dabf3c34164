//! The jute wire codec for watch notifications: a `WatcherEvent` (int type,
//! int state, ustring path) and the server notification that carries one
//! (a reply header with xid -1, then the event).

use crate::event::{zk_event_type, ZK_ZXID_UNKNOWN};
use crate::state::zk_keeper_state;
use crate::status::zk_status;

/// The xid of a reply header that carries a watch notification.
pub const ZK_WATCH_XID: i32 = -1;

/// A decoded watch event borrowing its path from the input buffer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WireEvent<'a> {
    /// The event type.
    pub event_type: zk_event_type,
    /// The wire keeper state, converted through the wire table.
    pub state: zk_keeper_state,
    /// The path; `None` for jute's null string (length -1).
    /// Always valid UTF-8 (checked while decoding); see [`WireEvent::path_str`].
    pub path: Option<&'a [u8]>,
    /// The notification's zxid, or `ZK_ZXID_UNKNOWN`.
    pub zxid: i64,
}

/// The fixed part of a `WatcherEvent`: int type, int state, int path length.
const EVENT_HEAD: usize = 12;
/// The reply header before a notification's event: int xid, long zxid, int err.
const REPLY_HEADER: usize = 16;
/// The longest path the decoders check without a loop.
const SHORT_PATH: usize = 16;

/// The high bit of every byte of a word.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether `bytes` (at least 8 of them) are ASCII: 8-byte words ORed together
/// (the last word overlapping the others), no early exit.
#[inline(always)]
fn words_are_ascii(bytes: &[u8]) -> bool {
    let mut acc = bytes
        .last_chunk::<8>()
        .map_or(0, |w| u64::from_ne_bytes(*w));
    for word in bytes.chunks_exact(8) {
        acc |= u64::from_ne_bytes(word.try_into().expect("8 bytes"));
    }
    acc & HIGH_BITS == 0
}

/// The type and state of an event whose type code `t` and state code `s`
/// are both 0 to 7, at `t * 8 + s`: as `zk_event_type::from_wire` and
/// `zk_keeper_state::from_wire` give them, `None` where either is an error.
const NODE_EVENTS: [Option<(zk_event_type, zk_keeper_state)>; 64] = {
    let mut table = [None; 64];
    let mut i = 0;
    while i < 64 {
        // For codes 0 to 7, `from_code` is `from_wire` (only NOT_WATCHING,
        // -2, differs).
        let t = zk_event_type::from_code((i / 8) as i32);
        if let (Some(t), Some(s)) = (t, zk_keeper_state::WIRE_0_TO_7[i % 8]) {
            table[i] = Some((t, s));
        }
        i += 1;
    }
    table
};

/// The big-endian int at `at` in a header (the bounds are checked at compile time).
#[inline(always)]
fn be_i32<const N: usize>(header: &[u8; N], at: usize) -> i32 {
    i32::from_be_bytes(*header[at..].first_chunk::<4>().expect("within the header"))
}

impl<'a> WireEvent<'a> {
    /// The path as a string slice.
    pub fn path_str(&self) -> Option<&'a str> {
        self.path
            .map(|p| std::str::from_utf8(p).expect("decoding checked the path is UTF-8"))
    }

    /// Reads a `WatcherEvent` at fixed offsets, no cursor. Checks, in this
    /// order: the 12-byte head, the path length (-1 is null), the path bytes,
    /// UTF-8, the type, the state.
    #[inline]
    fn read(buf: &'a [u8], zxid: i64) -> Result<WireEvent<'a>, zk_status> {
        let (head, rest) = buf
            .split_first_chunk::<EVENT_HEAD>()
            .ok_or(zk_status::ZK_ERR_TRUNCATED)?;
        let path = match be_i32(head, 8) {
            -1 => None,
            len => {
                // A negative length fails the conversion, one past the end the `get`.
                let len = usize::try_from(len).map_err(|_| zk_status::ZK_ERR_NEGATIVE_LENGTH)?;
                let path = rest
                    .get(..len)
                    .ok_or(zk_status::ZK_ERR_LENGTH_EXCEEDS_INPUT)?;
                if !path.is_ascii() && std::str::from_utf8(path).is_err() {
                    return Err(zk_status::ZK_ERR_INVALID_UTF8);
                }
                Some(path)
            }
        };
        Ok(WireEvent {
            event_type: zk_event_type::from_wire(be_i32(head, 0))?,
            state: zk_keeper_state::from_wire(be_i32(head, 4))?,
            path,
            zxid,
        })
    }

    /// [`WireEvent::read`] for the common case only: a server notification's
    /// event (type 1 to 7, state 0 to 7) with an ASCII path. `None` for
    /// anything else (a null or non-ASCII path, a session event, any
    /// error...), which [`WireEvent::read`] then decodes; where it gives a
    /// result, it is `read`'s. Code that calls nothing and has one way out
    /// for every "anything else"; straight-line for paths of at most 16 bytes.
    #[inline(always)]
    fn read_short(buf: &'a [u8], zxid: i64) -> Option<WireEvent<'a>> {
        let (head, _) = buf.split_first_chunk::<EVENT_HEAD>()?;
        // As unsigned, -1 (null) and every negative length are past the end.
        let len = be_i32(head, 8) as u32 as usize;
        let event = buf.get(..EVENT_HEAD + len)?;
        let ascii = if len <= SHORT_PATH {
            // The last 16 bytes of the event (or all 12 to 16 of them), as
            // two possibly overlapping words: the whole path, and before it
            // bytes of the head, whose high bits are clear too for a type 1
            // to 7, a state 0 to 7 and a length of at most 16.
            let a = event[len.saturating_sub(4)..].first_chunk::<8>()?;
            let b = event.last_chunk::<8>()?;
            (u64::from_ne_bytes(*a) | u64::from_ne_bytes(*b)) & HIGH_BITS == 0
        } else {
            words_are_ascii(&event[EVENT_HEAD..])
        };
        if !ascii {
            return None;
        }
        // Type and state at once: both 0 to 7 (every other bit clear), then
        // one table lookup.
        let codes = u64::from_be_bytes(*head.first_chunk::<8>().expect("12 = 8 + 4"));
        if codes & !0x0000_0007_0000_0007 != 0 {
            return None;
        }
        let (event_type, state) = NODE_EVENTS[((codes >> 29 | codes) & 63) as usize]?;
        Some(WireEvent {
            event_type,
            state,
            path: Some(&event[EVENT_HEAD..]),
            zxid,
        })
    }

    /// Decodes a jute `WatcherEvent` at the start of `buf`, as kazoo's
    /// `Watch.deserialize` reads it; trailing bytes are ignored. `zxid` is
    /// `ZK_ZXID_UNKNOWN`.
    ///
    /// Stricter than kazoo where kazoo would silently misread: an unknown type
    /// or state code, a short buffer, a negative length other than -1, a length
    /// past the end, or a path that is not UTF-8 is an error.
    pub fn decode(buf: &'a [u8]) -> Result<WireEvent<'a>, zk_status> {
        Self::read(buf, ZK_ZXID_UNKNOWN)
    }

    /// [`WireEvent::decode`] for the common case only (see
    /// [`WireEvent::read_short`]): `None` means "call `decode`", not an error.
    /// For the C entry points to inline.
    #[inline(always)]
    pub(crate) fn decode_short(buf: &'a [u8]) -> Option<WireEvent<'a>> {
        Self::read_short(buf, ZK_ZXID_UNKNOWN)
    }

    /// Decodes a whole server notification: a reply header (int xid, which must
    /// be -1; long zxid; int err, ignored as kazoo ignores it) followed by a
    /// `WatcherEvent`. `buf` starts after the 4-byte frame length.
    pub fn decode_notification(buf: &'a [u8]) -> Result<WireEvent<'a>, zk_status> {
        let (zxid, event) = Self::reply_header(buf).ok_or(zk_status::ZK_ERR_TRUNCATED)?;
        let zxid = zxid.ok_or(zk_status::ZK_ERR_NOT_A_NOTIFICATION)?;
        Self::read(event, zxid)
    }

    /// [`WireEvent::decode_notification`] for the common case only, as
    /// [`WireEvent::decode_short`].
    #[inline(always)]
    pub(crate) fn decode_notification_short(buf: &'a [u8]) -> Option<WireEvent<'a>> {
        let (zxid, event) = Self::reply_header(buf)?;
        Self::read_short(event, zxid?)
    }

    /// A notification's reply header: `None` if `buf` is too short for it,
    /// else the zxid (`None` if the xid is not -1) and the bytes after it.
    #[inline(always)]
    fn reply_header(buf: &'a [u8]) -> Option<(Option<i64>, &'a [u8])> {
        let (header, event) = buf.split_first_chunk::<REPLY_HEADER>()?;
        let zxid = i64::from_be_bytes(*header[4..].first_chunk::<8>().expect("16 = 4 + 8 + 4"));
        Some(((be_i32(header, 0) == ZK_WATCH_XID).then_some(zxid), event))
    }
}

/// Encodes a `WatcherEvent` from raw codes (for tests, fuzzing and peers that
/// speak the protocol): type, state, then the path as a jute ustring
/// (`None` as length -1).
pub fn encode_watcher_event(event_type: i32, state: i32, path: Option<&[u8]>, out: &mut Vec<u8>) {
    out.extend_from_slice(&event_type.to_be_bytes());
    out.extend_from_slice(&state.to_be_bytes());
    match path {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(p) => {
            let len = i32::try_from(p.len()).expect("jute strings are shorter than 2 GiB");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: i32, s: i32, p: Option<&[u8]>) -> Vec<u8> {
        let mut v = Vec::new();
        encode_watcher_event(t, s, p, &mut v);
        v
    }

    #[test]
    fn decodes_a_watcher_event() {
        let buf = event(1, 3, Some(b"/a/b"));
        let e = WireEvent::decode(&buf).unwrap();
        assert_eq!(e.event_type, zk_event_type::Created);
        assert_eq!(e.state, zk_keeper_state::Connected);
        assert_eq!(e.path_str(), Some("/a/b"));
        assert_eq!(e.zxid, ZK_ZXID_UNKNOWN);
        // trailing bytes ignored
        let mut longer = buf.clone();
        longer.extend_from_slice(b"xyz");
        assert_eq!(WireEvent::decode(&longer).unwrap(), e);
    }

    #[test]
    fn null_and_empty_paths() {
        assert_eq!(WireEvent::decode(&event(-1, 0, None)).unwrap().path, None);
        assert_eq!(
            WireEvent::decode(&event(-1, 0, Some(b"")))
                .unwrap()
                .path_str(),
            Some("")
        );
    }

    #[test]
    fn errors() {
        use zk_status::*;
        let good = event(2, 3, Some(b"/x"));
        for n in 0..12 {
            assert_eq!(
                WireEvent::decode(&good[..n]),
                Err(ZK_ERR_TRUNCATED),
                "len {n}"
            );
        }
        assert_eq!(
            WireEvent::decode(&good[..13]),
            Err(ZK_ERR_LENGTH_EXCEEDS_INPUT)
        );
        assert_eq!(
            WireEvent::decode(&event(9, 3, None)),
            Err(ZK_ERR_INVALID_EVENT_TYPE)
        );
        assert_eq!(
            WireEvent::decode(&event(-2, 3, None)),
            Err(ZK_ERR_INVALID_EVENT_TYPE)
        );
        assert_eq!(
            WireEvent::decode(&event(1, 2, None)),
            Err(ZK_ERR_INVALID_KEEPER_STATE)
        );
        assert_eq!(
            WireEvent::decode(&event(1, 3, Some(b"/\xff"))),
            Err(ZK_ERR_INVALID_UTF8)
        );
        let mut neg = event(1, 3, None);
        neg[8..12].copy_from_slice(&(-2i32).to_be_bytes());
        assert_eq!(WireEvent::decode(&neg), Err(ZK_ERR_NEGATIVE_LENGTH));
        neg[8..12].copy_from_slice(&i32::MIN.to_be_bytes());
        assert_eq!(WireEvent::decode(&neg), Err(ZK_ERR_NEGATIVE_LENGTH));
        neg[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(WireEvent::decode(&neg), Err(ZK_ERR_LENGTH_EXCEEDS_INPUT));
    }

    /// The straight-line path (at most 16 ASCII bytes) and the general one
    /// agree, whatever the length and wherever a non-ASCII byte is.
    #[test]
    fn every_length_and_non_ascii_position() {
        for len in 0..=40usize {
            let ascii: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let buf = event(3, 3, Some(&ascii));
            let e = WireEvent::decode(&buf).unwrap();
            assert_eq!(e.path, Some(&ascii[..]));
            assert_eq!(WireEvent::decode_short(&buf), Some(e), "len {len}");
            for at in 0..len {
                // A lone continuation byte, a bare lead byte, DEL (ASCII).
                for (b, ok) in [(0x80u8, false), (0xc3, false), (0xff, false), (0x7f, true)] {
                    let mut p = ascii.clone();
                    p[at] = b;
                    let buf = event(3, 3, Some(&p));
                    let r = WireEvent::decode(&buf);
                    if ok {
                        assert_eq!(r.unwrap().path, Some(&p[..]));
                    } else {
                        assert_eq!(r, Err(zk_status::ZK_ERR_INVALID_UTF8), "len {len} at {at}");
                        assert_eq!(WireEvent::decode_short(&buf), None);
                    }
                }
                if at + 2 <= len {
                    // "é" (C3 A9): valid UTF-8, not ASCII.
                    let mut p = ascii.clone();
                    p[at..at + 2].copy_from_slice("é".as_bytes());
                    let buf = event(3, 3, Some(&p));
                    assert_eq!(
                        WireEvent::decode(&buf).unwrap().path_str(),
                        std::str::from_utf8(&p).ok()
                    );
                    let mut n = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0];
                    n.extend_from_slice(&buf);
                    let e = WireEvent::decode_notification(&n).unwrap();
                    assert_eq!((e.zxid, e.path), (9, Some(&p[..])));
                }
            }
        }
        // Errors take precedence in the same order on both paths: the path
        // before the type and the state.
        for len in [10usize, 20] {
            let mut p = vec![b'x'; len];
            p[len - 1] = 0x80;
            assert_eq!(
                WireEvent::decode(&event(9, 2, Some(&p))),
                Err(zk_status::ZK_ERR_INVALID_UTF8)
            );
            let p = vec![b'x'; len];
            assert_eq!(
                WireEvent::decode(&event(9, 2, Some(&p))),
                Err(zk_status::ZK_ERR_INVALID_EVENT_TYPE)
            );
            assert_eq!(
                WireEvent::decode(&event(1, 2, Some(&p))),
                Err(zk_status::ZK_ERR_INVALID_KEEPER_STATE)
            );
        }
    }

    /// Wherever the straight-line decoders give a result, it is the general
    /// decoders' result; and they give one for every node event with a short
    /// ASCII path.
    #[test]
    fn short_decoders_agree_with_general_ones() {
        let paths: [&[u8]; 10] = [
            b"",
            b"/",
            b"/ab",
            b"/abc",
            b"/app/n-001",
            b"/0123456789abcde",
            b"/\x7f",
            b"/\xc3\xa9",
            b"/app/svc17/sh0/g1/g3/999999",
            b"/app/svc17/sh0/g1/g3/\xc3\xa9/999999",
        ];
        let mut checked = 0;
        for t in [-3, -2, -1, 0, 1, 2, 4, 7, 8, 0x100, i32::MIN] {
            for s in [-113, -112, -1, 0, 1, 2, 3, 6, 7, 8, 0x300] {
                for path in paths.iter().map(|p| Some(*p)).chain([None]) {
                    let full = event(t, s, path);
                    for cut in 0..=full.len() + 2 {
                        let mut buf = full.clone();
                        buf.resize(cut, b'z');
                        let mut n =
                            vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0, 0];
                        n.extend_from_slice(&buf);
                        if let Some(e) = WireEvent::decode_short(&buf) {
                            assert_eq!(Ok(e), WireEvent::decode(&buf));
                            checked += 1;
                        }
                        if let Some(e) = WireEvent::decode_notification_short(&n) {
                            assert_eq!(Ok(e), WireEvent::decode_notification(&n));
                        }
                        let common = (1..=7).contains(&t) && (0..=7).contains(&s) && s != 2;
                        let short = path.is_some_and(|p| p.is_ascii());
                        if common && short && cut >= full.len() {
                            assert!(WireEvent::decode_short(&buf).is_some(), "{t} {s} {path:?}");
                            assert!(WireEvent::decode_notification_short(&n).is_some());
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 5 * 8 * 3); // types, states, paths, lengths
    }

    #[test]
    fn notification() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&(-1i32).to_be_bytes());
        buf.extend_from_slice(&0x1_0000_0005i64.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&event(4, 3, Some(b"/p")));
        let e = WireEvent::decode_notification(&buf).unwrap();
        assert_eq!(e.zxid, 0x1_0000_0005);
        assert_eq!(e.event_type, zk_event_type::Child);
        assert_eq!(e.path_str(), Some("/p"));
        buf[3] = 7;
        assert_eq!(
            WireEvent::decode_notification(&buf),
            Err(zk_status::ZK_ERR_NOT_A_NOTIFICATION)
        );
        assert_eq!(
            WireEvent::decode_notification(&buf[..15]),
            Err(zk_status::ZK_ERR_TRUNCATED)
        );
    }
}
