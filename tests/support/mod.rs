//! Shared test support: botocore vectors and the reference signer, throwaway certificates,
//! and real PostgreSQL / MariaDB servers that authenticate like RDS IAM (cleartext password
//! over verified TLS).
//!
//! Use from a test file with `mod support;`. Servers start lazily, once per test process,
//! without needing an async runtime; they are stopped and their files removed when the
//! process exits (even on panic or SIGKILL) by a supervisor per server, see
//! `process::Supervisor`.
//!
//! `restart()`, `terminate_backends_of()` and `kill_connections_of()` affect every test in
//! the same binary, as does `set_password()`: put tests that use them in a test file of their
//! own, or serialize the tests of a file.
//!
//! The scenarios both engines share are written once (`scenarios`, `pool_scenarios`,
//! `security`), generic over the library's `Driver` through `engine::TestEngine`, and run
//! for each engine by a macro in that engine's test file (`connector_scenarios!(Postgres)`).
// Every test binary (and benches/connect.rs) compiles this whole harness as a module of its
// own and uses a part of it, so what one binary leaves unused is not dead code. (A separate
// `publish = false` crate would not need this, but a dev-dependency that depends back on this
// crate with its engine features would turn them on for every `cargo test`, unless every
// feature of this crate forwarded to it.)
#![allow(dead_code)]

#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod capture;
pub mod certs;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod engine;
#[cfg(feature = "mysql")]
pub mod fake_mysql;
#[cfg(feature = "postgres")]
pub mod fake_postgres;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod faults;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod iam;
pub mod mariadb;
#[cfg(any(
    all(feature = "deadpool-postgres", feature = "bb8-postgres"),
    all(feature = "deadpool-mysql", feature = "bb8-mysql")
))]
pub mod pool_scenarios;
pub mod postgres;
mod process;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod reference;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod scenarios;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod security;
#[cfg(any(
    all(feature = "sqlx-0_8-postgres", feature = "postgres"),
    all(feature = "sqlx-0_8-mysql", feature = "mysql")
))]
pub mod sqlx_0_8;
#[cfg(any(
    all(feature = "sqlx-0_9-postgres", feature = "postgres"),
    all(feature = "sqlx-0_9-mysql", feature = "mysql")
))]
pub mod sqlx_0_9;
pub mod trace;
pub mod vectors;

pub use certs::{CertFiles, RDS_HOSTNAME, certs};
pub use mariadb::{MariaDbServer, mariadb_or_skip};
pub use postgres::{PostgresServer, postgres};

/// The benchmarks' runtime: one worker thread for the client side, beside the server's
/// processes on the same cores.
pub fn bench_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts both servers in parallel (each takes 1-2 s) for tests that need both.
/// The MariaDB one is `None` when it has to be skipped (see [`mariadb_or_skip`]).
pub fn start_all() -> (&'static PostgresServer, Option<&'static MariaDbServer>) {
    std::thread::scope(|s| {
        let pg = s.spawn(postgres);
        let maria = mariadb_or_skip();
        let pg = pg
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (pg, maria)
    })
}

/// One `#[tokio::test]` per scenario for the engine `$db` of sqlx `$version` (`sqlx_0_9`,
/// `sqlx_0_8`: the support module of that version), taking turns on the calling
/// file's `TURN` mutex where the server's password changes.
#[macro_export]
macro_rules! sqlx_scenarios {
    ($version:ident, $db:ty) => {
        $crate::sqlx_scenarios!(@turns $version $db:
            connects_and_queries_over_tls,
            a_pool_of_8_across_a_token_rotation,
            after_a_freeze_acquire_installs_a_current_token_first,
            the_refresher_installs_a_new_token_after_an_invalidation,
            a_rejected_token_is_replaced_and_retried_once,
            a_token_that_keeps_failing_gives_the_diagnostic_error,
            a_pool_handed_over_logs_in_after_a_rotation,
        );
        $crate::sqlx_scenarios!(@free $version $db:
            a_tunnel_is_refused_with_the_way_around,
            debug_shows_no_secret,
            no_token_byte_without_verified_tls,
            certificate_errors_name_the_cause,
            closing_the_pool_ends_the_refresher,
        );
    };
    (@turns $version:ident $db:ty: $($scenario:ident,)*) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let _turn = TURN.lock().await;
                $crate::support::$version::$scenario::<$db>().await;
            }
        )*
    };
    (@turns_plain $version:ident: $($scenario:ident,)*) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let _turn = TURN.lock().await;
                $crate::support::$version::pg::$scenario().await;
            }
        )*
    };
    (@free $version:ident $db:ty: $($scenario:ident,)*) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                $crate::support::$version::$scenario::<$db>().await;
            }
        )*
    };
}

/// PostgreSQL's own sqlx tests for sqlx `$version` (`sqlx_0_9`, `sqlx_0_8`), all taking turns
/// on the calling file's `TURN`: DSQL through the same builder, a TRACE capture, the OCC
/// retry with sqlx's errors, and the version's example (`$example`: its `run`).
#[macro_export]
macro_rules! sqlx_pg_scenarios {
    ($version:ident, $example:path) => {
        $crate::sqlx_scenarios!(@turns_plain $version:
            dsql_tokens_database_and_max_lifetime,
            trace_output_never_shows_the_token,
            occ_conflicts_are_retried_by_sqlstate,
        );
        #[tokio::test]
        async fn the_example_prints_the_database() {
            let _turn = TURN.lock().await;
            $crate::support::$version::pg::the_example_prints_the_database($example).await;
        }
    };
}

/// MySQL's own sqlx tests for sqlx `$version`: a DSQL endpoint refused, and the version's
/// example (`$example`: its `run`), taking turns on the calling file's `TURN`.
#[macro_export]
macro_rules! sqlx_mysql_scenarios {
    ($version:ident, $example:path) => {
        #[tokio::test]
        async fn a_dsql_endpoint_is_refused() {
            $crate::support::$version::my::a_dsql_endpoint_is_refused().await;
        }
        #[tokio::test]
        async fn the_example_prints_the_database() {
            let _turn = TURN.lock().await;
            $crate::support::$version::my::the_example_prints_the_database($example).await;
        }
    };
}
