//! What a token is for: endpoint, user, action, region and lifetime, validated up front.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::error::{Detail, Result};
use crate::region::Region;

/// The longest lifetime RDS accepts for an IAM auth token.
pub const RDS_MAX_EXPIRY: Duration = Duration::from_secs(900);
/// The longest lifetime Aurora DSQL accepts for an auth token (one week).
pub const DSQL_MAX_EXPIRY: Duration = Duration::from_secs(604_800);
/// The longest database user name accepted, in bytes. PostgreSQL names are at most 63
/// bytes and MySQL ones 32 characters (up to 128 bytes of UTF-8).
pub const MAX_USER_LEN: usize = 128;

/// Which authorization a token asks for. It decides the SigV4 service name and the
/// `Action` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// RDS / Aurora / RDS Proxy: service `rds-db`, `Action=connect`, with `DBUser`.
    RdsConnect,
    /// Aurora DSQL, any role but `admin`: service `dsql`, `Action=DbConnect`.
    DsqlConnect,
    /// Aurora DSQL `admin` role: service `dsql`, `Action=DbConnectAdmin`.
    DsqlConnectAdmin,
}

impl Action {
    /// The SigV4 service name the token is signed for.
    pub fn service(self) -> &'static str {
        match self {
            Self::RdsConnect => "rds-db",
            Self::DsqlConnect | Self::DsqlConnectAdmin => "dsql",
        }
    }

    /// The value of the token's `Action` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Self::RdsConnect => "connect",
            Self::DsqlConnect => "DbConnect",
            Self::DsqlConnectAdmin => "DbConnectAdmin",
        }
    }

    fn max_expiry(self) -> Duration {
        match self {
            Self::RdsConnect => RDS_MAX_EXPIRY,
            Self::DsqlConnect | Self::DsqlConnectAdmin => DSQL_MAX_EXPIRY,
        }
    }
}

/// A validated request for a token: everything but the credentials and the time.
///
/// Two equal requests get the same token from the token cache, so it is also the cache key.
///
/// ```
/// use rds_iam_auth::{Endpoint, TokenRequest};
///
/// let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?;
/// let request = TokenRequest::rds(&endpoint, "iam_user").build()?;
/// assert_eq!(request.region().as_str(), "us-east-1"); // inferred from the hostname
/// # Ok::<(), rds_iam_auth::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    host: String,
    port: u16,
    user: String,
    action: Action,
    region: Region,
    expires_in: Duration,
    /// Hash of all the above, computed once: the token cache looks requests up on every
    /// call, and hashing two strings each time would cost more than the rest of a hit.
    key_hash: u64,
}

impl Hash for TokenRequest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.key_hash);
    }
}

impl TokenRequest {
    /// The hash of every field, computed once (what the token cache's map uses).
    pub(crate) fn key_hash(&self) -> u64 {
        self.key_hash
    }

    /// A token for RDS, Aurora or RDS Proxy: log in to `endpoint` as `user`.
    pub fn rds(endpoint: &Endpoint, user: impl Into<String>) -> TokenRequestBuilder {
        TokenRequestBuilder::new(endpoint, user.into(), Action::RdsConnect)
    }

    /// A token for Aurora DSQL: `DbConnectAdmin` when `user` is `admin`, else `DbConnect`.
    pub fn dsql(endpoint: &Endpoint, user: impl Into<String>) -> TokenRequestBuilder {
        let user = user.into();
        let action = if user == "admin" {
            Action::DsqlConnectAdmin
        } else {
            Action::DsqlConnect
        };
        TokenRequestBuilder::new(endpoint, user, action)
    }

    /// A token for whatever `endpoint` is: Aurora DSQL for a DSQL hostname
    /// ([`Endpoint::is_dsql`], see [`dsql`](Self::dsql)), RDS otherwise.
    pub fn for_endpoint(endpoint: &Endpoint, user: impl Into<String>) -> TokenRequestBuilder {
        if endpoint.is_dsql() {
            Self::dsql(endpoint, user)
        } else {
            Self::rds(endpoint, user)
        }
    }

    /// The signing hostname.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The signing port (not part of DSQL tokens).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database user the token logs in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// What the token authorizes.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The region the token is signed for.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The token's requested lifetime (whole seconds).
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }
}

/// Builds a [`TokenRequest`]; [`build`](Self::build) validates everything.
#[derive(Debug, Clone)]
pub struct TokenRequestBuilder {
    host: String,
    port: u16,
    user: String,
    action: Action,
    region: Option<String>,
    expires_in: Option<Duration>,
}

impl TokenRequestBuilder {
    fn new(endpoint: &Endpoint, user: String, action: Action) -> Self {
        Self {
            host: endpoint.host().to_owned(),
            port: endpoint.port(),
            user,
            action,
            region: None,
            expires_in: None,
        }
    }

    /// The region to sign for. Always wins over the region in the hostname.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The token lifetime: 900 s by default; at most 900 s for RDS and 604,800 s for DSQL.
    /// Sub-second parts are dropped (SigV4 counts whole seconds).
    pub fn expires_in(mut self, expires_in: Duration) -> Self {
        self.expires_in = Some(expires_in);
        self
    }

