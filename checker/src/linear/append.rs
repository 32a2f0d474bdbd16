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
//! tokens; every put's token written once and by no append; no token of the initial
//! string written again.
//!
//! Repeated append tokens (Porcupine's kv logs append a few tokens twice): a version is
//! then a node of the trie of the strings gets returned (a prefix of a get, which the
//! key held at some point), named `t#k` for the k-th node ending in a repeated `t`. Each
//! node was made by its own append of its last token (one append makes one string), so
//! a token shown in more places than appends write it refutes the key; otherwise every
//! injective matching of nodes to appends, each append invoked before a get showed its
//! node, is a translation as above, and the key is linearizable iff one of them is (a
//! linearization of the strings defines such a matching; the proofs below hold for each
//! matching, with "the append of `t`" read as "the append matched to the node"). At most
//! `MAX_MATCHINGS` matchings are tried; beyond that the strings are searched. A get that
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

/// Most ways of matching repeated tokens to their appends that are tried (each is
/// decided by the version chains); past this the key is searched on the strings.
const MAX_MATCHINGS: usize = 64;

/// What [`translate`] made of a key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Translation {
    /// The preconditions in the module doc do not hold (unframed strings, a put's token
    /// written twice or also appended, a token of the initial string written again, too
    /// many ways to match repeated tokens): search the strings.
    Declined,
    /// A get no linearization can explain, whatever the order of the others: operation
    /// `op` (a position), for `reason` (see "Refutations" in the module doc).
    Refuted { op: usize, reason: String },
    /// Equivalent cas-register operations over versions (initial state `null`): one list
    /// per way of matching repeated append tokens to the places gets show them (just one
    /// when every token is appended once). The key is linearizable iff one of them is.
    Ops(Vec<Vec<ModelOp>>),
}

/// A node of the trie of the strings gets returned: a version.
struct Node<'a> {
    /// The token that ends it (`None` for the initial string).
    token: Option<&'a str>,
    /// The version before it (`None` for the initial string and a put's token).
    parent: Option<usize>,
    /// The earliest completion of a get whose string runs through it.
    first_seen: u64,
    /// The get that first showed it (for explanations).
    shown_by: usize,
}

