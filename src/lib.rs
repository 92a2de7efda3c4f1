//! # rds-iam-auth
//!
//! Log in to Amazon RDS, Aurora, RDS Proxy and Aurora DSQL with **IAM database
//! authentication** instead of a stored password.
//!
//! ## Quickstart
//!
//! ```toml
//! [dependencies]
//! rds-iam-auth = "0.1"
//! tokio = { version = "1", features = ["macros", "rt"] }
//! ```
//!
//! ```rust,no_run
//! use rds_iam_auth::{Endpoint, TokenGenerator, TokenRequest};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), rds_iam_auth::Error> {
//!     // Credentials from the standard chain: env, profile, SSO, web identity, ECS, IMDS.
//!     let generator = TokenGenerator::from_env().await?;
//!     let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?;
//!     let request = TokenRequest::rds(&endpoint, "iam_user").build()?; // region from the hostname
//!     let token = generator.generate(&request).await?;
//!     // Use token.expose() as the database password, over verified TLS only.
//!     println!("token valid until {:?}", token.expires_at());
//!     Ok(())
//! }
//! ```
//!
//! Through an SSH tunnel or a bastion, sign for the real endpoint and dial the local port:
//!
//! ```rust
//! # use rds_iam_auth::Endpoint;
//! let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?
//!     .with_dial_address("127.0.0.1", 15432)?;
//! # Ok::<(), rds_iam_auth::Error>(())
//! ```
//!
//! Aurora DSQL: `TokenRequest::dsql(&endpoint, "admin")` (action `DbConnectAdmin`; any other role
//! gets `DbConnect`), with `.expires_in(...)` up to one week. The connectors and pools take DSQL
//! endpoints too (module `dsql`, and the README's "Aurora DSQL" section).
//!
//! ## How it works
//!
//! An IAM auth token is a SigV4-presigned URL (`host:port/?Action=connect&DBUser=...`)
//! that the database accepts as the password for 15 minutes. This crate computes it
//! locally, byte for byte as the AWS SDKs do (botocore's `generate_db_auth_token` is the
//! reference the tests check against), and a few times faster than the general SigV4 path.
//!
//! ## Concepts
//!
//! - [`Endpoint`]: the **signing endpoint** (the DNS name and port a token is signed for,
//!   and that TLS verifies) and the **dialled address** (where TCP goes: the same, or a
//!   tunnel). The region is inferred from RDS and DSQL hostnames.
//! - [`TokenRequest`]: what a token is for: endpoint, database user, action, region,
//!   lifetime; validated once, up front.
//! - [`TokenGenerator`]: mints [`IamAuthToken`]s from a credentials provider and a clock.
//! - [`TokenCache`]: a valid token for free: refreshed ahead of expiry, signed once however
//!   many callers wait, dropped when the database rejects it.
//! - [`IamAuthToken`]: the secret. It never shows in `Debug`/`Display`; reach the text
//!   with [`IamAuthToken::expose`] when handing it to a driver.
//! - [`policy`]: the `rds-db:connect` / `dsql:DbConnect` policy a role needs.
//!
//! ## Features
//!
//! - `aws-config` (default): [`TokenGenerator::from_env`] and
//!   [`TokenGenerator::from_sdk_config`], credentials from the standard AWS chain. Without it
//!   the crate depends only on `aws-sigv4` and `aws-credential-types`: bring any
//!   [`ProvideCredentials`](aws_credential_types::provider::ProvideCredentials), or take the
//!   environment's credentials with [`TokenGenerator::from_env_vars`] (an AWS Lambda
//!   function's: a smaller binary and a faster cold start).
//! - `tls`: `TrustStore`, the CAs a connection trusts (the AWS CA bundle compiled in, plus
//!   yours); chain and hostname are always verified, with aws-lc-rs.
//! - `postgres`: `PgConnector`, a tokio-postgres `Client` logged in with a current IAM token
//!   over verified TLS (TLS required, verified against the signing hostname even through a
//!   tunnel; one retry with a fresh token when the server rejects a cached one). Aurora DSQL
//!   endpoints too, with `dsql::retry_occ` for optimistic-concurrency conflicts.
//! - `mysql`: `MySqlConnector`, a mysql_async `Conn` logged in with a current IAM token
//!   through `mysql_clear_password`, only inside TLS verified against the signing hostname
//!   (a server without TLS is refused before any password is sent; one retry with a fresh
//!   token on error 1045).
//! - `deadpool-postgres`, `bb8-postgres`, `deadpool-mysql`, `bb8-mysql`: pools (`pool`
//!   module) whose every new connection logs in with a current token.
//! - `sqlx-0_9-postgres`, `sqlx-0_9-mysql`: `sqlx_0_9::IamPgPool` / `IamMySqlPool`, sqlx 0.9
//!   pools (usable as `PgPool` / `MySqlPool`) whose new connections log in with current tokens,
//!   over verified TLS; module `sqlx_0_9` re-exports that `sqlx`.
//! - `doctor`: `doctor::Doctor`, the step-by-step diagnosis of an IAM login (endpoint, credentials
//!   and IAM principal, DNS, TCP, TLS, login) behind `rds-iam-token doctor` (feature `cli`).
//!
//! Both connectors are one type, `Connector<D>` (module `connector`), for two drivers: the
//! token's life cycle around a login (get, attempt within the timeout, invalidate, one retry,
//! errors) is written once, and each driver only says how one login is made.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

// The layers, lowest first: each module imports only from those above it in this list.
// Vocabulary (engine, clock, region, error, endpoint), credentials, token (request, signer,
// generator), cache, tls, login (settings, the one login routine), then the front ends
// (connector and pools, sqlx, doctor).
mod engine;
pub mod clock;
pub mod region;
mod error;
pub mod endpoint;
mod observe;
mod credentials;
pub mod token;
pub mod cache;
pub mod policy;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
#[cfg(feature = "__login")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9")))
)]
pub mod login;
#[cfg(feature = "__login")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx-0_9")))
)]
pub mod dsql;
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
pub mod connector;
#[cfg(any(
    feature = "deadpool-postgres",
    feature = "bb8-postgres",
    feature = "deadpool-mysql",
    feature = "bb8-mysql"
))]
pub mod pool;
#[cfg(feature = "sqlx-0_9")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlx-0_9-postgres", feature = "sqlx-0_9-mysql")))
)]
pub mod sqlx_0_9;
#[cfg(feature = "doctor")]
#[cfg_attr(docsrs, doc(cfg(feature = "doctor")))]
pub mod doctor;

pub use cache::TokenCache;
#[cfg(feature = "mysql")]
pub use connector::MySqlConnector;
#[cfg(feature = "postgres")]
pub use connector::PgConnector;
pub use endpoint::Endpoint;
pub use engine::Engine;
pub use error::{Error, ErrorKind, Result};
pub use region::Region;
#[cfg(feature = "tls")]
pub use tls::TrustStore;
pub use token::{IamAuthToken, TokenGenerator, TokenRequest};

/// Re-exported: the connection type [`MySqlConnector`] returns wraps a `mysql_async::Conn`;
/// its error type and the `Queryable` trait (`prelude::*`).
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use mysql_async;
/// Re-exported: the client type [`PgConnector`] returns, and its error and row types.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use tokio_postgres;

/// Re-exported so that callers can build credentials without naming the crate.
pub use aws_credential_types::Credentials;
