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
    assert_eq!(
        c.classification.ignore,
        vec![breakerbox::Rule::status_range(400, 499)]
    );
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

#[test]
fn classification_rules_are_written_in_the_file() {
    use breakerbox::{Classification, Outcome, Rule};
    let c = parse(
        r#"
        [classification]
        ignore = [{ status = "400-499" }, { io_error = "not_found" }]
        trip = [{ status = 503 }]
        record = ["any_error", { status = "5xx" }]
        "#,
    )
    .unwrap();
    assert_eq!(
        c.classification,
        Classification {
            ignore: vec![
                Rule::status_range(400, 499),
                Rule::io(std::io::ErrorKind::NotFound)
            ],
            trip: vec![Rule::status(503)],
            record: vec![Rule::any_error(), Rule::status_range(500, 599)],
        }
    );
    let k = &c.classification;
    assert_eq!(k.classify_http(Some(404), None), Outcome::Ignore);
    assert_eq!(k.classify_http(Some(503), None), Outcome::Trip);
    assert_eq!(k.classify_http(Some(500), None), Outcome::Failure);
    assert_eq!(k.classify_http(Some(200), None), Outcome::Success);
    let nf = std::io::Error::from(std::io::ErrorKind::NotFound);
    assert_eq!(k.classify_http(None, Some(&nf)), Outcome::Ignore);
    CircuitBreaker::builder().config(c.clone()).build().unwrap();

    // Round trips through TOML, JSON and YAML.
    let text = toml::to_string(&c).unwrap();
    assert_eq!(parse(&text).unwrap(), c, "{text}");
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), c, "{json}");
    let yaml = serde_norway::to_string(&c).unwrap();
    assert_eq!(
        serde_norway::from_str::<Config>(&yaml).unwrap(),
        c,
        "{yaml}"
    );
    // The default writes no classification at all.
    assert!(!toml::to_string(&Config::default())
        .unwrap()
        .contains("classification"));
}

#[test]
fn bad_classification_rules_are_parse_errors_that_say_why() {
    for (text, says) in [
        (r#"ignore = [{ status = 1000 }]"#, "outside 100 ..= 999"),
        (r#"ignore = [{ status = 99 }]"#, "outside 100 ..= 999"),
        (r#"ignore = [{ status = "599-500" }]"#, "is empty"),
        (r#"ignore = [{ status = "0xx" }]"#, "not a status class"),
        (r#"ignore = [{ status = "abc" }]"#, "not an HTTP status"),
        (r#"ignore = [{ status = "-1" }]"#, "not an HTTP status"),
        (
            r#"ignore = [{ io_error = "on_fire" }]"#,
            "unknown io error kind",
        ),
        (r#"ignore = [{ nope = 1 }]"#, "unknown variant"),
        (r#"ignroe = []"#, "unknown field"),
    ] {
        let e = parse(&format!("[classification]\n{text}\n")).unwrap_err();
        assert!(e.to_string().contains(says), "{text}: {e}");
        // Bounded: a hostile value is not echoed at length.
        assert!(e.to_string().len() < 1_000, "{e}");
    }
    // A hostile value is not echoed at length (JSON errors quote no source line).
    let long = format!(
        r#"{{"classification": {{"ignore": [{{"status": "{}"}}]}}}}"#,
        "9".repeat(10_000)
    );
    let e = serde_json::from_str::<Config>(&long).unwrap_err();
    assert!(e.to_string().len() < 200, "{e}");
}

#[test]
fn a_predicate_rule_cannot_be_written_to_a_file() {
    use breakerbox::Rule;
    let mut c = Config::default();
    c.classification.ignore.push(Rule::error(|_: &String| true));
    let e = toml::to_string(&c).unwrap_err();
    assert!(e.to_string().contains("predicate"), "{e}");
}
