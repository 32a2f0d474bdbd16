//! The two values that cross the boundary between a generator, a worker and a client:
//! [`Op`], what a worker is asked to invoke (it becomes the `invoke` event of the
//! history), and [`Completion`], how the client says the operation ended (it becomes the
//! `ok`, `fail` or `info` event).
//!
//! They live apart from the generators and the clients because both sides use them and
//! neither owns them; the driver only copies their fields into history events.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use splitbrain_checker::{EventType, Key};

/// One operation a generator asks a worker to perform, in the history's vocabulary
/// (see the README, "The history format").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// The operation's function: `read`, `write`, `cas`, `acquire`, `release`, `add` or
    /// `txn`.
    pub f: String,
    /// The independent key, or `None` for the single object of a workload (the register,
    /// the lock, the set) and for multi-key transactions, as Jepsen records them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// The invocation's argument: `null` for reads, the value written, `[expected, new]`
    /// for `cas`, the element added, or the list of micro-operations of a `txn`.
    #[serde(default)]
    pub value: Value,
}

impl Op {
    pub fn new(f: &str, key: Option<Key>, value: Value) -> Op {
        Op {
            f: f.to_string(),
            key,
            value,
        }
    }

    /// True when the operation cannot change the state of the system under test: a
    /// `read`, or a `txn` made only of reads. Such an operation that ends in doubt
    /// certainly had no effect, so a client may report it as `fail` (Jepsen does the
    /// same) and spare the driver a new process number.
    pub fn is_read_only(&self) -> bool {
        match self.f.as_str() {
            "read" => true,
            "txn" => self.value.as_array().is_some_and(|micro_ops| {
                micro_ops.iter().all(|m| {
                    m.as_array()
                        .and_then(|parts| parts.first())
                        .and_then(Value::as_str)
                        .is_some_and(|f| f == "r" || f == "read")
                })
            }),
            _ => false,
        }
    }
}

/// How an operation ended, as the client classified it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// `Ok` (took effect), `Fail` (certainly did not) or `Info` (unknown). Never
    /// `Invoke`.
    pub kind: EventType,
    /// The completion's value: what a read returned (normalised for the checker's
    /// models), or the invocation's value for everything else.
    pub value: Value,
    /// Why the operation failed or is in doubt (`cas-mismatch`, `not-leader`,
    /// `timeout`, `connection-closed`, ...); `None` for `ok`.
    pub error: Option<String>,
    /// What else the client learned from the answer (etcd's `revision`, an external
    /// adapter's own fields), kept in the completion event's
    /// [`extra`](splitbrain_checker::Event::extra) for people to read; the checkers
    /// ignore it. Empty unless the client adds to it ([`Completion::with_extra`]).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, Value>,
}

impl Completion {
    pub fn ok(value: Value) -> Completion {
        Completion {
            kind: EventType::Ok,
            value,
            error: None,
            extra: serde_json::Map::new(),
        }
    }

    pub fn fail(value: Value, error: impl Into<String>) -> Completion {
        Completion {
            kind: EventType::Fail,
            value,
            error: Some(error.into()),
            extra: serde_json::Map::new(),
        }
    }

    pub fn info(value: Value, error: impl Into<String>) -> Completion {
        Completion {
            kind: EventType::Info,
            value,
            error: Some(error.into()),
            extra: serde_json::Map::new(),
        }
    }

    /// Adds one extra field (replacing one of the same name). A name that is one of the
    /// history's own fields (`f`, `value`, ...: [`Event::FIELDS`](splitbrain_checker::Event::FIELDS))
    /// is not written to the history.
    pub fn with_extra(mut self, key: impl Into<String>, value: impl Into<Value>) -> Completion {
        self.extra.insert(key.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn read_only_covers_reads_and_read_only_txns() {
        assert!(Op::new("read", None, Value::Null).is_read_only());
        assert!(!Op::new("write", None, json!(1)).is_read_only());
        let reads = json!([["r", 1, null], ["r", 2, null]]);
        assert!(Op::new("txn", None, reads).is_read_only());
        let mixed = json!([["r", 1, null], ["append", 2, 5]]);
        assert!(!Op::new("txn", None, mixed).is_read_only());
        assert!(!Op::new("txn", None, json!("garbage")).is_read_only());
    }

    #[test]
    fn extra_fields_are_empty_unless_added() {
        assert!(Completion::ok(json!(1)).extra.is_empty());
        let done = Completion::ok(json!(1))
            .with_extra("revision", 12)
            .with_extra("revision", 13);
        assert_eq!(Value::Object(done.extra), json!({"revision": 13}));
    }
}
