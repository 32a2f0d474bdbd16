//! The history data model (see the README, "The history format"): events as recorded, and operations as the
//! checkers see them.
//!
//! An [`Event`] is one line of `history.jsonl`: an invocation or a completion. Checkers do
//! not work on events but on [`Operation`]s, an invocation paired with its completion, so
//! pairing lives here, once, with the errors a user needs when a history is malformed.
//! Real-time order is taken from the event *index* (the order events were recorded in),
//! not from wall-clock `time`, exactly as Jepsen does: two events never tie.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// What an event says about its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The operation started.
    Invoke,
    /// The operation took effect.
    Ok,
    /// The operation certainly did not take effect.
    Fail,
    /// Unknown: it may take effect at any later time, or never.
    Info,
}

impl EventType {
    /// Parses the textual name used by every format (`invoke`, `ok`, `fail`, `info`).
    pub fn parse(name: &str) -> Option<EventType> {
        match name {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who performed an event: a logical client process, or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Process::from_json(&v).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`process` must be a non-negative integer or \"nemesis\"; got {v}"
            ))
        })
    }
}

impl Process {
    pub fn from_json(v: &Value) -> Option<Process> {
        match v {
            Value::Number(n) => n.as_u64().map(Process::Client),
            Value::String(s) if s == "nemesis" => Some(Process::Nemesis),
            _ => None,
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// A key of an independent (per-key) history. Integers and strings are both common
/// (Jepsen's independent keys are integers, our workloads use strings); they never
/// compare equal to each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Key {
    Int(i64),
    Str(String),
}

impl Key {
    pub fn from_json(v: &Value) -> Option<Key> {
        match v {
            Value::Number(n) => n.as_i64().map(Key::Int),
            Value::String(s) => Some(Key::Str(s.clone())),
            _ => None,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(i) => write!(f, "{i}"),
            Key::Str(s) => f.write_str(s),
        }
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::Str(s.to_string())
    }
}

/// One recorded event: one line of `history.jsonl`.
///
/// Histories are read by the JSONL reader (`formats`), the one place that checks a line
/// and says which line is wrong and why; there is no serde `Deserialize` for an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Dense position in the history, from 0. Also the real-time order.
    pub index: u64,
    /// Nanoseconds since the run started (monotonic). Informational: ordering uses `index`.
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The operation's function: `read`, `write`, `cas`, `acquire`, `txn`, ...
    pub f: String,
    /// The key for per-key (independent) histories; absent for a single object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// Invocation argument, or the completion's result (e.g. the value read).
    pub value: Value,
    /// The node the client talked to, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why an operation failed or is indeterminate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Anything else the client recorded about the event (the etcd client's `revision`,
    /// an external adapter's own fields), written as top-level keys of the line and read
    /// back from the keys the format does not know. Checkers ignore it. A key that names
    /// one of the fields above ([`Event::FIELDS`]) is not written.
    #[serde(flatten, serialize_with = "serialize_extra")]
    pub extra: serde_json::Map<String, Value>,
    /// The 1-based line of the source file this event came from, for error messages.
    /// Not part of the format.
    #[serde(skip)]
    pub line: Option<usize>,
}

impl Event {
    /// The keys of a `history.jsonl` line that are event fields, not [`Event::extra`].
    pub const FIELDS: &'static [&'static str] = &[
        "index", "time", "process", "type", "f", "key", "value", "node", "error",
    ];
}

/// Writes the extra fields that do not collide with an event field (an empty map writes
/// nothing, as flattening an empty map adds no key).
fn serialize_extra<S: serde::Serializer>(
    extra: &serde_json::Map<String, Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(
        extra
            .iter()
            .filter(|(k, _)| !Event::FIELDS.contains(&k.as_str())),
    )
}

/// A whole history, in recorded order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub events: Vec<Event>,
}

/// How an operation ended, for the checkers. Failed operations never reach a checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Completed `ok`: it took effect between invoke and completion.
    Ok,
    /// Completed `info`, or never completed: it may take effect at any time after its
    /// invocation, or never.
    Info,
}

