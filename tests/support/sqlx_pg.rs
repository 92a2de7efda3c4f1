//! PostgreSQL's side of the sqlx scenarios, for the sqlx version of the module that compiles it.

use std::future::Future;
use std::time::Duration;

use super::iam_sqlx::sqlx::pool::PoolConnection;
use super::iam_sqlx::{IamPgPool, IamPgPoolBuilder, sqlx};
use super::*;
use crate::support::CertFiles;
use crate::support::capture::CaptureServer;
use crate::support::engine::TestEngine;
use crate::support::fake_postgres::{Answer, fake_server};
use crate::support::iam::{self, TestClock, test_trust};
use crate::support::{self, postgres};
use rds_iam_auth::dsql::DSQL_RECOMMENDED_MAX_LIFETIME;
use rds_iam_auth::login::TokenService;
use rds_iam_auth::token::Action;
use rds_iam_auth::{Endpoint, TokenRequest};

impl SqlxEngine for sqlx::Postgres {
    type Server = rds_iam_auth::connector::Postgres;

    fn pool_options(max: u32) -> sqlx::pool::PoolOptions<Self> {
        sqlx::postgres::PgPoolOptions::new().max_connections(max)
    }
    async fn select_one(pool: &sqlx::PgPool) -> i64 {
        sqlx::query_scalar("SELECT 1::int8")
            .fetch_one(pool)
            .await
            .unwrap()
    }
    async fn session_id(conn: &mut PoolConnection<Self>) -> u64 {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        pid.try_into().unwrap()
    }
    async fn current_database(conn: &mut PoolConnection<Self>) -> String {
        sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(&mut **conn)
            .await
            .unwrap()
    }
    async fn uses_tls(conn: &mut PoolConnection<Self>) -> bool {
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut **conn)
            .await
            .unwrap()
    }
    fn assert_invalid_password(source: &(dyn std::error::Error + 'static)) {
        match source.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(e)) => assert_eq!(e.code().as_deref(), Some("28P01")),
            other => panic!("{other:?}"),
        }
    }
    async fn fake_with_tls(cert: &'static CertFiles) -> CaptureServer {
        fake_server(Answer::Tls(cert)).await
    }
    async fn fakes_without_tls() -> Vec<CaptureServer> {
        vec![fake_server(Answer::RefuseTls).await]
    }
}

