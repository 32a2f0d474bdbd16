//! Scripted scenarios: a hand-driven cluster where the test decides which node
//! campaigns, which messages arrive and who crashes. Each test reproduces one situation
//! from the Raft paper or thesis and names the property it defends; the random
//! simulation (`sim.rs`) covers the same properties statistically.

use std::collections::BTreeMap;

use super::{
    Config, CoreBugs, Entry, HardState, Message, MessageBody, NodeId, RaftNode, Restored, Role,
    Snapshot,
};

/// What a node persisted, and what it applied (its state machine).
#[derive(Default, Clone)]
struct Store {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    applied: Vec<Entry>,
}

/// A cluster driven by hand. Messages wait in `outbox` until a test delivers them.
struct Manual {
    size: u64,
    bugs: CoreBugs,
    pre_vote: bool,
    max_entries: usize,
    nodes: BTreeMap<NodeId, RaftNode>,
    stores: BTreeMap<NodeId, Store>,
    outbox: Vec<Message>,
    /// Every Ready seen: (node, the Ready, its last persisted index once handled).
    readies: Vec<(NodeId, super::Ready, u64)>,
}

impl Manual {
    fn new(size: u64, pre_vote: bool, max_entries: usize, bugs: CoreBugs) -> Manual {
        let mut cluster = Manual {
            size,
            bugs,
            pre_vote,
            max_entries,
            nodes: BTreeMap::new(),
            stores: BTreeMap::new(),
            outbox: Vec::new(),
            readies: Vec::new(),
        };
        for id in 1..=size {
            cluster.stores.insert(id, Store::default());
            cluster.start(id);
        }
        cluster
    }

    fn start(&mut self, id: NodeId) {
        let mut config = Config::new(id, (1..=self.size).collect(), 7);
        config.pre_vote = self.pre_vote;
        config.max_entries_per_append = self.max_entries;
        config.bugs = self.bugs;
        let store = self.stores.entry(id).or_default();
        store.applied.clear();
        let restored = Restored {
            hard_state: store.hard_state,
            snapshot: store.snapshot.clone(),
            entries: store.entries.clone(),
        };
        self.nodes.insert(id, RaftNode::new(config, restored));
        self.flush(id);
    }

    fn crash(&mut self, id: NodeId) {
        self.nodes.remove(&id);
        self.outbox.retain(|m| m.to != id && m.from != id);
    }

    fn node(&self, id: NodeId) -> &RaftNode {
        &self.nodes[&id]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut RaftNode {
        self.nodes
            .get_mut(&id)
            .expect("scenario addresses a running node")
    }

    /// Handles every Ready of `id` per the contract.
    fn flush(&mut self, id: NodeId) {
        while let Some(node) = self.nodes.get_mut(&id) {
            if !node.has_ready() {
                break;
            }
            let ready = node.ready();
            let store = self.stores.entry(id).or_default();
            if let Some(s) = &ready.snapshot {
                store.entries.retain(|e| e.index > s.index);
                store.snapshot = Some(s.clone());
            }
            if let Some(from) = ready.truncate_from {
                store.entries.retain(|e| e.index < from);
            }
            store.entries.extend(ready.entries.iter().cloned());
            if let Some(hs) = ready.hard_state {
                store.hard_state = hs;
            }
            self.outbox.extend(ready.messages.iter().cloned());
            store.applied.extend(ready.committed.iter().cloned());
            let persisted = store.entries.last().map_or(0, |e| e.index);
            self.readies.push((id, ready, persisted));
        }
    }

    fn tick(&mut self, id: NodeId, times: u64) {
        for _ in 0..times {
            self.node_mut(id).tick();
            self.flush(id);
        }
    }

    /// Delivers matching messages (and those they cause) until none match; the others
    /// stay queued.
    fn deliver(&mut self, pass: impl Fn(&Message) -> bool) {
        while self.deliver_round(&pass) {}
    }

    /// Delivers the currently queued matching messages once; false if there were none.
    fn deliver_round(&mut self, pass: &dyn Fn(&Message) -> bool) -> bool {
        let (now, later): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.outbox)
            .into_iter()
            .partition(|m| pass(m));
        self.outbox = later;
        if now.is_empty() {
            return false;
        }
        for msg in now {
            let to = msg.to;
            if let Some(node) = self.nodes.get_mut(&to) {
                node.step(msg);
                self.flush(to);
            }
        }
        true
    }

    fn deliver_all(&mut self) {
        self.deliver(|_| true);
    }

