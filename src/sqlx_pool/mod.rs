pub(super) mod engine;
mod refresher;

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::sqlx;
use sqlx::pool::{Pool, PoolConnection, PoolOptions};

use crate::cache::TokenCache;
use crate::dsql::DSQL_RECOMMENDED_MAX_LIFETIME;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::login::{self, Honours, Login, LoginBuilder};
use crate::token::{IamAuthToken, TokenRequest};
use engine::ConnectOptions;

pub use engine::IamDatabase;
pub(crate) use engine::server_code;

/// The longest the refresher sleeps between two looks at the cache, whatever the refresh
/// point: a wall clock that jumps (or a test's clock) is noticed within this.
const MAX_REFRESH_WAIT: Duration = Duration::from_secs(60);

/// A sqlx pool (`PgPool` / `MySqlPool`, through `Deref`) whose new connections log in with
/// the current IAM token from a [`TokenCache`], over verified TLS. Build it with
/// [`IamPool::builder`]; see the [module docs](super) for what sqlx's own connects get.
///
/// Cheap to clone: clones share the pool and its refresher. The refresher lives as long as
/// the sqlx pool, not as long as the handles: a `Pool` cloned out of it and handed to
/// another owner (sea-orm, axum state) keeps fresh tokens after the last handle is dropped,
/// and **closing the pool** (`Pool::close`) is what ends it. Examples: `IamPgPool`,
/// `IamMySqlPool`.
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
    /// [`build`](IamPoolBuilder::build), see the [module docs](super)).
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
        });
        refresher::spawn(shared.clone());
        Ok(IamPool { shared })
    }
}

/// DSQL closes a connection 60 minutes after it opened: retire pooled ones before.
pub(super) fn dsql_max_lifetime<DB: sqlx::Database>(options: PoolOptions<DB>) -> PoolOptions<DB> {
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
pub(super) mod tests {
    use super::*;

    pub(in super::super) const HOST: &str = "mydb.cluster-abc.eu-west-1.rds.amazonaws.com";

    /// A login for `HOST:port` as `iam_user` to `appdb`.
    pub(in super::super) fn login(port: u16, application_name: Option<&str>) -> Login {
        let endpoint = Endpoint::new(HOST, port).unwrap();
        let mut settings = login::Settings::new(endpoint, "iam_user".to_owned());
        settings.database = Some("appdb".to_owned());
        settings.application_name = application_name.map(str::to_owned);
        settings
            .login(crate::Engine::Postgres, Honours::ALL)
            .unwrap()
    }
}
