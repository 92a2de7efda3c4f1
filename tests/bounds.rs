//! Every public async operation under every fault, as one table: each cell must end within its
//! documented bound (+10%, and a fixed slack for a loaded 2-core CI), or succeed; with no
//! panic, no token byte outside verified TLS, and at most 3 calls to the credentials provider.
//!
//! Operations: `TokenCache::get`; `PgConnector` / `MySqlConnector::connect`; deadpool
//! checkouts (PostgreSQL, MySQL) and a bb8 checkout (PostgreSQL); `IamPool::acquire` and
//! `IamPoolBuilder::build` (sqlx 0.9, PostgreSQL); `dsql::retry_occ` (its runs connect and
//! query); `Doctor::run`. Faults: a credentials provider that hangs or fails; a server that
//! stalls before TLS, mid-handshake, after the password, or once idle (a pooled connection);
//! a reset mid-handshake; a refused port; the clock stepped back or forward an hour.
//!
//! The bounds, with connect timeout `T` = 1 s, credentials timeout `C` = 1 s, sqlx
//! `acquire_timeout` `A` = 1 s, no retry jitter: `get` ≤ C; `connect` ≤ 2T (an attempt and a
//! retry after a rejection); deadpool ≤ 3T (the recycle ping, then a login and its retry);
//! bb8 ≤ its `connection_timeout` (2T); `acquire` ≤ 3A (two attempts, then the token-less
//! acquire after a credentials failure); `build` ≤ C + 2A; `retry_occ` ≤ 2T (a run that fails
//! otherwise than by a conflict is not retried); the doctor ≤ 7T (a bound per step).
//!
//! Cells run concurrently (each has its own proxy, cache and clock); the sqlx cells one after
//! another (their token names the proxy's port, and the server has one password). Run with
//! `--nocapture` to see the table; the README's copy is of one run.

mod support;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use rds_iam_auth::connector::{Connector, Driver};
use rds_iam_auth::doctor::Doctor;
use rds_iam_auth::dsql::{OccRetryPolicy, retry_occ};
use rds_iam_auth::pool::{ConnectionManager, Manager, bb8};
use rds_iam_auth::sqlx_0_9::sqlx;
use rds_iam_auth::{Endpoint, Engine, TokenCache, TokenGenerator, TokenRequest};
use support::faults::{Fault as Wire, FaultProxy, Step};
use support::iam::{self, TestClock};
use support::{mariadb_or_skip, postgres};

const T: Duration = Duration::from_secs(1);
const C: Duration = Duration::from_secs(1);
const A: Duration = Duration::from_secs(1);
/// What a loaded 2-core machine may add to any bound (besides 10%).
const SLACK: Duration = Duration::from_millis(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    TokenGet,
    PgConnect,
    MySqlConnect,
    DeadpoolPg,
    DeadpoolMySql,
    Bb8Pg,
    RetryOcc,
    Doctor,
    SqlxAcquire,
    SqlxBuild,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    HungProvider,
    FailingProvider,
    StallBeforeTls,
    StallMidTls,
    StallAfterLogin,
    StallIdle,
    Reset,
    Refused,
    ClockBack,
    ClockForward,
}

const FAULTS: [Fault; 11] = [
    Fault::None,
    Fault::HungProvider,
    Fault::FailingProvider,
    Fault::StallBeforeTls,
    Fault::StallMidTls,
    Fault::StallAfterLogin,
    Fault::StallIdle,
    Fault::Reset,
    Fault::Refused,
    Fault::ClockBack,
    Fault::ClockForward,
];

impl Op {
    fn bound(self) -> Duration {
        match self {
            Op::TokenGet => C,
            Op::PgConnect | Op::MySqlConnect | Op::RetryOcc | Op::Bb8Pg => 2 * T,
            Op::DeadpoolPg | Op::DeadpoolMySql => 3 * T,
            Op::SqlxAcquire => 3 * A,
            Op::SqlxBuild => C + 2 * A,
            Op::Doctor => 7 * T,
        }
    }
}

/// The test credentials, counted; hanging or failing on demand.
#[derive(Debug, Clone, Default)]
struct Provider {
    calls: Arc<AtomicUsize>,
    mode: Arc<AtomicUsize>,
}

const HANG: usize = 1;
const FAIL: usize = 2;

impl ProvideCredentials for Provider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.mode.load(Ordering::SeqCst) {
            HANG => future::ProvideCredentials::new(std::future::pending()),
            FAIL => future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
                "the metadata service is down",
            ))),
            _answer => future::ProvideCredentials::ready(Ok(iam::credentials())),
        }
    }
}

