#!/usr/bin/env python3
"""Writes the checked-in seed corpus (fuzz/corpus/<target>/<name>).

Each seed is a small, meaningful input; the fuzzers start from these. Run it
again after changing a target's input format (scripts/fuzz never rewrites the
corpus directories' seeds, it only adds what libFuzzer finds to a scratch
corpus under fuzz/target/).
"""

import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"


def be32(x):
    return struct.pack(">i", x)


def be64(x):
    return struct.pack(">q", x)


def ustring(b):
    return be32(-1) if b is None else be32(len(b)) + b


def watcher_event(t, s, path):
    return be32(t) + be32(s) + ustring(path)


def header(xid, zxid, err=0):
    return be32(xid) + be64(zxid) + be32(err)


def stat(*fields):
    return struct.pack(">qqqqiiiqiiq", *fields)


SEEDS = {
    "stat_decode": {
        "ordinary": stat(5, 7, 1_700_000_000_123, 1_700_000_000_999, 2, 1, 0, 0, 11, 0, 7),
        "ephemeral": stat(1, 1, 1000, 2000, 0, 0, 0, 0x1234_5678_9abc, 0, 0, 1),
        "all_min": stat(*([-(2**63)] * 4 + [-(2**31)] * 3 + [-(2**63)] + [-(2**31)] * 2 + [-(2**63)])),
        "all_max": stat(*([2**63 - 1] * 4 + [2**31 - 1] * 3 + [2**63 - 1] + [2**31 - 1] * 2 + [2**63 - 1])),
        "rounding": stat(0, 0, 2**53 + 1, -(2**53) - 501, -1, -1, -1, -1, -1, -1, -1),
        "trailing": stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11) + b"\xff\xfe",
        "truncated": stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)[:67],
        "empty": b"",
    },
    "watched_event_decode": {
        "created_connected": watcher_event(1, 3, b"/a/b"),
        "session_null_path": watcher_event(-1, 0, None),
        "empty_path": watcher_event(4, 6, b""),
        "expired": watcher_event(-1, -112, None),
        "utf8_path": watcher_event(3, 5, "/caf\u00e9/\u65e5\u672c".encode()),
        "trailing": watcher_event(2, 7, b"/x") + b"junk",
        "bad_type": watcher_event(-2, 3, b"/a"),
        "bad_state": watcher_event(1, 2, b"/a"),
        "negative_len": be32(1) + be32(3) + be32(-2),
        "len_past_end": be32(1) + be32(3) + be32(100) + b"/a",
        "bad_utf8": watcher_event(1, 3, b"/\xff\xfe"),
        "truncated": watcher_event(1, 3, None)[:11],
    },
    "notification_decode": {
        "child": header(-1, 0x1_0000_0005) + watcher_event(4, 3, b"/p"),
        "session": header(-1, -1) + watcher_event(-1, 3, None),
        "err_ignored": header(-1, 42, -101) + watcher_event(2, 3, b"/gone"),
        "not_notification": header(7, 42) + watcher_event(1, 3, b"/a"),
        "short_header": header(-1, 42)[:15],
        "short_event": header(-1, 42) + watcher_event(1, 3, None)[:8],
        "bad_utf8": header(-1, 1) + watcher_event(1, 3, b"/\xc3"),
    },
}

# --- dispatcher scripts (see the table in fuzz_targets/dispatcher_script.rs) ---
WATCH_ADD, WATCH_REMOVE, LISTENER_ADD, LISTENER_REMOVE, EVENT, SESSION, SUBMIT = range(7)
FLUSH, CHROOT, STATS, STATE, BLOCK, UNBLOCK, REENTER = range(7, 14)
# operand table indexes
P = {"/": 0, "/a": 1, "/a/b": 2, "/a/b/c": 3, "/b": 4, "/app": 5, "/app/a": 6, "/app/a/b": 7,
     "/application": 8, "/\u00e9": 9, "/a/b/c/d": 10, "": 14, "a": 15, "/a/": 16, "//": 17}
DATA, CHILD, PERSISTENT, RECURSIVE = range(4)
RUST, C = 0, 1
CREATED, DELETED, CHANGED, CHILDEV, NONE_EV, NOTWATCHING, BAD_TYPE = 0, 1, 2, 3, 10, 11, 18
CONNECTING, CONNECTED, CONNECTED_RO, AUTH_FAILED, CLOSED, EXPIRED, BAD_STATE = 0, 1, 4, 5, 6, 7, 13


def head(options=0, cap_index=0):
    return bytes([options | (cap_index << 2)])


def watch(path, kind, api=RUST):
    return bytes([WATCH_ADD, P[path], kind, api])


def event(t, path, zxid=3):
    return bytes([EVENT, t, P[path], zxid])


def session(s):
    return bytes([SESSION, s])


def listener(api=RUST, ret_true=False):
    return bytes([LISTENER_ADD, api | (2 if ret_true else 0)])


op = lambda *b: bytes(b)

