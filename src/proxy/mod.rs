//! A local proxy that logs clients in with IAM tokens: psql, GUI tools and any driver connect
//! to it without a password, and it logs each of their connections in upstream with a current
//! token over verified TLS, then relays bytes both ways untouched.
//!
//! RDS has no server-side half to pair with (as Cloud SQL's proxy has), so the proxy does the
//! login itself: it answers the client's start-up locally, opens one upstream connection per
//! client connection through the crate's login routine (a current token from the
//! [`TokenCache`], TLS verified against the signing hostname, one retry with a fresh token
//! after a rejection), and once the server says the login is done, splices the two sockets
//! (`TCP_NODELAY` on both). Only the start-up is parsed; after it the proxy is a byte pipe.
//!
//! **Local access is a security boundary**: whoever can reach the listener logs in as the IAM
//! identity. It listens on loopback only unless [`allow_remote`](LoginBuilder::allow_remote)
//! says otherwise; a Unix socket is created `0600` inside a private directory before it gets
//! its public name. The client's password, if any, is ignored and never forwarded; tokens
//! never appear in logs, and server-supplied text in logs is escaped.
//!
//! PostgreSQL (protocol 3.0 and 3.2, `CancelRequest`, optional local TLS) and MySQL /
//! MariaDB (the upstream's greeting mirrored, `mysql_clear_password` inside TLS, optional
//! local TLS). What a byte
//! relay cannot do: MySQL's `COM_CHANGE_USER` (the proxy is not there to log the new user
//! in), and a MySQL login retried after a rejection gets another connection id than the
//! client's greeting showed (its `KILL QUERY` on Ctrl-C then misses).
//!
//! ```no_run
//! use rds_iam_auth::proxy::Proxy;
//! use rds_iam_auth::{Endpoint, Engine, TokenCache, TokenGenerator};
//!
//! # async fn run() -> Result<(), rds_iam_auth::Error> {
//! let cache = TokenCache::new(TokenGenerator::from_env());
//! let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?;
//! let proxy = Proxy::builder(Engine::Postgres, cache, endpoint)
//!     .listen("127.0.0.1:15432".parse().unwrap())
//!     .pin_user("iam_user")
//!     .build()?
//!     .bind()
//!     .await?;
//! for line in proxy.connection_strings() {
//!     println!("{line}");
//! }
//! proxy.serve(async { tokio::signal::ctrl_c().await.ok(); }).await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cache::TokenCache;
use crate::endpoint::Endpoint;
use crate::engine::Engine;
use crate::error::{Detail, Error, Result};
use crate::login::{self, Honours, Login, LoginBuilder, Settings};

mod listener;
mod local_tls;
pub(crate) mod mysql;
pub(crate) mod postgres;
mod upstream;

use listener::Listener;
use local_tls::LocalTls;

/// How many client connections a proxy serves at once unless set otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100;

/// How long sessions may go on after a shutdown begins, unless set otherwise.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The default listen address: loopback, PostgreSQL's port plus 10,000 (clear of a local
/// server on 5432).
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 15432);

/// Login users remembered, each with its validated login settings: beyond this, a user's
/// settings are checked anew at each connection (a client sending many user names must not
/// grow the map).
const MAX_REMEMBERED_USERS: usize = 64;

/// A configured proxy: [`bind`](Self::bind) it to start listening. See [`Proxy::builder`].
pub struct Proxy {
    engine: Engine,
    settings: Settings,
    setup: ProxySetup,
    tls: Option<LocalTls>,
}

/// Configures a [`Proxy`]: the [`LoginBuilder`] of the proxy; see [`Proxy::builder`].
///
/// Its login setters are [`LoginBuilder`]'s: [`database`](crate::login::LoginBuilder::database)
/// (the database for clients that name none), [`region`](crate::login::LoginBuilder::region),
/// [`trust`](crate::login::LoginBuilder::trust), [`service`](crate::login::LoginBuilder::service),
/// [`token_lifetime`](crate::login::LoginBuilder::token_lifetime),
/// [`retry_jitter`](crate::login::LoginBuilder::retry_jitter),
/// [`connect_timeout`](crate::login::LoginBuilder::connect_timeout) (each upstream login, and
/// each client's start-up), [`max_concurrent_logins`](crate::login::LoginBuilder::max_concurrent_logins),
/// [`dead_peer_timeout`](crate::login::LoginBuilder::dead_peer_timeout) (keepalive on both
/// legs); the proxy's own: [`listen`](LoginBuilder::listen),
/// [`unix_socket`](LoginBuilder::unix_socket), [`allow_remote`](LoginBuilder::allow_remote),
/// [`pin_user`](LoginBuilder::pin_user), [`local_tls_generated`](LoginBuilder::local_tls_generated),
/// [`local_tls_pem`](LoginBuilder::local_tls_pem), [`max_connections`](LoginBuilder::max_connections),
/// [`shutdown_grace`](LoginBuilder::shutdown_grace); then [`build`](LoginBuilder::build).
pub type ProxyBuilder = LoginBuilder<Proxy>;

