//! What a shared scenario needs to know about an engine's throwaway test server: one
//! implementation per engine, so each scenario (`scenarios`, `pool_scenarios`, `security`)
//! is written once, generic over the library's `Driver`, and run for every engine.

use std::error::Error as StdError;
use std::time::Duration;

use rds_iam_auth::connector::{ConnectorBuilder, Driver};
use rds_iam_auth::{Endpoint, Engine, TokenCache};

use super::iam::{rds_tunnel, test_trust};

/// An engine's test server, and how a test asks its connections who and where they are.
#[allow(async_fn_in_trait)] // the scenarios run on the test's own runtime: no `Send` bound
pub trait TestEngine: Driver<Connection: std::fmt::Debug> {
    /// The engine, as errors name it.
    const ENGINE_IN_ERRORS: Engine;
    /// The port RDS listens on for this engine: tokens are signed for it (the harness's
    /// server listens elsewhere, see [`tunnel_endpoint`](Self::tunnel_endpoint)).
    const SIGNING_PORT: u16;
    /// What the server's "who am I" answers for the IAM user.
    const CURRENT_USER: &'static str;
    /// Causes the diagnostic of a rejected token must name for this engine.
    const HINTS: &'static [&'static str];
    /// Another engine's advice, which must not appear in this engine's diagnostic.
    const OTHER_ENGINE_HINTS: &'static [&'static str];

    /// Starts the server on first use; its dial port, or `None` when the engine's tests
    /// must be skipped (see `mariadb_or_skip`: loud, and a failure under `CI=true`).
    fn server_port() -> Option<u16>;
    /// The password the IAM user logs in with from now on (a token, or anything else).
    fn set_password(password: &str);
    /// A connector builder for the server's IAM user and database, trusting only the test CA.
    fn builder(cache: TokenCache, endpoint: Endpoint) -> ConnectorBuilder<Self>;
    /// The login's user, as the server names it.
    async fn current_user(conn: &mut Self::Connection) -> String;
    /// The session's database.
    async fn current_database(conn: &mut Self::Connection) -> String;
    /// Whether the session runs over TLS, as the server sees it.
    async fn uses_tls(conn: &mut Self::Connection) -> bool;
    /// The server's id of the session (a new login gets a new one).
    async fn session_id(conn: &mut Self::Connection) -> u64;
    /// Panics unless `source` is the driver's "wrong password" error.
    fn assert_invalid_password(source: &(dyn StdError + 'static));

    /// The tunnel case: signed for (and TLS-verified as) the RDS-looking name on the
    /// engine's port, TCP to `127.0.0.1:dial_port`.
    fn tunnel_endpoint(dial_port: u16) -> Endpoint {
        rds_tunnel(Self::SIGNING_PORT, dial_port)
    }
}

/// How long a connector may take with the harness's servers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(feature = "postgres")]
mod pg {
    use super::*;
    use crate::support::postgres;
    use rds_iam_auth::connector::Postgres;
    use rds_iam_auth::tokio_postgres;

    async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(
        client: &tokio_postgres::Client,
        sql: &str,
    ) -> T {
        client.query_one(sql, &[]).await.unwrap().get(0)
    }

    impl TestEngine for Postgres {
        const ENGINE_IN_ERRORS: Engine = Engine::Postgres;
        const SIGNING_PORT: u16 = crate::support::iam::SIGNING_PORT;
        const CURRENT_USER: &'static str = "iam_user";
        const HINTS: &'static [&'static str] = &[
            "rds_iam",
            "another host",
            "expired",
            "clock",
            "rds-db:connect",
        ];
        const OTHER_ENGINE_HINTS: &'static [&'static str] = &["AWSAuthenticationPlugin"];

        fn server_port() -> Option<u16> {
            Some(postgres().port())
        }
        fn set_password(password: &str) {
            postgres().set_password(password);
        }
        fn builder(cache: TokenCache, endpoint: Endpoint) -> ConnectorBuilder<Self> {
            let pg = postgres();
            rds_iam_auth::PgConnector::builder(cache, endpoint, pg.user())
                .database(pg.database())
                .trust(test_trust())
                .connect_timeout(CONNECT_TIMEOUT)
        }
        async fn current_user(conn: &mut Self::Connection) -> String {
            one(conn, "SELECT current_user::text").await
        }
        async fn current_database(conn: &mut Self::Connection) -> String {
            one(conn, "SELECT current_database()").await
        }
        async fn uses_tls(conn: &mut Self::Connection) -> bool {
            one(
                conn,
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            )
            .await
        }
        async fn session_id(conn: &mut Self::Connection) -> u64 {
            let pid: i32 = one(conn, "SELECT pg_backend_pid()").await;
            pid.try_into().unwrap()
        }
        fn assert_invalid_password(source: &(dyn StdError + 'static)) {
            let source = source
                .downcast_ref::<tokio_postgres::Error>()
                .expect("the driver's error");
            assert_eq!(
                source.code(),
                Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD)
            );
        }
    }
}

#[cfg(feature = "mysql")]
mod my {
    use super::*;
    use crate::support::mariadb::{DATABASE, IAM_USER};
    use crate::support::mariadb_or_skip;
    use rds_iam_auth::MySqlConnector;
    use rds_iam_auth::connector::MySql;
    use rds_iam_auth::mysql_async::{self, prelude::*};

    async fn one(conn: &mut impl Queryable, sql: &str) -> String {
        conn.query_first::<String, _>(sql).await.unwrap().unwrap()
    }

    impl TestEngine for MySql {
        const ENGINE_IN_ERRORS: Engine = Engine::MySql;
        const SIGNING_PORT: u16 = crate::support::iam::MYSQL_SIGNING_PORT;
        const CURRENT_USER: &'static str = "iam_user@%";
        const HINTS: &'static [&'static str] = &[
            "MySQL",
            "IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'",
            "another host",
            "expired",
            "clock",
            "rds-db:connect",
        ];
        const OTHER_ENGINE_HINTS: &'static [&'static str] = &["rds_iam"];

        fn server_port() -> Option<u16> {
            mariadb_or_skip().map(|db| db.port())
        }
        fn set_password(password: &str) {
            mariadb_or_skip()
                .expect("started by server_port")
                .set_password(password);
        }
        fn builder(cache: TokenCache, endpoint: Endpoint) -> ConnectorBuilder<Self> {
            MySqlConnector::builder(cache, endpoint, IAM_USER)
                .database(DATABASE)
                .trust(test_trust())
                .connect_timeout(CONNECT_TIMEOUT)
        }
        async fn current_user(conn: &mut Self::Connection) -> String {
            one(conn, "SELECT CURRENT_USER()").await
        }
        async fn current_database(conn: &mut Self::Connection) -> String {
            one(conn, "select database() as database_name").await
        }
        async fn uses_tls(conn: &mut Self::Connection) -> bool {
            // The cipher of the session's TLS connection (empty without TLS).
            let (_, cipher): (String, String) = conn
                .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                .await
                .unwrap()
                .unwrap();
            !cipher.is_empty()
        }
        async fn session_id(conn: &mut Self::Connection) -> u64 {
            conn.query_first("SELECT CONNECTION_ID()")
                .await
                .unwrap()
                .unwrap()
        }
        fn assert_invalid_password(source: &(dyn StdError + 'static)) {
            match source.downcast_ref::<mysql_async::Error>() {
                Some(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045),
                other => panic!("{other:?}"),
            }
        }
    }
}
