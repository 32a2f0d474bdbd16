//! The unique-values fast path: a polynomial decision for register histories in which
//! every written value is distinct, tried before the exponential search.
//!
//! When no two writes write the same value (and none writes the initial value), every
//! read names the one write it observed. The problem then stops being a search: Gibbons
//! and Korach ("Testing shared memories", 1997) decide it in O(n log n) with *clusters*
//! and *zones*:
//! - the cluster of a write is the write plus every read that returned its value (the
//!   initial value is a virtual write that precedes everything);
//! - with `f` the earliest completion and `s` the latest invocation in a cluster, its
//!   zone is *forward* `[f, s]` when `f < s` (the value had to stay visible across that
//!   whole span) and *backward* `[s, f]` otherwise (the whole cluster can happen at one
//!   instant inside it);
//! - the history is linearizable iff no read completes before its write is invoked, no
//!   two forward zones overlap, and no backward zone lies inside a forward zone.
//!
//! Why that is enough (sketch): a forward cluster can be linearized within (f - ε, s + ε)
//! with its write first (its write is invoked before `f`, or some read would precede it);
//! a backward cluster at one point of its zone; disjoint forward zones and backward
//! points outside them order every cluster, and every operation's point lies within its
//! own interval. Event indices are distinct, so zone end points never tie.
//!
//! Indeterminate (`info`) operations: a read that did not complete `ok` observed nothing
//! and is ignored; an `info` write nobody read may be dropped (it may never have taken
//! effect, and if it did, nobody saw it — removing it from any linearization leaves a
//! legal one); an `info` write somebody read took effect and returns at infinity.
//! The same holds for an `info` cas whose new value nobody read.
//!
//! Scope (returns [`UniqueOutcome::NotApplicable`] otherwise): the `register` model, and
//! `cas-register` histories with no `ok` cas and no `info` cas whose new value was read. A
//! successful cas glues its expected value's cluster to its own (version chains); that
//! is decided by `chains`, which generalises the clusters below to chains of versions. Soundness comes first: anything outside this shape, or any
//! operation that does not parse, is left to the search. What an operation means (which
//! reads observed a value, what a write writes) comes from the model's own parse, so
//! this path cannot drift from the model's semantics.

use crate::history::{Operation, Outcome};
use crate::model::{Decision, ModelKind, ModelOp};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// What the fast path concluded for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UniqueOutcome {
    /// The history is not of the shape this decision covers; run the search.
    NotApplicable,
    Valid,
    /// Not linearizable; `op` is the [`Operation::id`] of an operation that cannot be
    /// placed, `explanation` says why.
    Invalid {
        op: usize,
        explanation: String,
    },
}

/// Position on the event-index time line; the initial value's virtual write sits before
/// every event and an `info` completion after every event.
type Instant = i128;
const BEFORE_ALL: Instant = -1;
const AFTER_ALL: Instant = i128::MAX;

fn invoked(op: &Operation) -> Instant {
    Instant::from(op.invoke_index)
}

fn returned(op: &Operation) -> Instant {
    match (op.outcome, op.complete_index) {
        (Outcome::Ok, Some(i)) => Instant::from(i),
        _ => AFTER_ALL,
    }
}

/// A write and the reads that observed it.
struct Cluster<'a> {
    /// `None` for the initial value.
    write: Option<&'a Operation>,
    reads: Vec<&'a Operation>,
}

impl Cluster<'_> {
    fn write_invoked(&self) -> Instant {
        self.write.map_or(BEFORE_ALL, invoked)
    }

    fn write_returned(&self) -> Instant {
        self.write.map_or(BEFORE_ALL, returned)
    }

    /// Earliest completion in the cluster.
    fn first_return(&self) -> Instant {
        self.reads
            .iter()
            .map(|r| returned(r))
            .fold(self.write_returned(), Instant::min)
    }

    /// Latest invocation in the cluster.
    fn last_invoke(&self) -> Instant {
        self.reads
            .iter()
            .map(|r| invoked(r))
            .fold(self.write_invoked(), Instant::max)
    }

    /// The operation invoked last in the cluster, to name in an explanation.
    fn latest_op(&self) -> Option<&Operation> {
        let last = self.last_invoke();
        self.reads
            .iter()
            .copied()
            .chain(self.write)
            .find(|op| invoked(op) == last)
    }

    fn describe(&self) -> String {
        match self.write {
            Some(w) => format!("the value written by op {} ({w})", w.id),
            None => "the initial value".to_string(),
        }
    }
}

