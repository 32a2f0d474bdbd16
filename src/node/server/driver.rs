//! The driver: the one task that owns the consensus core, the write-ahead log and the
//! KV state machine. Each turn of its loop takes one batch of input — the ticks that
//! fell due, then the peer messages (see [`RaftNode::advance`] for why in that order),
//! then client and admin requests — and handles every [`Ready`] completely (persist and
//! fsync, send, apply) before the next batch. Client writes wait here for their entry
//! to apply, reads for their read index (or lease), and every request for its deadline.

use super::recovery::Recovered;
use super::{NodeConfig, ReadMode};
use crate::node::clock::{Clock, TickSource};
use crate::node::kv::{ApplyError, Command, KvState, MicroOp};
use crate::node::protocol::{AdminOp, ErrorKind, HistoryAt, LogTerms, Reply, Status};
use crate::node::transport::Transport;
use crate::node::wal::{Record, StoredSnapshot, Wal, WalEntry};
use anyhow::anyhow;
use serde_json::Value;
use splitbrain_raft::{Entry, HardState, Message, NodeId, RaftNode, Ready, Role, Snapshot};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// Where a reply to a client request goes: the connection's writer.
pub(super) type ReplyTx = mpsc::UnboundedSender<Reply>;

/// Requests handed from the listeners to the driver.
pub(super) enum Event {
    Client {
        id: u64,
        command: Command,
        reply: ReplyTx,
    },
    Admin {
        id: u64,
        op: AdminOp,
        reply: oneshot::Sender<Reply>,
    },
}

/// A proposal waiting for its entry to be applied.
struct PendingWrite {
    term: u64,
    id: u64,
    reply: ReplyTx,
    deadline_ms: f64,
}

/// A read waiting for a leadership confirmation, then for the applied index.
struct PendingRead {
    id: u64,
    command: Command,
    reply: ReplyTx,
    deadline_ms: f64,
}

/// The driver: owner of the core, the log and the state machine.
pub(super) struct Driver {
    cfg: NodeConfig,
    core: RaftNode,
    /// The WAL; `None` only while an fsync runs on the blocking pool.
    wal: Option<Wal>,
    kv: KvState,
    /// Term of the entry at `kv.applied_index` (for snapshots).
    applied_term: u64,
    last_snapshot_index: u64,
    clock: Clock,
    ticks: TickSource,
    transport: Transport<Message>,
    writes: BTreeMap<u64, PendingWrite>,
    /// Read-index reads by context, waiting for confirmation.
    reads_unconfirmed: BTreeMap<u64, PendingRead>,
    /// Confirmed reads waiting for `applied >= index`, in order.
    reads_confirmed: VecDeque<(u64, PendingRead)>,
    next_read_ctx: u64,
    /// (role, term, leader) last written to the node log, so each change is logged once.
    logged_role: Option<(Role, u64, Option<NodeId>)>,
    /// The applied-history chain after each recently applied index (the newest
    /// [`CHAIN_HISTORY`]), so the harness can compare replicas that stopped at different
    /// indexes at the index they share.
    chain_at: BTreeMap<u64, u64>,
    /// A way back into the driver's own request channel, for the `non-atomic-txn` bug's
    /// tasks, which resubmit a transaction's micro-operations one by one.
    requests: mpsc::Sender<Event>,
}

/// How many applied indexes keep their history chain for `digest` requests with `at`.
const CHAIN_HISTORY: usize = 100_000;

fn hard_state_bytes(hs: &HardState) -> Vec<u8> {
    serde_json::to_vec(hs).unwrap_or_default()
}

impl Driver {
    /// The driver over what recovery rebuilt.
    pub(super) fn new(
        cfg: NodeConfig,
        recovered: Recovered,
        clock: Clock,
        transport: Transport<Message>,
        requests: mpsc::Sender<Event>,
    ) -> Driver {
        let ticks = TickSource::new(clock.clone(), cfg.tick_ms);
        let mut driver = Driver {
            cfg,
            core: recovered.core,
            wal: Some(recovered.wal),
            kv: recovered.kv,
            applied_term: recovered.applied_term,
            last_snapshot_index: recovered.last_snapshot_index,
            clock,
            ticks,
            transport,
            writes: BTreeMap::new(),
            reads_unconfirmed: BTreeMap::new(),
            reads_confirmed: VecDeque::new(),
            next_read_ctx: 1,
            logged_role: None,
            chain_at: BTreeMap::new(),
            requests,
        };
        driver
            .chain_at
            .insert(driver.kv.applied_index, driver.kv.applied_chain);
        driver
    }
}

