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
//!   tunnel or an IP address), with this crate's [`TrustStore`](crate::TrustStore) only:
//!   mysql_async's built-in webpki roots are disabled;
//! - the cleartext plugin is enabled only together with those TLS options, and the switch
//!   to the server's Unix socket (`prefer_socket`, which would skip TLS) is off.
//!
//! mysql_async builds its rustls configuration itself, from the process-default crypto
//! provider: building a [`MySqlConnector`] installs aws-lc-rs as that default if none is.

use std::borrow::Cow;
use std::fmt;

use mysql_async::prelude::{AsQuery, Queryable, StatementLike};
use mysql_async::{Conn, Opts, OptsBuilder, SslOpts};

use super::{Connector, ConnectorBuilder, Dial, Driver, sealed};
use crate::engine::Engine;
use crate::login::Login;
use crate::tls::{TrustStore, install_default_crypto_provider};
use crate::token::IamAuthToken;

/// `ER_ACCESS_DENIED_ERROR`: what RDS answers for a bad, expired or misdirected token, and
/// for a user that is not set up for IAM.
const ER_ACCESS_DENIED_ERROR: u16 = 1045;

/// The MySQL driver (mysql_async): the engine of [`MySqlConnector`].
#[derive(Debug, Clone, Copy)]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub struct MySql;

/// Opens mysql_async connections to one endpoint as one user, each logged in with a current
/// IAM token from a [`TokenCache`](crate::TokenCache), over TLS verified against the signing
/// hostname.
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
/// let cache = TokenCache::new(TokenGenerator::from_env());
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
/// [`ErrorKind::Rejected`](crate::ErrorKind::Rejected), whose message lists the
/// likely causes.
///
/// Connections come as [`MySqlConnection`]: a `mysql_async::Conn` behind mysql_async's
/// `Queryable`, which keeps the connection options (they hold the token) out of reach and out
/// of `Debug`.
///
/// Its methods are [`Connector`]'s (this page shows them only with JavaScript):
/// [`builder`](Connector::builder), [`builder_from_env`](Connector::builder_from_env),
/// [`builder_from_vars`](Connector::builder_from_vars), [`connect`](Connector::connect),
/// [`endpoint`](Connector::endpoint), [`token_request`](Connector::token_request),
/// [`cache`](Connector::cache), [`max_concurrent_logins`](Connector::max_concurrent_logins),
/// [`recommended_max_lifetime`](Connector::recommended_max_lifetime).
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub type MySqlConnector = Connector<MySql>;

/// Configures a [`MySqlConnector`]; see [`Connector::builder`].
///
/// Its setters are [`LoginBuilder`](crate::login::LoginBuilder)'s: [`database`](crate::login::LoginBuilder::database), [`region`](crate::login::LoginBuilder::region), [`trust`](crate::login::LoginBuilder::trust),
/// [`service`](crate::login::LoginBuilder::service), [`token_lifetime`](crate::login::LoginBuilder::token_lifetime),
/// [`retry_jitter`](crate::login::LoginBuilder::retry_jitter), [`connect_timeout`](crate::login::LoginBuilder::connect_timeout),
/// [`max_concurrent_logins`](crate::login::LoginBuilder::max_concurrent_logins),
/// [`dead_peer_timeout`](crate::login::LoginBuilder::dead_peer_timeout);
/// then [`build`](crate::login::LoginBuilder::build).
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub type MySqlConnectorBuilder = ConnectorBuilder<MySql>;

impl Driver for MySql {
    type Connection = MySqlConnection;
}

impl sealed::Driver for MySql {
    const ENGINE: Engine = Engine::MySql;
    const CONNECTOR: &'static str = "MySqlConnector";
    /// mysql_async notices a dead peer only at the next command.
    const PING_BEFORE_REUSE: bool = true;
    /// Its TLS options carry mysql_async's cached TLS connector: built on the first
    /// connection, shared by every later one (and by clones of the options).
    type Options = Opts;
    type Login = MySqlConnection;
    type Error = mysql_async::Error;

    fn options(login: &Login) -> Opts {
        install_default_crypto_provider();
        let opts = base_opts(
            login.endpoint.host(),
            login.request.user(),
            login.database.clone(),
            &login.trust,
        );
        // mysql_async sets the keepalive idle time only (the probes' interval and count are
        // the kernel's).
        OptsBuilder::from_opts(opts)
            .tcp_keepalive(login.dead_peer_timeout.map(|dead| dead / 2))
            .into()
    }

