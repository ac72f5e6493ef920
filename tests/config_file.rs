//! Config files (feature `serde`): valid ones build; invalid values name the field.
#![cfg(feature = "serde")]

use breakerbox::{CircuitBreaker, Config, ManualClock, OpenWait, WindowConfig};
use std::time::Duration;

fn parse(text: &str) -> Result<Config, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn a_full_config_file_parses_and_builds() {
    let c = parse(
        r#"
        failure_rate_threshold = 0.25
        slow_call_rate_threshold = 0.8
        slow_call_duration = "750ms"
        consecutive_failures = 5
        minimum_calls = 20
        window = { kind = "time", duration = "30s", buckets = 30 }
        open_wait = { kind = "exponential", initial = "1s", multiplier = 2.0, max = "2m" }
        jitter = 0.1
        half_open_permits = 3
        half_open_successes = 2
        call_timeout = "2s"
        "#,
    )
    .unwrap();
    assert_eq!(
        c.window,
        WindowConfig::Time {
            duration: Duration::from_secs(30),
            buckets: 30
        }
    );
    assert_eq!(
        c.open_wait,
        OpenWait::Exponential {
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(120)
        }
    );
    assert_eq!(c.call_timeout, Some(Duration::from_secs(2)));
    let b = CircuitBreaker::builder()
        .config(c)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    assert!(b.try_acquire().is_ok());
}

#[test]
fn missing_fields_take_defaults() {
    assert_eq!(parse("").unwrap(), Config::default());
}

#[test]
fn invalid_values_name_the_field() {
    let c = parse("failure_rate_threshold = 1.5").unwrap();
    let e = CircuitBreaker::builder().config(c).build().unwrap_err();
    assert_eq!(e.field(), "failure_rate_threshold");
    assert_eq!(
        e.to_string(),
        "invalid `failure_rate_threshold`: 1.5 is outside (0, 1]"
    );

    let c = parse(r#"window = { kind = "count", size = 0 }"#).unwrap();
    assert_eq!(c.validate().unwrap_err().field(), "window.size");

    let c = parse("half_open_permits = 0").unwrap();
    assert!(CircuitBreaker::builder()
        .config(c)
        .build()
        .unwrap_err()
        .to_string()
        .contains("half_open_permits"));
}

#[test]
fn unknown_fields_and_bad_types_are_parse_errors_that_name_the_field() {
    let e = parse("failure_rate_treshold = 0.5")
        .unwrap_err()
        .to_string();
    assert!(e.contains("failure_rate_treshold"), "{e}");
    let e = parse(r#"open_wait = { kind = "fixed", wait = "soon" }"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("wait"), "{e}");
}

/// The annotated example file (`examples/breakerbox.toml`) parses, builds, and says what it
/// means.
#[test]
fn the_documented_example_file_is_valid() {
    let c = parse(include_str!("../examples/breakerbox.toml")).unwrap();
    assert_eq!(c.failure_rate_threshold, Some(0.5));
    assert_eq!(c.slow_call_rate_threshold, Some(0.8));
    assert_eq!(c.consecutive_failures, None);
    assert_eq!(c.minimum_calls, 20);
    assert_eq!(c.window, WindowConfig::Count { size: 100 });
    assert_eq!(c.max_half_open_wait, Some(Duration::from_secs(60)));
    assert_eq!(c.call_timeout, Some(Duration::from_secs(10)));
    c.validate().unwrap();
}

/// TOML has no null: "off" (or false) switches a rule off, which is how "consecutive failures
/// only" is written.
#[test]
fn rules_switch_off_in_toml() {
    let c = parse(
        r#"
        failure_rate_threshold = "off"
        consecutive_failures = 5
        "#,
    )
    .unwrap();
    assert_eq!(c.failure_rate_threshold, None);
    assert_eq!(c.consecutive_failures, Some(5));
    c.validate().unwrap();
    assert_eq!(
        parse("failure_rate_threshold = false")
            .unwrap()
            .failure_rate_threshold,
        None
    );
    let e = parse(r#"failure_rate_threshold = "sometimes""#).unwrap_err();
    assert!(e.to_string().contains("failure_rate_threshold"), "{e}");
    assert!(e.to_string().contains("off"), "{e}");
}

/// Every configuration round-trips through TOML, YAML and JSON, including rules switched off.
#[test]
fn configurations_round_trip_through_toml_and_json() {
    let only_consecutive = Config {
        failure_rate_threshold: None,
        consecutive_failures: Some(3),
        ..Config::default()
    };
    let with_everything = parse(include_str!("../examples/breakerbox.toml")).unwrap();
    for c in [Config::default(), only_consecutive, with_everything] {
        let text = toml::to_string(&c).unwrap();
        assert_eq!(parse(&text).unwrap(), c, "TOML:\n{text}");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            serde_json::from_str::<Config>(&json).unwrap(),
            c,
            "JSON: {json}"
        );
    }
    // JSON's null also switches a rule off.
    let c: Config =
        serde_json::from_str(r#"{"failure_rate_threshold": null, "consecutive_failures": 2}"#)
            .unwrap();
    assert_eq!(c.failure_rate_threshold, None);
}
