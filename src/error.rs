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
    #[error("invalid hostname `{host}`: {reason}; pass the DNS name of the RDS/Aurora endpoint")]
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
    IpAddressAsSigningHost {
        /// The IP address that was given.
        ip: std::net::IpAddr,
    },

    /// An endpoint string could not be parsed as `host:port`.
    #[error("invalid endpoint `{input}`: {reason}")]
    InvalidEndpoint {
        /// The rejected input.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The region is not a syntactically valid AWS region name.
    #[error(
        "unknown region `{region}`: expected a region name such as `us-east-1`, `cn-north-1` or `us-gov-west-1`"
    )]
    InvalidRegion {
        /// The rejected input.
        region: String,
    },

    /// No region was given and none could be inferred from the hostname.
    #[error(
        "no region given and none can be inferred from hostname `{host}`: call `.region(...)` \
         (for example with the value of `AWS_REGION`)"
    )]
    RegionNotFound {
        /// The hostname that carries no region.
        host: String,
    },

    /// The database user name cannot be used in a token.
    #[error("invalid database user name: {reason}")]
    InvalidUser {
        /// What is wrong with it (the name itself is not repeated).
        reason: String,
    },

    /// The requested token lifetime is out of range for the service.
    #[error(
        "token lifetime of {requested:?} is out of range: {service} tokens live between 1 s and {max:?}"
    )]
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
    CredentialsExpired {
        /// When the credentials expired.
        expired_at: SystemTime,
    },

    /// A part of an IAM policy ARN is malformed.
    #[error("invalid {field} for an IAM policy: {reason}")]
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
    InvalidCaPem {
        /// The file, if the PEM came from one.
        path: Option<PathBuf>,
        /// What the PEM parser found wrong.
        #[source]
        source: rustls_pki_types::pem::Error,
    },

    /// The CA PEM held no `CERTIFICATE` block.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error(
        "no certificate in {}: expected at least one `-----BEGIN CERTIFICATE-----` block \
         (a private key or a certificate request is not a CA certificate)",
        pem_origin(path.as_deref())
    )]
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
    InvalidCaCertificate {
        /// The file, if the PEM came from one.
        path: Option<PathBuf>,
        /// 1-based position of the certificate among the `CERTIFICATE` blocks.
        index: usize,
        /// Why rustls rejected it.
        #[source]
        source: rustls::Error,
    },

    /// A setting read from the environment is missing or unusable.
    #[error("environment variable `{name}` {reason}")]
    InvalidEnvVar {
        /// The variable.
        name: &'static str,
        /// What is wrong, and what is expected.
        reason: &'static str,
    },

    /// The connection to PostgreSQL failed before or during the login (TCP, TLS, server
    /// errors other than a rejected token).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[error(
        "could not connect to PostgreSQL at {endpoint}: see the cause; a TLS certificate error \
         (UnknownIssuer, NotValidForName) means the server's certificate is not trusted for the \
         signing hostname: add its CA with `TrustStore::with_ca_file` or sign for the name in the certificate"
    )]
    Postgres {
        /// The endpoint (signing host:port, and the dialled address if different).
        endpoint: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The connection to MySQL, Aurora MySQL or MariaDB failed before or during the login (TCP,
    /// TLS, a server without TLS, server errors other than a rejected token).
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    #[error(
        "could not connect to MySQL at {endpoint}: see the cause; a TLS certificate error \
         (UnknownIssuer, NotValidForName) means the server's certificate is not trusted for the \
         signing hostname: add its CA with `TrustStore::with_ca_file` or sign for the name in the \
         certificate; \"server does not have this capability\" means the server offered no TLS, \
         and an IAM token is never sent without it"
    )]
    MySql {
        /// The endpoint (signing host:port, and the dialled address if different).
        endpoint: String,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },

    /// The server rejected the IAM token twice: once from the cache, once freshly signed.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
    #[error(
        "the {engine} database at {host}:{port} rejected the IAM token for user `{user}` (region {region}) twice, \
         the second time freshly signed. Likely causes: the database user is not set up for IAM login \
         ({setup}); the token was signed for another host, port or \
         region than the server's (through a tunnel, sign for the endpoint name, not the tunnel address); \
         the AWS credentials expired or were revoked; the clock is skewed by more than a few minutes; \
         the IAM policy lacks `rds-db:connect` on this user's `dbuser:` ARN (see `policy`)",
        setup = .engine.iam_user_setup(.user)
    )]
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
        /// 28000 or 28P01) or a `mysql_async::Error` (server error 1045); `downcast_ref` it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The dial address is a DNS name that could not be resolved.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
    #[error("cannot resolve the dial address `{host}`: check the name, or dial an IP address")]
    ResolveDialAddress {
        /// The dial host.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },

    /// Connecting (TCP, TLS and login) took longer than the connect timeout.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
    #[error(
        "connecting to {endpoint} timed out after {timeout:?}: check that the address is reachable \
         (security groups, VPC routes, the tunnel) or raise `.connect_timeout(...)`"
    )]
    ConnectTimeout {
        /// The endpoint.
        endpoint: String,
        /// The configured timeout.
        timeout: Duration,
    },

    /// The credentials provider did not answer within the credentials timeout.
    #[error(
        "the AWS credentials provider did not answer within {timeout:?} (a hung metadata service, \
         STS or SSO endpoint?): check the network path to it, or raise \
         `TokenGenerator::builder().credentials_timeout(...)`"
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
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Engine {
    /// PostgreSQL, Aurora PostgreSQL.
    Postgres,
    /// MySQL, Aurora MySQL, MariaDB.
    MySql,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl Engine {
    /// How a database user is allowed to log in with IAM tokens on this engine (RDS docs).
    fn iam_user_setup(self, user: &str) -> String {
        match self {
            Engine::Postgres => format!("PostgreSQL: `GRANT rds_iam TO \"{user}\"`"),
            Engine::MySql => format!(
                "MySQL: `CREATE USER '{user}' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'`"
            ),
        }
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
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

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
