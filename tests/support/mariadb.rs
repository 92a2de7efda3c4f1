//! A throwaway MariaDB server that authenticates like RDS IAM for MySQL: over TLS the
//! server switches the client to `mysql_clear_password` and the client sends the token.
//!
//! How: the PAM plugin `auth_pam_v1` (runs PAM inside mariadbd, whatever user that is)
//! with `--pam-use-cleartext-plugin=ON`, and a PAM service whose `pam_userdb` compares the
//! whole token against a Berkeley DB entry (`pam_exec` would cut it at 511 bytes).
//! Writing that service file to /etc/pam.d needs root: see [`mariadb_or_skip`].

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Once};
use std::time::Instant;

use super::certs::certs;
use super::process::{
    ServiceUser, Supervisor, command, is_root, ms, remove_stale, run, scratch_dir, unique_name,
};

pub const IAM_USER: &str = "iam_user";
pub const DATABASE: &str = "appdb";
/// A `mysql_native_password` user, for benchmarks against a non-IAM login (it never
/// exercises the cleartext path).
pub const STATIC_USER: &str = "static_user";
pub const STATIC_PASSWORD: &str = "static-benchmark-password-6f1c2d9e";

/// PAM lower-cases service names (a mixed-case name silently falls back to
/// /etc/pam.d/other), so this prefix and everything after it is lower case.
const PAM_PREFIX: &str = "rds_iam_test_";
const PAM_DIR: &str = "/etc/pam.d";

pub struct MariaDbServer {
    dir: PathBuf,
    port: u16,
    pam_service: String,
    user: Option<ServiceUser>,
    supervisor: Supervisor,
    _remove_pam_service_at_exit: Supervisor,
}

/// The process-wide MariaDB server, or `None` (after a loud message) when the tests do
/// not run as root and so cannot install the PAM service. Under `CI=true` that panics
/// instead: the cleartext-plugin tests must never be skipped silently.
pub fn mariadb_or_skip() -> Option<&'static MariaDbServer> {
    static SERVER: LazyLock<MariaDbServer> = LazyLock::new(MariaDbServer::start);
    if is_root() {
        return Some(&SERVER);
    }
    let msg = "the MariaDB (mysql_clear_password / PAM) tests need root to write /etc/pam.d; \
               they CANNOT RUN as this user";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg} (CI=true: failing instead of skipping)");
    }
    // Written to the stderr handle, not with eprintln!: libtest captures the macros'
    // output of passing tests, which would make this skip silent.
    static BANNER: Once = Once::new();
    let mut stderr = std::io::stderr().lock();
    BANNER.call_once(|| {
        let bar = "!".repeat(100);
        let _ = writeln!(
            stderr,
            "\n{bar}\n!!! SKIPPED: {msg}.\n!!! Run the tests as root to exercise the cleartext-plugin path.\n{bar}\n"
        );
    });
    let _ = writeln!(
        stderr,
        "!!! SKIPPED (not root): a MariaDB cleartext-plugin test"
    );
    None
}

impl MariaDbServer {
    fn start() -> MariaDbServer {
        let t0 = Instant::now();
        let user = ServiceUser::for_server("mysql");
        let dir = scratch_dir("rds-iam-test-mariadb-", true, user.as_ref());
        let server_cmd = server_command(&dir);
        let server_cmd: Vec<&OsStr> = server_cmd.iter().map(OsString::as_os_str).collect();
        // Spawned before anything is written so that even a failing setup is cleaned up.
        let supervisor = Supervisor::spawn(
            user.as_ref(),
            &dir,
            &dir.join("server.log"),
            "TERM",
            &server_cmd,
        );
        let (pam_service, remove_pam_service_at_exit) = install_pam_service(&dir.join("iamusers"));
        let tmp = dir.join("tmp");
        fs::create_dir(&tmp).expect("create tmpdir");
        ServiceUser::chown(user.as_ref(), &tmp);
        certs().install_server_files(&dir.join("certs"), user.as_ref());
        // --no-defaults must come first (else the system config's socket and pid file are
        // used). Never --user: it would chown the system-wide auth_pam_tool_dir.
        run(
            command("mariadb-install-db", user.as_ref(), &dir)
                .arg("--no-defaults")
                .arg(opt("--datadir=", &dir.join("data")))
                .arg(opt("--tmpdir=", &tmp))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
                .args(["--skip-name-resolve", "--innodb-buffer-pool-size=32M"])
                .arg("--innodb-log-file-size=8M"),
            None,
        );
        let install_ms = ms(t0);

        let mut server = MariaDbServer {
            dir,
            port: 0,
            pam_service,
            user,
            supervisor,
            _remove_pam_service_at_exit: remove_pam_service_at_exit,
        };
        server.set_password(&format!("not-set-yet-{}", unique_name("")));
        server.port = server.supervisor.start_on_free_port(
            &server.logs(),
            |port| format!("--port={port}"),
            |_| server.is_ready(),
        );
        server.admin_sql(&format!(
            "CREATE USER {IAM_USER}@'%' IDENTIFIED VIA pam USING {} REQUIRE SSL; \
             CREATE USER {STATIC_USER}@'%' IDENTIFIED VIA mysql_native_password \
                 USING PASSWORD({}) REQUIRE SSL; \
             CREATE DATABASE {DATABASE}; \
             GRANT ALL ON {DATABASE}.* TO {IAM_USER}@'%'; \
             GRANT ALL ON {DATABASE}.* TO {STATIC_USER}@'%';",
            sql_literal(&server.pam_service),
            sql_literal(STATIC_PASSWORD),
        ));
        eprintln!(
            "[test-servers] MariaDB on 127.0.0.1:{} ready in {} ms (install-db {install_ms} ms), dir {}, PAM service {}",
            server.port,
            ms(t0),
            server.dir.display(),
            server.pam_service,
        );
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn ca_pem(&self) -> &'static str {
        &certs().ca.cert_pem
    }

