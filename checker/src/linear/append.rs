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
//! Preconditions (otherwise [`translate`] declines): framed tokens; every update's token
//! distinct and not in the initial string; every `ok` get is the initial string's tokens
//! or a put's token, followed by append tokens; and all gets agree on what precedes each
//! token.
//!
//! Only "linearizable" is taken from the translation. Proof that a linearization L of the
//! translated key is one of the original (same operations, same order, same intervals):
//! call a version *seen* if it is `null`, a put's token, or an append token that some get
//! contains, and let expand(v) be the initial string, the put's token, or expand(p) + t
//! for `t` appended after `p`. Along L, whenever the version is seen the string is
//! expand(version): a put sets both; `cas [p t]` runs only at version `p`, seen (it is in
//! a get), so the string was expand(p) and becomes expand(p) + t = expand(t); a `write t`
//! for an append nobody saw leads to version `t`, which no read names and no cas expects,
//! so only a put (or another such append) can follow before anything observes the state.
//! A read of `v` runs at version `v`, when the string is expand(v), and expand(v) is
//! exactly what the get returned (its own tokens define the chain). Puts and appends are
//! legal in every state. So L is legal for the strings too.
//!
//! The converse also holds, but when the translated search says "not linearizable" the
//! checker does not rely on it: it falls back to the search on strings, which produces
//! the witness in the model's own terms.

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
    fn version(self) -> Value {
        match self {
            Pred::Initial => Value::Null,
            Pred::Token(t) => Value::String(t.to_string()),
        }
    }
}

/// The cas-register operations (initial state `null`) equivalent to a kv-append key's
/// `ops` (parsed as `parsed`) from `initial`, or `None` when the preconditions in the
/// module doc do not hold.
pub(crate) fn translate(
    initial: &Value,
    ops: &[&Operation],
    parsed: &[ModelOp],
) -> Option<Vec<ModelOp>> {
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
    let frame = Frame::of(texts)?;
    let initial_tokens = frame.split(initial)?;
    // token → is it a put's
    let mut written: HashMap<&str, bool> = HashMap::new();
    for (s, put) in updates.iter().flatten() {
        if written.insert(s.as_str(), *put).is_some() || initial_tokens.contains(&s.as_str()) {
            return None;
        }
    }
    let mut preds: HashMap<&str, Pred> = HashMap::new();
    let mut reads: Vec<Option<Value>> = vec![None; ops.len()];
    for (i, (op, p)) in ops.iter().zip(parsed).enumerate() {
        let (ModelOp::Get(Some(s)), Outcome::Ok) = (p, op.outcome) else {
            continue;
        };
        let tokens = frame.split(s)?;
        // Where the chain of appends starts: after a put's token, or after the initial
        // string's tokens.
        let (mut pred, rest) = match tokens.first() {
            Some(t) if written.get(t) == Some(&true) => (Pred::Token(t), &tokens[1..]),
            _ if tokens.starts_with(&initial_tokens) => {
                (Pred::Initial, &tokens[initial_tokens.len()..])
            }
            _ => return None,
        };
        for &t in rest {
            if written.get(t) != Some(&false) {
                return None;
            }
            if *preds.entry(t).or_insert(pred) != pred {
                return None;
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
                Some(pred) => ModelOp::Cas(pred.version(), Value::String(t.clone())),
                None => ModelOp::Write(Value::String(t.clone())),
            },
            // Gets that did not complete ok observed nothing.
            _ => ModelOp::Read(read),
        })
        .collect();
    Some(translated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, History, Process};
    use crate::model::ModelKind;
    use serde_json::json;
    use EventType::*;

    fn run(steps: &[(u64, EventType, &str, Value)], initial: &str) -> Option<Vec<ModelOp>> {
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
    fn declines_what_it_cannot_translate() {
        let append_get = |a: &str, g: &str| {
            vec![
                (0, Invoke, "append", json!(a)),
                (0, Ok, "append", json!(a)),
                (1, Invoke, "get", Value::Null),
                (1, Ok, "get", json!(g)),
            ]
        };
        // the initial value is missing from the get
        assert_eq!(run(&append_get("x1y", "x1y"), "x0y"), None);
        // a token nobody wrote
        assert_eq!(run(&append_get("x1y", "x1yx9y"), ""), None);
        // not a concatenation of tokens
        assert_eq!(run(&append_get("x1y", "x1"), ""), None);
        // unframed
        assert_eq!(run(&append_get("abab", "abab"), ""), None);
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
        assert_eq!(run(&h, ""), None);
        // a repeated token
        let mut h = append_get("x1y", "x1y");
        h.extend([
            (2, Invoke, "append", json!("x1y")),
            (2, Ok, "append", json!("x1y")),
        ]);
        assert_eq!(run(&h, ""), None);
    }
}
