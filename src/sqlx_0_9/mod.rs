//! sqlx 0.9 pools whose new connections log in with current IAM tokens.
//!
//! sqlx's pools log every new connection in with one fixed password, and an IAM token is
//! accepted for 15 minutes only. An [`IamPool`] is a `sqlx::Pool` (a `PgPool` or a
//! `MySqlPool`: it dereferences to one, for queries, `query!`, migrations and sea-orm) plus
//! what keeps its password current:
//!
//! - **a refresher task per pool** installs the [`TokenCache`]'s current token with
//!   `Pool::set_connect_options` (sqlx's one seam: it affects connections opened later),
//!   sleeps until the cache's refresh point ([`TokenCache::refresh_at`]), wakes early when
//!   the token is invalidated ([`TokenCache::changed`]), and ends when the pool is closed
//!   (or the last [`IamPool`] handle is dropped);
//! - **[`IamPool::acquire`]** first checks that the installed token is the cache's current
//!   one (a cache hit: tens of nanoseconds) and installs it if not, so no token with less than
//!   the cache's margin reaches a new connection, **also after the process was frozen** (AWS
//!   Lambda freezes between invocations; the refresher's timer then fires late). When the
//!   server rejects the token (PostgreSQL `28P01`/`28000`, MySQL `1045`), it invalidates it,
//!   installs a fresh one and retries once; a second rejection is
//!   [`Error::AuthenticationRejected`], with the likely causes.
//!
//! # What goes through sqlx directly
//!
//! Queries run on the pool itself (`sqlx::query(..).fetch_one(pool.pool())`), and the
//! connections sqlx opens on its own to keep `min_connections`, use sqlx's `acquire`: they log
//! in with the token the refresher installed last. While the process runs, that token is the
//! cache's current one (the refresher replaces it at the refresh point, two thirds into its
//! life, long before its expiry). Right after a freeze longer than the token's remaining life,
//! until the refresher has run (its timer fires at the first chance it gets), such a
//! connection may log in with an expired token; a rejected token then comes back as
//! `sqlx::Error::Database` (`28P01` / `1045`), without invalidation or retry. So in AWS
//! Lambda: take connections with [`IamPool::acquire`] (then query on `&mut *conn`), and keep
//! `min_connections(0)` (sqlx's default): background connects of a frozen process are the
//! one path nothing of ours can check first.
//!
//! # TLS
//!
//! Always verified, never weakened: PostgreSQL with `PgSslMode::VerifyFull`, MySQL with
//! `MySqlSslMode::VerifyIdentity` (and the `mysql_clear_password` plugin RDS asks for only
//! together with it: sqlx itself only logs a warning when cleartext meets no TLS). The CAs
//! are the builder's [`TrustStore`] (the AWS bundle by default), handed to sqlx as PEM.
//! **sqlx always trusts the webpki (Mozilla) roots too**, besides those: it offers no way to
//! restrict trust to a given store (the crate's own connectors trust the store only).
//!
//! sqlx verifies the certificate against the host it dials, so an [`Endpoint`] with a dial
//! address (a tunnel) is refused with [`Error::DialAddressNotSupported`]: make the endpoint's
//! DNS name resolve to the tunnel instead (a hosts-file entry), or use the crate's
//! connectors, which dial a tunnel while verifying the signing hostname.
//!
//! # Secrets
//!
//! Nothing here prints the connect options: `Debug` of [`IamPool`] and [`IamPoolBuilder`]
//! shows the endpoint, user and pool sizes only. sqlx's own API still hands them out:
//! `Pool::connect_options()` returns the options with the current token as the password,
//! and their `Debug` prints it: do not log them.

mod engine;
mod refresher;

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::pool::{Pool, PoolConnection, PoolOptions};
use tokio::task::AbortHandle;

use crate::cache::TokenCache;
use crate::connector::{DEFAULT_RETRY_JITTER, DSQL_RECOMMENDED_MAX_LIFETIME};
use crate::endpoint::Endpoint;
use crate::error::{Engine, Error, Result};
use crate::request::{Action, TokenRequest};
use crate::tls::TrustStore;
use crate::token::IamAuthToken;
use engine::ConnectOptions;
use engine::sealed::Common;

