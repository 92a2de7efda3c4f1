//! The token cache: a valid token for free, refreshed ahead of expiry, signed once however
//! many callers wait.
//!
//! Every connector and pool asks for a token at each new connection, often many at once,
//! and RDS throttles floods of new IAM logins. The cache keeps one current token per
//! [`TokenRequest`] and decides, on each call, between three zones of its life:
//!
//! - **fresh** (before the soft deadline, 2/3 of the lifetime by default): hand it out;
//! - **refresh ahead** (after the soft deadline, while more than the refresh margin is left):
//!   the first caller signs a new token; everyone else keeps getting the current one;
//! - **expiring** (less than the margin left, 60 s by default) or empty: callers wait on one
//!   shared signing.
//!
//! No background task is needed to stay correct: a process frozen between invocations (AWS
//! Lambda) finds its token expired and waits for one signing. The lifetime already accounts
//! for the signing credentials' expiry ([`IamAuthToken::expires_at`]), so a token signed
//! with credentials about to expire is replaced before they do.
//!
//! **When a signing fails**, every caller that waited on it gets its error (one provider call
//! however many wait), and the failure is remembered for a backoff step (1 s, doubling to
//! 30 s, reset on success): callers meanwhile get the same error at once. The current token is
//! handed out instead while, at the time the attempt ended, it is before its hard deadline (a
//! failed refresh ahead) or still valid for at least the grace period (10 s by default).
//! Credentials that expire within the margin are refused
//! (an error of kind [`Credentials`](crate::ErrorKind::Credentials)), not signed into a token
//! that would die under it.
//!
//! **Memory** is bounded: at most [`DEFAULT_MAX_KEYS`] keys (configurable); keys whose token
//! has expired are evicted, and when the cache is full the keys whose tokens expire first
//! (those no caller has refreshed for longest) go, an eighth at a time.

mod hot;
mod map;

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasherDefault;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::credentials::Backoff;
use crate::error::{Detail, Error, Result};
use crate::observe::{self, CacheEvent};
use crate::token::IamAuthToken;
use crate::token::TokenGenerator;
use crate::token::TokenRequest;
use hot::{PrecomputedHash, ShardedCounter, TokenCopies, shard_index};
use map::ShardedMap;

/// Default: never hand out a token with less than this left.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Default: on a failed refresh, keep handing out the current token while this much is left.
pub const DEFAULT_FAILURE_GRACE: Duration = Duration::from_secs(10);
/// Default: refresh ahead once this fraction of the lifetime has passed (in percent).
pub const DEFAULT_REFRESH_AHEAD_PERCENT: u32 = 66;
/// Default: the most keys (distinct [`TokenRequest`]s) the cache holds. A key costs about
/// 2.5 KB (a token, its map entry, a small copy per thread that uses it): 4096 keys, about
/// 10 MB at most.
pub const DEFAULT_MAX_KEYS: usize = 4096;

/// A new key triggers a sweep for expired keys once this many (or as many as the cache
/// holds, if more) were added since the last one: sweeps cost O(1) per key added.
const SWEEP_EVERY: usize = 256;

/// A shared cache of IAM auth tokens. Clones are the same cache.
///
/// ```
/// use rds_iam_auth::{Credentials, Endpoint, TokenCache, TokenGenerator, TokenRequest};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let generator = TokenGenerator::new(Credentials::new("AKIDEXAMPLE", "secret", None, None, "example"));
/// let cache = TokenCache::new(generator);
/// let endpoint = Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 5432)?;
/// let request = TokenRequest::rds(&endpoint, "iam_user").build()?;
/// let first = cache.get(&request).await?;
/// let second = cache.get(&request).await?;
/// assert!(first.same_token(&second)); // one signing
/// assert_eq!(cache.stats().misses, 1);
/// # Ok::<(), rds_iam_auth::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

struct Inner {
    generator: TokenGenerator,
    config: CacheConfig,
    /// One entry per request. The hit path reads it without a lock; a new key, a new token
    /// or an eviction copies one shard of it, never the whole map (`map.rs`).
    slots: ShardedMap<Entry>,
    inserted_since_sweep: AtomicUsize,
    sweeping: Mutex<()>,
    counters: Counters,
}

