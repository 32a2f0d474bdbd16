//! The grudge: who drops whose packets, and the partition shapes that produce one.
//!
//! A grudge maps a node to the set of nodes whose packets it drops — Jepsen's model, and
//! exactly what `iptables -A INPUT -s <peer> -j DROP` on that node implements. It is pure
//! data, separate from every network backend, so that the schedule can be planned (and
//! printed, and replayed from a seed) before any socket or namespace exists, and so both
//! backends enforce the very same cut.
//!
//! Shapes follow Jepsen's `nemesis.combined` partitions: isolate one node, random halves,
//! a random minority cut off from the majority, the majorities ring, the bridge, and
//! isolating a given node (the current leader, which only the executor knows).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::NemesisError;

/// A node's name as the cluster knows it ("n1", "n2", ...).
pub type NodeName = String;

/// Node → the nodes whose packets it drops. Entries never hold the node itself and never
/// hold an empty set, so two grudges that cut the same links compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Grudge(BTreeMap<NodeName, BTreeSet<NodeName>>);

impl Grudge {
    /// The grudge that cuts nothing.
    pub fn none() -> Self {
        Grudge::default()
    }

    /// Builds a grudge from explicit entries, dropping self-entries and empty sets.
    pub fn from_entries<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = (NodeName, S)>,
        S: IntoIterator<Item = NodeName>,
    {
        let mut grudge = Grudge::none();
        for (node, dropped) in entries {
            for peer in dropped {
                grudge.drop_packets(&node, &peer);
            }
        }
        grudge
    }

    /// Every node of `a` drops every node of `b` and vice versa: a clean cut between two
    /// components (Jepsen's `complete-grudge` of two components).
    pub fn complete(a: &[NodeName], b: &[NodeName]) -> Self {
        Grudge::from_components(&[a, b])
    }

    /// Every node drops every node outside its own component.
    pub fn from_components(components: &[&[NodeName]]) -> Self {
        let mut grudge = Grudge::none();
        for (i, component) in components.iter().enumerate() {
            for (j, other) in components.iter().enumerate() {
                if i == j {
                    continue;
                }
                for node in component.iter() {
                    for peer in other.iter() {
                        grudge.drop_packets(node, peer);
                    }
                }
            }
        }
        grudge
    }

    /// `node` cuts itself off from everyone else in `nodes`, in both directions.
    pub fn isolate(node: &NodeName, nodes: &[NodeName]) -> Self {
        let rest: Vec<NodeName> = nodes.iter().filter(|n| *n != node).cloned().collect();
        Grudge::complete(std::slice::from_ref(node), &rest)
    }

    /// Records that `node` drops packets from `peer` (a no-op for `node == peer`).
    pub fn drop_packets(&mut self, node: &NodeName, peer: &NodeName) {
        if node != peer {
            self.0.entry(node.clone()).or_default().insert(peer.clone());
        }
    }

    /// Is the directed link `from → to` cut? True when `to` drops packets from `from`.
    pub fn blocked(&self, from: &str, to: &str) -> bool {
        self.0.get(to).is_some_and(|dropped| dropped.contains(from))
    }

    /// The nodes `node` can hear from among `nodes`, itself included.
    pub fn sees(&self, node: &str, nodes: &[NodeName]) -> BTreeSet<NodeName> {
        nodes
            .iter()
            .filter(|peer| !self.blocked(peer, node))
            .cloned()
            .collect()
    }

    /// True when no link is cut.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Node → dropped nodes, in name order.
    pub fn entries(&self) -> &BTreeMap<NodeName, BTreeSet<NodeName>> {
        &self.0
    }

