//! The trip oracle: every trip (and every `RateExceeded`) must be justified by the real
//! history of outcomes, not only "nothing crashed".
//!
//! Workers record outcomes while another thread races them with resets, manual transitions
//! and half-open periods. Every recorded outcome gets an interval of global sequence numbers
//! (`start` before the permit reports, `end` after): the window can only have seen it between
//! the two. Every `RateExceeded` event carries the counts the breaker decided on, and the
//! thread that emits it is the one recording the outcome whose evaluation made the decision,
//! so the decision was made inside that outcome's interval `[a, b]`. After the run,
//! [`check`] verifies each decision against the record of every outcome:
//!
//! 1. **The failures it counted existed.** The failures decided on are at most the failures
//!    of that generation that could be in the window at some moment in `[a, b]`, plus the
//!    outcomes in flight the windows' documented approximations allow (see [`Slack`]).
//! 2. **Their calls were counted with them.** At the earliest moment `t` in `[a, b]` at which
//!    the generation had recorded that many failures, it had also completed `done(t)` calls;
//!    the calls decided on must be at least `min(done(t), window)` less the same slack. A
//!    reader that loads the calls before the failures (or a head older than the counts) sees
//!    many failures against few calls and fails this check by thousands.
//!
//! The slack is explicit and small: the outcomes in flight at the moment concerned (at most
//! one per worker) and, for the count window, successes a racing drain holds (`BATCH - 1` per
//! worker, only while another thread is inside a breaker operation), so the count window's
//! calls check is loose whenever another thread races the decision; the loom models check that
//! window's bracket exactly. The oracle runs at full tag width only: with 3-bit tags
//! (`--cfg breakerbox_narrow_tags`) a recorder preempted across a few of the disruptor's
//! transitions is past the tag protocol's stated bound (module doc of `window`), which the
//! full width puts at ~24,000 transitions.

use breakerbox::{CircuitBreaker, EventKind, ManualClock, Permit, TripReason};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// The count window's stripe batch (see `window::count::BATCH`).
#[cfg(not(breakerbox_narrow_tags))]
const BATCH: u64 = 4096;
#[cfg(breakerbox_narrow_tags)]
const BATCH: u64 = 2;

/// The global sequence: every interval bound is one `fetch_add` on it. SeqCst, so the order of
/// the numbers is one total order that agrees with happens-before.
static SEQ: AtomicU64 = AtomicU64::new(0);

fn tick() -> u64 {
    SEQ.fetch_add(1, SeqCst)
}

thread_local! {
    /// The outcome this thread is recording: (start, generation), if any.
    static CURRENT: Cell<Option<(u64, u32)>> = const { Cell::new(None) };
}

#[derive(Clone, Copy, Debug)]
struct Rec {
    start: u64,
    end: u64,
    gen: u32,
    failed: bool,
}

/// A decision: the counts a rate was decided on, made inside `[a, b]` for generation `gen`.
#[derive(Clone, Copy, Debug)]
struct Decision {
    a: u64,
    b: u64,
    gen: u32,
    calls: u64,
    failures: u64,
}

/// An interval in which some thread was inside a breaker operation other than recording
/// (a reset, a transition): a drain it makes may hold successes for a while.
#[derive(Clone, Copy, Debug)]
struct Op {
    start: u64,
    end: u64,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Count(u32),
    Time,
}

#[derive(Clone, Copy, Debug)]
enum Pattern {
    /// Each worker fails every second call: no 10 outcomes in a row of one generation can
    /// all be failures, so a threshold of 1.0 must never trip.
    Alternate,
    /// Fails at random with probability 1/2: a threshold of 0.6 trips now and then, for real.
    Random,
}

struct Scenario {
    kind: Kind,
    threshold: f64,
    minimum: u32,
    pattern: Pattern,
    workers: usize,
    /// Wall-clock bound of the run (count bounded too: see `max_resets`).
    run_for: Duration,
    max_resets: u64,
}

struct Run {
    recs: Vec<Rec>,
    decisions: Vec<Decision>,
    ops: Vec<Op>,
    resets: u64,
}

