//! `Doctor` names each failure class in its own words: one test per class (no TLS, wrong CA,
//! wrong name, expired certificate, refused port, unresolvable name, rejected token, success),
//! against the harness's real servers and fake ones, with a fake STS for the identity step
//! (whose request must be SigV4-signed for `sts`). And the `doctor` subcommand prints the
//! same, honours `AWS_ENDPOINT_URL_STS`, exits 0 only after a login, and never prints a
//! token or a secret.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use rds_iam_auth::clock::FixedClock;
use rds_iam_auth::doctor::DoctorBuilder;
use rds_iam_auth::doctor::{Doctor, Report, Status};
use rds_iam_auth::{Endpoint, Engine, TokenGenerator, TokenRequest, TrustStore};
use support::capture::{CaptureServer, listen, tls_acceptor};
use support::iam::{self, T0};
use support::{RDS_HOSTNAME, certs, postgres};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ARN: &str = "arn:aws:sts::123456789012:assumed-role/AppRole/session-1";

/// A fake STS on loopback: answers GetCallerIdentity and keeps every request's head.
struct FakeSts {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeSts {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(Self::serve(tcp, seen.clone()));
            }
        });
        Self { url, requests }
    }

    async fn serve(mut tcp: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Head and the short form body: read until the body's length is in.
        while !String::from_utf8_lossy(&request).contains("Version=2011-06-15") {
            match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        seen.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&request).into_owned());
        let body = format!(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <GetCallerIdentityResult><Arn>{ARN}</Arn><UserId>AROAEXAMPLE:session-1</UserId>\
             <Account>123456789012</Account></GetCallerIdentityResult>\
             </GetCallerIdentityResponse>"
        );
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tcp.write_all(response.as_bytes()).await;
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A generator of the test credentials whose clock reads `T0 + secs_after_t0`.
fn generator_at(secs_after_t0: u64) -> TokenGenerator {
    TokenGenerator::builder(iam::credentials())
        .clock(FixedClock::new(
            UNIX_EPOCH + Duration::from_secs(T0 + secs_after_t0),
        ))
        .build()
}

/// A doctor for the harness's PostgreSQL user at `endpoint`, test credentials and clock
/// (T0), trusting only the test CA, STS at `sts`.
fn pg_doctor(endpoint: Endpoint, sts: &FakeSts) -> DoctorBuilder {
    Doctor::builder(Engine::Postgres, endpoint, postgres().user())
        .database(postgres().database())
        .trust(iam::test_trust())
        .generator(generator_at(0))
        .sts_endpoint(&sts.url)
        .connect_timeout(Duration::from_secs(5))
}

/// Sets the harness user's password to the token the doctor signs at T0 for `endpoint`.
async fn accept_t0_token(endpoint: &Endpoint) {
    let request = TokenRequest::rds(endpoint, postgres().user())
        .build()
        .unwrap();
    let token = iam::token_at(&request, UNIX_EPOCH + Duration::from_secs(T0)).await;
    postgres().set_password(token.expose());
}

