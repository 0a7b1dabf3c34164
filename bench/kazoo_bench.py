"""kazoo 2.11 baselines for bench/results.md, measured the way kazoo does the work.

  kazoo.stat_decode_ns       stat_struct.unpack_from + ZnodeStat._make + .created + .owner_session_id
  kazoo.stat_props_ns        every ZnodeStat convenience property of a decoded stat
  kazoo.stat_repr_ns         repr(ZnodeStat)
  kazoo.watch_deserialize_ns Watch.deserialize of a 22-byte WatcherEvent
  kazoo.dispatch.eps         SequentialThreadingHandler.dispatch_callback(Callback('watch', fn, (ev,)))
                             for N events until a final callback signals completion
  kazoo.read_watch_event.eps ConnectionHandler._read_watch_event on pre-serialized notification
                             frames, a one-shot data watch re-registered before each (as C's "frame")

Prints "key v1,v2,..." lines (one value per repetition), like the C programs.
Usage: python kazoo_bench.py [--quick]   (or BENCH_QUICK=1)
"""
import os
import struct
import sys
import threading
from time import perf_counter_ns

from kazoo.client import KazooClient
from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.protocol.serialization import Watch, stat_struct
from kazoo.protocol.states import Callback, EventType, KeeperState, WatchedEvent, ZnodeStat
from kazoo.version import __version__ as KAZOO_VERSION

QUICK = "--quick" in sys.argv or os.environ.get("BENCH_QUICK", "0") not in ("", "0")
REPS = 2 if QUICK else 9
NIN = 64  # distinct inputs, cycled; the same values as bench/micro.c


def stat_values(i):
    czxid = 0x100000000 + i * 7919
    ctime = 1700000000000 + i * 1000003
    return (czxid, czxid + 1234 * (i % 7), ctime, ctime + 5555 * (i % 3), i % 17, i * 3, i % 2,
            0x1000A1B2C3D4E5 + i if i % 2 else 0, 100 + i * 13, i % 5, czxid + 99)


STATS = [stat_struct.pack(*stat_values(i)) for i in range(NIN)]
EVENTS = [struct.pack("!iii", 1 + i % 4, 3, 10) + b"/app/n-%03d" % i for i in range(NIN)]
FRAME_PATHS = ["/app/svc-17/shard-3/node-%02d" % i for i in range(NIN)]
# ReplyHeader(xid -1, zxid, err 0) + WatcherEvent(CHANGED, SyncConnected, path)
FRAMES = [struct.pack("!iqiiii", -1, 0x100000000 + i, 0, 3, 3, len(p)) + p.encode()
          for i, p in enumerate(FRAME_PATHS)]


def per_call_ns(loop, n):
    t0 = perf_counter_ns()
    loop(n)
    return (perf_counter_ns() - t0) / n


def stat_decode(n):
    unpack, make, bufs = stat_struct.unpack_from, ZnodeStat._make, STATS
    for i in range(n):
        st = make(unpack(bufs[i & 63], 0))
        st.created
        st.owner_session_id


DECODED = [ZnodeStat._make(stat_struct.unpack_from(b, 0)) for b in STATS]


def stat_props(n):
    stats = DECODED
    for i in range(n):
        st = stats[i & 63]
        (st.creation_transaction_id, st.last_modified_transaction_id, st.created, st.last_modified,
         st.owner_session_id, st.version, st.children_version, st.acl_version, st.data_length,
         st.children_count)


def stat_repr(n):
    stats = DECODED
    for i in range(n):
        repr(stats[i & 63])


def watch_deserialize(n):
    deserialize, bufs = Watch.deserialize, EVENTS
    for i in range(n):
        deserialize(bufs[i & 63], 0)


def dispatch(n):
    """Events per second through SequentialThreadingHandler, end to end."""
    handler = SequentialThreadingHandler()
    handler.start()
    count = [0]

    def fn(event):
        count[0] += 1

    ev = WatchedEvent(EventType.CHANGED, KeeperState.CONNECTED, "/app/svc-17/shard-3/node-42")
    done = threading.Event()
    t0 = perf_counter_ns()
    for _ in range(n):
        handler.dispatch_callback(Callback("watch", fn, (ev,)))
    handler.dispatch_callback(Callback("watch", done.set, ()))
    done.wait()
    elapsed = perf_counter_ns() - t0
    handler.stop()
    assert count[0] == n, count[0]
    return n * 1e9 / elapsed


def read_watch_event(n):
    """Events per second through kazoo's own notification path, end to end."""
    client = KazooClient(hosts="127.0.0.1:1")  # never started: no connection
    client.handler.start()
    client._stopped.clear()  # as if connected, so events are delivered
    conn, watchers = client._connection, client._data_watchers
    count = [0]

    def fn(event):
        count[0] += 1

    done = threading.Event()
    frames, paths = FRAMES, FRAME_PATHS
    t0 = perf_counter_ns()
    for i in range(n):
        k = i & 63
        watchers[paths[k]].add(fn)
        conn._read_watch_event(frames[k], 16)
    client.handler.dispatch_callback(Callback("watch", done.set, ()))
    done.wait()
    elapsed = perf_counter_ns() - t0
    client.handler.stop()
    assert count[0] == n, count[0]
    return n * 1e9 / elapsed


def emit(key, values):
    print(key, ",".join("%.6g" % v for v in values), flush=True)


def main():
    print("kazoo.version", KAZOO_VERSION, flush=True)
    micro = [("kazoo.stat_decode_ns", stat_decode), ("kazoo.stat_props_ns", stat_props),
             ("kazoo.stat_repr_ns", stat_repr), ("kazoo.watch_deserialize_ns", watch_deserialize)]
    n_micro = 2000 if QUICK else 200000
    values = {key: [] for key, _ in micro}
    for _ in range(REPS):  # interleaved repetitions
        for key, loop in micro:
            values[key].append(per_call_ns(loop, n_micro))
    for key, _ in micro:
        emit(key, values[key])
    n_events = 2000 if QUICK else 200000
    emit("kazoo.dispatch.eps", [dispatch(n_events) for _ in range(REPS)])
    emit("kazoo.read_watch_event.eps", [read_watch_event(n_events) for _ in range(REPS)])


if __name__ == "__main__":
    main()
