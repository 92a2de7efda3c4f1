//! The PostgreSQL connector against a real server that authenticates like RDS IAM:
//! cleartext password over TLS, the password being the IAM token the test installed.
//!
//! The scenarios both engines share are in `support::scenarios`; the tests below them are
//! PostgreSQL's own. Every test changes the role's password, so they take turns (`TURN`).

mod support;

use rds_iam_auth::Endpoint;
use rds_iam_auth::connector::Postgres;
use support::iam::{self, TestClock};
use support::postgres;
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

connector_scenarios!(Postgres);

#[tokio::test]
async fn the_application_name_reaches_the_server() {
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
    let name: String = client
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "rds-iam-auth-test");
}
