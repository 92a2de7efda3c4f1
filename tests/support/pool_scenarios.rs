//! Pools across a token rotation, written once for every engine: connections already open
//! keep working, new ones log in with the new token (the old one is no longer accepted by
//! then). Run them from an engine's test file with [`pool_scenarios!`](crate::pool_scenarios).

use std::time::Duration;

use rds_iam_auth::connector::Connector;
use rds_iam_auth::pool::deadpool::managed::{self, PoolError};
use rds_iam_auth::pool::{ConnectionManager, Manager, bb8};
use rds_iam_auth::{Error, ErrorKind, TokenRequest};

use super::engine::TestEngine;
use super::iam::{self, TestClock};

/// Past the 15-minute token lifetime: any cache must sign anew.
const ROTATION: Duration = Duration::from_secs(16 * 60);

/// What deadpool keeps for an engine (`Manager<D>`'s objects are the library's business).
#[allow(async_fn_in_trait)]
pub trait TestPool: TestEngine {
    /// The deadpool object of this engine's `Manager`.
    type Object;
    /// The connection inside a pooled object.
    fn pooled(object: &mut Self::Object) -> &mut Self::Connection;
    /// What the engine's pooled object adds, checked on a recycled object.
    async fn check_recycled(object: &mut Self::Object);
}

async fn install_token_of_now<D: TestEngine>(request: &TokenRequest, clock: &TestClock) {
    let token = iam::token_at(request, clock.at()).await;
    D::set_password(token.expose());
}

fn connector<D: TestEngine>(port: u16, clock: &TestClock) -> Connector<D> {
    D::builder(iam::cache(clock), D::tunnel_endpoint(port))
        .build()
        .unwrap()
}

async fn pooled_id<D: TestPool>(object: &mut D::Object) -> u64 {
    D::session_id(D::pooled(object)).await
}

pub async fn deadpool_across_a_token_rotation<D: TestPool>()
where
    Manager<D>: managed::Manager<Type = D::Object, Error = Error>,
{
    let Some(port) = D::server_port() else { return };
    let clock = TestClock::new();
    let connector = connector::<D>(port, &clock);
    install_token_of_now::<D>(connector.token_request(), &clock).await;
    let pool: managed::Pool<Manager<D>> = managed::Pool::builder(Manager::new(connector.clone()))
        .max_size(4)
        .build()
        .unwrap();
    let (mut a, mut b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    let old = [pooled_id::<D>(&mut a).await, pooled_id::<D>(&mut b).await];

    clock.advance(ROTATION);
    install_token_of_now::<D>(connector.token_request(), &clock).await;

    // Old connections: untouched, still working.
    assert_eq!(pooled_id::<D>(&mut a).await, old[0]);
    assert_eq!(pooled_id::<D>(&mut b).await, old[1]);
    // A new physical connection: logs in with the new token.
    let mut c = pool.get().await.expect("new connection with the new token");
    assert!(!old.contains(&pooled_id::<D>(&mut c).await));
    assert_eq!(pool.status().size, 3);
    // Returned and taken again: recycled, not reconnected.
    drop(a);
    let mut again = pool.get().await.unwrap();
    assert_eq!(pooled_id::<D>(&mut again).await, old[0]);
    D::check_recycled(&mut again).await;
}

pub async fn bb8_across_a_token_rotation<D: TestPool>() {
    let Some(port) = D::server_port() else { return };
    let clock = TestClock::new();
    let connector = connector::<D>(port, &clock);
    install_token_of_now::<D>(connector.token_request(), &clock).await;
    let pool = bb8::Pool::builder()
        .max_size(4)
        .min_idle(Some(0))
        .build(ConnectionManager::new(connector.clone()))
        .await
        .unwrap();
    let (mut a, mut b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    let old = [D::session_id(&mut a).await, D::session_id(&mut b).await];

    clock.advance(ROTATION);
    install_token_of_now::<D>(connector.token_request(), &clock).await;

    assert_eq!(D::session_id(&mut a).await, old[0]);
    assert_eq!(D::session_id(&mut b).await, old[1]);
    let mut c = pool.get().await.expect("new connection with the new token");
    assert!(!old.contains(&D::session_id(&mut c).await));
}

pub async fn a_pool_reports_the_diagnostic_error<D: TestPool>()
where
    Manager<D>: managed::Manager<Type = D::Object, Error = Error>,
{
    let Some(port) = D::server_port() else { return };
    let clock = TestClock::new();
    D::set_password("nothing the cache will sign");
    let pool: managed::Pool<Manager<D>> =
        managed::Pool::builder(Manager::new(connector::<D>(port, &clock)))
            .max_size(1)
            .build()
            .unwrap();
    match pool.get().await {
        Err(PoolError::Backend(e)) if e.kind() == ErrorKind::Rejected => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// One `#[tokio::test]` per pool scenario for the engine `$driver`, taking turns on the
/// calling file's `TURN` mutex (each changes the server's password).
#[macro_export]
macro_rules! pool_scenarios {
    ($driver:ty) => {
        $crate::pool_scenarios!(@turns $driver:
            deadpool_across_a_token_rotation,
            bb8_across_a_token_rotation,
            a_pool_reports_the_diagnostic_error,
        );
    };
    (@turns $driver:ty: $($scenario:ident,)*) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let _turn = TURN.lock().await;
                $crate::support::pool_scenarios::$scenario::<$driver>().await;
            }
        )*
    };
}

#[cfg(all(feature = "deadpool-postgres", feature = "bb8-postgres"))]
impl TestPool for rds_iam_auth::connector::Postgres {
    type Object = <rds_iam_auth::pool::PgManager as managed::Manager>::Type;
    fn pooled(object: &mut Self::Object) -> &mut Self::Connection {
        object
    }
    /// deadpool-postgres's `ClientWrapper` statement cache works.
    async fn check_recycled(object: &mut Self::Object) {
        let st = object.prepare_cached("SELECT 1").await.unwrap();
        object.query_one(&st, &[]).await.unwrap();
    }
}

#[cfg(all(feature = "deadpool-mysql", feature = "bb8-mysql"))]
impl TestPool for rds_iam_auth::connector::MySql {
    type Object = <rds_iam_auth::pool::MySqlManager as managed::Manager>::Type;
    fn pooled(object: &mut Self::Object) -> &mut Self::Connection {
        object
    }
    async fn check_recycled(_: &mut Self::Object) {}
}
