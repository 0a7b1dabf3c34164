//! The dispatcher through its Rust API: matching tables, kazoo's session
//! behaviour, ordering, re-entrancy and ownership.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use zk_states::dispatch::{current_seq, zk_watch_kind, Dispatcher, Event};
use zk_states::session::{ZK_DISPATCHER_CURATOR_STATES, ZK_DISPATCHER_KEEP_WATCHES};
use zk_states::{zk_event_type as T, zk_kazoo_state as K, zk_keeper_state as S, zk_status};

use zk_watch_kind::*;

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn take(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn describe(e: &Event) -> String {
    let path = e
        .path
        .as_ref()
        .map_or("None".to_string(), |p| p.to_str().unwrap().to_string());
    format!(
        "{}:{}:{}",
        e.event_type.name().to_str().unwrap(),
        e.state.name().to_str().unwrap(),
        path
    )
}

fn watch(d: &Dispatcher, log: &Log, name: &str, path: &str, kind: zk_watch_kind) -> u64 {
    let log = Arc::clone(log);
    let name = name.to_string();
    d.watch_add(path, kind, move |e: &Event| {
        log.lock().unwrap().push(format!("{name} {}", describe(e)))
    })
    .unwrap()
}

fn listen(d: &Dispatcher, log: &Log, name: &str) -> u64 {
    let log = Arc::clone(log);
    let name = name.to_string();
    d.listener_add(move |s: K| {
        log.lock()
            .unwrap()
            .push(format!("{name} {}", s.name().to_str().unwrap()));
        false
    })
    .unwrap()
}

fn connected(options: u32) -> Dispatcher {
    let d = Dispatcher::new(options, 0).unwrap();
    d.session(S::Connected).unwrap();
    d
}

/// Parks the dispatch thread in a submitted task until the returned sender
/// is dropped (also when the test fails, so that it fails rather than hangs).
fn park(d: &Dispatcher) -> std::sync::mpsc::Sender<()> {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    d.submit(move || {
        let _ = wait.recv();
    })
    .unwrap();
    release
}

/// `park`, returning once the dispatch thread runs the task (it no longer
/// takes queue room).
fn park_running(d: &Dispatcher) -> std::sync::mpsc::Sender<()> {
    let release = park(d);
    while d.stats().queued != 0 {
        std::thread::yield_now();
    }
    release
}

#[test]
fn one_shot_matching_table() {
    // (event, fires data watch, fires child watch): kazoo's _read_watch_event.
    let table = [
        (T::Created, true, false),
        (T::Changed, true, false),
        (T::Deleted, true, true),
        (T::Child, false, true),
        (T::None, false, false),
        (T::DataWatchRemoved, false, false),
        (T::ChildWatchRemoved, false, false),
        (T::PersistentWatchRemoved, false, false),
        (T::NotWatching, false, false),
    ];
    for (event, data, child) in table {
        let d = connected(0);
        let l = log();
        watch(&d, &l, "data", "/n", ZK_WATCH_DATA);
        watch(&d, &l, "child", "/n", ZK_WATCH_CHILD);
        watch(&d, &l, "other", "/m", ZK_WATCH_DATA);
        d.event(event, "/n", 7).unwrap();
        d.event(event, "/n", 8).unwrap(); // one-shots never fire twice
        d.flush().unwrap();
        let name = event.name().to_str().unwrap();
        let mut want = Vec::new();
        if data {
            want.push(format!("data {name}:CONNECTED:/n"));
        }
        if child {
            want.push(format!("child {name}:CONNECTED:/n"));
        }
        assert_eq!(take(&l), want, "{event:?}");
        let stats = d.stats();
        assert_eq!(stats.events_fed, 2);
        assert_eq!(
            stats.events_fed,
            stats.events_matched + stats.events_unmatched + stats.events_ignored
        );
    }
}

#[test]
fn persistent_matching_table() {
    // ZooKeeper 3.6 ZKWatchManager: persistent fires on every node event of its
    // path; recursive on its path and descendants, never on CHILD.
    for event in [T::Created, T::Changed, T::Deleted, T::Child] {
        let d = connected(0);
        let l = log();
        watch(&d, &l, "p", "/a/b", ZK_WATCH_PERSISTENT);
        watch(&d, &l, "r-root", "/", ZK_WATCH_PERSISTENT_RECURSIVE);
        watch(&d, &l, "r-a", "/a", ZK_WATCH_PERSISTENT_RECURSIVE);
        watch(&d, &l, "r-ab", "/a/b", ZK_WATCH_PERSISTENT_RECURSIVE);
        watch(&d, &l, "r-abc", "/a/b/c", ZK_WATCH_PERSISTENT_RECURSIVE);
        watch(&d, &l, "r-ax", "/ab", ZK_WATCH_PERSISTENT_RECURSIVE);
        for _ in 0..2 {
            d.event(event, "/a/b", 1).unwrap();
        }
        d.flush().unwrap();
        let name = event.name().to_str().unwrap();
        let mut once = vec![format!("p {name}:CONNECTED:/a/b")];
        if event != T::Child {
            // from the path up to the root
            for w in ["r-ab", "r-a", "r-root"] {
                once.push(format!("{w} {name}:CONNECTED:/a/b"));
            }
        }
        let want: Vec<String> = once.iter().chain(once.iter()).cloned().collect();
        assert_eq!(take(&l), want, "{event:?}");
    }
}

#[test]
fn event_order_within_one_event() {
    let d = connected(0);
    let l = log();
    watch(&d, &l, "r", "/", ZK_WATCH_PERSISTENT_RECURSIVE);
    watch(&d, &l, "p", "/x", ZK_WATCH_PERSISTENT);
    watch(&d, &l, "c", "/x", ZK_WATCH_CHILD);
    watch(&d, &l, "d1", "/x", ZK_WATCH_DATA);
    watch(&d, &l, "d2", "/x", ZK_WATCH_DATA);
    d.event(T::Deleted, "/x", 1).unwrap();
    d.flush().unwrap();
    let names: Vec<String> = take(&l)
        .iter()
        .map(|s| s.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(names, ["d1", "d2", "c", "p", "r"]);
}

#[test]
fn new_dispatcher_is_closed_and_lost() {
    let d = Dispatcher::new(0, 0).unwrap();
    assert_eq!(d.state(), (K::Lost, S::Closed));
    assert_eq!(
        Dispatcher::new(1 << 7, 0).err(),
        Some(zk_status::ZK_ERR_INVALID_ARGUMENT)
    );
}

#[test]
fn events_carry_current_keeper_state() {
    let d = Dispatcher::new(0, 0).unwrap();
    let l = log();
    watch(&d, &l, "w", "/n", ZK_WATCH_PERSISTENT);
    d.event(T::Changed, "/n", 1).unwrap(); // before any connection: CLOSED
    d.session(S::ConnectedRo).unwrap();
    d.event(T::Changed, "/n", 2).unwrap();
    d.flush().unwrap();
    assert_eq!(
        take(&l),
        ["w CHANGED:CLOSED:/n", "w CHANGED:CONNECTED_RO:/n"]
    );
}

#[test]
fn suspension_fires_one_shots_and_keeps_persistent() {
    let d = connected(0);
    let l = log();
    listen(&d, &l, "L");
    watch(&d, &l, "data", "/a", ZK_WATCH_DATA);
    watch(&d, &l, "child", "/b", ZK_WATCH_CHILD);
    watch(&d, &l, "p", "/c", ZK_WATCH_PERSISTENT);
    d.session(S::Connecting).unwrap();
    d.session(S::Connected).unwrap();
    d.event(T::Changed, "/a", 1).unwrap(); // the one-shot is gone
    d.event(T::Changed, "/c", 1).unwrap(); // the persistent one stays
    d.flush().unwrap();
    assert_eq!(
        take(&l),
        [
            "L SUSPENDED",
            "child NONE:CONNECTING:None",
            "data NONE:CONNECTING:None",
            "p NONE:CONNECTING:None",
            "L CONNECTED",
            "p CHANGED:CONNECTED:/c",
        ]
    );
}

#[test]
fn lost_session_resets_every_watch() {
    let d = connected(0);
    let l = log();
    listen(&d, &l, "L");
    watch(&d, &l, "data", "/a", ZK_WATCH_DATA);
    watch(&d, &l, "r", "/", ZK_WATCH_PERSISTENT_RECURSIVE);
    d.session(S::ExpiredSession).unwrap();
    d.session(S::Connecting).unwrap(); // from a closed state: nothing
    d.session(S::Connected).unwrap();
    d.event(T::Created, "/a", 1).unwrap();
    d.flush().unwrap();
    assert_eq!(
        take(&l),
        [
            "L LOST",
            "data NONE:EXPIRED_SESSION:None",
            "r NONE:EXPIRED_SESSION:None",
            "L CONNECTED"
        ]
    );
    assert_eq!(d.stats().watches, 0);
}

#[test]
fn keep_watches_option_is_java_style() {
    let d = connected(ZK_DISPATCHER_KEEP_WATCHES);
    let l = log();
    watch(&d, &l, "data", "/a", ZK_WATCH_DATA);
    d.session(S::Connecting).unwrap();
    d.session(S::Connected).unwrap();
    d.event(T::Changed, "/a", 1).unwrap();
    d.event(T::Changed, "/a", 1).unwrap();
    d.flush().unwrap();
    assert_eq!(
        take(&l),
        ["data NONE:CONNECTING:None", "data CHANGED:CONNECTED:/a"]
    );
}

#[test]
fn curator_mode_states() {
    let d = Dispatcher::new(ZK_DISPATCHER_CURATOR_STATES, 0).unwrap();
    let l = log();
    listen(&d, &l, "L");
    for s in [
        S::Connecting,
        S::Connected,
        S::Connecting,
        S::Connected,
        S::ConnectedRo,
        S::Connected,
        S::ExpiredSession,
    ] {
        d.session(s).unwrap();
    }
    d.flush().unwrap();
    assert_eq!(
        take(&l),
        [
            "L CONNECTED",
            "L SUSPENDED",
            "L RECONNECTED",
            "L READ_ONLY",
            "L RECONNECTED",
            "L LOST"
        ]
    );
}

#[test]
fn listener_returning_true_is_removed_and_freed() {
    let d = Dispatcher::new(0, 0).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let freed = Arc::new(AtomicUsize::new(0));
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (c, g) = (Arc::clone(&calls), Guard(Arc::clone(&freed)));
    let id = d
        .listener_add(move |_: K| {
            let _keep = &g;
            c.fetch_add(1, Ordering::SeqCst);
            true
        })
        .unwrap();
    d.session(S::Connected).unwrap();
    d.session(S::Connecting).unwrap();
    d.flush().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(freed.load(Ordering::SeqCst), 1);
    assert_eq!(d.listener_remove(id), Err(zk_status::ZK_ERR_NOT_FOUND));
}

#[test]
fn chroot_strips_on_boundary() {
    let d = connected(0);
    d.set_chroot(Some("/app")).unwrap();
    let l = log();
    watch(&d, &l, "root", "/", ZK_WATCH_DATA);
    watch(&d, &l, "x", "/x", ZK_WATCH_DATA);
    d.event(T::Changed, "/application", 1).unwrap();
    d.event(T::Changed, "/app", 1).unwrap();
    d.event(T::Changed, "/app/x", 1).unwrap();
    d.flush().unwrap();
    assert_eq!(
        take(&l),
        ["root CHANGED:CONNECTED:/", "x CHANGED:CONNECTED:/x"]
    );
    assert_eq!(d.stats().events_unmatched, 1);
    assert_eq!(
        d.set_chroot(Some("app")),
        Err(zk_status::ZK_ERR_INVALID_PATH)
    );
}

#[test]
fn sequence_numbers_order_everything() {
    let d = Dispatcher::new(0, 0).unwrap();
    let seqs = Arc::new(Mutex::new(Vec::new()));
    let s1 = Arc::clone(&seqs);
    d.watch_add("/n", ZK_WATCH_PERSISTENT, move |e: &Event| {
        s1.lock().unwrap().push((e.seq, current_seq()))
    })
    .unwrap();
    let s2 = Arc::clone(&seqs);
    d.listener_add(move |_: K| {
        let s = current_seq();
        s2.lock().unwrap().push((s, s));
        false
    })
    .unwrap();
    for i in 0..50 {
        if i % 10 == 0 {
            d.session(if i % 20 == 0 {
                S::Connected
            } else {
                S::Connecting
            })
            .unwrap();
        }
        d.event(T::Changed, "/n", i).unwrap();
    }
    d.flush().unwrap();
    let seqs = seqs.lock().unwrap();
    assert!(seqs.iter().all(|(a, b)| a == b && *a > 0));
    // Increasing; the NONE events of a session change share its number.
    assert!(
        seqs.windows(2).all(|w| w[0].0 <= w[1].0),
        "increasing: {seqs:?}"
    );
    assert_eq!(
        seqs.len(),
        50 + 5 + 2,
        "50 events, 5 state changes, 2 suspensions"
    );
    assert_eq!(current_seq(), 0);
}

#[test]
fn reentrant_callbacks() {
    let d = Arc::new(connected(0));
    let l = log();
    // A persistent watch that removes itself, registers a one-shot, submits work
    // and adds a listener, all from the dispatch thread.
    let id = Arc::new(Mutex::new(0u64));
    let (d2, l2, id2) = (Arc::clone(&d), Arc::clone(&l), Arc::clone(&id));
    let first = d
        .watch_add("/n", ZK_WATCH_PERSISTENT, move |_: &Event| {
            let me = *id2.lock().unwrap();
            assert_eq!(d2.watch_remove(me), Ok(()));
            assert_eq!(d2.watch_remove(me), Err(zk_status::ZK_ERR_NOT_FOUND));
            let l3 = Arc::clone(&l2);
            d2.watch_add("/n", ZK_WATCH_DATA, move |e: &Event| {
                l3.lock().unwrap().push(describe(e))
            })
            .unwrap();
            let l4 = Arc::clone(&l2);
            d2.submit(move || l4.lock().unwrap().push("submitted".into()))
                .unwrap();
            assert_eq!(d2.flush(), Err(zk_status::ZK_ERR_WOULD_DEADLOCK));
            l2.lock().unwrap().push("persistent".into());
        })
        .unwrap();
    *id.lock().unwrap() = first;
    d.event(T::Changed, "/n", 1).unwrap();
    d.flush().unwrap();
    d.event(T::Changed, "/n", 2).unwrap();
    d.flush().unwrap();
    assert_eq!(
        take(&l),
        ["persistent", "submitted", "CHANGED:CONNECTED:/n"]
    );
}

#[test]
fn bounded_queue_refuses_and_counts() {
    let d = Arc::new(Dispatcher::new(0, 1).unwrap());
    d.session(S::Connected).unwrap();
    let gate = park_running(&d);
    let l = log();
    watch(&d, &l, "w", "/n", ZK_WATCH_DATA);
    d.submit(|| {}).unwrap(); // fills the one slot
    assert_eq!(
        d.event(T::Changed, "/n", 1),
        Err(zk_status::ZK_ERR_QUEUE_FULL)
    );
    assert_eq!(
        d.submit(|| {}).err().map(|r| r.status),
        Some(zk_status::ZK_ERR_QUEUE_FULL)
    );
    // An invalid path is refused as such, full queue or not, and is not
    // counted as refused for room.
    for bad in ["/n/", "/n//x", "n"] {
        assert_eq!(
            d.event(T::Changed, bad, 1),
            Err(zk_status::ZK_ERR_INVALID_PATH)
        );
    }
    assert_eq!(d.stats().refused_full, 2);
    d.session(S::Connecting).unwrap(); // never refused
    drop(gate);
    d.flush().unwrap();
    let stats = d.stats();
    assert_eq!(stats.refused_full, 2);
    // The refused event popped nothing: the watch fired only for the suspension.
    assert_eq!(take(&l), ["w NONE:CONNECTING:None"]);
}

#[test]
fn panicking_callback_does_not_stop_dispatch() {
    let d = connected(0);
    d.submit(|| panic!("user bug")).unwrap();
    let l = log();
    watch(&d, &l, "w", "/n", ZK_WATCH_DATA);
    d.event(T::Created, "/n", 1).unwrap();
    d.flush().unwrap();
    assert_eq!(take(&l), ["w CREATED:CONNECTED:/n"]);
    assert_eq!(d.stats().callback_panics, 1);
}

#[test]
fn drop_runs_queue_then_frees_everything_once() {
    let freed = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    {
        let d = connected(0);
        for i in 0..100 {
            let g = Guard(Arc::clone(&freed));
            let r = Arc::clone(&ran);
            let kind = [
                ZK_WATCH_DATA,
                ZK_WATCH_CHILD,
                ZK_WATCH_PERSISTENT,
                ZK_WATCH_PERSISTENT_RECURSIVE,
            ][i % 4];
            d.watch_add(&format!("/n{}", i % 7), kind, move |_: &Event| {
                let _g = &g;
                r.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        for i in 0..7 {
            d.event(T::Deleted, &format!("/n{i}"), 1).unwrap();
        }
    }
    assert_eq!(freed.load(Ordering::SeqCst), 100);
    // Every watch matched a DELETED of its path (recursive ones on their own path).
    assert_eq!(ran.load(Ordering::SeqCst), 100);
}

#[test]
fn invalid_arguments() {
    let d = Dispatcher::new(0, 0).unwrap();
    for bad in ["", "x", "/x/", "//", "/a/../b"] {
        assert_eq!(
            d.watch_add(bad, ZK_WATCH_DATA, |_: &Event| {})
                .err()
                .map(|r| r.status),
            Some(zk_status::ZK_ERR_INVALID_PATH)
        );
        assert_eq!(
            d.event(T::Created, bad, 0),
            Err(zk_status::ZK_ERR_INVALID_PATH)
        );
    }
    assert_eq!(d.watch_remove(12345), Err(zk_status::ZK_ERR_NOT_FOUND));
    assert_eq!(d.listener_remove(12345), Err(zk_status::ZK_ERR_NOT_FOUND));
}

/// A path the registry holds skips validation (it was validated when
/// registered); everything else is still validated first, before a closed
/// dispatcher's refusal, and no other path slips through: near misses of a
/// registered path, and events with a chroot.
#[test]
fn validation_of_known_and_unknown_paths() {
    let d = connected(0);
    let l = log();
    watch(&d, &l, "a", "/app/a", ZK_WATCH_PERSISTENT);
    watch(&d, &l, "b", "/app/b", ZK_WATCH_DATA);
    for bad in ["/app/a/", "/app//a", "/app/a/.", "app/a", "/app/a\u{1}"] {
        assert_eq!(
            d.event(T::Changed, bad, 0),
            Err(zk_status::ZK_ERR_INVALID_PATH),
            "{bad:?}"
        );
    }
    d.event(T::Changed, "/app/a", 1).unwrap();
    d.event(T::Changed, "/app/b", 2).unwrap();
    // Registered again on a path the registry holds (its one-shot popped).
    watch(&d, &l, "b2", "/app/b", ZK_WATCH_DATA);
    d.event(T::Changed, "/app/b", 3).unwrap();
    d.set_chroot(Some("/app")).unwrap();
    watch(&d, &l, "root", "/", ZK_WATCH_DATA);
    d.event(T::Changed, "/app", 4).unwrap();
    d.event(T::Changed, "/app/a", 5).unwrap();
    assert_eq!(
        d.event(T::Changed, "/app/", 6),
        Err(zk_status::ZK_ERR_INVALID_PATH)
    );
    d.flush().unwrap();
    assert_eq!(
        take(&l),
        [
            "a CHANGED:CONNECTED:/app/a",
            "b CHANGED:CONNECTED:/app/b",
            "b2 CHANGED:CONNECTED:/app/b",
            "root CHANGED:CONNECTED:/",
        ]
    );
    // Closed: an invalid path is still refused as invalid, and only valid
    // ones count as refused for closing.
    let inner = d.into_arc();
    drop(Dispatcher::from_arc(Arc::clone(&inner)));
    for bad in ["/x/", "x"] {
        assert_eq!(
            inner.event(T::Changed, bad, 0),
            Err(zk_status::ZK_ERR_INVALID_PATH)
        );
        assert_eq!(
            inner
                .watch_add(bad, ZK_WATCH_DATA, |_: &Event| {})
                .err()
                .map(|r| r.status),
            Some(zk_status::ZK_ERR_INVALID_PATH)
        );
    }
    assert_eq!(inner.stats().refused_closed, 0);
    assert_eq!(
        inner.event(T::Changed, "/x", 0),
        Err(zk_status::ZK_ERR_SHUTTING_DOWN)
    );
    assert_eq!(
        inner
            .watch_add("/app/a", ZK_WATCH_DATA, |_: &Event| {})
            .err()
            .map(|r| r.status),
        Some(zk_status::ZK_ERR_SHUTTING_DOWN)
    );
    assert_eq!(inner.stats().refused_closed, 2);
}

/// With a table too large for the cache, node events and registrations are
/// deferred and applied a window at a time behind a read-ahead: long bursts
/// of them, cut now and then by calls that apply everything first (a
/// removal, a snapshot of the counters), and with the table rebuilt under
/// them as it grows (one-shots on new paths) and sweeps emptied paths
/// (those one-shots fired), still match exactly as if each were applied when
/// fed, in feed order. The dispatch thread is kept busy through each
/// burst (a submitted task waits), so that the feeder applies the windows
/// itself rather than the dispatch thread applying everything pending.
#[test]
fn large_table_bursts_match_in_feed_order() {
    const PATHS: usize = 8_000;
    let d = connected(0);
    let l = log();
    let path = |i: usize| format!("/app/svc{}/n{i}", i % 13);
    for i in 0..PATHS {
        watch(&d, &l, &format!("p{i}"), &path(i), ZK_WATCH_PERSISTENT);
    }
    watch(&d, &l, "r3", "/app/svc3", ZK_WATCH_PERSISTENT_RECURSIVE);
    d.flush().unwrap();
    // The one-shot watches registered on each path and not fired yet.
    let mut oneshots: Vec<Vec<(String, u64)>> = vec![Vec::new(); PATHS];
    // One-shots on paths of their own, oldest first.
    let mut fresh = std::collections::VecDeque::new();
    let mut want = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut parked: Option<std::sync::mpsc::Sender<()>> = None;
    for step in 0..60_000 {
        if step % 1_000 == 0 {
            // Lets the last burst's task return, and parks the next one.
            drop(parked.take());
            parked = Some(park(&d));
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let i = (rng >> 8) as usize % PATHS;
        match rng % 512 {
            0..=127 => {
                let name = format!("o{step}");
                let id = watch(&d, &l, &name, &path(i), ZK_WATCH_DATA);
                oneshots[i].push((name, id));
            }
            128..=223 => {
                let (name, p) = (format!("f{step}"), format!("/fresh/f{step}"));
                watch(&d, &l, &name, &p, ZK_WATCH_DATA);
                fresh.push_back((name, p));
            }
            224..=319 if fresh.len() > 100 => {
                let (name, p) = fresh.pop_front().unwrap();
                d.event(T::Changed, &p, step).unwrap();
                want.push(format!("{name} {p}"));
            }
            320 => {
                if let Some((_, id)) = oneshots[i].pop() {
                    d.watch_remove(id).unwrap();
                }
            }
            321 => {
                d.stats();
            }
            _ => {
                d.event(T::Changed, &path(i), step).unwrap();
                want.extend(
                    oneshots[i]
                        .drain(..)
                        .map(|(name, _)| format!("{name} {}", path(i))),
                );
                want.push(format!("p{i} {}", path(i)));
                if i % 13 == 3 {
                    want.push(format!("r3 {}", path(i)));
                }
            }
        }
    }
    drop(parked);
    d.flush().unwrap();
    let got: Vec<String> = take(&l)
        .iter()
        .map(|s| {
            let (name, event) = s.split_once(' ').unwrap();
            format!("{name} {}", event.rsplit(':').next().unwrap())
        })
        .collect();
    assert!(want.len() > 30_000, "{}", want.len());
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "first difference at {:?}",
        got.iter().zip(&want).position(|(a, b)| a != b)
    );
}

/// A bounded queue with a large table: deferred events count against the
/// bound while pending and after the feeder applied some of them (events
/// that match nothing do not), so exactly `capacity` matching events are
/// taken while the dispatch thread is busy; then the queue is full, and
/// the next event is refused, matching or not.
#[test]
fn bounded_queue_counts_deferred_events() {
    const PATHS: usize = 8_000;
    const CAPACITY: usize = 1_000;
    let d = Dispatcher::new(0, CAPACITY).unwrap();
    d.session(S::Connected).unwrap();
    let l = log();
    let path = |i: usize| format!("/app/svc{}/n{i}", i % 13);
    for i in 0..PATHS {
        watch(&d, &l, &format!("p{i}"), &path(i), ZK_WATCH_PERSISTENT);
    }
    d.flush().unwrap();
    let release = park_running(&d);
    // The parked task is running, not queued: the bound is free.
    let mut taken = 0;
    for step in 0.. {
        // Every third event matches nothing, and costs no room.
        let (p, matches) = if step % 3 == 0 {
            (format!("/none/{step}"), false)
        } else {
            (path(step as usize * 7919 % PATHS), true)
        };
        match d.event(T::Changed, &p, step) {
            Ok(()) => taken += usize::from(matches),
            Err(e) => {
                assert_eq!(e, zk_status::ZK_ERR_QUEUE_FULL);
                break;
            }
        }
    }
    assert_eq!(taken, CAPACITY);
    drop(release);
    d.flush().unwrap();
    assert_eq!(take(&l).len(), CAPACITY);
    assert_eq!(d.stats().refused_full, 1);
}
