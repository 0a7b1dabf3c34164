//! Entry points for the data model: names and codes, the `Stat` codec and
//! conversions, the watch-event decoders, and version information.
//!
//! Every function here is pure: it touches only its arguments, so any thread
//! may call it at any time.

use std::ffi::c_char;

use super::{bytes_in, bytes_out, cstr_in, ffi_boundary, ffi_status, read_in, static_str, Out};
use crate::event::{zk_event_type, zk_watched_event};
use crate::stat::{zk_stat, zk_stat_properties};
use crate::state::{zk_kazoo_state, zk_keeper_state};
use crate::status::{zk_status, UNKNOWN_STATUS_MESSAGE};
use crate::wire::WireEvent;

/// The ABI version of this library. It changes whenever a public struct's size
/// or field offsets, an enum value, or a function signature changes
/// incompatibly. Compare it with `zk_states_abi_version()` at run time to detect
/// a header/library mismatch.
pub const ZK_STATES_ABI_VERSION: u32 = 1;

/// The library's version, `"MAJOR.MINOR.PATCH"` (static, NUL-terminated).
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn zk_states_version() -> *const c_char {
    ffi_boundary! { concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast() }
}

/// The ABI version the library was built with (`ZK_STATES_ABI_VERSION` of its header).
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn zk_states_abi_version() -> u32 {
    ffi_boundary! { ZK_STATES_ABI_VERSION }
}

/// A human-readable, one-line message for a `zk_status` code.
///
/// Never NULL: a code that is not a `zk_status` gives "unknown status code".
/// The string is static; do not free it.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn zk_status_message(status: i32) -> *const c_char {
    ffi_boundary! {
        zk_status::from_code(status).map_or(UNKNOWN_STATUS_MESSAGE, zk_status::message).as_ptr()
    }
}

/// kazoo's name of an event type code (`"CREATED"`, `"NONE"`, ...), or NULL if
/// `event_type` is not a `zk_event_type` value. The string is static.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn zk_event_type_name(event_type: i32) -> *const c_char {
    ffi_boundary! { static_str(zk_event_type::try_from(event_type).ok().map(zk_event_type::name)) }
}

/// kazoo's name of a keeper state code (`"CONNECTED"`, `"EXPIRED_SESSION"`, ...),
/// or NULL if `state` is not a `zk_keeper_state` value. The string is static.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn zk_keeper_state_name(state: i32) -> *const c_char {
    ffi_boundary! { static_str(zk_keeper_state::try_from(state).ok().map(zk_keeper_state::name)) }
}

/// kazoo's name of a kazoo state code (`"CONNECTED"`, `"SUSPENDED"`, `"LOST"`,
/// and Curator mode's `"RECONNECTED"`, `"READ_ONLY"`), or NULL if `state` is not
/// a `zk_kazoo_state` value. The string is static.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn zk_kazoo_state_name(state: i32) -> *const c_char {
    ffi_boundary! { static_str(zk_kazoo_state::try_from(state).ok().map(zk_kazoo_state::name)) }
}

/// Parses kazoo's name of an event type (exact and case-sensitive, as
/// `zk_event_type_name()` returns it) into `*out`.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT` or `ZK_ERR_UNKNOWN_NAME`; `*out` is
/// written only on success.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_event_type_from_name(
    name: *const c_char,
    out: *mut zk_event_type,
) -> i32 {
    ffi_status! {
        let name = cstr_in(name)?;
        let out = Out::new(out)?;
        out.write(zk_event_type::from_name(name).ok_or(zk_status::ZK_ERR_UNKNOWN_NAME)?);
        Ok(())
    }
}

/// Parses kazoo's name of a keeper state (exact and case-sensitive) into `*out`.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT` or `ZK_ERR_UNKNOWN_NAME`; `*out` is
/// written only on success.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_keeper_state_from_name(
    name: *const c_char,
    out: *mut zk_keeper_state,
) -> i32 {
    ffi_status! {
        let name = cstr_in(name)?;
        let out = Out::new(out)?;
        out.write(zk_keeper_state::from_name(name).ok_or(zk_status::ZK_ERR_UNKNOWN_NAME)?);
        Ok(())
    }
}

