//! The `rds-iam-token` command reproduces every botocore vector from environment credentials
//! and `--signing-time`, documents every flag in `--help`, and reports errors on stderr with
//! a non-zero exit.

mod support;

use std::process::{Command, Output};

use support::vectors;

/// The binary Cargo built for this test (`required-features = ["cli"]`).
fn cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rds-iam-token"));
    // Only what each test sets: no stray profile, region or credentials from the machine.
    cmd.env_clear()
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run rds-iam-token")
}

#[test]
fn reproduces_every_vector() {
    for v in vectors::all() {
        let mut cmd = cli();
        cmd.env("AWS_ACCESS_KEY_ID", &v.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &v.secret_access_key)
            .args(["--hostname", &v.hostname, "--region", &v.region])
            .args(["--expires-in", &v.expires_in.to_string()])
            .args(["--signing-time", &v.time_utc]);
        if let Some(t) = &v.session_token {
            cmd.env("AWS_SESSION_TOKEN", t);
        }
        if v.is_dsql() {
            cmd.arg("--dsql");
            if v.action == "DbConnectAdmin" {
                cmd.arg("--admin");
            }
        } else {
            cmd.args(["--port", &v.port.unwrap().to_string()])
                .args(["--username", v.username.as_deref().unwrap()]);
        }
        let out = run(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", v.name);
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{}\n", v.expected_token),
            "{}",
            v.name
        );
    }
}

#[test]
fn infers_the_region_when_not_given() {
    let v = vectors::all()
        .into_iter()
        .find(|v| v.name == "pg_no_session_token")
        .unwrap();
    let out = run(cli()
        .env("AWS_ACCESS_KEY_ID", &v.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &v.secret_access_key)
        .args([
            "--hostname",
            &v.hostname,
            "--port",
            "5432",
            "--username",
            "iam_user",
        ])
        .args(["--signing-time", &v.time_utc]));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        v.expected_token
    );
}

#[test]
fn errors_go_to_stderr_with_a_failing_exit() {
    let out = run(cli()
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .args(["--hostname", "10.0.0.7", "--username", "u"]));
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("is an IP address"), "{stderr}");

    let out = run(cli()
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .args(["--hostname", "db.internal.example.com", "--port", "5432"])
        .args(["--username", "u"]));
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(
            "no region given and none can be inferred from hostname `db.internal.example.com`: \
             pass --region (e.g. --region us-east-1)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains(".region("), "a library call: {stderr}");

    let out = run(cli()
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .args([
            "--hostname",
            "db.abc.us-east-1.rds.amazonaws.com",
            "--port",
            "5432",
            "--username",
            "u",
        ])
        .args(["--expires-in", "901"]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("out of range")
    );
}

#[test]
fn missing_credentials_are_a_clear_error() {
    let out = run(cli().args([
        "--hostname",
        "db.abc.us-east-1.rds.amazonaws.com",
        "--port",
        "5432",
        "--username",
        "u",
    ]));
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("could not load AWS credentials"),
        "{stderr}"
    );
    assert!(
        stderr.contains("caused by"),
        "the cause chain is printed: {stderr}"
    );
}

#[test]
fn prints_the_policy_json() {
    let out = run(cli().args([
        "policy",
        "--account",
        "123456789012",
        "--resource-id",
        "cluster-ABC",
        "--username",
        "iam_user",
        "--region",
        "cn-north-1",
    ]));
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["Statement"][0]["Action"], "rds-db:connect");
    assert_eq!(
        doc["Statement"][0]["Resource"][0],
        "arn:aws-cn:rds-db:cn-north-1:123456789012:dbuser:cluster-ABC/iam_user"
    );
    let out = run(cli().args([
        "policy",
        "--account",
        "123456789012",
        "--resource-id",
        "abc123",
        "--dsql",
        "--admin",
    ]));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["Statement"][0]["Action"], "dsql:DbConnectAdmin");
}

