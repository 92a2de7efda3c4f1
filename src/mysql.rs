//! MySQL, Aurora MySQL and MariaDB over verified TLS, logged in with IAM tokens (mysql_async +
//! rustls).
//!
//! RDS switches the client to the `mysql_clear_password` plugin and compares the password
//! with a token it verifies itself, so the token travels as plain text in the protocol: it
//! must only ever be sent inside a TLS session whose certificate chain and host name were
//! checked. [`MySqlConnector`] guarantees that by construction:
//! - TLS options are always set, so mysql_async asks for TLS right after the server's
//!   greeting and fails with `NoClientSslFlagFromServer` when the greeting lacks the
//!   `CLIENT_SSL` capability, before any password (or password hash) is written;
//! - the certificate is verified against the **signing hostname** (also when TCP goes to a
//!   tunnel or an IP address), with this crate's [`TrustStore`] only: mysql_async's built-in
//!   webpki roots are disabled;
//! - the cleartext plugin is enabled only together with those TLS options, and the switch
//!   to the server's Unix socket (`prefer_socket`, which would skip TLS) is off.
//!
//! mysql_async builds its rustls configuration itself, from the process-default crypto
//! provider: [`MySqlConnectorBuilder::build`] installs aws-lc-rs as that default if none is.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::{Conn, Opts, OptsBuilder, SslOpts};

use crate::cache::TokenCache;
use crate::connector::{
    Attempt, DEFAULT_CONNECT_TIMEOUT, Login, dial_ips, login_with_one_retry, settings_from_vars,
};
use crate::endpoint::Endpoint;
use crate::error::{Engine, Error, Result};
use crate::request::TokenRequest;
use crate::tls::{TrustStore, install_default_crypto_provider};
use crate::token::IamAuthToken;

/// The port RDS for MySQL and Aurora MySQL listen on unless configured otherwise.
const DEFAULT_PORT: u16 = 3306;

/// `ER_ACCESS_DENIED_ERROR`: what RDS answers for a bad, expired or misdirected token, and
/// for a user that is not set up for IAM.
const ER_ACCESS_DENIED_ERROR: u16 = 1045;

/// Opens mysql_async connections to one endpoint as one user, each logged in with a current
/// IAM token from a [`TokenCache`], over TLS verified against the signing hostname.
///
/// Cheap to clone (clones share the configuration, the cache and the TLS setup); build it
/// once and use it for every connection, or hand it to a pool ([`pool`](crate::pool)).
/// mysql_async's own `Pool` cannot be used: it logs every connection in with one fixed
/// password, and tokens expire after 15 minutes.
///
/// ```no_run
/// use rds_iam_auth::mysql_async::prelude::*;
/// use rds_iam_auth::{Endpoint, MySqlConnector, TokenCache, TokenGenerator};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = TokenCache::new(TokenGenerator::from_env().await?);
/// let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 3306)?;
/// let connector = MySqlConnector::builder(cache, endpoint, "iam_user")
///     .database("appdb")
///     .build()?;
/// let mut conn = connector.connect().await?;
/// let db: Option<String> = conn.query_first("SELECT database() AS database_name").await?;
/// # let _ = db;
/// # Ok(()) }
/// ```
///
/// When the server rejects a token (error 1045), the connector tells the cache to forget
/// it, signs a fresh one and tries once more; a second rejection is
/// [`Error::AuthenticationRejected`], which lists the likely causes.
///
/// Connections come as [`MySqlConnection`]: a `mysql_async::Conn` (through `Deref`) whose
/// `Debug` leaves out the connection options, which hold the token.
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub struct MySqlConnector {
    inner: Arc<Inner>,
}

struct Inner {
    cache: TokenCache,
    request: TokenRequest,
    endpoint: Endpoint,
    /// Everything but the password (added per attempt) and the dialled IPs of a tunnel.
    /// Its TLS options carry mysql_async's cached TLS connector: built on the first
    /// connection, shared by every later one (and by clones of the options).
    opts: Opts,
    connect_timeout: Duration,
}

/// Configures a [`MySqlConnector`]; see [`MySqlConnector::builder`].
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub struct MySqlConnectorBuilder {
    cache: TokenCache,
    endpoint: Endpoint,
    user: String,
    database: Option<String>,
    region: Option<String>,
    connect_timeout: Duration,
    trust: TrustStore,
}

impl MySqlConnector {
    /// A builder for connections to `endpoint` as `user`, with tokens from `cache`.
    ///
    /// The endpoint's hostname is what the token is signed for and what TLS verifies; set
    /// [`Endpoint::with_dial_address`] to connect through a tunnel or to an IP address.
    /// Unix sockets cannot be expressed: a token never leaves this process without TLS.
    pub fn builder(
        cache: TokenCache,
        endpoint: Endpoint,
        user: impl Into<String>,
    ) -> MySqlConnectorBuilder {
        MySqlConnectorBuilder {
            cache,
            endpoint,
            user: user.into(),
            database: None,
            region: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            trust: TrustStore::aws_default(),
        }
    }

