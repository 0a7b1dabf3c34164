"""Real ZooKeeper servers for integration tests (standard library only).

Starts Apache ZooKeeper from the Debian ``zookeeper`` package on 127.0.0.1,
either as a single standalone server (:class:`ZkServer`) or as a small
quorum (:class:`ZkEnsemble`, read-only mode enabled), and stops it by PID.

Typical use from pytest::

    import zkserver

    reason = zkserver.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with zkserver.ZkServer() as zk:
        client = connect(zk.hosts)          # "127.0.0.1:PORT"
        zk.restart()                        # same port, same data
        zk.kill()                           # SIGKILL: abrupt loss
        zk.start()                          # comes back with its data

Design notes
------------
* Requirements: ``apt-get install zookeeper`` (pulls in a JRE and
  ``libzookeeper-java``).  The server jar's manifest ``Class-Path`` names
  its own dependencies, so the class path only needs ``zookeeper.jar``
  plus an SLF4J binding (``slf4j-simple.jar``) to get a readable log.
  ``$ZKSERVER_CLASSPATH`` and ``$ZKSERVER_JAVA`` override the defaults.
* Readiness: a server answers the ``ruok`` four-letter word before it can
  serve sessions, so :meth:`ZkServer.start` polls ``srvr`` until it reports
  ``Mode: standalone`` (ensemble: ``leader``/``follower``).
* Ports are chosen below the kernel's ephemeral port range when possible.
  A client that keeps reconnecting to a *stopped* server on an ephemeral
  port can end up TCP-connected to itself (the kernel picks the same
  source port), which then also blocks the server from binding again.
* No JVM outlives the Python process: every server is SIGKILLed when the
  interpreter exits normally (``atexit``) and, on Linux, the kernel sends
  SIGKILL to it if the Python process dies (``PR_SET_PDEATHSIG``).  That
  signal is tied to the *thread* that forked the JVM, so all JVMs are
  forked from one long-lived daemon thread; it is therefore safe to start
  or restart servers from short-lived threads (e.g. a background thread
  that restarts the server while the test blocks in a client call).
* Objects are not thread-safe: drive one server/ensemble from one thread
  at a time.
* Clients reconnecting while a server (re)starts: ZooKeeper 3.8.0 can leave
  a connection that arrives between binding the client port and loading the
  database neither answered nor closed (a NullPointerException in
  ``ZKDatabase.removeCnxn`` while closing it); the client then hangs until
  its read timeout, which can expire its session.  Tests that restart a
  server under live clients should keep them away until :meth:`start`
  returns, e.g. behind ``test_e2e_support.GateProxy``.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence

__all__ = [
    "ZkServer",
    "ZkEnsemble",
    "ZkServerError",
    "four_letter",
    "java_available",
    "zookeeper_available",
    "unavailable_reason",
    "zookeeper_classpath",
    "DEFAULT_JVM_ARGS",
]

HOST = "127.0.0.1"

#: Server jar installed by Debian's ``zookeeper`` / ``libzookeeper-java``.
ZOOKEEPER_JAR = "/usr/share/java/zookeeper.jar"
#: SLF4J binding so the server log is written (to stderr -> our log file).
SLF4J_BINDING_JAR = "/usr/share/java/slf4j-simple.jar"

STANDALONE_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
QUORUM_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"

#: JVM options used for every server; extend per server with ``jvm_args``.
DEFAULT_JVM_ARGS: Sequence[str] = (
    "-Xmx256m",
    "-XX:+UseSerialGC",  # few GC threads: the test machines have 2 cores
    "-XX:TieredStopAtLevel=1",  # C1 JIT only: less compile CPU on 2 cores
    "-XX:-UsePerfData",  # no /tmp/hsperfdata_* files
    "-Djava.net.preferIPv4Stack=true",
    "-Djava.awt.headless=true",
    "-Dzookeeper.preAllocSize=4096",  # KiB; default pre-allocates 64 MiB
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
)

_SERVING_QUORUM_MODES = frozenset({"leader", "follower"})


class ZkServerError(RuntimeError):
    """A ZooKeeper server could not be started or did not become ready."""


# --------------------------------------------------------------------------
# Availability checks
# --------------------------------------------------------------------------


def _java_executable() -> Optional[str]:
    """Path of the ``java`` launcher: $ZKSERVER_JAVA, $JAVA_HOME, or PATH."""
    explicit = os.environ.get("ZKSERVER_JAVA")
    if explicit:
        return explicit
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = os.path.join(java_home, "bin", "java")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("java")


@functools.lru_cache(maxsize=None)
def java_available() -> bool:
    """True if a working ``java`` launcher exists (runs ``java -version``)."""
    java = _java_executable()
    if not java:
        return False
    try:
        subprocess.run(
            [java, "-version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def zookeeper_classpath() -> str:
    """Class path for the server: $ZKSERVER_CLASSPATH or the Debian jars."""
    explicit = os.environ.get("ZKSERVER_CLASSPATH")
    if explicit:
        return explicit
    jars = [ZOOKEEPER_JAR]
    if os.path.isfile(SLF4J_BINDING_JAR):
        jars.append(SLF4J_BINDING_JAR)
    return os.pathsep.join(jars)


def unavailable_reason() -> Optional[str]:
    """Why real ZooKeeper servers cannot run here, or None if they can.

    Meant for ``pytest.skip(reason)``.
    """
    if not java_available():
        return (
            "no working java launcher (set $ZKSERVER_JAVA or "
            "`apt-get install default-jre-headless`)"
        )
    if not os.environ.get("ZKSERVER_CLASSPATH") and not os.path.isfile(ZOOKEEPER_JAR):
        return (
            f"ZooKeeper server jar {ZOOKEEPER_JAR} not found "
            "(`apt-get install zookeeper`, or set $ZKSERVER_CLASSPATH)"
        )
    return None


def zookeeper_available() -> bool:
    """True if :class:`ZkServer` can start a server on this machine."""
    return unavailable_reason() is None


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def four_letter(host: str, port: int, cmd: str, timeout: float = 2.0) -> str:
    """Send a four-letter-word command (``ruok``, ``srvr``, ``stat``, ``mntr``,
    ``isro``, ...) and return the whole reply.  Raises ``OSError`` if the
    server cannot be reached."""
    if len(cmd) != 4:
        raise ValueError(f"four-letter command expected, got {cmd!r}")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(cmd.encode("ascii"))
        chunks = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _parse_mode(srvr_reply: str) -> Optional[str]:
    """The ``Mode:`` value of a ``srvr`` reply (``standalone``, ``leader``,
    ``follower``, ``read-only``, ...), or None if the server is not serving."""
    for line in srvr_reply.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


_reserved_ports: set = set()  # ports handed out by this process
_port_rng = random.Random()  # private: unaffected by tests seeding `random`


def _ephemeral_port_range() -> tuple:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux default


def _allocate_ports(count: int) -> List[int]:
    """``count`` distinct free TCP ports on 127.0.0.1.

    Prefers random ports below the ephemeral range (see module docstring);
    falls back to letting the kernel pick (bind to port 0).  All candidate
    sockets stay bound until every port is chosen, so the ports are
    distinct, and ports already handed out by this process are never reused.
    """
    low_ephemeral, _ = _ephemeral_port_range()
    lowest = 10000
    socks: List[socket.socket] = []
    ports: List[int] = []

    def try_bind(port: int) -> Optional[int]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((HOST, port))
        except OSError:
            sock.close()
            return None
        socks.append(sock)
        return sock.getsockname()[1]

    try:
        attempts = 0
        while len(ports) < count:
            attempts += 1
            if low_ephemeral - lowest > 1000 and attempts <= 200:
                port = try_bind(_port_rng.randrange(lowest, low_ephemeral))
            else:
                port = try_bind(0)
            if port is not None and port not in _reserved_ports and port not in ports:
                ports.append(port)
            elif attempts > 1000:
                raise ZkServerError("could not find free TCP ports on 127.0.0.1")
    finally:
        for sock in socks:
            sock.close()
    _reserved_ports.update(ports)
    return ports


def _log_tail(path: str, max_bytes: int = 6000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"<log {path} unreadable: {e}>"
    if size > max_bytes:
        data = "...\n" + data.split("\n", 1)[-1]
    return data


# --------------------------------------------------------------------------
# Process launching: JVMs die with us
# --------------------------------------------------------------------------


def _pdeathsig_preexec() -> Optional[Callable[[], None]]:
    """A ``preexec_fn`` setting PR_SET_PDEATHSIG=SIGKILL (fallback when the
    ``setpriv`` tool is missing).  The libc symbol is resolved here, before
    forking, so the child only makes the system call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_pdeathsig() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)

    return set_pdeathsig


