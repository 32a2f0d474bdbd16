//! One row per fault kind: its name, the lane it runs in, whether `all` includes it, and
//! what it needs from the cluster; and [`Capabilities`], what a database and the place
//! its nodes run can give. Parsing, the schedule's lanes and usable kinds, `--nemesis
//! all` and the refusals before a run all read these two values, so a fault kind is
//! described in one place instead of in parallel lists.

use crate::schedule::FaultKind;

/// The schedule runs one loop per lane; faults of one lane never overlap, faults of
/// different lanes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// Partitions and the scripted faults that rewire the network.
    Network,
    /// Kills and pauses.
    Processes,
    /// Clock faults.
    Clocks,
}

impl Lane {
    /// Every lane, in the order the schedule draws them (and sorts equal times by).
    pub const ALL: [Lane; 3] = [Lane::Network, Lane::Processes, Lane::Clocks];
}

/// What a fault kind needs to happen at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// The fewest nodes on which the fault means something.
    pub min_nodes: usize,
    /// Whether the cluster size must be odd (the scripts split it into exact halves
    /// around one node).
    pub odd_nodes: bool,
    /// The database must name its leader while the fault runs.
    pub leader: bool,
    /// The harness must be able to set the nodes' clocks.
    pub clock: bool,
    /// The fault steers by the Raft state (role, term, indexes) the nodes report.
    pub raft_state: bool,
    /// The network must drop and hold single messages (the proxy's message rules).
    pub message_rules: bool,
}

impl Needs {
    const NODES: Needs = Needs {
        min_nodes: 1,
        odd_nodes: false,
        leader: false,
        clock: false,
        raft_state: false,
        message_rules: false,
    };
}

/// One fault kind, described once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRow {
    pub kind: FaultKind,
    /// The name on the command line, in test names and in the history.
    pub name: &'static str,
    pub lane: Lane,
    /// Whether `--nemesis all` includes it (for a database that can take it).
    pub in_all: bool,
    pub needs: Needs,
}

/// Every fault kind, in the order of [`FaultKind`] (which the schedule's draws follow).
pub const FAULTS: [FaultRow; 7] = [
    FaultRow {
        kind: FaultKind::Partition,
        name: "partition",
        lane: Lane::Network,
        in_all: true,
        needs: Needs {
            min_nodes: 3,
            ..Needs::NODES
        },
    },
    FaultRow {
        kind: FaultKind::Kill,
        name: "kill",
        lane: Lane::Processes,
        in_all: true,
        needs: Needs::NODES,
    },
    FaultRow {
        kind: FaultKind::Pause,
        name: "pause",
        lane: Lane::Processes,
        in_all: true,
        needs: Needs::NODES,
    },
    FaultRow {
        kind: FaultKind::Clock,
        name: "clock",
        lane: Lane::Clocks,
        in_all: true,
        needs: Needs {
            clock: true,
            ..Needs::NODES
        },
    },
    FaultRow {
        kind: FaultKind::SplitVote,
        name: "split-vote",
        lane: Lane::Network,
        in_all: false,
        needs: Needs {
            min_nodes: 3,
            odd_nodes: true,
            leader: true,
            raft_state: true,
            message_rules: true,
            ..Needs::NODES
        },
    },
    FaultRow {
        kind: FaultKind::FigureEight,
        name: "figure-8",
        lane: Lane::Network,
        in_all: false,
        needs: Needs {
            min_nodes: 5,
            odd_nodes: true,
            leader: true,
            raft_state: true,
            message_rules: true,
            ..Needs::NODES
        },
    },
    FaultRow {
        kind: FaultKind::SlowLeader,
        name: "slow-leader",
        lane: Lane::Network,
        in_all: false,
        needs: Needs {
            min_nodes: 3,
            leader: true,
            clock: true,
            raft_state: true,
            ..Needs::NODES
        },
    },
];

impl FaultRow {
    /// Why this fault cannot run on `nodes` nodes, if it cannot.
    pub fn nodes_refusal(&self, nodes: usize) -> Option<String> {
        let Needs {
            min_nodes,
            odd_nodes,
            ..
        } = self.needs;
        let name = self.name;
        if odd_nodes && (nodes < min_nodes || nodes.is_multiple_of(2)) {
            Some(format!(
                "--nemesis {name} needs an odd number of nodes, at least {min_nodes} (got --nodes {nodes})"
            ))
        } else if nodes < min_nodes {
            Some(format!(
                "--nemesis {name} needs at least {min_nodes} nodes (got --nodes {nodes}); use --nodes {min_nodes} or more, or leave {name} out of --nemesis"
            ))
        } else {
            None
        }
    }

