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
/// Implemented by [`ByPath`], [`ByHost`], [`ByRoute`] (feature `axum`) and every
/// `Fn(&Request<B>) -> String` closure.
///
/// Every distinct key creates a breaker in the registry that is never removed, up to the
/// registry's [capacity limit](Registry::capacity_limit); past it, new keys share the
/// registry's [overflow breaker](Registry::overflow) (see [`Keyed`]). Keys should come from a
/// small, bounded set (routes, upstream hosts), not from raw user input: on a server, an
/// attacker who picks keys can fill the registry, after which keys seen for the first time
/// share the overflow breaker.
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

/// One breaker per path: for tower clients, and for servers only where every request is routed.
///
/// Under the `axum` feature, when the request carries axum's `MatchedPath` (a request that
/// matched a route), the key is the route template (`/users/{id}`), so there is one breaker per
/// route. Otherwise the key is the raw request path. On an axum server, requests that match no
/// route (the fallback, 404s) carry no `MatchedPath` when the layer is added with
/// `Router::layer`, so their raw, client-chosen paths become keys: there, use [`ByRoute`]
/// ([`CircuitBreakerLayer::per_route`](super::CircuitBreakerLayer::per_route)), or add this
/// layer with `Router::route_layer`, which only runs for matched routes.
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

/// One breaker per axum route, for servers (feature `axum`): the key is the route template from
/// axum's `MatchedPath` (`/users/{id}`), never the raw path. Requests that matched no route
/// (the router's fallback) all share the key [`ByRoute::UNMATCHED`], so the set of keys is the
/// router's routes plus one, whatever paths clients send.
#[cfg(feature = "axum")]
#[derive(Clone, Copy, Debug, Default)]
pub struct ByRoute;

#[cfg(feature = "axum")]
impl ByRoute {
    /// The key of requests that matched no route.
    pub const UNMATCHED: &'static str = "(unmatched)";
}

#[cfg(feature = "axum")]
impl<B> KeyFn<B> for ByRoute {
    fn key<'r>(&self, req: &'r Request<B>) -> Cow<'r, str> {
        match req.extensions().get::<axum::extract::MatchedPath>() {
            Some(p) => Cow::Borrowed(p.as_str()),
            None => Cow::Borrowed(Self::UNMATCHED),
        }
    }
}

/// One breaker per host, for tower clients (whose requests name the upstream): the URI's host,
/// else the `Host` header, else `"unknown"`. The key is normalised: lowercase, without the port
/// or a trailing dot (`API.example.com.:443` -> `api.example.com`); a host longer than 253 bytes
/// (not a DNS name) is keyed `"invalid"`.
///
/// On a server the `Host` header is chosen by the client: every distinct value is a new key
/// until the registry is full (see [`KeyFn`]). Prefer a closure that maps the hosts you serve
/// to keys and everything else to one key.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByHost;

impl<B> KeyFn<B> for ByHost {
    fn key<'r>(&self, req: &'r Request<B>) -> Cow<'r, str> {
        let host = req.uri().host().or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(strip_port)
        });
        match host {
            Some(h) => normalise_host(h),
            None => Cow::Borrowed("unknown"),
        }
    }
}

/// The longest DNS name, in bytes.
const MAX_HOST_LEN: usize = 253;

