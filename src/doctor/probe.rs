//! The doctor's TLS probe: the engine's TLS preamble, then a handshake whose certificate
//! verifier records what it found instead of aborting, so that one probe can say whether the
//! chain, the name and the dates are right. The probe never sends a password (nor any
//! application data): it closes as soon as the handshake ends.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Check, Status, rfc3339};
use crate::endpoint::Endpoint;
use crate::engine::Engine;
use crate::region::Partition;
use crate::tls::TrustStore;

/// What the TLS handshake with the server showed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsProbe {
    /// The negotiated protocol, e.g. `TLSv1_3`.
    pub protocol: String,
    /// The server certificate's subject (RFC 4514).
    pub subject: String,
    /// Its issuer: the CA that must be trusted when the chain does not verify.
    pub issuer: String,
    /// Its DNS names (subject alternative names).
    pub names: Vec<String>,
    /// Its validity (not before, not after).
    pub validity: Option<(SystemTime, SystemTime)>,
    /// Why the chain does not verify against the trust store (`None`: it verifies).
    pub chain_error: Option<String>,
    /// Whether the certificate is valid for the signing hostname.
    pub name_matches: bool,
    /// For MySQL: the server version and default authentication plugin from its greeting.
    pub greeting: Option<String>,
    unknown_issuer: bool,
}

/// What the recording verifier saw: the server's certificate and webpki's verdict on it.
#[derive(Debug, Default)]
struct Seen {
    end_entity: Option<CertificateDer<'static>>,
    verdict: Option<Result<(), rustls::Error>>,
}

#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Seen>,
}

impl ServerCertVerifier for RecordingVerifier {
    /// Records webpki's verdict and lets the handshake finish, so that the protocol version
    /// is known too. Safe here only because the probe sends nothing over the connection.
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(drop);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.end_entity = Some(end_entity.clone().into_owned());
        seen.verdict = Some(verdict);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

const STEP: &str = "tls";

/// The engine's preamble on `tcp`, then the handshake, verified against `trust` for the
/// endpoint's signing hostname.
pub(super) async fn probe(
    engine: Engine,
    mut tcp: TcpStream,
    endpoint: &Endpoint,
    trust: &TrustStore,
) -> Result<TlsProbe, Check> {
    let greeting = match engine {
        Engine::Postgres => {
            postgres_preamble(&mut tcp).await?;
            None
        }
        Engine::MySql => Some(mysql_preamble(&mut tcp).await?),
    };
    let verifier = Arc::new(RecordingVerifier {
        inner: WebPkiServerVerifier::builder_with_provider(trust.roots(), crate::tls::provider())
            .build()
            .map_err(|e| Check::fail(STEP, format!("no usable trust store: {e}"), "add a CA"))?,
        seen: Mutex::default(),
    });
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.3 and 1.2")
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(endpoint.host().to_owned())
        .map_err(|e| Check::fail(STEP, format!("not a TLS name: {e}"), "pass a DNS name"))?;
    let handshake = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name.clone(), tcp)
        .await;
    let seen = std::mem::take(&mut *verifier.seen.lock().unwrap_or_else(|e| e.into_inner()));
    let (protocol, handshake_error) = match &handshake {
        Ok(tls) => (
            tls.get_ref()
                .1
                .protocol_version()
                .map_or_else(|| "TLS".to_owned(), |v| format!("{v:?}")),
            None,
        ),
        Err(e) => ("TLS".to_owned(), Some(e.to_string())),
    };
    drop(handshake); // closes the probe: nothing was, or will be, sent over it
    let (Some(end_entity), Some(verdict)) = (seen.end_entity, seen.verdict) else {
        return Err(Check::fail(
            STEP,
            format!(
                "the TLS handshake failed before the server showed a certificate: {}",
                handshake_error.unwrap_or_default()
            ),
            "check that the port is the database's and that the server's TLS is set up",
        ));
    };
    let mut probe = describe_certificate(&end_entity, &name, protocol);
    probe.greeting = greeting;
    if let Err(e) = verdict {
        probe.unknown_issuer = matches!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
        probe.chain_error = Some(e.to_string());
    }
    Ok(probe)
}

