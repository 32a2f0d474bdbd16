//! Startup: the node's durable state read back from its data directory (the WAL, the
//! snapshot), with torn tails repaired and noted, and the consensus core and state
//! machine rebuilt from it. Kept apart from the driver because it runs once, before any
//! listener is open, and is where the deliberate recovery bug (`forget-vote`) lives.

use anyhow::{anyhow, Context};
use splitbrain_raft::{self as raft, Entry, HardState, RaftNode, Restored, Snapshot};

use super::NodeConfig;
use crate::node::kv::KvState;
use crate::node::wal::Wal;

/// What a node starts from.
pub(super) struct Recovered {
    pub wal: Wal,
    pub core: RaftNode,
    pub kv: KvState,
    /// Term of the entry at `kv.applied_index` (the snapshot's).
    pub applied_term: u64,
    pub last_snapshot_index: u64,
}

/// Opens the WAL in `cfg.data_dir` (on the blocking pool) and rebuilds the core and the
/// state machine from it.
pub(super) async fn recover(cfg: &NodeConfig) -> anyhow::Result<Recovered> {
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
    Ok(Recovered {
        wal,
        core,
        kv,
        applied_term,
        last_snapshot_index,
    })
}
