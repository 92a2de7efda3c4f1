//! MySQL's part of the sqlx pools: `IamMySqlPool`, verified TLS with the cleartext plugin,
//! and `1045` as the rejection worth a retry.

use super::pool::engine::{ConnectOptions, IamDatabase, sealed};
use super::pool::{IamPool, IamPoolBuilder};
use super::sqlx;
use crate::engine::Engine;
use crate::error::ServerCode;
use crate::login::Login;

#[doc = concat!("A sqlx ", sqlx_version!(), " `MySqlPool` whose new connections log in with current IAM tokens.")]
///
/// ```no_run
#[doc = concat!("use rds_iam_auth::", sqlx_module!(), "::{IamMySqlPool, sqlx};")]
/// use rds_iam_auth::{Endpoint, TokenCache, TokenGenerator};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = TokenCache::new(TokenGenerator::from_env());
/// let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 3306)?;
/// let pool = IamMySqlPool::builder(cache, endpoint, "iam_user")
///     .database("appdb")
///     .build()
///     .await?;
/// let mut conn = pool.acquire().await?;
/// let version: String = sqlx::query_scalar("SELECT version()")
///     .fetch_one(&mut *conn)
///     .await?;
/// # let _ = version;
/// # Ok(()) }
/// ```
///
/// Its methods are [`IamPool`]'s (this page shows them only with JavaScript):
/// [`builder`](IamPool::builder), [`builder_from_env`](IamPool::builder_from_env),
/// [`builder_from_vars`](IamPool::builder_from_vars), [`acquire`](IamPool::acquire),
/// [`pool`](IamPool::pool) (also through `Deref`: every `sqlx::Pool` method),
/// [`cache`](IamPool::cache), [`token_request`](IamPool::token_request),
/// [`endpoint`](IamPool::endpoint).
pub type IamMySqlPool = IamPool<sqlx::MySql>;

/// The builder of an [`IamMySqlPool`].
pub type IamMySqlPoolBuilder = IamPoolBuilder<sqlx::MySql>;

impl IamDatabase for sqlx::MySql {}

impl sealed::IamDatabase for sqlx::MySql {
    const ENGINE: Engine = Engine::MySql;

    fn base_options(login: &Login) -> ConnectOptions<Self> {
        use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
        let mut options = MySqlConnectOptions::new()
            .host(login.endpoint.host())
            .port(login.endpoint.port())
            .username(login.request.user())
            // `VerifyIdentity`: chain and host name. sqlx sends a cleartext password under
            // `Preferred` or `Disabled` too (it only logs a warning): the cleartext plugin is
            // enabled here together with verified TLS, and there is no way to weaken it.
            .ssl_mode(MySqlSslMode::VerifyIdentity)
            .ssl_ca_from_pem(login.trust.pem())
            // RDS switches IAM users to `mysql_clear_password`: the token is the password.
            .enable_cleartext_plugin(true);
        if let Some(db) = &login.database {
            options = options.database(db);
        }
        options
    }

    fn with_password(base: &ConnectOptions<Self>, password: &str) -> ConnectOptions<Self> {
        base.clone().password(password)
    }

    /// `ER_ACCESS_DENIED_ERROR` (1045): a bad, expired or misdirected token, or a user not set
    /// up for IAM.
    fn is_rejected(error: &sqlx::Error) -> bool {
        match error {
            sqlx::Error::Database(e) => Self::server_code(&**e) == Some(ServerCode::MySql(1045)),
            _ => false,
        }
    }

    #[allow(private_interfaces)] // a sealed trait's method
    fn server_code(error: &dyn sqlx::error::DatabaseError) -> Option<ServerCode> {
        let error = error.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()?;
        Some(ServerCode::MySql(error.number()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::pool::tests::{HOST, login};
    use super::sqlx;
    use super::*;

    #[test]
    fn options_verify_the_identity() {
        use sqlx::mysql::MySqlSslMode;
        let o = <sqlx::MySql as sealed::IamDatabase>::base_options(&login(3306, None));
        assert!(matches!(o.get_ssl_mode(), MySqlSslMode::VerifyIdentity));
        assert_eq!((o.get_host(), o.get_port()), (HOST, 3306));
        assert_eq!(o.get_database(), Some("appdb"));
        let debug = format!("{o:?}");
        assert!(debug.contains("enable_cleartext_plugin: true"), "{debug}");
        assert!(debug.contains("password: None"), "no password in the base");
    }
}
