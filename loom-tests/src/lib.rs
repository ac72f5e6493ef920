//! loom models of breakerbox's concurrency protocol.
//!
//! The models are the integration tests in `tests/`; they compile only under
//! `RUSTFLAGS="--cfg breakerbox_loom"` (which also switches breakerbox's atomics to loom's) and
//! to nothing otherwise. Run them with `.ci/loom.sh`, or:
//!
//! ```text
//! RUSTFLAGS="--cfg breakerbox_loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p loom-tests --release
//! ```
//!
//! This library holds nothing; it exists so the crate is a workspace member.
