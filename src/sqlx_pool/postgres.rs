//! PostgreSQL's part of the sqlx pools: `IamPgPool`, verified TLS, and `28P01`/`28000` as
//! the rejections worth a retry.

use super::pool::engine::{ConnectOptions, IamDatabase, sealed};
use super::pool::{IamPool, IamPoolBuilder};
use super::sqlx;
use crate::engine::Engine;
use crate::error::ServerCode;
use crate::login::{self, Login};

#[doc = concat!("A sqlx ", sqlx_version!(), " `PgPool` whose new connections log in with current IAM tokens.")]
///
/// ```no_run
#[doc = concat!("use rds_iam_auth::", sqlx_module!(), "::{IamPgPool, sqlx};")]
/// use rds_iam_auth::{Endpoint, TokenCache, TokenGenerator};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = TokenCache::new(TokenGenerator::from_env());
/// let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?;
/// let pool = IamPgPool::builder(cache, endpoint, "iam_user")
///     .database("appdb")
///     .pool_options(sqlx::postgres::PgPoolOptions::new().max_connections(8))
///     .build()
///     .await?;
///
/// // A connection through the pool's own acquire: token checked first, one retry on rejection.
/// let mut conn = pool.acquire().await?;
/// let (db,): (String,) = sqlx::query_as("SELECT current_database()")
///     .fetch_one(&mut *conn)
///     .await?;
///
/// // Anything that takes a `&PgPool` (queries, migrations, sea-orm) takes the pool.
/// fn count_users(pool: &sqlx::PgPool) -> impl Future<Output = sqlx::Result<i64>> + '_ {
///     sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(pool)
/// }
/// let n = count_users(&pool).await?;
/// # let _ = (db, n);
/// # Ok(()) }
/// ```
///
/// Its methods are [`IamPool`]'s (this page shows them only with JavaScript):
/// [`builder`](IamPool::builder), [`builder_from_env`](IamPool::builder_from_env),
/// [`builder_from_vars`](IamPool::builder_from_vars), [`acquire`](IamPool::acquire),
/// [`pool`](IamPool::pool) (also through `Deref`: every `sqlx::Pool` method),
/// [`cache`](IamPool::cache), [`token_request`](IamPool::token_request),
/// [`endpoint`](IamPool::endpoint).
pub type IamPgPool = IamPool<sqlx::Postgres>;

/// The builder of an [`IamPgPool`].
pub type IamPgPoolBuilder = IamPoolBuilder<sqlx::Postgres>;

impl login::sealed::PostgresFrontEnd for IamPool<sqlx::Postgres> {}

impl IamDatabase for sqlx::Postgres {}

impl sealed::IamDatabase for sqlx::Postgres {
    const ENGINE: Engine = Engine::Postgres;

    fn base_options(login: &Login) -> ConnectOptions<Self> {
        use sqlx::postgres::{PgConnectOptions, PgSslMode};
        // Not `new()`: it reads a password from `~/.pgpass`. The `PG*` variables it reads
        // for what is not set here are overwritten below where they matter (host, port,
        // user, password, TLS mode and roots).
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(login.endpoint.host())
            .port(login.endpoint.port())
            .username(login.request.user())
            // `VerifyFull`: chain and host name. `Prefer` (sqlx's default) would continue in
            // plaintext when the server (or whoever answers in its place) declines TLS.
            .ssl_mode(PgSslMode::VerifyFull)
            .ssl_root_cert_from_pem(login.trust.pem());
        if let Some(db) = &login.database {
            options = options.database(db);
        }
        if let Some(name) = &login.application_name {
            options = options.application_name(name);
        }
        options
    }

    fn with_password(base: &ConnectOptions<Self>, password: &str) -> ConnectOptions<Self> {
        base.clone().password(password)
    }

    /// `28P01` (invalid_password) is what RDS answers for a bad or expired token; `28000`
    /// (invalid_authorization_specification) for a user not allowed to log in this way.
    fn is_rejected(error: &sqlx::Error) -> bool {
        match error {
            sqlx::Error::Database(e) => matches!(e.code().as_deref(), Some("28P01" | "28000")),
            _ => false,
        }
    }

    #[allow(private_interfaces)] // a sealed trait's method
    fn server_code(error: &dyn sqlx::error::DatabaseError) -> Option<ServerCode> {
        let error = error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
        Some(ServerCode::SqlState(error.code().to_owned()))
    }
}

/// A sqlx error is a conflict when PostgreSQL (DSQL) answered SQLSTATE `40001`; nothing else
/// is retried (see [`retry_occ`](crate::dsql::retry_occ)).
impl crate::dsql::OccConflict for sqlx::Error {
    fn is_occ_conflict(&self) -> bool {
        self.as_database_error()
            .and_then(|e| e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
            .is_some_and(|e| e.code() == crate::dsql::occ::SERIALIZATION_FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::pool::tests::{HOST, login};
    use super::sqlx;
    use super::*;
    use crate::cache::TokenCache;
    use crate::dsql::DSQL_RECOMMENDED_MAX_LIFETIME;

    fn cache() -> TokenCache {
        use crate::token::TokenGenerator;
        use aws_credential_types::Credentials;
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        TokenCache::new(TokenGenerator::new(credentials))
    }

    #[test]
    fn options_verify_the_signing_name_and_hold_no_password() {
        use sqlx::postgres::PgSslMode;
        let o =
            <sqlx::Postgres as sealed::IamDatabase>::base_options(&login(6432, Some("billing")));
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
        assert_eq!((o.get_host(), o.get_port()), (HOST, 6432));
        assert_eq!(o.get_username(), "iam_user");
        assert_eq!(o.get_database(), Some("appdb"));
        assert_eq!(o.get_application_name(), Some("billing"));
        let debug = format!("{o:?}");
        assert!(debug.contains("password: None"), "no password in the base");
    }

    #[test]
    fn env_names_of_the_lambda_samples() {
        let vars: std::collections::HashMap<&str, &str> = [
            ("DBEndPoint", HOST),
            ("DatabaseName", "appdb"),
            ("DBUserName", "iam_user"),
            ("DBPort", "6432"),
        ]
        .into();
        let b =
            IamPgPool::builder_from_vars(cache(), |k| vars.get(k).map(|v| v.to_string())).unwrap();
        let s = &b.settings;
        assert_eq!((s.endpoint.host(), s.endpoint.port()), (HOST, 6432));
        assert_eq!(s.user, "iam_user");
        assert_eq!(s.database.as_deref(), Some("appdb"));
        let request = s.token_request().unwrap();
        assert_eq!(request.region().as_str(), "eu-west-1");
        assert_eq!(request.action(), crate::token::Action::RdsConnect);
    }

    /// DSQL speaks PostgreSQL only, so only PostgreSQL pools have its lifetime cap.
    #[test]
    fn dsql_max_lifetime_is_at_most_the_recommended_one() {
        let short = Duration::from_secs(60);
        for (given, expected) in [
            (None, DSQL_RECOMMENDED_MAX_LIFETIME),
            (
                Some(Duration::from_secs(7200)),
                DSQL_RECOMMENDED_MAX_LIFETIME,
            ),
            (Some(short), short),
        ] {
            let options = sqlx::postgres::PgPoolOptions::new().max_lifetime(given);
            let o = super::super::pool::dsql_max_lifetime(options);
            assert_eq!(o.get_max_lifetime(), Some(expected));
        }
    }
}
