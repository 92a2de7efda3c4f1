//! The standard AWS credentials chain, with nothing loaded before a provider needs it.
//!
//! `aws_config::defaults(..).load()` builds the SDK's default HTTPS client (hyper, rustls
//! with aws-lc-rs) and every operation client the chain holds (IMDS, and STS / SSO when
//! configured) validates it as it is built: the default client answers that validation by
//! building its TLS connector, which reads and parses every file of the system certificate
//! directory. A token signed from environment, profile or process credentials makes no
//! HTTPS call at all, and the database connectors trust their own `TrustStore`: that work,
//! a few milliseconds of a cold start, is wasted for them.
//!
//! [`LazyHttpsClient`] is the same default client, built on the first connection a
//! provider actually opens (ECS, IMDS, STS for web identity or assume-role, SSO), and never
//! otherwise. [`LazyDefaultChain`] goes one step further: the environment's credentials
//! (the chain's first provider) are read without loading the rest of the chain at all.
//! Every provider of the chain stays, in the same order, with the same client.

use std::sync::OnceLock;

use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::config_bag::ConfigBag;

/// The SDK's default HTTPS client, built on first use.
///
/// Skips only the eager connector build of `validate_base_client_config` (its purpose is
/// to move the certificate loading from the first request to client construction, the
/// opposite of what a cold start wants); every connection goes through the very client
/// `aws-config` would have used (same TLS provider, proxy settings from the environment,
/// timeouts), created once and shared by every provider.
#[derive(Debug, Default)]
pub(crate) struct LazyHttpsClient {
    client: OnceLock<Option<SharedHttpClient>>,
}

impl LazyHttpsClient {
    /// The client as a [`SharedHttpClient`], ready for `ConfigLoader::http_client`.
    pub(crate) fn shared() -> SharedHttpClient {
        Self::default().into_shared()
    }

    /// The default client of this `aws-smithy-runtime`, as its runtime plugin installs it;
    /// `None` only in a build without the default HTTPS client (which aws-config's default
    /// features include).
    fn client(&self) -> Option<&SharedHttpClient> {
        self.client
            .get_or_init(|| {
                let plugin = aws_smithy_runtime::client::defaults::default_http_client_plugin_v2(
                    BehaviorVersion::latest(),
                )?;
                plugin
                    .runtime_components(&RuntimeComponentsBuilder::new("rds-iam-auth lazy https"))
                    .http_client()
            })
            .as_ref()
    }
}

impl HttpClient for LazyHttpsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        match self.client() {
            Some(client) => client.http_connector(settings, components),
            // What the SDK itself does without an HTTP client: every request fails with
            // this message, and providers that need no HTTP are unaffected.
            None => SharedHttpConnector::new(NoHttpsClient),
        }
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        // Only reached when an operation is about to be sent: the real client by then.
        match self.client() {
            Some(client) => client.validate_final_config(runtime_components, cfg),
            None => Ok(()),
        }
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        // Asked for the user agent of a request being sent: the client exists by then.
        self.client().and_then(|client| client.connector_metadata())
    }
}

/// The connector of a build without an HTTPS client: refuses every request, saying why.
#[derive(Debug)]
struct NoHttpsClient;

impl aws_smithy_runtime_api::client::http::HttpConnector for NoHttpsClient {
    fn call(
        &self,
        _request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Err(
            aws_smithy_runtime_api::client::result::ConnectorError::other(
                "no default HTTPS client in this build of aws-smithy-runtime".into(),
                None,
            ),
        ))
    }
}

/// The SDK config `aws_config::defaults(latest)` loads (credentials chain, retry and
/// timeout settings, FIPS / dual-stack endpoints for STS and SSO), with the HTTPS client
/// lazy and, when given, the region instead of its lookup.
pub(crate) async fn load(region: Option<&crate::region::Region>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(LazyHttpsClient::shared());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.as_str().to_owned()));
    }
    loader.load().await
}

/// The standard credentials chain, loaded when first asked, and only when the environment
/// does not answer.
///
/// The chain's first provider is the environment's (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`: a Lambda function's, a CI job's): when it
/// answers, the chain answers the same without asking anyone else, so the rest (profile
/// files, region, retry and FIPS settings, the IMDS, ECS, STS and SSO clients) is not
/// loaded. Otherwise the whole chain is loaded once ([`load`]) and asked, environment
/// first again, so every answer and every error is the chain's own.
#[derive(Debug)]
pub(crate) struct LazyDefaultChain {
    region: Option<crate::region::Region>,
    environment: aws_config::environment::EnvironmentVariableCredentialsProvider,
    chain: tokio::sync::OnceCell<Option<aws_credential_types::provider::SharedCredentialsProvider>>,
}

impl LazyDefaultChain {
    /// The chain, with `region` for its STS / SSO calls (else looked up when loaded).
    pub(crate) fn new(region: Option<&crate::region::Region>) -> Self {
        Self {
            region: region.cloned(),
            environment: aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            chain: tokio::sync::OnceCell::new(),
        }
    }

    async fn credentials(&self) -> aws_credential_types::provider::Result {
        use aws_credential_types::provider::ProvideCredentials;
        if let Ok(credentials) = self.environment.provide_credentials().await {
            return Ok(credentials);
        }
        let chain = self
            .chain
            .get_or_init(|| async { load(self.region.as_ref()).await.credentials_provider() })
            .await;
        match chain {
            Some(chain) => chain.provide_credentials().await,
            None => Err(
                aws_credential_types::provider::error::CredentialsError::not_loaded(
                    "the AWS SDK config has no credentials provider",
                ),
            ),
        }
    }
}

impl aws_credential_types::provider::ProvideCredentials for LazyDefaultChain {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(self.credentials())
    }
}
