//! Tests of the linearizability checker (`checker::linear`) on hand-built histories, on
//! generated ones, and of its witnesses and budgets.

use serde_json::{json, Value};
use splitbrain_checker::gen::{self, GenOptions, Values};
use splitbrain_checker::linear::{
    check, CheckOptions, LinearizabilityResult, ProgressFn, Verdict, Witness, STOPPED_AFTER_INVALID,
};
use splitbrain_checker::model::ModelKind;
use splitbrain_checker::{Event, EventType, History, Key, Operations, Outcome, Process};
use std::time::Duration;

/// Builds a history event by event; indices are assigned in call order.
#[derive(Default)]
struct Builder {
    events: Vec<Event>,
    key: Option<Key>,
}

impl Builder {
    fn key(mut self, k: &str) -> Self {
        self.key = Some(Key::from(k));
        self
    }
    fn push(mut self, p: u64, kind: EventType, f: &str, value: Value) -> Self {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time: index * 100,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: self.key.clone(),
            value,
            node: None,
            error: None,
            line: None,
            extra: Default::default(),
        });
        self
    }
    fn inv(self, p: u64, f: &str, v: Value) -> Self {
        self.push(p, EventType::Invoke, f, v)
    }
    fn ok(self, p: u64, f: &str, v: Value) -> Self {
        self.push(p, EventType::Ok, f, v)
    }
    fn info(self, p: u64, f: &str, v: Value) -> Self {
        self.push(p, EventType::Info, f, v)
    }
    fn fail(self, p: u64, f: &str, v: Value) -> Self {
        self.push(p, EventType::Fail, f, v)
    }
    /// A whole operation with nothing concurrent.
    fn op(self, p: u64, f: &str, input: Value, output: Value) -> Self {
        self.inv(p, f, input).ok(p, f, output)
    }
    fn ops(self) -> Operations {
        History::new(self.events)
            .pair()
            .expect("test histories pair")
    }
}

fn run(ops: &Operations, model: ModelKind, initial: Value) -> LinearizabilityResult {
    let r = check(ops, model, Some(&initial), &CheckOptions::default()).expect("ops fit the model");
    if let Some(w) = r.keys.iter().find_map(|k| k.witness.as_ref()) {
        assert_witness_replays(ops, model, &initial, w);
    }
    r
}

/// Replays a witness's prefix through the sequential model: every step must be legal,
/// produce the state the witness claims, and respect real-time order; the stuck operation
/// must be illegal in every reachable state the witness lists.
fn assert_witness_replays(ops: &Operations, model: ModelKind, initial: &Value, w: &Witness) {
    let mut state = model.initial_state(Some(initial)).unwrap();
    let mut placed = vec![false; ops.ops.len()];
    for (i, step) in w.prefix.iter().enumerate() {
        let op = &ops.ops[step.op];
        assert_eq!(op.key, w.key, "step {i} is on another key");
        assert!(!placed[op.id], "op {} linearized twice", op.id);
        for other in &ops.ops {
            if other.key == w.key && other.outcome == Outcome::Ok && other.precedes(op) {
                assert!(
                    placed[other.id],
                    "step {i}: op {} precedes op {} in real time but is not linearized before it",
                    other.id, op.id
                );
            }
        }
        let parsed = model.parse_op(op).unwrap();
        state = model
            .step(&state, &parsed)
            .unwrap_or_else(|| panic!("step {i}: {op} is illegal in state {state}"));
        assert_eq!(state, step.state, "step {i}: state after {op}");
        placed[op.id] = true;
    }
    assert!(!placed[w.stuck.id], "the stuck op is in the prefix");
    assert_eq!(w.stuck.outcome, Outcome::Ok);
    if !w.prefix.is_empty() {
        assert_eq!(w.reachable_states.first(), Some(&state));
    }
    let stuck = model.parse_op(&w.stuck).unwrap();
    for s in &w.reachable_states {
        assert!(
            model.step(s, &stuck).is_none(),
            "stuck op legal in reachable state {s}"
        );
    }
    assert!(!w.needed.is_empty() && !w.explanation.is_empty());
}

