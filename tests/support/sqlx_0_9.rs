//! The sqlx scenarios (`sqlx_scenarios.rs`) against `rds_iam_auth::sqlx_0_9`.

pub use rds_iam_auth::sqlx_0_9 as iam_sqlx;

#[cfg(all(feature = "sqlx-0_9-mysql", feature = "mysql"))]
#[allow(clippy::duplicate_mod)] // once per sqlx version, on purpose
#[path = "sqlx_my.rs"]
pub mod my;
#[cfg(all(feature = "sqlx-0_9-postgres", feature = "postgres"))]
#[allow(clippy::duplicate_mod)] // once per sqlx version, on purpose
#[path = "sqlx_pg.rs"]
pub mod pg;
#[allow(clippy::duplicate_mod)] // once per sqlx version, on purpose
#[path = "sqlx_scenarios.rs"]
mod scenarios;

pub use scenarios::*;
