//! `rds-iam-token proxy` (feature `proxy`): the library's `Proxy`, run from the command line
//! until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;
use rds_iam_auth::login::TokenService;
use rds_iam_auth::proxy::{FailedLogin, Proxy};
use rds_iam_auth::{TokenCache, TokenGenerator, TrustStore};

use crate::endpoint_flags::{self, EngineArg, seconds};
use crate::wording::{Where, explain, in_flags};

/// Shown after the flags of `rds-iam-token proxy --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  # psql, DBeaver, pgAdmin... connect to 127.0.0.1:15432 with no password:
  rds-iam-token proxy --engine postgres \\
    --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com --username iam_user
  psql \"host=127.0.0.1 port=15432 user=iam_user dbname=appdb sslmode=disable\"
  # Through an SSH tunnel on localhost:15433, for clients that insist on TLS (sslmode=require):
  rds-iam-token proxy --engine postgres --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com \\
    --username iam_user --dial 127.0.0.1:15433 --local-tls
  # MySQL / MariaDB (TLS off on the loopback leg; add --local-tls and connect with --ssl
  # for clients that insist on it):
  rds-iam-token proxy --engine mysql --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com \
    --username iam_user --listen 127.0.0.1:13306
  mysql --host=127.0.0.1 --port=13306 --protocol=TCP --skip-ssl --user=iam_user
  # A Unix socket (psql \"host=/run/user/1000/rds port=5432\"), private to this user:
  rds-iam-token proxy --engine postgres --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com \\
    --unix-socket /run/user/1000/rds

Who may connect: anyone who can reach the listener logs in as this IAM identity. It listens on
loopback only; --allow-remote lifts that (behind a firewall you control only); a Unix socket is
private to this user (0600). Which user: with --username every login is for that user and
clients asking for another are refused: what a team should use for a shared proxy. Without it
the user each client asks for is signed for (one IAM role allowed several database users).
The client's password is ignored and never forwarded. Logs go to stderr, one line per
connection; no token or secret is ever logged. SIGINT/SIGTERM stop accepting, and open
sessions get --shutdown-grace seconds to end.";

#[derive(Args)]
pub(crate) struct ProxyArgs {
    /// The database engine.
    #[arg(long, value_enum)]
    engine: EngineArg,
    /// The endpoint's DNS name (what tokens are signed for and TLS verifies).
    #[arg(long, value_name = "HOST")]
    hostname: String,
    /// The endpoint's port (default: 5432 for PostgreSQL, 3306 for MySQL).
    #[arg(long)]
    port: Option<u16>,
    /// Pin the database user: every login is for it, clients asking for another are refused
    /// (for DSQL, `admin` signs DbConnectAdmin). Without it, the client's user is signed for.
    #[arg(long, value_name = "USER")]
    username: Option<String>,
    /// The database for clients that name none.
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
    /// An Aurora DSQL endpoint whatever the hostname (a `.dsql.` hostname needs no flag).
    #[arg(long)]
    dsql: bool,
    /// Where clients connect (loopback unless --allow-remote).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:15432")]
    listen: SocketAddr,
    /// Listen on a Unix socket in DIR instead (`DIR/.s.PGSQL.<port>`, mode 0600).
    #[arg(long, value_name = "DIR", conflicts_with = "listen")]
    unix_socket: Option<std::path::PathBuf>,
    /// Accept a non-loopback --listen address: anyone who can reach it logs in as this IAM
    /// identity, without a password.
    #[arg(long)]
    allow_remote: bool,
    /// Offer TLS to clients (PostgreSQL sslmode=require, MySQL --ssl / sslMode=REQUIRED)
    /// with a certificate generated now; its SHA-256 fingerprint is printed.
    #[arg(long)]
    local_tls: bool,
    /// Offer TLS to clients with this certificate chain (PEM), with --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "local_tls"
    )]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// MySQL: let the server read client files (`LOAD DATA LOCAL INFILE`), off by default.
    #[arg(long)]
    allow_local_infile: bool,
    /// At most this many client connections at once.
    #[arg(long, value_name = "N", default_value_t = rds_iam_auth::proxy::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// How long each upstream login (and each client's start-up) may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = seconds())]
    timeout: u64,
    /// How long open sessions may go on after SIGINT/SIGTERM, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    shutdown_grace: u64,
    /// Log each connection's steps too (debug level).
    #[arg(long, short)]
    verbose: bool,
}

