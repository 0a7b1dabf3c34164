//! The Stat codec and its conversions against the header's documentation:
//!
//! * zk_stat_decode(): ZK_ERR_TRUNCATED below 68 bytes (output untouched),
//!   otherwise the 68 big-endian bytes field by field (checked with an
//!   independent decoder);
//! * zk_stat_encode() round trip: the same 68 bytes, nothing written past
//!   them, ZK_ERR_BUFFER_TOO_SMALL (writing nothing) for short buffers, and
//!   decode(encode(x)) == x;
//! * zk_stat_format(): kazoo's repr (checked against Rust's own formatting),
//!   at most ZK_STAT_FORMAT_MAX bytes, snprintf semantics for every cap from
//!   0 to len + 1 (NUL-terminated, nothing written past cap or after the NUL);
//! * the kazoo properties, one at a time and all at once, bit for bit.
#![no_main]

use std::ffi::c_char;
use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use zk_states::ffi::core::*;
use zk_states::{zk_stat, zk_stat_properties, ZK_STAT_FORMAT_MAX, ZK_STAT_WIRE_SIZE};
use zk_states_fuzz::reference::{BUFFER_TOO_SMALL, NULL_ARGUMENT, OK, SIZE_TOO_LARGE, TRUNCATED};

fn be64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

fn be32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// kazoo's `!qqqqiiiqiiq`, written out independently.
fn reference_decode(b: &[u8]) -> zk_stat {
    zk_stat {
        czxid: be64(b, 0),
        mzxid: be64(b, 8),
        ctime: be64(b, 16),
        mtime: be64(b, 24),
        version: be32(b, 32),
        cversion: be32(b, 36),
        aversion: be32(b, 40),
        ephemeral_owner: be64(b, 44),
        data_length: be32(b, 52),
        num_children: be32(b, 56),
        pzxid: be64(b, 60),
    }
}

/// kazoo's `repr(ZnodeStat(...))`: a namedtuple's repr.
fn reference_repr(s: &zk_stat) -> String {
    format!(
        "ZnodeStat(czxid={}, mzxid={}, ctime={}, mtime={}, version={}, cversion={}, aversion={}, \
         ephemeralOwner={}, dataLength={}, numChildren={}, pzxid={})",
        s.czxid,
        s.mzxid,
        s.ctime,
        s.mtime,
        s.version,
        s.cversion,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children,
        s.pzxid
    )
}

fn sentinel_stat() -> zk_stat {
    zk_stat {
        czxid: 0x1111,
        mzxid: 0x2222,
        ctime: 0x3333,
        mtime: 0x4444,
        version: 0x55,
        cversion: 0x66,
        aversion: 0x77,
        ephemeral_owner: 0x8888,
        data_length: 0x99,
        num_children: 0xaa,
        pzxid: 0xbbbb,
    }
}

const GUARD: u8 = 0xa5;
static GUARDS: [u8; ZK_STAT_FORMAT_MAX + 2 + 16] = [GUARD; ZK_STAT_FORMAT_MAX + 2 + 16];

/// Checks zk_stat_format() for every cap in 0..=len+1.
fn check_format(s: &zk_stat) {
    let want = reference_repr(s);
    let full = unsafe { zk_stat_format(s, std::ptr::null_mut(), 0) };
    assert_eq!(full, want.len(), "zk_stat_format length");
    assert!(
        full > 0 && full <= ZK_STAT_FORMAT_MAX,
        "repr of {full} bytes exceeds ZK_STAT_FORMAT_MAX"
    );
    let mut whole = [GUARD; ZK_STAT_FORMAT_MAX + 2 + 16];
    for cap in 0..=full + 1 {
        let buf = &mut whole[..cap + 16];
        buf.fill(GUARD);
        let n = unsafe { zk_stat_format(s, buf.as_mut_ptr().cast::<c_char>(), cap) };
        assert_eq!(n, full, "return value for cap {cap}");
        if cap == 0 {
            assert!(buf == &GUARDS[..buf.len()], "cap 0 wrote");
            continue;
        }
        let written = full.min(cap - 1);
        assert_eq!(
            &buf[..written],
            &want.as_bytes()[..written],
            "text for cap {cap}"
        );
        assert_eq!(buf[written], 0, "not NUL-terminated for cap {cap}");
        let tail = &buf[written + 1..];
        assert!(
            tail == &GUARDS[..tail.len()],
            "wrote past the NUL for cap {cap}"
        );
    }
    // Documented zero results.
    let mut buf = [GUARD; 8];
    assert_eq!(
        unsafe { zk_stat_format(std::ptr::null(), buf.as_mut_ptr().cast(), buf.len()) },
        0
    );
    assert_eq!(unsafe { zk_stat_format(s, std::ptr::null_mut(), 5) }, 0);
    assert_eq!(
        unsafe { zk_stat_format(s, buf.as_mut_ptr().cast(), isize::MAX as usize + 1) },
        0
    );
    assert!(buf.iter().all(|&b| b == GUARD));
}

