//! The connector core: one login path for every database engine.
//!
//! A [`Connector`] opens connections to one endpoint as one user, each logged in with a
//! current IAM token from a [`TokenCache`], over TLS verified against the signing hostname.
//! What differs between engines (the driver's options, one login attempt with one token, which
//! driver errors mean "token rejected") is the engine's [`Driver`]; the token's life cycle
//! around a login (get, attempt, invalidate, one retry, timeouts, errors) is here, once.
//!
//! | engine | driver | connector | connection |
//! |---|---|---|---|
//! | PostgreSQL, Aurora PostgreSQL | `Postgres` (tokio-postgres) | `PgConnector` | `tokio_postgres::Client` |
//! | MySQL, Aurora MySQL, MariaDB | `MySql` (mysql_async) | `MySqlConnector` | `MySqlConnection` |

pub(crate) mod env;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::cache::TokenCache;
use crate::endpoint::Endpoint;
use crate::error::{Engine, Error, Result};
use crate::request::{Action, TokenRequest};
use crate::tls::TrustStore;
use crate::token::IamAuthToken;
use tokio::sync::Semaphore;

pub use env::{ENV_CA_FILE, ENV_DATABASE, ENV_ENDPOINT, ENV_PORT, ENV_REGION, ENV_USER};

/// How long one connection attempt (token, TCP, TLS, login) may take unless set otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Aurora DSQL closes every connection 60 minutes after it opened (a transaction started in
/// the 60th minute may run to its 5-minute timeout first).
pub const DSQL_SESSION_LIMIT: Duration = Duration::from_secs(60 * 60);

/// The maximum connection lifetime pools use for Aurora DSQL endpoints unless set otherwise:
/// 5 minutes below [`DSQL_SESSION_LIMIT`], so that a pooled connection is retired before the
/// server closes it under a query (see [`Connector::recommended_max_lifetime`]).
pub const DSQL_RECOMMENDED_MAX_LIFETIME: Duration = Duration::from_secs(55 * 60);

// ---- Login concurrency: the one place that bounds how many logins run at once. ----
//
// Aurora DSQL accepts at most 100 new connections per second per cluster (bursts up to
// 1,000, refilled at 100/s; not configurable) and refuses the excess with SQLSTATE 53400
// `CONFIGURED_LIMIT_EXCEEDED`. A pool warming up (or refilling after a failover) would
// otherwise open all its connections at once. RDS has no documented connection-rate quota
// (IAM logins are throttled when there are too many at once, per instance), so RDS
// connectors keep their unbounded behaviour unless a limit is set.

/// How many logins one connector runs at once for an Aurora DSQL endpoint unless set
/// otherwise (see [`ConnectorBuilder::max_concurrent_logins`]). At the tens of milliseconds
/// a login takes, 8 at a time stays in DSQL's burst capacity for a pool of hundreds.
pub const DSQL_DEFAULT_MAX_CONCURRENT_LOGINS: usize = 8;

/// The default bound on concurrent logins: [`DSQL_DEFAULT_MAX_CONCURRENT_LOGINS`] for DSQL
/// tokens, none for RDS.
fn default_max_concurrent_logins(request: &TokenRequest) -> Option<usize> {
    is_dsql(request).then_some(DSQL_DEFAULT_MAX_CONCURRENT_LOGINS)
}

fn is_dsql(request: &TokenRequest) -> bool {
    matches!(
        request.action(),
        Action::DsqlConnect | Action::DsqlConnectAdmin
    )
}
/// The longest wait before the retry that follows a rejected token, unless set otherwise: the
/// actual wait is random between zero and this ("full jitter").
///
/// RDS limits new IAM logins per second per instance, and a throttled login looks like a
/// rejected token: many clients whose tokens were rejected at once (a credentials rotation, a
/// failover) must not all retry in the same instant.
pub const DEFAULT_RETRY_JITTER: Duration = Duration::from_millis(250);

/// A database engine's driver, as the connector core uses it: implemented by `Postgres` and
/// `MySql` only (the trait is sealed).
///
/// It names the connection a login yields; everything else it does is internal.
pub trait Driver: sealed::Driver {
    /// What [`Connector::connect`]-style calls hand out for this engine.
    type Connection: Send + 'static;
}

