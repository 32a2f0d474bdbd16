//! The bundled Raft KV as a [`Database`]: its node processes (the `splitbrain node`
//! command, placed in the network by a [`CommandWrapper`]), each node's admin API
//! (status, digest, log terms, clock), and [`BundledClient`]s.
//!
//! The bundled cluster can do everything a database can for the driver: it names its
//! leader, reports its Raft state (so the scripted faults can steer by it), lets the
//! nemesis set each node's clock, and offers a digest and an applied-history chain for
//! the convergence check ([`super::convergence`]).

use anyhow::{anyhow, Context};
use serde::de::DeserializeOwned;
use splitbrain_nemesis::RaftView;
use splitbrain_reports::results::Convergence;
use splitbrain_workloads::{BoxFuture, BundledClient, Client, WorkloadKind};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::processes::{Launch, NodeFiles, NodeRunner};
use super::{ClientPurpose, Database};
use crate::node::launch::{self, NodeSpec};
use crate::node::protocol::{AdminOp, ClockSkew, Role, Status};

/// How to place a node process in the network: as is (proxy backend), or inside its
/// network namespace.
pub type CommandWrapper = Box<dyn Fn(&str, Command) -> anyhow::Result<Command> + Send + Sync>;

/// The bundled cluster as the driver controls it.
pub struct BundledCluster {
    exe: PathBuf,
    /// With `--hosts`: each node's copy of the executable on its host (the run's folder
    /// differs between hosts), used instead of `exe`.
    node_exes: BTreeMap<String, PathBuf>,
    workload: WorkloadKind,
    /// Launch specification per node name (`n1`, `n2`, ...), in order.
    specs: BTreeMap<String, NodeSpec>,
    /// Where each node's client API is reachable from the harness.
    client_addrs: BTreeMap<String, SocketAddr>,
    /// Where each node's admin API is reachable from the harness.
    admin_addrs: BTreeMap<String, SocketAddr>,
    processes: Box<dyn NodeRunner>,
}

impl BundledCluster {
    pub fn new(
        exe: PathBuf,
        workload: WorkloadKind,
        specs: BTreeMap<String, NodeSpec>,
        client_addrs: BTreeMap<String, SocketAddr>,
        admin_addrs: BTreeMap<String, SocketAddr>,
        processes: Box<dyn NodeRunner>,
    ) -> BundledCluster {
        BundledCluster {
            exe,
            node_exes: BTreeMap::new(),
            workload,
            specs,
            client_addrs,
            admin_addrs,
            processes,
        }
    }

    /// Runs node `n` from `exes[n]` instead of the common executable.
    pub fn with_node_exes(mut self, exes: BTreeMap<String, PathBuf>) -> BundledCluster {
        self.node_exes = exes;
        self
    }

    fn files(spec: &NodeSpec) -> NodeFiles {
        // The node's folder holds `data/`; its logs and pid file sit beside it.
        NodeFiles::in_dir(spec.data_dir.parent().unwrap_or(&spec.data_dir))
    }

    /// One admin request to `node`: the value of its answer as the type `op` answers
    /// with (`Status` for `status`, `Digest` for `digest`, ...).
    pub async fn admin<R: DeserializeOwned>(
        &self,
        node: &str,
        op: AdminOp,
        timeout: Duration,
    ) -> anyhow::Result<R> {
        let addr = *self
            .admin_addrs
            .get(node)
            .ok_or_else(|| anyhow!("no node named {node}"))?;
        launch::admin(&addr.to_string(), op, timeout)
            .await
            .with_context(|| format!("node {node}"))
    }

    /// The node's Raft state, from its admin API.
    pub async fn status(&self, node: &str) -> anyhow::Result<Status> {
        self.admin(node, AdminOp::Status, Duration::from_millis(500))
            .await
    }

    /// The node that currently believes it leads with the highest term, if any.
    pub async fn leader(&self) -> Option<String> {
        let mut best: Option<(u64, String)> = None;
        for node in self.nodes() {
            if self.processes.is_paused(&node) {
                continue;
            }
            if let Ok(s) = self.status(&node).await {
                if s.role == Role::Leader && best.as_ref().is_none_or(|(t, _)| s.term > *t) {
                    best = Some((s.term, node));
                }
            }
        }
        best.map(|(_, n)| n)
    }
}

