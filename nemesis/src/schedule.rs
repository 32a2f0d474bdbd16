//! The fault schedule: a seeded, pure plan of when each fault starts and stops.
//!
//! This is Jepsen's combined nemesis made into data. The fault kinds fall into three
//! *lanes* — the network (partitions), the processes (kills and pauses) and the clocks —
//! and each lane runs its own loop: wait about `interval`, start a fault, hold it about
//! `interval`, heal it, wait about `interval`, start the next. The lanes run side by
//! side, so faults of different lanes overlap (a partition while a node is killed, a
//! skewed clock on an isolated leader): several Raft bugs only show under such
//! combinations. Within a lane one fault is active at a time; which nodes a kill or
//! pause takes is drawn from the configured [`TargetSpec`]s (Jepsen's node specs: one
//! node, a minority, a majority, all, the primary). Every start is followed by its stop
//! no later than the end of the run, so a schedule always ends healed.
//!
//! Every choice — fault kind, targets, grudge, clock values, jittered timings — is drawn
//! from seeded RNGs (one stream per lane), so the same seed gives the same schedule, and
//! a schedule can be printed or stored before the run. Only the leader is left open: the
//! leader-isolating partition (`Action::IsolateLeader`) and the target [`LEADER`] of a
//! kill, pause or clock fault are resolved by the executor at run time.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::clock::ClockFault;
use crate::faults::{FaultRow, Lane, FAULTS};

/// A target resolved at run time to the node that leads when the fault starts; its
/// stop (restart, resume) applies to that same node.
pub const LEADER: &str = "@leader";

use crate::error::NemesisError;
use crate::grudge::{Grudge, NodeName, PartitionShape};

/// A family of faults the schedule may draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Network partitions (grudges).
    Partition,
    /// SIGKILL then restart on the same data directory.
    Kill,
    /// SIGSTOP then SIGCONT.
    Pause,
    /// Clock bumps, strobes and rate changes.
    Clock,
    /// A scripted split vote through message rules (see [`crate::scenario`]): two
    /// candidates in one term, the voter they share restarted in between. Proxy network
    /// only, an odd number of nodes; not part of `all`.
    SplitVote,
    /// Raft's Figure 8, scripted (see [`crate::scenario::figure_eight`]): a leader's
    /// old-term entries reach a majority before its own entry does, then a node with a
    /// later last term wins. Proxy network, odd clusters of 5 or more; not part of `all`.
    #[serde(rename = "figure-8")]
    FigureEight,
    /// The leader's clock slowed (to [`crate::SLOW_LEADER_RATE`]) while it is cut off
    /// from every peer (not from clients): a lease timed by that clock outlasts the next
    /// election unless it keeps a margin. Not part of `all`.
    SlowLeader,
}

impl FaultKind {
    /// Every kind `all` includes, in a fixed order.
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
    ];

    /// Every kind that has a name, including those `all` leaves out, in row order.
    pub const NAMED: [FaultKind; 7] = [
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::SplitVote,
        FaultKind::FigureEight,
        FaultKind::SlowLeader,
    ];

    /// This kind's row: name, lane, needs.
    pub fn row(self) -> &'static FaultRow {
        // The rows are in kind order (tested), so this is an index.
        &FAULTS[self as usize]
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The names `--nemesis` takes, for messages.
    fn expected() -> String {
        let mut names: Vec<&str> = FAULTS.iter().map(|row| row.name).collect();
        names.extend(["all", "none"]);
        names.join(", ")
    }

    /// Parses a comma-separated list such as `partition,kill`, or `all`, or `none`.
    pub fn parse_list(list: &str) -> Result<BTreeSet<FaultKind>, NemesisError> {
        let mut kinds = BTreeSet::new();
        for item in list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            match item {
                "all" => kinds.extend(FAULTS.iter().filter(|r| r.in_all).map(|r| r.kind)),
                "none" => {}
                other => {
                    kinds.insert(other.parse()?);
                }
            }
        }
        Ok(kinds)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = NemesisError;

    /// One kind by name. `all` and `none` name sets: use [`FaultKind::parse_list`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::NAMED
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| NemesisError::Parse {
                what: "fault kind",
                got: s.to_string(),
                expected: FaultKind::expected().into(),
            })
    }
}