fn verdict(ops: &Operations, model: ModelKind, initial: Value) -> Verdict {
    run(ops, model, initial).verdict
}

#[test]
fn register_sequential_reads_see_writes() {
    let ops = Builder::default()
        .op(0, "write", json!(1), json!(1))
        .op(1, "read", Value::Null, json!(1))
        .op(0, "write", json!(2), json!(2))
        .op(1, "read", Value::Null, json!(2))
        .ops();
    assert_eq!(verdict(&ops, ModelKind::Register, json!(0)), Verdict::Valid);
}

#[test]
fn classic_stale_read_is_invalid_with_a_witness() {
    let ops = Builder::default()
        .op(0, "write", json!(1), json!(1))
        .op(1, "write", json!(2), json!(2))
        .op(2, "read", Value::Null, json!(1))
        .ops();
    let r = run(&ops, ModelKind::Register, json!(0));
    assert_eq!(r.verdict, Verdict::Invalid);
    let k = &r.keys[0];
    let w = k.witness.as_ref().expect("invalid has a witness");
    assert_eq!(w.stuck.id, 2);
    assert_eq!(
        w.prefix.iter().map(|s| s.op).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(w.reachable_states, vec![json!(2)]);
    assert!(
        w.needed.contains("read returned 1") && w.needed.contains('2'),
        "{}",
        w.needed
    );
}

#[test]
fn concurrent_read_may_see_either_value() {
    // write 2 overlaps both reads: one sees 1, the other 2, in either order of reads
    let ops = Builder::default()
        .op(0, "write", json!(1), json!(1))
        .inv(0, "write", json!(2))
        .inv(1, "read", Value::Null)
        .inv(2, "read", Value::Null)
        .ok(2, "read", json!(2))
        .ok(1, "read", json!(1))
        .ok(0, "write", json!(2))
        .ops();
    assert_eq!(verdict(&ops, ModelKind::Register, json!(0)), Verdict::Valid);
    // but once a read saw 2 and completed, a later read cannot see 1
    let ops = Builder::default()
        .op(0, "write", json!(1), json!(1))
        .inv(0, "write", json!(2))
        .op(2, "read", Value::Null, json!(2))
        .op(1, "read", Value::Null, json!(1))
        .ok(0, "write", json!(2))
        .ops();
    let r = run(&ops, ModelKind::Register, json!(0));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.keys[0].witness.as_ref().unwrap().stuck.id, 3);
}

#[test]
fn info_write_may_take_effect_late() {
    // the write times out, yet its value shows up much later
    let ops = Builder::default()
        .inv(0, "write", json!(5))
        .info(0, "write", json!(5))
        .op(1, "read", Value::Null, json!(0))
        .op(1, "read", Value::Null, json!(0))
        .op(1, "read", Value::Null, json!(5))
        .ops();
    assert_eq!(verdict(&ops, ModelKind::Register, json!(0)), Verdict::Valid);
}

#[test]
fn info_write_may_never_take_effect() {
    let ops = Builder::default()
        .inv(0, "write", json!(5))
        .info(0, "write", json!(5))
        .op(1, "write", json!(1), json!(1))
        .op(1, "read", Value::Null, json!(1))
        .ops();
    assert_eq!(verdict(&ops, ModelKind::Register, json!(0)), Verdict::Valid);
}

#[test]
fn info_write_cannot_take_effect_before_its_invocation() {
    let ops = Builder::default()
        .op(1, "read", Value::Null, json!(5))
        .inv(0, "write", json!(5))
        .info(0, "write", json!(5))
        .ops();
    let r = run(&ops, ModelKind::Register, json!(0));
    assert_eq!(r.verdict, Verdict::Invalid);
    let w = r.keys[0].witness.as_ref().unwrap();
    assert_eq!(w.stuck.id, 0);
}