class _Launcher:
    """Forks every JVM from one long-lived daemon thread.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits,
    so forking from the caller's thread would kill the JVM as soon as, for
    example, a helper thread that restarted the server finished.
    """

    def __init__(self) -> None:
        self._requests: "queue.Queue" = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        # util-linux's setpriv sets the death signal and execs java, so the
        # PID we get is the JVM's and no Python runs between fork and exec.
        self._prefix = [setpriv, "--pdeathsig", "KILL"] if setpriv else []
        self._preexec = None if setpriv else _pdeathsig_preexec()

    def spawn(self, argv: List[str], **kwargs) -> subprocess.Popen:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="zkserver-launcher", daemon=True
                )
                self._thread.start()
        done = threading.Event()
        result: Dict[str, object] = {}
        self._requests.put((self._prefix + argv, kwargs, result, done))
        done.wait()
        if "error" in result:
            raise result["error"]  # type: ignore[misc]
        return result["popen"]  # type: ignore[return-value]

    def _serve(self) -> None:
        while True:
            argv, kwargs, result, done = self._requests.get()
            try:
                result["popen"] = subprocess.Popen(argv, preexec_fn=self._preexec, **kwargs)
            except BaseException as e:  # handed back to the caller
                result["error"] = e
            finally:
                done.set()