/// DSQL's OCC retry with this sqlx version's errors: a transaction that fails with SQLSTATE
/// `40001` (raised by the server, as DSQL does at commit) runs again until it succeeds; an
/// error whose text says `OC000` but whose SQLSTATE is not `40001` (a failed cast of that
/// value) runs once.
pub async fn occ_conflicts_are_retried_by_sqlstate() {
    use rds_iam_auth::dsql::{OccConflict, OccRetryPolicy, retry_occ};
    let Some(port) = <sqlx::Postgres as SqlxEngine>::Server::server_port() else {
        return;
    };
    let clock = TestClock::new();
    let pool = built_pool::<sqlx::Postgres>(port, &clock).await;
    let policy = OccRetryPolicy::default().base_delay(Duration::from_millis(1));
    let runs = std::sync::atomic::AtomicU32::new(0);
    let value = retry_occ(&policy, || async {
        let run = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let mut conn = pool.acquire().await.expect("acquire");
        if run < 3 {
            sqlx::query(
                "DO $$ BEGIN RAISE EXCEPTION 'change conflicts with another transaction \
                 (OC000)' USING ERRCODE = '40001'; END $$",
            )
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query_scalar::<_, i32>("SELECT 7")
            .fetch_one(&mut *conn)
            .await
    })
    .await
    .expect("the third run succeeds");
    assert_eq!((value, runs.into_inner()), (7, 3));

    let runs = std::sync::atomic::AtomicU32::new(0);
    let error = retry_occ(&policy, || async {
        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        sqlx::query_scalar::<_, i32>("SELECT 'OC000'::int")
            .fetch_one(pool.pool())
            .await
    })
    .await
    .expect_err("not a number");
    assert!(!error.is_conflict(), "22P02 is no conflict");
    assert!(!error.into_inner().is_occ_conflict());
    assert_eq!(runs.into_inner(), 1, "run once");
    pool.close().await;
}

/// DSQL through the same builder: `admin` signs `DbConnectAdmin`, the database defaults to
/// `postgres`, `max_lifetime` is lowered under DSQL's 60-minute session limit, and the pool
/// logs in (the harness's `admin` role takes the token as its password).
pub async fn dsql_tokens_database_and_max_lifetime() {
    let pg = postgres();
    let clock = TestClock::new();
    let endpoint = Endpoint::new("localhost", pg.port()).unwrap();
    let request = TokenRequest::dsql(&endpoint, "admin")
        .region("us-east-1")
        .build()
        .unwrap();
    assert_eq!(request.action(), Action::DsqlConnectAdmin);
    let token = iam::token_at(&request, clock.at()).await;
    pg.set_role_password("admin", token.expose());

    let dsql = |options: sqlx::postgres::PgPoolOptions| {
        IamPgPool::builder(iam::cache(&clock), endpoint.clone(), "admin")
            .service(TokenService::Dsql)
            .region("us-east-1")
            .trust(test_trust())
            .pool_options(options)
    };
    let pool = dsql(sqlx::postgres::PgPoolOptions::new().max_lifetime(None))
        .build()
        .await
        .unwrap();
    assert_eq!(pool.token_request(), &request);
    assert_eq!(
        pool.options().get_max_lifetime(),
        Some(DSQL_RECOMMENDED_MAX_LIFETIME)
    );
    let mut conn = pool.acquire().await.unwrap();
    let (db, user): (String, String) =
        sqlx::query_as("SELECT current_database()::text, current_user::text")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!((db.as_str(), user.as_str()), ("postgres", "admin"));
    drop(conn);
    pool.close().await;

    let long = dsql(sqlx::postgres::PgPoolOptions::new().max_lifetime(Duration::from_secs(7200)))
        .build_lazy()
        .await
        .unwrap();
    assert_eq!(
        long.options().get_max_lifetime(),
        Some(DSQL_RECOMMENDED_MAX_LIFETIME)
    );
    let short = Duration::from_secs(600);
    let kept = dsql(sqlx::postgres::PgPoolOptions::new().max_lifetime(short))
        .build_lazy()
        .await
        .unwrap();
    assert_eq!(kept.options().get_max_lifetime(), Some(short));
    // DSQL speaks PostgreSQL only: the MySQL pool refuses it (see tests/sqlx_mysql.rs).
}

/// A TRACE capture of a login, queries, a rotation and a twice-rejected token (ours and
/// sqlx's events): no token, signature or secret key.
pub async fn trace_output_never_shows_the_token() {
    let (captured, _guard) = support::trace::capture();

    let pg = postgres();
    let clock = TestClock::new();
    let pool = builder::<sqlx::Postgres>(iam::cache(&clock), pg.port())
        .retry_jitter(Duration::ZERO)
        .build_lazy()
        .await
        .unwrap();
    let first = pool.cache().get(pool.token_request()).await.unwrap();
    pg.set_password(first.expose());
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
    clock.advance(Duration::from_secs(16 * 60));
    let second = iam::token_at(pool.token_request(), clock.at()).await;
    pg.set_password("not the token");
    let err = pool.acquire().await.expect_err("rejected twice");
    assert_eq!(err.kind(), rds_iam_auth::ErrorKind::Rejected, "{err}");
    drop(conn);
    pool.close().await;

    captured.assert_shows(&[
        "installed a new IAM token in the sqlx pool",
        "rejected the IAM token",
        "IAM login failed",
    ]);
    let credentials = iam::credentials();
    captured.assert_no_secret(&[
        first.expose(),
        second.expose(),
        credentials.secret_access_key(),
    ]);
}

/// The example's query, through the pool its environment describes (the harness's server,
/// the test CA as `DBCaFile`), prints `{"database": "appdb"}`.
pub async fn the_example_prints_the_database<
    F: Future<Output = Result<String, Box<dyn std::error::Error>>>,
>(
    example: impl FnOnce(IamPgPoolBuilder) -> F,
) {
    let pg = postgres();
    let clock = TestClock::new();
    let ca_file =
        std::env::temp_dir().join(format!("sqlx-pg-example-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, &support::certs().ca.cert_pem).unwrap();
    let vars = [
        ("DBEndPoint", format!("localhost:{}", pg.port())),
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
    let builder = IamPgPool::builder_from_vars(iam::cache(&clock), var).unwrap();
    let token = iam::token_at(
        &TokenRequest::rds(&Endpoint::new("localhost", pg.port()).unwrap(), "iam_user")
            .region("us-east-1")
            .build()
            .unwrap(),
        clock.at(),
    )
    .await;
    pg.set_password(token.expose());
    let output = example(builder).await.unwrap();
    let _ = std::fs::remove_file(&ca_file);
    assert_eq!(output, r#"{"database":"appdb"}"#);
}
