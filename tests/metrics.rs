//! The `metrics` feature counts a real login, a rejected token's retry and the failed second
//! attempt, and times them, under the names the README lists; and the token cache's hits,
//! misses, refreshes, invalidations, evictions and size.

mod support;

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use rds_iam_auth::{Endpoint, TokenCache, TokenGenerator, TokenRequest};
use support::iam;

/// Every metric recorded so far: name, labels, value.
fn snapshot(snapshotter: &Snapshotter) -> Vec<(String, Vec<String>, DebugValue)> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key().clone();
            let labels = key.labels().map(|l| format!("{}={}", l.key(), l.value()));
            (key.name().to_owned(), labels.collect(), value)
        })
        .collect()
}

/// Counters and gauges across snapshots: a `DebuggingRecorder` snapshot resets both to zero,
/// so each hands out what changed since the previous one (the cache moves its size gauge by
/// increments and decrements).
#[derive(Default)]
struct Totals(std::collections::HashMap<String, f64>);

impl Totals {
    fn update(&mut self, snapshotter: &Snapshotter) -> &Self {
        for (name, _, value) in snapshot(snapshotter) {
            match value {
                DebugValue::Counter(n) => *self.0.entry(name).or_default() += n as f64,
                DebugValue::Gauge(g) => *self.0.entry(name).or_default() += g.into_inner(),
                DebugValue::Histogram(_) => {}
            }
        }
        self
    }

    /// A counter's total (0 if never recorded), or a gauge's value.
    fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or_default()
    }
}

#[test]
fn the_token_cache_is_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let clock = iam::TestClock::new();
    let generator = TokenGenerator::builder(iam::credentials())
        .clock(clock.clone())
        .build();
    // One key at most: the second key evicts the first once its token is gone.
    let cache = TokenCache::builder(generator).max_keys(1).build();
    let request = |host: &str| {
        let endpoint = Endpoint::new(format!("{host}.abc.us-east-1.rds.amazonaws.com"), 5432);
        TokenRequest::rds(&endpoint.unwrap(), "iam_user")
            .build()
            .unwrap()
    };
    let (first, second) = (request("first"), request("second"));
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let mut totals = Totals::default();
            let token = cache.get(&first).await.unwrap();
            let m = totals.update(&snapshotter);
            assert_eq!(m.get("rds_iam_auth.cache.misses"), 1.0);
            assert_eq!(m.get("rds_iam_auth.cache.refreshes"), 1.0);
            assert_eq!(m.get("rds_iam_auth.cache.size"), 1.0);
            assert_eq!(m.get("rds_iam_auth.cache.hits"), 0.0);

            // Hits reach the facade in batches, never more than counted, and the first at once.
            for _ in 0..3000 {
                cache.get(&first).await.unwrap();
            }
            let published = totals.update(&snapshotter).get("rds_iam_auth.cache.hits");
            assert!((1.0..=3000.0).contains(&published), "{published}");
            assert!(
                published >= 2048.0,
                "every 1024th hit publishes: {published}"
            );

            // Any other event publishes them all.
            cache.invalidate(&first, &token);
            let m = totals.update(&snapshotter);
            assert_eq!(m.get("rds_iam_auth.cache.invalidations"), 1.0);
            assert_eq!(m.get("rds_iam_auth.cache.hits"), 3000.0);
            assert_eq!(cache.stats().hits, 3000);

            // The first key has no token: a second key over `max_keys` evicts it.
            clock.advance(Duration::from_secs(1));
            cache.get(&second).await.unwrap();
            let m = totals.update(&snapshotter);
            assert_eq!(m.get("rds_iam_auth.cache.evictions"), 1.0);
            assert_eq!(m.get("rds_iam_auth.cache.size"), 1.0);
            assert_eq!(m.get("rds_iam_auth.cache.misses"), 2.0);
            assert_eq!(m.get("rds_iam_auth.cache.refreshes"), 2.0);
            assert_eq!(m.get("rds_iam_auth.cache.refresh_failures"), 0.0);
            assert_eq!(cache.stats().evictions, 1);

            // A dropped cache takes its keys off the process-wide gauge.
            drop(cache);
            assert_eq!(
                totals.update(&snapshotter).get("rds_iam_auth.cache.size"),
                0.0
            );
        })
    });
}

#[test]
fn a_login_and_a_rejection_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The recorder is this thread's; the current-thread runtime runs everything on it.
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            iam::login_then_rejection().await;
        })
    });

    let metrics = snapshot(&snapshotter);
    let counter = |name: &str, label: &str| {
        metrics
            .iter()
            .find(|(n, labels, _)| {
                n == name && (label.is_empty() || labels.iter().any(|l| l == label))
            })
            .map(|(_, _, v)| match v {
                DebugValue::Counter(n) => *n,
                other => panic!("{name} is {other:?}"),
            })
            .unwrap_or_else(|| panic!("no {name} {{{label}}} in {metrics:?}"))
    };
    assert_eq!(counter("rds_iam_auth.logins", "outcome=success"), 1);
    assert_eq!(counter("rds_iam_auth.logins", "outcome=rejected"), 1);
    assert_eq!(
        counter("rds_iam_auth.login.retries", "db.system.name=postgresql"),
        1
    );
    // The test's own (`token_at`), the connector's first, one freshly signed after the rejection.
    assert_eq!(counter("rds_iam_auth.tokens.signed", ""), 3);
    // The connector's cache: a miss and a signing, the rejection, a miss and a signing again.
    assert_eq!(counter("rds_iam_auth.cache.misses", ""), 2);
    assert_eq!(counter("rds_iam_auth.cache.refreshes", ""), 2);
    assert_eq!(counter("rds_iam_auth.cache.invalidations", ""), 1);
    for histogram in [
        "rds_iam_auth.sign.duration",
        "rds_iam_auth.credentials.duration",
        "rds_iam_auth.connect.duration",
    ] {
        assert!(
            metrics.iter().any(|(n, _, v)| n == histogram
                && matches!(v, DebugValue::Histogram(h) if !h.is_empty())),
            "no {histogram} in {metrics:?}"
        );
    }
}