pub(crate) mod sealed {
    use super::*;

    /// The settings a connector's builder collects that every engine understands.
    #[derive(Debug)]
    pub struct CommonSettings<'a> {
        pub endpoint: &'a Endpoint,
        pub user: &'a str,
        pub database: Option<&'a str>,
        pub connect_timeout: Duration,
        pub trust: &'a TrustStore,
    }

    /// The engine's part of the connector. Public in a private module: the `Driver` trait is
    /// sealed, and none of this is part of the crate's API.
    pub trait Driver: Sized + Send + Sync + 'static {
        /// The engine, as errors name it.
        const ENGINE: Engine;
        /// Settings only this engine has (set through `ConnectorBuilder<D>`'s engine impl).
        type Settings: Default + Clone + fmt::Debug + Send + Sync;
        /// Everything the driver needs to connect but the password and a tunnel's IPs,
        /// built once per connector.
        type Options: Send + Sync + 'static;
        /// What one successful login yields (for PostgreSQL, the client and its task).
        type Login: Send + 'static;
        /// The driver's error.
        type Error: std::error::Error + Send + Sync + 'static;

        /// Builds the options once, from validated settings.
        fn options(common: CommonSettings<'_>, settings: &Self::Settings) -> Self::Options;

        /// One login with one token: TCP to `dial_ips` (or the signing host when `None`),
        /// TLS verified against the signing hostname, the token as the password.
        fn attempt(
            options: &Self::Options,
            endpoint: &Endpoint,
            dial_ips: Option<Vec<IpAddr>>,
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
/// Use it as [`PgConnector`](crate::PgConnector) or [`MySqlConnector`](crate::MySqlConnector).
/// Cheap to clone (clones share the configuration, the cache and the TLS setup): build it once
/// and use it for every connection, or hand it to a pool ([`pool`](crate::pool)).
///
/// When the server rejects a token, the connector tells the cache to forget it, signs a fresh
/// one and tries once more; a second rejection is [`Error::AuthenticationRejected`], which
/// lists the likely causes.
pub struct Connector<D: Driver> {
    inner: Arc<Core<D>>,
}

struct Core<D: Driver> {
    cache: TokenCache,
    request: TokenRequest,
    endpoint: Endpoint,
    options: D::Options,
    connect_timeout: Duration,
    /// Bounds concurrent logins (`None`: unbounded); see `default_max_concurrent_logins`.
    logins: Option<Semaphore>,
    max_concurrent_logins: Option<usize>,
    /// For the `db.namespace` of the connect span.
    database: Option<String>,
    retry_jitter: Duration,
}

impl<D: Driver> Clone for Connector<D> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// Configures a [`Connector`]; see [`Connector::builder`].
///
/// Settings only one engine has are on that engine's builder (e.g.
/// [`application_name`](ConnectorBuilder::application_name) for PostgreSQL).
pub struct ConnectorBuilder<D: Driver> {
    cache: TokenCache,
    endpoint: Endpoint,
    user: String,
    database: Option<String>,
    region: Option<String>,
    connect_timeout: Duration,
    retry_jitter: Duration,
    trust: TrustStore,
    dsql: Option<bool>,
    token_lifetime: Option<Duration>,
    max_concurrent_logins: Option<Option<usize>>,
    pub(crate) settings: D::Settings,
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
        ConnectorBuilder {
            cache,
            endpoint,
            user: user.into(),
            database: None,
            region: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry_jitter: DEFAULT_RETRY_JITTER,
            trust: TrustStore::aws_default(),
            dsql: None,
            token_lifetime: None,
            max_concurrent_logins: None,
            settings: D::Settings::default(),
        }
    }

    /// A builder configured from the environment variables of AWS's Lambda samples:
    /// `DBEndPoint` (`host` or `host:port`; port 5432 for PostgreSQL, 3306 for MySQL by
    /// default), `DBUserName` and, optionally, `DatabaseName`; and optionally `DBPort` (wins
    /// over a port in `DBEndPoint`), `DBRegion` (when the hostname carries none) and
    /// `DBCaFile` (a PEM file of CAs trusted besides the AWS ones).
    pub fn builder_from_env(cache: TokenCache) -> Result<ConnectorBuilder<D>> {
        Self::builder_from_vars(cache, |name| std::env::var(name).ok())
    }

    pub(crate) fn builder_from_vars(
        cache: TokenCache,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<ConnectorBuilder<D>> {
        let settings = env::settings_from_vars(D::ENGINE, var)?;
        let mut builder = Self::builder(cache, settings.endpoint, settings.user);
        builder.database = settings.database;
        builder.region = settings.region;
        if let Some(path) = settings.ca_file {
            builder.trust = TrustStore::aws_default().with_ca_file(path)?;
        }
        Ok(builder)
    }

    /// Opens a connection logged in with the cache's current token (one retry with a fresh
    /// token if the server rejects it).
    pub async fn connect(&self) -> Result<D::Connection> {
        self.login().await.map(D::connection)
    }

    /// The endpoint connections go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The token request (user, region, endpoint) the connector asks the cache for.
    pub fn token_request(&self) -> &TokenRequest {
        &self.inner.request
    }

    /// The token cache.
    pub fn cache(&self) -> &TokenCache {
        &self.inner.cache
    }

    /// How many logins this connector runs at once (`None`: unbounded); see
    /// [`ConnectorBuilder::max_concurrent_logins`].
    pub fn max_concurrent_logins(&self) -> Option<usize> {
        self.inner.max_concurrent_logins
    }

    /// The maximum lifetime pools should give this connector's connections:
    /// [`DSQL_RECOMMENDED_MAX_LIFETIME`] for Aurora DSQL (which closes connections after
    /// [`DSQL_SESSION_LIMIT`]), `None` for RDS (no session limit; tokens are checked at
    /// login only). The deadpool [`Manager`](crate::pool) uses it by default; for bb8 pass
    /// it to `Builder::max_lifetime`.
    pub fn recommended_max_lifetime(&self) -> Option<Duration> {
        is_dsql(&self.inner.request).then_some(DSQL_RECOMMENDED_MAX_LIFETIME)
    }

    /// The engine's options (crate-internal: they may hold the driver's secrets).
    #[cfg_attr(
        not(all(test, any(feature = "postgres", feature = "mysql"))),
        allow(dead_code)
    )]
    pub(crate) fn options(&self) -> &D::Options {
        &self.inner.options
    }

    /// Logs in with the cache's token; if the server rejects it, tells the cache to forget
    /// it, gets a fresh one and tries exactly once more.
    ///
    /// Why retry: the server no longer accepts what the cache holds (rotated credentials, a
    /// token from before a failover, a cache shared with a stale clock). Why only once: a
    /// freshly signed token that is refused too will be refused again (see
    /// [`Error::AuthenticationRejected`] for the usual causes), and RDS throttles floods of
    /// failed IAM logins. Why wait first: a throttled login looks like a rejection, and
    /// clients rejected together must not retry together (see [`DEFAULT_RETRY_JITTER`]).
    pub(crate) async fn login(&self) -> Result<D::Login> {
        // Held for both attempts: a retry is a new login as far as the server is concerned.
        let _permit = match &self.inner.logins {
            Some(logins) => Some(
                logins
                    .acquire()
                    .await
                    .expect("the semaphore is never closed"),
            ),
            None => None,
        };
        let core = &*self.inner;
        // OpenTelemetry's database client attribute names; DEBUG: a span per connection.
        let span = tracing::debug_span!(
            "rds_iam_auth.connect",
            db.system.name = D::ENGINE.otel_system_name(),
            server.address = core.request.host(),
            server.port = core.request.port(),
            db.namespace = core.database.as_deref(),
            db.user = core.request.user(),
        );
        let started = crate::observe::Timer::start();
        let result = self.login_with_retry().instrument(span.clone()).await;
        let _entered = span.enter();
        let outcome = match &result {
            Ok(_) => {
                tracing::debug!("logged in");
                "success"
            }
            // Never a token: the report holds the endpoint, the user and the driver's words.
            Err(e) => {
                tracing::warn!(error = %e.report(), "IAM login failed");
                match e {
                    Error::AuthenticationRejected { .. } => "rejected",
                    Error::ConnectTimeout { .. } => "timeout",
                    _ => "failed",
                }
            }
        };
        crate::observe::login(D::ENGINE, outcome, started);
        result
    }

    async fn login_with_retry(&self) -> Result<D::Login> {
        let rejected = match self.attempt(1, Duration::ZERO).await {
            Err(Attempt::Rejected { token, error }) => {
                drop(error);
                token
            }
            other => return other.map_err(|a| self.error(a)),
        };
        tracing::info!(
            "the server rejected the IAM token: invalidating it and retrying once with a fresh one"
        );
        crate::observe::retry(D::ENGINE);
        self.inner.cache.invalidate(&self.inner.request, &rejected);
        drop(rejected);
        self.attempt(2, self.retry_delay())
            .await
            .map_err(|a| self.error(a))
    }

    /// A random wait in `[0, bound]` (full jitter: spreads retries evenly over the bound, AWS's
    /// advice for clients contending for one limit), the bound at most half the connect timeout.
    fn retry_delay(&self) -> Duration {
        let core = &*self.inner;
        let bound = core.retry_jitter.min(core.connect_timeout / 2);
        Duration::from_micros(fastrand::u64(0..=bound.as_micros() as u64))
    }

    /// Attempt `number` with the cache's current token after `delay`, token and delay included
    /// in the timeout: a credentials provider that hangs must not hang the connection.
    async fn attempt(
        &self,
        number: u32,
        delay: Duration,
    ) -> std::result::Result<D::Login, Attempt<D>> {
        let core = &*self.inner;
        let attempt = async {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let token = core.cache.get(&core.request).await?;
            let ips = dial_ips(&core.endpoint).await?;
            match D::attempt(&core.options, &core.endpoint, ips, &token).await {
                Ok(login) => Ok(login),
                Err(error) if D::is_rejected(&error) => Err(Attempt::Rejected { token, error }),
                Err(error) => Err(Attempt::Failed(error)),
            }
        };
        let span = tracing::debug_span!("rds_iam_auth.attempt", attempt = number);
        tokio::time::timeout(core.connect_timeout, attempt)
            .instrument(span)
            .await
            .unwrap_or(Err(Attempt::Timeout))
    }

    fn error(&self, attempt: Attempt<D>) -> Error {
        let core = &*self.inner;
        match attempt {
            Attempt::Rejected { error, .. } => Error::AuthenticationRejected {
                engine: D::ENGINE,
                host: core.request.host().to_owned(),
                port: core.request.port(),
                user: core.request.user().to_owned(),
                region: core.request.region().as_str().to_owned(),
                source: Box::new(error),
            },
            Attempt::Failed(error) => Error::connect(D::ENGINE, &core.endpoint, error),
            Attempt::Timeout => Error::ConnectTimeout {
                endpoint: core.endpoint.to_string(),
                timeout: core.connect_timeout,
            },
            Attempt::Other(e) => e,
        }
    }

    /// The crate's error for a driver error on an open connection (a failed ping).
    #[cfg_attr(
        not(any(
            feature = "deadpool-postgres",
            feature = "deadpool-mysql",
            feature = "bb8-postgres",
            feature = "bb8-mysql"
        )),
        allow(dead_code)
    )]
    pub(crate) fn driver_error(&self, error: D::Error) -> Error {
        Error::connect(D::ENGINE, &self.inner.endpoint, error)
    }
}

