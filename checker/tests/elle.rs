//! Tests of the list-append (Elle-style) checker: one hand-built history per anomaly,
//! each found, named and drawn with the expected cycle; clean histories that must pass;
//! and a seeded property test: histories executed serially with concurrent invocations
//! must pass, and each perturbation of their reads must fail.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use splitbrain_checker::elle::gen::{self, ListAppendOptions};
use splitbrain_checker::elle::{
    check_list_append, check_list_append_with, ConsistencyModel, ElleError, ElleOptions, ElleResult,
};
use splitbrain_checker::formats::{read_history, Format};
use splitbrain_checker::{Event, EventType, Operations, Outcome, Process};

use crate::txn_history::{cycle, steps, H};

/// This file's checker on a built history.
trait Check {
    fn check(&self) -> ElleResult;
}

impl Check for H {
    fn check(&self) -> ElleResult {
        check_list_append(&self.ops()).expect("a well-formed list-append history")
    }
}

fn assert_only(result: &ElleResult, kinds: &[&str]) {
    assert_eq!(result.anomaly_types, kinds, "{:#?}", result.anomalies);
    assert!(!result.valid);
}

fn assert_clean(result: &ElleResult) {
    assert!(result.valid, "{:#?}", result.anomalies);
    assert!(result.anomalies.is_empty());
    assert!(result.not.is_empty());
    assert_eq!(
        result.strongest_model.as_deref(),
        Some("strict-serializable")
    );
}

// ---------------------------------------------------------------- clean histories

#[test]
fn serial_history_is_strict_serializable() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]))
        .txn(
            1,
            json!([["r", "x", [1]], ["append", "x", 2], ["r", "x", [1, 2]]]),
        )
        .txn(0, json!([["r", "x", [1, 2]], ["r", "y", null]]))
        .txn(
            2,
            json!([["append", "y", 3], ["append", "y", 4], ["r", "y", [3, 4]]]),
        );
    let r = h.check();
    assert_clean(&r);
    assert_eq!(r.txns, 4);
}

#[test]
fn concurrent_transactions_may_order_either_way() {
    // T0 and T1 overlap: T1 may serialize first, so T0 missing its append is fine.
    let mut h = H::default();
    h.invoke(0, json!([["r", "x", []], ["append", "y", 1]]))
        .invoke(1, json!([["append", "x", 2]]))
        .ok(1, json!([["append", "x", 2]]))
        .ok(0, json!([["r", "x", []], ["append", "y", 1]]))
        .txn(2, json!([["r", "x", [2]], ["r", "y", [1]]]));
    assert_clean(&h.check());
}

#[test]
fn indeterminate_and_failed_transactions_are_handled() {
    let mut h = H::default();
    // An info append that took effect, one that never did, and a failed one nobody saw.
    h.invoke(0, json!([["append", 1, 10]]))
        .info(0, json!([["append", 1, 10]]))
        .invoke(1, json!([["append", 1, 11]]))
        .info(1, json!([["append", 1, 11]]))
        .invoke(2, json!([["append", 1, 12]]))
        .fail(2, json!([["append", 1, 12]]))
        .txn(3, json!([["r", 1, [10]]]));
    let r = h.check();
    assert_clean(&r);
    assert_eq!((r.txns, r.failed_txns), (3, 1));
}

#[test]
fn an_indeterminate_transaction_precedes_nothing_on_its_process() {
    // Process 0 reuses its number after an info append (Jepsen would not); the append
    // may take effect after the process's next read, so that stale-looking read is fine.
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1]]))
        .info(0, json!([["append", "x", 1]]))
        .txn(0, json!([["r", "x", []]]))
        .txn(1, json!([["r", "x", [1]]]));
    assert_clean(&h.check());
}

#[test]
fn non_txn_operations_are_skipped() {
    let mut h = H::default();
    h.txn(0, json!([["append", 1, 1]]));
    h.events.push(Event {
        index: 2,
        time: 0,
        process: Process::Client(1),
        kind: EventType::Invoke,
        f: "read".into(),
        key: None,
        value: Value::Null,
        node: None,
        error: None,
        line: None,
        extra: Default::default(),
    });
    let r = h.check();
    assert_clean(&r);
    assert_eq!(r.skipped_ops, 1);
}

// ---------------------------------------------------------------- cycle anomalies

#[test]
fn g0_write_cycle() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .invoke(1, json!([["append", "x", 2], ["append", "y", 2]]))
        .ok(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(1, json!([["append", "x", 2], ["append", "y", 2]]))
        .txn(2, json!([["r", "x", [1, 2]], ["r", "y", [2, 1]]]));
    let r = h.check();
    assert_only(&r, &["G0"]);
    assert_eq!(cycle(&r, "G0"), steps(&[(0, "ww"), (1, "ww")]));
    assert_eq!(r.strongest_model, None);
    assert_eq!(r.not, ["read-uncommitted"]);
    assert_eq!(r.ruled_out.len(), 25);
    let a = &r.anomalies[0];
    assert!(
        a.explanation.contains("T0 -ww-> T1 -ww-> T0"),
        "{}",
        a.explanation
    );
    assert_eq!(
        a.cycle[0].reason,
        "T0 appended 1 to key x, and T1 appended 2 right after it"
    );
    assert_eq!(
        a.cycle[1].reason,
        "T1 appended 2 to key y, and T0 appended 1 right after it"
    );
}

