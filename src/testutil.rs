//! Helpers shared by the unit tests (compiled only for `cargo test`).
//!
//! [`XorShift`] drives the "hostile input never panics" tests of the parsers: it mutates valid
//! seeds and makes up junk, the same bytes on every run, so that a failure can be reproduced
//! from its round number alone. It must never be used outside tests, nor for anything that
//! needs real randomness (keys, nonces): it is predictable by design.

/// Marsaglia's xorshift64 generator (shifts 13, 7, 17).
#[derive(Clone, Debug)]
pub(crate) struct XorShift(u64);

impl XorShift {
    /// A generator starting from `seed`, which must not be zero (zero stays zero).
    pub(crate) fn new(seed: u64) -> XorShift {
        assert_ne!(seed, 0, "a xorshift generator seeded with 0 only yields 0");
        XorShift(seed)
    }

    /// The next 64 bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (which must not be zero).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A byte: the low eight bits of the next number.
    pub(crate) fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// `len` bytes.
    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }

    /// One element of `items` (which must not be empty).
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Overwrite between 1 and `most` bytes of `data` (which must not be empty), each at a
    /// position drawn first and with a value drawn next: any byte, or one of `alphabet` when
    /// given (the characters that matter to a text format).
    pub(crate) fn mutate(&mut self, data: &mut [u8], most: usize, alphabet: Option<&[u8]>) {
        for _ in 0..self.below(most) + 1 {
            let i = self.below(data.len());
            data[i] = match alphabet {
                Some(alphabet) => *self.pick(alphabet),
                None => self.byte(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequence the copies this replaced produced, so the tests built on it keep
    /// exercising the same inputs.
    #[test]
    fn yields_the_xorshift64_sequence() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut rng = XorShift::new(state);
        for _ in 0..1000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            assert_eq!(rng.next_u64(), state);
        }
    }

    #[test]
    fn mutations_stay_in_bounds_and_in_the_alphabet() {
        let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
        for _ in 0..1000 {
            let mut data = vec![b'x'; rng.below(8) + 1];
            rng.mutate(&mut data, 4, Some(b"ab"));
            assert!(data.iter().all(|b| b"abx".contains(b)), "{data:?}");
            assert!(data.iter().any(|&b| b != b'x'), "{data:?}");
        }
    }
}
