//! The lattice of transactional consistency models, and what anomalies say about it.
//!
//! Elle (jepsen-io/elle, `consistency_model.clj`) relates the models users are promised
//! in a hierarchy ("a history that satisfies model A also satisfies model B"), says which
//! anomalies each model directly proscribes, and which anomalies imply others (a G0
//! cycle is also a G1c; a G2-item is also a G2; a `-process` anomaly is also its
//! `-realtime` variant, since a process runs one transaction at a time). From those three
//! relations, each found anomaly rules out every model that proscribes it or anything
//! it implies, and every model stronger than those. This module holds the same three
//! relations, under the same names, as data ([`MODEL_TABLE`], [`ANOMALY_IMPLIES`]); the
//! closures are computed once.
//!
//! Deliberate differences from Elle's tables, each for a sound answer:
//! - Only transactional models are judged. Elle's graph also holds single-object models
//!   (linearizable, sequential, causal, PRAM, …) and view-serializable, 1SR and
//!   session-serializable, which no anomaly either checker detects can rule out: listing
//!   them as "still consistent" would say nothing.
//! - Our anti-dependencies are always on one key (an item), so our `G-single` and
//!   `G-nonadjacent` cycles are Elle's `G-single-item` and `G-nonadjacent-item` (which
//!   imply G2-item and so rule out repeatable read); [`lattice_kind`] maps them.
//! - `garbage-read` (a value nobody wrote) is not in Elle's tables; no model allows it,
//!   so like `duplicate-elements` it is proscribed by read-uncommitted.
//! - rw-register version orders may be inferred under an assumption (writes follow
//!   reads: read-committed; per-process order: strong-session-read-committed; real-time
//!   order: strong-read-committed). An anomaly found with such an inference rules out
//!   only the models that also imply its assumption ([`Judgement`] takes it per kind);
//!   `cyclic-versions` (Elle's name: the inferred version order has a cycle) is
//!   proscribed by read-uncommitted, restricted the same way.
//!
//! Any anomaly kind this module does not know rules out every model: better a false
//! alarm than a silent pass.

use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// A transactional consistency model. Variants are listed weakest first in the sense
/// that a model only implies models listed before it; the derived `Ord` is that listing
/// order (stable output), not strength: use [`ConsistencyModel::implies`] for strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsistencyModel {
    ReadUncommitted,
    ReadCommitted,
    MonotonicView,
    MonotonicSnapshotRead,
    CursorStability,
    ConsistentView,
    ForwardConsistentView,
    MonotonicAtomicView,
    ReadAtomic,
    UpdateAtomic,
    CausalCerone,
    Prefix,
    ParallelSnapshotIsolation,
    RepeatableRead,
    UpdateSerializable,
    SnapshotIsolation,
    Serializable,
    StrongSessionReadUncommitted,
    StrongSessionReadCommitted,
    StrongReadUncommitted,
    StrongReadCommitted,
    StrongSessionSnapshotIsolation,
    StrongSnapshotIsolation,
    StrongSessionSerializable,
    StrictSerializable,
}

use ConsistencyModel as M;

/// One model: its name, other names users know it by, the models it directly implies
/// and the anomalies it directly proscribes (beyond those of the models it implies).
pub struct ModelDef {
    pub model: ConsistencyModel,
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub implies: &'static [ConsistencyModel],
    pub proscribes: &'static [&'static str],
}

