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
//! A watch joins the registry in two steps: `reserve` gives it a slot and
//! its id, `link` puts it on its path (the dispatcher links a window of
//! registrations at a time, see `Pending`). An entry caches whether any
//! ancestor of its path has a recursive watch (see `ancestry`), so that an
//! event on a watched path usually needs no lookup of its ancestors.
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

use super::ancestry::{Ancestry, Deps, EPOCH_LIMIT};
use super::index::{PathHasher, PathIndex};
use super::zk_watch_kind;
use crate::event::zk_event_type;
use crate::hint;

/// Slots per chunk of the shared generation array.
pub(super) const CHUNK: usize = 4096;

/// Generations run from 1 to this; a slot that reaches it is not reused.
const GEN_LIMIT: u32 = 0x7fff_ffff;

/// Set in a generation cell once its watch is gone (no job may call it):
/// the cell keeps the last generation below it until `retire` moves it on.
const GONE: u32 = 0x8000_0000;

/// What a generation cell holds once the watch of generation `gen` is gone.
pub(super) fn gone(gen: u32) -> u32 {
    gen | GONE
}

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

/// A watched path: 64 bytes, on a cache line of its own (the buckets are
/// read at random, and an entry across two lines would cost two misses).
#[repr(align(64))]
struct PathEntry {
    key: Key,
    /// The first watch of the list and its generation: a path with one watch
    /// (`head == tail`) is matched without reading its slot.
    head: u32,
    head_gen: u32,
    tail: u32,
    /// `Kind::bit`s of the watches in the list.
    kinds: u8,
    /// Whether an ancestor has a recursive watch, if known (see `ancestry`).
    anc: Ancestry,
    /// When the path last gained a data (child) watch after having none: the
    /// order in which kazoo's `_data_watchers` (`_child_watchers`) dict holds
    /// the path, which is the order `_reset_watchers` fires them in.
    data_since: u64,
    child_since: u64,
}

impl PathEntry {
    /// The slot an event would pop first: the list's head if the path has
    /// one-shot watches, `NIL` otherwise.
    fn popped_head(&self) -> u32 {
        if self.kinds & (Kind::Data.bit() | Kind::Child.bit()) != 0 {
            self.head
        } else {
            NIL
        }
    }

    fn new(path: &[u8]) -> PathEntry {
        PathEntry {
            key: Key::new(path),
            head: NIL,
            head_gen: 0,
            tail: NIL,
            kinds: 0,
            anc: Ancestry::default(),
            data_since: 0,
            child_since: 0,
        }
    }
}

/// `n` empty buckets.
fn vacant_entries(n: usize) -> Vec<PathEntry> {
    let mut entries = Vec::with_capacity(n);
    // Read at random: on huge pages if large (see `hint::advise_huge`).
    hint::advise_huge(entries.spare_capacity_mut());
    entries.extend((0..n).map(|_| PathEntry::new(b"")));
    entries
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
    pub released: Vec<(u32, u32)>,
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
    /// Retired slots, each with the generation of its last watch.
    free: Vec<(u32, u32)>,
    /// The generation of every slot's watch (0: never used; `gone(gen)`
    /// once the watch is gone; once the slot is free, the generation of its
    /// next watch: see `retire`), shared with the dispatch thread, which
    /// skips the jobs of a watch removed after they were queued.
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
    /// Another seed, for `dep_key`.
    hasher2: PathHasher,
    live: usize,
    /// Watches fired for the last time and not cancelled, ever: those the
    /// dispatch thread has not yet called are `popped - Counters::claimed`.
    popped: u64,
    recursive: usize,
    next_order: u64,
    /// The epoch of the entries' cached ancestry, and what it depends on.
    epoch: u32,
    deps: Deps,
    /// Scratch for the prefixes of a path.
    prefixes: Vec<(u32, usize)>,
}

/// A new watch: its slot, id, what `link` needs, and the new chunk of
/// generations to hand to the dispatch thread, if the slot opened one.
pub(super) struct Added {
    pub slot: u32,
    pub id: u64,
    pub link: Link,
    pub chunk: Option<Arc<[AtomicU32]>>,
}

/// A reserved watch, as `link` puts it on its path (the slot itself is
/// written only then).
#[derive(Copy, Clone)]
pub(super) struct Link {
    pub slot: u32,
    gen: u32,
    order: u64,
    kind: Kind,
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
            hasher2: PathHasher::new(),
            live: 0,
            popped: 0,
            recursive: 0,
            next_order: 0,
            epoch: 1,
            deps: Deps::default(),
            prefixes: Vec::new(),
        }
    }
}

