//! Sticky bucketing: the function that turns a routing key into one of a million buckets.
//!
//! `bucket = XXH3_64(key bytes, seed) mod 1_000_000`, where XXH3_64 is the 64-bit XXH3 hash
//! (xxHash 0.8, `XXH3_64bits_withSeed`) and the key is UTF-8. A key goes to the scheduler iff its
//! bucket is below the share in parts per million. Anyone can reproduce a decision, e.g. in Python:
//! `xxhash.xxh3_64_intdigest(b"guest/hello", seed=0) % 1_000_000`.
//! The modulo bias (2^64 mod 10^6 over 2^64) is below 10^-13 and irrelevant.

use xxhash_rust::xxh3::{xxh3_64_with_seed, Xxh3};

/// Number of buckets; shares are in parts per million, so one bucket is one ppm.
pub const BUCKETS: u64 = 1_000_000;

/// The bucket of a key given as one byte string.
pub fn bucket_of(key: &[u8], seed: u64) -> u32 {
    (xxh3_64_with_seed(key, seed) % BUCKETS) as u32
}

/// The bucket of a key given in pieces, hashed as if concatenated (no allocation).
pub fn sticky_bucket(pieces: &[&str], seed: u64) -> u32 {
    // Typical keys fit on the stack, where one-shot XXH3 is several times faster than the
    // streaming state (which must be seeded first); both give the same hash.
    let mut buf = [0u8; 256];
    let mut len = 0;
    for piece in pieces {
        let bytes = piece.as_bytes();
        let Some(slot) = buf.get_mut(len..len + bytes.len()) else {
            let mut hasher = Xxh3::with_seed(seed);
            pieces.iter().for_each(|p| hasher.update(p.as_bytes()));
            return (hasher.digest() % BUCKETS) as u32;
        };
        slot.copy_from_slice(bytes);
        len += bytes.len();
    }
    bucket_of(&buf[..len], seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned vectors, computed with the reference xxHash implementation (Python `xxhash`). If these
    /// change, every replica and every earlier decision disagrees with the new build: changing them
    /// is a breaking change to announce, not a test to update.
    #[test]
    fn pinned_vectors() {
        assert_eq!(bucket_of(b"", 0), 603_138);
        assert_eq!(bucket_of(b"guest/hello", 0), 55_796);
        assert_eq!(bucket_of(b"guest/img/resize", 42), 593_664);
        assert_eq!(bucket_of(b"whisk.system/utils/echo", 7), 320_793);
        assert_eq!(bucket_of("ns-\u{fc}/act".as_bytes(), 0), 565_482);
    }

    #[test]
    fn pieces_hash_like_the_concatenation() {
        assert_eq!(sticky_bucket(&["guest", "/", "img", "/", "resize"], 42), 593_664);
        assert_eq!(sticky_bucket(&[], 0), 603_138);
        let long = "x".repeat(300);
        assert_eq!(
            sticky_bucket(&[&long[..150], &long[150..]], 5),
            bucket_of(long.as_bytes(), 5),
            "keys past the stack buffer"
        );
    }
}