#[test]
fn info_and_failed_reads_are_ignored() {
    let ops = Builder::default()
        .inv(0, "read", Value::Null)
        .info(0, "read", json!(99))
        .inv(1, "read", Value::Null)
        .fail(1, "read", json!(98))
        .op(2, "read", Value::Null, json!(0))
        .ops();
    let r = run(&ops, ModelKind::CasRegister, json!(0));
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(
        (r.keys[0].operations, r.keys[0].ok, r.keys[0].info),
        (2, 1, 1)
    );
}

#[test]
fn failed_write_never_happened() {
    let ops = Builder::default()
        .inv(0, "write", json!(5))
        .fail(0, "write", json!(5))
        .op(1, "read", Value::Null, json!(5))
        .ops();
    assert_eq!(
        verdict(&ops, ModelKind::Register, json!(0)),
        Verdict::Invalid
    );
}

#[test]
fn cas_chain() {
    let chain = Builder::default()
        .op(0, "cas", json!([0, 1]), json!([0, 1]))
        .op(1, "cas", json!([1, 2]), json!([1, 2]))
        .op(2, "cas", json!([2, 3]), json!([2, 3]))
        .op(0, "read", Value::Null, json!(3))
        .ops();
    assert_eq!(
        verdict(&chain, ModelKind::CasRegister, json!(0)),
        Verdict::Valid
    );
    // two cas from 0 cannot both succeed
    let broken = Builder::default()
        .op(0, "cas", json!([0, 1]), json!([0, 1]))
        .op(1, "cas", json!([0, 2]), json!([0, 2]))
        .ops();
    let r = run(&broken, ModelKind::CasRegister, json!(0));
    assert_eq!(r.verdict, Verdict::Invalid);
    let w = r.keys[0].witness.as_ref().unwrap();
    assert_eq!(w.stuck.id, 1);
    assert!(w.needed.contains("cas expected 0"), "{}", w.needed);
    // concurrent cas from 0: exactly one may succeed, the other must have failed
    let concurrent = Builder::default()
        .inv(0, "cas", json!([0, 1]))
        .inv(1, "cas", json!([0, 2]))
        .ok(0, "cas", json!([0, 1]))
        .fail(1, "cas", json!([0, 2]))
        .op(2, "read", Value::Null, json!(1))
        .ops();
    assert_eq!(
        verdict(&concurrent, ModelKind::CasRegister, json!(0)),
        Verdict::Valid
    );
}