    pub fn user(&self) -> &'static str {
        IAM_USER
    }

    pub fn database(&self) -> &'static str {
        DATABASE
    }

    pub fn static_user(&self) -> &'static str {
        STATIC_USER
    }

    pub fn static_password(&self) -> &'static str {
        STATIC_PASSWORD
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// Makes `token` the only password `iam_user` is accepted with. Takes effect for the
    /// next login, no restart needed: PAM reads the table on every authentication.
    pub fn set_password(&self, token: &str) {
        // Written to a new file and renamed over the old one, so a login running at the
        // same moment reads either the old or the new table, never a half-written one.
        // The token goes through stdin byte for byte (no trailing newline).
        const PERL: &str = r#"
            use DB_File; use Fcntl;
            my ($db, $user) = @ARGV;
            local $/; my $token = <STDIN>; $token = "" unless defined $token;
            unlink "$db.new";
            tie my %h, "DB_File", "$db.new", O_RDWR|O_CREAT, 0600, $DB_HASH or die "$db.new: $!";
            $h{$user} = $token; untie %h;
            rename "$db.new", $db or die "rename $db: $!";
        "#;
        run(
            command("perl", self.user.as_ref(), &self.dir)
                .args(["-e", PERL])
                .arg(self.dir.join("iamusers.db"))
                .arg(IAM_USER),
            Some(token.as_bytes()),
        );
    }

    /// Runs `sql` as root over the Unix socket; returns the batch output (tab-separated,
    /// no column names). Panics on an SQL error.
    pub fn admin_sql(&self, sql: &str) -> String {
        run(self.client().args(["-N", "-B", "-e", sql]), None)
    }

    /// Kills every connection of `user` (as if its server thread had died). Returns how
    /// many there were.
    pub fn kill_connections_of(&self, user: &str) -> usize {
        let ids = self.admin_sql(&format!(
            "SELECT id FROM information_schema.PROCESSLIST WHERE user = {}",
            sql_literal(user)
        ));
        let kills: String = ids
            .split_whitespace()
            .map(|id| format!("KILL CONNECTION {id};"))
            .collect();
        if !kills.is_empty() {
            // --force: a connection that ended meanwhile is not an error here.
            run(self.client().args(["--force", "-e", &kills]), None);
        }
        ids.split_whitespace().count()
    }

    /// Stops the server (SIGTERM, a clean shutdown) and starts it again on the same port
    /// with the same data; the accepted token is kept.
    pub fn restart(&self) {
        let t0 = Instant::now();
        self.supervisor
            .restart(&format!("--port={}", self.port), &self.logs(), || {
                self.is_ready()
            });
        eprintln!("[test-servers] MariaDB restarted in {} ms", ms(t0));
    }

    pub fn error_log_path(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    fn logs(&self) -> Vec<PathBuf> {
        vec![self.dir.join("server.log"), self.error_log_path()]
    }

    fn client(&self) -> std::process::Command {
        let mut cmd = command("mariadb", None, &self.dir);
        cmd.arg("--no-defaults")
            .arg(opt("--socket=", &self.socket_path()))
            .arg("-uroot");
        cmd
    }

    fn is_ready(&self) -> bool {
        command("mariadb-admin", None, &self.dir)
            .arg("--no-defaults")
            .arg(opt("--socket=", &self.socket_path()))
            .args(["-uroot", "ping"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// The mariadbd command line, without `--port` (the supervisor appends it at start).
fn server_command(dir: &Path) -> Vec<OsString> {
    let mariadbd = ["/usr/sbin/mariadbd", "/usr/libexec/mariadbd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("mariadbd");
    let certs = dir.join("certs");
    let mut cmd: Vec<OsString> = vec![mariadbd.into(), "--no-defaults".into()];
    for (name, path) in [
        ("--datadir=", dir.join("data")),
        ("--tmpdir=", dir.join("tmp")),
        ("--socket=", dir.join("mysqld.sock")),
        ("--pid-file=", dir.join("mysqld.pid")),
        ("--log-error=", dir.join("error.log")),
        ("--ssl-ca=", certs.join("ca.pem")),
        ("--ssl-cert=", certs.join("server.pem")),
        ("--ssl-key=", certs.join("server.key")),
    ] {
        cmd.push(opt(name, &path));
    }
    cmd.extend(
        [
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=8M",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--performance-schema=OFF",
            "--require-secure-transport=ON",
            "--plugin-load-add=auth_pam_v1",
            "--pam-use-cleartext-plugin=ON",
        ]
        .map(OsString::from),
    );
    cmd
}

/// Writes a PAM service checking passwords against `userdb` (pam_userdb appends `.db`)
/// under a unique lower-case name, after removing those of dead test processes.
/// Returns its name and the supervisor that removes it when this process exits.
fn install_pam_service(userdb: &Path) -> (String, Supervisor) {
    remove_stale(Path::new(PAM_DIR), PAM_PREFIX);
    let name = unique_name(PAM_PREFIX);
    let path = Path::new(PAM_DIR).join(&name);
    let guard = Supervisor::remove_at_exit(&path);
    let service = format!(
        "auth required pam_userdb.so db={} crypt=none\naccount required pam_permit.so\n",
        userdb.display()
    );
    fs::write(&path, service).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    (name, guard)
}

fn opt(name: &str, path: &Path) -> OsString {
    let mut s = OsString::from(name);
    s.push(path);
    s
}

/// A MySQL string literal (backslash is an escape character unless NO_BACKSLASH_ESCAPES).
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}
