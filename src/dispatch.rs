//! The dispatcher: kazoo's watcher and listener bookkeeping plus its
//! `SequentialThreadingHandler`, as one thread-safe object that any ZooKeeper
//! client can feed.
//!
//! Feeding (`event`, `session`, `submit`) does the matching at once, under the
//! lock, exactly where kazoo's connection thread does it (one-shot watches
//! are popped when their event is read), and queues the resulting callbacks.
//! One dispatch thread runs the queue in FIFO order, never holding the lock
//! while user code runs, so callbacks may call back into the dispatcher.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, ThreadId};

use crate::event::{zk_event_type, ZK_ZXID_UNKNOWN};
use crate::path;
use crate::session::{
    Machine, ZK_DISPATCHER_ALL_OPTIONS, ZK_SESSION_ACTION_DROP_PERSISTENT,
    ZK_SESSION_ACTION_FIRE_ONE_SHOT, ZK_SESSION_ACTION_NOTIFY_ONE_SHOT,
    ZK_SESSION_ACTION_NOTIFY_PERSISTENT,
};
use crate::state::{zk_kazoo_state, zk_keeper_state};
use crate::status::{zk_status, Result};

/// The kind of a watch registered with `zk_watch_add()`.
///
/// cbindgen:prefix-with-name=false
#[repr(i32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum zk_watch_kind {
    /// A one-shot data watch (kazoo's `get(watch=)` and `exists(watch=)`): fires
    /// once on CREATED, CHANGED or DELETED of its path.
    ZK_WATCH_DATA = 0,
    /// A one-shot child watch (kazoo's `get_children(watch=)`): fires once on
    /// CHILD or DELETED of its path.
    ZK_WATCH_CHILD = 1,
    /// A persistent watch (ZooKeeper 3.6 `AddWatch` mode PERSISTENT): fires on
    /// every CREATED, CHANGED, DELETED and CHILD event of its path and stays.
    ZK_WATCH_PERSISTENT = 2,
    /// A persistent recursive watch (`AddWatch` mode PERSISTENT_RECURSIVE):
    /// fires on every CREATED, CHANGED and DELETED event of its path and of
    /// every descendant, never on CHILD events, and stays.
    ZK_WATCH_PERSISTENT_RECURSIVE = 3,
}

impl TryFrom<i32> for zk_watch_kind {
    type Error = zk_status;

    fn try_from(code: i32) -> Result<Self> {
        Ok(match code {
            0 => zk_watch_kind::ZK_WATCH_DATA,
            1 => zk_watch_kind::ZK_WATCH_CHILD,
            2 => zk_watch_kind::ZK_WATCH_PERSISTENT,
            3 => zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE,
            _ => return Err(zk_status::ZK_ERR_INVALID_WATCH_KIND),
        })
    }
}

/// Counters of a dispatcher, read with `zk_dispatcher_stats_get()`.
///
/// Every node event fed is accounted for exactly once:
/// `events_fed = events_matched + events_unmatched + events_ignored`, and every
/// refused call is counted in `refused_full` or `refused_closed`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct zk_dispatcher_stats {
    /// Node events accepted by `zk_dispatcher_event()`.
    pub events_fed: u64,
    /// Accepted node events that matched at least one watch (queued for delivery).
    pub events_matched: u64,
    /// Accepted node events that matched no watch (or lay outside the chroot).
    pub events_unmatched: u64,
    /// Accepted events of a type kazoo ignores (NONE, NOT_WATCHING, *_WATCH_REMOVED).
    pub events_ignored: u64,
    /// Session states accepted by `zk_dispatcher_session()`, repeats included.
    pub sessions_fed: u64,
    /// Callbacks accepted by `zk_dispatcher_submit()`.
    pub submitted: u64,
    /// Calls refused with `ZK_ERR_QUEUE_FULL`.
    pub refused_full: u64,
    /// Calls refused with `ZK_ERR_SHUTTING_DOWN`.
    pub refused_closed: u64,
    /// Watch callbacks run.
    pub watch_calls: u64,
    /// Listener callbacks run.
    pub listener_calls: u64,
    /// Submitted callbacks run.
    pub submit_calls: u64,
    /// Callbacks that panicked (Rust callers only; C cannot unwind into the library).
    pub callback_panics: u64,
    /// Items waiting in the queue now.
    pub queued: u64,
    /// Watches registered now (a fired one-shot counts until its callback has run).
    pub watches: u64,
    /// Listeners registered now.
    pub listeners: u64,
    /// The sequence number given to the last accepted call (0: none yet).
    pub last_seq: u64,
    /// Calls of `zk_dispatcher_c_watcher()` that could not be converted (an
    /// unknown type or state code, an invalid path).
    pub adapter_errors: u64,
}

