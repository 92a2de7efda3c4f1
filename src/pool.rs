//! Connection pools whose every new physical connection logs in with a current IAM token.
//!
//! Tokens are only checked at login: a pooled connection stays valid after its token
//! expires, so connections already in a pool are never touched when a token rotates. Each
//! connection the pool opens asks the [`TokenCache`](crate::TokenCache) (through a
//! [`PgConnector`](crate::PgConnector)) for the current token.

#[cfg(feature = "bb8-postgres")]
mod bb8_postgres;
#[cfg(feature = "deadpool-postgres")]
mod deadpool_postgres;

#[cfg(feature = "bb8-postgres")]
pub use self::bb8_postgres::PgConnectionManager;
#[cfg(feature = "deadpool-postgres")]
pub use self::deadpool_postgres::{PgManager, PgPool};

/// Re-exported so that pool types (`PoolError`, `Object`, `RunError`...) can be named
/// without depending on a matching version.
#[cfg(feature = "bb8-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "bb8-postgres")))]
pub use ::bb8;
/// Re-exported, as `bb8` is: name `PoolError`, `Object`... without a version to match.
#[cfg(feature = "deadpool-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "deadpool-postgres")))]
pub use ::deadpool;
