//! Version chains: a polynomial decision, in both directions, for register and
//! cas-register keys whose written values are unique, successful `cas` included.
//!
//! The unique-values fast path ([`super::unique`]) covers registers whose values are
//! unique but declines as soon as a `cas` succeeds, because a successful `cas [a b]`
//! glues the life of `b` to the end of the life of `a`. This module decides that shape
//! too (our own register and kv workloads produce it, and the kv-append translation in
//! `append` reduces to it).
//!
//! With unique values every value is created by exactly one operation (a write, or a
//! cas whose new value it is; the initial value by a virtual write before everything),
//! and every value, once overwritten, never comes back. So:
//! - a value is consumed by at most one cas: a cas `[a b]` runs in state `a` and ends
//!   `a`'s life, so two cas expecting `a` cannot both take effect;
//! - following "`b` is created by the cas that consumes `a`" from a write (or from the
//!   initial value) gives a *chain* of versions `v0 → v1 → … → vk`. Between `vi` and
//!   `vi+1` nothing else can run except reads of `vi` (a write would end `vi` for good and
//!   the cas could never run), so a chain is one contiguous *block* of the linearization,
//!   ordered by *levels*: level i is the operation creating `vi` and the reads of `vi`,
//!   and every operation of level i precedes every operation of level i+1.
//!
//! Scheduling a block greedily (every operation as early as its invocation and its
//! predecessors allow) shows, with `T` the point of the last operation placed before
//! the block: the block fits iff `T` is below `f` (its earliest completion) and its own
//! levels fit (each operation completes after the latest invocation of everything at
//! its level or below); afterwards the last point is `max(T, s)` with `s` its latest
//! invocation. These are exactly Gibbons and Korach's cluster conditions with a block in
//! place of a cluster, so the history is linearizable iff every block fits on its own,
//! no two *forward* blocks (`f < s`) overlap, and no *backward* block lies inside a
//! forward one; the initial value's block (virtual write at -1) goes first.
//!
//! Operations that need not take effect: an `info` operation whose new value nobody
//! observes (no read returns it, no cas expects it) may be left out, as `reduce` proves;
//! it is left out here too, repeatedly from the end of a chain, so the module stands on
//! its own. Every other operation must take effect: `ok` ones by definition, observed
//! `info` ones because only they create what was observed.
//!
//! A valid verdict is *certified*: the order built from the zones is replayed against
//! the model and against every operation's interval before it is returned; if that ever
//! failed the module declines rather than answer. An invalid verdict names the operation
//! and the reason, and comes with the linearizable prefix the greedy schedule reached.

use crate::history::{Operation, Outcome};
use crate::model::{apply, ModelOp};
use hashbrown::HashMap;
use serde_json::Value;

/// Positions on the event-index time line (the initial value's virtual write at -1, an
/// `info` completion at infinity).
type Time = i128;
const NEVER: Time = i128::MAX;
const VIRTUAL: Time = -1;
const START: Time = -2;

/// One operation's real-time interval: invocation and return (`None`: at infinity).
pub(crate) type Interval = (u64, Option<u64>);

/// What the decision concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChainOutcome {
    /// Not of the shape decided here (values not unique, an operation of another kind).
    NotApplicable,
    /// Linearizable; `order` is a linearization (positions into the operations given),
    /// already replayed against the model and the intervals.
    Valid { order: Vec<usize> },
    /// Not linearizable: operation `op` (a position) cannot be placed, for `reason`;
    /// `prefix` is a linearizable prefix (positions, in order).
    Invalid {
        op: usize,
        reason: String,
        prefix: Vec<usize>,
    },
}

/// One chain of versions: the operations at each level, creator first.
struct Block {
    /// Per level: the creating operation (`None` for the initial value) and the reads.
    levels: Vec<(Option<usize>, Vec<usize>)>,
    /// Earliest completion and latest invocation of its operations.
    f: Time,
    s: Time,
}

/// Decides `parsed` (register or cas-register operations, replayed with
/// [`crate::model::apply`]) from `initial`, where `intervals[i]` is operation `i`'s interval and
/// `ops[i]` the operation itself (for the explanations).
pub(crate) fn decide(
    initial: &Value,
    ops: &[&Operation],
    parsed: &[ModelOp],
    intervals: &[Interval],
) -> ChainOutcome {
    match decide_blaming_any(initial, ops, parsed, intervals) {
        ChainOutcome::Invalid { op, reason, prefix } if ops[op].outcome != Outcome::Ok => {
            // A witness names an `ok` operation (an `info` one might never have run):
            // the one that first observes what the `info` one wrote, through chains of
            // `info` cas if need be.
            let op = ok_observer(op, ops, parsed, intervals);
            let prefix = close_prefix(prefix, op, ops, intervals);
            ChainOutcome::Invalid { op, reason, prefix }
        }
        other => other,
    }
}

