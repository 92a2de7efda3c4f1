//! The login routine: a current token, one attempt within the connect timeout, and after a
//! rejection one retry with a fresh token.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::Instrument;

use super::diagnose;
use crate::cache::TokenCache;
use crate::endpoint::Endpoint;
use crate::engine::Engine;
use crate::error::{Detail, Error, Result};
use crate::tls::TrustStore;
use crate::token::{Action, IamAuthToken, TokenRequest};

/// A login's settings, validated: what every attempt of a front end uses.
#[derive(Debug)]
// Named by the drivers' sealed traits when there are drivers; the proxy alone has none.
#[cfg_attr(
    not(any(feature = "postgres", feature = "mysql", feature = "__sqlx")),
    allow(unreachable_pub)
)]
pub struct Login {
    pub(crate) engine: Engine,
    pub(crate) request: TokenRequest,
    pub(crate) endpoint: Endpoint,
    pub(crate) database: Option<String>,
    #[cfg_attr(
        not(any(
            feature = "postgres",
            feature = "sqlx-0_9-postgres",
            feature = "sqlx-0_8-postgres"
        )),
        allow(dead_code)
    )]
    pub(crate) application_name: Option<String>,
    pub(crate) trust: TrustStore,
    /// Bounds each attempt (`None`: the front end has its own bound, as sqlx's acquire).
    pub(crate) connect_timeout: Option<Duration>,
    /// The setting that bounds an attempt, as a timeout's message names it.
    pub(super) timeout_setting: &'static str,
    /// The longest random wait before the retry.
    pub(super) retry_jitter: Duration,
    pub(super) max_concurrent_logins: Option<usize>,
    /// Bounds concurrent logins (`None`: unbounded).
    pub(super) logins: Option<Semaphore>,
    /// TCP keepalive and user timeout of the connections (`None`: the front end has none).
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    pub(crate) dead_peer_timeout: Option<Duration>,
}

impl Login {
    /// `true` for Aurora DSQL tokens.
    pub(crate) fn is_dsql(&self) -> bool {
        is_dsql(self.request.action())
    }

    /// How many logins run at once (`None`: unbounded).
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    pub(crate) fn max_concurrent_logins(&self) -> Option<usize> {
        self.max_concurrent_logins
    }

