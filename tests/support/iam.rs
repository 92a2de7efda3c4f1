//! IAM-side helpers for connector tests: fixed test credentials, a clock the test moves,
//! connectors aimed at the throwaway PostgreSQL or MariaDB, and a counting TCP proxy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rds_iam_auth::clock::{Clock, FixedClock};
#[cfg(feature = "mysql")]
use rds_iam_auth::connector::MySqlConnectorBuilder;
#[cfg(feature = "postgres")]
use rds_iam_auth::connector::PgConnectorBuilder;
use rds_iam_auth::{
    Credentials, Endpoint, IamAuthToken, TokenCache, TokenGenerator, TokenRequest, TrustStore,
};
use tokio::net::{TcpListener, TcpStream};

use super::engine::TestEngine;
use super::{RDS_HOSTNAME, certs};

/// 2024-01-15T12:34:56Z: tokens are deterministic; PostgreSQL compares text only.
pub const T0: u64 = 1_705_322_096;
/// The port the RDS-looking name is signed for (the harness listens elsewhere).
pub const SIGNING_PORT: u16 = 5432;
/// The same for MySQL: the port RDS for MySQL listens on.
pub const MYSQL_SIGNING_PORT: u16 = 3306;

pub fn credentials() -> Credentials {
    Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        None,
        None,
        "test",
    )
}

/// A clock at `T0 + offset`, moved by the test (clones share the time). Its monotonic face
/// moves with [`advance`](Self::advance) (time passing) and not with
/// [`step_back`](Self::step_back) (a wall clock set back): the instant the clock was made,
/// plus the time advanced.
#[derive(Debug, Clone)]
pub struct TestClock(Arc<AtomicU64>, std::time::Instant, Arc<AtomicU64>);

impl TestClock {
    pub fn new() -> Self {
        Self(
            Arc::new(AtomicU64::new(T0)),
            std::time::Instant::now(),
            Arc::new(AtomicU64::new(0)),
        )
    }
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::SeqCst);
        self.2.fetch_add(by.as_secs(), Ordering::SeqCst);
    }
    /// The wall clock is set back by `by`; no time passes.
    pub fn step_back(&self, by: Duration) {
        self.0.fetch_sub(by.as_secs(), Ordering::SeqCst);
    }
    pub fn at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
    /// How many clones of this clock exist (this one included): a generator, a cache, or a
    /// task holding one keeps a clone, so a count back at 1 means all of them were dropped.
    pub fn holders(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        self.at()
    }
    fn instant(&self) -> std::time::Instant {
        self.1 + Duration::from_secs(self.2.load(Ordering::SeqCst))
    }
}

pub fn cache(clock: &TestClock) -> TokenCache {
    TokenCache::new(
        TokenGenerator::builder(credentials())
            .clock(clock.clone())
            .build(),
    )
}

/// The token a connector built by [`connector`] would get when the clock reads `at`.
pub async fn token_at(request: &TokenRequest, at: SystemTime) -> IamAuthToken {
    TokenGenerator::builder(credentials())
        .clock(FixedClock::new(at))
        .build()
        .generate(request)
        .await
        .expect("sign")
}

/// Trust only the harness's test CA.
pub fn test_trust() -> TrustStore {
    TrustStore::empty()
        .with_ca_pem(certs().ca.cert_pem.as_bytes())
        .expect("test CA")
}

/// The tunnel case: signed for (and TLS-verified as) the RDS-looking name on
/// `signing_port`, TCP to `127.0.0.1:dial_port`.
pub fn rds_tunnel(signing_port: u16, dial_port: u16) -> Endpoint {
    Endpoint::new(RDS_HOSTNAME, signing_port)
        .unwrap()
        .with_dial_address("127.0.0.1", dial_port)
        .unwrap()
}

/// [`rds_tunnel`] for PostgreSQL (signed for port 5432).
pub fn tunnel_endpoint(dial_port: u16) -> Endpoint {
    rds_tunnel(SIGNING_PORT, dial_port)
}

/// [`rds_tunnel`] for MySQL (signed for port 3306).
pub fn mysql_tunnel_endpoint(dial_port: u16) -> Endpoint {
    rds_tunnel(MYSQL_SIGNING_PORT, dial_port)
}

/// A MySQL connector for the throwaway MariaDB's IAM user and database, trusting only the
/// test CA. Starts no server.
#[cfg(feature = "mysql")]
pub fn mysql_builder(cache: TokenCache, endpoint: Endpoint) -> MySqlConnectorBuilder {
    <rds_iam_auth::connector::MySql as TestEngine>::builder(cache, endpoint)
}

/// A PostgreSQL connector for the throwaway server's IAM user and database, trusting only
/// the test CA.
#[cfg(feature = "postgres")]
pub fn builder(cache: TokenCache, endpoint: Endpoint) -> PgConnectorBuilder {
    <rds_iam_auth::connector::Postgres as TestEngine>::builder(cache, endpoint)
}

/// A TCP proxy to a loopback port (a throwaway server's) that counts connections and calls `on_accept` (blocking, on a blocking
/// thread) with the connection's number (1-based) before it connects upstream.
pub struct CountingProxy {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl CountingProxy {
    pub async fn start_to(
        upstream: u16,
        on_accept: impl Fn(usize) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let on_accept = Arc::new(on_accept);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let hook = on_accept.clone();
                tokio::spawn(async move {
                    tokio::task::spawn_blocking(move || hook(n)).await.unwrap();
                    let mut server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Self { port, accepted }
    }

    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// What the observability tests watch: a PostgreSQL login through a tunnel, then a login
/// whose token the server refuses twice. Returns the first login's token and the second
/// login's error.
#[cfg(feature = "postgres")]
pub async fn login_then_rejection() -> (IamAuthToken, rds_iam_auth::Error) {
    let pg = super::postgres();
    let clock = TestClock::new();
    let connector = builder(cache(&clock), tunnel_endpoint(pg.port()))
        .build()
        .unwrap();
    let token = token_at(connector.token_request(), clock.at()).await;
    pg.set_password(token.expose());
    connector.connect().await.expect("login");
    pg.set_password("not the token");
    let error = connector.connect().await.expect_err("rejected");
    (token, error)
}
