//! Connection pools whose every new physical connection logs in with a current IAM token.
//!
//! Tokens are only checked at login: a pooled connection stays valid after its token
//! expires, so connections already in a pool are never touched when a token rotates. Each
//! connection the pool opens asks the [`TokenCache`](crate::TokenCache), through the pool's
//! [`Connector`](crate::connector::Connector), for the current token.
//!
//! One manager per pool library, for every engine:
//!
//! | | deadpool ([`Manager`]) | bb8 ([`ConnectionManager`]) |
//! |---|---|---|
//! | PostgreSQL | `PgPool`, `PgManager` (`deadpool-postgres`) | `PgConnectionManager` (`bb8-postgres`) |
//! | MySQL | `MySqlPool`, `MySqlManager` (`deadpool-mysql`) | `MySqlConnectionManager` (`bb8-mysql`) |

#[cfg(any(feature = "bb8-postgres", feature = "bb8-mysql"))]
mod bb8_manager;
#[cfg(any(feature = "deadpool-postgres", feature = "deadpool-mysql"))]
mod deadpool_manager;

#[cfg(any(feature = "bb8-postgres", feature = "bb8-mysql"))]
pub use self::bb8_manager::ConnectionManager;
#[cfg(feature = "bb8-mysql")]
pub use self::bb8_manager::MySqlConnectionManager;
#[cfg(feature = "bb8-postgres")]
pub use self::bb8_manager::PgConnectionManager;
#[cfg(any(feature = "deadpool-postgres", feature = "deadpool-mysql"))]
pub use self::deadpool_manager::Manager;
#[cfg(feature = "deadpool-mysql")]
pub use self::deadpool_manager::{MySqlManager, MySqlPool};
#[cfg(feature = "deadpool-postgres")]
pub use self::deadpool_manager::{PgManager, PgPool};

/// Re-exported so that pool types (`PoolError`, `Object`, `RunError`...) can be named
/// without depending on a matching version.
#[cfg(any(feature = "bb8-postgres", feature = "bb8-mysql"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "bb8-postgres", feature = "bb8-mysql"))))]
pub use ::bb8;
/// Re-exported, as `bb8` is: name `PoolError`, `Object`... without a version to match.
#[cfg(any(feature = "deadpool-postgres", feature = "deadpool-mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "deadpool-postgres", feature = "deadpool-mysql")))
)]
pub use ::deadpool;
