"""The C and C++ examples (examples-c/) built with their Makefile and run
against a real ZooKeeper 3.8 server.

``live`` (C99) and ``live_cpp`` (C++17) connect through the official C client
with ``zk_dispatcher_c_watcher``, change a node and its children and must
print every expected watch event and state change, in order, and exit 0;
without a server they must give up after their timeout and exit 1.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

import test_e2e_support as S
import zkserver

pytestmark = pytest.mark.zookeeper


@pytest.fixture(scope="module")
def examples(root, lib_path, tmp_path_factory):
    """Runs ``make -C examples-c`` into a scratch OUT against the tested library."""
    S.require_c_client()
    for tool in ("make", "c++"):
        if not shutil.which(tool):
            S.require(f"`{tool}` not found (`apt-get install make g++`)")
    out = tmp_path_factory.mktemp("examples")
    libdir = lib_path.resolve().parent
    cmd = ["make", "-C", str(root / "examples-c"), f"OUT={out}", f"PROFILE={libdir.name}", f"LIBDIR={libdir}",
           "CFLAGS=-O0", "CXXFLAGS=-O0"]  # the warning flags stay: -Werror etc. are not in these
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    print(f"\nmake examples-c: {time.monotonic() - t0:.1f}s")
    for flag in ("-std=c99", "-std=c++17", "-Werror", "-pedantic"):
        assert flag in proc.stdout
    return out


@pytest.fixture(scope="module")
def server():
    S.require_zookeeper()
    with zkserver.ZkServer() as srv:
        yield srv


def run(exe, *args, timeout=60):
    proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def assert_in_order(text, fragments):
    pos = 0
    for fragment in fragments:
        found = text.find(fragment, pos)
        assert found >= 0, f"{fragment!r} missing (after position {pos}) in:\n{text}"
        pos = found + len(fragment)


def expected_live_output(node):
    child = f"{node}/child"

    def ev(label, type_, path, state="CONNECTED"):
        shown = f"'{path}'" if path else "None"
        return f"watch {label:<18} WatchedEvent(type='{type_}', state='{state}', path={shown})"

    return [
        "listener KazooState.CONNECTED",
        f"{node} holds",
        "ZnodeStat(czxid=",
        "owner_session_id=None",
        f"set {node}",
        ev("data", "CHANGED", node), ev("persistent", "CHANGED", node), ev("recursive", "CHANGED", node),
        f"create {child}",
        ev("child", "CHILD", node), ev("persistent", "CHILD", node),
        f"delete {child}",
        ev("child-data", "DELETED", child), ev("recursive", "DELETED", child),
        ev("child-again", "CHILD", node), ev("persistent", "CHILD", node),
        f"{node} now:",
        "closing",
        "listener KazooState.LOST",
        ev("persistent", "NONE", None, "CLOSED"), ev("recursive", "NONE", None, "CLOSED"),
        "done",
    ]


def test_demo_runs(examples):
    rc, out, err = run(examples / "demo")
    assert rc == 0, err
    assert "ZnodeStat(czxid=" in out


@pytest.mark.parametrize("program", ["live", "live_cpp"])
def test_live_example_against_real_server(examples, server, program):
    node = f"/zk-states-{program}"
    t0 = time.monotonic()
    rc, out, err = run(examples / program, server.hosts, node)
    print(f"\n{program}: {time.monotonic() - t0:.2f}s")
    assert rc == 0, f"exit {rc}\nstdout:\n{out}\nstderr:\n{err}"
    assert f"created {node}" in out
    assert_in_order(out, expected_live_output(node))
    # Each watch event exactly once (no duplicates from the C client's
    # per-watcher copies of session events, which the dispatcher ignores).
    assert out.count("WatchedEvent(") == 11
    assert out.count("KazooState.") == 2
    # Runs again: the node is found and reused.
    rc, out, err = run(examples / program, server.hosts, node)
    assert rc == 0, err
    assert f"found {node}" in out
    assert_in_order(out, expected_live_output(node))


@pytest.mark.parametrize("program", ["live", "live_cpp"])
def test_live_example_fails_without_server(examples, program):
    dead = zkserver._allocate_ports(1)[0]  # nobody listens there
    t0 = time.monotonic()
    rc, out, err = run(examples / program, f"127.0.0.1:{dead}", "/x", 1, timeout=30)
    assert rc == 1, out
    assert "FAILED" in out and "not connected" in err
    assert time.monotonic() - t0 < 15
    rc, _, err = run(examples / program, "127.0.0.1:2181", "relative/path")
    assert rc == 2 and "usage" in err
