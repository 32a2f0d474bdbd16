//! Running a schedule against a live cluster, and healing everything afterwards.
//!
//! The executor is the only part of the nemesis that touches both the cluster (through
//! the driver's [`ClusterControl`]) and the network (through a [`NetBackend`]). It sleeps
//! (tokio time) until each step is due, performs it, and hands a [`NemesisEvent`] to the
//! caller, who writes it into the history as a `"nemesis"` `info` event.
//!
//! Every fault is written into a [`FaultState`] *before* it is attempted, and cleared
//! only after its heal succeeded. So when the run is interrupted at any point (Ctrl-C, an
//! error, the future being dropped), [`heal_all`] still knows what might need undoing;
//! every undo is idempotent, so undoing a fault that never happened is harmless.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::clock::ClockFault;
use crate::control::{start_partition, unscript_clock, ClockSetting, ClusterControl, FaultState};
use crate::error::NemesisError;
use crate::grudge::{Grudge, NodeName, PartitionShape};
use crate::net::NetBackend;
use crate::schedule::{Action, Step, LEADER};

/// Whether an event starts a fault or stops (heals) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// A fault begins (start-partition, kill, pause, clock-bump/strobe/rate).
    Start,
    /// A fault ends (stop-partition, restart, resume, clock-reset).
    Stop,
}

/// One performed nemesis action, for the history (process `"nemesis"`, type `info`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NemesisEvent {
    /// `start-partition`, `stop-partition`, `kill`, `restart`, `pause`, `resume`,
    /// `clock-bump`, `clock-strobe`, `clock-rate` or `clock-reset`.
    pub f: String,
    /// The targets: the grudge as `{node: [dropped...]}`, a node list, clock parameters.
    pub value: serde_json::Value,
    /// Start or stop of a fault window (reports shade the windows).
    pub phase: Phase,
    /// Extra context: the partition shape, how the leader was resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Why the action failed, or only partly succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// Steps performed (attempted) before the end.
    pub steps_done: usize,
    /// True when the shutdown future fired before the schedule was done.
    pub interrupted: bool,
    /// Every action that failed, in order (also recorded in the events).
    pub errors: Vec<String>,
}

/// A strobe in progress: the clock flips between `base` and `base + delta` every period.
#[derive(Debug, Clone)]
struct Strobe {
    node: NodeName,
    base: ClockSetting,
    delta_ms: i64,
    period: Duration,
    next_flip: Instant,
    ends_at: Instant,
    high: bool,
}

/// Performs `schedule` against the cluster and network, calling `record` after every
/// action, until the schedule is done or `shutdown` completes. `state` tracks what is
/// faulted; pass the same state to [`heal_all`] afterwards (always, also on errors).
/// `seed` drives the run-time choices (the node isolated when no leader is known).
pub async fn run<C, N>(
    schedule: &[Step],
    cluster: &C,
    net: &N,
    state: &mut FaultState,
    seed: u64,
    mut record: impl FnMut(NemesisEvent),
    shutdown: impl Future<Output = ()>,
) -> RunOutcome
where
    C: ClusterControl,
    N: NetBackend,
{
    tokio::pin!(shutdown);
    let start = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut strobe: Option<Strobe> = None;
    let mut outcome = RunOutcome::default();

    for step in schedule {
        let due = start + step.at;
        // Wait for the step, flipping a strobing clock in the meantime.
        loop {
            let wake = strobe.as_ref().map_or(due, |s| s.next_flip.min(due));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = &mut shutdown => {
                    outcome.interrupted = true;
                    return outcome;
                }
            }
            if Instant::now() >= due {
                break;
            }
            let flipped = tokio::select! {
                flipped = strobe_tick(cluster, &mut strobe, state) => flipped,
                _ = &mut shutdown => {
                    outcome.interrupted = true;
                    return outcome;
                }
            };
            if let Err(error) = flipped {
                outcome.errors.push(error);
            }
        }

        let performed = tokio::select! {
            event = perform(&step.action, cluster, net, state, &mut strobe, &mut rng) => event,
            _ = &mut shutdown => {
                outcome.interrupted = true;
                return outcome;
            }
        };
        outcome.steps_done += 1;
        if let Some(error) = &performed.error {
            tracing::warn!(f = %performed.f, %error, "nemesis action failed");
            outcome.errors.push(format!("{}: {error}", performed.f));
        }
        record(performed);
    }
    outcome
}

