//! Entry points for the dispatcher, the session state machine, and the
//! callback types.

use std::ffi::c_void;
use std::sync::Arc;

use super::{cstr_in, ffi_boundary, ffi_status, read_in, utf8, zk_c_bool, Out};
use crate::dispatch::{
    current_seq, zk_dispatcher, zk_dispatcher_stats, zk_watch_kind, Dispatcher, Event,
    ListenerHandler, PlainHandler, Refused, Task,
};
use crate::event::{zk_event_type, zk_watched_event};
use crate::session::Machine;
use crate::state::{zk_kazoo_state, zk_keeper_state};
use crate::status::zk_status;

/// The state of kazoo's session machine: what `KazooClient` keeps in `_state`
/// and `state`, plus whether a connection was ever made (Curator mode only).
/// Initialise it with `zk_session_machine_init()`; a new machine is keeper
/// state CLOSED, kazoo state LOST, as a new `KazooClient`.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct zk_session_machine {
    /// The current keeper state (a `zk_keeper_state` value): kazoo's `client._state`.
    pub keeper_state: i32,
    /// The current kazoo state (a `zk_kazoo_state` value): kazoo's `client.state`.
    pub kazoo_state: i32,
    /// True once a connected state was reached (used by Curator mode).
    pub connected_before: zk_c_bool,
}

/// What one keeper state change does, as computed by `zk_session_machine_step()`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct zk_session_step {
    /// False when the new state equals the current one: kazoo ignores repeats and
    /// nothing else in this struct is set.
    pub changed: bool,
    /// True when listeners must be told `kazoo_state` (a real change of kazoo state).
    pub notify: bool,
    /// The new kazoo state when `notify` is true (a `zk_kazoo_state` value).
    pub kazoo_state: i32,
    /// `ZK_SESSION_ACTION_*` bits, to carry out after notifying listeners, in
    /// bit order.
    pub actions: u32,
}

impl Default for zk_session_machine {
    fn default() -> Self {
        Self::new()
    }
}

impl zk_session_machine {
    /// A new machine: CLOSED / LOST, never connected.
    pub const fn new() -> Self {
        zk_session_machine {
            keeper_state: zk_keeper_state::Closed as i32,
            kazoo_state: zk_kazoo_state::Lost as i32,
            connected_before: zk_c_bool(0),
        }
    }
}

/// A watch callback: `event` and its path are valid only during the call
/// (`event->path` is NUL-terminated, or NULL for a session event).
///
/// Runs on the dispatcher's thread. It may call any `zk_` function, including
/// `zk_watch_remove()` on its own id, except `zk_dispatcher_flush()` (which
/// returns `ZK_ERR_WOULD_DEADLOCK` there). It must not unwind (C++ exceptions,
/// `longjmp`) out of the call.
pub type zk_watch_fn =
    Option<unsafe extern "C" fn(event: *const zk_watched_event, user_data: *mut c_void)>;

/// A state listener: told each real change of the kazoo state, on the
/// dispatcher's thread. Return true to be removed (kazoo's convention), false
/// to stay. Same re-entrancy rules as `zk_watch_fn`.
pub type zk_listener_fn =
    Option<unsafe extern "C" fn(state: zk_kazoo_state, user_data: *mut c_void) -> zk_c_bool>;

/// A callback submitted with `zk_dispatcher_submit()` (kazoo's `Callback`): runs
/// once on the dispatcher's thread. Same re-entrancy rules as `zk_watch_fn`.
pub type zk_callback_fn = Option<unsafe extern "C" fn(args: *mut c_void)>;

/// Releases a `user_data` (or `args`) pointer the library took ownership of. It
/// runs exactly once, never while a callback using the pointer runs, and must
/// not call `zk_dispatcher_free()` on the dispatcher being freed.
pub type zk_free_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// A `user_data` pointer with its free function, run exactly once on drop
/// unless disarmed (when registration fails, ownership stays with the caller).
struct UserData {
    ptr: *mut c_void,
    free: zk_free_fn,
}

// SAFETY: the pointer is only handed back to the user's own callbacks and free
// function; the documented contract makes the user responsible for its thread
// safety (callbacks run on the dispatch thread, frees on the documented threads).
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    /// Registration failed: the caller keeps ownership, so never free.
    fn disarm(mut self) {
        self.free = None;
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(free) = self.free.take() {
            // SAFETY: the user gave us this free function for this pointer.
            unsafe { free(self.ptr) }
        }
    }
}

