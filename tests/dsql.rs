//! Aurora DSQL through the connector and the pools, against the harness's PostgreSQL standing
//! in for a cluster: signed for (and TLS-verified as) a DSQL hostname, dialled on loopback,
//! the token checked as the password of DSQL-like roles (`admin`, `dsql_app`).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use rds_iam_auth::connector::PgConnectorBuilder;
use rds_iam_auth::dsql::DSQL_RECOMMENDED_MAX_LIFETIME;
use rds_iam_auth::dsql::{OccConflict, OccRetryPolicy, retry_occ};
use rds_iam_auth::login::TokenService;
use rds_iam_auth::pool::{PgConnectionManager, PgManager, PgPool, bb8};
use rds_iam_auth::token::Action;
use rds_iam_auth::{Endpoint, ErrorKind, PgConnector};
use support::certs::DSQL_HOSTNAME;
use support::iam::{self, TestClock};
use support::postgres::DSQL_ROLES;
use support::{RDS_HOSTNAME, postgres};
use tokio::sync::Mutex;

/// Tests set role passwords: one at a time.
static TURN: Mutex<()> = Mutex::const_new(());

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ADMIN: &str = DSQL_ROLES[0];
const APP: &str = DSQL_ROLES[1];

fn dsql_endpoint(dial_port: u16) -> Endpoint {
    Endpoint::new(DSQL_HOSTNAME, 5432)
        .unwrap()
        .with_dial_address("127.0.0.1", dial_port)
        .unwrap()
}

fn builder(clock: &TestClock, role: &str, dial_port: u16) -> PgConnectorBuilder {
    PgConnector::builder(iam::cache(clock), dsql_endpoint(dial_port), role)
        .trust(iam::test_trust())
        .connect_timeout(Duration::from_secs(5))
}

fn connector(clock: &TestClock, role: &str) -> PgConnector {
    builder(clock, role, postgres().port()).build().unwrap()
}

/// Makes the token the connector will sign now the role's only accepted password.
async fn install_token_of_now(connector: &PgConnector, clock: &TestClock) -> String {
    let request = connector.token_request();
    let token = iam::token_at(request, clock.at()).await;
    postgres().set_role_password(request.user(), token.expose());
    token.expose().to_owned()
}

#[tokio::test]
async fn admin_and_a_custom_role_log_in_with_dsql_tokens() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    for (role, action, name) in [
        (ADMIN, Action::DsqlConnectAdmin, "DbConnectAdmin"),
        (APP, Action::DsqlConnect, "DbConnect"),
    ] {
        let connector = connector(&clock, role);
        assert_eq!(connector.token_request().action(), action, "{role}");
        assert_eq!(connector.token_request().region().as_str(), "us-east-1");
        let token = install_token_of_now(&connector, &clock).await;
        assert!(
            token.starts_with(&format!("{DSQL_HOSTNAME}/?Action={name}&")),
            "{role}"
        );

        let client = connector.connect().await.expect("login with a DSQL token");
        let row = client
            .query_one("SELECT current_user::text, current_database()::text", &[])
            .await
            .unwrap();
        // DSQL's only database is `postgres`: the default for DSQL endpoints.
        let (user, database): (String, String) = (row.get(0), row.get(1));
        assert_eq!((user.as_str(), database.as_str()), (role, "postgres"));
    }
}

#[tokio::test]
async fn the_token_kind_follows_the_endpoint_unless_chosen() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let dsql = connector(&clock, APP);
    install_token_of_now(&dsql, &clock).await;
    // The same host signed as RDS: a token the server (expecting the DSQL one) refuses.
    let as_rds = builder(&clock, APP, postgres().port())
        .service(TokenService::Rds)
        .build()
        .unwrap();
    assert_eq!(as_rds.token_request().action(), Action::RdsConnect);
    let error = as_rds.connect().await.expect_err("an RDS token for DSQL");
    assert_eq!(error.kind(), ErrorKind::Rejected, "{error:?}");
    // An RDS name forced to DSQL signs DSQL tokens.
    let forced = PgConnector::builder(
        iam::cache(&clock),
        iam::tunnel_endpoint(postgres().port()),
        ADMIN,
    )
    .service(TokenService::Dsql)
    .build()
    .unwrap();
    assert_eq!(forced.token_request().host(), RDS_HOSTNAME);
    assert_eq!(forced.token_request().action(), Action::DsqlConnectAdmin);
}

