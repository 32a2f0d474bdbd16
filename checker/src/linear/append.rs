//! The append-order fast path for `kv-append`: when every update writes one unique
//! framed token, each get reveals the order of the appends before it, and the key can be
//! checked as a cas-register over *versions* instead of strings.
//!
//! Why: the search on strings tries the concurrent appends between two gets in every
//! order before a get rules an order out; at concurrency 50 on 10 keys that never ends.
//! With unique tokens (see `reduce::Frame`: one opening and one closing character that
//! occur nowhere else, so a string splits into tokens one way only) a string is named by
//! its last token, and a get `… p t …` says the append of `t` ran when the string ended
//! in `p`. So (the *translation*):
//! - the state is the last token of the string (`null`: the initial string);
//! - `put s` is `write s`;
//! - `append t` is `cas [p t]` when gets show `t` after `p` (`p` is `null` when `t`
//!   directly follows the initial string), and `write t` when no get contains `t`;
//! - an `ok` get is a read of its last token (`null` if it returned the initial string).
//!
//! Preconditions (otherwise [`translate`] declines and the strings are searched): framed
//! tokens, and every update's token distinct and not in the initial string. A get that
//! is not the initial string's tokens or a put's token followed by append tokens, or that
//! disagrees with another on what precedes a token, refutes the key (see below).
//!
//! The translation is exact in both directions, so the translated key is decided by the
//! version-chains procedure (`chains`), valid and invalid alike.
//!
//! L linearizes the translation ⇒ L linearizes the strings (same operations, same order,
//! same intervals): call a version *seen* if it is `null`, a put's token, or an append
//! token that some get contains, and let expand(v) be the initial string, the put's
//! token, or expand(p) + t for `t` appended after `p`. Along L, whenever the version is
//! seen the string is expand(version): a put sets both; `cas [p t]` runs only at version
//! `p`, seen (it is in a get), so the string was expand(p) and becomes expand(p) + t =
//! expand(t); a `write t` for an append nobody saw leads to version `t`, which no read
//! names and no cas expects, so only a put (or another such append) can follow before
//! anything observes the state. A read of `v` runs at version `v`, when the string is
//! expand(v), and expand(v) is exactly what the get returned (its own tokens define the
//! chain). Puts and appends are legal in every state. So L is legal for the strings too.
//!
//! L linearizes the strings ⇒ L linearizes the translation: let the version of a string
//! be its last token (`null` for the initial string). A put is a write of its token. An
//! append of `t` that some get contains runs on a string S; every later string that
//! contains `t` extends S + t until a put removes `t` for good (tokens are unique, puts
//! write one token), so every get containing `t` shows the last token of S (or the start)
//! before `t`: the version before the append is the expected one, and the cas is legal.
//! An append nobody saw is a write, legal anywhere. A get of G runs when the string is G,
//! whose version is G's last token, the translated read's value.
//!
//! Refutations: the same argument shows what any reachable string looks like — the
//! initial string or a put's token, followed by append tokens, each after the token every
//! other get shows before it. A get that breaks this (not a concatenation of tokens, an
//! unknown token, a put's token after the start, a token after two different
//! predecessors in two gets or twice in one) has no linearization, whatever the others
//! do; [`translate`] says so directly.

use super::reduce::Frame;
use crate::history::{Operation, Outcome};
use crate::model::ModelOp;
use hashbrown::HashMap;
use serde_json::Value;

/// What precedes a token in every string containing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pred<'a> {
    Initial,
    Token(&'a str),
}

impl Pred<'_> {
    fn describe(self) -> String {
        match self {
            Pred::Initial => "the initial value".to_string(),
            Pred::Token(t) => format!("{t:?}"),
        }
    }

    fn version(self) -> Value {
        match self {
            Pred::Initial => Value::Null,
            Pred::Token(t) => Value::String(t.to_string()),
        }
    }
}

/// What [`translate`] made of a key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Translation {
    /// The preconditions in the module doc do not hold (unframed strings, a repeated
    /// update token, a token of the initial string written again): search the strings.
    Declined,
    /// A get no linearization can explain, whatever the order of the others: operation
    /// `op` (a position), for `reason` (see "Refutations" in the module doc).
    Refuted { op: usize, reason: String },
    /// The equivalent cas-register operations over versions (initial state `null`).
    Ops(Vec<ModelOp>),
}

