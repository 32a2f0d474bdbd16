//! Deterministic simulation of a Raft cluster built from [`RaftNode`]s, and the safety
//! tests that run it over many seeds.
//!
//! One seeded RNG drives everything: message delays (hence reordering), drops,
//! duplicates, partitions (random grudges), crashes and restarts (a restarted node gets
//! exactly what it persisted through the Ready contract), client proposals, read-index
//! and lease reads, and snapshots (compaction). After every event the simulation checks
//! the Raft safety properties incrementally; a run stops at the first violation and
//! reports it with its seed, so `SPLITBRAIN_SIM_SEED=<seed>` reproduces it.
//!
//! The simulated state machine is the list of applied entry datas (no-ops included as
//! empty datas, so position `i` holds index `i + 1`); a snapshot's data is that list
//! serialized as JSON.
//!
//! Two ways of feeding the cores. *Stepwise* (the default) takes a Ready after every
//! single event, the finest interleaving of persistence and input. *Batched* does what
//! the server's driver loop does: a node gathers a whole tick's input — the due tick,
//! every message delivered to it, client requests — feeds it through
//! [`RaftNode::advance`] and only then takes its Ready; in this mode nodes also stall
//! (SIGSTOP, a long fsync) for a few ticks, piling up ticks and messages that are fed in
//! one batch when they resume. Bugs that need several events between two Readys (an
//! install of a snapshot and appends after it, a heartbeat buffered across a stall)
//! only show in batched mode.
//!
//! Each property has its own test, all reading one shared run of the default seeds (so
//! the suite simulates each seed once). Each deliberate [`CoreBugs`] flag has a test
//! asserting the simulation finds a violation within a bounded number of seeds, which
//! proves the checks can fail.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::OnceLock;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    Config, CoreBugs, Entry, HardState, Message, NodeId, RaftNode, Ready, Restored, Role, Snapshot,
};

/// The properties the simulation checks, each defended by one test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Property {
    /// At most one leader per term, over all time (Raft §5.2).
    ElectionSafety,
    /// Same index and term ⇒ same entry and same prefix (Raft §5.3).
    LogMatching,
    /// A leader's log holds every entry committed in earlier terms (Raft §5.4).
    LeaderCompleteness,
    /// No two nodes apply different entries at one index; each node applies a prefix
    /// of the global committed sequence (Raft §5.4.3).
    StateMachineSafety,
    /// A read reflects every entry committed before it started.
    LinearizableReads,
    /// What the node persisted through the Ready contract equals the core's log.
    PersistenceMatchesMemory,
    /// After healing and a quiet period, a leader exists and everyone applied everything.
    LivenessAfterHeal,
}

/// A property violated at some point of a seeded run.
#[derive(Clone, Debug)]
struct Violation {
    property: Property,
    seed: u64,
    tick: u64,
    detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} violated at tick {} of seed {}: {}",
            self.property, self.tick, self.seed, self.detail
        )
    }
}

/// Counters showing what a run exercised.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    leaders_elected: u64,
    committed: u64,
    crashes: u64,
    compactions: u64,
    snapshots_installed: u64,
    reads_served: u64,
    lease_reads_served: u64,
    stalls: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.leaders_elected += o.leaders_elected;
        self.committed += o.committed;
        self.crashes += o.crashes;
        self.compactions += o.compactions;
        self.snapshots_installed += o.snapshots_installed;
        self.reads_served += o.reads_served;
        self.lease_reads_served += o.lease_reads_served;
        self.stalls += o.stalls;
    }
}

/// The knobs of one simulated run.
#[derive(Clone, Debug)]
struct SimParams {
    nodes: usize,
    /// Ticks of faults and client load.
    chaos_ticks: u64,
    /// Ticks after healing, without faults, before the liveness check.
    quiet_ticks: u64,
    drop: f64,
    duplicate: f64,
    max_delay: u64,
    /// Per tick: probability to crash a node (at most a minority is down at once).
    crash: f64,
    down_ticks: (u64, u64),
    /// Per tick: probability to pick a new grudge.
    partition: f64,
    /// Per tick: probability of a client proposal / read-index read / lease read.
    propose: f64,
    read: f64,
    lease_read: f64,
    /// Per tick: probability that a node snapshots, when it applied `compact_lag` entries
    /// beyond its last snapshot.
    compact: f64,
    compact_lag: u64,
    pre_vote: bool,
    max_entries_per_append: usize,
    bugs: CoreBugs,
    /// The server's `forget-vote` bug: a restarted node does not restore `voted_for`
    /// (a recovery bug, so it lives here and not in [`CoreBugs`]).
    forget_vote: bool,
    /// Feed each node a tick's input as one batch before its Ready, as the server does
    /// (see the module doc); otherwise a Ready after every event.
    batched: bool,
    /// Batched mode, per tick and node: probability that the node stalls.
    stall: f64,
    stall_ticks: (u64, u64),
}

impl SimParams {
    /// The default chaos: 3 nodes for even seeds, 5 for odd ones.
    fn for_seed(seed: u64) -> SimParams {
        SimParams {
            nodes: if seed.is_multiple_of(2) { 3 } else { 5 },
            chaos_ticks: 600,
            quiet_ticks: 250,
            drop: 0.05,
            duplicate: 0.03,
            max_delay: 4,
            crash: 0.01,
            down_ticks: (5, 60),
            partition: 0.02,
            propose: 0.4,
            read: 0.15,
            lease_read: 0.1,
            compact: 0.05,
            compact_lag: 8,
            pre_vote: !seed.is_multiple_of(3),
            max_entries_per_append: 4,
            bugs: CoreBugs::default(),
            forget_vote: false,
            batched: false,
            stall: 0.0,
            stall_ticks: (1, 15),
        }
    }

    /// The default chaos fed in batches as the server does, with stalls.
    fn batched_for_seed(seed: u64) -> SimParams {
        SimParams {
            batched: true,
            stall: 0.01,
            ..SimParams::for_seed(seed)
        }
    }