    /// Validates the user, the lifetime and the region (given, or inferred from the hostname).
    pub fn build(self) -> Result<TokenRequest> {
        validate_user(&self.user)?;
        let expires_in = validate_expiry(self.action, self.expires_in)?;
        let region = match self.region {
            Some(region) => Region::new(region)?,
            None => crate::endpoint::region_from_host(&self.host)?,
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (
            &self.host,
            self.port,
            &self.user,
            self.action,
            &region,
            expires_in,
        )
            .hash(&mut hasher);
        Ok(TokenRequest {
            host: self.host,
            port: self.port,
            user: self.user,
            action: self.action,
            region,
            expires_in,
            key_hash: hasher.finish(),
        })
    }
}

fn validate_user(user: &str) -> Result<()> {
    let invalid = |reason: String| Err(Detail::InvalidUser { reason }.into());
    if user.is_empty() {
        return invalid("it is empty".into());
    }
    if user.len() > MAX_USER_LEN {
        return invalid(format!(
            "it is {} bytes long; database user names are at most {MAX_USER_LEN} bytes",
            user.len()
        ));
    }
    if user.chars().any(char::is_control) {
        return invalid("it contains a control character".into());
    }
    Ok(())
}

fn validate_expiry(action: Action, requested: Option<Duration>) -> Result<Duration> {
    let requested = requested.unwrap_or(RDS_MAX_EXPIRY);
    let whole = Duration::from_secs(requested.as_secs());
    if whole.is_zero() || whole > action.max_expiry() {
        return Err(Detail::InvalidExpiry {
            requested,
            max: action.max_expiry(),
            service: action.service(),
        }
        .into());
    }
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 5432).unwrap()
    }

    #[test]
    fn explicit_region_wins() {
        let r = TokenRequest::rds(&endpoint(), "u")
            .region("eu-west-1")
            .build()
            .unwrap();
        assert_eq!(r.region().as_str(), "eu-west-1");
    }

    #[test]
    fn no_region_is_an_error_not_us_east_1() {
        let e = Endpoint::new("db.internal.example.com", 5432).unwrap();
        let err = TokenRequest::rds(&e, "u").build().unwrap_err();
        assert!(matches!(err.detail(), Detail::RegionNotFound { .. }));
        assert!(err.to_string().contains(".region("), "{err}");
    }

    #[test]
    fn bad_region_is_typed() {
        let err = TokenRequest::rds(&endpoint(), "u")
            .region("useast1")
            .build()
            .unwrap_err();
        assert!(matches!(err.detail(), Detail::InvalidRegion { .. }));
    }

    #[test]
    fn expiry_limits() {
        let build = |a: TokenRequestBuilder, s| a.expires_in(Duration::from_secs(s)).build();
        assert!(build(TokenRequest::rds(&endpoint(), "u"), 900).is_ok());
        assert!(matches!(
            build(TokenRequest::rds(&endpoint(), "u"), 901)
                .as_ref()
                .map_err(crate::Error::detail),
            Err(&Detail::InvalidExpiry { .. })
        ));
        assert!(build(TokenRequest::rds(&endpoint(), "u"), 0).is_err());
        let dsql = Endpoint::new("abc.dsql.us-east-1.on.aws", 5432).unwrap();
        assert!(build(TokenRequest::dsql(&dsql, "admin"), 604_800).is_ok());
        assert!(build(TokenRequest::dsql(&dsql, "admin"), 604_801).is_err());
        let default = TokenRequest::rds(&endpoint(), "u").build().unwrap();
        assert_eq!(default.expires_in(), RDS_MAX_EXPIRY);
    }

    #[test]
    fn user_limits() {
        assert!(TokenRequest::rds(&endpoint(), "").build().is_err());
        assert!(TokenRequest::rds(&endpoint(), "a\0b").build().is_err());
        assert!(
            TokenRequest::rds(&endpoint(), "x".repeat(129))
                .build()
                .is_err()
        );
        let long = TokenRequest::rds(&endpoint(), "x".repeat(129))
            .build()
            .unwrap_err();
        assert!(matches!(long.detail(), Detail::InvalidUser { .. }));
        assert!(
            TokenRequest::rds(&endpoint(), "x".repeat(128))
                .build()
                .is_ok()
        );
        assert!(
            TokenRequest::rds(&endpoint(), "a/b:c?d=e&f+g h é")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn dsql_admin_action_follows_the_user() {
        let dsql = Endpoint::new("abc.dsql.us-east-1.on.aws", 5432).unwrap();
        let admin = TokenRequest::dsql(&dsql, "admin").build().unwrap();
        assert_eq!(admin.action(), Action::DsqlConnectAdmin);
        let app = TokenRequest::dsql(&dsql, "app").build().unwrap();
        assert_eq!(app.action(), Action::DsqlConnect);
        assert_eq!(app.action().service(), "dsql");
    }
}
