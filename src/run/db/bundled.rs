//! The database side of the driver for the bundled Raft KV: start, stop, kill, pause
//! and resume node processes, find the leader, and reach each node's admin API (status,
//! digest, log terms, clock).
//!
//! The driver sees the system under test only through this type and the workload's
//! client, so another system (etcd) needs another implementation of the same surface,
//! not changes to the driver. Node processes are started by the node launcher
//! ([`crate::node::launch::spawn_tied`]), so they die with the harness even when it is
//! SIGKILLed, and are killed on drop.

use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use splitbrain_nemesis::RaftView;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::node::launch::{admin_request_within, spawn_tied, NodeSpec};

/// How to place a node process in the network: as is (proxy backend), or inside its
/// network namespace.
pub type CommandWrapper = Box<dyn Fn(&str, Command) -> anyhow::Result<Command> + Send + Sync>;

/// The bundled cluster as the driver controls it.
pub struct BundledCluster {
    exe: PathBuf,
    /// Launch specification per node name (`n1`, `n2`, ...), in order.
    specs: BTreeMap<String, NodeSpec>,
    /// Where each node's client API is reachable from the harness.
    client_addrs: BTreeMap<String, SocketAddr>,
    /// Where each node's admin API is reachable from the harness.
    admin_addrs: BTreeMap<String, SocketAddr>,
    wrap: Option<CommandWrapper>,
    children: Mutex<BTreeMap<String, Child>>,
    paused: Mutex<BTreeSet<String>>,
}

