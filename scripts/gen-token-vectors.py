#!/usr/bin/env python3
"""Generate the crate's botocore reference vectors: tests/data/botocore-vectors.json.

Every token is made by botocore, offline, at a frozen time: time is frozen by patching
botocore.auth.get_current_datetime, the one hook SigV4QueryAuth uses to stamp X-Amz-Date.
RDS tokens of 900 s and all DSQL tokens come from botocore's public functions
(generate_db_auth_token, generate_db_connect[_admin]_auth_token); RDS tokens of other
lifetimes (botocore fixes RDS at 900 s) from the same presign path with the expiry as a
parameter, checked against the public function first.

The cases: the common ones (PostgreSQL, MySQL, session tokens, port 443, mixed case, DSQL),
the edge cases the crate promises to get right (user names that need percent-encoding,
non-ASCII, ports 80/443, RDS expiries below 900 s, DSQL expiries up to a week), and every
hostname form the region inference knows (China's current form, FIPS in either position,
GovCloud, ISO, European Sovereign Cloud, DSQL FIPS, an Aurora Global Database writer
endpoint with an explicit region).

`host_region` is the region the crate must infer from the hostname, written by hand here
(not computed), or null when the hostname carries none (or the vector signs for another
region on purpose); tests/region_inference.rs checks it.

    python3 -m venv venv && venv/bin/pip install botocore
    venv/bin/python scripts/gen-token-vectors.py
"""
import datetime
import json
import os
from unittest import mock

import botocore
import botocore.auth
import botocore.session
from botocore.signers import prepare_request_dict

FROZEN = datetime.datetime(2024, 1, 15, 12, 34, 56)  # naive UTC, as botocore expects
LATE = datetime.datetime(2025, 12, 31, 23, 59, 59)
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
# A realistic-looking STS token: `/`, `+` and `=` must be percent-encoded.
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc/def=="
PG = "mydb.cluster-abc123xyz.us-east-1.rds.amazonaws.com"
MYSQL = "mysql-inst.c9akciq32.eu-west-1.rds.amazonaws.com"
DSQL = "abcdefghijklmnopqrst123456.dsql.us-east-1.on.aws"
SAME = object()  # host_region: the vector's region is in the hostname


def rds(name, user, host=PG, port=5432, region="us-east-1", token=None, expires=900,
        at=FROZEN, host_region=SAME):
    return dict(name=name, kind="rds", host=host, port=port, user=user, region=region,
                session_token=token, expires_in=expires, at=at,
                host_region=region if host_region is SAME else host_region)


def dsql(name, admin, region="us-east-1", token=None, expires=900, host=DSQL, at=FROZEN):
    return dict(name=name, kind="dsql_admin" if admin else "dsql", host=host, port=None,
                user=None, region=region, session_token=token, expires_in=expires, at=at,
                host_region=region)


