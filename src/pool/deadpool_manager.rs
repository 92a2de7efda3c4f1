//! deadpool: one [`Manager`](::deadpool::managed::Manager) for every engine, opening
//! connections through a [`Connector`].
//!
//! deadpool-postgres's own `Manager` logs every connection in with the one password of its
//! `tokio_postgres::Config`, and its `Connect` seam can only report `tokio_postgres::Error`
//! (so neither a credentials failure nor the rejected-token diagnostic could get through).
//! For PostgreSQL this manager yields the same objects (`deadpool_postgres::ClientWrapper`,
//! with its statement cache and `GenericClient`), with this crate's [`Error`].

use std::time::Duration;

use ::deadpool::managed::{self, Metrics, RecycleError, RecycleResult};

use crate::connector::{Connector, Driver};
use crate::error::Error;

/// A deadpool manager: every new connection logs in with a current token from the
/// connector's cache (one retry with a fresh token if the server rejects it).
///
/// Recycling checks that the connection is open, without a round trip where the driver can
/// tell by itself (tokio-postgres, like deadpool-postgres's `Fast` method), with a ping where
/// it cannot (mysql_async). Never a new login: a token is checked at login only, so a
/// connection outlives its token.
///
/// Recycling also refuses a connection older than the manager's
/// [maximum lifetime](Self::with_max_lifetime) (deadpool has none of its own): by default
/// [`DSQL_RECOMMENDED_MAX_LIFETIME`](crate::dsql::DSQL_RECOMMENDED_MAX_LIFETIME) (55 minutes) for
/// Aurora DSQL, which closes connections after 60, and none for RDS.
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "deadpool-postgres", feature = "deadpool-mysql")))
)]
pub struct Manager<D: Driver> {
    connector: Connector<D>,
    max_lifetime: Option<Duration>,
}

/// A deadpool pool of IAM-authenticated PostgreSQL connections
/// (`deadpool_postgres::ClientWrapper`s, which deref to `tokio_postgres::Client`).
///
/// ```no_run
/// use rds_iam_auth::pool::{PgManager, PgPool};
/// # async fn run(connector: rds_iam_auth::PgConnector) -> Result<(), Box<dyn std::error::Error>> {
/// let pool = PgPool::builder(PgManager::new(connector)).max_size(16).build()?;
/// let client = pool.get().await?; // derefs to tokio_postgres::Client
/// client.simple_query("SELECT 1").await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "deadpool-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "deadpool-postgres")))]
pub type PgPool = managed::Pool<PgManager>;
/// The deadpool manager for PostgreSQL; see [`PgPool`].
#[cfg(feature = "deadpool-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "deadpool-postgres")))]
pub type PgManager = Manager<crate::connector::postgres::Postgres>;

/// A deadpool pool of IAM-authenticated MySQL connections ([`MySqlConnection`]s).
///
/// ```no_run
/// use rds_iam_auth::mysql_async::prelude::*;
/// use rds_iam_auth::pool::{MySqlManager, MySqlPool};
/// # async fn run(connector: rds_iam_auth::MySqlConnector) -> Result<(), Box<dyn std::error::Error>> {
/// let pool = MySqlPool::builder(MySqlManager::new(connector)).max_size(16).build()?;
/// let mut conn = pool.get().await?;
/// let one: Option<u8> = conn.query_first("SELECT 1").await?;
/// # let _ = one;
/// # Ok(()) }
/// ```
///
/// [`MySqlConnection`]: crate::connector::MySqlConnection
#[cfg(feature = "deadpool-mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "deadpool-mysql")))]
pub type MySqlPool = managed::Pool<MySqlManager>;
/// The deadpool manager for MySQL; see [`MySqlPool`].
#[cfg(feature = "deadpool-mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "deadpool-mysql")))]
pub type MySqlManager = Manager<crate::connector::mysql::MySql>;

impl<D: Driver> Manager<D> {
    /// A manager opening connections with `connector`, with the connector's
    /// [recommended maximum lifetime](Connector::recommended_max_lifetime).
    pub fn new(connector: Connector<D>) -> Self {
        let max_lifetime = connector.recommended_max_lifetime();
        Self {
            connector,
            max_lifetime,
        }
    }

    /// Connections older than `max_lifetime` (since their login) are closed instead of
    /// being handed out again; `None`: no limit. A connection in use is not interrupted:
    /// keep the limit below the server's own by more than your longest checkout.
    pub fn with_max_lifetime(mut self, max_lifetime: Option<Duration>) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// The maximum connection lifetime (see [`with_max_lifetime`](Self::with_max_lifetime)).
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
    }

    /// The connector.
    pub fn connector(&self) -> &Connector<D> {
        &self.connector
    }
}

impl<D: Driver> Clone for Manager<D> {
    fn clone(&self) -> Self {
        Self {
            connector: self.connector.clone(),
            max_lifetime: self.max_lifetime,
        }
    }
}

impl<D: Driver> std::fmt::Debug for Manager<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("connector", &self.connector)
            .field("max_lifetime", &self.max_lifetime)
            .finish()
    }
}

pub(crate) mod sealed {
    use crate::connector::Driver;

    /// What deadpool keeps for an engine, when it is not the engine's connection itself.
    pub trait Pooled: Driver {
        /// The pooled object.
        type Object: Send + 'static;
        /// The object for a new login.
        fn object(login: Self::Login) -> Self::Object;
        /// The connection inside the object.
        fn pooled_connection(object: &mut Self::Object) -> &mut Self::Connection;
    }
}

/// `ClientWrapper` adds deadpool-postgres's statement cache and keeps the connection task.
#[cfg(feature = "deadpool-postgres")]
impl sealed::Pooled for crate::connector::postgres::Postgres {
    type Object = ::deadpool_postgres::ClientWrapper;
    fn object((client, task): Self::Login) -> Self::Object {
        ::deadpool_postgres::ClientWrapper::new(client, task)
    }
    fn pooled_connection(object: &mut Self::Object) -> &mut tokio_postgres::Client {
        object
    }
}

#[cfg(feature = "deadpool-mysql")]
impl sealed::Pooled for crate::connector::mysql::MySql {
    type Object = crate::connector::mysql::MySqlConnection;
    fn object(login: Self::Login) -> Self::Object {
        login
    }
    fn pooled_connection(object: &mut Self::Object) -> &mut Self::Object {
        object
    }
}

impl<D: sealed::Pooled> managed::Manager for Manager<D> {
    type Type = D::Object;
    type Error = Error;

    async fn create(&self) -> Result<D::Object, Error> {
        self.connector.login().await.map(D::object)
    }

    async fn recycle(&self, object: &mut D::Object, metrics: &Metrics) -> RecycleResult<Error> {
        if self.max_lifetime.is_some_and(|max| metrics.age() >= max) {
            return Err(RecycleError::message(
                "connection older than the pool's max lifetime",
            ));
        }
        let connection = D::pooled_connection(object);
        if D::is_closed(connection) {
            return Err(RecycleError::message("connection closed"));
        }
        if D::PING_BEFORE_REUSE {
            self.connector
                .ping(connection)
                .await
                .map_err(RecycleError::Backend)?;
        }
        Ok(())
    }
}
