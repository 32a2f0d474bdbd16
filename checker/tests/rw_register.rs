//! Tests of the rw-register (Elle-style) checker: one hand-built history per anomaly it
//! can prove, with the exact models each rules out; the assumptions behind inferred
//! version orders; and seeded property tests: serial executions pass, perturbed reads
//! fail, and on tiny histories a brute-force search over every serial order agrees with
//! every serializability or strict-serializability violation reported.

use serde_json::{json, Value};
use splitbrain_checker::elle::gen::{self, ListAppendOptions};
use splitbrain_checker::elle::{
    check_rw_register, check_rw_register_with, ConsistencyModel, ElleError, ElleOptions, ElleResult,
};
use splitbrain_checker::Operations;

use crate::txn_history::{cycle, steps, H};

/// This file's checker on a built history.
trait Check {
    fn check(&self) -> ElleResult;
}

impl Check for H {
    fn check(&self) -> ElleResult {
        check_rw_register(&self.ops()).expect("a well-formed rw-register history")
    }
}

fn assumes<'a>(result: &'a ElleResult, kind: &str) -> Option<&'a str> {
    result
        .anomalies
        .iter()
        .find(|a| a.kind == kind)
        .and_then(|a| a.assumes.as_deref())
}

// ---------------------------------------------------------------- clean

#[test]
fn serial_history_is_strict_serializable() {
    let mut h = H::default();
    h.txn(0, json!([["r", "x", null], ["w", "x", 1]]))
        .txn(1, json!([["r", "x", 1], ["w", "y", 2]]))
        .txn(0, json!([["r", "y", 2], ["w", "x", 3], ["r", "x", 3]]))
        .txn(2, json!([["r", "x", 3], ["r", "y", 2]]));
    let r = h.check();
    assert!(r.valid, "{:#?}", r.anomalies);
    assert_eq!(r.analysis, "rw-register");
    assert_eq!(r.strongest_models, ["strict-serializable"]);
    assert_eq!(r.txns, 4);
}

#[test]
fn concurrent_writes_may_order_either_way() {
    let mut h = H::default();
    h.concurrent(&[json!([["w", "x", 1]]), json!([["w", "x", 2]])])
        .txn(3, json!([["r", "x", 1]]))
        .txn(3, json!([["r", "x", 1]]));
    let r = h.check();
    assert!(r.valid, "{:#?}", r.anomalies);
}

#[test]
fn indeterminate_writes_order_nothing_unless_read() {
    let mut h = H::default();
    h.invoke(0, json!([["w", "x", 1]]))
        .info(0, json!([["w", "x", 1]]))
        .txn(1, json!([["r", "x", null]]))
        .txn(2, json!([["r", "x", 1]]));
    let r = h.check();
    // The info write happened (T2 saw it) between T1 and T2: fine.
    assert!(r.valid, "{:#?}", r.anomalies);
}

// ---------------------------------------------------------------- cycles

#[test]
fn g1c_circular_information_flow() {
    let mut h = H::default();
    h.concurrent(&[
        json!([["w", "x", 1], ["r", "y", 1]]),
        json!([["w", "y", 1], ["r", "x", 1]]),
    ]);
    let r = h.check();
    assert_eq!(r.anomaly_types, ["G1c"]);
    assert_eq!(cycle(&r, "G1c"), steps(&[(0, "wr"), (1, "wr")]));
    assert_eq!(assumes(&r, "G1c"), None);
    assert_eq!(r.not, ["read-committed"]);
    assert_eq!(
        r.anomalies[0].cycle[0].reason,
        "T0 wrote key x = 1, and T1 read it"
    );
}

#[test]
fn g_single_read_skew() {
    let mut h = H::default();
    h.concurrent(&[
        json!([["w", "x", 1], ["w", "y", 1]]),
        json!([["r", "x", null], ["r", "y", 1]]),
    ]);
    let r = h.check();
    assert_eq!(r.anomaly_types, ["G-single"]);
    assert_eq!(cycle(&r, "G-single"), steps(&[(0, "wr"), (1, "rw")]));
    assert_eq!(r.not, ["consistent-view", "repeatable-read"]);
    assert_eq!(
        r.anomalies[0].cycle[1].reason,
        "T1 read key x = nil, and T0 wrote 1, a later version (the initial state precedes every write)"
    );
}

