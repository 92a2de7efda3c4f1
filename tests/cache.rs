//! The token cache under a clock the tests move: margins, refresh ahead, credential expiry,
//! failures with and without grace, invalidation, and concurrency.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use rds_iam_auth::cache::TokenCacheBuilder;
use rds_iam_auth::clock::Clock;
use rds_iam_auth::{
    Credentials, Endpoint, Error, ErrorKind, IamAuthToken, TokenCache, TokenGenerator, TokenRequest,
};
use tokio::sync::Semaphore;

const T0: u64 = 1_705_322_096;

/// A clock set by the test. Its monotonic face follows the wall one (time passing, as these
/// tests mean it): `T0` is the instant the clock was made.
#[derive(Debug, Clone)]
struct ManualClock(Arc<Mutex<SystemTime>>, std::time::Instant);

impl ManualClock {
    fn new() -> Self {
        Self(
            Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(T0))),
            std::time::Instant::now(),
        )
    }
    fn set(&self, secs_after_t0: u64) {
        *self.0.lock().unwrap() = UNIX_EPOCH + Duration::from_secs(T0 + secs_after_t0);
    }
    fn advance(&self, secs: u64) {
        *self.0.lock().unwrap() += Duration::from_secs(secs);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
    fn instant(&self) -> std::time::Instant {
        let since_t0 = self
            .now()
            .duration_since(UNIX_EPOCH + Duration::from_secs(T0))
            .unwrap_or_default();
        self.1 + since_t0
    }
}

/// Credentials valid for `validity` from the moment they are asked for; counts calls, can
/// fail, and can be held at a gate.
#[derive(Debug)]
struct TestProvider {
    clock: ManualClock,
    validity: Duration,
    calls: AtomicUsize,
    /// Calls that reached the gate (including those still waiting there).
    entered: AtomicUsize,
    fail: AtomicBool,
    gate: Option<Semaphore>,
    /// Never answer (a hung IMDS or STS).
    hang: AtomicBool,
    /// Take this long (tokio time) before answering.
    delay_ms: AtomicU64,
    /// Move the manual clock this far while the call is in flight (a slow provider).
    advance_secs: AtomicU64,
    /// Credentials expire this long after the call, when set (a stale provider).
    validity_override_secs: AtomicU64,
}

impl ProvideCredentials for TestProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.entered.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                gate.acquire().await.unwrap().forget();
            }
            if self.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let delay = self.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let advance = self.advance_secs.load(Ordering::SeqCst);
            if advance > 0 {
                self.clock.advance(advance);
            }
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(CredentialsError::provider_error("STS is down"));
            }
            let validity = match self.validity_override_secs.load(Ordering::SeqCst) {
                0 => self.validity,
                secs => Duration::from_secs(secs),
            };
            let expiry = self.clock.now() + validity;
            Ok(Credentials::new(
                format!("ASIA{n}"),
                "secret",
                Some("session".into()),
                Some(expiry),
                "test",
            ))
        })
    }
}

struct Fixture {
    clock: ManualClock,
    provider: Arc<TestProvider>,
    cache: TokenCache,
    request: TokenRequest,
}

/// `validity` under 5 minutes makes every signing ask the provider (the generator keeps
/// credentials only while more than 5 minutes are left), so provider calls count signings.
fn fixture(
    validity_secs: u64,
    gate: Option<Semaphore>,
    configure: impl FnOnce(TokenCacheBuilder) -> TokenCacheBuilder,
) -> Fixture {
    let clock = ManualClock::new();
    let provider = Arc::new(TestProvider {
        clock: clock.clone(),
        validity: Duration::from_secs(validity_secs),
        calls: AtomicUsize::new(0),
        entered: AtomicUsize::new(0),
        fail: AtomicBool::new(false),
        gate,
        hang: AtomicBool::new(false),
        delay_ms: AtomicU64::new(0),
        advance_secs: AtomicU64::new(0),
        validity_override_secs: AtomicU64::new(0),
    });
    let generator = TokenGenerator::builder(
        aws_credential_types::provider::SharedCredentialsProvider::new(SharedProvider(
            provider.clone(),
        )),
    )
    .clock(clock.clone())
    .build();
    let cache = configure(TokenCache::builder(generator)).build();
    let endpoint = Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 5432).unwrap();
    let request = TokenRequest::rds(&endpoint, "iam_user").build().unwrap();
    Fixture {
        clock,
        provider,
        cache,
        request,
    }
}

