//! Shared plumbing for the throwaway servers: running commands as the server's
//! user, scratch directories, free ports, readiness polling and the exit supervisor.

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to accept connections before the harness gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// True when the test process runs as root (effective uid 0). Read from /proc so the
/// harness needs no libc dependency.
pub fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// The unprivileged account a server runs as. `None` everywhere in this module means
/// "the current user", which is what happens when the tests do not run as root
/// (PostgreSQL and MariaDB refuse to run as root, but run fine as any other user).
#[derive(Clone, Debug)]
pub struct ServiceUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl ServiceUser {
    /// The account to run a server as: `name` from /etc/passwd when root, else `None`.
    pub fn for_server(name: &str) -> Option<ServiceUser> {
        is_root().then(|| ServiceUser::lookup(name))
    }

    fn lookup(name: &str) -> ServiceUser {
        let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
        let fields: Vec<&str> = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name) && f.len() > 3)
            .unwrap_or_else(|| panic!("no user {name:?} in /etc/passwd: is the server installed?"));
        ServiceUser {
            name: name.to_owned(),
            uid: fields[2].parse().expect("uid"),
            gid: fields[3].parse().expect("gid"),
        }
    }

    /// Gives `path` to this user (the servers insist on owning their data and key files).
    pub fn chown(user: Option<&ServiceUser>, path: &Path) {
        if let Some(u) = user {
            std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
                .unwrap_or_else(|e| panic!("chown {} to {}: {e}", path.display(), u.name));
        }
    }
}

/// A `Command` with an environment that cannot redirect the server tools: every
/// `PG*`, `MYSQL*` and `MARIADB*` variable is dropped (PGHOST, PGPORT, PGUSER,
/// PGPASSWORD, PGSSLMODE, MYSQL_PWD, ... silently change where clients connect).
/// With a `user`, the child runs as that user (std also drops supplementary groups).
pub fn command(program: impl AsRef<OsStr>, user: Option<&ServiceUser>, cwd: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if ["PG", "MYSQL", "MARIADB"]
            .iter()
            .any(|p| key_str.starts_with(p))
        {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(cwd).stdin(Stdio::null());
    if let Some(u) = user {
        // HOME of root is not readable by the service user, and tools look there.
        cmd.uid(u.uid)
            .gid(u.gid)
            .env("HOME", cwd)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name);
    }
    cmd
}

/// Runs `cmd` to completion and returns its stdout; panics with stderr on failure.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> String {
    let what = format!("{cmd:?}");
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    if let Some(input) = stdin {
        // Dropping the handle after writing closes the pipe, so the child sees EOF.
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input)
            .expect("write child stdin");
    }
    let out = child.wait_with_output().expect("wait for child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stdout
}

/// Where scratch directories go; `/dev/shm` (tmpfs) makes the disk-bound setup
/// (initdb, mariadb-install-db) 2-3 times faster. Falls back to the temp dir.
pub fn scratch_base(prefer_shm: bool) -> PathBuf {
    let shm = Path::new("/dev/shm");
    if prefer_shm && shm.is_dir() && tempfile_probe(shm) {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

fn tempfile_probe(dir: &Path) -> bool {
    let probe = dir.join(format!(".rds-iam-test-probe-{}", std::process::id()));
    let ok = fs::write(&probe, b"").is_ok();
    let _ = fs::remove_file(&probe);
    ok
}

/// A name unique to this process: `<prefix><pid>_<seq>`. The pid in the name lets a later
/// run recognise leftovers of dead processes (see [`remove_stale`]).
pub fn unique_name(prefix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes entries of `dir` named `<prefix><pid>_...` whose process is gone. Normally the
/// supervisor cleans up; this catches a SIGKILLed supervisor or a machine reboot.
/// Entries of live processes are kept: parallel test processes (nextest) must not
/// delete each other's servers.
pub fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('_').next().filter(|p| p.parse::<u32>().is_ok()) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let path = entry.path();
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
    }
}

/// Creates a fresh scratch directory `<base>/<prefix><pid>_<seq>` owned by `user`,
/// after removing stale ones of the same prefix.
pub fn scratch_dir(prefix: &str, prefer_shm: bool, user: Option<&ServiceUser>) -> PathBuf {
    let base = scratch_base(prefer_shm);
    remove_stale(&base, prefix);
    let dir = base.join(unique_name(prefix));
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    ServiceUser::chown(user, &dir);
    dir
}

/// A loopback port that was free a moment ago. Servers can still lose a race for it,
/// so callers retry on "address in use" ([`Supervisor::start_on_free_port`]).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Alive and not a zombie (a server that died stays a zombie until its parent reaps it).
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the ")" that closes the command name.
        Ok(stat) => {
            !matches!(stat.rsplit(')').next().map(str::trim_start), Some(s) if s.starts_with(['Z', 'X']))
        }
        Err(_) => false,
    }
}