    /// Logs in with the cache's token; if the server rejects it, tells the cache to forget
    /// it, gets a fresh one and runs `attempt` exactly once more.
    ///
    /// `attempt` is one login with the token it is given; it reports a rejected token as an
    /// error built by [`driver_error`](Self::driver_error) with `rejected` set.
    ///
    /// Why retry: the server no longer accepts what the cache holds (rotated credentials, a
    /// token from before a failover, a cache shared with a stale clock). Why only once: a
    /// freshly signed token that is refused too will be refused again, and RDS throttles
    /// floods of failed IAM logins. Why wait first: a throttled login looks like a rejection,
    /// and clients rejected together must not retry together (see [`DEFAULT_RETRY_JITTER`](super::DEFAULT_RETRY_JITTER)).
    pub(crate) async fn run<T, F, Fut>(&self, cache: &TokenCache, attempt: F) -> Result<T>
    where
        F: Fn(IamAuthToken) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        // Held for both attempts: a retry is a new login as far as the server is concerned.
        let _permit = match &self.logins {
            Some(logins) => Some(
                logins
                    .acquire()
                    .await
                    .expect("the semaphore is never closed"),
            ),
            None => None,
        };
        // OpenTelemetry's database client attribute names; DEBUG: a span per login.
        let span = tracing::debug_span!(
            "rds_iam_auth.connect",
            db.system.name = self.engine.otel_system_name(),
            server.address = self.request.host(),
            server.port = self.request.port(),
            db.namespace = self.database.as_deref(),
            db.user = self.request.user(),
        );
        let started = crate::observe::Timer::start();
        let result = self
            .with_retry(cache, &attempt)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        let outcome = match &result {
            Ok(_) => {
                tracing::debug!("logged in");
                "success"
            }
            // Never a token: the report holds the endpoint, the user and the driver's words.
            Err(e) => {
                tracing::warn!(error = %e.report(), "IAM login failed");
                if e.is_rejected() {
                    "rejected"
                } else if e.is_timeout() {
                    "timeout"
                } else {
                    "failed"
                }
            }
        };
        crate::observe::login(self.engine, outcome, started);
        result
    }

    async fn with_retry<T, F, Fut>(&self, cache: &TokenCache, attempt: &F) -> Result<T>
    where
        F: Fn(IamAuthToken) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let rejected = match self.attempt(1, Duration::ZERO, cache, attempt).await {
            Err(Failed::Rejected(token)) => token,
            Err(Failed::Other(error)) => return Err(error),
            Ok(login) => return Ok(login),
        };
        tracing::info!(
            "the server rejected the IAM token: invalidating it and retrying once with a fresh one"
        );
        crate::observe::retry(self.engine);
        cache.invalidate(&self.request, &rejected.0);
        drop(rejected.0);
        match self.attempt(2, self.retry_delay(), cache, attempt).await {
            Ok(login) => Ok(login),
            Err(Failed::Rejected((_, error)) | Failed::Other(error)) => Err(error),
        }
    }

    /// Attempt `number` with the cache's current token after `delay`, token and delay
    /// included in the connect timeout: a credentials provider that hangs must not hang the
    /// login.
    async fn attempt<T, F, Fut>(
        &self,
        number: u32,
        delay: Duration,
        cache: &TokenCache,
        attempt: &F,
    ) -> std::result::Result<T, Failed>
    where
        F: Fn(IamAuthToken) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let run = async {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let token = cache.get(&self.request).await.map_err(Failed::Other)?;
            match attempt(token.clone()).await {
                Ok(login) => Ok(login),
                Err(error) if error.is_rejected() => Err(Failed::Rejected((token, error))),
                Err(error) => Err(Failed::Other(error)),
            }
        }
        .instrument(tracing::debug_span!(
            "rds_iam_auth.attempt",
            attempt = number
        ));
        match self.connect_timeout {
            Some(timeout) => tokio::time::timeout(timeout, run)
                .await
                .unwrap_or_else(|_| Err(Failed::Other(self.timed_out(timeout)))),
            None => run.await,
        }
    }

    /// A random wait in `[0, bound]` (full jitter: spreads retries evenly over the bound, AWS's
    /// advice for clients contending for one limit), the bound already capped at build to
    /// leave the retry time to connect.
    pub(super) fn retry_delay(&self) -> Duration {
        Duration::from_micros(fastrand::u64(0..=self.retry_jitter.as_micros() as u64))
    }

    /// The crate's error for a driver's error `source`: [`ErrorKind::Rejected`](crate::ErrorKind::Rejected)
    /// when the driver says the server refused the token itself, otherwise a failed
    /// connection whose message names the likely cause.
    pub(crate) fn driver_error(
        &self,
        source: impl std::error::Error + Send + Sync + 'static,
        rejected: bool,
    ) -> Error {
        let diagnosis = diagnose::diagnose(&source);
        if rejected {
            return Detail::AuthenticationRejected {
                engine: self.engine,
                host: self.request.host().to_owned(),
                port: self.request.port(),
                user: self.request.user().to_owned(),
                region: self.request.region().as_str().to_owned(),
                dsql: self.is_dsql(),
                code: diagnosis.code,
                source: Box::new(source),
            }
            .into();
        }
        let hint = match diagnosis.hint {
            Some(hint) => Cow::Borrowed(hint),
            None => Cow::Owned(crate::error::report(&source)),
        };
        Detail::Connect {
            engine: self.engine,
            endpoint: self.endpoint.to_string(),
            hint,
            tls: diagnosis.tls,
            code: diagnosis.code,
            source: Box::new(source),
        }
        .into()
    }

    fn timed_out(&self, timeout: Duration) -> Error {
        Detail::ConnectTimeout {
            engine: self.engine,
            endpoint: self.endpoint.to_string(),
            timeout,
            setting: self.timeout_setting,
        }
        .into()
    }
}

/// A failed attempt: the rejected token (worth one retry) with the error, or anything else.
enum Failed {
    Rejected((IamAuthToken, Error)),
    Other(Error),
}

pub(super) fn is_dsql(action: Action) -> bool {
    matches!(action, Action::DsqlConnect | Action::DsqlConnectAdmin)
}
