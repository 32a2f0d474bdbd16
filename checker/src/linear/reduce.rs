//! Sound reductions of a register partition before it is decided: indeterminate
//! (`info`) writes that cannot matter are dropped, and those that must have taken effect
//! before a known point get that point as their return.
//!
//! An `info` operation returns at infinity: the search must keep it pending to the very
//! end, may linearize it anywhere after its invocation, or never. A few hundred of them
//! in a long history multiply the configurations the search can reach (each is in or out
//! of the linearized set, independently) and keep its cache entries wide. Both
//! reductions below preserve linearizability exactly (the reduced partition is
//! linearizable iff the original is), so every decision procedure may run on the
//! reduced partition. They apply to the `register` and `cas-register` models as below,
//! and to `kv-append` under a precondition on its strings (see `kv_append`).
//!
//! **Dropping an unobserved `info` update.** Let W be an `info` write of `v`, or an
//! `info` `cas [a v]`, such that no kept operation *observes* `v`: no `ok` read returned
//! `v` and no kept cas expects `v`. Then the partition without W is linearizable iff it
//! is with W:
//! - a linearization without W is one with W (an `info` operation may never take
//!   effect);
//! - given a linearization L containing W, remove W. The operation right after W in L ran
//!   in state `v`, so it observes nothing (a write, whose legality does not depend on the
//!   state) or there is none; every other operation sees the same state as in L. Real-time
//!   order only loses constraints. So L without W is legal.
//!
//! The argument holds for the partition as it stands at each step, so it applies
//! repeatedly: dropping `info cas [a v]` removes one observer of `a`, which may leave an
//! `info` write of `a` unobserved in turn (cas chains of indeterminate operations).
//!
//! **Bounding an observed `info` update.** Let W write `v` (write or cas), where `v` is
//! not the initial value and W is the only kept operation that writes `v`. Every
//! operation observing `v` then runs after W in any linearization (only W produces `v`),
//! so W takes effect before the earliest completion `r` of an `ok` observer of `v` and
//! must take effect at all. Giving W the return `r` (as if it had completed `ok` there)
//! adds no constraint a linearization did not already satisfy: W's point is before that
//! observer's point, which is before `r` and hence before anything invoked after `r`.
//! W stops being pending to infinity, and the search treats it like any `ok` operation.
//! If `r` falls before W's invocation, nothing is changed (the partition is invalid, and
//! the pre-checks say why).
//!
//! **The set model** (see `set_adds`) takes both reductions in their set form, since a
//! set only grows and adds commute: an `info` add of `e` that no `ok` read contains is
//! dropped (in any linearization every read precedes it, else that read would contain
//! `e`; removing it changes no read's state), and the only add of an `e` that is not in
//! the initial set, observed by some `ok` read, is bounded by the earliest completion of
//! such a read (the read's state contains `e`, which only that add can put there).
//! Without this, a few dozen timed-out adds that never took effect leave the search
//! 2^n subsets to track until the final read.

use crate::history::{Operation, Outcome};
use crate::model::{ModelOp, Reduce};
use hashbrown::HashMap;
use serde_json::Value;

/// The reduced partition, as positions into the operations given to [`reduce`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reduction {
    /// Which operations remain.
    pub(crate) keep: Vec<bool>,
    /// For each operation, the return an `info` one is given (`None`: unchanged).
    pub(crate) returns: Vec<Option<u64>>,
    /// How many `info` operations were dropped, and how many bounded.
    pub(crate) dropped: usize,
    pub(crate) bounded: usize,
}

impl Reduction {
    /// Nothing reduced: every one of `n` operations kept as it is.
    pub(crate) fn none(n: usize) -> Reduction {
        Reduction {
            keep: vec![true; n],
            returns: vec![None; n],
            dropped: 0,
            bounded: 0,
        }
    }
}

