//! The database endpoint: the name a token is signed for, and the address actually dialled.
//!
//! RDS checks a token against the hostname and port it was signed for, and TLS checks the
//! server certificate against a hostname too: both must be the endpoint's DNS name. The TCP
//! connection, though, may go elsewhere: an SSH tunnel on `127.0.0.1:15432`, a bastion's
//! forwarded port, a private IP. [`Endpoint`] keeps the two apart so that neither is ever
//! silently used in place of the other.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use crate::error::{Detail, Error, Result};
use crate::region::{Partition, Region};

/// Longest DNS name (RFC 1035, without the trailing dot).
const MAX_HOSTNAME_LEN: usize = 253;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;
/// Length of an Aurora DSQL cluster identifier.
const DSQL_CLUSTER_ID_LEN: usize = 26;
/// The port Aurora DSQL listens on.
const DSQL_PORT: u16 = 5432;

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
    /// `host` must be a DNS name without a trailing dot; an IP address is refused with
    /// (use [`Endpoint::with_dial_address`] for it), as is port 0: both are
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) errors.
    pub fn new(host: impl Into<String>, port: u16) -> Result<Self> {
        let host = host.into();
        validate_signing_host(&host)?;
        validate_port(port)?;
        Ok(Self {
            host,
            port,
            dial: None,
        })
    }

    /// Dials `host:port` (an IP address, IPv6 optionally in `[...]`, or a DNS name) instead of
    /// the signing endpoint, while the token is still signed for, and TLS still verifies, the
    /// signing hostname.
    pub fn with_dial_address(mut self, host: impl Into<String>, port: u16) -> Result<Self> {
        let host = host.into();
        let host = match parse_ip(&host) {
            Some(ip) => ip.to_string(),
            None => {
                validate_hostname(&host)?;
                host
            }
        };
        validate_port(port)?;
        self.dial = Some(DialAddress { host, port });
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

    /// The region in the hostname, if it is an RDS, Aurora, RDS Proxy or Aurora DSQL one
    /// (see [`infer_region`]).
    pub fn inferred_region(&self) -> Option<Region> {
        infer_region(&self.host)
    }

    /// The endpoint of the Aurora DSQL cluster `cluster_id` in `region`:
    /// `<cluster_id>.dsql.<region>.on.aws`, port 5432 (the only port DSQL listens on).
    ///
    /// ```
    /// use rds_iam_auth::Endpoint;
    ///
    /// let endpoint = Endpoint::dsql_cluster("abcdefghijklmnopqrstuvwxyz", "us-east-1")?;
    /// assert_eq!(endpoint.to_string(), "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws:5432");
    /// assert!(endpoint.is_dsql());
    /// # Ok::<(), rds_iam_auth::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `cluster_id` is not 26 lowercase letters and digits
    /// (the form DSQL gives cluster identifiers; an uppercase id is lowercased first, as DNS
    /// would), or the region is invalid.
    pub fn dsql_cluster(cluster_id: &str, region: &str) -> Result<Self> {
        let id = cluster_id.to_ascii_lowercase();
        if id.len() != DSQL_CLUSTER_ID_LEN
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(Detail::InvalidEndpoint {
                input: cluster_id.to_owned(),
                reason: "an Aurora DSQL cluster identifier is 26 lowercase letters and digits \
                         (the first label of the cluster's endpoint)",
            }
            .into());
        }
        let region = Region::new(region)?;
        Self::new(format!("{id}.dsql.{}.on.aws", region.as_str()), DSQL_PORT)
    }

    /// `true` for Aurora DSQL endpoints (`<id>.dsql.<region>.on.aws`, `<id>.dsql-fips.<region>.on.aws`).
    pub fn is_dsql(&self) -> bool {
        let host = self.host.to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        dsql_region_label(&labels).is_some()
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

/// Parses `host:port` (an IPv6 signing host is refused like any IP address).
impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason| -> Error {
            Detail::InvalidEndpoint {
                input: s.to_owned(),
                reason,
            }
            .into()
        };
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected `host:port`"))?;
        // Digits only: `u16::from_str` would also take `+5432`.
        let port = Some(port)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| invalid("the port is not a number from 1 to 65535"))?;
        Self::new(host, port)
    }
}

/// Where the partitions that have RDS put their hostnames, and which partitions' regions
/// may appear under each suffix. A region from another partition (`us-east-1` under
/// `.amazonaws.com.cn`) names no real endpoint, so nothing is inferred from it.
///
/// Not here, on purpose: `amazonaws.au` and `amazonaws.uk`, which AWS's Advanced JDBC/Go
/// wrappers accept ahead of time but no partition uses yet (botocore's `partitions.json`
/// lists none), so their region names and ARN partition are unknown; nor the ISO-E/ISO-F
/// suffixes (`cloud.adc-e.uk`, `csp.hci.ic.gov`), for which no RDS hostname form is known.
const RDS_DNS_SUFFIXES: &[(&[&str], &[Partition])] = &[
    (
        &["amazonaws", "com"],
        &[Partition::Aws, Partition::AwsUsGov],
    ),
    (&["amazonaws", "com", "cn"], &[Partition::AwsCn]),
    (&["amazonaws", "eu"], &[Partition::AwsEusc]),
    (&["c2s", "ic", "gov"], &[Partition::AwsIso]),
    (&["sc2s", "sgov", "gov"], &[Partition::AwsIsoB]),
];

