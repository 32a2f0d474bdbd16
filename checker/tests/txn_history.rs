//! A history builder shared by the transactional checkers' tests (list-append and
//! rw-register): transactions invoked and completed by hand, indices in call order.

use serde_json::{json, Value};
use splitbrain_checker::elle::ElleResult;
use splitbrain_checker::{Event, EventType, History, Operations, Process};

/// Builds a history event by event; indices are assigned in call order.
#[derive(Default)]
pub struct H {
    pub events: Vec<Event>,
}

/// The invocation form of a transaction: reads carry `null`.
pub fn invocation(mops: &Value) -> Value {
    match mops {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|m| match m {
                    Value::Array(p) if p.len() == 3 && p[0] == "r" => json!(["r", p[1], null]),
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

impl H {
    pub fn push(&mut self, p: u64, kind: EventType, value: Value) -> &mut Self {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time: index * 100,
            process: Process::Client(p),
            kind,
            f: "txn".into(),
            key: None,
            value,
            node: None,
            error: None,
            line: None,
            extra: Default::default(),
        });
        self
    }
    pub fn invoke(&mut self, p: u64, mops: Value) -> &mut Self {
        self.push(p, EventType::Invoke, invocation(&mops))
    }
    pub fn ok(&mut self, p: u64, mops: Value) -> &mut Self {
        self.push(p, EventType::Ok, mops)
    }
    pub fn fail(&mut self, p: u64, mops: Value) -> &mut Self {
        self.push(p, EventType::Fail, invocation(&mops))
    }
    pub fn info(&mut self, p: u64, mops: Value) -> &mut Self {
        self.push(p, EventType::Info, invocation(&mops))
    }
    /// A transaction invoked and completed `ok` at once.
    pub fn txn(&mut self, p: u64, mops: Value) -> &mut Self {
        self.invoke(p, mops.clone()).ok(p, mops)
    }
    /// Transactions all invoked, then all completed: every order is allowed by time.
    pub fn concurrent(&mut self, txns: &[Value]) -> &mut Self {
        for (p, t) in txns.iter().enumerate() {
            self.invoke(p as u64, t.clone());
        }
        for (p, t) in txns.iter().enumerate() {
            self.ok(p as u64, t.clone());
        }
        self
    }
    pub fn ops(&self) -> Operations {
        History::new(self.events.clone())
            .pair()
            .expect("a well-formed history")
    }
}

/// The first cycle of `kind`, as (txn, edge to next).
pub fn cycle(result: &ElleResult, kind: &str) -> Vec<(usize, String)> {
    let anomaly = result
        .anomalies
        .iter()
        .find(|a| a.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:#?}", result.anomalies));
    anomaly
        .cycle
        .iter()
        .map(|s| (s.txn, s.edge_to_next.clone()))
        .collect()
}

pub fn steps(s: &[(usize, &str)]) -> Vec<(usize, String)> {
    s.iter().map(|(t, e)| (*t, e.to_string())).collect()
}
