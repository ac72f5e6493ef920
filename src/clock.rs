//! Time sources.
//!
//! The breaker reads time through the [`Clock`] trait so that tests can drive it by hand
//! ([`ManualClock`]) and production code gets a fast, cheap source ([`QuantaClock`]).
//!
//! Two reads exist:
//! - [`Clock::now_nanos`]: a precise read (quanta's TSC-backed `now()`, about 10 ns);
//! - [`Clock::recent_nanos`]: a coarse read used on every hot path (open-state rejection,
//!   slow-call timing, time-window bucketing). For [`QuantaClock`] it is one relaxed atomic load
//!   (well under 1 ns) of a value that a background thread refreshes every
//!   [`COARSE_GRANULARITY`] (1 ms).
//!
//! # Why breakerbox keeps its own coarse-time thread
//! quanta offers a global "recent" time refreshed by an `Upkeep` thread, but only one upkeep
//! thread may run per process and whoever owns its handle can stop it; a breaker that read that
//! value after the owner dropped its handle would see time stand still and stay open forever.
//! breakerbox therefore keeps its own refresher: one detached thread, started the first time a
//! [`QuantaClock`] is created and never stopped, so the coarse time cannot go stale. If that
//! thread cannot be spawned, [`QuantaClock::recent_nanos`] falls back to the precise read.
//!
//! Consequences of the 1 ms granularity: open waits, slow-call durations and time-window buckets
//! are honoured to within about one millisecond. Configure slow-call thresholds well above that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A monotonic time source, in nanoseconds since an arbitrary fixed epoch.
///
/// Implementations must be monotonic (never go backwards); the breaker tolerates a clock that
/// stands still or jumps forward by any amount.
pub trait Clock: Send + Sync + 'static {
    /// A precise read of the current time, in nanoseconds since the clock's epoch.
    fn now_nanos(&self) -> u64;

    /// A coarse, cheap read used on hot paths. Defaults to [`Clock::now_nanos`].
    #[inline]
    fn recent_nanos(&self) -> u64 {
        self.now_nanos()
    }
}

/// How often [`QuantaClock`]'s coarse time is refreshed: the granularity of its
/// [`Clock::recent_nanos`].
pub const COARSE_GRANULARITY: Duration = Duration::from_millis(1);

#[cfg(not(breakerbox_loom))]
mod quanta_clock {
    use super::*;
    use std::sync::OnceLock;

    /// The precise clock and its epoch.
    struct Precise {
        clock: quanta::Clock,
        anchor: quanta::Instant,
    }

    impl Precise {
        fn now(&self) -> u64 {
            self.clock
                .now()
                .saturating_duration_since(self.anchor)
                .as_nanos() as u64
        }
    }

    static PRECISE: OnceLock<Precise> = OnceLock::new();

    /// Nanoseconds since the epoch (at least 1), refreshed every `COARSE_GRANULARITY` by the
    /// refresher thread; 0 while no refresher runs, which tells readers to fall back to the
    /// precise clock. Only the refresher (and the first `QuantaClock::new`) store; readers
    /// load. Relaxed on both sides: the value is a standalone timestamp, it publishes no other
    /// memory, and a reader only needs some recent value.
    static RECENT: AtomicU64 = AtomicU64::new(0);

    fn precise() -> &'static Precise {
        PRECISE.get_or_init(|| {
            let clock = quanta::Clock::new();
            let anchor = clock.now();
            let started = std::thread::Builder::new()
                .name("breakerbox-clock".into())
                .spawn(|| loop {
                    // `PRECISE` is initialised by the time this runs (`get_or_init` returned
                    // before any `QuantaClock` was handed out); wait for it if not.
                    if let Some(p) = PRECISE.get() {
                        // Relaxed: see `RECENT`.
                        RECENT.store(p.now().max(1), Ordering::Relaxed);
                    }
                    std::thread::sleep(COARSE_GRANULARITY);
                })
                .is_ok();
            let p = Precise { clock, anchor };
            if started {
                // Meaningful from the first read, before the thread has run once.
                // Relaxed: see `RECENT`.
                let _ = RECENT.compare_exchange(
                    0,
                    p.now().max(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            p
        })
    }

    /// The production clock: quanta's TSC-backed clock for precise reads and a
    /// process-wide coarse time, refreshed every [`COARSE_GRANULARITY`], for hot paths.
    ///
    /// A zero-sized handle: creating one is free after the first (which calibrates quanta
    /// and starts the refresher thread); all instances share one epoch.
    #[derive(Clone, Copy)]
    pub struct QuantaClock {
        _private: (),
    }

    impl QuantaClock {
        /// Returns the process-wide quanta clock, starting the coarse-time thread on first use.
        pub fn new() -> Self {
            precise();
            QuantaClock { _private: () }
        }
    }

    impl Default for QuantaClock {
        fn default() -> Self {
            Self::new()
        }
    }

    impl std::fmt::Debug for QuantaClock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("QuantaClock")
                // Relaxed: see `RECENT`.
                .field("coarse", &(RECENT.load(Ordering::Relaxed) != 0))
                .finish()
        }
    }

    impl Clock for QuantaClock {
        #[inline]
        fn now_nanos(&self) -> u64 {
            precise().now()
        }

        #[inline(always)]
        fn recent_nanos(&self) -> u64 {
            // Relaxed: see `RECENT`.
            match RECENT.load(Ordering::Relaxed) {
                0 => precise().now(),
                t => t,
            }
        }
    }
}

#[cfg(not(breakerbox_loom))]
pub use quanta_clock::QuantaClock;

/// A clock that only moves when told to: for tests, simulations and examples.
///
/// Clones share the same time, so a test keeps one handle and gives a clone to the breaker.
///
/// ```
/// use breakerbox::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let handle = clock.clone();
/// handle.advance(Duration::from_secs(2));
/// assert_eq!(clock.now_nanos(), 2_000_000_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by` (saturating at `u64::MAX` nanoseconds).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // SeqCst is not needed for a test clock, but it keeps reasoning trivial: every read
        // after `advance` returns sees the new time.
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the clock to `at` since its epoch, if that is not earlier than the current time
    /// (the clock stays monotonic). Returns whether the clock moved.
    pub fn set(&self, at: Duration) -> bool {
        let at = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_max(at, Ordering::SeqCst) < at
    }

    /// The current time as a [`Duration`] since the clock's epoch.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

impl<C: Clock> Clock for Arc<C> {
    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
    #[inline]
    fn recent_nanos(&self) -> u64 {
        (**self).recent_nanos()
    }
}