/// Every model, in [`ConsistencyModel`] order. Sources as in Elle: Adya (PL-*), Bailis
/// et al. (HAT), Cerone et al., Daudjee & Salem (strong session / strong SI).
pub const MODEL_TABLE: [ModelDef; 25] = [
    ModelDef {
        model: M::ReadUncommitted,
        name: "read-uncommitted",
        aliases: &["PL-1"],
        implies: &[],
        proscribes: &[
            "G0",
            "duplicate-elements",
            "cyclic-versions",
            "garbage-read",
        ],
    },
    ModelDef {
        model: M::ReadCommitted,
        name: "read-committed",
        aliases: &["PL-2"],
        implies: &[M::ReadUncommitted],
        proscribes: &["G1"],
    },
    ModelDef {
        model: M::MonotonicView,
        name: "monotonic-view",
        aliases: &["PL-2L"],
        implies: &[M::ReadCommitted],
        proscribes: &["G1", "G-monotonic"],
    },
    ModelDef {
        model: M::MonotonicSnapshotRead,
        name: "monotonic-snapshot-read",
        aliases: &["PL-MSR"],
        implies: &[M::ReadCommitted],
        proscribes: &["G1", "G-MSR"],
    },
    ModelDef {
        model: M::CursorStability,
        name: "cursor-stability",
        aliases: &["PL-CS"],
        implies: &[M::ReadCommitted],
        proscribes: &["G1", "G-cursor", "lost-update"],
    },
    ModelDef {
        model: M::ConsistentView,
        name: "consistent-view",
        aliases: &["PL-2+"],
        implies: &[M::CursorStability, M::MonotonicView],
        proscribes: &["G1", "G-single"],
    },
    ModelDef {
        model: M::ForwardConsistentView,
        name: "forward-consistent-view",
        aliases: &["PL-FCV"],
        implies: &[M::ConsistentView],
        proscribes: &["G1", "G-SIb"],
    },
    ModelDef {
        model: M::MonotonicAtomicView,
        name: "monotonic-atomic-view",
        aliases: &[],
        implies: &[M::ReadCommitted],
        proscribes: &[],
    },
    ModelDef {
        model: M::ReadAtomic,
        name: "read-atomic",
        aliases: &[],
        implies: &[M::MonotonicAtomicView],
        proscribes: &["internal", "G1a", "future-read"],
    },
    ModelDef {
        model: M::UpdateAtomic,
        name: "update-atomic",
        aliases: &[],
        implies: &[M::ReadAtomic],
        proscribes: &["lost-update"],
    },
    ModelDef {
        model: M::CausalCerone,
        name: "causal-cerone",
        aliases: &[],
        implies: &[M::ReadAtomic],
        proscribes: &["internal", "G1a"],
    },
    ModelDef {
        model: M::Prefix,
        name: "prefix",
        aliases: &[],
        implies: &[M::CausalCerone],
        proscribes: &["internal", "G1a"],
    },
    ModelDef {
        model: M::ParallelSnapshotIsolation,
        name: "parallel-snapshot-isolation",
        aliases: &[],
        implies: &[M::CausalCerone, M::UpdateAtomic],
        proscribes: &["internal", "G1a"],
    },
    ModelDef {
        model: M::RepeatableRead,
        name: "repeatable-read",
        aliases: &["PL-2.99"],
        implies: &[M::CursorStability, M::MonotonicAtomicView],
        proscribes: &["G1", "G2-item", "lost-update"],
    },
    ModelDef {
        model: M::UpdateSerializable,
        name: "update-serializable",
        aliases: &["PL-3U"],
        implies: &[M::ForwardConsistentView],
        proscribes: &["G1", "G-update"],
    },
    ModelDef {
        model: M::SnapshotIsolation,
        name: "snapshot-isolation",
        aliases: &["PL-SI"],
        implies: &[
            M::ForwardConsistentView,
            M::MonotonicAtomicView,
            M::MonotonicSnapshotRead,
            M::ParallelSnapshotIsolation,
            M::Prefix,
        ],
        // Generalized SI forbids every cycle whose rw edges are all non-adjacent.
        proscribes: &["internal", "G1", "G-SI", "G-nonadjacent"],
    },
    ModelDef {
        model: M::Serializable,
        name: "serializable",
        aliases: &["PL-3", "conflict-serializable"],
        implies: &[
            M::RepeatableRead,
            M::UpdateSerializable,
            M::SnapshotIsolation,
        ],
        proscribes: &["internal", "G1", "G2"],
    },
    ModelDef {
        model: M::StrongSessionReadUncommitted,
        name: "strong-session-read-uncommitted",
        aliases: &["strong-session-PL-1"],
        implies: &[M::ReadUncommitted],
        proscribes: &["G0-process"],
    },
    ModelDef {
        model: M::StrongSessionReadCommitted,
        name: "strong-session-read-committed",
        aliases: &["strong-session-PL-2"],
        implies: &[M::ReadCommitted, M::StrongSessionReadUncommitted],
        proscribes: &["G1c-process"],
    },
    ModelDef {
        model: M::StrongReadUncommitted,
        name: "strong-read-uncommitted",
        aliases: &["strong-PL-1"],
        implies: &[M::StrongSessionReadUncommitted],
        proscribes: &["G0-realtime"],
    },
    ModelDef {
        model: M::StrongReadCommitted,
        name: "strong-read-committed",
        aliases: &["strong-PL-2"],
        implies: &[M::StrongSessionReadCommitted, M::StrongReadUncommitted],
        proscribes: &["G1c-realtime"],
    },
    ModelDef {
        model: M::StrongSessionSnapshotIsolation,
        name: "strong-session-snapshot-isolation",
        aliases: &[],
        implies: &[M::SnapshotIsolation, M::StrongSessionReadCommitted],
        proscribes: &["internal", "G1-process", "G-nonadjacent-process"],
    },
    ModelDef {
        model: M::StrongSnapshotIsolation,
        name: "strong-snapshot-isolation",
        aliases: &[],
        implies: &[M::StrongSessionSnapshotIsolation, M::StrongReadCommitted],
        proscribes: &["internal", "G1-realtime", "G-nonadjacent-realtime"],
    },
    ModelDef {
        model: M::StrongSessionSerializable,
        name: "strong-session-serializable",
        aliases: &[],
        implies: &[M::Serializable, M::StrongSessionSnapshotIsolation],
        proscribes: &["G1-process", "G2-process"],
    },
    ModelDef {
        model: M::StrictSerializable,
        name: "strict-serializable",
        aliases: &["PL-SS", "strong-serializable"],
        implies: &[
            M::Serializable,
            M::SnapshotIsolation,
            M::StrongSnapshotIsolation,
            M::StrongSessionSerializable,
        ],
        proscribes: &["G1", "G1c-realtime", "G2-realtime"],
    },
];

