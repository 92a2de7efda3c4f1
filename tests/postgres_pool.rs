//! PostgreSQL pools (deadpool, bb8) across a token rotation: the scenarios of
//! `support::pool_scenarios`, which every engine shares. Each changes the role's password,
//! so they take turns (`TURN`).

mod support;

use rds_iam_auth::connector::Postgres;
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

pool_scenarios!(Postgres);
