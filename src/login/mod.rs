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

mod builder;
pub(crate) mod diagnose;
mod env;
mod routine;
#[cfg(feature = "proxy")]
pub(crate) mod wire;

use std::time::Duration;

#[allow(unused_imports)] // The doctor's and the tests'.
pub(crate) use builder::Settings;
pub use builder::{FrontEnd, LoginBuilder, TokenService};
pub(crate) use builder::{Honours, sealed};
pub use env::{ENV_CA_FILE, ENV_DATABASE, ENV_ENDPOINT, ENV_PORT, ENV_REGION, ENV_USER};
pub(crate) use routine::Login;

/// How long one login attempt (token, TCP, TLS, login) may take unless set otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an open connection may leave the server unheard before it counts as dead, unless
/// set otherwise (see [`LoginBuilder::dead_peer_timeout`]).
pub const DEFAULT_DEAD_PEER_TIMEOUT: Duration = Duration::from_secs(60);

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

    #[test]
    fn a_front_end_refuses_what_it_cannot_honour() {
        let none = Honours {
            dial_address: false,
            connect_timeout: false,
            max_concurrent_logins: false,
            dead_peer_timeout: false,
        };
        let endpoint = Endpoint::new("mydb.cluster-abc.eu-west-1.rds.amazonaws.com", 5432).unwrap();
        let base = Settings::new(endpoint.clone(), "u".to_owned());
        assert!(base.login(Engine::Postgres, none).is_ok());
        let refused = |change: fn(&mut Settings)| {
            let mut settings = base.clone();
            change(&mut settings);
            let error = settings.login(Engine::Postgres, none).unwrap_err();
            assert!(error.is_invalid_input(), "{error:?}");
            // Accepted by a front end that honours everything.
            assert!(settings.login(Engine::Postgres, Honours::ALL).is_ok());
            error.setting().map(str::to_owned)
        };
        assert_eq!(
            refused(|s| s.connect_timeout = Some(Duration::from_secs(1))).as_deref(),
            Some("connect_timeout")
        );
        assert_eq!(
            refused(|s| s.max_concurrent_logins = Some(Some(4))).as_deref(),
            Some("max_concurrent_logins")
        );
        assert_eq!(
            refused(|s| s.dead_peer_timeout = Some(Duration::from_secs(30))).as_deref(),
            Some("dead_peer_timeout")
        );
        assert_eq!(
            refused(|s| {
                s.endpoint = s
                    .endpoint
                    .clone()
                    .with_dial_address("127.0.0.1", 15432)
                    .unwrap()
            })
            .as_deref(),
            Some("dial_address")
        );
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
