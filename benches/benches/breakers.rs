//! breakerbox against its peers, in one criterion run.
//!
//! Every benchmark measures one call's worth of breaker work (no work inside the "call"):
//! - `closed/*`: ask for admission + record a success;
//! - `open/*`: ask for admission and get rejected (each breaker is asserted open first);
//! - `half_open/*`: acquire a trial permit + give it back, while half-open with a large cap;
//! - `trip/*`: one full trip: reset (or build, where a peer has no reset) + N failures until open;
//! - `window/*`: breakerbox's closed call on a count window and on a time window;
//! - `threads/*/N`: the closed (or open) call on one shared breaker from N threads at once
//!   (N = `BENCH_THREADS`, default 2); time per call per thread;
//! - `registry/get`: `Registry::get` of an existing name among 1,000;
//! - `floor/*`: one relaxed `fetch_add` and one atomic load, the cost of touching one shared word.
//!
//! tower-resilience-circuitbreaker is async: its calls run inside one `block_on` of a
//! current-thread tokio runtime per criterion sample (`iter_custom`), so the runtime is entered
//! once per batch, not once per call.
//!
//! Run: `cargo bench -p breakerbox-bench --bench breakers` (see benches/report.sh for the full report).

use breakerbox::{CircuitBreaker, Registry, State};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[path = "support/naive.rs"]
mod naive;
use naive::{NaiveBreaker, NaiveState};

const HOUR: Duration = Duration::from_secs(3600);
/// Failures that trip the consecutive-failure configurations.
const TRIP_N: u32 = 5;

// ----- breakerbox configurations ------------------------------------------------------------

/// The default configuration: failure rate 50 % over a count window of 100, minimum 10 calls.
fn bb_default() -> CircuitBreaker {
    CircuitBreaker::builder().open_wait(HOUR).build().unwrap()
}

fn bb_consecutive(n: u32) -> CircuitBreaker {
    CircuitBreaker::builder()
        .no_failure_rate()
        .consecutive_failures(n)
        .open_wait(HOUR)
        .build()
        .unwrap()
}

fn bb_time_window() -> CircuitBreaker {
    CircuitBreaker::builder()
        .time_window(Duration::from_secs(60), 60)
        .open_wait(HOUR)
        .build()
        .unwrap()
}

fn bb_open() -> CircuitBreaker {
    let b = bb_consecutive(1);
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
    assert!(b.try_acquire().is_err());
    b
}

#[inline]
fn bb_closed_call(b: &CircuitBreaker) {
    match b.try_acquire() {
        Ok(p) => p.success(),
        Err(e) => {
            black_box(e);
        }
    }
}

#[inline]
fn bb_open_call(b: &CircuitBreaker) {
    black_box(b.try_acquire().is_err());
}

/// The closure form of the closed call, the API users reach for first.
#[inline]
fn bb_call(b: &CircuitBreaker) {
    let _ = black_box(b.call(|| Ok::<_, ()>(black_box(1u32))));
}

// ----- peers --------------------------------------------------------------------------------

type FsConsecutive = failsafe::StateMachine<
    failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>,
    (),
>;

fn failsafe_consecutive(n: u32) -> FsConsecutive {
    failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            n,
            failsafe::backoff::constant(HOUR),
        ))
        .build()
}

#[inline]
fn fs_closed_call<P: failsafe::failure_policy::FailurePolicy>(cb: &failsafe::StateMachine<P, ()>) {
    if black_box(cb.is_call_permitted()) {
        cb.on_success();
    }
}

fn recloser_breaker(closed_len: usize) -> recloser::Recloser {
    recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(closed_len)
        .open_wait(HOUR)
        .build()
}

#[inline]
fn rc_call(rc: &recloser::Recloser, ok: bool) {
    let r = rc.call(|| if ok { Ok(()) } else { Err(()) });
    black_box(r.is_ok());
}

fn naive_breaker() -> NaiveBreaker {
    NaiveBreaker::new(TRIP_N, HOUR, u32::MAX, u32::MAX)
}

#[inline]
fn naive_closed_call(n: &NaiveBreaker) {
    if let Ok(a) = black_box(n.acquire()) {
        n.record(a, true);
    }
}

type TrcbService = tower_resilience_circuitbreaker::CircuitBreaker<
    tower::util::ServiceFn<fn(bool) -> std::future::Ready<Result<u32, ()>>>,
    tower_resilience_circuitbreaker::DefaultClassifier,
>;

fn ready_svc(ok: bool) -> std::future::Ready<Result<u32, ()>> {
    std::future::ready(if ok { Ok(1) } else { Err(()) })
}