/// A C watch callback, its user data and free function, as a
/// [`PlainHandler`]: stored inline by the dispatcher, so `zk_watch_add()`
/// needs no allocation for it. The words are the callback, `user_data` and `free_fn`
/// (0 for none).
fn c_watch(
    callback: unsafe extern "C" fn(event: *const zk_watched_event, user_data: *mut c_void),
    user_data: *mut c_void,
    free_fn: zk_free_fn,
) -> PlainHandler {
    PlainHandler {
        call: call_c_watch,
        release: release_c_watch,
        words: [
            callback as usize,
            user_data as usize,
            free_fn.map_or(0, |f| f as usize),
        ],
    }
}

type CWatchFn = unsafe extern "C" fn(event: *const zk_watched_event, user_data: *mut c_void);
type CFreeFn = unsafe extern "C" fn(user_data: *mut c_void);

fn call_c_watch(event: &Event, words: &[usize; 3]) {
    let c = c_event(event);
    // SAFETY: `c_watch` stored a `CWatchFn` in words[0] (never 0), and the
    // user registered it for this user_data.
    unsafe {
        let callback = std::mem::transmute::<usize, CWatchFn>(words[0]);
        callback(&c, words[1] as *mut c_void)
    }
}

fn release_c_watch(words: &[usize; 3]) {
    if words[2] != 0 {
        // SAFETY: `c_watch` stored the user's free function for this
        // user_data in words[2]; the dispatcher calls this once.
        unsafe {
            let free = std::mem::transmute::<usize, CFreeFn>(words[2]);
            free(words[1] as *mut c_void)
        }
    }
}

/// A C listener with its user data.
struct CListener {
    callback: unsafe extern "C" fn(state: zk_kazoo_state, user_data: *mut c_void) -> zk_c_bool,
    user: UserData,
}

impl ListenerHandler for CListener {
    fn on_state(&self, state: zk_kazoo_state) -> bool {
        // SAFETY: the user registered this callback for this user_data.
        unsafe { (self.callback)(state, self.user.ptr).0 != 0 }
    }
}

/// A submitted C callback with its arguments.
struct CTask {
    callback: unsafe extern "C" fn(args: *mut c_void),
    args: UserData,
}

impl Task for CTask {
    fn run(self: Box<Self>) {
        // SAFETY: the user submitted this callback with these args; the free
        // function runs when `self` drops, right after the call.
        unsafe { (self.callback)(self.args.ptr) }
    }
}

/// A refused registration: the caller keeps its user data.
fn disarm_watch(refused: Refused<PlainHandler>) -> zk_status {
    refused.handler.disarm();
    refused.status
}

unsafe fn dispatcher<'a>(d: *const zk_dispatcher) -> Result<&'a zk_dispatcher, zk_status> {
    d.as_ref().ok_or(zk_status::ZK_ERR_NULL_ARGUMENT)
}

fn c_event(event: &Event) -> zk_watched_event {
    // The path's bytes start where its NUL-terminated string does.
    zk_watched_event::new(
        event.event_type,
        event.state,
        event.path.map(|p| p.to_bytes()),
        event.zxid,
    )
}

/// Creates a dispatcher with default options (kazoo semantics, unbounded
/// queue) and starts its dispatch thread. It starts as a new `KazooClient`:
/// keeper state CLOSED, kazoo state LOST.
///
/// Returns NULL only if the thread cannot be started. Free it with
/// `zk_dispatcher_free()`.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn zk_dispatcher_new() -> *mut zk_dispatcher {
    ffi_boundary! {
        match Dispatcher::new(0, 0) {
            Ok(d) => Arc::into_raw(d.into_arc()).cast_mut(),
            Err(_) => std::ptr::null_mut(),
        }
    }
}

