//! The watch registry: which watches exist, on which paths, and which ones an
//! event or a session change fires. Pure bookkeeping, used under the
//! dispatcher's lock; it never holds a handler (those live on the dispatch
//! thread, see `Worker`) and never runs user code.
//!
//! Memory layout, chosen so that matching an event touches few cache lines:
//! watches are slots in a dense array, addressed by index; paths are entries
//! (a path of up to 30 bytes stored inline) in a bucket array, each in the
//! bucket `PathIndex` gave it, so finding one reads little more than the
//! entry itself; the watches of a path form a list threaded through
//! their slots, in registration order. A watch id is its slot index with the
//! slot's generation above it, so ids are never reused: a slot whose
//! generation is exhausted is retired for good.
//!
//! A slot leaves the registry in two steps: firing for the last time
//! (`Popped`: no longer matched, still removable until the dispatch thread
//! claims its call) or removal (`Dead`), then, once the dispatch thread has
//! passed every job naming it, `retire` makes it free for reuse. Until then
//! its generation stays, so queued jobs can tell it from a later watch. A
//! path's entry outlives its last watch until `sweep_if_needed` rebuilds the
//! table without the empty ones.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::index::{PathHasher, PathIndex};
use super::zk_watch_kind;
use crate::event::zk_event_type;

/// Slots per chunk of the shared generation array.
pub(super) const CHUNK: usize = 4096;

/// Generations run from 1 to this; a slot that reaches it is not reused.
const GEN_LIMIT: u32 = 0x7fff_ffff;

/// The position of a slot in no list, and the end of a list.
const NIL: u32 = u32::MAX;

/// Listener ids have the top bit set, watch ids never do.
pub(super) const LISTENER_ID_BIT: u64 = 1 << 63;

/// A watch kind in one byte.
#[repr(u8)]
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Kind {
    Data = 0,
    Child = 1,
    Persistent = 2,
    Recursive = 3,
}

