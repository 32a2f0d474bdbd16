//! The fast checker against the brute-force oracle.
//!
//! Thousands of tiny histories — generated from a model (linearizable by construction),
//! mutated (usually not), and fully random — across every model: `linear::check` must
//! give the oracle's verdict, and an invalid verdict's witness prefix must replay legally
//! through the sequential model in real-time order. The unique-values fast path is held
//! to the oracle on tiny histories and to the search on medium ones (hundreds of
//! operations, beyond the oracle's reach).
//!
//! Each case derives from a printed seed (ChaCha8 via `gen`), so a failure names the
//! seed that reproduces it. The suite is deterministic: fixed seed ranges, no time
//! limits on tiny cases.

use serde_json::Value;
use splitbrain_checker::gen::{self, GenOptions, Values};
use splitbrain_checker::linear::unique::{check_unique, UniqueOutcome};
use splitbrain_checker::linear::{self, CheckOptions, LinearizabilityResult, Verdict};
use splitbrain_checker::model::{ModelKind, ModelOp};
use splitbrain_checker::oracle::oracle_check;
use splitbrain_checker::{Event, EventType, History, Operation, Operations, Outcome, Process};
use std::str::FromStr;
use std::time::Duration;

fn single_threaded() -> CheckOptions {
    CheckOptions {
        threads: Some(1),
        ..CheckOptions::default()
    }
}

