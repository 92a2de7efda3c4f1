//! The token never leaves the process except inside a verified TLS session (MySQL).
//!
//! A fake MySQL server on loopback records every byte it receives (and, once a TLS session
//! is established, every decrypted byte). With a greeting that lacks TLS support, a
//! certificate from another CA, for another name or expired, or a switch to
//! `mysql_clear_password` sent in plaintext (a downgrade attempt), the connection must fail
//! and the capture must hold no byte of the token, nor even the handshake response that
//! carries the user name. A positive control (a trusted certificate) shows the capture
//! would see the token.

mod support;

use std::time::Duration;

use rds_iam_auth::mysql_async::{self, DriverError};
use rds_iam_auth::{Engine, Error, IamAuthToken, MySqlConnector};
use support::capture::{CaptureServer, Recorder, error_chain, listen, tls_acceptor};
use support::iam::{self, TestClock};
use support::{CertFiles, certs};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// `CLIENT_SSL`: the server can switch to TLS after its greeting.
const CLIENT_SSL: u32 = 0x800;
/// What the fake server offers besides TLS: protocol 4.1, secure connection, plugin auth
/// (with length-encoded data), connect attributes, multi statements/results.
const BASE_CAPABILITIES: u32 = 0x1
    | 0x2
    | 0x4
    | 0x8
    | 0x200
    | 0x2000
    | 0x8000
    | 0x1_0000
    | 0x2_0000
    | 0x8_0000
    | 0x10_0000
    | 0x20_0000;

#[derive(Clone, Copy)]
enum Answer {
    /// A greeting without `CLIENT_SSL`; then listen to whatever comes.
    NoTls,
    /// A greeting with `CLIENT_SSL`, then, in answer to the client's SSLRequest, a plaintext
    /// AuthSwitchRequest to `mysql_clear_password` instead of a TLS handshake (what a
    /// man in the middle stripping TLS would try); then listen.
    CleartextSwitchBeforeTls,
    /// A greeting without `CLIENT_SSL` immediately followed by an AuthSwitchRequest to
    /// `mysql_clear_password`; then listen.
    UnsolicitedCleartextSwitch,
    /// A greeting with `CLIENT_SSL`, then TLS with this certificate; if the handshake
    /// succeeds, switch the client to `mysql_clear_password` (as RDS does), record the
    /// password and reject it with error 1045.
    Tls(&'static CertFiles),
    /// Accept the TCP connection and say nothing.
    Silent,
}

async fn fake_server(answer: Answer) -> CaptureServer {
    CaptureServer::start(move |tcp, rec| serve(tcp, answer, rec)).await
}

/// Neither the token nor the handshake response that carries the user name (and would
/// carry a password hash) reached the server.
fn assert_no_token_bytes(server: &CaptureServer, token: &IamAuthToken) {
    server.assert_never_saw(token.expose(), &[b"iam_user"]);
}

/// A MySQL packet: 3-byte little-endian length, sequence id, payload.
fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    p.push(seq);
    p.extend_from_slice(payload);
    p
}

/// HandshakeV10, as MySQL 8.0 sends it, offering `mysql_native_password`.
fn greeting(capabilities: u32) -> Vec<u8> {
    let mut g = vec![10];
    g.extend_from_slice(b"8.0.36-fake\0");
    g.extend_from_slice(&7u32.to_le_bytes()); // connection id
    g.extend_from_slice(b"abcdefgh\0"); // scramble part 1 and filler
    g.extend_from_slice(&(capabilities as u16).to_le_bytes());
    g.push(0xff); // utf8mb4_0900_ai_ci
    g.extend_from_slice(&2u16.to_le_bytes()); // SERVER_STATUS_AUTOCOMMIT
    g.extend_from_slice(&((capabilities >> 16) as u16).to_le_bytes());
    g.push(21); // scramble length
    g.extend_from_slice(&[0; 10]);
    g.extend_from_slice(b"ijklmnopqrst\0"); // scramble part 2
    g.extend_from_slice(b"mysql_native_password\0");
    g
}