impl Kind {
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl From<zk_watch_kind> for Kind {
    fn from(kind: zk_watch_kind) -> Kind {
        match kind {
            zk_watch_kind::ZK_WATCH_DATA => Kind::Data,
            zk_watch_kind::ZK_WATCH_CHILD => Kind::Child,
            zk_watch_kind::ZK_WATCH_PERSISTENT => Kind::Persistent,
            zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE => Kind::Recursive,
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum State {
    /// A new slot, until `add` gives it its first watch.
    Free,
    Live,
    /// Fired for the last time, its call queued: no longer matched, but
    /// still removable until the dispatch thread claims the call.
    Popped,
    /// Removed.
    Dead,
}

/// What `Registry::remove` did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Removed {
    /// A live watch: release its handler on the dispatch thread.
    Release(u32),
    /// A fired watch whose call had not started: cancelled; the queued call
    /// drops its handler.
    Cancelled,
}

/// A watch (24 bytes).
struct Slot {
    /// Registration order (kazoo's order within a path's set, and of
    /// persistent watches on session events).
    order: u64,
    gen: u32,
    /// The path entry's position while live.
    entry: u32,
    /// The next watch of the same path, or the next free slot.
    next: u32,
    kind: Kind,
    state: State,
}

/// A path's bytes: inline up to 30 bytes, else on the heap.
enum Key {
    Inline { len: u8, bytes: [u8; 30] },
    Heap(Box<[u8]>),
}

impl Key {
    fn new(path: &[u8]) -> Key {
        if path.len() <= 30 {
            let mut bytes = [0u8; 30];
            bytes[..path.len()].copy_from_slice(path);
            Key::Inline {
                len: path.len() as u8,
                bytes,
            }
        } else {
            Key::Heap(Box::from(path))
        }
    }

    fn get(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }
}

/// A watched path (64 bytes).
struct PathEntry {
    key: Key,
    /// The first watch of the list and its generation: a path with one watch
    /// (`head == tail`) is matched without reading its slot.
    head: u32,
    head_gen: u32,
    tail: u32,
    /// `Kind::bit`s of the watches in the list.
    kinds: u8,
    /// When the path last gained a data (child) watch after having none: the
    /// order in which kazoo's `_data_watchers` (`_child_watchers`) dict holds
    /// the path, which is the order `_reset_watchers` fires them in.
    data_since: u64,
    child_since: u64,
}

impl PathEntry {
    fn new(path: &[u8]) -> PathEntry {
        PathEntry {
            key: Key::new(path),
            head: NIL,
            head_gen: 0,
            tail: NIL,
            kinds: 0,
            data_since: 0,
            child_since: 0,
        }
    }
}

/// `n` empty buckets.
fn vacant_entries(n: usize) -> Vec<PathEntry> {
    (0..n).map(|_| PathEntry::new(b"")).collect()
}

/// Entries moved at a time when the path table is rebuilt.
const REBUILD_WINDOW: usize = 16;

/// The fewest buckets of the path table.
const MIN_BUCKETS: usize = 16;

/// The path table grows once more than 4/5 of its buckets are taken, to
/// 3/5 full: lookups stay short, and entries take 80 to 107 bytes of table
/// per path.
fn over_full(occupied: usize, buckets: usize) -> bool {
    occupied * 5 > buckets * 4
}

fn buckets_for(paths: usize) -> usize {
    (paths * 5 / 3 + 1).max(MIN_BUCKETS)
}

/// A watch to call: `claim` means it has fired for the last time (its handler
/// is dropped after the call and its slot retired).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub slot: u32,
    pub gen: u32,
    pub claim: bool,
}

/// What a session change did to the watches.
#[derive(Default)]
pub(super) struct Reset {
    /// The watches to notify, in kazoo's order.
    pub targets: Vec<Target>,
    /// Watches dropped without a notification: release them.
    pub released: Vec<u32>,
}

/// What a session change asks of the watches (`ZK_SESSION_ACTION_*`).
#[derive(Copy, Clone)]
pub(super) struct ResetActions {
    pub fire_one_shot: bool,
    pub notify_one_shot: bool,
    pub notify_persistent: bool,
    pub drop_persistent: bool,
}

pub(super) struct Registry {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The live generation of every slot (0: none), shared with the dispatch
    /// thread, which skips jobs of a watch removed after they were queued.
    gens: Vec<Arc<[AtomicU32]>>,
    /// The path entries, each in the bucket `index` gave it (as many as the
    /// index has buckets; an empty bucket holds a vacant entry).
    entries: Vec<PathEntry>,
    /// Buckets holding a path.
    occupied: usize,
    /// Entries whose list is empty: kept, since a path whose one-shot fired
    /// is usually watched again at once, and swept when they pile up.
    empty: usize,
    index: PathIndex,
    hasher: PathHasher,
    live: usize,
    /// Watches fired for the last time and not cancelled, ever: those the
    /// dispatch thread has not yet called are `popped - Counters::claimed`.
    popped: u64,
    recursive: usize,
    next_order: u64,
    prefixes: Vec<(u32, usize)>,
}

/// A new watch: its slot, id, and the new chunk of generations to hand to
/// the dispatch thread, if the slot opened one.
pub(super) struct Added {
    pub slot: u32,
    pub id: u64,
    pub chunk: Option<Arc<[AtomicU32]>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            slots: Vec::new(),
            free: Vec::new(),
            gens: Vec::new(),
            entries: vacant_entries(MIN_BUCKETS),
            occupied: 0,
            empty: 0,
            index: PathIndex::with_buckets(MIN_BUCKETS),
            hasher: PathHasher::new(),
            live: 0,
            popped: 0,
            recursive: 0,
            next_order: 0,
            prefixes: Vec::new(),
        }
    }
}

impl Registry {
    /// Watches registered now.
    pub(super) fn live(&self) -> usize {
        self.live
    }

    /// Watches fired for the last time so far.
    pub(super) fn popped(&self) -> u64 {
        self.popped
    }