/// One cell: how the operation ended, how long it took, what the provider and the wire saw.
struct Cell {
    op: Op,
    fault: Fault,
    outcome: Result<(), String>,
    took: Duration,
    provider_calls: usize,
    token_in_clear: bool,
}

impl Cell {
    fn within_bound(&self) -> bool {
        self.took <= self.op.bound() + self.op.bound() / 10 + SLACK
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(()) => write!(f, "ok {:.2}s", self.took.as_secs_f64()),
            Err(kind) => write!(f, "{kind} {:.2}s", self.took.as_secs_f64()),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

type Run = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A crate error as the table names it: its kind (`Rejected`, `Timeout`...).
fn kind(error: &rds_iam_auth::Error) -> String {
    format!("{:?}", error.kind())
}

struct Setup {
    provider: Provider,
    clock: TestClock,
    cache: TokenCache,
    proxy: Option<FaultProxy>,
    /// Where connections dial: the proxy, or a refused port.
    port: u16,
}

async fn setup(upstream: u16, fault: Fault) -> Setup {
    let provider = Provider::default();
    let clock = TestClock::new();
    let cache = TokenCache::new(
        TokenGenerator::builder(provider.clone())
            .clock(clock.clone())
            .credentials_timeout(C)
            .build(),
    );
    let (proxy, port) = if fault == Fault::Refused {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        (None, listener.local_addr().unwrap().port())
    } else {
        let proxy = FaultProxy::start(upstream).await;
        let port = proxy.port;
        (Some(proxy), port)
    };
    Setup {
        provider,
        clock,
        cache,
        proxy,
        port,
    }
}

/// Applies the fault for what comes next (after the warm-up, for the idle stall).
fn apply(s: &Setup, fault: Fault, token_len: usize) {
    let wire = match fault {
        Fault::StallBeforeTls => Some(Wire::Stall {
            after: Step::Accept,
        }),
        Fault::StallMidTls => Some(Wire::Stall {
            after: Step::Flights(2),
        }),
        Fault::StallAfterLogin => Some(Wire::Stall {
            after: Step::FlightOfAtLeast(token_len),
        }),
        Fault::Reset => Some(Wire::Reset {
            after: Step::Flights(2),
        }),
        _ => None,
    };
    if let (Some(proxy), Some(wire)) = (&s.proxy, wire) {
        proxy.set(wire);
    }
    if let (Some(proxy), Fault::StallIdle) = (&s.proxy, fault) {
        proxy.stall_open_connections();
    }
    match fault {
        Fault::HungProvider => s.provider.mode.store(HANG, Ordering::SeqCst),
        Fault::FailingProvider => s.provider.mode.store(FAIL, Ordering::SeqCst),
        // An hour: past every token's and credentials' reuse.
        Fault::ClockForward => s.clock.advance(Duration::from_secs(3600)),
        _ => {}
    }
    if fault == Fault::ClockBack {
        s.clock.step_back(Duration::from_secs(3600));
    }
    // The provider and the cache forget: the fault is met by a fresh resolution.
    if matches!(fault, Fault::HungProvider | Fault::FailingProvider) {
        s.clock.advance(Duration::from_secs(16 * 60));
    }
}

/// The token the harness's servers accept (signed at the test clock's start).
async fn accepted_token(request: &TokenRequest) -> rds_iam_auth::IamAuthToken {
    iam::token_at(request, TestClock::new().at()).await
}

async fn cell(op: Op, fault: Fault) -> Option<Cell> {
    let upstream = match op {
        Op::MySqlConnect | Op::DeadpoolMySql => mariadb_or_skip()?.port(),
        _ => postgres().port(),
    };
    let s = setup(upstream, fault).await;
    let pg = |s: &Setup| {
        iam::builder(s.cache.clone(), iam::tunnel_endpoint(s.port))
            .connect_timeout(T)
            .retry_jitter(Duration::ZERO)
            .build()
            .unwrap()
    };
    let my = |s: &Setup| {
        iam::mysql_builder(s.cache.clone(), iam::mysql_tunnel_endpoint(s.port))
            .connect_timeout(T)
            .retry_jitter(Duration::ZERO)
            .build()
            .unwrap()
    };
    let token_len = accepted_token(pg(&s).token_request()).await.expose().len();
    let run: Run = match op {
        Op::TokenGet => {
            let request = pg(&s).token_request().clone();
            let cache = s.cache.clone();
            let _ = cache.get(&request).await;
            apply(&s, fault, token_len);
            Box::pin(async move { cache.get(&request).await.map(drop).map_err(|e| kind(&e)) })
        }
        Op::PgConnect => connect_run(pg(&s), &s, fault, token_len).await,
        Op::MySqlConnect => connect_run(my(&s), &s, fault, token_len).await,
        Op::DeadpoolPg => deadpool_run(pg(&s), &s, fault, token_len).await,
        Op::DeadpoolMySql => deadpool_run(my(&s), &s, fault, token_len).await,
        Op::Bb8Pg => {
            let pool = bb8::Pool::builder()
                .max_size(1)
                .connection_timeout(2 * T)
                .build_unchecked(ConnectionManager::new(pg(&s)));
            if fault == Fault::StallIdle {
                drop(pool.get().await.map_err(|e| e.to_string()));
            }
            apply(&s, fault, token_len);
            Box::pin(async move {
                let conn = pool.get().await.map_err(|e| match e {
                    bb8::RunError::User(e) => kind(&e),
                    bb8::RunError::TimedOut => "bb8 timeout".to_owned(),
                })?;
                conn.simple_query("SELECT 1")
                    .await
                    .map(drop)
                    .map_err(|_| "query failed".to_owned())
            })
        }
        Op::RetryOcc => {
            let connector = pg(&s);
            if fault == Fault::StallIdle {
                let _ = connector.connect().await;
            }
            apply(&s, fault, token_len);
            Box::pin(async move {
                let policy = OccRetryPolicy::default().base_delay(Duration::from_millis(1));
                retry_occ(&policy, || async {
                    let client = connector.connect().await?;
                    client
                        .simple_query("SELECT 1")
                        .await
                        .map(drop)
                        .map_err(BoxError::from)?;
                    Ok::<_, BoxError>(())
                })
                .await
                .map_err(|e| {
                    let e = e.into_inner();
                    match e.downcast_ref::<rds_iam_auth::Error>() {
                        Some(e) => kind(e),
                        None => "query failed".to_owned(),
                    }
                })
            })
        }
        Op::Doctor => {
            let generator = TokenGenerator::builder(s.provider.clone())
                .clock(s.clock.clone())
                .credentials_timeout(C)
                .build();
            let doctor =
                Doctor::builder(Engine::Postgres, iam::tunnel_endpoint(s.port), "iam_user")
                    .database("appdb")
                    .trust(iam::test_trust())
                    .generator(generator)
                    .sts_endpoint("http://127.0.0.1:9/")
                    .connect_timeout(T)
                    .build();
            apply(&s, fault, token_len);
            Box::pin(async move {
                let report = doctor.run().await;
                match report.logged_in() {
                    true => Ok(()),
                    false => Err("diagnosed".to_owned()),
                }
            })
        }
        Op::SqlxAcquire | Op::SqlxBuild => sqlx_run(op, &s, fault, token_len).await,
    };
    let started = Instant::now();
    // Three times the bound: a hang shows as an over-bound cell, not a stuck test.
    let outcome = match tokio::time::timeout(op.bound() * 3, tokio::spawn(run)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => panic!("{op:?} under {fault:?} panicked: {panic}"),
        Err(_) => Err("HUNG".to_owned()),
    };
    let took = started.elapsed();
    let token = accepted_token(pg(&s).token_request()).await;
    let token_in_clear = s.proxy.as_ref().is_some_and(|p| {
        p.saw(token.expose().as_bytes()) || p.saw(b"X-Amz-Signature") || p.saw(b"X-Amz-Credential")
    });
    Some(Cell {
        op,
        fault,
        outcome,
        took,
        provider_calls: s.provider.calls.load(Ordering::SeqCst),
        token_in_clear,
    })
}

async fn connect_run<D: Driver>(
    connector: Connector<D>,
    s: &Setup,
    fault: Fault,
    token_len: usize,
) -> Run {
    if fault == Fault::StallIdle {
        let _ = connector.connect().await;
    }
    apply(s, fault, token_len);
    Box::pin(async move { connector.connect().await.map(drop).map_err(|e| kind(&e)) })
}

async fn deadpool_run<D: Driver>(
    connector: Connector<D>,
    s: &Setup,
    fault: Fault,
    token_len: usize,
) -> Run
where
    Manager<D>: rds_iam_auth::pool::deadpool::managed::Manager<Error = rds_iam_auth::Error>,
    <Manager<D> as rds_iam_auth::pool::deadpool::managed::Manager>::Type: Send,
{
    use rds_iam_auth::pool::deadpool::managed::{Pool, PoolError};
    let pool: Pool<Manager<D>> = Pool::builder(Manager::new(connector))
        .max_size(1)
        .build()
        .unwrap();
    if fault == Fault::StallIdle {
        drop(pool.get().await.map_err(|e| e.to_string()));
    }
    apply(s, fault, token_len);
    Box::pin(async move {
        pool.get().await.map(drop).map_err(|e| match e {
            PoolError::Backend(e) => kind(&e),
            other => format!("deadpool {other}"),
        })
    })
}

async fn sqlx_run(op: Op, s: &Setup, fault: Fault, token_len: usize) -> Run {
    let request = TokenRequest::rds(&Endpoint::new("localhost", s.port).unwrap(), "iam_user")
        .region("us-east-1")
        .build()
        .unwrap();
    postgres().set_password(accepted_token(&request).await.expose());
    let builder = move |s: &Setup| {
        support::sqlx_0_9::builder::<sqlx::Postgres>(s.cache.clone(), s.port)
            .retry_jitter(Duration::ZERO)
            .pool_options(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(A),
            )
    };
    if op == Op::SqlxBuild {
        apply(s, fault, token_len);
        let builder = builder(s);
        return Box::pin(async move { builder.build().await.map(drop).map_err(|e| kind(&e)) });
    }
    let pool = builder(s).build_lazy().await;
    let pool = match pool {
        Ok(pool) => pool,
        Err(e) => return Box::pin(async move { Err(format!("build_lazy {}", kind(&e))) }),
    };
    if fault == Fault::StallIdle {
        drop(pool.acquire().await);
    }
    apply(s, fault, token_len);
    Box::pin(async move { pool.acquire().await.map(drop).map_err(|e| kind(&e)) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_operation_ends_within_its_bound_under_every_fault() {
    let pg_token = accepted_token(
        iam::builder(
            TokenCache::new(TokenGenerator::new(iam::credentials())),
            iam::tunnel_endpoint(1),
        )
        .build()
        .unwrap()
        .token_request(),
    )
    .await;
    let concurrent = [
        Op::TokenGet,
        Op::PgConnect,
        Op::MySqlConnect,
        Op::DeadpoolPg,
        Op::DeadpoolMySql,
        Op::Bb8Pg,
        Op::RetryOcc,
        Op::Doctor,
    ];
    if let Some(mariadb) = mariadb_or_skip() {
        let my_token = accepted_token(
            iam::mysql_builder(
                TokenCache::new(TokenGenerator::new(iam::credentials())),
                iam::mysql_tunnel_endpoint(1),
            )
            .build()
            .unwrap()
            .token_request(),
        )
        .await;
        mariadb.set_password(my_token.expose());
    }
    let mut cells = Vec::new();
    postgres().set_password(pg_token.expose());
    let tasks: Vec<_> = concurrent
        .iter()
        .flat_map(|&op| {
            FAULTS
                .iter()
                .map(move |&fault| tokio::spawn(cell(op, fault)))
        })
        .collect();
    for task in tasks {
        cells.extend(task.await.unwrap());
    }
    for op in [Op::SqlxAcquire, Op::SqlxBuild] {
        for fault in FAULTS {
            cells.extend(cell(op, fault).await);
        }
    }
    postgres().set_password(pg_token.expose());

    print_table(&cells);
    let mut failures = Vec::new();
    for c in &cells {
        if !c.within_bound() {
            failures.push(format!(
                "{:?} / {:?}: {c} over its bound {:?}",
                c.op,
                c.fault,
                c.op.bound()
            ));
        }
        if c.token_in_clear {
            failures.push(format!(
                "{:?} / {:?}: a token crossed the wire in clear",
                c.op, c.fault
            ));
        }
        if c.provider_calls > 3 {
            failures.push(format!(
                "{:?} / {:?}: {} provider calls",
                c.op, c.fault, c.provider_calls
            ));
        }
        if c.fault == Fault::None && c.outcome.is_err() {
            failures.push(format!("{:?} without a fault: {c}", c.op));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn print_table(cells: &[Cell]) {
    let ops: Vec<Op> = {
        let mut ops: Vec<Op> = cells.iter().map(|c| c.op).collect();
        ops.dedup();
        ops
    };
    print!("| fault |");
    for op in &ops {
        print!(" {op:?} ({:.0} s) |", op.bound().as_secs_f64());
    }
    println!();
    println!("|---|{}", "---|".repeat(ops.len()));
    for fault in FAULTS {
        print!("| {fault:?} |");
        for op in &ops {
            match cells.iter().find(|c| c.op == *op && c.fault == fault) {
                Some(c) => print!(" {c} |"),
                None => print!(" - |"),
            }
        }
        println!();
    }
}
