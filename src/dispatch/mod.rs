//! The dispatcher: kazoo's watcher and listener bookkeeping plus its
//! `SequentialThreadingHandler`, as one thread-safe object that any ZooKeeper
//! client can feed.
//!
//! Feeding (`event`, `session`, `submit`) does the matching under the lock,
//! in feed order, as kazoo's connection thread does it (one-shot watches are
//! popped when their event is read), and queues the resulting callbacks.
//! Once the registry outgrows the cache, node events and registrations are
//! applied to it a window at a time (`Pending`), behind a read-ahead of
//! prefetches issued as they are fed: the cache misses of their lookups
//! overlap with other work, which with a million watches is most of their
//! cost. Every other operation first applies what is pending, and so does
//! the dispatch thread when the queue holds nothing else to run (while ops
//! are pending the queue can only hold earlier jobs and `Register` jobs,
//! which call nothing), so nothing can observe the difference. One dispatch
//! thread runs the queue in FIFO order in batches, never holding the lock
//! while user code runs, so callbacks may call back into the dispatcher.
//!
//! One lock (`Shared`) covers the registry and the queue, so the queue order
//! is the feed order and a node event costs one lock round trip; the dispatch
//! thread takes it once per batch. The handlers live on the dispatch thread
//! (`Worker`), indexed by watch slot: feeding never touches them, and a
//! removed or fired watch's handler is dropped there, after the jobs queued
//! before. Matching is O(path depth) (see `registry`). Lines one thread
//! writes and the other then writes too (the queue's space) are asked for
//! ahead with a write prefetch (`hint`), so that neither thread's stores
//! wait for the other core; a fired watch's generation cell, which the
//! dispatch thread writes when it claims the call, is also moved on to its
//! slot's next generation there (`Registry::retire`), so that registering
//! a watch in the reused slot does not write it again from the feeder.

use std::collections::{BTreeMap, HashMap};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crate::event::{zk_event_type, ZK_ZXID_UNKNOWN};
use crate::hint;
use crate::path;
use crate::session::{
    Machine, ZK_DISPATCHER_ALL_OPTIONS, ZK_SESSION_ACTION_DROP_PERSISTENT,
    ZK_SESSION_ACTION_FIRE_ONE_SHOT, ZK_SESSION_ACTION_NOTIFY_ONE_SHOT,
    ZK_SESSION_ACTION_NOTIFY_PERSISTENT,
};
use crate::state::{zk_kazoo_state, zk_keeper_state};
use crate::status::{zk_status, Result};

mod ancestry;
mod index;
mod registry;

use registry::{gone, Link, Registry, Removed, ResetActions, Target, CHUNK, LISTENER_ID_BIT};

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

