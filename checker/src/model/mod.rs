//! Sequential specifications: what each object does when operations are applied to it
//! one at a time, and the one table of the models the checker knows.
//!
//! This module owns the *meaning* of every model:
//! - [`Model`]: the trait a model implements — parse an [`Operation`] into the model's
//!   op type, the initial state, `state × op → Option<state>` (`None`: illegal here),
//!   which operations are read-only, whether keys split a history into independent
//!   objects. A user's own model implements it and is checked by the generic
//!   Wing–Gong–Lowe search; the built-in models also hand the checker their
//!   [`FastPaths`] (interned states, reductions, pre-checks, decision procedures).
//! - [`ModelKind`]: the built-in models by name, generated from the one table at the
//!   bottom of this file (`builtin_models!`): the names the CLI accepts, the
//!   generators' list and the docs all read it. Adding a model is one file in this
//!   folder plus one row there.
//! - [`ModelOp`]: the built-in models' shared op vocabulary, written plainly on JSON
//!   values so it reads as a specification and replays a witness ([`apply`]).
//!
//! The linearizability search does not call [`Model::step`] in its inner loop for the
//! built-in models; it compiles operations to interned integers (`linear::compiled`).
//! Both start from [`Model::parse_op`], so they agree on what an operation *is*, and
//! the tests replay search witnesses through [`Model::step`], so they must agree on what
//! it *does*.
//!
//! Semantics, as Jepsen/Knossos/Porcupine (each model's file says more):
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

mod cas_register;
mod kv_append;
mod multi_register;
mod mutex;
mod register;
mod set;

pub use cas_register::CasRegister;
pub use kv_append::KvAppend;
pub use multi_register::MultiRegister;
pub use mutex::Mutex;
pub use register::Register;
pub use set::Set;

use crate::history::{Operation, Outcome};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// A sequential specification the linearizability checker can check a history against.
///
/// States are JSON values (what witnesses show and `--initial` gives); operations are
/// parsed once into the model's own [`Model::Op`]. A model implementing only the
/// required methods is decided by the generic search, which interns the states it meets
/// and memoises steps, so `step` must be a pure function of its arguments.
///
/// ```
/// use serde_json::{json, Value};
/// use splitbrain_checker::model::{Model, ModelError};
/// use splitbrain_checker::Operation;
///
/// /// A counter: `inc` adds one, `read` returns the count.
/// struct Counter;
/// #[derive(Debug, Clone, PartialEq)]
/// enum CounterOp { Inc, Read(Option<i64>) }
///
/// impl Model for Counter {
///     type Op = CounterOp;
///     fn name(&self) -> &'static str { "counter" }
///     fn default_initial(&self) -> Value { json!(0) }
///     fn parse_op(&self, op: &Operation) -> Result<CounterOp, ModelError> {
///         match op.f.as_str() {
///             "inc" => Ok(CounterOp::Inc),
///             _ => Ok(CounterOp::Read(op.output.as_i64())),
///         }
///     }
///     fn step(&self, state: &Value, op: &CounterOp) -> Option<Value> {
///         let n = state.as_i64()?;
///         match op {
///             CounterOp::Inc => Some(json!(n + 1)),
///             CounterOp::Read(Some(v)) => (*v == n).then(|| state.clone()),
///             CounterOp::Read(None) => Some(state.clone()),
///         }
///     }
///     fn is_read_only(&self, op: &CounterOp) -> bool { matches!(op, CounterOp::Read(_)) }
/// }
/// ```
pub trait Model: Send + Sync {
    /// What one operation does to the model.
    type Op: Clone + PartialEq + fmt::Debug + Send + Sync;

    /// The model's name (in results and error messages).
    fn name(&self) -> &'static str;

    /// The initial state used when the user gives none.
    fn default_initial(&self) -> Value;

    /// Normalises a user-given initial value (or the default) into a model state.
    fn initial_state(&self, initial: Option<&Value>) -> Result<Value, ModelError> {
        Ok(initial.cloned().unwrap_or_else(|| self.default_initial()))
    }

