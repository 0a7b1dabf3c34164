//! Cache and memory hints (with `simd`, the only `unsafe` outside `ffi`): prefetches, and
//! a huge-page advice for large tables read at random.
//!
//! The dispatcher reads ahead for the operations it defers (see
//! `dispatch::Pending`) and for the calls it is about to make. Plain loads
//! cannot do that across calls: every call takes and releases a lock, and on
//! x86 a locked instruction waits for all earlier loads, so a load issued for
//! a later call would cost this call the whole cache miss. A prefetch
//! instruction is not waited for (beyond the page walk that translates its
//! address, which huge pages shorten), and it is not a read the program can
//! observe: it only asks the cache for a line. The same goes for the lines
//! the feeders write and the dispatch thread reads (the queue) or the other
//! way round (generation cells): asked for ahead, for writing, they are
//! here when the store comes.

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
        // has; it neither faults nor reads memory the program sees, whatever
        // the address.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(first);
            if other_line(first.cast(), last.cast()) {
                _mm_prefetch::<_MM_HINT_T0>(last);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Asks the cache for the lines holding `*value` for writing: taken from
/// another core's cache now, so that the store which follows need not wait
/// for them (a store to a line another core holds waits for that core to
/// give it up, and unlocking waits for the store). A read prefetch where the
/// processor lacks `PREFETCHW` (CPUID `0x8000_0001`, ECX bit 8). `value` may
/// be uninitialized memory (spare capacity a store will fill).
#[inline(always)]
pub(crate) fn prefetch_write<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    if has_prefetchw() {
        let first = std::ptr::from_ref(value).cast::<u8>();
        let last = first.wrapping_add(std::mem::size_of_val(value).saturating_sub(1));
        // SAFETY: the processor has PREFETCHW (checked above), which neither
        // faults nor changes what memory holds, whatever the address.
        unsafe {
            std::arch::asm!("prefetchw [{0}]", in(reg) first, options(nostack, preserves_flags, readonly));
            if other_line(first, last) {
                std::arch::asm!("prefetchw [{0}]", in(reg) last, options(nostack, preserves_flags, readonly));
            }
        }
        return;
    }
    prefetch(value);
}

/// Whether `last` is on another cache line than `first`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn other_line(first: *const u8, last: *const u8) -> bool {
    (first as usize ^ last as usize) >= 64
}

/// Whether this processor has `PREFETCHW` (found once, then remembered).
#[cfg(target_arch = "x86_64")]
fn has_prefetchw() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static KNOWN: AtomicU8 = AtomicU8::new(0); // 0: not yet, 1: no, 2: yes
    match KNOWN.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => {
            use std::arch::x86_64::__cpuid;
            // `__cpuid` is a safe function in newer Rust, not in 1.77.
            #[allow(unused_unsafe)]
            // SAFETY: every x86_64 processor has CPUID and these leaves.
            let yes = unsafe {
                __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
            };
            KNOWN.store(1 + u8::from(yes), Ordering::Relaxed);
            yes
        }
    }
}

/// Asks the kernel to back the 2 MiB-aligned part of `region` with
/// transparent huge pages (`madvise(MADV_HUGEPAGE)`; Linux only, and only
/// where THP is enabled for madvised memory). For a large table read at
/// random, before it is first touched: a cache miss there is also a TLB
/// miss, and a prefetch waits for the page walk (in a virtual machine a
/// long one), which huge pages mostly spare. Failure changes nothing, so it
/// is ignored.
pub(crate) fn advise_huge<T>(region: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = region.as_ptr() as usize;
        let end = start + std::mem::size_of_val(region);
        let first = start.div_ceil(HUGE) * HUGE;
        let last = end / HUGE * HUGE;
        if last > first {
            // SAFETY: an advice on whole pages inside memory this process
            // owns; MADV_HUGEPAGE never changes what the memory holds.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = region;
}
