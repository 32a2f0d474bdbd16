//! The convergence check after healing: every node must report the same applied index,
//! state digest and applied-history chain, and we count how many replicas hold each
//! committed log entry.
//!
//! Linearizability of the client history cannot see a replica that silently diverged
//! (say, one that lost acknowledged entries and was never read from); comparing the
//! state machines can. The state digest alone forgets: a register that two replicas
//! briefly disagreed on is equal again after the next write. The history chain hashes
//! every applied entry in order, so a replica that ever applied a different entry at
//! some index stays different.

use crate::node::protocol::{AdminOp, Digest, LogTerms, Status};
use splitbrain_checker::Verdict;
use splitbrain_reports::results::{Convergence, NodeState, ReplicaCount};
use std::collections::BTreeMap;
use std::time::Duration;

use super::bundled::BundledCluster;
use super::Database;

struct Seen {
    applied_index: u64,
    digest: String,
    history: String,
    last_index: u64,
    commit_index: u64,
}

async fn observe(cluster: &BundledCluster, node: &str) -> Option<Seen> {
    let timeout = Duration::from_millis(500);
    let status: Status = cluster.admin(node, AdminOp::Status, timeout).await.ok()?;
    let digest: Digest = cluster
        .admin(node, AdminOp::Digest { at: None }, timeout)
        .await
        .ok()?;
    Some(Seen {
        applied_index: digest.applied_index,
        digest: digest.digest,
        history: digest.history,
        last_index: status.last_index,
        commit_index: status.commit_index,
    })
}

