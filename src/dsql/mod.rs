//! Aurora DSQL: its limits, and retrying transactions that lost an optimistic-concurrency
//! conflict.
//!
//! DSQL takes no locks: it checks for conflicts at commit and aborts the loser with SQLSTATE
//! `40001` (serialization failure), the message naming the conflict (`OC000`: another
//! transaction changed the same rows; `OC001`: the schema changed under the transaction).
//! The transaction did nothing and can simply be run again: [`retry_occ`] does that, with
//! bounded exponential backoff and full jitter, and retries nothing else.
//!
//! The connection side (tokens that follow the endpoint, `DbConnectAdmin` for `admin`, the
//! `postgres` database, pools retiring connections before DSQL's 60-minute session limit, a
//! bound on concurrent logins) is in the [`Connector`](crate::connector::Connector) and the pools: give
//! them a DSQL endpoint ([`Endpoint::dsql_cluster`](crate::Endpoint::dsql_cluster)).

#[cfg(any(
    feature = "postgres",
    feature = "sqlx-0_9-postgres",
    feature = "sqlx-0_8-postgres"
))]
pub(crate) mod occ;

use std::time::Duration;

#[cfg(any(
    feature = "postgres",
    feature = "sqlx-0_9-postgres",
    feature = "sqlx-0_8-postgres"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "postgres",
        feature = "sqlx-0_9-postgres",
        feature = "sqlx-0_8-postgres"
    )))
)]
pub use occ::{OccConflict, OccRetryError, OccRetryPolicy, retry_occ};

/// Aurora DSQL closes every connection 60 minutes after it opened (a transaction started in
/// the 60th minute may run to its 5-minute timeout first).
pub const DSQL_SESSION_LIMIT: Duration = Duration::from_secs(60 * 60);

/// The maximum connection lifetime pools use for Aurora DSQL endpoints unless set otherwise:
/// 5 minutes below [`DSQL_SESSION_LIMIT`], so that a pooled connection is retired before the
/// server closes it under a query.
pub const DSQL_RECOMMENDED_MAX_LIFETIME: Duration = Duration::from_secs(55 * 60);

// Aurora DSQL accepts at most 100 new connections per second per cluster (bursts up to
// 1,000, refilled at 100/s; not configurable) and refuses the excess with SQLSTATE 53400
// `CONFIGURED_LIMIT_EXCEEDED`. A pool warming up (or refilling after a failover) would
// otherwise open all its connections at once. RDS has no documented connection-rate quota
// (IAM logins are throttled when there are too many at once, per instance), so RDS
// logins keep their unbounded behaviour unless a limit is set.

/// How many logins one connector (or pool) runs at once for an Aurora DSQL endpoint unless
/// set otherwise (see [`LoginBuilder::max_concurrent_logins`](crate::login::LoginBuilder::max_concurrent_logins)).
/// At the tens of milliseconds a login takes, 8 at a time stays in DSQL's burst capacity for
/// a pool of hundreds.
pub const DSQL_DEFAULT_MAX_CONCURRENT_LOGINS: usize = 8;
