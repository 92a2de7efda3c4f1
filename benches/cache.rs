//! The token cache: the hit path from one thread and from two contending threads, and the
//! miss path (credentials from memory, one signing), in one run.

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
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
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
            |(cache, request)| rt.block_on(cache.get(&request)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = bench_cache
}
criterion_main!(benches);
