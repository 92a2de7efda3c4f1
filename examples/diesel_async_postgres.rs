//! A diesel-async deadpool pool of `AsyncPgConnection`s, each logged in with a current IAM
//! token through `PgConnector` (verified TLS, one retry on a rejected token).
//!
//! Reads the same variables as `examples/postgres.rs`: `DBEndPoint`, `DBUserName`,
//! `DatabaseName` (optional) and AWS credentials from the standard chain.
//!
//! ```sh
//! DBEndPoint=mydb.cluster-abc123.us-east-1.rds.amazonaws.com DBUserName=iam_user DatabaseName=appdb \
//!     cargo run --example diesel_async_postgres --features diesel-async-postgres
//! ```

use rds_iam_auth::diesel_async::diesel::dsl::sql;
use rds_iam_auth::diesel_async::diesel::sql_types::{Integer, Text};
use rds_iam_auth::diesel_async::diesel_async::pooled_connection::deadpool::Pool;
use rds_iam_auth::diesel_async::diesel_async::{AsyncPgConnection, RunQueryDsl};
use rds_iam_auth::diesel_async::{self as iam_diesel, diesel};
use rds_iam_auth::{PgConnector, TokenCache, TokenGenerator};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = TokenCache::new(TokenGenerator::from_env());
    let connector = PgConnector::builder_from_env(cache)?.build()?;
    let pool: Pool<AsyncPgConnection> = Pool::builder(iam_diesel::manager(connector))
        .max_size(8)
        .build()?;

    let mut conn = pool.get().await?;
    let who: String = diesel::select(sql::<Text>("current_user::text"))
        .get_result(&mut conn)
        .await?;
    let pid: i32 = diesel::select(sql::<Integer>("pg_backend_pid()"))
        .get_result(&mut conn)
        .await?;
    println!("logged in as {who} (backend {pid}) with an IAM token");
    // Connections outlive their token: a connection returned to the pool is reused as is;
    // the pool's next new connection asks the cache for the token current then.
    drop(conn);
    let status = pool.status();
    println!(
        "pool: {} of at most {} connections open, {} idle",
        status.size, status.max_size, status.available
    );
    Ok(())
}
