//! The crate's one error type.

#[cfg(feature = "tls")]
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::error::CredentialsError;

/// Everything that can go wrong in this crate.
///
/// Each message says what was wrong and what to do about it. Messages never contain a
/// token, a secret access key or a session token. Lower-level causes are chained through
/// [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The signing hostname is not a valid DNS name.
    #[error(
        "invalid hostname `{}`: {reason}; pass the DNS name of the RDS/Aurora endpoint",
        shown(host)
    )]
    #[non_exhaustive]
    InvalidHostname {
        /// The rejected input (hostnames are not secret).
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An IP address was given where the signing hostname belongs.
    #[error(
        "`{ip}` is an IP address, but IAM tokens are signed for, and TLS verifies, the \
         endpoint's DNS name: pass the endpoint hostname (e.g. \
         `mydb.cluster-abc.us-east-1.rds.amazonaws.com`) as the signing host and `{ip}` \
         as the dial address"
    )]
    #[non_exhaustive]
    IpAddressAsSigningHost {
        /// The IP address that was given.
        ip: std::net::IpAddr,
    },

    /// Port 0 was given: it can never be dialled, and a token signed for it is never accepted.
    #[error(
        "port 0 cannot be dialled: pass the port the database listens on (5432 for PostgreSQL, \
         3306 for MySQL, 443 for Aurora DSQL)"
    )]
    #[non_exhaustive]
    InvalidPort {
        /// The rejected port.
        port: u16,
    },

    /// An endpoint string could not be parsed as `host:port`.
    #[error("invalid endpoint `{}`: {reason}", shown(input))]
    #[non_exhaustive]
    InvalidEndpoint {
        /// The rejected input.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The region is not a syntactically valid AWS region name.
    #[error(
        "unknown region `{}`: expected a region name such as `us-east-1`, `cn-north-1` or `us-gov-west-1`",
        shown(region)
    )]
    #[non_exhaustive]
    InvalidRegion {
        /// The rejected input.
        region: String,
    },

    /// No region was given and none could be inferred from the hostname.
    #[error(
        "no region given and none can be inferred from hostname `{host}`: call `.region(...)` \
         (for example with the value of `AWS_REGION`)"
    )]
    #[non_exhaustive]
    RegionNotFound {
        /// The hostname that carries no region.
        host: String,
    },

    /// No region was given for an Aurora Global Database writer endpoint, whose name carries none.
    #[error(
        "`{host}` is an Aurora Global Database writer endpoint: it follows the current primary \
         cluster and its name carries no region. Call `.region(...)` with the primary cluster's \
         region (it changes with a switchover or failover), or connect to a regional cluster endpoint"
    )]
    #[non_exhaustive]
    GlobalWriterEndpointNeedsRegion {
        /// The global writer endpoint.
        host: String,
    },

    /// The database user name cannot be used in a token.
    #[error("invalid database user name: {reason}")]
    #[non_exhaustive]
    InvalidUser {
        /// What is wrong with it (the name itself is not repeated).
        reason: String,
    },

    /// The requested token lifetime is out of range for the service.
    #[error(
        "token lifetime of {requested:?} is out of range: {service} tokens live between 1 s and {max:?}"
    )]
    #[non_exhaustive]
    InvalidExpiry {
        /// The requested lifetime.
        requested: Duration,
        /// The longest lifetime the service accepts.
        max: Duration,
        /// The service the token is for.
        service: &'static str,
    },

    /// The credentials provider failed to produce credentials.
    #[error(
        "could not load AWS credentials: check the environment (AWS_ACCESS_KEY_ID, \
         AWS_PROFILE, the execution role) and that the role may be assumed"
    )]
    ///
    /// The provider's error is shared (`Arc`): every caller that waited on the same
    /// resolution gets it.
    Credentials(#[source] Arc<CredentialsError>),

    /// The credentials had already expired when the token was to be signed.
    #[error(
        "the AWS credentials expired at {expired_at:?}, before the token could be signed: \
         the credentials provider returned stale credentials, or the clock is wrong"
    )]
    #[non_exhaustive]
    CredentialsExpired {
        /// When the credentials expired.
        expired_at: SystemTime,
    },

    /// A part of an IAM policy ARN is malformed.
    #[error("invalid {field} for an IAM policy: {reason}")]
    #[non_exhaustive]
    InvalidPolicyInput {
        /// Which part.
        field: &'static str,
        /// What is expected.
        reason: &'static str,
    },

    /// The signing time cannot be represented (before 1970 or after year 9999).
    #[error("signing time {0:?} is out of range")]
    InvalidSigningTime(SystemTime),

    /// A CA certificate file could not be read.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error("cannot read the CA certificate file `{}`: check the path and that this process may read it", path.display())]
    #[non_exhaustive]
    CaFile {
        /// The file that was asked for.
        path: PathBuf,
        /// Why reading it failed.
        #[source]
        source: std::io::Error,
    },

    /// The CA data is not well-formed PEM.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error(
        "{} is not valid PEM: expected `-----BEGIN CERTIFICATE-----` blocks of base64 each closed by \
         `-----END CERTIFICATE-----` (DER files must be converted first: `openssl x509 -inform der -in ca.der -out ca.pem`)",
        pem_origin(path.as_deref())
    )]
    #[non_exhaustive]
    InvalidCaPem {
        /// The file, if the PEM came from one.
        path: Option<PathBuf>,
        /// What the PEM parser found wrong (a `rustls_pki_types::pem::Error`).
        #[source]
        source: BoxError,
    },

    /// The CA PEM held no `CERTIFICATE` block.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error(
        "no certificate in {}: expected at least one `-----BEGIN CERTIFICATE-----` block \
         (a private key or a certificate request is not a CA certificate)",
        pem_origin(path.as_deref())
    )]
    #[non_exhaustive]
    NoCaCertificates {
        /// The file, if the PEM came from one.
        path: Option<PathBuf>,
    },

    /// A `CERTIFICATE` block decoded, but cannot serve as a trust anchor.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error(
        "certificate #{index} in {} cannot be used as a trust anchor (is it a truncated or corrupted X.509 certificate?)",
        pem_origin(path.as_deref())
    )]
    #[non_exhaustive]
    InvalidCaCertificate {
        /// The file, if the PEM came from one.
        path: Option<PathBuf>,
        /// 1-based position of the certificate among the `CERTIFICATE` blocks.
        index: usize,
        /// Why rustls rejected it (a `rustls::Error`).
        #[source]
        source: BoxError,
    },

    /// A setting read from the environment is missing or unusable.
    #[error("environment variable `{name}` {reason}")]
    #[non_exhaustive]
    InvalidEnvVar {
        /// The variable.
        name: &'static str,
        /// What is wrong, and what is expected.
        reason: String,
    },

    /// A builder setting is out of range.
    #[error("invalid setting `{name}`: {reason}")]
    #[non_exhaustive]
    InvalidSetting {
        /// The setting.
        name: &'static str,
        /// What is expected.
        reason: &'static str,
    },

    /// A connector was given a [`TrustStore`](crate::TrustStore) without certificates: no
    /// server could ever be verified, so every connection would fail.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error(
        "the trust store holds no CA certificate, so no server could be verified: start from \
         `TrustStore::aws_default()` or add a CA with `with_ca_pem` / `with_ca_file`"
    )]
    EmptyTrustStore,

    /// The connection failed before or during the login (TCP, TLS, a server without TLS,
    /// server errors other than a rejected token). The message names the likely cause and
    /// what to do; the driver's error is the [`source`](std::error::Error::source)
    /// (`downcast_ref` to `tokio_postgres::Error`, `mysql_async::Error` or `sqlx::Error`).
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9")))
    )]
    #[non_exhaustive]
    #[error("could not connect to {engine} at {endpoint}: {}", crate::diagnose::connect_hint(.source.as_ref()))]
    Connect {
        /// Which database engine the connection was for.
        engine: Engine,
        /// The endpoint (signing host:port, and the dialled address if different).
        endpoint: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },

    /// The server rejected the IAM token twice: once from the cache, once freshly signed.
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9")))
    )]
    #[error(
        "the {engine} database at {host}:{port} rejected the IAM token for user `{user}` (region {region}) twice, \
         the second time freshly signed. Likely causes: the database user is not set up for IAM login \
         ({setup}); the token was signed for another host, port or \
         region than the server's (through a tunnel, sign for the endpoint name, not the tunnel address); \
         the AWS credentials expired or were revoked; the clock is skewed by more than a few minutes; \
         the IAM policy lacks `rds-db:connect` on this user's `dbuser:` ARN (see `policy`)",
        setup = .engine.iam_user_setup(.user)
    )]
    #[non_exhaustive]
    AuthenticationRejected {
        /// Which database engine answered.
        engine: Engine,
        /// The signing hostname.
        host: String,
        /// The signing port.
        port: u16,
        /// The database user.
        user: String,
        /// The region the token was signed for.
        region: String,
        /// The server's last answer, as the driver's error: a `tokio_postgres::Error` (SQLSTATE
        /// 28000 or 28P01), a `mysql_async::Error` (server error 1045) or, from a sqlx pool, a
        /// `sqlx::Error::Database`; `downcast_ref` it.
        #[source]
        source: BoxError,
    },

    /// The dial address is a DNS name that could not be resolved.
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9")))
    )]
    #[error("cannot resolve the dial address `{host}`: check the name, or dial an IP address")]
    #[non_exhaustive]
    ResolveDialAddress {
        /// The dial host.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },

    /// Connecting (TCP, TLS and login) took longer than the connect timeout.
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9")))
    )]
    #[error(
        "connecting to {endpoint} timed out after {timeout:?}: check that the address is reachable \
         (security groups, VPC routes, the tunnel) or raise `.connect_timeout(...)`"
    )]
    #[non_exhaustive]
    ConnectTimeout {
        /// The endpoint.
        endpoint: String,
        /// The configured timeout.
        timeout: Duration,
    },

    /// An endpoint with a dial address (a tunnel) was given to a sqlx pool: sqlx verifies the
    /// server's certificate against the host it dials, so it cannot dial the tunnel and
    /// verify the signing hostname at once.
    #[cfg(feature = "sqlx-0_9")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlx-0_9")))]
    #[error(
        "sqlx cannot connect through the dial address `{dial}` to `{host}`: it verifies the \
         server's certificate against the host it dials, and a tunnel's address is not a name \
         in the certificate. Dial the endpoint's DNS name and make it resolve to the tunnel \
         (a hosts-file entry `127.0.0.1 {host}`, or a private DNS override), or connect with \
         `PgConnector`/`MySqlConnector`, which verify the signing hostname through a tunnel"
    )]
    #[non_exhaustive]
    DialAddressNotSupported {
        /// The signing hostname.
        host: String,
        /// The dial address (`host:port`) that was refused.
        dial: String,
    },

    /// The credentials provider did not answer within the credentials timeout.
    #[error(
        "the AWS credentials provider did not answer within {timeout:?} (a hung metadata service, \
         STS or SSO endpoint?): check the network path to it, or raise \
         `TokenGenerator::builder(provider).credentials_timeout(...)`"
    )]
    CredentialsTimeout {
        /// The configured credentials timeout.
        timeout: Duration,
    },

    /// The credentials provider returned credentials that expire within the token cache's
    /// refresh margin: a token signed with them would be refused soon after it is handed out.
    #[error(
        "the AWS credentials expire at {expires_at:?}, within the token cache's refresh margin of \
         {margin:?}: the credentials provider returned nearly expired credentials (a stale \
         provider-side cache?) or the clock is wrong; retried with backoff"
    )]
    CredentialsExpiring {
        /// When the credentials expire.
        expires_at: SystemTime,
        /// The cache's refresh margin.
        margin: Duration,
    },
}