/// Every model, in [`ConsistencyModel`] order.
pub const MODELS: [ConsistencyModel; 25] = {
    let mut out = [M::ReadUncommitted; 25];
    let mut i = 0;
    while i < 25 {
        out[i] = MODEL_TABLE[i].model;
        i += 1;
    }
    out
};

/// Anomaly `a` implies each of `b` (Elle's `implied-anomalies`): whenever `a` is
/// present, so is every `b`.
pub const ANOMALY_IMPLIES: &[(&str, &[&str])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    (
        "G-single-item",
        &["G-single", "G-single-item-process", "G-nonadjacent-item"],
    ),
    (
        "G-single-item-process",
        &[
            "G-single-process",
            "G-single-item-realtime",
            "G-nonadjacent-item-process",
        ],
    ),
    (
        "G-single-item-realtime",
        &["G-single-realtime", "G-nonadjacent-item-realtime"],
    ),
    ("G-single", &["G-nonadjacent", "G-SIb", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    (
        "G-nonadjacent-item",
        &["G-nonadjacent", "G2-item", "G-nonadjacent-item-process"],
    ),
    (
        "G-nonadjacent-item-process",
        &[
            "G-nonadjacent-process",
            "G2-item-process",
            "G-nonadjacent-item-realtime",
        ],
    ),
    (
        "G-nonadjacent-item-realtime",
        &["G2-item-realtime", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent", &["G2", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2-process", &["G2-realtime"]),
    ("G-SIa", &["G-SI"]),
    ("G-SIb", &["G-SI"]),
    ("incompatible-order", &["G1a"]),
    ("future-read", &["G1c"]),
    ("dirty-update", &["G1a"]),
    ("lost-update", &["write-skew", "G2-item"]),
    ("write-skew", &["G2"]),
];

/// Every anomaly kind the checkers report, in the order results list them.
pub const ANOMALY_KINDS: [&str; 23] = [
    "garbage-read",
    "future-read",
    "duplicate-elements",
    "incompatible-order",
    "cyclic-versions",
    "internal",
    "G0",
    "G1a",
    "G1b",
    "G1c",
    "G-single",
    "G-nonadjacent",
    "G2-item",
    "G0-process",
    "G1c-process",
    "G-single-process",
    "G-nonadjacent-process",
    "G2-item-process",
    "G0-realtime",
    "G1c-realtime",
    "G-single-realtime",
    "G-nonadjacent-realtime",
    "G2-item-realtime",
];

/// The name of a reported kind in Elle's anomaly graph: every anti-dependency our
/// checkers infer is about one key, so our G-single and G-nonadjacent cycles (and their
/// variants) are Elle's `-item` anomalies.
pub fn lattice_kind(kind: &str) -> String {
    for base in ["G-single", "G-nonadjacent"] {
        if let Some(rest) = kind.strip_prefix(base) {
            if rest.is_empty() || rest == "-process" || rest == "-realtime" {
                return format!("{base}-item{rest}");
            }
        }
    }
    kind.to_string()
}

/// A set of models, as a bit per [`ConsistencyModel`].
type Set = u32;

const ALL: Set = (1 << MODEL_TABLE.len()) - 1;

fn bit(m: ConsistencyModel) -> Set {
    1 << m as u32
}

fn members(set: Set) -> Vec<ConsistencyModel> {
    MODELS.into_iter().filter(|m| set & bit(*m) != 0).collect()
}

/// The closures, computed once.
struct Lattice {
    /// Per model: the models it implies, itself included.
    below: [Set; 25],
    /// Per model: the models that imply it, itself included.
    above: [Set; 25],
    /// Per anomaly name: every anomaly it implies, itself included.
    implied: HashMap<&'static str, Vec<&'static str>>,
    /// Per anomaly name: the models that directly proscribe it.
    proscribed_by: HashMap<&'static str, Set>,
}

fn lattice() -> &'static Lattice {
    static LATTICE: OnceLock<Lattice> = OnceLock::new();
    LATTICE.get_or_init(|| {
        let mut below = [0; 25];
        // MODEL_TABLE lists a model after everything it implies: one pass suffices.
        for def in &MODEL_TABLE {
            let mut set = bit(def.model);
            for &m in def.implies {
                debug_assert!(m < def.model, "{} must follow {}", def.name, m.name());
                set |= below[m as usize];
            }
            below[def.model as usize] = set;
        }
        let mut above = [0; 25];
        for m in MODELS {
            for n in members(below[m as usize]) {
                above[n as usize] |= bit(m);
            }
        }
        let direct: HashMap<&str, &[&str]> = ANOMALY_IMPLIES.iter().copied().collect();
        let mut names: Vec<&'static str> = ANOMALY_IMPLIES
            .iter()
            .flat_map(|(a, bs)| std::iter::once(*a).chain(bs.iter().copied()))
            .chain(
                MODEL_TABLE
                    .iter()
                    .flat_map(|d| d.proscribes.iter().copied()),
            )
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut implied = HashMap::new();
        for &name in &names {
            let mut seen = vec![name];
            let mut i = 0;
            while i < seen.len() {
                for &next in direct.get(seen[i]).copied().unwrap_or_default() {
                    if !seen.contains(&next) {
                        seen.push(next);
                    }
                }
                i += 1;
            }
            implied.insert(name, seen);
        }
        let mut proscribed_by: HashMap<&str, Set> = HashMap::new();
        for def in &MODEL_TABLE {
            for &a in def.proscribes {
                *proscribed_by.entry(a).or_default() |= bit(def.model);
            }
        }
        Lattice {
            below,
            above,
            implied,
            proscribed_by,
        }
    })
}

impl ConsistencyModel {
    fn def(self) -> &'static ModelDef {
        &MODEL_TABLE[self as usize]
    }

    /// The canonical (friendly) name, as Elle prints it.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Other names the model is known by (`PL-2`, `PL-SS`, `strong-serializable`, …).
    pub fn aliases(self) -> &'static [&'static str] {
        self.def().aliases
    }

    /// The models this one implies directly (the lattice's edges).
    pub fn direct_implications(self) -> &'static [ConsistencyModel] {
        self.def().implies
    }

    /// True when every history satisfying `self` satisfies `other` (reflexive).
    pub fn implies(self, other: ConsistencyModel) -> bool {
        lattice().below[self as usize] & bit(other) != 0
    }
}

