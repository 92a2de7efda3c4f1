//! Reliability, round 3: the faults an adversarial review proved, each with the test that
//! failed before its fix, against the real test servers (through the loopback fault proxy
//! where the fault is on the wire).
//!
//! Passwords are per server and shared by the whole binary: the tests take turns (`TURN`).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use rds_iam_auth::clock::{Clock, ManualClock};
use rds_iam_auth::doctor::{Doctor, Status};
use rds_iam_auth::mysql_async::prelude::Queryable;
use rds_iam_auth::pool::{MySqlManager, MySqlPool};
use rds_iam_auth::sqlx_0_9::sqlx;
use rds_iam_auth::{Credentials, Endpoint, Engine, ErrorKind, TokenCache, TokenGenerator};
use rds_iam_auth::{PgConnector, TokenRequest};
use support::faults::FaultProxy;
use support::iam::{self, TestClock};
use support::{mariadb_or_skip, postgres};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

/// A loaded 2-core CI machine answers late: the slack allowed past a bound.
const SLACK: Duration = Duration::from_millis(500);

/// The test credentials (those the harness's servers expect tokens of), counted, and failing
/// while `failing` is set.
#[derive(Debug, Clone, Default)]
struct Provider {
    calls: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    expiry: Option<SystemTime>,
}

impl Provider {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

impl ProvideCredentials for Provider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
                "the metadata service is down",
            )));
        }
        let c = iam::credentials();
        future::ProvideCredentials::ready(Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            None,
            self.expiry,
            "counting",
        )))
    }
}

fn cache_with(provider: &Provider, clock: impl Clock + 'static) -> TokenCache {
    TokenCache::new(
        TokenGenerator::builder(provider.clone())
            .clock(clock)
            .build(),
    )
}

/// (1) A pooled connection whose peer stops answering (a failover, a partition, a NAT that
/// dropped its state) used to hang deadpool's checkout: the recycle ping had no bound. It is
/// now bounded by the connect timeout, and the pool opens a new connection.
#[tokio::test]
async fn a_pooled_connection_that_stops_answering_is_replaced_within_the_connect_timeout() {
    let _turn = TURN.lock().await;
    let Some(server) = mariadb_or_skip() else {
        return;
    };
    let proxy = FaultProxy::start(server.port()).await;
    let clock = TestClock::new();
    let timeout = Duration::from_secs(1);
    let connector = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(proxy.port))
        .connect_timeout(timeout)
        .build()
        .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;
    server.set_password(token.expose());
    let pool = MySqlPool::builder(MySqlManager::new(connector))
        .max_size(1)
        .build()
        .unwrap();
    drop(pool.get().await.unwrap()); // one idle, logged-in connection
    proxy.stall_open_connections();

    let started = Instant::now();
    let mut conn = tokio::time::timeout(Duration::from_secs(20), pool.get())
        .await
        .expect("the checkout ends (it used to hang until the kernel gave up)")
        .expect("a new connection replaces the silent one");
    let took = started.elapsed();
    assert!(
        took >= timeout && took < timeout * 2 + SLACK,
        "the ping's bound, then one login: {took:?}"
    );
    conn.query_drop("SELECT 1").await.unwrap();
    assert_eq!(proxy.connections(), 2, "the silent connection was replaced");
    assert!(!proxy.saw(token.expose().as_bytes()), "token in clear");
}

/// (2) A credentials outage used to fail every `IamPool::acquire` (it installs a current
/// token first), even with idle connections that need none.
#[tokio::test]
async fn iam_pool_acquire_survives_a_credentials_outage_with_idle_connections() {
    let _turn = TURN.lock().await;
    let port = postgres().port();
    let clock = TestClock::new();
    let provider = Provider::default();
    let request = TokenRequest::rds(&Endpoint::new("localhost", port).unwrap(), "iam_user")
        .region("us-east-1")
        .build()
        .unwrap();
    postgres().set_password(iam::token_at(&request, clock.at()).await.expose());
    let pool =
        support::sqlx_0_9::builder::<sqlx::Postgres>(cache_with(&provider, clock.clone()), port)
            .build()
            .await
            .unwrap();
    drop(pool.acquire().await.unwrap()); // an idle connection

    // 16 minutes on: the token has expired, and the provider is down.
    clock.advance(Duration::from_secs(16 * 60));
    provider.fail(true);
    let mut conn = pool
        .acquire()
        .await
        .expect("an idle connection needs no token");
    let (one,): (i32,) = sqlx::query_as("SELECT 1")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    assert!(provider.calls() >= 2, "the cache did ask the provider");
    drop(conn);
    pool.close().await;
}

