//! bb8: a [`ManageConnection`] that opens connections through a [`PgConnector`].

use ::bb8::ManageConnection;
use tokio_postgres::Client;

use crate::error::Error;
use crate::postgres::PgConnector;

/// bb8 connection manager: every new connection logs in with a current token from the
/// connector's cache (one retry with a fresh token if the server rejects it).
///
/// ```no_run
/// use rds_iam_auth::pool::PgConnectionManager;
/// # async fn run(connector: rds_iam_auth::PgConnector) -> Result<(), Box<dyn std::error::Error>> {
/// let pool = rds_iam_auth::pool::bb8::Pool::builder()
///     .max_size(16)
///     .build(PgConnectionManager::new(connector))
///     .await?;
/// let client = pool.get().await.map_err(|e| match e {
///     rds_iam_auth::pool::bb8::RunError::User(e) => e,
///     rds_iam_auth::pool::bb8::RunError::TimedOut => todo!("pool timeout"),
/// })?;
/// client.simple_query("SELECT 1").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "bb8-postgres")))]
pub struct PgConnectionManager {
    connector: PgConnector,
}

impl PgConnectionManager {
    /// A manager opening connections with `connector`.
    pub fn new(connector: PgConnector) -> Self {
        Self { connector }
    }

    /// The connector.
    pub fn connector(&self) -> &PgConnector {
        &self.connector
    }
}

impl ManageConnection for PgConnectionManager {
    type Connection = Client;
    type Error = Error;

    async fn connect(&self) -> Result<Client, Error> {
        self.connector.connect().await
    }

    async fn is_valid(&self, client: &mut Client) -> Result<(), Error> {
        client
            .simple_query("")
            .await
            .map(|_| ())
            .map_err(|source| Error::Postgres {
                endpoint: self.connector.endpoint().to_string(),
                source,
            })
    }

    fn has_broken(&self, client: &mut Client) -> bool {
        client.is_closed()
    }
}