/// A watch handler given as plain data: two functions and the three words
/// they are handed. It is stored inline where the dispatch thread keeps its
/// handlers, so registering one needs no allocation of its own, and calling
/// one reads no memory beyond that slot: the form for handlers that are a
/// function pointer and its arguments, as the C API's (`zk_watch_add()`).
pub struct PlainHandler {
    /// Called on the dispatch thread for each event the watch receives.
    pub call: fn(&Event<'_>, &[usize; 3]),
    /// Called exactly once, when the dispatcher is done with the watch: on
    /// the dispatch thread after its last call or its removal, or, for a
    /// watch still registered when the dispatcher closes, on the closing
    /// thread once the dispatch thread has stopped (as any handler is
    /// dropped); never during `call`. Not called for a handler the
    /// dispatcher refused and handed back ([`PlainHandler::disarm`]).
    pub release: fn(&[usize; 3]),
    /// The words both functions are given.
    pub words: [usize; 3],
}

impl PlainHandler {
    /// Gives up the handler without calling `release`: a refused registration
    /// leaves ownership of what the words stand for with the caller.
    pub fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for PlainHandler {
    fn drop(&mut self) {
        (self.release)(&self.words);
    }
}

/// A registered watch's handler, as the dispatch thread holds it.
enum Handler {
    Plain(PlainHandler),
    Boxed(Box<dyn WatchHandler>),
}

impl Handler {
    fn on_event(&self, event: &Event<'_>) {
        match self {
            Handler::Plain(h) => (h.call)(event, &h.words),
            Handler::Boxed(h) => h.on_event(event),
        }
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

/// A listener; `handler` is last so that `Arc<Listener<H>>` coerces to
/// `Arc<Listener<dyn ListenerHandler>>`.
struct Listener<H: ?Sized> {
    id: u64,
    /// Set once removed (by `listener_remove` or by returning true).
    removed: AtomicBool,
    handler: H,
}

type DynListener = Listener<dyn ListenerHandler>;

/// The watches a node event or a session event calls.
enum Targets {
    One(Target),
    /// A run of `Batch::targets`.
    Many {
        start: usize,
        len: usize,
    },
}

enum Job {
    /// A new watch: the dispatch thread owns its handler from now on.
    Register {
        slot: u32,
        handler: Handler,
    },
    /// A removed watch: the dispatch thread drops its handler (running the
    /// free function) after the events queued before the removal.
    Release {
        slot: u32,
        gen: u32,
    },
    /// A new listener: the dispatch thread keeps its own reference.
    RegisterListener(Arc<DynListener>),
    /// A removed listener, as `Release`.
    ReleaseListener(u64),
    /// A node event (path: a run of `Batch::paths`, NUL included) or a
    /// session's NONE event (`path_len` is `NO_PATH`).
    Event {
        meta: EventMeta,
        path_at: usize,
        path_len: u32,
        targets: Targets,
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

const NO_PATH: u32 = u32::MAX;

/// Queued work. The feeders fill one batch under the lock; the dispatch
/// thread swaps it for its emptied one and runs it without the lock. Event
/// paths and target lists live in flat buffers that keep their capacity, so
/// a steady stream of events allocates nothing.
#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    paths: Vec<u8>,
    targets: Vec<Target>,
    /// New chunks of the watch generations, opened by registrations in
    /// `jobs`: the dispatch thread takes them before running the jobs.
    chunks: Vec<Arc<[AtomicU32]>>,
    /// Node events and submitted callbacks in `jobs`: what `capacity` bounds.
    bounded: usize,
}

/// How far ahead of the queue's end a feeder asks for its space (see
/// `Batch::prefetch_ahead`): in jobs, and in path bytes.
const JOBS_AHEAD: usize = 4;
const PATH_BYTES_AHEAD: usize = 192;

impl Batch {
    /// Asks the cache, for writing, for the space the next jobs and paths
    /// will take: the dispatch thread read those lines when it last ran
    /// this batch, and a store to them would wait for it to give them up.
    fn prefetch_ahead(&mut self) {
        if let Some(job) = self.jobs.spare_capacity_mut().get(JOBS_AHEAD) {
            hint::prefetch_write(job);
        }
        if let Some(byte) = self.paths.spare_capacity_mut().get(PATH_BYTES_AHEAD) {
            hint::prefetch_write(byte);
        }
    }

    fn shrink(&mut self) {
        if self.jobs.capacity() > QUEUE_KEEP {
            self.jobs.shrink_to(QUEUE_KEEP);
        }
        if self.paths.capacity() > QUEUE_KEEP * 32 {
            self.paths.shrink_to(QUEUE_KEEP * 32);
        }
        if self.targets.capacity() > QUEUE_KEEP {
            self.targets.shrink_to(QUEUE_KEEP);
        }
    }
}

#[derive(Default)]
struct Signal {
    done: Mutex<bool>,
    cv: Condvar,
}

/// Node events and registrations fed but not yet applied to the registry:
/// applied in order, by the feeder a window at a time once its read-ahead is
/// done (`Shared::settle_oldest`), by any other operation before it acts, and
/// by the dispatch thread once the queue is empty (at once in a sparse
/// stream, within `SETTLE_AFTER` of the last window in a dense one); those
/// apply all of them (`Shared::settle`). `restart_deps` and an epoch wrap
/// (see `ancestry`) run inside whichever call applies them: rare, amortized,
/// but a pass over every path.
///
/// Read-ahead in a dense stream (`Shared::defer`): each pushed op asks the
/// cache for its tag; `STAGE_LAG` pushes later, with the tag in cache, for
/// its entry; `STAGE_LAG` pushes after that, for what the entry points at
/// (a path on the heap, a slot). These are prefetches, which no call waits
/// for (a plain load would cost the call that issues it the whole miss, as
/// unlocking waits for it): by the time a window is applied, what it reads
/// is in cache, and the misses of a million-watch table overlap with the
/// feeder's work instead of stalling it. A prefetch does wait for the page
/// walk that translates its address (long in a virtual machine, even on
/// huge pages), so the stages run in bursts of `STAGE_BURST` ops, back to
/// back: their walks overlap instead of stalling one call each.
#[derive(Default)]
struct Pending {
    ops: Vec<Op>,
    /// The paths of `ops`, one after another.
    paths: Vec<u8>,
    /// `Op::Event`s in `ops` (what may join the bounded queue).
    events: usize,
    /// Per op in `ops`: its path's hash (the registry's hasher never
    /// changes), and the bucket its entry likely was in when its read-ahead
    /// got that far (`NIL_BUCKET` before; stale if the table was rebuilt
    /// since, which only wastes a hint).
    staged: Vec<(u32, u32)>,
    /// Scratch: the lookups of a window's paths, where each path's are,
    /// their likely buckets, and the slots `Registry::touch_entry` gave.
    lookups: Vec<(u32, usize)>,
    spans: Vec<(usize, usize)>,
    buckets: Vec<u32>,
    heads: Vec<u32>,
    /// When the first of `ops` was fed, or when the feeder last applied a
    /// window of them (`None`: no ops): what `SETTLE_AFTER` counts from.
    since: Option<Instant>,
    /// Whether the ops come as a dense stream: the first of them came
    /// within `DENSE_GAP` of the last settling, or the feeder has since
    /// applied a window. The feeder is then likely to fill the next window,
    /// and the dispatch thread waits for it (up to `SETTLE_AFTER`) rather
    /// than settle a few ops early.
    dense: bool,
    last_settle: Option<Instant>,
}

enum Op {
    /// A node event that passed the chroot (its client path).
    Event {
        meta: EventMeta,
        at: usize,
        len: usize,
    },
    /// A reserved watch to put on its path.
    Link { link: Link, at: usize, len: usize },
}

/// Pending operations applied together; with a million watches each
/// lookup is a cache miss, and a window's misses overlap.
const PENDING_WINDOW: usize = 64;

/// Pushes between two stages of a pending op's read-ahead (see `Pending`):
/// enough for a miss to be served meanwhile.
const STAGE_LAG: usize = 32;

/// Pushes per burst of read-ahead (see `Pending`): a divisor of `STAGE_LAG`
/// and `PENDING_WINDOW`, so that every op of the oldest window has had each
/// stage when it is applied. Paired A/B with a million watches against a
/// stage per push: one-shot 0.80x, recursive 0.92x.
const STAGE_BURST: usize = 32;

/// A pending op whose likely bucket is not known yet.
const NIL_BUCKET: u32 = u32::MAX;

/// Operations fed this soon after the last settling make a dense stream.
const DENSE_GAP: Duration = Duration::from_micros(2);

/// The longest the dispatch thread leaves a dense stream's pending
/// operations to their feeder (the added latency at the end of a burst).
const SETTLE_AFTER: Duration = Duration::from_micros(20);

impl Op {
    /// Where its path is in `Pending::paths`.
    fn path(&self) -> std::ops::Range<usize> {
        match *self {
            Op::Event { at, len, .. } | Op::Link { at, len, .. } => at..at + len,
        }
    }
}

impl Pending {
    fn push(&mut self, op: impl FnOnce(usize, usize) -> Op, path: &[u8]) {
        let at = self.paths.len();
        self.paths.extend_from_slice(path);
        let op = op(at, path.len());
        if matches!(op, Op::Event { .. }) {
            self.events += 1;
        }
        self.ops.push(op);
    }
}

/// Everything under the dispatcher's lock: the registry, the session state
/// and the queue. One lock, so a node event costs one lock round trip, and
/// the queue order is the feed order. Aligned so that no field shares a cache
/// line with the lock word, which the dispatch thread's `try_lock` polling
/// takes away from the feeder.
#[repr(align(64))]
struct Shared {
    watches: Registry,
    listeners: BTreeMap<u64, Arc<DynListener>>,
    next_listener: u64,
    machine: Machine,
    chroot: Option<Box<str>>,
    closing: bool,
    next_seq: u64,
    stats: zk_dispatcher_stats,
    queue: Batch,
    /// What feeders last stored in `zk_dispatcher::queued` since the
    /// dispatch thread cleared it.
    published: usize,
    sleeping: bool,
    scratch: Vec<Target>,
    pending: Pending,
    /// Test hook (`ZK_STATES_DEFER_ALL` set when the dispatcher was made):
    /// defer every event and registration, and read ahead for every window,
    /// whatever the registry's size, so that tests with few watches run the
    /// paths a million watches take. Changes timing only.
    defer_all: bool,
}

impl Shared {
    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.last_seq = seq;
        seq
    }

    /// Whether an event or a registration is applied at once rather than
    /// deferred (`Pending`): when nothing is pending and the registry is
    /// small enough to stay in cache (no misses to overlap).
    fn applies_now(&self) -> bool {
        self.pending.ops.is_empty() && !self.defer_all && !self.watches.is_large()
    }

    /// Refuses (and counts) a call to a closing dispatcher.
    fn check_open(&mut self) -> Result<()> {
        if self.closing {
            self.stats.refused_closed += 1;
            return Err(zk_status::ZK_ERR_SHUTTING_DOWN);
        }
        Ok(())
    }

    /// The hash of `path` and its entry, if any, when an operation on it is
    /// applied now (`applies_now`); `None` when it would be deferred.
    fn look_up_now(&self, path: &[u8]) -> Option<(u32, Option<u32>)> {
        self.applies_now().then(|| {
            let hash = self.watches.hash(path);
            (hash, self.watches.find(hash, path))
        })
    }

    /// Applies the pending operations, in order, a window at a time: first
    /// the hashes of the window's paths, then one read of what each lookup
    /// reads first (so their misses overlap), then the operations.
    fn settle(&mut self, queued: &AtomicUsize) {
        if self.pending.ops.is_empty() {
            return;
        }
        let mut p = std::mem::take(&mut self.pending);
        debug_assert_eq!(p.staged.len(), p.ops.len());
        p.last_settle = Some(Instant::now());
        p.since = None;
        if !self.defer_all && !self.watches.is_large() {
            // All in cache: no reading ahead.
            for (op, &(hash, _)) in p.ops.iter().zip(&p.staged) {
                self.apply_hashed(op, &p.paths, hash);
            }
            p.ops.clear();
        }
        for (window, staged) in p
            .ops
            .chunks(PENDING_WINDOW)
            .zip(p.staged.chunks(PENDING_WINDOW))
        {
            let w = &self.watches;
            // The lookups: an event's path alone, hashed when it was
            // deferred (its ancestors only if its entry says so, below); a
            // new path's prefixes too if `link` will look its ancestors up.
            p.lookups.clear();
            p.spans.clear();
            for (op, &(hash, _)) in window.iter().zip(staged) {
                let start = p.lookups.len();
                match *op {
                    Op::Link { link, .. } if w.link_walks(&link) => {
                        w.lookups(&p.paths[op.path()], true, &mut p.lookups)
                    }
                    _ => p.lookups.push((hash, op.path().len())),
                }
                p.spans.push((start, p.lookups.len()));
            }
            // Then the reads, each stage a short loop, so that many of its
            // cache misses are in flight at once: tags, entries (in the
            // buckets the tags point at), the slots of the one-shots an
            // event pops and the paths kept on the heap, and the ancestors'
            // tags of the events that walk.
            let tags = p.spans.iter().fold(0, |acc, &(from, to)| {
                acc ^ w.touch_tags(&p.lookups[from..to])
            });
            p.buckets.clear();
            p.buckets.extend(
                p.spans
                    .iter()
                    .map(|&(_, to)| w.likely_bucket(p.lookups[to - 1].0)),
            );
            // An event pops the slot at its entry's head; a link writes its
            // own slot.
            p.heads.clear();
            let mut linked = 0;
            for (op, &b) in window.iter().zip(&p.buckets) {
                let head = w.touch_entry(b);
                p.heads.push(match *op {
                    Op::Event { .. } => head,
                    Op::Link { link, .. } => {
                        linked ^= head;
                        link.slot
                    }
                });
            }
            let slots = p
                .heads
                .iter()
                .fold(0, |acc, &slot| acc ^ w.touch_slot(slot))
                ^ p.buckets.iter().fold(0, |acc, &b| acc ^ w.touch_key(b));
            let mut ancestors = 0;
            for (i, op) in window.iter().enumerate() {
                if let Op::Event { meta, .. } = *op {
                    let path = &p.paths[op.path()];
                    let hash = p.lookups[p.spans[i].1 - 1].0;
                    if w.needs_ancestors(meta.event_type, path, hash, p.buckets[i]) {
                        let start = p.lookups.len();
                        w.lookups(path, true, &mut p.lookups);
                        p.spans[i] = (start, p.lookups.len());
                        ancestors ^= w.touch_tags(&p.lookups[start..]);
                    }
                }
            }
            std::hint::black_box((tags, slots, ancestors, linked));
            for (op, &(from, to)) in window.iter().zip(&p.spans) {
                self.apply(op, &p.paths, &p.lookups[from..to]);
            }
        }
        p.ops.clear();
        p.paths.clear();
        p.staged.clear();
        p.events = 0;
        self.pending = p;
        // Published once, at the end: the dispatch thread, woken earlier,
        // would only wait for the lock, taking its cache line meanwhile.
        self.publish(queued);
        if self.queue.jobs.is_empty() && self.published != 0 {
            // Pending ops had been announced and matched nothing.
            self.published = 0;
            queued.store(0, Ordering::Release);
        }
    }

    /// Defers an op (see `Pending`) and, every `STAGE_BURST` ops, moves the
    /// read-ahead on: the tags of the ops since the last burst, the entries
    /// of the burst `STAGE_LAG` before them, what the entries of the burst
    /// `2 * STAGE_LAG` before point at. The caller then releases the lock
    /// with `zk_dispatcher::unlock_pending`.
    fn defer(&mut self, op: impl FnOnce(usize, usize) -> Op, path: &[u8]) {
        let w = &self.watches;
        let p = &mut self.pending;
        p.push(op, path);
        let hash = w.hash(path);
        p.staged.push((hash, NIL_BUCKET));
        let len = p.ops.len();
        if len % STAGE_BURST != 0 {
            return;
        }
        // A burst of each stage: the prefetches' page walks overlap.
        for &(hash, _) in &p.staged[len - STAGE_BURST..] {
            w.prefetch_tag(hash);
        }
        if let Some(end) = len.checked_sub(STAGE_LAG) {
            for staged in &mut p.staged[end.saturating_sub(STAGE_BURST)..end] {
                let bucket = w.likely_bucket(staged.0);
                w.prefetch_entry(bucket);
                staged.1 = bucket;
            }
        }
        if let Some(end) = len.checked_sub(2 * STAGE_LAG) {
            let from = end.saturating_sub(STAGE_BURST);
            for (op, staged) in p.ops[from..end].iter().zip(&p.staged[from..end]) {
                let linked = match *op {
                    Op::Link { link, .. } => Some(link.slot),
                    Op::Event { .. } => None,
                };
                w.prefetch_behind(staged.1, linked);
            }
        }
    }

    /// Applies the oldest `n` pending ops (fewer than there are), whose
    /// read-ahead is done, and keeps the others pending.
    fn settle_oldest(&mut self, n: usize, queued: &AtomicUsize) {
        let mut p = std::mem::take(&mut self.pending);
        debug_assert!(n < p.ops.len() && p.staged.len() == p.ops.len());
        let mut events = 0;
        for (op, &(hash, _)) in p.ops[..n].iter().zip(&p.staged) {
            self.apply_hashed(op, &p.paths, hash);
            events += usize::from(matches!(op, Op::Event { .. }));
        }
        let cut = p.ops[n].path().start;
        p.ops.drain(..n);
        p.staged.drain(..n);
        p.paths.drain(..cut);
        for op in &mut p.ops {
            let (Op::Event { at, .. } | Op::Link { at, .. }) = op;
            *at -= cut;
        }
        p.events -= events;
        let now = Instant::now();
        p.last_settle = Some(now);
        // A dense stream (whatever its first op looked like): the dispatch
        // thread leaves the next window to the feeder, `SETTLE_AFTER` from
        // this one.
        p.since = Some(now);
        p.dense = true;
        self.pending = p;
        // Published as `settle` does: once, at the end.
        self.publish(queued);
    }

    /// Applies one pending op with its path's own lookup, from the hash
    /// `defer` made (`link` and matching make the prefixes if they need
    /// them).
    fn apply_hashed(&mut self, op: &Op, paths: &[u8], hash: u32) {
        self.apply(op, paths, &[(hash, op.path().len())]);
    }

    /// Applies one pending op (its path in `paths`) with its lookups.
    fn apply(&mut self, op: &Op, paths: &[u8], lookups: &[(u32, usize)]) {
        let path = &paths[op.path()];
        match *op {
            Op::Event { meta, .. } => self.deliver(meta, path, lookups),
            Op::Link { link, .. } => self.watches.link(link, path, lookups),
        }
    }

    /// Matches a node event and queues its calls, if any (unpublished:
    /// see `settle`).
    fn deliver(&mut self, meta: EventMeta, path: &[u8], lookups: &[(u32, usize)]) {
        let hash = lookups.last().expect("a path has at least one lookup").0;
        let found = self.watches.find(hash, path);
        self.deliver_found(meta, path, lookups, found);
    }

    /// `deliver` with the path's entry found beforehand (`Registry::find`).
    fn deliver_found(
        &mut self,
        meta: EventMeta,
        path: &[u8],
        lookups: &[(u32, usize)],
        found: Option<u32>,
    ) {
        let mut targets = std::mem::take(&mut self.scratch);
        targets.clear();
        self.watches
            .match_found(meta.event_type, path, lookups, found, &mut targets);
        if targets.is_empty() {
            self.scratch = targets;
            self.stats.events_unmatched += 1;
            return;
        }
        self.stats.events_matched += 1;
        let q = &mut self.queue;
        q.prefetch_ahead();
        let path_at = q.paths.len();
        q.paths.extend_from_slice(path);
        q.paths.push(0);
        let targets_job = match targets.as_slice() {
            [one] => Targets::One(*one),
            many => {
                let start = q.targets.len();
                q.targets.extend_from_slice(many);
                Targets::Many {
                    start,
                    len: many.len(),
                }
            }
        };
        q.bounded += 1;
        q.jobs.push(Job::Event {
            meta,
            path_at,
            path_len: path.len() as u32,
            targets: targets_job,
        });
        self.scratch = targets;
    }

    /// Queues a job; the caller releases the lock with `zk_dispatcher::unlock`.
    fn push(&mut self, job: Job, queued: &AtomicUsize) {
        self.queue.prefetch_ahead();
        self.queue.jobs.push(job);
        self.publish(queued);
    }

    /// Tells the dispatch thread's spinning about the queued jobs when it
    /// cares: the first jobs, and the end of a gathering. A store per job
    /// would pull the line away from the spinning thread at every event.
    fn publish(&mut self, queued: &AtomicUsize) {
        let len = self.queue.jobs.len();
        if (self.published == 0 && len > 0) || (self.published < GATHER_JOBS && len >= GATHER_JOBS)
        {
            self.published = len;
            queued.store(len, Ordering::Release);
        }
    }
}

/// The dispatcher itself (opaque to C). Rust code owns one through [`Dispatcher`].
pub struct zk_dispatcher {
    shared: Mutex<Shared>,
    wake: Condvar,
    /// Jobs in the queue as far as the dispatch thread's spinning needs to
    /// know: 0, at least 1 (or ops pending), at least `GATHER_JOBS` (see
    /// `Shared::publish`).
    queued: OwnLine<AtomicUsize>,
    options: u32,
    capacity: usize,
    dispatch_thread: OnceLock<ThreadId>,
    join: Mutex<Option<JoinHandle<Worker>>>,
    /// Written by the dispatch thread only.
    counters: Counters,
}

/// A value on cache lines of its own: the feeders read the fields next to
/// it at every event, and a write to it from the other thread would take
/// their line away each time (false sharing).
#[repr(align(64))]
#[derive(Default)]
struct OwnLine<T>(T);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Counters only the dispatch thread writes (plain stores, no atomic
/// read-modify-write), read by `stats()`; on lines of their own (`OwnLine`).
#[repr(align(64))]
#[derive(Default)]
struct Counters {
    watch_calls: AtomicU64,
    listener_calls: AtomicU64,
    submit_calls: AtomicU64,
    callback_panics: AtomicU64,
    /// Watches fired for the last time whose callback has returned (see
    /// `Registry::popped`).
    claimed: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Release);
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

/// How long the dispatch thread polls the lock before blocking on it.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_micros(50);

/// The most `spin_loop` hints between two of the dispatch thread's attempts
/// at the lock (see `lock_polling`).
const LOCK_BACKOFF_MAX: u32 = 256;

/// Jobs the dispatch thread runs at a time, asking the cache for what the
/// next ones read meanwhile (see `Worker::prefetch`).
const WINDOW: usize = 32;

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
            shared: Mutex::new(Shared {
                watches: Registry::default(),
                listeners: BTreeMap::new(),
                next_listener: 1,
                machine: Machine::default(),
                chroot: None,
                closing: false,
                next_seq: 1,
                stats: zk_dispatcher_stats::default(),
                queue: Batch::default(),
                published: 0,
                sleeping: false,
                scratch: Vec::new(),
                pending: Pending::default(),
                defer_all: std::env::var_os("ZK_STATES_DEFER_ALL").is_some_and(|v| v != "0"),
            }),
            wake: Condvar::new(),
            queued: OwnLine(AtomicUsize::new(0)),
            options,
            capacity,
            dispatch_thread: OnceLock::new(),
            join: Mutex::new(None),
            counters: Counters::default(),
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
    /// joins it; the handlers of the watches still registered are then
    /// dropped here. Called from the dispatch thread itself, the thread is
    /// detached instead: it finishes the queue and drops them on its own.
    fn close(&self) {
        lock(&self.shared).closing = true;
        self.wake.notify_all();
        let handle = lock(&self.join).take();
        if let Some(handle) = handle {
            if self.on_dispatch_thread() {
                drop(handle);
            } else if let Ok(worker) = handle.join() {
                drop(worker);
            }
        }
    }

    fn open(&self) -> Result<MutexGuard<'_, Shared>> {
        let mut s = lock(&self.shared);
        s.check_open()?;
        Ok(s)
    }

    /// `open`, with the pending operations applied.
    fn open_settled(&self) -> Result<MutexGuard<'_, Shared>> {
        let mut s = self.open()?;
        s.settle(&self.queued);
        Ok(s)
    }

