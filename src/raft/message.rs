//! The wire and disk types of the consensus core: log entries, hard state, snapshots
//! and the messages peers exchange.
//!
//! They are plain serde types so the node can put them on the wire (JSON lines or any
//! other framing) and in its write-ahead log without the core knowing how.

use serde::{Deserialize, Serialize};

/// A node's identity. Nodes `n1..nN` have ids `1..N`.
pub type NodeId = u64;

/// One entry of the replicated log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: u64,
    /// The position in the log, starting at 1.
    pub index: u64,
    /// The command for the state machine. Empty means a no-op (the entry every new
    /// leader appends to commit the entries of earlier terms); the state machine skips it.
    pub data: Vec<u8>,
}

/// The state that must survive a crash: the node persists (fsyncs) it whenever a
/// [`Ready`](super::Ready) carries it, before sending that Ready's messages.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: u64,
    /// The candidate this node voted for in `term`, if any. Forgetting it on restart
    /// would allow two votes in one term, hence two leaders.
    pub voted_for: Option<NodeId>,
    /// The highest index known committed. Persisting it lets a restarted node re-apply
    /// its committed entries without waiting for a leader.
    pub commit: u64,
}

/// A snapshot of the state machine covering every entry up to `index`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The last log index the snapshot covers.
    pub index: u64,
    /// The term of the entry at `index`.
    pub term: u64,
    /// The serialized state machine; opaque to the core.
    pub data: Vec<u8>,
}

/// A message between two peers. `term` is the sender's term, except for a pre-vote
/// request, which carries the term the sender would campaign in (its term + 1), and a
/// granted pre-vote response, which echoes that term.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The recipient.
    pub to: NodeId,
    /// The sender's term (see the type doc for the pre-vote exception).
    pub term: u64,
    /// What the message says.
    pub body: MessageBody,
}

/// The Raft RPCs (requests and responses are separate one-way messages).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum MessageBody {
    /// "Would you vote for me if I campaigned?" Does not change anybody's term, so a
    /// node rejoining after a partition cannot depose a healthy leader.
    PreVote {
        /// The sender's last log index.
        last_index: u64,
        /// The term of the sender's last log entry.
        last_term: u64,
    },
    /// Answer to [`MessageBody::PreVote`].
    PreVoteResponse {
        /// Whether the recipient would vote.
        granted: bool,
    },
    /// A real vote request (Raft §5.2).
    RequestVote {
        /// The candidate's last log index.
        last_index: u64,
        /// The term of the candidate's last log entry.
        last_term: u64,
    },
    /// Answer to [`MessageBody::RequestVote`].
    RequestVoteResponse {
        /// Whether the vote was granted (and persisted before this was sent).
        granted: bool,
    },
    /// Log replication and heartbeat (Raft §5.3). A heartbeat has no entries.
    AppendEntries {
        /// The index of the entry just before `entries`.
        prev_index: u64,
        /// The term of the entry at `prev_index`.
        prev_term: u64,
        /// The entries to append (may be empty).
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: u64,
        /// The leader's latest heartbeat round; echoed in the response so the leader
        /// can confirm its leadership for read-index and lease reads.
        read_seq: u64,
    },
    /// Answer to [`MessageBody::AppendEntries`].
    AppendEntriesResponse {
        /// Whether the follower's log matched at `prev_index` and the entries were appended.
        success: bool,
        /// On success, the highest index known to match the leader's log; on failure,
        /// the `prev_index` that was rejected.
        match_index: u64,
        /// On failure, the term of the follower's entry at `prev_index`, or `None` when
        /// the follower's log is shorter than `prev_index` (fast backtracking).
        conflict_term: Option<u64>,
        /// On failure, the first index of `conflict_term` in the follower's log, or the
        /// follower's last index + 1 when `conflict_term` is `None`.
        conflict_index: u64,
        /// The follower's last log index.
        last_index: u64,
        /// The `read_seq` of the request being answered.
        read_seq: u64,
    },
    /// The leader's snapshot, sent to a follower that needs entries already compacted away.
    InstallSnapshot {
        /// The snapshot.
        snapshot: Snapshot,
        /// As in [`MessageBody::AppendEntries`].
        read_seq: u64,
    },
    /// Answer to [`MessageBody::InstallSnapshot`].
    InstallSnapshotResponse {
        /// The highest index known to match the leader's log after installing.
        match_index: u64,
        /// The `read_seq` of the request being answered.
        read_seq: u64,
    },
}
