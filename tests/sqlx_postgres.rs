//! sqlx 0.9 `PgPool`s logged in with IAM tokens (`rds_iam_auth::sqlx_0_9`), against the
//! harness's PostgreSQL and the capturing fake server: the scenarios both engines share
//! (`support::sqlx_scenarios`), then PostgreSQL's own (`support::sqlx_pg`): Aurora DSQL, a
//! TRACE capture, the OCC retry, the example.

mod support;

#[allow(dead_code)]
#[path = "../examples/sqlx_postgres.rs"]
mod example;

use rds_iam_auth::sqlx_0_9::sqlx;

/// The scenarios change the IAM user's password: they take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

sqlx_scenarios!(sqlx_0_9, sqlx::Postgres);
sqlx_pg_scenarios!(sqlx_0_9, example::run);
