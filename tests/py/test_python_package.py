"""The ``zk_states`` Python package (python/zk_states): kazoo's names and shapes, the
ctypes declarations against include/zk_states.h, and the Dispatcher end to end.

The tests comparing with kazoo need kazoo: without it they fail, unless
ZK_STATES_ALLOW_NO_KAZOO=1 (then they skip); the others always run.
"""

import ctypes
import gc
import logging
import os
import random
import re
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest

try:
    from kazoo.client import KazooClient
    from kazoo.protocol import states as kz_states
    _KAZOO_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the environment
    KazooClient = kz_states = None
    _KAZOO_ERROR = exc


@pytest.fixture
def kazoo():
    """For the tests that compare with kazoo: a failure without kazoo, unless
    ZK_STATES_ALLOW_NO_KAZOO=1 (then a skip). The other tests run regardless."""
    if _KAZOO_ERROR is not None:
        if os.environ.get("ZK_STATES_ALLOW_NO_KAZOO") == "1":
            pytest.skip(f"kazoo not importable ({_KAZOO_ERROR}); allowed by ZK_STATES_ALLOW_NO_KAZOO=1")
        pytest.fail(f"kazoo==2.11.0 is required ({_KAZOO_ERROR}); install it or set ZK_STATES_ALLOW_NO_KAZOO=1",
                    pytrace=False)


HEADER = Path(__file__).resolve().parents[2] / "include" / "zk_states.h"


@pytest.fixture(scope="module")
def zs(lib_path):
    import zk_states

    assert Path(zk_states.lib_path).resolve() == Path(lib_path).resolve()
    return zk_states


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        gc.collect()
        time.sleep(0.005)
    return True


def kazoo_names(cls):
    return {k: v for k, v in vars(cls).items() if not k.startswith("_")}


# --- kazoo's names and shapes -------------------------------------------------------------


def test_constants_equal_kazoo(zs, kazoo):
    for kz_cls, ours in ((kz_states.EventType, zs.EventType), (kz_states.KeeperState, zs.KeeperState),
                         (kz_states.KazooState, zs.KazooState)):
        names = kazoo_names(kz_cls)
        assert names, kz_cls
        for name, value in names.items():
            assert getattr(ours, name) == value, (kz_cls.__name__, name)
            assert type(getattr(ours, name)) is str
    assert zs.EventType.CREATED == "CREATED" and zs.KazooState.LOST == "LOST"
    assert kazoo_names(zs.KeeperState) == kazoo_names(kz_states.KeeperState)  # no extras here
    # the library's own names agree with kazoo's map and with the package's classes
    for code, name in kz_states.EVENT_TYPE_MAP.items():
        assert zs.EVENT_TYPE_NAMES[code] == name
    assert set(zs.EVENT_TYPE_NAMES.values()) == set(kazoo_names(zs.EventType).values())
    assert set(zs.KEEPER_STATE_NAMES.values()) == set(kazoo_names(kz_states.KeeperState).values())
    assert set(zs.KAZOO_STATE_NAMES.values()) == set(kazoo_names(zs.KazooState).values())
    assert zs.KAZOO_STATE_NAMES[0] == "CONNECTED" and zs.KAZOO_STATE_NAMES[3] == "LOST"