    /// Why the database or the network cannot take this fault, if they cannot: the
    /// reason of the first need they do not meet.
    pub fn refusal<'a>(&self, can: &'a Capabilities) -> Option<&'a str> {
        let needs = self.needs;
        [
            (needs.raft_state, &can.raft_state),
            (needs.clock, &can.clock),
            (needs.leader, &can.leader),
            (needs.message_rules, &can.message_rules),
        ]
        .into_iter()
        .find_map(|(needed, ability)| match ability {
            Ability::No(why) if needed => Some(why.as_str()),
            _ => None,
        })
    }
}

/// Whether something can be done, and if not, why (said to the user as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ability {
    Yes,
    No(String),
}

impl Ability {
    pub fn no(why: impl Into<String>) -> Ability {
        Ability::No(why.into())
    }

    pub fn is_yes(&self) -> bool {
        matches!(self, Ability::Yes)
    }
}

/// What the database under test and the place its nodes run can give the faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The database names its leader (for `primaries` targets and leader faults).
    pub leader: Ability,
    /// The harness can set the nodes' clocks.
    pub clock: Ability,
    /// The nodes report their Raft state (role, term, indexes).
    pub raft_state: Ability,
    /// The network can drop and hold single messages by kind.
    pub message_rules: Ability,
}

impl Capabilities {
    /// Everything: the bundled cluster on the proxy network.
    pub fn all() -> Capabilities {
        Capabilities {
            leader: Ability::Yes,
            clock: Ability::Yes,
            raft_state: Ability::Yes,
            message_rules: Ability::Yes,
        }
    }

    /// The fault kinds `--nemesis all` means here: those in `all` that can be taken.
    pub fn all_faults(&self) -> Vec<FaultKind> {
        FAULTS
            .iter()
            .filter(|row| row.in_all && row.refusal(self).is_none())
            .map(|row| row.kind)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_kind_in_kind_order() {
        assert_eq!(FAULTS.len(), FaultKind::NAMED.len());
        for (row, kind) in FAULTS.iter().zip(FaultKind::NAMED) {
            assert_eq!(row.kind, kind);
            assert_eq!(row.kind.row(), row);
        }
    }

    #[test]
    fn node_counts_are_refused_with_the_need() {
        let row = |k: FaultKind| *k.row();
        assert!(row(FaultKind::Partition).nodes_refusal(3).is_none());
        let e = row(FaultKind::Partition).nodes_refusal(2).unwrap();
        assert!(
            e.contains("at least 3 nodes") && e.contains("--nodes 2"),
            "{e}"
        );
        let e = row(FaultKind::SplitVote).nodes_refusal(4).unwrap();
        assert!(e.contains("odd number of nodes, at least 3"), "{e}");
        assert!(row(FaultKind::FigureEight).nodes_refusal(3).is_some());
        assert!(row(FaultKind::FigureEight).nodes_refusal(5).is_none());
        assert!(row(FaultKind::SlowLeader).nodes_refusal(2).is_some());
        assert!(row(FaultKind::Kill).nodes_refusal(1).is_none());
    }

    #[test]
    fn refusals_give_the_first_missing_need_and_all_keeps_what_can_run() {
        let no_clock = Capabilities {
            clock: Ability::no("no clocks here"),
            raft_state: Ability::no("no raft here"),
            ..Capabilities::all()
        };
        assert_eq!(
            FaultKind::Clock.row().refusal(&no_clock),
            Some("no clocks here")
        );
        assert_eq!(
            FaultKind::SplitVote.row().refusal(&no_clock),
            Some("no raft here")
        );
        assert_eq!(FaultKind::Kill.row().refusal(&no_clock), None);
        assert_eq!(
            no_clock.all_faults(),
            [FaultKind::Partition, FaultKind::Kill, FaultKind::Pause]
        );
        assert_eq!(Capabilities::all().all_faults(), FaultKind::ALL);
    }
}
