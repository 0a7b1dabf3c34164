//! The single status enum returned by every fallible entry point.

use std::ffi::CStr;

/// The result of every fallible `zk_` function.
///
/// `ZK_OK` (0) is success; every failure has its own nonzero code that never
/// changes meaning once released (new codes are only ever appended). Functions
/// return it as a plain `int32_t`; turn any code into text with
/// `zk_status_message()`. Output parameters are written only when the result is
/// `ZK_OK`.
///
/// cbindgen:prefix-with-name=false
#[repr(i32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum zk_status {
    /// Success.
    ZK_OK = 0,
    /// A required pointer argument was NULL.
    ZK_ERR_NULL_ARGUMENT = 1,
    /// The input ended before the fixed-size part of the encoding was complete.
    ZK_ERR_TRUNCATED = 2,
    /// An event type code is not one of `zk_event_type` (or not valid where it was given).
    ZK_ERR_INVALID_EVENT_TYPE = 3,
    /// A keeper (session) state code is not valid for the table it was looked up in.
    ZK_ERR_INVALID_KEEPER_STATE = 4,
    /// A kazoo connection state code is not one of `zk_kazoo_state`.
    ZK_ERR_INVALID_KAZOO_STATE = 5,
    /// A string (a znode path) is not valid UTF-8.
    ZK_ERR_INVALID_UTF8 = 6,
    /// The caller's output buffer is smaller than the encoding needs.
    ZK_ERR_BUFFER_TOO_SMALL = 7,
    /// A jute string length prefix is negative but not -1 (the null string).
    ZK_ERR_NEGATIVE_LENGTH = 8,
    /// A jute string length prefix runs past the end of the input.
    ZK_ERR_LENGTH_EXCEEDS_INPUT = 9,
    /// A reply header's xid is not -1, so the reply is not a watch notification.
    ZK_ERR_NOT_A_NOTIFICATION = 10,
    /// A name given to a `_from_name` function is not a known name (names are case-sensitive).
    ZK_ERR_UNKNOWN_NAME = 11,
    /// A watch kind is not one of the `ZK_WATCH_*` constants.
    ZK_ERR_INVALID_WATCH_KIND = 12,
    /// A znode path breaks ZooKeeper's rules: it must start with `/`, have no empty,
    /// `.` or `..` component and no trailing `/` (but `/` itself), and hold no
    /// control, private-use, U+FFF0..U+FFFF or non-BMP character.
    ZK_ERR_INVALID_PATH = 13,
    /// No watch or listener is registered under the given id (it was removed, or fired).
    ZK_ERR_NOT_FOUND = 14,
    /// The call would wait for the dispatch thread from the dispatch thread itself.
    ZK_ERR_WOULD_DEADLOCK = 15,
    /// The dispatcher is shutting down and accepts no more work.
    ZK_ERR_SHUTTING_DOWN = 16,
    /// The dispatcher's queue is at its configured bound; the item was refused and counted.
    ZK_ERR_QUEUE_FULL = 17,
    /// A length or size argument is larger than any valid object (above `PTRDIFF_MAX`).
    ZK_ERR_SIZE_TOO_LARGE = 18,
    /// An option or flag argument holds bits or a value the function does not define.
    ZK_ERR_INVALID_ARGUMENT = 19,
    /// A Rust panic was caught at the library boundary (a bug in zk-states; please report it).
    ZK_ERR_PANIC = 20,
    /// The operating system refused a resource (for example a thread could not be started).
    ZK_ERR_SYSTEM = 21,
}

