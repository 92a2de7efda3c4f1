//! What an engine gives a sqlx pool (the base connect options with verified TLS and no
//! password, how the token goes in, which errors mean "token rejected"): the trait, whose
//! implementations are in `postgres.rs` and `mysql.rs`.

use std::error::Error as StdError;

use super::sqlx;
use crate::engine::Engine;
use crate::error::ServerCode;
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

        /// The server's code in `error`, when it is this engine's. (The trait is sealed, in a
        /// private module: its crate-private types reach no user.)
        #[allow(private_interfaces)]
        fn server_code(error: &dyn sqlx::error::DatabaseError) -> Option<ServerCode>;
    }
}

/// The server's SQLSTATE or MySQL error number, when `error` is this sqlx's error from a
/// `DB` server (the error diagnosis reads every driver's).
pub(crate) fn server_code<DB: IamDatabase>(error: &(dyn StdError + 'static)) -> Option<ServerCode> {
    match error.downcast_ref::<sqlx::Error>()? {
        sqlx::Error::Database(db) => <DB as sealed::IamDatabase>::server_code(&**db),
        _ => None,
    }
}
