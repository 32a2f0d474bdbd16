//! `multi-register`: `txn` whose value is a list of `[f k v]` micro-operations, `f` one
//! of `read`/`r`/`write`/`w`, applied atomically to registers named by `k`; the state is
//! a JSON object. A micro-read of `null` constrains nothing (Knossos: the value was not
//! observed), and neither do the reads of a transaction that did not complete `ok`. The
//! registers are named inside transactions, so the whole history is one object.

use super::{
    apply, bad_initial, bad_op, describe, Decision, FastPaths, Micro, Model, ModelError, ModelKind,
    ModelOp, Precheck, Procedures, Reduce, StateSpace,
};
use crate::history::{Operation, Outcome};
use serde_json::{Map, Value};

/// The `multi-register` model.
#[derive(Debug, Clone, Copy, Default)]
pub struct MultiRegister;

impl Model for MultiRegister {
    type Op = ModelOp;

    fn name(&self) -> &'static str {
        ModelKind::MultiRegister.name()
    }

    fn default_initial(&self) -> Value {
        Value::Object(Map::new())
    }

    /// Accepted: an object from register name to value, or `null` (no registers).
    fn initial_state(&self, initial: Option<&Value>) -> Result<Value, ModelError> {
        match initial {
            None | Some(Value::Null) => Ok(self.default_initial()),
            Some(v @ Value::Object(_)) => Ok(v.clone()),
            Some(v) => Err(bad_initial(
                self.name(),
                v,
                "an object from register name to value, e.g. {\"x\":0}",
            )),
        }
    }

    fn uses_op_keys(&self) -> bool {
        false
    }

    fn parse_op(&self, op: &Operation) -> Result<ModelOp, ModelError> {
        let bad = |expected: &str| bad_op(self.name(), op, expected);
        let observed = op.outcome == Outcome::Ok;
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
            let (Some(Value::String(f)), Some(k), v) = (parts.first(), parts.get(1), parts.get(2))
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
        "the registers could only be"
    }

    fn fast_paths(&self) -> Option<FastPaths<ModelOp>> {
        Some(FastPaths::new(Procedures {
            space: StateSpace::Registers,
            reduce: Reduce::None,
            precheck: Precheck::MultiRegister,
            decide: Decision::Search,
            knossos_null_reads: false,
        }))
    }
}
