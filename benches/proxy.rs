//! The proxy's cost, measured in one run against the harness's PostgreSQL (and MariaDB when
//! it can start): not a criterion benchmark, a program that prints figures and ratios.
//! Run by `scripts/proxy-bench.sh` (it needs `pgbench`, and `mariadb-slap` for MySQL).
//!
//! - `pgbench -S -c 8` (select-only, 8 clients) straight to the server over TLS, and through
//!   the in-process proxy (plaintext loopback leg, TLS upstream), alternated;
//! - the added latency of one simple query (`SELECT 1`, one client): median and p99 of each
//!   path, and the difference;
//! - a new client connection through the proxy (startup + the proxy's IAM login upstream) vs
//!   a direct IAM login with `PgConnector` (the same token cache, the same TLS);
//! - memory per idle proxied connection: the process's RSS before and after opening idle
//!   connections through the proxy with minimal clients (a raw socket each);
//! - `mariadb-slap` (8 clients, `SELECT 1`) straight to MariaDB over TLS vs through the proxy.
//!
//! Client, proxy and server share this machine's cores, as they would on a laptop.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use rds_iam_auth::proxy::Proxy;
use rds_iam_auth::{Engine, TokenRequest};
use support::iam::{self, TestClock};
use support::postgres;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::NoTls;