    /// The lock, with the pending operations applied.
    fn lock_settled(&self) -> MutexGuard<'_, Shared> {
        let mut s = lock(&self.shared);
        s.settle(&self.queued);
        s
    }

    /// Releases the lock after deferring an operation (`Shared::defer`):
    /// applies the oldest window of pending ops once their read-ahead is
    /// done, and otherwise makes sure the dispatch thread will apply them if
    /// nothing else comes.
    fn unlock_pending(&self, mut guard: MutexGuard<'_, Shared>) {
        let s = &mut *guard;
        let p = &mut s.pending;
        if p.ops.len() >= PENDING_WINDOW + 2 * STAGE_LAG {
            s.settle_oldest(PENDING_WINDOW, &self.queued);
        } else if p.ops.len() == 1 {
            let now = Instant::now();
            p.since = Some(now);
            p.dense = p
                .last_settle
                .is_some_and(|t| now.duration_since(t) < DENSE_GAP);
            if !p.dense && s.published == 0 {
                // Wake the dispatch thread's spinning, as `Shared::publish`
                // does for a first job.
                s.published = 1;
                self.queued.store(1, Ordering::Release);
            }
        }
        self.unlock(guard);
    }

    /// Releases the lock after queueing, waking the dispatch thread if it
    /// sleeps.
    fn unlock(&self, mut guard: MutexGuard<'_, Shared>) {
        let sleeping = std::mem::replace(&mut guard.sleeping, false);
        drop(guard);
        if sleeping {
            self.wake.notify_one();
        }
    }

