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
//! **When a refresh fails**, the error is returned, unless the current token is still valid
//! for at least the grace period (10 s by default): then the current token is handed out and
//! a `tracing` warning says why. A refresh-ahead failure never reaches the caller: the
//! current token is still comfortably valid.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use crate::error::Result;
use crate::generator::TokenGenerator;
use crate::request::TokenRequest;
use crate::token::IamAuthToken;

/// Default: never hand out a token with less than this left.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Default: on a failed refresh, keep handing out the current token while this much is left.
pub const DEFAULT_FAILURE_GRACE: Duration = Duration::from_secs(10);
/// Default: refresh ahead once this fraction of the lifetime has passed (in percent).
pub const DEFAULT_REFRESH_AHEAD_PERCENT: u32 = 66;

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
    /// The current token of every request: what the hit path reads, with one atomic load.
    /// Replaced whole (copy on write) when a token changes, once per key every ten minutes.
    current: ArcSwap<KeyMap<Arc<Cached>>>,
    /// Per-request coordination of signings: only the slow path touches it.
    entries: Mutex<KeyMap<Arc<Entry>>>,
    counters: Counters,
}

type KeyMap<V> = HashMap<TokenRequest, V, BuildHasherDefault<PrecomputedHash>>;

#[derive(Debug, Clone, Copy)]
struct CacheConfig {
    refresh_margin: Duration,
    failure_grace: Duration,
    refresh_ahead_percent: u32,
}

/// The machinery to replace one request's token once.
struct Entry {
    /// Held while signing: callers that must wait, wait here, and find the new token.
    signing: tokio::sync::Mutex<()>,
    /// Claimed by the one caller that refreshes ahead.
    refreshing_ahead: AtomicBool,
}

struct Cached {
    token: IamAuthToken,
    /// Copies of `token`, one per counter shard: threads clone different copies, so the hit
    /// path's one shared write (a reference count) is not shared between threads.
    copies: [IamAuthToken; SHARDS],
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
}

#[derive(Default)]
struct Counters {
    hits: ShardedCounter,
    misses: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    invalidations: AtomicU64,
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
            },
        }
    }

    /// A token for `request` with more than the refresh margin left.
    pub async fn get(&self, request: &TokenRequest) -> Result<IamAuthToken> {
        let now = self.inner.generator.clock().now();
        if let Some(token) = self.fresh_token(request, now) {
            return Ok(token);
        }
        let entry = self.entry(request);
        match self.current(request) {
            // Another caller signed it since the fast path looked.
            Some(cached) if now < cached.soft_deadline => {
                self.inner.counters.hits.increment();
                Ok(cached.token.clone())
            }
            Some(cached) if now < cached.hard_deadline => {
                Ok(self.refresh_ahead(&entry, request, &cached, now).await)
            }
            _ => self.wait_for_signing(&entry, request).await,
        }
    }

    /// Drops `rejected`, which the database refused, so that the next [`get`](Self::get)
    /// signs a fresh token with freshly resolved credentials. Reports of a token that was
    /// already replaced are ignored: however many connections report the same token, it
    /// causes one new signing.
    pub fn invalidate(&self, request: &TokenRequest, rejected: &IamAuthToken) {
        let is_current = |map: &KeyMap<Arc<Cached>>| {
            map.get(request)
                .is_some_and(|c| c.token.same_token(rejected))
        };
        if !is_current(&self.inner.current.load()) {
            return; // already replaced: a late report
        }
        // Credentials first: once the token is gone, any caller may sign its successor, and
        // it must not sign with the credentials that may be why the token was refused.
        self.inner.generator.invalidate_credentials();
        let mut removed = false;
        self.inner.current.rcu(|map| {
            removed = is_current(map);
            let mut map = KeyMap::clone(map);
            if removed {
                map.remove(request);
            }
            map
        });
        if removed {
            self.inner
                .counters
                .invalidations
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                host = request.host(),
                port = request.port(),
                user = request.user(),
                "IAM auth token rejected by the database; the next connection signs a new one"
            );
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
        }
    }

    /// The generator the cache signs with.
    pub fn generator(&self) -> &TokenGenerator {
        &self.inner.generator
    }

    /// The hit path: one atomic load, a map probe and a reference-count increment; no lock,
    /// no allocation, and nothing shared is written but the token's count.
    fn fresh_token(&self, request: &TokenRequest, now: SystemTime) -> Option<IamAuthToken> {
        let current = self.inner.current.load();
        let cached = current.get(request).filter(|c| now < c.soft_deadline)?;
        let shard = shard_index();
        self.inner.counters.hits.increment_shard(shard);
        Some(cached.copies[shard].clone())
    }

    /// The current token for `request`, whatever its deadlines.
    fn current(&self, request: &TokenRequest) -> Option<Arc<Cached>> {
        self.inner.current.load().get(request).cloned()
    }

    fn entry(&self, request: &TokenRequest) -> Arc<Entry> {
        let mut entries = self.inner.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .entry(request.clone())
            .or_insert_with(|| Arc::new(Entry::new()))
            .clone()
    }

    /// The soft zone: one caller signs, the others keep the current token.
    async fn refresh_ahead(
        &self,
        entry: &Entry,
        request: &TokenRequest,
        cached: &Cached,
        now: SystemTime,
    ) -> IamAuthToken {
        let claimed = entry
            .refreshing_ahead
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if !claimed {
            self.inner.counters.hits.increment();
            return cached.token.clone();
        }
        // Released on every exit, also if the caller's future is dropped mid-signing.
        let _claim = ClaimGuard(&entry.refreshing_ahead);
        let _signing = entry.signing.lock().await;
        // A caller that waited at expiry may have signed while this one waited for the lock.
        if let Some(newer) = self.current(request).filter(|c| now < c.soft_deadline) {
            return newer.token.clone();
        }
        match self.sign_into(request).await {
            Ok(token) => token,
            Err(error) => {
                tracing::warn!(
                    host = request.host(),
                    user = request.user(),
                    %error,
                    "refreshing the IAM auth token ahead of expiry failed; the current token stays in use"
                );
                cached.token.clone()
            }
        }
    }

    /// The hard zone or an empty entry: wait for the one signing in progress, or do it.
    async fn wait_for_signing(
        &self,
        entry: &Entry,
        request: &TokenRequest,
    ) -> Result<IamAuthToken> {
        self.inner.counters.misses.fetch_add(1, Ordering::Relaxed);
        let _signing = entry.signing.lock().await;
        // Whoever held the lock before may have signed what this caller needs.
        let now = self.inner.generator.clock().now();
        if let Some(cached) = self.current(request).filter(|c| now < c.hard_deadline) {
            return Ok(cached.token.clone());
        }
        match self.sign_into(request).await {
            Ok(token) => Ok(token),
            Err(error) => self.grace(request, now, error),
        }
    }

    /// After a failed signing: the current token if it has the grace period left, else the error.
    fn grace(
        &self,
        request: &TokenRequest,
        now: SystemTime,
        error: crate::Error,
    ) -> Result<IamAuthToken> {
        match self.current(request) {
            Some(cached) if now + self.inner.config.failure_grace <= cached.token.expires_at() => {
                tracing::warn!(
                    host = request.host(),
                    user = request.user(),
                    %error,
                    "signing a new IAM auth token failed; handing out the current one, which expires soon"
                );
                Ok(cached.token.clone())
            }
            _ => Err(error),
        }
    }

    /// Signs a token and makes it current. Callers hold the entry's `signing` lock.
    async fn sign_into(&self, request: &TokenRequest) -> Result<IamAuthToken> {
        let signed = self.inner.generator.generate(request).await;
        let token = match signed {
            Ok(token) => token,
            Err(error) => {
                self.inner
                    .counters
                    .refresh_failures
                    .fetch_add(1, Ordering::Relaxed);
                return Err(error);
            }
        };
        self.inner
            .counters
            .refreshes
            .fetch_add(1, Ordering::Relaxed);
        let cached = self.deadlines(token.clone());
        if cached.hard_deadline <= token.signed_at() {
            tracing::warn!(
                host = request.host(),
                user = request.user(),
                expires_at = ?token.expires_at(),
                "the signing credentials expire within the refresh margin; every connection will sign anew until they are renewed"
            );
        }
        tracing::debug!(host = request.host(), user = request.user(), expires_at = ?token.expires_at(), "signed a new IAM auth token");
        let cached = Arc::new(cached);
        self.inner.current.rcu(|map| {
            let mut map = KeyMap::clone(map);
            map.insert(request.clone(), cached.clone());
            map
        });
        Ok(token)
    }

    fn deadlines(&self, token: IamAuthToken) -> Cached {
        let config = &self.inner.config;
        let lifetime = token
            .expires_at()
            .duration_since(token.signed_at())
            .unwrap_or_default();
        let soft_deadline = token.signed_at() + lifetime * config.refresh_ahead_percent / 100;
        let hard_deadline = token
            .expires_at()
            .checked_sub(config.refresh_margin)
            .unwrap_or(token.signed_at())
            .max(token.signed_at());
        Cached {
            soft_deadline: soft_deadline.min(hard_deadline),
            hard_deadline,
            copies: std::array::from_fn(|_| token.duplicate()),
            token,
        }
    }
}