/// Creates a dispatcher with options and stores it in `*out`.
///
/// `options` is zero or more of `ZK_DISPATCHER_CURATOR_STATES` and
/// `ZK_DISPATCHER_KEEP_WATCHES`. `queue_capacity` bounds how many node events
/// and submitted callbacks may wait in the queue (0: unbounded); when it is
/// full, `zk_dispatcher_event()` and `zk_dispatcher_submit()` return
/// `ZK_ERR_QUEUE_FULL` without any effect and the refusal is counted in
/// `refused_full`. Session changes and flushes are never refused for room, so
/// the state machine never misses a transition.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT`, `ZK_ERR_INVALID_ARGUMENT` (unknown
/// option bits) or `ZK_ERR_SYSTEM` (no thread). `*out` is written only on success.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_dispatcher_new_with(
    options: u32,
    queue_capacity: usize,
    out: *mut *mut zk_dispatcher,
) -> i32 {
    ffi_status! {
        let out = Out::new(out)?;
        let d = Dispatcher::new(options, queue_capacity)?;
        out.write(Arc::into_raw(d.into_arc()).cast_mut());
        Ok(())
    }
}

/// Frees a dispatcher: refuses new work (`ZK_ERR_SHUTTING_DOWN`), runs every
/// callback already queued, stops the dispatch thread, then frees every
/// registered watch's and listener's `user_data` (their free functions run on
/// the calling thread). NULL is a no-op. Must not be called twice, and no
/// other thread may use the dispatcher once this is called.
///
/// Called from a callback on the dispatch thread it cannot wait for itself:
/// it returns at once, and the dispatch thread finishes the queued callbacks
/// (which may still use the dispatcher; feeding and registering are refused),
/// frees what is registered, and exits on its own.
///
/// Thread safety: any thread, including the dispatch thread.
#[no_mangle]
pub unsafe extern "C" fn zk_dispatcher_free(d: *mut zk_dispatcher) {
    ffi_boundary! {
        if !d.is_null() {
            drop(Dispatcher::from_arc(Arc::from_raw(d.cast_const())));
        }
    }
}

/// Sets the chroot (for example `"/app"`). Paths fed to `zk_dispatcher_event()`
/// afterwards are server paths: the chroot is stripped on a `/` boundary
/// before matching and delivery (`"/app"` becomes `"/"`, `"/app/x"` becomes
/// `"/x"`, and `"/application"` lies outside it and matches nothing). Watches
/// are registered with chroot-relative paths. NULL or `"/"` clears it. Not
/// needed with the official C client, which strips its chroot itself.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT` (`d`), `ZK_ERR_INVALID_UTF8`,
/// `ZK_ERR_INVALID_PATH` or `ZK_ERR_SHUTTING_DOWN`.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_dispatcher_set_chroot(
    d: *mut zk_dispatcher,
    chroot: *const libc::c_char,
) -> i32 {
    ffi_status! {
        let d = dispatcher(d)?;
        let chroot = if chroot.is_null() { None } else { Some(utf8(cstr_in(chroot)?)?) };
        d.set_chroot(chroot)
    }
}

/// Registers a watch of `kind` (`ZK_WATCH_DATA`, `ZK_WATCH_CHILD`,
/// `ZK_WATCH_PERSISTENT`, `ZK_WATCH_PERSISTENT_RECURSIVE`) on `path` (relative
/// to the chroot) and stores its id in `*out_id` (ids are never reused).
///
/// Matching, as kazoo's `_read_watch_event` and ZooKeeper 3.6's watch manager:
/// CREATED and CHANGED fire the path's data watches; DELETED its data and child
/// watches; CHILD its child watches; one-shots fire once and are forgotten.
/// Persistent watches fire on all four types for their path; persistent
/// recursive ones on CREATED, CHANGED and DELETED of their path and every
/// descendant. For one event, one-shots fire first (data, then child), then
/// persistent, then recursive from the path up to the root, each group in
/// registration order. Registering the same callback twice gives two watches
/// (kazoo's sets would merge them).
///
/// Ownership: on success the library owns `user_data` and runs `free_fn`
/// (which may be NULL) on it exactly once: when the watch is removed, after a
/// one-shot has fired, or at `zk_dispatcher_free()`; always after the last
/// call of `callback` has returned. On failure nothing is kept and `free_fn`
/// is not called.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT` (`d`, `path`, `callback` or
/// `out_id`), `ZK_ERR_INVALID_WATCH_KIND`, `ZK_ERR_INVALID_UTF8`,
/// `ZK_ERR_INVALID_PATH` or `ZK_ERR_SHUTTING_DOWN`.
///
/// Thread safety: any thread, including from callbacks.
#[no_mangle]
pub unsafe extern "C" fn zk_watch_add(
    d: *mut zk_dispatcher,
    path: *const libc::c_char,
    kind: i32,
    callback: zk_watch_fn,
    user_data: *mut c_void,
    free_fn: zk_free_fn,
    out_id: *mut u64,
) -> i32 {
    ffi_status! {
        let d = dispatcher(d)?;
        let path = cstr_in(path)?;
        let callback = callback.ok_or(zk_status::ZK_ERR_NULL_ARGUMENT)?;
        let out_id = Out::new(out_id)?;
        let kind = zk_watch_kind::try_from(kind)?;
        let path = utf8(path)?;
        let handler = c_watch(callback, user_data, free_fn);
        out_id.write(d.watch_add_plain(path, kind, handler).map_err(disarm_watch)?);
        Ok(())
    }
}