/// Polls every node until their digests agree or `wait` runs out.
pub async fn convergence(cluster: &BundledCluster, wait: Duration) -> Convergence {
    let names = cluster.nodes();
    let deadline = tokio::time::Instant::now() + wait;
    let mut seen: BTreeMap<String, Option<Seen>> = BTreeMap::new();
    loop {
        seen.clear();
        for node in &names {
            seen.insert(node.clone(), observe(cluster, node).await);
        }
        if agree(&seen) || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let converged = agree(&seen);
    let split_at_common = if converged || diverged(&seen) {
        None
    } else {
        diverged_at_common_index(cluster, &seen).await
    };
    let nodes: Vec<NodeState> = seen
        .iter()
        .map(|(name, s)| NodeState {
            name: name.clone(),
            applied_index: s.as_ref().map(|s| s.applied_index),
            digest: s.as_ref().map(|s| s.digest.clone()),
            history: s.as_ref().map(|s| s.history.clone()),
            last_index: s.as_ref().map(|s| s.last_index),
            reachable: s.is_some(),
        })
        .collect();
    let commit = seen
        .values()
        .flatten()
        .map(|s| s.commit_index)
        .max()
        .unwrap_or(0);
    let replicas_per_entry = replica_counts(cluster, &names, commit).await;
    let explanation = if converged {
        let s = seen.values().flatten().next();
        format!(
            "all {} nodes applied {} entries with digest {}",
            names.len(),
            s.map_or(0, |s| s.applied_index),
            s.map_or("-", |s| s.digest.as_str())
        )
    } else {
        let unreachable: Vec<&str> = seen
            .iter()
            .filter(|(_, s)| s.is_none())
            .map(|(n, _)| n.as_str())
            .collect();
        let mut digests: BTreeMap<(u64, &str, &str), Vec<&str>> = BTreeMap::new();
        for (n, s) in seen.iter() {
            if let Some(s) = s {
                digests
                    .entry((s.applied_index, s.digest.as_str(), s.history.as_str()))
                    .or_default()
                    .push(n);
            }
        }
        let groups: Vec<String> = digests
            .iter()
            .map(|((idx, d, h), ns)| {
                format!("{} at index {idx} digest {d} history {h}", ns.join(","))
            })
            .collect();
        let mut msg = if diverged(&seen) {
            format!("replicas applied different entries: {}", groups.join("; "))
        } else {
            format!(
                "nodes did not converge within {:.0} s: {}",
                wait.as_secs_f64(),
                groups.join("; ")
            )
        };
        if let Some((index, groups)) = &split_at_common {
            msg.push_str(&format!(
                "; at index {index}, which every reachable node applied, their applied \
                 histories already differ: {groups}"
            ));
        }
        if hidden_divergence(&seen) {
            msg.push_str(
                " (the data is equal at that index but the applied histories differ: \
                 later writes hid the divergence)",
            );
        }
        if !unreachable.is_empty() {
            msg.push_str(&format!("; unreachable: {}", unreachable.join(",")));
        }
        msg
    };
    // Only a difference in state at the same applied index proves divergence; a node
    // that is unreachable or still behind after the wait is a liveness problem, which
    // leaves the check undecided rather than failed.
    let verdict = if converged {
        Verdict::Valid
    } else if diverged(&seen) || split_at_common.is_some() {
        Verdict::Invalid
    } else {
        Verdict::Unknown
    };
    Convergence {
        verdict,
        nodes,
        replicas_per_entry,
        explanation,
    }
}

/// Two reachable nodes report a different state or applied history at the same
/// applied index.
fn diverged(seen: &BTreeMap<String, Option<Seen>>) -> bool {
    let mut at: BTreeMap<u64, (&str, &str)> = BTreeMap::new();
    for s in seen.values().flatten() {
        let here = (s.digest.as_str(), s.history.as_str());
        match at.get(&s.applied_index) {
            Some(first) if *first != here => return true,
            Some(_) => {}
            None => {
                at.insert(s.applied_index, here);
            }
        }
    }
    false
}

/// Nodes that stopped at different indexes (one lagging, say because it can no longer
/// accept the leader's entries) are compared at the highest index all reachable nodes
/// applied: different history chains there prove they applied different entries.
/// Returns that index and the groups of nodes per chain.
async fn diverged_at_common_index(
    cluster: &BundledCluster,
    seen: &BTreeMap<String, Option<Seen>>,
) -> Option<(u64, String)> {
    let common = seen.values().flatten().map(|s| s.applied_index).min()?;
    let mut chains: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (node, s) in seen {
        if s.is_none() {
            continue;
        }
        let Ok(digest) = cluster
            .admin::<Digest>(
                node,
                AdminOp::Digest { at: Some(common) },
                Duration::from_millis(500),
            )
            .await
        else {
            continue;
        };
        if let Some(Some(at)) = digest.history_at {
            chains.entry(at.history).or_default().push(node);
        }
    }
    (chains.len() > 1).then(|| {
        let groups: Vec<String> = chains
            .iter()
            .map(|(h, nodes)| format!("{} history {h}", nodes.join(",")))
            .collect();
        (common, groups.join("; "))
    })
}

/// Some two nodes at the same applied index hold equal data but different histories.
fn hidden_divergence(seen: &BTreeMap<String, Option<Seen>>) -> bool {
    let nodes: Vec<&Seen> = seen.values().flatten().collect();
    nodes.iter().enumerate().any(|(i, a)| {
        nodes[i + 1..].iter().any(|b| {
            a.applied_index == b.applied_index && a.digest == b.digest && a.history != b.history
        })
    })
}

fn agree(seen: &BTreeMap<String, Option<Seen>>) -> bool {
    let mut first: Option<(u64, &str, &str)> = None;
    for s in seen.values() {
        let Some(s) = s else { return false };
        let here = (s.applied_index, s.digest.as_str(), s.history.as_str());
        match first {
            None => first = Some(here),
            Some(f) if f == here => {}
            Some(_) => return false,
        }
    }
    first.is_some()
}

/// For each committed index, how many nodes hold an entry with the majority term there
/// (a node whose snapshot covers the index counts as holding it). Consecutive indexes
/// with the same term and count are merged into ranges.
async fn replica_counts(
    cluster: &BundledCluster,
    names: &[String],
    commit: u64,
) -> Vec<ReplicaCount> {
    let mut logs: Vec<(u64, BTreeMap<u64, u64>)> = Vec::new();
    for node in names {
        let Ok(terms) = cluster
            .admin::<LogTerms>(node, AdminOp::LogTerms, Duration::from_secs(2))
            .await
        else {
            continue;
        };
        logs.push((terms.snapshot_index, terms.entries.into_iter().collect()));
    }
    let mut out: Vec<ReplicaCount> = Vec::new();
    for index in 1..=commit {
        let mut terms: BTreeMap<u64, usize> = BTreeMap::new();
        let mut snapshotted = 0;
        for (snapshot, entries) in &logs {
            if index <= *snapshot {
                snapshotted += 1;
            } else if let Some(t) = entries.get(&index) {
                *terms.entry(*t).or_default() += 1;
            }
        }
        let (term, holders) = terms
            .iter()
            .max_by_key(|(t, c)| (**c, **t))
            .map(|(t, c)| (*t, *c))
            .unwrap_or((0, 0));
        let replicas = holders + snapshotted;
        match out.last_mut() {
            Some(last)
                if last.term == term && last.replicas == replicas && last.to_index + 1 == index =>
            {
                last.to_index = index
            }
            _ => out.push(ReplicaCount {
                from_index: index,
                to_index: index,
                term,
                replicas,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(entries: &[(&str, Option<(u64, &str)>)]) -> BTreeMap<String, Option<Seen>> {
        entries
            .iter()
            .map(|(n, s)| {
                (
                    n.to_string(),
                    s.map(|(applied_index, digest)| Seen {
                        applied_index,
                        digest: digest.to_string(),
                        history: format!("h-{digest}"),
                        last_index: applied_index,
                        commit_index: applied_index,
                    }),
                )
            })
            .collect()
    }

    #[test]
    fn only_different_states_at_one_index_are_divergence() {
        let same = seen(&[("n1", Some((5, "a"))), ("n2", Some((5, "a")))]);
        assert!(agree(&same) && !diverged(&same));
        let lagging = seen(&[("n1", Some((5, "a"))), ("n2", Some((3, "b")))]);
        assert!(!agree(&lagging) && !diverged(&lagging));
        let unreachable = seen(&[("n1", Some((5, "a"))), ("n2", None)]);
        assert!(!agree(&unreachable) && !diverged(&unreachable));
        let split = seen(&[("n1", Some((5, "a"))), ("n2", Some((5, "b"))), ("n3", None)]);
        assert!(!agree(&split) && diverged(&split));
    }

    #[test]
    fn equal_data_with_different_histories_is_divergence() {
        let mut hidden = seen(&[("n1", Some((5, "a"))), ("n2", Some((5, "a")))]);
        hidden
            .get_mut("n2")
            .and_then(Option::as_mut)
            .expect("n2")
            .history = "other".into();
        assert!(!agree(&hidden) && diverged(&hidden) && hidden_divergence(&hidden));
        let split = seen(&[("n1", Some((5, "a"))), ("n2", Some((5, "b")))]);
        assert!(!hidden_divergence(&split));
    }
}
