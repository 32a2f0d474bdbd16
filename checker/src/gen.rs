//! Seeded generators of histories, for tests and benchmarks of the checkers.
//!
//! [`generate`] simulates `concurrency` client processes against a real sequential
//! object: every operation is invoked, takes effect atomically at a random moment before
//! it completes, and completes `ok`, `fail` (a `cas` whose expected value did not match,
//! an illegal mutex operation — as our cluster answers) or, with probability
//! `info_rate`, `info`. An `info` operation took effect, or will take effect at a random
//! later moment, or never; its process then continues under a new number (p +
//! concurrency), as Jepsen does. Histories from [`generate`] are therefore linearizable
//! by construction.
//!
//! [`random_history`] makes histories with no regard for any object (most are not
//! linearizable), and the mutators ([`mutate_read_value`], [`swap_write_values`],
//! [`stale_read`], [`phantom_read`]) break generated histories: the last two always
//! yield a non-linearizable history when values are unique, the first two only usually.
//!
//! Everything derives from `seed` (ChaCha8), so a failing case reproduces from its seed.

use crate::history::{Event, EventType, History, Key, Process};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// The models the generators know, by the names the checker uses.
pub const MODELS: [&str; 6] = [
    "register",
    "cas-register",
    "mutex",
    "set",
    "multi-register",
    "kv-append",
];

/// Why a generator cannot run.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("the generators do not know the model `{name}`; known: {known}", known = MODELS.join(", "))]
    UnknownModel { name: String },
    #[error("concurrency must be at least 1")]
    NoProcesses,
    #[error("writing the history: {0}")]
    Io(#[from] io::Error),
    #[error("serializing an event: {0}")]
    Json(#[from] serde_json::Error),
}

/// Which values writes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Every write (write, cas-new, add, append, put) writes a value never used before
    /// and different from the initial value: reads pin the write they saw.
    Unique,
    /// Values drawn from `0..n`: many collisions, the hard case for a search.
    Small(u32),
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// One of [`MODELS`].
    pub model: String,
    /// Number of keys; 0 means a single object with no `key` field. Ignored by the
    /// multi-register, whose transactions name their registers themselves.
    pub keys: usize,
    /// Client processes running at once.
    pub concurrency: usize,
    /// Number of operations (invocations) in the history.
    pub ops: usize,
    /// Probability that an operation completes `info`.
    pub info_rate: f64,
    pub values: Values,
    pub seed: u64,
}

impl GenOptions {
    pub fn new(model: &str, seed: u64) -> GenOptions {
        GenOptions {
            model: model.to_string(),
            keys: 1,
            concurrency: 3,
            ops: 8,
            info_rate: 0.1,
            values: Values::Small(3),
            seed,
        }
    }
}

/// The initial value the generators assume for `model` (of every key).
pub fn initial_value(model: &str) -> Result<Value, GenError> {
    Ok(match Sim::parse(model)? {
        Sim::Register | Sim::CasRegister => json!(0),
        Sim::Mutex => Value::Null,
        Sim::Set => json!([]),
        Sim::MultiRegister => json!({"x": 0, "y": 0, "z": 0}),
        Sim::KvAppend => json!(""),
    })
}

/// Generates a linearizable history by simulation (see the module doc).
pub fn generate(opts: &GenOptions) -> Result<History, GenError> {
    let mut events = Vec::with_capacity(opts.ops * 2);
    simulate(opts, |e| {
        events.push(e);
        Ok(())
    })?;
    Ok(History::new(events))
}

