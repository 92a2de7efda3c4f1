//! Faults injected between the connectors and real servers (a loopback proxy, see
//! `support::faults`): resets and stalls at each protocol step, a half-open peer, a rejected
//! login's randomized retry, a pool checkout during a stall and a server restart under a
//! loaded pool (deadpool and bb8). Each scenario is written once, generic over the engine's
//! `Driver` (and, for pools, over the pool crate), and runs against PostgreSQL and MariaDB.
//!
//! Every case must end in a typed error within the connect timeout + 10% (or succeed once the
//! pool replaced the connection), and the token must never cross the proxy in clear.
//! Passwords and restarts affect the whole binary: the tests take turns (`TURN`).

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rds_iam_auth::connector::{Connector, ConnectorBuilder, Driver, MySql, Postgres};
use rds_iam_auth::mysql_async::prelude::Queryable;
use rds_iam_auth::pool::deadpool::managed::{self, PoolError};
use rds_iam_auth::pool::{ConnectionManager, Manager, bb8};
use rds_iam_auth::{Endpoint, Error, ErrorKind, IamAuthToken, TokenCache};
use support::faults::{Fault, FaultProxy, Step};
use support::iam::{self, TestClock};
use support::{mariadb_or_skip, postgres};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

/// The connect timeout of the fault cases: the bound every failure is measured against.
const TIMEOUT: Duration = Duration::from_millis(1000);

type Query<D> = for<'a> fn(
    &'a mut <D as Driver>::Connection,
) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// A query on a pooled connection (deadpool's `Object`; PostgreSQL's wraps the client once more).
type PoolQuery<D> = for<'a> fn(
    &'a mut managed::Object<Manager<D>>,
) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// What one checkout and query through a pool came to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Served {
    Yes,
    /// A connection, but the query failed (the server went away under it).
    QueryFailed,
    /// No connection: a typed error (this crate's, or the pool's own timeout).
    TypedError,
}

/// What a failed connect came to: a connection failure (TLS or not: the message of either is
/// "could not connect to ..."), or the connect timeout; `None` for anything else.
fn outcome(error: &Error) -> Option<Expect> {
    match error.kind() {
        ErrorKind::Connect | ErrorKind::Tls
            if error.to_string().starts_with("could not connect to ") =>
        {
            Some(Expect::Connect)
        }
        ErrorKind::Timeout if error.is_timeout() => Some(Expect::Timeout),
        _ => None,
    }
}

fn served(query_succeeded: bool) -> Served {
    if query_succeeded {
        Served::Yes
    } else {
        Served::QueryFailed
    }
}

/// A pool under load, whichever crate it is: each call checks a connection out and queries.
/// An untyped error panics.
type PoolRun = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Served> + Send>> + Send + Sync>;

/// A deadpool pool of 16 over `connector`.
fn deadpool_run<D: Driver>(connector: Connector<D>, query: PoolQuery<D>) -> PoolRun
where
    Manager<D>: managed::Manager<Error = Error>,
{
    let pool: managed::Pool<Manager<D>> = managed::Pool::builder(Manager::new(connector))
        .max_size(16)
        .build()
        .unwrap();
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            match pool.get().await {
                Ok(mut conn) => served(query(&mut conn).await),
                Err(PoolError::Backend(e)) if outcome(&e).is_some() => Served::TypedError,
                Err(other) => panic!("untyped deadpool error: {other:?}"),
            }
        })
    })
}

/// bb8's checkout bound in these scenarios (its default is 30 s): it retries failed logins
/// until then.
const BB8_CHECKOUT_TIMEOUT: Duration = Duration::from_millis(2500);

/// A bb8 pool of 16 over `connector`.
fn bb8_run<D: Driver>(connector: Connector<D>, query: Query<D>) -> PoolRun {
    let pool = bb8::Pool::builder()
        .max_size(16)
        .connection_timeout(BB8_CHECKOUT_TIMEOUT)
        .build_unchecked(ConnectionManager::new(connector));
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            match pool.get().await {
                Ok(mut conn) => served(query(&mut conn).await),
                Err(bb8::RunError::User(e)) if outcome(&e).is_some() => Served::TypedError,
                Err(bb8::RunError::TimedOut) => Served::TypedError,
                Err(other) => panic!("untyped bb8 error: {other:?}"),
            }
        })
    })
}

