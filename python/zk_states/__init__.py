"""zk_states: kazoo's ``kazoo.protocol.states`` model and watch dispatch, backed by libzk_states.

Pure ctypes over the C ABI in ``include/zk_states.h``; no compiled extension.
The names and shapes are kazoo's own, so code written against kazoo reads the
same::

    from zk_states import Dispatcher, EventType, KazooState, ZnodeStat

    stat = ZnodeStat.decode(buf)          # kazoo's ZnodeStat fields + properties
    stat.created, stat.owner_session_id   # computed by zk_stat_properties_get()

    with Dispatcher() as d:               # kazoo's watcher/listener dispatch
        d.add_listener(lambda state: print(state))      # KazooState strings
        d.watch_add("/a", lambda ev: print(ev))         # WatchedEvent namedtuples
        d.feed_session(KeeperState.CONNECTED)
        d.feed_event(EventType.CHANGED, "/a")
        d.flush()

Callbacks run on the dispatcher's own thread.  An exception raised by a
callback is logged on the ``zk_states`` logger and dispatch goes on.  Failures
of the library raise :class:`ZkStatesError` carrying the ``zk_status`` code and
the library's ``zk_status_message()`` text.

The library is located as described in :mod:`zk_states._native`
(``$ZK_STATES_LIB`` first).
"""

import ctypes
import itertools
import logging
import operator
import threading
import weakref
from collections import namedtuple
from ctypes import byref, c_int32, c_uint64, c_void_p

from . import _native
from ._native import lib, lib_path

__all__ = [
    "ZkStatesError", "EventType", "KeeperState", "KazooState", "WatchKind",
    "WatchedEvent", "ZnodeStat", "Dispatcher", "DispatcherStats", "SessionMachine",
    "SessionStep", "decode_notification", "decode_watcher_event", "keeper_state_from_wire",
    "keeper_state_from_c_client", "status_message", "current_seq", "version",
    "abi_version", "lib", "lib_path",
]

log = logging.getLogger("zk_states")

# --- status codes -------------------------------------------------------------
# `enum zk_status` of the header (tests/py/test_python_package.py checks these
# against it); each code's text comes from zk_status_message(). Also exported as
# module constants (zk_states.ZK_OK, zk_states.ZK_ERR_NOT_FOUND, ...).
STATUS_CODES = {
    "ZK_OK": 0, "ZK_ERR_NULL_ARGUMENT": 1, "ZK_ERR_TRUNCATED": 2,
    "ZK_ERR_INVALID_EVENT_TYPE": 3, "ZK_ERR_INVALID_KEEPER_STATE": 4,
    "ZK_ERR_INVALID_KAZOO_STATE": 5, "ZK_ERR_INVALID_UTF8": 6,
    "ZK_ERR_BUFFER_TOO_SMALL": 7, "ZK_ERR_NEGATIVE_LENGTH": 8,
    "ZK_ERR_LENGTH_EXCEEDS_INPUT": 9, "ZK_ERR_NOT_A_NOTIFICATION": 10,
    "ZK_ERR_UNKNOWN_NAME": 11, "ZK_ERR_INVALID_WATCH_KIND": 12,
    "ZK_ERR_INVALID_PATH": 13, "ZK_ERR_NOT_FOUND": 14, "ZK_ERR_WOULD_DEADLOCK": 15,
    "ZK_ERR_SHUTTING_DOWN": 16, "ZK_ERR_QUEUE_FULL": 17, "ZK_ERR_SIZE_TOO_LARGE": 18,
    "ZK_ERR_INVALID_ARGUMENT": 19, "ZK_ERR_PANIC": 20, "ZK_ERR_SYSTEM": 21,
}
globals().update(STATUS_CODES)
__all__ += list(STATUS_CODES)

