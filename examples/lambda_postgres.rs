//! The blog post's PostgreSQL Lambda function, in Rust: log in to Aurora PostgreSQL with an
//! IAM token over verified TLS and run `SELECT CURRENT_DATABASE()`.
//!
//! Environment (the post's names):
//! - `DBEndPoint`: the cluster endpoint, `host` or `host:port` (port 5432 by default);
//! - `DatabaseName`: the database;
//! - `DBUserName`: the database user, granted `rds_iam`;
//! - optional `DBPort` (overrides the port), `DBRegion` (when the hostname carries none, e.g. a
//!   CNAME) and `DBCaFile` (an extra CA certificate, PEM, trusted besides the built-in RDS ones);
//! - credentials: the function's execution role, from the environment (built without
//!   `aws-config`, as below) or through the standard AWS chain (with it).
//!
//! Responses: `{"status": "Success", "results": [{"current_database": "<db>"}]}`, or
//! `{"status": "Error", "message": "..."}` (never a token or a key).
//!
//! The connection lives as long as the execution environment and serves every warm
//! invocation; a broken one (killed backend, restarted server, idle timeout) is replaced on
//! the next invocation. A token is signed only when a connection is opened.
//!
//! Build and deploy: `cargo lambda build --profile lambda --target aarch64-unknown-linux-musl
//! --example lambda_postgres --no-default-features --features postgres` (see docs/aws-setup.md; the
//! README's "Lambda cold start" has the figures and the entropy build flag's trade-off).

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use rds_iam_auth::{PgConnector, TokenCache, TokenGenerator};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_postgres::Client;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One per execution environment: the connector (TLS set up once) and the open connection.
pub struct Function {
    connector: Result<PgConnector, String>,
    client: Mutex<Option<Client>>,
}

impl Function {
    /// The function for a connector, or for the configuration error every invocation reports.
    pub fn new(connector: Result<PgConnector, String>) -> Self {
        Self {
            connector,
            client: Mutex::new(None),
        }
    }

    /// Reads the environment once, at cold start.
    pub async fn from_env() -> Self {
        Self::new(connector_from_env().await.map_err(|e| explain(e.as_ref())))
    }

    /// One invocation.
    pub async fn handle(&self) -> Value {
        match self.current_database().await {
            Ok(db) => json!({"status": "Success", "results": [{"current_database": db}]}),
            Err(e) => json!({"status": "Error", "message": explain(e.as_ref())}),
        }
    }

    async fn current_database(&self) -> Result<String, BoxError> {
        let connector = self.connector.as_ref().map_err(|e| e.clone())?;
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            match query(client).await {
                Ok(db) => return Ok(db),
                // The connection died between invocations: open a new one below.
                Err(e) if connection_lost(&e) => {
                    tracing::warn!(error = %e, "database connection lost; reconnecting");
                }
                Err(e) => return Err(e.into()),
            }
        }
        *slot = None;
        let client = connector.connect().await?;
        let db = query(&client).await?;
        *slot = Some(client);
        Ok(db)
    }
}

async fn query(client: &Client) -> Result<String, tokio_postgres::Error> {
    let row = client.query_one("SELECT CURRENT_DATABASE()", &[]).await?;
    row.try_get(0)
}

/// Errors that mean "this connection is gone", not "this query failed": the socket closed,
/// or the server said it is shutting the session down (SQLSTATE class 57P).
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || e.as_db_error().is_none()
        || e.code().is_some_and(|c| c.code().starts_with("57P"))
}

async fn connector_from_env() -> Result<PgConnector, BoxError> {
    let cache = TokenCache::new(generator());
    let builder = PgConnector::builder_from_env(cache)?.application_name("lambda_postgres");
    Ok(builder.build()?)
}

/// Credentials from the standard AWS chain when built with `aws-config` (a default
/// feature); without it (`--no-default-features`, the build to deploy), from the environment
/// only, where Lambda puts the execution role's: a smaller binary and a faster cold start.
#[cfg(feature = "aws-config")]
fn generator() -> TokenGenerator {
    TokenGenerator::from_env()
}

/// See the `aws-config` variant above.
#[cfg(not(feature = "aws-config"))]
fn generator() -> TokenGenerator {
    TokenGenerator::from_env_vars()
}

/// Logs to stdout (CloudWatch) at `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`), `INFO` by
/// default, without timestamps (Lambda adds them): lambda_runtime's default subscriber minus
/// its per-target filters and JSON format, whose regex machinery a cold start pays for in
/// binary size.
fn init_logging() {
    use tracing_subscriber::filter::LevelFilter;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| level.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .init();
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

// One thread: an execution environment serves one invocation at a time, and the
// connection's task runs between the handler's awaits; worker threads would only add
// start-up time and memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // First: the TLS start-up work (AWS-LC's random generator seeding, tens of ms of CPU, and
    // the CA bundle) runs on its own thread while the runtime asks for the first event, the
    // token is signed and TCP connects. See the README's "Lambda cold start".
    rds_iam_auth::tls::warm_up_tls();
    init_logging();
    let function = Arc::new(Function::from_env().await);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| {
        let function = function.clone();
        async move { Ok::<Value, lambda_runtime::Error>(function.handle().await) }
    }))
    .await
}
