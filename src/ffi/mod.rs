//! The C ABI: thin `extern "C"` wrappers that check every argument, convert,
//! and call the safe core. All `unsafe` of the crate that touches C pointers is
//! in this module's helpers; every entry point body runs inside
//! [`ffi_boundary!`] so that no panic ever unwinds into C.

// The C contract of every entry point (which pointers may be NULL, what they
// must point to, how long) is in its doc comment, written for C readers, so
// clippy's Rust-style `# Safety` sections would only repeat it.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, CStr};
use std::ptr::NonNull;

use crate::status::zk_status;

pub mod c_client;
pub mod core;
pub mod dispatch;

/// A C `bool` that C code may write: read as a byte, any nonzero value is
/// true. (Reading a foreign `bool` straight into a Rust `bool` is undefined
/// behaviour if an FFI caller stores or returns a value other than 0 or 1.)
/// It is spelled `bool` in the header.
#[repr(transparent)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct zk_c_bool(pub u8);

/// The value an entry point returns when a panic was caught at its boundary.
pub(crate) trait PanicDefault {
    fn on_panic() -> Self;
}

impl PanicDefault for i32 {
    fn on_panic() -> Self {
        zk_status::ZK_ERR_PANIC as i32
    }
}

impl PanicDefault for u32 {
    fn on_panic() -> Self {
        0
    }
}

impl PanicDefault for u64 {
    fn on_panic() -> Self {
        0
    }
}

impl PanicDefault for bool {
    fn on_panic() -> Self {
        false
    }
}

impl PanicDefault for usize {
    fn on_panic() -> Self {
        0
    }
}

impl PanicDefault for f64 {
    fn on_panic() -> Self {
        f64::NAN
    }
}

impl PanicDefault for () {
    fn on_panic() -> Self {}
}

impl<T: PanicDefault> PanicDefault for Option<T> {
    fn on_panic() -> Self {
        Some(T::on_panic())
    }
}

impl<T> PanicDefault for *const T {
    fn on_panic() -> Self {
        std::ptr::null()
    }
}

impl<T> PanicDefault for *mut T {
    fn on_panic() -> Self {
        std::ptr::null_mut()
    }
}

#[cfg(test)]
thread_local! {
    /// Test-only fault injection: when set, every entry point panics inside its
    /// boundary, proving the boundary turns it into the documented result.
    pub(crate) static FORCE_PANIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Panics when a test asked for it (compiled to nothing outside `cargo test`).
#[inline(always)]
pub(crate) fn fault_point() {
    #[cfg(test)]
    if FORCE_PANIC.with(|f| f.get()) {
        panic!("injected panic (test)");
    }
}

/// Runs an entry point's body, turning a panic into the return type's
/// [`PanicDefault`] (`ZK_ERR_PANIC`, NULL, false, 0 or NaN).
macro_rules! ffi_boundary {
    ($($body:tt)*) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| {
            $crate::ffi::fault_point();
            $($body)*
        })) {
            Ok(value) => value,
            Err(_) => $crate::ffi::PanicDefault::on_panic(),
        }
    };
}

/// Runs a status-returning entry point's body (which evaluates to
/// `Result<(), zk_status>` and may use `?`) inside [`ffi_boundary!`], returning
/// the status as the `int32_t` C sees.
macro_rules! ffi_status {
    ($($body:tt)*) => {
        ffi_boundary! {
            let result: ::std::result::Result<(), $crate::status::zk_status> = (|| { $($body)* })();
            match result {
                Ok(()) => $crate::status::zk_status::ZK_OK as i32,
                Err(e) => e as i32,
            }
        }
    };
}

pub(crate) use {ffi_boundary, ffi_status};

/// Copies a plain-data value in from a C pointer (unaligned reads are fine).
///
/// # Safety
/// `p` must be NULL or point to a readable `T`.
pub(crate) unsafe fn read_in<T: Copy>(p: *const T) -> Result<T, zk_status> {
    if p.is_null() {
        return Err(zk_status::ZK_ERR_NULL_ARGUMENT);
    }
    Ok(p.read_unaligned())
}

