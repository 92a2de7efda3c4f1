//! Region inference from endpoint hostnames, as a table.

mod support;

use rds_iam_auth::endpoint::infer_region;
use rds_iam_auth::token::TokenSigner;
use rds_iam_auth::{Endpoint, Error, ErrorKind, TokenRequest};
use support::vectors;

/// (hostname, inferred region or None)
const TABLE: &[(&str, Option<&str>)] = &[
    // Instances
    (
        "mydb.c9akciq32.eu-west-1.rds.amazonaws.com",
        Some("eu-west-1"),
    ),
    (
        "mydb.abc123xyz.us-east-1.rds.amazonaws.com",
        Some("us-east-1"),
    ),
    (
        "MYDB.ABC123XYZ.US-EAST-2.RDS.AMAZONAWS.COM",
        Some("us-east-2"),
    ),
    (
        "db-1.cx0abcdefghi.ap-southeast-5.rds.amazonaws.com",
        Some("ap-southeast-5"),
    ),
    (
        "reporting.abcdefghijkl.il-central-1.rds.amazonaws.com",
        Some("il-central-1"),
    ),
    // Aurora cluster endpoints
    (
        "mydb.cluster-abc123xyz.us-east-1.rds.amazonaws.com",
        Some("us-east-1"),
    ),
    (
        "mydb.cluster-ro-abc123xyz.us-west-2.rds.amazonaws.com",
        Some("us-west-2"),
    ),
    (
        "analytics.cluster-custom-abc123xyz.eu-central-1.rds.amazonaws.com",
        Some("eu-central-1"),
    ),
    (
        "mydb-instance-1.abc123xyz.ca-central-1.rds.amazonaws.com",
        Some("ca-central-1"),
    ),
    // RDS Proxy, default and custom endpoints
    (
        "myproxy.proxy-abc123xyz.us-west-2.rds.amazonaws.com",
        Some("us-west-2"),
    ),
    (
        "reader.endpoint.proxy-abc123xyz.ap-northeast-1.rds.amazonaws.com",
        Some("ap-northeast-1"),
    ),
    // Aurora Limitless shard group
    (
        "mylimitless.shardgrp-abc123xyz.us-east-1.rds.amazonaws.com",
        Some("us-east-1"),
    ),
    // China
    (
        "mydb.cluster-abc123.cn-north-1.rds.amazonaws.com.cn",
        Some("cn-north-1"),
    ),
    (
        "mydb.abc123.cn-northwest-1.rds.amazonaws.com.cn",
        Some("cn-northwest-1"),
    ),
    // GovCloud
    (
        "mydb.abc123.us-gov-west-1.rds.amazonaws.com",
        Some("us-gov-west-1"),
    ),
    (
        "mydb.cluster-abc123.us-gov-east-1.rds.amazonaws.com",
        Some("us-gov-east-1"),
    ),
    // ISO partitions
    (
        "mydb.abc123.us-iso-east-1.rds.c2s.ic.gov",
        Some("us-iso-east-1"),
    ),
    (
        "mydb.abc123.us-isob-east-1.rds.sc2s.sgov.gov",
        Some("us-isob-east-1"),
    ),
    // China, current form: `rds.<region>` (AWS's Advanced JDBC/Python/Go wrappers' `RdsUtils`)
    (
        "mydb.abc123xyz.rds.cn-northwest-1.amazonaws.com.cn",
        Some("cn-northwest-1"),
    ),
    (
        "mydb.cluster-abc123xyz.rds.cn-north-1.amazonaws.com.cn",
        Some("cn-north-1"),
    ),
    (
        "mydb.cluster-ro-abc123xyz.rds.cn-north-1.amazonaws.com.cn",
        Some("cn-north-1"),
    ),
    (
        "myproxy.proxy-abc123xyz.rds.cn-northwest-1.amazonaws.com.cn",
        Some("cn-northwest-1"),
    ),
    // FIPS, in either position
    (
        "mydb.cluster-abc123xyz.us-east-1.rds-fips.amazonaws.com",
        Some("us-east-1"),
    ),
    (
        "mydb.abc123xyz.us-gov-west-1.rds-fips.amazonaws.com",
        Some("us-gov-west-1"),
    ),
    (
        "mydb.abc123xyz.rds-fips.us-gov-west-1.amazonaws.com",
        Some("us-gov-west-1"),
    ),
    (
        "mydb.cluster-abc123xyz.rds-fips.cn-north-1.amazonaws.com.cn",
        Some("cn-north-1"),
    ),
    (
        "mydb.abc123xyz.cn-north-1.rds-fips.amazonaws.com.cn",
        Some("cn-north-1"),
    ),
    (
        "MYDB.ABC123XYZ.RDS-FIPS.US-GOV-EAST-1.AMAZONAWS.COM",
        Some("us-gov-east-1"),
    ),
    // GovCloud, `rds.<region>` order
    (
        "mydb.abc123xyz.rds.us-gov-west-1.amazonaws.com",
        Some("us-gov-west-1"),
    ),
    // ISO, both orders
    (
        "mydb.cluster-abc123.rds.us-iso-west-1.c2s.ic.gov",
        Some("us-iso-west-1"),
    ),
    (
        "mydb.abc123.rds.us-isob-east-1.sc2s.sgov.gov",
        Some("us-isob-east-1"),
    ),
    // European Sovereign Cloud
    (
        "mydb.cluster-abc123xyz.eusc-de-east-1.rds.amazonaws.eu",
        Some("eusc-de-east-1"),
    ),
    (
        "mydb.abc123xyz.eusc-de-east-1.rds-fips.amazonaws.eu",
        Some("eusc-de-east-1"),
    ),
    (
        "mydb.abc123xyz.rds.eusc-de-east-1.amazonaws.eu",
        Some("eusc-de-east-1"),
    ),
    // Aurora DSQL
    (
        "abcdefghijklmnopqrst123456.dsql-fips.us-east-1.on.aws",
        Some("us-east-1"),
    ),
    (
        "abcdefghijklmnopqrst123456.dsql-fips.us-gov-west-1.on.aws",
        Some("us-gov-west-1"),
    ),
    (
        "abcdefghijklmnopqrst123456.dsql.us-east-1.on.aws",
        Some("us-east-1"),
    ),
    (
        "zyxwvutsrqponmlkjihgfe9876.dsql.eu-west-1.on.aws",
        Some("eu-west-1"),
    ),
    ("ABCDEF.DSQL.AP-NORTHEAST-1.ON.AWS", Some("ap-northeast-1")),
    // Negative cases: no region to infer
    ("localhost", None),
    ("db.internal.example.com", None),
    ("mydb.example.com", None),
    ("rds.amazonaws.com", None),
    ("us-east-1.rds.amazonaws.com", None),
    ("mydb.abc123.notaregion.rds.amazonaws.com", None),
    ("mydb.abc123.us-east-1.rds.amazonaws.org", None),
    ("mydb.abc123.us-east-1.rds.amazonaws.com.evil.example", None),
    ("mydb.abc123.us-east-1.redshift.amazonaws.com", None),
    ("dsql.us-east-1.on.aws", None),
    ("abc.dsql.us_east_1.on.aws", None),
    ("abc.dsql.us-east-1.on.aws.example", None),
    ("", None),
    // China's current form needs both `rds` and a China region
    ("mydb.abc123xyz.cn-north-1.amazonaws.com.cn", None),
    ("mydb.abc123xyz.rds.amazonaws.com.cn", None),
    ("rds.cn-north-1.amazonaws.com.cn", None),
    (
        "mydb.abc123xyz.rds.cn-north-1.amazonaws.com.cn.evil.example",
        None,
    ),
    // A region from another partition than the DNS suffix's names no endpoint
    ("mydb.abc123xyz.rds.us-east-1.amazonaws.com.cn", None),
    ("mydb.abc123xyz.us-east-1.rds.amazonaws.com.cn", None),
    ("mydb.abc123xyz.cn-north-1.rds.amazonaws.com", None),
    ("mydb.abc123xyz.us-east-1.rds.amazonaws.eu", None),
    ("mydb.abc123xyz.eusc-de-east-1.rds.amazonaws.com", None),
    ("mydb.abc123xyz.us-east-1.rds.c2s.ic.gov", None),
    ("mydb.abc123xyz.us-iso-east-1.rds.sc2s.sgov.gov", None),
    // FIPS: only `rds-fips`, and still a region beside it
    ("mydb.abc123xyz.us-east-1.rds-fipsx.amazonaws.com", None),
    ("mydb.abc123xyz.us-east-1.fips.amazonaws.com", None),
    ("mydb.abc123xyz.rds-fips.amazonaws.com", None),
    ("abc.dsql-fips.on.aws", None),
    ("abc.dsql-fipsx.us-east-1.on.aws", None),
    // Suffixes no partition with RDS uses (the wrappers accept `.au`/`.uk` ahead of time)
    ("mydb.abc123xyz.ap-southeast-2.rds.amazonaws.au", None),
    ("mydb.abc123xyz.eu-west-2.rds.amazonaws.uk", None),
    ("mydb.abc123xyz.eu-isoe-west-1.rds.cloud.adc-e.uk", None),
    ("mydb.abc123xyz.us-east-1.rds.amazonaws.eu.example", None),
    // Aurora Global Database writer endpoints carry no region
    ("myglobal.global-abc123xyz.global.rds.amazonaws.com", None),
    ("MYGLOBAL.GLOBAL-ABC123XYZ.GLOBAL.RDS.AMAZONAWS.COM", None),
    // Not a DNS name: refused by `Endpoint::new`, never a region
    ("mydb.abc123xyz.us-east-1.rds.amazonaws.com.", None),
    ("10.1", None),
];

