//! deadpool: a [`Manager`](deadpool::managed::Manager) that opens `mysql_async::Conn`s
//! through a [`MySqlConnector`].
//!
//! mysql_async's own `Pool` logs every connection in with the one password of its `Opts`,
//! which an IAM token outlives by 15 minutes at most; this manager asks the connector, so
//! each new physical connection gets the cache's current token.

use crate::mysql::MySqlConnection;
use ::deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use mysql_async::prelude::Queryable;

use crate::error::Error;
use crate::mysql::MySqlConnector;

/// A deadpool pool of IAM-authenticated MySQL connections.
///
/// ```no_run
/// use rds_iam_auth::mysql_async::prelude::*;
/// use rds_iam_auth::pool::{MySqlManager, MySqlPool};
/// # async fn run(connector: rds_iam_auth::MySqlConnector) -> Result<(), Box<dyn std::error::Error>> {
/// let pool = MySqlPool::builder(MySqlManager::new(connector)).max_size(16).build()?;
/// let mut conn = pool.get().await?; // derefs to mysql_async::Conn
/// let one: Option<u8> = conn.query_first("SELECT 1").await?;
/// # let _ = one;
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "deadpool-mysql")))]
pub type MySqlPool = managed::Pool<MySqlManager>;

/// Creates each pooled connection with [`MySqlConnector::connect`]: a current token from
/// the cache, one retry with a fresh token if the server rejects it.
///
/// Recycling pings the server (`COM_PING`, one round trip): mysql_async has no cheaper
/// way to notice a connection the server closed. It never logs in again (a token is
/// checked at login only, so a connection outlives its token), and it does not reset the
/// session: on servers without `COM_RESET_CONNECTION` that would log in again with the
/// connection's first, possibly expired, token.
#[derive(Debug, Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "deadpool-mysql")))]
pub struct MySqlManager {
    connector: MySqlConnector,
}

impl MySqlManager {
    /// A manager opening connections with `connector`.
    pub fn new(connector: MySqlConnector) -> Self {
        Self { connector }
    }

    /// The connector.
    pub fn connector(&self) -> &MySqlConnector {
        &self.connector
    }
}

impl managed::Manager for MySqlManager {
    type Type = MySqlConnection;
    type Error = Error;

    async fn create(&self) -> Result<MySqlConnection, Error> {
        self.connector.connect().await
    }

    async fn recycle(&self, conn: &mut MySqlConnection, _: &Metrics) -> RecycleResult<Error> {
        if conn.is_disconnected() {
            return Err(RecycleError::message("connection closed"));
        }
        conn.ping().await.map_err(|source| {
            RecycleError::Backend(Error::MySql {
                endpoint: self.connector.endpoint().to_string(),
                source,
            })
        })
    }
}
