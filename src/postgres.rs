//! PostgreSQL over verified TLS, logged in with IAM tokens (tokio-postgres + rustls).
//!
//! RDS asks for the password in cleartext (inside TLS) and compares it with a token it
//! verifies itself, so the token must only ever travel inside a TLS session whose certificate
//! chain and host name were checked: a passive observer of a plaintext login would hold a
//! credential valid for up to 15 minutes. [`PgConnector`] therefore always uses
//! `sslmode=require` (never `prefer`, which silently falls back to plaintext) with a rustls
//! configuration that verifies against the **signing hostname**, also when TCP goes to an IP
//! address or a tunnel (`hostaddr`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::Client;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::cache::TokenCache;
use crate::connector::{
    Attempt, DEFAULT_CONNECT_TIMEOUT, Login, dial_ips, login_with_one_retry, settings_from_vars,
};
use crate::endpoint::Endpoint;
use crate::error::{Engine, Error, Result};
use crate::request::TokenRequest;
use crate::tls::{TrustStore, client_config};
use crate::token::IamAuthToken;

/// Opens tokio-postgres connections to one endpoint as one user, each logged in with a
/// current IAM token from a [`TokenCache`], over TLS verified against the signing hostname.
///
/// Cheap to clone (clones share the configuration, the cache and the TLS setup); build it
/// once and use it for every connection, or hand it to a pool
/// ([`pool`](crate::pool)).
///
/// ```no_run
/// use rds_iam_auth::{Endpoint, PgConnector, TokenCache, TokenGenerator};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = TokenCache::new(TokenGenerator::from_env().await?);
/// let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?;
/// let connector = PgConnector::builder(cache, endpoint, "iam_user")
///     .database("appdb")
///     .application_name("billing")
///     .build()?;
/// let client = connector.connect().await?; // the connection task is spawned on tokio
/// let row = client.query_one("SELECT current_database()", &[]).await?;
/// # let _ = row;
/// # Ok(()) }
/// ```
///
/// When the server rejects a token (SQLSTATE `28000`/`28P01`), the connector tells the cache
/// to forget it, signs a fresh one and tries once more; a second rejection is
/// [`Error::AuthenticationRejected`], which lists the likely causes.
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PgConnector {
    inner: Arc<Inner>,
}

struct Inner {
    cache: TokenCache,
    request: TokenRequest,
    endpoint: Endpoint,
    /// Everything but the password (added per attempt) and the resolved `hostaddr`.
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    connect_timeout: Duration,
}

/// Configures a [`PgConnector`]; see [`PgConnector::builder`].
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PgConnectorBuilder {
    cache: TokenCache,
    endpoint: Endpoint,
    user: String,
    database: Option<String>,
    application_name: Option<String>,
    region: Option<String>,
    connect_timeout: Duration,
    trust: TrustStore,
}

impl PgConnector {
    /// A builder for connections to `endpoint` as `user`, with tokens from `cache`.
    ///
    /// The endpoint's hostname is what the token is signed for and what TLS verifies; set
    /// [`Endpoint::with_dial_address`] to connect through a tunnel or to an IP address.
    /// Unix sockets cannot be expressed: a token never leaves this process without TLS.
    pub fn builder(
        cache: TokenCache,
        endpoint: Endpoint,
        user: impl Into<String>,
    ) -> PgConnectorBuilder {
        PgConnectorBuilder {
            cache,
            endpoint,
            user: user.into(),
            database: None,
            application_name: None,
            region: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            trust: TrustStore::aws_default(),
        }
    }

    /// A builder configured from the environment variables `DBEndPoint` (`host` or
    /// `host:port`, port 5432 by default), `DatabaseName` (optional) and `DBUserName`.
    pub fn builder_from_env(cache: TokenCache) -> Result<PgConnectorBuilder> {
        builder_from_vars(cache, |name| std::env::var(name).ok())
    }

    /// Opens a connection, spawns its connection task on the current tokio runtime and
    /// returns the client. The task ends when the client is dropped or the server closes
    /// the connection.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub async fn connect(&self) -> Result<Client> {
        let (client, _task) = self.connect_with_task().await?;
        Ok(client)
    }

    /// Like [`connect`](Self::connect), and also returns the spawned connection task, for
    /// callers that want to know when the connection ends (pools do).
    pub async fn connect_with_task(&self) -> Result<(Client, JoinHandle<()>)> {
        let inner = &*self.inner;
        login_with_one_retry(&inner.cache, &inner.request, self)
            .await
            .map_err(|a| {
                a.into_error(
                    Engine::Postgres,
                    &inner.request,
                    &inner.endpoint,
                    inner.connect_timeout,
                    |endpoint, source| Error::Postgres { endpoint, source },
                )
            })
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
}

