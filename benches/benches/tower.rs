//! The tower layer (feature `tower`) against a bare pass-through service.
//!
//! The inner service is `tower::service_fn` returning a ready future with an empty 200
//! response. Each iteration builds a `Request<()>`, polls `poll_ready`, calls, and polls the
//! response future once with a no-op waker (it completes on the first poll): no runtime is
//! involved, so the difference between `passthrough` and `breakerbox_*` is the layer's own
//! cost (permit acquire, `Arc` clone for the owned permit, outcome classification and record).
//!
//! Run: `cargo bench -p breakerbox-bench --bench tower`.

use breakerbox::tower::CircuitBreakerLayer;
use breakerbox::{CircuitBreaker, State};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tower::{Layer, Service};

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn inner() -> impl Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<()>, Infallible>>,
> + Clone {
    tower::service_fn(|_req: Request<()>| std::future::ready(Ok(Response::new(()))))
}

/// One request through `svc`, polled to completion by hand.
#[inline]
fn one<S>(svc: &mut S, cx: &mut Context<'_>) -> bool
where
    S: Service<Request<()>, Response = Response<()>>,
{
    match svc.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        _ => panic!("service not ready"),
    }
    let fut = pin!(svc.call(Request::new(())));
    match fut.poll(cx) {
        Poll::Ready(r) => r.is_ok(),
        Poll::Pending => panic!("ready future pending"),
    }
}

fn tower_layer(c: &mut Criterion) {
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut g = c.benchmark_group("tower");

    let mut bare = inner();
    assert!(one(&mut bare, &mut cx));
    g.bench_function("passthrough", |x| {
        x.iter(|| black_box(one(&mut bare, &mut cx)))
    });

    let breaker = Arc::new(
        CircuitBreaker::builder()
            .open_wait(Duration::from_secs(3600))
            .build()
            .unwrap(),
    );
    let mut closed = CircuitBreakerLayer::new(breaker.clone()).layer(inner());
    assert!(one(&mut closed, &mut cx));
    g.bench_function("breakerbox_closed", |x| {
        x.iter(|| black_box(one(&mut closed, &mut cx)))
    });

    let open = Arc::new(
        CircuitBreaker::builder()
            .consecutive_failures(1)
            .open_wait(Duration::from_secs(3600))
            .build()
            .unwrap(),
    );
    open.try_acquire().unwrap().failure();
    assert_eq!(open.state(), State::Open);
    let mut rejecting = CircuitBreakerLayer::new(open).layer(inner());
    assert!(!one(&mut rejecting, &mut cx));
    g.bench_function("breakerbox_open", |x| {
        x.iter(|| black_box(one(&mut rejecting, &mut cx)))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = tower_layer
}
criterion_main!(benches);
