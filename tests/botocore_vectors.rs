//! Tokens are byte-identical to botocore's `generate_db_auth_token` (RDS) and
//! `generate_db_connect[_admin]_auth_token` (DSQL).

mod support;

use rds_iam_auth::TokenGenerator;
use rds_iam_auth::clock::FixedClock;
use rds_iam_auth::token::TokenSigner;
use support::vectors;

#[test]
fn every_vector_matches_byte_for_byte() {
    let all = vectors::all();
    assert!(
        all.len() >= 15,
        "expected the vector files, found {}",
        all.len()
    );
    let signer = TokenSigner::new();
    let mut failures = Vec::new();
    for v in &all {
        let token = signer
            .sign(&v.credentials(), &v.request(), v.signing_time())
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        if token.expose() != v.expected_token {
            failures.push(format!(
                "{}\n  expected {}\n  got      {}",
                v.name,
                v.expected_token,
                token.expose()
            ));
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[test]
fn both_services_and_session_tokens_are_covered() {
    let all = vectors::all();
    assert!(
        all.iter()
            .any(|v| v.is_dsql() && v.action == "DbConnectAdmin")
    );
    assert!(all.iter().any(|v| v.is_dsql() && v.action == "DbConnect"));
    assert!(
        all.iter()
            .any(|v| !v.is_dsql() && v.session_token.is_some())
    );
    assert!(
        all.iter()
            .any(|v| !v.is_dsql() && v.session_token.is_none())
    );
}

#[tokio::test]
async fn the_generator_with_a_fixed_clock_reproduces_every_vector() {
    for v in vectors::all() {
        let generator = TokenGenerator::builder(v.credentials())
            .clock(FixedClock::new(v.signing_time()))
            .build();
        let token = generator.generate(&v.request()).await.unwrap();
        assert_eq!(token.expose(), v.expected_token, "{}", v.name);
        assert_eq!(
            token.expires_at(),
            v.signing_time() + std::time::Duration::from_secs(v.expires_in)
        );
    }
}

#[test]
fn a_warm_key_cache_gives_the_same_tokens_as_a_cold_one() {
    let signer = TokenSigner::new();
    for _round in 0..2 {
        for v in vectors::all() {
            let token = signer
                .sign(&v.credentials(), &v.request(), v.signing_time())
                .unwrap();
            assert_eq!(token.expose(), v.expected_token, "{}", v.name);
        }
    }
}

#[test]
fn the_aws_sigv4_reference_path_agrees_with_botocore() {
    for v in vectors::all() {
        let token = support::reference::token(&v.credentials(), &v.request(), v.signing_time());
        assert_eq!(token, v.expected_token, "{}", v.name);
    }
}
