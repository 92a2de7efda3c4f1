//! # rds-iam-auth
//!
//! Log in to Amazon RDS, Aurora, RDS Proxy and Aurora DSQL with **IAM database
//! authentication** instead of a stored password: tokens identical to the AWS SDKs',
//! computed locally, sent only over verified TLS, cached and refreshed ahead of expiry.
//!
//! ## Quickstart
//!
//! ```toml
//! [dependencies]
//! rds-iam-auth = "0.2"
//! tokio = { version = "1", features = ["macros", "rt"] }
//! ```
//!
//! Until 0.2 is published on crates.io, depend on the repository instead:
//! `rds-iam-auth = { git = "https://github.com/rds-iam-auth/rds-iam-auth" }` (or
//! `path = "../rds-iam-auth"` for a checkout). The connectors and pools are features:
//! `features = ["postgres"]`, `["mysql"]`, `["deadpool-postgres"]`, `["sqlx-0_9-postgres"]`...
//! (see [Features](#features)).
//!
//! ```rust,no_run
//! use rds_iam_auth::{Endpoint, TokenGenerator, TokenRequest};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), rds_iam_auth::Error> {
//!     // Credentials from the standard chain: env, profile, SSO, web identity, ECS, IMDS.
//!     let generator = TokenGenerator::from_env();
//!     let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?;
//!     let request = TokenRequest::rds(&endpoint, "iam_user").build()?; // region from the hostname
//!     let token = generator.generate(&request).await?;
//!     // Use token.expose() as the database password, over verified TLS only.
//!     println!("token valid for {} more seconds", token.lifetime_left().as_secs());
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
//! ## Common tasks
//!
//! A **connection** (feature `postgres`; `mysql` for [`MySqlConnector`]), logged in with the
//! cache's current token over TLS verified against the signing hostname, one retry with a fresh
//! token if the server rejects it:
//!
//! ```rust,no_run
//! # #[cfg(feature = "postgres")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use rds_iam_auth::{Endpoint, PgConnector, TokenCache, TokenGenerator};
//!
//! let cache = TokenCache::new(TokenGenerator::from_env());
//! let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?;
//! let connector = PgConnector::builder(cache, endpoint, "iam_user").database("appdb").build()?;
//! let client = connector.connect().await?;
//! client.simple_query("SELECT 1").await?;
//! # Ok(()) }
//! ```
//!
//! The **same settings from the environment** of AWS's Lambda samples (`DBEndPoint`,
//! `DBUserName`, `DatabaseName`, and optionally `DBPort`, `DBRegion`, `DBCaFile`): every
//! front end has `builder_from_env` (see [`login::ENV_ENDPOINT`]).
//!
//! ```rust,no_run
//! # #[cfg(feature = "postgres")]
//! # fn run() -> Result<(), rds_iam_auth::Error> {
//! use rds_iam_auth::{PgConnector, TokenCache, TokenGenerator};
//!
//! let cache = TokenCache::new(TokenGenerator::from_env());
//! let connector = PgConnector::builder_from_env(cache)?.build()?;
//! # let _ = connector; Ok(()) }
//! ```
//!
//! A **pool** (feature `deadpool-postgres`; `bb8-postgres`, `deadpool-mysql` and `bb8-mysql`
//! too, module [`pool`]) whose every new connection logs in with a current token:
//!
//! ```rust,no_run
//! # #[cfg(feature = "deadpool-postgres")]
//! # async fn run(connector: rds_iam_auth::PgConnector) -> Result<(), Box<dyn std::error::Error>> {
//! use rds_iam_auth::pool::{PgManager, PgPool};
//!
//! let pool = PgPool::builder(PgManager::new(connector)).max_size(16).build()?;
//! let client = pool.get().await?;
//! client.simple_query("SELECT 1").await?;
//! # Ok(()) }
//! ```
//!
//! A **sqlx pool** (feature `sqlx-0_9-postgres` or `sqlx-0_9-mysql`, module `sqlx_0_9`): a
//! `PgPool` whose new connections log in with current tokens:
//!
//! ```rust,no_run
//! # #[cfg(feature = "sqlx-0_9-postgres")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use rds_iam_auth::sqlx_0_9::{IamPgPool, sqlx};
//! use rds_iam_auth::{Endpoint, TokenCache, TokenGenerator};
//!
//! let cache = TokenCache::new(TokenGenerator::from_env());
//! let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?;
//! let pool = IamPgPool::builder(cache, endpoint, "iam_user").database("appdb").build().await?;
//! let mut conn = pool.acquire().await?; // token checked first, one retry on rejection
//! sqlx::query("SELECT 1").execute(&mut *conn).await?;
//! # Ok(()) }
//! ```
//!
//! **Aurora DSQL**: give any front end a DSQL endpoint; tokens are `DbConnectAdmin` for the
//! `admin` role and `DbConnect` for others, the database `postgres`, logins bounded for DSQL's
//! connection rate, and [`dsql::retry_occ`] reruns transactions that lost an
//! optimistic-concurrency conflict:
//!
//! ```rust,no_run
//! # #[cfg(feature = "postgres")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use rds_iam_auth::{Endpoint, PgConnector, TokenCache, TokenGenerator};
//!
//! let cache = TokenCache::new(TokenGenerator::from_env());
//! let endpoint = Endpoint::dsql_cluster("abcdefghijklmnopqrstuvwxyz", "us-east-1")?;
//! let client = PgConnector::builder(cache, endpoint, "admin").build()?.connect().await?;
//! client.simple_query("SELECT 1").await?;
//! # Ok(()) }
//! ```
//!
//! **When something fails**, the [`Error`] says what to do; branch on its
//! [`kind`](Error::kind) ([`ErrorKind::Rejected`], `Timeout`, `Tls`, `InvalidInput`,
//! `Credentials`, `Connect`), and run `rds-iam-token doctor` (features `cli,doctor`) or
//! [`doctor::Doctor`] for a step-by-step diagnosis.
//!
//! ## How it works
//!
//! An IAM auth token is a SigV4-presigned URL (`host:port/?Action=connect&DBUser=...`)
//! that the database accepts as the password for 15 minutes. This crate computes it
//! locally, byte for byte as the AWS SDKs do (botocore's `generate_db_auth_token` is the
//! reference the tests check against), and a few times faster than the general SigV4 path.
//!
//! ## The modules, lowest layer first
//!
//! Each imports only from those before it.
//!
//! - Vocabulary: [`Engine`], [`clock`] (the wall clock tokens use, and the monotonic one),
//!   [`region`], [`Error`], [`endpoint`] (the **signing endpoint**, the name and port a token
//!   is signed for and TLS verifies, and the **dialled address**, where TCP goes).
//! - [`token`]: [`TokenRequest`] (what a token is for: endpoint, user, action, region,
//!   lifetime, validated once), the signer, [`TokenGenerator`] (a credentials provider, a
//!   clock and the signer), and [`IamAuthToken`], the secret: never in `Debug`/`Display`,
//!   reached with [`IamAuthToken::expose`]. [`policy`]: the IAM policy a role needs.
//! - [`cache`]: [`TokenCache`], a valid token for free, refreshed ahead of expiry, signed once
//!   however many callers wait, dropped when the database rejects it.
//! - `tls`: [`TrustStore`], the CAs a connection trusts (the AWS bundle compiled in, plus
//!   yours); chain and hostname always verified, with aws-lc-rs.
//! - `login`: the one login path. `LoginBuilder` holds every login setting with one setter
//!   each, for every front end; its routine logs in with a current token and, after a
//!   rejection, refreshes it and retries once.
//! - The front ends, on the login layer: `connector` ([`PgConnector`], [`MySqlConnector`])
//!   and the pools built on it (`pool`), `diesel_async` (on `PgConnector`), `sqlx_0_9` and
//!   `sqlx_0_8` (one source, compiled per sqlx version), `doctor`, `proxy`.
//!
//! ## Features
//!
//! - `aws-config` (default): [`TokenGenerator::from_env`], credentials from the standard AWS
//!   chain. Without it the crate depends only on `aws-sigv4` and `aws-credential-types`:
//!   bring any [`ProvideCredentials`](aws_credential_types::provider::ProvideCredentials), or
//!   take the environment's credentials with [`TokenGenerator::from_env_vars`] (an AWS Lambda
//!   function's: a smaller binary and a faster cold start).
//! - `tls`: `TrustStore` and the rustls configuration the front ends share.
//! - `postgres`: `PgConnector` (tokio-postgres). `mysql`: `MySqlConnector` (mysql_async,
//!   `mysql_clear_password` only inside verified TLS).
//! - `deadpool-postgres`, `bb8-postgres`, `deadpool-mysql`, `bb8-mysql`: pools (`pool`
//!   module) whose every new connection logs in with a current token.
//! - `sqlx-0_9-postgres`, `sqlx-0_9-mysql`: `sqlx_0_9::IamPgPool` / `IamMySqlPool`, sqlx 0.9
//!   pools (usable as `PgPool` / `MySqlPool`) whose new connections log in with current tokens.
//! - `sqlx-0_8-postgres`, `sqlx-0_8-mysql`: `sqlx_0_8::IamPgPool` / `IamMySqlPool`, the same for
//!   sqlx 0.8 (sea-orm 1); both sqlx versions can be on in one build.
//! - `diesel-async-postgres`: `diesel_async::{connect, manager}`, diesel-async
//!   `AsyncPgConnection`s and their deadpool/bb8 pools, logged in through `PgConnector`.
//! - `doctor`: `doctor::Doctor`, the step-by-step diagnosis of an IAM login behind
//!   `rds-iam-token doctor` (feature `cli`).
//! - `proxy`: `proxy::Proxy`, a local listener that logs each client connection in
//!   upstream with a current token over verified TLS and then relays bytes (psql, GUI tools,
//!   any driver), behind `rds-iam-token proxy` (features `cli,proxy`).
//! - `metrics`: counters and histograms on the `metrics` facade.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

