"""Codec parity with kazoo 2.11.0: the library against kazoo's own code.

* Stats: the same 68 bytes through kazoo (``ZnodeStat._make(stat_struct.unpack_from(buf, 0))``)
  and ``zk_stat_decode``; every kazoo property against ``zk_stat_properties_get`` and the
  single-property functions (doubles compared bit for bit), ``repr`` against
  ``zk_stat_format``, and the encode round trip.
* Watch events: the same bytes through kazoo's ``Watch.deserialize`` (and ``ReplyHeader``)
  and ``zk_watched_event_decode`` / ``zk_notification_decode``, types mapped through kazoo's
  ``EVENT_TYPE_MAP``, states through the header's wire table.
* Errors: what the header documents as an error where kazoo silently misreads.

kazoo is required: the test command installs it. Without it these tests fail
unless ZK_STATES_ALLOW_NO_KAZOO=1 (then they skip).
"""

import ctypes
import os
import random
import struct
from pathlib import Path

import pytest

try:
    from kazoo.protocol import states as kz_states
    from kazoo.protocol.serialization import ReplyHeader, Watch, reply_header_struct, stat_struct
except ImportError as exc:  # pragma: no cover - depends on the environment
    if os.environ.get("ZK_STATES_ALLOW_NO_KAZOO") == "1":
        pytest.skip(f"kazoo not importable ({exc}); allowed by ZK_STATES_ALLOW_NO_KAZOO=1",
                    allow_module_level=True)
    raise ImportError(
        f"kazoo==2.11.0 is required for the kazoo parity tests ({exc}); "
        "install it (pip install kazoo==2.11.0) or set ZK_STATES_ALLOW_NO_KAZOO=1 to skip"
    ) from exc

SEED = 20240611
N_STATS = 5000
N_EVENTS = 5000
N_UTF8 = 3000

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# The header's zk_keeper_state_from_wire() table.
WIRE_STATES = {
    0: "CONNECTING", 1: "CONNECTING", 3: "CONNECTED", 4: "AUTH_FAILED",
    5: "CONNECTED_RO", 6: "CONNECTED", 7: "CLOSED", -112: "EXPIRED_SESSION",
}
EXTRA_TYPES = {5: "DATA_WATCH_REMOVED", 6: "CHILD_WATCH_REMOVED", 7: "PERSISTENT_WATCH_REMOVED"}

KAZOO_PROPERTIES = (
    "acl_version", "children_version", "created", "last_modified", "owner_session_id",
    "creation_transaction_id", "last_modified_transaction_id", "data_length", "children_count",
)


@pytest.fixture(scope="module")
def zs(lib_path):
    import zk_states

    assert Path(zk_states.lib_path).resolve() == Path(lib_path).resolve(), "package loaded another library"
    return zk_states


def fbits(x):
    return struct.pack("<d", x)


# --- random stats -------------------------------------------------------------------


