"""ctypes declarations for ``include/zk_states.h`` (ABI version 1).

Everything here mirrors the header one to one: the structs, the callback
types and the argument/return types of every exported function.  The public,
kazoo-shaped API lives in ``zk_states/__init__.py``.

The library is looked up, in order, at:

1. the path in the environment variable ``ZK_STATES_LIB``;
2. next to this package (``zk_states/libzk_states.so``, for wheels);
3. ``target/release`` then ``target/debug`` of the source checkout this
   package sits in (and of ``$CARGO_TARGET_DIR``);
4. ``ctypes.util.find_library("zk_states")``.
"""

import ctypes
import ctypes.util
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_double,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path

#: The ABI version this module's declarations describe (ZK_STATES_ABI_VERSION).
ABI_VERSION = 1

if sys.platform == "darwin":
    _LIB_NAME = "libzk_states.dylib"
elif sys.platform == "win32":
    _LIB_NAME = "zk_states.dll"
else:
    _LIB_NAME = "libzk_states.so"


def candidate_paths():
    """The places searched for the shared library, in order (see module doc)."""
    found = []
    env = os.environ.get("ZK_STATES_LIB")
    if env:
        found.append(Path(env))
    here = Path(__file__).resolve().parent
    found.append(here / _LIB_NAME)
    roots = []
    if os.environ.get("CARGO_TARGET_DIR"):
        roots.append(Path(os.environ["CARGO_TARGET_DIR"]))
    roots.append(here.parent.parent / "target")  # python/zk_states -> repo/target
    for root in roots:
        for profile in ("release", "debug"):
            found.append(root / profile / _LIB_NAME)
    return found


def load_library():
    """Loads the library (see the module doc for the search order)."""
    env = os.environ.get("ZK_STATES_LIB")
    if env and not Path(env).exists():
        raise ImportError(f"ZK_STATES_LIB={env!r} does not exist")
    for path in candidate_paths():
        if path.exists():
            return ctypes.CDLL(str(path)), str(path)
    name = ctypes.util.find_library("zk_states")
    if name:
        return ctypes.CDLL(name), name
    raise ImportError(
        "libzk_states not found: build it with `cargo build` or set ZK_STATES_LIB "
        f"(searched {[str(p) for p in candidate_paths()]})"
    )


# --- structs (field for field as in the header) -----------------------------


class zk_stat(Structure):
    _fields_ = [
        ("czxid", c_int64),
        ("mzxid", c_int64),
        ("ctime", c_int64),
        ("mtime", c_int64),
        ("version", c_int32),
        ("cversion", c_int32),
        ("aversion", c_int32),
        ("ephemeral_owner", c_int64),
        ("data_length", c_int32),
        ("num_children", c_int32),
        ("pzxid", c_int64),
    ]


class zk_stat_properties(Structure):
    _fields_ = [
        ("creation_transaction_id", c_int64),
        ("last_modified_transaction_id", c_int64),
        ("created", c_double),
        ("last_modified", c_double),
        ("owner_session_id", c_int64),
        ("version", c_int32),
        ("children_version", c_int32),
        ("acl_version", c_int32),
        ("data_length", c_int32),
        ("children_count", c_int32),
        ("has_owner", c_bool),
    ]


class zk_watched_event(Structure):
    # `path` is a raw pointer (c_void_p) on purpose: it is not always
    # NUL-terminated and may contain NUL bytes; read `path_len` bytes.
    _fields_ = [
        ("type", c_int32),
        ("state", c_int32),
        ("path", c_void_p),
        ("path_len", c_size_t),
        ("zxid", c_int64),
    ]


class zk_dispatcher_stats(Structure):
    _fields_ = [
        (name, c_uint64)
        for name in (
            "events_fed",
            "events_matched",
            "events_unmatched",
            "events_ignored",
            "sessions_fed",
            "submitted",
            "refused_full",
            "refused_closed",
            "watch_calls",
            "listener_calls",
            "submit_calls",
            "callback_panics",
            "queued",
            "watches",
            "listeners",
            "last_seq",
            "adapter_errors",
        )
    ]


class zk_session_machine(Structure):
    _fields_ = [
        ("keeper_state", c_int32),
        ("kazoo_state", c_int32),
        ("connected_before", c_bool),
    ]


class zk_session_step(Structure):
    _fields_ = [
        ("changed", c_bool),
        ("notify", c_bool),
        ("kazoo_state", c_int32),
        ("actions", c_uint32),
    ]


# --- callback types ----------------------------------------------------------