/// The region is missing: of the input `region`, and the message says which case (`host` is
/// a Global Database writer endpoint, or a name that carries no region).
#[track_caller]
fn assert_region_missing<T: std::fmt::Debug>(built: Result<T, Error>, host: &str, global: bool) {
    let err = built.expect_err(host);
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{host}: {err:?}");
    assert_eq!(err.setting(), Some("region"), "{host}: {err:?}");
    let msg = err.to_string();
    let expected = if global {
        format!("`{host}` is an Aurora Global Database writer endpoint: ")
    } else {
        format!("no region given and none can be inferred from hostname `{host}`: ")
    };
    assert!(
        msg.starts_with(&expected),
        "{host}: expected {expected:?}: {msg}"
    );
}

#[test]
fn infers_regions_from_the_table() {
    assert!(TABLE.len() >= 70);
    for (host, expected) in TABLE {
        let got = infer_region(host);
        assert_eq!(got.as_ref().map(|r| r.as_str()), *expected, "{host}");
    }
}

#[test]
fn endpoints_and_requests_use_the_inferred_region() {
    for (host, expected) in TABLE {
        // Not every table entry is a valid hostname (`us_east_1`, ``): those are refused earlier.
        let Ok(endpoint) = Endpoint::new(*host, 5432) else {
            assert!(expected.is_none(), "{host}");
            continue;
        };
        let built = TokenRequest::rds(&endpoint, "u").build();
        match expected {
            Some(region) => assert_eq!(built.unwrap().region().as_str(), *region, "{host}"),
            None if host
                .to_ascii_lowercase()
                .ends_with(".global.rds.amazonaws.com") =>
            {
                assert_region_missing(built, host, true)
            }
            None => assert_region_missing(built, host, false),
        }
    }
}

