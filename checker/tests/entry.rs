//! The one entry point, `splitbrain_checker::check`: built-in models by name, a user's
//! own model through the `Model` trait (decided by the generic search), and the
//! transactional analyses, each named as it should be in results.

use serde_json::{json, Value};
use splitbrain_checker::elle::ElleOptions;
use splitbrain_checker::linear::{self, CheckOptions};
use splitbrain_checker::model::{Model, ModelError, ModelKind};
use splitbrain_checker::{
    check, AnalysisKind, Event, EventType, History, Operation, Operations, Options, Process,
    TxnAnalysis, Verdict, What,
};

fn ev(index: u64, p: u64, kind: EventType, f: &str, value: Value) -> Event {
    Event {
        index,
        time: index,
        process: Process::Client(p),
        kind,
        f: f.into(),
        key: None,
        value,
        node: None,
        error: None,
        line: None,
        extra: Default::default(),
    }
}

fn ops(events: Vec<Event>) -> Operations {
    History::new(events).pair().expect("a well-formed history")
}

/// A counter, which no built-in model is: `inc` adds one, `read` returns the count.
struct Counter;

#[derive(Debug, Clone, PartialEq)]
enum CounterOp {
    Inc,
    Read(Option<i64>),
}

impl Model for Counter {
    type Op = CounterOp;

    fn name(&self) -> &'static str {
        "counter"
    }

    fn default_initial(&self) -> Value {
        json!(0)
    }

    fn parse_op(&self, op: &Operation) -> Result<CounterOp, ModelError> {
        match op.f.as_str() {
            "inc" => Ok(CounterOp::Inc),
            "read" => Ok(CounterOp::Read(op.output.as_i64())),
            _ => Err(ModelError::UnknownModel(op.f.clone())),
        }
    }

    fn step(&self, state: &Value, op: &CounterOp) -> Option<Value> {
        let n = state.as_i64()?;
        match op {
            CounterOp::Inc => Some(json!(n + 1)),
            CounterOp::Read(Some(v)) => (*v == n).then(|| state.clone()),
            CounterOp::Read(None) => Some(state.clone()),
        }
    }

    fn is_read_only(&self, op: &CounterOp) -> bool {
        matches!(op, CounterOp::Read(_))
    }

    fn describe(&self, op: &CounterOp) -> String {
        match op {
            CounterOp::Read(Some(v)) => format!("read saw {v}"),
            other => format!("{other:?}"),
        }
    }

    fn states_phrase(&self) -> &'static str {
        "the counter could only be"
    }
}

/// Two concurrent increments, then a read of `seen`.
fn counter_history(seen: i64) -> Operations {
    use EventType::*;
    ops(vec![
        ev(0, 0, Invoke, "inc", Value::Null),
        ev(1, 1, Invoke, "inc", Value::Null),
        ev(2, 0, Ok, "inc", Value::Null),
        ev(3, 1, Ok, "inc", Value::Null),
        ev(4, 2, Invoke, "read", Value::Null),
        ev(5, 2, Ok, "read", json!(seen)),
    ])
}

#[test]
fn a_users_model_is_checked_by_the_generic_search() {
    let options = Options::default();
    let valid = check(
        &counter_history(2),
        &What::Model {
            model: &Counter,
            initial: None,
        },
        &options,
    )
    .unwrap();
    assert_eq!(valid.verdict(), Verdict::Valid);
    assert_eq!(valid.checker_name(), "linearizability");

    let invalid = check(
        &counter_history(1),
        &What::Model {
            model: &Counter,
            initial: None,
        },
        &options,
    )
    .unwrap();
    assert_eq!(invalid.verdict(), Verdict::Invalid);
    let splitbrain_checker::Analysis::Linearizability(r) = &invalid else {
        panic!("a linearizability result: {invalid:?}");
    };
    assert_eq!(r.model, "counter");
    assert_eq!(r.keys[0].method, "search");
    let w = r.keys[0].witness.as_ref().expect("a witness");
    assert_eq!(w.needed, "read saw 1, but the counter could only be 2 here");
    assert_eq!(w.prefix.len(), 2);
    assert_eq!(w.prefix[1].state, json!(2));

    // An initial value is the model's to read.
    let from_minus_one = check(
        &counter_history(1),
        &What::Model {
            model: &Counter,
            initial: Some(json!(-1)),
        },
        &options,
    )
    .unwrap();
    assert_eq!(from_minus_one.verdict(), Verdict::Valid);
}

#[test]
fn a_built_in_model_by_name_is_what_the_linear_checker_says() {
    use EventType::{Invoke, Ok as Done};
    let h = ops(vec![
        ev(0, 0, Invoke, "write", json!(1)),
        ev(1, 0, Done, "write", json!(1)),
        ev(2, 1, Invoke, "read", Value::Null),
        ev(3, 1, Done, "read", json!(2)),
    ]);
    for kind in ModelKind::ALL {
        let Ok(direct) = linear::check(&h, kind, None, &CheckOptions::default()) else {
            continue;
        };
        let what: AnalysisKind = kind.name().parse().unwrap();
        assert_eq!(what, AnalysisKind::Linearizability(kind));
        let entry = check(&h, &What::named(what, None), &Options::default()).unwrap();
        let splitbrain_checker::Analysis::Linearizability(r) = entry else {
            panic!("linearizability");
        };
        assert_eq!((r.verdict, r.model.as_str()), (direct.verdict, kind.name()));
        assert_eq!(r.keys.len(), direct.keys.len());
    }
}

#[test]
fn the_transactional_analyses_are_named_for_what_they_check() {
    use EventType::*;
    let h = ops(vec![
        ev(0, 0, Invoke, "txn", json!([["r", 1, null]])),
        ev(1, 0, Ok, "txn", json!([["r", 1, null]])),
    ]);
    for (name, analysis) in [
        ("list-append", TxnAnalysis::ListAppend),
        ("rw-register", TxnAnalysis::RwRegister),
    ] {
        let kind: AnalysisKind = name.parse().unwrap();
        assert_eq!(kind, AnalysisKind::Transactional(analysis));
        assert_eq!(kind.to_string(), name);
        let options = Options {
            elle: ElleOptions::default(),
            ..Options::default()
        };
        let a = check(&h, &What::named(kind, None), &options).unwrap();
        assert_eq!(a.verdict(), Verdict::Valid);
        assert_eq!(a.checker_name(), name);
    }
    assert!("queue".parse::<AnalysisKind>().is_err());
    let names: Vec<String> = AnalysisKind::all().iter().map(|k| k.to_string()).collect();
    assert_eq!(
        names,
        [
            "register",
            "cas-register",
            "mutex",
            "set",
            "multi-register",
            "kv-append",
            "list-append",
            "rw-register"
        ]
    );
}