CASES = [
    # The common cases (first published as the workspace's shared vectors, botocore 1.44.5).
    rds("pg_no_session_token", "iam_user"),
    rds("pg_with_session_token", "iam_user", token=SESSION_TOKEN),
    rds("mysql_no_session_token", "app_reader", host=MYSQL, port=3306, region="eu-west-1"),
    rds("mysql_urlencoded_user_with_session_token", "iam user+1@x", host=MYSQL, port=3306,
        region="eu-west-1", token=SESSION_TOKEN),
    rds("pg_default_https_port_443", "iam_user",
        host="proxy.proxy-abc123xyz.us-west-2.rds.amazonaws.com", port=443, region="us-west-2"),
    rds("pg_mixed_case_host", "iam_user",
        host="MyDB.Cluster-ABC123xyz.us-east-1.rds.amazonaws.com"),
    dsql("dsql_connect_admin", True, token=SESSION_TOKEN),
    dsql("dsql_connect", False),
    # Edge cases.
    rds("user_reserved_chars", "a/b:c?d=e&f+g"),
    rds("user_space_and_at", "iam user@example.com", token=SESSION_TOKEN),
    rds("user_non_ascii", "jos\u00e9_\u65e5\u672c"),
    rds("user_percent_and_tilde", "100%_~ok-.x"),
    rds("port_80", "iam_user", port=80),
    rds("port_443_with_session_token", "iam_user", port=443, token=SESSION_TOKEN),
    rds("mixed_case_host_with_session_token", "iam_user",
        host="MyDB.Cluster-ABC123xyz.us-east-1.rds.amazonaws.com", token=SESSION_TOKEN),
    rds("china_region", "iam_user", host="mydb.cluster-abc123.cn-north-1.rds.amazonaws.com.cn",
        region="cn-north-1"),
    rds("govcloud_region", "iam_user", host="mydb.abc123.us-gov-west-1.rds.amazonaws.com",
        port=3306, region="us-gov-west-1"),
    rds("expires_60", "iam_user", expires=60),
    rds("expires_600_late_date", "iam_user", expires=600, at=LATE),
    rds("region_differs_from_host", "iam_user", region="eu-central-1", host_region="us-east-1"),
    dsql("dsql_connect_expires_3600", False, expires=3600),
    dsql("dsql_admin_expires_week", True, expires=604800, token=SESSION_TOKEN),
    dsql("dsql_connect_eu_late_date", False, region="eu-west-1",
         host="zyxwvutsrqponmlkjihgfe9876.dsql.eu-west-1.on.aws", at=LATE),
    # Hostname forms: China's current form (`rds.<region>`), instance, cluster, proxy.
    rds("china_current_instance", "iam_user", port=3306, region="cn-northwest-1",
        host="mydb.abc123xyz.rds.cn-northwest-1.amazonaws.com.cn"),
    rds("china_current_cluster_with_session_token", "iam_user", region="cn-north-1",
        host="mydb.cluster-abc123xyz.rds.cn-north-1.amazonaws.com.cn", token=SESSION_TOKEN),
    rds("china_current_proxy", "iam_user", region="cn-northwest-1",
        host="myproxy.proxy-abc123xyz.rds.cn-northwest-1.amazonaws.com.cn"),
    # FIPS, in either position.
    rds("fips_commercial", "iam_user",
        host="mydb.cluster-abc123xyz.us-east-1.rds-fips.amazonaws.com"),
    rds("fips_govcloud_region_first", "iam_user", port=3306, region="us-gov-east-1",
        host="mydb.cluster-abc123xyz.us-gov-east-1.rds-fips.amazonaws.com"),
    rds("fips_govcloud_rds_first", "iam_user", region="us-gov-west-1",
        host="mydb.abc123xyz.rds-fips.us-gov-west-1.amazonaws.com", token=SESSION_TOKEN),
    rds("fips_china_current", "iam_user", region="cn-north-1",
        host="mydb.cluster-abc123xyz.rds-fips.cn-north-1.amazonaws.com.cn"),
    rds("govcloud_rds_first", "iam_user", region="us-gov-west-1",
        host="mydb.abc123xyz.rds.us-gov-west-1.amazonaws.com"),
    # Other partitions.
    rds("eusc_cluster", "iam_user", region="eusc-de-east-1",
        host="mydb.cluster-abc123xyz.eusc-de-east-1.rds.amazonaws.eu"),
    rds("eusc_fips_instance", "iam_user", port=3306, region="eusc-de-east-1",
        host="mydb.abc123xyz.eusc-de-east-1.rds-fips.amazonaws.eu"),
    rds("iso_region_first", "iam_user", region="us-iso-east-1",
        host="mydb.abc123xyz.us-iso-east-1.rds.c2s.ic.gov"),
    rds("iso_rds_first", "iam_user", region="us-iso-west-1",
        host="mydb.cluster-abc123xyz.rds.us-iso-west-1.c2s.ic.gov"),
    rds("isob_cluster", "iam_user", region="us-isob-east-1",
        host="mydb.cluster-abc123xyz.us-isob-east-1.rds.sc2s.sgov.gov"),
    # Aurora endpoints kinds: Limitless shard group, RDS Proxy custom endpoint.
    rds("limitless_shard_group", "iam_user",
        host="mylimitless.shardgrp-abc123xyz.us-east-1.rds.amazonaws.com"),
    rds("proxy_custom_endpoint", "iam_user", region="ap-northeast-1",
        host="reader.endpoint.proxy-abc123xyz.ap-northeast-1.rds.amazonaws.com"),
    # Aurora Global Database writer endpoint: no region in the name, given explicitly.
    rds("global_writer_explicit_region", "iam_user", region="us-west-2", host_region=None,
        host="myglobal.global-abc123xyz.global.rds.amazonaws.com"),
    # DSQL FIPS.
    dsql("dsql_fips_connect", False, host="abcdefghijklmnopqrst123456.dsql-fips.us-east-1.on.aws"),
    dsql("dsql_fips_admin_govcloud", True, region="us-gov-west-1", token=SESSION_TOKEN,
         host="abcdefghijklmnopqrst123456.dsql-fips.us-gov-west-1.on.aws"),
]