/// Computes both reductions for one partition; `ops[i]` parses to `parsed[i]`, and every
/// operation given is kept by the caller (reads that observed nothing already removed).
pub(crate) fn reduce(
    which: Reduce,
    initial: &Value,
    ops: &[&Operation],
    parsed: &[ModelOp],
) -> Reduction {
    let n = ops.len();
    let mut out = Reduction::none(n);
    match which {
        Reduce::Register => {}
        Reduce::KvAppend => {
            kv_append(initial, ops, parsed, &mut out);
            return out;
        }
        Reduce::SetAdds => {
            set_adds(initial, ops, parsed, &mut out);
            return out;
        }
        Reduce::None => return out,
    }
    // Values by JSON text (equal exactly when the values are), as small ids.
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut id = |v: &Value| {
        let next = ids.len() as u32;
        *ids.entry(v.to_string()).or_insert(next)
    };
    let initial_id = id(initial);
    // What each operation writes and observes.
    let mut writes: Vec<Option<u32>> = vec![None; n];
    let mut observes: Vec<Option<u32>> = vec![None; n];
    for (i, (op, p)) in ops.iter().zip(parsed).enumerate() {
        match p {
            ModelOp::Read(Some(v)) if op.outcome == Outcome::Ok => observes[i] = Some(id(v)),
            ModelOp::Write(v) => writes[i] = Some(id(v)),
            ModelOp::Cas(a, b) => {
                observes[i] = Some(id(a));
                writes[i] = Some(id(b));
            }
            _ => {}
        }
    }
    let values = ids.len();
    let mut observers = vec![0u32; values];
    for v in observes.iter().flatten() {
        observers[*v as usize] += 1;
    }
    // Indeterminate updates of each value, to revisit when the value loses observers.
    let mut info_writers: Vec<Vec<u32>> = vec![Vec::new(); values];
    let mut work: Vec<u32> = Vec::new();
    for i in 0..n {
        if let (Some(v), Outcome::Info) = (writes[i], ops[i].outcome) {
            info_writers[v as usize].push(i as u32);
            work.push(i as u32);
        }
    }
    while let Some(i) = work.pop() {
        let i = i as usize;
        let Some(v) = writes[i] else { continue };
        if !out.keep[i] || observers[v as usize] > 0 {
            continue;
        }
        out.keep[i] = false;
        out.dropped += 1;
        if let Some(a) = observes[i] {
            observers[a as usize] -= 1;
            if observers[a as usize] == 0 {
                work.extend_from_slice(&info_writers[a as usize]);
            }
        }
    }

    // Bounding: the earliest completion of an `ok` observer of each value, and how many
    // kept operations write it.
    let mut earliest = vec![u64::MAX; values];
    let mut writers = vec![0u32; values];
    for i in (0..n).filter(|&i| out.keep[i]) {
        if let (Some(v), Some(c)) = (observes[i], ops[i].complete_index) {
            if ops[i].outcome == Outcome::Ok {
                earliest[v as usize] = earliest[v as usize].min(c);
            }
        }
        if let Some(v) = writes[i] {
            writers[v as usize] += 1;
        }
    }
    for i in (0..n).filter(|&i| out.keep[i] && ops[i].outcome == Outcome::Info) {
        let Some(v) = writes[i] else { continue };
        let r = earliest[v as usize];
        if v != initial_id && writers[v as usize] == 1 && r != u64::MAX && r > ops[i].invoke_index {
            out.returns[i] = Some(r);
            out.bounded += 1;
        }
    }
    out
}