/// The `ok` operation that observes (reads, or expects in a cas) what `op` wrote and
/// completes first, following `info` cas that observe it; `op` itself if there is none.
fn ok_observer(op: usize, ops: &[&Operation], parsed: &[ModelOp], intervals: &[Interval]) -> usize {
    let mut frontier = vec![op];
    let mut seen = vec![false; ops.len()];
    seen[op] = true;
    let mut best: Option<usize> = None;
    while let Some(w) = frontier.pop() {
        let Some(v) = written(&parsed[w]) else {
            continue;
        };
        for (i, p) in parsed.iter().enumerate() {
            let observes = match p {
                ModelOp::Read(Some(r)) => r == v,
                ModelOp::Cas(a, _) => a == v,
                _ => false,
            };
            if !observes || seen[i] {
                continue;
            }
            seen[i] = true;
            if ops[i].outcome == Outcome::Ok {
                let ret = |j: usize| intervals[j].1.unwrap_or(u64::MAX);
                if best.is_none_or(|b| ret(i) < ret(b)) {
                    best = Some(i);
                }
            } else {
                frontier.push(i);
            }
        }
    }
    best.unwrap_or(op)
}

fn decide_blaming_any(
    initial: &Value,
    ops: &[&Operation],
    parsed: &[ModelOp],
    intervals: &[Interval],
) -> ChainOutcome {
    let n = parsed.len();
    let inv = |i: usize| Time::from(intervals[i].0);
    let ret = |i: usize| intervals[i].1.map_or(NEVER, Time::from);
    let is_info = |i: usize| intervals[i].1.is_none() || ops[i].outcome == Outcome::Info;

    // Values by JSON text (equal exactly when the values are), as small ids; 0 is the
    // initial value.
    let mut ids: HashMap<String, usize> = HashMap::new();
    ids.insert(initial.to_string(), 0);
    let mut id = |v: &Value| {
        let next = ids.len();
        *ids.entry(v.to_string()).or_insert(next)
    };
    let mut creator: Vec<Option<usize>> = vec![None];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new()];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new()];
    let mut created_by: Vec<Option<usize>> = vec![None; n];
    let grow = |v: usize,
                creator: &mut Vec<Option<usize>>,
                consumers: &mut Vec<Vec<usize>>,
                readers: &mut Vec<Vec<usize>>| {
        if creator.len() <= v {
            creator.resize(v + 1, None);
            consumers.resize(v + 1, Vec::new());
            readers.resize(v + 1, Vec::new());
        }
    };
    for (i, p) in parsed.iter().enumerate() {
        match p {
            ModelOp::Read(None) => {}
            ModelOp::Read(Some(v)) => {
                let v = id(v);
                grow(v, &mut creator, &mut consumers, &mut readers);
                readers[v].push(i);
            }
            ModelOp::Write(v) | ModelOp::Cas(_, v) => {
                let v = id(v);
                grow(v, &mut creator, &mut consumers, &mut readers);
                // Unique values only: a second writer, or a write of the initial value.
                if v == 0 || creator[v].is_some() {
                    return ChainOutcome::NotApplicable;
                }
                creator[v] = Some(i);
                created_by[i] = Some(v);
                if let ModelOp::Cas(a, _) = p {
                    let a = id(a);
                    grow(a, &mut creator, &mut consumers, &mut readers);
                    consumers[a].push(i);
                }
            }
            _ => return ChainOutcome::NotApplicable,
        }
    }

    // Operations that must take effect, found from the heads along the chains; `info`
    // operations ending a chain unobserved are left out (module doc).
    let mut blocks: Vec<Block> = Vec::new();
    let mut in_block = vec![false; n];
    let heads = std::iter::once(None).chain(
        (0..n)
            .filter(|&i| matches!(parsed[i], ModelOp::Write(_)))
            .map(Some),
    );
    for head in heads {
        let mut levels: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
        let mut value = head.map_or(Some(0), |h| created_by[h]);
        let mut creating = head;
        while let Some(v) = value {
            levels.push((creating, readers[v].clone()));
            match consumers[v].as_slice() {
                [] => value = None,
                [c] => {
                    creating = Some(*c);
                    value = created_by[*c];
                }
                [first, second, ..] => {
                    // Both must take effect unless one is an info cas nobody observes;
                    // leave such shapes to the search rather than guess.
                    let observed = |c: usize| {
                        created_by[c]
                            .is_some_and(|w| !readers[w].is_empty() || !consumers[w].is_empty())
                            || !is_info(c)
                    };
                    if observed(*first) && observed(*second) {
                        let (a, b) = (*first, *second);
                        let prefix = Vec::new();
                        return ChainOutcome::Invalid {
                            op: b.max(a),
                            reason: match &parsed[b.max(a)] {
                                ModelOp::Cas(v, new) => format!(
                                    "cas expected {v} (to set {new}), but {} expected {v} too and must also take effect; a cas replaces the value it expects, which is never written again, so at most one of them can",
                                    ops[b.min(a)]
                                ),
                                _ => "two cas expect the same value".to_string(),
                            },
                            prefix,
                        };
                    }
                    return ChainOutcome::NotApplicable;
                }
            }
        }
        // Leave out unobserved info operations at the end of the chain.
        while let Some((Some(c), reads)) = levels.last() {
            if reads.is_empty() && is_info(*c) {
                levels.pop();
            } else {
                break;
            }
        }
        if levels.is_empty() || (head.is_none() && levels.len() == 1 && levels[0].1.is_empty()) {
            continue;
        }
        let mut f = NEVER;
        let mut s = START;
        for (c, reads) in &levels {
            match c {
                Some(c) => {
                    in_block[*c] = true;
                    f = f.min(ret(*c));
                    s = s.max(inv(*c));
                }
                None => {
                    f = f.min(VIRTUAL);
                    s = s.max(VIRTUAL);
                }
            }
            for &r in reads {
                in_block[r] = true;
                f = f.min(ret(r));
                s = s.max(inv(r));
            }
        }
        blocks.push(Block { levels, f, s });
    }

    // Every operation outside the blocks: reads of values nobody creates (or created only
    // by operations that are not in a chain), cas whose expected value never exists.
    for i in 0..n {
        if in_block[i] || matches!(parsed[i], ModelOp::Read(None)) {
            continue;
        }
        let must = match parsed[i] {
            ModelOp::Read(_) => true,
            // An info cas outside every chain (its expected value never exists, or a
            // cycle of cas) can simply never have taken effect, unless someone saw it.
            _ => {
                !is_info(i)
                    || created_by[i].is_some_and(|w| {
                        readers[w].iter().any(|&r| !is_info(r))
                            || consumers[w].iter().any(|&c| !is_info(c))
                    })
            }
        };
        if !must {
            // Info operations only: if such a cycle fed a chain we would have reached
            // it; anything subtler is left to the search.
            if created_by[i].is_some_and(|w| !readers[w].is_empty()) {
                return ChainOutcome::NotApplicable;
            }
            continue;
        }
        let reason = match &parsed[i] {
            ModelOp::Read(Some(v)) => format!(
                "read returned {v}, but {}",
                match ids.get(&v.to_string()).and_then(|&v| creator.get(v).copied().flatten()) {
                    Some(c) => format!(
                        "the only operation writing it ({}) can never take effect (it expects a value that never exists)",
                        ops[c]
                    ),
                    None => format!("no operation ever writes {v}, and it is not the initial value {initial}"),
                }
            ),
            ModelOp::Cas(a, _) => format!(
                "cas expected {a}, which no operation that can take effect wrote and which is not the initial value {initial}"
            ),
            other => format!("{other:?} is outside every version chain"),
        };
        return ChainOutcome::Invalid {
            op: i,
            reason,
            prefix: Vec::new(),
        };
    }

    // The order the blocks would take (for the witness's prefix, and certified below).
    let mut forward: Vec<usize> = (0..blocks.len())
        .filter(|&b| blocks[b].f < blocks[b].s)
        .collect();
    forward.sort_by_key(|&b| blocks[b].f);
    let order = order_blocks(&blocks, &forward);
    let prefix = |order: &[usize], stuck: usize| {
        let all = greedy_prefix(initial, parsed, intervals, &blocks, order);
        close_prefix(all, stuck, ops, intervals)
    };
    // Blame an `ok` operation: the preferred one if it is, else the block's `ok`
    // operation that completes first (an `info` one may not be the one left out).
    let is_ok = |i: usize| ops[i].outcome == Outcome::Ok;
    let blame = |preferred: usize, b: &Block| -> usize {
        if is_ok(preferred) {
            return preferred;
        }
        b.levels
            .iter()
            .flat_map(|(c, reads)| c.iter().chain(reads))
            .copied()
            .filter(|&i| is_ok(i))
            .min_by_key(|&i| ret(i))
            .unwrap_or(preferred)
    };

    // Each block on its own: every operation completes after the latest invocation of
    // everything at its level or below (module doc).
    for b in &blocks {
        let mut g = START;
        let mut g_op: Option<usize> = None;
        let mut level_value: Option<&Value> = None;
        for (c, reads) in &b.levels {
            let created = match c {
                Some(c) => {
                    if inv(*c) > g {
                        g = inv(*c);
                        g_op = Some(*c);
                    }
                    if g >= ret(*c) {
                        let Some(late) = g_op else { continue };
                        // The late operation is the one out of place: it works on an
                        // earlier version than one already created when it began.
                        let op = blame(late, b);
                        return ChainOutcome::Invalid {
                            op,
                            reason: format!(
                                "{} was invoked at event {g}, after {} had completed (event {}), but it {} an earlier version of the chain of cas that {} continues{}",
                                ops[late],
                                ops[*c],
                                ret(*c),
                                if parsed_reads(parsed, late) { "read" } else { "created" },
                                ops[*c],
                                level_value.map_or(String::new(), |v| format!(" (from {v})"))
                            ),
                            prefix: prefix(&order, op),
                        };
                    }
                    written(&parsed[*c])
                }
                None => {
                    g = g.max(VIRTUAL);
                    Some(initial)
                }
            };
            for &r in reads {
                if g >= ret(r) {
                    let Some(late) = g_op else { continue };
                    let (op, reason) = if Some(late) == *c {
                        (
                            r,
                            format!(
                                "{} returned {}, but the only write of that value ({}) was invoked at event {g}, after the read completed",
                                ops[r],
                                created.map_or("its value".to_string(), |v| v.to_string()),
                                ops[late]
                            ),
                        )
                    } else {
                        let op = blame(late, b);
                        (
                            op,
                            format!(
                                "{} was invoked at event {g}, after {} had completed (event {}), but it {} an earlier version of the chain of cas that leads to {}",
                                ops[late],
                                ops[r],
                                ret(r),
                                if parsed_reads(parsed, late) { "read" } else { "created" },
                                created.map_or("that value".to_string(), |v| v.to_string())
                            ),
                        )
                    };
                    return ChainOutcome::Invalid {
                        op,
                        reason,
                        prefix: prefix(&order, op),
                    };
                }
            }
            for &r in reads {
                if inv(r) > g {
                    g = inv(r);
                    g_op = Some(r);
                }
            }
            level_value = created;
        }
    }

    // Between blocks: Gibbons–Korach zones.
    for pair in forward.windows(2) {
        let (a, b) = (&blocks[pair[0]], &blocks[pair[1]]);
        if b.f <= a.s {
            let op = blame(latest_op(b, &inv), b);
            return ChainOutcome::Invalid {
                op,
                reason: format!(
                    "{} and {} must each stay current over overlapping spans of the history (events {}..{} and {}..{}): one of them would have to be overwritten and then come back",
                    describe_block(a, ops, parsed, initial),
                    describe_block(b, ops, parsed, initial),
                    a.f.max(0),
                    a.s,
                    b.f.max(0),
                    b.s
                ),
                prefix: prefix(&order, op),
            };
        }
    }
    for b in &blocks {
        if b.f < b.s {
            continue;
        }
        // The only forward zone that could contain [s, f]: the last one starting before s.
        let at = forward.partition_point(|&a| blocks[a].f < b.s);
        if at == 0 {
            continue;
        }
        let a = &blocks[forward[at - 1]];
        if b.f < a.s {
            let op = blame(latest_op(b, &inv), b);
            return ChainOutcome::Invalid {
                op,
                reason: format!(
                    "{} must take effect between events {} and {}, but {} must stay current from event {} to event {}, covering that whole window",
                    describe_block(b, ops, parsed, initial),
                    b.s.max(0),
                    b.f,
                    describe_block(a, ops, parsed, initial),
                    a.f.max(0),
                    a.s
                ),
                prefix: prefix(&order, op),
            };
        }
    }

    // Certify: the order must replay.
    let order: Vec<usize> = order
        .iter()
        .flat_map(|&b| block_ops(&blocks[b], &inv))
        .collect();
    if replay(initial, parsed, intervals, &order) == order.len() {
        ChainOutcome::Valid { order }
    } else {
        debug_assert!(false, "version chains built an order that does not replay");
        ChainOutcome::NotApplicable
    }
}

