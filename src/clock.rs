//! Where "now" comes from, so that tests and the CLI's `--signing-time` can fix it.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::SystemTime;

/// A source of the current time.
///
/// The token generator stamps tokens with [`Clock::now`]; the token cache compares
/// expiry against it. Implement it to control time in tests.
pub trait Clock: Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock: what production code uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock stopped at one instant.
///
/// ```
/// use rds_iam_auth::{Clock, FixedClock};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let at = UNIX_EPOCH + Duration::from_secs(1_705_322_096);
/// assert_eq!(FixedClock::new(at).now(), at);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(SystemTime);

impl FixedClock {
    /// A clock that always answers `at`.
    pub fn new(at: SystemTime) -> Self {
        Self(at)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// A cheaply cloneable, shared [`Clock`].
pub type SharedClock = Arc<dyn Clock>;