pub use engine::IamDatabase;
#[cfg(feature = "sqlx-0_9-postgres")]
pub use engine::PgSettings;
/// Re-exported: the sqlx these pools are built with. Name sqlx through it (or depend on the
/// same 0.9 version) so that `PgPoolOptions`, `PgPool` and the rest are the same types.
pub use sqlx;

/// A sqlx 0.9 `PgPool` whose new connections log in with current IAM tokens.
///
/// ```no_run
/// use rds_iam_auth::sqlx_0_9::{IamPgPool, sqlx};
/// use rds_iam_auth::{Endpoint, TokenCache, TokenGenerator};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = TokenCache::new(TokenGenerator::from_env().await?);
/// let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?;
/// let pool = IamPgPool::builder(cache, endpoint, "iam_user")
///     .database("appdb")
///     .pool_options(sqlx::postgres::PgPoolOptions::new().max_connections(8))
///     .build()
///     .await?;
///
/// // A connection through the pool's own acquire: token checked first, one retry on rejection.
/// let mut conn = pool.acquire().await?;
/// let (db,): (String,) = sqlx::query_as("SELECT current_database()")
///     .fetch_one(&mut *conn)
///     .await?;
///
/// // Anything that takes a `&PgPool` (queries, migrations, sea-orm) takes the pool.
/// fn count_users(pool: &sqlx::PgPool) -> impl Future<Output = sqlx::Result<i64>> + '_ {
///     sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(pool)
/// }
/// let n = count_users(&pool).await?;
/// # let _ = (db, n);
/// # Ok(()) }
/// ```
#[cfg(feature = "sqlx-0_9-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx-0_9-postgres")))]
pub type IamPgPool = IamPool<sqlx::Postgres>;

/// A sqlx 0.9 `MySqlPool` whose new connections log in with current IAM tokens.
#[cfg(feature = "sqlx-0_9-mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx-0_9-mysql")))]
pub type IamMySqlPool = IamPool<sqlx::MySql>;

/// The longest the refresher sleeps between two looks at the cache, whatever the refresh
/// point: a wall clock that jumps (or a test's clock) is noticed within this.
const MAX_REFRESH_WAIT: Duration = Duration::from_secs(60);

/// A sqlx pool (`PgPool` / `MySqlPool`, through `Deref`) whose new connections log in with
/// the current IAM token from a [`TokenCache`], over verified TLS. Build it with
/// [`IamPool::builder`]; see the [module docs](self) for what sqlx's own connects get.
///
/// Cheap to clone: clones share the pool and its refresher. Keep one alive as long as the
/// pool is used: the refresher stops when the last handle is dropped (or the pool closed);
/// a `PgPool` cloned out of it and kept alone logs in with the last token installed.
/// Example: [`IamPgPool`].
pub struct IamPool<DB: IamDatabase> {
    shared: Arc<Shared<DB>>,
}

/// What an [`IamPool`]'s handles and its refresher share.
struct Shared<DB: IamDatabase> {
    pool: Pool<DB>,
    cache: TokenCache,
    request: TokenRequest,
    endpoint: Endpoint,
    /// Everything but the password (never printed: sqlx's `Debug` would show a password).
    base: ConnectOptions<DB>,
    /// The token in the pool's connect options now. A tokio mutex, held across the cache
    /// call: two installers never put an older token back over a newer one.
    installed: tokio::sync::Mutex<IamAuthToken>,
    retry_jitter: Duration,
    refresher: Mutex<Option<AbortHandle>>,
}

impl<DB: IamDatabase> Clone for IamPool<DB> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<DB: IamDatabase> Deref for IamPool<DB> {
    type Target = Pool<DB>;

    fn deref(&self) -> &Pool<DB> {
        &self.shared.pool
    }
}

impl<DB: IamDatabase> IamPool<DB> {
    /// A builder for a pool of connections to `endpoint` as `user`, with tokens from `cache`.
    ///
    /// The endpoint's hostname and port are what tokens are signed for, what TCP dials and
    /// what TLS verifies (an endpoint with a dial address is refused at
    /// [`build`](IamPoolBuilder::build), see the [module docs](self)).
    pub fn builder(
        cache: TokenCache,
        endpoint: Endpoint,
        user: impl Into<String>,
    ) -> IamPoolBuilder<DB> {
        IamPoolBuilder {
            cache,
            endpoint,
            user: user.into(),
            database: None,
            region: None,
            trust: TrustStore::aws_default(),
            dsql: None,
            token_lifetime: None,
            retry_jitter: DEFAULT_RETRY_JITTER,
            pool_options: None,
            settings: DB::Settings::default(),
        }
    }