/// The cas-register operations equivalent to a kv-append key's `ops` (parsed as
/// `parsed`) from `initial`, a refutation, or [`Translation::Declined`] (module doc).
pub(crate) fn translate(initial: &Value, ops: &[&Operation], parsed: &[ModelOp]) -> Translation {
    let initial = initial.as_str().unwrap_or_default();
    let texts = parsed
        .iter()
        .filter_map(|p| match p {
            ModelOp::Put(s) | ModelOp::Append(s) => Some(s.as_str()),
            _ => None,
        })
        .chain((!initial.is_empty()).then_some(initial));
    let Some(frame) = Frame::of(texts) else {
        return Translation::Declined;
    };
    let Some(initial_tokens) = frame.split(initial) else {
        return Translation::Declined;
    };
    // Puts' tokens: each written once, by a put only. Appends' tokens: by appends only,
    // maybe more than once (the appends writing each).
    let mut puts: HashMap<&str, usize> = HashMap::new();
    let mut appends: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in parsed.iter().enumerate() {
        match p {
            ModelOp::Put(s) if puts.insert(s.as_str(), i).is_some() => {
                return Translation::Declined;
            }
            ModelOp::Append(s) => appends.entry(s.as_str()).or_default().push(i),
            _ => {}
        }
    }
    if puts.keys().any(|t| appends.contains_key(t))
        || initial_tokens
            .iter()
            .any(|t| puts.contains_key(t) || appends.contains_key(t))
    {
        return Translation::Declined;
    }
    let ret = |i: usize| ops[i].complete_index.unwrap_or(u64::MAX);

    // The trie of what gets returned: node 0 is the initial string, then one node per
    // put, then the appended versions.
    let mut nodes: Vec<Node> = vec![Node {
        token: None,
        parent: None,
        first_seen: u64::MAX,
        shown_by: usize::MAX,
    }];
    let mut put_node: HashMap<&str, usize> = HashMap::new();
    for (i, p) in parsed.iter().enumerate() {
        if let ModelOp::Put(s) = p {
            put_node.insert(s.as_str(), nodes.len());
            nodes.push(Node {
                token: Some(s.as_str()),
                parent: None,
                first_seen: u64::MAX,
                shown_by: i,
            });
        }
    }
    let mut children: HashMap<(usize, &str), usize> = HashMap::new();
    // The nodes each append token labels, in order of discovery.
    let mut edges: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut reads: Vec<Option<usize>> = vec![None; ops.len()];
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
        let (mut at, rest) = match tokens.first() {
            Some(t) if put_node.contains_key(t) => (put_node[t], &tokens[1..]),
            _ if tokens.starts_with(&initial_tokens) => (0, &tokens[initial_tokens.len()..]),
            _ => {
                return refuted(format!(
                    "get returned {s:?}, which starts neither with the initial value {initial:?} nor with a put's token, as every state of the key does"
                ))
            }
        };
        let mut path = vec![at];
        for &t in rest {
            let Some(writers) = appends.get(t) else {
                return refuted(if puts.contains_key(t) {
                    format!(
                        "get returned {s:?}, in which the put's token {t:?} follows other tokens, but a put replaces the whole string"
                    )
                } else {
                    format!(
                        "get returned {s:?}, which contains {t:?}, a token no operation appended"
                    )
                });
            };
            at = match children.get(&(at, t)) {
                Some(&child) => child,
                None => {
                    let labelled = edges.entry(t).or_default();
                    if labelled.len() == writers.len() {
                        // One more place than appends of it: some get is wrong.
                        let other = labelled[0];
                        let before = |n: usize| match nodes[n].parent {
                            Some(p) => format!("{:?}", nodes[p].token.unwrap_or_default()),
                            None => "the start".to_string(),
                        };
                        let (j, other_parent) = (nodes[other].shown_by, before(other));
                        let here = match at {
                            0 => "the initial value".to_string(),
                            n => format!("{:?}", nodes[n].token.unwrap_or_default()),
                        };
                        return refuted(if writers.len() == 1 {
                            format!(
                                "get returned {s:?}, where {t:?} follows {here}, but {} returned {:?}, where it follows {other_parent}; {t:?} was appended once, and what precedes it never changes while it is in the string",
                                ops[j],
                                match &parsed[j] {
                                    ModelOp::Get(Some(g)) => g.as_str(),
                                    _ => "",
                                },
                            )
                        } else {
                            format!(
                                "get returned {s:?}, where {t:?} follows {here}; gets show {t:?} in {} different places, but only {} appends write it",
                                writers.len() + 1,
                                writers.len()
                            )
                        });
                    }
                    let child = nodes.len();
                    nodes.push(Node {
                        token: Some(t),
                        parent: Some(at),
                        first_seen: u64::MAX,
                        shown_by: i,
                    });
                    children.insert((at, t), child);
                    labelled.push(child);
                    child
                }
            };
            path.push(at);
        }
        for &n in &path {
            nodes[n].first_seen = nodes[n].first_seen.min(ret(i));
        }
        reads[i] = Some(at);
    }

    // Which append created each node. A token appended once: that append (the version
    // chains judge its timing). A repeated token: every injective matching of the nodes
    // it labels to its appends, each append invoked before a get showed its node.
    let mut repeated: Vec<(&str, &Vec<usize>)> = edges
        .iter()
        .filter(|(t, _)| appends[*t].len() > 1)
        .map(|(t, e)| (*t, e))
        .collect();
    repeated.sort();
    let mut creator: Vec<Option<usize>> = vec![None; nodes.len()];
    for (t, labelled) in &edges {
        if let [only] = appends[t].as_slice() {
            creator[labelled[0]] = Some(*only);
        }
    }
    let mut matchings: Vec<Vec<Option<usize>>> = Vec::new();
    let slots: Vec<(usize, Vec<usize>)> = repeated
        .iter()
        .flat_map(|(t, labelled)| {
            labelled.iter().map(|&n| {
                let candidates = appends[t]
                    .iter()
                    .copied()
                    .filter(|&a| ops[a].invoke_index < nodes[n].first_seen)
                    .collect();
                (n, candidates)
            })
        })
        .collect();
    if let Some(&(n, _)) = slots.iter().find(|(_, c)| c.is_empty()) {
        let j = nodes[n].shown_by;
        return Translation::Refuted {
            op: j,
            reason: format!(
                "{} shows {:?}, but every append of it was invoked after that get completed",
                ops[j],
                nodes[n].token.unwrap_or_default()
            ),
        };
    }
    let mut used = vec![false; ops.len()];
    if !enumerate(&slots, 0, &mut used, &mut creator, &mut matchings) {
        return Translation::Declined;
    }
    if matchings.is_empty() {
        // No matching respects the invocations: every one leaves some node without an
        // append that could have made it in time.
        let (n, _) = slots[0];
        let j = nodes[n].shown_by;
        return Translation::Refuted {
            op: j,
            reason: format!(
                "{} shows {:?}, but the appends of that token cannot account for every place gets show it (each would have to be invoked before a get showed it)",
                ops[j],
                nodes[n].token.unwrap_or_default()
            ),
        };
    }

    let version = |n: usize| -> Value {
        match (n, nodes[n].token) {
            (0, _) | (_, None) => Value::Null,
            (_, Some(t)) if appends.get(t).is_some_and(|a| a.len() > 1) => {
                let k = edges[t].iter().position(|&e| e == n).unwrap_or(0);
                Value::String(format!("{t}#{k}"))
            }
            (_, Some(t)) => Value::String(t.to_string()),
        }
    };
    let alternatives = matchings
        .iter()
        .map(|creator| {
            let mut made: Vec<Option<usize>> = vec![None; ops.len()];
            for (n, c) in creator.iter().enumerate() {
                if let Some(a) = c {
                    made[*a] = Some(n);
                }
            }
            parsed
                .iter()
                .enumerate()
                .map(|(i, p)| match p {
                    ModelOp::Put(s) => ModelOp::Write(version(put_node[s.as_str()])),
                    ModelOp::Append(t) => match made[i] {
                        Some(n) => {
                            ModelOp::Cas(nodes[n].parent.map_or(Value::Null, &version), version(n))
                        }
                        // Appends nobody saw write a version no one names.
                        None if appends[t.as_str()].len() > 1 => {
                            ModelOp::Write(Value::String(format!("{t}#unseen{i}")))
                        }
                        None => ModelOp::Write(Value::String(t.clone())),
                    },
                    // Gets that did not complete ok observed nothing.
                    _ => ModelOp::Read(reads[i].map(&version)),
                })
                .collect()
        })
        .collect();
    Translation::Ops(alternatives)
}

