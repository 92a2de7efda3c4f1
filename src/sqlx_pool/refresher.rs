//! The task that keeps a pool's connect options holding the cache's current token, for the
//! connections sqlx opens without asking us (queries on the pool, `min_connections` upkeep,
//! sqlx's own `acquire`, sea-orm).
//!
//! It lives as long as the sqlx pool: it holds the pool (sqlx's `Pool` has no weak handle)
//! and ends when the pool is closed, by `Pool::close`, `IamPool::close` or an owner's
//! close (sea-orm's `DatabaseConnection::close`). So a `Pool` cloned out of an `IamPool`
//! and handed to another owner keeps logging in with current tokens after every `IamPool`
//! handle is gone.

use std::sync::Arc;
use std::time::Duration;

use super::{IamDatabase, Shared};

/// After a failed round (credentials, signing), wait this long before the next; the cache
/// remembers the failure and backs off on its own, so this only bounds the polling.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Starts the refresher of `shared`'s pool; it ends when the pool is closed.
pub(super) fn spawn<DB: IamDatabase>(shared: Arc<Shared<DB>>) {
    tokio::spawn(run(shared));
}

/// Each round: install the current token, then sleep until the cache's refresh point, an
/// invalidation (or any other change of the token) or the pool's close.
async fn run<DB: IamDatabase>(shared: Arc<Shared<DB>>) {
    // Subscribed before the first round: a close during it ends the task at its wait.
    let closed = shared.pool.close_event();
    tokio::pin!(closed);
    loop {
        if shared.pool.is_closed() {
            return;
        }
        // Subscribed before the round: a change during it wakes the next wait at once.
        let changed = shared.cache.changed(&shared.login.request);
        let wait = match shared.install_current().await {
            Ok(_) => shared.until_refresh(),
            Err(e) => {
                tracing::warn!(
                    error = %e.report(),
                    "could not refresh the IAM token of a sqlx pool; trying again"
                );
                RETRY_AFTER_FAILURE
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = changed => {}
            () = &mut closed => return,
        }
    }
}
