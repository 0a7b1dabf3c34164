"""End to end against a real three-server ZooKeeper 3.8 ensemble: read-only mode.

Two servers are stopped; the survivor serves read-only. The official C client
(``ZOO_READONLY`` in ``zookeeper_init``'s flags) reaches ``ZOO_READONLY_STATE``,
which ``zk_dispatcher_c_watcher`` turns into keeper state ``CONNECTED_RO``: a
kazoo-mode dispatcher says ``CONNECTED`` (as kazoo's ``KazooState`` does, with
``client_state`` ``CONNECTED_RO``), a Curator-mode dispatcher
(``ZK_DISPATCHER_CURATOR_STATES``) says ``READ_ONLY``. Then the quorum is
restored and everyone is read-write again.

Observed and asserted (ZooKeeper 3.8 needs local sessions for read-only
mode, see ``zkserver.ZkEnsemble``):

* losing the quorum expires every session (a read-only server only accepts
  new local sessions): kazoo ``SUSPENDED, LOST, CONNECTED`` (read-only, new
  session), sometimes twice over (see ``expiry_cycles``); the C client
  ``CONNECTING`` then ``ZOO_EXPIRED_SESSION_STATE``, and the application
  makes a new handle, which connects read-only;
* regaining the quorum: the C client, which has only seen a read-only
  server with this handle, asks for a brand-new session (``sessionId`` 0) and
  gets no expiry: ``CONNECTING, CONNECTED``; kazoo re-presents its read-only
  session, which is gone: ``SUSPENDED, LOST, CONNECTED``.

The dispatcher's listener calls are also checked against kazoo's own
``_session_callback`` replaying the C client's raw states.
"""

from __future__ import annotations

import time

import pytest

import test_e2e_support as S
import zkserver

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]

ZNOTREADONLY = -119


def expiry_cycles(states) -> int:
    """How many times ``states`` repeats SUSPENDED, LOST, CONNECTED (-1: another shape).

    kazoo's sequence while the quorum goes away depends on timing: when it
    first reconnects to the survivor while that still follows the (dying)
    quorum, it gets a new read-write session there, which it loses again
    when the survivor turns read-only: two cycles instead of one."""
    cycle = ["SUSPENDED", "LOST", "CONNECTED"]
    if not states or len(states) % 3 or any(states[i:i + 3] != cycle for i in range(0, len(states), 3)):
        return -1
    return len(states) // 3


@pytest.fixture(scope="module")
def driver_exe(build_dir, include_dir, lib_path):
    return S.build_driver(build_dir, include_dir, lib_path)