#[test]
fn cas_register_null_is_absent() {
    let ops = Builder::default()
        .op(0, "read", Value::Null, Value::Null)
        .op(0, "write", json!(3), json!(3))
        .op(1, "read", Value::Null, Value::Null)
        .ops();
    let r = check(&ops, ModelKind::CasRegister, None, &CheckOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
}

#[test]
fn null_read_of_a_never_null_register_observed_nothing() {
    // Knossos: initial 0, nothing writes null, so `read nil` returned no value
    let ops = Builder::default()
        .op(0, "write", json!(3), json!(3))
        .op(1, "read", Value::Null, Value::Null)
        .op(1, "read", Value::Null, json!(3))
        .ops();
    let r = run(&ops, ModelKind::CasRegister, json!(0));
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(r.keys[0].operations, 3);
    // but once null can be written, a null read means the register held null
    let ops = Builder::default()
        .op(0, "write", Value::Null, Value::Null)
        .op(0, "write", json!(3), json!(3))
        .op(1, "read", Value::Null, Value::Null)
        .ops();
    assert_eq!(
        verdict(&ops, ModelKind::CasRegister, json!(0)),
        Verdict::Invalid
    );
}

#[test]
fn mutex_cannot_be_held_twice() {
    let good = Builder::default()
        .op(0, "acquire", Value::Null, Value::Null)
        .inv(0, "release", Value::Null)
        .inv(1, "acquire", Value::Null)
        .ok(1, "acquire", Value::Null)
        .ok(0, "release", Value::Null)
        .ops();
    assert_eq!(
        verdict(&good, ModelKind::Mutex, json!("free")),
        Verdict::Valid
    );
    let bad = Builder::default()
        .op(0, "acquire", Value::Null, Value::Null)
        .op(1, "acquire", Value::Null, Value::Null)
        .ops();
    let r = run(&bad, ModelKind::Mutex, json!("free"));
    assert_eq!(r.verdict, Verdict::Invalid);
    let w = r.keys[0].witness.as_ref().unwrap();
    assert_eq!(w.reachable_states, vec![json!("held")]);
    assert!(
        w.needed.contains("acquire needs the lock free"),
        "{}",
        w.needed
    );
}

#[test]
fn set_loses_no_acknowledged_element() {
    let good = Builder::default()
        .op(0, "add", json!(1), json!(1))
        .inv(0, "add", json!(2))
        .op(1, "read", Value::Null, json!([1]))
        .op(1, "read", Value::Null, json!([2, 1]))
        .ok(0, "add", json!(2))
        .ops();
    assert_eq!(verdict(&good, ModelKind::Set, json!([])), Verdict::Valid);
    let lost = Builder::default()
        .op(0, "add", json!(1), json!(1))
        .op(0, "add", json!(2), json!(2))
        .op(1, "read", Value::Null, json!([2]))
        .ops();
    let r = run(&lost, ModelKind::Set, json!([]));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.keys[0].witness.as_ref().unwrap().stuck.id, 2);
    // a read that un-sees an element is not caught by the pre-check, only the search
    let flicker = Builder::default()
        .inv(0, "add", json!(1))
        .op(1, "read", Value::Null, json!([1]))
        .op(1, "read", Value::Null, json!([]))
        .ok(0, "add", json!(1))
        .ops();
    let r = run(&flicker, ModelKind::Set, json!([]));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.keys[0].witness.as_ref().unwrap().prefix.len(), 2);
}

#[test]
fn multi_register_reads_are_atomic() {
    let init = json!({"x": 0, "y": 0});
    let good = Builder::default()
        .inv(0, "txn", json!([["write", "x", 1], ["write", "y", 1]]))
        .inv(1, "txn", json!([["read", "x", null], ["read", "y", null]]))
        .ok(1, "txn", json!([["read", "x", 0], ["read", "y", 0]]))
        .ok(0, "txn", json!([["write", "x", 1], ["write", "y", 1]]))
        .op(
            1,
            "txn",
            json!([["read", "x", null], ["read", "y", null]]),
            json!([["read", "x", 1], ["read", "y", 1]]),
        )
        .ops();
    assert_eq!(
        verdict(&good, ModelKind::MultiRegister, init.clone()),
        Verdict::Valid
    );
    // a torn read: x from after the transaction, y from before
    let torn = Builder::default()
        .inv(0, "txn", json!([["write", "x", 1], ["write", "y", 1]]))
        .inv(1, "txn", json!([["read", "x", null], ["read", "y", null]]))
        .ok(1, "txn", json!([["read", "x", 1], ["read", "y", 0]]))
        .ok(0, "txn", json!([["write", "x", 1], ["write", "y", 1]]))
        .ops();
    let r = run(&torn, ModelKind::MultiRegister, init);
    assert_eq!(r.verdict, Verdict::Invalid);
    let w = r.keys[0].witness.as_ref().unwrap();
    assert!(w.needed.contains("x = 1, y = 0"), "{}", w.needed);
    assert_eq!(w.key, None, "the multi-register is one partition");
}