    /// Batched, with snapshot churn: frequent compaction, small appends, long delays and
    /// duplicates, so that a follower with a stale tail installs a snapshot and accepts
    /// appends after it before its next Ready. This found the lost-entries bug of
    /// snapshot installation (entries acknowledged but never persisted) in 1 of 3000
    /// seeds before the fix: a soak, not a default test.
    fn snapshot_churn_for_seed(seed: u64) -> SimParams {
        SimParams {
            compact: 0.3,
            compact_lag: 2,
            max_delay: 8,
            duplicate: 0.1,
            stall: 0.05,
            partition: 0.05,
            max_entries_per_append: 2,
            ..SimParams::batched_for_seed(seed)
        }
    }
}

/// What a simulated node persisted.
#[derive(Clone, Debug, Default)]
struct Disk {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Disk {
    fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.index)
    }

    fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot_index(), |e| e.index)
    }

    fn term(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        if let Some(s) = &self.snapshot {
            if s.index == index {
                return Some(s.term);
            }
        }
        let first = self.entries.first()?.index;
        self.entries
            .get(index.checked_sub(first)? as usize)
            .map(|e| e.term)
    }
}

/// A client read waiting to be served.
#[derive(Clone, Debug)]
struct ClientRead {
    ctx: u64,
    /// Where to read, once known.
    index: Option<u64>,
    /// The highest index known committed when the read started.
    must_see: u64,
    lease: bool,
}

struct SimNode {
    id: NodeId,
    core: Option<RaftNode>,
    disk: Disk,
    /// The state machine: applied datas, position i = index i + 1.
    applied: Vec<Vec<u8>>,
    reads: Vec<ClientRead>,
    down_until: u64,
    boots: u64,
    /// Batched mode: ticks due and messages delivered since the node's last batch.
    due_ticks: u64,
    inbox: Vec<Message>,
    /// Batched mode: the node is stalled (takes no input) until this tick.
    stalled_until: u64,
}

/// An entry known committed (some node applied it).
struct Committed {
    term: u64,
    data: Vec<u8>,
    /// The smallest current term of a node when it applied the entry: the entry was
    /// committed by a leader of this term or earlier.
    observed_term: u64,
}

struct InFlight {
    deliver_at: u64,
    msg: Message,
}

struct Sim {
    seed: u64,
    params: SimParams,
    rng: ChaCha8Rng,
    now: u64,
    nodes: Vec<SimNode>,
    network: Vec<InFlight>,
    /// Directed links whose messages are dropped.
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Leader of each term ever seen.
    leaders: BTreeMap<u64, NodeId>,
    /// Every entry ever persisted: (index, term) ⇒ (data, term of the previous entry).
    entries_seen: HashMap<(u64, u64), (Vec<u8>, u64)>,
    committed: BTreeMap<u64, Committed>,
    next_command: u64,
    next_ctx: u64,
    stats: Stats,
}

type Check = Result<(), Violation>;

impl Sim {
    fn new(seed: u64, params: SimParams) -> Sim {
        let nodes = (1..=params.nodes as u64)
            .map(|id| SimNode {
                id,
                core: None,
                disk: Disk::default(),
                applied: Vec::new(),
                reads: Vec::new(),
                down_until: 0,
                boots: 0,
                due_ticks: 0,
                inbox: Vec::new(),
                stalled_until: 0,
            })
            .collect();
        let mut sim = Sim {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            params,
            now: 0,
            nodes,
            network: Vec::new(),
            blocked: BTreeSet::new(),
            leaders: BTreeMap::new(),
            entries_seen: HashMap::new(),
            committed: BTreeMap::new(),
            next_command: 0,
            next_ctx: 0,
            stats: Stats::default(),
        };
        for id in 1..=sim.params.nodes as u64 {
            sim.boot(id);
        }
        sim
    }

    fn violation(&self, property: Property, detail: String) -> Violation {
        Violation {
            property,
            seed: self.seed,
            tick: self.now,
            detail,
        }
    }

    fn config(&self, id: NodeId, boots: u64) -> Config {
        let mut config = Config::new(
            id,
            (1..=self.params.nodes as u64).collect(),
            self.seed ^ (boots << 32),
        );
        config.pre_vote = self.params.pre_vote;
        config.max_entries_per_append = self.params.max_entries_per_append;
        config.max_inflight_msgs = 4;
        config.bugs = self.params.bugs;
        config
    }

    /// Starts (or restarts) a node from its disk; its state machine is rebuilt from the
    /// snapshot alone, as the Ready contract prescribes.
    fn boot(&mut self, id: NodeId) {
        let slot = (id - 1) as usize;
        let boots = self.nodes[slot].boots;
        let config = self.config(id, boots);
        let node = &mut self.nodes[slot];
        node.boots += 1;
        let mut restored = Restored {
            hard_state: node.disk.hard_state,
            snapshot: node.disk.snapshot.clone(),
            entries: node.disk.entries.clone(),
        };
        if self.params.forget_vote {
            restored.hard_state.voted_for = None;
        }
        node.applied = node
            .disk
            .snapshot
            .as_ref()
            .and_then(|s| serde_json::from_slice(&s.data).ok())
            .unwrap_or_default();
        node.reads.clear();
        node.due_ticks = 0;
        node.inbox.clear();
        node.stalled_until = 0;
        node.core = Some(RaftNode::new(config, restored));
    }

    fn leaders_now(&self) -> Vec<NodeId> {
        self.alive()
            .into_iter()
            .filter(|&id| self.role(id) == Some(Role::Leader))
            .collect()
    }

