//! A throwaway PostgreSQL server that authenticates like RDS IAM: over TLS the server
//! asks for the cleartext password (`password` in pg_hba) and the client sends the token;
//! plain TCP is rejected.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Instant;

use super::certs::certs;
use super::process::{ServiceUser, Supervisor, command, ms, run, scratch_dir};

pub const IAM_USER: &str = "iam_user";
pub const DATABASE: &str = "appdb";
/// A role with an ordinary (SCRAM) password, for benchmarks against a non-IAM login.
pub const STATIC_USER: &str = "static_user";
/// Roles standing in for Aurora DSQL ones: `admin` (DSQL's built-in, `DbConnectAdmin`) and
/// a custom role (`DbConnect`). Like the IAM user, they log in with a cleartext password
/// (the token, see [`PostgresServer::set_role_password`]) over TLS.
pub const DSQL_ROLES: [&str; 2] = ["admin", "dsql_app"];
pub const STATIC_PASSWORD: &str = "static-benchmark-password-6f1c2d9e";

const SUPERUSER: &str = "postgres";

pub struct PostgresServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    supervisor: Supervisor,
}

/// The process-wide server, started on first use (blocking, ~1 s; no runtime needed).
/// Restarting it or killing backends affects every test in the binary: keep such tests
/// in a test binary of their own.
pub fn postgres() -> &'static PostgresServer {
    static SERVER: LazyLock<PostgresServer> = LazyLock::new(PostgresServer::start);
    &SERVER
}

