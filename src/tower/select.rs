//! Which breaker guards a request: one shared breaker, or one per key through a [`Registry`].

use super::error::CircuitOpen;
use crate::{CircuitBreaker, Clock, OwnedPermit, Registry};
use http::Request;
use std::borrow::Cow;
use std::sync::Arc;

/// Picks the breaker for a request and asks it for a permit.
///
/// Implemented by `Arc<CircuitBreaker<C>>` (every request goes through that one breaker) and by
/// [`Keyed`] (one breaker per key, from a [`Registry`]).
pub trait SelectBreaker<B> {
    /// The breakers' clock.
    type Clock: Clock;

    /// A permit for `req`, or the rejection.
    fn acquire(&self, req: &Request<B>) -> Result<OwnedPermit<Self::Clock>, CircuitOpen>;
}

impl<B, C: Clock> SelectBreaker<B> for Arc<CircuitBreaker<C>> {
    type Clock = C;

    #[inline]
    fn acquire(&self, _req: &Request<B>) -> Result<OwnedPermit<C>, CircuitOpen> {
        self.try_acquire_owned().map_err(CircuitOpen::new)
    }
}

/// Computes a request's breaker key.
///
/// Implemented by [`ByPath`], [`ByHost`] and every `Fn(&Request<B>) -> String` closure.
///
/// Every distinct key creates a breaker in the registry that is never removed: keys must come
/// from a small, bounded set (routes, upstream hosts), never from raw user input.
pub trait KeyFn<B> {
    /// The key of `req`.
    fn key<'r>(&self, req: &'r Request<B>) -> Cow<'r, str>;
}

impl<B, F> KeyFn<B> for F
where
    F: Fn(&Request<B>) -> String,
{
    fn key<'r>(&self, req: &'r Request<B>) -> Cow<'r, str> {
        Cow::Owned(self(req))
    }
}

/// One breaker per route.
///
/// Under the `axum` feature, when the request carries axum's `MatchedPath` (the layer was added
/// with `Router::route_layer`, or inside a nested router), the key is the route template
/// (`/users/{id}`), so there is one breaker per route. Otherwise the key is the request path:
/// only use it where the set of paths is bounded (see [`KeyFn`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ByPath;

impl<B> KeyFn<B> for ByPath {
    fn key<'r>(&self, req: &'r Request<B>) -> Cow<'r, str> {
        #[cfg(feature = "axum")]
        if let Some(p) = req.extensions().get::<axum::extract::MatchedPath>() {
            return Cow::Borrowed(p.as_str());
        }
        Cow::Borrowed(req.uri().path())
    }
}

/// One breaker per host: the URI's host (tower clients), else the `Host` header (servers),
/// else `"unknown"`. The port is not part of the key.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByHost;

impl<B> KeyFn<B> for ByHost {
    fn key<'r>(&self, req: &'r Request<B>) -> Cow<'r, str> {
        if let Some(h) = req.uri().host() {
            return Cow::Borrowed(h);
        }
        let header = req
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(strip_port);
        Cow::Borrowed(header.unwrap_or("unknown"))
    }
}

/// `host:port` -> `host`, `[::1]:80` -> `[::1]`.
fn strip_port(h: &str) -> &str {
    match h.rfind(':') {
        Some(i) if !h[i..].contains(']') => &h[..i],
        _ => h,
    }
}

/// One breaker per key, created on first use in a shared [`Registry`] (so per-key
/// configurations set with [`Registry::configure`] apply).
pub struct Keyed<K, C: Clock + Clone> {
    registry: Arc<Registry<C>>,
    key: K,
}

impl<K, C: Clock + Clone> Keyed<K, C> {
    /// Breakers from `registry`, keyed by `key`.
    pub fn new(registry: Arc<Registry<C>>, key: K) -> Self {
        Keyed { registry, key }
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry<C>> {
        &self.registry
    }
}

impl<K: Clone, C: Clock + Clone> Clone for Keyed<K, C> {
    fn clone(&self) -> Self {
        Keyed {
            registry: Arc::clone(&self.registry),
            key: self.key.clone(),
        }
    }
}

impl<K, C: Clock + Clone> std::fmt::Debug for Keyed<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyed")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl<B, K: KeyFn<B>, C: Clock + Clone> SelectBreaker<B> for Keyed<K, C> {
    type Clock = C;

    fn acquire(&self, req: &Request<B>) -> Result<OwnedPermit<C>, CircuitOpen> {
        let key = self.key.key(req);
        self.registry
            .get(&key)
            .try_acquire_owned()
            .map_err(|r| CircuitOpen::keyed(r, &*key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys() {
        let req = Request::get("http://payments.internal:8080/x")
            .body(())
            .unwrap_or_default();
        assert_eq!(ByHost.key(&req), "payments.internal");
        let req = Request::get("/x")
            .header("host", "inventory:81")
            .body(())
            .unwrap_or_default();
        assert_eq!(ByHost.key(&req), "inventory");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        let req = Request::get("/x").body(()).unwrap_or_default();
        assert_eq!(ByHost.key(&req), "unknown");
        assert_eq!(ByPath.key(&req), "/x");
    }
}
