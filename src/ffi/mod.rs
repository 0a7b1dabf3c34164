//! The C ABI: thin `extern "C"` wrappers that check every argument, convert,
//! and call the safe core. All `unsafe` of the crate that touches C pointers is
//! in this module's helpers; every entry point body runs inside
//! [`ffi_boundary!`] so that no panic ever unwinds into C.

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

/// Runs an entry point's body, turning a panic into the return type's
/// [`PanicDefault`] (`ZK_ERR_PANIC`, NULL, false, 0 or NaN).
macro_rules! ffi_boundary {
    ($($body:tt)*) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
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

/// A static C string's pointer, or NULL.
pub(crate) fn static_str(s: Option<&'static CStr>) -> *const c_char {
    s.map_or(std::ptr::null(), CStr::as_ptr)
}
