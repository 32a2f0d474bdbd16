//! `kv-append`: per-key strings; `put s`, `append s`, and `get` returns the string
//! exactly (`null` reads as the empty string).

use super::{
    apply, argument, bad_initial, bad_op, describe, Decision, FastPaths, Model, ModelError,
    ModelKind, ModelOp, Precheck, Procedures, Reduce, StateSpace,
};
use crate::history::{Operation, Outcome};
use serde_json::Value;

/// The `kv-append` model.
#[derive(Debug, Clone, Copy, Default)]
pub struct KvAppend;

impl Model for KvAppend {
    type Op = ModelOp;

    fn name(&self) -> &'static str {
        ModelKind::KvAppend.name()
    }

    fn default_initial(&self) -> Value {
        Value::String(String::new())
    }

    /// Accepted: a string, or `null` (empty).
    fn initial_state(&self, initial: Option<&Value>) -> Result<Value, ModelError> {
        match initial {
            None | Some(Value::Null) => Ok(self.default_initial()),
            Some(v @ Value::String(_)) => Ok(v.clone()),
            Some(v) => Err(bad_initial(self.name(), v, "a string")),
        }
    }

    fn parse_op(&self, op: &Operation) -> Result<ModelOp, ModelError> {
        let observed = op.outcome == Outcome::Ok;
        let text = |v: &Value, what: &str| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Null => Ok(String::new()),
            _ => Err(bad_op(self.name(), op, what)),
        };
        match op.f.as_str() {
            "get" if !observed => Ok(ModelOp::Get(None)),
            "get" => Ok(ModelOp::Get(Some(text(
                &op.output,
                "get to return a string",
            )?))),
            "put" => Ok(ModelOp::Put(text(argument(op), "a string to put")?)),
            "append" => Ok(ModelOp::Append(text(argument(op), "a string to append")?)),
            _ => Err(bad_op(self.name(), op, "f to be get, put or append")),
        }
    }

    fn step(&self, state: &Value, op: &ModelOp) -> Option<Value> {
        apply(state, op)
    }

    fn is_read_only(&self, op: &ModelOp) -> bool {
        op.is_read_only()
    }

    fn describe(&self, op: &ModelOp) -> String {
        describe(op)
    }

    fn states_phrase(&self) -> &'static str {
        "the key could only hold"
    }

    fn fast_paths(&self) -> Option<FastPaths<ModelOp>> {
        Some(FastPaths::new(Procedures {
            space: StateSpace::Strings,
            reduce: Reduce::KvAppend,
            precheck: Precheck::KvAppend,
            decide: Decision::AppendOrder,
            knossos_null_reads: false,
        }))
    }
}
