//! Pools across a token rotation: connections already open keep working, new ones log in
//! with the new token (the old one is no longer accepted by then).

mod support;

use std::time::Duration;

use rds_iam_auth::pool::{PgConnectionManager, PgManager, PgPool};
use rds_iam_auth::{PgConnector, TokenRequest};
use support::iam::{self, TestClock};
use support::postgres;
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

/// Past the 15-minute token lifetime: any cache must sign anew.
const ROTATION: Duration = Duration::from_secs(16 * 60);

async fn install_token_of_now(request: &TokenRequest, clock: &TestClock) {
    let token = iam::token_at(request, clock.at()).await;
    postgres().set_password(token.expose());
}

fn connector(clock: &TestClock) -> PgConnector {
    iam::builder(iam::cache(clock), iam::tunnel_endpoint(postgres().port()))
        .build()
        .unwrap()
}

async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn deadpool_across_a_token_rotation() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(&clock);
    install_token_of_now(connector.token_request(), &clock).await;
    let pool = PgPool::builder(PgManager::new(connector.clone()))
        .max_size(4)
        .build()
        .unwrap();
    let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    let old = [backend_pid(&a).await, backend_pid(&b).await];

    clock.advance(ROTATION);
    install_token_of_now(connector.token_request(), &clock).await;

    // Old connections: untouched, still working.
    assert_eq!(backend_pid(&a).await, old[0]);
    assert_eq!(backend_pid(&b).await, old[1]);
    // A new physical connection: logs in with the new token.
    let c = pool.get().await.expect("new connection with the new token");
    assert!(!old.contains(&backend_pid(&c).await));
    assert_eq!(pool.status().size, 3);
    // Returned and taken again: recycled, not reconnected.
    let pid_a = old[0];
    drop(a);
    let again = pool.get().await.unwrap();
    assert_eq!(backend_pid(&again).await, pid_a);
    // Statement cache of deadpool-postgres's ClientWrapper works.
    let st = again.prepare_cached("SELECT 1").await.unwrap();
    again.query_one(&st, &[]).await.unwrap();
}

#[tokio::test]
async fn bb8_across_a_token_rotation() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(&clock);
    install_token_of_now(connector.token_request(), &clock).await;
    let pool = rds_iam_auth::pool::bb8::Pool::builder()
        .max_size(4)
        .min_idle(Some(0))
        .build(PgConnectionManager::new(connector.clone()))
        .await
        .unwrap();
    let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    let old = [backend_pid(&a).await, backend_pid(&b).await];

    clock.advance(ROTATION);
    install_token_of_now(connector.token_request(), &clock).await;

    assert_eq!(backend_pid(&a).await, old[0]);
    assert_eq!(backend_pid(&b).await, old[1]);
    let c = pool.get().await.expect("new connection with the new token");
    assert!(!old.contains(&backend_pid(&c).await));
}

#[tokio::test]
async fn a_pool_reports_the_diagnostic_error() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    postgres().set_password("nothing the cache will sign");
    let pool = PgPool::builder(PgManager::new(connector(&clock)))
        .max_size(1)
        .build()
        .unwrap();
    match pool.get().await {
        Err(rds_iam_auth::pool::deadpool::managed::PoolError::Backend(
            rds_iam_auth::Error::AuthenticationRejected { .. },
        )) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
}