# Header #defines.
ZK_ZXID_UNKNOWN = -1
ZK_STAT_WIRE_SIZE = 68
ZK_STAT_FORMAT_MAX = 125 + 6 * 20 + 5 * 11
ZK_DISPATCHER_CURATOR_STATES = 1
ZK_DISPATCHER_KEEP_WATCHES = 2
ZK_SESSION_ACTION_FIRE_ONE_SHOT = 1
ZK_SESSION_ACTION_NOTIFY_ONE_SHOT = 2
ZK_SESSION_ACTION_NOTIFY_PERSISTENT = 4
ZK_SESSION_ACTION_DROP_PERSISTENT = 8
ZK_SESSION_ACTION_FAIL_PENDING = 16
ZK_SESSION_ACTION_RESET_SESSION = 32


def status_message(status):
    """The library's text for a zk_status code (zk_status_message())."""
    return lib.zk_status_message(status).decode("utf-8")


class ZkStatesError(Exception):
    """A library call failed: ``status`` is the zk_status code, ``message`` its text."""

    def __init__(self, status, message=None):
        if message is None:
            message = status_message(status)
        super().__init__(status, message)
        self.status = status
        self.message = message

    def __str__(self):
        return f"{self.message} (zk_status {self.status})"


def _check(status):
    if status != ZK_OK:
        raise ZkStatesError(status)


# --- kazoo's constants ------------------------------------------------------------


class EventType:
    """kazoo's ``EventType`` (same strings), plus the library's extra event types."""

    CREATED = "CREATED"
    DELETED = "DELETED"
    CHANGED = "CHANGED"
    CHILD = "CHILD"
    NONE = "NONE"
    # zk-states extensions (ZooKeeper 3.5+/3.6+ watch-removal events, C client's NOT_WATCHING).
    DATA_WATCH_REMOVED = "DATA_WATCH_REMOVED"
    CHILD_WATCH_REMOVED = "CHILD_WATCH_REMOVED"
    PERSISTENT_WATCH_REMOVED = "PERSISTENT_WATCH_REMOVED"
    NOT_WATCHING = "NOT_WATCHING"


class KeeperState:
    """kazoo's ``KeeperState`` (same strings)."""

    AUTH_FAILED = "AUTH_FAILED"
    CONNECTED = "CONNECTED"
    CONNECTED_RO = "CONNECTED_RO"
    CONNECTING = "CONNECTING"
    CLOSED = "CLOSED"
    EXPIRED_SESSION = "EXPIRED_SESSION"


class KazooState:
    """kazoo's ``KazooState`` (same strings), plus Curator mode's two extra states."""

    SUSPENDED = "SUSPENDED"
    CONNECTED = "CONNECTED"
    LOST = "LOST"
    # Only delivered by a Dispatcher(curator=True).
    RECONNECTED = "RECONNECTED"
    READ_ONLY = "READ_ONLY"


class WatchKind:
    """Watch kinds for :meth:`Dispatcher.watch_add` (the header's ZK_WATCH_* values)."""

    DATA = "DATA"
    CHILD = "CHILD"
    PERSISTENT = "PERSISTENT"
    PERSISTENT_RECURSIVE = "PERSISTENT_RECURSIVE"


_WATCH_KIND_CODES = {"DATA": 0, "CHILD": 1, "PERSISTENT": 2, "PERSISTENT_RECURSIVE": 3}

# Code -> name tables, read from the library itself.
EVENT_TYPE_NAMES = {c: lib.zk_event_type_name(c).decode() for c in (-2, -1, 1, 2, 3, 4, 5, 6, 7)}
KEEPER_STATE_NAMES = {c: lib.zk_keeper_state_name(c).decode() for c in (1, 3, 4, 5, 7, -112)}
KAZOO_STATE_NAMES = {c: lib.zk_kazoo_state_name(c).decode() for c in (0, 1, 2, 3, 4)}


def _from_name(fn, value):
    if isinstance(value, str):
        if "\0" in value:  # c_char_p would cut the name at the NUL
            raise ZkStatesError(ZK_ERR_UNKNOWN_NAME)
        out = c_int32()
        _check(fn(value.encode("utf-8"), byref(out)))
        return out.value
    return operator.index(value)


