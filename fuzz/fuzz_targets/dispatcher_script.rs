//! A byte-coded script of calls on one dispatcher, checked step by step
//! against a reference model written from the header and README (kazoo's
//! session machine, the watch matching rules, the ownership rules).
//!
//! Script format (every missing byte reads as 0):
//!
//! * byte 0: dispatcher options `b & 3` (`ZK_DISPATCHER_CURATOR_STATES`,
//!   `ZK_DISPATCHER_KEEP_WATCHES`), queue capacity
//!   `[0, 0, 1, 2, 3, 4, 8, 0][(b >> 2) & 7]`.
//! * then operations, an opcode byte `op % 14` followed by its operands:
//!
//! | op | name            | operands                 | what                                                  |
//! |----|-----------------|--------------------------|-------------------------------------------------------|
//! | 0  | WATCH_ADD       | path, kind, flags        | kind code from KIND_CODES (incl. invalid); flags&1 or an invalid kind or path: C ABI, else Rust API |
//! | 1  | WATCH_REMOVE    | sel, flags               | id from every id handed out plus bogus ones; flags&1: C ABI |
//! | 2  | LISTENER_ADD    | flags                    | flags&1: C ABI; flags&2: the listener returns true     |
//! | 3  | LISTENER_REMOVE | sel, flags               | as WATCH_REMOVE                                       |
//! | 4  | EVENT           | type, path, zxid         | zk_dispatcher_event with an event type code           |
//! | 5  | SESSION         | state                    | zk_dispatcher_session with a keeper state code        |
//! | 6  | SUBMIT          | flags                    | flags&1: C ABI; flags&2: the callback checks flush (WOULD_DEADLOCK), stats, current seq |
//! | 7  | FLUSH           |                          | releases gates, flushes, verifies everything           |
//! | 8  | CHROOT          | sel                      | zk_dispatcher_set_chroot with CHROOTS[sel] (NULL, "/", valid, invalid) |
//! | 9  | STATS           |                          | zk_dispatcher_stats_get against the model              |
//! | 10 | STATE           |                          | zk_dispatcher_state against the model                  |
//! | 11 | BLOCK           |                          | submits a gate callback that holds the dispatch thread |
//! | 12 | UNBLOCK         |                          | releases the running gate                             |
//! | 13 | REENTER         | op (`% 7`), its operands | makes operation 0..6 from a callback on the dispatch thread (C ABI) |
//!
//! A code operand (kind, type, state) is a byte `b`: `TABLE[b % len]` when
//! `b < 0xf0` (mostly valid codes, some invalid), otherwise the next four
//! bytes, big-endian: any int32.
//!
//! A path operand is a byte `s`: `PATHS[s % len]` when `s < 0xe0`, otherwise
//! a free-form path: a length byte (`% 12`) and that many raw bytes (cut at
//! the first NUL, as C would see them).
//!
//! Checked: every status against the documented set; ids never reused;
//! sequence numbers increasing in feed order and non-decreasing in delivery
//! order, and `zk_dispatch_current_seq()` inside callbacks; the exact
//! deliveries (watch, event type, state, path, zxid; listener states) and their
//! documented order; kazoo's listener states; one-shots at most once; the stats
//! identity and every counter; every user data (closure guard or C
//! `user_data`) freed exactly once, never while its callback runs, never
//! before its last call, never when the registration failed.
//!
//! While a gate holds the dispatch thread, nothing fed after it can run, so
//! the model is exact there (removal results, queue bound, `queued`); without a
//! gate, races with the dispatch thread are allowed only as the header allows
//! them.
//!
//! Checks for the library bugs the fuzzers found (fuzz/REGRESSIONS.md, all
//! fixed) are `regression!` assertions, always enforced.
#![no_main]
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::{c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use zk_states::dispatch::{zk_dispatcher, zk_dispatcher_stats, zk_watch_kind, Dispatcher, Event};
use zk_states::ffi::dispatch::*;
use zk_states::ffi::zk_c_bool;
use zk_states::{zk_kazoo_state, zk_status, zk_watched_event};

// ---------------------------------------------------------------------------
// Constants and operand tables
// ---------------------------------------------------------------------------

const OK: i32 = zk_status::ZK_OK as i32;
const E_TYPE: i32 = zk_status::ZK_ERR_INVALID_EVENT_TYPE as i32;
const E_STATE: i32 = zk_status::ZK_ERR_INVALID_KEEPER_STATE as i32;
const E_UTF8: i32 = zk_status::ZK_ERR_INVALID_UTF8 as i32;
const E_KIND: i32 = zk_status::ZK_ERR_INVALID_WATCH_KIND as i32;
const E_PATH: i32 = zk_status::ZK_ERR_INVALID_PATH as i32;
const E_NOT_FOUND: i32 = zk_status::ZK_ERR_NOT_FOUND as i32;
const E_DEADLOCK: i32 = zk_status::ZK_ERR_WOULD_DEADLOCK as i32;
const E_FULL: i32 = zk_status::ZK_ERR_QUEUE_FULL as i32;

const CURATOR: u32 = 1;
const KEEP_WATCHES: u32 = 2;

// keeper states
const CONNECTING: i32 = 1;
const CONNECTED: i32 = 3;
const AUTH_FAILED: i32 = 4;
const CONNECTED_RO: i32 = 5;
const CLOSED: i32 = 7;
const EXPIRED: i32 = -112;
// kazoo states
const K_CONNECTED: i32 = 0;
const K_SUSPENDED: i32 = 1;
const K_RECONNECTED: i32 = 2;
const K_LOST: i32 = 3;
const K_READ_ONLY: i32 = 4;
// event types
const T_NONE: i32 = -1;
const T_CREATED: i32 = 1;
const T_DELETED: i32 = 2;
const T_CHANGED: i32 = 3;
const T_CHILD: i32 = 4;

const CAPACITIES: [usize; 8] = [0, 0, 1, 2, 3, 4, 8, 0];

const PATHS: &[&[u8]] = &[
    b"/",
    b"/a",
    b"/a/b",
    b"/a/b/c",
    b"/b",
    b"/app",
    b"/app/a",
    b"/app/a/b",
    b"/application",
    "/\u{e9}".as_bytes(),
    b"/a/b/c/d",
    b"/a/b",
    b"/a",
    b"/app/b",
    // invalid ones
    b"",
    b"a",
    b"/a/",
    b"//",
    b"/a//b",
    b"/a/../b",
    b"/a/./b",
    b"/.",
    b"/\x01",
    b"/\x7f",
    "/\u{e000}".as_bytes(),
    "/\u{ffff}".as_bytes(),
    "/\u{1f600}".as_bytes(), // beyond the BMP
    "/\u{fff0}".as_bytes(),
    "/\u{f8ff}".as_bytes(),
    "/\u{9f}".as_bytes(),
    "/\u{a0}".as_bytes(),
    "/\u{d7ff}".as_bytes(),
    "/\u{ffef}".as_bytes(),
    b"/\xff",
    b"/a\xc3",
    b"/\xed\xa0\x80", // an encoded surrogate: not UTF-8
];

const CHROOTS: &[Option<&[u8]>] = &[
    None,
    Some(b"/"),
    Some(b"/app"),
    Some(b"/a"),
    Some(b"/a/b"),
    Some(b"/app/a"),
    Some(b"app"),
    Some(b"/app/"),
    Some(b""),
    Some(b"/\xff"),
    Some(b"//"),
    Some(b"/\x1f"),
];

const KIND_CODES: &[i32] = &[
    0,
    1,
    2,
    3,
    0,
    1,
    2,
    3,
    -1,
    4,
    5,
    1000,
    -1000,
    i32::MIN,
    i32::MAX,
];

const EVENT_CODES: &[i32] = &[
    1,
    2,
    3,
    4,
    1,
    2,
    3,
    4,
    1,
    3,
    -1,
    -2,
    5,
    6,
    7,
    0,
    8,
    -3,
    1000,
    -1000,
    i32::MIN,
    i32::MAX,
];

const STATE_CODES: &[i32] = &[
    CONNECTING,
    CONNECTED,
    CONNECTING,
    CONNECTED,
    CONNECTED_RO,
    AUTH_FAILED,
    CLOSED,
    EXPIRED,
    CONNECTING,
    CONNECTED,
    0,
    2,
    6,
    8,
    -1,
    -111,
    -113,
    999,
    1000,
    -1000,
    i32::MIN,
    i32::MAX,
];

const ZXIDS: &[i64] = &[-1, 0, 1, 0x1_0000_0005, i64::MAX, i64::MIN, 42];

/// A check for a documented behaviour the library once lacked
/// (fuzz/REGRESSIONS.md names each by its id).
macro_rules! regression {
    ($id:literal, $cond:expr, $($msg:tt)+) => {
        if !$cond {
            panic!("REGRESSION {}: {}", $id, format!($($msg)+));
        }
    };
}

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// What the callbacks observe
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum What {
    Watch {
        typ: i32,
        state: i32,
        path: Option<Vec<u8>>,
        zxid: i64,
    },
    Listener {
        state: i32,
    },
    Call,
}

#[derive(Debug)]
struct Got {
    reg: usize,
    seq: u64,
    what: What,
}

/// One registration attempt's user data, as the test sees it.
struct Reg {
    drops: AtomicU32,
    /// Where the user data was freed: 0 not yet, 1 the dispatch thread, 2 another thread.
    freed_on: AtomicU32,
    active: AtomicBool,
    calls: AtomicU32,
    ret_true: bool,
    submit_checks: bool,
}

struct Tracker {
    log: Mutex<Vec<Got>>,
    disp: AtomicUsize,
    last_delivered_seq: Mutex<u64>,
    dispatch_thread: OnceLock<std::thread::ThreadId>,
}

impl Tracker {
    fn record(&self, reg: &Reg, idx: usize, what: What) {
        assert_eq!(
            reg.drops.load(Ordering::SeqCst),
            0,
            "callback of registration {idx} ran after its user data was freed"
        );
        assert!(
            !reg.active.swap(true, Ordering::SeqCst),
            "callback of registration {idx} re-entered"
        );
        let seq = zk_dispatch_current_seq();
        assert_ne!(seq, 0, "zk_dispatch_current_seq() is 0 inside a callback");
        {
            let mut last = self.last_delivered_seq.lock().unwrap();
            assert!(seq >= *last, "delivery order: seq {seq} after {}", *last);
            *last = seq;
        }
        reg.calls.fetch_add(1, Ordering::SeqCst);
        self.log.lock().unwrap().push(Got {
            reg: idx,
            seq,
            what,
        });
        reg.active.store(false, Ordering::SeqCst);
    }

    fn dispatcher(&self) -> *mut zk_dispatcher {
        self.disp.load(Ordering::SeqCst) as *mut zk_dispatcher
    }
}

/// The user data of a registration: freed (dropped) exactly once.
struct Guard {
    t: Arc<Tracker>,
    reg: Arc<Reg>,
    idx: usize,
}

impl Drop for Guard {
    fn drop(&mut self) {
        assert!(
            !self.reg.active.load(Ordering::SeqCst),
            "user data of registration {} freed while its callback runs",
            self.idx
        );
        let here = std::thread::current().id();
        let on = if self.t.dispatch_thread.get() == Some(&here) {
            1
        } else {
            2
        };
        self.reg.freed_on.store(on, Ordering::SeqCst);
        let before = self.reg.drops.fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            before, 0,
            "user data of registration {} freed twice",
            self.idx
        );
    }
}

