//! Connect + `SELECT 1` against the same throwaway TLS server, same run, per engine.
//!
//! PostgreSQL (feature `postgres`):
//! - `iam`: `PgConnector` (token from the cache, the crate's TLS config, IAM login);
//! - `static_password_same_login`: plain tokio-postgres + tokio-postgres-rustls with the same
//!   TLS config and the same cleartext-password login, the token passed as a fixed password:
//!   the floor, so the ratio is this crate's overhead;
//! - `static_scram`: an ordinary role with a SCRAM password (what a non-IAM app pays).
//!
//!
//! MySQL (feature `mysql`, against the throwaway MariaDB; needs root for its PAM service):
//! - `iam`: `MySqlConnector` (token from the cache, TLS, `mysql_clear_password` login);
//! - `static_password_same_login`: plain mysql_async with the same TLS settings and the
//!   same cleartext login, the token as a fixed password: the floor;
//! - `static_native_password`: an ordinary `mysql_native_password` user over TLS.
//!
//! diesel-async (feature `diesel-async-postgres`): a new pooled connection (diesel-async's
//! deadpool pool, the connection detached after `SELECT 1`, so each turn logs in anew):
//! - `iam`: `rds_iam_auth::diesel_async::manager` (the connector's login);
//! - `static_password_same_login`: diesel-async's manager with a `custom_setup` of plain
//!   tokio-postgres with the same TLS config and login, the token as a fixed password.
//!
//! `cargo bench --bench connect --features postgres,mysql` (`,diesel-async-postgres` too)

#[path = "../tests/support/mod.rs"]
mod support;

#[cfg(feature = "postgres")]
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
#[cfg(feature = "postgres")]
use rds_iam_auth::PgConnector;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use support::RDS_HOSTNAME;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use support::iam::{self, TestClock};
#[cfg(feature = "postgres")]
use support::postgres;
#[cfg(feature = "postgres")]
use tokio_postgres::config::SslMode;
#[cfg(feature = "postgres")]
use tokio_postgres_rustls::MakeRustlsConnect;

/// The IAM connector to the harness's PostgreSQL (through its RDS-looking name), and the
/// token it signs, installed as the role's password.
#[cfg(feature = "postgres")]
fn pg_connector(rt: &tokio::runtime::Runtime) -> (PgConnector, rds_iam_auth::IamAuthToken) {
    let clock = TestClock::new();
    let connector: PgConnector =
        iam::builder(iam::cache(&clock), iam::tunnel_endpoint(postgres().port()))
            .build()
            .unwrap();
    let token = rt.block_on(iam::token_at(connector.token_request(), clock.at()));
    postgres().set_password(token.expose());
    (connector, token)
}

#[cfg(feature = "postgres")]
fn rustls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            support::certs().ca.cert_der.clone(),
        ))
        .unwrap();
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth()
}

