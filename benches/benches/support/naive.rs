//! The textbook thread-safe circuit breaker: all state behind one `std::sync::Mutex`, locked
//! once to ask for admission and once to record the outcome. Same rules as the breakerbox
//! configurations it is compared with: trip after `threshold` consecutive failures, stay open
//! for `open_wait` (read with `std::time::Instant::now()` on the reject path, like every peer),
//! then admit at most `half_open_permits` trial calls.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NaiveState {
    Closed,
    Open { until: Instant },
    HalfOpen { inflight: u32, successes: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Closed,
    Trial,
}

struct Inner {
    state: NaiveState,
    consecutive: u32,
}

pub struct NaiveBreaker {
    inner: Mutex<Inner>,
    threshold: u32,
    open_wait: Duration,
    half_open_permits: u32,
    half_open_successes: u32,
}

impl NaiveBreaker {
    pub fn new(threshold: u32, open_wait: Duration, permits: u32, successes: u32) -> Self {
        NaiveBreaker {
            inner: Mutex::new(Inner {
                state: NaiveState::Closed,
                consecutive: 0,
            }),
            threshold,
            open_wait,
            half_open_permits: permits,
            half_open_successes: successes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn state(&self) -> NaiveState {
        self.lock().state
    }

    /// Asks to make a call.
    #[inline]
    pub fn acquire(&self) -> Result<Admit, ()> {
        let mut g = self.lock();
        match g.state {
            NaiveState::Closed => Ok(Admit::Closed),
            NaiveState::Open { until } => {
                if Instant::now() < until {
                    Err(())
                } else {
                    g.state = NaiveState::HalfOpen {
                        inflight: 1,
                        successes: 0,
                    };
                    Ok(Admit::Trial)
                }
            }
            NaiveState::HalfOpen {
                inflight,
                successes,
            } => {
                if inflight < self.half_open_permits {
                    g.state = NaiveState::HalfOpen {
                        inflight: inflight + 1,
                        successes,
                    };
                    Ok(Admit::Trial)
                } else {
                    Err(())
                }
            }
        }
    }

    /// Records the outcome of an admitted call.
    #[inline]
    pub fn record(&self, admit: Admit, ok: bool) {
        let mut g = self.lock();
        match (admit, g.state) {
            (Admit::Closed, NaiveState::Closed) => {
                if ok {
                    g.consecutive = 0;
                } else {
                    g.consecutive += 1;
                    if g.consecutive >= self.threshold {
                        g.state = NaiveState::Open {
                            until: Instant::now() + self.open_wait,
                        };
                    }
                }
            }
            (
                Admit::Trial,
                NaiveState::HalfOpen {
                    inflight,
                    successes,
                },
            ) => {
                if !ok {
                    g.state = NaiveState::Open {
                        until: Instant::now() + self.open_wait,
                    };
                } else if successes + 1 >= self.half_open_successes {
                    g.consecutive = 0;
                    g.state = NaiveState::Closed;
                } else {
                    g.state = NaiveState::HalfOpen {
                        inflight: inflight.saturating_sub(1),
                        successes: successes + 1,
                    };
                }
            }
            _ => {} // late outcome
        }
    }

    /// Gives a trial slot back without recording anything.
    #[inline]
    pub fn release(&self, admit: Admit) {
        let mut g = self.lock();
        if let (
            Admit::Trial,
            NaiveState::HalfOpen {
                inflight,
                successes,
            },
        ) = (admit, g.state)
        {
            g.state = NaiveState::HalfOpen {
                inflight: inflight.saturating_sub(1),
                successes,
            };
        }
    }

    pub fn reset(&self) {
        let mut g = self.lock();
        g.state = NaiveState::Closed;
        g.consecutive = 0;
    }
}