def rand_i64(rng, ms=False):
    r = rng.random()
    if r < 0.25:
        return rng.choice([0, 1, -1, 2, -2, INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1,
                           INT32_MIN, INT32_MAX, 2**53, 2**53 + 1, -(2**53) - 1, 2**63 // 1000 * 1000])
    if ms and r < 0.6:
        # milliseconds beyond 2**53 and near multiples of 1000 (rounding of ms / 1000.0)
        base = rng.choice([rng.randrange(0, 2**41), rng.randrange(2**53, 2**62), rng.randrange(-2**62, 2**62)])
        v = base // 1000 * 1000 + rng.choice([-501, -500, -499, -1, 0, 1, 499, 500, 501, 999])
        return max(INT64_MIN, min(INT64_MAX, v))
    if r < 0.7:
        return rng.randrange(-(2**53) - 5000, 2**53 + 5000)
    return rng.randrange(INT64_MIN, INT64_MAX + 1)


def rand_i32(rng):
    r = rng.random()
    if r < 0.3:
        return rng.choice([0, 1, -1, INT32_MIN, INT32_MAX, INT32_MIN + 1, INT32_MAX - 1])
    if r < 0.6:
        return rng.randrange(-1000, 1000)
    return rng.randrange(INT32_MIN, INT32_MAX + 1)


def rand_stat_fields(rng):
    owner = 0 if rng.random() < 0.35 else rand_i64(rng)
    return (rand_i64(rng), rand_i64(rng), rand_i64(rng, ms=True), rand_i64(rng, ms=True),
            rand_i32(rng), rand_i32(rng), rand_i32(rng), owner, rand_i32(rng), rand_i32(rng),
            rand_i64(rng))


def test_stats_match_kazoo(zs):
    lib, n = zs.lib, zs._native
    rng = random.Random(SEED)
    ephemeral = 0
    for i in range(N_STATS):
        fields = rand_stat_fields(rng)
        buf = stat_struct.pack(*fields) + bytes(rng.randrange(256) for _ in range(rng.choice([0, 0, 1, 7])))
        kz = kz_states.ZnodeStat._make(stat_struct.unpack_from(buf, 0))

        # decode: raw zk_stat and the package's ZnodeStat
        arr = (ctypes.c_uint8 * len(buf)).from_buffer_copy(buf)
        raw = n.zk_stat()
        assert lib.zk_stat_decode(arr, len(buf), ctypes.byref(raw)) == 0
        ours = zs.ZnodeStat.from_c(raw)
        assert tuple(ours) == tuple(kz) == fields, i
        assert zs.ZnodeStat.decode(buf) == kz

        # every property, through zk_stat_properties_get (the package) ...
        for name in KAZOO_PROPERTIES:
            a, b = getattr(ours, name), getattr(kz, name)
            assert type(a) is type(b), (name, a, b)
            if isinstance(b, float):
                assert fbits(a) == fbits(b), (name, fields, a, b)
            else:
                assert a == b, (name, fields, a, b)
        # ... and the single-property functions
        assert fbits(lib.zk_stat_created(ctypes.byref(raw))) == fbits(kz.created)
        assert fbits(lib.zk_stat_last_modified(ctypes.byref(raw))) == fbits(kz.last_modified)
        owner = ctypes.c_int64(12345)
        has = lib.zk_stat_owner_session_id(ctypes.byref(raw), ctypes.byref(owner))
        if kz.owner_session_id is None:
            assert has is False and owner.value == 12345  # *out left alone
        else:
            ephemeral += 1
            assert has is True and owner.value == kz.owner_session_id
        assert lib.zk_stat_owner_session_id(ctypes.byref(raw), None) is has  # out may be NULL
        assert lib.zk_stat_is_ephemeral(ctypes.byref(raw)) is (kz.owner_session_id is not None)
        props = n.zk_stat_properties()
        assert lib.zk_stat_properties_get(ctypes.byref(raw), ctypes.byref(props)) == 0
        assert props.has_owner is (kz.owner_session_id is not None)
        assert props.owner_session_id == (kz.owner_session_id or 0)
        assert props.version == kz.version

        # repr == zk_stat_format, snprintf semantics
        text = repr(kz)
        assert ours.format() == text
        assert lib.zk_stat_format(ctypes.byref(raw), None, 0) == len(text)
        assert len(text) <= zs.ZK_STAT_FORMAT_MAX
        cap = rng.randrange(0, len(text) + 3)
        out = ctypes.create_string_buffer(b"\xaa" * (cap + 1), cap + 1)
        assert lib.zk_stat_format(ctypes.byref(raw), out, cap) == len(text)
        if cap:
            written = min(cap - 1, len(text))
            assert out.raw[:written] == text.encode()[:written] and out.raw[written] == 0
            assert out.raw[written + 1:cap + 1] == b"\xaa" * (cap - written)
        else:
            assert out.raw == b"\xaa" * (cap + 1)

        # encode round trip, equal to kazoo's packing
        enc = (ctypes.c_uint8 * 70)(*([0x5A] * 70))
        assert lib.zk_stat_encode(ctypes.byref(raw), enc, 70) == 0
        assert bytes(enc)[:68] == buf[:68] == stat_struct.pack(*kz)
        assert bytes(enc)[68:] == b"\x5a\x5a"  # the rest is left untouched
        assert ours.encode() == buf[:68]
        assert zs.ZnodeStat(*kz).encode() == buf[:68]
    assert ephemeral > N_STATS // 3  # both branches of owner_session_id were exercised


def test_stat_extremes_and_repr_bound(zs):
    lib = zs.lib
    widest = (INT64_MIN,) * 4 + (INT32_MIN,) * 3 + (INT64_MIN,) + (INT32_MIN,) * 2 + (INT64_MIN,)
    kz = kz_states.ZnodeStat._make(widest)
    assert zs.ZnodeStat(*widest).format() == repr(kz)
    assert len(repr(kz)) == zs.ZK_STAT_FORMAT_MAX  # the documented bound is exact
    raw = zs.ZnodeStat(*widest).to_c()
    assert lib.zk_stat_format(ctypes.byref(raw), None, 0) == zs.ZK_STAT_FORMAT_MAX
    # created/last_modified at the edges of the double rounding
    for ms in (2**53 + 1, 2**53 + 3, INT64_MAX, INT64_MIN, -1, 1, 999, 1001, 10**16 + 1):
        fields = (0, 0, ms, ms, 0, 0, 0, 0, 0, 0, 0)
        assert fbits(zs.ZnodeStat(*fields).created) == fbits(kz_states.ZnodeStat(*fields).created)
        assert fbits(zs.ZnodeStat(*fields).last_modified) == fbits(ms / 1000.0)
    with pytest.raises(OverflowError):
        zs.ZnodeStat(2**63, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0).encode()
    with pytest.raises(OverflowError):
        zs.ZnodeStat(0, 0, 0, 0, 2**31, 0, 0, 0, 0, 0, 0).encode()


def test_stat_decode_errors(zs):
    lib, n = zs.lib, zs._native
    good = stat_struct.pack(*range(1, 12))
    for size in range(68):
        with pytest.raises(struct.error):
            stat_struct.unpack_from(good[:size], 0)  # kazoo raises too
        arr = (ctypes.c_uint8 * 68).from_buffer_copy(good)
        out = n.zk_stat(czxid=77)
        assert lib.zk_stat_decode(arr, size, ctypes.byref(out)) == zs.ZK_ERR_TRUNCATED
        assert out.czxid == 77  # not written on failure
        with pytest.raises(zs.ZkStatesError) as info:
            zs.ZnodeStat.decode(good[:size])
        assert info.value.status == zs.ZK_ERR_TRUNCATED
        assert info.value.message == lib.zk_status_message(zs.ZK_ERR_TRUNCATED).decode()
        small = (ctypes.c_uint8 * 68)(*([9] * 68))
        stat = zs.ZnodeStat.decode(good).to_c()
        assert lib.zk_stat_encode(ctypes.byref(stat), small, size) == zs.ZK_ERR_BUFFER_TOO_SMALL
        assert bytes(small) == b"\x09" * 68  # writes nothing
    arr = (ctypes.c_uint8 * 68).from_buffer_copy(good)
    out = n.zk_stat()
    assert lib.zk_stat_decode(None, 68, ctypes.byref(out)) == zs.ZK_ERR_NULL_ARGUMENT
    assert lib.zk_stat_decode(arr, 68, None) == zs.ZK_ERR_NULL_ARGUMENT
    assert lib.zk_stat_decode(arr, 2**63, ctypes.byref(out)) == zs.ZK_ERR_SIZE_TOO_LARGE
    assert lib.zk_stat_encode(ctypes.byref(out), arr, 2**63) == zs.ZK_ERR_SIZE_TOO_LARGE
    assert lib.zk_stat_format(None, None, 0) == 0
    assert lib.zk_stat_created(None) != lib.zk_stat_created(None)  # NaN
    assert lib.zk_stat_owner_session_id(None, None) is False


# --- random watch events ----------------------------------------------------------------

_RANGES = [(0x20, 0x7E), (0x00, 0x1F), (0xA0, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFF),
           (0x10000, 0x10FFFF), (0x1F300, 0x1F6FF), (0x4E00, 0x9FFF)]


def rand_text(rng, max_len=40):
    """A random str of any code points but surrogates (NUL and controls included)."""
    out = []
    for _ in range(rng.randrange(0, max_len)):
        if rng.random() < 0.5:
            out.append(rng.choice("/abcxyz0123456789-_."))
        else:
            lo, hi = rng.choice(_RANGES)
            out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def rand_path(rng):
    r = rng.random()
    if r < 0.1:
        return None
    if r < 0.2:
        return ""
    if r < 0.25:
        return rand_text(rng, 400)
    return rand_text(rng)


def jute_event(etype, state, path):
    if path is None:
        tail = struct.pack("!i", -1)
    else:
        p = path.encode("utf-8")
        tail = struct.pack("!i", len(p)) + p
    return struct.pack("!ii", etype, state) + tail


def c_decode(zs, fn, buf):
    """Calls a decoder on a ctypes copy of buf: (status, event struct, buffer address)."""
    arr = (ctypes.c_uint8 * max(len(buf), 1)).from_buffer_copy(buf + b"\0" * (len(buf) == 0))
    ev = zs._native.zk_watched_event(type=99, state=99, path=None, path_len=99, zxid=99)
    status = fn(arr, len(buf), ctypes.byref(ev))
    path = None if status or ev.path is None else ctypes.string_at(ev.path, ev.path_len)
    return status, ev, ctypes.addressof(arr), path


def test_watch_events_match_kazoo(zs):
    lib = zs.lib
    rng = random.Random(SEED + 1)
    types = [-1, 1, 2, 3, 4, 5, 6, 7]
    seen_types, seen_states, nulls, empties, non_ascii = set(), set(), 0, 0, 0
    for i in range(N_EVENTS):
        etype, wstate, path = rng.choice(types), rng.choice(list(WIRE_STATES)), rand_path(rng)
        trailing = bytes(rng.randrange(256) for _ in range(rng.choice([0, 0, 0, 3])))
        body = jute_event(etype, wstate, path) + trailing
        kz, kz_off = Watch.deserialize(body, 0)
        assert (kz.type, kz.state, kz.path) == (etype, wstate, path)

        status, ev, base, raw_path = c_decode(zs, lib.zk_watched_event_decode, body)
        assert status == 0, (i, body)
        expected_type = kz_states.EVENT_TYPE_MAP.get(kz.type) or EXTRA_TYPES[kz.type]
        assert kz.type not in EXTRA_TYPES or kz.type not in kz_states.EVENT_TYPE_MAP
        assert lib.zk_event_type_name(ev.type).decode() == expected_type
        assert ev.type == kz.type  # codes are the wire codes
        assert lib.zk_keeper_state_name(ev.state).decode() == WIRE_STATES[kz.state]
        assert ev.zxid == zs.ZK_ZXID_UNKNOWN
        if kz.path is None:
            nulls += 1
            assert ev.path is None and ev.path_len == 0
        else:
            empties += kz.path == ""
            non_ascii += not kz.path.isascii()
            assert raw_path.decode("utf-8") == kz.path
            assert ev.path == base + 12  # a view into the caller's buffer, as documented
            assert ev.path_len == kz_off - 12
        # the package
        assert zs.WatchedEvent.decode(body) == (expected_type, WIRE_STATES[kz.state], kz.path)

        # the whole notification: reply header + event, against kazoo's ReplyHeader
        zxid, err = rng.choice([0, -1, 1, INT64_MAX, INT64_MIN, rng.randrange(INT64_MIN, INT64_MAX)]), \
            rng.choice([0, -101, 5])
        frame = reply_header_struct.pack(-1, zxid, err) + body
        hdr, off = ReplyHeader.deserialize(frame, 0)
        kz2, _ = Watch.deserialize(frame, off)
        assert hdr == (-1, zxid, err) and kz2 == kz
        status, ev2, base2, raw_path2 = c_decode(zs, lib.zk_notification_decode, frame)
        assert status == 0
        assert (ev2.type, ev2.state, ev2.path_len) == (ev.type, ev.state, ev.path_len)
        assert ev2.zxid == hdr.zxid  # which kazoo reads but does not expose
        assert raw_path2 == raw_path
        if kz.path is not None:
            assert ev2.path == base2 + 28
        assert zs.decode_notification(frame) == (zs.WatchedEvent.decode(body), hdr.zxid)
        seen_types.add(etype)
        seen_states.add(wstate)
    assert seen_types == set(types) and seen_states == set(WIRE_STATES)
    assert nulls > 100 and empties > 100 and non_ascii > 1000


def test_utf8_validation_matches_python(zs):
    """Random near-UTF-8 byte strings: kazoo's bytes.decode('utf-8') fails exactly when
    zk_watched_event_decode reports ZK_ERR_INVALID_UTF8, and agrees on the text otherwise."""
    lib = zs.lib
    rng = random.Random(SEED + 2)
    pieces = [b"/", b"a", b"\x00", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\x80", b"\xbf",
              b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xed\x9f\xbf", b"\xef\xbf\xbf",
              b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\xfe", b"\xc3",
              b"\xe2\x82", b"\xf0\x9f\x98"]
    valid = invalid = 0
    for _ in range(N_UTF8):
        raw = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 8)))
        body = struct.pack("!iii", 1, 3, len(raw)) + raw
        status, ev, _, path = c_decode(zs, lib.zk_watched_event_decode, body)
        try:
            kz, _ = Watch.deserialize(body, 0)
        except UnicodeDecodeError:
            invalid += 1
            assert status == zs.ZK_ERR_INVALID_UTF8, raw
        else:
            valid += 1
            assert status == 0 and path.decode("utf-8") == kz.path, raw
    assert valid > 300 and invalid > 300


