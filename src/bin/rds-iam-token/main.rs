//! `rds-iam-token`: a drop-in for `aws rds generate-db-auth-token`, plus the IAM policy a
//! role needs, `doctor`, which says why an IAM login fails, `proxy`, a local IAM-login
//! proxy for psql and GUI tools, and `ca-bundle`.
//!
//! Install with `cargo install --locked --path . --features cli` from a checkout (`--git
//! https://github.com/rds-iam-auth/rds-iam-auth rds-iam-auth` until it is on crates.io), or run
//! it with `cargo run --features cli --bin rds-iam-token -- ARGS`.
//!
//! ```sh
//! # A token (printed alone on stdout; credentials from the standard AWS chain):
//! rds-iam-token \
//!     --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com --port 5432 --username iam_user
//! # An Aurora DSQL admin token valid for an hour (a DSQL hostname needs no --dsql, no --port):
//! rds-iam-token --username admin --expires-in 3600 \
//!     --hostname abcdefghijklmnopqrst123456.dsql.us-east-1.on.aws
//! # Reproduce a token for a given time (to debug a signature mismatch):
//! rds-iam-token ... --signing-time 2024-01-15T12:34:56Z
//! # The rds-db:connect policy for the function's role:
//! rds-iam-token policy --account 123456789012 \
//!     --resource-id cluster-ABCDEFGHIJKL0123456789 --username iam_user --region us-east-1
//! # Why does the login fail? One line per step, exit status 0 only if the login works:
//! rds-iam-token doctor --engine postgres \
//!     --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com --username iam_user
//! # psql and GUI tools without a password (features cli,proxy): a local IAM-login proxy
//! rds-iam-token proxy --engine postgres \
//!     --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com --username iam_user
//! # The CA bundle for libpq's sslmode=verify-full sslrootcert=FILE:
//! rds-iam-token ca-bundle --output rds-ca.pem
//! ```
//!
//! Environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_PROFILE`, and everything else the AWS credentials chain reads.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};

#[cfg(feature = "doctor")]
mod doctor;
#[cfg(any(feature = "doctor", feature = "proxy"))]
mod endpoint_flags;
#[cfg(feature = "proxy")]
mod proxy;
mod wording;
use rds_iam_auth::clock::FixedClock;
use rds_iam_auth::policy::{DsqlClusterArn, RdsDbUserArn, dsql_connect_policy, rds_connect_policy};
use rds_iam_auth::token::Action;
use rds_iam_auth::{Endpoint, TokenGenerator, TokenRequest};
use wording::{Where, explain, usage};

/// The one port Aurora DSQL listens on.
const DSQL_PORT: u16 = 5432;

/// Shown after the flags of `rds-iam-token --help`.
const TOKEN_EXAMPLES: &str = "\
Examples:
  # A token for RDS / Aurora / RDS Proxy (region from the hostname), alone on stdout:
  rds-iam-token --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com --port 5432 --username iam_user
  # Use it as the password:
  PGPASSWORD=\"$(rds-iam-token --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com --port 5432 --username iam_user)\" \\
    psql \"host=mydb.cluster-abc123.us-east-1.rds.amazonaws.com user=iam_user sslmode=verify-full\"
  # A hostname that does not name its region (a CNAME, a tunnel):
  rds-iam-token --hostname db.internal.example.com --port 3306 --username app --region eu-west-1
  # An Aurora DSQL admin token valid for an hour (a DSQL hostname signs DSQL tokens, port 5432):
  rds-iam-token --username admin --expires-in 3600 --hostname abcdefghijklmnopqrst123456.dsql.us-east-1.on.aws
  # Reproduce a token for a given time (to debug a signature mismatch):
  rds-iam-token --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com --port 5432 \\
    --username iam_user --signing-time 2024-01-15T12:34:56Z
  # The IAM policy a role needs (see `rds-iam-token policy --help`):
  rds-iam-token policy --account 123456789012 --resource-id cluster-ABCDEFGHIJKL0123456789 \\
    --username iam_user --region us-east-1

Credentials come from the standard AWS chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN, then AWS_PROFILE's profile (static, SSO, credential_process, assume-role),
web identity, the ECS container endpoint, the EC2 instance metadata service.
Errors go to stderr with exit status 1 (2 for a bad command line); stdout holds only the token.";