    fn has_room(&self, s: &mut Shared) -> Result<()> {
        if self.capacity != 0 && s.queue.bounded + s.pending.events >= self.capacity {
            // Pending events may match nothing: count exactly.
            s.settle(&self.queued);
        }
        if self.capacity != 0 && s.queue.bounded >= self.capacity {
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
    /// On failure the handler is handed back, untouched.
    pub fn watch_add<H: WatchHandler>(
        &self,
        path: &str,
        kind: zk_watch_kind,
        handler: H,
    ) -> std::result::Result<u64, Refused<H>> {
        self.add(path, kind, handler, |h| Handler::Boxed(Box::new(h)))
    }

    /// [`zk_dispatcher::watch_add`] for a [`PlainHandler`], which costs no
    /// allocation. On failure the handler is handed back, not released.
    #[inline(always)]
    pub fn watch_add_plain(
        &self,
        path: &str,
        kind: zk_watch_kind,
        handler: PlainHandler,
    ) -> std::result::Result<u64, Refused<PlainHandler>> {
        self.add(path, kind, handler, Handler::Plain)
    }

    /// Registers a watch whose handler `wrap` makes, once the watch is taken.
    /// Inlined, with `Registry::reserve`, into its callers (the C entry
    /// point among them): a call would pass the handler, the reservation and
    /// the result through memory (paired A/B, one-shot re-registered: 0.95x).
    #[inline(always)]
    fn add<H>(
        &self,
        path: &str,
        kind: zk_watch_kind,
        handler: H,
        wrap: impl FnOnce(H) -> Handler,
    ) -> std::result::Result<u64, Refused<H>> {
        let bytes = path.as_bytes();
        let mut guard = lock(&self.shared);
        let s = &mut *guard;
        // Applied now, the path is looked up first: a path the registry
        // holds needs no validation (it had it when first linked).
        let found = s.look_up_now(bytes);
        if !matches!(found, Some((_, Some(_)))) {
            if let Err(status) = path::validate(path) {
                return Err(Refused { status, handler });
            }
        }
        if let Err(status) = s.check_open() {
            return Err(Refused { status, handler });
        }
        let added = s.watches.reserve(kind);
        // Under the lock: registered before any event that can match it.
        if let Some(chunk) = added.chunk {
            s.queue.chunks.push(chunk);
        }
        s.queue.prefetch_ahead();
        // Not published: no hurry until an event for it is queued.
        s.queue.jobs.push(Job::Register {
            slot: added.slot,
            handler: wrap(handler),
        });
        let link = added.link;
        match found {
            Some((hash, entry)) => {
                // `reserve` left the table as it was.
                s.watches
                    .link_found(link, bytes, &[(hash, bytes.len())], entry);
                self.unlock(guard);
            }
            None => {
                s.defer(|at, len| Op::Link { link, at, len }, bytes);
                self.unlock_pending(guard);
            }
        }
        Ok(added.id)
    }

    /// Removes a watch. `ZK_ERR_NOT_FOUND` if it was removed before, or is a
    /// one-shot whose call has started. After success its callback is not
    /// started again (a fired one-shot whose call was still queued never
    /// runs), and its handler is dropped on the dispatch thread once the
    /// events queued before have been passed.
    pub fn watch_remove(&self, id: u64) -> Result<()> {
        let mut s = self.lock_settled();
        match s.watches.remove(id).ok_or(zk_status::ZK_ERR_NOT_FOUND)? {
            Removed::Release(slot) => {
                let gen = (id >> 32) as u32;
                s.push(Job::Release { slot, gen }, &self.queued);
                self.unlock(s);
            }
            Removed::Cancelled => drop(s),
        }
        Ok(())
    }

    /// Registers a state listener and returns its id. On failure the handler
    /// is handed back, untouched.
    pub fn listener_add<H: ListenerHandler>(
        &self,
        handler: H,
    ) -> std::result::Result<u64, Refused<H>> {
        let mut s = match self.open_settled() {
            Ok(s) => s,
            Err(status) => return Err(Refused { status, handler }),
        };
        let id = LISTENER_ID_BIT | s.next_listener;
        s.next_listener += 1;
        let listener: Arc<DynListener> = Arc::new(Listener {
            id,
            removed: AtomicBool::new(false),
            handler,
        });
        s.listeners.insert(id, Arc::clone(&listener));
        s.push(Job::RegisterListener(listener), &self.queued);
        self.unlock(s);
        Ok(id)
    }

    /// Removes a listener. `ZK_ERR_NOT_FOUND` if it is not registered (never
    /// was, was removed, or removed itself by returning true).
    pub fn listener_remove(&self, id: u64) -> Result<()> {
        let mut s = self.lock_settled();
        let listener = s.listeners.remove(&id).ok_or(zk_status::ZK_ERR_NOT_FOUND)?;
        if listener.removed.swap(true, Ordering::AcqRel) {
            // It returned true and removed itself: ours may be the last
            // reference, so it is dropped after the lock.
            drop(s);
            drop(listener);
            return Err(zk_status::ZK_ERR_NOT_FOUND);
        }
        // Never the last reference: the dispatch thread frees it.
        drop(listener);
        s.push(Job::ReleaseListener(id), &self.queued);
        self.unlock(s);
        Ok(())
    }

    /// Feeds a node event for `server_path` (a server path: the chroot, if
    /// any, is stripped here), as kazoo's `_read_watch_event`.
    pub fn event(&self, event_type: zk_event_type, server_path: &str, zxid: i64) -> Result<()> {
        let mut guard = lock(&self.shared);
        let s = &mut *guard;
        let fires = matches!(
            event_type,
            zk_event_type::Created
                | zk_event_type::Deleted
                | zk_event_type::Changed
                | zk_event_type::Child
        );
        let client_path = path::unchroot(s.chroot.as_deref(), server_path);
        // Applied now, the path is looked up first: a path the registry
        // holds needs no validation (it had it when first linked, and the
        // chroot when set), except the chroot's `/`, which both the chroot
        // and the chroot with a trailing slash become.
        let found = match client_path {
            Some(client) if fires && !s.closing => s.look_up_now(client.as_bytes()),
            _ => None,
        };
        let held = matches!(found, Some((_, Some(_))));
        if !held || (s.chroot.is_some() && client_path == Some("/")) {
            path::validate(server_path)?;
        }
        s.check_open()?;
        if fires {
            // Refuse before touching anything, so a refused event pops no
            // watch. (The check may apply the pending ops: there are none if
            // the path was looked up, so its entry stays where it was found.)
            self.has_room(s)?;
        }
        let seq = s.next_seq();
        s.stats.events_fed += 1;
        if !fires {
            s.stats.events_ignored += 1;
            return Ok(());
        }
        let Some(client_path) = client_path else {
            s.stats.events_unmatched += 1;
            return Ok(());
        };
        let meta = EventMeta {
            event_type,
            state: s.machine.keeper,
            zxid,
            seq,
        };
        let path = client_path.as_bytes();
        // Applied now if it was looked up (or if refusing for room applied
        // the pending ops meanwhile).
        let found = found.or_else(|| s.look_up_now(path));
        match found {
            Some((hash, entry)) => {
                s.deliver_found(meta, path, &[(hash, path.len())], entry);
                s.publish(&self.queued);
                self.unlock(guard);
            }
            None => {
                s.defer(|at, len| Op::Event { meta, at, len }, path);
                self.unlock_pending(guard);
            }
        }
        Ok(())
    }

    /// Feeds a new keeper state, as kazoo's `_session_callback`.
    pub fn session(&self, state: zk_keeper_state) -> Result<()> {
        let mut guard = self.open_settled()?;
        let s = &mut *guard;
        let seq = s.next_seq();
        s.stats.sessions_fed += 1;
        let step = s.machine.step(state, self.options);
        if let Some(kazoo) = step.notify {
            if !s.listeners.is_empty() {
                let listeners = s.listeners.keys().copied().collect();
                s.push(
                    Job::State {
                        state: kazoo,
                        seq,
                        listeners,
                    },
                    &self.queued,
                );
            }
        }
        let actions = ResetActions {
            fire_one_shot: step.actions & ZK_SESSION_ACTION_FIRE_ONE_SHOT != 0,
            notify_one_shot: step.actions & ZK_SESSION_ACTION_NOTIFY_ONE_SHOT != 0,
            notify_persistent: step.actions & ZK_SESSION_ACTION_NOTIFY_PERSISTENT != 0,
            drop_persistent: step.actions & ZK_SESSION_ACTION_DROP_PERSISTENT != 0,
        };
        if actions.fire_one_shot || actions.notify_one_shot || actions.notify_persistent {
            let reset = s.watches.reset(actions);
            for (slot, gen) in reset.released {
                s.push(Job::Release { slot, gen }, &self.queued);
            }
            if !reset.targets.is_empty() {
                let meta = EventMeta {
                    event_type: zk_event_type::None,
                    state,
                    zxid: ZK_ZXID_UNKNOWN,
                    seq,
                };
                let start = s.queue.targets.len();
                s.queue.targets.extend_from_slice(&reset.targets);
                s.push(
                    Job::Event {
                        meta,
                        path_at: 0,
                        path_len: NO_PATH,
                        targets: Targets::Many {
                            start,
                            len: reset.targets.len(),
                        },
                    },
                    &self.queued,
                );
            }
        }
        self.unlock(guard);
        Ok(())
    }

    /// The current kazoo and keeper states (as of the last call fed).
    pub fn state(&self) -> (zk_kazoo_state, zk_keeper_state) {
        let s = lock(&self.shared);
        (s.machine.kazoo, s.machine.keeper)
    }

    /// Queues a task to run once on the dispatch thread (kazoo's `Callback`).
    /// On failure the task is handed back, untouched.
    pub fn submit<T: Task>(&self, task: T) -> std::result::Result<(), Refused<T>> {
        let mut s = match self.open_settled() {
            Ok(s) => s,
            Err(status) => {
                return Err(Refused {
                    status,
                    handler: task,
                })
            }
        };
        if let Err(status) = self.has_room(&mut s) {
            return Err(Refused {
                status,
                handler: task,
            });
        }
        let seq = s.next_seq();
        s.stats.submitted += 1;
        s.queue.bounded += 1;
        s.push(
            Job::Call {
                seq,
                task: Box::new(task),
            },
            &self.queued,
        );
        self.unlock(s);
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
            let mut s = self.open_settled()?;
            s.push(Job::Flush(Arc::clone(&signal)), &self.queued);
            self.unlock(s);
        }
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
        let s = self.lock_settled();
        let mut stats = s.stats;
        let claimed = self.counters.claimed.load(Ordering::Acquire);
        stats.watches = s.watches.live() as u64 + (s.watches.popped() - claimed);
        stats.listeners = s.listeners.len() as u64;
        stats.queued = s.queue.jobs.len() as u64;
        drop(s);
        let c = &self.counters;
        stats.watch_calls = c.watch_calls.load(Ordering::Acquire);
        stats.listener_calls = c.listener_calls.load(Ordering::Acquire);
        stats.submit_calls = c.submit_calls.load(Ordering::Acquire);
        stats.callback_panics = c.callback_panics.load(Ordering::Acquire);
        stats
    }

    /// The dispatch thread's way to the lock: polled with `try_lock` for a
    /// while before blocking. A thread blocked on a futex mutex marks it
    /// contended, and the holder (a feeder, in the middle of a stream of
    /// events) then pays a wake-up system call when it unlocks. Failed
    /// attempts back off exponentially: each `try_lock` takes the lock's
    /// cache line from the feeder, whose next lock and unlock then wait for
    /// it to come back.
    fn lock_polling(&self) -> MutexGuard<'_, Shared> {
        let start = std::time::Instant::now();
        let mut backoff = 1u32;
        loop {
            for _ in 0..16 {
                match self.shared.try_lock() {
                    Ok(guard) => return guard,
                    Err(std::sync::TryLockError::Poisoned(e)) => return e.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => {
                        for _ in 0..backoff {
                            std::hint::spin_loop();
                        }
                        backoff = (backoff * 2).min(LOCK_BACKOFF_MAX);
                    }
                }
            }
            if start.elapsed() > LOCK_POLL {
                return lock(&self.shared);
            }
        }
    }

