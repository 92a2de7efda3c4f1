//! Throwaway certificates (rcgen, generated once per test process, ~ms).
//!
//! rustls checks the subject alternative names only, never the CN, so every name a
//! test dials must be a SAN.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};

use super::process::{ServiceUser, Supervisor, scratch_dir};

/// An RDS-looking endpoint that is one of the server certificate's SANs. Tests use it
/// as the TLS name while dialling 127.0.0.1.
pub const RDS_HOSTNAME: &str = "mydb.cluster-abc123xyz.us-east-1.rds.amazonaws.com";

/// An Aurora DSQL cluster endpoint (`<26-char id>.dsql.<region>.on.aws`), also a SAN of the
/// server certificate: the PostgreSQL harness stands in for a DSQL cluster.
pub const DSQL_HOSTNAME: &str = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";

/// The names the good server certificate is valid for.
pub const SERVER_NAMES: [&str; 5] = ["localhost", "127.0.0.1", "::1", RDS_HOSTNAME, DSQL_HOSTNAME];

/// One certificate and its private key, in memory and on disk.
pub struct CertFiles {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    /// PKCS#8.
    pub key_der: Vec<u8>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// Everything a test may need; see [`certs`].
pub struct TestCerts {
    /// The CA the tests trust.
    pub ca: CertFiles,
    /// Signed by `ca`, valid for [`SERVER_NAMES`]. The real servers use this one.
    pub server: CertFiles,
    /// An unrelated CA (not trusted by the tests).
    pub other_ca: CertFiles,
    /// Signed by `other_ca`, valid for [`SERVER_NAMES`]: must fail verification.
    pub other_ca_server: CertFiles,
    /// Signed by `ca`, valid only for `wrong.example.com`: must fail name verification.
    pub wrong_name: CertFiles,
    /// Signed by `ca`, valid for [`SERVER_NAMES`], expired in 2001.
    pub expired: CertFiles,
    /// Directory holding all the files (removed when the test process exits).
    pub dir: PathBuf,
    _remove_dir_at_exit: Supervisor,
}

/// The process-wide certificates, generated on first use.
pub fn certs() -> &'static TestCerts {
    static CERTS: LazyLock<TestCerts> = LazyLock::new(TestCerts::generate);
    &CERTS
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    fn new(common_name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            params,
            key: KeyPair::generate().expect("generate CA key"),
        }
    }

    fn self_signed(&self) -> (String, Vec<u8>) {
        let cert = self.params.self_signed(&self.key).expect("self-sign CA");
        (cert.pem(), cert.der().to_vec())
    }

    /// A leaf for `names`; `expired` moves its validity into the past.
    fn issue(&self, names: &[&str], expired: bool) -> (String, Vec<u8>, KeyPair) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        if expired {
            params.not_before = date_time_ymd(2001, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 2);
        }
        let key = KeyPair::generate().expect("generate leaf key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("sign leaf");
        (cert.pem(), cert.der().to_vec(), key)
    }
}

impl TestCerts {
    fn generate() -> TestCerts {
        let dir = scratch_dir("rds-iam-test-certs-", false, None);
        let remove_dir_at_exit = Supervisor::remove_at_exit(&dir);
        let ca = Ca::new("rds-iam-auth test CA");
        let other_ca = Ca::new("unrelated test CA");
        let write_ca = |name: &str, ca: &Ca| {
            let (pem, der) = ca.self_signed();
            write(&dir, name, pem, der, &ca.key)
        };
        let write_leaf = |name: &str, ca: &Ca, names: &[&str], expired: bool| {
            let (pem, der, key) = ca.issue(names, expired);
            write(&dir, name, pem, der, &key)
        };
        TestCerts {
            ca: write_ca("ca", &ca),
            server: write_leaf("server", &ca, &SERVER_NAMES, false),
            other_ca: write_ca("other-ca", &other_ca),
            other_ca_server: write_leaf("other-ca-server", &other_ca, &SERVER_NAMES, false),
            wrong_name: write_leaf("wrong-name", &ca, &["wrong.example.com"], false),
            expired: write_leaf("expired", &ca, &SERVER_NAMES, true),
            dir,
            _remove_dir_at_exit: remove_dir_at_exit,
        }
    }

    /// Copies the CA and the good server certificate/key into `dest` as `ca.pem`,
    /// `server.pem` and `server.key`, owned by `owner` (servers insist on owning a
    /// private key that nobody else can read).
    pub fn install_server_files(&self, dest: &Path, owner: Option<&ServiceUser>) {
        fs::create_dir_all(dest).expect("create cert dir");
        ServiceUser::chown(owner, dest);
        for (name, text, mode) in [
            ("ca.pem", &self.ca.cert_pem, 0o644),
            ("server.pem", &self.server.cert_pem, 0o644),
            ("server.key", &self.server.key_pem, 0o600),
        ] {
            let path = dest.join(name);
            write_file(&path, text.as_bytes(), mode);
            ServiceUser::chown(owner, &path);
        }
    }
}

fn write(dir: &Path, name: &str, cert_pem: String, cert_der: Vec<u8>, key: &KeyPair) -> CertFiles {
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    let key_pem = key.serialize_pem();
    write_file(&cert_path, cert_pem.as_bytes(), 0o644);
    write_file(&key_path, key_pem.as_bytes(), 0o600);
    CertFiles {
        cert_pem,
        key_pem,
        cert_der,
        key_der: key.serialize_der(),
        cert_path,
        key_path,
    }
}

fn write_file(path: &Path, contents: &[u8], mode: u32) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}
