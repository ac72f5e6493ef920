//! Sliding windows over recent call outcomes, lock-free and O(1) per recorded call.
//!
//! - [`CountWindow`]: the last N outcomes, one slot per outcome in a ring.
//! - [`TimeWindow`]: the outcomes of the last T, aggregated into B buckets.
//! - [`Streak`]: consecutive failures (the classic "5 failures then open" rule).
//! - [`snapshot`]: the one rule for reading several window words at once, and its proof.
//!
//! # Generations and tags
//! Every window word that outlives a generation carries a *tag*: the low bits of the breaker
//! generation it was written for ([`tag`] holds the protocol, once). A record carries the tag of
//! the generation its call was admitted in. A word holding an older tag is treated as empty (and
//! is replaced by the first writer of the newer tag); a word holding a newer tag makes the
//! record *late*, and it is dropped. This is what makes a reset O(1) and race-free: a reset is
//! just "start writing a new tag"; nothing has to be cleared, and a slow recorder of the old
//! generation cannot leak into the new one (in the count window; see [`TimeWindow`] for its one
//! approximation).
//!
//! ## Why tags never mislead, however long the breaker runs
//! Tags compare with wrapping arithmetic, which is right only while the two tags compared are
//! less than half the tag space (2^15 generations) apart. Three rules keep it so:
//! 1. **A caller's tag is current when it enters.** The breaker checks the ticket's full
//!    generation against the state word before recording; a permit held across any number of
//!    transitions reports late without touching a window, so a late report can never move a
//!    window to an older tag.
//! 2. **The words every record reads first are rewritten on every transition**: the count
//!    window's `head` and `counts`, the time window's gate and the streak are brought to the
//!    new tag by the transition's reset or seal (or by the first recorder of the new tag).
//! 3. **Cells only recorders write (ring slots, time buckets) are swept**: the thread that
//!    moves a window `d` generations forward also rewrites the next `d * ceil(cells/SWEEP_SPAN)`
//!    cells that hold older tags as empty cells of the new tag (`tag::Sweeper`), so every cell
//!    is visited once per `SWEEP_SPAN` (2^13) generations, however long an outage lasts.
//!
//! 4. **An entry word moves to a newer tag only while the mover's generation is current.**
//!    Rule 1 checks the caller at entry, but a caller can be preempted after it: a recorder
//!    that resumes more than half the tag space (2^15 generations) later holds a tag that
//!    reads as *newer* than the current one, and moving `head`, the gate or the streak to it
//!    would make every current record look late until the tags wrapped round again (found by
//!    `tests/stripes.rs`: a worker preempted while another thread made ~34,000 resets). So the
//!    move is made only if the breaker's generation still equals the caller's ([`Live`],
//!    asked inside the CAS loop: a transition meanwhile changes the word and fails the CAS),
//!    and the count window's `counts` word only follows `head` to a tag `head` already holds.
//!
//! A stored tag is always one that was current when the operation writing it began, and a cell
//! is never older than the last sweep of it, so stored tags lag the current one by at most
//! `SWEEP_SPAN` generations plus those a single operation spans while preempted. The only case
//! left to misjudge is one recorder or sweeper preempted between reading and writing one *cell*
//! across more than 3 * 2^13 transitions; it then mis-files that one outcome (or empties one
//! cell), and the next sweep repairs the cell. The tag width shrinks to 3 bits under
//! `--cfg breakerbox_loom` and `--cfg breakerbox_narrow_tags`, where the loom models and the
//! long-horizon tests drive the windows through many wraps.
//!
//! # Orderings
//! Every read-modify-write of a window word uses [`RMW`] (`AcqRel`) and every load [`LOAD`]
//! (`Acquire`). The edge they give: a thread whose load or RMW reads the value an RMW wrote
//! synchronizes-with that RMW, so it also sees everything the writer did before it. That is
//! the C++/Rust memory model, so it holds on AArch64 (`LDAR`/`STLR`, or `CASAL` with LSE) as on
//! x86-64 (where every locked RMW and plain load already behave so, at no extra cost).
//!
//! What the windows rely on: each word's counts and tags are right by the atomicity of its own
//! RMWs (one modification order per word); readers that combine several words follow the
//! snapshot protocol ([`snapshot`]: the end of a span is read failures first, calls last, and
//! its start calls first), whose proof uses the edge above from a failure's RMW to the reader's
//! `Acquire` load, so the calls a reader sees always include those of the failures it sees; and
//! the time window's bucket snapshot is three `Relaxed` stores published by the `Release` half
//! of the CAS that sets `READY`, read after the `Acquire` load that sees it. Keeping every other access `AcqRel`/`Acquire` as well makes
//! each word a happens-before chain, which the loom models exercise; after the threads join,
//! every count is exact (the models check it).

