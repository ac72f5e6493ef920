//! Optional rules in config files: TOML has no `null`, so a rule that is on by default (the
//! failure rate) could not be switched off. A value, `"off"`, `false` or `null` is accepted, and
//! `None` is written as `"off"`, so every configuration round-trips through TOML, YAML and JSON.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw<T> {
    Value(T),
    Flag(bool),
    Word(String),
}

pub(super) fn serialize<S: Serializer, T: Serialize>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => v.serialize(s),
        None => s.serialize_str("off"),
    }
}

pub(super) fn deserialize<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<Raw<T>>::deserialize(d)? {
        None | Some(Raw::Flag(false)) => Ok(None),
        Some(Raw::Value(v)) => Ok(Some(v)),
        Some(Raw::Word(w)) if w == "off" => Ok(None),
        Some(_) => Err(D::Error::custom(
            "expected a number, or \"off\" (also `false` or null) to switch the rule off",
        )),
    }
}

/// An optional duration: a humantime string (`"60s"`), or `"off"` (also `false` or null) for
/// none; `None` is written as `"off"`.
pub(super) mod duration {
    use super::*;
    use std::time::Duration;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Flag(bool),
        Text(String),
    }

    pub(in crate::config) fn serialize<S: Serializer>(
        v: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => humantime_serde::serialize(d, s),
            None => s.serialize_str("off"),
        }
    }

    pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<Raw>::deserialize(d)? {
            None | Some(Raw::Flag(false)) => Ok(None),
            Some(Raw::Text(t)) if t == "off" => Ok(None),
            Some(Raw::Text(t)) => humantime_serde::re::humantime::parse_duration(&t)
                .map(Some)
                .map_err(|e| {
                    D::Error::custom(format!(
                        "{e}: expected a duration such as \"60s\", or \"off\""
                    ))
                }),
            Some(Raw::Flag(true)) => Err(D::Error::custom(
                "expected a duration such as \"60s\", or \"off\" (also `false` or null)",
            )),
        }
    }
}
