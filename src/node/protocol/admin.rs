//! The admin API: its operations ([`AdminOp`]) and the typed value each one answers
//! with ([`Status`], [`Digest`], [`LogTerms`], [`ClockSkew`]). The node serializes these
//! structs into its replies and the harness decodes them with [`decode_value`], whose
//! errors name the field that did not fit.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use splitbrain_raft::Role;

/// One admin request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminRequest {
    pub id: u64,
    #[serde(flatten)]
    pub op: AdminOp,
}

/// The operations of the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum AdminOp {
    /// Answers a [`Status`].
    Status,
    /// Answers a [`Digest`].
    Digest {
        /// Also report the applied-history chain as it was at this index, if the node
        /// still remembers it (`history_at`, null otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<u64>,
    },
    /// Answers [`LogTerms`].
    LogTerms,
    /// Sets the clock's skew; answers the [`ClockSkew`] now in force.
    Clock {
        #[serde(default)]
        offset_ms: i64,
        #[serde(default = "default_rate")]
        rate: f64,
    },
    /// Removes the clock's skew; answers the [`ClockSkew`] now in force.
    ClockReset,
}

fn default_rate() -> f64 {
    1.0
}

impl AdminOp {
    /// The operation's name on the wire (`status`, `log-terms`, ...), for messages.
    pub fn name(&self) -> &'static str {
        match self {
            AdminOp::Status => "status",
            AdminOp::Digest { .. } => "digest",
            AdminOp::LogTerms => "log-terms",
            AdminOp::Clock { .. } => "clock",
            AdminOp::ClockReset => "clock-reset",
        }
    }
}

/// How the node serves reads (`--read-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ReadMode {
    /// Linearizable: the leader confirms its leadership with a heartbeat quorum
    /// (read index), then serves once it applied up to that index.
    ReadIndex,
    /// Linearizable: reads are proposed and answered when applied, like writes.
    Log,
    /// Leader lease: no quorum round while the lease (counted in clock ticks) lasts.
    /// Correct only while clocks behave.
    Lease,
    /// Any replica serves from its local state: stale reads are expected.
    Local,
}

impl ReadMode {
    pub const ALL: [ReadMode; 4] = [
        ReadMode::ReadIndex,
        ReadMode::Log,
        ReadMode::Lease,
        ReadMode::Local,
    ];

    /// The name on the command line and the wire (`read-index`, `log`, `lease`, `local`).
    pub fn name(self) -> &'static str {
        match self {
            ReadMode::ReadIndex => "read-index",
            ReadMode::Log => "log",
            ReadMode::Lease => "lease",
            ReadMode::Local => "local",
        }
    }
}

/// A node's skewable clock, as `status`, `clock` and `clock-reset` report it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockSkew {
    /// Milliseconds added to elapsed time.
    pub offset_ms: i64,
    /// Multiplier applied to the passage of real time.
    pub rate: f64,
}

/// The answer to `status`: the node's consensus state as it sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The node's Raft id.
    pub id: u64,
    /// Its human name (`n1`, ...).
    pub name: String,
    pub role: Role,
    pub term: u64,
    /// Whom it voted for in `term`.
    pub voted_for: Option<u64>,
    /// The leader it knows of in `term` (a node id).
    pub leader: Option<u64>,
    /// The highest index it knows committed.
    pub commit_index: u64,
    /// The index of the last entry its state machine applied.
    pub applied_index: u64,
    /// The index of its last log entry (or of its snapshot when the log is empty).
    pub last_index: u64,
    /// The index its latest snapshot covers (0 if none).
    pub snapshot_index: u64,
    /// How many entries it holds after the snapshot.
    pub log_entries: u64,
    pub read_mode: ReadMode,
    pub clock: ClockSkew,
}

/// The answer to `digest`: a summary of the state machine, comparable across replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub applied_index: u64,
    /// FNV-1a 64 over the canonical JSON of the sorted data, as 16 hex digits.
    pub digest: String,
    /// A hash chain over every applied entry's (index, term, data), no-ops included, as
    /// 16 hex digits: replicas that ever applied different entries keep different chains.
    pub history: String,
    /// How many keys the state holds.
    pub keys: u64,
    /// The chain at the index the request's `at` asked for: absent (`None`) when `at` was
    /// not given, null (`Some(None)`) when the node no longer remembers that index.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub history_at: Option<Option<HistoryAt>>,
}

/// The applied-history chain as it was at one index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryAt {
    pub index: u64,
    /// The chain after applying `index`, as 16 hex digits.
    pub history: String,
}