/// A checked, non-NULL output parameter, written at most once and only on success.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Checks an output pointer without writing to it.
    pub(crate) fn new(p: *mut T) -> Result<Out<T>, zk_status> {
        NonNull::new(p)
            .map(Out)
            .ok_or(zk_status::ZK_ERR_NULL_ARGUMENT)
    }

    /// Writes the result (unaligned writes are fine).
    ///
    /// # Safety
    /// The pointer given to `new` must point to writable memory for a `T`.
    pub(crate) unsafe fn write(self, value: T) {
        self.0.as_ptr().write_unaligned(value)
    }
}

/// Views `len` bytes from C.
///
/// # Safety
/// `p` must be NULL or point to `len` readable bytes that stay unchanged while
/// the slice is used.
pub(crate) unsafe fn bytes_in<'a>(p: *const u8, len: usize) -> Result<&'a [u8], zk_status> {
    if p.is_null() {
        return Err(zk_status::ZK_ERR_NULL_ARGUMENT);
    }
    if len > isize::MAX as usize {
        return Err(zk_status::ZK_ERR_SIZE_TOO_LARGE);
    }
    Ok(std::slice::from_raw_parts(p, len))
}

/// Views `len` writable bytes from C.
///
/// # Safety
/// `p` must be NULL or point to `len` writable bytes not otherwise in use.
pub(crate) unsafe fn bytes_out<'a>(p: *mut u8, len: usize) -> Result<&'a mut [u8], zk_status> {
    if p.is_null() {
        return Err(zk_status::ZK_ERR_NULL_ARGUMENT);
    }
    if len > isize::MAX as usize {
        return Err(zk_status::ZK_ERR_SIZE_TOO_LARGE);
    }
    Ok(std::slice::from_raw_parts_mut(p, len))
}

/// The bytes of a NUL-terminated C string (without the NUL).
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string.
pub(crate) unsafe fn cstr_in<'a>(p: *const c_char) -> Result<&'a [u8], zk_status> {
    if p.is_null() {
        return Err(zk_status::ZK_ERR_NULL_ARGUMENT);
    }
    Ok(CStr::from_ptr(p).to_bytes())
}

/// The bytes of a C string as UTF-8 (`ZK_ERR_INVALID_UTF8` otherwise).
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, zk_status> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8 (the common case, checked a word at a time).
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|_| zk_status::ZK_ERR_INVALID_UTF8)
}

/// A static C string's pointer, or NULL.
pub(crate) fn static_str(s: Option<&'static CStr>) -> *const c_char {
    s.map_or(std::ptr::null(), CStr::as_ptr)
}

#[cfg(test)]
mod panic_tests {
    use std::ffi::c_void;
    use std::ptr::{null, null_mut};

    use super::c_client::zk_dispatcher_c_watcher;
    use super::core::*;
    use super::dispatch::*;
    use super::FORCE_PANIC;
    use crate::status::zk_status::ZK_ERR_PANIC;

    const PANIC: i32 = ZK_ERR_PANIC as i32;

    unsafe extern "C" fn watch_cb(_: *const crate::zk_watched_event, _: *mut c_void) {}
    unsafe extern "C" fn call_cb(_: *mut c_void) {}

