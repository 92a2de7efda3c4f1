//! The token never leaves the process except inside a verified TLS session: the scenarios
//! every engine shares, written once. A fake server of the engine (`fake_postgres`,
//! `fake_mysql`) records every byte it receives; with a certificate from another CA, for
//! another name, or expired, the connection must fail and the capture must hold no byte of
//! the token, nor the login that carries the user name. A positive control (a trusted
//! certificate) shows the capture would see them. Run them from an engine's test file with
//! [`security_scenarios!`](crate::security_scenarios).

use std::time::Duration;

use rds_iam_auth::connector::Connector;
use rds_iam_auth::{ErrorKind, IamAuthToken};

use super::capture::{CaptureServer, error_chain};
use super::engine::TestEngine;
use super::iam::{self, TestClock};
use super::{CertFiles, certs};

/// An engine's fake server.
#[allow(async_fn_in_trait)]
pub trait FakeServer: TestEngine {
    /// Offers TLS with `cert`; if the client accepts it, asks for the cleartext password,
    /// records it and rejects it as the engine's "wrong password".
    async fn with_tls(cert: &'static CertFiles) -> CaptureServer;
    /// Accepts TCP connections and says nothing.
    async fn silent() -> CaptureServer;
}

/// Neither the token nor the login message that carries the user name reached the server.
pub fn assert_no_token_bytes(server: &CaptureServer, token: &IamAuthToken) {
    server.assert_never_saw(token.expose(), &[b"iam_user"]);
}

/// A connector signed for the RDS-looking name, dialling the fake server, trusting the
/// harness's test CA.
pub async fn connector_to<D: TestEngine>(server: &CaptureServer) -> (Connector<D>, IamAuthToken) {
    let clock = TestClock::new();
    let connector = D::builder(iam::cache(&clock), D::tunnel_endpoint(server.port))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;
    (connector, token)
}

pub async fn positive_control_a_trusted_server_sees_the_token<D: FakeServer>() {
    let server = D::with_tls(&certs().server).await;
    let (connector, token) = connector_to::<D>(&server).await;
    let err = connector
        .connect()
        .await
        .expect_err("the fake server rejects");
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err:?}");
    assert_eq!(err.engine(), Some(D::ENGINE_IN_ERRORS), "{err:?}");
    assert_eq!(server.connections(), 2, "one retry");
    assert!(
        server.saw(token.expose().as_bytes()),
        "the capture must see a token sent over verified TLS, else the checks below prove nothing"
    );
    assert!(server.saw(b"iam_user"));
}

async fn refused_certificate<D: FakeServer>(cert: &'static CertFiles, expected: &str, hint: &str) {
    let server = D::with_tls(cert).await;
    let (connector, token) = connector_to::<D>(&server).await;
    let err = connector
        .connect()
        .await
        .expect_err("certificate must be refused");
    let chain = error_chain(&err);
    assert_eq!(err.kind(), ErrorKind::Tls, "{chain}");
    assert!(err.is_tls(), "{chain}");
    assert_eq!(err.engine(), Some(D::ENGINE_IN_ERRORS), "{chain}");
    assert!(chain.contains(expected), "{expected} not in {chain}");
    assert!(err.to_string().contains(hint), "{hint} not in {err}");
    let report = err.report();
    for said_once in ["invalid peer certificate", "Input/output error"] {
        assert!(
            report.matches(said_once).count() <= 1,
            "{said_once}: {report}"
        );
    }
    assert_eq!(server.connections(), 1, "a TLS failure is not retried");
    assert_no_token_bytes(&server, &token);
}

pub async fn certificate_from_another_ca_is_refused<D: FakeServer>() {
    refused_certificate::<D>(&certs().other_ca_server, "UnknownIssuer", "with_ca_file").await;
}

pub async fn certificate_for_another_name_is_refused<D: FakeServer>() {
    refused_certificate::<D>(
        &certs().wrong_name,
        "NotValidForName",
        "not valid for the signing hostname",
    )
    .await;
}

pub async fn expired_certificate_is_refused<D: FakeServer>() {
    refused_certificate::<D>(&certs().expired, "Expired", "expired or not yet valid").await;
}

pub async fn a_silent_server_hits_the_connect_timeout<D: FakeServer>() {
    let server = D::silent().await;
    let clock = TestClock::new();
    let connector = D::builder(iam::cache(&clock), D::tunnel_endpoint(server.port))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let t0 = std::time::Instant::now();
    let err = connector.connect().await.expect_err("timeout");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.is_timeout(), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(err.to_string().contains("connect_timeout"), "{err}");
}

/// One `#[tokio::test]` per scenario for the engine `$driver` (each has its own fake
/// server: they run in parallel).
#[macro_export]
macro_rules! security_scenarios {
    ($driver:ty) => {
        $crate::security_scenarios!(@each $driver:
            positive_control_a_trusted_server_sees_the_token,
            certificate_from_another_ca_is_refused,
            certificate_for_another_name_is_refused,
            expired_certificate_is_refused,
            a_silent_server_hits_the_connect_timeout,
        );
    };
    (@each $driver:ty: $($scenario:ident,)*) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                $crate::support::security::$scenario::<$driver>().await;
            }
        )*
    };
}

#[cfg(feature = "postgres")]
impl FakeServer for rds_iam_auth::connector::Postgres {
    async fn with_tls(cert: &'static CertFiles) -> CaptureServer {
        super::fake_postgres::fake_server(super::fake_postgres::Answer::Tls(cert)).await
    }
    async fn silent() -> CaptureServer {
        super::fake_postgres::fake_server(super::fake_postgres::Answer::Silent).await
    }
}

#[cfg(feature = "mysql")]
impl FakeServer for rds_iam_auth::connector::MySql {
    async fn with_tls(cert: &'static CertFiles) -> CaptureServer {
        super::fake_mysql::fake_server(super::fake_mysql::Answer::Tls(cert)).await
    }
    async fn silent() -> CaptureServer {
        super::fake_mysql::fake_server(super::fake_mysql::Answer::Silent).await
    }
}
