//! TLS between the client and the proxy, for clients that insist on it (`sslmode=require`,
//! most GUI tools' defaults): a certificate generated at start-up, or one given.
//!
//! This leg is local, so what it protects is little; it exists because such clients refuse
//! a plaintext answer. The upstream leg is always verified TLS, whatever this one is.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use crate::error::{Detail, Result};

pub(crate) struct LocalTls {
    acceptor: TlsAcceptor,
    fingerprint: String,
}

fn tls_error(
    reason: impl Into<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
) -> crate::Error {
    Detail::ProxyLocalTls {
        reason: reason.into(),
        source,
    }
    .into()
}

impl LocalTls {
    /// A self-signed certificate for `localhost`, `127.0.0.1` and `::1`, with a fresh P-256
    /// key (aws-lc-rs), valid from now on for rcgen's default span.
    pub(super) fn generated() -> Result<Self> {
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let generated = rcgen::generate_simple_self_signed(names)
            .map_err(|e| tls_error("generating a certificate failed", Some(Box::new(e))))?;
        let cert = generated.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
        Self::new(vec![cert], key)
    }

    pub(super) fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| tls_error("the certificate is not valid PEM", Some(Box::new(e))))?;
        if certs.is_empty() {
            return Err(tls_error(
                "no `-----BEGIN CERTIFICATE-----` block in the certificate file",
                None,
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
            tls_error(
                "no private key (PKCS#8, PKCS#1 or SEC1 PEM) in the key file",
                Some(Box::new(e)),
            )
        })?;
        Self::new(certs, key)
    }

    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Self> {
        let fingerprint = fingerprint(&chain[0]);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports TLS 1.3 and 1.2")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                tls_error(
                    "the key does not match the certificate, or is of an unsupported kind",
                    Some(Box::new(e)),
                )
            })?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            fingerprint,
        })
    }

    pub(super) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    pub(super) fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// `AB:CD:...`: the SHA-256 of the certificate's DER, as browsers and `openssl x509
/// -fingerprint -sha256` show it.
fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