/// Flips the strobing clock if its time has come; ends the strobe after its duration.
async fn strobe_tick<C: ClusterControl>(
    cluster: &C,
    strobe: &mut Option<Strobe>,
    state: &mut FaultState,
) -> Result<(), String> {
    let Some(active) = strobe.as_mut() else {
        return Ok(());
    };
    let now = Instant::now();
    if now < active.next_flip {
        return Ok(());
    }
    let finished = now >= active.ends_at;
    active.high = !active.high && !finished;
    active.next_flip += active.period;
    let offset = active.base.offset_ms + if active.high { active.delta_ms } else { 0 };
    let node = active.node.clone();
    let rate = active.base.rate;
    if finished {
        *strobe = None;
    }
    state.clocks.insert(
        node.clone(),
        ClockSetting {
            offset_ms: offset,
            rate,
        },
    );
    cluster
        .set_clock(&node, offset, rate)
        .await
        .map_err(|error| format!("clock-strobe {node}: {error:#}"))
}

/// Performs one action and describes it.
async fn perform<C: ClusterControl, N: NetBackend>(
    action: &Action,
    cluster: &C,
    net: &N,
    state: &mut FaultState,
    strobe: &mut Option<Strobe>,
    rng: &mut ChaCha8Rng,
) -> NemesisEvent {
    let phase = if action.is_start() {
        Phase::Start
    } else {
        Phase::Stop
    };
    let mut event = NemesisEvent {
        f: action.f().to_string(),
        value: serde_json::Value::Null,
        phase,
        detail: None,
        error: None,
    };
    let mut errors: Vec<String> = Vec::new();
    let resolved = resolve_leader(action, cluster, state, rng, &mut event.detail).await;
    let action = resolved.as_ref().unwrap_or(action);
    match action {
        Action::StartPartition { shape, grudge } => {
            event.value = grudge.to_json();
            event.detail = Some(shape.name().to_string());
            start_partition(net, state, grudge, &mut errors).await;
        }
        Action::IsolateLeader => {
            let leader = cluster.leader().await;
            let nodes = state.nodes.clone();
            let shape = PartitionShape::IsolateLeader;
            match Grudge::for_shape(shape, &nodes, leader.as_ref(), rng) {
                Ok(grudge) => {
                    event.detail = Some(match &leader {
                        Some(leader) => format!("isolate-leader: leader {leader}"),
                        None => "isolate-leader: no leader known, isolated a random node".into(),
                    });
                    event.value = grudge.to_json();
                    start_partition(net, state, &grudge, &mut errors).await;
                }
                Err(error) => errors.push(error.to_string()),
            }
        }
        Action::StopPartition => match net.heal().await {
            Ok(()) => state.partition = None,
            Err(error) => errors.push(error.to_string()),
        },
        Action::Kill { nodes }
        | Action::Restart { nodes }
        | Action::Pause { nodes }
        | Action::Resume { nodes } => {
            event.value = node_list(nodes);
            process_fault(action, nodes, cluster, state, &mut errors).await;
        }
        Action::Clock { fault } => {
            event.value = fault.value();
            clock_fault(fault, cluster, state, strobe, &mut event, &mut errors).await;
        }
        Action::StartSplitVote | Action::StartFigureEight => {
            // The rules stay until the stop; a partition in force is replaced by them.
            state.partition = Some(Grudge::none());
            let script = if matches!(action, Action::StartSplitVote) {
                crate::scenario::split_vote(cluster, net, state, rng).await
            } else {
                crate::scenario::figure_eight(cluster, net, state, rng).await
            };
            match script {
                Ok((value, detail)) => {
                    event.value = value;
                    event.detail = Some(detail);
                }
                Err((value, error)) => {
                    event.value = value;
                    errors.push(error);
                    // Undo at once: a half-done script must not linger until the stop.
                    if let Err(error) = heal_all(cluster, net, state).await {
                        errors.push(error.to_string());
                    }
                }
            }
        }
        Action::StartSlowLeader => {
            let (value, detail, script_errors) =
                crate::scenario::slow_leader(cluster, net, state, rng).await;
            event.value = value;
            event.detail = detail;
            errors.extend(script_errors);
        }
        Action::StopSplitVote | Action::StopFigureEight | Action::StopSlowLeader => {
            match net.heal().await {
                Ok(()) => state.partition = None,
                Err(error) => errors.push(error.to_string()),
            }
            for node in state.scripted_clocks.clone() {
                if let Err(error) = unscript_clock(cluster, state, &node).await {
                    errors.push(error);
                }
            }
        }
    }
    if !errors.is_empty() {
        event.error = Some(errors.join("; "));
    }
    event
}