def _event_type_code(value):
    return _from_name(lib.zk_event_type_from_name, value)


def _keeper_state_code(value):
    return _from_name(lib.zk_keeper_state_from_name, value)


def _watch_kind_code(kind):
    if isinstance(kind, str):
        if kind not in _WATCH_KIND_CODES:
            raise ZkStatesError(ZK_ERR_INVALID_WATCH_KIND)
        return _WATCH_KIND_CODES[kind]
    return operator.index(kind)


def keeper_state_from_wire(code):
    """The KeeperState name of a Java/wire keeper state code (the header's table)."""
    out = c_int32()
    _check(lib.zk_keeper_state_from_wire(code, byref(out)))
    return KEEPER_STATE_NAMES[out.value]


def keeper_state_from_c_client(code):
    """The KeeperState name of an official C client ZOO_*_STATE code."""
    out = c_int32()
    _check(lib.zk_keeper_state_from_c_client(code, byref(out)))
    return KEEPER_STATE_NAMES[out.value]


def version():
    """The library's version string."""
    return lib.zk_states_version().decode()


def abi_version():
    """The library's ABI version."""
    return lib.zk_states_abi_version()


def current_seq():
    """The sequence number of the dispatcher call whose callback runs on this thread (else 0)."""
    return lib.zk_dispatch_current_seq()


# --- WatchedEvent ------------------------------------------------------------------


def _bytes_arg(buf):
    data = bytes(buf)
    return (ctypes.c_uint8 * len(data)).from_buffer_copy(data), len(data)


def _event_from_c(ev):
    path = None if ev.path is None else ctypes.string_at(ev.path, ev.path_len).decode("utf-8")
    return WatchedEvent(EVENT_TYPE_NAMES[ev.type], KEEPER_STATE_NAMES[ev.state], path)


class WatchedEvent(namedtuple("WatchedEvent", ("type", "state", "path"))):
    """kazoo's ``WatchedEvent(type, state, path)``: type/state are kazoo strings, path str or None."""

    __slots__ = ()

    @classmethod
    def decode(cls, buf):
        """Decodes a jute WatcherEvent (zk_watched_event_decode(); state via the wire table)."""
        return decode_watcher_event(buf)[0]


def _decode_event(fn, buf):
    arr, n = _bytes_arg(buf)
    ev = _native.zk_watched_event()
    _check(fn(arr, n, byref(ev)))
    return _event_from_c(ev), ev.zxid


def decode_watcher_event(buf):
    """(WatchedEvent, zxid) of a bare jute WatcherEvent; zxid is always ZK_ZXID_UNKNOWN."""
    return _decode_event(lib.zk_watched_event_decode, buf)


def decode_notification(buf):
    """(WatchedEvent, zxid) of a server watch notification (reply header + WatcherEvent)."""
    return _decode_event(lib.zk_notification_decode, buf)


# --- ZnodeStat ---------------------------------------------------------------------

_STAT_FIELDS = (
    ("czxid", "czxid", 64), ("mzxid", "mzxid", 64), ("ctime", "ctime", 64),
    ("mtime", "mtime", 64), ("version", "version", 32), ("cversion", "cversion", 32),
    ("aversion", "aversion", 32), ("ephemeralOwner", "ephemeral_owner", 64),
    ("dataLength", "data_length", 32), ("numChildren", "num_children", 32),
    ("pzxid", "pzxid", 64),
)