    async fn attempt(
        options: &Opts,
        dial: Dial,
        token: &IamAuthToken,
    ) -> Result<MySqlConnection, mysql_async::Error> {
        Conn::new(attempt_opts(options, dial, token))
            .await
            .map(MySqlConnection)
    }

    fn is_rejected(error: &mysql_async::Error) -> bool {
        matches!(error, mysql_async::Error::Server(s) if s.code == ER_ACCESS_DENIED_ERROR)
    }

    fn connection(login: MySqlConnection) -> MySqlConnection {
        login
    }

    fn is_closed(conn: &MySqlConnection) -> bool {
        conn.0.is_disconnected()
    }

    /// `COM_PING`.
    async fn ping(conn: &mut MySqlConnection) -> Result<(), mysql_async::Error> {
        conn.0.ping().await
    }

    fn describe(options: &Opts, f: &mut fmt::DebugStruct<'_, '_>) {
        // Not `Opts` itself: mysql_async's `Debug` for it prints the password field.
        f.field("database", &options.db_name());
    }
}

/// A MySQL connection logged in with an IAM token: run queries through mysql_async's
/// [`Queryable`] (`use rds_iam_auth::mysql_async::prelude::*`, then `conn.query_first(..)`,
/// `conn.exec_drop(..)`, `conn.ping()`), transactions with
/// [`start_transaction`](Self::start_transaction).
///
/// It wraps a `mysql_async::Conn` but does not dereference to it: mysql_async keeps the
/// password, here the token, in the connection's options for the connection's whole life, and
/// `Conn::opts()` (or `Conn`'s own `Debug`) would hand it out. This wrapper's `Debug` prints the
/// connection id and server version only. [`into_inner`](Self::into_inner) gives the `Conn`
/// itself, options included, for what the wrapper does not offer: do not log that with `{:?}`.
///
/// ```compile_fail
/// # async fn run(conn: rds_iam_auth::MySqlConnection) {
/// // The options (and the token in them) are not reachable through the wrapper.
/// let _ = conn.opts();
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub struct MySqlConnection(Conn);

/// mysql_async's boxed future, spelled out (its alias is private).
type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = mysql_async::Result<T>> + Send + 'a>>;

impl MySqlConnection {
    /// Closes the connection gracefully (`COM_QUIT`), as `Conn::disconnect` does.
    pub async fn disconnect(self) -> mysql_async::Result<()> {
        self.0.disconnect().await
    }

    /// The `mysql_async::Conn` itself (its `opts()` and `Debug` hold the token).
    pub fn into_inner(self) -> Conn {
        self.0
    }

    /// Starts a transaction, as `Conn::start_transaction` does.
    pub async fn start_transaction(
        &mut self,
        options: mysql_async::TxOpts,
    ) -> mysql_async::Result<mysql_async::Transaction<'_>> {
        self.0.start_transaction(options).await
    }

    /// The server's connection id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// The server's version (major, minor, patch).
    pub fn server_version(&self) -> (u16, u16, u16) {
        self.0.server_version()
    }

    /// `true` once mysql_async knows the connection is closed (it notices at the next command).
    pub fn is_disconnected(&self) -> bool {
        self.0.is_disconnected()
    }

    /// The last insert id of the last command, if any.
    pub fn last_insert_id(&self) -> Option<u64> {
        self.0.last_insert_id()
    }

    /// The number of rows the last command affected.
    pub fn affected_rows(&self) -> u64 {
        self.0.affected_rows()
    }

    /// The server's info string for the last command.
    pub fn info(&self) -> Cow<'_, str> {
        self.0.info()
    }

    /// The number of warnings the last command raised.
    pub fn get_warnings(&self) -> u16 {
        self.0.get_warnings()
    }
}