    /// Deliver only among `group`, dropping nothing else.
    fn deliver_within(&mut self, group: &[NodeId]) {
        let group = group.to_vec();
        self.deliver(move |m| group.contains(&m.from) && group.contains(&m.to));
    }

    fn drop_all(&mut self) {
        self.outbox.clear();
    }

    /// `id` campaigns (without pre-vote) and the running `voters` are willing to listen.
    fn campaign(&mut self, id: NodeId, voters: &[NodeId]) {
        for v in voters {
            self.node_mut(*v).forget_leader_contact();
        }
        self.node_mut(id).force_campaign();
        self.flush(id);
    }

    fn role(&self, id: NodeId) -> Role {
        self.node(id).status().role
    }

    fn datas(&self, id: NodeId) -> Vec<(u64, u64, Vec<u8>)> {
        self.stores[&id]
            .applied
            .iter()
            .map(|e| (e.index, e.term, e.data.clone()))
            .collect()
    }
}

fn is_append_carrying(m: &Message, index: u64) -> bool {
    matches!(&m.body, MessageBody::AppendEntries { entries, .. } if entries.iter().any(|e| e.index == index))
}

/// Raft Figure 8, up to the point where the bug matters: returns the cluster with n1
/// leading term 3, its term-1 entry "x" at index 2 stored on n1, n2, n3 (a majority) and
/// its own no-op at index 3 only on n1 and n2.
fn figure_8_until_old_entry_on_majority(bugs: CoreBugs) -> Manual {
    let mut c = Manual::new(5, false, 1, bugs);
    // (a) n1 leads term 1; its no-op (index 1) is committed everywhere.
    c.campaign(1, &[2, 3, 4, 5]);
    c.deliver_all();
    assert_eq!(c.role(1), Role::Leader);
    c.tick(1, 2);
    c.deliver_all();
    // n1 appends x at index 2 and gets it only to n2.
    assert_eq!(c.node_mut(1).propose(b"x".to_vec()), Ok((2, 1)));
    c.flush(1);
    c.deliver_within(&[1, 2]);
    c.drop_all();
    // (b) n1 crashes; n5 leads term 2 with votes from n3, n4 and appends its no-op at
    // index 2, which reaches nobody.
    c.crash(1);
    c.campaign(5, &[3, 4]);
    c.deliver(|m| !matches!(m.body, MessageBody::AppendEntries { .. }) && m.to != 2 && m.from != 2);
    assert_eq!(c.role(5), Role::Leader);
    assert_eq!(c.node(5).log_terms(), vec![(1, 1), (2, 2)]);
    c.drop_all();
    c.crash(5);
    // (c) n1 restarts and leads term 3 (votes from n2, n3), appends its no-op at index 3
    // and replicates x (index 2) to n3 — but the no-op never reaches n3.
    c.start(1);
    // Term 2 is taken (n3 and n4 voted for n5), so n1 needs two campaigns.
    for _ in 0..2 {
        c.campaign(1, &[2, 3, 4]);
        c.deliver(|m| !matches!(m.body, MessageBody::AppendEntries { .. }));
    }
    assert_eq!(c.role(1), Role::Leader);
    assert_eq!(c.node(1).status().term, 3);
    let group = |m: &Message| [1, 2, 3].contains(&m.from) && [1, 2, 3].contains(&m.to);
    loop {
        // n3 first rejects the probe for index 3 (it lacks index 2), then gets x; after
        // that, appends carrying index 3 to n3 are lost.
        let n3_has_x = c.node(3).status().last_index >= 2;
        let pass = |m: &Message| group(m) && !(n3_has_x && m.to == 3 && is_append_carrying(m, 3));
        if !c.deliver_round(&pass) {
            break;
        }
    }
    c.drop_all();
    let terms: Vec<_> = [2u64, 3].iter().map(|&id| c.node(id).log_terms()).collect();
    assert_eq!(
        terms[0],
        vec![(1, 1), (2, 1), (3, 3)],
        "n2 holds x and the term-3 no-op"
    );
    assert_eq!(terms[1], vec![(1, 1), (2, 1)], "n3 holds x only");
    c
}

/// (d) n1 crashes; n5 restarts and wins term 4 with n3 and n4 (its last term 2 beats
/// their 1), then overwrites index 2 everywhere it replicates.
fn figure_8_finish(c: &mut Manual) {
    c.crash(1);
    c.start(5);
    c.campaign(5, &[2, 3, 4]);
    c.deliver_all();
    if c.role(5) != Role::Leader {
        // The first campaign may tie with n1's term 3; try again one term higher.
        c.campaign(5, &[2, 3, 4]);
        c.deliver_all();
    }
    assert_eq!(c.role(5), Role::Leader);
    for _ in 0..5 {
        c.tick(5, 2);
        c.deliver_all();
    }
}

