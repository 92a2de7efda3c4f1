//! MySQL's side of the sqlx scenarios, for the sqlx version of the module that compiles it.

use std::future::Future;

use super::iam_sqlx::sqlx::pool::PoolConnection;
use super::iam_sqlx::{IamMySqlPool, IamMySqlPoolBuilder, sqlx};
use super::*;
use crate::support::CertFiles;
use crate::support::capture::CaptureServer;
use crate::support::fake_mysql::{Answer, fake_server};
use crate::support::iam::{self, TestClock};
use crate::support::{self, mariadb_or_skip};
use rds_iam_auth::{Endpoint, ErrorKind, TokenRequest};

impl SqlxEngine for sqlx::MySql {
    type Server = rds_iam_auth::connector::MySql;

    fn pool_options(max: u32) -> sqlx::pool::PoolOptions<Self> {
        sqlx::mysql::MySqlPoolOptions::new().max_connections(max)
    }
    async fn select_one(pool: &sqlx::MySqlPool) -> i64 {
        sqlx::query_scalar("SELECT 1")
            .fetch_one(pool)
            .await
            .unwrap()
    }
    async fn session_id(conn: &mut PoolConnection<Self>) -> u64 {
        sqlx::query_scalar("SELECT CONNECTION_ID()")
            .fetch_one(&mut **conn)
            .await
            .unwrap()
    }
    async fn current_database(conn: &mut PoolConnection<Self>) -> String {
        let db: Option<String> = sqlx::query_scalar("SELECT database()")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        db.unwrap()
    }
    async fn uses_tls(conn: &mut PoolConnection<Self>) -> bool {
        let (_, cipher): (String, String) = sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        !cipher.is_empty()
    }
    fn assert_invalid_password(source: &(dyn std::error::Error + 'static)) {
        match source.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(e)) => assert_eq!(
                e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .map(|e| e.number()),
                Some(1045)
            ),
            other => panic!("{other:?}"),
        }
    }
    async fn fake_with_tls(cert: &'static CertFiles) -> CaptureServer {
        fake_server(Answer::Tls(cert)).await
    }
    async fn fakes_without_tls() -> Vec<CaptureServer> {
        vec![
            fake_server(Answer::NoTls).await,
            fake_server(Answer::CleartextSwitchBeforeTls).await,
            fake_server(Answer::UnsolicitedCleartextSwitch).await,
        ]
    }
}

/// Aurora DSQL speaks PostgreSQL only.
pub async fn a_dsql_endpoint_is_refused() {
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
pub async fn the_example_prints_the_database<
    F: Future<Output = Result<String, Box<dyn std::error::Error>>>,
>(
    example: impl FnOnce(IamMySqlPoolBuilder) -> F,
) {
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
    let output = example(builder).await.unwrap();
    let _ = std::fs::remove_file(&ca_file);
    assert_eq!(output, r#"{"database":"appdb"}"#);
}
