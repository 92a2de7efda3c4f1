//! The token cache under a clock the tests move: margins, refresh ahead, credential expiry,
//! failures with and without grace, invalidation, and concurrency.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use rds_iam_auth::{
    Clock, Credentials, Endpoint, Error, IamAuthToken, TokenCache, TokenGenerator, TokenRequest,
};
use tokio::sync::Semaphore;

const T0: u64 = 1_705_322_096;

#[derive(Debug, Clone)]
struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(T0))))
    }
    fn set(&self, secs_after_t0: u64) {
        *self.0.lock().unwrap() = UNIX_EPOCH + Duration::from_secs(T0 + secs_after_t0);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
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
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(CredentialsError::provider_error("STS is down"));
            }
            let expiry = self.clock.now() + self.validity;
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
    configure: impl FnOnce(rds_iam_auth::TokenCacheBuilder) -> rds_iam_auth::TokenCacheBuilder,
) -> Fixture {
    let clock = ManualClock::new();
    let provider = Arc::new(TestProvider {
        clock: clock.clone(),
        validity: Duration::from_secs(validity_secs),
        calls: AtomicUsize::new(0),
        entered: AtomicUsize::new(0),
        fail: AtomicBool::new(false),
        gate,
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
    assert!(matches!(err, Error::Credentials(_)), "{err:?}");
    // Once the provider recovers, the next call signs.
    f.provider.fail.store(false, Ordering::SeqCst);
    assert!(!f.get().await.unwrap().same_token(&first));
}

#[tokio::test]
async fn refresh_failure_without_a_token_is_an_error() {
    let f = fixture(240, None, |b| b);
    f.provider.fail.store(true, Ordering::SeqCst);
    assert!(matches!(f.get().await, Err(Error::Credentials(_))));
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
