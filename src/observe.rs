//! Metrics on the `metrics` facade (feature `metrics`), recorded where tokens are signed and
//! logins made. Without the feature every function here is empty and [`Timer`] is a
//! zero-sized type: no clock is read, nothing is recorded, the calls compile away.
//!
//! Names and units are listed in the README ("Metrics"). The token cache's counters are
//! recorded at its slow-path events (a miss, a signing, an invalidation, an eviction), never on
//! its hit path: hits are counted there in the cache's own sharded counter and published to
//! the facade from time to time ([`HIT_PUBLISH_EVERY`]), so that a hit costs the same with the
//! feature as without.

#![cfg_attr(not(feature = "metrics"), allow(dead_code))]

#[cfg(feature = "__login")]
use crate::engine::Engine;

/// Tokens signed (a cache miss or refresh, or a direct `TokenGenerator::generate`).
pub(crate) const TOKENS_SIGNED: &str = "rds_iam_auth.tokens.signed";
/// Seconds to sign one token, credentials included.
pub(crate) const SIGN_DURATION: &str = "rds_iam_auth.sign.duration";
/// Seconds to get the credentials for one token (from memory, or from the provider).
pub(crate) const CREDENTIALS_DURATION: &str = "rds_iam_auth.credentials.duration";
/// Logins, by `outcome` (`success`, `rejected`, `failed`, `timeout`) and `db.system.name`.
pub(crate) const LOGINS: &str = "rds_iam_auth.logins";
/// Second attempts after a rejected token, by `db.system.name`.
pub(crate) const RETRIES: &str = "rds_iam_auth.login.retries";
/// Seconds from the start of a login to its outcome, by `outcome` and `db.system.name`.
pub(crate) const CONNECT_DURATION: &str = "rds_iam_auth.connect.duration";

/// Token cache lookups answered with a cached token (published in batches: see
/// [`HIT_PUBLISH_EVERY`]).
pub(crate) const CACHE_HITS: &str = "rds_iam_auth.cache.hits";
/// Token cache lookups that waited for a signing (no usable token).
pub(crate) const CACHE_MISSES: &str = "rds_iam_auth.cache.misses";
/// Tokens the cache signed (on a miss or ahead of expiry).
pub(crate) const CACHE_REFRESHES: &str = "rds_iam_auth.cache.refreshes";
/// Signings the cache attempted that failed.
pub(crate) const CACHE_REFRESH_FAILURES: &str = "rds_iam_auth.cache.refresh_failures";
/// Tokens dropped because the database rejected them.
pub(crate) const CACHE_INVALIDATIONS: &str = "rds_iam_auth.cache.invalidations";
/// Keys evicted (expired, or the cache was full).
pub(crate) const CACHE_EVICTIONS: &str = "rds_iam_auth.cache.evictions";
/// Keys held, summed over every cache of the process.
pub(crate) const CACHE_SIZE: &str = "rds_iam_auth.cache.size";

/// A thread's hits reach the facade at its first hit and then every this many (and at every
/// other cache event): the facade's hit count lags the cache's by at most this many per
/// thread shard, and a hit pays one predictable branch for it.
pub(crate) const HIT_PUBLISH_EVERY: u64 = 1024;

/// Whether anything is recorded: lets callers skip work (a sum of shards) that only feeds
/// the facade.
pub(crate) const ENABLED: bool = cfg!(feature = "metrics");

/// A token cache event worth one count.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CacheEvent {
    Miss,
    Refresh,
    RefreshFailure,
    Invalidation,
}

/// When something started (nothing at all without the `metrics` feature).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer(#[cfg(feature = "metrics")] std::time::Instant);

impl Timer {
    #[inline(always)]
    pub(crate) fn start() -> Self {
        Self(
            #[cfg(feature = "metrics")]
            std::time::Instant::now(),
        )
    }