use crate::stripes::Stripes;
use crate::sync::Ordering;

pub(crate) mod count;
#[cfg(breakerbox_loom)]
pub mod models;
pub(crate) mod snapshot;
mod streak;
pub(crate) mod tag;
mod time;

pub(crate) use count::CountWindow;
pub(crate) use streak::Streak;
pub(crate) use tag::Tag;
pub(crate) use time::TimeWindow;

/// Whether the caller's generation is still the breaker's current one: asked right before a
/// window's entry word (count `head`, time `gate`, the streak) is moved to a newer tag, so that
/// an operation preempted across half the tag space cannot move a window to an ancient tag
/// that would then look newer than every current one (see "Why tags never mislead", rule 4).
pub(crate) type Live<'a> = &'a dyn Fn() -> bool;

/// A [`Live`] that always says yes: for tests and models that drive a window on its own.
#[cfg(any(test, breakerbox_loom))]
pub(crate) const ALWAYS: Live<'static> = &|| true;

/// The ordering of every read-modify-write of a window word (see "Orderings").
pub(crate) const RMW: Ordering = Ordering::AcqRel;
/// The ordering of every load of a window word: pairs with the `Release` half of [`RMW`].
pub(crate) const LOAD: Ordering = Ordering::Acquire;

/// Outcome bits stored for one call.
pub(crate) const PRESENT: u32 = 1;
/// The call failed.
pub(crate) const FAILED: u32 = 2;
/// The call was slow.
pub(crate) const SLOW: u32 = 4;

/// Counts of one window at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Calls in the window (successes and failures; ignored calls are not recorded).
    pub calls: u64,
    /// Failed calls in the window.
    pub failures: u64,
    /// Slow calls in the window (successful or failed).
    pub slow: u64,
}

/// What recording an outcome did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// The window had moved on to a newer generation; nothing was counted.
    Late,
    /// Counted; the window counts right after it, when the caller asked for them.
    Counted(Option<Counts>),
}

/// The configured window.
// Both variants are mostly cache padding (hot words on lines of their own); a breaker holds one
// window and never moves it, so boxing the larger one would only add an indirection.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    /// Records `bits` for a call admitted under `tag`. `want_counts` asks for the counts after
    /// the record (needed when the outcome may trip the breaker); the count window also returns
    /// them when the record brings it to exactly `probe` calls (see [`CountWindow::record`]).
    // Seven plain inputs of one record; bundling them would only move the list elsewhere.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn record(
        &self,
        tag: Tag,
        bits: u32,
        now_ns: u64,
        want_counts: bool,
        probe: u64,
        stripes: &Stripes,
        live: Live<'_>,
    ) -> Recorded {
        match self {
            Window::Count(w) => {
                w.drain(stripes);
                w.record(tag, bits, want_counts, probe, live)
            }
            Window::Time(w) => w.record(tag, bits, now_ns, want_counts, stripes, live),
        }
    }

    /// Starts counting for `tag` (a no-op if the window already counts for it or a newer tag).
    pub(crate) fn reset(&self, tag: Tag, stripes: &Stripes, live: Live<'_>) {
        match self {
            Window::Count(w) => {
                w.drain(stripes);
                w.reset(tag, live)
            }
            Window::Time(w) => w.reset(tag, live),
        }
    }

    /// Stops accepting outcomes of tags older than `tag`, keeping the current counts visible
    /// to metrics (used when the breaker leaves CLOSED).
    pub(crate) fn seal(&self, tag: Tag, now_ns: u64, stripes: &Stripes, live: Live<'_>) {
        match self {
            Window::Count(w) => {
                w.drain(stripes);
                w.seal(tag, live)
            }
            Window::Time(w) => w.seal(tag, now_ns, stripes, live),
        }
    }

    /// The counts for whichever generation the window currently counts.
    pub(crate) fn current_counts(&self, now_ns: u64, stripes: &Stripes) -> Counts {
        match self {
            Window::Count(w) => {
                w.drain(stripes);
                w.counts(w.current_tag())
            }
            Window::Time(w) => w.current_counts(now_ns, stripes),
        }
    }

    /// Calls recorded into this window over its whole life (all generations).
    pub(crate) fn lifetime_calls(&self, stripes: &Stripes) -> u64 {
        match self {
            Window::Count(w) => w.lifetime_calls(),
            Window::Time(w) => w.lifetime_calls(stripes),
        }
    }

    /// Heap bytes held by the window (beyond `size_of::<Window>()`).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Window::Count(w) => w.heap_bytes(),
            Window::Time(w) => w.heap_bytes(),
        }
    }
}
