//! No secret ever shows in `Debug` or `Display`: not the token, not the secret key, not the
//! session token.

mod support;

use rds_iam_auth::TokenGenerator;
use rds_iam_auth::clock::FixedClock;
use rds_iam_auth::token::TokenSigner;
use support::vectors;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN_PART: &str = "IQoJb3JpZ2luX2VjEXAMPLE";

fn assert_no_secret(rendered: &str, token: &str) {
    assert!(!rendered.contains(SECRET), "secret key leaked: {rendered}");
    assert!(
        !rendered.contains(SESSION_TOKEN_PART),
        "session token leaked: {rendered}"
    );
    assert!(
        !rendered.contains("X-Amz-Signature"),
        "token leaked: {rendered}"
    );
    assert!(!rendered.contains(token), "token leaked: {rendered}");
    // The signature alone (its 64 hex digits) must not show either.
    let signature = token.rsplit('=').next().unwrap();
    assert!(
        !rendered.contains(signature),
        "signature leaked: {rendered}"
    );
}

fn vector_with_session_token() -> vectors::Vector {
    vectors::all()
        .into_iter()
        .find(|v| v.session_token.is_some() && !v.is_dsql())
        .unwrap()
}

#[tokio::test]
async fn token_debug_and_display_show_no_secret() {
    let v = vector_with_session_token();
    let generator = TokenGenerator::builder(v.credentials())
        .clock(FixedClock::new(v.signing_time()))
        .build();
    let token = generator.generate(&v.request()).await.unwrap();
    assert_eq!(token.expose(), v.expected_token);
    for rendered in [
        format!("{token:?}"),
        format!("{token:#?}"),
        format!("{token}"),
        token.to_string(),
    ] {
        assert_no_secret(&rendered, token.expose());
    }
    assert!(format!("{token:?}").contains("redacted"));
    assert!(format!("{token:?}").contains("expires_at"));
}

#[tokio::test]
async fn config_types_holding_secrets_show_none() {
    let v = vector_with_session_token();
    let generator = TokenGenerator::builder(v.credentials())
        .clock(FixedClock::new(v.signing_time()))
        .build();
    // After a token, the generator holds credentials and a derived signing key.
    let token = generator.generate(&v.request()).await.unwrap();
    assert_no_secret(&format!("{generator:?}"), token.expose());
    assert_no_secret(&format!("{generator:#?}"), token.expose());

    let builder = TokenGenerator::builder(v.credentials());
    assert_no_secret(&format!("{builder:?}"), token.expose());

    let signer = TokenSigner::new();
    signer
        .sign(&v.credentials(), &v.request(), v.signing_time())
        .unwrap();
    assert_no_secret(&format!("{signer:?}"), token.expose());

    // The request carries no secret but the user; it must not carry the token either.
    assert_no_secret(&format!("{:?}", v.request()), token.expose());
}

#[test]
fn errors_show_no_secret() {
    let v = vector_with_session_token();
    let stale = rds_iam_auth::Credentials::new(
        &v.access_key_id,
        &v.secret_access_key,
        v.session_token.clone(),
        Some(v.signing_time()),
        "test",
    );
    let err = TokenSigner::new()
        .sign(&stale, &v.request(), v.signing_time())
        .unwrap_err();
    let rendered = format!("{err} / {err:?}");
    assert!(
        !rendered.contains(SECRET) && !rendered.contains(SESSION_TOKEN_PART),
        "{rendered}"
    );
}