/// What only the proxy's builder holds.
pub struct ProxySetup {
    cache: TokenCache,
    listen: Listen,
    allow_remote: bool,
    pinned_user: Option<String>,
    local_tls: LocalTlsSetting,
    max_connections: usize,
    shutdown_grace: Duration,
    allow_local_infile: bool,
    hooks: Hooks,
}

type LoginFailureHook = dyn Fn(&FailedLogin<'_>) + Send + Sync;

/// What the embedding program adds to the proxy's reports.
#[derive(Clone)]
struct Hooks {
    on_login_failure: Option<Arc<LoginFailureHook>>,
    rephrase: fn(&str) -> String,
}

/// A client's upstream login that failed, as [`on_login_failure`](LoginBuilder::on_login_failure)
/// sees it. Holds no token.
#[derive(Debug)]
#[non_exhaustive]
pub struct FailedLogin<'a> {
    /// The user the login was for.
    pub user: &'a str,
    /// The database the client asked for (or the default).
    pub database: &'a str,
    /// The client's address (`127.0.0.1:53012`, `unix:/path`).
    pub client: &'a str,
    /// Why it failed (what the client was told, in its message).
    pub error: &'a Error,
}

#[derive(Debug, Clone)]
enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

enum LocalTlsSetting {
    None,
    Generated,
    /// The key is zeroed when the setting is dropped (after the proxy's TLS config is built).
    Pem {
        cert: Vec<u8>,
        key: zeroize::Zeroizing<Vec<u8>>,
    },
}

impl fmt::Debug for ProxySetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = match self.local_tls {
            LocalTlsSetting::None => "none",
            LocalTlsSetting::Generated => "generated",
            // Never the key.
            LocalTlsSetting::Pem { .. } => "given",
        };
        f.debug_struct("ProxySetup")
            .field("listen", &self.listen)
            .field("allow_remote", &self.allow_remote)
            .field("pinned_user", &self.pinned_user)
            .field("local_tls", &tls)
            .field("max_connections", &self.max_connections)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("allow_local_infile", &self.allow_local_infile)
            .finish_non_exhaustive()
    }
}

impl login::FrontEnd for Proxy {}

impl login::sealed::FrontEnd for Proxy {
    type Setup = ProxySetup;
    const BUILDER: &'static str = "ProxyBuilder";
    const HONOURS: Honours = Honours {
        dial_address: true,
        connect_timeout: true,
        max_concurrent_logins: true,
        dead_peer_timeout: true,
    };
}

impl Proxy {
    /// A builder for a proxy of `engine` to `endpoint`, with tokens from `cache`.
    ///
    /// The endpoint is what tokens are signed for and TLS verifies (set
    /// [`Endpoint::with_dial_address`] to go through a tunnel). Each client's user is the one
    /// the token is signed for, unless [`pin_user`](LoginBuilder::pin_user) pins one.
    pub fn builder(engine: Engine, cache: TokenCache, endpoint: Endpoint) -> ProxyBuilder {
        let setup = ProxySetup {
            cache,
            listen: Listen::Tcp(DEFAULT_LISTEN),
            allow_remote: false,
            pinned_user: None,
            local_tls: LocalTlsSetting::None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            allow_local_infile: false,
            hooks: Hooks {
                on_login_failure: None,
                rephrase: str::to_owned,
            },
        };
        LoginBuilder::new(engine, endpoint, String::new(), setup)
    }

