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
//!   an error of kind [`ErrorKind::Rejected`](crate::ErrorKind::Rejected), with the likely causes.
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
//! are the builder's [`TrustStore`](crate::TrustStore) (the AWS bundle by default), handed to sqlx as PEM.
//! **sqlx always trusts the webpki (Mozilla) roots too**, besides those: it offers no way to
//! restrict trust to a given store (the crate's own connectors trust the store only).
//!
//! sqlx verifies the certificate against the host it dials, so an [`Endpoint`] with a dial
//! address (a tunnel) is refused at build (setting `dial_address`): make the endpoint's
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
use crate::dsql::DSQL_RECOMMENDED_MAX_LIFETIME;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::login::{self, Honours, Login, LoginBuilder};
use crate::token::{IamAuthToken, TokenRequest};
use engine::ConnectOptions;

pub use engine::IamDatabase;
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
/// let cache = TokenCache::new(TokenGenerator::from_env());
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
///
/// Its methods are [`IamPool`]'s (this page shows them only with JavaScript):
/// [`builder`](IamPool::builder), [`builder_from_env`](IamPool::builder_from_env),
/// [`builder_from_vars`](IamPool::builder_from_vars), [`acquire`](IamPool::acquire),
/// [`pool`](IamPool::pool) (also through `Deref`: every `sqlx::Pool` method),
/// [`cache`](IamPool::cache), [`token_request`](IamPool::token_request),
/// [`endpoint`](IamPool::endpoint).
#[cfg(feature = "sqlx-0_9-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx-0_9-postgres")))]
pub type IamPgPool = IamPool<sqlx::Postgres>;

/// A sqlx 0.9 `MySqlPool` whose new connections log in with current IAM tokens.
///
/// Its methods are [`IamPool`]'s (this page shows them only with JavaScript):
/// [`builder`](IamPool::builder), [`builder_from_env`](IamPool::builder_from_env),
/// [`builder_from_vars`](IamPool::builder_from_vars), [`acquire`](IamPool::acquire),
/// [`pool`](IamPool::pool) (also through `Deref`: every `sqlx::Pool` method),
/// [`cache`](IamPool::cache), [`token_request`](IamPool::token_request),
/// [`endpoint`](IamPool::endpoint).
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
    login: Login,
    /// Everything but the password (never printed: sqlx's `Debug` would show a password).
    base: ConnectOptions<DB>,
    /// The token in the pool's connect options now. A tokio mutex, held across the cache
    /// call: two installers never put an older token back over a newer one.
    installed: tokio::sync::Mutex<IamAuthToken>,
    refresher: Mutex<Option<AbortHandle>>,
}

/// Configures an [`IamPool`]: the [`LoginBuilder`] of sqlx pools; see [`IamPool::builder`].
///
/// Its setters are [`LoginBuilder`]'s: [`database`](crate::login::LoginBuilder::database), [`region`](crate::login::LoginBuilder::region), [`trust`](crate::login::LoginBuilder::trust),
/// [`service`](crate::login::LoginBuilder::service), [`token_lifetime`](crate::login::LoginBuilder::token_lifetime),
/// [`retry_jitter`](crate::login::LoginBuilder::retry_jitter),
/// and [`application_name`](crate::login::LoginBuilder::application_name) for PostgreSQL (a connect timeout, a
/// login bound, a dead-peer timeout and a dial address are refused at build: sqlx has none of
/// them); then [`pool_options`](LoginBuilder::pool_options), [`build`](LoginBuilder::build)
/// and [`build_lazy`](LoginBuilder::build_lazy).
pub type IamPoolBuilder<DB> = LoginBuilder<IamPool<DB>>;

/// What only a sqlx pool's builder holds.
pub struct PoolSetup<DB: IamDatabase> {
    cache: TokenCache,
    pool_options: Option<PoolOptions<DB>>,
}

impl<DB: IamDatabase> fmt::Debug for PoolSetup<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolSetup")
            .field("pool_options", &self.pool_options)
            .finish_non_exhaustive()
    }
}

impl<DB: IamDatabase> login::FrontEnd for IamPool<DB> {}

impl<DB: IamDatabase> login::sealed::FrontEnd for IamPool<DB> {
    type Setup = PoolSetup<DB>;
    const BUILDER: &'static str = "IamPoolBuilder";
    /// sqlx dials the host it verifies, bounds connections by its own acquire timeout, and
    /// opens connections of its own accord (no bound on logins could hold them).
    const HONOURS: Honours = Honours {
        dial_address: false,
        connect_timeout: false,
        max_concurrent_logins: false,
        dead_peer_timeout: false,
    };
}