/// The outcome of one failed login attempt.
enum Attempt<D: Driver> {
    /// The server refused `token`: worth one retry with a fresh one.
    Rejected {
        token: IamAuthToken,
        error: D::Error,
    },
    /// Anything else the driver reported (TCP, TLS, protocol): not retried.
    Failed(D::Error),
    /// The attempt took longer than the connect timeout.
    Timeout,
    /// An error of this crate (credentials, signing, resolving the dial address).
    Other(Error),
}

impl<D: Driver> From<Error> for Attempt<D> {
    fn from(e: Error) -> Self {
        Attempt::Other(e)
    }
}

impl<D: Driver> ConnectorBuilder<D> {
    /// The database to connect to (PostgreSQL's default is the user name, Aurora DSQL's
    /// `postgres`; MySQL's is none).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// The region to sign for, when it cannot be inferred from the hostname.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// How long one attempt (token, TCP connect, TLS handshake, login) may take; default
    /// [`DEFAULT_CONNECT_TIMEOUT`]. A rejected token's retry gets the same again.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest random wait before the retry that follows a rejected token; default
    /// [`DEFAULT_RETRY_JITTER`] (250 ms), zero to retry at once.
    ///
    /// The wait counts in the retry's connect timeout, so a login still ends within twice the
    /// connect timeout; a bound over half the connect timeout is cut to that half, so the retry
    /// always keeps time to connect.
    pub fn retry_jitter(mut self, bound: Duration) -> Self {
        self.retry_jitter = bound;
        self
    }

