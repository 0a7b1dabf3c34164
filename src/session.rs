//! kazoo's session state machine (`KazooClient._session_callback` and
//! `_make_state_change`) as a pure function, so that any client can reuse it
//! with or without a dispatcher.

use crate::state::{zk_kazoo_state, zk_keeper_state};

/// Dispatcher and state-machine option: Curator-style listener states. Listeners
/// are told `ZK_KAZOO_STATE_CONNECTED` for the first connection,
/// `ZK_KAZOO_STATE_RECONNECTED` for every later one, and
/// `ZK_KAZOO_STATE_READ_ONLY` for a read-only connection (where kazoo says
/// `CONNECTED` for all three).
pub const ZK_DISPATCHER_CURATOR_STATES: u32 = 1;

/// Dispatcher and state-machine option: Java-client watch semantics on a
/// connection loss. Instead of kazoo's "fire every one-shot watch once with a
/// NONE event and drop it", every watch receives the NONE event and stays
/// registered (the Java client re-registers them with SetWatches on
/// reconnect). A lost session still resets every watch.
pub const ZK_DISPATCHER_KEEP_WATCHES: u32 = 2;

/// Every option bit defined by this version.
pub const ZK_DISPATCHER_ALL_OPTIONS: u32 =
    ZK_DISPATCHER_CURATOR_STATES | ZK_DISPATCHER_KEEP_WATCHES;

/// Session action: fire every one-shot (data and child) watch once with a NONE
/// event and forget it (kazoo's `_reset_watchers`).
pub const ZK_SESSION_ACTION_FIRE_ONE_SHOT: u32 = 1;
/// Session action: fire every one-shot watch with a NONE event but keep it
/// (Java semantics, with `ZK_DISPATCHER_KEEP_WATCHES`).
pub const ZK_SESSION_ACTION_NOTIFY_ONE_SHOT: u32 = 2;
/// Session action: fire every persistent and persistent-recursive watch with a
/// NONE event; they stay registered unless `ZK_SESSION_ACTION_DROP_PERSISTENT`
/// is also set.
pub const ZK_SESSION_ACTION_NOTIFY_PERSISTENT: u32 = 4;
/// Session action: forget every persistent and persistent-recursive watch (after
/// notifying them): the session they were registered in is gone.
pub const ZK_SESSION_ACTION_DROP_PERSISTENT: u32 = 8;
/// Session action: fail every pending request (kazoo's `_notify_pending`):
/// `AuthFailedError` for AUTH_FAILED, `SessionExpiredError` for
/// EXPIRED_SESSION, `ConnectionLoss` otherwise. Informational for clients that
/// reuse the machine; a dispatcher has no requests.
pub const ZK_SESSION_ACTION_FAIL_PENDING: u32 = 16;
/// Session action: forget the session id and password (kazoo's `_reset_session`).
/// Informational, like `ZK_SESSION_ACTION_FAIL_PENDING`.
pub const ZK_SESSION_ACTION_RESET_SESSION: u32 = 32;

/// The machine's state with checked enums, as the safe core uses it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// kazoo's `client._state`.
    pub keeper: zk_keeper_state,
    /// kazoo's `client.state`.
    pub kazoo: zk_kazoo_state,
    /// A connected state was reached at some point.
    pub connected_before: bool,
}

/// The effect of one keeper state change.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// The keeper state changed (kazoo ignores repeats).
    pub changed: bool,
    /// Listeners must be told this state.
    pub notify: Option<zk_kazoo_state>,
    /// `ZK_SESSION_ACTION_*` bits.
    pub actions: u32,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            keeper: zk_keeper_state::Closed,
            kazoo: zk_kazoo_state::Lost,
            connected_before: false,
        }
    }
}

