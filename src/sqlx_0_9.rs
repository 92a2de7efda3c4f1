//! sqlx 0.9 pools whose new connections log in with current IAM tokens (features
//! `sqlx-0_9-postgres`, `sqlx-0_9-mysql`; sea-orm 2 builds on this sqlx). The same pools
//! for sqlx 0.8 are in [`sqlx_0_8`](crate::sqlx_0_8) (when its feature is on):
//! both can be on in one build.
//!
#![doc = include_str!("sqlx_pool/README.md")]

// Both sqlx modules compile the same sources (`src/sqlx_pool/`), each against its own
// sqlx: what differs is this file. (Hence `duplicate_mod`: each file is compiled once per
// sqlx version on purpose.)
macro_rules! sqlx_version {
    () => {
        "0.9"
    };
}
macro_rules! sqlx_module {
    () => {
        "sqlx_0_9"
    };
}

#[cfg(feature = "sqlx-0_9-mysql")]
#[allow(clippy::duplicate_mod)]
#[path = "sqlx_pool/mysql.rs"]
mod mysql;
#[allow(clippy::duplicate_mod)]
#[path = "sqlx_pool/mod.rs"]
mod pool;
#[cfg(feature = "sqlx-0_9-postgres")]
#[allow(clippy::duplicate_mod)]
#[path = "sqlx_pool/postgres.rs"]
mod postgres;

/// Re-exported: the sqlx 0.9 these pools are built with. Name sqlx through it (or depend on
/// the same 0.9 version) so that `PgPoolOptions`, `PgPool` and the rest are the same types.
pub use ::sqlx;
#[cfg(feature = "sqlx-0_9-mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx-0_9-mysql")))]
pub use mysql::{IamMySqlPool, IamMySqlPoolBuilder};
pub(crate) use pool::server_code;
pub use pool::{IamDatabase, IamPool, IamPoolBuilder, PoolSetup};
#[cfg(feature = "sqlx-0_9-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx-0_9-postgres")))]
pub use postgres::{IamPgPool, IamPgPoolBuilder};
