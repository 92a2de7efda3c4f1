//! The connector's scenarios against a real server, written once for every engine: run
//! them from an engine's test file with [`connector_scenarios!`](crate::connector_scenarios).
//!
//! Every scenario that needs the server changes the IAM user's password: the generated
//! tests take turns (the file's `TURN`).

use std::error::Error as _;
use std::time::Duration;

use rds_iam_auth::connector::Connector;
use rds_iam_auth::{Endpoint, Error, ErrorKind, TokenRequest, TrustStore};

use super::engine::TestEngine;
use super::iam::{self, CountingProxy, TestClock};
use super::{RDS_HOSTNAME, certs};

/// Connects with an IAM token (region set explicitly) and queries as the IAM user, in its
/// database, over TLS.
pub async fn connects_with_an_iam_token_and_queries<D: TestEngine>() {
    let Some(port) = D::server_port() else { return };
    let clock = TestClock::new();
    let endpoint = Endpoint::new("localhost", port).unwrap();
    let connector = D::builder(iam::cache(&clock), endpoint)
        .region("us-east-1")
        .build()
        .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;
    D::set_password(token.expose());

    let mut conn = connector.connect().await.unwrap();
    assert_eq!(D::current_database(&mut conn).await, "appdb");
    assert_eq!(D::current_user(&mut conn).await, D::CURRENT_USER);
    assert!(D::uses_tls(&mut conn).await, "TLS");
}

/// Signed for (and verified as) the RDS name while dialling 127.0.0.1, trusting the AWS
/// bundle plus the test CA: what a user with a private CA configures.
pub async fn tunnel_signs_and_verifies_the_rds_name_while_dialling_127_0_0_1<D: TestEngine>() {
    let Some(port) = D::server_port() else { return };
    let clock = TestClock::new();
    let trust = TrustStore::aws_default()
        .with_ca_pem(certs().ca.cert_pem.as_bytes())
        .unwrap();
    let connector = D::builder(iam::cache(&clock), D::tunnel_endpoint(port))
        .trust(trust)
        .build()
        .unwrap();
    let request = connector.token_request();
    assert_eq!(request.host(), RDS_HOSTNAME);
    assert_eq!(
        request.port(),
        D::SIGNING_PORT,
        "signed for the endpoint's port"
    );
    assert_eq!(request.region().as_str(), "us-east-1");
    let token = iam::token_at(request, clock.at()).await;
    let prefix = format!("{RDS_HOSTNAME}:{}/?", D::SIGNING_PORT);
    assert!(token.expose().starts_with(&prefix));
    D::set_password(token.expose());

    let mut conn = connector.connect().await.unwrap();
    assert!(D::uses_tls(&mut conn).await, "TLS");
    assert_eq!(D::current_database(&mut conn).await, "appdb");
}

/// The server stops accepting the token the cache holds; the connector must invalidate it,
/// get a fresh one and try exactly once more. Correct with any cache: the proxy moves the
/// clock and installs the token of the new time while the first attempt is on its way, so
/// the first attempt's token (obtained before) is rejected whatever the cache did, and only
/// a token obtained after the rejection is accepted.
pub async fn a_rejected_token_is_replaced_and_retried_once<D: TestEngine>() {
    let Some(port) = D::server_port() else { return };
    let clock = TestClock::new();
    D::set_password("not the token");
    let request = D::builder(iam::cache(&clock), D::tunnel_endpoint(1))
        .build()
        .unwrap()
        .token_request()
        .clone();
    let hook_clock = clock.clone();
    let proxy = CountingProxy::start_to(port, move |n| {
        if n == 1 {
            hook_clock.advance(Duration::from_secs(60));
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let next = rt.block_on(iam::token_at(&request, hook_clock.at()));
            D::set_password(next.expose());
        }
    })
    .await;
    let connector = D::builder(iam::cache(&clock), D::tunnel_endpoint(proxy.port))
        .build()
        .unwrap();
    // Prime the cache with the soon-stale token (a real cache keeps it; the stub re-signs).
    let stale = connector
        .cache()
        .get(connector.token_request())
        .await
        .unwrap();

    let mut conn = connector.connect().await.expect("the retry logs in");
    assert_eq!(D::current_user(&mut conn).await, D::CURRENT_USER);
    assert_eq!(proxy.connections(), 2, "exactly one retry");
    let fresh = connector
        .cache()
        .get(connector.token_request())
        .await
        .unwrap();
    assert!(!fresh.same_token(&stale));
}