#[derive(Debug)]
struct SharedProvider(Arc<TestProvider>);

impl ProvideCredentials for SharedProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.provide_credentials()
    }
}

impl Fixture {
    async fn get(&self) -> Result<IamAuthToken, Error> {
        self.cache.get(&self.request).await
    }
    fn calls(&self) -> usize {
        self.provider.calls.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn never_hands_out_a_token_within_the_margin() {
    let f = fixture(3600, None, |b| b.refresh_ahead_percent(100));
    let first = f.get().await.unwrap();
    assert_eq!(
        first.expires_at(),
        UNIX_EPOCH + Duration::from_secs(T0 + 900)
    );
    f.clock.set(839); // 61 s left
    assert!(f.get().await.unwrap().same_token(&first));
    f.clock.set(841); // 59 s left: under the 60 s margin
    let second = f.get().await.unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(
        second.expires_at(),
        UNIX_EPOCH + Duration::from_secs(T0 + 841 + 900)
    );
    let s = f.cache.stats();
    assert_eq!((s.hits, s.misses, s.refreshes), (1, 2, 2));
}

#[tokio::test]
async fn the_margin_is_configurable() {
    let f = fixture(3600, None, |b| {
        b.refresh_ahead_percent(100)
            .refresh_margin(Duration::from_secs(300))
    });
    let first = f.get().await.unwrap();
    f.clock.set(599);
    assert!(f.get().await.unwrap().same_token(&first));
    f.clock.set(601);
    assert!(!f.get().await.unwrap().same_token(&first));
}

#[tokio::test]
async fn refreshes_ahead_after_two_thirds_of_the_lifetime() {
    let f = fixture(3600, None, |b| b);
    let first = f.get().await.unwrap();
    f.clock.set(593); // before 66% of 900 s = 594 s
    assert!(f.get().await.unwrap().same_token(&first));
    assert_eq!(f.cache.stats().refreshes, 1);
    f.clock.set(600);
    let second = f.get().await.unwrap();
    assert!(
        !second.same_token(&first),
        "the first caller past the soft deadline refreshes"
    );
    assert_eq!(f.cache.stats().refreshes, 2);
    assert!(f.get().await.unwrap().same_token(&second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_refresh_ahead_other_callers_keep_the_current_token() {
    // 240 s credentials: token lifetime 240 s, soft deadline 158 s, hard deadline 180 s.
    let f = Arc::new(fixture(240, Some(Semaphore::new(1)), |b| b));
    let first = f.get().await.unwrap();
    assert_eq!(f.calls(), 1);
    f.clock.set(170);
    let claimer = {
        let f = f.clone();
        tokio::spawn(async move { f.get().await.unwrap() })
    };
    // Wait until the claimer is held in the provider (the gate has no permit left).
    while f.provider.entered.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for _ in 0..100 {
        assert!(f.get().await.unwrap().same_token(&first));
    }
    assert!(!claimer.is_finished());
    f.provider.gate.as_ref().unwrap().add_permits(1);
    let second = claimer.await.unwrap();
    assert!(!second.same_token(&first));
    assert!(f.get().await.unwrap().same_token(&second));
    assert_eq!(f.calls(), 2, "one refresh, however many callers");
}

#[tokio::test]
async fn lifetime_is_capped_by_credential_expiry() {
    let f = fixture(120, None, |b| b.refresh_ahead_percent(100));
    let first = f.get().await.unwrap();
    assert_eq!(
        first.expires_at(),
        UNIX_EPOCH + Duration::from_secs(T0 + 120)
    );
    f.clock.set(59); // 61 s before the credentials expire
    assert!(f.get().await.unwrap().same_token(&first));
    f.clock.set(61);
    let second = f.get().await.unwrap();
    assert!(
        !second.same_token(&first),
        "replaced before the credentials expire"
    );
    assert_eq!(
        second.expires_at(),
        UNIX_EPOCH + Duration::from_secs(T0 + 61 + 120)
    );
    assert_eq!(
        f.calls(),
        2,
        "new credentials were resolved for the new token"
    );
}

#[tokio::test]
async fn refresh_failure_within_grace_hands_out_the_current_token() {
    let f = fixture(240, None, |b| b);
    let first = f.get().await.unwrap();
    f.provider.fail.store(true, Ordering::SeqCst);
    f.clock.set(181); // past the hard deadline (180 s), 59 s left
    let t = f.get().await.unwrap();
    assert!(t.same_token(&first));
    assert_eq!(f.cache.stats().refresh_failures, 1);
    f.clock.set(229); // 11 s left: still within the 10 s grace
    assert!(f.get().await.unwrap().same_token(&first));
    f.clock.set(231); // 9 s left: the error now
    let err = f.get().await.unwrap_err();
    assert_provider_failure(&err);
    // Once the provider recovers, the next call after the failure backoff (1 s, 2 s, then
    // 4 s after this third failure in a row) signs.
    f.provider.fail.store(false, Ordering::SeqCst);
    f.clock.set(235);
    assert!(!f.get().await.unwrap().same_token(&first));
}

#[tokio::test]
async fn refresh_failure_without_a_token_is_an_error() {
    let f = fixture(240, None, |b| b);
    f.provider.fail.store(true, Ordering::SeqCst);
    assert_provider_failure(&f.get().await.unwrap_err());
    assert_eq!(f.cache.stats().refresh_failures, 1);
}

#[tokio::test]
async fn a_failed_refresh_ahead_keeps_the_current_token_quietly() {
    let f = fixture(240, None, |b| b);
    let first = f.get().await.unwrap();
    f.provider.fail.store(true, Ordering::SeqCst);
    f.clock.set(170); // soft zone
    assert!(f.get().await.unwrap().same_token(&first));
    assert_eq!(f.cache.stats().refresh_failures, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_causes_one_new_signing_however_many_report_it() {
    let f = Arc::new(fixture(3600, None, |b| b));
    let rejected = f.get().await.unwrap();
    let reporters: Vec<_> = (0..100)
        .map(|_| {
            let (f, rejected) = (f.clone(), rejected.clone());
            tokio::spawn(async move {
                f.cache.invalidate(&f.request, &rejected);
                f.get().await.unwrap()
            })
        })
        .collect();
    let mut fresh = Vec::new();
    for r in reporters {
        fresh.push(r.await.unwrap());
    }
    assert!(fresh.iter().all(|t| !t.same_token(&rejected)));
    assert!(
        fresh.iter().all(|t| t.same_token(&fresh[0])),
        "one fresh token for all"
    );
    let s = f.cache.stats();
    assert_eq!(s.invalidations, 1);
    assert_eq!(s.refreshes, 2);
    assert_eq!(
        f.calls(),
        2,
        "credentials were resolved afresh after the rejection"
    );
    // A late report of the old token changes nothing.
    f.cache.invalidate(&f.request, &rejected);
    assert!(f.get().await.unwrap().same_token(&fresh[0]));
    assert_eq!(f.cache.stats().invalidations, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_on_an_empty_or_expired_entry_cause_one_signing() {
    let f = Arc::new(fixture(240, None, |b| b));
    for (round, at) in [(1, 0), (2, 500)] {
        f.clock.set(at);
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let f = f.clone();
                tokio::spawn(async move { f.get().await.unwrap() })
            })
            .collect();
        let mut tokens = Vec::new();
        for t in tasks {
            tokens.push(t.await.unwrap());
        }
        assert!(
            tokens.iter().all(|t| t.same_token(&tokens[0])),
            "round {round}: all get one token"
        );
        assert_eq!(f.calls(), round, "round {round}: exactly one signing");
        assert_eq!(f.cache.stats().refreshes, round as u64);
    }
}

#[tokio::test]
async fn two_keys_never_share_a_token() {
    let f = fixture(3600, None, |b| b);
    let endpoint = Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 5432).unwrap();
    let other_port = Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 5433).unwrap();
    let requests = [
        TokenRequest::rds(&endpoint, "iam_user").build().unwrap(),
        TokenRequest::rds(&endpoint, "reporting").build().unwrap(),
        TokenRequest::rds(&other_port, "iam_user").build().unwrap(),
        TokenRequest::rds(&endpoint, "iam_user")
            .region("us-west-2")
            .build()
            .unwrap(),
    ];
    let mut tokens = Vec::new();
    for r in &requests {
        tokens.push(f.cache.get(r).await.unwrap());
    }
    for (i, a) in tokens.iter().enumerate() {
        for b in &tokens[i + 1..] {
            assert!(!a.same_token(b));
        }
    }
    // Each key has its own cached token.
    for (r, t) in requests.iter().zip(&tokens) {
        assert!(f.cache.get(r).await.unwrap().same_token(t));
    }
    assert_eq!(f.cache.stats().refreshes, 4);
    assert_eq!(f.cache.stats().hits, 4);
}

#[tokio::test]
async fn clones_are_the_same_cache_and_debug_shows_no_token() {
    let f = fixture(3600, None, |b| b);
    let token = f.get().await.unwrap();
    let clone = f.cache.clone();
    assert!(clone.get(&f.request).await.unwrap().same_token(&token));
    let rendered = format!("{:?}", f.cache);
    assert!(!rendered.contains("X-Amz-Signature") && !rendered.contains(token.expose()));
    // The test credentials' secret key and session token, as Debug would quote them.
    assert!(
        !rendered.contains("\"secret\"") && !rendered.contains("\"session\""),
        "{rendered}"
    );
    assert!(rendered.contains("hits"));
}

/// 1000 concurrent `get`s; fails the test if they take over 10 s in all (the bug they catch
/// is callers served one after another).
async fn thousand_concurrent_gets(f: &Arc<Fixture>) -> Vec<Result<IamAuthToken, Error>> {
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.get().await })
        })
        .collect();
    let bounded = tokio::time::timeout(Duration::from_secs(10), async {
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        results
    });
    bounded.await.expect("1000 callers took over 10 s")
}

fn other_request() -> TokenRequest {
    let endpoint = Endpoint::new("other.cluster-abc.us-east-1.rds.amazonaws.com", 5432).unwrap();
    TokenRequest::rds(&endpoint, "iam_user").build().unwrap()
}

/// `error` is the credentials provider's failure (not a timeout, nor credentials that are
/// expired or expiring): of kind `Credentials`, with the provider's error as its source.
#[track_caller]
fn assert_provider_failure(error: &Error) {
    assert_eq!(error.kind(), ErrorKind::Credentials, "{error:?}");
    assert!(!error.is_timeout(), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("could not load AWS credentials: "),
        "{error}"
    );
    let source = std::error::Error::source(error).expect("the provider's error");
    assert!(source.is::<CredentialsError>(), "{error:?}");
}

/// The messages along an error's `source()` chain.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(" <- ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Issue 13, finding 1: a provider that never answers ends `get` on every key, and
/// `generate`, in a typed timeout after the default 5 s, one resolution shared by all.
#[tokio::test]
async fn a_hung_provider_ends_every_key_in_a_typed_timeout() {
    let f = fixture(3600, None, |b| b);
    f.provider.hang.store(true, Ordering::SeqCst);
    let other = other_request();
    let started = tokio::time::Instant::now();
    let bound = Duration::from_secs(20);
    let (a, b, c) = tokio::join!(
        tokio::time::timeout(bound, f.cache.get(&f.request)),
        tokio::time::timeout(bound, f.cache.get(&other)),
        tokio::time::timeout(bound, f.cache.generator().generate(&other)),
    );
    for result in [a, b, c] {
        let err = result.expect("still hung after 20 s").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Credentials, "{err:?}");
        assert!(err.is_timeout() && err.is_credentials(), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("the AWS credentials provider did not answer within 5 s "),
            "{err}"
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    assert_eq!(
        f.provider.entered.load(Ordering::SeqCst),
        1,
        "one resolution shared by both keys and the generator"
    );
}

/// Issue 13, finding 2: 1000 callers behind a failing attempt share its error (one provider
/// call, not 1000 in a row); the failure is remembered with a growing backoff, reset on success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_shared_by_all_waiters_and_remembered_with_backoff() {
    let f = Arc::new(fixture(3600, None, |b| b));
    f.provider.fail.store(true, Ordering::SeqCst);
    f.provider.delay_ms.store(20, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    for result in thousand_concurrent_gets(&f).await {
        let err = result.unwrap_err();
        assert_provider_failure(&err);
        assert!(chain(&err).contains("STS is down"), "{}", chain(&err));
    }
    assert_eq!(f.calls(), 1, "one provider call for 1000 waiters");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Remembered: an immediate retry does not reach the provider.
    assert_provider_failure(&f.get().await.unwrap_err());
    assert_eq!(f.calls(), 1);
    // After the first step (1 s), one new attempt; then the step doubles (2 s).
    f.clock.set(1);
    assert!(f.get().await.is_err());
    assert_eq!(f.calls(), 2);
    f.clock.set(2);
    assert!(f.get().await.is_err());
    assert_eq!(f.calls(), 2, "2 s backoff after the second failure");
    f.clock.set(3);
    assert!(f.get().await.is_err());
    assert_eq!(f.calls(), 3);
    // Recovery resets the backoff.
    f.provider.fail.store(false, Ordering::SeqCst);
    f.clock.set(7);
    let token = f.get().await.unwrap();
    assert_eq!(f.calls(), 4);
    assert!(f.get().await.unwrap().same_token(&token));
}

/// Issue 13, finding 3: a signing that starts with 55 s left and fails 60 s later must not
/// hand out the token that expired meanwhile; nor may a refresh ahead that fails 90 s later.
#[tokio::test]
async fn a_slow_failure_never_hands_out_an_expired_token() {
    // 240 s credentials: token expires at 240 s, hard deadline 180 s, soft deadline 158 s.
    for (start, advance, zone) in [(185, 60, "expiring"), (170, 90, "refresh ahead")] {
        let f = fixture(240, None, |b| b);
        f.get().await.unwrap();
        f.provider.fail.store(true, Ordering::SeqCst);
        f.provider.advance_secs.store(advance, Ordering::SeqCst);
        f.clock.set(start);
        match f.get().await {
            Ok(token) => panic!(
                "{zone}: handed out a token expired at {:?}, now {:?}",
                token.expires_at(),
                f.clock.now()
            ),
            Err(err) => assert_provider_failure(&err),
        }
    }
    // A refresh ahead that fails past the hard deadline, with the grace period left: the
    // current token (the grace rules apply).
    let f = fixture(240, None, |b| b);
    let first = f.get().await.unwrap();
    f.provider.fail.store(true, Ordering::SeqCst);
    f.provider.advance_secs.store(15, Ordering::SeqCst);
    f.clock.set(170);
    let token = f.get().await.unwrap();
    assert!(token.same_token(&first) && token.is_valid_at(f.clock.now()));
}

/// Issue 13, finding 4: credentials that expire within the margin are refused with a typed
/// error, one signing and one provider call for 1000 callers; never a token under the margin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_expiring_within_the_margin_are_refused_once_for_all() {
    let f = Arc::new(fixture(3600, None, |b| b));
    f.provider
        .validity_override_secs
        .store(30, Ordering::SeqCst);
    f.provider.delay_ms.store(20, Ordering::SeqCst);
    for result in thousand_concurrent_gets(&f).await {
        match result {
            Ok(token) => panic!("handed out a token expiring at {:?}", token.expires_at()),
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::Credentials, "{err:?}");
                assert!(!err.is_timeout(), "{err:?}");
                assert!(
                    err.to_string()
                        .contains(", within the token cache's refresh margin of 60 s: "),
                    "{err}"
                );
            }
        }
    }
    assert_eq!(f.calls(), 1, "one provider call for 1000 callers");
    assert_eq!(f.cache.stats().refreshes, 0);
}

