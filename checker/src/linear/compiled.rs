//! Models compiled for the search: every state and every value an interned `u32`.
//!
//! The search calls `step` millions of times and keys its cache by (linearized set,
//! state), so states must be small, cheap to compare and cheap to hash. Values are
//! interned by their JSON text; registers use the value id itself as the state, the mutex
//! uses 0/1, and composite states (a set, a string, a map of registers) are interned in a
//! per-partition table so that equal states always get the same id. That makes a read a
//! single integer comparison for every model, including sets and strings.
//!
//! The meaning of each operation comes from the model's [`crate::model::Model::parse_op`]
//! into the shared [`ModelOp`]s; this module only changes the representation, chosen by
//! the model's [`StateSpace`]. Witness replay tests check the two agree. (A model
//! without fast paths is searched through `generic` instead.)

use super::wgl::Searchable;
use crate::model::{Micro, ModelOp, StateSpace};
use hashbrown::HashMap;
use serde_json::{Map, Value};
use std::hash::Hash;

/// An operation as the search executes it.
#[derive(Debug, Clone)]
pub(crate) enum CompiledOp {
    /// Leaves the state unchanged (a read whose value was not observed).
    Nop,
    /// The state must equal this id.
    Read(u32),
    /// The state becomes this id.
    Write(u32),
    /// The state must equal the first id and becomes the second.
    Cas(u32, u32),
    Acquire,
    Release,
    /// Set add of a value id.
    Add(u32),
    /// kv-append append of `suffixes[i]`.
    Append(u32),
    /// Multi-register transaction: micro-ops on register indices.
    Txn(Box<[CompiledMicro]>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum CompiledMicro {
    Read(u32, u32),
    Write(u32, u32),
}

/// A table giving equal things equal ids.
#[derive(Debug)]
struct Interner<T> {
    items: Vec<T>,
    ids: HashMap<T, u32>,
    /// Approximate heap bytes of the items themselves (beyond the table slots).
    item_bytes: usize,
}

impl<T: Hash + Eq + Clone> Interner<T> {
    fn new() -> Self {
        Interner {
            items: Vec::new(),
            ids: HashMap::new(),
            item_bytes: 0,
        }
    }

    fn intern(&mut self, item: T, heap_bytes: usize) -> u32 {
        if let Some(&id) = self.ids.get(&item) {
            return id;
        }
        let id = self.items.len() as u32;
        self.items.push(item.clone());
        self.ids.insert(item, id);
        self.item_bytes += 2 * heap_bytes;
        id
    }

    fn get(&self, id: u32) -> &T {
        &self.items[id as usize]
    }

    fn bytes(&self) -> usize {
        self.item_bytes
            + self.items.capacity() * std::mem::size_of::<T>()
            + self.ids.capacity() * (std::mem::size_of::<(T, u32)>() + 1)
    }
}

/// How states are represented for each model.
#[derive(Debug)]
enum Space {
    /// Register and cas-register: the state is a value id.
    Values,
    /// Mutex: 0 free, 1 held.
    Mutex,
    /// Set: sorted value ids.
    Sets(Interner<Box<[u32]>>),
    /// kv-append: the string.
    Strings(Interner<Box<str>>),
    /// Multi-register: one value id per register (index into `register_names`).
    Registers(Interner<Box<[u32]>>),
}

/// The compiled model of one partition: its operations and interned state space.
#[derive(Debug)]
pub(crate) struct CompiledModel {
    kind: StateSpace,
    /// Operations, in the order they were given to [`CompiledModel::compile`].
    pub(crate) ops: Vec<CompiledOp>,
    pub(crate) initial: u32,
    values: Interner<String>,
    value_json: Vec<Value>,
    space: Space,
    suffixes: Vec<String>,
    register_names: Vec<String>,
    /// How many of `register_names` come from the initial object (always shown in
    /// states); others are shown only once they hold a non-null value.
    initial_registers: usize,
    /// Results of the steps that need a table lookup: (state, op) → new state or NONE.
    memo: HashMap<(u32, u32), u32>,
}

const NONE: u32 = u32::MAX;

impl CompiledModel {
    /// Compiles already-parsed operations. `initial` must come from the model's
    /// `initial_state`.
    pub(crate) fn compile(kind: StateSpace, initial: &Value, ops: &[ModelOp]) -> CompiledModel {
        let space = match kind {
            StateSpace::Values => Space::Values,
            StateSpace::Lock => Space::Mutex,
            StateSpace::Sets => Space::Sets(Interner::new()),
            StateSpace::Strings => Space::Strings(Interner::new()),
            StateSpace::Registers => Space::Registers(Interner::new()),
        };
        let mut m = CompiledModel {
            kind,
            ops: Vec::with_capacity(ops.len()),
            initial: 0,
            values: Interner::new(),
            value_json: Vec::new(),
            space,
            suffixes: Vec::new(),
            register_names: Vec::new(),
            initial_registers: 0,
            memo: HashMap::new(),
        };
        // Register names first, so the initial state has a slot for every register.
        if kind == StateSpace::Registers {
            if let Value::Object(init) = initial {
                for name in init.keys() {
                    m.register(name);
                }
            }
            m.initial_registers = m.register_names.len();
            for op in ops {
                if let ModelOp::Txn(micro) = op {
                    for mo in micro {
                        let (Micro::Read(k, _) | Micro::Write(k, _)) = mo;
                        m.register(k);
                    }
                }
            }
        }
        m.initial = m.intern_state(initial);
        for op in ops {
            let c = m.compile_op(op);
            m.ops.push(c);
        }
        m
    }

    fn register(&mut self, name: &str) -> u32 {
        match self.register_names.iter().position(|n| n == name) {
            Some(i) => i as u32,
            None => {
                self.register_names.push(name.to_string());
                (self.register_names.len() - 1) as u32
            }
        }
    }

    fn value(&mut self, v: &Value) -> u32 {
        let text = v.to_string();
        let len = text.len();
        let id = self.values.intern(text, len);
        if id as usize == self.value_json.len() {
            self.value_json.push(v.clone());
        }
        id
    }

    /// Interns a JSON state of this model.
    fn intern_state(&mut self, state: &Value) -> u32 {
        match self.kind {
            StateSpace::Values => self.value(state),
            StateSpace::Lock => u32::from(state == "held"),
            StateSpace::Sets => {
                let items: Vec<Value> = state.as_array().cloned().unwrap_or_default();
                let mut ids: Vec<u32> = items.iter().map(|v| self.value(v)).collect();
                ids.sort_unstable();
                ids.dedup();
                self.intern_set(ids.into_boxed_slice())
            }
            StateSpace::Strings => self.intern_string(state.as_str().unwrap_or_default()),
            StateSpace::Registers => {
                let null = self.value(&Value::Null);
                let mut slots = vec![null; self.register_names.len()];
                if let Value::Object(init) = state {
                    for (k, v) in init {
                        let r = self.register(k) as usize;
                        if r >= slots.len() {
                            slots.resize(r + 1, null);
                        }
                        slots[r] = self.value(v);
                    }
                }
                self.intern_registers(slots.into_boxed_slice())
            }
        }
    }

    fn intern_set(&mut self, ids: Box<[u32]>) -> u32 {
        let bytes = ids.len() * 4;
        match &mut self.space {
            Space::Sets(t) => t.intern(ids, bytes),
            _ => unreachable!("set state in a non-set model"),
        }
    }

    fn intern_string(&mut self, s: &str) -> u32 {
        match &mut self.space {
            Space::Strings(t) => t.intern(s.into(), s.len()),
            _ => unreachable!("string state in a non-kv model"),
        }
    }

    fn intern_registers(&mut self, slots: Box<[u32]>) -> u32 {
        let bytes = slots.len() * 4;
        match &mut self.space {
            Space::Registers(t) => t.intern(slots, bytes),
            _ => unreachable!("register state in a non-multi-register model"),
        }
    }

    fn compile_op(&mut self, op: &ModelOp) -> CompiledOp {
        match op {
            ModelOp::Read(None) | ModelOp::ReadSet(None) | ModelOp::Get(None) => CompiledOp::Nop,
            ModelOp::Read(Some(v)) => CompiledOp::Read(self.value(v)),
            ModelOp::Write(v) => CompiledOp::Write(self.value(v)),
            ModelOp::Cas(a, b) => CompiledOp::Cas(self.value(a), self.value(b)),
            ModelOp::Acquire => CompiledOp::Acquire,
            ModelOp::Release => CompiledOp::Release,
            ModelOp::Add(v) => CompiledOp::Add(self.value(v)),
            ModelOp::ReadSet(Some(items)) => {
                CompiledOp::Read(self.intern_state(&Value::Array(items.clone())))
            }
            ModelOp::Get(Some(s)) => CompiledOp::Read(self.intern_string(s)),
            ModelOp::Put(s) => CompiledOp::Write(self.intern_string(s)),
            ModelOp::Append(s) => {
                self.suffixes.push(s.clone());
                CompiledOp::Append((self.suffixes.len() - 1) as u32)
            }
            ModelOp::Txn(micro) => {
                let compiled = micro
                    .iter()
                    .filter_map(|m| match m {
                        Micro::Read(k, Some(v)) => {
                            Some(CompiledMicro::Read(self.register(k), self.value(v)))
                        }
                        Micro::Read(_, None) => None,
                        Micro::Write(k, v) => {
                            Some(CompiledMicro::Write(self.register(k), self.value(v)))
                        }
                    })
                    .collect();
                CompiledOp::Txn(compiled)
            }
        }
    }

    fn step_composite(&mut self, state: u32, op: u32) -> Option<u32> {
        if let Some(&next) = self.memo.get(&(state, op)) {
            return (next != NONE).then_some(next);
        }
        let next = match &self.ops[op as usize] {
            CompiledOp::Add(v) => {
                let v = *v;
                let Space::Sets(t) = &self.space else {
                    unreachable!("add in a non-set model")
                };
                let current = t.get(state);
                match current.binary_search(&v) {
                    Ok(_) => Some(state),
                    Err(pos) => {
                        let mut ids = Vec::with_capacity(current.len() + 1);
                        ids.extend_from_slice(&current[..pos]);
                        ids.push(v);
                        ids.extend_from_slice(&current[pos..]);
                        Some(self.intern_set(ids.into_boxed_slice()))
                    }
                }
            }
            CompiledOp::Append(i) => {
                let Space::Strings(t) = &self.space else {
                    unreachable!("append in a non-kv model")
                };
                let mut s = String::from(&**t.get(state));
                s.push_str(&self.suffixes[*i as usize]);
                Some(self.intern_string(&s))
            }
            CompiledOp::Txn(micro) => {
                let Space::Registers(t) = &self.space else {
                    unreachable!("txn in a non-multi-register model")
                };
                let mut slots: Box<[u32]> = t.get(state).clone();
                let mut legal = true;
                for m in micro.iter() {
                    match *m {
                        CompiledMicro::Read(r, v) => {
                            if slots[r as usize] != v {
                                legal = false;
                                break;
                            }
                        }
                        CompiledMicro::Write(r, v) => slots[r as usize] = v,
                    }
                }
                legal.then(|| self.intern_registers(slots))
            }
            _ => unreachable!("simple operations never reach step_composite"),
        };
        self.memo.insert((state, op), next.unwrap_or(NONE));
        next
    }
}

impl Searchable for CompiledModel {
    fn initial(&self) -> u32 {
        self.initial
    }

    /// Whether operation `op` never changes the state (a read, or one that observed
    /// nothing).
    fn is_read_only(&self, op: u32) -> bool {
        matches!(self.ops[op as usize], CompiledOp::Read(_) | CompiledOp::Nop)
    }

    /// Applies operation `op` (an index into `ops`) to `state`.
    #[inline]
    fn step(&mut self, state: u32, op: u32) -> Option<u32> {
        match &self.ops[op as usize] {
            CompiledOp::Nop => Some(state),
            CompiledOp::Read(v) => (state == *v).then_some(state),
            CompiledOp::Write(v) => Some(*v),
            CompiledOp::Cas(a, b) => (state == *a).then_some(*b),
            CompiledOp::Acquire => (state == 0).then_some(1),
            CompiledOp::Release => (state == 1).then_some(0),
            CompiledOp::Add(_) | CompiledOp::Append(_) | CompiledOp::Txn(_) => {
                self.step_composite(state, op)
            }
        }
    }

    /// Approximate heap bytes of the interned tables and the step memo; they grow during
    /// the search for composite models and count against the memory budget.
    fn bytes(&self) -> usize {
        let space = match &self.space {
            Space::Values | Space::Mutex => 0,
            Space::Sets(t) | Space::Registers(t) => t.bytes(),
            Space::Strings(t) => t.bytes(),
        };
        space
            + self.values.bytes()
            + self.value_json.capacity() * std::mem::size_of::<Value>()
            + self.memo.capacity() * 13
    }

    /// Forgets memoised steps (they are only a speed-up) to give memory back.
    fn clear_memo(&mut self) {
        self.memo = HashMap::new();
    }

    /// The state as JSON, in the form `model::apply` uses.
    fn state_json(&self, state: u32) -> Value {
        match &self.space {
            Space::Values => self.value_json[state as usize].clone(),
            Space::Mutex => Value::String(if state == 0 { "free" } else { "held" }.into()),
            Space::Sets(t) => Value::Array(crate::model::canonical_set(
                t.get(state)
                    .iter()
                    .map(|&v| self.value_json[v as usize].clone()),
            )),
            Space::Strings(t) => Value::String(t.get(state).to_string()),
            Space::Registers(t) => {
                let mut map = Map::new();
                for (i, &v) in t.get(state).iter().enumerate() {
                    let value = &self.value_json[v as usize];
                    if i >= self.initial_registers && value.is_null() {
                        continue;
                    }
                    map.insert(self.register_names[i].clone(), value.clone());
                }
                Value::Object(map)
            }
        }
    }
}