    fn alive(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.core.is_some())
            .map(|n| n.id)
            .collect()
    }

    fn role(&self, id: NodeId) -> Option<Role> {
        self.nodes[(id - 1) as usize]
            .core
            .as_ref()
            .map(|c| c.status().role)
    }

    fn max_committed(&self) -> u64 {
        self.committed.keys().next_back().copied().unwrap_or(0)
    }

    // ---- the run -----------------------------------------------------------------

    fn run(&mut self) -> Result<Stats, Violation> {
        for _ in 0..self.params.chaos_ticks {
            self.chaos_tick()?;
        }
        self.heal()?;
        // Proposals during the first half show the healed cluster makes progress; the
        // second half lets every node learn the final commit index.
        for tick in 0..self.params.quiet_ticks {
            self.quiet_tick(tick < self.params.quiet_ticks / 2)?;
        }
        self.check_liveness()?;
        Ok(self.stats)
    }

    fn chaos_tick(&mut self) -> Check {
        self.now += 1;
        self.nemesis()?;
        self.stalls();
        self.tick_nodes()?;
        self.deliver()?;
        self.clients()?;
        self.end_batches()?;
        self.compactions()
    }

    fn quiet_tick(&mut self, proposals: bool) -> Check {
        self.now += 1;
        self.tick_nodes()?;
        self.deliver()?;
        if proposals && self.rng.gen_bool(0.1) {
            self.propose_somewhere()?;
        }
        self.end_batches()?;
        self.compactions()
    }

    /// Batched mode: running nodes may stall for a few ticks (never in stepwise mode,
    /// where there is no batch to pile input into).
    fn stalls(&mut self) {
        if !self.params.batched || self.params.stall == 0.0 {
            return;
        }
        for id in self.alive() {
            if !self.stalled(id) && self.rng.gen_bool(self.params.stall) {
                let (lo, hi) = self.params.stall_ticks;
                let until = self.now + self.rng.gen_range(lo..=hi);
                self.nodes[(id - 1) as usize].stalled_until = until;
                self.stats.stalls += 1;
            }
        }
    }

    /// Batched mode: every running node that is not stalled feeds its pending ticks and
    /// messages to its core in one batch, as the server's driver loop does, then handles
    /// its Readys.
    fn end_batches(&mut self) -> Check {
        if !self.params.batched {
            return Ok(());
        }
        let mut ids = self.alive();
        ids.shuffle(&mut self.rng);
        for id in ids {
            if self.stalled(id) {
                continue;
            }
            let node = &mut self.nodes[(id - 1) as usize];
            let due = std::mem::take(&mut node.due_ticks);
            let inbox = std::mem::take(&mut node.inbox);
            if let Some(core) = node.core.as_mut() {
                core.advance(due, inbox);
            }
            self.drain_ready(id)?;
        }
        Ok(())
    }

    fn heal(&mut self) -> Check {
        self.blocked.clear();
        self.params.drop = 0.0;
        self.params.duplicate = 0.0;
        self.params.max_delay = 2;
        self.params.stall = 0.0;
        for node in &mut self.nodes {
            node.stalled_until = 0;
        }
        for id in 1..=self.params.nodes as u64 {
            if self.nodes[(id - 1) as usize].core.is_none() {
                self.boot(id);
                self.after_event(id)?;
            }
        }
        Ok(())
    }

    fn nemesis(&mut self) -> Check {
        let n = self.params.nodes;
        // Restarts.
        for id in 1..=n as u64 {
            let node = &self.nodes[(id - 1) as usize];
            if node.core.is_none() && node.down_until <= self.now {
                self.boot(id);
                self.after_event(id)?;
            }
        }
        // Crashes, keeping a majority up.
        let down = n - self.alive().len();
        if down < (n - 1) / 2 + usize::from(n == 3) && self.rng.gen_bool(self.params.crash) {
            let alive = self.alive();
            if let Some(&victim) = alive.choose(&mut self.rng) {
                let (lo, hi) = self.params.down_ticks;
                let until = self.now + self.rng.gen_range(lo..=hi);
                let node = &mut self.nodes[(victim - 1) as usize];
                node.core = None;
                node.reads.clear();
                node.inbox.clear();
                node.due_ticks = 0;
                node.stalled_until = 0;
                node.down_until = until;
                self.stats.crashes += 1;
            }
        }
        // Grudges.
        if self.rng.gen_bool(self.params.partition) {
            self.blocked.clear();
            let ids: Vec<NodeId> = (1..=n as u64).collect();
            match self.rng.gen_range(0..5) {
                0 => {} // healed
                1 if !self.leaders_now().is_empty() => {
                    // Isolate a node that believes it leads.
                    let leaders = self.leaders_now();
                    let lone = leaders[self.rng.gen_range(0..leaders.len())];
                    for &other in ids.iter().filter(|&&o| o != lone) {
                        self.blocked.insert((lone, other));
                        self.blocked.insert((other, lone));
                    }
                }
                1 | 2 => {
                    // Isolate one node.
                    let lone = ids[self.rng.gen_range(0..n)];
                    for &other in ids.iter().filter(|&&o| o != lone) {
                        self.blocked.insert((lone, other));
                        self.blocked.insert((other, lone));
                    }
                }
                3 => {
                    // Random halves.
                    let mut shuffled = ids.clone();
                    shuffled.shuffle(&mut self.rng);
                    let (a, b) = shuffled.split_at(self.rng.gen_range(1..n));
                    for &x in a {
                        for &y in b {
                            self.blocked.insert((x, y));
                            self.blocked.insert((y, x));
                        }
                    }
                }
                _ => {
                    // Random one-way drops.
                    for &x in &ids {
                        for &y in &ids {
                            if x != y && self.rng.gen_bool(0.3) {
                                self.blocked.insert((x, y));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn tick_nodes(&mut self) -> Check {
        let mut ids = self.alive();
        ids.shuffle(&mut self.rng);
        for id in ids {
            let node = &mut self.nodes[(id - 1) as usize];
            if self.params.batched {
                // Time passes for a stalled node too; it notices when it resumes.
                node.due_ticks += 1;
                continue;
            }
            if let Some(core) = node.core.as_mut() {
                core.tick();
            }
            self.after_event(id)?;
        }
        Ok(())
    }

    fn deliver(&mut self) -> Check {
        let now = self.now;
        let (mut due, later): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.network)
            .into_iter()
            .partition(|m| m.deliver_at <= now);
        self.network = later;
        due.shuffle(&mut self.rng);
        for InFlight { msg, .. } in due {
            if self.blocked.contains(&(msg.from, msg.to)) {
                continue;
            }
            let to = msg.to;
            let Some(node) = self.nodes.get_mut((to - 1) as usize) else {
                continue;
            };
            let Some(core) = node.core.as_mut() else {
                continue;
            };
            if self.params.batched {
                // Waits in the node's socket buffer until its next batch.
                node.inbox.push(msg);
                continue;
            }
            core.step(msg);
            self.after_event(to)?;
        }
        Ok(())
    }

    fn send(&mut self, msg: Message) {
        if self.rng.gen_bool(self.params.drop) {
            return;
        }
        let copies = if self.rng.gen_bool(self.params.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let deliver_at = self.now + self.rng.gen_range(1..=self.params.max_delay);
            self.network.push(InFlight {
                deliver_at,
                msg: msg.clone(),
            });
        }
    }

    fn stalled(&self, id: NodeId) -> bool {
        self.nodes[(id - 1) as usize].stalled_until > self.now
    }

    /// A node believed to lead (random among several stale ones), else a random node;
    /// never a stalled one (its requests would wait until it resumes).
    fn pick_client_target(&mut self) -> Option<NodeId> {
        let alive: Vec<NodeId> = self
            .alive()
            .into_iter()
            .filter(|&id| !self.stalled(id))
            .collect();
        let leaders: Vec<NodeId> = alive
            .iter()
            .copied()
            .filter(|&id| self.role(id) == Some(Role::Leader))
            .collect();
        if !leaders.is_empty() && self.rng.gen_bool(0.9) {
            return leaders.choose(&mut self.rng).copied();
        }
        alive.choose(&mut self.rng).copied()
    }

    fn propose_somewhere(&mut self) -> Check {
        let Some(id) = self.pick_client_target() else {
            return Ok(());
        };
        self.next_command += 1;
        let data = format!("s{}c{}", self.seed, self.next_command).into_bytes();
        if let Some(core) = self.nodes[(id - 1) as usize].core.as_mut() {
            let _ = core.propose(data);
        }
        self.after_event(id)
    }

    fn clients(&mut self) -> Check {
        if self.rng.gen_bool(self.params.propose) {
            self.propose_somewhere()?;
        }
        if self.rng.gen_bool(self.params.read) {
            if let Some(id) = self.pick_client_target() {
                self.next_ctx += 1;
                let ctx = self.next_ctx;
                let must_see = self.max_committed();
                let node = &mut self.nodes[(id - 1) as usize];
                if let Some(core) = node.core.as_mut() {
                    if core.read_index(ctx).is_ok() {
                        node.reads.push(ClientRead {
                            ctx,
                            index: None,
                            must_see,
                            lease: false,
                        });
                    }
                }
                self.after_event(id)?;
            }
        }
        if self.rng.gen_bool(self.params.lease_read) {
            if let Some(id) = self.pick_client_target() {
                self.next_ctx += 1;
                let ctx = self.next_ctx;
                let must_see = self.max_committed();
                let node = &mut self.nodes[(id - 1) as usize];
                if let Some(core) = node.core.as_mut() {
                    // As the server does: catch the core's clock up before judging the
                    // lease (the messages still waiting come after those ticks).
                    core.advance(std::mem::take(&mut node.due_ticks), []);
                    if let Ok(index) = core.lease_read() {
                        node.reads.push(ClientRead {
                            ctx,
                            index: Some(index),
                            must_see,
                            lease: true,
                        });
                    }
                }
                self.serve_reads(id)?;
            }
        }
        Ok(())
    }

    /// Some node snapshots its state machine at its applied index and compacts.
    fn compactions(&mut self) -> Check {
        if !self.rng.gen_bool(self.params.compact) {
            return Ok(());
        }
        let Some(&id) = self.alive().choose(&mut self.rng) else {
            return Ok(());
        };
        let lag = self.params.compact_lag;
        let node = &mut self.nodes[(id - 1) as usize];
        let index = node.applied.len() as u64;
        if index < node.disk.snapshot_index() + lag {
            return Ok(());
        }
        let Some(term) = node.disk.term(index) else {
            return Err(self.violation(
                Property::PersistenceMatchesMemory,
                format!("n{id} applied index {index} but has no persisted entry for it"),
            ));
        };
        let data = serde_json::to_vec(&node.applied).unwrap_or_default();
        let snapshot = Snapshot { index, term, data };
        node.disk.entries.retain(|e| e.index > index);
        node.disk.snapshot = Some(snapshot.clone());
        if let Some(core) = node.core.as_mut() {
            core.compact(snapshot);
        }
        self.stats.compactions += 1;
        self.after_event(id)
    }

    // ---- the Ready contract --------------------------------------------------------

    /// After one event of `id`: in stepwise mode, handle its Readys now; in batched mode
    /// they wait for the end of the node's batch.
    fn after_event(&mut self, id: NodeId) -> Check {
        if self.params.batched {
            return Ok(());
        }
        self.drain_ready(id)
    }

    /// Drains and handles every Ready of `id`, then checks the properties about it.
    fn drain_ready(&mut self, id: NodeId) -> Check {
        loop {
            let slot = (id - 1) as usize;
            let Some(core) = self.nodes[slot].core.as_mut() else {
                return Ok(());
            };
            if !core.has_ready() {
                break;
            }
            let ready = core.ready();
            let term = core.status().term;
            self.handle_ready(id, term, ready)?;
        }
        self.check_node(id)
    }

    fn handle_ready(&mut self, id: NodeId, term: u64, ready: Ready) -> Check {
        let slot = (id - 1) as usize;
        // 1. Persist.
        {
            let disk = &mut self.nodes[slot].disk;
            if let Some(snapshot) = &ready.snapshot {
                disk.entries.retain(|e| e.index > snapshot.index);
                disk.snapshot = Some(snapshot.clone());
            }
            if let Some(from) = ready.truncate_from {
                disk.entries.retain(|e| e.index < from);
            }
        }
        for entry in &ready.entries {
            self.persist_entry(id, entry)?;
        }
        if let Some(hard_state) = ready.hard_state {
            self.nodes[slot].disk.hard_state = hard_state;
        }
        // 2. Send.
        for msg in ready.messages {
            self.send(msg);
        }
        // 3. Apply.
        if let Some(snapshot) = &ready.snapshot {
            let list: Vec<Vec<u8>> = serde_json::from_slice(&snapshot.data).map_err(|e| {
                self.violation(
                    Property::StateMachineSafety,
                    format!("n{id}: bad snapshot: {e}"),
                )
            })?;
            for (pos, data) in list.iter().enumerate() {
                let index = pos as u64 + 1;
                match self.committed.get(&index) {
                    Some(c) if &c.data == data => {}
                    Some(c) => {
                        return Err(self.violation(
                            Property::StateMachineSafety,
                            format!(
                                "n{id} installed a snapshot whose entry {index} is {:?}, but {:?} was committed there",
                                String::from_utf8_lossy(data),
                                String::from_utf8_lossy(&c.data)
                            ),
                        ))
                    }
                    None => {
                        return Err(self.violation(
                            Property::StateMachineSafety,
                            format!("n{id} installed a snapshot holding entry {index}, which nobody applied"),
                        ))
                    }
                }
            }
            self.nodes[slot].applied = list;
            self.stats.snapshots_installed += 1;
        }
        for entry in ready.committed {
            self.apply(id, term, entry)?;
        }
        let node = &mut self.nodes[slot];
        for read_state in ready.read_states {
            if let Some(read) = node.reads.iter_mut().find(|r| r.ctx == read_state.ctx) {
                read.index = Some(read_state.index);
            }
        }
        node.reads.retain(|r| !ready.lost_reads.contains(&r.ctx));
        self.serve_reads(id)
    }

    /// Appends one entry to `id`'s disk, checking contiguity and log matching.
    fn persist_entry(&mut self, id: NodeId, entry: &Entry) -> Check {
        let slot = (id - 1) as usize;
        let disk = &self.nodes[slot].disk;
        if entry.index != disk.last_index() + 1 {
            return Err(self.violation(
                Property::PersistenceMatchesMemory,
                format!(
                    "n{id}: Ready appends entry {} after persisted index {}",
                    entry.index,
                    disk.last_index()
                ),
            ));
        }
        let prev_term = disk.term(entry.index - 1).unwrap_or(u64::MAX);
        match self.entries_seen.get(&(entry.index, entry.term)) {
            Some((data, prev)) if *data == entry.data && *prev == prev_term => {}
            Some((data, prev)) => {
                return Err(self.violation(
                    Property::LogMatching,
                    format!(
                        "n{id} holds ({}, term {}) = {:?} after term {prev_term}; elsewhere it is {:?} after term {prev}",
                        entry.index,
                        entry.term,
                        String::from_utf8_lossy(&entry.data),
                        String::from_utf8_lossy(data)
                    ),
                ))
            }
            None => {
                self.entries_seen
                    .insert((entry.index, entry.term), (entry.data.clone(), prev_term));
            }
        }
        self.nodes[slot].disk.entries.push(entry.clone());
        Ok(())
    }

    fn apply(&mut self, id: NodeId, term: u64, entry: Entry) -> Check {
        let slot = (id - 1) as usize;
        let expected = self.nodes[slot].applied.len() as u64 + 1;
        if entry.index != expected {
            return Err(self.violation(
                Property::StateMachineSafety,
                format!(
                    "n{id} applied entry {} but its state machine is at {}",
                    entry.index,
                    expected - 1
                ),
            ));
        }
        match self.committed.get_mut(&entry.index) {
            Some(c) if c.term == entry.term && c.data == entry.data => {
                c.observed_term = c.observed_term.min(term);
            }
            Some(c) => {
                let detail = format!(
                    "n{id} applied ({}, term {}) = {:?}, but ({}, term {}) = {:?} was applied elsewhere",
                    entry.index,
                    entry.term,
                    String::from_utf8_lossy(&entry.data),
                    entry.index,
                    c.term,
                    String::from_utf8_lossy(&c.data)
                );
                return Err(self.violation(Property::StateMachineSafety, detail));
            }
            None => {
                self.committed.insert(
                    entry.index,
                    Committed {
                        term: entry.term,
                        data: entry.data.clone(),
                        observed_term: term,
                    },
                );
                self.stats.committed += 1;
            }
        }
        self.nodes[slot].applied.push(entry.data);
        Ok(())
    }

    /// Serves the reads whose index the state machine reached, checking each sees
    /// everything committed before it started.
    fn serve_reads(&mut self, id: NodeId) -> Check {
        let slot = (id - 1) as usize;
        let applied = self.nodes[slot].applied.len() as u64;
        let (ready, waiting): (Vec<ClientRead>, Vec<ClientRead>) =
            std::mem::take(&mut self.nodes[slot].reads)
                .into_iter()
                .partition(|r| r.index.is_some_and(|i| i <= applied));
        self.nodes[slot].reads = waiting;
        for read in ready {
            if applied < read.must_see {
                return Err(self.violation(
                    Property::LinearizableReads,
                    format!(
                        "n{id} served {} read {} at applied index {applied}, but index {} was committed before it started",
                        if read.lease { "lease" } else { "read-index" },
                        read.ctx,
                        read.must_see
                    ),
                ));
            }
            if read.lease {
                self.stats.lease_reads_served += 1;
            } else {
                self.stats.reads_served += 1;
            }
        }
        Ok(())
    }

    // ---- checks --------------------------------------------------------------------

    fn check_node(&mut self, id: NodeId) -> Check {
        let slot = (id - 1) as usize;
        let Some(core) = self.nodes[slot].core.as_ref() else {
            return Ok(());
        };
        let status = core.status();
        let log = core.log_terms();
        // Persisted log == in-memory log.
        let disk = &self.nodes[slot].disk;
        let disk_terms: Vec<(u64, u64)> = disk.entries.iter().map(|e| (e.index, e.term)).collect();
        if disk_terms != log || disk.snapshot_index() != status.snapshot_index {
            return Err(self.violation(
                Property::PersistenceMatchesMemory,
                format!(
                    "n{id}: disk holds snapshot {} + {:?}, memory snapshot {} + {:?}",
                    disk.snapshot_index(),
                    disk_terms,
                    status.snapshot_index,
                    log
                ),
            ));
        }
        if status.role != Role::Leader {
            return Ok(());
        }
        match self.leaders.get(&status.term) {
            Some(&other) if other != id => {
                return Err(self.violation(
                    Property::ElectionSafety,
                    format!("n{id} and n{other} both led term {}", status.term),
                ))
            }
            Some(_) => {}
            None => {
                self.leaders.insert(status.term, id);
                self.stats.leaders_elected += 1;
            }
        }
        for (&index, c) in self.committed.range(status.snapshot_index + 1..) {
            if c.observed_term >= status.term {
                continue;
            }
            let held = log.get((index - status.snapshot_index - 1) as usize);
            if held != Some(&(index, c.term)) {
                return Err(self.violation(
                    Property::LeaderCompleteness,
                    format!(
                        "n{id} leads term {} without ({index}, term {}) committed by term {}; it holds {held:?}",
                        status.term, c.term, c.observed_term
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_liveness(&mut self) -> Check {
        let statuses: Vec<_> = self
            .nodes
            .iter()
            .filter_map(|n| n.core.as_ref().map(|c| c.status()))
            .collect();
        let max_term = statuses.iter().map(|s| s.term).max().unwrap_or(0);
        let leader = statuses
            .iter()
            .find(|s| s.role == Role::Leader && s.term == max_term);
        let Some(leader) = leader else {
            return Err(self.violation(
                Property::LivenessAfterHeal,
                format!("no leader in term {max_term} after the quiet period: {statuses:?}"),
            ));
        };
        for s in &statuses {
            let applied = self.nodes[(s.id - 1) as usize].applied.len() as u64;
            if s.leader != Some(leader.id)
                || applied < self.max_committed()
                || applied != leader.commit
            {
                return Err(self.violation(
                    Property::LivenessAfterHeal,
                    format!(
                        "after the quiet period n{} follows {:?} (leader n{}) with applied {applied}, leader commit {}, max committed {}",
                        s.id,
                        s.leader,
                        leader.id,
                        leader.commit,
                        self.max_committed()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Runs one seed.
fn run_seed(seed: u64, params: SimParams) -> Result<Stats, Violation> {
    Sim::new(seed, params).run()
}

/// The outcome of the default seeds, simulated once and shared by the property tests.
struct SuiteOutcome {
    seeds: u64,
    violations: Vec<Violation>,
    stats: Stats,
}

/// Seeds in the default suite, stepwise.
const DEFAULT_SEEDS: u64 = 500;
/// Seeds in the default suite, batched as the server does (with stalls).
const DEFAULT_BATCHED_SEEDS: u64 = 300;

/// How a suite feeds its cores.
#[derive(Clone, Copy, Debug)]
enum Feeding {
    Stepwise,
    Batched,
}

impl Feeding {
    fn params(self, seed: u64) -> SimParams {
        match self {
            Feeding::Stepwise => SimParams::for_seed(seed),
            Feeding::Batched => SimParams::batched_for_seed(seed),
        }
    }

    /// `SPLITBRAIN_SIM_BATCHED=1` picks batched feeding for the replay and soak tests.
    fn from_env() -> Feeding {
        match std::env::var("SPLITBRAIN_SIM_BATCHED").as_deref() {
            Ok("1") => Feeding::Batched,
            _ => Feeding::Stepwise,
        }
    }
}

/// Runs `seeds` seeds on two threads.
fn run_suite(first_seed: u64, seeds: u64, feeding: Feeding) -> SuiteOutcome {
    let halves: Vec<(Vec<Violation>, Stats)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2u64)
            .map(|half| {
                scope.spawn(move || {
                    let mut violations = Vec::new();
                    let mut stats = Stats::default();
                    let mut seed = first_seed + half;
                    while seed < first_seed + seeds {
                        match run_seed(seed, feeding.params(seed)) {
                            Ok(s) => stats.add(&s),
                            Err(v) => violations.push(v),
                        }
                        seed += 2;
                    }
                    (violations, stats)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut outcome = SuiteOutcome {
        seeds,
        violations: Vec::new(),
        stats: Stats::default(),
    };
    for (violations, stats) in halves {
        outcome.violations.extend(violations);
        outcome.stats.add(&stats);
    }
    outcome.violations.sort_by_key(|v| v.seed);
    outcome
}

fn default_suite() -> &'static SuiteOutcome {
    static SUITE: OnceLock<SuiteOutcome> = OnceLock::new();
    SUITE.get_or_init(|| run_suite(0, DEFAULT_SEEDS, Feeding::Stepwise))
}

fn batched_suite() -> &'static SuiteOutcome {
    static SUITE: OnceLock<SuiteOutcome> = OnceLock::new();
    SUITE.get_or_init(|| run_suite(0, DEFAULT_BATCHED_SEEDS, Feeding::Batched))
}

/// Fails the calling test with every violation of `property` in the default suites.
fn assert_holds(property: Property) {
    for (feeding, suite, batched) in [
        (Feeding::Stepwise, default_suite(), 0),
        (Feeding::Batched, batched_suite(), 1),
    ] {
        let failures: Vec<String> = suite
            .violations
            .iter()
            .filter(|v| v.property == property)
            .map(|v| v.to_string())
            .collect();
        assert!(
            failures.is_empty(),
            "{property:?} violated in {} of {} {feeding:?} seeds (replay one with \
             SPLITBRAIN_SIM_BATCHED={batched} SPLITBRAIN_SIM_SEED=<seed> cargo test -p splitbrain-raft \
             sim::replay_one_seed -- --ignored):\n{}",
            failures.len(),
            suite.seeds,
            failures.join("\n")
        );
    }
}

#[test]
fn election_safety_at_most_one_leader_per_term() {
    assert_holds(Property::ElectionSafety);
}

#[test]
fn log_matching_same_index_and_term_means_same_prefix() {
    assert_holds(Property::LogMatching);
}

#[test]
fn leader_completeness_leaders_hold_every_earlier_commit() {
    assert_holds(Property::LeaderCompleteness);
}

#[test]
fn state_machine_safety_applied_sequences_are_prefixes_of_one_sequence() {
    assert_holds(Property::StateMachineSafety);
}

#[test]
fn linearizable_reads_see_every_earlier_commit() {
    assert_holds(Property::LinearizableReads);
}

#[test]
fn persistence_matches_memory_under_the_ready_contract() {
    assert_holds(Property::PersistenceMatchesMemory);
}

#[test]
fn liveness_after_heal_a_leader_emerges_and_everyone_applies_everything() {
    assert_holds(Property::LivenessAfterHeal);
}

#[test]
fn the_default_suite_exercises_faults_snapshots_and_reads() {
    let s = default_suite().stats;
    let seeds = default_suite().seeds;
    assert!(s.leaders_elected > seeds * 2, "too few elections: {s:?}");
    assert!(s.crashes > seeds, "too few crashes: {s:?}");
    assert!(s.compactions > seeds * 5, "too few compactions: {s:?}");
    assert!(
        s.snapshots_installed > seeds / 2,
        "too few snapshot installs: {s:?}"
    );
    assert!(s.committed > seeds * 50, "too few commits: {s:?}");
    assert!(
        s.reads_served > seeds * 10,
        "too few read-index reads: {s:?}"
    );
    assert!(
        s.lease_reads_served > seeds * 5,
        "too few lease reads: {s:?}"
    );
}

#[test]
fn the_batched_suite_exercises_stalls_snapshots_and_reads() {
    let s = batched_suite().stats;
    let seeds = batched_suite().seeds;
    assert!(s.stalls > seeds * 5, "too few stalls: {s:?}");
    assert!(s.crashes > seeds, "too few crashes: {s:?}");
    assert!(
        s.snapshots_installed > seeds / 2,
        "too few snapshot installs: {s:?}"
    );
    assert!(s.committed > seeds * 50, "too few commits: {s:?}");
    assert!(
        s.lease_reads_served > seeds * 5,
        "too few lease reads: {s:?}"
    );
}

/// Thousands of seeds: `SPLITBRAIN_SIM_SEEDS=5000 cargo test -p splitbrain-raft --
/// --ignored`; `SPLITBRAIN_SIM_BATCHED=1` feeds them in batches.
#[test]
#[ignore]
fn many_seeds_hold_every_property() {
    let seeds = std::env::var("SPLITBRAIN_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let first = DEFAULT_SEEDS; // beyond the default suite
    let feeding = Feeding::from_env();
    let outcome = run_suite(first, seeds, feeding);
    let failures: Vec<String> = outcome.violations.iter().map(|v| v.to_string()).collect();
    eprintln!(
        "{seeds} {feeding:?} seeds from {first}: {:?}",
        outcome.stats
    );
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed (replay one with SPLITBRAIN_SIM_SEED=<seed> cargo test -p \
         splitbrain-raft sim::replay_one_seed -- --ignored):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Batched feeding with snapshot churn (see [`SimParams::snapshot_churn_for_seed`]):
/// `SPLITBRAIN_SIM_SEEDS=10000 cargo test -p splitbrain-raft sim::snapshot_churn --
/// --ignored`.
#[test]
#[ignore]
fn snapshot_churn_holds_every_property() {
    let seeds: u64 = std::env::var("SPLITBRAIN_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let failures: Vec<String> = (0..seeds)
        .filter_map(|seed| run_seed(seed, SimParams::snapshot_churn_for_seed(seed)).err())
        .map(|v| v.to_string())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Replays one seed: `SPLITBRAIN_SIM_SEED=<seed> cargo test -p splitbrain-raft
/// sim::replay_one_seed -- --ignored --nocapture`.
#[test]
#[ignore]
fn replay_one_seed() {
    let Some(seed) = std::env::var("SPLITBRAIN_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    else {
        return;
    };
    match run_seed(seed, Feeding::from_env().params(seed)) {
        Ok(stats) => eprintln!("seed {seed} holds: {stats:?}"),
        Err(v) => panic!("{v}"),
    }
}

/// Searches seeds `0..max_seeds` with `bugs` on (and `tune` applied) for a violation of
/// one of `expected`; then replays the seeds up to the one found with the bug off, as a
/// control that the tuned schedule alone breaks nothing. Returns the finding.
fn assert_caught(
    bugs: CoreBugs,
    max_seeds: u64,
    expected: &[Property],
    tune: impl Fn(&mut SimParams),
) -> Violation {
    let params = |seed: u64, bugs: CoreBugs| {
        let mut params = SimParams::for_seed(seed);
        tune(&mut params);
        params.bugs = bugs;
        params
    };
    let found = (0..max_seeds).find_map(|seed| run_seed(seed, params(seed, bugs)).err());
    let Some(violation) = found else {
        panic!("{bugs:?} went unnoticed for {max_seeds} seeds");
    };
    assert!(
        expected.contains(&violation.property),
        "{bugs:?} was caught, but not as {expected:?}: {violation}"
    );
    for seed in 0..=violation.seed {
        if let Err(v) = run_seed(seed, params(seed, CoreBugs::default())) {
            panic!("control run without bugs failed: {v}");
        }
    }
    eprintln!("caught {bugs:?} at seed {}: {violation}", violation.seed);
    violation
}

/// The schedule that exposes Figure 8: three nodes, one entry per append (so an old
/// entry and the new leader's no-op travel separately), crashes, no pre-vote (more
/// leader churn), a proposal every tick. With the default schedule the bug goes
/// unnoticed: batching carries the new leader's no-op together with the old entries.
fn figure_8_schedule(params: &mut SimParams) {
    params.nodes = 3;
    params.max_entries_per_append = 1;
    params.crash = 0.05;
    params.partition = 0.1;
    params.drop = 0.1;
    params.max_delay = 4;
    params.pre_vote = false;
    params.down_ticks = (2, 30);
    // Many proposals: more entries of old terms are in flight when leaders change.
    params.propose = 1.0;
}

#[test]
fn commit_old_terms_bug_violates_leader_completeness_within_1000_seeds() {
    let bugs = CoreBugs {
        commit_old_terms: true,
        ..CoreBugs::default()
    };
    assert_caught(
        bugs,
        1000,
        &[Property::LeaderCompleteness, Property::StateMachineSafety],
        figure_8_schedule,
    );
}

#[test]
fn no_truncate_bug_violates_state_machine_safety_within_100_seeds() {
    let bugs = CoreBugs {
        no_truncate: true,
        ..CoreBugs::default()
    };
    assert_caught(
        bugs,
        100,
        &[
            Property::StateMachineSafety,
            Property::LogMatching,
            Property::LeaderCompleteness,
        ],
        |_| {},
    );
}

#[test]
fn stale_reads_bug_violates_linearizable_reads_within_100_seeds() {
    let bugs = CoreBugs {
        stale_reads: true,
        ..CoreBugs::default()
    };
    assert_caught(bugs, 100, &[Property::LinearizableReads], |_| {});
}

#[test]
fn lease_trusts_clock_bug_violates_linearizable_reads_within_300_seeds() {
    let bugs = CoreBugs {
        lease_trusts_clock: true,
        ..CoreBugs::default()
    };
    assert_caught(bugs, 300, &[Property::LinearizableReads], |params| {
        // Frequent leader isolation and many lease reads; no pre-vote so the majority
        // side elects its new leader as fast as the protocol allows.
        params.nodes = 3;
        params.crash = 0.0;
        params.partition = 0.1;
        params.drop = 0.0;
        params.max_delay = 2;
        params.pre_vote = false;
        params.lease_read = 0.8;
    });
}

/// The server's forget-vote bug breaks election safety only when a node crashes between
/// granting a vote and hearing a competing candidate of the same term, and restarts in
/// time to grant that one too. It needs two candidates in one term (no pre-vote,
/// partitions to start elections), frequent short crashes and delayed messages. Even so
/// it is rare: 2 of 300 seeds in a sweep of such schedules, the best of 16 tried.
fn forget_vote_schedule(params: &mut SimParams) {
    params.nodes = 3;
    params.crash = 0.1;
    params.down_ticks = (1, 4);
    params.max_delay = 4;
    params.pre_vote = false;
    params.partition = 0.05;
}

#[test]
fn forget_vote_bug_violates_election_safety_within_2000_seeds() {
    let params = |seed: u64, forget_vote: bool| {
        let mut params = SimParams::for_seed(seed);
        forget_vote_schedule(&mut params);
        params.forget_vote = forget_vote;
        params
    };
    let found = (0..2000).find_map(|seed| run_seed(seed, params(seed, true)).err());
    let Some(violation) = found else {
        panic!("forget-vote went unnoticed for 2000 seeds");
    };
    assert!(
        matches!(
            violation.property,
            Property::ElectionSafety | Property::LogMatching | Property::StateMachineSafety
        ),
        "forget-vote was caught, but not as a double election: {violation}"
    );
    for seed in 0..=violation.seed {
        if let Err(v) = run_seed(seed, params(seed, false)) {
            panic!("control run without the bug failed: {v}");
        }
    }
    eprintln!("caught forget-vote at seed {}: {violation}", violation.seed);
}

/// A tweak of the default parameters that exposes a bug.
type Schedule<'a> = &'a dyn Fn(&mut SimParams);

/// How often each bug is caught over many seeds (`SPLITBRAIN_SIM_SEEDS`, default 1000),
/// under the same schedules as the tests above; fails if one is never caught.
#[test]
#[ignore]
fn bug_detection_rates_over_many_seeds() {
    let seeds: u64 = std::env::var("SPLITBRAIN_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let lease_schedule = |params: &mut SimParams| {
        params.nodes = 3;
        params.crash = 0.0;
        params.partition = 0.1;
        params.drop = 0.0;
        params.max_delay = 2;
        params.pre_vote = false;
        params.lease_read = 0.8;
    };
    let cases: [(CoreBugs, Schedule); 4] = [
        (
            CoreBugs {
                commit_old_terms: true,
                ..CoreBugs::default()
            },
            &figure_8_schedule,
        ),
        (
            CoreBugs {
                no_truncate: true,
                ..CoreBugs::default()
            },
            &|_| {},
        ),
        (
            CoreBugs {
                stale_reads: true,
                ..CoreBugs::default()
            },
            &|_| {},
        ),
        (
            CoreBugs {
                lease_trusts_clock: true,
                ..CoreBugs::default()
            },
            &lease_schedule,
        ),
    ];
    for (bugs, tune) in cases {
        let mut by_property: BTreeMap<Property, u64> = BTreeMap::new();
        for seed in 0..seeds {
            let mut params = SimParams::for_seed(seed);
            tune(&mut params);
            params.bugs = bugs;
            if let Err(v) = run_seed(seed, params) {
                *by_property.entry(v.property).or_default() += 1;
            }
        }
        let caught: u64 = by_property.values().sum();
        eprintln!("{bugs:?}: caught in {caught} of {seeds} seeds: {by_property:?}");
        assert!(caught > 0, "{bugs:?} never caught in {seeds} seeds");
    }
}