impl Database for BundledCluster {
    fn name(&self) -> &str {
        "bundled"
    }

    fn nodes(&self) -> Vec<String> {
        self.specs.keys().cloned().collect()
    }

    fn start(&self, node: &str) -> anyhow::Result<()> {
        let spec = self
            .specs
            .get(node)
            .ok_or_else(|| anyhow!("no node named {node}"))?;
        self.processes.make_dir(node, &spec.data_dir)?;
        let files = Self::files(spec);
        // The spec's paths are relative to the harness's own directory.
        let here = std::env::current_dir().context("reading the current directory")?;
        let exe = self.node_exes.get(node).unwrap_or(&self.exe);
        let launch = Launch::of(&spec.command(exe), &here);
        self.processes.spawn(node, &launch, &files)
    }

    fn start_all(&self) -> anyhow::Result<()> {
        for node in self.nodes() {
            self.start(&node)?;
        }
        std::thread::sleep(Duration::from_millis(300));
        for (node, spec) in &self.specs {
            if !self.is_running(node) {
                anyhow::bail!(
                    "node {node} exited right after starting: {}",
                    self.processes.last_words(&Self::files(spec))
                );
            }
        }
        Ok(())
    }

    fn runner(&self) -> &dyn NodeRunner {
        &*self.processes
    }

    fn stop_all(&self) -> Vec<String> {
        self.processes.stop_all(Duration::from_secs(3));
        Vec::new()
    }

    fn await_ready(&self, timeout: Duration) -> BoxFuture<'_, anyhow::Result<String>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                if let Some(leader) = self.leader().await {
                    return Ok(format!("leader elected: {leader}"));
                }
                if tokio::time::Instant::now() >= deadline {
                    anyhow::bail!(
                        "no leader was elected within {:.0} s; see the node logs",
                        timeout.as_secs_f64()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }

    fn primary(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(self.leader())
    }

    fn raft_view<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<RaftView>> {
        Box::pin(async move {
            let s = self.status(node).await?;
            Ok(RaftView {
                role: s.role,
                term: s.term,
                commit_index: s.commit_index,
                last_index: s.last_index,
            })
        })
    }

    fn set_clock<'a>(
        &'a self,
        node: &'a str,
        offset_ms: i64,
        rate: f64,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.admin::<ClockSkew>(
                node,
                AdminOp::Clock { offset_ms, rate },
                Duration::from_millis(500),
            )
            .await
            .map(|_| ())
        })
    }

    /// A node that is not running needs nothing (it starts on real time); one that was
    /// just restarted may still be opening its admin port, so this retries for a few
    /// seconds.
    fn reset_clock<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            loop {
                if !self.is_running(node) {
                    return Ok(());
                }
                match self
                    .admin::<ClockSkew>(node, AdminOp::ClockReset, Duration::from_millis(500))
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })
    }

    fn convergence(&self, wait: Duration) -> BoxFuture<'_, Option<Convergence>> {
        Box::pin(async move { Some(super::convergence::convergence(self, wait).await) })
    }

    fn client(
        &self,
        node: &str,
        purpose: ClientPurpose,
        op_timeout: Duration,
    ) -> anyhow::Result<Box<dyn Client>> {
        let addr = self
            .client_addrs
            .get(node)
            .ok_or_else(|| anyhow!("no node named {node}"))?;
        let client = BundledClient::new(self.workload, addr.to_string(), op_timeout);
        Ok(match purpose {
            // A not-leader answer names the leader: follow it, as a real client would.
            ClientPurpose::Worker => Box::new(client.with_redirects(2)),
            ClientPurpose::FinalRead => Box::new(client),
        })
    }

    fn log_files(&self) -> Vec<PathBuf> {
        self.specs
            .values()
            .flat_map(|spec| {
                let files = Self::files(spec);
                [spec.log_file.clone(), Some(files.stderr)]
            })
            .flatten()
            .collect()
    }
}