/// The database engine a connector talks to, as named in [`Error::AuthenticationRejected`].
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9")))
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Engine {
    /// PostgreSQL, Aurora PostgreSQL.
    Postgres,
    /// MySQL, Aurora MySQL, MariaDB.
    MySql,
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9"))]
impl Engine {
    /// The port the engine listens on unless configured otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::MySql => 3306,
        }
    }

    /// OpenTelemetry's `db.system.name` for the engine.
    pub(crate) fn otel_system_name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgresql",
            Engine::MySql => "mysql",
        }
    }

    /// The name of the engine's connector type, as `Debug` shows it.
    pub(crate) fn connector_name(self) -> &'static str {
        match self {
            Engine::Postgres => "PgConnector",
            Engine::MySql => "MySqlConnector",
        }
    }

    /// How a database user is allowed to log in with IAM tokens on this engine (RDS docs).
    pub(crate) fn iam_user_setup(self, user: &str) -> String {
        match self {
            Engine::Postgres => format!("PostgreSQL: `GRANT rds_iam TO \"{user}\"`"),
            Engine::MySql => format!(
                "MySQL: `CREATE USER '{user}' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'`"
            ),
        }
    }
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9"))]
impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Postgres => "PostgreSQL",
            Engine::MySql => "MySQL",
        })
    }
}

