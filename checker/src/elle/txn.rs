//! Turning `txn` operations into micro-operations: list-append (`append`, `r` of a
//! list) or rw-register (`w`, `r` of a single value).
//!
//! This is the only place that looks at JSON: keys and appended values (integers or
//! strings) are interned into dense `u32` ids, so everything downstream compares and
//! indexes integers, and a read of a thousand elements costs a thousand integer compares
//! rather than a thousand JSON comparisons. Values are interned per key: the same value
//! appended to two keys is two distinct elements.

use super::{ElleError, TxnRef};
use crate::history::{Key, Operation, Operations, Outcome};
use hashbrown::HashMap;
use serde_json::Value;

/// "No such transaction / element / position".
pub(crate) const NONE: u32 = u32::MAX;

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    Info,
    Fail,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Info => "info",
            Status::Fail => "fail",
        }
    }
}

/// One micro-operation, with interned key and elements.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mop {
    Append {
        key: u32,
        elem: u32,
    },
    Read {
        key: u32,
        /// The list read; `None` when unknown (the transaction did not complete `ok`).
        list: Option<Vec<u32>>,
        /// The first micro-operation of its transaction on this key: what it read is
        /// the state other transactions left, so it yields wr/rw dependencies. Later
        /// reads only show the transaction's own view and are checked for internal
        /// consistency instead.
        external: bool,
    },
    /// rw-register: `["w", key, value]`.
    Write {
        key: u32,
        elem: u32,
    },
    /// rw-register: `["r", key, value]`.
    ReadValue {
        key: u32,
        /// The value read: `Some(NONE)` for nil (the initial state), `None` when unknown
        /// (the transaction did not complete `ok`).
        value: Option<u32>,
        /// The first micro-operation of its transaction on this key (see `Read`).
        external: bool,
    },
}

/// Which datatype the micro-operations act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Datatype {
    #[default]
    ListAppend,
    RwRegister,
}

/// One transaction.
#[derive(Debug)]
pub(crate) struct Txn<'a> {
    pub op: &'a Operation,
    pub status: Status,
    pub mops: Vec<Mop>,
}

impl Txn<'_> {
    pub(crate) fn txn_ref(&self) -> TxnRef {
        TxnRef {
            id: self.op.id,
            process: self.op.process,
            invoke_index: self.op.invoke_index,
            status: self.status.as_str().to_string(),
        }
    }
}

/// The transactions of a history, and the interning tables.
#[derive(Debug, Default)]
pub(crate) struct Parsed<'a> {
    /// The datatype (decides the words of explanations).
    pub datatype: Datatype,
    /// Transactions that completed `ok` or `info`: the dependency graph's nodes, in
    /// invocation order. A transaction's node id is its position here.
    pub txns: Vec<Txn<'a>>,
    /// Transactions that completed `fail`.
    pub failed: Vec<Txn<'a>>,
    /// Operations that are not `txn`s.
    pub skipped: usize,
    /// Key id -> key.
    pub keys: Vec<Key>,
    /// Element id -> (key id, value).
    pub elems: Vec<(u32, Key)>,
    /// Element id -> the node that appended it (`ok` or `info`), or [`NONE`].
    pub appender: Vec<u32>,
    /// Element id -> the failed transaction that appended it, or [`NONE`].
    pub failed_appender: Vec<u32>,
    /// Element id -> true if its appender appended another value to the same key later
    /// in the same transaction (so a read ending with it saw an intermediate state).
    pub intermediate: Vec<bool>,
}

impl Parsed<'_> {
    pub(crate) fn key(&self, key: u32) -> &Key {
        &self.keys[key as usize]
    }

    pub(crate) fn value(&self, elem: u32) -> &Key {
        &self.elems[elem as usize].1
    }
}

/// Interning tables while parsing.
#[derive(Default)]
struct Interner {
    key_ids: HashMap<Key, u32>,
    /// Per key id: value -> element id.
    elem_ids: Vec<HashMap<Key, u32>>,
}

/// Parses every `txn` operation; fails on the first malformed one.
pub(crate) fn parse(ops: &Operations, datatype: Datatype) -> Result<Parsed<'_>, ElleError> {
    let mut parsed = Parsed {
        datatype,
        ..Parsed::default()
    };
    let mut interner = Interner::default();
    for op in &ops.ops {
        if op.f != "txn" {
            parsed.skipped += 1;
            continue;
        }
        let (status, value) = match op.outcome {
            Outcome::Ok => (Status::Ok, &op.output),
            // An indeterminate transaction's reads are unknown: use the invocation.
            Outcome::Info => (Status::Info, &op.input),
        };
        let mops = parse_mops(op, value, status, &mut interner, &mut parsed)?;
        parsed.txns.push(Txn { op, status, mops });
    }
    for op in &ops.failed {
        if op.f != "txn" {
            parsed.skipped += 1;
            continue;
        }
        let mops = parse_mops(op, &op.input, Status::Fail, &mut interner, &mut parsed)?;
        parsed.failed.push(Txn {
            op,
            status: Status::Fail,
            mops,
        });
    }
    record_appenders(&mut parsed)?;
    Ok(parsed)
}

