//! Scripted faults: message rules, clock freezes and restarts, in an order that drives
//! a Raft cluster into one precise situation that random faults practically never reach.
//! Three scripts: [`split_vote`] (`--nemesis split-vote`), [`figure_eight`]
//! (`--nemesis figure-8`) and [`slow_leader`] (`--nemesis slow-leader`, the simplest:
//! the leader's clock slowed while it is cut off from its peers). Each steers by the nodes' own view of their role, term and
//! log ([`ClusterControl::raft_view`]), gives up with an error after a few seconds at any
//! step that does not happen, and describes what happened in its event; the checkers
//! (convergence's history chains, linearizability) decide whether it mattered.
//!
//! **Split vote with a restarted voter.** Raft's election safety rests on a voter
//! remembering its vote across a crash. With pre-vote on, a second vote in a term can
//! only go to a candidate that passed pre-vote before the first winner's vote requests
//! reached a majority, so a forgetful voter is exposed only if it restarts between two
//! candidates' requests of one split vote — a window of microseconds. The script holds
//! the window open:
//!
//! 1. The leader `B` of term `T0` loses its followers (its appends are dropped) and
//!    steps down. Only `A` and `B` may ask for pre-votes; their vote requests are held.
//!    Each becomes a candidate of `T = T0 + 1` and its clock is frozen at once, so it
//!    stays one.
//! 2. `A`'s requests are delivered to the voter `V` and to `q - 2` others (`q` is the
//!    quorum): `A` leads `T`. Its appends to `V` are dropped, so `V`'s log stays as old
//!    as `B`'s.
//! 3. `V` is killed and restarted, and allowed one election timeout (it may not ask for
//!    votes itself).
//! 4. `B`'s held requests are delivered to `V` and to the rest. A correct `V` refuses (it
//!    voted for `A` in `T`); a `V` that forgot its vote grants, and `B` leads `T` too:
//!    two leaders of one term, whose logs now share indexes and terms but not entries.
//!
//! `B`'s clock is then unfrozen; `A`'s stays frozen and the rules stay until the fault's
//! stop, so both sides take client writes (a frozen leader never notices it lost its
//! quorum).
//!
//! The message kinds are the bundled node's Raft messages; the network backend must be
//! able to drop, hold and release single messages (the proxy).

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::control::{
    script_clock, start_partition, unscript_clock, ClusterControl, FaultState, RaftView, Role,
};
use crate::grudge::{Grudge, NodeName, PartitionShape};
use crate::net::messages::MessageRules;
use crate::net::NetBackend;

/// A clock rate slow enough that no timer of a frozen node fires during the script
/// (a 10 ms tick takes 10 s).
pub const FROZEN_RATE: f64 = 0.001;
/// How long each step may take before the script gives up.
/// The clock rate of `slow-leader`: the slowest clock the correct lease is built to
/// tolerate. The lease is 8 ticks against a 10-tick minimum election, so a leader whose
/// clock runs at 0.8× still ends its lease (10 real ticks) before any follower may vote
/// for a rival: the correct lease stays valid by construction, not by the luck of slow
/// elections. A lease timed to the election timeout without a margin (20 ticks, 25 real
/// ticks at 0.8×) outlasts the next election. Measured with 30 s runs, seeds 1–10:
/// `lease-trusts-clock` caught in 9 of 10 at 0.8× (10 of 10 at 0.5×, where the correct
/// lease itself is outside its assumptions: 16 real ticks against a 10-tick election).
pub const SLOW_LEADER_RATE: f64 = 0.8;

/// Slows the current leader's clock to [`SLOW_LEADER_RATE`] and cuts it off from its
/// peers (not from clients) until the fault's stop. Returns the event's value (the
/// grudge), its detail, and what failed; a half-done start is undone by the stop like
/// a whole one (the clock and the grudge are recorded before they are attempted).
pub async fn slow_leader<C: ClusterControl, N: NetBackend>(
    cluster: &C,
    net: &N,
    state: &mut FaultState,
    rng: &mut impl Rng,
) -> (Value, Option<String>, Vec<String>) {
    let mut errors = Vec::new();
    let Some(leader) = cluster.leader().await else {
        errors.push("no leader to slow down".to_string());
        return (Value::Null, None, errors);
    };
    let nodes = state.nodes.clone();
    let grudge = match Grudge::for_shape(PartitionShape::IsolateLeader, &nodes, Some(&leader), rng)
    {
        Ok(grudge) => grudge,
        Err(error) => {
            errors.push(error.to_string());
            return (Value::Null, None, errors);
        }
    };
    let detail =
        format!("leader {leader}: clock at {SLOW_LEADER_RATE}× speed, cut off from its peers");
    if let Err(error) = script_clock(cluster, state, &leader, SLOW_LEADER_RATE).await {
        errors.push(error);
    }
    start_partition(net, state, &grudge, &mut errors).await;
    (grudge.to_json(), Some(detail), errors)
}