    /// A builder configured from the environment variables `DBEndPoint` (`host` or
    /// `host:port`, port 3306 by default), `DatabaseName` (optional) and `DBUserName`.
    pub fn builder_from_env(cache: TokenCache) -> Result<MySqlConnectorBuilder> {
        builder_from_vars(cache, |name| std::env::var(name).ok())
    }

    /// Opens a connection logged in with the cache's current token (one retry with a fresh
    /// token if the server rejects it).
    pub async fn connect(&self) -> Result<MySqlConnection> {
        let inner = &*self.inner;
        login_with_one_retry(&inner.cache, &inner.request, self)
            .await
            .map(MySqlConnection)
            .map_err(|a| {
                a.into_error(
                    Engine::MySql,
                    &inner.request,
                    &inner.endpoint,
                    inner.connect_timeout,
                    |endpoint, source| Error::MySql { endpoint, source },
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

/// A MySQL connection logged in with an IAM token: a `mysql_async::Conn` (use it through
/// `Deref`/`DerefMut`, e.g. `conn.query_first(..)`) whose `Debug` shows no secret.
///
/// mysql_async keeps the password, here the token, in the connection's options and prints
/// them in `Conn`'s own `Debug`; this wrapper prints the connection id and server version
/// only. [`into_inner`](Self::into_inner) gives the `Conn` itself: do not log that with `{:?}`.
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub struct MySqlConnection(Conn);

impl MySqlConnection {
    /// Closes the connection gracefully (`COM_QUIT`), as `Conn::disconnect` does.
    pub async fn disconnect(self) -> std::result::Result<(), mysql_async::Error> {
        self.0.disconnect().await
    }

    /// The `mysql_async::Conn` itself (its `Debug` prints the token).
    pub fn into_inner(self) -> Conn {
        self.0
    }
}

impl std::ops::Deref for MySqlConnection {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.0
    }
}

impl std::ops::DerefMut for MySqlConnection {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.0
    }
}

impl fmt::Debug for MySqlConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor, patch) = self.0.server_version();
        f.debug_struct("MySqlConnection")
            .field("id", &self.0.id())
            .field("server_version", &format_args!("{major}.{minor}.{patch}"))
            .finish_non_exhaustive()
    }
}

impl Login for MySqlConnector {
    type Connection = Conn;
    type DriverError = mysql_async::Error;

    async fn attempt(&self, token: &IamAuthToken) -> Result<Conn, Attempt<mysql_async::Error>> {
        let inner = &*self.inner;
        let ips = dial_ips(&inner.endpoint).await?;
        // The host stays the signing hostname (the TLS name); a tunnel only adds the IPs
        // that TCP goes to.
        let opts = OptsBuilder::from_opts(inner.opts.clone())
            .resolved_ips(ips)
            .pass(Some(token.expose()));
        let result = tokio::time::timeout(inner.connect_timeout, Conn::new(opts)).await;
        match result {
            Err(_elapsed) => Err(Attempt::Timeout),
            Ok(Err(e)) if is_rejected_login(&e) => Err(Attempt::Rejected(e)),
            Ok(Err(e)) => Err(Attempt::Failed(e)),
            Ok(Ok(conn)) => Ok(conn),
        }
    }
}

fn is_rejected_login(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == ER_ACCESS_DENIED_ERROR)
}

impl MySqlConnectorBuilder {
    /// The default database (`USE`); none by default.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
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
    /// always verified; nothing else is trusted (not mysql_async's built-in roots).
    pub fn trust(mut self, trust: TrustStore) -> Self {
        self.trust = trust;
        self
    }

    /// Validates everything and builds the connector.
    ///
    /// Installs aws-lc-rs as the process-default rustls crypto provider if none is
    /// (see [`install_default_crypto_provider`]): mysql_async builds its TLS configuration
    /// from that default.
    pub fn build(self) -> Result<MySqlConnector> {
        let mut request = TokenRequest::rds(&self.endpoint, self.user.clone());
        if let Some(region) = self.region {
            request = request.region(region);
        }
        let request = request.build()?;
        install_default_crypto_provider();
        let opts = base_opts(&self.endpoint, &self.user, self.database, &self.trust);
        Ok(MySqlConnector {
            inner: Arc::new(Inner {
                cache: self.cache,
                request,
                endpoint: self.endpoint,
                opts,
                connect_timeout: self.connect_timeout,
            }),
        })
    }
}