fn malformed(op: &Operation, reason: String) -> ElleError {
    ElleError::MalformedTxn {
        id: op.id,
        process: op.process,
        invoke_index: op.invoke_index,
        reason,
    }
}

fn parse_mops(
    op: &Operation,
    value: &Value,
    status: Status,
    interner: &mut Interner,
    parsed: &mut Parsed<'_>,
) -> Result<Vec<Mop>, ElleError> {
    let Value::Array(items) = value else {
        return Err(malformed(
            op,
            format!("the value must be a list of micro-operations like [\"append\", k, v] or [\"r\", k, [v...]]; got {value}"),
        ));
    };
    let mut mops = Vec::with_capacity(items.len());
    // Keys this transaction touched so far: decides which reads are external.
    let mut touched: Vec<u32> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Array(parts) = item else {
            return Err(malformed(
                op,
                format!("micro-operation {i} must be a list [f, key, value]; got {item}"),
            ));
        };
        let (f, key, arg) = match parts.as_slice() {
            [f, k, v] => (f, k, v),
            [f, k] => (f, k, &Value::Null),
            _ => {
                return Err(malformed(
                    op,
                    format!("micro-operation {i} must have 3 parts [f, key, value]; got {item}"),
                ))
            }
        };
        let Some(key) = Key::from_json(key) else {
            return Err(malformed(
                op,
                format!("micro-operation {i}: the key must be an integer or a string; got {key}"),
            ));
        };
        let key = interner.key(key, parsed);
        let first_touch = !touched.contains(&key);
        if first_touch {
            touched.push(key);
        }
        if parsed.datatype == Datatype::RwRegister {
            mops.push(register_mop(
                op,
                i,
                f,
                key,
                arg,
                status,
                first_touch,
                interner,
                parsed,
            )?);
            continue;
        }
        match f.as_str() {
            Some("append") => {
                let Some(v) = Key::from_json(arg) else {
                    return Err(malformed(
                        op,
                        format!("micro-operation {i}: an appended value must be an integer or a string; got {arg}"),
                    ));
                };
                let elem = interner.elem(key, v, parsed);
                mops.push(Mop::Append { key, elem });
            }
            Some("r") | Some("read") => {
                let list = match (status, arg) {
                    (Status::Ok, Value::Null) => Some(Vec::new()),
                    (Status::Ok, Value::Array(values)) => {
                        let mut list = Vec::with_capacity(values.len());
                        for v in values {
                            let Some(v) = Key::from_json(v) else {
                                return Err(malformed(
                                    op,
                                    format!("micro-operation {i}: a list element must be an integer or a string; got {v}"),
                                ));
                            };
                            list.push(interner.elem(key, v, parsed));
                        }
                        Some(list)
                    }
                    (Status::Ok, other) => {
                        return Err(malformed(
                            op,
                            format!("micro-operation {i}: a completed read must carry a list or null; got {other}"),
                        ))
                    }
                    _ => None,
                };
                mops.push(Mop::Read {
                    key,
                    list,
                    external: first_touch,
                });
            }
            _ => {
                return Err(malformed(
                    op,
                    format!(
                        "micro-operation {i}: the function must be \"append\" or \"r\"; got {f}"
                    ),
                ))
            }
        }
    }
    Ok(mops)
}

/// One rw-register micro-operation: `["w", k, v]` or `["r", k, v-or-nil]`.
#[allow(clippy::too_many_arguments)]
fn register_mop(
    op: &Operation,
    i: usize,
    f: &Value,
    key: u32,
    arg: &Value,
    status: Status,
    external: bool,
    interner: &mut Interner,
    parsed: &mut Parsed<'_>,
) -> Result<Mop, ElleError> {
    match f.as_str() {
        Some("w") | Some("write") => {
            let Some(v) = Key::from_json(arg) else {
                return Err(malformed(
                    op,
                    format!("micro-operation {i}: a written value must be an integer or a string (nil is the initial state and cannot be written); got {arg}"),
                ));
            };
            let elem = interner.elem(key, v, parsed);
            Ok(Mop::Write { key, elem })
        }
        Some("r") | Some("read") => {
            let value = match (status, arg) {
                (Status::Ok, Value::Null) => Some(NONE),
                (Status::Ok, v) => match Key::from_json(v) {
                    Some(v) => Some(interner.elem(key, v, parsed)),
                    None => {
                        return Err(malformed(
                            op,
                            format!("micro-operation {i}: a register read must carry an integer, a string or nil; got {v}"),
                        ))
                    }
                },
                _ => None,
            };
            Ok(Mop::ReadValue {
                key,
                value,
                external,
            })
        }
        _ => Err(malformed(
            op,
            format!("micro-operation {i}: the function must be \"w\" or \"r\"; got {f}"),
        )),
    }
}