/// Every injective assignment of the `slots` (node, candidate appends) from `at` on,
/// added to `out` as a full creator table; `false` when there are more than
/// [`MAX_MATCHINGS`].
fn enumerate(
    slots: &[(usize, Vec<usize>)],
    at: usize,
    used: &mut Vec<bool>,
    creator: &mut Vec<Option<usize>>,
    out: &mut Vec<Vec<Option<usize>>>,
) -> bool {
    let Some((node, candidates)) = slots.get(at) else {
        if out.len() == MAX_MATCHINGS {
            return false;
        }
        out.push(creator.clone());
        return true;
    };
    for &a in candidates {
        if used[a] {
            continue;
        }
        used[a] = true;
        creator[*node] = Some(a);
        let ok = enumerate(slots, at + 1, used, creator, out);
        used[a] = false;
        creator[*node] = None;
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use crate::model::ModelKind;
    use serde_json::json;
    use EventType::*;

    fn run(steps: &[(u64, EventType, &str, Value)], initial: &str) -> Option<Vec<ModelOp>> {
        match translate_steps(steps, initial) {
            Translation::Ops(mut alternatives) if alternatives.len() == 1 => alternatives.pop(),
            _ => None,
        }
    }

    fn translate_steps(steps: &[(u64, EventType, &str, Value)], initial: &str) -> Translation {
        let ops = crate::history::history_of(steps).pair().unwrap();
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
        // a put's token appended too: declined
        let mut h = append_get("x1y", "x1y");
        h.extend([
            (2, Invoke, "put", json!("x1y")),
            (2, Ok, "put", json!("x1y")),
        ]);
        assert_eq!(translate_steps(&h, ""), Translation::Declined);
    }

    #[test]
    fn repeated_tokens_give_one_translation_per_matching() {
        // x1y appended twice; gets show it in two places: after the start and after x2y.
        let h = [
            (0, Invoke, "append", json!("x1y")),
            (0, Ok, "append", json!("x1y")),
            (1, Invoke, "append", json!("x2y")),
            (2, Invoke, "append", json!("x1y")),
            (1, Ok, "append", json!("x2y")),
            (2, Ok, "append", json!("x1y")),
            (3, Invoke, "get", Value::Null),
            (3, Ok, "get", json!("x1yx2yx1y")),
        ];
        match translate_steps(&h, "") {
            Translation::Ops(alternatives) => assert_eq!(alternatives.len(), 2),
            other => panic!("{other:?}"),
        }
        // The first append of x1y was invoked after the get: only one matching is left.
        let late = [
            (1, Invoke, "append", json!("x2y")),
            (2, Invoke, "append", json!("x1y")),
            (1, Ok, "append", json!("x2y")),
            (2, Ok, "append", json!("x1y")),
            (3, Invoke, "get", Value::Null),
            (3, Ok, "get", json!("x2yx1y")),
            (0, Invoke, "append", json!("x1y")),
            (0, Ok, "append", json!("x1y")),
        ];
        match translate_steps(&late, "") {
            Translation::Ops(alternatives) => assert_eq!(alternatives.len(), 1),
            other => panic!("{other:?}"),
        }
        // Three places, two appends: refuted.
        let mut three = h.to_vec();
        three.extend([
            (4, Invoke, "get", Value::Null),
            (4, Ok, "get", json!("x1yx1y")),
        ]);
        assert!(matches!(
            translate_steps(&three, ""),
            Translation::Refuted { .. }
        ));
    }
}