/// Both reductions for the set model (see the module doc).
fn set_adds(initial: &Value, ops: &[&Operation], parsed: &[ModelOp], out: &mut Reduction) {
    let text = |v: &Value| v.to_string();
    let initially: hashbrown::HashSet<String> =
        initial.as_array().into_iter().flatten().map(text).collect();
    // Per element: the earliest completion of an `ok` read containing it, and how many
    // adds of it there are.
    let mut earliest: HashMap<String, u64> = HashMap::new();
    let mut adds: HashMap<String, u32> = HashMap::new();
    for (op, p) in ops.iter().zip(parsed) {
        match p {
            ModelOp::ReadSet(Some(items)) if op.outcome == Outcome::Ok => {
                let Some(c) = op.complete_index else { continue };
                for item in items {
                    let e = earliest.entry(text(item)).or_insert(u64::MAX);
                    *e = (*e).min(c);
                }
            }
            ModelOp::Add(v) => *adds.entry(text(v)).or_insert(0) += 1,
            _ => {}
        }
    }
    for (i, (op, p)) in ops.iter().zip(parsed).enumerate() {
        let (ModelOp::Add(v), Outcome::Info) = (p, op.outcome) else {
            continue;
        };
        let element = text(v);
        match earliest.get(&element) {
            None => {
                out.keep[i] = false;
                out.dropped += 1;
            }
            Some(&r)
                if !initially.contains(&element)
                    && adds.get(&element) == Some(&1)
                    && r > op.invoke_index =>
            {
                out.returns[i] = Some(r);
                out.bounded += 1;
            }
            Some(_) => {}
        }
    }
}

/// The delimiters of framed tokens: every update argument (and a non-empty initial
/// value) starts with `open`, ends with `close`, and has neither inside.
pub(crate) struct Frame {
    open: u8,
    close: u8,
}

impl Frame {
    /// The framing all of `texts` share, if they are all framed tokens of one framing
    /// with ASCII delimiters (ASCII bytes never occur inside a multi-byte character).
    pub(crate) fn of<'a>(mut texts: impl Iterator<Item = &'a str>) -> Option<Frame> {
        let first = texts.next()?.as_bytes();
        let frame = Frame {
            open: *first.first()?,
            close: *first.last()?,
        };
        let ok = frame.open.is_ascii() && frame.close.is_ascii() && frame.open != frame.close;
        (ok && frame.is_token(first) && texts.all(|t| frame.is_token(t.as_bytes())))
            .then_some(frame)
    }

    fn is_token(&self, t: &[u8]) -> bool {
        t.len() >= 2
            && t[0] == self.open
            && t[t.len() - 1] == self.close
            && !t[1..t.len() - 1]
                .iter()
                .any(|&b| b == self.open || b == self.close)
    }

    /// The tokens `s` is the concatenation of, or `None` if it is not one.
    pub(crate) fn split<'a>(&self, s: &'a str) -> Option<Vec<&'a str>> {
        let mut tokens = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let end = rest.bytes().position(|b| b == self.close)? + 1;
            let (token, tail) = rest.split_at(end);
            if !self.is_token(token.as_bytes()) {
                return None;
            }
            tokens.push(token);
            rest = tail;
        }
        Some(tokens)
    }
}