zk_watch_fn = CFUNCTYPE(None, POINTER(zk_watched_event), c_void_p)
zk_free_fn = CFUNCTYPE(None, c_void_p)
zk_listener_fn = CFUNCTYPE(c_bool, c_int32, c_void_p)
zk_callback_fn = CFUNCTYPE(None, c_void_p)

_u8p = POINTER(c_uint8)
_i32p = POINTER(c_int32)
_dp = c_void_p  # zk_dispatcher * (opaque)

#: name -> (restype, argtypes) for every function of the header.
PROTOTYPES = {
    "zk_dispatcher_c_watcher": (None, [c_void_p, ctypes.c_int, ctypes.c_int, c_char_p, _dp]),
    "zk_states_version": (c_char_p, []),
    "zk_states_abi_version": (c_uint32, []),
    "zk_status_message": (c_char_p, [c_int32]),
    "zk_event_type_name": (c_char_p, [c_int32]),
    "zk_keeper_state_name": (c_char_p, [c_int32]),
    "zk_kazoo_state_name": (c_char_p, [c_int32]),
    "zk_event_type_from_name": (c_int32, [c_char_p, _i32p]),
    "zk_keeper_state_from_name": (c_int32, [c_char_p, _i32p]),
    "zk_kazoo_state_from_name": (c_int32, [c_char_p, _i32p]),
    "zk_keeper_state_from_wire": (c_int32, [c_int32, _i32p]),
    "zk_keeper_state_from_c_client": (c_int32, [c_int32, _i32p]),
    "zk_stat_decode": (c_int32, [_u8p, c_size_t, POINTER(zk_stat)]),
    "zk_stat_encode": (c_int32, [POINTER(zk_stat), _u8p, c_size_t]),
    "zk_stat_created": (c_double, [POINTER(zk_stat)]),
    "zk_stat_last_modified": (c_double, [POINTER(zk_stat)]),
    "zk_stat_owner_session_id": (c_bool, [POINTER(zk_stat), POINTER(c_int64)]),
    "zk_stat_is_ephemeral": (c_bool, [POINTER(zk_stat)]),
    "zk_stat_properties_get": (c_int32, [POINTER(zk_stat), POINTER(zk_stat_properties)]),
    "zk_stat_format": (c_size_t, [POINTER(zk_stat), POINTER(ctypes.c_char), c_size_t]),
    "zk_watched_event_decode": (c_int32, [_u8p, c_size_t, POINTER(zk_watched_event)]),
    "zk_notification_decode": (c_int32, [_u8p, c_size_t, POINTER(zk_watched_event)]),
    "zk_dispatcher_new": (_dp, []),
    "zk_dispatcher_new_with": (c_int32, [c_uint32, c_size_t, POINTER(_dp)]),
    "zk_dispatcher_free": (None, [_dp]),
    "zk_dispatcher_set_chroot": (c_int32, [_dp, c_char_p]),
    "zk_watch_add": (
        c_int32,
        [_dp, c_char_p, c_int32, zk_watch_fn, c_void_p, zk_free_fn, POINTER(c_uint64)],
    ),
    "zk_watch_remove": (c_int32, [_dp, c_uint64]),
    "zk_listener_add": (c_int32, [_dp, zk_listener_fn, c_void_p, zk_free_fn, POINTER(c_uint64)]),
    "zk_listener_remove": (c_int32, [_dp, c_uint64]),
    "zk_dispatcher_event": (c_int32, [_dp, c_int32, c_char_p, c_int64]),
    "zk_dispatcher_session": (c_int32, [_dp, c_int32]),
    "zk_dispatcher_state": (c_int32, [_dp, _i32p, _i32p]),
    "zk_dispatcher_submit": (c_int32, [_dp, zk_callback_fn, c_void_p, zk_free_fn]),
    "zk_dispatcher_flush": (c_int32, [_dp]),
    "zk_dispatcher_stats_get": (c_int32, [_dp, POINTER(zk_dispatcher_stats)]),
    "zk_dispatch_current_seq": (c_uint64, []),
    "zk_session_machine_init": (c_int32, [POINTER(zk_session_machine)]),
    "zk_session_machine_step": (
        c_int32,
        [POINTER(zk_session_machine), c_int32, c_uint32, POINTER(zk_session_step)],
    ),
}


def declare(lib):
    """Sets restype/argtypes of every function in PROTOTYPES on `lib`."""
    for name, (restype, argtypes) in PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib, lib_path = load_library()
declare(lib)

if lib.zk_states_abi_version() != ABI_VERSION:
    raise ImportError(
        f"{lib_path} has ABI version {lib.zk_states_abi_version()}, "
        f"this package was written for {ABI_VERSION}"
    )
