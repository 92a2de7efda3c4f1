//! One PostgreSQL connection to RDS/Aurora with an IAM token over verified TLS.
//!
//! Reads:
//! - `DBEndPoint`: the endpoint's DNS name, optionally `:port` (default 5432)
//! - `DBUserName`: the database user, granted `rds_iam`
//! - `DatabaseName` (optional): the database
//! - AWS credentials and region from the standard chain (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`,
//!   the execution role, ...); the token's region comes from the hostname.
//!
//! ```sh
//! DBEndPoint=mydb.cluster-abc123.us-east-1.rds.amazonaws.com DBUserName=iam_user DatabaseName=appdb \
//!     cargo run --example postgres --features postgres
//! ```

use rds_iam_auth::{PgConnector, TokenCache, TokenGenerator};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = TokenCache::new(TokenGenerator::from_env());
    let connector = PgConnector::builder_from_env(cache)?
        .application_name("rds-iam-auth example")
        .build()?;
    let client = connector.connect().await?;
    let row = client
        .query_one(
            "SELECT current_user::text, current_database()::text, version()",
            &[],
        )
        .await?;
    let (user, db, version): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    println!("logged in as {user} to {db}: {version}");
    Ok(())
}
