//! Scripted faults: message rules, clock freezes and a restart, in an order that drives
//! a Raft cluster into one precise situation that random faults practically never reach.
//!
//! **Split vote with a restarted voter** (`--nemesis split-vote`). Raft's election safety
//! rests on a voter remembering its vote across a crash. With pre-vote on, a second vote
//! in a term can only go to a candidate that passed pre-vote before the first winner's
//! vote requests reached a majority, so a forgetful voter is exposed only if it restarts
//! between two candidates' requests of one split vote — a window of microseconds. The
//! script holds the window open:
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
//! quorum). The event says what happened; the
//! checkers (convergence's history chains, linearizability) decide whether it mattered.
//!
//! The message kinds are the bundled node's Raft messages; the network backend must be
//! able to drop and hold single messages (the proxy).

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::executor::{ClockSetting, ClusterControl, FaultState};
use crate::grudge::NodeName;
use crate::net::messages::MessageRules;
use crate::net::NetBackend;

/// A clock rate slow enough that no timer of a frozen node fires during the script
/// (a 10 ms tick takes 10 s).
pub const FROZEN_RATE: f64 = 0.001;
/// How long each step may take before the script gives up.
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
        let n = nodes.len();
        if n < 3 || n.is_multiple_of(2) {
            return Err(format!(
                "split-vote needs an odd number of nodes, at least 3 (the cluster has {n})"
            ));
        }
        let quorum = n / 2 + 1;
        let mut others: Vec<NodeName> = nodes.iter().filter(|x| *x != leader).cloned().collect();
        others.sort();
        others.shuffle(rng);
        let a_side = others[2..quorum].to_vec();
        let mut b_side = others[quorum..].to_vec();
        b_side.sort();
        let mut a_side = a_side;
        a_side.sort();
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
    let mut nodes = state.nodes.clone();
    nodes.sort();
    let Some((leader, t0)) = current_leader(cluster, &nodes).await else {
        return Err((Value::Null, "no leader to depose".into()));
    };
    let roles = SplitVoteRoles::draw(&nodes, &leader, t0, rng).map_err(|e| (Value::Null, e))?;
    let value = roles.to_json();
    match script(cluster, net, state, &roles).await {
        Ok(detail) => Ok((value, detail)),
        Err(error) => Err((value, error)),
    }
}

async fn script<C: ClusterControl, N: NetBackend>(
    cluster: &C,
    net: &N,
    state: &mut FaultState,
    r: &SplitVoteRoles,
) -> Result<String, String> {
    let t = r.term();
    let all = r.all();
    let others =
        |x: &NodeName| -> Vec<&NodeName> { all.iter().copied().filter(|y| *y != x).collect() };
    let set = |rules: MessageRules| async move {
        net.set_message_rules(&rules)
            .await
            .map_err(|e| format!("setting message rules: {e}"))
    };

    // 1. B loses its followers; only A and B campaign; their vote requests are held.
    let mut rules = MessageRules::new();
    for x in others(&r.b) {
        rules.drop(&r.b, x, &APPENDS);
    }
    for x in std::iter::once(&r.v).chain(&r.a_side).chain(&r.b_side) {
        for y in others(x) {
            rules.drop(x, y, &PRE_VOTE);
        }
    }
    for candidate in [&r.a, &r.b] {
        for x in others(candidate) {
            rules.hold(candidate, x, &VOTE);
        }
    }
    // The candidates must not answer each other's pre-votes: a refusal carries the
    // refuser's term, and a candidate of T would lift the other into T before it
    // campaigns (its campaign would then be for T + 1).
    rules
        .drop(&r.a, &r.b, &PRE_VOTE)
        .drop(&r.b, &r.a, &PRE_VOTE);
    set(rules.clone()).await?;
    // Freeze each candidate the moment it is one, so that it stays one.
    let mut frozen = Vec::new();
    let deadline = Instant::now() + STEP_TIMEOUT;
    while frozen.len() < 2 {
        for candidate in [&r.a, &r.b] {
            if frozen.contains(&candidate) {
                continue;
            }
            match cluster.role(candidate).await {
                Ok((role, term)) if role == "candidate" && term == t => {
                    freeze(cluster, state, candidate).await?;
                    frozen.push(candidate);
                    // No second campaign from it (it is frozen, but be sure).
                    for x in others(candidate) {
                        rules.drop(candidate, x, &PRE_VOTE);
                    }
                    set(rules.clone()).await?;
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
    for x in others(&r.a) {
        if *x == r.v || r.a_side.contains(x) {
            release(&mut rules, &r.a, x, &VOTE);
        } else {
            rules.drop(&r.a, x, &VOTE);
        }
        if !r.a_side.contains(x) {
            rules.drop(&r.a, x, &APPENDS);
        }
    }
    set(rules.clone()).await?;
    wait_for_role(cluster, &r.a, "leader", t).await?;

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
    wait_for_role(cluster, &r.v, "pre-candidate", t).await?;

    // 4. B's requests reach V and B's side; B's appends reach them too once it leads.
    for x in others(&r.b) {
        if *x == r.v || r.b_side.contains(x) {
            release(&mut rules, &r.b, x, &VOTE);
            release(&mut rules, &r.b, x, &APPENDS);
        } else {
            rules.drop(&r.b, x, &VOTE);
        }
    }
    set(rules.clone()).await?;
    let second = wait_for_role(cluster, &r.b, "leader", t).await;
    // B runs on; A stays frozen until the fault's stop: a leader whose timers stand
    // still never notices it lost its quorum, and keeps appending its clients' writes —
    // the entries that, with two leaders in one term, pass for B's.
    cluster
        .reset_clock(&r.b)
        .await
        .map_err(|e| format!("unfreezing {}: {e:#}", r.b))?;
    state.clocks.remove(&r.b);
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
    state.clocks.insert(
        node.to_string(),
        ClockSetting {
            offset_ms: 0,
            rate: FROZEN_RATE,
        },
    );
    cluster
        .set_clock(node, 0, FROZEN_RATE)
        .await
        .map_err(|e| format!("freezing the clock of {node}: {e:#}"))
}

async fn wait_for_role<C: ClusterControl>(
    cluster: &C,
    node: &str,
    want: &str,
    term: u64,
) -> Result<(), String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let last = match cluster.role(node).await {
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

async fn current_leader<C: ClusterControl>(
    cluster: &C,
    nodes: &[NodeName],
) -> Option<(NodeName, u64)> {
    let mut best: Option<(NodeName, u64)> = None;
    for node in nodes {
        if let Ok((role, term)) = cluster.role(node).await {
            if role == "leader" && best.as_ref().is_none_or(|(_, t)| term > *t) {
                best = Some((node.clone(), term));
            }
        }
    }
    best
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
        assert!(SplitVoteRoles::draw(&nodes(1), "n1", 1, &mut rng).is_err());
    }
}