    /// A builder configured from the environment variables of AWS's Lambda samples, as
    /// [`Connector::builder_from_env`](crate::connector::Connector::builder_from_env) reads
    /// them (`DBEndPoint`, `DBPort`, `DBRegion`, `DBCaFile`, `DatabaseName` as the default
    /// database); `DBUserName` pins the user.
    pub fn builder_from_env(engine: Engine, cache: TokenCache) -> Result<ProxyBuilder> {
        Self::builder_from_vars(engine, cache, |name| std::env::var(name).ok())
    }

    /// Like [`builder_from_env`](Self::builder_from_env), reading the variables through `var`.
    pub fn builder_from_vars(
        engine: Engine,
        cache: TokenCache,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<ProxyBuilder> {
        let builder = Self::builder(engine, cache, Endpoint::new("placeholder.invalid", 1)?);
        let mut builder: ProxyBuilder = LoginBuilder::from_vars(engine, builder.setup, var)?;
        builder.setup.pinned_user = Some(std::mem::take(&mut builder.settings.user));
        Ok(builder)
    }

    /// Starts listening (the TCP port, or the Unix socket): the returned [`Listening`] knows
    /// its address and serves clients once [`serve`](Listening::serve) is awaited.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) (setting `listen`) when the
    /// address cannot be bound (in use, not this machine's, a directory that cannot be
    /// written).
    pub async fn bind(self) -> Result<Listening> {
        let socket_number = self.settings.endpoint.port();
        let listener = match &self.setup.listen {
            Listen::Tcp(addr) => Listener::tcp(*addr).await?,
            Listen::Unix(dir) => Listener::unix(dir, self.engine, socket_number)?,
        };
        let shared = Arc::new(Shared {
            engine: self.engine,
            cache: self.setup.cache,
            settings: self.settings,
            pinned_user: self.setup.pinned_user,
            logins: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            tls: self.tls,
            allow_local_infile: self.setup.allow_local_infile,
            hooks: self.setup.hooks,
        });
        Ok(Listening {
            listener,
            shared,
            connections: Arc::new(Semaphore::new(self.setup.max_connections)),
            max_connections: self.setup.max_connections,
            shutdown_grace: self.setup.shutdown_grace,
        })
    }
}

impl ProxyBuilder {
    /// The TCP address to listen on; default [`DEFAULT_LISTEN`] (`127.0.0.1:15432`), port 0
    /// for any free port. A non-loopback address is refused unless
    /// [`allow_remote`](Self::allow_remote) is set.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.setup.listen = Listen::Tcp(addr);
        self
    }

    /// Listen on a Unix socket in `dir` instead of TCP, named as libpq looks for it:
    /// `dir/.s.PGSQL.<port>`, the port being the endpoint's (connect with `host=dir
    /// port=<port>`). The socket is `0600` (this user only) from its creation.
    pub fn unix_socket(mut self, dir: impl Into<PathBuf>) -> Self {
        self.setup.listen = Listen::Unix(dir.into());
        self
    }

