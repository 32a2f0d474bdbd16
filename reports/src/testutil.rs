//! Deterministic sample runs for this crate's tests and the browser test: a seeded
//! register history with faults, and the same history with a stale read that makes one
//! key non-linearizable, with the witness a checker would report; and a small
//! list-append history with a G-single and a G1c cycle, checked by the Elle-style
//! checker.
//!
//! Not part of the public API (hidden from the docs); it lives in the library only so
//! the integration tests can share it.

use crate::results::{CheckerResult, Convergence, NodeState, ReplicaCount, Results, Verdict};
use serde_json::{json, Value};
use splitbrain_checker::history::{Event, EventType, History, Key, PairedHistory, Process};
use splitbrain_checker::linear;
use splitbrain_checker::model::ModelKind;
use std::collections::BTreeMap;

/// A small deterministic generator (SplitMix64), so tests need no RNG dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A register history over keys `k0..k2` by `concurrency` client threads, with a
/// partition, a kill and a clock fault. Reads return the value at their completion, so
/// the history is linearizable. Some operations fail, some end `info`.
pub fn register_history(seed: u64, ops: usize, concurrency: u64) -> History {
    let mut rng = Rng(seed);
    let mut events: Vec<Event> = Vec::new();
    let mut state: BTreeMap<String, i64> = BTreeMap::new();
    // thread -> (current process, time of next event, open invocation)
    struct Thread {
        process: u64,
        next: u64,
        open: Option<(String, String, Value)>,
    }
    let mut threads: Vec<Thread> = (0..concurrency)
        .map(|t| Thread {
            process: t,
            next: 1_000_000 + t * 137_000,
            open: None,
        })
        .collect();
    let total_ns = ops as u64 * 2_000_000 / concurrency.max(1) + 10_000_000;
    let nemesis = [
        (
            total_ns * 2 / 10,
            "start-partition",
            json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}),
        ),
        (total_ns * 4 / 10, "stop-partition", Value::Null),
        (total_ns * 55 / 100, "kill", json!(["n2"])),
        (total_ns * 7 / 10, "restart", json!(["n2"])),
        (total_ns * 8 / 10, "clock-bump", json!({"n3": 250})),
    ];
    let mut nemesis_at = 0;
    let mut invoked = 0;
    let mut counter = 0i64;
    while let Some(t) = (0..threads.len()).min_by_key(|&i| (threads[i].next, i)) {
        let now = threads[t].next;
        while nemesis_at < nemesis.len() && nemesis[nemesis_at].0 <= now {
            let (time, f, value) = &nemesis[nemesis_at];
            events.push(Event {
                index: events.len() as u64,
                time: *time,
                process: Process::Nemesis,
                kind: EventType::Info,
                f: f.to_string(),
                key: None,
                value: value.clone(),
                node: None,
                error: None,
                line: None,
                extra: Default::default(),
            });
            nemesis_at += 1;
        }
        let in_partition = now >= nemesis[0].0 && now < nemesis[1].0;
        let th = &mut threads[t];
        let node = format!("n{}", 1 + th.process % 3);
        match th.open.take() {
            None => {
                if invoked >= ops {
                    th.next = u64::MAX;
                    if threads.iter().all(|t| t.next == u64::MAX) {
                        break;
                    }
                    continue;
                }
                invoked += 1;
                let key = format!("k{}", rng.below(3));
                let (f, value) = if rng.below(2) == 0 {
                    ("read", Value::Null)
                } else {
                    counter += 1;
                    ("write", json!(counter))
                };
                events.push(Event {
                    index: events.len() as u64,
                    time: now,
                    process: Process::Client(th.process),
                    kind: EventType::Invoke,
                    f: f.into(),
                    key: Some(Key::Str(key.clone())),
                    value: value.clone(),
                    node: Some(node),
                    error: None,
                    line: None,
                    extra: Default::default(),
                });
                th.open = Some((f.into(), key, value));
                let slow = if in_partition { 40_000_000 } else { 0 };
                th.next = now + 300_000 + rng.below(3_000_000) + rng.below(slow + 1);
            }
            Some((f, key, value)) => {
                let roll = rng.below(100);
                let (kind, out, error) = if in_partition && roll < 30 {
                    (EventType::Info, value.clone(), Some("timeout".to_string()))
                } else if roll < 4 {
                    (
                        EventType::Fail,
                        value.clone(),
                        Some("not-leader".to_string()),
                    )
                } else if roll < 6 {
                    (
                        EventType::Info,
                        value.clone(),
                        Some("connection reset".to_string()),
                    )
                } else if f == "write" {
                    if let Some(v) = value.as_i64() {
                        state.insert(key.clone(), v);
                    }
                    (EventType::Ok, value.clone(), None)
                } else {
                    let v = state.get(&key).map_or(Value::Null, |v| json!(v));
                    (EventType::Ok, v, None)
                };
                events.push(Event {
                    index: events.len() as u64,
                    time: now,
                    process: Process::Client(th.process),
                    kind,
                    f,
                    key: Some(Key::Str(key)),
                    value: out,
                    node: None,
                    error,
                    line: None,
                    extra: Default::default(),
                });
                if kind == EventType::Info {
                    th.process += concurrency;
                }
                th.next = now + 100_000 + rng.below(1_500_000);
            }
        }
    }
    History::new(events)
}

