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

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn take<const N: usize>(&mut self) -> Result<[u8; N], zk_status> {
        let bytes = self
            .buf
            .get(self.at..)
            .and_then(|rest| rest.get(..N))
            .ok_or(zk_status::ZK_ERR_TRUNCATED)?;
        self.at += N;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    #[inline]
    fn int(&mut self) -> Result<i32, zk_status> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    #[inline]
    fn long(&mut self) -> Result<i64, zk_status> {
        self.take::<8>().map(i64::from_be_bytes)
    }

    /// jute's `ustring`: an int length, -1 for null, then that many UTF-8 bytes.
    #[inline]
    /// Checked to be UTF-8 (ASCII, the usual case, a word at a time).
    fn ustring(&mut self) -> Result<Option<&'a [u8]>, zk_status> {
        let len = self.int()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| zk_status::ZK_ERR_NEGATIVE_LENGTH)?;
        let rest = &self.buf[self.at..];
        let bytes = rest
            .get(..len)
            .ok_or(zk_status::ZK_ERR_LENGTH_EXCEEDS_INPUT)?;
        if !bytes.is_ascii() {
            std::str::from_utf8(bytes).map_err(|_| zk_status::ZK_ERR_INVALID_UTF8)?;
        }
        self.at += len;
        Ok(Some(bytes))
    }
}

impl<'a> WireEvent<'a> {
    /// The path as a string slice.
    pub fn path_str(&self) -> Option<&'a str> {
        self.path
            .map(|p| std::str::from_utf8(p).expect("decoding checked the path is UTF-8"))
    }

    #[inline]
    fn read(r: &mut Reader<'a>, zxid: i64) -> Result<WireEvent<'a>, zk_status> {
        let event_type = r.int()?;
        let state = r.int()?;
        let path = r.ustring()?;
        Ok(WireEvent {
            event_type: zk_event_type::from_wire(event_type)?,
            state: zk_keeper_state::from_wire(state)?,
            path,
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
        Self::read(&mut Reader { buf, at: 0 }, ZK_ZXID_UNKNOWN)
    }

    /// Decodes a whole server notification: a reply header (int xid, which must
    /// be -1; long zxid; int err, ignored as kazoo ignores it) followed by a
    /// `WatcherEvent`. `buf` starts after the 4-byte frame length.
    pub fn decode_notification(buf: &'a [u8]) -> Result<WireEvent<'a>, zk_status> {
        let mut r = Reader { buf, at: 0 };
        let xid = r.int()?;
        let zxid = r.long()?;
        let _err = r.int()?;
        if xid != ZK_WATCH_XID {
            return Err(zk_status::ZK_ERR_NOT_A_NOTIFICATION);
        }
        Self::read(&mut r, zxid)
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
