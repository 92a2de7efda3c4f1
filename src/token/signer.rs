//! SigV4 query presigning for auth tokens, byte-identical to botocore, with a signing-key cache.
//!
//! A token is a presigned `GET https://host:port/?Action=connect&DBUser=...` whose shape
//! never changes, so the canonical request is written straight into the hash rather than
//! built through aws-sigv4's general HTTP path; the SigV4 primitives themselves
//! ([`generate_signing_key`], [`calculate_signature`]) are aws-sigv4's. The signing key
//! depends only on the secret key, the date, the region and the service, so it is derived
//! once per day instead of with four HMACs per token. The test suite checks this path against
//! botocore's vectors and against aws-sigv4's general presigning for arbitrary inputs.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Detail, Result};
use crate::token::IamAuthToken;
use crate::token::{Action, TokenRequest};

/// RFC 3986 unreserved characters stay; everything else is percent-encoded, as botocore's
/// `quote(safe='-_.~')` does. (A raw `+` would be read as a space by the server.)
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// SHA-256 of the empty body: presigned GETs sign an empty payload.
const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// How many signing keys to remember: one per (credentials, day, region, service) in use.
const KEY_CACHE_SLOTS: usize = 4;

/// Signs [`TokenRequest`]s with given credentials at a given time. Pure computation: no I/O.
///
/// Most code uses [`TokenGenerator`](crate::TokenGenerator), which adds a credentials
/// provider and a clock; this is the layer below it, for callers that hold credentials.
///
/// ```
/// use aws_credential_types::Credentials;
/// use rds_iam_auth::token::TokenSigner;
/// use rds_iam_auth::{Endpoint, TokenRequest};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "example");
/// let endpoint = Endpoint::new("mydb.abc123.us-east-1.rds.amazonaws.com", 5432)?;
/// let request = TokenRequest::rds(&endpoint, "iam_user").build()?;
/// let at = UNIX_EPOCH + Duration::from_secs(1_705_322_096);
/// let token = TokenSigner::new().sign(&credentials, &request, at)?;
/// assert!(token.expose().starts_with("mydb.abc123.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=iam_user&"));
/// # Ok::<(), rds_iam_auth::Error>(())
/// ```
#[derive(Default)]
pub struct TokenSigner {
    keys: Mutex<Vec<CachedKey>>,
}

/// Signing material and what it was derived from.
struct CachedKey {
    secret: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
    date: [u8; 8],
    region: String,
    service: &'static str,
    material: SigningMaterial,
}

/// What signing needs from the credentials beyond the access key id.
#[derive(Clone)]
struct SigningMaterial {
    key: Zeroizing<[u8; 32]>,
    /// The session token, percent-encoded for the query string.
    session_token: Option<Arc<Zeroizing<String>>>,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.keys.lock().map(|k| k.len()).unwrap_or(0);
        f.debug_struct("TokenSigner")
            .field("cached_signing_keys", &cached)
            .finish()
    }
}

/// `YYYYMMDD` and `YYYYMMDDTHHMMSSZ` for one instant.
struct AmzDate {
    date_time: String,
}

