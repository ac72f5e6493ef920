//! The windows' own loom models (`src/window/models.rs`, beside the code), each run under
//! `loom::model` with the preemption bound of `LOOM_MAX_PREEMPTIONS` (3 when unset).
#![cfg(breakerbox_loom)]

use breakerbox::__loom_window_models as m;

fn model(f: fn()) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(b.preemption_bound.unwrap_or(3));
    b.check(f);
}

#[test]
fn count_window_survives_tag_wrap() {
    model(m::count_window_survives_tag_wrap);
}

#[test]
fn count_window_sealed_shows_only_counted() {
    model(m::count_window_sealed_shows_only_counted);
}

#[test]
fn count_window_striped_successes_race_a_failure() {
    model(m::count_window_striped_successes_race_a_failure);
}

#[test]
fn count_window_striped_success_races_a_transition() {
    model(m::count_window_striped_success_races_a_transition);
}

#[test]
fn time_window_striped_successes_race_a_failure() {
    model(m::time_window_striped_successes_race_a_failure);
}

#[test]
fn time_window_survives_tag_wrap() {
    model(m::time_window_survives_tag_wrap);
}

#[test]
fn time_window_reads_never_overstate_a_rate() {
    model(m::time_window_reads_never_overstate_a_rate);
}

#[test]
fn count_window_reads_never_overstate_a_rate() {
    model(m::count_window_reads_never_overstate_a_rate);
}

#[test]
fn count_window_record_counts_never_overstate_a_rate() {
    model(m::count_window_record_counts_never_overstate_a_rate);
}

#[test]
fn time_window_stale_claim_never_moves_a_newer_start_back() {
    model(m::time_window_stale_claim_never_moves_a_newer_start_back);
}

#[test]
fn streak_survives_tag_wrap() {
    model(m::streak_survives_tag_wrap);
}

/// The fleet trial gate's Dekker pattern (`CircuitBreaker::gate_revoked`).
#[test]
fn a_trial_never_runs_without_the_lease() {
    model(breakerbox::__loom_gate_models::a_trial_never_runs_without_the_lease);
}
