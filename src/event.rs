//! ZooKeeper event types (kazoo's `EventType`) and the watched event.

use std::ffi::CStr;

use crate::status::zk_status;

/// The type of a watch event: ZooKeeper's `Watcher.Event.EventType` codes.
///
/// The values are the wire (Java) codes, which the official C client's
/// `ZOO_*_EVENT` constants share, so a `switch` on a wire or C-client integer
/// works directly. kazoo's `EventType` names the first five; the others are
/// ZooKeeper 3.6+ watch-removal events and the C client's local
/// `ZOO_NOTWATCHING_EVENT`, named here in the same style.
#[repr(i32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum zk_event_type {
    /// The connection state changed (kazoo `NONE`; Java `None`; C `ZOO_SESSION_EVENT`).
    None = -1,
    /// A node was created (kazoo `CREATED`; Java `NodeCreated`; C `ZOO_CREATED_EVENT`).
    Created = 1,
    /// A node was deleted (kazoo `DELETED`; Java `NodeDeleted`; C `ZOO_DELETED_EVENT`).
    Deleted = 2,
    /// A node's data changed (kazoo `CHANGED`; Java `NodeDataChanged`; C `ZOO_CHANGED_EVENT`).
    Changed = 3,
    /// A node's children changed (kazoo `CHILD`; Java `NodeChildrenChanged`; C `ZOO_CHILD_EVENT`).
    Child = 4,
    /// A data watch was removed (Java `DataWatchRemoved`, ZooKeeper 3.5+).
    DataWatchRemoved = 5,
    /// A child watch was removed (Java `ChildWatchRemoved`, ZooKeeper 3.5+).
    ChildWatchRemoved = 6,
    /// A persistent watch was removed (Java `PersistentWatchRemoved`, ZooKeeper 3.6+).
    PersistentWatchRemoved = 7,
    /// The server no longer watches the path (the C client's `ZOO_NOTWATCHING_EVENT`;
    /// local to the C client, never sent on the wire).
    NotWatching = -2,
}

impl zk_event_type {
    /// Every event type.
    pub(crate) const ALL: [zk_event_type; 9] = [
        zk_event_type::None,
        zk_event_type::Created,
        zk_event_type::Deleted,
        zk_event_type::Changed,
        zk_event_type::Child,
        zk_event_type::DataWatchRemoved,
        zk_event_type::ChildWatchRemoved,
        zk_event_type::PersistentWatchRemoved,
        zk_event_type::NotWatching,
    ];

    /// kazoo's name for the type ("CREATED", "NONE", ...), static and NUL-terminated.
    pub fn name(self) -> &'static CStr {
        match self {
            zk_event_type::None => c"NONE",
            zk_event_type::Created => c"CREATED",
            zk_event_type::Deleted => c"DELETED",
            zk_event_type::Changed => c"CHANGED",
            zk_event_type::Child => c"CHILD",
            zk_event_type::DataWatchRemoved => c"DATA_WATCH_REMOVED",
            zk_event_type::ChildWatchRemoved => c"CHILD_WATCH_REMOVED",
            zk_event_type::PersistentWatchRemoved => c"PERSISTENT_WATCH_REMOVED",
            zk_event_type::NotWatching => c"NOT_WATCHING",
        }
    }

    /// The type whose name is exactly `name` (case-sensitive).
    pub fn from_name(name: &[u8]) -> Option<zk_event_type> {
        Self::ALL.into_iter().find(|t| t.name().to_bytes() == name)
    }

    /// The type for a code read off the wire: every code but the C client's
    /// local `NOT_WATCHING` (-2), which the server never sends.
    pub fn from_wire(code: i32) -> Result<zk_event_type, zk_status> {
        match zk_event_type::try_from(code)? {
            zk_event_type::NotWatching => Err(zk_status::ZK_ERR_INVALID_EVENT_TYPE),
            t => Ok(t),
        }
    }
}

impl zk_event_type {
    /// The type with this numeric code, if any: the one code table, shared by
    /// `TryFrom<i32>` and the wire decoder's lookup table (built at compile
    /// time, hence `const`).
    pub(crate) const fn from_code(code: i32) -> Option<zk_event_type> {
        Some(match code {
            -1 => zk_event_type::None,
            1 => zk_event_type::Created,
            2 => zk_event_type::Deleted,
            3 => zk_event_type::Changed,
            4 => zk_event_type::Child,
            5 => zk_event_type::DataWatchRemoved,
            6 => zk_event_type::ChildWatchRemoved,
            7 => zk_event_type::PersistentWatchRemoved,
            -2 => zk_event_type::NotWatching,
            _ => return None,
        })
    }
}

