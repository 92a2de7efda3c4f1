//! The connector's spans and events, captured at TRACE from a real login, a rejection and
//! its retry: OpenTelemetry's attribute names are there, and no token, signature or secret
//! key ever is.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::iam;

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn trace_output_names_the_database_and_never_the_token() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Thread-local: the current-thread runtime runs the connection's tasks on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let (token, error) = iam::login_then_rejection().await;
    assert!(
        matches!(error, rds_iam_auth::Error::AuthenticationRejected { .. }),
        "{error}"
    );

    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for expected in [
        "rds_iam_auth.connect{",
        "db.system.name=\"postgresql\"",
        "server.address=\"mydb.cluster-abc123xyz.us-east-1.rds.amazonaws.com\"",
        "server.port=5432",
        "db.namespace=\"appdb\"",
        "rds_iam_auth.attempt{attempt=2}",
        "rds_iam_auth.sign{",
        "rejected the IAM token",
        "IAM login failed",
    ] {
        assert!(out.contains(expected), "no `{expected}` in:\n{out}");
    }
    let credentials = iam::credentials();
    for secret in [
        token.expose(),
        "X-Amz-Signature",
        "X-Amz-Credential",
        "Action=connect",
        credentials.secret_access_key(),
    ] {
        assert!(
            !out.contains(secret),
            "`{secret}` in the trace output:\n{out}"
        );
    }
}
