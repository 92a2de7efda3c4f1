//! The MySQL Lambda function (`examples/lambda_mysql.rs`), its handler called in-process
//! against the throwaway MariaDB (cleartext plugin inside TLS, as RDS): connection reuse
//! across warm invocations, recovery from a killed connection and a restarted server, the
//! error shape. Needs root for the PAM service (`support::mariadb_or_skip`).

mod support;

#[allow(dead_code)]
#[path = "../examples/lambda_mysql.rs"]
mod lambda;

use std::time::{Duration, Instant};

use lambda::Function;
use serde_json::json;
use support::iam::{self, TestClock};
use support::{MariaDbServer, mariadb_or_skip};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

/// A function connected through the tunnel endpoint, with the accepted token set to the one
/// its cache will sign.
async fn function(db: &MariaDbServer) -> Function {
    let clock = TestClock::new();
    let connector = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(db.port()))
        .build()
        .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;
    db.set_password(token.expose());
    Function::new(Ok(connector))
}

/// The ids of the function's connections, seen from the server.
fn connection_ids(db: &MariaDbServer) -> Vec<String> {
    let out = db.admin_sql(&format!(
        "SELECT id FROM information_schema.processlist WHERE user = '{}' ORDER BY id",
        db.user()
    ));
    out.lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty() && l != "id")
        .collect()
}

fn success() -> serde_json::Value {
    json!({"status": "Success", "results": {"database_name": "appdb"}})
}

#[tokio::test]
async fn warm_invocations_reuse_one_connection() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let f = function(db).await;
    assert_eq!(f.handle().await, success());
    let first = connection_ids(db);
    assert_eq!(first.len(), 1, "one connection: {first:?}");
    for _ in 0..3 {
        assert_eq!(f.handle().await, success());
    }
    assert_eq!(
        connection_ids(db),
        first,
        "the same connection served every invocation"
    );
}

#[tokio::test]
async fn a_killed_connection_is_replaced_on_the_next_invocation() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let f = function(db).await;
    assert_eq!(f.handle().await, success());
    let before = connection_ids(db);
    assert!(db.kill_connections_of(db.user()) >= 1);
    assert_eq!(f.handle().await, success());
    let after = connection_ids(db);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "a new connection");
    assert_eq!(f.handle().await, success());
    assert_eq!(connection_ids(db), after, "and it is reused");
}

#[tokio::test]
async fn a_restarted_server_is_reconnected_to() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let f = function(db).await;
    assert_eq!(f.handle().await, success());
    db.restart();
    assert_eq!(f.handle().await, success());
    assert_eq!(connection_ids(db).len(), 1);
}

#[tokio::test]
async fn a_bad_endpoint_gives_the_error_shape_quickly() {
    let _turn = TURN.lock().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = TestClock::new();
    let connector = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(closed))
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
}

#[tokio::test]
async fn a_rejected_login_gives_the_error_shape_without_secrets() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let f = function(db).await;
    db.set_password("not-the-token");
    let response = f.handle().await;
    assert_eq!(response["status"], "Error");
    let message = response["message"].as_str().unwrap();
    assert!(
        message.contains("AWSAuthenticationPlugin"),
        "the diagnostic error: {message}"
    );
    assert!(!message.contains("X-Amz-Signature"), "{message}");
}