/// What the schedule is drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// The fault families to draw from; empty means no faults at all.
    pub kinds: BTreeSet<FaultKind>,
    /// The partition shapes to draw from when a partition is chosen.
    pub shapes: Vec<PartitionShape>,
    /// Mean time a fault is held, and mean quiet time between two faults (each drawn
    /// uniformly from half to one and a half of it).
    #[serde(with = "millis")]
    pub interval: Duration,
    /// The cluster's nodes.
    pub nodes: Vec<NodeName>,
    /// Which nodes a kill or pause takes: each fault draws one spec uniformly.
    pub targets: Vec<TargetSpec>,
    /// The seed of every random choice.
    pub seed: u64,
}

impl ScheduleConfig {
    /// Every fault kind and shape, a 5 s interval, kills and pauses of every target
    /// spec.
    pub fn new(nodes: Vec<NodeName>, seed: u64) -> Self {
        ScheduleConfig {
            kinds: FaultKind::ALL.into_iter().collect(),
            shapes: PartitionShape::ALL.to_vec(),
            interval: Duration::from_secs(5),
            nodes,
            targets: TargetSpec::ALL.to_vec(),
            seed,
        }
    }
}

/// Which nodes a kill or pause takes, as Jepsen's node specs. A correct cluster stays
/// available under `one` and `minority`; `majority` and `all` take its quorum away
/// (what exposes lost fsyncs: every copy of an acknowledged write dies at once), and
/// `primaries` hits the leader, resolved when the fault starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetSpec {
    /// One random node.
    One,
    /// A random minority: as many nodes as can fail with a quorum left ((n-1)/2).
    Minority,
    /// A random majority (n/2 + 1).
    Majority,
    /// Every node.
    All,
    /// The leader.
    Primaries,
}

impl TargetSpec {
    pub const ALL: [TargetSpec; 5] = [
        TargetSpec::One,
        TargetSpec::Minority,
        TargetSpec::Majority,
        TargetSpec::All,
        TargetSpec::Primaries,
    ];
    const EXPECTED: &'static str = "one, minority, majority, all, primaries";

    pub fn name(self) -> &'static str {
        match self {
            TargetSpec::One => "one",
            TargetSpec::Minority => "minority",
            TargetSpec::Majority => "majority",
            TargetSpec::All => "all",
            TargetSpec::Primaries => "primaries",
        }
    }

    /// Parses a comma-separated list such as `one,primaries`; order is kept, duplicates
    /// dropped, and the list must not be empty.
    pub fn parse_list(list: &str) -> Result<Vec<TargetSpec>, NemesisError> {
        let mut specs = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let spec: TargetSpec = item.parse()?;
            if !specs.contains(&spec) {
                specs.push(spec);
            }
        }
        if specs.is_empty() {
            return Err(NemesisError::Parse {
                what: "fault target",
                got: list.to_string(),
                expected: TargetSpec::EXPECTED.into(),
            });
        }
        Ok(specs)
    }

    /// The nodes this spec takes on `nodes`, drawn with `rng` (sorted); `[LEADER]` for
    /// `primaries`. Empty when the spec takes nobody here (a minority of one node).
    fn pick(self, nodes: &[NodeName], rng: &mut ChaCha8Rng) -> Vec<NodeName> {
        let count = match self {
            TargetSpec::Primaries => return vec![LEADER.to_string()],
            TargetSpec::One => 1,
            TargetSpec::Minority => nodes.len().saturating_sub(1) / 2,
            TargetSpec::Majority => nodes.len() / 2 + 1,
            TargetSpec::All => nodes.len(),
        };
        let mut targets: Vec<NodeName> = nodes
            .choose_multiple(rng, count.min(nodes.len()))
            .cloned()
            .collect();
        targets.sort();
        targets
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TargetSpec {
    type Err = NemesisError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetSpec::ALL
            .into_iter()
            .find(|spec| spec.name() == s)
            .ok_or_else(|| NemesisError::Parse {
                what: "fault target",
                got: s.to_string(),
                expected: TargetSpec::EXPECTED.into(),
            })
    }
}

/// One planned nemesis action at a time offset from the start of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// When to perform it, measured from the start of the run.
    #[serde(with = "millis", rename = "at_ms")]
    pub at: Duration,
    /// What to do.
    pub action: Action,
}

