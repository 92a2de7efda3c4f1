//! Region inference from endpoint hostnames, as a table.

use rds_iam_auth::{Endpoint, Error, TokenRequest, infer_region};

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
    // Aurora DSQL
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
];

#[test]
fn infers_regions_from_the_table() {
    assert!(TABLE.len() >= 25);
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
            None => assert!(
                matches!(built, Err(Error::RegionNotFound { .. })),
                "{host}: expected RegionNotFound"
            ),
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