    /// A builder configured from the environment variables of AWS's Lambda samples, as
    /// [`Connector::builder_from_env`](crate::Connector::builder_from_env) reads them:
    /// `DBEndPoint` (`host` or `host:port`), `DBUserName`, optionally `DatabaseName`,
    /// `DBPort`, `DBRegion` and `DBCaFile`.
    pub fn builder_from_env(cache: TokenCache) -> Result<IamPoolBuilder<DB>> {
        Self::builder_from_vars(cache, |name| std::env::var(name).ok())
    }

    /// Like [`builder_from_env`](Self::builder_from_env), reading the same variables through
    /// `var` (a map, a secrets store) instead of the process environment.
    pub fn builder_from_vars(
        cache: TokenCache,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<IamPoolBuilder<DB>> {
        let settings = crate::connector::env::settings_from_vars(DB::ENGINE, var)?;
        let mut builder = Self::builder(cache, settings.endpoint, settings.user);
        builder.database = settings.database;
        builder.region = settings.region;
        if let Some(path) = settings.ca_file {
            builder.trust = TrustStore::aws_default().with_ca_file(path)?;
        }
        Ok(builder)
    }

    /// The sqlx pool (also reached through `Deref`).
    pub fn pool(&self) -> &Pool<DB> {
        &self.shared.pool
    }

    /// A connection from the pool, after making sure the token a new connection would log
    /// in with is the cache's current one. When the server rejects it, the token is
    /// invalidated, a fresh one installed and the acquire retried once (after a random wait
    /// of up to the [`retry_jitter`](IamPoolBuilder::retry_jitter)).
    ///
    /// # Errors
    /// [`Error::AuthenticationRejected`] when the server rejected the token twice;
    /// [`Error::Connect`] for anything else sqlx reports (TCP, TLS, a server without TLS,
    /// `PoolTimedOut`, `PoolClosed`; the `sqlx::Error` is the source); the cache's errors
    /// (credentials, signing).
    pub async fn acquire(&self) -> Result<PoolConnection<DB>> {
        let shared = &*self.shared;
        let used = shared.install_current().await?;
        match shared.pool.acquire().await {
            Ok(conn) => Ok(conn),
            Err(e) if DB::is_rejected(&e) => {
                drop(e);
                self.retry_after_rejection(used).await
            }
            Err(e) => Err(Error::connect(DB::ENGINE, &shared.endpoint, e)),
        }
    }

    /// Why once, and why wait first: see `Connector`'s login (a fresh token refused too will
    /// be refused again; a throttled login looks like a rejection).
    async fn retry_after_rejection(&self, rejected: IamAuthToken) -> Result<PoolConnection<DB>> {
        let shared = &*self.shared;
        tracing::info!(
            "the server rejected the IAM token: invalidating it and retrying once with a fresh one"
        );
        crate::observe::retry(DB::ENGINE);
        shared.cache.invalidate(&shared.request, &rejected);
        drop(rejected);
        tokio::time::sleep(shared.retry_delay()).await;
        shared.install_current().await?;
        match shared.pool.acquire().await {
            Ok(conn) => Ok(conn),
            Err(e) if DB::is_rejected(&e) => {
                let error = shared.rejected(e);
                tracing::warn!(error = %error.report(), "IAM login failed");
                Err(error)
            }
            Err(e) => Err(Error::connect(DB::ENGINE, &shared.endpoint, e)),
        }
    }

    /// The token cache.
    pub fn cache(&self) -> &TokenCache {
        &self.shared.cache
    }

    /// The token request (user, region, endpoint) the pool asks the cache for.
    pub fn token_request(&self) -> &TokenRequest {
        &self.shared.request
    }

    /// The endpoint connections go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.shared.endpoint
    }
}

impl<DB: IamDatabase> Shared<DB> {
    /// Installs the cache's current token in the pool unless it is the one there already;
    /// returns it.
    async fn install_current(&self) -> Result<IamAuthToken> {
        let mut installed = self.installed.lock().await;
        let token = self.cache.get(&self.request).await?;
        if !installed.same_token(&token) {
            self.pool
                .set_connect_options(DB::with_password(&self.base, token.expose()));
            *installed = token.clone();
            tracing::debug!(
                host = self.request.host(),
                user = self.request.user(),
                "installed a new IAM token in the sqlx pool"
            );
        }
        Ok(token)
    }

