//! `proxy::Proxy` for MySQL, in process, against the harness's MariaDB (TLS, PAM with the
//! cleartext plugin: the password is the IAM token), with the real `mariadb` client and
//! mysql_async as clients. Needs root for the PAM service (see `support::mariadb_or_skip`):
//! skipped loudly otherwise, failing under `CI=true`. The tests take turns (`TURN`): each
//! installs the token the server accepts.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rds_iam_auth::mysql_async::{self, Conn, prelude::*};
use rds_iam_auth::proxy::ProxyBuilder;
use rds_iam_auth::{Endpoint, Engine, IamAuthToken, TokenCache, TokenRequest};
use support::fake_mysql::{Answer, fake_server};
use support::iam::{self, TestClock};
use support::security::assert_no_token_bytes;
use support::{MariaDbServer, certs, mariadb_or_skip, proxy};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

const MARIADB: &str = "/usr/bin/mariadb";

fn builder_to(cache: TokenCache, endpoint: Endpoint) -> ProxyBuilder {
    proxy::builder_to(Engine::MySql, cache, endpoint)
}

async fn token_for(endpoint: &Endpoint, clock: &TestClock) -> IamAuthToken {
    let request = TokenRequest::rds(endpoint, "iam_user").build().unwrap();
    iam::token_at(&request, clock.at()).await
}

async fn proxy_to(db: &MariaDbServer) -> proxy::Running {
    proxy_with(db, |b| b).await
}

async fn proxy_with(
    db: &MariaDbServer,
    configure: impl FnOnce(ProxyBuilder) -> ProxyBuilder,
) -> proxy::Running {
    let clock = TestClock::new();
    let endpoint = iam::mysql_tunnel_endpoint(db.port());
    db.set_password(token_for(&endpoint, &clock).await.expose());
    proxy::serve(configure(builder_to(iam::cache(&clock), endpoint))).await
}

/// mysql_async to the proxy: plain TCP (the loopback leg), any password.
fn opts(addr: SocketAddr) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some("iam_user"))
        .pass(Some("ignored by the proxy"))
        .db_name(Some("appdb"))
        .prefer_socket(false)
        .into()
}

/// The `mariadb` client with TLS off (`--skip-ssl`), as the proxy's connection strings say.
async fn mariadb(addr: SocketAddr, sql: &str) -> Output {
    mariadb_with(addr, "--skip-ssl", sql).await
}

