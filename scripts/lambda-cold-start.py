#!/usr/bin/env python3
"""Lambda cold start, measured: a fresh function process -> its first invocation's response.

Side by side in one run, against the same throwaway PostgreSQL and MariaDB servers (TLS,
IAM-style cleartext login, see tests/support/): the Rust examples `lambda_postgres` and
`lambda_mysql` as built to deploy (`--profile lambda --no-default-features`, for the machine's
`<arch>-unknown-linux-musl` target: one static binary, no shared C library), and the blog post's two Python functions as
rewritten in `scripts/lambda-seed/` (boto3 + pg8000, boto3 + mysql-connector-python, from
a virtualenv under the target directory filled from `requirements.txt`).

Each run is one cold start, as Lambda does it: the script serves an emulated Lambda
Runtime API (`/2018-06-01/runtime/invocation/next`, `/{id}/response`, `/{id}/error`) on a
loopback port of its own for each function process, spawns the function with `AWS_LAMBDA_RUNTIME_API` pointing at it and the
post's environment (`DBEndPoint`, `DatabaseName`, `DBUserName`, plus `DBPort`, `DBRegion`,
`DBCaFile` for the test servers), hands it one event, and measures:
- time: from just before the spawn to the arrival of the `/response` POST (and, as "init",
  to the first `/next`);
- memory: the process's peak RSS (`VmHWM` of /proc/<pid>/status), read once it is back
  waiting for the next invocation (its own address space only: `ru_maxrss` of a child
  spawned by this Python would include this process's RSS at the vfork).
A run that answers anything but the function's success or error shape fails the whole
measurement (error shapes: see below).
Functions alternate run by run, so they share the machine's noise; the figures are
medians, and the ratios are taken between medians of the same run.

Tokens are checked by the servers (the IAM user's password is the token), so each run
starts just after a whole second S for which the driver installed the token signed at S:
the script asks it on stdout (`@password <engine> <S>`) and waits for `ok` on stdin; the
driver then installs S+1, S+2, ... shortly before each second starts, for functions that
sign later than S. A login that races such a switch gets the function's error response:
that run is repeated (counted in the report). The driver is the ignored test that starts
the servers (one recipe for the servers, the harness's):

    rustup target add x86_64-unknown-linux-musl   # once; and musl-gcc (Debian: musl-tools)
    cargo build --profile lambda --target x86_64-unknown-linux-musl \
        --no-default-features --features postgres,mysql \
        --example lambda_postgres --example lambda_mysql
    cargo test --features postgres,mysql,aws-config --test lambda_cold_start -- \
        --ignored --nocapture
    # options for this script: LAMBDA_COLD_START_ARGS="--runs 30 --extra postgres:nojitter:PATH"

Options: `--runs N` (default 20); `--rust-dir DIR` (the Rust functions' directory, by default
`target/<arch>-unknown-linux-musl/lambda/examples`; `target/lambda/examples` for a glibc build);
`--extra ENGINE:LABEL:PATH` (more Rust builds to measure in the same run, e.g. one built
with `AWS_LC_SYS_NO_JITTER_ENTROPY=1`); `--only LABEL,...`; `--behaviour OTHER_CA` (instead
of timing: each function's answers after its connection is killed, and its answer to a
server whose certificate is not from the CA it was given; run by the test
`lambda_functions_after_a_kill_and_with_an_untrusted_ca`); `--smaps` (also each function's
resident memory per mapped file, from its last run).
"""
import argparse
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "scripts" / "lambda-seed"
API = "/2018-06-01/runtime/invocation"
DATABASE = "appdb"
USER = "iam_user"
# The success shapes of the two functions (the post's).
EXPECTED = {
    "postgres": {"status": "Success", "results": [{"current_database": DATABASE}]},
    "mysql": {"status": "Success", "results": {"database_name": DATABASE}},
}


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def musl_examples() -> Path:
    """Where `cargo build --profile lambda --target <arch>-unknown-linux-musl` puts the examples."""
    return target_dir() / f"{platform.machine()}-unknown-linux-musl" / "lambda" / "examples"