impl Entry {
    fn new() -> Self {
        Self {
            signing: tokio::sync::Mutex::new(()),
            refreshing_ahead: AtomicBool::new(false),
        }
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
            .field("entries", &self.inner.current.load().len())
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .field("generator", &self.inner.generator)
            .finish()
    }
}

/// Configures a [`TokenCache`].
#[derive(Debug)]
pub struct TokenCacheBuilder {
    generator: TokenGenerator,
    config: CacheConfig,
}

impl TokenCacheBuilder {
    /// Never hand out a token with less than this left (default 60 s). Clamped to the
    /// token lifetime: a margin longer than a token lives means every call signs anew.
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

    /// The cache.
    pub fn build(self) -> TokenCache {
        TokenCache {
            inner: Arc::new(Inner {
                generator: self.generator,
                config: self.config,
                current: ArcSwap::from_pointee(KeyMap::default()),
                entries: Mutex::new(KeyMap::default()),
                counters: Counters::default(),
            }),
        }
    }
}

/// A hasher for keys that carry their own hash ([`TokenRequest`] computes it once).
#[derive(Default)]
struct PrecomputedHash(u64);

impl Hasher for PrecomputedHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is expected; fold anything else in rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// A hit counter that two threads can bump without fighting over one cache line.
struct ShardedCounter {
    shards: [PaddedCounter; SHARDS],
}

const SHARDS: usize = 8;

#[repr(align(128))]
#[derive(Default)]
struct PaddedCounter(AtomicU64);

impl Default for ShardedCounter {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| PaddedCounter::default()),
        }
    }
}

impl ShardedCounter {
    fn increment(&self) {
        self.increment_shard(shard_index());
    }

    fn increment_shard(&self, shard: usize) {
        self.shards[shard].0.fetch_add(1, Ordering::Relaxed);
    }

    fn sum(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// This thread's shard, assigned round-robin on first use.
fn shard_index() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static INDEX: usize = (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % SHARDS;
    }
    INDEX.with(|i| *i)
}
