#!/usr/bin/env python3
"""Cold start, measured: process start -> first IAM auth token, side by side in one run.

Rust: the release `rds-iam-token` example (aws-config credentials chain, then one token).
Python: the blog post's code path: `import boto3`, `boto3.client('rds')`,
`generate_db_auth_token(...)`.

Both read the same example credentials from the environment; IMDS is disabled for both so
that neither waits on a metadata service that is not there. Runs alternate, to share the
machine's noise; the figure is the ratio of medians.

    pip install boto3
    cargo build --release --example rds-iam-token
    python3 scripts/cold-start.py [--runs 30]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
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


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def run(cmd) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0 or "X-Amz-Signature=" not in out.stdout:
        sys.exit(f"{cmd[0]} failed: {out.stderr.strip()}")
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    rust = target_dir() / "release" / "examples" / "rds-iam-token"
    if not rust.exists():
        sys.exit(f"{rust} missing: cargo build --release --example rds-iam-token")
    rust_cmd = [str(rust), "--hostname", HOST, "--port", "5432", "--username", "iam_user"]
    python_cmd = [sys.executable, "-c", PYTHON]
    run(rust_cmd), run(python_cmd)  # warm the page cache for both
    rust_times, python_times = [], []
    for _ in range(args.runs):
        rust_times.append(run(rust_cmd))
        python_times.append(run(python_cmd))
    r, p = statistics.median(rust_times), statistics.median(python_times)
    print(f"runs: {args.runs} each, alternating")
    print(f"rust  rds-iam-token (release): median {r * 1000:7.1f} ms  (min {min(rust_times) * 1000:.1f})")
    print(f"python boto3 generate_db_auth_token: median {p * 1000:7.1f} ms  (min {min(python_times) * 1000:.1f})")
    print(f"ratio python/rust: {p / r:.1f}x")


if __name__ == "__main__":
    main()
