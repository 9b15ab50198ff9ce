//! Small helpers shared across modules.

/// A stable 64-bit FNV-1a hash. Used for content fingerprints that must not change between
/// processes or Rust releases (the journal stores them), which `std`'s hasher does not promise.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
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
        assert_eq!(super::fingerprint(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fingerprint(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
