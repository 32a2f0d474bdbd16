//! `mutex`: `acquire` / `release`; acquiring a held lock or releasing a free one is
//! illegal. States are `"free"` and `"held"`.

use super::{
    apply, bad_initial, bad_op, describe, Decision, FastPaths, Model, ModelError, ModelKind,
    ModelOp, Precheck, Procedures, Reduce, StateSpace,
};
use crate::history::Operation;
use serde_json::Value;

/// The `mutex` model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mutex;

impl Model for Mutex {
    type Op = ModelOp;

    fn name(&self) -> &'static str {
        ModelKind::Mutex.name()
    }

    fn default_initial(&self) -> Value {
        Value::String("free".into())
    }

    /// Accepted: `"free"`/`"held"`, `false`/`true`, `null` (free).
    fn initial_state(&self, initial: Option<&Value>) -> Result<Value, ModelError> {
        match initial {
            None | Some(Value::Null | Value::Bool(false)) => Ok(self.default_initial()),
            Some(Value::Bool(true)) => Ok(Value::String("held".into())),
            Some(v @ Value::String(s)) if s == "free" || s == "held" => Ok(v.clone()),
            Some(v) => Err(bad_initial(self.name(), v, "\"free\" or \"held\"")),
        }
    }

    fn parse_op(&self, op: &Operation) -> Result<ModelOp, ModelError> {
        match op.f.as_str() {
            "acquire" => Ok(ModelOp::Acquire),
            "release" => Ok(ModelOp::Release),
            _ => Err(bad_op(self.name(), op, "f to be acquire or release")),
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
        "the lock could only be"
    }

    fn fast_paths(&self) -> Option<FastPaths<ModelOp>> {
        Some(FastPaths::new(Procedures {
            space: StateSpace::Lock,
            reduce: Reduce::None,
            precheck: Precheck::None,
            decide: Decision::Search,
            knossos_null_reads: false,
        }))
    }
}