fn check_properties(s: &zk_stat) {
    let mut p = zk_stat_properties::default();
    assert_eq!(unsafe { zk_stat_properties_get(s, &mut p) }, OK);
    // Python's `ms / 1000.0`: the int rounded to the nearest double, then divided.
    let created = s.ctime as f64 / 1000.0;
    let modified = s.mtime as f64 / 1000.0;
    assert_eq!(p.created.to_bits(), created.to_bits());
    assert_eq!(p.last_modified.to_bits(), modified.to_bits());
    assert_eq!(unsafe { zk_stat_created(s) }.to_bits(), created.to_bits());
    assert_eq!(
        unsafe { zk_stat_last_modified(s) }.to_bits(),
        modified.to_bits()
    );
    assert_eq!(p.creation_transaction_id, s.czxid);
    assert_eq!(p.last_modified_transaction_id, s.mzxid);
    assert_eq!(p.version, s.version);
    assert_eq!(p.children_version, s.cversion);
    assert_eq!(p.acl_version, s.aversion);
    assert_eq!(p.data_length, s.data_length);
    assert_eq!(p.children_count, s.num_children);
    let eph = s.ephemeral_owner != 0;
    assert_eq!(p.has_owner, eph);
    assert_eq!(p.owner_session_id, if eph { s.ephemeral_owner } else { 0 });
    assert_eq!(unsafe { zk_stat_is_ephemeral(s) }, eph);
    let mut owner = 0x7777i64;
    assert_eq!(unsafe { zk_stat_owner_session_id(s, &mut owner) }, eph);
    assert_eq!(
        owner,
        if eph { s.ephemeral_owner } else { 0x7777 },
        "*out touched for None"
    );
    assert_eq!(
        unsafe { zk_stat_owner_session_id(s, std::ptr::null_mut()) },
        eph
    );
}

static ONCE: Once = Once::new();

/// The documented bound is exact: the longest repr (every field at its
/// minimum) is ZK_STAT_FORMAT_MAX bytes.
fn check_bound_once() {
    ONCE.call_once(|| {
        let s = zk_stat {
            czxid: i64::MIN,
            mzxid: i64::MIN,
            ctime: i64::MIN,
            mtime: i64::MIN,
            version: i32::MIN,
            cversion: i32::MIN,
            aversion: i32::MIN,
            ephemeral_owner: i64::MIN,
            data_length: i32::MIN,
            num_children: i32::MIN,
            pzxid: i64::MIN,
        };
        assert_eq!(reference_repr(&s).len(), ZK_STAT_FORMAT_MAX);
        assert_eq!(
            unsafe { zk_stat_format(&s, std::ptr::null_mut(), 0) },
            ZK_STAT_FORMAT_MAX
        );
    });
}

fuzz_target!(|data: &[u8]| {
    check_bound_once();
    let mut out = sentinel_stat();
    let status = unsafe { zk_stat_decode(data.as_ptr(), data.len(), &mut out) };
    assert_eq!(
        unsafe { zk_stat_decode(std::ptr::null(), data.len(), &mut out) },
        NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { zk_stat_decode(data.as_ptr(), data.len(), std::ptr::null_mut()) },
        NULL_ARGUMENT
    );
    let mut untouched = sentinel_stat();
    assert_eq!(
        unsafe { zk_stat_decode(data.as_ptr(), isize::MAX as usize + 1, &mut untouched) },
        SIZE_TOO_LARGE
    );
    assert_eq!(untouched, sentinel_stat());
    if data.len() < ZK_STAT_WIRE_SIZE {
        assert_eq!(status, TRUNCATED, "{} bytes", data.len());
        assert_eq!(out, sentinel_stat(), "*out written on failure");
        // Still exercise the formatter and encoder with whatever we have.
        let mut padded = [0u8; ZK_STAT_WIRE_SIZE];
        padded[..data.len()].copy_from_slice(data);
        let s = reference_decode(&padded);
        check_format(&s);
        check_properties(&s);
        return;
    }
    assert_eq!(status, OK);
    assert_eq!(out, reference_decode(data), "decoded fields");

    // Encode: the same 68 bytes, nothing past them.
    let extra = data.len() % 5;
    let mut enc = vec![GUARD; ZK_STAT_WIRE_SIZE + extra];
    assert_eq!(
        unsafe { zk_stat_encode(&out, enc.as_mut_ptr(), enc.len()) },
        OK
    );
    assert_eq!(
        &enc[..ZK_STAT_WIRE_SIZE],
        &data[..ZK_STAT_WIRE_SIZE],
        "encode round trip"
    );
    assert!(
        enc[ZK_STAT_WIRE_SIZE..].iter().all(|&b| b == GUARD),
        "encode wrote past 68 bytes"
    );
    let mut again = sentinel_stat();
    assert_eq!(
        unsafe { zk_stat_decode(enc.as_ptr(), enc.len(), &mut again) },
        OK
    );
    assert_eq!(again, out, "decode(encode(x)) != x");
    // Short buffers: BUFFER_TOO_SMALL and nothing written.
    let short = data[0] as usize % ZK_STAT_WIRE_SIZE;
    let mut small = vec![GUARD; ZK_STAT_WIRE_SIZE];
    assert_eq!(
        unsafe { zk_stat_encode(&out, small.as_mut_ptr(), short) },
        BUFFER_TOO_SMALL
    );
    assert!(
        small.iter().all(|&b| b == GUARD),
        "encode wrote into a too-small buffer"
    );
    assert_eq!(
        unsafe { zk_stat_encode(std::ptr::null(), small.as_mut_ptr(), small.len()) },
        NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { zk_stat_encode(&out, std::ptr::null_mut(), small.len()) },
        NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { zk_stat_encode(&out, small.as_mut_ptr(), isize::MAX as usize + 1) },
        SIZE_TOO_LARGE
    );
    assert!(small.iter().all(|&b| b == GUARD));

    check_format(&out);
    check_properties(&out);
});
