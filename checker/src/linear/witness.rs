//! Turning a failed search into a [`Witness`] a person can read: the
//! longest linearizable prefix, the operation that cannot be placed after it, the states
//! the object could be in at that point, the operations around it, and a sentence or two
//! saying what went wrong.
//!
//! The stuck operation is the first `ok` operation, in completion order, that the prefix
//! does not contain. Since the prefix is a longest linearization the search found, no
//! extension of it contains that operation. Every operation that is not in the prefix and
//! was invoked before the stuck one completed returns after it, so those operations are
//! mutually concurrent: any subset of them, in any order, may take effect first. The
//! reachable states are exactly the states those orders produce, explored here with a
//! small bounded search.

use super::wgl::Searchable;
use super::{Step, Witness};
use crate::history::{Key, Operation, Outcome};
use crate::model::Model;
use hashbrown::HashSet;
use serde_json::Value;

/// Configurations explored when enumerating the states reachable at the stuck point.
const MAX_REACHABLE_CONFIGS: usize = 20_000;
/// Most operations listed as concurrent with the stuck one.
const MAX_CONCURRENT: usize = 100;
/// Most states spelled out in `needed`.
const MAX_STATES_IN_TEXT: usize = 8;

/// The partition the witness is about.
pub(crate) struct Partition<'a, M: Model> {
    pub(crate) model: &'a M,
    pub(crate) key: Option<Key>,
    pub(crate) ops: &'a [&'a Operation],
    pub(crate) parsed: &'a [M::Op],
}

/// Builds the witness from the search's longest prefix, given as (op index, state id).
pub(crate) fn from_search<M: Model>(
    part: &Partition<'_, M>,
    model: &mut impl Searchable,
    longest_prefix: &[(u32, u32)],
) -> Option<Witness> {
    let ops = part.ops;
    let mut linearized = vec![false; ops.len()];
    for &(op, _) in longest_prefix {
        linearized[op as usize] = true;
    }
    let stuck = (0..ops.len())
        .filter(|&i| !linearized[i] && ops[i].outcome == Outcome::Ok)
        .min_by_key(|&i| ops[i].return_index())?;
    let state = longest_prefix.last().map_or(model.initial(), |&(_, s)| s);
    let stuck_returns = ops[stuck].return_index();

    // Operations that may still go first: not linearized, invoked before `stuck` returns.
    let pending: Vec<usize> = (0..ops.len())
        .filter(|&i| i != stuck && !linearized[i] && ops[i].invoke_index < stuck_returns)
        .collect();
    let words = pending.len().div_ceil(64).max(1);
    let mut seen: HashSet<(Vec<u64>, u32)> = HashSet::new();
    let mut states: Vec<u32> = vec![state];
    let mut placeable = vec![false; pending.len()];
    let mut todo = vec![(vec![0u64; words], state)];
    seen.insert((vec![0u64; words], state));
    let mut truncated = false;
    while let Some((bits, s)) = todo.pop() {
        for (j, &i) in pending.iter().enumerate() {
            if bits[j / 64] & (1 << (j % 64)) != 0 {
                continue;
            }
            let Some(next) = model.step(s, i as u32) else {
                continue;
            };
            placeable[j] = true;
            if !states.contains(&next) {
                states.push(next);
            }
            let mut nb = bits.clone();
            nb[j / 64] |= 1 << (j % 64);
            if seen.len() >= MAX_REACHABLE_CONFIGS {
                truncated = true;
                continue;
            }
            if seen.insert((nb.clone(), next)) {
                todo.push((nb, next));
            }
        }
    }
    debug_assert!(
        states
            .iter()
            .all(|&s| model.step(s, stuck as u32).is_none()),
        "the stuck operation is legal in a reachable state: the prefix was not the longest"
    );

    let reachable_states: Vec<Value> = states.iter().map(|&s| model.state_json(s)).collect();
    let stuck_op = ops[stuck];
    let mut concurrent: Vec<&Operation> = (0..ops.len())
        .filter(|&i| {
            i != stuck
                && ops[i].invoke_index < stuck_returns
                && stuck_op.invoke_index < ops[i].return_index()
        })
        .map(|i| ops[i])
        .collect();
    for (j, &i) in pending.iter().enumerate() {
        if placeable[j] && !concurrent.iter().any(|o| o.id == ops[i].id) {
            concurrent.push(ops[i]);
        }
    }
    let concurrent = nearest(concurrent, stuck_op);
    let needed = format!(
        "{}, but {} {} here",
        part.model.describe(&part.parsed[stuck]),
        part.model.states_phrase(),
        list_states(&reachable_states, truncated)
    );
    let explanation = format!(
        "{stuck_op} (operation {}) completed at event {stuck_returns}, so it must take effect before every operation invoked later; \
         after the longest linearizable prefix ({}), no order of the {} still pending makes it legal. {}.",
        stuck_op.id,
        plural(longest_prefix.len(), "operation"),
        plural(pending.len(), "operation"),
        capitalised(&needed),
    );
    Some(Witness {
        key: part.key.clone(),
        prefix: longest_prefix
            .iter()
            .map(|&(op, s)| Step {
                op: ops[op as usize].id,
                state: model.state_json(s),
            })
            .collect(),
        stuck: stuck_op.clone(),
        needed,
        reachable_states,
        concurrent,
        explanation,
    })
}

