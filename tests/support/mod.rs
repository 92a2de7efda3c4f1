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
#![allow(dead_code, unreachable_pub, unused_imports)]

#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod capture;
pub mod certs;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod faults;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod iam;
pub mod mariadb;
pub mod postgres;
mod process;
pub mod reference;
pub mod vectors;

pub use certs::{CertFiles, RDS_HOSTNAME, SERVER_NAMES, TestCerts, certs};
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