/// Removes a watch. After it returns `ZK_OK`, the callback is not started
/// again: called from a callback (on the dispatch thread), this is exact;
/// called from another thread while the dispatch thread is just starting the
/// callback, that one call may still happen, and `zk_dispatcher_flush()`
/// afterwards waits it out. `free_fn` runs on the dispatch thread once the
/// events queued before the removal have been passed (so never during a
/// call); after `zk_dispatcher_flush()` returns it has run.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT`, or `ZK_ERR_NOT_FOUND` if no watch
/// has this id (never registered, removed, or a one-shot that has fired or is
/// being fired).
///
/// Thread safety: any thread, including from callbacks (also its own).
#[no_mangle]
pub unsafe extern "C" fn zk_watch_remove(d: *mut zk_dispatcher, id: u64) -> i32 {
    ffi_status! { dispatcher(d)?.watch_remove(id) }
}

/// Registers a state listener, told each real change of kazoo state (kazoo's
/// `add_listener`), and stores its id in `*out_id`. Listeners registered when
/// a state change is fed are told of it, in registration order; a listener
/// returning true is removed (its `free_fn` runs right after it returns).
///
/// Ownership as for `zk_watch_add()`. Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT`
/// (`d`, `callback`, `out_id`) or `ZK_ERR_SHUTTING_DOWN`.
///
/// Thread safety: any thread, including from callbacks.
#[no_mangle]
pub unsafe extern "C" fn zk_listener_add(
    d: *mut zk_dispatcher,
    callback: zk_listener_fn,
    user_data: *mut c_void,
    free_fn: zk_free_fn,
    out_id: *mut u64,
) -> i32 {
    ffi_status! {
        let d = dispatcher(d)?;
        let callback = callback.ok_or(zk_status::ZK_ERR_NULL_ARGUMENT)?;
        let out_id = Out::new(out_id)?;
        let handler = CListener { callback, user: UserData { ptr: user_data, free: free_fn } };
        out_id.write(d.listener_add(handler).map_err(|r| {
            r.handler.user.disarm();
            r.status
        })?);
        Ok(())
    }
}

/// Removes a listener; the same guarantees as `zk_watch_remove()`.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT`, or `ZK_ERR_NOT_FOUND` (never
/// registered, removed, or removed itself by returning true).
///
/// Thread safety: any thread, including from callbacks (also its own).
#[no_mangle]
pub unsafe extern "C" fn zk_listener_remove(d: *mut zk_dispatcher, id: u64) -> i32 {
    ffi_status! { dispatcher(d)?.listener_remove(id) }
}

