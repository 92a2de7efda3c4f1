//! MySQL pools (deadpool, bb8) across a token rotation: the scenarios of
//! `support::pool_scenarios`, which every engine shares. Each changes the accepted token,
//! so they take turns (`TURN`).
//!
//! Needs root for the MariaDB PAM service (see `support::mariadb_or_skip`).

mod support;

use rds_iam_auth::connector::MySql;
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

pool_scenarios!(MySql);