// The layers, lowest first: each module imports only from those above it in this list.
// Vocabulary (engine, clock, region, error, endpoint), credentials, token (request, signer,
// generator), cache, tls, login (settings, the one login routine), then the front ends
// (connector and pools, sqlx, doctor).
pub mod cache;
pub mod clock;
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
pub mod connector;
mod credentials;
#[cfg(feature = "diesel-async-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "diesel-async-postgres")))]
pub mod diesel_async;
#[cfg(feature = "doctor")]
#[cfg_attr(docsrs, doc(cfg(feature = "doctor")))]
pub mod doctor;
#[cfg(feature = "__login")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "postgres",
        feature = "mysql",
        feature = "sqlx-0_9",
        feature = "sqlx-0_8"
    )))
)]
pub mod dsql;
pub mod endpoint;
mod engine;
mod error;
#[cfg(feature = "__login")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "postgres",
        feature = "mysql",
        feature = "sqlx-0_9",
        feature = "sqlx-0_8"
    )))
)]
pub mod login;
mod observe;
pub mod policy;
#[cfg(feature = "__pool")]
pub mod pool;
#[cfg(feature = "proxy")]
#[cfg_attr(docsrs, doc(cfg(feature = "proxy")))]
pub mod proxy;
pub mod region;
#[cfg(feature = "sqlx-0_8")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlx-0_8-postgres", feature = "sqlx-0_8-mysql")))
)]
pub mod sqlx_0_8;
#[cfg(feature = "sqlx-0_9")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlx-0_9-postgres", feature = "sqlx-0_9-mysql")))
)]
pub mod sqlx_0_9;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
pub mod token;

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