fn trcb(consecutive: usize) -> TrcbService {
    use tower::Layer;
    let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .consecutive_failures(consecutive)
        .wait_duration_in_open(HOUR)
        .build()
        .unwrap();
    let f: fn(bool) -> std::future::Ready<Result<u32, ()>> = ready_svc;
    layer.layer(tower::service_fn(f))
}

async fn trcb_call(svc: &mut TrcbService, ok: bool) {
    use tower::{Service, ServiceExt};
    let r = match svc.ready().await {
        Ok(s) => s.call(ok).await,
        Err(e) => Err(e),
    };
    black_box(r.is_ok());
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Times `iters` async calls inside one `block_on`.
fn trcb_batch(
    rt: &tokio::runtime::Runtime,
    svc: &mut TrcbService,
    ok: bool,
    iters: u64,
) -> Duration {
    rt.block_on(async {
        let t = Instant::now();
        for _ in 0..iters {
            trcb_call(svc, ok).await;
        }
        t.elapsed()
    })
}

// ----- groups -------------------------------------------------------------------------------

fn closed(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed");
    let b = bb_default();
    g.bench_function("breakerbox", |x| x.iter(|| bb_closed_call(&b)));
    g.bench_function("breakerbox_call", |x| x.iter(|| bb_call(&b)));
    let b = bb_consecutive(TRIP_N);
    g.bench_function("breakerbox_consecutive", |x| x.iter(|| bb_closed_call(&b)));
    let fs = failsafe_consecutive(TRIP_N);
    g.bench_function("failsafe_consecutive", |x| x.iter(|| fs_closed_call(&fs)));
    let fsd = failsafe::Config::new().build();
    g.bench_function("failsafe_default", |x| x.iter(|| fs_closed_call(&fsd)));
    let rc = recloser_breaker(100);
    g.bench_function("recloser", |x| x.iter(|| rc_call(&rc, true)));
    let nv = naive_breaker();
    g.bench_function("mutex_naive", |x| x.iter(|| naive_closed_call(&nv)));
    let rt = rt();
    let mut svc = trcb(TRIP_N as usize);
    g.bench_function("tower_resilience", |x| {
        x.iter_custom(|iters| trcb_batch(&rt, &mut svc, true, iters))
    });
    g.finish();
}

fn open(c: &mut Criterion) {
    let mut g = c.benchmark_group("open");
    let b = bb_open();
    g.bench_function("breakerbox", |x| x.iter(|| bb_open_call(&b)));

    let fs = failsafe_consecutive(TRIP_N);
    for _ in 0..TRIP_N {
        fs.on_error();
    }
    assert!(!fs.is_call_permitted(), "failsafe must be open");
    g.bench_function("failsafe_consecutive", |x| {
        x.iter(|| black_box(fs.is_call_permitted()))
    });
    // failsafe's default policy opens for 5..=10 s (jittered); the measurement of one sample is
    // far shorter, but re-trip it before each sample to be sure.
    let fsd = failsafe::Config::new().build();
    g.bench_function("failsafe_default", |x| {
        x.iter_custom(|iters| {
            fsd.reset();
            for _ in 0..5 {
                fsd.on_error();
            }
            assert!(!fsd.is_call_permitted(), "failsafe default must be open");
            let t = Instant::now();
            for _ in 0..iters {
                black_box(fsd.is_call_permitted());
            }
            t.elapsed()
        })
    });

    let rc = recloser_breaker(10);
    for _ in 0..11 {
        rc_call(&rc, false);
    }
    assert!(
        matches!(rc.call(|| Ok::<(), ()>(())), Err(recloser::Error::Rejected)),
        "recloser must be open"
    );
    g.bench_function("recloser", |x| x.iter(|| rc_call(&rc, true)));

    let nv = naive_breaker();
    for _ in 0..TRIP_N {
        let a = nv.acquire().unwrap();
        nv.record(a, false);
    }
    assert!(matches!(nv.state(), NaiveState::Open { .. }));
    g.bench_function("mutex_naive", |x| {
        x.iter(|| black_box(nv.acquire().is_err()))
    });

    let rt = rt();
    let mut svc = trcb(TRIP_N as usize);
    rt.block_on(async {
        for _ in 0..TRIP_N {
            trcb_call(&mut svc, false).await;
        }
    });
    assert!(svc.is_open(), "tower-resilience must be open");
    g.bench_function("tower_resilience", |x| {
        x.iter_custom(|iters| trcb_batch(&rt, &mut svc, true, iters))
    });
    g.finish();
}

fn half_open(c: &mut Criterion) {
    let mut g = c.benchmark_group("half_open");
    // Large cap, many successes needed: acquire + give back keeps it half-open forever.
    let b = CircuitBreaker::builder()
        .no_failure_rate()
        .consecutive_failures(1)
        .open_wait(Duration::from_millis(1))
        .half_open_permits(breakerbox::MAX_HALF_OPEN)
        .half_open_successes(breakerbox::MAX_HALF_OPEN)
        .build()
        .unwrap();
    b.try_acquire().unwrap().failure();
    std::thread::sleep(Duration::from_millis(20));
    let first = b.try_acquire().unwrap();
    assert_eq!(b.state(), State::HalfOpen);
    g.bench_function("breakerbox", |x| {
        x.iter(|| match b.try_acquire() {
            Ok(p) => p.ignore(),
            Err(e) => {
                black_box(e);
            }
        })
    });
    drop(first);

    let nv = NaiveBreaker::new(1, Duration::from_millis(1), u32::MAX, u32::MAX);
    let a = nv.acquire().unwrap();
    nv.record(a, false);
    std::thread::sleep(Duration::from_millis(20));
    let _first = nv.acquire().unwrap();
    assert!(matches!(nv.state(), NaiveState::HalfOpen { .. }));
    g.bench_function("mutex_naive", |x| {
        x.iter(|| {
            if let Ok(a) = black_box(nv.acquire()) {
                nv.release(a);
            }
        })
    });
    g.finish();
}

fn trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("trip");
    // breakerbox, consecutive failures: reset + 5 × (acquire + failure); the 5th trips it.
    let b = bb_consecutive(TRIP_N);
    let bb_trip = |b: &CircuitBreaker, n: u32| {
        b.reset();
        for _ in 0..n {
            if let Ok(p) = b.try_acquire() {
                p.failure();
            }
        }
    };
    bb_trip(&b, TRIP_N);
    assert_eq!(b.state(), State::Open);
    g.bench_function("breakerbox_consecutive5", |x| {
        x.iter(|| bb_trip(&b, TRIP_N))
    });
    // breakerbox, failure rate 50 % over a count window of 100, minimum 10: reset + 10 failures.
    let b = bb_default();
    bb_trip(&b, 10);
    assert_eq!(b.state(), State::Open);
    g.bench_function("breakerbox_rate10", |x| x.iter(|| bb_trip(&b, 10)));
    let b = CircuitBreaker::builder()
        .time_window(Duration::from_secs(60), 60)
        .open_wait(HOUR)
        .build()
        .unwrap();
    bb_trip(&b, 10);
    assert_eq!(b.state(), State::Open);
    g.bench_function("breakerbox_time_rate10", |x| x.iter(|| bb_trip(&b, 10)));

    fn fs_trip<P: failsafe::failure_policy::FailurePolicy>(
        fs: &failsafe::StateMachine<P, ()>,
        n: u32,
    ) {
        fs.reset();
        for _ in 0..n {
            if fs.is_call_permitted() {
                fs.on_error();
            }
        }
    }
    let fs = failsafe_consecutive(TRIP_N);
    fs_trip(&fs, TRIP_N);
    assert!(!fs.is_call_permitted());
    g.bench_function("failsafe_consecutive5", |x| x.iter(|| fs_trip(&fs, TRIP_N)));
    let fsd = failsafe::Config::new().build();
    fs_trip(&fsd, 5);
    assert!(!fsd.is_call_permitted());
    g.bench_function("failsafe_default5", |x| x.iter(|| fs_trip(&fsd, 5)));

    // recloser has no reset: build a fresh one (closed_len 5) and fail 6 times (its ring must
    // fill before it computes a rate). Includes construction (allocation) cost.
    g.bench_function("recloser_build_fail6", |x| {
        x.iter(|| {
            let rc = recloser_breaker(TRIP_N as usize);
            for _ in 0..=TRIP_N {
                rc_call(&rc, false);
            }
            black_box(rc)
        })
    });
    let rc = recloser_breaker(TRIP_N as usize);
    for _ in 0..=TRIP_N {
        rc_call(&rc, false);
    }
    assert!(matches!(
        rc.call(|| Ok::<(), ()>(())),
        Err(recloser::Error::Rejected)
    ));

    let nv = naive_breaker();
    let nv_trip = |nv: &NaiveBreaker| {
        nv.reset();
        for _ in 0..TRIP_N {
            if let Ok(a) = nv.acquire() {
                nv.record(a, false);
            }
        }
    };
    nv_trip(&nv);
    assert!(matches!(nv.state(), NaiveState::Open { .. }));
    g.bench_function("mutex_naive5", |x| x.iter(|| nv_trip(&nv)));

    let rt = rt();
    let mut svc = trcb(TRIP_N as usize);
    rt.block_on(async {
        svc.force_closed().await;
        for _ in 0..TRIP_N {
            trcb_call(&mut svc, false).await;
        }
    });
    assert!(svc.is_open());
    g.bench_function("tower_resilience5", |x| {
        x.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    svc.force_closed().await;
                    for _ in 0..TRIP_N {
                        trcb_call(&mut svc, false).await;
                    }
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

fn window(c: &mut Criterion) {
    let mut g = c.benchmark_group("window");
    let b = bb_default();
    g.bench_function("count100", |x| x.iter(|| bb_closed_call(&b)));
    let b = bb_time_window();
    g.bench_function("time60s_60buckets", |x| x.iter(|| bb_closed_call(&b)));
    g.finish();
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (ns; Linux). `None`
/// elsewhere.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Per shared-breaker benchmark: total thread CPU time and total wall time of its samples, to
/// tell whether its threads really ran in parallel (CPU / wall ≈ N) or shared a core (≈ 1).
static PARALLEL: std::sync::Mutex<Vec<(String, Duration, Duration)>> =
    std::sync::Mutex::new(Vec::new());

fn note_parallel(name: &str, cpu: Duration, wall: Duration) {
    let mut v = PARALLEL.lock().unwrap();
    match v.iter_mut().find(|e| e.0 == name) {
        Some(e) => {
            e.1 += cpu;
            e.2 += wall;
        }
        None => v.push((name.to_string(), cpu, wall)),
    }
}

/// Writes `<criterion dir>/parallelism.txt` (`name cpu/wall`) and prints it; a ratio well
/// below the thread count means the threads shared a core and the run proves nothing.
fn report_parallel(n: usize) {
    // Bench binaries run in the package's directory: default to the workspace's target dir.
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    let mut text = String::new();
    for (name, cpu, wall) in PARALLEL.lock().unwrap().iter() {
        let r = cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9);
        let verdict = if r >= 0.9 * n as f64 {
            "parallel"
        } else {
            "NOT parallel: proves nothing"
        };
        text.push_str(&format!("{name} {r:.2}\n"));
        eprintln!("threads/{name}/{n}: CPU/wall {r:.2} ({verdict})");
    }
    let _ = std::fs::create_dir_all(format!("{dir}/criterion"));
    let _ = std::fs::write(format!("{dir}/criterion/parallelism.txt"), text);
}

/// Spawns `n` threads once per sample; each runs `body(barrier, iters)`, which sets itself up,
/// waits on the barrier, and returns the time of its `iters` calls. Returns the mean per-thread
/// time, so criterion reports time per call per thread.
fn per_thread(
    n: usize,
    iters: u64,
    name: &str,
    body: &(dyn Fn(&Barrier, u64) -> Duration + Sync),
) -> Duration {
    let barrier = Barrier::new(n);
    let runs: Vec<(Duration, Option<Duration>)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let cpu0 = thread_cpu();
                    let d = body(&barrier, iters);
                    (d, thread_cpu().zip(cpu0).map(|(a, b)| a.saturating_sub(b)))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: Duration = runs.iter().map(|r| r.0).sum();
    if let Some(cpu) = runs.iter().map(|r| r.1).sum::<Option<Duration>>() {
        let wall = runs.iter().map(|r| r.0).max().unwrap_or_default();
        note_parallel(name, cpu, wall);
    }
    total / n as u32
}

fn time_loop(barrier: &Barrier, iters: u64, mut f: impl FnMut()) -> Duration {
    barrier.wait();
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed()
}

fn bench_threads() -> usize {
    std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(2)
}

fn threads(c: &mut Criterion) {
    let n = bench_threads();
    let mut g = c.benchmark_group("threads");
    let id = |name: &str| BenchmarkId::new(name, n);

    let b = bb_default();
    g.bench_function(id("breakerbox_closed"), |x| {
        x.iter_custom(|it| {
            per_thread(n, it, "breakerbox_closed", &|bar, it| {
                time_loop(bar, it, || bb_closed_call(&b))
            })
        })
    });
    let b = bb_time_window();
    g.bench_function(id("breakerbox_time_closed"), |x| {
        x.iter_custom(|it| {
            per_thread(n, it, "breakerbox_time_closed", &|bar, it| {
                time_loop(bar, it, || bb_closed_call(&b))
            })
        })
    });
    let b = bb_default();
    g.bench_function(id("breakerbox_call_closed"), |x| {
        x.iter_custom(|it| {
            per_thread(n, it, "breakerbox_call_closed", &|bar, it| {
                time_loop(bar, it, || bb_call(&b))
            })
        })
    });
    let b = bb_open();
    g.bench_function(id("breakerbox_call_open"), |x| {
        x.iter_custom(|it| {
            per_thread(n, it, "breakerbox_call_open", &|bar, it| {
                time_loop(bar, it, || bb_call(&b))
            })
        })
    });
    let b = bb_open();
    g.bench_function(id("breakerbox_open"), |x| {
        x.iter_custom(|it| {
            per_thread(n, it, "breakerbox_open", &|bar, it| {
                time_loop(bar, it, || bb_open_call(&b))
            })
        })
    });
    let fs = failsafe_consecutive(TRIP_N);
    g.bench_function(id("failsafe_consecutive_closed"), |x| {
        x.iter_custom(|it| {
            per_thread(n, it, "failsafe_consecutive_closed", &|bar, it| {
                time_loop(bar, it, || fs_closed_call(&fs))
            })
        })
    });
    let rc = recloser_breaker(100);
    g.bench_function(id("recloser_closed"), |x| {
        x.iter_custom(|it| {
            per_thread(n, it, "recloser_closed", &|bar, it| {
                time_loop(bar, it, || rc_call(&rc, true))
            })
        })
    });
    let nv = naive_breaker();
    g.bench_function(id("mutex_naive_closed"), |x| {
        x.iter_custom(|it| {
            per_thread(n, it, "mutex_naive_closed", &|bar, it| {
                time_loop(bar, it, || naive_closed_call(&nv))
            })
        })
    });
    // One circuit shared by clones of the service; one current-thread runtime per thread,
    // entered once per sample.
    let svc = trcb(TRIP_N as usize);
    g.bench_function(id("tower_resilience_closed"), |x| {
        x.iter_custom(|it| {
            per_thread(n, it, "tower_resilience_closed", &|bar, it| {
                let rt = rt();
                let mut s = svc.clone();
                bar.wait();
                trcb_batch(&rt, &mut s, true, it)
            })
        })
    });
    let ctr = AtomicU64::new(0);
    g.bench_function(id("floor_fetch_add"), |x| {
        x.iter_custom(|it| {
            per_thread(n, it, "floor_fetch_add", &|bar, it| {
                time_loop(bar, it, || {
                    black_box(black_box(&ctr).fetch_add(1, Ordering::Relaxed));
                })
            })
        })
    });
    let word = AtomicU64::new(7);
    g.bench_function(id("floor_load"), |x| {
        x.iter_custom(|it| {
            per_thread(n, it, "floor_load", &|bar, it| {
                time_loop(bar, it, || {
                    black_box(black_box(&word).load(Ordering::Acquire));
                })
            })
        })
    });
    g.finish();
    report_parallel(n);
}

fn registry(c: &mut Criterion) {
    let mut g = c.benchmark_group("registry");
    let reg = Registry::default();
    for i in 0..1_000 {
        reg.get(&format!("service-{i}"));
    }
    assert_eq!(reg.len(), 1_000);
    let name = String::from("service-500");
    g.bench_function("get_existing_of_1000", |x| {
        x.iter(|| black_box(reg.get(black_box(&name))))
    });
    g.bench_function("with_existing_of_1000", |x| {
        x.iter(|| reg.with(black_box(&name), |b| black_box(b.state())))
    });
    let shared = Arc::new(bb_default());
    g.bench_function("arc_clone_drop", |x| {
        x.iter(|| black_box(Arc::clone(&shared)))
    });
    g.finish();
}

fn floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("floor");
    let ctr = AtomicU64::new(0);
    g.bench_function("fetch_add_relaxed", |x| {
        x.iter(|| black_box(black_box(&ctr).fetch_add(1, Ordering::Relaxed)))
    });
    let word = AtomicU64::new(7);
    g.bench_function("load_acquire", |x| {
        x.iter(|| black_box(black_box(&word).load(Ordering::Acquire)))
    });
    // What a counted rejection or a striped success must at least do: add one to a word only
    // this thread writes (a load and a store). Back to back, each load waits for the previous
    // store (store-to-load forwarding), so this is a latency, not a throughput.
    #[repr(align(128))]
    struct Line(AtomicU64);
    let own = Line(AtomicU64::new(0));
    g.bench_function("own_line_increment", |x| {
        x.iter(|| {
            let w = black_box(&own.0);
            w.store(w.load(Ordering::Relaxed) + 1, Ordering::Relaxed)
        })
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
    targets = floor, closed, open, half_open, trip, window, threads, registry
}
criterion_main!(benches);
