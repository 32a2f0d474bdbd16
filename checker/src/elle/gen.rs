//! A seeded generator of list-append histories, for tests and the benchmark.
//!
//! `concurrency` client processes run transactions of 1..=`max_mops` micro-operations
//! (appends of fresh values, and reads) against an in-memory store of lists. Each
//! transaction is invoked, executes atomically at a random later moment, and then
//! completes — so transactions overlap in time, yet the history is strict serializable
//! by construction (the serial order is the order of execution, which respects real
//! time). With `fail_rate` a transaction completes `fail` without executing; with
//! `info_rate` it completes `info`, having executed or not (half each), and its process
//! continues under a new number, as Jepsen does.
//!
//! As in Elle's generator, only `active_keys` keys are in play at once, and a key retires
//! after `max_appends_per_key` appends, so lists stay short and reads stay cheap.
//!
//! One fault can be switched on for tests and benchmarks: with `stale_read_rate`, a read
//! returns a strict prefix of the list (an old snapshot), which breaks serializability.
//! With `rw_register`, the same store serves register transactions: a write appends
//! its value to the key's list of versions and a read returns the last one (a stale
//! read, an earlier one or nil).
//! Everything derives from `seed` (ChaCha8).

use crate::history::{Event, EventType, History, Process};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What to generate.
#[derive(Debug, Clone)]
pub struct ListAppendOptions {
    pub seed: u64,
    /// Transactions to invoke.
    pub txns: usize,
    /// Client processes running at once (at least 1).
    pub concurrency: usize,
    /// Keys in play at once.
    pub active_keys: usize,
    /// A key retires after this many appends.
    pub max_appends_per_key: usize,
    /// Micro-operations per transaction: 1..=max_mops.
    pub max_mops: usize,
    /// Probability that a micro-operation is a read.
    pub read_ratio: f64,
    /// Probability that a transaction completes `info`.
    pub info_rate: f64,
    /// Probability that a transaction completes `fail` (without executing).
    pub fail_rate: f64,
    /// Keys as strings ("k12") instead of integers.
    pub string_keys: bool,
    /// Fault: probability that a read of a non-empty list returns a strict prefix (for
    /// rw-register: an earlier version, or nil).
    pub stale_read_rate: f64,
    /// Generate rw-register transactions instead: `["w", k, v]` of fresh values, and
    /// `["r", k, v]` returning the last value written (nil before any).
    pub rw_register: bool,
}

impl Default for ListAppendOptions {
    fn default() -> Self {
        ListAppendOptions {
            seed: 0,
            txns: 1000,
            concurrency: 5,
            active_keys: 5,
            max_appends_per_key: 32,
            max_mops: 4,
            read_ratio: 0.5,
            info_rate: 0.0,
            fail_rate: 0.0,
            string_keys: false,
            stale_read_rate: 0.0,
            rw_register: false,
        }
    }
}

/// One planned micro-operation.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Append(u64, u64),
    Read(u64),
}

/// What a client slot is doing.
enum Slot {
    Idle,
    /// Invoked; `result` is the completion value once it has executed.
    Running {
        plan: Vec<Plan>,
        result: Option<Value>,
    },
}

