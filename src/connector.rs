//! What the database connectors share: settings from the environment, resolving the dial
//! address, and the login that retries once with a fresh token.
//!
//! Each connector (`postgres.rs`, `mysql.rs`) only knows how to make one login attempt with
//! one token with its driver; the token's life cycle around it is here, once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::cache::TokenCache;
use crate::endpoint::Endpoint;
use crate::error::{Engine, Error, Result};
use crate::request::TokenRequest;
use crate::token::IamAuthToken;

/// How long one connection attempt (TCP, TLS, login) may take unless set otherwise.
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variable names read by the connectors' `builder_from_env` (those of the AWS
/// Lambda samples for RDS IAM authentication).
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
pub const ENV_ENDPOINT: &str = "DBEndPoint";
/// The database name variable, see [`ENV_ENDPOINT`].
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
pub const ENV_DATABASE: &str = "DatabaseName";
/// The database user variable, see [`ENV_ENDPOINT`].
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
pub const ENV_USER: &str = "DBUserName";

/// Connection settings read from [`ENV_ENDPOINT`], [`ENV_USER`] and [`ENV_DATABASE`].
#[derive(Debug)]
pub(crate) struct EnvSettings {
    pub(crate) endpoint: Endpoint,
    pub(crate) user: String,
    pub(crate) database: Option<String>,
}

/// Reads the settings through `var` (the process environment, or a map in tests).
/// `DBEndPoint` is `host` or `host:port`, with `default_port` when no port is given.
pub(crate) fn settings_from_vars(
    engine: Engine,
    default_port: u16,
    var: impl Fn(&str) -> Option<String>,
) -> Result<EnvSettings> {
    let endpoint =
        var(ENV_ENDPOINT)
            .filter(|v| !v.trim().is_empty())
            .ok_or(Error::InvalidEnvVar {
                name: ENV_ENDPOINT,
                reason: "is not set: set it to the endpoint's DNS name, optionally with `:port`",
            })?;
    let endpoint = endpoint.trim();
    if endpoint.starts_with('/') {
        return Err(Error::InvalidEnvVar {
            name: ENV_ENDPOINT,
            reason: "names a Unix socket: IAM tokens are only sent over verified TLS, \
                     set it to the endpoint's DNS name",
        });
    }
    let endpoint = if endpoint.contains(':') && !endpoint.starts_with('[') {
        endpoint.parse::<Endpoint>()?
    } else {
        Endpoint::new(endpoint, default_port)?
    };
    let user = var(ENV_USER)
        .filter(|v| !v.is_empty())
        .ok_or(Error::InvalidEnvVar {
            name: ENV_USER,
            reason: match engine {
                Engine::Postgres => "is not set: set it to the database user granted `rds_iam`",
                Engine::MySql => {
                    "is not set: set it to the database user created \
                     `IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'`"
                }
            },
        })?;
    let database = var(ENV_DATABASE).filter(|v| !v.is_empty());
    Ok(EnvSettings {
        endpoint,
        user,
        database,
    })
}

/// The IP addresses to dial when the endpoint is tunnelled (`None`: dial the signing host).
///
/// Drivers take the TLS name from the host and the TCP address separately, as IP addresses:
/// a dial address that is a DNS name is resolved here, at each connection (DNS may change
/// across a failover).
pub(crate) async fn dial_ips(endpoint: &Endpoint) -> Result<Option<Vec<IpAddr>>> {
    if !endpoint.is_tunnelled() {
        return Ok(None);
    }
    let (dial_host, dial_port) = endpoint.dial_address();
    if let Ok(ip) = dial_host.parse::<IpAddr>() {
        return Ok(Some(vec![ip]));
    }
    let addrs = tokio::net::lookup_host((dial_host, dial_port))
        .await
        .map_err(|source| Error::ResolveDialAddress {
            host: dial_host.to_owned(),
            source,
        })?;
    Ok(Some(addrs.map(|a: SocketAddr| a.ip()).collect()))
}

