//! The node runtime: wires the sans-IO consensus core ([`splitbrain_raft`]) to the world.
//!
//! One task (the driver, [`Driver::run`]) owns the core, the write-ahead log and the
//! KV state machine, and handles events one batch at a time: it feeds the core the
//! ticks that fell due, then every pending peer message (in that order, see
//! [`RaftNode::advance`]) and client request, then handles each
//! [`Ready`] completely (persist + fsync, send, apply) before taking new events, as the
//! core's contract requires. While an fsync runs, new requests queue up in the
//! channels, so the next Ready carries all of them and one fsync covers them all:
//! group commit falls out of the loop's shape.
//!
//! Around the driver: the peer [`transport`](crate::node::transport), and the client
//! and admin listeners (JSON lines, [`protocol`](crate::node::protocol)), each a task
//! that parses lines and hands requests to the driver over a channel. Every task stops
//! when the shutdown future given to [`run`] resolves.

use crate::node::bugs::BugSet;
use crate::node::clock::{Clock, TickSource};
use crate::node::kv::{ApplyError, Command, KvState, MicroOp};
use crate::node::protocol::{parse_line, AdminOp, AdminRequest, ErrorKind, Reply, Request};
use crate::node::transport::{shutdown_signalled, Inbound, ShutdownRx, Transport};
use crate::node::wal::{Record, StoredSnapshot, Wal, WalEntry};
use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use splitbrain_raft::{
    self as raft, Entry, HardState, Message, NodeId, RaftNode, Ready, Restored, Role, Snapshot,
};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// How reads are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMode {
    /// Linearizable: the leader confirms its leadership with a heartbeat quorum
    /// (read index), then serves once it applied up to that index.
    ReadIndex,
    /// Linearizable: reads are proposed and answered when applied, like writes.
    Log,
    /// Leader lease: no quorum round while the lease (counted in clock ticks) lasts.
    /// Correct only while clocks behave.
    Lease,
    /// Any replica serves from its local state: stale reads are expected.
    Local,
}

/// Everything a node needs besides its listeners.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    pub name: String,
    /// Peer id → address dialled to reach it.
    pub peers: BTreeMap<u64, String>,
    /// Node id → its client address, for not-leader replies (this node's own included).
    pub client_addrs: BTreeMap<u64, String>,
    pub data_dir: PathBuf,
    pub read_mode: ReadMode,
    pub bugs: BugSet,
    /// Real milliseconds per core tick (at clock rate 1).
    pub tick_ms: u64,
    /// Take a snapshot and compact the log after this many applied entries.
    pub snapshot_every: u64,
    /// Clock milliseconds after which an unanswered request gets a `timeout` reply.
    pub request_timeout_ms: u64,
    pub seed: u64,
}

/// The three listeners of a node, bound before it starts (tests bind port 0 first).
#[derive(Debug)]
pub struct Listeners {
    pub peer: TcpListener,
    pub client: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    pub async fn bind(peer: &str, client: &str, admin: &str) -> anyhow::Result<Listeners> {
        let bind = |addr: &str| {
            let addr = addr.to_string();
            async move {
                TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("binding {addr}"))
            }
        };
        Ok(Listeners {
            peer: bind(peer).await?,
            client: bind(client).await?,
            admin: bind(admin).await?,
        })
    }

    /// (peer, client, admin) local addresses.
    pub fn addrs(&self) -> anyhow::Result<(SocketAddr, SocketAddr, SocketAddr)> {
        Ok((
            self.peer.local_addr()?,
            self.client.local_addr()?,
            self.admin.local_addr()?,
        ))
    }
}

/// Where a reply to a client request goes: the connection's writer.
type ReplyTx = mpsc::UnboundedSender<Reply>;