fn text(report: &Report) -> String {
    report
        .checks()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The check of `step`, which must have `status`; returns its text.
fn step(report: &Report, name: &str, status: Status) -> String {
    let check = report
        .check(name)
        .unwrap_or_else(|| panic!("no `{name}` step:\n{}", text(report)));
    assert_eq!(check.status, status, "{name}:\n{}", text(report));
    check.to_string()
}

fn assert_no_secret(report: &Report) {
    let all = text(report);
    for needle in [
        "wJalrXUtnFEMI",
        "X-Amz-Signature",
        "Action=connect",
        "AKIDEXAMPLE",
    ] {
        assert!(!all.contains(needle), "`{needle}` in the report:\n{all}");
    }
}

#[tokio::test]
async fn success_reports_every_step_and_the_principal() {
    let sts = FakeSts::start().await;
    let endpoint = iam::tunnel_endpoint(postgres().port());
    accept_t0_token(&endpoint).await;
    let report = pg_doctor(endpoint, &sts).build().run().await;
    println!("{}", text(&report));
    assert!(report.logged_in(), "{}", text(&report));
    assert!(step(&report, "endpoint", Status::Pass).contains("region us-east-1 (inferred"));
    assert!(step(&report, "credentials", Status::Pass).contains("access key AKID…MPLE"));
    let identity = step(&report, "identity", Status::Pass);
    assert!(identity.contains(ARN), "{identity}");
    assert!(
        identity.contains("arn:aws:rds-db:us-east-1:123456789012:dbuser:*/iam_user"),
        "{identity}"
    );
    assert!(step(&report, "dns", Status::Pass).contains("127.0.0.1"));
    let tls = step(&report, "tls", Status::Pass);
    assert!(
        tls.contains("TLSv1_3") && tls.contains("chain verifies"),
        "{tls}"
    );
    step(&report, "login", Status::Pass);
    step(&report, "clock", Status::Pass);
    assert_no_secret(&report);

    let requests = sts.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert!(request.starts_with("POST / HTTP/1.1"), "{request}");
    assert!(
        request.contains(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/us-east-1/sts/aws4_request"
        ),
        "not SigV4-signed for sts: {request}"
    );
    assert!(request.contains("Action=GetCallerIdentity&Version=2011-06-15"));
}

#[tokio::test]
async fn a_rejected_token_gets_the_checklist() {
    let sts = FakeSts::start().await;
    let endpoint = iam::tunnel_endpoint(postgres().port());
    accept_t0_token(&endpoint).await;
    // A minute later: another token, which the server refuses.
    let report = pg_doctor(endpoint, &sts)
        .generator(generator_at(60))
        .build()
        .run()
        .await;
    println!("{}", text(&report));
    assert!(!report.logged_in());
    step(&report, "tls", Status::Pass);
    let login = step(&report, "login", Status::Fail);
    assert!(login.contains("rejected a freshly signed token"), "{login}");
    assert!(
        login.contains("1. the user is not allowed IAM logins: `GRANT rds_iam"),
        "{login}"
    );
    assert!(login.contains("rds-db:connect"), "{login}");
    assert_no_secret(&report);
}

#[tokio::test]
async fn an_untrusted_ca_names_the_issuer_and_the_fix() {
    let sts = FakeSts::start().await;
    let report = pg_doctor(iam::tunnel_endpoint(postgres().port()), &sts)
        .trust(TrustStore::aws_default())
        .build()
        .run()
        .await;
    println!("{}", text(&report));
    let tls = step(&report, "tls", Status::Fail);
    assert!(tls.contains("issuer `CN="), "{tls}");
    assert!(tls.contains("is not in the trust store"), "{tls}");
    assert!(tls.contains("--ca-file"), "{tls}");
    assert!(!report.logged_in());
}

#[tokio::test]
async fn a_certificate_for_another_name_says_so() {
    let sts = FakeSts::start().await;
    let endpoint = Endpoint::new("other.cluster-abc123xyz.us-east-1.rds.amazonaws.com", 5432)
        .unwrap()
        .with_dial_address("127.0.0.1", postgres().port())
        .unwrap();
    let report = pg_doctor(endpoint, &sts).build().run().await;
    let tls = step(&report, "tls", Status::Fail);
    assert!(
        tls.contains("not valid for `other.cluster-abc123xyz"),
        "{tls}"
    );
    assert!(
        tls.contains(RDS_HOSTNAME),
        "names what it is valid for: {tls}"
    );
    assert!(!report.logged_in());
}

/// A PostgreSQL look-alike: answers the SSLRequest with `answer`, then (for `S`) TLS with
/// `cert`. Never reads a password: there is none to read.
async fn fake_pg(answer: u8, cert: &'static support::CertFiles) -> CaptureServer {
    CaptureServer::start(move |mut tcp, recorder| async move {
        let mut request = [0u8; 8];
        if tcp.read_exact(&mut request).await.is_err() {
            return;
        }
        let _ = tcp.write_all(&[answer]).await;
        if answer == b'S'
            && let Ok(mut tls) = tls_acceptor(cert).accept(tcp).await
        {
            listen(&mut tls, &recorder).await;
        }
    })
    .await
}

#[tokio::test]
async fn an_expired_certificate_shows_its_dates() {
    let sts = FakeSts::start().await;
    let server = fake_pg(b'S', &certs().expired).await;
    let report = pg_doctor(iam::tunnel_endpoint(server.port), &sts)
        .build()
        .run()
        .await;
    let tls = step(&report, "tls", Status::Fail);
    assert!(tls.contains("the certificate is not valid now"), "{tls}");
    assert!(tls.contains("to 2001-"), "{tls}");
    step(&report, "clock", Status::Warn);
    assert!(
        !server.saw(b"X-Amz-Signature"),
        "a token reached the server"
    );
}

#[tokio::test]
async fn a_server_without_tls_is_named() {
    let sts = FakeSts::start().await;
    let server = fake_pg(b'N', &certs().server).await;
    let report = pg_doctor(iam::tunnel_endpoint(server.port), &sts)
        .build()
        .run()
        .await;
    let tls = step(&report, "tls", Status::Fail);
    assert!(tls.contains("the server offers no TLS"), "{tls}");
    assert!(tls.contains("answered `N`"), "{tls}");
    step(&report, "login", Status::Fail);
    assert!(
        !server.saw(b"X-Amz-Signature"),
        "a token reached the server"
    );
}

#[tokio::test]
async fn a_refused_port_is_a_tcp_failure() {
    let sts = FakeSts::start().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let report = pg_doctor(iam::tunnel_endpoint(port), &sts)
        .build()
        .run()
        .await;
    step(&report, "dns", Status::Pass);
    let tcp = step(&report, "tcp", Status::Fail);
    assert!(
        tcp.contains("cannot connect") && tcp.contains("refused"),
        "{tcp}"
    );
    assert!(tcp.contains("security groups"), "{tcp}");
    step(&report, "tls", Status::Skip);
    assert!(step(&report, "login", Status::Fail).contains("nothing accepts connections"));
}

#[tokio::test]
async fn an_unresolvable_name_is_a_dns_failure() {
    let sts = FakeSts::start().await;
    let endpoint = Endpoint::new(RDS_HOSTNAME, 5432)
        .unwrap()
        .with_dial_address("db.nothing.invalid", 5432)
        .unwrap();
    let report = pg_doctor(endpoint, &sts).build().run().await;
    let dns = step(&report, "dns", Status::Fail);
    assert!(dns.contains("cannot resolve `db.nothing.invalid`"), "{dns}");
    step(&report, "tcp", Status::Skip);
    step(&report, "login", Status::Fail);
}

#[tokio::test]
async fn a_name_without_region_asks_for_one() {
    let sts = FakeSts::start().await;
    let endpoint = Endpoint::new("db.internal.example.com", 5432)
        .unwrap()
        .with_dial_address("127.0.0.1", postgres().port())
        .unwrap();
    let report = pg_doctor(endpoint, &sts).build().run().await;
    let check = step(&report, "endpoint", Status::Fail);
    assert!(check.contains("no region in the hostname"), "{check}");
    assert!(check.contains("--region"), "{check}");
    step(&report, "login", Status::Skip);
}

#[tokio::test]
async fn mysql_success_reports_the_greeting() {
    let Some(maria) = support::mariadb_or_skip() else {
        return;
    };
    let sts = FakeSts::start().await;
    let endpoint = iam::mysql_tunnel_endpoint(maria.port());
    let request = TokenRequest::rds(&endpoint, maria.user()).build().unwrap();
    let token = iam::token_at(&request, UNIX_EPOCH + Duration::from_secs(T0)).await;
    maria.set_password(token.expose());
    let report = Doctor::builder(Engine::MySql, endpoint, maria.user())
        .database(maria.database())
        .trust(iam::test_trust())
        .generator(generator_at(0))
        .sts_endpoint(&sts.url)
        .build()
        .run()
        .await;
    println!("{}", text(&report));
    assert!(report.logged_in(), "{}", text(&report));
    let tls = step(&report, "tls", Status::Pass);
    assert!(tls.contains("MySQL greeting: server"), "{tls}");
    assert_no_secret(&report);
}

/// The subcommand: environment credentials, STS from `AWS_ENDPOINT_URL_STS`, JSON lines,
/// exit status 1 after a rejected login (the harness accepts only a T0 token).
#[tokio::test]
async fn the_cli_prints_one_json_object_per_step() {
    let sts = FakeSts::start().await;
    let pg = postgres();
    let ca = certs().ca.cert_path.clone();
    let url = sts.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rds-iam-token"))
            .env_clear()
            .env("HOME", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            )
            .env("AWS_ENDPOINT_URL_STS", url)
            .args(["doctor", "--engine", "postgres", "--hostname", RDS_HOSTNAME])
            .args(["--username", pg.user(), "--database", pg.database()])
            .args(["--dial", &format!("127.0.0.1:{}", pg.port())])
            .arg("--ca-file")
            .arg(ca)
            .arg("--json")
            .output()
            .expect("run rds-iam-token")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let steps: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "endpoint",
            "credentials",
            "identity",
            "dns",
            "tcp",
            "tls",
            "login",
            "clock"
        ]
    );
    assert_eq!(steps[1]["status"], "pass", "{stdout}");
    assert!(
        steps[1]["message"]
            .as_str()
            .unwrap()
            .contains("EnvironmentVariable"),
        "{stdout}"
    );
    assert_eq!(
        steps[2]["status"], "pass",
        "STS from the environment: {stdout}"
    );
    assert_eq!(steps[5]["status"], "pass", "{stdout}");
    assert_eq!(steps[6]["status"], "fail", "{stdout}");
    assert_eq!(sts.requests().len(), 1);
    for needle in ["wJalrXUtnFEMI", "X-Amz-Signature", "AKIDEXAMPLE"] {
        assert!(!stdout.contains(needle), "`{needle}` printed: {stdout}");
    }
}

