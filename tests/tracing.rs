//! The connector's spans and events, captured at TRACE from a real login, a rejection and
//! its retry: OpenTelemetry's attribute names are there, and no token, signature or secret
//! key ever is.

mod support;

use support::iam;

#[tokio::test]
async fn trace_output_names_the_database_and_never_the_token() {
    let (captured, _guard) = support::trace::capture();

    let (token, error) = iam::login_then_rejection().await;
    assert_eq!(error.kind(), rds_iam_auth::ErrorKind::Rejected, "{error}");

    captured.assert_shows(&[
        "rds_iam_auth.connect{",
        "db.system.name=\"postgresql\"",
        "server.address=\"mydb.cluster-abc123xyz.us-east-1.rds.amazonaws.com\"",
        "server.port=5432",
        "db.namespace=\"appdb\"",
        "rds_iam_auth.attempt{attempt=2}",
        "rds_iam_auth.sign{",
        "rejected the IAM token",
        "IAM login failed",
    ]);
    let credentials = iam::credentials();
    captured.assert_no_secret(&[token.expose(), credentials.secret_access_key()]);
}
