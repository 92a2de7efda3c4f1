//! sea-orm 1.1 on a sqlx 0.8 `MySqlPool` whose connections log in to RDS/Aurora MySQL (or
//! MariaDB) with IAM tokens, `mysql_clear_password` only inside verified TLS: runs
//! `SELECT DATABASE()` through sea-orm and prints `{"database": "<name>"}`.
//!
//! Reads the variables of AWS's Lambda samples: `DBEndPoint` (`host[:port]`, default port
//! 3306), `DBUserName`, `DatabaseName`, optionally `DBPort`, `DBRegion`, `DBCaFile`, and AWS
//! credentials from the standard chain.
//!
//! ```sh
//! DBEndPoint=mydb.cluster-abc123.us-east-1.rds.amazonaws.com DBUserName=iam_user DatabaseName=appdb \
//!     cargo run -p rds-iam-auth-toolkits --example sea_orm_1_mysql --features sea-orm-1-mysql
//! ```
//!
//! ```toml
//! rds-iam-auth = { version = "0.2", features = ["sqlx-0_8-mysql"] }
//! sea-orm = { version = "1.1.20", default-features = false, features = ["sqlx-mysql", "runtime-tokio", "macros"] }
//! ```

use rds_iam_auth::sqlx_0_8::{IamMySqlPool, sqlx};
use rds_iam_auth::{TokenCache, TokenGenerator};
use sea_orm_1::{ConnectionTrait, DatabaseConnection, DbBackend, SqlxMySqlConnector, Statement};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = TokenCache::new(TokenGenerator::from_env());
    let pool = IamMySqlPool::builder_from_env(cache)?
        .pool_options(sqlx::mysql::MySqlPoolOptions::new().max_connections(4))
        .build()
        .await?;
    let db: DatabaseConnection = SqlxMySqlConnector::from_sqlx_mysql_pool(pool.pool().clone());

    let row = db
        .query_one(Statement::from_string(
            DbBackend::MySql,
            "SELECT DATABASE()",
        ))
        .await?
        .ok_or("no row")?;
    let name: String = row.try_get_by_index(0)?;
    println!("{}", serde_json::json!({ "database": name }));
    db.close().await?;
    Ok(())
}
