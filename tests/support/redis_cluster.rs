//! A throwaway Redis Cluster for tests: three primaries (no replicas) on free 127.0.0.1 ports,
//! persistence off, node files in a fresh directory; joined with `redis-cli --cluster create`
//! and stopped by their PIDs on drop (also when the test panics). Needs `redis_server`
//! (`#[path]`-included next to it) for the free ports.
#![allow(dead_code)]

use crate::redis_server::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the cluster may take to form (start, create, `cluster_state:ok` everywhere).
const FORM: Duration = Duration::from_secs(20);

/// A running three-primary cluster.
pub struct RedisCluster {
    children: Vec<Child>,
    /// The nodes' ports.
    pub ports: Vec<u16>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them into a cluster of three primaries
    /// (the slots split evenly) and waits until every node reports `cluster_state:ok`
    /// (at most 20 s, else panics; the servers are stopped either way).
    pub fn start() -> RedisCluster {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let dir = std::env::temp_dir().join(format!(
            "breakerbox-cluster-{}-{}",
            ports[0],
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a cluster directory");
        let mut cluster = RedisCluster {
            children: Vec::new(),
            ports,
            dir,
        };
        let deadline = Instant::now() + FORM;
        for &port in &cluster.ports.clone() {
            let conf = cluster.dir.join(format!("nodes-{port}.conf"));
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(&conf)
                .arg("--dir")
                .arg(&cluster.dir)
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            cluster.children.push(child);
        }
        for &port in &cluster.ports {
            while cli(port, &["PING"]).as_deref() != Some("PONG") {
                assert!(Instant::now() < deadline, "node {port} did not start");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run redis-cli --cluster create");
        assert!(created.success(), "redis-cli --cluster create failed");
        for &port in &cluster.ports {
            while !cli(port, &["CLUSTER", "INFO"]).is_some_and(|s| s.contains("cluster_state:ok")) {
                assert!(Instant::now() < deadline, "node {port}: cluster not ok");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        cluster
    }

    /// The nodes' URLs (`redis://127.0.0.1:<port>`).
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }
}

/// `redis-cli -p <port> <args>`'s output, trimmed (`None` if it could not run or failed).
pub fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = Command::new("kill")
                .args(["-9", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
