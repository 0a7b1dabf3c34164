"""End to end against a real ZooKeeper 3.8: watches and Stat.

Every scenario runs our library and kazoo 2.11 on the same server in the same
test and compares what each delivers:

* one-shot data and child watches through the official C client (a compiled
  driver with ``zk_dispatcher_c_watcher`` as its watcher) versus kazoo's
  ``get``/``exists``/``get_children`` watch functions, for create, set, delete,
  child add/remove and the parent's CHILD on delete, also with a chroot;
* persistent and persistent-recursive watches (kazoo has none): ``AddWatch``
  sent by the minimal wire client ``zkwire``, every notification fed through
  our ``zk_notification_decode`` into a dispatcher, checked against
  ZooKeeper 3.6's semantics, including a connection loss and a session close;
* the C client's ``struct Stat`` and kazoo's ``ZnodeStat`` of the same
  persistent and ephemeral nodes, converted by ``zk_stat_properties_get`` /
  ``zk_stat_format`` versus kazoo's properties and ``repr``.

Skipped without Java/ZooKeeper, kazoo or the C client; failing instead when
``$CI`` is set.
"""

from __future__ import annotations

import threading

import pytest

import test_e2e_support as S
import zkserver
import zkwire

pytestmark = pytest.mark.zookeeper


@pytest.fixture(scope="module")
def server():
    S.require_zookeeper()
    S.require_kazoo()
    with zkserver.ZkServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def driver_exe(build_dir, include_dir, lib_path):
    return S.build_driver(build_dir, include_dir, lib_path)


@pytest.fixture
def writer(server):
    """A third client that makes the changes both observers watch."""
    kz = S.KazooRecorder(server.hosts).start()
    yield kz.client
    kz.stop()


def connected_driver(exe, server, tmp_path, **kwargs) -> S.CDriver:
    drv = S.CDriver(exe, server.hosts, log_dir=tmp_path, **kwargs)
    drv.cmd("connect")
    drv.wait_state_count("CONNECTED", 1, 15)
    return drv


# --------------------------------------------------------------------------
# One-shot watches: C client + our dispatcher vs kazoo
# --------------------------------------------------------------------------


def test_one_shot_watches_match_kazoo(server, driver_exe, writer, tmp_path):
    base = "/e2e-oneshot"
    a, c1, end = f"{base}/a", f"{base}/a/c1", f"{base}/end"
    writer.create(base)
    drv = connected_driver(driver_exe, server, tmp_path)
    kz = S.KazooRecorder(server.hosts).start()
    try:
        n = 0  # watch events expected so far, on each side (after the offsets)
        drv_offset = kz_offset = 0

        def step(register, change, new_events):
            """Register the same watches on both sides, make the change, wait for both."""
            nonlocal n
            for verb, path, tag in register:
                if verb == "get":
                    assert drv.rc("get", path, tag) == 0
                    kz.client.get(path, watch=kz.watcher(tag))
                elif verb == "exists":
                    assert drv.rc("exists", path, tag) in (0, -101)  # ZOK, ZNONODE
                    kz.client.exists(path, watch=kz.watcher(tag))
                else:
                    assert drv.rc("children", path, tag) == 0
                    kz.client.get_children(path, watch=kz.watcher(tag))
            change()
            n += new_events
            drv.wait_events(lambda ev: len(ev) - drv_offset >= n, 15, f"{n} watch events")
            kz.wait_events(lambda ev: len(ev) - kz_offset >= n, 15, f"{n} watch events")

        # The Stat returned with a data watch is the same on both sides.
        writer.create(a, b"v0")
        got = drv.cmd("get", a, "probe")
        _, kz_stat = kz.client.get(a)
        assert got["repr"] == repr(kz_stat)
        writer.set(a, b"v0")  # fires the probe watch (on our side only)
        drv.wait_events(lambda ev: ("WATCH", "probe", "CHANGED", "CONNECTED", a) in ev, 15, "probe")
        writer.delete(a)
        drv_offset = len(drv.events())
        kz_offset = len(kz.events())

        step([("exists", a, "exists-a")], lambda: writer.create(a, b"v1"), 1)
        step([("get", a, "get-a")], lambda: writer.set(a, b"v2"), 1)
        step([("children", a, "kids-a")], lambda: writer.create(c1, b""), 1)
        step([("get", c1, "get-c1"), ("children", a, "kids-a2")], lambda: writer.delete(c1), 2)
        # (One watch per path and kind: kazoo keeps them in sets, whose order is arbitrary.)
        step([("get", a, "get-a2"), ("children", a, "kids-a3"), ("children", base, "kids-base")],
             lambda: writer.delete(a), 3)
        step([("exists", end, "end")], lambda: writer.create(end), 1)  # sentinel: nothing after

        ours = drv.events()[drv_offset:]
        theirs = kz.events()[kz_offset:]
        C, D, CH, K = "CREATED", "DELETED", "CHILD", "CONNECTED"
        expected = [
            ("WATCH", "exists-a", C, K, a),
            ("WATCH", "get-a", "CHANGED", K, a),
            ("WATCH", "kids-a", CH, K, a),
            ("WATCH", "get-c1", D, K, c1),       # the child's data watch
            ("WATCH", "kids-a2", CH, K, a),      # the parent's CHILD on delete
            ("WATCH", "get-a2", D, K, a),        # DELETED: the data watch first,
            ("WATCH", "kids-a3", D, K, a),       # then the path's child watch
            ("WATCH", "kids-base", CH, K, base),  # the parent's CHILD
            ("WATCH", "end", C, K, end),
        ]
        assert theirs == expected, f"kazoo delivered {theirs}"
        assert ours == theirs
        stats = drv.stats()
        assert stats["adapter_errors"] == 0
        assert stats["events_unmatched"] == 0 and stats["watches"] == 0
        assert drv.states() == kz.states() == ["CONNECTED"]
    finally:
        kz.stop()
        drv.quit()
    assert drv.states() == ["CONNECTED", "LOST"]  # close: CLOSED fed by the driver


