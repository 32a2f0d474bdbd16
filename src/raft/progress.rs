//! The leader's view of one follower: how much of the log it is known to hold, what to
//! send next, and whether sending is paused.
//!
//! Kept apart from the protocol because the flow-control states are easy to get subtly
//! wrong: a follower is either being *probed* (one AppendEntries at a time, backing off
//! with the conflict hints until the logs match), *replicated to* (optimistic, several
//! AppendEntries in flight), or waiting for a *snapshot*.

use std::collections::VecDeque;

/// How the leader currently sends to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlowState {
    /// Searching for the point where the logs agree; one message at a time.
    Probe {
        /// A probe is in flight; wait for its answer or the next heartbeat.
        sent: bool,
    },
    /// Logs agree up to `match_index`; entries are streamed with `next_index` advanced
    /// optimistically.
    Replicate,
    /// An InstallSnapshot is in flight.
    Snapshot {
        /// The index of the snapshot sent.
        index: u64,
        /// The leader's tick when it was sent (to resend after a timeout).
        sent_at: u64,
    },
}

/// The leader's bookkeeping for one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// The highest index known to be replicated on the follower.
    pub(crate) match_index: u64,
    /// The next index to send.
    pub(crate) next_index: u64,
    /// How sending proceeds.
    pub(crate) state: FlowState,
    /// Last index of each AppendEntries in flight (Replicate only).
    pub(crate) inflight: VecDeque<u64>,
    /// `match_index` advanced since the last heartbeat; without progress the leader
    /// assumes the in-flight appends were lost and falls back to probing.
    pub(crate) progressed: bool,
    /// The follower answered during the current check-quorum window.
    pub(crate) recent_active: bool,
    /// The highest `read_seq` the follower echoed in this term.
    pub(crate) acked_seq: u64,
    /// The leader's tick when the follower last answered (for the buggy lease).
    pub(crate) last_ack_tick: u64,
}

impl Progress {
    pub(crate) fn new(last_index: u64, now: u64) -> Self {
        Progress {
            match_index: 0,
            next_index: last_index + 1,
            state: FlowState::Probe { sent: false },
            inflight: VecDeque::new(),
            progressed: false,
            // A new leader gives every follower one full window before check-quorum.
            recent_active: true,
            acked_seq: 0,
            last_ack_tick: now,
        }
    }

    /// True when nothing more may be sent until an answer arrives.
    pub(crate) fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            FlowState::Probe { sent } => sent,
            FlowState::Replicate => self.inflight.len() >= max_inflight,
            FlowState::Snapshot { .. } => true,
        }
    }

    /// Restart probing from `next_index`.
    pub(crate) fn become_probe(&mut self, next_index: u64) {
        self.state = FlowState::Probe { sent: false };
        self.next_index = next_index.max(self.match_index + 1);
        self.inflight.clear();
    }

    /// Records a successful answer; returns true when `match_index` advanced.
    pub(crate) fn record_match(&mut self, index: u64) -> bool {
        let advanced = index > self.match_index;
        if advanced {
            self.match_index = index;
            self.progressed = true;
        }
        self.next_index = self.next_index.max(index + 1);
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        advanced
    }
}