#[test]
fn dsql_defaults_and_token_lifetime_limits() {
    let clock = TestClock::new();
    let port = 5432; // nothing is dialled
    let dsql = builder(&clock, APP, port).build().unwrap();
    assert_eq!(dsql.max_concurrent_logins(), Some(8));
    assert_eq!(
        dsql.recommended_max_lifetime(),
        Some(DSQL_RECOMMENDED_MAX_LIFETIME)
    );
    let week = Duration::from_secs(7 * 24 * 3600);
    let long = builder(&clock, APP, port)
        .token_lifetime(week)
        .build()
        .unwrap();
    assert_eq!(long.token_request().expires_in(), week);
    let too_long = builder(&clock, APP, port).token_lifetime(week + Duration::from_secs(1));
    let error = too_long.build().expect_err("over a week");
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error:?}");
    assert_eq!(error.setting(), Some("token_lifetime"), "{error:?}");

    let rds = |b: PgConnectorBuilder| b.build();
    let rds_builder = || iam::builder(iam::cache(&clock), iam::tunnel_endpoint(port));
    let plain = rds(rds_builder()).unwrap();
    assert_eq!(plain.token_request().action(), Action::RdsConnect);
    assert_eq!(plain.max_concurrent_logins(), None);
    assert_eq!(plain.recommended_max_lifetime(), None);
    let rds_too_long = rds(rds_builder().token_lifetime(Duration::from_secs(901)));
    let error = rds_too_long.expect_err("over 900 s");
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error:?}");
    assert_eq!(error.setting(), Some("token_lifetime"), "{error:?}");
    let zero = rds(rds_builder().max_concurrent_logins(Some(0)));
    let error = zero.expect_err("a bound of zero");
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error:?}");
    assert_eq!(error.setting(), Some("max_concurrent_logins"), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("invalid setting `max_concurrent_logins`: "),
        "{error}"
    );
}

async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn pools_across_a_token_rotation() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(&clock, APP);
    install_token_of_now(&connector, &clock).await;
    let manager = PgManager::new(connector.clone());
    assert_eq!(manager.max_lifetime(), Some(DSQL_RECOMMENDED_MAX_LIFETIME));
    let pool = PgPool::builder(manager).max_size(4).build().unwrap();
    let a = pool.get().await.unwrap();
    let old = backend_pid(&a).await;

    clock.advance(Duration::from_secs(16 * 60)); // past the 15-minute token
    install_token_of_now(&connector, &clock).await;
    assert_eq!(backend_pid(&a).await, old, "open connections are untouched");
    let b = pool.get().await.expect("a new login with the new token");
    assert_ne!(backend_pid(&b).await, old);

    let manager = PgConnectionManager::new(connector);
    assert_eq!(
        manager.recommended_max_lifetime(),
        Some(DSQL_RECOMMENDED_MAX_LIFETIME)
    );
    let bb8 = bb8::Pool::builder()
        .max_lifetime(manager.recommended_max_lifetime())
        .build(manager)
        .await
        .unwrap();
    let c = bb8.get().await.expect("bb8 login with the new token");
    backend_pid(&c).await;
}

#[tokio::test]
async fn deadpool_retires_connections_past_their_max_lifetime() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(&clock, APP);
    install_token_of_now(&connector, &clock).await;
    let lifetime = Duration::from_millis(300);
    for (max_lifetime, retired) in [(Some(lifetime), true), (None, false)] {
        let manager = PgManager::new(connector.clone()).with_max_lifetime(max_lifetime);
        let pool = PgPool::builder(manager).max_size(1).build().unwrap();
        let first = backend_pid(&pool.get().await.unwrap()).await;
        tokio::time::sleep(lifetime + Duration::from_millis(100)).await;
        let second = backend_pid(&pool.get().await.unwrap()).await;
        assert_eq!(first != second, retired, "max lifetime {max_lifetime:?}");
    }
}

/// `occ_conflicts(seq, conflicts, code)`: fails with SQLSTATE `code` (and DSQL's OC000
/// message) while the sequence is at most `conflicts`, then returns its value. A sequence,
/// because it is not rolled back with the failing statement.
fn create_occ_function() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        postgres().admin_sql(
            "CREATE FUNCTION occ_conflicts(seq regclass, conflicts int, code text) \
             RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$ \
             DECLARE tries bigint := nextval(seq); \
             BEGIN \
               IF tries <= conflicts THEN \
                 RAISE EXCEPTION 'change conflicts with another transaction, please retry: (OC000)' \
                   USING ERRCODE = code; \
               END IF; \
               RETURN tries; \
             END $$",
        );
    });
}

fn fresh_sequence(name: &str) {
    create_occ_function();
    postgres().admin_sql(&format!(
        "DROP SEQUENCE IF EXISTS {name}; CREATE SEQUENCE {name}"
    ));
}

