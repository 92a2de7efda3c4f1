//! A fake MySQL server for the security tests: a greeting with or without TLS, downgrade
//! attempts, or TLS with a given certificate; records (through `capture`) every byte it
//! receives, decrypted ones included.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::CertFiles;
use super::capture::{CaptureServer, Recorder, listen, tls_acceptor};

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
pub enum Answer {
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

pub async fn fake_server(answer: Answer) -> CaptureServer {
    CaptureServer::start(move |tcp, rec| serve(tcp, answer, rec)).await
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

/// A greeting that offers TLS, then the client's SSL request, recorded; `false` when the
/// client hung up instead.
async fn offer_tls(tcp: &mut TcpStream, rec: &Recorder) -> bool {
    write(tcp, &packet(0, &greeting(BASE_CAPABILITIES | CLIENT_SSL))).await;
    let Some(ssl_request) = read_packet(tcp).await else {
        return false;
    };
    rec.record(&ssl_request);
    true
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
            if !offer_tls(&mut tcp, &rec).await {
                return;
            }
            write(&mut tcp, &packet(2, &cleartext_switch())).await;
            listen(&mut tcp, &rec).await;
        }
        Answer::Tls(cert) => {
            if !offer_tls(&mut tcp, &rec).await {
                return;
            }
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