    fn gen_cell(&self, slot: u32) -> &AtomicU32 {
        let k = slot as usize;
        &self.gens[k / CHUNK][k % CHUNK]
    }

    fn find(&self, hash: u32, path: &[u8]) -> Option<u32> {
        self.index
            .find(hash, |e| self.entries[e as usize].key.get() == path)
    }

    /// Registers a watch on a validated path.
    pub(super) fn add(&mut self, path: &[u8], kind: zk_watch_kind) -> Added {
        let kind = Kind::from(kind);
        let mut chunk = None;
        let slot = match self.reuse() {
            Some(slot) => slot,
            None => {
                let slot = self.slots.len();
                if slot % CHUNK == 0 {
                    let cells: Arc<[AtomicU32]> = (0..CHUNK).map(|_| AtomicU32::new(0)).collect();
                    self.gens.push(Arc::clone(&cells));
                    chunk = Some(cells);
                }
                self.slots.push(Slot {
                    order: 0,
                    gen: 0,
                    entry: NIL,
                    next: NIL,
                    kind,
                    state: State::Free,
                });
                u32::try_from(slot).expect("fewer than 2^32 watches")
            }
        };
        let order = self.next_order;
        self.next_order += 1;
        let hash = self.hasher.hash(path);
        let entry = match self.find(hash, path) {
            Some(e) => {
                if self.entries[e as usize].head == NIL {
                    self.empty -= 1;
                }
                e
            }
            None => {
                if over_full(self.occupied + 1, self.index.buckets()) {
                    self.rebuild();
                }
                let e = self.index.claim(hash);
                // The bucket was empty, so its entry is vacant (no heap key):
                // forgotten rather than dropped, so that its cold line is
                // only written, not first read to see what to drop.
                let vacant = std::mem::replace(&mut self.entries[e as usize], PathEntry::new(path));
                debug_assert!(vacant.key.get().is_empty() && vacant.head == NIL);
                std::mem::forget(vacant);
                self.occupied += 1;
                e
            }
        };
        let s = &mut self.slots[slot as usize];
        s.gen += 1;
        s.order = order;
        s.entry = entry;
        s.next = NIL;
        s.kind = kind;
        s.state = State::Live;
        let gen = s.gen;
        let e = &mut self.entries[entry as usize];
        if e.kinds & kind.bit() == 0 {
            match kind {
                Kind::Data => e.data_since = order,
                Kind::Child => e.child_since = order,
                _ => {}
            }
        }
        e.kinds |= kind.bit();
        let tail = std::mem::replace(&mut e.tail, slot);
        if tail == NIL {
            e.head = slot;
            e.head_gen = gen;
        } else {
            self.slots[tail as usize].next = slot;
        }
        self.gen_cell(slot).store(gen, Ordering::Release);
        self.live += 1;
        if kind == Kind::Recursive {
            self.recursive += 1;
        }
        Added {
            slot,
            id: (u64::from(gen) << 32) | u64::from(slot),
            chunk,
        }
    }

    /// Removes a watch by id. Jobs already queued for it are skipped from
    /// now on; `None` if no watch has this id or its last call has started.
    pub(super) fn remove(&mut self, id: u64) -> Option<Removed> {
        if id & LISTENER_ID_BIT != 0 {
            return None;
        }
        let slot = id as u32;
        let gen = (id >> 32) as u32;
        let s = self.slots.get(slot as usize)?;
        if s.gen != gen {
            return None;
        }
        match s.state {
            State::Live => {
                let entry = s.entry;
                self.gen_cell(slot).store(0, Ordering::Release);
                self.kill(slot, State::Dead);
                self.unlink_dead(entry);
                self.sweep_if_needed();
                Some(Removed::Release(slot))
            }
            // The dispatch thread claims a popped watch's call the same way:
            // whoever swaps the generation out first wins.
            State::Popped => {
                self.gen_cell(slot)
                    .compare_exchange(gen, 0, Ordering::AcqRel, Ordering::Acquire)
                    .ok()?;
                self.popped -= 1;
                Some(Removed::Cancelled)
            }
            State::Free | State::Dead => None,
        }
    }

