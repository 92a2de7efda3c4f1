//! The token never leaves the process except inside a verified TLS session.
//!
//! A fake server on loopback records every byte it receives (and, when a TLS session is
//! established, every decrypted byte). With TLS refused, or a certificate from another CA,
//! for another name, or expired, the connection must fail and the capture must hold no byte
//! of the token. A positive control (a trusted certificate) shows the capture would see it.

mod support;

use std::time::Duration;

use rds_iam_auth::{Endpoint, Engine, Error, IamAuthToken, PgConnector};
use support::capture::{CaptureServer, Recorder, error_chain, listen, tls_acceptor};
use support::iam::{self, TestClock};
use support::{CertFiles, certs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn fake_server(answer: Answer) -> CaptureServer {
    CaptureServer::start(move |tcp, rec| serve(tcp, answer, rec)).await
}

fn assert_no_token_bytes(server: &CaptureServer, token: &IamAuthToken) {
    server.assert_never_saw(token.expose(), &[]);
}

#[derive(Clone, Copy)]
enum Answer {
    /// `N` to SSLRequest: "no TLS here", then listen to whatever comes.
    RefuseTls,
    /// `S`, then a TLS handshake with this certificate; if it succeeds, ask for the
    /// cleartext password, record it, and reject it with 28P01.
    Tls(&'static CertFiles),
    /// Accept the TCP connection and say nothing.
    Silent,
}

async fn read_message(s: &mut (impl AsyncReadExt + Unpin), typed: bool) -> Option<Vec<u8>> {
    let mut head = vec![0u8; if typed { 5 } else { 4 }];
    s.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes(head[head.len() - 4..].try_into().unwrap()) as usize;
    let mut body = vec![0u8; len.checked_sub(4)?];
    s.read_exact(&mut body).await.ok()?;
    head.extend(body);
    Some(head)
}

async fn serve(mut tcp: TcpStream, answer: Answer, rec: Recorder) {
    let record = |bytes: &[u8]| rec.record(bytes);
    if let Answer::Silent = answer {
        tokio::time::sleep(Duration::from_secs(5)).await;
        return;
    }
    let Some(ssl_request) = read_message(&mut tcp, false).await else {
        return;
    };
    record(&ssl_request);
    match answer {
        Answer::Silent => unreachable!(),
        Answer::RefuseTls => {
            tcp.write_all(b"N").await.unwrap();
            // Whatever a client would send next, in plaintext.
            listen(&mut tcp, &rec).await;
        }
        Answer::Tls(cert) => {
            tcp.write_all(b"S").await.unwrap();
            let Ok(mut tls) = tls_acceptor(cert).accept(tcp).await else {
                return; // the client refused the certificate
            };
            let Some(startup) = read_message(&mut tls, false).await else {
                return;
            };
            record(&startup);
            // AuthenticationCleartextPassword, as RDS sends.
            tls.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3])
                .await
                .unwrap();
            if let Some(password) = read_message(&mut tls, true).await {
                record(&password);
            }
            let mut fields = Vec::new();
            for (tag, value) in [
                (b'S', "FATAL"),
                (b'V', "FATAL"),
                (b'C', "28P01"),
                (b'M', "PAM authentication failed for user \"iam_user\""),
            ] {
                fields.push(tag);
                fields.extend_from_slice(value.as_bytes());
                fields.push(0);
            }
            fields.push(0);
            let mut msg = vec![b'E'];
            msg.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
            msg.extend(fields);
            let _ = tls.write_all(&msg).await;
            let _ = tls.shutdown().await;
        }
    }
}

/// A connector signed for the RDS-looking name, dialling the fake server, trusting the
/// harness's test CA.
async fn connector_to(server: &CaptureServer) -> (PgConnector, IamAuthToken) {
    let clock = TestClock::new();
    let connector = iam::builder(iam::cache(&clock), iam::tunnel_endpoint(server.port))
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
        matches!(err, Error::AuthenticationRejected { .. }),
        "{err:?}"
    );
    assert_eq!(server.connections(), 2, "one retry");
    assert!(
        server.saw(token.expose().as_bytes()),
        "the capture must see a token sent over verified TLS, else the checks below prove nothing"
    );
}

#[tokio::test]
async fn tls_refused_by_the_server_fails_without_sending_the_token() {
    let server = fake_server(Answer::RefuseTls).await;
    let (connector, token) = connector_to(&server).await;
    let err = connector
        .connect()
        .await
        .expect_err("no plaintext fallback");
    assert!(
        matches!(
            err,
            Error::Connect {
                engine: Engine::Postgres,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("offered no TLS"), "{err}");
    assert!(!err.to_string().contains("with_ca_file"), "{err}");
    assert_eq!(server.received().len(), 8, "only the SSLRequest");
    assert_no_token_bytes(&server, &token);
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
                engine: Engine::Postgres,
                ..
            }
        ),
        "{chain}"
    );
    assert!(chain.contains(expected), "{expected} not in {chain}");
    assert!(err.to_string().contains(hint), "{hint} not in {err}");
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

#[tokio::test]
async fn an_ip_address_as_signing_host_fails_before_any_socket_is_opened() {
    let server = fake_server(Answer::RefuseTls).await;
    let err = Endpoint::new("127.0.0.1", server.port).unwrap_err();
    assert!(
        matches!(err, Error::IpAddressAsSigningHost { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("dial address"), "{err}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn a_silent_server_hits_the_connect_timeout() {
    let server = fake_server(Answer::Silent).await;
    let clock = TestClock::new();
    let connector = iam::builder(iam::cache(&clock), iam::tunnel_endpoint(server.port))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let t0 = std::time::Instant::now();
    let err = connector.connect().await.expect_err("timeout");
    assert!(matches!(err, Error::ConnectTimeout { .. }), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(err.to_string().contains("connect_timeout"), "{err}");
}