impl Driver {
    pub(super) async fn run(
        &mut self,
        mut peer_rx: mpsc::Receiver<(u64, Message)>,
        mut event_rx: mpsc::Receiver<Event>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut inbox: Vec<Message> = Vec::new();
        loop {
            let wait = self.ticks.real_wait();
            let mut first_event = None;
            tokio::select! {
                biased;
                _ = &mut shutdown => return Ok(()),
                Some((_, msg)) = peer_rx.recv() => inbox.push(msg),
                Some(event) = event_rx.recv() => first_event = Some(event),
                _ = tokio::time::sleep(wait) => {}
            }
            // Time first: the ticks that fell due before this batch was read go in
            // before its messages (see `RaftNode::advance`: after a stall, handling a
            // buffered heartbeat before the stall's ticks breaks the lease promise).
            let due = self.ticks.due();
            // Take everything already queued, so one Ready (one fsync) covers it all.
            while inbox.len() < 4096 {
                match peer_rx.try_recv() {
                    Ok((_, msg)) => inbox.push(msg),
                    Err(_) => break,
                }
            }
            self.core.advance(due, inbox.drain(..));
            if let Some(event) = first_event {
                self.handle_event(event);
            }
            for _ in 0..4096 {
                match event_rx.try_recv() {
                    Ok(event) => self.handle_event(event),
                    Err(_) => break,
                }
            }
            self.expire_requests();
            while self.core.has_ready() {
                let ready = self.core.ready();
                self.handle_ready(ready).await?;
            }
            self.log_role_change();
            self.maybe_snapshot().await?;
        }
    }

    /// Writes role, term and leader changes to the node log: the timeline a person
    /// reads next to the history when a run fails.
    fn log_role_change(&mut self) {
        let status = self.core.status();
        let now = (status.role, status.term, status.leader);
        if self.logged_role == Some(now) {
            return;
        }
        self.logged_role = Some(now);
        tracing::info!(
            role = ?status.role,
            term = status.term,
            leader = ?status.leader,
            voted_for = ?status.voted_for,
            last_index = status.last_index,
            commit = status.commit,
            "role changed"
        );
    }

    fn leader_client_addr(&self) -> Option<String> {
        let status = self.core.status();
        status
            .leader
            .and_then(|l| self.cfg.client_addrs.get(&l).cloned())
    }

