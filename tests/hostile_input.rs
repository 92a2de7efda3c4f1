//! Every public constructor against hostile input, as tables: each row names the exact
//! outcome (an error's kind, setting and message, or success), and nothing panics.

use std::time::Duration;

use rds_iam_auth::policy::{DsqlClusterArn, RdsDbUserArn};
use rds_iam_auth::{Endpoint, Error, ErrorKind, Region, TokenRequest};

/// The outcome a row expects: success or one kind of invalid input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    Accepted,
    InvalidHostname,
    IpAsSigningHost,
    InvalidPort,
    InvalidEndpoint,
    InvalidRegion,
    InvalidUser,
    InvalidExpiry,
    InvalidPolicyInput,
}
use Got::*;

/// The outcome of `result`: each error must be an `InvalidInput` error naming its setting,
/// and where two outcomes share a setting (an invalid hostname and an IP address as the
/// signing host; an unknown region and a region that cannot be inferred), its message tells
/// which.
fn got<T>(result: Result<T, Error>) -> Got {
    let e = match result {
        Ok(_) => return Accepted,
        Err(e) => e,
    };
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e:?}");
    assert!(e.is_invalid_input(), "{e:?}");
    let msg = e.to_string();
    let setting = e.setting();
    match setting {
        Some("hostname") if msg.starts_with("invalid hostname `") => InvalidHostname,
        Some("hostname") if msg.contains("` is an IP address, but IAM tokens are signed for") => {
            IpAsSigningHost
        }
        Some("port") if msg.starts_with("port 0 cannot be dialled") => InvalidPort,
        Some("endpoint") if msg.starts_with("invalid endpoint `") => InvalidEndpoint,
        Some("region") if msg.starts_with("unknown region `") => InvalidRegion,
        Some("user") if msg.starts_with("invalid database user name: ") => InvalidUser,
        Some("token_lifetime") if msg.starts_with("token lifetime of ") => InvalidExpiry,
        Some("account id" | "resource id") if msg.contains(" for an IAM policy: ") => {
            InvalidPolicyInput
        }
        _ => panic!("unexpected error: setting {setting:?}: {e:?}"),
    }
}

fn ten_kb() -> String {
    "a".repeat(10 * 1024)
}

/// (host, `Endpoint::new(host, 5432)`, `with_dial_address(host, 5432)`)
fn host_rows() -> Vec<(String, Got, Got)> {
    let rows: &[(&str, Got, Got)] = &[
        ("db.example.com", Accepted, Accepted),
        ("localhost", Accepted, Accepted),
        ("xn--bcher-kva.example.com", Accepted, Accepted),
        ("", InvalidHostname, InvalidHostname),
        (" ", InvalidHostname, InvalidHostname),
        ("\t", InvalidHostname, InvalidHostname),
        (" db.example.com", InvalidHostname, InvalidHostname),
        ("db.example.com\n", InvalidHostname, InvalidHostname),
        ("db\0.example.com", InvalidHostname, InvalidHostname),
        ("db.example.com\0", InvalidHostname, InvalidHostname),
        ("bücher.example.com", InvalidHostname, InvalidHostname),
        ("数据库.example.com", InvalidHostname, InvalidHostname),
        ("db%2e.example.com", InvalidHostname, InvalidHostname),
        ("user@db.example.com", InvalidHostname, InvalidHostname),
        ("db.example.com/path", InvalidHostname, InvalidHostname),
        ("/db", InvalidHostname, InvalidHostname),
        (
            "postgres://db.example.com",
            InvalidHostname,
            InvalidHostname,
        ),
        ("db.example.com:5432", InvalidHostname, InvalidHostname),
        (":5432", InvalidHostname, InvalidHostname),
        ("db_1.example.com", InvalidHostname, InvalidHostname),
        ("-db.example.com", InvalidHostname, InvalidHostname),
        ("db..example.com", InvalidHostname, InvalidHostname),
        (".db.example.com", InvalidHostname, InvalidHostname),
        (".", InvalidHostname, InvalidHostname),
        // A fully qualified name: refused, not silently changed (see the README).
        ("db.example.com.", InvalidHostname, InvalidHostname),
        // IP addresses: never a signing host, always a dial address.
        ("127.0.0.1", IpAsSigningHost, Accepted),
        ("::1", IpAsSigningHost, Accepted),
        ("[::1]", IpAsSigningHost, Accepted),
        ("[2001:db8::7]", IpAsSigningHost, Accepted),
        ("[::1", InvalidHostname, InvalidHostname),
        ("::1]", InvalidHostname, InvalidHostname),
        ("[127.0.0.1]", InvalidHostname, InvalidHostname),
        ("[db.example.com]", InvalidHostname, InvalidHostname),
        ("fe80::1%eth0", InvalidHostname, InvalidHostname),
        // IPv4 in other notations: resolvers take them as addresses, so neither a DNS name
        // nor an address in standard form.
        ("127.1", InvalidHostname, InvalidHostname),
        ("10.1", InvalidHostname, InvalidHostname),
        ("2130706433", InvalidHostname, InvalidHostname),
        ("0x7f.0.0.1", InvalidHostname, InvalidHostname),
        ("0x7f000001", InvalidHostname, InvalidHostname),
        ("0X7F000001", InvalidHostname, InvalidHostname),
        ("0177.0.0.1", InvalidHostname, InvalidHostname),
        ("127.0.0.01", InvalidHostname, InvalidHostname),
        ("db.example.123", InvalidHostname, InvalidHostname),
        ("db.example.0x1f", InvalidHostname, InvalidHostname),
        ("db.123.example.com", Accepted, Accepted),
        ("db.example.0xg", Accepted, Accepted),
    ];
    let mut rows: Vec<(String, Got, Got)> = rows
        .iter()
        .map(|&(h, new, dial)| (h.to_owned(), new, dial))
        .collect();
    rows.push((ten_kb(), InvalidHostname, InvalidHostname));
    rows.push((
        format!("{}com", "a.".repeat(5000)),
        InvalidHostname,
        InvalidHostname,
    ));
    rows.push((
        format!("{}.example.com", "a".repeat(64)),
        InvalidHostname,
        InvalidHostname,
    ));
    rows
}