#[test]
fn figure_8_leader_does_not_commit_an_old_term_entry_by_counting_replicas() {
    let mut c = figure_8_until_old_entry_on_majority(CoreBugs::default());
    // x (term 1) is on a majority, but n1 leads term 3: §5.4.2 forbids counting.
    assert_eq!(c.node(1).status().commit, 1);
    assert!(c.datas(1).iter().all(|(_, _, d)| d != b"x"));
    figure_8_finish(&mut c);
    // n5's term-2 entry won index 2 and x is gone; nobody ever applied x.
    for id in [2, 3, 4, 5] {
        let applied = c.datas(id);
        assert!(applied.len() >= 3, "n{id} applied {applied:?}");
        assert_eq!(
            (applied[1].0, applied[1].1),
            (2, 2),
            "n{id} applied {applied:?}"
        );
    }
    for id in 1..=5 {
        assert!(
            c.datas(id).iter().all(|(_, _, d)| d != b"x"),
            "n{id} applied x"
        );
    }
}

#[test]
fn figure_8_with_commit_old_terms_bug_state_machines_diverge() {
    let bugs = CoreBugs {
        commit_old_terms: true,
        ..CoreBugs::default()
    };
    let mut c = figure_8_until_old_entry_on_majority(bugs);
    // The bug: n1 counts x's replicas and commits (and applies) it.
    assert_eq!(c.node(1).status().commit, 2);
    let n1_applied = c.datas(1);
    assert_eq!(n1_applied[1], (2, 1, b"x".to_vec()));
    figure_8_finish(&mut c);
    let n5_applied = c.datas(5);
    assert_eq!((n5_applied[1].0, n5_applied[1].1), (2, 2));
    assert_ne!(
        n1_applied[1], n5_applied[1],
        "state-machine safety is violated at index 2"
    );
}

/// Elects n1 in a healthy 3-node cluster and lets it commit its no-op everywhere.
fn healthy_three(pre_vote: bool) -> Manual {
    let mut c = Manual::new(3, pre_vote, 64, CoreBugs::default());
    c.campaign(1, &[2, 3]);
    c.deliver_all();
    c.tick(1, 2);
    c.deliver_all();
    assert_eq!(c.role(1), Role::Leader);
    c
}

#[test]
fn pre_vote_rejoining_node_does_not_depose_a_healthy_leader() {
    let mut c = healthy_three(true);
    let term = c.node(1).status().term;
    // n3 is cut off for a long time while n1 and n2 keep exchanging heartbeats.
    for _ in 0..50 {
        c.tick(3, 1);
        c.tick(1, 1);
        c.tick(2, 1);
        c.deliver_within(&[1, 2]);
        c.outbox.retain(|m| m.to != 3 && m.from != 3);
    }
    assert_eq!(
        c.node(3).status().term,
        term,
        "pre-votes do not bump the term"
    );
    // Healed: n3 rejoins without disturbing anyone.
    c.tick(1, 2);
    c.deliver_all();
    c.tick(1, 2);
    c.deliver_all();
    assert_eq!(c.role(1), Role::Leader);
    for id in 1..=3 {
        assert_eq!(c.node(id).status().term, term);
        assert_eq!(c.node(id).status().leader, Some(1));
    }
}

#[test]
fn without_pre_vote_the_same_rejoin_deposes_the_leader() {
    // The control for the test above: it shows the scenario can disrupt.
    let mut c = healthy_three(false);
    let term = c.node(1).status().term;
    for _ in 0..50 {
        c.tick(3, 1);
        c.tick(1, 1);
        c.tick(2, 1);
        c.deliver_within(&[1, 2]);
        c.outbox.retain(|m| m.to != 3 && m.from != 3);
    }
    assert!(c.node(3).status().term > term);
    c.tick(1, 2);
    c.deliver_all();
    assert!(
        c.node(1).status().term > term,
        "the stale term reply deposed n1"
    );
}

#[test]
fn check_quorum_isolated_leader_steps_down_and_loses_its_reads() {
    let mut c = healthy_three(true);
    c.node_mut(1).read_index(42).expect("n1 leads");
    c.flush(1);
    c.drop_all();
    // Two check-quorum windows without any answer.
    c.tick(1, 2 * 20);
    assert_ne!(c.role(1), Role::Leader);
    let lost: Vec<u64> = c
        .readies
        .iter()
        .flat_map(|(_, r, _)| r.lost_reads.clone())
        .collect();
    assert_eq!(lost, vec![42]);
    assert!(c.node_mut(1).propose(b"y".to_vec()).is_err());
}