    /// Takes a live slot out of matching (`Popped` or `Dead`); `unlink_dead`
    /// then takes it out of its list.
    fn kill(&mut self, slot: u32, state: State) {
        let s = &mut self.slots[slot as usize];
        debug_assert_eq!(s.state, State::Live);
        s.state = state;
        if s.kind == Kind::Recursive {
            self.recursive -= 1;
        }
        self.live -= 1;
    }

    /// Takes the popped and dead slots out of an entry's list (which keeps its order),
    /// and the entry out of the index if its list empties.
    fn unlink_dead(&mut self, entry: u32) {
        let (mut head, mut tail, mut kinds) = (NIL, NIL, 0u8);
        let mut cur = self.entries[entry as usize].head;
        while cur != NIL {
            let s = &mut self.slots[cur as usize];
            let next = std::mem::replace(&mut s.next, NIL);
            if s.state != State::Live {
                s.entry = NIL;
            } else {
                kinds |= s.kind.bit();
                if tail == NIL {
                    head = cur;
                } else {
                    self.slots[tail as usize].next = cur;
                }
                tail = cur;
            }
            cur = next;
        }
        let head_gen = if head == NIL {
            self.empty += 1;
            0
        } else {
            self.slots[head as usize].gen
        };
        let e = &mut self.entries[entry as usize];
        e.head = head;
        e.head_gen = head_gen;
        e.tail = tail;
        e.kinds = kinds;
    }

    /// Sweeps the empty entries once they outnumber the others (and are more
    /// than a few): amortized O(1) per emptied entry. Entry positions change,
    /// so this runs only at the end of an operation.
    fn sweep_if_needed(&mut self) {
        if self.empty > 1024 && self.empty * 2 > self.occupied {
            self.rebuild();
        }
    }

    /// Moves the entries that hold watches into a new table sized for them
    /// (`buckets_for`), dropping the empty ones, and points their watches at
    /// their new buckets: the live slots (exactly those in lists, between
    /// operations) are updated in one pass in slot order, through a map of
    /// old bucket to new, rather than list by list, which would be a cache
    /// miss per watch.
    fn rebuild(&mut self) {
        let paths = self.occupied - self.empty;
        let buckets = buckets_for(paths);
        self.index = PathIndex::with_buckets(buckets);
        let mut old = std::mem::replace(&mut self.entries, vacant_entries(buckets));
        let mut moved = vec![NIL; old.len()];
        // A window of entries at a time: their new buckets are claimed and
        // read before any entry moves in, so those cache misses overlap.
        let mut window = Vec::with_capacity(REBUILD_WINDOW);
        let mut from = 0;
        while from < old.len() {
            window.clear();
            while from < old.len() && window.len() < REBUILD_WINDOW {
                if old[from].head != NIL {
                    let at = self.index.claim(self.hasher.hash(old[from].key.get()));
                    moved[from] = at;
                    window.push((from, at));
                }
                from += 1;
            }
            let touched = window
                .iter()
                .fold(0u8, |acc, &(_, at)| acc ^ self.entries[at as usize].kinds);
            std::hint::black_box(touched);
            for &(from, at) in &window {
                self.entries[at as usize] = std::mem::replace(&mut old[from], PathEntry::new(b""));
            }
        }
        for s in self.slots.iter_mut().filter(|s| s.state == State::Live) {
            s.entry = moved[s.entry as usize];
            debug_assert_ne!(s.entry, NIL);
        }
        self.occupied = paths;
        self.empty = 0;
    }

    /// Slots the dispatch thread is done with: free for reuse. They are not
    /// read or written here (this runs on the dispatch thread, and the next
    /// `add` would have to pull each slot's cache line back): a retired slot
    /// keeps its `Popped` or `Dead` state, which no id can act on, since its
    /// generation cell is 0; `add` skips the exhausted ones.
    pub(super) fn retire(&mut self, slots: &mut Vec<u32>) {
        self.free.append(slots);
    }