/// Rejected twice: the error names the engine, the endpoint, the user and region, keeps the
/// driver's error as its source, lists this engine's causes (and not another engine's), and
/// shows no token.
pub async fn a_token_that_keeps_failing_gives_the_diagnostic_error<D: TestEngine>() {
    let Some(port) = D::server_port() else { return };
    D::set_password("some other password");
    let proxy = CountingProxy::start_to(port, |_| {}).await;
    let clock = TestClock::new();
    let connector = D::builder(iam::cache(&clock), D::tunnel_endpoint(proxy.port))
        .build()
        .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;

    let err = connector.connect().await.expect_err("rejected twice");
    assert_eq!(proxy.connections(), 2, "one retry, no more");
    assert_rejection_diagnostic::<D>(
        &err,
        &token,
        (RDS_HOSTNAME, D::SIGNING_PORT),
        D::assert_invalid_password,
    );
}

/// The twice-rejected login's error, whatever made the login (a connector, a sqlx pool):
/// it names the engine, the signing endpoint, the user and region, keeps the driver's error
/// as its source (`source_is_rejection` checks it), lists this engine's causes and not
/// another engine's, and shows no token in any rendering.
pub fn assert_rejection_diagnostic<D: TestEngine>(
    err: &Error,
    token: &rds_iam_auth::IamAuthToken,
    (signing_host, signing_port): (&str, u16),
    source_is_rejection: impl FnOnce(&(dyn std::error::Error + 'static)),
) {
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err:?}");
    assert!(err.is_rejected(), "{err:?}");
    assert_eq!(err.engine(), Some(D::ENGINE_IN_ERRORS));
    assert_eq!(
        err.endpoint(),
        Some(format!("{signing_host}:{signing_port}"))
    );
    let msg = err.to_string();
    // The user and the region, as the message names them.
    assert!(
        msg.contains("for user `iam_user` (region us-east-1)"),
        "{msg}"
    );
    source_is_rejection(err.source().expect("the driver's error"));
    for cause in D::HINTS {
        assert!(msg.contains(cause), "{cause:?} missing from: {msg}");
    }
    for other in D::OTHER_ENGINE_HINTS {
        assert!(
            !msg.contains(other),
            "another engine's hint {other:?}: {msg}"
        );
    }
    let shown = format!("{err} {err:?} {:?} {}", err.source(), err.report());
    assert!(!shown.contains(token.expose()));
    assert!(!shown.contains("X-Amz-Signature"));
}

/// The AWS default store does not hold the test CA: a connect error naming the cause.
pub async fn an_untrusted_certificate_is_a_connect_error_naming_the_cause<D: TestEngine>() {
    let Some(port) = D::server_port() else { return };
    let clock = TestClock::new();
    let connector =
        Connector::<D>::builder(iam::cache(&clock), D::tunnel_endpoint(port), "iam_user")
            .build() // the AWS default store: the test CA is not in it
            .unwrap();
    let err = connector.connect().await.expect_err("untrusted");
    assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    assert_eq!(err.engine(), Some(D::ENGINE_IN_ERRORS), "{err:?}");
    let chain = format!("{:?}", err.source());
    assert!(chain.contains("UnknownIssuer"), "{chain}");
}

/// The request is the cache key: connectors that differ only in the dial address share
/// cached tokens. Needs no server.
pub async fn the_token_request_can_be_built_without_a_server<D: TestEngine>() {
    let clock = TestClock::new();
    let a = D::builder(iam::cache(&clock), D::tunnel_endpoint(1))
        .build()
        .unwrap();
    let b = D::builder(iam::cache(&clock), D::tunnel_endpoint(2))
        .build()
        .unwrap();
    let signed_for = Endpoint::new(RDS_HOSTNAME, D::SIGNING_PORT).unwrap();
    let expected = TokenRequest::rds(&signed_for, "iam_user").build().unwrap();
    assert_eq!(a.token_request(), &expected);
    assert_eq!(b.token_request(), &expected);
}

/// One `#[tokio::test]` per scenario of this module for the engine `$driver`, taking turns
/// on the calling file's `TURN` mutex (every scenario but the server-less one changes the
/// server's password).
#[macro_export]
macro_rules! connector_scenarios {
    ($driver:ty) => {
        $crate::connector_scenarios!(@turns $driver:
            connects_with_an_iam_token_and_queries,
            tunnel_signs_and_verifies_the_rds_name_while_dialling_127_0_0_1,
            a_rejected_token_is_replaced_and_retried_once,
            a_token_that_keeps_failing_gives_the_diagnostic_error,
            an_untrusted_certificate_is_a_connect_error_naming_the_cause,
        );
        #[tokio::test]
        async fn the_token_request_can_be_built_without_a_server() {
            $crate::support::scenarios::the_token_request_can_be_built_without_a_server::<$driver>().await;
        }
    };
    (@turns $driver:ty: $($scenario:ident,)*) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let _turn = TURN.lock().await;
                $crate::support::scenarios::$scenario::<$driver>().await;
            }
        )*
    };
}