/// A sqlx pool against a port nobody listens on: `build()` used to retry for sqlx's acquire
/// timeout (30 s by default) and then say only "pool timed out"; it now says what the
/// connectors say, in the time one attempt takes.
#[tokio::test]
async fn a_sqlx_pool_against_a_refused_port_says_so_at_once() {
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let clock = TestClock::new();
    let started = Instant::now();
    let error = support::sqlx_0_9::builder::<sqlx::Postgres>(iam::cache(&clock), refused)
        .pool_options(sqlx::postgres::PgPoolOptions::new().acquire_timeout(Duration::from_secs(30)))
        .build()
        .await
        .expect_err("nothing listens");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind(), ErrorKind::Connect, "{error:?}");
    assert!(
        error
            .to_string()
            .contains("nothing accepts connections at the dialled address"),
        "{error}"
    );
}

/// (4) The failure backoff counted on the wall clock: stepped back an hour, it held every
/// attempt back for that hour. It counts on the monotonic clock now, in the credentials'
/// memory and in the cache alike.
#[tokio::test]
async fn a_wall_clock_stepped_back_does_not_freeze_the_failure_backoff() {
    let t0 = UNIX_EPOCH + Duration::from_secs(1_705_322_096);
    let clock = ManualClock::new(t0);
    let provider = Provider::default();
    let cache = cache_with(&provider, clock.clone());
    let endpoint = Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 5432).unwrap();
    let request = TokenRequest::rds(&endpoint, "iam_user").build().unwrap();

    provider.fail(true);
    let error = cache.get(&request).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Credentials);
    provider.fail(false);
    // Stepped forward an hour, no time passed: still within the 1 s backoff.
    clock.set_wall(t0 + Duration::from_secs(3600));
    assert!(cache.get(&request).await.is_err());
    assert_eq!(provider.calls(), 1, "held back");
    // Stepped back an hour; a second passes: the backoff is over.
    clock.set_wall(t0 - Duration::from_secs(3600));
    clock.advance(Duration::from_secs(1));
    let token = cache.get(&request).await.expect("the provider recovered");
    assert_eq!(provider.calls(), 2);
    assert!(token.is_valid_at(clock.now()));
}

/// (5) A server that rejects every token (a user without `rds_iam`) used to cost one
/// credentials-provider call per `connect()`: 20 connects, 21 calls. Now at most 3.
#[tokio::test]
async fn a_server_that_always_rejects_does_not_multiply_provider_calls() {
    let _turn = TURN.lock().await;
    let server = postgres();
    server.set_password("not a token");
    let clock = TestClock::new();
    let provider = Provider::default();
    let connector: PgConnector = iam::builder(
        cache_with(&provider, clock.clone()),
        iam::tunnel_endpoint(server.port()),
    )
    .retry_jitter(Duration::ZERO)
    .build()
    .unwrap();
    for i in 0..20 {
        let error = connector.connect().await.unwrap_err();
        assert!(error.is_rejected(), "connect {i}: {error:?}");
        clock.advance(Duration::from_secs(2));
    }
    assert!(provider.calls() <= 3, "{} provider calls", provider.calls());
    assert!(
        provider.calls() >= 2,
        "the first rejection fetched fresh credentials"
    );
}

