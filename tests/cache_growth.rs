//! Issue 13, finding 7, without a stopwatch: the memory a new key allocates is the same with
//! 8,000 keys in the cache as with none (the cache used to copy its whole map on each new key
//! and each refresh), and a stream of new keys through a full cache keeps its memory bounded
//! (a concurrent map the cache used before could loop in its resize under that churn and
//! allocate without bound). A counting allocator measures it; the tests take turns, so nothing
//! else allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use rds_iam_auth::{Credentials, Endpoint, TokenCache, TokenGenerator, TokenRequest};

struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

// SAFETY: forwards to the system allocator; only counts the bytes asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn key(i: usize) -> TokenRequest {
    let endpoint = Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 5432).unwrap();
    TokenRequest::rds(&endpoint, format!("user_{i}"))
        .build()
        .unwrap()
}

#[test]
fn a_new_key_allocates_as_much_at_8000_keys_as_at_1() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let generator = TokenGenerator::new(Credentials::new("AKID", "secret", None, None, "test"));
    let cache = TokenCache::builder(generator).max_keys(100_000).build();
    // Bytes allocated per new key over `keys` (requests built beforehand).
    let per_key = |keys: std::ops::Range<usize>| {
        let requests: Vec<_> = keys.clone().map(key).collect();
        let before = ALLOCATED.load(Ordering::Relaxed);
        for request in &requests {
            rt.block_on(cache.get(request)).unwrap();
        }
        (ALLOCATED.load(Ordering::Relaxed) - before) / keys.len() as u64
    };
    let first = per_key(0..100);
    per_key(100..8000);
    let at_8000 = per_key(8000..8100);
    eprintln!("bytes allocated per new key: {first} at the first keys, {at_8000} at 8,000");
    assert!(
        at_8000 <= 2 * first,
        "a new key allocates {at_8000} B at 8,000 keys, {first} B at the first keys"
    );
    assert_eq!(cache.stats().entries, 8100);
}

/// Bytes allocated and not yet freed.
fn live() -> u64 {
    ALLOCATED.load(Ordering::Relaxed) - FREED.load(Ordering::Relaxed)
}

#[test]
fn new_keys_streaming_through_a_full_cache_keep_its_memory_bounded() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    const MAX: usize = 1000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let generator = TokenGenerator::new(Credentials::new("AKID", "secret", None, None, "test"));
    let cache = TokenCache::builder(generator).max_keys(MAX).build();
    let mut peak_entries = 0;
    let before = live();
    let mut full = 0;
    for i in 0..30 * MAX {
        rt.block_on(cache.get(&key(i))).unwrap();
        peak_entries = peak_entries.max(cache.stats().entries);
        if i == 2 * MAX {
            full = live() - before;
        }
    }
    let after = live() - before;
    let stats = cache.stats();
    eprintln!(
        "{} keys through a cache of {MAX}: peak {peak_entries} entries, {} evicted, {full} B live \
         when full, {after} B after",
        30 * MAX,
        stats.evictions
    );
    assert!(peak_entries <= MAX as u64 + 1, "{peak_entries} entries");
    assert!(stats.evictions >= (29 * MAX) as u64, "{stats:?}");
    // Nothing accumulates: memory after 30x the capacity is that of a full cache (give or take
    // the shards' tables' growth).
    assert!(
        after <= 2 * full,
        "{after} B live after the churn, {full} B when full"
    );
}
