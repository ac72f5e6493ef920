//! Classification configured once ([`Classification`], [`Rule`]): which results of a call
//! are failures, which are ignored, and which open the breaker at once.

use crate::events::Outcome;
use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::Arc;

/// How deep a rule follows an error's `source()` chain (a chain that loops ends here).
pub const MAX_SOURCE_DEPTH: usize = 32;

/// Which results of a call are failures, which are ignored,
/// and which open the breaker at once, configured once
/// ([`Config::classification`](crate::Config::classification)).
///
/// Every path that is not given a classifier of its own uses it: [`call`], [`call_async`],
/// [`Permit::record_result`], the tower layer's default classifier and the reqwest
/// middleware's default. A classifier given explicitly (`call_with`, a layer's `classify`, the
/// middleware's `classify`) replaces it for that path.
///
/// A result is decided in this order, the first that matches winning:
/// 1. a rule in [`ignore`](Classification::ignore) matches: [`Outcome::Ignore`] (nothing is
///    recorded; a half-open trial gives its slot back);
/// 2. a rule in [`trip`](Classification::trip) matches: [`Outcome::Trip`] (a failure that opens
///    the breaker at once);
/// 3. [`record`](Classification::record) is empty: every error is a failure (for HTTP: a
///    transport error or a `5xx`), everything else a success. Otherwise only results that a
///    rule of `record` matches are failures, and every other result, error or not, is a success.
///
/// This is resilience4j's `ignoreExceptions` / `recordExceptions` / `recordResult` precedence,
/// with `trip` in the place of its `transitionOnResult`.
///
/// ```
/// use breakerbox::{CircuitBreaker, Classification, Outcome, Rule, State};
/// use std::io;
///
/// let breaker = CircuitBreaker::builder()
///     .consecutive_failures(3)
///     // A missing file says nothing about the disk's health.
///     .ignore(Rule::io(io::ErrorKind::NotFound))
///     // A full disk will not heal by retrying: open at once.
///     .trip_on(Rule::io(io::ErrorKind::StorageFull))
///     .build()
///     .unwrap();
///
/// let missing = breaker.call(|| Err::<(), _>(io::Error::from(io::ErrorKind::NotFound)));
/// assert!(missing.is_err());
/// assert_eq!(breaker.metrics().failures, 0); // ignored
///
/// let _ = breaker.call(|| Err::<(), _>(io::Error::from(io::ErrorKind::StorageFull)));
/// assert_eq!(breaker.state(), State::Open);
/// ```
///
/// In a config file (feature `serde`) the rules that need no code can be written out:
/// `any_error`, `{ status = 503 }` or `{ status = "500-599" }` (or `"5xx"`), and
/// `{ io_error = "timed_out" }` (an [`std::io::ErrorKind`] in snake case). Rules with a
/// predicate ([`Rule::error`], [`Rule::source`], [`Rule::value`]) exist only in code.
///
/// [`call`]: crate::CircuitBreaker::call
/// [`call_async`]: crate::CircuitBreaker::call_async
/// [`Permit::record_result`]: crate::Permit::record_result
#[derive(Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Classification {
    /// Results these match are ignored: nothing is recorded (checked first).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub ignore: Vec<Rule>,
    /// Results these match are failures that open the breaker at once ([`Outcome::Trip`]).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub trip: Vec<Rule>,
    /// When not empty, only results these match are failures; every other result is a
    /// success. When empty, every error is a failure.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub record: Vec<Rule>,
}

/// The facts a rule looks at: one finished call, its types erased.
struct Subject<'a> {
    /// The `Ok` value.
    value: Option<&'a dyn Any>,
    /// The error value.
    error: Option<&'a dyn Any>,
    /// The error as a `std::error::Error`, when it is one of the shapes known to be one, for
    /// its `source()` chain.
    source: Option<&'a (dyn StdError + 'static)>,
    /// The default verdict: an `Err`; for HTTP, a transport error or a `5xx`.
    failed: bool,
    /// The HTTP status, for a response.
    status: Option<u16>,
}

