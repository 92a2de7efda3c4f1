//! The crate's one error type: opaque, cheap to clone, with a [`kind`](Error::kind) to branch
//! on and a message that says what to do.

mod detail;

use std::fmt;
use std::sync::Arc;

pub(crate) use detail::Detail;

use crate::engine::Engine;

/// What went wrong in this crate.
///
/// Opaque, in the manner of `tokio_postgres::Error` and `reqwest::Error`: branch on
/// [`kind`](Self::kind) (or `is_rejected()`, `is_timeout()`, ...), log the
/// [`engine`](Self::engine), the [`endpoint`](Self::endpoint) and the server's
/// [`sqlstate`](Self::sqlstate) or [MySQL error code](Self::mysql_error_code), and reach the
/// underlying error (a driver's, rustls', the credentials provider's) through
/// [`source`](std::error::Error::source).
///
/// - `Display` is one sentence: what failed and what to do, the likely cause named once.
/// - `Debug` is the same message followed by its causes (one per line, each said once), so a
///   `fn main() -> Result<(), rds_iam_auth::Error>` prints something a person can act on;
///   `{:#?}` shows the fields.
/// - [`report`](Self::report) is the message and its causes on one line, for logs.
///
/// Messages never contain a token, a secret access key or a session token.
///
/// Cloning is cheap (a reference count): every caller that waited on one failed signing
/// gets the same error.
///
/// ```
/// use rds_iam_auth::{Endpoint, ErrorKind};
///
/// let error = Endpoint::new("10.0.0.5", 5432).unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::InvalidInput);
/// assert_eq!(error.setting(), Some("hostname"));
/// assert!(error.to_string().contains("as the dial address"));
/// ```
#[derive(Clone)]
pub struct Error {
    detail: Arc<Detail>,
}

/// The kind of an [`Error`]: what callers branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Something the caller gave is unusable: a hostname, port, region, user name, token
    /// lifetime, CA file, setting or environment variable, or a combination a front end
    /// cannot honour. Fix the input; retrying will not help. [`Error::setting`] names it.
    InvalidInput,
    /// No usable AWS credentials: the provider failed, timed out, or returned expired (or
    /// nearly expired) credentials.
    Credentials,
    /// The connection failed before or during the login (DNS, TCP, a server error other than
    /// a rejected token). The driver's error is the source.
    Connect,
    /// TLS stopped the login (an untrusted or misnamed certificate, a server without TLS):
    /// no token was sent.
    Tls,
    /// Connecting took longer than the connect timeout, or an open connection did not answer
    /// a pool's check within it.
    Timeout,
    /// The server rejected the IAM token twice, the second time freshly signed.
    Rejected,
}

/// A server's code for a refused login or a failed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
// Which variants a build constructs depends on the drivers it has.
#[allow(dead_code)]
pub(crate) enum ServerCode {
    /// PostgreSQL's SQLSTATE (`28P01`).
    SqlState(String),
    /// MySQL's error number (`1045`).
    MySql(u16),
}