fn stats_of(d: *mut zk_dispatcher) -> zk_dispatcher_stats {
    let mut s = zk_dispatcher_stats::default();
    assert_eq!(unsafe { zk_dispatcher_stats_get(d, &mut s) }, OK);
    assert_eq!(
        s.events_fed,
        s.events_matched + s.events_unmatched + s.events_ignored,
        "stats identity events_fed = matched + unmatched + ignored: {s:?}"
    );
    assert_eq!(s.callback_panics, 0);
    assert_eq!(s.adapter_errors, 0);
    s
}

impl Guard {
    fn on_watch(&self, typ: i32, state: i32, path: Option<Vec<u8>>, zxid: i64) {
        self.t.record(
            &self.reg,
            self.idx,
            What::Watch {
                typ,
                state,
                path,
                zxid,
            },
        );
    }

    fn on_listener(&self, state: i32) -> bool {
        self.t.record(&self.reg, self.idx, What::Listener { state });
        self.reg.ret_true
    }

    fn on_call(&self) {
        if self.reg.submit_checks {
            let d = self.t.dispatcher();
            // The dispatch thread cannot wait for itself.
            assert_eq!(unsafe { zk_dispatcher_flush(d) }, E_DEADLOCK);
            let _ = stats_of(d);
        }
        self.t.record(&self.reg, self.idx, What::Call);
    }
}

