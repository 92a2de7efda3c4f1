//! A new pooled sqlx connection + `SELECT 1`, with IAM (`sqlx_0_9::IamPool`) and with a fixed
//! password (a plain sqlx pool), against the same throwaway TLS server, same run, per engine.
//!
//! - `iam`: `IamPool::acquire` (token check against the cache, sqlx's acquire, a new login);
//! - `static_password_same_login`: a plain sqlx pool with the same connect options (the same
//!   TLS roots and mode, the same cleartext login) and the token as a fixed password: the
//!   floor, so the ratio is this crate's overhead.
//!
//! Each iteration closes its connection, so the next acquire opens (and logs in) a new one.
//!
//! `cargo bench --bench sqlx --features sqlx-0_9-postgres,sqlx-0_9-mysql,postgres,mysql`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rds_iam_auth::sqlx_0_9::{IamDatabase, IamPool, sqlx};
use rds_iam_auth::{Endpoint, TokenRequest};
use support::iam::{self, TestClock};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// The IAM pool and the token it will log in with, installed on the server.
fn iam_pool<DB: support::sqlx_0_9::SqlxEngine>(
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
        support::sqlx_0_9::builder::<DB>(iam::cache(&clock), port)
            .pool_options(DB::pool_options(1))
            .build_lazy()
            .await
            .unwrap()
    });
    (pool, token.expose().to_owned())
}

/// Criterion's numbers, then rounds alternating the two (criterion runs one case after the
/// other, and exiting backends of one slow the next down): median of per-round ratios.
fn pair<A: Future<Output = ()>, B: Future<Output = ()>>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    label: &str,
    mut iam: impl FnMut() -> A,
    mut fixed: impl FnMut() -> B,
) {
    let mut g = c.benchmark_group(format!("{label}_sqlx_new_connection_select_1"));
    g.sample_size(60).measurement_time(Duration::from_secs(6));
    g.bench_function("iam", |b| b.to_async(rt).iter(&mut iam));
    g.bench_function("static_password_same_login", |b| {
        b.to_async(rt).iter(&mut fixed)
    });
    g.finish();

    // `cargo test --all-targets` runs benches once as tests (without `--bench`): a smoke
    // round there, not the 1,000 sqlx logins (about 2 minutes) of the measurement.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (rounds, per_round): (usize, u32) = if measuring { (25, 20) } else { (1, 1) };
    let mut ratios = Vec::new();
    let (mut a_total, mut b_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let t = Instant::now();
        rt.block_on(async {
            for _ in 0..per_round {
                iam().await;
            }
        });
        let a = t.elapsed();
        let t = Instant::now();
        rt.block_on(async {
            for _ in 0..per_round {
                fixed().await;
            }
        });
        let b = t.elapsed();
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
        a_total += a;
        b_total += b;
    }
    ratios.sort_by(f64::total_cmp);
    let n = (rounds as u32) * per_round;
    println!(
        "{label} sqlx interleaved: iam {:?}/connection, static password (same login) \
         {:?}/connection, median ratio IAM/static {:.3}",
        a_total / n,
        b_total / n,
        ratios[rounds / 2]
    );
}

fn postgres(c: &mut Criterion) {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
    let pg = support::postgres();
    let rt = runtime();
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
        "postgres",
        || async { select_1_and_close(iam.acquire().await.unwrap()).await },
        || async { select_1_and_close(fixed.acquire().await.unwrap()).await },
    );
}

#[cfg(all(feature = "sqlx-0_9-mysql", feature = "mysql"))]
fn mysql(c: &mut Criterion) {
    use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlSslMode};
    let Some(db) = support::mariadb_or_skip() else {
        return;
    };
    let rt = runtime();
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
        "mysql",
        || async { select_1_and_close(iam.acquire().await.unwrap()).await },
        || async { select_1_and_close(fixed.acquire().await.unwrap()).await },
    );
}

#[cfg(not(all(feature = "sqlx-0_9-mysql", feature = "mysql")))]
fn mysql(_: &mut Criterion) {}

/// `SELECT 1`, then close the connection: the next acquire logs in anew.
async fn select_1_and_close<DB: IamDatabase>(mut conn: sqlx::pool::PoolConnection<DB>)
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    sqlx::raw_sql("SELECT 1").execute(&mut *conn).await.unwrap();
    conn.close().await.unwrap();
}

criterion_group!(benches, postgres, mysql);
criterion_main!(benches);
