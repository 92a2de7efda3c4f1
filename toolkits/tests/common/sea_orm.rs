//! The sea-orm scenarios, written once for both sea-orm lines and both engines: each test
//! file (`sea_orm_1.rs`, `sea_orm_2.rs`) includes this module beside a `versions` module
//! naming its sea-orm, the harness's sqlx support of the matching sqlx, and sea-orm's
//! raw-query call (`query_one` in 1.1, `query_one_raw` in 2.0).
//!
//! sea-orm gets `IamPool::pool().clone()`: queries through sea-orm use sqlx's own acquire,
//! so new connections log in with the token the pool's refresher installed.

use std::time::Duration;

use super::versions::harness::{SqlxEngine, builder};
use super::versions::iam_sqlx::sqlx;
use super::versions::query_one;
use super::versions::sea_orm::{DatabaseConnection, DbBackend, DbErr, Statement};
use crate::support::engine::TestEngine;
use crate::support::iam::{self, TestClock};

/// Past the 15-minute token lifetime: any cache must sign anew.
const ROTATION: Duration = Duration::from_secs(16 * 60);

/// What sea-orm needs to know of an engine.
pub trait SeaOrmEngine: SqlxEngine {
    const BACKEND: DbBackend;
    /// The server's id of the session, as a signed 64-bit integer.
    const SESSION_ID: &'static str;
    /// sea-orm's connection over sqlx's pool (its `From<Pool>`).
    fn database(pool: sqlx::Pool<Self>) -> DatabaseConnection;
}

impl SeaOrmEngine for sqlx::Postgres {
    const BACKEND: DbBackend = DbBackend::Postgres;
    const SESSION_ID: &'static str = "SELECT pg_backend_pid()::int8";
    fn database(pool: sqlx::PgPool) -> DatabaseConnection {
        super::versions::sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
    }
}

impl SeaOrmEngine for sqlx::MySql {
    const BACKEND: DbBackend = DbBackend::MySql;
    const SESSION_ID: &'static str = "SELECT CAST(CONNECTION_ID() AS SIGNED)";
    fn database(pool: sqlx::MySqlPool) -> DatabaseConnection {
        super::versions::sea_orm::SqlxMySqlConnector::from_sqlx_mysql_pool(pool)
    }
}

/// The session id of the connection sea-orm ran the query on.
async fn session_id<D: SeaOrmEngine>(db: &DatabaseConnection) -> Result<i64, DbErr> {
    let stmt = Statement::from_string(D::BACKEND, D::SESSION_ID);
    let row = query_one(db, stmt).await?.expect("one row");
    row.try_get_by_index(0)
}

/// sea-orm owns the pool (the `IamPool` handle is dropped, as when a pool is handed to
/// sea-orm at startup); its queries need new connections after a 16-minute rotation (the
/// earlier ones are held) and log in with the new token, the only one the server accepts.
pub async fn a_query_through_sea_orm_after_a_token_rotation<D: SeaOrmEngine>() {
    let Some(port) = D::Server::server_port() else {
        return;
    };
    let clock = TestClock::new();
    let pool = builder::<D>(iam::cache(&clock), port)
        .build_lazy()
        .await
        .unwrap();
    let (cache, request) = (pool.cache().clone(), pool.token_request().clone());
    D::Server::set_password(iam::token_at(&request, clock.at()).await.expose());
    let sqlx_pool: sqlx::Pool<D> = pool.pool().clone();
    let db = D::database(sqlx_pool.clone());
    drop(pool);

    let held = sqlx_pool.acquire().await.unwrap();
    let before = session_id::<D>(&db).await.expect("sea-orm, first token");
    // The connection sea-orm used, held too once sqlx has put it back (a task of its own):
    // the next query needs a new login.
    while sqlx_pool.num_idle() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut also_held = sqlx_pool.acquire().await.unwrap();
    assert_eq!(D::session_id(&mut also_held).await, before as u64);

    clock.advance(ROTATION);
    let token = iam::token_at(&request, clock.at()).await;
    D::Server::set_password(token.expose());
    // The refresher sleeps on a real timer until the refresh point, which the test's clock
    // jumped past: wake it as a rotation does, with a new token in the cache.
    let current = cache.get(&request).await.unwrap();
    assert!(
        current.same_token(&token),
        "the cache signed the token of now"
    );

    let started = std::time::Instant::now();
    let after = loop {
        match session_id::<D>(&db).await {
            Ok(id) => break id,
            Err(e) if started.elapsed() < Duration::from_secs(5) => {
                // Only the stale token's rejection, until the refresher has run.
                let e = format!("{e:?}");
                assert!(e.contains("28P01") || e.contains("1045"), "{e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("no login through sea-orm after the rotation: {e}"),
        }
    };
    assert_ne!(after, before, "a new physical connection");
    assert_eq!(sqlx_pool.size(), 3, "two held, one new");
    drop((held, also_held));
    db.close().await.unwrap();
}

/// `DatabaseConnection::close` closes the sqlx pool the crate built (no acquire after it),
/// and so ends its token refresh: the refresher drops what it held (the cache, its generator
/// and clock) within a few seconds, nothing left behind.
pub async fn sea_orm_close_closes_the_pool<D: SeaOrmEngine>() {
    let Some(port) = D::Server::server_port() else {
        return;
    };
    let clock = TestClock::new();
    let pool = builder::<D>(iam::cache(&clock), port)
        .build_lazy()
        .await
        .unwrap();
    D::Server::set_password(
        iam::token_at(pool.token_request(), clock.at())
            .await
            .expose(),
    );
    let sqlx_pool: sqlx::Pool<D> = pool.pool().clone();
    let db = D::database(sqlx_pool.clone());
    drop(pool);
    session_id::<D>(&db).await.expect("a query");
    assert!(
        clock.holders() > 1,
        "the refresher runs while sea-orm holds the pool"
    );

    db.close().await.unwrap();
    assert!(sqlx_pool.is_closed(), "sea-orm's close closed sqlx's pool");
    let err = sqlx_pool.acquire().await.expect_err("closed");
    assert!(matches!(err, sqlx::Error::PoolClosed), "{err:?}");
    drop(sqlx_pool);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while clock.holders() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} clones of the clock left 5 s after sea-orm's close: the refresher still runs",
            clock.holders() - 1
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One `#[tokio::test]` per scenario and engine, taking turns on the calling file's `TURN`
/// (each changes the IAM user's password).
#[macro_export]
macro_rules! sea_orm_scenarios {
    ($($name:ident: $scenario:ident::<$db:ty>,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let _turn = TURN.lock().await;
                scenarios::$scenario::<$db>().await;
            }
        )*
    };
}
