//! Session states: ZooKeeper's keeper state (kazoo's `KeeperState`) and kazoo's
//! high-level connection state (`KazooState`), with the tables that convert the
//! Java/wire and official C client codes.

use std::ffi::CStr;

use crate::status::zk_status;

/// The ZooKeeper session state, as kazoo's `KeeperState` names it.
///
/// Values follow the Java `Watcher.Event.KeeperState` codes where one exists
/// (`SyncConnected` 3, `AuthFailed` 4, `ConnectedReadOnly` 5, `Closed` 7,
/// `Expired` -112), with `CONNECTING` taking `NoSyncConnected`'s 1, which is
/// also the C client's `ZOO_CONNECTING_STATE`. Raw Java/wire and C client codes
/// are *not* all equal to these: convert them with `zk_keeper_state_from_wire()`
/// and `zk_keeper_state_from_c_client()`.
#[repr(i32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum zk_keeper_state {
    /// Attempting to establish a connection (kazoo `CONNECTING`).
    Connecting = 1,
    /// Connected (kazoo `CONNECTED`).
    Connected = 3,
    /// Authentication failed; unrecoverable (kazoo `AUTH_FAILED`).
    AuthFailed = 4,
    /// Connected to a read-only server (kazoo `CONNECTED_RO`).
    ConnectedRo = 5,
    /// The client is closed; also the state of a client never started (kazoo `CLOSED`).
    Closed = 7,
    /// The session expired: all its ephemeral nodes are gone (kazoo `EXPIRED_SESSION`).
    ExpiredSession = -112,
}

impl zk_keeper_state {
    /// Every keeper state.
    pub(crate) const ALL: [zk_keeper_state; 6] = [
        zk_keeper_state::Connecting,
        zk_keeper_state::Connected,
        zk_keeper_state::AuthFailed,
        zk_keeper_state::ConnectedRo,
        zk_keeper_state::Closed,
        zk_keeper_state::ExpiredSession,
    ];