    fn deadline(&self) -> f64 {
        self.clock.now_ms() + self.cfg.request_timeout_ms as f64
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Admin { id, op, reply } => {
                let _ = reply.send(self.admin(id, op));
            }
            Event::Client { id, command, reply } => self.handle_client(id, command, reply),
        }
    }

    fn handle_client(&mut self, id: u64, command: Command, reply: ReplyTx) {
        if self.cfg.bugs.non_atomic_txn {
            if let Command::Txn { ops } = &command {
                if ops.len() > 1 && !command.is_read_only() {
                    tokio::spawn(non_atomic_txn(
                        self.requests.clone(),
                        id,
                        ops.clone(),
                        reply,
                    ));
                    return;
                }
            }
        }
        if command.is_read_only() {
            match self.cfg.read_mode {
                ReadMode::Local => {
                    let _ = reply.send(Reply::ok(id, self.kv.read(&command)));
                    return;
                }
                ReadMode::ReadIndex => {
                    self.read_via_read_index(id, command, reply);
                    return;
                }
                ReadMode::Lease => {
                    // Catch the core's clock up first: after a stall (SIGSTOP, a slow
                    // fsync) requests queued meanwhile are handled before the loop
                    // ticks, and a lease judged at the time the stall began would still
                    // look valid although a new leader may have been elected since.
                    // (The messages still queued come after these ticks, as in the loop.)
                    self.core.advance(self.ticks.due(), []);
                    match self.core.lease_read() {
                        Ok(index) => {
                            let deadline_ms = self.deadline();
                            let read = PendingRead {
                                id,
                                command,
                                reply,
                                deadline_ms,
                            };
                            self.reads_confirmed.push_back((index, read));
                            self.serve_confirmed_reads();
                        }
                        // The leader holds no valid lease: confirm leadership instead.
                        Err(e) if e.leader_hint == Some(self.cfg.id) => {
                            self.read_via_read_index(id, command, reply)
                        }
                        Err(_) => {
                            let _ = reply.send(Reply::not_leader(id, self.leader_client_addr()));
                        }
                    }
                    return;
                }
                ReadMode::Log => {}
            }
        }
        self.propose(id, command, reply);
    }

    fn read_via_read_index(&mut self, id: u64, command: Command, reply: ReplyTx) {
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        match self.core.read_index(ctx) {
            Ok(()) => {
                let deadline_ms = self.deadline();
                self.reads_unconfirmed.insert(
                    ctx,
                    PendingRead {
                        id,
                        command,
                        reply,
                        deadline_ms,
                    },
                );
            }
            Err(_) => {
                let _ = reply.send(Reply::not_leader(id, self.leader_client_addr()));
            }
        }
    }

    fn propose(&mut self, id: u64, command: Command, reply: ReplyTx) {
        let data = match serde_json::to_vec(&command) {
            Ok(d) => d,
            Err(e) => {
                let _ = reply.send(Reply::error(Some(id), ErrorKind::BadRequest, e.to_string()));
                return;
            }
        };
        match self.core.propose(data) {
            Ok((index, term)) => {
                let deadline_ms = self.deadline();
                let pending = PendingWrite {
                    term,
                    id,
                    reply,
                    deadline_ms,
                };
                if let Some(displaced) = self.writes.insert(index, pending) {
                    // An earlier proposal at this index was truncated from our log, but
                    // another node may still hold it and commit it later (Raft Figure 8):
                    // its outcome is unknown, not failed.
                    let _ = displaced.reply.send(Reply::error(
                        Some(displaced.id),
                        ErrorKind::Timeout,
                        "outcome unknown: the proposal was truncated from this leader's log",
                    ));
                }
            }
            Err(_) => {
                let _ = reply.send(Reply::not_leader(id, self.leader_client_addr()));
            }
        }
    }

    /// The answer to an admin request (clock ones excepted), as its protocol type.
    fn admin(&mut self, id: u64, op: AdminOp) -> Reply {
        match op {
            AdminOp::Status => {
                let s = self.core.status();
                Reply::answer(
                    id,
                    &Status {
                        id: self.cfg.id,
                        name: self.cfg.name.clone(),
                        role: s.role,
                        term: s.term,
                        voted_for: s.voted_for,
                        leader: s.leader,
                        commit_index: s.commit,
                        applied_index: self.kv.applied_index,
                        last_index: s.last_index,
                        snapshot_index: s.snapshot_index,
                        log_entries: s.log_len,
                        read_mode: self.cfg.read_mode,
                        clock: self.clock.skew(),
                    },
                )
            }
            AdminOp::Digest { at } => {
                let mut digest = self.kv.digest();
                digest.history_at = at.map(|index| {
                    self.chain_at.get(&index).map(|chain| HistoryAt {
                        index,
                        history: format!("{chain:016x}"),
                    })
                });
                Reply::answer(id, &digest)
            }
            AdminOp::LogTerms => {
                let s = self.core.status();
                let terms = LogTerms {
                    snapshot_index: s.snapshot_index,
                    snapshot_term: s.snapshot_term,
                    entries: self.core.log_terms(),
                };
                Reply::answer(id, &terms)
            }
            // Clock operations are handled by the admin listener directly.
            op @ (AdminOp::Clock { .. } | AdminOp::ClockReset) => Reply::error(
                Some(id),
                ErrorKind::BadRequest,
                format!("`{}` is handled by the admin listener", op.name()),
            ),
        }
    }

    /// Persist, then send, then apply: the core's Ready contract.
    async fn handle_ready(&mut self, ready: Ready) -> anyhow::Result<()> {
        let Ready {
            hard_state,
            truncate_from,
            entries,
            snapshot,
            messages,
            committed,
            read_states,
            lost_reads,
        } = ready;

        // 1. Persist.
        let mut records = Vec::with_capacity(entries.len() + 2);
        if let Some(from) = truncate_from {
            records.push(Record::Truncate { from });
        }
        for e in &entries {
            records.push(Record::Entry(WalEntry {
                index: e.index,
                term: e.term,
                payload: e.data.clone(),
            }));
        }
        if let Some(hs) = &hard_state {
            records.push(Record::HardState(hard_state_bytes(hs)));
        }
        let stored_snapshot = snapshot.as_ref().map(|s| StoredSnapshot {
            index: s.index,
            term: s.term,
            payload: s.data.clone(),
        });
        if !records.is_empty() || stored_snapshot.is_some() {
            self.with_wal(move |wal| {
                if let Some(s) = &stored_snapshot {
                    wal.save_snapshot(s)?;
                }
                wal.append(&records);
                wal.sync()
            })
            .await?;
        }

        // 2. Send.
        for msg in messages {
            self.transport.send(msg.to, msg);
        }

        // 3. Apply.
        if let Some(s) = snapshot {
            match KvState::from_snapshot_bytes(&s.data) {
                Ok(kv) => {
                    self.kv = kv;
                    self.kv.applied_index = s.index;
                    self.applied_term = s.term;
                    self.last_snapshot_index = s.index;
                    // Chains before the snapshot are another history's now.
                    self.chain_at.clear();
                    self.chain_at.insert(s.index, self.kv.applied_chain);
                }
                Err(e) => {
                    return Err(anyhow!(
                        "the leader's snapshot at index {} is undecodable: {e}",
                        s.index
                    ))
                }
            }
            // Writes whose slots the snapshot covers were decided elsewhere; we cannot
            // tell their outcome.
            let covered: Vec<u64> = self.writes.range(..=s.index).map(|(&i, _)| i).collect();
            for index in covered {
                if let Some(w) = self.writes.remove(&index) {
                    let _ = w.reply.send(Reply::error(
                        Some(w.id),
                        ErrorKind::Timeout,
                        "outcome unknown: the log was replaced by a snapshot",
                    ));
                }
            }
        }
        for entry in committed {
            self.apply(entry);
        }
        for rs in read_states {
            if let Some(read) = self.reads_unconfirmed.remove(&rs.ctx) {
                self.reads_confirmed.push_back((rs.index, read));
            }
        }
        for ctx in lost_reads {
            if let Some(read) = self.reads_unconfirmed.remove(&ctx) {
                let _ = read.reply.send(Reply::error(
                    Some(read.id),
                    ErrorKind::Unavailable,
                    "leadership could not be confirmed for this read",
                ));
            }
        }
        self.serve_confirmed_reads();
        Ok(())
    }

    fn apply(&mut self, entry: Entry) {
        if entry.index <= self.kv.applied_index {
            return;
        }
        self.kv.chain_applied(entry.index, entry.term, &entry.data);
        self.chain_at.insert(entry.index, self.kv.applied_chain);
        if self.chain_at.len() > CHAIN_HISTORY {
            self.chain_at.pop_first();
        }
        let pending = self.writes.remove(&entry.index);
        let result = if entry.data.is_empty() {
            self.kv.applied_index = entry.index;
            None
        } else {
            match serde_json::from_slice::<Command>(&entry.data) {
                Ok(cmd) => Some(self.kv.apply(entry.index, &cmd)),
                Err(e) => {
                    // Only this node's own proposals reach the log, so this is a bug,
                    // not user input; skip the entry the same way on every replica.
                    tracing::error!(index = entry.index, "undecodable log entry skipped: {e}");
                    self.kv.applied_index = entry.index;
                    None
                }
            }
        };
        self.applied_term = entry.term;
        let Some(w) = pending else { return };
        let reply = if w.term != entry.term {
            Reply::error(
                Some(w.id),
                ErrorKind::Unavailable,
                format!(
                    "the proposal's log slot {} was taken by an entry of term {}",
                    entry.index, entry.term
                ),
            )
        } else {
            match result {
                Some(Ok(value)) => Reply::ok(w.id, value),
                Some(Err(ApplyError::CasMismatch { current })) => {
                    Reply::cas_mismatch(w.id, current)
                }
                Some(Err(e @ ApplyError::NotAList { .. })) => {
                    Reply::error(Some(w.id), ErrorKind::TypeMismatch, e.to_string())
                }
                None => Reply::error(Some(w.id), ErrorKind::Timeout, "entry could not be decoded"),
            }
        };
        let _ = w.reply.send(reply);
    }

    fn serve_confirmed_reads(&mut self) {
        while let Some((index, _)) = self.reads_confirmed.front() {
            if *index > self.kv.applied_index {
                break;
            }
            if let Some((_, read)) = self.reads_confirmed.pop_front() {
                let _ = read
                    .reply
                    .send(Reply::ok(read.id, self.kv.read(&read.command)));
            }
        }
    }

    fn expire_requests(&mut self) {
        let now = self.clock.now_ms();
        let expired: Vec<u64> = self
            .writes
            .iter()
            .filter(|(_, w)| w.deadline_ms < now)
            .map(|(&i, _)| i)
            .collect();
        for index in expired {
            if let Some(w) = self.writes.remove(&index) {
                let _ = w
                    .reply
                    .send(Reply::error(Some(w.id), ErrorKind::Timeout, ""));
            }
        }
        let expired: Vec<u64> = self
            .reads_unconfirmed
            .iter()
            .filter(|(_, r)| r.deadline_ms < now)
            .map(|(&c, _)| c)
            .collect();
        for ctx in expired {
            if let Some(r) = self.reads_unconfirmed.remove(&ctx) {
                let _ = r
                    .reply
                    .send(Reply::error(Some(r.id), ErrorKind::Timeout, ""));
            }
        }
        let mut kept = VecDeque::with_capacity(self.reads_confirmed.len());
        for (index, r) in self.reads_confirmed.drain(..) {
            if r.deadline_ms < now {
                let _ = r
                    .reply
                    .send(Reply::error(Some(r.id), ErrorKind::Timeout, ""));
            } else {
                kept.push_back((index, r));
            }
        }
        self.reads_confirmed = kept;
    }

    pub(super) fn fail_everything(&mut self, kind: ErrorKind, message: &str) {
        for (_, w) in std::mem::take(&mut self.writes) {
            let _ = w.reply.send(Reply::error(Some(w.id), kind, message));
        }
        for (_, r) in std::mem::take(&mut self.reads_unconfirmed) {
            let _ = r.reply.send(Reply::error(Some(r.id), kind, message));
        }
        for (_, r) in std::mem::take(&mut self.reads_confirmed) {
            let _ = r.reply.send(Reply::error(Some(r.id), kind, message));
        }
    }

    /// Runs `f` on the WAL on the blocking pool (fsync must not stall the runtime).
    async fn with_wal<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Wal) -> Result<T, crate::node::wal::WalError> + Send + 'static,
    ) -> anyhow::Result<T> {
        let mut wal = self
            .wal
            .take()
            .ok_or_else(|| anyhow!("the WAL was lost by an earlier failure"))?;
        let (wal, result) = tokio::task::spawn_blocking(move || {
            let r = f(&mut wal);
            (wal, r)
        })
        .await
        .map_err(|e| anyhow!("WAL task failed: {e}"))?;
        self.wal = Some(wal);
        Ok(result?)
    }

    /// Snapshots the state machine and compacts the log every `snapshot_every` entries.
    async fn maybe_snapshot(&mut self) -> anyhow::Result<()> {
        let applied = self.kv.applied_index;
        if self.cfg.snapshot_every == 0
            || applied < self.last_snapshot_index + self.cfg.snapshot_every
        {
            return Ok(());
        }
        let snapshot = Snapshot {
            index: applied,
            term: self.applied_term,
            data: self.kv.to_snapshot_bytes(),
        };
        let stored = StoredSnapshot {
            index: snapshot.index,
            term: snapshot.term,
            payload: snapshot.data.clone(),
        };
        let segments = self
            .with_wal(move |wal| wal.save_snapshot(&stored).map(|()| wal.segment_count()))
            .await?;
        tracing::info!(index = applied, segments, "snapshot taken; log compacted");
        self.last_snapshot_index = applied;
        self.core.compact(snapshot);
        Ok(())
    }
}