    /// Which CAs to trust (default [`TrustStore::aws_default`]). Chain and host name are
    /// always verified; nothing else is trusted (not a driver's built-in roots).
    pub fn trust(mut self, trust: TrustStore) -> Self {
        self.trust = trust;
        self
    }

    /// Signs Aurora DSQL tokens (`true`: `DbConnectAdmin` for the `admin` role, `DbConnect`
    /// for any other) or RDS ones (`false`), whatever the hostname looks like. By default the
    /// endpoint decides ([`Endpoint::is_dsql`]); set it for a name that does not tell, such as
    /// a DNS alias of a DSQL cluster.
    pub fn dsql(mut self, dsql: bool) -> Self {
        self.dsql = Some(dsql);
        self
    }

    /// How long the tokens the connector asks for are valid: default 900 s; at most 900 s
    /// for RDS ([`RDS_MAX_EXPIRY`](crate::RDS_MAX_EXPIRY)) and one week for Aurora DSQL
    /// ([`DSQL_MAX_EXPIRY`](crate::DSQL_MAX_EXPIRY)), checked by [`build`](Self::build).
    /// A token is checked at login only: its lifetime bounds how long the cache may reuse
    /// it, not how long a connection lives.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = Some(lifetime);
        self
    }

    /// At most `limit` logins of this connector (and of the pools using it) run at once;
    /// `None`: no bound. Default: [`DSQL_DEFAULT_MAX_CONCURRENT_LOGINS`] for Aurora DSQL
    /// (whose clusters accept 100 new connections per second), none for RDS. Logins beyond
    /// the bound wait their turn (outside the [`connect_timeout`](Self::connect_timeout)):
    /// a pool warming up does not stampede the database.
    pub fn max_concurrent_logins(mut self, limit: Option<usize>) -> Self {
        self.max_concurrent_logins = Some(limit);
        self
    }

    /// Validates everything and builds the connector (and the driver's options, once).
    ///
    /// For Aurora DSQL the database defaults to `postgres` (DSQL's only database), not to
    /// the user name.
    ///
    /// # Errors
    /// A region that is invalid or cannot be inferred, an invalid user name, a token lifetime
    /// beyond the service's maximum ([`Error::InvalidExpiry`]), a zero connect timeout or
    /// login limit, a DSQL endpoint for another engine than PostgreSQL, or a [`TrustStore`]
    /// without certificates ([`Error::EmptyTrustStore`]: no
    /// server could ever be verified).
    pub fn build(mut self) -> Result<Connector<D>> {
        let request = self.token_request()?;
        if is_dsql(&request) && D::ENGINE != Engine::Postgres {
            return Err(Error::InvalidSetting {
                name: "dsql",
                reason: "Aurora DSQL speaks PostgreSQL only: connect with a PgConnector",
            });
        }
        if is_dsql(&request) && self.database.is_none() {
            self.database = Some("postgres".to_owned());
        }
        let max_concurrent_logins = self
            .max_concurrent_logins
            .unwrap_or_else(|| default_max_concurrent_logins(&request));
        if max_concurrent_logins == Some(0) {
            return Err(Error::InvalidSetting {
                name: "max_concurrent_logins",
                reason: "must be at least 1 (or None for no bound)",
            });
        }
        if self.trust.is_empty() {
            return Err(Error::EmptyTrustStore);
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::InvalidSetting {
                name: "connect_timeout",
                reason: "must be longer than zero",
            });
        }
        let common = sealed::CommonSettings {
            endpoint: &self.endpoint,
            user: &self.user,
            database: self.database.as_deref(),
            connect_timeout: self.connect_timeout,
            trust: &self.trust,
        };
        let options = D::options(common, &self.settings);
        Ok(Connector {
            inner: Arc::new(Core {
                cache: self.cache,
                request,
                endpoint: self.endpoint,
                options,
                connect_timeout: self.connect_timeout,
                logins: max_concurrent_logins.map(Semaphore::new),
                max_concurrent_logins,
                database: self.database,
                retry_jitter: self.retry_jitter,
            }),
        })
    }

    /// The request for the endpoint's kind (or the explicit [`dsql`](Self::dsql) choice).
    fn token_request(&self) -> Result<TokenRequest> {
        login_token_request(
            &self.endpoint,
            &self.user,
            self.dsql,
            self.region.as_deref(),
            self.token_lifetime,
        )
    }
}