/// PostgreSQL's SSLRequest: the server answers `S` (TLS follows) or `N` (no TLS).
async fn postgres_preamble(tcp: &mut TcpStream) -> Result<(), Check> {
    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let mut answer = [0u8; 1];
    let exchange = async {
        tcp.write_all(&SSL_REQUEST).await?;
        tcp.read_exact(&mut answer).await
    };
    exchange.await.map_err(|e| {
        Check::fail(
            STEP,
            format!("the server closed the connection at the SSLRequest: {e}"),
            "check that the port is PostgreSQL's",
        )
    })?;
    match answer[0] {
        b'S' => Ok(()),
        b'N' => Err(no_tls("it answered `N` to the SSLRequest")),
        other => Err(Check::fail(
            STEP,
            format!("not a PostgreSQL answer to the SSLRequest (byte {other:#04x})"),
            "check that the port is PostgreSQL's (--engine mysql for MySQL)",
        )),
    }
}

fn no_tls(evidence: &str) -> Check {
    Check::fail(
        STEP,
        format!("the server offers no TLS ({evidence}); an IAM token is never sent without it"),
        "enable TLS on the server (RDS always offers it: is this the database's address, not a \
         proxy or a local server?)",
    )
}

/// MySQL's greeting, then the SSL request packet that asks to switch to TLS. Returns the
/// server version and default authentication plugin the greeting announced.
async fn mysql_preamble(tcp: &mut TcpStream) -> Result<String, Check> {
    const CLIENT_SSL: u32 = 0x800;
    let greeting = read_mysql_packet(tcp).await.map_err(|e| {
        Check::fail(
            STEP,
            format!("no MySQL greeting: {e}"),
            "check that the port is MySQL's (--engine postgres for PostgreSQL)",
        )
    })?;
    let parsed = parse_greeting(&greeting).ok_or_else(|| {
        let text = String::from_utf8_lossy(greeting.get(3..).unwrap_or_default()).into_owned();
        Check::fail(
            STEP,
            // Before TLS nothing proves who wrote this: say so, and show it escaped.
            format!(
                "the server refused the connection or is not MySQL; it said, before TLS \
                 (unauthenticated): {}",
                super::printable(&text)
            ),
            "check the port; MySQL error 1129/1130 means this host is blocked or not allowed",
        )
    })?;
    if parsed.capabilities & CLIENT_SSL == 0 {
        return Err(no_tls("its greeting lacks CLIENT_SSL"));
    }
    // CLIENT_LONG_PASSWORD | PROTOCOL_41 | SSL | SECURE_CONNECTION | PLUGIN_AUTH; 16 MiB
    // packets; utf8mb4; 23 reserved bytes. No user, no password: those come after TLS.
    let capabilities: u32 = 0x1 | 0x200 | CLIENT_SSL | 0x8000 | 0x8_0000;
    let mut packet = vec![32, 0, 0, 1];
    packet.extend_from_slice(&capabilities.to_le_bytes());
    packet.extend_from_slice(&(16u32 << 20).to_le_bytes());
    packet.push(45);
    packet.extend_from_slice(&[0; 23]);
    tcp.write_all(&packet).await.map_err(|e| {
        Check::fail(
            STEP,
            format!("the server closed the connection at the SSL request: {e}"),
            "check the server's TLS settings",
        )
    })?;
    Ok(parsed.describe())
}

async fn read_mysql_packet(tcp: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    tcp.read_exact(&mut header).await?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut payload = vec![0; len];
    tcp.read_exact(&mut payload).await?;
    Ok(payload)
}

struct Greeting {
    version: String,
    capabilities: u32,
    plugin: Option<String>,
}

impl Greeting {
    fn describe(&self) -> String {
        let plugin = self.plugin.as_deref().unwrap_or("not announced");
        format!("server {}, default auth plugin {plugin}", self.version)
    }
}

