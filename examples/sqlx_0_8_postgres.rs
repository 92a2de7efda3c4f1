//! A sqlx 0.8 `PgPool`, handed to the application's state, whose connections log in to RDS/Aurora PostgreSQL with IAM tokens, over
//! verified TLS: runs `SELECT current_database()` and prints `{"database": "<name>"}`.
//!
//! Reads (the names of AWS's Lambda samples):
//! - `DBEndPoint`: the endpoint's DNS name, optionally `:port` (default 5432)
//! - `DBUserName`: the database user, granted `rds_iam`
//! - `DatabaseName` (optional): the database
//! - `DBPort` (optional): the port, over the one in `DBEndPoint`
//! - `DBRegion` (optional): the region, when the hostname carries none
//! - `DBCaFile` (optional): a PEM file of CAs trusted besides the AWS ones
//! - AWS credentials from the standard chain (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, the
//!   execution role, ...)
//!
//! Errors go to stderr, with a non-zero exit.
//!
//! ```sh
//! DBEndPoint=mydb.cluster-abc123.us-east-1.rds.amazonaws.com DBUserName=iam_user DatabaseName=appdb \
//!     cargo run --example sqlx_0_8_postgres --features sqlx-0_8-postgres
//! ```

use std::process::ExitCode;

use rds_iam_auth::sqlx_0_8::{IamPgPool, IamPoolBuilder, sqlx};
use rds_iam_auth::{TokenCache, TokenGenerator};

type BoxError = Box<dyn std::error::Error>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let result = async {
        let cache = TokenCache::new(TokenGenerator::from_env());
        run(IamPgPool::builder_from_env(cache)?).await
    };
    match result.await {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the pool and hands sqlx's `PgPool` to the application's state (as sea-orm 1 or an
/// axum app takes it), dropping the IAM handle: the token refresh lives as long as the sqlx
/// pool, so connections the pool opens later still log in with current tokens. Asks for the
/// database's name through the state, returns it as JSON, and closes the pool (which ends the
/// refresh).
pub async fn run(builder: IamPoolBuilder<sqlx::Postgres>) -> Result<String, BoxError> {
    let pool = builder
        .pool_options(sqlx::postgres::PgPoolOptions::new().max_connections(2))
        .build()
        .await?;
    let state = AppState {
        db: pool.pool().clone(),
    };
    drop(pool);
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&state.db)
        .await?;
    state.db.close().await;
    Ok(serde_json::json!({ "database": database }).to_string())
}

/// What an application keeps: sqlx's own pool type, nothing of this crate's.
struct AppState {
    db: sqlx::PgPool,
}