impl Drop for Inner {
    /// The size gauge sums every cache of the process: a dropped cache takes its keys off.
    fn drop(&mut self) {
        let held = self.slots.len() as i64;
        if held > 0 {
            observe::cache_size_changed(-held, 0);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct CacheConfig {
    refresh_margin: Duration,
    failure_grace: Duration,
    refresh_ahead_percent: u32,
    max_keys: usize,
}

/// A request's map value: its current token beside the machinery that replaces it. The
/// token sits in the map entry itself (a new token is a new entry for the same slot), so a
/// hit reads it from the map's snapshot, with no second atomic load.
#[derive(Clone)]
struct Entry {
    slot: Arc<Slot>,
    current: Option<Arc<Cached>>,
}

/// The machinery that replaces one request's token once, however many callers wait.
struct Slot {
    /// Callers (and `changed` futures) holding the slot: a held slot is never evicted.
    holders: AtomicUsize,
    /// Held while signing: callers that must wait, wait here, and share the outcome.
    signing: tokio::sync::Mutex<()>,
    /// Claimed by the one caller that refreshes ahead.
    refreshing_ahead: AtomicBool,
    attempts: Mutex<Attempts>,
    /// Bumped, and `changed` notified, whenever `current` is replaced or dropped.
    changes: AtomicU64,
    changed: Notify,
    /// Tokens signed with credentials of this resolution or an earlier one are not installed:
    /// a rejection dropped those credentials (a signing that had read them before the
    /// rejection was reported must not put their token back).
    stale_through: AtomicU64,
}

/// The outcome of the slot's signing attempts, for the callers that queued behind one.
#[derive(Default)]
struct Attempts {
    completed: u64,
    /// The last attempt's error, while it is remembered.
    failure: Option<Error>,
    backoff: Backoff,
}

struct Cached {
    token: IamAuthToken,
    copies: TokenCopies,
    /// After this, refresh ahead.
    soft_deadline: SystemTime,
    /// After this, the token is no longer handed out (expiry minus the margin).
    hard_deadline: SystemTime,
}

/// What the cache has done so far. Read with [`TokenCache::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Calls answered with a cached token, without signing.
    pub hits: u64,
    /// Calls that found no usable token and waited for a signing.
    pub misses: u64,
    /// Tokens signed (ahead of time or on a miss).
    pub refreshes: u64,
    /// Signings that failed.
    pub refresh_failures: u64,
    /// Tokens dropped after the database rejected them.
    pub invalidations: u64,
    /// Keys held now.
    pub entries: u64,
    /// Keys evicted: expired, or the least recently refreshed when the cache was full.
    pub evictions: u64,
}

#[derive(Default)]
struct Counters {
    hits: ShardedCounter,
    misses: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    invalidations: AtomicU64,
    evictions: AtomicU64,
    /// Hits already published to the `metrics` facade.
    hits_published: AtomicU64,
}

impl TokenCache {
    /// A cache over `generator` with the default margins.
    pub fn new(generator: TokenGenerator) -> Self {
        Self::builder(generator).build()
    }

    /// A builder to set the margins.
    pub fn builder(generator: TokenGenerator) -> TokenCacheBuilder {
        TokenCacheBuilder {
            generator,
            config: CacheConfig {
                refresh_margin: DEFAULT_REFRESH_MARGIN,
                failure_grace: DEFAULT_FAILURE_GRACE,
                refresh_ahead_percent: DEFAULT_REFRESH_AHEAD_PERCENT,
                max_keys: DEFAULT_MAX_KEYS,
            },
        }
    }

    /// A token for `request` with more than the refresh margin left.
    ///
    /// Ends within the generator's credentials timeout (5 s by default) plus signing time:
    /// a hung credentials provider yields a [`Credentials`](crate::ErrorKind::Credentials)
    /// error for which [`is_timeout`](crate::Error::is_timeout) holds.
    pub async fn get(&self, request: &TokenRequest) -> Result<IamAuthToken> {
        let now = self.now();
        if let Some(token) = self.fresh_token(request, now) {
            return Ok(token);
        }
        let slot = self.slot(request);
        match self.current(request) {
            // Another caller signed it since the fast path looked.
            Some(cached) if now < cached.soft_deadline => {
                self.slow_hit();
                Ok(cached.token.clone())
            }
            Some(cached) if now < cached.hard_deadline => {
                self.refresh_ahead(&slot, request, &cached).await
            }
            _ => self.wait_for_signing(&slot, request).await,
        }
    }

    /// Reports that the database refused `rejected`: the next [`get`](Self::get) returns a
    /// token signed with credentials resolved after the ones that signed `rejected`.
    ///
    /// That holds even if the token was already replaced (a refresh ahead between the
    /// connection's `get` and its login): a current token signed with the same credentials
    /// is dropped too. Reports about a token whose successor already has newer credentials
    /// are ignored, so however many connections report the same token, it causes one
    /// credentials resolution and one new signing. An invalidation also lifts a remembered
    /// failure's backoff for one new attempt: a rejection is news the backoff did not know.
    ///
    /// The connector's retry is `cache.invalidate(&request, &token)` then
    /// `cache.get(&request)`.
    pub fn invalidate(&self, request: &TokenRequest, rejected: &IamAuthToken) {
        let rejected_generation = rejected.credentials_generation();
        let generator = &self.inner.generator;
        let Some(entry) = self.inner.slots.read(request, Entry::clone) else {
            generator.invalidate_credentials_up_to(rejected_generation);
            return;
        };
        let Some(cached) = entry.current.filter(|c| {
            c.token.same_token(rejected) || c.token.credentials_generation() <= rejected_generation
        }) else {
            return; // already replaced with newer credentials: a late report
        };
        // Credentials first: once the token is gone, any caller may sign its successor, and
        // it must not sign with the credentials that may be why the token was refused.
        let stale = rejected_generation.max(cached.token.credentials_generation());
        if generator.invalidate_credentials_up_to(stale) {
            entry.slot.stale_through.fetch_max(stale, Ordering::AcqRel);
        }
        // Dropped only if it is still the current token (a compare-and-set on the entry).
        let dropped = self.inner.slots.replace(request, |e| {
            e.current
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(c, &cached))
                .then(|| Entry {
                    slot: e.slot.clone(),
                    current: None,
                })
        });
        if let Some(e) = dropped {
            e.slot.lock_attempts().backoff.release();
            e.slot.touched();
            self.inner
                .counters
                .invalidations
                .fetch_add(1, Ordering::Relaxed);
            self.event(CacheEvent::Invalidation);
            tracing::info!(
                host = request.host(),
                port = request.port(),
                user = request.user(),
                "IAM auth token rejected by the database; the next connection signs a new one"
            );
        }
    }

    /// When the current token for `request` should be replaced (its soft deadline), or
    /// `None` if there is none. For a background refresher: sleep until then, or until
    /// [`changed`](Self::changed), then call [`get`](Self::get).
    pub fn refresh_at(&self, request: &TokenRequest) -> Option<SystemTime> {
        self.current(request).map(|c| c.soft_deadline)
    }

    /// Completes when the token for `request` is next replaced, invalidated or evicted
    /// after this call (not at the first poll: nothing in between is missed).
    pub fn changed(&self, request: &TokenRequest) -> impl Future<Output = ()> + Send + 'static {
        let slot = self.slot(request);
        let seen = slot.changes.load(Ordering::Acquire);
        async move {
            loop {
                let mut notified = pin!(slot.changed.notified());
                notified.as_mut().enable();
                if slot.changes.load(Ordering::Acquire) != seen {
                    return;
                }
                notified.await;
            }
        }
    }