def test_namedtuples_have_kazoo_shapes(zs, kazoo):
    assert zs.WatchedEvent._fields == kz_states.WatchedEvent._fields
    assert zs.ZnodeStat._fields == kz_states.ZnodeStat._fields
    ours = zs.WatchedEvent("CHANGED", "CONNECTED", "/a")
    theirs = kz_states.WatchedEvent("CHANGED", "CONNECTED", "/a")
    assert isinstance(ours, tuple) and ours == theirs and hash(ours) == hash(theirs)
    assert repr(ours) == repr(theirs)
    assert (ours.type, ours.state, ours.path) == ("CHANGED", "CONNECTED", "/a")
    rng = random.Random(7)
    for _ in range(200):
        fields = [rng.randrange(-(2**63), 2**63) for _ in range(4)] + \
                 [rng.randrange(-(2**31), 2**31) for _ in range(3)] + \
                 [rng.choice([0, rng.randrange(-(2**63), 2**63)])] + \
                 [rng.randrange(-(2**31), 2**31) for _ in range(2)] + [rng.randrange(-(2**63), 2**63)]
        s, k = zs.ZnodeStat(*fields), kz_states.ZnodeStat(*fields)
        assert s == k and hash(s) == hash(k) and repr(s) == repr(k) == s.format()
        assert isinstance(s, tuple) and kz_states.ZnodeStat(*s) == s
        for name in ("acl_version", "children_version", "created", "last_modified", "owner_session_id",
                     "creation_transaction_id", "last_modified_transaction_id", "data_length",
                     "children_count", "version", "pzxid", "ephemeralOwner"):
            assert getattr(s, name) == getattr(k, name), name
        assert zs.ZnodeStat.decode(s.encode()) == k
    assert zs.ZnodeStat(0, 0, 1500, 2, 0, 0, 0, 0, 0, 0, 0).created == 1.5
    assert zs.ZnodeStat(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0).owner_session_id is None


def test_errors_carry_status_and_message(zs):
    with pytest.raises(zs.ZkStatesError) as info:
        zs.ZnodeStat.decode(b"\0" * 67)
    assert info.value.status == zs.ZK_ERR_TRUNCATED
    assert info.value.message == zs.lib.zk_status_message(zs.ZK_ERR_TRUNCATED).decode()
    assert "zk_status 2" in str(info.value)
    with pytest.raises(zs.ZkStatesError) as info:
        zs.decode_notification(b"\0" * 16 + b"\0\0\0\1\0\0\0\3\xff\xff\xff\xff")
    assert info.value.status == zs.ZK_ERR_NOT_A_NOTIFICATION
    with zs.Dispatcher() as d:
        for bad, status in (("relative", zs.ZK_ERR_INVALID_PATH), ("/a/", zs.ZK_ERR_INVALID_PATH),
                            ("/a\0b", zs.ZK_ERR_INVALID_PATH), (b"/\xff", zs.ZK_ERR_INVALID_UTF8)):
            with pytest.raises(zs.ZkStatesError) as info:
                d.watch_add(bad, print)
            assert info.value.status == status, bad
            with pytest.raises(zs.ZkStatesError):
                d.feed_event("CREATED", bad)
        with pytest.raises(zs.ZkStatesError) as info:
            d.watch_add("/a", print, kind="SOMETIMES")
        assert info.value.status == zs.ZK_ERR_INVALID_WATCH_KIND
        with pytest.raises(zs.ZkStatesError) as info:
            d.watch_add("/a", print, kind=7)
        assert info.value.status == zs.ZK_ERR_INVALID_WATCH_KIND
        with pytest.raises(zs.ZkStatesError) as info:
            d.feed_session("connected")  # names are case-sensitive
        assert info.value.status == zs.ZK_ERR_UNKNOWN_NAME
        with pytest.raises(zs.ZkStatesError) as info:
            d.feed_session(2)
        assert info.value.status == zs.ZK_ERR_INVALID_KEEPER_STATE
        with pytest.raises(zs.ZkStatesError) as info:
            d.feed_event(9, "/a")
        assert info.value.status == zs.ZK_ERR_INVALID_EVENT_TYPE
        with pytest.raises(zs.ZkStatesError) as info:
            d.watch_remove(12345)
        assert info.value.status == zs.ZK_ERR_NOT_FOUND
        with pytest.raises(TypeError):
            d.add_listener(None)
        with pytest.raises(TypeError):
            d.watch_add("/a", "not callable")
    with pytest.raises(zs.ZkStatesError) as info:
        d.feed_session("CONNECTED")
    assert info.value.status == zs.ZK_ERR_SHUTTING_DOWN
    with pytest.raises(zs.ZkStatesError) as info:
        zs.SessionMachine().step("BOGUS")
    assert info.value.status == zs.ZK_ERR_UNKNOWN_NAME


