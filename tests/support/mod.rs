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
pub mod reference;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod scenarios;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod security;
#[cfg(any(
    all(feature = "sqlx-0_9-postgres", feature = "postgres"),
    all(feature = "sqlx-0_9-mysql", feature = "mysql")
))]
pub mod sqlx;
pub mod trace;
pub mod vectors;

pub use certs::{CertFiles, RDS_HOSTNAME, certs};
pub use mariadb::{MariaDbServer, mariadb_or_skip};
pub use postgres::{PostgresServer, postgres};

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
