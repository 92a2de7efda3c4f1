//! The crate's one error type.

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
    Credentials(#[source] CredentialsError),

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
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