    /// A random wait in `[0, bound]`, the bound at most half the pool's acquire timeout.
    fn retry_delay(&self) -> Duration {
        let bound = self
            .retry_jitter
            .min(self.pool.options().get_acquire_timeout() / 2);
        Duration::from_micros(fastrand::u64(0..=bound.as_micros() as u64))
    }

    /// How long the refresher may sleep: until the cache's refresh point (on the cache's
    /// clock), at least a second (no spinning while another caller refreshes), at most
    /// [`MAX_REFRESH_WAIT`].
    fn until_refresh(&self) -> Duration {
        let now = self.cache.generator().clock().now();
        self.cache
            .refresh_at(&self.request)
            .and_then(|at| at.duration_since(now).ok())
            .unwrap_or_default()
            .clamp(Duration::from_secs(1), MAX_REFRESH_WAIT)
    }

    fn rejected(&self, error: sqlx::Error) -> Error {
        Error::AuthenticationRejected {
            engine: DB::ENGINE,
            host: self.request.host().to_owned(),
            port: self.request.port(),
            user: self.request.user().to_owned(),
            region: self.request.region().as_str().to_owned(),
            source: Box::new(error),
        }
    }
}

impl<DB: IamDatabase> Drop for Shared<DB> {
    /// The last handle is gone: stop the refresher (which holds only a weak reference).
    fn drop(&mut self) {
        if let Some(task) = self.refresher.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}

/// Configures an [`IamPool`]; see [`IamPool::builder`].
pub struct IamPoolBuilder<DB: IamDatabase> {
    cache: TokenCache,
    endpoint: Endpoint,
    user: String,
    database: Option<String>,
    region: Option<String>,
    trust: TrustStore,
    dsql: Option<bool>,
    token_lifetime: Option<Duration>,
    retry_jitter: Duration,
    pool_options: Option<PoolOptions<DB>>,
    settings: DB::Settings,
}

impl<DB: IamDatabase> IamPoolBuilder<DB> {
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

    /// Which CAs to trust besides sqlx's built-in webpki roots (default
    /// [`TrustStore::aws_default`]). Chain and host name are always verified.
    pub fn trust(mut self, trust: TrustStore) -> Self {
        self.trust = trust;
        self
    }

    /// Signs Aurora DSQL tokens (`true`: `DbConnectAdmin` for the `admin` role, `DbConnect`
    /// for any other) or RDS ones (`false`), whatever the hostname looks like. By default the
    /// endpoint decides ([`Endpoint::is_dsql`]).
    pub fn dsql(mut self, dsql: bool) -> Self {
        self.dsql = Some(dsql);
        self
    }

    /// How long the tokens are valid: default 900 s; at most 900 s for RDS and one week for
    /// Aurora DSQL, checked by [`build`](Self::build).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = Some(lifetime);
        self
    }

    /// The longest random wait before the retry that follows a rejected token; default
    /// [`DEFAULT_RETRY_JITTER`], at most half the pool's acquire timeout; zero to retry at
    /// once.
    pub fn retry_jitter(mut self, bound: Duration) -> Self {
        self.retry_jitter = bound;
        self
    }

    /// sqlx's pool options (`PgPoolOptions` / `MySqlPoolOptions`): sizes, timeouts,
    /// callbacks. Default: `PoolOptions::new()`. For Aurora DSQL, a `max_lifetime` over
    /// [`DSQL_RECOMMENDED_MAX_LIFETIME`] (or none) is lowered to it: DSQL closes connections
    /// after 60 minutes.
    pub fn pool_options(mut self, options: PoolOptions<DB>) -> Self {
        self.pool_options = Some(options);
        self
    }

    /// Validates everything, installs a token, starts the refresher and opens one
    /// connection through [`IamPool::acquire`] (a login that fails is reported here, with the
    /// rejection retry), which goes back to the pool.
    ///
    /// # Errors
    /// Those of [`build_lazy`](Self::build_lazy), and of [`IamPool::acquire`].
    pub async fn build(self) -> Result<IamPool<DB>> {
        let pool = self.build_lazy().await?;
        drop(pool.acquire().await?);
        Ok(pool)
    }

