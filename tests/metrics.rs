//! The `metrics` feature counts a real login, a rejected token's retry and the failed second
//! attempt, and times them, under the names the README lists.

mod support;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use support::iam;

#[test]
fn a_login_and_a_rejection_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The recorder is this thread's; the current-thread runtime runs everything on it.
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            iam::login_then_rejection().await;
        })
    });

    let metrics: Vec<(String, Vec<String>, DebugValue)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key().clone();
            let labels = key.labels().map(|l| format!("{}={}", l.key(), l.value()));
            (key.name().to_owned(), labels.collect(), value)
        })
        .collect();
    let counter = |name: &str, label: &str| {
        metrics
            .iter()
            .find(|(n, labels, _)| {
                n == name && (label.is_empty() || labels.iter().any(|l| l == label))
            })
            .map(|(_, _, v)| match v {
                DebugValue::Counter(n) => *n,
                other => panic!("{name} is {other:?}"),
            })
            .unwrap_or_else(|| panic!("no {name} {{{label}}} in {metrics:?}"))
    };
    assert_eq!(counter("rds_iam_auth.logins", "outcome=success"), 1);
    assert_eq!(counter("rds_iam_auth.logins", "outcome=rejected"), 1);
    assert_eq!(
        counter("rds_iam_auth.login.retries", "db.system.name=postgresql"),
        1
    );
    // The test's own (`token_at`), the connector's first, one freshly signed after the rejection.
    assert_eq!(counter("rds_iam_auth.tokens.signed", ""), 3);
    for histogram in [
        "rds_iam_auth.sign.duration",
        "rds_iam_auth.credentials.duration",
        "rds_iam_auth.connect.duration",
    ] {
        assert!(
            metrics.iter().any(|(n, _, v)| n == histogram
                && matches!(v, DebugValue::Histogram(h) if !h.is_empty())),
            "no {histogram} in {metrics:?}"
        );
    }
}
