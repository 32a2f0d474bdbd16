//! The sans-IO Raft consensus core of the bundled KV server (`splitbrain-raft`).
//!
//! This module owns the consensus logic only: leader election (randomized timeouts,
//! pre-vote, check-quorum), log replication with fast conflict backtracking, the commit
//! rule (only current-term entries are committed by counting, Raft §5.4.2), read-index
//! and lease reads, and snapshots. It has no sockets, files, clocks, threads or tokio:
//! it is a state machine with *events in* ([`RaftNode::tick`], [`RaftNode::step`],
//! [`RaftNode::propose`], [`RaftNode::read_index`], [`RaftNode::lease_read`],
//! [`RaftNode::compact`]) and *commands out* ([`Ready`]). That is what lets the
//! deterministic simulation (`sim.rs`) run thousands of seeded schedules of drops,
//! reorders, partitions and crashes in seconds, and what keeps `src/node/` (TCP, the
//! write-ahead log, the KV state machine) a thin runtime around it.
//!
//! # Example
//! A one-node cluster elects itself and commits a proposal; a real node persists each
//! [`Ready`] before sending its messages and applying its entries.
//! ```
//! use splitbrain_raft::{Config, RaftNode, Restored, Role};
//!
//! let mut node = RaftNode::new(Config::new(1, vec![1], 7), Restored::default());
//! while node.status().role != Role::Leader {
//!     node.tick();
//! }
//! let (index, _term) = node.propose(b"put x 1".to_vec()).expect("the leader takes writes");
//! let mut applied = Vec::new();
//! while node.has_ready() {
//!     let ready = node.ready();
//!     // 1. persist ready.entries and ready.hard_state (fsync), 2. send ready.messages,
//!     // 3. apply:
//!     applied.extend(ready.committed);
//! }
//! assert!(applied.iter().any(|e| e.index == index && e.data == b"put x 1"));
//! ```
//!
//! # Layout
//! - `message.rs`: the wire and disk types ([`Entry`], [`HardState`], [`Snapshot`],
//!   [`Message`], [`MessageBody`]).
//! - `log.rs`: the in-memory log: snapshot base, entries, commit and apply cursors, and
//!   the bookkeeping of what still has to be persisted.
//! - `progress.rs`: the leader's view of each follower (match/next index, probe,
//!   pipelined replication, snapshot in flight).
//! - `node.rs`: [`RaftNode`], the protocol itself.
//! - `sim.rs` (tests only): the deterministic cluster simulation and the safety checks.
//! - `scenarios.rs` (tests only): scripted scenarios (Figure 8, pre-vote, check-quorum,
//!   reads, persistence before acknowledging).
//!
//! # The Ready contract
//! After any event, while [`RaftNode::has_ready`] is true, call [`RaftNode::ready`] and
//! handle the returned [`Ready`] completely, in this order, before feeding the core the
//! next event:
//! 1. **Persist** (durably, fsync): first `snapshot` (store it and drop every log entry
//!    with index <= `snapshot.index`), then `truncate_from` (delete log entries with
//!    index >= it), then append `entries`, then `hard_state`.
//! 2. **Send** `messages` — only once step 1 is durable.
//! 3. **Apply**: install `snapshot` into the state machine (if any), then apply
//!    `committed` in order; answer `read_states` once the applied index reaches each
//!    one's `index`; fail the reads listed in `lost_reads`.
//!
//! A vote is granted and an append acknowledged only by a message in a Ready whose
//! persistence precedes the send, so "fsync before granting a vote / acknowledging an
//! append" holds whenever the node follows the contract. A leader likewise counts its
//! own log for commitment before persisting it, which is safe because no follower can
//! acknowledge an entry before the leader has sent it, i.e. before it was persisted.
//!
//! # Restart
//! Hand [`RaftNode::new`] what was persisted ([`Restored`]). The core assumes the state
//! machine is rebuilt from the snapshot alone: it starts with `applied = snapshot.index`
//! and hands out every committed entry after it again in the first Ready. A node with a
//! durable state machine skips the entries it already applied.
//!
//! # Reads
//! - [`RaftNode::read_index`]: the leader issues a new heartbeat round (`read_seq`,
//!   carried by every AppendEntries and echoed in the responses) and confirms the read
//!   once a quorum acknowledged that round *and* it has committed an entry of its own
//!   term (its no-op); the [`ReadState`] then carries the commit index to wait for.
//! - [`RaftNode::lease_read`]: no round trip; valid for `lease_ticks` from the issuing
//!   of the newest round a quorum acknowledged. Safe because a follower that heard from
//!   the leader refuses to vote (pre-vote or higher-term vote) for `election_ticks.0`
//!   ticks — also right after it restarts — and because `lease_ticks < election_ticks.0`.
//!   Only as safe as the tick clocks run at the same rate.
//! - Check-quorum: a leader that has not heard from a quorum for `election_ticks.0`
//!   ticks steps down; its pending read-index reads come back in `lost_reads`.
//!
//! # API notes (relative to the first brief; all additive)
//! - [`Config::new`] gives the defaults, [`Config::validate`] reports bad values
//!   ([`ConfigError`]); [`RaftNode::new`] clamps instead of failing.
//! - Flow control is `max_inflight_msgs` (AppendEntries with entries in flight per
//!   follower); there is no byte-based limit and no `TimeoutNow` (no leadership transfer).
//! - [`MessageBody::InstallSnapshot`] also carries `read_seq`; the rejection hint of
//!   [`MessageBody::AppendEntriesResponse`] is `conflict_term`/`conflict_index`/`last_index`.
//! - [`Status`] also has `id`, `voted_for` and `last_term`; [`Ready::is_empty`] exists.
//! - [`RaftNode::lease_read`] fails with `leader_hint: Some(own id)` when this node leads
//!   but holds no valid lease (fall back to `read_index`).
//!
//! # Conventions
//! - Proposals with empty `data` are indistinguishable from the leader's no-op: the
//!   state machine should skip both.
//! - Ticks are the core's only clock. Election timeouts, heartbeats and the leader lease
//!   are counted in ticks; the node decides how long a tick is (and the nemesis may
//!   skew that clock).