/// An invocation paired with its completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Position in [`Operations::ops`]; stable for witnesses and reports.
    pub id: usize,
    pub process: u64,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// The invocation's value (the argument).
    pub input: Value,
    /// The completion's value for `ok` operations (e.g. what a read returned); the
    /// invocation's value otherwise.
    pub output: Value,
    pub outcome: Outcome,
    /// Event index of the invocation.
    pub invoke_index: u64,
    /// Event index of the completion; `None` for indeterminate operations, which return
    /// at infinity.
    pub complete_index: Option<u64>,
    /// Nanosecond timestamps, for display.
    pub invoke_time: u64,
    pub complete_time: Option<u64>,
    /// The node the client talked to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Operation {
    /// Event index at which the operation returns; `u64::MAX` when it never does.
    pub fn return_index(&self) -> u64 {
        self.complete_index.unwrap_or(u64::MAX)
    }

    /// True if `self` completed before `other` was invoked (real-time order).
    pub fn precedes(&self, other: &Operation) -> bool {
        self.return_index() < other.invoke_index
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{} {}", self.process, self.f)?;
        if let Some(k) = &self.key {
            write!(f, " [{k}]")?;
        }
        match (&self.input, &self.output) {
            (i, o) if i == o => write!(f, " {i}")?,
            (Value::Null, o) => write!(f, " -> {o}")?,
            (i, o) => write!(f, " {i} -> {o}")?,
        }
        if self.outcome == Outcome::Info {
            f.write_str(" (info)")?;
        }
        Ok(())
    }
}

/// The result of pairing a history: operations that checkers consider, plus counts of
/// what was set aside.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Operations {
    /// Operations that completed `ok` or `info` (or never completed), in invocation order.
    pub ops: Vec<Operation>,
    /// Operations that completed `fail`: they never took effect.
    pub failed: Vec<Operation>,
    /// Nemesis events, in order (they never take part in a consistency check).
    pub nemesis: Vec<Event>,
}

impl Operations {
    /// Splits operations by key. Operations without a key go under `None`.
    pub fn by_key(&self) -> BTreeMap<Option<Key>, Vec<&Operation>> {
        let mut map: BTreeMap<Option<Key>, Vec<&Operation>> = BTreeMap::new();
        for op in &self.ops {
            map.entry(op.key.clone()).or_default().push(op);
        }
        map
    }
}

/// Why a history cannot be paired into operations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PairError {
    #[error("{}: process {process} completes `{f}` ({kind}) but has no open invocation", at(*line, *index))]
    CompletionWithoutInvoke {
        line: Option<usize>,
        index: u64,
        process: u64,
        f: String,
        kind: EventType,
    },
    #[error("{}: process {process} invokes `{f}` while its invocation at {} is still open (a process has at most one outstanding operation)", at(*line, *index), at(*open_line, *open_index))]
    DuplicateInvoke {
        line: Option<usize>,
        index: u64,
        process: u64,
        f: String,
        open_line: Option<usize>,
        open_index: u64,
    },
    #[error("{}: process {process} completes `{completed}` but its open invocation is `{invoked}`", at(*line, *index))]
    MismatchedCompletion {
        line: Option<usize>,
        index: u64,
        process: u64,
        invoked: String,
        completed: String,
    },
    #[error("{}: completion for process {process} is for key {completed} but the invocation was for key {invoked}", at(*line, *index))]
    MismatchedKey {
        line: Option<usize>,
        index: u64,
        process: u64,
        invoked: String,
        completed: String,
    },
}

fn at(line: Option<usize>, index: u64) -> String {
    match line {
        Some(l) => format!("line {l}"),
        None => format!("event {index}"),
    }
}

/// A client invocation and the completion paired with it, as positions in
/// [`History::events`] (see [`History::pair_lenient`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPair {
    pub process: u64,
    /// Position of the invocation.
    pub invoke: usize,
    /// Position of the completion; `None` if the operation never completed.
    pub complete: Option<usize>,
}

/// What [`History::pair_lenient`] found: the one pairing of a history, from which the
/// strict [`Operations`] are derived ([`PairedHistory::operations`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LenientPairs {
    /// Every client invocation, in order, with its completion when one was found.
    pub pairs: Vec<EventPair>,
    /// Positions of client completions that had no open invocation of their process
    /// (what [`History::pair`] rejects as `CompletionWithoutInvoke`), set aside.
    pub orphans: Vec<usize>,
    /// Invocations that found their process still open, as (position of the
    /// invocation, position of the open invocation it replaced): what [`History::pair`]
    /// rejects as `DuplicateInvoke`.
    pub reinvoked: Vec<(usize, usize)>,
}

/// A history paired once: the events and their [`LenientPairs`], kept together so that
/// positions in the pairs always refer to these events.
///
/// A run pairs its history here once; the checkers take the strict
/// [`PairedHistory::operations`] derived from it, and the reports (statistics, timeline)
/// take the lenient pairs, which exist even for a history the checkers reject.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairedHistory {
    history: History,
    pairs: LenientPairs,
}

