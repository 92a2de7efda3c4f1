//! Issue 13, finding 7, without a stopwatch: the memory a new key allocates is the same with
//! 8,000 keys in the cache as with none (the cache used to copy its whole map on each new key
//! and each refresh). A counting allocator measures it; this binary holds only this test, so
//! nothing else allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use rds_iam_auth::{Credentials, Endpoint, TokenCache, TokenGenerator, TokenRequest};

struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts the bytes asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
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
