//! The database endpoint: the name a token is signed for, and the address actually dialled.
//!
//! RDS checks a token against the hostname and port it was signed for, and TLS checks the
//! server certificate against a hostname too: both must be the endpoint's DNS name. The TCP
//! connection, though, may go elsewhere: an SSH tunnel on `127.0.0.1:15432`, a bastion's
//! forwarded port, a private IP. [`Endpoint`] keeps the two apart so that neither is ever
//! silently used in place of the other.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::region::Region;

/// Longest DNS name (RFC 1035, without the trailing dot).
const MAX_HOSTNAME_LEN: usize = 253;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// A database endpoint: the **signing endpoint** (hostname and port that go into the token
/// and that TLS verifies) and the **dialled address** (where the TCP connection goes;
/// the signing endpoint unless set otherwise).
///
/// ```
/// use rds_iam_auth::Endpoint;
///
/// // Through an SSH tunnel: sign for (and verify) the real name, dial the local port.
/// let endpoint = Endpoint::new("mydb.cluster-abc123.eu-west-1.rds.amazonaws.com", 5432)?
///     .with_dial_address("127.0.0.1", 15432)?;
/// assert_eq!(endpoint.host(), "mydb.cluster-abc123.eu-west-1.rds.amazonaws.com");
/// assert_eq!(endpoint.dial_address(), ("127.0.0.1", 15432));
/// assert_eq!(endpoint.inferred_region().unwrap().as_str(), "eu-west-1");
/// # Ok::<(), rds_iam_auth::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: String,
    port: u16,
    dial: Option<DialAddress>,
}

/// Where the TCP connection goes when it is not the signing endpoint itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DialAddress {
    host: String,
    port: u16,
}

impl Endpoint {
    /// An endpoint signed for, verified as and dialled at `host:port`.
    ///
    /// `host` must be a DNS name; an IP address is refused with
    /// [`Error::IpAddressAsSigningHost`] (use [`Endpoint::with_dial_address`] for it).
    pub fn new(host: impl Into<String>, port: u16) -> Result<Self> {
        let host = host.into();
        validate_signing_host(&host)?;
        Ok(Self {
            host,
            port,
            dial: None,
        })
    }

    /// Dials `host:port` (an IP address or a DNS name) instead of the signing endpoint,
    /// while the token is still signed for, and TLS still verifies, the signing hostname.
    pub fn with_dial_address(mut self, host: impl Into<String>, port: u16) -> Result<Self> {
        let host = host.into();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_err() {
            validate_hostname(&host)?;
        }
        self.dial = Some(DialAddress {
            host: bare.to_owned(),
            port,
        });
        Ok(self)
    }

    /// The signing hostname, as given (case preserved, as botocore keeps it in the token).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The signing port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the TCP connection goes: the dial address if one was set, else the signing endpoint.
    pub fn dial_address(&self) -> (&str, u16) {
        match &self.dial {
            Some(d) => (&d.host, d.port),
            None => (&self.host, self.port),
        }
    }

    /// `true` when the connection goes somewhere other than the signing endpoint.
    pub fn is_tunnelled(&self) -> bool {
        self.dial.is_some()
    }

    /// The region in the hostname, if it is an RDS, Aurora, RDS Proxy or Aurora DSQL one.
    pub fn inferred_region(&self) -> Option<Region> {
        infer_region(&self.host)
    }

    /// `true` for Aurora DSQL endpoints (`<id>.dsql.<region>.on.aws`).
    pub fn is_dsql(&self) -> bool {
        let host = self.host.to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        matches!(labels.as_slice(), [.., "dsql", _, "on", "aws"])
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)?;
        if let Some(d) = &self.dial {
            write!(f, " (via {}:{})", d.host, d.port)?;
        }
        Ok(())
    }
}