/// Hostile flag values, as a table: (extra args, exit code, what stderr must say). Exit 2 is
/// clap refusing the value before the program runs; 1 is the library's typed error.
#[test]
fn hostile_flag_values_are_refused() {
    let long = "a".repeat(10 * 1024);
    let host = "db.abc.us-east-1.rds.amazonaws.com";
    let rows: &[(&[&str], i32, &str)] = &[
        (&["--hostname", host, "--port", "0"], 1, "port 0"),
        (&["--hostname", host, "--port", "65536"], 2, "65536"),
        (
            &["--hostname", host, "--port", "-1"],
            2,
            "unexpected argument",
        ),
        (&["--hostname", host, "--port", "5432x"], 2, "5432x"),
        (&["--hostname", host, "--port", ""], 2, "--port"),
        (&["--hostname", "", "--port", "5432"], 1, "it is empty"),
        (
            &["--hostname", " ", "--port", "5432"],
            1,
            "invalid hostname",
        ),
        (&["--hostname", &long], 1, "10240 bytes"),
        (
            &["--hostname", "db.abc.us-east-1.rds.amazonaws.com."],
            1,
            "trailing dot",
        ),
        (&["--hostname", "bücher.example.com"], 1, "invalid hostname"),
        (
            &["--hostname", "user@db.example.com"],
            1,
            "invalid hostname",
        ),
        (&["--hostname", "db.example.com/x"], 1, "invalid hostname"),
        (&["--hostname", "db.example.com%25"], 1, "invalid hostname"),
        (
            &["--hostname", "db.example.com:5432"],
            1,
            "invalid hostname",
        ),
        (&["--hostname", "127.1"], 1, "IPv4"),
        (&["--hostname", "0x7f000001"], 1, "IPv4"),
        (&["--hostname", "[::1]"], 1, "is an IP address"),
        (
            &["--hostname", "g.global-abc.global.rds.amazonaws.com"],
            1,
            "Global Database writer endpoint",
        ),
        (&["--hostname", host, "--region", ""], 1, "unknown region"),
        (
            &["--hostname", host, "--region", "us-east-1 "],
            1,
            "unknown region",
        ),
        (
            &["--hostname", host, "--region", &long],
            1,
            "unknown region",
        ),
        (
            &["--hostname", host, "--expires-in", "0"],
            1,
            "out of range",
        ),
        (
            &["--hostname", host, "--expires-in", "-5"],
            2,
            "unexpected argument",
        ),
        (
            &["--hostname", host, "--signing-time", "yesterday"],
            1,
            "RFC 3339",
        ),
    ];
    for (args, code, needle) in rows {
        let mut cmd = cli();
        cmd.env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .args(["--username", "u"])
            .args(*args);
        // RDS tokens need a port: the rows that do not test it give one.
        if !args.contains(&"--port") {
            cmd.args(["--port", "5432"]);
        }
        let out = run(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let shown: Vec<&str> = args.iter().map(|a| &a[..a.len().min(40)]).collect();
        assert_eq!(out.status.code(), Some(*code), "{shown:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{shown:?}");
        assert!(stderr.contains(needle), "{shown:?}: {stderr}");
    }
}

#[test]
fn help_lists_every_flag_with_an_example() {
    let out = run(cli().arg("--help"));
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--hostname",
        "--port",
        "--username",
        "--region",
        "--dsql",
        "--admin",
        "--expires-in",
        "--signing-time",
        "--help",
        "--version",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    assert!(help.contains("Examples:"), "{help}");
    assert!(
        help.contains(
            "rds-iam-token --hostname mydb.cluster-abc123.us-east-1.rds.amazonaws.com --port 5432 --username iam_user"
        ),
        "{help}"
    );
    assert!(help.contains("policy"), "the subcommand is listed: {help}");

    let out = run(cli().args(["policy", "--help"]));
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--account",
        "--resource-id",
        "--username",
        "--region",
        "--dsql",
        "--admin",
    ] {
        assert!(
            help.contains(flag),
            "{flag} missing from policy --help:\n{help}"
        );
    }
    assert!(
        help.contains("rds-iam-token policy --account 123456789012"),
        "{help}"
    );
}