/// A witness from a refutation that did not come with a search prefix (a pre-check or
/// the unique-values fast path): empty prefix, the operation, and the reason given.
pub(crate) fn from_refutation<M: Model>(
    part: &Partition<'_, M>,
    stuck: usize,
    needed: String,
    reachable_states: Vec<Value>,
    source: &str,
) -> Witness {
    let stuck_op = part.ops[stuck];
    let concurrent = part
        .ops
        .iter()
        .filter(|o| {
            o.id != stuck_op.id
                && o.invoke_index < stuck_op.return_index()
                && stuck_op.invoke_index < o.return_index()
        })
        .copied()
        .collect();
    let explanation = format!(
        "{stuck_op} (operation {}) can never be linearized, whatever the order of the others ({source}). {}.",
        stuck_op.id,
        capitalised(&needed)
    );
    Witness {
        key: part.key.clone(),
        prefix: Vec::new(),
        stuck: stuck_op.clone(),
        needed,
        reachable_states,
        concurrent: nearest(concurrent, stuck_op),
        explanation,
    }
}

/// A witness from a decision procedure that names the operation and gives a
/// linearizable prefix as positions (the version-chains procedure and the append-order
/// translation): the prefix's states are replayed on the partition's own model, so
/// they are the model's states (strings for kv-append), not the procedure's.
pub(crate) fn from_decision<M: Model>(
    part: &Partition<'_, M>,
    initial: &Value,
    stuck: usize,
    needed: String,
    prefix: &[usize],
    source: &str,
) -> Witness {
    let mut w = from_refutation(part, stuck, needed, Vec::new(), source);
    let mut state = initial.clone();
    for &i in prefix {
        let Some(next) = part.model.step(&state, &part.parsed[i]) else {
            debug_assert!(false, "a decision's prefix does not replay");
            break;
        };
        state = next;
        w.prefix.push(Step {
            op: part.ops[i].id,
            state: state.clone(),
        });
    }
    w
}

/// Whether `order` (positions) is a legal sequence of `parsed` for `model` from `initial`.
pub(crate) fn replays<M: Model>(
    model: &M,
    initial: &Value,
    parsed: &[M::Op],
    order: &[usize],
) -> bool {
    let mut state = initial.clone();
    for &i in order {
        match model.step(&state, &parsed[i]) {
            Some(next) => state = next,
            None => return false,
        }
    }
    true
}

/// Keeps the [`MAX_CONCURRENT`] operations invoked nearest to `stuck`, in invocation order.
fn nearest(mut ops: Vec<&Operation>, stuck: &Operation) -> Vec<Operation> {
    if ops.len() > MAX_CONCURRENT {
        ops.sort_by_key(|o| (o.invoke_index.abs_diff(stuck.invoke_index), o.id));
        ops.truncate(MAX_CONCURRENT);
    }
    ops.sort_by_key(|o| (o.invoke_index, o.id));
    ops.into_iter().cloned().collect()
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The states listed in `needed` ("1 or 4", "at least 1, 2 or 4").
fn list_states(states: &[Value], truncated: bool) -> String {
    let texts: Vec<String> = states
        .iter()
        .take(MAX_STATES_IN_TEXT)
        .map(|s| s.to_string())
        .collect();
    let mut out = match texts.len() {
        0 => "nothing".to_string(),
        1 => texts[0].clone(),
        n => format!("{} or {}", texts[..n - 1].join(", "), texts[n - 1]),
    };
    if states.len() > MAX_STATES_IN_TEXT {
        out.push_str(&format!(
            " (or {} other states)",
            states.len() - MAX_STATES_IN_TEXT
        ));
    }
    if truncated {
        out = format!("at least {out}");
    }
    out
}
