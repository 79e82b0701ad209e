//! A small seeded PRNG for the core's random choices (refresh targets) and the simulator.

/// SplitMix64 (Steele, Lea & Flood, 2014): one `u64` of state, fast, and statistically good
/// enough for picking random keys. Not for secrets; the driver seeds it from the OS so
/// that other nodes cannot predict our refresh targets, a simulator from its seed so that
/// runs replay exactly.
///
/// Public (as `blyan_dht::sim::SplitMix64`) with the `sim` feature, so simulations, tests
/// and benches draw from the same generator.
#[derive(Clone, Debug)]
#[cfg_attr(not(feature = "sim"), allow(unreachable_pub))]
pub struct SplitMix64(u64);

#[cfg_attr(not(feature = "sim"), allow(unreachable_pub))]
impl SplitMix64 {
    /// A generator that replays the same stream for the same `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when `n` is 0); the modulo bias is below 2^-40 for the small
    /// `n` used here.
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// 32 random bytes (a key, a peer id).
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_spread() {
        let mut a = SplitMix64::new(5);
        let mut b = SplitMix64::new(5);
        assert_eq!(a.bytes32(), b.bytes32());
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[a.below(4) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
        assert_eq!(a.below(0), 0);
    }
}
