//! The in-memory Raft log: a snapshot base, the entries after it, the commit and apply
//! cursors, and the bookkeeping of what has not yet been handed to the node for
//! persisting (`unstable_from`, `pending_truncate`).
//!
//! Separate from the protocol so that index arithmetic (snapshot offsets, truncation,
//! conflict search) lives in one place with its own invariants:
//! `entries[k].index == snapshot_index + 1 + k`, `applied <= commit <= last_index`.

use super::message::{Entry, Snapshot};

/// The log of one node.
#[derive(Debug)]
pub(crate) struct RaftLog {
    /// The latest snapshot (kept with its data so a leader can send it to followers).
    snapshot: Option<Snapshot>,
    /// The index the snapshot covers (0 without one).
    snapshot_index: u64,
    /// The term at `snapshot_index` (0 without one).
    snapshot_term: u64,
    /// The entries after the snapshot, contiguous.
    entries: Vec<Entry>,
    /// The highest index known committed.
    pub(crate) commit: u64,
    /// The highest index handed out for applying.
    pub(crate) applied: u64,
    /// The first index not yet handed out in a Ready for persisting.
    unstable_from: u64,
    /// The node must delete persisted entries from this index before appending.
    pending_truncate: Option<u64>,
}

impl RaftLog {
    /// Builds the log from what the node persisted.
    pub(crate) fn restore(snapshot: Option<Snapshot>, persisted: Vec<Entry>, commit: u64) -> Self {
        let (snapshot_index, snapshot_term) = snapshot
            .as_ref()
            .map(|s| (s.index, s.term))
            .unwrap_or((0, 0));
        let mut entries: Vec<Entry> = Vec::with_capacity(persisted.len());
        for entry in persisted {
            if entry.index <= snapshot_index {
                continue;
            }
            let expected = snapshot_index + 1 + entries.len() as u64;
            if entry.index != expected {
                break;
            }
            entries.push(entry);
        }
        let mut log = RaftLog {
            snapshot,
            snapshot_index,
            snapshot_term,
            entries,
            commit: 0,
            applied: snapshot_index,
            unstable_from: 0,
            pending_truncate: None,
        };
        log.commit = commit.clamp(snapshot_index, log.last_index());
        log.unstable_from = log.last_index() + 1;
        log
    }

    pub(crate) fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    pub(crate) fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    pub(crate) fn snapshot_term(&self) -> u64 {
        self.snapshot_term
    }

    pub(crate) fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub(crate) fn last_index(&self) -> u64 {
        self.snapshot_index + self.entries.len() as u64
    }

    pub(crate) fn last_term(&self) -> u64 {
        self.entries
            .last()
            .map(|e| e.term)
            .unwrap_or(self.snapshot_term)
    }

    /// The term of the entry at `index`, if this log still knows it (index 0 has term 0).
    pub(crate) fn term(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        if index < self.snapshot_index {
            return None;
        }
        self.entries
            .get((index - self.snapshot_index - 1) as usize)
            .map(|e| e.term)
    }

    /// Raft §5.4.1: a candidate's log is at least as up-to-date as ours.
    pub(crate) fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Up to `max` entries starting at `from` (empty when `from` is past the end or compacted).
    pub(crate) fn slice(&self, from: u64, max: usize) -> Vec<Entry> {
        if from <= self.snapshot_index {
            return Vec::new();
        }
        let start = (from - self.snapshot_index - 1) as usize;
        if start >= self.entries.len() {
            return Vec::new();
        }
        let end = self.entries.len().min(start.saturating_add(max));
        self.entries[start..end].to_vec()
    }

    /// Entries in `(from, to]`, for applying.
    fn range(&self, after: u64, to: u64) -> Vec<Entry> {
        if to <= after {
            return Vec::new();
        }
        self.slice(after + 1, (to - after) as usize)
    }

    /// Appends one entry at the end (the leader's own proposals).
    pub(crate) fn push(&mut self, term: u64, data: Vec<u8>) -> u64 {
        let index = self.last_index() + 1;
        self.entries.push(Entry { term, index, data });
        index
    }

    /// Deletes every entry with index >= `from` (never below the snapshot), remembering
    /// to tell the node when some of them were already handed out for persisting.
    pub(crate) fn truncate(&mut self, from: u64) {
        let from = from.max(self.snapshot_index + 1);
        if from > self.last_index() {
            return;
        }
        self.entries
            .truncate((from - self.snapshot_index - 1) as usize);
        if from < self.unstable_from {
            self.pending_truncate = Some(self.pending_truncate.map_or(from, |t| t.min(from)));
            self.unstable_from = from;
        }
    }

    /// Appends entries that follow `last_index()` contiguously (caller checked).
    pub(crate) fn extend(&mut self, entries: impl IntoIterator<Item = Entry>) {
        for entry in entries {
            if entry.index == self.last_index() + 1 {
                self.entries.push(entry);
            }
        }
    }

    /// The last index whose entry has term `term`, searching at or below `at_most`.
    pub(crate) fn last_index_of_term(&self, term: u64, at_most: u64) -> Option<u64> {
        let mut index = at_most.min(self.last_index());
        while index > self.snapshot_index {
            let t = self.term(index)?;
            if t == term {
                return Some(index);
            }
            if t < term {
                return None;
            }
            index -= 1;
        }
        (index == self.snapshot_index && self.snapshot_term == term && index > 0).then_some(index)
    }

    /// The first index of the run of entries sharing the term at `index`, not below `floor`.
    pub(crate) fn first_index_of_term_run(&self, index: u64, floor: u64) -> u64 {
        let Some(term) = self.term(index) else {
            return index;
        };
        let mut first = index;
        while first > floor && first > self.snapshot_index + 1 && self.term(first - 1) == Some(term)
        {
            first -= 1;
        }
        first
    }

