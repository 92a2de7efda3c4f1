//! The token generator: credentials provider + clock + signer.

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::credentials::CachedCredentials;
use crate::error::Result;
#[cfg(feature = "aws-config")]
use crate::error::{Detail, Error};
use crate::observe;
use crate::token::IamAuthToken;
use crate::token::TokenRequest;
use crate::token::TokenSigner;

/// Mints IAM auth tokens from a credentials provider. Cheap to clone; clones share the
/// remembered credentials and signing keys.
///
/// Signing is local computation (no network call). Credentials come from the provider
/// and are reused until five minutes before they expire (or for 15 minutes when they
/// carry no expiry), so a role's rotated credentials are picked up in time.
///
/// ```
/// use aws_credential_types::Credentials;
/// use rds_iam_auth::clock::FixedClock;
/// use rds_iam_auth::{Endpoint, TokenGenerator, TokenRequest};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// # tokio_test_block_on(async {
/// let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "example");
/// let generator = TokenGenerator::builder(credentials)
///     .clock(FixedClock::new(UNIX_EPOCH + Duration::from_secs(1_705_322_096)))
///     .build();
/// let endpoint = Endpoint::new("mydb.cluster-abc.us-east-1.rds.amazonaws.com", 5432)?;
/// let request = TokenRequest::rds(&endpoint, "iam_user").build()?;
/// let token = generator.generate(&request).await?;
/// assert!(token.expose().contains("X-Amz-Signature="));
/// assert!(!format!("{token:?}").contains("X-Amz-Signature"));
/// # Ok::<(), rds_iam_auth::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TokenGenerator {
    credentials: CachedCredentials,
    clock: SharedClock,
    signer: Arc<TokenSigner>,
}

impl TokenGenerator {
    /// A builder for a generator whose credentials come from `provider`: any
    /// aws-credential-types provider (a `SharedCredentialsProvider` too), or `Credentials`
    /// itself. Optionally set a clock.
    pub fn builder(provider: impl ProvideCredentials + 'static) -> TokenGeneratorBuilder {
        TokenGeneratorBuilder {
            provider: SharedCredentialsProvider::new(provider),
            clock: None,
            credentials_timeout: None,
        }
    }

    /// A generator using `provider` and the system clock.
    pub fn new(provider: impl ProvideCredentials + 'static) -> Self {
        Self::builder(provider).build()
    }

    /// A generator using the credentials of the environment variables `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` only: where AWS Lambda puts the
    /// execution role's, and the first provider of the standard chain. Needs no
    /// `aws-config`: a Lambda function built without that feature
    /// (`--no-default-features`) is smaller and starts faster (see the README's "Lambda cold
    /// start"). Anywhere else (profiles, SSO, ECS, EC2), use `from_env` (feature `aws-config`).
    ///
    /// The variables are read at each credentials resolution (the generator remembers the
    /// credentials, see above); when they are unset, signing fails with
    /// an error of kind [`Credentials`](crate::ErrorKind::Credentials), naming the variable.
    pub fn from_env_vars() -> Self {
        Self::new(crate::credentials::env::EnvVarCredentials)
    }

    /// A generator using the standard AWS credentials chain (environment, profile, SSO,
    /// web identity, ECS, IMDS), loaded once.
    #[cfg(feature = "aws-config")]
    #[cfg_attr(docsrs, doc(cfg(feature = "aws-config")))]
    ///
    /// Nothing a token does not need is loaded up front: when the environment holds
    /// credentials (the chain's first provider, and a Lambda function's case) the rest of
    /// the chain is never loaded; otherwise it is loaded at the first token, and
    /// aws-config's HTTPS client (with the system certificates it reads) is built only when
    /// a provider makes an HTTPS call (ECS, IMDS, STS, SSO).
    ///
    /// Neither waits nor fails: the chain is only set up here, and resolved (with its errors)
    /// when the first token is signed.
    pub fn from_env() -> Self {
        Self::builder_from_env(None).build()
    }

    /// A builder for a generator using the standard AWS credentials chain, as
    /// [`from_env`](Self::from_env) does, to set a clock or a credentials timeout too.
    ///
    /// `region`: the region the AWS config would otherwise look up (environment, profile,
    /// then the EC2 metadata service), when it is already known: it spares that lookup,
    /// which off AWS waits for a metadata service that is not there. The region serves the
    /// STS calls of web-identity and assume-role credentials.
    #[cfg(feature = "aws-config")]
    #[cfg_attr(docsrs, doc(cfg(feature = "aws-config")))]
    pub fn builder_from_env(region: Option<&crate::region::Region>) -> TokenGeneratorBuilder {
        Self::builder(crate::credentials::aws_config::LazyDefaultChain::new(
            region,
        ))
    }

