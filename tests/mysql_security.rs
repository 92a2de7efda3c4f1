//! The token never leaves the process except inside a verified TLS session (MySQL).
//!
//! The scenarios both engines share (positive control, refused certificates, timeout) are
//! in `support::security`; the tests below them are MySQL's own. With a greeting that lacks
//! TLS support, or a switch to `mysql_clear_password` sent in plaintext (a downgrade
//! attempt), the connection must fail and the fake server's capture must hold no byte of
//! the token, nor even the handshake response that carries the user name; only the
//! `TrustStore` is trusted (not mysql_async's built-in roots).

mod support;

use rds_iam_auth::connector::MySql;
use rds_iam_auth::mysql_async::{self, DriverError};
use rds_iam_auth::{Engine, ErrorKind};
use support::capture::error_chain;
use support::certs;
use support::fake_mysql::{Answer, fake_server};
use support::iam::{self, TestClock};
use support::security::{assert_no_token_bytes, connector_to};

security_scenarios!(MySql);

#[tokio::test]
async fn a_greeting_without_tls_support_fails_before_any_password() {
    let server = fake_server(Answer::NoTls).await;
    let (connector, token) = connector_to::<MySql>(&server).await;
    let err = connector.connect().await.expect_err("no plaintext login");
    assert_eq!(err.kind(), ErrorKind::Tls, "{}", error_chain(&err));
    assert_eq!(err.engine(), Some(Engine::MySql), "{}", error_chain(&err));
    let source = std::error::Error::source(&err).expect("the driver's error");
    assert!(
        matches!(
            source.downcast_ref::<mysql_async::Error>(),
            Some(mysql_async::Error::Driver(
                DriverError::NoClientSslFlagFromServer
            ))
        ),
        "{}",
        error_chain(&err)
    );
    assert!(err.to_string().contains("never sent without"), "{err}");
    assert_eq!(server.connections(), 1, "not retried");
    assert_eq!(server.received(), b"", "the client sent nothing at all");
    assert_no_token_bytes(&server, &token);
}

#[tokio::test]
async fn a_switch_to_cleartext_before_tls_is_refused() {
    for answer in [
        Answer::CleartextSwitchBeforeTls,
        Answer::UnsolicitedCleartextSwitch,
    ] {
        let server = fake_server(answer).await;
        let (connector, token) = connector_to::<MySql>(&server).await;
        let err = connector.connect().await.expect_err("downgrade must fail");
        assert_eq!(err.kind(), ErrorKind::Tls, "{}", error_chain(&err));
        assert_eq!(err.engine(), Some(Engine::MySql), "{}", error_chain(&err));
        assert_eq!(server.connections(), 1, "not retried");
        assert_no_token_bytes(&server, &token);
    }
}

/// mysql_async's built-in webpki roots are off: a server whose certificate chains to a
/// public root would not be trusted either, only the `TrustStore`. Here: a store with an
/// unrelated CA trusts nothing the server has; an empty store is refused outright.
#[tokio::test]
async fn only_the_trust_store_is_trusted() {
    let server = fake_server(Answer::Tls(&certs().server)).await;
    let clock = TestClock::new();
    let empty = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(server.port))
        .trust(rds_iam_auth::TrustStore::empty())
        .build()
        .expect_err("an empty store can verify nothing");
    assert_eq!(empty.kind(), ErrorKind::InvalidInput, "{empty:?}");
    assert_eq!(empty.setting(), Some("trust"), "{empty:?}");
    let unrelated = rds_iam_auth::TrustStore::empty()
        .with_ca_pem(include_bytes!("data/example-ca.pem"))
        .unwrap();
    let connector = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(server.port))
        .trust(unrelated)
        .build()
        .unwrap();
    let err = connector.connect().await.expect_err("nothing trusted");
    assert!(
        error_chain(&err).contains("UnknownIssuer"),
        "{}",
        error_chain(&err)
    );
    assert!(!server.saw(b"iam_user"));
}
