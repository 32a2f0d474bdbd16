//! The registry of deliberate bugs of the bundled node, used to validate the harness:
//! each must be caught under the nemesis (fault) and workload named here, with the
//! settings it names (applied by `splitbrain test --bug`, so that the command line
//! `splitbrain bugs` prints is all it takes). All are off by default and switched on one
//! by one with `splitbrain node --bug NAME`.

use crate::node::server::ReadMode;
use splitbrain_nemesis::FaultKind;
use splitbrain_workloads::WorkloadKind;

/// One deliberate bug.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BugInfo {
    /// The `--bug` value.
    pub name: &'static str,
    /// The fault of `splitbrain test` that exposes it (`None`: the bug shows without
    /// faults, `--nemesis none`).
    pub nemesis: Option<FaultKind>,
    /// The workload that exposes it.
    pub workload: WorkloadKind,
    /// The read mode the bug lives in (`splitbrain test --bug` sets it, and refuses
    /// another one): a bug of the lease path tests nothing under read-index.
    pub read_mode: Option<ReadMode>,
    /// The longest operation timeout (seconds) under which the bug shows: `test --bug`
    /// uses it unless told a shorter one, and refuses a longer one.
    pub max_op_timeout: Option<f64>,
    /// The lowest request rate (operations per second) at which the bug shows reliably:
    /// `test --bug` uses it unless told a higher one, and refuses a lower one.
    pub min_rate: Option<f64>,
    pub description: &'static str,
}

impl BugInfo {
    /// The `--nemesis` value that exposes the bug.
    pub fn nemesis_arg(&self) -> &'static str {
        self.nemesis.map_or("none", FaultKind::name)
    }

    /// The settings `splitbrain test --bug` applies besides nemesis and workload, as
    /// command-line flags.
    pub fn settings(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(mode) = self.read_mode {
            flags.push(format!("--read-mode {}", mode.name()));
        }
        if let Some(timeout) = self.max_op_timeout {
            flags.push(format!("--op-timeout {timeout}"));
        }
        if let Some(rate) = self.min_rate {
            flags.push(format!("--rate {rate}"));
        }
        flags
    }

    /// The whole command line that exposes the bug.
    pub fn command(&self) -> String {
        let mut cmd = format!(
            "splitbrain test --bug {} --nemesis {} --workload {}",
            self.name,
            self.nemesis_arg(),
            self.workload.name()
        );
        for flag in self.settings() {
            cmd.push(' ');
            cmd.push_str(&flag);
        }
        cmd
    }
}

/// Every deliberate bug, in a stable order.
pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: "skip-fsync",
        nemesis: Some(FaultKind::Kill),
        workload: WorkloadKind::Register,
        read_mode: None,
        max_op_timeout: None,
        min_rate: None,
        description: "acknowledge writes before they are durable: the WAL keeps records in memory \
                      for up to 2 s and never fsyncs, so killing every node at once loses acknowledged writes",
    },
    BugInfo {
        name: "forget-vote",
        nemesis: Some(FaultKind::SplitVote),
        workload: WorkloadKind::Register,
        read_mode: None,
        max_op_timeout: None,
        min_rate: None,
        description: "do not restore voted_for after a restart, so a node can vote twice in one term \
                      and two leaders can be elected in the same term (the scripted split-vote \
                      nemesis restarts the voter two candidates share)",
    },
    BugInfo {
        name: "commit-old-terms",
        nemesis: Some(FaultKind::FigureEight),
        workload: WorkloadKind::Register,
        read_mode: None,
        max_op_timeout: None,
        min_rate: None,
        description: "commit entries from earlier terms by counting replicas (violates Raft 5.4.2): \
                      a committed entry can later be overwritten",
    },
    BugInfo {
        name: "stale-reads",
        nemesis: Some(FaultKind::Partition),
        workload: WorkloadKind::Register,
        read_mode: None,
        max_op_timeout: None,
        min_rate: None,
        description: "a leader answers reads from its own state without confirming it is still leader \
                      and does not step down when cut off, so a leader isolated by a partition serves stale values",
    },
    BugInfo {
        name: "no-truncate",
        nemesis: Some(FaultKind::Partition),
        workload: WorkloadKind::Register,
        read_mode: None,
        max_op_timeout: None,
        min_rate: None,
        description: "followers do not truncate conflicting log suffixes when appending, so replicas \
                      diverge after a leader change",
    },
    BugInfo {
        name: "lease-trusts-clock",
        nemesis: Some(FaultKind::SlowLeader),
        workload: WorkloadKind::Register,
        read_mode: Some(ReadMode::Lease),
        max_op_timeout: Some(0.25),
        min_rate: Some(400.0),
        description: "in lease read mode, the leader times its lease by its own clock up to the \
                      election timeout, without a safety margin, so an isolated leader with a slow clock \
                      serves reads after a new leader was elected (short operation timeouts, so that \
                      writers stuck at the old leader move on to the new one in time, and twice the default \
                      rate, so that a read at the old leader lands in the short window after the \
                      next leader's first write)",
    },
    BugInfo {
        name: "non-atomic-txn",
        nemesis: None,
        workload: WorkloadKind::ListAppend,
        read_mode: None,
        max_op_timeout: None,
        min_rate: None,
        description: "the leader runs a multi-operation transaction that writes as a sequence of \
                      one-operation transactions, each its own log entry, so other transactions \
                      interleave between them and see it half done (G-single, G1c, G2); no fault needed",
    },
];

/// The valid names, comma-separated, for error messages.
pub fn valid_names() -> String {
    BUGS.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
}

/// The set of bugs a node runs with, parsed from `--bug` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BugSet {
    pub skip_fsync: bool,
    pub forget_vote: bool,
    pub commit_old_terms: bool,
    pub stale_reads: bool,
    pub no_truncate: bool,
    pub lease_trusts_clock: bool,
    pub non_atomic_txn: bool,
}

/// An unknown `--bug` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bug {name:?}; valid bugs are: {valid}")]
pub struct UnknownBug {
    pub name: String,
    pub valid: String,
}

impl BugSet {
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<BugSet, UnknownBug> {
        let mut set = BugSet::default();
        for name in names {
            let name = name.as_ref();
            let flag = match name {
                "skip-fsync" => &mut set.skip_fsync,
                "forget-vote" => &mut set.forget_vote,
                "commit-old-terms" => &mut set.commit_old_terms,
                "stale-reads" => &mut set.stale_reads,
                "no-truncate" => &mut set.no_truncate,
                "lease-trusts-clock" => &mut set.lease_trusts_clock,
                "non-atomic-txn" => &mut set.non_atomic_txn,
                _ => {
                    return Err(UnknownBug {
                        name: name.to_string(),
                        valid: valid_names(),
                    })
                }
            };
            *flag = true;
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_bug_parses_and_unknown_names_list_the_valid_ones() {
        for bug in BUGS {
            let set = BugSet::parse(&[bug.name]).expect("registered bug parses");
            assert_ne!(
                set,
                BugSet::default(),
                "{} must switch something on",
                bug.name
            );
        }
        let err = BugSet::parse(&["skip-fsync", "nope"]).expect_err("unknown");
        assert!(err.to_string().contains("nope") && err.to_string().contains("forget-vote"));
    }
}