impl Login for PgConnector {
    type Connection = (Client, JoinHandle<()>);
    type DriverError = tokio_postgres::Error;

    async fn attempt(
        &self,
        token: &IamAuthToken,
    ) -> Result<(Client, JoinHandle<()>), Attempt<tokio_postgres::Error>> {
        let inner = &*self.inner;
        let mut config = inner.config.clone();
        resolve_dial_address(&inner.endpoint, &mut config).await?;
        config.password(token.expose());
        let connecting = config.connect(inner.tls.clone());
        let result = tokio::time::timeout(inner.connect_timeout, connecting).await;
        // The config held a copy of the token: gone before anything else happens.
        drop(config);
        match result {
            Err(_elapsed) => Err(Attempt::Timeout),
            Ok(Err(e)) if is_rejected_login(&e) => Err(Attempt::Rejected(e)),
            Ok(Err(e)) => Err(Attempt::Failed(e)),
            Ok(Ok((client, connection))) => {
                let task = tokio::spawn(async move {
                    // Errors here mean the connection ended; the client reports them.
                    let _ = connection.await;
                });
                Ok((client, task))
            }
        }
    }
}

/// `28P01` (invalid_password) is what RDS answers for a bad or expired token; `28000`
/// (invalid_authorization_specification) for a user not allowed to log in this way.
fn is_rejected_login(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::INVALID_PASSWORD
            || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    )
}

/// tokio-postgres takes the TLS name from `host` and the TCP address from `hostaddr`.
async fn resolve_dial_address(
    endpoint: &Endpoint,
    config: &mut tokio_postgres::Config,
) -> Result<(), Attempt<tokio_postgres::Error>> {
    config.port(endpoint.dial_address().1);
    let Some(ips) = dial_ips(endpoint).await? else {
        return Ok(());
    };
    // One `host` per `hostaddr`: tokio-postgres pairs them by position and tries each in turn.
    let mut it = ips.into_iter();
    if let Some(first) = it.next() {
        config.hostaddr(first);
    }
    for ip in it {
        config.host(endpoint.host()).hostaddr(ip);
    }
    Ok(())
}

impl PgConnectorBuilder {
    /// The database to connect to (default: the server's, which is the user name).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// `application_name`, shown in `pg_stat_activity` and the server log.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// The region to sign for, when it cannot be inferred from the hostname.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The port: the signing port, and the dialled one unless a dial address says otherwise.
    pub fn port(mut self, port: u16) -> Result<Self> {
        let mut endpoint = Endpoint::new(self.endpoint.host(), port)?;
        if self.endpoint.is_tunnelled() {
            let (h, p) = self.endpoint.dial_address();
            endpoint = endpoint.with_dial_address(h, p)?;
        }
        self.endpoint = endpoint;
        Ok(self)
    }

    /// The database user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// How long one attempt (TCP connect, TLS handshake, login) may take; default
    /// [`DEFAULT_CONNECT_TIMEOUT`]. A rejected token's retry gets the same again.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Which CAs to trust (default [`TrustStore::aws_default`]). Chain and host name are
    /// always verified.
    pub fn trust(mut self, trust: TrustStore) -> Self {
        self.trust = trust;
        self
    }

    /// Validates everything and builds the connector (and its TLS configuration, once).
    pub fn build(self) -> Result<PgConnector> {
        let mut request = TokenRequest::rds(&self.endpoint, self.user.clone());
        if let Some(region) = self.region {
            request = request.region(region);
        }
        let request = request.build()?;

        let mut config = tokio_postgres::Config::new();
        config
            // The TLS name. The port (and `hostaddr` when tunnelled) are added per connection:
            // tokio-postgres appends to these lists rather than replacing them.
            .host(self.endpoint.host())
            .user(&self.user)
            // `require`, never `prefer`: `prefer` continues in plaintext when the server (or
            // whoever answers in its place) declines TLS, and the token would follow.
            .ssl_mode(SslMode::Require)
            .connect_timeout(self.connect_timeout);
        if let Some(db) = &self.database {
            config.dbname(db);
        }
        if let Some(name) = &self.application_name {
            config.application_name(name);
        }
        let tls = MakeRustlsConnect::new((*client_config(&self.trust)).clone());
        Ok(PgConnector {
            inner: Arc::new(Inner {
                cache: self.cache,
                request,
                endpoint: self.endpoint,
                config,
                tls,
                connect_timeout: self.connect_timeout,
            }),
        })
    }
}