def seed_python() -> str:
    """The virtualenv's Python with the pinned seed libraries (created once, from PyPI)."""
    venv = target_dir() / "lambda-seed-venv"
    python = venv / "bin" / "python3"
    requirements = SEED / "requirements.txt"
    stamp = venv / "requirements.txt"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if not stamp.exists() or stamp.read_text() != requirements.read_text():
        print("installing the seeds' libraries into", venv, file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
        stamp.write_text(requirements.read_text())
    return str(python)


class Invocation:
    """One event handed to a function, and what it answered."""

    def __init__(self):
        self.request_id = f"req-{time.monotonic_ns()}"
        self.responded = threading.Event()
        self.response_at = None
        self.path = None
        self.body = None

    def response(self):
        """The JSON answer, or None for an `/error` post."""
        return json.loads(self.body or b"null") if self.path.endswith("/response") else None


class RuntimeApi(BaseHTTPRequestHandler):
    """The Runtime API routes a function uses (`next`, `response`, `error`)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        api = self.server
        if self.path != API + "/next":
            return self.reply(404, b"{}")
        if api.first_next_at is None:
            api.first_next_at = time.monotonic()  # the end of the function's init
        # The function waits here between invocations, as in Lambda (where it is frozen).
        api.idle.set()
        while True:
            try:
                invocation = api.events.get(timeout=0.2)
                break
            except queue.Empty:
                if api.closed.is_set():
                    return
        api.idle.clear()
        deadline = int(time.time() * 1000) + 30_000
        self.reply(
            200,
            b"{}",
            {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline),
                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:cold-start",
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
            },
        )

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        now = time.monotonic()
        parts = self.path[len(API) + 1:].split("/")
        invocation = self.server.invocations.get(parts[0])
        if invocation is not None and len(parts) == 2 and parts[1] in ("response", "error"):
            invocation.response_at, invocation.path, invocation.body = now, self.path, body
            invocation.responded.set()
        self.reply(202, b'{"status":"OK"}')

    def reply(self, status, body, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Api(ThreadingHTTPServer):
    """An emulated Runtime API for one function process (its own port: a killed process's
    pending `/next` can never take another's event)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RuntimeApi)
        self.events = queue.Queue()
        self.invocations = {}
        self.idle = threading.Event()
        self.closed = threading.Event()
        self.first_next_at = None
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def handle_error(self, request, client_address):
        pass  # a killed function's half-closed connection: expected, not news


class Function:
    """One execution environment: a fresh process of `argv`, invoked as Lambda would."""

    def __init__(self, argv, env):
        self.api = Api()
        env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{self.api.server_address[1]}")
        first = self.queue()
        self.started = time.monotonic()
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.first = first

    def queue(self):
        invocation = Invocation()
        self.api.invocations[invocation.request_id] = invocation
        self.api.events.put(invocation)
        return invocation

    def wait(self, invocation, timeout=30):
        if not invocation.responded.wait(timeout):
            raise RuntimeError(f"no response within {timeout} s: {self.stop()[-2000:]}")
        return invocation

    def invoke(self):
        return self.wait(self.queue())

    def stop(self):
        """Kills the process; returns its stderr."""
        self.api.closed.set()
        self.process.kill()
        stderr = self.process.communicate()[1].decode(errors="replace")
        self.api.shutdown()
        self.api.server_close()
        return stderr


def memory_kib(pid: int) -> dict:
    """VmHWM (peak RSS) and, at this moment, RssAnon / RssFile and the thread count."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmHWM", "RssAnon", "RssFile", "Threads"):
                found[name] = int(value.split()[0])
    if "VmHWM" not in found:
        raise RuntimeError(f"no VmHWM for {pid}")
    return found


def rss_by_mapping(pid: int) -> dict:
    """Resident KiB per mapped file ("[anon]" for the rest), once the function is idle."""
    rss, name = {}, "[anon]"
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:
                name = Path(fields[5]).name if len(fields) >= 6 and fields[5].startswith("/") else "[anon]"
            elif fields[0] == "Rss:":
                rss[name] = rss.get(name, 0) + int(fields[1])
    return rss


class Driver:
    """Installs the token a function will sign at a given second (see the module doc)."""

    def __init__(self):
        self.out = sys.stdout

    def install(self, engine: str, second: int):
        self.ask(f"@password {engine} {second}")

    def kill_connections(self, engine: str):
        """Kills the IAM user's connections on `engine`'s server."""
        self.ask(f"@kill {engine}")

    def ask(self, line):
        print(line, file=self.out, flush=True)
        answer = sys.stdin.readline().strip()
        if answer != "ok":
            sys.exit(f"the driver did not do {line!r}: {answer!r}")

    def start_of_a_second(self, engine):
        """Waits until 20 ms into a fresh second whose token is installed."""
        second = int(time.time()) + 1
        if second - time.time() < 0.3:
            second += 1
        self.install(engine, second)
        time.sleep(max(0.0, second + 0.02 - time.time()))


def run_once(driver, function, env):
    label, engine, argv = function
    # Every function signs well within that second (the slowest takes a few hundred ms).
    driver.start_of_a_second(engine)
    running = Function(argv, env)
    try:
        first = running.wait(running.first)
        elapsed = first.response_at - running.started
        # Peak RSS once the function is idle again (waiting for its next invocation).
        running.api.idle.wait(5)
        memory = memory_kib(running.process.pid)
        memory["init"] = running.api.first_next_at - running.started
        if SMAPS:
            memory["smaps"] = rss_by_mapping(running.process.pid)
    except Exception as e:
        sys.exit(f"{label}: {e}")
    stderr = running.stop()
    response = first.response()
    if response == EXPECTED[engine]:
        return elapsed, memory
    if isinstance(response, dict) and response.get("status") == "Error":
        # The function's error shape: a login that raced a token switch (see the module doc).
        print(f"{label}: error response (retried): {response.get('message')!r} {stderr[-300:]!r}",
              file=sys.stderr)
        return None
    sys.exit(f"{label}: unexpected {first.path} {first.body!r}\n{stderr[-2000:]}")


RETRIES = 5
SMAPS = False  # --smaps


def measure(driver, function, env, retried):
    """One successful cold start; runs that got an error response are repeated."""
    for _ in range(RETRIES):
        result = run_once(driver, function, env)
        if result is not None:
            return result
        retried[function[0]] = retried.get(function[0], 0) + 1
    sys.exit(f"{function[0]}: {RETRIES} error responses in a row")


def behaviour(driver, measured, envs, other_ca):
    """What each function does after its connection is killed, and with an untrusted CA."""
    print("behaviour: S = success, E = the error shape; each invocation in a second of its own")
    for label, engine, argv in measured:
        driver.start_of_a_second(engine)
        running = Function(argv, envs[engine])
        try:
            answers, times = [], []
            for i in range(5):
                if i == 1:
                    driver.kill_connections(engine)
                if i > 0:
                    driver.start_of_a_second(engine)
                invocation = running.first if i == 0 else running.queue()
                asked = running.started if i == 0 else time.monotonic()
                response = running.wait(invocation).response()
                answers.append("S" if response == EXPECTED[engine] else "E")
                times.append(f"{(invocation.response_at - asked) * 1000:.1f}")
        finally:
            running.stop()
        print(f"{label:28} a killed connection: {answers[0]} | kill | {' '.join(answers[1:])}"
              f"  (ms: {times[0]} | {' '.join(times[1:])})")
        driver.start_of_a_second(engine)
        running = Function(argv, dict(envs[engine], DBCaFile=other_ca))
        try:
            response = running.wait(running.first).response()
        finally:
            running.stop()
        verdict = ("logged in: the certificate was NOT verified, the token was sent"
                   if response == EXPECTED[engine] else f"refused: {response}")
        print(f"{label:28} a server certificate from an untrusted CA: {verdict}")


def functions(args, python):
    examples = Path(args.rust_dir) if args.rust_dir else musl_examples()
    found = [
        ("rust-postgres", "postgres", [str(examples / "lambda_postgres")]),
        ("python-postgres", "postgres", [python, str(SEED / "bootstrap.py"), "postgres_function"]),
        ("rust-mysql", "mysql", [str(examples / "lambda_mysql")]),
        ("python-mysql", "mysql", [python, str(SEED / "bootstrap.py"), "mysql_function"]),
    ]
    for extra in args.extra:
        engine, label, path = extra.split(":", 2)
        found.append((f"rust-{engine}-{label}", engine, [path]))
    if args.only:
        found = [f for f in found if f[0] in args.only.split(",")]
    for label, _, argv in found:
        if label.startswith("rust") and not Path(argv[0]).exists():
            sys.exit(f"{argv[0]} missing: cargo build --profile lambda --target "
                     f"{platform.machine()}-unknown-linux-musl --no-default-features "
                     "--features postgres,mysql --example lambda_postgres --example lambda_mysql "
                     "(or --rust-dir for another build)")
    return found


def environment(args, engine):
    host, port = getattr(args, engine).rsplit(":", 1)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        # What Lambda sets for every function.
        "AWS_LAMBDA_FUNCTION_NAME": "cold-start",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/cold-start",
        "AWS_LAMBDA_LOG_STREAM_NAME": "cold-start",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        # Nothing may leave the machine or read the host's AWS files.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        # The post's variables, plus the test servers' port, region and CA.
        "DBEndPoint": host,
        "DatabaseName": DATABASE,
        "DBUserName": USER,
        "DBPort": port,
        "DBRegion": "us-east-1",
        "DBCaFile": args.ca,
    }
    return env


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", required=True, help="HOST:PORT of the test PostgreSQL")
    parser.add_argument("--mysql", required=True, help="HOST:PORT of the test MariaDB")
    parser.add_argument("--ca", required=True, help="the test servers' CA certificate (PEM)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--extra", action="append", default=[], help="ENGINE:LABEL:PATH")
    parser.add_argument("--only", help="comma-separated labels")
    parser.add_argument("--rust-dir", help="where lambda_postgres and lambda_mysql are "
                                           "(default: target/<arch>-unknown-linux-musl/lambda/examples)")
    parser.add_argument("--smaps", action="store_true",
                        help="also print each function's resident memory per mapped file (last run)")
    parser.add_argument("--behaviour", metavar="OTHER_CA",
                        help="instead of timing: reconnection after a kill, and the answer to a "
                             "server whose CA is not OTHER_CA (a PEM file)")
    args = parser.parse_args()
    global SMAPS
    SMAPS = args.smaps

    driver = Driver()
    measured = functions(args, seed_python())
    envs = {engine: environment(args, engine) for engine in ("postgres", "mysql")}

    if args.behaviour:
        return behaviour(driver, measured, envs, args.behaviour)
    retried = {}
    for function in measured:  # warm the page cache (and the venv's .pyc files)
        measure(driver, function, envs[function[1]], {})
    results = {label: [] for label, _, _ in measured}
    for _ in range(args.runs):
        for function in measured:
            results[function[0]].append(measure(driver, function, envs[function[1]], retried))

    print(f"runs: {args.runs} each, alternating; spawn -> first /response (init: spawn -> first "
          "/next), peak RSS (VmHWM); RssAnon/RssFile/threads once idle again")
    medians = {}
    for label, runs in results.items():
        times = sorted(t for t, _ in runs)

        def median(name):
            return statistics.median(m.get(name, 0) for _, m in runs)

        t, m = statistics.median(times), median("VmHWM") / 1024
        medians[label] = (t, m)
        print(f"{label:28} median {t * 1000:7.1f} ms (min {times[0] * 1000:6.1f}, max {times[-1] * 1000:6.1f}; "
              f"init {median('init') * 1000:.1f}), "
              f"peak RSS median {m:5.2f} MiB (anon {median('RssAnon') / 1024:.2f}, "
              f"file {median('RssFile') / 1024:.2f}, {median('Threads'):.0f} threads)")
    if args.smaps:
        for label, runs in results.items():
            mapped = sorted(runs[-1][1]["smaps"].items(), key=lambda kv: -kv[1])
            print(f"{label:28} resident KiB by mapping: "
                  + ", ".join(f"{name} {kib}" for name, kib in mapped if kib >= 64))
    if retried:
        print(f"runs repeated after an error response (a token switch raced the login): {retried}")
    for engine in ("postgres", "mysql"):
        rust, python = medians.get(f"rust-{engine}"), medians.get(f"python-{engine}")
        if rust and python:
            print(f"ratio python/rust ({engine}): time {python[0] / rust[0]:.1f}x, "
                  f"peak memory {python[1] / rust[1]:.1f}x")


if __name__ == "__main__":
    main()