/// A boxed error from another crate, reached through [`std::error::Error::source`]: the
/// concrete types (rustls, drivers) are not part of this crate's API.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        use Detail as D;
        match &*self.detail {
            D::Credentials(_)
            | D::CredentialsExpired { .. }
            | D::CredentialsTimeout { .. }
            | D::CredentialsExpiring { .. } => ErrorKind::Credentials,
            D::Connect { tls: true, .. } => ErrorKind::Tls,
            D::Connect { .. } | D::ResolveDialAddress { .. } => ErrorKind::Connect,
            D::ConnectTimeout { .. } | D::Unresponsive { .. } => ErrorKind::Timeout,
            D::AuthenticationRejected { .. } => ErrorKind::Rejected,
            // Listed, not `_`: a new variant must be given its kind.
            D::InvalidHostname { .. }
            | D::IpAddressAsSigningHost { .. }
            | D::InvalidPort
            | D::InvalidEndpoint { .. }
            | D::InvalidRegion { .. }
            | D::RegionNotFound { .. }
            | D::GlobalWriterEndpointNeedsRegion { .. }
            | D::InvalidUser { .. }
            | D::InvalidExpiry { .. }
            | D::InvalidPolicyInput { .. }
            | D::InvalidSigningTime(_)
            | D::InvalidEnvVar { .. }
            | D::InvalidSetting { .. }
            | D::DialAddressNotSupported { .. } => ErrorKind::InvalidInput,
            #[cfg(feature = "proxy")]
            D::RemoteListen { .. } | D::ProxyListen { .. } | D::ProxyLocalTls { .. } => {
                ErrorKind::InvalidInput
            }
            #[cfg(feature = "tls")]
            D::CaFile { .. }
            | D::InvalidCaPem { .. }
            | D::NoCaCertificates { .. }
            | D::InvalidCaCertificate { .. }
            | D::EmptyTrustStore => ErrorKind::InvalidInput,
        }
    }

    /// `true` when the server rejected the IAM token (twice: the second one freshly signed).
    pub fn is_rejected(&self) -> bool {
        self.kind() == ErrorKind::Rejected
    }

    /// `true` when connecting, or resolving credentials, took longer than its timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(
            *self.detail,
            Detail::ConnectTimeout { .. }
                | Detail::Unresponsive { .. }
                | Detail::CredentialsTimeout { .. }
        )
    }

    /// `true` when TLS stopped the login before any token was sent.
    pub fn is_tls(&self) -> bool {
        self.kind() == ErrorKind::Tls
    }

    /// `true` when an input or setting is unusable ([`ErrorKind::InvalidInput`]).
    pub fn is_invalid_input(&self) -> bool {
        self.kind() == ErrorKind::InvalidInput
    }

    /// `true` when no usable AWS credentials could be had ([`ErrorKind::Credentials`]).
    pub fn is_credentials(&self) -> bool {
        self.kind() == ErrorKind::Credentials
    }

    /// The engine of the connection that failed, if the error is about one.
    pub fn engine(&self) -> Option<Engine> {
        match &*self.detail {
            Detail::Connect { engine, .. }
            | Detail::AuthenticationRejected { engine, .. }
            | Detail::ResolveDialAddress { engine, .. }
            | Detail::ConnectTimeout { engine, .. }
            | Detail::Unresponsive { engine, .. } => Some(*engine),
            _ => None,
        }
    }

    /// The endpoint of the connection that failed (`host:port`, and the dialled address when
    /// it differs), if the error is about one.
    pub fn endpoint(&self) -> Option<String> {
        match &*self.detail {
            Detail::Connect { endpoint, .. }
            | Detail::ConnectTimeout { endpoint, .. }
            | Detail::Unresponsive { endpoint, .. } => Some(endpoint.clone()),
            Detail::AuthenticationRejected { host, port, .. } => Some(format!("{host}:{port}")),
            _ => None,
        }
    }

    /// The server's SQLSTATE (PostgreSQL, Aurora DSQL), when the server refused the login
    /// or the connection with one: `28P01` for a rejected token.
    pub fn sqlstate(&self) -> Option<&str> {
        match self.code()? {
            ServerCode::SqlState(code) => Some(code),
            ServerCode::MySql(_) => None,
        }
    }

    /// The server's error number (MySQL, MariaDB), when the server refused the login with
    /// one: `1045` for a rejected token.
    pub fn mysql_error_code(&self) -> Option<u16> {
        match self.code()? {
            ServerCode::MySql(code) => Some(*code),
            ServerCode::SqlState(_) => None,
        }
    }

    /// The name of the input or setting at fault, for [`ErrorKind::InvalidInput`] errors:
    /// `hostname`, `port`, `endpoint`, `region`, `user`, `token_lifetime`, `ca_file`,
    /// `ca_pem`, `trust`, `signing_time`, `dial_address`, `listen`, `local_tls`, a policy field, a builder setting's
    /// name (`connect_timeout`, ...) or an environment variable's (`DBEndPoint`, ...).
    pub fn setting(&self) -> Option<&str> {
        use Detail as D;
        Some(match &*self.detail {
            D::InvalidHostname { .. } | D::IpAddressAsSigningHost { .. } => "hostname",
            D::InvalidPort => "port",
            D::InvalidEndpoint { .. } => "endpoint",
            D::InvalidRegion { .. }
            | D::RegionNotFound { .. }
            | D::GlobalWriterEndpointNeedsRegion { .. } => "region",
            D::InvalidUser { .. } => "user",
            D::InvalidExpiry { .. } => "token_lifetime",
            D::InvalidPolicyInput { field, .. } => field,
            D::InvalidSigningTime(_) => "signing_time",
            #[cfg(feature = "tls")]
            D::CaFile { .. } => "ca_file",
            #[cfg(feature = "tls")]
            D::InvalidCaPem { .. }
            | D::NoCaCertificates { .. }
            | D::InvalidCaCertificate { .. } => "ca_pem",
            #[cfg(feature = "tls")]
            D::EmptyTrustStore => "trust",
            D::InvalidEnvVar { name, .. } | D::InvalidSetting { name, .. } => name,
            D::DialAddressNotSupported { .. } => "dial_address",
            #[cfg(feature = "proxy")]
            D::RemoteListen { .. } | D::ProxyListen { .. } => "listen",
            #[cfg(feature = "proxy")]
            D::ProxyLocalTls { .. } => "local_tls",
            _ => return None,
        })
    }

    /// The message and every cause that adds something, on one line, for logs and CLIs.
    ///
    /// Drivers repeat their causes in their own messages (`Input/output error: Input/output
    /// error: ...`); printing the `source()` chain naively says the same thing three times.
    pub fn report(&self) -> String {
        report(self)
    }

    /// What went wrong, for the crate's own decisions.
    #[cfg_attr(not(any(test, feature = "doctor")), allow(dead_code))]
    pub(crate) fn detail(&self) -> &Detail {
        &self.detail
    }

    fn code(&self) -> Option<&ServerCode> {
        match &*self.detail {
            Detail::Connect { code, .. } | Detail::AuthenticationRejected { code, .. } => {
                code.as_ref()
            }
            _ => None,
        }
    }
}

