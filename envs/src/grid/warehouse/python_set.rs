//! CPython's iteration order over a `set` of `(x, y)` tuples, which decides ties in rware's
//! collision resolution (see [`super::moves`]).
//!
//! | CPython 3.11 | here |
//! |---|---|
//! | `hash((x, y))` for small non-negative ints (xxHash-style `tuplehash`) | [`tuple_hash`] |
//! | `set.add`: open addressing, 9 linear probes then perturbed jumps; 8 slots to start | [`PySet::insert`] |
//! | resize when `fill * 5 >= mask * 3`, to the smallest power of two above `4 * used` | [`PySet::insert`] |
//! | iteration: table slot order | [`PySet::iter`] |
//!
//! Only insertion is modelled (the sets involved are never shrunk). Integer hashes, and so these
//! orders, do not depend on `PYTHONHASHSEED`. numpy's integer scalars hash as Python ints, so
//! coordinates that are `np.int64` give the same order.

const XXPRIME_1: u64 = 11400714785074694791;
const XXPRIME_2: u64 = 14029467366897019727;
const XXPRIME_5: u64 = 2870177450012600261;
const LINEAR_PROBES: usize = 9;
const PERTURB_SHIFT: u32 = 5;
const MIN_SIZE: usize = 8;

/// `hash((x, y))` for Python ints `0 <= x, y < 2^61 - 1` (whose hash is the int itself).
pub fn tuple_hash(x: u64, y: u64) -> u64 {
    let mut acc = XXPRIME_5;
    for lane in [x, y] {
        acc = acc.wrapping_add(lane.wrapping_mul(XXPRIME_2));
        acc = acc.rotate_left(31);
        acc = acc.wrapping_mul(XXPRIME_1);
    }
    acc = acc.wrapping_add(2 ^ (XXPRIME_5 ^ 3527539));
    if acc == u64::MAX {
        1546275796
    } else {
        acc
    }
}

/// A slot: the key (a caller's id) and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    key: u32,
    hash: u64,
}

/// The table layout of a CPython `set` built by successive `add`s, preallocated for a maximum
/// number of elements so that filling it allocates nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct PySet {
    table: Vec<Option<Slot>>,
    spare: Vec<Option<Slot>>,
    mask: usize,
    fill: usize,
}

impl PySet {
    /// An empty set with room for up to `max_elements` (more panics).
    pub fn with_capacity(max_elements: usize) -> Self {
        // A resize at `used` elements asks for the smallest power of two above 4 * used.
        let cap = (4 * max_elements + 1).next_power_of_two().max(MIN_SIZE);
        Self {
            table: vec![None; cap],
            spare: vec![None; cap],
            mask: MIN_SIZE - 1,
            fill: 0,
        }
    }

    /// Empties the set (back to CPython's 8-slot table).
    pub fn clear(&mut self) {
        self.table[..=self.mask].fill(None);
        self.mask = MIN_SIZE - 1;
        self.fill = 0;
    }

    /// `set.add(key)` where `key` hashes to `hash`; keys are equal iff their ids are.
    pub fn insert(&mut self, key: u32, hash: u64) {
        let mask = self.mask;
        let mut perturb = hash;
        let mut i = hash as usize & mask;
        loop {
            let probes = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            for j in i..=i + probes {
                match self.table[j] {
                    None => {
                        self.table[j] = Some(Slot { key, hash });
                        self.fill += 1;
                        if self.fill * 5 >= mask * 3 {
                            self.resize(self.fill * 4);
                        }
                        return;
                    }
                    Some(s) if s.hash == hash && s.key == key => return,
                    Some(_) => {}
                }
            }
            perturb >>= PERTURB_SHIFT;
            i = (i * 5 + 1 + perturb as usize) & mask;
        }
    }

    fn resize(&mut self, min_used: usize) {
        let mut size = MIN_SIZE;
        while size <= min_used {
            size <<= 1;
        }
        assert!(size <= self.table.len(), "PySet capacity exceeded");
        let old_len = self.mask + 1;
        std::mem::swap(&mut self.table, &mut self.spare);
        self.table[..size].fill(None);
        self.mask = size - 1;
        for k in 0..old_len {
            if let Some(slot) = self.spare[k].take() {
                self.insert_clean(slot);
            }
        }
    }

    /// CPython's `set_insert_clean`: a key known to be absent, into a table without dummies.
    fn insert_clean(&mut self, slot: Slot) {
        let mask = self.mask;
        let mut perturb = slot.hash;
        let mut i = slot.hash as usize & mask;
        loop {
            let probes = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            for j in i..=i + probes {
                if self.table[j].is_none() {
                    self.table[j] = Some(slot);
                    return;
                }
            }
            perturb >>= PERTURB_SHIFT;
            i = (i * 5 + 1 + perturb as usize) & mask;
        }
    }

    /// The keys in iteration order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.table[..=self.mask]
            .iter()
            .filter_map(|s| s.map(|s| s.key))
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.fill
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.fill == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `hash((x, y))` from CPython 3.11.7.
    #[test]
    fn tuple_hashes_match_cpython() {
        assert_eq!(tuple_hash(0, 0) as i64, -8_458_139_203_682_520_985);
        assert_eq!(tuple_hash(4, 10) as i64, -69_650_197_367_864_479);
        assert_eq!(tuple_hash(9, 28) as i64, 7_941_690_487_739_386_442);
    }

    /// `list({(x, y) for ...})` orders from CPython 3.11.7, built by successive adds.
    #[test]
    fn iteration_orders_match_cpython() {
        type Cells<'a> = &'a [(u64, u64)];
        let cases: [(Cells, Cells); 3] = [
            (
                &[(4, 10), (4, 9), (5, 10), (3, 9), (4, 8)],
                &[(4, 10), (4, 9), (5, 10), (3, 9), (4, 8)],
            ),
            (
                &[(1, 1), (1, 2), (2, 1), (0, 1), (1, 0), (2, 2), (0, 0)],
                &[(0, 1), (1, 2), (2, 1), (0, 0), (1, 1), (2, 2), (1, 0)],
            ),
            (
                &[
                    (7, 3),
                    (7, 4),
                    (6, 4),
                    (8, 4),
                    (7, 5),
                    (6, 5),
                    (8, 5),
                    (7, 6),
                    (6, 6),
                ],
                &[
                    (7, 4),
                    (8, 4),
                    (6, 5),
                    (6, 4),
                    (7, 3),
                    (7, 6),
                    (6, 6),
                    (7, 5),
                    (8, 5),
                ],
            ),
        ];
        for (adds, order) in cases {
            let mut s = PySet::with_capacity(adds.len());
            for (k, &(x, y)) in adds.iter().enumerate() {
                s.insert(k as u32, tuple_hash(x, y));
            }
            let got: Vec<(u64, u64)> = s.iter().map(|k| adds[k as usize]).collect();
            assert_eq!(got, order, "adds {adds:?}");
        }
    }
}