fn base_results(name: &str, history: &PairedHistory) -> Results {
    let mut r = Results::new(name, "2026-11-26T15:00:00Z", history);
    r.duration_s = 12.5;
    r.seed = Some(42);
    r.reproduce = Some(format!(
        "splitbrain test --name {name} --workload register --nemesis partition,kill,clock --seed 42"
    ));
    r.config = json!({"name": name, "workload": "register", "nemesis": ["partition", "kill", "clock"], "nodes": 3, "concurrency": 5, "seed": 42});
    r.node_logs = vec![
        "nodes/n1/node.log".into(),
        "nodes/n2/node.log".into(),
        "nodes/n3/node.log".into(),
    ];
    r.convergence = Some(Convergence {
        verdict: Verdict::Valid,
        nodes: (1..=3)
            .map(|i| NodeState {
                name: format!("n{i}"),
                applied_index: Some(812),
                digest: Some("9f2c4e01".into()),
                history: None,
                last_index: Some(812),
                reachable: true,
            })
            .collect(),
        replicas_per_entry: vec![ReplicaCount {
            from_index: 1,
            to_index: 812,
            term: 4,
            replicas: 3,
        }],
        explanation: "all 3 nodes applied the same 812 entries".into(),
    });
    r
}

/// A valid run over [`register_history`].
pub fn valid_results() -> (Results, PairedHistory) {
    let history = PairedHistory::new(register_history(7, 600, 5));
    let mut r = base_results("register-valid", &history);
    r.checkers = vec![CheckerResult {
        name: "convergence".into(),
        verdict: Verdict::Valid,
        summary: "all nodes converged".into(),
    }];
    attach_linearizability(&mut r, &history);
    (r, history)
}

/// [`register_history`] plus a stale read on `k1` (it returns the value before the last
/// completed write), and the witness for it. `hostile` puts markup into a value.
pub fn invalid_results_with(hostile: Option<&str>) -> (Results, PairedHistory) {
    let mut history = register_history(11, 400, 5);
    let end = history.events.last().map_or(0, |e| e.time);
    let key = Key::Str("k1".into());
    let push = |h: &mut History, process: u64, kind: EventType, f: &str, value: Value, dt: u64| {
        let index = h.events.len() as u64;
        h.events.push(Event {
            index,
            time: end + dt,
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: Some(key.clone()),
            value,
            node: Some("n3".into()),
            error: None,
            line: None,
            extra: Default::default(),
        });
    };
    // New processes, so the appended operations never clash with open ones.
    let (a, b, c) = (900, 901, 902);
    let old = hostile.map_or(json!(1001), |s| json!(s));
    push(
        &mut history,
        a,
        EventType::Invoke,
        "write",
        old.clone(),
        1_000_000,
    );
    push(
        &mut history,
        a,
        EventType::Ok,
        "write",
        old.clone(),
        2_000_000,
    );
    push(
        &mut history,
        b,
        EventType::Invoke,
        "write",
        json!(1002),
        3_000_000,
    );
    push(
        &mut history,
        c,
        EventType::Invoke,
        "read",
        Value::Null,
        3_500_000,
    );
    push(
        &mut history,
        b,
        EventType::Ok,
        "write",
        json!(1002),
        4_000_000,
    );
    push(
        &mut history,
        c,
        EventType::Ok,
        "read",
        old.clone(),
        9_000_000,
    );
    push(
        &mut history,
        a,
        EventType::Invoke,
        "read",
        Value::Null,
        9_500_000,
    );
    push(
        &mut history,
        a,
        EventType::Ok,
        "read",
        old.clone(),
        10_000_000,
    );

    let history = PairedHistory::new(history);
    let mut r = base_results("register-stale-read", &history);
    r.checkers = vec![CheckerResult {
        name: "convergence".into(),
        verdict: Verdict::Valid,
        summary: "all nodes converged".into(),
    }];
    attach_linearizability(&mut r, &history);
    (r, history)
}