fn fast_policy() -> OccRetryPolicy {
    OccRetryPolicy::default()
        .max_attempts(5)
        .base_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(5))
}

#[tokio::test]
async fn occ_conflicts_are_retried_until_the_transaction_commits() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(&clock, ADMIN);
    install_token_of_now(&connector, &clock).await;
    let client = connector.connect().await.unwrap();
    fresh_sequence("occ_twice");
    let runs = AtomicU32::new(0);
    let tries: i64 = retry_occ(&fast_policy(), || async {
        runs.fetch_add(1, Ordering::SeqCst);
        let row = client
            .query_one("SELECT occ_conflicts('occ_twice', 2, '40001')", &[])
            .await?;
        Ok::<_, tokio_postgres::Error>(row.get(0))
    })
    .await
    .expect("the third run commits");
    assert_eq!((tries, runs.load(Ordering::SeqCst)), (3, 3));
}

/// A message that names a conflict (it echoes the value `'OC000'` that failed a cast) is not
/// a conflict: SQLSTATE `22P02` is not retried, though the closure would have run 5 times
/// when the text decided.
#[tokio::test]
async fn a_message_naming_a_conflict_is_not_a_conflict() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(&clock, ADMIN);
    install_token_of_now(&connector, &clock).await;
    let client = connector.connect().await.unwrap();
    let runs = AtomicU32::new(0);
    let error = retry_occ(&fast_policy(), || async {
        runs.fetch_add(1, Ordering::SeqCst);
        client
            .query_one("SELECT $1::text::int", &[&"OC000"])
            .await
            .map(|row| row.get::<_, i32>(0))
    })
    .await
    .expect_err("not a number");
    let db = error.error().as_db_error().expect("a server error");
    assert!(db.message().contains("OC000"), "{}", db.message());
    assert_eq!(db.code().code(), "22P02");
    assert_eq!((error.attempts(), runs.load(Ordering::SeqCst)), (1, 1));
    assert!(!error.is_conflict());
}

#[tokio::test]
async fn other_errors_are_never_retried_and_exhaustion_counts_every_run() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(&clock, ADMIN);
    install_token_of_now(&connector, &clock).await;
    let client = connector.connect().await.unwrap();

    fresh_sequence("occ_other");
    let runs = AtomicU32::new(0);
    let error = retry_occ(&fast_policy(), || async {
        runs.fetch_add(1, Ordering::SeqCst);
        // Division by zero (SQLSTATE 22012) on the first run only: a retry would succeed,
        // so a second run would show.
        client
            .query_one("SELECT 1 / (nextval('occ_other') - 1)", &[])
            .await
    })
    .await
    .expect_err("division by zero");
    assert_eq!((error.attempts(), runs.load(Ordering::SeqCst)), (1, 1));
    assert!(!error.is_conflict());

    // Always a conflict: the policy's 3 runs, all counted, through a boxed error.
    fresh_sequence("occ_always");
    let policy = fast_policy().max_attempts(3);
    let error = retry_occ(&policy, || async {
        let row = client
            .query_one("SELECT occ_conflicts('occ_always', 100, '40001')", &[])
            .await?;
        Ok::<i64, BoxError>(row.get(0))
    })
    .await
    .expect_err("never commits");
    assert_eq!(error.attempts(), 3);
    assert!(error.is_conflict() && error.error().is_occ_conflict());
    assert!(error.to_string().contains("after 3 runs"), "{error}");
}

#[tokio::test]
async fn concurrent_logins_are_bounded_per_connector() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let hook = {
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        move |_| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(150));
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let proxy = iam::CountingProxy::start_to(postgres().port(), hook).await;
    for (limit, expected_peak) in [(Some(2), 2), (None, 6)] {
        peak.store(0, Ordering::SeqCst);
        let connector = builder(&clock, ADMIN, proxy.port)
            .max_concurrent_logins(limit)
            .build()
            .unwrap();
        install_token_of_now(&connector, &clock).await;
        let logins = (0..6).map(|_| {
            let connector = connector.clone();
            tokio::spawn(async move { connector.connect().await.map(drop) })
        });
        for login in logins.collect::<Vec<_>>() {
            login.await.unwrap().expect("login");
        }
        assert_eq!(
            peak.load(Ordering::SeqCst),
            expected_peak,
            "limit {limit:?}"
        );
    }
}