/// Whether operation `i` reads (rather than writes).
fn parsed_reads(parsed: &[ModelOp], i: usize) -> bool {
    matches!(parsed[i], ModelOp::Read(_))
}

fn written(p: &ModelOp) -> Option<&Value> {
    match p {
        ModelOp::Write(v) | ModelOp::Cas(_, v) => Some(v),
        _ => None,
    }
}

fn describe_block(b: &Block, ops: &[&Operation], parsed: &[ModelOp], initial: &Value) -> String {
    let first = match b.levels.first() {
        Some((Some(c), _)) => match written(&parsed[*c]) {
            Some(v) => format!("the value {v} written by {}", ops[*c]),
            None => format!("the value written by {}", ops[*c]),
        },
        _ => format!("the initial value {initial}"),
    };
    if b.levels.len() > 1 {
        format!(
            "{first} (with the {} versions cas built on it)",
            b.levels.len() - 1
        )
    } else {
        first
    }
}

/// The operation of a block invoked last.
fn latest_op(b: &Block, inv: &impl Fn(usize) -> Time) -> usize {
    b.levels
        .iter()
        .flat_map(|(c, reads)| c.iter().chain(reads))
        .copied()
        .max_by_key(|&i| inv(i))
        .unwrap_or(0)
}

/// A block's operations in linearization order: level by level, creator first, reads
/// by invocation.
fn block_ops(b: &Block, inv: &impl Fn(usize) -> Time) -> Vec<usize> {
    let mut out = Vec::new();
    for (c, reads) in &b.levels {
        out.extend(c.iter().copied());
        let mut reads = reads.clone();
        reads.sort_by_key(|&r| inv(r));
        out.extend(reads);
    }
    out
}