def test_library_search_order(zs, monkeypatch, tmp_path):
    monkeypatch.delenv("ZK_STATES_LIB", raising=False)
    monkeypatch.delenv("CARGO_TARGET_DIR", raising=False)
    pkg = Path(zs.__file__).resolve().parent
    target = pkg.parent.parent / "target"
    name = zs._native._LIB_NAME
    assert zs._native.candidate_paths() == [pkg / name, target / "release" / name, target / "debug" / name]
    monkeypatch.setenv("ZK_STATES_LIB", str(tmp_path / "missing.so"))
    with pytest.raises(ImportError, match="ZK_STATES_LIB"):
        zs._native.load_library()
    # Without ZK_STATES_LIB, a fresh interpreter finds the checkout's build on its own.
    env = {k: v for k, v in os.environ.items() if k not in ("ZK_STATES_LIB", "CARGO_TARGET_DIR")}
    env["PYTHONPATH"] = str(pkg.parent)
    out = subprocess.run([sys.executable, "-c", "import zk_states; print(zk_states.lib_path)"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out) in (target / "release" / name, target / "debug" / name)


# --- the ctypes declarations against the header ---------------------------------------------


def _header():
    return re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)


def _ctype(zs, decl):
    n = zs._native
    decl = " ".join(decl.split())
    chars = {"const char *": ctypes.c_char_p, "char *": ctypes.POINTER(ctypes.c_char)}
    if decl in chars:  # input/returned strings; an output buffer
        return chars[decl]
    decl = decl.replace("const ", "")
    scalars = {"int64_t": ctypes.c_int64, "int32_t": ctypes.c_int32, "uint64_t": ctypes.c_uint64, "uint8_t": ctypes.c_uint8,
               "uint32_t": ctypes.c_uint32, "bool": ctypes.c_bool, "double": ctypes.c_double,
               "size_t": ctypes.c_size_t, "int": ctypes.c_int, "void": None,
               "zk_kazoo_state": ctypes.c_int32, "zk_keeper_state": ctypes.c_int32,
               "zk_event_type": ctypes.c_int32, "zk_watch_fn": n.zk_watch_fn, "zk_free_fn": n.zk_free_fn,
               "zk_listener_fn": n.zk_listener_fn, "zk_callback_fn": n.zk_callback_fn}
    if decl in scalars:
        return scalars[decl]
    opaque = ("struct zk_dispatcher *", "struct _zhandle *", "void *")
    if decl in opaque:
        return ctypes.c_void_p
    if decl == "struct zk_dispatcher **":
        return ctypes.POINTER(ctypes.c_void_p)
    m = re.fullmatch(r"struct (\w+) \*", decl)
    if m:
        return ctypes.POINTER(getattr(n, m.group(1)))
    m = re.fullmatch(r"(\w+) \*", decl)
    if m:
        return ctypes.POINTER(_ctype(zs, m.group(1)))
    raise AssertionError(f"unmapped C type {decl!r}")


def test_every_header_function_is_declared(zs):
    text = _header()
    protos = re.findall(r"^([A-Za-z_][\w \*]*?[\s\*])(zk_\w+)\(([^)]*)\);", text, flags=re.M)
    names = [name for _, name, _ in protos]
    assert len(names) >= 39 and len(set(names)) == len(names)
    assert set(names) == set(zs._native.PROTOTYPES), "package and header disagree on the function list"
    for ret, name, params in protos:
        restype, argtypes = zs._native.PROTOTYPES[name]
        fn = getattr(zs.lib, name)
        assert fn.restype is restype and fn.argtypes == argtypes, name
        assert restype is _ctype(zs, ret), (name, ret)
        params = [p.strip() for p in " ".join(params.split()).split(",") if p.strip() not in ("", "void")]
        want = [_ctype(zs, re.sub(r"\b\w+$", "", p)) for p in params]
        assert argtypes == want, (name, params)


