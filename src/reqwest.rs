//! A [`reqwest_middleware`] middleware: a breaker per downstream host for outbound HTTP calls
//! (feature `reqwest`), the Rust form of wrapping `requests`/`httpx` calls in a breaker.
//!
//! Breakers come from a [`Registry`], keyed by `host:port` (lower-cased), so each downstream
//! trips on its own, the registry's configuration applies (per host with
//! [`Registry::configure`]), and the registry's capacity limit bounds how many exist (hosts
//! beyond it share the [overflow breaker](Registry::overflow)). A rejected request never leaves
//! the process: it fails with [`CircuitOpen`], which carries the host and `retry_after`.
//!
//! ```no_run
//! use breakerbox::reqwest::{BreakerMiddleware, CircuitOpen};
//! use breakerbox::{Config, Registry};
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Arc::new(Registry::new(Config {
//!     failure_rate_threshold: None,
//!     consecutive_failures: Some(5),
//!     ..Config::default()
//! })?);
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(BreakerMiddleware::new(registry.clone()))
//!     .build();
//! match client.get("http://inventory.internal/items").send().await {
//!     Ok(res) => println!("{}", res.status()), // a 5xx here counted as a failure
//!     Err(e) => match CircuitOpen::find(&e) {
//!         Some(open) => println!("{} is down, retry in {:?}", open.host(), open.retry_after()),
//!         None => println!("transport error (counted as a failure): {e}"),
//!     },
//! }
//! # Ok(()) }
//! ```

use crate::clock::Clock;
use crate::{DefaultClock, Outcome, Registry, Rejected, State};
use http::Extensions;
use reqwest_middleware::{Middleware, Next};
use std::sync::Arc;
use std::time::Duration;

/// How a response (or transport error) counts: the default counts transport errors and `5xx`
/// responses as failures and everything else as a success.
pub type Classifier =
    Arc<dyn Fn(&reqwest_middleware::Result<::reqwest::Response>) -> Outcome + Send + Sync>;

/// Transport errors and `5xx` are failures; everything else (including `4xx`, which say
/// nothing about the downstream's health) is a success.
pub fn default_classify(r: &reqwest_middleware::Result<::reqwest::Response>) -> Outcome {
    match r {
        Ok(res) if res.status().is_server_error() => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

/// The configured classification of a response or transport error ([`default_classify`]
/// without rules).
fn classify_configured(
    configured: &crate::Classification,
    r: &reqwest_middleware::Result<::reqwest::Response>,
) -> Outcome {
    if configured.is_default() {
        return default_classify(r);
    }
    match r {
        Ok(res) => configured.classify_http(Some(res.status().as_u16()), None),
        Err(e) => configured.classify_http(e.status().map(|s| s.as_u16()), Some(e)),
    }
}

/// The middleware: one breaker per `host:port`, from a shared [`Registry`].
#[derive(Clone)]
pub struct BreakerMiddleware<C: Clock + Clone = DefaultClock> {
    registry: Arc<Registry<C>>,
    /// `None`: each breaker's configured classification (`Config::classification`).
    classify: Option<Classifier>,
}

impl<C: Clock + Clone> BreakerMiddleware<C> {
    /// Breakers from `registry`. Responses are classified by each breaker's configured
    /// [`Classification`](crate::Classification) (a response matched by its status, a transport
    /// error by its `source()` chain); without rules, by [`default_classify`].
    ///
    /// ```
    /// use breakerbox::reqwest::BreakerMiddleware;
    /// use breakerbox::{Config, Registry, Rule};
    /// use std::sync::Arc;
    ///
    /// let mut config = Config::default();
    /// // A 429 means "slow down", not "down": ignore it; a 503 opens at once.
    /// config.classification.ignore.push(Rule::status(429));
    /// config.classification.trip.push(Rule::status(503));
    /// let registry = Arc::new(Registry::new(config).unwrap());
    /// let middleware = BreakerMiddleware::new(registry);
    /// # let _ = middleware;
    /// ```
    pub fn new(registry: Arc<Registry<C>>) -> Self {
        BreakerMiddleware {
            registry,
            classify: None,
        }
    }

    /// Classifies responses with `f` instead of the breakers' configured classification
    /// (e.g. a `429` as a failure, a `503` with a `Retry-After` as ignored).
    pub fn classify(
        mut self,
        f: impl Fn(&reqwest_middleware::Result<::reqwest::Response>) -> Outcome + Send + Sync + 'static,
    ) -> Self {
        self.classify = Some(Arc::new(f));
        self
    }

    /// The registry the breakers come from.
    pub fn registry(&self) -> &Arc<Registry<C>> {
        &self.registry
    }
}

/// The breaker key of a URL: `host:port`, lower-cased (`"unknown"` without a host).
pub fn host_key(url: &::reqwest::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{}:{p}", h.to_ascii_lowercase()),
        (Some(h), None) => h.to_ascii_lowercase(),
        _ => "unknown".to_string(),
    }
}

#[async_trait::async_trait]
impl<C: Clock + Clone + 'static> Middleware for BreakerMiddleware<C> {
    async fn handle(
        &self,
        req: ::reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<::reqwest::Response> {
        let host = host_key(req.url());
        let breaker = self.registry.get(&host);
        // The permit lives across the await: a request future dropped mid-flight gives its
        // half-open slot back (the permit's drop is `Ignore`).
        let permit = match breaker.try_acquire_owned() {
            Ok(p) => p,
            Err(rejected) => {
                return Err(reqwest_middleware::Error::middleware(CircuitOpen {
                    host,
                    rejected,
                }))
            }
        };
        let result = next.run(req, extensions).await;
        let outcome = match &self.classify {
            Some(f) => f(&result),
            None => classify_configured(&breaker.config().classification, &result),
        };
        permit.record(outcome);
        result
    }
}

/// A request refused by the breaker of its host: it was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitOpen {
    host: String,
    rejected: Rejected,
}

impl CircuitOpen {
    /// The breaker key (`host:port`) that refused.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// When trial calls may next be admitted, if known.
    pub fn retry_after(&self) -> Option<Duration> {
        self.rejected.retry_after()
    }

    /// The state that refused (OPEN, HALF-OPEN with every trial slot taken, FORCED_OPEN).
    pub fn state(&self) -> State {
        self.rejected.state()
    }

    /// The rejection inside a `reqwest_middleware` error, if that is what it is.
    pub fn find(e: &reqwest_middleware::Error) -> Option<&CircuitOpen> {
        match e {
            reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<CircuitOpen>(),
            _ => None,
        }
    }
}

impl std::fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "circuit breaker for {} is {}", self.host, self.state())?;
        if let Some(d) = self.retry_after() {
            write!(f, "; retry in {:.3}s", d.as_secs_f64())?;
        }
        Ok(())
    }
}

impl std::error::Error for CircuitOpen {}

#[cfg(test)]
mod tests {
    use super::host_key;

    #[test]
    fn hosts_key_with_their_port() {
        let k = |u: &str| host_key(&::reqwest::Url::parse(u).unwrap());
        assert_eq!(k("http://API.Example.com/x"), "api.example.com:80");
        assert_eq!(k("https://api.example.com/x"), "api.example.com:443");
        assert_eq!(k("http://127.0.0.1:8080/"), "127.0.0.1:8080");
    }
}
