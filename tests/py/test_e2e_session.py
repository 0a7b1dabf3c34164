"""End to end against a real ZooKeeper 3.8: connection loss and session expiry.

The official C client (a compiled driver, ``zk_dispatcher_c_watcher`` feeding
our dispatcher) and kazoo 2.11 watch the same nodes on the same server; the
server is restarted (gracefully, then killed and started on the same port),
then each client's session is expired by force (a second connection attaches
to the session with its id and password and closes it). What our listeners and
watches receive is compared with kazoo's listener and watch functions, and the
C client's raw session states (logged by the driver's tap) are replayed through
kazoo's own ``_session_callback`` as a cross-check.

Observed and asserted:

* restart: kazoo and ours both give ``SUSPENDED``, every one-shot watch fired
  with ``NONE``/``CONNECTING``/None and dropped, then ``CONNECTED``; the C client
  re-sends its server watches (SetWatches) and forwards the next change, which
  the dispatcher (kazoo semantics) has dropped: counted as unmatched. With
  ``ZK_DISPATCHER_KEEP_WATCHES`` (Java semantics) the watch stays and fires.
* expiry: kazoo ``SUSPENDED, LOST, CONNECTED`` (it makes a new session itself);
  the C client reports ``ZOO_EXPIRED_SESSION_STATE`` and then never reconnects
  that handle: the application must ``zookeeper_close`` it and
  ``zookeeper_init`` a new one (same dispatcher), after which ours gives the same
  ``SUSPENDED, LOST, CONNECTED``.
"""

from __future__ import annotations

import time

import pytest

import test_e2e_support as S
import zkserver
import zkwire

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]

# Long sessions: a restarted server must not expire them while a client
# waits out a connection attempt made during the server's start-up.
SESSION_TIMEOUT_MS = 30000


@pytest.fixture(scope="module")
def server():
    S.require_zookeeper()
    S.require_kazoo()
    with zkserver.ZkServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def driver_exe(build_dir, include_dir, lib_path):
    return S.build_driver(build_dir, include_dir, lib_path)


def start_driver(exe, hosts, tmp_path, name, **kwargs) -> S.CDriver:
    drv = S.CDriver(exe, hosts, timeout_ms=SESSION_TIMEOUT_MS, name=name, log_dir=tmp_path, **kwargs)
    drv.cmd("connect")
    drv.wait_state_count("CONNECTED", 1, 15)
    return drv


def replayed_through_kazoo(drv: S.CDriver) -> list:
    """The driver's raw C client session states, through kazoo's own machine."""
    return S.kazoo_reference_states([S.C_CLIENT_STATES[s] for s in drv.raw_states()])


def register_same_watches(drv: S.CDriver, kz: S.KazooRecorder, watches) -> None:
    for verb, path, tag in watches:
        if verb == "get":
            assert drv.rc("get", path, tag) == 0
            kz.client.get(path, watch=kz.watcher(tag))
        elif verb == "exists":
            assert drv.rc("exists", path, tag) in (0, -101)
            kz.client.exists(path, watch=kz.watcher(tag))
        else:
            assert drv.rc("children", path, tag) == 0
            kz.client.get_children(path, watch=kz.watcher(tag))