impl fmt::Display for ConsistencyModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model name that is not in [`MODEL_TABLE`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown consistency model `{0}`; known: {known}", known = known_names())]
pub struct UnknownModel(pub String);

fn known_names() -> String {
    MODEL_TABLE
        .iter()
        .map(|d| {
            if d.aliases.is_empty() {
                d.name.to_string()
            } else {
                format!("{} ({})", d.name, d.aliases.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for ConsistencyModel {
    type Err = UnknownModel;
    /// Canonical names and aliases; a leading `:` (EDN keyword) is accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().trim_start_matches(':');
        MODEL_TABLE
            .iter()
            .find(|d| d.name == name || d.aliases.contains(&name))
            .map(|d| d.model)
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
}

/// Read back by name (canonical or alias), as [`FromStr`] does, so that a stored
/// configuration naming models round-trips.
impl<'de> serde::Deserialize<'de> for ConsistencyModel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a comma-separated list of model names (`--consistency-models`).
pub fn parse_models(list: &str) -> Result<Vec<ConsistencyModel>, UnknownModel> {
    let mut out = Vec::new();
    for name in list.split(',').filter(|n| !n.trim().is_empty()) {
        let m: ConsistencyModel = name.parse()?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    if out.is_empty() {
        return Err(UnknownModel(list.to_string()));
    }
    Ok(out)
}

/// The models an anomaly of `kind` rules out, found under `assumes` (the model under
/// which its version order was inferred, if any).
fn ruled_out_by(kind: &str, assumes: Option<ConsistencyModel>) -> Set {
    let l = lattice();
    let kind = lattice_kind(kind);
    let Some(implied) = l.implied.get(kind.as_str()) else {
        return ALL;
    };
    let mut direct = 0;
    for a in implied {
        direct |= l.proscribed_by.get(a).copied().unwrap_or(0);
    }
    let mut out = 0;
    for m in members(direct) {
        out |= l.above[m as usize];
    }
    match assumes {
        Some(a) => out & l.above[a as usize],
        None => out,
    }
}

/// The models `kind` rules out (without assumptions), weakest first.
pub fn models_ruled_out_by(kind: &str) -> Vec<ConsistencyModel> {
    members(ruled_out_by(kind, None))
}

/// True when an anomaly of `kind` says something about one of `models`: the only
/// anomalies searched for and reported when checking against them.
pub fn relevant(kind: &str, models: &[ConsistencyModel]) -> bool {
    let set = ruled_out_by(kind, None);
    models.iter().any(|m| set & bit(*m) != 0)
}

/// The models a check against `models` can judge: those that every detectable anomaly
/// ruling them out is relevant to `models` (so it was searched for). Every model that
/// `models` imply is judged; the others only if nothing unsearched could rule them out.
pub fn judged(models: &[ConsistencyModel]) -> Vec<ConsistencyModel> {
    let mut unsearched_rules = 0;
    for kind in ANOMALY_KINDS {
        if !relevant(kind, models) {
            unsearched_rules |= ruled_out_by(kind, None);
        }
    }
    members(ALL & !unsearched_rules)
}

/// What a set of anomalies says about the models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Every model ruled out, in [`ConsistencyModel`] order.
    pub ruled_out: Vec<ConsistencyModel>,
    /// The weakest models ruled out (Elle's `:not`): every ruled-out model implies one
    /// of them.
    pub not: Vec<ConsistencyModel>,
    /// The other ruled-out models (Elle's `:also-not`).
    pub also_not: Vec<ConsistencyModel>,
    /// The strongest judged models not ruled out: every judged model not ruled out is
    /// implied by one of them. Not ruled out is not proven: the checkers are sound, not
    /// complete.
    pub strongest: Vec<ConsistencyModel>,
}

/// Judges the models against the anomalies found: `(kind, assumption)` pairs (see the
/// module doc), over the models in `judged` (use [`MODELS`] when everything was
/// searched).
pub fn judge<'a>(
    found: impl IntoIterator<Item = (&'a str, Option<ConsistencyModel>)>,
    judged: &[ConsistencyModel],
) -> Judgement {
    let l = lattice();
    let mut out: Set = 0;
    for (kind, assumes) in found {
        out |= ruled_out_by(kind, assumes);
    }
    let ruled_out = members(out);
    // Weakest: implies no other ruled-out model.
    let not: Vec<ConsistencyModel> = ruled_out
        .iter()
        .copied()
        .filter(|m| l.below[*m as usize] & out & !bit(*m) == 0)
        .collect();
    let also_not = ruled_out
        .iter()
        .copied()
        .filter(|m| !not.contains(m))
        .collect();
    let mut possible: Set = 0;
    for m in judged {
        possible |= bit(*m);
    }
    possible &= !out;
    // Strongest: implied by no other possible model.
    let strongest = members(possible)
        .into_iter()
        .filter(|m| l.above[*m as usize] & possible & !bit(*m) == 0)
        .collect();
    Judgement {
        ruled_out,
        not,
        also_not,
        strongest,
    }
}

/// One representative of several strongest models: the one implying the most others
/// (ties: the later in [`ConsistencyModel`] order).
pub fn representative(models: &[ConsistencyModel]) -> Option<ConsistencyModel> {
    models
        .iter()
        .copied()
        .max_by_key(|m| (lattice().below[*m as usize].count_ones(), *m))
}

/// The whole lattice as data, for reports: per model its name, aliases and the models it
/// directly implies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatticeNode {
    pub name: String,
    pub aliases: Vec<String>,
    pub implies: Vec<String>,
}

/// Every model of the lattice, weakest first.
pub fn lattice_nodes() -> Vec<LatticeNode> {
    MODEL_TABLE
        .iter()
        .map(|d| LatticeNode {
            name: d.name.to_string(),
            aliases: d.aliases.iter().map(|a| a.to_string()).collect(),
            implies: d.implies.iter().map(|m| m.name().to_string()).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConsistencyModel::*;

    fn j(kinds: &[&str]) -> Judgement {
        judge(kinds.iter().map(|k| (*k, None)), &MODELS)
    }

    #[test]
    fn every_reported_kind_is_in_the_anomaly_graph() {
        for kind in ANOMALY_KINDS {
            assert!(
                lattice().implied.contains_key(lattice_kind(kind).as_str()),
                "{kind}"
            );
            assert!(ruled_out_by(kind, None) != 0, "{kind} rules out nothing");
        }
    }

    #[test]
    fn table_is_listed_weakest_first_and_every_model_is_below_strict() {
        for (i, d) in MODEL_TABLE.iter().enumerate() {
            assert_eq!(d.model as usize, i, "{}", d.name);
            for m in d.implies {
                assert!((*m as usize) < i);
            }
            assert!(StrictSerializable.implies(d.model), "{}", d.name);
        }
        assert!(Serializable.implies(RepeatableRead));
        assert!(Serializable.implies(SnapshotIsolation));
        assert!(!SnapshotIsolation.implies(RepeatableRead));
        assert!(!RepeatableRead.implies(SnapshotIsolation));
        assert!(StrongSnapshotIsolation.implies(ConsistentView));
        assert!(!StrongSessionSerializable.implies(StrongReadCommitted));
    }

    #[test]
    fn clean_history_is_strict_serializable() {
        let v = j(&[]);
        assert!(v.ruled_out.is_empty());
        assert_eq!(v.strongest, vec![StrictSerializable]);
    }

    #[test]
    fn write_skew_rules_out_repeatable_read_not_snapshot_isolation() {
        let v = j(&["G2-item"]);
        assert_eq!(v.not, vec![RepeatableRead]);
        assert_eq!(
            v.also_not,
            vec![Serializable, StrongSessionSerializable, StrictSerializable]
        );
        assert_eq!(
            v.strongest,
            vec![UpdateSerializable, StrongSnapshotIsolation]
        );
    }

    #[test]
    fn read_skew_rules_out_consistent_view_and_repeatable_read() {
        // Elle's rw-register test: G-single-item => :not #{:consistent-view :repeatable-read}.
        let v = j(&["G-single"]);
        assert_eq!(v.not, vec![ConsistentView, RepeatableRead]);
        assert!(v.ruled_out.contains(&SnapshotIsolation));
        assert!(!v.ruled_out.contains(&CursorStability));
    }

    #[test]
    fn realtime_variants() {
        let v = j(&["G-nonadjacent-realtime"]);
        assert_eq!(v.not, vec![StrongSnapshotIsolation]);
        assert_eq!(v.also_not, vec![StrictSerializable]);
        let v = j(&["G2-item-realtime"]);
        assert_eq!(v.not, vec![StrictSerializable]);
        assert_eq!(
            v.strongest,
            vec![StrongSnapshotIsolation, StrongSessionSerializable]
        );
        let v = j(&["G0-process"]);
        assert_eq!(v.not, vec![StrongSessionReadUncommitted]);
        assert_eq!(v.strongest, vec![Serializable]);
    }

    #[test]
    fn g0_rules_out_everything_and_g1_read_committed() {
        let v = j(&["G0"]);
        assert_eq!(v.not, vec![ReadUncommitted]);
        assert_eq!(v.ruled_out.len(), MODELS.len());
        assert!(v.strongest.is_empty());
        let v = j(&["G1a"]);
        assert_eq!(v.not, vec![ReadCommitted]);
        assert_eq!(v.strongest, vec![StrongReadUncommitted]);
        let v = j(&["no-such-anomaly"]);
        assert_eq!(v.ruled_out.len(), MODELS.len());
    }

    #[test]
    fn internal_rules_out_read_atomic_and_serializable_not_repeatable_read() {
        let v = j(&["internal"]);
        assert_eq!(v.not, vec![ReadAtomic]);
        assert!(v.ruled_out.contains(&Serializable));
        assert!(!v.ruled_out.contains(&RepeatableRead));
    }

    #[test]
    fn assumptions_restrict_what_an_anomaly_rules_out() {
        let v = judge([("cyclic-versions", Some(ReadCommitted))], &MODELS);
        assert_eq!(v.not, vec![ReadCommitted]);
        let v = judge([("G0", Some(StrongReadCommitted))], &MODELS);
        assert_eq!(v.not, vec![StrongReadCommitted]);
    }

    #[test]
    fn relevance_and_judged_models() {
        assert!(relevant("G2-item", &[RepeatableRead]));
        assert!(!relevant("G2-item", &[SnapshotIsolation]));
        assert!(!relevant("G-single-process", &[Serializable]));
        assert!(relevant(
            "G-single-process",
            &[StrongSessionSnapshotIsolation]
        ));
        let judged = judged(&[Serializable]);
        assert!(judged.contains(&Serializable));
        assert!(judged.contains(&SnapshotIsolation));
        assert!(!judged.contains(&StrictSerializable));
        assert_eq!(super::judged(&[StrictSerializable]), MODELS.to_vec());
    }

    #[test]
    fn names_and_aliases_round_trip() {
        for m in MODELS {
            assert_eq!(m.name().parse::<ConsistencyModel>(), Ok(m));
            for a in m.aliases() {
                assert_eq!(a.parse::<ConsistencyModel>(), Ok(m));
            }
        }
        assert_eq!("PL-2+".parse(), Ok(ConsistentView));
        assert_eq!(":strong-serializable".parse(), Ok(StrictSerializable));
        assert!("linearizable".parse::<ConsistencyModel>().is_err());
        assert_eq!(
            parse_models("serializable, PL-SI").unwrap(),
            vec![Serializable, SnapshotIsolation]
        );
    }
}
