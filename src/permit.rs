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
#[repr(u8)]
pub(crate) enum Kind {
    /// CLOSED or METRICS_ONLY: the outcome goes to the window.
    Window = 0,
    /// HALF-OPEN: the outcome goes to the state word.
    Trial = 1,
    /// DISABLED: the outcome is only counted.
    Pass = 2,
}

const KIND_MASK: u64 = 0b11;
const GEN_SHIFT: u32 = 2;
const GEN_MASK: u64 = (1 << 21) - 1;
const START_SHIFT: u32 = 24;
/// Start times are kept modulo 2^40 microseconds (12.7 days); elapsed times are computed with
/// wrapping arithmetic, so only calls longer than that would be mismeasured.
pub(crate) const START_MASK: u64 = (1 << 40) - 1;

/// One admission, packed into one `u64` so that it travels in a register:
/// `[start_us:40][unused:1][gen:21][kind:2]`.
///
/// (A 16-byte struct here was copied through the stack with narrow stores and a wide load,
/// which stalls store-to-load forwarding; one word avoids that on every call.)
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

impl Ticket {
    #[inline(always)]
    pub(crate) fn new(gen: u32, kind: Kind, start_us: u64) -> Self {
        Ticket(
            (kind as u64)
                | ((gen as u64 & GEN_MASK) << GEN_SHIFT)
                | ((start_us & START_MASK) << START_SHIFT),
        )
    }

    #[inline(always)]
    pub(crate) fn gen(self) -> u32 {
        ((self.0 >> GEN_SHIFT) & GEN_MASK) as u32
    }

    #[inline(always)]
    pub(crate) fn kind(self) -> Kind {
        match self.0 & KIND_MASK {
            0 => Kind::Window,
            1 => Kind::Trial,
            _ => Kind::Pass,
        }
    }

    /// Coarse clock at admission in microseconds (mod 2^40), when slow calls are measured.
    #[inline(always)]
    pub(crate) fn start_us(self) -> u64 {
        self.0 >> START_SHIFT
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("gen", &self.gen())
            .field("kind", &self.kind())
            .field("start_us", &self.start_us())
            .finish()
    }
}

/// Permission to make one call through a breaker, borrowed from it.
///
/// Report how the call went with [`success`](Permit::success), [`failure`](Permit::failure) or
/// [`ignore`](Permit::ignore). Dropping it unreported counts as `ignore`.
#[must_use = "a permit records nothing unless its outcome is reported"]
pub struct Permit<'a, C: Clock> {
    breaker: &'a CircuitBreaker<C>,
    ticket: Ticket,
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

        /// Reports the outcome the breaker's configured
        /// [`Classification`](crate::Classification) gives `result` (by default `Err` is a
        /// failure, `Ok` a success), as [`call`](crate::CircuitBreaker::call) does.
        #[inline]
        pub fn record_result<T: 'static, E: 'static>(self, result: &Result<T, E>) {
            let outcome = self.breaker.classify(result);
            self.record(outcome)
        }

        /// Whether this is a half-open trial permit.
        pub fn is_trial(&self) -> bool {
            self.ticket.kind() == Kind::Trial
        }

        /// The generation of the state that admitted the call.
        pub fn generation(&self) -> u32 {
            self.ticket.gen()
        }
    };
}

impl<'a, C: Clock> Permit<'a, C> {
    #[inline(always)]
    pub(crate) fn new(breaker: &'a CircuitBreaker<C>, ticket: Ticket) -> Self {
        Permit { breaker, ticket }
    }

    /// Reports `outcome`.
    #[inline(always)]
    pub fn record(self, outcome: Outcome) {
        // Both fields are `Copy`: skipping `Drop` leaks nothing, and avoids a "reported" flag.
        let this = std::mem::ManuallyDrop::new(self);
        this.breaker.complete(this.ticket, outcome);
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

    /// Reports `outcome`.
    #[inline]
    pub fn record(mut self, outcome: Outcome) {
        self.reported = true;
        self.breaker.complete(self.ticket, outcome);
    }

    permit_methods!();
}

impl<C: Clock> Drop for Permit<'_, C> {
    #[inline]
    fn drop(&mut self) {
        // Only reached when no outcome was reported (`record` skips `Drop`).
        self.breaker.complete(self.ticket, Outcome::Ignore);
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