    /// Counters since the cache was created.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        CacheStats {
            hits: c.hits.sum(),
            misses: c.misses.load(Ordering::Relaxed),
            refreshes: c.refreshes.load(Ordering::Relaxed),
            refresh_failures: c.refresh_failures.load(Ordering::Relaxed),
            invalidations: c.invalidations.load(Ordering::Relaxed),
            entries: self.inner.slots.len() as u64,
            evictions: c.evictions.load(Ordering::Relaxed),
        }
    }

    /// The generator the cache signs with.
    pub fn generator(&self) -> &TokenGenerator {
        &self.inner.generator
    }

    fn now(&self) -> SystemTime {
        self.inner.generator.clock().now()
    }

    /// The monotonic time backoffs count on (a stepped wall clock must not move them).
    fn instant(&self) -> std::time::Instant {
        self.inner.generator.clock().instant()
    }

    /// The hit path: a lock-free map probe (the token is in the entry) and a reference-count
    /// increment; no allocation, and nothing shared is written but the token copy's count.
    fn fresh_token(&self, request: &TokenRequest, now: SystemTime) -> Option<IamAuthToken> {
        let shard = shard_index();
        let token = self.inner.slots.read(request, |entry| {
            let cached = entry.current.as_ref()?;
            (now < cached.soft_deadline).then(|| cached.copies.for_shard(shard))
        })??;
        let before = self.inner.counters.hits.increment_shard(shard);
        // Compiled out without the `metrics` feature; with it, one branch rarely taken.
        if observe::ENABLED && before.is_multiple_of(observe::HIT_PUBLISH_EVERY) {
            self.publish_hits();
        }
        Some(token)
    }

    /// A hit found on a slow path (another caller signed meanwhile).
    fn slow_hit(&self) {
        self.inner.counters.hits.increment();
    }

    /// Records `event` on the `metrics` facade, with the hits counted since the last one.
    fn event(&self, event: CacheEvent) {
        observe::cache_event(event);
        self.publish_hits();
    }

    fn publish_hits(&self) {
        if observe::ENABLED {
            let counters = &self.inner.counters;
            observe::cache_hits(counters.hits.sum(), &counters.hits_published);
        }
    }

    /// The request's current token, if any (whatever its deadlines).
    fn current(&self, request: &TokenRequest) -> Option<Arc<Cached>> {
        self.inner.slots.read(request, |e| e.current.clone())?
    }

    /// Installs a newly signed token as the request's current one.
    fn install(&self, request: &TokenRequest, slot: &Slot, cached: Arc<Cached>) {
        if cached.token.credentials_generation() <= slot.stale_through.load(Ordering::Acquire) {
            tracing::debug!(
                host = request.host(),
                user = request.user(),
                "not caching a token signed with credentials a rejection dropped meanwhile"
            );
            return;
        }
        let installed = self.inner.slots.replace(request, |e| {
            // The slot that signed it is still the request's (not evicted meanwhile).
            std::ptr::eq(Arc::as_ptr(&e.slot), slot).then(|| Entry {
                slot: e.slot.clone(),
                current: Some(cached),
            })
        });
        if let Some(entry) = installed {
            entry.slot.touched();
        }
    }

    /// The request's slot, held (so not evicted) until the returned guard drops; created if
    /// new, which may sweep out expired keys.
    fn slot(&self, request: &TokenRequest) -> Held {
        let (entry, inserted) = self.inner.slots.get_or_insert_with(request, || Entry {
            slot: Arc::new(Slot::new()),
            current: None,
        });
        let slot = Held::new(&entry.slot);
        if !inserted {
            return slot;
        }
        observe::cache_size_changed(1, 0);
        let len = self.inner.slots.len();
        let added = self
            .inner
            .inserted_since_sweep
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if len > self.inner.config.max_keys || added >= len.max(SWEEP_EVERY) {
            self.sweep();
        }
        slot
    }

    /// Drops keys whose token has expired and that no caller holds; then, if the cache is
    /// still over `max_keys`, the keys whose tokens expire first, down to 7/8 of the
    /// maximum so that the next sweep is that many new keys away (O(1) per key, amortized).
    fn sweep(&self) {
        let Ok(_one_at_a_time) = self.inner.sweeping.try_lock() else {
            return;
        };
        self.inner.inserted_since_sweep.store(0, Ordering::Relaxed);
        let now = self.now();
        let slots = &self.inner.slots;
        // A held slot (a caller signing, waiting or watching) is never a candidate.
        let mut removed = slots.remove_where(|_, entry| {
            let expired = entry
                .current
                .as_ref()
                .is_none_or(|c| !c.token.is_valid_at(now));
            expired && !entry.slot.is_held()
        });
        let max = self.inner.config.max_keys;
        if slots.len() > max {
            let target = max - max / 8;
            let mut by_expiry =
                slots.collect(|entry| (!entry.slot.is_held()).then(|| entry.expires_at()));
            let excess = slots.len().saturating_sub(target).min(by_expiry.len());
            if excess > 0 && excess < by_expiry.len() {
                by_expiry.select_nth_unstable_by_key(excess, |(_, at)| *at);
            }
            let victims: HashSet<&TokenRequest, BuildHasherDefault<PrecomputedHash>> = by_expiry
                .iter()
                .take(excess)
                .map(|(key, _)| &**key)
                .collect();
            removed.extend(
                slots.remove_where(|key, entry| victims.contains(key) && !entry.slot.is_held()),
            );
        }
        for entry in &removed {
            entry.slot.touched();
        }
        let evicted = removed.len() as u64;
        self.inner
            .counters
            .evictions
            .fetch_add(evicted, Ordering::Relaxed);
        if evicted > 0 {
            observe::cache_size_changed(-(evicted as i64), evicted);
        }
    }

    /// The soft zone: one caller signs, the others keep the current token.
    async fn refresh_ahead(
        &self,
        slot: &Slot,
        request: &TokenRequest,
        cached: &Cached,
    ) -> Result<IamAuthToken> {
        let claimed = slot
            .refreshing_ahead
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if !claimed {
            self.slow_hit();
            return Ok(cached.token.clone());
        }
        // Released on every exit, also if the caller's future is dropped mid-signing.
        let _claim = ClaimGuard(&slot.refreshing_ahead);
        let _signing = slot.signing.lock().await;
        // A caller that waited at expiry may have signed while this one waited for the lock.
        let now = self.now();
        if let Some(newer) = self.current(request).filter(|c| now < c.soft_deadline) {
            return Ok(newer.token.clone());
        }
        match self.attempt(slot, request).await {
            Ok(token) => Ok(token),
            Err(error) => self.after_failure(request, error),
        }
    }

    /// The hard zone or an empty slot: wait for the one signing in progress and share its
    /// outcome, or sign.
    async fn wait_for_signing(&self, slot: &Slot, request: &TokenRequest) -> Result<IamAuthToken> {
        self.inner.counters.misses.fetch_add(1, Ordering::Relaxed);
        self.event(CacheEvent::Miss);
        let ticket = slot.lock_attempts().completed;
        let _signing = slot.signing.lock().await;
        // Whoever held the lock before may have signed what this caller needs...
        let now = self.now();
        if let Some(cached) = self.current(request).filter(|c| now < c.hard_deadline) {
            return Ok(cached.token.clone());
        }
        // ... or failed: then its error is this caller's too.
        let shared = {
            let attempts = slot.lock_attempts();
            (attempts.completed != ticket)
                .then(|| attempts.failure.clone())
                .flatten()
        };
        let outcome = match shared {
            Some(error) => Err(error),
            None => self.attempt(slot, request).await,
        };
        outcome.or_else(|error| self.after_failure(request, error))
    }

    /// One signing attempt (the caller holds the slot's `signing` lock), unless a remembered
    /// failure still holds attempts back: then that failure.
    async fn attempt(&self, slot: &Slot, request: &TokenRequest) -> Result<IamAuthToken> {
        {
            let attempts = slot.lock_attempts();
            if attempts.backoff.holds(self.instant())
                && let Some(error) = &attempts.failure
            {
                return Err(error.clone());
            }
        }
        let signed = self.inner.generator.generate(request).await;
        // The deadlines are judged at the time the attempt ended, not when it began.
        let now = self.now();
        let outcome = signed.and_then(|token| self.deadlines(request, token, now));
        let mut attempts = slot.lock_attempts();
        attempts.completed += 1;
        match outcome {
            Ok(cached) => {
                attempts.failure = None;
                attempts.backoff.succeeded();
                drop(attempts);
                self.inner
                    .counters
                    .refreshes
                    .fetch_add(1, Ordering::Relaxed);
                self.event(CacheEvent::Refresh);
                let token = cached.token.clone();
                tracing::debug!(host = request.host(), user = request.user(), expires_at = ?token.expires_at(), "signed a new IAM auth token");
                self.install(request, slot, Arc::new(cached));
                Ok(token)
            }
            Err(error) => {
                attempts.backoff.failed(self.instant());
                attempts.failure = Some(error.clone());
                drop(attempts);
                self.inner
                    .counters
                    .refresh_failures
                    .fetch_add(1, Ordering::Relaxed);
                self.event(CacheEvent::RefreshFailure);
                tracing::warn!(
                    host = request.host(),
                    user = request.user(),
                    %error,
                    "signing a new IAM auth token failed; new attempts back off"
                );
                Err(error)
            }
        }
    }

    /// After a failed (or remembered failed) signing, judged now, after the attempt: the
    /// current token while it is before its hard deadline (a failed refresh ahead) or valid
    /// for at least the grace period; else the error.
    fn after_failure(&self, request: &TokenRequest, error: Error) -> Result<IamAuthToken> {
        let now = self.now();
        let grace = self.inner.config.failure_grace;
        match self.current(request) {
            Some(cached) if now < cached.hard_deadline => Ok(cached.token.clone()),
            Some(cached)
                if cached.token.is_valid_at(now)
                    && cached
                        .token
                        .expires_at()
                        .duration_since(now)
                        .is_ok_and(|left| left >= grace) =>
            {
                tracing::warn!(
                    host = request.host(),
                    user = request.user(),
                    %error,
                    "no new IAM auth token; handing out the current one, which expires soon"
                );
                Ok(cached.token.clone())
            }
            _ => Err(error),
        }
    }

    /// The margin for `request`: the configured one, at most half the requested lifetime (a
    /// margin longer than a token lives would refuse every token).
    fn margin(&self, request: &TokenRequest) -> Duration {
        self.inner
            .config
            .refresh_margin
            .min(request.expires_in() / 2)
    }

    /// The deadlines of a freshly signed token, or a refusal if its credentials leave it
    /// less than the margin to live.
    fn deadlines(
        &self,
        request: &TokenRequest,
        token: IamAuthToken,
        now: SystemTime,
    ) -> Result<Cached> {
        let margin = self.margin(request);
        let hard_deadline = token.expires_at().checked_sub(margin).unwrap_or(UNIX_EPOCH);
        // Cut short by the credentials' expiry, not by the lifetime asked for. A token that
        // lives its full lifetime is as fresh as a token gets, even when the second its
        // signing time was truncated to leaves it less than the margin (a 1 s lifetime): it
        // is handed out, and the next call signs again.
        let cut_by_credentials = token
            .signed_at()
            .checked_add(request.expires_in())
            .is_some_and(|full| token.expires_at() < full);
        if now >= hard_deadline && cut_by_credentials {
            tracing::warn!(
                host = request.host(),
                user = request.user(),
                expires_at = ?token.expires_at(),
                "the signing credentials expire within the refresh margin; no token is handed out"
            );
            return Err(Detail::CredentialsExpiring {
                expires_at: token.expires_at(),
                margin,
            }
            .into());
        }
        let lifetime = token
            .expires_at()
            .duration_since(token.signed_at())
            .unwrap_or_default();
        let ahead = lifetime
            .checked_mul(self.inner.config.refresh_ahead_percent)
            .map_or(lifetime, |d| d / 100);
        let soft_deadline = token
            .signed_at()
            .checked_add(ahead)
            .map_or(hard_deadline, |at| at.min(hard_deadline));
        Ok(Cached {
            soft_deadline,
            hard_deadline,
            copies: TokenCopies::of(&token),
            token,
        })
    }
}

