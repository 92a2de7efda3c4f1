//! The PostgreSQL Lambda function (`examples/lambda_postgres.rs`), its handler called
//! in-process against the throwaway server: connection reuse across warm invocations,
//! recovery from a killed backend and a restarted server, the error shape.
//!
//! The server is this binary's own; the tests take turns because they kill its backends.

mod support;

#[allow(dead_code)]
#[path = "../examples/lambda_postgres.rs"]
mod lambda;

use std::time::{Duration, Instant};

use lambda::Function;
use rds_iam_auth::Endpoint;
use serde_json::json;
use support::iam::{self, TestClock};
use support::postgres;
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());
const APP: &str = "lambda-under-test";

/// A function connected through the tunnel endpoint, with the role's password set to the
/// token its cache will sign.
async fn function() -> Function {
    let pg = postgres();
    let clock = TestClock::new();
    let connector = iam::builder(iam::cache(&clock), iam::tunnel_endpoint(pg.port()))
        .application_name(APP)
        .build()
        .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;
    pg.set_password(token.expose());
    Function::new(Ok(connector))
}

/// The backend pids of the function's connections, seen from the server.
fn backend_pids() -> Vec<String> {
    let out = postgres().admin_sql(&format!(
        "SELECT pid FROM pg_stat_activity WHERE application_name = '{APP}' ORDER BY pid"
    ));
    out.lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

fn success() -> serde_json::Value {
    json!({"status": "Success", "results": [{"current_database": "appdb"}]})
}

#[tokio::test]
async fn warm_invocations_reuse_one_connection() {
    let _turn = TURN.lock().await;
    let f = function().await;
    assert_eq!(f.handle().await, success());
    let first = backend_pids();
    assert_eq!(first.len(), 1, "one connection: {first:?}");
    for _ in 0..3 {
        assert_eq!(f.handle().await, success());
    }
    assert_eq!(
        backend_pids(),
        first,
        "the same backend served every invocation"
    );
}

#[tokio::test]
async fn a_killed_backend_is_replaced_on_the_next_invocation() {
    let _turn = TURN.lock().await;
    let f = function().await;
    assert_eq!(f.handle().await, success());
    let before = backend_pids();
    assert!(postgres().terminate_backends_of(postgres().user()) >= 1);
    assert_eq!(f.handle().await, success());
    let after = backend_pids();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "a new backend");
    assert_eq!(f.handle().await, success());
    assert_eq!(backend_pids(), after, "and it is reused");
}

#[tokio::test]
async fn a_restarted_server_is_reconnected_to() {
    let _turn = TURN.lock().await;
    let f = function().await;
    assert_eq!(f.handle().await, success());
    postgres().restart();
    assert_eq!(f.handle().await, success());
    assert_eq!(backend_pids().len(), 1);
}

#[tokio::test]
async fn a_bad_endpoint_gives_the_error_shape_quickly() {
    let _turn = TURN.lock().await;
    // Nothing listens there: a closed loopback port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = TestClock::new();
    let connector = iam::builder(iam::cache(&clock), iam::tunnel_endpoint(closed))
        .build()
        .unwrap();
    let f = Function::new(Ok(connector));
    let started = Instant::now();
    let response = f.handle().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(response["status"], "Error");
    let message = response["message"].as_str().unwrap();
    assert!(!message.is_empty());
    assert!(
        !message.contains("X-Amz-Signature") && !message.contains("Amz-Credential"),
        "{message}"
    );

    // A malformed endpoint is the same shape, at every invocation.
    let bad = Endpoint::new("not a hostname", 5432).unwrap_err();
    let f = Function::new(Err(bad.to_string()));
    let response = f.handle().await;
    assert_eq!(response["status"], "Error");
    assert!(
        response["message"]
            .as_str()
            .unwrap()
            .contains("invalid hostname")
    );
}

#[tokio::test]
async fn a_rejected_login_gives_the_error_shape_without_secrets() {
    let _turn = TURN.lock().await;
    let f = function().await;
    postgres().set_password("not-the-token");
    let response = f.handle().await;
    assert_eq!(response["status"], "Error");
    let message = response["message"].as_str().unwrap();
    assert!(
        message.contains("rds_iam"),
        "the diagnostic error: {message}"
    );
    assert!(!message.contains("X-Amz-Signature"), "{message}");
}
