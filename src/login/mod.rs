//! The one login path every front end shares: what a login needs, checked once, and the
//! routine that logs in with a current token and, after a rejection, refreshes it and
//! retries once.
//!
//! Every front end (the [`Connector`](crate::connector::Connector) and the pools built on
//! it, the sqlx pools, the [doctor](crate::doctor)) is configured by the same
//! [`LoginBuilder`]: one setter per login setting, written once. A front end that cannot
//! honour a setting (sqlx has no dial address, no login cap and its own timeouts) refuses it
//! at `build` with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) instead of
//! ignoring it.
//!
//! The routine takes the login attempt as a parameter (a driver's connect, a sqlx acquire):
//! the token's life cycle around it (get, attempt within the connect timeout, invalidate,
//! one retry after a random wait, the errors, spans and metrics) is written here, once.

pub(crate) mod diagnose;
mod builder;
mod env;
mod routine;

use std::time::Duration;

#[allow(unused_imports)] // The doctor's and the tests'.
pub(crate) use builder::Settings;
pub(crate) use builder::{Honours, sealed};
pub use builder::{FrontEnd, LoginBuilder, TokenService};
pub(crate) use routine::Login;
pub use env::{ENV_CA_FILE, ENV_DATABASE, ENV_ENDPOINT, ENV_PORT, ENV_REGION, ENV_USER};

/// How long one login attempt (token, TCP, TLS, login) may take unless set otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest wait before the retry that follows a rejected token, unless set otherwise: the
/// actual wait is random between zero and this ("full jitter").
///
/// RDS limits new IAM logins per second per instance, and a throttled login looks like a
/// rejected token: many clients whose tokens were rejected at once (a credentials rotation, a
/// failover) must not all retry in the same instant.
pub const DEFAULT_RETRY_JITTER: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::TokenCache;
    use crate::endpoint::Endpoint;
    use crate::engine::Engine;
    use crate::token::TokenGenerator;
    use aws_credential_types::Credentials;

    fn login(timeout: Duration, jitter: Duration) -> Login {
        let endpoint = Endpoint::new("mydb.cluster-abc.eu-west-1.rds.amazonaws.com", 5432).unwrap();
        let mut settings = Settings::new(endpoint, "u".to_owned());
        settings.connect_timeout = Some(timeout);
        settings.retry_jitter = jitter;
        settings.login(Engine::Postgres, Honours::ALL).unwrap()
    }

    #[test]
    fn the_retry_delay_is_random_within_the_bound_and_half_the_timeout() {
        let c = login(Duration::from_secs(10), Duration::from_millis(250));
        let delays: Vec<_> = (0..1000).map(|_| c.retry_delay()).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(250)));
        // Spread over the bound, not a constant: both halves are drawn.
        assert!(delays.iter().any(|d| *d < Duration::from_millis(125)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(125)));

        let short = login(Duration::from_millis(100), Duration::from_secs(5));
        assert!((0..1000).all(|_| short.retry_delay() <= Duration::from_millis(50)));
        let none = login(Duration::from_secs(1), Duration::ZERO);
        assert_eq!(none.retry_delay(), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_rejection_is_retried_once_with_a_fresh_token() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let cache = TokenCache::new(TokenGenerator::new(credentials));
        let login = login(Duration::from_secs(5), Duration::ZERO);
        let seen = std::sync::Mutex::new(Vec::new());
        let error = login
            .run(&cache, |token| {
                seen.lock().unwrap().push(token);
                async { Err::<(), _>(login.driver_error(std::io::Error::other("no"), true)) }
            })
            .await
            .unwrap_err();
        assert!(error.is_rejected(), "{error:?}");
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 2, "one retry, no more");
        assert_eq!(cache.stats().refreshes, 2, "the retry signs a fresh token");
        assert_eq!(cache.stats().invalidations, 1);
    }
}