/// The cas-register operations (initial state `null`) equivalent to a kv-append key's
/// `ops` (parsed as `parsed`) from `initial`, a refutation, or [`Translation::Declined`]
/// when the preconditions in the module doc do not hold.
pub(crate) fn translate(initial: &Value, ops: &[&Operation], parsed: &[ModelOp]) -> Translation {
    let initial = initial.as_str().unwrap_or_default();
    let update = |p: &ModelOp| match p {
        ModelOp::Put(s) => Some((s.clone(), true)),
        ModelOp::Append(s) => Some((s.clone(), false)),
        _ => None,
    };
    let updates: Vec<Option<(String, bool)>> = parsed.iter().map(update).collect();
    let texts = updates
        .iter()
        .flatten()
        .map(|(s, _)| s.as_str())
        .chain((!initial.is_empty()).then_some(initial));
    let Some(frame) = Frame::of(texts) else {
        return Translation::Declined;
    };
    let Some(initial_tokens) = frame.split(initial) else {
        return Translation::Declined;
    };
    // token → is it a put's
    let mut written: HashMap<&str, bool> = HashMap::new();
    for (s, put) in updates.iter().flatten() {
        if written.insert(s.as_str(), *put).is_some() || initial_tokens.contains(&s.as_str()) {
            return Translation::Declined;
        }
    }
    // What precedes each append token, and the get that said so first.
    let mut preds: HashMap<&str, (Pred, usize)> = HashMap::new();
    let mut reads: Vec<Option<Value>> = vec![None; ops.len()];
    for (i, (op, p)) in ops.iter().zip(parsed).enumerate() {
        let (ModelOp::Get(Some(s)), Outcome::Ok) = (p, op.outcome) else {
            continue;
        };
        let refuted = |reason: String| Translation::Refuted { op: i, reason };
        let Some(tokens) = frame.split(s) else {
            return refuted(format!(
                "get returned {s:?}, which is not a concatenation of the tokens the updates write, as every state of the key is"
            ));
        };
        // Where the chain of appends starts: after a put's token, or after the initial
        // string's tokens.
        let (mut pred, rest) = match tokens.first() {
            Some(t) if written.get(t) == Some(&true) => (Pred::Token(t), &tokens[1..]),
            _ if tokens.starts_with(&initial_tokens) => {
                (Pred::Initial, &tokens[initial_tokens.len()..])
            }
            _ => {
                return refuted(format!(
                    "get returned {s:?}, which starts neither with the initial value {initial:?} nor with a put's token, as every state of the key does"
                ))
            }
        };
        for &t in rest {
            match written.get(t) {
                Some(false) => {}
                Some(true) => {
                    return refuted(format!(
                        "get returned {s:?}, in which the put's token {t:?} follows other tokens, but a put replaces the whole string"
                    ))
                }
                None => {
                    return refuted(format!(
                        "get returned {s:?}, which contains {t:?}, a token no operation appended"
                    ))
                }
            }
            match preds.entry(t) {
                hashbrown::hash_map::Entry::Vacant(e) => {
                    e.insert((pred, i));
                }
                hashbrown::hash_map::Entry::Occupied(e) if e.get().0 != pred => {
                    let (other, j) = *e.get();
                    return refuted(format!(
                        "get returned {s:?}, where {t:?} follows {}, but {} returned {:?}, where it follows {}; {t:?} was appended once, and what precedes it never changes while it is in the string",
                        pred.describe(),
                        ops[j],
                        match &parsed[j] {
                            ModelOp::Get(Some(g)) => g.as_str(),
                            _ => "",
                        },
                        other.describe()
                    ));
                }
                hashbrown::hash_map::Entry::Occupied(_) => {}
            }
            pred = Pred::Token(t);
        }
        reads[i] = Some(pred.version());
    }
    let translated = parsed
        .iter()
        .zip(reads)
        .map(|(p, read)| match p {
            ModelOp::Put(s) => ModelOp::Write(Value::String(s.clone())),
            ModelOp::Append(t) => match preds.get(t.as_str()) {
                Some((pred, _)) => ModelOp::Cas(pred.version(), Value::String(t.clone())),
                None => ModelOp::Write(Value::String(t.clone())),
            },
            // Gets that did not complete ok observed nothing.
            _ => ModelOp::Read(read),
        })
        .collect();
    Translation::Ops(translated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, History, Process};
    use crate::model::ModelKind;
    use serde_json::json;
    use EventType::*;

    fn run(steps: &[(u64, EventType, &str, Value)], initial: &str) -> Option<Vec<ModelOp>> {
        match translate_steps(steps, initial) {
            Translation::Ops(ops) => Some(ops),
            _ => None,
        }
    }

    fn translate_steps(steps: &[(u64, EventType, &str, Value)], initial: &str) -> Translation {
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
            })
            .collect();
        let ops = History::new(events).pair().unwrap();
        let refs: Vec<&Operation> = ops.ops.iter().collect();
        let parsed: Vec<ModelOp> = refs
            .iter()
            .map(|o| ModelKind::KvAppend.parse_op(o).unwrap())
            .collect();
        translate(&json!(initial), &refs, &parsed)
    }

    #[test]
    fn gets_pin_each_append_to_its_predecessor() {
        let t = run(
            &[
                (0, Invoke, "append", json!("x1y")),
                (1, Invoke, "append", json!("x2y")),
                (0, Ok, "append", json!("x1y")),
                (1, Ok, "append", json!("x2y")),
                (2, Invoke, "get", Value::Null),
                (2, Ok, "get", json!("x0yx2yx1y")),
                (3, Invoke, "put", json!("x3y")),
                (3, Ok, "put", json!("x3y")),
                (3, Invoke, "append", json!("x4y")),
                (3, Info, "append", json!("x4y")),
            ],
            "x0y",
        )
        .unwrap();
        assert_eq!(
            t,
            vec![
                ModelOp::Cas(json!("x2y"), json!("x1y")),
                ModelOp::Cas(Value::Null, json!("x2y")),
                ModelOp::Read(Some(json!("x1y"))),
                ModelOp::Write(json!("x3y")),
                ModelOp::Write(json!("x4y")),
            ]
        );
    }

    #[test]
    fn declines_what_it_cannot_translate_and_refutes_impossible_gets() {
        let append_get = |a: &str, g: &str| {
            vec![
                (0, Invoke, "append", json!(a)),
                (0, Ok, "append", json!(a)),
                (1, Invoke, "get", Value::Null),
                (1, Ok, "get", json!(g)),
            ]
        };
        let refuted = |t: Translation| matches!(t, Translation::Refuted { op: 1, .. });
        // the initial value is missing from the get
        assert!(refuted(translate_steps(&append_get("x1y", "x1y"), "x0y")));
        // a token nobody wrote
        assert!(refuted(translate_steps(&append_get("x1y", "x1yx9y"), "")));
        // not a concatenation of tokens
        assert!(refuted(translate_steps(&append_get("x1y", "x1"), "")));
        // unframed: declined
        assert_eq!(
            translate_steps(&append_get("abab", "abab"), ""),
            Translation::Declined
        );
        // two gets disagree on what precedes x2y
        let mut h = append_get("x1y", "x1y");
        h.extend([
            (2, Invoke, "append", json!("x2y")),
            (2, Ok, "append", json!("x2y")),
            (3, Invoke, "get", Value::Null),
            (3, Ok, "get", json!("x1yx2y")),
            (4, Invoke, "get", Value::Null),
            (4, Ok, "get", json!("x2y")),
        ]);
        assert!(matches!(
            translate_steps(&h, ""),
            Translation::Refuted { op: 4, .. }
        ));
        // a repeated token: declined
        let mut h = append_get("x1y", "x1y");
        h.extend([
            (2, Invoke, "append", json!("x1y")),
            (2, Ok, "append", json!("x1y")),
        ]);
        assert_eq!(translate_steps(&h, ""), Translation::Declined);
    }
}
