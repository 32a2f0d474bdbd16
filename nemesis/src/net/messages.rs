//! Message-level faults: drop or hold single messages of a kind on a directed link.
//!
//! A partition cuts everything on a link. Some protocol bugs only show when *some*
//! messages arrive and others do not — a vote request delivered while the winner's
//! appends are lost, a vote request held back until its recipient has restarted. The
//! proxy backend can do this because every directed link carries one sender's frames to
//! one receiver: it splits the stream into frames and asks a [`FrameClassifier`] for
//! each frame's kind. What a kind is belongs to the system under test (for the bundled
//! node, the variant name of a Raft message), so the driver supplies the classifier.
//!
//! Held frames wait in the proxy, in order, until a later rule stops holding their kind;
//! then they are delivered — on the link's live connection, or on a connection the proxy
//! opens itself with the link's remembered greeting frame when the sender has none (its
//! old connection died with the receiver). Healing the network drops held frames.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::grudge::NodeName;

/// Names the kind of a frame's payload, or `None` for frames that are never filtered
/// (a connection's greeting, anything unrecognised).
pub type FrameClassifier = fn(&[u8]) -> Option<String>;

/// What happens to the messages of one directed link, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkRule {
    /// Kinds that are lost.
    pub drop: BTreeSet<String>,
    /// Kinds that are held back until a later rule no longer holds them.
    pub hold: BTreeSet<String>,
}

impl LinkRule {
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.hold.is_empty()
    }

    /// What to do with a frame of `kind` (`None`: an unfiltered frame).
    pub fn action(&self, kind: Option<&str>) -> FrameAction {
        match kind {
            Some(kind) if self.drop.contains(kind) => FrameAction::Drop,
            Some(kind) if self.hold.contains(kind) => FrameAction::Hold,
            _ => FrameAction::Forward,
        }
    }
}

/// The fate of one frame under a [`LinkRule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameAction {
    Forward,
    Drop,
    Hold,
}

/// The rules of every link that has one; links without a rule forward everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageRules {
    links: BTreeMap<(NodeName, NodeName), LinkRule>,
}

impl MessageRules {
    pub fn new() -> Self {
        MessageRules::default()
    }

    /// Drops messages of `kinds` sent from `from` to `to`.
    pub fn drop(&mut self, from: &str, to: &str, kinds: &[&str]) -> &mut Self {
        let rule = self.rule_mut(from, to);
        rule.drop.extend(kinds.iter().map(|k| k.to_string()));
        for kind in kinds {
            rule.hold.remove(*kind);
        }
        self
    }

    /// Holds back messages of `kinds` sent from `from` to `to`.
    pub fn hold(&mut self, from: &str, to: &str, kinds: &[&str]) -> &mut Self {
        let rule = self.rule_mut(from, to);
        rule.hold.extend(kinds.iter().map(|k| k.to_string()));
        for kind in kinds {
            rule.drop.remove(*kind);
        }
        self
    }

    /// Replaces the rule of the link from→to.
    pub fn set(&mut self, from: &str, to: &str, rule: LinkRule) -> &mut Self {
        *self.rule_mut(from, to) = rule;
        self
    }

    /// The rule of the link from→to (empty when it has none).
    pub fn rule(&self, from: &str, to: &str) -> LinkRule {
        self.links
            .get(&(from.to_string(), to.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Every node a rule names.
    pub fn nodes(&self) -> BTreeSet<&str> {
        self.links
            .keys()
            .flat_map(|(from, to)| [from.as_str(), to.as_str()])
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.links.values().all(LinkRule::is_empty)
    }

    /// `{"n1->n2": {"drop": [...], "hold": [...]}}`, for events and logs.
    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for ((from, to), rule) in &self.links {
            if rule.is_empty() {
                continue;
            }
            map.insert(
                format!("{from}->{to}"),
                json!({"drop": rule.drop, "hold": rule.hold}),
            );
        }
        Value::Object(map)
    }

    fn rule_mut(&mut self, from: &str, to: &str) -> &mut LinkRule {
        self.links
            .entry((from.to_string(), to.to_string()))
            .or_default()
    }
}

/// Splits `[u32 big-endian length][payload]` frames off the front of `buf`; returns the
/// complete frames (with their length prefix) and leaves a partial one in `buf`.
/// `Err` when a length exceeds `max`.
pub(crate) fn split_frames(buf: &mut Vec<u8>, max: usize) -> Result<Vec<Vec<u8>>, usize> {
    let mut frames = Vec::new();
    let mut start = 0;
    while buf.len() - start >= 4 {
        let len = u32::from_be_bytes([buf[start], buf[start + 1], buf[start + 2], buf[start + 3]])
            as usize;
        if len > max {
            return Err(len);
        }
        if buf.len() - start - 4 < len {
            break;
        }
        frames.push(buf[start..start + 4 + len].to_vec());
        start += 4 + len;
    }
    buf.drain(..start);
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frames_are_split_across_reads_and_oversized_ones_are_refused() {
        let mut stream = frame(b"hello");
        stream.extend(frame(b"{}"));
        stream.extend(frame(b"partial-frame"));
        let whole = stream.len();
        let mut buf = stream[..whole - 3].to_vec();
        let frames = split_frames(&mut buf, 100).unwrap();
        assert_eq!(frames, vec![frame(b"hello"), frame(b"{}")]);
        buf.extend_from_slice(&stream[whole - 3..]);
        assert_eq!(
            split_frames(&mut buf, 100).unwrap(),
            vec![frame(b"partial-frame")]
        );
        assert!(buf.is_empty());
        let mut huge = 1000u32.to_be_bytes().to_vec();
        assert_eq!(split_frames(&mut huge, 100), Err(1000));
    }

    #[test]
    fn later_rules_on_a_kind_replace_earlier_ones() {
        let mut rules = MessageRules::new();
        rules.hold("n1", "n2", &["RequestVote"]);
        assert_eq!(
            rules.rule("n1", "n2").action(Some("RequestVote")),
            FrameAction::Hold
        );
        rules.drop("n1", "n2", &["RequestVote", "AppendEntries"]);
        let rule = rules.rule("n1", "n2");
        assert_eq!(rule.action(Some("RequestVote")), FrameAction::Drop);
        assert_eq!(rule.action(Some("AppendEntries")), FrameAction::Drop);
        assert_eq!(rule.action(Some("PreVote")), FrameAction::Forward);
        assert_eq!(rule.action(None), FrameAction::Forward);
        assert!(rules.rule("n2", "n1").is_empty());
        assert_eq!(
            rules.to_json(),
            json!({"n1->n2": {"drop": ["AppendEntries", "RequestVote"], "hold": []}})
        );
        assert!(!rules.is_empty());
        assert!(MessageRules::new().is_empty());
    }
}