#[test]
fn g1c_circular_information_flow() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["r", "y", [1]]]))
        .invoke(1, json!([["append", "y", 1], ["r", "x", [1]]]))
        .ok(0, json!([["append", "x", 1], ["r", "y", [1]]]))
        .ok(1, json!([["append", "y", 1], ["r", "x", [1]]]));
    let r = h.check();
    assert_only(&r, &["G1c"]);
    assert_eq!(cycle(&r, "G1c"), steps(&[(0, "wr"), (1, "wr")]));
    assert_eq!(r.not, ["read-committed"]);
    assert_eq!(r.strongest_models, ["strong-read-uncommitted"]);
    assert_eq!(
        r.anomalies[0].cycle[0].reason,
        "T0 appended 1 to key x, and T1 read key x ending with 1"
    );
}

#[test]
fn g_single_read_skew() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .invoke(1, json!([["r", "x", []], ["r", "y", [1]]]))
        .ok(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(1, json!([["r", "x", []], ["r", "y", [1]]]))
        .txn(2, json!([["r", "x", [1]]]));
    let r = h.check();
    assert_only(&r, &["G-single"]);
    assert_eq!(cycle(&r, "G-single"), steps(&[(0, "wr"), (1, "rw")]));
    // Our anti-dependencies are item anti-dependencies: Elle's G-single-item, which
    // rules out consistent view and repeatable read (and so snapshot isolation and up).
    assert_eq!(r.not, ["consistent-view", "repeatable-read"]);
    assert!(r.ruled_out.contains(&"snapshot-isolation".to_string()));
    assert_eq!(
        r.strongest_models,
        [
            "monotonic-view",
            "monotonic-snapshot-read",
            "cursor-stability",
            "prefix",
            "parallel-snapshot-isolation",
            "strong-read-committed"
        ]
    );
    assert_eq!(
        r.anomalies[0].cycle[1].reason,
        "T1 read key x as an empty list, without 1, and T0 appended 1, the next version"
    );
}

#[test]
fn g2_item_write_skew() {
    let mut h = H::default();
    h.invoke(0, json!([["r", "x", []], ["append", "y", 1]]))
        .invoke(1, json!([["r", "y", []], ["append", "x", 2]]))
        .ok(0, json!([["r", "x", []], ["append", "y", 1]]))
        .ok(1, json!([["r", "y", []], ["append", "x", 2]]))
        .txn(2, json!([["r", "x", [2]], ["r", "y", [1]]]));
    let r = h.check();
    assert_only(&r, &["G2-item"]);
    assert_eq!(cycle(&r, "G2-item"), steps(&[(0, "rw"), (1, "rw")]));
    // Write skew: not repeatable read, yet snapshot isolation (even strong SI).
    assert_eq!(r.not, ["repeatable-read"]);
    assert_eq!(
        r.strongest_models,
        ["update-serializable", "strong-snapshot-isolation"]
    );
    assert_eq!(
        r.strongest_model.as_deref(),
        Some("strong-snapshot-isolation")
    );
}

#[test]
fn g_nonadjacent_long_fork() {
    // T1's append to x and T3's append to y are seen in opposite orders by T0 and T2.
    let mut h = H::default();
    let txns = [
        json!([["r", "x", []], ["r", "y", [1]]]),
        json!([["append", "x", 1]]),
        json!([["r", "x", [1]], ["r", "y", []]]),
        json!([["append", "y", 1]]),
    ];
    for (p, t) in txns.iter().enumerate() {
        h.invoke(p as u64, t.clone());
    }
    for (p, t) in txns.iter().enumerate() {
        h.ok(p as u64, t.clone());
    }
    let r = h.check();
    assert_only(&r, &["G-nonadjacent"]);
    assert_eq!(
        cycle(&r, "G-nonadjacent"),
        steps(&[(0, "rw"), (1, "wr"), (2, "rw"), (3, "wr")])
    );
    assert_eq!(r.not, ["repeatable-read", "snapshot-isolation"]);
}

#[test]
fn g_nonadjacent_process() {
    // One after the other: T0 reads x empty and z = [1]; T1 (p1) appends x 1; T2 (p1)
    // reads z empty; T3 appends z 1.
    let mut h = H::default();
    h.txn(0, json!([["r", "x", []], ["r", "z", [1]]]))
        .txn(1, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "z", []]]))
        .txn(2, json!([["append", "z", 1]]));
    let r = h.check();
    // With real time, shorter cycles exist too: T0 read z from T3, which began after
    // T0 ended, and T2 missed T3's append across real time.
    assert_only(
        &r,
        &["G-nonadjacent-process", "G1c-realtime", "G-single-realtime"],
    );
    assert_eq!(
        cycle(&r, "G-nonadjacent-process"),
        steps(&[(0, "rw"), (1, "process"), (2, "rw"), (3, "wr")])
    );
}

/// Two transactions one after the other, on one process or on two.
fn sequential(h: &mut H, same_process: bool, first: Value, second: Value) {
    h.txn(0, first)
        .txn(if same_process { 0 } else { 1 }, second);
}

#[test]
fn g0_process_and_realtime() {
    for (same, kind) in [(true, "G0-process"), (false, "G0-realtime")] {
        let mut h = H::default();
        sequential(
            &mut h,
            same,
            json!([["append", "x", 1]]),
            json!([["append", "x", 2]]),
        );
        h.txn(5, json!([["r", "x", [2, 1]]]));
        let r = h.check();
        assert_only(&r, &[kind]);
        let edge = if same { "process" } else { "realtime" };
        assert_eq!(cycle(&r, kind), steps(&[(0, edge), (1, "ww")]));
    }
}