/// Feeds a node event (a watch notification from the server) for `path` (a
/// server path, see `zk_dispatcher_set_chroot()`), with its `zxid` (or
/// `ZK_ZXID_UNKNOWN`). The matching watches are selected (one-shots popped)
/// as of this call, and their callbacks queued with `event->state` set to
/// the keeper state of this call. Once the watch table outgrows the cache,
/// events and registrations are applied to it a window at a time, behind a
/// read-ahead that asks the cache for what they will read, so that their
/// cache misses overlap with other work; every other call (and the dispatch
/// thread) applies the pending ones first, so no caller can tell. When
/// events stop after a dense stream, the last ones (up to about a hundred)
/// are applied by the dispatch thread within about 20 microseconds. Types kazoo ignores (NONE, NOT_WATCHING, *_WATCH_REMOVED)
/// are accepted and counted in `events_ignored`; session changes go to
/// `zk_dispatcher_session()`.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT`, `ZK_ERR_INVALID_EVENT_TYPE`,
/// `ZK_ERR_INVALID_UTF8`, `ZK_ERR_INVALID_PATH`, `ZK_ERR_QUEUE_FULL` (nothing
/// happened; counted) or `ZK_ERR_SHUTTING_DOWN`.
///
/// Thread safety: any thread, including from callbacks. Calls from one thread
/// are delivered in the order made; calls from several threads in the order
/// they take the dispatcher's lock.
#[no_mangle]
pub unsafe extern "C" fn zk_dispatcher_event(
    d: *mut zk_dispatcher,
    event_type: i32,
    path: *const libc::c_char,
    zxid: i64,
) -> i32 {
    ffi_status! {
        let d = dispatcher(d)?;
        let path = cstr_in(path)?;
        let event_type = zk_event_type::try_from(event_type)?;
        d.event(event_type, utf8(path)?, zxid)
    }
}

/// Feeds a session state change (a `zk_keeper_state` value: convert raw codes
/// with `zk_keeper_state_from_wire()` or `zk_keeper_state_from_c_client()`),
/// run through kazoo's `_session_callback` (see `zk_session_machine_step()`):
/// listeners are told of a real change of kazoo state, then watches get their
/// NONE events (kazoo: on SUSPENDED one-shots fire once and are dropped; on
/// LOST every watch fires once and is dropped; persistent watches are told of
/// a suspension and kept). Never refused for queue room.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT`, `ZK_ERR_INVALID_KEEPER_STATE` or
/// `ZK_ERR_SHUTTING_DOWN`.
///
/// Thread safety: any thread, including from callbacks.
#[no_mangle]
pub unsafe extern "C" fn zk_dispatcher_session(d: *mut zk_dispatcher, keeper_state: i32) -> i32 {
    ffi_status! {
        let d = dispatcher(d)?;
        d.session(zk_keeper_state::try_from(keeper_state)?)
    }
}

/// Reads the current kazoo state and keeper state, as of the last call fed
/// (callbacks queued before may not have run yet).
///
/// Returns `ZK_OK` or `ZK_ERR_NULL_ARGUMENT` (any argument NULL); the outputs
/// are written only on success.
///
/// Thread safety: any thread, including from callbacks.
#[no_mangle]
pub unsafe extern "C" fn zk_dispatcher_state(
    d: *const zk_dispatcher,
    kazoo: *mut zk_kazoo_state,
    keeper: *mut zk_keeper_state,
) -> i32 {
    ffi_status! {
        let d = dispatcher(d)?;
        let kazoo = Out::new(kazoo)?;
        let keeper = Out::new(keeper)?;
        let (k, s) = d.state();
        kazoo.write(k);
        keeper.write(s);
        Ok(())
    }
}

/// Queues `callback(args)` to run once on the dispatch thread, after
/// everything fed before it (kazoo's `handler.dispatch_callback(Callback)`).
/// On success the library owns `args`: `free_fn` (may be NULL) runs on it
/// exactly once, right after the callback returns. On failure nothing is kept.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT` (`d`, `callback`),
/// `ZK_ERR_QUEUE_FULL` (counted) or `ZK_ERR_SHUTTING_DOWN`.
///
/// Thread safety: any thread, including from callbacks.
#[no_mangle]
pub unsafe extern "C" fn zk_dispatcher_submit(
    d: *mut zk_dispatcher,
    callback: zk_callback_fn,
    args: *mut c_void,
    free_fn: zk_free_fn,
) -> i32 {
    ffi_status! {
        let d = dispatcher(d)?;
        let callback = callback.ok_or(zk_status::ZK_ERR_NULL_ARGUMENT)?;
        d.submit(CTask { callback, args: UserData { ptr: args, free: free_fn } }).map_err(|r| {
            r.handler.args.disarm();
            r.status
        })
    }
}

/// Blocks until every callback queued before this call has run.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT`, `ZK_ERR_SHUTTING_DOWN`, or
/// `ZK_ERR_WOULD_DEADLOCK` when called on the dispatch thread (from a
/// callback), which cannot wait for itself.
///
/// Deadlock potential: a callback that blocks on something the flushing thread
/// holds (or that flushes another dispatcher whose callback flushes this one).
///
/// Thread safety: any thread but the dispatch thread.
#[no_mangle]
pub unsafe extern "C" fn zk_dispatcher_flush(d: *mut zk_dispatcher) -> i32 {
    ffi_status! { dispatcher(d)?.flush() }
}