/// Below this many bytes of entries and slots in use the registry stays in
/// cache, and reading ahead (see `dispatch::Pending`) would only cost time.
const CACHED_BYTES: usize = 512 << 10;

impl Registry {
    /// Whether the registry is large enough for its reads to miss the cache:
    /// its path table, and the slots of the live watches (not every slot
    /// ever made: the slot array never shrinks, but free slots are reused
    /// last retired first, so a few watches coming and going stay on a few
    /// warm slots however many a burst left behind).
    pub(super) fn is_large(&self) -> bool {
        self.entries.len() * std::mem::size_of::<PathEntry>()
            + self.live * std::mem::size_of::<Slot>()
            > CACHED_BYTES
    }

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

    /// The entry of `path` (hash `hash`), if the registry holds it (every
    /// path it holds was validated when its first watch was linked). The
    /// position holds until the table next changes: linking a new path or
    /// dropping watches may rebuild it.
    pub(super) fn find(&self, hash: u32, path: &[u8]) -> Option<u32> {
        self.index
            .find(hash, |e| self.entries[e as usize].key.get() == path)
    }

    /// Registers a watch on a validated path: `reserve`, then `link`.
    #[cfg(test)]
    pub(super) fn add(&mut self, path: &[u8], kind: zk_watch_kind) -> Added {
        let added = self.reserve(kind);
        self.link(added.link, path, &[(self.hasher.hash(path), path.len())]);
        added
    }

