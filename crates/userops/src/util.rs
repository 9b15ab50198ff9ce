//! Small helpers shared across modules.

/// A stable 64-bit FNV-1a hash. Used for content fingerprints that must not change between
/// processes or Rust releases (the journal, snapshots and receipts store them), which `std`'s
/// hasher does not promise. For in-memory maps use `rustc_hash::FxBuildHasher` instead.
///
/// ```
/// assert_eq!(userops::util::fingerprint(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fingerprint(bytes: &[u8]) -> u64 {
    Fnv1a::new().bytes(bytes).finish()
}

/// [`fingerprint`] fed piece by piece: the hash of the pieces laid end to end, without copying
/// them into one buffer.
///
/// ```
/// use userops::util::{fingerprint, Fnv1a};
/// assert_eq!(Fnv1a::new().bytes(b"ab").bytes(b"c").finish(), fingerprint(b"abc"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a {
    state: u64,
    prime: u64,
}

/// The FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// The FNV 64-bit prime.
const FNV_PRIME: u64 = 0x0100_0000_01b3;

impl Fnv1a {
    /// The hash of no bytes (the FNV-1a offset basis).
    pub fn new() -> Fnv1a {
        Fnv1a {
            state: FNV_OFFSET,
            prime: FNV_PRIME,
        }
    }

    /// The same construction with another basis and prime: a second, independent 64 bits
    /// for a wider key (see `campaigns::automation`'s firing keys).
    pub(crate) fn with(offset: u64, prime: u64) -> Fnv1a {
        Fnv1a {
            state: offset,
            prime,
        }
    }

    /// Go on from a value [`Fnv1a::finish`] gave (FNV's state is its output): feeding the
    /// rest then gives the hash of the whole.
    pub(crate) fn resume(hash: u64) -> Fnv1a {
        Fnv1a::with(hash, FNV_PRIME)
    }

    /// Feed `bytes`.
    #[inline]
    pub fn bytes(mut self, bytes: &[u8]) -> Fnv1a {
        self.feed(bytes);
        self
    }

    /// Feed `bytes` in place (for a hasher held in a struct).
    #[inline]
    pub fn feed(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.state = (self.state ^ u64::from(*b)).wrapping_mul(self.prime);
        }
    }

    /// The hash of everything fed so far.
    pub fn finish(&self) -> u64 {
        self.state
    }
}

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a::new()
    }
}

/// splitmix64: small, fast, good enough to drive a simulation or a generated test pool
/// reproducibly.
#[cfg(test)]
pub(crate) struct Rng(pub(crate) u64);

#[cfg(test)]
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (> 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `percent` times in a hundred.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a_known_values() {
        // The published FNV-1a 64 test vectors: stored fingerprints depend on these.
        assert_eq!(super::fingerprint(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fingerprint(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(super::fingerprint(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn resumed_hash_is_the_hash_of_the_whole() {
        let half = super::Fnv1a::new().bytes(b"foo").finish();
        assert_eq!(
            super::Fnv1a::resume(half).bytes(b"bar").finish(),
            super::fingerprint(b"foobar")
        );
    }

    #[test]
    fn pieces_hash_as_the_joined_bytes() {
        let pieces = super::Fnv1a::new().bytes(b"foo").bytes(b"").bytes(b"bar");
        assert_eq!(pieces.finish(), super::fingerprint(b"foobar"));
    }
}
