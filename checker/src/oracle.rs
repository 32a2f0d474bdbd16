//! A brute-force linearizability oracle for tiny histories: the independent reference
//! the fast checker ([`crate::linear`]) is tested against.
//!
//! It is deliberately naive and shares nothing with the fast checker:
//! - its own sequential semantics for every model, written directly on
//!   [`serde_json::Value`] (it does not use [`crate::model`]);
//! - no per-key decomposition: the state is one map over the whole history, so agreeing
//!   with the per-key fast checker also cross-checks P-compositionality;
//! - no cache and no pruning beyond "this prefix is already illegal": it tries every
//!   order of the operations that respects real-time order, and every subset of the
//!   indeterminate (`info`) operations, since those may never have taken effect.
//!
//! The cost is factorial, so it refuses histories larger than [`MAX_OPS`].

use crate::history::{Key, Operation, Operations, Outcome};
use serde_json::Value;
use std::collections::BTreeMap;

/// The largest history the oracle accepts. Beyond this the search may take minutes.
pub const MAX_OPS: usize = 12;

/// The state of the whole history: one value per object. An object is a key (or the
/// single unnamed object, `None`) and, for the multi-register, the register name inside
/// a transaction.
type State = BTreeMap<(Option<Key>, String), Value>;

/// Decides whether `ops` is linearizable under `model`, by exhaustive search.
///
/// `model` is one of `register`, `cas-register`, `mutex`, `set`, `multi-register`,
/// `kv-append`; `initial` is the initial value of every object (for `multi-register`,
/// a map from register name to value, registers absent from it start as `null`).
/// Failed operations (`ops.failed`) are ignored: they never took effect.
pub fn oracle_check(ops: &Operations, model: &str, initial: &Value) -> Result<bool, String> {
    let model = OracleModel::parse(model)?;
    if ops.ops.len() > MAX_OPS {
        return Err(format!(
            "the oracle handles at most {MAX_OPS} operations; got {}",
            ops.ops.len()
        ));
    }
    let all: Vec<&Operation> = ops.ops.iter().collect();
    let mut placed = vec![false; all.len()];
    let search = Search {
        model,
        initial,
        ops: &all,
        null_reads_observe_nothing: null_reads_observe_nothing(model, initial, &all),
    };
    Ok(search.extend(&mut placed, &State::new()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OracleModel {
    Register,
    CasRegister,
    Mutex,
    Set,
    MultiRegister,
    KvAppend,
}

impl OracleModel {
    fn parse(name: &str) -> Result<OracleModel, String> {
        Ok(match name {
            "register" => OracleModel::Register,
            "cas-register" => OracleModel::CasRegister,
            "mutex" => OracleModel::Mutex,
            "set" => OracleModel::Set,
            "multi-register" => OracleModel::MultiRegister,
            "kv-append" => OracleModel::KvAppend,
            other => return Err(format!("the oracle does not know the model `{other}`")),
        })
    }
}

struct Search<'a> {
    model: OracleModel,
    initial: &'a Value,
    ops: &'a [&'a Operation],
    /// Register keys whose `null` reads observed nothing (see
    /// [`null_reads_observe_nothing`]).
    null_reads_observe_nothing: BTreeMap<Option<Key>, bool>,
}

/// Knossos' convention, kept by the model: in a register that can never be `null` (its
/// initial value is not `null` and no operation on that key writes `null`), a read that
/// returned `null` returned no value, and constrains nothing. Elsewhere a `null` read
/// means the register is absent. Computed per key, from the history's own operations.
fn null_reads_observe_nothing(
    model: OracleModel,
    initial: &Value,
    ops: &[&Operation],
) -> BTreeMap<Option<Key>, bool> {
    let mut out: BTreeMap<Option<Key>, bool> = BTreeMap::new();
    if !matches!(model, OracleModel::Register | OracleModel::CasRegister) {
        return out;
    }
    for op in ops {
        let writes_null = match op.f.as_str() {
            "write" => argument(op).is_null(),
            "cas" => argument(op).get(1).is_some_and(Value::is_null),
            _ => false,
        };
        let never_null = out.entry(op.key.clone()).or_insert(!initial.is_null());
        if writes_null {
            *never_null = false;
        }
    }
    out
}

impl Search<'_> {
    /// Depth-first over every order: `placed` marks the operations already in the
    /// sequence, `state` is the state after them. True as soon as one order places every
    /// `ok` operation legally (unplaced `info` operations are the ones that never took
    /// effect).
    fn extend(&self, placed: &mut [bool], state: &State) -> bool {
        let all_ok_placed = self
            .ops
            .iter()
            .zip(placed.iter())
            .all(|(op, &p)| p || op.outcome == Outcome::Info);
        if all_ok_placed {
            return true;
        }
        for i in 0..self.ops.len() {
            if placed[i] || !self.may_go_next(i, placed) {
                continue;
            }
            let Some(next) = self.apply(state, self.ops[i]) else {
                continue;
            };
            placed[i] = true;
            let found = self.extend(placed, &next);
            placed[i] = false;
            if found {
                return true;
            }
        }
        false
    }

    /// Real-time order: `i` can be next only if no unplaced operation completed before
    /// `i` was invoked. (`info` operations never complete, so they never block anyone.)
    fn may_go_next(&self, i: usize, placed: &[bool]) -> bool {
        let candidate = self.ops[i];
        self.ops.iter().zip(placed.iter()).all(|(other, &p)| {
            p || match other.complete_index {
                Some(done) => done >= candidate.invoke_index,
                None => true,
            }
        })
    }

    fn current(&self, state: &State, object: &(Option<Key>, String)) -> Value {
        if let Some(v) = state.get(object) {
            return v.clone();
        }
        match self.model {
            OracleModel::MultiRegister => self
                .initial
                .get(object.1.as_str())
                .cloned()
                .unwrap_or(Value::Null),
            _ => self.initial.clone(),
        }
    }

    /// The sequential specification: the state after `op`, or `None` if `op` cannot
    /// happen in `state`.
    fn apply(&self, state: &State, op: &Operation) -> Option<State> {
        let object = (op.key.clone(), String::new());
        let cur = self.current(state, &object);
        let mut next = state.clone();
        match (self.model, op.f.as_str()) {
            (OracleModel::Register | OracleModel::CasRegister, "read") => {
                let unobserved_null = op.output.is_null()
                    && self
                        .null_reads_observe_nothing
                        .get(&op.key)
                        .copied()
                        .unwrap_or(false);
                if op.outcome == Outcome::Info || unobserved_null {
                    // An indeterminate read, or Knossos' "no value": observed nothing.
                    return Some(next);
                }
                register_read_allows(&cur, &op.output).then_some(next)
            }
            (OracleModel::Register | OracleModel::CasRegister, "write") => {
                next.insert(object, argument(op).clone());
                Some(next)
            }
            (OracleModel::CasRegister, "cas") => {
                let pair = argument(op).as_array()?;
                let (expected, new) = match pair.as_slice() {
                    [e, n] => (e, n),
                    _ => return None,
                };
                if *expected != cur {
                    return None;
                }
                next.insert(object, new.clone());
                Some(next)
            }
            (OracleModel::Mutex, "acquire") => {
                if mutex_is_held(&cur) {
                    return None;
                }
                next.insert(object, Value::Bool(true));
                Some(next)
            }
            (OracleModel::Mutex, "release") => {
                if !mutex_is_held(&cur) {
                    return None;
                }
                next.insert(object, Value::Bool(false));
                Some(next)
            }
            (OracleModel::Set, "add") => {
                let mut members = set_members(&cur);
                if !members.contains(argument(op)) {
                    members.push(argument(op).clone());
                }
                next.insert(object, Value::Array(members));
                Some(next)
            }
            (OracleModel::Set, "read") => {
                if op.outcome == Outcome::Info {
                    // An indeterminate read observed nothing.
                    return Some(next);
                }
                let observed = op.output.as_array()?;
                let members = set_members(&cur);
                let same = observed.len() == members.len()
                    && observed.iter().all(|v| members.contains(v))
                    && members.iter().all(|v| observed.contains(v));
                same.then_some(next)
            }
            (OracleModel::MultiRegister, "txn") => {
                // An `ok` transaction carries the values its reads returned; an `info`
                // one only its invocation (reads of `null`: unconstrained).
                let observed = op.outcome == Outcome::Ok && !op.output.is_null();
                let carried = if observed { &op.output } else { &op.input };
                let micro_ops = carried.as_array()?;
                for micro in micro_ops {
                    let parts = micro.as_array()?;
                    let [f, register, value] = parts.as_slice() else {
                        return None;
                    };
                    let register = match register {
                        Value::String(name) => name.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    // The registers are named inside the transaction; an op key, if
                    // any, does not split a multi-register.
                    let slot = (None, register);
                    let cur = next
                        .get(&slot)
                        .cloned()
                        .unwrap_or_else(|| self.current(state, &slot));
                    match f.as_str()?.trim_start_matches(':') {
                        "read" | "r" => {
                            if !micro_read_allows(&cur, value) {
                                return None;
                            }
                        }
                        "write" | "w" => {
                            next.insert(slot, value.clone());
                        }
                        _ => return None,
                    }
                }
                Some(next)
            }
            (OracleModel::KvAppend, "get") => {
                if op.outcome == Outcome::Info {
                    return Some(next);
                }
                let have = kv_string(&cur)?;
                let seen = kv_string(&op.output)?;
                (have == seen).then_some(next)
            }
            (OracleModel::KvAppend, "put") => {
                let v = kv_string(argument(op))?;
                next.insert(object, Value::String(v));
                Some(next)
            }
            (OracleModel::KvAppend, "append") => {
                let mut have = kv_string(&cur)?;
                have.push_str(&kv_string(argument(op))?);
                next.insert(object, Value::String(have));
                Some(next)
            }
            _ => None,
        }
    }
}

/// A register read returning `seen` is legal in state `cur` when they are equal; a read
/// of `null` means the register is absent (still a `null` initial value), unless the
/// register can never be `null` (then the read is dropped before this, see
/// [`null_reads_observe_nothing`]).
fn register_read_allows(cur: &Value, seen: &Value) -> bool {
    cur == seen
}

/// A micro-read inside a transaction that returned `null` did not observe the register
/// (Knossos' convention), so it constrains nothing.
fn micro_read_allows(cur: &Value, seen: &Value) -> bool {
    seen.is_null() || cur == seen
}

/// The argument of an update: the invocation's value, or the completion's when the
/// invocation did not carry it.
fn argument(op: &Operation) -> &Value {
    if op.input.is_null() {
        &op.output
    } else {
        &op.input
    }
}

fn mutex_is_held(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s == "held" || s == "locked" || s == "acquired",
        _ => false,
    }
}

