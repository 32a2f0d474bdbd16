//! The replicated key-value state machine: what a committed log entry does.
//!
//! Values are arbitrary JSON. Every replica applies the same committed commands in the
//! same order and so reaches the same state; [`KvState::digest`] lets the harness check
//! that. Command outcomes (a cas mismatch, an append to a non-list) are decided here, at
//! apply time, so that every replica agrees on them too.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use splitbrain_node_protocol::{Command, MicroFn, MicroOp};

/// A command that was applied (it used its log slot) but had no effect.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// A cas whose expected value was not the current one.
    #[error("cas-mismatch")]
    CasMismatch { current: Value },
    /// An append to a key whose value is not a list.
    #[error("key {key:?} holds a non-list value; append needs a list")]
    NotAList { key: String },
}

/// The key-value state plus the index of the last applied log entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KvState {
    /// Index of the last log entry applied to `data`.
    pub applied_index: u64,
    /// The keys and values; a BTreeMap so that serialization (snapshots, digest) is
    /// deterministic.
    pub data: BTreeMap<String, Value>,
    /// A hash chain over every applied entry's (index, term, data), no-ops included.
    /// Two replicas that applied different entries at some index keep different chains
    /// forever, even after later writes make their data equal again — which is what a
    /// diverged register looks like by the time the run heals. Travels in snapshots, so
    /// a node that installs one continues the sender's chain.
    #[serde(default)]
    pub applied_chain: u64,
}

/// A digest of the state, comparable across replicas (the admin API's `digest` answer).
pub use splitbrain_node_protocol::Digest;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn append_to(current: Option<&Value>, key: &str, value: Value) -> Result<Value, ApplyError> {
    match current {
        None | Some(Value::Null) => Ok(Value::Array(vec![value])),
        Some(Value::Array(list)) => {
            let mut list = list.clone();
            list.push(value);
            Ok(Value::Array(list))
        }
        Some(_) => Err(ApplyError::NotAList {
            key: key.to_string(),
        }),
    }
}

impl KvState {
    /// The value at `key`, null when absent.
    pub fn get(&self, key: &str) -> Value {
        self.data.get(key).cloned().unwrap_or(Value::Null)
    }

    /// Executes a command without changing the state (reads, and any command evaluated
    /// against a local replica); writes are rejected by the caller before this.
    pub fn read(&self, cmd: &Command) -> Value {
        match cmd {
            Command::Get { key } => self.get(key),
            Command::Txn { ops } => Value::Array(
                ops.iter()
                    .map(|MicroOp(f, k, v)| {
                        let v = if *f == MicroFn::Read {
                            self.get(k)
                        } else {
                            v.clone()
                        };
                        serde_json::json!([f, k, v])
                    })
                    .collect(),
            ),
            _ => Value::Null,
        }
    }

