//! Credentials for signing, resolved through a provider and remembered until near expiry.
//!
//! aws-config's default chain does not cache: every call may go to IMDS, the ECS agent or
//! STS. Tokens are minted locally and often, so the generator keeps the last credentials
//! and asks the provider again only when they are about to expire. One caller refreshes;
//! concurrent callers wait for that refresh instead of starting their own.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::clock::Clock;
use crate::error::{Error, Result};

/// Credentials are refreshed when less than this is left before they expire, so that a
/// token signed with them still has most of its life ahead.
pub(crate) const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Credentials without an expiry (static keys, some profiles) are re-resolved this often,
/// so that an edited profile or rotated environment is picked up.
pub(crate) const NO_EXPIRY_REUSE: Duration = Duration::from_secs(15 * 60);

/// A credentials provider with a memory.
#[derive(Clone)]
pub(crate) struct CachedCredentials {
    provider: SharedCredentialsProvider,
    state: Arc<State>,
}

struct State {
    current: RwLock<Option<Entry>>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Entry {
    credentials: Credentials,
    reuse_until: SystemTime,
}

impl fmt::Debug for CachedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Credentials`' own Debug redacts the secret; only the provider is shown here.
        f.debug_struct("CachedCredentials")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl CachedCredentials {
    pub(crate) fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            state: Arc::new(State {
                current: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Credentials valid at `clock.now()` with at least the refresh margin left,
    /// from memory when possible.
    pub(crate) async fn get(&self, clock: &dyn Clock) -> Result<Credentials> {
        if let Some(c) = self.fresh(clock.now()) {
            return Ok(c);
        }
        let _single_flight = self.state.refresh.lock().await;
        // Someone else may have refreshed while this caller waited for the lock.
        if let Some(c) = self.fresh(clock.now()) {
            return Ok(c);
        }
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .map_err(Error::Credentials)?;
        let now = clock.now();
        let reuse_until = match credentials.expiry() {
            // Credentials with less than the margin left are used for this call only.
            Some(expiry) => expiry.checked_sub(REFRESH_BEFORE_EXPIRY).unwrap_or(expiry),
            None => now + NO_EXPIRY_REUSE,
        };
        *self.write() = Some(Entry {
            credentials: credentials.clone(),
            reuse_until,
        });
        Ok(credentials)
    }

    /// Forgets the remembered credentials: the next [`get`](Self::get) asks the provider.
    pub(crate) fn invalidate(&self) {
        *self.write() = None;
    }

    fn fresh(&self, now: SystemTime) -> Option<Credentials> {
        let guard = self.state.current.read().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|e| now < e.reuse_until)
            .map(|e| e.credentials.clone())
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
            CachedCredentials::new(SharedCredentialsProvider::new(provider)),
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
            assert_eq!(t.await.unwrap().access_key_id(), "AKID0");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
