//! bb8: one [`ManageConnection`] for every engine, opening connections through a
//! [`Connector`].

use ::bb8::ManageConnection;

use crate::connector::{Connector, Driver};
use crate::error::Error;

/// bb8 connection manager: every new connection logs in with a current token from the
/// connector's cache (one retry with a fresh token if the server rejects it). A checked-out
/// connection is tested with one round trip (`SELECT` of nothing, `COM_PING`), never a new
/// login: the token is checked at login only.
///
/// ```no_run
/// use rds_iam_auth::pool::{PgConnectionManager, bb8};
/// # async fn run(connector: rds_iam_auth::PgConnector) -> Result<(), Box<dyn std::error::Error>> {
/// let pool = bb8::Pool::builder()
///     .max_size(16)
///     .build(PgConnectionManager::new(connector))
///     .await?;
/// let client = pool.get().await?; // derefs to tokio_postgres::Client
/// client.simple_query("SELECT 1").await?;
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(any(feature = "bb8-postgres", feature = "bb8-mysql"))))]
pub struct ConnectionManager<D: Driver> {
    connector: Connector<D>,
}

/// The bb8 manager for PostgreSQL: pools of `tokio_postgres::Client`.
#[cfg(feature = "bb8-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "bb8-postgres")))]
pub type PgConnectionManager = ConnectionManager<crate::postgres::Postgres>;

/// The bb8 manager for MySQL: pools of [`MySqlConnection`](crate::MySqlConnection).
#[cfg(feature = "bb8-mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "bb8-mysql")))]
pub type MySqlConnectionManager = ConnectionManager<crate::mysql::MySql>;

impl<D: Driver> ConnectionManager<D> {
    /// A manager opening connections with `connector`.
    pub fn new(connector: Connector<D>) -> Self {
        Self { connector }
    }

    /// The connector.
    pub fn connector(&self) -> &Connector<D> {
        &self.connector
    }
}

impl<D: Driver> Clone for ConnectionManager<D> {
    fn clone(&self) -> Self {
        Self::new(self.connector.clone())
    }
}

impl<D: Driver> std::fmt::Debug for ConnectionManager<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionManager")
            .field("connector", &self.connector)
            .finish()
    }
}

impl<D: Driver> ManageConnection for ConnectionManager<D> {
    type Connection = D::Connection;
    type Error = Error;

    async fn connect(&self) -> Result<D::Connection, Error> {
        self.connector.connect().await
    }

    async fn is_valid(&self, connection: &mut D::Connection) -> Result<(), Error> {
        D::ping(connection)
            .await
            .map_err(|e| self.connector.driver_error(e))
    }

    fn has_broken(&self, connection: &mut D::Connection) -> bool {
        D::is_closed(connection)
    }
}