/// Kills, restarts, pauses or resumes each of `nodes`. A start is recorded in `state`
/// before it is attempted (so a heal undoes even a half-done one); a stop clears the
/// record only when it succeeded.
async fn process_fault<C: ClusterControl>(
    action: &Action,
    nodes: &[NodeName],
    cluster: &C,
    state: &mut FaultState,
    errors: &mut Vec<String>,
) {
    for node in nodes {
        let outcome = match action {
            Action::Kill { .. } => {
                state.killed.insert(node.clone());
                cluster.kill(node).await
            }
            Action::Pause { .. } => {
                state.paused.insert(node.clone());
                cluster.pause(node).await
            }
            Action::Restart { .. } => cluster.restart(node).await.map(|()| {
                state.killed.remove(node);
            }),
            Action::Resume { .. } => cluster.resume(node).await.map(|()| {
                state.paused.remove(node);
            }),
            _ => Ok(()),
        };
        if let Err(error) = outcome {
            errors.push(format!("{node}: {error:#}"));
        }
    }
}

/// Replaces the run-time target [`LEADER`] by a node: at a fault's start the current
/// leader (a random node when none is known), at its stop the node the start chose.
/// `None` when the action names no such target.
async fn resolve_leader<C: ClusterControl>(
    action: &Action,
    cluster: &C,
    state: &mut FaultState,
    rng: &mut ChaCha8Rng,
    detail: &mut Option<String>,
) -> Option<Action> {
    let names_leader = |nodes: &[NodeName]| nodes.iter().any(|n| n == LEADER);
    let mut current_leader = async || match cluster.leader().await {
        Some(leader) => {
            *detail = Some(format!("leader {leader}"));
            leader
        }
        None => {
            let node = state
                .nodes
                .choose(rng)
                .cloned()
                .unwrap_or_else(|| LEADER.to_string());
            *detail = Some(format!("no leader known, chose {node}"));
            node
        }
    };
    match action {
        Action::Kill { nodes } if names_leader(nodes) => {
            let leader = current_leader().await;
            state.leader_target = Some(leader.clone());
            Some(Action::Kill {
                nodes: vec![leader],
            })
        }
        Action::Pause { nodes } if names_leader(nodes) => {
            let leader = current_leader().await;
            state.leader_target = Some(leader.clone());
            Some(Action::Pause {
                nodes: vec![leader],
            })
        }
        Action::Restart { nodes } if names_leader(nodes) => Some(Action::Restart {
            nodes: state.leader_target.take().into_iter().collect(),
        }),
        Action::Resume { nodes } if names_leader(nodes) => Some(Action::Resume {
            nodes: state.leader_target.take().into_iter().collect(),
        }),
        Action::Clock { fault } if fault.node().is_some_and(|n| n == LEADER) => {
            let leader = current_leader().await;
            Some(Action::Clock {
                fault: fault.on_node(leader),
            })
        }
        _ => None,
    }
}

