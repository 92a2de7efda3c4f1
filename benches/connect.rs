//! Connect + `SELECT 1` against the same throwaway TLS PostgreSQL server, same run:
//! - `iam`: `PgConnector` (token from the cache, the crate's TLS config, IAM login);
//! - `static_password_same_login`: plain tokio-postgres + tokio-postgres-rustls with the same
//!   TLS config and the same cleartext-password login, the token passed as a fixed password:
//!   the floor, so the ratio is this crate's overhead;
//! - `static_scram`: an ordinary role with a SCRAM password (what a non-IAM app pays).
//!
//! `cargo bench --bench connect --features postgres`

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rds_iam_auth::PgConnector;
use support::iam::{self, TestClock};
use support::{RDS_HOSTNAME, postgres};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

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

async fn select_1(client: tokio_postgres::Client) {
    client.simple_query("SELECT 1").await.unwrap();
}

fn connect(c: &mut Criterion) {
    let pg = postgres();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let clock = TestClock::new();
    let connector: PgConnector = iam::builder(iam::cache(&clock), iam::tunnel_endpoint(pg.port()))
        .build()
        .unwrap();
    let token = rt.block_on(iam::token_at(connector.token_request(), clock.at()));
    pg.set_password(token.expose());

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
    const ROUNDS: usize = 25;
    const PER_ROUND: u32 = 20;
    let mut ratios = Vec::new();
    let (mut iam_total, mut static_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        let t = std::time::Instant::now();
        rt.block_on(async {
            for _ in 0..PER_ROUND {
                select_1(connector.connect().await.unwrap()).await;
            }
        });
        let iam_t = t.elapsed();
        let t = std::time::Instant::now();
        rt.block_on(async {
            for _ in 0..PER_ROUND {
                let (client, conn) = same_login.connect(tls.clone()).await.unwrap();
                tokio::spawn(conn);
                select_1(client).await;
            }
        });
        let static_t = t.elapsed();
        ratios.push(iam_t.as_secs_f64() / static_t.as_secs_f64());
        iam_total += iam_t;
        static_total += static_t;
    }
    ratios.sort_by(f64::total_cmp);
    let n = (ROUNDS as u32) * PER_ROUND;
    println!(
        "interleaved: iam {:?}/connect, static password (same login) {:?}/connect, \
         median ratio IAM/static {:.3}",
        iam_total / n,
        static_total / n,
        ratios[ROUNDS / 2]
    );
}

criterion_group!(benches, connect);
criterion_main!(benches);