#[test]
fn g2_item_write_skew() {
    let mut h = H::default();
    h.concurrent(&[
        json!([["r", "x", null], ["w", "y", 1]]),
        json!([["r", "y", null], ["w", "x", 1]]),
    ]);
    let r = h.check();
    assert_eq!(r.anomaly_types, ["G2-item"]);
    assert_eq!(cycle(&r, "G2-item"), steps(&[(0, "rw"), (1, "rw")]));
    assert_eq!(r.not, ["repeatable-read"]);
    assert!(r
        .strongest_models
        .contains(&"strong-snapshot-isolation".to_string()));
}

#[test]
fn g_nonadjacent_long_fork() {
    let mut h = H::default();
    h.concurrent(&[
        json!([["r", "x", null], ["r", "y", 1]]),
        json!([["w", "x", 1]]),
        json!([["r", "x", 1], ["r", "y", null]]),
        json!([["w", "y", 1]]),
    ]);
    let r = h.check();
    assert_eq!(r.anomaly_types, ["G-nonadjacent"]);
    assert_eq!(
        cycle(&r, "G-nonadjacent"),
        steps(&[(0, "rw"), (1, "wr"), (2, "rw"), (3, "wr")])
    );
    assert_eq!(r.not, ["repeatable-read", "snapshot-isolation"]);
}

#[test]
fn g0_needs_writes_to_follow_reads_so_it_assumes_read_committed() {
    // Each transaction read the other's write of one key and overwrote it: x goes 1 -> 2,
    // y goes 2 -> 1. A register history shows version order only through such reads.
    let mut h = H::default();
    h.concurrent(&[
        json!([["r", "y", 2], ["w", "y", 1], ["w", "x", 1]]),
        json!([["r", "x", 1], ["w", "x", 2], ["w", "y", 2]]),
    ]);
    let r = h.check();
    assert!(
        r.anomaly_types.contains(&"G0".to_string()),
        "{:?}",
        r.anomaly_types
    );
    assert_eq!(cycle(&r, "G0"), steps(&[(0, "ww"), (1, "ww")]));
    assert_eq!(assumes(&r, "G0"), Some("read-committed"));
    // Under read-uncommitted a transaction may read a write that commits after it, so
    // the inferred order (and the G0) proves nothing there.
    assert_eq!(r.not, ["read-committed"]);
    assert!(!r.ruled_out.contains(&"read-uncommitted".to_string()));
}

#[test]
fn stale_read_across_real_time_and_process_order() {
    for (same, kind, edge, assumption, not) in [
        (
            false,
            "G-single-realtime",
            "realtime",
            "strong-read-committed",
            "strong-snapshot-isolation",
        ),
        (
            true,
            "G-single-process",
            "process",
            "strong-session-read-committed",
            "strong-session-snapshot-isolation",
        ),
    ] {
        // x = 1, then x = 2, then a read of 1: all on one process, or each on its own.
        let (second, reader) = if same { (0, 0) } else { (2, 1) };
        let mut h = H::default();
        h.txn(0, json!([["w", "x", 1]]))
            .txn(second, json!([["w", "x", 2]]))
            .txn(reader, json!([["r", "x", 1]]));
        let r = h.check();
        assert_eq!(r.anomaly_types, [kind], "{:#?}", r.anomalies);
        assert_eq!(cycle(&r, kind), steps(&[(1, edge), (2, "rw")]));
        assert_eq!(assumes(&r, kind), Some(assumption));
        assert_eq!(r.not, [not]);
        assert!(!r.ruled_out.contains(&"serializable".to_string()));
        // Checked against serializability alone, no order is inferred from time.
        let ser = check_rw_register_with(
            &h.ops(),
            &ElleOptions {
                models: vec![ConsistencyModel::Serializable],
                ..ElleOptions::default()
            },
        )
        .unwrap();
        assert!(ser.valid, "{:#?}", ser.anomalies);
    }
}

#[test]
fn stale_read_of_nil_needs_no_assumption() {
    let mut h = H::default();
    h.txn(0, json!([["w", "x", 1]]))
        .txn(1, json!([["r", "x", null]]));
    let r = h.check();
    assert_eq!(r.anomaly_types, ["G-single-realtime"]);
    assert_eq!(assumes(&r, "G-single-realtime"), None);
    assert_eq!(r.not, ["strong-snapshot-isolation"]);
}

