//! `proxy::Proxy` for PostgreSQL, in process, against the harness's server (TLS, cleartext
//! password = the IAM token), with the clients people use through it: the real `psql`
//! (`/usr/bin/psql`, PostgreSQL 15) and tokio-postgres with `NoTls` to the loopback listener.
//!
//! Every test changes or relies on the role's password, so they take turns (`TURN`).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rds_iam_auth::proxy::ProxyBuilder;
use rds_iam_auth::tokio_postgres::{self, NoTls};
use rds_iam_auth::{Endpoint, Engine, ErrorKind, IamAuthToken, TokenCache, TokenRequest};
use support::fake_postgres::{Answer, fake_server};
use support::iam::{self, TestClock};
use support::security::assert_no_token_bytes;
use support::{certs, postgres, proxy};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

const PSQL: &str = "/usr/bin/psql";

/// A proxy to the harness's server through its RDS-looking name (signed for port 5432, TCP
/// to the harness's port), trusting only the test CA, listening on a free loopback port.
fn builder_to(cache: TokenCache, endpoint: Endpoint) -> ProxyBuilder {
    proxy::builder_to(Engine::Postgres, cache, endpoint)
}

fn builder(cache: TokenCache) -> ProxyBuilder {
    builder_to(cache, iam::tunnel_endpoint(postgres().port()))
}

/// The token the proxy signs for `user` when the clock reads `clock`'s time.
async fn token_for(clock: &TestClock, user: &str) -> IamAuthToken {
    let request = TokenRequest::rds(&iam::tunnel_endpoint(postgres().port()), user)
        .build()
        .unwrap();
    iam::token_at(&request, clock.at()).await
}

/// A proxy with the server accepting the token of the clock's time.
async fn proxy_with(
    configure: impl FnOnce(ProxyBuilder) -> ProxyBuilder,
) -> (proxy::Running, TestClock) {
    let clock = TestClock::new();
    postgres().set_password(token_for(&clock, "iam_user").await.expose());
    (
        proxy::serve(configure(builder(iam::cache(&clock)))).await,
        clock,
    )
}

fn conninfo(addr: SocketAddr, extra: &str) -> String {
    format!(
        "host={} port={} user=iam_user dbname=appdb {extra}",
        addr.ip(),
        addr.port()
    )
}

/// Runs psql (on a blocking thread: the proxy runs on the test's runtime) with a clean
/// environment: `PG*` variables would silently redirect it.
async fn psql(conninfo: String, args: Vec<String>, stdin: Option<String>) -> Output {
    assert!(
        Path::new(PSQL).exists(),
        "{PSQL} is missing: install postgresql-client (scripts/test.sh does)"
    );
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(PSQL);
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("PGCONNECT_TIMEOUT", "10")
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", &conninfo])
            .args(args);
        match stdin {
            None => command.output().unwrap(),
            Some(input) => {
                use std::io::Write;
                let mut child = command
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
        }
    })
    .await
    .unwrap()
}

