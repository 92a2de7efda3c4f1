//! Property tests: the parsers never panic, and the fast signer always agrees with
//! aws-sigv4's general presigning path.

mod support;

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use rds_iam_auth::endpoint::infer_region;
use rds_iam_auth::token::TokenSigner;
use rds_iam_auth::{Credentials, Endpoint, Region, TokenRequest};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn endpoint_parsers_never_panic(s in any::<String>(), port in any::<u16>()) {
        let _ = Endpoint::new(s.clone(), port);
        let _ = s.parse::<Endpoint>();
        let _ = infer_region(&s);
        let _ = Region::new(s.clone());
        if let Ok(e) = Endpoint::new("db.abc.us-east-1.rds.amazonaws.com", port) {
            let _ = e.with_dial_address(s.clone(), port);
        }
    }

    #[test]
    fn hostname_shaped_strings_never_panic(s in "[a-zA-Z0-9.:\\[\\]-]{0,300}") {
        let _ = Endpoint::new(s.clone(), 5432);
        let _ = s.parse::<Endpoint>();
        if let Ok(e) = Endpoint::new(s.clone(), 5432) {
            let _ = e.inferred_region();
            let _ = TokenRequest::rds(&e, "u").build();
        }
    }

    #[test]
    fn arbitrary_users_never_panic(user in any::<String>(), region in any::<String>()) {
        let e = Endpoint::new("db.abc.us-east-1.rds.amazonaws.com", 5432).unwrap();
        let _ = TokenRequest::rds(&e, user.clone()).build();
        let _ = TokenRequest::rds(&e, user).region(region).build();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fast_path_equals_aws_sigv4_general_path(
        user in "\\PC{1,30}",
        host in prop::sample::select(vec![
            "mydb.cluster-abc123.us-east-1.rds.amazonaws.com",
            "MyDB.Cluster-ABC.eu-west-1.rds.amazonaws.com",
            "proxy.proxy-xyz.ap-southeast-2.rds.amazonaws.com",
            "db.abc.cn-north-1.rds.amazonaws.com.cn",
            "abcdefghij.dsql.us-east-2.on.aws",
        ]),
        port in prop::sample::select(vec![5432u16, 3306, 443, 80, 1]),
        session_token in proptest::option::of("[A-Za-z0-9+/=]{1,64}"),
        secs in 0u64..4_000_000_000,
        expires in 1u64..=900,
        dsql in any::<bool>(),
    ) {
        let endpoint = Endpoint::new(host, port).unwrap();
        let builder = if dsql && endpoint.is_dsql() {
            TokenRequest::dsql(&endpoint, user)
        } else {
            TokenRequest::rds(&endpoint, user)
        };
        let request = builder.expires_in(Duration::from_secs(expires)).build();
        // Users with characters a database cannot hold are refused, never signed wrongly.
        prop_assume!(request.is_ok());
        let request = request.unwrap();
        let credentials = Credentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", session_token, None, "prop");
        let at = UNIX_EPOCH + Duration::from_secs(secs);
        let fast = TokenSigner::new().sign(&credentials, &request, at).unwrap();
        let reference = support::reference::token(&credentials, &request, at);
        prop_assert_eq!(fast.expose(), reference.as_str());
    }
}