def test_decoder_rejects_what_kazoo_misreads(zs):
    lib = zs.lib
    E = zs
    good = jute_event(2, 3, "/node/é")
    # Truncated: kazoo raises struct.error below 12 bytes, but silently returns a shorter
    # path (or raises UnicodeDecodeError inside a character) when the path is cut.
    silently_short = 0
    for size in range(len(good)):
        status, ev, _, _ = c_decode(zs, lib.zk_watched_event_decode, good[:size])
        assert (ev.type, ev.path_len) == (99, 99)  # *out untouched
        if size < 12:
            assert status == E.ZK_ERR_TRUNCATED
            with pytest.raises(struct.error):
                Watch.deserialize(good[:size], 0)
        else:
            assert status == E.ZK_ERR_LENGTH_EXCEEDS_INPUT
            try:
                kz, _ = Watch.deserialize(good[:size], 0)
            except UnicodeDecodeError:
                continue
            assert len(kz.path.encode()) == size - 12 < 8  # kazoo misread the path
            silently_short += 1
    assert silently_short >= 7
    # Invalid UTF-8: kazoo raises UnicodeDecodeError out of the reader; we report it.
    bad = struct.pack("!iii", 1, 3, 2) + b"/\xff"
    with pytest.raises(UnicodeDecodeError):
        Watch.deserialize(bad, 0)
    assert c_decode(zs, lib.zk_watched_event_decode, bad)[0] == E.ZK_ERR_INVALID_UTF8
    # Negative lengths other than -1: kazoo reads them as the null string.
    for length in (-2, -3, -1000, INT32_MIN):
        body = struct.pack("!iii", 1, 3, length) + b"/x"
        assert Watch.deserialize(body, 0)[0].path is None
        assert c_decode(zs, lib.zk_watched_event_decode, body)[0] == E.ZK_ERR_NEGATIVE_LENGTH
        with pytest.raises(zs.ZkStatesError) as info:
            zs.WatchedEvent.decode(body)
        assert info.value.status == E.ZK_ERR_NEGATIVE_LENGTH
    # A length past the end: kazoo silently returns what there is.
    body = struct.pack("!iii", 1, 3, INT32_MAX) + b"/x"
    assert Watch.deserialize(body, 0)[0].path == "/x"
    assert c_decode(zs, lib.zk_watched_event_decode, body)[0] == E.ZK_ERR_LENGTH_EXCEEDS_INPUT
    # Type codes outside the wire set (kazoo returns the raw int, _read_watch_event drops it).
    for etype in (0, -2, -3, 8, 100, INT32_MIN, INT32_MAX):
        body = jute_event(etype, 3, "/x")
        assert Watch.deserialize(body, 0)[0].type == etype
        assert etype not in kz_states.EVENT_TYPE_MAP
        assert c_decode(zs, lib.zk_watched_event_decode, body)[0] == E.ZK_ERR_INVALID_EVENT_TYPE
    # Keeper states outside the wire table (-1 is the deprecated Unknown, 2 is unused).
    for state in (-1, 2, 8, -113, 999, INT32_MIN, INT32_MAX):
        body = jute_event(1, state, "/x")
        assert Watch.deserialize(body, 0)[0].state == state
        assert c_decode(zs, lib.zk_watched_event_decode, body)[0] == E.ZK_ERR_INVALID_KEEPER_STATE
        with pytest.raises(zs.ZkStatesError):
            zs.keeper_state_from_wire(state)
    for code, name in WIRE_STATES.items():
        assert zs.keeper_state_from_wire(code) == name
    # Notifications: xid must be -1, and the 16-byte header must be complete.
    frame = reply_header_struct.pack(-1, 7, 0) + good
    for size in range(16):
        assert c_decode(zs, lib.zk_notification_decode, frame[:size])[0] == E.ZK_ERR_TRUNCATED
    for xid in (0, 1, -2, -4, INT32_MAX):
        other = reply_header_struct.pack(xid, 7, 0) + good
        assert ReplyHeader.deserialize(other, 0)[0].xid == xid
        assert c_decode(zs, lib.zk_notification_decode, other)[0] == E.ZK_ERR_NOT_A_NOTIFICATION
    # NULL and oversized arguments.
    ev = zs._native.zk_watched_event()
    arr = (ctypes.c_uint8 * len(good)).from_buffer_copy(good)
    for fn in (lib.zk_watched_event_decode, lib.zk_notification_decode):
        assert fn(None, 12, ctypes.byref(ev)) == E.ZK_ERR_NULL_ARGUMENT
        assert fn(arr, len(good), None) == E.ZK_ERR_NULL_ARGUMENT
        assert fn(arr, 2**63, ctypes.byref(ev)) == E.ZK_ERR_SIZE_TOO_LARGE


def test_status_codes_have_distinct_messages(zs):
    messages = {code: zs.status_message(code) for code in zs.STATUS_CODES.values()}
    assert len(set(messages.values())) == len(messages)
    assert messages[0] == "success"
    assert zs.status_message(len(messages)) == "unknown status code"
    assert zs.status_message(-1) == "unknown status code"
    err = zs.ZkStatesError(zs.ZK_ERR_INVALID_UTF8)
    assert (err.status, err.message) == (6, messages[6]) and err.args == (6, messages[6])