#[cfg(feature = "sqlx-0_9-postgres")]
impl login::sealed::PostgresFrontEnd for IamPool<sqlx::Postgres> {}

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
        LoginBuilder::new(DB::ENGINE, endpoint, user.into(), PoolSetup::new(cache))
    }

    /// A builder configured from the environment variables of AWS's Lambda samples, as
    /// [`Connector::builder_from_env`](crate::connector::Connector::builder_from_env) reads them:
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
        LoginBuilder::from_vars(DB::ENGINE, PoolSetup::new(cache), var)
    }

    /// The sqlx pool (also reached through `Deref`).
    pub fn pool(&self) -> &Pool<DB> {
        &self.shared.pool
    }

    /// A connection from the pool, after making sure the token a new connection would log
    /// in with is the cache's current one. When the server rejects it, the token is
    /// invalidated, a fresh one installed and the acquire retried once (after a random wait
    /// of up to the [`retry_jitter`](LoginBuilder::retry_jitter)).
    ///
    /// # Errors
    /// [`ErrorKind::Rejected`](crate::ErrorKind::Rejected) when the server rejected the
    /// token twice; [`ErrorKind::Connect`](crate::ErrorKind::Connect) (or `Tls`) for anything
    /// else sqlx reports (TCP, TLS, a server without TLS, `PoolTimedOut`, `PoolClosed`; the
    /// `sqlx::Error` is the source); the cache's errors (credentials, signing), only when no
    /// connection could be had without a new token either.
    ///
    /// # Bounds
    /// Each attempt (the cache's token, then sqlx's acquire) ends within the pool's
    /// `acquire_timeout`, the retry too: at most twice that in all, and once more after a
    /// credentials failure (the acquire that needs no new token).
    ///
    /// # A credentials outage
    /// Only a new connection needs a token. When none can be had (the credentials provider
    /// fails or hangs), the acquire still goes to sqlx, which hands out an idle connection
    /// or logs a new one in with the token installed last (while it is still valid); the
    /// credentials error is returned only if that fails too.
    pub async fn acquire(&self) -> Result<PoolConnection<DB>> {
        let shared = &*self.shared;
        let outcome = shared
            .login
            .run(&shared.cache, |token| async move {
                shared.install(token).await;
                shared
                    .pool
                    .acquire()
                    .await
                    .map_err(|e| shared.sqlx_error(e))
            })
            .await;
        match outcome {
            Err(error) if error.is_credentials() => {
                tracing::warn!(
                    error = %error.report(),
                    "no new IAM token; acquiring without one (an idle connection, or the token installed last)"
                );
                shared.pool.acquire().await.map_err(|_| error)
            }
            outcome => outcome,
        }
    }

    /// The token cache.
    pub fn cache(&self) -> &TokenCache {
        &self.shared.cache
    }

    /// The token request (user, region, endpoint) the pool asks the cache for.
    pub fn token_request(&self) -> &TokenRequest {
        &self.shared.login.request
    }

    /// The endpoint connections go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.shared.login.endpoint
    }
}

impl<DB: IamDatabase> Shared<DB> {
    /// Installs the cache's current token in the pool unless it is the one there already;
    /// returns it.
    async fn install_current(&self) -> Result<IamAuthToken> {
        let mut installed = self.installed.lock().await;
        let token = self.cache.get(&self.login.request).await?;
        self.install_locked(&mut installed, &token);
        Ok(token)
    }

    /// The crate's error for sqlx's `error` (a rejected token when the server refused it).
    fn sqlx_error(&self, error: sqlx::Error) -> crate::Error {
        let rejected = DB::is_rejected(&error);
        self.login.driver_error(error, rejected)
    }

    /// Installs `token` in the pool unless it is the one there already, or older than it
    /// (the refresher may have installed a newer one since the caller took it).
    async fn install(&self, token: IamAuthToken) {
        let mut installed = self.installed.lock().await;
        if token.signed_at() >= installed.signed_at() {
            self.install_locked(&mut installed, &token);
        }
    }

    fn install_locked(&self, installed: &mut IamAuthToken, token: &IamAuthToken) {
        if !installed.same_token(token) {
            self.pool
                .set_connect_options(DB::with_password(&self.base, token.expose()));
            *installed = token.clone();
            tracing::debug!(
                host = self.login.request.host(),
                user = self.login.request.user(),
                "installed a new IAM token in the sqlx pool"
            );
        }
    }

