//! The MySQL connector against a real server that authenticates like RDS IAM for MySQL:
//! over TLS the server switches the client to `mysql_clear_password`, and the password is
//! the IAM token the test installed (MariaDB, PAM `pam_userdb`).
//!
//! Needs root for the PAM service (see `support::mariadb_or_skip`): skipped loudly
//! otherwise, failing under `CI=true`. Every test changes the accepted token, so they take
//! turns (`TURN`).

mod support;

use std::error::Error as _;
use std::time::Duration;

use rds_iam_auth::mysql_async::prelude::*;
use rds_iam_auth::mysql_async::{self, Conn};
use rds_iam_auth::{Endpoint, Engine, Error, MySqlConnector, TokenRequest};
use support::iam::{self, CountingProxy, TestClock};
use support::{RDS_HOSTNAME, mariadb_or_skip};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

async fn one(conn: &mut impl Queryable, sql: &str) -> String {
    conn.query_first::<String, _>(sql).await.unwrap().unwrap()
}

/// The cipher of the session's TLS connection (empty without TLS).
async fn ssl_cipher(conn: &mut impl Queryable) -> String {
    let row: (String, String) = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap()
        .unwrap();
    row.1
}

#[tokio::test]
async fn connects_with_an_iam_token_and_queries() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let clock = TestClock::new();
    let endpoint = Endpoint::new("localhost", db.port()).unwrap();
    let connector = iam::mysql_builder(iam::cache(&clock), endpoint)
        .region("us-east-1")
        .build()
        .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;
    db.set_password(token.expose());

    let mut conn = connector.connect().await.unwrap();
    assert_eq!(
        one(&mut conn, "select database() as database_name").await,
        "appdb"
    );
    assert_eq!(one(&mut conn, "SELECT CURRENT_USER()").await, "iam_user@%");
    assert!(!ssl_cipher(&mut conn).await.is_empty(), "TLS");
}

#[tokio::test]
async fn tunnel_signs_and_verifies_the_rds_name_while_dialling_127_0_0_1() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let clock = TestClock::new();
    // The AWS bundle plus the test CA: what a user with a private CA configures.
    let trust = rds_iam_auth::TrustStore::aws_default()
        .with_ca_pem(db.ca_pem().as_bytes())
        .unwrap();
    let connector = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(db.port()))
        .trust(trust)
        .build()
        .unwrap();
    let request = connector.token_request();
    assert_eq!(request.host(), RDS_HOSTNAME);
    assert_eq!(request.port(), 3306, "signed for the endpoint's port");
    assert_eq!(request.region().as_str(), "us-east-1");
    let token = iam::token_at(request, clock.at()).await;
    assert!(
        token
            .expose()
            .starts_with(&format!("{RDS_HOSTNAME}:3306/?"))
    );
    db.set_password(token.expose());

    let mut conn = connector.connect().await.unwrap();
    assert!(!ssl_cipher(&mut conn).await.is_empty(), "TLS");
    assert_eq!(
        one(&mut conn, "select database() as database_name").await,
        "appdb"
    );
}

/// The token travels through `mysql_clear_password` because the server asks for it: a
/// client with the cleartext plugin disabled cannot log in (so the tests above did take
/// the cleartext path), and a client that does not ask for TLS is refused.
#[tokio::test]
async fn the_server_forces_the_cleartext_plugin_and_tls() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let clock = TestClock::new();
    let connector = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(db.port()))
        .build()
        .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;
    db.set_password(token.expose());
    rds_iam_auth::install_default_crypto_provider();

    let opts = |cleartext: bool, tls: bool| {
        let ssl = mysql_async::SslOpts::default()
            .with_root_certs(vec![db.ca_pem().as_bytes().to_vec().into()])
            .with_disable_built_in_roots(true);
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(RDS_HOSTNAME)
            .resolved_ips(Some(vec![std::net::Ipv4Addr::LOCALHOST.into()]))
            .tcp_port(db.port())
            .user(Some(db.user()))
            .pass(Some(token.expose()))
            .prefer_socket(false)
            .enable_cleartext_plugin(cleartext)
            .ssl_opts(tls.then_some(ssl))
    };
    let err = Conn::new(opts(false, true)).await.unwrap_err();
    assert!(
        matches!(
            err,
            mysql_async::Error::Driver(mysql_async::DriverError::CleartextPluginDisabled)
        ),
        "{err:?}"
    );
    let err = Conn::new(opts(true, false)).await.unwrap_err();
    assert!(matches!(err, mysql_async::Error::Server(_)), "{err:?}");
    let mut conn = Conn::new(opts(true, true)).await.expect("positive control");
    assert_eq!(one(&mut conn, "SELECT CURRENT_USER()").await, "iam_user@%");
}

