//! Differential fuzzing: arbitrary operation sequences (acquire, success, failure, slow
//! success, ignore, drop permit, advance clock, force open, disable, metrics-only, reset, the
//! manual transitions and `half_open_if_due`, on setups that include half-open decided by rate) run
//! against the real breaker and the sequential reference model shared with the proptest
//! (`tests/model/mod.rs`); any divergence in an admission decision, state, generation or
//! counter panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The reference model shared with the proptest (tests/model_test.rs); its lints are the
// core's business.
#[path = "../../tests/model/mod.rs"]
#[allow(clippy::all)]
mod model;

fuzz_target!(|data: &[u8]| {
    let (setup, ops) = model::decode(data);
    if let Err(divergence) = model::run(&setup, &ops) {
        panic!("breaker and model diverge: {divergence}\nsetup: {setup:?}\nops: {ops:?}");
    }
});