impl PostgresServer {
    fn start() -> PostgresServer {
        let t0 = Instant::now();
        let user = ServiceUser::for_server("postgres");
        let user = user.as_ref();
        let bin = bin_dir();
        let dir = scratch_dir("rds-iam-test-pg-", true, user); // tmpfs: initdb ~3x faster
        let data = dir.join("data");
        // Spawned before anything is written so that even a failing setup is cleaned up.
        // SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for clients).
        let supervisor = Supervisor::spawn(
            user,
            &dir,
            &dir.join("server.log"),
            "INT",
            &[
                bin.join("postgres").as_os_str(),
                OsStr::new("-D"),
                data.as_os_str(),
            ],
        );
        certs().install_server_files(&dir.join("certs"), user);
        run(
            command(bin.join("initdb"), user, &dir)
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ])
                .args(["--no-sync", "--no-instructions"]),
            None,
        );
        let initdb_ms = ms(t0);
        write_config(&dir, &data);

        let mut server = PostgresServer {
            dir,
            bin,
            port: 0,
            supervisor,
        };
        server.port = server.supervisor.start_on_free_port(
            &server.logs(),
            |port| format!("--port={port}"),
            |port| server.is_ready(port),
        );
        server.admin_sql(&format!(
            "CREATE ROLE {IAM_USER} LOGIN; CREATE ROLE {STATIC_USER} LOGIN PASSWORD {}; \
             CREATE ROLE {} LOGIN; CREATE ROLE {} LOGIN",
            sql_literal(STATIC_PASSWORD),
            DSQL_ROLES[0],
            DSQL_ROLES[1],
        ));
        // Separate call: a multi-statement -c runs in one transaction, CREATE DATABASE can't.
        server.admin_sql(&format!("CREATE DATABASE {DATABASE} OWNER {IAM_USER}"));
        eprintln!(
            "[test-servers] PostgreSQL on 127.0.0.1:{} ready in {} ms (initdb {initdb_ms} ms), dir {}",
            server.port,
            ms(t0),
            server.dir.display()
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

    /// Directory of the server's Unix socket (superuser access, no TLS).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// Makes `token` the only password `iam_user` is accepted with.
    pub fn set_password(&self, token: &str) {
        self.set_role_password(IAM_USER, token);
    }

    /// Makes `token` the only password `role` (`iam_user` or one of [`DSQL_ROLES`]) is
    /// accepted with.
    ///
    /// The token is stored as an MD5 hash, not as PostgreSQL's default SCRAM verifier: the
    /// server checks a cleartext password against a SCRAM verifier by running PBKDF2 (4,096
    /// HMACs keyed with the whole 1.5 KB token), which cost this server 5-12 ms of CPU per
    /// login, more than the client's whole cold start, and which RDS does not do (it checks
    /// the token's signature). With MD5 the server's check is one hash, so timings measure
    /// the client. Either way the server accepts exactly this token and nothing else.
    pub fn set_role_password(&self, role: &str, token: &str) {
        self.admin_sql(&format!(
            "SET LOCAL password_encryption = 'md5'; ALTER ROLE {role} PASSWORD {}",
            sql_literal(token)
        ));
    }

    /// Runs `sql` as the superuser in database `postgres` (psql over the Unix socket) and
    /// returns psql's unaligned, tuples-only output. Panics on an SQL error. Several
    /// statements in one call run in one transaction.
    pub fn admin_sql(&self, sql: &str) -> String {
        self.admin_sql_in("postgres", sql)
    }

    pub fn admin_sql_in(&self, database: &str, sql: &str) -> String {
        run(
            self.psql(self.port, database)
                .args(["-v", "ON_ERROR_STOP=1", "-q", "-A", "-t"])
                // -c, not stdin: psql does not interpolate `:name` variables in -c text.
                .arg("-c")
                .arg(sql),
            None,
        )
    }

    /// Terminates every backend of `user` (as if it had been killed) and waits for them
    /// to exit. Returns how many there were.
    pub fn terminate_backends_of(&self, user: &str) -> usize {
        let out = self.admin_sql(&format!(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) \
             FROM pg_stat_activity WHERE usename = {}",
            sql_literal(user)
        ));
        out.trim().parse().expect("count of terminated backends")
    }

    /// Stops the server (fast shutdown: clients are disconnected) and starts it again on
    /// the same port with the same data.
    pub fn restart(&self) {
        let t0 = Instant::now();
        self.supervisor
            .restart(&format!("--port={}", self.port), &self.logs(), || {
                self.is_ready(self.port)
            });
        eprintln!("[test-servers] PostgreSQL restarted in {} ms", ms(t0));
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn logs(&self) -> Vec<PathBuf> {
        vec![self.log_path()]
    }

    fn psql(&self, port: u16, database: &str) -> std::process::Command {
        let mut cmd = command(self.bin.join("psql"), None, &self.dir);
        cmd.args(["-X", "-h"])
            .arg(&self.dir)
            .arg(format!("--port={port}"));
        cmd.args(["-U", SUPERUSER, "-d", database]);
        cmd
    }

    fn is_ready(&self, port: u16) -> bool {
        command(self.bin.join("pg_isready"), None, &self.dir)
            .args(["-q", "-h"])
            .arg(&self.dir)
            .arg(format!("--port={port}"))
            .args(["-U", SUPERUSER, "-d", "postgres"])
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// The server binaries: `$RDS_IAM_TEST_PG_BIN`, else the newest Debian
/// `/usr/lib/postgresql/<major>/bin` (not on PATH there), else PATH.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RDS_IAM_TEST_PG_BIN") {
        return dir.into();
    }
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .max();
    newest
        .map(|(_, p)| p.join("bin"))
        .filter(|p| p.join("postgres").exists())
        .unwrap_or_default()
}

fn write_config(dir: &Path, data: &Path) {
    let certs = dir.join("certs");
    // The port is passed on the command line at start; fsync etc. are off for speed;
    // mmap shared memory leaves nothing behind in /dev/shm.
    let conf = format!(
        "\nlisten_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{dir}'\n\
         ssl = on\n\
         ssl_cert_file = '{certs}/server.pem'\n\
         ssl_key_file = '{certs}/server.key'\n\
         fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
         shared_buffers = 16MB\nmax_connections = 50\n\
         dynamic_shared_memory_type = mmap\n",
        dir = dir.display(),
        certs = certs.display(),
    );
    append(&data.join("postgresql.conf"), &conf);
    // `password` makes the server request the cleartext password, as RDS IAM does;
    // everything else over TCP (in particular without TLS) is rejected.
    let hba = format!(
        "local    all  {SUPERUSER}               trust\n\
         hostssl  all  {IAM_USER}     127.0.0.1/32  password\n\
         hostssl  all  {dsql_roles}  127.0.0.1/32  password\n\
         hostssl  all  {STATIC_USER}  127.0.0.1/32  scram-sha-256\n\
         host     all  all            127.0.0.1/32  reject\n",
        dsql_roles = DSQL_ROLES.join(","),
    );
    fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open postgresql.conf");
    f.write_all(text.as_bytes())
        .expect("append postgresql.conf");
}

/// A PostgreSQL string literal (standard_conforming_strings is on: only `'` needs doubling).
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