_launcher = _Launcher()

# Everything still running at interpreter exit is killed and cleaned up.
_live: "Dict[int, object]" = {}


def _register(obj: object) -> None:
    _live[id(obj)] = obj


def _unregister(obj: object) -> None:
    _live.pop(id(obj), None)


@atexit.register
def _cleanup_at_exit() -> None:
    for obj in list(_live.values()):
        try:
            obj._emergency_cleanup()  # type: ignore[attr-defined]
        except Exception:
            pass


# --------------------------------------------------------------------------
# Standalone server
# --------------------------------------------------------------------------


class ZkServer:
    """One real ZooKeeper server on 127.0.0.1 (standalone mode).

    The client port is chosen when the object is created and kept for its
    whole life, so :attr:`hosts` is valid before :meth:`start` and across
    restarts.  The data directory is a fresh temporary directory (unless
    ``data_dir`` is given) that survives :meth:`restart`, :meth:`kill` and
    ``stop(keep_data=True)``, and is removed by :meth:`stop`/:meth:`close`.
    The server log is ``<data_dir>/zookeeper.log`` (appended across
    restarts).

    Parameters:
        tick_time: ZooKeeper ``tickTime`` in ms.
        min_session_timeout / max_session_timeout: bounds (ms) for the
            session timeout a client may negotiate.  The defaults allow
            short sessions for expiry tests while still granting clients
            the long timeouts they ask for (ZooKeeper's default maximum
            would be 20 * tickTime = 4 s).
        start_timeout: seconds to wait for the server to serve sessions.
        stop_timeout: seconds between SIGTERM and SIGKILL in :meth:`stop`.
        fsync: fsync the transaction log (off by default: faster, and a
            killed *process* loses nothing that was written anyway).
        jvm_args: extra JVM options, appended to :data:`DEFAULT_JVM_ARGS`.
        extra_config: extra ``zoo.cfg`` lines as a mapping.
        data_dir: use this directory instead of a temporary one (it is
            created if needed and never removed).
        port: client port to use instead of a freshly allocated one.
        name: label used in the data directory name and in error messages.
    """

    _main_class = STANDALONE_MAIN

    def __init__(
        self,
        *,
        tick_time: int = 200,
        min_session_timeout: int = 400,
        max_session_timeout: int = 60000,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        fsync: bool = False,
        jvm_args: Iterable[str] = (),
        extra_config: Optional[Dict[str, object]] = None,
        data_dir: Optional[str] = None,
        port: Optional[int] = None,
        name: str = "zk",
    ) -> None:
        self.name = name
        self.port: int = port if port is not None else _allocate_ports(1)[0]
        self.tick_time = tick_time
        self.min_session_timeout = min_session_timeout
        self.max_session_timeout = max_session_timeout
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.fsync = fsync
        self.jvm_args = list(jvm_args)
        self.extra_config = dict(extra_config or {})
        self._owns_data_dir = data_dir is None
        self.data_dir: Optional[str] = data_dir
        self._popen: Optional[subprocess.Popen] = None
        #: Wall-clock seconds the last :meth:`start` took until ready.
        self.last_start_seconds: Optional[float] = None

    # -- public API ---------------------------------------------------------

    @property
    def hosts(self) -> str:
        """Connect string for clients: ``"127.0.0.1:PORT"``."""
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> Optional[int]:
        """PID of the running JVM, or None."""
        return self._popen.pid if self.running else None  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        """True while the JVM process exists (it may not be serving yet)."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def log_path(self) -> Optional[str]:
        return os.path.join(self.data_dir, "zookeeper.log") if self.data_dir else None

    def start(self, wait: bool = True) -> "ZkServer":
        """Start the server (no-op if running) and, if ``wait``, block until
        it serves sessions.  Raises :class:`ZkServerError` with the tail of
        the server log if it exits or is not ready within ``start_timeout``.
        """
        if self.running:
            return self
        reason = unavailable_reason()
        if reason:
            raise ZkServerError(reason)
        started = time.monotonic()
        self._prepare_data_dir()
        _register(self)  # from now on atexit cleans up the JVM and temp dir
        cfg_path = os.path.join(self.data_dir, "zoo.cfg")  # type: ignore[arg-type]
        with open(cfg_path, "w") as f:
            f.write(self._config_text())
        argv = [
            _java_executable(),  # type: ignore[list-item]
            *DEFAULT_JVM_ARGS,
            f"-Dzookeeper.forceSync={'yes' if self.fsync else 'no'}",
            *self._extra_jvm_args(),
            *self.jvm_args,
            "-cp",
            zookeeper_classpath(),
            self._main_class,
            cfg_path,
        ]
        with open(self.log_path, "ab") as log:  # type: ignore[arg-type]
            log.write(f"==== {time.strftime('%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            log.flush()
            self._popen = _launcher.spawn(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                close_fds=True,
                start_new_session=True,  # no terminal signals (^C) to the JVM
            )
        if wait:
            self.wait_ready()
            self.last_start_seconds = time.monotonic() - started
        return self

    def wait_ready(self, timeout: Optional[float] = None) -> str:
        """Block until :meth:`_is_ready` accepts the ``srvr`` mode; return it."""
        return self.wait_for_mode(self._is_ready, timeout)

    def wait_for_mode(
        self,
        accept: "Callable[[Optional[str]], bool] | Iterable[str]",
        timeout: Optional[float] = None,
    ) -> str:
        """Poll ``srvr`` until its ``Mode:`` is accepted; return the mode.

        ``accept`` is a set of modes (e.g. ``{"read-only"}``) or a predicate.
        """
        if not callable(accept):
            wanted = frozenset(accept)
            accept = lambda mode: mode in wanted  # noqa: E731
        deadline = time.monotonic() + (self.start_timeout if timeout is None else timeout)
        last = "no reply yet"
        while True:
            if not self.running:
                code = self._popen.returncode if self._popen else None
                raise ZkServerError(
                    f"{self.name}: ZooKeeper exited (code {code}) before becoming ready; "
                    f"last srvr: {last!r}\n--- tail of {self.log_path} ---\n{_log_tail(self.log_path)}"
                )
            try:
                reply = four_letter(HOST, self.port, "srvr", timeout=1.0)
                mode = _parse_mode(reply)
                last = reply.strip()
                if accept(mode):
                    return mode  # type: ignore[return-value]
            except OSError as e:
                last = f"{type(e).__name__}: {e}"
            if time.monotonic() >= deadline:
                raise ZkServerError(
                    f"{self.name}: ZooKeeper on {self.hosts} not ready after "
                    f"{timeout if timeout is not None else self.start_timeout:.1f}s; "
                    f"last srvr: {last!r}\n--- tail of {self.log_path} ---\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def mode(self) -> Optional[str]:
        """Current ``srvr`` mode, or None if stopped/unreachable/not serving."""
        if not self.running:
            return None
        try:
            return _parse_mode(four_letter(HOST, self.port, "srvr", timeout=1.0))
        except OSError:
            return None

    def four_letter(self, cmd: str, timeout: float = 2.0) -> str:
        """Send a four-letter-word command to this server; return the reply."""
        return four_letter(HOST, self.port, cmd, timeout)

    def stop(self, keep_data: bool = False) -> None:
        """Stop gracefully: SIGTERM, then SIGKILL after ``stop_timeout``;
        waits for the process to exit.  Removes the temporary data
        directory unless ``keep_data`` (use that, or :meth:`kill`, to
        :meth:`start` again later with the same data)."""
        self._terminate(signal.SIGTERM, self.stop_timeout)
        if not keep_data:
            self._remove_data_dir()

    def kill(self) -> None:
        """Simulate a crash: SIGKILL the JVM and wait for it.  The data
        directory is kept, so :meth:`start` brings the same server back."""
        self._terminate(signal.SIGKILL, 0)

    def restart(self, downtime: float = 0.0) -> "ZkServer":
        """Stop gracefully, stay down ``downtime`` seconds, start again on
        the same port with the same data, and wait until ready."""
        self.stop(keep_data=True)
        if downtime > 0:
            time.sleep(downtime)
        return self.start()

    def close(self) -> None:
        """Stop and remove the temporary data directory (same as ``stop()``)."""
        self.stop()

    def __enter__(self) -> "ZkServer":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.name} {self.hosts} {state}>"

    # -- overridable parts --------------------------------------------------

    def _config(self) -> Dict[str, object]:
        cfg: Dict[str, object] = {
            "tickTime": self.tick_time,
            "dataDir": self.data_dir,
            "clientPort": self.port,
            "clientPortAddress": HOST,
            "minSessionTimeout": self.min_session_timeout,
            "maxSessionTimeout": self.max_session_timeout,
            "maxClientCnxns": 0,  # unlimited connections per client IP
            "4lw.commands.whitelist": "*",
            "admin.enableServer": "false",
        }
        cfg.update(self.extra_config)
        return cfg

    def _config_text(self) -> str:
        return "".join(f"{k}={v}\n" for k, v in self._config().items())

    def _extra_jvm_args(self) -> List[str]:
        return []

    def _is_ready(self, mode: Optional[str]) -> bool:
        return mode == "standalone"

    # -- internals ----------------------------------------------------------

    def _prepare_data_dir(self) -> None:
        if self.data_dir is None:
            self.data_dir = tempfile.mkdtemp(prefix=f"zkserver-{self.name}-")
            self._owns_data_dir = True
        os.makedirs(self.data_dir, exist_ok=True)

    def _remove_data_dir(self) -> None:
        if self._owns_data_dir and self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
        self._maybe_unregister()

    def _maybe_unregister(self) -> None:
        """Forget this server at exit once it has no JVM and no temp dir."""
        if not self.running and not (self._owns_data_dir and self.data_dir):
            _unregister(self)

    def _terminate(self, sig: int, timeout: float) -> None:
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            try:
                popen.send_signal(sig)
                popen.wait(timeout=timeout if timeout > 0 else None)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        # self._popen is kept so that wait_for_mode can report the exit code.
        self._maybe_unregister()

    def _emergency_cleanup(self) -> None:
        """atexit: kill without grace and remove the temporary data dir."""
        self._terminate(signal.SIGKILL, 0)
        self._remove_data_dir()


# --------------------------------------------------------------------------
# Ensemble
# --------------------------------------------------------------------------


class _EnsembleMember(ZkServer):
    """One quorum peer of a :class:`ZkEnsemble` (myid = index + 1)."""

    _main_class = QUORUM_MAIN

    def __init__(
        self, ensemble: "ZkEnsemble", myid: int, port: int, data_dir: str, **kwargs
    ) -> None:
        super().__init__(port=port, data_dir=data_dir, name=f"zk{myid}", **kwargs)
        self._ensemble = ensemble
        self.myid = myid

    def _prepare_data_dir(self) -> None:
        super()._prepare_data_dir()
        with open(os.path.join(self.data_dir, "myid"), "w") as f:  # type: ignore[arg-type]
            f.write(f"{self.myid}\n")

    def _config(self) -> Dict[str, object]:
        cfg = super()._config()
        ens = self._ensemble
        cfg["initLimit"] = ens.init_limit
        cfg["syncLimit"] = ens.sync_limit
        if ens.local_sessions:
            cfg["localSessionsEnabled"] = "true"
            # A local session becomes global when it creates an ephemeral.
            cfg["localSessionsUpgradingEnabled"] = "true"
        for member_id, (quorum_port, election_port) in ens._peer_ports.items():
            cfg[f"server.{member_id}"] = f"{HOST}:{quorum_port}:{election_port}"
        cfg.update(ens.extra_config)
        return cfg

    def _extra_jvm_args(self) -> List[str]:
        args = [
            # Re-run leader election quickly after peers come back.
            "-Dzookeeper.fastleader.maxNotificationInterval=2000",
            # Connecting to a dead peer's election port must not stall.
            "-Dzookeeper.cnxTimeout=1000",
        ]
        if self._ensemble.read_only:
            # A Java system property only: as a zoo.cfg key it would become
            # "zookeeper.readonlymode.enabled", which the server ignores.
            args.append("-Dreadonlymode.enabled=true")
        return args

    def _is_ready(self, mode: Optional[str]) -> bool:
        return mode in _SERVING_QUORUM_MODES or mode == "read-only"


class ZkEnsemble:
    """A ZooKeeper quorum of ``size`` servers on 127.0.0.1.

    Each server has its own client, quorum and election port and its own
    data directory under one temporary root.  ``read_only=True`` (default)
    starts the JVMs with ``-Dreadonlymode.enabled=true``, so a server that
    has lost the quorum serves read-only clients (``srvr`` reports
    ``Mode: read-only``, a read-only-capable client sees ``CONNECTED_RO``);
    about 2 s after it loses the quorum, longer if it first wins an
    election it cannot complete (up to ``initLimit`` ticks more).

    Local sessions: since ZooKeeper 3.6.2 (ZOOKEEPER-3864) a read-only
    server only accepts *local* sessions; without ``localSessionsEnabled``
    it answers every new connection with NOTREADONLY (kazoo cannot even
    parse that reply) and cannot renew existing global sessions.  So
    ``local_sessions`` defaults to ``read_only``, which changes session
    semantics for the whole ensemble: a session is local to the server it
    was created on until it creates an ephemeral node (it is then upgraded
    to a global session); a local session does not survive moving to
    another server (the client sees it expire).  Failover tests that need
    sessions to move between servers should use ``read_only=False`` (or
    create an ephemeral node first).  A client whose server drops into
    read-only mode loses its session either way and gets a new one.

    Server ``i`` is ``servers[i]`` (0-based; its ZooKeeper ``myid`` is
    ``i + 1``).  Every :class:`ZkServer` method works on a member, e.g.
    ``ens.servers[0].four_letter("mntr")``.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        read_only: bool = True,
        local_sessions: Optional[bool] = None,
        init_limit: int = 10,
        sync_limit: int = 10,
        start_timeout: float = 60.0,
        extra_config: Optional[Dict[str, object]] = None,
        **server_kwargs,
    ) -> None:
        """``init_limit``/``sync_limit`` are in ticks (default tickTime 200
        ms: 2 s each), generous for a loaded 2-core machine.
        ``local_sessions`` defaults to ``read_only`` (see the class doc).
        ``server_kwargs`` go to each :class:`ZkServer` (``tick_time``,
        ``jvm_args``, ``min_session_timeout``, ...)."""
        if size < 2:
            raise ValueError("an ensemble needs at least 2 servers; use ZkServer for one")
        self.size = size
        self.read_only = read_only
        self.local_sessions = read_only if local_sessions is None else local_sessions
        self.init_limit = init_limit
        self.sync_limit = sync_limit
        self.start_timeout = start_timeout
        self.extra_config = dict(extra_config or {})
        self.root = tempfile.mkdtemp(prefix="zkensemble-")
        _register(self)
        ports = _allocate_ports(3 * size)
        self._peer_ports: Dict[int, tuple] = {
            i + 1: (ports[size + 2 * i], ports[size + 2 * i + 1]) for i in range(size)
        }
        server_kwargs.setdefault("start_timeout", start_timeout)
        self.servers: List[_EnsembleMember] = [
            _EnsembleMember(
                self,
                myid=i + 1,
                port=ports[i],
                data_dir=os.path.join(self.root, f"zk{i + 1}"),
                **server_kwargs,
            )
            for i in range(size)
        ]
        #: Wall-clock seconds the last :meth:`start` took until the quorum formed.
        self.last_start_seconds: Optional[float] = None

    @property
    def hosts(self) -> str:
        """Connect string with every server: ``"127.0.0.1:P1,127.0.0.1:P2,..."``."""
        return ",".join(s.hosts for s in self.servers)

    def start(self) -> "ZkEnsemble":
        """Start all servers and wait until they form a quorum."""
        started = time.monotonic()
        for server in self.servers:
            server.start(wait=False)
        self.wait_for_quorum()
        self.last_start_seconds = time.monotonic() - started
        return self

    def modes(self) -> List[Optional[str]]:
        """``srvr`` mode per server (None when stopped or not serving)."""
        return [s.mode() for s in self.servers]

    def leader(self) -> Optional[int]:
        """Index of the current leader, or None."""
        modes = self.modes()
        return modes.index("leader") if "leader" in modes else None

    def wait_for_quorum(self, timeout: Optional[float] = None) -> List[Optional[str]]:
        """Wait until every running server is leader or follower and there is
        exactly one leader; return :meth:`modes`.  Requires a majority of
        servers to be running."""
        running = [s for s in self.servers if s.running]
        if len(running) <= self.size // 2:
            raise ZkServerError(
                f"only {len(running)} of {self.size} servers running: no quorum possible"
            )
        deadline = time.monotonic() + (self.start_timeout if timeout is None else timeout)
        while True:
            modes = self.modes()
            live = [m for s, m in zip(self.servers, modes) if s.running]
            if all(m in _SERVING_QUORUM_MODES for m in live) and live.count("leader") == 1:
                return modes
            for s in running:
                if not s.running:  # a JVM died: report it with its log
                    s.wait_ready(timeout=0)
            if time.monotonic() >= deadline:
                logs = "\n".join(
                    f"--- tail of {s.log_path} ---\n{_log_tail(s.log_path, 2500)}" for s in running
                )
                waited = self.start_timeout if timeout is None else timeout
                raise ZkServerError(f"no quorum after {waited:.1f}s; modes={modes}\n{logs}")
            time.sleep(0.05)

    def wait_for_mode(self, i: int, accept, timeout: Optional[float] = None) -> str:
        """Wait until server ``i`` reports an accepted ``srvr`` mode."""
        return self.servers[i].wait_for_mode(accept, timeout)

    def stop_server(self, i: int) -> None:
        """Stop server ``i`` gracefully (its data is kept for start_server)."""
        self.servers[i].stop(keep_data=True)

    def kill_server(self, i: int) -> None:
        """SIGKILL server ``i`` (its data is kept for start_server)."""
        self.servers[i].kill()

    def start_server(self, i: int, wait: bool = True) -> None:
        """Start server ``i`` again.  With ``wait``: if a majority is then
        running, wait for the quorum; otherwise wait until server ``i``
        serves read-only (``read_only=True``) or at least answers ``srvr``.
        """
        server = self.servers[i]
        server.start(wait=False)
        if not wait:
            return
        if sum(s.running for s in self.servers) > self.size // 2:
            self.wait_for_quorum()
        elif self.read_only:
            server.wait_for_mode({"read-only"})
        else:
            server.wait_for_mode(lambda mode: True)  # reachable at all

    def stop_all(self) -> None:
        """Stop every server and remove all data directories."""
        for server in self.servers:
            server._terminate(signal.SIGTERM, server.stop_timeout)
        shutil.rmtree(self.root, ignore_errors=True)
        _unregister(self)

    close = stop_all

    def _emergency_cleanup(self) -> None:
        for server in self.servers:
            server._terminate(signal.SIGKILL, 0)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "ZkEnsemble":
        try:
            return self.start()
        except BaseException:
            self.stop_all()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop_all()

    def __repr__(self) -> str:
        return f"<ZkEnsemble {self.hosts} modes={self.modes()}>"
