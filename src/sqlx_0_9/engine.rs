//! What differs between the engines sqlx pools are made for: the base connect options
//! (verified TLS, no password), how the token goes in, and which errors mean "token rejected".

use crate::engine::Engine;
use crate::login::Login;

/// sqlx's connect options for `DB` (`PgConnectOptions`, `MySqlConnectOptions`).
pub(crate) type ConnectOptions<DB> =
    <<DB as sqlx::Database>::Connection as sqlx::Connection>::Options;

/// A database sqlx pools with IAM logins are made for: `sqlx::Postgres` or `sqlx::MySql`
/// (the trait is sealed).
pub trait IamDatabase: sealed::IamDatabase {}

pub(crate) mod sealed {
    use super::*;

    /// The engine's part of an `IamPool`. Public in a private module: none of it is API.
    pub trait IamDatabase: sqlx::Database {
        /// The engine, as errors name it.
        const ENGINE: Engine;

        /// Everything but the password: the signing host and port, the user, the database,
        /// and TLS that verifies the chain (against the login's trust store) and the host name.
        fn base_options(login: &Login) -> ConnectOptions<Self>;

        /// `base` with `password`.
        fn with_password(base: &ConnectOptions<Self>, password: &str) -> ConnectOptions<Self>;

        /// `true` when the server refused the token itself: worth one retry with a fresh one.
        fn is_rejected(error: &sqlx::Error) -> bool;
    }
}

#[cfg(feature = "sqlx-0_9-postgres")]
impl IamDatabase for sqlx::Postgres {}

#[cfg(feature = "sqlx-0_9-postgres")]
impl sealed::IamDatabase for sqlx::Postgres {
    const ENGINE: Engine = Engine::Postgres;

    fn base_options(login: &Login) -> sqlx::postgres::PgConnectOptions {
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

    fn with_password(
        base: &sqlx::postgres::PgConnectOptions,
        password: &str,
    ) -> sqlx::postgres::PgConnectOptions {
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
}

#[cfg(feature = "sqlx-0_9-mysql")]
impl IamDatabase for sqlx::MySql {}

#[cfg(feature = "sqlx-0_9-mysql")]
impl sealed::IamDatabase for sqlx::MySql {
    const ENGINE: Engine = Engine::MySql;

    fn base_options(login: &Login) -> sqlx::mysql::MySqlConnectOptions {
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

    fn with_password(
        base: &sqlx::mysql::MySqlConnectOptions,
        password: &str,
    ) -> sqlx::mysql::MySqlConnectOptions {
        base.clone().password(password)
    }

    /// `ER_ACCESS_DENIED_ERROR` (1045): a bad, expired or misdirected token, or a user not set
    /// up for IAM.
    fn is_rejected(error: &sqlx::Error) -> bool {
        match error {
            sqlx::Error::Database(e) => e
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|e| e.number() == 1045),
            _ => false,
        }
    }
}
