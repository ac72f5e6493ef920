//! Atomics shim: `std` atomics normally, loom's under `--cfg breakerbox_loom`.
//!
//! Every atomic that takes part in the breaker's concurrency protocol (the state word, the
//! windows, the counters) is imported from here, as tokio does, so that the loom model tests
//! in `loom-tests/` explore every interleaving of them. The clock and the listener list are not
//! part of that protocol and use `std` directly.

#[cfg(breakerbox_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
#[cfg(not(breakerbox_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

/// `AtomicU64::new` that also works for loom (whose constructor is not `const`).
#[inline]
pub(crate) fn atomic_u64(v: u64) -> AtomicU64 {
    AtomicU64::new(v)
}

/// `AtomicU32::new`, see [`atomic_u64`].
#[inline]
pub(crate) fn atomic_u32(v: u32) -> AtomicU32 {
    AtomicU32::new(v)
}