/// Shown after the flags of `rds-iam-token policy --help`.
const POLICY_EXAMPLES: &str = "\
Examples:
  # rds-db:connect for one user of one Aurora cluster (the cluster's resource id, not its name):
  rds-iam-token policy --account 123456789012 --resource-id cluster-ABCDEFGHIJKL0123456789 \\
    --username iam_user --region us-east-1
  # Any user of an RDS instance in any region:
  rds-iam-token policy --account 123456789012 --resource-id db-ABCDEFGHIJKL0123456789
  # dsql:DbConnectAdmin on an Aurora DSQL cluster:
  rds-iam-token policy --dsql --admin --account 123456789012 --resource-id abcdefghijklmnopqrst123456 \\
    --region us-east-1";

#[derive(Parser)]
#[command(
    name = "rds-iam-token",
    version,
    about = "Generate an IAM auth token for RDS, Aurora, RDS Proxy or Aurora DSQL",
    long_about = "Generate an IAM database auth token for RDS, Aurora, RDS Proxy or Aurora DSQL \
                  (a drop-in for `aws rds generate-db-auth-token` and \
                  `aws dsql generate-db-connect-auth-token`), or print the IAM policy that \
                  allows connecting. The token is signed locally: no network call is made \
                  unless the credentials themselves come from a service (SSO, STS, ECS, IMDS).",
    after_help = TOKEN_EXAMPLES,
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
    #[command(after_help = POLICY_EXAMPLES)]
    Policy(PolicyArgs),
    /// Diagnose an IAM login step by step: endpoint and region, credentials and IAM
    /// principal, DNS, TCP, TLS, and a login with a fresh token (exit status 0 only if it
    /// succeeds). Never prints a token or a secret.
    #[cfg(feature = "doctor")]
    #[command(after_help = doctor::EXAMPLES)]
    Doctor(doctor::DoctorArgs),
    /// A local proxy for psql, GUI tools and any driver: clients connect without a password,
    /// each connection is logged in upstream with a current IAM token over verified TLS,
    /// then bytes are relayed. Loopback only unless --allow-remote.
    #[cfg(feature = "proxy")]
    #[command(after_help = proxy::EXAMPLES)]
    Proxy(proxy::ProxyArgs),
    /// Write the AWS RDS CA bundle the crate trusts (PEM), for clients that verify the server
    /// themselves: `psql "sslmode=verify-full sslrootcert=FILE ..."`.
    CaBundle(CaBundleArgs),
}

#[derive(Args)]
struct CaBundleArgs {
    /// Write to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// Append the CAs of this PEM file (a private CA, GovCloud's bundle).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct TokenArgs {
    /// The endpoint's DNS name (the name the token is signed for), e.g.
    /// mydb.cluster-abc123.us-east-1.rds.amazonaws.com.
    #[arg(long, value_name = "HOST")]
    hostname: Option<String>,
    /// The endpoint's port, e.g. 5432 for PostgreSQL, 3306 for MySQL: required, a token is
    /// valid for one port (Aurora DSQL: 5432, the default there).
    #[arg(long)]
    port: Option<u16>,
    /// The database user, e.g. iam_user (for DSQL, the role; `admin` signs DbConnectAdmin).
    #[arg(long, value_name = "USER")]
    username: Option<String>,
    /// The region, e.g. us-east-1 (default: inferred from the hostname).
    #[arg(long)]
    region: Option<String>,
    /// An Aurora DSQL token (`DbConnect`; `DbConnectAdmin` for the `admin` role) whatever the
    /// hostname (a `<id>.dsql.<region>.on.aws` hostname gets one without the flag).
    #[arg(long)]
    dsql: bool,
    /// A DSQL token for the `admin` role (`DbConnectAdmin`): the same as --username admin.
    #[arg(long)]
    admin: bool,
    /// Token lifetime in seconds, e.g. 300 (RDS: at most 900; DSQL: at most 604800).
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    expires_in: u64,
    /// Sign as of this time (RFC 3339) instead of now, e.g. 2024-01-15T12:34:56Z.
    #[arg(long, value_name = "TIME")]
    signing_time: Option<String>,
}