/// The last lines of a log file, for panic messages.
pub fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("<cannot read: {e}>"));
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    format!("--- {} ---\n{tail}", path.display())
}

/// Script of the supervisor. It runs as the server's user, is the server's parent, and its
/// stdin is a pipe whose write end only the test process holds. Statics are never dropped,
/// but the kernel closes that pipe however the test process ends (normal exit, panic,
/// abort, SIGKILL): `read` then sees EOF, and the supervisor stops the server, waits
/// for it and removes the scratch path.
///
/// Protocol (one line each): `start <arg>` runs `"$@" <arg>` and answers its pid;
/// `stop` stops it and answers `stopped`. With no server command it only cleans up.
const SUPERVISOR_SH: &str = r#"
trap '' INT HUP   # a Ctrl-C for the whole test run must not skip the cleanup below
sig=$1 log=$2 scratch=$3; shift 3
pid=
alive() { [ -e "/proc/$pid" ] && ! grep -q ') [ZX]' "/proc/$pid/stat" 2>/dev/null; }
stop() {
  [ -n "$pid" ] || return 0
  kill -s "$sig" "$pid" 2>/dev/null
  n=0
  while alive; do
    n=$((n + 1)); [ "$n" -eq 1500 ] && kill -s KILL "$pid" 2>/dev/null
    sleep 0.02
  done
  wait "$pid" 2>/dev/null
  pid=
}
while IFS= read -r line; do
  case $line in
    "start "*) "$@" "${line#start }" </dev/null >>"$log" 2>&1 & pid=$!; echo "$pid" ;;
    stop) stop; echo stopped ;;
  esac
done
stop
rm -rf -- "$scratch"
"#;

/// A running supervisor (see [`SUPERVISOR_SH`]). Keep it in a `static`: dropping it
/// closes the pipe and tears the server down.
pub struct Supervisor {
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    server_pid: AtomicU32,
}

/// Why a server did not come up.
pub enum StartError {
    PortInUse,
    Failed(String),
}

impl Supervisor {
    /// Starts a supervisor that will remove `scratch` when the test process exits, and
    /// that can run `server` (as `user`, appending the argument given to `start`),
    /// stopping it with `stop_signal` (e.g. "INT" for postgres, "TERM" for mariadbd).
    #[allow(clippy::zombie_processes)] // by design: it must outlive this process
    pub fn spawn(
        user: Option<&ServiceUser>,
        scratch: &Path,
        log: &Path,
        stop_signal: &str,
        server: &[&OsStr],
    ) -> Supervisor {
        let cwd = if scratch.is_dir() {
            scratch
        } else {
            Path::new("/")
        };
        let mut child = command("sh", user, cwd)
            .arg("-c")
            .arg(SUPERVISOR_SH)
            .arg("rds-iam-test-supervisor")
            .args([
                OsStr::new(stop_signal),
                log.as_os_str(),
                scratch.as_os_str(),
            ])
            .args(server)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Never the test process's stdout/stderr: `cargo test | tee` would otherwise
            // wait for the supervisor.
            .stderr(Stdio::null())
            // Own process group: a terminal Ctrl-C reaches neither supervisor nor server,
            // so the supervisor gets to shut down in order.
            .process_group(0)
            .spawn()
            .expect("spawn supervisor sh");
        let io = (
            child.stdin.take().unwrap(),
            BufReader::new(child.stdout.take().unwrap()),
        );
        // The `Child` is dropped without waiting: it must outlive this process.
        Supervisor {
            io: Mutex::new(io),
            server_pid: AtomicU32::new(0),
        }
    }

