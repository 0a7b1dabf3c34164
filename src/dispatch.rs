//! The dispatcher: kazoo's watcher and listener bookkeeping plus its
//! `SequentialThreadingHandler`, as one thread-safe object that any ZooKeeper
//! client can feed.
//!
//! Feeding (`event`, `session`, `submit`) does the matching at once, under the
//! registry lock, exactly where kazoo's connection thread does it (one-shot
//! watches are popped when their event is read), and queues the resulting
//! callbacks. One dispatch thread runs the queue in FIFO order in batches,
//! never holding a lock while user code runs, so callbacks may call back into
//! the dispatcher.
//!
//! Locks: `registry` (watches, listeners, session machine, chroot) is taken by
//! feeders and registrations; `queue` only for pushing and for the dispatch
//! thread's batch swap, and always after `registry` when both are held, so
//! the queue order is the feed order and the dispatch thread never waits for
//! matching. Matching is O(path depth): one pass over the path hashes it and
//! all its ancestors, each looked up by its precomputed hash.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::{CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, ThreadId};

use hashbrown::HashTable;

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
    /// Watches registered now (a fired one-shot counts until its callback has returned).
    pub watches: u64,
    /// Listeners registered now.
    pub listeners: u64,
    /// The sequence number given to the last accepted call (0: none yet).
    pub last_seq: u64,
    /// Calls of `zk_dispatcher_c_watcher()` that could not be converted (an
    /// unknown type or state code, an invalid path).
    pub adapter_errors: u64,
}

/// A watch event as delivered to a watch callback (valid during the call).
#[derive(Debug)]
pub struct Event<'a> {
    /// The event type.
    pub event_type: zk_event_type,
    /// The dispatcher's keeper state when the event was fed.
    pub state: zk_keeper_state,
    /// The path with the chroot stripped (NUL-terminated), or `None` for
    /// session (NONE) events.
    pub path: Option<&'a CStr>,
    /// The notification's zxid, or `ZK_ZXID_UNKNOWN`.
    pub zxid: i64,
    /// The sequence number of the call that caused the event.
    pub seq: u64,
}

/// What a queued watch job knows of its event; the path is held separately.
#[derive(Copy, Clone)]
struct EventMeta {
    event_type: zk_event_type,
    state: zk_keeper_state,
    zxid: i64,
    seq: u64,
}

impl EventMeta {
    fn with_path(self, path: Option<&CStr>) -> Event<'_> {
        Event {
            event_type: self.event_type,
            state: self.state,
            path,
            zxid: self.zxid,
            seq: self.seq,
        }
    }
}

/// Code called for watch events. Closures `Fn(&Event)` are handlers.
pub trait WatchHandler: Send + Sync + 'static {
    /// Called on the dispatch thread.
    fn on_event(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Send + Sync + 'static> WatchHandler for F {
    fn on_event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// Code told of kazoo state changes; returning true removes it (kazoo's
/// convention). Closures `Fn(zk_kazoo_state) -> bool` are handlers.
pub trait ListenerHandler: Send + Sync + 'static {
    /// Called on the dispatch thread.
    fn on_state(&self, state: zk_kazoo_state) -> bool;
}

impl<F: Fn(zk_kazoo_state) -> bool + Send + Sync + 'static> ListenerHandler for F {
    fn on_state(&self, state: zk_kazoo_state) -> bool {
        self(state)
    }
}

/// Code submitted to run once on the dispatch thread. Closures `FnOnce()` are tasks.
pub trait Task: Send + 'static {
    /// Runs the task, consuming it.
    fn run(self: Box<Self>);
}

impl<F: FnOnce() + Send + 'static> Task for F {
    fn run(self: Box<Self>) {
        (*self)()
    }
}

/// A registration the dispatcher did not take: the status, and the handler
/// handed back to the caller, who still owns it.
pub struct Refused<H> {
    /// Why it was refused.
    pub status: zk_status,
    /// The handler, untouched.
    pub handler: H,
}

impl<H> std::fmt::Debug for Refused<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Refused({:?})", self.status)
    }
}

impl<H> From<Refused<H>> for zk_status {
    fn from(r: Refused<H>) -> zk_status {
        r.status
    }
}

const LIVE: u8 = 0;
const CLAIMED: u8 = 1;
const REMOVED: u8 = 2;

/// A registered watch; `handler` is last so that `Arc<Watch<H>>` coerces to
/// `Arc<Watch<dyn WatchHandler>>`: one allocation per watch.
struct Watch<H: ?Sized> {
    id: u64,
    kind: zk_watch_kind,
    status: AtomicU8,
    path: Arc<CStr>,
    handler: H,
}