/// The subcommand speaks in flags: a server whose CA is not trusted gets `--ca-file`, never
/// the library call (`TrustStore::with_ca_file`) its messages name; `--timeout` bounds each
/// step; an IP address as --hostname is told to use --dial.
#[tokio::test]
async fn the_cli_gives_its_advice_in_flags() {
    let sts = FakeSts::start().await;
    let pg = postgres();
    let url = sts.url.clone();
    let run = move |args: Vec<String>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rds-iam-token"))
            .env_clear()
            .env("HOME", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            )
            .env("AWS_ENDPOINT_URL_STS", &url)
            .arg("doctor")
            .args(args)
            .output()
            .expect("run rds-iam-token")
    };
    let args: Vec<String> = [
        "--engine",
        "postgres",
        "--hostname",
        RDS_HOSTNAME,
        "--username",
        pg.user(),
        "--timeout",
        "3",
        "--dial",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("127.0.0.1:{}", pg.port())])
    .collect();
    let untrusted = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(args)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(untrusted.stdout).unwrap();
    assert_eq!(untrusted.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("--ca-file"), "{stdout}");
    assert!(!stdout.contains("TrustStore::"), "a library call: {stdout}");
    assert!(!stdout.contains(".connect_timeout("), "{stdout}");

    let ip = tokio::task::spawn_blocking(move || {
        run([
            "--engine",
            "postgres",
            "--hostname",
            "10.0.0.5",
            "--username",
            "u",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect())
    })
    .await
    .unwrap();
    let stderr = String::from_utf8(ip.stderr).unwrap();
    assert_eq!(ip.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pass that name as --hostname and the address as --dial 10.0.0.5:PORT"),
        "{stderr}"
    );
}