    /// Waits for work and swaps it into `batch` (emptied by the caller),
    /// handing back the slots retired meanwhile. False once closing and
    /// drained.
    fn next_batch(&self, batch: &mut Batch, retired: &mut Vec<(u32, u32)>, dense: bool) -> bool {
        if dense {
            // A dense stream (the last batch was large): let the next batch
            // gather briefly rather than take the lock after every push,
            // which would make the feeder and this thread fight over it.
            let start = std::time::Instant::now();
            while self.queued.load(Ordering::Acquire) < GATHER_JOBS && start.elapsed() < GATHER_WAIT
            {
                for _ in 0..16 {
                    std::hint::spin_loop();
                }
            }
        }
        let mut s = self.lock_polling();
        s.watches.retire(retired);
        let mut spun = false;
        loop {
            if !s.queue.jobs.is_empty() {
                break;
            }
            if let Some(since) = s.pending.since {
                if !s.pending.dense || s.closing || since.elapsed() >= SETTLE_AFTER {
                    s.settle(&self.queued);
                    continue;
                }
                // A dense stream's feeder is filling a window: leave it the
                // window (so that its misses overlap), unless it stops.
                s.published = 0;
                self.queued.store(0, Ordering::Release);
                drop(s);
                while self.queued.load(Ordering::Acquire) == 0 && since.elapsed() < SETTLE_AFTER {
                    for _ in 0..32 {
                        std::hint::spin_loop();
                    }
                }
                s = self.lock_polling();
                continue;
            }
            if s.closing {
                return false;
            }
            if !spun {
                drop(s);
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
                s = self.lock_polling();
                continue;
            }
            s.sleeping = true;
            s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.sleeping = false;
        std::mem::swap(&mut s.queue, batch);
        s.published = 0;
        self.queued.store(0, Ordering::Release);
        true
    }

    /// The dispatch thread's loop; returns what it owns when closed.
    fn run(self: Arc<Self>) -> Worker {
        let mut worker = Worker::default();
        let mut batch = Batch::default();
        let mut window = Vec::with_capacity(WINDOW);
        let mut next = Vec::with_capacity(WINDOW);
        let mut dense = false;
        while self.next_batch(&mut batch, &mut worker.retired, dense) {
            dense = batch.jobs.len() >= DENSE_BATCH;
            worker.gens.append(&mut batch.chunks);
            let mut jobs = std::mem::take(&mut batch.jobs);
            let mut queue = jobs.drain(..);
            // A window at a time, asking the cache for what the next window
            // will read while this one runs: with a million watches those
            // are misses, which then overlap with the calls.
            window.extend(queue.by_ref().take(WINDOW));
            worker.prefetch(&window);
            while !window.is_empty() {
                next.extend(queue.by_ref().take(WINDOW));
                worker.prefetch(&next);
                for job in window.drain(..) {
                    self.run_job(job, &batch, &mut worker);
                }
                std::mem::swap(&mut window, &mut next);
            }
            drop(queue);
            batch.jobs = jobs;
            batch.paths.clear();
            batch.targets.clear();
            batch.bounded = 0;
            // After a burst (say a million registrations) give the memory
            // back; the two batches take turns as the queue.
            batch.shrink();
        }
        worker
    }

    fn call_user(&self, seq: u64, f: impl FnOnce()) {
        CURRENT_SEQ.with(|c| c.set(seq));
        if catch_unwind(AssertUnwindSafe(f)).is_err() {
            bump(&self.counters.callback_panics);
        }
        CURRENT_SEQ.with(|c| c.set(0));
    }

    /// Calls one watch, unless it was removed after the job was queued. A
    /// last call (`claim`) is claimed by swapping the generation out, which
    /// `Registry::remove` also tries: one of the two wins.
    fn fire(&self, w: &mut Worker, event: &Event<'_>, target: Target) {
        let k = target.slot as usize;
        let cell = &w.gens[k / CHUNK][k % CHUNK];
        let live = if target.claim {
            cell.compare_exchange(
                target.gen,
                gone(target.gen),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        } else {
            cell.load(Ordering::Acquire) == target.gen
        };
        if live {
            if let Some(handler) = w.handlers.get(k).and_then(Option::as_ref) {
                bump(&self.counters.watch_calls);
                self.call_user(event.seq, || handler.on_event(event));
            }
        }
        if target.claim {
            // Fired for the last time: dropped now, so its free function runs
            // right after the call (or here, if the call was cancelled).
            if let Some(h) = w.handlers.get_mut(k) {
                drop(h.take());
            }
            w.retired.push((target.slot, target.gen));
            if live {
                bump(&self.counters.claimed);
            }
        }
    }

    fn run_job(&self, job: Job, batch: &Batch, w: &mut Worker) {
        match job {
            Job::Register { slot, handler } => {
                let k = slot as usize;
                if w.handlers.len() <= k {
                    w.handlers.resize_with(k + 1, || None);
                }
                w.handlers[k] = Some(handler);
            }
            Job::Release { slot, gen } => {
                if let Some(h) = w.handlers.get_mut(slot as usize) {
                    drop(h.take());
                }
                w.retired.push((slot, gen));
            }
            Job::RegisterListener(listener) => {
                w.listeners.insert(listener.id, listener);
            }
            Job::ReleaseListener(id) => {
                w.listeners.remove(&id);
            }
            Job::Event {
                meta,
                path_at,
                path_len,
                targets,
            } => {
                let path = (path_len != NO_PATH).then(|| {
                    let bytes = &batch.paths[path_at..=path_at + path_len as usize];
                    CStr::from_bytes_with_nul(bytes).expect("validated paths hold no NUL")
                });
                let event = meta.with_path(path);
                match targets {
                    Targets::One(t) => self.fire(w, &event, t),
                    Targets::Many { start, len } => {
                        for &t in &batch.targets[start..start + len] {
                            self.fire(w, &event, t);
                        }
                    }
                }
            }
            Job::State {
                state,
                seq,
                listeners,
            } => {
                for id in listeners {
                    let Some(l) = w.listeners.get(&id) else {
                        continue;
                    };
                    if l.removed.load(Ordering::Acquire) {
                        continue;
                    }
                    bump(&self.counters.listener_calls);
                    let mut remove = false;
                    self.call_user(seq, || remove = l.handler.on_state(state));
                    if remove && !l.removed.swap(true, Ordering::AcqRel) {
                        // Forget it now, so its free function runs right after it
                        // returned (both references dropped outside the lock).
                        let registered = lock(&self.shared).listeners.remove(&id);
                        drop(registered);
                        w.listeners.remove(&id);
                    }
                }
            }
            Job::Call { seq, task } => {
                bump(&self.counters.submit_calls);
                self.call_user(seq, || task.run());
            }
            Job::Flush(signal) => {
                // Everything before the flush has run.
                *lock(&signal.done) = true;
                signal.cv.notify_all();
            }
        }
    }
}

/// What the dispatch thread owns: the handler of every registered watch (by
/// slot), its copy of the generation chunks, its references to the
/// listeners, and the slots it is done with (handed back at the next batch).
#[derive(Default)]
struct Worker {
    handlers: Vec<Option<Handler>>,
    gens: Vec<Arc<[AtomicU32]>>,
    listeners: HashMap<u64, Arc<DynListener>>,
    /// Slots done with, each with the generation of its last watch.
    retired: Vec<(u32, u32)>,
}

impl Worker {
    /// Asks the cache for the generation and the handler of each
    /// single-target event in `jobs` (a prefetch: nothing waits for it).
    fn prefetch(&self, jobs: &[Job]) {
        for job in jobs {
            if let Job::Event {
                targets: Targets::One(t),
                ..
            } = job
            {
                let k = t.slot as usize;
                if let Some(chunk) = self.gens.get(k / CHUNK) {
                    hint::prefetch(&chunk[k % CHUNK]);
                }
                if let Some(handler) = self.handlers.get(k) {
                    hint::prefetch(handler);
                }
            }
        }
    }
}

/// A xorshift64 generator: the model tests' reproducible randomness.
#[cfg(test)]
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_jobs_stay_small() {
        // A node event is one job in the queue: keep it within a cache line.
        assert!(
            std::mem::size_of::<Job>() <= 64,
            "{}",
            std::mem::size_of::<Job>()
        );
        assert_eq!(std::mem::size_of::<Target>(), 12);
        // What the dispatch thread keeps per watch slot.
        assert!(
            std::mem::size_of::<Option<Handler>>() <= 48,
            "{}",
            std::mem::size_of::<Option<Handler>>()
        );
    }
}