impl AmzDate {
    fn new(at: SystemTime) -> Result<Self> {
        let secs = at
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Detail::InvalidSigningTime(at))?
            .as_secs();
        let t = i64::try_from(secs)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .filter(|t| (0..=9999).contains(&t.year()))
            .ok_or(Detail::InvalidSigningTime(at))?;
        // Fixed-width digits by hand: `write!` with padding costs more than the SHA-256
        // of a short canonical request.
        let mut date_time = String::with_capacity(16);
        push_digits(&mut date_time, t.year().unsigned_abs(), 4);
        push_digits(&mut date_time, u8::from(t.month()).into(), 2);
        push_digits(&mut date_time, t.day().into(), 2);
        date_time.push('T');
        push_digits(&mut date_time, t.hour().into(), 2);
        push_digits(&mut date_time, t.minute().into(), 2);
        push_digits(&mut date_time, t.second().into(), 2);
        date_time.push('Z');
        Ok(Self { date_time })
    }

    fn date(&self) -> &str {
        &self.date_time[..8]
    }
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn push_digits(out: &mut String, n: u32, width: u32) {
    for i in (0..width).rev() {
        let digit = (n / 10u32.pow(i)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

impl TokenSigner {
    /// A signer with an empty signing-key cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Signs `request` with `credentials` as of `at` (truncated to whole seconds).
    ///
    /// The token's [`expires_at`](IamAuthToken::expires_at) is `at + expires_in`, or the
    /// credentials' expiry if that is earlier. Credentials already expired at `at` are refused.
    pub fn sign(
        &self,
        credentials: &Credentials,
        request: &TokenRequest,
        at: SystemTime,
    ) -> Result<IamAuthToken> {
        let amz = AmzDate::new(at)?;
        let signed_at = truncate_to_seconds(at);
        let expires_at = token_expiry(credentials, signed_at, request.expires_in())?;

        let scope_tail = ScopeTail {
            date: amz.date(),
            region: request.region().as_str(),
            service: request.action().service(),
        };
        let query = common_query(credentials, request, &amz, &scope_tail);
        let material = self.signing_material(credentials, at, &scope_tail);
        let session_token = material.session_token.as_deref().map(|t| t.as_str());

        let canonical_hash = hash_canonical_request(request, &query, session_token);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{}/{}/{}/aws4_request\n{}",
            amz.date_time, scope_tail.date, scope_tail.region, scope_tail.service, canonical_hash
        );
        let signature = calculate_signature(material.key.as_ref(), string_to_sign.as_bytes());

        let token = assemble_token(request, &query, session_token, &signature);
        Ok(IamAuthToken::new(token, signed_at, expires_at))
    }

    /// The signing key and the encoded session token for these credentials, day, region
    /// and service, derived on first use and remembered.
    fn signing_material(
        &self,
        credentials: &Credentials,
        at: SystemTime,
        scope: &ScopeTail<'_>,
    ) -> SigningMaterial {
        let date: [u8; 8] = scope.date.as_bytes().try_into().unwrap_or_default();
        let secret = credentials.secret_access_key();
        let session_token = credentials.session_token();
        // A poisoned lock only means another thread panicked mid-update of a cache of
        // derivable values: start the cache afresh rather than propagate the panic.
        let mut keys = self.keys.lock().unwrap_or_else(|poisoned| {
            let mut keys = poisoned.into_inner();
            keys.clear();
            keys
        });
        let hit = keys.iter().find(|k| {
            k.date == date
                && k.service == scope.service
                && k.region == scope.region
                && k.secret.as_str() == secret
                && k.session_token.as_deref().map(String::as_str) == session_token
        });
        if let Some(cached) = hit {
            return cached.material.clone();
        }
        let derived = generate_signing_key(secret, at, scope.region, scope.service);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(derived.as_ref());
        let material = SigningMaterial {
            key,
            // Encoding a 1 KB STS token is the costliest step of a token: do it once.
            session_token: session_token.map(|t| {
                Arc::new(Zeroizing::new(
                    utf8_percent_encode(t, QUERY_VALUE).to_string(),
                ))
            }),
        };
        if keys.len() == KEY_CACHE_SLOTS {
            keys.remove(0);
        }
        keys.push(CachedKey {
            secret: Zeroizing::new(secret.to_owned()),
            session_token: session_token.map(|t| Zeroizing::new(t.to_owned())),
            date,
            region: scope.region.to_owned(),
            service: scope.service,
            material: material.clone(),
        });
        material
    }
}

/// The credential scope after the access key id: `date/region/service/aws4_request`.
struct ScopeTail<'a> {
    date: &'a str,
    region: &'a str,
    service: &'static str,
}

fn truncate_to_seconds(at: SystemTime) -> SystemTime {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn token_expiry(
    credentials: &Credentials,
    signed_at: SystemTime,
    expires_in: Duration,
) -> Result<SystemTime> {
    let by_lifetime = signed_at + expires_in;
    match credentials.expiry() {
        Some(expired_at) if expired_at <= signed_at => {
            Err(Detail::CredentialsExpired { expired_at }.into())
        }
        Some(credentials_expiry) => Ok(by_lifetime.min(credentials_expiry)),
        None => Ok(by_lifetime),
    }
}

/// The query parameters up to `X-Amz-Expires`: the part that is in the same order in the
/// canonical request (sorted) and in the token (botocore's order).
fn common_query(
    credentials: &Credentials,
    request: &TokenRequest,
    amz: &AmzDate,
    scope: &ScopeTail<'_>,
) -> String {
    let mut q = String::with_capacity(256 + 3 * request.user().len());
    q.push_str("Action=");
    q.push_str(request.action().name());
    if request.action() == Action::RdsConnect {
        q.push_str("&DBUser=");
        q.extend(utf8_percent_encode(request.user(), QUERY_VALUE));
    }
    q.push_str("&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
    q.extend(utf8_percent_encode(
        credentials.access_key_id(),
        QUERY_VALUE,
    ));
    let _ = write!(
        q,
        "%2F{}%2F{}%2F{}%2Faws4_request&X-Amz-Date={}&X-Amz-Expires={}",
        scope.date,
        scope.region,
        scope.service,
        amz.date_time,
        request.expires_in().as_secs()
    );
    q
}

/// Hex SHA-256 of the canonical request, fed to the hash piece by piece.
fn hash_canonical_request(
    request: &TokenRequest,
    query: &str,
    session_token: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    h.update(b"GET\n/\n");
    h.update(query.as_bytes());
    // Sorted order: X-Amz-Security-Token sorts before X-Amz-SignedHeaders.
    if let Some(token) = session_token {
        h.update(b"&X-Amz-Security-Token=");
        h.update(token.as_bytes());
    }
    h.update(b"&X-Amz-SignedHeaders=host\nhost:");
    // The signed host is lowercased (botocore lowercases it; the token text keeps the case
    // given), with the port unless it is HTTPS's default 443; DSQL signs no port.
    let host = request.host();
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        h.update(host.to_ascii_lowercase().as_bytes());
    } else {
        h.update(host.as_bytes());
    }
    if request.action() == Action::RdsConnect && request.port() != 443 {
        let mut port = String::with_capacity(6);
        port.push(':');
        push_digits(
            &mut port,
            request.port().into(),
            digit_count(request.port().into()),
        );
        h.update(port.as_bytes());
    }
    h.update(b"\n\nhost\n");
    h.update(EMPTY_PAYLOAD_SHA256.as_bytes());
    hex::encode(h.finalize())
}

fn digit_count(n: u32) -> u32 {
    n.checked_ilog10().map_or(1, |d| d + 1)
}

/// The token text, in botocore's parameter order: the session token after
/// `X-Amz-SignedHeaders`, the signature last.
fn assemble_token(
    request: &TokenRequest,
    query: &str,
    session_token: Option<&str>,
    signature: &str,
) -> String {
    let capacity =
        request.host().len() + 8 + query.len() + session_token.map_or(0, |t| t.len() + 24) + 110;
    let mut token = String::with_capacity(capacity);
    token.push_str(request.host());
    if request.action() == Action::RdsConnect {
        token.push(':');
        push_digits(
            &mut token,
            request.port().into(),
            digit_count(request.port().into()),
        );
    }
    token.push_str("/?");
    token.push_str(query);
    token.push_str("&X-Amz-SignedHeaders=host");
    if let Some(t) = session_token {
        token.push_str("&X-Amz-Security-Token=");
        token.push_str(t);
    }
    token.push_str("&X-Amz-Signature=");
    token.push_str(signature);
    token
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;

    fn request(user: &str) -> TokenRequest {
        let e = Endpoint::new("db.abc.us-east-1.rds.amazonaws.com", 5432).unwrap();
        TokenRequest::rds(&e, user).build().unwrap()
    }

    #[test]
    fn expiry_is_capped_by_credentials() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let soon = at + Duration::from_secs(120);
        let creds = Credentials::new("AKID", "secret", None, Some(soon), "test");
        let token = TokenSigner::new().sign(&creds, &request("u"), at).unwrap();
        assert_eq!(token.expires_at(), soon);
        let later = Credentials::new(
            "AKID",
            "secret",
            None,
            Some(at + Duration::from_secs(3600)),
            "test",
        );
        let token = TokenSigner::new().sign(&later, &request("u"), at).unwrap();
        assert_eq!(token.expires_at(), at + Duration::from_secs(900));
    }

    #[test]
    fn expired_credentials_are_refused() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let creds = Credentials::new("AKID", "secret", None, Some(at), "test");
        let err = TokenSigner::new()
            .sign(&creds, &request("u"), at)
            .unwrap_err();
        assert!(matches!(err.detail(), Detail::CredentialsExpired { .. }));
    }

    #[test]
    fn signing_time_out_of_range_is_an_error() {
        let creds = Credentials::new("AKID", "secret", None, None, "test");
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        assert!(
            TokenSigner::new()
                .sign(&creds, &request("u"), before_epoch)
                .is_err()
        );
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert!(TokenSigner::new().sign(&creds, &request("u"), far).is_err());
    }

    #[test]
    fn key_cache_distinguishes_secrets() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let signer = TokenSigner::new();
        let a = Credentials::new("AKID", "secret-a", None, None, "test");
        let b = Credentials::new("AKID", "secret-b", None, None, "test");
        let ta = signer.sign(&a, &request("u"), at).unwrap();
        let tb = signer.sign(&b, &request("u"), at).unwrap();
        assert!(
            !ta.same_token(&tb),
            "a rotated secret must not reuse the old key"
        );
        let fresh = TokenSigner::new().sign(&b, &request("u"), at).unwrap();
        assert!(tb.same_token(&fresh));
    }

    #[test]
    fn key_cache_distinguishes_session_tokens() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let signer = TokenSigner::new();
        let a = Credentials::new("AKID", "s", Some("token-a".into()), None, "test");
        let b = Credentials::new("AKID", "s", Some("token-b".into()), None, "test");
        signer.sign(&a, &request("u"), at).unwrap();
        let tb = signer.sign(&b, &request("u"), at).unwrap();
        assert!(tb.expose().contains("X-Amz-Security-Token=token-b&"));
    }

    #[test]
    fn key_cache_is_bounded() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let signer = TokenSigner::new();
        for i in 0..10 {
            let c = Credentials::new("AKID", format!("s{i}"), None, None, "test");
            signer.sign(&c, &request("u"), at).unwrap();
        }
        assert_eq!(signer.keys.lock().unwrap().len(), KEY_CACHE_SLOTS);
    }
}
