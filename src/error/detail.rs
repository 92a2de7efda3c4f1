//! What went wrong, one variant per failure: the crate builds these, [`Error`](super::Error)
//! wraps one, and its `Display` is the variant's message.
//!
//! Crate-internal: callers see the [`ErrorKind`](super::ErrorKind) and the accessors, so a
//! new failure (or a new field) is not a breaking change.

use std::borrow::Cow;
#[cfg(feature = "tls")]
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::error::CredentialsError;

use super::{BoxError, ServerCode, shown};
use crate::engine::Engine;

/// Everything that can go wrong in this crate. Messages never contain a token, a secret
/// access key or a session token; each says what was wrong and what to do about it.
#[derive(Debug, thiserror::Error)]
// The connection failures are constructed by the front ends, which a build may leave out.
#[cfg_attr(not(feature = "__login"), allow(dead_code))]
pub(crate) enum Detail {
    #[error(
        "invalid hostname `{}`: {reason}; pass the DNS name of the RDS/Aurora endpoint",
        shown(host)
    )]
    InvalidHostname { host: String, reason: &'static str },

    #[error(
        "`{ip}` is an IP address, but IAM tokens are signed for, and TLS verifies, the \
         endpoint's DNS name: pass the endpoint hostname (e.g. \
         `mydb.cluster-abc.us-east-1.rds.amazonaws.com`) as the signing host and `{ip}` \
         as the dial address"
    )]
    IpAddressAsSigningHost { ip: std::net::IpAddr },

    #[error(
        "port 0 cannot be dialled: pass the port the database listens on (5432 for PostgreSQL \
         and Aurora DSQL, 3306 for MySQL)"
    )]
    InvalidPort,

    #[error("invalid endpoint `{}`: {reason}", shown(input))]
    InvalidEndpoint { input: String, reason: &'static str },

    #[error(
        "unknown region `{}`: expected a region name such as `us-east-1`, `cn-north-1` or `us-gov-west-1`",
        shown(region)
    )]
    InvalidRegion { region: String },

    #[error(
        "no region given and none can be inferred from hostname `{host}`: call `.region(...)` \
         (for example with the value of `AWS_REGION`)"
    )]
    RegionNotFound { host: String },

    #[error(
        "`{host}` is an Aurora Global Database writer endpoint: it follows the current primary \
         cluster and its name carries no region. Call `.region(...)` with the primary cluster's \
         region (it changes with a switchover or failover), or connect to a regional cluster endpoint"
    )]
    GlobalWriterEndpointNeedsRegion { host: String },

    #[error("invalid database user name: {reason}")]
    InvalidUser { reason: String },

    #[error(
        "token lifetime of {} is out of range: {service} tokens live between 1 s and {} s",
        seconds(*requested),
        max.as_secs()
    )]
    InvalidExpiry {
        requested: Duration,
        max: Duration,
        service: &'static str,
    },

    #[error(
        "could not load AWS credentials: check the environment (AWS_ACCESS_KEY_ID, \
         AWS_PROFILE, the execution role) and that the role may be assumed"
    )]
    Credentials(#[source] CredentialsError),

    #[error(
        "the AWS credentials expired at {expired_at:?}, before the token could be signed: \
         the credentials provider returned stale credentials, or the clock is wrong"
    )]
    CredentialsExpired { expired_at: SystemTime },

    #[error("invalid {field} for an IAM policy: {reason}")]
    InvalidPolicyInput {
        field: &'static str,
        reason: &'static str,
    },

    #[error("signing time {0:?} is out of range (before 1970 or after year 9999): check the clock")]
    InvalidSigningTime(SystemTime),

    #[cfg(feature = "tls")]
    #[error("cannot read the CA certificate file `{}`: check the path and that this process may read it", path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[cfg(feature = "tls")]
    #[error(
        "{} is not valid PEM: expected `-----BEGIN CERTIFICATE-----` blocks of base64 each closed by \
         `-----END CERTIFICATE-----` (DER files must be converted first: `openssl x509 -inform der -in ca.der -out ca.pem`)",
        pem_origin(path.as_deref())
    )]
    InvalidCaPem {
        path: Option<PathBuf>,
        #[source]
        source: BoxError,
    },

    #[cfg(feature = "tls")]
    #[error(
        "no certificate in {}: expected at least one `-----BEGIN CERTIFICATE-----` block \
         (a private key or a certificate request is not a CA certificate)",
        pem_origin(path.as_deref())
    )]
    NoCaCertificates { path: Option<PathBuf> },

    #[cfg(feature = "tls")]
    #[error(
        "certificate #{index} in {} cannot be used as a trust anchor (is it a truncated or corrupted X.509 certificate?)",
        pem_origin(path.as_deref())
    )]
    InvalidCaCertificate {
        path: Option<PathBuf>,
        index: usize,
        #[source]
        source: BoxError,
    },

    #[error("environment variable `{name}` {reason}")]
    InvalidEnvVar { name: &'static str, reason: String },

    #[error("invalid setting `{name}`: {reason}")]
    InvalidSetting {
        name: &'static str,
        reason: Cow<'static, str>,
    },

    #[cfg(feature = "tls")]
    #[error(
        "the trust store holds no CA certificate, so no server could be verified: start from \
         `TrustStore::aws_default()` or add a CA with `with_ca_pem` / `with_ca_file`"
    )]
    EmptyTrustStore,

    /// The hint is the diagnosis of the source's chain, made where the error is built.
    #[error("could not connect to {engine} at {endpoint}: {hint}")]
    Connect {
        engine: Engine,
        endpoint: String,
        hint: Cow<'static, str>,
        /// The TLS handshake (or the server's lack of TLS) stopped the login: no token sent.
        tls: bool,
        code: Option<ServerCode>,
        #[source]
        source: BoxError,
    },

    #[error(
        "the {engine} database at {host}:{port} rejected the IAM token for user `{user}` (region {region}) twice, \
         the second time freshly signed. Likely causes: {}",
        rejection_causes(*engine, user, *dsql)
    )]
    AuthenticationRejected {
        engine: Engine,
        host: String,
        port: u16,
        user: String,
        region: String,
        dsql: bool,
        code: Option<ServerCode>,
        #[source]
        source: BoxError,
    },

    #[error("cannot resolve the dial address `{host}`: check the name, or dial an IP address")]
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    ResolveDialAddress {
        engine: Engine,
        host: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "connecting to {endpoint} timed out after {}: check that the address is reachable \
         (security groups, VPC routes, the tunnel) or raise {setting}",
        seconds(*timeout)
    )]
    ConnectTimeout {
        engine: Engine,
        endpoint: String,
        timeout: Duration,
        /// The setting that bounds it, as the caller sets it.
        setting: &'static str,
    },

    #[error(
        "the open connection to {endpoint} did not answer within {} (the server or the path to \
         it went away: a failover, a partition, a NAT that dropped its idle state); the pool \
         opens a new one",
        seconds(*timeout)
    )]
    #[cfg_attr(not(feature = "__pool"), allow(dead_code))]
    Unresponsive {
        engine: Engine,
        endpoint: String,
        timeout: Duration,
    },

    #[error(
        "sqlx cannot connect through the dial address `{dial}` to `{host}`: it verifies the \
         server's certificate against the host it dials, and a tunnel's address is not a name \
         in the certificate. Dial the endpoint's DNS name and make it resolve to the tunnel \
         (a hosts-file entry `127.0.0.1 {host}`, or a private DNS override), or connect with \
         `PgConnector`/`MySqlConnector`, which verify the signing hostname through a tunnel"
    )]
    DialAddressNotSupported { host: String, dial: String },

    #[cfg(feature = "proxy")]
    #[error(
        "refusing to listen on `{addr}`, which is not a loopback address: anyone who can reach \
         it logs in as this IAM identity, without a password. Listen on 127.0.0.1 or ::1 (or a \
         Unix socket), or allow it explicitly with `.allow_remote(true)`"
    )]
    RemoteListen { addr: std::net::SocketAddr },

    #[cfg(feature = "proxy")]
    #[error("cannot listen on {what}: {}", crate::error::report(source))]
    ProxyListen {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[cfg(feature = "proxy")]
    #[error("unusable local TLS certificate or key: {reason}")]
    ProxyLocalTls {
        reason: String,
        #[source]
        source: Option<BoxError>,
    },

    #[error(
        "the AWS credentials provider did not answer within {} (a hung metadata service, \
         STS or SSO endpoint?): check the network path to it, or raise \
         `TokenGenerator::builder(provider).credentials_timeout(...)`",
        seconds(*timeout)
    )]
    CredentialsTimeout { timeout: Duration },

    #[error(
        "the AWS credentials expire at {expires_at:?}, within the token cache's refresh margin of \
         {} s: the credentials provider returned nearly expired credentials (a stale \
         provider-side cache?) or the clock is wrong; retried with backoff",
        margin.as_secs()
    )]
    CredentialsExpiring {
        expires_at: SystemTime,
        margin: Duration,
    },
}