/// A nemesis action; each start has a matching stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Apply this grudge (replacing any other).
    StartPartition {
        shape: PartitionShape,
        grudge: Grudge,
    },
    /// Isolate whichever node leads when the step runs.
    IsolateLeader,
    /// Heal the network.
    StopPartition,
    /// SIGKILL these nodes.
    Kill { nodes: Vec<NodeName> },
    /// Restart these nodes on their data directories.
    Restart { nodes: Vec<NodeName> },
    /// SIGSTOP these nodes.
    Pause { nodes: Vec<NodeName> },
    /// SIGCONT these nodes.
    Resume { nodes: Vec<NodeName> },
    /// A clock fault; `ClockFault::Reset` is the stop of every clock fault.
    Clock { fault: ClockFault },
    /// Script a split vote (roles chosen at run time); see [`crate::scenario`].
    StartSplitVote,
    /// Lift the split vote's message rules (heals the network).
    StopSplitVote,
    /// Script Figure 8 (roles chosen at run time); see [`crate::scenario::figure_eight`].
    StartFigureEight,
    /// Lift Figure 8's message rules (heals the network).
    StopFigureEight,
    /// Slow the current leader's clock and isolate it.
    StartSlowLeader,
    /// Heal the network and give the slowed clock back its real time.
    StopSlowLeader,
}

impl Action {
    /// The history `f` this action is recorded under.
    pub fn f(&self) -> &'static str {
        match self {
            Action::StartPartition { .. } | Action::IsolateLeader => "start-partition",
            Action::StopPartition => "stop-partition",
            Action::Kill { .. } => "kill",
            Action::Restart { .. } => "restart",
            Action::Pause { .. } => "pause",
            Action::Resume { .. } => "resume",
            Action::Clock { fault } => fault.f(),
            Action::StartSplitVote => "start-split-vote",
            Action::StopSplitVote => "stop-split-vote",
            Action::StartFigureEight => "start-figure-8",
            Action::StopFigureEight => "stop-figure-8",
            Action::StartSlowLeader => "start-slow-leader",
            Action::StopSlowLeader => "stop-slow-leader",
        }
    }

    /// Does this action start a fault (as opposed to healing one)?
    pub fn is_start(&self) -> bool {
        !matches!(
            self,
            Action::StopPartition
                | Action::StopSplitVote
                | Action::StopFigureEight
                | Action::StopSlowLeader
                | Action::Restart { .. }
                | Action::Resume { .. }
                | Action::Clock {
                    fault: ClockFault::Reset
                }
        )
    }
}