def test_read_only_mode_c_client_vs_kazoo(driver_exe, tmp_path):
    S.require_zookeeper()
    S.require_kazoo()
    from kazoo.exceptions import NotReadOnlyCallError

    timings = {}
    t0 = time.monotonic()
    with zkserver.ZkEnsemble() as ens:
        timings["ensemble start"] = time.monotonic() - t0
        with S.KazooRecorder(ens.hosts) as setup:
            setup.client.create("/ro", b"v1")

        def driver(name, options):
            drv = S.CDriver(driver_exe, ens.hosts, options=options, read_only=True, tap=True,
                            timeout_ms=10000, name=name, log_dir=tmp_path)
            drv.cmd("connect")
            return drv

        kazoo_mode = driver("kazoo-mode", 0)
        curator = driver("curator-mode", 1)  # ZK_DISPATCHER_CURATOR_STATES
        kz = S.KazooRecorder(ens.hosts, read_only=True)
        try:
            kz.start()
            for side in (kazoo_mode, curator, kz):
                side.wait_state_count("CONNECTED", 1, 20)
            assert kazoo_mode.zstate() == {"zoo_state": "3", "kazoo": "CONNECTED", "keeper": "CONNECTED"}

            # -- lose the quorum ------------------------------------------------
            t1 = time.monotonic()
            ens.stop_server(1)
            ens.stop_server(2)
            ens.wait_for_mode(0, {"read-only"}, timeout=40)
            timings["read-only after"] = time.monotonic() - t1
            for drv in (kazoo_mode, curator):
                drv.wait_state_count("LOST", 1, 30)
                S.wait_until(lambda: drv.zstate()["zoo_state"] == "-112", 10, "ZOO_EXPIRED_SESSION_STATE")
                drv.cmd("reconnect")  # an expired C handle never comes back: make a new one
            for drv in (kazoo_mode, curator):  # the new handle's first state change
                drv.wait_events(lambda ev: len([e for e in ev if e[0] == "STATE"]) >= 4, 30, "read-only")
            S.wait_until(lambda: str(kz.client.client_state) == "CONNECTED_RO", 30, "kazoo CONNECTED_RO")

            # What each side says in read-only mode.
            assert kazoo_mode.zstate() == {"zoo_state": "5", "kazoo": "CONNECTED", "keeper": "CONNECTED_RO"}
            assert curator.zstate() == {"zoo_state": "5", "kazoo": "READ_ONLY", "keeper": "CONNECTED_RO"}
            assert str(kz.client.state) == "CONNECTED"
            assert kazoo_mode.states() == ["CONNECTED", "SUSPENDED", "LOST", "CONNECTED"]
            assert curator.states() == ["CONNECTED", "SUSPENDED", "LOST", "READ_ONLY"]
            kz.wait_state_count("CONNECTED", 2, 10)
            phase1 = kz.states()
            assert expiry_cycles(phase1[1:]) >= 1, phase1
            # Reads work, writes are refused, on both clients.
            assert kazoo_mode.cmd("get", "/ro", "ro-watch")["data"] == "v1"
            assert kazoo_mode.rc("create", "/ro/child", "-") == ZNOTREADONLY
            assert kz.client.get("/ro")[0] == b"v1"
            with pytest.raises(NotReadOnlyCallError):
                kz.client.create("/ro/child")

            # -- regain the quorum ----------------------------------------------
            t2 = time.monotonic()
            ens.start_server(1)  # waits for the quorum
            for drv in (kazoo_mode, curator):  # SUSPENDED, then connected read-write
                drv.wait_events(lambda ev: len([e for e in ev if e[0] == "STATE"]) >= 6, 40, "read-write")
            S.wait_until(lambda: str(kz.client.client_state) == "CONNECTED", 40, "kazoo read-write")
            kz.wait_state_count("CONNECTED", phase1.count("CONNECTED") + 1, 10)
            timings["read-write again after"] = time.monotonic() - t2

            assert kazoo_mode.zstate() == {"zoo_state": "3", "kazoo": "CONNECTED", "keeper": "CONNECTED"}
            assert curator.zstate() == {"zoo_state": "3", "kazoo": "RECONNECTED", "keeper": "CONNECTED"}
            # The C client's raw states, and kazoo's machine fed with them.
            raw = [S.C_CLIENT_STATES[s] for s in kazoo_mode.raw_states()]
            assert raw == ["CONNECTED", "CONNECTING", "EXPIRED_SESSION",  # quorum lost
                           "CONNECTED_RO",                               # new handle, read-only
                           "CONNECTING", "CONNECTED"]                    # quorum back, new session
            assert [S.C_CLIENT_STATES[s] for s in curator.raw_states()] == raw
            assert kazoo_mode.states() == S.kazoo_reference_states(raw) == [
                "CONNECTED", "SUSPENDED", "LOST", "CONNECTED", "SUSPENDED", "CONNECTED"]
            assert curator.states() == [
                "CONNECTED", "SUSPENDED", "LOST", "READ_ONLY", "SUSPENDED", "RECONNECTED"]
            # The read-only watch was fired with NONE on the suspension and dropped.
            assert kazoo_mode.watches() == [("ro-watch", "NONE", "CONNECTING", None)]
            # kazoo presented its read-only session again and lost it.
            assert expiry_cycles(kz.states()[len(phase1):]) >= 1, kz.states()
            print(f"\nkazoo listener: {kz.states()}")
            # Writable again.
            assert kazoo_mode.rc("create", "/ro/child", "-") == 0
            kz.client.create("/ro/kazoo-child")
            for drv in (kazoo_mode, curator):
                assert drv.stats()["adapter_errors"] == 0
        finally:
            kz.stop()
            kazoo_mode.quit()
            curator.quit()
    print("\n" + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
