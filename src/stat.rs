//! The znode `Stat` (kazoo's `ZnodeStat`): the jute codec, kazoo's convenience
//! properties, and kazoo's `repr`.

use crate::status::zk_status;

/// The size in bytes of a jute-encoded `Stat` (kazoo's `!qqqqiiiqiiq`).
pub const ZK_STAT_WIRE_SIZE: usize = 68;

/// A znode's metadata: ZooKeeper's `Stat`, kazoo's `ZnodeStat`.
///
/// Field for field, and byte for byte (72 bytes with 4 bytes of padding after
/// `aversion`), the layout of the official C client's `struct Stat`, so a
/// `struct Stat *` from `zoo_get()` and friends can be passed wherever a
/// `const zk_stat *` is expected.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct zk_stat {
    /// The zxid of the change that created the znode (kazoo `creation_transaction_id`).
    pub czxid: i64,
    /// The zxid of the change that last modified the znode's data (kazoo `last_modified_transaction_id`).
    pub mzxid: i64,
    /// Creation time, milliseconds since the epoch.
    pub ctime: i64,
    /// Last data modification time, milliseconds since the epoch.
    pub mtime: i64,
    /// The number of changes to the data.
    pub version: i32,
    /// The number of changes to the children (kazoo `children_version`).
    pub cversion: i32,
    /// The number of changes to the ACL (kazoo `acl_version`).
    pub aversion: i32,
    /// The owning session id if the znode is ephemeral, else 0 (kazoo `owner_session_id`).
    pub ephemeral_owner: i64,
    /// The length of the data (kazoo `data_length`).
    pub data_length: i32,
    /// The number of children (kazoo `children_count`).
    pub num_children: i32,
    /// The zxid of the change that last modified the children.
    pub pzxid: i64,
}

/// Every convenience property of kazoo's `ZnodeStat`, computed in one call by
/// `zk_stat_properties_get()`, with kazoo's names and kazoo's exact values.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct zk_stat_properties {
    /// `czxid`.
    pub creation_transaction_id: i64,
    /// `mzxid`.
    pub last_modified_transaction_id: i64,
    /// `ctime / 1000.0`: seconds since the epoch, exactly as Python computes it.
    pub created: f64,
    /// `mtime / 1000.0`: seconds since the epoch, exactly as Python computes it.
    pub last_modified: f64,
    /// `ephemeralOwner` when `has_owner`, else 0 (kazoo's `None`).
    pub owner_session_id: i64,
    /// `version`.
    pub version: i32,
    /// `cversion`.
    pub children_version: i32,
    /// `aversion`.
    pub acl_version: i32,
    /// `dataLength`.
    pub data_length: i32,
    /// `numChildren`.
    pub children_count: i32,
    /// True when the znode is ephemeral (`ephemeralOwner != 0`); false is kazoo's
    /// `owner_session_id is None`.
    pub has_owner: bool,
}

/// Milliseconds to kazoo's seconds: Python's `ms / 1000.0` converts the int to
/// the nearest double (ties to even, as `as f64` does) and divides.
#[inline]
fn ms_to_seconds(ms: i64) -> f64 {
    i64_to_f64(ms) / 1000.0
}

/// `x as f64` (the nearest double, ties to even), computed without the
/// int-to-double instruction. On x86-64 `cvtsi2sd` writes only the low half
/// of its register and so waits for the register's previous value; LLVM does
/// not break that false dependency at function entry, so a caller's earlier
/// division (such as the previous call's) would delay every call. Here every
/// register is written whole: the two 32-bit halves become exact doubles
/// through the exponent bits (2^84 + hi * 2^32 and 2^52 + lo, hi with its
/// sign bit flipped), and one addition rounds their exact sum once.
#[inline]
fn i64_to_f64(x: i64) -> f64 {
    // hi + 2^31, as unsigned: the high half with its sign bit flipped.
    let hi = ((x >> 32) as u32 ^ 0x8000_0000) as u64;
    let lo = x as u32 as u64;
    let high = f64::from_bits(0x4530_0000_0000_0000 | hi); // 2^84 + (hi + 2^31) * 2^32
    let low = f64::from_bits(0x4330_0000_0000_0000 | lo); // 2^52 + lo
                                                          // 2^84 + 2^63 + 2^52, exact; the difference hi * 2^32 - 2^52 is exact too.
    const BIAS: f64 = ((1u128 << 84) | (1u128 << 63) | (1u128 << 52)) as f64;
    (high - BIAS) + low
}

fn be_i64(b: &[u8; ZK_STAT_WIRE_SIZE], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

fn be_i32(b: &[u8; ZK_STAT_WIRE_SIZE], at: usize) -> i32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(x)
}