mod log;
mod message;
mod node;
mod progress;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod sim;

pub use message::{Entry, HardState, Message, MessageBody, NodeId, Snapshot};
pub use node::RaftNode;

use serde::{Deserialize, Serialize};

/// Static configuration of one consensus core.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id.
    pub id: NodeId,
    /// Every voter of the cluster, including `id`. Membership is fixed.
    pub peers: Vec<NodeId>,
    /// The election timeout is drawn uniformly from `[min, max)` ticks at every reset,
    /// so that candidates rarely split the vote. `min` is also the window in which a
    /// follower that heard from a leader refuses to vote (what makes leases safe).
    pub election_ticks: (u64, u64),
    /// Ticks between two heartbeats of a leader; well below `election_ticks.0`.
    pub heartbeat_ticks: u64,
    /// Run a pre-vote round before bumping the term (Raft thesis §9.6).
    pub pre_vote: bool,
    /// At most this many entries per AppendEntries message (batching).
    pub max_entries_per_append: usize,
    /// At most this many AppendEntries with entries in flight per follower while
    /// replicating optimistically (pipelining).
    pub max_inflight_msgs: usize,
    /// Length of the leader lease in ticks, counted from the sending of the heartbeat
    /// round a quorum acknowledged. Must be below `election_ticks.0` (the core clamps it).
    pub lease_ticks: u64,
    /// Deliberate bugs, all off by default.
    pub bugs: CoreBugs,
    /// Seed of the randomized election timeouts (mixed with `id`, so every node of a
    /// simulated cluster may share one seed). The node passes a random seed.
    pub seed: u64,
}

impl Config {
    /// A configuration with the defaults the node uses: elections after 10..20 ticks,
    /// heartbeats every 2, pre-vote on, 64 entries per append, 8 appends in flight,
    /// a lease of 8 ticks, no bugs.
    pub fn new(id: NodeId, peers: Vec<NodeId>, seed: u64) -> Config {
        Config {
            id,
            peers,
            election_ticks: (10, 20),
            heartbeat_ticks: 2,
            pre_vote: true,
            max_entries_per_append: 64,
            max_inflight_msgs: 8,
            lease_ticks: 8,
            bugs: CoreBugs::default(),
            seed,
        }
    }

    /// Checks the configuration; [`RaftNode::new`] clamps what this rejects, so call
    /// it where a user supplied the values to report them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.peers.contains(&self.id) {
            return Err(ConfigError::SelfNotInPeers(self.id));
        }
        let (min, max) = self.election_ticks;
        if min == 0 || max <= min {
            return Err(ConfigError::ElectionTicks(min, max));
        }
        if self.heartbeat_ticks == 0 || self.heartbeat_ticks >= min {
            return Err(ConfigError::HeartbeatTicks(self.heartbeat_ticks, min));
        }
        if self.lease_ticks >= min {
            return Err(ConfigError::LeaseTicks(self.lease_ticks, min));
        }
        if self.max_entries_per_append == 0 || self.max_inflight_msgs == 0 {
            return Err(ConfigError::ZeroBatch);
        }
        Ok(())
    }
}

/// Why a [`Config`] is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `peers` must list every voter including this node.
    #[error("node id {0} is not in the peer list")]
    SelfNotInPeers(NodeId),
    /// The election timeout range is empty.
    #[error("election ticks must be 0 < min < max, got ({0}, {1})")]
    ElectionTicks(u64, u64),
    /// Heartbeats must be more frequent than elections.
    #[error("heartbeat ticks must be in 1..{1} (the election minimum), got {0}")]
    HeartbeatTicks(u64, u64),
    /// A lease as long as the election timeout is unsafe.
    #[error("lease ticks must be below the election minimum {1}, got {0}")]
    LeaseTicks(u64, u64),
    /// Batching limits must allow at least one entry and one message.
    #[error("max_entries_per_append and max_inflight_msgs must be at least 1")]
    ZeroBatch,
}