SEEDS["dispatcher_script"] = {
    "one_shots": head() + listener() + session(CONNECTING) + session(CONNECTED)
    + watch("/a", DATA) + watch("/a", CHILD, C) + watch("/a", DATA, C)
    + event(CHANGED, "/a") + event(CHANGED, "/a") + event(DELETED, "/a") + event(CHILDEV, "/a")
    + op(FLUSH) + op(STATS) + op(STATE),
    "persistent_recursive": head() + watch("/a", RECURSIVE) + watch("/a/b", PERSISTENT, C)
    + watch("/", RECURSIVE, C) + event(CREATED, "/a/b/c") + event(CHILDEV, "/a/b")
    + event(CHANGED, "/") + event(DELETED, "/a/b") + op(FLUSH) + op(STATS),
    "kazoo_sessions": head() + listener() + listener(C, True) + watch("/a", DATA)
    + watch("/b", PERSISTENT) + session(CONNECTING) + session(CONNECTED) + session(CONNECTING)
    + session(CONNECTED_RO) + session(CONNECTED) + session(EXPIRED) + session(CONNECTING)
    + session(CONNECTED) + session(AUTH_FAILED) + session(CLOSED) + session(CONNECTING)
    + op(STATE) + op(FLUSH) + op(STATS),
    "curator_states": head(options=1) + listener(C) + listener() + session(CONNECTING)
    + session(CONNECTED_RO) + session(CONNECTED) + session(CONNECTING) + session(CONNECTED)
    + session(EXPIRED) + session(CONNECTED) + op(FLUSH) + op(STATE),
    "keep_watches": head(options=2) + watch("/a", DATA) + watch("/a", CHILD) + watch("/a", RECURSIVE)
    + session(CONNECTED) + session(CONNECTING) + session(CONNECTED) + event(CHANGED, "/a")
    + session(CONNECTING) + session(CLOSED) + op(FLUSH) + op(STATS),
    "chroot": head() + op(CHROOT, 2) + watch("/", DATA) + watch("/a", DATA) + watch("/a", RECURSIVE)
    + event(CHANGED, "/app") + event(CREATED, "/app/a") + event(CHANGED, "/application")
    + event(CREATED, "/app/a/b") + op(CHROOT, 6) + op(CHROOT, 9) + op(CHROOT, 0) + event(CHANGED, "/a")
    + op(FLUSH) + op(STATS),
    "gate_queue_bound": head(cap_index=2) + op(BLOCK) + op(SUBMIT, 0) + op(SUBMIT, 1)
    + watch("/a", PERSISTENT) + event(CHANGED, "/a") + op(STATS) + op(UNBLOCK) + op(SUBMIT, 0)
    + op(FLUSH) + op(STATS),
    "remove_while_blocked": head() + watch("/a", PERSISTENT) + watch("/a", DATA, C) + listener(C)
    + session(CONNECTED) + op(BLOCK) + event(CHANGED, "/a") + session(CONNECTING)
    + op(WATCH_REMOVE, 0, 0) + op(WATCH_REMOVE, 1, 1) + op(LISTENER_REMOVE, 2, 1) + op(STATS)
    + op(BLOCK) + event(CHANGED, "/a") + op(UNBLOCK) + op(STATS) + op(UNBLOCK) + op(FLUSH),
    "remove_racing": head() + watch("/a", PERSISTENT) + watch("/a", DATA) + listener(RUST, True)
    + session(CONNECTED) + event(CHANGED, "/a") + event(CHANGED, "/a") + session(CONNECTING)
    + op(WATCH_REMOVE, 0, 1) + op(WATCH_REMOVE, 1, 0) + op(LISTENER_REMOVE, 2, 0)
    + op(WATCH_REMOVE, 0, 1) + op(LISTENER_REMOVE, 5, 0) + op(FLUSH) + op(STATS),
    "bad_inputs": head() + bytes([WATCH_ADD, P["/a"], 8, C]) + watch("", DATA) + watch("/a/", DATA, C)
    + bytes([WATCH_ADD, 0xE0, 3, ord("/"), 0xC3, 0xA9, DATA, C])
    + bytes([EVENT, BAD_TYPE, P["/a"], 0]) + event(NONE_EV, "/a") + event(NOTWATCHING, "/a")
    + event(CHANGED, "//") + session(BAD_STATE) + op(FLUSH) + op(STATS),
    "submit_checks": head() + op(SUBMIT, 2) + op(SUBMIT, 3) + op(SUBMIT, 1) + op(FLUSH) + op(STATS),
    # REENTER (13) + an operation: made from a callback on the dispatch thread.
    "reentrant": head() + watch("/a", PERSISTENT) + listener() + op(REENTER, WATCH_ADD, P["/b"], DATA, 0)
    + op(REENTER, SESSION, CONNECTED) + op(REENTER, EVENT, CHANGED, P["/a"], 2) + op(REENTER, EVENT, CREATED, P["/b"], 1)
    + op(REENTER, WATCH_REMOVE, 0, 0) + op(REENTER, LISTENER_REMOVE, 1, 0) + op(REENTER, SUBMIT, 0)
    + op(REENTER, LISTENER_ADD, 2) + op(REENTER, SESSION, CONNECTING) + op(REENTER, WATCH_ADD, P["a"], DATA, 0)
    + op(FLUSH) + op(STATS) + op(STATE),
    # Any int32 code: 0xf0 then four bytes.
    "raw_codes": head() + bytes([EVENT, 0xF0, 0x80, 0, 0, 0, P["/a"], 0]) + bytes([SESSION, 0xF0, 0x7F, 0xFF, 0xFF, 0xFF])
    + bytes([SESSION, 0xF0, 0xFF, 0xFF, 0xFF, 0x90]) + bytes([WATCH_ADD, P["/a"], 0xF0, 0, 0, 0, 3, 0])
    + bytes([EVENT, 0xF0, 0, 0, 0, 1, P["/a"], 0]) + op(FLUSH) + op(STATS),
}


def main():
    for target, seeds in SEEDS.items():
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (d / name).write_bytes(data)
    print("wrote", sum(len(s) for s in SEEDS.values()), "seeds")


if __name__ == "__main__":
    main()