impl Entry {
    fn expires_at(&self) -> SystemTime {
        self.current
            .as_ref()
            .map_or(UNIX_EPOCH, |c| c.token.expires_at())
    }
}

impl Slot {
    fn new() -> Self {
        Self {
            holders: AtomicUsize::new(0),
            signing: tokio::sync::Mutex::new(()),
            refreshing_ahead: AtomicBool::new(false),
            attempts: Mutex::new(Attempts::default()),
            changes: AtomicU64::new(0),
            changed: Notify::new(),
            stale_through: AtomicU64::new(0),
        }
    }

    fn is_held(&self) -> bool {
        self.holders.load(Ordering::Acquire) != 0
    }

    fn lock_attempts(&self) -> std::sync::MutexGuard<'_, Attempts> {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes `TokenCache::changed` futures: the token was replaced, dropped or evicted.
    fn touched(&self) {
        self.changes.fetch_add(1, Ordering::Release);
        self.changed.notify_waiters();
    }
}

/// A slot a caller holds: never evicted meanwhile (map snapshots a reader still holds refer to
/// the slot too, so its reference count cannot tell).
struct Held(Arc<Slot>);

impl Held {
    fn new(slot: &Arc<Slot>) -> Self {
        slot.holders.fetch_add(1, Ordering::AcqRel);
        Self(slot.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.holders.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::ops::Deref for Held {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        &self.0
    }
}

/// Releases the refresh-ahead claim when dropped.
struct ClaimGuard<'a>(&'a AtomicBool);

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.inner.slots.len())
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .field("generator", &self.inner.generator)
            .finish()
    }
}

