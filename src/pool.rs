//! Connection pools whose every new physical connection logs in with a current IAM token.
//!
//! Tokens are only checked at login: a pooled connection stays valid after its token
//! expires, so connections already in a pool are never touched when a token rotates. Each
//! connection the pool opens asks the [`TokenCache`](crate::TokenCache) (through a
//! [`PgConnector`](crate::PgConnector)) for the current token.

#[cfg(feature = "bb8-postgres")]
mod bb8;
#[cfg(feature = "deadpool-postgres")]
mod deadpool;

#[cfg(feature = "bb8-postgres")]
pub use self::bb8::PgConnectionManager;
#[cfg(feature = "deadpool-postgres")]
pub use self::deadpool::{PgManager, PgPool};
