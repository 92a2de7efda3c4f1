//! diesel-async (`rds_iam_auth::diesel_async`) against the harness's real PostgreSQL and the
//! capturing fake servers: connections and their deadpool and bb8 pools log in through
//! `PgConnector` (a current token, verified TLS, one retry on a rejected token), also when
//! diesel-async's own `custom_setup` is what opens them.
//!
//! The tests on the real server change the IAM role's password, so they take turns (`TURN`).

mod support;

use std::time::Duration;

use rds_iam_auth::diesel_async::diesel::dsl::sql;
use rds_iam_auth::diesel_async::diesel::result::ConnectionError;
use rds_iam_auth::diesel_async::diesel::sql_types::{Bool, Integer, Text};
use rds_iam_auth::diesel_async::diesel_async::pooled_connection::{self, bb8, deadpool};
use rds_iam_auth::diesel_async::diesel_async::{AsyncPgConnection, RunQueryDsl};
use rds_iam_auth::diesel_async::{self as iam_diesel, diesel};
use rds_iam_auth::{ErrorKind, PgConnector, TokenRequest};
use support::capture::CaptureServer;
use support::fake_postgres::{Answer, fake_server};
use support::iam::{self, CountingProxy, TestClock, tunnel_endpoint};
use support::security::{assert_no_token_bytes, connector_to};
use support::{certs, postgres};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

/// Past the 15-minute token lifetime: any cache must sign anew.
const ROTATION: Duration = Duration::from_secs(16 * 60);

async fn text(conn: &mut AsyncPgConnection, expr: &str) -> String {
    diesel::select(sql::<Text>(expr))
        .get_result(conn)
        .await
        .unwrap()
}

/// The server's id of the session (a new login gets a new one).
async fn pid(conn: &mut AsyncPgConnection) -> i32 {
    diesel::select(sql::<Integer>("pg_backend_pid()"))
        .get_result(conn)
        .await
        .unwrap()
}

async fn install_token_of_now(request: &TokenRequest, clock: &TestClock) {
    let token = iam::token_at(request, clock.at()).await;
    postgres().set_password(token.expose());
}

/// A connector for the harness's IAM role through the tunnel case (signed for the
/// RDS-looking name, TLS verified as it, TCP to `port`).
fn connector(port: u16, clock: &TestClock) -> PgConnector {
    iam::builder(iam::cache(clock), tunnel_endpoint(port))
        .build()
        .unwrap()
}