def test_chroot_paths_match_kazoo(server, driver_exe, writer, tmp_path):
    """With a chroot in the connect string, the C client strips it before
    calling zk_dispatcher_c_watcher (no zk_dispatcher_set_chroot needed);
    the paths delivered match kazoo's, including the chroot itself as "/"."""
    chroot = "/e2e-chroot"
    writer.create(chroot)
    hosts = server.hosts + chroot
    drv = S.CDriver(driver_exe, hosts, log_dir=tmp_path, name="chroot")
    kz = S.KazooRecorder(hosts).start()
    try:
        drv.cmd("connect")
        drv.wait_state_count("CONNECTED", 1, 15)
        assert drv.rc("exists", "/x", "exists-x") == -101
        assert drv.rc("children", "/", "kids-root") == 0
        kz.client.exists("/x", watch=kz.watcher("exists-x"))
        kz.client.get_children("/", watch=kz.watcher("kids-root"))
        writer.create(f"{chroot}/x")
        for side in (drv, kz):
            side.wait_events(lambda ev: len(ev) >= 3, 15, "two watch events")
        expected = [("exists-x", "CREATED", "CONNECTED", "/x"), ("kids-root", "CHILD", "CONNECTED", "/")]
        assert kz.watches() == expected
        assert drv.watches() == kz.watches()
        assert drv.stats()["adapter_errors"] == 0
    finally:
        kz.stop()
        drv.quit()


# --------------------------------------------------------------------------
# Persistent watches: zkwire AddWatch + our decoder + our dispatcher
# --------------------------------------------------------------------------


class WireFeed:
    """Feeds every notification zkwire receives through zk_notification_decode
    into a dispatcher, and keeps the decoded server stream."""

    def __init__(self, zs: S.ZkStatesLib, d: S.PyDispatcher):
        self.zs, self.d = zs, d
        self.raw: list = []
        self.lock = threading.Lock()

    def __call__(self, frame: bytes) -> None:
        ev = self.zs.decode_notification(frame)
        path = ev.path_str()
        with self.lock:
            self.raw.append((self.zs.name_event(ev.type), self.zs.name_keeper(ev.state), path, ev.zxid))
        self.d.event(ev.type, path, ev.zxid)