/// Every query method of `Conn`, by delegation (the provided methods build on these).
impl Queryable for MySqlConnection {
    fn ping(&mut self) -> BoxFuture<'_, ()> {
        self.0.ping()
    }

    fn query_iter<'a, Q>(
        &'a mut self,
        query: Q,
    ) -> BoxFuture<'a, mysql_async::QueryResult<'a, 'static, mysql_async::TextProtocol>>
    where
        Q: AsQuery + 'a,
    {
        self.0.query_iter(query)
    }

    fn prep<'a, Q>(&'a mut self, query: Q) -> BoxFuture<'a, mysql_async::Statement>
    where
        Q: AsQuery + 'a,
    {
        self.0.prep(query)
    }

    fn close(&mut self, stmt: mysql_async::Statement) -> BoxFuture<'_, ()> {
        self.0.close(stmt)
    }

    fn exec_iter<'a: 's, 's, Q, P>(
        &'a mut self,
        stmt: Q,
        params: P,
    ) -> BoxFuture<'s, mysql_async::QueryResult<'a, 'static, mysql_async::BinaryProtocol>>
    where
        Q: StatementLike + 's,
        P: Into<mysql_async::Params>,
    {
        self.0.exec_iter(stmt, params)
    }

    fn exec_batch<'a: 'b, 'b, S, P, I>(&'a mut self, stmt: S, params_iter: I) -> BoxFuture<'b, ()>
    where
        S: StatementLike + 'b,
        I: IntoIterator<Item = P> + Send + 'b,
        I::IntoIter: Send,
        P: Into<mysql_async::Params> + Send,
    {
        self.0.exec_batch(stmt, params_iter)
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

/// One attempt's options: the host stays the signing hostname (the TLS name); the port and a
/// tunnel's IPs are where TCP goes.
fn attempt_opts(options: &Opts, dial: Dial, token: &IamAuthToken) -> Opts {
    OptsBuilder::from_opts(options.clone())
        .tcp_port(dial.port)
        .resolved_ips(dial.ips)
        .pass(Some(token.expose()))
        .into()
}

/// Everything the connection needs but the password and where to dial.
fn base_opts(host: &str, user: &str, database: Option<String>, trust: &TrustStore) -> Opts {
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
        // The TLS name (mysql_async verifies the certificate against it).
        .ip_or_hostname(host)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::TokenCache;
    use crate::endpoint::Endpoint;
    use crate::token::TokenGenerator;
    use aws_credential_types::Credentials;
    use std::collections::HashMap;
    use std::time::Duration;

    fn cache() -> TokenCache {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        TokenCache::new(TokenGenerator::new(credentials))
    }

    const HOST: &str = "mydb.cluster-abc.eu-west-1.rds.amazonaws.com";

    #[test]
    fn env_names_of_the_lambda_samples_and_port_3306() {
        let vars: HashMap<&str, &str> = [
            ("DBEndPoint", HOST),
            ("DatabaseName", "appdb"),
            ("DBUserName", "iam_user"),
        ]
        .into();
        let c = MySqlConnector::builder_from_vars(cache(), |k| vars.get(k).map(|v| v.to_string()))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.endpoint().port(), 3306);
        assert_eq!(c.token_request().user(), "iam_user");
        assert_eq!(c.token_request().region().as_str(), "eu-west-1");
        assert_eq!(c.options().db_name(), Some("appdb"));
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
        let opts = c.options();
        let ssl = opts.ssl_opts().expect("TLS options always set");
        assert!(ssl.disable_built_in_roots());
        assert!(!ssl.accept_invalid_certs());
        assert!(!ssl.skip_domain_validation());
        assert_eq!(ssl.tls_hostname_override(), None);
        assert_eq!(ssl.root_certs().len(), trust.len());
        assert_eq!(opts.ip_or_hostname(), HOST, "the TLS name");
        // Keepalive probes from half the dead-peer timeout (60 s) on.
        assert_eq!(opts.tcp_keepalive(), Some(Duration::from_secs(30)));
        let ips = vec!["127.0.0.1".parse().unwrap()];
        let token = IamAuthToken::new(
            "token".to_owned(),
            std::time::UNIX_EPOCH,
            std::time::UNIX_EPOCH,
        );
        let dial = Dial {
            port: 13306,
            ips: Some(ips.clone()),
        };
        let attempt = attempt_opts(opts, dial, &token);
        assert_eq!(attempt.ip_or_hostname(), HOST, "still the TLS name");
        assert_eq!(attempt.tcp_port(), 13306, "the dialled port");
        assert_eq!(attempt.resolved_ips().as_deref(), Some(&ips[..]));
        assert!(opts.enable_cleartext_plugin());
        assert!(!opts.prefer_socket());
        assert_eq!(opts.socket(), None);
        assert_eq!(opts.pass(), None, "the token is added per attempt");
    }

    #[test]
    fn debug_shows_no_secret() {
        let endpoint = Endpoint::new(HOST, 3306).unwrap();
        let b = MySqlConnector::builder(cache(), endpoint, "u").database("db");
        let s = format!("{b:?}");
        assert!(s.contains(HOST), "{s}");
        let s = format!("{:?}", b.build().unwrap());
        assert!(s.starts_with("MySqlConnector"), "{s}");
        assert!(!s.to_lowercase().contains("pass"), "{s}");
    }
}
