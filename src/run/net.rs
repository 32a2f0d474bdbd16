//! The environment of one run: the network backend (proxy or netns) and the bundled
//! cluster wired through it, plus the nemesis's view of the cluster.
//!
//! Set-up order matters: the network exists before any node starts (nodes are told the
//! proxy addresses, or are started inside their namespaces); teardown is the reverse and
//! runs on every exit path.

use anyhow::{anyhow, Context};
use splitbrain_nemesis::{self as nemesis, ClusterControl, Net, NetBackend, NetnsConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::config::{NetKind, TestConfig};
use super::db::{BundledCluster, CommandWrapper};
use super::store::RunDir;
use crate::node::launch::NodeSpec;

/// Ports inside each node's namespace (every node has its own address).
const NETNS_PEER_PORT: u16 = 7000;
const NETNS_CLIENT_PORT: u16 = 7001;
const NETNS_ADMIN_PORT: u16 = 7002;

pub struct Environment {
    pub cluster: Arc<BundledCluster>,
    pub net: Arc<Net>,
}

impl Environment {
    pub async fn setup(cfg: &TestConfig, run_dir: &RunDir) -> anyhow::Result<Environment> {
        let names = super::node_names(cfg.nodes);
        let id_of = |name: &str| -> u64 { name[1..].parse().unwrap_or(0) };
        let exe = std::env::current_exe().context("locating the splitbrain executable")?;

        // Addresses each node listens on, and how the harness reaches them.
        let mut listen: BTreeMap<String, (SocketAddr, SocketAddr, SocketAddr)> = BTreeMap::new();
        let net = match cfg.net {
            NetKind::Netns => {
                let net = tokio::task::spawn_blocking({
                    let names = names.clone();
                    move || nemesis::NetnsNet::setup(&NetnsConfig::new(&names, NETNS_PEER_PORT))
                })
                .await
                .context("setting up network namespaces")??;
                for n in &names {
                    let ip = net.node_ip(n)?;
                    listen.insert(
                        n.clone(),
                        (
                            SocketAddr::new(ip.into(), NETNS_PEER_PORT),
                            SocketAddr::new(ip.into(), NETNS_CLIENT_PORT),
                            SocketAddr::new(ip.into(), NETNS_ADMIN_PORT),
                        ),
                    );
                }
                Net::Netns(net)
            }
            _ => {
                let mut rng = crate::node::launch::port_rng(cfg.seed);
                let mut taken = std::collections::BTreeSet::new();
                for n in &names {
                    let mut three = Vec::new();
                    while three.len() < 3 {
                        let addr = crate::node::launch::free_port(&mut rng)?;
                        if taken.insert(addr) {
                            three.push(addr);
                        }
                    }
                    listen.insert(n.clone(), (three[0], three[1], three[2]));
                }
                let real = listen.iter().map(|(n, l)| (n.clone(), l.0)).collect();
                Net::Proxy(
                    nemesis::ProxyNet::start_with_frames(real, crate::node::transport::frame_kind)
                        .await
                        .context("starting the link proxies")?,
                )
            }
        };
        let net = Arc::new(net);

        let mut specs = BTreeMap::new();
        for n in &names {
            let (peer, client, admin) = listen[n];
            let mut peers = BTreeMap::new();
            let mut client_addrs = BTreeMap::new();
            for other in names.iter().filter(|o| *o != n) {
                peers.insert(id_of(other), net.peer_addr(n, other)?.to_string());
                client_addrs.insert(id_of(other), listen[other].1.to_string());
            }
            let node_dir = run_dir.node_dir(n);
            std::fs::create_dir_all(&node_dir)
                .with_context(|| format!("creating {}", node_dir.display()))?;
            specs.insert(
                n.clone(),
                NodeSpec {
                    id: id_of(n),
                    name: n.clone(),
                    peer_listen: peer.to_string(),
                    client_listen: client.to_string(),
                    admin_listen: admin.to_string(),
                    peers,
                    client_addrs,
                    data_dir: node_dir.join("data"),
                    read_mode: cfg.read_mode,
                    bugs: cfg.bugs.clone(),
                    log_file: Some(node_dir.join("node.log")),
                    // 20 ms ticks: elections after 200–400 ms, which a busy 2-core
                    // machine does not trigger spuriously.
                    tick_ms: 20,
                    seed: cfg.seed.wrapping_add(id_of(n)),
                },
            );
        }
        let wrap: Option<CommandWrapper> = match &*net {
            Net::Netns(_) => {
                let net = net.clone();
                Some(Box::new(
                    move |node: &str, cmd: std::process::Command| match &*net {
                        Net::Netns(ns) => ns
                            .wrap_command(node, &cmd)
                            .map_err(|e| anyhow!("placing {node} in its namespace: {e}")),
                        Net::Proxy(_) => Ok(cmd),
                    },
                ))
            }
            Net::Proxy(_) => None,
        };
        let client = listen.iter().map(|(n, l)| (n.clone(), l.1)).collect();
        let admin = listen.iter().map(|(n, l)| (n.clone(), l.2)).collect();
        let cluster = Arc::new(BundledCluster::new(exe, specs, client, admin, wrap));
        Ok(Environment { cluster, net })
    }

    /// Heals everything the nemesis may have done (network, paused, killed, clocks),
    /// then makes sure every node runs; returns what could not be healed.
    pub async fn heal_all(&self, state: &mut nemesis::FaultState) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = nemesis::heal_all(&*self.cluster, &*self.net, state).await {
            problems.push(e.to_string());
        }
        // Belt and braces: a fault the nemesis never recorded (it was cancelled between
        // acting and recording) must not survive either.
        if let Err(e) = self.net.heal().await {
            problems.push(format!("healing the network: {e}"));
        }
        problems.extend(self.cluster.heal_processes());
        for node in self.cluster.names() {
            if self.cluster.is_running(&node) {
                let _ = self.cluster.reset_clock(&node).await;
            }
        }
        problems
    }

    /// Stops every node and removes the network; returns what went wrong.
    pub async fn teardown(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let cluster = self.cluster.clone();
        if let Err(e) =
            tokio::task::spawn_blocking(move || cluster.stop_all(Duration::from_secs(3))).await
        {
            problems.push(format!("stopping nodes: {e}"));
        }
        if let Err(e) = self.net.teardown().await {
            problems.push(format!("tearing down the network: {e}"));
        }
        problems
    }
}

impl ClusterControl for BundledCluster {
    type Error = anyhow::Error;

    async fn kill(&self, node: &str) -> anyhow::Result<()> {
        BundledCluster::kill(self, node)
    }

    async fn restart(&self, node: &str) -> anyhow::Result<()> {
        if self.is_running(node) {
            return Ok(());
        }
        self.start(node)
    }

    async fn pause(&self, node: &str) -> anyhow::Result<()> {
        BundledCluster::pause(self, node)
    }

    async fn resume(&self, node: &str) -> anyhow::Result<()> {
        BundledCluster::resume(self, node)
    }

    async fn leader(&self) -> Option<String> {
        BundledCluster::leader(self).await
    }

    async fn raft_view(&self, node: &str) -> anyhow::Result<nemesis::RaftView> {
        self.status(node).await
    }

    async fn set_clock(&self, node: &str, offset_ms: i64, rate: f64) -> anyhow::Result<()> {
        BundledCluster::set_clock(self, node, offset_ms, rate).await
    }

    async fn reset_clock(&self, node: &str) -> anyhow::Result<()> {
        BundledCluster::reset_clock(self, node).await
    }
}
