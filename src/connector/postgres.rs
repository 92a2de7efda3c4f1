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

use tokio::task::JoinHandle;
use tokio_postgres::Client;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Connector, ConnectorBuilder, Dial, Driver, sealed};
use crate::engine::Engine;
use crate::error::Result;
use crate::login::Login;
use crate::tls::client_config;
use crate::token::IamAuthToken;

/// The PostgreSQL driver (tokio-postgres): the engine of [`PgConnector`].
#[derive(Debug, Clone, Copy)]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct Postgres;

/// Opens tokio-postgres connections to one endpoint as one user, each logged in with a
/// current IAM token from a [`TokenCache`](crate::TokenCache), over TLS verified against the
/// signing hostname.
///
/// Cheap to clone (clones share the configuration, the cache and the TLS setup); build it
/// once and use it for every connection, or hand it to a pool ([`pool`](crate::pool)).
///
/// ```no_run
/// use rds_iam_auth::{Endpoint, PgConnector, TokenCache, TokenGenerator};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = TokenCache::new(TokenGenerator::from_env());
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
/// [`ErrorKind::Rejected`](crate::ErrorKind::Rejected), whose message lists the
/// likely causes.
///
/// [`connect`](Connector::connect) spawns the connection task on the current tokio runtime
/// (it panics outside one, as `tokio::spawn` does); the task ends when the client is dropped
/// or the server closes the connection.
///
/// Its methods are [`Connector`]'s (this page shows them only with JavaScript):
/// [`builder`](Connector::builder), [`builder_from_env`](Connector::builder_from_env),
/// [`builder_from_vars`](Connector::builder_from_vars), [`connect`](Connector::connect),
/// [`endpoint`](Connector::endpoint), [`token_request`](Connector::token_request),
/// [`cache`](Connector::cache), [`max_concurrent_logins`](Connector::max_concurrent_logins),
/// [`recommended_max_lifetime`](Connector::recommended_max_lifetime), and
/// [`connect_with_task`](Connector::connect_with_task).
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub type PgConnector = Connector<Postgres>;

/// Configures a [`PgConnector`]; see [`Connector::builder`].
///
/// Its setters are [`LoginBuilder`](crate::login::LoginBuilder)'s: [`database`](crate::login::LoginBuilder::database), [`region`](crate::login::LoginBuilder::region), [`trust`](crate::login::LoginBuilder::trust),
/// [`service`](crate::login::LoginBuilder::service), [`token_lifetime`](crate::login::LoginBuilder::token_lifetime),
/// [`retry_jitter`](crate::login::LoginBuilder::retry_jitter), [`connect_timeout`](crate::login::LoginBuilder::connect_timeout),
/// [`max_concurrent_logins`](crate::login::LoginBuilder::max_concurrent_logins),
/// [`dead_peer_timeout`](crate::login::LoginBuilder::dead_peer_timeout),
/// [`application_name`](crate::login::LoginBuilder::application_name); then [`build`](crate::login::LoginBuilder::build).
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub type PgConnectorBuilder = ConnectorBuilder<Postgres>;

/// The tokio-postgres configuration without a password or a port, and the TLS connector.
pub struct PgOptions {
    /// The signing hostname: the TLS name of every address dialled.
    host: String,
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio-postgres's own `Debug` for `Config` prints the password as `_`; there is none.
        f.debug_struct("PgOptions")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Driver for Postgres {
    type Connection = Client;
}

impl crate::login::sealed::PostgresFrontEnd for Connector<Postgres> {}

impl sealed::Driver for Postgres {
    const ENGINE: Engine = Engine::Postgres;
    const CONNECTOR: &'static str = "PgConnector";
    const PING_BEFORE_REUSE: bool = false;
    type Options = PgOptions;
    type Login = (Client, JoinHandle<()>);
    type Error = tokio_postgres::Error;

    fn options(login: &Login) -> PgOptions {
        let mut config = tokio_postgres::Config::new();
        config
            // The TLS name. The port (and `hostaddr` when tunnelled) are added per attempt:
            // tokio-postgres appends to these lists rather than replacing them.
            .host(login.endpoint.host())
            .user(login.request.user())
            // `require`, never `prefer`: `prefer` continues in plaintext when the server (or
            // whoever answers in its place) declines TLS, and the token would follow.
            .ssl_mode(SslMode::Require);
        if let Some(timeout) = login.connect_timeout {
            config.connect_timeout(timeout);
        }
        if let Some(dead) = login.dead_peer_timeout {
            // Probes from half the timeout on, three of them a sixth apart: a silent peer is
            // found dead after the whole; unacknowledged data fails after it too.
            config
                .keepalives(true)
                .keepalives_idle(dead / 2)
                .keepalives_interval(dead / 6)
                .keepalives_retries(3)
                .tcp_user_timeout(dead);
        }
        if let Some(db) = &login.database {
            config.dbname(db);
        }
        if let Some(name) = &login.application_name {
            config.application_name(name);
        }
        let tls = MakeRustlsConnect::new((*client_config(&login.trust)).clone());
        PgOptions {
            host: login.endpoint.host().to_owned(),
            config,
            tls,
        }
    }

