//! Connectors: connections of one database driver, each logged in with a current IAM token
//! over verified TLS.
//!
//! A [`Connector`] opens connections to one endpoint as one user. What differs between
//! engines (the driver's options, one login attempt with one token, which driver errors mean
//! "token rejected") is the engine's [`Driver`]; the token's life cycle around a login is the
//! [login layer](crate::login)'s, shared with every other front end.
//!
//! | engine | driver | connector | connection |
//! |---|---|---|---|
//! | PostgreSQL, Aurora PostgreSQL, Aurora DSQL | [`Postgres`] (tokio-postgres) | [`PgConnector`] | `tokio_postgres::Client` |
//! | MySQL, Aurora MySQL, MariaDB | [`MySql`] (mysql_async) | [`MySqlConnector`] | [`MySqlConnection`] |

#[cfg(feature = "mysql")]
pub(crate) mod mysql;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::TokenCache;
use crate::dsql::DSQL_RECOMMENDED_MAX_LIFETIME;
use crate::endpoint::Endpoint;
use crate::engine::Engine;
use crate::error::{Detail, Result};
use crate::login::{self, Honours, Login, LoginBuilder};
use crate::token::{IamAuthToken, TokenRequest};

#[cfg(feature = "mysql")]
pub use mysql::{MySql, MySqlConnection, MySqlConnector, MySqlConnectorBuilder};
#[cfg(feature = "postgres")]
pub use postgres::{PgConnector, PgConnectorBuilder, Postgres};

/// A database engine's driver, as the connectors use it: implemented by [`Postgres`] and
/// [`MySql`] only (the trait is sealed).
///
/// It names the connection a login yields; everything else it does is internal.
pub trait Driver: sealed::Driver {
    /// What [`Connector::connect`]-style calls hand out for this engine.
    type Connection: Send + 'static;
}

pub(crate) mod sealed {
    use super::*;

    /// The engine's part of the connector. Public in a private module: the `Driver` trait is
    /// sealed, and none of this is part of the crate's API.
    pub trait Driver: Sized + Send + Sync + 'static {
        /// The engine, as errors name it.
        const ENGINE: Engine;
        /// The name `Debug` gives the engine's connector.
        const CONNECTOR: &'static str;
        /// Everything the driver needs to connect but the password and where to dial,
        /// built once per connector.
        type Options: Send + Sync + 'static;
        /// What one successful login yields (for PostgreSQL, the client and its task).
        type Login: Send + 'static;
        /// The driver's error.
        type Error: std::error::Error + Send + Sync + 'static;

        /// Builds the options once, from the validated login.
        fn options(login: &Login) -> Self::Options;

        /// One login with one token: TCP to `dial`, TLS verified against the signing
        /// hostname, the token as the password.
        fn attempt(
            options: &Self::Options,
            dial: Dial,
            token: &IamAuthToken,
        ) -> impl Future<Output = std::result::Result<Self::Login, Self::Error>> + Send;

        /// `true` when the server refused the token itself: worth one retry with a fresh one.
        fn is_rejected(error: &Self::Error) -> bool;

        /// The connection handed to callers.
        fn connection(login: Self::Login) -> <Self as super::Driver>::Connection
        where
            Self: super::Driver;

        /// `true` when the connection is known to be closed, without a round trip.
        fn is_closed(connection: &<Self as super::Driver>::Connection) -> bool
        where
            Self: super::Driver;

        /// One round trip that proves the connection works (not a new login: a token is
        /// checked at login only).
        fn ping(
            connection: &mut <Self as super::Driver>::Connection,
        ) -> impl Future<Output = std::result::Result<(), Self::Error>> + Send
        where
            Self: super::Driver;

        /// Whether a pool must [`ping`](Self::ping) a connection before handing it out again:
        /// only when [`is_closed`](Self::is_closed) cannot see a dead peer by itself.
        const PING_BEFORE_REUSE: bool;

        /// Debug fields of the options that are safe to print (never the password).
        fn describe(options: &Self::Options, f: &mut fmt::DebugStruct<'_, '_>);
    }
}

/// Opens connections to one endpoint as one user, each logged in with a current IAM token from
/// a [`TokenCache`], over TLS verified against the signing hostname.
///
/// Use it as [`PgConnector`] or [`MySqlConnector`]. Cheap to clone (clones share the
/// configuration, the cache and the TLS setup): build it once and use it for every
/// connection, or hand it to a pool ([`pool`](crate::pool)).
///
/// When the server rejects a token, the connector tells the cache to forget it, signs a fresh
/// one and tries once more; a second rejection is an error of kind
/// [`ErrorKind::Rejected`](crate::ErrorKind::Rejected), whose message lists the likely causes.
pub struct Connector<D: Driver> {
    inner: Arc<Core<D>>,
}

