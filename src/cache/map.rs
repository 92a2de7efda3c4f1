//! The cache's map: shards of immutable snapshots.
//!
//! Readers load one shard's current snapshot (one `arc-swap` load, no lock, nothing shared
//! written) and probe it. A writer takes the shard's lock, copies that shard's snapshot with
//! its change and publishes the copy; readers of the old snapshot finish undisturbed. There are
//! enough shards for about 16 keys each when the cache is full, so a write copies a few
//! reference counts, not the map: a new key or a new token costs about the same at any size
//! the cache allows (`tests/cache_growth.rs`), and nothing is left behind: a removed entry is
//! freed with the last snapshot that held it.
//!
//! (A general-purpose concurrent map was used before; under steady key churn with eviction it
//! could loop in its resize and allocate without bound. This map has no resize to get wrong.)

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use super::hot::PrecomputedHash;
use crate::token::TokenRequest;

/// A full cache has about this many keys per shard: a write copies that many entries
/// (reference counts, a few hundred bytes).
const KEYS_PER_SHARD: usize = 16;
/// Bounds on the number of shards: writers of different keys rarely share a lock, and an
/// empty shard costs about 100 bytes (256 shards for the default 4,096 keys: 25 KB).
const MIN_SHARDS: usize = 16;
const MAX_SHARDS: usize = 1024;

type Snapshot<V> = HashMap<Arc<TokenRequest>, V, BuildHasherDefault<PrecomputedHash>>;

/// A map from requests to `V` with lock-free reads and copy-on-write shards.
pub(super) struct ShardedMap<V> {
    shards: Box<[Shard<V>]>,
    /// `shards.len() - 1` (a power of two).
    mask: usize,
    len: AtomicUsize,
}

struct Shard<V> {
    snapshot: ArcSwap<Snapshot<V>>,
    /// Serializes writers of this shard (readers never take it).
    writer: Mutex<()>,
}

impl<V: Clone> ShardedMap<V> {
    /// A map sized for at most `max_keys` keys (it holds more, with longer writes).
    pub(super) fn new(max_keys: usize) -> Self {
        let shards = (max_keys / KEYS_PER_SHARD)
            .next_power_of_two()
            .clamp(MIN_SHARDS, MAX_SHARDS);
        Self {
            mask: shards - 1,
            shards: (0..shards)
                .map(|_| Shard {
                    snapshot: ArcSwap::from_pointee(Snapshot::default()),
                    writer: Mutex::new(()),
                })
                .collect(),
            len: AtomicUsize::new(0),
        }
    }

    /// Keys held.
    pub(super) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// `read` applied to the key's value, if any: the hit path.
    #[inline]
    pub(super) fn read<R>(&self, key: &TokenRequest, read: impl FnOnce(&V) -> R) -> Option<R> {
        let snapshot = self.shard(key).snapshot.load();
        snapshot.get(key).map(read)
    }

    /// The key's value, inserting `new()` if it has none; `true` if it was inserted.
    pub(super) fn get_or_insert_with(
        &self,
        key: &TokenRequest,
        new: impl FnOnce() -> V,
    ) -> (V, bool) {
        if let Some(value) = self.read(key, V::clone) {
            return (value, false);
        }
        let shard = self.shard(key);
        let _writer = lock(&shard.writer);
        let current = shard.snapshot.load();
        if let Some(value) = current.get(key) {
            return (value.clone(), false); // another writer inserted it first
        }
        let value = new();
        let mut copy = Snapshot::clone(&current);
        copy.insert(Arc::new(key.clone()), value.clone());
        shard.snapshot.store(Arc::new(copy));
        self.len.fetch_add(1, Ordering::Relaxed);
        (value, true)
    }

    /// Replaces the key's value with `change(value)` when that is `Some` (a compare-and-set:
    /// `change` sees the value current under the shard's lock); returns the new value.
    pub(super) fn replace(
        &self,
        key: &TokenRequest,
        change: impl FnOnce(&V) -> Option<V>,
    ) -> Option<V> {
        let shard = self.shard(key);
        let _writer = lock(&shard.writer);
        let current = shard.snapshot.load();
        let (stored_key, value) = current.get_key_value(key)?;
        let new = change(value)?;
        let mut copy = Snapshot::clone(&current);
        copy.insert(stored_key.clone(), new.clone());
        shard.snapshot.store(Arc::new(copy));
        Some(new)
    }

    /// Removes the keys for which `evict` (a pure test, called up to twice per key) says so,
    /// shard by shard; returns their values. A shard with nothing to remove is not copied.
    pub(super) fn remove_where(&self, evict: impl Fn(&TokenRequest, &V) -> bool) -> Vec<V> {
        let mut removed = Vec::new();
        for shard in self.shards.iter() {
            if !shard.snapshot.load().iter().any(|(k, v)| evict(k, v)) {
                continue;
            }
            let _writer = lock(&shard.writer);
            let current = shard.snapshot.load();
            let mut kept = Snapshot::with_capacity_and_hasher(current.len(), Default::default());
            for (key, value) in current.iter() {
                if evict(key, value) {
                    removed.push(value.clone());
                } else {
                    kept.insert(key.clone(), value.clone());
                }
            }
            let gone = current.len() - kept.len();
            shard.snapshot.store(Arc::new(kept));
            self.len.fetch_sub(gone, Ordering::Relaxed);
        }
        removed
    }

    /// Every key with `project(value)`, as of now (for picking eviction victims).
    pub(super) fn collect<T>(
        &self,
        mut project: impl FnMut(&V) -> Option<T>,
    ) -> Vec<(Arc<TokenRequest>, T)> {
        let mut all = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            let snapshot = shard.snapshot.load();
            all.extend(
                snapshot
                    .iter()
                    .filter_map(|(k, v)| project(v).map(|t| (k.clone(), t))),
            );
        }
        all
    }

    fn shard(&self, key: &TokenRequest) -> &Shard<V> {
        // Middle bits of the hash: the shard's own table indexes by the low bits and tags
        // entries with the top ones.
        &self.shards[(key.key_hash() >> 32) as usize & self.mask]
    }
}

fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