def test_persistent_and_recursive_watches_zookeeper_36_semantics(server, lib_path, tmp_path):
    zs = S.ZkStatesLib(lib_path)
    d = S.PyDispatcher(zs)
    feed = WireFeed(zs, d)
    w = zkwire.ZkWire.connect(server.hosts)  # the writer
    zw = zkwire.ZkWire.connect(server.hosts, on_notification=feed)
    try:
        d.session(S.ZK_KEEPER_STATE_CONNECTED)
        d.watch("/pw", S.ZK_WATCH_PERSISTENT, "pw")
        d.watch("/rw", S.ZK_WATCH_PERSISTENT_RECURSIVE, "rw")
        zw.add_watch("/pw", zkwire.ADD_WATCH_PERSISTENT)
        zw.add_watch("/rw", zkwire.ADD_WATCH_PERSISTENT_RECURSIVE)

        w.create("/pw", b"a")
        zw.barrier()  # CREATED /pw has been fed before the next watch exists
        # A one-shot data watch on the same path, in the dispatcher only: for
        # one notification it fires first, then the persistent watch. (Not
        # also on the server: ZooKeeper 3.8.0 keeps one watch mode per
        # connection and path, so a getData watch there would replace the
        # persistent one in the server's data-watch table, ZOOKEEPER-4466,
        # and the server would stop sending CREATED/CHANGED for /pw.)
        d.watch("/pw", S.ZK_WATCH_DATA, "get-pw")
        w.set_data("/pw", b"b")
        w.create("/pw/c")
        w.set_data("/pw/c", b"x")  # not the watched path: nothing
        w.delete("/pw/c")
        w.delete("/pw")
        w.create("/pw")  # still there: it fires again
        w.create("/rw")
        w.create("/rw/a")  # recursive: CREATED of the descendant, no CHILD for /rw
        w.create("/rw/a/b")
        w.set_data("/rw/a/b", b"1")
        w.delete("/rw/a/b")
        w.delete("/rw/a")
        w.set_data("/rw", b"z")
        zw.barrier()  # every notification sent before this has been fed
        d.flush()

        K = "CONNECTED"
        server_stream = [(t, s, p) for t, s, p, _ in feed.raw]
        assert server_stream == [
            ("CREATED", K, "/pw"), ("CHANGED", K, "/pw"), ("CHILD", K, "/pw"), ("CHILD", K, "/pw"),
            ("DELETED", K, "/pw"), ("CREATED", K, "/pw"),
            ("CREATED", K, "/rw"), ("CREATED", K, "/rw/a"), ("CREATED", K, "/rw/a/b"),
            ("CHANGED", K, "/rw/a/b"), ("DELETED", K, "/rw/a/b"), ("DELETED", K, "/rw/a"),
            ("CHANGED", K, "/rw"),
        ]
        delivered = d.events()
        assert delivered[0] == ("STATE", "CONNECTED")
        watch_events = [e[1:5] for e in delivered[1:]]
        assert watch_events == [
            ("pw", "CREATED", K, "/pw"),
            ("get-pw", "CHANGED", K, "/pw"),  # one-shots first ...
            ("pw", "CHANGED", K, "/pw"),      # ... then persistent
            ("pw", "CHILD", K, "/pw"),
            ("pw", "CHILD", K, "/pw"),
            ("pw", "DELETED", K, "/pw"),
            ("pw", "CREATED", K, "/pw"),
            ("rw", "CREATED", K, "/rw"),
            ("rw", "CREATED", K, "/rw/a"),
            ("rw", "CREATED", K, "/rw/a/b"),
            ("rw", "CHANGED", K, "/rw/a/b"),
            ("rw", "DELETED", K, "/rw/a/b"),
            ("rw", "DELETED", K, "/rw/a"),
            ("rw", "CHANGED", K, "/rw"),
        ]
        # The zxid of the notification header reaches the callback unchanged
        # (ZooKeeper 3.8 sends -1 there; 3.9+ sends the change's zxid).
        zxids = [z for *_, z in feed.raw]
        assert [e[5] for e in delivered[1:] if e[1] != "get-pw"] == zxids

        # Connection loss: persistent watches are told (NONE) and kept,
        # one-shots fire once and are dropped (kazoo semantics).
        d.watch("/rw", S.ZK_WATCH_DATA, "get-rw")
        mark = len(d.events())
        sid, passwd = zw.session_id, zw.passwd
        zw.drop()  # the socket only: the session lives on
        d.session(S.ZK_KEEPER_STATE_CONNECTING)
        d.flush()
        none = ("NONE", "CONNECTING", None)
        assert [e[:5] for e in d.events()[mark:]] == [
            ("STATE", "SUSPENDED"),
            ("WATCH", "get-rw") + none,
            ("WATCH", "pw") + none,
            ("WATCH", "rw") + none,
        ]

        # Same session again; the client re-registers its persistent watches
        # (the Java client does it with SetWatches2; AddWatch is equivalent).
        zw = zkwire.ZkWire.connect(server.hosts, session_id=sid, passwd=passwd, on_notification=feed)
        assert zw.session_id == sid
        d.session(S.ZK_KEEPER_STATE_CONNECTED)
        zw.add_watch("/pw", zkwire.ADD_WATCH_PERSISTENT)
        zw.add_watch("/rw", zkwire.ADD_WATCH_PERSISTENT_RECURSIVE)
        d.flush()
        mark = len(d.events())
        w.set_data("/pw", b"again")
        w.set_data("/rw", b"again")  # get-rw is gone: only the recursive watch
        zw.barrier()
        d.flush()
        assert [e[:5] for e in d.events()[mark:]] == [
            ("WATCH", "pw", "CHANGED", K, "/pw"),
            ("WATCH", "rw", "CHANGED", K, "/rw"),
        ]
        assert ("STATE", "CONNECTED") in d.events()[:mark]

        # Session closed: LOST; every watch is told once and dropped.
        zw.close()
        d.session(S.ZK_KEEPER_STATE_CLOSED)
        d.flush()
        tail = [e[:5] for e in d.events()[mark + 2:]]
        assert tail == [("STATE", "LOST"), ("WATCH", "pw", "NONE", "CLOSED", None),
                        ("WATCH", "rw", "NONE", "CLOSED", None)]
        assert [e[1] for e in d.events() if e[0] == "STATE"] == [
            "CONNECTED", "SUSPENDED", "CONNECTED", "LOST"]
    finally:
        zw.drop()
        w.close()
        d.free()


