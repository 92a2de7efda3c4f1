//! sqlx 0.9 `PgPool`s logged in with IAM tokens (`rds_iam_auth::sqlx_0_9`), against the
//! harness's PostgreSQL and the capturing fake server: the scenarios both engines share
//! (`support::sqlx`), then PostgreSQL's own: Aurora DSQL options, a TRACE capture, the example.

mod support;

#[allow(dead_code)]
#[path = "../examples/sqlx_postgres.rs"]
mod example;

use std::time::Duration;

use rds_iam_auth::dsql::DSQL_RECOMMENDED_MAX_LIFETIME;
use rds_iam_auth::login::TokenService;
use rds_iam_auth::sqlx_0_9::{IamPgPool, sqlx};
use rds_iam_auth::token::Action;
use rds_iam_auth::{Endpoint, TokenRequest};
use support::iam::{self, TestClock, test_trust};
use support::postgres;
use support::sqlx::builder;

/// The scenarios change the IAM user's password: they take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

sqlx_scenarios!(sqlx::Postgres);

/// DSQL through the same builder: `admin` signs `DbConnectAdmin`, the database defaults to
/// `postgres`, `max_lifetime` is lowered under DSQL's 60-minute session limit, and the pool
/// logs in (the harness's `admin` role takes the token as its password).
#[tokio::test]
async fn dsql_tokens_database_and_max_lifetime() {
    let _turn = TURN.lock().await;
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
#[tokio::test]
async fn trace_output_never_shows_the_token() {
    let _turn = TURN.lock().await;
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
#[tokio::test]
async fn the_example_prints_the_database() {
    let _turn = TURN.lock().await;
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
    let output = example::run(builder).await.unwrap();
    let _ = std::fs::remove_file(&ca_file);
    assert_eq!(output, r#"{"database":"appdb"}"#);
}