def test_structs_and_enums_match_header(zs):
    text = _header()
    structs = dict(re.findall(r"typedef struct (\w+) \{(.*?)\} \1;", text, flags=re.S))
    assert set(structs) == {"zk_stat", "zk_stat_properties", "zk_watched_event", "zk_dispatcher_stats",
                            "zk_session_machine", "zk_session_step"}
    for name, body in structs.items():
        fields = [f.strip().rsplit(" ", 1) for f in body.split(";") if f.strip()]
        ours = getattr(zs._native, name)._fields_
        assert [f for f, _ in ours] == [n.lstrip("*") for _, n in fields], name
        for (cname, ctype), (fname, ftype) in zip(fields, ours):
            want = _ctype(zs, cname + (" *" if ctype.startswith("*") else ""))
            if ctype.startswith("*"):  # zk_watched_event.path: read as a raw address
                assert ftype is ctypes.c_void_p
            else:
                assert ftype is want, (name, fname)
    enums = dict(re.findall(r"enum (\w+)\s*(?:#if[^\n]*\n[^\n]*\n#endif[^\n]*\n)?\s*\{(.*?)\};", text, flags=re.S))
    values = {k: {m[0]: int(m[1]) for m in re.findall(r"(\w+) = (-?\d+)", v)} for k, v in enums.items()}
    assert values["zk_status"] == zs.STATUS_CODES
    assert {n.removeprefix("ZK_WATCH_"): c for n, c in values["zk_watch_kind"].items()} == zs._WATCH_KIND_CODES
    assert {c: n.removeprefix("ZK_EVENT_TYPE_") for n, c in values["zk_event_type"].items()} == zs.EVENT_TYPE_NAMES
    assert {c: n.removeprefix("ZK_KEEPER_STATE_") for n, c in values["zk_keeper_state"].items()} == zs.KEEPER_STATE_NAMES
    assert {c: n.removeprefix("ZK_KAZOO_STATE_") for n, c in values["zk_kazoo_state"].items()} == zs.KAZOO_STATE_NAMES
    defines = dict(re.findall(r"^#define (ZK_\w+) (.+)$", text, flags=re.M))
    for name in ("ZK_ZXID_UNKNOWN", "ZK_STAT_WIRE_SIZE", "ZK_STAT_FORMAT_MAX", "ZK_DISPATCHER_CURATOR_STATES",
                 "ZK_DISPATCHER_KEEP_WATCHES", "ZK_SESSION_ACTION_FIRE_ONE_SHOT",
                 "ZK_SESSION_ACTION_NOTIFY_ONE_SHOT", "ZK_SESSION_ACTION_NOTIFY_PERSISTENT",
                 "ZK_SESSION_ACTION_DROP_PERSISTENT", "ZK_SESSION_ACTION_FAIL_PENDING",
                 "ZK_SESSION_ACTION_RESET_SESSION"):
        assert eval(defines[name]) == getattr(zs, name), name  # plain integer expressions
    assert int(defines["ZK_STATES_ABI_VERSION"]) == zs._native.ABI_VERSION == zs.abi_version()
    assert defines["ZK_STATES_VERSION"].strip('"') == zs.version()


# --- the Dispatcher ----------------------------------------------------------------------------


