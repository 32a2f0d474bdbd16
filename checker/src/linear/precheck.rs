//! Sound O(n) refutations run before the search, so the commonest bugs (a read of a value
//! nobody wrote, a read from the future, a set that lost an acknowledged element) are
//! reported at once instead of after an exponential search.
//!
//! Each check only ever says "invalid" when no linearization can exist, whatever the
//! order of the other operations; it says nothing otherwise. The driver still runs the
//! search afterwards (with a bounded number of steps) to produce a full witness, and
//! treats a search that finds a linearization as a checker disagreement.

use crate::history::{Operation, Outcome};
use crate::model::{Micro, ModelOp, Precheck};
use hashbrown::HashMap;
use serde_json::Value;

/// Why an operation can never be linearized.
#[derive(Debug, Clone)]
pub(crate) struct Refutation {
    /// Index of the operation in the partition's list.
    pub(crate) op: usize,
    pub(crate) needed: String,
    /// States the object could hold around that operation, as far as the check knows.
    pub(crate) reachable: Vec<Value>,
}

/// The most values listed in a refutation's `reachable`.
const MAX_LISTED: usize = 16;

/// Runs the check `which` (the model's); `ops[i]` parses to `parsed[i]`.
pub(crate) fn refute(
    which: Precheck,
    initial: &Value,
    ops: &[&Operation],
    parsed: &[ModelOp],
) -> Option<Refutation> {
    match which {
        Precheck::Register => register(initial, ops, parsed),
        Precheck::Set => set(initial, ops, parsed),
        Precheck::KvAppend => kv_append(initial, ops, parsed),
        Precheck::MultiRegister => multi_register(initial, ops, parsed),
        Precheck::None => None,
    }
}

/// For each value, the earliest invocation index of an operation that could produce it.
fn earliest_producers<'a>(
    ops: &[&Operation],
    produced: impl Fn(usize) -> Vec<&'a Value>,
) -> HashMap<String, u64> {
    let mut first: HashMap<String, u64> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        for v in produced(i) {
            let e = first.entry(v.to_string()).or_insert(u64::MAX);
            *e = (*e).min(op.invoke_index);
        }
    }
    first
}

/// What a value observed at `op` needs: a producer invoked before `op` completed.
fn check_observed(
    first: &HashMap<String, u64>,
    op: &Operation,
    observed: &Value,
    what: &str,
) -> Option<String> {
    let completes = op.return_index();
    match first.get(&observed.to_string()) {
        None => Some(format!(
            "{what} {observed}, but no operation on this object ever writes {observed} and it is not the initial value"
        )),
        Some(&at) if at > completes => Some(format!(
            "{what} {observed}, but the first operation that writes {observed} was invoked at event {at}, after this one completed at event {completes}"
        )),
        Some(_) => None,
    }
}

/// Values that could be present by the time `op` completes: the initial one and every
/// value written by an operation invoked before then.
fn possible_values(initial: &Value, first: &HashMap<String, u64>, op: &Operation) -> Vec<Value> {
    let mut texts: Vec<&String> = first
        .iter()
        .filter(|(_, &at)| at < op.return_index())
        .map(|(t, _)| t)
        .collect();
    texts.sort();
    let mut out = vec![initial.clone()];
    for t in texts.into_iter().take(MAX_LISTED) {
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            if v != *initial {
                out.push(v);
            }
        }
    }
    out
}

fn register(initial: &Value, ops: &[&Operation], parsed: &[ModelOp]) -> Option<Refutation> {
    let first = earliest_producers(ops, |i| match &parsed[i] {
        ModelOp::Write(v) | ModelOp::Cas(_, v) => vec![v],
        _ => vec![],
    });
    for (i, op) in ops.iter().enumerate() {
        if op.outcome != Outcome::Ok {
            continue;
        }
        let (observed, what) = match &parsed[i] {
            ModelOp::Read(Some(v)) => (v, "read returned"),
            ModelOp::Cas(expected, _) => (expected, "cas expected"),
            _ => continue,
        };
        if observed == initial {
            continue;
        }
        if let Some(needed) = check_observed(&first, op, observed, what) {
            return Some(Refutation {
                op: i,
                needed,
                reachable: possible_values(initial, &first, op),
            });
        }
    }
    None
}