/// The error as a `std::error::Error`, for the shapes that are one whatever `E` is: boxed
/// errors, `Arc`ed errors and `std::io::Error`.
fn as_std_error<E: 'static>(e: &E) -> Option<&(dyn StdError + 'static)> {
    let any: &dyn Any = e;
    if let Some(b) = any.downcast_ref::<Box<dyn StdError + Send + Sync>>() {
        return Some(&**b);
    }
    if let Some(b) = any.downcast_ref::<Box<dyn StdError + Send>>() {
        return Some(&**b);
    }
    if let Some(b) = any.downcast_ref::<Box<dyn StdError>>() {
        return Some(&**b);
    }
    if let Some(b) = any.downcast_ref::<Arc<dyn StdError + Send + Sync>>() {
        return Some(&**b);
    }
    if let Some(e) = any.downcast_ref::<io::Error>() {
        return Some(e);
    }
    None
}

/// `e` and its sources, at most [`MAX_SOURCE_DEPTH`] of them.
fn chain<'a>(
    e: Option<&'a (dyn StdError + 'static)>,
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(e, |&e: &&'a (dyn StdError + 'static)| e.source()).take(MAX_SOURCE_DEPTH)
}

type Predicate = Arc<dyn Fn(&Subject<'_>) -> bool + Send + Sync>;

/// One rule of a [`Classification`]: what kind of result it matches.
#[derive(Clone)]
pub struct Rule(Matcher);

#[derive(Clone)]
enum Matcher {
    AnyError,
    Status {
        from: u16,
        to: u16,
    },
    Io(io::ErrorKind),
    Predicate {
        what: &'static str,
        of: &'static str,
        f: Predicate,
    },
}

impl Rule {
    /// Any error: an `Err`, or for HTTP a transport error (not a response, whatever its status).
    pub fn any_error() -> Rule {
        Rule(Matcher::AnyError)
    }

    /// An HTTP response with status `code` (the tower layer, the reqwest middleware, or
    /// [`Classification::classify_http`]). Valid codes are `100 ..= 999`; validation refuses
    /// others.
    pub fn status(code: u16) -> Rule {
        Rule(Matcher::Status {
            from: code,
            to: code,
        })
    }

    /// An HTTP response with a status in `from ..= to` (within `100 ..= 999`, `from <= to`).
    pub fn status_range(from: u16, to: u16) -> Rule {
        Rule(Matcher::Status { from, to })
    }

    /// An error that is, or has in its `source()` chain, an [`std::io::Error`] of `kind`. The
    /// chain is followed for errors that are an `io::Error`, a `Box<dyn Error>` (with or
    /// without `Send + Sync`), an `Arc<dyn Error + Send + Sync>`, or the transport error of
    /// the HTTP integrations.
    pub fn io(kind: io::ErrorKind) -> Rule {
        Rule(Matcher::Io(kind))
    }

    /// An error of type `X` for which `pred` holds: the call's error type is `X` itself (any
    /// type, error trait or not). [`Rule::source`] also searches inside boxed errors and along
    /// their `source()` chain.
    ///
    /// ```
    /// use breakerbox::{Classification, Outcome, Rule};
    /// #[derive(Debug)]
    /// struct Http(u16);
    /// let c = Classification {
    ///     ignore: vec![Rule::error(|e: &Http| e.0 == 404)],
    ///     ..Classification::default()
    /// };
    /// assert_eq!(c.classify(&Err::<(), _>(Http(404))), Outcome::Ignore);
    /// assert_eq!(c.classify(&Err::<(), _>(Http(500))), Outcome::Failure);
    /// ```
    pub fn error<X: 'static>(pred: impl Fn(&X) -> bool + Send + Sync + 'static) -> Rule {
        Rule(Matcher::Predicate {
            what: "error",
            of: std::any::type_name::<X>(),
            f: Arc::new(move |s: &Subject<'_>| {
                s.error
                    .and_then(|e| e.downcast_ref::<X>())
                    .is_some_and(&pred)
            }),
        })
    }

    /// An error of type `X` anywhere in the error's `source()` chain (the error itself first)
    /// for which `pred` holds. The chain is known for the shapes listed at [`Rule::io`].
    pub fn source<X: StdError + 'static>(
        pred: impl Fn(&X) -> bool + Send + Sync + 'static,
    ) -> Rule {
        Rule(Matcher::Predicate {
            what: "source",
            of: std::any::type_name::<X>(),
            f: Arc::new(move |s: &Subject<'_>| {
                if let Some(x) = s.error.and_then(|e| e.downcast_ref::<X>()) {
                    if pred(x) {
                        return true;
                    }
                }
                chain(s.source).any(|e| e.downcast_ref::<X>().is_some_and(&pred))
            }),
        })
    }

    /// An `Ok` value of type `T` for which `pred` holds (resilience4j's `recordResult`): put
    /// it in [`record`](Classification::record) to count such values as failures.
    ///
    /// ```
    /// use breakerbox::{Classification, Outcome, Rule};
    /// let c = Classification {
    ///     record: vec![Rule::any_error(), Rule::value(|body: &String| body.is_empty())],
    ///     ..Classification::default()
    /// };
    /// assert_eq!(c.classify(&Ok::<_, ()>(String::new())), Outcome::Failure);
    /// assert_eq!(c.classify(&Ok::<_, ()>("ok".to_string())), Outcome::Success);
    /// assert_eq!(c.classify(&Err::<String, _>(())), Outcome::Failure);
    /// ```
    pub fn value<T: 'static>(pred: impl Fn(&T) -> bool + Send + Sync + 'static) -> Rule {
        Rule(Matcher::Predicate {
            what: "value",
            of: std::any::type_name::<T>(),
            f: Arc::new(move |s: &Subject<'_>| {
                s.value
                    .and_then(|v| v.downcast_ref::<T>())
                    .is_some_and(&pred)
            }),
        })
    }

    fn matches(&self, s: &Subject<'_>) -> bool {
        match &self.0 {
            Matcher::AnyError => s.error.is_some() || s.source.is_some(),
            Matcher::Status { from, to } => s.status.is_some_and(|c| (*from..=*to).contains(&c)),
            Matcher::Io(kind) => {
                s.error
                    .and_then(|e| e.downcast_ref::<io::Error>())
                    .is_some_and(|e| e.kind() == *kind)
                    || chain(s.source).any(|e| {
                        e.downcast_ref::<io::Error>()
                            .is_some_and(|e| e.kind() == *kind)
                    })
            }
            Matcher::Predicate { f, .. } => f(s),
        }
    }

    /// The status range of a status rule.
    pub(crate) fn status_bounds(&self) -> Option<(u16, u16)> {
        match self.0 {
            Matcher::Status { from, to } => Some((from, to)),
            _ => None,
        }
    }
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        match (&self.0, &other.0) {
            (Matcher::AnyError, Matcher::AnyError) => true,
            (Matcher::Status { from: a, to: b }, Matcher::Status { from: c, to: d }) => {
                a == c && b == d
            }
            (Matcher::Io(a), Matcher::Io(b)) => a == b,
            (Matcher::Predicate { f: a, .. }, Matcher::Predicate { f: b, .. }) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Matcher::AnyError => f.write_str("any_error"),
            Matcher::Status { from, to } if from == to => write!(f, "status {from}"),
            Matcher::Status { from, to } => write!(f, "status {from}-{to}"),
            Matcher::Io(kind) => write!(f, "io_error {kind:?}"),
            Matcher::Predicate { what, of, .. } => write!(f, "{what}<{of}>(predicate)"),
        }
    }
}

