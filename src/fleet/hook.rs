//! The transition hook: which of the breaker's own transitions the task publishes, and the
//! flag that keeps the transitions the task applies from being published back.

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::events::{EventKind, TransitionReason};
use crate::state::State;
use std::cell::Cell;
use std::sync::{Arc, Mutex};

thread_local! {
    /// Set while the sync task applies a fleet transition, so the transition listener (which
    /// runs synchronously inside that call, on this thread) does not publish it back.
    static APPLYING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a transition the task applies) so that the hook does not publish it.
pub(super) fn applying<T>(f: impl FnOnce() -> T) -> T {
    APPLYING.with(|a| a.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    APPLYING.with(|a| a.set(false));
    r.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// What the hook and the task share: the transition to publish (kept until Redis has
/// acknowledged it or it is no longer current), and the task's wake-up.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) notify: tokio::sync::Notify,
    pub(super) pending: Mutex<Option<Publish>>,
}

/// A local transition to publish: the generation it entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Publish {
    Open(u32),
    Closed(u32),
}

/// Registers the transition listener that hands the breaker's automatic transitions (trips,
/// failed or timed-out trials, trial closes) to the task through `shared`. It costs the calls
/// nothing and holds `shared` weakly.
pub(super) fn publish_on_transition<C: Clock>(breaker: &CircuitBreaker<C>, shared: &Arc<Shared>) {
    let hook = Arc::downgrade(shared);
    breaker.on_transition(move |e| {
        if APPLYING.with(Cell::get) {
            return;
        }
        let (EventKind::Transition(t), Some(shared)) = (e.kind, hook.upgrade()) else {
            return;
        };
        let publish = match (t.to, t.reason) {
            (
                State::Open,
                TransitionReason::Tripped(_)
                | TransitionReason::TrialFailed { .. }
                | TransitionReason::TrialRate(_)
                | TransitionReason::HalfOpenTimedOut,
            ) => Publish::Open(t.generation),
            (State::Closed, TransitionReason::TrialsSucceeded { .. }) => {
                Publish::Closed(t.generation)
            }
            _ => return,
        };
        *shared.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(publish);
        shared.notify.notify_one();
    });
}
