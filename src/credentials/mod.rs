//! Credentials for signing, resolved through a provider and remembered until near expiry.
//!
//! aws-config's default chain does not cache: every call may go to IMDS, the ECS agent or
//! STS. Tokens are minted locally and often, so the generator keeps the last credentials
//! and asks the provider again only when they are about to expire. One caller resolves;
//! concurrent callers wait for that resolution and share its outcome, failure included.
//!
//! Every resolution is bounded by a timeout (a hung metadata service must not hang a
//! connection), and a failure is remembered for a backoff step (1 s, doubling to 30 s,
//! reset on success) so that an outage is not answered with a flood of provider calls.
//! Backoffs count on the monotonic clock ([`Clock::instant`]): a wall clock stepped back
//! must not freeze them, nor one stepped forward skip them.
//!
//! A token the database rejected may have been signed with revoked or stale credentials, so
//! the first rejection drops them; repeated rejections within [`REJECTION_HOLD`] do not
//! again (a user not granted `rds_iam` is rejected whatever the credentials): a pool's retry
//! loop must not turn into provider calls at the login rate.

#[cfg(feature = "aws-config")]
pub(crate) mod aws_config;
pub(crate) mod env;

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::clock::Clock;
use crate::error::{Detail, Error, Result};

/// Credentials are refreshed when less than this is left before they expire, so that a
/// token signed with them still has most of its life ahead.
pub(crate) const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Credentials without an expiry (static keys, some profiles) are re-resolved this often,
/// so that an edited profile or rotated environment is picked up.
pub(crate) const NO_EXPIRY_REUSE: Duration = Duration::from_secs(15 * 60);
/// After a rejected token dropped the credentials, further rejections keep the (new)
/// credentials this long: at most one provider call per hold, however many logins fail.
pub(crate) const REJECTION_HOLD: Duration = Duration::from_secs(5 * 60);
/// Default bound on one credentials resolution: aws-config bounds its own credential loads
/// at 5 s, and a resolution that takes longer is as good as hung for a connection waiting.
pub const DEFAULT_CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

/// A provider with a memory.
#[derive(Clone)]
pub(crate) struct CachedCredentials {
    provider: SharedCredentialsProvider,
    timeout: Duration,
    state: Arc<State>,
}

struct State {
    /// What the fast path reads.
    current: RwLock<Option<Entry>>,
    /// Held by the one caller resolving.
    refresh: tokio::sync::Mutex<()>,
    /// The outcome of the last resolution, for the callers that queued behind it.
    last: Mutex<Last>,
}

#[derive(Clone)]
struct Entry {
    credentials: Credentials,
    reuse_until: SystemTime,
    /// Which resolution produced them (1, 2, ...): lets a rejected token's report forget
    /// only the credentials that signed it, not newer ones.
    generation: u64,
}

#[derive(Default)]
struct Last {
    /// Resolutions completed so far (a caller that saw fewer queued behind the last one).
    attempts: u64,
    outcome: Option<std::result::Result<Entry, Error>>,
    failures: Backoff,
    /// Until then, a rejected token does not drop the credentials again.
    rejection_hold_until: Option<Instant>,
}

/// The memory of consecutive failures: no new attempt before `retry_at`, on the monotonic
/// clock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Backoff {
    retry_at: Option<Instant>,
    consecutive: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    /// After a failure at `now`: the next attempt waits 1 s, then 2, 4, ... up to 30 s.
    pub(crate) fn failed(&mut self, now: Instant) {
        let step = Self::FIRST
            .checked_mul(1 << self.consecutive.min(5))
            .map_or(Self::MAX, |d| d.min(Self::MAX));
        self.consecutive = self.consecutive.saturating_add(1);
        self.retry_at = Some(now.checked_add(step).unwrap_or(now));
    }

    pub(crate) fn succeeded(&mut self) {
        *self = Self::default();
    }

    /// Lets the next attempt go ahead at once (after a rejected token), keeping the step.
    pub(crate) fn release(&mut self) {
        self.retry_at = None;
    }

    /// `true` while a remembered failure holds new attempts back.
    pub(crate) fn holds(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }
}