/// Streams a generated history as JSON Lines to `out`, without holding it in memory.
pub fn write_jsonl<W: Write>(opts: &GenOptions, out: &mut W) -> Result<u64, GenError> {
    let mut count = 0;
    simulate(opts, |e| {
        serde_json::to_writer(&mut *out, &e)?;
        out.write_all(b"\n")?;
        count += 1;
        Ok(())
    })?;
    Ok(count)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sim {
    Register,
    CasRegister,
    Mutex,
    Set,
    MultiRegister,
    KvAppend,
}

impl Sim {
    fn parse(model: &str) -> Result<Sim, GenError> {
        Ok(match model {
            "register" => Sim::Register,
            "cas-register" => Sim::CasRegister,
            "mutex" => Sim::Mutex,
            "set" => Sim::Set,
            "multi-register" => Sim::MultiRegister,
            "kv-append" => Sim::KvAppend,
            other => {
                return Err(GenError::UnknownModel {
                    name: other.to_string(),
                })
            }
        })
    }
}

/// An operation in flight.
#[derive(Debug, Clone)]
struct Pending {
    f: &'static str,
    key: Option<Key>,
    /// The invocation's value.
    input: Value,
    /// Set once the operation took effect: its completion value, and whether it
    /// succeeded (a failed cas or an illegal mutex operation did not).
    result: Option<(Value, bool)>,
    /// Decided at invocation: this operation will complete `info`.
    info: bool,
}

/// One client slot: the process number it currently runs under, and its operation.
struct Slot {
    process: u64,
    pending: Option<Pending>,
}

struct Simulator {
    sim: Sim,
    opts: GenOptions,
    rng: ChaCha8Rng,
    /// The sequential object: state per key.
    state: BTreeMap<Option<Key>, Value>,
    initial: Value,
    /// Counter behind unique values.
    fresh: u64,
    /// Values written so far per key (for plausible cas expectations).
    written: BTreeMap<Option<Key>, Vec<Value>>,
}

fn simulate<F>(opts: &GenOptions, mut emit: F) -> Result<(), GenError>
where
    F: FnMut(Event) -> Result<(), GenError>,
{
    let sim = Sim::parse(&opts.model)?;
    if opts.concurrency == 0 {
        return Err(GenError::NoProcesses);
    }
    let initial = initial_value(&opts.model)?;
    let mut s = Simulator {
        sim,
        opts: opts.clone(),
        rng: ChaCha8Rng::seed_from_u64(opts.seed),
        state: BTreeMap::new(),
        initial,
        fresh: 0,
        written: BTreeMap::new(),
    };
    let mut slots: Vec<Slot> = (0..opts.concurrency as u64)
        .map(|p| Slot {
            process: p,
            pending: None,
        })
        .collect();
    // Info operations that have not taken effect yet and still may.
    let mut zombies: Vec<Pending> = Vec::new();
    let mut index = 0u64;
    let mut invoked = 0usize;
    let mut busy = 0usize;
    let mut event = |process: u64, kind: EventType, p: &Pending, value: Value| {
        let e = Event {
            index,
            time: index * 1_000,
            process: Process::Client(process),
            kind,
            f: p.f.to_string(),
            key: p.key.clone(),
            value,
            node: None,
            error: (kind == EventType::Info).then(|| "timeout".to_string()),
            line: None,
            extra: Default::default(),
        };
        index += 1;
        e
    };
    while invoked < opts.ops || busy > 0 {
        if !zombies.is_empty() && s.rng.gen_bool(0.05) {
            let z = zombies.swap_remove(s.rng.gen_range(0..zombies.len()));
            s.apply(&z);
        }
        let slot_index = s.rng.gen_range(0..slots.len());
        let slot = &mut slots[slot_index];
        match slot.pending.take() {
            None => {
                if invoked == opts.ops {
                    continue;
                }
                let p = s.invoke();
                emit(event(slot.process, EventType::Invoke, &p, p.input.clone()))?;
                invoked += 1;
                busy += 1;
                slot.pending = Some(p);
            }
            Some(mut p) if p.result.is_none() && !(p.info && s.rng.gen_bool(0.3)) => {
                p.result = Some(s.apply(&p));
                slot.pending = Some(p);
            }
            Some(p) => {
                busy -= 1;
                if p.info {
                    emit(event(slot.process, EventType::Info, &p, p.input.clone()))?;
                    if p.result.is_none() && s.rng.gen_bool(0.5) {
                        zombies.push(p);
                    }
                    slot.process += opts.concurrency as u64;
                    continue;
                }
                let (value, succeeded) = p.result.clone().unwrap_or((Value::Null, false));
                let kind = if succeeded {
                    EventType::Ok
                } else {
                    EventType::Fail
                };
                emit(event(slot.process, kind, &p, value))?;
            }
        }
    }
    Ok(())
}

impl Simulator {
    fn value(&mut self) -> u64 {
        match self.opts.values {
            Values::Unique => {
                self.fresh += 1;
                self.fresh
            }
            Values::Small(n) => self.rng.gen_range(0..n.max(1)) as u64,
        }
    }

    fn key(&mut self) -> Option<Key> {
        match self.opts.keys {
            0 => None,
            n => Some(Key::Str(format!("k{}", self.rng.gen_range(0..n)))),
        }
    }

    fn current(&self, key: &Option<Key>) -> Value {
        self.state
            .get(key)
            .cloned()
            .unwrap_or_else(|| self.initial.clone())
    }

    /// Chooses the next operation.
    fn invoke(&mut self) -> Pending {
        let info = self.rng.gen_bool(self.opts.info_rate.clamp(0.0, 1.0));
        let roll: f64 = self.rng.gen();
        let key = if self.sim == Sim::MultiRegister {
            None
        } else {
            self.key()
        };
        let (f, input) = match self.sim {
            Sim::Register if roll < 0.5 => ("read", Value::Null),
            Sim::Register => ("write", json!(self.value())),
            Sim::CasRegister if roll < 0.4 => ("read", Value::Null),
            Sim::CasRegister if roll < 0.7 => ("write", json!(self.value())),
            Sim::CasRegister => {
                let expected = match self.opts.values {
                    Values::Small(n) => json!(self.rng.gen_range(0..n.max(1))),
                    Values::Unique if self.rng.gen_bool(0.6) => self.current(&key),
                    // Borrowed, not cloned: the list grows with the history, and a copy
                    // per cas made generating 1M operations quadratic.
                    Values::Unique => self
                        .written
                        .get(&key)
                        .and_then(|w| w.choose(&mut self.rng))
                        .cloned()
                        .unwrap_or_else(|| self.initial.clone()),
                };
                ("cas", json!([expected, self.value()]))
            }
            Sim::Mutex if roll < 0.5 => ("acquire", Value::Null),
            Sim::Mutex => ("release", Value::Null),
            Sim::Set if roll < 0.3 => ("read", Value::Null),
            Sim::Set => ("add", json!(self.value())),
            Sim::MultiRegister => {
                let n = self.rng.gen_range(1..=3);
                let mut micro = Vec::new();
                for _ in 0..n {
                    let register = ["x", "y", "z"][self.rng.gen_range(0..3)];
                    if self.rng.gen_bool(0.5) {
                        micro.push(json!(["read", register, null]));
                    } else {
                        micro.push(json!(["write", register, self.value()]));
                    }
                }
                ("txn", Value::Array(micro))
            }
            Sim::KvAppend if roll < 0.4 => ("get", Value::Null),
            Sim::KvAppend if roll < 0.5 => ("put", json!(self.token())),
            Sim::KvAppend => ("append", json!(self.token())),
        };
        Pending {
            f,
            key,
            input,
            result: None,
            info,
        }
    }

    fn token(&mut self) -> String {
        match self.opts.values {
            Values::Unique => format!("x{}y", self.value()),
            Values::Small(_) => ["a", "b", "c"][self.rng.gen_range(0..3)].to_string(),
        }
    }

    /// Applies `p` to the object atomically; returns its completion value and whether
    /// it succeeded.
    fn apply(&mut self, p: &Pending) -> (Value, bool) {
        let cur = self.current(&p.key);
        let (next, result) = match (self.sim, p.f) {
            (_, "read") if self.sim != Sim::Set => (None, (cur.clone(), true)),
            (Sim::Set, "read") => {
                let mut members = cur.as_array().cloned().unwrap_or_default();
                members.sort_by_key(|v| v.to_string());
                (None, (Value::Array(members), true))
            }
            (_, "write") => (Some(p.input.clone()), (p.input.clone(), true)),
            (_, "cas") => {
                let expected = p.input.get(0).cloned().unwrap_or(Value::Null);
                let new = p.input.get(1).cloned().unwrap_or(Value::Null);
                if expected == cur {
                    (Some(new), (p.input.clone(), true))
                } else {
                    (None, (p.input.clone(), false))
                }
            }
            (_, "acquire") => match cur {
                Value::Bool(true) => (None, (Value::Null, false)),
                _ => (Some(Value::Bool(true)), (Value::Null, true)),
            },
            (_, "release") => match cur {
                Value::Bool(true) => (Some(Value::Bool(false)), (Value::Null, true)),
                _ => (None, (Value::Null, false)),
            },
            (_, "add") => {
                let mut members = cur.as_array().cloned().unwrap_or_default();
                if !members.contains(&p.input) {
                    members.push(p.input.clone());
                }
                (Some(Value::Array(members)), (p.input.clone(), true))
            }
            (_, "txn") => {
                let mut registers = cur.clone();
                let mut done = Vec::new();
                for micro in p.input.as_array().cloned().unwrap_or_default() {
                    let f = micro.get(0).and_then(Value::as_str).unwrap_or("read");
                    let register = micro.get(1).and_then(Value::as_str).unwrap_or("x");
                    if f == "write" {
                        let v = micro.get(2).cloned().unwrap_or(Value::Null);
                        registers[register] = v;
                        done.push(micro);
                    } else {
                        let v = registers.get(register).cloned().unwrap_or(Value::Null);
                        done.push(json!(["read", register, v]));
                    }
                }
                (Some(registers), (Value::Array(done), true))
            }
            (_, "get") => (None, (cur.clone(), true)),
            (_, "put") => (Some(p.input.clone()), (p.input.clone(), true)),
            (_, "append") => {
                let s = format!(
                    "{}{}",
                    cur.as_str().unwrap_or(""),
                    p.input.as_str().unwrap_or("")
                );
                (Some(Value::String(s)), (p.input.clone(), true))
            }
            _ => (None, (Value::Null, false)),
        };
        if let Some(next) = next {
            if matches!(p.f, "write" | "cas") {
                self.written
                    .entry(p.key.clone())
                    .or_default()
                    .push(next.clone());
            }
            self.state.insert(p.key.clone(), next);
        }
        result
    }
}

/// A history with no regard for any object: `ops` operations of `model`'s functions on
/// `keys` keys (0: no key), values from `0..domain`, random interleaving of up to
/// `concurrency` processes and random outcomes (ok / fail / info). Most are not
/// linearizable; they exercise the checker on arbitrary input.
pub fn random_history(
    model: &str,
    ops: usize,
    concurrency: usize,
    keys: usize,
    domain: u32,
    seed: u64,
) -> Result<History, GenError> {
    let sim = Sim::parse(model)?;
    if concurrency == 0 {
        return Err(GenError::NoProcesses);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let domain = domain.max(1);
    let mut events = Vec::new();
    let mut open: Vec<Option<Event>> = vec![None; concurrency];
    let mut process_of: Vec<u64> = (0..concurrency as u64).collect();
    let mut invoked = 0;
    while invoked < ops || open.iter().any(Option::is_some) {
        let slot = rng.gen_range(0..concurrency);
        let index = events.len() as u64;
        match open[slot].take() {
            None if invoked < ops => {
                let key = match (keys, sim) {
                    (0, _) | (_, Sim::MultiRegister) => None,
                    (n, _) => Some(Key::Str(format!("k{}", rng.gen_range(0..n)))),
                };
                let v = |rng: &mut ChaCha8Rng| json!(rng.gen_range(0..domain));
                let letter = |rng: &mut ChaCha8Rng| json!(["a", "b", "c"][rng.gen_range(0..3)]);
                let (f, input) = match sim {
                    // Writes of `null` now and then exercise the model's null-read rule.
                    Sim::Register | Sim::CasRegister => match rng.gen_range(0..3) {
                        0 => ("read", Value::Null),
                        1 if sim == Sim::CasRegister => ("cas", json!([v(&mut rng), v(&mut rng)])),
                        _ if rng.gen_bool(0.05) => ("write", Value::Null),
                        _ => ("write", v(&mut rng)),
                    },
                    Sim::Mutex => (
                        *["acquire", "release"]
                            .choose(&mut rng)
                            .unwrap_or(&"acquire"),
                        Value::Null,
                    ),
                    Sim::Set => match rng.gen_range(0..3) {
                        0 => ("read", Value::Null),
                        _ => ("add", v(&mut rng)),
                    },
                    Sim::MultiRegister => {
                        let r = ["x", "y"][rng.gen_range(0..2)];
                        if rng.gen_bool(0.5) {
                            ("txn", json!([["read", r, null]]))
                        } else {
                            ("txn", json!([["write", r, v(&mut rng)]]))
                        }
                    }
                    Sim::KvAppend => match rng.gen_range(0..3) {
                        0 => ("get", Value::Null),
                        1 => ("put", letter(&mut rng)),
                        _ => ("append", letter(&mut rng)),
                    },
                };
                let e = Event {
                    index,
                    time: index * 1_000,
                    process: Process::Client(process_of[slot]),
                    kind: EventType::Invoke,
                    f: f.to_string(),
                    key,
                    value: input,
                    node: None,
                    error: None,
                    line: None,
                    extra: Default::default(),
                };
                open[slot] = Some(e.clone());
                events.push(e);
                invoked += 1;
            }
            None => {}
            Some(inv) => {
                let roll: f64 = rng.gen();
                let kind = if roll < 0.75 {
                    EventType::Ok
                } else if roll < 0.88 {
                    EventType::Fail
                } else {
                    EventType::Info
                };
                let value = if kind != EventType::Ok {
                    inv.value.clone()
                } else {
                    match (sim, inv.f.as_str()) {
                        (Sim::Set, "read") => {
                            let n = rng.gen_range(0..=2);
                            let mut members: Vec<u32> =
                                (0..n).map(|_| rng.gen_range(0..domain)).collect();
                            members.sort_unstable();
                            members.dedup();
                            json!(members)
                        }
                        (Sim::KvAppend, "get") => {
                            let n = rng.gen_range(0..=2);
                            let s: String = (0..n)
                                .map(|_| ["a", "b", "c"][rng.gen_range(0..3)])
                                .collect();
                            json!(s)
                        }
                        (Sim::MultiRegister, _) => {
                            let mut micro = inv.value.clone();
                            if let Some(Value::Array(items)) = micro.get_mut(0) {
                                if items.first() == Some(&json!("read")) && items.len() == 3 {
                                    items[2] = json!(rng.gen_range(0..domain));
                                }
                            }
                            micro
                        }
                        (_, "read") if rng.gen_bool(0.15) => Value::Null,
                        (_, "read") => json!(rng.gen_range(0..domain)),
                        _ => inv.value.clone(),
                    }
                };
                events.push(Event {
                    index,
                    time: index * 1_000,
                    kind,
                    value,
                    error: None,
                    ..inv
                });
                if kind == EventType::Info {
                    process_of[slot] += concurrency as u64;
                }
            }
        }
    }
    Ok(History::new(events))
}

/// A random single-register history with unique written values: writes write 1, 2, 3,
/// ... (never the initial 0), reads return the initial value or any written value
/// (whether or not that write could have happened yet), outcomes are random (`ok`,
/// `info`; reads never `info` here so they observe something). Used to exercise the
/// unique-values fast path on arbitrary, mostly non-linearizable input.
pub fn random_unique_register_history(
    ops: usize,
    concurrency: usize,
    info_rate: f64,
    seed: u64,
) -> Result<History, GenError> {
    if concurrency == 0 {
        return Err(GenError::NoProcesses);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let writes = (ops / 2).max(1) as u64;
    let mut next_value = 1u64;
    let mut events: Vec<Event> = Vec::new();
    let mut open: Vec<Option<Event>> = vec![None; concurrency];
    let mut process_of: Vec<u64> = (0..concurrency as u64).collect();
    let mut invoked = 0;
    while invoked < ops || open.iter().any(Option::is_some) {
        let slot = rng.gen_range(0..concurrency);
        let index = events.len() as u64;
        match open[slot].take() {
            None if invoked < ops => {
                let (f, value) = if rng.gen_bool(0.5) {
                    next_value += 1;
                    ("write", json!(next_value - 1))
                } else {
                    ("read", Value::Null)
                };
                let e = Event {
                    index,
                    time: index * 1_000,
                    process: Process::Client(process_of[slot]),
                    kind: EventType::Invoke,
                    f: f.to_string(),
                    key: None,
                    value,
                    node: None,
                    error: None,
                    line: None,
                    extra: Default::default(),
                };
                open[slot] = Some(e.clone());
                events.push(e);
                invoked += 1;
            }
            None => {}
            Some(inv) => {
                let info = inv.f == "write" && rng.gen_bool(info_rate.clamp(0.0, 1.0));
                let value = if inv.f == "read" {
                    json!(rng.gen_range(0..=writes))
                } else {
                    inv.value.clone()
                };
                let kind = if info { EventType::Info } else { EventType::Ok };
                events.push(Event {
                    index,
                    time: index * 1_000,
                    kind,
                    value,
                    ..inv
                });
                if info {
                    process_of[slot] += concurrency as u64;
                }
            }
        }
    }
    Ok(History::new(events))
}

/// Positions of `ok` completions of `f` (with their invocation position).
fn ok_ops(h: &History, fs: &[&str]) -> Vec<(usize, usize)> {
    let mut open: BTreeMap<Process, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (pos, e) in h.events.iter().enumerate() {
        match e.kind {
            EventType::Invoke => {
                open.insert(e.process, pos);
            }
            kind => {
                if let Some(inv) = open.remove(&e.process) {
                    if kind == EventType::Ok && fs.contains(&e.f.as_str()) {
                        out.push((inv, pos));
                    }
                }
            }
        }
    }
    out
}

/// Changes the value one `ok` register read returned to a different value from
/// `0..domain` (or, when `domain` is 0, to another value seen in the history). Usually,
/// not always, breaks linearizability. `None` if there is no read to change.
pub fn mutate_read_value(h: &History, domain: u32, seed: u64) -> Option<History> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let reads = ok_ops(h, &["read"]);
    let &(_, pos) = reads.choose(&mut rng)?;
    let old = h.events[pos].value.clone();
    let candidates: Vec<Value> = if domain > 0 {
        (0..domain)
            .map(|v| json!(v))
            .filter(|v| *v != old)
            .collect()
    } else {
        let mut seen: Vec<Value> = h
            .events
            .iter()
            .filter(|e| e.f == "write" && e.value != old)
            .map(|e| e.value.clone())
            .collect();
        seen.dedup();
        seen
    };
    let new = candidates.choose(&mut rng)?.clone();
    let mut out = h.clone();
    out.events[pos].value = new;
    Some(out)
}

/// Exchanges the values of two `ok` writes of the same key (both at invocation and
/// completion): as if the two writes had landed in the other order. Usually, not always,
/// breaks linearizability. `None` if no two writes share a key with different values.
pub fn swap_write_values(h: &History, seed: u64) -> Option<History> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let writes = ok_ops(h, &["write"]);
    let mut pairs = Vec::new();
    for (i, a) in writes.iter().enumerate() {
        for b in &writes[i + 1..] {
            let (ea, eb) = (&h.events[a.0], &h.events[b.0]);
            if ea.key == eb.key && ea.value != eb.value {
                pairs.push((*a, *b));
            }
        }
    }
    let &(a, b) = pairs.choose(&mut rng)?;
    let mut out = h.clone();
    let (va, vb) = (h.events[a.0].value.clone(), h.events[b.0].value.clone());
    for pos in [a.0, a.1] {
        out.events[pos].value = vb.clone();
    }
    for pos in [b.0, b.1] {
        out.events[pos].value = va.clone();
    }
    Some(out)
}

/// Makes one `ok` read return the value of a write that was certainly overwritten before
/// the read began: writes w1 and w2 of the same key, w1 completed before w2 was invoked,
/// w2 completed before the read was invoked; the read now returns w1's value. With
/// unique values (and no `info` write of the same value) the result is never
/// linearizable. Works for `register` and `cas-register` histories (`cas` counts as a
/// write of its new value only when the history has none; plain writes are used).
pub fn stale_read(h: &History, seed: u64) -> Option<History> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let writes = ok_ops(h, &["write"]);
    let reads = ok_ops(h, &["read"]);
    let idx = |pos: usize| h.events[pos].index;
    let mut choices = Vec::new();
    for &(r_inv, r_done) in &reads {
        let key = &h.events[r_inv].key;
        // The latest-completing write that finished before the read began, such that
        // another write finished before it began.
        for &(w2_inv, w2_done) in &writes {
            if &h.events[w2_inv].key != key || idx(w2_done) >= idx(r_inv) {
                continue;
            }
            for &(w1_inv, w1_done) in &writes {
                if &h.events[w1_inv].key == key
                    && idx(w1_done) < idx(w2_inv)
                    && h.events[w1_inv].value != h.events[w2_inv].value
                    && h.events[w1_inv].value != h.events[r_done].value
                {
                    choices.push((r_done, w1_inv));
                }
            }
        }
    }
    let &(read, w1) = choices.choose(&mut rng)?;
    let mut out = h.clone();
    out.events[read].value = h.events[w1].value.clone();
    Some(out)
}

