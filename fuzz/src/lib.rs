//! Shared pieces of the zk-states fuzz targets: independent reference
//! decoders written from the header's documentation (not from the library's
//! code), and small helpers.
//!
//! The reference decoders answer with either the expected decoded value or
//! the *set* of statuses the documentation allows for the input: the header
//! lists every failure but not which one wins when several apply (a bad type
//! *and* a bad length), so any documented reason that applies is accepted,
//! and success is required exactly when no reason applies.

use zk_states::zk_status;

pub mod reference {
    use super::zk_status;

    /// `ZK_ERR_*` codes as plain integers.
    pub const OK: i32 = zk_status::ZK_OK as i32;
    pub const NULL_ARGUMENT: i32 = zk_status::ZK_ERR_NULL_ARGUMENT as i32;
    pub const TRUNCATED: i32 = zk_status::ZK_ERR_TRUNCATED as i32;
    pub const INVALID_EVENT_TYPE: i32 = zk_status::ZK_ERR_INVALID_EVENT_TYPE as i32;
    pub const INVALID_KEEPER_STATE: i32 = zk_status::ZK_ERR_INVALID_KEEPER_STATE as i32;
    pub const INVALID_UTF8: i32 = zk_status::ZK_ERR_INVALID_UTF8 as i32;
    pub const BUFFER_TOO_SMALL: i32 = zk_status::ZK_ERR_BUFFER_TOO_SMALL as i32;
    pub const NEGATIVE_LENGTH: i32 = zk_status::ZK_ERR_NEGATIVE_LENGTH as i32;
    pub const LENGTH_EXCEEDS_INPUT: i32 = zk_status::ZK_ERR_LENGTH_EXCEEDS_INPUT as i32;
    pub const NOT_A_NOTIFICATION: i32 = zk_status::ZK_ERR_NOT_A_NOTIFICATION as i32;
    pub const SIZE_TOO_LARGE: i32 = zk_status::ZK_ERR_SIZE_TOO_LARGE as i32;

    /// The wire event types the decoders accept: every `zk_event_type` but
    /// `ZK_EVENT_TYPE_NOT_WATCHING` (-2), "never sent".
    pub fn wire_event_type_ok(t: i32) -> bool {
        matches!(t, -1 | 1 | 2 | 3 | 4 | 5 | 6 | 7)
    }

    /// The header's `zk_keeper_state_from_wire()` table.
    pub fn wire_state(code: i32) -> Option<i32> {
        Some(match code {
            0 | 1 => 1,   // Disconnected, NoSyncConnected -> CONNECTING
            3 | 6 => 3,   // SyncConnected, SaslAuthenticated -> CONNECTED
            4 => 4,       // AuthFailed
            5 => 5,       // ConnectedReadOnly -> CONNECTED_RO
            7 => 7,       // Closed
            -112 => -112, // Expired -> EXPIRED_SESSION
            _ => return None,
        })
    }

    fn be_i32(b: &[u8], at: usize) -> Option<i32> {
        b.get(at..at + 4)
            .map(|s| i32::from_be_bytes(s.try_into().unwrap()))
    }

    fn be_i64(b: &[u8], at: usize) -> Option<i64> {
        b.get(at..at + 8)
            .map(|s| i64::from_be_bytes(s.try_into().unwrap()))
    }

