//! The node runtime: wires the sans-IO consensus core ([`splitbrain_raft`]) to the world.
//!
//! One task (the driver, `driver.rs`) owns the core, the write-ahead log and the
//! KV state machine, and handles events one batch at a time: it feeds the core the
//! ticks that fell due, then every pending peer message (in that order, see
//! [`RaftNode::advance`]) and client request, then handles each
//! [`Ready`] completely (persist + fsync, send, apply) before taking new events, as the
//! core's contract requires. While an fsync runs, new requests queue up in the
//! channels, so the next Ready carries all of them and one fsync covers them all:
//! group commit falls out of the loop's shape.
//!
//! Around the driver: the peer [`transport`](crate::node::transport), and the client
//! and admin listeners (JSON lines, [`protocol`](crate::node::protocol)), each a task
//! that parses lines and hands requests to the driver over a channel. Every task stops
//! when the shutdown future given to [`run`] resolves.

//!
//! # Layout
//! - `recovery.rs`: the WAL and snapshot read back at startup, the core rebuilt.
//! - `driver.rs`: the driver loop (batches in, Readys out) and the client, read and
//!   admin logic around the core.
//! - `listeners.rs`: the client and admin listeners (one task per connection).
//! - this file: the node's configuration, its listening sockets, and [`run`], which
//!   wires the parts together.

mod driver;
mod listeners;
mod recovery;
#[cfg(test)]
pub(crate) mod test_cluster;
#[cfg(test)]
mod tests;

use crate::node::bugs::BugSet;
use crate::node::clock::Clock;
use crate::node::transport::{Inbound, Transport};
use anyhow::Context;
use driver::{Driver, Event};
use listeners::{serve_admin, serve_clients};
use splitbrain_raft::Message;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// How reads are served (defined with the protocol: `status` reports it).
pub use splitbrain_node_protocol::ReadMode;

/// Everything a node needs besides its listeners.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    pub name: String,
    /// Peer id → address dialled to reach it.
    pub peers: BTreeMap<u64, String>,
    /// Node id → its client address, for not-leader replies (this node's own included).
    pub client_addrs: BTreeMap<u64, String>,
    pub data_dir: PathBuf,
    pub read_mode: ReadMode,
    pub bugs: BugSet,
    /// Real milliseconds per core tick (at clock rate 1).
    pub tick_ms: u64,
    /// Take a snapshot and compact the log after this many applied entries.
    pub snapshot_every: u64,
    /// Clock milliseconds after which an unanswered request gets a `timeout` reply.
    pub request_timeout_ms: u64,
    pub seed: u64,
}

/// The three listeners of a node, bound before it starts (tests bind port 0 first).
#[derive(Debug)]
pub struct Listeners {
    pub peer: TcpListener,
    pub client: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    pub async fn bind(peer: &str, client: &str, admin: &str) -> anyhow::Result<Listeners> {
        let bind = |addr: &str| {
            let addr = addr.to_string();
            async move {
                TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("binding {addr}"))
            }
        };
        Ok(Listeners {
            peer: bind(peer).await?,
            client: bind(client).await?,
            admin: bind(admin).await?,
        })
    }

    /// (peer, client, admin) local addresses.
    pub fn addrs(&self) -> anyhow::Result<(SocketAddr, SocketAddr, SocketAddr)> {
        Ok((
            self.peer.local_addr()?,
            self.client.local_addr()?,
            self.admin.local_addr()?,
        ))
    }
}

/// Runs a node until `shutdown` resolves. Fails on startup problems (an unreadable or
/// corrupt WAL, a bad configuration) and on write-ahead-log I/O errors, after which
/// continuing would risk acknowledging data that is not durable.
pub async fn run(
    cfg: NodeConfig,
    listeners: Listeners,
    clock: Clock,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let recovered = recovery::recover(&cfg).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let (peer_tx, peer_rx) = mpsc::channel::<(u64, Message)>(8192);
    let (event_tx, event_rx) = mpsc::channel::<Event>(8192);
    let requests = event_tx.clone();
    let transport = Transport::start(cfg.id, &cfg.peers, stop_rx.clone());
    tokio::spawn(Inbound::<Message>::serve(
        listeners.peer,
        peer_tx,
        stop_rx.clone(),
    ));
    tokio::spawn(serve_clients(
        listeners.client,
        event_tx.clone(),
        stop_rx.clone(),
    ));
    tokio::spawn(serve_admin(
        listeners.admin,
        event_tx,
        clock.clone(),
        stop_rx.clone(),
    ));

    let mut driver = Driver::new(cfg, recovered, clock, transport, requests);
    let result = driver.run(peer_rx, event_rx, shutdown).await;
    driver.fail_everything(
        crate::node::protocol::ErrorKind::ShuttingDown,
        "the node is shutting down",
    );
    let _ = stop_tx.send(true);
    result
}
