//! bb8: a [`ManageConnection`] that opens `mysql_async::Conn`s through a [`MySqlConnector`].

use crate::mysql::MySqlConnection;
use ::bb8::ManageConnection;
use mysql_async::prelude::Queryable;

use crate::error::Error;
use crate::mysql::MySqlConnector;

/// bb8 connection manager: every new connection logs in with a current token from the
/// connector's cache (one retry with a fresh token if the server rejects it).
///
/// ```no_run
/// use rds_iam_auth::mysql_async::prelude::*;
/// use rds_iam_auth::pool::MySqlConnectionManager;
/// # async fn run(connector: rds_iam_auth::MySqlConnector) -> Result<(), Box<dyn std::error::Error>> {
/// let pool = rds_iam_auth::pool::bb8::Pool::builder()
///     .max_size(16)
///     .build(MySqlConnectionManager::new(connector))
///     .await?;
/// let mut conn = pool.get().await.map_err(|e| match e {
///     rds_iam_auth::pool::bb8::RunError::User(e) => e,
///     rds_iam_auth::pool::bb8::RunError::TimedOut => todo!("pool timeout"),
/// })?;
/// let one: Option<u8> = conn.query_first("SELECT 1").await?;
/// # let _ = one;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "bb8-mysql")))]
pub struct MySqlConnectionManager {
    connector: MySqlConnector,
}

impl MySqlConnectionManager {
    /// A manager opening connections with `connector`.
    pub fn new(connector: MySqlConnector) -> Self {
        Self { connector }
    }

    /// The connector.
    pub fn connector(&self) -> &MySqlConnector {
        &self.connector
    }
}

impl ManageConnection for MySqlConnectionManager {
    type Connection = MySqlConnection;
    type Error = Error;

    async fn connect(&self) -> Result<MySqlConnection, Error> {
        self.connector.connect().await
    }

    /// `COM_PING`; never a new login (the token is checked at login only).
    async fn is_valid(&self, conn: &mut MySqlConnection) -> Result<(), Error> {
        conn.ping().await.map_err(|source| Error::MySql {
            endpoint: self.connector.endpoint().to_string(),
            source,
        })
    }

    fn has_broken(&self, conn: &mut MySqlConnection) -> bool {
        conn.is_disconnected()
    }
}