/// Protocol 10 handshake: version, connection id, salt, capabilities, ..., plugin name.
fn parse_greeting(p: &[u8]) -> Option<Greeting> {
    if p.first() != Some(&10) {
        return None; // 0xff: an error packet instead of a greeting
    }
    let nul = p[1..].iter().position(|&b| b == 0)? + 1;
    let version = String::from_utf8_lossy(&p[1..nul]).into_owned();
    let rest = p.get(nul + 1..)?;
    // connection id (4), salt part 1 (8), filler (1), capabilities low (2)
    let low = u16::from_le_bytes([*rest.get(13)?, *rest.get(14)?]) as u32;
    // charset (1), status (2), capabilities high (2), salt length (1), reserved (10)
    let high = rest
        .get(18..20)
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as u32);
    let capabilities = low | high << 16;
    let plugin = rest.get(20).and_then(|&salt_len| {
        let start = 31 + usize::from(salt_len.saturating_sub(8)).max(13);
        let tail = rest.get(start..)?;
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        Some(String::from_utf8_lossy(&tail[..end]).into_owned()).filter(|s| !s.is_empty())
    });
    Some(Greeting {
        version,
        capabilities,
        plugin,
    })
}

fn describe_certificate(
    der: &CertificateDer<'_>,
    name: &ServerName<'_>,
    protocol: String,
) -> TlsProbe {
    use x509_cert::der::Decode;
    let name_matches = rustls::server::ParsedCertificate::try_from(der)
        .map(|cert| rustls::client::verify_server_name(&cert, name).is_ok())
        .unwrap_or(false);
    let mut probe = TlsProbe {
        protocol,
        subject: "(unparsable certificate)".to_owned(),
        issuer: "(unknown)".to_owned(),
        names: Vec::new(),
        validity: None,
        chain_error: None,
        name_matches,
        greeting: None,
        unknown_issuer: false,
    };
    if let Ok(cert) = x509_cert::Certificate::from_der(der) {
        let tbs = &cert.tbs_certificate;
        probe.subject = tbs.subject.to_string();
        probe.issuer = tbs.issuer.to_string();
        probe.validity = Some((
            tbs.validity.not_before.to_system_time(),
            tbs.validity.not_after.to_system_time(),
        ));
        if let Ok(Some((_, san))) = tbs.get::<x509_cert::ext::pkix::SubjectAltName>() {
            probe.names = san
                .0
                .iter()
                .filter_map(|n| match n {
                    x509_cert::ext::pkix::name::GeneralName::DnsName(dns) => Some(dns.to_string()),
                    _ => None,
                })
                .collect();
        }
    }
    probe
}

/// The `tls` check: protocol and certificate, then every problem found, each with its fix.
pub(super) fn check(probe: &TlsProbe, endpoint: &Endpoint, trust: &TrustStore) -> Check {
    let mut problems: Vec<(String, String)> = Vec::new();
    if probe.unknown_issuer {
        problems.push((
            format!(
                "the certificate's issuer `{}` is not in the trust store ({} CAs), so no token \
                 would be sent",
                probe.issuer,
                trust.len()
            ),
            missing_ca_fix(endpoint, &probe.issuer),
        ));
    } else if let Some(e) = &probe.chain_error
        && probe.name_matches
        && !expired(probe)
    {
        let fix = if e.contains("CaUsedAsEndEntity") {
            // A self-signed certificate made as a CA (`CA:TRUE`), presented as the server's.
            "the server presents a CA certificate (CA:TRUE) as its own, which TLS refuses: give \
             the server a certificate of its own (CA:FALSE) signed by that CA, and trust the CA \
             with --ca-file"
        } else {
            "check the server's certificate chain (intermediates sent, in order)"
        };
        problems.push((
            format!("the certificate chain does not verify: {e}"),
            fix.to_owned(),
        ));
    }
    if !probe.name_matches {
        problems.push((
            format!(
                "the certificate is not valid for `{}` (it names: {})",
                endpoint.host(),
                if probe.names.is_empty() {
                    "no DNS names".to_owned()
                } else {
                    probe.names.join(", ")
                }
            ),
            "use the endpoint's DNS name as --hostname (the name the token is signed for); \
             through a tunnel or a CNAME, keep it and pass the other address as --dial"
                .to_owned(),
        ));
    }
    if expired(probe) {
        let (from, until) = probe
            .validity
            .unwrap_or((SystemTime::UNIX_EPOCH, SystemTime::UNIX_EPOCH));
        problems.push((
            format!(
                "the certificate is not valid now: valid from {} to {}",
                rfc3339(from),
                rfc3339(until)
            ),
            "rotate the server's certificate (RDS: modify the instance's CA), and check this \
             machine's clock"
                .to_owned(),
        ));
    }
    let summary = format!(
        "{}, certificate `{}` issued by `{}`{}",
        probe.protocol,
        probe.subject,
        probe.issuer,
        probe
            .validity
            .map_or(String::new(), |(from, until)| format!(
                ", valid {} to {}",
                rfc3339(from),
                rfc3339(until)
            ))
    );
    let mut check = match problems.first() {
        None => Check::pass(STEP, summary).detail(format!(
            "the chain verifies against the trust store and the name matches `{}`",
            endpoint.host()
        )),
        Some((message, fix)) => Check {
            status: Status::Fail,
            ..Check::new(STEP, Status::Fail, message.clone())
        }
        .detail(summary)
        .fix(fix.clone()),
    };
    for (message, fix) in problems.iter().skip(1) {
        check = check.detail(format!("also: {message} ({fix})"));
    }
    if let Some(greeting) = &probe.greeting {
        check = check.detail(format!("MySQL greeting: {greeting}"));
    }
    check
}