    /// A supervisor that only removes `path` (a file or directory) at exit.
    pub fn remove_at_exit(path: &Path) -> Supervisor {
        Supervisor::spawn(None, path, Path::new("/dev/null"), "TERM", &[])
    }

    fn request(&self, line: &str) -> String {
        let mut io = self.io.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(io.0, "{line}")
            .and_then(|_| io.0.flush())
            .expect("write to supervisor");
        let mut answer = String::new();
        io.1.read_line(&mut answer).expect("read from supervisor");
        assert!(!answer.is_empty(), "supervisor exited unexpectedly");
        answer.trim().to_owned()
    }

    /// Stops the server (if running) and waits until it has exited.
    pub fn stop(&self) {
        self.request("stop");
        self.server_pid.store(0, Ordering::SeqCst);
    }

    /// Starts the server with `arg` appended and polls `ready` until it returns true.
    /// Fails fast if the server exits; `logs` are searched for "address in use".
    pub fn start(
        &self,
        arg: &str,
        logs: &[PathBuf],
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), StartError> {
        let pid: u32 = self
            .request(&format!("start {arg}"))
            .parse()
            .expect("pid from supervisor");
        self.server_pid.store(pid, Ordering::SeqCst);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ready() {
                return Ok(());
            }
            let failure = if !pid_alive(pid) {
                "exited during start-up"
            } else if Instant::now() > deadline {
                "did not become ready in time"
            } else {
                thread::sleep(POLL_INTERVAL);
                continue;
            };
            self.stop(); // reaps a dead server, stops a hung one
            let logs_text: Vec<String> = logs.iter().map(|l| log_tail(l)).collect();
            let logs_text = logs_text.join("\n");
            if logs_text.contains("Address already in use") {
                return Err(StartError::PortInUse);
            }
            return Err(StartError::Failed(format!("server {failure}\n{logs_text}")));
        }
    }

    /// Starts the server on a free loopback port, retrying with a new port when another
    /// process grabbed it first. `arg(port)` is what `start` appends to the command.
    pub fn start_on_free_port(
        &self,
        logs: &[PathBuf],
        arg: impl Fn(u16) -> String,
        ready: impl Fn(u16) -> bool,
    ) -> u16 {
        for _ in 0..10 {
            let port = free_port();
            match self.start(&arg(port), logs, || ready(port)) {
                Ok(()) => return port,
                Err(StartError::PortInUse) => continue,
                Err(StartError::Failed(msg)) => panic!("{msg}"),
            }
        }
        panic!("no free port after 10 attempts");
    }

    /// Restarts on the same port (the data directory is kept). Retries for a while if the
    /// port is briefly taken by someone else.
    pub fn restart(&self, arg: &str, logs: &[PathBuf], mut ready: impl FnMut() -> bool) {
        self.stop();
        for _ in 0..50 {
            match self.start(arg, logs, &mut ready) {
                Ok(()) => return,
                Err(StartError::PortInUse) => thread::sleep(Duration::from_millis(100)),
                Err(StartError::Failed(msg)) => panic!("restart: {msg}"),
            }
        }
        panic!("restart: port stayed in use");
    }

    pub fn server_pid(&self) -> Option<u32> {
        Some(self.server_pid.load(Ordering::SeqCst)).filter(|&p| p != 0)
    }
}

/// Milliseconds since `t`, for the start-up timing lines.
pub fn ms(t: Instant) -> u128 {
    t.elapsed().as_millis()
}
