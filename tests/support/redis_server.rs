//! A throwaway `redis-server` for tests and the `fleet` example: started on 127.0.0.1 on a free
//! port with persistence off (unless asked), stopped by its PID (on `kill` or drop). Shared by
//! `tests/fleet*.rs` and `examples/fleet.rs` (`#[path]`-included, so it is written once).
//!
//! `BREAKERBOX_REDIS_SERVER` names another server binary to run instead (`valkey-server`: the
//! same tests on Valkey, as `.ci/valkey.sh` runs them).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` child process.
pub struct RedisServer {
    child: Option<Child>,
    /// The port it listens on (kept across `restart`).
    pub port: u16,
    /// Extra `redis-server` arguments (kept across `restart`).
    extra: Vec<String>,
    /// The data directory of a persistent server (removed on drop).
    dir: Option<std::path::PathBuf>,
}

/// The server binary: `$BREAKERBOX_REDIS_SERVER`, or `redis-server` from the PATH.
pub fn server_bin() -> std::ffi::OsString {
    std::env::var_os("BREAKERBOX_REDIS_SERVER").unwrap_or_else(|| "redis-server".into())
}

/// Whether a `redis-server` binary is on the PATH. When not (and `BREAKERBOX_REQUIRE_REDIS` is
/// unset, so the caller skips), appends `<binary>: <test>: <why>` to `BREAKERBOX_SKIP_LOG`.
pub fn available() -> bool {
    let found = Command::new(server_bin())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if let (false, None, Some(log)) = (
        found,
        std::env::var_os("BREAKERBOX_REQUIRE_REDIS"),
        std::env::var_os("BREAKERBOX_SKIP_LOG"),
    ) {
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        let line = format!(
            "{}: {test}: no {} on PATH\n",
            env!("CARGO_CRATE_NAME"),
            server_bin().to_string_lossy()
        );
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log);
        let _ = file.and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    }
    found
}

/// Whether the Redis tests can run: `true` if a `redis-server` is on the PATH; otherwise says
/// so and returns `false` (the caller skips), unless `BREAKERBOX_REQUIRE_REDIS` is set, which
/// makes it fail.
pub fn usable() -> bool {
    if available() {
        return true;
    }
    assert!(
        std::env::var_os("BREAKERBOX_REQUIRE_REDIS").is_none(),
        "BREAKERBOX_REQUIRE_REDIS is set but there is no {}",
        server_bin().to_string_lossy()
    );
    eprintln!(
        "{} not found: skipping (install redis-server to run this test)",
        server_bin().to_string_lossy()
    );
    false
}

/// The `redis-server` binary's (major, minor) version, if it runs.
pub fn version() -> Option<(u32, u32)> {
    let out = Command::new(server_bin()).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.split_whitespace().find_map(|w| w.strip_prefix("v="))?;
    let mut it = v.split('.').map(|n| n.parse().ok());
    Some((it.next()??, it.next()??))
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl RedisServer {
    /// Starts a server on a free port and waits until it accepts connections (at most 10 s).
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// As [`start`](Self::start), with extra `redis-server` arguments (they override the
    /// defaults).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut s = RedisServer {
            child: None,
            port: free_port(),
            extra: extra.iter().map(|a| a.to_string()).collect(),
            dir: None,
        };
        s.restart();
        s
    }

    /// As [`start`](Self::start), but persistent: an append-only file synced on every write,
    /// in a fresh directory, so a `kill` loses nothing and `restart` brings the data back.
    pub fn start_persistent() -> RedisServer {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("breakerbox-redis-{port}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a data directory");
        let mut s = RedisServer {
            child: None,
            port,
            extra: ["--appendonly", "yes", "--appendfsync", "always", "--dir"]
                .iter()
                .map(|a| a.to_string())
                .chain([dir.display().to_string()])
                .collect(),
            dir: Some(dir),
        };
        s.restart();
        s
    }

    /// The server's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (`"STOP"`, `"CONT"`, ...) to the server by its PID.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), pid.to_string()])
                .status();
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(server_bin())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start in 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the server by its PID (SIGKILL: a crash, not a shutdown; it also ends a
    /// stopped one) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-9", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
