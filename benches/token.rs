//! Token generation: this crate's signer vs aws-sigv4's general presigning path vs the floor,
//! a bare SigV4 computed with a cached signing key (hash the canonical request, HMAC the
//! string to sign), all in one run. The target is within 1.5x of the floor.

#[path = "../tests/support/reference.rs"]
mod reference;

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use criterion::{Criterion, criterion_group, criterion_main};
use rds_iam_auth::token::TokenSigner;
use rds_iam_auth::{Credentials, Endpoint, TokenRequest};
use sha2::{Digest, Sha256};

const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc/def==";

fn bench_tokens(c: &mut Criterion) {
    let at = UNIX_EPOCH + Duration::from_secs(1_705_322_096);
    let endpoint =
        Endpoint::new("mydb.cluster-abc123xyz.us-east-1.rds.amazonaws.com", 5432).unwrap();
    let request = TokenRequest::rds(&endpoint, "iam_user").build().unwrap();
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let plain = Credentials::new("AKIAIOSFODNN7EXAMPLE", secret, None, None, "bench");
    // A realistic STS session token is ~1 KB.
    let long_token = SESSION_TOKEN.repeat(15);
    let with_session = Credentials::new(
        "AKIAIOSFODNN7EXAMPLE",
        secret,
        Some(long_token),
        None,
        "bench",
    );

    let mut group = c.benchmark_group("token");
    for (name, credentials) in [
        ("no_session_token", &plain),
        ("session_token", &with_session),
    ] {
        let signer = TokenSigner::new();
        group.bench_function(format!("rds_iam_auth/{name}"), |b| {
            b.iter(|| {
                signer
                    .sign(black_box(credentials), black_box(&request), at)
                    .unwrap()
            })
        });
        group.bench_function(format!("aws_sigv4_presign/{name}"), |b| {
            b.iter(|| reference::token(black_box(credentials), black_box(&request), at))
        });
        // The floor: what any SigV4 must do per token once its key is cached.
        let key = generate_signing_key(secret, at, "us-east-1", "rds-db");
        let canonical = canonical_request(credentials);
        group.bench_function(format!("sigv4_cached_key_floor/{name}"), |b| {
            b.iter(|| {
                let hash = hex::encode(Sha256::digest(black_box(canonical.as_bytes())));
                let sts = format!(
                    "AWS4-HMAC-SHA256\n20240115T123456Z\n20240115/us-east-1/rds-db/aws4_request\n{hash}"
                );
                calculate_signature(key.as_ref(), sts.as_bytes())
            })
        });
    }
    let cold_creds = plain.clone();
    group.bench_function("rds_iam_auth/cold_signing_key", |b| {
        b.iter(|| {
            TokenSigner::new()
                .sign(black_box(&cold_creds), &request, at)
                .unwrap()
        })
    });
    group.finish();
}

/// The canonical request botocore signs for `bench_tokens`' request.
fn canonical_request(credentials: &Credentials) -> String {
    let token = match credentials.session_token() {
        Some(t) => format!(
            "&X-Amz-Security-Token={}",
            t.replace('/', "%2F")
                .replace('+', "%2B")
                .replace('=', "%3D")
        ),
        None => String::new(),
    };
    format!(
        "GET\n/\nAction=connect&DBUser=iam_user&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240115%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20240115T123456Z&X-Amz-Expires=900{token}&X-Amz-SignedHeaders=host\nhost:mydb.cluster-abc123xyz.us-east-1.rds.amazonaws.com:5432\n\nhost\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench_tokens
}
criterion_main!(benches);
