"""Shared helpers of the real-ZooKeeper end-to-end tests (``test_e2e_*.py``).

This module holds no tests (pytest collects it and finds none); it is named
``test_e2e_*`` only so that it lives with the suites that import it.

* :func:`require_zookeeper` skips a test when Java/ZooKeeper is missing, and
  fails it instead when ``$CI`` is set (or ``ZKSERVER_REQUIRED=1``): the CI
  test command installs them, so missing means broken.
* :data:`DRIVER_C` is a small C program built against ``libzookeeper_mt`` and
  ``libzk_states``: the official C client with ``zk_dispatcher_c_watcher`` as
  its global watcher and as every per-node watcher. :class:`CDriver` runs it,
  sends it commands on stdin and collects the machine-readable log of every
  dispatcher callback it prints.
* :class:`KazooRecorder` is a kazoo 2.11 client recording its listener calls
  and its watch callbacks in the same shape, so both can be compared.
* :class:`ZkStatesLib` is a minimal raw ctypes binding of the zk-states
  functions the tests call directly (no dependency on the Python package).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

import zkserver

# --------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------

ZOOKEEPER_H = Path("/usr/include/zookeeper/zookeeper.h")


def _must_have() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("ZKSERVER_REQUIRED") == "1"


def require(condition_reason: Optional[str]) -> None:
    """Skip (or fail under CI) with ``condition_reason`` if it is not None."""
    if condition_reason is None:
        return
    if _must_have():
        pytest.fail(f"real-ZooKeeper end-to-end test cannot run ($CI or ZKSERVER_REQUIRED=1 is set): "
                    f"{condition_reason}")
    pytest.skip(f"real-ZooKeeper end-to-end test skipped: {condition_reason}")


def require_zookeeper() -> None:
    """A ZooKeeper server (Java + the Debian ``zookeeper`` jars) must be runnable."""
    require(zkserver.unavailable_reason())


def require_c_client() -> None:
    """The official C client (``libzookeeper-mt-dev``) and a C compiler must exist."""
    if not ZOOKEEPER_H.is_file():
        require(f"{ZOOKEEPER_H} not found (`apt-get install libzookeeper-mt-dev`)")
    if not (shutil.which("cc") or shutil.which("gcc")):
        require("no C compiler (`apt-get install gcc`)")


def require_kazoo() -> None:
    try:
        import kazoo.client  # noqa: F401
    except ImportError as exc:
        require(f"kazoo not importable ({exc}); pip install kazoo==2.11.0")


# --------------------------------------------------------------------------
# Waiting
# --------------------------------------------------------------------------


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    """Poll ``predicate`` until it is truthy (return its value) or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# A TCP proxy that can refuse new connections
# --------------------------------------------------------------------------


