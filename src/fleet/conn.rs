//! The connection to the fleet's Redis, one node or a cluster, behind one type: the task and
//! the scripts speak the same protocol over either ([`Connection`] is a
//! [`ConnectionLike`](redis::aio::ConnectionLike)).
//!
//! On a cluster every key of one breaker lives in one hash slot (see `scripts::Keys`), so each
//! script, and each pipeline of the task (the record, its expiry and `TIME`), runs on the node
//! that owns that slot: the cluster connection routes a pipeline to the slot of its first key,
//! and a script (`EVALSHA`, loaded with `SCRIPT LOAD` on every primary when a node answers
//! `NOSCRIPT`) to the slot of its keys.

use super::config::FleetError;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;

/// Where the fleet's Redis is: one server, or the nodes of a cluster to discover it from.
#[derive(Clone)]
pub(super) enum Servers {
    /// One server's URL.
    Single(String),
    /// Some nodes of a cluster (the rest are discovered).
    Cluster(Vec<String>),
}

/// `url` with its credentials (`user:password@`) shown as `***@`, for `Debug` output.
pub(super) fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// The most seed nodes a cluster configuration may list.
pub(super) const MAX_NODES: usize = 1000;

/// A client for [`Servers`]: opens [`Connection`]s.
pub(super) enum Client {
    Single(redis::Client, redis::AsyncConnectionConfig),
    Cluster(ClusterClient),
}

impl Client {
    /// A client for `servers` whose connections time out after `timeout` (connecting and each
    /// round trip). The setting that is wrong if the addresses do not parse.
    pub(super) fn open(servers: &Servers, timeout: Duration) -> Result<Client, FleetError> {
        match servers {
            Servers::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(|e| invalid("url", e))?;
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout));
                Ok(Client::Single(client, config))
            }
            Servers::Cluster(nodes) => {
                if nodes.is_empty() || nodes.len() > MAX_NODES {
                    return Err(FleetError::Invalid {
                        field: "nodes",
                        reason: format!("must list 1 ..= {MAX_NODES} cluster nodes"),
                    });
                }
                // Each address on its own first, so that the error names the bad one.
                for node in nodes {
                    redis::Client::open(node.as_str())
                        .map_err(|e| invalid("nodes", format!("`{node}`: {e}")))?;
                }
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()
                    .map_err(|e| invalid("nodes", e))?;
                Ok(Client::Cluster(client))
            }
        }
    }

    /// Opens a connection (the caller bounds the time it takes).
    pub(super) async fn connect(&self) -> RedisResult<Connection> {
        match self {
            Client::Single(client, config) => client
                .get_multiplexed_async_connection_with_config(config)
                .await
                .map(Connection::Single),
            Client::Cluster(client) => client
                .get_async_connection()
                .await
                .map(|c| Connection::Cluster(Box::new(c))),
        }
    }
}

fn invalid(field: &'static str, e: impl std::fmt::Display) -> FleetError {
    FleetError::Invalid {
        field,
        reason: e.to_string(),
    }
}

/// A connection to one server or to a cluster.
pub(super) enum Connection {
    Single(MultiplexedConnection),
    Cluster(Box<ClusterConnection>),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn credentials_are_not_shown() {
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redacted("redis://user:secret@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(redacted("rediss://:p@ss@h:1"), "rediss://***@h:1");
        assert_eq!(redacted("not a url"), "not a url");
    }
}