    /// True if per-operation keys split the history into independent objects (checked
    /// one by one, P-compositionality); false when the model's objects are named inside
    /// operations.
    fn uses_op_keys(&self) -> bool {
        true
    }

    /// Parses one operation into what it does to this model; an error names the
    /// operation and what was expected.
    fn parse_op(&self, op: &Operation) -> Result<Self::Op, ModelError>;

    /// Applies `op` to `state` sequentially: the new state, or `None` when the operation
    /// is illegal in that state. `state` comes from [`Model::initial_state`] or an
    /// earlier step.
    fn step(&self, state: &Value, op: &Self::Op) -> Option<Value>;

    /// True if the operation can never change the state. Such operations that did not
    /// complete `ok` are dropped before the search (whether or when they happened cannot
    /// matter), and the search places legal ones at once.
    fn is_read_only(&self, op: &Self::Op) -> bool;

    /// For one independent object (`partition`: its operations), a test for the `ok`
    /// operations that observed nothing after all and so constrain nothing (Knossos'
    /// `null` reads of a register that can never be `null`). Default: none.
    fn unobserving<'a>(
        &self,
        _initial: &Value,
        _partition: &mut dyn Iterator<Item = &'a Self::Op>,
    ) -> Option<fn(&Self::Op) -> bool> {
        None
    }

    /// What an operation that cannot be placed wanted, for a witness ("read returned 3").
    fn describe(&self, op: &Self::Op) -> String {
        format!("{op:?}")
    }

    /// How a witness introduces the states the object could be in ("the register could
    /// only hold").
    fn states_phrase(&self) -> &'static str {
        "the object could only be"
    }

    /// The optimised paths of a built-in model: `None` (the default, and the only value a
    /// model outside this crate can give) means the generic search decides.
    fn fast_paths(&self) -> Option<FastPaths<Self::Op>> {
        None
    }
}

/// What the checker's optimised paths need from a built-in model: that its ops are the
/// shared [`ModelOp`] vocabulary (so the interned search, the reductions and the
/// decision procedures can read them), and which of those procedures apply.
///
/// Only this crate can make one, for models whose [`Model::Op`] is [`ModelOp`].
#[derive(Debug)]
pub struct FastPaths<Op> {
    /// The ops as the shared vocabulary (the identity: its type says `Op` is `ModelOp`).
    pub(crate) shared: fn(&[Op]) -> &[ModelOp],
    pub(crate) procedures: Procedures,
}

// By hand: a derive would ask `Op: Copy`.
impl<Op> Clone for FastPaths<Op> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Op> Copy for FastPaths<Op> {}

impl FastPaths<ModelOp> {
    pub(crate) fn new(procedures: Procedures) -> Self {
        fn same(ops: &[ModelOp]) -> &[ModelOp] {
            ops
        }
        FastPaths {
            shared: same,
            procedures,
        }
    }
}

/// The optimised procedures a built-in model uses; each names a procedure of the
/// `linear` module, not a model, so a new model reuses them without touching it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Procedures {
    /// How the search interns states.
    pub(crate) space: StateSpace,
    /// Sound reductions of `info` updates before deciding (`linear::reduce`).
    pub(crate) reduce: Reduce,
    /// Sound O(n) refutations before the search (`linear::precheck`).
    pub(crate) precheck: Precheck,
    /// A polynomial decision tried before the search.
    pub(crate) decide: Decision,
    /// Knossos' convention: in a register that can never be `null`, a read of `null`
    /// observed nothing ([`ModelKind::null_reads_observe_nothing`]).
    pub(crate) knossos_null_reads: bool,
}

/// How the search represents a model's states as interned integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateSpace {
    /// The state is one value (registers).
    Values,
    /// `"free"` / `"held"`.
    Lock,
    /// A set of values.
    Sets,
    /// A string.
    Strings,
    /// A map from register name to value.
    Registers,
}