impl fmt::Debug for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classification")
            .field("ignore", &self.ignore)
            .field("trip", &self.trip)
            .field("record", &self.record)
            .finish()
    }
}

impl Classification {
    /// No rules: the default classification.
    pub fn is_default(&self) -> bool {
        self.ignore.is_empty() && self.trip.is_empty() && self.record.is_empty()
    }

    /// The outcome of a call's result.
    pub fn classify<T: 'static, E: 'static>(&self, result: &Result<T, E>) -> Outcome {
        let subject = match result {
            Ok(v) => Subject {
                value: Some(v),
                error: None,
                source: None,
                failed: false,
                status: None,
            },
            Err(e) => Subject {
                value: None,
                error: Some(e),
                source: as_std_error(e),
                failed: true,
                status: None,
            },
        };
        self.decide(&subject)
    }

    /// The outcome of an HTTP exchange: a response with `status`, or a transport `error`. The
    /// default (no `record` rules) counts a transport error or a `5xx` as a failure. The tower
    /// layer and the reqwest middleware call this; so can an integration of your own.
    pub fn classify_http(
        &self,
        status: Option<u16>,
        error: Option<&(dyn StdError + 'static)>,
    ) -> Outcome {
        self.decide(&Subject {
            value: None,
            error: None,
            source: error,
            failed: error.is_some() || status.is_some_and(|s| s >= 500),
            status,
        })
    }

    /// [`classify_http`](Self::classify_http) for a transport error of any type (the tower
    /// layer's inner error): its chain is known for the shapes listed at [`Rule::io`].
    #[cfg(feature = "tower")]
    pub(crate) fn classify_http_any<E: 'static>(
        &self,
        status: Option<u16>,
        error: Option<&E>,
    ) -> Outcome {
        self.decide(&Subject {
            value: None,
            error: error.map(|e| e as &dyn Any),
            source: error.and_then(as_std_error),
            failed: error.is_some() || status.is_some_and(|s| s >= 500),
            status,
        })
    }

