//! The PostgreSQL connector against a real server that authenticates like RDS IAM:
//! cleartext password over TLS, the password being the IAM token the test installed.
//!
//! Every test changes the role's password, so they take turns (`TURN`).

mod support;

use std::error::Error as _;
use std::time::Duration;

use rds_iam_auth::{Endpoint, Error, PgConnector, TokenRequest};
use support::iam::{self, CountingProxy, TestClock};
use support::{RDS_HOSTNAME, postgres};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

async fn one(client: &tokio_postgres::Client, sql: &str) -> String {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn connects_with_an_iam_token_and_queries() {
    let _turn = TURN.lock().await;
    let pg = postgres();
    let clock = TestClock::new();
    let endpoint = Endpoint::new("localhost", pg.port()).unwrap();
    let connector = iam::builder(iam::cache(&clock), endpoint)
        .region("us-east-1")
        .application_name("rds-iam-auth-test")
        .build()
        .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;
    pg.set_password(token.expose());

    let client = connector.connect().await.unwrap();
    assert_eq!(one(&client, "SELECT current_database()").await, "appdb");
    assert_eq!(one(&client, "SELECT current_user::text").await, "iam_user");
    assert_eq!(
        one(&client, "SELECT current_setting('application_name')").await,
        "rds-iam-auth-test"
    );
}

#[tokio::test]
async fn tunnel_signs_and_verifies_the_rds_name_while_dialling_127_0_0_1() {
    let _turn = TURN.lock().await;
    let pg = postgres();
    let clock = TestClock::new();
    let connector = iam::builder(iam::cache(&clock), iam::tunnel_endpoint(pg.port()))
        .build()
        .unwrap();
    let request = connector.token_request();
    assert_eq!(request.host(), RDS_HOSTNAME);
    assert_eq!(request.port(), 5432, "signed for the endpoint's port");
    assert_eq!(request.region().as_str(), "us-east-1");
    let token = iam::token_at(request, clock.at()).await;
    assert!(
        token
            .expose()
            .starts_with(&format!("{RDS_HOSTNAME}:5432/?"))
    );
    pg.set_password(token.expose());

    let client = connector.connect().await.unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl);
    assert_eq!(one(&client, "SELECT current_database()").await, "appdb");
}

/// The server stops accepting the token the cache holds; the connector must invalidate it,
/// get a fresh one and try exactly once more. Correct with any cache: the proxy moves the
/// clock and installs the token of the new time while the first attempt is on its way, so
/// the first attempt's token (obtained before) is rejected whatever the cache did, and only
/// a token obtained after the rejection is accepted.
#[tokio::test]
async fn a_rejected_token_is_replaced_and_retried_once() {
    let _turn = TURN.lock().await;
    let pg = postgres();
    let clock = TestClock::new();
    pg.set_password("not the token");
    let request = iam::builder(iam::cache(&clock), iam::tunnel_endpoint(1))
        .build()
        .unwrap()
        .token_request()
        .clone();
    let hook_clock = clock.clone();
    let proxy = CountingProxy::start(move |n| {
        if n == 1 {
            hook_clock.advance(Duration::from_secs(60));
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let next = rt.block_on(iam::token_at(&request, hook_clock.at()));
            postgres().set_password(next.expose());
        }
    })
    .await;
    let connector = iam::builder(iam::cache(&clock), iam::tunnel_endpoint(proxy.port))
        .build()
        .unwrap();
    // Prime the cache with the soon-stale token (a real cache keeps it; the stub re-signs).
    let stale = connector
        .cache()
        .get(connector.token_request())
        .await
        .unwrap();

    let client = connector.connect().await.expect("the retry logs in");
    assert_eq!(one(&client, "SELECT current_user::text").await, "iam_user");
    assert_eq!(proxy.connections(), 2, "exactly one retry");
    let fresh = connector
        .cache()
        .get(connector.token_request())
        .await
        .unwrap();
    assert!(!fresh.same_token(&stale));
}

#[tokio::test]
async fn a_token_that_keeps_failing_gives_the_diagnostic_error() {
    let _turn = TURN.lock().await;
    let pg = postgres();
    pg.set_password("some other password");
    let proxy = CountingProxy::start(|_| {}).await;
    let clock = TestClock::new();
    let connector = iam::builder(iam::cache(&clock), iam::tunnel_endpoint(proxy.port))
        .build()
        .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;

    let err = connector.connect().await.expect_err("rejected twice");
    assert_eq!(proxy.connections(), 2, "one retry, no more");
    let Error::AuthenticationRejected {
        engine,
        host,
        port,
        user,
        region,
        source,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*engine, rds_iam_auth::Engine::Postgres);
    assert_eq!(
        (host.as_str(), *port, user.as_str(), region.as_str()),
        (RDS_HOSTNAME, 5432, "iam_user", "us-east-1")
    );
    let source = source
        .downcast_ref::<tokio_postgres::Error>()
        .expect("the driver's error");
    assert_eq!(
        source.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD)
    );
    let msg = err.to_string();
    for cause in [
        "rds_iam",
        "another host",
        "expired",
        "clock",
        "rds-db:connect",
    ] {
        assert!(msg.contains(cause), "{cause:?} missing from: {msg}");
    }
    let shown = format!("{err} {err:?} {:?}", err.source());
    assert!(!shown.contains(token.expose()));
    assert!(!shown.contains("X-Amz-Signature"));
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_connect_error_naming_the_cause() {
    let _turn = TURN.lock().await;
    let pg = postgres();
    let clock = TestClock::new();
    let connector = PgConnector::builder(
        iam::cache(&clock),
        iam::tunnel_endpoint(pg.port()),
        "iam_user",
    )
    .build() // the AWS default store: the test CA is not in it
    .unwrap();
    let err = connector.connect().await.expect_err("untrusted");
    assert!(
        matches!(
            err,
            Error::Connect {
                engine: rds_iam_auth::Engine::Postgres,
                ..
            }
        ),
        "{err:?}"
    );
    let chain = format!("{:?}", err.source());
    assert!(chain.contains("UnknownIssuer"), "{chain}");
}

#[tokio::test]
async fn the_token_request_can_be_built_without_a_server() {
    // The request is the cache key: equal connectors share cached tokens.
    let clock = TestClock::new();
    let a = iam::builder(iam::cache(&clock), iam::tunnel_endpoint(1))
        .build()
        .unwrap();
    let b = iam::builder(iam::cache(&clock), iam::tunnel_endpoint(2))
        .build()
        .unwrap();
    let expected = TokenRequest::rds(&Endpoint::new(RDS_HOSTNAME, 5432).unwrap(), "iam_user")
        .build()
        .unwrap();
    assert_eq!(a.token_request(), &expected);
    assert_eq!(b.token_request(), &expected);
}
