//! Lambda cold start, measured (issue 15): the driver of `scripts/lambda-cold-start.py`.
//!
//! Starts the harness's PostgreSQL and MariaDB (one server recipe, `tests/support/`), runs
//! the script against them, and installs, whenever the script asks, the token a function
//! will sign at a given second (the servers accept exactly one token: the IAM user's
//! password). The Rust functions are the examples as built to deploy (`--profile lambda`,
//! musl); the Python ones are `scripts/lambda-seed/`. Ignored: it needs those builds and PyPI
//! (once), and takes a few minutes. Run it by hand:
//!
//! ```sh
//! rustup target add x86_64-unknown-linux-musl   # once; musl-gcc: apt install musl-tools
//! cargo build --profile lambda --target x86_64-unknown-linux-musl \
//!     --no-default-features --features postgres,mysql \
//!     --example lambda_postgres --example lambda_mysql
//! cargo test --features postgres,mysql,aws-config --test lambda_cold_start -- \
//!     --ignored --nocapture
//! ```
//!
//! `LAMBDA_COLD_START_ARGS` passes options to the script (`--runs 30`, `--rust-dir DIR`,
//! `--extra postgres:nojitter:/path/to/lambda_postgres`, `--only rust-postgres,python-postgres`).
//! The report is printed and written to `target/lambda-cold-start.txt`. The second test,
//! `lambda_functions_after_a_kill_and_with_an_untrusted_ca`, records how each function
//! answers after its connection is killed and when the server's certificate comes from a CA
//! it was not given (the README's comparison), and checks the Rust ones.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rds_iam_auth::{Endpoint, TokenRequest};
use support::iam;
use support::{MariaDbServer, PostgresServer};

/// The name both kinds of functions dial and sign for (the test certificate's SAN; an IP
/// address cannot be a token's host).
const HOST: &str = "localhost";

/// The token the functions sign at `second` (the test credentials, region us-east-1).
fn token_at(runtime: &tokio::runtime::Runtime, port: u16, second: u64) -> String {
    let endpoint = Endpoint::new(HOST, port).expect("endpoint");
    let request = TokenRequest::rds(&endpoint, support::postgres::IAM_USER)
        .region("us-east-1")
        .build()
        .expect("token request");
    let at = UNIX_EPOCH + Duration::from_secs(second);
    runtime
        .block_on(iam::token_at(&request, at))
        .expose()
        .to_owned()
}

/// Makes the token signed at `second` the IAM user's password on `engine`'s server.
fn install(
    runtime: &tokio::runtime::Runtime,
    pg: &PostgresServer,
    maria: &MariaDbServer,
    engine: &str,
    second: u64,
) {
    match engine {
        "postgres" => pg.set_password(&token_at(runtime, pg.port(), second)),
        "mysql" => maria.set_password(&token_at(runtime, maria.port(), second)),
        other => panic!("unknown engine {other}"),
    }
}

/// After the script's `@password ENGINE S` (installed at once), installs S+1, S+2, ... a
/// little before each second starts: a function slower than a second to sign (Python on a
/// busy machine) still finds its token. At a second's boundary a login can race the switch:
/// the script retries such runs and reports how many.
fn follow_the_clock(
    follow: &Mutex<Option<(String, u64)>>,
    done: &AtomicBool,
    runtime: &tokio::runtime::Runtime,
    pg: &PostgresServer,
    maria: &MariaDbServer,
) {
    while !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
        let mut follow = follow.lock().unwrap();
        let Some((engine, next)) = follow.as_mut() else {
            continue;
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        if now + Duration::from_millis(150) >= Duration::from_secs(*next) {
            install(runtime, pg, maria, engine, *next);
            *next += 1;
        }
    }
}

#[test]
#[ignore = "measurement, minutes: needs the --profile lambda musl examples and PyPI; run by hand (see the file's doc)"]
fn lambda_cold_start_rust_and_python_functions() {
    let report = drive(&[]);
    assert!(report.contains(" median "), "no figures: {report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lambda-cold-start.txt");
    std::fs::write(&out, &report).expect("write the report");
    println!("written to {}", out.display());
}

/// The README's comparison of behaviours: each function after its connection is killed,
/// and facing a server whose certificate comes from a CA it was not given.
#[test]
#[ignore = "observation of the Python originals, a minute: needs the --profile lambda musl examples and PyPI; run by hand"]
fn lambda_functions_after_a_kill_and_with_an_untrusted_ca() {
    let other_ca = support::certs().other_ca.cert_path.display().to_string();
    let report = drive(&["--behaviour".to_owned(), other_ca]);
    // Ours: recover at once, and never log in to a server they cannot verify.
    for engine in ["postgres", "mysql"] {
        let line = |what: &str| {
            report
                .lines()
                .find(|l| l.starts_with(&format!("rust-{engine} ")) && l.contains(what))
                .unwrap_or_else(|| panic!("no {what} line for rust-{engine}: {report}"))
                .to_owned()
        };
        assert!(
            line("killed").contains("S | kill | S S S S"),
            "{}",
            line("killed")
        );
        assert!(
            line("untrusted").contains("refused"),
            "{}",
            line("untrusted")
        );
    }
}

/// Starts both servers and runs the script with `args` and those of `LAMBDA_COLD_START_ARGS`,
/// doing what it asks (`@password`, `@kill`); returns its report (its other lines).
fn drive(args: &[String]) -> String {
    let extra = std::env::var("LAMBDA_COLD_START_ARGS").unwrap_or_default();
    let (pg, maria) = support::start_all();
    let maria = maria.expect("the MySQL half needs the MariaDB server (run as root)");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let credentials = iam::credentials();
    let mut script = Command::new("python3")
        .arg(root.join("scripts/lambda-cold-start.py"))
        .arg("--postgres")
        .arg(format!("{HOST}:{}", pg.port()))
        .arg("--mysql")
        .arg(format!("{HOST}:{}", maria.port()))
        .arg("--ca")
        .arg(&support::certs().ca.cert_path)
        .args(args)
        .args(extra.split_whitespace())
        .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 scripts/lambda-cold-start.py");
    let mut to_script = script.stdin.take().expect("stdin");
    let mut report = String::new();
    // The engine whose token follows the clock, and the next second to install.
    let follow: Mutex<Option<(String, u64)>> = Mutex::new(None);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| follow_the_clock(&follow, &done, &runtime, pg, maria));
        for line in BufReader::new(script.stdout.take().expect("stdout")).lines() {
            let line = line.expect("the script's output");
            if let Some(engine) = line.strip_prefix("@kill ") {
                match engine {
                    "postgres" => pg.terminate_backends_of(pg.user()),
                    "mysql" => maria.kill_connections_of(maria.user()),
                    other => panic!("unknown engine {other}"),
                };
                writeln!(to_script, "ok").expect("answer the script");
                continue;
            }
            let Some(ask) = line.strip_prefix("@password ") else {
                println!("{line}");
                report.push_str(&line);
                report.push('\n');
                continue;
            };
            let (engine, second) = ask.split_once(' ').expect("@password ENGINE SECOND");
            let second: u64 = second.parse().expect("a unix second");
            let mut follow = follow.lock().unwrap();
            install(&runtime, pg, maria, engine, second);
            *follow = Some((engine.to_owned(), second + 1));
            drop(follow);
            writeln!(to_script, "ok").expect("answer the script");
        }
        done.store(true, Ordering::SeqCst);
    });
    let status = script.wait().expect("wait for the script");
    assert!(status.success(), "the script failed: {status}");
    report
}