    /// kazoo's name ("CONNECTED", "EXPIRED_SESSION", ...), static and NUL-terminated.
    pub fn name(self) -> &'static CStr {
        match self {
            zk_keeper_state::Connecting => c"CONNECTING",
            zk_keeper_state::Connected => c"CONNECTED",
            zk_keeper_state::AuthFailed => c"AUTH_FAILED",
            zk_keeper_state::ConnectedRo => c"CONNECTED_RO",
            zk_keeper_state::Closed => c"CLOSED",
            zk_keeper_state::ExpiredSession => c"EXPIRED_SESSION",
        }
    }

    /// The state whose kazoo name is exactly `name` (case-sensitive).
    pub fn from_name(name: &[u8]) -> Option<zk_keeper_state> {
        Self::ALL.into_iter().find(|s| s.name().to_bytes() == name)
    }

    /// kazoo's closed states: `EXPIRED_SESSION`, `AUTH_FAILED`, `CLOSED`.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            zk_keeper_state::ExpiredSession | zk_keeper_state::AuthFailed | zk_keeper_state::Closed
        )
    }

    /// Converts a Java/wire `KeeperState` code (as in a WatcherEvent):
    ///
    /// | wire code | Java name            | result            |
    /// |-----------|----------------------|-------------------|
    /// | 0         | Disconnected         | CONNECTING        |
    /// | 1         | NoSyncConnected      | CONNECTING        |
    /// | 3         | SyncConnected        | CONNECTED         |
    /// | 4         | AuthFailed           | AUTH_FAILED       |
    /// | 5         | ConnectedReadOnly    | CONNECTED_RO      |
    /// | 6         | SaslAuthenticated    | CONNECTED         |
    /// | 7         | Closed               | CLOSED            |
    /// | -112      | Expired              | EXPIRED_SESSION   |
    ///
    /// Any other code (including the deprecated Unknown, -1) is an error.
    #[inline]
    pub fn from_wire(code: i32) -> Result<zk_keeper_state, zk_status> {
        let state = match usize::try_from(code) {
            Ok(i) => Self::WIRE_0_TO_7.get(i).copied().flatten(),
            Err(_) => (code == -112).then_some(zk_keeper_state::ExpiredSession),
        };
        state.ok_or(zk_status::ZK_ERR_INVALID_KEEPER_STATE)
    }

    /// [`zk_keeper_state::from_wire`] for the wire codes 0 to 7, as a table
    /// (one load instead of a chain of bit tests).
    pub(crate) const WIRE_0_TO_7: [Option<zk_keeper_state>; 8] = [
        Some(zk_keeper_state::Connecting),
        Some(zk_keeper_state::Connecting),
        None,
        Some(zk_keeper_state::Connected),
        Some(zk_keeper_state::AuthFailed),
        Some(zk_keeper_state::ConnectedRo),
        Some(zk_keeper_state::Connected),
        Some(zk_keeper_state::Closed),
    ];

    /// Converts the official C client's `ZOO_*_STATE` codes (from `zoo_state()`
    /// or a watcher's `state` argument):
    ///
    /// | C code | C name                     | result          |
    /// |--------|----------------------------|-----------------|
    /// | 0      | (between reconnect tries)  | CONNECTING      |
    /// | 1      | ZOO_CONNECTING_STATE       | CONNECTING      |
    /// | 2      | ZOO_ASSOCIATING_STATE      | CONNECTING      |
    /// | 3      | ZOO_CONNECTED_STATE        | CONNECTED       |
    /// | 5      | ZOO_READONLY_STATE         | CONNECTED_RO    |
    /// | 7      | ZOO_SSL_CONNECTING_STATE   | CONNECTING      |
    /// | -112   | ZOO_EXPIRED_SESSION_STATE  | EXPIRED_SESSION |
    /// | -113   | ZOO_AUTH_FAILED_STATE      | AUTH_FAILED     |
    /// | 999    | ZOO_NOTCONNECTED_STATE     | CLOSED          |
    ///
    /// Any other code is an error. Note that 7 means SSL_CONNECTING here but
    /// Closed on the wire.
    pub fn from_c_client(code: i32) -> Result<zk_keeper_state, zk_status> {
        Ok(match code {
            0 | 1 | 2 | 7 => zk_keeper_state::Connecting,
            3 => zk_keeper_state::Connected,
            5 => zk_keeper_state::ConnectedRo,
            -112 => zk_keeper_state::ExpiredSession,
            -113 => zk_keeper_state::AuthFailed,
            999 => zk_keeper_state::Closed,
            _ => return Err(zk_status::ZK_ERR_INVALID_KEEPER_STATE),
        })
    }
}

impl TryFrom<i32> for zk_keeper_state {
    type Error = zk_status;

    fn try_from(code: i32) -> Result<Self, zk_status> {
        Self::ALL
            .into_iter()
            .find(|s| *s as i32 == code)
            .ok_or(zk_status::ZK_ERR_INVALID_KEEPER_STATE)
    }
}

/// kazoo's high-level connection state (`KazooState`, after Netflix Curator).
///
/// The values are Curator's `ConnectionState` ordinals. kazoo itself only has
/// `CONNECTED`, `SUSPENDED` and `LOST`; `RECONNECTED` and `READ_ONLY` are only
/// ever delivered by a dispatcher in Curator mode (`ZK_DISPATCHER_CURATOR_STATES`).
#[repr(i32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum zk_kazoo_state {
    /// The connection is alive and well (kazoo `CONNECTED`).
    Connected = 0,
    /// The connection was lost but may be recovered: operate in a safe mode; locks
    /// may no longer be held (kazoo `SUSPENDED`).
    Suspended = 1,
    /// Curator mode only: connected again after `SUSPENDED` or `LOST`.
    Reconnected = 2,
    /// The session is confirmed dead: ephemeral nodes and locks are gone (kazoo `LOST`).
    /// Also the state of a client that has never connected.
    Lost = 3,
    /// Curator mode only: connected to a read-only server.
    ReadOnly = 4,
}