#[test]
fn a_bad_command_line_fails_on_stderr() {
    let out = run(cli().args([
        "--hostname",
        "db.abc.us-east-1.rds.amazonaws.com",
        "--bogus",
    ]));
    assert_eq!(out.status.code(), Some(2), "clap's usage error status");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--bogus"), "{stderr}");

    let out = run(cli().args(["--port", "not-a-port", "--username", "u"]));
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8(out.stderr).unwrap().contains("--port"),
        "the offending flag is named"
    );

    let out = run(cli().args(["--username", "u"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("--hostname is required")
    );
}

/// The first vector without a session token, and its token as the CLI must print it.
fn plain_vector() -> vectors::Vector {
    vectors::all()
        .into_iter()
        .find(|v| v.session_token.is_none() && !v.is_dsql())
        .expect("a vector without session token")
}

fn token_args(cmd: &mut Command, v: &vectors::Vector) {
    cmd.args(["--hostname", &v.hostname, "--region", &v.region])
        .args(["--port", &v.port.unwrap().to_string()])
        .args(["--username", v.username.as_deref().unwrap()])
        .args(["--expires-in", &v.expires_in.to_string()])
        .args(["--signing-time", &v.time_utc]);
}

#[test]
fn credentials_from_a_profile_file() {
    // The chain's profile provider (after the environment, which is empty here).
    let v = plain_vector();
    let dir = std::env::temp_dir().join(format!("rds-iam-token-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let credentials = dir.join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            v.access_key_id, v.secret_access_key
        ),
    )
    .unwrap();
    let mut cmd = cli();
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_CONFIG_FILE", dir.join("config"));
    token_args(&mut cmd, &v);
    let out = run(&mut cmd);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        v.expected_token
    );
}

#[test]
fn credentials_over_http_from_the_container_endpoint() {
    // The chain's ECS provider, served from loopback: the lazily built HTTP client of
    // `TokenGenerator::builder_from_env` is built and used when a provider does call out.
    use std::io::{Read, Write};
    // Container credentials always carry a session token.
    let v = vectors::all()
        .into_iter()
        .find(|v| v.session_token.is_some() && !v.is_dsql())
        .expect("a vector with a session token");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = format!(
        r#"{{"AccessKeyId":"{}","SecretAccessKey":"{}","Token":"{}","Expiration":"2099-01-01T00:00:00Z"}}"#,
        v.access_key_id,
        v.secret_access_key,
        v.session_token.as_deref().unwrap()
    );
    // Every connection is answered (the client may open more than one); the requests are
    // collected for the assertions. The thread ends with the test process.
    let (requests, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.flush();
            let _ = requests.send(String::from_utf8_lossy(&request).into_owned());
        }
    });
    let mut cmd = cli();
    cmd.env(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("http://127.0.0.1:{port}/credentials"),
    );
    token_args(&mut cmd, &v);
    let out = run(&mut cmd);
    let requests: Vec<String> = received.try_iter().collect();
    assert!(
        out.status.success(),
        "{}\nrequests: {requests:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        requests.iter().all(|r| r.starts_with("GET /credentials ")),
        "{requests:?}"
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        v.expected_token
    );
}

fn with_keys(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
}

/// An IP address as --hostname: the token command dials nothing, so the advice is to sign for
/// the DNS name and connect to the address verifying that name, in flags and a psql line.
#[test]
fn an_ip_address_gets_advice_in_flags() {
    let out = run(with_keys(&mut cli()).args(["--hostname", "10.0.0.7", "--username", "u"]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        "error: `10.0.0.7` is an IP address, but a token is signed for the endpoint's DNS name \
         (the name TLS verifies): pass that name as --hostname (e.g. \
         mydb.cluster-abc123.us-east-1.rds.amazonaws.com) and connect to 10.0.0.7 verifying \
         that name (psql: \"host=<name> hostaddr=10.0.0.7 sslmode=verify-full\")"
    );
    assert!(!stderr.contains("dial address"), "{stderr}");
}

/// An Aurora Global Database writer endpoint: the region is a flag too.
#[test]
fn a_global_writer_endpoint_asks_for_region_as_a_flag() {
    let out = run(with_keys(&mut cli()).args([
        "--hostname",
        "db.global-abc.global.rds.amazonaws.com",
        "--port",
        "5432",
        "--username",
        "u",
    ]));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("Pass --region with the primary cluster's region"),
        "{stderr}"
    );
    assert!(!stderr.contains(".region("), "{stderr}");
}

