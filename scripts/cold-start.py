#!/usr/bin/env python3
"""Cold start, measured: process start -> first IAM auth token, side by side in one run.

Rust: the release `rds-iam-token` binary (aws-config credentials chain, then one token).
Python: the blog post's code path: `import boto3`, `boto3.client('rds')`,
`generate_db_auth_token(...)`.

Both read the same example credentials from the environment; IMDS is disabled for both so
that neither waits on a metadata service that is not there, and no traffic leaves the
machine. Runs alternate, to share the machine's noise; the figures are medians.

Each run is started by a tiny C wrapper (compiled on first use) that forks, execs the
command, and reports the wall time from fork to exit and the `ru_maxrss` of that one child
(`wait4`). Measuring from here instead would be wrong twice over: Python's own start-up of
the subprocess would be counted, and a child spawned by a 20 MB Python with vfork inherits
that process's RSS high-water mark at exec.

    cargo build --release --features cli --bin rds-iam-token
    python3 scripts/cold-start.py [--runs 30]

boto3 is installed (in a virtualenv under the target directory) when the running Python
does not have it.
"""
import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "mydb.cluster-abc123xyz.us-east-1.rds.amazonaws.com"
ENV = dict(
    os.environ,
    AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
    AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    AWS_EC2_METADATA_DISABLED="true",
    AWS_CONFIG_FILE="/nonexistent",
    AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
)
PYTHON = (
    "import boto3\n"
    "client = boto3.client('rds', region_name='us-east-1')\n"
    f"print(client.generate_db_auth_token(DBHostname='{HOST}', Port=5432, DBUsername='iam_user', Region='us-east-1'))\n"
)

# fork, exec argv[1..], wait4 that child; stdout stays the child's, the measurement goes to
# stderr's last line: "<wall ns> <maxrss KiB> <exit status>".
WRAPPER_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) { execvp(argv[1], argv + 1); perror("exec"); _exit(127); }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("wait4"); return 2; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    fprintf(stderr, "\n%lld %ld %d\n", ns, ru.ru_maxrss,
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
"""


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def wrapper() -> Path:
    exe = target_dir() / "cold-start-wrap"
    src = target_dir() / "cold-start-wrap.c"
    if not (exe.exists() and src.exists() and src.read_text() == WRAPPER_C):
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(WRAPPER_C)
        subprocess.run(["cc", "-O2", "-static", "-o", str(exe), str(src)], check=True)
    return exe


def python_with_boto3() -> str:
    """This Python if it has boto3, else a virtualenv's (created and filled from PyPI once)."""
    if subprocess.run([sys.executable, "-c", "import boto3"], capture_output=True).returncode == 0:
        return sys.executable
    venv = target_dir() / "cold-start-venv"
    python = venv / "bin" / "python3"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(python), "-c", "import boto3"], capture_output=True).returncode != 0:
        print("installing boto3 into", venv, file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "boto3"], check=True)
    return str(python)


def run(wrap, cmd):
    """One fresh process: (seconds from fork to exit, peak RSS in KiB)."""
    out = subprocess.run([str(wrap), *cmd], env=ENV, capture_output=True, text=True)
    *stderr, measured = out.stderr.rstrip("\n").split("\n")
    ns, maxrss_kib, status = (int(x) for x in measured.split())
    if out.returncode != 0 or status != 0 or "X-Amz-Signature=" not in out.stdout:
        sys.exit(f"{cmd[0]} failed (status {status}): {' '.join(stderr).strip()}")
    return ns / 1e9, maxrss_kib


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--rust",
        type=Path,
        default=target_dir() / "release" / "rds-iam-token",
        help="the binary to measure (default: target/release/rds-iam-token)",
    )
    args = parser.parse_args()
    if not args.rust.exists():
        sys.exit(f"{args.rust} missing: cargo build --release --features cli --bin rds-iam-token")
    wrap = wrapper()
    rust_cmd = [str(args.rust), "--hostname", HOST, "--port", "5432", "--username", "iam_user"]
    python_cmd = [python_with_boto3(), "-c", PYTHON]
    run(wrap, rust_cmd), run(wrap, python_cmd)  # warm the page cache for both
    rust, python = [], []
    for _ in range(args.runs):
        rust.append(run(wrap, rust_cmd))
        python.append(run(wrap, python_cmd))

    def medians(runs):
        return statistics.median(t for t, _ in runs), statistics.median(m for _, m in runs)

    (rt, rm), (pt, pm) = medians(rust), medians(python)
    print(f"runs: {args.runs} each, alternating; wall time fork -> exit, peak RSS (ru_maxrss)")
    print(f"rust   {args.rust.name}: median {rt * 1000:7.2f} ms (min {min(t for t, _ in rust) * 1000:.2f}), "
          f"peak RSS median {rm / 1024:6.2f} MiB")
    print(f"python boto3 generate_db_auth_token: median {pt * 1000:7.1f} ms (min {min(t for t, _ in python) * 1000:.1f}), "
          f"peak RSS median {pm / 1024:6.2f} MiB")
    print(f"ratio python/rust: time {pt / rt:.0f}x, peak memory {pm / rm:.1f}x")


if __name__ == "__main__":
    main()
