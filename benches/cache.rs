//! The token cache: the hit path from one thread and from two contending threads, the miss
//! path (credentials from memory, one signing), and the cost of a new key into an empty
//! cache and into one holding 8,000 keys (flat: no copy of the map), in one run. The resident
//! memory that 8,000 keys add is printed once.
//!
//! With `--features metrics` a recorder is installed first, so the figures include what the
//! feature costs (nothing on the hit path but a branch: hits reach the facade in batches).
//! Compare `cargo bench --bench cache --no-default-features` with and without the feature.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rds_iam_auth::{Credentials, Endpoint, TokenCache, TokenGenerator, TokenRequest};

/// Polls a future that completes without waiting (a cache hit does) with no runtime around it,
/// so that the figure is the cache's, not an executor's.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("expected a cache hit, which never waits"),
    }
}

fn setup() -> (TokenCache, TokenRequest) {
    let credentials = Credentials::new(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        Some("IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc/def==".into()),
        None,
        "bench",
    );
    let cache = TokenCache::new(TokenGenerator::new(credentials));
    let endpoint =
        Endpoint::new("mydb.cluster-abc123xyz.us-east-1.rds.amazonaws.com", 5432).unwrap();
    let request = TokenRequest::rds(&endpoint, "iam_user").build().unwrap();
    (cache, request)
}

fn bench_cache(c: &mut Criterion) {
    #[cfg(feature = "metrics")]
    metrics_util::debugging::DebuggingRecorder::new()
        .install()
        .expect("the only recorder");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // First, before other benchmarks free memory this would reuse: what 8,000 keys cost.
    let before = resident_bytes();
    let cache = big_cache();
    for i in 0..8000 {
        rt.block_on(cache.get(&key(i))).unwrap();
    }
    let after = resident_bytes();
    eprintln!(
        "cache/memory: 8000 keys add {:.1} MB resident",
        after.saturating_sub(before) as f64 / 1e6
    );
    drop(cache);
    let (cache, request) = setup();
    rt.block_on(cache.get(&request)).unwrap(); // warm: first signing
    let mut group = c.benchmark_group("cache");

    group.bench_function("hit/1_thread", |b| {
        b.iter(|| ready(cache.get(black_box(&request))).unwrap())
    });

    // A second thread hits the same entry all the time (as a second runtime worker would).
    group.bench_function("hit/2_threads", |b| {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    black_box(ready(cache.get(black_box(&request))).unwrap());
                }
            });
            b.iter(|| ready(cache.get(black_box(&request))).unwrap());
            stop.store(true, Ordering::Relaxed);
        });
    });

    group.bench_function("miss/sign_and_store", |b| {
        b.iter_batched(
            || {
                let (cache, request) = setup();
                // Resolve credentials and derive the key once, so the figure is the miss
                // path itself: a new entry, one signing, the store.
                let other = TokenRequest::rds(
                    &Endpoint::new("warm.abc.us-east-1.rds.amazonaws.com", 1).unwrap(),
                    "u",
                )
                .build()
                .unwrap();
                rt.block_on(cache.get(&other)).unwrap();
                (cache, request)
            },
            // Returned, so that criterion drops the cache after timing.
            |(cache, request)| {
                let token = rt.block_on(cache.get(&request)).unwrap();
                (cache, token)
            },
            BatchSize::SmallInput,
        )
    });

    group.finish();

    // A new key into a cache that holds 64 keys, and into one that holds 8,000. Each cache is
    // kept full (`max_keys`), so every new key also pays its share of evicting the oldest (an
    // eighth at a time), as in a process that keeps meeting new keys; the figures are per key,
    // at a steady size, and should not depend on it. Filling is not timed; every timed key is
    // new.
    let mut group = c.benchmark_group("cache");
    group.sample_size(10);
    for (name, held) in [
        ("new_key/into_64_keys", 64),
        ("new_key/into_8000_keys", 8000),
    ] {
        let cache = full_cache(held);
        let mut next = held;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let fresh: Vec<_> = (next..next + iters as usize).map(key).collect();
                next += iters as usize;
                let started = std::time::Instant::now();
                for request in &fresh {
                    black_box(rt.block_on(cache.get(request)).unwrap());
                }
                started.elapsed()
            })
        });
        let entries = cache.stats().entries as usize;
        assert!(entries <= held + held / 8, "{name}: {entries} keys");
    }
    group.finish();
}

/// A cache of `held` keys that holds at most an eighth more.
fn full_cache(held: usize) -> TokenCache {
    let (cache, _) = setup();
    let cache = TokenCache::builder(cache.generator().clone())
        .max_keys(held + held / 8)
        .build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for i in 0..held {
        rt.block_on(cache.get(&key(i))).unwrap();
    }
    cache
}

/// A cache that holds more than 8,000 keys (the default maximum is 4,096).
fn big_cache() -> TokenCache {
    let (cache, _) = setup();
    TokenCache::builder(cache.generator().clone())
        .max_keys(100_000)
        .build()
}

/// The `i`th of many distinct keys (one user each on one endpoint).
fn key(i: usize) -> TokenRequest {
    let endpoint =
        Endpoint::new("mydb.cluster-abc123xyz.us-east-1.rds.amazonaws.com", 5432).unwrap();
    TokenRequest::rds(&endpoint, format!("user_{i}"))
        .build()
        .unwrap()
}

/// This process's resident set, from `/proc/self/statm` (0 where there is none).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = bench_cache
}
criterion_main!(benches);
