//! A small, versioned byte format for environment snapshots.
//!
//! A snapshot starts with the environment's id and parameters fingerprint, so restoring into the
//! wrong environment fails with a message instead of producing a silently different world. Values
//! are little-endian; `f64` values keep their exact bits.

use rand_chacha::ChaCha8Rng;

use crate::error::EnvError;

const MAGIC: &[u8; 8] = b"marlsnp1";

/// Appends values to a snapshot.
pub struct SnapshotWriter {
    bytes: Vec<u8>,
}

impl SnapshotWriter {
    /// Starts a snapshot of the environment identified by `tag` (id and parameters).
    pub fn new(tag: &str) -> Self {
        let mut w = Self {
            bytes: Vec::with_capacity(256),
        };
        w.bytes.extend_from_slice(MAGIC);
        w.str(tag);
        w
    }

    /// Writes a `u64`.
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a `u128`.
    pub fn u128(&mut self, v: u128) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes an `f64` with its exact bits.
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }

    /// Writes a length-prefixed slice of `f64`.
    pub fn f64s(&mut self, vs: &[f64]) {
        self.u64(vs.len() as u64);
        for &v in vs {
            self.f64(v);
        }
    }

    /// Writes a length-prefixed string.
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes.extend_from_slice(s.as_bytes());
    }

    /// Writes a length-prefixed byte string (a nested snapshot).
    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.bytes.extend_from_slice(b);
    }

    /// Writes the full state of a ChaCha generator (seed, stream and position).
    pub fn rng(&mut self, rng: &ChaCha8Rng) {
        self.bytes.extend_from_slice(&rng.get_seed());
        self.u64(rng.get_stream());
        self.u128(rng.get_word_pos());
    }

    /// The finished snapshot.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads values back in the order they were written.
pub struct SnapshotReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> SnapshotReader<'a> {
    /// Opens a snapshot and checks that it was written by the environment identified by `tag`.
    pub fn new(bytes: &'a [u8], tag: &str) -> Result<Self, EnvError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(err("not a marl environment snapshot (bad header)"));
        }
        let mut r = Self {
            bytes,
            pos: MAGIC.len(),
        };
        let found = r.str()?;
        if found != tag {
            return Err(err(&format!(
                "snapshot is of `{found}`, this environment is `{tag}`"
            )));
        }
        Ok(r)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| err("snapshot is truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Reads a `u64`.
    pub fn u64(&mut self) -> Result<u64, EnvError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("took 8 bytes")))
    }

    /// Reads a `u128`.
    pub fn u128(&mut self) -> Result<u128, EnvError> {
        let b = self.take(16)?;
        Ok(u128::from_le_bytes(b.try_into().expect("took 16 bytes")))
    }

    /// Reads an `f64`.
    pub fn f64(&mut self) -> Result<f64, EnvError> {
        Ok(f64::from_bits(self.u64()?))
    }

    /// Reads a length-prefixed slice of `f64` into `out`, which must have the written length.
    pub fn f64s_into(&mut self, out: &mut [f64]) -> Result<(), EnvError> {
        let n = self.u64()? as usize;
        if n != out.len() {
            return Err(err(&format!(
                "array of {n} values where {} were expected",
                out.len()
            )));
        }
        for v in out.iter_mut() {
            *v = self.f64()?;
        }
        Ok(())
    }

    /// Reads a length-prefixed string.
    pub fn str(&mut self) -> Result<String, EnvError> {
        let n = self.u64()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| err("invalid string"))
    }

    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], EnvError> {
        let n = self.u64()? as usize;
        self.take(n)
    }

    /// Reads a ChaCha generator's state.
    pub fn rng(&mut self) -> Result<ChaCha8Rng, EnvError> {
        use rand::SeedableRng;
        let seed: [u8; 32] = self.take(32)?.try_into().expect("took 32 bytes");
        let stream = self.u64()?;
        let word_pos = self.u128()?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(stream);
        rng.set_word_pos(word_pos);
        Ok(rng)
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), EnvError> {
        if self.pos != self.bytes.len() {
            return Err(err("snapshot has trailing bytes"));
        }
        Ok(())
    }
}

fn err(message: &str) -> EnvError {
    EnvError::Snapshot {
        message: message.to_string(),
    }
}