struct Core<D: Driver> {
    cache: TokenCache,
    login: Login,
    options: D::Options,
}

/// Configures a [`Connector`]: the [`LoginBuilder`] of connectors; see [`Connector::builder`].
///
/// Its setters are [`LoginBuilder`]'s: [`database`](crate::login::LoginBuilder::database), [`region`](crate::login::LoginBuilder::region), [`trust`](crate::login::LoginBuilder::trust),
/// [`service`](crate::login::LoginBuilder::service), [`token_lifetime`](crate::login::LoginBuilder::token_lifetime),
/// [`retry_jitter`](crate::login::LoginBuilder::retry_jitter), [`connect_timeout`](crate::login::LoginBuilder::connect_timeout),
/// [`max_concurrent_logins`](crate::login::LoginBuilder::max_concurrent_logins),
/// [`dead_peer_timeout`](crate::login::LoginBuilder::dead_peer_timeout),
/// and [`application_name`](crate::login::LoginBuilder::application_name) for PostgreSQL; then
/// [`build`](LoginBuilder::build).
pub type ConnectorBuilder<D> = LoginBuilder<Connector<D>>;

impl<D: Driver> login::FrontEnd for Connector<D> {}

impl<D: Driver> login::sealed::FrontEnd for Connector<D> {
    type Setup = TokenCache;
    const BUILDER: &'static str = "ConnectorBuilder";
    const HONOURS: Honours = Honours::ALL;
}

impl<D: Driver> Clone for Connector<D> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<D: Driver> Connector<D> {
    /// A builder for connections to `endpoint` as `user`, with tokens from `cache`.
    ///
    /// The endpoint's hostname and port are what the token is signed for and what TLS
    /// verifies; set [`Endpoint::with_dial_address`] to connect through a tunnel or to an IP
    /// address. Unix sockets cannot be expressed: a token never leaves this process without TLS.
    pub fn builder(
        cache: TokenCache,
        endpoint: Endpoint,
        user: impl Into<String>,
    ) -> ConnectorBuilder<D> {
        LoginBuilder::new(D::ENGINE, endpoint, user.into(), cache)
    }

    /// A builder configured from the environment variables of AWS's Lambda samples:
    /// `DBEndPoint` (`host` or `host:port`; port 5432 for PostgreSQL, 3306 for MySQL by
    /// default), `DBUserName` and, optionally, `DatabaseName`; and optionally `DBPort` (wins
    /// over a port in `DBEndPoint`), `DBRegion` (when the hostname carries none) and
    /// `DBCaFile` (a PEM file of CAs trusted besides the AWS ones). See
    /// [`login::ENV_ENDPOINT`].
    pub fn builder_from_env(cache: TokenCache) -> Result<ConnectorBuilder<D>> {
        Self::builder_from_vars(cache, |name| std::env::var(name).ok())
    }

    /// Like [`builder_from_env`](Self::builder_from_env), reading the same variables through
    /// `var` (a map, a secrets store) instead of the process environment.
    pub fn builder_from_vars(
        cache: TokenCache,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<ConnectorBuilder<D>> {
        LoginBuilder::from_vars(D::ENGINE, cache, var)
    }

    /// Opens a connection logged in with the cache's current token (one retry with a fresh
    /// token if the server rejects it).
    pub async fn connect(&self) -> Result<D::Connection> {
        self.login().await.map(D::connection)
    }

    /// The endpoint connections go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.login.endpoint
    }

    /// The token request (user, region, endpoint) the connector asks the cache for.
    pub fn token_request(&self) -> &TokenRequest {
        &self.inner.login.request
    }

    /// The token cache.
    pub fn cache(&self) -> &TokenCache {
        &self.inner.cache
    }

    /// How many logins this connector runs at once (`None`: unbounded); see
    /// [`LoginBuilder::max_concurrent_logins`].
    pub fn max_concurrent_logins(&self) -> Option<usize> {
        self.inner.login.max_concurrent_logins()
    }

    /// The maximum lifetime pools should give this connector's connections:
    /// [`DSQL_RECOMMENDED_MAX_LIFETIME`] for
    /// Aurora DSQL (which closes connections after an hour), `None` for RDS (no session
    /// limit; tokens are checked at login only). The deadpool [`Manager`](crate::pool) uses
    /// it by default; for bb8 pass it to `Builder::max_lifetime`.
    pub fn recommended_max_lifetime(&self) -> Option<Duration> {
        self.inner
            .login
            .is_dsql()
            .then_some(DSQL_RECOMMENDED_MAX_LIFETIME)
    }