    /// Like [`build`](Self::build), without opening a connection (sqlx's `connect_lazy`):
    /// the first login happens at the first acquire (or sqlx's `min_connections` upkeep).
    /// Signs (or takes from the cache) the first token.
    ///
    /// # Errors
    /// An endpoint with a dial address ([`Error::DialAddressNotSupported`]); a region that
    /// is invalid or cannot be inferred, an invalid user name, a token lifetime beyond the
    /// service's maximum; a DSQL endpoint with MySQL; an empty [`TrustStore`]
    /// ([`Error::EmptyTrustStore`]); the cache's errors for the first token.
    pub async fn build_lazy(mut self) -> Result<IamPool<DB>> {
        if self.endpoint.is_tunnelled() {
            let (host, port) = self.endpoint.dial_address();
            return Err(Error::DialAddressNotSupported {
                host: self.endpoint.host().to_owned(),
                dial: format!("{host}:{port}"),
            });
        }
        let request = self.token_request()?;
        let dsql = matches!(
            request.action(),
            Action::DsqlConnect | Action::DsqlConnectAdmin
        );
        if dsql && DB::ENGINE != Engine::Postgres {
            return Err(Error::InvalidSetting {
                name: "dsql",
                reason: "Aurora DSQL speaks PostgreSQL only: build an IamPgPool",
            });
        }
        if dsql && self.database.is_none() {
            self.database = Some("postgres".to_owned());
        }
        if self.trust.is_empty() {
            return Err(Error::EmptyTrustStore);
        }
        let mut pool_options = self.pool_options.take().unwrap_or_default();
        if dsql {
            pool_options = dsql_max_lifetime(pool_options);
        }
        let base = DB::base_options(
            Common {
                endpoint: &self.endpoint,
                user: &self.user,
                database: self.database.as_deref(),
                trust: &self.trust,
            },
            &self.settings,
        );
        let token = self.cache.get(&request).await?;
        let pool = pool_options.connect_lazy_with(DB::with_password(&base, token.expose()));
        let shared = Arc::new(Shared {
            pool,
            cache: self.cache,
            request,
            endpoint: self.endpoint,
            base,
            installed: tokio::sync::Mutex::new(token),
            retry_jitter: self.retry_jitter,
            refresher: Mutex::new(None),
        });
        let task = refresher::spawn(Arc::downgrade(&shared));
        *shared.refresher.lock().expect("not poisoned: just created") = Some(task);
        Ok(IamPool { shared })
    }

    /// The request for the endpoint's kind (or the explicit [`dsql`](Self::dsql) choice).
    fn token_request(&self) -> Result<TokenRequest> {
        crate::connector::login_token_request(
            &self.endpoint,
            &self.user,
            self.dsql,
            self.region.as_deref(),
            self.token_lifetime,
        )
    }
}

#[cfg(feature = "sqlx-0_9-postgres")]
impl IamPoolBuilder<sqlx::Postgres> {
    /// `application_name`, shown in `pg_stat_activity` and the server log.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.settings.application_name = Some(name.into());
        self
    }
}

/// DSQL closes a connection 60 minutes after it opened: retire pooled ones before.
fn dsql_max_lifetime<DB: sqlx::Database>(options: PoolOptions<DB>) -> PoolOptions<DB> {
    match options.get_max_lifetime() {
        Some(lifetime) if lifetime <= DSQL_RECOMMENDED_MAX_LIFETIME => options,
        _ => options.max_lifetime(DSQL_RECOMMENDED_MAX_LIFETIME),
    }
}

impl<DB: IamDatabase> fmt::Debug for IamPool<DB> {
    /// Never the connect options: they hold the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &*self.shared;
        f.debug_struct("IamPool")
            .field("engine", &DB::ENGINE)
            .field("endpoint", &shared.endpoint)
            .field("user", &shared.request.user())
            .field("region", &shared.request.region().as_str())
            .field("action", &shared.request.action())
            .field("size", &shared.pool.size())
            .field("num_idle", &shared.pool.num_idle())
            .field("closed", &shared.pool.is_closed())
            .finish_non_exhaustive()
    }
}