#[test]
fn g1c_process_and_realtime() {
    for (same, kind) in [(true, "G1c-process"), (false, "G1c-realtime")] {
        let mut h = H::default();
        // The first transaction reads what the second one has yet to append.
        sequential(
            &mut h,
            same,
            json!([["r", "x", [1]]]),
            json!([["append", "x", 1]]),
        );
        let r = h.check();
        assert_only(&r, &[kind]);
        let edge = if same { "process" } else { "realtime" };
        assert_eq!(cycle(&r, kind), steps(&[(0, edge), (1, "wr")]));
    }
}

#[test]
fn g_single_process_and_realtime() {
    for (same, kind) in [(true, "G-single-process"), (false, "G-single-realtime")] {
        let mut h = H::default();
        // A stale read: the append completed before the read began.
        sequential(
            &mut h,
            same,
            json!([["append", "x", 1]]),
            json!([["r", "x", []]]),
        );
        h.txn(5, json!([["r", "x", [1]]]));
        let r = h.check();
        assert_only(&r, &[kind]);
        let edge = if same { "process" } else { "realtime" };
        assert_eq!(cycle(&r, kind), steps(&[(0, edge), (1, "rw")]));
        let model = if same {
            "serializable"
        } else {
            "strong-session-serializable"
        };
        assert_eq!(r.strongest_model.as_deref(), Some(model));
    }
}

#[test]
fn g2_item_process_and_realtime() {
    for (same, kind) in [(true, "G2-item-process"), (false, "G2-item-realtime")] {
        let mut h = H::default();
        let p1 = if same { 0 } else { 1 };
        // T1 spans everything; T0 then T2 run one after the other.
        h.invoke(9, json!([["append", "x", 1], ["r", "y", []]]))
            .txn(0, json!([["append", "y", 1]]))
            .txn(p1, json!([["r", "x", []]]))
            .ok(9, json!([["append", "x", 1], ["r", "y", []]]))
            .txn(5, json!([["r", "x", [1]], ["r", "y", [1]]]));
        let r = h.check();
        assert_only(&r, &[kind]);
        // Ids: T0 is the spanning transaction (invoked first), T1 appends y, T2 reads x.
        let edge = if same { "process" } else { "realtime" };
        assert_eq!(cycle(&r, kind), steps(&[(0, "rw"), (1, edge), (2, "rw")]));
    }
}

#[test]
fn shortest_cycle_is_reported() {
    // A long G0 cycle T0 -> T1 -> T2 -> T0 on keys a, b, c, and a short one T0 <-> T1
    // on key d: the short one is the example.
    let mut h = H::default();
    let mops = [
        json!([["append", "a", 1], ["append", "c", 2], ["append", "d", 1]]),
        json!([
            ["append", "a", 2],
            ["append", "b", 1],
            ["append", "d", 2],
            ["append", "e", 1]
        ]),
        json!([["append", "b", 2], ["append", "c", 1]]),
    ];
    for (p, m) in mops.iter().enumerate() {
        h.invoke(p as u64, m.clone());
    }
    for (p, m) in mops.iter().enumerate() {
        h.ok(p as u64, m.clone());
    }
    h.txn(
        7,
        json!([
            ["r", "a", [1, 2]],
            ["r", "b", [1, 2]],
            ["r", "c", [1, 2]],
            ["r", "d", [2, 1]]
        ]),
    );
    let r = h.check();
    assert_only(&r, &["G0"]);
    assert_eq!(cycle(&r, "G0").len(), 2);
}

// ---------------------------------------------------------------- other anomalies

#[test]
fn g1a_aborted_read() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1]]))
        .fail(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", [1]]]));
    let r = h.check();
    assert_only(&r, &["G1a"]);
    let a = &r.anomalies[0];
    assert_eq!(a.txns[0].status, "fail");
    assert_eq!(a.txns[1].id, 0);
    assert!(a.explanation.contains("failed"), "{}", a.explanation);
    assert_eq!(r.not, ["read-committed"]);
    assert_eq!(r.strongest_models, ["strong-read-uncommitted"]);
}

#[test]
fn g1b_intermediate_read() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["append", "x", 2]]))
        .invoke(1, json!([["r", "x", [1]]]))
        .ok(0, json!([["append", "x", 1], ["append", "x", 2]]))
        .ok(1, json!([["r", "x", [1]]]));
    let r = h.check();
    // T1 also missed T0's final append while seeing its first: a read skew.
    assert_only(&r, &["G1b", "G-single"]);
    assert_eq!(r.anomalies[0].txns[0].id, 0);
    assert_eq!(r.anomalies[0].txns[1].id, 1);
}

#[test]
fn internal_inconsistency() {
    let mut h = H::default();
    // Does not see its own append.
    h.txn(0, json!([["append", "x", 1], ["r", "x", []]]));
    let r = h.check();
    assert_only(&r, &["internal"]);
    // Reads disagree with each other.
    let mut h = H::default();
    h.txn(0, json!([["append", "y", 5]]))
        .txn(1, json!([["r", "y", [5]], ["r", "y", []]]));
    assert_only(&h.check(), &["internal"]);
    // Sees its own append, but not at the end.
    let mut h = H::default();
    h.invoke(0, json!([["append", "z", 1], ["r", "z", [1, 2]]]))
        .txn(1, json!([["append", "z", 2]]))
        .ok(0, json!([["append", "z", 1], ["r", "z", [1, 2]]]));
    let r = h.check();
    assert!(
        r.anomaly_types.contains(&"internal".to_string()),
        "{:#?}",
        r.anomalies
    );
}

