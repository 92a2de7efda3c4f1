//! Where "now" comes from, so that tests and the CLI's `--signing-time` can set it.
//!
//! A clock has two faces: the **wall clock** ([`Clock::now`]), which tokens are stamped with
//! and their expiry is judged by, and a **monotonic clock** ([`Clock::instant`]) for
//! durations that must not jump with the wall clock (a backoff, a timeout). Set the clock in
//! one place, [`TokenGeneratorBuilder::clock`](crate::token::TokenGeneratorBuilder::clock):
//! the cache, the connectors, the pools and the doctor read the generator's.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::time::UNIX_EPOCH;
use std::time::{Duration, Instant, SystemTime};

/// A source of the current time.
///
/// The token generator stamps tokens with [`Clock::now`]; the token cache compares
/// expiry against it. Implement it (or use [`ManualClock`]) to control time in tests.
pub trait Clock: Debug + Send + Sync {
    /// The current wall-clock time: what tokens are stamped with and expire by.
    fn now(&self) -> SystemTime;

    /// The current monotonic time: what durations are measured with (it never steps back
    /// when the wall clock does). By default the process's monotonic clock.
    fn instant(&self) -> Instant {
        Instant::now()
    }
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
/// use rds_iam_auth::clock::{Clock, FixedClock};
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

impl Clock for SharedClock {
    fn now(&self) -> SystemTime {
        (**self).now()
    }

    fn instant(&self) -> Instant {
        (**self).instant()
    }
}

/// A clock moved by hand, for tests: [`advance`](Self::advance) moves both faces (time
/// passing), [`set_wall`](Self::set_wall) steps the wall clock alone (an NTP correction, a
/// VM resumed), backwards or forwards. Clones are the same clock.
///
/// ```
/// use rds_iam_auth::clock::{Clock, ManualClock};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let t0 = UNIX_EPOCH + Duration::from_secs(1_705_322_096);
/// let clock = ManualClock::new(t0);
/// let (wall, mono) = (clock.now(), clock.instant());
/// clock.advance(Duration::from_secs(10));
/// clock.set_wall(t0 - Duration::from_secs(3600)); // the wall clock steps back an hour
/// assert_eq!(clock.now(), t0 - Duration::from_secs(3600));
/// assert_eq!(clock.instant() - mono, Duration::from_secs(10)); // the monotonic one did not
/// # let _ = wall;
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<Mutex<(SystemTime, Instant)>>,
}

impl ManualClock {
    /// A clock showing `wall`, its monotonic face starting at the real monotonic now.
    pub fn new(wall: SystemTime) -> Self {
        Self {
            state: Arc::new(Mutex::new((wall, Instant::now()))),
        }
    }

    /// Time passes: both faces move on by `by`.
    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        state.0 += by;
        state.1 += by;
    }

    /// The wall clock is set to `wall` (backwards or forwards); the monotonic face stays.
    pub fn set_wall(&self, wall: SystemTime) {
        self.lock().0 = wall;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (SystemTime, Instant)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.lock().0
    }

    fn instant(&self) -> Instant {
        self.lock().1
    }
}

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