fn set_members(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => {
            let mut out: Vec<Value> = Vec::new();
            for item in items {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

fn kv_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, History, Process};
    use serde_json::json;

    fn ev(process: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            index: 0,
            time: 0,
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
            line: None,
            extra: Default::default(),
        }
    }

    fn ops(mut events: Vec<Event>) -> Operations {
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        History::new(events).pair().unwrap()
    }

    #[test]
    fn sequential_register_is_valid_and_stale_read_is_not() {
        use EventType::*;
        let good = ops(vec![
            ev(0, Invoke, "write", json!(1)),
            ev(0, Ok, "write", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(1)),
        ]);
        assert_eq!(oracle_check(&good, "register", &json!(0)), Result::Ok(true));
        let stale = ops(vec![
            ev(0, Invoke, "write", json!(1)),
            ev(0, Ok, "write", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(0)),
        ]);
        assert_eq!(
            oracle_check(&stale, "register", &json!(0)),
            Result::Ok(false)
        );
    }

    #[test]
    fn concurrent_read_may_see_either_value() {
        use EventType::*;
        for seen in [0, 1] {
            let h = ops(vec![
                ev(0, Invoke, "write", json!(1)),
                ev(1, Invoke, "read", Value::Null),
                ev(1, Ok, "read", json!(seen)),
                ev(0, Ok, "write", json!(1)),
            ]);
            assert_eq!(oracle_check(&h, "register", &json!(0)), Result::Ok(true));
        }
    }

    #[test]
    fn info_write_may_or_may_not_happen_but_only_once() {
        use EventType::*;
        // The info write of 1 may happen late: read 0 then 1 is fine ...
        let late = ops(vec![
            ev(0, Invoke, "write", json!(1)),
            ev(0, Info, "write", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(0)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(1)),
        ]);
        assert_eq!(oracle_check(&late, "register", &json!(0)), Result::Ok(true));
        // ... but 1, then 0, then 1 would need it to happen twice.
        let twice = ops(vec![
            ev(0, Invoke, "write", json!(1)),
            ev(0, Info, "write", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(1)),
            ev(2, Invoke, "write", json!(0)),
            ev(2, Ok, "write", json!(0)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(1)),
        ]);
        assert_eq!(
            oracle_check(&twice, "register", &json!(0)),
            Result::Ok(false)
        );
    }

    #[test]
    fn cas_mutex_set_kv_and_multi_register_semantics() {
        use EventType::*;
        let cas = ops(vec![
            ev(0, Invoke, "cas", json!([0, 2])),
            ev(0, Ok, "cas", json!([0, 2])),
            ev(1, Invoke, "cas", json!([0, 3])),
            ev(1, Ok, "cas", json!([0, 3])),
        ]);
        assert_eq!(
            oracle_check(&cas, "cas-register", &json!(0)),
            Result::Ok(false)
        );
        let mutex = ops(vec![
            ev(0, Invoke, "acquire", Value::Null),
            ev(0, Ok, "acquire", Value::Null),
            ev(1, Invoke, "acquire", Value::Null),
            ev(1, Ok, "acquire", Value::Null),
        ]);
        assert_eq!(
            oracle_check(&mutex, "mutex", &Value::Null),
            Result::Ok(false)
        );
        let set = ops(vec![
            ev(0, Invoke, "add", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!([1])),
            ev(0, Ok, "add", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!([])),
        ]);
        assert_eq!(oracle_check(&set, "set", &json!([])), Result::Ok(false));
        let kv = ops(vec![
            ev(0, Invoke, "append", json!("a")),
            ev(0, Ok, "append", json!("a")),
            ev(0, Invoke, "append", json!("b")),
            ev(0, Ok, "append", json!("b")),
            ev(1, Invoke, "get", Value::Null),
            ev(1, Ok, "get", json!("ab")),
        ]);
        assert_eq!(oracle_check(&kv, "kv-append", &json!("")), Result::Ok(true));
        let txn = ops(vec![
            ev(
                0,
                Invoke,
                "txn",
                json!([["write", "x", 1], ["write", "y", 1]]),
            ),
            ev(0, Ok, "txn", json!([["write", "x", 1], ["write", "y", 1]])),
            ev(
                1,
                Invoke,
                "txn",
                json!([["read", "x", null], ["read", "y", null]]),
            ),
            ev(1, Ok, "txn", json!([["read", "x", 1], ["read", "y", 0]])),
        ]);
        let initial = json!({"x": 0, "y": 0});
        assert_eq!(
            oracle_check(&txn, "multi-register", &initial),
            Result::Ok(false)
        );
    }

    #[test]
    fn null_reads_observe_nothing_only_where_the_register_is_never_null() {
        use EventType::*;
        let reads_null = |writes: Value| {
            ops(vec![
                ev(0, Invoke, "write", writes.clone()),
                ev(0, Ok, "write", writes),
                ev(1, Invoke, "read", Value::Null),
                ev(1, Ok, "read", Value::Null),
            ])
        };
        // Initial 0, nothing writes null: the null read observed nothing.
        assert_eq!(
            oracle_check(&reads_null(json!(1)), "register", &json!(0)),
            Result::Ok(true)
        );
        // Initial null: a null read means absent, and 1 was written before it.
        assert_eq!(
            oracle_check(&reads_null(json!(1)), "register", &Value::Null),
            Result::Ok(false)
        );
        // Something writes null: null reads are real again (here, legal).
        assert_eq!(
            oracle_check(&reads_null(Value::Null), "register", &json!(0)),
            Result::Ok(true)
        );
    }

    #[test]
    fn refuses_large_histories_and_unknown_models() {
        assert!(oracle_check(&Operations::default(), "queue", &Value::Null).is_err());
        let mut events = Vec::new();
        for p in 0..(MAX_OPS as u64 + 1) {
            events.push(ev(p, EventType::Invoke, "read", Value::Null));
        }
        assert!(oracle_check(&ops(events), "register", &Value::Null).is_err());
    }
}