#[cfg(feature = "tls")]
fn pem_origin(path: Option<&std::path::Path>) -> String {
    match path {
        Some(p) => format!("the CA file `{}`", p.display()),
        None => "the CA PEM data".to_owned(),
    }
}

/// A boxed error from another crate, reached through [`std::error::Error::source`]: the
/// concrete types (rustls, drivers) are not part of this crate's API, so upgrading them is
/// not a breaking change.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9"))]
impl Error {
    /// A failed connection to `endpoint`, with the driver's `error` as the source.
    pub(crate) fn connect(
        engine: Engine,
        endpoint: &crate::endpoint::Endpoint,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Connect {
            engine,
            endpoint: endpoint.to_string(),
            source: Box::new(error),
        }
    }
}

impl Error {
    /// The message and every cause that adds something, on one line, for logs and CLIs.
    ///
    /// Drivers repeat their causes in their own messages (`Input/output error: Input/output
    /// error: ...`); printing the `source()` chain naively says the same thing three times.
    pub fn report(&self) -> String {
        report(self)
    }
}

/// `error` and its sources, including what an `io::Error` wraps (its `source()` skips that).
pub(crate) fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| {
        e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static))
            .or_else(|| e.source())
    })
}

/// See [`Error::report`]. A cause whose message contains the next one's is a wrapper that
/// only adds a prefix (`Input/output error: ...`): it is left out; a cause already said is not
/// said again.
pub(crate) fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let causes: Vec<String> = chain(error).skip(1).map(|c| c.to_string()).collect();
    let mut out = error.to_string();
    for (i, text) in causes.iter().enumerate() {
        let wraps_next = causes
            .get(i + 1)
            .is_some_and(|next| text.contains(next.as_str()));
        if !wraps_next && !out.contains(text.as_str()) {
            out.push_str(": ");
            out.push_str(text);
        }
    }
    out
}

/// Longest rejected input repeated in a message: a 10 KB string is cut, not printed.
const MAX_SHOWN: usize = 80;

/// A rejected input as a message shows it: control characters escaped (a NUL or a newline
/// cannot forge log lines), and cut after [`MAX_SHOWN`] characters.
fn shown(input: &str) -> String {
    let mut out: String = input
        .chars()
        .take(MAX_SHOWN)
        .flat_map(char::escape_debug)
        .collect();
    if input.chars().nth(MAX_SHOWN).is_some() {
        out.push_str(&format!("... ({} bytes)", input.len()));
    }
    out
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
