//! Sequential specifications (DESIGN.md §4): what each object does when operations are
//! applied to it one at a time.
//!
//! This module owns the *meaning* of every model, written plainly on JSON values so it
//! can be read as a specification and used to replay a witness:
//! - [`ModelKind`]: the model names the CLI accepts and their default initial values;
//! - [`ModelOp`]: one [`Operation`] parsed into what it does to the model, with a
//!   [`ModelError`] naming the operation when it does not fit;
//! - [`ModelKind::step`]: `state × op → Option<state>` (`None`: illegal here).
//!
//! The linearizability search does not call [`ModelKind::step`] in its inner loop; it
//! compiles operations to interned integers (`linear::compiled`) for speed. Both start
//! from [`ModelKind::parse_op`], so they agree on what an operation *is*, and the tests
//! replay search witnesses through [`ModelKind::step`], so they must agree on what it
//! *does*.
//!
//! Semantics, as Jepsen/Knossos/Porcupine:
//! - `register`: `read` (the value read is the completion's value), `write v`.
//! - `cas-register`: also `cas [old new]`; a read of `null` means the register is absent
//!   (still the initial `null`). Knossos' convention is kept too: in a register that can
//!   never be `null` (its initial value is not `null` and nothing writes `null`), a read
//!   of `null` observed nothing and constrains nothing
//!   ([`ModelKind::null_reads_observe_nothing`]); Knossos' own histories rely on it.
//! - `mutex`: `acquire` / `release`; acquiring a held lock or releasing a free one is
//!   illegal. States are `"free"` and `"held"`.
//! - `set`: `add v`; `read` returns the whole set as a list (compared as a set).
//! - `multi-register`: `txn` whose value is a list of `[f k v]` micro-operations, `f` one
//!   of `read`/`r`/`write`/`w`, applied atomically to registers named by `k`; the state is
//!   a JSON object. A micro-read of `null` constrains nothing (Knossos: the value was not
//!   observed), and neither do the reads of a transaction that did not complete `ok`.
//! - `kv-append`: per-key strings; `put s`, `append s`, `get` returns the string exactly
//!   (`null` reads as the empty string).
//!
//! Reads whose operation completed `info` never constrain anything: the value is unknown.

use crate::history::{Operation, Outcome};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// The sequential models the linearizability checker knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelKind {
    Register,
    CasRegister,
    Mutex,
    Set,
    MultiRegister,
    KvAppend,
}

impl ModelKind {
    /// Every model name, as accepted by [`FromStr`] and printed by [`fmt::Display`].
    pub const NAMES: [&'static str; 6] = [
        "register",
        "cas-register",
        "mutex",
        "set",
        "multi-register",
        "kv-append",
    ];