/// Runs the real linearizability checker (register model) on `history` and records its
/// result and checker entry in `r`.
pub fn attach_linearizability(r: &mut Results, history: &PairedHistory) {
    let ops = match history.operations() {
        Ok(ops) => ops,
        Err(e) => {
            r.notes.push(format!("could not pair the history: {e}"));
            return;
        }
    };
    match linear::check(
        &ops,
        ModelKind::Register,
        None,
        &linear::CheckOptions::default(),
    ) {
        Ok(result) => r.set_linearizability(&result),
        Err(e) => r
            .notes
            .push(format!("the checker refused the history: {e}")),
    }
    r.settle_verdict();
}

/// [`invalid_results_with`] without hostile values.
pub fn invalid_results() -> (Results, PairedHistory) {
    invalid_results_with(None)
}

/// A list-append history of five transactions with two anomalies, and the list-append
/// checker's result for it: T1 sees T0's append to `x` but not its append to `y`
/// (G-single: T0's writes are not atomic to T1), and T2 and T3 each read the other's
/// append (G1c). `hostile` goes into a key name.
pub fn list_append_results_with(hostile: Option<&str>) -> (Results, PairedHistory) {
    let y = hostile.unwrap_or("y");
    let txns: [(u64, Value, Value); 5] = [
        (
            0,
            json!([["append", "x", 1], ["append", y, 1]]),
            json!([["append", "x", 1], ["append", y, 1]]),
        ),
        (
            1,
            json!([["r", "x", null], ["r", y, null]]),
            json!([["r", "x", [1]], ["r", y, null]]),
        ),
        (
            2,
            json!([["append", "z", 1], ["r", "w", null]]),
            json!([["append", "z", 1], ["r", "w", [1]]]),
        ),
        (
            3,
            json!([["append", "w", 1], ["r", "z", null]]),
            json!([["append", "w", 1], ["r", "z", [1]]]),
        ),
        (
            4,
            json!([["r", "x", null], ["r", y, null]]),
            json!([["r", "x", [1]], ["r", y, [1]]]),
        ),
    ];
    let mut events = Vec::new();
    let mut push = |process: u64, kind: EventType, value: Value| {
        let index = events.len() as u64;
        events.push(Event {
            index,
            time: (index + 1) * 1_000_000,
            process: Process::Client(process),
            kind,
            f: "txn".into(),
            key: None,
            value,
            node: None,
            error: None,
            line: None,
            extra: Default::default(),
        });
    };
    // T0 and T1 overlap, as do T2 and T3; T4 runs last.
    for pair in [[0, 1], [2, 3]] {
        for &i in &pair {
            push(txns[i].0, EventType::Invoke, txns[i].1.clone());
        }
        for &i in &pair {
            push(txns[i].0, EventType::Ok, txns[i].2.clone());
        }
    }
    push(txns[4].0, EventType::Invoke, txns[4].1.clone());
    push(txns[4].0, EventType::Ok, txns[4].2.clone());
    let history = PairedHistory::new(History::new(events));
    let mut r = base_results("list-append-anomalies", &history);
    r.reproduce =
        Some("splitbrain test --workload list-append --bug non-atomic-txn --seed 42".into());
    r.config["workload"] = json!("list-append");
    match history.operations() {
        Ok(ops) => match splitbrain_checker::elle::check_list_append(&ops) {
            Ok(mut result) => {
                // A measured time would make the fixture differ from run to run (and
                // serde_json does not round-trip every f64 exactly).
                result.elapsed_ms = 0.25;
                r.set_list_append(&result)
            }
            Err(e) => r
                .notes
                .push(format!("the checker refused the history: {e}")),
        },
        Err(e) => r.notes.push(format!("could not pair the history: {e}")),
    }
    (r, history)
}

/// [`list_append_results_with`] without hostile values.
pub fn list_append_results() -> (Results, PairedHistory) {
    list_append_results_with(None)
}
