"""A minimal ZooKeeper wire-protocol client (standard library only).

Just enough of the jute protocol for the end-to-end tests: connect (or
re-attach to an existing session), ``AddWatch`` (ZooKeeper 3.6+, opcode 106:
persistent and persistent-recursive watches), create / setData / getData /
exists / getChildren / delete, ping, and closeSession.

Watch notifications (reply xid -1) are not interpreted: each is handed to
``on_notification`` as the raw frame, i.e. the bytes after the 4-byte frame
length (reply header ``int xid, long zxid, int err`` + ``WatcherEvent``), so a
test can feed them through ``zk_notification_decode`` into a dispatcher.

Example::

    with ZkWire.connect("127.0.0.1:2181", on_notification=frames.append) as zw:
        zw.add_watch("/app", ADD_WATCH_PERSISTENT_RECURSIVE)
        zw.create("/app/x", b"v")

A background thread reads frames; another pings at a third of the
negotiated session timeout.  Requests may be sent from any thread; each
waits for its own reply.  There is no reconnection: a lost connection fails
every pending request with :class:`ConnectionLoss` and calls ``on_close``.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Callable, Dict, List, Optional, Tuple

__all__ = [
    "ZkWire", "ZkWireError", "ConnectionLoss", "SessionExpired",
    "ADD_WATCH_PERSISTENT", "ADD_WATCH_PERSISTENT_RECURSIVE", "STAT_SIZE",
    "OP", "ERR_NONODE", "ERR_NODEEXISTS",
]

#: Request opcodes (ZooDefs.OpCode).
OP = {
    "create": 1, "delete": 2, "exists": 3, "getData": 4, "setData": 5,
    "getChildren": 8, "ping": 11, "addWatch": 106, "closeSession": -11,
}
NOTIFICATION_XID = -1
PING_XID = -2

ADD_WATCH_PERSISTENT = 0
ADD_WATCH_PERSISTENT_RECURSIVE = 1

ERR_NONODE = -101
ERR_NODEEXISTS = -110
ERR_SESSION_EXPIRED = -112

#: A jute Stat is 68 bytes: !qqqqiiiqiiq.
STAT_SIZE = 68

_int = struct.Struct(">i")
_long = struct.Struct(">q")
_reply_header = struct.Struct(">iqi")
_request_header = struct.Struct(">ii")


class ZkWireError(Exception):
    """A request failed with a ZooKeeper error code (``code``, e.g. -101 NONODE)."""

    def __init__(self, code: int, what: str = ""):
        super().__init__(f"{what}: ZooKeeper error {code}")
        self.code = code


class ConnectionLoss(ZkWireError):
    def __init__(self, what: str = "connection lost"):
        super().__init__(-4, what)


class SessionExpired(ZkWireError):
    def __init__(self, what: str = "session expired"):
        super().__init__(ERR_SESSION_EXPIRED, what)


# -- jute encoding -------------------------------------------------------------


def _buffer(data: Optional[bytes]) -> bytes:
    if data is None:
        return _int.pack(-1)
    return _int.pack(len(data)) + data


def _ustring(s: str) -> bytes:
    return _buffer(s.encode("utf-8"))


def _bool(b: bool) -> bytes:
    return b"\x01" if b else b"\x00"


_OPEN_ACL_UNSAFE = _int.pack(1) + _int.pack(31) + _ustring("world") + _ustring("anyone")


class _Reader:
    def __init__(self, data: bytes, offset: int = 0):
        self.data, self.offset = data, offset

    def int(self) -> int:
        (v,) = _int.unpack_from(self.data, self.offset)
        self.offset += 4
        return v

    def long(self) -> int:
        (v,) = _long.unpack_from(self.data, self.offset)
        self.offset += 8
        return v

    def buffer(self) -> Optional[bytes]:
        n = self.int()
        if n < 0:
            return None
        v = self.data[self.offset:self.offset + n]
        self.offset += n
        return v

    def ustring(self) -> Optional[str]:
        b = self.buffer()
        return None if b is None else b.decode("utf-8")

    def bool(self) -> bool:
        v = self.data[self.offset]
        self.offset += 1
        return v != 0

    def raw(self, n: int) -> bytes:
        v = self.data[self.offset:self.offset + n]
        self.offset += n
        return v

    def remaining(self) -> int:
        return len(self.data) - self.offset


# -- the client ----------------------------------------------------------------


class _Pending:
    __slots__ = ("done", "zxid", "err", "body")

    def __init__(self):
        self.done = threading.Event()
        self.zxid = 0
        self.err: Optional[int] = None
        self.body = b""


class ZkWire:
    """One connection and session. Use :meth:`connect` to create it."""

    def __init__(self, sock: socket.socket, session_id: int, passwd: bytes, timeout_ms: int,
                 read_only: bool, on_notification, on_close):
        self.sock = sock
        self.session_id = session_id
        self.passwd = passwd
        self.timeout_ms = timeout_ms
        self.read_only = read_only
        self.on_notification = on_notification
        self.on_close = on_close
        self.last_zxid = 0
        self.closed = threading.Event()
        self._send_lock = threading.Lock()
        self._pending: Dict[int, _Pending] = {}
        self._xid = 0
        self._reader = threading.Thread(target=self._read_loop, name="zkwire-reader", daemon=True)
        self._pinger = threading.Thread(target=self._ping_loop, name="zkwire-pinger", daemon=True)
        self._reader.start()
        self._pinger.start()

    # -- connection ---------------------------------------------------------

    @classmethod
    def connect(
        cls,
        hosts: str,
        *,
        timeout_ms: int = 10000,
        session_id: int = 0,
        passwd: bytes = b"\x00" * 16,
        read_only: bool = False,
        last_zxid: int = 0,
        on_notification: Optional[Callable[[bytes], None]] = None,
        on_close: Optional[Callable[[], None]] = None,
        socket_timeout: float = 10.0,
    ) -> "ZkWire":
        """Connect to the first reachable ``host:port`` of ``hosts`` and
        establish (or, with ``session_id``/``passwd``, re-attach to) a session.
        Raises :class:`SessionExpired` when the server refuses the session."""
        last_exc: Optional[Exception] = None
        for hostport in hosts.split("/")[0].split(","):
            host, _, port = hostport.strip().rpartition(":")
            try:
                sock = socket.create_connection((host, int(port)), timeout=socket_timeout)
            except OSError as exc:
                last_exc = exc
                continue
            try:
                return cls._handshake(sock, timeout_ms, session_id, passwd, read_only, last_zxid,
                                      on_notification, on_close)
            except BaseException:
                sock.close()
                raise
        raise ConnectionLoss(f"no server of {hosts!r} reachable: {last_exc}")

    @classmethod
    def _handshake(cls, sock, timeout_ms, session_id, passwd, read_only, last_zxid,
                   on_notification, on_close) -> "ZkWire":
        body = (_int.pack(0) + _long.pack(last_zxid) + _int.pack(timeout_ms)
                + _long.pack(session_id) + _buffer(passwd) + _bool(read_only))
        sock.sendall(_int.pack(len(body)) + body)
        frame = _recv_frame(sock)
        if frame is None:
            raise ConnectionLoss("server closed the connection during the handshake")
        r = _Reader(frame)
        r.int()  # protocolVersion
        negotiated = r.int()
        sid = r.long()
        pw = r.buffer() or b""
        ro = r.bool() if r.remaining() >= 1 else False
        if negotiated <= 0:
            raise SessionExpired(f"session 0x{session_id:x} refused (negotiated timeout {negotiated})")
        sock.settimeout(None)
        return cls(sock, sid, pw, negotiated, ro, on_notification, on_close)

    def _read_loop(self) -> None:
        try:
            while True:
                frame = _recv_frame(self.sock)
                if frame is None:
                    break
                xid, zxid, err = _reply_header.unpack_from(frame, 0)
                if xid == NOTIFICATION_XID:
                    if self.on_notification is not None:
                        self.on_notification(frame)
                    continue
                if zxid > 0:
                    self.last_zxid = zxid
                if xid == PING_XID:
                    continue
                with self._send_lock:
                    pending = self._pending.pop(xid, None)
                if pending is not None:
                    pending.zxid, pending.err = zxid, err
                    pending.body = frame[_reply_header.size:]
                    pending.done.set()
        except OSError:
            pass
        finally:
            self._shutdown()

    def _ping_loop(self) -> None:
        interval = max(self.timeout_ms / 3000.0, 0.05)
        while not self.closed.wait(interval):
            try:
                self._send(PING_XID, OP["ping"], b"")
            except OSError:
                break

    def _shutdown(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self._send_lock:
            pending, self._pending = list(self._pending.values()), {}
        for p in pending:
            p.err = ConnectionLoss().code
            p.done.set()
        if self.on_close is not None:
            self.on_close()

    # -- requests -----------------------------------------------------------

    def _send(self, xid: int, op: int, body: bytes, pending: Optional[_Pending] = None) -> None:
        data = _request_header.pack(xid, op) + body
        with self._send_lock:
            if self.closed.is_set():
                raise ConnectionLoss()
            if pending is not None:
                self._pending[xid] = pending
            self.sock.sendall(_int.pack(len(data)) + data)

    def request(self, op: int, body: bytes, what: str = "", timeout: float = 15.0) -> Tuple[int, bytes]:
        """Send one request; return ``(zxid, reply body)`` or raise :class:`ZkWireError`."""
        pending = _Pending()
        with self._send_lock:
            self._xid += 1
            xid = self._xid
        try:
            self._send(xid, op, body, pending)
        except OSError as exc:
            raise ConnectionLoss(f"{what}: {exc}")
        if not pending.done.wait(timeout):
            raise ConnectionLoss(f"{what}: no reply within {timeout}s")
        if pending.err:
            if pending.err == ConnectionLoss().code:
                raise ConnectionLoss(what)
            raise ZkWireError(pending.err, what or f"op {op}")
        return pending.zxid, pending.body

    def add_watch(self, path: str, mode: int) -> None:
        """``AddWatch`` (opcode 106): 0 persistent, 1 persistent recursive."""
        self.request(OP["addWatch"], _ustring(path) + _int.pack(mode), f"addWatch {path}")

    def create(self, path: str, data: bytes = b"", ephemeral: bool = False, sequential: bool = False) -> str:
        flags = (1 if ephemeral else 0) | (2 if sequential else 0)
        _, body = self.request(OP["create"], _ustring(path) + _buffer(data) + _OPEN_ACL_UNSAFE
                               + _int.pack(flags), f"create {path}")
        return _Reader(body).ustring() or ""

    def set_data(self, path: str, data: bytes, version: int = -1) -> bytes:
        """Returns the node's new Stat as 68 raw jute bytes."""
        _, body = self.request(OP["setData"], _ustring(path) + _buffer(data) + _int.pack(version),
                               f"setData {path}")
        return body[:STAT_SIZE]

    def get_data(self, path: str, watch: bool = False) -> Tuple[bytes, bytes]:
        """Returns ``(data, raw 68-byte Stat)``."""
        _, body = self.request(OP["getData"], _ustring(path) + _bool(watch), f"getData {path}")
        r = _Reader(body)
        data = r.buffer() or b""
        return data, r.raw(STAT_SIZE)

    def exists(self, path: str, watch: bool = False) -> Optional[bytes]:
        """Raw Stat bytes, or None if the node does not exist."""
        try:
            _, body = self.request(OP["exists"], _ustring(path) + _bool(watch), f"exists {path}")
        except ZkWireError as exc:
            if exc.code == ERR_NONODE:
                return None
            raise
        return body[:STAT_SIZE]

    def get_children(self, path: str, watch: bool = False) -> List[str]:
        _, body = self.request(OP["getChildren"], _ustring(path) + _bool(watch), f"getChildren {path}")
        r = _Reader(body)
        return [r.ustring() or "" for _ in range(max(r.int(), 0))]

    def delete(self, path: str, version: int = -1) -> None:
        self.request(OP["delete"], _ustring(path) + _int.pack(version), f"delete {path}")

    def ping(self) -> None:
        """Send a ping (the server answers every ping with xid -2, so it
        cannot be waited for; the background thread pings anyway)."""
        self._send(PING_XID, OP["ping"], b"")

    def barrier(self) -> None:
        """A synchronous round trip (``exists /``): replies and notifications
        are read in order, so every notification the server sent before it
        has been handed to ``on_notification`` when this returns."""
        self.exists("/")

    def close(self) -> None:
        """Close the session (``closeSession``), then the socket."""
        if not self.closed.is_set():
            try:
                self.request(OP["closeSession"], b"", "closeSession", timeout=5.0)
            except ZkWireError:
                pass
        self._shutdown()

    def drop(self) -> None:
        """Close the socket without closing the session."""
        self._shutdown()

    def __enter__(self) -> "ZkWire":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _recv_exact(sock: socket.socket, n: int) -> Optional[bytes]:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket) -> Optional[bytes]:
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    (length,) = _int.unpack(head)
    if length < 0 or length > 64 * 1024 * 1024:
        raise OSError(f"bad frame length {length}")
    return _recv_exact(sock, length) if length else b""