class ZnodeStat(namedtuple("ZnodeStat", [f for f, _, _ in _STAT_FIELDS])):
    """kazoo's ``ZnodeStat``: the same fields and convenience properties.

    The properties are computed by the library (zk_stat_properties_get()), not
    in Python; the repr is kazoo's (namedtuple) and :meth:`format` is the
    library's zk_stat_format() of the same text.
    """

    __slots__ = ()

    def to_c(self):
        """This stat as a ``zk_stat`` struct (OverflowError if a field does not fit)."""
        s = _native.zk_stat()
        for value, (name, cname, bits) in zip(self, _STAT_FIELDS):
            value = operator.index(value)
            if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
                raise OverflowError(f"ZnodeStat.{name}={value} does not fit in int{bits}_t")
            setattr(s, cname, value)
        return s

    @classmethod
    def from_c(cls, s):
        return cls(*(getattr(s, cname) for _, cname, _ in _STAT_FIELDS))

    @classmethod
    def decode(cls, buf):
        """Decodes the first 68 bytes of `buf` (zk_stat_decode())."""
        arr, n = _bytes_arg(buf)
        s = _native.zk_stat()
        _check(lib.zk_stat_decode(arr, n, byref(s)))
        return cls.from_c(s)

    def encode(self):
        """The 68-byte jute encoding (zk_stat_encode())."""
        out = (ctypes.c_uint8 * ZK_STAT_WIRE_SIZE)()
        _check(lib.zk_stat_encode(byref(self.to_c()), out, ZK_STAT_WIRE_SIZE))
        return bytes(out)

    def format(self):
        """kazoo's repr of this stat, as zk_stat_format() writes it."""
        s = self.to_c()
        buf = ctypes.create_string_buffer(ZK_STAT_FORMAT_MAX + 1)
        n = lib.zk_stat_format(byref(s), buf, len(buf))
        return buf.raw[:n].decode("ascii")

    def _props(self):
        p = _native.zk_stat_properties()
        _check(lib.zk_stat_properties_get(byref(self.to_c()), byref(p)))
        return p

    acl_version = property(lambda self: self._props().acl_version)
    children_version = property(lambda self: self._props().children_version)
    created = property(lambda self: self._props().created)
    last_modified = property(lambda self: self._props().last_modified)
    creation_transaction_id = property(lambda self: self._props().creation_transaction_id)
    last_modified_transaction_id = property(lambda self: self._props().last_modified_transaction_id)
    data_length = property(lambda self: self._props().data_length)
    children_count = property(lambda self: self._props().children_count)

    @property
    def owner_session_id(self):
        p = self._props()
        return p.owner_session_id if p.has_owner else None


# --- callbacks: one ctypes trampoline per callback type, user objects by key --------
#
# The library holds an integer key as `user_data`; the Python callable lives in
# _registry under that key until the library calls _free_trampoline (exactly
# once, on the dispatch thread or on the caller's thread). The trampolines are
# module-level, so the ctypes function pointers outlive every dispatcher.

_registry = {}
_keys = itertools.count(1)


class _Entry:
    __slots__ = ("func", "args", "on_free", "on_remove")

    def __init__(self, func, args=(), on_free=None, on_remove=None):
        self.func, self.args, self.on_free, self.on_remove = func, args, on_free, on_remove


def _register(entry):
    key = next(_keys)
    _registry[key] = entry
    return key


@_native.zk_free_fn
def _free_trampoline(key):
    try:
        entry = _registry.pop(key, None)
        if entry is not None and entry.on_free is not None:
            entry.on_free()
    except BaseException:  # never unwind into the library
        log.exception("zk_states: error releasing a callback")


@_native.zk_watch_fn
def _watch_trampoline(event_p, key):
    entry = _registry.get(key)
    try:
        entry.func(_event_from_c(event_p.contents))
    except BaseException:
        log.exception("zk_states: exception in watch callback %r", getattr(entry, "func", None))


@_native.zk_listener_fn
def _listener_trampoline(state, key):
    entry = _registry.get(key)
    try:
        remove = entry.func(KAZOO_STATE_NAMES[state]) is True  # kazoo: `if remove is True`
    except BaseException:
        log.exception("zk_states: exception in state listener %r", getattr(entry, "func", None))
        return False
    if remove and entry.on_remove is not None:
        entry.on_remove()
    return remove