/// The `non-atomic-txn` bug: runs a transaction as a sequence of one-micro-op
/// transactions, each submitted to the driver like a client request (so each write is
/// its own log entry and each read its own read-index read) only after the previous one
/// was answered. Other requests are handled in between, so other transactions interleave
/// with this one and can observe it half applied: exactly what isolation forbids.
///
/// The reply is honest about what happened: a failure of the first micro-op is passed
/// on unchanged (nothing was applied), a failure after that is an indefinite `timeout`,
/// because part of the transaction has taken effect.
async fn non_atomic_txn(requests: mpsc::Sender<Event>, id: u64, ops: Vec<MicroOp>, reply: ReplyTx) {
    let mut done = Vec::with_capacity(ops.len());
    for (i, op) in ops.into_iter().enumerate() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let event = Event::Client {
            id,
            command: Command::Txn { ops: vec![op] },
            reply: tx,
        };
        // Both fail only when the driver has stopped (the node is shutting down).
        let answer = match requests.send(event).await {
            Ok(()) => rx.recv().await,
            Err(_) => None,
        };
        // A one-micro-op transaction answers `[[f, key, value]]`.
        let applied = answer.as_ref().filter(|r| r.ok).and_then(|r| {
            r.value
                .as_ref()
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .cloned()
        });
        match (applied, answer) {
            (Some(result), _) => done.push(result),
            (None, Some(r)) if i == 0 && !r.ok => {
                let _ = reply.send(r);
                return;
            }
            (None, _) => {
                let _ = reply.send(Reply::error(
                    Some(id),
                    ErrorKind::Timeout,
                    "outcome unknown: the transaction was applied only in part",
                ));
                return;
            }
        }
    }
    let _ = reply.send(Reply::ok(id, Value::Array(done)));
}