#[tokio::test]
async fn connect_logs_in_over_verified_tls_as_the_iam_user() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(postgres().port(), &clock);
    install_token_of_now(connector.token_request(), &clock).await;

    let mut conn = iam_diesel::connect(&connector).await.unwrap();
    assert_eq!(text(&mut conn, "current_user::text").await, "iam_user");
    assert_eq!(text(&mut conn, "current_database()").await, "appdb");
    let tls: bool = diesel::select(sql::<Bool>(
        "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())",
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    assert!(tls, "the session runs over TLS");
    // diesel-async's own session setup ran on the connector's client.
    assert_eq!(text(&mut conn, "current_setting('TimeZone')").await, "UTC");
}

/// Connections opened before a 16-minute rotation keep working; a new one logs in with the
/// new token (the only one the server accepts by then); a returned one is recycled.
#[tokio::test]
async fn a_deadpool_pool_across_a_token_rotation() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(postgres().port(), &clock);
    let request = connector.token_request().clone();
    install_token_of_now(&request, &clock).await;
    let pool: deadpool::Pool<AsyncPgConnection> =
        deadpool::Pool::builder(iam_diesel::manager(connector))
            .max_size(4)
            .build()
            .unwrap();
    let (mut a, mut b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    let old = [pid(&mut a).await, pid(&mut b).await];

    clock.advance(ROTATION);
    install_token_of_now(&request, &clock).await;

    assert_eq!(pid(&mut a).await, old[0], "old connections untouched");
    assert_eq!(pid(&mut b).await, old[1]);
    let mut c = pool.get().await.expect("a new login with the new token");
    assert!(!old.contains(&pid(&mut c).await));
    assert_eq!(text(&mut c, "current_user::text").await, "iam_user");
    assert_eq!(pool.status().size, 3);
    drop(a);
    let mut again = pool.get().await.unwrap();
    assert_eq!(pid(&mut again).await, old[0], "recycled, not reconnected");
}

#[tokio::test]
async fn a_bb8_pool_across_a_token_rotation() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(postgres().port(), &clock);
    let request = connector.token_request().clone();
    install_token_of_now(&request, &clock).await;
    let pool: bb8::Pool<AsyncPgConnection> = bb8::Pool::builder()
        .max_size(4)
        .min_idle(Some(0))
        .build(iam_diesel::manager(connector))
        .await
        .unwrap();
    let (mut a, mut b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    let old = [pid(&mut a).await, pid(&mut b).await];

    clock.advance(ROTATION);
    install_token_of_now(&request, &clock).await;

    assert_eq!(pid(&mut a).await, old[0], "old connections untouched");
    assert_eq!(pid(&mut b).await, old[1]);
    let mut c = pool.get().await.expect("a new login with the new token");
    assert!(!old.contains(&pid(&mut c).await));
    assert_eq!(pool.state().connections, 3);
}

/// diesel-async's `custom_setup` runs the connector's login, retry included: the proxy
/// installs the token of a minute later while the first attempt is on its way, so that
/// attempt's token is refused and only a token signed after the rejection is accepted.
#[tokio::test]
async fn a_rejected_token_is_replaced_and_retried_once_inside_the_pool() {
    let _turn = TURN.lock().await;
    let pg = postgres();
    let clock = TestClock::new();
    pg.set_password("not the token");
    let request = connector(1, &clock).token_request().clone();
    let hook_clock = clock.clone();
    let proxy = CountingProxy::start_to(pg.port(), move |n| {
        if n == 1 {
            hook_clock.advance(Duration::from_secs(60));
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let next = rt.block_on(iam::token_at(&request, hook_clock.at()));
            postgres().set_password(next.expose());
        }
    })
    .await;
    let connector = connector(proxy.port, &clock);
    let cache = connector.cache().clone();
    let request = connector.token_request().clone();
    let stale = cache.get(&request).await.unwrap();
    let pool: deadpool::Pool<AsyncPgConnection> =
        deadpool::Pool::builder(iam_diesel::manager(connector))
            .max_size(1)
            .build()
            .unwrap();

    let mut conn = pool.get().await.expect("the retry logs in");
    assert_eq!(text(&mut conn, "current_user::text").await, "iam_user");
    assert_eq!(proxy.connections(), 2, "exactly one retry");
    assert!(!cache.get(&request).await.unwrap().same_token(&stale));
}

/// Rejected twice: `connect` returns the crate's `Rejected` error; through a pool, diesel's
/// `BadConnection` carries the same message (causes included, no token).
#[tokio::test]
async fn a_token_rejected_twice_reaches_the_pool_with_the_crates_message() {
    let _turn = TURN.lock().await;
    let pg = postgres();
    pg.set_password("some other password");
    let proxy = CountingProxy::start_to(pg.port(), |_| {}).await;
    let clock = TestClock::new();
    let connector = connector(proxy.port, &clock);
    let token = iam::token_at(connector.token_request(), clock.at()).await;

    let Err(err) = iam_diesel::connect(&connector).await else {
        panic!("rejected twice, yet logged in")
    };
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err:?}");
    assert_eq!(proxy.connections(), 2, "one retry, no more");

    let pool: deadpool::Pool<AsyncPgConnection> =
        deadpool::Pool::builder(iam_diesel::manager(connector))
            .max_size(1)
            .build()
            .unwrap();
    let message = match pool.get().await {
        Err(deadpool::PoolError::Backend(pooled_connection::PoolError::ConnectionError(
            ConnectionError::BadConnection(message),
        ))) => message,
        other => panic!("{:?}", other.map(|_| ())),
    };
    assert_eq!(proxy.connections(), 4, "the pool's login: one retry too");
    assert_eq!(message, err.report(), "the crate's message and causes");
    assert!(message.contains("rejected the IAM token"), "{message}");
    assert!(
        message.contains("rds_iam"),
        "the PostgreSQL hint: {message}"
    );
    assert!(!message.contains(token.expose()), "{message}");
    assert!(!message.contains("X-Amz-Signature"), "{message}");
}

/// A pool whose only connection goes to the fake `server`.
fn pool_to(connector: PgConnector) -> deadpool::Pool<AsyncPgConnection> {
    deadpool::Pool::builder(iam_diesel::manager(connector))
        .max_size(1)
        .build()
        .unwrap()
}

/// The pool's login fails with the connector's TLS diagnosis, and the server got no byte of
/// the token (nor the startup message naming the user).
async fn refused_before_the_token(server: CaptureServer, expected: &str) {
    let (connector, token) = connector_to::<rds_iam_auth::connector::Postgres>(&server).await;
    let Err(err) = iam_diesel::connect(&connector).await else {
        panic!("refused, yet logged in")
    };
    assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    let result = pool_to(connector).get().await;
    match result {
        Err(deadpool::PoolError::Backend(pooled_connection::PoolError::ConnectionError(
            ConnectionError::BadConnection(message),
        ))) => assert!(message.contains(expected), "{expected} not in {message}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert_eq!(server.connections(), 2, "one connection each, no retry");
    assert_no_token_bytes(&server, &token);
}

#[tokio::test]
async fn a_server_without_tls_receives_no_token_byte() {
    let server = fake_server(Answer::RefuseTls).await;
    refused_before_the_token(server, "offered no TLS").await;
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_receives_no_token_byte() {
    let server = fake_server(Answer::Tls(&certs().other_ca_server)).await;
    refused_before_the_token(server, "UnknownIssuer").await;
}

#[tokio::test]
async fn a_certificate_for_another_name_receives_no_token_byte() {
    let server = fake_server(Answer::Tls(&certs().wrong_name)).await;
    refused_before_the_token(server, "not valid for the signing hostname").await;
}

/// Positive control: the same fake with a trusted certificate sees the token through the
/// pool, so the captures above would have caught one.
#[tokio::test]
async fn positive_control_a_trusted_fake_sees_the_token() {
    let server = fake_server(Answer::Tls(&certs().server)).await;
    let (connector, token) = connector_to::<rds_iam_auth::connector::Postgres>(&server).await;
    assert!(pool_to(connector).get().await.is_err(), "the fake rejects");
    assert_eq!(server.connections(), 2, "one retry");
    assert!(server.saw(token.expose().as_bytes()));
}
