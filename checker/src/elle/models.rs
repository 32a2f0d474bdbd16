//! Which consistency models each anomaly rules out, and the strongest one left.
//!
//! Elle works on a lattice of dozens of models; we keep the chain users ask about, from
//! weakest to strongest: read-uncommitted, read-committed, snapshot-isolation,
//! serializable, strong-session-serializable (serializable, and each process sees its
//! own earlier transactions in order), strict-serializable (serializable, and
//! transactions respect real time). Treating snapshot isolation as weaker than
//! serializability is exact for the anomalies checked here (every anomaly that rules out
//! snapshot isolation also rules out serializability), though not in general.
//!
//! Each anomaly rules out the weakest model that forbids it and everything above it
//! (Adya's definitions, as Elle applies them):
//! - `G0` (write cycles), and what no model allows (`garbage-read`, `future-read`,
//!   `duplicate-elements`, `incompatible-order`): read-uncommitted and up;
//! - `G1a`, `G1b`, `G1c`: read-committed and up;
//! - `G-single` and `G-nonadjacent` (two or more rw edges, none adjacent): snapshot
//!   isolation and up; `G2-item` (rw edges that are adjacent): serializable and up;
//! - `internal`: snapshot-isolation and up. A transaction that does not see its own
//!   appends violates every model, but the same check also flags two reads of one key
//!   that differ, which read-committed permits (non-repeatable reads); we err on the
//!   side of never wrongly ruling out read-committed;
//! - every `-process` variant: strong-session-serializable and up (the cycle needs the
//!   order of one process's transactions);
//! - every `-realtime` variant: strict-serializable only.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A consistency model of the chain, weakest first (the derived order is strength).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsistencyModel {
    ReadUncommitted,
    ReadCommitted,
    SnapshotIsolation,
    Serializable,
    StrongSessionSerializable,
    StrictSerializable,
}

/// Every model, weakest first.
pub const MODELS: [ConsistencyModel; 6] = [
    ConsistencyModel::ReadUncommitted,
    ConsistencyModel::ReadCommitted,
    ConsistencyModel::SnapshotIsolation,
    ConsistencyModel::Serializable,
    ConsistencyModel::StrongSessionSerializable,
    ConsistencyModel::StrictSerializable,
];

/// Every anomaly kind the checker reports, in the order results list them.
pub const ANOMALY_KINDS: [&str; 22] = [
    "garbage-read",
    "future-read",
    "duplicate-elements",
    "incompatible-order",
    "internal",
    "G0",
    "G1a",
    "G1b",
    "G1c",
    "G-single",
    "G-nonadjacent",
    "G2-item",
    "G0-process",
    "G1c-process",
    "G-single-process",
    "G-nonadjacent-process",
    "G2-item-process",
    "G0-realtime",
    "G1c-realtime",
    "G-single-realtime",
    "G-nonadjacent-realtime",
    "G2-item-realtime",
];

impl ConsistencyModel {
    pub fn name(self) -> &'static str {
        match self {
            ConsistencyModel::ReadUncommitted => "read-uncommitted",
            ConsistencyModel::ReadCommitted => "read-committed",
            ConsistencyModel::SnapshotIsolation => "snapshot-isolation",
            ConsistencyModel::Serializable => "serializable",
            ConsistencyModel::StrongSessionSerializable => "strong-session-serializable",
            ConsistencyModel::StrictSerializable => "strict-serializable",
        }
    }
}

impl fmt::Display for ConsistencyModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model name that is not in [`MODELS`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown consistency model `{0}`; known: read-uncommitted, read-committed, snapshot-isolation, serializable, strong-session-serializable, strict-serializable")]
pub struct UnknownModel(pub String);

impl FromStr for ConsistencyModel {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MODELS
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
}

/// The weakest model that forbids `kind` (all stronger ones forbid it too); `None` for
/// a kind this module does not know.
pub fn weakest_ruled_out(kind: &str) -> Option<ConsistencyModel> {
    use ConsistencyModel::*;
    if kind.ends_with("-realtime") {
        return Some(StrictSerializable);
    }
    if kind.ends_with("-process") {
        return Some(StrongSessionSerializable);
    }
    match kind {
        "garbage-read" | "future-read" | "duplicate-elements" | "incompatible-order" | "G0" => {
            Some(ReadUncommitted)
        }
        "G1a" | "G1b" | "G1c" => Some(ReadCommitted),
        "internal" | "G-single" | "G-nonadjacent" => Some(SnapshotIsolation),
        "G2-item" => Some(Serializable),
        _ => None,
    }
}

/// What a set of anomalies says about the models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Models ruled out, weakest first.
    pub not: Vec<ConsistencyModel>,
    /// The strongest model not ruled out.
    pub strongest: Option<ConsistencyModel>,
}

/// Judges the models against the anomaly kinds found. An unknown kind rules out
/// everything: better a false alarm than a silent pass.
pub fn judge<'a>(kinds: impl IntoIterator<Item = &'a str>) -> Judgement {
    let weakest = kinds
        .into_iter()
        .map(|k| weakest_ruled_out(k).unwrap_or(ConsistencyModel::ReadUncommitted))
        .min();
    match weakest {
        None => Judgement {
            not: Vec::new(),
            strongest: Some(ConsistencyModel::StrictSerializable),
        },
        Some(w) => Judgement {
            not: MODELS.into_iter().filter(|m| *m >= w).collect(),
            strongest: MODELS.into_iter().filter(|m| *m < w).max(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConsistencyModel::*;

    #[test]
    fn every_kind_has_a_model() {
        for kind in ANOMALY_KINDS {
            assert!(weakest_ruled_out(kind).is_some(), "{kind}");
        }
    }

    #[test]
    fn judgements_follow_the_chain() {
        let j = judge([]);
        assert_eq!(j.strongest, Some(StrictSerializable));
        assert!(j.not.is_empty());
        let j = judge(["G-single-realtime"]);
        assert_eq!(j.not, vec![StrictSerializable]);
        assert_eq!(j.strongest, Some(StrongSessionSerializable));
        let j = judge(["G2-item", "G1c-process"]);
        assert_eq!(j.strongest, Some(SnapshotIsolation));
        let j = judge(["G-single"]);
        assert_eq!(j.strongest, Some(ReadCommitted));
        let j = judge(["G1b"]);
        assert_eq!(j.strongest, Some(ReadUncommitted));
        let j = judge(["G0"]);
        assert_eq!(j.strongest, None);
        assert_eq!(j.not.len(), MODELS.len());
    }

    #[test]
    fn names_round_trip() {
        for m in MODELS {
            assert_eq!(m.name().parse::<ConsistencyModel>(), Ok(m));
        }
        assert!("linearizable".parse::<ConsistencyModel>().is_err());
    }
}