#[test]
fn future_read_of_its_own_later_append() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 0]]))
        .txn(1, json!([["r", "x", [0, 1]], ["append", "x", 1]]));
    let r = h.check();
    assert!(
        r.anomaly_types.contains(&"future-read".to_string()),
        "{:#?}",
        r.anomalies
    );
    // Elle: a future read is a trivial G1c cycle (the transaction read from itself).
    assert_eq!(r.not, ["read-committed"]);
    // Reading its own earlier append is fine.
    let mut h = H::default();
    h.txn(
        0,
        json!([["append", "x", 0], ["r", "x", [0]], ["append", "x", 1]]),
    );
    assert_clean(&h.check());
}

#[test]
fn appends_no_read_saw_still_follow_earlier_reads() {
    // Nobody read x after the appends, but an empty read that began after they
    // completed must still have seen them.
    for appends in [1, 2] {
        let mut h = H::default();
        for v in 0..appends {
            h.txn(v, json!([["append", "x", v]]));
        }
        h.txn(5, json!([["r", "x", []]]));
        let r = h.check();
        assert_only(&r, &["G-single-realtime"]);
    }
}

#[test]
fn duplicate_elements() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", [1, 1]]]));
    assert_only(&h.check(), &["duplicate-elements"]);
}

#[test]
fn garbage_read() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", [1, 9]]]));
    let r = h.check();
    assert_only(&r, &["garbage-read"]);
    assert!(r.anomalies[0]
        .explanation
        .contains("no transaction ever appended 9"));
}

#[test]
fn incompatible_order() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1]]))
        .invoke(1, json!([["append", "x", 2]]))
        .ok(0, json!([["append", "x", 1]]))
        .ok(1, json!([["append", "x", 2]]))
        .txn(2, json!([["r", "x", [1, 2]]]))
        .txn(3, json!([["r", "x", [2, 1]]]));
    let r = h.check();
    assert_only(&r, &["incompatible-order"]);
    assert_eq!(
        r.anomalies[0]
            .key
            .as_ref()
            .map(|k| k.to_string())
            .as_deref(),
        Some("x")
    );
}

#[test]
fn the_checked_model_decides_validity() {
    let mut h = H::default();
    sequential(
        &mut h,
        false,
        json!([["append", "x", 1]]),
        json!([["r", "x", []]]),
    );
    h.txn(5, json!([["r", "x", [1]]]));
    let ops = h.ops();
    let strict = check_list_append(&ops).unwrap();
    assert!(!strict.valid);
    let options = ElleOptions {
        models: vec![ConsistencyModel::Serializable],
        ..ElleOptions::default()
    };
    let serializable = check_list_append_with(&ops, &options).unwrap();
    assert!(serializable.valid, "a stale read is serializable");
    assert_eq!(serializable.checked_model, "serializable");
}

// ---------------------------------------------------------------- inputs

#[test]
fn jepsen_edn_history() {
    let edn = r#"[{:type :invoke, :f :txn, :value [[:append 5 3] [:r 5 nil]], :process 0, :index 0}
{:type :invoke, :f :txn, :value [[:r 5 nil]], :process 1, :index 1}
{:type :ok, :f :txn, :value [[:append 5 3] [:r 5 [3]]], :process 0, :index 2}
{:type :ok, :f :txn, :value [[:r 5 [3]]], :process 1, :index 3}
{:type :invoke, :f :txn, :value [[:r 5 nil]], :process 1, :index 4}
{:type :ok, :f :txn, :value [[:r 5 []]], :process 1, :index 5}]"#;
    let history = read_history(edn.as_bytes(), Format::Edn, "test.edn").unwrap();
    let r = check_list_append(&history.pair().unwrap()).unwrap();
    // Process 1 read [3] and then [] : a stale read on one process.
    assert_eq!(r.anomaly_types, ["G-single-process"], "{:#?}", r.anomalies);
    assert_eq!(
        cycle(&r, "G-single-process"),
        steps(&[(0, "wr"), (1, "process"), (2, "rw")])
    );
}

#[test]
fn malformed_transactions_are_named() {
    let cases = [
        (json!(5), "list of micro-operations"),
        (json!([["frob", 1, 2]]), "\"append\" or \"r\""),
        (json!([["append", [1], 2]]), "key must be"),
        (json!([["append", 1, {"a": 1}]]), "appended value"),
        (json!([["append"]]), "3 parts"),
    ];
    for (value, why) in cases {
        let mut h = H::default();
        h.txn(0, json!([["append", 1, 1]]));
        h.push(3, EventType::Invoke, value.clone())
            .push(3, EventType::Ok, value);
        let err = check_list_append(&h.ops()).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                err,
                ElleError::MalformedTxn {
                    process: 3,
                    invoke_index: 2,
                    ..
                }
            ),
            "{text}"
        );
        assert!(text.contains(why) && text.contains("process 3"), "{text}");
    }
    let mut h = H::default();
    h.txn(0, json!([["r", 1, 7]]));
    assert!(check_list_append(&h.ops())
        .unwrap_err()
        .to_string()
        .contains("list or null"));
}

