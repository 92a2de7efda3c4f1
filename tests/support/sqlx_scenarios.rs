//! sqlx pools (`rds_iam_auth::sqlx_0_9` and `sqlx_0_8`) against the harness's real servers
//! and the capturing fake servers, written once for both engines and both sqlx versions
//! (`support/sqlx_0_9.rs` and `support/sqlx_0_8.rs` compile this file, each against its
//! version): run them from an engine's test file with [`sqlx_scenarios!`](crate::sqlx_scenarios).
//!
//! sqlx verifies TLS against the host it dials, so these pools dial `localhost` (a SAN of
//! the harness's certificates) on the server's own port and sign for that, region given.
//! Scenarios that change the IAM user's password take turns (the file's `TURN`).

use std::time::Duration;

use super::iam_sqlx::sqlx::pool::PoolConnection;
use super::iam_sqlx::{IamDatabase, IamPool, IamPoolBuilder, sqlx};
use rds_iam_auth::{Endpoint, Error, ErrorKind, IamAuthToken, TokenCache, TokenRequest};

use crate::support::capture::{CaptureServer, error_chain};
use crate::support::engine::TestEngine;
use crate::support::iam::{self, CountingProxy, TestClock, test_trust};
use crate::support::{CertFiles, certs};

/// Past the 15-minute token lifetime: any cache must sign anew.
const ROTATION: Duration = Duration::from_secs(16 * 60);