#[test]
fn g1c_and_g0_realtime() {
    // T0 read x = 2 before T1 (invoked after T0 completed) wrote it.
    let mut h = H::default();
    h.txn(0, json!([["r", "x", 2]]))
        .txn(1, json!([["w", "x", 2]]));
    let r = h.check();
    assert_eq!(r.anomaly_types, ["G1c-realtime"]);
    assert_eq!(r.not, ["strong-read-committed"]);
}

// ---------------------------------------------------------------- without a graph

#[test]
fn aborted_intermediate_garbage_future_and_internal_reads() {
    let mut h = H::default();
    h.invoke(0, json!([["w", "x", 1]]))
        .fail(0, json!([["w", "x", 1]]))
        .txn(1, json!([["r", "x", 1]]));
    let r = h.check();
    assert_eq!(r.anomaly_types, ["G1a"]);
    assert_eq!(r.not, ["read-committed"]);

    let mut h = H::default();
    h.concurrent(&[
        json!([["w", "x", 1], ["w", "x", 2]]),
        json!([["r", "x", 1]]),
    ]);
    let r = h.check();
    assert_eq!(r.anomaly_types, ["G1b"]);

    let mut h = H::default();
    h.txn(0, json!([["r", "x", 99]]));
    assert_eq!(h.check().anomaly_types, ["garbage-read"]);

    let mut h = H::default();
    h.txn(0, json!([["r", "x", 5], ["w", "x", 5]]));
    let r = h.check();
    assert_eq!(r.anomaly_types, ["future-read"]);

    let mut h = H::default();
    h.txn(0, json!([["w", "x", 7]]))
        .txn(1, json!([["w", "x", 1], ["r", "x", 7]]));
    let r = h.check();
    assert!(
        r.anomaly_types.contains(&"internal".to_string()),
        "{:?}",
        r.anomaly_types
    );
    assert!(
        r.anomalies[0].explanation.contains("last wrote 1"),
        "{}",
        r.anomalies[0].explanation
    );

    let mut h = H::default();
    h.txn(0, json!([["w", "x", 7]]))
        .txn(1, json!([["r", "x", 7], ["r", "x", null]]));
    let r = h.check();
    assert_eq!(r.anomaly_types, ["internal"]);
    assert_eq!(r.not, ["read-atomic"]);
    assert!(!r.ruled_out.contains(&"repeatable-read".to_string()));
}

#[test]
fn cyclic_versions() {
    // Each read the other's value and overwrote it: 1 -> 2 and 2 -> 1.
    let mut h = H::default();
    h.concurrent(&[
        json!([["r", "x", 2], ["w", "x", 1]]),
        json!([["r", "x", 1], ["w", "x", 2]]),
    ]);
    let r = h.check();
    assert!(
        r.anomaly_types.contains(&"cyclic-versions".to_string()),
        "{:?}",
        r.anomaly_types
    );
    assert_eq!(assumes(&r, "cyclic-versions"), Some("read-committed"));
    assert_eq!(r.not, ["read-committed"]);

    // Real time says 1 -> 2 (T1 began after T0 ended); T0 read 2 before writing 1.
    let mut h = H::default();
    h.txn(0, json!([["r", "x", 2], ["w", "x", 1]]))
        .txn(1, json!([["w", "x", 2]]));
    let r = h.check();
    assert!(
        r.anomaly_types.contains(&"cyclic-versions".to_string()),
        "{:?}",
        r.anomaly_types
    );
    assert_eq!(
        assumes(&r, "cyclic-versions"),
        Some("strong-read-committed")
    );
    assert_eq!(r.not, ["strong-read-committed"]);
}

#[test]
fn duplicate_writes_and_malformed_mops_are_errors() {
    let mut h = H::default();
    h.txn(0, json!([["w", "x", 1]]))
        .txn(1, json!([["w", "x", 1]]));
    let e = check_rw_register(&h.ops()).unwrap_err();
    assert!(matches!(e, ElleError::DuplicateAppend { .. }), "{e}");
    assert!(e.to_string().contains("written"), "{e}");
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]));
    let e = check_rw_register(&h.ops()).unwrap_err();
    assert!(e.to_string().contains("\"w\" or \"r\""), "{e}");
    let mut h = H::default();
    h.txn(0, json!([["w", "x", null]]));
    assert!(check_rw_register(&h.ops()).is_err());
}