type DynWatch = Watch<dyn WatchHandler>;

struct Listener<H: ?Sized> {
    id: u64,
    status: AtomicU8,
    handler: H,
}

type DynListener = Listener<dyn ListenerHandler>;

/// The watches of one path, in registration order, under the path's hash.
struct PathEntry {
    hash: u64,
    path: Arc<CStr>,
    watches: Vec<Arc<DynWatch>>,
    /// When the path last gained a data (child) watch after having none: the
    /// order in which kazoo's `_data_watchers` (`_child_watchers`) dict holds
    /// the path, which is the order `_reset_watchers` fires them in.
    data_since: u64,
    child_since: u64,
}

impl PathEntry {
    fn has_kind(&self, kind: zk_watch_kind) -> bool {
        self.watches.iter().any(|w| w.kind == kind)
    }

    /// Stamps the kind's list of this path as starting now, if it was empty.
    fn stamp(&mut self, kind: zk_watch_kind, id: u64) {
        if !self.has_kind(kind) {
            match kind {
                zk_watch_kind::ZK_WATCH_DATA => self.data_since = id,
                zk_watch_kind::ZK_WATCH_CHILD => self.child_since = id,
                _ => {}
            }
        }
    }
}

/// A watch to call for an event, by id: the dispatch thread holds its own
/// reference to every live watch (see `Job::Register`), so feeding an event
/// touches no reference count the dispatch thread also writes. `claim` watches
/// are called at most once and then forgotten (one-shots firing, and every
/// watch on a lost session); `at_path` says the watch is on the event's path.
#[derive(Copy, Clone)]
struct Target {
    id: u64,
    claim: bool,
    at_path: bool,
}

/// Hashes sequential watch ids for the dispatch thread's map.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by sequential ids.
type IdMap<V> = hashbrown::HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// The dispatch thread's own references to the live watches and listeners.
#[derive(Default)]
struct Live {
    watches: IdMap<Arc<DynWatch>>,
    listeners: HashMap<u64, Arc<DynListener>>,
}

enum Job {
    /// A new watch: the dispatch thread keeps its own reference.
    Register(Arc<DynWatch>),
    /// A removed watch: the dispatch thread drops its reference (and so runs
    /// the free function) after the events queued before the removal.
    Release(u64),
    /// A new listener: the dispatch thread keeps its own reference.
    RegisterListener(Arc<DynListener>),
    /// A removed listener, as `Release`.
    ReleaseListener(u64),
    /// Several watches, or a session's NONE event (`path` None).
    Watch {
        meta: EventMeta,
        path: Option<Box<CStr>>,
        targets: Vec<Target>,
    },
    /// One watch whose own path is the event's path: no path to hold.
    One {
        meta: EventMeta,
        target: Target,
    },
    /// One watch on an ancestor (recursive): the event's path is held.
    OneAt {
        meta: EventMeta,
        path: Box<CStr>,
        target: Target,
    },
    State {
        state: zk_kazoo_state,
        seq: u64,
        /// Ids of the listeners registered when the change was fed.
        listeners: Vec<u64>,
    },
    Call {
        seq: u64,
        task: Box<dyn Task>,
    },
    Flush(Arc<Signal>),
}

impl Job {
    /// Node events and submitted callbacks count against the queue bound;
    /// registrations, session changes and flushes never do.
    fn is_bounded(&self) -> bool {
        match self {
            Job::One { meta, .. } | Job::OneAt { meta, .. } | Job::Watch { meta, .. } => {
                meta.event_type != zk_event_type::None
            }
            Job::Call { .. } => true,
            Job::Register(_)
            | Job::Release(_)
            | Job::RegisterListener(_)
            | Job::ReleaseListener(_)
            | Job::State { .. }
            | Job::Flush(_) => false,
        }
    }
}

#[derive(Default)]
struct Signal {
    done: Mutex<bool>,
    cv: Condvar,
}