#[test]
fn votes_and_acknowledgements_are_persisted_in_the_ready_that_sends_them() {
    let mut c = healthy_three(true);
    c.node_mut(1).propose(b"y".to_vec()).expect("n1 leads");
    c.flush(1);
    c.deliver_all();
    let mut votes = 0;
    let mut acks = 0;
    for (id, ready, persisted) in &c.readies {
        for m in &ready.messages {
            match &m.body {
                MessageBody::RequestVoteResponse { granted: true } => {
                    let hs = ready.hard_state.expect("a vote comes with its hard state");
                    assert_eq!((hs.term, hs.voted_for), (m.term, Some(m.to)), "n{id}");
                    votes += 1;
                }
                MessageBody::AppendEntriesResponse {
                    success: true,
                    match_index,
                    ..
                } => {
                    // Everything acknowledged is persisted by this Ready or an earlier one.
                    assert!(
                        match_index <= persisted,
                        "n{id} acked {match_index} > {persisted}"
                    );
                    acks += 1;
                }
                _ => {}
            }
        }
    }
    assert!(
        votes >= 2 && acks >= 4,
        "the scenario produced {votes} votes and {acks} acks"
    );
}

#[test]
fn read_index_waits_for_a_quorum_and_a_commit_in_the_current_term() {
    let mut c = Manual::new(3, true, 64, CoreBugs::default());
    c.campaign(1, &[2, 3]);
    // Votes arrive, appends (the no-op) do not yet.
    c.deliver(|m| !matches!(m.body, MessageBody::AppendEntries { .. }));
    assert_eq!(c.role(1), Role::Leader);
    c.node_mut(1).read_index(7).expect("n1 leads");
    c.flush(1);
    let confirmed = |c: &Manual| {
        c.readies
            .iter()
            .flat_map(|(_, r, _)| r.read_states.clone())
            .find(|rs| rs.ctx == 7)
    };
    assert_eq!(
        confirmed(&c),
        None,
        "no quorum round yet, no current-term commit"
    );
    c.deliver_all();
    let read = confirmed(&c).expect("confirmed after the round and the no-op commit");
    assert_eq!(read.index, c.node(1).status().commit);
    assert!(read.index >= 1);
}

#[test]
fn lease_read_needs_a_recent_quorum_acknowledgement() {
    let mut c = healthy_three(true);
    c.tick(1, 2);
    c.deliver_all();
    let commit = c.node(1).status().commit;
    assert_eq!(c.node_mut(1).lease_read(), Ok(commit));
    // Isolated: the lease runs out after lease_ticks (8) from the last acked round.
    c.tick(1, 9);
    c.drop_all();
    assert_eq!(
        c.role(1),
        Role::Leader,
        "still leader: check-quorum has not fired yet"
    );
    assert_eq!(
        c.node_mut(1).lease_read(),
        Err(super::NotLeader {
            leader_hint: Some(1)
        })
    );
}

/// How a node that was stalled feeds the core what piled up meanwhile.
#[derive(Clone, Copy, Debug, PartialEq)]
enum StallReplay {
    /// [`RaftNode::advance`]: the stall's ticks, then the buffered messages.
    TicksFirst,
    /// What the server did before: the buffered messages, then the stall's ticks.
    MessagesFirst,
}

/// How the stalled-follower schedule ended.
#[derive(Debug, PartialEq)]
enum StallOutcome {
    /// n1 held no lease after n2 resumed (nothing to break).
    NoLease,
    /// n1 held a lease, and n3 could not win an election within it.
    RivalLost,
    /// n3 led `term` and committed a write while n1's lease would still serve a read at
    /// `lease_index`, before that write: a stale read.
    StaleRead { term: u64, lease_index: u64 },
}