    /// Drops the entries covered by a snapshot the node took of its own state machine.
    /// Returns false (and changes nothing) when the snapshot is stale or does not match.
    pub(crate) fn compact(&mut self, snapshot: Snapshot) -> bool {
        if snapshot.index <= self.snapshot_index
            || snapshot.index > self.applied
            || self.term(snapshot.index) != Some(snapshot.term)
        {
            return false;
        }
        let drop = (snapshot.index - self.snapshot_index) as usize;
        self.entries.drain(..drop);
        self.snapshot_index = snapshot.index;
        self.snapshot_term = snapshot.term;
        self.snapshot = Some(snapshot);
        self.unstable_from = self.unstable_from.max(self.snapshot_index + 1);
        true
    }

    /// Installs a snapshot received from the leader: keeps the entries after it when the
    /// log agrees with it at its index, otherwise discards the whole log. The snapshot
    /// becomes the state machine's state, so `applied` and `commit` jump to its index.
    pub(crate) fn install(&mut self, snapshot: Snapshot) {
        if self.term(snapshot.index) == Some(snapshot.term) && snapshot.index >= self.snapshot_index
        {
            let drop = (snapshot.index - self.snapshot_index) as usize;
            self.entries.drain(..drop);
            self.unstable_from = self.unstable_from.max(snapshot.index + 1);
        } else {
            // Everything on disk after the snapshot is stale: it will be truncated, so
            // whatever is appended after the snapshot (possibly before the next Ready,
            // in the same batch) must be handed out for persisting again from there.
            self.entries.clear();
            let from = snapshot.index + 1;
            self.pending_truncate = Some(self.pending_truncate.map_or(from, |t| t.min(from)));
            self.unstable_from = from;
        }
        self.snapshot_index = snapshot.index;
        self.snapshot_term = snapshot.term;
        self.snapshot = Some(snapshot);
        self.commit = self.commit.max(self.snapshot_index);
        self.applied = self.applied.max(self.snapshot_index);
    }

    /// Hands out the truncation and the entries not yet persisted.
    pub(crate) fn take_unstable(&mut self) -> (Option<u64>, Vec<Entry>) {
        let truncate = self.pending_truncate.take();
        let entries = self.slice(self.unstable_from, usize::MAX);
        self.unstable_from = self.last_index() + 1;
        (truncate, entries)
    }

    pub(crate) fn has_unstable(&self) -> bool {
        self.pending_truncate.is_some() || self.unstable_from <= self.last_index()
    }

    /// Hands out the committed entries not yet applied.
    pub(crate) fn take_committed(&mut self) -> Vec<Entry> {
        let entries = self.range(self.applied, self.commit);
        self.applied = self.applied.max(self.commit);
        entries
    }

    pub(crate) fn has_committed(&self) -> bool {
        self.commit > self.applied
    }

    /// (index, term) of every entry held, snapshot excluded.
    pub(crate) fn terms(&self) -> Vec<(u64, u64)> {
        self.entries.iter().map(|e| (e.index, e.term)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            term,
            index,
            data: format!("{index}@{term}").into_bytes(),
        }
    }

    fn persisted_log(last: u64, term: u64) -> RaftLog {
        let mut log = RaftLog::restore(None, Vec::new(), 0);
        log.extend((1..=last).map(|i| entry(i, term)));
        let (_, handed_out) = log.take_unstable();
        assert_eq!(handed_out.len() as u64, last);
        log
    }

    fn snapshot(index: u64, term: u64) -> Snapshot {
        Snapshot {
            index,
            term,
            data: Vec::new(),
        }
    }

    /// A follower with a longer, conflicting persisted log installs a leader's snapshot
    /// and, in the same batch (before the next Ready), receives the entries after it:
    /// the Ready must truncate the stale tail and persist every new entry, or the WAL
    /// has a gap the next start refuses ("log gap").
    #[test]
    fn entries_appended_after_a_conflicting_snapshot_in_one_batch_are_persisted() {
        let mut log = persisted_log(10, 1);
        log.install(snapshot(5, 2));
        log.extend([entry(6, 2), entry(7, 2)]);
        let (truncate, entries) = log.take_unstable();
        assert_eq!(truncate, Some(6));
        let indexes: Vec<u64> = entries.iter().map(|e| e.index).collect();
        assert_eq!(
            indexes,
            vec![6, 7],
            "every entry after the snapshot is persisted"
        );
        assert!(!log.has_unstable());
    }

    /// The same batch when the snapshot agrees with the log: the persisted entries after
    /// it stay persisted and only the new ones are handed out.
    #[test]
    fn entries_after_a_matching_snapshot_stay_persisted() {
        let mut log = persisted_log(10, 1);
        log.install(snapshot(5, 1));
        log.extend([entry(11, 1)]);
        let (truncate, entries) = log.take_unstable();
        assert_eq!(truncate, None);
        let indexes: Vec<u64> = entries.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![11]);
        assert_eq!(log.last_index(), 11);
    }

    /// A snapshot beyond the end of the log discards it and starts after the snapshot.
    #[test]
    fn a_snapshot_past_the_log_end_restarts_persistence_after_it() {
        let mut log = persisted_log(3, 1);
        log.install(snapshot(8, 2));
        log.extend([entry(9, 2)]);
        let (truncate, entries) = log.take_unstable();
        assert_eq!(truncate, Some(9));
        let indexes: Vec<u64> = entries.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![9]);
    }
}