impl zk_stat {
    /// Decodes the 68-byte big-endian jute encoding at the start of `buf`;
    /// trailing bytes are ignored, as kazoo's `unpack_from` ignores them.
    pub fn decode(buf: &[u8]) -> Result<zk_stat, zk_status> {
        let b: &[u8; ZK_STAT_WIRE_SIZE] = buf
            .get(..ZK_STAT_WIRE_SIZE)
            .and_then(|s| s.try_into().ok())
            .ok_or(zk_status::ZK_ERR_TRUNCATED)?;
        Ok(zk_stat {
            czxid: be_i64(b, 0),
            mzxid: be_i64(b, 8),
            ctime: be_i64(b, 16),
            mtime: be_i64(b, 24),
            version: be_i32(b, 32),
            cversion: be_i32(b, 36),
            aversion: be_i32(b, 40),
            ephemeral_owner: be_i64(b, 44),
            data_length: be_i32(b, 52),
            num_children: be_i32(b, 56),
            pzxid: be_i64(b, 60),
        })
    }

    /// Encodes into the first 68 bytes of `buf` (the rest is left untouched).
    pub fn encode(&self, buf: &mut [u8]) -> Result<(), zk_status> {
        let out = buf
            .get_mut(..ZK_STAT_WIRE_SIZE)
            .ok_or(zk_status::ZK_ERR_BUFFER_TOO_SMALL)?;
        out[0..8].copy_from_slice(&self.czxid.to_be_bytes());
        out[8..16].copy_from_slice(&self.mzxid.to_be_bytes());
        out[16..24].copy_from_slice(&self.ctime.to_be_bytes());
        out[24..32].copy_from_slice(&self.mtime.to_be_bytes());
        out[32..36].copy_from_slice(&self.version.to_be_bytes());
        out[36..40].copy_from_slice(&self.cversion.to_be_bytes());
        out[40..44].copy_from_slice(&self.aversion.to_be_bytes());
        out[44..52].copy_from_slice(&self.ephemeral_owner.to_be_bytes());
        out[52..56].copy_from_slice(&self.data_length.to_be_bytes());
        out[56..60].copy_from_slice(&self.num_children.to_be_bytes());
        out[60..68].copy_from_slice(&self.pzxid.to_be_bytes());
        Ok(())
    }

    /// kazoo's `created`: `ctime / 1000.0`.
    pub fn created(&self) -> f64 {
        ms_to_seconds(self.ctime)
    }

    /// kazoo's `last_modified`: `mtime / 1000.0`.
    pub fn last_modified(&self) -> f64 {
        ms_to_seconds(self.mtime)
    }

    /// kazoo's `owner_session_id`: `ephemeralOwner or None`.
    pub fn owner_session_id(&self) -> Option<i64> {
        (self.ephemeral_owner != 0).then_some(self.ephemeral_owner)
    }

    /// Every kazoo convenience property at once.
    pub fn properties(&self) -> zk_stat_properties {
        zk_stat_properties {
            creation_transaction_id: self.czxid,
            last_modified_transaction_id: self.mzxid,
            created: self.created(),
            last_modified: self.last_modified(),
            owner_session_id: self.owner_session_id().unwrap_or(0),
            version: self.version,
            children_version: self.cversion,
            acl_version: self.aversion,
            data_length: self.data_length,
            children_count: self.num_children,
            has_owner: self.ephemeral_owner != 0,
        }
    }

    /// Writes kazoo's `repr` into `out` with `snprintf` semantics: at most
    /// `out.len() - 1` bytes and a NUL when `out` is not empty; returns the
    /// full length (without NUL) the text needs.
    pub fn format_into(&self, out: &mut [u8]) -> usize {
        let mut text = ReprBuf::new();
        text.push(b"ZnodeStat(czxid=");
        text.int(self.czxid);
        text.push(b", mzxid=");
        text.int(self.mzxid);
        text.push(b", ctime=");
        text.int(self.ctime);
        text.push(b", mtime=");
        text.int(self.mtime);
        text.push(b", version=");
        text.int(self.version.into());
        text.push(b", cversion=");
        text.int(self.cversion.into());
        text.push(b", aversion=");
        text.int(self.aversion.into());
        text.push(b", ephemeralOwner=");
        text.int(self.ephemeral_owner);
        text.push(b", dataLength=");
        text.int(self.data_length.into());
        text.push(b", numChildren=");
        text.int(self.num_children.into());
        text.push(b", pzxid=");
        text.int(self.pzxid);
        text.push(b")");
        let full = text.as_bytes();
        if let Some(room) = out.len().checked_sub(1) {
            let n = full.len().min(room);
            out[..n].copy_from_slice(&full[..n]);
            out[n] = 0;
        }
        full.len()
    }
}

/// The longest text `zk_stat_format()` can produce, without its NUL: 125 bytes
/// of names and punctuation, six 64-bit fields of up to 20 characters and five
/// 32-bit fields of up to 11 (`INT64_MIN`, `INT32_MIN`). A buffer of
/// `ZK_STAT_FORMAT_MAX + 1` bytes always holds the whole repr.
pub const ZK_STAT_FORMAT_MAX: usize = 125 + 6 * 20 + 5 * 11;

