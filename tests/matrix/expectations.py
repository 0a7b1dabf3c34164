"""The bad-input matrix's expectations: one entry per function of include/zk_states.h.

For every function the table gives valid arguments (``args``, with ``setup`` C code
declaring what they need) and what the header documents for

* the valid call (``ok``),
* NULL in each pointer position, one at a time (``null``: every pointer parameter
  of the prototype must be listed, or gen_matrix.py fails),
* out-of-range codes in each ``int32_t``/``int`` enum-code parameter (``enums``:
  every such parameter must be listed here or in ``not_enum``, or gen_matrix.py
  fails): INT32_MIN, -1000, 1000, INT32_MAX and the values just outside the
  valid set,
* further documented failures (``extra``): lengths above PTRDIFF_MAX, unknown
  option bits, invalid codes inside buffers and structs, invalid paths.

On every failure the generated program also checks that the output parameters
(``outs``) were left untouched and that a user data pointer offered to a
registration (``registers``) is never freed. Every registration that succeeded
must have its user data freed exactly once by the time its dispatcher is freed.

C snippets may use ``$CASE`` (the case number), ``$TOK`` (a user data pointer
unique to the case) and the helpers of the generated prelude (``mx_*``).
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union


@dataclass
class Outcome:
    """What a call must produce: ``check`` is a C expression (``r`` is the
    result); ``fails`` marks a documented failure."""

    check: str
    fails: bool
    desc: str = ""


def status(code: str) -> Outcome:
    return Outcome(f"r == {code}", code != "ZK_OK", code)


OK = status("ZK_OK")
NULL_ARG = status("ZK_ERR_NULL_ARGUMENT")


def ret(check: str, fails: bool, desc: str = "") -> Outcome:
    return Outcome(check, fails, desc or check)


@dataclass
class Enum:
    """An enum-code integer parameter: the valid codes (a list, or
    ``"enum:<name>"`` for the values of that enum in the header), the outcome
    for any other code, and argument overrides for these cases."""

    valid: Union[str, List[int]]
    outcome: Outcome
    args: Dict[str, str] = field(default_factory=dict)
    setup: str = ""


@dataclass
class Case:
    """A further documented case: a label, argument overrides, the outcome."""

    label: str
    args: Dict[str, str]
    outcome: Outcome
    setup: str = ""


@dataclass
class Func:
    args: Dict[str, str]
    ok: Outcome
    null: Dict[str, Outcome] = field(default_factory=dict)
    setup: str = ""
    teardown: str = ""
    outs: Dict[str, str] = field(default_factory=dict)
    enums: Dict[str, Enum] = field(default_factory=dict)
    not_enum: Dict[str, str] = field(default_factory=dict)
    extra: List[Case] = field(default_factory=list)
    # (user_data param, free_fn param) of a registration whose user data the
    # library owns on success.
    registers: Optional[tuple] = None


INVALID_EVENT_TYPE = status("ZK_ERR_INVALID_EVENT_TYPE")
INVALID_KEEPER_STATE = status("ZK_ERR_INVALID_KEEPER_STATE")
INVALID_KAZOO_STATE = status("ZK_ERR_INVALID_KAZOO_STATE")
INVALID_WATCH_KIND = status("ZK_ERR_INVALID_WATCH_KIND")
INVALID_PATH = status("ZK_ERR_INVALID_PATH")
INVALID_UTF8 = status("ZK_ERR_INVALID_UTF8")
INVALID_ARGUMENT = status("ZK_ERR_INVALID_ARGUMENT")
SIZE_TOO_LARGE = status("ZK_ERR_SIZE_TOO_LARGE")
TRUNCATED = status("ZK_ERR_TRUNCATED")
UNKNOWN_NAME = status("ZK_ERR_UNKNOWN_NAME")
NOT_FOUND = status("ZK_ERR_NOT_FOUND")
BUFFER_TOO_SMALL = status("ZK_ERR_BUFFER_TOO_SMALL")

# The wire tables of the header (zk_keeper_state_from_wire, _from_c_client).
WIRE_STATES = [0, 1, 3, 4, 5, 6, 7, -112]
C_CLIENT_STATES = [0, 1, 2, 3, 5, 7, -112, -113, 999]
# Event types a WatcherEvent may carry: every zk_event_type but NOT_WATCHING (-2).
WIRE_EVENT_TYPES = [-1, 1, 2, 3, 4, 5, 6, 7]

BIG = "(size_t)PTRDIFF_MAX + 1"
# Codes inside buffers and structs: the generator's standard bad values.
BAD_INT32 = ["INT32_MIN", "-1000", "1000", "INT32_MAX"]


def bad_codes(valid):
    """Standard out-of-range values plus the neighbours of the valid set."""
    out = list(BAD_INT32)
    for v in valid:
        for n in (v - 1, v + 1):
            if n not in valid and str(n) not in out:
                out.append(str(n))
    return out


def event_buf_cases(decoder_call_setup, build, valid_types, valid_states):
    """Invalid type and state codes inside an encoded event."""
    cases = []
    for t in bad_codes(valid_types):
        cases.append(Case(f"type {t} in the buffer", {}, INVALID_EVENT_TYPE,
                          setup=build.format(t=t, s="3")))
    for s in bad_codes(valid_states):
        cases.append(Case(f"state {s} in the buffer", {}, INVALID_KEEPER_STATE,
                          setup=build.format(t="1", s=s)))
    return cases


WATCHED_BUILD = "uint8_t buf[64]; size_t len = mx_event(buf, {t}, {s}, \"/a\"); zk_watched_event out; MX_SENTINEL(out);"
NOTIF_BUILD = ("uint8_t buf[80]; size_t len = mx_notification(buf, -1, 42, {t}, {s}, \"/a\"); "
               "zk_watched_event out; MX_SENTINEL(out);")

STAT_SETUP = "zk_stat st = mx_stat();"

FUNCS: Dict[str, Func] = {
    # ---- the C client adapter -------------------------------------------------
    "zk_dispatcher_c_watcher": Func(
        setup="zk_dispatcher_stats s0 = mx_stats(mx_d); (void)s0;",
        args={"zh": "mx_zh()", "type": "1", "state": "3", "path": "\"/mx/adapter\"", "watcher_ctx": "(void *)mx_d"},
        ok=ret("mx_stats(mx_d).events_fed == s0.events_fed + 1 && mx_stats(mx_d).adapter_errors == s0.adapter_errors",
               False, "node event fed, no adapter error"),
        null={
            "zh": ret("mx_stats(mx_d).events_fed == s0.events_fed + 1 && mx_stats(mx_d).adapter_errors == s0.adapter_errors",
                      False, "zh is not used"),
            "path": ret("mx_stats(mx_d).adapter_errors == s0.adapter_errors + 1 && mx_stats(mx_d).events_fed == s0.events_fed",
                        True, "a node event without a path is counted in adapter_errors"),
            "watcher_ctx": ret("mx_stats(mx_d).adapter_errors == s0.adapter_errors && mx_stats(mx_d).events_fed == s0.events_fed",
                               True, "no dispatcher: ignored"),
        },
        enums={
            # The C client's event codes (ZOO_SESSION_EVENT -1, ZOO_NOTWATCHING_EVENT -2, 1..4) and 5..7.
            "type": Enum("enum:zk_event_type",
                         ret("mx_stats(mx_d).adapter_errors == s0.adapter_errors + 1 && mx_stats(mx_d).events_fed == s0.events_fed",
                             True, "unknown type counted in adapter_errors")),
            # Only read for session events (type -1).
            "state": Enum(C_CLIENT_STATES,
                          ret("mx_stats(mx_d).adapter_errors == s0.adapter_errors + 1 && mx_stats(mx_d).sessions_fed == s0.sessions_fed",
                              True, "unknown state counted in adapter_errors"),
                          args={"type": "-1"}),
        },
        extra=[
            Case("session event, NULL path", {"type": "-1", "state": "3", "path": "NULL"},
                 ret("mx_stats(mx_d).sessions_fed == s0.sessions_fed + 1 && mx_stats(mx_d).adapter_errors == s0.adapter_errors",
                     False, "session events need no path")),
            Case("invalid path", {"path": "\"no-slash\""},
                 ret("mx_stats(mx_d).adapter_errors == s0.adapter_errors + 1", True, "adapter_errors")),
            Case("invalid UTF-8 path", {"path": "\"/\\xff\""},
                 ret("mx_stats(mx_d).adapter_errors == s0.adapter_errors + 1", True, "adapter_errors")),
        ],
    ),
    # ---- version --------------------------------------------------------------
    "zk_states_version": Func(args={}, ok=ret("r != NULL && strcmp(r, ZK_STATES_VERSION) == 0", False)),
    "zk_states_abi_version": Func(args={}, ok=ret("r == ZK_STATES_ABI_VERSION", False)),
    # ---- names ----------------------------------------------------------------
    "zk_status_message": Func(
        args={"status": "ZK_ERR_NULL_ARGUMENT"},
        ok=ret("r != NULL && strcmp(r, \"unknown status code\") != 0", False),
        enums={"status": Enum("enum:zk_status", ret("r != NULL && strcmp(r, \"unknown status code\") == 0", True,
                                                      "\"unknown status code\", never NULL"))},
    ),
    "zk_event_type_name": Func(
        args={"event_type": "ZK_EVENT_TYPE_CREATED"},
        ok=ret("r != NULL && strcmp(r, \"CREATED\") == 0", False),
        enums={"event_type": Enum("enum:zk_event_type", ret("r == NULL", True, "NULL"))},
    ),
    "zk_keeper_state_name": Func(
        args={"state": "ZK_KEEPER_STATE_EXPIRED_SESSION"},
        ok=ret("r != NULL && strcmp(r, \"EXPIRED_SESSION\") == 0", False),
        enums={"state": Enum("enum:zk_keeper_state", ret("r == NULL", True, "NULL"))},
    ),
    "zk_kazoo_state_name": Func(
        args={"state": "ZK_KAZOO_STATE_SUSPENDED"},
        ok=ret("r != NULL && strcmp(r, \"SUSPENDED\") == 0", False),
        enums={"state": Enum("enum:zk_kazoo_state", ret("r == NULL", True, "NULL"))},
    ),
    "zk_event_type_from_name": Func(
        setup="zk_event_type out; MX_SENTINEL(out);",
        args={"name": "\"CHILD\"", "out": "&out"},
        outs={"out": "out"},
        ok=ret("r == ZK_OK && out == ZK_EVENT_TYPE_CHILD", False),
        null={"name": NULL_ARG, "out": NULL_ARG},
        extra=[Case("lower case", {"name": "\"child\""}, UNKNOWN_NAME),
               Case("empty", {"name": "\"\""}, UNKNOWN_NAME),
               Case("prefix", {"name": "\"CHIL\""}, UNKNOWN_NAME)],
    ),
    "zk_keeper_state_from_name": Func(
        setup="zk_keeper_state out; MX_SENTINEL(out);",
        args={"name": "\"CONNECTED_RO\"", "out": "&out"},
        outs={"out": "out"},
        ok=ret("r == ZK_OK && out == ZK_KEEPER_STATE_CONNECTED_RO", False),
        null={"name": NULL_ARG, "out": NULL_ARG},
        extra=[Case("unknown", {"name": "\"SUSPENDED\""}, UNKNOWN_NAME),
               Case("trailing space", {"name": "\"CLOSED \""}, UNKNOWN_NAME)],
    ),
    "zk_kazoo_state_from_name": Func(
        setup="zk_kazoo_state out; MX_SENTINEL(out);",
        args={"name": "\"LOST\"", "out": "&out"},
        outs={"out": "out"},
        ok=ret("r == ZK_OK && out == ZK_KAZOO_STATE_LOST", False),
        null={"name": NULL_ARG, "out": NULL_ARG},
        extra=[Case("unknown", {"name": "\"CONNECTING\""}, UNKNOWN_NAME),
               Case("invalid UTF-8", {"name": "\"\\xff\""}, UNKNOWN_NAME)],
    ),
    # ---- conversions ------------------------------------------------------------
    "zk_keeper_state_from_wire": Func(
        setup="zk_keeper_state out; MX_SENTINEL(out);",
        args={"code": "6", "out": "&out"},
        outs={"out": "out"},
        ok=ret("r == ZK_OK && out == ZK_KEEPER_STATE_CONNECTED", False),
        null={"out": NULL_ARG},
        enums={"code": Enum(WIRE_STATES, INVALID_KEEPER_STATE)},
    ),
    "zk_keeper_state_from_c_client": Func(
        setup="zk_keeper_state out; MX_SENTINEL(out);",
        args={"code": "999", "out": "&out"},
        outs={"out": "out"},
        ok=ret("r == ZK_OK && out == ZK_KEEPER_STATE_CLOSED", False),
        null={"out": NULL_ARG},
        enums={"code": Enum(C_CLIENT_STATES, INVALID_KEEPER_STATE)},
    ),
    # ---- Stat -------------------------------------------------------------------
    "zk_stat_decode": Func(
        setup="uint8_t buf[ZK_STAT_WIRE_SIZE + 4]; zk_stat src = mx_stat(); size_t len = sizeof buf; "
              "zk_stat out; MX_SENTINEL(out); memset(buf, 0, sizeof buf); "
              "if (zk_stat_encode(&src, buf, sizeof buf) != ZK_OK) mx_fail(\"zk_stat_decode\", \"setup\");",
        args={"buf": "buf", "len": "len", "out": "&out"},
        outs={"out": "out"},
        ok=ret("r == ZK_OK && mx_stat_eq(&out, &src)", False),
        null={"buf": NULL_ARG, "out": NULL_ARG},
        extra=[Case("len 0", {"len": "0"}, TRUNCATED),
               Case("len 67", {"len": "ZK_STAT_WIRE_SIZE - 1"}, TRUNCATED),
               Case("len PTRDIFF_MAX + 1", {"len": BIG}, SIZE_TOO_LARGE),
               Case("len SIZE_MAX", {"len": "SIZE_MAX"}, SIZE_TOO_LARGE)],
    ),
    "zk_stat_encode": Func(
        setup=STAT_SETUP + " uint8_t buf[ZK_STAT_WIRE_SIZE]; MX_SENTINEL(buf);",
        args={"stat": "&st", "buf": "buf", "len": "sizeof buf"},
        outs={"buf": "buf"},
        ok=ret("r == ZK_OK && buf[7] == 0x05", False, "ZK_OK, big-endian czxid"),
        null={"stat": NULL_ARG, "buf": NULL_ARG},
        extra=[Case("len 67", {"len": "ZK_STAT_WIRE_SIZE - 1"}, BUFFER_TOO_SMALL),
               Case("len 0", {"len": "0"}, BUFFER_TOO_SMALL),
               Case("len PTRDIFF_MAX + 1", {"len": BIG}, SIZE_TOO_LARGE)],
    ),
    "zk_stat_created": Func(
        setup=STAT_SETUP, args={"stat": "&st"},
        ok=ret("r == 1700000000.123", False),
        null={"stat": ret("isnan(r)", True, "NaN")},
    ),
    "zk_stat_last_modified": Func(
        setup=STAT_SETUP, args={"stat": "&st"},
        ok=ret("r == 1700000000.999", False),
        null={"stat": ret("isnan(r)", True, "NaN")},
    ),
    "zk_stat_owner_session_id": Func(
        setup=STAT_SETUP + " int64_t out = 7;",
        args={"stat": "&st", "out": "&out"},
        ok=ret("r == true && out == 0x123456789abcLL", False),
        null={"stat": ret("r == false && out == 7", True, "false, *out untouched"),
              "out": ret("r == true", False, "true; the documented optional out")},
        extra=[Case("not ephemeral", {}, ret("r == false && out == 7", False, "false (None), *out untouched"),
                    setup=STAT_SETUP + " int64_t out = 7; st.ephemeral_owner = 0;")],
    ),
    "zk_stat_is_ephemeral": Func(
        setup=STAT_SETUP, args={"stat": "&st"},
        ok=ret("r == true", False),
        null={"stat": ret("r == false", True, "false")},
    ),
    "zk_stat_properties_get": Func(
        setup=STAT_SETUP + " zk_stat_properties out; MX_SENTINEL(out);",
        args={"stat": "&st", "out": "&out"},
        outs={"out": "out"},
        ok=ret("r == ZK_OK && out.has_owner && out.owner_session_id == st.ephemeral_owner", False),
        null={"stat": NULL_ARG, "out": NULL_ARG},
    ),
    "zk_stat_format": Func(
        setup=STAT_SETUP + " char buf[ZK_STAT_FORMAT_MAX + 1]; MX_SENTINEL(buf);",
        args={"stat": "&st", "buf": "buf", "cap": "sizeof buf"},
        outs={"buf": "buf"},
        ok=ret("r > 0 && r <= ZK_STAT_FORMAT_MAX && strlen(buf) == r && strncmp(buf, \"ZnodeStat(czxid=5,\", 18) == 0", False),
        null={"stat": ret("r == 0", True, "0, nothing written"),
              "buf": ret("r == 0", True, "0 (buf NULL while cap > 0)")},
        extra=[Case("buf NULL, cap 0", {"buf": "NULL", "cap": "0"}, ret("r > 0 && r <= ZK_STAT_FORMAT_MAX", False, "the full length")),
               Case("cap 0", {"cap": "0"}, ret("r > 0 && (unsigned char)buf[0] == 0xA5", False, "the full length, nothing written")),
               Case("cap 1", {"cap": "1"}, ret("r > 0 && buf[0] == '\\0' && (unsigned char)buf[1] == 0xA5", False, "just the NUL")),
               Case("cap PTRDIFF_MAX + 1", {"cap": BIG}, ret("r == 0", True, "0, nothing written"))],
    ),
    # ---- wire decoders ------------------------------------------------------------
    "zk_watched_event_decode": Func(
        setup=WATCHED_BUILD.format(t="4", s="6"),
        args={"buf": "buf", "len": "len", "out": "&out"},
        outs={"out": "out"},
        ok=ret("r == ZK_OK && out.type == ZK_EVENT_TYPE_CHILD && out.state == ZK_KEEPER_STATE_CONNECTED && "
               "out.path == (const char *)buf + 12 && out.path_len == 2 && out.zxid == ZK_ZXID_UNKNOWN", False),
        null={"buf": NULL_ARG, "out": NULL_ARG},
        extra=[Case("len 11", {"len": "11"}, TRUNCATED),
               Case("len 0", {"len": "0"}, TRUNCATED),
               Case("len PTRDIFF_MAX + 1", {"len": BIG}, SIZE_TOO_LARGE),
               Case("path length -2", {}, status("ZK_ERR_NEGATIVE_LENGTH"),
                    setup=WATCHED_BUILD.format(t="1", s="3") + " mx_put32(buf + 8, -2);"),
               Case("path length INT32_MIN", {}, status("ZK_ERR_NEGATIVE_LENGTH"),
                    setup=WATCHED_BUILD.format(t="1", s="3") + " mx_put32(buf + 8, INT32_MIN);"),
               Case("path length INT32_MAX", {}, status("ZK_ERR_LENGTH_EXCEEDS_INPUT"),
                    setup=WATCHED_BUILD.format(t="1", s="3") + " mx_put32(buf + 8, INT32_MAX);"),
               Case("path not UTF-8", {}, INVALID_UTF8,
                    setup="uint8_t buf[64]; size_t len = mx_event(buf, 1, 3, \"/\\xff\"); zk_watched_event out; MX_SENTINEL(out);")]
        + event_buf_cases(None, WATCHED_BUILD, WIRE_EVENT_TYPES, WIRE_STATES),
    ),
    "zk_notification_decode": Func(
        setup=NOTIF_BUILD.format(t="3", s="5"),
        args={"buf": "buf", "len": "len", "out": "&out"},
        outs={"out": "out"},
        ok=ret("r == ZK_OK && out.type == ZK_EVENT_TYPE_CHANGED && out.state == ZK_KEEPER_STATE_CONNECTED_RO && "
               "out.path == (const char *)buf + 28 && out.path_len == 2 && out.zxid == 42", False),
        null={"buf": NULL_ARG, "out": NULL_ARG},
        extra=[Case("len 15", {"len": "15"}, TRUNCATED),
               Case("len PTRDIFF_MAX + 1", {"len": BIG}, SIZE_TOO_LARGE)]
        + [Case(f"xid {x}", {}, status("ZK_ERR_NOT_A_NOTIFICATION"),
                setup=NOTIF_BUILD.format(t="1", s="3").replace("mx_notification(buf, -1,", f"mx_notification(buf, {x},"))
           for x in ["0", "-2", "1", "INT32_MIN", "INT32_MAX"]]
        + event_buf_cases(None, NOTIF_BUILD, WIRE_EVENT_TYPES, WIRE_STATES),
    ),
    # ---- dispatcher life cycle ----------------------------------------------------------
    "zk_dispatcher_new": Func(
        args={}, ok=ret("r != NULL", False),
        teardown="zk_dispatcher_free(r);",
    ),
    "zk_dispatcher_new_with": Func(
        setup="zk_dispatcher *out; MX_SENTINEL(out);",
        args={"options": "ZK_DISPATCHER_ALL_OPTIONS", "queue_capacity": "SIZE_MAX", "out": "&out"},
        outs={"out": "out"},
        ok=ret("r == ZK_OK && out != NULL", False),
        null={"out": NULL_ARG},
        extra=[Case(f"options {o}", {"options": o}, INVALID_ARGUMENT)
               for o in ["ZK_DISPATCHER_ALL_OPTIONS + 1", "0x80000000u", "UINT32_MAX"]],
        teardown="if (r == ZK_OK) zk_dispatcher_free(out);",
    ),
    "zk_dispatcher_free": Func(
        # A dispatcher with a registered watch: freeing it frees the user data.
        setup="zk_dispatcher *fd = zk_dispatcher_new(); uint64_t id; "
              "if (zk_watch_add(fd, \"/mx\", ZK_WATCH_DATA, mx_watch_cb, $TOK, mx_free_tok, &id) != ZK_OK) "
              "mx_fail(\"zk_dispatcher_free\", \"setup\"); mx_tok_expect[$CASE] = 1;",
        args={"d": "fd"},
        ok=ret("mx_tok_frees[$CASE] == 1", False, "registered user data freed by the time it returns"),
        null={"d": ret("1", False, "a no-op")},
        teardown="if (mx_tok_frees[$CASE] == 0) zk_dispatcher_free(fd);",
    ),
    # ---- registration -----------------------------------------------------------------
    "zk_dispatcher_set_chroot": Func(
        args={"d": "mx_d", "chroot": "\"/mx/root\""},
        ok=OK,
        null={"d": NULL_ARG, "chroot": ret("r == ZK_OK", False, "ZK_OK: clears the chroot")},
        extra=[Case("relative", {"chroot": "\"app\""}, INVALID_PATH),
               Case("empty", {"chroot": "\"\""}, INVALID_PATH),
               Case("trailing slash", {"chroot": "\"/app/\""}, INVALID_PATH),
               Case("not UTF-8", {"chroot": "\"/\\xff\""}, INVALID_UTF8)],
        teardown="(void)zk_dispatcher_set_chroot(mx_d, NULL);",
    ),
    "zk_watch_add": Func(
        setup="uint64_t out_id = 0xA5A5A5A5A5A5A5A5u;",
        args={"d": "mx_d", "path": "\"/mx/w\"", "kind": "ZK_WATCH_PERSISTENT", "callback": "mx_watch_cb",
              "user_data": "$TOK", "free_fn": "mx_free_tok", "out_id": "&out_id"},
        outs={"out_id": "out_id"},
        ok=OK,
        null={"d": NULL_ARG, "path": NULL_ARG, "callback": NULL_ARG, "out_id": NULL_ARG,
              "user_data": ret("r == ZK_OK", False, "ZK_OK: user_data may be NULL"),
              "free_fn": ret("r == ZK_OK", False, "ZK_OK: free_fn may be NULL")},
        enums={"kind": Enum("enum:zk_watch_kind", INVALID_WATCH_KIND)},
        extra=[Case("relative path", {"path": "\"mx\""}, INVALID_PATH),
               Case("empty path", {"path": "\"\""}, INVALID_PATH),
               Case("path /a/../b", {"path": "\"/a/../b\""}, INVALID_PATH),
               Case("path not UTF-8", {"path": "\"/\\xc3\""}, INVALID_UTF8),
               Case("bad kind and bad path", {"path": "\"mx\"", "kind": "1000"},
                    ret("r == ZK_ERR_INVALID_PATH || r == ZK_ERR_INVALID_WATCH_KIND", True, "either error"))],
        registers=("user_data", "free_fn"),
    ),
    "zk_watch_remove": Func(
        setup="uint64_t id; if (zk_watch_add(mx_d, \"/mx/r\", ZK_WATCH_DATA, mx_watch_cb, $TOK, mx_free_tok, &id) != ZK_OK) "
              "mx_fail(\"zk_watch_remove\", \"setup\"); mx_tok_expect[$CASE] = 1;",
        args={"d": "mx_d", "id": "id"},
        ok=OK,
        null={"d": NULL_ARG},
        not_enum={},
        extra=[Case("unknown id", {"id": "UINT64_MAX"}, NOT_FOUND),
               Case("removed twice", {}, NOT_FOUND,
                    setup="uint64_t id; if (zk_watch_add(mx_d, \"/mx/r\", ZK_WATCH_DATA, mx_watch_cb, $TOK, mx_free_tok, &id) != ZK_OK "
                          "|| zk_watch_remove(mx_d, id) != ZK_OK) mx_fail(\"zk_watch_remove\", \"setup\"); mx_tok_expect[$CASE] = 1;")],
    ),
    "zk_listener_add": Func(
        setup="uint64_t out_id = 0xA5A5A5A5A5A5A5A5u;",
        args={"d": "mx_d", "callback": "mx_listener_cb", "user_data": "$TOK", "free_fn": "mx_free_tok",
              "out_id": "&out_id"},
        outs={"out_id": "out_id"},
        ok=OK,
        null={"d": NULL_ARG, "callback": NULL_ARG, "out_id": NULL_ARG,
              "user_data": ret("r == ZK_OK", False, "ZK_OK: user_data may be NULL"),
              "free_fn": ret("r == ZK_OK", False, "ZK_OK: free_fn may be NULL")},
        registers=("user_data", "free_fn"),
    ),
    "zk_listener_remove": Func(
        setup="uint64_t id; if (zk_listener_add(mx_d, mx_listener_cb, $TOK, mx_free_tok, &id) != ZK_OK) "
              "mx_fail(\"zk_listener_remove\", \"setup\"); mx_tok_expect[$CASE] = 1;",
        args={"d": "mx_d", "id": "id"},
        ok=OK,
        null={"d": NULL_ARG},
        extra=[Case("unknown id", {"id": "UINT64_MAX"}, NOT_FOUND),
               Case("removed twice", {}, NOT_FOUND,
                    setup="uint64_t id; if (zk_listener_add(mx_d, mx_listener_cb, $TOK, mx_free_tok, &id) != ZK_OK "
                          "|| zk_listener_remove(mx_d, id) != ZK_OK) mx_fail(\"zk_listener_remove\", \"setup\"); mx_tok_expect[$CASE] = 1;")],
    ),
    # ---- feeding --------------------------------------------------------------------------
    "zk_dispatcher_event": Func(
        setup="zk_dispatcher_stats s0 = mx_stats(mx_d); (void)s0;",
        args={"d": "mx_d", "event_type": "ZK_EVENT_TYPE_CHANGED", "path": "\"/mx/unwatched\"", "zxid": "7"},
        ok=ret("r == ZK_OK && mx_stats(mx_d).events_fed == s0.events_fed + 1", False),
        null={"d": NULL_ARG,
              "path": ret("r == ZK_ERR_NULL_ARGUMENT && mx_stats(mx_d).events_fed == s0.events_fed", True, "ZK_ERR_NULL_ARGUMENT")},
        enums={"event_type": Enum("enum:zk_event_type",
                                  ret("r == ZK_ERR_INVALID_EVENT_TYPE && mx_stats(mx_d).events_fed == s0.events_fed", True,
                                      "ZK_ERR_INVALID_EVENT_TYPE, nothing fed"))},
        not_enum={},
        extra=[Case("relative path", {"path": "\"mx\""}, INVALID_PATH),
               Case("trailing slash", {"path": "\"/mx/\""}, INVALID_PATH),
               Case("path not UTF-8", {"path": "\"/\\xff\""}, INVALID_UTF8),
               Case("ignored type NONE", {"event_type": "ZK_EVENT_TYPE_NONE"},
                    ret("r == ZK_OK && mx_stats(mx_d).events_ignored == s0.events_ignored + 1", False, "accepted, ignored"))],
    ),
    "zk_dispatcher_session": Func(
        setup="zk_dispatcher_stats s0 = mx_stats(mx_d); (void)s0;",
        args={"d": "mx_d", "keeper_state": "ZK_KEEPER_STATE_CONNECTING"},
        ok=ret("r == ZK_OK && mx_stats(mx_d).sessions_fed == s0.sessions_fed + 1", False),
        null={"d": NULL_ARG},
        enums={"keeper_state": Enum("enum:zk_keeper_state",
                                    ret("r == ZK_ERR_INVALID_KEEPER_STATE && mx_stats(mx_d).sessions_fed == s0.sessions_fed",
                                        True, "ZK_ERR_INVALID_KEEPER_STATE, nothing fed"))},
    ),
    "zk_dispatcher_state": Func(
        setup="zk_kazoo_state kazoo; zk_keeper_state keeper; MX_SENTINEL(kazoo); MX_SENTINEL(keeper);",
        args={"d": "mx_d", "kazoo": "&kazoo", "keeper": "&keeper"},
        outs={"kazoo": "kazoo", "keeper": "keeper"},
        ok=ret("r == ZK_OK && zk_kazoo_state_name(kazoo) != NULL && zk_keeper_state_name(keeper) != NULL", False),
        null={"d": NULL_ARG, "kazoo": NULL_ARG, "keeper": NULL_ARG},
    ),
    "zk_dispatcher_submit": Func(
        args={"d": "mx_d", "callback": "mx_call_cb", "args": "$TOK", "free_fn": "mx_free_tok"},
        ok=OK,
        null={"d": NULL_ARG, "callback": NULL_ARG,
              "args": ret("r == ZK_OK", False, "ZK_OK: args may be NULL"),
              "free_fn": ret("r == ZK_OK", False, "ZK_OK: free_fn may be NULL")},
        registers=("args", "free_fn"),
    ),
    "zk_dispatcher_flush": Func(
        args={"d": "mx_d"}, ok=OK, null={"d": NULL_ARG},
    ),
    "zk_dispatcher_stats_get": Func(
        setup="zk_dispatcher_stats out; MX_SENTINEL(out);",
        args={"d": "mx_d", "out": "&out"},
        outs={"out": "out"},
        ok=ret("r == ZK_OK && out.events_fed == out.events_matched + out.events_unmatched + out.events_ignored", False),
        null={"d": NULL_ARG, "out": NULL_ARG},
    ),
    "zk_dispatch_current_seq": Func(args={}, ok=ret("r == 0", False, "0 outside callbacks")),
    # ---- the session machine ----------------------------------------------------------------
    "zk_session_machine_init": Func(
        setup="zk_session_machine m; MX_SENTINEL(m);",
        args={"machine": "&m"},
        ok=ret("r == ZK_OK && m.keeper_state == ZK_KEEPER_STATE_CLOSED && m.kazoo_state == ZK_KAZOO_STATE_LOST && !m.connected_before", False),
        null={"machine": NULL_ARG},
    ),
    "zk_session_machine_step": Func(
        setup="zk_session_machine m; zk_session_step out; MX_SENTINEL(out); "
              "if (zk_session_machine_init(&m) != ZK_OK) mx_fail(\"zk_session_machine_step\", \"setup\");",
        args={"machine": "&m", "new_keeper_state": "ZK_KEEPER_STATE_CONNECTED", "options": "0", "out": "&out"},
        outs={"machine": "m", "out": "out"},
        ok=ret("r == ZK_OK && out.changed && out.notify && out.kazoo_state == ZK_KAZOO_STATE_CONNECTED", False),
        null={"machine": NULL_ARG, "out": NULL_ARG},
        enums={"new_keeper_state": Enum("enum:zk_keeper_state", INVALID_KEEPER_STATE)},
        extra=[Case(f"options {o}", {"options": o}, INVALID_ARGUMENT)
               for o in ["ZK_DISPATCHER_ALL_OPTIONS + 1", "0x80000000u", "UINT32_MAX"]]
        + [Case(f"machine->keeper_state {v}", {}, INVALID_KEEPER_STATE,
                setup="zk_session_machine m; zk_session_step out; MX_SENTINEL(out); "
                      f"(void)zk_session_machine_init(&m); m.keeper_state = {v};")
           for v in bad_codes([1, 3, 4, 5, 7, -112])]
        + [Case(f"machine->kazoo_state {v}", {}, INVALID_KAZOO_STATE,
                setup="zk_session_machine m; zk_session_step out; MX_SENTINEL(out); "
                      f"(void)zk_session_machine_init(&m); m.kazoo_state = {v};")
           for v in bad_codes([0, 1, 2, 3, 4])],
    ),
}