    /// Accept a non-loopback listen address. Anyone who can reach that address logs in as
    /// this IAM identity, without a password: only behind a firewall you control.
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.setup.allow_remote = allow;
        self
    }

    /// Sign every login for `user`, and refuse clients that ask for another user (with an
    /// error that names the pinned one). Without it the user each client asks for is the
    /// one signed for: a team sharing one IAM role that may log in as several database users
    /// leaves it unset; a proxy meant for one database user pins it.
    pub fn pin_user(mut self, user: impl Into<String>) -> Self {
        self.setup.pinned_user = Some(user.into());
        self
    }

    /// Offer TLS to clients that ask for it (`sslmode=require`, most GUI tools), with a
    /// self-signed certificate generated at [`build`](Self::build) for `localhost` and the
    /// loopback addresses; [`Listening::certificate_fingerprint`] is its SHA-256 fingerprint.
    pub fn local_tls_generated(mut self) -> Self {
        self.setup.local_tls = LocalTlsSetting::Generated;
        self
    }

    /// Offer TLS to clients with this certificate chain and private key (PEM: PKCS#8, PKCS#1
    /// or SEC1 key).
    pub fn local_tls_pem(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.setup.local_tls = LocalTlsSetting::Pem {
            cert: cert_pem.into(),
            key: zeroize::Zeroizing::new(key_pem.into()),
        };
        self
    }

    /// At most `limit` client connections at once (default [`DEFAULT_MAX_CONNECTIONS`]); a
    /// client beyond it gets the engine's "too many connections" error.
    pub fn max_connections(mut self, limit: usize) -> Self {
        self.setup.max_connections = limit;
        self
    }

    /// How long sessions may go on once [`serve`](Listening::serve)'s shutdown signal fired
    /// (default [`DEFAULT_SHUTDOWN_GRACE`]); the remaining ones are closed after it.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.setup.shutdown_grace = grace;
        self
    }

    /// MySQL: let the server ask for client files (`LOAD DATA LOCAL INFILE`); off by
    /// default, since it lets the server read any file the proxy's user can (the
    /// `CLIENT_LOCAL_FILES` flag is taken out of both handshakes).
    pub fn allow_local_infile(mut self, allow: bool) -> Self {
        self.setup.allow_local_infile = allow;
        self
    }

    /// Calls `hook` after each client's upstream login that failed (after the retry, if the
    /// token was rejected), on the session's task: a program can print a diagnosis there
    /// (`rds-iam-token proxy` runs the doctor). Keep it quick, or spawn.
    pub fn on_login_failure(
        mut self,
        hook: impl Fn(&FailedLogin<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.setup.hooks.on_login_failure = Some(Arc::new(hook));
        self
    }

    /// Rewords the messages the proxy sends clients (a command line replaces the library's
    /// advice, such as `TrustStore::with_ca_file`, with its own flags). Default: unchanged.
    pub fn rephrase(mut self, rephrase: fn(&str) -> String) -> Self {
        self.setup.hooks.rephrase = rephrase;
        self
    }

    /// Validates everything (the login settings as a connector's, the listen address, the
    /// local TLS certificate) and builds the proxy.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput): any login setting a
    /// connector would refuse, a non-loopback listen address without
    /// [`allow_remote`](Self::allow_remote) (setting `listen`), a zero connection limit, an
    /// unusable local TLS certificate or key (setting `local_tls`).
    pub fn build(self) -> Result<Proxy> {
        if self.setup.max_connections == 0 {
            return Err(invalid("max_connections", "must be at least 1"));
        }
        if let Listen::Tcp(addr) = self.setup.listen
            && !addr.ip().is_loopback()
            && !self.setup.allow_remote
        {
            return Err(Detail::RemoteListen { addr }.into());
        }
        let mut settings = self.settings;
        // Checked as a login of the pinned user, or of a stand-in for the clients' users
        // (each is checked again when a client names it).
        settings.user = self
            .setup
            .pinned_user
            .clone()
            .unwrap_or_else(|| "proxy_client".to_owned());
        settings.login(self.engine, <Proxy as login::sealed::FrontEnd>::HONOURS)?;
        let tls = match &self.setup.local_tls {
            LocalTlsSetting::None => None,
            LocalTlsSetting::Generated => Some(LocalTls::generated()?),
            LocalTlsSetting::Pem { cert, key } => Some(LocalTls::from_pem(cert, key)?),
        };
        Ok(Proxy {
            engine: self.engine,
            settings,
            setup: self.setup,
            tls,
        })
    }
}

fn invalid(name: &'static str, reason: &'static str) -> Error {
    Detail::InvalidSetting {
        name,
        reason: std::borrow::Cow::Borrowed(reason),
    }
    .into()
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("engine", &self.engine)
            .field("endpoint", &self.settings.endpoint)
            .field("setup", &self.setup)
            .finish_non_exhaustive()
    }
}

/// What every session of one proxy shares.
pub(crate) struct Shared {
    engine: Engine,
    cache: TokenCache,
    settings: Settings,
    pinned_user: Option<String>,
    /// Each user's validated login (its token request, its login bound).
    logins: Mutex<HashMap<String, Arc<Login>>>,
    /// The open sessions by their cancel key (the upstream's process id and secret), with
    /// the address each upstream connection went to: a cancel goes where its session went
    /// (reader endpoints rotate their DNS answers).
    sessions: Mutex<HashMap<CancelKey, (SocketAddr, Arc<Login>)>>,
    tls: Option<LocalTls>,
    allow_local_infile: bool,
    hooks: Hooks,
}

/// A PostgreSQL backend's cancel key: its process id and secret (4 bytes, or up to 256
/// with protocol 3.2).
pub(crate) type CancelKey = (u32, Vec<u8>);