    pub const ALL: [ModelKind; 6] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Mutex,
        ModelKind::Set,
        ModelKind::MultiRegister,
        ModelKind::KvAppend,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Mutex => "mutex",
            ModelKind::Set => "set",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::KvAppend => "kv-append",
        }
    }

    /// The initial value used when the user gives none: `null` for registers, `"free"`
    /// for the mutex, `[]` for the set, `{}` for the multi-register, `""` for kv-append.
    pub fn default_initial(self) -> Value {
        match self {
            ModelKind::Register | ModelKind::CasRegister => Value::Null,
            ModelKind::Mutex => Value::String("free".into()),
            ModelKind::Set => Value::Array(Vec::new()),
            ModelKind::MultiRegister => Value::Object(Map::new()),
            ModelKind::KvAppend => Value::String(String::new()),
        }
    }

    /// True if per-operation keys split the history into independent objects. The
    /// multi-register's registers are named inside transactions, so it is one object.
    pub fn uses_op_keys(self) -> bool {
        !matches!(self, ModelKind::MultiRegister)
    }

    /// Normalises a user-given initial value (or the default) into a model state.
    /// Accepted: mutex `"free"`/`"held"`/`false`/`true`/`null`; set: a list (duplicates
    /// removed, sorted); multi-register: an object; kv-append: a string or `null`.
    pub fn initial_state(self, initial: Option<&Value>) -> Result<Value, ModelError> {
        let Some(v) = initial else {
            return Ok(self.default_initial());
        };
        let bad = |expected: &str| ModelError::BadInitial {
            model: self.name(),
            value: v.clone(),
            expected: expected.to_string(),
        };
        match self {
            ModelKind::Register | ModelKind::CasRegister => Ok(v.clone()),
            ModelKind::Mutex => match v {
                Value::Null | Value::Bool(false) => Ok(Value::String("free".into())),
                Value::Bool(true) => Ok(Value::String("held".into())),
                Value::String(s) if s == "free" || s == "held" => Ok(v.clone()),
                _ => Err(bad("\"free\" or \"held\"")),
            },
            ModelKind::Set => match v {
                Value::Array(items) => Ok(Value::Array(canonical_set(items.iter().cloned()))),
                Value::Null => Ok(Value::Array(Vec::new())),
                _ => Err(bad("a list of elements")),
            },
            ModelKind::MultiRegister => match v {
                Value::Object(_) => Ok(v.clone()),
                Value::Null => Ok(Value::Object(Map::new())),
                _ => Err(bad("an object from register name to value, e.g. {\"x\":0}")),
            },
            ModelKind::KvAppend => match v {
                Value::String(_) => Ok(v.clone()),
                Value::Null => Ok(Value::String(String::new())),
                _ => Err(bad("a string")),
            },
        }
    }

    /// Parses one operation into what it does to this model.
    pub fn parse_op(self, op: &Operation) -> Result<ModelOp, ModelError> {
        let observed = op.outcome == Outcome::Ok;
        let bad = |expected: &str| ModelError::BadOperation {
            model: self.name(),
            process: op.process,
            f: op.f.clone(),
            value: if observed && !op.output.is_null() {
                op.output.clone()
            } else {
                op.input.clone()
            },
            invoke_index: op.invoke_index,
            expected: expected.to_string(),
        };
        // The argument of an update: the invocation's value, or the completion's when
        // the invocation did not carry it.
        let argument = || {
            if op.input.is_null() {
                &op.output
            } else {
                &op.input
            }
        };
        match self {
            ModelKind::Register | ModelKind::CasRegister => match op.f.as_str() {
                "read" => Ok(ModelOp::Read(observed.then(|| op.output.clone()))),
                "write" => Ok(ModelOp::Write(argument().clone())),
                "cas" if self == ModelKind::CasRegister => match argument() {
                    Value::Array(pair) if pair.len() == 2 => {
                        Ok(ModelOp::Cas(pair[0].clone(), pair[1].clone()))
                    }
                    _ => Err(bad("a cas value [expected, new]")),
                },
                _ if self == ModelKind::Register => Err(bad("f to be read or write")),
                _ => Err(bad("f to be read, write or cas")),
            },
            ModelKind::Mutex => match op.f.as_str() {
                "acquire" => Ok(ModelOp::Acquire),
                "release" => Ok(ModelOp::Release),
                _ => Err(bad("f to be acquire or release")),
            },
            ModelKind::Set => match op.f.as_str() {
                "add" => Ok(ModelOp::Add(argument().clone())),
                "read" if !observed => Ok(ModelOp::ReadSet(None)),
                "read" => match &op.output {
                    Value::Array(items) => {
                        Ok(ModelOp::ReadSet(Some(canonical_set(items.iter().cloned()))))
                    }
                    _ => Err(bad("a read to return the set as a list")),
                },
                _ => Err(bad("f to be add or read")),
            },
            ModelKind::MultiRegister => {
                if op.f != "txn" {
                    return Err(bad("f to be txn"));
                }
                let value = if observed && !op.output.is_null() {
                    &op.output
                } else {
                    &op.input
                };
                let Value::Array(micro) = value else {
                    return Err(bad("a txn value that is a list of [f k v] micro-ops"));
                };
                let mut out = Vec::with_capacity(micro.len());
                for m in micro {
                    let Value::Array(parts) = m else {
                        return Err(bad("every micro-op to be a list [f k v]"));
                    };
                    let (Some(Value::String(f)), Some(k), v) =
                        (parts.first(), parts.get(1), parts.get(2))
                    else {
                        return Err(bad("every micro-op to be [f k v] with f read or write"));
                    };
                    if parts.len() > 3 {
                        return Err(bad("every micro-op to be [f k v]"));
                    }
                    let register = match k {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => return Err(bad("micro-op keys to be strings or integers")),
                    };
                    let v = v.cloned().unwrap_or(Value::Null);
                    match f.trim_start_matches(':') {
                        "read" | "r" => out.push(Micro::Read(
                            register,
                            (observed && !v.is_null()).then_some(v),
                        )),
                        "write" | "w" => out.push(Micro::Write(register, v)),
                        _ => return Err(bad("micro-op f to be read, r, write or w")),
                    }
                }
                Ok(ModelOp::Txn(out))
            }
            ModelKind::KvAppend => {
                let text = |v: &Value, what: &str| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Null => Ok(String::new()),
                    _ => Err(bad(what)),
                };
                match op.f.as_str() {
                    "get" if !observed => Ok(ModelOp::Get(None)),
                    "get" => Ok(ModelOp::Get(Some(text(
                        &op.output,
                        "get to return a string",
                    )?))),
                    "put" => Ok(ModelOp::Put(text(argument(), "a string to put")?)),
                    "append" => Ok(ModelOp::Append(text(argument(), "a string to append")?)),
                    _ => Err(bad("f to be get, put or append")),
                }
            }
        }
    }

    /// True if, in one object with these operations, an `ok` read of `null` is Knossos'
    /// "the read returned no value" rather than "the register is absent": the register
    /// model, an initial value that is not `null`, and no write or cas that writes `null`
    /// (so the register can never be absent). The checker then drops such reads.
    pub fn null_reads_observe_nothing<'a>(
        self,
        initial: &Value,
        mut ops: impl Iterator<Item = &'a ModelOp>,
    ) -> bool {
        matches!(self, ModelKind::Register | ModelKind::CasRegister)
            && !initial.is_null()
            && !ops.any(|op| {
                matches!(
                    op,
                    ModelOp::Write(Value::Null) | ModelOp::Cas(_, Value::Null)
                )
            })
    }

    /// Applies `op` to `state` sequentially: the new state, or `None` when the operation
    /// is illegal in that state. `state` must come from [`ModelKind::initial_state`] or an
    /// earlier step.
    pub fn step(self, state: &Value, op: &ModelOp) -> Option<Value> {
        match op {
            ModelOp::Read(None) | ModelOp::ReadSet(None) | ModelOp::Get(None) => {
                Some(state.clone())
            }
            ModelOp::Read(Some(v)) => (state == v).then(|| state.clone()),
            ModelOp::Write(v) => Some(v.clone()),
            ModelOp::Cas(old, new) => (state == old).then(|| new.clone()),
            ModelOp::Acquire => (state == "free").then(|| Value::String("held".into())),
            ModelOp::Release => (state == "held").then(|| Value::String("free".into())),
            ModelOp::Add(v) => {
                let Value::Array(items) = state else {
                    return None;
                };
                Some(Value::Array(canonical_set(
                    items.iter().cloned().chain(std::iter::once(v.clone())),
                )))
            }
            ModelOp::ReadSet(Some(items)) => {
                (state.as_array() == Some(items)).then(|| state.clone())
            }
            ModelOp::Txn(micro) => {
                let Value::Object(mut registers) = state.clone() else {
                    return None;
                };
                for m in micro {
                    match m {
                        Micro::Read(k, Some(v)) => {
                            if registers.get(k).unwrap_or(&Value::Null) != v {
                                return None;
                            }
                        }
                        Micro::Read(_, None) => {}
                        Micro::Write(k, v) => {
                            registers.insert(k.clone(), v.clone());
                        }
                    }
                }
                Some(Value::Object(registers))
            }
            ModelOp::Get(Some(s)) => (state.as_str() == Some(s.as_str())).then(|| state.clone()),
            ModelOp::Put(s) => Some(Value::String(s.clone())),
            ModelOp::Append(s) => {
                let mut current = state.as_str()?.to_string();
                current.push_str(s);
                Some(Value::String(current))
            }
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<ModelKind, ModelError> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| ModelError::UnknownModel(s.to_string()))
    }
}

