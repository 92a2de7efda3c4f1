// The pairs of one sqlx version, compiled once per version by `benches/sqlx.rs` (in a module
// that names the version's `iam_sqlx`, `support` module, label and `if_mysql!`).

use super::*;
use iam_sqlx::{IamDatabase, IamPool, sqlx};

/// The IAM pool and the token it will log in with, installed on the server.
fn iam_pool<DB: version_support::SqlxEngine>(
    rt: &tokio::runtime::Runtime,
    port: u16,
) -> (IamPool<DB>, String) {
    let clock = TestClock::new();
    let endpoint = Endpoint::new("localhost", port).unwrap();
    let request = TokenRequest::rds(&endpoint, "iam_user")
        .region("us-east-1")
        .build()
        .unwrap();
    let token = rt.block_on(iam::token_at(&request, clock.at()));
    <DB::Server as support::engine::TestEngine>::set_password(token.expose());
    let pool = rt.block_on(async {
        version_support::builder::<DB>(iam::cache(&clock), port)
            .pool_options(DB::pool_options(1))
            .build_lazy()
            .await
            .unwrap()
    });
    (pool, token.expose().to_owned())
}

pub(super) fn postgres(c: &mut Criterion) {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
    let pg = support::postgres();
    let rt = crate::support::bench_runtime();
    let (iam, token) = iam_pool::<sqlx::Postgres>(&rt, pg.port());
    let fixed = rt.block_on(async {
        PgPoolOptions::new().max_connections(1).connect_lazy_with(
            PgConnectOptions::new_without_pgpass()
                .host("localhost")
                .port(pg.port())
                .username("iam_user")
                .database("appdb")
                .ssl_mode(PgSslMode::VerifyFull)
                .ssl_root_cert_from_pem(pg.ca_pem().as_bytes().to_vec())
                .password(&token),
        )
    });
    pair(
        c,
        &rt,
        &format!("{VERSION}_postgres"),
        || async { select_1_and_close(iam.acquire().await.unwrap()).await },
        || async { select_1_and_close(fixed.acquire().await.unwrap()).await },
    );
}

if_mysql! {
    pub(super) fn mysql(c: &mut Criterion) {
        use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlSslMode};
        let Some(db) = support::mariadb_or_skip() else {
            return;
        };
        let rt = crate::support::bench_runtime();
        let (iam, token) = iam_pool::<sqlx::MySql>(&rt, db.port());
        let fixed = rt.block_on(async {
            MySqlPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with(
                    MySqlConnectOptions::new()
                        .host("localhost")
                        .port(db.port())
                        .username("iam_user")
                        .database("appdb")
                        .ssl_mode(MySqlSslMode::VerifyIdentity)
                        .ssl_ca_from_pem(db.ca_pem().as_bytes().to_vec())
                        .enable_cleartext_plugin(true)
                        .password(&token),
                )
        });
        pair(
            c,
            &rt,
            &format!("{VERSION}_mysql"),
            || async { select_1_and_close(iam.acquire().await.unwrap()).await },
            || async { select_1_and_close(fixed.acquire().await.unwrap()).await },
        );
    }
}

/// `SELECT 1`, then close the connection: the next acquire logs in anew.
async fn select_1_and_close<DB: IamDatabase>(mut conn: sqlx::pool::PoolConnection<DB>)
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    sqlx::raw_sql("SELECT 1").execute(&mut *conn).await.unwrap();
    conn.close().await.unwrap();
}