impl zk_kazoo_state {
    /// Every kazoo state, including the Curator-mode ones.
    pub(crate) const ALL: [zk_kazoo_state; 5] = [
        zk_kazoo_state::Connected,
        zk_kazoo_state::Suspended,
        zk_kazoo_state::Reconnected,
        zk_kazoo_state::Lost,
        zk_kazoo_state::ReadOnly,
    ];

    /// kazoo's name ("CONNECTED", "SUSPENDED", "LOST"; Curator's "RECONNECTED",
    /// "READ_ONLY"), static and NUL-terminated.
    pub fn name(self) -> &'static CStr {
        match self {
            zk_kazoo_state::Connected => c"CONNECTED",
            zk_kazoo_state::Suspended => c"SUSPENDED",
            zk_kazoo_state::Reconnected => c"RECONNECTED",
            zk_kazoo_state::Lost => c"LOST",
            zk_kazoo_state::ReadOnly => c"READ_ONLY",
        }
    }

    /// The state whose name is exactly `name` (case-sensitive).
    pub fn from_name(name: &[u8]) -> Option<zk_kazoo_state> {
        Self::ALL.into_iter().find(|s| s.name().to_bytes() == name)
    }
}

impl TryFrom<i32> for zk_kazoo_state {
    type Error = zk_status;

    fn try_from(code: i32) -> Result<Self, zk_status> {
        Self::ALL
            .into_iter()
            .find(|s| *s as i32 == code)
            .ok_or(zk_status::ZK_ERR_INVALID_KAZOO_STATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_keeper_state::*;

    #[test]
    fn keeper_codes_and_names() {
        let expect = [
            (Connecting, 1, "CONNECTING"),
            (Connected, 3, "CONNECTED"),
            (AuthFailed, 4, "AUTH_FAILED"),
            (ConnectedRo, 5, "CONNECTED_RO"),
            (Closed, 7, "CLOSED"),
            (ExpiredSession, -112, "EXPIRED_SESSION"),
        ];
        for (s, code, name) in expect {
            assert_eq!(s as i32, code);
            assert_eq!(s.name().to_str().unwrap(), name);
            assert_eq!(zk_keeper_state::try_from(code), Ok(s));
            assert_eq!(zk_keeper_state::from_name(name.as_bytes()), Some(s));
        }
        for bad in [i32::MIN, -113, -1, 0, 2, 6, 8, 999, i32::MAX] {
            assert!(zk_keeper_state::try_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wire_table() {
        let table = [
            (0, Connecting),
            (1, Connecting),
            (3, Connected),
            (4, AuthFailed),
            (5, ConnectedRo),
            (6, Connected),
            (7, Closed),
            (-112, ExpiredSession),
        ];
        for code in -200..=1000 {
            let want = table.iter().find(|(c, _)| *c == code).map(|(_, s)| *s);
            assert_eq!(zk_keeper_state::from_wire(code).ok(), want, "wire {code}");
        }
    }

    #[test]
    fn c_client_table() {
        let table = [
            (0, Connecting),
            (1, Connecting),
            (2, Connecting),
            (3, Connected),
            (5, ConnectedRo),
            (7, Connecting),
            (-112, ExpiredSession),
            (-113, AuthFailed),
            (999, Closed),
        ];
        for code in -200..=1000 {
            let want = table.iter().find(|(c, _)| *c == code).map(|(_, s)| *s);
            assert_eq!(zk_keeper_state::from_c_client(code).ok(), want, "c {code}");
        }
    }

    #[test]
    fn kazoo_states() {
        for s in zk_kazoo_state::ALL {
            assert_eq!(zk_kazoo_state::try_from(s as i32), Ok(s));
            assert_eq!(zk_kazoo_state::from_name(s.name().to_bytes()), Some(s));
        }
        assert!(zk_kazoo_state::try_from(5).is_err());
        assert!(zk_kazoo_state::try_from(-1).is_err());
    }
}