#[test]
fn duplicate_appends_are_an_error() {
    let mut h = H::default();
    h.txn(0, json!([["append", 1, 1]]))
        .txn(1, json!([["append", 1, 1]]));
    let err = check_list_append(&h.ops()).unwrap_err();
    assert!(matches!(err, ElleError::DuplicateAppend { .. }), "{err}");
}

#[test]
fn results_serialize() {
    let mut h = H::default();
    sequential(
        &mut h,
        true,
        json!([["append", "x", 1]]),
        json!([["r", "x", []]]),
    );
    h.txn(5, json!([["r", "x", [1]]]));
    let text = serde_json::to_string(&h.check()).unwrap();
    assert!(text.contains("\"edge_to_next\":\"rw\""), "{text}");
    assert!(
        text.contains("\"strongest_model\":\"serializable\""),
        "{text}"
    );
}

// ---------------------------------------------------------------- property tests

fn options(seed: u64) -> ListAppendOptions {
    ListAppendOptions {
        seed,
        txns: 300,
        concurrency: 1 + (seed % 6) as usize,
        active_keys: 1 + (seed % 4) as usize,
        max_appends_per_key: 8,
        max_mops: 4,
        read_ratio: 0.5,
        info_rate: 0.1,
        fail_rate: 0.05,
        string_keys: seed & 1 == 0,
        stale_read_rate: 0.0,
        rw_register: false,
    }
}

#[test]
fn generated_serial_histories_pass() {
    for seed in 0..40 {
        let ops = gen::generate(&options(seed)).pair().unwrap();
        let r = check_list_append(&ops).unwrap();
        assert!(r.valid, "seed {seed}: {:#?}", r.anomalies);
        assert_eq!(
            r.strongest_model.as_deref(),
            Some("strict-serializable"),
            "seed {seed}"
        );
        assert!(r.txns > 200, "seed {seed}");
    }
}

#[test]
fn generated_histories_with_stale_reads_fail() {
    for seed in 0..10 {
        let o = ListAppendOptions {
            stale_read_rate: 0.2,
            ..options(seed)
        };
        let r = check_list_append(&gen::generate(&o).pair().unwrap()).unwrap();
        assert!(!r.valid, "seed {seed}");
    }
}

/// An `ok` read: (op position, micro-op position, key, list).
fn ok_reads(ops: &Operations) -> Vec<(usize, usize, Value, Vec<Value>)> {
    let mut out = Vec::new();
    for (i, op) in ops.ops.iter().enumerate() {
        if op.outcome != Outcome::Ok {
            continue;
        }
        for (m, mop) in op.output.as_array().into_iter().flatten().enumerate() {
            if mop[0] == "r" {
                let list = mop[2].as_array().cloned().unwrap_or_default();
                out.push((i, m, mop[1].clone(), list));
            }
        }
    }
    out
}

fn set_read(ops: &mut Operations, op: usize, mop: usize, list: Vec<Value>) {
    ops.ops[op].output[mop][2] = Value::Array(list);
}

/// The operation that appended `value` to `key`, among `ok`/`info` operations.
fn appender(ops: &Operations, key: &Value, value: &Value) -> Option<usize> {
    ops.ops.iter().position(|op| {
        op.input
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m[0] == "append" && m[1] == *key && m[2] == *value)
    })
}

#[test]
fn perturbed_reads_fail() {
    let mut tried = [0usize; 4];
    for seed in 0..60 {
        let base = gen::generate(&options(seed)).pair().unwrap();
        let reads = ok_reads(&base);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let what = rng.gen_range(0..4);
        let mut ops = base.clone();
        let expected: Option<&str> = match what {
            // A value nobody appended.
            0 => {
                let Some((op, mop, _, mut list)) = reads.first().cloned() else {
                    continue;
                };
                list.push(json!(1_000_000_007u64));
                set_read(&mut ops, op, mop, list);
                Some("garbage-read")
            }
            // A value read twice.
            1 => {
                let Some((op, mop, _, mut list)) = reads.iter().find(|r| !r.3.is_empty()).cloned()
                else {
                    continue;
                };
                list.push(list[0].clone());
                set_read(&mut ops, op, mop, list);
                Some("duplicate-elements")
            }
            // A stale read: drop an element whose append completed before the read
            // began (and which another read pins in the version order).
            2 => {
                let pick = reads.iter().find_map(|(op, mop, key, list)| {
                    let j = list.iter().position(|v| {
                        appender(&base, key, v)
                            .is_some_and(|a| base.ops[a].precedes(&base.ops[*op]))
                    })?;
                    let pinned = reads
                        .iter()
                        .any(|r| r.0 != *op && r.2 == *key && r.3.len() > j);
                    pinned.then(|| (*op, *mop, list[..j].to_vec()))
                });
                let Some((op, mop, list)) = pick else {
                    continue;
                };
                set_read(&mut ops, op, mop, list);
                None
            }
            // A read from the future: the next version, appended by a transaction
            // invoked after the read completed.
            _ => {
                let pick = reads.iter().find_map(|(op, mop, key, list)| {
                    let longer = reads
                        .iter()
                        .find(|r| r.2 == *key && r.3.len() > list.len())?;
                    let next = longer.3[list.len()].clone();
                    let a = appender(&base, key, &next)?;
                    base.ops[*op].precedes(&base.ops[a]).then(|| {
                        let mut l = list.clone();
                        l.push(next);
                        (*op, *mop, l)
                    })
                });
                let Some((op, mop, list)) = pick else {
                    continue;
                };
                set_read(&mut ops, op, mop, list);
                None
            }
        };
        tried[what] += 1;
        let r = check_list_append(&ops).unwrap();
        assert!(!r.valid, "seed {seed}, perturbation {what}: still valid");
        if let Some(kind) = expected {
            assert!(
                r.anomaly_types.iter().any(|k| k == kind),
                "seed {seed}: {:?}",
                r.anomaly_types
            );
        }
    }
    assert!(
        tried.iter().all(|&n| n >= 5),
        "every perturbation ran: {tried:?}"
    );
}