def test_server_restart_suspends_and_fires_one_shot_watches_like_kazoo(server, driver_exe, tmp_path):
    base = "/e2e-restart"
    a, b, none = f"{base}/a", f"{base}/b", f"{base}/none"
    # Every client goes through a proxy that refuses connections while the
    # server restarts. ZooKeeper 3.8.0 mishandles a connection that arrives
    # in the ~0.1 s between binding its port and loading its database (a
    # NullPointerException in ZKDatabase.removeCnxn while closing it): the
    # connection is neither answered nor closed, and the client hangs until
    # its read timeout, often long enough to expire its session.
    proxy = S.GateProxy(("127.0.0.1", server.port))
    drv = start_driver(driver_exe, proxy.hosts, tmp_path, "kazoo-mode", tap=True)
    keep = start_driver(driver_exe, proxy.hosts, tmp_path, "keep-watches", options=2)  # ZK_DISPATCHER_KEEP_WATCHES
    kz = S.KazooRecorder(proxy.hosts, timeout=SESSION_TIMEOUT_MS / 1000).start()
    writer_recorder = S.KazooRecorder(proxy.hosts, timeout=SESSION_TIMEOUT_MS / 1000).start()
    writer = writer_recorder.client
    try:
        for p in (base, a, b):
            writer.create(p, b"0")
        # One watch per path and kind, each path's watches registered
        # together: kazoo's reset order (dict by dict, set order within) is
        # then fully determined. (The order across interleaved paths is a
        # known difference, see test_kazoo_dispatch_diff.py.)
        watches = [("children", a, "kids-a"), ("children", b, "kids-b"), ("get", a, "get-a"),
                   ("get", b, "get-b"), ("exists", none, "exists-none")]
        register_same_watches(drv, kz, watches)
        assert keep.rc("get", a, "get-a") == 0
        session_before = drv.session()[0]

        rounds = [("graceful restart", server.restart), ("kill -9 and start", lambda: (server.kill(), server.start()))]
        for i, (what, bounce) in enumerate(rounds, start=1):
            t0 = time.monotonic()
            proxy.pause()
            try:
                bounce()  # returns once the server serves again
            finally:
                proxy.resume()
            for side in (drv, keep, kz, writer_recorder):
                side.wait_state_count("CONNECTED", i + 1, 60)
            print(f"\n{what}: everyone reconnected after {time.monotonic() - t0:.2f}s")

        none_ev = ("NONE", "CONNECTING", None)
        expected = [("STATE", "CONNECTED"), ("STATE", "SUSPENDED")] + [
            ("WATCH", tag) + none_ev for tag in ("kids-a", "kids-b", "get-a", "get-b", "exists-none")
        ] + [("STATE", "CONNECTED"), ("STATE", "SUSPENDED"), ("STATE", "CONNECTED")]
        assert kz.events() == expected, f"kazoo: {kz.events()}"
        assert drv.events() == kz.events()
        assert drv.states() == replayed_through_kazoo(drv) == kz.states()
        assert drv.session()[0] == session_before  # the session survived both restarts
        # Java semantics: the watch was told twice and kept.
        assert keep.events() == [("STATE", "CONNECTED"), ("STATE", "SUSPENDED"), ("WATCH", "get-a") + none_ev,
                                 ("STATE", "CONNECTED"), ("STATE", "SUSPENDED"), ("WATCH", "get-a") + none_ev,
                                 ("STATE", "CONNECTED")]

        # After the reconnection: the C client re-registered its server
        # watches, so the server sends CHANGED for `a` to both C clients;
        # kazoo dropped its watches and re-registers none.
        unmatched = drv.stats()["events_unmatched"]
        writer.set(a, b"1")
        end = f"{base}/end"
        register_same_watches(drv, kz, [("exists", end, "end")])
        assert keep.rc("exists", end, "end") in (0, -101)
        writer.create(end)
        for side in (drv, keep, kz):
            side.wait_events(lambda ev: ev[-1][:2] == ("WATCH", "end"), 15, "the sentinel")
        K = "CONNECTED"
        assert kz.events()[len(expected):] == [("WATCH", "end", "CREATED", K, end)]
        assert drv.events()[len(expected):] == kz.events()[len(expected):]
        assert drv.stats()["events_unmatched"] == unmatched + 1  # delivered by the C client, dropped by us
        assert keep.events()[7:] == [("WATCH", "get-a", "CHANGED", K, a), ("WATCH", "end", "CREATED", K, end)]
        assert drv.stats()["adapter_errors"] == keep.stats()["adapter_errors"] == 0
    finally:
        writer_recorder.stop()
        kz.stop()
        keep.quit()
        drv.quit()
        proxy.close()


