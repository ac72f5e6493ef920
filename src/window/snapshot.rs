//! The snapshot protocol: the one rule every reader of several window words follows, so that
//! the rates it computes never exceed a rate the real history reached.
//!
//! # The write order
//! Every recorder writes the words of one outcome in the same order: first the word that
//! counts the *call* (the count window's `head`, which claims a position; the time window's
//! `calls` total), then the words that count what went *wrong* (the count window's `counts`;
//! the time window's `failures` and `slow` totals). Successes never touch the second kind.
//!
//! # The rule
//! - **The end of a span** (what has been recorded so far) is read in the reverse of the write
//!   order: the outcome words first, then the call word ([`read_end`]).
//! - **The start of a span** (a snapshot that is later subtracted, the time window's bucket
//!   start) is read in the write order: the call word first, then the outcome words
//!   ([`read_start`]).
//!
//! # Why it brackets the rates
//! Each load here is `Acquire` and each write of these words is an `AcqRel` read-modify-write
//! (see "Orderings" in the `window` module). A reader whose load of an outcome word returns a
//! value that includes a failure `f` reads from `f`'s RMW or from a later RMW of that word
//! (every write of it is an RMW, so they all continue `f`'s release sequence): `f`'s RMW
//! synchronizes-with the load. `f`'s call was counted before `f`, in the same thread, so that
//! count happens-before the reader's later load of the call word, which therefore returns a
//! value that includes it (write-read coherence). So, for [`read_end`]:
//!
//! > **every failure and slow call the reader counts comes with its call**: the calls it sees
//! > are never fewer than the calls that belong to the outcomes it sees.
//!
//! The calls it sees may include more (calls whose failure is not written yet, successes
//! recorded meanwhile): those only lower the rates. For a span, [`read_start`] makes the start
//! of the calls the earliest of the words and [`read_end`] makes the end of the calls the
//! latest, so the calls counted cover the whole interval in which the counted failures were
//! written. The one outcome that can be counted without its call is one *in flight across the
//! start snapshot*: its call counted before the snapshot read the call word, its failure after
//! the snapshot read the failure word. At most one per recording thread; `docs/limits.md` states
//! this bound, and the trip oracle (`tests/oracle.rs`) allows exactly it.
//!
//! Read the other way round, a reader delayed between its two loads would count every failure
//! recorded meanwhile without their calls: a window of healthy traffic could show any rate up
//! to 1.0. The loom model `window_reads_never_overstate_a_rate` asserts the bracket, and fails
//! when the order here is reversed (feature `planted-bug-reads`, loom builds only).
//!
//! # The reads that depend on it
//! - `CountWindow::counts` and the counts returned by `CountWindow::record` (through
//!   `CountWindow::snapshot`): `counts`, then `head`.
//! - `TimeWindow::live_counts` (the end): the `failures` and `slow` totals, then `calls` (the
//!   shared total plus the stripes).
//! - `TimeWindow::claim` (a bucket's start): `calls`, then `failures` and `slow`.
//!
//! The words that need no order are those read alone: the streak (one word holds the whole
//! state), the HALF-OPEN trial counts decided by rate (one state word: in flight, recorded,
//! failures, slow), a stripe's count. They are snapshots by the atomicity of one load, and
//! they go through [`read_end`] all the same where they feed a rate, so that every rate has
//! one entry point.

/// Reads the end of a span: `outcomes` (the words a recorder writes last) first, then
/// `calls` (the word it writes first). See the module doc for the guarantee.
#[inline(always)]
pub(crate) fn read_end<C, O>(outcomes: impl FnOnce() -> O, calls: impl FnOnce() -> C) -> (C, O) {
    #[cfg(not(all(feature = "planted-bug-reads", breakerbox_loom)))]
    {
        let o = outcomes();
        let c = calls();
        (c, o)
    }
    // TEST ONLY: the reversed order the loom model must catch.
    #[cfg(all(feature = "planted-bug-reads", breakerbox_loom))]
    {
        let c = calls();
        let o = outcomes();
        (c, o)
    }
}

/// Reads the start of a span (a snapshot later subtracted): `calls` first, then `outcomes`.
/// See the module doc.
#[inline(always)]
pub(crate) fn read_start<C, O>(calls: impl FnOnce() -> C, outcomes: impl FnOnce() -> O) -> (C, O) {
    let c = calls();
    let o = outcomes();
    (c, o)
}
