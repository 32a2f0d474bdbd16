//! What a fault acts on, and what it leaves behind: the driver's [`ClusterControl`], the
//! [`FaultState`] that records every fault before it is attempted (so a heal knows what
//! to undo), and the primitive actions that keep the two in step (scripted clocks, a
//! partition). Shared by the executor, which dispatches the schedule, and the scripted
//! faults ([`crate::scenario`]), so neither imports the other.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;

use crate::grudge::{Grudge, NodeName};
use crate::net::NetBackend;
#[cfg(doc)]
use crate::schedule::LEADER;
pub use splitbrain_node_protocol::Role;

/// What the executor needs from the cluster; implemented by the test driver.
///
/// Every method must be idempotent: restarting a running node, resuming one that is not
/// paused, or resetting a clock that is not skewed succeeds without effect. `heal_all`
/// relies on it. A (re)started node must start with a real-time clock: clocks of killed
/// nodes are not reset (there is no process to ask).
pub trait ClusterControl {
    /// The driver's error; only its `Display` (alternate form, `{:#}`) is kept.
    type Error: fmt::Display + Send;

    /// SIGKILL the node's process.
    fn kill(&self, node: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Start the node again on its data directory.
    fn restart(&self, node: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// SIGSTOP the node's process.
    fn pause(&self, node: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// SIGCONT the node's process.
    fn resume(&self, node: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// The node that currently leads, if any is known.
    fn leader(&self) -> impl Future<Output = Option<NodeName>> + Send;
    /// The node's Raft state as it reports it; scripted faults ([`crate::scenario`])
    /// steer by it.
    fn raft_view(&self, node: &str) -> impl Future<Output = Result<RaftView, Self::Error>> + Send;
    /// Make the node's clock read real time + `offset_ms`, advancing at `rate`.
    fn set_clock(
        &self,
        node: &str,
        offset_ms: i64,
        rate: f64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Put the node's clock back to real time.
    fn reset_clock(&self, node: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A node's Raft state, as scripted faults need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftView {
    pub role: Role,
    pub term: u64,
    pub commit_index: u64,
    pub last_index: u64,
}

/// A node's clock as the executor last set it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockSetting {
    /// Milliseconds ahead of real time (negative: behind).
    pub offset_ms: i64,
    /// Speed relative to real time.
    pub rate: f64,
}

impl Default for ClockSetting {
    fn default() -> Self {
        ClockSetting {
            offset_ms: 0,
            rate: 1.0,
        }
    }
}

/// What may currently be faulted: everything `heal_all` has to undo.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultState {
    /// Every node of the cluster.
    pub(crate) nodes: Vec<NodeName>,
    /// The grudge in force (possibly only attempted).
    pub(crate) partition: Option<Grudge>,
    /// Nodes killed (or being killed) and not yet restarted.
    pub(crate) killed: BTreeSet<NodeName>,
    /// Nodes paused (or being paused) and not yet resumed.
    pub(crate) paused: BTreeSet<NodeName>,
    /// Nodes whose clock was set away from real time.
    pub(crate) clocks: BTreeMap<NodeName, ClockSetting>,
    /// The node a kill or pause of [`LEADER`] chose, which its restart or resume frees.
    pub(crate) leader_target: Option<NodeName>,
    /// Nodes whose clock a scripted fault set (frozen or slowed): its stop resets them,
    /// and only them (the clock lane's own faults are left to the clock lane).
    pub(crate) scripted_clocks: BTreeSet<NodeName>,
}

impl FaultState {
    /// Nothing faulted yet, on a cluster of these nodes.
    pub fn new(nodes: Vec<NodeName>) -> Self {
        FaultState {
            nodes,
            ..FaultState::default()
        }
    }

    /// True when nothing is (or might be) faulted.
    pub fn is_healed(&self) -> bool {
        self.partition.is_none()
            && self.killed.is_empty()
            && self.paused.is_empty()
            && self.clocks.is_empty()
    }

    /// The grudge in force, if any.
    pub fn partition(&self) -> Option<&Grudge> {
        self.partition.as_ref()
    }

    /// Nodes that are (or may be) down.
    pub fn killed(&self) -> &BTreeSet<NodeName> {
        &self.killed
    }

    /// Nodes that are (or may be) paused.
    pub fn paused(&self) -> &BTreeSet<NodeName> {
        &self.paused
    }

    /// Nodes whose clocks are (or may be) skewed, with their settings.
    pub fn clocks(&self) -> &BTreeMap<NodeName, ClockSetting> {
        &self.clocks
    }

    pub(crate) fn clock(&self, node: &str) -> ClockSetting {
        self.clocks.get(node).copied().unwrap_or_default()
    }
}

/// Sets a node's clock rate for a scripted fault (from its current reading on),
/// recording it so that the fault's stop, or [`crate::heal_all`], puts it back.
pub(crate) async fn script_clock<C: ClusterControl>(
    cluster: &C,
    state: &mut FaultState,
    node: &str,
    rate: f64,
) -> Result<(), String> {
    state
        .clocks
        .insert(node.to_string(), ClockSetting { offset_ms: 0, rate });
    state.scripted_clocks.insert(node.to_string());
    cluster
        .set_clock(node, 0, rate)
        .await
        .map_err(|e| format!("setting the clock of {node} to {rate}x: {e:#}"))
}

/// Puts a clock set by [`script_clock`] back to real time.
pub(crate) async fn unscript_clock<C: ClusterControl>(
    cluster: &C,
    state: &mut FaultState,
    node: &str,
) -> Result<(), String> {
    cluster
        .reset_clock(node)
        .await
        .map_err(|e| format!("resetting the clock of {node}: {e:#}"))?;
    state.clocks.remove(node);
    state.scripted_clocks.remove(node);
    Ok(())
}

/// Records `grudge` as in force (before trying it, so a heal undoes even an attempt)
/// and applies it.
pub(crate) async fn start_partition<N: NetBackend>(
    net: &N,
    state: &mut FaultState,
    grudge: &Grudge,
    errors: &mut Vec<String>,
) {
    state.partition = Some(grudge.clone());
    if let Err(error) = net.partition(grudge).await {
        errors.push(error.to_string());
    }
}