/// A watch event as delivered to a watch callback.
#[derive(Debug)]
pub struct Event {
    /// The event type.
    pub event_type: zk_event_type,
    /// The dispatcher's keeper state when the event was fed.
    pub state: zk_keeper_state,
    /// The path with the chroot stripped, or `None` for session (NONE) events.
    pub path: Option<CString>,
    /// The notification's zxid, or `ZK_ZXID_UNKNOWN`.
    pub zxid: i64,
    /// The sequence number of the call that caused the event.
    pub seq: u64,
}

/// A watch callback. Runs on the dispatch thread only.
pub type WatchFn = Box<dyn Fn(&Event) + Send + Sync>;
/// A listener: return true to be removed (kazoo's convention). Runs on the dispatch thread only.
pub type ListenerFn = Box<dyn Fn(zk_kazoo_state) -> bool + Send + Sync>;
/// A submitted callback, run once on the dispatch thread.
pub type SubmitFn = Box<dyn FnOnce() + Send>;

const LIVE: u8 = 0;
const CLAIMED: u8 = 1;
const REMOVED: u8 = 2;

struct Watch {
    id: u64,
    kind: zk_watch_kind,
    path: Box<str>,
    status: AtomicU8,
    callback: WatchFn,
}

struct Listener {
    id: u64,
    status: AtomicU8,
    callback: ListenerFn,
}

/// The watches registered on one path, each list in registration order.
#[derive(Default)]
struct PathWatches {
    data: Vec<Arc<Watch>>,
    child: Vec<Arc<Watch>>,
    persistent: Vec<Arc<Watch>>,
    recursive: Vec<Arc<Watch>>,
}

impl PathWatches {
    fn list(&mut self, kind: zk_watch_kind) -> &mut Vec<Arc<Watch>> {
        match kind {
            zk_watch_kind::ZK_WATCH_DATA => &mut self.data,
            zk_watch_kind::ZK_WATCH_CHILD => &mut self.child,
            zk_watch_kind::ZK_WATCH_PERSISTENT => &mut self.persistent,
            zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE => &mut self.recursive,
        }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }
}

/// A watch to call for an event; `claim` watches are called at most once and
/// then forgotten (one-shots firing, and every watch on a lost session).
struct Target {
    watch: Arc<Watch>,
    claim: bool,
}

enum Job {
    Watch {
        event: Event,
        targets: Vec<Target>,
    },
    State {
        state: zk_kazoo_state,
        seq: u64,
        listeners: Vec<Arc<Listener>>,
    },
    Call {
        seq: u64,
        callback: SubmitFn,
    },
    Flush(Arc<Signal>),
}

#[derive(Default)]
struct Signal {
    done: Mutex<bool>,
    cv: Condvar,
}

struct Shared {
    watches: HashMap<u64, Arc<Watch>>,
    by_path: HashMap<Box<str>, PathWatches>,
    recursive_count: usize,
    listeners: BTreeMap<u64, Arc<Listener>>,
    machine: Machine,
    chroot: Option<Box<str>>,
    queue: VecDeque<Job>,
    closing: bool,
    sleeping: bool,
    next_id: u64,
    next_seq: u64,
    stats: zk_dispatcher_stats,
}