    /// The grudge as `{"n1": ["n3", "n4"], ...}`, the `value` of a history event.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(node, dropped)| {
                    let dropped = dropped.iter().cloned().map(serde_json::Value::String);
                    (node.clone(), serde_json::Value::Array(dropped.collect()))
                })
                .collect(),
        )
    }

    /// A random node isolated from the rest.
    pub fn isolate_one(nodes: &[NodeName], rng: &mut impl Rng) -> Result<Self, NemesisError> {
        need(PartitionShape::IsolateOne, nodes, 2)?;
        let shuffled = shuffled(nodes, rng);
        Ok(Grudge::isolate(&shuffled[0], nodes))
    }

    /// The nodes shuffled and split into two halves (the smaller half first for odd sizes).
    pub fn halves(nodes: &[NodeName], rng: &mut impl Rng) -> Result<Self, NemesisError> {
        need(PartitionShape::Halves, nodes, 2)?;
        let shuffled = shuffled(nodes, rng);
        let (a, b) = shuffled.split_at(nodes.len() / 2);
        Ok(Grudge::complete(a, b))
    }

    /// A random minority (1 to ⌊(n-1)/2⌋ nodes) cut off from the majority.
    pub fn majority_minority(nodes: &[NodeName], rng: &mut impl Rng) -> Result<Self, NemesisError> {
        need(PartitionShape::MajorityMinority, nodes, 3)?;
        let largest_minority = (nodes.len() - 1) / 2;
        let size = rng.gen_range(1..=largest_minority);
        let shuffled = shuffled(nodes, rng);
        let (minority, majority) = shuffled.split_at(size);
        Ok(Grudge::complete(minority, majority))
    }

    /// Jepsen's majorities ring: the nodes are shuffled onto a ring; each node hears only
    /// the window of ⌊n/2⌋+1 consecutive ring nodes centred on itself. Every node sees a
    /// majority, and since windows start at different ring positions no two nodes see
    /// the same majority — each may elect a leader the others do not agree on.
    pub fn majorities_ring(nodes: &[NodeName], rng: &mut impl Rng) -> Result<Self, NemesisError> {
        need(PartitionShape::MajoritiesRing, nodes, 3)?;
        let ring = shuffled(nodes, rng);
        let n = ring.len();
        let majority = n / 2 + 1;
        let before = (majority - 1) / 2;
        let mut grudge = Grudge::none();
        for (position, node) in ring.iter().enumerate() {
            let window: BTreeSet<&NodeName> = (0..majority)
                .map(|k| &ring[(position + n - before + k) % n])
                .collect();
            for peer in ring.iter().filter(|peer| !window.contains(peer)) {
                grudge.drop_packets(node, peer);
            }
        }
        Ok(grudge)
    }

    /// Two halves cut from each other, joined by one bridge node that hears both and that
    /// both hear. Each half plus the bridge is a majority for odd sizes: two leaders can
    /// each believe they have a quorum through the bridge.
    pub fn bridge(nodes: &[NodeName], rng: &mut impl Rng) -> Result<Self, NemesisError> {
        need(PartitionShape::Bridge, nodes, 3)?;
        let shuffled = shuffled(nodes, rng);
        // shuffled[0] is the bridge: it appears in no grudge at all.
        let rest = &shuffled[1..];
        let (a, b) = rest.split_at(rest.len() / 2);
        Ok(Grudge::complete(a, b))
    }

    /// The grudge of `shape` over `nodes`. `leader` is required for `isolate-leader` only.
    pub fn for_shape(
        shape: PartitionShape,
        nodes: &[NodeName],
        leader: Option<&NodeName>,
        rng: &mut impl Rng,
    ) -> Result<Self, NemesisError> {
        match shape {
            PartitionShape::IsolateOne => Grudge::isolate_one(nodes, rng),
            PartitionShape::Halves => Grudge::halves(nodes, rng),
            PartitionShape::MajorityMinority => Grudge::majority_minority(nodes, rng),
            PartitionShape::MajoritiesRing => Grudge::majorities_ring(nodes, rng),
            PartitionShape::Bridge => Grudge::bridge(nodes, rng),
            PartitionShape::IsolateLeader => {
                need(shape, nodes, 2)?;
                match leader {
                    Some(leader) if nodes.contains(leader) => Ok(Grudge::isolate(leader, nodes)),
                    Some(leader) => Err(NemesisError::UnknownNode {
                        node: leader.clone(),
                        known: nodes.join(", "),
                    }),
                    // Without a known leader, the best stand-in is a random node.
                    None => Grudge::isolate_one(nodes, rng),
                }
            }
        }
    }
}

impl fmt::Display for Grudge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// Errors when the shape cannot be built on this few nodes.
fn need(shape: PartitionShape, nodes: &[NodeName], needed: usize) -> Result<(), NemesisError> {
    if nodes.len() < needed {
        return Err(NemesisError::NotEnoughNodes {
            shape: shape.name(),
            needed,
            got: nodes.len(),
        });
    }
    Ok(())
}

/// The nodes in a seeded random order (sorted first, so the caller's order cannot change
/// the outcome for a given seed).
fn shuffled(nodes: &[NodeName], rng: &mut impl Rng) -> Vec<NodeName> {
    let mut nodes = nodes.to_vec();
    nodes.sort();
    nodes.shuffle(rng);
    nodes
}

/// The partition shapes, by their recorded names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionShape {
    /// One random node cut off from all others.
    IsolateOne,
    /// Shuffled nodes split into two halves.
    Halves,
    /// A random minority cut off from the majority.
    MajorityMinority,
    /// Every node sees a majority, no two see the same one.
    MajoritiesRing,
    /// Two halves joined by one node that sees both.
    Bridge,
    /// The current leader cut off (resolved at run time).
    IsolateLeader,
}

