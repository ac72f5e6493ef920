//! Property test: random operation sequences against the sequential reference model
//! (`tests/model/mod.rs`); the real breaker must make the same decisions and report the same
//! states and counters after every step.

mod model;

use model::{Op, Setup, WaitSetup, WindowSetup};
use proptest::prelude::*;

fn rate() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![Just(None), (1u32..=10).prop_map(|t| Some(t as f64 / 10.0))]
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        rate(),
        rate(),
        1u64..40,
        prop_oneof![Just(None), (1u32..6).prop_map(Some)],
        1u32..12,
        prop_oneof![
            (1u32..16).prop_map(WindowSetup::Count),
            (1u32..8, 1u64..20)
                .prop_map(|(buckets, bucket_ms)| WindowSetup::Time { buckets, bucket_ms }),
        ],
        prop_oneof![
            (0u64..100).prop_map(WaitSetup::Fixed),
            (0u64..50, 0u64..400).prop_map(|(initial, extra)| WaitSetup::Exp {
                initial,
                max: initial + extra
            }),
        ],
        1u32..4,
        1u32..4,
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(
                failure_rate,
                slow_rate,
                slow_ms,
                consecutive,
                minimum_calls,
                window,
                wait,
                permits,
                successes,
                by_rate,
            )| {
                Setup {
                    failure_rate,
                    slow_rate,
                    slow_ms,
                    consecutive,
                    minimum_calls,
                    window,
                    wait,
                    permits,
                    successes,
                    by_rate,
                }
                .normalise()
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Acquire),
        3 => any::<u8>().prop_map(Op::Success),
        4 => any::<u8>().prop_map(Op::Failure),
        1 => any::<u8>().prop_map(Op::Trip),
        1 => any::<u8>().prop_map(Op::SlowSuccess),
        1 => any::<u8>().prop_map(Op::Ignore),
        1 => any::<u8>().prop_map(Op::Drop),
        2 => (0u16..150).prop_map(Op::Advance),
        1 => prop_oneof![Just(Op::ForceOpen), Just(Op::Disable), Just(Op::MetricsOnly), Just(Op::Reset)],
        1 => prop_oneof![
            (1u16..200).prop_map(Op::OpenFor),
            Just(Op::ToHalfOpen),
            Just(Op::ToClosed),
            Just(Op::HalfOpenIfDue),
        ],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn breaker_matches_the_reference_model(s in setup(), ops in prop::collection::vec(op(), 1..200)) {
        if let Err(e) = model::run(&s, &ops) {
            return Err(TestCaseError::fail(format!("{e}\nsetup: {s:?}")));
        }
    }
}

#[test]
fn decoded_byte_scenarios_run() {
    // The fuzz target's decoder, on a few fixed inputs.
    for seed in 0u8..50 {
        let bytes: Vec<u8> = (0..300u32)
            .map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed))
            .collect();
        let (s, ops) = model::decode(&bytes);
        model::run(&s, &ops).unwrap();
    }
}