/// Requests handed from the listeners to the driver.
enum Event {
    Client {
        id: u64,
        command: Command,
        reply: ReplyTx,
    },
    Admin {
        op: AdminOp,
        reply: oneshot::Sender<Result<Value, String>>,
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
struct Driver {
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

/// Runs a node until `shutdown` resolves. Fails on startup problems (an unreadable or
/// corrupt WAL, a bad configuration) and on write-ahead-log I/O errors, after which
/// continuing would risk acknowledging data that is not durable.
pub async fn run(
    cfg: NodeConfig,
    listeners: Listeners,
    clock: Clock,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let data_dir = cfg.data_dir.clone();
    let skip_fsync = cfg.bugs.skip_fsync;
    let (wal, recovered) = tokio::task::spawn_blocking(move || Wal::open(&data_dir, skip_fsync))
        .await
        .map_err(|e| anyhow!("WAL recovery task failed: {e}"))??;
    for repair in &recovered.repairs {
        tracing::warn!("WAL recovery: {repair}");
    }
    let mut hard_state: HardState = match &recovered.hard_state {
        Some(bytes) => {
            serde_json::from_slice(bytes).context("decoding the persisted hard state")?
        }
        None => HardState::default(),
    };
    if cfg.bugs.forget_vote {
        // Deliberate bug: the vote is not restored, so this node may vote again in
        // the same term.
        hard_state.voted_for = None;
    }
    let snapshot = recovered.snapshot.map(|s| Snapshot {
        index: s.index,
        term: s.term,
        data: s.payload,
    });
    let kv = match &snapshot {
        Some(s) => {
            KvState::from_snapshot_bytes(&s.data).context("decoding the snapshot's state")?
        }
        None => KvState::default(),
    };
    let entries: Vec<Entry> = recovered
        .entries
        .into_iter()
        .map(|e| Entry {
            index: e.index,
            term: e.term,
            data: e.payload,
        })
        .collect();
    tracing::info!(
        id = cfg.id,
        term = hard_state.term,
        voted_for = ?hard_state.voted_for,
        commit = hard_state.commit,
        snapshot_index = snapshot.as_ref().map_or(0, |s| s.index),
        entries = entries.len(),
        "recovered from the WAL"
    );

    let mut core_cfg = raft::Config::new(
        cfg.id,
        cfg.peers
            .keys()
            .copied()
            .chain(std::iter::once(cfg.id))
            .collect(),
        cfg.seed,
    );
    core_cfg.bugs = raft::CoreBugs {
        commit_old_terms: cfg.bugs.commit_old_terms,
        no_truncate: cfg.bugs.no_truncate,
        stale_reads: cfg.bugs.stale_reads,
        lease_trusts_clock: cfg.bugs.lease_trusts_clock,
    };
    core_cfg
        .validate()
        .map_err(|e| anyhow!("consensus configuration: {e}"))?;
    let last_snapshot_index = snapshot.as_ref().map_or(0, |s| s.index);
    let applied_term = snapshot.as_ref().map_or(0, |s| s.term);
    let core = RaftNode::new(
        core_cfg,
        Restored {
            hard_state,
            snapshot,
            entries,
        },
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let (peer_tx, peer_rx) = mpsc::channel::<(u64, Message)>(8192);
    let (event_tx, event_rx) = mpsc::channel::<Event>(8192);
    let requests = event_tx.clone();
    let transport = Transport::start(cfg.id, &cfg.peers, stop_rx.clone());
    tokio::spawn(Inbound::<Message>::serve(
        listeners.peer,
        peer_tx,
        stop_rx.clone(),
    ));
    tokio::spawn(serve_clients(
        listeners.client,
        event_tx.clone(),
        stop_rx.clone(),
    ));
    tokio::spawn(serve_admin(
        listeners.admin,
        event_tx,
        clock.clone(),
        stop_rx.clone(),
    ));

    let ticks = TickSource::new(clock.clone(), cfg.tick_ms);
    let mut driver = Driver {
        cfg,
        core,
        wal: Some(wal),
        kv,
        applied_term,
        last_snapshot_index,
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
    let result = driver.run(peer_rx, event_rx, shutdown).await;
    driver.fail_everything(ErrorKind::ShuttingDown, "the node is shutting down");
    let _ = stop_tx.send(true);
    result
}

impl Driver {
    async fn run(
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
            Event::Admin { op, reply } => {
                let _ = reply.send(self.admin(op));
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
                    for _ in 0..self.ticks.due() {
                        self.core.tick();
                    }
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

    fn admin(&mut self, op: AdminOp) -> Result<Value, String> {
        match op {
            AdminOp::Status => {
                let s = self.core.status();
                let role = match s.role {
                    Role::Leader => "leader",
                    Role::Follower => "follower",
                    Role::Candidate => "candidate",
                    Role::PreCandidate => "pre-candidate",
                };
                Ok(json!({
                    "id": self.cfg.id,
                    "name": self.cfg.name,
                    "role": role,
                    "term": s.term,
                    "voted_for": s.voted_for,
                    "leader": s.leader,
                    "commit_index": s.commit,
                    "applied_index": self.kv.applied_index,
                    "last_index": s.last_index,
                    "snapshot_index": s.snapshot_index,
                    "log_entries": s.log_len,
                    "read_mode": self.cfg.read_mode,
                    "clock": self.clock.skew(),
                }))
            }
            AdminOp::Digest { at } => {
                let mut value =
                    serde_json::to_value(self.kv.digest()).map_err(|e| e.to_string())?;
                if let Some(at) = at {
                    value["history_at"] = match self.chain_at.get(&at) {
                        Some(chain) => json!({"index": at, "history": format!("{chain:016x}")}),
                        None => Value::Null,
                    };
                }
                Ok(value)
            }
            AdminOp::LogTerms => {
                let s = self.core.status();
                let entries: Vec<[u64; 2]> = self
                    .core
                    .log_terms()
                    .into_iter()
                    .map(|(i, t)| [i, t])
                    .collect();
                Ok(json!({
                    "snapshot_index": s.snapshot_index,
                    "snapshot_term": s.snapshot_term,
                    "entries": entries,
                }))
            }
            // Clock operations are handled by the admin listener directly.
            AdminOp::Clock { .. } | AdminOp::ClockReset => {
                Err("clock ops are handled by the listener".into())
            }
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

    fn fail_everything(&mut self, kind: ErrorKind, message: &str) {
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

/// Accepts client connections; each gets a reader (lines → driver) and a writer
/// (replies → socket) task.
async fn serve_clients(
    listener: TcpListener,
    events: mpsc::Sender<Event>,
    mut shutdown: ShutdownRx,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(client_connection(stream, events.clone(), shutdown.clone()));
    }
}

async fn client_connection(
    stream: TcpStream,
    events: mpsc::Sender<Event>,
    mut shutdown: ShutdownRx,
) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let (reply_tx, mut reply_rx) = mpsc::unbounded_channel::<Reply>();
    let writer = tokio::spawn(async move {
        let mut out = BufWriter::new(write_half);
        while let Some(reply) = reply_rx.recv().await {
            let mut batch = reply.to_line();
            batch.push('\n');
            while let Ok(more) = reply_rx.try_recv() {
                batch.push_str(&more.to_line());
                batch.push('\n');
            }
            if out.write_all(batch.as_bytes()).await.is_err() || out.flush().await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(read_half).lines();
    loop {
        let line = tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => break,
            l = lines.next_line() => l,
        };
        let Ok(Some(line)) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match parse_line::<Request>(&line) {
            Ok(req) => {
                let event = Event::Client {
                    id: req.id,
                    command: req.command,
                    reply: reply_tx.clone(),
                };
                if events.send(event).await.is_err() {
                    break;
                }
            }
            Err(bad) => {
                let _ = reply_tx.send(bad);
            }
        }
    }
    drop(reply_tx);
    // Let in-flight replies drain; the writer ends when the driver drops its senders.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}

/// Accepts admin connections: status/digest/log-terms go to the driver, clock changes
/// apply to the shared clock directly (so they work even while the driver is busy).
async fn serve_admin(
    listener: TcpListener,
    events: mpsc::Sender<Event>,
    clock: Clock,
    mut shutdown: ShutdownRx,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let events = events.clone();
        let clock = clock.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let (read_half, mut write_half) = stream.into_split();
            let mut lines = BufReader::new(read_half).lines();
            loop {
                let line = tokio::select! {
                    _ = shutdown_signalled(&mut shutdown) => return,
                    l = lines.next_line() => l,
                };
                let Ok(Some(line)) = line else { return };
                if line.trim().is_empty() {
                    continue;
                }
                let reply = match parse_line::<AdminRequest>(&line) {
                    Err(bad) => bad,
                    Ok(AdminRequest {
                        id,
                        op: AdminOp::Clock { offset_ms, rate },
                    }) => match clock.set(offset_ms, rate) {
                        Ok(()) => Reply::ok(id, json!(clock.skew())),
                        Err(e) => Reply::error(Some(id), ErrorKind::BadRequest, e),
                    },
                    Ok(AdminRequest {
                        id,
                        op: AdminOp::ClockReset,
                    }) => {
                        clock.reset();
                        Reply::ok(id, json!(clock.skew()))
                    }
                    Ok(AdminRequest { id, op }) => {
                        let (tx, rx) = oneshot::channel();
                        if events.send(Event::Admin { op, reply: tx }).await.is_err() {
                            return;
                        }
                        match rx.await {
                            Ok(Ok(value)) => Reply::ok(id, value),
                            Ok(Err(e)) => Reply::error(Some(id), ErrorKind::BadRequest, e),
                            Err(_) => Reply::error(Some(id), ErrorKind::ShuttingDown, ""),
                        }
                    }
                };
                let mut line = reply.to_line();
                line.push('\n');
                if write_half.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::launch::{admin_request, LineClient};
    use crate::node::wal::tests::TempDir;

    /// An in-process cluster on ephemeral loopback ports.
    struct TestCluster {
        _dir: TempDir,
        client: Vec<String>,
        admin: Vec<String>,
        stops: Vec<oneshot::Sender<()>>,
        tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
        /// Each node's clock, shared with it (clock faults without the admin API).
        clocks: Vec<Clock>,
    }

    impl TestCluster {
        async fn start(n: u64, read_mode: ReadMode) -> TestCluster {
            let dir = TempDir::new("cluster");
            let mut listeners = Vec::new();
            for _ in 0..n {
                listeners.push(
                    Listeners::bind("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
                        .await
                        .expect("bind"),
                );
            }
            let addrs: Vec<_> = listeners
                .iter()
                .map(|l| l.addrs().expect("addrs"))
                .collect();
            let client_addrs: BTreeMap<u64, String> = addrs
                .iter()
                .enumerate()
                .map(|(i, a)| (i as u64 + 1, a.1.to_string()))
                .collect();
            let mut cluster = TestCluster {
                client: addrs.iter().map(|a| a.1.to_string()).collect(),
                admin: addrs.iter().map(|a| a.2.to_string()).collect(),
                stops: Vec::new(),
                tasks: Vec::new(),
                clocks: Vec::new(),
                _dir: dir,
            };
            for (i, l) in listeners.into_iter().enumerate() {
                let id = i as u64 + 1;
                let cfg = NodeConfig {
                    id,
                    name: format!("n{id}"),
                    peers: addrs
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(j, a)| (j as u64 + 1, a.0.to_string()))
                        .collect(),
                    client_addrs: client_addrs.clone(),
                    data_dir: cluster._dir.0.join(format!("n{id}")),
                    read_mode,
                    bugs: BugSet::default(),
                    tick_ms: 10,
                    snapshot_every: 20,
                    request_timeout_ms: 3000,
                    seed: 42 + id,
                };
                let (tx, rx) = oneshot::channel::<()>();
                cluster.stops.push(tx);
                let clock = Clock::new();
                cluster.clocks.push(clock.clone());
                cluster
                    .tasks
                    .push(tokio::spawn(run(cfg, l, clock, async move {
                        let _ = rx.await;
                    })));
            }
            cluster
        }

        async fn leader(&self) -> usize {
            crate::node::launch::wait_for_leader(&self.admin, Duration::from_secs(10))
                .await
                .expect("a leader")
        }

        /// Stops one node (its task ends; `stop` later skips it).
        fn stop_node(&mut self, i: usize) {
            let (dummy, _) = oneshot::channel();
            let _ = std::mem::replace(&mut self.stops[i], dummy).send(());
        }

        /// Role and term of each running node (`None` where it does not answer).
        async fn roles(&self) -> Vec<Option<(String, u64)>> {
            let mut out = Vec::new();
            for addr in &self.admin {
                let reply = crate::node::launch::admin_request(addr, json!({"op": "status"})).await;
                out.push(reply.ok().and_then(|r| {
                    let role = r.get("role")?.as_str()?.to_string();
                    let term = r.get("term")?.as_u64()?;
                    Some((role, term))
                }));
            }
            out
        }

        async fn stop(self) {
            for s in self.stops {
                let _ = s.send(());
            }
            for t in self.tasks {
                let r = tokio::time::timeout(Duration::from_secs(5), t)
                    .await
                    .expect("node stops in time");
                r.expect("node task").expect("node ran without error");
            }
        }
    }

    /// Election time under clock faults: a measurement, not a check (it asserts nothing
    /// about timing). `cargo test --release -p splitbrain --bin splitbrain
    /// node::server::tests::measure_elections_under_clock_faults -- --ignored --nocapture`
    ///
    /// - *backward*: both followers' clocks jump back 2 s, then the leader stops; how
    ///   long until one of them leads?
    /// - *forward*: the leader's clock jumps forward 1 s; is it still the leader of the
    ///   same term 1 s later?
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn measure_elections_under_clock_faults() {
        let trials = 5;
        let mut backward = Vec::new();
        let mut forward_kept = 0;
        for _ in 0..trials {
            let mut c = TestCluster::start(3, ReadMode::ReadIndex).await;
            let leader = c.leader().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            for (i, clock) in c.clocks.iter().enumerate() {
                if i != leader {
                    clock.set(-2000, 1.0).expect("skew");
                }
            }
            c.stop_node(leader);
            let start = std::time::Instant::now();
            let elected = loop {
                let roles = c.roles().await;
                if roles.iter().enumerate().any(|(i, r)| {
                    i != leader && r.as_ref().is_some_and(|(role, _)| role == "leader")
                }) {
                    break Some(start.elapsed());
                }
                if start.elapsed() > Duration::from_secs(10) {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            backward.push(elected);
            c.stop().await;

            let c = TestCluster::start(3, ReadMode::ReadIndex).await;
            let leader = c.leader().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let term = c.roles().await[leader].clone().map(|(_, t)| t);
            c.clocks[leader].set(1000, 1.0).expect("skew");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let after = c.roles().await[leader].clone();
            if after.is_some_and(|(role, t)| role == "leader" && Some(t) == term) {
                forward_kept += 1;
            }
            c.stop().await;
        }
        eprintln!("backward 2 s on both followers, leader stopped: new leader after {backward:?}");
        eprintln!(
            "forward 1 s on the leader: still leading the same term in {forward_kept} of {trials}"
        );
    }

    async fn send_raw(addr: &str, line: &str) -> Value {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(line.as_bytes()).await.expect("write");
        let mut lines = BufReader::new(s).lines();
        let reply = lines
            .next_line()
            .await
            .expect("read")
            .expect("a reply line");
        serde_json::from_str(&reply).expect("reply is JSON")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_serves_every_operation_and_followers_redirect() {
        let cluster = TestCluster::start(3, ReadMode::ReadIndex).await;
        let leader = cluster.leader().await;
        let mut c = LineClient::connect(&cluster.client[leader])
            .await
            .expect("connect");
        let r = c
            .request(json!({"op":"put","key":"x","value":1}))
            .await
            .expect("put");
        assert_eq!(r["ok"], json!(true), "{r}");
        let r = c.request(json!({"op":"get","key":"x"})).await.expect("get");
        assert_eq!(r["value"], json!(1), "{r}");
        let r = c
            .request(json!({"op":"cas","key":"x","from":5,"to":6}))
            .await
            .expect("cas");
        assert_eq!(
            (&r["error"], &r["definite"], &r["value"]),
            (&json!("cas-mismatch"), &json!(true), &json!(1))
        );
        let r = c
            .request(json!({"op":"cas","key":"x","from":1,"to":2}))
            .await
            .expect("cas");
        assert_eq!(r["ok"], json!(true), "{r}");
        let r = c
            .request(json!({"op":"append","key":"l","value":"a"}))
            .await
            .expect("append");
        assert_eq!(r["value"], json!(["a"]), "{r}");
        let r = c
            .request(json!({"op":"append","key":"x","value":"a"}))
            .await
            .expect("append");
        assert_eq!(
            (&r["error"], &r["definite"]),
            (&json!("type-mismatch"), &json!(true)),
            "{r}"
        );
        let r = c
            .request(json!({"op":"txn","ops":[["r","x",null],["w","y",3],["append","l","b"],["r","l",null]]}))
            .await
            .expect("txn");
        assert_eq!(
            r["value"],
            json!([
                ["r", "x", 2],
                ["w", "y", 3],
                ["append", "l", "b"],
                ["r", "l", ["a", "b"]]
            ]),
            "{r}"
        );

        // Pipelined requests on one connection all get answered.
        let mut raw = TcpStream::connect(&cluster.client[leader])
            .await
            .expect("connect");
        let mut batch = String::new();
        for i in 0..20 {
            batch.push_str(&format!(
                "{{\"id\":{i},\"op\":\"append\",\"key\":\"p\",\"value\":{i}}}\n"
            ));
        }
        batch.push_str("this is not json\n{\"id\":99,\"op\":\"get\",\"key\":\"p\"}\n");
        raw.write_all(batch.as_bytes()).await.expect("write");
        let mut lines = BufReader::new(raw).lines();
        let mut seen = std::collections::BTreeSet::new();
        let mut bad = 0;
        while seen.len() < 21 {
            let line = lines.next_line().await.expect("read").expect("line");
            let v: Value = serde_json::from_str(&line).expect("json");
            match v["id"].as_u64() {
                Some(id) => {
                    assert_eq!(v["ok"], json!(true), "{v}");
                    seen.insert(id);
                }
                None => {
                    assert_eq!(v["error"], json!("bad-request"));
                    bad += 1;
                }
            }
        }
        assert_eq!(bad, 1);

        // A follower answers not-leader with the leader's client address.
        let follower = (leader + 1) % 3;
        let r = send_raw(
            &cluster.client[follower],
            "{\"id\":7,\"op\":\"put\",\"key\":\"x\",\"value\":9}\n",
        )
        .await;
        assert_eq!(r["error"], json!("not-leader"), "{r}");
        assert_eq!(r["definite"], json!(true));
        assert_eq!(r["leader"], json!(cluster.client[leader]));

        // Every replica converges to the same digest.
        let want = admin_request(&cluster.admin[leader], json!({"op":"digest"}))
            .await
            .expect("digest");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        for admin in &cluster.admin {
            loop {
                let got = admin_request(admin, json!({"op":"digest"}))
                    .await
                    .expect("digest");
                if got == want {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "replica {admin} stuck at {got}, want {want}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let terms = admin_request(&cluster.admin[leader], json!({"op":"log-terms"}))
            .await
            .expect("log-terms");
        // More than `snapshot_every` (20) entries were applied: the log was compacted.
        assert!(
            terms["snapshot_index"].as_u64().is_some_and(|i| i >= 20)
                && terms["entries"].is_array(),
            "{terms}"
        );
        let clock = admin_request(
            &cluster.admin[leader],
            json!({"op":"clock","offset_ms":5,"rate":2.0}),
        )
        .await
        .expect("clock");
        assert_eq!(clock, json!({"offset_ms":5,"rate":2.0}));
        cluster.stop().await;
    }

    /// Environment variable carrying a child node's `splitbrain node` arguments (JSON
    /// array) when the test binary re-executes itself as a node process.
    const CHILD_ARGS_ENV: &str = "SPLITBRAIN_TEST_CHILD_NODE_ARGS";

    /// Entry point of child node processes for the kill test: the test binary re-runs
    /// itself with `--ignored --exact` on this function, so a real process can be
    /// SIGKILLed. Ignored in normal runs.
    #[test]
    #[ignore = "entry point for the child node processes of the kill test"]
    fn child_node_entry() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Top {
            #[command(subcommand)]
            cmd: crate::node::cli::NodeCommand,
        }
        let Ok(args) = std::env::var(CHILD_ARGS_ENV) else {
            return;
        };
        let args: Vec<String> = serde_json::from_str(&args).expect("child args are a JSON array");
        let top = Top::try_parse_from(std::iter::once("splitbrain".to_string()).chain(args))
            .expect("child args");
        let code = crate::node::cli::run(top.cmd).expect("child node runs");
        std::process::exit(code);
    }

    fn spawn_child(spec: &crate::node::launch::NodeSpec) -> std::process::Child {
        let exe = std::env::current_exe().expect("test binary path");
        std::process::Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "node::server::tests::child_node_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                CHILD_ARGS_ENV,
                serde_json::to_string(&spec.args()).expect("args json"),
            )
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn child node")
    }

    async fn digest_of(admin: &str) -> Option<Value> {
        admin_request(admin, json!({"op":"digest"})).await.ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_node_with_a_torn_wal_tail_restarts_and_catches_up() {
        let dir = TempDir::new("kill");
        let base = crate::node::launch::free_port_base(9, &mut crate::node::launch::port_rng(7))
            .expect("free ports");
        let mut specs =
            crate::node::launch::NodeSpec::local_cluster(3, base, &dir.0, "read-index", 7);
        for s in &mut specs {
            s.tick_ms = 10;
        }
        let mut children = crate::node::launch::Children {
            children: Vec::new(),
            grace: Duration::from_secs(5),
        };
        for s in &specs {
            children.children.push(spawn_child(s));
        }
        let admin: Vec<String> = specs.iter().map(|s| s.admin_listen.clone()).collect();
        let leader = crate::node::launch::wait_for_leader(&admin, Duration::from_secs(20))
            .await
            .expect("leader");
        let mut c = LineClient::connect(&specs[leader].client_listen)
            .await
            .expect("connect");
        for i in 0..30 {
            let r = c
                .request(json!({"op":"append","key":"log","value":i}))
                .await
                .expect("append");
            assert_eq!(r["ok"], json!(true), "{r}");
        }
        // SIGKILL a follower, keep writing, tear its WAL tail, restart it.
        let victim = (leader + 1) % 3;
        children.children[victim].kill().expect("kill");
        children.children[victim].wait().expect("reap");
        for i in 30..60 {
            let r = c
                .request(json!({"op":"append","key":"log","value":i}))
                .await
                .expect("append");
            assert_eq!(r["ok"], json!(true), "{r}");
        }
        let wal_dir = specs[victim].data_dir.join("wal");
        let mut segments: Vec<_> = std::fs::read_dir(&wal_dir)
            .expect("wal dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        segments.sort();
        let last = segments.last().expect("a segment");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(last)
            .expect("open segment");
        std::io::Write::write_all(&mut f, &[200, 0, 0, 0, 1, 2, 3]).expect("tear");
        drop(f);
        children.children[victim] = spawn_child(&specs[victim]);

        let want = digest_of(&specs[leader].admin_listen)
            .await
            .expect("leader digest");
        assert_eq!(
            want["applied_index"].as_u64().map(|i| i >= 61),
            Some(true),
            "{want}"
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if digest_of(&specs[victim].admin_listen).await.as_ref() == Some(&want) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "restarted node never caught up to {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(specs[victim].log_file.as_ref().expect("log file"))
            .expect("victim log");
        assert!(
            log.contains("torn tail"),
            "recovery must warn about the torn tail"
        );
        children.stop_all();
    }
}