/// Parses kazoo's name of a kazoo state (exact and case-sensitive) into `*out`.
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT` or `ZK_ERR_UNKNOWN_NAME`; `*out` is
/// written only on success.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_kazoo_state_from_name(
    name: *const c_char,
    out: *mut zk_kazoo_state,
) -> i32 {
    ffi_status! {
        let name = cstr_in(name)?;
        let out = Out::new(out)?;
        out.write(zk_kazoo_state::from_name(name).ok_or(zk_status::ZK_ERR_UNKNOWN_NAME)?);
        Ok(())
    }
}

/// Converts a Java/wire `KeeperState` code (the `state` of a WatcherEvent on the
/// wire) into `*out`:
///
/// | wire code | Java name          | result            |
/// |-----------|--------------------|-------------------|
/// | 0         | Disconnected       | CONNECTING        |
/// | 1         | NoSyncConnected    | CONNECTING        |
/// | 3         | SyncConnected      | CONNECTED         |
/// | 4         | AuthFailed         | AUTH_FAILED       |
/// | 5         | ConnectedReadOnly  | CONNECTED_RO      |
/// | 6         | SaslAuthenticated  | CONNECTED         |
/// | 7         | Closed             | CLOSED            |
/// | -112      | Expired            | EXPIRED_SESSION   |
///
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT`, or `ZK_ERR_INVALID_KEEPER_STATE` for
/// any other code (including the deprecated Unknown, -1). `*out` is written only
/// on success.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_keeper_state_from_wire(code: i32, out: *mut zk_keeper_state) -> i32 {
    ffi_status! {
        let out = Out::new(out)?;
        out.write(zk_keeper_state::from_wire(code)?);
        Ok(())
    }
}

/// Converts an official C client `ZOO_*_STATE` code (from `zoo_state()` or the
/// `state` argument of a `watcher_fn`) into `*out`:
///
/// | C code | C name                               | result          |
/// |--------|--------------------------------------|-----------------|
/// | 0      | none (`zoo_state()` between retries) | CONNECTING      |
/// | 1      | ZOO_CONNECTING_STATE                 | CONNECTING      |
/// | 2      | ZOO_ASSOCIATING_STATE                | CONNECTING      |
/// | 3      | ZOO_CONNECTED_STATE                  | CONNECTED       |
/// | 5      | ZOO_READONLY_STATE                   | CONNECTED_RO    |
/// | 7      | ZOO_SSL_CONNECTING_STATE             | CONNECTING      |
/// | -112   | ZOO_EXPIRED_SESSION_STATE            | EXPIRED_SESSION |
/// | -113   | ZOO_AUTH_FAILED_STATE                | AUTH_FAILED     |
/// | 999    | ZOO_NOTCONNECTED_STATE               | CLOSED          |
///
/// Note that 7 is SSL_CONNECTING in the C client but Closed on the wire.
/// Returns `ZK_OK`, `ZK_ERR_NULL_ARGUMENT`, or `ZK_ERR_INVALID_KEEPER_STATE` for
/// any other code. `*out` is written only on success.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_keeper_state_from_c_client(
    code: i32,
    out: *mut zk_keeper_state,
) -> i32 {
    ffi_status! {
        let out = Out::new(out)?;
        out.write(zk_keeper_state::from_c_client(code)?);
        Ok(())
    }
}

/// Decodes a jute-encoded `Stat` (68 bytes, big-endian, kazoo's `!qqqqiiiqiiq`)
/// from the start of `buf` into `*out`. Bytes after the first 68 are ignored.
///
/// Returns `ZK_OK`; `ZK_ERR_NULL_ARGUMENT` if `buf` or `out` is NULL;
/// `ZK_ERR_TRUNCATED` if `len < ZK_STAT_WIRE_SIZE`; `ZK_ERR_SIZE_TOO_LARGE` if
/// `len > PTRDIFF_MAX`. `*out` is written only on success. Allocates nothing.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_stat_decode(buf: *const u8, len: usize, out: *mut zk_stat) -> i32 {
    ffi_status! {
        let buf = bytes_in(buf, len)?;
        let out = Out::new(out)?;
        out.write(zk_stat::decode(buf)?);
        Ok(())
    }
}

