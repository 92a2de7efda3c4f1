//! A deadpool pool of MySQL connections, each logged in with a current IAM token.
//!
//! Reads the same variables as `examples/mysql.rs`: `DBEndPoint`, `DBUserName`,
//! `DatabaseName` (optional) and AWS credentials from the standard chain.
//!
//! ```sh
//! DBEndPoint=mydb.cluster-abc123.us-east-1.rds.amazonaws.com DBUserName=iam_user DatabaseName=appdb \
//!     cargo run --example pool_mysql --features deadpool-mysql
//! ```

use rds_iam_auth::mysql_async::prelude::*;
use rds_iam_auth::pool::{MySqlManager, MySqlPool};
use rds_iam_auth::{MySqlConnector, TokenCache, TokenGenerator};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = TokenCache::new(TokenGenerator::from_env());
    let connector = MySqlConnector::builder_from_env(cache)?.build()?;
    let pool = MySqlPool::builder(MySqlManager::new(connector))
        .max_size(8)
        .build()?;

    // Eight concurrent queries; the pool opens connections as needed, each with the
    // token current at that moment (connections outlive their token).
    let mut tasks = Vec::new();
    for i in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.get().await?;
            let id: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((i, id.unwrap_or_default()))
        }));
    }
    for task in tasks {
        let (i, id) = task.await?.map_err(|e| e as Box<dyn std::error::Error>)?;
        println!("query {i} ran on connection {id}");
    }
    let status = pool.status();
    println!(
        "pool: {} of at most {} connections open, {} idle",
        status.size, status.max_size, status.available
    );
    Ok(())
}