impl PairedHistory {
    /// Pairs `history` ([`History::pair_lenient`]).
    pub fn new(history: History) -> PairedHistory {
        let pairs = history.pair_lenient();
        PairedHistory { history, pairs }
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn events(&self) -> &[Event] {
        &self.history.events
    }

    /// The lenient pairing: every invocation with its completion, and the orphans.
    pub fn lenient(&self) -> &LenientPairs {
        &self.pairs
    }

    /// The operations the checkers see, or the first pairing problem in recorded order
    /// (as [`History::pair`]); derived from the lenient pairs without pairing again.
    pub fn operations(&self) -> Result<Operations, PairError> {
        self.history.operations_from(&self.pairs)
    }

    pub fn into_history(self) -> History {
        self.history
    }
}

impl From<History> for PairedHistory {
    fn from(history: History) -> PairedHistory {
        PairedHistory::new(history)
    }
}

impl History {
    pub fn new(events: Vec<Event>) -> History {
        History { events }
    }

    /// Pairs each completion with the open invocation of its process, for displaying and
    /// counting any history, even one [`History::pair`] rejects: nothing is an error. A
    /// second invocation of a process replaces the first as the open one (which stays
    /// without completion; both are listed in `reinvoked`); a completion with no open
    /// invocation is an orphan; the completion's `f` and key are not compared with the
    /// invocation's. This is the one pairing pass: [`History::pair`] is derived from it.
    pub fn pair_lenient(&self) -> LenientPairs {
        // process -> slot in `out.pairs` of its open invocation
        let mut open: hashbrown::HashMap<u64, usize> = hashbrown::HashMap::new();
        let mut out = LenientPairs::default();
        for (pos, e) in self.events.iter().enumerate() {
            let Process::Client(p) = e.process else {
                continue;
            };
            match e.kind {
                EventType::Invoke => {
                    if let Some(prev) = open.insert(p, out.pairs.len()) {
                        out.reinvoked.push((pos, out.pairs[prev].invoke));
                    }
                    out.pairs.push(EventPair {
                        process: p,
                        invoke: pos,
                        complete: None,
                    });
                }
                _ => match open.remove(&p) {
                    Some(slot) => out.pairs[slot].complete = Some(pos),
                    None => out.orphans.push(pos),
                },
            }
        }
        out
    }

    /// Pairs invocations with completions (Jepsen semantics):
    /// - `ok` completions take effect between invoke and completion;
    /// - `fail` completions are set aside: they never took effect;
    /// - `info` completions and invocations that never complete return at infinity.
    ///
    /// Process numbers must not invoke twice without completing in between, and a
    /// completion must match its invocation's `f` (and key, when it names one). The
    /// error is the first such problem in recorded order. The lenient pairing plus these
    /// checks; [`PairedHistory::operations`] is the same without pairing again.
    pub fn pair(&self) -> Result<Operations, PairError> {
        self.operations_from(&self.pair_lenient())
    }