pub(crate) async fn run(args: &ProxyArgs) -> ExitCode {
    let level = if args.verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let proxy = match proxy_from_args(args) {
        Ok(proxy) => proxy,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let listening = match proxy.bind().await {
        Ok(listening) => listening,
        Err(error) => {
            eprintln!("error: {}", explain(&error, Where::Doctor));
            return ExitCode::FAILURE;
        }
    };
    let at = match (listening.local_addr(), listening.socket_path()) {
        (Some(addr), _) => addr.to_string(),
        (None, Some(path)) => path.display().to_string(),
        (None, None) => String::new(),
    };
    eprintln!(
        "rds-iam-token proxy: listening on {at} for {} (IAM logins over verified TLS)",
        args.hostname
    );
    if args.allow_remote && !args.listen.ip().is_loopback() && args.unix_socket.is_none() {
        eprintln!(
            "warning: listening on {}, not loopback: anyone who can reach it logs in as this IAM \
             identity",
            args.listen
        );
    }
    if let Some(fingerprint) = listening.certificate_fingerprint() {
        eprintln!("local TLS certificate, SHA-256 fingerprint: {fingerprint}");
    }
    eprintln!("connect with:");
    for line in listening.connection_strings() {
        println!("  {line}");
    }
    listening.serve(shutdown_signal()).await;
    ExitCode::SUCCESS
}

/// SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("rds-iam-token proxy: shutting down");
}

fn proxy_from_args(args: &ProxyArgs) -> Result<Proxy, String> {
    let engine = args.engine.engine();
    let endpoint =
        endpoint_flags::endpoint(engine, &args.hostname, args.port, args.dial.as_deref())?;
    // The credentials chain's region (STS, SSO): the endpoint's, as the token command does.
    let region = match &args.region {
        Some(region) => Some(
            rds_iam_auth::Region::new(region.as_str()).map_err(|e| explain(&e, Where::Doctor))?,
        ),
        None => endpoint.inferred_region(),
    };
    let generator = TokenGenerator::builder_from_env(region.as_ref()).build();
    let cache = TokenCache::new(generator);
    let mut builder = Proxy::builder(engine, cache, endpoint)
        .connect_timeout(Duration::from_secs(args.timeout))
        .max_connections(args.max_connections)
        .shutdown_grace(Duration::from_secs(args.shutdown_grace))
        .allow_remote(args.allow_remote)
        .allow_local_infile(args.allow_local_infile)
        .listen(args.listen)
        .rephrase(in_flags);
    if let Some(dir) = &args.unix_socket {
        builder = builder.unix_socket(dir);
    }
    if let Some(user) = &args.username {
        builder = builder.pin_user(user);
    }
    if let Some(database) = &args.database {
        builder = builder.database(database);
    }
    if let Some(region) = &args.region {
        builder = builder.region(region);
    }
    if args.dsql {
        builder = builder.service(TokenService::Dsql);
    }
    if let Some(path) = &args.ca_file {
        let trust = TrustStore::aws_default()
            .with_ca_file(path)
            .map_err(|e| explain(&e, Where::Doctor))?;
        builder = builder.trust(trust);
    }
    if args.local_tls {
        builder = builder.local_tls_generated();
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
        };
        builder = builder.local_tls_pem(read(cert)?, read(key)?);
    }
    builder = builder.on_login_failure(diagnose_failures(args));
    builder.build().map_err(|e| explain(&e, Where::Doctor))
}

/// After a failed login, the doctor's diagnosis (feature `doctor`), at most once a minute:
/// a client retrying in a loop must not flood the terminal or the endpoint.
fn diagnose_failures(args: &ProxyArgs) -> impl Fn(&FailedLogin<'_>) + Send + Sync + 'static {
    let last: Mutex<Option<Instant>> = Mutex::new(None);
    #[cfg(feature = "doctor")]
    let doctor_args = crate::doctor::DoctorArgs::for_proxy(
        matches!(args.engine, EngineArg::Mysql),
        &args.hostname,
        args.port,
        args.region.clone(),
        args.dial.clone(),
        args.ca_file.clone(),
        args.timeout,
    );
    #[cfg(not(feature = "doctor"))]
    let hostname = args.hostname.clone();
    move |failed: &FailedLogin<'_>| {
        let mut last = last.lock().expect("not poisoned");
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
            return;
        }
        *last = Some(Instant::now());
        #[cfg(feature = "doctor")]
        {
            let args = doctor_args.with_user(failed.user, failed.database);
            tokio::spawn(async move {
                eprintln!("the login failed; the doctor's diagnosis:");
                crate::doctor::print_report(&args).await;
            });
        }
        #[cfg(not(feature = "doctor"))]
        eprintln!(
            "the login for `{}` failed; for a step-by-step diagnosis run: rds-iam-token doctor \
             --hostname {hostname} --username {} (features cli,doctor)",
            failed.user.escape_debug(),
            failed.user.escape_debug()
        );
    }
}