#[derive(Args)]
struct PolicyArgs {
    /// The AWS account id, e.g. 123456789012 (12 digits, or `*`).
    #[arg(long)]
    account: String,
    /// The DbiResourceId / DbClusterResourceId / proxy id (`db-...`, `cluster-...`,
    /// `prx-...`), or the DSQL cluster id with --dsql, e.g. cluster-ABCDEFGHIJKL0123456789.
    #[arg(long, value_name = "ID")]
    resource_id: String,
    /// The database user, e.g. iam_user (`*` for all); not used with --dsql.
    #[arg(long, default_value = "*", value_name = "USER")]
    username: String,
    /// The region, e.g. us-east-1 (or `*`).
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
        #[cfg(feature = "doctor")]
        Some(Command::Doctor(args)) => return doctor::run(&args).await,
        #[cfg(feature = "proxy")]
        Some(Command::Proxy(args)) => return proxy::run(&args).await,
        Some(Command::CaBundle(args)) => ca_bundle(&args),
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
    // The hostname (and a given port) first: a bad one is the message, whatever else lacks.
    let endpoint = Endpoint::new(hostname, args.port.unwrap_or(DSQL_PORT))
        .map_err(|e| explain(&e, Where::Token))?;
    // A DSQL endpoint's name says so: its token is DSQL's, on DSQL's one port.
    let dsql = args.dsql || endpoint.is_dsql();
    if args.port.is_none() && !dsql {
        usage(
            "--port is required: a token is valid for one port (5432 for PostgreSQL, 3306 for \
             MySQL, as the endpoint listens)",
        );
    }
    let request = if dsql {
        TokenRequest::dsql(&endpoint, dsql_role(args.admin, args.username.as_deref()))
    } else {
        if args.admin {
            usage(
                "--admin is for Aurora DSQL tokens (its `admin` role): add --dsql, or drop --admin",
            );
        }
        TokenRequest::rds(
            &endpoint,
            args.username.as_deref().ok_or("--username is required")?,
        )
    };
    let mut request = request.expires_in(Duration::from_secs(args.expires_in));
    if let Some(region) = &args.region {
        request = request.region(region);
    }
    let request = request.build().map_err(|e| explain(&e, Where::Token))?;
    if !args.dsql && dsql {
        let action = if request.action() == Action::DsqlConnectAdmin {
            "DbConnectAdmin"
        } else {
            "DbConnect"
        };
        eprintln!("note: `{hostname}` is an Aurora DSQL endpoint: signing a DSQL token ({action})");
    }

    let mut generator = TokenGenerator::builder_from_env(Some(request.region()));
    if let Some(at) = &args.signing_time {
        generator = generator.clock(FixedClock::new(parse_rfc3339(at)?));
    }
    let generator = generator.build();
    let token = generator
        .generate(&request)
        .await
        .map_err(|e| explain(&e, Where::Token))?;
    Ok(token.expose().to_owned())
}

/// The embedded AWS bundle, and the CAs of `--ca-file` after it (checked as PEM first).
fn ca_bundle(args: &CaBundleArgs) -> Result<String, String> {
    let mut pem = rds_iam_auth::tls::aws_ca_bundle_pem().trim_end().to_owned();
    if let Some(path) = &args.ca_file {
        rds_iam_auth::TrustStore::empty()
            .with_ca_file(path)
            .map_err(|e| explain(&e, Where::Token))?;
        let extra = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        pem.push('\n');
        pem.push_str(extra.trim_end());
    }
    match &args.output {
        None => Ok(pem),
        Some(path) => {
            std::fs::write(path, format!("{pem}\n"))
                .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
            eprintln!("wrote the CA bundle to {}", path.display());
            std::process::exit(0);
        }
    }
}

fn policy(args: &PolicyArgs) -> Result<String, String> {
    if args.dsql {
        let arn = DsqlClusterArn::new(&args.region, &args.account, &args.resource_id)
            .map_err(|e| explain(&e, Where::Token))?;
        // The action the token command signs for this user: admin for the `admin` role.
        let user = (args.username != "*").then_some(args.username.as_str());
        let admin = dsql_role(args.admin, user) == "admin";
        Ok(dsql_connect_policy(&[arn], admin))
    } else {
        let arn = RdsDbUserArn::new(
            &args.region,
            &args.account,
            &args.resource_id,
            &args.username,
        )
        .map_err(|e| explain(&e, Where::Token))?;
        Ok(rds_connect_policy(&[arn]))
    }
}

/// The DSQL role a token is for: `admin` with --admin (or --username admin), the user given
/// otherwise (DbConnect). --admin with another user is a contradiction, refused.
fn dsql_role(admin: bool, username: Option<&str>) -> &str {
    match (admin, username) {
        (true, None | Some("admin")) => "admin",
        (true, Some(other)) => usage(format!(
            "--admin means the `admin` role, and --username is `{other}`: drop --admin for a \
             DbConnect token for `{other}`, or use --username admin"
        )),
        (false, Some(user)) => user,
        (false, None) => "dsql_role",
    }
}

fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|e| format!("--signing-time `{s}` is not an RFC 3339 time: {e}"))
}
