//! [`RaftNode`]: the Raft protocol as a deterministic state machine.
//!
//! Everything that happens to a node arrives as a call (a tick, a message, a proposal,
//! a read) and everything it wants done leaves through [`Ready`]. Time is the tick
//! count; randomness is a ChaCha RNG seeded from [`Config::seed`]. Given the same calls
//! in the same order, a node makes the same decisions, which is what the simulation in
//! `sim.rs` relies on.

use std::collections::{BTreeMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::log::RaftLog;
use super::message::{Entry, HardState, Message, MessageBody, NodeId, Snapshot};
use super::progress::{FlowState, Progress};
use super::{Config, NotLeader, ReadState, Ready, Restored, Role, Status};

/// A read-index request waiting for its leadership confirmation.
#[derive(Debug)]
struct PendingRead {
    /// The caller's context.
    ctx: u64,
    /// The heartbeat round a quorum must acknowledge before the read is safe.
    seq: u64,
    /// The commit index to read at; `None` until the leader committed an entry of its
    /// own term (before that its commit index may lag entries committed by its
    /// predecessors).
    index: Option<u64>,
}

/// The outcome of counting votes.
enum Poll {
    Won,
    Lost,
    Pending,
}

/// One member of a Raft cluster, without I/O. See the module doc of `raft` for the
/// [`Ready`] contract.
#[derive(Debug)]
pub struct RaftNode {
    /// The sanitized configuration (peers sorted, timeouts clamped).
    config: Config,
    /// Votes needed to win an election or commit an entry.
    quorum: usize,
    role: Role,
    term: u64,
    voted_for: Option<NodeId>,
    /// The leader of the current term, once known.
    leader: Option<NodeId>,
    log: RaftLog,
    /// Draws the randomized election timeouts.
    rng: ChaCha8Rng,
    /// Ticks since this core started: the local clock of leases and snapshot resends.
    now: u64,
    /// Ticks since the election timer was last reset (leaders: since the last
    /// check-quorum).
    election_elapsed: u64,
    /// The current randomized election timeout.
    election_timeout: u64,
    /// Ticks since the leader's last heartbeat round.
    heartbeat_elapsed: u64,
    /// Ticks since this node last heard from a leader of its term (or started, or was
    /// the leader). While below the minimum election timeout, the node refuses to help
    /// depose that leader: it rejects pre-votes and ignores higher-term vote requests.
    leader_contact_elapsed: u64,
    /// Pre-vote or vote answers in the current campaign (self included).
    votes: BTreeMap<NodeId, bool>,
    /// The leader's view of every other peer; empty unless leader.
    progress: BTreeMap<NodeId, Progress>,
    /// The latest heartbeat round issued; carried by every AppendEntries.
    read_seq: u64,
    /// The tick at which each unacknowledged-by-quorum round was issued (for leases).
    seq_issued_at: VecDeque<(u64, u64)>,
    /// Read-index requests awaiting confirmation, in request order.
    pending_reads: VecDeque<PendingRead>,
    /// The hard state last handed out in a Ready (i.e. persisted).
    persisted_hard_state: HardState,
    /// A snapshot received from the leader, to hand out in the next Ready.
    snapshot_to_install: Option<Snapshot>,
    messages: Vec<Message>,
    read_states: Vec<ReadState>,
    lost_reads: Vec<u64>,
}

/// Clamps a configuration into the ranges the protocol needs (see [`Config::validate`]).
fn sanitize(mut config: Config) -> Config {
    config.peers.push(config.id);
    config.peers.sort_unstable();
    config.peers.dedup();
    let min = config.election_ticks.0.max(1);
    let max = config.election_ticks.1.max(min + 1);
    config.election_ticks = (min, max);
    config.heartbeat_ticks = config.heartbeat_ticks.clamp(1, (min - 1).max(1));
    config.lease_ticks = config.lease_ticks.min(min - 1);
    config.max_entries_per_append = config.max_entries_per_append.max(1);
    config.max_inflight_msgs = config.max_inflight_msgs.max(1);
    config
}

impl RaftNode {
    /// Starts a node from what it persisted (an empty [`Restored`] on first boot).
    pub fn new(config: Config, restored: Restored) -> RaftNode {
        let config = sanitize(config);
        let quorum = config.peers.len() / 2 + 1;
        let rng =
            ChaCha8Rng::seed_from_u64(config.seed ^ config.id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let hard_state = restored.hard_state;
        let log = RaftLog::restore(restored.snapshot, restored.entries, hard_state.commit);
        let mut node = RaftNode {
            config,
            quorum,
            role: Role::Follower,
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            leader: None,
            log,
            rng,
            now: 0,
            election_elapsed: 0,
            election_timeout: 0,
            heartbeat_elapsed: 0,
            // A restarted node may have acknowledged a leader just before crashing; it
            // must not help elect another one within that leader's lease.
            leader_contact_elapsed: 0,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            read_seq: 0,
            seq_issued_at: VecDeque::new(),
            pending_reads: VecDeque::new(),
            persisted_hard_state: hard_state,
            snapshot_to_install: None,
            messages: Vec::new(),
            read_states: Vec::new(),
            lost_reads: Vec::new(),
        };
        node.reset_election_timer();
        node
    }

    /// Advances the node's clock by one tick: elections, heartbeats, check-quorum.
    pub fn tick(&mut self) {
        self.now += 1;
        if self.role == Role::Leader {
            self.leader_contact_elapsed = 0;
            self.heartbeat_elapsed += 1;
            self.election_elapsed += 1;
            if self.election_elapsed >= self.config.election_ticks.0 {
                self.election_elapsed = 0;
                // Both lease bugs model a leader that never learns it was deposed: it
                // keeps its role while cut off (no check-quorum step-down).
                let trusts_itself =
                    self.config.bugs.lease_trusts_clock || self.config.bugs.stale_reads;
                if !trusts_itself && !self.check_quorum() {
                    // Cut off from a quorum: stop accepting writes and serving reads.
                    self.become_follower(self.term, None);
                    return;
                }
            }
            if self.heartbeat_elapsed >= self.config.heartbeat_ticks {
                self.heartbeat_elapsed = 0;
                self.broadcast_heartbeat();
            }
        } else {
            self.leader_contact_elapsed = self.leader_contact_elapsed.saturating_add(1);
            self.election_elapsed += 1;
            if self.election_elapsed >= self.election_timeout {
                if self.config.pre_vote {
                    self.pre_campaign();
                } else {
                    self.campaign();
                }
            }
        }
    }

    /// Feeds one batch of input gathered since the last Ready: first the `due_ticks`
    /// that fell due before the batch was read, then the `messages` in arrival order.
    ///
    /// The order is a safety matter for leases. A follower promises a leader to refuse
    /// votes for an election minimum after it *acknowledges* a round, and it
    /// acknowledges when it handles the message. A node that was stalled (SIGSTOP, a
    /// long fsync) and handled the leader's buffered heartbeat before the stall's ticks
    /// would count the whole stall against its promise: it could vote for a rival at
    /// once, while the lease it just extended still runs. Ticks first means time passed
    /// before a message is never charged to the time after it. (A message read after
    /// the due ticks were counted may have arrived a moment earlier than that: it is
    /// treated as heard later than it was, the safe direction for a follower, and a
    /// leader's lease is counted from when it sent a round, never from acknowledgements.)
    pub fn advance(&mut self, due_ticks: u64, messages: impl IntoIterator<Item = Message>) {
        for _ in 0..due_ticks {
            self.tick();
        }
        for msg in messages {
            self.step(msg);
        }
    }

    /// Handles one message from a peer. Messages not addressed to this node or from
    /// unknown peers are ignored.
    pub fn step(&mut self, msg: Message) {
        if msg.to != self.config.id
            || msg.from == self.config.id
            || !self.config.peers.contains(&msg.from)
        {
            return;
        }
        if msg.term > self.term {
            match &msg.body {
                // Pre-votes never change terms (that is their point).
                MessageBody::PreVote { .. } => {}
                MessageBody::PreVoteResponse { granted: true } => {}
                // Within a leader's lease, a higher-term vote request is ignored
                // outright: bumping our term would depose a healthy leader.
                MessageBody::RequestVote { .. } if self.heard_from_leader_recently() => return,
                MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. } => {
                    self.become_follower(msg.term, Some(msg.from))
                }
                _ => self.become_follower(msg.term, None),
            }
        } else if msg.term < self.term {
            self.reject_stale(&msg);
            return;
        }
        let from = msg.from;
        match msg.body {
            MessageBody::PreVote {
                last_index,
                last_term,
            } => {
                let granted = msg.term > self.term
                    && self.log.is_up_to_date(last_index, last_term)
                    && !self.heard_from_leader_recently();
                let term = if granted { msg.term } else { self.term };
                self.send(from, term, MessageBody::PreVoteResponse { granted });
            }
            MessageBody::PreVoteResponse { granted } => {
                if self.role != Role::PreCandidate || (granted && msg.term != self.term + 1) {
                    return;
                }
                self.votes.insert(from, granted);
                match self.poll() {
                    Poll::Won => self.campaign(),
                    Poll::Lost => self.become_follower(self.term, None),
                    Poll::Pending => {}
                }
            }
            MessageBody::RequestVote {
                last_index,
                last_term,
            } => {
                // Also refuse while a leader's lease may be running: our term may have
                // been bumped by some other higher-term message since we last heard
                // from that leader, and the lease counts on our silence.
                let free = self.voted_for == Some(from)
                    || (self.voted_for.is_none()
                        && self.leader.is_none()
                        && !self.heard_from_leader_recently());
                let granted = free && self.log.is_up_to_date(last_index, last_term);
                if granted {
                    self.voted_for = Some(from);
                    self.reset_election_timer();
                }
                self.send(
                    from,
                    self.term,
                    MessageBody::RequestVoteResponse { granted },
                );
            }
            MessageBody::RequestVoteResponse { granted } => {
                if self.role != Role::Candidate {
                    return;
                }
                self.votes.insert(from, granted);
                match self.poll() {
                    Poll::Won => self.become_leader(),
                    Poll::Lost => self.become_follower(self.term, None),
                    Poll::Pending => {}
                }
            }
            MessageBody::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
                read_seq,
            } => {
                if !self.accept_leader(from) {
                    return;
                }
                self.handle_append(from, prev_index, prev_term, entries, commit, read_seq);
            }
            MessageBody::AppendEntriesResponse {
                success,
                match_index,
                conflict_term,
                conflict_index,
                last_index: _,
                read_seq,
            } => {
                if self.role == Role::Leader {
                    if success {
                        self.handle_append_success(from, match_index, read_seq);
                    } else {
                        self.handle_append_reject(
                            from,
                            match_index,
                            conflict_term,
                            conflict_index,
                            read_seq,
                        );
                    }
                }
            }
            MessageBody::InstallSnapshot { snapshot, read_seq } => {
                if !self.accept_leader(from) {
                    return;
                }
                self.handle_snapshot(from, snapshot, read_seq);
            }
            MessageBody::InstallSnapshotResponse {
                match_index,
                read_seq,
            } => {
                if self.role == Role::Leader {
                    self.handle_append_success(from, match_index, read_seq);
                }
            }
        }
    }

    /// Appends a command to the leader's log and starts replicating it. Returns its
    /// (index, term): the command is committed once an entry with that index *and term*
    /// comes out in [`Ready::committed`]; a different term there means it was lost.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(u64, u64), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader_hint: self.leader,
            });
        }
        let index = self.log.push(self.term, data);
        self.maybe_commit();
        self.broadcast_append();
        Ok((index, self.term))
    }

    /// Starts a linearizable read. Once a quorum acknowledged a heartbeat round issued
    /// after this call, and the leader has committed an entry of its own term, a
    /// [`ReadState`] with this `ctx` appears in [`Ready::read_states`]; serve the read
    /// once the applied index reaches its `index`. If the node steps down first, `ctx`
    /// appears in [`Ready::lost_reads`] instead.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader_hint: self.leader,
            });
        }
        if self.config.bugs.stale_reads {
            self.read_states.push(ReadState {
                ctx,
                index: self.log.commit,
            });
            return Ok(());
        }
        let index = self.committed_in_current_term().then_some(self.log.commit);
        self.bump_read_seq();
        self.pending_reads.push_back(PendingRead {
            ctx,
            seq: self.read_seq,
            index,
        });
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in peers {
            self.send_heartbeat(peer);
        }
        self.check_reads();
        Ok(())
    }

    /// A read served from the leader's lease, without a round of messages. Returns the
    /// index to read at (serve once applied >= it). Fails with `leader_hint: Some(self)`
    /// when this node leads but holds no valid lease (fall back to [`Self::read_index`]).
    pub fn lease_read(&mut self) -> Result<u64, NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader_hint: self.leader,
            });
        }
        let no_lease = NotLeader {
            leader_hint: Some(self.config.id),
        };
        if !self.committed_in_current_term() {
            return Err(no_lease);
        }
        if self.progress.is_empty() {
            return Ok(self.log.commit);
        }
        let valid = if self.config.bugs.lease_trusts_clock {
            let mut ticks: Vec<u64> = self.progress.values().map(|p| p.last_ack_tick).collect();
            ticks.push(self.now);
            ticks.sort_unstable_by(|a, b| b.cmp(a));
            self.now < ticks[self.quorum - 1] + self.config.election_ticks.1
        } else {
            match self.lease_start() {
                Some(start) => self.now < start + self.config.lease_ticks,
                None => false,
            }
        };
        if valid {
            Ok(self.log.commit)
        } else {
            Err(no_lease)
        }
    }

    /// The node took a snapshot of its state machine at `snapshot.index` (which must not
    /// exceed the applied index handed out) and persisted it: drop the log up to there.
    /// Stale or inconsistent snapshots are ignored. Produces no Ready output.
    pub fn compact(&mut self, snapshot: Snapshot) {
        self.log.compact(snapshot);
    }

    /// True when [`Self::ready`] has something to hand out.
    pub fn has_ready(&self) -> bool {
        self.hard_state() != self.persisted_hard_state
            || self.snapshot_to_install.is_some()
            || self.log.has_unstable()
            || !self.messages.is_empty()
            || self.log.has_committed()
            || !self.read_states.is_empty()
            || !self.lost_reads.is_empty()
    }

    /// Drains all pending outputs. Handle the result as the module doc prescribes.
    pub fn ready(&mut self) -> Ready {
        let hard_state = self.hard_state();
        let hard_state = (hard_state != self.persisted_hard_state).then(|| {
            self.persisted_hard_state = hard_state;
            hard_state
        });
        let snapshot = self.snapshot_to_install.take();
        let (truncate_from, entries) = self.log.take_unstable();
        let committed = self.log.take_committed();
        Ready {
            hard_state,
            truncate_from,
            entries,
            snapshot,
            messages: std::mem::take(&mut self.messages),
            committed,
            read_states: std::mem::take(&mut self.read_states),
            lost_reads: std::mem::take(&mut self.lost_reads),
        }
    }

    /// The node's consensus state.
    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: self.role,
            term: self.term,
            voted_for: self.voted_for,
            leader: self.leader,
            commit: self.log.commit,
            applied: self.log.applied,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            snapshot_index: self.log.snapshot_index(),
            snapshot_term: self.log.snapshot_term(),
            log_len: self.log.len(),
        }
    }

    /// (index, term) of every entry held after the snapshot, for convergence checks.
    pub fn log_terms(&self) -> Vec<(u64, u64)> {
        self.log.terms()
    }

    // ---- roles -------------------------------------------------------------------

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
            commit: self.log.commit,
        }
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let (min, max) = self.config.election_ticks;
        self.election_timeout = self.rng.gen_range(min..max);
    }

    fn heard_from_leader_recently(&self) -> bool {
        self.role == Role::Leader || self.leader_contact_elapsed < self.config.election_ticks.0
    }

    fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        if self.role == Role::Leader {
            self.progress.clear();
            self.seq_issued_at.clear();
            self.lost_reads
                .extend(self.pending_reads.drain(..).map(|r| r.ctx));
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.reset_election_timer();
    }

    /// An AppendEntries or InstallSnapshot of the current term: its sender is the
    /// leader. Returns false if that is impossible (we lead this term ourselves).
    fn accept_leader(&mut self, from: NodeId) -> bool {
        if self.role == Role::Leader {
            // Two leaders in one term would violate election safety; never follow.
            return false;
        }
        if self.role != Role::Follower {
            self.become_follower(self.term, Some(from));
        }
        self.leader = Some(from);
        self.reset_election_timer();
        self.leader_contact_elapsed = 0;
        true
    }

    /// Asks for pre-votes for term + 1 without changing our own term.
    fn pre_campaign(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.config.id, true);
        self.reset_election_timer();
        if let Poll::Won = self.poll() {
            self.campaign();
            return;
        }
        let body = MessageBody::PreVote {
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        self.broadcast(self.term + 1, body);
    }

    /// Starts a real election in a new term, voting for ourselves.
    fn campaign(&mut self) {
        self.term += 1;
        self.voted_for = Some(self.config.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.config.id, true);
        self.reset_election_timer();
        if let Poll::Won = self.poll() {
            self.become_leader();
            return;
        }
        let body = MessageBody::RequestVote {
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        self.broadcast(self.term, body);
    }

    fn poll(&self) -> Poll {
        let granted = self.votes.values().filter(|g| **g).count();
        let rejected = self.votes.len() - granted;
        if granted >= self.quorum {
            Poll::Won
        } else if rejected > self.config.peers.len() - self.quorum {
            Poll::Lost
        } else {
            Poll::Pending
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.votes.clear();
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.leader_contact_elapsed = 0;
        self.seq_issued_at.clear();
        let last_index = self.log.last_index();
        let now = self.now;
        self.progress = self
            .config
            .peers
            .iter()
            .filter(|&&p| p != self.config.id)
            .map(|&p| (p, Progress::new(last_index, now)))
            .collect();
        self.bump_read_seq();
        // The no-op: committing it commits every entry of earlier terms (§5.4.2) and
        // lets read-index serve reads.
        self.log.push(self.term, Vec::new());
        self.maybe_commit();
        self.broadcast_append();
    }

    /// Check-quorum: did a quorum answer during the last election window?
    fn check_quorum(&mut self) -> bool {
        let active = 1 + self.progress.values().filter(|p| p.recent_active).count();
        for p in self.progress.values_mut() {
            p.recent_active = false;
        }
        active >= self.quorum
    }

    // ---- sending -----------------------------------------------------------------

    fn send(&mut self, to: NodeId, term: u64, body: MessageBody) {
        self.messages.push(Message {
            from: self.config.id,
            to,
            term,
            body,
        });
    }

    fn broadcast(&mut self, term: u64, body: MessageBody) {
        let peers: Vec<NodeId> = self
            .config
            .peers
            .iter()
            .copied()
            .filter(|&p| p != self.config.id)
            .collect();
        for peer in peers {
            self.send(peer, term, body.clone());
        }
    }

    /// Answers a message from an older term so its sender learns our term: a stale
    /// leader steps down, a stale candidate gives up.
    fn reject_stale(&mut self, msg: &Message) {
        let body = match msg.body {
            MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. } => {
                MessageBody::AppendEntriesResponse {
                    success: false,
                    match_index: 0,
                    conflict_term: None,
                    conflict_index: 0,
                    last_index: self.log.last_index(),
                    read_seq: 0,
                }
            }
            MessageBody::PreVote { .. } => MessageBody::PreVoteResponse { granted: false },
            MessageBody::RequestVote { .. } => MessageBody::RequestVoteResponse { granted: false },
            _ => return,
        };
        self.send(msg.from, self.term, body);
    }

    fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in peers {
            self.replicate_to(peer);
        }
    }

    /// Sends to `peer` as much as flow control allows.
    fn replicate_to(&mut self, peer: NodeId) {
        while self.send_append(peer) {}
    }

    /// Sends one AppendEntries (or the snapshot) to `peer` if flow control allows.
    /// Returns true if another one might follow.
    fn send_append(&mut self, peer: NodeId) -> bool {
        let max_inflight = self.config.max_inflight_msgs;
        let Some(pr) = self.progress.get(&peer) else {
            return false;
        };
        if pr.is_paused(max_inflight) {
            return false;
        }
        let prev_index = pr.next_index - 1;
        let Some(prev_term) = self.log.term(prev_index) else {
            self.send_snapshot(peer);
            return false;
        };
        let entries = self
            .log
            .slice(pr.next_index, self.config.max_entries_per_append);
        let last = entries.last().map(|e| e.index);
        let Some(pr) = self.progress.get_mut(&peer) else {
            return false;
        };
        let more = match (pr.state, last) {
            (FlowState::Replicate, None) => return false,
            (FlowState::Replicate, Some(last)) => {
                pr.next_index = last + 1;
                pr.inflight.push_back(last);
                true
            }
            _ => {
                pr.state = FlowState::Probe { sent: true };
                false
            }
        };
        let body = MessageBody::AppendEntries {
            prev_index,
            prev_term,
            entries,
            commit: self.log.commit,
            read_seq: self.read_seq,
        };
        self.send(peer, self.term, body);
        more
    }

    fn send_snapshot(&mut self, peer: NodeId) {
        let Some(snapshot) = self.log.snapshot().cloned() else {
            return;
        };
        let now = self.now;
        if let Some(pr) = self.progress.get_mut(&peer) {
            pr.state = FlowState::Snapshot {
                index: snapshot.index,
                sent_at: now,
            };
            pr.inflight.clear();
        }
        let body = MessageBody::InstallSnapshot {
            snapshot,
            read_seq: self.read_seq,
        };
        self.send(peer, self.term, body);
    }

    /// An empty AppendEntries anchored at the follower's known match (so it can advance
    /// its commit index that far), carrying the latest heartbeat round.
    fn send_heartbeat(&mut self, peer: NodeId) {
        let Some(pr) = self.progress.get(&peer) else {
            return;
        };
        let (prev_index, prev_term) = match self.log.term(pr.match_index) {
            Some(term) => (pr.match_index, term),
            // Compacted: anchor at 0, below any follower's commit index.
            None => (0, 0),
        };
        let body = MessageBody::AppendEntries {
            prev_index,
            prev_term,
            entries: Vec::new(),
            commit: self.log.commit,
            read_seq: self.read_seq,
        };
        self.send(peer, self.term, body);
    }

    /// A heartbeat round: a new `read_seq` to everyone; lagging followers get entries
    /// (a fresh probe, or a snapshot resend after a timeout) instead of an empty append.
    fn broadcast_heartbeat(&mut self) {
        self.bump_read_seq();
        let last_index = self.log.last_index();
        let (now, resend_after) = (self.now, self.config.election_ticks.0);
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in peers {
            let Some(pr) = self.progress.get_mut(&peer) else {
                continue;
            };
            let lagging = pr.match_index < last_index;
            let resend = match pr.state {
                FlowState::Snapshot { sent_at, .. } => {
                    let timed_out = now.saturating_sub(sent_at) >= resend_after;
                    if timed_out {
                        pr.become_probe(pr.match_index + 1);
                    }
                    timed_out
                }
                FlowState::Probe { .. } if lagging => {
                    pr.state = FlowState::Probe { sent: false };
                    true
                }
                FlowState::Replicate if lagging && !pr.progressed => {
                    // No progress for a whole heartbeat interval: assume the in-flight
                    // appends were lost and probe from the last known match.
                    pr.become_probe(pr.match_index + 1);
                    true
                }
                _ => false,
            };
            pr.progressed = false;
            let before = self.messages.len();
            if resend {
                self.replicate_to(peer);
            }
            if self.messages.len() == before {
                self.send_heartbeat(peer);
            }
        }
    }

    // ---- follower side -----------------------------------------------------------

    fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        leader_commit: u64,
        read_seq: u64,
    ) {
        let commit = self.log.commit;
        // Everything up to our commit index is in the leader's log (leader
        // completeness), so an anchor below it matches even if compacted away here.
        let (prev_index, entries, matched) = if prev_index < commit {
            let entries: Vec<Entry> = entries.into_iter().filter(|e| e.index > commit).collect();
            (commit, entries, true)
        } else {
            (
                prev_index,
                entries,
                self.log.term(prev_index) == Some(prev_term),
            )
        };
        let last_index = self.log.last_index();
        if !matched {
            let (conflict_term, conflict_index) = if prev_index > last_index {
                (None, last_index + 1)
            } else {
                let term = self.log.term(prev_index);
                (
                    term,
                    self.log.first_index_of_term_run(prev_index, commit + 1),
                )
            };
            let body = MessageBody::AppendEntriesResponse {
                success: false,
                match_index: prev_index,
                conflict_term,
                conflict_index,
                last_index,
                read_seq,
            };
            self.send(from, self.term, body);
            return;
        }
        let last_new = prev_index + entries.len() as u64;
        let mut entries = entries.into_iter();
        let mut to_append = Vec::new();
        while let Some(entry) = entries.next() {
            match self.log.term(entry.index) {
                Some(term) if term == entry.term => {}
                // The bug: keep our conflicting entry yet acknowledge the leader's.
                Some(_) if self.config.bugs.no_truncate => {}
                Some(_) => {
                    self.log.truncate(entry.index);
                    to_append.push(entry);
                    to_append.extend(entries.by_ref());
                }
                None => {
                    to_append.push(entry);
                    to_append.extend(entries.by_ref());
                }
            }
        }
        self.log.extend(to_append);
        let new_commit = leader_commit.min(last_new).min(self.log.last_index());
        if new_commit > self.log.commit {
            self.log.commit = new_commit;
        }
        let body = MessageBody::AppendEntriesResponse {
            success: true,
            match_index: last_new,
            conflict_term: None,
            conflict_index: 0,
            last_index: self.log.last_index(),
            read_seq,
        };
        self.send(from, self.term, body);
    }

    fn handle_snapshot(&mut self, from: NodeId, snapshot: Snapshot, read_seq: u64) {
        if snapshot.index > self.log.commit {
            self.log.install(snapshot.clone());
            self.snapshot_to_install = Some(snapshot);
        }
        let body = MessageBody::InstallSnapshotResponse {
            match_index: self.log.commit,
            read_seq,
        };
        self.send(from, self.term, body);
    }

    // ---- leader side -------------------------------------------------------------

    /// Bookkeeping common to every answer of the current term from `from`.
    fn record_ack(&mut self, from: NodeId, read_seq: u64) -> bool {
        let now = self.now;
        let Some(pr) = self.progress.get_mut(&from) else {
            return false;
        };
        pr.recent_active = true;
        pr.acked_seq = pr.acked_seq.max(read_seq);
        pr.last_ack_tick = now;
        true
    }

    fn handle_append_success(&mut self, from: NodeId, match_index: u64, read_seq: u64) {
        if !self.record_ack(from, read_seq) {
            return;
        }
        let advanced = match self.progress.get_mut(&from) {
            Some(pr) => {
                let advanced = pr.record_match(match_index);
                match pr.state {
                    FlowState::Probe { .. } if pr.match_index + 1 == pr.next_index => {
                        pr.state = FlowState::Replicate;
                    }
                    FlowState::Snapshot { index, .. } if pr.match_index >= index => {
                        pr.become_probe(pr.match_index + 1);
                        pr.state = FlowState::Replicate;
                    }
                    _ => {}
                }
                advanced
            }
            None => false,
        };
        if advanced {
            self.maybe_commit();
        }
        self.replicate_to(from);
        self.check_reads();
    }

    fn handle_append_reject(
        &mut self,
        from: NodeId,
        rejected: u64,
        conflict_term: Option<u64>,
        conflict_index: u64,
        read_seq: u64,
    ) {
        if !self.record_ack(from, read_seq) {
            return;
        }
        // Fast backtracking: skip the follower's whole conflicting term at once.
        let hint = match conflict_term {
            Some(term) => match self.log.last_index_of_term(term, rejected) {
                Some(index) => index + 1,
                None => conflict_index,
            },
            None => conflict_index,
        };
        if let Some(pr) = self.progress.get_mut(&from) {
            let stale = match pr.state {
                FlowState::Probe { .. } => rejected + 1 != pr.next_index,
                FlowState::Replicate => rejected <= pr.match_index,
                FlowState::Snapshot { .. } => true,
            };
            if !stale {
                pr.become_probe(hint.min(rejected));
                self.replicate_to(from);
            }
        }
        self.check_reads();
    }

    /// Commits the highest index stored on a quorum, if it is of the current term.
    fn maybe_commit(&mut self) {
        let mut matches: Vec<u64> = self.progress.values().map(|p| p.match_index).collect();
        matches.push(self.log.last_index());
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matches[self.quorum - 1];
        if candidate <= self.log.commit {
            return;
        }
        // Raft §5.4.2 / Figure 8: an entry of an older term stored on a majority can
        // still be overwritten, so only current-term entries are committed by counting.
        if !self.config.bugs.commit_old_terms && self.log.term(candidate) != Some(self.term) {
            return;
        }
        self.log.commit = candidate;
        if self.committed_in_current_term() {
            let commit = self.log.commit;
            for read in self.pending_reads.iter_mut().filter(|r| r.index.is_none()) {
                read.index = Some(commit);
            }
        }
        self.check_reads();
    }

    fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.commit) == Some(self.term)
    }

    fn bump_read_seq(&mut self) {
        self.read_seq += 1;
        self.seq_issued_at.push_back((self.read_seq, self.now));
    }

    /// The latest heartbeat round acknowledged by a quorum (self included).
    fn quorum_acked_seq(&self) -> u64 {
        let mut seqs: Vec<u64> = self.progress.values().map(|p| p.acked_seq).collect();
        seqs.push(self.read_seq);
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        seqs[self.quorum - 1]
    }

    /// The tick at which the round a quorum acknowledged was issued: every member of
    /// that quorum heard from us at or after it, so none votes before
    /// start + election minimum.
    fn lease_start(&mut self) -> Option<u64> {
        let seq = self.quorum_acked_seq();
        while self.seq_issued_at.front().is_some_and(|&(s, _)| s < seq) {
            self.seq_issued_at.pop_front();
        }
        match self.seq_issued_at.front() {
            Some(&(s, tick)) if s == seq => Some(tick),
            _ => None,
        }
    }

    /// Hands out the reads whose round a quorum acknowledged.
    fn check_reads(&mut self) {
        let confirmed = self.quorum_acked_seq();
        // Rounds older than the quorum-acknowledged one can no longer start a lease.
        while self.seq_issued_at.len() > 1
            && self
                .seq_issued_at
                .front()
                .is_some_and(|&(s, _)| s < confirmed)
        {
            self.seq_issued_at.pop_front();
        }
        while let Some(read) = self.pending_reads.front() {
            match read.index {
                Some(index) if read.seq <= confirmed => {
                    self.read_states.push(ReadState {
                        ctx: read.ctx,
                        index,
                    });
                    self.pending_reads.pop_front();
                }
                _ => break,
            }
        }
    }
}

/// Hooks for the scripted scenarios: drive elections explicitly instead of by ticking.
#[cfg(test)]
impl RaftNode {
    /// Campaigns now (skipping pre-vote), as if the election timer fired.
    pub(crate) fn force_campaign(&mut self) {
        self.campaign();
    }

    /// As if a whole minimum election timeout passed without news from a leader.
    pub(crate) fn forget_leader_contact(&mut self) {
        self.leader_contact_elapsed = self.config.election_ticks.0;
    }
}