/// Which `info`-update reduction applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reduce {
    None,
    /// Writes and cas of single values.
    Register,
    /// Adds to a set.
    SetAdds,
    /// Puts and appends of strings.
    KvAppend,
}

/// Which pre-check applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precheck {
    None,
    Register,
    Set,
    KvAppend,
    MultiRegister,
}

/// Which decision procedure runs before the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// None: the search decides.
    Search,
    /// The unique-values fast path, then the version chains (registers).
    VersionChains,
    /// The append-order translation to versions (kv-append).
    AppendOrder,
}

/// A function called with a built-in model, whatever its type: how code that is
/// generic over [`Model`] is run for a [`ModelKind`] (see [`ModelKind::visit`]).
pub trait ModelFn {
    type Output;
    fn call<M: Model>(self, model: &M) -> Self::Output;
}

/// Generates [`ModelKind`], its names and its dispatch from the one table of built-in
/// models.
macro_rules! builtin_models {
    ($($kind:ident = $name:literal => $model:expr,)*) => {
        /// The built-in models, by name (see the table in `model/mod.rs`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ModelKind {
            $($kind,)*
        }

        impl ModelKind {
            /// Every built-in model, in table order.
            pub const ALL: [ModelKind; [$($name,)*].len()] = [$(ModelKind::$kind,)*];

            /// Every model name, as accepted by [`FromStr`] and printed by
            /// [`fmt::Display`], in table order.
            pub const NAMES: [&'static str; [$($name,)*].len()] = [$($name,)*];

            pub const fn name(self) -> &'static str {
                match self {
                    $(ModelKind::$kind => $name,)*
                }
            }

            /// Calls `f` with this kind's model: the one dispatch on [`ModelKind`].
            pub fn visit<F: ModelFn>(self, f: F) -> F::Output {
                match self {
                    $(ModelKind::$kind => f.call(&$model),)*
                }
            }
        }
    };
}

// The table: one row per built-in model (its name, and its implementation in this
// folder).
builtin_models! {
    Register = "register" => Register,
    CasRegister = "cas-register" => CasRegister,
    Mutex = "mutex" => Mutex,
    Set = "set" => Set,
    MultiRegister = "multi-register" => MultiRegister,
    KvAppend = "kv-append" => KvAppend,
}

impl ModelKind {
    /// [`Model::default_initial`] of this model.
    pub fn default_initial(self) -> Value {
        struct Initial;
        impl ModelFn for Initial {
            type Output = Value;
            fn call<M: Model>(self, model: &M) -> Value {
                model.default_initial()
            }
        }
        self.visit(Initial)
    }

    /// [`Model::uses_op_keys`] of this model.
    pub fn uses_op_keys(self) -> bool {
        struct Keys;
        impl ModelFn for Keys {
            type Output = bool;
            fn call<M: Model>(self, model: &M) -> bool {
                model.uses_op_keys()
            }
        }
        self.visit(Keys)
    }