const STEP_TIMEOUT: Duration = Duration::from_secs(4);
const POLL: Duration = Duration::from_millis(5);

const APPENDS: [&str; 2] = ["AppendEntries", "InstallSnapshot"];
const PRE_VOTE: [&str; 1] = ["PreVote"];
const VOTE: [&str; 1] = ["RequestVote"];

/// Who plays which part in the split vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitVoteRoles {
    /// The first winner.
    pub a: NodeName,
    /// The deposed leader, the second candidate.
    pub b: NodeName,
    /// The voter both need; restarted in between.
    pub v: NodeName,
    /// `A`'s other voters.
    pub a_side: Vec<NodeName>,
    /// `B`'s other voters.
    pub b_side: Vec<NodeName>,
    /// `B`'s term when the script started; the split vote is in the next.
    pub t0: u64,
}

impl SplitVoteRoles {
    /// Draws the parts for a cluster of `nodes` (odd, at least 3) led by `leader` in `t0`.
    pub fn draw(
        nodes: &[NodeName],
        leader: &str,
        t0: u64,
        rng: &mut impl Rng,
    ) -> Result<Self, String> {
        let (others, quorum) = parts("split-vote", 3, nodes, leader, rng)?;
        let a_side = sorted(&others[2..quorum]);
        let b_side = sorted(&others[quorum..]);
        Ok(SplitVoteRoles {
            a: others[0].clone(),
            b: leader.to_string(),
            v: others[1].clone(),
            a_side,
            b_side,
            t0,
        })
    }

    fn term(&self) -> u64 {
        self.t0 + 1
    }

    fn all(&self) -> Vec<&NodeName> {
        let mut all = vec![&self.a, &self.b, &self.v];
        all.extend(&self.a_side);
        all.extend(&self.b_side);
        all
    }

    pub fn to_json(&self) -> Value {
        json!({
            "first": self.a, "second": self.b, "voter": self.v,
            "first_side": self.a_side, "second_side": self.b_side,
            "term": self.term(),
        })
    }
}

/// Runs the split vote; returns the roles (as the event's value) and what happened, or
/// why the script could not go on (the caller heals either way).
pub async fn split_vote<C: ClusterControl, N: NetBackend>(
    cluster: &C,
    net: &N,
    state: &mut FaultState,
    rng: &mut impl Rng,
) -> Result<(Value, String), (Value, String)> {
    let (nodes, leader, t0) = settled_leader(cluster, state).await?;
    let roles = SplitVoteRoles::draw(&nodes, &leader, t0, rng).map_err(|e| (Value::Null, e))?;
    with_value(roles.to_json(), script(cluster, net, state, &roles).await)
}