// ---------------------------------------------------------------- generated

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
        rw_register: true,
    }
}

#[test]
fn generated_serial_histories_pass() {
    for seed in 0..40 {
        let ops = gen::generate(&options(seed)).pair().unwrap();
        let r = check_rw_register(&ops).unwrap();
        assert!(r.valid, "seed {seed}: {:#?}", r.anomalies);
        assert_eq!(r.strongest_models, ["strict-serializable"], "seed {seed}");
        assert!(r.txns > 200, "seed {seed}");
    }
}

#[test]
fn generated_histories_with_stale_reads_fail() {
    for seed in 0..20 {
        let o = ListAppendOptions {
            stale_read_rate: 0.2,
            ..options(seed)
        };
        let ops = gen::generate(&o).pair().unwrap();
        let r = check_rw_register(&ops).unwrap();
        assert!(!r.valid, "seed {seed}: stale reads went unnoticed");
    }
}

/// Each read of a serial history, changed to return another value of its key (an
/// earlier one, a later one, nil, or a value nobody wrote), must be caught whenever the
/// brute force says the result is not strict serializable.
#[test]
fn perturbed_reads_fail() {
    let mut perturbed = 0;
    let mut caught = 0;
    for seed in 0..60 {
        let o = ListAppendOptions {
            txns: 7,
            concurrency: 1 + (seed % 3) as usize,
            active_keys: 1 + (seed % 2) as usize,
            max_appends_per_key: 100,
            info_rate: 0.0,
            fail_rate: 0.0,
            ..options(seed)
        };
        let base = gen::generate(&o).pair().unwrap();
        assert!(check_rw_register(&base).unwrap().valid, "seed {seed}");
        for op in 0..base.ops.len() {
            let Some(mops) = base.ops[op].output.as_array() else {
                continue;
            };
            for (m, mop) in mops.iter().enumerate() {
                if mop[0] != "r" {
                    continue;
                }
                for other in [json!(null), json!(1), json!(4), json!(1000)] {
                    if mop[2] == other {
                        continue;
                    }
                    let mut ops = base.clone();
                    ops.ops[op].output[m][2] = other.clone();
                    let r = check_rw_register(&ops).unwrap();
                    let serial = serial_order_exists(&ops, true);
                    perturbed += 1;
                    if !serial {
                        caught += usize::from(!r.valid);
                    }
                    assert!(
                        !(r.valid && other == json!(1000)),
                        "seed {seed}: a garbage read passed"
                    );
                    check_against_brute_force(&ops, &r, seed);
                }
            }
        }
    }
    assert!(perturbed > 200, "only {perturbed} perturbations");
    assert!(caught > 100, "only {caught} perturbations caught");
}

/// Soundness against the brute force: whatever the checker rules out, no serial order
/// (respecting real time, for strict serializability) may exist.
fn check_against_brute_force(ops: &Operations, r: &ElleResult, seed: u64) {
    let ruled_out = |m: &str| r.ruled_out.iter().any(|n| n == m);
    if ruled_out("strict-serializable") {
        assert!(
            !serial_order_exists(ops, true),
            "seed {seed}: {:#?}",
            r.anomalies
        );
    }
    if ruled_out("serializable") {
        assert!(
            !serial_order_exists(ops, false),
            "seed {seed}: {:#?}",
            r.anomalies
        );
    }
}