/// Infers the region from an RDS, Aurora, RDS Proxy, Limitless or Aurora DSQL hostname.
///
/// RDS names end in `<region>.rds.<DNS suffix>` whatever the endpoint kind (instance,
/// `cluster-`, `cluster-ro-`, `cluster-custom-`, `proxy-`, `shardgrp-`), or in
/// `rds.<region>.<DNS suffix>` (China's current form, also used in GovCloud and ISO); both
/// orders are accepted under every suffix, and `rds-fips` may stand for `rds` in either.
/// The suffixes are `amazonaws.com` (commercial and GovCloud), `amazonaws.com.cn` (China),
/// `amazonaws.eu` (European Sovereign Cloud), `c2s.ic.gov` (ISO) and `sc2s.sgov.gov`
/// (ISO-B), and the region must belong to the suffix's partition.
/// DSQL names are `<id>.dsql.<region>.on.aws` or `<id>.dsql-fips.<region>.on.aws`.
///
/// Aurora Global Database writer endpoints (`<name>.global-<id>.global.rds.amazonaws.com`)
/// carry no region: `None`, and a [`TokenRequest`](crate::TokenRequest) built for one without
/// `.region(...)` fails with an error that says to give the primary cluster's region.
///
/// ```
/// use rds_iam_auth::endpoint::infer_region;
///
/// let region = |host| infer_region(host).map(|r| r.as_str().to_owned());
/// assert_eq!(region("db.abc.rds.cn-northwest-1.amazonaws.com.cn").as_deref(), Some("cn-northwest-1"));
/// assert_eq!(region("db.abc.us-east-1.rds-fips.amazonaws.com").as_deref(), Some("us-east-1"));
/// assert_eq!(region("db.global-abc.global.rds.amazonaws.com"), None);
/// ```
pub fn infer_region(host: &str) -> Option<Region> {
    let host = host.to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    rds_region(&labels).or_else(|| Region::new(dsql_region_label(&labels)?).ok())
}

/// The region in the hostname, or the error that says why there is none.
pub(crate) fn region_from_host(host: &str) -> Result<Region> {
    infer_region(host).ok_or_else(|| {
        if is_global_writer(host) {
            Detail::GlobalWriterEndpointNeedsRegion {
                host: host.to_owned(),
            }
            .into()
        } else {
            Detail::RegionNotFound {
                host: host.to_owned(),
            }
            .into()
        }
    })
}

fn rds_region(labels: &[&str]) -> Option<Region> {
    RDS_DNS_SUFFIXES.iter().find_map(|(suffix, partitions)| {
        let candidate = match labels.strip_suffix(*suffix)? {
            [_, .., region, rds] | [_, .., rds, region] if is_rds_label(rds) => *region,
            _ => return None,
        };
        let region = Region::new(candidate).ok()?;
        partitions.contains(&region.partition()).then_some(region)
    })
}

fn is_rds_label(label: &str) -> bool {
    matches!(label, "rds" | "rds-fips")
}

fn dsql_region_label<'a>(labels: &[&'a str]) -> Option<&'a str> {
    match labels {
        [_, .., "dsql" | "dsql-fips", region, "on", "aws"] => Some(region),
        _ => None,
    }
}

/// `<name>.global-<id>.global.rds.amazonaws.com`: the name follows whichever cluster is the
/// global database's primary, so no region can be read from it.
fn is_global_writer(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    matches!(
        labels.as_slice(),
        [_, .., "global", "rds", "amazonaws", "com"]
    )
}

/// An IP address, IPv6 optionally in brackets (`[::1]`); `None` for anything else, including
/// unbalanced brackets.
fn parse_ip(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')?
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6),
        None => host.parse().ok(),
    }
}

fn validate_signing_host(host: &str) -> Result<()> {
    if let Some(ip) = parse_ip(host) {
        return Err(Detail::IpAddressAsSigningHost { ip }.into());
    }
    validate_hostname(host)
}

fn validate_port(port: u16) -> Result<()> {
    if port == 0 {
        return Err(Detail::InvalidPort.into());
    }
    Ok(())
}

/// RFC 1123 host name syntax: what a certificate can name and RDS can sign for.
fn validate_hostname(host: &str) -> Result<()> {
    hostname_problem(host).map_or(Ok(()), |reason| {
        Err(Detail::InvalidHostname {
            host: host.to_owned(),
            reason,
        }
        .into())
    })
}