impl BundledCluster {
    pub fn new(
        exe: PathBuf,
        specs: BTreeMap<String, NodeSpec>,
        client_addrs: BTreeMap<String, SocketAddr>,
        admin_addrs: BTreeMap<String, SocketAddr>,
        wrap: Option<CommandWrapper>,
    ) -> BundledCluster {
        BundledCluster {
            exe,
            specs,
            client_addrs,
            admin_addrs,
            wrap,
            children: Mutex::new(BTreeMap::new()),
            paused: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.specs.keys().cloned().collect()
    }

    pub fn client_addr(&self, node: &str) -> Option<SocketAddr> {
        self.client_addrs.get(node).copied()
    }

    /// Starts one node process (it must not be running).
    pub fn start(&self, node: &str) -> anyhow::Result<()> {
        let spec = self
            .specs
            .get(node)
            .ok_or_else(|| anyhow!("no node named {node}"))?;
        std::fs::create_dir_all(&spec.data_dir)
            .with_context(|| format!("creating {}", spec.data_dir.display()))?;
        let mut cmd = spec.command(&self.exe);
        if let Some(wrap) = &self.wrap {
            cmd = wrap(node, cmd)?;
        }
        let stderr_path = spec.data_dir.with_file_name("stderr.log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .with_context(|| format!("opening {}", stderr_path.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        let child = spawn_tied(cmd)
            .with_context(|| format!("starting node {node} ({})", self.exe.display()))?;
        self.lock_children().insert(node.to_string(), child);
        Ok(())
    }

    /// Starts every node and makes sure none of them died at once (a port taken, a bad
    /// data dir): such a node would silently turn a 5-node test into a 4-node one.
    pub fn start_all(&self) -> anyhow::Result<()> {
        for node in self.names() {
            self.start(&node)?;
        }
        std::thread::sleep(Duration::from_millis(300));
        for node in self.names() {
            if !self.is_running(&node) {
                let stderr = self
                    .specs
                    .get(&node)
                    .map(|s| s.data_dir.with_file_name("stderr.log"))
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .and_then(|s| s.lines().last().map(str::to_string))
                    .unwrap_or_default();
                anyhow::bail!("node {node} exited right after starting: {stderr}");
            }
        }
        Ok(())
    }

    fn lock_children(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Child>> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn signal(&self, node: &str, sig: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let children = self.lock_children();
        let child = children
            .get(node)
            .ok_or_else(|| anyhow!("node {node} is not running"))?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        match nix::sys::signal::kill(pid, sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(anyhow!("sending {sig} to node {node}: {e}")),
        }
    }

    /// SIGKILLs a node and reaps it. Killing a node that is not running is a no-op.
    pub fn kill(&self, node: &str) -> anyhow::Result<()> {
        let child = self.lock_children().remove(node);
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(node);
        Ok(())
    }

    pub fn is_running(&self, node: &str) -> bool {
        let mut children = self.lock_children();
        match children.get_mut(node) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn pause(&self, node: &str) -> anyhow::Result<()> {
        self.signal(node, nix::sys::signal::Signal::SIGSTOP)?;
        self.paused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_string());
        Ok(())
    }

    pub fn resume(&self, node: &str) -> anyhow::Result<()> {
        if self.is_running(node) {
            self.signal(node, nix::sys::signal::Signal::SIGCONT)?;
        }
        self.paused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(node);
        Ok(())
    }

    /// Resumes paused nodes and restarts dead ones; idempotent.
    pub fn heal_processes(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for node in self.names() {
            if let Err(e) = self.resume(&node) {
                problems.push(format!("resuming {node}: {e:#}"));
            }
            if !self.is_running(&node) {
                self.lock_children().remove(&node);
                if let Err(e) = self.start(&node) {
                    problems.push(format!("restarting {node}: {e:#}"));
                }
            }
        }
        problems
    }

    /// Stops every node: SIGCONT (a stopped process cannot act on SIGTERM), SIGTERM,
    /// then SIGKILL after a grace period. Always reaps.
    pub fn stop_all(&self, grace: Duration) {
        let mut children = std::mem::take(&mut *self.lock_children());
        for child in children.values() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline
            && children
                .values_mut()
                .any(|c| matches!(c.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        for child in children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// One admin request; `op` is the request without its id.
    pub async fn admin(&self, node: &str, op: Value, timeout: Duration) -> anyhow::Result<Value> {
        let addr = *self
            .admin_addrs
            .get(node)
            .ok_or_else(|| anyhow!("no node named {node}"))?;
        admin_request_within(&addr.to_string(), op, timeout)
            .await
            .with_context(|| format!("node {node}"))
    }

    /// The node's Raft state, from its admin API.
    pub async fn status(&self, node: &str) -> anyhow::Result<RaftView> {
        let v = self
            .admin(node, json!({"op": "status"}), Duration::from_millis(500))
            .await?;
        Ok(RaftView {
            role: v["role"].as_str().unwrap_or("unknown").to_string(),
            term: v["term"].as_u64().unwrap_or(0),
            commit_index: v["commit_index"].as_u64().unwrap_or(0),
            last_index: v["last_index"].as_u64().unwrap_or(0),
        })
    }

    /// The node that currently believes it leads with the highest term, if any.
    pub async fn leader(&self) -> Option<String> {
        let mut best: Option<(u64, String)> = None;
        for node in self.names() {
            if self
                .paused
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&node)
            {
                continue;
            }
            if let Ok(s) = self.status(&node).await {
                if s.role == "leader" && best.as_ref().is_none_or(|(t, _)| s.term > *t) {
                    best = Some((s.term, node));
                }
            }
        }
        best.map(|(_, n)| n)
    }

    /// Waits until some node leads (used after start-up and after healing).
    pub async fn await_leader(&self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader().await {
                return Ok(leader);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "no leader was elected within {:.0} s; see the node logs",
                    timeout.as_secs_f64()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn set_clock(&self, node: &str, offset_ms: i64, rate: f64) -> anyhow::Result<()> {
        self.admin(
            node,
            json!({"op": "clock", "offset_ms": offset_ms, "rate": rate}),
            Duration::from_millis(500),
        )
        .await
        .map(|_| ())
    }

    /// Puts the node's clock back to real time. A node that is not running needs
    /// nothing (it starts on real time); one that was just restarted may still be
    /// opening its admin port, so this retries for a few seconds.
    pub async fn reset_clock(&self, node: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            if !self.is_running(node) {
                return Ok(());
            }
            match self
                .admin(
                    node,
                    json!({"op": "clock-reset"}),
                    Duration::from_millis(500),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Drop for BundledCluster {
    fn drop(&mut self) {
        // The last line of defence (a panic, an early return): no node outlives us.
        let mut children = std::mem::take(&mut *self.lock_children());
        for child in children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
