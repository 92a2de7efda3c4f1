//! IAM auth tokens: what one is for ([`TokenRequest`]), how it is signed ([`TokenSigner`]),
//! who signs it with which credentials ([`TokenGenerator`]), and the token itself
//! ([`IamAuthToken`]: a secret with an expiry).

mod generator;
mod request;
mod signer;

pub use crate::credentials::DEFAULT_CREDENTIALS_TIMEOUT;
pub use generator::{TokenGenerator, TokenGeneratorBuilder};
pub use request::{
    Action, DSQL_MAX_EXPIRY, MAX_USER_LEN, RDS_MAX_EXPIRY, TokenRequest, TokenRequestBuilder,
};
pub use signer::TokenSigner;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use zeroize::Zeroize;

/// An IAM database authentication token: the password to send to the database.
///
/// It is a SigV4 query-presigned URL without its scheme
/// (`host:port/?Action=connect&DBUser=...&X-Amz-Signature=...`), valid until
/// [`expires_at`](Self::expires_at). Anyone holding it can log in as its user until then,
/// so it never shows in `Debug` or `Display`; the text is reached only through
/// [`expose`](Self::expose). Its memory is zeroed when the last clone is dropped.
///
/// That covers this crate's copies only. A driver given the token as a password keeps its own
/// copy, freed without zeroing: tokio-postgres's per-login `Config` until the login ends,
/// mysql_async's connection options for the connection's whole life (which
/// `MySqlConnection` keeps out of reach), and the drivers' and rustls's internal buffers.
///
/// Cloning is cheap (a reference count), which is what lets the token cache hand out
/// tokens without allocating.
#[derive(Clone)]
pub struct IamAuthToken {
    inner: Arc<Inner>,
}

// Aligned to two cache lines so that copies made by `duplicate` never share one: the token
// cache hands different threads different copies, and their reference counts then never
// bounce between cores. The copies share the text, which is only read.
#[repr(align(128))]
struct Inner {
    value: Arc<Secret>,
    signed_at: SystemTime,
    expires_at: SystemTime,
    /// Which credentials resolution signed it (0: unknown), so that the token cache can
    /// tell, when a token is rejected, whether the current one shares its credentials.
    credentials_generation: u64,
}

/// The token text, zeroed when the last copy that shares it is dropped.
struct Secret(String);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl IamAuthToken {
    pub(crate) fn new(value: String, signed_at: SystemTime, expires_at: SystemTime) -> Self {
        Self {
            inner: Arc::new(Inner {
                value: Arc::new(Secret(value)),
                signed_at,
                expires_at,
                credentials_generation: 0,
            }),
        }
    }

    /// Stamps the credentials resolution that signed it (before the token is shared).
    pub(crate) fn with_credentials_generation(mut self, generation: u64) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.credentials_generation = generation,
            None => {
                self = self.duplicate();
                return self.with_credentials_generation(generation);
            }
        }
        self
    }

    pub(crate) fn credentials_generation(&self) -> u64 {
        self.inner.credentials_generation
    }

    /// The same token with a reference count of its own (the text is shared, not copied).
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            inner: Arc::new(Inner {
                value: self.inner.value.clone(),
                signed_at: self.inner.signed_at,
                expires_at: self.inner.expires_at,
                credentials_generation: self.inner.credentials_generation,
            }),
        }
    }

    /// The token text, to pass as the database password.
    ///
    /// Named so that every place a token leaves this type stands out in review:
    /// do not log what it returns.
    pub fn expose(&self) -> &str {
        &self.inner.value.0
    }

    /// When the token was signed (`X-Amz-Date`, whole seconds).
    pub fn signed_at(&self) -> SystemTime {
        self.inner.signed_at
    }

    /// When the token stops being accepted: the signing time plus its lifetime, or the
    /// signing credentials' own expiry if that comes first.
    pub fn expires_at(&self) -> SystemTime {
        self.inner.expires_at
    }

    /// How long the token is still accepted, by the system clock: zero once it has expired.
    /// For a person to read (`token valid for 899 more seconds`); the cache judges tokens by
    /// its own clock.
    pub fn lifetime_left(&self) -> std::time::Duration {
        self.inner
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    }

    /// `true` if the token is still valid at `now`.
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        now < self.inner.expires_at
    }

    /// `true` if both are the same token text (for example, to tell whether a refresh
    /// produced a new token), compared without exposing it.
    pub fn same_token(&self, other: &IamAuthToken) -> bool {
        Arc::ptr_eq(&self.inner.value, &other.inner.value)
            || self.inner.value.0 == other.inner.value.0
    }
}

impl fmt::Debug for IamAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IamAuthToken")
            .field("token", &"<redacted>")
            .field("signed_at", &self.inner.signed_at)
            .field("expires_at", &self.inner.expires_at)
            .finish()
    }
}

impl fmt::Display for IamAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted IAM auth token>")
    }
}