fn hostname_problem(host: &str) -> Option<&'static str> {
    if host.is_empty() {
        return Some("it is empty");
    }
    if host.len() > MAX_HOSTNAME_LEN {
        return Some("it is longer than 253 characters");
    }
    // botocore signs `name.:5432` as given, dot included: stripping the dot would make a token
    // botocore never makes, keeping it one for a name RDS does not give out. Refused instead.
    if host.ends_with('.') && !host.ends_with("..") && host.len() > 1 {
        return Some(
            "it ends with `.` (a fully qualified name); tokens are signed for, and certificates \
             name, the name without the trailing dot: remove it",
        );
    }
    if let Some(reason) = host.split('.').find_map(label_problem) {
        return Some(reason);
    }
    // `127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`: resolvers read these as IPv4.
    if host.rsplit('.').next().is_some_and(is_ipv4_number) {
        return Some(
            "its last label is a number, so resolvers read it as an IPv4 address in a short, \
             octal or hex notation (`127.1`, `0x7f000001`); a signing host must be a DNS name, \
             and a dial address must be an IP address in standard form",
        );
    }
    None
}

fn label_problem(label: &str) -> Option<&'static str> {
    if label.is_empty() {
        Some("it has an empty label (a leading or doubled `.`)")
    } else if label.len() > MAX_LABEL_LEN {
        Some("a label is longer than 63 characters")
    } else if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Some("only letters, digits, `-` and `.` are allowed (no scheme, port, path or spaces)")
    } else if label.starts_with('-') || label.ends_with('-') {
        Some("a label starts or ends with `-`")
    } else {
        None
    }
}

/// A label the WHATWG URL parser (and `inet_aton`) reads as an IPv4 part: decimal, octal
/// (leading `0`) or hex (`0x`).
fn is_ipv4_number(label: &str) -> bool {
    let (digits, radix) = match label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"))
    {
        Some(hex) => (hex, 16),
        None => (label, 10),
    };
    digits.chars().all(|c| c.is_digit(radix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsql_cluster_id_expands_to_the_endpoint() {
        let e = Endpoint::dsql_cluster("ABCDEFGHIJKLMNOPQRSTUVWXY2", "eu-west-1").unwrap();
        assert_eq!(e.host(), "abcdefghijklmnopqrstuvwxy2.dsql.eu-west-1.on.aws");
        assert_eq!(e.port(), 5432);
        assert!(e.is_dsql());
        assert_eq!(e.inferred_region().unwrap().as_str(), "eu-west-1");
        let too_short = "abcdefghijklmnopqrstuvwxy";
        let dotted = "abcdefghijklm.opqrstuvwxyz";
        for bad in [
            "",
            too_short,
            dotted,
            "abcdefghijklmnopqrstuvwxyz0",
            "abcdefghijklmnopqrstuvwx-z",
        ] {
            assert!(
                matches!(
                    Endpoint::dsql_cluster(bad, "us-east-1")
                        .as_ref()
                        .map_err(Error::detail),
                    Err(&Detail::InvalidEndpoint { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Endpoint::dsql_cluster("abcdefghijklmnopqrstuvwxyz", "us east")
                .as_ref()
                .map_err(Error::detail),
            Err(&Detail::InvalidRegion { .. })
        ));
    }

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
                matches!(
                    Endpoint::new(bad, 1).as_ref().map_err(Error::detail),
                    Err(Detail::InvalidHostname { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Endpoint::new("a".repeat(64), 1)
                .as_ref()
                .map_err(Error::detail),
            Err(&Detail::InvalidHostname { .. })
        ));
        for ip in ["127.0.0.1", "::1", "[::1]", "10.1.2.3"] {
            assert!(
                matches!(
                    Endpoint::new(ip, 1).as_ref().map_err(Error::detail),
                    Err(&Detail::IpAddressAsSigningHost { .. })
                ),
                "{ip}"
            );
        }
    }

    #[test]
    fn ipv4_numbers_in_every_notation() {
        for number in ["1", "0177", "2130706433", "0x7f", "0X7F000001", "0x"] {
            assert!(is_ipv4_number(number), "{number}");
        }
        for label in ["com", "1a", "0x7g", "x7f", "db-1"] {
            assert!(!is_ipv4_number(label), "{label}");
        }
    }

    #[test]
    fn dsql_endpoints_fips_included() {
        for (host, dsql) in [
            ("abc.dsql.us-east-1.on.aws", true),
            ("abc.dsql-fips.us-east-1.on.aws", true),
            ("ABC.DSQL-FIPS.US-EAST-1.ON.AWS", true),
            ("abc.dsql.us-east-1.on.aws.example.com", false),
            ("db.abc.us-east-1.rds.amazonaws.com", false),
        ] {
            assert_eq!(Endpoint::new(host, 443).unwrap().is_dsql(), dsql, "{host}");
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
