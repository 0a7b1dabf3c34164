//! zk_watched_event_decode() against an independent reference decoder: on
//! success the path is a view into the input at offset 12 with a consistent
//! length and valid UTF-8, type and state are valid enum values, zxid is
//! ZK_ZXID_UNKNOWN; on failure the status is one the header documents for the
//! input and *out is untouched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_states::ffi::core::zk_watched_event_decode;
use zk_states_fuzz::{decode_check, reference};

fuzz_target!(|data: &[u8]| {
    let expected = reference::watcher_event(data, 0, zk_states::ZK_ZXID_UNKNOWN);
    decode_check::check(
        "zk_watched_event_decode",
        zk_watched_event_decode,
        data,
        expected,
    );
});
