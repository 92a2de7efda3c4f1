//! deadpool: a [`Manager`](deadpool::managed::Manager) that opens connections through a
//! [`PgConnector`].
//!
//! deadpool-postgres's own `Manager` logs every connection in with the one password of its
//! `tokio_postgres::Config`, and its `Connect` seam can only report `tokio_postgres::Error`
//! (so neither a credentials failure nor the rejected-token diagnostic could get through).
//! This manager yields the same objects (`deadpool_postgres::ClientWrapper`, with its
//! statement cache and `GenericClient`), with this crate's [`Error`].

use ::deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use ::deadpool_postgres::ClientWrapper;

use crate::error::Error;
use crate::postgres::PgConnector;

/// A deadpool pool of IAM-authenticated PostgreSQL connections.
///
/// ```no_run
/// use rds_iam_auth::pool::{PgManager, PgPool};
/// # async fn run(connector: rds_iam_auth::PgConnector) -> Result<(), Box<dyn std::error::Error>> {
/// let pool = PgPool::builder(PgManager::new(connector)).max_size(16).build()?;
/// let client = pool.get().await?; // derefs to tokio_postgres::Client
/// client.simple_query("SELECT 1").await?;
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "deadpool-postgres")))]
pub type PgPool = managed::Pool<PgManager>;

/// Creates each pooled connection with [`PgConnector::connect_with_task`]: a current token
/// from the cache, one retry with a fresh token if the server rejects it.
///
/// Recycling only checks that the connection is open (deadpool-postgres's `Fast` method):
/// a token is checked at login only, so a connection outlives its token.
#[derive(Debug, Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "deadpool-postgres")))]
pub struct PgManager {
    connector: PgConnector,
}

impl PgManager {
    /// A manager opening connections with `connector`.
    pub fn new(connector: PgConnector) -> Self {
        Self { connector }
    }

    /// The connector.
    pub fn connector(&self) -> &PgConnector {
        &self.connector
    }
}

impl managed::Manager for PgManager {
    type Type = ClientWrapper;
    type Error = Error;

    async fn create(&self) -> Result<ClientWrapper, Error> {
        let (client, task) = self.connector.connect_with_task().await?;
        Ok(ClientWrapper::new(client, task))
    }

    async fn recycle(&self, client: &mut ClientWrapper, _: &Metrics) -> RecycleResult<Error> {
        if client.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        Ok(())
    }
}
