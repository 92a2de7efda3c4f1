//! Where "now" comes from, so that tests and the CLI's `--signing-time` can fix it.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::SystemTime;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::time::{Duration, UNIX_EPOCH};

/// A source of the current time.
///
/// The token generator stamps tokens with [`Clock::now`]; the token cache compares
/// expiry against it. Implement it to control time in tests.
pub trait Clock: Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock: what production code uses.
///
/// On Linux it reads the kernel's coarse real-time clock (`CLOCK_REALTIME_COARSE`, updated
/// every tick, at most a few milliseconds behind): tokens and their deadlines count whole
/// seconds, and the token cache reads the clock on every call, where `SystemTime::now` would
/// cost several times more.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn now(&self) -> SystemTime {
        use rustix::time::{ClockId, clock_gettime};
        let t = clock_gettime(ClockId::RealtimeCoarse);
        match (u64::try_from(t.tv_sec), u32::try_from(t.tv_nsec)) {
            (Ok(secs), Ok(nanos)) => UNIX_EPOCH + Duration::new(secs, nanos),
            // Before 1970: let the standard clock say what it says.
            _ => SystemTime::now(),
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_within_a_tick_of_the_standard_clock() {
        let before = SystemTime::now();
        let coarse = SystemClock.now();
        let after = SystemTime::now();
        let slack = std::time::Duration::from_millis(50);
        assert!(
            coarse + slack >= before && coarse <= after + slack,
            "{coarse:?} vs {before:?}..{after:?}"
        );
    }
}