/// Brute force: is there a serial order of the `ok` transactions (respecting real time
/// if asked) that reproduces every read? `info` transactions may or may not have run.
fn serial_order_exists(ops: &Operations, real_time: bool) -> bool {
    use splitbrain_checker::Outcome;
    fn search(
        txns: &[(&splitbrain_checker::Operation, bool)],
        real_time: bool,
        done: &mut Vec<usize>,
        skipped: &mut Vec<usize>,
        store: &mut std::collections::BTreeMap<String, Value>,
    ) -> bool {
        let n = txns.len();
        if done.len() + skipped.len() == n {
            return true;
        }
        for next in 0..n {
            if done.contains(&next) || skipped.contains(&next) {
                continue;
            }
            let (op, ok) = txns[next];
            let blocked = real_time
                && (0..n).any(|o| {
                    !done.contains(&o)
                        && !skipped.contains(&o)
                        && o != next
                        && txns[o].1
                        && txns[o].0.precedes(op)
                });
            if blocked {
                continue;
            }
            if !ok {
                // An info transaction may never run.
                skipped.push(next);
                if search(txns, real_time, done, skipped, store) {
                    return true;
                }
                skipped.pop();
            }
            let saved = store.clone();
            let mut consistent = true;
            let mops = if ok { &op.output } else { &op.input };
            for mop in mops.as_array().into_iter().flatten() {
                let k = mop[1].to_string();
                if mop[0] == "w" {
                    store.insert(k, mop[2].clone());
                } else if ok && store.get(&k).cloned().unwrap_or(Value::Null) != mop[2] {
                    consistent = false;
                    break;
                }
            }
            if consistent {
                done.push(next);
                if search(txns, real_time, done, skipped, store) {
                    return true;
                }
                done.pop();
            }
            *store = saved;
        }
        false
    }
    let txns: Vec<(&splitbrain_checker::Operation, bool)> = ops
        .ops
        .iter()
        .map(|o| (o, o.outcome == Outcome::Ok))
        .collect();
    search(
        &txns,
        real_time,
        &mut Vec::new(),
        &mut Vec::new(),
        &mut Default::default(),
    )
}

/// Tiny generated histories with stale reads and indeterminate transactions: every
/// violation the checker reports is confirmed by the brute force.
#[test]
fn anomalies_agree_with_brute_force() {
    let mut invalid = 0;
    let mut complete = 0;
    let mut serial_violations = 0;
    for seed in 0..300 {
        let o = ListAppendOptions {
            seed,
            txns: 6,
            concurrency: 1 + (seed % 4) as usize,
            active_keys: 1 + (seed % 2) as usize,
            max_appends_per_key: 100,
            max_mops: 3,
            stale_read_rate: 0.4,
            info_rate: 0.1,
            fail_rate: 0.0,
            ..options(seed)
        };
        let ops = gen::generate(&o).pair().unwrap();
        let r = check_rw_register(&ops).unwrap();
        invalid += usize::from(!r.valid);
        check_against_brute_force(&ops, &r, seed);
        if !serial_order_exists(&ops, true) {
            serial_violations += 1;
            complete += usize::from(!r.valid);
        }
    }
    assert!(
        invalid > 50,
        "the faults produced only {invalid} invalid histories"
    );
    // Registers hide version orders, so the checker cannot see every violation; it must
    // still see most of them on these histories.
    eprintln!(
        "rw-register: caught {complete} of {serial_violations} strict-serializability violations"
    );
    assert!(
        complete * 10 >= serial_violations * 7,
        "{complete} of {serial_violations}"
    );
}

// ---------------------------------------------------------------- inputs

/// Elle's own test histories name no `:process`; each invocation is directly followed
/// by its completion, so they ran one at a time (one client, as Elle groups them).
#[test]
fn elle_edn_without_processes() {
    use splitbrain_checker::formats::{read_history, Format};
    let edn = r#"{:type :invoke, :f :txn, :value [[:w :x 1] [:w :y 1]]}
{:type :ok, :f :txn, :value [[:w :x 1] [:w :y 1]]}
{:type :invoke, :f :txn, :value [[:r :x nil] [:w :y 2]]}
{:type :ok, :f :txn, :value [[:r :x 1] [:w :y 2]]}
{:type :invoke, :f :txn, :value [[:r :y nil]]}
{:type :ok, :f :txn, :value [[:r :y 1]]}"#;
    let history = read_history(edn.as_bytes(), Format::Edn, "elle.edn").unwrap();
    let ops = history.pair().unwrap();
    assert!(ops.ops.iter().all(|o| o.process == ops.ops[0].process));
    let r = check_rw_register(&ops).unwrap();
    // The last read saw y = 1 after y = 2 was written (writes follow reads on one
    // process: 1 -> 2): a stale read in process and real-time order.
    assert_eq!(r.anomaly_types, ["G-single-process"], "{:#?}", r.anomalies);
    assert_eq!(r.not, ["strong-session-snapshot-isolation"]);

    // Overlapping operations without `:process` cannot be told apart.
    let overlapping = "{:type :invoke, :f :txn, :value [[:w :x 1]]}\n{:type :invoke, :f :txn, :value [[:w :x 2]]}\n";
    let e = read_history(overlapping.as_bytes(), Format::Edn, "elle.edn").unwrap_err();
    assert!(e.to_string().contains("directly followed"), "{e}");
}