/// Runs one history through the checker and the oracle and asserts they agree; returns
/// the verdict. `what` names the case (model, generator, seed) for the failure message.
fn assert_agrees(h: &History, model: &str, initial: &Value, what: &str) -> bool {
    let ops = h
        .pair()
        .unwrap_or_else(|e| panic!("{what}: pairing failed: {e}"));
    let expected = oracle_check(&ops, model, initial)
        .unwrap_or_else(|e| panic!("{what}: oracle refused: {e}"));
    let kind = ModelKind::from_str(model).unwrap_or_else(|e| panic!("{what}: {e}"));
    let result = linear::check(&ops, kind, Some(initial), &single_threaded())
        .unwrap_or_else(|e| panic!("{what}: checker error: {e}\nhistory: {}", dump(h)));
    let want = if expected {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    assert_eq!(
        result.verdict,
        want,
        "{what}: checker says {:?}, oracle says {want:?}\nhistory:\n{}\nresult: {:#?}",
        result.verdict,
        dump(h),
        result.keys
    );
    if result.verdict == Verdict::Invalid {
        assert_witness_replays(&ops, kind, initial, &result, what);
    }
    expected
}

fn dump(h: &History) -> String {
    h.events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every invalid partition has a witness whose prefix is a legal sequential execution
/// (each step's state is what the model produces) and respects real-time order (no op
/// in the prefix was preceded in real time by an `ok` op of the partition that is not
/// earlier in the prefix), and whose stuck op is an `ok` op outside the prefix.
fn assert_witness_replays(
    ops: &Operations,
    kind: ModelKind,
    initial: &Value,
    result: &LinearizabilityResult,
    what: &str,
) {
    for key in result.keys.iter().filter(|k| k.verdict == Verdict::Invalid) {
        let w = key
            .witness
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: invalid key {:?} without a witness", key.key));
        let mut state = kind
            .initial_state(Some(initial))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let same_partition = |op: &Operation| !kind.uses_op_keys() || op.key == key.key;
        // Reads the model says observed nothing (Knossos' null reads in a register that
        // is never null) constrain nothing, so the prefix need not contain them.
        let parsed_partition: Vec<_> = ops
            .ops
            .iter()
            .filter(|o| same_partition(o))
            .map(|o| kind.parse_op(o).unwrap_or_else(|e| panic!("{what}: {e}")))
            .collect();
        let null_reads_free = kind.null_reads_observe_nothing(&state, parsed_partition.iter());
        let must_precede = |o: &Operation| {
            let unobserved =
                null_reads_free && kind.parse_op(o).ok() == Some(ModelOp::Read(Some(Value::Null)));
            o.outcome == Outcome::Ok && !unobserved
        };
        let mut placed: Vec<usize> = Vec::new();
        for step in &w.prefix {
            let op = &ops.ops[step.op];
            assert!(
                same_partition(op),
                "{what}: witness step {op} of another key"
            );
            let parsed = kind.parse_op(op).unwrap_or_else(|e| panic!("{what}: {e}"));
            let next = kind
                .step(&state, &parsed)
                .unwrap_or_else(|| panic!("{what}: witness step {op} is illegal in state {state}"));
            assert_eq!(next, step.state, "{what}: witness state after {op}");
            for earlier in ops.ops.iter().filter(|o| same_partition(o)) {
                if must_precede(earlier) && earlier.precedes(op) {
                    assert!(
                        placed.contains(&earlier.id),
                        "{what}: witness places {op} before {earlier}, which precedes it in real time"
                    );
                }
            }
            placed.push(op.id);
            state = next;
        }
        assert_eq!(w.stuck.outcome, Outcome::Ok, "{what}: stuck op is not ok");
        assert!(
            !placed.contains(&w.stuck.id),
            "{what}: the stuck op is in the prefix"
        );
    }
}

/// Tiny generator settings for a seed: 3–9 operations, 1–4 processes, 0–2 keys.
fn tiny(model: &str, seed: u64) -> GenOptions {
    let mut opts = GenOptions::new(model, seed);
    opts.ops = 3 + (seed % 7) as usize;
    opts.concurrency = 1 + (seed / 7 % 4) as usize;
    opts.keys = (seed / 3 % 3) as usize;
    opts.info_rate = [0.0, 0.15, 0.35][(seed / 5 % 3) as usize];
    opts.values = if matches!(seed % 4, 0) {
        Values::Unique
    } else {
        Values::Small(2 + (seed % 3) as u32)
    };
    opts
}

#[test]
fn simulated_histories_are_valid_for_oracle_and_checker() {
    let mut cases = 0;
    for model in gen::MODELS {
        let initial = gen::initial_value(model).unwrap();
        for seed in 0..600 {
            let opts = tiny(model, seed);
            let h = gen::generate(&opts).unwrap();
            let what = format!("{model} simulated seed {seed}");
            assert!(
                assert_agrees(&h, model, &initial, &what),
                "{what}: a simulated history must be linearizable"
            );
            cases += 1;
        }
    }
    assert_eq!(cases, 3600);
}

#[test]
fn mutated_histories_agree_with_oracle() {
    let mut cases = 0;
    let mut invalid = 0;
    for model in ["register", "cas-register"] {
        let initial = gen::initial_value(model).unwrap();
        for seed in 0..1000 {
            let opts = tiny(model, seed);
            let h = gen::generate(&opts).unwrap();
            let domain = match opts.values {
                Values::Small(n) => n,
                Values::Unique => 0,
            };
            let mutants = [
                gen::mutate_read_value(&h, domain, seed),
                gen::swap_write_values(&h, seed),
                gen::stale_read(&h, seed),
                gen::phantom_read(&h, seed),
            ];
            for (m, mutant) in mutants.into_iter().enumerate() {
                let Some(mutant) = mutant else { continue };
                let what = format!("{model} mutant {m} of seed {seed}");
                if !assert_agrees(&mutant, model, &initial, &what) {
                    invalid += 1;
                }
                cases += 1;
            }
        }
    }
    assert!(cases > 4000, "only {cases} mutants");
    // The mutators are meant to break histories; most must be invalid.
    assert!(invalid * 2 > cases, "{invalid} of {cases} mutants invalid");
}

#[test]
fn random_histories_agree_with_oracle() {
    let mut cases = 0;
    let mut valid = 0;
    for model in gen::MODELS {
        let initial = gen::initial_value(model).unwrap();
        for seed in 0..700 {
            let ops = 2 + (seed % 8) as usize;
            let concurrency = 1 + (seed / 7 % 4) as usize;
            let keys = (seed / 2 % 3) as usize;
            let h = gen::random_history(model, ops, concurrency, keys, 3, seed).unwrap();
            let what = format!("{model} random seed {seed}");
            if assert_agrees(&h, model, &initial, &what) {
                valid += 1;
            }
            cases += 1;
        }
    }
    assert_eq!(cases, 4200);
    // Both verdicts must be well represented for the comparison to mean something.
    assert!(
        valid > 200 && cases - valid > 200,
        "{valid} of {cases} valid"
    );
}

#[test]
fn guaranteed_breaks_are_invalid_on_larger_histories() {
    // stale_read and phantom_read break any unique-valued register history; these are
    // too large for the oracle, so the expected verdict is known by construction.
    for model in ["register", "cas-register"] {
        let initial = gen::initial_value(model).unwrap();
        let kind = ModelKind::from_str(model).unwrap();
        for seed in 0..40 {
            let mut opts = GenOptions::new(model, seed);
            opts.ops = 60;
            opts.concurrency = 4;
            opts.values = Values::Unique;
            opts.info_rate = 0.0;
            let h = gen::generate(&opts).unwrap();
            let ops = h.pair().unwrap();
            let r = linear::check(&ops, kind, Some(&initial), &single_threaded()).unwrap();
            assert_eq!(r.verdict, Verdict::Valid, "{model} seed {seed}");
            for mutant in [gen::stale_read(&h, seed), gen::phantom_read(&h, seed)]
                .into_iter()
                .flatten()
            {
                let ops = mutant.pair().unwrap();
                let r = linear::check(&ops, kind, Some(&initial), &single_threaded()).unwrap();
                assert_eq!(
                    r.verdict,
                    Verdict::Invalid,
                    "{model} seed {seed}: {}",
                    dump(&mutant)
                );
                assert_witness_replays(&ops, kind, &initial, &r, &format!("{model} seed {seed}"));
            }
        }
    }
}

/// The fast path's answer for a single-key history (no key field).
fn fast_path(h: &History, model: ModelKind, initial: &Value) -> UniqueOutcome {
    let ops = h.pair().unwrap();
    let kept: Vec<&Operation> = ops
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok || o.f != "read")
        .collect();
    check_unique(model, initial, &kept)
}

#[test]
fn unique_fast_path_agrees_with_oracle() {
    let initial = serde_json::json!(0);
    let mut decided = 0;
    let mut invalid = 0;
    for seed in 0..3000u64 {
        let ops = 2 + (seed % 8) as usize;
        let concurrency = 1 + (seed / 8 % 4) as usize;
        let info = [0.0, 0.2, 0.5][(seed / 3 % 3) as usize];
        let mut histories =
            vec![gen::random_unique_register_history(ops, concurrency, info, seed).unwrap()];
        let mut opts = GenOptions::new("register", seed);
        opts.keys = 0;
        opts.ops = ops;
        opts.concurrency = concurrency;
        opts.info_rate = info;
        opts.values = Values::Unique;
        let simulated = gen::generate(&opts).unwrap();
        histories.extend(gen::mutate_read_value(&simulated, 0, seed));
        histories.extend(gen::swap_write_values(&simulated, seed));
        histories.push(simulated);
        for (i, h) in histories.iter().enumerate() {
            let what = format!("unique seed {seed} history {i}");
            let expected = oracle_check(&h.pair().unwrap(), "register", &initial).unwrap();
            for model in [ModelKind::Register, ModelKind::CasRegister] {
                match fast_path(h, model, &initial) {
                    UniqueOutcome::NotApplicable => {}
                    UniqueOutcome::Valid => {
                        assert!(
                            expected,
                            "{what}: fast path says valid, oracle invalid\n{}",
                            dump(h)
                        );
                        decided += 1;
                    }
                    UniqueOutcome::Invalid { op, explanation } => {
                        assert!(
                            !expected,
                            "{what}: fast path says invalid (op {op}: {explanation}), oracle valid\n{}",
                            dump(h)
                        );
                        decided += 1;
                        invalid += 1;
                    }
                }
            }
        }
    }
    assert!(decided > 10_000, "fast path decided only {decided}");
    assert!(invalid > 2000, "fast path refuted only {invalid}");
}

#[test]
fn unique_fast_path_on_cas_histories_agrees_with_oracle() {
    // cas-register histories: the fast path must decline every `ok` cas, and may decide
    // histories whose only cas operations are `info` ones nobody observed.
    let initial = serde_json::json!(0);
    let (mut decided, mut with_info_cas) = (0, 0);
    for seed in 0..3000u64 {
        let mut opts = GenOptions::new("cas-register", seed);
        opts.keys = 0;
        opts.ops = 2 + (seed % 8) as usize;
        opts.concurrency = 1 + (seed / 8 % 4) as usize;
        opts.info_rate = [0.2, 0.5, 0.8][(seed / 3 % 3) as usize];
        opts.values = Values::Unique;
        let h = gen::generate(&opts).unwrap();
        let mut histories = vec![h.clone()];
        histories.extend(gen::mutate_read_value(&h, 0, seed));
        histories.extend(gen::stale_read(&h, seed));
        histories.extend(gen::phantom_read(&h, seed));
        for (i, h) in histories.iter().enumerate() {
            let what = format!("unique cas seed {seed} history {i}");
            let ops = h.pair().unwrap();
            let verdict = match fast_path(h, ModelKind::CasRegister, &initial) {
                UniqueOutcome::NotApplicable => continue,
                UniqueOutcome::Valid => true,
                UniqueOutcome::Invalid { .. } => false,
            };
            let expected = oracle_check(&ops, "cas-register", &initial).unwrap();
            assert_eq!(
                verdict,
                expected,
                "{what}: fast path vs oracle\n{}",
                dump(h)
            );
            decided += 1;
            if ops.ops.iter().any(|o| o.f == "cas") {
                with_info_cas += 1;
            }
        }
    }
    assert!(decided > 1000, "fast path decided only {decided}");
    assert!(
        with_info_cas > 200,
        "only {with_info_cas} decided with an info cas"
    );
}

/// `h` with one more write of the initial value, invoked and completed after every other
/// event: linearizable exactly when `h` is (everything `ok` precedes it and nothing reads
/// after it), but no longer unique-valued, so the checker must search.
fn force_search(h: &History) -> History {
    let mut out = h.clone();
    let next = out.events.len() as u64;
    for (i, kind) in [EventType::Invoke, EventType::Ok].into_iter().enumerate() {
        out.events.push(Event {
            index: next + i as u64,
            time: (next + i as u64) * 1_000,
            process: Process::Client(1_000_000),
            kind,
            f: "write".into(),
            key: None,
            value: serde_json::json!(0),
            node: None,
            error: None,
            line: None,
            extra: Default::default(),
        });
    }
    out
}

#[test]
fn unique_fast_path_agrees_with_search_on_medium_histories() {
    let initial = serde_json::json!(0);
    let budget = CheckOptions {
        time_limit: Some(Duration::from_secs(1)),
        threads: Some(1),
        ..CheckOptions::default()
    };
    let (mut compared, mut invalid, mut undecided) = (0, 0, 0);
    for seed in 0..60u64 {
        let mut opts = GenOptions::new("register", seed);
        opts.keys = 0;
        opts.ops = 100 + (seed % 4) as usize * 50;
        opts.concurrency = 3 + (seed % 6) as usize;
        opts.info_rate = [0.0, 0.03, 0.1][(seed % 3) as usize];
        opts.values = Values::Unique;
        let h = gen::generate(&opts).unwrap();
        // The checker takes the fast path on a unique-valued history, and it agrees.
        let direct = linear::check(
            &h.pair().unwrap(),
            ModelKind::Register,
            Some(&initial),
            &budget,
        )
        .unwrap();
        assert_eq!(direct.keys[0].method, "unique-values", "seed {seed}");
        assert_eq!(direct.verdict, Verdict::Valid, "seed {seed}");
        let mut histories = vec![h.clone()];
        histories.extend(gen::mutate_read_value(&h, 0, seed));
        histories.extend(gen::swap_write_values(&h, seed));
        histories.extend(gen::stale_read(&h, seed));
        for (i, h) in histories.iter().enumerate() {
            let what = format!("medium unique seed {seed} history {i}");
            let fast = match fast_path(h, ModelKind::Register, &initial) {
                UniqueOutcome::Valid => Verdict::Valid,
                UniqueOutcome::Invalid { .. } => Verdict::Invalid,
                UniqueOutcome::NotApplicable => panic!("{what}: fast path not applicable"),
            };
            let slow = linear::check(
                &force_search(h).pair().unwrap(),
                ModelKind::Register,
                Some(&initial),
                &budget,
            )
            .unwrap();
            assert_eq!(slow.keys[0].method, "search", "{what}");
            if slow.verdict == Verdict::Unknown {
                undecided += 1;
                continue;
            }
            assert_eq!(fast, slow.verdict, "{what}\n{}", dump(h));
            compared += 1;
            if fast == Verdict::Invalid {
                invalid += 1;
            }
        }
    }
    assert!(
        compared > 150,
        "only {compared} compared ({undecided} undecided by the search)"
    );
    assert!(invalid > 50, "only {invalid} invalid");
}

/// Makes one `ok` read (register) or get (kv-append) observe what an `info` update of
/// the same key wrote: a read returns its value, a get gains its token at the end. The
/// mutants the info reductions (drop unobserved, bound observed) are most likely to get
/// wrong: the update is now observed, maybe before it was invoked. `None` if the history
/// has no such pair.
fn observe_an_info_update(h: &History, seed: u64) -> Option<History> {
    let ops = h.pair().ok()?;
    let info: Vec<&Operation> = ops
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Info && o.f != "read" && o.f != "get")
        .collect();
    let reads: Vec<&Operation> = ops
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && (o.f == "read" || o.f == "get"))
        .collect();
    let pairs: Vec<(&Operation, &Operation)> = reads
        .iter()
        .flat_map(|r| {
            info.iter()
                .filter(|u| u.key == r.key)
                .map(move |u| (*r, *u))
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let (read, update) = pairs[(seed as usize * 7919) % pairs.len()];
    let written = match (update.f.as_str(), &update.input) {
        ("cas", Value::Array(pair)) => pair.get(1).cloned()?,
        (_, v) => v.clone(),
    };
    let observed = if read.f == "get" {
        let mut s = read.output.as_str().unwrap_or_default().to_string();
        if update.f == "put" {
            s.clear();
        }
        s.push_str(written.as_str()?);
        Value::String(s)
    } else {
        written
    };
    let mut out = h.clone();
    let at = read.complete_index? as usize;
    out.events[at].value = observed;
    Some(out)
}

/// Drops the last token of one `ok` kv-append get (`x3y` tokens), or, on odd seeds,
/// swaps its last two: a lost or reordered append.
fn perturb_a_get(h: &History, seed: u64) -> Option<History> {
    let gets: Vec<usize> = h
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == EventType::Ok && e.f == "get")
        .filter(|(_, e)| {
            e.value
                .as_str()
                .is_some_and(|s| s.matches('y').count() >= 2)
        })
        .map(|(i, _)| i)
        .collect();
    if gets.is_empty() {
        return None;
    }
    let at = gets[(seed as usize * 31) % gets.len()];
    let s = h.events[at].value.as_str()?;
    let mut tokens: Vec<&str> = s.split_inclusive('y').collect();
    if seed.is_multiple_of(2) {
        tokens.pop();
    } else {
        let n = tokens.len();
        tokens.swap(n - 1, n - 2);
    }
    let mut out = h.clone();
    out.events[at].value = Value::String(tokens.concat());
    Some(out)
}