/// Reads the dispatcher's counters into `*out` (see `zk_dispatcher_stats`).
///
/// Returns `ZK_OK` or `ZK_ERR_NULL_ARGUMENT`.
///
/// Thread safety: any thread, including from callbacks.
#[no_mangle]
pub unsafe extern "C" fn zk_dispatcher_stats_get(
    d: *const zk_dispatcher,
    out: *mut zk_dispatcher_stats,
) -> i32 {
    ffi_status! {
        let d = dispatcher(d)?;
        let out = Out::new(out)?;
        out.write(d.stats());
        Ok(())
    }
}

/// The sequence number of the call (event, session change or submission)
/// whose callback is running on the calling thread, or 0 outside a dispatcher
/// callback. Sequence numbers start at 1, are given in the order calls are fed
/// (per dispatcher), so they order every delivered event and state change.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn zk_dispatch_current_seq() -> u64 {
    ffi_boundary! { current_seq() }
}

/// Initialises `*machine` as a new kazoo client: keeper state CLOSED, kazoo
/// state LOST, never connected.
///
/// Returns `ZK_OK` or `ZK_ERR_NULL_ARGUMENT`.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_session_machine_init(machine: *mut zk_session_machine) -> i32 {
    ffi_status! {
        Out::new(machine)?.write(zk_session_machine::new());
        Ok(())
    }
}

/// kazoo's session state machine as a pure function: feeds `new_keeper_state`
/// to `*machine` (updated in place) and describes what kazoo does in `*out`.
/// `options` takes `ZK_DISPATCHER_CURATOR_STATES` and `ZK_DISPATCHER_KEEP_WATCHES`.
///
/// Rules (kazoo's `_session_callback`): a repeated state is ignored
/// (`changed` false); from a closed state (EXPIRED_SESSION, AUTH_FAILED,
/// CLOSED) CONNECTING is recorded and nothing else; CONNECTED and CONNECTED_RO
/// give CONNECTED; closed states give LOST with every watch reset and pending
/// requests failed; anything else gives SUSPENDED with one-shot watches fired
/// with NONE and dropped. `notify` is set only for a real change of kazoo
/// state. A dispatcher runs exactly this machine.
///
/// Returns `ZK_OK`; `ZK_ERR_NULL_ARGUMENT`; `ZK_ERR_INVALID_KEEPER_STATE` (the
/// new state or `machine->keeper_state` is not a `zk_keeper_state`);
/// `ZK_ERR_INVALID_KAZOO_STATE` (`machine->kazoo_state`);
/// `ZK_ERR_INVALID_ARGUMENT` (unknown option bits). `*machine` and `*out` are
/// written only on success.
///
/// Thread safety: any thread; `*machine` must not be used by another thread
/// during the call.
#[no_mangle]
pub unsafe extern "C" fn zk_session_machine_step(
    machine: *mut zk_session_machine,
    new_keeper_state: i32,
    options: u32,
    out: *mut zk_session_step,
) -> i32 {
    ffi_status! {
        let current = read_in(machine.cast_const())?;
        let machine = Out::new(machine)?;
        let out = Out::new(out)?;
        if options & !crate::session::ZK_DISPATCHER_ALL_OPTIONS != 0 {
            return Err(zk_status::ZK_ERR_INVALID_ARGUMENT);
        }
        let new = zk_keeper_state::try_from(new_keeper_state)?;
        let mut m = Machine {
            keeper: zk_keeper_state::try_from(current.keeper_state)?,
            kazoo: zk_kazoo_state::try_from(current.kazoo_state)?,
            connected_before: current.connected_before.0 != 0,
        };
        let step = m.step(new, options);
        machine.write(zk_session_machine {
            keeper_state: m.keeper as i32,
            kazoo_state: m.kazoo as i32,
            connected_before: zk_c_bool(u8::from(m.connected_before)),
        });
        out.write(zk_session_step {
            changed: step.changed,
            notify: step.notify.is_some(),
            kazoo_state: step.notify.map_or(m.kazoo as i32, |k| k as i32),
            actions: step.actions,
        });
        Ok(())
    }
}