    /// Applies a committed command at `index`, returning the reply value.
    pub fn apply(&mut self, index: u64, cmd: &Command) -> Result<Value, ApplyError> {
        self.applied_index = self.applied_index.max(index);
        match cmd {
            Command::Get { key } => Ok(self.get(key)),
            Command::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                Ok(Value::Null)
            }
            Command::Cas { key, from, to } => {
                let current = self.get(key);
                if &current != from {
                    return Err(ApplyError::CasMismatch { current });
                }
                self.data.insert(key.clone(), to.clone());
                Ok(Value::Null)
            }
            Command::Append { key, value } => {
                let new = append_to(self.data.get(key), key, value.clone())?;
                self.data.insert(key.clone(), new.clone());
                Ok(new)
            }
            Command::Txn { ops } => {
                // Stage writes in an overlay so that a failing micro-op leaves no trace.
                let mut overlay: BTreeMap<&str, Value> = BTreeMap::new();
                let mut out = Vec::with_capacity(ops.len());
                for MicroOp(f, k, v) in ops {
                    let current = overlay.get(k.as_str()).or_else(|| self.data.get(k));
                    match f {
                        MicroFn::Read => {
                            let read = current.cloned().unwrap_or(Value::Null);
                            out.push(MicroOp(*f, k.clone(), read));
                        }
                        MicroFn::Write => {
                            overlay.insert(k, v.clone());
                            out.push(MicroOp(*f, k.clone(), v.clone()));
                        }
                        MicroFn::Append => {
                            let new = append_to(current, k, v.clone())?;
                            overlay.insert(k, new);
                            out.push(MicroOp(*f, k.clone(), v.clone()));
                        }
                    }
                }
                for (k, v) in overlay {
                    self.data.insert(k.to_string(), v);
                }
                serde_json::to_value(out).map_err(|_| ApplyError::NotAList { key: String::new() })
            }
        }
    }

    /// A deterministic digest of the data and the applied index.
    pub fn digest(&self) -> Digest {
        // serde_json maps are BTreeMaps (no preserve_order feature), so nested objects
        // serialize in sorted key order as well.
        let bytes = serde_json::to_vec(&self.data).unwrap_or_default();
        let hash = fnv1a(FNV_OFFSET, &bytes);
        Digest {
            applied_index: self.applied_index,
            digest: format!("{hash:016x}"),
            history: format!("{:016x}", self.applied_chain),
            keys: self.data.len() as u64,
            history_at: None,
        }
    }

    /// Extends the applied-entries chain with the entry at `index` of `term` carrying
    /// `data`; called once per entry, in log order, whether or not it changes the data.
    pub fn chain_applied(&mut self, index: u64, term: u64, data: &[u8]) {
        let mut hash = fnv1a(self.applied_chain ^ FNV_OFFSET, &index.to_le_bytes());
        hash = fnv1a(hash, &term.to_le_bytes());
        self.applied_chain = fnv1a(hash, data);
    }

    /// Serializes the state for a snapshot.
    pub fn to_snapshot_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Restores the state from snapshot bytes.
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<KvState, serde_json::Error> {
        if bytes.is_empty() {
            return Ok(KvState::default());
        }
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmd(v: Value) -> Command {
        serde_json::from_value(v).expect("valid command")
    }

    #[test]
    fn put_get_cas_append() {
        let mut kv = KvState::default();
        assert_eq!(
            kv.apply(1, &cmd(json!({"op":"put","key":"a","value":1}))),
            Ok(Value::Null)
        );
        assert_eq!(kv.get("a"), json!(1));
        let mismatch = kv.apply(2, &cmd(json!({"op":"cas","key":"a","from":2,"to":3})));
        assert_eq!(mismatch, Err(ApplyError::CasMismatch { current: json!(1) }));
        assert_eq!(
            kv.apply(3, &cmd(json!({"op":"cas","key":"a","from":1,"to":3}))),
            Ok(Value::Null)
        );
        assert_eq!(kv.get("a"), json!(3));
        assert_eq!(
            kv.apply(4, &cmd(json!({"op":"append","key":"l","value":1}))),
            Ok(json!([1]))
        );
        assert_eq!(
            kv.apply(5, &cmd(json!({"op":"append","key":"l","value":2}))),
            Ok(json!([1, 2]))
        );
        let bad = kv.apply(6, &cmd(json!({"op":"append","key":"a","value":2})));
        assert!(matches!(bad, Err(ApplyError::NotAList { .. })));
        assert_eq!(kv.applied_index, 6);
    }

    #[test]
    fn txn_reads_see_earlier_writes_and_fail_atomically() {
        let mut kv = KvState::default();
        let t = cmd(
            json!({"op":"txn","ops":[["r","x",null],["w","x",1],["append","y",5],["r","x",null],["r","y",null]]}),
        );
        let out = kv.apply(1, &t).expect("txn applies");
        assert_eq!(
            out,
            json!([
                ["r", "x", null],
                ["w", "x", 1],
                ["append", "y", 5],
                ["r", "x", 1],
                ["r", "y", [5]]
            ])
        );
        let bad = cmd(json!({"op":"txn","ops":[["w","z",1],["append","x",2]]}));
        assert!(kv.apply(2, &bad).is_err());
        assert_eq!(kv.get("z"), Value::Null, "failed txn must leave no trace");
        assert!(!t.is_read_only());
        assert!(cmd(json!({"op":"txn","ops":[["r","x",null]]})).is_read_only());
    }

    #[test]
    fn digest_is_deterministic_and_snapshot_round_trips() {
        let mut a = KvState::default();
        let mut b = KvState::default();
        a.apply(
            1,
            &cmd(json!({"op":"put","key":"k1","value":{"b":1,"a":2}})),
        )
        .ok();
        a.apply(2, &cmd(json!({"op":"put","key":"k2","value":2})))
            .ok();
        b.apply(1, &cmd(json!({"op":"put","key":"k2","value":2})))
            .ok();
        b.apply(
            2,
            &cmd(json!({"op":"put","key":"k1","value":{"a":2,"b":1}})),
        )
        .ok();
        assert_eq!(a.digest(), b.digest());
        let restored = KvState::from_snapshot_bytes(&a.to_snapshot_bytes()).expect("round trip");
        assert_eq!(restored, a);
        b.apply(3, &cmd(json!({"op":"put","key":"k2","value":3})))
            .ok();
        assert_ne!(a.digest().digest, b.digest().digest);
    }

    #[test]
    fn applied_chain_remembers_a_difference_the_data_has_forgotten() {
        let put = |v: i64| cmd(json!({"op":"put","key":"k","value":v}));
        let run = |first: i64| {
            let mut kv = KvState::default();
            for (index, value) in [(1, first), (2, 9)] {
                let c = put(value);
                kv.chain_applied(index, 1, &serde_json::to_vec(&c).expect("encodes"));
                kv.apply(index, &c).expect("put applies");
            }
            kv
        };
        let (a, b, a_again) = (run(1), run(2), run(1));
        assert_eq!(
            a.digest().digest,
            b.digest().digest,
            "same data after index 2"
        );
        assert_ne!(
            a.digest().history,
            b.digest().history,
            "different entries at 1"
        );
        assert_eq!(a.digest(), a_again.digest());
        let restored = KvState::from_snapshot_bytes(&a.to_snapshot_bytes()).expect("round trip");
        assert_eq!(
            restored.applied_chain, a.applied_chain,
            "the chain travels in snapshots"
        );
        let old: KvState = serde_json::from_str(r#"{"applied_index":3,"data":{}}"#).expect("old");
        assert_eq!(
            old.applied_chain, 0,
            "snapshots from before the chain still load"
        );
    }
}