# --------------------------------------------------------------------------
# Stat: C client struct Stat vs kazoo ZnodeStat
# --------------------------------------------------------------------------


KAZOO_PROPERTIES = ("creation_transaction_id", "last_modified_transaction_id", "created", "last_modified",
                    "owner_session_id", "version", "children_version", "acl_version", "data_length",
                    "children_count")
RAW_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeralOwner",
              "dataLength", "numChildren", "pzxid")


def c_properties(fields):
    """The driver's printout of zk_stat_properties_get as kazoo's property values."""
    owner = fields["p.owner_session_id"]
    out = {
        "creation_transaction_id": int(fields["p.creation_transaction_id"]),
        "last_modified_transaction_id": int(fields["p.last_modified_transaction_id"]),
        "created": float.fromhex(fields["p.created"]),  # printed with %a: bit-exact
        "last_modified": float.fromhex(fields["p.last_modified"]),
        "owner_session_id": None if owner == "None" else int(owner),
    }
    for name in ("version", "children_version", "acl_version", "data_length", "children_count"):
        out[name] = int(fields[f"p.{name}"])
    return out


def test_stat_conversions_match_kazoo(server, driver_exe, lib_path, tmp_path):
    zs = S.ZkStatesLib(lib_path)
    base = "/e2e-stat"
    drv = connected_driver(driver_exe, server, tmp_path)
    kz = S.KazooRecorder(server.hosts).start()
    zw = zkwire.ZkWire.connect(server.hosts)
    try:
        c_session, _ = drv.session()
        kz_session = kz.client.client_id[0]
        assert drv.rc("create", base, "-") == 0
        assert drv.rc("create", f"{base}/persistent", "hello") == 0
        assert drv.rc("set", f"{base}/persistent", "hello-again") == 0  # version 1, mtime != ctime
        assert drv.rc("create", f"{base}/c-ephemeral", "mine", "ephemeral") == 0
        kz.client.create(f"{base}/kazoo-ephemeral", b"theirs", ephemeral=True)

        owners = {"persistent": None, "c-ephemeral": c_session, "kazoo-ephemeral": kz_session}
        for name, owner in [("", None)] + list(owners.items()):
            path = f"{base}/{name}" if name else base
            fields = drv.cmd("stat", path)   # zoo_get's struct Stat
            _, kz_stat = kz.client.get(path)  # kazoo's ZnodeStat
            # Field for field, as read by each client.
            assert [int(fields[f]) for f in RAW_FIELDS] == list(kz_stat), path
            # zk_stat_format is kazoo's repr.
            assert fields["repr"] == repr(kz_stat), path
            # zk_stat_properties_get is kazoo's properties, bit for bit.
            ours = c_properties(fields)
            theirs = {p: getattr(kz_stat, p) for p in KAZOO_PROPERTIES}
            assert ours == theirs, path
            assert ours["owner_session_id"] == owner
            assert fields["p.has_owner"] == fields["is_ephemeral"] == ("1" if owner else "0")
            # The jute bytes of the same Stat (zkwire getData) decode to the same repr.
            _, raw = zw.get_data(path)
            assert zs.format_stat_bytes(raw) == repr(kz_stat), path
        # The persistent node's Stat as zoo_wget returns it (with a watch) too.
        got = drv.cmd("get", f"{base}/persistent", "w")
        assert got["data"] == "hello-again"
        assert got["repr"] == repr(kz.client.get(f"{base}/persistent")[1])
    finally:
        zw.close()
        kz.stop()
        drv.quit()
