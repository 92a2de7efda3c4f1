//! Retrying transactions that lost an optimistic-concurrency conflict ([`retry_occ`]).

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// SQLSTATE `serialization_failure`, DSQL's code for a lost optimistic-concurrency conflict.
pub(crate) const SERIALIZATION_FAILURE: &str = "40001";

/// Whether an error is an Aurora DSQL optimistic-concurrency conflict: SQLSTATE `40001`.
/// Nothing else is retried by [`retry_occ`].
///
/// The SQLSTATE decides, never the message: DSQL names the conflict (`OC000`, `OC001`) in the
/// text of a `40001` error, but messages echo user data (a failed cast of the value `'OC000'`
/// says `OC000` too), and a transaction with effects outside the database must not run again
/// because of what a value spelled.
pub trait OccConflict {
    /// `true` when running the transaction again may succeed.
    fn is_occ_conflict(&self) -> bool;
}

#[cfg(feature = "postgres")]
impl OccConflict for tokio_postgres::Error {
    fn is_occ_conflict(&self) -> bool {
        self.as_db_error()
            .is_some_and(|db| db.code().code() == SERIALIZATION_FAILURE)
    }
}

// `sqlx::Error` (0.8 and 0.9): in `src/sqlx_pool/postgres.rs`, written once for both;
// diesel's `result::Error`: in `src/diesel_async.rs`.

/// A [`crate::Error`] is a conflict when a driver's error in its chain of sources is (a
/// `tokio_postgres::Error`, a sqlx 0.8 or 0.9 `Error`, diesel's `result::Error`).
impl OccConflict for crate::Error {
    fn is_occ_conflict(&self) -> bool {
        chain_has_conflict(self)
    }
}

/// A boxed error (what `?` makes of any error in a closure returning `Result<_, BoxError>`)
/// is a conflict when a driver's error in its chain of sources is (a `tokio_postgres::Error`,
/// a sqlx 0.8 or 0.9 `Error`, diesel's `result::Error`): a pool's error, this crate's
/// [`Error`](crate::Error) or the driver's own.
impl OccConflict for Box<dyn std::error::Error + Send + Sync> {
    fn is_occ_conflict(&self) -> bool {
        chain_has_conflict(&**self)
    }
}

fn chain_has_conflict(error: &(dyn std::error::Error + 'static)) -> bool {
    // The first driver error in the chain decides; each driver's errors are its own types.
    let readers: &[fn(&(dyn std::error::Error + 'static)) -> Option<bool>] = &[
        #[cfg(feature = "postgres")]
        |e| Some(e.downcast_ref::<tokio_postgres::Error>()?.is_occ_conflict()),
        #[cfg(feature = "sqlx-0_9-postgres")]
        |e| Some(e.downcast_ref::<sqlx::Error>()?.is_occ_conflict()),
        #[cfg(feature = "sqlx-0_8-postgres")]
        |e| Some(e.downcast_ref::<sqlx08::Error>()?.is_occ_conflict()),
        #[cfg(feature = "diesel-async-postgres")]
        |e| Some(e.downcast_ref::<diesel::result::Error>()?.is_occ_conflict()),
    ];
    crate::error::chain(error)
        .find_map(|e| readers.iter().find_map(|read| read(e)))
        .unwrap_or(false)
}

/// How [`retry_occ`] retries: at most [`max_attempts`](Self::max_attempts) runs, none
/// started after [`max_elapsed`](Self::max_elapsed), waiting a random time between zero and
/// `base_delay × 2^(retry − 1)` (capped at [`max_delay`](Self::max_delay)) before each
/// retry ("full jitter": conflicting clients do not retry in lockstep).
///
/// Default: 5 attempts, 10 ms base delay, 1 s maximum delay, 10 s in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccRetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    max_elapsed: Duration,
}

impl Default for OccRetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(10),
        }
    }
}

impl OccRetryPolicy {
    /// How many times the transaction runs at most, the first included (0 counts as 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The backoff before the first retry, doubled for each further one.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest backoff before one retry.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// No retry starts (its backoff included) later than this after the first run started.
    pub fn max_elapsed(mut self, elapsed: Duration) -> Self {
        self.max_elapsed = elapsed;
        self
    }

    /// The backoff cap before retry `retry` (1-based): `base × 2^(retry − 1)`, at most
    /// `max_delay`.
    fn cap(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }
}