#[test]
fn analysis_is_deterministic() {
    let o = ListAppendOptions {
        stale_read_rate: 0.3,
        txns: 500,
        ..options(3)
    };
    let ops = gen::generate(&o).pair().unwrap();
    let mut a = check_list_append(&ops).unwrap();
    let mut b = check_list_append(&ops).unwrap();
    a.elapsed_ms = 0.0;
    b.elapsed_ms = 0.0;
    assert_eq!(a, b);
}

/// Brute force: is there a serial order of the (all `ok`) transactions, respecting real
/// time if asked, that reproduces every read?
fn serial_order_exists(ops: &Operations, real_time: bool) -> bool {
    fn search(
        ops: &Operations,
        real_time: bool,
        done: &mut Vec<usize>,
        store: &mut std::collections::BTreeMap<String, Vec<Value>>,
    ) -> bool {
        let n = ops.ops.len();
        if done.len() == n {
            return true;
        }
        for next in 0..n {
            if done.contains(&next) {
                continue;
            }
            // Everything that must come before `next` in real time already ran.
            let blocked = real_time
                && (0..n).any(|o| {
                    !done.contains(&o) && o != next && ops.ops[o].precedes(&ops.ops[next])
                });
            if blocked {
                continue;
            }
            let saved = store.clone();
            let mut consistent = true;
            for mop in ops.ops[next].output.as_array().into_iter().flatten() {
                let list = store.entry(mop[1].to_string()).or_default();
                if mop[0] == "append" {
                    list.push(mop[2].clone());
                } else if mop[2].as_array().cloned().unwrap_or_default() != *list {
                    consistent = false;
                    break;
                }
            }
            if consistent {
                done.push(next);
                if search(ops, real_time, done, store) {
                    return true;
                }
                done.pop();
            }
            *store = saved;
        }
        false
    }
    search(ops, real_time, &mut Vec::new(), &mut Default::default())
}

#[test]
fn anomalies_agree_with_brute_force() {
    let mut invalid = 0;
    for seed in 0..400 {
        let o = ListAppendOptions {
            seed,
            txns: 6,
            concurrency: 1 + (seed % 4) as usize,
            active_keys: 1 + (seed % 2) as usize,
            max_appends_per_key: 100,
            max_mops: 3,
            stale_read_rate: 0.4,
            ..ListAppendOptions::default()
        };
        let ops = gen::generate(&o).pair().unwrap();
        let r = check_list_append(&ops).unwrap();
        let ruled_out = |m: &str| r.ruled_out.iter().any(|n| n == m);
        if ruled_out("strict-serializable") {
            invalid += 1;
            assert!(
                !serial_order_exists(&ops, true),
                "seed {seed}: {:#?}",
                r.anomalies
            );
        }
        if ruled_out("serializable") {
            assert!(
                !serial_order_exists(&ops, false),
                "seed {seed}: {:#?}",
                r.anomalies
            );
        }
        // Every transaction here completed ok and every append is unique, and the
        // search is exhaustive on histories this small: the checker also misses nothing.
        if !ruled_out("strict-serializable") {
            assert!(
                serial_order_exists(&ops, true),
                "seed {seed}: missed a violation"
            );
        }
        if !ruled_out("serializable") {
            assert!(
                serial_order_exists(&ops, false),
                "seed {seed}: missed a violation"
            );
        }
    }
    assert!(
        invalid > 50,
        "the faults produced only {invalid} invalid histories"
    );
}

#[test]
fn a_tiny_search_budget_still_reports_every_cyclic_component() {
    let o = ListAppendOptions {
        stale_read_rate: 0.3,
        txns: 400,
        ..options(7)
    };
    let ops = gen::generate(&o).pair().unwrap();
    let full = check_list_append(&ops).unwrap();
    let starved = ElleOptions {
        search_budget_per_class: 1,
        ..ElleOptions::default()
    };
    let r = check_list_append_with(&ops, &starved).unwrap();
    assert!(full.graph.cyclic_components > 0);
    assert_eq!(r.graph.cyclic_components, full.graph.cyclic_components);
    assert!(r.graph.truncated_components > 0);
    assert!(!r.valid);
    let cycles = r.anomalies.iter().filter(|a| !a.cycle.is_empty()).count();
    let reported: usize = r
        .anomaly_counts
        .iter()
        .filter(|(k, _)| k.starts_with('G') && !["G1a", "G1b"].contains(&k.as_str()))
        .map(|(_, n)| n)
        .sum();
    assert!(
        cycles > 0 && reported >= r.graph.cyclic_components,
        "{:?}",
        r.anomaly_counts
    );
}

// ---------------------------------------------------------------- model boundaries

