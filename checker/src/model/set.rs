//! `set`: `add v`; `read` returns the whole set as a list (compared as a set). States
//! are canonical lists ([`canonical_set`]).

use super::{
    apply, argument, bad_initial, bad_op, canonical_set, describe, Decision, FastPaths, Model,
    ModelError, ModelKind, ModelOp, Precheck, Procedures, Reduce, StateSpace,
};
use crate::history::{Operation, Outcome};
use serde_json::Value;

/// The `set` model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Set;

impl Model for Set {
    type Op = ModelOp;

    fn name(&self) -> &'static str {
        ModelKind::Set.name()
    }

    fn default_initial(&self) -> Value {
        Value::Array(Vec::new())
    }

    /// Accepted: a list (duplicates removed, sorted), or `null` (empty).
    fn initial_state(&self, initial: Option<&Value>) -> Result<Value, ModelError> {
        match initial {
            None | Some(Value::Null) => Ok(self.default_initial()),
            Some(Value::Array(items)) => Ok(Value::Array(canonical_set(items.iter().cloned()))),
            Some(v) => Err(bad_initial(self.name(), v, "a list of elements")),
        }
    }

    fn parse_op(&self, op: &Operation) -> Result<ModelOp, ModelError> {
        let observed = op.outcome == Outcome::Ok;
        match op.f.as_str() {
            "add" => Ok(ModelOp::Add(argument(op).clone())),
            "read" if !observed => Ok(ModelOp::ReadSet(None)),
            "read" => match &op.output {
                Value::Array(items) => {
                    Ok(ModelOp::ReadSet(Some(canonical_set(items.iter().cloned()))))
                }
                _ => Err(bad_op(
                    self.name(),
                    op,
                    "a read to return the set as a list",
                )),
            },
            _ => Err(bad_op(self.name(), op, "f to be add or read")),
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
        "the set could only be"
    }

    fn fast_paths(&self) -> Option<FastPaths<ModelOp>> {
        Some(FastPaths::new(Procedures {
            space: StateSpace::Sets,
            reduce: Reduce::SetAdds,
            precheck: Precheck::Set,
            decide: Decision::Search,
            knossos_null_reads: false,
        }))
    }
}
