//! The token never leaves the process except inside a verified TLS session (PostgreSQL).
//!
//! The scenarios both engines share (positive control, refused certificates, timeout) are
//! in `support::security`; the tests below them are PostgreSQL's own: a fake server that
//! refuses TLS (`N` to SSLRequest) must not get the token in plaintext.

mod support;

use std::time::Duration;

use rds_iam_auth::connector::Postgres;
use rds_iam_auth::{Endpoint, Engine, ErrorKind};
use support::fake_postgres::{Answer, fake_server};
use support::security::{assert_no_token_bytes, connector_to};

security_scenarios!(Postgres);

#[tokio::test]
async fn tls_refused_by_the_server_fails_without_sending_the_token() {
    let server = fake_server(Answer::RefuseTls).await;
    let (connector, token) = connector_to::<Postgres>(&server).await;
    let err = connector
        .connect()
        .await
        .expect_err("no plaintext fallback");
    assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    assert_eq!(err.engine(), Some(Engine::Postgres), "{err:?}");
    assert!(err.to_string().contains("offered no TLS"), "{err}");
    assert!(!err.to_string().contains("with_ca_file"), "{err}");
    assert_eq!(server.received().len(), 8, "only the SSLRequest");
    assert_no_token_bytes(&server, &token);
}

#[tokio::test]
async fn an_ip_address_as_signing_host_fails_before_any_socket_is_opened() {
    let server = fake_server(Answer::RefuseTls).await;
    let err = Endpoint::new("127.0.0.1", server.port).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    assert_eq!(err.setting(), Some("hostname"), "{err:?}");
    // An IP address, not an otherwise invalid hostname.
    assert!(err.to_string().contains("is an IP address"), "{err}");
    assert!(err.to_string().contains("dial address"), "{err}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.connections(), 0);
}
