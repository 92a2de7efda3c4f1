//! sea-orm 1.1 on the crate's sqlx 0.8 pools (`IamPool::pool().clone()` handed to sea-orm),
//! against the harness's real PostgreSQL and MariaDB: the scenarios of `common/sea_orm.rs`.
//!
//! The harness is the crate's own (`tests/support`), compiled here with this package's
//! features of the same names. The tests change the IAM user's password: they take turns.

#[path = "../../tests/support/mod.rs"]
mod support;

/// What the scenarios use of this file's versions: sea-orm 1.1 and sqlx 0.8.
mod versions {
    pub use crate::support::sqlx_0_8 as harness;
    pub use rds_iam_auth::sqlx_0_8 as iam_sqlx;
    use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, Statement};
    pub use sea_orm_1 as sea_orm;

    pub async fn query_one(
        db: &DatabaseConnection,
        stmt: Statement,
    ) -> Result<Option<QueryResult>, DbErr> {
        db.query_one(stmt).await
    }
}

#[path = "common/sea_orm.rs"]
mod scenarios;

use rds_iam_auth::sqlx_0_8::sqlx::{MySql, Postgres};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

sea_orm_scenarios! {
    postgres_a_query_through_sea_orm_after_a_token_rotation: a_query_through_sea_orm_after_a_token_rotation::<Postgres>,
    postgres_sea_orm_close_closes_the_pool: sea_orm_close_closes_the_pool::<Postgres>,
    mysql_a_query_through_sea_orm_after_a_token_rotation: a_query_through_sea_orm_after_a_token_rotation::<MySql>,
    mysql_sea_orm_close_closes_the_pool: sea_orm_close_closes_the_pool::<MySql>,
}
