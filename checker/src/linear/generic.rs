//! The search's view of a model without fast paths (a user's own [`Model`]): states are
//! interned as the search meets them, and steps are memoised.
//!
//! The search keys its cache by (linearized set, state id), so every state gets a
//! small id: equal states (equal JSON text) the same one. [`Model::step`] runs once per
//! (state, operation) pair; the memo answers every later visit, so a user's model costs
//! one JSON step per distinct configuration rather than per search step.

use super::wgl::Searchable;
use crate::model::Model;
use hashbrown::HashMap;
use serde_json::Value;

const NONE: u32 = u32::MAX;

/// A [`Model`]'s partition, ready for the search.
pub(crate) struct GenericModel<'a, M: Model> {
    model: &'a M,
    ops: &'a [M::Op],
    read_only: Vec<bool>,
    /// Every state met, by id.
    states: Vec<Value>,
    /// State ids by JSON text (equal exactly when the states are).
    ids: HashMap<String, u32>,
    /// Approximate heap bytes of `states` and `ids` beyond their slots.
    state_bytes: usize,
    /// (state, op) → the state after, or [`NONE`] when illegal.
    memo: HashMap<(u32, u32), u32>,
    initial: u32,
}

impl<'a, M: Model> GenericModel<'a, M> {
    /// `initial` comes from the model's [`Model::initial_state`]; `ops[i]` is operation `i`
    /// of the search.
    pub(crate) fn new(model: &'a M, initial: &Value, ops: &'a [M::Op]) -> Self {
        let mut g = GenericModel {
            model,
            ops,
            read_only: ops.iter().map(|op| model.is_read_only(op)).collect(),
            states: Vec::new(),
            ids: HashMap::new(),
            state_bytes: 0,
            memo: HashMap::new(),
            initial: 0,
        };
        g.initial = g.intern(initial.clone());
        g
    }

    fn intern(&mut self, state: Value) -> u32 {
        let text = state.to_string();
        if let Some(&id) = self.ids.get(&text) {
            return id;
        }
        let id = self.states.len() as u32;
        // The text twice (key and value's own heap, roughly).
        self.state_bytes += 2 * text.len();
        self.ids.insert(text, id);
        self.states.push(state);
        id
    }
}

impl<M: Model> Searchable for GenericModel<'_, M> {
    fn initial(&self) -> u32 {
        self.initial
    }

    fn is_read_only(&self, op: u32) -> bool {
        self.read_only[op as usize]
    }

    fn step(&mut self, state: u32, op: u32) -> Option<u32> {
        if let Some(&next) = self.memo.get(&(state, op)) {
            return (next != NONE).then_some(next);
        }
        let next = self
            .model
            .step(&self.states[state as usize], &self.ops[op as usize])
            .map(|after| self.intern(after));
        self.memo.insert((state, op), next.unwrap_or(NONE));
        next
    }

    fn bytes(&self) -> usize {
        self.state_bytes
            + self.states.capacity() * std::mem::size_of::<Value>()
            + self.ids.capacity() * (std::mem::size_of::<(String, u32)>() + 1)
            + self.memo.capacity() * 13
    }

    fn clear_memo(&mut self) {
        self.memo = HashMap::new();
    }

    fn state_json(&self, state: u32) -> Value {
        self.states[state as usize].clone()
    }
}