impl Machine {
    /// Feeds a new keeper state, exactly as kazoo's `_session_callback`:
    ///
    /// - the same state again: ignored;
    /// - from a closed state (EXPIRED_SESSION, AUTH_FAILED, CLOSED) to
    ///   CONNECTING: the state is recorded, nothing else happens;
    /// - CONNECTED or CONNECTED_RO: kazoo state CONNECTED (Curator mode:
    ///   CONNECTED the first time, then RECONNECTED; READ_ONLY for CONNECTED_RO);
    /// - a closed state: LOST, pending requests fail, the session is forgotten,
    ///   and every watch is fired with NONE and dropped;
    /// - otherwise (CONNECTING from a live state): SUSPENDED, pending requests
    ///   fail, one-shot watches fire with NONE and are dropped (kept, with
    ///   `ZK_DISPATCHER_KEEP_WATCHES`), persistent watches are told and kept.
    ///
    /// Listeners are told only of a real change of kazoo state (kazoo's
    /// `_make_state_change` skips the current state).
    pub fn step(&mut self, new: zk_keeper_state, options: u32) -> Step {
        if new == self.keeper {
            return Step::default();
        }
        let was_closed = self.keeper.is_closed();
        self.keeper = new;
        let mut step = Step {
            changed: true,
            notify: None,
            actions: 0,
        };
        if was_closed && new == zk_keeper_state::Connecting {
            return step;
        }
        let curator = options & ZK_DISPATCHER_CURATOR_STATES != 0;
        let target = match new {
            zk_keeper_state::Connected | zk_keeper_state::ConnectedRo => {
                let target = if !curator {
                    zk_kazoo_state::Connected
                } else if new == zk_keeper_state::ConnectedRo {
                    zk_kazoo_state::ReadOnly
                } else if self.connected_before {
                    zk_kazoo_state::Reconnected
                } else {
                    zk_kazoo_state::Connected
                };
                // Curator's "first connection" is the first non-negative message.
                if target != zk_kazoo_state::ReadOnly {
                    self.connected_before = true;
                }
                target
            }
            s if s.is_closed() => {
                step.actions = ZK_SESSION_ACTION_FIRE_ONE_SHOT
                    | ZK_SESSION_ACTION_NOTIFY_PERSISTENT
                    | ZK_SESSION_ACTION_DROP_PERSISTENT
                    | ZK_SESSION_ACTION_FAIL_PENDING
                    | ZK_SESSION_ACTION_RESET_SESSION;
                zk_kazoo_state::Lost
            }
            _ => {
                let one_shot = if options & ZK_DISPATCHER_KEEP_WATCHES != 0 {
                    ZK_SESSION_ACTION_NOTIFY_ONE_SHOT
                } else {
                    ZK_SESSION_ACTION_FIRE_ONE_SHOT
                };
                step.actions =
                    one_shot | ZK_SESSION_ACTION_NOTIFY_PERSISTENT | ZK_SESSION_ACTION_FAIL_PENDING;
                zk_kazoo_state::Suspended
            }
        };
        if target != self.kazoo {
            self.kazoo = target;
            step.notify = Some(target);
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_kazoo_state as K;
    use zk_keeper_state as S;

    /// kazoo's rules, written independently of `Machine::step` from the text of
    /// `_session_callback`/`_make_state_change`.
    fn kazoo_reference(state: &mut (S, K), new: S) -> Option<K> {
        if new == state.0 {
            return None;
        }
        let closed = [S::ExpiredSession, S::AuthFailed, S::Closed];
        let dead = closed.contains(&state.0);
        state.0 = new;
        if dead && new == S::Connecting {
            return None;
        }
        let target = if new == S::Connected || new == S::ConnectedRo {
            K::Connected
        } else if closed.contains(&new) {
            K::Lost
        } else {
            K::Suspended
        };
        if state.1 == target {
            return None;
        }
        state.1 = target;
        Some(target)
    }

    #[test]
    fn every_state_pair_follows_kazoo() {
        for from in S::ALL {
            for kazoo in [K::Connected, K::Suspended, K::Lost] {
                for to in S::ALL {
                    let mut m = Machine {
                        keeper: from,
                        kazoo,
                        connected_before: true,
                    };
                    let mut reference = (from, kazoo);
                    let step = m.step(to, 0);
                    assert_eq!(
                        step.notify,
                        kazoo_reference(&mut reference, to),
                        "{from:?}/{kazoo:?} -> {to:?}"
                    );
                    assert_eq!((m.keeper, m.kazoo), reference);
                    assert_eq!(step.changed, from != to);
                    let fires = step.actions & ZK_SESSION_ACTION_FIRE_ONE_SHOT != 0;
                    let reset_expected = from != to
                        && !(from.is_closed() && to == S::Connecting)
                        && !matches!(to, S::Connected | S::ConnectedRo);
                    assert_eq!(fires, reset_expected, "{from:?} -> {to:?}");
                    assert_eq!(
                        step.actions & ZK_SESSION_ACTION_DROP_PERSISTENT != 0,
                        reset_expected && to.is_closed()
                    );
                }
            }
        }
    }

    #[test]
    fn the_sequence_kazoo_produces() {
        // Observed on kazoo 2.11 by calling _session_callback on a fresh client.
        let feed = [
            (S::Connecting, None),
            (S::Connected, Some(K::Connected)),
            (S::Connecting, Some(K::Suspended)),
            (S::ConnectedRo, Some(K::Connected)),
            (S::Connected, None),
            (S::ExpiredSession, Some(K::Lost)),
            (S::Connecting, None),
            (S::Connected, Some(K::Connected)),
            (S::AuthFailed, Some(K::Lost)),
            (S::Closed, None),
            (S::Connecting, None),
            (S::Closed, None),
        ];
        let mut m = Machine::default();
        for (state, want) in feed {
            assert_eq!(m.step(state, 0).notify, want, "{state:?}");
        }
    }

    #[test]
    fn curator_mode() {
        let mut m = Machine::default();
        let o = ZK_DISPATCHER_CURATOR_STATES;
        assert_eq!(m.step(S::Connecting, o).notify, None);
        assert_eq!(m.step(S::ConnectedRo, o).notify, Some(K::ReadOnly));
        assert_eq!(m.step(S::Connected, o).notify, Some(K::Connected));
        assert_eq!(m.step(S::Connecting, o).notify, Some(K::Suspended));
        assert_eq!(m.step(S::Connected, o).notify, Some(K::Reconnected));
        assert_eq!(m.step(S::ExpiredSession, o).notify, Some(K::Lost));
        assert_eq!(m.step(S::Connecting, o).notify, None);
        assert_eq!(m.step(S::Connected, o).notify, Some(K::Reconnected));
        assert_eq!(m.step(S::ConnectedRo, o).notify, Some(K::ReadOnly));
        assert_eq!(m.step(S::Connected, o).notify, Some(K::Reconnected));
    }

    #[test]
    fn keep_watches_mode() {
        let mut m = Machine::default();
        m.step(S::Connected, ZK_DISPATCHER_KEEP_WATCHES);
        let s = m.step(S::Connecting, ZK_DISPATCHER_KEEP_WATCHES);
        assert_eq!(s.actions & ZK_SESSION_ACTION_FIRE_ONE_SHOT, 0);
        assert_ne!(s.actions & ZK_SESSION_ACTION_NOTIFY_ONE_SHOT, 0);
        let s = m.step(S::ExpiredSession, ZK_DISPATCHER_KEEP_WATCHES);
        assert_ne!(s.actions & ZK_SESSION_ACTION_FIRE_ONE_SHOT, 0);
    }
}
