//! diesel-async on PostgreSQL: [`AsyncPgConnection`]s, and their deadpool and bb8 pools,
//! whose every new connection logs in through a [`PgConnector`].
//!
//! diesel-async opens connections from a URL, with a password in it, over tokio-postgres
//! without TLS. Here the login is the connector's instead (a current token from its
//! [`TokenCache`](crate::TokenCache), TLS verified against the signing hostname, one retry
//! with a fresh token when the server rejects one), and diesel-async gets the logged-in
//! client through [`AsyncPgConnection::try_from`]:
//!
//! - [`connect`]: one connection, errors as this crate's [`Error`].
//! - [`manager`]: an `AsyncDieselConnectionManager` for diesel-async's deadpool and bb8
//!   pools (and any other pool built on it); [`manager_config`] for its
//!   [`ManagerConfig`], to choose the recycling method first.
//!
//! ```no_run
//! use rds_iam_auth::diesel_async::diesel_async::pooled_connection::deadpool::Pool;
//! use rds_iam_auth::diesel_async::diesel_async::{AsyncPgConnection, RunQueryDsl};
//! use rds_iam_auth::diesel_async::diesel;
//! use rds_iam_auth::{Endpoint, PgConnector, TokenCache, TokenGenerator};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = TokenCache::new(TokenGenerator::from_env());
//! let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?;
//! let connector = PgConnector::builder(cache, endpoint, "iam_user").database("appdb").build()?;
//!
//! let pool: Pool<AsyncPgConnection> =
//!     Pool::builder(rds_iam_auth::diesel_async::manager(connector)).max_size(16).build()?;
//! let mut conn = pool.get().await?;
//! diesel::sql_query("SELECT 1").execute(&mut conn).await?;
//! # Ok(()) }
//! ```
//!
//! Tokens are checked at login only: pooled connections outlive the token they logged in
//! with, and only new connections ask the cache. What a pool's manager returns on a failed
//! login is diesel's [`ConnectionError`] (diesel-async's `custom_setup` fixes that type),
//! see [`manager_config`] for what it keeps of this crate's [`Error`].
//!
//! Aurora DSQL closes connections after an hour: give bb8 the connector's
//! [`recommended_max_lifetime`](crate::connector::Connector::recommended_max_lifetime)
//! (`Builder::max_lifetime`); diesel-async's deadpool manager retires no connection by age,
//! add a `pre_recycle` hook on `metrics.age()` for it.
//!
//! diesel-async's MySQL backend is not served: it is built on mysql_async 0.36 (without
//! TLS in diesel-async 0.9.2), and [`MySqlConnector`](crate::MySqlConnector)'s connections
//! are mysql_async 0.37's, another type.
#![deny(missing_docs)]

use std::future::Future;
use std::pin::Pin;

use ::diesel::ConnectionError;
use ::diesel_async::AsyncPgConnection;
use ::diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};

use crate::connector::PgConnector;
use crate::engine::Engine;
use crate::error::{Detail, Error, Result};

/// Re-exported: the diesel-async this module was built with (`AsyncPgConnection`, its
/// `pooled_connection::{deadpool, bb8}` pools, `RunQueryDsl`).
pub use ::diesel_async;

/// Re-exported: the diesel (`~2.3.9`, the range diesel-async 0.9.2 requires) whose
/// [`ConnectionError`] the pools return. Depend on `diesel = "~2.3.9"` yourself, not `"2"`,
/// which can resolve to a diesel 2.4 beside this one.
pub use ::diesel;

/// Opens one [`AsyncPgConnection`], logged in by `connector`: a current token over verified
/// TLS, one retry with a fresh token if the server rejects it.
///
/// Errors are the connector's (branch on [`Error::kind`]); a failure of diesel-async's own
/// session setup after the login (`SET TIME ZONE 'UTC'`, `SET CLIENT_ENCODING TO 'UTF8'`) is
/// [`ErrorKind::Connect`](crate::ErrorKind::Connect) with diesel's error as the source.
///
/// ```no_run
/// use rds_iam_auth::diesel_async::diesel_async::RunQueryDsl;
/// use rds_iam_auth::diesel_async::diesel;
/// # async fn run(connector: rds_iam_auth::PgConnector) -> Result<(), Box<dyn std::error::Error>> {
/// let mut conn = rds_iam_auth::diesel_async::connect(&connector).await?;
/// diesel::sql_query("SELECT 1").execute(&mut conn).await?;
/// # Ok(()) }
/// ```
pub async fn connect(connector: &PgConnector) -> Result<AsyncPgConnection> {
    let client = connector.connect().await?;
    AsyncPgConnection::try_from(client)
        .await
        .map_err(|e| setup_failed(connector, e))
}