unsafe extern "C" fn c_watch(ev: *const zk_watched_event, ud: *mut c_void) {
    let g = &*(ud as *const Guard);
    assert!(!ev.is_null());
    let ev = &*ev;
    let path = if ev.path.is_null() {
        assert_eq!(ev.path_len, 0, "NULL path with path_len {}", ev.path_len);
        None
    } else {
        let s = CStr::from_ptr(ev.path).to_bytes();
        assert_eq!(
            s.len(),
            ev.path_len,
            "path_len disagrees with the NUL terminator"
        );
        Some(s.to_vec())
    };
    g.on_watch(ev.r#type, ev.state, path, ev.zxid);
}

unsafe extern "C" fn c_listener(state: zk_kazoo_state, ud: *mut c_void) -> zk_c_bool {
    let g = &*(ud as *const Guard);
    zk_c_bool(u8::from(g.on_listener(state as i32)))
}

unsafe extern "C" fn c_call(ud: *mut c_void) {
    let g = &*(ud as *const Guard);
    g.on_call();
}

unsafe extern "C" fn c_free(ud: *mut c_void) {
    drop(Box::from_raw(ud as *mut Guard));
}

// ---------------------------------------------------------------------------
// Gates: callbacks that hold the dispatch thread
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Gate {
    state: Mutex<(bool, bool)>, // (started, released)
    cv: Condvar,
}

impl Gate {
    fn run(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 = true;
        self.cv.notify_all();
        while !s.1 {
            let (g, timeout) = self.cv.wait_timeout(s, WAIT).unwrap();
            s = g;
            assert!(s.1 || !timeout.timed_out(), "gate never released");
        }
    }

    fn wait_started(&self) {
        let mut s = self.state.lock().unwrap();
        while !s.0 {
            let (g, timeout) = self.cv.wait_timeout(s, WAIT).unwrap();
            s = g;
            assert!(
                s.0 || !timeout.timed_out(),
                "the dispatch thread never reached the gate (hang?)"
            );
        }
    }

    fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Data,
    Child,
    Persistent,
    Recursive,
}

impl Kind {
    fn from_code(code: i32) -> Option<Kind> {
        Some(match code {
            0 => Kind::Data,
            1 => Kind::Child,
            2 => Kind::Persistent,
            3 => Kind::Recursive,
            _ => return None,
        })
    }

    fn one_shot(self) -> bool {
        matches!(self, Kind::Data | Kind::Child)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WSt {
    Registered,
    /// A one-shot popped by an event (or any watch by a lost session): its
    /// claim entry is queued.
    Popped(usize),
    Gone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LSt {
    Registered,
    /// Returns true on the queued entry: removes itself.
    SelfRemoving(usize),
    Gone,
}

struct MWatch {
    reg: usize,
    id: u64,
    kind: Kind,
    path: String,
    st: WSt,
    pending: Vec<usize>,
    /// Gone through zk_watch_remove() (not by firing).
    by_remove: bool,
}

struct MListener {
    reg: usize,
    id: u64,
    ret_true: bool,
    st: LSt,
    pending: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EStatus {
    Must,
    Optional,
    Forbidden,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Watch(usize),
    Listener(usize),
    Call,
}

#[derive(Debug)]
struct Entry {
    reg: usize,
    seq: u64,
    group: u64,
    what: What,
    status: EStatus,
    owner: Owner,
    claim: bool,
    delivered: bool,
    resolved: bool,
}

/// kazoo's session machine, written from the header/README (and Curator's
/// ConnectionStateManager for the Curator option).
struct Machine {
    keeper: i32,
    kazoo: i32,
    connected_before: bool,
}

enum Reset {
    None,
    /// SUSPENDED: one-shots fire once and go (or are told and kept with
    /// KEEP_WATCHES); persistent watches are told and kept.
    Suspend,
    /// LOST: every watch fires once and goes.
    Lose,
}

impl Machine {
    fn is_closed(s: i32) -> bool {
        matches!(s, EXPIRED | AUTH_FAILED | CLOSED)
    }

    fn valid(s: i32) -> bool {
        matches!(
            s,
            CONNECTING | CONNECTED | AUTH_FAILED | CONNECTED_RO | CLOSED | EXPIRED
        )
    }

    /// Returns (kazoo state to tell listeners, watch reset).
    fn step(&mut self, new: i32, options: u32) -> (Option<i32>, Reset) {
        if new == self.keeper {
            return (None, Reset::None); // repeats are ignored
        }
        let was_closed = Self::is_closed(self.keeper);
        self.keeper = new;
        if was_closed && new == CONNECTING {
            return (None, Reset::None); // closed -> CONNECTING: silent
        }
        let (target, reset) = if new == CONNECTED || new == CONNECTED_RO {
            let t = if options & CURATOR == 0 {
                K_CONNECTED
            } else if new == CONNECTED_RO {
                K_READ_ONLY // a "negative" message in Curator: not the first connection
            } else if self.connected_before {
                K_RECONNECTED
            } else {
                K_CONNECTED
            };
            if t != K_READ_ONLY {
                self.connected_before = true;
            }
            (t, Reset::None)
        } else if Self::is_closed(new) {
            (K_LOST, Reset::Lose)
        } else {
            (K_SUSPENDED, Reset::Suspend)
        };
        let notify = if target != self.kazoo {
            self.kazoo = target;
            Some(target)
        } else {
            None
        };
        (notify, reset)
    }
}

/// ZooKeeper's path rules (Java's PathUtils.validatePath, which checks UTF-16
/// units: a character beyond the BMP is a surrogate pair, refused), as the
/// header's ZK_ERR_INVALID_PATH describes them.
fn path_valid(p: &str) -> bool {
    let b = p.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    if b.len() == 1 {
        return true;
    }
    if b[b.len() - 1] == b'/' {
        return false;
    }
    if p[1..]
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return false;
    }
    !p.chars().any(|c| {
        let u = c as u32;
        u <= 0x1f || (0x7f..=0x9f).contains(&u) || (0xd800..=0xf8ff).contains(&u) || u >= 0xfff0
    })
}

fn unchroot<'a>(chroot: Option<&str>, p: &'a str) -> Option<String> {
    match chroot {
        None => Some(p.to_string()),
        Some(c) => {
            if p == c {
                Some("/".into())
            } else if p.len() > c.len() && p.starts_with(c) && p.as_bytes()[c.len()] == b'/' {
                Some(p[c.len()..].to_string())
            } else {
                None
            }
        }
    }
}

fn self_and_ancestors(p: &str) -> Vec<String> {
    let mut out = vec![p.to_string()];
    let mut cur = p.to_string();
    while cur != "/" {
        let at = cur.rfind('/').unwrap();
        cur = if at == 0 {
            "/".into()
        } else {
            cur[..at].to_string()
        };
        out.push(cur.clone());
    }
    out
}

struct Model {
    options: u32,
    capacity: usize,
    machine: Machine,
    chroot: Option<String>,
    watches: Vec<MWatch>,
    listeners: Vec<MListener>,
    entries: Vec<Entry>,
    by_key: HashMap<(usize, u64), usize>,
    next_group: u64,
    /// Prefix groups: entries of one removed owner that were pending.
    prefix_groups: Vec<Vec<usize>>,
    last_seq: u64,
    ids: Vec<u64>,
    // counters
    events_fed: u64,
    matched: u64,
    unmatched: u64,
    ignored: u64,
    sessions_fed: u64,
    submitted: u64,
    refused_full: u64,
    /// Bounds on the library's queue: all jobs (`queued`) and the jobs the
    /// capacity bounds (node events and submissions).
    amin: u64,
    amax: u64,
    bmin: u64,
    bmax: u64,
    /// The running gate's seq, when one holds the dispatch thread.
    blocked_at: Option<u64>,
    log_checked: usize,
    last_group_delivered: u64,
}

impl Model {
    fn new(options: u32, capacity: usize) -> Model {
        Model {
            options,
            capacity,
            machine: Machine {
                keeper: CLOSED,
                kazoo: K_LOST,
                connected_before: false,
            },
            chroot: None,
            watches: Vec::new(),
            listeners: Vec::new(),
            entries: Vec::new(),
            by_key: HashMap::new(),
            next_group: 1,
            prefix_groups: Vec::new(),
            last_seq: 0,
            ids: Vec::new(),
            events_fed: 0,
            matched: 0,
            unmatched: 0,
            ignored: 0,
            sessions_fed: 0,
            submitted: 0,
            refused_full: 0,
            amin: 0,
            amax: 0,
            bmin: 0,
            bmax: 0,
            blocked_at: None,
            log_checked: 0,
            last_group_delivered: 0,
        }
    }

    fn group(&mut self) -> u64 {
        self.next_group += 1;
        self.next_group
    }

    fn push_entry(
        &mut self,
        reg: usize,
        seq: u64,
        group: u64,
        what: What,
        status: EStatus,
        owner: Owner,
        claim: bool,
    ) -> usize {
        let idx = self.entries.len();
        let prev = self.by_key.insert((reg, seq), idx);
        assert!(
            prev.is_none(),
            "model: two entries for registration {reg} at seq {seq}"
        );
        self.entries.push(Entry {
            reg,
            seq,
            group,
            what,
            status,
            owner,
            claim,
            delivered: false,
            resolved: false,
        });
        match owner {
            Owner::Watch(w) => self.watches[w].pending.push(idx),
            Owner::Listener(l) => self.listeners[l].pending.push(idx),
            Owner::Call => {}
        }
        idx
    }

    /// A job was (`certain`) or may have been pushed onto the library's queue.
    fn pushed(&mut self, bounded: bool, certain: bool) {
        let sure = u64::from(certain && self.blocked_at.is_some());
        self.amax += 1;
        self.amin += sure;
        if bounded {
            self.bmax += 1;
            self.bmin += sure;
        }
    }

    /// Nothing is queued: the dispatch thread took (or ran) everything.
    fn queue_empty(&mut self) {
        self.amin = 0;
        self.amax = 0;
        self.bmin = 0;
        self.bmax = 0;
    }

    fn new_seq(&mut self, d: *mut zk_dispatcher) -> u64 {
        let s = stats_of(d);
        assert!(
            s.last_seq > self.last_seq,
            "sequence numbers must increase in feed order: {} then {}",
            self.last_seq,
            s.last_seq
        );
        self.last_seq = s.last_seq;
        s.last_seq
    }

    fn new_id(&mut self, id: u64) {
        assert!(!self.ids.contains(&id), "id {id} handed out twice");
        self.ids.push(id);
    }

    /// QUEUE_FULL may (or must) be returned now.
    fn full_possible(&self) -> bool {
        self.capacity != 0 && self.bmax >= self.capacity as u64
    }

    fn full_certain(&self) -> bool {
        self.capacity != 0 && self.bmin >= self.capacity as u64
    }

    fn registered_watches(&self, kind: Kind, path: &str) -> impl Iterator<Item = usize> + '_ {
        let path = path.to_string();
        (0..self.watches.len()).filter(move |&w| {
            let m = &self.watches[w];
            m.st == WSt::Registered && m.kind == kind && m.path == path
        })
    }

    /// A node event on a chroot-stripped path: the documented matching.
    fn match_event(&self, typ: i32, p: &str) -> Vec<(usize, bool)> {
        let data = matches!(typ, T_CREATED | T_CHANGED | T_DELETED);
        let child = matches!(typ, T_CHILD | T_DELETED);
        let mut out = Vec::new();
        if data {
            out.extend(self.registered_watches(Kind::Data, p).map(|w| (w, true)));
        }
        if child {
            out.extend(self.registered_watches(Kind::Child, p).map(|w| (w, true)));
        }
        out.extend(
            self.registered_watches(Kind::Persistent, p)
                .map(|w| (w, false)),
        );
        if typ != T_CHILD {
            for prefix in self_and_ancestors(p) {
                out.extend(
                    self.registered_watches(Kind::Recursive, &prefix)
                        .map(|w| (w, false)),
                );
            }
        }
        out
    }

    // ----- verification ---------------------------------------------------

    /// Matches new deliveries against the expected entries.
    fn check_log(&mut self, t: &Tracker) {
        let log = t.log.lock().unwrap();
        for got in &log[self.log_checked..] {
            let Some(&idx) = self.by_key.get(&(got.reg, got.seq)) else {
                panic!("unexpected delivery {got:?}\nexpected: {:#?}", self.entries);
            };
            let e = &mut self.entries[idx];
            assert!(!e.delivered, "delivered twice: {got:?}");
            assert_ne!(
                e.status,
                EStatus::Forbidden,
                "delivery that must not happen: {got:?} ({e:?})"
            );
            assert_eq!(
                e.what, got.what,
                "delivery content for registration {} seq {}",
                got.reg, got.seq
            );
            assert!(
                e.group >= self.last_group_delivered,
                "delivery out of the documented order: {got:?}"
            );
            self.last_group_delivered = e.group;
            e.delivered = true;
        }
        self.log_checked = log.len();
    }

    /// Everything with seq < `upto` has run: resolve it.
    fn resolve(&mut self, t: &Tracker, upto: u64) {
        self.check_log(t);
        for idx in 0..self.entries.len() {
            let e = &self.entries[idx];
            if e.resolved || e.seq >= upto {
                continue;
            }
            if e.status == EStatus::Must {
                assert!(e.delivered, "expected delivery missing: {e:?}");
            }
            let owner = e.owner;
            self.entries[idx].resolved = true;
            match owner {
                Owner::Watch(w) => {
                    let m = &mut self.watches[w];
                    m.pending.retain(|&i| i != idx);
                    if m.st == WSt::Popped(idx) {
                        m.st = WSt::Gone;
                    }
                }
                Owner::Listener(l) => {
                    let m = &mut self.listeners[l];
                    m.pending.retain(|&i| i != idx);
                    if m.st == LSt::SelfRemoving(idx) {
                        m.st = LSt::Gone;
                    }
                }
                Owner::Call => {}
            }
        }
        // Deliveries of a removed owner form a prefix of what was pending.
        let mut keep = Vec::new();
        for g in std::mem::take(&mut self.prefix_groups) {
            if g.iter().all(|&i| self.entries[i].resolved) {
                let flags: Vec<bool> = g.iter().map(|&i| self.entries[i].delivered).collect();
                let first_missing = flags.iter().position(|d| !d).unwrap_or(flags.len());
                assert!(
                    flags[first_missing..].iter().all(|d| !d),
                    "after a removal, deliveries are not a prefix of the pending ones: {flags:?}"
                );
            } else {
                keep.push(g);
            }
        }
        self.prefix_groups = keep;
    }

    /// After a flush (or the final free): everything resolved, and every
    /// user data of a gone registration freed, every live one not.
    fn check_flushed(&mut self, t: &Tracker, regs: &[Arc<Reg>], d: Option<*mut zk_dispatcher>) {
        self.resolve(t, u64::MAX);
        self.queue_empty();
        for w in &self.watches {
            let drops = regs[w.reg].drops.load(Ordering::SeqCst);
            match w.st {
                WSt::Registered if d.is_none() => {
                    // zk_dispatcher_free: "frees every registered watch's and
                    // listener's user_data (their free functions run on the calling thread)".
                    assert_eq!(
                        drops, 1,
                        "watch {} still registered at zk_dispatcher_free not freed",
                        w.id
                    );
                    assert_eq!(
                        regs[w.reg].freed_on.load(Ordering::SeqCst),
                        2,
                        "watch {} freed at zk_dispatcher_free off the calling thread",
                        w.id
                    );
                }
                WSt::Registered => assert_eq!(drops, 0, "live watch {} freed", w.id),
                WSt::Gone => {
                    assert_eq!(
                        drops, 1,
                        "gone watch {} (registration {}) not freed after flush",
                        w.id, w.reg
                    );
                    let on = regs[w.reg].freed_on.load(Ordering::SeqCst);
                    if w.by_remove {
                        regression!(
                            "watch-free-thread",
                            on == 1,
                            "removed watch {} freed off the dispatch thread",
                            w.id
                        );
                    } else {
                        assert_eq!(
                            on, 1,
                            "watch {} (fired or dropped) freed off the dispatch thread",
                            w.id
                        );
                    }
                }
                WSt::Popped(_) => unreachable!(),
            }
            if w.kind.one_shot() && self.options & KEEP_WATCHES == 0 {
                assert!(
                    regs[w.reg].calls.load(Ordering::SeqCst) <= 1,
                    "one-shot watch {} fired twice",
                    w.id
                );
            }
        }
        for l in &self.listeners {
            let drops = regs[l.reg].drops.load(Ordering::SeqCst);
            match l.st {
                LSt::Registered if d.is_none() => {
                    assert_eq!(
                        drops, 1,
                        "listener {} still registered at zk_dispatcher_free not freed",
                        l.id
                    );
                    assert_eq!(
                        regs[l.reg].freed_on.load(Ordering::SeqCst),
                        2,
                        "listener {} freed at zk_dispatcher_free off the calling thread",
                        l.id
                    );
                }
                LSt::Registered => assert_eq!(drops, 0, "live listener {} freed", l.id),
                LSt::Gone => {
                    assert_eq!(drops, 1, "gone listener {} not freed after flush", l.id);
                    regression!(
                        "listener-free-thread",
                        regs[l.reg].freed_on.load(Ordering::SeqCst) == 1,
                        "listener {} (registration {}) freed off the dispatch thread",
                        l.id,
                        l.reg
                    );
                }
                LSt::SelfRemoving(_) => unreachable!(),
            }
        }
        if let Some(d) = d {
            let s = self.check_stats(d);
            assert_eq!(s.queued, 0, "queue not empty after flush");
            assert_eq!(
                s.watches,
                self.watches
                    .iter()
                    .filter(|w| w.st == WSt::Registered)
                    .count() as u64
            );
            assert_eq!(
                s.listeners,
                self.listeners
                    .iter()
                    .filter(|l| l.st == LSt::Registered)
                    .count() as u64
            );
            self.check_call_counters(t, &s);
        }
    }

    fn check_call_counters(&self, t: &Tracker, s: &zk_dispatcher_stats) {
        let log = t.log.lock().unwrap();
        let count = |f: fn(&What) -> bool| log.iter().filter(|g| f(&g.what)).count() as u64;
        assert_eq!(
            s.watch_calls,
            count(|w| matches!(w, What::Watch { .. })),
            "watch_calls"
        );
        assert_eq!(
            s.listener_calls,
            count(|w| matches!(w, What::Listener { .. })),
            "listener_calls"
        );
        assert_eq!(
            s.submit_calls,
            count(|w| matches!(w, What::Call)),
            "submit_calls"
        );
    }

    fn check_stats(&self, d: *mut zk_dispatcher) -> zk_dispatcher_stats {
        let s = stats_of(d);
        assert_eq!(s.events_fed, self.events_fed, "events_fed");
        assert_eq!(s.events_matched, self.matched, "events_matched");
        assert_eq!(s.events_unmatched, self.unmatched, "events_unmatched");
        assert_eq!(s.events_ignored, self.ignored, "events_ignored");
        assert_eq!(s.sessions_fed, self.sessions_fed, "sessions_fed");
        assert_eq!(s.submitted, self.submitted, "submitted");
        assert_eq!(s.refused_full, self.refused_full, "refused_full");
        assert_eq!(s.refused_closed, 0, "refused_closed");
        assert_eq!(s.last_seq, self.last_seq, "last_seq");
        assert!(
            s.queued <= self.amax,
            "queued {} above the {} jobs pushed",
            s.queued,
            self.amax
        );
        s
    }

    /// Stats while a gate holds the dispatch thread: exact.
    fn check_stats_blocked(&self, t: &Tracker, d: *mut zk_dispatcher) {
        let s = self.check_stats(d);
        assert!(
            s.queued >= self.amin,
            "queued {} below the {} jobs pushed behind the gate",
            s.queued,
            self.amin
        );
        // Counters of callbacks run: everything logged has run (or, for the
        // gate, is running).
        {
            let log = t.log.lock().unwrap();
            let count = |f: fn(&What) -> bool| log.iter().filter(|g| f(&g.what)).count() as u64;
            let (w, l, c) = (
                count(|w| matches!(w, What::Watch { .. })),
                count(|w| matches!(w, What::Listener { .. })),
                count(|w| matches!(w, What::Call)),
            );
            assert!(
                s.watch_calls <= w && s.listener_calls <= l && s.submit_calls <= c,
                "more callbacks counted than ran: {s:?} vs {w}/{l}/{c}"
            );
            regression!("stats-publish-lag",
                s.watch_calls == w && s.listener_calls == l && s.submit_calls + 1 >= c,
                "while a callback runs, stats count {}/{}/{} watch/listener/submitted callbacks run, but {w}/{l}/{} have returned",
                s.watch_calls, s.listener_calls, s.submit_calls, c - 1);
        }
        // "a fired one-shot counts until its callback has returned": the
        // popped ones behind the gate count, the ones that ran do not.
        let registered = self
            .watches
            .iter()
            .filter(|w| w.st == WSt::Registered)
            .count() as u64;
        let popped = self
            .watches
            .iter()
            .filter(|w| matches!(w.st, WSt::Popped(_)))
            .count() as u64;
        assert_eq!(
            s.watches,
            registered + popped,
            "stats.watches while blocked"
        );
        let lreg = self
            .listeners
            .iter()
            .filter(|l| matches!(l.st, LSt::Registered | LSt::SelfRemoving(_)))
            .count() as u64;
        assert_eq!(s.listeners, lreg, "stats.listeners while blocked");
    }
}

// ---------------------------------------------------------------------------
// The script runner
// ---------------------------------------------------------------------------

struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    /// An int32 code: `table[b % len]` for a byte `b < 0xf0`, otherwise the
    /// next four bytes (big-endian): any int32 at all.
    fn code(&mut self, table: &[i32]) -> i32 {
        let b = self.next();
        if b < 0xf0 {
            return table[b as usize % table.len()];
        }
        i32::from_be_bytes([self.next(), self.next(), self.next(), self.next()])
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }

    fn path(&mut self) -> Vec<u8> {
        let s = self.next();
        if s < 0xe0 {
            return PATHS[s as usize % PATHS.len()].to_vec();
        }
        let n = self.next() as usize % 12;
        let mut p: Vec<u8> = (0..n).map(|_| self.next()).collect();
        if let Some(nul) = p.iter().position(|&b| b == 0) {
            p.truncate(nul);
        }
        p
    }
}

struct Run {
    t: Arc<Tracker>,
    d: Option<Dispatcher>,
    dp: *mut zk_dispatcher,
    m: Model,
    regs: Vec<Arc<Reg>>,
    /// User data of failed C registrations: must never be freed by the library.
    kept: Vec<*mut Guard>,
    /// Submitted gates not yet released: (gate, seq, batch). Gates submitted
    /// while a gate runs sit in the queue and are taken by the next batch
    /// swap together; a gate submitted with none running is waited for at
    /// once, so nothing is queued behind it when it starts.
    gates: Vec<(Arc<Gate>, u64, u64)>,
    /// The batch of the running gate, and the last batch number handed out.
    cur_batch: u64,
    batches: u64,
    /// The batch that the gates queued behind the running batch will share.
    next_batch: Option<u64>,
    /// The current operation makes its call from a callback on the dispatch thread.
    reenter: bool,
}

impl Run {
    fn new_reg(&mut self, ret_true: bool, submit_checks: bool) -> (usize, Guard) {
        let reg = Arc::new(Reg {
            drops: AtomicU32::new(0),
            freed_on: AtomicU32::new(0),
            active: AtomicBool::new(false),
            calls: AtomicU32::new(0),
            ret_true,
            submit_checks,
        });
        let idx = self.regs.len();
        self.regs.push(Arc::clone(&reg));
        (
            idx,
            Guard {
                t: Arc::clone(&self.t),
                reg,
                idx,
            },
        )
    }

    fn drops(&self, reg: usize) -> u32 {
        self.regs[reg].drops.load(Ordering::SeqCst)
    }

    fn d(&self) -> &Dispatcher {
        self.d.as_ref().unwrap()
    }

    fn watch_add(&mut self, path: Vec<u8>, kind_code: i32, flags: u8) {
        let c_api = flags & 1 != 0
            || self.reenter
            || std::str::from_utf8(&path).is_err()
            || !(0..4).contains(&kind_code);
        let code = kind_code;
        let kind = Kind::from_code(code);
        let text = std::str::from_utf8(&path).ok();
        let mut allowed = Vec::new();
        if kind.is_none() {
            allowed.push(E_KIND);
        }
        match text {
            None => allowed.push(E_UTF8),
            Some(p) if !path_valid(p) => allowed.push(E_PATH),
            _ => {}
        }
        let (idx, guard) = self.new_reg(false, false);
        let (status, id) = if c_api {
            let cpath = CString::new(path.clone()).unwrap();
            let ud = Box::into_raw(Box::new(guard));
            let ud_addr = ud as usize;
            let call = move |d: *mut zk_dispatcher| {
                let mut id = 0xfeed_u64;
                let st = unsafe {
                    zk_watch_add(
                        d,
                        cpath.as_ptr(),
                        code,
                        Some(c_watch),
                        ud_addr as *mut c_void,
                        Some(c_free),
                        &mut id,
                    )
                };
                (st, id)
            };
            let (st, id) = if self.reenter {
                self.on_dispatch(call)
            } else {
                call(self.dp)
            };
            if st != OK {
                assert_eq!(id, 0xfeed, "out_id written on failure");
                self.kept.push(ud);
            }
            (st, id)
        } else {
            let rust_kind = [
                zk_watch_kind::ZK_WATCH_DATA,
                zk_watch_kind::ZK_WATCH_CHILD,
                zk_watch_kind::ZK_WATCH_PERSISTENT,
                zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE,
            ][code as usize];
            let r = self
                .d()
                .watch_add(text.unwrap(), rust_kind, move |ev: &Event<'_>| {
                    assert_eq!(
                        ev.seq,
                        zk_dispatch_current_seq(),
                        "Event::seq != current seq"
                    );
                    guard.on_watch(
                        ev.event_type as i32,
                        ev.state as i32,
                        ev.path.map(|p| p.to_bytes().to_vec()),
                        ev.zxid,
                    );
                });
            match r {
                Ok(id) => (OK, id),
                Err(refused) => {
                    // Handed back untouched: ours to drop.
                    assert_eq!(
                        self.drops(idx),
                        0,
                        "handler of a refused registration dropped by the library"
                    );
                    let st = refused.status as i32;
                    drop(refused.handler);
                    (st, 0)
                }
            }
        };
        if allowed.is_empty() {
            assert_eq!(
                status,
                OK,
                "zk_watch_add({:?}, {code})",
                String::from_utf8_lossy(&path)
            );
            self.m.new_id(id);
            self.m.pushed(false, true); // the dispatch thread's reference
            let kind = kind.unwrap();
            self.m.watches.push(MWatch {
                reg: idx,
                id,
                kind,
                path: text.unwrap().to_string(),
                st: WSt::Registered,
                pending: Vec::new(),
                by_remove: false,
            });
        } else {
            assert!(
                allowed.contains(&status),
                "zk_watch_add({:?}, {code}) = {status}, allowed {allowed:?}",
                path
            );
        }
    }

    /// Runs `f` (a library call) inside a submitted callback on the dispatch
    /// thread, as the header allows ("any thread, including from callbacks"),
    /// and returns its result. Everything fed before has run by then (a flush
    /// first), so the model is exact; the flushes after make sure what the
    /// call queued has run too before the model is checked again.
    fn on_dispatch<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(*mut zk_dispatcher) -> R + Send + 'static,
    ) -> R {
        self.flush();
        let slot: Arc<Mutex<Option<(u64, R)>>> = Arc::new(Mutex::new(None));
        let (idx, guard) = self.new_reg(false, false);
        let out = Arc::clone(&slot);
        let dp = self.dp as usize;
        let r = self.d().submit(move || {
            guard.on_call();
            let seq = zk_dispatch_current_seq();
            let result = f(dp as *mut zk_dispatcher);
            *out.lock().unwrap() = Some((seq, result));
        });
        assert!(r.is_ok(), "submission right after a flush refused");
        // Twice: a call made by the callback may queue work behind the first flush.
        assert_eq!(unsafe { zk_dispatcher_flush(self.dp) }, OK);
        assert_eq!(unsafe { zk_dispatcher_flush(self.dp) }, OK);
        let (seq, result) = slot.lock().unwrap().take().expect("the callback ran");
        // The callback may already have fed more: its own seq is what it saw.
        assert!(
            seq > self.m.last_seq,
            "sequence numbers must increase in feed order"
        );
        self.m.last_seq = seq;
        self.m.submitted += 1;
        let g = self.m.group();
        self.m
            .push_entry(idx, seq, g, What::Call, EStatus::Must, Owner::Call, false);
        result
    }

    fn pick_id(&self, sel: u8) -> u64 {
        let n = self.m.ids.len();
        let i = sel as usize % (n + 3);
        if i < n {
            return self.m.ids[i];
        }
        // ids never handed out
        let max = self.m.ids.iter().copied().max().unwrap_or(0);
        let bogus = [u64::MAX, max.wrapping_add(1000), 0][i - n];
        if self.m.ids.contains(&bogus) {
            u64::MAX - 7
        } else {
            bogus
        }
    }

    fn watch_remove(&mut self, sel: u8, flags: u8) {
        let id = self.pick_id(sel);
        let status = if self.reenter {
            self.on_dispatch(move |d| unsafe { zk_watch_remove(d, id) })
        } else if flags & 1 != 0 {
            unsafe { zk_watch_remove(self.dp, id) }
        } else {
            self.d().watch_remove(id).err().map_or(OK, |e| e as i32)
        };
        let Some(w) = self.m.watches.iter().position(|w| w.id == id) else {
            assert_eq!(
                status, E_NOT_FOUND,
                "zk_watch_remove of id {id} that names no watch"
            );
            return;
        };
        let blocked = self.m.blocked_at.is_some();
        let st = self.m.watches[w].st;
        let reg = self.m.watches[w].reg;
        let pending: Vec<usize> = self.m.watches[w]
            .pending
            .iter()
            .copied()
            .filter(|&i| self.m.entries[i].status != EStatus::Forbidden)
            .collect();
        match st {
            WSt::Gone => assert_eq!(
                status, E_NOT_FOUND,
                "removing watch {id} twice / after it fired"
            ),
            WSt::Registered => {
                assert_eq!(status, OK, "removing registered watch {id}");
                self.after_remove(pending, blocked, reg, true, true);
                self.m.watches[w].st = WSt::Gone;
                self.m.watches[w].by_remove = true;
            }
            WSt::Popped(claim) => {
                if blocked {
                    // Its claim is behind the gate: it has not started.
                    assert_eq!(
                        status, OK,
                        "removing popped one-shot {id} whose callback has not started"
                    );
                }
                if status == OK {
                    self.after_remove(pending, blocked, reg, true, false);
                    self.m.watches[w].by_remove = true;
                    self.m.entries[claim].status = EStatus::Forbidden;
                } else {
                    assert_eq!(status, E_NOT_FOUND, "removing popped watch {id}");
                    // Claimed by the dispatch thread: it runs, as does everything before.
                }
                self.m.watches[w].st = WSt::Gone;
            }
        }
    }

    /// A removal returned OK with these entries of the owner pending.
    /// `releases`: it queued a release for the dispatch thread (every removal
    /// but that of a fired one-shot, whose queued call drops it instead).
    fn after_remove(
        &mut self,
        pending: Vec<usize>,
        blocked: bool,
        reg: usize,
        is_watch: bool,
        releases: bool,
    ) {
        if blocked {
            // Nothing behind the gate runs: the removal wins.
            for &i in &pending {
                self.m.entries[i].status = EStatus::Forbidden;
            }
        } else if !pending.is_empty() {
            for &i in &pending {
                self.m.entries[i].status = EStatus::Optional;
            }
            self.m.prefix_groups.push(pending.clone());
        }
        if releases {
            self.m.pushed(false, true); // a removal queues its release for the dispatch thread
        }
                                    // zk_watch_remove (and, "the same guarantees", zk_listener_remove):
                                    // "free_fn runs on the dispatch thread once the events queued before
                                    // the removal have been passed (so never during a call)".
        let freed = self.drops(reg) == 1;
        let on = self.regs[reg].freed_on.load(Ordering::SeqCst);
        if is_watch {
            regression!("watch-free-thread", !freed || on == 1,
                "zk_watch_remove() ran the free function of registration {reg} on the calling thread (header: on the dispatch thread)");
        } else {
            regression!("listener-free-thread", !freed || on == 1,
                "zk_listener_remove() ran the listener's free function of registration {reg} on the calling thread (header: the same guarantees as zk_watch_remove(): on the dispatch thread)");
        }
        if blocked {
            assert!(!freed, "user data of registration {reg} freed by its removal while what was queued before waits behind a gate");
        }
    }

    fn listener_add(&mut self, flags: u8) {
        let ret_true = flags & 2 != 0;
        let (idx, guard) = self.new_reg(ret_true, false);
        let (status, id) = if flags & 1 != 0 || self.reenter {
            let ud = Box::into_raw(Box::new(guard));
            let ud_addr = ud as usize;
            let call = move |d: *mut zk_dispatcher| {
                let mut id = 0xfeed_u64;
                let st = unsafe {
                    zk_listener_add(
                        d,
                        Some(c_listener),
                        ud_addr as *mut c_void,
                        Some(c_free),
                        &mut id,
                    )
                };
                (st, id)
            };
            let (st, id) = if self.reenter {
                self.on_dispatch(call)
            } else {
                call(self.dp)
            };
            if st != OK {
                self.kept.push(ud);
            }
            (st, id)
        } else {
            match self
                .d()
                .listener_add(move |state: zk_kazoo_state| guard.on_listener(state as i32))
            {
                Ok(id) => (OK, id),
                Err(refused) => (refused.status as i32, 0),
            }
        };
        assert_eq!(status, OK, "zk_listener_add");
        self.m.new_id(id);
        self.m.pushed(false, true); // the dispatch thread's reference
        self.m.listeners.push(MListener {
            reg: idx,
            id,
            ret_true,
            st: LSt::Registered,
            pending: Vec::new(),
        });
    }

    fn listener_remove(&mut self, sel: u8, flags: u8) {
        let id = self.pick_id(sel);
        let status = if self.reenter {
            self.on_dispatch(move |d| unsafe { zk_listener_remove(d, id) })
        } else if flags & 1 != 0 {
            unsafe { zk_listener_remove(self.dp, id) }
        } else {
            self.d().listener_remove(id).err().map_or(OK, |e| e as i32)
        };
        let Some(l) = self.m.listeners.iter().position(|l| l.id == id) else {
            assert_eq!(
                status, E_NOT_FOUND,
                "zk_listener_remove of id {id} that names no listener"
            );
            return;
        };
        let blocked = self.m.blocked_at.is_some();
        let st = self.m.listeners[l].st;
        let reg = self.m.listeners[l].reg;
        let pending: Vec<usize> = self.m.listeners[l]
            .pending
            .iter()
            .copied()
            .filter(|&i| self.m.entries[i].status != EStatus::Forbidden)
            .collect();
        match st {
            LSt::Gone => assert_eq!(
                status, E_NOT_FOUND,
                "removing listener {id} twice / after it removed itself"
            ),
            LSt::Registered => {
                assert_eq!(status, OK, "removing registered listener {id}");
                self.after_remove(pending, blocked, reg, false, true);
                self.m.listeners[l].st = LSt::Gone;
            }
            LSt::SelfRemoving(e) => {
                if blocked {
                    assert_eq!(
                        status, OK,
                        "removing listener {id} whose call has not started"
                    );
                }
                if status == OK {
                    self.after_remove(pending, blocked, reg, false, true);
                } else {
                    assert_eq!(status, E_NOT_FOUND);
                    // It ran and returned true.
                    self.m.entries[e].status = EStatus::Must;
                }
                self.m.listeners[l].st = LSt::Gone;
            }
        }
    }

    fn event(&mut self, typ: i32, path: Vec<u8>, zxid_byte: u8) {
        let zxid = ZXIDS[zxid_byte as usize % ZXIDS.len()];
        let valid_type = matches!(typ, -2 | -1 | 1..=7);
        let text = std::str::from_utf8(&path).ok();
        let mut hard = Vec::new();
        if !valid_type {
            hard.push(E_TYPE);
        }
        match text {
            None => {
                hard.push(E_UTF8);
            }
            Some(p) if !path_valid(p) => hard.push(E_PATH),
            _ => {}
        }
        let cpath = CString::new(path.clone()).unwrap();
        let call = move |d: *mut zk_dispatcher| unsafe {
            zk_dispatcher_event(d, typ, cpath.as_ptr(), zxid)
        };
        let status = if self.reenter {
            self.on_dispatch(call)
        } else {
            call(self.dp)
        };
        let fires = matches!(typ, T_CREATED | T_DELETED | T_CHANGED | T_CHILD);
        if !hard.is_empty() {
            assert!(
                hard.contains(&status),
                "zk_dispatcher_event({typ}, {path:?}) = {status}, allowed {hard:?}"
            );
            return;
        }
        if status == E_FULL {
            assert!(
                self.m.full_possible(),
                "ZK_ERR_QUEUE_FULL with at most {} of {} queued",
                self.m.bmax,
                self.m.capacity
            );
            self.m.refused_full += 1;
            return;
        }
        assert_eq!(status, OK, "zk_dispatcher_event({typ}, {:?})", text);
        if fires {
            assert!(
                !self.m.full_certain(),
                "event accepted with the queue full ({} of {})",
                self.m.bmin,
                self.m.capacity
            );
        }
        let seq = self.m.new_seq(self.dp);
        self.m.events_fed += 1;
        if !fires {
            self.m.ignored += 1;
            return;
        }
        let Some(p) = unchroot(self.m.chroot.as_deref(), text.unwrap()) else {
            self.m.unmatched += 1;
            return;
        };
        let targets = self.m.match_event(typ, &p);
        if targets.is_empty() {
            self.m.unmatched += 1;
            return;
        }
        self.m.matched += 1;
        self.m.pushed(true, true);
        let state = self.m.machine.keeper;
        for (w, claim) in targets {
            let g = self.m.group();
            let reg = self.m.watches[w].reg;
            let what = What::Watch {
                typ,
                state,
                path: Some(p.as_bytes().to_vec()),
                zxid,
            };
            let idx = self
                .m
                .push_entry(reg, seq, g, what, EStatus::Must, Owner::Watch(w), claim);
            if claim {
                self.m.watches[w].st = WSt::Popped(idx);
            }
        }
    }

    fn session(&mut self, state: i32) {
        let call = move |d: *mut zk_dispatcher| unsafe { zk_dispatcher_session(d, state) };
        let status = if self.reenter {
            self.on_dispatch(call)
        } else {
            call(self.dp)
        };
        if !Machine::valid(state) {
            assert_eq!(status, E_STATE, "zk_dispatcher_session({state})");
            return;
        }
        assert_eq!(status, OK, "zk_dispatcher_session({state})");
        let seq = self.m.new_seq(self.dp);
        self.m.sessions_fed += 1;
        let (notify, reset) = self.m.machine.step(state, self.m.options);
        if let Some(k) = notify {
            let mut any = false;
            for l in 0..self.m.listeners.len() {
                let st = self.m.listeners[l].st;
                let reg = self.m.listeners[l].reg;
                let status = match st {
                    LSt::Registered => EStatus::Must,
                    LSt::SelfRemoving(_) => EStatus::Forbidden,
                    LSt::Gone => continue,
                };
                any = true;
                let g = self.m.group();
                let idx = self.m.push_entry(
                    reg,
                    seq,
                    g,
                    What::Listener { state: k },
                    status,
                    Owner::Listener(l),
                    false,
                );
                if st == LSt::Registered && self.m.listeners[l].ret_true {
                    self.m.listeners[l].st = LSt::SelfRemoving(idx);
                }
            }
            if any {
                // Registered listeners are surely in the job; self-removing
                // ones only until they have returned true.
                let certain = self.m.listeners.iter().any(|l| l.st == LSt::Registered)
                    || self.m.blocked_at.is_some();
                self.m.pushed(false, certain);
            }
        }
        let keep = self.m.options & KEEP_WATCHES != 0;
        let mut targets = Vec::new();
        for w in 0..self.m.watches.len() {
            let m = &self.m.watches[w];
            if m.st != WSt::Registered {
                continue;
            }
            let claim = match reset {
                Reset::None => continue,
                Reset::Lose => true,
                Reset::Suspend => m.kind.one_shot() && !keep,
            };
            targets.push((w, claim));
        }
        if targets.is_empty() {
            return;
        }
        self.m.pushed(false, true); // NONE events are never bounded
                                    // The order among the NONE events of one state change is not documented: one group.
        let g = self.m.group();
        for (w, claim) in targets {
            let reg = self.m.watches[w].reg;
            let what = What::Watch {
                typ: T_NONE,
                state,
                path: None,
                zxid: -1,
            };
            let idx = self
                .m
                .push_entry(reg, seq, g, what, EStatus::Must, Owner::Watch(w), claim);
            if claim {
                self.m.watches[w].st = WSt::Popped(idx);
            }
        }
    }

    fn submit(&mut self, flags: u8) {
        let checks = flags & 2 != 0;
        let (idx, guard) = self.new_reg(false, checks);
        let status = if flags & 1 != 0 || self.reenter {
            let ud = Box::into_raw(Box::new(guard));
            let ud_addr = ud as usize;
            let call = move |d: *mut zk_dispatcher| unsafe {
                zk_dispatcher_submit(d, Some(c_call), ud_addr as *mut c_void, Some(c_free))
            };
            let st = if self.reenter {
                self.on_dispatch(call)
            } else {
                call(self.dp)
            };
            if st != OK {
                self.kept.push(ud);
            }
            st
        } else {
            match self.d().submit(move || guard.on_call()) {
                Ok(()) => OK,
                Err(refused) => {
                    assert_eq!(self.drops(idx), 0, "refused task dropped by the library");
                    let st = refused.status as i32;
                    drop(refused.handler);
                    st
                }
            }
        };
        self.after_submit(status, idx);
    }

    fn after_submit(&mut self, status: i32, idx: usize) -> Option<u64> {
        if status == E_FULL {
            assert!(
                self.m.full_possible(),
                "ZK_ERR_QUEUE_FULL with at most {} of {} queued",
                self.m.bmax,
                self.m.capacity
            );
            self.m.refused_full += 1;
            return None;
        }
        assert_eq!(status, OK, "zk_dispatcher_submit");
        assert!(
            !self.m.full_certain(),
            "submission accepted with the queue full"
        );
        let seq = self.m.new_seq(self.dp);
        self.m.submitted += 1;
        self.m.pushed(true, true);
        let g = self.m.group();
        self.m
            .push_entry(idx, seq, g, What::Call, EStatus::Must, Owner::Call, false);
        Some(seq)
    }

    fn block(&mut self) {
        let gate = Arc::new(Gate::default());
        let (idx, guard) = self.new_reg(false, false);
        let g2 = Arc::clone(&gate);
        let r = self.d().submit(move || {
            guard.on_call();
            g2.run();
        });
        let status = match r {
            Ok(()) => OK,
            Err(refused) => {
                let st = refused.status as i32;
                drop(refused.handler);
                st
            }
        };
        let Some(seq) = self.after_submit(status, idx) else {
            return;
        };
        if self.m.blocked_at.is_none() {
            self.batches += 1;
            self.gates.push((Arc::clone(&gate), seq, self.batches));
            self.wait_gate();
        } else {
            // Taken by the swap after the running gate's batch.
            let next = match self.next_batch {
                Some(b) => b,
                None => {
                    self.batches += 1;
                    self.next_batch = Some(self.batches);
                    self.batches
                }
            };
            self.gates.push((Arc::clone(&gate), seq, next));
        }
    }

    /// Waits until the first gate holds the dispatch thread.
    fn wait_gate(&mut self) {
        let Some((gate, seq, batch)) = self.gates.first().cloned() else {
            self.m.blocked_at = None;
            self.m.amin = 0;
            self.m.bmin = 0;
            return;
        };
        gate.wait_started();
        // Everything before the gate has run; nothing after it has.
        self.m.resolve(&self.t, seq);
        self.m.blocked_at = Some(seq);
        if batch != self.cur_batch {
            // A new batch took everything queued; behind this gate in the
            // same batch nothing counts as queued.
            self.m.queue_empty();
            self.cur_batch = batch;
            self.next_batch = None;
        }
        // Otherwise still the running batch: what was queued meanwhile stays queued.
        self.m.check_stats_blocked(&self.t, self.dp);
    }

    fn unblock(&mut self) {
        if self.gates.is_empty() {
            return;
        }
        let (gate, _, _) = self.gates.remove(0);
        gate.release();
        if self.gates.is_empty() {
            self.m.blocked_at = None;
            self.m.amin = 0;
            self.m.bmin = 0;
        }
        self.wait_gate();
    }

    fn release_all(&mut self) {
        for (g, _, _) in self.gates.drain(..) {
            g.release();
        }
        self.m.blocked_at = None;
        self.m.amin = 0;
        self.m.bmin = 0;
    }

    fn flush(&mut self) {
        self.release_all();
        assert_eq!(unsafe { zk_dispatcher_flush(self.dp) }, OK);
        self.m.check_flushed(&self.t, &self.regs, Some(self.dp));
    }

    fn chroot(&mut self, sel: u8) {
        let c = CHROOTS[sel as usize % CHROOTS.len()];
        let status = match c {
            None => unsafe { zk_dispatcher_set_chroot(self.dp, std::ptr::null()) },
            Some(b) => {
                let cs = CString::new(b).unwrap();
                unsafe { zk_dispatcher_set_chroot(self.dp, cs.as_ptr()) }
            }
        };
        match c {
            None | Some(b"/") => {
                assert_eq!(status, OK);
                self.m.chroot = None;
            }
            Some(b) => match std::str::from_utf8(b) {
                Err(_) => assert_eq!(status, E_UTF8),
                Ok(p) if !path_valid(p) => assert_eq!(status, E_PATH, "chroot {p:?}"),
                Ok(p) => {
                    assert_eq!(status, OK, "chroot {p:?}");
                    self.m.chroot = Some(p.to_string());
                }
            },
        }
    }

    fn stats(&mut self) {
        self.m.check_log(&self.t);
        if self.m.blocked_at.is_some() {
            self.m.check_stats_blocked(&self.t, self.dp);
        } else {
            self.m.check_stats(self.dp);
        }
    }

    fn state(&mut self) {
        let mut k = zk_kazoo_state::Connected;
        let mut s = zk_states::zk_keeper_state::Connecting;
        assert_eq!(unsafe { zk_dispatcher_state(self.dp, &mut k, &mut s) }, OK);
        assert_eq!(k as i32, self.m.machine.kazoo, "kazoo state");
        assert_eq!(s as i32, self.m.machine.keeper, "keeper state");
    }

    /// Learns the dispatch thread's id (for the checks of where user data is freed).
    fn probe(&mut self) {
        let (idx, guard) = self.new_reg(false, false);
        let t = Arc::clone(&self.t);
        let r = self.d().submit(move || {
            let _ = t.dispatch_thread.set(std::thread::current().id());
            guard.on_call();
        });
        assert!(r.is_ok(), "submit on a new dispatcher");
        self.after_submit(OK, idx);
        self.flush();
    }

    fn finish(mut self) {
        self.release_all();
        if std::env::var_os("ZK_FUZZ_TRACE").is_some() {
            self.m.check_log(&self.t);
            eprintln!("--- deliveries:");
            for g in self.t.log.lock().unwrap().iter() {
                eprintln!("  {g:?}");
            }
            eprintln!("--- entries:");
            for e in &self.m.entries {
                eprintln!("  {e:?}");
            }
        }
        drop(self.d.take()); // zk_dispatcher_free: runs what is queued, then frees
        self.m.check_flushed(&self.t, &self.regs, None);
        // Every registration's user data freed exactly once; failed C ones never.
        let kept: Vec<*mut Guard> = std::mem::take(&mut self.kept);
        let kept_regs: Vec<usize> = kept.iter().map(|&g| unsafe { (*g).idx }).collect();
        for (i, r) in self.regs.iter().enumerate() {
            let want = u32::from(!kept_regs.contains(&i));
            assert_eq!(
                r.drops.load(Ordering::SeqCst),
                want,
                "registration {i}: user data freed {} times",
                r.drops.load(Ordering::SeqCst)
            );
        }
        for g in kept {
            drop(unsafe { Box::from_raw(g) });
        }
        for w in &self.m.watches {
            if w.kind.one_shot() && self.m.options & KEEP_WATCHES == 0 {
                assert!(
                    self.regs[w.reg].calls.load(Ordering::SeqCst) <= 1,
                    "one-shot fired twice"
                );
            }
        }
    }
}

