//! `rds-iam-token`: a drop-in for `aws rds generate-db-auth-token`, plus the IAM policy a
//! role needs.
//!
//! ```sh
//! # A token (printed alone on stdout; credentials from the standard AWS chain):
//! cargo run --example rds-iam-token -- \
//!     --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com --port 5432 --username iam_user
//! # An Aurora DSQL admin token valid for an hour:
//! cargo run --example rds-iam-token -- --dsql --admin --expires-in 3600 \
//!     --hostname abcdefghijklmnopqrst123456.dsql.us-east-1.on.aws
//! # Reproduce a token for a given time (to debug a signature mismatch):
//! cargo run --example rds-iam-token -- ... --signing-time 2024-01-15T12:34:56Z
//! # The rds-db:connect policy for the function's role:
//! cargo run --example rds-iam-token -- policy --account 123456789012 \
//!     --resource-id cluster-ABCDEFGHIJKL0123456789 --username iam_user --region us-east-1
//! ```
//!
//! Environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_PROFILE`, and everything else the AWS credentials chain reads.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use rds_iam_auth::policy::{DsqlClusterArn, RdsDbUserArn, dsql_connect_policy, rds_connect_policy};
use rds_iam_auth::{Endpoint, FixedClock, TokenGenerator, TokenRequest};

#[derive(Parser)]
#[command(
    name = "rds-iam-token",
    about = "Generate an IAM auth token for RDS, Aurora, RDS Proxy or Aurora DSQL",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    token: TokenArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print the IAM policy document that allows connecting.
    Policy(PolicyArgs),
}

#[derive(Args)]
struct TokenArgs {
    /// The endpoint's DNS name (the name the token is signed for).
    #[arg(long)]
    hostname: Option<String>,
    /// The endpoint's port (not part of DSQL tokens).
    #[arg(long, default_value_t = 5432)]
    port: u16,
    /// The database user (for DSQL, the role; `admin` with --admin).
    #[arg(long)]
    username: Option<String>,
    /// The region (default: inferred from the hostname).
    #[arg(long)]
    region: Option<String>,
    /// An Aurora DSQL token (`DbConnect`).
    #[arg(long)]
    dsql: bool,
    /// With --dsql: a token for the `admin` role (`DbConnectAdmin`).
    #[arg(long, requires = "dsql")]
    admin: bool,
    /// Token lifetime in seconds (RDS: at most 900; DSQL: at most 604800).
    #[arg(long, default_value_t = 900)]
    expires_in: u64,
    /// Sign as of this time (RFC 3339, e.g. 2024-01-15T12:34:56Z) instead of now.
    #[arg(long)]
    signing_time: Option<String>,
}

#[derive(Args)]
struct PolicyArgs {
    /// The AWS account id (12 digits, or `*`).
    #[arg(long)]
    account: String,
    /// The DbiResourceId / DbClusterResourceId / proxy id (`db-...`, `cluster-...`,
    /// `prx-...`), or the DSQL cluster id with --dsql.
    #[arg(long)]
    resource_id: String,
    /// The database user (`*` for all); not used with --dsql.
    #[arg(long, default_value = "*")]
    username: String,
    /// The region (or `*`).
    #[arg(long, default_value = "*")]
    region: String,
    /// A DSQL policy (`dsql:DbConnect`).
    #[arg(long)]
    dsql: bool,
    /// With --dsql: `dsql:DbConnectAdmin`.
    #[arg(long, requires = "dsql")]
    admin: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Policy(args)) => policy(&args),
        None => token(&cli.token).await,
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn token(args: &TokenArgs) -> Result<String, String> {
    let hostname = args.hostname.as_deref().ok_or("--hostname is required")?;
    let endpoint = Endpoint::new(hostname, args.port).map_err(|e| explain(&e))?;
    let request = if args.dsql {
        let role = if args.admin {
            "admin"
        } else {
            args.username.as_deref().unwrap_or("dsql_role")
        };
        TokenRequest::dsql(&endpoint, role)
    } else {
        TokenRequest::rds(
            &endpoint,
            args.username.as_deref().ok_or("--username is required")?,
        )
    };
    let mut request = request.expires_in(Duration::from_secs(args.expires_in));
    if let Some(region) = &args.region {
        request = request.region(region);
    }
    let request = request.build().map_err(|e| explain(&e))?;

    let generator = TokenGenerator::from_env_for_region(request.region())
        .await
        .map_err(|e| explain(&e))?;
    let generator = match &args.signing_time {
        Some(at) => generator.with_clock(FixedClock::new(parse_rfc3339(at)?)),
        None => generator,
    };
    let token = generator
        .generate(&request)
        .await
        .map_err(|e| explain(&e))?;
    Ok(token.expose().to_owned())
}

fn policy(args: &PolicyArgs) -> Result<String, String> {
    if args.dsql {
        let arn = DsqlClusterArn::new(&args.region, &args.account, &args.resource_id)
            .map_err(|e| explain(&e))?;
        Ok(dsql_connect_policy(&[arn], args.admin))
    } else {
        let arn = RdsDbUserArn::new(
            &args.region,
            &args.account,
            &args.resource_id,
            &args.username,
        )
        .map_err(|e| explain(&e))?;
        Ok(rds_connect_policy(&[arn]))
    }
}

/// The error and its causes, one per line: the first line says what to do, the rest why.
fn explain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    message
}

fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|e| format!("--signing-time `{s}` is not an RFC 3339 time: {e}"))
}