impl PartitionShape {
    /// Every shape, in a fixed order (the schedule draws from it).
    pub const ALL: [PartitionShape; 6] = [
        PartitionShape::IsolateOne,
        PartitionShape::Halves,
        PartitionShape::MajorityMinority,
        PartitionShape::MajoritiesRing,
        PartitionShape::Bridge,
        PartitionShape::IsolateLeader,
    ];

    const EXPECTED: &'static str =
        "isolate-one, halves, majority-minority, majorities-ring, bridge, isolate-leader";

    /// The name used on the command line and in recorded events.
    pub fn name(self) -> &'static str {
        match self {
            PartitionShape::IsolateOne => "isolate-one",
            PartitionShape::Halves => "halves",
            PartitionShape::MajorityMinority => "majority-minority",
            PartitionShape::MajoritiesRing => "majorities-ring",
            PartitionShape::Bridge => "bridge",
            PartitionShape::IsolateLeader => "isolate-leader",
        }
    }

    /// The fewest nodes on which the shape cuts anything meaningful.
    pub fn min_nodes(self) -> usize {
        match self {
            PartitionShape::IsolateOne | PartitionShape::Halves | PartitionShape::IsolateLeader => {
                2
            }
            PartitionShape::MajorityMinority
            | PartitionShape::MajoritiesRing
            | PartitionShape::Bridge => 3,
        }
    }
}

impl fmt::Display for PartitionShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PartitionShape {
    type Err = NemesisError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PartitionShape::ALL
            .into_iter()
            .find(|shape| shape.name() == s)
            .ok_or_else(|| NemesisError::Parse {
                what: "partition shape",
                got: s.to_string(),
                expected: PartitionShape::EXPECTED.into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn nodes(n: usize) -> Vec<NodeName> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn majority(n: usize) -> usize {
        n / 2 + 1
    }

    /// Every node always hears itself, whatever the shape.
    fn assert_no_self_grudge(grudge: &Grudge) {
        for (node, dropped) in grudge.entries() {
            assert!(!dropped.contains(node), "{node} drops itself in {grudge}");
            assert!(!dropped.is_empty(), "empty entry for {node} in {grudge}");
        }
    }

    #[test]
    fn blocked_means_the_receiver_drops_the_sender() {
        let grudge = Grudge::from_entries([("n1".to_string(), vec!["n2".to_string()])]);
        assert!(grudge.blocked("n2", "n1"));
        assert!(!grudge.blocked("n1", "n2"));
        assert!(!grudge.blocked("n1", "n1"));
        assert_eq!(grudge.to_json(), serde_json::json!({"n1": ["n2"]}));
    }

    #[test]
    fn complete_cuts_every_cross_link_both_ways_and_nothing_else() {
        let all = nodes(5);
        let grudge = Grudge::complete(&all[..2], &all[2..]);
        for from in &all {
            for to in &all {
                let across = (all[..2].contains(from)) != (all[..2].contains(to));
                assert_eq!(grudge.blocked(from, to), across, "{from}->{to}");
            }
        }
    }

    #[test]
    fn isolate_one_cuts_exactly_one_node_from_all_others() {
        for seed in 0..50 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let all = nodes(5);
            let grudge = Grudge::isolate_one(&all, &mut rng).unwrap();
            assert_no_self_grudge(&grudge);
            let isolated: Vec<_> = all
                .iter()
                .filter(|n| grudge.sees(n, &all).len() == 1)
                .collect();
            assert_eq!(isolated.len(), 1, "seed {seed}: {grudge}");
            for node in all.iter().filter(|n| *n != isolated[0]) {
                assert_eq!(grudge.sees(node, &all).len(), 4, "seed {seed}: {grudge}");
            }
        }
    }

    #[test]
    fn halves_split_into_two_symmetric_components_of_near_equal_size() {
        for n in [2, 3, 4, 5, 7] {
            for seed in 0..30 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let all = nodes(n);
                let grudge = Grudge::halves(&all, &mut rng).unwrap();
                assert_no_self_grudge(&grudge);
                let mut sizes: Vec<usize> = all
                    .iter()
                    .map(|node| grudge.sees(node, &all).len())
                    .collect();
                sizes.sort();
                assert_eq!(sizes[0], n / 2, "n={n} seed {seed}: {grudge}");
                assert_eq!(sizes[n - 1], n - n / 2, "n={n} seed {seed}: {grudge}");
                for a in &all {
                    for b in &all {
                        assert_eq!(grudge.blocked(a, b), grudge.blocked(b, a));
                    }
                }
            }
        }
    }

