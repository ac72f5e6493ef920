//! A live page of every breaker in a [`Registry`] (feature `axum`): state, rates, calls and
//! rejections, refreshed as they change, plus the state changes seen since the page opened. One
//! self-contained HTML page (inline CSS and JS, no build step) that polls a JSON snapshot.
//!
//! ```no_run
//! # async fn run() {
//! use breakerbox::{tower::dashboard, Registry};
//! use std::sync::Arc;
//!
//! let registry = Arc::new(Registry::default());
//! let app = axum::Router::new().nest("/dashboard", dashboard(registry.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap(); // open http://127.0.0.1:8080/dashboard
//! # }
//! ```

use crate::clock::Clock;
use crate::{Metrics, Registry, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use std::fmt::Write as _;
use std::sync::Arc;

/// The dashboard's routes: `/` (the page) and `/metrics.json` (the snapshot it polls). Mount
/// it with `Router::nest` under any path.
pub fn dashboard<C>(registry: Arc<Registry<C>>) -> Router
where
    C: Clock + Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/metrics.json",
            get(move || {
                let registry = registry.clone();
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, "application/json"),
                            (header::CACHE_CONTROL, "no-store"),
                        ],
                        snapshot_json_due(&registry.metrics(), |name| {
                            registry.existing(name).is_some_and(|b| b.would_admit())
                        }),
                    )
                        .into_response()
                }
            }),
        )
}

/// The JSON the page polls: one object per breaker, sorted by name. `due` is true for an OPEN
/// breaker whose wait has passed (its next call is a trial): here, from the snapshot's
/// `retry_after`; the dashboard itself asks each breaker's `would_admit()`.
pub fn snapshot_json(all: &[Metrics]) -> String {
    snapshot_json_due(all, |_| false)
}

/// [`snapshot_json`], with `admits(name)` (the breaker's `would_admit()`) deciding whether an
/// OPEN breaker is due.
fn snapshot_json_due(all: &[Metrics], admits: impl Fn(&str) -> bool) -> String {
    let mut sorted: Vec<&Metrics> = all.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::from("[");
    for (i, m) in sorted.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"name\":{},\"state\":\"{}\",\"failure_rate\":{},\"slow_call_rate\":{},\
             \"window_calls\":{},\"calls\":{},\"failures\":{},\"rejected\":{},\
             \"times_opened\":{},\"retry_after_ms\":{},\"due\":{}}}",
            json_string(&m.name),
            m.state.as_str(),
            finite(m.failure_rate),
            finite(m.slow_call_rate),
            m.window_calls,
            m.calls,
            m.failures,
            m.rejected,
            m.times_opened,
            m.retry_after
                .map_or("null".to_string(), |d| d.as_millis().to_string()),
            m.state == State::Open
                && (m.retry_after.is_none_or(|d| d.is_zero()) || admits(&m.name)),
        );
    }
    out.push(']');
    out
}

fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>breakerbox</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
  h1 { font-size: 18px; margin: 0 0 12px; }
  table { border-collapse: collapse; min-width: 720px; }
  th, td { padding: 6px 12px; border-bottom: 1px solid #ddd; text-align: right; }
  th:first-child, td:first-child, th:nth-child(2), td.state { text-align: left; }
  td.state { font-weight: 600; text-transform: uppercase; white-space: nowrap; }
  .closed { color: #1a7f37; } .open, .forced_open { color: #cf222e; }
  .half_open { color: #9a6700; } .disabled, .metrics_only { color: #57606a; }
  #changes { margin-top: 16px; font-family: ui-monospace, monospace; white-space: pre; }
  #status { color: #57606a; margin-top: 8px; }
</style>
</head>
<body>
<h1>breakerbox: circuit breakers</h1>
<table>
  <thead><tr><th>breaker</th><th>state</th><th>failure rate</th><th>slow rate</th>
  <th>window calls</th><th>calls</th><th>failures</th><th>rejected</th><th>opened</th>
  <th>retry in</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<div id="status">loading...</div>
<div id="changes"></div>
<script>
  const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
  const last = {};
  let polls = 0;
  const pct = (x) => (100 * x).toFixed(0) + "%";
  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }
  async function poll() {
    try {
      const res = await fetch(base + "metrics.json", { cache: "no-store" });
      const all = await res.json();
      polls += 1;
      const rows = document.getElementById("rows");
      rows.replaceChildren();
      for (const m of all) {
        const tr = document.createElement("tr");
        tr.id = "breaker-" + m.name;
        tr.dataset.state = m.state;
        tr.append(
          cell(m.name), cell(m.state.replace("_", "-"), "state " + m.state),
          cell(pct(m.failure_rate)), cell(pct(m.slow_call_rate)), cell(m.window_calls),
          cell(m.calls), cell(m.failures), cell(m.rejected), cell(m.times_opened),
          cell(m.due ? "due" : m.retry_after_ms === null ? "" :
            (m.retry_after_ms / 1000).toFixed(1) + " s", m.due ? "due" : ""));
        rows.append(tr);
        if (last[m.name] !== undefined && last[m.name] !== m.state) {
          const line = new Date().toLocaleTimeString() + "  " + m.name + ": " +
            last[m.name] + " -> " + m.state + "\n";
          document.getElementById("changes").textContent += line;
        }
        last[m.name] = m.state;
      }
      document.getElementById("status").textContent =
        all.length + (all.length === 1 ? " breaker" : " breakers") + ", updated " + new Date().toLocaleTimeString() +
        " (poll " + polls + ")";
    } catch (e) {
      document.getElementById("status").textContent = "unreachable: " + e;
    }
    setTimeout(poll, 250);
  }
  poll();
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::{json_string, snapshot_json_due};
    use crate::{Config, ManualClock, Registry};
    use std::time::Duration;

    #[test]
    fn an_open_breaker_past_its_wait_is_due() {
        let clock = ManualClock::new();
        let registry = Registry::with_clock(Config::default(), clock.clone()).unwrap();
        let b = registry.get("payment");
        b.transition_to_open_for(Duration::from_secs(2)).unwrap();
        let json = |r: &Registry<ManualClock>| {
            snapshot_json_due(&r.metrics(), |n| {
                r.existing(n).is_some_and(|b| b.would_admit())
            })
        };
        assert!(
            json(&registry).contains("\"due\":false"),
            "{}",
            json(&registry)
        );
        clock.advance(Duration::from_secs(3));
        assert!(
            json(&registry).contains("\"due\":true"),
            "{}",
            json(&registry)
        );
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
