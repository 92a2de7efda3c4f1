//! sqlx 0.9 `MySqlPool`s logged in with IAM tokens (`rds_iam_auth::sqlx_0_9`), against the
//! harness's MariaDB (PAM, `mysql_clear_password` over TLS, as RDS) and the capturing fake
//! server: the scenarios both engines share (`support::sqlx`), then MySQL's own.

mod support;

#[allow(dead_code)]
#[path = "../examples/sqlx_mysql.rs"]
mod example;

use rds_iam_auth::sqlx_0_9::{IamMySqlPool, sqlx};
use rds_iam_auth::{Endpoint, ErrorKind, TokenRequest};
use support::iam::{self, TestClock};
use support::mariadb_or_skip;

/// The scenarios change the IAM user's password: they take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

sqlx_scenarios!(sqlx::MySql);

/// Aurora DSQL speaks PostgreSQL only.
#[tokio::test]
async fn a_dsql_endpoint_is_refused() {
    let clock = TestClock::new();
    let endpoint = Endpoint::dsql_cluster("abcdefghijklmnopqrstuvwxyz", "us-east-1").unwrap();
    let err = IamMySqlPool::builder(iam::cache(&clock), endpoint, "admin")
        .build_lazy()
        .await
        .expect_err("DSQL with MySQL");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    assert_eq!(err.setting(), Some("service"), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid setting `service`: Aurora DSQL speaks PostgreSQL only: connect with the \
         PostgreSQL connector or pool"
    );
}

/// The example's query, through the pool its environment describes (the harness's server,
/// the test CA as `DBCaFile`), prints `{"database": "appdb"}`.
#[tokio::test]
async fn the_example_prints_the_database() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let clock = TestClock::new();
    let ca_file =
        std::env::temp_dir().join(format!("sqlx-my-example-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, &support::certs().ca.cert_pem).unwrap();
    let vars = [
        ("DBEndPoint", "localhost".to_owned()),
        ("DBPort", db.port().to_string()),
        ("DatabaseName", "appdb".to_owned()),
        ("DBUserName", "iam_user".to_owned()),
        ("DBRegion", "us-east-1".to_owned()),
        ("DBCaFile", ca_file.display().to_string()),
    ];
    let var = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    let builder = IamMySqlPool::builder_from_vars(iam::cache(&clock), var).unwrap();
    let endpoint = Endpoint::new("localhost", db.port()).unwrap();
    let request = TokenRequest::rds(&endpoint, "iam_user")
        .region("us-east-1")
        .build()
        .unwrap();
    db.set_password(iam::token_at(&request, clock.at()).await.expose());
    let output = example::run(builder).await.unwrap();
    let _ = std::fs::remove_file(&ca_file);
    assert_eq!(output, r#"{"database":"appdb"}"#);
}