impl zk_status {
    /// Every status, in code order (used by tests and by `from_code`).
    pub(crate) const ALL: [zk_status; 22] = [
        zk_status::ZK_OK,
        zk_status::ZK_ERR_NULL_ARGUMENT,
        zk_status::ZK_ERR_TRUNCATED,
        zk_status::ZK_ERR_INVALID_EVENT_TYPE,
        zk_status::ZK_ERR_INVALID_KEEPER_STATE,
        zk_status::ZK_ERR_INVALID_KAZOO_STATE,
        zk_status::ZK_ERR_INVALID_UTF8,
        zk_status::ZK_ERR_BUFFER_TOO_SMALL,
        zk_status::ZK_ERR_NEGATIVE_LENGTH,
        zk_status::ZK_ERR_LENGTH_EXCEEDS_INPUT,
        zk_status::ZK_ERR_NOT_A_NOTIFICATION,
        zk_status::ZK_ERR_UNKNOWN_NAME,
        zk_status::ZK_ERR_INVALID_WATCH_KIND,
        zk_status::ZK_ERR_INVALID_PATH,
        zk_status::ZK_ERR_NOT_FOUND,
        zk_status::ZK_ERR_WOULD_DEADLOCK,
        zk_status::ZK_ERR_SHUTTING_DOWN,
        zk_status::ZK_ERR_QUEUE_FULL,
        zk_status::ZK_ERR_SIZE_TOO_LARGE,
        zk_status::ZK_ERR_INVALID_ARGUMENT,
        zk_status::ZK_ERR_PANIC,
        zk_status::ZK_ERR_SYSTEM,
    ];

    /// The status with this code, if there is one.
    pub fn from_code(code: i32) -> Option<zk_status> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The status as the plain integer C sees.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// A one-line, human-readable description (static, NUL-terminated).
    pub fn message(self) -> &'static CStr {
        use zk_status::*;
        match self {
            ZK_OK => c"success",
            ZK_ERR_NULL_ARGUMENT => c"a required pointer argument was NULL",
            ZK_ERR_TRUNCATED => c"input is truncated: it ends before the encoding is complete",
            ZK_ERR_INVALID_EVENT_TYPE => c"invalid event type code",
            ZK_ERR_INVALID_KEEPER_STATE => c"invalid keeper state code",
            ZK_ERR_INVALID_KAZOO_STATE => c"invalid kazoo state code",
            ZK_ERR_INVALID_UTF8 => c"string is not valid UTF-8",
            ZK_ERR_BUFFER_TOO_SMALL => c"output buffer is too small",
            ZK_ERR_NEGATIVE_LENGTH => {
                c"string length prefix is negative (only -1, the null string, is allowed)"
            }
            ZK_ERR_LENGTH_EXCEEDS_INPUT => c"string length prefix runs past the end of the input",
            ZK_ERR_NOT_A_NOTIFICATION => c"reply header xid is not -1: not a watch notification",
            ZK_ERR_UNKNOWN_NAME => c"unknown name",
            ZK_ERR_INVALID_WATCH_KIND => c"invalid watch kind",
            ZK_ERR_INVALID_PATH => {
                c"invalid znode path: it must start with '/' and have no empty, '.' or '..' component, no trailing '/', and no control, private-use, U+FFF0..U+FFFF or non-BMP character"
            }
            ZK_ERR_NOT_FOUND => c"no watch or listener with this id",
            ZK_ERR_WOULD_DEADLOCK => c"operation would deadlock: called from the dispatch thread",
            ZK_ERR_SHUTTING_DOWN => c"dispatcher is shutting down",
            ZK_ERR_QUEUE_FULL => c"dispatcher queue is full: item refused",
            ZK_ERR_SIZE_TOO_LARGE => c"length argument is larger than any valid object",
            ZK_ERR_INVALID_ARGUMENT => c"invalid option or flag argument",
            ZK_ERR_PANIC => c"internal error: a panic was caught at the library boundary",
            ZK_ERR_SYSTEM => c"the operating system refused a resource",
        }
    }
}

/// The message for a code that is not a `zk_status`.
pub const UNKNOWN_STATUS_MESSAGE: &CStr = c"unknown status code";

impl std::fmt::Display for zk_status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message().to_str().unwrap_or("?"))
    }
}

impl std::error::Error for zk_status {}

/// `Result` with a `zk_status` error, used throughout the safe core.
pub type Result<T> = std::result::Result<T, zk_status>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_distinct_and_round_trip() {
        for (i, s) in zk_status::ALL.iter().enumerate() {
            assert_eq!(s.code(), i as i32);
            assert_eq!(zk_status::from_code(i as i32), Some(*s));
            assert!(!s.message().to_bytes().is_empty());
        }
        assert_eq!(zk_status::from_code(-1), None);
        assert_eq!(zk_status::from_code(zk_status::ALL.len() as i32), None);
        let mut msgs: Vec<_> = zk_status::ALL.iter().map(|s| s.message()).collect();
        msgs.sort();
        msgs.dedup();
        assert_eq!(msgs.len(), zk_status::ALL.len(), "messages are distinct");
    }
}