/// The same reductions for `kv-append`, where they need one more precondition: every
/// update writes one *framed token* (see [`Frame`]; our workloads append `x17y`-style
/// tokens), and every `ok` get returned a concatenation of such tokens.
///
/// Framing makes "the state contains `t`" mean "`t` is one of the state's tokens": an
/// occurrence of `t` starts at an `open` byte, which only starts arguments, and ends at
/// the first `close` after it, which ends that same argument. Then:
/// - **dropping**: an `info` put or append of `t` that is a token of no `ok` get. After it
///   takes effect, every state up to the next put contains `t` (appends only extend; a put
///   of `t` starts the state with it), so no get can run in that span; the span ends at a
///   put (which ignores the state) or at the end, and removing the update changes no
///   observed state. Gets are the only operations that observe the state.
/// - **bounding**: an `info` update that is the only one writing `t`, where `t` is not a
///   token of the initial value: any state containing `t` comes after it, so it precedes
///   every `ok` get containing `t`, and takes the earliest one's completion as return.
///
/// A get whose result is not a concatenation of tokens can never be linearized (no state
/// has that form); rather than reason about it, nothing is reduced, and the pre-checks
/// and the search report it.
fn kv_append(initial: &Value, ops: &[&Operation], parsed: &[ModelOp], out: &mut Reduction) {
    let initial = initial.as_str().unwrap_or_default();
    fn argument(p: &ModelOp) -> Option<&str> {
        match p {
            ModelOp::Put(s) | ModelOp::Append(s) => Some(s.as_str()),
            _ => None,
        }
    }
    let texts = parsed
        .iter()
        .filter_map(argument)
        .chain((!initial.is_empty()).then_some(initial));
    let Some(frame) = Frame::of(texts) else {
        return;
    };
    let Some(initial_tokens) = frame.split(initial) else {
        return;
    };
    // Per token: the earliest completion of an ok get containing it, and its writers.
    let mut earliest: HashMap<&str, u64> = HashMap::new();
    for (op, p) in ops.iter().zip(parsed) {
        let (ModelOp::Get(Some(s)), Outcome::Ok) = (p, op.outcome) else {
            continue;
        };
        let Some(tokens) = frame.split(s) else {
            return;
        };
        let at = op.return_index();
        for t in tokens {
            let e = earliest.entry(t).or_insert(at);
            *e = (*e).min(at);
        }
    }
    let mut writers: HashMap<&str, u32> = HashMap::new();
    for t in parsed.iter().filter_map(argument) {
        *writers.entry(t).or_default() += 1;
    }
    for (i, (op, p)) in ops.iter().zip(parsed).enumerate() {
        let (Some(t), Outcome::Info) = (argument(p), op.outcome) else {
            continue;
        };
        match earliest.get(t) {
            None => {
                out.keep[i] = false;
                out.dropped += 1;
            }
            Some(&r) => {
                if writers.get(t) == Some(&1) && !initial_tokens.contains(&t) && r > op.invoke_index
                {
                    out.returns[i] = Some(r);
                    out.bounded += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, History, Process};
    use crate::model::ModelKind;
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

    fn run(events: Vec<Event>) -> Reduction {
        let mut events = events;
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        let ops = History::new(events).pair().unwrap();
        let kept: Vec<&Operation> = ops
            .ops
            .iter()
            .filter(|o| o.outcome == Outcome::Ok || o.f != "read")
            .collect();
        let parsed: Vec<ModelOp> = kept
            .iter()
            .map(|o| ModelKind::CasRegister.parse_op(o).unwrap())
            .collect();
        reduce(Reduce::Register, &json!(0), &kept, &parsed)
    }

    #[test]
    fn unobserved_info_cas_chain_is_dropped_whole() {
        // info write 1, info cas 1→2, info cas 2→3; nobody reads 1, 2 or 3
        let r = run(vec![
            ev(0, Invoke, "write", json!(1)),
            ev(1, Invoke, "cas", json!([1, 2])),
            ev(2, Invoke, "cas", json!([2, 3])),
            ev(3, Invoke, "read", Value::Null),
            ev(3, Ok, "read", json!(0)),
            ev(0, Info, "write", json!(1)),
            ev(1, Info, "cas", json!([1, 2])),
            ev(2, Info, "cas", json!([2, 3])),
        ]);
        assert_eq!(r.keep, vec![false, false, false, true]);
        assert_eq!(r.dropped, 3);
    }

    #[test]
    fn observed_info_write_is_kept_and_bounded_by_its_first_reader() {
        let r = run(vec![
            ev(0, Invoke, "write", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(1)),
            ev(1, Invoke, "cas", json!([1, 2])),
            ev(1, Ok, "cas", json!([1, 2])),
            ev(0, Info, "write", json!(1)),
        ]);
        assert_eq!(r.keep, vec![true, true, true]);
        assert_eq!(r.returns, vec![Some(2), None, None]);
        assert_eq!(r.bounded, 1);
    }

    #[test]
    fn repeated_or_initial_values_are_not_bounded() {
        // two writers of 1: the reader may have seen either
        let r = run(vec![
            ev(0, Invoke, "write", json!(1)),
            ev(2, Invoke, "write", json!(1)),
            ev(2, Ok, "write", json!(1)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(1)),
            ev(0, Info, "write", json!(1)),
        ]);
        assert_eq!(r.returns, vec![None, None, None]);
        // the initial value needs no writer at all
        let r = run(vec![
            ev(0, Invoke, "write", json!(0)),
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(0)),
            ev(0, Info, "write", json!(0)),
        ]);
        assert_eq!(r.returns, vec![None, None]);
        assert_eq!(r.keep, vec![true, true]);
    }

    fn run_kv(events: Vec<Event>, initial: &str) -> Reduction {
        let mut events = events;
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        let ops = History::new(events).pair().unwrap();
        let kept: Vec<&Operation> = ops
            .ops
            .iter()
            .filter(|o| o.outcome == Outcome::Ok || o.f != "get")
            .collect();
        let parsed: Vec<ModelOp> = kept
            .iter()
            .map(|o| ModelKind::KvAppend.parse_op(o).unwrap())
            .collect();
        reduce(Reduce::KvAppend, &json!(initial), &kept, &parsed)
    }

    #[test]
    fn kv_info_appends_are_dropped_or_bounded_by_their_tokens() {
        let h = || {
            vec![
                ev(0, Invoke, "append", json!("x1y")),
                ev(1, Invoke, "append", json!("x2y")),
                ev(2, Invoke, "put", json!("x3y")),
                ev(3, Invoke, "get", Value::Null),
                ev(3, Ok, "get", json!("x0yx2y")),
                ev(0, Info, "append", json!("x1y")),
                ev(1, Info, "append", json!("x2y")),
                ev(2, Info, "put", json!("x3y")),
            ]
        };
        let r = run_kv(h(), "x0y");
        assert_eq!(r.keep, vec![false, true, false, true]);
        assert_eq!(r.returns, vec![None, Some(4), None, None]);
        // 2 is not bounded when the initial value holds it too
        let r = run_kv(h(), "x2y");
        assert_eq!(r.keep, vec![false, true, false, true]);
        assert_eq!(r.returns, vec![None; 4]);
    }

    #[test]
    fn kv_without_framed_tokens_is_left_alone() {
        // "x1" + "2y" spells the token "x12y": unframed arguments prove nothing
        let r = run_kv(
            vec![
                ev(0, Invoke, "append", json!("x1")),
                ev(1, Invoke, "append", json!("2y")),
                ev(2, Invoke, "append", json!("x12y")),
                ev(3, Invoke, "get", Value::Null),
                ev(3, Ok, "get", json!("x12y")),
                ev(0, Info, "append", json!("x1")),
                ev(1, Info, "append", json!("2y")),
                ev(2, Info, "append", json!("x12y")),
            ],
            "",
        );
        assert_eq!(r.keep, vec![true; 4]);
        assert_eq!(r.returns, vec![None; 4]);
        // a get that is not a concatenation of tokens: nothing is reduced
        let r = run_kv(
            vec![
                ev(0, Invoke, "append", json!("x1y")),
                ev(3, Invoke, "get", Value::Null),
                ev(3, Ok, "get", json!("x1")),
                ev(0, Info, "append", json!("x1y")),
            ],
            "",
        );
        assert_eq!(r.keep, vec![true; 2]);
        let f = Frame::of(["x1y", "x22y"].into_iter()).unwrap();
        assert_eq!(f.split("x1yx22y"), Some(vec!["x1y", "x22y"]));
        assert_eq!(f.split(""), Some(vec![]));
        assert_eq!(f.split("x1yx"), None);
        assert!(Frame::of(["x1y", "xy1y"].into_iter()).is_none());
        assert!(Frame::of(["a"].into_iter()).is_none());
    }

    #[test]
    fn a_read_before_the_write_is_left_for_the_prechecks() {
        let r = run(vec![
            ev(1, Invoke, "read", Value::Null),
            ev(1, Ok, "read", json!(1)),
            ev(0, Invoke, "write", json!(1)),
            ev(0, Info, "write", json!(1)),
        ]);
        assert_eq!(r.returns, vec![None, None]);
        assert_eq!(r.keep, vec![true, true]);
    }
}
