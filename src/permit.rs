//! Permits: the right to make one call, and the drop guard that gives a trial slot back.
//!
//! A permit carries a [`Ticket`]: the generation it was admitted in, what kind of call it is
//! and when it started. Reporting an outcome consumes the permit. A permit dropped without an
//! outcome (a cancelled future, a panic, an early return) is treated as [`Outcome::Ignore`]: it
//! records nothing, and a half-open trial permit gives its slot back, so HALF-OPEN can never be
//! left waiting for a call that will not report.

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::events::Outcome;
use std::sync::Arc;

/// What kind of call a permit admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// CLOSED or METRICS_ONLY: the outcome goes to the window.
    Window,
    /// HALF-OPEN: the outcome goes to the state word.
    Trial,
    /// DISABLED: the outcome is only counted.
    Pass,
}

/// One admission: plain data, copied into the permit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    pub gen: u32,
    pub kind: Kind,
    /// Coarse clock at admission, when slow calls are measured (else 0).
    pub start_ns: u64,
}

/// Permission to make one call through a breaker, borrowed from it.
///
/// Report how the call went with [`success`](Permit::success), [`failure`](Permit::failure) or
/// [`ignore`](Permit::ignore). Dropping it unreported counts as `ignore`.
#[must_use = "a permit records nothing unless its outcome is reported"]
pub struct Permit<'a, C: Clock> {
    breaker: &'a CircuitBreaker<C>,
    ticket: Ticket,
    reported: bool,
}

/// Like [`Permit`], but owning an `Arc` of the breaker, so it can move into a `'static` future
/// (tower services, spawned tasks).
#[must_use = "a permit records nothing unless its outcome is reported"]
pub struct OwnedPermit<C: Clock> {
    breaker: Arc<CircuitBreaker<C>>,
    ticket: Ticket,
    reported: bool,
}

macro_rules! permit_methods {
    () => {
        /// The call succeeded.
        #[inline]
        pub fn success(self) {
            self.record(Outcome::Success)
        }

        /// The call failed.
        #[inline]
        pub fn failure(self) {
            self.record(Outcome::Failure)
        }

        /// The call's result says nothing about the dependency; nothing is recorded.
        #[inline]
        pub fn ignore(self) {
            self.record(Outcome::Ignore)
        }

        /// Reports `outcome`.
        #[inline]
        pub fn record(mut self, outcome: Outcome) {
            self.reported = true;
            self.breaker.complete(self.ticket, outcome);
        }

        /// Whether this is a half-open trial permit.
        pub fn is_trial(&self) -> bool {
            self.ticket.kind == Kind::Trial
        }

        /// The generation of the state that admitted the call.
        pub fn generation(&self) -> u32 {
            self.ticket.gen
        }
    };
}

impl<'a, C: Clock> Permit<'a, C> {
    #[inline]
    pub(crate) fn new(breaker: &'a CircuitBreaker<C>, ticket: Ticket) -> Self {
        Permit {
            breaker,
            ticket,
            reported: false,
        }
    }

    permit_methods!();
}

impl<C: Clock> OwnedPermit<C> {
    #[inline]
    pub(crate) fn new(breaker: Arc<CircuitBreaker<C>>, ticket: Ticket) -> Self {
        OwnedPermit {
            breaker,
            ticket,
            reported: false,
        }
    }

    /// The breaker this permit belongs to.
    pub fn breaker(&self) -> &Arc<CircuitBreaker<C>> {
        &self.breaker
    }

    permit_methods!();
}

impl<C: Clock> Drop for Permit<'_, C> {
    #[inline]
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.complete(self.ticket, Outcome::Ignore);
        }
    }
}

impl<C: Clock> Drop for OwnedPermit<C> {
    #[inline]
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.complete(self.ticket, Outcome::Ignore);
        }
    }
}

impl<C: Clock> std::fmt::Debug for Permit<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl<C: Clock> std::fmt::Debug for OwnedPermit<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("ticket", &self.ticket)
            .finish()
    }
}