/// Issue 13, finding 5: no setting panics, however large.
#[tokio::test]
async fn out_of_range_settings_do_not_panic() {
    // A margin longer than a token lives is read as half its lifetime (450 s of 900 s).
    let f = fixture(3600, None, |b| {
        b.failure_grace(Duration::MAX)
            .refresh_margin(Duration::MAX)
            .refresh_ahead_percent(u32::MAX)
            .max_keys(0)
    });
    let first = f.get().await.unwrap();
    f.clock.set(449);
    assert!(f.get().await.unwrap().same_token(&first));
    f.clock.set(451);
    assert!(!f.get().await.unwrap().same_token(&first));
    let f = fixture(240, None, |b| b.failure_grace(Duration::MAX));
    f.get().await.unwrap();
    f.provider.fail.store(true, Ordering::SeqCst);
    f.clock.set(181); // past the hard deadline, a signing fails: no grace can be that long
    assert_provider_failure(&f.get().await.unwrap_err());
    let generator = TokenGenerator::builder(Credentials::new("AKID", "secret", None, None, "test"))
        .clock(ManualClock::new())
        .build();
    let cache = TokenCache::builder(generator)
        .failure_grace(Duration::MAX)
        .refresh_margin(Duration::MAX)
        .build();
    cache.get(&other_request()).await.unwrap();
}