class GateProxy:
    """Forwards 127.0.0.1:``port`` to a server. While paused, new
    connections are closed at once (existing ones keep flowing), so a client
    behind it cannot reconnect: used to expire a session without the owning
    client racing to take it back in between."""

    def __init__(self, upstream: Tuple[str, int]):
        self.upstream = upstream
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # A port below the ephemeral range (see zkserver's notes on ports).
        self.port = zkserver._allocate_ports(1)[0]
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        self.hosts = f"127.0.0.1:{self.port}"
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self._socks: List[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept_loop, name="gate-proxy", daemon=True).start()

    def pause(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self._open.is_set() or self._closed:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            try:
                sock.close()
            except OSError:
                pass


# --------------------------------------------------------------------------
# The C driver
# --------------------------------------------------------------------------

DRIVER_C = r"""
/*
 * zkdriver: drives the official ZooKeeper C client (libzookeeper-mt) for the
 * zk-states end-to-end tests. zk_dispatcher_c_watcher is the global watcher
 * and every per-node watcher (context: the dispatcher); every dispatcher
 * callback is logged to stdout as one machine-readable line:
 *
 *   E STATE <seq> <KazooState>
 *   E WATCH <tag> <seq> <EventType> <KeeperState> <path|None>
 *
 * Commands come one per line on stdin, "<id> <verb> <args...>", and are
 * answered with "R <id> OK ..." or "R <id> ERR ...".
 *
 * Usage: zkdriver HOSTS [options] [flags] [timeout_ms]
 *   options: zk_dispatcher_new_with options (0 kazoo, 1 Curator states, 2 keep watches)
 *   flags:   1: pass ZOO_READONLY to zookeeper_init;
 *            2: "tap": the global watcher logs each raw C client session
 *               event ("E RAW <type> <state>") and then calls
 *               zk_dispatcher_c_watcher; without it zk_dispatcher_c_watcher
 *               itself is the global watcher.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zookeeper/zookeeper.h>

#include "zk_states.h"

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static zk_dispatcher *d;
static zhandle_t *zh;
static const char *hosts;
static int zk_flags;
static int tap;
static int timeout_ms = 10000;

static void emit(const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&out_lock);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

static void on_watch(const zk_watched_event *ev, void *user_data) {
    const char *type = zk_event_type_name(ev->type);
    const char *state = zk_keeper_state_name(ev->state);
    emit("E WATCH %s %" PRIu64 " %s %s %s", (const char *)user_data, zk_dispatch_current_seq(),
         type ? type : "?", state ? state : "?", ev->path ? ev->path : "None");
}

static bool on_state(zk_kazoo_state state, void *user_data) {
    const char *name = zk_kazoo_state_name(state);
    (void)user_data;
    emit("E STATE %" PRIu64 " %s", zk_dispatch_current_seq(), name ? name : "?");
    return false;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static int add_watch(const char *path, int32_t kind, const char *tag, uint64_t *id) {
    char *copy = dup_str(tag);
    int32_t rc = zk_watch_add(d, path, kind, on_watch, copy, free, id);
    if (rc != ZK_OK) free(copy);
    return rc;
}

static void stat_fields(const struct Stat *st, char *out, size_t cap) {
    /* The C client's struct Stat is passed as a const zk_stat *: same layout. */
    const zk_stat *zs = (const zk_stat *)st;
    zk_stat_properties p;
    char repr[ZK_STAT_FORMAT_MAX + 1];
    char owner[32];
    if (zk_stat_properties_get(zs, &p) != ZK_OK) { snprintf(out, cap, "props_error"); return; }
    zk_stat_format(zs, repr, sizeof repr);
    if (p.has_owner) snprintf(owner, sizeof owner, "%" PRId64, p.owner_session_id);
    else snprintf(owner, sizeof owner, "None");
    snprintf(out, cap,
             "czxid=%" PRId64 " mzxid=%" PRId64 " ctime=%" PRId64 " mtime=%" PRId64
             " version=%d cversion=%d aversion=%d ephemeralOwner=%" PRId64
             " dataLength=%d numChildren=%d pzxid=%" PRId64
             " p.creation_transaction_id=%" PRId64 " p.last_modified_transaction_id=%" PRId64
             " p.created=%a p.last_modified=%a p.owner_session_id=%s p.version=%d"
             " p.children_version=%d p.acl_version=%d p.data_length=%d p.children_count=%d"
             " p.has_owner=%d is_ephemeral=%d repr=%s",
             (int64_t)st->czxid, (int64_t)st->mzxid, (int64_t)st->ctime, (int64_t)st->mtime,
             st->version, st->cversion, st->aversion, (int64_t)st->ephemeralOwner,
             st->dataLength, st->numChildren, (int64_t)st->pzxid,
             p.creation_transaction_id, p.last_modified_transaction_id, p.created,
             p.last_modified, owner, p.version, p.children_version, p.acl_version,
             p.data_length, p.children_count, (int)p.has_owner,
             (int)zk_stat_is_ephemeral(zs), repr);
}

static void tap_watcher(zhandle_t *h, int type, int state, const char *path, void *ctx) {
    emit("E RAW %d %d", type, state);
    zk_dispatcher_c_watcher(h, type, state, path, ctx);
}

static int connect_handle(void) {
    zh = zookeeper_init(hosts, tap ? tap_watcher : zk_dispatcher_c_watcher, timeout_ms, 0, d, zk_flags);
    return zh ? 0 : -1;
}

static const char *data_arg(const char *s) { return strcmp(s, "-") == 0 ? "" : s; }

static void command(char *line) {
    char *save = NULL;
    char *id = strtok_r(line, " \t\r\n", &save);
    char *verb = id ? strtok_r(NULL, " \t\r\n", &save) : NULL;
    char *a1 = verb ? strtok_r(NULL, " \t\r\n", &save) : NULL;
    char *a2 = a1 ? strtok_r(NULL, " \t\r\n", &save) : NULL;
    char *a3 = a2 ? strtok_r(NULL, " \t\r\n", &save) : NULL;
    static char buf[4096];
    static char text[2048];
    struct Stat st;
    uint64_t wid = 0;
    int rc;
    if (!verb) return;
    if (!zh && strcmp(verb, "connect") && strcmp(verb, "reconnect") && strcmp(verb, "zstate")
        && strcmp(verb, "flush") && strcmp(verb, "stats") && strcmp(verb, "close")) {
        emit("R %s ERR no handle", id);
        return;
    }
    if (!strcmp(verb, "connect")) {
        if (connect_handle()) emit("R %s ERR errno=%d", id, errno);
        else emit("R %s OK", id);
    } else if (!strcmp(verb, "reconnect")) {
        /* What an application must do after ZOO_EXPIRED_SESSION_STATE: the C
         * client never reconnects an expired handle; close it, make a new one. */
        if (zh) zookeeper_close(zh);
        zh = NULL;
        if (connect_handle()) emit("R %s ERR errno=%d", id, errno);
        else emit("R %s OK", id);
    } else if (!strcmp(verb, "close")) {
        /* The C client reports no final state: feed CLOSED ourselves. */
        if (zh) zookeeper_close(zh);
        zh = NULL;
        rc = zk_dispatcher_session(d, ZK_KEEPER_STATE_CLOSED);
        emit("R %s OK rc=%d", id, rc);
    } else if (!strcmp(verb, "get") && a2) {
        int len = (int)sizeof buf - 1;
        /* Register with the dispatcher first: no event can slip in between. */
        if ((rc = add_watch(a1, ZK_WATCH_DATA, a2, &wid)) != ZK_OK) { emit("R %s ERR zk=%d", id, rc); return; }
        rc = zoo_wget(zh, a1, zk_dispatcher_c_watcher, d, buf, &len, &st);
        if (rc != ZOK) { zk_watch_remove(d, wid); emit("R %s OK rc=%d", id, rc); return; }
        buf[len < 0 ? 0 : len] = 0;
        stat_fields(&st, text, sizeof text);
        emit("R %s OK rc=0 data=%s %s", id, len <= 0 ? "-" : buf, text);
    } else if (!strcmp(verb, "exists") && a2) {
        if ((rc = add_watch(a1, ZK_WATCH_DATA, a2, &wid)) != ZK_OK) { emit("R %s ERR zk=%d", id, rc); return; }
        rc = zoo_wexists(zh, a1, zk_dispatcher_c_watcher, d, &st);
        /* An exists watch is also set when the node does not exist (ZNONODE). */
        if (rc != ZOK && rc != ZNONODE) zk_watch_remove(d, wid);
        emit("R %s OK rc=%d", id, rc);
    } else if (!strcmp(verb, "children") && a2) {
        struct String_vector kids;
        if ((rc = add_watch(a1, ZK_WATCH_CHILD, a2, &wid)) != ZK_OK) { emit("R %s ERR zk=%d", id, rc); return; }
        rc = zoo_wget_children(zh, a1, zk_dispatcher_c_watcher, d, &kids);
        if (rc != ZOK) { zk_watch_remove(d, wid); emit("R %s OK rc=%d", id, rc); return; }
        emit("R %s OK rc=0 count=%d", id, kids.count);
        deallocate_String_vector(&kids);
    } else if (!strcmp(verb, "create") && a2) {
        int flags = (a3 && !strcmp(a3, "ephemeral")) ? ZOO_EPHEMERAL : 0;
        const char *data = data_arg(a2);
        rc = zoo_create(zh, a1, data, (int)strlen(data), &ZOO_OPEN_ACL_UNSAFE, flags, buf, sizeof buf);
        emit("R %s OK rc=%d", id, rc);
    } else if (!strcmp(verb, "set") && a2) {
        const char *data = data_arg(a2);
        rc = zoo_set(zh, a1, data, (int)strlen(data), -1);
        emit("R %s OK rc=%d", id, rc);
    } else if (!strcmp(verb, "delete") && a1) {
        rc = zoo_delete(zh, a1, -1);
        emit("R %s OK rc=%d", id, rc);
    } else if (!strcmp(verb, "stat") && a1) {
        int len = (int)sizeof buf - 1;
        rc = zoo_get(zh, a1, 0, buf, &len, &st);
        if (rc != ZOK) { emit("R %s OK rc=%d", id, rc); return; }
        stat_fields(&st, text, sizeof text);
        emit("R %s OK rc=0 %s", id, text);
    } else if (!strcmp(verb, "session")) {
        const clientid_t *cid = zoo_client_id(zh);
        char hex[33];
        int i;
        for (i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", (unsigned char)cid->passwd[i]);
        emit("R %s OK session_id=%" PRId64 " passwd=%s", id, (int64_t)cid->client_id, hex);
    } else if (!strcmp(verb, "zstate")) {
        zk_kazoo_state ks;
        zk_keeper_state kp;
        zk_dispatcher_state(d, &ks, &kp);
        emit("R %s OK zoo_state=%d kazoo=%s keeper=%s", id, zh ? zoo_state(zh) : 999,
             zk_kazoo_state_name(ks), zk_keeper_state_name(kp));
    } else if (!strcmp(verb, "flush")) {
        rc = zk_dispatcher_flush(d);
        emit("R %s OK rc=%d", id, rc);
    } else if (!strcmp(verb, "stats")) {
        zk_dispatcher_stats s;
        zk_dispatcher_stats_get(d, &s);
        emit("R %s OK events_fed=%" PRIu64 " events_matched=%" PRIu64 " events_unmatched=%" PRIu64
             " events_ignored=%" PRIu64 " sessions_fed=%" PRIu64 " watches=%" PRIu64
             " adapter_errors=%" PRIu64 " watch_calls=%" PRIu64 " listener_calls=%" PRIu64,
             id, s.events_fed, s.events_matched, s.events_unmatched, s.events_ignored,
             s.sessions_fed, s.watches, s.adapter_errors, s.watch_calls, s.listener_calls);
    } else {
        emit("R %s ERR unknown command %s", id, verb);
    }
}

int main(int argc, char **argv) {
    uint64_t lid;
    unsigned options = 0;
    char line[1024];
    int32_t rc;
    if (argc < 2) { fprintf(stderr, "usage: zkdriver HOSTS [options] [flags] [timeout_ms]\n"); return 2; }
    hosts = argv[1];
    if (argc > 2) options = (unsigned)strtoul(argv[2], NULL, 10);
    if (argc > 3 && (atoi(argv[3]) & 1)) zk_flags |= ZOO_READONLY;
    if (argc > 3 && (atoi(argv[3]) & 2)) tap = 1;
    if (argc > 4) timeout_ms = atoi(argv[4]);
    zoo_set_debug_level(getenv("ZKDRIVER_DEBUG") ? ZOO_LOG_LEVEL_DEBUG : ZOO_LOG_LEVEL_WARN);
    if ((rc = zk_dispatcher_new_with(options, 0, &d)) != ZK_OK) {
        fprintf(stderr, "zk_dispatcher_new_with: %s\n", zk_status_message(rc));
        return 1;
    }
    if ((rc = zk_listener_add(d, on_state, NULL, NULL, &lid)) != ZK_OK) return 1;
    emit("READY");
    while (fgets(line, sizeof line, stdin)) {
        if (strstr(line, " quit")) {
            char *id = strtok(line, " ");
            if (zh) { zookeeper_close(zh); zh = NULL; zk_dispatcher_session(d, ZK_KEEPER_STATE_CLOSED); }
            zk_dispatcher_flush(d);
            emit("R %s OK", id ? id : "?");
            break;
        }
        command(line);
    }
    if (zh) { zookeeper_close(zh); zk_dispatcher_session(d, ZK_KEEPER_STATE_CLOSED); }
    zk_dispatcher_free(d);
    emit("BYE");
    return 0;
}
"""


def soname(lib_path: Path) -> Optional[str]:
    """The ELF soname of a shared library (``libzk_states.so.0.1``), or None."""
    try:
        out = subprocess.run(["objdump", "-p", str(lib_path)], capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "SONAME":
            return parts[1]
    return None


def runtime_lib_dir(build_dir: Path, lib_path: Path) -> Path:
    """A directory to link against and rpath to: cargo writes only
    ``libzk_states.so`` but the library's soname is ``libzk_states.so.0.1``,
    which the dynamic loader looks for. When the soname file is missing next
    to the library, a private directory with both names (symlinks to the
    library) is made under ``build_dir``; cargo's directory is left alone."""
    lib_path = Path(lib_path).resolve()
    name = soname(lib_path)
    if name is None or (lib_path.parent / name).exists():
        return lib_path.parent
    private = Path(build_dir) / "zk_states_lib"
    private.mkdir(exist_ok=True)
    for link in ("libzk_states.so", name):
        target = private / link
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(lib_path)
    return private


_driver_lock = threading.Lock()
_driver_cache: Dict[Tuple[str, str], Path] = {}


def build_driver(build_dir: Path, include_dir: Path, lib_path: Path) -> Path:
    """Compile :data:`DRIVER_C` once per session (strict C99 flags); return the binary."""
    require_c_client()
    key = (str(build_dir), str(lib_path))
    with _driver_lock:
        if key in _driver_cache:
            return _driver_cache[key]
        src = Path(build_dir) / "zkdriver.c"
        exe = Path(build_dir) / "zkdriver"
        src.write_text(DRIVER_C)
        cc = shutil.which("cc") or shutil.which("gcc")
        libdir = runtime_lib_dir(Path(build_dir), Path(lib_path))
        cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g",
               "-DTHREADED", f"-I{include_dir}", str(src), "-o", str(exe),
               f"-L{libdir}", "-lzk_states", "-lzookeeper_mt", "-lpthread",
               f"-Wl,-rpath,{libdir}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"compiling the C driver failed:\n{' '.join(cmd)}\n{proc.stderr}"
        _driver_cache[key] = exe
        return exe


class DriverEvent(tuple):
    """A parsed ``E ...`` line: ("STATE", seq, state) or ("WATCH", tag, seq, type, state, path)."""


class CDriver:
    """Runs the compiled C driver; thread-safe log of its output lines."""

    def __init__(self, exe: Path, hosts: str, *, options: int = 0, read_only: bool = False,
                 tap: bool = False, timeout_ms: int = 10000, name: str = "c",
                 log_dir: Optional[Path] = None):
        self.name = name
        self._lines: List[str] = []
        self._cond = threading.Condition()
        self._next_id = 0
        stderr_path = Path(log_dir or "/tmp") / f"zkdriver-{name}-{os.getpid()}-{id(self)}.stderr"
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "w")
        self.proc = subprocess.Popen(
            [str(exe), hosts, str(options), str((1 if read_only else 0) | (2 if tap else 0)),
             str(timeout_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name=f"zkdriver-{name}", daemon=True)
        self._reader.start()
        try:
            self.wait_line(lambda l: l == "READY", 10, "driver READY")
        except BaseException:
            self.kill()
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._lines.append("<EOF>")
            self._cond.notify_all()

    # -- output ---------------------------------------------------------------

    def lines(self) -> List[str]:
        with self._cond:
            return list(self._lines)

    def wait_line(self, pred: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or "<EOF>" in self._lines:
                    raise AssertionError(
                        f"[{self.name}] timed out waiting for {what}; output:\n" + "\n".join(self._lines)
                        + f"\nstderr:\n{self.stderr_text()}"
                    )
                self._cond.wait(min(left, 0.5))

    def stderr_text(self) -> str:
        try:
            return Path(self.stderr_path).read_text()[-4000:]
        except OSError:
            return ""

    def events(self) -> List[tuple]:
        """Every dispatcher callback so far, in delivery order."""
        out = []
        for line in self.lines():
            parts = line.split(" ")
            if parts[:2] == ["E", "STATE"]:
                out.append(("STATE", parts[3]))
            elif parts[:2] == ["E", "WATCH"]:
                out.append(("WATCH", parts[2], parts[4], parts[5], None if parts[6] == "None" else parts[6]))
        return out

    def states(self) -> List[str]:
        return [e[1] for e in self.events() if e[0] == "STATE"]

    def watches(self) -> List[tuple]:
        return [e[1:] for e in self.events() if e[0] == "WATCH"]

    def raw_states(self) -> List[int]:
        """The C client's session states seen by the tap (``tap=True``), in order."""
        out = []
        for line in self.lines():
            parts = line.split(" ")
            if parts[:2] == ["E", "RAW"] and int(parts[2]) == -1:  # ZOO_SESSION_EVENT
                out.append(int(parts[3]))
        return out

    def wait_events(self, pred: Callable[[List[tuple]], bool], timeout: float, what: str) -> List[tuple]:
        try:
            return wait_until(lambda: pred(self.events()) and self.events(), timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"[{self.name}] {exc}; events: {self.events()}\nstderr:\n{self.stderr_text()}")

    def wait_state_count(self, state: str, count: int, timeout: float) -> List[tuple]:
        """Wait until the listener has been told ``state`` ``count`` times in all."""
        return self.wait_events(lambda ev: ev.count(("STATE", state)) >= count, timeout,
                                f"listener state {state} x{count}")

    # -- commands -------------------------------------------------------------

    def cmd(self, *args: str, timeout: float = 20.0) -> Dict[str, str]:
        """Send a command; return the reply's ``key=value`` fields (``repr`` keeps its spaces)."""
        with self._cond:
            self._next_id += 1
            cid = self._next_id
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{cid} {' '.join(args)}\n")
        self.proc.stdin.flush()
        prefix = f"R {cid} "
        line = self.wait_line(lambda l: l.startswith(prefix), timeout, f"reply to {args}")
        rest = line[len(prefix):]
        if not rest.startswith("OK"):
            raise AssertionError(f"[{self.name}] command {args} failed: {line}")
        fields: Dict[str, str] = {}
        rest = rest[2:].strip()
        if " repr=" in rest or rest.startswith("repr="):
            rest, _, repr_text = rest.partition("repr=")
            fields["repr"] = repr_text
        for tok in rest.split():
            k, _, v = tok.partition("=")
            fields[k] = v
        return fields

    def rc(self, *args: str) -> int:
        return int(self.cmd(*args)["rc"])

    def zstate(self) -> Dict[str, str]:
        return self.cmd("zstate")

    def stats(self) -> Dict[str, int]:
        return {k: int(v) for k, v in self.cmd("stats").items()}

    def session(self) -> Tuple[int, bytes]:
        f = self.cmd("session")
        return int(f["session_id"]), bytes.fromhex(f["passwd"])

    def quit(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            try:
                self.cmd("quit", timeout=timeout)
                self.proc.wait(timeout=timeout)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()

    def __enter__(self) -> "CDriver":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.quit()
        else:
            self.kill()


# --------------------------------------------------------------------------
# kazoo
# --------------------------------------------------------------------------


class KazooRecorder:
    """A kazoo client whose listener and watch callbacks are logged like the driver's."""

    def __init__(self, hosts: str, *, timeout: float = 10.0, read_only: bool = False, **kwargs):
        require_kazoo()
        from kazoo.client import KazooClient
        from kazoo.retry import KazooRetry

        self._lock = threading.Lock()
        self.log: List[tuple] = []
        retry = KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=0.5, max_jitter=0.1)
        self.client = KazooClient(hosts=hosts, timeout=timeout, read_only=read_only,
                                  connection_retry=retry, **kwargs)
        self.client.add_listener(self._on_state)

    def _on_state(self, state) -> bool:
        with self._lock:
            self.log.append(("STATE", str(state)))
        return False

    def watcher(self, tag: str) -> Callable:
        """A distinct watch function per call (kazoo keeps watch functions in sets)."""

        def watch(event) -> None:
            with self._lock:
                self.log.append(("WATCH", tag, str(event.type), str(event.state), event.path))

        return watch

    def events(self) -> List[tuple]:
        with self._lock:
            return list(self.log)

    def states(self) -> List[str]:
        return [e[1] for e in self.events() if e[0] == "STATE"]

    def watches(self) -> List[tuple]:
        return [e[1:] for e in self.events() if e[0] == "WATCH"]

    def wait_events(self, pred: Callable[[List[tuple]], bool], timeout: float, what: str) -> List[tuple]:
        try:
            return wait_until(lambda: pred(self.events()) and self.events(), timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"[kazoo] {exc}; events: {self.events()}")

    def wait_state_count(self, state: str, count: int, timeout: float) -> List[tuple]:
        return self.wait_events(lambda ev: ev.count(("STATE", state)) >= count, timeout,
                                f"listener state {state} x{count}")

    def start(self, timeout: float = 20.0) -> "KazooRecorder":
        self.client.start(timeout=timeout)
        return self

    def stop(self) -> None:
        try:
            self.client.stop()
        finally:
            self.client.close()

    def __enter__(self) -> "KazooRecorder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


#: The official C client's ZOO_*_STATE codes (zookeeper.h / zookeeper.c of
#: 3.8) as kazoo's KeeperState names; 0 is zoo_state() between attempts.
C_CLIENT_STATES = {
    0: "CONNECTING", 1: "CONNECTING", 2: "CONNECTING", 3: "CONNECTED", 5: "CONNECTED_RO",
    7: "CONNECTING", -112: "EXPIRED_SESSION", -113: "AUTH_FAILED", 999: "CLOSED",
}


def kazoo_reference_states(keeper_states: List[str]) -> List[str]:
    """What kazoo's own session machine (``KazooClient._session_callback`` of a
    client that is never started) tells its listeners for these keeper states,
    given by name (``"CONNECTED"``, ...)."""
    require_kazoo()
    from kazoo.client import KazooClient
    from kazoo.protocol.states import KeeperState

    client = KazooClient(hosts="127.0.0.1:1")
    told: List[str] = []

    def listener(state) -> bool:
        told.append(str(state))
        return False

    client.add_listener(listener)
    try:
        for name in keeper_states:
            client._session_callback(getattr(KeeperState, name))
    finally:
        client.close()
    return told


# --------------------------------------------------------------------------
# Raw ctypes binding of zk-states
# --------------------------------------------------------------------------


class ZkWatchedEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int32),
        ("state", ctypes.c_int32),
        ("path", ctypes.c_void_p),
        ("path_len", ctypes.c_size_t),
        ("zxid", ctypes.c_int64),
    ]

    def path_str(self) -> Optional[str]:
        if not self.path:
            return None
        return ctypes.string_at(self.path, self.path_len).decode("utf-8")


class ZkStat(ctypes.Structure):
    _fields_ = [
        ("czxid", ctypes.c_int64), ("mzxid", ctypes.c_int64), ("ctime", ctypes.c_int64),
        ("mtime", ctypes.c_int64), ("version", ctypes.c_int32), ("cversion", ctypes.c_int32),
        ("aversion", ctypes.c_int32), ("ephemeral_owner", ctypes.c_int64),
        ("data_length", ctypes.c_int32), ("num_children", ctypes.c_int32), ("pzxid", ctypes.c_int64),
    ]


WATCH_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(ZkWatchedEvent), ctypes.c_void_p)
LISTENER_FN = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_int32, ctypes.c_void_p)