/// One engine, as the scenarios use it.
struct Target<D: Driver> {
    name: &'static str,
    upstream: u16,
    builder: fn(TokenCache, Endpoint) -> ConnectorBuilder<D>,
    endpoint: fn(u16) -> Endpoint,
    set_password: fn(&str),
    restart: fn(),
    /// Kills the server side of every connection of the IAM user; returns how many.
    kill: fn() -> usize,
    query: Query<D>,
}

fn pg() -> Target<Postgres> {
    Target {
        name: "PostgreSQL",
        upstream: postgres().port(),
        builder: iam::builder,
        endpoint: iam::tunnel_endpoint,
        set_password: |token| postgres().set_password(token),
        restart: || postgres().restart(),
        kill: || postgres().terminate_backends_of(postgres().user()),
        query: |c| Box::pin(async move { c.query_one("SELECT 1", &[]).await.is_ok() }),
    }
}

fn maria() -> Option<Target<MySql>> {
    let server = mariadb_or_skip()?;
    Some(Target {
        name: "MariaDB",
        upstream: server.port(),
        builder: iam::mysql_builder,
        endpoint: iam::mysql_tunnel_endpoint,
        set_password: |token| mariadb_or_skip().unwrap().set_password(token),
        restart: || mariadb_or_skip().unwrap().restart(),
        kill: || {
            let server = mariadb_or_skip().unwrap();
            server.kill_connections_of(server.user())
        },
        query: |c| Box::pin(async move { c.query_drop("SELECT 1").await.is_ok() }),
    })
}

/// A proxy in front of the target's server, a connector through it, and the token the server
/// accepts (the one the connector's cache will sign).
async fn setup<D: Driver>(
    t: &Target<D>,
    configure: impl FnOnce(ConnectorBuilder<D>) -> ConnectorBuilder<D>,
) -> (FaultProxy, Connector<D>, IamAuthToken) {
    let proxy = FaultProxy::start(t.upstream).await;
    let clock = TestClock::new();
    let builder = (t.builder)(iam::cache(&clock), (t.endpoint)(proxy.port));
    let connector = configure(builder).build().unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;
    (t.set_password)(token.expose());
    (proxy, connector, token)
}

fn assert_no_token(proxy: &FaultProxy, token: &IamAuthToken, name: &str) {
    assert!(proxy.bytes_seen() > 0, "{name}: the proxy saw traffic");
    assert!(
        !proxy.saw(token.expose().as_bytes()),
        "{name}: token in clear"
    );
    assert!(!proxy.saw(b"X-Amz-Signature"), "{name}: token in clear");
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Connect,
    Timeout,
}