/// The `mariadb` client with `ssl` (`--skip-ssl`, or `--ssl`: TLS required).
async fn mariadb_with(addr: SocketAddr, ssl: &str, sql: &str) -> Output {
    assert!(
        std::path::Path::new(MARIADB).exists(),
        "{MARIADB} is missing: install mariadb-client (scripts/test.sh does)"
    );
    let args = vec![
        "--no-defaults".to_owned(),
        "--protocol=TCP".to_owned(),
        format!("--host={}", addr.ip()),
        format!("--port={}", addr.port()),
        ssl.to_owned(),
        "--user=iam_user".to_owned(),
        "--password=ignored".to_owned(),
        "--batch".to_owned(),
        "--skip-column-names".to_owned(),
        "appdb".to_owned(),
        "-e".to_owned(),
        sql.to_owned(),
    ];
    tokio::task::spawn_blocking(move || {
        Command::new(MARIADB)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test]
async fn the_mariadb_client_runs_queries_prepared_statements_and_transactions() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let proxy = proxy_to(db).await;
    let out = mariadb(
        proxy.addr(),
        "SELECT CURRENT_USER(); \
         SELECT VARIABLE_VALUE <> '' FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'; \
         CREATE TABLE IF NOT EXISTS proxy_t (a int); DELETE FROM proxy_t; \
         START TRANSACTION; INSERT INTO proxy_t VALUES (1); ROLLBACK; \
         INSERT INTO proxy_t VALUES (2); SELECT COUNT(*), SUM(a) FROM proxy_t; \
         PREPARE twice FROM 'SELECT ? * 2'; SET @x = 21; EXECUTE twice USING @x; \
         SELECT COUNT(*), SUM(LENGTH(MD5(seq))) FROM seq_1_to_100000;",
    )
    .await;
    assert_eq!(
        ok(&out),
        // TLS upstream (Ssl_cipher set) for the IAM user; the rollback undid the insert.
        "iam_user@%\n1\n1\t2\n42\n100000\t3200000\n",
        "{}",
        text(&out)
    );
    // A large result: every row through the relay.
    let out = mariadb(proxy.addr(), "SELECT seq, MD5(seq) FROM seq_1_to_200000").await;
    let stdout = ok(&out);
    assert_eq!(stdout.lines().count(), 200_000);
    assert_eq!(
        stdout.lines().last().unwrap(),
        "200000\t03e6c61603f6c550ab49ab6a2d83f793"
    );
    // LOAD DATA LOCAL is refused: the server may not read the proxy's files.
    let out = mariadb(
        proxy.addr(),
        "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE proxy_t",
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    proxy.stop().await;
}

/// mysql_async asking for TLS on the loopback leg (any certificate: the proxy's is
/// self-signed here).
fn tls_opts(addr: SocketAddr) -> mysql_async::Opts {
    let ssl = mysql_async::SslOpts::default().with_danger_accept_invalid_certs(true);
    mysql_async::OptsBuilder::from_opts(opts(addr))
        .ssl_opts(Some(ssl))
        .into()
}

/// Local TLS for clients that insist on it: the real client with `--ssl` logs in through it,
/// its own status naming the cipher of the local leg, and so does mysql_async with TLS
/// required; plain clients still connect. Without local TLS the greeting offers none, and
/// mysql_async with TLS required refuses to go on.
#[tokio::test]
async fn clients_asking_for_tls_log_in_through_local_tls() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let proxy = proxy_with(db, |b| b.local_tls_generated()).await;
    assert!(proxy.fingerprint.is_some());
    assert!(
        proxy.lines.iter().any(|l| l.contains("--ssl ")),
        "{:?}",
        proxy.lines
    );
    let out = mariadb_with(proxy.addr(), "--ssl", "SELECT CURRENT_USER(); \\s").await;
    let stdout = ok(&out);
    assert!(stdout.starts_with("iam_user@%\n"), "{}", text(&out));
    let tls_line = stdout.lines().find(|l| l.starts_with("SSL:"));
    assert!(
        tls_line.is_some_and(|l| l.contains("Cipher in use is TLS")),
        "{}",
        text(&out)
    );
    let mut conn = Conn::new(tls_opts(proxy.addr()))
        .await
        .expect("a TLS login");
    let user: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(user.as_deref(), Some("iam_user@%"));
    conn.disconnect().await.unwrap();
    let out = mariadb(proxy.addr(), "SELECT 1").await;
    assert_eq!(ok(&out), "1\n", "TLS is offered, not required");
    proxy.stop().await;

    let proxy = proxy_to(db).await;
    match Conn::new(tls_opts(proxy.addr())).await {
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)) => {}
        other => panic!("TLS was not offered: {:?}", other.map(|_| ())),
    }
    proxy.stop().await;
}

#[tokio::test]
async fn mysql_async_through_the_proxy_with_the_upstreams_connection_id() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let proxy = proxy_to(db).await;
    let mut conn = Conn::new(opts(proxy.addr())).await.unwrap();
    // The greeting's id is the upstream's: a client's `KILL QUERY <id>` reaches the session.
    let id: u32 = conn
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conn.id(), id);
    // The binary protocol (prepared statements) through the relay.
    let doubled: i64 = conn
        .exec_first("SELECT ? * 2", (21,))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doubled, 42);

    let mut other = Conn::new(opts(proxy.addr())).await.unwrap();
    let t0 = Instant::now();
    let sleeping = tokio::spawn(async move {
        conn.query_first::<i64, _>("SELECT SLEEP(30)")
            .await
            .map(drop)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    other.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    match sleeping.await.unwrap() {
        // ER_QUERY_INTERRUPTED: the KILL reached the session behind the proxy.
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1317, "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(10));

    // 32 clients at once, each its own upstream session.
    let clients = (0..32).map(|_| {
        let opts = opts(proxy.addr());
        tokio::spawn(async move {
            let mut conn = Conn::new(opts).await.unwrap();
            let id: u32 = conn
                .query_first("SELECT CONNECTION_ID()")
                .await
                .unwrap()
                .unwrap();
            (conn, id)
        })
    });
    let mut ids = std::collections::HashSet::new();
    let mut open = Vec::new();
    for client in clients {
        let (conn, id) = client.await.unwrap();
        ids.insert(id);
        open.push(conn);
    }
    assert_eq!(ids.len(), 32);
    for conn in open {
        conn.disconnect().await.unwrap();
    }
    proxy.stop().await;
}

#[tokio::test]
async fn a_rejected_token_reaches_the_client_as_error_1045_with_the_diagnosis() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let proxy = proxy_to(db).await;
    db.set_password("not the token");
    match Conn::new(opts(proxy.addr())).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1045, "{e:?}");
            assert!(
                e.message.contains("rejected the IAM token"),
                "{}",
                e.message
            );
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    proxy.stop().await;
}