const REPR_MAX: usize = ZK_STAT_FORMAT_MAX;

/// A fixed stack buffer for the repr: no allocation on the format path.
struct ReprBuf {
    buf: [u8; REPR_MAX],
    len: usize,
}

impl ReprBuf {
    fn new() -> Self {
        ReprBuf {
            buf: [0; REPR_MAX],
            len: 0,
        }
    }

    fn push(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// Decimal digits of `v`, as Python's `repr(int)`.
    fn int(&mut self, v: i64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = v.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if v < 0 {
            self.push(b"-");
        }
        self.push(&digits[at..]);
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> zk_stat {
        zk_stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        }
    }

    #[test]
    fn layout_matches_c_struct_stat() {
        assert_eq!(std::mem::size_of::<zk_stat>(), 72);
        assert_eq!(std::mem::offset_of!(zk_stat, version), 32);
        assert_eq!(std::mem::offset_of!(zk_stat, ephemeral_owner), 48);
        assert_eq!(std::mem::offset_of!(zk_stat, pzxid), 64);
    }

    #[test]
    fn repr_matches_kazoo() {
        let mut out = [0u8; 256];
        let n = sample().format_into(&mut out);
        let want = "ZnodeStat(czxid=1, mzxid=2, ctime=3, mtime=4, version=5, cversion=6, aversion=7, ephemeralOwner=8, dataLength=9, numChildren=10, pzxid=11)";
        assert_eq!(n, want.len());
        assert_eq!(&out[..n], want.as_bytes());
        assert_eq!(out[n], 0);
    }

    #[test]
    fn repr_extremes_fit_and_truncate() {
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
        let n = s.format_into(&mut []);
        assert_eq!(n, REPR_MAX);
        let mut small = [0xffu8; 10];
        assert_eq!(s.format_into(&mut small), n);
        assert_eq!(&small[..9], b"ZnodeStat");
        assert_eq!(small[9], 0);
        let mut one = [0xffu8; 1];
        assert_eq!(s.format_into(&mut one), n);
        assert_eq!(one[0], 0);
    }

    #[test]
    fn codec_round_trip_and_truncation() {
        let mut buf = [0u8; 70];
        sample().encode(&mut buf).unwrap();
        assert_eq!(&buf[..8], &1i64.to_be_bytes());
        assert_eq!(&buf[60..68], &11i64.to_be_bytes());
        assert_eq!(zk_stat::decode(&buf).unwrap(), sample());
        assert_eq!(zk_stat::decode(&buf[..68]).unwrap(), sample());
        assert_eq!(
            zk_stat::decode(&buf[..67]),
            Err(zk_status::ZK_ERR_TRUNCATED)
        );
        assert_eq!(
            sample().encode(&mut buf[..67]),
            Err(zk_status::ZK_ERR_BUFFER_TOO_SMALL)
        );
    }

    #[test]
    fn int_to_double_is_as_f64() {
        let mut edges = vec![0, 1, -1, i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1];
        for k in 0..63 {
            for d in -3..=3 {
                edges.push((1i64 << k).wrapping_add(d));
                edges.push((-(1i64 << k)).wrapping_add(d));
                edges.push(((1i64 << k) | 0x5555_5555_5555_5555 >> (63 - k)).wrapping_add(d));
            }
        }
        // Halfway cases round to even: 2^53 + 1 and 2^53 + 3, 2^62 + 2^9 ...
        edges.extend([
            (1 << 53) + 1,
            (1 << 53) + 3,
            (1 << 62) + (1 << 9),
            (1 << 62) + (3 << 9),
        ]);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            edges.push((x as i64) >> (i % 64));
        }
        for v in edges {
            assert_eq!(i64_to_f64(v).to_bits(), (v as f64).to_bits(), "{v}");
            assert_eq!(
                ms_to_seconds(v).to_bits(),
                (v as f64 / 1000.0).to_bits(),
                "{v}"
            );
        }
    }

    #[test]
    fn properties_follow_kazoo() {
        let mut s = sample();
        s.ctime = (1 << 53) + 1;
        s.mtime = -1;
        let p = s.properties();
        assert_eq!(
            p.created.to_bits(),
            (((1i64 << 53) + 1) as f64 / 1000.0).to_bits()
        );
        assert_eq!(p.last_modified, -0.001);
        assert!(p.has_owner);
        assert_eq!(p.owner_session_id, 8);
        s.ephemeral_owner = 0;
        assert_eq!(s.owner_session_id(), None);
        assert!(!s.properties().has_owner);
        s.ephemeral_owner = -5;
        assert_eq!(s.owner_session_id(), Some(-5));
    }
}