/// Encodes `*stat` as jute (68 bytes, big-endian) into the first
/// `ZK_STAT_WIRE_SIZE` bytes of `buf`; the rest of `buf` is left untouched.
///
/// Returns `ZK_OK`; `ZK_ERR_NULL_ARGUMENT` if `stat` or `buf` is NULL;
/// `ZK_ERR_BUFFER_TOO_SMALL` (and writes nothing) if `len < ZK_STAT_WIRE_SIZE`;
/// `ZK_ERR_SIZE_TOO_LARGE` if `len > PTRDIFF_MAX`.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_stat_encode(stat: *const zk_stat, buf: *mut u8, len: usize) -> i32 {
    ffi_status! {
        let stat = read_in(stat)?;
        stat.encode(bytes_out(buf, len)?)
    }
}

/// kazoo's `ZnodeStat.created`: `ctime / 1000.0`, seconds since the epoch,
/// bit-identical to Python's result. NaN if `stat` is NULL.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_stat_created(stat: *const zk_stat) -> f64 {
    ffi_boundary! { read_in(stat).map_or(f64::NAN, |s| s.created()) }
}

/// kazoo's `ZnodeStat.last_modified`: `mtime / 1000.0`, seconds since the epoch,
/// bit-identical to Python's result. NaN if `stat` is NULL.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_stat_last_modified(stat: *const zk_stat) -> f64 {
    ffi_boundary! { read_in(stat).map_or(f64::NAN, |s| s.last_modified()) }
}

/// kazoo's `ZnodeStat.owner_session_id`: if the znode is ephemeral
/// (`ephemeral_owner != 0`), stores the owner's session id in `*out` (when `out`
/// is not NULL) and returns true; otherwise returns false (kazoo's `None`) and
/// leaves `*out` alone. False if `stat` is NULL.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_stat_owner_session_id(stat: *const zk_stat, out: *mut i64) -> bool {
    ffi_boundary! {
        match read_in(stat).ok().and_then(|s| s.owner_session_id()) {
            Some(owner) => {
                if let Ok(out) = Out::new(out) {
                    out.write(owner);
                }
                true
            }
            None => false,
        }
    }
}

/// True if the znode is ephemeral (`ephemeral_owner != 0`). False if `stat` is NULL.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_stat_is_ephemeral(stat: *const zk_stat) -> bool {
    ffi_boundary! { read_in(stat).is_ok_and(|s| s.ephemeral_owner != 0) }
}

/// Computes every kazoo `ZnodeStat` convenience property of `*stat` into `*out`.
///
/// Returns `ZK_OK` or `ZK_ERR_NULL_ARGUMENT`; `*out` is written only on success.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_stat_properties_get(
    stat: *const zk_stat,
    out: *mut zk_stat_properties,
) -> i32 {
    ffi_status! {
        let stat = read_in(stat)?;
        let out = Out::new(out)?;
        out.write(stat.properties());
        Ok(())
    }
}

/// Formats `*stat` as kazoo's `repr` of a `ZnodeStat`:
/// `ZnodeStat(czxid=1, mzxid=2, ctime=3, mtime=4, version=5, cversion=6, aversion=7, ephemeralOwner=8, dataLength=9, numChildren=10, pzxid=11)`.
///
/// `snprintf` semantics: writes at most `cap - 1` bytes and a terminating NUL
/// when `cap > 0` (`buf` may be NULL when `cap` is 0), and returns the length
/// of the full text without the NUL, so a return value `>= cap` means the
/// output was truncated. At most `ZK_STAT_FORMAT_MAX` bytes plus the NUL are
/// ever needed. Returns 0 (and writes nothing) if `stat` is NULL, if `buf` is
/// NULL while `cap > 0`, or if `cap > PTRDIFF_MAX`; a valid stat never
/// formats to 0 bytes. Allocates nothing.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_stat_format(
    stat: *const zk_stat,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    ffi_boundary! {
        let Ok(stat) = read_in(stat) else { return 0 };
        if cap == 0 {
            return stat.format_into(&mut []);
        }
        match bytes_out(buf.cast(), cap) {
            Ok(out) => stat.format_into(out),
            Err(_) => 0,
        }
    }
}

fn fill_event(event: &WireEvent<'_>) -> zk_watched_event {
    zk_watched_event::new(event.event_type, event.state, event.path, event.zxid)
}

/// A decoder for the common case: `None` when it leaves the input to the general decoder.
type ShortDecoder = for<'a> fn(&'a [u8]) -> Option<WireEvent<'a>>;
/// A whole entry point.
type EntryPoint = unsafe extern "C" fn(*const u8, usize, *mut zk_watched_event) -> i32;