/// An engine's sqlx side: its test server (through the connector tests' [`TestEngine`]),
/// and how a test asks a pooled connection who and where it is.
#[allow(async_fn_in_trait)]
pub trait SqlxEngine: IamDatabase {
    /// The same engine's connector driver: its throwaway server, hints and users.
    type Server: TestEngine;
    /// sqlx's pool options for this engine, with `max_connections`.
    fn pool_options(max: u32) -> sqlx::pool::PoolOptions<Self>;
    /// `SELECT 1` straight on sqlx's pool.
    async fn select_one(pool: &sqlx::Pool<Self>) -> i64;
    /// The server's id of the session (a new login gets a new one).
    async fn session_id(conn: &mut PoolConnection<Self>) -> u64;
    /// The session's database.
    async fn current_database(conn: &mut PoolConnection<Self>) -> String;
    /// Whether the session runs over TLS, as the server sees it.
    async fn uses_tls(conn: &mut PoolConnection<Self>) -> bool;
    /// Panics unless `source` is sqlx's "wrong password" error for this engine.
    fn assert_invalid_password(source: &(dyn std::error::Error + 'static));
    /// A fake server offering TLS with `cert` (rejects the password it records).
    async fn fake_with_tls(cert: &'static CertFiles) -> CaptureServer;
    /// Fake servers that offer no TLS (or try to get a password without it).
    async fn fakes_without_tls() -> Vec<CaptureServer>;
}

/// A pool builder for the IAM user on `localhost:port`, signed for us-east-1, trusting
/// only the test CA.
pub fn builder<D: SqlxEngine>(cache: TokenCache, port: u16) -> IamPoolBuilder<D> {
    IamPool::<D>::builder(cache, Endpoint::new("localhost", port).unwrap(), "iam_user")
        .database("appdb")
        .region("us-east-1")
        .trust(test_trust())
        .pool_options(D::pool_options(8).acquire_timeout(Duration::from_secs(5)))
}

pub(super) async fn install_token_of_now<D: SqlxEngine>(request: &TokenRequest, clock: &TestClock) {
    let token = iam::token_at(request, clock.at()).await;
    D::Server::set_password(token.expose());
}

/// The request a pool built by [`builder`] for `port` asks the cache for.
pub(super) fn request<D: SqlxEngine>(port: u16) -> TokenRequest {
    let endpoint = Endpoint::new("localhost", port).unwrap();
    TokenRequest::rds(&endpoint, "iam_user")
        .region("us-east-1")
        .build()
        .unwrap()
}

/// A pool built by [`builder`] for `port` (one login proven), the server accepting the token
/// of `clock`'s now.
pub(super) async fn built_pool<D: SqlxEngine>(port: u16, clock: &TestClock) -> IamPool<D> {
    install_token_of_now::<D>(&request::<D>(port), clock).await;
    builder::<D>(iam::cache(clock), port).build().await.unwrap()
}

/// Logs in over TLS, as the IAM user, in its database; queries straight on the pool work too.
pub async fn connects_and_queries_over_tls<D: SqlxEngine>() {
    let Some(port) = D::Server::server_port() else {
        return;
    };
    let clock = TestClock::new();
    let pool = built_pool::<D>(port, &clock).await;
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(D::current_database(&mut conn).await, "appdb");
    assert!(D::uses_tls(&mut conn).await, "TLS");
    drop(conn);
    // The pool as sqlx's own `Pool` (what `&PgPool` / `&MySqlPool` callers get).
    assert_eq!(D::select_one(pool.pool()).await, 1);
    pool.close().await;
}

/// A pool of 8 across a 16-minute rotation on a shared fake clock: the 4 connections opened
/// before keep working; the 4 opened after (3 through `IamPool::acquire`, 1 through sqlx's own
/// acquire) log in with the new token, the only one the server accepts by then.
pub async fn a_pool_of_8_across_a_token_rotation<D: SqlxEngine>() {
    let Some(port) = D::Server::server_port() else {
        return;
    };
    let clock = TestClock::new();
    let pool = built_pool::<D>(port, &clock).await;
    let first = pool.cache().get(pool.token_request()).await.unwrap();
    let mut old = Vec::new();
    for _ in 0..4 {
        old.push(pool.acquire().await.unwrap());
    }
    let mut ids = Vec::new();
    for conn in &mut old {
        ids.push(D::session_id(conn).await);
    }

    clock.advance(ROTATION);
    install_token_of_now::<D>(pool.token_request(), &clock).await;

    let mut new = Vec::new();
    for _ in 0..3 {
        new.push(
            pool.acquire()
                .await
                .expect("a new login with the new token"),
        );
    }
    // The token was installed by the acquires above: sqlx's own path gets it too.
    new.push(
        pool.pool()
            .acquire()
            .await
            .expect("sqlx's acquire, new token"),
    );
    for conn in &mut new {
        ids.push(D::session_id(conn).await);
    }
    for (conn, id) in old.iter_mut().zip(&ids) {
        assert_eq!(D::session_id(conn).await, *id, "old connections untouched");
    }
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 8, "8 physical connections: {ids:?}");
    assert_eq!(pool.size(), 8);
    let current = pool.cache().get(pool.token_request()).await.unwrap();
    assert!(!current.same_token(&first), "the token changed");
    drop((old, new));
    pool.close().await;
}

/// A pool handed to another owner (sea-orm, axum state: `pool.pool().clone()`) keeps fresh
/// tokens after the last `IamPool` handle is dropped: the refresher lives as long as the sqlx
/// pool. After a 16-minute rotation, sqlx's own acquire (nothing of ours on its path) opens a
/// new connection with the new token, the only one the server accepts by then.
pub async fn a_pool_handed_over_logs_in_after_a_rotation<D: SqlxEngine>() {
    let Some(port) = D::Server::server_port() else {
        return;
    };
    let clock = TestClock::new();
    let pool = built_pool::<D>(port, &clock).await;
    let cache = pool.cache().clone();
    let request = pool.token_request().clone();
    let handed_over: sqlx::Pool<D> = pool.pool().clone();
    drop(pool);

    let mut conn = handed_over.acquire().await.unwrap();
    let before = D::session_id(&mut conn).await;
    conn.close().await.unwrap();
    clock.advance(ROTATION);
    install_token_of_now::<D>(&request, &clock).await;
    // The refresher sleeps on a real timer until the refresh point; the test's clock jumped
    // past it, so wake it as a rotation does: the cache holds a new token.
    let new = cache.get(&request).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        match handed_over.acquire().await {
            Ok(conn) => break conn,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the refresher never installed the new token: {e}"),
        }
    };
    assert_ne!(D::session_id(&mut conn).await, before, "a new login");
    assert!(
        cache.get(&request).await.unwrap().same_token(&new),
        "logged in with the rotated token"
    );
    drop(conn);
    handed_over.close().await;
}

/// Closing the sqlx pool (sqlx's `close`, which sea-orm's `close` calls) ends the refresher,
/// which then drops what it held (the cache, its generator and clock): nothing is left behind.
/// Before the close, the refresher outlives the dropped `IamPool` handle.
pub async fn closing_the_pool_ends_the_refresher<D: SqlxEngine>() {
    let port = D::Server::server_port().unwrap_or(9);
    let clock = TestClock::new();
    let pool = builder::<D>(iam::cache(&clock), port)
        .build_lazy()
        .await
        .unwrap();
    let handed_over: sqlx::Pool<D> = pool.pool().clone();
    drop(pool);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        clock.holders() > 1,
        "the refresher (and the cache it holds) outlives the handle"
    );