    /// A slot to reuse, if any: the last one retired (its cache lines are
    /// likely still warm) whose generation is not exhausted.
    fn reuse(&mut self) -> Option<u32> {
        while let Some(slot) = self.free.pop() {
            let s = &self.slots[slot as usize];
            debug_assert!(matches!(s.state, State::Popped | State::Dead));
            if s.gen < GEN_LIMIT {
                return Some(slot);
            }
        }
        None
    }

    /// Collects the watches a node event fires, one-shots popped: kazoo's
    /// data/child rules, then ZooKeeper 3.6's persistent and
    /// persistent-recursive rules, in that order. O(depth): one hashing pass
    /// over the path; the index slots of all its prefixes are read before
    /// any is searched, so their cache misses overlap.
    pub(super) fn match_event(
        &mut self,
        event_type: zk_event_type,
        path: &[u8],
        out: &mut Vec<Target>,
    ) {
        let walk = self.recursive > 0 && event_type != zk_event_type::Child;
        let mut prefixes = std::mem::take(&mut self.prefixes);
        let hash = if walk {
            self.hasher.prefixes(path, &mut prefixes);
            prefixes.last().expect("a path has at least one prefix").0
        } else {
            prefixes.clear();
            self.hasher.hash(path)
        };
        // The path's own entry is usually in its home bucket: read it first,
        // then the tags of the ancestors, so that all these misses overlap.
        let touched = prefixes
            .iter()
            .fold(self.entries[self.index.home(hash)].kinds, |acc, &(h, _)| {
                acc ^ self.index.touch(h)
            });
        std::hint::black_box(touched);
        let (data, child) = match event_type {
            zk_event_type::Created | zk_event_type::Changed => (true, false),
            zk_event_type::Deleted => (true, true),
            _ => (false, true),
        };
        if let Some(entry) = self.find(hash, path) {
            let kinds = self.entries[entry as usize].kinds;
            let pop = |k: Kind| (data && k == Kind::Data) || (child && k == Kind::Child);
            let mut popped = false;
            for kind in [Kind::Data, Kind::Child] {
                if pop(kind) && kinds & kind.bit() != 0 {
                    self.collect(entry, kind, true, out);
                    popped = true;
                }
            }
            if kinds & Kind::Persistent.bit() != 0 {
                self.collect(entry, Kind::Persistent, false, out);
            }
            if walk && kinds & Kind::Recursive.bit() != 0 {
                self.collect(entry, Kind::Recursive, false, out);
            }
            if popped {
                self.unlink_dead(entry);
                self.sweep_if_needed();
            }
        }
        if walk {
            // From the parent up to the root.
            let ancestors = &prefixes[..prefixes.len() - 1];
            for &(h, len) in ancestors.iter().rev() {
                if let Some(entry) = self.find(h, &path[..len]) {
                    if self.entries[entry as usize].kinds & Kind::Recursive.bit() != 0 {
                        self.collect(entry, Kind::Recursive, false, out);
                    }
                }
            }
        }
        self.prefixes = prefixes;
    }

    /// Appends the entry's watches of `kind`, in list order; `claim` pops them.
    fn collect(&mut self, entry: u32, kind: Kind, claim: bool, out: &mut Vec<Target>) {
        let e = &self.entries[entry as usize];
        if e.head == e.tail && !claim {
            // One watch, of this kind (the caller checked `kinds`).
            debug_assert_eq!(self.slots[e.head as usize].gen, e.head_gen);
            out.push(Target {
                slot: e.head,
                gen: e.head_gen,
                claim,
            });
            return;
        }
        let mut cur = e.head;
        while cur != NIL {
            let s = &self.slots[cur as usize];
            let next = s.next;
            if s.kind == kind {
                out.push(Target {
                    slot: cur,
                    gen: s.gen,
                    claim,
                });
                if claim {
                    self.kill(cur, State::Popped);
                    self.popped += 1;
                }
            }
            cur = next;
        }
    }
}