/// Plans the faults of a run lasting `duration`. Deterministic in `cfg`.
pub fn schedule(cfg: &ScheduleConfig, duration: Duration) -> Vec<Step> {
    let mut nodes = cfg.nodes.clone();
    nodes.sort();
    nodes.dedup();
    let kinds = usable_kinds(cfg, &nodes);
    let mut steps = Vec::new();
    if kinds.is_empty() || cfg.interval.is_zero() {
        return steps;
    }
    for (lane_index, lane) in Lane::ALL.into_iter().enumerate() {
        let kinds: Vec<FaultKind> = kinds
            .iter()
            .copied()
            .filter(|kind| kind.row().lane == lane)
            .collect();
        if kinds.is_empty() {
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(lane_index as u64);
        // Let the cluster settle (elect a leader) before the first fault.
        let mut at = jitter(cfg.interval, &mut rng);
        while at < duration {
            let hold = jitter(cfg.interval, &mut rng);
            let stop_at = (at + hold).min(duration);
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let (start, stop) = plan_fault(kind, cfg, &nodes, stop_at - at, &mut rng);
            steps.push(Step { at, action: start });
            steps.push(Step {
                at: stop_at,
                action: stop,
            });
            at = stop_at + jitter(cfg.interval, &mut rng);
        }
    }
    // A stable sort: at equal times the network lane comes first, then processes, then
    // clocks, and within a lane a stop before the next start.
    steps.sort_by_key(|step| step.at);
    steps
}

/// The requested kinds that can actually happen on this cluster.
fn usable_kinds(cfg: &ScheduleConfig, nodes: &[NodeName]) -> Vec<FaultKind> {
    cfg.kinds
        .iter()
        .copied()
        .filter(|kind| match kind {
            // Partitions draw their shape from the configured ones; a shape fits from
            // two nodes on (the run refuses fewer than three before it starts).
            FaultKind::Partition => cfg
                .shapes
                .iter()
                .any(|shape| shape.min_nodes() <= nodes.len()),
            FaultKind::Kill | FaultKind::Pause => !nodes.is_empty() && !cfg.targets.is_empty(),
            _ => kind.row().nodes_refusal(nodes.len()).is_none(),
        })
        .collect()
}

/// Draws one fault of `kind` and the action that heals it.
fn plan_fault(
    kind: FaultKind,
    cfg: &ScheduleConfig,
    nodes: &[NodeName],
    hold: Duration,
    rng: &mut ChaCha8Rng,
) -> (Action, Action) {
    match kind {
        FaultKind::Partition => {
            let shapes: Vec<PartitionShape> = cfg
                .shapes
                .iter()
                .copied()
                .filter(|shape| shape.min_nodes() <= nodes.len())
                .collect();
            // A third of the time the leader's side is the one cut off, as for kills and
            // pauses: a deposed leader that keeps serving is what partitions test most.
            let shape =
                if shapes.contains(&PartitionShape::IsolateLeader) && rng.gen_bool(1.0 / 3.0) {
                    PartitionShape::IsolateLeader
                } else {
                    shapes[rng.gen_range(0..shapes.len())]
                };
            let start = if shape == PartitionShape::IsolateLeader {
                Action::IsolateLeader
            } else {
                match Grudge::for_shape(shape, nodes, None, rng) {
                    Ok(grudge) => Action::StartPartition { shape, grudge },
                    // Unreachable after the min_nodes filter; isolate-leader is the
                    // shape that works on every cluster of two or more.
                    Err(_) => Action::IsolateLeader,
                }
            };
            (start, Action::StopPartition)
        }
        FaultKind::SplitVote => (Action::StartSplitVote, Action::StopSplitVote),
        FaultKind::FigureEight => (Action::StartFigureEight, Action::StopFigureEight),
        FaultKind::SlowLeader => (Action::StartSlowLeader, Action::StopSlowLeader),
        FaultKind::Kill => {
            let targets = pick_targets(cfg, nodes, rng);
            (
                Action::Kill {
                    nodes: targets.clone(),
                },
                Action::Restart { nodes: targets },
            )
        }
        FaultKind::Pause => {
            let targets = pick_targets(cfg, nodes, rng);
            (
                Action::Pause {
                    nodes: targets.clone(),
                },
                Action::Resume { nodes: targets },
            )
        }
        FaultKind::Clock => {
            // Half the time the leader's clock: its lease and heartbeats run on it.
            let leader = LEADER.to_string();
            let node = if rng.gen_bool(0.5) {
                &leader
            } else {
                &nodes[rng.gen_range(0..nodes.len())]
            };
            (
                Action::Clock {
                    fault: ClockFault::random(node, hold, rng),
                },
                Action::Clock {
                    fault: ClockFault::Reset,
                },
            )
        }
    }
}

/// The nodes of one kill or pause: a spec drawn uniformly from the configured ones,
/// then its nodes. A spec that takes nobody on this cluster (a minority of one or two
/// nodes) falls back to one node, so every drawn fault does something.
fn pick_targets(cfg: &ScheduleConfig, nodes: &[NodeName], rng: &mut ChaCha8Rng) -> Vec<NodeName> {
    let spec = cfg.targets[rng.gen_range(0..cfg.targets.len())];
    let targets = spec.pick(nodes, rng);
    if targets.is_empty() {
        TargetSpec::One.pick(nodes, rng)
    } else {
        targets
    }
}

/// A duration drawn uniformly between half and one and a half of `mean`, in whole ms.
fn jitter(mean: Duration, rng: &mut ChaCha8Rng) -> Duration {
    let mean_ms = mean.as_millis().max(1) as u64;
    let low = (mean_ms / 2).max(1);
    Duration::from_millis(rng.gen_range(low..=mean_ms + mean_ms / 2))
}

/// Serde for durations as whole milliseconds, readable in test.json.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<NodeName> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let cfg = ScheduleConfig::new(nodes(5), 1234);
        let a = schedule(&cfg, Duration::from_secs(120));
        let b = schedule(&cfg, Duration::from_secs(120));
        assert_eq!(a, b);
        assert!(a.len() >= 10, "only {} steps", a.len());
        let other = ScheduleConfig::new(nodes(5), 1235);
        assert_ne!(a, schedule(&other, Duration::from_secs(120)));
    }

    /// The lane an action belongs to: 0 network, 1 processes, 2 clocks.
    fn lane(action: &Action) -> usize {
        match action {
            Action::StartPartition { .. }
            | Action::IsolateLeader
            | Action::StopPartition
            | Action::StartSplitVote
            | Action::StopSplitVote
            | Action::StartFigureEight
            | Action::StopFigureEight
            | Action::StartSlowLeader
            | Action::StopSlowLeader => 0,
            Action::Kill { .. }
            | Action::Restart { .. }
            | Action::Pause { .. }
            | Action::Resume { .. } => 1,
            Action::Clock { .. } => 2,
        }
    }

    #[test]
    fn within_each_lane_starts_and_stops_alternate_and_end_healed_within_the_run() {
        for seed in 0..40 {
            let mut cfg = ScheduleConfig::new(nodes(5), seed);
            cfg.interval = Duration::from_secs(2);
            let run = Duration::from_secs(60);
            let steps = schedule(&cfg, run);
            for window in steps.windows(2) {
                assert!(
                    window[0].at <= window[1].at,
                    "seed {seed}: not in time order"
                );
            }
            for l in 0..3 {
                let lane_steps: Vec<&Step> =
                    steps.iter().filter(|s| lane(&s.action) == l).collect();
                assert!(!lane_steps.is_empty(), "seed {seed}: lane {l} is empty");
                assert_eq!(lane_steps.len() % 2, 0, "seed {seed} lane {l}");
                for pair in lane_steps.chunks(2) {
                    let (start, stop) = (pair[0], pair[1]);
                    assert!(start.action.is_start(), "seed {seed}: {start:?}");
                    assert!(!stop.action.is_start(), "seed {seed}: {stop:?}");
                    assert!(start.at <= stop.at && stop.at <= run, "seed {seed}");
                    let healed = match (&start.action, &stop.action) {
                        (Action::Kill { nodes: a }, Action::Restart { nodes: b })
                        | (Action::Pause { nodes: a }, Action::Resume { nodes: b }) => a == b,
                        (Action::StartPartition { .. }, Action::StopPartition)
                        | (Action::IsolateLeader, Action::StopPartition)
                        | (Action::StartSplitVote, Action::StopSplitVote)
                        | (Action::StartFigureEight, Action::StopFigureEight)
                        | (Action::StartSlowLeader, Action::StopSlowLeader) => true,
                        (Action::Clock { .. }, Action::Clock { fault }) => {
                            *fault == ClockFault::Reset
                        }
                        _ => false,
                    };
                    assert!(healed, "seed {seed}: {start:?} not healed by {stop:?}");
                }
            }
        }
    }

    #[test]
    fn lanes_overlap_and_the_leader_is_a_target() {
        let mut cfg = ScheduleConfig::new(nodes(5), 3);
        cfg.interval = Duration::from_secs(2);
        let steps = schedule(&cfg, Duration::from_secs(300));
        // Some kill starts while a partition is in force.
        let mut partitioned = false;
        let mut overlapped = false;
        for step in &steps {
            match &step.action {
                Action::StartPartition { .. } | Action::IsolateLeader => partitioned = true,
                Action::StopPartition => partitioned = false,
                Action::Kill { .. } | Action::Pause { .. } if partitioned => overlapped = true,
                _ => {}
            }
        }
        assert!(overlapped, "no process fault during a partition in 300 s");
        let leader = [LEADER.to_string()];
        assert!(steps
            .iter()
            .any(|s| matches!(&s.action, Action::Kill { nodes } if nodes[..] == leader)));
        assert!(steps.iter().any(|s| matches!(&s.action, Action::Clock { fault } if fault.node().map(String::as_str) == Some(LEADER))));
    }

    #[test]
    fn kills_and_pauses_take_exactly_what_their_targets_say() {
        let sizes = |targets: &str| -> BTreeSet<usize> {
            let mut seen = BTreeSet::new();
            for seed in 0..40 {
                let mut cfg = ScheduleConfig::new(nodes(5), seed);
                cfg.kinds = FaultKind::parse_list("kill,pause").unwrap();
                cfg.targets = TargetSpec::parse_list(targets).unwrap();
                for step in schedule(&cfg, Duration::from_secs(100)) {
                    if let Action::Kill { nodes } | Action::Pause { nodes } = &step.action {
                        if nodes[..] != [LEADER.to_string()] {
                            seen.insert(nodes.len());
                        }
                    }
                }
            }
            seen
        };
        assert_eq!(sizes("one"), BTreeSet::from([1]));
        assert_eq!(sizes("minority"), BTreeSet::from([2]));
        assert_eq!(sizes("majority"), BTreeSet::from([3]));
        assert_eq!(sizes("all"), BTreeSet::from([5]));
        assert_eq!(sizes("primaries"), BTreeSet::new(), "only the leader");
        assert_eq!(
            sizes("one,minority,majority,all"),
            BTreeSet::from([1, 2, 3, 5])
        );
        let e = TargetSpec::parse_list("one,some").unwrap_err().to_string();
        assert!(e.contains("some") && e.contains("minority"), "{e}");
        assert!(TargetSpec::parse_list("").is_err());
        // A minority of a 2-node cluster is nobody: one node instead.
        let mut cfg = ScheduleConfig::new(nodes(2), 3);
        cfg.kinds = FaultKind::parse_list("kill").unwrap();
        cfg.targets = vec![TargetSpec::Minority];
        assert!(schedule(&cfg, Duration::from_secs(60))
            .iter()
            .all(|s| !matches!(&s.action, Action::Kill { nodes } if nodes.len() != 1)));
    }

    #[test]
    fn only_the_requested_kinds_appear_and_every_kind_appears_eventually() {
        let mut cfg = ScheduleConfig::new(nodes(5), 9);
        cfg.kinds = FaultKind::parse_list("partition,clock").unwrap();
        let steps = schedule(&cfg, Duration::from_secs(600));
        let fs: BTreeSet<&str> = steps.iter().map(|step| step.action.f()).collect();
        assert!(
            fs.contains("start-partition") && fs.contains("clock-reset"),
            "{fs:?}"
        );
        assert!(!fs.contains("kill") && !fs.contains("pause"), "{fs:?}");

        cfg.kinds = FaultKind::parse_list("all").unwrap();
        let steps = schedule(&cfg, Duration::from_secs(600));
        let fs: BTreeSet<&str> = steps.iter().map(|step| step.action.f()).collect();
        for f in [
            "start-partition",
            "kill",
            "pause",
            "restart",
            "resume",
            "clock-reset",
        ] {
            assert!(fs.contains(f), "{f} missing from {fs:?}");
        }
    }

    #[test]
    fn none_or_impossible_kinds_give_an_empty_schedule() {
        let mut cfg = ScheduleConfig::new(nodes(3), 1);
        cfg.kinds = FaultKind::parse_list("none").unwrap();
        assert!(schedule(&cfg, Duration::from_secs(60)).is_empty());
        // One node: nothing to partition; killing it (with its disk) is still a test.
        let mut single = ScheduleConfig::new(nodes(1), 1);
        single.kinds = FaultKind::parse_list("partition").unwrap();
        assert!(schedule(&single, Duration::from_secs(60)).is_empty());
        single.kinds = FaultKind::parse_list("partition,kill").unwrap();
        let steps = schedule(&single, Duration::from_secs(60));
        assert!(!steps.is_empty());
        assert!(steps
            .iter()
            .all(|s| matches!(s.action, Action::Kill { .. } | Action::Restart { .. })));
    }

    #[test]
    fn fault_kind_names_parse_and_bad_names_explain() {
        assert_eq!("kill".parse::<FaultKind>().unwrap(), FaultKind::Kill);
        assert_eq!(FaultKind::parse_list("all").unwrap().len(), 4);
        let err = FaultKind::parse_list("partition,crash")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"crash\"") && err.contains("partition, kill"),
            "{err}"
        );
    }

    #[test]
    fn steps_serialize_as_readable_json() {
        let step = Step {
            at: Duration::from_millis(1500),
            action: Action::Kill {
                nodes: vec!["n2".into()],
            },
        };
        let json = serde_json::to_value(&step).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"at_ms": 1500, "action": {"action": "kill", "nodes": ["n2"]}})
        );
        let back: Step = serde_json::from_value(json).unwrap();
        assert_eq!(back, step);
    }
}