fn cleartext_switch() -> Vec<u8> {
    let mut p = vec![0xfe];
    p.extend_from_slice(b"mysql_clear_password\0");
    p
}

fn access_denied() -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&1045u16.to_le_bytes());
    p.extend_from_slice(
        b"#28000Access denied for user 'iam_user'@'localhost' (using password: YES)",
    );
    p
}

async fn read_packet(s: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.ok()?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let mut p = head.to_vec();
    p.resize(4 + len, 0);
    s.read_exact(&mut p[4..]).await.ok()?;
    Some(p)
}

async fn write(s: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) {
    // The client may already have hung up: that is what the tests want.
    let _ = s.write_all(bytes).await;
}

async fn serve(mut tcp: TcpStream, answer: Answer, rec: Recorder) {
    let record = |bytes: &[u8]| rec.record(bytes);
    match answer {
        Answer::Silent => tokio::time::sleep(Duration::from_secs(5)).await,
        Answer::NoTls => {
            write(&mut tcp, &packet(0, &greeting(BASE_CAPABILITIES))).await;
            listen(&mut tcp, &rec).await;
        }
        Answer::UnsolicitedCleartextSwitch => {
            let mut bytes = packet(0, &greeting(BASE_CAPABILITIES));
            bytes.extend(packet(2, &cleartext_switch()));
            write(&mut tcp, &bytes).await;
            listen(&mut tcp, &rec).await;
        }
        Answer::CleartextSwitchBeforeTls => {
            write(
                &mut tcp,
                &packet(0, &greeting(BASE_CAPABILITIES | CLIENT_SSL)),
            )
            .await;
            let Some(ssl_request) = read_packet(&mut tcp).await else {
                return;
            };
            record(&ssl_request);
            write(&mut tcp, &packet(2, &cleartext_switch())).await;
            listen(&mut tcp, &rec).await;
        }
        Answer::Tls(cert) => {
            write(
                &mut tcp,
                &packet(0, &greeting(BASE_CAPABILITIES | CLIENT_SSL)),
            )
            .await;
            let Some(ssl_request) = read_packet(&mut tcp).await else {
                return;
            };
            record(&ssl_request);
            let Ok(mut tls) = tls_acceptor(cert).accept(tcp).await else {
                return; // the client refused the certificate
            };
            let Some(response) = read_packet(&mut tls).await else {
                return;
            };
            record(&response);
            write(&mut tls, &packet(3, &cleartext_switch())).await;
            if let Some(password) = read_packet(&mut tls).await {
                record(&password);
            }
            write(&mut tls, &packet(5, &access_denied())).await;
            let _ = tls.shutdown().await;
        }
    }
}

/// A connector signed for the RDS-looking name, dialling the fake server, trusting the
/// harness's test CA.
async fn connector_to(server: &CaptureServer) -> (MySqlConnector, IamAuthToken) {
    let clock = TestClock::new();
    let connector = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(server.port))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let token = iam::token_at(connector.token_request(), clock.at()).await;
    (connector, token)
}

