//! The dashboard in a real headless browser (Chromium, Debian's package; `.ci/run` installs it).
//! The page is served on 127.0.0.1 by this test (`BREAKERBOX_SCREENSHOT=docs/dashboard.png`
//! also writes the README's screenshot); while Chromium polls it, the server flips the
//! `payment` breaker open and then closed (on the 3rd and 6th poll), and the DOM the browser
//! ends with must show both state changes and the final states. Chromium is started as a child
//! process and killed by its PID if it outlives the time limit.
//!
//! Without a Chromium binary the test says so (on stderr and in `BREAKERBOX_SKIP_LOG`, which
//! `.ci/test.sh` summarises) and passes, unless `BREAKERBOX_REQUIRE_BROWSER`
//! is set (CI sets it, so there a missing browser fails).
#![cfg(feature = "axum")]

use axum::{extract::Request, middleware::Next, Router};
use breakerbox::{tower::dashboard, ManualClock, Registry};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Runs Chromium headless on `url` and returns the DOM after its scripts ran (`--dump-dom`),
/// or writes a screenshot. Killed by PID after 60 s.
fn browse(browser: &str, args: &[&str], url: &str) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=4000",
        ])
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Appends `<test binary>: <test>: <why>` to the file `BREAKERBOX_SKIP_LOG` names, if set:
/// `.ci/test.sh` prints those lines at the end, so a skip is seen without `--nocapture`.
fn record_skip(why: &str) {
    use std::io::Write;
    let Some(path) = std::env::var_os("BREAKERBOX_SKIP_LOG") else {
        return;
    };
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let line = format!("{}: {test}: {why}\n", env!("CARGO_CRATE_NAME"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut f) = file {
        let _ = f.write_all(line.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_breakers_flipping_open_and_closed() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("BREAKERBOX_REQUIRE_BROWSER").is_none(),
            "no chromium, and BREAKERBOX_REQUIRE_BROWSER is set"
        );
        let why = "no chromium binary (apt-get install chromium)";
        eprintln!("SKIPPED: {why}");
        record_skip(why);
        return;
    };
    let clock = ManualClock::new();
    let registry = Arc::new(Registry::with_clock(Default::default(), clock.clone()).unwrap());
    let payment = registry.get("payment");
    let inventory = registry.get("inventory");
    for _ in 0..3 {
        inventory.try_acquire().unwrap().success();
    }
    // OPEN with its wait over: the next call is a trial, and the page says "due".
    let shipping = registry.get("shipping");
    shipping
        .transition_to_open_for(Duration::from_secs(1))
        .unwrap();
    clock.advance(Duration::from_secs(2));
    // Flip `payment` on the server side as the page polls: open on the 3rd poll, closed on
    // the 6th.
    let polls = Arc::new(AtomicUsize::new(0));
    let (p, b) = (polls.clone(), payment.clone());
    let app = Router::new()
        .nest("/dashboard", dashboard(registry.clone()))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let (p, b) = (p.clone(), b.clone());
                async move {
                    if req.uri().path().ends_with("metrics.json") {
                        match p.fetch_add(1, Ordering::SeqCst) + 1 {
                            3 => b.force_open(),
                            6 => b.reset(),
                            _ => {}
                        }
                    }
                    next.run(req).await
                }
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let url = format!("http://{addr}/dashboard");
    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || browse(browser, &["--dump-dom"], &url)
    })
    .await
    .unwrap();
    assert!(
        polls.load(Ordering::SeqCst) >= 6,
        "the page polled {} times",
        polls.load(Ordering::SeqCst)
    );
    assert!(
        dom.contains(r#"id="breaker-payment" data-state="closed""#),
        "payment is not shown closed at the end:\n{dom}"
    );
    assert!(
        dom.contains(r#"id="breaker-inventory" data-state="closed""#),
        "{dom}"
    );
    assert!(
        dom.contains("payment: closed -&gt; forced_open"),
        "the page did not show payment opening:\n{dom}"
    );
    assert!(
        dom.contains("payment: forced_open -&gt; closed"),
        "the page did not show payment closing:\n{dom}"
    );
    assert!(
        dom.contains(r#"id="breaker-shipping" data-state="open""#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<td class="due">due</td>"#),
        "shipping (OPEN, wait over) is not shown as due:\n{dom}"
    );
    assert!(dom.contains("3 breakers"), "{dom}");

    // The README's screenshot, on request: payment forced open.
    if let Some(path) = std::env::var_os("BREAKERBOX_SCREENSHOT") {
        payment.force_open();
        let search = registry.get("search");
        for _ in 0..10 {
            if let Ok(p) = search.try_acquire() {
                p.failure();
            }
        }
        polls.store(100, Ordering::SeqCst);
        let shot = format!("--screenshot={}", path.to_string_lossy());
        tokio::task::spawn_blocking(move || {
            browse(browser, &[&shot, "--window-size=1000,300"], &url)
        })
        .await
        .unwrap();
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