    #[test]
    fn majority_minority_leaves_exactly_one_side_with_a_majority() {
        for n in [3, 5, 7] {
            for seed in 0..30 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let all = nodes(n);
                let grudge = Grudge::majority_minority(&all, &mut rng).unwrap();
                assert_no_self_grudge(&grudge);
                let with_majority = all
                    .iter()
                    .filter(|node| grudge.sees(node, &all).len() >= majority(n))
                    .count();
                assert!(with_majority >= majority(n), "n={n} seed {seed}: {grudge}");
                assert!(with_majority < n, "n={n} seed {seed}: nothing cut");
            }
        }
    }

    #[test]
    fn majorities_ring_every_node_sees_a_distinct_majority() {
        for n in [3, 4, 5, 6, 7] {
            for seed in 0..30 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let all = nodes(n);
                let grudge = Grudge::majorities_ring(&all, &mut rng).unwrap();
                assert_no_self_grudge(&grudge);
                let views: Vec<BTreeSet<NodeName>> =
                    all.iter().map(|node| grudge.sees(node, &all)).collect();
                for (node, view) in all.iter().zip(&views) {
                    assert_eq!(
                        view.len(),
                        majority(n),
                        "n={n} seed {seed}: {node} {grudge}"
                    );
                    assert!(view.contains(node));
                }
                let distinct: BTreeSet<_> = views.iter().collect();
                assert_eq!(
                    distinct.len(),
                    n,
                    "n={n} seed {seed}: shared views {grudge}"
                );
            }
        }
    }

    #[test]
    fn bridge_node_sees_and_is_seen_by_everyone_while_the_halves_are_cut() {
        for n in [3, 5, 7] {
            for seed in 0..30 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let all = nodes(n);
                let grudge = Grudge::bridge(&all, &mut rng).unwrap();
                assert_no_self_grudge(&grudge);
                let bridges: Vec<&NodeName> = all
                    .iter()
                    .filter(|node| {
                        grudge.sees(node, &all).len() == n
                            && all.iter().all(|peer| !grudge.blocked(node, peer))
                    })
                    .collect();
                assert_eq!(bridges.len(), 1, "n={n} seed {seed}: {grudge}");
                for node in all.iter().filter(|node| *node != bridges[0]) {
                    let view = grudge.sees(node, &all).len();
                    assert_eq!(view, (n - 1) / 2 + 1, "n={n} seed {seed}: {grudge}");
                }
            }
        }
    }

    #[test]
    fn isolate_leader_isolates_the_given_node() {
        let all = nodes(5);
        let leader = "n3".to_string();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let grudge =
            Grudge::for_shape(PartitionShape::IsolateLeader, &all, Some(&leader), &mut rng)
                .unwrap();
        assert_eq!(grudge, Grudge::isolate(&leader, &all));
        assert_eq!(grudge.sees("n3", &all).len(), 1);
        let stranger = "n9".to_string();
        let unknown = Grudge::for_shape(
            PartitionShape::IsolateLeader,
            &all,
            Some(&stranger),
            &mut rng,
        );
        assert!(matches!(unknown, Err(NemesisError::UnknownNode { .. })));
    }

    #[test]
    fn shapes_are_deterministic_per_seed_and_independent_of_input_order() {
        let all = nodes(5);
        let mut reversed = all.clone();
        reversed.reverse();
        for shape in PartitionShape::ALL {
            let a = Grudge::for_shape(shape, &all, None, &mut ChaCha8Rng::seed_from_u64(7));
            let b = Grudge::for_shape(shape, &reversed, None, &mut ChaCha8Rng::seed_from_u64(7));
            assert_eq!(a.unwrap(), b.unwrap(), "{shape}");
        }
    }

    #[test]
    fn too_few_nodes_is_an_error_not_a_panic() {
        let one = nodes(1);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for shape in PartitionShape::ALL {
            let result = Grudge::for_shape(shape, &one, None, &mut rng);
            assert!(
                matches!(result, Err(NemesisError::NotEnoughNodes { .. })),
                "{shape}"
            );
        }
        let two = nodes(2);
        assert!(Grudge::majorities_ring(&two, &mut rng).is_err());
    }

    #[test]
    fn shape_names_round_trip() {
        for shape in PartitionShape::ALL {
            assert_eq!(shape.name().parse::<PartitionShape>().unwrap(), shape);
            let json = serde_json::to_string(&shape).unwrap();
            assert_eq!(json, format!("\"{}\"", shape.name()));
        }
        assert!("split".parse::<PartitionShape>().is_err());
    }
}
