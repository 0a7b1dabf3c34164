//! A cache hint, the one `unsafe` outside `ffi`.
//!
//! The dispatcher reads ahead for the operations it defers (see
//! `dispatch::Pending`) and for the calls it is about to make. Plain loads
//! cannot do that across calls: every call takes and releases a lock, and on
//! x86 a locked instruction waits for all earlier loads, so a load issued for
//! a later call would cost this call the whole cache miss. A prefetch
//! instruction is not waited for, and it is not a read the program can
//! observe: it only asks the cache for a line.

/// Asks the cache for the lines holding `*value` (its first and its last
/// byte: a value may straddle two lines), for reading, without waiting for
/// them. No effect on other architectures.
#[inline(always)]
pub(crate) fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let first = std::ptr::from_ref(value).cast::<i8>();
        let last = first.wrapping_add(std::mem::size_of_val(value).saturating_sub(1));
        // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 processor
        // has; it neither faults nor reads memory the program sees, and both
        // addresses lie in a live value anyway.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(first);
            _mm_prefetch::<_MM_HINT_T0>(last);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