/// Generates a list-append history (see the module documentation).
pub fn generate(options: &ListAppendOptions) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let concurrency = options.concurrency.max(1);
    let mut processes: Vec<u64> = (0..concurrency as u64).collect();
    let mut slots: Vec<Slot> = (0..concurrency).map(|_| Slot::Idle).collect();
    let mut store: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut active: Vec<u64> = (0..options.active_keys.max(1) as u64).collect();
    let mut next_key = active.len() as u64;
    let mut appends: BTreeMap<u64, usize> = BTreeMap::new();
    let mut next_value: u64 = 1;
    let mut started = 0;
    let mut running = 0;
    let mut events: Vec<Event> = Vec::with_capacity(options.txns * 2);
    let key_json = |k: u64| {
        if options.string_keys {
            json!(format!("k{k}"))
        } else {
            json!(k)
        }
    };
    let write_f = if options.rw_register { "w" } else { "append" };
    let emit = |events: &mut Vec<Event>, p: u64, kind: EventType, value: Value| {
        let index = events.len() as u64;
        events.push(Event {
            index,
            time: index * 1000,
            process: Process::Client(p),
            kind,
            f: "txn".into(),
            key: None,
            value,
            node: None,
            error: (kind == EventType::Info).then(|| "timeout".to_string()),
            line: None,
            extra: Default::default(),
        });
    };
    while started < options.txns || running > 0 {
        let s = rng.gen_range(0..concurrency);
        match &mut slots[s] {
            Slot::Idle => {
                if started == options.txns {
                    continue;
                }
                let n = rng.gen_range(1..=options.max_mops.max(1));
                let mut plan = Vec::with_capacity(n);
                for _ in 0..n {
                    let slot = rng.gen_range(0..active.len());
                    let key = active[slot];
                    if rng.gen_bool(options.read_ratio.clamp(0.0, 1.0)) {
                        plan.push(Plan::Read(key));
                    } else {
                        plan.push(Plan::Append(key, next_value));
                        next_value += 1;
                        let count = appends.entry(key).or_default();
                        *count += 1;
                        if *count >= options.max_appends_per_key.max(1) {
                            active[slot] = next_key;
                            next_key += 1;
                        }
                    }
                }
                let value = Value::Array(
                    plan.iter()
                        .map(|m| match *m {
                            Plan::Append(k, v) => json!([write_f, key_json(k), v]),
                            Plan::Read(k) => json!(["r", key_json(k), null]),
                        })
                        .collect(),
                );
                emit(&mut events, processes[s], EventType::Invoke, value);
                slots[s] = Slot::Running { plan, result: None };
                started += 1;
                running += 1;
            }
            Slot::Running { plan, result } => {
                let roll: f64 = rng.gen();
                let invocation = |plan: &[Plan]| {
                    Value::Array(
                        plan.iter()
                            .map(|m| match *m {
                                Plan::Append(k, v) => json!([write_f, key_json(k), v]),
                                Plan::Read(k) => json!(["r", key_json(k), null]),
                            })
                            .collect(),
                    )
                };
                let done = match result {
                    None if roll < options.fail_rate => {
                        emit(&mut events, processes[s], EventType::Fail, invocation(plan));
                        true
                    }
                    None if roll < options.fail_rate + options.info_rate / 2.0 => {
                        // Timed out without ever executing.
                        emit(&mut events, processes[s], EventType::Info, invocation(plan));
                        processes[s] += concurrency as u64;
                        true
                    }
                    None => {
                        *result = Some(execute(plan, &mut store, options, &mut rng, &key_json));
                        false
                    }
                    Some(_) if roll < options.info_rate / 2.0 => {
                        // Executed, but the client never heard back.
                        emit(&mut events, processes[s], EventType::Info, invocation(plan));
                        processes[s] += concurrency as u64;
                        true
                    }
                    Some(value) => {
                        let value = std::mem::take(value);
                        emit(&mut events, processes[s], EventType::Ok, value);
                        true
                    }
                };
                if done {
                    slots[s] = Slot::Idle;
                    running -= 1;
                }
            }
        }
    }
    History::new(events)
}

/// Runs a transaction atomically against the store; returns its completion value.
fn execute(
    plan: &[Plan],
    store: &mut BTreeMap<u64, Vec<u64>>,
    options: &ListAppendOptions,
    rng: &mut ChaCha8Rng,
    key_json: &impl Fn(u64) -> Value,
) -> Value {
    let mut out = Vec::with_capacity(plan.len());
    for m in plan {
        match *m {
            Plan::Append(k, v) => {
                store.entry(k).or_default().push(v);
                let f = if options.rw_register { "w" } else { "append" };
                out.push(json!([f, key_json(k), v]));
            }
            Plan::Read(k) => {
                let list = store.get(&k).map(Vec::as_slice).unwrap_or(&[]);
                let mut seen = list.len();
                if seen > 0 && rng.gen_bool(options.stale_read_rate.clamp(0.0, 1.0)) {
                    seen = rng.gen_range(0..seen);
                }
                if options.rw_register {
                    let value = seen.checked_sub(1).map(|i| list[i]);
                    out.push(json!(["r", key_json(k), value]));
                } else {
                    out.push(json!(["r", key_json(k), &list[..seen]]));
                }
            }
        }
    }
    Value::Array(out)
}