/// Seeded FNV-1a with a final mix: fast on short paths, and hashing a path
/// byte by byte yields the hash of every prefix on the way.
#[derive(Copy, Clone)]
struct PathHasher {
    seed: u64,
}

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl PathHasher {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x7a6b_2d73_7461_7465);
        PathHasher { seed: h.finish() }
    }

    fn start(self) -> u64 {
        0xcbf2_9ce4_8422_2325 ^ self.seed
    }

    fn step(state: u64, byte: u8) -> u64 {
        (state ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    }

    fn finish(state: u64) -> u64 {
        let x = (state ^ (state >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^ (x >> 29)
    }

    fn hash(self, path: &[u8]) -> u64 {
        Self::finish(path.iter().fold(self.start(), |h, &b| Self::step(h, b)))
    }

    /// `(hash, length)` of `/`, of each ancestor, then of the path itself (for
    /// a validated absolute path), in that order.
    fn prefixes(self, path: &[u8], out: &mut Vec<(u64, usize)>) {
        out.clear();
        let mut h = Self::step(self.start(), b'/');
        out.push((Self::finish(h), 1));
        for (i, &b) in path.iter().enumerate().skip(1) {
            if b == b'/' {
                out.push((Self::finish(h), i));
            }
            h = Self::step(h, b);
        }
        if path.len() > 1 {
            out.push((Self::finish(h), path.len()));
        }
    }
}

struct Registry {
    watches: IdMap<Arc<DynWatch>>,
    by_path: HashTable<PathEntry>,
    recursive_count: usize,
    listeners: BTreeMap<u64, Arc<DynListener>>,
    machine: Machine,
    chroot: Option<Box<str>>,
    closing: bool,
    next_id: u64,
    next_seq: u64,
    stats: zk_dispatcher_stats,
    hasher: PathHasher,
    scratch: Vec<(u64, usize)>,
    scratch_targets: Vec<Target>,
}

impl Registry {
    fn entry(&self, hash: u64, path: &[u8]) -> Option<&PathEntry> {
        self.by_path
            .find(hash, |e| e.hash == hash && e.path.to_bytes() == path)
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.last_seq = seq;
        seq
    }

    fn unindex(&mut self, watch: &DynWatch) {
        let path = watch.path.to_bytes();
        let hash = self.hasher.hash(path);
        if let Ok(mut entry) = self
            .by_path
            .find_entry(hash, |e| e.hash == hash && e.path.to_bytes() == path)
        {
            let list = &mut entry.get_mut().watches;
            if let Some(at) = list.iter().position(|w| w.id == watch.id) {
                list.remove(at);
                if watch.kind == zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE {
                    self.recursive_count -= 1;
                }
            }
            if list.is_empty() {
                entry.remove();
            }
        }
    }
}

struct Queue {
    jobs: VecDeque<Job>,
    sleeping: bool,
    closing: bool,
}

/// The dispatcher itself (opaque to C). Rust code owns one through [`Dispatcher`].
pub struct zk_dispatcher {
    registry: Mutex<Registry>,
    queue: Mutex<Queue>,
    wake: Condvar,
    queued: AtomicUsize,
    /// Waiting node events and submitted callbacks: what `capacity` bounds.
    bounded: AtomicUsize,
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
    // User code never runs under these locks, so a poisoned lock can only come
    // from a bug in this module; carry on rather than cascade the panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long the dispatch thread spins on an empty queue before sleeping, so a
/// dense stream of events needs no wake-up system call per event, while a
/// sparse one does not keep a core busy.
const SPIN_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(10);

/// A batch this large means a dense stream: gather the next one briefly.
const DENSE_BATCH: usize = 8;
/// How many queued jobs end the gathering early.
const GATHER_JOBS: usize = 64;
/// The longest the dispatch thread gathers a batch in a dense stream (the
/// added latency is at most this).
const GATHER_WAIT: std::time::Duration = std::time::Duration::from_micros(5);

/// The queue capacity kept after a burst drains.
const QUEUE_KEEP: usize = 4096;

/// An owning handle: dropping it is `zk_dispatcher_free()`.
pub struct Dispatcher(Option<Arc<zk_dispatcher>>);

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
            registry: Mutex::new(Registry {
                watches: IdMap::default(),
                by_path: HashTable::new(),
                recursive_count: 0,
                listeners: BTreeMap::new(),
                machine: Machine::default(),
                chroot: None,
                closing: false,
                next_id: 1,
                next_seq: 1,
                stats: zk_dispatcher_stats::default(),
                hasher: PathHasher::new(),
                scratch: Vec::new(),
                scratch_targets: Vec::new(),
            }),
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                sleeping: false,
                closing: false,
            }),
            wake: Condvar::new(),
            queued: AtomicUsize::new(0),
            bounded: AtomicUsize::new(0),
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
        Ok(Dispatcher(Some(inner)))
    }

    /// Gives up the handle as a shared pointer (for the C ABI), without closing.
    pub fn into_arc(mut self) -> Arc<zk_dispatcher> {
        self.0.take().expect("a live handle")
    }

    /// Takes back a handle given up by [`Dispatcher::into_arc`].
    pub fn from_arc(inner: Arc<zk_dispatcher>) -> Dispatcher {
        Dispatcher(Some(inner))
    }
}