/// The error of a connection the proxy (or the server through it) refuses.
async fn refused(conninfo: &str) -> tokio_postgres::Error {
    match tokio_postgres::connect(conninfo, NoTls).await {
        Ok(_) => panic!("connected, but should have been refused"),
        Err(error) => error,
    }
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "{}", text(output));
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test]
async fn psql_runs_queries_copy_prepared_statements_and_transactions_through_the_proxy() {
    let _turn = TURN.lock().await;
    let (proxy, _clock) = proxy_with(|b| b).await;
    let script = "\
SELECT current_user, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid());
CREATE TEMP TABLE t (a int, b text);
COPY t FROM STDIN;
1\tone
2\ttwo
\\.
SELECT count(*), string_agg(b, ',' ORDER BY a) FROM t;
COPY (SELECT a * 10 FROM t ORDER BY a) TO STDOUT;
PREPARE twice(int) AS SELECT $1 * 2;
EXECUTE twice(21);
BEGIN;
INSERT INTO t VALUES (3, 'three');
ROLLBACK;
SELECT count(*) FROM t;
SELECT sum(length(md5(i::text))) FROM generate_series(1, 10) i;
";
    // psql's -f - reads the script, COPY's data included, from stdin.
    let out = psql(
        conninfo(proxy.addr(), "sslmode=disable"),
        vec!["-f".into(), "-".into()],
        Some(script.to_owned()),
    )
    .await;
    let lines: Vec<String> = ok(&out).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            // The session upstream is TLS (the proxy's leg), the user the IAM one.
            "iam_user|t",
            "CREATE TABLE",
            "COPY 2",
            "2|one,two",
            "10",
            "20",
            "PREPARE",
            "42",
            "BEGIN",
            "INSERT 0 1",
            "ROLLBACK",
            "2",
            "320",
        ],
        "{}",
        text(&out)
    );

    // A large result: 200,000 rows, every one of them through the relay.
    let out = psql(
        conninfo(proxy.addr(), "sslmode=disable"),
        vec![
            "-c".into(),
            "SELECT i, md5(i::text) FROM generate_series(1, 200000) i".into(),
        ],
        None,
    )
    .await;
    let stdout = ok(&out);
    assert_eq!(stdout.lines().count(), 200_000);
    assert_eq!(
        stdout.lines().last().unwrap(),
        "200000|03e6c61603f6c550ab49ab6a2d83f793"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn libpq_default_sslmode_prefer_continues_in_plaintext_on_loopback() {
    let _turn = TURN.lock().await;
    let (proxy, _clock) = proxy_with(|b| b).await;
    // No sslmode: libpq's `prefer` asks for TLS, gets `N`, and goes on.
    let out = psql(
        conninfo(proxy.addr(), ""),
        vec!["-c".into(), "SELECT 1".into()],
        None,
    )
    .await;
    assert_eq!(ok(&out), "1\n");
    // `require` without local TLS: psql refuses the `N`, as it should.
    let out = psql(
        conninfo(proxy.addr(), "sslmode=require"),
        vec!["-c".into(), "SELECT 1".into()],
        None,
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("does not support SSL"),
        "{}",
        text(&out)
    );
    proxy.stop().await;
}

#[tokio::test]
async fn psql_with_sslmode_require_gets_the_generated_local_certificate() {
    let _turn = TURN.lock().await;
    let (proxy, _clock) = proxy_with(|b| b.local_tls_generated()).await;
    let fingerprint = proxy.fingerprint.clone().expect("a fingerprint");
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
    assert!(
        proxy.lines.iter().any(|l| l.contains("sslmode=require")),
        "{:?}",
        proxy.lines
    );
    let out = psql(
        conninfo(proxy.addr(), "sslmode=require"),
        vec![
            "-c".into(),
            "SELECT current_user".into(),
            "-c".into(),
            "\\conninfo".into(),
        ],
        None,
    )
    .await;
    let stdout = ok(&out);
    assert!(stdout.starts_with("iam_user\n"), "{}", text(&out));
    // psql saw TLS on its own leg.
    assert!(stdout.contains("SSL connection"), "{}", text(&out));
    proxy.stop().await;
}

#[tokio::test]
async fn a_psql_cancel_reaches_the_upstream_backend() {
    let _turn = TURN.lock().await;
    let (proxy, _clock) = proxy_with(|b| b).await;
    let info = conninfo(proxy.addr(), "sslmode=disable");
    let started = Instant::now();
    let child = tokio::task::spawn_blocking(move || {
        Command::new(PSQL)
            .env_clear()
            .args(["-X", "-At", "-d", &info, "-c", "SELECT pg_sleep(30)"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    })
    .await
    .unwrap();
    // psql's Ctrl-C: SIGINT makes it send a CancelRequest on a new connection.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        text(&out).contains("canceling statement due to user request"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    // tokio-postgres's cancel token, to the proxy.
    let (client, connection) = tokio_postgres::connect(&conninfo(proxy.addr(), ""), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let cancel = client.cancel_token();
    let sleeper = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = Instant::now();
    cancel.cancel_query(NoTls).await.unwrap();
    let error = sleeper.await.unwrap().unwrap_err();
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{error}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    proxy.stop().await;
}

#[tokio::test]
async fn tokio_postgres_with_no_tls_and_32_concurrent_clients() {
    let _turn = TURN.lock().await;
    let (proxy, _clock) = proxy_with(|b| b).await;
    let info = conninfo(proxy.addr(), "sslmode=disable");
    let clients = (0..32).map(|i| {
        let info = info.clone();
        tokio::spawn(async move {
            let (client, connection) = tokio_postgres::connect(&info, NoTls).await.unwrap();
            tokio::spawn(connection);
            // The extended protocol (a prepared statement with a parameter) and a pid.
            let row = client
                .query_one("SELECT $1::int * 2, pg_backend_pid()", &[&i])
                .await
                .unwrap();
            assert_eq!(row.get::<_, i32>(0), i * 2);
            (client, row.get::<_, i32>(1))
        })
    });
    let mut pids = std::collections::HashSet::new();
    let mut open = Vec::new();
    for client in clients {
        let (client, pid) = client.await.unwrap();
        pids.insert(pid);
        open.push(client);
    }
    assert_eq!(pids.len(), 32, "one upstream session per client");
    drop(open);
    proxy.stop().await;
}

#[tokio::test]
async fn a_session_outlives_its_token_and_a_new_connection_gets_a_fresh_one() {
    let _turn = TURN.lock().await;
    let (proxy, clock) = proxy_with(|b| b).await;
    let info = conninfo(proxy.addr(), "sslmode=disable");
    let (old, connection) = tokio_postgres::connect(&info, NoTls).await.unwrap();
    tokio::spawn(connection);
    let first = token_for(&clock, "iam_user").await;

    // 16 minutes later the first token has expired; the server accepts only a new one.
    clock.advance(Duration::from_secs(16 * 60));
    let second = token_for(&clock, "iam_user").await;
    assert_ne!(first.expose(), second.expose());
    postgres().set_password(second.expose());

    old.simple_query("SELECT 1")
        .await
        .expect("the open session goes on");
    let (new, connection) = tokio_postgres::connect(&info, NoTls)
        .await
        .expect("a new connection logs in with a fresh token");
    tokio::spawn(connection);
    new.simple_query("SELECT 1").await.unwrap();
    proxy.stop().await;
}

#[tokio::test]
async fn a_rejected_token_is_retried_once_then_the_client_gets_the_diagnosis() {
    let _turn = TURN.lock().await;
    let (proxy, _clock) = proxy_with(|b| b).await;
    postgres().set_password("not the token");
    let error = refused(&conninfo(proxy.addr(), "sslmode=disable")).await;
    let db = error.as_db_error().expect("the engine's own error");
    assert_eq!(
        db.code(),
        &tokio_postgres::error::SqlState::INVALID_PASSWORD
    );
    assert!(
        db.message().contains("rejected the IAM token"),
        "{}",
        db.message()
    );
    assert!(db.message().contains("rds_iam"), "{}", db.message());
    proxy.stop().await;
}

#[tokio::test]
async fn a_pinned_user_refuses_other_users() {
    let _turn = TURN.lock().await;
    let (proxy, _clock) = proxy_with(|b| b.pin_user("iam_user")).await;
    let other = format!(
        "host=127.0.0.1 port={} user=someone_else dbname=appdb",
        proxy.addr().port()
    );
    let error = refused(&other).await;
    let db = error.as_db_error().expect("the engine's own error");
    assert_eq!(
        db.code(),
        &tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    );
    assert!(
        db.message().contains("logs in as `iam_user` only"),
        "{}",
        db.message()
    );
    let (client, connection) = tokio_postgres::connect(&conninfo(proxy.addr(), ""), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();
    assert!(
        proxy
            .lines
            .iter()
            .any(|l| l.starts_with("psql \"host=127.0.0.1") && l.contains("user=iam_user")),
        "{:?}",
        proxy.lines
    );
    assert!(
        proxy
            .lines
            .iter()
            .any(|l| l.starts_with("jdbc:postgresql://127.0.0.1:"))
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_unix_socket_named_as_libpq_expects_and_private_from_its_creation() {
    use std::os::unix::fs::PermissionsExt;
    let _turn = TURN.lock().await;
    let dir = std::env::temp_dir().join(format!("rds-iam-proxy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let clock = TestClock::new();
    postgres().set_password(token_for(&clock, "iam_user").await.expose());
    let listening = builder(iam::cache(&clock))
        .unix_socket(&dir)
        .build()
        .unwrap()
        .bind()
        .await
        .unwrap();
    let path = listening.socket_path().unwrap().to_owned();
    assert_eq!(path, dir.join(".s.PGSQL.5432"));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    // Nothing else left in the directory (the private staging directory is gone).
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(entries.len(), 1);
    let proxy = proxy::start(listening).await;
    let out = psql(
        format!(
            "host={} port=5432 user=iam_user dbname=appdb",
            dir.display()
        ),
        vec!["-c".into(), "SELECT current_user".into()],
        None,
    )
    .await;
    assert_eq!(ok(&out), "iam_user\n");
    proxy.stop().await;
    assert!(!path.exists(), "the socket is removed at shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_non_loopback_listen_address_is_refused_unless_allowed() {
    let clock = TestClock::new();
    let error = builder(iam::cache(&clock))
        .listen("0.0.0.0:0".parse().unwrap())
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.setting(), Some("listen"));
    assert!(
        error.to_string().contains("logs in as this IAM identity"),
        "{error}"
    );
    builder(iam::cache(&clock))
        .listen("0.0.0.0:0".parse().unwrap())
        .allow_remote(true)
        .build()
        .expect("allowed explicitly");
    let error = builder(iam::cache(&clock))
        .max_connections(0)
        .build()
        .unwrap_err();
    assert_eq!(error.setting(), Some("max_connections"));
}

#[tokio::test]
async fn over_the_connection_limit_clients_get_too_many_connections() {
    let _turn = TURN.lock().await;
    let (proxy, _clock) = proxy_with(|b| b.max_connections(1)).await;
    let info = conninfo(proxy.addr(), "");
    let (first, connection) = tokio_postgres::connect(&info, NoTls).await.unwrap();
    tokio::spawn(connection);
    let error = refused(&info).await;
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS),
        "{error}"
    );
    first.simple_query("SELECT 1").await.unwrap();
    proxy.stop().await;
}

/// Upstream fakes: no TLS, a certificate from another CA, one for another name. Each gets
/// no byte of the token, and the client gets the crate's diagnosis as a PostgreSQL error.
#[tokio::test]
async fn fake_upstreams_without_trusted_tls_receive_no_token_byte() {
    let cases = [
        (
            Answer::RefuseTls,
            "offered no TLS, and an IAM token is never sent without it",
        ),
        (
            Answer::Tls(&certs().other_ca_server),
            "not issued by a CA in the trust store, so no token was sent",
        ),
        (
            Answer::Tls(&certs().wrong_name),
            "not valid for the signing hostname, so no token was sent",
        ),
    ];
    for (answer, expected) in cases {
        let server = fake_server(answer).await;
        let clock = TestClock::new();
        let endpoint = iam::tunnel_endpoint(server.port);
        let proxy = proxy::serve(builder_to(iam::cache(&clock), endpoint.clone())).await;
        let error = refused(&conninfo(proxy.addr(), "")).await;
        let db = error.as_db_error().expect("the engine's own error");
        assert!(
            db.message().contains(expected),
            "{expected}: {}",
            db.message()
        );
        assert_eq!(db.code().code(), "08001", "{}", db.message());
        let request = TokenRequest::rds(&endpoint, "iam_user").build().unwrap();
        let token = iam::token_at(&request, clock.at()).await;
        assert_no_token_bytes(&server, &token);
        assert_eq!(server.connections(), 1, "a TLS failure is not retried");
        proxy.stop().await;
    }
}

/// The positive control of the test above: a fake with a trusted certificate does see the
/// token (so the capture works), and its rejection reaches the client as 28P01.
#[tokio::test]
async fn a_trusted_fake_upstream_sees_the_token() {
    let server = fake_server(Answer::Tls(&certs().server)).await;
    let clock = TestClock::new();
    let endpoint = iam::tunnel_endpoint(server.port);
    let proxy = proxy::serve(builder_to(iam::cache(&clock), endpoint.clone())).await;
    let error = refused(&conninfo(proxy.addr(), "password=ignored")).await;
    assert_eq!(
        error.as_db_error().map(|e| e.code().code()),
        Some("28P01"),
        "{error}"
    );
    let request = TokenRequest::rds(&endpoint, "iam_user").build().unwrap();
    let token = iam::token_at(&request, clock.at()).await;
    assert!(server.saw(token.expose().as_bytes()));
    assert!(
        !server.saw(b"ignored"),
        "the client's password is never forwarded"
    );
    assert_eq!(server.connections(), 2, "one retry after the rejection");
    proxy.stop().await;
}

#[tokio::test]
async fn the_trace_output_holds_no_secret() {
    let _turn = TURN.lock().await;
    let (captured, _guard) = support::trace::capture();
    let (proxy, clock) = proxy_with(|b| b).await;
    let out = psql(
        conninfo(proxy.addr(), "sslmode=disable"),
        vec!["-c".into(), "SELECT 1".into()],
        None,
    )
    .await;
    assert_eq!(ok(&out), "1\n");
    proxy.stop().await;
    let token = token_for(&clock, "iam_user").await;
    captured.assert_shows(&["proxied connection logged in", "iam_user", "login_ms"]);
    captured.assert_no_secret(&[token.expose(), iam::credentials().secret_access_key()]);
}

/// An upstream that agrees to TLS, presents the harness's trusted certificate, and then asks
/// for SCRAM (a user with an ordinary password, not an IAM one).
async fn scram_upstream() -> support::capture::CaptureServer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    support::capture::CaptureServer::start(|mut tcp, recorder| async move {
        let mut ssl_request = [0u8; 8];
        if tcp.read_exact(&mut ssl_request).await.is_err() {
            return;
        }
        tcp.write_all(b"S").await.unwrap();
        let acceptor = support::capture::tls_acceptor(&certs().server);
        let Ok(mut tls) = acceptor.accept(tcp).await else {
            return;
        };
        let mut buf = [0u8; 4096];
        let n = tls.read(&mut buf).await.unwrap_or(0);
        recorder.record(&buf[..n]);
        // AuthenticationSASL offering SCRAM-SHA-256.
        let mut sasl = vec![b'R', 0, 0, 0, 0, 0, 0, 0, 10];
        sasl.extend_from_slice(b"SCRAM-SHA-256\0\0");
        let length = (sasl.len() - 1) as u32;
        sasl[1..5].copy_from_slice(&length.to_be_bytes());
        tls.write_all(&sasl).await.unwrap();
        support::capture::listen(&mut tls, &recorder).await;
    })
    .await
}

#[tokio::test]
async fn a_user_asked_for_scram_is_not_an_iam_user_and_gets_no_token() {
    let server = scram_upstream().await;
    let clock = TestClock::new();
    let endpoint = iam::tunnel_endpoint(server.port);
    let proxy = proxy::serve(builder_to(iam::cache(&clock), endpoint.clone())).await;
    let error = refused(&conninfo(proxy.addr(), "")).await;
    let db = error.as_db_error().expect("the engine's own error");
    assert!(db.message().contains("SCRAM"), "{}", db.message());
    assert!(
        db.message().contains("is not an IAM user"),
        "{}",
        db.message()
    );
    assert_eq!(db.code().code(), "28000", "{}", db.message());
    assert!(
        server.saw(b"iam_user"),
        "the startup went upstream (the positive control)"
    );
    let request = TokenRequest::rds(&endpoint, "iam_user").build().unwrap();
    server.assert_never_saw(iam::token_at(&request, clock.at()).await.expose(), &[]);
    assert_eq!(server.connections(), 1, "not a rejection: no retry");
    proxy.stop().await;
}

/// CVE-2021-23222: bytes a man in the middle appends to the server's `S` must not be taken
/// as the start of the TLS session (or anything else).
#[tokio::test]
async fn bytes_after_the_servers_tls_yes_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = support::capture::CaptureServer::start(|mut tcp, recorder| async move {
        let mut ssl_request = [0u8; 8];
        if tcp.read_exact(&mut ssl_request).await.is_ok() {
            // `S`, then an injected AuthenticationCleartextPassword in plaintext.
            tcp.write_all(b"SR\0\0\0\x08\0\0\0\x03").await.unwrap();
            support::capture::listen(&mut tcp, &recorder).await;
        }
    })
    .await;
    let clock = TestClock::new();
    let endpoint = iam::tunnel_endpoint(server.port);
    let proxy = proxy::serve(builder_to(iam::cache(&clock), endpoint.clone())).await;
    let error = refused(&conninfo(proxy.addr(), "")).await;
    let db = error.as_db_error().expect("the engine's own error");
    assert!(db.message().contains("CVE-2021-23222"), "{}", db.message());
    let request = TokenRequest::rds(&endpoint, "iam_user").build().unwrap();
    assert_no_token_bytes(&server, &iam::token_at(&request, clock.at()).await);
    proxy.stop().await;
}

#[tokio::test]
async fn a_direct_tls_client_hello_is_closed_without_an_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let clock = TestClock::new();
    let proxy = proxy::serve(builder(iam::cache(&clock))).await;
    let mut tcp = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    // The record header of a ClientHello (sslnegotiation=direct), then some of its body.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    // Closed: an EOF, or a reset (the rest of the ClientHello was left unread).
    let closed = match &read {
        Ok(Ok(0)) => true,
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionReset,
        _ => false,
    };
    assert!(closed, "{read:?}");
    assert!(
        answer.is_empty(),
        "nothing is answered to a ClientHello: {answer:?}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_shutdown_stops_accepting_and_closes_sessions_after_the_grace() {
    let _turn = TURN.lock().await;
    let (proxy, _clock) = proxy_with(|b| b.shutdown_grace(Duration::from_secs(1))).await;
    let addr = proxy.addr();
    let (open, connection) = tokio_postgres::connect(&conninfo(addr, ""), NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    open.simple_query("SELECT 1").await.unwrap();
    let t0 = Instant::now();
    proxy.stop().await;
    let took = t0.elapsed();
    // The open session held the shutdown for the grace, not longer.
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        open.simple_query("SELECT 1").await.is_err(),
        "closed after the grace"
    );
    let _ = connection.await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

/// A protocol 3.2 client (PostgreSQL 18's libpq asks for it) through the proxy to this
/// PostgreSQL 15 server, byte by byte: the server's NegotiateProtocolVersion reaches the
/// client, the session runs on 3.0 with its 4-byte cancel key, and a query answers.
#[tokio::test]
async fn a_protocol_3_2_client_is_negotiated_down_by_the_real_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _turn = TURN.lock().await;
    let (proxy, _clock) = proxy_with(|b| b).await;
    let mut tcp = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    let mut startup = (3u32 << 16 | 2).to_be_bytes().to_vec();
    for part in ["user", "iam_user", "database", "appdb", ""] {
        startup.extend_from_slice(part.as_bytes());
        startup.push(0);
    }
    let length = (startup.len() + 4) as u32;
    tcp.write_all(&[&length.to_be_bytes()[..], &startup].concat())
        .await
        .unwrap();

    // The backend's messages up to ReadyForQuery: (type, body).
    async fn until_ready(tcp: &mut tokio::net::TcpStream) -> Vec<(u8, Vec<u8>)> {
        let mut messages = Vec::new();
        loop {
            let mut header = [0u8; 5];
            tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut header))
                .await
                .expect("the proxy answers")
                .expect("a message, not a close");
            let length = u32::from_be_bytes(header[1..].try_into().unwrap()) as usize;
            let mut body = vec![0u8; length - 4];
            tcp.read_exact(&mut body).await.unwrap();
            let ready = header[0] == b'Z';
            messages.push((header[0], body));
            if ready {
                return messages;
            }
        }
    }
    let login = until_ready(&mut tcp).await;
    let kinds: Vec<char> = login.iter().map(|(kind, _)| *kind as char).collect();
    assert_eq!(kinds[0], 'v', "NegotiateProtocolVersion first: {kinds:?}");
    let newest = u32::from_be_bytes(login[0].1[..4].try_into().unwrap());
    assert_eq!(newest, 3 << 16, "the server's newest is 3.0");
    let auth_ok = login
        .iter()
        .position(|(kind, body)| *kind == b'R' && body[..] == [0, 0, 0, 0]);
    assert!(auth_ok.is_some(), "AuthenticationOk: {kinds:?}");
    let key = login
        .iter()
        .find(|(kind, _)| *kind == b'K')
        .expect("BackendKeyData");
    assert_eq!(key.1.len(), 8, "3.0's 4-byte key after the process id");
    assert!(!login.iter().any(|(kind, _)| *kind == b'E'), "{kinds:?}");

    let query = b"SELECT current_user\0";
    let length = (query.len() + 4) as u32;
    tcp.write_all(&[&[b'Q'][..], &length.to_be_bytes(), query].concat())
        .await
        .unwrap();
    let answer = until_ready(&mut tcp).await;
    let row = answer
        .iter()
        .find(|(kind, _)| *kind == b'D')
        .expect("a DataRow");
    // One column: its length, then `iam_user`.
    assert_eq!(&row.1[..2], &[0, 1]);
    assert_eq!(&row.1[6..], b"iam_user");
    proxy.stop().await;
}