    fn decide(&self, s: &Subject<'_>) -> Outcome {
        if self.ignore.iter().any(|r| r.matches(s)) {
            return Outcome::Ignore;
        }
        if self.trip.iter().any(|r| r.matches(s)) {
            return Outcome::Trip;
        }
        let failed = if self.record.is_empty() {
            s.failed
        } else {
            self.record.iter().any(|r| r.matches(s))
        };
        if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }

    /// Every rule with the name of the list it is in, for validation.
    pub(crate) fn rules(&self) -> impl Iterator<Item = (&'static str, &Rule)> {
        self.ignore
            .iter()
            .map(|r| ("classification.ignore", r))
            .chain(self.trip.iter().map(|r| ("classification.trip", r)))
            .chain(self.record.iter().map(|r| ("classification.record", r)))
    }
}

#[cfg(feature = "serde")]
mod file {
    //! How a rule is written in a config file: parsed and bounded here, in one place.

    use super::{Matcher, Rule};
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::io::ErrorKind;

    /// The `io::ErrorKind`s a config file can name, in snake case.
    const IO_KINDS: &[(&str, ErrorKind)] = &[
        ("not_found", ErrorKind::NotFound),
        ("permission_denied", ErrorKind::PermissionDenied),
        ("connection_refused", ErrorKind::ConnectionRefused),
        ("connection_reset", ErrorKind::ConnectionReset),
        ("host_unreachable", ErrorKind::HostUnreachable),
        ("network_unreachable", ErrorKind::NetworkUnreachable),
        ("connection_aborted", ErrorKind::ConnectionAborted),
        ("not_connected", ErrorKind::NotConnected),
        ("addr_in_use", ErrorKind::AddrInUse),
        ("addr_not_available", ErrorKind::AddrNotAvailable),
        ("network_down", ErrorKind::NetworkDown),
        ("broken_pipe", ErrorKind::BrokenPipe),
        ("already_exists", ErrorKind::AlreadyExists),
        ("would_block", ErrorKind::WouldBlock),
        ("invalid_input", ErrorKind::InvalidInput),
        ("invalid_data", ErrorKind::InvalidData),
        ("timed_out", ErrorKind::TimedOut),
        ("write_zero", ErrorKind::WriteZero),
        ("storage_full", ErrorKind::StorageFull),
        ("resource_busy", ErrorKind::ResourceBusy),
        ("deadlock", ErrorKind::Deadlock),
        ("interrupted", ErrorKind::Interrupted),
        ("unsupported", ErrorKind::Unsupported),
        ("unexpected_eof", ErrorKind::UnexpectedEof),
        ("out_of_memory", ErrorKind::OutOfMemory),
        ("other", ErrorKind::Other),
    ];

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum RuleFile {
        AnyError,
        Status(StatusFile),
        IoError(String),
    }

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum StatusFile {
        Code(u64),
        Text(String),
    }