impl From<Detail> for Error {
    fn from(detail: Detail) -> Self {
        Self {
            detail: Arc::new(detail),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.detail, f)
    }
}

impl fmt::Debug for Error {
    /// The message, then each cause that adds something on a line of its own (what `main`
    /// returning `Err` prints). `{:#?}`: the fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return f
                .debug_struct("Error")
                .field("kind", &self.kind())
                .field("engine", &self.engine())
                .field("endpoint", &self.endpoint())
                .field("code", &self.code())
                .field("message", &self.to_string())
                .field("causes", &causes(self))
                .finish();
        }
        write!(f, "{self}")?;
        let causes = causes(self);
        if !causes.is_empty() {
            f.write_str("\n\nCaused by:")?;
            for cause in causes {
                write!(f, "\n    {cause}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.detail)
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

/// The causes of `error` worth saying: a cause whose message contains the next one's is a
/// wrapper that only adds a prefix (`Input/output error: ...`) and is left out, and a cause
/// the message (or an earlier cause) already says is not said again.
fn causes(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let all: Vec<String> = chain(error).skip(1).map(|c| c.to_string()).collect();
    let mut said = error.to_string();
    let mut kept = Vec::new();
    for (i, text) in all.iter().enumerate() {
        let wraps_next = all
            .get(i + 1)
            .is_some_and(|next| text.contains(next.as_str()));
        if !wraps_next && !said.contains(text.as_str()) {
            said.push_str(text);
            kept.push(text.clone());
        }
    }
    kept
}

/// See [`Error::report`].
pub(crate) fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    for cause in causes(error) {
        out.push_str(": ");
        out.push_str(&cause);
    }
    out
}

/// Longest rejected input repeated in a message: a 10 KB string is cut, not printed.
const MAX_SHOWN: usize = 80;

/// A rejected input as a message shows it: control characters escaped (a NUL or a newline
/// cannot forge log lines), and cut after [`MAX_SHOWN`] characters.
pub(crate) fn shown(input: &str) -> String {
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
