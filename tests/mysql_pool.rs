//! MySQL pools across a token rotation: connections already open keep working, new ones
//! log in with the new token (the old one is no longer accepted by then).
//!
//! Needs root for the MariaDB PAM service (see `support::mariadb_or_skip`).

mod support;

use std::time::Duration;

use rds_iam_auth::MySqlConnection;
use rds_iam_auth::mysql_async::prelude::*;
use rds_iam_auth::pool::{MySqlConnectionManager, MySqlManager, MySqlPool};
use rds_iam_auth::{MySqlConnector, TokenRequest};
use support::iam::{self, TestClock};
use support::{MariaDbServer, mariadb_or_skip};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

/// Past the 15-minute token lifetime: any cache must sign anew.
const ROTATION: Duration = Duration::from_secs(16 * 60);

async fn install_token_of_now(db: &MariaDbServer, request: &TokenRequest, clock: &TestClock) {
    let token = iam::token_at(request, clock.at()).await;
    db.set_password(token.expose());
}

fn connector(db: &MariaDbServer, clock: &TestClock) -> MySqlConnector {
    iam::mysql_builder(iam::cache(clock), iam::mysql_tunnel_endpoint(db.port()))
        .build()
        .unwrap()
}

async fn connection_id(conn: &mut MySqlConnection) -> u64 {
    conn.query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn deadpool_across_a_token_rotation() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let clock = TestClock::new();
    let connector = connector(db, &clock);
    install_token_of_now(db, connector.token_request(), &clock).await;
    let pool = MySqlPool::builder(MySqlManager::new(connector.clone()))
        .max_size(4)
        .build()
        .unwrap();
    let (mut a, mut b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    let old = [connection_id(&mut a).await, connection_id(&mut b).await];

    clock.advance(ROTATION);
    install_token_of_now(db, connector.token_request(), &clock).await;

    // Old connections: untouched, still working.
    assert_eq!(connection_id(&mut a).await, old[0]);
    assert_eq!(connection_id(&mut b).await, old[1]);
    // A new physical connection: logs in with the new token.
    let mut c = pool.get().await.expect("new connection with the new token");
    assert!(!old.contains(&connection_id(&mut c).await));
    assert_eq!(pool.status().size, 3);
    // Returned and taken again: recycled (a ping), not reconnected.
    drop(a);
    let mut again = pool.get().await.unwrap();
    assert_eq!(connection_id(&mut again).await, old[0]);
}

#[tokio::test]
async fn bb8_across_a_token_rotation() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let clock = TestClock::new();
    let connector = connector(db, &clock);
    install_token_of_now(db, connector.token_request(), &clock).await;
    let pool = rds_iam_auth::pool::bb8::Pool::builder()
        .max_size(4)
        .min_idle(Some(0))
        .build(MySqlConnectionManager::new(connector.clone()))
        .await
        .unwrap();
    let (mut a, mut b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    let old = [connection_id(&mut a).await, connection_id(&mut b).await];

    clock.advance(ROTATION);
    install_token_of_now(db, connector.token_request(), &clock).await;

    assert_eq!(connection_id(&mut a).await, old[0]);
    assert_eq!(connection_id(&mut b).await, old[1]);
    let mut c = pool.get().await.expect("new connection with the new token");
    assert!(!old.contains(&connection_id(&mut c).await));
}

#[tokio::test]
async fn a_pool_reports_the_diagnostic_error() {
    let _turn = TURN.lock().await;
    let Some(db) = mariadb_or_skip() else { return };
    let clock = TestClock::new();
    db.set_password("nothing the cache will sign");
    let pool = MySqlPool::builder(MySqlManager::new(connector(db, &clock)))
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