    /// What a successful decode must produce. `path` is `(offset into the
    /// whole input, length)`, `None` for jute's null string.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Expected {
        pub event_type: i32,
        pub state: i32,
        pub path: Option<(usize, usize)>,
        pub zxid: i64,
    }

    /// A jute `WatcherEvent` starting at `start` of `input`: the expected
    /// value, or every documented failure that applies.
    pub fn watcher_event(input: &[u8], start: usize, zxid: i64) -> Result<Expected, Vec<i32>> {
        let b = &input[start.min(input.len())..];
        let mut errors = Vec::new();
        if b.len() < 12 {
            errors.push(TRUNCATED);
        }
        let t = be_i32(b, 0);
        let s = be_i32(b, 4);
        if let Some(t) = t {
            if !wire_event_type_ok(t) {
                errors.push(INVALID_EVENT_TYPE);
            }
        }
        if let Some(s) = s {
            if wire_state(s).is_none() {
                errors.push(INVALID_KEEPER_STATE);
            }
        }
        let mut path = None;
        if let Some(n) = be_i32(b, 8) {
            if n < -1 {
                errors.push(NEGATIVE_LENGTH);
            } else if n >= 0 {
                let n = n as usize;
                if n > b.len() - 12 {
                    errors.push(LENGTH_EXCEEDS_INPUT);
                } else if std::str::from_utf8(&b[12..12 + n]).is_err() {
                    errors.push(INVALID_UTF8);
                } else {
                    path = Some((start + 12, n));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Expected {
            event_type: t.unwrap(),
            state: wire_state(s.unwrap()).unwrap(),
            path,
            zxid,
        })
    }

    /// A server notification: reply header (xid -1, zxid, err) and an event.
    pub fn notification(input: &[u8]) -> Result<Expected, Vec<i32>> {
        let mut errors = Vec::new();
        if let Some(xid) = be_i32(input, 0) {
            if xid != -1 {
                errors.push(NOT_A_NOTIFICATION);
            }
        }
        if input.len() < 16 {
            errors.push(TRUNCATED);
            return Err(errors);
        }
        let zxid = be_i64(input, 4).unwrap();
        match watcher_event(input, 16, zxid) {
            Ok(e) if errors.is_empty() => Ok(e),
            Ok(_) => Err(errors),
            Err(mut more) => {
                errors.append(&mut more);
                Err(errors)
            }
        }
    }
}

pub mod decode_check {
    //! The checks shared by the two event-decoder targets.
    use super::reference::{self, Expected};
    use zk_states::zk_watched_event;

    pub type DecodeFn = unsafe extern "C" fn(*const u8, usize, *mut zk_watched_event) -> i32;

    /// An output no successful decode can produce, to prove `*out` is left
    /// alone on failure.
    fn sentinel() -> zk_watched_event {
        zk_watched_event {
            r#type: 0x5a5a_5a5a,
            state: -0x5a5a_5a5a,
            path: 0x1357usize as *const std::ffi::c_char,
            path_len: 0xdead_beef,
            zxid: 0x0123_4567_89ab_cdef,
        }
    }

    fn same(a: &zk_watched_event, b: &zk_watched_event) -> bool {
        a.r#type == b.r#type
            && a.state == b.state
            && a.path == b.path
            && a.path_len == b.path_len
            && a.zxid == b.zxid
    }

    /// Decodes `data` with `decode` and compares with `expected`.
    pub fn check(name: &str, decode: DecodeFn, data: &[u8], expected: Result<Expected, Vec<i32>>) {
        let mut out = sentinel();
        let status = unsafe { decode(data.as_ptr(), data.len(), &mut out) };
        match &expected {
            Err(allowed) => {
                assert!(
                    allowed.contains(&status),
                    "{name}: status {status} for {:02x?}; the documentation allows only {allowed:?}",
                    data
                );
                assert!(
                    same(&out, &sentinel()),
                    "{name}: *out written on failure {status}"
                );
            }
            Ok(e) => {
                assert_eq!(
                    status,
                    reference::OK,
                    "{name}: {:02x?} must decode, as {e:?}",
                    data
                );
                assert_eq!(out.r#type, e.event_type, "{name}: type");
                assert_eq!(out.state, e.state, "{name}: state");
                assert_eq!(out.zxid, e.zxid, "{name}: zxid");
                // Valid enum values, checked through the library's own name tables.
                assert!(!zk_states::ffi::core::zk_event_type_name(out.r#type).is_null());
                assert!(!zk_states::ffi::core::zk_keeper_state_name(out.state).is_null());
                match e.path {
                    None => {
                        assert!(
                            out.path.is_null(),
                            "{name}: null string must give path NULL"
                        );
                        assert_eq!(out.path_len, 0, "{name}: null string must give path_len 0");
                    }
                    Some((offset, len)) => {
                        let base = data.as_ptr() as usize;
                        let p = out.path as usize;
                        // A view into the input, exactly where the string is.
                        assert!(
                            p >= base && p + out.path_len <= base + data.len(),
                            "{name}: path outside the buffer"
                        );
                        assert_eq!(p - base, offset, "{name}: path offset");
                        assert_eq!(out.path_len, len, "{name}: path_len");
                        let bytes = unsafe {
                            std::slice::from_raw_parts(out.path.cast::<u8>(), out.path_len)
                        };
                        assert!(std::str::from_utf8(bytes).is_ok(), "{name}: path not UTF-8");
                    }
                }
            }
        }
        // NULL arguments and oversized lengths, documented for every input.
        let mut out2 = sentinel();
        assert_eq!(
            unsafe { decode(std::ptr::null(), data.len(), &mut out2) },
            reference::NULL_ARGUMENT
        );
        assert_eq!(
            unsafe { decode(data.as_ptr(), data.len(), std::ptr::null_mut()) },
            reference::NULL_ARGUMENT
        );
        let huge = isize::MAX as usize + 1 + (data.len() % 7);
        assert_eq!(
            unsafe { decode(data.as_ptr(), huge, &mut out2) },
            reference::SIZE_TOO_LARGE
        );
        assert!(same(&out2, &sentinel()));
        // Decoding is pure: the same input gives the same answer.
        let mut again = sentinel();
        let status2 = unsafe { decode(data.as_ptr(), data.len(), &mut again) };
        assert_eq!(status, status2);
        assert!(same(&out, &again));
    }
}