impl fmt::Debug for CachedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Credentials`' own Debug redacts the secret; only the provider is shown here.
        f.debug_struct("CachedCredentials")
            .field("provider", &self.provider)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl CachedCredentials {
    pub(crate) fn new(provider: SharedCredentialsProvider, timeout: Duration) -> Self {
        Self {
            provider,
            timeout,
            state: Arc::new(State {
                current: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(()),
                last: Mutex::new(Last::default()),
            }),
        }
    }

    /// The provider credentials come from.
    pub(crate) fn provider(&self) -> &SharedCredentialsProvider {
        &self.provider
    }

    /// Credentials valid at `clock.now()`, from memory when possible, with the generation
    /// of the resolution that produced them.
    pub(crate) async fn get(&self, clock: &dyn Clock) -> Result<(Credentials, u64)> {
        let now = clock.now();
        if let Some(c) = self.fresh(now) {
            return Ok(c);
        }
        let ticket = {
            let last = self.last();
            if last.failures.holds(clock.instant())
                && let Some(Err(error)) = &last.outcome
            {
                return Err(error.clone());
            }
            last.attempts
        };
        let _single_flight = self.state.refresh.lock().await;
        let now = clock.now();
        if let Some(c) = self.fresh(now) {
            return Ok(c);
        }
        {
            // A resolution completed while this caller queued: its outcome is this caller's,
            // also when it failed or its credentials are too short-lived to remember.
            let last = self.last();
            if last.attempts != ticket {
                match &last.outcome {
                    Some(Ok(e)) if e.credentials.expiry().is_none_or(|x| now < x) => {
                        return Ok((e.credentials.clone(), e.generation));
                    }
                    Some(Err(error)) => return Err(error.clone()),
                    _ => {}
                }
            }
        }
        let resolved = self.resolve().await;
        let now = clock.now();
        let mut last = self.last();
        last.attempts += 1;
        match resolved {
            Ok(credentials) => {
                let reuse_until = match credentials.expiry() {
                    // Credentials with less than the margin left are not remembered.
                    Some(expiry) => expiry.checked_sub(REFRESH_BEFORE_EXPIRY).unwrap_or(expiry),
                    None => now.checked_add(NO_EXPIRY_REUSE).unwrap_or(now),
                };
                let entry = Entry {
                    credentials: credentials.clone(),
                    reuse_until,
                    generation: last.attempts,
                };
                last.failures.succeeded();
                last.outcome = Some(Ok(entry.clone()));
                *self.write() = Some(entry);
                Ok((credentials, last.attempts))
            }
            Err(error) => {
                tracing::warn!(%error, "resolving AWS credentials failed");
                last.failures.failed(clock.instant());
                last.outcome = Some(Err(error.clone()));
                Err(error)
            }
        }
    }

    /// One provider call, bounded by the timeout. A provider that answers at once (static
    /// keys, a provider with its own cache) arms no timer.
    async fn resolve(&self) -> Result<Credentials> {
        let mut call = pin!(self.provider.provide_credentials());
        let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        let answer = match first {
            Poll::Ready(answer) => answer,
            Poll::Pending => tokio::time::timeout(self.timeout, call)
                .await
                .map_err(|_| Detail::CredentialsTimeout {
                    timeout: self.timeout,
                })?,
        };
        answer.map_err(|e| Detail::Credentials(e).into())
    }

    /// Forgets every remembered credentials: the next [`get`](Self::get) asks the provider.
    pub(crate) fn invalidate(&self) {
        let mut last = self.last();
        *self.write() = None;
        last.failures.release();
        last.outcome = None;
    }

    /// After the database rejected a token signed with the credentials of resolution
    /// `generation` (at monotonic time `now`): forgets the remembered credentials if they come
    /// from that resolution or an earlier one, and lets the next resolution go ahead at once
    /// even after a failure (a rejection is news the backoff did not know). Reports about
    /// older credentials than the current ones change nothing, and so do rejections within
    /// [`REJECTION_HOLD`] of the last one that did: those are the database's refusals, not
    /// the credentials'.
    /// Returns whether the credentials were dropped.
    pub(crate) fn invalidate_up_to(&self, generation: u64, now: Instant) -> bool {
        // `last` before `current`, as `get` takes them.
        let mut last = self.last();
        let mut current = self.write();
        if current.as_ref().is_some_and(|e| e.generation > generation)
            || last.rejection_hold_until.is_some_and(|until| now < until)
        {
            return false;
        }
        last.rejection_hold_until = now.checked_add(REJECTION_HOLD);
        *current = None;
        last.failures.release();
        last.outcome = None;
        true
    }

    fn fresh(&self, now: SystemTime) -> Option<(Credentials, u64)> {
        let guard = self.state.current.read().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|e| now < e.reuse_until)
            .map(|e| (e.credentials.clone(), e.generation))
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Last> {
        self.state.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<Entry>> {
        self.state
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use aws_credential_types::provider::future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::UNIX_EPOCH;

    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        expiry: Option<SystemTime>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                format!("AKID{n}"),
                "secret",
                None,
                self.expiry,
                "counting",
            )))
        }
    }

    fn cached(expiry: Option<SystemTime>) -> (CachedCredentials, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = Counting {
            calls: calls.clone(),
            expiry,
        };
        (
            CachedCredentials::new(
                SharedCredentialsProvider::new(provider),
                DEFAULT_CREDENTIALS_TIMEOUT,
            ),
            calls,
        )
    }

    #[tokio::test]
    async fn reuses_until_near_expiry() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (c, calls) = cached(Some(t0 + Duration::from_secs(3600)));
        c.get(&FixedClock::new(t0)).await.unwrap();
        c.get(&FixedClock::new(t0 + Duration::from_secs(3000)))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Inside the 5-minute margin: refresh.
        c.get(&FixedClock::new(t0 + Duration::from_secs(3301)))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn static_credentials_are_re_resolved_every_15_minutes() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (c, calls) = cached(None);
        c.get(&FixedClock::new(t0)).await.unwrap();
        c.get(&FixedClock::new(t0 + Duration::from_secs(899)))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        c.get(&FixedClock::new(t0 + Duration::from_secs(900)))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        c.invalidate();
        c.get(&FixedClock::new(t0 + Duration::from_secs(901)))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    /// Fails its first call, then answers.
    #[derive(Debug)]
    struct FailsOnce(Arc<AtomicUsize>);

    impl ProvideCredentials for FailsOnce {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let answer = match self.0.fetch_add(1, Ordering::SeqCst) {
                0 => {
                    Err(aws_credential_types::provider::error::CredentialsError::not_loaded("down"))
                }
                _ => Ok(Credentials::new("AKID", "secret", None, None, "flaky")),
            };
            future::ProvideCredentials::ready(answer)
        }
    }

    #[tokio::test]
    async fn the_failure_backoff_counts_on_the_monotonic_clock() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = CachedCredentials::new(
            SharedCredentialsProvider::new(FailsOnce(calls.clone())),
            DEFAULT_CREDENTIALS_TIMEOUT,
        );
        let clock = crate::clock::ManualClock::new(t0);
        assert!(c.get(&clock).await.is_err());
        // The wall clock jumps an hour ahead: the 1 s backoff has not passed.
        clock.set_wall(t0 + Duration::from_secs(3600));
        assert!(c.get(&clock).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "still held back");
        // It steps back an hour and a second passes: the backoff is over, whatever the wall.
        clock.set_wall(t0 - Duration::from_secs(3600));
        clock.advance(Duration::from_secs(1));
        c.get(&clock).await.expect("the provider recovered");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn repeated_rejections_cost_one_provider_call_per_hold() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (c, calls) = cached(None);
        let clock = crate::clock::ManualClock::new(t0);
        let (_, generation) = c.get(&clock).await.unwrap();
        // The first rejection drops the credentials: new ones from the provider.
        c.invalidate_up_to(generation, clock.instant());
        let (_, generation) = c.get(&clock).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // 20 more within a minute: the database's refusals, not the credentials'.
        for _ in 0..20 {
            clock.advance(Duration::from_secs(3));
            c.invalidate_up_to(generation, clock.instant());
            c.get(&clock).await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "no call per rejection");
        // After the hold, a rejection drops them again.
        clock.advance(REJECTION_HOLD);
        c.invalidate_up_to(generation, clock.instant());
        c.get(&clock).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_resolution() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (c, calls) = cached(None);
        let clock = Arc::new(FixedClock::new(t0));
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (c, clock) = (c.clone(), clock.clone());
                tokio::spawn(async move { c.get(clock.as_ref()).await.unwrap() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().0.access_key_id(), "AKID0");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