/// Configures a [`TokenCache`]. Every setting is accepted: out-of-range values are clamped,
/// and no value can make the cache panic.
#[derive(Debug)]
pub struct TokenCacheBuilder {
    generator: TokenGenerator,
    config: CacheConfig,
}

impl TokenCacheBuilder {
    /// Never hand out a token with less than this left (default 60 s). At most half a
    /// request's token lifetime is used: a margin as long as a token lives would refuse it.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.config.refresh_margin = margin;
        self
    }

    /// After a failed refresh, keep handing out the current token while it has at least
    /// this left (default 10 s); `Duration::ZERO` hands it out until it expires.
    pub fn failure_grace(mut self, grace: Duration) -> Self {
        self.config.failure_grace = grace;
        self
    }

    /// Refresh ahead once this percentage of a token's lifetime has passed (default 66;
    /// values over 100 are read as 100, i.e. no refresh ahead).
    pub fn refresh_ahead_percent(mut self, percent: u32) -> Self {
        self.config.refresh_ahead_percent = percent.min(100);
        self
    }

    /// The most keys the cache holds (default [`DEFAULT_MAX_KEYS`]; at least 1). When a new
    /// key would exceed it, expired keys go first, then those whose tokens expire first.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.config.max_keys = max_keys.max(1);
        self
    }

    /// The cache.
    pub fn build(self) -> TokenCache {
        TokenCache {
            inner: Arc::new(Inner {
                generator: self.generator,
                config: self.config,
                slots: ShardedMap::new(self.config.max_keys),
                inserted_since_sweep: AtomicUsize::new(0),
                sweeping: Mutex::new(()),
                counters: Counters::default(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use aws_credential_types::Credentials;

    /// A signing that read the credentials before a rejection dropped them must not put its
    /// token back as the current one (the race the reliability review found by reading).
    #[tokio::test]
    async fn a_token_signed_with_dropped_credentials_is_not_installed() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let cache = TokenCache::new(TokenGenerator::new(credentials));
        let endpoint = Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 5432).unwrap();
        let request = TokenRequest::rds(&endpoint, "u").build().unwrap();
        let first = cache.get(&request).await.unwrap();
        // What a signing begun before the rejection would produce: the same credentials.
        let late = cache
            .deadlines(&request, first.clone(), cache.now())
            .unwrap();
        cache.invalidate(&request, &first);
        assert!(
            cache.current(&request).is_none(),
            "the rejected token is gone"
        );
        let slot = cache.slot(&request);
        cache.install(&request, &slot, Arc::new(late));
        assert!(cache.current(&request).is_none(), "and not put back");
        // A token of freshly resolved credentials is.
        let fresh = cache.get(&request).await.unwrap();
        assert!(fresh.credentials_generation() > first.credentials_generation());
        assert!(cache.current(&request).is_some());
    }
}