/// One history on each side of the lattice's boundaries, with Elle's exact answer: the
/// anomalies, `not` (the weakest models violated) and the strongest models left.
#[test]
fn model_boundaries() {
    struct Case {
        name: &'static str,
        history: H,
        anomalies: &'static [&'static str],
        not: &'static [&'static str],
        strongest: &'static [&'static str],
    }
    let mut cases = Vec::new();

    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", [1]], ["append", "y", 1]]));
    cases.push(Case {
        name: "strict serializable",
        history: h,
        anomalies: &[],
        not: &[],
        strongest: &["strict-serializable"],
    });

    // Write skew: snapshot isolation (even strong), not repeatable read.
    let mut h = H::default();
    h.invoke(0, json!([["r", "x", []], ["append", "y", 1]]))
        .invoke(1, json!([["r", "y", []], ["append", "x", 2]]))
        .ok(0, json!([["r", "x", []], ["append", "y", 1]]))
        .ok(1, json!([["r", "y", []], ["append", "x", 2]]))
        .txn(2, json!([["r", "x", [2]], ["r", "y", [1]]]));
    cases.push(Case {
        name: "SI but not RR",
        history: h,
        anomalies: &["G2-item"],
        not: &["repeatable-read"],
        strongest: &["update-serializable", "strong-snapshot-isolation"],
    });

    // A transaction whose two reads of x differ: Elle's `internal`, which read atomic
    // (and so SI) forbids and repeatable read does not.
    let mut h = H::default();
    h.invoke(0, json!([["r", "x", []], ["r", "x", [1]]]))
        .txn(1, json!([["append", "x", 1]]))
        .ok(0, json!([["r", "x", []], ["r", "x", [1]]]));
    cases.push(Case {
        name: "RR but not SI",
        history: h,
        anomalies: &["internal"],
        not: &["read-atomic"],
        strongest: &[
            "monotonic-snapshot-read",
            "repeatable-read",
            "update-serializable",
            "strong-read-committed",
        ],
    });

    // A stale read across real time, by another process.
    let mut h = H::default();
    sequential(
        &mut h,
        false,
        json!([["append", "x", 1]]),
        json!([["r", "x", []]]),
    );
    h.txn(5, json!([["r", "x", [1]]]));
    cases.push(Case {
        name: "serializable but not strict (strong-session serializable)",
        history: h,
        anomalies: &["G-single-realtime"],
        not: &["strong-snapshot-isolation"],
        strongest: &["strong-read-committed", "strong-session-serializable"],
    });

    // The same stale read by the writer's own process.
    let mut h = H::default();
    sequential(
        &mut h,
        true,
        json!([["append", "x", 1]]),
        json!([["r", "x", []]]),
    );
    h.txn(5, json!([["r", "x", [1]]]));
    cases.push(Case {
        name: "serializable but not strong-session",
        history: h,
        anomalies: &["G-single-process"],
        not: &["strong-session-snapshot-isolation"],
        strongest: &["serializable", "strong-read-committed"],
    });

    // Two sequential appends installed in the opposite order: a write cycle through
    // real time only.
    let mut h = H::default();
    sequential(
        &mut h,
        false,
        json!([["append", "x", 1]]),
        json!([["append", "x", 2]]),
    );
    h.txn(5, json!([["r", "x", [2, 1]]]));
    cases.push(Case {
        name: "strong-session serializable but not strong read uncommitted",
        history: h,
        anomalies: &["G0-realtime"],
        not: &["strong-read-uncommitted"],
        strongest: &["strong-session-serializable"],
    });

    // Long fork: no rw edges adjacent.
    let mut h = H::default();
    let txns = [
        json!([["r", "x", []], ["r", "y", [1]]]),
        json!([["append", "x", 1]]),
        json!([["r", "x", [1]], ["r", "y", []]]),
        json!([["append", "y", 1]]),
    ];
    for (p, t) in txns.iter().enumerate() {
        h.invoke(p as u64, t.clone());
    }
    for (p, t) in txns.iter().enumerate() {
        h.ok(p as u64, t.clone());
    }
    cases.push(Case {
        name: "parallel SI but not SI",
        history: h,
        anomalies: &["G-nonadjacent"],
        not: &["repeatable-read", "snapshot-isolation"],
        // Update serializability forbids only G1 and G-update (neither is here).
        strongest: &[
            "monotonic-snapshot-read",
            "prefix",
            "parallel-snapshot-isolation",
            "update-serializable",
            "strong-read-committed",
        ],
    });

    // Read skew.
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .invoke(1, json!([["r", "x", []], ["r", "y", [1]]]))
        .ok(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(1, json!([["r", "x", []], ["r", "y", [1]]]))
        .txn(2, json!([["r", "x", [1]]]));
    cases.push(Case {
        name: "read committed but not consistent view",
        history: h,
        anomalies: &["G-single"],
        not: &["consistent-view", "repeatable-read"],
        strongest: &[
            "monotonic-view",
            "monotonic-snapshot-read",
            "cursor-stability",
            "prefix",
            "parallel-snapshot-isolation",
            "strong-read-committed",
        ],
    });

    // Circular information flow.
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["r", "y", [1]]]))
        .invoke(1, json!([["append", "y", 1], ["r", "x", [1]]]))
        .ok(0, json!([["append", "x", 1], ["r", "y", [1]]]))
        .ok(1, json!([["append", "y", 1], ["r", "x", [1]]]));
    cases.push(Case {
        name: "read uncommitted but not read committed",
        history: h,
        anomalies: &["G1c"],
        not: &["read-committed"],
        strongest: &["strong-read-uncommitted"],
    });

    // Dirty write cycle.
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .invoke(1, json!([["append", "x", 2], ["append", "y", 2]]))
        .ok(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(1, json!([["append", "x", 2], ["append", "y", 2]]))
        .txn(2, json!([["r", "x", [1, 2]], ["r", "y", [2, 1]]]));
    cases.push(Case {
        name: "not even read uncommitted",
        history: h,
        anomalies: &["G0"],
        not: &["read-uncommitted"],
        strongest: &[],
    });

    for case in cases {
        let r = case.history.check();
        assert_eq!(r.anomaly_types, case.anomalies, "{}", case.name);
        assert_eq!(r.not, case.not, "{}", case.name);
        assert_eq!(r.strongest_models, case.strongest, "{}", case.name);
        assert_eq!(r.valid, case.anomalies.is_empty(), "{}", case.name);
        // Every ruled-out model implies one in `not`, and none is among the strongest.
        for m in &r.ruled_out {
            assert!(!r.strongest_models.contains(m), "{}: {m}", case.name);
        }
        assert_eq!(
            r.not.len() + r.also_not.len(),
            r.ruled_out.len(),
            "{}",
            case.name
        );
    }
}

