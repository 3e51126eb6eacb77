//! numpy's random `Generator`, draw for draw: what gymnasium's `reset(seed=s)` builds
//! (`Generator(PCG64(SeedSequence(s)))`) and the sampling calls the reference environments make
//! (numpy 2.x, `numpy/random/_generator.pyx` and `src/distributions/distributions.c`).
//!
//! | numpy | here |
//! |---|---|
//! | `SeedSequence(s).generate_state(4, uint64)` | [`NumpyRng::from_seed`] (hashmix/mix over a pool of 4 `u32`) |
//! | `PCG64` (XSL-RR 128/64), `next_uint64` | [`NumpyRng::next_u64`] |
//! | `next_uint32`: half of a `next_uint64`, the other half kept for the next call | [`NumpyRng::next_u32`] |
//! | `random_bounded_uint64(0, rng)`, Lemire on 32 bits | [`NumpyRng::bounded`] |
//! | `integers(0, n)` (any `size`: one Lemire draw per value) | [`NumpyRng::integers`] |
//! | `choice(n, size, replace=False)` (Floyd, then a shuffle; a tail shuffle above 10,000) | [`NumpyRng::choice_without_replacement`] |
//! | `choice(seq)`, `choice(seq, size)` (with replacement) | [`NumpyRng::integers`] per value |
//!
//! The generator's whole state (`bit_generator.state`: the 128-bit state and increment and the
//! buffered half word) is [`NumpyRngState`], for snapshots and recorded traces.

/// PCG64's multiplier (`PCG_DEFAULT_MULTIPLIER_128`).
const MULTIPLIER: u128 = (2549297995355413924u128 << 64) | 4865540595714422341u128;

/// `SeedSequence`'s constants (`bit_generator.pyx`).
const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;
const POOL_SIZE: usize = 4;

/// numpy's `Generator.choice` switches from Floyd's algorithm to a tail shuffle of the whole
/// population above this size (when the sample is large enough).
const FLOYD_POPULATION_LIMIT: usize = 10_000;

/// Everything numpy's `PCG64.state` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumpyRngState {
    /// The 128-bit LCG state.
    pub state: u128,
    /// The increment (odd).
    pub inc: u128,
    /// Whether half of the last 64-bit output waits for the next 32-bit draw.
    pub has_uint32: bool,
    /// That half.
    pub uinteger: u32,
}

/// numpy's `Generator(PCG64(...))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumpyRng {
    s: NumpyRngState,
}

fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut v = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    v = v.wrapping_mul(*hash_const);
    v ^ (v >> XSHIFT)
}

fn mix(x: u32, y: u32) -> u32 {
    let r = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    r ^ (r >> XSHIFT)
}

/// `SeedSequence(seed).generate_state(4, np.uint64)`.
fn seed_sequence_state(seed: u64) -> [u64; 4] {
    // The entropy: the seed's little-endian u32 words, `[0]` for 0.
    let words: &[u32] = &[seed as u32, (seed >> 32) as u32];
    let entropy = if seed >> 32 == 0 { &words[..1] } else { words };
    let mut pool = [0u32; POOL_SIZE];
    let mut hash_const = INIT_A;
    for (i, p) in pool.iter_mut().enumerate() {
        *p = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const);
    }
    for src in 0..POOL_SIZE {
        for dst in 0..POOL_SIZE {
            if src != dst {
                pool[dst] = mix(pool[dst], hashmix(pool[src], &mut hash_const));
            }
        }
    }
    // generate_state: 8 u32 words cycling over the pool, read as 4 little-endian u64.
    let mut hash_const = INIT_B;
    let mut out = [0u32; 8];
    for (i, o) in out.iter_mut().enumerate() {
        let mut v = pool[i % POOL_SIZE] ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_B);
        v = v.wrapping_mul(hash_const);
        *o = v ^ (v >> XSHIFT);
    }
    std::array::from_fn(|k| u64::from(out[2 * k]) | (u64::from(out[2 * k + 1]) << 32))
}

impl NumpyRng {
    /// `np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))`, which is what
    /// gymnasium's `reset(seed=seed)` makes.
    pub fn from_seed(seed: u64) -> Self {
        let v = seed_sequence_state(seed);
        let initstate = (u128::from(v[0]) << 64) | u128::from(v[1]);
        let initseq = (u128::from(v[2]) << 64) | u128::from(v[3]);
        let mut rng = Self {
            s: NumpyRngState {
                state: 0,
                inc: (initseq << 1) | 1,
                has_uint32: false,
                uinteger: 0,
            },
        };
        rng.step();
        rng.s.state = rng.s.state.wrapping_add(initstate);
        rng.step();
        rng
    }