/// Orders the blocks: forward blocks at their zones, each backward block at a point of
/// `(s, f)` outside every forward zone (just after `s`, or just after the forward zone
/// holding `s`). When the zone conditions hold this order satisfies "A before B implies
/// A's latest invocation precedes B's earliest completion" for every pair.
fn order_blocks(blocks: &[Block], forward: &[usize]) -> Vec<usize> {
    let mut keyed: Vec<(Time, usize)> = Vec::with_capacity(blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        if b.f < b.s {
            keyed.push((2 * b.f, i));
        } else {
            let at = forward.partition_point(|&a| blocks[a].f <= b.s);
            let point = match at.checked_sub(1).map(|a| &blocks[forward[a]]) {
                Some(a) if a.s > b.s => a.s,
                _ => b.s,
            };
            keyed.push((2 * point + 1, i));
        }
    }
    keyed.sort();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// How many operations of `order` replay: legal in the model from `initial`, and each
/// placeable inside its interval after the ones before it.
fn replay(initial: &Value, parsed: &[ModelOp], intervals: &[Interval], order: &[usize]) -> usize {
    let mut state = initial.clone();
    let mut t = START;
    for (k, &i) in order.iter().enumerate() {
        let (inv, ret) = intervals[i];
        t = t.max(Time::from(inv));
        if t >= ret.map_or(NEVER, Time::from) {
            return k;
        }
        match apply(&state, &parsed[i]) {
            Some(next) => state = next,
            None => return k,
        }
    }
    order.len()
}

/// The operations of `order` that the greedy schedule places before the first that does
/// not fit: a linearizable prefix for a witness.
fn greedy_prefix(
    initial: &Value,
    parsed: &[ModelOp],
    intervals: &[Interval],
    blocks: &[Block],
    order: &[usize],
) -> Vec<usize> {
    let inv = |i: usize| Time::from(intervals[i].0);
    let all: Vec<usize> = order
        .iter()
        .flat_map(|&b| block_ops(&blocks[b], &inv))
        .collect();
    let fits = replay(initial, parsed, intervals, &all);
    all[..fits].to_vec()
}

/// `prefix` cut so that it is a prefix a linearization could start with: it stops before
/// `stuck`, and before the first operation invoked after some `ok` operation it does not
/// contain had completed.
fn close_prefix(
    prefix: Vec<usize>,
    stuck: usize,
    ops: &[&Operation],
    intervals: &[Interval],
) -> Vec<usize> {
    let mut rets: Vec<(u64, usize)> = (0..ops.len())
        .filter(|&i| ops[i].outcome == Outcome::Ok)
        .filter_map(|i| ops[i].complete_index.map(|r| (r, i)))
        .collect();
    rets.sort_unstable();
    let mut placed = vec![false; ops.len()];
    let mut next = 0;
    let mut invoked = 0;
    for (k, &x) in prefix.iter().enumerate() {
        if x == stuck {
            return prefix[..k].to_vec();
        }
        invoked = invoked.max(intervals[x].0);
        while next < rets.len() && rets[next].0 < invoked {
            if !placed[rets[next].1] {
                return prefix[..k].to_vec();
            }
            next += 1;
        }
        placed[x] = true;
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use crate::model::ModelKind;
    use serde_json::json;
    use EventType::*;

    fn run(steps: &[(u64, EventType, &str, Value)]) -> ChainOutcome {
        let ops = crate::history::history_of(steps).pair().unwrap();
        let refs: Vec<&Operation> = ops.ops.iter().collect();
        let parsed: Vec<ModelOp> = refs
            .iter()
            .map(|o| ModelKind::CasRegister.parse_op(o).unwrap())
            .collect();
        let intervals: Vec<Interval> = refs
            .iter()
            .map(|o| {
                (
                    o.invoke_index,
                    o.complete_index.filter(|_| o.outcome == Outcome::Ok),
                )
            })
            .collect();
        decide(&json!(0), &refs, &parsed, &intervals)
    }

    #[test]
    fn a_chain_of_cas_is_valid_and_certified() {
        let out = run(&[
            (0, Invoke, "cas", json!([0, 1])),
            (1, Invoke, "read", Value::Null),
            (0, Ok, "cas", json!([0, 1])),
            (1, Ok, "read", json!(0)),
            (0, Invoke, "cas", json!([1, 2])),
            (0, Ok, "cas", json!([1, 2])),
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!(2)),
        ]);
        assert!(matches!(out, ChainOutcome::Valid { ref order } if order.len() == 4));
    }

    #[test]
    fn a_read_of_an_earlier_version_after_the_chain_moved_on_is_invalid() {
        let out = run(&[
            (0, Invoke, "cas", json!([0, 1])),
            (0, Ok, "cas", json!([0, 1])),
            (0, Invoke, "cas", json!([1, 2])),
            (0, Ok, "cas", json!([1, 2])),
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!(1)),
        ]);
        assert!(
            matches!(out, ChainOutcome::Invalid { op: 2, .. }),
            "{out:?}"
        );
    }

    #[test]
    fn two_cas_from_one_value_are_invalid() {
        let out = run(&[
            (0, Invoke, "cas", json!([0, 1])),
            (1, Invoke, "cas", json!([0, 2])),
            (0, Ok, "cas", json!([0, 1])),
            (1, Ok, "cas", json!([0, 2])),
        ]);
        assert!(matches!(out, ChainOutcome::Invalid { .. }), "{out:?}");
    }

    #[test]
    fn a_write_inside_a_chain_is_invalid_and_an_unread_info_cas_is_not_needed() {
        // read 0 .. write 5 completes .. cas [0 1] invoked later: the initial value must
        // still be current when the cas runs, across the whole write.
        let out = run(&[
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!(0)),
            (0, Invoke, "write", json!(5)),
            (0, Ok, "write", json!(5)),
            (1, Invoke, "cas", json!([0, 1])),
            (1, Ok, "cas", json!([0, 1])),
        ]);
        assert!(matches!(out, ChainOutcome::Invalid { .. }), "{out:?}");
        let out = run(&[
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!(0)),
            (0, Invoke, "write", json!(5)),
            (0, Ok, "write", json!(5)),
            (1, Invoke, "cas", json!([0, 1])),
            (1, Info, "cas", json!([0, 1])),
        ]);
        assert!(matches!(out, ChainOutcome::Valid { .. }), "{out:?}");
    }

    #[test]
    fn repeated_values_are_not_applicable() {
        let out = run(&[
            (0, Invoke, "write", json!(1)),
            (0, Ok, "write", json!(1)),
            (0, Invoke, "cas", json!([1, 1])),
            (0, Ok, "cas", json!([1, 1])),
        ]);
        assert_eq!(out, ChainOutcome::NotApplicable);
    }
}
