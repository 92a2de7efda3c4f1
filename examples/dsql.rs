//! Aurora DSQL: a deadpool pool of IAM-authenticated connections and one transaction retried
//! on optimistic-concurrency conflicts.
//!
//! The endpoint is `DSQL_ENDPOINT` (`<id>.dsql.<region>.on.aws`), or `DSQL_CLUSTER_ID` with
//! `AWS_REGION`; the role is `DSQL_USER` (default `admin`, which signs `DbConnectAdmin`
//! tokens; any other role signs `DbConnect`). Credentials come from the standard AWS chain.
//!
//! ```sh
//! DSQL_CLUSTER_ID=abcdefghijklmnopqrstuvwxyz AWS_REGION=us-east-1 \
//!     cargo run --example dsql --features deadpool-postgres
//! ```

use rds_iam_auth::dsql::{OccRetryError, OccRetryPolicy, retry_occ};
use rds_iam_auth::pool::{PgManager, PgPool};
use rds_iam_auth::{Endpoint, PgConnector, TokenCache, TokenGenerator};

/// Any error: the crate's, the driver's, the pool's (retried when it is a conflict).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let endpoint = match std::env::var("DSQL_ENDPOINT") {
        Ok(host) => Endpoint::new(host, 5432)?,
        Err(_) => Endpoint::dsql_cluster(
            &std::env::var("DSQL_CLUSTER_ID")
                .map_err(|_| "set DSQL_ENDPOINT or DSQL_CLUSTER_ID")?,
            &std::env::var("AWS_REGION").map_err(|_| "set AWS_REGION with DSQL_CLUSTER_ID")?,
        )?,
    };
    let user = std::env::var("DSQL_USER").unwrap_or_else(|_| "admin".to_owned());

    let cache = TokenCache::new(TokenGenerator::from_env());
    // The endpoint makes it DSQL: `dsql` tokens, database `postgres`, at most 8 logins at
    // once; the pool retires connections after 55 minutes (DSQL closes them at 60).
    let connector = PgConnector::builder(cache, endpoint, user).build()?;
    let pool = PgPool::builder(PgManager::new(connector))
        .max_size(8)
        .build()?;

    // DDL runs in a transaction of its own on DSQL.
    pool.get()
        .await?
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS visits (page text PRIMARY KEY, n bigint NOT NULL)",
        )
        .await?;

    // A conflicting writer makes the commit fail with SQLSTATE 40001 (OC000): run it again.
    let visits = retry_occ(&OccRetryPolicy::default(), || async {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let n: i64 = tx
            .query_one(
                "INSERT INTO visits VALUES ('home', 1) \
                 ON CONFLICT (page) DO UPDATE SET n = visits.n + 1 RETURNING n",
                &[],
            )
            .await?
            .get(0);
        tx.commit().await?;
        Ok::<_, BoxError>(n)
    })
    .await
    .map_err(OccRetryError::into_inner)?;
    println!("home page visits: {visits}");
    Ok(())
}