/// The answer to `log-terms`: the term of every entry the node holds after its snapshot,
/// committed or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogTerms {
    pub snapshot_index: u64,
    pub snapshot_term: u64,
    /// `(index, term)` per entry, in index order; `[index, term]` on the wire.
    pub entries: Vec<(u64, u64)>,
}

/// Deserializes a field that is present (possibly null) as `Some(..)`, so that a missing
/// field (`#[serde(default)]`: `None`) and an explicit null (`Some(None)`) stay apart.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Why a reply's value is not the type its operation answers with.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct DecodeError {
    /// Where in the value decoding failed (`role`, `clock.rate`; `.` for the whole).
    pub path: String,
    pub source: serde_json::Error,
}

/// Decodes a reply's `value` into `T`, naming the field that did not fit.
pub fn decode_value<T: DeserializeOwned>(value: Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(|e| DecodeError {
        path: e.path().to_string(),
        source: e.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// Serializes `reply` (through a JSON value, as the node does: keys come out sorted)
    /// and checks it is exactly `documented`, then that `documented` decodes back to it.
    fn round_trip<T>(reply: &T, documented: Value)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let sent = serde_json::to_value(reply).expect("serializes");
        assert_eq!(sent, documented);
        let back: T = serde_json::from_value(documented).expect("decodes");
        assert_eq!(&back, reply);
    }

    #[test]
    fn status_round_trips_the_documented_json() {
        let status = Status {
            id: 2,
            name: "n2".into(),
            role: Role::PreCandidate,
            term: 7,
            voted_for: Some(3),
            leader: None,
            commit_index: 40,
            applied_index: 39,
            last_index: 41,
            snapshot_index: 20,
            log_entries: 21,
            read_mode: ReadMode::ReadIndex,
            clock: ClockSkew {
                offset_ms: -250,
                rate: 0.5,
            },
        };
        round_trip(
            &status,
            json!({"id":2,"name":"n2","role":"pre-candidate","term":7,"voted_for":3,
                   "leader":null,"commit_index":40,"applied_index":39,"last_index":41,
                   "snapshot_index":20,"log_entries":21,"read_mode":"read-index",
                   "clock":{"offset_ms":-250,"rate":0.5}}),
        );
        // Every role keeps its documented name (`leader` stays `leader`).
        for (role, name) in [
            (Role::Leader, "leader"),
            (Role::Follower, "follower"),
            (Role::Candidate, "candidate"),
            (Role::PreCandidate, "pre-candidate"),
        ] {
            assert_eq!(serde_json::to_value(role).expect("role"), json!(name));
        }
    }

    #[test]
    fn digest_round_trips_with_and_without_history_at() {
        let plain = Digest {
            applied_index: 12,
            digest: "00112233aabbccdd".into(),
            history: "0123456789abcdef".into(),
            keys: 3,
            history_at: None,
        };
        // Not asked for: the field is absent.
        round_trip(
            &plain,
            json!({"applied_index":12,"digest":"00112233aabbccdd",
                   "history":"0123456789abcdef","keys":3}),
        );
        // Asked for an index the node no longer remembers: null.
        let forgotten = Digest {
            history_at: Some(None),
            ..plain.clone()
        };
        round_trip(
            &forgotten,
            json!({"applied_index":12,"digest":"00112233aabbccdd",
                   "history":"0123456789abcdef","keys":3,"history_at":null}),
        );
        let remembered = Digest {
            history_at: Some(Some(HistoryAt {
                index: 9,
                history: "fedcba9876543210".into(),
            })),
            ..plain
        };
        round_trip(
            &remembered,
            json!({"applied_index":12,"digest":"00112233aabbccdd",
                   "history":"0123456789abcdef","keys":3,
                   "history_at":{"index":9,"history":"fedcba9876543210"}}),
        );
    }

    #[test]
    fn log_terms_and_clock_round_trip() {
        round_trip(
            &LogTerms {
                snapshot_index: 20,
                snapshot_term: 2,
                entries: vec![(21, 2), (22, 3)],
            },
            json!({"snapshot_index":20,"snapshot_term":2,"entries":[[21,2],[22,3]]}),
        );
        round_trip(
            &ClockSkew {
                offset_ms: 5,
                rate: 2.0,
            },
            json!({"offset_ms":5,"rate":2.0}),
        );
    }

    #[test]
    fn a_reply_that_does_not_fit_names_the_field() {
        let err = decode_value::<Status>(json!({"id":1,"role":"boss"})).expect_err("bad role");
        let text = err.to_string();
        assert!(text.contains("role") && text.contains("boss"), "{text}");
        let err =
            decode_value::<ClockSkew>(json!({"offset_ms":1,"rate":"fast"})).expect_err("bad rate");
        assert!(err.to_string().starts_with("rate:"), "{err}");
    }
}