/// A [`ManagerConfig`] whose `custom_setup` opens each connection with [`connect`] (the URL
/// it is given is ignored: the connector holds every setting), with diesel-async's default
/// recycling method (`Verified`: one `SELECT 1` when a connection is taken from the pool).
/// Set `recycling_method` to change it, then give the config to
/// [`AsyncDieselConnectionManager::new_with_config`] (or call [`manager`]).
///
/// diesel-async's setup callback returns a diesel [`ConnectionError`]: a failed login is
/// [`ConnectionError::BadConnection`] holding this crate's message and its causes on one line
/// ([`Error::report`]: what failed, the likely causes, what to do; never a token). What is
/// lost is the typed error: its [`kind`](Error::kind), [`sqlstate`](Error::sqlstate),
/// [`endpoint`](Error::endpoint) and `source()` chain. For those, open connections with
/// [`connect`]. A failure of diesel-async's session setup keeps diesel's own variant
/// (`CouldntSetupConfiguration`).
///
/// ```no_run
/// use rds_iam_auth::diesel_async::diesel_async::AsyncPgConnection;
/// use rds_iam_auth::diesel_async::diesel_async::pooled_connection::{
///     AsyncDieselConnectionManager, RecyclingMethod, bb8,
/// };
/// # async fn run(connector: rds_iam_auth::PgConnector) -> Result<(), Box<dyn std::error::Error>> {
/// let max_lifetime = connector.recommended_max_lifetime(); // DSQL: under its 1 h limit
/// let mut config = rds_iam_auth::diesel_async::manager_config(connector);
/// config.recycling_method = RecyclingMethod::Fast; // no round trip at checkout
/// let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config("", config);
/// let pool: bb8::Pool<AsyncPgConnection> =
///     bb8::Pool::builder().max_lifetime(max_lifetime).build(manager).await?;
/// # let _ = pool; Ok(()) }
/// ```
pub fn manager_config(connector: PgConnector) -> ManagerConfig<AsyncPgConnection> {
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(move |_url| setup(connector.clone()));
    config
}

/// An `AsyncDieselConnectionManager` for diesel-async's pools (`pooled_connection::deadpool`,
/// `pooled_connection::bb8`) whose every new connection is opened with [`connect`]; the
/// [`manager_config`] with its defaults.
///
/// ```no_run
/// use rds_iam_auth::diesel_async::diesel_async::AsyncPgConnection;
/// use rds_iam_auth::diesel_async::diesel_async::pooled_connection::bb8::Pool;
/// # async fn run(connector: rds_iam_auth::PgConnector) -> Result<(), Box<dyn std::error::Error>> {
/// let manager = rds_iam_auth::diesel_async::manager(connector);
/// let pool: Pool<AsyncPgConnection> = Pool::builder().max_size(16).build(manager).await?;
/// let conn = pool.get().await?;
/// # drop(conn); Ok(()) }
/// ```
pub fn manager(connector: PgConnector) -> AsyncDieselConnectionManager<AsyncPgConnection> {
    // Empty: the URL is only handed to `custom_setup`, which does not read it (no password
    // ever goes into a URL).
    AsyncDieselConnectionManager::new_with_config("", manager_config(connector))
}

/// `custom_setup`'s future: `BoxFuture` spelled out, so the crate needs no futures crate.
type SetupFuture =
    Pin<Box<dyn Future<Output = diesel::ConnectionResult<AsyncPgConnection>> + Send>>;

fn setup(connector: PgConnector) -> SetupFuture {
    Box::pin(async move {
        let client = connector
            .connect()
            .await
            .map_err(|e| ConnectionError::BadConnection(e.report()))?;
        AsyncPgConnection::try_from(client).await
    })
}

/// A query's error is an Aurora DSQL optimistic-concurrency conflict when diesel-async
/// classed it [`SerializationFailure`](diesel::result::DatabaseErrorKind::SerializationFailure),
/// which it does by SQLSTATE `40001` alone (never by the message): so
/// [`dsql::retry_occ`](crate::dsql::retry_occ) retries a diesel-async transaction as it does a
/// tokio-postgres one.
impl crate::dsql::OccConflict for diesel::result::Error {
    fn is_occ_conflict(&self) -> bool {
        matches!(
            self,
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::SerializationFailure,
                _
            )
        )
    }
}

/// The login succeeded, diesel-async's `SET`s after it did not.
fn setup_failed(connector: &PgConnector, error: ConnectionError) -> Error {
    Detail::Connect {
        engine: Engine::Postgres,
        endpoint: connector.endpoint().to_string(),
        hint: format!(
            "the login succeeded, diesel-async's session setup after it failed ({error}): \
             check that the role may run `SET TIME ZONE` and `SET CLIENT_ENCODING`"
        )
        .into(),
        tls: false,
        code: None,
        source: Box::new(error),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error};

    use crate::dsql::OccConflict;

    fn database_error(kind: DatabaseErrorKind) -> Error {
        Error::DatabaseError(kind, Box::new("OC000".to_owned()))
    }

    #[test]
    fn only_a_serialization_failure_is_a_conflict() {
        assert!(database_error(DatabaseErrorKind::SerializationFailure).is_occ_conflict());
        // A message naming the conflict is not one (diesel-async classes by SQLSTATE).
        assert!(!database_error(DatabaseErrorKind::Unknown).is_occ_conflict());
        assert!(!database_error(DatabaseErrorKind::UniqueViolation).is_occ_conflict());
        assert!(!Error::NotFound.is_occ_conflict());
        // Found in a boxed error's chain too, as `?` in a closure makes it.
        let boxed: Box<dyn std::error::Error + Send + Sync> =
            Box::new(database_error(DatabaseErrorKind::SerializationFailure));
        assert!(boxed.is_occ_conflict());
    }
}