/// The error of the last run of a transaction given to [`retry_occ`], with how many runs
/// there were. [`is_conflict`](Self::is_conflict) tells an exhausted retry budget from an
/// error that was never retried.
pub struct OccRetryError<E> {
    error: E,
    attempts: u32,
}

impl<E> OccRetryError<E> {
    /// How many times the transaction ran (the failing run included).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The last run's error.
    pub fn error(&self) -> &E {
        &self.error
    }

    /// The last run's error, by value.
    pub fn into_inner(self) -> E {
        self.error
    }
}

impl<E: OccConflict> OccRetryError<E> {
    /// `true` when the last error was a conflict: the retry budget ran out (raise
    /// [`OccRetryPolicy::max_attempts`], or make transactions touch fewer shared rows).
    pub fn is_conflict(&self) -> bool {
        self.error.is_occ_conflict()
    }
}

impl<E: fmt::Debug> fmt::Debug for OccRetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OccRetryError")
            .field("attempts", &self.attempts)
            .field("error", &self.error)
            .finish()
    }
}

impl<E: fmt::Display> fmt::Display for OccRetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs = if self.attempts == 1 { "run" } else { "runs" };
        write!(
            f,
            "transaction failed after {} {runs}: {}",
            self.attempts, self.error
        )
    }
}

impl<E: std::error::Error + 'static> std::error::Error for OccRetryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Runs `transaction` until it succeeds, fails with something other than an
/// optimistic-concurrency conflict ([`OccConflict`]), or `policy` allows no further run.
///
/// The closure must run the whole transaction (`BEGIN` to `COMMIT`) each time: DSQL reports
/// a conflict at commit, and the aborted transaction changed nothing.
///
/// With a deadpool pool of tokio-postgres connections:
///
/// ```no_run
/// # #[cfg(feature = "deadpool-postgres")]
/// # mod example {
/// use rds_iam_auth::dsql::{OccRetryError, OccRetryPolicy, retry_occ};
/// type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// # async fn run(pool: rds_iam_auth::pool::PgPool) -> Result<(), BoxError> {
/// let policy = OccRetryPolicy::default();
/// retry_occ(&policy, || async {
///     let mut client = pool.get().await?;
///     let tx = client.transaction().await?;
///     tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", &[]).await?;
///     tx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = 2", &[]).await?;
///     tx.commit().await?;
///     Ok::<_, BoxError>(())
/// })
/// .await
/// .map_err(OccRetryError::into_inner)?;
/// # Ok(()) }
/// # }
/// ```
///
/// `?` boxes the pool's and the driver's errors alike; the retry finds the
/// `tokio_postgres::Error` inside ([`OccConflict`] for `Box<dyn Error + Send + Sync>`).
///
/// With a sqlx pool (0.9 here; 0.8 alike), whose `sqlx::Error` is an [`OccConflict`] itself:
///
/// ```no_run
/// # #[cfg(feature = "sqlx-0_9-postgres")]
/// # mod example {
/// use rds_iam_auth::dsql::{OccRetryError, OccRetryPolicy, retry_occ};
/// use rds_iam_auth::sqlx_0_9::{IamPgPool, sqlx};
/// # async fn run(pool: IamPgPool) -> Result<(), sqlx::Error> {
/// retry_occ(&OccRetryPolicy::default(), || async {
///     let mut tx = pool.begin().await?;
///     sqlx::query("UPDATE accounts SET balance = balance - 10 WHERE id = 1")
///         .execute(&mut *tx)
///         .await?;
///     tx.commit().await
/// })
/// .await
/// .map_err(OccRetryError::into_inner)?;
/// # Ok(()) }
/// # }
/// ```
pub async fn retry_occ<T, E, F, Fut>(
    policy: &OccRetryPolicy,
    transaction: F,
) -> Result<T, OccRetryError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: OccConflict,
{
    retry_with(policy, transaction, tokio::time::sleep, full_jitter).await
}

/// [`retry_occ`] with the sleep and the jitter given (tests make both deterministic).
async fn retry_with<T, E, F, Fut, S, SF>(
    policy: &OccRetryPolicy,
    mut transaction: F,
    mut sleep: S,
    mut jitter: impl FnMut(Duration) -> Duration,
) -> Result<T, OccRetryError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: OccConflict,
    S: FnMut(Duration) -> SF,
    SF: Future<Output = ()>,
{
    let started = Instant::now();
    let mut slept = Duration::ZERO;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match transaction().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let delay = jitter(policy.cap(attempts));
        // The time slept is counted even when the sleeper returns at once (tests).
        let spent = started.elapsed().max(slept);
        let retry = error.is_occ_conflict()
            && attempts < policy.max_attempts
            && spent.saturating_add(delay) <= policy.max_elapsed;
        if !retry {
            return Err(OccRetryError { error, attempts });
        }
        tracing::debug!(attempt = attempts, ?delay, "DSQL OCC conflict; retrying");
        sleep(delay).await;
        slept += delay;
    }
}