    /// `"503"`, `"500-599"` or `"5xx"` to a range within `100 ..= 999`.
    fn parse_status(s: &StatusFile) -> Result<(u16, u16), String> {
        let bound = |n: u64| -> Result<u16, String> {
            if (100..=999).contains(&n) {
                Ok(n as u16)
            } else {
                Err(format!("HTTP status {n} is outside 100 ..= 999"))
            }
        };
        let number = |t: &str| -> Result<u16, String> {
            t.trim()
                .parse::<u64>()
                .map_err(|_| {
                    format!(
                        "`{}` is not an HTTP status",
                        t.chars().take(32).collect::<String>()
                    )
                })
                .and_then(bound)
        };
        let (from, to) = match s {
            StatusFile::Code(n) => (bound(*n)?, bound(*n)?),
            StatusFile::Text(t) => {
                let t = t.trim();
                if let Some(d) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
                    let d = match d.as_bytes() {
                        [c @ b'1'..=b'9'] => u16::from(c - b'0'),
                        _ => {
                            return Err(format!(
                                "`{}` is not a status class such as `5xx`",
                                t.chars().take(32).collect::<String>()
                            ))
                        }
                    };
                    (d * 100, d * 100 + 99)
                } else if let Some((a, b)) = t.split_once('-') {
                    (number(a)?, number(b)?)
                } else {
                    let n = number(t)?;
                    (n, n)
                }
            }
        };
        if from > to {
            return Err(format!("HTTP status range {from}-{to} is empty"));
        }
        Ok((from, to))
    }

    impl Serialize for Rule {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let file = match &self.0 {
                Matcher::AnyError => RuleFile::AnyError,
                Matcher::Status { from, to } if from == to => {
                    RuleFile::Status(StatusFile::Code(u64::from(*from)))
                }
                Matcher::Status { from, to } => {
                    RuleFile::Status(StatusFile::Text(format!("{from}-{to}")))
                }
                Matcher::Io(kind) => match IO_KINDS.iter().find(|(_, k)| k == kind) {
                    Some((name, _)) => RuleFile::IoError((*name).to_string()),
                    None => {
                        return Err(serde::ser::Error::custom(format!(
                            "io error kind {kind:?} has no name in a config file"
                        )))
                    }
                },
                Matcher::Predicate { .. } => {
                    return Err(serde::ser::Error::custom(format!(
                        "the rule {self:?} is code (a predicate) and cannot be written to a config file"
                    )))
                }
            };
            file.serialize(s)
        }
    }

    impl<'de> Deserialize<'de> for Rule {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
            Ok(Rule(match RuleFile::deserialize(d)? {
                RuleFile::AnyError => Matcher::AnyError,
                RuleFile::Status(s) => {
                    let (from, to) = parse_status(&s).map_err(D::Error::custom)?;
                    Matcher::Status { from, to }
                }
                RuleFile::IoError(name) => match IO_KINDS.iter().find(|(n, _)| *n == name) {
                    Some((_, kind)) => Matcher::Io(*kind),
                    None => {
                        return Err(D::Error::custom(format!(
                            "unknown io error kind `{}` (expected one of: {})",
                            name.chars().take(32).collect::<String>(),
                            IO_KINDS
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )))
                    }
                },
            }))
        }
    }
}