    /// Takes a slot and an id for a new watch, on no path yet: no event
    /// matches it until `link` puts it on its path. The slot is not read or
    /// written here (its last generation is in its cell), and its id must
    /// not reach `remove` before `link` (the dispatcher links every reserved
    /// watch before any other operation).
    #[inline(always)]
    pub(super) fn reserve(&mut self, kind: zk_watch_kind) -> Added {
        let kind = Kind::from(kind);
        let mut chunk = None;
        let (slot, last) = match self.reuse() {
            Some(reused) => reused,
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
                let slot = u32::try_from(slot).expect("fewer than 2^32 watches");
                // A reused slot's cell already holds its next generation
                // (see `retire`).
                self.gen_cell(slot).store(1, Ordering::Release);
                (slot, 0)
            }
        };
        let gen = last + 1;
        let order = self.next_order;
        self.next_order += 1;
        Added {
            slot,
            id: (u64::from(gen) << 32) | u64::from(slot),
            link: Link {
                slot,
                gen,
                order,
                kind,
            },
            chunk,
        }
    }

    /// Whether linking this watch needs its path's prefixes: `link` caches
    /// a new path's ancestry when recursive watches exist.
    pub(super) fn link_walks(&self, link: &Link) -> bool {
        self.recursive > 0 || link.kind == Kind::Recursive
    }

    /// Puts a reserved watch on its (validated) path at the end of the
    /// path's list: from now on events match it. `lookups` as `lookups`
    /// gives them (the path's own last; its prefixes too if `link_walks`,
    /// else they are made here if needed).
    pub(super) fn link(&mut self, link: Link, path: &[u8], lookups: &[(u32, usize)]) {
        let hash = lookups.last().expect("a path has at least one lookup").0;
        self.link_found(link, path, lookups, self.find(hash, path));
    }

    /// `link` with the path's entry found beforehand (`find`, since which
    /// the table has not changed).
    pub(super) fn link_found(
        &mut self,
        link: Link,
        path: &[u8],
        lookups: &[(u32, usize)],
        found: Option<u32>,
    ) {
        let Link {
            slot,
            gen,
            order,
            kind,
        } = link;
        debug_assert_ne!(self.slots[slot as usize].state, State::Live);
        let hash = lookups.last().expect("a path has at least one lookup").0;
        debug_assert_eq!(found, self.find(hash, path));
        let mut created = false;
        let entry = match found {
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
                created = true;
                e
            }
        };
        let s = &mut self.slots[slot as usize];
        s.gen = gen;
        s.order = order;
        s.entry = entry;
        s.next = NIL;
        s.kind = kind;
        s.state = State::Live;
        if kind == Kind::Recursive && self.entries[entry as usize].kinds & kind.bit() == 0 {
            self.recursive_changed(hash, path);
        }
        if created && (self.recursive > 0 || kind == Kind::Recursive) {
            self.cache_ancestry(entry, path, lookups);
        }
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
        self.live += 1;
        if kind == Kind::Recursive {
            self.recursive += 1;
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
                self.gen_cell(slot).store(gone(gen), Ordering::Release);
                self.kill(slot, State::Dead);
                self.unlink_dead(entry);
                self.sweep_if_needed();
                Some(Removed::Release(slot))
            }
            // The dispatch thread claims a popped watch's call the same way:
            // whoever swaps the generation out first wins.
            State::Popped => {
                self.gen_cell(slot)
                    .compare_exchange(gen, gone(gen), Ordering::AcqRel, Ordering::Acquire)
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
        let lost = e.kinds & !kinds;
        e.kinds = kinds;
        if lost & Kind::Recursive.bit() != 0 {
            let key = self.entries[entry as usize].key.get();
            let hash = self.hasher.hash(key);
            let key = key.to_vec();
            self.recursive_changed(hash, &key);
        }
    }

    /// A path gained its first recursive watch or lost its last: the cached
    /// ancestry of its descendants is stale, if any depends on it.
    fn recursive_changed(&mut self, hash: u32, path: &[u8]) {
        if self.deps.contains(self.dep_key(hash, path)) {
            self.epoch += 1;
            if self.epoch == EPOCH_LIMIT {
                for e in &mut self.entries {
                    e.anc = Ancestry::default();
                }
                self.epoch = 1;
            }
        }
    }

    /// Looks up the strict ancestors of the path of `entry` (`lookups` its
    /// prefixes, or the path's own hash alone), caches whether one has a
    /// recursive watch, and returns that.
    fn cache_ancestry(&mut self, entry: u32, path: &[u8], lookups: &[(u32, usize)]) -> bool {
        let prefixes = self.take_prefixes(path, lookups);
        let mut has = false;
        for &(h, len) in &prefixes[..prefixes.len() - 1] {
            self.deps.insert(self.dep_key(h, &path[..len]));
            if let Some(e) = self.find(h, &path[..len]) {
                has |= self.entries[e as usize].kinds & Kind::Recursive.bit() != 0;
            }
        }
        self.prefixes = prefixes;
        self.entries[entry as usize].anc = Ancestry::new(self.epoch, has);
        if self.deps.stale(self.occupied) {
            self.restart_deps();
        }
        has
    }

    /// A path's key in `Deps`: its hash, and a second one (64 bits, so that
    /// with a million paths no two share a key).
    fn dep_key(&self, hash: u32, path: &[u8]) -> u64 {
        (u64::from(hash) << 32) | u64::from(self.hasher2.hash(path))
    }

    /// The scratch vector (give it back to `self.prefixes`), holding the
    /// `(hash, length)` of every prefix of `path`: `lookups` if they are
    /// those already, else made here.
    fn take_prefixes(&mut self, path: &[u8], lookups: &[(u32, usize)]) -> Vec<(u32, usize)> {
        let mut prefixes = std::mem::take(&mut self.prefixes);
        prefixes.clear();
        if lookups.len() > 1 || path.len() == 1 {
            prefixes.extend_from_slice(lookups);
        } else {
            self.hasher.prefixes(path, &mut prefixes);
        }
        prefixes
    }

    /// Starts `Deps` again, sized for the paths, from the answers cached at
    /// the current epoch (the stale ones depend on nothing).
    fn restart_deps(&mut self) {
        let mut deps = Deps::for_keys(self.occupied);
        let mut prefixes = std::mem::take(&mut self.prefixes);
        for e in &self.entries {
            if e.anc.at(self.epoch).is_some() {
                prefixes.clear();
                self.hasher.prefixes(e.key.get(), &mut prefixes);
                for &(h, len) in &prefixes[..prefixes.len() - 1] {
                    deps.insert(self.dep_key(h, &e.key.get()[..len]));
                }
            }
        }
        self.prefixes = prefixes;
        deps.started();
        self.deps = deps;
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

    /// Slots the dispatch thread is done with: free for reuse. Each one's
    /// generation cell moves on to the generation its next watch will have
    /// (no job names it, and no id carries it, before `reserve` hands it
    /// out), so that `reserve` need not touch the cell: this runs on the
    /// dispatch thread, which has the cells in its cache (it claimed the
    /// watches), while a store from the feeding thread would have to pull
    /// each line over. The slots themselves are not read or written (the
    /// next `link` would have to pull their lines back): a retired slot
    /// keeps its `Popped` or `Dead` state and generation, which no id can
    /// act on any more; `reserve` skips the exhausted ones, whose cells stay
    /// `gone`.
    pub(super) fn retire(&mut self, slots: &mut Vec<(u32, u32)>) {
        for &(slot, last) in slots.iter() {
            if last < GEN_LIMIT {
                self.gen_cell(slot).store(last + 1, Ordering::Release);
            }
        }
        self.free.append(slots);
    }

    /// A slot to reuse, if any, and its last generation: the last one
    /// retired (its cache lines are likely still warm) whose generation is
    /// not exhausted. Neither the slot nor its generation cell is read:
    /// `retire` set the cell.
    fn reuse(&mut self) -> Option<(u32, u32)> {
        while let Some((slot, last)) = self.free.pop() {
            debug_assert_eq!(
                self.gen_cell(slot).load(Ordering::Acquire),
                if last < GEN_LIMIT {
                    last + 1
                } else {
                    gone(last)
                }
            );
            debug_assert!(matches!(
                self.slots[slot as usize].state,
                State::Popped | State::Dead
            ));
            if last < GEN_LIMIT {
                return Some((slot, last));
            }
        }
        None
    }

    /// The hash of a path.
    pub(super) fn hash(&self, path: &[u8]) -> u32 {
        self.hasher.hash(path)
    }

    /// Whether matching an event of this type walks the path's ancestors
    /// (for persistent-recursive watches).
    pub(super) fn walks(&self, event_type: zk_event_type) -> bool {
        self.recursive > 0 && event_type != zk_event_type::Child
    }

    /// Appends what matching `path` looks up: with `walk`, `(hash, length)`
    /// of each prefix as `PathHasher::prefixes` gives them, else of the path
    /// alone. The path's own pair is always last.
    pub(super) fn lookups(&self, path: &[u8], walk: bool, out: &mut Vec<(u32, usize)>) {
        if walk {
            self.hasher.prefixes(path, out);
        } else {
            out.push((self.hasher.hash(path), path.len()));
        }
    }

    /// Reads the first tag each of these lookups reads. The `touch_*`
    /// reads, done stage by stage for a window of paths before any of them
    /// is looked up, make the window's cache misses overlap instead of
    /// adding up (each stage is a short loop of independent reads, so the
    /// processor keeps many in flight).
    pub(super) fn touch_tags(&self, lookups: &[(u32, usize)]) -> u8 {
        lookups
            .iter()
            .fold(0, |acc, &(h, _)| acc ^ self.index.touch(h))
    }

    /// The bucket whose entry a lookup of `hash` most likely reads (found
    /// from the tags, which `touch_tags` read before).
    pub(super) fn likely_bucket(&self, hash: u32) -> u32 {
        self.index.likely(hash) as u32
    }

    /// Reads the entry in `bucket` (`likely_bucket` gave it), and returns
    /// the slot at the head of its list if it has one-shot watches, which an
    /// event pops (`NIL` otherwise).
    pub(super) fn touch_entry(&self, bucket: u32) -> u32 {
        self.entries[bucket as usize].popped_head()
    }

    /// Reads the first byte of the path of the entry in `bucket`, if it is
    /// on the heap (longer than 30 bytes): a lookup compares it.
    pub(super) fn touch_key(&self, bucket: u32) -> u8 {
        match &self.entries[bucket as usize].key {
            Key::Heap(bytes) => bytes.first().copied().unwrap_or(0),
            Key::Inline { .. } => 0,
        }
    }

    /// Asks the cache for the tag a lookup of `hash` reads first (see
    /// `Pending`: the prefetching counterpart of `touch_tags`).
    pub(super) fn prefetch_tag(&self, hash: u32) {
        self.index.prefetch(hash);
    }

    /// Asks the cache for the entry in `bucket` (`likely_bucket` gave it,
    /// from prefetched tags).
    pub(super) fn prefetch_entry(&self, bucket: u32) {
        hint::prefetch(&self.entries[bucket as usize]);
    }

    /// Reads the entry in `bucket` (prefetched before) and asks the cache
    /// for what a lookup or a pop reads next: the path bytes on the heap,
    /// and the slot an event pops (as `touch_entry` gives it), or `linked`,
    /// the slot a link writes. `bucket` may be stale (the table rebuilt
    /// since `likely_bucket` gave it), even past the end: a wasted hint.
    pub(super) fn prefetch_behind(&self, bucket: u32, linked: Option<u32>) {
        let Some(e) = self.entries.get(bucket as usize) else {
            return;
        };
        if let Key::Heap(bytes) = &e.key {
            hint::prefetch(&**bytes);
        }
        let slot = linked.unwrap_or_else(|| e.popped_head());
        if let Some(s) = self.slots.get(slot as usize) {
            hint::prefetch(s);
        }
    }

    /// Reads a slot (`touch_entry` gave it).
    pub(super) fn touch_slot(&self, slot: u32) -> u8 {
        self.slots.get(slot as usize).map_or(0, |s| s.state as u8)
    }

    /// Collects the watches a node event fires, one-shots popped: kazoo's
    /// data/child rules, then ZooKeeper 3.6's persistent and
    /// persistent-recursive rules, in that order. O(depth): one hashing pass
    /// over the path, and one lookup per prefix (none for the ancestors of
    /// a watched path whose cached ancestry says none has a recursive watch).
    #[cfg(test)]
    pub(super) fn match_event(
        &mut self,
        event_type: zk_event_type,
        path: &[u8],
        out: &mut Vec<Target>,
    ) {
        let mut lookups = Vec::new();
        self.lookups(path, self.walks(event_type), &mut lookups);
        self.match_looked_up(event_type, path, &lookups, out);
    }

    /// Whether matching an event of this type on `path` (hash `hash`; its
    /// entry, if any, likely in `bucket`) looks up the path's ancestors: a
    /// walk, unless the path's entry knows none has a recursive watch.
    pub(super) fn needs_ancestors(
        &self,
        event_type: zk_event_type,
        path: &[u8],
        hash: u32,
        bucket: u32,
    ) -> bool {
        if !self.walks(event_type) || path.len() == 1 {
            return false;
        }
        let e = &self.entries[bucket as usize];
        !(self.index.holds(bucket, hash)
            && e.key.get() == path
            && e.anc.at(self.epoch) == Some(false))
    }

    /// `match_event` with the path's `lookups` made beforehand (perhaps
    /// before the registry last changed: if they lack the ancestors a walk
    /// needs, they are made here).
    #[cfg(test)]
    pub(super) fn match_looked_up(
        &mut self,
        event_type: zk_event_type,
        path: &[u8],
        lookups: &[(u32, usize)],
        out: &mut Vec<Target>,
    ) {
        let hash = lookups.last().expect("a path has at least one lookup").0;
        self.match_found(event_type, path, lookups, self.find(hash, path), out);
    }

    /// `match_looked_up` with the path's entry found beforehand (`find`,
    /// since which the table has not changed).
    pub(super) fn match_found(
        &mut self,
        event_type: zk_event_type,
        path: &[u8],
        lookups: &[(u32, usize)],
        found: Option<u32>,
        out: &mut Vec<Target>,
    ) {
        let hash = lookups.last().expect("a path has at least one lookup").0;
        debug_assert_eq!(found, self.find(hash, path));
        let walk = self.walks(event_type);
        let (data, child) = match event_type {
            zk_event_type::Created | zk_event_type::Changed => (true, false),
            zk_event_type::Deleted => (true, true),
            _ => (false, true),
        };
        // Whether to look up the ancestors, and to cache what they hold.
        let (mut ancestors, mut cache) = (walk && path.len() > 1, false);
        if let Some(entry) = found {
            let e = &self.entries[entry as usize];
            let kinds = e.kinds;
            if ancestors {
                match e.anc.at(self.epoch) {
                    Some(has) => ancestors = has,
                    None => cache = true,
                }
            }
            // The kinds this event pops.
            let pops =
                if data { Kind::Data.bit() } else { 0 } | if child { Kind::Child.bit() } else { 0 };
            if e.head == e.tail && kinds != 0 && kinds & !pops == 0 {
                // The common case: one watch, a one-shot the event pops.
                self.pop_only(entry, out);
                self.sweep_if_needed();
            } else {
                let mut popped = false;
                for kind in [Kind::Data, Kind::Child] {
                    if pops & kinds & kind.bit() != 0 {
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
        }
        if !ancestors {
            return;
        }
        let prefixes = self.take_prefixes(path, lookups);
        // From the parent up to the root.
        let mut has = false;
        for &(h, len) in prefixes[..prefixes.len() - 1].iter().rev() {
            if cache {
                self.deps.insert(self.dep_key(h, &path[..len]));
            }
            if let Some(entry) = self.find(h, &path[..len]) {
                if self.entries[entry as usize].kinds & Kind::Recursive.bit() != 0 {
                    has = true;
                    self.collect(entry, Kind::Recursive, false, out);
                }
            }
        }
        self.prefixes = prefixes;
        if cache {
            // Found again: popping may have swept the table.
            if let Some(entry) = self.find(hash, path) {
                self.entries[entry as usize].anc = Ancestry::new(self.epoch, has);
            }
            if self.deps.stale(self.occupied) {
                self.restart_deps();
            }
        }
    }

    /// Pops the only watch of `entry`, a one-shot, and leaves its list empty:
    /// what `collect` and then `unlink_dead` do for it, without walking the
    /// list.
    fn pop_only(&mut self, entry: u32, out: &mut Vec<Target>) {
        let e = &mut self.entries[entry as usize];
        let (slot, gen) = (e.head, e.head_gen);
        debug_assert!(slot != NIL && slot == e.tail);
        e.head = NIL;
        e.head_gen = 0;
        e.tail = NIL;
        e.kinds = 0;
        self.empty += 1;
        out.push(Target {
            slot,
            gen,
            claim: true,
        });
        self.kill(slot, State::Popped);
        self.popped += 1;
        let s = &mut self.slots[slot as usize];
        debug_assert_eq!((s.gen, s.next), (gen, NIL));
        s.entry = NIL;
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
                        self.gen_cell(cur).store(gone(s.gen), Ordering::Release);
                        out.released.push((cur, s.gen));
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
    use super::super::xorshift;
    use super::*;

    /// The read-ahead's hints take stale positions (the table rebuilt
    /// since, even past its end) without panicking; a hint has no effect to
    /// check.
    #[test]
    fn prefetching_stale_positions_is_harmless() {
        let mut r = Registry::default();
        let added = r.add(b"/a", zk_watch_kind::ZK_WATCH_DATA);
        let far = r.entries.len() as u32 + 1000;
        r.prefetch_behind(far, None);
        r.prefetch_behind(far, Some(added.slot));
        r.prefetch_behind(0, Some(u32::MAX));
        r.prefetch_tag(0);
        let bucket = r.likely_bucket(r.hash(b"/a"));
        r.prefetch_entry(bucket);
        r.prefetch_behind(bucket, None);
    }

    /// Size is judged by the path table and the live watches: slots left
    /// behind by a burst of one-shots on one path do not make a registry
    /// with one watch large (nor defer its events).
    #[test]
    fn large_means_paths_and_live_watches() {
        let mut r = Registry::default();
        for _ in 0..40_000 {
            r.add(b"/a", zk_watch_kind::ZK_WATCH_DATA);
        }
        assert!(r.is_large());
        let mut fired = Vec::new();
        r.match_event(zk_event_type::Changed, b"/a", &mut fired);
        assert_eq!(fired.len(), 40_000);
        // Claimed, as the dispatch thread claims a fired one-shot, then retired.
        for t in &fired {
            let claimed = r.gen_cell(t.slot).compare_exchange(
                t.gen,
                gone(t.gen),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            assert!(claimed.is_ok());
        }
        let mut retired: Vec<(u32, u32)> = fired.iter().map(|t| (t.slot, t.gen)).collect();
        r.retire(&mut retired);
        r.add(b"/a", zk_watch_kind::ZK_WATCH_DATA);
        assert!(r.slots.len() >= 40_000);
        assert!(!r.is_large());
        for i in 0..20_000 {
            r.add(
                format!("/p/{i}").as_bytes(),
                zk_watch_kind::ZK_WATCH_PERSISTENT,
            );
        }
        assert!(r.is_large());
    }

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
        let gen = |id: u64| (id >> 32) as u32;
        let mut dead = vec![
            (a2.slot, gen(a2.id)),
            (b1.slot, gen(b1.id)),
            (l1.slot, gen(l1.id)),
        ];
        r.retire(&mut dead);
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

    /// A path's cached ancestry follows recursive watches added and removed
    /// on its ancestors, with and without a restart of the dependencies.
    #[test]
    fn cached_ancestry_follows_recursive_changes() {
        for restart in [false, true] {
            cached_ancestry_case(restart);
        }
    }

    fn cached_ancestry_case(restart: bool) {
        let slots = |out: &[Target]| out.iter().map(|t| t.slot).collect::<Vec<_>>();
        let mut r = Registry::default();
        let leaf = r.add(b"/x/y", zk_watch_kind::ZK_WATCH_PERSISTENT).slot;
        // The first recursive watch, elsewhere: the leaf's ancestry is not
        // known yet; the first event caches it (none).
        r.add(b"/z", zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE);
        let mut out = Vec::new();
        r.match_event(zk_event_type::Changed, b"/x/y", &mut out);
        assert_eq!(slots(&out), [leaf]);
        let e = r.find(r.hasher.hash(b"/x/y"), b"/x/y").unwrap();
        assert_eq!(r.entries[e as usize].anc.at(r.epoch), Some(false));
        // What it depends on survives a restart of the dependencies.
        if restart {
            r.restart_deps();
        }
        // A recursive watch on an ancestor: seen at once.
        let x = r.add(b"/x", zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE);
        out.clear();
        r.match_event(zk_event_type::Changed, b"/x/y", &mut out);
        assert_eq!(slots(&out), [leaf, x.slot]);
        // And its removal.
        assert_eq!(r.remove(x.id), Some(Removed::Release(x.slot)));
        out.clear();
        r.match_event(zk_event_type::Changed, b"/x/y", &mut out);
        assert_eq!(slots(&out), [leaf]);
        // A new path under a recursive watch knows it from the start.
        let root = r.add(b"/", zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE);
        let deep = r.add(b"/x/y/w", zk_watch_kind::ZK_WATCH_PERSISTENT).slot;
        let e = r.find(r.hasher.hash(b"/x/y/w"), b"/x/y/w").unwrap();
        assert_eq!(r.entries[e as usize].anc.at(r.epoch), Some(true));
        out.clear();
        r.match_event(zk_event_type::Changed, b"/x/y/w", &mut out);
        assert_eq!(slots(&out), [deep, root.slot]);
    }

    #[test]
    fn recursive_watches_in_a_tree_match_a_model() {
        // Paths in a small tree, so that watched paths are each other's
        // ancestors; recursive watches come and go on inner paths and on
        // leaves, which moves the ancestry cache's epoch (wrapping, in
        // tests) and fills its dependencies (restarting them).
        let mut r = Registry::default();
        let mut model: Vec<(String, u32, u64, Kind)> = Vec::new();
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let random_path = |next: &mut dyn FnMut() -> u64| {
            let depth = 1 + next() % 5;
            let mut p = String::new();
            for _ in 0..depth {
                p += &format!("/{}", next() % 3);
            }
            p
        };
        let mut out = Vec::new();
        let mut lookups = Vec::new();
        let (mut wraps, mut last_epoch) = (0, r.epoch);
        for step in 0..40_000u32 {
            if r.epoch < last_epoch {
                wraps += 1;
            }
            last_epoch = r.epoch;
            let path = random_path(&mut next);
            match next() % 10 {
                0..=2 => {
                    let kind = match next() % 4 {
                        0 => zk_watch_kind::ZK_WATCH_DATA,
                        1 => zk_watch_kind::ZK_WATCH_PERSISTENT,
                        _ => zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE,
                    };
                    // As the dispatcher does: reserve, then link with the
                    // lookups it made (prefixes or the path alone).
                    let added = r.reserve(kind);
                    lookups.clear();
                    r.lookups(path.as_bytes(), r.link_walks(&added.link), &mut lookups);
                    r.link(added.link, path.as_bytes(), &lookups);
                    model.push((path, added.slot, added.id, Kind::from(kind)));
                }
                3 | 4 if !model.is_empty() => {
                    let (_, slot, id, _) = model.remove((next() as usize) % model.len());
                    assert_eq!(r.remove(id), Some(Removed::Release(slot)), "step {step}");
                    r.retire(&mut vec![(slot, (id >> 32) as u32)]);
                }
                _ => {
                    out.clear();
                    lookups.clear();
                    // Prefixes made beforehand or not.
                    r.lookups(path.as_bytes(), next() % 2 == 0, &mut lookups);
                    r.match_looked_up(zk_event_type::Changed, path.as_bytes(), &lookups, &mut out);
                    let target = |w: &(String, u32, u64, Kind), claim| Target {
                        slot: w.1,
                        gen: (w.2 >> 32) as u32,
                        claim,
                    };
                    let p = path.as_str();
                    let on = |k: Kind| model.iter().filter(move |w| w.0 == p && w.3 == k);
                    let mut want: Vec<Target> = on(Kind::Data).map(|w| target(w, true)).collect();
                    want.extend(on(Kind::Persistent).map(|w| target(w, false)));
                    want.extend(on(Kind::Recursive).map(|w| target(w, false)));
                    let mut ancestor = path.as_str();
                    while let Some(cut) = ancestor.rfind('/') {
                        ancestor = if cut == 0 { "/" } else { &ancestor[..cut] };
                        want.extend(
                            model
                                .iter()
                                .filter(|w| w.0 == ancestor && w.3 == Kind::Recursive)
                                .map(|w| target(w, false)),
                        );
                        if ancestor == "/" {
                            break;
                        }
                    }
                    assert_eq!(out, want, "step {step}: {path}");
                    let fired: Vec<(u32, u32)> = out
                        .iter()
                        .filter(|t| t.claim)
                        .map(|t| (t.slot, t.gen))
                        .collect();
                    model.retain(|w| !(w.0 == path && w.3 == Kind::Data));
                    // The dispatch thread claims them and hands them back.
                    for &(slot, gen) in &fired {
                        assert!(r
                            .gen_cell(slot)
                            .compare_exchange(gen, gone(gen), Ordering::AcqRel, Ordering::Acquire)
                            .is_ok());
                    }
                    r.retire(&mut fired.clone());
                }
            }
            if step % 97 == 0 {
                // A recursive watch on the root, now and then: everybody's ancestor.
                let added = r.add(b"/", zk_watch_kind::ZK_WATCH_PERSISTENT_RECURSIVE);
                model.push(("/".to_string(), added.slot, added.id, Kind::Recursive));
            }
        }
        assert!(wraps > 10, "{wraps} epoch wraps");
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
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
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
                        .compare_exchange(gen, gone(gen), Ordering::AcqRel, Ordering::Acquire)
                        .is_err());
                    retired_later.push((slot, gen));
                }
                4 => {
                    let watches = model.entry(path).or_default();
                    if !watches.is_empty() {
                        let (slot, id, _) = watches.remove((next() as usize) % watches.len());
                        assert_eq!(r.remove(id), Some(Removed::Release(slot)), "step {step}");
                        assert_eq!(r.remove(id), None);
                        retired_later.push((slot, (id >> 32) as u32));
                    }
                }
                5 | 6 => {
                    // Each node event pops its kinds of one-shots (data, then
                    // child), then calls the persistent watches.
                    let (event_type, pops): (_, &[Kind]) = [
                        (zk_event_type::Created, &[Kind::Data][..]),
                        (zk_event_type::Changed, &[Kind::Data]),
                        (zk_event_type::Deleted, &[Kind::Data, Kind::Child]),
                        (zk_event_type::Child, &[Kind::Child]),
                    ][(next() % 4) as usize];
                    out.clear();
                    r.match_event(event_type, path.as_bytes(), &mut out);
                    let watches = model.entry(path).or_default();
                    let popped = |kind: Kind| pops.contains(&kind);
                    let mut want = Vec::new();
                    for (kind, claim) in [
                        (Kind::Data, true),
                        (Kind::Child, true),
                        (Kind::Persistent, false),
                    ] {
                        if claim && !popped(kind) {
                            continue;
                        }
                        want.extend(watches.iter().filter(|w| w.2 == kind).map(|w| Target {
                            slot: w.0,
                            gen: (w.1 >> 32) as u32,
                            claim,
                        }));
                    }
                    assert_eq!(out, want, "step {step}");
                    watches.retain(|w| !popped(w.2));
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
                            .compare_exchange(gen, gone(gen), Ordering::AcqRel, Ordering::Acquire)
                            .is_ok());
                        assert_eq!(r.remove(id), None, "claimed");
                        retired_later.push((slot, gen));
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
    fn retired_slots_come_back_with_their_next_generation() {
        let mut r = Registry::default();
        let a = r.add(b"/a", zk_watch_kind::ZK_WATCH_DATA);
        let mut fired = Vec::new();
        r.match_event(zk_event_type::Changed, b"/a", &mut fired);
        let t = fired[0];
        assert_eq!((t.slot, t.claim), (a.slot, true));
        // Claimed and called by the dispatch thread, then handed back.
        let cell = r.gen_cell(t.slot);
        assert!(cell
            .compare_exchange(t.gen, gone(t.gen), Ordering::AcqRel, Ordering::Acquire)
            .is_ok());
        r.retire(&mut vec![(t.slot, t.gen)]);
        // The cell already holds the next watch's generation; the old id
        // can neither cancel nor remove anything.
        assert_eq!(r.gen_cell(t.slot).load(Ordering::Acquire), t.gen + 1);
        assert_eq!(r.remove(a.id), None);
        let b = r.add(b"/b", zk_watch_kind::ZK_WATCH_PERSISTENT);
        assert_eq!(b.slot, a.slot);
        assert_eq!(b.id, (u64::from(t.gen + 1) << 32) | u64::from(b.slot));
        assert_eq!(r.gen_cell(b.slot).load(Ordering::Acquire), t.gen + 1);
        assert_eq!(r.remove(a.id), None);
        assert_eq!(r.remove(b.id), Some(Removed::Release(b.slot)));
        assert_eq!(r.gen_cell(b.slot).load(Ordering::Acquire), gone(t.gen + 1));
    }

    #[test]
    fn exhausted_slots_are_not_reused() {
        let mut r = Registry::default();
        let a = r.add(b"/a", zk_watch_kind::ZK_WATCH_DATA);
        r.slots[a.slot as usize].gen = GEN_LIMIT;
        let id = (u64::from(GEN_LIMIT) << 32) | u64::from(a.slot);
        assert_eq!(r.remove(id), Some(Removed::Release(a.slot)));
        r.retire(&mut vec![(a.slot, GEN_LIMIT)]);
        let b = r.add(b"/a", zk_watch_kind::ZK_WATCH_DATA);
        assert_ne!(b.slot, a.slot);
    }
}