/// `--consistency-models`: only anomalies relevant to the chosen models are searched
/// and reported, and the verdict and the strongest models are about what was searched.
#[test]
fn consistency_models_choose_what_is_searched() {
    // Write skew and, across real time, a stale read.
    let mut h = H::default();
    h.invoke(0, json!([["r", "x", []], ["append", "y", 1]]))
        .invoke(1, json!([["r", "y", []], ["append", "x", 2]]))
        .ok(0, json!([["r", "x", []], ["append", "y", 1]]))
        .ok(1, json!([["r", "y", []], ["append", "x", 2]]))
        .txn(2, json!([["r", "x", [2]], ["r", "y", [1]]]))
        .txn(3, json!([["r", "x", []]]));
    let ops = h.ops();
    let with = |models: &[ConsistencyModel]| {
        check_list_append_with(
            &ops,
            &ElleOptions {
                models: models.to_vec(),
                ..ElleOptions::default()
            },
        )
        .unwrap()
    };
    let all = with(&[ConsistencyModel::StrictSerializable]);
    assert!(!all.valid);
    assert_eq!(all.anomaly_types, ["G2-item", "G-single-realtime"]);
    let si = with(&[ConsistencyModel::SnapshotIsolation]);
    assert!(si.valid, "{:#?}", si.anomalies);
    assert!(si.anomalies.is_empty());
    // Every anomaly that could rule out update serializability was searched too.
    assert_eq!(
        si.strongest_models,
        ["update-serializable", "snapshot-isolation"]
    );
    assert!(!si
        .judged_models
        .contains(&"strict-serializable".to_string()));
    let rr = with(&[ConsistencyModel::RepeatableRead]);
    assert!(!rr.valid);
    assert_eq!(rr.anomaly_types, ["G2-item"]);
    assert_eq!(rr.not, ["repeatable-read"]);
    let both = with(&[
        ConsistencyModel::SnapshotIsolation,
        ConsistencyModel::StrongSnapshotIsolation,
    ]);
    assert!(!both.valid);
    assert_eq!(both.anomaly_types, ["G-single-realtime"]);
    assert_eq!(both.not, ["strong-snapshot-isolation"]);
    assert_eq!(both.consistency_models.len(), 2);
}

/// Checking against fewer models searches less, but never changes what is said about
/// them: on generated histories with faults, the verdict for each choice of models is
/// what the full search rules out.
#[test]
fn filtered_searches_agree_with_the_full_search() {
    let choices: [&[ConsistencyModel]; 5] = [
        &[ConsistencyModel::Serializable],
        &[ConsistencyModel::SnapshotIsolation],
        &[ConsistencyModel::RepeatableRead],
        &[ConsistencyModel::StrongSessionSnapshotIsolation],
        &[
            ConsistencyModel::ReadCommitted,
            ConsistencyModel::StrongSnapshotIsolation,
        ],
    ];
    let mut invalid = 0;
    for seed in 0..40 {
        let o = ListAppendOptions {
            stale_read_rate: 0.05,
            txns: 150,
            ..options(seed)
        };
        let ops = gen::generate(&o).pair().unwrap();
        let full = check_list_append(&ops).unwrap();
        invalid += usize::from(!full.valid);
        for models in choices {
            let r = check_list_append_with(
                &ops,
                &ElleOptions {
                    models: models.to_vec(),
                    ..ElleOptions::default()
                },
            )
            .unwrap();
            let expected = !models
                .iter()
                .any(|m| full.ruled_out.contains(&m.name().to_string()));
            assert_eq!(
                r.valid, expected,
                "seed {seed}, {models:?}: {:?} vs {:?}",
                r.anomaly_types, full.anomaly_types
            );
            for kind in &r.anomaly_types {
                assert!(
                    models
                        .iter()
                        .any(
                            |m| splitbrain_checker::elle::models::models_ruled_out_by(kind)
                                .contains(m)
                        ),
                    "seed {seed}: {kind} is irrelevant to {models:?}"
                );
            }
        }
    }
    assert!(invalid >= 10, "only {invalid} histories had anomalies");
}