@_native.zk_callback_fn
def _submit_trampoline(key):
    entry = _registry.get(key)
    try:
        entry.func(*entry.args)
    except BaseException:
        log.exception("zk_states: exception in submitted callback %r", getattr(entry, "func", None))


def _path_arg(path):
    data = path.encode("utf-8") if isinstance(path, str) else bytes(path)
    if b"\0" in data:  # c_char_p would silently cut the string at the NUL
        raise ZkStatesError(ZK_ERR_INVALID_PATH)
    return data


# --- Dispatcher --------------------------------------------------------------------

DispatcherStats = namedtuple("DispatcherStats", [f for f, _ in _native.zk_dispatcher_stats._fields_])


class Dispatcher:
    """kazoo's watcher/listener dispatch (a ``zk_dispatcher`` and its thread).

    ``chroot``: set_chroot() at once.  ``curator``: Curator-style listener
    states (ZK_DISPATCHER_CURATOR_STATES).  ``keep_watches``: Java-client
    watch semantics on connection loss (ZK_DISPATCHER_KEEP_WATCHES).
    ``queue_capacity``: bound of the event/submit queue (0: unbounded).

    Use as a context manager, or call :meth:`close`; an unclosed dispatcher is
    freed when garbage-collected or at interpreter exit.
    """

    def __init__(self, chroot=None, *, curator=False, keep_watches=False, queue_capacity=0):
        options = (ZK_DISPATCHER_CURATOR_STATES if curator else 0) | (
            ZK_DISPATCHER_KEEP_WATCHES if keep_watches else 0
        )
        handle = c_void_p()
        _check(lib.zk_dispatcher_new_with(options, queue_capacity, byref(handle)))
        self._handle = handle.value
        self._finalizer = weakref.finalize(self, lib.zk_dispatcher_free, handle.value)
        self._listeners = {}  # func -> listener id (kazoo keeps a set of functions)
        self._lock = threading.Lock()  # guards _listeners only; never held across a call that may free
        if chroot is not None:
            self.set_chroot(chroot)

    # lifetime
    def close(self):
        """Runs what is queued, stops the dispatch thread and releases every callback
        (zk_dispatcher_free). No other thread may be using the dispatcher meanwhile; from
        a callback it returns at once and the dispatch thread finishes on its own."""
        self._handle = None
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def closed(self):
        return self._handle is None

    def _h(self):
        if self._handle is None:
            raise ZkStatesError(ZK_ERR_SHUTTING_DOWN)
        return self._handle

    # configuration
    def set_chroot(self, chroot):
        """Strips `chroot` (on a "/" boundary) from event paths fed afterwards; None clears it."""
        _check(lib.zk_dispatcher_set_chroot(self._h(), None if chroot is None else _path_arg(chroot)))

    # watches
    def watch_add(self, path, func, kind=WatchKind.DATA):
        """Registers `func(WatchedEvent)` on `path` (chroot-relative); returns the watch id."""
        if not callable(func):
            raise TypeError("watch callback must be callable")
        key = _register(_Entry(func))
        out = c_uint64()
        status = lib.zk_watch_add(
            self._h(), _path_arg(path), _watch_kind_code(kind), _watch_trampoline, key,
            _free_trampoline, byref(out),
        )
        if status != ZK_OK:
            _registry.pop(key, None)  # the library kept nothing
            raise ZkStatesError(status)
        return out.value

    def watch_remove(self, watch_id):
        """Removes a watch (ZkStatesError ZK_ERR_NOT_FOUND if it fired or was removed)."""
        _check(lib.zk_watch_remove(self._h(), watch_id))

    # listeners (kazoo's add_listener/remove_listener)
    def add_listener(self, func):
        """Adds `func(KazooState)`; as in kazoo, adding the same function twice is a no-op
        and a listener returning ``True`` is removed. Returns the listener id."""
        if not callable(func):
            raise TypeError("listener must be callable")
        with self._lock:
            if func in self._listeners:
                return self._listeners[func]
            ref = {}

            def forget():
                with self._lock:
                    if self._listeners.get(func) == ref.get("id"):
                        del self._listeners[func]

            key = _register(_Entry(func, on_free=forget, on_remove=forget))
            out = c_uint64()
            status = lib.zk_listener_add(self._h(), _listener_trampoline, key, _free_trampoline, byref(out))
            if status != ZK_OK:
                _registry.pop(key, None)
                raise ZkStatesError(status)
            ref["id"] = out.value
            self._listeners[func] = out.value
            return out.value

    def remove_listener(self, func):
        """Removes a listener function (no error if it is not registered, as kazoo's discard)."""
        with self._lock:
            listener_id = self._listeners.pop(func, None)
        if listener_id is not None and self._handle is not None:
            status = lib.zk_listener_remove(self._handle, listener_id)
            if status not in (ZK_OK, ZK_ERR_NOT_FOUND):  # NOT_FOUND: it just removed itself
                raise ZkStatesError(status)

    # feeding
    def feed_event(self, event_type, path, zxid=ZK_ZXID_UNKNOWN):
        """Feeds a node event (EventType name or code) for a server path."""
        _check(lib.zk_dispatcher_event(self._h(), _event_type_code(event_type), _path_arg(path), zxid))

    def feed_session(self, keeper_state):
        """Feeds a keeper state (KeeperState name or zk_keeper_state code), as kazoo's
        ``_session_callback``."""
        _check(lib.zk_dispatcher_session(self._h(), _keeper_state_code(keeper_state)))

    @property
    def state(self):
        """(KazooState, KeeperState) names as of the last call fed."""
        kazoo, keeper = c_int32(), c_int32()
        _check(lib.zk_dispatcher_state(self._h(), byref(kazoo), byref(keeper)))
        return KAZOO_STATE_NAMES[kazoo.value], KEEPER_STATE_NAMES[keeper.value]

    def submit(self, func, *args):
        """Queues ``func(*args)`` on the dispatch thread after everything fed before."""
        if not callable(func):
            raise TypeError("callback must be callable")
        key = _register(_Entry(func, args))
        status = lib.zk_dispatcher_submit(self._h(), _submit_trampoline, key, _free_trampoline)
        if status != ZK_OK:
            _registry.pop(key, None)
            raise ZkStatesError(status)

    def flush(self):
        """Waits until every callback queued before this call has run (not from a callback)."""
        _check(lib.zk_dispatcher_flush(self._h()))

    def stats(self):
        """The dispatcher's counters as a DispatcherStats namedtuple."""
        out = _native.zk_dispatcher_stats()
        _check(lib.zk_dispatcher_stats_get(self._h(), byref(out)))
        return DispatcherStats(*(getattr(out, f) for f in DispatcherStats._fields))


# --- the session state machine alone ---------------------------------------------

SessionStep = namedtuple("SessionStep", "changed notify kazoo_state actions")


class SessionMachine:
    """kazoo's ``_session_callback`` as a pure state machine (zk_session_machine_step())."""

    def __init__(self, *, curator=False, keep_watches=False):
        self._options = (ZK_DISPATCHER_CURATOR_STATES if curator else 0) | (
            ZK_DISPATCHER_KEEP_WATCHES if keep_watches else 0
        )
        self._m = _native.zk_session_machine()
        _check(lib.zk_session_machine_init(byref(self._m)))

    @property
    def state(self):
        """(KazooState, KeeperState) names."""
        return KAZOO_STATE_NAMES[self._m.kazoo_state], KEEPER_STATE_NAMES[self._m.keeper_state]

    def step(self, keeper_state):
        """Feeds a keeper state; returns SessionStep (kazoo_state is a name, or None)."""
        out = _native.zk_session_step()
        _check(lib.zk_session_machine_step(byref(self._m), _keeper_state_code(keeper_state), self._options, byref(out)))
        notify = KAZOO_STATE_NAMES[out.kazoo_state] if out.notify else None
        return SessionStep(out.changed, out.notify, notify, out.actions)
