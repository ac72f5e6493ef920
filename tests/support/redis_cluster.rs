//! A throwaway Redis Cluster for tests: three primaries (and optionally a replica of each) on
//! free 127.0.0.1 ports, persistence off, node files in a fresh directory; joined with
//! `redis-cli --cluster create` and stopped by their PIDs on drop (also when the test panics). Needs `redis_server`
//! (`#[path]`-included next to it) for the free ports.
#![allow(dead_code)]

use crate::redis_server::{free_port, server_bin};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the cluster may take to form (start, create, `cluster_state:ok` everywhere).
const FORM: Duration = Duration::from_secs(20);

/// A running cluster of three primaries (and their replicas, if asked).
pub struct RedisCluster {
    children: Vec<Option<Child>>,
    /// The nodes' ports.
    pub ports: Vec<u16>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them into a cluster of three primaries
    /// (the slots split evenly) and waits until every node reports `cluster_state:ok`
    /// (at most 20 s, else panics; the servers are stopped either way).
    pub fn start() -> RedisCluster {
        Self::start_with(0)
    }

    /// As [`start`](Self::start), with `replicas` replicas of each primary, a node timeout of
    /// 2 s (so that a replica takes over from a failed primary within a few seconds), and a
    /// wait until every replica is in sync.
    pub fn start_with(replicas: usize) -> RedisCluster {
        let ports: Vec<u16> = (0..3 * (1 + replicas)).map(|_| free_port()).collect();
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
        // With replicas, a short node timeout, so that a failover is quick; without, the
        // default (15 s), so that a loaded machine never marks a primary as failed.
        let node_timeout = if replicas > 0 { "2000" } else { "15000" };
        for &port in &cluster.ports.clone() {
            let conf = cluster.dir.join(format!("nodes-{port}.conf"));
            let child = Command::new(server_bin())
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(&conf)
                .arg("--dir")
                .arg(&cluster.dir)
                .args(["--save", "", "--appendonly", "no"])
                .args(["--cluster-node-timeout", node_timeout])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            cluster.children.push(Some(child));
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
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
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
        for &port in &cluster.ports {
            while !cli(port, &["INFO", "replication"])
                .is_some_and(|s| s.contains("role:master") || s.contains("master_link_status:up"))
            {
                assert!(Instant::now() < deadline, "replica {port} not in sync");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        cluster
    }

    /// The port of the primary that serves `slot`, as `port` (a live node) sees it.
    pub fn primary_of(&self, port: u16, slot: u16) -> Option<u16> {
        let nodes = cli(port, &["CLUSTER", "NODES"])?;
        nodes.lines().find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (addr, flags) = (f.get(1)?, f.get(2)?);
            if !flags.contains("master") || flags.contains("fail") {
                return None;
            }
            let serves = f.iter().skip(8).any(|r| {
                let mut it = r.splitn(2, '-').map(|n| n.parse::<u16>().ok());
                match (it.next().flatten(), it.next()) {
                    (Some(a), None) => a == slot,
                    (Some(a), Some(Some(b))) => (a..=b).contains(&slot),
                    _ => false,
                }
            });
            let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
            serves.then_some(port)
        })
    }

    /// Kills the node on `port` by its PID (SIGKILL: a crash).
    pub fn kill(&mut self, port: u16) {
        if let Some(i) = self.ports.iter().position(|&p| p == port) {
            if let Some(mut c) = self.children[i].take() {
                kill(&mut c);
            }
        }
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
        for c in self.children.iter_mut().flatten() {
            kill(c);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kill(c: &mut Child) {
    let _ = Command::new("kill")
        .args(["-9", &c.id().to_string()])
        .status();
    let _ = c.wait();
}