#[test]
fn an_explicit_region_always_wins() {
    for (host, _) in TABLE {
        let Ok(endpoint) = Endpoint::new(*host, 5432) else {
            continue;
        };
        let request = TokenRequest::rds(&endpoint, "u")
            .region("sa-east-1")
            .build()
            .unwrap();
        assert_eq!(request.region().as_str(), "sa-east-1", "{host}");
    }
}

#[test]
fn global_writer_endpoints_need_an_explicit_region_and_say_why() {
    for host in [
        "myglobal.global-abc123xyz.global.rds.amazonaws.com",
        "MyGlobal.Global-ABC123xyz.Global.RDS.amazonaws.com",
    ] {
        let endpoint = Endpoint::new(host, 5432).unwrap();
        let built = TokenRequest::rds(&endpoint, "u").build();
        let err = built.clone().unwrap_err();
        assert_region_missing(built, host, true);
        let msg = err.to_string();
        assert!(msg.contains("Global Database writer endpoint"), "{msg}");
        assert!(msg.contains("primary"), "{msg}");
        assert!(msg.contains(".region("), "{msg}");
        let request = TokenRequest::rds(&endpoint, "u")
            .region("us-west-2")
            .build()
            .unwrap();
        assert_eq!(request.region().as_str(), "us-west-2");
    }
    // Other names without a region keep the general error.
    let endpoint = Endpoint::new("db.global.example.com", 5432).unwrap();
    assert_region_missing(
        TokenRequest::rds(&endpoint, "u").build(),
        "db.global.example.com",
        false,
    );
}

#[test]
fn a_trailing_dot_is_refused_with_a_message_that_says_so() {
    // botocore signs `name.:5432` as given, a token RDS does not match against its name:
    // refused rather than silently stripped.
    let err = Endpoint::new("mydb.abc123xyz.us-east-1.rds.amazonaws.com.", 5432).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    assert_eq!(err.setting(), Some("hostname"), "{err:?}");
    assert!(err.to_string().starts_with("invalid hostname `"), "{err}");
    assert!(err.to_string().contains("trailing dot"), "{err}");
}

#[test]
fn every_vector_hostname_yields_its_region_and_the_same_token() {
    let signer = TokenSigner::new();
    let mut checked = 0;
    for v in vectors::all() {
        let inferred = infer_region(&v.hostname);
        assert_eq!(
            inferred.as_ref().map(|r| r.as_str()),
            v.host_region.as_deref(),
            "{}",
            v.name
        );
        if v.host_region.as_deref() != Some(v.region.as_str()) {
            continue;
        }
        // Without `.region(...)`, the inferred region gives botocore's token.
        let endpoint = Endpoint::new(&v.hostname, v.port.unwrap_or(5432)).unwrap();
        let builder = if v.is_dsql() {
            TokenRequest::dsql(&endpoint, v.user())
        } else {
            TokenRequest::rds(&endpoint, v.user())
        };
        let request = builder
            .expires_in(std::time::Duration::from_secs(v.expires_in))
            .build()
            .unwrap();
        let token = signer
            .sign(&v.credentials(), &request, v.signing_time())
            .unwrap();
        assert_eq!(token.expose(), v.expected_token, "{}", v.name);
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} vectors carry their region");
}