    /// A generator in the given state.
    pub fn from_state(s: NumpyRngState) -> Self {
        Self { s }
    }

    /// The whole state.
    pub fn state(&self) -> NumpyRngState {
        self.s
    }

    #[inline]
    fn step(&mut self) {
        self.s.state = self
            .s
            .state
            .wrapping_mul(MULTIPLIER)
            .wrapping_add(self.s.inc);
    }

    /// `next_uint64`: step, then XSL-RR output.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let s = self.s.state;
        (((s >> 64) as u64) ^ (s as u64)).rotate_right((s >> 122) as u32)
    }

    /// `next_uint32`: the low half of a fresh 64-bit output, keeping the high half for the next
    /// call.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if self.s.has_uint32 {
            self.s.has_uint32 = false;
            return self.s.uinteger;
        }
        let next = self.next_u64();
        self.s.has_uint32 = true;
        self.s.uinteger = (next >> 32) as u32;
        next as u32
    }

    /// `random_bounded_uint64(0, rng, use_masked=False)` for `rng < 2^32`: a value in
    /// `[0, rng]` by Lemire's method on 32-bit draws; no draw when `rng` is 0.
    #[inline]
    pub fn bounded(&mut self, rng: u32) -> u32 {
        if rng == 0 {
            return 0;
        }
        if rng == u32::MAX {
            return self.next_u32();
        }
        let rng_excl = u64::from(rng) + 1;
        let mut m = u64::from(self.next_u32()) * rng_excl;
        let mut leftover = m as u32;
        if u64::from(leftover) < rng_excl {
            let threshold = ((u64::from(u32::MAX) - u64::from(rng)) % rng_excl) as u32;
            while leftover < threshold {
                m = u64::from(self.next_u32()) * rng_excl;
                leftover = m as u32;
            }
        }
        (m >> 32) as u32
    }

    /// `integers(0, n)` (also each value of `integers(0, n, size)` and of `choice(seq)` with
    /// replacement): a value in `[0, n)`. `n` must be in `1..=2^32`.
    #[inline]
    pub fn integers(&mut self, n: usize) -> usize {
        assert!(
            n >= 1 && n as u64 <= 1 << 32,
            "integers(0, {n}) is outside the 32-bit range"
        );
        self.bounded((n - 1) as u32) as usize
    }

    /// `choice(n, size=out.len(), replace=False)` (with numpy's default `shuffle=True`): distinct
    /// indices in `[0, n)`, in numpy's order. Allocates only for populations above 10,000.
    pub fn choice_without_replacement(&mut self, n: usize, out: &mut [usize]) {
        let size = out.len();
        assert!(
            size <= n,
            "Cannot take a larger sample than population when replace is False"
        );
        if n > FLOYD_POPULATION_LIMIT && size > n / 50 {
            // Tail shuffle: shuffle positions n-1 down to n-size of arange(n), keep the tail.
            let mut all: Vec<usize> = (0..n).collect();
            self.shuffle_from(&mut all, (n - size).max(1));
            out.copy_from_slice(&all[n - size..]);
            return;
        }
        // Floyd's algorithm: for j in n-size..n draw v in [0, j]; take v unless already taken,
        // else j. (numpy keeps the taken values in a hash set; membership is all that matters.)
        for (k, j) in (n - size..n).enumerate() {
            let v = self.bounded(j as u32) as usize;
            out[k] = if out[..k].contains(&v) { j } else { v };
        }
        self.shuffle_from(out, 1);
    }

    /// numpy's `_shuffle_int(n, first, data)`: for `i` from `n-1` down to `first`, swap
    /// `data[i]` with `data[bounded(i)]`.
    fn shuffle_from(&mut self, data: &mut [usize], first: usize) {
        for i in (first..data.len()).rev() {
            let j = self.bounded(i as u32) as usize;
            data.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden values from numpy 2.4.6:
    /// ```python
    /// g = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    /// g.bit_generator.state; g.bit_generator.random_raw(2)
    /// [int(g.integers(0, n)) for n in [5, 110, 1, 7, 1000000]]
    /// g.choice(np.arange(110), size=4, replace=False), g.choice(4, size=4),
    /// g.choice(np.arange(32), size=2, replace=False); g.bit_generator.state
    /// ```
    #[allow(clippy::type_complexity)]
    const GOLDEN: [(
        u64,
        u128,
        u128,
        [u64; 2],
        [usize; 5],
        [usize; 10],
        u128,
        u32,
    ); 5] = [
        (
            0,
            0x1aa1b5345996452d09585eb7a69561e3,
            0x418ddadb3af71a82588133bc447873a9,
            [0xa30febcfd9c2825f, 0x4510bdf882d9d721],
            [1, 4, 0, 0, 16527],
            [18, 100, 87, 70, 2, 2, 2, 2, 28, 8],
            0x2ddce651e6330140f3e68c69e78967c6,
            3504064333,
        ),
        (
            1,
            0x9c5b484bfedb756c2a6e7d6f320fbc7e,
            0x922af2da2645f895a19857b95740937b,
            [0x8306bdf37922e4ff, 0xf35196bbc152a866],
            [0, 15, 0, 5, 948649],
            [46, 26, 94, 33, 1, 2, 2, 0, 0, 27],
            0x2934caa57d27fb70b1c471d321ef2c73,
            3236314158,
        ),
        (
            42,
            0xcea44f6798798f2aacbc7c9d68860ac8,
            0xfa505436c9a8416e66caf2e28d25abff,
            [0xc621fbcd16d92688, 0x705a5661a791ffc1],
            [2, 94, 0, 0, 697368],
            [21, 10, 107, 57, 3, 2, 0, 3, 16, 13],
            0xe4e78b24c84f6511b65a5219df4f4b31,
            1592565387,
        ),
        (
            (1 << 32) + 5,
            0x2931d0c6dbee79bfece8058fe085a345,
            0x271168ffcdb9ee72bdd751b35ac873c3,
            [0xc6323ec321deb8d1, 0x78814821c73a0583],
            [4, 76, 0, 5, 816537],
            [56, 58, 87, 62, 0, 1, 1, 0, 30, 19],
            0xdf07e151d6f6de63d0f7ef5ccbbb58f6,
            3759938106,
        ),
        (
            u64::MAX,
            0xddc419442aebde794d8b0a3b048acdb0,
            0x37762aacb3cc854f4ed623c7d18951ed,
            [0xae163a7a8c47568f, 0xd86659f5f3382359],
            [1, 0, 0, 0, 894568],
            [33, 64, 13, 35, 0, 1, 3, 0, 15, 2],
            0x0b87a76652cea70dcf7613061f02131b,
            2973527320,
        ),
    ];

    #[test]
    fn seeding_draws_and_choices_match_numpy() {
        for (seed, state, inc, raw, ints, choices, end_state, uinteger) in GOLDEN {
            let mut g = NumpyRng::from_seed(seed);
            assert_eq!(
                (g.state().state, g.state().inc),
                (state, inc),
                "seed {seed}"
            );
            assert_eq!([g.next_u64(), g.next_u64()], raw, "seed {seed}");
            let got: Vec<usize> = [5, 110, 1, 7, 1_000_000]
                .iter()
                .map(|&n| g.integers(n))
                .collect();
            assert_eq!(got, ints, "seed {seed}");
            let mut c = [0usize; 10];
            g.choice_without_replacement(110, &mut c[..4]);
            for k in 4..8 {
                c[k] = g.integers(4);
            }
            g.choice_without_replacement(32, &mut c[8..]);
            assert_eq!(c, choices, "seed {seed}");
            let s = g.state();
            assert_eq!(
                (s.state, s.has_uint32, s.uinteger),
                (end_state, false, uinteger)
            );
        }
    }

    /// `g = Generator(PCG64(SeedSequence(7))); g.choice(np.arange(20000), size=500,
    /// replace=False)[:5]` and the state after it: the tail-shuffle path.
    #[test]
    fn large_populations_use_numpys_tail_shuffle() {
        let mut g = NumpyRng::from_seed(7);
        let mut out = vec![0usize; 500];
        g.choice_without_replacement(20_000, &mut out);
        assert_eq!(out[..5], [7349, 10231, 16198, 13269, 12921]);
        assert_eq!(g.state().state, 0xb5b02ce4fcb8191f43de40ebd31149d6);
    }
}