/// The token request of a login to `endpoint` as `user`, as every builder of connections
/// (connectors, sqlx pools) makes it: DSQL or RDS by the endpoint's kind unless `dsql` says,
/// the region given or inferred, the lifetime given or the default.
pub(crate) fn login_token_request(
    endpoint: &Endpoint,
    user: &str,
    dsql: Option<bool>,
    region: Option<&str>,
    lifetime: Option<Duration>,
) -> Result<TokenRequest> {
    let user = user.to_owned();
    let mut request = match dsql {
        None => TokenRequest::for_endpoint(endpoint, user),
        Some(true) => TokenRequest::dsql(endpoint, user),
        Some(false) => TokenRequest::rds(endpoint, user),
    };
    if let Some(region) = region {
        request = request.region(region);
    }
    if let Some(lifetime) = lifetime {
        request = request.expires_in(lifetime);
    }
    request.build()
}

/// The IP addresses to dial when the endpoint is tunnelled (`None`: dial the signing host).
///
/// Drivers take the TLS name from the host and the TCP address separately, as IP addresses:
/// a dial address that is a DNS name is resolved here, at each connection (DNS may change
/// across a failover).
async fn dial_ips(endpoint: &Endpoint) -> Result<Option<Vec<IpAddr>>> {
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

impl<D: Driver> fmt::Debug for Connector<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = &*self.inner;
        let mut s = f.debug_struct(D::ENGINE.connector_name());
        s.field("endpoint", &core.endpoint)
            .field("user", &core.request.user())
            .field("region", &core.request.region().as_str())
            .field("connect_timeout", &core.connect_timeout)
            .field("action", &core.request.action())
            .field("max_concurrent_logins", &core.max_concurrent_logins);
        D::describe(&core.options, &mut s);
        s.finish_non_exhaustive()
    }
}