fn run(s: &Scenario) -> Run {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .clock(clock.clone())
        .failure_rate_threshold(s.threshold)
        .minimum_calls(s.minimum)
        .half_open_permits(2);
    let b = match s.kind {
        Kind::Count(n) => b.count_window(n),
        Kind::Time => b.time_window(Duration::from_secs(60), 60),
    };
    let breaker = Arc::new(b.build().unwrap());
    let decisions = Arc::new(Mutex::new(Vec::new()));
    {
        let decisions = decisions.clone();
        breaker.on_event(move |e| {
            if let EventKind::RateExceeded(TripReason::FailureRate {
                calls, failures, ..
            }) = e.kind
            {
                let b = tick();
                // Outside a recording (never expected) the decision cannot be justified:
                // generation `u32::MAX` has no outcomes, and the check reports it.
                let (a, gen) = CURRENT.get().unwrap_or((0, u32::MAX));
                decisions.lock().unwrap().push(Decision {
                    a,
                    b,
                    gen,
                    calls,
                    failures,
                });
            }
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let recorded = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(s.workers + 1));
    let workers: Vec<_> = (0..s.workers)
        .map(|w| {
            let (breaker, stop, barrier, pattern, recorded) = (
                breaker.clone(),
                stop.clone(),
                barrier.clone(),
                s.pattern,
                recorded.clone(),
            );
            std::thread::spawn(move || {
                let mut recs = Vec::new();
                let mut x = 0x9E37_79B9_u32 ^ (w as u32).wrapping_mul(0x85EB_CA6B) | 1;
                let mut n = 0u64;
                barrier.wait();
                while !stop.load(SeqCst) {
                    let Ok(p) = breaker.try_acquire() else {
                        std::hint::spin_loop();
                        continue;
                    };
                    n += 1;
                    // Leave the disruptor a share of a loaded machine.
                    if n.is_multiple_of(256) {
                        std::thread::yield_now();
                    }
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    let failed = match pattern {
                        Pattern::Alternate => n.is_multiple_of(2),
                        Pattern::Random => x & 1 == 0,
                    };
                    let gen = p.generation();
                    let trial = p.is_trial();
                    let start = tick();
                    CURRENT.set(Some((start, gen)));
                    report(p, failed);
                    CURRENT.set(None);
                    let end = tick();
                    // Relaxed: a progress count for the disruptor's loop bound.
                    recorded.fetch_add(1, Relaxed);
                    if !trial {
                        recs.push(Rec {
                            start,
                            end,
                            gen,
                            failed,
                        });
                    }
                }
                recs
            })
        })
        .collect();
    barrier.wait();
    // The disruptor: resets mostly, and now and then a manual transition or a half-open
    // period, as fast as it can: for `run_for` and at least `MIN_RESETS` operations and
    // `MIN_OUTCOMES` outcomes (however loaded the machine), at most `max_resets` operations or
    // `HARD_CAP` of wall time.
    const MIN_RESETS: u64 = 300;
    const MIN_OUTCOMES: u64 = 3_000;
    const HARD_CAP: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let (mut ops, mut resets) = (Vec::new(), 0u64);
    let mut y = 0x2545_F491_u32;
    while (started.elapsed() < s.run_for
        || resets < MIN_RESETS
        || recorded.load(Relaxed) < MIN_OUTCOMES)
        && resets < s.max_resets
        && started.elapsed() < HARD_CAP
    {
        y ^= y << 13;
        y ^= y >> 17;
        y ^= y << 5;
        let start = tick();
        match y % 20 {
            0 => breaker.transition_to_half_open(),
            1 => breaker
                .transition_to_open_for(Duration::from_secs(1))
                .unwrap(),
            2 => breaker.transition_to_closed(),
            _ => breaker.reset(),
        }
        ops.push(Op { start, end: tick() });
        resets += 1;
    }
    stop.store(true, SeqCst);
    let mut recs: Vec<Rec> = workers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    recs.sort_by_key(|r| r.start);
    let decisions = std::mem::take(&mut *decisions.lock().unwrap());
    Run {
        recs,
        decisions,
        ops,
        resets,
    }
}

fn report(p: Permit<'_, ManualClock>, failed: bool) {
    if failed {
        p.failure()
    } else {
        p.success()
    }
}

/// What the windows' documented approximations allow a decision beyond the history, in
/// outcomes; see the module doc.
#[derive(Debug)]
struct Slack {
    /// Failures that can be counted without their call, or outside the span they belong to.
    failures: u64,
    /// Calls that can be missing from the window's count.
    calls: u64,
}

fn slack(kind: Kind, run: &Run, gen: &[Rec], d: &Decision, workers: u64) -> Slack {
    let overlaps = |r: &Rec, lo: u64, hi: u64| r.start < hi && r.end > lo;
    // At any one instant each worker has at most one outcome in flight.
    let in_flight = (run.recs.iter().filter(|r| overlaps(r, d.a, d.b)).count() as u64).min(workers);
    match kind {
        Kind::Count(_) => {
            // Each recorder in flight when the counts are read may hold one evicted failure
            // not yet taken out of `counts`, or a claimed position not yet written.
            // Successes a racing drain took and has not merged: only while another thread
            // was inside an operation that drains (a record or a transition).
            let racing = in_flight > 1 || run.ops.iter().any(|o| o.start < d.a && o.end > d.a);
            let held = if racing { workers * (BATCH - 1) } else { 0 };
            Slack {
                failures: in_flight,
                calls: in_flight + held,
            }
        }
        Kind::Time => {
            // The generation's first bucket is claimed during one of its first records: an
            // outcome in flight across that snapshot, or an older generation's recorder that
            // passed the gate before the transition, adds a failure without its call (one per
            // worker for each).
            let first_start = gen.first().map_or(0, |r| r.start);
            let first_end = gen.iter().map(|r| r.end).min().unwrap_or(0);
            let straddlers = run
                .recs
                .iter()
                .filter(|r| {
                    r.failed
                        && r.end > first_start
                        && ((r.gen < d.gen && r.start < d.b) || r.start < first_end)
                })
                .count() as u64;
            Slack {
                failures: straddlers.min(2 * workers),
                calls: 0,
            }
        }
    }
}

/// Checks every decision of `run` against the history; returns the decisions that no state
/// of the history justifies, with what was found.
fn check(kind: Kind, run: &Run, workers: u64) -> Vec<String> {
    let mut by_gen: std::collections::HashMap<u32, Vec<Rec>> = Default::default();
    for r in &run.recs {
        by_gen.entry(r.gen).or_default().push(*r);
    }
    let none = Vec::new();
    let mut bad = Vec::new();
    for d in &run.decisions {
        let gen = by_gen.get(&d.gen).unwrap_or(&none);
        let sl = slack(kind, run, gen, d, workers);
        let window = match kind {
            Kind::Count(n) => u64::from(n),
            Kind::Time => u64::MAX,
        };
        // 1. Failures that could be in the window at some moment of [a, b]: started before b,
        //    and not pushed out by `calls` outcomes that surely came after them (completed
        //    before a, started after they ended), less what a racing drain may hold.
        let mut completed_before_a: Vec<u64> = gen
            .iter()
            .filter(|r| r.end < d.a)
            .map(|r| r.start)
            .collect();
        completed_before_a.sort_unstable();
        let candidates = gen
            .iter()
            .filter(|r| r.failed && r.start < d.b)
            .filter(|r| {
                let after =
                    completed_before_a.len() - completed_before_a.partition_point(|&s| s <= r.end);
                (after as u64) < d.calls.saturating_add(sl.calls)
            })
            .count() as u64;
        if d.failures > candidates + sl.failures {
            bad.push(format!(
                "{d:?}: {} failures decided on, at most {candidates} + slack {sl:?} could be \
                 in the window",
                d.failures
            ));
            continue;
        }
        // 2. The calls that came with them. Some set S of at least `need` failures was
        //    counted with its calls: the window's start comes before the call of each, so
        //    before `e = min end(S)`; and the reader saw each, so everything that completed
        //    before `s = max start(S)` happened before its read. Every outcome that started
        //    after `e` and completed before `s` is therefore a call in the window (up to its
        //    size). Justified if some S leaves the calls decided on enough room.
        let need = d.failures.saturating_sub(sl.failures) as usize;
        let least = fewest_calls_around(gen, d.b, need);
        let justified = match least {
            None => need == 0,
            Some(done) => d.calls.saturating_add(sl.calls) >= done.min(window),
        };
        if std::env::var_os("ORACLE_DEBUG").is_some() {
            eprintln!(
                "{d:?} slack {sl:?} candidates {candidates} gen {} need {need} least {least:?}",
                gen.len()
            );
        }
        if !justified {
            bad.push(format!(
                "{d:?}: {} failures decided on against {} calls, but any {need} of this \
                 generation's failures came with at least {least:?} calls (slack {sl:?})",
                d.failures, d.calls
            ));
        }
    }
    bad
}

/// Over every set S of `need` failures of `gen` started before `b`: the fewest outcomes that
/// started after S's earliest end and completed before S's latest start (`None` if there are
/// fewer than `need` such failures; `Some(0)` when `need` is 0).
///
/// The minimum is reached with S's earliest-ending member `x` and, given `x`, the `need`
/// earliest-starting failures among those that end no earlier than `x`. Processing failures
/// by end, latest first, a heap keeps those starts; each candidate `(e, s)` asks how many
/// outcomes lie strictly inside, which a Fenwick tree over the starts answers offline.
fn fewest_calls_around(gen: &[Rec], b: u64, need: usize) -> Option<u64> {
    if need == 0 {
        return Some(0);
    }
    let mut failures: Vec<&Rec> = gen.iter().filter(|r| r.failed && r.start < b).collect();
    if failures.len() < need {
        return None;
    }
    failures.sort_by_key(|r| std::cmp::Reverse(r.end));
    let mut kept = std::collections::BinaryHeap::new();
    let mut queries: Vec<(u64, u64)> = Vec::new();
    for f in &failures {
        kept.push(f.start);
        if kept.len() > need {
            kept.pop();
        }
        if kept.len() == need {
            queries.push((f.end, *kept.peek().unwrap()));
        }
    }
    // Count outcomes with start > e and end < s: by s ascending, add outcomes by end.
    let mut by_end: Vec<&Rec> = gen.iter().collect();
    by_end.sort_by_key(|r| r.end);
    let mut starts: Vec<u64> = gen.iter().map(|r| r.start).collect();
    starts.sort_unstable();
    let mut tree = vec![0u64; starts.len() + 1];
    queries.sort_by_key(|&(_, s)| s);
    let (mut next, mut added, mut best) = (0, 0u64, u64::MAX);
    for (e, s) in queries {
        while next < by_end.len() && by_end[next].end < s {
            let mut i = starts.partition_point(|&x| x <= by_end[next].start);
            while i < tree.len() {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
            added += 1;
            next += 1;
        }
        // Added outcomes with start <= e.
        let mut i = starts.partition_point(|&x| x <= e);
        let mut at_or_before = 0;
        while i > 0 {
            at_or_before += tree[i];
            i -= i & i.wrapping_neg();
        }
        best = best.min(added - at_or_before);
    }
    Some(best)
}

/// One scenario at a time: each already runs more threads than this machine may have cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn scenario(s: Scenario) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = run(&s);
    let bad = check(s.kind, &r, s.workers as u64);
    let outcomes = r.recs.len();
    eprintln!(
        "{:?} threshold {} pattern {:?}: {} outcomes, {} resets, {} decisions, {} unjustified",
        s.kind,
        s.threshold,
        s.pattern,
        outcomes,
        r.resets,
        r.decisions.len(),
        bad.len()
    );
    assert!(r.resets >= 100, "the disruptor ran only {} times", r.resets);
    assert!(outcomes >= 1_000, "only {outcomes} outcomes recorded");
    assert!(
        bad.is_empty(),
        "{} of {} decisions are not justified by the history:\n{}",
        bad.len(),
        r.decisions.len(),
        bad[..bad.len().min(5)].join("\n")
    );
}

/// Resolution of one run: a few seconds at most; with `ORACLE_SECS` longer (for soak loops).
fn run_for() -> Duration {
    let secs = std::env::var("ORACLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
        + 1
}

#[test]
fn time_window_never_trips_a_rate_the_history_never_reached() {
    scenario(Scenario {
        kind: Kind::Time,
        threshold: 1.0,
        minimum: 10,
        pattern: Pattern::Alternate,
        workers: workers(),
        run_for: run_for(),
        max_resets: 2_000_000,
    });
}

#[test]
fn time_window_trips_are_justified() {
    scenario(Scenario {
        kind: Kind::Time,
        threshold: 0.6,
        minimum: 10,
        pattern: Pattern::Random,
        workers: workers(),
        run_for: run_for(),
        max_resets: 2_000_000,
    });
}

#[test]
fn count_window_never_trips_a_rate_the_history_never_reached() {
    scenario(Scenario {
        kind: Kind::Count(100),
        threshold: 1.0,
        minimum: 10,
        pattern: Pattern::Alternate,
        workers: workers(),
        run_for: run_for(),
        max_resets: 2_000_000,
    });
}

#[test]
fn count_window_trips_are_justified() {
    scenario(Scenario {
        kind: Kind::Count(20),
        threshold: 0.6,
        minimum: 10,
        pattern: Pattern::Random,
        workers: workers(),
        run_for: run_for(),
        max_resets: 2_000_000,
    });
}

/// The checker itself: a decision the history cannot justify is reported (so a passing run
/// means something), and one it can is not.
#[test]
fn the_checker_rejects_rates_that_never_happened() {
    let recs: Vec<Rec> = (0..40u64)
        .map(|i| Rec {
            start: 2 * i,
            end: 2 * i + 1,
            gen: 1,
            failed: i % 2 == 0,
        })
        .collect();
    let run = |decisions| Run {
        recs: recs.clone(),
        decisions,
        ops: Vec::new(),
        resets: 0,
    };
    let at_end = |calls, failures| Decision {
        a: 79,
        b: 80,
        gen: 1,
        calls,
        failures,
    };
    // The whole generation, read right: 40 calls, 20 failures.
    assert!(check(Kind::Time, &run(vec![at_end(40, 20)]), 1).is_empty());
    // Calls read before failures: 10 calls against 20 failures (clamped to 10).
    assert_eq!(check(Kind::Time, &run(vec![at_end(10, 10)]), 1).len(), 1);
    // More failures than ever happened.
    assert_eq!(check(Kind::Time, &run(vec![at_end(40, 25)]), 1).len(), 1);
    // A count window of 10: the last 10 hold 5 failures; 10 of 10 never happened.
    assert!(check(Kind::Count(10), &run(vec![at_end(10, 5)]), 1).is_empty());
    assert_eq!(
        check(Kind::Count(10), &run(vec![at_end(10, 10)]), 1).len(),
        1
    );
}
