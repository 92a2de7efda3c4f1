//! A fake database server on loopback that records every byte it receives (and, once a TLS
//! session is up, every decrypted byte): the security tests' witness that no token byte
//! leaves the process outside verified TLS. Each engine's test file writes the protocol
//! part (`serve`); the listening, recording and TLS setup are here.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types};

use super::CertFiles;

/// Everything the fake server received, on every connection.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<u8>>>);

impl Recorder {
    pub fn record(&self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }

    pub fn saw(&self, needle: &[u8]) -> bool {
        self.bytes().windows(needle.len()).any(|w| w == needle)
    }
}

pub struct CaptureServer {
    pub port: u16,
    recorder: Recorder,
    connections: Arc<AtomicUsize>,
}

impl CaptureServer {
    /// Listens on a free loopback port and runs `serve` for each connection.
    pub async fn start<F, Fut>(serve: F) -> Self
    where
        F: Fn(TcpStream, Recorder) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let recorder = Recorder::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let (rec, count) = (recorder.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(tcp, rec.clone()));
            }
        });
        Self {
            port,
            recorder,
            connections,
        }
    }

    pub fn received(&self) -> Vec<u8> {
        self.recorder.bytes()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn saw(&self, needle: &[u8]) -> bool {
        self.recorder.saw(needle)
    }

    /// None of the token, nor the marks of any token, nor `also`, reached the server.
    pub fn assert_never_saw(&self, token: &str, also: &[&[u8]]) {
        let marks: [&[u8]; 3] = [token.as_bytes(), b"X-Amz-Signature", b"Action=connect"];
        for needle in marks.iter().chain(also) {
            assert!(
                !self.saw(needle),
                "login bytes reached the fake server: {:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }
}

/// A TLS acceptor presenting `cert` (aws-lc-rs, the crate's one provider).
pub fn tls_acceptor(cert: &CertFiles) -> TlsAcceptor {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![pki_types::CertificateDer::from(cert.cert_der.clone())],
        pki_types::PrivateKeyDer::Pkcs8(pki_types::PrivatePkcs8KeyDer::from(cert.key_der.clone())),
    )
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// Records whatever the client sends until it closes or falls silent for 300 ms.
pub async fn listen(s: &mut (impl AsyncRead + Unpin), recorder: &Recorder) {
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        recorder.record(&buf[..n]);
    }
}

/// An error and its sources, `Debug` of each, for assertion messages and matching.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = format!("{err}");
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(&format!(" <- {e:?}"));
        cur = e.source();
    }
    s
}