/// What one operation does to a model, parsed from its `f` and values.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelOp {
    /// Register read; `None` when the value was not observed (the op did not complete ok).
    Read(Option<Value>),
    Write(Value),
    /// `cas [expected new]`.
    Cas(Value, Value),
    Acquire,
    Release,
    /// Set add.
    Add(Value),
    /// Set read: the set as a sorted, deduplicated list; `None` when not observed.
    ReadSet(Option<Vec<Value>>),
    /// Multi-register transaction, applied atomically in order.
    Txn(Vec<Micro>),
    /// kv-append get; `None` when not observed.
    Get(Option<String>),
    Put(String),
    Append(String),
}

impl ModelOp {
    /// True if the operation can never change the state. Such operations that did not
    /// complete `ok` are dropped before the search: whether or when they happened cannot
    /// matter.
    pub fn is_read_only(&self) -> bool {
        match self {
            ModelOp::Read(_) | ModelOp::ReadSet(_) | ModelOp::Get(_) => true,
            ModelOp::Txn(micro) => micro.iter().all(|m| matches!(m, Micro::Read(..))),
            _ => false,
        }
    }
}

/// One micro-operation of a multi-register transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Micro {
    /// Read of a register; `None` when the value was not observed.
    Read(String, Option<Value>),
    Write(String, Value),
}