/// The body of the event decoders' entry points. The common case (a node
/// event with an ASCII path, see [`WireEvent::decode_short`]) is decoded
/// inline, in code that calls nothing and so needs no stack frame
/// (straight-line for paths of at most 16 bytes); anything else, errors
/// included, is a tail call to `general`,
/// an out-of-line entry point with its own panic boundary that decodes any
/// input and returns the documented status.
#[inline(always)]
unsafe fn decode_event(
    buf: *const u8,
    len: usize,
    out: *mut zk_watched_event,
    short: ShortDecoder,
    general: EntryPoint,
) -> i32 {
    let status: Option<i32> = ffi_boundary! {
        (|| {
            let bytes = bytes_in(buf, len).ok()?;
            let out = Out::new(out).ok()?;
            let event = short(bytes)?;
            out.write(fill_event(&event));
            Some(zk_status::ZK_OK as i32)
        })()
    };
    match status {
        Some(status) => status,
        None => general(buf, len, out),
    }
}

/// `zk_notification_decode()` (`NOTIFICATION`) or `zk_watched_event_decode()`
/// for any input.
#[cold]
#[inline(never)]
unsafe extern "C" fn decode_general<const NOTIFICATION: bool>(
    buf: *const u8,
    len: usize,
    out: *mut zk_watched_event,
) -> i32 {
    ffi_status! {
        let buf = bytes_in(buf, len)?;
        let out = Out::new(out)?;
        let event = if NOTIFICATION {
            WireEvent::decode_notification(buf)?
        } else {
            WireEvent::decode(buf)?
        };
        out.write(fill_event(&event));
        Ok(())
    }
}

/// Decodes a jute `WatcherEvent` (int type, int state, ustring path) from the
/// start of `buf` into `*out`, as kazoo's `Watch.deserialize` reads it. Trailing
/// bytes are ignored; `out->zxid` is `ZK_ZXID_UNKNOWN`; `out->state` is the wire
/// state converted by the `zk_keeper_state_from_wire()` table.
///
/// Path lifetime: `out->path` is a view into `buf`, **not** NUL-terminated and
/// not a copy: it is valid only as long as `buf` is, and holds `out->path_len`
/// bytes of validated UTF-8. Jute's null string (length -1) gives
/// `path == NULL`, `path_len == 0`. (A view keeps decoding allocation-free and
/// leaves nothing to free; copy the bytes if the event must outlive the
/// buffer.)
///
/// Returns `ZK_OK`; `ZK_ERR_NULL_ARGUMENT` (`buf` or `out` NULL);
/// `ZK_ERR_TRUNCATED` (fewer than 12 bytes); `ZK_ERR_INVALID_EVENT_TYPE` (a
/// type that is not a wire `zk_event_type`: `ZK_EVENT_TYPE_NOT_WATCHING` is
/// never sent); `ZK_ERR_INVALID_KEEPER_STATE` (a state outside the wire table);
/// `ZK_ERR_NEGATIVE_LENGTH` (a path length below -1);
/// `ZK_ERR_LENGTH_EXCEEDS_INPUT` (a path length past the end of `buf`);
/// `ZK_ERR_INVALID_UTF8`; `ZK_ERR_SIZE_TOO_LARGE` (`len > PTRDIFF_MAX`).
/// `*out` is written only on success. Allocates nothing.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_watched_event_decode(
    buf: *const u8,
    len: usize,
    out: *mut zk_watched_event,
) -> i32 {
    decode_event(
        buf,
        len,
        out,
        |b| WireEvent::decode_short(b),
        decode_general::<false>,
    )
}

/// Decodes a whole server watch notification into `*out`: the reply header
/// (int xid, which must be -1; long zxid; int err, ignored as kazoo ignores it)
/// followed by a `WatcherEvent`. `buf` starts right after the 4-byte frame
/// length. `out->zxid` is the header's zxid (which kazoo does not expose).
///
/// The path is a view into `buf` exactly as for `zk_watched_event_decode()`.
/// Returns the same statuses, plus `ZK_ERR_NOT_A_NOTIFICATION` when the xid is
/// not -1 (and `ZK_ERR_TRUNCATED` when the 16-byte header is incomplete).
/// `*out` is written only on success. Allocates nothing.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn zk_notification_decode(
    buf: *const u8,
    len: usize,
    out: *mut zk_watched_event,
) -> i32 {
    decode_event(
        buf,
        len,
        out,
        |b| WireEvent::decode_notification_short(b),
        decode_general::<true>,
    )
}