/// Runs the stalled-follower schedule:
///
/// 3 nodes, lease reads. n1 leads and is cut off from n3; n2 is stalled (SIGSTOP) for
/// an election minimum while n1's heartbeats pile up for it; just before n2 resumes,
/// the link n1→n2 fails too. n2 handles the buffered heartbeats (acknowledging n1's
/// newest round, which gives n1 a fresh lease) and the stall's ticks, in `replay`
/// order. Then n3's election timer fires. With no tick of anybody's clock since n2
/// resumed, n1 still holds its lease: if n2 votes n3 in and n3 commits a write, n1's
/// lease read misses it.
fn stalled_follower_lease(replay: StallReplay) -> StallOutcome {
    const STALL: u64 = 12;
    let mut c = healthy_three(true);
    let cut_1_3 = |m: &Message| [m.from, m.to] == [1, 3] || [m.from, m.to] == [3, 1];
    for _ in 0..STALL {
        c.tick(1, 1);
        c.tick(3, 1);
        // n1↔n3 is cut, n3's requests to n2 are lost; n1's heartbeats to n2 wait in
        // n2's socket buffer (the outbox).
        c.outbox
            .retain(|m| !(cut_1_3(m) || (m.from == 3 && m.to == 2)));
    }
    assert_eq!(
        c.role(1),
        Role::Leader,
        "n1 must still lead when n2 resumes"
    );
    let buffered: Vec<Message> = c.outbox.iter().filter(|m| m.to == 2).cloned().collect();
    assert!(!buffered.is_empty(), "heartbeats piled up for n2");
    c.outbox.retain(|m| m.to != 2);
    match replay {
        StallReplay::TicksFirst => c.node_mut(2).advance(STALL, buffered),
        StallReplay::MessagesFirst => {
            for msg in buffered {
                c.node_mut(2).step(msg);
            }
            for _ in 0..STALL {
                c.node_mut(2).tick();
            }
        }
    }
    c.flush(2);
    // n2's acknowledgements reach n1; from now on nothing of n1's reaches anybody.
    c.deliver(|m| m.from == 2 && m.to == 1);
    c.outbox.retain(|m| m.from != 1);
    let Ok(lease_index) = c.node_mut(1).lease_read() else {
        return StallOutcome::NoLease;
    };
    // n3's election timer fires; n2 and n3 talk freely.
    c.node_mut(3).force_campaign();
    c.flush(3);
    c.deliver_within(&[2, 3]);
    if c.role(3) != Role::Leader {
        return StallOutcome::RivalLost;
    }
    c.node_mut(3)
        .propose(b"written under n3".to_vec())
        .expect("n3 leads");
    c.flush(3);
    c.deliver_within(&[2, 3]);
    let n3 = c.node(3).status();
    let written = c.datas(3).iter().any(|(_, _, d)| d == b"written under n3");
    let n1_lease = c.node_mut(1).lease_read();
    match n1_lease {
        Ok(index) if written && index < n3.commit => StallOutcome::StaleRead {
            term: n3.term,
            lease_index: lease_index.max(index),
        },
        _ => StallOutcome::RivalLost,
    }
}

/// Raft lease safety across a follower's stall: a stalled follower counts the stall's
/// ticks before the heartbeat it finds buffered, so it keeps its promise not to vote for
/// an election minimum after acknowledging, and the leader's lease never outlives it.
#[test]
fn stalled_follower_replays_its_ticks_before_buffered_messages() {
    assert_eq!(
        stalled_follower_lease(StallReplay::TicksFirst),
        StallOutcome::RivalLost
    );
}

/// The same schedule with the messages handled first (the server's order before the
/// fix) lets n3 win and commit within n1's lease: the scenario can fail.
#[test]
fn stalled_follower_handling_messages_first_allows_a_stale_lease_read() {
    let outcome = stalled_follower_lease(StallReplay::MessagesFirst);
    assert!(
        matches!(outcome, StallOutcome::StaleRead { .. }),
        "expected a stale lease read, got {outcome:?}"
    );
}

#[test]
fn restart_replays_committed_entries_from_the_snapshot() {
    let mut c = healthy_three(true);
    for i in 0..5u8 {
        c.node_mut(1).propose(vec![b'a' + i]).expect("n1 leads");
        c.flush(1);
        c.deliver_all();
    }
    c.tick(1, 2);
    c.deliver_all();
    let before = c.datas(2);
    assert_eq!(before.len(), 6);
    // n2 snapshots at index 3, then crashes and restarts.
    let term = c.stores[&2]
        .entries
        .iter()
        .find(|e| e.index == 3)
        .map(|e| e.term)
        .unwrap_or(0);
    let snapshot = Snapshot {
        index: 3,
        term,
        data: b"state@3".to_vec(),
    };
    if let Some(store) = c.stores.get_mut(&2) {
        store.entries.retain(|e| e.index > 3);
        store.snapshot = Some(snapshot.clone());
    }
    c.node_mut(2).compact(snapshot);
    c.crash(2);
    c.start(2);
    let replayed = c.datas(2);
    assert_eq!(
        replayed,
        before[3..].to_vec(),
        "entries after the snapshot are applied again"
    );
    assert_eq!(c.node(2).status().snapshot_index, 3);
}