/// Deliberate protocol bugs, for validating the harness. All off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreBugs {
    /// Count replicas for entries of older terms too (violates §5.4.2, Figure 8).
    pub commit_old_terms: bool,
    /// Accept AppendEntries without truncating conflicting entries.
    pub no_truncate: bool,
    /// `read_index` answers immediately on a leader without confirming leadership with
    /// a heartbeat quorum, and the leader skips check-quorum, so a leader cut off by a
    /// partition keeps serving reads from its stale state until it hears a higher term.
    pub stale_reads: bool,
    /// Lease reads trust the local tick clock without the safety margin and without
    /// stepping down: the lease runs for the longest election timeout from the last
    /// quorum acknowledgement *received*, and the leader skips check-quorum. A deposed
    /// (or slow-clocked) leader keeps serving.
    pub lease_trusts_clock: bool,
}

/// Everything the node recovered from disk at startup.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    /// The last persisted hard state (default when the node never ran).
    pub hard_state: HardState,
    /// The last persisted snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The persisted log entries, in index order. Entries covered by the snapshot are
    /// ignored; the log is cut at the first gap.
    pub entries: Vec<Entry>,
}

/// The answer to a proposal or a read on a node that is not the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not the leader (leader hint: {leader_hint:?})")]
pub struct NotLeader {
    /// The leader this node last heard of in its current term, if any.
    pub leader_hint: Option<NodeId>,
}

/// A confirmed linearizable read: serve it once the state machine applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The caller's context from [`RaftNode::read_index`].
    pub ctx: u64,
    /// The commit index at which the read is linearizable.
    pub index: u64,
}

/// The commands produced by the core. See the module doc for the order of handling.
#[derive(Clone, Debug, Default)]
pub struct Ready {
    /// Persist (fsync) if `Some`.
    pub hard_state: Option<HardState>,
    /// Persist: delete log entries with index >= this, before appending `entries`.
    pub truncate_from: Option<u64>,
    /// Persist (fsync): append, in order.
    pub entries: Vec<Entry>,
    /// A snapshot received from the leader: persist it (dropping log entries up to its
    /// index) before anything else, then install it into the state machine.
    pub snapshot: Option<Snapshot>,
    /// Send only after all of the above is durable.
    pub messages: Vec<Message>,
    /// Apply to the state machine in order, after persisting.
    pub committed: Vec<Entry>,
    /// Confirmed reads, in the order they were requested.
    pub read_states: Vec<ReadState>,
    /// Read contexts that will never be confirmed (this node stepped down).
    pub lost_reads: Vec<u64>,
}

impl Ready {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.truncate_from.is_none()
            && self.entries.is_empty()
            && self.snapshot.is_none()
            && self.messages.is_empty()
            && self.committed.is_empty()
            && self.read_states.is_empty()
            && self.lost_reads.is_empty()
    }
}

/// The role of a node in its current term. Its serde names (`leader`, `follower`,
/// `candidate`, `pre-candidate`) are the ones the bundled node's admin API reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking for pre-votes; its term is unchanged.
    PreCandidate,
    /// Campaigning in a new term.
    Candidate,
    /// The leader of its term.
    Leader,
}

impl Role {
    /// The role's name, as it serializes (`leader`, `pre-candidate`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod role_tests {
    use super::Role;

    #[test]
    fn roles_print_as_they_serialize() {
        for role in [
            Role::Leader,
            Role::Follower,
            Role::Candidate,
            Role::PreCandidate,
        ] {
            let wire = serde_json::to_value(role).expect("serializes");
            assert_eq!(wire, serde_json::Value::from(role.to_string()));
        }
        assert_eq!(Role::PreCandidate.to_string(), "pre-candidate");
    }
}

/// A snapshot of a node's consensus state, for the admin API and the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: u64,
    /// Whom it voted for in `term`.
    pub voted_for: Option<NodeId>,
    /// The leader it knows of in `term`.
    pub leader: Option<NodeId>,
    /// The highest index known committed.
    pub commit: u64,
    /// The highest index handed out for applying (via `committed` or a snapshot).
    pub applied: u64,
    /// The index of the last log entry (or of the snapshot when the log is empty).
    pub last_index: u64,
    /// The term of that entry.
    pub last_term: u64,
    /// The index covered by the latest snapshot (0 if none).
    pub snapshot_index: u64,
    /// The term at `snapshot_index`.
    pub snapshot_term: u64,
    /// How many entries are held in memory after the snapshot.
    pub log_len: u64,
}