def session(token):
    s = botocore.session.Session()
    s.set_credentials(ACCESS_KEY, SECRET_KEY, token)
    return s


def presign(case):
    """The code path of generate_db_auth_token, with the expiry as a parameter."""
    client = session(case["session_token"]).create_client("rds", region_name=case["region"])
    body = {"Action": "connect", "DBUser": case["user"]}
    request = {"url_path": "/", "query_string": "", "headers": {}, "body": body, "method": "GET"}
    prepare_request_dict(request, f"https://{case['host']}:{case['port']}")
    signed = client._request_signer.generate_presigned_url(
        operation_name="connect", request_dict=request, region_name=case["region"],
        expires_in=case["expires_in"], signing_name="rds-db")
    return signed[len("https://"):]


def public(case):
    """botocore's public token functions."""
    service = "rds" if case["kind"] == "rds" else "dsql"
    client = session(case["session_token"]).create_client(service, region_name=case["region"])
    if case["kind"] == "rds":
        return client.generate_db_auth_token(case["host"], case["port"], case["user"],
                                             case["region"])
    generate = (client.generate_db_connect_admin_auth_token if case["kind"] == "dsql_admin"
                else client.generate_db_connect_auth_token)
    return generate(case["host"], case["region"], case["expires_in"])


def token(case):
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=case["at"]):
        if case["kind"] == "rds" and case["expires_in"] != 900:
            return presign(case)
        return public(case)


def check_presign_against_public_api():
    """Guard: for 900 s the parametrised path must equal botocore's public function."""
    case = rds("guard", "a b+c", token=SESSION_TOKEN)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=FROZEN):
        assert public(case) == presign(case), "presign drifted from generate_db_auth_token"


def vector(case):
    at = case["at"]
    return {
        "name": case["name"],
        "service": "rds-db" if case["kind"] == "rds" else "dsql",
        "action": {"rds": "connect", "dsql": "DbConnect", "dsql_admin": "DbConnectAdmin"}[case["kind"]],
        "hostname": case["host"],
        "port": case["port"],
        "username": case["user"],
        "region": case["region"],
        "host_region": case["host_region"],
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "session_token": case["session_token"],
        "time_utc": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "unix_time": int(at.replace(tzinfo=datetime.timezone.utc).timestamp()),
        "expires_in": case["expires_in"],
        "expected_token": token(case),
    }


def main():
    check_presign_against_public_api()
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "duplicate vector names"
    vectors = [vector(case) for case in CASES]
    out = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "botocore-vectors.json")
    doc = {
        "generator": f"botocore {botocore.__version__} via scripts/gen-token-vectors.py "
                     "(time frozen by patching botocore.auth.get_current_datetime)",
        "vectors": vectors,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(vectors)} vectors to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