#[test]
fn kv_append_per_key() {
    let good = Builder::default()
        .key("a")
        .op(0, "put", json!("x"), json!("x"))
        .op(0, "append", json!("y"), json!("y"))
        .key("b")
        .op(1, "append", json!("z"), json!("z"))
        .op(1, "get", Value::Null, json!("z"))
        .key("a")
        .op(1, "get", Value::Null, json!("xy"))
        .ops();
    let r = run(&good, ModelKind::KvAppend, json!(""));
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(r.keys.len(), 2);
    let bad = Builder::default()
        .key("a")
        .op(0, "append", json!("x"), json!("x"))
        .op(0, "append", json!("y"), json!("y"))
        .op(1, "get", Value::Null, json!("yx"))
        .ops();
    assert_eq!(
        verdict(&bad, ModelKind::KvAppend, json!("")),
        Verdict::Invalid
    );
}

#[test]
fn multi_key_invalid_key_does_not_hide_others() {
    let mut b = Builder::default();
    for k in ["k1", "k2", "k3", "k4"] {
        b = b
            .key(k)
            .op(0, "write", json!(1), json!(1))
            .op(1, "write", json!(2), json!(2));
        let read = if k == "k3" { 1 } else { 2 };
        b = b.op(2, "read", Value::Null, json!(read));
    }
    let ops = b.ops();
    let r = run(&ops, ModelKind::Register, json!(0));
    assert_eq!(r.verdict, Verdict::Invalid);
    let verdicts: Vec<(String, Verdict)> = r
        .keys
        .iter()
        .map(|k| (k.key.as_ref().unwrap().to_string(), k.verdict))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("k1".into(), Verdict::Valid),
            ("k2".into(), Verdict::Valid),
            ("k3".into(), Verdict::Invalid),
            ("k4".into(), Verdict::Valid)
        ]
    );
    assert_eq!(
        r.keys[2].witness.as_ref().unwrap().key,
        Some(Key::from("k3"))
    );
}

#[test]
fn impossible_read_is_refuted_before_searching() {
    // an ok cas keeps the unique-values fast path out; the version chains refute it
    let ops = Builder::default()
        .op(0, "cas", json!([0, 1]), json!([0, 1]))
        .op(1, "read", Value::Null, json!(7))
        .ops();
    let r = run(&ops, ModelKind::CasRegister, json!(0));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.keys[0].method, "version-chains");
    let w = r.keys[0].witness.as_ref().unwrap();
    assert_eq!(w.stuck.id, 1);
    assert!(w.needed.contains("read returned 7"), "{}", w.needed);
    assert!(w.explanation.contains("ever writes 7"), "{}", w.explanation);
}

/// Writes of 1, 2, 3 (repeating, so no fast path applies) that all overlap, followed by
/// two reads that no order of the writes explains: the search must try every subset of
/// the writes before it can say so.
fn hard_key(b: Builder, writes: u64) -> Builder {
    let mut b = b;
    for p in 0..writes {
        b = b.inv(p, "write", json!(p % 3 + 1));
    }
    for p in 0..writes {
        b = b.ok(p, "write", json!(p % 3 + 1));
    }
    b.op(0, "read", Value::Null, json!(1))
        .op(0, "read", Value::Null, json!(2))
}

#[test]
fn time_limit_gives_unknown_and_other_keys_are_still_decided() {
    let b = hard_key(Builder::default().key("hard"), 40);
    let b = b
        .key("good")
        .op(0, "write", json!(1), json!(1))
        .op(1, "read", Value::Null, json!(1));
    let b = b
        .key("bad")
        .op(0, "write", json!(1), json!(1))
        .op(1, "read", Value::Null, json!(0));
    let ops = b.ops();
    let opts = CheckOptions {
        time_limit: Some(Duration::from_millis(300)),
        threads: Some(2),
        ..CheckOptions::default()
    };
    let r = check(&ops, ModelKind::Register, Some(&json!(0)), &opts).unwrap();
    let by_key = |k: &str| r.keys.iter().find(|x| x.key == Some(Key::from(k))).unwrap();
    assert_eq!(by_key("good").verdict, Verdict::Valid);
    assert_eq!(by_key("bad").verdict, Verdict::Invalid);
    assert_eq!(by_key("hard").verdict, Verdict::Unknown);
    assert_eq!(by_key("hard").unknown_reason.as_deref(), Some("time limit"));
    assert!(by_key("hard").explored > 0);
    assert_eq!(r.verdict, Verdict::Invalid, "invalid beats unknown");
}