/// (6) The doctor panicked on credentials whose expiry is past year 9999.
#[tokio::test]
async fn the_doctor_reports_credentials_that_expire_after_year_9999() {
    let _turn = TURN.lock().await;
    let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
    let provider = Provider {
        expiry: Some(far),
        ..Provider::default()
    };
    let report = Doctor::builder(
        Engine::Postgres,
        iam::tunnel_endpoint(postgres().port()),
        "iam_user",
    )
    .trust(iam::test_trust())
    .generator(TokenGenerator::new(provider))
    .sts_endpoint("http://127.0.0.1:9/")
    .connect_timeout(Duration::from_secs(2))
    .build()
    .run()
    .await;
    let credentials = report.check("credentials").expect("the step ran");
    assert_eq!(credentials.status, Status::Pass, "{credentials}");
    assert!(credentials.message.contains("expires"), "{credentials}");
}

/// (7) The doctor printed a server's bytes as they came: a fake MySQL error packet before TLS
/// forged green `✓` lines with ANSI escapes. Server text is escaped and marked unauthenticated.
#[tokio::test]
async fn the_doctor_escapes_what_an_unauthenticated_server_says() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let forged = "\x1b[32m\n\u{2713} tls: certificate verified\n\u{2713} login: logged in\x1b[0m";
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut socket, _)) = listener.accept().await {
            // An ERR packet instead of a greeting: 0xff, code 1130, `#HY000`, the message.
            let mut payload = vec![0xff, 0x6a, 0x04, b'#'];
            payload.extend_from_slice(b"HY000");
            payload.extend_from_slice(forged.as_bytes());
            let mut packet = (payload.len() as u32).to_le_bytes()[..3].to_vec();
            packet.push(0);
            packet.extend_from_slice(&payload);
            let _ = socket.write_all(&packet).await;
        }
    });
    let endpoint = Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 3306)
        .unwrap()
        .with_dial_address("127.0.0.1", port)
        .unwrap();
    let report = Doctor::builder(Engine::MySql, endpoint, "iam_user")
        .generator(TokenGenerator::new(Provider::default()))
        .sts_endpoint("http://127.0.0.1:9/")
        .connect_timeout(Duration::from_secs(2))
        .build()
        .run()
        .await;
    let tls = report.check("tls").expect("the TLS step ran");
    assert_eq!(tls.status, Status::Fail, "{tls}");
    assert!(tls.message.contains("unauthenticated"), "{tls}");
    for check in report.checks() {
        let shown = check.to_string();
        assert!(
            !shown.contains('\x1b'),
            "an escape sequence reached the output: {shown:?}"
        );
        for line in shown.lines().skip(1) {
            assert!(
                line.starts_with("    "),
                "a forged line: {line:?} in {shown:?}"
            );
        }
    }
}

/// A 1 s token lifetime: signing times count whole seconds, so late in a second less than the
/// margin (half the lifetime) is left. That used to fail about half the signings with a
/// misleading "the AWS credentials expire..."; the credentials were fine.
#[tokio::test]
async fn a_one_second_token_lifetime_signs_late_in_a_second() {
    let t0 = UNIX_EPOCH + Duration::from_secs(1_705_322_096);
    let clock = ManualClock::new(t0 + Duration::from_millis(700));
    let provider = Provider::default();
    let cache = cache_with(&provider, clock.clone());
    let endpoint = Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 5432).unwrap();
    let request = TokenRequest::rds(&endpoint, "iam_user")
        .expires_in(Duration::from_secs(1))
        .build()
        .unwrap();
    let token = cache.get(&request).await.expect("signed, not refused");
    assert_eq!(token.signed_at(), t0);
    assert_eq!(token.expires_at(), t0 + Duration::from_secs(1));
    // Credentials that do expire within the margin are still refused, with the right words.
    let short = Provider {
        expiry: Some(t0 + Duration::from_millis(900)),
        ..Provider::default()
    };
    let error = cache_with(&short, clock.clone())
        .get(&request)
        .await
        .unwrap_err();
    assert!(error.is_credentials(), "{error:?}");
    assert!(
        error.to_string().contains("the AWS credentials expire"),
        "{error}"
    );
}
