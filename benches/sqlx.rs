//! A new pooled sqlx connection + `SELECT 1`, with IAM (`sqlx_0_9::IamPool`, `sqlx_0_8::IamPool`)
//! and with a fixed password (a plain sqlx pool of the same version), against the same
//! throwaway TLS server, same run, per engine and sqlx version.
//!
//! - `iam`: `IamPool::acquire` (token check against the cache, sqlx's acquire, a new login);
//! - `static_password_same_login`: a plain sqlx pool with the same connect options (the same
//!   TLS roots and mode, the same cleartext login) and the token as a fixed password: the
//!   floor, so the ratio is this crate's overhead.
//!
//! Each iteration closes its connection, so the next acquire opens (and logs in) a new one.
//!
//! `cargo bench --bench sqlx --features sqlx-0_9-postgres,sqlx-0_9-mysql,sqlx-0_8-postgres,sqlx-0_8-mysql,postgres,mysql`
//! (each version's pairs run when its features are on).

// Without a sqlx PostgreSQL feature there is no pair to run (`cargo clippy --all-targets
// --features postgres` still builds this file).
#![cfg_attr(
    not(any(feature = "sqlx-0_9-postgres", feature = "sqlx-0_8-postgres")),
    allow(unused)
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rds_iam_auth::{Endpoint, TokenRequest};
use support::iam::{self, TestClock};

/// Criterion's numbers, then rounds alternating the two (criterion runs one case after the
/// other, and exiting backends of one slow the next down): median of per-round ratios.
fn pair<A: Future<Output = ()>, B: Future<Output = ()>>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    label: &str,
    mut iam: impl FnMut() -> A,
    mut fixed: impl FnMut() -> B,
) {
    let mut g = c.benchmark_group(format!("{label}_sqlx_new_connection_select_1"));
    g.sample_size(60).measurement_time(Duration::from_secs(6));
    g.bench_function("iam", |b| b.to_async(rt).iter(&mut iam));
    g.bench_function("static_password_same_login", |b| {
        b.to_async(rt).iter(&mut fixed)
    });
    g.finish();

    // `cargo test --all-targets` runs benches once as tests (without `--bench`): a smoke
    // round there, not the 1,000 sqlx logins (about 2 minutes) of the measurement.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (rounds, per_round): (usize, u32) = if measuring { (25, 20) } else { (1, 1) };
    let mut ratios = Vec::new();
    let (mut a_total, mut b_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let t = Instant::now();
        rt.block_on(async {
            for _ in 0..per_round {
                iam().await;
            }
        });
        let a = t.elapsed();
        let t = Instant::now();
        rt.block_on(async {
            for _ in 0..per_round {
                fixed().await;
            }
        });
        let b = t.elapsed();
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
        a_total += a;
        b_total += b;
    }
    ratios.sort_by(f64::total_cmp);
    let n = (rounds as u32) * per_round;
    println!(
        "{label} sqlx interleaved: iam {:?}/connection, static password (same login) \
         {:?}/connection, median ratio IAM/static {:.3}",
        a_total / n,
        b_total / n,
        ratios[rounds / 2]
    );
}

#[cfg(feature = "sqlx-0_9-postgres")]
mod v0_9 {
    use crate::support::sqlx_0_9 as version_support;
    use rds_iam_auth::sqlx_0_9 as iam_sqlx;
    const VERSION: &str = "sqlx_0_9";
    /// Items that need this version's MySQL side.
    macro_rules! if_mysql {
        ($($item:item)*) => { $(#[cfg(all(feature = "sqlx-0_9-mysql", feature = "mysql"))] $item)* };
    }
    include!("sqlx_pairs/pairs.rs");
}

#[cfg(feature = "sqlx-0_8-postgres")]
mod v0_8 {
    use crate::support::sqlx_0_8 as version_support;
    use rds_iam_auth::sqlx_0_8 as iam_sqlx;
    const VERSION: &str = "sqlx_0_8";
    /// Items that need this version's MySQL side.
    macro_rules! if_mysql {
        ($($item:item)*) => { $(#[cfg(all(feature = "sqlx-0_8-mysql", feature = "mysql"))] $item)* };
    }
    include!("sqlx_pairs/pairs.rs");
}

fn postgres(c: &mut Criterion) {
    #[cfg(feature = "sqlx-0_9-postgres")]
    v0_9::postgres(c);
    #[cfg(feature = "sqlx-0_8-postgres")]
    v0_8::postgres(c);
}

fn mysql(c: &mut Criterion) {
    #[cfg(all(
        feature = "sqlx-0_9-postgres",
        feature = "sqlx-0_9-mysql",
        feature = "mysql"
    ))]
    v0_9::mysql(c);
    #[cfg(all(
        feature = "sqlx-0_8-postgres",
        feature = "sqlx-0_8-mysql",
        feature = "mysql"
    ))]
    v0_8::mysql(c);
    let _ = c;
}

criterion_group!(benches, postgres, mysql);
criterion_main!(benches);