    handed_over.close().await;
    drop(handed_over);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while clock.holders() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} clones of the clock left 5 s after the close: the refresher still runs",
            clock.holders() - 1
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The process was frozen past the token's life (the test moves the clock; the refresher's
/// timer, up to a minute away, has not fired): sqlx's own acquire would log in with the stale
/// token and is refused; `IamPool::acquire` installs the current one first, without a
/// rejection on the way.
pub async fn after_a_freeze_acquire_installs_a_current_token_first<D: SqlxEngine>() {
    let Some(port) = D::Server::server_port() else {
        return;
    };
    let clock = TestClock::new();
    install_token_of_now::<D>(&request::<D>(port), &clock).await;
    // Lazy: no idle connection returned by `build` that sqlx's acquire could reuse.
    let pool = builder::<D>(iam::cache(&clock), port)
        .build_lazy()
        .await
        .unwrap();
    // Held: the next acquires must open new connections (new logins).
    let _held = pool.acquire().await.unwrap();

    clock.advance(ROTATION);
    install_token_of_now::<D>(pool.token_request(), &clock).await;

    let stale = pool.pool().acquire().await.expect_err("the stale token");
    let sqlx::Error::Database(_) = &stale else {
        panic!("{stale:?}")
    };
    D::assert_invalid_password(&stale);
    let invalidations = pool.cache().stats().invalidations;

    let mut conn = pool
        .acquire()
        .await
        .expect("the current token, installed first");
    assert_eq!(D::current_database(&mut conn).await, "appdb");
    assert_eq!(
        pool.cache().stats().invalidations,
        invalidations,
        "no rejection was needed"
    );
    drop((conn, _held));
    pool.close().await;
}

