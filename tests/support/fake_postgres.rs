//! A fake PostgreSQL server for the security tests: answers SSLRequest as told, and records
//! (through `capture`) every byte it receives, decrypted ones included.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::CertFiles;
use super::capture::{CaptureServer, Recorder, listen, tls_acceptor};

pub async fn fake_server(answer: Answer) -> CaptureServer {
    CaptureServer::start(move |tcp, rec| serve(tcp, answer, rec)).await
}

#[derive(Clone, Copy)]
pub enum Answer {
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