def test_watches_and_listeners_end_to_end(zs):
    log = []
    with zs.Dispatcher() as d:
        assert d.state == ("LOST", "CLOSED")  # a new KazooClient
        d.add_listener(lambda s: log.append(("L", s)))
        wid = d.watch_add("/a", lambda e: log.append(("data", e)))
        d.watch_add("/a", lambda e: log.append(("child", e)), kind=zs.WatchKind.CHILD)
        d.feed_session(zs.KeeperState.CONNECTED)
        d.feed_event(zs.EventType.CHANGED, "/a", zxid=5)
        d.feed_event("CHANGED", "/a")  # the data watch was a one-shot
        d.feed_event(zs.EventType.DELETED, "/a")
        d.flush()
        assert d.state == ("CONNECTED", "CONNECTED")
        with pytest.raises(zs.ZkStatesError) as info:
            d.watch_remove(wid)  # fired
        assert info.value.status == zs.ZK_ERR_NOT_FOUND
        st = d.stats()
    assert log == [("L", "CONNECTED"), ("data", ("CHANGED", "CONNECTED", "/a")),
                   ("child", ("DELETED", "CONNECTED", "/a"))]
    assert all(type(e) is zs.WatchedEvent for _, e in log[1:])
    assert (st.events_fed, st.events_matched, st.events_unmatched, st.watch_calls, st.listener_calls) == (3, 2, 1, 2, 1)


def test_session_changes_like_kazoo(zs):
    log = []
    with zs.Dispatcher() as d:
        d.add_listener(lambda s: log.append(s))
        d.watch_add("/a", lambda e: log.append(e))
        d.feed_session(3)  # ints are zk_keeper_state codes
        d.feed_session("CONNECTED")  # repeats are ignored
        d.feed_session("CONNECTED_RO")  # still CONNECTED for kazoo
        d.feed_session("CONNECTING")
        d.watch_add("/b", lambda e: log.append(e), kind="CHILD")
        d.feed_session("EXPIRED_SESSION")
        d.feed_session("CONNECTING")  # from a closed state: recorded only
        d.flush()
        assert d.state == ("LOST", "CONNECTING")
    assert log == ["CONNECTED", "SUSPENDED", ("NONE", "CONNECTING", None), "LOST",
                   ("NONE", "EXPIRED_SESSION", None)]


def test_listener_semantics_like_kazoo(zs):
    log = []
    once = lambda s: (log.append(("once", s)), True)[1]  # noqa: E731
    truthy = lambda s: (log.append(("truthy", s)), 1)[1]  # noqa: E731
    plain = lambda s: log.append(("plain", s))  # noqa: E731
    with zs.Dispatcher() as d:
        d.add_listener(once)
        d.add_listener(truthy)
        first = d.add_listener(plain)
        assert d.add_listener(plain) == first  # a set, as kazoo's: no duplicate
        d.remove_listener(lambda s: None)  # unknown: no error (kazoo's discard)
        d.feed_session("CONNECTED")
        d.flush()
        d.feed_session("CONNECTING")
        d.flush()
        d.add_listener(once)  # it removed itself: adding it again registers it again
        d.remove_listener(plain)
        d.feed_session("CONNECTED")
        d.flush()
        assert d.stats().listeners == 1  # truthy only: once removed itself again
    assert log == [("once", "CONNECTED"), ("truthy", "CONNECTED"), ("plain", "CONNECTED"),
                   ("truthy", "SUSPENDED"), ("plain", "SUSPENDED"),
                   ("truthy", "CONNECTED"), ("once", "CONNECTED")]


def test_callback_exceptions_are_logged_not_fatal(zs, caplog):
    caplog.set_level(logging.ERROR, logger="zk_states")
    log = []

    def bad_watch(e):
        raise ValueError("watch boom")

    def bad_listener(s):
        log.append(("bad", s))
        raise KeyError("listener boom")

    with zs.Dispatcher() as d:
        d.add_listener(bad_listener)
        d.add_listener(lambda s: log.append(("good", s)))
        d.watch_add("/a", bad_watch)
        d.watch_add("/a", lambda e: log.append(e))
        d.submit(lambda: 1 / 0)
        d.feed_session("CONNECTED")
        d.feed_event("CREATED", "/a")
        d.submit(log.append, "after")
        d.flush()
        d.feed_session("CONNECTING")  # the raising listener was kept, as in kazoo
        d.flush()
        st = d.stats()
    assert log == [("bad", "CONNECTED"), ("good", "CONNECTED"), ("CREATED", "CONNECTED", "/a"), "after",
                   ("bad", "SUSPENDED"), ("good", "SUSPENDED")]
    messages = [r.getMessage() + str(r.exc_info[1]) for r in caplog.records if r.name == "zk_states"]
    assert any("watch boom" in m for m in messages)
    assert any("listener boom" in m for m in messages)
    assert any("division by zero" in m for m in messages)
    assert st.callback_panics == 0  # Python exceptions never reach the library