/// A duration as a person reads it in a message: `10 s`, `1.5 s`, `250 ms`.
pub(crate) fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The causes of a rejection, most likely first, for the service the token was for.
fn rejection_causes(engine: Engine, user: &str, dsql: bool) -> String {
    if dsql {
        return format!(
            "the role `{user}` does not exist or is not linked to this IAM principal \
             (`AWS IAM GRANT {user} TO '<role ARN>'`; the `admin` role needs no link); \
             the token was signed for another cluster endpoint or region; the AWS \
             credentials expired or were revoked; the clock is skewed by more than a few \
             minutes; the IAM policy lacks `dsql:DbConnect` (`dsql:DbConnectAdmin` for \
             `admin`) on this cluster's ARN (see `policy`)"
        );
    }
    format!(
        "the database user is not set up for IAM login ({setup}); the token was signed for \
         another host, port or region than the server's (through a tunnel, sign for the \
         endpoint name, not the tunnel address); the AWS credentials expired or were revoked; \
         the clock is skewed by more than a few minutes; the IAM policy lacks \
         `rds-db:connect` on this user's `dbuser:` ARN (see `policy`)",
        setup = engine.iam_user_setup(user)
    )
}

#[cfg(feature = "tls")]
fn pem_origin(path: Option<&std::path::Path>) -> String {
    match path {
        Some(p) => format!("the CA file `{}`", p.display()),
        None => "the CA PEM data".to_owned(),
    }
}