    async fn attempt(
        options: &PgOptions,
        dial: Dial,
        token: &IamAuthToken,
    ) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
        let mut config = options.config.clone();
        set_dial_address(&mut config, &options.host, dial);
        config.password(token.expose());
        let connected = config.connect(options.tls.clone()).await;
        // The config held a copy of the token: gone before anything else happens.
        drop(config);
        let (client, connection) = connected?;
        let task = tokio::spawn(async move {
            // Errors here mean the connection ended; the client reports them.
            let _ = connection.await;
        });
        Ok((client, task))
    }

    /// `28P01` (invalid_password) is what RDS answers for a bad or expired token; `28000`
    /// (invalid_authorization_specification) for a user not allowed to log in this way.
    fn is_rejected(error: &tokio_postgres::Error) -> bool {
        matches!(
            error.code(),
            Some(c) if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        )
    }

    fn connection((client, _task): (Client, JoinHandle<()>)) -> Client {
        client
    }

    /// The connection task closes the client as soon as the server goes away.
    fn is_closed(client: &Client) -> bool {
        client.is_closed()
    }

    async fn ping(client: &mut Client) -> Result<(), tokio_postgres::Error> {
        client.simple_query("").await.map(drop)
    }

    fn describe(options: &PgOptions, f: &mut fmt::DebugStruct<'_, '_>) {
        f.field("database", &options.config.get_dbname())
            .field("application_name", &options.config.get_application_name());
    }
}

/// tokio-postgres takes the TLS name from `host` and the TCP address from `hostaddr`.
fn set_dial_address(config: &mut tokio_postgres::Config, tls_name: &str, dial: Dial) {
    config.port(dial.port);
    // One `host` per `hostaddr`: tokio-postgres pairs them by position and tries each in turn.
    let mut ips = dial.ips.into_iter().flatten();
    if let Some(first) = ips.next() {
        config.hostaddr(first);
    }
    for ip in ips {
        config.host(tls_name).hostaddr(ip);
    }
}

impl Connector<Postgres> {
    /// Like [`connect`](Connector::connect), and also returns the spawned connection task,
    /// for callers that want to know when the connection ends (pools do).
    pub async fn connect_with_task(&self) -> Result<(Client, JoinHandle<()>)> {
        self.login().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::TokenCache;
    use crate::endpoint::Endpoint;
    use crate::tls::TrustStore;
    use crate::token::TokenGenerator;
    use aws_credential_types::Credentials;
    use std::collections::HashMap;
    use std::time::Duration;

    fn cache() -> TokenCache {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        TokenCache::new(TokenGenerator::new(credentials))
    }

    fn from(vars: &[(&str, &str)]) -> Result<PgConnectorBuilder> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PgConnector::builder_from_vars(cache(), |k| map.get(k).cloned())
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
        assert_eq!(c.options().config.get_dbname(), Some("appdb"));

        let c = from(&[("DBEndPoint", &format!("{HOST}:6432")), ("DBUserName", "u")])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.endpoint().port(), 6432);
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
        let cfg = &c.options().config;
        assert_eq!(cfg.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            cfg.get_hosts(),
            [tokio_postgres::config::Host::Tcp(HOST.to_owned())]
        );
        assert_eq!(cfg.get_password(), None);
        assert_eq!(cfg.get_application_name(), Some("app"));
        assert_eq!(cfg.get_connect_timeout(), Some(&Duration::from_secs(3)));
        // A dead peer is noticed within the dead-peer timeout (60 s), not the kernel's 2 h.
        assert!(cfg.get_keepalives());
        assert_eq!(cfg.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(cfg.get_keepalives_interval(), Some(Duration::from_secs(10)));
        assert_eq!(cfg.get_keepalives_retries(), Some(3));
        assert_eq!(cfg.get_tcp_user_timeout(), Some(&Duration::from_secs(60)));
    }

    #[test]
    fn a_tunnel_dials_its_ips_and_keeps_the_tls_name() {
        let mut config = tokio_postgres::Config::new();
        config.host(HOST);
        let ips = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let dial = Dial {
            port: 15432,
            ips: Some(ips.clone()),
        };
        set_dial_address(&mut config, HOST, dial);
        assert_eq!(config.get_hostaddrs(), ips);
        assert_eq!(config.get_hosts().len(), 2, "one TLS name per address");
        assert_eq!(config.get_ports(), [15432]);
    }

    #[test]
    fn an_empty_trust_store_is_refused_at_build() {
        let endpoint = Endpoint::new(HOST, 5432).unwrap();
        let e = PgConnector::builder(cache(), endpoint, "u")
            .trust(TrustStore::empty())
            .build()
            .unwrap_err();
        assert_eq!(e.setting(), Some("trust"), "{e:?}");
        assert!(e.to_string().contains("holds no CA certificate"), "{e}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let endpoint = Endpoint::new(HOST, 5432).unwrap();
        let b = PgConnector::builder(cache(), endpoint, "u").application_name("billing");
        let s = format!("{b:?}");
        assert!(s.contains(HOST) && s.contains("billing"), "{s}");
        let s = format!("{:?}", b.build().unwrap());
        assert!(s.starts_with("PgConnector"), "{s}");
        assert!(s.contains("billing"), "{s}");
        assert!(!s.to_lowercase().contains("password"), "{s}");
    }
}