#[test]
fn info_reductions_agree_with_oracle_on_info_heavy_unique_histories() {
    // Unique values and many indeterminate updates: the shape the reductions (drop info
    // updates nobody observed, bound observed ones by their first observer) act on.
    let (mut cases, mut invalid, mut dropped, mut bounded) = (0, 0, 0, 0);
    let mut append_order = 0;
    for model in ["register", "cas-register", "kv-append"] {
        let initial = gen::initial_value(model).unwrap();
        let kind = ModelKind::from_str(model).unwrap();
        for seed in 0..1000u64 {
            let mut opts = GenOptions::new(model, seed);
            opts.keys = (seed % 2) as usize;
            opts.ops = 3 + (seed % 7) as usize;
            opts.concurrency = 2 + (seed / 7 % 3) as usize;
            opts.info_rate = [0.3, 0.5, 0.7][(seed / 3 % 3) as usize];
            opts.values = Values::Unique;
            let h = gen::generate(&opts).unwrap();
            let mut histories = vec![h.clone()];
            histories.extend(observe_an_info_update(&h, seed));
            if model == "kv-append" {
                histories.extend(perturb_a_get(&h, seed));
            } else {
                histories.extend(gen::mutate_read_value(&h, 0, seed));
                histories.extend(gen::stale_read(&h, seed));
            }
            for (i, h) in histories.iter().enumerate() {
                let what = format!("{model} info-heavy seed {seed} history {i}");
                if !assert_agrees(h, model, &initial, &what) {
                    invalid += 1;
                }
                let r = linear::check(&h.pair().unwrap(), kind, Some(&initial), &single_threaded())
                    .unwrap();
                dropped += r.keys.iter().map(|k| k.info_dropped).sum::<usize>();
                bounded += r.keys.iter().map(|k| k.info_bounded).sum::<usize>();
                append_order += r.keys.iter().filter(|k| k.method == "append-order").count();
                cases += 1;
            }
        }
    }
    eprintln!("{cases} cases, {invalid} invalid, {dropped} info dropped, {bounded} bounded, {append_order} kv keys decided by append order");
    assert!(cases > 5000, "only {cases} cases");
    assert!(invalid > 1000, "only {invalid} invalid");
    assert!(
        append_order > 1000,
        "append order decided only {append_order} kv keys"
    );
    assert!(
        dropped > 500 && bounded > 500,
        "reductions barely exercised: {dropped} dropped, {bounded} bounded"
    );
}

