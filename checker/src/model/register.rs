//! `register`: one value; `read` returns it (the completion's value), `write v` sets it.
//!
//! Also the register family's shared parts, which `cas-register` reuses: parsing reads
//! and writes, and Knossos' `null`-read convention (in a register that can never be
//! `null`, a read of `null` observed nothing).

use super::{
    apply, argument, bad_op, describe, Decision, FastPaths, Model, ModelError, ModelKind, ModelOp,
    Precheck, Procedures, Reduce, StateSpace,
};
use crate::history::{Operation, Outcome};
use serde_json::Value;

/// The `register` model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

/// The fast paths of both registers: values interned as ids, the `info` reductions, the
/// pre-checks, and the unique-values and version-chains decisions.
pub(crate) const REGISTER_PROCEDURES: Procedures = Procedures {
    space: StateSpace::Values,
    reduce: Reduce::Register,
    precheck: Precheck::Register,
    decide: Decision::VersionChains,
    knossos_null_reads: true,
};

impl Model for Register {
    type Op = ModelOp;

    fn name(&self) -> &'static str {
        ModelKind::Register.name()
    }

    fn default_initial(&self) -> Value {
        Value::Null
    }

    fn parse_op(&self, op: &Operation) -> Result<ModelOp, ModelError> {
        parse(self.name(), false, op)
    }

    fn step(&self, state: &Value, op: &ModelOp) -> Option<Value> {
        apply(state, op)
    }

    fn is_read_only(&self, op: &ModelOp) -> bool {
        op.is_read_only()
    }

    fn unobserving<'a>(
        &self,
        initial: &Value,
        partition: &mut dyn Iterator<Item = &'a ModelOp>,
    ) -> Option<fn(&ModelOp) -> bool> {
        unobserving(initial, partition)
    }

    fn describe(&self, op: &ModelOp) -> String {
        describe(op)
    }

    fn states_phrase(&self) -> &'static str {
        STATES_PHRASE
    }

    fn fast_paths(&self) -> Option<FastPaths<ModelOp>> {
        Some(FastPaths::new(REGISTER_PROCEDURES))
    }
}

pub(crate) const STATES_PHRASE: &str = "the register could only hold";

/// Parses a register operation: `read`, `write`, and `cas [expected new]` when `cas`.
pub(crate) fn parse(model: &'static str, cas: bool, op: &Operation) -> Result<ModelOp, ModelError> {
    let observed = op.outcome == Outcome::Ok;
    match op.f.as_str() {
        "read" => Ok(ModelOp::Read(observed.then(|| op.output.clone()))),
        "write" => Ok(ModelOp::Write(argument(op).clone())),
        "cas" if cas => match argument(op) {
            Value::Array(pair) if pair.len() == 2 => {
                Ok(ModelOp::Cas(pair[0].clone(), pair[1].clone()))
            }
            _ => Err(bad_op(model, op, "a cas value [expected, new]")),
        },
        _ if !cas => Err(bad_op(model, op, "f to be read or write")),
        _ => Err(bad_op(model, op, "f to be read, write or cas")),
    }
}

/// True if a register starting at `initial` can never be `null` given these operations:
/// the initial value is not `null`, and no write or cas writes `null`.
pub(crate) fn never_null<'a>(initial: &Value, mut ops: impl Iterator<Item = &'a ModelOp>) -> bool {
    !initial.is_null()
        && !ops.any(|op| {
            matches!(
                op,
                ModelOp::Write(Value::Null) | ModelOp::Cas(_, Value::Null)
            )
        })
}

/// Knossos' convention: in a register that can never be `null`, an `ok` read of `null`
/// returned no value and constrains nothing.
pub(crate) fn unobserving<'a>(
    initial: &Value,
    partition: &mut dyn Iterator<Item = &'a ModelOp>,
) -> Option<fn(&ModelOp) -> bool> {
    fn null_read(op: &ModelOp) -> bool {
        *op == ModelOp::Read(Some(Value::Null))
    }
    never_null(initial, partition).then_some(null_read as fn(&ModelOp) -> bool)
}