async fn resets_and_stalls_at_each_step<D: Driver>(t: Target<D>) {
    let (proxy, connector, token) = setup(&t, |b| b.connect_timeout(TIMEOUT)).await;
    let password = Step::FlightOfAtLeast(token.expose().len());
    let cases = [
        (
            "reset before TLS",
            Fault::Reset {
                after: Step::Accept,
            },
            Expect::Connect,
        ),
        (
            "reset mid-TLS-handshake",
            Fault::Reset {
                after: Step::Flights(2),
            },
            Expect::Connect,
        ),
        (
            "reset after the password",
            Fault::Reset { after: password },
            Expect::Connect,
        ),
        (
            "stall before TLS",
            Fault::Stall {
                after: Step::Accept,
            },
            Expect::Timeout,
        ),
        (
            "stall mid-TLS-handshake",
            Fault::Stall {
                after: Step::Flights(2),
            },
            Expect::Timeout,
        ),
        (
            "stall after the password",
            Fault::Stall { after: password },
            Expect::Timeout,
        ),
        ("half-open peer", Fault::HalfOpen, Expect::Timeout),
    ];
    for (name, fault, expect) in cases {
        proxy.set(fault);
        let before = proxy.connections();
        let t0 = Instant::now();
        let result = connector.connect().await;
        let elapsed = t0.elapsed();
        let err = result
            .err()
            .unwrap_or_else(|| panic!("{}: {name} connected", t.name));
        let Some(got) = outcome(&err) else {
            panic!("{}: {name}: untyped outcome {err:?}", t.name)
        };
        assert_eq!(got, expect, "{}: {name}: {err}", t.name);
        if expect == Expect::Connect {
            // A reset is no TLS refusal: the kind does not claim that no token was sent.
            assert_eq!(err.kind(), ErrorKind::Connect, "{}: {name}: {err}", t.name);
        }
        assert!(
            elapsed <= TIMEOUT * 11 / 10,
            "{}: {name} took {elapsed:?}",
            t.name
        );
        if expect == Expect::Timeout {
            assert!(elapsed >= TIMEOUT, "{}: {name} ended early", t.name);
        }
        assert_eq!(
            proxy.connections() - before,
            1,
            "{}: {name}: no retry",
            t.name
        );
        assert!(
            !err.to_string().contains("X-Amz"),
            "{}: {name}: token in error",
            t.name
        );
        eprintln!(
            "[faults] {} {name}: {got:?} ({:?}) in {elapsed:?}",
            t.name,
            err.kind()
        );
    }
    proxy.set(Fault::Pass);
    let mut conn = connector.connect().await.expect("the proxy heals");
    assert!(
        (t.query)(&mut conn).await,
        "{}: a query after the faults",
        t.name
    );
    assert_no_token(&proxy, &token, t.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_stalls_at_each_protocol_step_end_in_typed_errors_in_time() {
    let _turn = TURN.lock().await;
    resets_and_stalls_at_each_step(pg()).await;
    if let Some(m) = maria() {
        resets_and_stalls_at_each_step(m).await;
    }
}

/// A rejected token's retry waits a random time within the configured bound; still exactly
/// one retry. The gap between the two connections is compared with the same gap without jitter.
async fn the_retry_waits_within_the_jitter_bound<D: Driver>(t: Target<D>) {
    const BOUND: Duration = Duration::from_millis(400);
    const RUNS: usize = 8;
    let mut gaps = Vec::new();
    for jitter in [Duration::ZERO, BOUND] {
        let (proxy, connector, _) = setup(&t, |b| b.retry_jitter(jitter)).await;
        (t.set_password)("not the token");
        let mut run_gaps = Vec::new();
        for _ in 0..RUNS {
            let before = proxy.connections();
            let Err(err) = connector.connect().await else {
                panic!("{}: a wrong password was accepted", t.name)
            };
            assert_eq!(err.kind(), ErrorKind::Rejected, "{}: {err:?}", t.name);
            assert_eq!(
                proxy.connections() - before,
                2,
                "{}: exactly one retry",
                t.name
            );
            let times = proxy.accept_times();
            run_gaps.push(times[times.len() - 1] - times[times.len() - 2]);
        }
        gaps.push(run_gaps);
    }
    let (plain, jittered) = (&gaps[0], &gaps[1]);
    let slowest_plain = *plain.iter().max().unwrap();
    let fastest_plain = *plain.iter().min().unwrap();
    let slowest = *jittered.iter().max().unwrap();
    eprintln!(
        "[faults] {} retry gaps: no jitter {plain:?}, jitter {BOUND:?}: {jittered:?}",
        t.name
    );
    // At most the bound (plus the first attempt's own time, and scheduling slack).
    assert!(
        slowest <= slowest_plain + BOUND + Duration::from_millis(100),
        "{}",
        t.name
    );
    // It does wait: 8 uniform draws all under a quarter of the bound: p = 4^-8.
    assert!(slowest >= fastest_plain + BOUND / 4, "{}: no wait", t.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_login_retries_once_after_a_bounded_random_wait() {
    let _turn = TURN.lock().await;
    the_retry_waits_within_the_jitter_bound(pg()).await;
    if let Some(m) = maria() {
        the_retry_waits_within_the_jitter_bound(m).await;
    }
}

/// 64 tasks through one pool (16 connections) while the server restarts: failures during the
/// restart are typed errors, no task panics, and once the server is back every task is served
/// by connections the pool replaced.
async fn restart_under_a_loaded_pool<D: Driver>(
    t: &Target<D>,
    kind: &str,
    pool: impl FnOnce(Connector<D>) -> PoolRun,
) {
    const TASKS: usize = 64;
    // The harness's 5 s connect timeout: 16 logins at once on a busy machine may take a while.
    let (proxy, connector, token) = setup(t, |b| b).await;
    let run = pool(connector);
    let name = format!("{} ({kind})", t.name);
    let stop = Arc::new(AtomicBool::new(false));
    let (ops, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (run, stop) = (run.clone(), stop.clone());
            let (ops, failures) = (ops.clone(), failures.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let ok = run().await == Served::Yes;
                    let counter = if ok { &ops } else { &failures };
                    counter.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    // Warm up: every task served at least twice, with no failure.
    let warm = Instant::now();
    while ops.load(Ordering::Relaxed) < 2 * TASKS {
        assert!(
            warm.elapsed() < Duration::from_secs(30),
            "{name}: no warm-up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = ops.load(Ordering::Relaxed);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "{name}: failures before the restart"
    );
    let restart = t.restart;
    tokio::task::spawn_blocking(restart).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("no task panics");
    }
    // The server is back: every task is served, by connections the pool replaced.
    let finals: Vec<_> = (0..TASKS)
        .map(|_| {
            let run = run.clone();
            tokio::spawn(async move { run().await })
        })
        .collect();
    for task in finals {
        let served = task.await.unwrap();
        assert_eq!(served, Served::Yes, "{name}: a query after the restart");
    }
    let (ops, failures) = (
        ops.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    eprintln!(
        "[faults] {name} restart under {TASKS} tasks: {ops} operations ({before} before the \
         restart), {failures} failed around it, {} connections",
        proxy.connections()
    );
    assert!(before > 0 && ops > before, "{name}: work before and after");
    assert_no_token(&proxy, &token, &name);
}

/// Pool checkouts while the server stalls mid-TLS-handshake end in typed errors within their
/// bound, without a stampede of logins, and the pool serves again once the stall is over:
/// deadpool (no timeout of its own) within the connector's timeout, after one attempt; bb8
/// within its `connection_timeout`, retrying meanwhile.
async fn checkouts_during_a_stall<D: Driver>(
    t: &Target<D>,
    kind: &str,
    pool: impl FnOnce(Connector<D>) -> PoolRun,
    bound: Duration,
) {
    const CHECKOUTS: usize = 4;
    let (proxy, connector, token) = setup(t, |b| b.connect_timeout(TIMEOUT)).await;
    let run = pool(connector);
    let name = format!("{} ({kind})", t.name);
    proxy.set(Fault::Stall {
        after: Step::Flights(2),
    });
    let t0 = Instant::now();
    let checkouts: Vec<_> = (0..CHECKOUTS)
        .map(|_| {
            let run = run.clone();
            tokio::spawn(async move { (run().await, t0.elapsed()) })
        })
        .collect();
    for checkout in checkouts {
        let (served, elapsed) = checkout.await.expect("no checkout panics");
        assert_eq!(
            served,
            Served::TypedError,
            "{name}: a checkout during a stall"
        );
        assert!(elapsed <= bound * 11 / 10, "{name}: took {elapsed:?}");
        assert!(
            elapsed >= TIMEOUT,
            "{name}: ended before any login timed out"
        );
    }
    let attempts = proxy.connections();
    // Each checkout may cause a login per connector timeout within its bound; no more.
    let most = CHECKOUTS * bound.as_millis().div_ceil(TIMEOUT.as_millis()) as usize;
    assert!((1..=most).contains(&attempts), "{name}: {attempts} logins");
    eprintln!("[faults] {name} {CHECKOUTS} checkouts during a stall: {attempts} logins");
    proxy.set(Fault::Pass);
    let healed = Instant::now();
    loop {
        // Logins still stalled when the proxy healed end at their timeout: retry until served.
        match run().await {
            Served::Yes => break,
            other => assert!(
                healed.elapsed() < bound * 2,
                "{name}: not served after the stall: {other:?}"
            ),
        }
    }
    assert_no_token(&proxy, &token, &name);
}

fn pg_query(c: &mut tokio_postgres::Client) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
    Box::pin(async move { c.query_one("SELECT 1", &[]).await.is_ok() })
}

fn pg_pool_query(
    c: &mut managed::Object<Manager<Postgres>>,
) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
    Box::pin(async move { c.query_one("SELECT 1", &[]).await.is_ok() })
}

fn maria_query<C: Queryable + Send>(c: &mut C) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
    Box::pin(async move { c.query_drop("SELECT 1").await.is_ok() })
}

fn maria_pool_query(
    c: &mut managed::Object<Manager<MySql>>,
) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
    Box::pin(async move { c.query_drop("SELECT 1").await.is_ok() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_under_64_tasks_is_survived_by_deadpool_and_bb8_pools() {
    let _turn = TURN.lock().await;
    let pg = pg();
    restart_under_a_loaded_pool(&pg, "deadpool", |c| deadpool_run(c, pg_pool_query)).await;
    restart_under_a_loaded_pool(&pg, "bb8", |c| bb8_run(c, pg_query)).await;
    if let Some(m) = maria() {
        restart_under_a_loaded_pool(&m, "deadpool", |c| deadpool_run(c, maria_pool_query)).await;
        restart_under_a_loaded_pool(&m, "bb8", |c| bb8_run(c, maria_query)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_checkouts_during_a_stall_end_in_time_and_the_pool_recovers() {
    let _turn = TURN.lock().await;
    let pg = pg();
    checkouts_during_a_stall(&pg, "deadpool", |c| deadpool_run(c, pg_pool_query), TIMEOUT).await;
    checkouts_during_a_stall(&pg, "bb8", |c| bb8_run(c, pg_query), BB8_CHECKOUT_TIMEOUT).await;
    if let Some(m) = maria() {
        let deadpool = |c| deadpool_run(c, maria_pool_query);
        checkouts_during_a_stall(&m, "deadpool", deadpool, TIMEOUT).await;
        let bb8 = |c| bb8_run(c, maria_query);
        checkouts_during_a_stall(&m, "bb8", bb8, BB8_CHECKOUT_TIMEOUT).await;
    }
}

/// Peak resident memory of this process so far (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 64 tasks through one pool for a fixed number of operations across token rotations (the
/// clock moved 10 minutes, the server accepting only the new token), with the server killing
/// every backend of the user once per rotation, at a random moment.
async fn soak<D: Driver>(t: Target<D>, query: PoolQuery<D>)
where
    Manager<D>: managed::Manager<Error = Error>,
{
    const TASKS: usize = 64;
    const ROTATIONS: usize = 4;
    const OPS: usize = 100; // per task and rotation
    let proxy = FaultProxy::start(t.upstream).await;
    let clock = TestClock::new();
    let builder = (t.builder)(iam::cache(&clock), (t.endpoint)(proxy.port));
    let connector = builder.build().unwrap();
    let request = connector.token_request().clone();
    let cache = connector.cache().clone();
    let pool: managed::Pool<Manager<D>> = managed::Pool::builder(Manager::new(connector))
        .max_size(16)
        .build()
        .unwrap();
    let (ops, failures, killed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        AtomicUsize::new(0),
    );
    let t0 = Instant::now();
    for rotation in 0..ROTATIONS {
        if rotation > 0 {
            clock.advance(Duration::from_secs(600));
        }
        (t.set_password)(iam::token_at(&request, clock.at()).await.expose());
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let pool = pool.clone();
                let (ops, failures) = (ops.clone(), failures.clone());
                tokio::spawn(async move {
                    for _ in 0..OPS {
                        let ok = match pool.get().await {
                            Ok(mut conn) => query(&mut conn).await,
                            Err(PoolError::Backend(_)) => false,
                            Err(other) => panic!("untyped pool error: {other:?}"),
                        };
                        let counter = if ok { &ops } else { &failures };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // The kill lands at a random moment of the phase.
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..200))).await;
        killed.fetch_add(
            tokio::task::spawn_blocking(t.kill).await.unwrap(),
            Ordering::Relaxed,
        );
        for task in tasks {
            task.await.expect("no task panics");
        }
    }
    let stats = cache.stats();
    let (ops, failures) = (
        ops.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    let killed = killed.load(Ordering::Relaxed);
    eprintln!(
        "[soak] {}: {TASKS} tasks, {ROTATIONS} rotations, {} s: {ops} operations, {failures} \
         failed ({killed} connections killed), {} signings, {} invalidations, {} logins, \
         peak RSS {} MiB",
        t.name,
        t0.elapsed().as_secs(),
        stats.misses + stats.refreshes,
        stats.invalidations,
        proxy.connections(),
        peak_rss_kib() / 1024
    );
    assert_eq!(ops + failures, TASKS * ROTATIONS * OPS, "{}", t.name);
    // A killed connection fails at most the one operation that finds it dead.
    assert!(
        failures <= killed,
        "{}: failures beyond the injected kills",
        t.name
    );
}

/// Run by hand: `cargo test --all-features --test faults -- --ignored --nocapture soak`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of about a minute: run by hand, figures in the README"]
async fn soak_64_tasks_per_pool_across_token_rotations_and_backend_kills() {
    let _turn = TURN.lock().await;
    soak(pg(), |c| {
        Box::pin(async move { c.query_one("SELECT 1", &[]).await.is_ok() })
    })
    .await;
    if let Some(m) = maria() {
        soak(m, |c| {
            Box::pin(async move { c.query_drop("SELECT 1").await.is_ok() })
        })
        .await;
    }
}
