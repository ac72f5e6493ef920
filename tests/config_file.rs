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