async fn clock_fault<C: ClusterControl>(
    fault: &ClockFault,
    cluster: &C,
    state: &mut FaultState,
    strobe: &mut Option<Strobe>,
    event: &mut NemesisEvent,
    errors: &mut Vec<String>,
) {
    let set = |node: &NodeName, setting: ClockSetting, state: &mut FaultState| {
        state.clocks.insert(node.clone(), setting);
        (node.clone(), setting)
    };
    let change = match fault {
        ClockFault::Bump { node, delta_ms } => {
            let mut setting = state.clock(node);
            setting.offset_ms = setting.offset_ms.saturating_add(*delta_ms);
            Some(set(node, setting, state))
        }
        ClockFault::Rate { node, rate } => {
            let mut setting = state.clock(node);
            setting.rate = *rate;
            Some(set(node, setting, state))
        }
        ClockFault::Strobe {
            node,
            delta_ms,
            period_ms,
            duration_ms,
        } => {
            let base = state.clock(node);
            let now = Instant::now();
            let period = Duration::from_millis((*period_ms).max(1));
            *strobe = Some(Strobe {
                node: node.clone(),
                base,
                delta_ms: *delta_ms,
                period,
                next_flip: now + period,
                ends_at: now + Duration::from_millis(*duration_ms),
                high: true,
            });
            let high = ClockSetting {
                offset_ms: base.offset_ms.saturating_add(*delta_ms),
                rate: base.rate,
            };
            Some(set(node, high, state))
        }
        ClockFault::Reset => {
            *strobe = None;
            // A killed node has no clock to reset; its restart brings a real-time one.
            let nodes: Vec<NodeName> = state
                .nodes
                .iter()
                .filter(|node| !state.killed.contains(*node))
                .cloned()
                .collect();
            for node in &state.killed {
                state.clocks.remove(node);
            }
            event.value = node_list(&nodes);
            for node in &nodes {
                match cluster.reset_clock(node).await {
                    Ok(()) => {
                        state.clocks.remove(node);
                    }
                    Err(error) => errors.push(format!("{node}: {error:#}")),
                }
            }
            None
        }
    };
    if let Some((node, setting)) = change {
        if let Err(error) = cluster
            .set_clock(&node, setting.offset_ms, setting.rate)
            .await
        {
            errors.push(format!("{node}: {error:#}"));
        }
    }
}

fn node_list(nodes: &[NodeName]) -> serde_json::Value {
    serde_json::Value::Array(
        nodes
            .iter()
            .cloned()
            .map(serde_json::Value::String)
            .collect(),
    )
}