fn set(initial: &Value, ops: &[&Operation], parsed: &[ModelOp]) -> Option<Refutation> {
    let first = earliest_producers(ops, |i| match &parsed[i] {
        ModelOp::Add(v) => vec![v],
        _ => vec![],
    });
    let initial_items: Vec<&Value> = initial
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    // Adds acknowledged before each point: (completion index, element), sorted.
    let mut acknowledged: Vec<(u64, &Value)> = ops
        .iter()
        .zip(parsed)
        .filter_map(|(op, p)| match p {
            ModelOp::Add(v) => op.complete_index.map(|c| (c, v)),
            _ => None,
        })
        .collect();
    acknowledged.sort_by_key(|a| a.0);
    for (i, op) in ops.iter().enumerate() {
        let ModelOp::ReadSet(Some(items)) = &parsed[i] else {
            continue;
        };
        let texts: Vec<String> = items.iter().map(|v| v.to_string()).collect();
        // The pre-check does not know which sets were reachable; the witness search does.
        let reachable = Vec::new;
        for v in items {
            if initial_items.contains(&v) {
                continue;
            }
            if let Some(needed) = check_observed(&first, op, v, "read returned an element") {
                return Some(Refutation {
                    op: i,
                    needed,
                    reachable: reachable(),
                });
            }
        }
        let missing = initial_items
            .iter()
            .map(|v| (None, *v))
            .chain(
                acknowledged
                    .iter()
                    .take_while(|(c, _)| *c < op.invoke_index)
                    .map(|(c, v)| (Some(*c), *v)),
            )
            .find(|(_, v)| !texts.contains(&v.to_string()));
        if let Some((at, v)) = missing {
            let why = match at {
                Some(c) => format!("its add was acknowledged at event {c}, before this read was invoked at event {}", op.invoke_index),
                None => "it is in the initial set".to_string(),
            };
            return Some(Refutation {
                op: i,
                needed: format!(
                    "read is missing element {v}, but {why}, and elements are never removed"
                ),
                reachable: reachable(),
            });
        }
    }
    None
}

fn kv_append(initial: &Value, ops: &[&Operation], parsed: &[ModelOp]) -> Option<Refutation> {
    let initial = initial.as_str().unwrap_or_default();
    // The earliest invocation of a put of each string and of an append of each string,
    // and the lengths appends have: a get is explained by a put of exactly its string or
    // an append of one of its suffixes, so only suffixes of those lengths need looking up
    // (one scan of every update per get was quadratic in long histories).
    let mut puts: HashMap<&str, u64> = HashMap::new();
    let mut appends: HashMap<&str, u64> = HashMap::new();
    for (op, p) in ops.iter().zip(parsed) {
        let (map, text) = match p {
            ModelOp::Put(s) => (&mut puts, s.as_str()),
            ModelOp::Append(s) => (&mut appends, s.as_str()),
            _ => continue,
        };
        let e = map.entry(text).or_insert(u64::MAX);
        *e = (*e).min(op.invoke_index);
    }
    let mut lengths: Vec<usize> = appends.keys().map(|t| t.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    for (i, op) in ops.iter().enumerate() {
        let ModelOp::Get(Some(s)) = &parsed[i] else {
            continue;
        };
        if s == initial {
            continue;
        }
        // The last update before this get produced a string equal to (put) or ending
        // with (append) its own text.
        let before = |at: Option<&u64>| at.is_some_and(|&at| at < op.return_index());
        let explained = before(puts.get(s.as_str()))
            || lengths
                .iter()
                .take_while(|&&len| len <= s.len())
                .filter(|&&len| s.is_char_boundary(s.len() - len))
                .any(|&len| before(appends.get(&s[s.len() - len..])));
        if !explained {
            return Some(Refutation {
                op: i,
                needed: format!(
                    "get returned {s:?}, but no put of that string and no append of a suffix of it was invoked before the get completed"
                ),
                reachable: Vec::new(),
            });
        }
    }
    None
}

fn multi_register(initial: &Value, ops: &[&Operation], parsed: &[ModelOp]) -> Option<Refutation> {
    // (register, value text) → earliest invocation of a transaction writing it.
    let mut first: HashMap<(String, String), u64> = HashMap::new();
    for (op, p) in ops.iter().zip(parsed) {
        if let ModelOp::Txn(micro) = p {
            for m in micro {
                if let Micro::Write(k, v) = m {
                    let e = first.entry((k.clone(), v.to_string())).or_insert(u64::MAX);
                    *e = (*e).min(op.invoke_index);
                }
            }
        }
    }
    for (i, op) in ops.iter().enumerate() {
        if op.outcome != Outcome::Ok {
            continue;
        }
        let ModelOp::Txn(micro) = &parsed[i] else {
            continue;
        };
        for m in micro {
            let Micro::Read(k, Some(v)) = m else {
                continue;
            };
            let init = initial.get(k).unwrap_or(&Value::Null);
            if v == init {
                continue;
            }
            let needed = match first.get(&(k.clone(), v.to_string())) {
                None => format!("txn read {k} = {v}, but no transaction ever writes {v} to {k} and it is not the initial value"),
                Some(&at) if at > op.return_index() => format!(
                    "txn read {k} = {v}, but the first transaction writing {v} to {k} was invoked at event {at}, after this one completed"
                ),
                Some(_) => continue,
            };
            return Some(Refutation {
                op: i,
                needed,
                reachable: vec![initial.clone()],
            });
        }
    }
    None
}
