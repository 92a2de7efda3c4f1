//! bb8: one [`ManageConnection`] for every engine, opening connections through a
//! [`Connector`].

use ::bb8::ManageConnection;

use crate::connector::{Connector, Driver};
use crate::error::Error;

/// bb8's default `max_lifetime` (bb8 0.9 `Builder::default`).
const BB8_DEFAULT_MAX_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 60);

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
///
/// bb8 retires old connections itself (`Builder::max_lifetime`, 30 minutes by default): for
/// Aurora DSQL, which closes connections after 60 minutes, pass
/// [`recommended_max_lifetime`](Self::recommended_max_lifetime) to be sure the limit stays
/// below:
///
/// ```no_run
/// use rds_iam_auth::pool::{PgConnectionManager, bb8};
/// # async fn run(connector: rds_iam_auth::PgConnector) -> Result<(), Box<dyn std::error::Error>> {
/// let manager = PgConnectionManager::new(connector);
/// let pool = bb8::Pool::builder()
///     .max_lifetime(manager.recommended_max_lifetime())
///     .build(manager)
///     .await?;
/// # let _ = pool;
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(any(feature = "bb8-postgres", feature = "bb8-mysql"))))]
pub struct ConnectionManager<D: Driver> {
    connector: Connector<D>,
}

/// The bb8 manager for PostgreSQL: pools of `tokio_postgres::Client`.
#[cfg(feature = "bb8-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "bb8-postgres")))]
pub type PgConnectionManager = ConnectionManager<crate::connector::postgres::Postgres>;

/// The bb8 manager for MySQL: pools of [`MySqlConnection`](crate::connector::MySqlConnection).
#[cfg(feature = "bb8-mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "bb8-mysql")))]
pub type MySqlConnectionManager = ConnectionManager<crate::connector::mysql::MySql>;

impl<D: Driver> ConnectionManager<D> {
    /// A manager opening connections with `connector`.
    pub fn new(connector: Connector<D>) -> Self {
        Self { connector }
    }

    /// The connector.
    pub fn connector(&self) -> &Connector<D> {
        &self.connector
    }

    /// The value for bb8's `Builder::max_lifetime`: the connector's
    /// [recommended maximum lifetime](Connector::recommended_max_lifetime) (55 minutes for
    /// Aurora DSQL), else bb8's own default (30 minutes), so that passing it never removes
    /// bb8's limit.
    pub fn recommended_max_lifetime(&self) -> Option<std::time::Duration> {
        Some(
            self.connector
                .recommended_max_lifetime()
                .unwrap_or(BB8_DEFAULT_MAX_LIFETIME),
        )
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
        self.connector.ping(connection).await
    }

    fn has_broken(&self, connection: &mut D::Connection) -> bool {
        D::is_closed(connection)
    }
}
