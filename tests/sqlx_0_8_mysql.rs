//! sqlx 0.8 `MySqlPool`s logged in with IAM tokens (`rds_iam_auth::sqlx_0_8`), against the
//! harness's MariaDB (PAM, `mysql_clear_password` over TLS, as RDS) and the capturing fake
//! server: the scenarios both engines share (`support::sqlx_scenarios`), then MySQL's own
//! (`support::sqlx_my`).

mod support;

#[allow(dead_code)]
#[path = "../examples/sqlx_0_8_mysql.rs"]
mod example;

use rds_iam_auth::sqlx_0_8::sqlx;

/// The scenarios change the IAM user's password: they take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

sqlx_scenarios!(sqlx_0_8, sqlx::MySql);
sqlx_mysql_scenarios!(sqlx_0_8, example::run);