/// Everything the connection needs but the password and a tunnel's IPs.
fn base_opts(
    endpoint: &Endpoint,
    user: &str,
    database: Option<String>,
    trust: &TrustStore,
) -> Opts {
    // DER, one certificate per entry: mysql_async reads a buffer without a PEM block as DER.
    // The embedded AWS certificates are borrowed from a static: mysql_async clones its
    // options, and this list with them, at every connection.
    let roots: Vec<_> = trust
        .certificates()
        .iter()
        .map(|c| match c {
            Cow::Borrowed(der) => (*der).into(),
            Cow::Owned(der) => der.clone().into(),
        })
        .collect();
    let ssl = SslOpts::default()
        .with_root_certs(roots)
        // Only the TrustStore: mysql_async would otherwise add the webpki (Mozilla) roots.
        .with_disable_built_in_roots(true);
    OptsBuilder::default()
        // The TLS name (mysql_async verifies the certificate against it); the port is the
        // dialled one, which is the signing port unless tunnelled.
        .ip_or_hostname(endpoint.host())
        .tcp_port(endpoint.dial_address().1)
        .user(Some(user))
        .db_name(database)
        // Set TLS options make TLS mandatory: a greeting without CLIENT_SSL is an error
        // before the handshake response (which carries the password) is written.
        .ssl_opts(ssl)
        // RDS switches to `mysql_clear_password`: the token as is, so only with TLS above.
        .enable_cleartext_plugin(true)
        // After login mysql_async would reconnect through the server's Unix socket when
        // the server is local: a second login, without TLS.
        .prefer_socket(false)
        .socket(None::<String>)
        .into()
}

fn builder_from_vars(
    cache: TokenCache,
    var: impl Fn(&str) -> Option<String>,
) -> Result<MySqlConnectorBuilder> {
    let settings = settings_from_vars(Engine::MySql, DEFAULT_PORT, var)?;
    let mut builder = MySqlConnector::builder(cache, settings.endpoint, settings.user);
    if let Some(db) = settings.database {
        builder = builder.database(db);
    }
    Ok(builder)
}

impl fmt::Debug for MySqlConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not `Opts`: mysql_async's `Debug` for it prints the password field.
        let inner = &*self.inner;
        f.debug_struct("MySqlConnector")
            .field("endpoint", &inner.endpoint)
            .field("user", &inner.request.user())
            .field("region", &inner.request.region().as_str())
            .field("database", &inner.opts.db_name())
            .field("connect_timeout", &inner.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for MySqlConnectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlConnectorBuilder")
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("database", &self.database)
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

    fn from(vars: &[(&str, &str)]) -> Result<MySqlConnectorBuilder> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        builder_from_vars(cache(), |k| map.get(k).cloned())
    }

    const HOST: &str = "mydb.cluster-abc.eu-west-1.rds.amazonaws.com";

    #[test]
    fn env_names_of_the_lambda_samples_and_port_3306() {
        let c = from(&[
            ("DBEndPoint", HOST),
            ("DatabaseName", "appdb"),
            ("DBUserName", "iam_user"),
        ])
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(c.endpoint().port(), 3306);
        assert_eq!(c.token_request().user(), "iam_user");
        assert_eq!(c.token_request().region().as_str(), "eu-west-1");
        assert_eq!(c.inner.opts.db_name(), Some("appdb"));
        let e = from(&[
            ("DBEndPoint", "/var/run/mysqld/mysqld.sock"),
            ("DBUserName", "u"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("Unix socket"), "{e}");
    }

    #[test]
    fn tls_is_mandatory_verified_against_the_signing_name_with_our_roots_only() {
        let endpoint = Endpoint::new(HOST, 3306)
            .unwrap()
            .with_dial_address("127.0.0.1", 13306)
            .unwrap();
        let trust = TrustStore::aws_default();
        let c = MySqlConnector::builder(cache(), endpoint, "u")
            .trust(trust.clone())
            .build()
            .unwrap();
        let opts = &c.inner.opts;
        let ssl = opts.ssl_opts().expect("TLS options always set");
        assert!(ssl.disable_built_in_roots());
        assert!(!ssl.accept_invalid_certs());
        assert!(!ssl.skip_domain_validation());
        assert_eq!(ssl.tls_hostname_override(), None);
        assert_eq!(ssl.root_certs().len(), trust.len());
        assert_eq!(opts.ip_or_hostname(), HOST, "the TLS name");
        assert_eq!(opts.tcp_port(), 13306, "the dialled port");
        assert!(opts.enable_cleartext_plugin());
        assert!(!opts.prefer_socket());
        assert_eq!(opts.socket(), None);
        assert_eq!(opts.pass(), None, "the token is added per attempt");
    }

    #[test]
    fn port_keeps_the_dial_address() {
        let endpoint = Endpoint::new(HOST, 3306)
            .unwrap()
            .with_dial_address("127.0.0.1", 13306)
            .unwrap();
        let c = MySqlConnector::builder(cache(), endpoint, "u")
            .port(3307)
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.endpoint().port(), 3307);
        assert_eq!(c.token_request().port(), 3307);
        assert_eq!(c.inner.opts.tcp_port(), 13306);
    }

    #[test]
    fn debug_shows_no_secret() {
        let endpoint = Endpoint::new(HOST, 3306).unwrap();
        let b = MySqlConnector::builder(cache(), endpoint, "u").database("db");
        let s = format!("{b:?}");
        assert!(s.contains(HOST), "{s}");
        let s = format!("{:?}", b.build().unwrap());
        assert!(s.contains("MySqlConnector"), "{s}");
        assert!(!s.to_lowercase().contains("pass"), "{s}");
    }
}