/// `h` with one more put, of a string that is not a framed token, invoked and completed
/// after every other event: linearizable exactly when `h` is (nothing reads after it),
/// but neither the kv-append reductions nor the append-order translation apply any
/// more, so the checker searches the strings.
fn force_string_search(h: &History) -> History {
    let mut out = h.clone();
    let next = out.events.len() as u64;
    for (i, kind) in [EventType::Invoke, EventType::Ok].into_iter().enumerate() {
        out.events.push(Event {
            index: next + i as u64,
            time: (next + i as u64) * 1_000,
            process: Process::Client(1_000_000),
            kind,
            f: "put".into(),
            key: None,
            value: serde_json::json!("not a token"),
            node: None,
            error: None,
            line: None,
            extra: Default::default(),
        });
    }
    out
}

#[test]
fn append_order_agrees_with_string_search_on_medium_histories() {
    let initial = gen::initial_value("kv-append").unwrap();
    let budget = CheckOptions {
        time_limit: Some(Duration::from_secs(1)),
        threads: Some(1),
        ..CheckOptions::default()
    };
    let (mut compared, mut by_append_order, mut undecided) = (0, 0, 0);
    for seed in 0..60u64 {
        let mut opts = GenOptions::new("kv-append", seed);
        opts.keys = 0;
        opts.ops = 60 + (seed % 4) as usize * 30;
        opts.concurrency = 2 + (seed % 4) as usize;
        opts.info_rate = [0.0, 0.03, 0.1][(seed % 3) as usize];
        opts.values = Values::Unique;
        let h = gen::generate(&opts).unwrap();
        let mut histories = vec![h.clone()];
        histories.extend(perturb_a_get(&h, seed));
        histories.extend(perturb_a_get(&h, seed + 1));
        histories.extend(observe_an_info_update(&h, seed));
        for (i, h) in histories.iter().enumerate() {
            let what = format!("medium kv-append seed {seed} history {i}");
            let fast = linear::check(
                &h.pair().unwrap(),
                ModelKind::KvAppend,
                Some(&initial),
                &budget,
            )
            .unwrap();
            if i == 0 {
                assert_eq!(fast.keys[0].method, "append-order", "{what}");
                assert_eq!(fast.verdict, Verdict::Valid, "{what}");
            }
            if fast.keys[0].method != "append-order" {
                continue;
            }
            by_append_order += 1;
            let slow = linear::check(
                &force_string_search(h).pair().unwrap(),
                ModelKind::KvAppend,
                Some(&initial),
                &budget,
            )
            .unwrap();
            assert_eq!(slow.keys[0].method, "search", "{what}");
            if slow.verdict == Verdict::Unknown {
                undecided += 1;
                continue;
            }
            assert_eq!(
                slow.verdict,
                fast.verdict,
                "{what}: append order says {}\n{}",
                fast.verdict,
                dump(h)
            );
            compared += 1;
        }
    }
    eprintln!("{compared} of {by_append_order} compared, {undecided} undecided by the search");
    assert!(
        compared > 80,
        "only {compared} of {by_append_order} compared ({undecided} undecided by the search)"
    );
}