fn main() {
    // `cargo test --all-targets` runs bench targets too, without `--bench`: the measurements
    // (a minute of pgbench) are for `cargo bench` (scripts/proxy-bench.sh) only.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("benches/proxy.rs measures only under `cargo bench` (scripts/proxy-bench.sh)");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let pg = postgres();
    let clock = TestClock::new();
    let endpoint = iam::tunnel_endpoint(pg.port());
    let request = TokenRequest::rds(&endpoint, pg.user()).build().unwrap();
    let token = iam::token_at(&request, clock.at()).await;
    pg.set_password(token.expose());
    let cache = iam::cache(&clock);
    let listening = Proxy::builder(Engine::Postgres, cache.clone(), endpoint.clone())
        .trust(iam::test_trust())
        .listen("127.0.0.1:0".parse().unwrap())
        .max_connections(1000)
        .build()
        .unwrap()
        .bind()
        .await
        .unwrap();
    let proxy = listening.local_addr().unwrap();
    tokio::spawn(listening.serve(std::future::pending()));

    let dir = std::env::temp_dir().join(format!("rds-iam-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pg.ca_pem()).unwrap();
    let direct_env = vec![
        ("PGPASSWORD".to_owned(), token.expose().to_owned()),
        ("PGSSLMODE".to_owned(), "verify-full".to_owned()),
        ("PGSSLROOTCERT".to_owned(), ca.display().to_string()),
    ];
    let proxy_env = vec![("PGSSLMODE".to_owned(), "disable".to_owned())];
    let direct = SocketAddr::from(([127, 0, 0, 1], pg.port()));

    println!("== pgbench -S -c 8 -j 2 (select-only), TLS direct vs through the proxy");
    pgbench(proxy, &proxy_env, &["-i", "-s", "2", "-q"]).await;
    let (mut tps_direct, mut tps_proxy) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let args = ["-S", "-n", "-c", "8", "-j", "2", "-T", "8"];
        tps_direct.push(tps(&pgbench(direct, &direct_env, &args).await));
        tps_proxy.push(tps(&pgbench(proxy, &proxy_env, &args).await));
    }
    let (d, p) = (median(&mut tps_direct), median(&mut tps_proxy));
    println!("tps direct (TLS): {tps_direct:.0?}, median {d:.0}");
    println!("tps via proxy:    {tps_proxy:.0?}, median {p:.0}");
    println!("ratio proxy/direct: {:.2}", p / d);

    println!("\n== one simple query (SELECT 1), one client, 5000 each");
    let connector = iam::builder(cache.clone(), endpoint.clone())
        .build()
        .unwrap();
    let direct_client = connector.connect().await.unwrap();
    let (proxied, connection) = tokio_postgres::connect(&conninfo(proxy), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        d.extend(query_times(&direct_client, 1000).await);
        p.extend(query_times(&proxied, 1000).await);
    }
    let (d50, d99) = (percentile(&mut d, 0.5), percentile(&mut d, 0.99));
    let (p50, p99) = (percentile(&mut p, 0.5), percentile(&mut p, 0.99));
    println!("direct (TLS):  median {d50:.1} µs, p99 {d99:.1} µs");
    println!("via proxy:     median {p50:.1} µs, p99 {p99:.1} µs");
    println!(
        "added by the proxy: median {:.1} µs, p99 {:.1} µs",
        p50 - d50,
        p99 - d99
    );
    drop((direct_client, proxied));

    println!("\n== a new connection + SELECT 1, 100 each, alternated");
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let t0 = Instant::now();
        let client = connector.connect().await.unwrap();
        client.simple_query("SELECT 1").await.unwrap();
        d.push(t0.elapsed().as_secs_f64() * 1e3);
        drop(client);
        let t0 = Instant::now();
        let (client, connection) = tokio_postgres::connect(&conninfo(proxy), NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.simple_query("SELECT 1").await.unwrap();
        p.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let (d50, p50) = (percentile(&mut d, 0.5), percentile(&mut p, 0.5));
    println!("direct IAM login (PgConnector): median {d50:.2} ms");
    println!(
        "through the proxy (NoTls client): median {p50:.2} ms, ratio {:.2}",
        p50 / d50
    );

    println!("\n== memory per idle proxied connection (40 connections, raw clients)");
    // Let the closed connections above finish and the allocator settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(idle_client(proxy).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss_kib();
    println!(
        "RSS {before} KiB -> {after} KiB: {:.1} KiB per idle proxied connection",
        (after - before) as f64 / 40.0
    );
    drop(idle);

    mariadb_slap().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn conninfo(addr: SocketAddr) -> String {
    format!(
        "host={} port={} user=iam_user dbname=appdb sslmode=disable",
        addr.ip(),
        addr.port()
    )
}

async fn pgbench(addr: SocketAddr, env: &[(String, String)], args: &[&str]) -> String {
    let mut command = Command::new("pgbench");
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().cloned())
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-U", "iam_user"])
        .args(args)
        .arg("appdb");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pgbench failed:\n{text}");
    text
}

fn tps(output: &str) -> f64 {
    output
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no tps in:\n{output}"))
}

async fn query_times(client: &tokio_postgres::Client, n: usize) -> Vec<f64> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        client.simple_query("SELECT 1").await.unwrap();
        times.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    times
}

fn median(values: &mut [f64]) -> f64 {
    percentile(values, 0.5)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// A client that logs in through the proxy and then holds only its socket: what stays in
/// this process per connection is the proxy's side (its task, buffers, upstream TLS).
async fn idle_client(proxy: SocketAddr) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let mut startup = vec![0, 0, 0, 0, 0, 3, 0, 0];
    for text in ["user", "iam_user", "database", "appdb", ""] {
        startup.extend_from_slice(text.as_bytes());
        startup.push(0);
    }
    let length = startup.len() as u32;
    startup[..4].copy_from_slice(&length.to_be_bytes());
    stream.write_all(&startup).await.unwrap();
    // Up to ReadyForQuery: its 6 bytes end the start-up.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(6).any(|w| w == [b'Z', 0, 0, 0, 5, b'I']) {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "the proxy closed: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    stream
}

/// `mariadb-slap` straight to MariaDB over TLS vs through the proxy, when the MariaDB
/// harness can start (root, for its PAM service).
#[cfg(feature = "mysql")]
async fn mariadb_slap() {
    let Some(db) = support::mariadb_or_skip() else {
        println!("\n(MariaDB skipped)");
        return;
    };
    let clock = TestClock::new();
    let endpoint = iam::mysql_tunnel_endpoint(db.port());
    let request = TokenRequest::rds(&endpoint, "iam_user").build().unwrap();
    let token = iam::token_at(&request, clock.at()).await;
    db.set_password(token.expose());
    let listening = Proxy::builder(Engine::MySql, iam::cache(&clock), endpoint)
        .trust(iam::test_trust())
        .listen("127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap()
        .bind()
        .await
        .unwrap();
    let proxy = listening.local_addr().unwrap();
    tokio::spawn(listening.serve(std::future::pending()));
    let ca =
        std::env::temp_dir().join(format!("rds-iam-proxy-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, db.ca_pem()).unwrap();
    let slap = |port: u16, tls: Vec<String>, password: String| {
        let mut command = Command::new("mariadb-slap");
        command
            .env_clear()
            .arg("--no-defaults")
            .args([
                "--protocol=TCP",
                "--host=127.0.0.1",
                &format!("--port={port}"),
            ])
            .args(["--user=iam_user", &format!("--password={password}")])
            .args(tls)
            .args([
                "--concurrency=8",
                "--iterations=3",
                "--number-of-queries=40000",
            ])
            .args(["--query=SELECT 1", "--create-schema=appdb"]);
        async move {
            let out = tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "mariadb-slap failed:\n{text}");
            text.lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("Average number of seconds to run all queries:")
                })
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no average in:\n{text}"))
        }
    };
    let direct_tls = vec![
        "--ssl".to_owned(),
        format!("--ssl-ca={}", ca.display()),
        "--ssl-verify-server-cert".to_owned(),
    ];
    println!("\n== mariadb-slap, 8 clients, 40,000 x SELECT 1 (3 iterations each, seconds)");
    let d = slap(db.port(), direct_tls, token.expose().to_owned()).await;
    let p = slap(
        proxy.port(),
        vec!["--skip-ssl".to_owned()],
        "ignored".to_owned(),
    )
    .await;
    println!(
        "direct (TLS): {d:.3} s; via proxy: {p:.3} s; throughput ratio proxy/direct {:.2}",
        d / p
    );
    let _ = std::fs::remove_file(&ca);
}

#[cfg(not(feature = "mysql"))]
async fn mariadb_slap() {
    println!("\n(mariadb-slap: build with --features mysql too)");
}