impl Shared {
    /// The login settings for `user` (validated once, then remembered).
    fn login_for(&self, user: &str) -> Result<Arc<Login>> {
        if let Some(login) = self.logins.lock().expect("not poisoned").get(user) {
            return Ok(login.clone());
        }
        let mut settings = self.settings.clone();
        settings.user = user.to_owned();
        let login =
            Arc::new(settings.login(self.engine, <Proxy as login::sealed::FrontEnd>::HONOURS)?);
        let mut logins = self.logins.lock().expect("not poisoned");
        if logins.len() < MAX_REMEMBERED_USERS {
            logins.insert(user.to_owned(), login.clone());
        }
        Ok(login)
    }

    fn connect_timeout(&self) -> Duration {
        self.settings
            .connect_timeout
            .unwrap_or(login::DEFAULT_CONNECT_TIMEOUT)
    }

    fn dead_peer_timeout(&self) -> Duration {
        self.settings
            .dead_peer_timeout
            .unwrap_or(login::DEFAULT_DEAD_PEER_TIMEOUT)
    }
}

/// A bound proxy: its address is known, and it serves clients while
/// [`serve`](Self::serve) runs.
pub struct Listening {
    listener: Listener,
    shared: Arc<Shared>,
    connections: Arc<Semaphore>,
    max_connections: usize,
    shutdown_grace: Duration,
}

impl fmt::Debug for Listening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listening")
            .field("listener", &self.listener)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl Listening {
    /// The TCP address it listens on (`None` for a Unix socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr()
    }

    /// The Unix socket's path (`None` for TCP).
    pub fn socket_path(&self) -> Option<&Path> {
        self.listener.socket_path()
    }

    /// The SHA-256 fingerprint of the local TLS certificate (`AB:CD:...`), when the proxy
    /// offers local TLS.
    pub fn certificate_fingerprint(&self) -> Option<&str> {
        self.shared.tls.as_ref().map(LocalTls::fingerprint)
    }

    /// Ready-to-paste ways to connect (psql, a libpq URL, JDBC; mysql, JDBC), one per line.
    pub fn connection_strings(&self) -> Vec<String> {
        let user = self.shared.pinned_user.as_deref().unwrap_or("<user>");
        let database = self.shared.settings.database.as_deref();
        match self.shared.engine {
            Engine::Postgres => postgres::connection_strings(
                &self.listener,
                user,
                database.unwrap_or(user),
                self.shared.tls.is_some(),
            ),
            Engine::MySql => mysql::connection_strings(
                &self.listener,
                user,
                database.unwrap_or(""),
                self.shared.tls.is_some(),
            ),
        }
    }

    /// Serves clients until `shutdown` completes, then stops accepting, lets the open
    /// sessions end for up to the shutdown grace, and closes those left.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let mut sessions = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                // Reaps finished sessions as it goes: the set does not grow with them.
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                accepted = self.listener.accept() => {
                    let (client, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // EMFILE and the like: wait a little rather than spin.
                            tracing::warn!(%error, "accepting a client failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let shared = self.shared.clone();
                    let permit = self.connections.clone().try_acquire_owned().ok();
                    let limit = self.max_connections;
                    sessions.spawn(async move {
                        match (permit, shared.engine) {
                            (Some(_permit), Engine::Postgres) => {
                                postgres::session(shared, client, peer).await
                            }
                            (Some(_permit), Engine::MySql) => {
                                mysql::session(shared, client, peer).await
                            }
                            (None, Engine::Postgres) => {
                                postgres::refuse_over_limit(client, peer, limit).await
                            }
                            (None, Engine::MySql) => {
                                mysql::refuse_over_limit(client, peer, limit).await
                            }
                        }
                    });
                }
            }
        }
        let open = sessions.len();
        if open > 0 {
            tracing::info!(
                sessions = open,
                grace_s = self.shutdown_grace.as_secs_f64(),
                "shutting down: no new connections; waiting for open sessions to end"
            );
        }
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                sessions = sessions.len(),
                "shutdown grace over: closing the sessions left"
            );
            sessions.shutdown().await;
        }
        self.listener.remove_socket_file();
    }
}

/// A client's connection, whatever carries it (TCP, a Unix socket, local TLS).
pub(crate) trait ClientIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientIo for T {}

/// Server-supplied or client-supplied text as logs show it: control characters escaped
/// (no forged log lines, no terminal escapes), cut after 80 characters.
pub(crate) fn escaped(text: &str) -> String {
    crate::error::shown(text)
}