    #[cfg(feature = "metrics")]
    fn seconds(self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// Registers units and descriptions with the recorder installed at the first measurement.
#[cfg(feature = "metrics")]
fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        describe_counter!(TOKENS_SIGNED, Unit::Count, "IAM auth tokens signed");
        describe_histogram!(SIGN_DURATION, Unit::Seconds, "time to sign a token");
        describe_histogram!(
            CREDENTIALS_DURATION,
            Unit::Seconds,
            "time to get credentials"
        );
        describe_counter!(LOGINS, Unit::Count, "logins, by outcome");
        describe_counter!(RETRIES, Unit::Count, "retries after a rejected token");
        describe_counter!(CACHE_HITS, Unit::Count, "token cache hits");
        describe_counter!(CACHE_MISSES, Unit::Count, "token cache misses");
        describe_counter!(CACHE_REFRESHES, Unit::Count, "tokens the cache signed");
        describe_counter!(
            CACHE_REFRESH_FAILURES,
            Unit::Count,
            "token cache signings that failed"
        );
        describe_counter!(
            CACHE_INVALIDATIONS,
            Unit::Count,
            "tokens dropped after a rejection"
        );
        describe_counter!(CACHE_EVICTIONS, Unit::Count, "token cache keys evicted");
        metrics::describe_gauge!(CACHE_SIZE, Unit::Count, "token cache keys held");
        describe_histogram!(
            CONNECT_DURATION,
            Unit::Seconds,
            "time to log in, by outcome"
        );
    });
}

/// A token was signed; `started` before its credentials were fetched.
#[inline(always)]
pub(crate) fn token_signed(_started: Timer) {
    #[cfg(feature = "metrics")]
    {
        describe();
        metrics::counter!(TOKENS_SIGNED).increment(1);
        metrics::histogram!(SIGN_DURATION).record(_started.seconds());
    }
}

/// Credentials for a token were obtained (or not) since `started`.
#[inline(always)]
pub(crate) fn credentials_resolved(_started: Timer) {
    #[cfg(feature = "metrics")]
    metrics::histogram!(CREDENTIALS_DURATION).record(_started.seconds());
}

/// A token cache event happened.
#[inline(always)]
pub(crate) fn cache_event(_event: CacheEvent) {
    #[cfg(feature = "metrics")]
    {
        describe();
        let name = match _event {
            CacheEvent::Miss => CACHE_MISSES,
            CacheEvent::Refresh => CACHE_REFRESHES,
            CacheEvent::RefreshFailure => CACHE_REFRESH_FAILURES,
            CacheEvent::Invalidation => CACHE_INVALIDATIONS,
        };
        metrics::counter!(name).increment(1);
    }
}

/// The cache gained (`_delta` > 0) or lost keys, `_evicted` of them by eviction (the rest:
/// a whole cache dropped).
#[inline(always)]
pub(crate) fn cache_size_changed(_delta: i64, _evicted: u64) {
    #[cfg(feature = "metrics")]
    {
        describe();
        let size = metrics::gauge!(CACHE_SIZE);
        if _delta >= 0 {
            size.increment(_delta as f64);
        } else {
            size.decrement(_delta.unsigned_abs() as f64);
        }
        if _evicted > 0 {
            metrics::counter!(CACHE_EVICTIONS).increment(_evicted);
        }
    }
}

/// Publishes a cache's hits: `_total` counted so far, of which `_published` already reached
/// the facade (raised to `_total` here; concurrent publishers add each hit once).
#[inline(always)]
pub(crate) fn cache_hits(_total: u64, _published: &std::sync::atomic::AtomicU64) {
    #[cfg(feature = "metrics")]
    {
        let before = _published.fetch_max(_total, std::sync::atomic::Ordering::Relaxed);
        if _total > before {
            describe();
            metrics::counter!(CACHE_HITS).increment(_total - before);
        }
    }
}

#[cfg(feature = "__login")]
/// A login ended with `_outcome` since `started`.
#[inline(always)]
pub(crate) fn login(_engine: Engine, _outcome: &'static str, _started: Timer) {
    #[cfg(feature = "metrics")]
    {
        describe();
        let system = _engine.otel_system_name();
        metrics::counter!(LOGINS, "outcome" => _outcome, "db.system.name" => system).increment(1);
        metrics::histogram!(CONNECT_DURATION, "outcome" => _outcome, "db.system.name" => system)
            .record(_started.seconds());
    }
}

#[cfg(feature = "__login")]
/// A rejected token is retried with a fresh one.
#[inline(always)]
pub(crate) fn retry(_engine: Engine) {
    #[cfg(feature = "metrics")]
    metrics::counter!(RETRIES, "db.system.name" => _engine.otel_system_name()).increment(1);
}