def force_expiry(side, hosts: str, proxy: S.GateProxy, session_id: int, passwd: bytes) -> None:
    """Expire a session for real: with the client's proxy refusing new
    connections, attach a second connection to the session (the server drops
    the client's connection) and close the session with it; then let the
    client reconnect, to be told that its session has expired."""
    proxy.pause()
    try:
        suspended = side.events().count(("STATE", "SUSPENDED"))
        zkwire.ZkWire.connect(hosts, session_id=session_id, passwd=passwd).close()
        side.wait_state_count("SUSPENDED", suspended + 1, 15)
    finally:
        proxy.resume()


def test_forced_session_expiry_lost_then_new_session_like_kazoo(server, driver_exe, tmp_path):
    base = "/e2e-expiry"
    a = f"{base}/a"
    upstream = ("127.0.0.1", server.port)
    c_proxy, kz_proxy = S.GateProxy(upstream), S.GateProxy(upstream)
    drv = S.CDriver(driver_exe, c_proxy.hosts, timeout_ms=SESSION_TIMEOUT_MS, name="expiry", tap=True,
                    log_dir=tmp_path)
    kz = S.KazooRecorder(kz_proxy.hosts, timeout=SESSION_TIMEOUT_MS / 1000)
    try:
        drv.cmd("connect")
        drv.wait_state_count("CONNECTED", 1, 15)
        kz.start()
        kz.client.ensure_path(a)
        eph = f"{base}/ephemerals"  # not watched: each expiry deletes one of them
        kz.client.ensure_path(eph)
        assert drv.rc("create", f"{eph}/c", "-", "ephemeral") == 0
        kz.client.create(f"{eph}/kazoo", ephemeral=True)
        register_same_watches(drv, kz, [("children", a, "kids"), ("get", a, "get-a")])
        c_sid, c_pw = drv.session()
        kz_sid, kz_pw = kz.client.client_id

        force_expiry(drv, server.hosts, c_proxy, c_sid, c_pw)
        force_expiry(kz, server.hosts, kz_proxy, kz_sid, kz_pw)
        drv.wait_state_count("LOST", 1, 30)
        # The C client's handle is dead for good: ZOO_EXPIRED_SESSION_STATE.
        assert drv.zstate() == {"zoo_state": "-112", "kazoo": "LOST", "keeper": "EXPIRED_SESSION"}
        # kazoo reconnects by itself with a new session.
        kz.wait_state_count("CONNECTED", 2, 30)
        # The C application must close the handle and create a new one.
        drv.cmd("reconnect")
        drv.wait_state_count("CONNECTED", 2, 30)

        none_ev = ("NONE", "CONNECTING", None)
        expected = [("STATE", "CONNECTED"), ("STATE", "SUSPENDED"), ("WATCH", "kids") + none_ev,
                    ("WATCH", "get-a") + none_ev, ("STATE", "LOST"), ("STATE", "CONNECTED")]
        assert kz.events() == expected, f"kazoo: {kz.events()}"
        assert drv.events() == kz.events()
        # Raw C client states: CONNECTED, CONNECTING, EXPIRED; then the new
        # handle's CONNECTED.
        assert [S.C_CLIENT_STATES[s] for s in drv.raw_states()] == [
            "CONNECTED", "CONNECTING", "EXPIRED_SESSION", "CONNECTED"]
        assert drv.states() == replayed_through_kazoo(drv) == kz.states()

        assert drv.session()[0] != c_sid and kz.client.client_id[0] != kz_sid
        # Both sessions' ephemeral nodes are gone.
        assert kz.client.get_children(eph) == []
        assert drv.stats()["adapter_errors"] == 0
    finally:
        kz.stop()
        drv.quit()
        c_proxy.close()
        kz_proxy.close()
