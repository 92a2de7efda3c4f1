//! The MySQL connector against a real server that authenticates like RDS IAM for MySQL:
//! over TLS the server switches the client to `mysql_clear_password`, and the password is
//! the IAM token the test installed (MariaDB, PAM `pam_userdb`).
//!
//! The scenarios both engines share are in `support::scenarios`; the tests below them are
//! MySQL's own. Needs root for the PAM service (see `support::mariadb_or_skip`): skipped
//! loudly otherwise, failing under `CI=true`. Every test changes the accepted token, so they
//! take turns (`TURN`).

mod support;

use rds_iam_auth::Endpoint;
use rds_iam_auth::connector::MySql;
use rds_iam_auth::mysql_async::prelude::*;
use rds_iam_auth::mysql_async::{self, Conn};
use support::iam::{self, TestClock};
use support::{RDS_HOSTNAME, mariadb_or_skip};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

connector_scenarios!(MySql);

async fn one(conn: &mut impl Queryable, sql: &str) -> String {
    conn.query_first::<String, _>(sql).await.unwrap().unwrap()
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
    rds_iam_auth::tls::install_default_crypto_provider();

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