/// The dispatcher itself (opaque to C). Rust code owns one through [`Dispatcher`].
pub struct zk_dispatcher {
    shared: Mutex<Shared>,
    wake: Condvar,
    options: u32,
    capacity: usize,
    dispatch_thread: OnceLock<ThreadId>,
    join: Mutex<Option<JoinHandle<()>>>,
    watch_calls: AtomicU64,
    listener_calls: AtomicU64,
    submit_calls: AtomicU64,
    callback_panics: AtomicU64,
}

thread_local! {
    static CURRENT_SEQ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The sequence number of the call whose callback is running on this thread, or
/// 0 outside dispatcher callbacks.
pub fn current_seq() -> u64 {
    CURRENT_SEQ.with(|c| c.get())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave `Shared` inconsistent in a
    // way that matters more than stopping dispatch would, so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An owning handle: dropping it is `zk_dispatcher_free()`.
pub struct Dispatcher(Arc<zk_dispatcher>);

impl Dispatcher {
    /// Starts a dispatcher and its dispatch thread.
    ///
    /// `options` is a set of `ZK_DISPATCHER_*` bits; `capacity` bounds the
    /// queue of node events and submitted callbacks (0: unbounded).
    pub fn new(options: u32, capacity: usize) -> Result<Dispatcher> {
        if options & !ZK_DISPATCHER_ALL_OPTIONS != 0 {
            return Err(zk_status::ZK_ERR_INVALID_ARGUMENT);
        }
        let inner = Arc::new(zk_dispatcher {
            shared: Mutex::new(Shared {
                watches: HashMap::new(),
                by_path: HashMap::new(),
                recursive_count: 0,
                listeners: BTreeMap::new(),
                machine: Machine::default(),
                chroot: None,
                queue: VecDeque::new(),
                closing: false,
                sleeping: false,
                next_id: 1,
                next_seq: 1,
                stats: zk_dispatcher_stats::default(),
            }),
            wake: Condvar::new(),
            options,
            capacity,
            dispatch_thread: OnceLock::new(),
            join: Mutex::new(None),
            watch_calls: AtomicU64::new(0),
            listener_calls: AtomicU64::new(0),
            submit_calls: AtomicU64::new(0),
            callback_panics: AtomicU64::new(0),
        });
        let worker = Arc::clone(&inner);
        let handle = std::thread::Builder::new()
            .name("zk-dispatch".into())
            .spawn(move || worker.run())
            .map_err(|_| zk_status::ZK_ERR_SYSTEM)?;
        let _ = inner.dispatch_thread.set(handle.thread().id());
        *lock(&inner.join) = Some(handle);
        Ok(Dispatcher(inner))
    }

    /// Gives up the handle as a shared pointer (for the C ABI).
    pub fn into_arc(self) -> Arc<zk_dispatcher> {
        let me = std::mem::ManuallyDrop::new(self);
        Arc::clone(&me.0)
    }

    /// Takes back a handle given up by [`Dispatcher::into_arc`].
    pub fn from_arc(inner: Arc<zk_dispatcher>) -> Dispatcher {
        Dispatcher(inner)
    }
}

impl std::ops::Deref for Dispatcher {
    type Target = zk_dispatcher;

    fn deref(&self) -> &zk_dispatcher {
        &self.0
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Drop for zk_dispatcher {
    fn drop(&mut self) {
        // Registered watches and listeners are dropped here, running their free
        // functions exactly once; no lock is held.
    }
}

impl zk_dispatcher {
    fn on_dispatch_thread(&self) -> bool {
        self.dispatch_thread.get() == Some(&std::thread::current().id())
    }

    /// Stops accepting work, lets the dispatch thread run what is queued, and
    /// joins it, unless called from the dispatch thread itself: then the
    /// thread is detached and finishes the queue on its own.
    fn close(&self) {
        {
            let mut s = lock(&self.shared);
            s.closing = true;
        }
        self.wake.notify_all();
        let handle = lock(&self.join).take();
        if let Some(handle) = handle {
            if self.on_dispatch_thread() {
                drop(handle);
            } else {
                let _ = handle.join();
            }
        }
    }

    fn open(&self) -> Result<MutexGuard<'_, Shared>> {
        let mut s = lock(&self.shared);
        if s.closing {
            s.stats.refused_closed += 1;
            return Err(zk_status::ZK_ERR_SHUTTING_DOWN);
        }
        Ok(s)
    }

    fn push(&self, mut s: MutexGuard<'_, Shared>, job: Job) {
        s.queue.push_back(job);
        let wake = s.sleeping;
        s.sleeping = false;
        drop(s);
        if wake {
            self.wake.notify_one();
        }
    }

    fn has_room(&self, s: &mut Shared) -> Result<()> {
        if self.capacity != 0 && s.queue.len() >= self.capacity {
            s.stats.refused_full += 1;
            return Err(zk_status::ZK_ERR_QUEUE_FULL);
        }
        Ok(())
    }

    /// Sets the chroot: event paths fed later are server paths under it, and
    /// are stripped of it (on a `/` boundary; the chroot itself becomes `/`)
    /// before matching and delivery. `None` or `"/"` means no chroot.
    pub fn set_chroot(&self, chroot: Option<&str>) -> Result<()> {
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                path::validate(c)?;
                Some(Box::from(c))
            }
        };
        self.open()?.chroot = chroot;
        Ok(())
    }

    /// Registers a watch on `path` (relative to the chroot) and returns its id.
    pub fn watch_add(&self, path: &str, kind: zk_watch_kind, callback: WatchFn) -> Result<u64> {
        path::validate(path)?;
        let mut s = self.open()?;
        let id = s.next_id;
        s.next_id += 1;
        let watch = Arc::new(Watch {
            id,
            kind,
            path: Box::from(path),
            status: AtomicU8::new(LIVE),
            callback,
        });
        s.watches.insert(id, Arc::clone(&watch));
        if kind == zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE {
            s.recursive_count += 1;
        }
        s.by_path
            .entry(Box::from(path))
            .or_default()
            .list(kind)
            .push(watch);
        Ok(id)
    }

    /// Removes a watch. `ZK_ERR_NOT_FOUND` if it was removed before or has
    /// already fired (a one-shot whose callback has started or is about to).
    pub fn watch_remove(&self, id: u64) -> Result<()> {
        let removed = {
            let mut s = lock(&self.shared);
            let watch = s.watches.remove(&id).ok_or(zk_status::ZK_ERR_NOT_FOUND)?;
            if watch
                .status
                .compare_exchange(LIVE, REMOVED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return Err(zk_status::ZK_ERR_NOT_FOUND);
            }
            Self::unindex(&mut s, &watch);
            watch
        };
        drop(removed); // outside the lock: may run the user's free function
        Ok(())
    }

    fn unindex(s: &mut Shared, watch: &Arc<Watch>) {
        if let Some(entry) = s.by_path.get_mut(&watch.path) {
            let list = entry.list(watch.kind);
            if let Some(at) = list.iter().position(|w| w.id == watch.id) {
                list.remove(at);
                if watch.kind == zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE {
                    s.recursive_count -= 1;
                }
            }
            if entry.is_empty() {
                s.by_path.remove(&watch.path);
            }
        }
    }

    /// Registers a state listener and returns its id.
    pub fn listener_add(&self, callback: ListenerFn) -> Result<u64> {
        let mut s = self.open()?;
        let id = s.next_id;
        s.next_id += 1;
        s.listeners.insert(
            id,
            Arc::new(Listener {
                id,
                status: AtomicU8::new(LIVE),
                callback,
            }),
        );
        Ok(id)
    }

    /// Removes a listener. `ZK_ERR_NOT_FOUND` if it is not registered (never
    /// was, was removed, or removed itself by returning true).
    pub fn listener_remove(&self, id: u64) -> Result<()> {
        let removed = {
            let mut s = lock(&self.shared);
            let listener = s.listeners.remove(&id).ok_or(zk_status::ZK_ERR_NOT_FOUND)?;
            if listener
                .status
                .compare_exchange(LIVE, REMOVED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // It returned true and removed itself; it is only awaiting retirement.
                return Err(zk_status::ZK_ERR_NOT_FOUND);
            }
            listener
        };
        drop(removed);
        Ok(())
    }

    /// Feeds a node event for `server_path` (a server path: the chroot, if
    /// any, is stripped here), as kazoo's `_read_watch_event`.
    pub fn event(&self, event_type: zk_event_type, server_path: &str, zxid: i64) -> Result<()> {
        path::validate(server_path)?;
        let mut s = self.open()?;
        let fires = matches!(
            event_type,
            zk_event_type::Created
                | zk_event_type::Deleted
                | zk_event_type::Changed
                | zk_event_type::Child
        );
        if fires {
            // Refuse before touching anything, so a refused event pops no watch.
            self.has_room(&mut s)?;
        }
        let seq = s.next_seq;
        s.next_seq += 1;
        s.stats.last_seq = seq;
        s.stats.events_fed += 1;
        if !fires {
            s.stats.events_ignored += 1;
            return Ok(());
        }
        let Some(client_path) = path::unchroot(s.chroot.as_deref(), server_path) else {
            s.stats.events_unmatched += 1;
            return Ok(());
        };
        let targets = Self::match_event(&mut s, event_type, client_path);
        if targets.is_empty() {
            s.stats.events_unmatched += 1;
            return Ok(());
        }
        s.stats.events_matched += 1;
        let event = Event {
            event_type,
            state: s.machine.keeper,
            path: Some(CString::new(client_path).map_err(|_| zk_status::ZK_ERR_INVALID_PATH)?),
            zxid,
            seq,
        };
        self.push(s, Job::Watch { event, targets });
        Ok(())
    }

    /// The watches an event fires, one-shots popped: kazoo's data/child rules,
    /// then ZooKeeper 3.6's persistent and persistent-recursive rules. O(depth).
    fn match_event(s: &mut Shared, event_type: zk_event_type, path: &str) -> Vec<Target> {
        let mut targets = Vec::new();
        let mut now_empty = false;
        if let Some(entry) = s.by_path.get_mut(path) {
            let (data, child) = match event_type {
                zk_event_type::Created | zk_event_type::Changed => (true, false),
                zk_event_type::Deleted => (true, true),
                _ => (false, true),
            };
            if data {
                targets.extend(
                    entry
                        .data
                        .drain(..)
                        .map(|watch| Target { watch, claim: true }),
                );
            }
            if child {
                targets.extend(
                    entry
                        .child
                        .drain(..)
                        .map(|watch| Target { watch, claim: true }),
                );
            }
            targets.extend(entry.persistent.iter().map(|w| Target {
                watch: Arc::clone(w),
                claim: false,
            }));
            now_empty = entry.is_empty();
        }
        if now_empty {
            s.by_path.remove(path);
        }
        if s.recursive_count > 0 && event_type != zk_event_type::Child {
            for prefix in path::self_and_ancestors(path) {
                if let Some(entry) = s.by_path.get(prefix) {
                    targets.extend(entry.recursive.iter().map(|w| Target {
                        watch: Arc::clone(w),
                        claim: false,
                    }));
                }
            }
        }
        targets
    }

    /// Feeds a new keeper state, as kazoo's `_session_callback`.
    pub fn session(&self, state: zk_keeper_state) -> Result<()> {
        let mut s = self.open()?;
        let seq = s.next_seq;
        s.next_seq += 1;
        s.stats.last_seq = seq;
        s.stats.sessions_fed += 1;
        let step = s.machine.step(state, self.options);
        if let Some(kazoo) = step.notify {
            if !s.listeners.is_empty() {
                let listeners = s.listeners.values().cloned().collect();
                s.queue.push_back(Job::State {
                    state: kazoo,
                    seq,
                    listeners,
                });
            }
        }
        let mut targets = Vec::new();
        let one_shot_fire = step.actions & ZK_SESSION_ACTION_FIRE_ONE_SHOT != 0;
        let one_shot_notify = step.actions & ZK_SESSION_ACTION_NOTIFY_ONE_SHOT != 0;
        let persistent_notify = step.actions & ZK_SESSION_ACTION_NOTIFY_PERSISTENT != 0;
        let persistent_drop = step.actions & ZK_SESSION_ACTION_DROP_PERSISTENT != 0;
        if one_shot_fire || one_shot_notify || persistent_notify {
            // kazoo's _reset_watchers order: child watches, then data watches;
            // then the persistent kinds. Each group in registration order.
            let mut child = Vec::new();
            let mut data = Vec::new();
            let mut persistent = Vec::new();
            for entry in s.by_path.values_mut() {
                if one_shot_fire {
                    child.extend(
                        entry
                            .child
                            .drain(..)
                            .map(|watch| Target { watch, claim: true }),
                    );
                    data.extend(
                        entry
                            .data
                            .drain(..)
                            .map(|watch| Target { watch, claim: true }),
                    );
                } else if one_shot_notify {
                    child.extend(entry.child.iter().map(|w| Target {
                        watch: Arc::clone(w),
                        claim: false,
                    }));
                    data.extend(entry.data.iter().map(|w| Target {
                        watch: Arc::clone(w),
                        claim: false,
                    }));
                }
                if persistent_notify {
                    let claim = persistent_drop;
                    for list in [&mut entry.persistent, &mut entry.recursive] {
                        if claim {
                            persistent.extend(list.drain(..).map(|watch| Target { watch, claim }));
                        } else {
                            persistent.extend(list.iter().map(|w| Target {
                                watch: Arc::clone(w),
                                claim,
                            }));
                        }
                    }
                }
            }
            if persistent_drop {
                s.recursive_count = 0;
            }
            s.by_path.retain(|_, entry| !entry.is_empty());
            for group in [&mut child, &mut data, &mut persistent] {
                group.sort_by_key(|t| t.watch.id);
                targets.append(group);
            }
        }
        if !targets.is_empty() {
            let event = Event {
                event_type: zk_event_type::None,
                state,
                path: None,
                zxid: ZK_ZXID_UNKNOWN,
                seq,
            };
            s.queue.push_back(Job::Watch { event, targets });
        }
        let wake = s.sleeping;
        s.sleeping = false;
        drop(s);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The current kazoo and keeper states (as of the last call fed).
    pub fn state(&self) -> (zk_kazoo_state, zk_keeper_state) {
        let s = lock(&self.shared);
        (s.machine.kazoo, s.machine.keeper)
    }

    /// Queues a callback to run once on the dispatch thread (kazoo's `Callback`).
    pub fn submit(&self, callback: SubmitFn) -> Result<()> {
        let mut s = self.open()?;
        self.has_room(&mut s)?;
        let seq = s.next_seq;
        s.next_seq += 1;
        s.stats.last_seq = seq;
        s.stats.submitted += 1;
        self.push(s, Job::Call { seq, callback });
        Ok(())
    }

    /// Waits until everything queued before this call has run.
    pub fn flush(&self) -> Result<()> {
        if self.on_dispatch_thread() {
            return Err(zk_status::ZK_ERR_WOULD_DEADLOCK);
        }
        let signal = Arc::new(Signal::default());
        let s = self.open()?;
        self.push(s, Job::Flush(Arc::clone(&signal)));
        let mut done = lock(&signal.done);
        while !*done {
            done = signal.cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
        Ok(())
    }

    /// Counts a C client notification the adapter could not convert.
    pub fn count_adapter_error(&self) {
        lock(&self.shared).stats.adapter_errors += 1;
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> zk_dispatcher_stats {
        let s = lock(&self.shared);
        let mut stats = s.stats;
        stats.queued = s.queue.len() as u64;
        stats.watches = s.watches.len() as u64;
        stats.listeners = s.listeners.len() as u64;
        drop(s);
        stats.watch_calls = self.watch_calls.load(Ordering::Relaxed);
        stats.listener_calls = self.listener_calls.load(Ordering::Relaxed);
        stats.submit_calls = self.submit_calls.load(Ordering::Relaxed);
        stats.callback_panics = self.callback_panics.load(Ordering::Relaxed);
        stats
    }

    /// The dispatch thread's loop.
    fn run(self: Arc<Self>) {
        let mut batch = VecDeque::new();
        let mut retired_watches = Vec::new();
        let mut retired_listeners = Vec::new();
        loop {
            {
                let mut s = lock(&self.shared);
                while s.queue.is_empty() {
                    if s.closing {
                        return;
                    }
                    s.sleeping = true;
                    s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                s.sleeping = false;
                std::mem::swap(&mut s.queue, &mut batch);
            }
            for job in batch.drain(..) {
                if let Job::Flush(signal) = job {
                    // Everything before the flush has run: release it first, so
                    // that its free functions have run when flush returns.
                    self.retire(&mut retired_watches, &mut retired_listeners);
                    *lock(&signal.done) = true;
                    signal.cv.notify_all();
                } else {
                    self.run_job(job, &mut retired_watches, &mut retired_listeners);
                }
            }
            self.retire(&mut retired_watches, &mut retired_listeners);
        }
    }

    /// Forgets fired one-shots and self-removed listeners, dropping them (which
    /// may run free functions) outside the lock.
    fn retire(&self, retired_watches: &mut Vec<u64>, retired_listeners: &mut Vec<u64>) {
        if retired_watches.is_empty() && retired_listeners.is_empty() {
            return;
        }
        let mut watches = Vec::with_capacity(retired_watches.len());
        let mut listeners = Vec::with_capacity(retired_listeners.len());
        {
            let mut s = lock(&self.shared);
            watches.extend(
                retired_watches
                    .drain(..)
                    .filter_map(|id| s.watches.remove(&id)),
            );
            listeners.extend(
                retired_listeners
                    .drain(..)
                    .filter_map(|id| s.listeners.remove(&id)),
            );
        }
        drop(watches);
        drop(listeners);
    }

    fn call_user(&self, seq: u64, f: impl FnOnce()) {
        CURRENT_SEQ.with(|c| c.set(seq));
        if catch_unwind(AssertUnwindSafe(f)).is_err() {
            self.callback_panics.fetch_add(1, Ordering::Relaxed);
        }
        CURRENT_SEQ.with(|c| c.set(0));
    }

    fn run_job(&self, job: Job, retired_watches: &mut Vec<u64>, retired_listeners: &mut Vec<u64>) {
        match job {
            Job::Watch { event, targets } => {
                for target in targets {
                    let w = &target.watch;
                    if target.claim {
                        if w.status
                            .compare_exchange(LIVE, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                            .is_err()
                        {
                            continue;
                        }
                        retired_watches.push(w.id);
                    } else if w.status.load(Ordering::Acquire) != LIVE {
                        continue;
                    }
                    self.watch_calls.fetch_add(1, Ordering::Relaxed);
                    self.call_user(event.seq, || (w.callback)(&event));
                }
            }
            Job::State {
                state,
                seq,
                listeners,
            } => {
                for l in listeners {
                    if l.status.load(Ordering::Acquire) != LIVE {
                        continue;
                    }
                    self.listener_calls.fetch_add(1, Ordering::Relaxed);
                    let mut remove = false;
                    self.call_user(seq, || remove = (l.callback)(state));
                    if remove
                        && l.status
                            .compare_exchange(LIVE, REMOVED, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                    {
                        retired_listeners.push(l.id);
                    }
                }
            }
            Job::Call { seq, callback } => {
                self.submit_calls.fetch_add(1, Ordering::Relaxed);
                self.call_user(seq, callback);
            }
            Job::Flush(_) => unreachable!("flushes are handled by the loop"),
        }
    }
}