def test_submit_flush_ordering_and_seq(zs):
    order, seqs = [], []
    with zs.Dispatcher() as d:
        d.watch_add("/n", lambda e: (order.append(("W", e.type)), seqs.append(zs.current_seq())),
                    kind=zs.WatchKind.PERSISTENT)
        for i in range(200):
            if i % 3 == 0:
                d.feed_event("CHANGED", "/n")
            else:
                d.submit(lambda i=i: (order.append(i), seqs.append(zs.current_seq())))
        d.flush()
        assert zs.current_seq() == 0
        errors = []
        d.submit(lambda: errors.append(_status_of(zs, d.flush)))
        d.flush()
        st = d.stats()
    expected = [("W", "CHANGED") if i % 3 == 0 else i for i in range(200)]
    assert order == expected
    assert seqs == list(range(1, 201))  # every fed call has the next sequence number
    assert errors == [zs.ZK_ERR_WOULD_DEADLOCK]
    assert (st.submitted, st.submit_calls, st.last_seq) == (134, 134, 201)


def _status_of(zs, fn):
    try:
        fn()
    except zs.ZkStatesError as e:
        return e.status
    return zs.ZK_OK


def test_watch_ordering_persistent_and_recursive(zs):
    log = []
    rec = lambda tag: (lambda e: log.append((tag, e.type, e.path)))  # noqa: E731
    with zs.Dispatcher() as d:
        d.watch_add("/", rec("rec/"), kind="PERSISTENT_RECURSIVE")
        d.watch_add("/a", rec("rec/a"), kind="PERSISTENT_RECURSIVE")
        d.watch_add("/a/b", rec("per"), kind="PERSISTENT")
        d.watch_add("/a/b", rec("child"), kind="CHILD")
        d.watch_add("/a/b", rec("data"), kind="DATA")
        d.feed_event("DELETED", "/a/b")
        d.feed_event("CHILD", "/a/b")  # recursive watches ignore CHILD
        d.feed_event("CREATED", "/x")
        d.feed_session("CONNECTED")
        d.feed_session("CONNECTING")  # persistent watches are told, and kept
        d.feed_event("CHANGED", "/a/b")
        d.feed_session("CLOSED")  # a lost session drops them
        d.feed_event("CHANGED", "/a/b")
        d.flush()
        assert d.stats().watches == 0
    assert log == [("data", "DELETED", "/a/b"), ("child", "DELETED", "/a/b"), ("per", "DELETED", "/a/b"),
                   ("rec/a", "DELETED", "/a/b"), ("rec/", "DELETED", "/a/b"),
                   ("per", "CHILD", "/a/b"), ("rec/", "CREATED", "/x"),
                   ("rec/", "NONE", None), ("rec/a", "NONE", None), ("per", "NONE", None),
                   ("per", "CHANGED", "/a/b"), ("rec/a", "CHANGED", "/a/b"), ("rec/", "CHANGED", "/a/b"),
                   ("rec/", "NONE", None), ("rec/a", "NONE", None), ("per", "NONE", None)]