#[cfg(feature = "postgres")]
fn plain_config(user: &str, password: &str) -> tokio_postgres::Config {
    let pg = postgres();
    let mut c = tokio_postgres::Config::new();
    c.host(RDS_HOSTNAME)
        .hostaddr(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .port(pg.port())
        .user(user)
        .password(password)
        .dbname(pg.database())
        .ssl_mode(SslMode::Require);
    c
}

#[cfg(feature = "postgres")]
async fn select_1(client: tokio_postgres::Client) {
    client.simple_query("SELECT 1").await.unwrap();
}

#[cfg(feature = "postgres")]
fn connect(c: &mut Criterion) {
    let pg = postgres();
    let rt = support::bench_runtime();
    let (connector, token) = pg_connector(&rt);

    let same_login = plain_config(pg.user(), token.expose());
    let scram = plain_config(pg.static_user(), pg.static_password());
    let tls = MakeRustlsConnect::new(rustls_config());

    let mut g = c.benchmark_group("connect_select_1");
    g.sample_size(60).measurement_time(Duration::from_secs(6));
    g.bench_function("iam", |b| {
        b.to_async(&rt)
            .iter(|| async { select_1(connector.connect().await.unwrap()).await })
    });
    g.bench_function("static_password_same_login", |b| {
        b.to_async(&rt).iter(|| async {
            let (client, conn) = same_login.connect(tls.clone()).await.unwrap();
            tokio::spawn(conn);
            select_1(client).await
        })
    });
    g.bench_function("static_scram", |b| {
        b.to_async(&rt).iter(|| async {
            let (client, conn) = scram.connect(tls.clone()).await.unwrap();
            tokio::spawn(conn);
            select_1(client).await
        })
    });
    g.finish();

    // Criterion runs the cases one after the other, and a burst of short connections leaves
    // exiting backends behind that slow the next case down: the ratio comes from rounds that
    // alternate the two (median of per-round ratios).
    interleaved(
        &rt,
        "postgres",
        || async { select_1(connector.connect().await.unwrap()).await },
        || async {
            let (client, conn) = same_login.connect(tls.clone()).await.unwrap();
            tokio::spawn(conn);
            select_1(client).await
        },
    );
}

#[cfg(not(feature = "postgres"))]
fn connect(_: &mut Criterion) {}

/// Runs `rounds` rounds alternating `per_round` connections of `a` and of `b`; prints the
/// mean per connection and the median of the per-round ratios a/b.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn interleaved<A: Future<Output = ()>, B: Future<Output = ()>>(
    rt: &tokio::runtime::Runtime,
    label: &str,
    mut a: impl FnMut() -> A,
    mut b: impl FnMut() -> B,
) {
    const ROUNDS: usize = 25;
    const PER_ROUND: u32 = 20;
    let mut ratios = Vec::new();
    let (mut a_total, mut b_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        let t = std::time::Instant::now();
        rt.block_on(async {
            for _ in 0..PER_ROUND {
                a().await;
            }
        });
        let a_t = t.elapsed();
        let t = std::time::Instant::now();
        rt.block_on(async {
            for _ in 0..PER_ROUND {
                b().await;
            }
        });
        let b_t = t.elapsed();
        ratios.push(a_t.as_secs_f64() / b_t.as_secs_f64());
        a_total += a_t;
        b_total += b_t;
    }
    ratios.sort_by(f64::total_cmp);
    let n = (ROUNDS as u32) * PER_ROUND;
    println!(
        "{label} interleaved: iam {:?}/connect, static password (same login) {:?}/connect, \
         median ratio IAM/static {:.3}",
        a_total / n,
        b_total / n,
        ratios[ROUNDS / 2]
    );
}

#[cfg(feature = "mysql")]
fn connect_mysql(c: &mut Criterion) {
    use rds_iam_auth::MySqlConnector;
    use rds_iam_auth::mysql_async::prelude::*;
    use rds_iam_auth::mysql_async::{Conn, Opts, OptsBuilder, SslOpts};

    let Some(db) = support::mariadb_or_skip() else {
        return;
    };
    let rt = support::bench_runtime();
    let clock = TestClock::new();
    let connector: MySqlConnector =
        iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(db.port()))
            .build()
            .unwrap();
    let token = rt.block_on(iam::token_at(connector.token_request(), clock.at()));
    db.set_password(token.expose());

    // The same TLS settings as the connector's, built once (mysql_async caches its TLS
    // connector in the options, as it does in the connector's).
    let plain = |user: &str, password: &str| -> Opts {
        let ssl = SslOpts::default()
            .with_root_certs(vec![db.ca_pem().as_bytes().to_vec().into()])
            .with_disable_built_in_roots(true);
        OptsBuilder::default()
            .ip_or_hostname(RDS_HOSTNAME)
            .resolved_ips(Some(vec![std::net::Ipv4Addr::LOCALHOST.into()]))
            .tcp_port(db.port())
            .user(Some(user))
            .pass(Some(password))
            .db_name(Some(db.database()))
            .ssl_opts(ssl)
            .enable_cleartext_plugin(true)
            .prefer_socket(false)
            .into()
    };
    let same_login = plain(db.user(), token.expose());
    let native = plain(db.static_user(), db.static_password());

    async fn select_1_and_close(mut conn: Conn) {
        conn.query_drop("SELECT 1").await.unwrap();
        conn.disconnect().await.unwrap();
    }

    let mut g = c.benchmark_group("mysql_connect_select_1");
    g.sample_size(60).measurement_time(Duration::from_secs(6));
    g.bench_function("iam", |b| {
        b.to_async(&rt).iter(|| async {
            select_1_and_close(connector.connect().await.unwrap().into_inner()).await
        })
    });
    g.bench_function("static_password_same_login", |b| {
        b.to_async(&rt).iter(|| async {
            select_1_and_close(Conn::new(same_login.clone()).await.unwrap()).await
        })
    });
    g.bench_function("static_native_password", |b| {
        b.to_async(&rt)
            .iter(|| async { select_1_and_close(Conn::new(native.clone()).await.unwrap()).await })
    });
    g.finish();

    interleaved(
        &rt,
        "mysql",
        || async { select_1_and_close(connector.connect().await.unwrap().into_inner()).await },
        || async { select_1_and_close(Conn::new(same_login.clone()).await.unwrap()).await },
    );
}