    /// The engine's options (crate-internal: they may hold the driver's secrets).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn options(&self) -> &D::Options {
        &self.inner.options
    }

    /// Logs in through the login layer: one attempt is the driver's login with one token to
    /// where the endpoint dials now.
    ///
    /// The future is boxed: its type (the routine, the timeout, the span and the driver's
    /// login, nested) is deep enough that a caller's own future around a pool checkout would
    /// reach the compiler's query depth limit; a login costs far more than one allocation.
    pub(crate) fn login(&self) -> Pin<Box<dyn Future<Output = Result<D::Login>> + Send + '_>> {
        let core = &*self.inner;
        Box::pin(core.login.run(&core.cache, move |token| async move {
            let dial = dial(&core.login).await?;
            D::attempt(&core.options, dial, &token).await.map_err(|e| {
                let rejected = D::is_rejected(&e);
                core.login.driver_error(e, rejected)
            })
        }))
    }

    /// One round trip on an open connection (a pool's check before reuse), bounded by the
    /// connect timeout: a peer that went away without a word (a failover, a partition)
    /// must not hang a checkout until the kernel gives up.
    #[cfg_attr(not(feature = "__pool"), allow(dead_code))]
    pub(crate) async fn ping(&self, connection: &mut D::Connection) -> Result<()> {
        let login = &self.inner.login;
        let timeout = login
            .connect_timeout
            .unwrap_or(crate::login::DEFAULT_CONNECT_TIMEOUT);
        match tokio::time::timeout(timeout, D::ping(connection)).await {
            Ok(answer) => answer.map_err(|e| login.driver_error(e, false)),
            Err(_) => Err(Detail::Unresponsive {
                engine: D::ENGINE,
                endpoint: login.endpoint.to_string(),
                timeout,
            }
            .into()),
        }
    }
}

impl<D: Driver> ConnectorBuilder<D> {
    /// Validates everything and builds the connector (and the driver's options, once).
    ///
    /// For Aurora DSQL the database defaults to `postgres` (DSQL's only database), not to
    /// the user name.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput): a region that is invalid
    /// or cannot be inferred, an invalid user name, a token lifetime beyond the service's
    /// maximum, a zero connect timeout or login limit, a DSQL endpoint for another engine than
    /// PostgreSQL, or a trust store without certificates (no server could ever be verified).
    pub fn build(self) -> Result<Connector<D>> {
        let login = self.settings.login(D::ENGINE, Honours::ALL)?;
        let options = D::options(&login);
        Ok(Connector {
            inner: Arc::new(Core {
                cache: self.setup,
                login,
                options,
            }),
        })
    }
}

/// Where one attempt's TCP connection goes: the dialled port, and the IP addresses when the
/// endpoint is tunnelled (`None`: the signing host, resolved by the driver).
#[derive(Debug, Clone)]
pub struct Dial {
    pub(crate) port: u16,
    pub(crate) ips: Option<Vec<IpAddr>>,
}

/// Where this attempt's TCP connection goes.
///
/// Drivers take the TLS name from the host and the TCP address separately, as IP addresses:
/// a dial address that is a DNS name is resolved here, at each attempt (DNS may change across
/// a failover).
async fn dial(login: &Login) -> Result<Dial> {
    let (dial_host, port) = login.endpoint.dial_address();
    if !login.endpoint.is_tunnelled() {
        return Ok(Dial { port, ips: None });
    }
    if let Ok(ip) = dial_host.parse::<IpAddr>() {
        return Ok(Dial {
            port,
            ips: Some(vec![ip]),
        });
    }
    let addrs = tokio::net::lookup_host((dial_host, port))
        .await
        .map_err(|source| Detail::ResolveDialAddress {
            engine: login.engine,
            host: dial_host.to_owned(),
            source,
        })?;
    Ok(Dial {
        port,
        ips: Some(addrs.map(|a: SocketAddr| a.ip()).collect()),
    })
}

impl<D: Driver> fmt::Debug for Connector<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let login = &self.inner.login;
        let mut s = f.debug_struct(D::CONNECTOR);
        s.field("endpoint", &login.endpoint)
            .field("user", &login.request.user())
            .field("region", &login.request.region().as_str())
            .field("connect_timeout", &login.connect_timeout)
            .field("action", &login.request.action())
            .field("max_concurrent_logins", &login.max_concurrent_logins());
        D::describe(&self.inner.options, &mut s);
        s.finish_non_exhaustive()
    }
}