def test_options_chroot_curator_keep_watches(zs):
    log = []
    with zs.Dispatcher(chroot="/app", curator=True, keep_watches=True) as d:
        d.add_listener(log.append)
        d.watch_add("/", lambda e: log.append(e))
        d.feed_event("CREATED", "/app")
        d.watch_add("/x", lambda e: log.append(e))
        for state in ("CONNECTED", "CONNECTING", "CONNECTED", "CONNECTED_RO", "CONNECTING"):
            d.feed_session(state)
        d.feed_event("CHANGED", "/app/x")  # still registered: keep_watches
        d.feed_event("CHANGED", "/app/x")
        d.set_chroot(None)
        d.feed_event("CHANGED", "/x")
        d.flush()
    assert log == [("CREATED", "CLOSED", "/"), "CONNECTED", "SUSPENDED", ("NONE", "CONNECTING", None),
                   "RECONNECTED", "READ_ONLY", "SUSPENDED", ("NONE", "CONNECTING", None),
                   ("CHANGED", "CONNECTING", "/x")]


def test_queue_capacity_and_closed_dispatcher(zs):
    gate = threading.Event()
    d = zs.Dispatcher(queue_capacity=2)
    d.submit(gate.wait, 10)
    assert wait_for(lambda: d.stats().queued == 0)  # the blocker is running, out of the queue
    d.submit(print)
    d.submit(print)
    with pytest.raises(zs.ZkStatesError) as info:
        d.submit(print)
    assert info.value.status == zs.ZK_ERR_QUEUE_FULL
    d.feed_session("CONNECTED")  # session changes are never refused for room
    gate.set()
    d.flush()
    assert d.stats().refused_full == 1 and d.state[0] == "CONNECTED"
    d.close()
    assert d.closed
    for call in (lambda: d.submit(print), d.flush, lambda: d.watch_add("/a", print), d.stats):
        with pytest.raises(zs.ZkStatesError) as info:
            call()
        assert info.value.status == zs.ZK_ERR_SHUTTING_DOWN
    d.close()  # idempotent in Python
    d.remove_listener(print)


def test_close_from_a_callback(zs):
    done = threading.Event()
    gate = threading.Event()
    refused = []
    d = zs.Dispatcher()
    handle = d._handle
    d.submit(gate.wait, 10)
    d.submit(d.close)  # zk_dispatcher_free on the dispatch thread returns at once
    d.submit(lambda: (refused.append(zs.lib.zk_dispatcher_session(handle, 3)), done.set()))
    gate.set()
    assert done.wait(5), "callbacks queued before the free must still run"
    assert refused == [zs.ZK_ERR_SHUTTING_DOWN]  # "feeding and registering are refused"
    assert d.closed


def test_c_client_adapter(zs):
    log = []
    with zs.Dispatcher() as d:
        d.add_listener(log.append)
        d.watch_add("/a", lambda e: log.append(e))
        w = zs.lib.zk_dispatcher_c_watcher
        w(None, -1, 3, b"", d._handle)        # ZOO_SESSION_EVENT, ZOO_CONNECTED_STATE
        w(None, 3, 3, b"/a", d._handle)       # ZOO_CHANGED_EVENT
        w(None, -2, 3, b"/a", d._handle)      # ZOO_NOTWATCHING_EVENT: ignored
        w(None, -1, 12345, b"", d._handle)    # unknown state: counted
        w(None, -1, 999, b"", d._handle)      # ZOO_NOTCONNECTED_STATE: CLOSED
        w(None, 3, 3, b"/a", None)            # NULL context: ignored
        d.flush()
        st = d.stats()
    assert log == ["CONNECTED", ("CHANGED", "CONNECTED", "/a"), "LOST"]
    assert (st.adapter_errors, st.events_ignored) == (1, 1)
    assert zs.keeper_state_from_c_client(-113) == "AUTH_FAILED"
    assert zs.keeper_state_from_c_client(7) == "CONNECTING"  # SSL_CONNECTING, unlike the wire's 7