/// A uniformly random duration in `[0, cap]`, from the same `fastrand` generator as the
/// connector's retry jitter (backoff jitter needs no cryptographic randomness).
fn full_jitter(cap: Duration) -> Duration {
    let cap = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=cap))
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    /// An error that is a conflict or not.
    #[derive(Debug, Clone, PartialEq)]
    struct Fake(bool);
    impl fmt::Display for Fake {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "fake (conflict: {})", self.0)
        }
    }
    impl OccConflict for Fake {
        fn is_occ_conflict(&self) -> bool {
            self.0
        }
    }

    /// Runs `results` in turn through `retry_with` without jitter, recording the sleeps.
    fn run(
        policy: &OccRetryPolicy,
        results: Vec<Result<u8, Fake>>,
    ) -> (Result<u8, OccRetryError<Fake>>, Vec<Duration>, usize) {
        let results = RefCell::new(results.into_iter());
        let calls = Cell::new(0);
        let sleeps = RefCell::new(Vec::new());
        let outcome = block_on(retry_with(
            policy,
            || {
                calls.set(calls.get() + 1);
                let next = results.borrow_mut().next().expect("ran too often");
                async move { next }
            },
            |d| {
                sleeps.borrow_mut().push(d);
                async {}
            },
            |cap| cap,
        ));
        (outcome, sleeps.into_inner(), calls.get())
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn policy() -> OccRetryPolicy {
        OccRetryPolicy::default()
            .max_attempts(4)
            .base_delay(Duration::from_millis(10))
            .max_delay(Duration::from_millis(25))
            .max_elapsed(Duration::from_secs(60))
    }

    #[test]
    fn retries_conflicts_with_capped_exponential_backoff() {
        let results = vec![Err(Fake(true)), Err(Fake(true)), Err(Fake(true)), Ok(7)];
        let (outcome, sleeps, calls) = run(&policy(), results);
        assert_eq!(outcome.unwrap(), 7);
        assert_eq!(calls, 4);
        let ms = Duration::from_millis;
        assert_eq!(sleeps, [ms(10), ms(20), ms(25)]);
    }

    #[test]
    fn never_retries_other_errors() {
        let (outcome, sleeps, calls) = run(&policy(), vec![Err(Fake(false))]);
        let error = outcome.unwrap_err();
        assert_eq!(
            (error.attempts(), error.is_conflict(), calls),
            (1, false, 1)
        );
        assert!(sleeps.is_empty());
    }

    #[test]
    fn gives_up_after_max_attempts_with_all_attempts_counted() {
        let (outcome, sleeps, calls) = run(&policy(), vec![Err(Fake(true)); 4]);
        let error = outcome.unwrap_err();
        assert_eq!((error.attempts(), error.is_conflict(), calls), (4, true, 4));
        assert_eq!(sleeps.len(), 3);
        assert!(
            error
                .to_string()
                .starts_with("transaction failed after 4 runs")
        );
    }

    #[test]
    fn starts_no_retry_past_max_elapsed() {
        // 10 + 20 ms of backoff fit in 35 ms; the third (25 ms) would not.
        let policy = policy().max_elapsed(Duration::from_millis(35));
        let (outcome, sleeps, _) = run(&policy, vec![Err(Fake(true)); 4]);
        assert_eq!(outcome.unwrap_err().attempts(), 3);
        assert_eq!(sleeps.len(), 2);
    }

    #[test]
    fn full_jitter_stays_within_the_cap_and_varies() {
        let cap = Duration::from_millis(100);
        let draws: Vec<Duration> = (0..64).map(|_| full_jitter(cap)).collect();
        assert!(draws.iter().all(|d| *d <= cap));
        assert!(draws.iter().any(|d| *d != draws[0]), "{draws:?}");
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn cap_does_not_overflow() {
        let policy = OccRetryPolicy::default().max_delay(Duration::from_secs(3));
        assert_eq!(policy.cap(1), Duration::from_millis(10));
        assert_eq!(policy.cap(200), Duration::from_secs(3));
    }
}
