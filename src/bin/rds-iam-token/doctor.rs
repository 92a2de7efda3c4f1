//! `rds-iam-token doctor` (feature `doctor`): the library's `Doctor`, run from the command
//! line. A separate feature because it links both database drivers, which the token
//! command's cold start does not need.

use std::process::ExitCode;

use clap::Args;
use rds_iam_auth::TrustStore;
use rds_iam_auth::doctor::{Check, Doctor, Status};

use crate::endpoint_flags::{self, EngineArg};
use crate::wording::{Where, explain, in_flags};

/// Shown after the flags of `rds-iam-token doctor --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  rds-iam-token doctor --engine postgres \\
    --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com --username iam_user
  # Through an SSH tunnel on localhost:15432, as scripts read it:
  rds-iam-token doctor --engine mysql --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com \\
    --username iam_user --dial 127.0.0.1:15432 --json

Each step prints one line, ✓ (works), ✗ (broken), ! (worth a look) or - (not checked), with
the cause and the fix. STS is reached at AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL when set.";

#[derive(Args)]
pub(crate) struct DoctorArgs {
    /// The database engine.
    #[arg(long, value_enum)]
    engine: EngineArg,
    /// The endpoint's DNS name (what the token is signed for and TLS verifies).
    #[arg(long, value_name = "HOST")]
    hostname: String,
    /// The endpoint's port (default: 5432 for PostgreSQL, 3306 for MySQL).
    #[arg(long)]
    port: Option<u16>,
    /// The database user.
    #[arg(long, value_name = "USER")]
    username: String,
    /// The database (PostgreSQL's default is the user name).
    #[arg(long)]
    database: Option<String>,
    /// The region (default: inferred from the hostname).
    #[arg(long)]
    region: Option<String>,
    /// Connect here instead (a tunnel, a CNAME), still signing for and verifying --hostname.
    #[arg(long, value_name = "HOST:PORT")]
    dial: Option<String>,
    /// A PEM file of CAs to trust besides the AWS ones (GovCloud, a private CA).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// How long each network step (DNS, TCP, TLS, login, STS) may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = crate::endpoint_flags::seconds())]
    timeout: u64,
    /// One JSON object per step, one per line, instead of text.
    #[arg(long)]
    json: bool,
}

impl DoctorArgs {
    /// The doctor of a proxy's endpoint; the user and database are the failed login's
    /// ([`with_user`](Self::with_user)).
    #[cfg(feature = "proxy")]
    pub(crate) fn for_proxy(
        mysql: bool,
        hostname: &str,
        port: Option<u16>,
        region: Option<String>,
        dial: Option<String>,
        ca_file: Option<std::path::PathBuf>,
        timeout: u64,
    ) -> Self {
        Self {
            engine: if mysql {
                EngineArg::Mysql
            } else {
                EngineArg::Postgres
            },
            hostname: hostname.to_owned(),
            port,
            username: String::new(),
            database: None,
            region,
            dial,
            ca_file,
            timeout,
            json: false,
        }
    }

    #[cfg(feature = "proxy")]
    pub(crate) fn with_user(&self, user: &str, database: &str) -> Self {
        Self {
            engine: self.engine,
            hostname: self.hostname.clone(),
            port: self.port,
            username: user.to_owned(),
            database: Some(database.to_owned()),
            region: self.region.clone(),
            dial: self.dial.clone(),
            ca_file: self.ca_file.clone(),
            timeout: self.timeout,
            json: false,
        }
    }
}

/// Runs the doctor and prints its checks to stderr (the proxy's diagnosis of a failed login).
#[cfg(feature = "proxy")]
pub(crate) async fn print_report(args: &DoctorArgs) {
    match doctor_from_args(args) {
        Ok(doctor) => {
            for check in doctor.run().await.checks() {
                eprintln!("{}", in_flags(&check.to_string()));
            }
        }
        Err(message) => eprintln!("error: {message}"),
    }
}

pub(crate) async fn run(args: &DoctorArgs) -> ExitCode {
    let doctor = match doctor_from_args(args) {
        Ok(doctor) => doctor,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let report = doctor.run().await;
    for check in report.checks() {
        if args.json {
            println!("{}", check_json(check));
        } else {
            // The report's advice in this command's flags (`--ca-file`, not a library call).
            println!("{}", in_flags(&check.to_string()));
        }
    }
    if report.logged_in() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn doctor_from_args(args: &DoctorArgs) -> Result<Doctor, String> {
    let engine = args.engine.engine();
    let endpoint =
        endpoint_flags::endpoint(engine, &args.hostname, args.port, args.dial.as_deref())?;
    let mut builder = Doctor::builder(engine, endpoint, &args.username)
        .connect_timeout(std::time::Duration::from_secs(args.timeout));
    if let Some(database) = &args.database {
        builder = builder.database(database);
    }
    if let Some(region) = &args.region {
        builder = builder.region(region);
    }
    if let Some(path) = &args.ca_file {
        let trust = TrustStore::aws_default()
            .with_ca_file(path)
            .map_err(|e| explain(&e, Where::Doctor))?;
        builder = builder.trust(trust);
    }
    Ok(builder.build())
}

fn check_json(check: &Check) -> serde_json::Value {
    serde_json::json!({
        "step": check.step,
        "ok": check.status != Status::Fail,
        "status": check.status.as_str(),
        "message": in_flags(&check.message),
        "details": check.details.iter().map(|d| in_flags(d)).collect::<Vec<_>>(),
        "fix": check.fix.as_deref().map(in_flags),
    })
}