/// Makes one `ok` register read return a value nobody ever wrote (a fresh number larger
/// than any in the history). Never linearizable for `register` / `cas-register`.
pub fn phantom_read(h: &History, seed: u64) -> Option<History> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let reads = ok_ops(h, &["read"]);
    let &(_, pos) = reads.choose(&mut rng)?;
    let mut out = h.clone();
    out.events[pos].value = json!(1_000_000_000u64 + seed % 1000);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_histories_pair_and_are_deterministic() {
        for model in MODELS {
            let mut opts = GenOptions::new(model, 7);
            opts.ops = 200;
            opts.keys = 3;
            opts.info_rate = 0.2;
            let a = generate(&opts).unwrap();
            let b = generate(&opts).unwrap();
            assert_eq!(a, b, "{model}: same seed, same history");
            let ops = a.pair().unwrap();
            assert_eq!(ops.ops.len() + ops.failed.len(), 200, "{model}");
            for (i, e) in a.events.iter().enumerate() {
                assert_eq!(e.index, i as u64);
            }
        }
    }

    #[test]
    fn info_processes_move_to_new_numbers() {
        let mut opts = GenOptions::new("register", 3);
        opts.ops = 300;
        opts.info_rate = 0.3;
        let h = generate(&opts).unwrap();
        // pairing rejects a process that invokes twice, so pairing at all is the check;
        // and some process numbers must be >= concurrency.
        h.pair().unwrap();
        assert!(h
            .events
            .iter()
            .any(|e| matches!(e.process, Process::Client(p) if p >= opts.concurrency as u64)));
    }

    #[test]
    fn unique_values_are_unique() {
        let mut opts = GenOptions::new("cas-register", 11);
        opts.ops = 500;
        opts.values = Values::Unique;
        let h = generate(&opts).unwrap();
        let mut written: Vec<Value> = Vec::new();
        for e in &h.events {
            if e.kind == EventType::Invoke {
                match e.f.as_str() {
                    "write" => written.push(e.value.clone()),
                    "cas" => written.push(e.value[1].clone()),
                    _ => {}
                }
            }
        }
        let n = written.len();
        written.sort_by_key(|v| v.to_string());
        written.dedup();
        assert_eq!(written.len(), n);
    }

    #[test]
    fn jsonl_matches_generate() {
        let opts = GenOptions::new("kv-append", 5);
        let mut buf = Vec::new();
        let n = write_jsonl(&opts, &mut buf).unwrap();
        let h = generate(&opts).unwrap();
        assert_eq!(n as usize, h.events.len());
        let read = crate::formats::read_jsonl_until_error(buf.as_slice(), "generated");
        assert!(read.error.is_none(), "{:?}", read.error);
        let parsed: Vec<Event> = read
            .history
            .events
            .into_iter()
            .map(|e| Event { line: None, ..e })
            .collect();
        assert_eq!(parsed, h.events);
    }
}