impl std::ops::Deref for Dispatcher {
    type Target = zk_dispatcher;

    fn deref(&self) -> &zk_dispatcher {
        self.0.as_ref().expect("a live handle")
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        if let Some(inner) = self.0.take() {
            inner.close();
        }
    }
}

impl zk_dispatcher {
    fn on_dispatch_thread(&self) -> bool {
        self.dispatch_thread.get() == Some(&std::thread::current().id())
    }

    /// Stops accepting work, lets the dispatch thread run what is queued, and
    /// joins it, unless called from the dispatch thread itself: then the
    /// thread is detached and finishes the queue on its own. What is still
    /// registered is dropped with the last reference to the dispatcher.
    fn close(&self) {
        lock(&self.registry).closing = true;
        lock(&self.queue).closing = true;
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

    fn open(&self) -> Result<MutexGuard<'_, Registry>> {
        let mut r = lock(&self.registry);
        if r.closing {
            r.stats.refused_closed += 1;
            return Err(zk_status::ZK_ERR_SHUTTING_DOWN);
        }
        Ok(r)
    }

    /// Queues jobs; the caller holds the registry lock, so the queue order is
    /// the feed order. Wakes the dispatch thread if it sleeps.
    fn push(&self, jobs: Vec<Job>) {
        let bounded = jobs.iter().filter(|j| j.is_bounded()).count();
        if bounded != 0 {
            self.bounded.fetch_add(bounded, Ordering::Release);
        }
        let mut q = lock(&self.queue);
        let before = q.jobs.len();
        q.jobs.extend(jobs);
        self.queued
            .fetch_add(q.jobs.len() - before, Ordering::Release);
        let wake = std::mem::replace(&mut q.sleeping, false);
        drop(q);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Queues one job (see `push`).
    fn push_one(&self, job: Job) {
        if job.is_bounded() {
            self.bounded.fetch_add(1, Ordering::Release);
        }
        let mut q = lock(&self.queue);
        q.jobs.push_back(job);
        self.queued.fetch_add(1, Ordering::Release);
        let wake = std::mem::replace(&mut q.sleeping, false);
        drop(q);
        if wake {
            self.wake.notify_one();
        }
    }

    fn has_room(&self, r: &mut Registry) -> Result<()> {
        if self.capacity != 0 && self.bounded.load(Ordering::Acquire) >= self.capacity {
            r.stats.refused_full += 1;
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
    /// On failure the handler is handed back, untouched.
    pub fn watch_add<H: WatchHandler>(
        &self,
        path: &str,
        kind: zk_watch_kind,
        handler: H,
    ) -> std::result::Result<u64, Refused<H>> {
        if let Err(status) = path::validate(path) {
            return Err(Refused { status, handler });
        }
        let mut r = match self.open() {
            Ok(r) => r,
            Err(status) => return Err(Refused { status, handler }),
        };
        let id = r.next_id;
        r.next_id += 1;
        let hash = r.hasher.hash(path.as_bytes());
        // Share the path's allocation with the other watches of the path.
        let shared = r.entry(hash, path.as_bytes()).map(|e| Arc::clone(&e.path));
        let path_c = match shared {
            Some(p) => p,
            None => Arc::from(CString::new(path).expect("validated paths hold no NUL")),
        };
        let watch: Arc<DynWatch> = Arc::new(Watch {
            id,
            kind,
            status: AtomicU8::new(LIVE),
            path: Arc::clone(&path_c),
            handler,
        });
        r.watches.insert(id, Arc::clone(&watch));
        // Under the registry lock: registered before any event that can match it.
        self.push_one(Job::Register(Arc::clone(&watch)));
        if kind == zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE {
            r.recursive_count += 1;
        }
        let bytes = path.as_bytes();
        match r
            .by_path
            .find_mut(hash, |e| e.hash == hash && e.path.to_bytes() == bytes)
        {
            Some(entry) => {
                entry.stamp(kind, id);
                entry.watches.push(watch);
            }
            None => {
                let mut entry = PathEntry {
                    hash,
                    path: path_c,
                    watches: Vec::with_capacity(1),
                    data_since: 0,
                    child_since: 0,
                };
                entry.stamp(kind, id);
                entry.watches.push(watch);
                r.by_path.insert_unique(hash, entry, |e| e.hash);
            }
        }
        Ok(id)
    }

    /// Removes a watch. `ZK_ERR_NOT_FOUND` if it was removed before or has
    /// already fired (a one-shot whose callback has started or is about to).
    pub fn watch_remove(&self, id: u64) -> Result<()> {
        let mut r = lock(&self.registry);
        let watch = r.watches.remove(&id).ok_or(zk_status::ZK_ERR_NOT_FOUND)?;
        if watch
            .status
            .compare_exchange(LIVE, REMOVED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // A one-shot being fired: ours may be the last reference, so it is
            // dropped after the lock.
            drop(r);
            drop(watch);
            return Err(zk_status::ZK_ERR_NOT_FOUND);
        }
        r.unindex(&watch);
        // The dispatch thread (or its queued Register job) still holds a
        // reference, so this drop is never the last: the free function always
        // runs on the dispatch thread, when it reaches the Release queued
        // after every event that could still name the watch.
        drop(watch);
        self.push_one(Job::Release(id));
        Ok(())
    }

    /// Registers a state listener and returns its id. On failure the handler
    /// is handed back, untouched.
    pub fn listener_add<H: ListenerHandler>(
        &self,
        handler: H,
    ) -> std::result::Result<u64, Refused<H>> {
        let mut r = match self.open() {
            Ok(r) => r,
            Err(status) => return Err(Refused { status, handler }),
        };
        let id = r.next_id;
        r.next_id += 1;
        let listener: Arc<DynListener> = Arc::new(Listener {
            id,
            status: AtomicU8::new(LIVE),
            handler,
        });
        r.listeners.insert(id, Arc::clone(&listener));
        self.push_one(Job::RegisterListener(listener));
        Ok(id)
    }

    /// Removes a listener. `ZK_ERR_NOT_FOUND` if it is not registered (never
    /// was, was removed, or removed itself by returning true).
    pub fn listener_remove(&self, id: u64) -> Result<()> {
        let mut r = lock(&self.registry);
        let listener = r.listeners.remove(&id).ok_or(zk_status::ZK_ERR_NOT_FOUND)?;
        if listener
            .status
            .compare_exchange(LIVE, REMOVED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // It returned true and removed itself.
            drop(r);
            drop(listener);
            return Err(zk_status::ZK_ERR_NOT_FOUND);
        }
        // As for watches: never the last reference; the dispatch thread frees it.
        drop(listener);
        self.push_one(Job::ReleaseListener(id));
        Ok(())
    }

    /// Feeds a node event for `server_path` (a server path: the chroot, if
    /// any, is stripped here), as kazoo's `_read_watch_event`.
    pub fn event(&self, event_type: zk_event_type, server_path: &str, zxid: i64) -> Result<()> {
        path::validate(server_path)?;
        let mut guard = self.open()?;
        let r = &mut *guard;
        let fires = matches!(
            event_type,
            zk_event_type::Created
                | zk_event_type::Deleted
                | zk_event_type::Changed
                | zk_event_type::Child
        );
        if fires {
            // Refuse before touching anything, so a refused event pops no watch.
            self.has_room(r)?;
        }
        let seq = r.next_seq();
        r.stats.events_fed += 1;
        if !fires {
            r.stats.events_ignored += 1;
            return Ok(());
        }
        let Some(client_path) = path::unchroot(r.chroot.as_deref(), server_path) else {
            r.stats.events_unmatched += 1;
            return Ok(());
        };
        // Matched into a reused buffer: a single target needs no allocation.
        let mut targets = std::mem::take(&mut r.scratch_targets);
        targets.clear();
        Self::match_event(r, event_type, client_path, &mut targets);
        if targets.is_empty() {
            r.scratch_targets = targets;
            r.stats.events_unmatched += 1;
            return Ok(());
        }
        r.stats.events_matched += 1;
        let meta = EventMeta {
            event_type,
            state: r.machine.keeper,
            zxid,
            seq,
        };
        // A fresh copy (not a shared reference count) for paths the watch lacks.
        let owned_path =
            || Box::from(CString::new(client_path).expect("validated paths hold no NUL"));
        let job = match targets.as_slice() {
            [target] if target.at_path => Job::One {
                meta,
                target: *target,
            },
            [target] => Job::OneAt {
                meta,
                path: owned_path(),
                target: *target,
            },
            _ => Job::Watch {
                meta,
                path: Some(owned_path()),
                targets: targets.clone(),
            },
        };
        r.scratch_targets = targets;
        self.push_one(job);
        Ok(())
    }

    /// Collects the watches an event fires, one-shots popped: kazoo's
    /// data/child rules, then ZooKeeper 3.6's persistent and
    /// persistent-recursive rules. O(depth): one hashing pass over the path.
    fn match_event(
        r: &mut Registry,
        event_type: zk_event_type,
        path: &str,
        targets: &mut Vec<Target>,
    ) {
        let bytes = path.as_bytes();
        let mut prefixes = std::mem::take(&mut r.scratch);
        let walk = r.recursive_count > 0 && event_type != zk_event_type::Child;
        let hash = if walk {
            r.hasher.prefixes(bytes, &mut prefixes);
            prefixes.last().expect("a path has at least one prefix").0
        } else {
            r.hasher.hash(bytes)
        };
        let (data, child) = match event_type {
            zk_event_type::Created | zk_event_type::Changed => (true, false),
            zk_event_type::Deleted => (true, true),
            _ => (false, true),
        };
        let at = |w: &Arc<DynWatch>, claim: bool| Target {
            id: w.id,
            claim,
            at_path: true,
        };
        if let Ok(mut found) = r
            .by_path
            .find_entry(hash, |e| e.hash == hash && e.path.to_bytes() == bytes)
        {
            let list = &mut found.get_mut().watches;
            let pops = |k: zk_watch_kind| {
                (data && k == zk_watch_kind::ZK_WATCH_DATA)
                    || (child && k == zk_watch_kind::ZK_WATCH_CHILD)
            };
            if list.iter().any(|w| pops(w.kind)) {
                for kind in [zk_watch_kind::ZK_WATCH_DATA, zk_watch_kind::ZK_WATCH_CHILD] {
                    if pops(kind) {
                        targets.extend(list.iter().filter(|w| w.kind == kind).map(|w| at(w, true)));
                    }
                }
                list.retain(|w| !pops(w.kind));
            }
            targets.extend(
                list.iter()
                    .filter(|w| w.kind == zk_watch_kind::ZK_WATCH_PERSISTENT)
                    .map(|w| at(w, false)),
            );
            if list.is_empty() {
                found.remove();
            }
        }
        if walk {
            // From the path itself up to the root.
            for &(h, len) in prefixes.iter().rev() {
                if let Some(entry) = r.entry(h, &bytes[..len]) {
                    targets.extend(
                        entry
                            .watches
                            .iter()
                            .filter(|w| w.kind == zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE)
                            .map(|w| Target {
                                id: w.id,
                                claim: false,
                                at_path: len == bytes.len(),
                            }),
                    );
                }
            }
        }
        r.scratch = prefixes;
    }

    /// Feeds a new keeper state, as kazoo's `_session_callback`.
    pub fn session(&self, state: zk_keeper_state) -> Result<()> {
        let mut guard = self.open()?;
        let r = &mut *guard;
        let seq = r.next_seq();
        r.stats.sessions_fed += 1;
        let step = r.machine.step(state, self.options);
        let mut jobs = Vec::with_capacity(2);
        if let Some(kazoo) = step.notify {
            if !r.listeners.is_empty() {
                let listeners = r.listeners.keys().copied().collect();
                jobs.push(Job::State {
                    state: kazoo,
                    seq,
                    listeners,
                });
            }
        }
        let fire_one_shot = step.actions & ZK_SESSION_ACTION_FIRE_ONE_SHOT != 0;
        let notify_one_shot = step.actions & ZK_SESSION_ACTION_NOTIFY_ONE_SHOT != 0;
        let notify_persistent = step.actions & ZK_SESSION_ACTION_NOTIFY_PERSISTENT != 0;
        let drop_persistent = step.actions & ZK_SESSION_ACTION_DROP_PERSISTENT != 0;
        if fire_one_shot || notify_one_shot || notify_persistent {
            // kazoo's _reset_watchers order: child watches, then data watches,
            // each path by path in the order kazoo's dicts hold the paths; then
            // the persistent kinds in registration order.
            let mut groups: [Vec<(u64, Target)>; 3] = Default::default();
            for entry in r.by_path.iter_mut() {
                for w in &entry.watches {
                    let (group, notify, claim) = match w.kind {
                        zk_watch_kind::ZK_WATCH_CHILD => {
                            (0, fire_one_shot || notify_one_shot, fire_one_shot)
                        }
                        zk_watch_kind::ZK_WATCH_DATA => {
                            (1, fire_one_shot || notify_one_shot, fire_one_shot)
                        }
                        _ => (2, notify_persistent, drop_persistent),
                    };
                    if notify {
                        let since = match group {
                            0 => entry.child_since,
                            1 => entry.data_since,
                            _ => 0,
                        };
                        groups[group].push((
                            since,
                            Target {
                                id: w.id,
                                claim,
                                at_path: false,
                            },
                        ));
                    }
                }
                entry.watches.retain(|w| {
                    let one_shot = matches!(
                        w.kind,
                        zk_watch_kind::ZK_WATCH_DATA | zk_watch_kind::ZK_WATCH_CHILD
                    );
                    !(if one_shot {
                        fire_one_shot
                    } else {
                        drop_persistent
                    })
                });
            }
            if drop_persistent {
                r.recursive_count = 0;
            }
            r.by_path.retain(|e| !e.watches.is_empty());
            let mut targets = Vec::new();
            for mut group in groups {
                // kazoo's dict order of paths, then registration order.
                group.sort_by_key(|(since, t)| (*since, t.id));
                targets.extend(group.drain(..).map(|(_, t)| t));
            }
            if !targets.is_empty() {
                let meta = EventMeta {
                    event_type: zk_event_type::None,
                    state,
                    zxid: ZK_ZXID_UNKNOWN,
                    seq,
                };
                jobs.push(Job::Watch {
                    meta,
                    path: None,
                    targets,
                });
            }
        }
        if !jobs.is_empty() {
            self.push(jobs);
        }
        Ok(())
    }

    /// The current kazoo and keeper states (as of the last call fed).
    pub fn state(&self) -> (zk_kazoo_state, zk_keeper_state) {
        let r = lock(&self.registry);
        (r.machine.kazoo, r.machine.keeper)
    }

    /// Queues a task to run once on the dispatch thread (kazoo's `Callback`).
    /// On failure the task is handed back, untouched.
    pub fn submit<T: Task>(&self, task: T) -> std::result::Result<(), Refused<T>> {
        let mut r = match self.open() {
            Ok(r) => r,
            Err(status) => {
                return Err(Refused {
                    status,
                    handler: task,
                })
            }
        };
        if let Err(status) = self.has_room(&mut r) {
            return Err(Refused {
                status,
                handler: task,
            });
        }
        let seq = r.next_seq();
        r.stats.submitted += 1;
        self.push_one(Job::Call {
            seq,
            task: Box::new(task),
        });
        Ok(())
    }

    /// Waits until everything queued before this call has run (and what it
    /// released has been freed).
    pub fn flush(&self) -> Result<()> {
        if self.on_dispatch_thread() {
            return Err(zk_status::ZK_ERR_WOULD_DEADLOCK);
        }
        let signal = Arc::new(Signal::default());
        {
            let _r = self.open()?;
            self.push_one(Job::Flush(Arc::clone(&signal)));
        }
        let mut done = lock(&signal.done);
        while !*done {
            done = signal.cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
        Ok(())
    }

    /// Counts a C client notification the adapter could not convert.
    pub fn count_adapter_error(&self) {
        lock(&self.registry).stats.adapter_errors += 1;
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> zk_dispatcher_stats {
        let r = lock(&self.registry);
        let mut stats = r.stats;
        stats.watches = r.watches.len() as u64;
        stats.listeners = r.listeners.len() as u64;
        drop(r);
        stats.queued = self.queued.load(Ordering::Acquire) as u64;
        stats.watch_calls = self.watch_calls.load(Ordering::Relaxed);
        stats.listener_calls = self.listener_calls.load(Ordering::Relaxed);
        stats.submit_calls = self.submit_calls.load(Ordering::Relaxed);
        stats.callback_panics = self.callback_panics.load(Ordering::Relaxed);
        stats
    }

    /// Waits for work; `None` once closing and drained.
    fn next_batch(&self, batch: &mut VecDeque<Job>, dense: bool) -> Option<()> {
        if dense {
            // A dense stream (the last batch was large): let the next batch
            // gather briefly rather than take the queue lock after every push,
            // which would make the feeder and this thread fight over it.
            let start = std::time::Instant::now();
            while self.queued.load(Ordering::Acquire) < GATHER_JOBS && start.elapsed() < GATHER_WAIT
            {
                for _ in 0..16 {
                    std::hint::spin_loop();
                }
            }
        }
        let mut q = lock(&self.queue);
        let mut spun = false;
        while q.jobs.is_empty() {
            if q.closing {
                return None;
            }
            if !spun {
                drop(q);
                let start = std::time::Instant::now();
                'spin: while start.elapsed() < SPIN_BEFORE_SLEEP {
                    for _ in 0..32 {
                        if self.queued.load(Ordering::Acquire) != 0 {
                            break 'spin;
                        }
                        std::hint::spin_loop();
                    }
                }
                spun = true;
                q = lock(&self.queue);
                continue;
            }
            q.sleeping = true;
            q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        q.sleeping = false;
        std::mem::swap(&mut q.jobs, batch);
        drop(q);
        self.queued.fetch_sub(batch.len(), Ordering::Release);
        let bounded = batch.iter().filter(|j| j.is_bounded()).count();
        self.bounded.fetch_sub(bounded, Ordering::Release);
        Some(())
    }

    /// The dispatch thread's loop.
    fn run(self: Arc<Self>) {
        let mut batch = VecDeque::new();
        let mut live = Live::default();
        let mut dense = false;
        while self.next_batch(&mut batch, dense).is_some() {
            dense = batch.len() >= DENSE_BATCH;
            for job in batch.drain(..) {
                if let Job::Flush(signal) = job {
                    // Everything before the flush has run.
                    *lock(&signal.done) = true;
                    signal.cv.notify_all();
                } else {
                    self.run_job(job, &mut live);
                }
            }
            // After a burst (say a million registrations) give the memory back;
            // the two buffers take turns as the queue.
            if batch.capacity() > QUEUE_KEEP {
                batch.shrink_to(QUEUE_KEEP);
            }
        }
    }

    fn call_user(&self, seq: u64, f: impl FnOnce()) {
        CURRENT_SEQ.with(|c| c.set(seq));
        if catch_unwind(AssertUnwindSafe(f)).is_err() {
            self.callback_panics.fetch_add(1, Ordering::Relaxed);
        }
        CURRENT_SEQ.with(|c| c.set(0));
    }

    /// Calls one watch. `path` None means the watch's own path (`Job::One`);
    /// `Some(None)` a session event with no path.
    fn fire(&self, live: &mut Live, meta: EventMeta, path: Option<Option<&CStr>>, target: Target) {
        let Some(w) = live.watches.get(&target.id) else {
            return;
        };
        if target.claim {
            if w.status
                .compare_exchange(LIVE, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return;
            }
        } else if w.status.load(Ordering::Acquire) != LIVE {
            return;
        }
        self.watch_calls.fetch_add(1, Ordering::Relaxed);
        let event = meta.with_path(path.unwrap_or(Some(&w.path)));
        self.call_user(meta.seq, || w.handler.on_event(&event));
        if target.claim {
            // Fired for the last time: forget it now, so its free function
            // runs right after the call (outside the lock).
            let registered = lock(&self.registry).watches.remove(&target.id);
            drop(registered);
            live.watches.remove(&target.id);
        }
    }

    fn run_job(&self, job: Job, live: &mut Live) {
        match job {
            Job::Register(watch) => {
                live.watches.insert(watch.id, watch);
            }
            Job::Release(id) => {
                live.watches.remove(&id);
            }
            Job::RegisterListener(listener) => {
                live.listeners.insert(listener.id, listener);
            }
            Job::ReleaseListener(id) => {
                live.listeners.remove(&id);
            }
            Job::One { meta, target } => self.fire(live, meta, None, target),
            Job::OneAt { meta, path, target } => self.fire(live, meta, Some(Some(&path)), target),
            Job::Watch {
                meta,
                path,
                targets,
            } => {
                for target in targets {
                    self.fire(live, meta, Some(path.as_deref()), target);
                }
            }
            Job::State {
                state,
                seq,
                listeners,
            } => {
                for id in listeners {
                    let Some(l) = live.listeners.get(&id) else {
                        continue;
                    };
                    if l.status.load(Ordering::Acquire) != LIVE {
                        continue;
                    }
                    self.listener_calls.fetch_add(1, Ordering::Relaxed);
                    let mut remove = false;
                    self.call_user(seq, || remove = l.handler.on_state(state));
                    if remove
                        && l.status
                            .compare_exchange(LIVE, REMOVED, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                    {
                        // Forget it now, so its free function runs right after it
                        // returned (both references dropped outside the lock).
                        let registered = lock(&self.registry).listeners.remove(&id);
                        drop(registered);
                        live.listeners.remove(&id);
                    }
                }
            }
            Job::Call { seq, task } => {
                self.submit_calls.fetch_add(1, Ordering::Relaxed);
                self.call_user(seq, || task.run());
            }
            Job::Flush(signal) => {
                // Handled by the loop; kept total for safety.
                *lock(&signal.done) = true;
                signal.cv.notify_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_hashes_equal_whole_hashes() {
        let h = PathHasher::new();
        let mut out = Vec::new();
        for path in ["/", "/a", "/a/b", "/app/svc-17/shard-3/node-42"] {
            h.prefixes(path.as_bytes(), &mut out);
            let want: Vec<(u64, usize)> = crate::path::self_and_ancestors(path)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(|p| (h.hash(p.as_bytes()), p.len()))
                .collect();
            assert_eq!(out, want, "{path}");
        }
    }
}
