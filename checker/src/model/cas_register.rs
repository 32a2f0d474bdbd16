//! `cas-register`: a register with `cas [expected new]` too. A read of `null` means the
//! register is absent (still the initial `null`), except under Knossos' convention (see
//! `register`).

use super::register::{self, REGISTER_PROCEDURES, STATES_PHRASE};
use super::{apply, describe, FastPaths, Model, ModelError, ModelKind, ModelOp};
use crate::history::Operation;
use serde_json::Value;

/// The `cas-register` model.
#[derive(Debug, Clone, Copy, Default)]
pub struct CasRegister;

impl Model for CasRegister {
    type Op = ModelOp;

    fn name(&self) -> &'static str {
        ModelKind::CasRegister.name()
    }

    fn default_initial(&self) -> Value {
        Value::Null
    }

    fn parse_op(&self, op: &Operation) -> Result<ModelOp, ModelError> {
        register::parse(self.name(), true, op)
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
        register::unobserving(initial, partition)
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