/// An invalidation wakes the refresher at once: sqlx's own acquire (never ours here) logs in
/// with the token signed after it, well before the refresher's next timer (a minute away).
pub async fn the_refresher_installs_a_new_token_after_an_invalidation<D: SqlxEngine>() {
    let Some(port) = D::Server::server_port() else {
        return;
    };
    let clock = TestClock::new();
    let request = request::<D>(port);
    let pool = builder::<D>(iam::cache(&clock), port)
        .build_lazy()
        .await
        .unwrap();
    let first = pool.cache().get(&request).await.unwrap();
    clock.advance(Duration::from_secs(60));
    install_token_of_now::<D>(&request, &clock).await;
    pool.cache().invalidate(&request, &first);

    let started = std::time::Instant::now();
    let mut conn = loop {
        match pool.pool().acquire().await {
            Ok(conn) => break conn,
            Err(e) if started.elapsed() < Duration::from_secs(3) => {
                D::assert_invalid_password(&e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the refresher did not install the new token: {e}"),
        }
    };
    assert_eq!(D::current_database(&mut conn).await, "appdb");
    drop(conn);
    pool.close().await;
}

/// The server stops accepting the token the cache holds: the pool invalidates it, installs
/// a fresh one and tries exactly once more (the proxy moves the clock and installs the token
/// of the new time while the first login is on its way).
pub async fn a_rejected_token_is_replaced_and_retried_once<D: SqlxEngine>() {
    let Some(port) = D::Server::server_port() else {
        return;
    };
    let clock = TestClock::new();
    D::Server::set_password("not the token");
    let hook_clock = clock.clone();
    // The first login moves the clock on: after the invalidation, the cache signs the
    // token of the new time (the same time would sign the same, rejected, token).
    let proxy = CountingProxy::start_to(port, move |n| {
        if n == 1 {
            hook_clock.advance(Duration::from_secs(60));
        }
    })
    .await;
    let proxied = request::<D>(proxy.port);
    let pool = builder::<D>(iam::cache(&clock), proxy.port)
        .retry_jitter(Duration::ZERO)
        .build_lazy()
        .await
        .unwrap();
    let stale = pool.cache().get(&proxied).await.unwrap();
    // What the server will accept: the token of the time the hook moves the clock to.
    let next = iam::token_at(&proxied, clock.at() + Duration::from_secs(60)).await;
    D::Server::set_password(next.expose());

    let mut conn = pool.acquire().await.expect("the retry logs in");
    assert_eq!(D::current_database(&mut conn).await, "appdb");
    assert_eq!(proxy.connections(), 2, "exactly one retry");
    let fresh = pool.cache().get(&proxied).await.unwrap();
    assert!(!fresh.same_token(&stale));
    assert!(fresh.same_token(&next));
    assert_eq!(pool.cache().stats().invalidations, 1);
    drop(conn);
    pool.close().await;
}

/// Rejected twice: the diagnostic error, sqlx's error as its source, no token shown.
pub async fn a_token_that_keeps_failing_gives_the_diagnostic_error<D: SqlxEngine>() {
    let Some(port) = D::Server::server_port() else {
        return;
    };
    D::Server::set_password("some other password");
    let proxy = CountingProxy::start_to(port, |_| {}).await;
    let clock = TestClock::new();
    let token = iam::token_at(&request::<D>(proxy.port), clock.at()).await;
    let err = builder::<D>(iam::cache(&clock), proxy.port)
        .build()
        .await
        .expect_err("rejected twice");
    assert_eq!(proxy.connections(), 2, "one retry, no more");
    crate::support::scenarios::assert_rejection_diagnostic::<D::Server>(
        &err,
        &token,
        ("localhost", proxy.port),
        D::assert_invalid_password,
    );
}

/// A tunnelled endpoint is refused, saying why and what to do; no connection is tried.
pub async fn a_tunnel_is_refused_with_the_way_around<D: SqlxEngine>() {
    let clock = TestClock::new();
    let err = IamPool::<D>::builder(
        iam::cache(&clock),
        D::Server::tunnel_endpoint(1),
        "iam_user",
    )
    .build_lazy()
    .await
    .expect_err("tunnel");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    assert_eq!(err.setting(), Some("dial_address"), "{err:?}");
    let msg = err.to_string();
    for expected in [
        "127.0.0.1:1",
        "hosts-file",
        "verifies the server's certificate",
    ] {
        assert!(msg.contains(expected), "{expected:?} missing from: {msg}");
    }
}

/// `Debug` of the builder and the pool: endpoint and sizes, never a password or a token.
pub async fn debug_shows_no_secret<D: SqlxEngine>() {
    let clock = TestClock::new();
    let b = builder::<D>(iam::cache(&clock), 1);
    let token = iam::token_at(&request::<D>(1), clock.at()).await;
    let shown = format!("{b:?}");
    assert!(shown.contains("localhost"), "{shown}");
    let pool = b.build_lazy().await.unwrap();
    let shown = format!("{shown} {pool:?} {:?}", pool.pool());
    assert!(shown.contains("IamPool"), "{shown}");
    assert!(!shown.contains(token.expose()), "{shown}");
    assert!(!shown.to_lowercase().contains("password"), "{shown}");
    pool.close().await;
}

/// The token never leaves the process outside verified TLS: a fake server without TLS (or
/// stripping it), with a certificate from another CA or for another name gets an error and
/// no byte of the token or of the login; a trusted one (the positive control) sees both.
pub async fn no_token_byte_without_verified_tls<D: SqlxEngine>() {
    let positive = D::fake_with_tls(&certs().server).await;
    let (err, token) = login_to::<D>(&positive).await;
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err:?}");
    assert!(
        positive.saw(token.expose().as_bytes()),
        "the capture must see a token sent over verified TLS, else the checks below prove nothing"
    );
    let mut refused = D::fakes_without_tls().await;
    refused.push(D::fake_with_tls(&certs().other_ca_server).await);
    refused.push(D::fake_with_tls(&certs().wrong_name).await);
    for server in &refused {
        let (err, token) = login_to::<D>(server).await;
        let chain = error_chain(&err);
        assert_eq!(err.kind(), ErrorKind::Tls, "{chain}");
        assert!(server.connections() >= 1, "it was tried: {chain}");
        server.assert_never_saw(token.expose(), &[b"iam_user"]);
    }
}

/// The certificate errors name their cause, through sqlx's error chain.
pub async fn certificate_errors_name_the_cause<D: SqlxEngine>() {
    for (cert, cause, hint) in [
        (&certs().other_ca_server, "UnknownIssuer", "with_ca_file"),
        (
            &certs().wrong_name,
            "NotValidForName",
            "not valid for the signing hostname",
        ),
    ] {
        let server = D::fake_with_tls(cert).await;
        let (err, _) = login_to::<D>(&server).await;
        let chain = error_chain(&err);
        assert!(chain.contains(cause), "{cause} not in {chain}");
        assert!(err.to_string().contains(hint), "{hint} not in {err}");
    }
}

/// One acquire against a fake server; its error and the token the pool held.
async fn login_to<D: SqlxEngine>(server: &CaptureServer) -> (Error, IamAuthToken) {
    let clock = TestClock::new();
    let pool = builder::<D>(iam::cache(&clock), server.port)
        .pool_options(D::pool_options(1).acquire_timeout(Duration::from_secs(3)))
        .retry_jitter(Duration::ZERO)
        .build_lazy()
        .await
        .unwrap();
    let token = pool.cache().get(pool.token_request()).await.unwrap();
    let err = pool
        .acquire()
        .await
        .expect_err("the fake server never lets in");
    pool.close().await;
    (err, token)
}