    /// The strict pairing derived from the lenient one of the same history: the operations,
    /// or the earliest problem in recorded order.
    fn operations_from(&self, lenient: &LenientPairs) -> Result<Operations, PairError> {
        let events = &self.events;
        // Up to the first problem the lenient pairing is exactly the strict one, so the
        // earliest problem found in it is the one a strict pass would stop at.
        let mut first: Option<(usize, PairError)> = None;
        let mut found = |pos: usize, error: PairError| {
            if first.as_ref().is_none_or(|(p, _)| pos < *p) {
                first = Some((pos, error));
            }
        };
        let client = |e: &Event| match e.process {
            Process::Client(p) => p,
            Process::Nemesis => unreachable!("nemesis events are never paired"),
        };
        for &(pos, open) in &lenient.reinvoked {
            let (e, o) = (&events[pos], &events[open]);
            found(
                pos,
                PairError::DuplicateInvoke {
                    line: e.line,
                    index: e.index,
                    process: client(e),
                    f: e.f.clone(),
                    open_line: o.line,
                    open_index: o.index,
                },
            );
        }
        for &pos in &lenient.orphans {
            let e = &events[pos];
            found(
                pos,
                PairError::CompletionWithoutInvoke {
                    line: e.line,
                    index: e.index,
                    process: client(e),
                    f: e.f.clone(),
                    kind: e.kind,
                },
            );
        }
        for pair in &lenient.pairs {
            let Some(c) = pair.complete else { continue };
            let (inv, e) = (&events[pair.invoke], &events[c]);
            if inv.f != e.f {
                found(
                    c,
                    PairError::MismatchedCompletion {
                        line: e.line,
                        index: e.index,
                        process: pair.process,
                        invoked: inv.f.clone(),
                        completed: e.f.clone(),
                    },
                );
            } else if e.key.is_some() && inv.key != e.key {
                found(
                    c,
                    PairError::MismatchedKey {
                        line: e.line,
                        index: e.index,
                        process: pair.process,
                        invoked: inv.key.as_ref().map_or("(none)".into(), |k| k.to_string()),
                        completed: e.key.as_ref().map_or("(none)".into(), |k| k.to_string()),
                    },
                );
            }
        }
        if let Some((_, error)) = first {
            return Err(error);
        }
        let nemesis = events
            .iter()
            .filter(|e| e.process == Process::Nemesis)
            .cloned()
            .collect();
        let pending = lenient.pairs.iter().map(|p| (p.invoke, p.complete));
        let mut out = Operations {
            nemesis,
            ..Default::default()
        };
        for (inv_pos, comp_pos) in pending {
            let inv = &events[inv_pos];
            let comp = comp_pos.map(|c| &events[c]);
            let p = match inv.process {
                Process::Client(p) => p,
                Process::Nemesis => unreachable!("nemesis events are never paired"),
            };
            let (outcome, output, complete_index, complete_time, failed) = match comp {
                Some(c) if c.kind == EventType::Ok => (
                    Outcome::Ok,
                    c.value.clone(),
                    Some(c.index),
                    Some(c.time),
                    false,
                ),
                Some(c) if c.kind == EventType::Fail => (
                    Outcome::Info,
                    c.value.clone(),
                    Some(c.index),
                    Some(c.time),
                    true,
                ),
                // info, or never completed: returns at infinity
                _ => (Outcome::Info, inv.value.clone(), None, None, false),
            };
            let target = if failed {
                &mut out.failed
            } else {
                &mut out.ops
            };
            target.push(Operation {
                id: target.len(),
                process: p,
                f: inv.f.clone(),
                key: inv.key.clone(),
                input: inv.value.clone(),
                output,
                outcome,
                invoke_index: inv.index,
                complete_index,
                invoke_time: inv.time,
                complete_time,
                node: inv.node.clone(),
            });
        }
        Ok(out)
    }
}

/// A history of client events from `(process, type, f, value)` steps, indices in order:
/// the unit tests' way to write small histories.
#[cfg(test)]
pub(crate) fn history_of(steps: &[(u64, EventType, &str, Value)]) -> History {
    let events = steps
        .iter()
        .enumerate()
        .map(|(i, (p, kind, f, value))| Event {
            index: i as u64,
            time: 0,
            process: Process::Client(*p),
            kind: *kind,
            f: f.to_string(),
            key: None,
            value: value.clone(),
            node: None,
            error: None,
            line: None,
            extra: Default::default(),
        })
        .collect();
    History::new(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(index: u64, process: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            index,
            time: index * 10,
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
            line: Some(index as usize + 1),
            extra: Default::default(),
        }
    }

    #[test]
    fn pairs_ok_fail_info_and_pending() {
        let h = History::new(vec![
            ev(0, 0, EventType::Invoke, "write", json!(1)),
            ev(1, 1, EventType::Invoke, "read", Value::Null),
            ev(2, 0, EventType::Ok, "write", json!(1)),
            ev(3, 1, EventType::Ok, "read", json!(1)),
            ev(4, 2, EventType::Invoke, "cas", json!([1, 2])),
            ev(5, 2, EventType::Fail, "cas", json!([1, 2])),
            ev(6, 3, EventType::Invoke, "write", json!(3)),
            ev(7, 3, EventType::Info, "write", json!(3)),
            ev(8, 4, EventType::Invoke, "write", json!(4)),
        ]);
        let ops = h.pair().unwrap();
        assert_eq!(ops.ops.len(), 4);
        assert_eq!(ops.failed.len(), 1);
        assert_eq!(ops.ops[1].output, json!(1));
        assert_eq!(ops.ops[1].complete_index, Some(3));
        assert_eq!(ops.ops[2].outcome, Outcome::Info);
        assert_eq!(ops.ops[2].return_index(), u64::MAX);
        assert_eq!(ops.ops[3].outcome, Outcome::Info);
        assert!(ops.ops[0].precedes(&ops.ops[2]));
        assert!(!ops.ops[0].precedes(&ops.ops[1]));
    }

    #[test]
    fn rejects_completion_without_invoke() {
        let h = History::new(vec![ev(0, 7, EventType::Ok, "read", json!(1))]);
        let err = h.pair().unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(err.to_string().contains("no open invocation"), "{err}");
    }

    #[test]
    fn rejects_duplicate_invoke() {
        let h = History::new(vec![
            ev(0, 1, EventType::Invoke, "read", Value::Null),
            ev(1, 1, EventType::Invoke, "read", Value::Null),
        ]);
        let err = h.pair().unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn rejects_mismatched_completion() {
        let h = History::new(vec![
            ev(0, 1, EventType::Invoke, "read", Value::Null),
            ev(1, 1, EventType::Ok, "write", json!(1)),
        ]);
        assert!(matches!(
            h.pair(),
            Err(PairError::MismatchedCompletion { .. })
        ));
    }

    #[test]
    fn lenient_pairing_keeps_every_invocation_and_sets_orphans_aside() {
        let h = History::new(vec![
            ev(0, 1, EventType::Ok, "read", json!(1)),
            ev(1, 1, EventType::Invoke, "read", Value::Null),
            ev(2, 1, EventType::Invoke, "write", json!(2)),
            ev(3, 1, EventType::Ok, "write", json!(2)),
            ev(4, 2, EventType::Invoke, "read", Value::Null),
        ]);
        assert!(h.pair().is_err());
        let l = h.pair_lenient();
        assert_eq!(l.orphans, vec![0]);
        let pairs: Vec<(u64, usize, Option<usize>)> = l
            .pairs
            .iter()
            .map(|p| (p.process, p.invoke, p.complete))
            .collect();
        assert_eq!(pairs, vec![(1, 1, None), (1, 2, Some(3)), (2, 4, None)]);
        assert_eq!(l.reinvoked, vec![(2, 1)]);
    }

    #[test]
    fn paired_history_derives_the_strict_pairing_from_the_lenient_one() {
        let ok = History::new(vec![
            ev(0, 0, EventType::Invoke, "write", json!(1)),
            ev(1, 1, EventType::Invoke, "read", Value::Null),
            ev(2, 0, EventType::Fail, "write", json!(1)),
            ev(3, 1, EventType::Ok, "read", json!(1)),
            ev(4, 2, EventType::Invoke, "write", json!(2)),
        ]);
        let reinvoked = History::new(vec![
            ev(0, 1, EventType::Invoke, "read", Value::Null),
            ev(1, 1, EventType::Invoke, "read", Value::Null),
        ]);
        let orphan = History::new(vec![ev(0, 7, EventType::Ok, "read", json!(1))]);
        for h in [ok, reinvoked, orphan] {
            let paired = PairedHistory::new(h.clone());
            assert_eq!(paired.operations(), h.pair());
            assert_eq!(paired.lenient(), &h.pair_lenient());
            assert_eq!(paired.into_history(), h);
        }
    }

    /// Reads one JSONL line with the one history reader.
    fn read_line(line: &str) -> Event {
        let read = crate::formats::read_jsonl_until_error(line.as_bytes(), "test");
        assert!(read.error.is_none(), "{:?}", read.error);
        let mut events = read.history.events;
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    #[test]
    fn event_json_round_trip() {
        let line = r#"{"index":0,"time":9500,"process":"nemesis","type":"info","f":"start-partition","value":{"n1":["n3","n4"]}}"#;
        let e = read_line(line);
        assert_eq!(e.process, Process::Nemesis);
        assert_eq!(serde_json::to_string(&e).unwrap(), line);
        let line = r#"{"index":0,"time":1200,"process":0,"type":"invoke","f":"write","key":"k3","value":5,"node":"n1"}"#;
        let e = read_line(line);
        assert_eq!(e.key, Some(Key::Str("k3".into())));
        assert_eq!(serde_json::to_string(&e).unwrap(), line);
    }

    #[test]
    fn extra_fields_are_written_as_top_level_keys_and_read_back() {
        let mut e = ev(0, 3, EventType::Ok, "read", json!(1));
        e.extra.insert("revision".into(), json!(12));
        e.extra
            .insert("leader".into(), json!({"id": "n2", "term": [1, 2]}));
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(
            line,
            r#"{"index":0,"time":0,"process":3,"type":"ok","f":"read","value":1,"leader":{"id":"n2","term":[1,2]},"revision":12}"#
        );
        let back = read_line(&line);
        assert_eq!(back.extra, e.extra);
        assert_eq!(back, e);
    }

    #[test]
    fn extra_keys_naming_an_event_field_are_not_written() {
        let mut e = ev(0, 3, EventType::Ok, "read", json!(1));
        e.extra.insert("f".into(), json!("write"));
        e.extra.insert("line".into(), json!(7));
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(
            line,
            r#"{"index":0,"time":0,"process":3,"type":"ok","f":"read","value":1,"line":7}"#
        );
        assert_eq!(read_line(&line).extra.get("line"), Some(&json!(7)));
    }
}