/// Issue 13, finding 8: a token rejected after a refresh ahead replaced it still leads to a
/// retry signed with freshly resolved credentials; further reports change nothing.
#[tokio::test]
async fn a_rejection_after_a_refresh_ahead_still_resolves_fresh_credentials() {
    let f = fixture(3600, None, |b| b);
    let rejected = f.get().await.unwrap();
    f.clock.set(600); // soft zone: this call refreshes ahead with the remembered credentials
    let refreshed = f.get().await.unwrap();
    assert!(!refreshed.same_token(&rejected));
    assert_eq!(f.calls(), 1);
    // The connection that got `rejected` reports it now.
    f.cache.invalidate(&f.request, &rejected);
    let retry = f.get().await.unwrap();
    assert!(!retry.same_token(&refreshed) && !retry.same_token(&rejected));
    assert_eq!(
        f.calls(),
        2,
        "the retry's token is signed with fresh credentials"
    );
    // More reports of either old token: no new signing.
    f.cache.invalidate(&f.request, &rejected);
    f.cache.invalidate(&f.request, &refreshed);
    assert!(f.get().await.unwrap().same_token(&retry));
    assert_eq!(f.calls(), 2);
}

/// Issue 13, finding 7: memory is bounded. Keys whose token expired are evicted, and a full
/// cache evicts the keys whose tokens expire first, in batches (so a new key costs O(1)
/// amortized, never a copy of the map), while held keys keep their tokens.
#[tokio::test]
async fn keys_are_evicted_when_expired_or_over_the_maximum() {
    let f = fixture(3600, None, |b| b.max_keys(100));
    let endpoint = Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 5432).unwrap();
    let key = |i: usize| {
        TokenRequest::rds(&endpoint, format!("user_{i}"))
            .build()
            .unwrap()
    };
    for i in 0..100 {
        f.cache.get(&key(i)).await.unwrap();
        f.clock.set(i as u64); // later keys expire later
    }
    assert_eq!(f.cache.stats().entries, 100);
    assert_eq!(f.cache.stats().evictions, 0);
    // One more: the cache sheds the eighth whose tokens expire first (keys 0..=12).
    f.cache.get(&key(100)).await.unwrap();
    let s = f.cache.stats();
    assert!(s.entries <= 100 && s.entries >= 87, "{s:?}");
    assert_eq!(s.evictions, 101 - s.entries);
    let refreshes = s.refreshes;
    f.cache.get(&key(99)).await.unwrap();
    assert_eq!(f.cache.stats().refreshes, refreshes, "a recent key is kept");
    f.cache.get(&key(0)).await.unwrap();
    assert_eq!(
        f.cache.stats().refreshes,
        refreshes + 1,
        "the oldest key was evicted"
    );
    // Once every token has expired, the next sweep drops them all.
    f.clock.set(2000);
    for i in 1000..1000 + 256 {
        f.cache.get(&key(i)).await.unwrap();
    }
    let s = f.cache.stats();
    assert!(s.entries <= 100, "{s:?}");
    for i in 0..101 {
        f.cache.refresh_at(&key(i)).inspect(|at| {
            assert!(
                *at > UNIX_EPOCH + Duration::from_secs(T0 + 2000),
                "stale key {i} kept"
            )
        });
    }
}

/// For background refreshers (issue 11): when to replace the token, and a wake-up when it is
/// replaced or invalidated.
#[tokio::test]
async fn refresh_at_and_changed_tell_a_background_refresher_what_happened() {
    let f = fixture(3600, None, |b| b);
    assert_eq!(f.cache.refresh_at(&f.request), None);
    let changed = f.cache.changed(&f.request);
    let token = f.get().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), changed)
        .await
        .expect("a signing wakes `changed`, even before its first poll");
    // 66% of 900 s.
    assert_eq!(
        f.cache.refresh_at(&f.request),
        Some(UNIX_EPOCH + Duration::from_secs(T0 + 594))
    );
    let changed = f.cache.changed(&f.request);
    let mut changed = std::pin::pin!(changed);
    assert!(
        tokio::time::timeout(Duration::from_millis(20), changed.as_mut())
            .await
            .is_err(),
        "nothing changed yet"
    );
    f.cache.invalidate(&f.request, &token);
    tokio::time::timeout(Duration::from_secs(5), changed)
        .await
        .expect("an invalidation wakes `changed`");
    assert_eq!(f.cache.refresh_at(&f.request), None);
}