/// Makes one `ok` get return what an earlier `ok` get of the same key returned, where an
/// `ok` update of that key ran entirely between the two: with unique tokens the string
/// never comes back, so the result is never linearizable. `None` if there is no such
/// triple.
fn stale_get(h: &History, seed: u64) -> Option<History> {
    let ops = h.pair().ok()?;
    let gets: Vec<&Operation> = ops
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && o.f == "get")
        .collect();
    let updates: Vec<&Operation> = ops
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && o.f != "get")
        .collect();
    let mut choices = Vec::new();
    for g1 in &gets {
        for g2 in &gets {
            if g1.key != g2.key || g1.output == g2.output || !g1.precedes(g2) {
                continue;
            }
            if updates
                .iter()
                .any(|u| u.key == g1.key && g1.precedes(u) && u.precedes(g2))
            {
                choices.push((*g1, *g2));
            }
        }
    }
    if choices.is_empty() {
        return None;
    }
    let (g1, g2) = choices[(seed as usize * 7919) % choices.len()];
    let mut out = h.clone();
    out.events[g2.complete_index? as usize].value = g1.output.clone();
    Some(out)
}

/// Counts keys by (method, verdict) over a check of `h`.
fn methods(
    h: &History,
    kind: ModelKind,
    initial: &Value,
    counts: &mut std::collections::BTreeMap<(String, &'static str), usize>,
) {
    let r = linear::check(&h.pair().unwrap(), kind, Some(initial), &single_threaded()).unwrap();
    for k in &r.keys {
        *counts
            .entry((k.method.clone(), k.verdict.as_str()))
            .or_default() += 1;
    }
}

#[test]
fn version_chains_agree_with_oracle_in_both_directions() {
    // cas-register with unique values and successful cas: the shape the version-chains
    // procedure decides; valid by simulation, broken by stale, phantom and changed reads
    // and by reads of indeterminate updates.
    let initial = serde_json::json!(0);
    let mut counts = Default::default();
    for seed in 0..2500u64 {
        let mut opts = GenOptions::new("cas-register", seed);
        opts.keys = (seed % 2) as usize;
        opts.ops = 2 + (seed % 9) as usize;
        opts.concurrency = 1 + (seed / 9 % 4) as usize;
        opts.info_rate = [0.0, 0.15, 0.35][(seed / 3 % 3) as usize];
        opts.values = Values::Unique;
        let h = gen::generate(&opts).unwrap();
        let mut histories = vec![h.clone()];
        histories.extend(gen::mutate_read_value(&h, 0, seed));
        histories.extend(gen::stale_read(&h, seed));
        histories.extend(gen::phantom_read(&h, seed));
        histories.extend(observe_an_info_update(&h, seed));
        for (i, h) in histories.iter().enumerate() {
            let what = format!("version chains seed {seed} history {i}");
            assert_agrees(h, "cas-register", &initial, &what);
            methods(h, ModelKind::CasRegister, &initial, &mut counts);
        }
    }
    eprintln!("{counts:?}");
    let of = |v: Verdict| {
        counts
            .get(&("version-chains".to_string(), v.as_str()))
            .copied()
            .unwrap_or(0)
    };
    assert!(of(Verdict::Valid) > 1000, "{counts:?}");
    assert!(of(Verdict::Invalid) > 1000, "{counts:?}");
}

#[test]
fn append_order_agrees_with_oracle_in_both_directions() {
    // kv-append with unique tokens: decided by the translation to versions, valid and
    // invalid; broken by lost, reordered and stale gets and by gets of indeterminate
    // updates.
    let initial = gen::initial_value("kv-append").unwrap();
    let mut counts = Default::default();
    for seed in 0..2500u64 {
        let mut opts = GenOptions::new("kv-append", seed);
        opts.keys = (seed % 2) as usize;
        opts.ops = 2 + (seed % 9) as usize;
        opts.concurrency = 1 + (seed / 9 % 4) as usize;
        opts.info_rate = [0.0, 0.15, 0.35][(seed / 3 % 3) as usize];
        opts.values = Values::Unique;
        let h = gen::generate(&opts).unwrap();
        let mut histories = vec![h.clone()];
        histories.extend(perturb_a_get(&h, seed));
        histories.extend(stale_get(&h, seed));
        histories.extend(observe_an_info_update(&h, seed));
        for (i, h) in histories.iter().enumerate() {
            let what = format!("append order seed {seed} history {i}");
            assert_agrees(h, "kv-append", &initial, &what);
            methods(h, ModelKind::KvAppend, &initial, &mut counts);
        }
    }
    eprintln!("{counts:?}");
    let of = |v: Verdict| {
        counts
            .get(&("append-order".to_string(), v.as_str()))
            .copied()
            .unwrap_or(0)
    };
    assert!(of(Verdict::Valid) > 1000, "{counts:?}");
    assert!(of(Verdict::Invalid) > 500, "{counts:?}");
}

#[test]
fn version_chains_agree_with_search_on_medium_histories() {
    let initial = serde_json::json!(0);
    let budget = CheckOptions {
        time_limit: Some(Duration::from_secs(1)),
        threads: Some(1),
        ..CheckOptions::default()
    };
    let (mut compared, mut invalid, mut undecided) = (0, 0, 0);
    for seed in 0..40u64 {
        let mut opts = GenOptions::new("cas-register", seed);
        opts.keys = 0;
        opts.ops = 100 + (seed % 4) as usize * 50;
        opts.concurrency = 3 + (seed % 6) as usize;
        opts.info_rate = [0.0, 0.03, 0.1][(seed % 3) as usize];
        opts.values = Values::Unique;
        let h = gen::generate(&opts).unwrap();
        let mut histories = vec![h.clone()];
        histories.extend(gen::mutate_read_value(&h, 0, seed));
        histories.extend(gen::stale_read(&h, seed));
        histories.extend(observe_an_info_update(&h, seed));
        for (i, h) in histories.iter().enumerate() {
            let what = format!("medium cas seed {seed} history {i}");
            let fast = linear::check(
                &h.pair().unwrap(),
                ModelKind::CasRegister,
                Some(&initial),
                &budget,
            )
            .unwrap();
            if i == 0 {
                assert_eq!(fast.verdict, Verdict::Valid, "{what}");
            }
            assert_eq!(fast.keys[0].method, "version-chains", "{what}");
            let slow = linear::check(
                &force_search(h).pair().unwrap(),
                ModelKind::CasRegister,
                Some(&initial),
                &budget,
            )
            .unwrap();
            assert_eq!(slow.keys[0].method, "search", "{what}");
            if slow.verdict == Verdict::Unknown {
                undecided += 1;
                continue;
            }
            assert_eq!(fast.verdict, slow.verdict, "{what}\n{}", dump(h));
            compared += 1;
            if fast.verdict == Verdict::Invalid {
                invalid += 1;
            }
        }
    }
    eprintln!("{compared} compared, {invalid} invalid, {undecided} undecided by the search");
    assert!(
        compared > 100,
        "only {compared} compared ({undecided} undecided)"
    );
    assert!(invalid > 30, "only {invalid} invalid");
}

#[test]
fn one_stale_read_breaks_a_concurrent_history() {
    // Concurrency 30, unique values: one stale read (register) or stale get (kv-append)
    // must be found invalid by the decision procedures, with a witness that replays.
    for (model, method) in [
        ("cas-register", "version-chains"),
        ("kv-append", "append-order"),
    ] {
        let initial = gen::initial_value(model).unwrap();
        let kind = ModelKind::from_str(model).unwrap();
        for seed in 0..6u64 {
            let mut opts = GenOptions::new(model, seed);
            opts.keys = 0;
            opts.ops = 600;
            opts.concurrency = 30;
            opts.info_rate = 0.03;
            opts.values = Values::Unique;
            let h = gen::generate(&opts).unwrap();
            let r = linear::check(&h.pair().unwrap(), kind, Some(&initial), &single_threaded())
                .unwrap();
            assert_eq!(r.verdict, Verdict::Valid, "{model} seed {seed}");
            assert_eq!(r.keys[0].method, method, "{model} seed {seed}");
            let mutant = if model == "kv-append" {
                stale_get(&h, seed)
            } else {
                gen::stale_read(&h, seed)
            };
            let mutant =
                mutant.unwrap_or_else(|| panic!("{model} seed {seed}: nothing to make stale"));
            let ops = mutant.pair().unwrap();
            let r = linear::check(&ops, kind, Some(&initial), &single_threaded()).unwrap();
            let what = format!("{model} stale seed {seed}");
            assert_eq!(r.verdict, Verdict::Invalid, "{what}");
            assert_eq!(r.keys[0].method, method, "{what}");
            assert_witness_replays(&ops, kind, &initial, &r, &what);
        }
    }
}

/// `h` with every appended token `xNy` renamed to `xaMy`, M = N mod `m`: the same
/// execution with repeated append tokens (puts keep theirs), so linearizable exactly
/// when `h` is — relabelling every string the same way keeps every step legal, and the
/// mutants below break it the same way as before.
fn repeat_append_tokens(h: &History, m: u64) -> History {
    let rename = |s: &str| -> String {
        s.split_inclusive('y')
            .map(
                |t| match t.strip_prefix('x').and_then(|t| t.strip_suffix('y')) {
                    Some(n) => match n.parse::<u64>() {
                        Ok(n) => format!("xa{}y", n % m),
                        Err(_) => t.to_string(),
                    },
                    None => t.to_string(),
                },
            )
            .collect()
    };
    let mut out = h.clone();
    let puts: std::collections::HashSet<String> = h
        .events
        .iter()
        .filter(|e| e.f == "put")
        .filter_map(|e| e.value.as_str().map(str::to_string))
        .collect();
    for e in &mut out.events {
        if let Some(s) = e.value.as_str() {
            if e.f == "append" || e.f == "get" {
                // A put's token at the start of a get stays as it is.
                let (head, tail) = match puts.iter().find(|p| s.starts_with(p.as_str())) {
                    Some(p) if e.f == "get" => s.split_at(p.len()),
                    _ => ("", s),
                };
                e.value = Value::String(format!("{head}{}", rename(tail)));
            }
        }
    }
    out
}

#[test]
fn append_order_with_repeated_tokens_agrees_with_oracle_in_both_directions() {
    // Porcupine's kv logs append some tokens more than once: every way of matching the
    // repeated tokens to their appends is decided, and the key is valid iff one is.
    let initial = gen::initial_value("kv-append").unwrap();
    let mut counts = Default::default();
    for seed in 0..2500u64 {
        let mut opts = GenOptions::new("kv-append", seed);
        opts.keys = (seed % 2) as usize;
        opts.ops = 2 + (seed % 9) as usize;
        opts.concurrency = 1 + (seed / 9 % 4) as usize;
        opts.info_rate = [0.0, 0.15, 0.35][(seed / 3 % 3) as usize];
        opts.values = Values::Unique;
        let h = gen::generate(&opts).unwrap();
        let h = repeat_append_tokens(&h, 2 + seed % 2);
        let mut histories = vec![h.clone()];
        histories.extend(perturb_a_get(&h, seed));
        histories.extend(stale_get(&h, seed));
        histories.extend(observe_an_info_update(&h, seed));
        for (i, h) in histories.iter().enumerate() {
            let what = format!("repeated tokens seed {seed} history {i}");
            let valid = assert_agrees(h, "kv-append", &initial, &what);
            if i == 0 {
                assert!(valid, "{what}: relabelling keeps a history linearizable");
            }
            methods(h, ModelKind::KvAppend, &initial, &mut counts);
        }
    }
    eprintln!("{counts:?}");
    let of = |v: Verdict| {
        counts
            .get(&("append-order".to_string(), v.as_str()))
            .copied()
            .unwrap_or(0)
    };
    assert!(of(Verdict::Valid) > 1000, "{counts:?}");
    assert!(of(Verdict::Invalid) > 300, "{counts:?}");
}

/// Set histories with many indeterminate adds, and two mutants of each: one `ok` read
/// gains the element of an `info` add (maybe read before the add was invoked), and one
/// `ok` read loses an element. The set reductions (drop adds no read contains, bound
/// observed ones by their first reader) must agree with the oracle on all of them.
#[test]
fn set_info_reductions_agree_with_oracle() {
    let initial = gen::initial_value("set").unwrap();
    let (mut cases, mut invalid, mut dropped, mut bounded) = (0, 0, 0, 0);
    for seed in 0..1500u64 {
        let mut opts = GenOptions::new("set", seed);
        opts.keys = (seed % 2) as usize;
        opts.ops = 3 + (seed % 7) as usize;
        opts.concurrency = 2 + (seed / 7 % 3) as usize;
        opts.info_rate = [0.3, 0.5, 0.7][(seed / 3 % 3) as usize];
        opts.values = Values::Unique;
        let h = gen::generate(&opts).unwrap();
        let mut histories = vec![h.clone()];
        histories.extend(set_read_mutant(&h, seed, true));
        histories.extend(set_read_mutant(&h, seed, false));
        for (i, h) in histories.iter().enumerate() {
            let what = format!("set info-heavy seed {seed} history {i}");
            if !assert_agrees(h, "set", &initial, &what) {
                invalid += 1;
            }
            let r = linear::check(
                &h.pair().unwrap(),
                ModelKind::Set,
                Some(&initial),
                &single_threaded(),
            )
            .unwrap();
            dropped += r.keys.iter().map(|k| k.info_dropped).sum::<usize>();
            bounded += r.keys.iter().map(|k| k.info_bounded).sum::<usize>();
            cases += 1;
        }
    }
    eprintln!("{cases} cases, {invalid} invalid, {dropped} info adds dropped, {bounded} bounded");
    assert!(cases > 2500, "only {cases} cases");
    assert!(invalid > 300, "only {invalid} invalid");
    assert!(
        dropped > 500 && bounded > 100,
        "reductions barely exercised: {dropped} dropped, {bounded} bounded"
    );
}

/// One `ok` set read of `h` with the element of an `info` add of its key added
/// (`gain`), or with one of its elements removed. `None` when there is no such read.
fn set_read_mutant(h: &History, seed: u64, gain: bool) -> Option<History> {
    let ops = h.pair().ok()?;
    let reads: Vec<&Operation> = ops
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && o.f == "read" && o.output.is_array())
        .collect();
    let read = *reads.get((seed as usize * 7919) % reads.len().max(1))?;
    let mut items = read.output.as_array()?.clone();
    if gain {
        let adds: Vec<&Operation> = ops
            .ops
            .iter()
            .filter(|o| o.outcome == Outcome::Info && o.f == "add" && o.key == read.key)
            .filter(|o| !items.contains(&o.input))
            .collect();
        let add = adds.get((seed as usize * 31) % adds.len().max(1))?;
        items.push(add.input.clone());
    } else {
        if items.is_empty() {
            return None;
        }
        items.remove((seed as usize) % items.len());
    }
    let mut out = h.clone();
    out.events[read.complete_index? as usize].value = Value::Array(items);
    Some(out)
}
