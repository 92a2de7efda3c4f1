//! The blog post's MySQL Lambda function, in Rust: log in to Aurora MySQL with an IAM token
//! (sent through `mysql_clear_password`, inside verified TLS only) and run
//! `select database() as database_name`.
//!
//! Environment (the post's names):
//! - `DBEndPoint`: the cluster endpoint, `host` or `host:port` (port 3306 by default);
//! - `DatabaseName`: the database;
//! - `DBUserName`: the database user, `IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'`;
//! - optional `DBPort` (overrides the port), `DBRegion` (when the hostname carries none, e.g. a
//!   CNAME) and `DBCaFile` (an extra CA certificate, PEM, trusted besides the built-in RDS ones);
//! - credentials: the function's execution role, through the standard AWS chain.
//!
//! Responses: `{"status": "Success", "results": {"database_name": "<db>"}}`, or
//! `{"status": "Error", "message": "..."}` (never a token or a key).
//!
//! The connection lives as long as the execution environment and serves every warm
//! invocation; a broken one (killed connection, restarted server, `wait_timeout`) is replaced
//! on the next invocation. A token is signed only when a connection is opened.
//!
//! Build and deploy: `cargo lambda build --release --arm64 --example lambda_mysql
//! --features mysql` (see docs/aws-setup.md).

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use rds_iam_auth::MySqlConnection;
use rds_iam_auth::mysql_async::Error as MySqlError;
use rds_iam_auth::mysql_async::prelude::Queryable;
use rds_iam_auth::{MySqlConnector, TokenCache, TokenGenerator};
use serde_json::{Value, json};
use tokio::sync::Mutex;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Server errors that end the session rather than the query: killed (1927), shutting down
/// (1053), disconnected for inactivity (4031).
const SESSION_ENDED: [u16; 3] = [1927, 1053, 4031];

/// One per execution environment: the connector (TLS set up once) and the open connection.
pub struct Function {
    connector: Result<MySqlConnector, String>,
    conn: Mutex<Option<MySqlConnection>>,
}

impl Function {
    /// The function for a connector, or for the configuration error every invocation reports.
    pub fn new(connector: Result<MySqlConnector, String>) -> Self {
        Self {
            connector,
            conn: Mutex::new(None),
        }
    }

    /// Reads the environment once, at cold start.
    pub async fn from_env() -> Self {
        Self::new(connector_from_env().await.map_err(|e| explain(e.as_ref())))
    }

    /// One invocation.
    pub async fn handle(&self) -> Value {
        match self.database_name().await {
            Ok(db) => json!({"status": "Success", "results": {"database_name": db}}),
            Err(e) => json!({"status": "Error", "message": explain(e.as_ref())}),
        }
    }

    async fn database_name(&self) -> Result<Option<String>, BoxError> {
        let connector = self.connector.as_ref().map_err(|e| e.clone())?;
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_mut() {
            match query(conn).await {
                Ok(db) => return Ok(db),
                // The connection died between invocations: open a new one below.
                Err(e) if connection_lost(&e) => {
                    tracing::warn!(error = %e, "database connection lost; reconnecting");
                }
                Err(e) => return Err(e.into()),
            }
        }
        *slot = None;
        let mut conn = connector.connect().await?;
        let db = query(&mut conn).await?;
        *slot = Some(conn);
        Ok(db)
    }
}

async fn query(conn: &mut MySqlConnection) -> Result<Option<String>, MySqlError> {
    conn.query_first("select database() as database_name").await
}

/// Errors that mean "this connection is gone", not "this query failed".
fn connection_lost(e: &MySqlError) -> bool {
    match e {
        MySqlError::Server(server) => SESSION_ENDED.contains(&server.code),
        _ => true,
    }
}

async fn connector_from_env() -> Result<MySqlConnector, BoxError> {
    let cache = TokenCache::new(TokenGenerator::from_env().await?);
    let builder = MySqlConnector::builder_from_env(cache)?;
    Ok(builder.build()?)
}

/// The error and its causes on one line, each said once (drivers repeat their causes in
/// their own messages).
fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    if let Some(e) = error.downcast_ref::<rds_iam_auth::Error>() {
        return e.report();
    }
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let function = Arc::new(Function::from_env().await);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| {
        let function = function.clone();
        async move { Ok::<Value, lambda_runtime::Error>(function.handle().await) }
    }))
    .await
}