#[test]
fn hosts() {
    for (host, new, dial) in host_rows() {
        let shown = &host[..host.len().min(40)];
        assert_eq!(
            got(Endpoint::new(host.as_str(), 5432)),
            new,
            "new({shown:?})"
        );
        let base = Endpoint::new("db.example.com", 5432).unwrap();
        assert_eq!(
            got(base.with_dial_address(host.as_str(), 5432)),
            dial,
            "with_dial_address({shown:?})"
        );
    }
}

#[test]
fn ports() {
    for (port, expected) in [
        (0, InvalidPort),
        (1, Accepted),
        (5432, Accepted),
        (65535, Accepted),
    ] {
        assert_eq!(
            got(Endpoint::new("db.example.com", port)),
            expected,
            "{port}"
        );
        let base = Endpoint::new("db.example.com", 5432).unwrap();
        assert_eq!(
            got(base.with_dial_address("127.0.0.1", port)),
            expected,
            "{port}"
        );
    }
    let err = Endpoint::new("db.example.com", 0).unwrap_err();
    assert!(err.to_string().contains("port 0"), "{err}");
}

#[test]
fn host_port_strings() {
    let long = format!("{}:5432", ten_kb());
    let rows: &[(&str, Got)] = &[
        ("db.example.com:5432", Accepted),
        ("db.example.com:1", Accepted),
        ("db.example.com:65535", Accepted),
        ("db.example.com:05432", Accepted),
        ("db.example.com:0", InvalidPort),
        ("db.example.com:00", InvalidPort),
        ("db.example.com:65536", InvalidEndpoint),
        ("db.example.com:99999999999999999999", InvalidEndpoint),
        ("db.example.com:+5432", InvalidEndpoint),
        ("db.example.com:-1", InvalidEndpoint),
        ("db.example.com: 5432", InvalidEndpoint),
        ("db.example.com:5432 ", InvalidEndpoint),
        ("db.example.com:5432\0", InvalidEndpoint),
        ("db.example.com:5432/db", InvalidEndpoint),
        ("db.example.com:٥٤٣٢", InvalidEndpoint),
        ("db.example.com:", InvalidEndpoint),
        ("db.example.com", InvalidEndpoint),
        ("", InvalidEndpoint),
        (":", InvalidEndpoint),
        (":5432", InvalidHostname),
        (" :5432", InvalidHostname),
        ("db.example.com.:5432", InvalidHostname),
        ("user@db.example.com:5432", InvalidHostname),
        ("postgres://db.example.com:5432", InvalidHostname),
        ("db%25.example.com:5432", InvalidHostname),
        ("bücher.example.com:5432", InvalidHostname),
        ("db\0.example.com:5432", InvalidHostname),
        ("127.1:5432", InvalidHostname),
        ("0x7f000001:5432", InvalidHostname),
        ("127.0.0.1:5432", IpAsSigningHost),
        ("[::1]:5432", IpAsSigningHost),
        ("::1:5432", IpAsSigningHost),
        (&long, InvalidHostname),
    ];
    for (input, expected) in rows {
        let shown = &input[..input.len().min(40)];
        assert_eq!(got(input.parse::<Endpoint>()), *expected, "{shown:?}");
    }
}

