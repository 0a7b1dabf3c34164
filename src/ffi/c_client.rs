//! The adapter that plugs the official ZooKeeper C client (`libzookeeper-mt`)
//! straight into a dispatcher.

use std::ffi::{c_char, c_int, c_void};

use super::{cstr_in, ffi_boundary, utf8};
use crate::dispatch::zk_dispatcher;
use crate::event::{zk_event_type, ZK_ZXID_UNKNOWN};
use crate::state::zk_keeper_state;
use crate::status::zk_status;

/// The official C client's `zhandle_t` (`typedef struct _zhandle zhandle_t;`
/// in `zookeeper.h`), forward-declared so that this header needs none of the
/// C client's headers yet `zk_dispatcher_c_watcher` has exactly the type of
/// its `watcher_fn`. It is spelled `struct _zhandle` in the header.
pub enum zk_zhandle {}

/// A `watcher_fn` for the official ZooKeeper C client that feeds a dispatcher:
///
/// ```c
/// zk_dispatcher *d = zk_dispatcher_new();
/// zhandle_t *zh = zookeeper_init(hosts, zk_dispatcher_c_watcher, 10000, 0, d, 0);
/// zoo_wget(zh, "/node", zk_dispatcher_c_watcher, d, buf, &len, &stat);
/// ```
///
/// `watcher_ctx` must be the `zk_dispatcher *`. Session events
/// (`ZOO_SESSION_EVENT`, path `""`) go to `zk_dispatcher_session()` after
/// `zk_keeper_state_from_c_client()`; node events (`ZOO_CREATED_EVENT` ...
/// `ZOO_CHILD_EVENT`) to `zk_dispatcher_event()` with the path the C client
/// gives (already stripped of the client's chroot) and `ZK_ZXID_UNKNOWN`.
/// `ZOO_NOTWATCHING_EVENT` is counted as ignored.
///
/// The C client also delivers every session event to each pending per-node
/// watcher; those copies repeat the current state, which the state machine
/// ignores, so listeners are told once. Use this adapter as the per-node
/// watcher too (with the same dispatcher as context), then register the
/// callbacks with `zk_watch_add()`: the C client's own one-shot watch and the
/// dispatcher's watch fire together. The C client reports no final state on
/// `zookeeper_close()`: feed `ZK_KEEPER_STATE_CLOSED` yourself if listeners
/// should see LOST.
///
/// It returns nothing, so a code it cannot convert (or a NULL context) is
/// counted in the dispatcher's `adapter_errors` (if there is a dispatcher) and
/// otherwise ignored.
///
/// Thread safety: called by the C client on its completion thread; any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_dispatcher_c_watcher(
    zh: *mut zk_zhandle,
    r#type: c_int,
    state: c_int,
    path: *const c_char,
    watcher_ctx: *mut c_void,
) {
    ffi_boundary! {
        let _ = zh;
        let Some(d) = watcher_ctx.cast::<zk_dispatcher>().cast_const().as_ref() else { return };
        let result = (|| -> Result<(), zk_status> {
            match zk_event_type::try_from(r#type)? {
                zk_event_type::None => d.session(zk_keeper_state::from_c_client(state)?),
                event_type => {
                    let path = utf8(cstr_in(path)?)?;
                    d.event(event_type, path, ZK_ZXID_UNKNOWN)
                }
            }
        })();
        // Refusals while shutting down or for room are already counted.
        if let Err(e) = result {
            if e != zk_status::ZK_ERR_SHUTTING_DOWN && e != zk_status::ZK_ERR_QUEUE_FULL {
                d.count_adapter_error();
            }
        }
    }
}