/// RDS tokens are for one port: no silent 5432 (a MySQL user who forgot --port got a token
/// for the wrong port). Exit status 2, as for any bad command line.
#[test]
fn the_port_is_required_for_rds_tokens() {
    let out = run(with_keys(&mut cli()).args([
        "--hostname",
        "db.abc.us-east-1.rds.amazonaws.com",
        "--username",
        "u",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(
            "error: --port is required: a token is valid for one port (5432 for PostgreSQL, \
             3306 for MySQL, as the endpoint listens)"
        ),
        "{stderr}"
    );
}

const DSQL_HOST: &str = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";

/// A DSQL hostname signs a DSQL token without --dsql (and without --port: DSQL listens on
/// 5432 only), `DbConnectAdmin` for the admin role; a note on stderr says so.
#[test]
fn a_dsql_hostname_signs_a_dsql_token() {
    let out = run(with_keys(&mut cli()).args(["--hostname", DSQL_HOST, "--username", "admin"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(
        token.starts_with(&format!("{DSQL_HOST}/?Action=DbConnectAdmin&")),
        "{token}"
    );
    assert!(
        token.contains("%2Fdsql%2Faws4_request"),
        "service dsql: {token}"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "note: `{DSQL_HOST}` is an Aurora DSQL endpoint: signing a DSQL token (DbConnectAdmin)"
        )
    );
    // The same token as with --dsql.
    let flagged = run(with_keys(&mut cli())
        .args(["--dsql", "--hostname", DSQL_HOST, "--username", "admin"])
        .args(["--signing-time", "2024-01-15T12:34:56Z"]));
    let detected = run(with_keys(&mut cli())
        .args(["--hostname", DSQL_HOST, "--username", "admin"])
        .args(["--signing-time", "2024-01-15T12:34:56Z"]));
    assert_eq!(flagged.stdout, detected.stdout);
    // Another role: DbConnect.
    let out = run(with_keys(&mut cli()).args(["--hostname", DSQL_HOST, "--username", "reader"]));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("?Action=DbConnect&")
    );
}

/// `--admin` with another user is a contradiction, not silently an admin token; `--admin` on
/// an RDS endpoint too.
#[test]
fn admin_with_another_user_is_refused() {
    let out = run(with_keys(&mut cli()).args([
        "--dsql",
        "--admin",
        "--username",
        "bob",
        "--hostname",
        DSQL_HOST,
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(
            "error: --admin means the `admin` role, and --username is `bob`: drop --admin for a \
             DbConnect token for `bob`, or use --username admin"
        ),
        "{stderr}"
    );
    let out = run(with_keys(&mut cli()).args([
        "--admin",
        "--hostname",
        "db.abc.us-east-1.rds.amazonaws.com",
        "--port",
        "5432",
        "--username",
        "u",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("--admin is for Aurora DSQL tokens")
    );
}

/// `policy --dsql --username admin` allows what the token command signs for admin.
#[test]
fn the_dsql_policy_of_admin_allows_the_admin_token() {
    let policy = |extra: &[&str]| {
        let out = run(cli()
            .args(["policy", "--dsql", "--account", "123456789012"])
            .args([
                "--resource-id",
                "abcdefghijklmnopqrstuvwxyz",
                "--region",
                "us-east-1",
            ])
            .args(extra));
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, admin) = policy(&["--username", "admin"]);
    assert_eq!(code, Some(0));
    assert!(admin.contains("\"dsql:DbConnectAdmin\""), "{admin}");
    let (_, flag) = policy(&["--admin"]);
    assert_eq!(flag, admin);
    let (_, role) = policy(&["--username", "reader"]);
    assert!(role.contains("\"dsql:DbConnect\""), "{role}");
    let (code, _) = policy(&["--admin", "--username", "reader"]);
    assert_eq!(code, Some(2));
}

/// The messages of a bad port and a bad lifetime: DSQL's port is 5432, and one unit.
#[test]
fn port_and_lifetime_messages_are_exact() {
    let host = "db.abc.us-east-1.rds.amazonaws.com";
    let out =
        run(with_keys(&mut cli()).args(["--hostname", host, "--port", "0", "--username", "u"]));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap().trim_end(),
        "error: port 0 cannot be dialled: pass the port the database listens on (5432 for \
         PostgreSQL and Aurora DSQL, 3306 for MySQL)"
    );
    let out = run(with_keys(&mut cli())
        .args(["--hostname", host, "--port", "5432", "--username", "u"])
        .args(["--expires-in", "0"]));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap().trim_end(),
        "error: token lifetime of 0 s is out of range: rds-db tokens live between 1 s and 900 s"
    );
}

#[test]
fn ca_bundle_writes_the_trusted_cas_as_pem() {
    let out = run(cli().arg("ca-bundle"));
    assert!(out.status.success(), "{out:?}");
    let pem = String::from_utf8(out.stdout).unwrap();
    // The embedded bundle, whole: every certificate the default trust store holds.
    assert_eq!(
        pem.matches("-----BEGIN CERTIFICATE-----").count(),
        rds_iam_auth::TrustStore::aws_default().len()
    );
    assert!(pem.trim_end().ends_with("-----END CERTIFICATE-----"));
    let extra = support::certs().ca.cert_pem.clone();
    let dir = std::env::temp_dir().join(format!("rds-iam-ca-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, output) = (dir.join("ca.pem"), dir.join("bundle.pem"));
    std::fs::write(&ca, &extra).unwrap();
    let out = run(cli()
        .args(["ca-bundle", "--ca-file"])
        .arg(&ca)
        .arg("--output")
        .arg(&output));
    assert!(out.status.success(), "{out:?}");
    let written = std::fs::read_to_string(&output).unwrap();
    assert!(written.ends_with(&extra), "the extra CA comes last");
    let parsed = rds_iam_auth::TrustStore::empty()
        .with_ca_pem(written.as_bytes())
        .unwrap();
    assert_eq!(
        parsed.len(),
        rds_iam_auth::TrustStore::aws_default().len() + 1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "proxy")]
#[test]
fn the_proxy_refuses_a_non_loopback_listen_address_in_flags() {
    let out = run(cli().args([
        "proxy",
        "--engine",
        "postgres",
        "--hostname",
        "mydb.cluster-abc123.us-east-1.rds.amazonaws.com",
        "--listen",
        "0.0.0.0:15432",
    ]));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--allow-remote"), "{stderr}");
    let help = run(cli().args(["proxy", "--help"]));
    let help = String::from_utf8(help.stdout).unwrap();
    for said in [
        "--username",
        "anyone who can reach",
        "--unix-socket",
        "0600",
        "--local-tls",
    ] {
        assert!(help.contains(said), "{said} not in:\n{help}");
    }
}

/// Zero for a duration or a limit is refused by the command line's parser (exit 2, the flag
/// named), before anything is dialled.
#[cfg(all(feature = "proxy", feature = "doctor"))]
#[test]
fn zero_timeouts_and_limits_are_refused_with_their_flag() {
    let host = "mydb.cluster-abc123.us-east-1.rds.amazonaws.com";
    let rows: &[&[&str]] = &[
        &[
            "doctor",
            "--engine",
            "postgres",
            "--username",
            "u",
            "--timeout",
            "0",
        ],
        &["proxy", "--engine", "postgres", "--timeout", "0"],
        &["proxy", "--engine", "mysql", "--max-connections", "0"],
    ];
    for args in rows {
        let out = run(cli().args(*args).args(["--hostname", host]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let flag = args[args.len() - 2];
        assert!(
            stderr.contains(&format!("invalid value '0' for '{flag}")),
            "{args:?}: {stderr}"
        );
    }
}