async fn script<C: ClusterControl, N: NetBackend>(
    cluster: &C,
    net: &N,
    state: &mut FaultState,
    r: &SplitVoteRoles,
) -> Result<String, String> {
    let t = r.term();
    let all = r.all();

    // 1. B loses its followers; only A and B campaign; their vote requests are held.
    let mut rules = MessageRules::new();
    for x in others(&all, &r.b) {
        rules.drop(&r.b, x, &APPENDS);
    }
    for x in std::iter::once(&r.v).chain(&r.a_side).chain(&r.b_side) {
        for y in others(&all, x) {
            rules.drop(x, y, &PRE_VOTE);
        }
    }
    for candidate in [&r.a, &r.b] {
        for x in others(&all, candidate) {
            rules.hold(candidate, x, &VOTE);
        }
    }
    // The candidates must not answer each other's pre-votes: a refusal carries the
    // refuser's term, and a candidate of T would lift the other into T before it
    // campaigns (its campaign would then be for T + 1).
    rules
        .drop(&r.a, &r.b, &PRE_VOTE)
        .drop(&r.b, &r.a, &PRE_VOTE);
    set(net, &rules).await?;
    tracing::info!(roles = %r.to_json(), "split-vote: only A and B campaign; their requests are held");
    // Freeze each candidate the moment it is one, so that it stays one.
    let mut frozen = Vec::new();
    let deadline = Instant::now() + STEP_TIMEOUT;
    while frozen.len() < 2 {
        for candidate in [&r.a, &r.b] {
            if frozen.contains(&candidate) {
                continue;
            }
            match role(cluster, candidate).await {
                Ok((role, term)) if role == Role::Candidate && term == t => {
                    freeze(cluster, state, candidate).await?;
                    frozen.push(candidate);
                    // No second campaign from it (it is frozen, but be sure).
                    for x in others(&all, candidate) {
                        rules.drop(candidate, x, &PRE_VOTE);
                    }
                    set(net, &rules).await?;
                }
                Ok((_, term)) if term > t => {
                    return Err(format!(
                        "{candidate} reached term {term} before the split vote of term {t}"
                    ));
                }
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} and {} did not both become candidates of term {t}",
                r.a, r.b
            ));
        }
        tokio::time::sleep(POLL).await;
    }

    // 2. A's requests reach V and A's side; A's appends do not reach V (nor B's side).
    for x in others(&all, &r.a) {
        if *x == r.v || r.a_side.contains(x) {
            release(&mut rules, &r.a, x, &VOTE);
        } else {
            rules.drop(&r.a, x, &VOTE);
        }
        if !r.a_side.contains(x) {
            rules.drop(&r.a, x, &APPENDS);
        }
    }
    set(net, &rules).await?;
    wait_for_role(cluster, &r.a, Role::Leader, t).await?;

    // 3. V restarts (forgetting nothing, if correct) and sits out one election timeout.
    state.killed.insert(r.v.clone());
    cluster
        .kill(&r.v)
        .await
        .map_err(|e| format!("killing {}: {e:#}", r.v))?;
    cluster
        .restart(&r.v)
        .await
        .map_err(|e| format!("restarting {}: {e:#}", r.v))?;
    state.killed.remove(&r.v);
    // A restarted node refuses votes for one election timeout; once its own timer has
    // fired (it asks for pre-votes, which are dropped) that time is over.
    wait_for_role(cluster, &r.v, Role::PreCandidate, t).await?;

    // 4. B's requests reach V and B's side; B's appends reach them too once it leads.
    for x in others(&all, &r.b) {
        if *x == r.v || r.b_side.contains(x) {
            release(&mut rules, &r.b, x, &VOTE);
            release(&mut rules, &r.b, x, &APPENDS);
        } else {
            rules.drop(&r.b, x, &VOTE);
        }
    }
    set(net, &rules).await?;
    let second = wait_for_role(cluster, &r.b, Role::Leader, t).await;
    // B runs on; A stays frozen until the fault's stop: a leader whose timers stand
    // still never notices it lost its quorum, and keeps appending its clients' writes —
    // the entries that, with two leaders in one term, pass for B's.
    unfreeze(cluster, state, &r.b).await?;
    Ok(match second {
        Ok(()) => format!(
            "two leaders in term {t}: {} (votes of {}) and {} (votes of {}); {} voted twice after its restart",
            r.a,
            names(std::iter::once(&r.v).chain(&r.a_side)),
            r.b,
            names(std::iter::once(&r.v).chain(&r.b_side)),
            r.v
        ),
        Err(_) => format!(
            "{} led term {t}; after restarting, {} refused {}'s request of the same term",
            r.a, r.v, r.b
        ),
    })
}

/// The nodes other than `leader`, shuffled, and the quorum, for a script that needs an
/// odd cluster of at least `min` nodes.
fn parts(
    script: &str,
    min: usize,
    nodes: &[NodeName],
    leader: &str,
    rng: &mut impl Rng,
) -> Result<(Vec<NodeName>, usize), String> {
    let n = nodes.len();
    if n < min || n.is_multiple_of(2) {
        return Err(format!(
            "{script} needs an odd number of nodes, at least {min} (the cluster has {n})"
        ));
    }
    let mut others: Vec<NodeName> = nodes.iter().filter(|x| *x != leader).cloned().collect();
    others.sort();
    others.shuffle(rng);
    Ok((others, n / 2 + 1))
}