/// Parses `host:port`.
impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidEndpoint {
            input: s.to_owned(),
            reason,
        };
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected `host:port`"))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| invalid("the port is not a number from 0 to 65535"))?;
        Self::new(host, port)
    }
}

/// Infers the region from an RDS, Aurora, RDS Proxy, Limitless or Aurora DSQL hostname.
///
/// RDS names end in `<region>.rds.<partition DNS suffix>` whatever the endpoint kind
/// (instance, `cluster-`, `cluster-ro-`, `cluster-custom-`, `proxy-`, `shardgrp-`), so the
/// label before `rds` is the region; DSQL names are `<id>.dsql.<region>.on.aws`.
pub fn infer_region(host: &str) -> Option<Region> {
    let host = host.to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let candidate = match labels.as_slice() {
        [_, .., region, "rds", "amazonaws", "com"]
        | [_, .., region, "rds", "amazonaws", "com", "cn"]
        | [_, .., region, "rds", "c2s", "ic", "gov"]
        | [_, .., region, "rds", "sc2s", "sgov", "gov"]
        | [_, .., "dsql", region, "on", "aws"] => *region,
        _ => return None,
    };
    Region::new(candidate).ok()
}

fn validate_signing_host(host: &str) -> Result<()> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Err(Error::IpAddressAsSigningHost { ip });
    }
    validate_hostname(host)
}

/// RFC 1123 host name syntax: what a certificate can name and RDS can sign for.
fn validate_hostname(host: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidHostname {
            host: host.to_owned(),
            reason,
        })
    };
    if host.is_empty() {
        return invalid("it is empty");
    }
    if host.len() > MAX_HOSTNAME_LEN {
        return invalid("it is longer than 253 characters");
    }
    for label in host.split('.') {
        if label.is_empty() {
            return invalid("it has an empty label (a leading, trailing or doubled `.`)");
        }
        if label.len() > MAX_LABEL_LEN {
            return invalid("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return invalid(
                "only letters, digits, `-` and `.` are allowed (no scheme, port, path or spaces)",
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return invalid("a label starts or ends with `-`");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_hosts_with_typed_errors() {
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "-a.b",
            "a-.b",
            "a b",
            "postgres://x",
            "x:5432",
            "é.com",
        ] {
            assert!(
                matches!(Endpoint::new(bad, 1), Err(Error::InvalidHostname { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Endpoint::new("a".repeat(64), 1),
            Err(Error::InvalidHostname { .. })
        ));
        for ip in ["127.0.0.1", "::1", "[::1]", "10.1.2.3"] {
            assert!(
                matches!(
                    Endpoint::new(ip, 1),
                    Err(Error::IpAddressAsSigningHost { .. })
                ),
                "{ip}"
            );
        }
    }

    #[test]
    fn ip_error_explains_the_fix() {
        let msg = Endpoint::new("10.0.0.7", 5432).unwrap_err().to_string();
        assert!(msg.contains("dial address"), "{msg}");
        assert!(msg.contains("rds.amazonaws.com"), "{msg}");
    }

    #[test]
    fn dial_address_accepts_ips_and_names() {
        let e = Endpoint::new("db.example.com", 5432).unwrap();
        assert_eq!(e.dial_address(), ("db.example.com", 5432));
        assert!(!e.is_tunnelled());
        let e = e.with_dial_address("[::1]", 15432).unwrap();
        assert_eq!(e.dial_address(), ("::1", 15432));
        assert!(e.is_tunnelled());
        assert_eq!(e.host(), "db.example.com");
        assert!(
            Endpoint::new("db.example.com", 1)
                .unwrap()
                .with_dial_address("not a host", 1)
                .is_err()
        );
    }

    #[test]
    fn parses_host_port() {
        let e: Endpoint = "db.example.com:3306".parse().unwrap();
        assert_eq!((e.host(), e.port()), ("db.example.com", 3306));
        for bad in [
            "db.example.com",
            "db.example.com:",
            "db.example.com:99999",
            ":1",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }
}
