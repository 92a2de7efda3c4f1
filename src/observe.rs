//! Metrics on the `metrics` facade (feature `metrics`), recorded where tokens are signed and
//! logins made. Without the feature every function here is empty and [`Timer`] is a
//! zero-sized type: no clock is read, nothing is recorded, the calls compile away.
//!
//! Names and units are listed in the README ("Metrics"). The token cache's own counters
//! (hits, misses, refreshes, refresh failures, invalidations, size) come with the cache
//! rework: TODO(issue 14) add them in `src/cache.rs` once it has merged.

#![cfg_attr(not(feature = "metrics"), allow(dead_code))]

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9"))]
use crate::error::Engine;

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

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9"))]
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

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9"))]
/// A rejected token is retried with a fresh one.
#[inline(always)]
pub(crate) fn retry(_engine: Engine) {
    #[cfg(feature = "metrics")]
    metrics::counter!(RETRIES, "db.system.name" => _engine.otel_system_name()).increment(1);
}