#[tokio::test]
async fn positive_control_a_trusted_server_sees_the_token() {
    let server = fake_server(Answer::Tls(&certs().server)).await;
    let (connector, token) = connector_to(&server).await;
    let err = connector
        .connect()
        .await
        .expect_err("the fake server rejects");
    assert!(
        matches!(
            err,
            Error::AuthenticationRejected {
                engine: Engine::MySql,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.connections(), 2, "one retry");
    assert!(
        server.saw(token.expose().as_bytes()),
        "the capture must see a token sent over verified TLS, else the checks below prove nothing"
    );
    assert!(server.saw(b"iam_user"));
}

#[tokio::test]
async fn a_greeting_without_tls_support_fails_before_any_password() {
    let server = fake_server(Answer::NoTls).await;
    let (connector, token) = connector_to(&server).await;
    let err = connector.connect().await.expect_err("no plaintext login");
    let Error::Connect {
        engine: Engine::MySql,
        source,
        ..
    } = &err
    else {
        panic!("{}", error_chain(&err))
    };
    assert!(
        matches!(
            source.downcast_ref::<mysql_async::Error>(),
            Some(mysql_async::Error::Driver(
                DriverError::NoClientSslFlagFromServer
            ))
        ),
        "{}",
        error_chain(&err)
    );
    assert!(err.to_string().contains("never sent without"), "{err}");
    assert_eq!(server.connections(), 1, "not retried");
    assert_eq!(server.received(), b"", "the client sent nothing at all");
    assert_no_token_bytes(&server, &token);
}

#[tokio::test]
async fn a_switch_to_cleartext_before_tls_is_refused() {
    for answer in [
        Answer::CleartextSwitchBeforeTls,
        Answer::UnsolicitedCleartextSwitch,
    ] {
        let server = fake_server(answer).await;
        let (connector, token) = connector_to(&server).await;
        let err = connector.connect().await.expect_err("downgrade must fail");
        assert!(
            matches!(
                err,
                Error::Connect {
                    engine: Engine::MySql,
                    ..
                }
            ),
            "{}",
            error_chain(&err)
        );
        assert_eq!(server.connections(), 1, "not retried");
        assert_no_token_bytes(&server, &token);
    }
}

async fn refused_certificate(cert: &'static CertFiles, expected: &str, hint: &str) {
    let server = fake_server(Answer::Tls(cert)).await;
    let (connector, token) = connector_to(&server).await;
    let err = connector
        .connect()
        .await
        .expect_err("certificate must be refused");
    let chain = error_chain(&err);
    assert!(
        matches!(
            err,
            Error::Connect {
                engine: Engine::MySql,
                ..
            }
        ),
        "{chain}"
    );
    assert!(chain.contains(expected), "{expected} not in {chain}");
    assert!(err.to_string().contains(hint), "{hint} not in {err}");
    let report = err.report();
    for said_once in ["invalid peer certificate", "Input/output error"] {
        assert!(
            report.matches(said_once).count() <= 1,
            "{said_once}: {report}"
        );
    }
    assert_eq!(server.connections(), 1, "a TLS failure is not retried");
    assert_no_token_bytes(&server, &token);
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    refused_certificate(&certs().other_ca_server, "UnknownIssuer", "with_ca_file").await;
}

#[tokio::test]
async fn certificate_for_another_name_is_refused() {
    refused_certificate(
        &certs().wrong_name,
        "NotValidForName",
        "not valid for the signing hostname",
    )
    .await;
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    refused_certificate(&certs().expired, "Expired", "expired or not yet valid").await;
}

/// mysql_async's built-in webpki roots are off: a server whose certificate chains to a
/// public root would not be trusted either, only the `TrustStore`. Here: a store with an
/// unrelated CA trusts nothing the server has; an empty store is refused outright.
#[tokio::test]
async fn only_the_trust_store_is_trusted() {
    let server = fake_server(Answer::Tls(&certs().server)).await;
    let clock = TestClock::new();
    let empty = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(server.port))
        .trust(rds_iam_auth::TrustStore::empty())
        .build()
        .expect_err("an empty store can verify nothing");
    assert!(matches!(empty, Error::EmptyTrustStore), "{empty:?}");
    let unrelated = rds_iam_auth::TrustStore::empty()
        .with_ca_pem(include_bytes!("data/example-ca.pem"))
        .unwrap();
    let connector = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(server.port))
        .trust(unrelated)
        .build()
        .unwrap();
    let err = connector.connect().await.expect_err("nothing trusted");
    assert!(
        error_chain(&err).contains("UnknownIssuer"),
        "{}",
        error_chain(&err)
    );
    assert!(!server.saw(b"iam_user"));
}

#[tokio::test]
async fn a_silent_server_hits_the_connect_timeout() {
    let server = fake_server(Answer::Silent).await;
    let clock = TestClock::new();
    let connector = iam::mysql_builder(iam::cache(&clock), iam::mysql_tunnel_endpoint(server.port))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let t0 = std::time::Instant::now();
    let err = connector.connect().await.expect_err("timeout");
    assert!(matches!(err, Error::ConnectTimeout { .. }), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
}