#[test]
fn regions() {
    let long = ten_kb();
    let rows: &[(&str, Got)] = &[
        ("us-east-1", Accepted),
        ("eusc-de-east-1", Accepted),
        ("us-gov-west-1", Accepted),
        ("", InvalidRegion),
        (" ", InvalidRegion),
        (" us-east-1", InvalidRegion),
        ("us-east-1\0", InvalidRegion),
        ("US-EAST-1", InvalidRegion),
        ("üs-east-1", InvalidRegion),
        ("us-east-1/..", InvalidRegion),
        ("us-east-1:", InvalidRegion),
        ("us%2deast-1", InvalidRegion),
        ("@", InvalidRegion),
        ("global", InvalidRegion),
        ("*", InvalidRegion),
        (&long, InvalidRegion),
    ];
    let endpoint = Endpoint::new("db.example.com", 5432).unwrap();
    for (input, expected) in rows {
        let shown = &input[..input.len().min(40)];
        assert_eq!(
            got(Region::new(*input)),
            *expected,
            "Region::new({shown:?})"
        );
        let built = TokenRequest::rds(&endpoint, "u").region(*input).build();
        assert_eq!(got(built), *expected, ".region({shown:?})");
    }
}

#[test]
fn users_and_lifetimes() {
    let long = ten_kb();
    let endpoint = Endpoint::new("db.c1.us-east-1.rds.amazonaws.com", 5432).unwrap();
    let rows: &[(&str, Got)] = &[
        ("iam_user", Accepted),
        ("a/b:c?d=e&f+g@%", Accepted),
        ("josé_日本", Accepted),
        (" ", Accepted),
        ("", InvalidUser),
        ("a\0b", InvalidUser),
        ("a\nb", InvalidUser),
        (&long, InvalidUser),
    ];
    for (user, expected) in rows {
        let shown = &user[..user.len().min(40)];
        let built = TokenRequest::rds(&endpoint, *user).build();
        assert_eq!(got(built), *expected, "user {shown:?}");
    }
    for (secs, expected) in [
        (0, InvalidExpiry),
        (1, Accepted),
        (900, Accepted),
        (901, InvalidExpiry),
    ] {
        let built = TokenRequest::rds(&endpoint, "u")
            .expires_in(Duration::from_secs(secs))
            .build();
        assert_eq!(got(built), expected, "expires_in {secs}");
    }
}

#[test]
fn policy_arns() {
    let long = ten_kb();
    // (region, account, resource id, user, expected)
    let rows: &[(&str, &str, &str, &str, Got)] = &[
        ("us-east-1", "123456789012", "db-ABC", "u", Accepted),
        ("*", "*", "*", "*", Accepted),
        ("", "123456789012", "db-ABC", "u", InvalidRegion),
        ("us-east-1\0", "123456789012", "db-ABC", "u", InvalidRegion),
        ("us-east-1", "", "db-ABC", "u", InvalidPolicyInput),
        (
            "us-east-1",
            "12345678901a",
            "db-ABC",
            "u",
            InvalidPolicyInput,
        ),
        (
            "us-east-1",
            "1234567890123",
            "db-ABC",
            "u",
            InvalidPolicyInput,
        ),
        ("us-east-1", "123456789012", "", "u", InvalidPolicyInput),
        (
            "us-east-1",
            "123456789012",
            "db/ABC",
            "u",
            InvalidPolicyInput,
        ),
        (
            "us-east-1",
            "123456789012",
            "db:ABC",
            "u",
            InvalidPolicyInput,
        ),
        (
            "us-east-1",
            "123456789012",
            "db ABC",
            "u",
            InvalidPolicyInput,
        ),
        (
            "us-east-1",
            "123456789012",
            "dé-ABC",
            "u",
            InvalidPolicyInput,
        ),
        ("us-east-1", "123456789012", "db-ABC", "", InvalidUser),
        ("us-east-1", "123456789012", "db-ABC", "a\0b", InvalidUser),
        ("us-east-1", "123456789012", "db-ABC", &long, InvalidUser),
        ("us-east-1", "123456789012", "db-ABC", "a/b@c%:", Accepted),
    ];
    for (region, account, resource, user, expected) in rows {
        let shown = &user[..user.len().min(20)];
        assert_eq!(
            got(RdsDbUserArn::new(region, account, resource, user)),
            *expected,
            "{region:?} {account:?} {resource:?} {shown:?}"
        );
        // A DSQL ARN has no user: the same row less the user's errors.
        let dsql = if *expected == InvalidUser {
            Accepted
        } else {
            *expected
        };
        assert_eq!(
            got(DsqlClusterArn::new(region, account, resource)),
            dsql,
            "dsql {region:?} {account:?} {resource:?}"
        );
    }
}

#[test]
fn messages_escape_control_characters_and_cut_long_input() {
    let err = Endpoint::new("db\0.example\n.com", 5432).unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains('\0') && !msg.contains('\n'), "{msg:?}");
    assert!(msg.contains("\\0"), "{msg:?}");
    let msg = Endpoint::new(ten_kb(), 5432).unwrap_err().to_string();
    assert!(msg.len() < 500, "{} bytes", msg.len());
    assert!(msg.contains("10240 bytes"), "{msg}");
    let msg = Region::new(ten_kb()).unwrap_err().to_string();
    assert!(msg.len() < 500, "{} bytes", msg.len());
}