/// An operation or initial value that does not fit the model. The CLI exits 254.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model `{0}`; expected one of: register, cas-register, mutex, set, multi-register, kv-append")]
    UnknownModel(String),
    #[error("operation `{f}` {value} of process {process} (invoked at event {invoke_index}) does not fit the {model} model: expected {expected}")]
    BadOperation {
        model: &'static str,
        process: u64,
        f: String,
        value: Value,
        invoke_index: u64,
        expected: String,
    },
    #[error("initial value {value} does not fit the {model} model: expected {expected}")]
    BadInitial {
        model: &'static str,
        value: Value,
        expected: String,
    },
}

/// A set as a canonical JSON list: sorted by JSON text, duplicates removed, so two sets
/// are equal exactly when their lists are.
pub fn canonical_set(items: impl Iterator<Item = Value>) -> Vec<Value> {
    let mut keyed: Vec<(String, Value)> = items.map(|v| (v.to_string(), v)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    keyed.into_iter().map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(f: &str, input: Value, output: Value, outcome: Outcome) -> Operation {
        Operation {
            id: 0,
            process: 3,
            f: f.into(),
            key: None,
            input,
            output,
            outcome,
            invoke_index: 7,
            complete_index: (outcome == Outcome::Ok).then_some(9),
            invoke_time: 0,
            complete_time: None,
            node: None,
        }
    }

    fn ok(f: &str, input: Value, output: Value) -> Operation {
        op(f, input, output, Outcome::Ok)
    }

    fn run(model: ModelKind, initial: Value, ops: &[Operation]) -> Option<Value> {
        let mut state = model.initial_state(Some(&initial)).unwrap();
        for o in ops {
            state = model.step(&state, &model.parse_op(o).unwrap())?;
        }
        Some(state)
    }

    #[test]
    fn names_round_trip() {
        for (name, kind) in ModelKind::NAMES.iter().zip(ModelKind::ALL) {
            assert_eq!(name.parse::<ModelKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), *name);
        }
        assert!("queue".parse::<ModelKind>().is_err());
    }

    #[test]
    fn register_reads_what_was_written() {
        let m = ModelKind::Register;
        let w = ok("write", json!(3), json!(3));
        let r3 = ok("read", Value::Null, json!(3));
        let r4 = ok("read", Value::Null, json!(4));
        assert_eq!(
            run(m, Value::Null, &[w.clone(), r3.clone()]),
            Some(json!(3))
        );
        assert_eq!(run(m, Value::Null, &[w, r4]), None);
        assert_eq!(
            run(m, Value::Null, &[ok("read", Value::Null, Value::Null)]),
            Some(Value::Null)
        );
        assert!(m
            .parse_op(&ok("cas", json!([1, 2]), json!([1, 2])))
            .is_err());
    }

    #[test]
    fn cas_register_cas_needs_expected_value() {
        let m = ModelKind::CasRegister;
        let cas = ok("cas", json!([0, 5]), json!([0, 5]));
        assert_eq!(run(m, json!(0), std::slice::from_ref(&cas)), Some(json!(5)));
        assert_eq!(run(m, json!(1), &[cas]), None);
        // an unobserved read constrains nothing
        let info_read = op("read", Value::Null, Value::Null, Outcome::Info);
        assert_eq!(run(m, json!(1), &[info_read]), Some(json!(1)));
        let err = m
            .parse_op(&ok("cas", json!(5), json!(5)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[expected, new]") && err.contains("process 3") && err.contains("event 7"),
            "{err}"
        );
    }

    #[test]
    fn mutex_rejects_double_acquire_and_free_release() {
        let m = ModelKind::Mutex;
        let a = ok("acquire", Value::Null, Value::Null);
        let r = ok("release", Value::Null, Value::Null);
        assert_eq!(
            run(m, json!("free"), &[a.clone(), r.clone()]),
            Some(json!("free"))
        );
        assert_eq!(run(m, json!("free"), &[a.clone(), a]), None);
        assert_eq!(run(m, json!("free"), &[r]), None);
        assert!(m.initial_state(Some(&json!(7))).is_err());
    }

    #[test]
    fn set_reads_compare_as_sets() {
        let m = ModelKind::Set;
        let ops = [
            ok("add", json!(2), json!(2)),
            ok("add", json!(1), json!(1)),
            ok("add", json!(2), json!(2)),
            ok("read", Value::Null, json!([1, 2, 1])),
        ];
        assert_eq!(run(m, json!([]), &ops), Some(json!([1, 2])));
        let missing = [
            ok("add", json!(1), json!(1)),
            ok("read", Value::Null, json!([])),
        ];
        assert_eq!(run(m, json!([]), &missing), None);
    }

    #[test]
    fn multi_register_txns_read_and_write_atomically() {
        let m = ModelKind::MultiRegister;
        let init = json!({"x": 0, "y": 0});
        let w = ok(
            "txn",
            json!([["write", "x", 1], ["w", "y", 2]]),
            json!([["write", "x", 1], ["w", "y", 2]]),
        );
        let r = ok(
            "txn",
            json!([["read", "x", null], ["r", "y", null]]),
            json!([["read", "x", 1], ["r", "y", 2]]),
        );
        let stale = ok(
            "txn",
            json!([["read", "x", null]]),
            json!([["read", "x", 0]]),
        );
        assert_eq!(
            run(m, init.clone(), &[w.clone(), r]),
            Some(json!({"x": 1, "y": 2}))
        );
        assert_eq!(run(m, init.clone(), &[w, stale]), None);
        assert!(m
            .parse_op(&ok(
                "txn",
                json!([["inc", "x", 1]]),
                json!([["inc", "x", 1]])
            ))
            .is_err());
        assert!(m.parse_op(&ok("txn", json!(5), json!(5))).is_err());
        assert!(m.parse_op(&ok("read", json!(5), json!(5))).is_err());
    }

    #[test]
    fn kv_append_concatenates() {
        let m = ModelKind::KvAppend;
        let ops = [
            ok("put", json!("a"), json!("a")),
            ok("append", json!("b"), json!("b")),
            ok("get", Value::Null, json!("ab")),
        ];
        assert_eq!(run(m, json!(""), &ops), Some(json!("ab")));
        assert_eq!(
            run(m, json!(""), &[ok("get", Value::Null, Value::Null)]),
            Some(json!(""))
        );
        assert_eq!(
            run(m, json!(""), &[ok("get", Value::Null, json!("x"))]),
            None
        );
    }

    #[test]
    fn read_only_ops_are_recognised() {
        let m = ModelKind::MultiRegister;
        let r = m
            .parse_op(&ok(
                "txn",
                json!([["read", "x", null]]),
                json!([["read", "x", 1]]),
            ))
            .unwrap();
        assert!(r.is_read_only());
        assert!(!ModelOp::Write(json!(1)).is_read_only());
    }
}