fn sorted(nodes: &[NodeName]) -> Vec<NodeName> {
    let mut nodes = nodes.to_vec();
    nodes.sort();
    nodes
}

/// Every node of `all` but `x`.
fn others<'a>(all: &[&'a NodeName], x: &str) -> Vec<&'a NodeName> {
    all.iter().copied().filter(|y| *y != x).collect()
}

async fn set<N: NetBackend>(net: &N, rules: &MessageRules) -> Result<(), String> {
    net.set_message_rules(rules)
        .await
        .map_err(|e| format!("setting message rules: {e}"))
}

/// The cluster's nodes (sorted), its settled leader and that leader's term.
async fn settled_leader<C: ClusterControl>(
    cluster: &C,
    state: &FaultState,
) -> Result<(Vec<NodeName>, NodeName, u64), (Value, String)> {
    let mut nodes = state.nodes.clone();
    nodes.sort();
    match current_leader(cluster, &nodes).await {
        Some((leader, term)) => Ok((nodes, leader, term)),
        None => Err((Value::Null, "no settled leader to start from".into())),
    }
}

/// A script's outcome with the roles it drew, as the event's value either way.
fn with_value(
    value: Value,
    outcome: Result<String, String>,
) -> Result<(Value, String), (Value, String)> {
    match outcome {
        Ok(detail) => Ok((value, detail)),
        Err(error) => Err((value, error)),
    }
}

/// Stops holding (and dropping) `kinds` on from→to: held messages are delivered.
fn release(rules: &mut MessageRules, from: &str, to: &str, kinds: &[&str]) {
    // `hold` then `drop` of nothing would leave them held; rebuild the link's rule.
    let mut rule = rules.rule(from, to);
    for kind in kinds {
        rule.drop.remove(*kind);
        rule.hold.remove(*kind);
    }
    rules.set(from, to, rule);
}

fn names<'a>(nodes: impl Iterator<Item = &'a NodeName>) -> String {
    nodes.map(String::as_str).collect::<Vec<_>>().join(", ")
}

async fn freeze<C: ClusterControl>(
    cluster: &C,
    state: &mut FaultState,
    node: &str,
) -> Result<(), String> {
    script_clock(cluster, state, node, FROZEN_RATE).await
}

