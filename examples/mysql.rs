//! One MySQL / Aurora MySQL connection with an IAM token over verified TLS.
//!
//! Reads:
//! - `DBEndPoint`: the endpoint's DNS name, optionally `:port` (default 3306)
//! - `DBUserName`: the database user, created `IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'`
//! - `DatabaseName` (optional): the default database
//! - AWS credentials and region from the standard chain (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`,
//!   the execution role, ...); the token's region comes from the hostname.
//!
//! ```sh
//! DBEndPoint=mydb.cluster-abc123.us-east-1.rds.amazonaws.com DBUserName=iam_user DatabaseName=appdb \
//!     cargo run --example mysql --features mysql
//! ```

use rds_iam_auth::mysql_async::prelude::*;
use rds_iam_auth::{MySqlConnector, TokenCache, TokenGenerator};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = TokenCache::new(TokenGenerator::from_env());
    let connector = MySqlConnector::builder_from_env(cache)?.build()?;
    let mut conn = connector.connect().await?;
    let row: Option<(String, Option<String>, String)> = conn
        .query_first("SELECT CURRENT_USER(), database() AS database_name, version()")
        .await?;
    if let Some((user, db, version)) = row {
        let db = db.as_deref().unwrap_or("no database");
        println!("logged in as {user} to {db}: {version}");
    }
    conn.disconnect().await?;
    Ok(())
}