    /// [`Model::initial_state`] of this model.
    pub fn initial_state(self, initial: Option<&Value>) -> Result<Value, ModelError> {
        struct Initial<'a>(Option<&'a Value>);
        impl ModelFn for Initial<'_> {
            type Output = Result<Value, ModelError>;
            fn call<M: Model>(self, model: &M) -> Self::Output {
                model.initial_state(self.0)
            }
        }
        self.visit(Initial(initial))
    }

    /// Parses one operation into the shared vocabulary every built-in model uses.
    pub fn parse_op(self, op: &Operation) -> Result<ModelOp, ModelError> {
        struct Parse<'a>(&'a Operation);
        impl ModelFn for Parse<'_> {
            type Output = Result<ModelOp, ModelError>;
            fn call<M: Model>(self, model: &M) -> Self::Output {
                let parsed = model.parse_op(self.0)?;
                let fast = model
                    .fast_paths()
                    .expect("every built-in model has fast paths");
                Ok((fast.shared)(std::slice::from_ref(&parsed))[0].clone())
            }
        }
        self.visit(Parse(op))
    }

    /// [`Model::step`] of every built-in model (they share [`apply`]).
    pub fn step(self, state: &Value, op: &ModelOp) -> Option<Value> {
        apply(state, op)
    }

    /// True if, in one object with these operations, an `ok` read of `null` is Knossos'
    /// "the read returned no value" rather than "the register is absent": a model that
    /// keeps Knossos' convention ([`Model::unobserving`]), an initial value that is not
    /// `null`, and no write or cas that writes `null` (so the register can never be
    /// absent). The checker then drops such reads.
    pub fn null_reads_observe_nothing<'a>(
        self,
        initial: &Value,
        ops: impl Iterator<Item = &'a ModelOp>,
    ) -> bool {
        self.procedures().knossos_null_reads && register::never_null(initial, ops)
    }

    /// The procedures this built-in model's fast paths use.
    pub(crate) fn procedures(self) -> Procedures {
        struct Procs;
        impl ModelFn for Procs {
            type Output = Procedures;
            fn call<M: Model>(self, model: &M) -> Procedures {
                model
                    .fast_paths()
                    .expect("every built-in model has fast paths")
                    .procedures
            }
        }
        self.visit(Procs)
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
    #[error("unknown model `{0}`; expected one of: {known}", known = ModelKind::NAMES.join(", "))]
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

/// The new state after `op`, or `None` when `op` is illegal in `state`: the step of
/// every built-in model (their ops say what they do; each model's file says which ops
/// it has and what its states are).
pub fn apply(state: &Value, op: &ModelOp) -> Option<Value> {
    match op {
        ModelOp::Read(None) | ModelOp::ReadSet(None) | ModelOp::Get(None) => Some(state.clone()),
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
        ModelOp::ReadSet(Some(items)) => (state.as_array() == Some(items)).then(|| state.clone()),
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

/// What an operation that cannot be placed wanted, in words ("read returned 3").
pub(crate) fn describe(op: &ModelOp) -> String {
    match op {
        ModelOp::Read(Some(v)) => format!("read returned {v}"),
        ModelOp::Cas(a, b) => format!("cas expected {a} (to set {b})"),
        ModelOp::Acquire => "acquire needs the lock free".to_string(),
        ModelOp::Release => "release needs the lock held".to_string(),
        ModelOp::ReadSet(Some(items)) => {
            format!("read returned the set {}", Value::Array(items.clone()))
        }
        ModelOp::Get(Some(s)) => format!("get returned {s:?}"),
        ModelOp::Txn(micro) => {
            let reads: Vec<String> = micro
                .iter()
                .filter_map(|m| match m {
                    Micro::Read(k, Some(v)) => Some(format!("{k} = {v}")),
                    _ => None,
                })
                .collect();
            if reads.is_empty() {
                "the transaction".to_string()
            } else {
                format!("txn read {}", reads.join(", "))
            }
        }
        other => format!("{other:?}"),
    }
}

/// The error for an operation that does not fit `model`: names the operation (its
/// completion's value when it has one, else its invocation's) and what was expected.
pub(crate) fn bad_op(model: &'static str, op: &Operation, expected: &str) -> ModelError {
    let observed = op.outcome == Outcome::Ok;
    ModelError::BadOperation {
        model,
        process: op.process,
        f: op.f.clone(),
        value: if observed && !op.output.is_null() {
            op.output.clone()
        } else {
            op.input.clone()
        },
        invoke_index: op.invoke_index,
        expected: expected.to_string(),
    }
}

/// The error for an initial value that does not fit `model`.
pub(crate) fn bad_initial(model: &'static str, value: &Value, expected: &str) -> ModelError {
    ModelError::BadInitial {
        model,
        value: value.clone(),
        expected: expected.to_string(),
    }
}

/// The argument of an update: the invocation's value, or the completion's when the
/// invocation did not carry it.
pub(crate) fn argument(op: &Operation) -> &Value {
    if op.input.is_null() {
        &op.output
    } else {
        &op.input
    }
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
