//! A deadpool pool of PostgreSQL connections, each logged in with a current IAM token.
//!
//! Reads the same variables as `examples/postgres.rs`: `DBEndPoint`, `DBUserName`,
//! `DatabaseName` (optional) and AWS credentials from the standard chain.
//!
//! ```sh
//! DBEndPoint=mydb.cluster-abc123.us-east-1.rds.amazonaws.com DBUserName=iam_user DatabaseName=appdb \
//!     cargo run --example pool_postgres --features deadpool-postgres
//! ```

use rds_iam_auth::pool::{PgManager, PgPool};
use rds_iam_auth::{PgConnector, TokenCache, TokenGenerator};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = TokenCache::new(TokenGenerator::from_env());
    let connector = PgConnector::builder_from_env(cache)?.build()?;
    let pool = PgPool::builder(PgManager::new(connector))
        .max_size(8)
        .build()?;

    // Eight concurrent queries; the pool opens connections as needed, each with the
    // token current at that moment (connections outlive their token).
    let mut tasks = Vec::new();
    for i in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let client = pool.get().await?;
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .await?
                .get(0);
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((i, pid))
        }));
    }
    for task in tasks {
        let (i, pid) = task.await?.map_err(|e| e as Box<dyn std::error::Error>)?;
        println!("query {i} ran on backend {pid}");
    }
    let status = pool.status();
    println!(
        "pool: {} of at most {} connections open, {} idle",
        status.size, status.max_size, status.available
    );
    Ok(())
}