async fn wait_for_role<C: ClusterControl>(
    cluster: &C,
    node: &str,
    want: Role,
    term: u64,
) -> Result<(), String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let last = match role(cluster, node).await {
            Ok((role, t)) if role == want && t == term => return Ok(()),
            Ok((role, t)) => format!("{role} of term {t}"),
            Err(e) => format!("no answer ({e:#})"),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "{node} did not become {want} of term {term} (last: {last})"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn role<C: ClusterControl>(cluster: &C, node: &str) -> Result<(Role, u64), String> {
    cluster
        .raft_view(node)
        .await
        .map(|v| (v.role, v.term))
        .map_err(|e| format!("{e:#}"))
}

/// The leader and its term once the cluster is settled: one leader, every other node
/// its follower in the same term (a script right after another fault waits for this).
async fn current_leader<C: ClusterControl>(
    cluster: &C,
    nodes: &[NodeName],
) -> Option<(NodeName, u64)> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let mut leaders = Vec::new();
        let mut terms = Vec::new();
        for node in nodes {
            match role(cluster, node).await {
                Ok((role, term)) => {
                    if role == Role::Leader {
                        leaders.push((node.clone(), term));
                    } else if role != Role::Follower {
                        terms.push(u64::MAX);
                    }
                    terms.push(term);
                }
                Err(_) => terms.push(u64::MAX),
            }
        }
        if let [(leader, term)] = leaders.as_slice() {
            if terms.iter().all(|t| t == term) {
                return Some((leader.clone(), *term));
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Who plays which part in Figure 8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureEightRoles {
    /// The leader whose old-term entries get committed by counting.
    pub l: NodeName,
    /// The one follower that receives them while `L` has no quorum.
    pub h: NodeName,
    /// The leader of the next term, whose entries take their place in the end.
    pub s: NodeName,
    /// Followers that receive `L`'s old entries one message at a time.
    pub x: Vec<NodeName>,
    /// Followers that never receive them.
    pub y: Vec<NodeName>,
    /// `L`'s term when the script started.
    pub t0: u64,
}

impl FigureEightRoles {
    /// Draws the parts for a cluster of `nodes` (odd, at least 5) led by `leader`.
    pub fn draw(
        nodes: &[NodeName],
        leader: &str,
        t0: u64,
        rng: &mut impl Rng,
    ) -> Result<Self, String> {
        let (others, quorum) = parts("figure-8", 5, nodes, leader, rng)?;
        let x = sorted(&others[2..quorum]);
        let y = sorted(&others[quorum..]);
        Ok(FigureEightRoles {
            l: leader.to_string(),
            h: others[0].clone(),
            s: others[1].clone(),
            x,
            y,
            t0,
        })
    }

    fn all(&self) -> Vec<&NodeName> {
        let mut all = vec![&self.l, &self.h, &self.s];
        all.extend(&self.x);
        all.extend(&self.y);
        all
    }

    pub fn to_json(&self) -> Value {
        json!({
            "leader": self.l, "holder": self.h, "next_leader": self.s,
            "stepped": self.x, "starved": self.y, "term": self.t0,
        })
    }
}

/// Entries per append message of the bundled node: a follower further behind than this
/// receives old entries in a message without the new leader's own entry.
const APPEND_BATCH: u64 = 64;

/// Raft's Figure 8 (`--nemesis figure-8`), on a live cluster:
///
/// 1. The leader `L` (frozen, so it keeps leading without a quorum) appends its clients'
///    writes; only `H` receives them. The others elect `S` in the next term; `S` is
///    frozen too and its appends are dropped, so its own writes stay on `S` alone.
///    This goes on until `L` is more than one append message ahead of the `X` nodes.
/// 2. `L` is unfrozen, steps down and wins the term after `S`'s with `H`, `X` and `Y`.
///    Its appends reach `H` freely, the `X` nodes one message at a time (held in the
///    proxy), the `Y` nodes never; released one by one until `L`'s commit index moves.
///    A correct leader commits only once its own first entry is on a majority; one that
///    counts replicas of old entries commits them as soon as `L`, `H` and the `X` nodes
///    hold them — while its own entry is on fewer than a majority.
/// 3. `L` falls silent. `S`, whose last entry is of a later term than anything the `X`
///    and `Y` nodes hold, wins the next term and overwrites the entries `L` called
///    committed (and applied).
pub async fn figure_eight<C: ClusterControl, N: NetBackend>(
    cluster: &C,
    net: &N,
    state: &mut FaultState,
    rng: &mut impl Rng,
) -> Result<(Value, String), (Value, String)> {
    let (nodes, leader, t0) = settled_leader(cluster, state).await?;
    let roles = FigureEightRoles::draw(&nodes, &leader, t0, rng).map_err(|e| (Value::Null, e))?;
    with_value(
        roles.to_json(),
        figure_eight_script(cluster, net, state, &roles).await,
    )
}

async fn figure_eight_script<C: ClusterControl, N: NetBackend>(
    cluster: &C,
    net: &N,
    state: &mut FaultState,
    r: &FigureEightRoles,
) -> Result<String, String> {
    let all = r.all();

    // 0. The X nodes fall behind while the others commit at full speed, until L is a
    //    little less than a whole number of append messages ahead of them: then a few
    //    more entries make a message boundary fall among them (see below).
    let mut rules = MessageRules::new();
    for x in &r.x {
        rules.hold(&r.l, x, &APPENDS);
    }
    set(net, &rules).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut behind = 0;
    for x in &r.x {
        behind = behind.max(view(cluster, x).await?.last_index);
    }
    // Aim a few entries short of a boundary: L appends entries of its old term, with
    // no quorum, slowly (its clients wait out their timeouts), and each one moves the
    // boundary closer. Freezing L takes a moment, so a target overshot is tried again.
    let deadline = Instant::now() + 2 * STEP_TIMEOUT;
    let old_start = loop {
        let ahead = view(cluster, &r.l).await?.last_index.saturating_sub(behind);
        if ahead >= APPEND_BATCH
            && (APPEND_BATCH - 3..=APPEND_BATCH - 2).contains(&(ahead % APPEND_BATCH))
        {
            // 1. L leads on without a quorum (frozen), its entries reach H only.
            freeze(cluster, state, &r.l).await?;
            let mut rules = MessageRules::new();
            for z in others(&all, &r.l) {
                if *z != r.h {
                    rules.drop(&r.l, z, &APPENDS);
                }
            }
            set(net, &rules).await?;
            let start = view(cluster, &r.l).await?.last_index;
            let ahead = start.saturating_sub(behind) % APPEND_BATCH;
            if ahead >= APPEND_BATCH - 4 {
                break start;
            }
            tracing::debug!(ahead, "figure-8: overshot the boundary, trying again");
            let mut rules = MessageRules::new();
            for x in &r.x {
                rules.hold(&r.l, x, &APPENDS);
            }
            set(net, &rules).await?;
            unfreeze(cluster, state, &r.l).await?;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not get to just short of an append message ahead of {} (too few writes)",
                r.l,
                names(r.x.iter())
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };

    // 1. (continued) S wins the next term.
    let mut rules = MessageRules::new();
    for z in others(&all, &r.l) {
        if *z != r.h {
            rules.drop(&r.l, z, &APPENDS);
        }
    }
    for z in others(&all, &r.s) {
        rules.drop(&r.s, z, &APPENDS);
    }
    for voter in all.iter().filter(|z| ***z != r.s) {
        for z in others(&all, voter) {
            rules.drop(voter, z, &PRE_VOTE);
        }
    }
    set(net, &rules).await?;
    tracing::info!(roles = %r.to_json(), "figure-8: L leads frozen, its entries reach H only");
    let t_s = wait_for_leader_above(cluster, &r.s, r.t0).await?;
    freeze(cluster, state, &r.s).await?;
    tracing::info!(term = t_s, node = %r.s, "figure-8: S leads, frozen");
    // The X nodes will receive L's entries from `behind + 1` on in messages of
    // APPEND_BATCH; the last one also carries L's first entry of its next term. Wait
    // until some of the entries L appends now (uncommitted, of its old term) fall into
    // an earlier message: then they reach a majority without that first entry.
    let deadline = Instant::now() + 3 * STEP_TIMEOUT;
    loop {
        let last = view(cluster, &r.l).await?.last_index;
        let uncommitted = last.saturating_sub(old_start);
        if uncommitted > 0 && last.saturating_sub(behind) % APPEND_BATCH < uncommitted {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} took {uncommitted} writes without a quorum, too few to span an append message",
                r.l
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!(
        behind,
        old_start,
        "figure-8: L's uncommitted entries span an append message boundary"
    );
    // 2. L wins the term after S's; its appends reach the X nodes one at a time.
    let mut rules = MessageRules::new();
    for z in others(&all, &r.l) {
        if r.x.contains(z) {
            rules.hold(&r.l, z, &APPENDS);
        } else if *z != r.h {
            rules.drop(&r.l, z, &APPENDS);
        }
    }
    for z in others(&all, &r.s) {
        rules.drop(&r.s, z, &APPENDS);
    }
    for voter in all.iter().filter(|z| ***z != r.l) {
        for z in others(&all, voter) {
            rules.drop(voter, z, &PRE_VOTE);
        }
    }
    set(net, &rules).await?;
    unfreeze(cluster, state, &r.l).await?;
    // Its last entry as a deposed leader: the new term's first entry follows it.
    let deadline = Instant::now() + STEP_TIMEOUT;
    let old_last = loop {
        let l = view(cluster, &r.l).await?;
        if l.role != Role::Leader {
            break l.last_index;
        }
        if Instant::now() >= deadline {
            return Err(format!("{} did not step down", r.l));
        }
        tokio::time::sleep(POLL).await;
    };
    let t_l = wait_for_leader_above(cluster, &r.l, t_s).await?;
    tracing::info!(term = t_l, old_last, "figure-8: L leads again");
    let first_new = old_last + 1;
    let commit_before = view(cluster, &r.l).await?.commit_index;
    let deadline = Instant::now() + STEP_TIMEOUT;
    let commit = 'release: loop {
        for x in &r.x {
            net.release_held(&r.l, x, 1)
                .await
                .map_err(|e| format!("releasing a message to {x}: {e}"))?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let l = view(cluster, &r.l).await?;
        if l.commit_index > commit_before {
            break 'release l.commit_index;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{}'s commit index stayed at {commit_before} while its appends reached {}",
                r.l,
                names(r.x.iter())
            ));
        }
    };

    tracing::info!(commit, "figure-8: L's commit index moved");
    // 3. L falls silent; S, with the later last term, wins the next term.
    let mut rules = MessageRules::new();
    for z in others(&all, &r.l) {
        rules.drop(&r.l, z, &APPENDS);
    }
    for voter in all.iter().filter(|z| ***z != r.s) {
        for z in others(&all, voter) {
            rules.drop(voter, z, &PRE_VOTE);
        }
    }
    set(net, &rules).await?;
    unfreeze(cluster, state, &r.s).await?;
    let s_won = wait_for_leader_above(cluster, &r.s, t_l).await;
    let committed = if commit < first_new {
        format!(
            "{} (leading term {t_l}) committed up to index {commit}, entries of term {} or older, before its own first entry (index {first_new}) reached a majority",
            r.l, r.t0
        )
    } else {
        format!(
            "{} (leading term {t_l}) committed up to index {commit}, including its own first entry (index {first_new})",
            r.l
        )
    };
    Ok(match s_won {
        Ok(term) => format!(
            "{committed}; then {} (last entry of term {t_s}) won term {term} and overwrote them",
            r.s
        ),
        Err(_) => format!("{committed}; {} could not win a later term", r.s),
    })
}

async fn view<C: ClusterControl>(cluster: &C, node: &str) -> Result<RaftView, String> {
    cluster
        .raft_view(node)
        .await
        .map_err(|e| format!("{node}: {e:#}"))
}

async fn unfreeze<C: ClusterControl>(
    cluster: &C,
    state: &mut FaultState,
    node: &str,
) -> Result<(), String> {
    unscript_clock(cluster, state, node).await
}

/// Waits until `node` leads a term above `term`; returns that term.
async fn wait_for_leader_above<C: ClusterControl>(
    cluster: &C,
    node: &str,
    term: u64,
) -> Result<u64, String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let last = match role(cluster, node).await {
            Ok((role, t)) if role == Role::Leader && t > term => return Ok(t),
            Ok((role, t)) => format!("{role} of term {t}"),
            Err(e) => format!("no answer ({e})"),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "{node} did not lead a term above {term} (last: {last})"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<NodeName> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn roles_give_each_candidate_exactly_a_quorum_with_the_shared_voter() {
        for n in [3usize, 5, 7, 9] {
            for seed in 0..20 {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let r = SplitVoteRoles::draw(&nodes(n), "n2", 4, &mut rng).unwrap();
                let quorum = n / 2 + 1;
                assert_eq!(r.b, "n2");
                assert_eq!(2 + r.a_side.len(), quorum, "A, V and A's side");
                assert_eq!(2 + r.b_side.len(), quorum, "B, V and B's side");
                let mut all: Vec<&NodeName> = r.all();
                all.sort();
                all.dedup();
                assert_eq!(all.len(), n, "every node plays exactly one part");
                assert_eq!(r.to_json()["term"], 5);
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        assert!(SplitVoteRoles::draw(&nodes(4), "n1", 1, &mut rng).is_err());
        for n in [5usize, 7, 9] {
            let r = FigureEightRoles::draw(&nodes(n), "n3", 2, &mut rng).unwrap();
            let quorum = n / 2 + 1;
            assert_eq!(r.l, "n3");
            assert_eq!(
                2 + r.x.len(),
                quorum,
                "L, H and the X nodes hold the old entries"
            );
            assert!(
                1 + r.x.len() + r.y.len() >= quorum,
                "S can win with X and Y"
            );
            let mut all: Vec<&NodeName> = r.all();
            all.sort();
            all.dedup();
            assert_eq!(all.len(), n);
        }
        assert!(FigureEightRoles::draw(&nodes(3), "n1", 1, &mut rng).is_err());
        assert!(SplitVoteRoles::draw(&nodes(1), "n1", 1, &mut rng).is_err());
    }
}