impl Interner {
    fn key(&mut self, key: Key, parsed: &mut Parsed<'_>) -> u32 {
        if let Some(&id) = self.key_ids.get(&key) {
            return id;
        }
        let id = parsed.keys.len() as u32;
        parsed.keys.push(key.clone());
        self.key_ids.insert(key, id);
        self.elem_ids.push(HashMap::new());
        id
    }

    fn elem(&mut self, key: u32, value: Key, parsed: &mut Parsed<'_>) -> u32 {
        let ids = &mut self.elem_ids[key as usize];
        if let Some(&id) = ids.get(&value) {
            return id;
        }
        let id = parsed.elems.len() as u32;
        parsed.elems.push((key, value.clone()));
        ids.insert(value, id);
        id
    }
}

/// Fills `appender`, `failed_appender` and `intermediate`; two appends of the same value
/// to the same key make the analysis ambiguous and are an error.
fn record_appenders(parsed: &mut Parsed<'_>) -> Result<(), ElleError> {
    let n = parsed.elems.len();
    let mut appender = vec![NONE; n];
    let mut failed_appender = vec![NONE; n];
    let mut intermediate = vec![false; n];
    let mut first_op: Vec<Option<&Operation>> = vec![None; n];
    for (failed, txns) in [(false, &parsed.txns), (true, &parsed.failed)] {
        for (node, t) in txns.iter().enumerate() {
            // Walk backwards: the first append met per key is the transaction's final one.
            let mut final_seen: Vec<u32> = Vec::new();
            for mop in t.mops.iter().rev() {
                let (Mop::Append { key, elem } | Mop::Write { key, elem }) = *mop else {
                    continue;
                };
                let e = elem as usize;
                if let Some(prev) = first_op[e] {
                    let verb = match parsed.datatype {
                        Datatype::ListAppend => "appended",
                        Datatype::RwRegister => "written",
                    };
                    return Err(ElleError::DuplicateAppend {
                        verb,
                        key: parsed.keys[key as usize].to_string(),
                        element: parsed.elems[e].1.to_string(),
                        first_process: prev.process,
                        first_invoke_index: prev.invoke_index,
                        second_process: t.op.process,
                        second_invoke_index: t.op.invoke_index,
                    });
                }
                first_op[e] = Some(t.op);
                if failed {
                    failed_appender[e] = node as u32;
                } else {
                    appender[e] = node as u32;
                }
                if final_seen.contains(&key) {
                    intermediate[e] = true;
                } else {
                    final_seen.push(key);
                }
            }
        }
    }
    parsed.appender = appender;
    parsed.failed_appender = failed_appender;
    parsed.intermediate = intermediate;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, History, Process};
    use serde_json::json;

    fn history(values: &[Value]) -> Operations {
        let mut events = Vec::new();
        for (i, v) in values.iter().enumerate() {
            for kind in [EventType::Invoke, EventType::Ok] {
                events.push(Event {
                    index: events.len() as u64,
                    time: 0,
                    process: Process::Client(i as u64),
                    kind,
                    f: "txn".into(),
                    key: None,
                    value: v.clone(),
                    node: None,
                    error: None,
                    line: None,
                    extra: Default::default(),
                });
            }
        }
        History::new(events).pair().unwrap()
    }

    #[test]
    fn external_reads_and_intermediate_appends() {
        let ops = history(&[
            json!([
                ["r", 1, [5]],
                ["append", 1, 6],
                ["r", 1, [5, 6]],
                ["append", 1, 7]
            ]),
            json!([["append", "k", 5], ["r", 1, null], ["append", "k", "s"]]),
        ]);
        let p = parse(&ops, Datatype::ListAppend).unwrap();
        let externals: Vec<Vec<bool>> = p
            .txns
            .iter()
            .map(|t| {
                t.mops
                    .iter()
                    .filter_map(|m| match m {
                        Mop::Read { external, .. } => Some(*external),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        assert_eq!(externals, vec![vec![true, false], vec![true]]);
        // Keys 1 and "k" are distinct; 5 on key 1 and 5 on key "k" are distinct elements.
        assert_eq!(p.keys, vec![Key::Int(1), Key::Str("k".into())]);
        let elem = |key: &Key, v: &Key| {
            p.elems
                .iter()
                .position(|(k, e)| p.keys[*k as usize] == *key && e == v)
                .unwrap()
        };
        let (one, k) = (Key::Int(1), Key::Str("k".into()));
        assert!(p.intermediate[elem(&one, &Key::Int(6))]);
        assert!(!p.intermediate[elem(&one, &Key::Int(7))]);
        assert!(p.intermediate[elem(&k, &Key::Int(5))]);
        assert!(!p.intermediate[elem(&k, &Key::Str("s".into()))]);
        // 5 on key 1 was read but never appended.
        assert_eq!(p.appender[elem(&one, &Key::Int(5))], NONE);
        assert_eq!(p.appender[elem(&k, &Key::Int(5))], 1);
    }
}
