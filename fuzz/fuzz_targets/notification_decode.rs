//! zk_notification_decode() against an independent reference decoder: the
//! reply header (xid must be -1, zxid, err ignored) then a WatcherEvent; on
//! success the zxid is the header's and the path a view into the input at
//! offset 28; on failure the status is one the header documents for the
//! input and *out is untouched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_states::ffi::core::zk_notification_decode;
use zk_states_fuzz::{decode_check, reference};

fuzz_target!(|data: &[u8]| {
    let expected = reference::notification(data);
    decode_check::check(
        "zk_notification_decode",
        zk_notification_decode,
        data,
        expected,
    );
});