impl TryFrom<i32> for zk_event_type {
    type Error = zk_status;

    fn try_from(code: i32) -> Result<Self, zk_status> {
        Self::from_code(code).ok_or(zk_status::ZK_ERR_INVALID_EVENT_TYPE)
    }
}

/// A change ZooKeeper reports to a watcher: kazoo's `WatchedEvent(type, state, path)`
/// plus the zxid of the notification.
///
/// `type` holds a `zk_event_type` value and `state` a `zk_keeper_state` value
/// (from the decoders: the wire state converted through the wire table, see
/// `zk_keeper_state_from_wire()`; in a dispatcher callback: the dispatcher's
/// keeper state when the event was fed, as kazoo passes `client._state`).
/// They are plain `int32_t` so that a struct filled in by C can never hold an
/// invalid enum.
///
/// `path` is `path_len` bytes of UTF-8 and is NULL (with `path_len` 0) for
/// jute's null string and for session events. Who owns it depends on where the
/// event came from: see `zk_watched_event_decode()` (a view into the caller's
/// buffer, not NUL-terminated) and `zk_watch_fn` (NUL-terminated, valid for
/// the duration of the callback).
///
/// `zxid` is the zxid of the server notification that carried the event, or
/// `ZK_ZXID_UNKNOWN` (-1) where none is known (a bare WatcherEvent, a session
/// event).
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct zk_watched_event {
    /// A `zk_event_type` value.
    pub r#type: i32,
    /// A `zk_keeper_state` value.
    pub state: i32,
    /// The znode path (`path_len` bytes of UTF-8), or NULL. See the struct's documentation for its lifetime.
    pub path: *const libc::c_char,
    /// The length of `path` in bytes, not counting any NUL terminator.
    pub path_len: usize,
    /// The notification's zxid, or `ZK_ZXID_UNKNOWN`.
    pub zxid: i64,
}

impl zk_watched_event {
    /// An event as C sees it; `path` is borrowed (the caller keeps it alive
    /// as long as the struct is used), NULL with length 0 when absent.
    pub fn new(
        event_type: zk_event_type,
        state: crate::state::zk_keeper_state,
        path: Option<&[u8]>,
        zxid: i64,
    ) -> Self {
        let (path, path_len) = path.map_or((std::ptr::null(), 0), |p| (p.as_ptr().cast(), p.len()));
        zk_watched_event {
            r#type: event_type as i32,
            state: state as i32,
            path,
            path_len,
            zxid,
        }
    }
}

/// The `zxid` of an event whose zxid is not known.
pub const ZK_ZXID_UNKNOWN: i64 = -1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_names_round_trip() {
        for t in zk_event_type::ALL {
            assert_eq!(zk_event_type::try_from(t as i32), Ok(t));
            assert_eq!(zk_event_type::from_name(t.name().to_bytes()), Some(t));
        }
        for bad in [i32::MIN, -3, 0, 8, 100, i32::MAX] {
            assert_eq!(
                zk_event_type::try_from(bad),
                Err(zk_status::ZK_ERR_INVALID_EVENT_TYPE)
            );
        }
        assert_eq!(zk_event_type::from_name(b"created"), None);
        assert_eq!(zk_event_type::from_name(b""), None);
        assert_eq!(
            zk_event_type::from_wire(-2),
            Err(zk_status::ZK_ERR_INVALID_EVENT_TYPE)
        );
        assert_eq!(zk_event_type::from_wire(-1), Ok(zk_event_type::None));
    }

    #[test]
    fn kazoo_names() {
        // kazoo.protocol.states.EVENT_TYPE_MAP
        let map = [
            (-1, "NONE"),
            (1, "CREATED"),
            (2, "DELETED"),
            (3, "CHANGED"),
            (4, "CHILD"),
        ];
        for (code, name) in map {
            assert_eq!(
                zk_event_type::try_from(code)
                    .unwrap()
                    .name()
                    .to_str()
                    .unwrap(),
                name
            );
        }
    }
}