/// The server stops accepting the token the cache holds; the connector must invalidate it,
/// get a fresh one and try exactly once more (see tests/postgres.rs for why this is correct
/// with any cache).
#[tokio::test]
async fn a_rejected_token_is_replaced_and_retried_once() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let clock = TestClock::new();
    db.set_password("not the token");
    let request = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(1))
        .build()
        .unwrap()
        .token_request()
        .clone();
    let hook_clock = clock.clone();
    let proxy = CountingProxy::start_to(db.port(), move |n| {
        if n == 1 {
            hook_clock.advance(Duration::from_secs(60));
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let next = rt.block_on(iam::token_at(&request, hook_clock.at()));
            db.set_password(next.expose());
        }
    })
    .await;
    let connector = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(proxy.port))
        .build()
        .unwrap();
    let stale = connector
        .cache()
        .get(connector.token_request())
        .await
        .unwrap();

    let mut conn = connector.connect().await.expect("the retry logs in");
    assert_eq!(one(&mut conn, "SELECT CURRENT_USER()").await, "iam_user@%");
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
    let Some(db) = mariadb_or_skip() else { return };
    db.set_password("some other password");
    let proxy = CountingProxy::start_to(db.port(), |_| {}).await;
    let clock = TestClock::new();
    let connector = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(proxy.port))
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
    assert_eq!(*engine, Engine::MySql);
    assert_eq!(
        (host.as_str(), *port, user.as_str(), region.as_str()),
        (RDS_HOSTNAME, 3306, "iam_user", "us-east-1")
    );
    match source.downcast_ref::<mysql_async::Error>() {
        Some(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045),
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    for cause in [
        "MySQL",
        "IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'",
        "another host",
        "expired",
        "clock",
        "rds-db:connect",
    ] {
        assert!(msg.contains(cause), "{cause:?} missing from: {msg}");
    }
    assert!(!msg.contains("rds_iam"), "a PostgreSQL hint: {msg}");
    let shown = format!("{err} {err:?} {:?}", err.source());
    assert!(!shown.contains(token.expose()));
    assert!(!shown.contains("X-Amz-Signature"));
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_connect_error_naming_the_cause() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let clock = TestClock::new();
    let connector = MySqlConnector::builder(
        iam::cache(&clock),
        iam::mysql_tunnel_endpoint(db.port()),
        "iam_user",
    )
    .build() // the AWS default store: the test CA is not in it
    .unwrap();
    let err = connector.connect().await.expect_err("untrusted");
    assert!(
        matches!(
            err,
            Error::Connect {
                engine: Engine::MySql,
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
    let clock = TestClock::new();
    let a = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(1))
        .build()
        .unwrap();
    let expected = TokenRequest::rds(&Endpoint::new(RDS_HOSTNAME, 3306).unwrap(), "iam_user")
        .build()
        .unwrap();
    assert_eq!(a.token_request(), &expected);
}

#[tokio::test]
async fn the_connection_debug_shows_no_token() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let clock = TestClock::new();
    let connector = iam::mysql_builder(
        iam::cache(&clock),
        Endpoint::new("localhost", db.port()).unwrap(),
    )
    .region("us-east-1")
    .build()
    .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;
    db.set_password(token.expose());
    let conn = connector.connect().await.unwrap();
    let rendered = format!("{conn:?} {conn:#?}");
    assert!(rendered.contains("MySqlConnection"), "{rendered}");
    assert!(!rendered.contains("X-Amz-Signature"), "{rendered}");
    assert!(!rendered.contains(token.expose()), "{rendered}");
    // mysql_async's own Debug does print it: the wrapper is what keeps it out of logs.
    assert!(format!("{:?}", conn.into_inner()).contains("X-Amz-Signature"));
}