impl<DB: IamDatabase> fmt::Debug for IamPoolBuilder<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IamPoolBuilder")
            .field("engine", &DB::ENGINE)
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("region", &self.region)
            .field("trust", &self.trust)
            .field("dsql", &self.dsql)
            .field("token_lifetime", &self.token_lifetime)
            .field("pool_options", &self.pool_options)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "mydb.cluster-abc.eu-west-1.rds.amazonaws.com";

    #[cfg(feature = "sqlx-0_9-postgres")]
    fn cache() -> TokenCache {
        use crate::generator::TokenGenerator;
        use aws_credential_types::Credentials;
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        TokenCache::new(TokenGenerator::new(credentials))
    }

    fn common<'a>(endpoint: &'a Endpoint, trust: &'a TrustStore) -> Common<'a> {
        Common {
            endpoint,
            user: "iam_user",
            database: Some("appdb"),
            trust,
        }
    }

    #[cfg(feature = "sqlx-0_9-postgres")]
    #[test]
    fn postgres_options_verify_the_signing_name_and_hold_no_password() {
        use sqlx::postgres::PgSslMode;
        let endpoint = Endpoint::new(HOST, 6432).unwrap();
        let trust = TrustStore::aws_default();
        let settings = engine::PgSettings {
            application_name: Some("billing".into()),
        };
        let o = <sqlx::Postgres as engine::sealed::IamDatabase>::base_options(
            common(&endpoint, &trust),
            &settings,
        );
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
        assert_eq!((o.get_host(), o.get_port()), (HOST, 6432));
        assert_eq!(o.get_username(), "iam_user");
        assert_eq!(o.get_database(), Some("appdb"));
        assert_eq!(o.get_application_name(), Some("billing"));
        let debug = format!("{o:?}");
        assert!(debug.contains("password: None"), "no password in the base");
    }

    #[cfg(feature = "sqlx-0_9-mysql")]
    #[test]
    fn mysql_options_verify_the_identity() {
        use sqlx::mysql::MySqlSslMode;
        let endpoint = Endpoint::new(HOST, 3306).unwrap();
        let trust = TrustStore::aws_default();
        let o = <sqlx::MySql as engine::sealed::IamDatabase>::base_options(
            common(&endpoint, &trust),
            &(),
        );
        assert!(matches!(o.get_ssl_mode(), MySqlSslMode::VerifyIdentity));
        assert_eq!((o.get_host(), o.get_port()), (HOST, 3306));
        assert_eq!(o.get_database(), Some("appdb"));
        let debug = format!("{o:?}");
        assert!(debug.contains("enable_cleartext_plugin: true"), "{debug}");
        assert!(debug.contains("password: None"), "no password in the base");
    }

    #[cfg(feature = "sqlx-0_9-postgres")]
    #[test]
    fn env_names_of_the_lambda_samples() {
        let vars: std::collections::HashMap<&str, &str> = [
            ("DBEndPoint", HOST),
            ("DatabaseName", "appdb"),
            ("DBUserName", "iam_user"),
            ("DBPort", "6432"),
        ]
        .into();
        let b =
            IamPgPool::builder_from_vars(cache(), |k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!((b.endpoint.host(), b.endpoint.port()), (HOST, 6432));
        assert_eq!(b.user, "iam_user");
        assert_eq!(b.database.as_deref(), Some("appdb"));
        let request = b.token_request().unwrap();
        assert_eq!(request.region().as_str(), "eu-west-1");
        assert_eq!(request.action(), Action::RdsConnect);
    }

    #[test]
    fn dsql_max_lifetime_is_at_most_the_recommended_one() {
        #[cfg(feature = "sqlx-0_9-postgres")]
        type Opts = PoolOptions<sqlx::Postgres>;
        #[cfg(not(feature = "sqlx-0_9-postgres"))]
        type Opts = PoolOptions<sqlx::MySql>;
        let short = Duration::from_secs(60);
        for (given, expected) in [
            (None, DSQL_RECOMMENDED_MAX_LIFETIME),
            (
                Some(Duration::from_secs(7200)),
                DSQL_RECOMMENDED_MAX_LIFETIME,
            ),
            (Some(short), short),
        ] {
            let o = dsql_max_lifetime(Opts::new().max_lifetime(given));
            assert_eq!(o.get_max_lifetime(), Some(expected));
        }
    }
}
