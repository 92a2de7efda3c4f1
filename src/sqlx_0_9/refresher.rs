//! The task that keeps a pool's connect options holding the cache's current token, for the
//! connections sqlx opens without asking us (queries on the pool, `min_connections` upkeep).

use std::sync::Weak;
use std::time::Duration;

use tokio::task::AbortHandle;

use super::{IamDatabase, Shared};

/// After a failed round (credentials, signing), wait this long before the next; the cache
/// remembers the failure and backs off on its own, so this only bounds the polling.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Starts the refresher of `shared`'s pool. It holds a weak reference only, so dropping the
/// last `IamPool` handle ends it (besides the abort in `Shared`'s `Drop`).
pub(super) fn spawn<DB: IamDatabase>(shared: Weak<Shared<DB>>) -> AbortHandle {
    tokio::spawn(run(shared)).abort_handle()
}

/// Each round: install the current token, then sleep until the cache's refresh point, an
/// invalidation (or any other change of the token) or the pool's close.
async fn run<DB: IamDatabase>(weak: Weak<Shared<DB>>) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        // Subscribed before the round: a change during it wakes the next wait at once.
        let changed = shared.cache.changed(&shared.login.request);
        let closed = shared.pool.close_event();
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
        drop(shared);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = changed => {}
            () = closed => return,
        }
    }
}