#[cfg(feature = "mysql")]
#[test]
fn a_mysql_connector_refuses_a_dsql_endpoint() {
    let clock = TestClock::new();
    let built = rds_iam_auth::MySqlConnector::builder(iam::cache(&clock), dsql_endpoint(3306), APP)
        .trust(iam::test_trust())
        .build();
    let error = built.expect_err("DSQL with MySQL");
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error:?}");
    assert_eq!(error.setting(), Some("service"), "{error:?}");
    assert_eq!(
        error.to_string(),
        "invalid setting `service`: Aurora DSQL speaks PostgreSQL only: connect with the \
         PostgreSQL connector or pool"
    );
}

#[tokio::test]
async fn a_connection_limit_refusal_says_what_to_do() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(&clock, APP);
    install_token_of_now(&connector, &clock).await;
    // SQLSTATE 53300, as DSQL's 10,000-connection quota (and 53400 for its rate) report.
    postgres().admin_sql(&format!("ALTER ROLE {APP} CONNECTION LIMIT 0"));
    let result = connector.connect().await;
    postgres().admin_sql(&format!("ALTER ROLE {APP} CONNECTION LIMIT -1"));
    let error = result.expect_err("over the role's connection limit");
    assert_eq!(error.kind(), ErrorKind::Connect, "{error:?}");
    assert_eq!(error.sqlstate(), Some("53300"), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("too many open connections"), "{message}");
}

/// DSQL through diesel-async's deadpool pool: its logins are the connector's (a DSQL admin
/// token, the database `postgres`), and `retry_occ` retries a transaction whose diesel error
/// diesel-async classed a serialization failure (SQLSTATE 40001), found behind `?`'s box.
#[cfg(feature = "diesel-async-postgres")]
#[tokio::test]
async fn diesel_async_logs_in_with_dsql_tokens_and_its_conflicts_are_retried() {
    let _turn = TURN.lock().await;
    let clock = TestClock::new();
    let connector = connector(&clock, ADMIN);
    install_token_of_now(&connector, &clock).await;
    let pool = diesel_dsql::pool(connector);
    let who = diesel_dsql::text(&pool, "current_user || '@' || current_database()").await;
    assert_eq!(who.unwrap(), format!("{ADMIN}@postgres"));

    for (code, expected_runs) in [("40001", 3), ("40P01", 1)] {
        let sequence = format!("occ_diesel_{}", code.to_lowercase());
        fresh_sequence(&sequence);
        let runs = AtomicU32::new(0);
        let query = format!("occ_conflicts('{sequence}', 2, '{code}')");
        let result = retry_occ(&fast_policy(), || async {
            runs.fetch_add(1, Ordering::SeqCst);
            diesel_dsql::bigint(&pool, &query).await
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), expected_runs, "{code}");
        match (code, result) {
            ("40001", Ok(tries)) => assert_eq!(tries, 3, "the third run commits"),
            // A deadlock's message names the conflict too: not retried, the SQLSTATE decides.
            ("40P01", Err(error)) => {
                assert!(!error.is_conflict());
                assert!(
                    error.error().to_string().contains("OC000"),
                    "{}",
                    error.error()
                );
            }
            (code, other) => panic!("{code}: {:?}", other.map_err(|e| e.to_string())),
        }
    }
}

/// The diesel-async side of the test above (diesel's `RunQueryDsl::load` would shadow
/// `AtomicU32::load` there).
#[cfg(feature = "diesel-async-postgres")]
mod diesel_dsql {
    use rds_iam_auth::PgConnector;
    use rds_iam_auth::diesel_async::diesel::dsl::sql;
    use rds_iam_auth::diesel_async::diesel::sql_types::{BigInt, Text};
    use rds_iam_auth::diesel_async::diesel_async::pooled_connection::deadpool::Pool;
    use rds_iam_auth::diesel_async::diesel_async::{AsyncPgConnection, RunQueryDsl};
    use rds_iam_auth::diesel_async::{self as iam_diesel, diesel};

    use super::BoxError;

    pub fn pool(connector: PgConnector) -> Pool<AsyncPgConnection> {
        Pool::builder(iam_diesel::manager(connector))
            .max_size(2)
            .build()
            .unwrap()
    }

    pub async fn text(pool: &Pool<AsyncPgConnection>, expr: &str) -> Result<String, BoxError> {
        let mut conn = pool.get().await?;
        Ok(diesel::select(sql::<Text>(expr))
            .get_result(&mut conn)
            .await?)
    }

    pub async fn bigint(pool: &Pool<AsyncPgConnection>, expr: &str) -> Result<i64, BoxError> {
        let mut conn = pool.get().await?;
        Ok(diesel::select(sql::<BigInt>(expr))
            .get_result(&mut conn)
            .await?)
    }
}