const MAX_OPS: usize = 300;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes { data, at: 0 };
    let head = b.next();
    let options = u32::from(head & 3);
    let capacity = CAPACITIES[((head >> 2) & 7) as usize];
    let d = Dispatcher::new(options, capacity).expect("Dispatcher::new");
    let dp = &*d as *const zk_dispatcher as *mut zk_dispatcher;
    let t = Arc::new(Tracker {
        log: Mutex::new(Vec::new()),
        disp: AtomicUsize::new(dp as usize),
        last_delivered_seq: Mutex::new(0),
        dispatch_thread: OnceLock::new(),
    });
    let mut run = Run {
        t,
        d: Some(d),
        dp,
        m: Model::new(options, capacity),
        regs: Vec::new(),
        kept: Vec::new(),
        gates: Vec::new(),
        cur_batch: 0,
        batches: 0,
        next_batch: None,
        reenter: false,
    };
    run.probe();
    let mut ops = 0;
    let trace = std::env::var_os("ZK_FUZZ_TRACE").is_some();
    while !b.done() && ops < MAX_OPS {
        ops += 1;
        let at = b.at;
        let mut op = b.next() % 14;
        if op == 13 {
            // REENTER: the next operation (one that calls the library) is made
            // from a callback on the dispatch thread.
            op = b.next() % 7;
            run.reenter = true;
        }
        if trace {
            let name = [
                "WATCH_ADD",
                "WATCH_REMOVE",
                "LISTENER_ADD",
                "LISTENER_REMOVE",
                "EVENT",
                "SESSION",
                "SUBMIT",
                "FLUSH",
                "CHROOT",
                "STATS",
                "STATE",
                "BLOCK",
                "UNBLOCK",
            ][op as usize];
            let from = if run.reenter {
                " (from a callback)"
            } else {
                ""
            };
            eprintln!(
                "op @{at}: {name}{from} {:?}",
                &data[at + 1..data.len().min(at + 4)]
            );
        }
        match op {
            0 => {
                let p = b.path();
                let k = b.code(KIND_CODES);
                let f = b.next();
                run.watch_add(p, k, f)
            }
            1 => {
                let (s, f) = (b.next(), b.next());
                run.watch_remove(s, f)
            }
            2 => {
                let f = b.next();
                run.listener_add(f)
            }
            3 => {
                let (s, f) = (b.next(), b.next());
                run.listener_remove(s, f)
            }
            4 => {
                let t = b.code(EVENT_CODES);
                let p = b.path();
                let z = b.next();
                run.event(t, p, z)
            }
            5 => {
                let s = b.code(STATE_CODES);
                run.session(s)
            }
            6 => {
                let f = b.next();
                run.submit(f)
            }
            7 => run.flush(),
            8 => {
                let s = b.next();
                run.chroot(s)
            }
            9 => run.stats(),
            10 => run.state(),
            11 => run.block(),
            12 => run.unblock(),
            _ => unreachable!(),
        }
        run.reenter = false;
    }
    run.finish();
});