fn expired(probe: &TlsProbe) -> bool {
    let now = SystemTime::now();
    probe
        .validity
        .is_some_and(|(from, until)| now < from || now > until)
}

/// How to trust the CA that issued the server's certificate, with the likely reasons it is
/// missing (GovCloud, a region newer than the bundle, a private CA).
fn missing_ca_fix(endpoint: &Endpoint, issuer: &str) -> String {
    let region = endpoint.inferred_region();
    let mut fix = String::from(
        "add the issuing CA: --ca-file bundle.pem (the Lambda examples: DBCaFile; in code: \
         TrustStore::aws_default().with_ca_file(...))",
    );
    let gov = region
        .as_ref()
        .is_some_and(|r| r.partition() == Partition::AwsUsGov)
        || issuer.contains("GovCloud")
        || issuer.contains("us-gov");
    if gov {
        fix.push_str(
            "; AWS GovCloud (US) RDS CAs are not in the default store: use AWS's GovCloud \
             bundle (https://truststore.pki.us-gov-west-1.rds.amazonaws.com/global/global-bundle.pem)",
        );
    } else if let Some(region) = region {
        let r = region.as_str();
        fix.push_str(&format!(
            "; if {r} is newer than this crate's CA bundle, its bundle is \
             https://truststore.pki.rds.amazonaws.com/{r}/{r}-bundle.pem"
        ));
    } else {
        fix.push_str("; a TLS-terminating proxy or a private CA needs its own CA file");
    }
    fix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_mariadb_greeting() {
        let mut p = vec![10];
        p.extend_from_slice(b"11.4.2-MariaDB\0");
        p.extend_from_slice(&[1, 0, 0, 0]); // connection id
        p.extend_from_slice(b"abcdefgh\0"); // salt part 1, filler
        p.extend_from_slice(&0xfffeu16.to_le_bytes()); // capabilities low (with SSL)
        p.extend_from_slice(&[45, 2, 0]); // charset, status
        p.extend_from_slice(&0x0008u16.to_le_bytes()); // capabilities high (PLUGIN_AUTH)
        p.push(21); // salt length
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0"); // salt part 2 (13)
        p.extend_from_slice(b"mysql_native_password\0");
        let g = parse_greeting(&p).expect("greeting");
        assert_eq!(g.version, "11.4.2-MariaDB");
        assert_ne!(g.capabilities & 0x800, 0);
        assert_eq!(g.plugin.as_deref(), Some("mysql_native_password"));
    }

    #[test]
    fn an_error_packet_is_not_a_greeting() {
        assert!(parse_greeting(b"\xff\x69\x04Host is blocked").is_none());
    }
}