impl Registry {
    /// Applies a session change to the watches, as kazoo's `_reset_watchers`:
    /// the watches to notify come out in its order (child watches, then data
    /// watches, each path by path in the order kazoo's dicts hold the paths;
    /// then the persistent kinds in registration order), popped as the
    /// actions say.
    pub(super) fn reset(&mut self, a: ResetActions) -> Reset {
        let mut groups: [Vec<(u64, u64, Target)>; 3] = Default::default();
        let mut out = Reset::default();
        let mut any_dead = false;
        for e in 0..self.entries.len() {
            let entry = &self.entries[e];
            let since = [entry.child_since, entry.data_since, 0];
            let mut cur = entry.head;
            while cur != NIL {
                let s = &self.slots[cur as usize];
                let next = s.next;
                let (group, notify, claim) = match s.kind {
                    Kind::Child => (0, a.fire_one_shot || a.notify_one_shot, a.fire_one_shot),
                    Kind::Data => (1, a.fire_one_shot || a.notify_one_shot, a.fire_one_shot),
                    Kind::Persistent | Kind::Recursive => {
                        (2, a.notify_persistent, a.drop_persistent)
                    }
                };
                let target = Target {
                    slot: cur,
                    gen: s.gen,
                    claim,
                };
                if notify {
                    groups[group].push((since[group], s.order, target));
                }
                if claim {
                    if notify {
                        self.popped += 1;
                        self.kill(cur, State::Popped);
                    } else {
                        self.gen_cell(cur).store(0, Ordering::Release);
                        out.released.push(cur);
                        self.kill(cur, State::Dead);
                    }
                    any_dead = true;
                }
                cur = next;
            }
        }
        if any_dead {
            for e in 0..self.entries.len() {
                if self.entries[e].head != NIL {
                    self.unlink_dead(e as u32);
                }
            }
            self.sweep_if_needed();
        }
        for mut group in groups {
            group.sort_unstable_by_key(|&(since, order, _)| (since, order));
            out.targets.extend(group.into_iter().map(|(_, _, t)| t));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_on(r: &Registry, path: &str) -> Vec<u32> {
        let Some(e) = r.find(r.hasher.hash(path.as_bytes()), path.as_bytes()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut cur = r.entries[e as usize].head;
        while cur != NIL {
            out.push(cur);
            cur = r.slots[cur as usize].next;
        }
        out
    }

    #[test]
    fn sizes_stay_small() {
        assert_eq!(std::mem::size_of::<Slot>(), 24);
        assert_eq!(std::mem::size_of::<PathEntry>(), 64);
        assert_eq!(std::mem::size_of::<Key>(), 32);
    }

    #[test]
    fn lists_keep_order_through_removal_and_entry_moves() {
        let mut r = Registry::default();
        let long = "/a/very/long/path/that/does/not/fit/inline/in/thirty/bytes";
        let a1 = r.add(b"/a", zk_watch_kind::ZK_WATCH_PERSISTENT);
        let b1 = r.add(b"/b", zk_watch_kind::ZK_WATCH_DATA);
        let a2 = r.add(b"/a", zk_watch_kind::ZK_WATCH_DATA);
        let l1 = r.add(long.as_bytes(), zk_watch_kind::ZK_WATCH_CHILD);
        let a3 = r.add(b"/a", zk_watch_kind::ZK_WATCH_PERSISTENT);
        assert!(a1.chunk.is_some() && b1.chunk.is_none());
        assert_eq!(ids_on(&r, "/a"), vec![a1.slot, a2.slot, a3.slot]);
        assert_eq!(r.remove(a2.id), Some(Removed::Release(a2.slot)));
        assert_eq!(r.remove(a2.id), None, "removed twice");
        assert_eq!(ids_on(&r, "/a"), vec![a1.slot, a3.slot]);
        // Emptying /b keeps its entry until a sweep; the others are intact.
        assert_eq!(r.remove(b1.id), Some(Removed::Release(b1.slot)));
        assert_eq!(ids_on(&r, "/b"), Vec::<u32>::new());
        assert_eq!(ids_on(&r, long), vec![l1.slot]);
        assert_eq!(r.remove(l1.id), Some(Removed::Release(l1.slot)));
        assert_eq!(r.live(), 2);
        // Dead slots come back only once retired, with a new generation.
        let mut gone = vec![a2.slot, b1.slot, l1.slot];
        r.retire(&mut gone);
        let again = r.add(b"/c", zk_watch_kind::ZK_WATCH_DATA);
        assert!([a2.slot, b1.slot, l1.slot].contains(&again.slot));
        assert_ne!(again.id, a2.id);
        assert_ne!(again.id, b1.id);
        assert_ne!(again.id, l1.id);
        assert_eq!(
            r.remove(a2.id).or(r.remove(b1.id)).or(r.remove(l1.id)),
            None
        );
    }

    #[test]
    fn sweeping_empty_entries_keeps_the_rest() {
        let mut r = Registry::default();
        let keep: Vec<Added> = (0..500)
            .map(|i| {
                r.add(
                    format!("/keep/{i}").as_bytes(),
                    zk_watch_kind::ZK_WATCH_PERSISTENT,
                )
            })
            .collect();
        let gone: Vec<Added> = (0..3000)
            .map(|i| {
                r.add(
                    format!("/gone/{i}").as_bytes(),
                    zk_watch_kind::ZK_WATCH_DATA,
                )
            })
            .collect();
        let mut out = Vec::new();
        for (i, g) in gone.iter().enumerate() {
            if i % 2 == 0 {
                assert!(r.remove(g.id).is_some());
            } else {
                out.clear();
                r.match_event(
                    zk_event_type::Changed,
                    format!("/gone/{i}").as_bytes(),
                    &mut out,
                );
                assert_eq!(
                    out,
                    vec![Target {
                        slot: g.slot,
                        gen: (g.id >> 32) as u32,
                        claim: true
                    }]
                );
            }
        }
        assert!(r.occupied < 3500, "swept: {}", r.occupied);
        assert_eq!(r.entries.len(), r.index.buckets());
        assert_eq!(r.live(), 500);
        for (i, k) in keep.iter().enumerate() {
            assert_eq!(ids_on(&r, &format!("/keep/{i}")), vec![k.slot]);
            assert_eq!(
                r.entries[r.slots[k.slot as usize].entry as usize].head,
                k.slot
            );
        }
        // A path watched again after its entry was swept, or kept empty.
        let again = r.add(b"/gone/1", zk_watch_kind::ZK_WATCH_DATA);
        assert_eq!(ids_on(&r, "/gone/1"), vec![again.slot]);
    }

    /// Random registrations, removals, events and retirements over a few
    /// thousand paths (so the path table grows and is rebuilt many times),
    /// against a model of each path's watches in registration order; fired
    /// one-shots are claimed at once or later, or cancelled by removal first.
    #[test]
    fn random_operations_match_a_model() {
        use std::collections::BTreeMap;
        let mut r = Registry::default();
        // path -> live watches (slot, id, kind), in registration order
        let mut model: BTreeMap<String, Vec<(u32, u64, Kind)>> = BTreeMap::new();
        let mut retired_later = Vec::new();
        // Fired one-shots whose call is not claimed yet: (slot, id).
        let mut fired: Vec<(u32, u64)> = Vec::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let kinds = [
            zk_watch_kind::ZK_WATCH_DATA,
            zk_watch_kind::ZK_WATCH_CHILD,
            zk_watch_kind::ZK_WATCH_PERSISTENT,
        ];
        let mut out = Vec::new();
        for step in 0..60_000u32 {
            // Paths both short (inline) and long (heap keys).
            let n = next() % 3000;
            let path = if n % 7 == 0 {
                format!("/a/rather/long/path/beyond/thirty/bytes/{n}")
            } else {
                format!("/p/{n}")
            };
            match next() % 8 {
                0..=3 => {
                    let kind = kinds[(next() % 3) as usize];
                    let added = r.add(path.as_bytes(), kind);
                    model
                        .entry(path)
                        .or_default()
                        .push((added.slot, added.id, Kind::from(kind)));
                }
                4 if !fired.is_empty() && next() % 2 == 0 => {
                    let (slot, id) = fired.swap_remove((next() as usize) % fired.len());
                    assert_eq!(r.remove(id), Some(Removed::Cancelled), "step {step}");
                    assert_eq!(r.remove(id), None);
                    // The dispatch thread then fails to claim it, and retires it.
                    let gen = (id >> 32) as u32;
                    assert!(r
                        .gen_cell(slot)
                        .compare_exchange(gen, 0, Ordering::AcqRel, Ordering::Acquire)
                        .is_err());
                    retired_later.push(slot);
                }
                4 => {
                    let watches = model.entry(path).or_default();
                    if !watches.is_empty() {
                        let (slot, id, _) = watches.remove((next() as usize) % watches.len());
                        assert_eq!(r.remove(id), Some(Removed::Release(slot)), "step {step}");
                        assert_eq!(r.remove(id), None);
                        retired_later.push(slot);
                    }
                }
                5 | 6 => {
                    out.clear();
                    r.match_event(zk_event_type::Changed, path.as_bytes(), &mut out);
                    let watches = model.entry(path).or_default();
                    let mut want: Vec<Target> = watches
                        .iter()
                        .filter(|w| w.2 == Kind::Data)
                        .map(|w| Target {
                            slot: w.0,
                            gen: (w.1 >> 32) as u32,
                            claim: true,
                        })
                        .collect();
                    want.extend(watches.iter().filter(|w| w.2 == Kind::Persistent).map(|w| {
                        Target {
                            slot: w.0,
                            gen: (w.1 >> 32) as u32,
                            claim: false,
                        }
                    }));
                    assert_eq!(out, want, "step {step}");
                    watches.retain(|w| w.2 != Kind::Data);
                    fired.extend(
                        out.iter()
                            .filter(|t| t.claim)
                            .map(|t| (t.slot, (u64::from(t.gen) << 32) | u64::from(t.slot))),
                    );
                }
                _ => {
                    // As the dispatch thread does: claim the fired calls, then
                    // hand the slots back.
                    for (slot, id) in fired.drain(..) {
                        let gen = (id >> 32) as u32;
                        assert!(r
                            .gen_cell(slot)
                            .compare_exchange(gen, 0, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok());
                        assert_eq!(r.remove(id), None, "claimed");
                        retired_later.push(slot);
                    }
                    r.retire(&mut retired_later);
                }
            }
        }
        let live: usize = model.values().map(Vec::len).sum();
        assert_eq!(r.live(), live);
        for (path, watches) in &model {
            let slots: Vec<u32> = watches.iter().map(|w| w.0).collect();
            assert_eq!(ids_on(&r, path), slots, "{path}");
            for &(slot, _, _) in watches {
                let e = r.slots[slot as usize].entry as usize;
                assert_eq!(r.entries[e].key.get(), path.as_bytes());
            }
        }
        assert_eq!(r.entries.len(), r.index.buckets());
        assert!(!over_full(r.occupied, r.index.buckets()));
    }

    #[test]
    fn exhausted_slots_are_not_reused() {
        let mut r = Registry::default();
        let a = r.add(b"/a", zk_watch_kind::ZK_WATCH_DATA);
        r.slots[a.slot as usize].gen = GEN_LIMIT;
        let id = (u64::from(GEN_LIMIT) << 32) | u64::from(a.slot);
        assert_eq!(r.remove(id), Some(Removed::Release(a.slot)));
        r.retire(&mut vec![a.slot]);
        let b = r.add(b"/a", zk_watch_kind::ZK_WATCH_DATA);
        assert_ne!(b.slot, a.slot);
    }
}