#[test]
fn verdict_first_stops_the_other_keys_once_one_is_invalid() {
    // The hard key would take practically forever; the bad one decides the history, and
    // with no extra budget the hard one is stopped, visibly (never dropped). Two threads,
    // so the hard key's search is usually already running and must notice the stop.
    let b = hard_key(Builder::default().key("hard"), 40);
    let b = b
        .key("bad")
        .op(0, "write", json!(1), json!(1))
        .op(1, "read", Value::Null, json!(0));
    let ops = b.ops();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let opts = CheckOptions {
        // Only a safety net: a stop that did not work fails the test instead of hanging.
        time_limit: Some(Duration::from_secs(60)),
        threads: Some(2),
        after_invalid: Some(Duration::ZERO),
        progress: Some(ProgressFn(std::sync::Arc::new(move |k, done, total| {
            record
                .lock()
                .unwrap()
                .push((k.key.clone(), k.verdict, done, total));
        }))),
        ..CheckOptions::default()
    };
    let r = check(&ops, ModelKind::Register, Some(&json!(0)), &opts).unwrap();
    let by_key = |k: &str| r.keys.iter().find(|x| x.key == Some(Key::from(k))).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(by_key("bad").verdict, Verdict::Invalid);
    assert_eq!(by_key("hard").verdict, Verdict::Unknown);
    assert_eq!(
        by_key("hard").unknown_reason.as_deref(),
        Some(STOPPED_AFTER_INVALID)
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one progress call per key: {seen:?}");
    assert_eq!(seen.iter().map(|s| s.2).collect::<Vec<_>>(), vec![1, 2]);
    assert!(seen.iter().all(|s| s.3 == 2));
    // --all-keys: the same history with every key decided (here within a short limit).
    let opts = CheckOptions {
        time_limit: Some(Duration::from_millis(300)),
        threads: Some(2),
        ..CheckOptions::default()
    };
    let r = check(&ops, ModelKind::Register, Some(&json!(0)), &opts).unwrap();
    let by_key = |k: &str| r.keys.iter().find(|x| x.key == Some(Key::from(k))).unwrap();
    assert_eq!(by_key("hard").unknown_reason.as_deref(), Some("time limit"));
}

#[test]
fn memory_limit_gives_unknown_and_other_keys_are_still_decided() {
    let b = hard_key(Builder::default().key("hard"), 3000);
    let b = b
        .key("good")
        .op(0, "write", json!(1), json!(1))
        .op(1, "read", Value::Null, json!(1));
    let ops = b.ops();
    let opts = CheckOptions {
        memory_limit_bytes: 64 << 10,
        threads: Some(2),
        ..CheckOptions::default()
    };
    let r = check(&ops, ModelKind::Register, Some(&json!(0)), &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(r.keys[0].key, Some(Key::from("good")));
    assert_eq!(r.keys[0].verdict, Verdict::Valid);
    assert_eq!(r.keys[1].verdict, Verdict::Unknown);
    assert_eq!(r.keys[1].unknown_reason.as_deref(), Some("memory limit"));
}

#[test]
fn a_small_cache_changes_speed_not_verdicts() {
    for seed in 0..6 {
        let mut g = GenOptions::new("cas-register", seed);
        g.ops = 300;
        g.concurrency = 6;
        g.info_rate = 0.2;
        g.values = Values::Small(4);
        let h = gen::generate(&g).unwrap();
        let h = if seed % 2 == 1 {
            gen::stale_read(&h, seed).unwrap_or(h)
        } else {
            h
        };
        let ops = h.pair().unwrap();
        let init = gen::initial_value("cas-register").unwrap();
        let roomy = check(
            &ops,
            ModelKind::CasRegister,
            Some(&init),
            &CheckOptions::default(),
        )
        .unwrap();
        let tight = CheckOptions {
            memory_limit_bytes: 48 << 10,
            threads: Some(1),
            ..CheckOptions::default()
        };
        let tight = check(&ops, ModelKind::CasRegister, Some(&init), &tight).unwrap();
        assert_eq!(roomy.verdict, tight.verdict, "seed {seed}");
        assert_ne!(roomy.verdict, Verdict::Unknown, "seed {seed}");
    }
}

#[test]
fn generated_histories_are_valid_for_every_model() {
    for (m, model) in ModelKind::NAMES.iter().zip(ModelKind::ALL) {
        for seed in 0..5 {
            let mut g = GenOptions::new(m, seed);
            g.ops = 120;
            g.keys = 3;
            g.concurrency = 5;
            g.info_rate = 0.15;
            let h = gen::generate(&g).unwrap();
            let ops = h.pair().unwrap();
            let init = gen::initial_value(m).unwrap();
            let r = run(&ops, model, init);
            assert_eq!(
                r.verdict,
                Verdict::Valid,
                "{m} seed {seed}: {:?}",
                r.keys.iter().find_map(|k| k.witness.as_ref())
            );
        }
    }
}

#[test]
fn witnesses_of_random_histories_replay() {
    let mut invalid = 0;
    for (m, model) in ModelKind::NAMES.iter().zip(ModelKind::ALL) {
        for seed in 0..12 {
            let h = gen::random_history(m, 14, 4, 2, 3, seed).unwrap();
            let ops = h.pair().unwrap();
            let init = gen::initial_value(m).unwrap();
            let r = run(&ops, model, init.clone());
            invalid += usize::from(r.verdict == Verdict::Invalid);
            // deterministic, witness included
            let again = check(&ops, model, Some(&init), &CheckOptions::default()).unwrap();
            assert_eq!(
                serde_json::to_value(r.keys.iter().map(|k| &k.witness).collect::<Vec<_>>())
                    .unwrap(),
                serde_json::to_value(again.keys.iter().map(|k| &k.witness).collect::<Vec<_>>())
                    .unwrap()
            );
        }
    }
    assert!(
        invalid > 20,
        "random histories should mostly be invalid; got {invalid}"
    );
}

#[test]
fn ops_that_do_not_fit_the_model_are_errors_naming_the_op() {
    let ops = Builder::default().op(4, "cas", json!(5), json!(5)).ops();
    let err = check(&ops, ModelKind::CasRegister, None, &CheckOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("process 4") && text.contains("cas") && text.contains("event 0"),
        "{text}"
    );
    let ops = Builder::default()
        .op(
            1,
            "txn",
            json!([["read", "x"], 3]),
            json!([["read", "x"], 3]),
        )
        .ops();
    assert!(check(
        &ops,
        ModelKind::MultiRegister,
        None,
        &CheckOptions::default()
    )
    .is_err());
    let ops = Builder::default().op(1, "dance", json!(1), json!(1)).ops();
    assert!(check(&ops, ModelKind::Mutex, None, &CheckOptions::default()).is_err());
}

#[test]
fn verdicts_combine_and_serialize() {
    use Verdict::*;
    assert_eq!(Valid.combine(Unknown), Unknown);
    assert_eq!(Unknown.combine(Invalid), Invalid);
    assert_eq!(Valid.combine(Valid), Valid);
    assert_eq!(
        [Valid.exit_code(), Invalid.exit_code(), Unknown.exit_code()],
        [0, 1, 2]
    );
    assert_eq!(serde_json::to_value(Invalid).unwrap(), json!("invalid"));
    assert_eq!(Unknown.to_string(), "unknown");
    let empty = check(
        &Operations::default(),
        ModelKind::Register,
        None,
        &CheckOptions::default(),
    )
    .unwrap();
    assert_eq!(empty.verdict, Valid);
    assert!(empty.keys.is_empty());
}
