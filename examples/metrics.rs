//! A few PostgreSQL logins, then every metric the crate recorded (feature `metrics`), printed
//! from metrics-util's `DebuggingRecorder`. In an application, install an exporter instead
//! (Prometheus, OpenTelemetry, CloudWatch EMF...): the names are in the README ("Metrics").
//!
//! Reads the same variables as the `postgres` example (`DBEndPoint`, `DBUserName`,
//! `DatabaseName`, AWS credentials from the standard chain). Failed logins are counted too:
//! without a database it prints the failures.
//!
//! ```sh
//! DBEndPoint=mydb.cluster-abc123.us-east-1.rds.amazonaws.com DBUserName=iam_user \
//!     cargo run --example metrics --features metrics,postgres
//! ```

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rds_iam_auth::{PgConnector, TokenCache, TokenGenerator};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install()?;

    let cache = TokenCache::new(TokenGenerator::from_env());
    let connector = PgConnector::builder_from_env(cache)?.build()?;
    for i in 1..=3 {
        match connector.connect().await {
            Ok(_client) => println!("login {i}: ok"),
            Err(e) => println!("login {i}: {}", e.report()),
        }
    }

    println!("\nmetrics:");
    for (key, unit, _description, value) in snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let value = match value {
            DebugValue::Counter(n) => n.to_string(),
            DebugValue::Gauge(g) => g.to_string(),
            DebugValue::Histogram(h) => {
                let seconds: Vec<String> = h.iter().map(|v| format!("{:.6}", v)).collect();
                format!("[{}] s", seconds.join(", "))
            }
        };
        let unit = unit
            .map(|u| format!(" ({})", u.as_str()))
            .unwrap_or_default();
        println!(
            "  {kind:?} {} {{{}}}{unit}: {value}",
            key.name(),
            labels.join(", ")
        );
    }
    Ok(())
}