    /// How long the refresher may sleep: until the cache's refresh point (on the cache's
    /// clock), at least a second (no spinning while another caller refreshes), at most
    /// [`MAX_REFRESH_WAIT`].
    fn until_refresh(&self) -> Duration {
        let now = self.cache.generator().clock().now();
        self.cache
            .refresh_at(&self.login.request)
            .and_then(|at| at.duration_since(now).ok())
            .unwrap_or_default()
            .clamp(Duration::from_secs(1), MAX_REFRESH_WAIT)
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

impl<DB: IamDatabase> PoolSetup<DB> {
    fn new(cache: TokenCache) -> Self {
        Self {
            cache,
            pool_options: None,
        }
    }
}

impl<DB: IamDatabase> IamPoolBuilder<DB> {
    /// sqlx's pool options (`PgPoolOptions` / `MySqlPoolOptions`): sizes, timeouts,
    /// callbacks. Default: `PoolOptions::new()`. For Aurora DSQL, a `max_lifetime` over
    /// [`DSQL_RECOMMENDED_MAX_LIFETIME`] (or none) is lowered to it: DSQL closes connections
    /// after 60 minutes.
    pub fn pool_options(mut self, options: PoolOptions<DB>) -> Self {
        self.setup.pool_options = Some(options);
        self
    }

    /// Validates everything, installs a token, starts the refresher and proves that a login
    /// works: one connection, opened directly with the pool's options (with the rejection
    /// retry), then closed.
    ///
    /// Directly, not through the pool: sqlx's pool retries a refused connection until its
    /// acquire timeout (30 s by default) and then says only "pool timed out"; a direct login
    /// reports the cause (nothing listening, an untrusted certificate, a rejected token) in
    /// the time one login takes. The pool opens its own connections at its first acquires.
    ///
    /// # Errors
    /// Those of [`build_lazy`](Self::build_lazy), and of the login: as
    /// [`IamPool::acquire`]'s.
    pub async fn build(self) -> Result<IamPool<DB>> {
        let pool = self.build_lazy().await?;
        let shared = &*pool.shared;
        shared
            .login
            .run(&shared.cache, |token| async move {
                shared.install(token.clone()).await;
                let options = DB::with_password(&shared.base, token.expose());
                let connection = <DB::Connection as sqlx::Connection>::connect_with(&options)
                    .await
                    .map_err(|e| shared.sqlx_error(e))?;
                // The server learns the connection is over; a failure to say so is not the
                // login's.
                let _ = sqlx::Connection::close(connection).await;
                Ok(())
            })
            .await?;
        Ok(pool)
    }

    /// Like [`build`](Self::build), without opening a connection (sqlx's `connect_lazy`):
    /// the first login happens at the first acquire (or sqlx's `min_connections` upkeep).
    /// Signs (or takes from the cache) the first token.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput): an endpoint with a dial
    /// address, a connect timeout or a login bound (sqlx has none of them), a region that is
    /// invalid or cannot be inferred, an invalid user name, a token lifetime beyond the
    /// service's maximum, a DSQL endpoint with MySQL, an empty trust store; the cache's
    /// errors for the first token.
    pub async fn build_lazy(self) -> Result<IamPool<DB>> {
        let PoolSetup {
            cache,
            pool_options,
        } = self.setup;
        let mut pool_options = pool_options.unwrap_or_default();
        let login = self
            .settings
            .login(
                DB::ENGINE,
                <IamPool<DB> as login::sealed::FrontEnd>::HONOURS,
            )?
            // Each attempt within sqlx's acquire timeout, the retry's wait included.
            .bound_attempts(pool_options.get_acquire_timeout());
        if login.is_dsql() {
            pool_options = dsql_max_lifetime(pool_options);
        }
        let base = DB::base_options(&login);
        let token = cache.get(&login.request).await?;
        let pool = pool_options.connect_lazy_with(DB::with_password(&base, token.expose()));
        let shared = Arc::new(Shared {
            pool,
            cache,
            login,
            base,
            installed: tokio::sync::Mutex::new(token),
            refresher: Mutex::new(None),
        });
        let task = refresher::spawn(Arc::downgrade(&shared));
        *shared.refresher.lock().expect("not poisoned: just created") = Some(task);
        Ok(IamPool { shared })
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
            .field("endpoint", &shared.login.endpoint)
            .field("user", &shared.login.request.user())
            .field("region", &shared.login.request.region().as_str())
            .field("action", &shared.login.request.action())
            .field("size", &shared.pool.size())
            .field("num_idle", &shared.pool.num_idle())
            .field("closed", &shared.pool.is_closed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "mydb.cluster-abc.eu-west-1.rds.amazonaws.com";

    #[cfg(feature = "sqlx-0_9-postgres")]
    fn cache() -> TokenCache {
        use crate::token::TokenGenerator;
        use aws_credential_types::Credentials;
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        TokenCache::new(TokenGenerator::new(credentials))
    }

    fn login(port: u16, application_name: Option<&str>) -> Login {
        let endpoint = Endpoint::new(HOST, port).unwrap();
        let mut settings = login::Settings::new(endpoint, "iam_user".to_owned());
        settings.database = Some("appdb".to_owned());
        settings.application_name = application_name.map(str::to_owned);
        settings
            .login(crate::Engine::Postgres, Honours::ALL)
            .unwrap()
    }

    #[cfg(feature = "sqlx-0_9-postgres")]
    #[test]
    fn postgres_options_verify_the_signing_name_and_hold_no_password() {
        use sqlx::postgres::PgSslMode;
        let o = <sqlx::Postgres as engine::sealed::IamDatabase>::base_options(&login(
            6432,
            Some("billing"),
        ));
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
        let o = <sqlx::MySql as engine::sealed::IamDatabase>::base_options(&login(3306, None));
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
        let s = &b.settings;
        assert_eq!((s.endpoint.host(), s.endpoint.port()), (HOST, 6432));
        assert_eq!(s.user, "iam_user");
        assert_eq!(s.database.as_deref(), Some("appdb"));
        let request = s.token_request().unwrap();
        assert_eq!(request.region().as_str(), "eu-west-1");
        assert_eq!(request.action(), crate::token::Action::RdsConnect);
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