def test_session_machine_matches_kazoo(zs, kazoo):
    rng = random.Random(11)
    states = ["CONNECTING", "CONNECTED", "CONNECTED_RO", "AUTH_FAILED", "CLOSED", "EXPIRED_SESSION"]
    client = KazooClient(hosts="127.0.0.1:2181")
    told = []
    client.add_listener(told.append)
    machine = zs.SessionMachine()
    assert machine.state == (client.state, client._state)
    for _ in range(2000):
        new = rng.choice(states)
        client._data_watchers["/w"].add(lambda e: None)
        before = len(told)
        client._session_callback(new)
        reset = not client.handler.callback_queue.empty()
        while not client.handler.callback_queue.empty():
            client.handler.callback_queue.get_nowait()
        step = machine.step(new)
        assert machine.state == (client.state, client._state)
        assert step.kazoo_state == (told[-1] if len(told) > before else None)
        assert bool(step.actions & zs.ZK_SESSION_ACTION_FIRE_ONE_SHOT) == reset
    assert len(told) > 300


# --- releasing Python callbacks -----------------------------------------------------------------


def _tracked(log=None):
    def fn(*args):
        if log is not None:
            log.append(args)
    return fn, weakref.ref(fn)


def test_callbacks_are_released(zs):
    with zs.Dispatcher() as d:
        fn, removed = _tracked()
        wid = d.watch_add("/a", fn, kind="PERSISTENT")
        del fn
        gc.collect()
        assert removed() is not None  # the library holds it
        d.watch_remove(wid)
        gc.collect()
        assert removed() is None  # released by zk_watch_remove (free_fn on this thread)

        fn, fired = _tracked()
        d.watch_add("/a", fn)
        del fn
        d.feed_event("CREATED", "/a")
        assert wait_for(lambda: fired() is None), "a fired one-shot must be released"

        fn, removed_listener = _tracked()
        d.add_listener(fn)
        d.remove_listener(fn)
        del fn
        gc.collect()
        assert removed_listener() is None  # released by zk_listener_remove

        fn, self_removed = _tracked()
        d.add_listener(lambda s, fn=fn: True)  # removes itself on its first call
        del fn
        gc.collect()
        assert self_removed() is not None
        d.feed_session("CONNECTED")
        assert wait_for(lambda: self_removed() is None), "a listener returning True must be released"

        fn, submitted = _tracked()
        d.submit(fn)
        del fn
        assert wait_for(lambda: submitted() is None), "a submitted callback must be released"
        d.flush()
        st = d.stats()
        assert (st.watches, st.listeners) == (0, 0)


def test_free_releases_registered_callbacks(zs):
    """Regression: zk_dispatcher_free() runs the free functions of the watches and
    listeners still registered (it once leaked the dispatcher: Dispatcher::into_arc kept
    a reference)."""
    d = zs.Dispatcher()
    fn, watch_ref = _tracked()
    d.watch_add("/a", fn)
    lfn, listener_ref = _tracked()
    d.add_listener(lfn)
    del fn, lfn
    d.close()
    gc.collect()
    assert (watch_ref() is None, listener_ref() is None) == (True, True), \
        "zk_dispatcher_free() did not release the registered callbacks"


def test_listener_free_runs_right_after_it_returns(zs):
    """Regression (was a doc/behaviour mismatch): zk_listener_add() documents that a
    listener returning true is removed and "its free_fn runs right after it returns", and
    zk_dispatcher_stats.watches counts a fired one-shot "until its callback has run". Both
    are only updated when the dispatch thread retires work at the end of its batch (or at
    a flush), so a callback queued behind them in the same batch still sees them."""
    gate = threading.Event()
    seen = []
    with zs.Dispatcher() as d:
        d.submit(gate.wait, 10)  # hold the dispatch thread so that what follows is one batch
        lfn, listener_ref = _tracked()
        d.add_listener(lambda s, f=lfn: True)
        d.watch_add("/a", print)
        del lfn
        d.feed_session("CONNECTED")
        d.feed_event("CREATED", "/a")

        def check():
            gc.collect()
            st = d.stats()
            seen.append((listener_ref() is None, st.listeners, st.watches))
        d.submit(check)
        gate.set()
        d.flush()
    assert seen == [(True, 0, 0)], "(listener released, stats.listeners, stats.watches) seen by a later callback"


# Struct sizes of ABI version 1 as first committed with the dispatcher (commit a63915a).