fn builder_from_vars(
    cache: TokenCache,
    var: impl Fn(&str) -> Option<String>,
) -> Result<PgConnectorBuilder> {
    let settings = settings_from_vars(Engine::Postgres, 5432, var)?;
    let mut builder = PgConnector::builder(cache, settings.endpoint, settings.user);
    if let Some(db) = settings.database {
        builder = builder.database(db);
    }
    Ok(builder)
}

impl fmt::Debug for PgConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("PgConnector")
            .field("endpoint", &inner.endpoint)
            .field("user", &inner.request.user())
            .field("region", &inner.request.region().as_str())
            .field("database", &inner.config.get_dbname())
            .field("application_name", &inner.config.get_application_name())
            .field("connect_timeout", &inner.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PgConnectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnectorBuilder")
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("application_name", &self.application_name)
            .field("region", &self.region)
            .field("connect_timeout", &self.connect_timeout)
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::TokenGenerator;
    use std::collections::HashMap;

    fn cache() -> TokenCache {
        TokenCache::new(TokenGenerator::builder().build())
    }

    fn from(vars: &[(&str, &str)]) -> Result<PgConnectorBuilder> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        builder_from_vars(cache(), |k| map.get(k).cloned())
    }

    const HOST: &str = "mydb.cluster-abc.eu-west-1.rds.amazonaws.com";

    #[test]
    fn env_names_of_the_lambda_samples() {
        let c = from(&[
            ("DBEndPoint", HOST),
            ("DatabaseName", "appdb"),
            ("DBUserName", "iam_user"),
        ])
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(c.endpoint().host(), HOST);
        assert_eq!(c.endpoint().port(), 5432);
        assert_eq!(c.token_request().user(), "iam_user");
        assert_eq!(c.token_request().region().as_str(), "eu-west-1");
        assert_eq!(c.inner.config.get_dbname(), Some("appdb"));

        let c = from(&[("DBEndPoint", &format!("{HOST}:6432")), ("DBUserName", "u")])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.endpoint().port(), 6432);
    }

    #[test]
    fn env_errors_name_the_variable() {
        let e = from(&[("DBUserName", "u")]).unwrap_err();
        assert!(e.to_string().contains("DBEndPoint"), "{e}");
        let e = from(&[("DBEndPoint", HOST)]).unwrap_err();
        assert!(e.to_string().contains("DBUserName"), "{e}");
        let e = from(&[("DBEndPoint", "/var/run/postgresql"), ("DBUserName", "u")]).unwrap_err();
        assert!(e.to_string().contains("Unix socket"), "{e}");
        let e = from(&[("DBEndPoint", "10.0.0.1"), ("DBUserName", "u")]).unwrap_err();
        assert!(matches!(e, Error::IpAddressAsSigningHost { .. }), "{e:?}");
    }

    #[test]
    fn always_require_tls_and_verify_the_signing_name() {
        let endpoint = Endpoint::new(HOST, 5432)
            .unwrap()
            .with_dial_address("127.0.0.1", 15432)
            .unwrap();
        let c = PgConnector::builder(cache(), endpoint, "u")
            .application_name("app")
            .connect_timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let cfg = &c.inner.config;
        assert_eq!(cfg.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            cfg.get_hosts(),
            [tokio_postgres::config::Host::Tcp(HOST.to_owned())]
        );
        assert_eq!(cfg.get_password(), None);
        assert_eq!(cfg.get_application_name(), Some("app"));
        assert_eq!(cfg.get_connect_timeout(), Some(&Duration::from_secs(3)));
    }

    #[test]
    fn port_keeps_the_dial_address() {
        let endpoint = Endpoint::new(HOST, 5432)
            .unwrap()
            .with_dial_address("127.0.0.1", 15432)
            .unwrap();
        let b = PgConnector::builder(cache(), endpoint, "u")
            .port(5433)
            .unwrap();
        let c = b.build().unwrap();
        assert_eq!(c.endpoint().port(), 5433);
        assert_eq!(c.endpoint().dial_address(), ("127.0.0.1", 15432));
        assert_eq!(c.token_request().port(), 5433);
    }

    #[test]
    fn debug_shows_no_secret() {
        let endpoint = Endpoint::new(HOST, 5432).unwrap();
        let b = PgConnector::builder(cache(), endpoint, "u");
        let s = format!("{b:?}");
        assert!(s.contains(HOST), "{s}");
        let s = format!("{:?}", b.build().unwrap());
        assert!(s.contains("PgConnector"), "{s}");
        assert!(!s.to_lowercase().contains("password"), "{s}");
    }
}