ZK_WATCH_DATA, ZK_WATCH_CHILD, ZK_WATCH_PERSISTENT, ZK_WATCH_PERSISTENT_RECURSIVE = 0, 1, 2, 3
ZK_KEEPER_STATE_CONNECTING, ZK_KEEPER_STATE_CONNECTED, ZK_KEEPER_STATE_CLOSED = 1, 3, 7
ZK_STAT_FORMAT_MAX = 125 + 6 * 20 + 5 * 11


class ZkStatesLib:
    """The few zk-states functions the Python side calls, through raw ctypes."""

    def __init__(self, lib_path: Path):
        lib = ctypes.CDLL(str(lib_path))
        self.lib = lib
        vp, i32, u32, u64, i64, sz = (ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint32,
                                      ctypes.c_uint64, ctypes.c_int64, ctypes.c_size_t)
        sigs = {
            "zk_dispatcher_new_with": (i32, [u32, sz, ctypes.POINTER(vp)]),
            "zk_dispatcher_free": (None, [vp]),
            "zk_watch_add": (i32, [vp, ctypes.c_char_p, i32, WATCH_FN, vp, vp, ctypes.POINTER(u64)]),
            "zk_watch_remove": (i32, [vp, u64]),
            "zk_listener_add": (i32, [vp, LISTENER_FN, vp, vp, ctypes.POINTER(u64)]),
            "zk_dispatcher_event": (i32, [vp, i32, ctypes.c_char_p, i64]),
            "zk_dispatcher_session": (i32, [vp, i32]),
            "zk_dispatcher_flush": (i32, [vp]),
            "zk_notification_decode": (i32, [ctypes.c_char_p, sz, ctypes.POINTER(ZkWatchedEvent)]),
            "zk_stat_decode": (i32, [ctypes.c_char_p, sz, ctypes.POINTER(ZkStat)]),
            "zk_stat_format": (sz, [ctypes.POINTER(ZkStat), ctypes.c_char_p, sz]),
            "zk_event_type_name": (ctypes.c_char_p, [i32]),
            "zk_keeper_state_name": (ctypes.c_char_p, [i32]),
            "zk_kazoo_state_name": (ctypes.c_char_p, [i32]),
            "zk_status_message": (ctypes.c_char_p, [i32]),
        }
        for name, (res, args) in sigs.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args

    def check(self, rc: int, what: str) -> None:
        if rc != 0:
            raise AssertionError(f"{what}: {self.lib.zk_status_message(rc).decode()} ({rc})")

    def name_event(self, code: int) -> str:
        return self.lib.zk_event_type_name(code).decode()

    def name_keeper(self, code: int) -> str:
        return self.lib.zk_keeper_state_name(code).decode()

    def name_kazoo(self, code: int) -> str:
        return self.lib.zk_kazoo_state_name(code).decode()

    def decode_notification(self, frame: bytes) -> ZkWatchedEvent:
        ev = ZkWatchedEvent()
        self.check(self.lib.zk_notification_decode(frame, len(frame), ctypes.byref(ev)),
                   "zk_notification_decode")
        return ev

    def format_stat_bytes(self, stat_bytes: bytes) -> str:
        st = ZkStat()
        self.check(self.lib.zk_stat_decode(stat_bytes, len(stat_bytes), ctypes.byref(st)), "zk_stat_decode")
        buf = ctypes.create_string_buffer(ZK_STAT_FORMAT_MAX + 1)
        n = self.lib.zk_stat_format(ctypes.byref(st), buf, len(buf))
        return buf.value[:n].decode()