impl<D: Driver> fmt::Debug for ConnectorBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorBuilder")
            .field("engine", &D::ENGINE)
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("region", &self.region)
            .field("connect_timeout", &self.connect_timeout)
            .field("trust", &self.trust)
            .field("dsql", &self.dsql)
            .field("token_lifetime", &self.token_lifetime)
            .field("max_concurrent_logins", &self.max_concurrent_logins)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;
    use crate::generator::TokenGenerator;
    use crate::postgres::PgConnector;
    use aws_credential_types::Credentials;

    fn connector(timeout: Duration, jitter: Duration) -> PgConnector {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let endpoint = Endpoint::new("mydb.cluster-abc.eu-west-1.rds.amazonaws.com", 5432).unwrap();
        PgConnector::builder(
            TokenCache::new(TokenGenerator::new(credentials)),
            endpoint,
            "u",
        )
        .connect_timeout(timeout)
        .retry_jitter(jitter)
        .build()
        .unwrap()
    }

    #[test]
    fn the_retry_delay_is_random_within_the_bound_and_half_the_timeout() {
        let c = connector(Duration::from_secs(10), Duration::from_millis(250));
        let delays: Vec<_> = (0..1000).map(|_| c.retry_delay()).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(250)));
        // Spread over the bound, not a constant: both halves are drawn.
        assert!(delays.iter().any(|d| *d < Duration::from_millis(125)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(125)));

        let short = connector(Duration::from_millis(100), Duration::from_secs(5));
        assert!((0..1000).all(|_| short.retry_delay() <= Duration::from_millis(50)));
        let none = connector(Duration::from_secs(1), Duration::ZERO);
        assert_eq!(none.retry_delay(), Duration::ZERO);
    }
}
