//! The `rds-iam-token` example reproduces every botocore vector from environment credentials
//! and `--signing-time`, and reports errors on stderr with a non-zero exit.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use support::vectors;

/// `cargo test` builds the examples next to the test binaries: target/<profile>/examples.
fn cli() -> Command {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path: PathBuf = profile_dir.join("examples").join("rds-iam-token");
    assert!(
        path.exists(),
        "{} not built: run `cargo test` (it builds examples)",
        path.display()
    );
    let mut cmd = Command::new(path);
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
        .args(["--hostname", "db.internal.example.com", "--username", "u"]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("no region given")
    );

    let out = run(cli()
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .args([
            "--hostname",
            "db.abc.us-east-1.rds.amazonaws.com",
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
        let out = run(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let shown: Vec<&str> = args.iter().map(|a| &a[..a.len().min(40)]).collect();
        assert_eq!(out.status.code(), Some(*code), "{shown:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{shown:?}");
        assert!(stderr.contains(needle), "{shown:?}: {stderr}");
    }
}
