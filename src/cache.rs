// STUB: replaced by the real cache on merge
//! Token cache (stub with the real cache's signatures; every `get` signs a new token).

use crate::error::Result;
use crate::generator::TokenGenerator;
use crate::request::TokenRequest;
use crate::token::IamAuthToken;

/// Hands out valid tokens. Clones share the cache.
#[derive(Clone, Debug)]
pub struct TokenCache {
    generator: TokenGenerator,
}

impl TokenCache {
    /// A cache over `generator`.
    pub fn new(generator: TokenGenerator) -> Self {
        Self { generator }
    }

    /// A valid token for `request`.
    pub async fn get(&self, request: &TokenRequest) -> Result<IamAuthToken> {
        self.generator.generate(request).await
    }

    /// Forgets `rejected` after the server rejected it.
    pub fn invalidate(&self, _request: &TokenRequest, _rejected: &IamAuthToken) {
        self.generator.invalidate_credentials();
    }

    /// The generator behind the cache.
    pub fn generator(&self) -> &TokenGenerator {
        &self.generator
    }
}