class PyDispatcher:
    """A zk_dispatcher driven from Python; records callbacks as the driver does."""

    def __init__(self, zs: ZkStatesLib, options: int = 0):
        self.zs = zs
        self._lock = threading.Lock()
        self.log: List[tuple] = []
        self._tags: Dict[int, str] = {}
        self._next_tag = 0
        handle = ctypes.c_void_p()
        zs.check(zs.lib.zk_dispatcher_new_with(options, 0, ctypes.byref(handle)), "zk_dispatcher_new_with")
        self.d = handle
        # Keep the ctypes thunks alive as long as the dispatcher.
        self._watch_fn = WATCH_FN(self._on_watch)
        self._listener_fn = LISTENER_FN(self._on_state)
        lid = ctypes.c_uint64()
        zs.check(zs.lib.zk_listener_add(self.d, self._listener_fn, None, None, ctypes.byref(lid)),
                 "zk_listener_add")

    def _on_watch(self, ev_ptr, user_data) -> None:
        ev = ev_ptr.contents
        path = ctypes.string_at(ev.path).decode() if ev.path else None
        with self._lock:
            self.log.append(("WATCH", self._tags[user_data or 0], self.zs.name_event(ev.type),
                             self.zs.name_keeper(ev.state), path, ev.zxid))

    def _on_state(self, state, user_data) -> bool:
        with self._lock:
            self.log.append(("STATE", self.zs.name_kazoo(state)))
        return False

    def watch(self, path: str, kind: int, tag: str) -> int:
        with self._lock:
            self._next_tag += 1
            key = self._next_tag
            self._tags[key] = tag
        wid = ctypes.c_uint64()
        self.zs.check(self.zs.lib.zk_watch_add(self.d, path.encode(), kind, self._watch_fn, key, None,
                                               ctypes.byref(wid)), "zk_watch_add")
        return wid.value

    def event(self, type_code: int, path: str, zxid: int) -> None:
        self.zs.check(self.zs.lib.zk_dispatcher_event(self.d, type_code, path.encode(), zxid),
                      "zk_dispatcher_event")

    def session(self, keeper_state: int) -> None:
        self.zs.check(self.zs.lib.zk_dispatcher_session(self.d, keeper_state), "zk_dispatcher_session")

    def flush(self) -> None:
        self.zs.check(self.zs.lib.zk_dispatcher_flush(self.d), "zk_dispatcher_flush")

    def events(self) -> List[tuple]:
        with self._lock:
            return list(self.log)

    def free(self) -> None:
        if self.d:
            self.zs.lib.zk_dispatcher_free(self.d)
            self.d = None