/// Undoes every fault: heals the network (unconditionally), resumes every paused node,
/// restarts every killed node and resets every node's clock. Idempotent, and it tries
/// every step even when some fail; the failures come back together. Call it at the end
/// of every run, and on Ctrl-C or any error.
pub async fn heal_all<C, N>(
    cluster: &C,
    net: &N,
    state: &mut FaultState,
) -> Result<(), NemesisError>
where
    C: ClusterControl,
    N: NetBackend,
{
    let mut problems = Vec::new();
    match net.heal().await {
        Ok(()) => state.partition = None,
        Err(error) => problems.push(format!("healing the network: {error}")),
    }
    // Resume before restarting: a paused node must run again to be killed cleanly later.
    for node in state.paused.clone() {
        match cluster.resume(&node).await {
            Ok(()) => {
                state.paused.remove(&node);
            }
            Err(error) => problems.push(format!("resuming {node}: {error:#}")),
        }
    }
    // A restarted node is a fresh process with a real-time clock (and its admin API may
    // not be up yet): its clock needs no reset, nor does that of a node still down.
    let mut fresh_or_down = BTreeSet::new();
    for node in state.killed.clone() {
        match cluster.restart(&node).await {
            Ok(()) => {
                state.killed.remove(&node);
            }
            Err(error) => problems.push(format!("restarting {node}: {error:#}")),
        }
        state.clocks.remove(&node);
        fresh_or_down.insert(node);
    }
    // Every other node, skewed or not: a strobe may have been cut off mid-flip.
    let mut clock_nodes: BTreeSet<NodeName> = state.nodes.iter().cloned().collect();
    clock_nodes.extend(state.clocks.keys().cloned());
    for node in clock_nodes.difference(&fresh_or_down) {
        match cluster.reset_clock(node).await {
            Ok(()) => {
                state.clocks.remove(node);
            }
            Err(error) => problems.push(format!("resetting the clock of {node}: {error:#}")),
        }
    }
    state
        .scripted_clocks
        .retain(|node| state.clocks.contains_key(node));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(NemesisError::Incomplete {
            what: "healing",
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{RaftView, Role};
    use crate::scenario::SLOW_LEADER_RATE;
    use crate::schedule::{schedule, ScheduleConfig};
    use std::sync::Mutex;

    /// A cluster that logs every call with the (paused) time it happened at.
    #[derive(Default)]
    struct FakeCluster {
        log: Mutex<Vec<(Duration, String)>>,
        leader: Option<NodeName>,
        /// Calls on this node fail.
        broken: Option<NodeName>,
        origin: Option<Instant>,
    }

    impl FakeCluster {
        fn new() -> Self {
            FakeCluster {
                origin: Some(Instant::now()),
                ..FakeCluster::default()
            }
        }

        fn call(&self, what: String, node: &str) -> Result<(), String> {
            let at = self
                .origin
                .map_or(Duration::ZERO, |origin| origin.elapsed());
            self.log.lock().unwrap().push((at, what));
            if self.broken.as_deref() == Some(node) {
                return Err(format!("{node} is broken"));
            }
            Ok(())
        }

        fn calls(&self) -> Vec<String> {
            self.log
                .lock()
                .unwrap()
                .iter()
                .map(|(_, c)| c.clone())
                .collect()
        }

        fn timed_calls(&self) -> Vec<(Duration, String)> {
            self.log.lock().unwrap().clone()
        }
    }

    impl ClusterControl for FakeCluster {
        type Error = String;

        async fn kill(&self, node: &str) -> Result<(), String> {
            self.call(format!("kill {node}"), node)
        }
        async fn restart(&self, node: &str) -> Result<(), String> {
            self.call(format!("restart {node}"), node)
        }
        async fn pause(&self, node: &str) -> Result<(), String> {
            self.call(format!("pause {node}"), node)
        }
        async fn resume(&self, node: &str) -> Result<(), String> {
            self.call(format!("resume {node}"), node)
        }
        async fn leader(&self) -> Option<NodeName> {
            self.leader.clone()
        }
        async fn raft_view(&self, node: &str) -> Result<RaftView, String> {
            let role = match &self.leader {
                Some(leader) if leader == node => Role::Leader,
                _ => Role::Follower,
            };
            Ok(RaftView {
                role,
                term: 1,
                commit_index: 0,
                last_index: 0,
            })
        }
        async fn set_clock(&self, node: &str, offset_ms: i64, rate: f64) -> Result<(), String> {
            self.call(format!("clock {node} {offset_ms} {rate}"), node)
        }
        async fn reset_clock(&self, node: &str) -> Result<(), String> {
            self.call(format!("reset {node}"), node)
        }
    }

    /// A network that logs grudges.
    #[derive(Default)]
    struct FakeNet {
        log: Mutex<Vec<String>>,
    }

    impl NetBackend for FakeNet {
        fn peer_addr(&self, _from: &str, _to: &str) -> Result<std::net::SocketAddr, NemesisError> {
            Ok(std::net::SocketAddr::from(([127, 0, 0, 1], 1)))
        }
        async fn partition(&self, grudge: &Grudge) -> Result<(), NemesisError> {
            self.log.lock().unwrap().push(format!("partition {grudge}"));
            Ok(())
        }
        async fn heal(&self) -> Result<(), NemesisError> {
            self.log.lock().unwrap().push("heal".into());
            Ok(())
        }
        async fn set_message_rules(
            &self,
            rules: &crate::net::messages::MessageRules,
        ) -> Result<(), NemesisError> {
            self.log
                .lock()
                .unwrap()
                .push(format!("rules {}", rules.to_json()));
            Ok(())
        }
        async fn release_held(
            &self,
            from: &str,
            to: &str,
            count: usize,
        ) -> Result<usize, NemesisError> {
            self.log
                .lock()
                .unwrap()
                .push(format!("release {count} {from}->{to}"));
            Ok(0)
        }
        async fn teardown(&self) -> Result<(), NemesisError> {
            Ok(())
        }
    }

    fn nodes() -> Vec<NodeName> {
        ["n1", "n2", "n3"].map(String::from).to_vec()
    }

    fn step(ms: u64, action: Action) -> Step {
        Step {
            at: Duration::from_millis(ms),
            action,
        }
    }

    fn names(list: &[&str]) -> Vec<NodeName> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn slow_leader_stop_resets_only_the_clock_it_set() {
        let mut cluster = FakeCluster::new();
        cluster.leader = Some("n2".into());
        let net = FakeNet::default();
        let mut state = FaultState::new(nodes());
        let plan = vec![
            // The clock lane's own fault on n1, at the same rate slow-leader uses.
            step(
                10,
                Action::Clock {
                    fault: ClockFault::Rate {
                        node: "n1".into(),
                        rate: SLOW_LEADER_RATE,
                    },
                },
            ),
            step(20, Action::StartSlowLeader),
            step(30, Action::StopSlowLeader),
        ];
        let outcome = run(
            &plan,
            &cluster,
            &net,
            &mut state,
            1,
            |_| {},
            std::future::pending(),
        )
        .await;
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(
            cluster.calls(),
            vec![
                format!("clock n1 0 {SLOW_LEADER_RATE}"),
                format!("clock n2 0 {SLOW_LEADER_RATE}"),
                "reset n2".to_string()
            ]
        );
        assert!(state.clocks().contains_key("n1") && !state.clocks().contains_key("n2"));
        assert!(net
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("partition")));
    }

    #[tokio::test(start_paused = true)]
    async fn steps_run_at_their_times_and_are_recorded_with_phases() {
        let cluster = FakeCluster::new();
        let net = FakeNet::default();
        let grudge = Grudge::complete(&names(&["n1"]), &names(&["n2", "n3"]));
        let plan = vec![
            step(
                1000,
                Action::Kill {
                    nodes: names(&["n2"]),
                },
            ),
            step(
                2500,
                Action::Restart {
                    nodes: names(&["n2"]),
                },
            ),
            step(
                3000,
                Action::StartPartition {
                    shape: PartitionShape::IsolateOne,
                    grudge: grudge.clone(),
                },
            ),
            step(4000, Action::StopPartition),
        ];
        let mut state = FaultState::new(nodes());
        let mut events = Vec::new();
        let outcome = run(
            &plan,
            &cluster,
            &net,
            &mut state,
            1,
            |event| events.push(event),
            std::future::pending(),
        )
        .await;
        assert_eq!(outcome.steps_done, 4);
        assert!(!outcome.interrupted && outcome.errors.is_empty());
        assert_eq!(
            cluster.timed_calls(),
            vec![
                (Duration::from_millis(1000), "kill n2".to_string()),
                (Duration::from_millis(2500), "restart n2".to_string()),
            ]
        );
        assert_eq!(
            *net.log.lock().unwrap(),
            vec![format!("partition {grudge}"), "heal".to_string()]
        );
        let summary: Vec<(&str, Phase)> = events.iter().map(|e| (e.f.as_str(), e.phase)).collect();
        assert_eq!(
            summary,
            vec![
                ("kill", Phase::Start),
                ("restart", Phase::Stop),
                ("start-partition", Phase::Start),
                ("stop-partition", Phase::Stop),
            ]
        );
        assert_eq!(events[0].value, serde_json::json!(["n2"]));
        assert_eq!(
            events[2].value,
            serde_json::json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]})
        );
        assert_eq!(events[2].detail.as_deref(), Some("isolate-one"));
        assert!(state.is_healed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_target_is_resolved_at_the_start_and_freed_at_the_stop() {
        let mut cluster = FakeCluster::new();
        cluster.leader = Some("n2".into());
        let net = FakeNet::default();
        let mut state = FaultState::new(nodes());
        let mut events = Vec::new();
        let leader = vec![LEADER.to_string()];
        let plan = vec![
            step(
                10,
                Action::Kill {
                    nodes: leader.clone(),
                },
            ),
            step(
                20,
                Action::Restart {
                    nodes: leader.clone(),
                },
            ),
            step(
                30,
                Action::Pause {
                    nodes: leader.clone(),
                },
            ),
            step(40, Action::Resume { nodes: leader }),
            step(
                50,
                Action::Clock {
                    fault: ClockFault::Rate {
                        node: LEADER.to_string(),
                        rate: 0.5,
                    },
                },
            ),
        ];
        run(
            &plan,
            &cluster,
            &net,
            &mut state,
            1,
            |e| events.push(e),
            std::future::pending(),
        )
        .await;
        assert_eq!(
            cluster.calls(),
            vec![
                "kill n2",
                "restart n2",
                "pause n2",
                "resume n2",
                "clock n2 0 0.5"
            ]
        );
        assert_eq!(events[0].value, serde_json::json!(["n2"]));
        assert_eq!(events[0].detail.as_deref(), Some("leader n2"));
        assert_eq!(events[4].value["node"], "n2");
        assert!(state.killed.is_empty() && state.paused.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn isolate_leader_is_resolved_at_run_time() {
        let mut cluster = FakeCluster::new();
        cluster.leader = Some("n3".into());
        let net = FakeNet::default();
        let mut state = FaultState::new(nodes());
        let mut events = Vec::new();
        let plan = vec![step(10, Action::IsolateLeader)];
        run(
            &plan,
            &cluster,
            &net,
            &mut state,
            1,
            |e| events.push(e),
            std::future::pending(),
        )
        .await;
        let expected = Grudge::isolate(&"n3".to_string(), &nodes());
        assert_eq!(events[0].value, expected.to_json());
        assert_eq!(state.partition(), Some(&expected));
        assert!(events[0].detail.as_deref().unwrap().contains("leader n3"));

        // No leader known: a random node (seeded) is isolated, and the event says so.
        let leaderless = FakeCluster::new();
        let mut state = FaultState::new(nodes());
        let mut events = Vec::new();
        run(
            &plan,
            &leaderless,
            &net,
            &mut state,
            1,
            |e| events.push(e),
            std::future::pending(),
        )
        .await;
        assert!(events[0].detail.as_deref().unwrap().contains("no leader"));
        let isolated = state.partition().unwrap();
        assert_eq!(isolated.entries().len(), 3, "{isolated}");
    }

    #[tokio::test(start_paused = true)]
    async fn interrupted_runs_leave_a_state_that_heal_all_undoes_idempotently() {
        let cluster = FakeCluster::new();
        let net = FakeNet::default();
        let plan = vec![
            step(
                100,
                Action::Pause {
                    nodes: names(&["n1"]),
                },
            ),
            step(
                200,
                Action::Kill {
                    nodes: names(&["n2"]),
                },
            ),
            step(
                300,
                Action::Clock {
                    fault: ClockFault::Bump {
                        node: "n3".into(),
                        delta_ms: 500,
                    },
                },
            ),
            step(
                5000,
                Action::Restart {
                    nodes: names(&["n2"]),
                },
            ),
        ];
        let mut state = FaultState::new(nodes());
        let shutdown = tokio::time::sleep(Duration::from_millis(1000));
        let outcome = run(&plan, &cluster, &net, &mut state, 1, |_| {}, shutdown).await;
        assert!(outcome.interrupted);
        assert_eq!(outcome.steps_done, 3);
        assert_eq!(state.paused().iter().collect::<Vec<_>>(), ["n1"]);
        assert_eq!(state.killed().iter().collect::<Vec<_>>(), ["n2"]);
        assert_eq!(state.clocks()["n3"].offset_ms, 500);

        heal_all(&cluster, &net, &mut state).await.unwrap();
        assert!(state.is_healed());
        let calls = cluster.calls();
        let tail: Vec<&str> = calls[3..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            // n2 was restarted: a fresh process, a real-time clock, no reset.
            ["resume n1", "restart n2", "reset n1", "reset n3"]
        );
        assert_eq!(
            net.log.lock().unwrap().last().map(String::as_str),
            Some("heal")
        );

        // Again: nothing left to resume or restart; network and clocks reset anyway.
        heal_all(&cluster, &net, &mut state).await.unwrap();
        let again: Vec<String> = cluster.calls()[7..].to_vec();
        assert_eq!(again, ["reset n1", "reset n2", "reset n3"]);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_recorded_kept_in_state_and_reported_by_heal_all() {
        let mut cluster = FakeCluster::new();
        cluster.broken = Some("n2".into());
        let net = FakeNet::default();
        let plan = vec![
            step(
                10,
                Action::Kill {
                    nodes: names(&["n1", "n2"]),
                },
            ),
            step(
                20,
                Action::Restart {
                    nodes: names(&["n1", "n2"]),
                },
            ),
        ];
        let mut state = FaultState::new(nodes());
        let mut events = Vec::new();
        let outcome = run(
            &plan,
            &cluster,
            &net,
            &mut state,
            1,
            |e| events.push(e),
            std::future::pending(),
        )
        .await;
        assert_eq!(outcome.errors.len(), 2, "{:?}", outcome.errors);
        assert!(events[0].error.as_deref().unwrap().contains("n2 is broken"));
        // n1 restarted fine; n2's restart failed, so it is still owed one.
        assert_eq!(state.killed().iter().collect::<Vec<_>>(), ["n2"]);
        let error = heal_all(&cluster, &net, &mut state)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("restarting n2"), "{error}");
        assert!(
            !error.contains("clock of n2"),
            "reset a dead node's clock: {error}"
        );
        // Everything else was still tried.
        assert!(cluster.calls().contains(&"reset n3".to_string()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_strobe_flips_every_period_and_ends_at_its_base_offset() {
        let cluster = FakeCluster::new();
        let net = FakeNet::default();
        let strobe = ClockFault::Strobe {
            node: "n1".into(),
            delta_ms: 200,
            period_ms: 50,
            duration_ms: 500,
        };
        let plan = vec![
            step(0, Action::Clock { fault: strobe }),
            step(
                2000,
                Action::Clock {
                    fault: ClockFault::Reset,
                },
            ),
        ];
        let mut state = FaultState::new(nodes());
        let mut events = Vec::new();
        run(
            &plan,
            &cluster,
            &net,
            &mut state,
            1,
            |e| events.push(e),
            std::future::pending(),
        )
        .await;
        let clocks: Vec<(Duration, String)> = cluster
            .timed_calls()
            .into_iter()
            .filter(|(_, call)| call.starts_with("clock"))
            .collect();
        // High at 0, then a flip every 50 ms until 500 ms, where it settles at the base.
        assert_eq!(clocks.len(), 11, "{clocks:?}");
        assert_eq!(clocks[0], (Duration::ZERO, "clock n1 200 1".to_string()));
        assert_eq!(
            clocks[1],
            (Duration::from_millis(50), "clock n1 0 1".to_string())
        );
        assert_eq!(
            clocks[2],
            (Duration::from_millis(100), "clock n1 200 1".to_string())
        );
        assert_eq!(
            clocks[10],
            (Duration::from_millis(500), "clock n1 0 1".to_string())
        );
        assert_eq!(events[0].f, "clock-strobe");
        assert_eq!(events[1].f, "clock-reset");
        assert!(state.is_healed());
    }

    #[tokio::test(start_paused = true)]
    async fn bumps_accumulate_and_rates_keep_the_offset() {
        let cluster = FakeCluster::new();
        let net = FakeNet::default();
        let bump = |delta_ms| Action::Clock {
            fault: ClockFault::Bump {
                node: "n2".into(),
                delta_ms,
            },
        };
        let plan = vec![
            step(0, bump(300)),
            step(1, bump(-100)),
            step(
                2,
                Action::Clock {
                    fault: ClockFault::Rate {
                        node: "n2".into(),
                        rate: 0.5,
                    },
                },
            ),
        ];
        let mut state = FaultState::new(nodes());
        run(
            &plan,
            &cluster,
            &net,
            &mut state,
            1,
            |_| {},
            std::future::pending(),
        )
        .await;
        assert_eq!(
            cluster.calls(),
            ["clock n2 300 1", "clock n2 200 1", "clock n2 200 0.5"]
        );
    }

    /// The driver spawns the nemesis as its own task: the run and heal futures must be
    /// `Send` with either real backend.
    #[test]
    fn run_and_heal_futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        fn check(cluster: &FakeCluster, net: &crate::net::Net, state: &mut FaultState) {
            let plan: Vec<Step> = Vec::new();
            let running = run(&plan, cluster, net, state, 0, |_| {}, async {});
            assert_send(&running);
            drop(running);
            assert_send(&heal_all(cluster, net, state));
        }
        let _ = check;
    }

    #[tokio::test(start_paused = true)]
    async fn a_generated_schedule_runs_to_the_end_healed() {
        let mut cfg = ScheduleConfig::new(names(&["n1", "n2", "n3", "n4", "n5"]), 77);
        cfg.interval = Duration::from_secs(1);
        let plan = schedule(&cfg, Duration::from_secs(60));
        let mut cluster = FakeCluster::new();
        cluster.leader = Some("n4".into());
        let net = FakeNet::default();
        let mut state = FaultState::new(cfg.nodes.clone());
        let mut events = Vec::new();
        let outcome = run(
            &plan,
            &cluster,
            &net,
            &mut state,
            3,
            |e| events.push(e),
            std::future::pending(),
        )
        .await;
        assert_eq!(outcome.steps_done, plan.len());
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(events.len(), plan.len());
        assert!(state.is_healed(), "{state:?}");
        let starts = events.iter().filter(|e| e.phase == Phase::Start).count();
        assert_eq!(starts * 2, events.len());
    }
}