#[cfg(not(feature = "mysql"))]
fn connect_mysql(_: &mut Criterion) {}

/// A new pooled `AsyncPgConnection` per turn, through diesel-async's deadpool pool: the
/// manager's setup is the IAM connector's, or plain tokio-postgres with a fixed password.
#[cfg(feature = "diesel-async-postgres")]
fn connect_diesel_async(c: &mut Criterion) {
    use rds_iam_auth::diesel_async::diesel_async::pooled_connection::deadpool::{Object, Pool};
    use rds_iam_auth::diesel_async::diesel_async::pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig,
    };
    use rds_iam_auth::diesel_async::diesel_async::{AsyncPgConnection, RunQueryDsl};
    use rds_iam_auth::diesel_async::{self as iam_diesel, diesel};

    let pg = postgres();
    let rt = support::bench_runtime();
    let (connector, token) = pg_connector(&rt);

    let iam_pool: Pool<AsyncPgConnection> = Pool::builder(iam_diesel::manager(connector))
        .max_size(1)
        .build()
        .unwrap();
    let same_login = plain_config(pg.user(), token.expose());
    let tls = MakeRustlsConnect::new(rustls_config());
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.custom_setup = Box::new(move |_url| {
        let (same_login, tls) = (same_login.clone(), tls.clone());
        Box::pin(async move {
            let (client, conn) = same_login.connect(tls).await.unwrap();
            tokio::spawn(conn);
            AsyncPgConnection::try_from(client).await
        })
    });
    let static_pool: Pool<AsyncPgConnection> =
        Pool::builder(AsyncDieselConnectionManager::new_with_config("", config))
            .max_size(1)
            .build()
            .unwrap();

    /// A new connection from `pool`, `SELECT 1`, then detached: the next turn opens one.
    async fn turn(pool: &Pool<AsyncPgConnection>) {
        let mut conn = pool.get().await.unwrap();
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .unwrap();
        drop(Object::take(conn));
    }

    let mut g = c.benchmark_group("diesel_async_new_pooled_connection");
    g.sample_size(60).measurement_time(Duration::from_secs(6));
    g.bench_function("iam", |b| b.to_async(&rt).iter(|| turn(&iam_pool)));
    g.bench_function("static_password_same_login", |b| {
        b.to_async(&rt).iter(|| turn(&static_pool))
    });
    g.finish();

    interleaved(
        &rt,
        "diesel-async",
        || turn(&iam_pool),
        || turn(&static_pool),
    );
}

#[cfg(not(feature = "diesel-async-postgres"))]
fn connect_diesel_async(_: &mut Criterion) {}

criterion_group!(benches, connect, connect_mysql, connect_diesel_async);
criterion_main!(benches);
