//! The cache's speed devices, kept apart from its policy: a hit counter sharded per thread,
//! per-thread copies of a token, and the hasher that reuses a request's precomputed hash.
//!
//! None of them changes what the cache decides; they keep the hit path (a map probe, an
//! atomic load, a reference-count increment) from sharing written cache lines between
//! threads, and from hashing two strings per call.

use std::hash::Hasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::token::IamAuthToken;

/// Shards of the hit counter and copies of each token: more than the cores that usually hit
/// one cache at once, few enough that a token's copies stay small.
pub(super) const SHARDS: usize = 8;

/// A hasher for keys that carry their own hash ([`TokenRequest`](crate::token::TokenRequest)
/// computes it once, at build time).
#[derive(Default)]
pub(super) struct PrecomputedHash(u64);

impl Hasher for PrecomputedHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is expected; fold anything else in rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// Copies of one token, one per shard, made on a shard's first hit: threads clone different
/// copies, so the hit path's one shared write (a reference count) is not shared between
/// threads. Each copy is its own small allocation, aligned to two cache lines (see
/// `token.rs`), sharing the token's text. A key only one thread uses costs one copy, not
/// eight: most keys of a large cache are used by few threads.
pub(super) struct TokenCopies {
    original: IamAuthToken,
    copies: [OnceLock<IamAuthToken>; SHARDS],
}

impl TokenCopies {
    pub(super) fn of(token: &IamAuthToken) -> Self {
        Self {
            original: token.clone(),
            copies: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    #[inline]
    pub(super) fn for_shard(&self, shard: usize) -> IamAuthToken {
        self.copies[shard]
            .get_or_init(|| self.original.duplicate())
            .clone()
    }
}

/// A hit counter that two threads can bump without fighting over one cache line.
pub(super) struct ShardedCounter {
    shards: [PaddedCounter; SHARDS],
}

#[repr(align(128))]
#[derive(Default)]
struct PaddedCounter(AtomicU64);

impl Default for ShardedCounter {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| PaddedCounter::default()),
        }
    }
}

impl ShardedCounter {
    pub(super) fn increment(&self) {
        self.increment_shard(shard_index());
    }

    /// Counts one on `shard`; returns the shard's count before.
    pub(super) fn increment_shard(&self, shard: usize) -> u64 {
        self.shards[shard].0.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn sum(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// This thread's shard, assigned round-robin on first use.
pub(super) fn shard_index() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static INDEX: usize = (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % SHARDS;
    }
    INDEX.with(|i| *i)
}
