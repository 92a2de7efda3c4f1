//! sea-orm 2.0 on a sqlx 0.9 `PgPool` whose connections log in to RDS/Aurora PostgreSQL with
//! IAM tokens over verified TLS: runs `SELECT current_database()` through sea-orm and prints
//! `{"database": "<name>"}`.
//!
//! Reads the variables of AWS's Lambda samples: `DBEndPoint` (`host[:port]`), `DBUserName`,
//! `DatabaseName`, optionally `DBPort`, `DBRegion`, `DBCaFile`, and AWS credentials from the
//! standard chain.
//!
//! ```sh
//! DBEndPoint=mydb.cluster-abc123.us-east-1.rds.amazonaws.com DBUserName=iam_user DatabaseName=appdb \
//!     cargo run -p rds-iam-auth-toolkits --example sea_orm_2_postgres --features sea-orm-2-postgres
//! ```
//!
//! The sea-orm dependency this needs (no `runtime-tokio-rustls`: that is ring, a second
//! crypto provider; TLS is rds-iam-auth's):
//!
//! ```toml
//! rds-iam-auth = { version = "0.2", features = ["sqlx-0_9-postgres"] }
//! sea-orm = { version = "2.0.4", default-features = false, features = ["sqlx-postgres", "runtime-tokio", "macros"] }
//! ```

use rds_iam_auth::sqlx_0_9::{IamPgPool, sqlx};
use rds_iam_auth::{TokenCache, TokenGenerator};
use sea_orm_2::{ConnectionTrait, DatabaseConnection, DbBackend, SqlxPostgresConnector, Statement};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = TokenCache::new(TokenGenerator::from_env());
    let pool = IamPgPool::builder_from_env(cache)?
        .pool_options(sqlx::postgres::PgPoolOptions::new().max_connections(4))
        .build()
        .await?;
    // sea-orm takes sqlx's `PgPool`; each connection the pool opens logs in with the token
    // current then. The token refresh lives as long as the sqlx pool: `pool` (the `IamPool`
    // handle) can go.
    let db: DatabaseConnection =
        SqlxPostgresConnector::from_sqlx_postgres_pool(pool.pool().clone());

    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_database()",
        ))
        .await?
        .ok_or("no row")?;
    let name: String = row.try_get_by_index(0)?;
    println!("{}", serde_json::json!({ "database": name }));
    // Closes the sqlx pool (and so ends its token refresh).
    db.close().await?;
    Ok(())
}