    /// A generator using the credentials provider of an already loaded AWS SDK config.
    #[cfg(feature = "aws-config")]
    #[cfg_attr(docsrs, doc(cfg(feature = "aws-config")))]
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Result<Self> {
        let provider = config.credentials_provider().ok_or_else(|| {
            Error::from(Detail::Credentials(
                aws_credential_types::provider::error::CredentialsError::not_loaded(
                    "the AWS SDK config has no credentials provider",
                ),
            ))
        })?;
        Ok(Self::new(provider))
    }

    /// Mints a token for `request`, signed now.
    ///
    /// Resolving credentials is bounded by the credentials timeout (5 s by default, see
    /// [`TokenGeneratorBuilder::credentials_timeout`]).
    pub async fn generate(&self, request: &TokenRequest) -> Result<IamAuthToken> {
        use tracing::Instrument;
        let span = tracing::debug_span!(
            "rds_iam_auth.sign",
            server.address = request.host(),
            server.port = request.port(),
            db.user = request.user(),
        );
        async {
            let started = observe::Timer::start();
            let credentials = self
                .credentials
                .get(self.clock.as_ref())
                .instrument(tracing::trace_span!("rds_iam_auth.credentials"))
                .await;
            observe::credentials_resolved(started);
            let (credentials, generation) =
                credentials.inspect_err(|e| tracing::warn!(error = %e, "no AWS credentials"))?;
            // The access key id is not secret (the token itself carries it); nothing else is logged.
            tracing::trace!(
                access_key_id = credentials.access_key_id(),
                "credentials resolved"
            );
            let token = self.signer.sign(&credentials, request, self.clock.now())?;
            observe::token_signed(started);
            Ok(token.with_credentials_generation(generation))
        }
        .instrument(span)
        .await
    }

    /// Forgets the remembered credentials if they come from resolution `generation` or an
    /// earlier one (those that signed a token the database rejected); see the token cache's
    /// `invalidate`.
    /// `true` when they were dropped.
    pub(crate) fn invalidate_credentials_up_to(&self, generation: u64) -> bool {
        self.credentials
            .invalidate_up_to(generation, self.clock.instant())
    }

    /// The credentials provider, for the doctor's own look at what it returns.
    #[cfg_attr(not(feature = "doctor"), allow(dead_code))]
    pub(crate) fn provider(&self) -> &SharedCredentialsProvider {
        self.credentials.provider()
    }

    /// The clock tokens are stamped with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Forgets the remembered credentials, so that the next token is signed with freshly
    /// resolved ones (for example after the database rejected a token).
    pub fn invalidate_credentials(&self) {
        self.credentials.invalidate();
    }
}

/// Configures a [`TokenGenerator`]; see [`TokenGenerator::builder`].
#[derive(Debug)]
pub struct TokenGeneratorBuilder {
    provider: SharedCredentialsProvider,
    clock: Option<SharedClock>,
    credentials_timeout: Option<Duration>,
}

impl TokenGeneratorBuilder {
    /// The clock (default: the system clock). Fix it to reproduce a token.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// How long one credentials resolution may take before [`generate`](TokenGenerator::generate)
    /// (and so `TokenCache::get`) fails with
    /// an error of kind [`Credentials`](crate::ErrorKind::Credentials) for which
    /// [`is_timeout`](crate::Error::is_timeout) holds (default
    /// [`DEFAULT_CREDENTIALS_TIMEOUT`](super::DEFAULT_CREDENTIALS_TIMEOUT), 5 s, as aws-config's
    /// own). Every caller waiting on that resolution, whatever its cache key, gets the same
    /// outcome. A timer is armed only for a provider that does not answer at once; it needs a
    /// tokio runtime with time enabled.
    pub fn credentials_timeout(mut self, timeout: Duration) -> Self {
        self.credentials_timeout = Some(timeout);
        self
    }

    /// The generator.
    pub fn build(self) -> TokenGenerator {
        TokenGenerator {
            credentials: CachedCredentials::new(
                self.provider,
                self.credentials_timeout
                    .unwrap_or(crate::credentials::DEFAULT_CREDENTIALS_TIMEOUT),
            ),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            signer: Arc::new(TokenSigner::new()),
        }
    }
}