/// Lowercase, without a trailing dot; `"unknown"` when empty, `"invalid"` when too long.
fn normalise_host(h: &str) -> Cow<'_, str> {
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.is_empty() {
        Cow::Borrowed("unknown")
    } else if h.len() > MAX_HOST_LEN {
        Cow::Borrowed("invalid")
    } else if h.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(h.to_ascii_lowercase())
    } else {
        Cow::Borrowed(h)
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
///
/// Keys go through [`Registry::try_get`]: when the registry is full (its
/// [capacity limit](Registry::capacity_limit)), a key that has no breaker yet is guarded by the
/// registry's shared [overflow breaker](Registry::overflow) instead, and a rejection by it
/// carries the key [`Registry::OVERFLOW`](Registry::<crate::DefaultClock>::OVERFLOW). Requests
/// are never refused for the registry being full alone, and keys that have their own breaker
/// are unaffected by the overflow keys.
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
        match self.registry.try_get(&key) {
            Ok(breaker) => breaker
                .try_acquire_owned()
                .map_err(|r| CircuitOpen::keyed(r, &*key)),
            Err(_full) => {
                let overflow = self.registry.overflow();
                overflow
                    .try_acquire_owned()
                    .map_err(|r| CircuitOpen::keyed(r, overflow.name()))
            }
        }
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

    fn host_req(host: &str) -> Request<()> {
        Request::get("/x")
            .header("host", host)
            .body(())
            .unwrap_or_default()
    }

    #[test]
    fn host_keys_are_normalised() {
        assert_eq!(
            ByHost.key(&host_req("API.Example.com.:443")),
            "api.example.com"
        );
        assert_eq!(ByHost.key(&host_req("api.example.com")), "api.example.com");
        assert!(matches!(
            ByHost.key(&host_req("api.example.com")),
            Cow::Borrowed(_)
        ));
        assert_eq!(ByHost.key(&host_req(":80")), "unknown");
        assert_eq!(ByHost.key(&host_req(&"a".repeat(254))), "invalid");
        assert_eq!(ByHost.key(&host_req(&"a".repeat(253))), "a".repeat(253));
        let req = Request::get("http://Payments.Internal.:8080/x")
            .body(())
            .unwrap_or_default();
        assert_eq!(ByHost.key(&req), "payments.internal");
    }

    /// 20,000 client-chosen `Host` headers through a per-host layer on the default registry:
    /// the registry stops at its limit and the rest share the overflow breaker (a regression
    /// test: every distinct host created a breaker that was never removed).
    #[test]
    fn attacker_chosen_hosts_do_not_grow_the_registry_past_its_limit() {
        let registry = Arc::new(
            Registry::with_clock(crate::Config::default(), crate::ManualClock::new()).unwrap(),
        );
        let keyed = Keyed::new(registry.clone(), ByHost);
        for i in 0..20_000 {
            let permit = keyed
                .acquire(&host_req(&format!("h{i}.attacker.test")))
                .expect("closed breakers admit");
            permit.success();
        }
        assert_eq!(registry.len(), 10_000);
        assert!(registry.existing("h0.attacker.test").is_some());
        assert!(registry.existing("h19999.attacker.test").is_none());
        assert_eq!(registry.overflow().metrics().calls, 10_000);
    }

    /// Past the limit: known keys keep their breaker; new keys go through the overflow breaker,
    /// and its rejections name it.
    #[test]
    fn full_registry_routes_new_keys_to_the_overflow_breaker() {
        let registry = Arc::new(
            Registry::with_clock(crate::Config::default(), crate::ManualClock::new())
                .unwrap()
                .with_capacity_limit(1)
                .expect("non-zero limit"),
        );
        let keyed = Keyed::new(registry.clone(), ByHost);
        keyed
            .acquire(&host_req("a.test"))
            .expect("admitted")
            .success();
        registry.overflow().force_open();
        let open = keyed
            .acquire(&host_req("b.test"))
            .expect_err("overflow open");
        assert_eq!(open.key(), Some(Registry::OVERFLOW));
        assert_eq!(open.state(), crate::State::ForcedOpen);
        keyed
            .acquire(&host_req("a.test"))
            .expect("a.test has its own breaker")
            .success();
        assert_eq!(registry.names(), ["a.test"]);
    }

    /// On an axum server, `ByRoute` keys by route template and puts every unmatched path on
    /// one key, where `ByPath` would key 404s by their raw path.
    #[cfg(feature = "axum")]
    #[tokio::test]
    async fn by_route_keys_by_template_never_by_raw_path() {
        use ::tower::{ServiceBuilder, ServiceExt};
        use axum::{error_handling::HandleErrorLayer, routing::get, Router};

        let registry = Arc::new(
            Registry::with_clock(crate::Config::default(), crate::ManualClock::new()).unwrap(),
        );
        let app: Router = Router::new()
            .route("/users/{id}", get(|| async { "ok" }))
            .layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(super::super::handle_error))
                    .layer(super::super::CircuitBreakerLayer::per_route(
                        registry.clone(),
                    )),
            );
        for path in ["/users/1", "/users/2", "/nope", "/../../etc", "/x/y/z"] {
            let req = Request::get(path)
                .body(axum::body::Body::empty())
                .expect("valid request");
            let _ = app.clone().oneshot(req).await;
        }
        assert_eq!(registry.names(), [ByRoute::UNMATCHED, "/users/{id}"]);
        let req = Request::get("/anything").body(()).unwrap_or_default();
        assert_eq!(ByRoute.key(&req), ByRoute::UNMATCHED);
    }
}