    /// Every entry point, with a panic forced inside its boundary, returns its
    /// documented panic result instead of unwinding into the caller.
    #[test]
    fn every_entry_point_catches_panics() {
        let d = zk_dispatcher_new();
        assert!(!d.is_null());
        let stat = crate::zk_stat::default();
        let mut buf = [0u8; 128];
        let mut out_i32 = 0i32;
        let mut id = 0u64;
        let name = c"CREATED".as_ptr();
        let prev_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        FORCE_PANIC.with(|f| f.set(true));
        unsafe {
            assert!(zk_states_version().is_null());
            assert_eq!(zk_states_abi_version(), 0);
            assert!(zk_status_message(0).is_null());
            assert!(zk_event_type_name(1).is_null());
            assert!(zk_keeper_state_name(3).is_null());
            assert!(zk_kazoo_state_name(0).is_null());
            assert_eq!(
                zk_event_type_from_name(name, (&mut out_i32 as *mut i32).cast()),
                PANIC
            );
            assert_eq!(
                zk_keeper_state_from_name(name, (&mut out_i32 as *mut i32).cast()),
                PANIC
            );
            assert_eq!(
                zk_kazoo_state_from_name(name, (&mut out_i32 as *mut i32).cast()),
                PANIC
            );
            assert_eq!(
                zk_keeper_state_from_wire(3, (&mut out_i32 as *mut i32).cast()),
                PANIC
            );
            assert_eq!(
                zk_keeper_state_from_c_client(3, (&mut out_i32 as *mut i32).cast()),
                PANIC
            );
            let mut st = crate::zk_stat::default();
            assert_eq!(zk_stat_decode(buf.as_ptr(), buf.len(), &mut st), PANIC);
            assert_eq!(zk_stat_encode(&stat, buf.as_mut_ptr(), buf.len()), PANIC);
            assert!(zk_stat_created(&stat).is_nan());
            assert!(zk_stat_last_modified(&stat).is_nan());
            assert!(!zk_stat_owner_session_id(&stat, null_mut()));
            assert!(!zk_stat_is_ephemeral(&stat));
            let mut props = crate::zk_stat_properties::default();
            assert_eq!(zk_stat_properties_get(&stat, &mut props), PANIC);
            assert_eq!(zk_stat_format(&stat, buf.as_mut_ptr().cast(), buf.len()), 0);
            let mut ev = std::mem::zeroed();
            assert_eq!(
                zk_watched_event_decode(buf.as_ptr(), buf.len(), &mut ev),
                PANIC
            );
            assert_eq!(
                zk_notification_decode(buf.as_ptr(), buf.len(), &mut ev),
                PANIC
            );
            assert!(zk_dispatcher_new().is_null());
            let mut d2 = null_mut();
            assert_eq!(zk_dispatcher_new_with(0, 0, &mut d2), PANIC);
            assert_eq!(zk_dispatcher_set_chroot(d, null()), PANIC);
            assert_eq!(
                zk_watch_add(
                    d,
                    c"/a".as_ptr(),
                    0,
                    Some(watch_cb),
                    null_mut(),
                    None,
                    &mut id
                ),
                PANIC
            );
            assert_eq!(zk_watch_remove(d, 1), PANIC);
            assert_eq!(zk_listener_add(d, None, null_mut(), None, &mut id), PANIC);
            assert_eq!(zk_listener_remove(d, 1), PANIC);
            assert_eq!(zk_dispatcher_event(d, 1, c"/a".as_ptr(), 0), PANIC);
            assert_eq!(zk_dispatcher_session(d, 3), PANIC);
            let (mut k, mut s) = (std::mem::zeroed(), std::mem::zeroed());
            assert_eq!(zk_dispatcher_state(d, &mut k, &mut s), PANIC);
            assert_eq!(
                zk_dispatcher_submit(d, Some(call_cb), null_mut(), None),
                PANIC
            );
            assert_eq!(zk_dispatcher_flush(d), PANIC);
            let mut stats = std::mem::zeroed();
            assert_eq!(zk_dispatcher_stats_get(d, &mut stats), PANIC);
            assert_eq!(zk_dispatch_current_seq(), 0);
            let mut m = std::mem::zeroed();
            assert_eq!(zk_session_machine_init(&mut m), PANIC);
            let mut step = std::mem::zeroed();
            assert_eq!(zk_session_machine_step(&mut m, 3, 0, &mut step), PANIC);
            zk_dispatcher_c_watcher(null_mut(), -1, 3, c"".as_ptr(), d.cast());
            zk_dispatcher_free(d); // panics inside: the dispatcher leaks, nothing unwinds
        }
        FORCE_PANIC.with(|f| f.set(false));
        std::panic::set_hook(prev_hook);
        // Nothing was changed by the calls that panicked.
        let mut stats = crate::dispatch::zk_dispatcher_stats::default();
        assert_eq!(unsafe { zk_dispatcher_stats_get(d, &mut stats) }, 0);
        assert_eq!(stats.last_seq, 0);
        unsafe { zk_dispatcher_free(d) };
    }
}