/// The outcome of one failed login attempt with a driver whose error type is `E`.
pub(crate) enum Attempt<E> {
    /// The server refused the token: worth one retry with a fresh one.
    Rejected(E),
    /// Anything else the driver reported (TCP, TLS, protocol): not retried.
    Failed(E),
    /// The attempt took longer than the connect timeout.
    Timeout,
    /// An error of this crate (signing, resolving the dial address).
    Other(Error),
}

impl<E> From<Error> for Attempt<E> {
    fn from(e: Error) -> Self {
        Attempt::Other(e)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> Attempt<E> {
    /// The crate's error for this outcome; `failed` wraps a driver error that is not a
    /// rejected token.
    pub(crate) fn into_error(
        self,
        engine: Engine,
        request: &TokenRequest,
        endpoint: &Endpoint,
        timeout: Duration,
        failed: impl FnOnce(String, E) -> Error,
    ) -> Error {
        match self {
            Attempt::Rejected(source) => Error::AuthenticationRejected {
                engine,
                host: request.host().to_owned(),
                port: request.port(),
                user: request.user().to_owned(),
                region: request.region().as_str().to_owned(),
                source: Box::new(source),
            },
            Attempt::Failed(source) => failed(endpoint.to_string(), source),
            Attempt::Timeout => Error::ConnectTimeout {
                endpoint: endpoint.to_string(),
                timeout,
            },
            Attempt::Other(e) => e,
        }
    }
}

/// One login attempt with one token, as a connector makes it with its driver.
pub(crate) trait Login {
    /// The connection a successful login yields.
    type Connection;
    /// The driver's error.
    type DriverError;

    /// Connects and logs in with `token`; classifies a failure (see [`Attempt`]).
    fn attempt(
        &self,
        token: &IamAuthToken,
    ) -> impl Future<Output = Result<Self::Connection, Attempt<Self::DriverError>>> + Send;
}

/// Logs in with the cache's token for `request`; if the server rejects it, tells the cache
/// to forget it, gets a fresh one and tries exactly once more.
///
/// Why retry: the server no longer accepts what the cache holds (rotated credentials, a
/// token from before a failover, a cache shared with a stale clock). Why only once: a
/// freshly signed token that is refused too will be refused again (see
/// [`Error::AuthenticationRejected`] for the usual causes), and RDS throttles floods of
/// failed IAM logins.
pub(crate) async fn login_with_one_retry<L: Login>(
    cache: &TokenCache,
    request: &TokenRequest,
    login: &L,
) -> Result<L::Connection, Attempt<L::DriverError>> {
    let token = cache.get(request).await?;
    let first = match login.attempt(&token).await {
        Err(Attempt::Rejected(e)) => e,
        other => return other,
    };
    drop(first);
    cache.invalidate(request, &token);
    drop(token);
    let fresh = cache.get(request).await?;
    login.attempt(&fresh).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(engine: Engine, port: u16, vars: &[(&str, &str)]) -> Result<EnvSettings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings_from_vars(engine, port, |k| map.get(k).cloned())
    }

    const HOST: &str = "mydb.cluster-abc.eu-west-1.rds.amazonaws.com";

    #[test]
    fn default_port_per_engine_and_explicit_port() {
        for (engine, port) in [(Engine::Postgres, 5432), (Engine::MySql, 3306)] {
            let s = from(engine, port, &[("DBEndPoint", HOST), ("DBUserName", "u")]).unwrap();
            assert_eq!(s.endpoint.port(), port);
            assert_eq!(s.database, None);
            let with_port = format!("{HOST}:4000");
            let s = from(
                engine,
                port,
                &[
                    ("DBEndPoint", &with_port),
                    ("DBUserName", "u"),
                    ("DatabaseName", "db"),
                ],
            )
            .unwrap();
            assert_eq!(s.endpoint.port(), 4000);
            assert_eq!(s.database.as_deref(), Some("db"));
        }
    }

    #[test]
    fn the_missing_user_message_says_how_the_engine_sets_it_up() {
        let e = from(Engine::MySql, 3306, &[("DBEndPoint", HOST)]).unwrap_err();
        assert!(e.to_string().contains("AWSAuthenticationPlugin"), "{e}");
        let e = from(Engine::Postgres, 5432, &[("DBEndPoint", HOST)]).unwrap_err();
        assert!(e.to_string().contains("rds_iam"), "{e}");
    }
}