/// Upstream fakes without trusted TLS receive no token byte; the client gets the reason.
#[tokio::test]
async fn fake_upstreams_without_trusted_tls_receive_no_token_byte() {
    let cases = [
        (Answer::NoTls, "offered no TLS"),
        (Answer::CleartextSwitchBeforeTls, "TLS handshake failed"),
        (
            Answer::Tls(&certs().other_ca_server),
            "not issued by a CA in the trust store",
        ),
        (
            Answer::Tls(&certs().wrong_name),
            "not valid for the signing hostname",
        ),
    ];
    for (answer, expected) in cases {
        let server = fake_server(answer).await;
        let clock = TestClock::new();
        let endpoint = iam::mysql_tunnel_endpoint(server.port);
        let proxy = proxy::serve(builder_to(iam::cache(&clock), endpoint.clone())).await;
        match Conn::new(opts(proxy.addr())).await {
            Err(mysql_async::Error::Server(e)) => {
                assert!(e.message.contains(expected), "{expected}: {}", e.message);
            }
            other => panic!("{expected}: {:?}", other.map(|_| ())),
        }
        let token = token_for(&endpoint, &clock).await;
        assert_no_token_bytes(&server, &token);
        proxy.stop().await;
    }
}

#[tokio::test]
async fn a_trusted_fake_upstream_sees_the_whole_token_and_not_the_clients_password() {
    let server = fake_server(Answer::Tls(&certs().server)).await;
    let clock = TestClock::new();
    let endpoint = iam::mysql_tunnel_endpoint(server.port);
    let proxy = proxy::serve(builder_to(iam::cache(&clock), endpoint.clone())).await;
    let error = Conn::new(opts(proxy.addr())).await.map(|_| ()).unwrap_err();
    assert!(
        matches!(&error, mysql_async::Error::Server(e) if e.code == 1045),
        "{error:?}"
    );
    let token = token_for(&endpoint, &clock).await;
    assert!(
        server.saw(token.expose().as_bytes()),
        "the whole token, not cut at 255 bytes"
    );
    assert!(!server.saw(b"ignored by the proxy"));
    proxy.stop().await;
}

/// What the MySQL proxy logs at TRACE (the crate's lines and mysql_async's, rustls') over a
/// login with local TLS and one without: the connection's line, never a secret.
#[tokio::test]
async fn the_trace_output_holds_no_secret() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let (captured, _guard) = support::trace::capture();
    let clock = TestClock::new();
    let endpoint = iam::mysql_tunnel_endpoint(db.port());
    let token = token_for(&endpoint, &clock).await;
    db.set_password(token.expose());
    let builder = builder_to(iam::cache(&clock), endpoint).local_tls_generated();
    let proxy = proxy::serve(builder).await;
    for opts in [opts(proxy.addr()), tls_opts(proxy.addr())] {
        let mut conn = Conn::new(opts).await.expect("a login through the proxy");
        let one: Option<i32> = conn.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
        conn.disconnect().await.unwrap();
    }
    proxy.stop().await;
    captured.assert_shows(&["proxied connection logged in", "iam_user", "login_ms"]);
    // Nor the client's password (which the proxy skips, never keeps).
    captured.assert_no_secret(&[
        token.expose(),
        iam::credentials().secret_access_key(),
        "ignored by the proxy",
    ]);
}