/// Decides linearizability of one key's operations when every written value is unique
/// (see the module doc). `ops` are the key's `ok` and `info` operations (failed ones
/// excluded); `initial` is the key's initial value.
pub fn check_unique(model: ModelKind, initial: &Value, ops: &[&Operation]) -> UniqueOutcome {
    if model.procedures().decide != Decision::VersionChains {
        return UniqueOutcome::NotApplicable;
    }
    let Ok(parsed) = ops
        .iter()
        .map(|op| model.parse_op(op))
        .collect::<Result<Vec<ModelOp>, _>>()
    else {
        return UniqueOutcome::NotApplicable;
    };
    check_parsed(initial, ops, &parsed)
}

/// [`check_unique`] of a register partition already parsed: `ops[i]` parses to
/// `parsed[i]`.
pub(crate) fn check_parsed(
    initial: &Value,
    ops: &[&Operation],
    parsed: &[ModelOp],
) -> UniqueOutcome {
    // JSON text is a faithful key: `Value` equality is equality of the text.
    let key_of = |v: &Value| v.to_string();

    // Pass 1: the writes, the reads, and uniqueness of written values. What an
    // operation means (which reads constrain the state, what a write writes) is the
    // model's own parse, so this path follows the model's semantics exactly.
    let mut writes: Vec<&Operation> = Vec::new();
    let mut write_values: Vec<Value> = Vec::new();
    let mut cas_new_values: Vec<Value> = Vec::new();
    let mut reads: Vec<(&Operation, Value)> = Vec::new();
    for (&op, parsed) in ops.iter().zip(parsed) {
        match parsed.clone() {
            // A read that observed nothing constrains nothing.
            ModelOp::Read(None) => {}
            ModelOp::Read(Some(v)) => reads.push((op, v)),
            ModelOp::Write(v) => {
                writes.push(op);
                write_values.push(v);
            }
            ModelOp::Cas(_, new) => {
                if op.outcome == Outcome::Ok {
                    // A successful cas chains two clusters: not decided here.
                    return UniqueOutcome::NotApplicable;
                }
                cas_new_values.push(new);
            }
            _ => return UniqueOutcome::NotApplicable,
        }
    }
    let initial_key = key_of(initial);
    let mut written: HashMap<String, usize> = HashMap::new();
    for (i, v) in write_values.iter().enumerate() {
        let k = key_of(v);
        if k == initial_key || written.insert(k, i).is_some() {
            return UniqueOutcome::NotApplicable;
        }
    }
    let mut cas_written: HashSet<String> = HashSet::new();
    for v in &cas_new_values {
        let k = key_of(v);
        if k == initial_key || written.contains_key(&k) || !cas_written.insert(k) {
            return UniqueOutcome::NotApplicable;
        }
    }

    // Pass 2: clusters. Index 0 is the initial value; 1 + i is writes[i].
    let mut clusters: Vec<Cluster> = std::iter::once(Cluster {
        write: None,
        reads: Vec::new(),
    })
    .chain(writes.iter().map(|w| Cluster {
        write: Some(*w),
        reads: Vec::new(),
    }))
    .collect();
    for (r, seen) in &reads {
        let r = *r;
        let k = key_of(seen);
        if k == initial_key {
            clusters[0].reads.push(r);
        } else if let Some(&i) = written.get(&k) {
            clusters[1 + i].reads.push(r);
        } else if cas_written.contains(&k) {
            // An info cas whose new value was observed: its cluster is glued to the
            // expected value's. Not decided here.
            return UniqueOutcome::NotApplicable;
        } else {
            return UniqueOutcome::Invalid {
                op: r.id,
                explanation: format!(
                    "{r} returned {seen}, a value no operation wrote and not the initial value {initial}"
                ),
            };
        }
    }

    // A read cannot observe a write invoked after the read returned.
    for c in &clusters {
        if let Some(w) = c.write {
            if let Some(r) = c.reads.iter().find(|r| returned(r) < invoked(w)) {
                return UniqueOutcome::Invalid {
                    op: r.id,
                    explanation: format!(
                        "{r} returned {}, but the only write of that value ({w}) was invoked after the read completed",
                        r.output
                    ),
                };
            }
        }
    }

    // Zones. Clusters nobody read impose nothing: the initial value's virtual write goes
    // first, and an unread write is overwritten at once (an `info` one may not have
    // happened at all — still nothing to place). An `ok` unread write still needs a
    // point inside its own interval, so it is kept as a (backward) zone.
    let mut forward: Vec<(Instant, Instant, usize)> = Vec::new();
    let mut backward: Vec<(Instant, Instant, usize)> = Vec::new();
    for (i, c) in clusters.iter().enumerate() {
        let droppable = match c.write {
            None => c.reads.is_empty(),
            Some(w) => c.reads.is_empty() && w.outcome == Outcome::Info,
        };
        if droppable {
            continue;
        }
        let (f, s) = (c.first_return(), c.last_invoke());
        if f < s {
            forward.push((f, s, i));
        } else {
            backward.push((s, f, i));
        }
    }
    forward.sort_unstable();
    for pair in forward.windows(2) {
        let ((f1, s1, a), (f2, s2, b)) = (pair[0], pair[1]);
        if f2 <= s1 {
            let (first, second) = (&clusters[a], &clusters[b]);
            let op = second
                .latest_op()
                .or(first.latest_op())
                .map_or(0, |op| op.id);
            return UniqueOutcome::Invalid {
                op,
                explanation: format!(
                    "{} and {} must each stay visible over overlapping spans of the history (events {}..{} and {}..{}): one of them would have to be overwritten and then come back",
                    first.describe(),
                    second.describe(),
                    f1.max(0),
                    s1,
                    f2.max(0),
                    s2
                ),
            };
        }
    }
    for &(s, f, b) in &backward {
        // The only forward zone that could contain [s, f] is the last one starting
        // before s (forward zones are disjoint and sorted).
        let at = forward.partition_point(|&(fz, _, _)| fz < s);
        if at == 0 {
            continue;
        }
        let (fz, sz, a) = forward[at - 1];
        if f < sz {
            let (outer, inner) = (&clusters[a], &clusters[b]);
            let op = inner.latest_op().map_or(0, |op| op.id);
            return UniqueOutcome::Invalid {
                op,
                explanation: format!(
                    "{} must take effect between events {} and {}, but {} must stay visible from event {} to event {}, covering that whole window",
                    inner.describe(),
                    s.max(0),
                    f,
                    outer.describe(),
                    fz.max(0),
                    sz
                ),
            };
        }
    }
    UniqueOutcome::Valid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, History, Process};
    use serde_json::json;
    use EventType::*;

    fn ev(process: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            index: 0,
            time: 0,
            process: Process::Client(process),
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

    fn run(model: ModelKind, mut events: Vec<Event>) -> UniqueOutcome {
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        let ops = History::new(events).pair().unwrap();
        let refs: Vec<&Operation> = ops.ops.iter().collect();
        check_unique(model, &json!(0), &refs)
    }

    #[test]
    fn sequential_and_concurrent_reads_are_valid() {
        let h = vec![
            ev(0, Invoke, "write", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(0)),
            ev(2, Invoke, "read", Value::Null),
            ev(0, Ok, "write", json!(1)),
            ev(2, Ok, "read", json!(1)),
        ];
        assert_eq!(run(ModelKind::Register, h), UniqueOutcome::Valid);
    }

    #[test]
    fn read_of_unwritten_value_is_invalid() {
        let h = vec![
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(9)),
        ];
        assert!(matches!(
            run(ModelKind::Register, h),
            UniqueOutcome::Invalid { op: 0, .. }
        ));
    }

    #[test]
    fn read_before_its_write_is_invalid() {
        let h = vec![
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(1)),
            ev(0, Invoke, "write", json!(1)),
            ev(0, Ok, "write", json!(1)),
        ];
        assert!(matches!(
            run(ModelKind::Register, h),
            UniqueOutcome::Invalid { op: 0, .. }
        ));
    }

    #[test]
    fn stale_read_is_invalid() {
        // write 1; write 2; read 1: the forward zone of 1 spans the whole write of 2.
        let h = vec![
            ev(0, Invoke, "write", json!(1)),
            ev(0, Ok, "write", json!(1)),
            ev(0, Invoke, "write", json!(2)),
            ev(0, Ok, "write", json!(2)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(1)),
        ];
        assert!(matches!(
            run(ModelKind::Register, h),
            UniqueOutcome::Invalid { .. }
        ));
    }

    #[test]
    fn value_coming_back_is_invalid() {
        // read 1, read 2, read 1 in sequence: forward zones of 1 and 2 overlap.
        let h = vec![
            ev(0, Invoke, "write", json!(1)),
            ev(1, Invoke, "write", json!(2)),
            ev(2, Invoke, "read", Value::Null),
            ev(2, Ok, "read", json!(1)),
            ev(2, Invoke, "read", Value::Null),
            ev(2, Ok, "read", json!(2)),
            ev(2, Invoke, "read", Value::Null),
            ev(2, Ok, "read", json!(1)),
            ev(0, Ok, "write", json!(1)),
            ev(1, Ok, "write", json!(2)),
        ];
        assert!(matches!(
            run(ModelKind::Register, h),
            UniqueOutcome::Invalid { .. }
        ));
    }

    #[test]
    fn unread_info_write_is_dropped_and_read_one_is_kept() {
        let unread = vec![
            ev(0, Invoke, "write", json!(1)),
            ev(0, Info, "write", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(0)),
        ];
        assert_eq!(run(ModelKind::Register, unread), UniqueOutcome::Valid);
        let read_late = vec![
            ev(0, Invoke, "write", json!(1)),
            ev(0, Info, "write", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(0)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(0)),
        ];
        assert!(matches!(
            run(ModelKind::Register, read_late),
            UniqueOutcome::Invalid { .. }
        ));
    }

    #[test]
    fn unread_ok_write_inside_a_forward_zone_is_invalid() {
        // read 0 ... (write 1 completes) ... read 0: the initial value must stay
        // visible across the whole write of 1, which nobody read but did happen.
        let h = vec![
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(0)),
            ev(0, Invoke, "write", json!(1)),
            ev(0, Ok, "write", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(0)),
        ];
        assert!(matches!(
            run(ModelKind::Register, h),
            UniqueOutcome::Invalid { .. }
        ));
    }

    #[test]
    fn out_of_scope_shapes_are_not_applicable() {
        let repeated = vec![
            ev(0, Invoke, "write", json!(1)),
            ev(0, Ok, "write", json!(1)),
            ev(0, Invoke, "write", json!(1)),
            ev(0, Ok, "write", json!(1)),
        ];
        assert_eq!(
            run(ModelKind::Register, repeated),
            UniqueOutcome::NotApplicable
        );
        let writes_initial = vec![
            ev(0, Invoke, "write", json!(0)),
            ev(0, Ok, "write", json!(0)),
        ];
        assert_eq!(
            run(ModelKind::Register, writes_initial),
            UniqueOutcome::NotApplicable
        );
        let cas = vec![
            ev(0, Invoke, "cas", json!([0, 1])),
            ev(0, Ok, "cas", json!([0, 1])),
        ];
        assert_eq!(
            run(ModelKind::CasRegister, cas),
            UniqueOutcome::NotApplicable
        );
        assert_eq!(
            check_unique(ModelKind::Set, &json!([]), &[]),
            UniqueOutcome::NotApplicable
        );
    }
}
