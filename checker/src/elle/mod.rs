//! Elle-style checkers for transactional histories: list-append and rw-register.
//!
//! Linearizability checks one object at a time; users of transactional stores ask whether
//! *transactions* are isolated, and at which level. Elle's answer (Kingsbury & Alvaro,
//! "Elle: Inferring Isolation Anomalies from Experimental Observations") is to infer the
//! version order of every key from what was read, derive dependencies between
//! transactions, and search the dependency graph for cycles, each of which names an
//! anomaly and rules out the consistency models that forbid it. With append-only lists
//! every read is a prefix of the key's history, so the order is observed; with
//! read/write registers it is inferred, under assumptions the answer keeps track of.
//!
//! Layout:
//! - `txn`: turns `txn` operations into micro-operations, interning keys and values.
//! - `list_append`: list-append (Elle's name): infers each key's version order from the longest read and
//!   reports the anomalies visible without a graph (incompatible orders, duplicate
//!   elements, garbage, aborted and intermediate reads, internal inconsistency, future
//!   reads); also the collector every analysis reports into.
//! - `rw_register`: rw-register (Elle's name): version orders from the initial state, writes-follow-reads,
//!   process and real-time order, each edge tagged with the model it assumes; its own
//!   anomalies without a graph; its ww/wr/rw edges.
//! - `graph`: the dependency graph on petgraph (ww, wr, rw, process and real-time
//!   edges, each remembering why it exists).
//! - `cycles`: strongly connected components, and within each the shortest cycle found
//!   for every anomaly class (G0, G1c, G-single, G-nonadjacent, G2-item and their `-process` /
//!   `-realtime` variants) that matters to the checked models, under a work budget.
//! - [`models`]: Elle's lattice of consistency models, which anomalies each rules out,
//!   and the answer: the weakest models violated, every model ruled out, the strongest
//!   still possible.
//! - [`gen`]: a seeded generator of list-append and rw-register histories (valid by
//!   construction, with optional faults), for tests and the benchmark.
//!
//! ```
//! use splitbrain_checker::elle::check_list_append;
//! use splitbrain_checker::{Event, EventType, History, Process};
//! use serde_json::json;
//!
//! let ev = |index, process, kind, value| Event {
//!     index, time: index, process: Process::Client(process), kind, f: "txn".into(),
//!     key: None, value, node: None, error: None, extra: Default::default(), line: None,
//! };
//! let history = History::new(vec![
//!     ev(0, 0, EventType::Invoke, json!([["append", 1, 10]])),
//!     ev(1, 0, EventType::Ok, json!([["append", 1, 10]])),
//!     ev(2, 1, EventType::Invoke, json!([["r", 1, null]])),
//!     ev(3, 1, EventType::Ok, json!([["r", 1, [10]]])),
//! ]);
//! let result = check_list_append(&history.pair().unwrap()).unwrap();
//! assert!(result.valid);
//! assert_eq!(result.strongest_model.as_deref(), Some("strict-serializable"));
//! ```

mod cycles;
pub mod gen;
mod graph;
mod list_append;
pub mod models;
mod rw_register;
mod txn;

use crate::history::{Key, Operations};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

pub use models::ConsistencyModel;

/// The transactional analyses, by the names `--model` and results use.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum TxnAnalysis {
    /// Append-only lists: every read is a prefix of the key's history.
    #[default]
    ListAppend,
    /// Read/write registers: version orders inferred.
    RwRegister,
}

impl TxnAnalysis {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

// Results compare their `analysis` with plain names.
impl PartialEq<&str> for TxnAnalysis {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// How the analysis runs.
#[derive(Debug, Clone)]
pub struct ElleOptions {
    /// The models the verdict is about (Elle's `:consistency-models`): `valid` means none
    /// of them is ruled out. Only anomalies that rule out one of them are searched for
    /// and reported. Default: strict-serializable, which implies every other model, so
    /// every anomaly is searched.
    pub models: Vec<ConsistencyModel>,
    /// Edge visits the cycle search may spend per strongly connected component and per
    /// anomaly class. When it runs out, the shortest cycle found so far is reported (and
    /// at least one cycle per component always is): the budget bounds the cost of huge
    /// components in badly broken histories, not the verdict.
    pub search_budget_per_class: u64,
    /// At most this many examples of each anomaly kind are kept (all are counted).
    pub max_examples_per_kind: usize,
}

impl Default for ElleOptions {
    fn default() -> Self {
        ElleOptions {
            models: vec![ConsistencyModel::StrictSerializable],
            search_budget_per_class: 1_000_000,
            max_examples_per_kind: 10,
        }
    }
}

/// What the analysis found.
///
/// Also the `list_append` object of `results.json`, which reads files written by older
/// versions: the fields that came later are `default` (see the reports crate's schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElleResult {
    /// `list-append` or `rw-register` (files from before rw-register: `list-append`).
    #[serde(default)]
    pub analysis: TxnAnalysis,
    /// True when no model of `consistency_models` is ruled out.
    pub valid: bool,
    /// The models checked against (canonical names).
    #[serde(default)]
    pub consistency_models: Vec<String>,
    /// `consistency_models` joined by ", " (the field older readers know).
    #[serde(default)]
    pub checked_model: String,
    /// Examples of every anomaly found, at most `max_examples_per_kind` per kind, ordered
    /// by kind (see [`models::ANOMALY_KINDS`]) and then by where they were found.
    #[serde(default)]
    pub anomalies: Vec<Anomaly>,
    /// Every anomaly kind found, in [`models::ANOMALY_KINDS`] order.
    #[serde(default)]
    pub anomaly_types: Vec<String>,
    /// How many of each kind were found (cycle kinds: one per strongly connected
    /// component and class).
    #[serde(default)]
    pub anomaly_counts: BTreeMap<String, usize>,
    /// The weakest models ruled out (Elle's `:not`): every ruled-out model implies one
    /// of them.
    #[serde(default)]
    pub not: Vec<String>,
    /// The other models ruled out (Elle's `:also-not`).
    #[serde(default)]
    pub also_not: Vec<String>,
    /// Every model ruled out (`not` and `also_not`), in lattice order (weakest first).
    #[serde(default)]
    pub ruled_out: Vec<String>,
    /// The strongest models not ruled out, among those the check can judge: every
    /// judged model not ruled out is implied by one of them. (Not ruled out is not
    /// proven: the analysis finds anomalies, it cannot prove their absence in general.)
    #[serde(default)]
    pub strongest_models: Vec<String>,
    /// One of `strongest_models`: the one implying the most other models; `None` if
    /// every judged model is ruled out.
    #[serde(default)]
    pub strongest_model: Option<String>,
    /// The models this check can judge: every model none of whose anomalies was left
    /// unsearched because of `consistency_models` (all of them by default).
    #[serde(default)]
    pub judged_models: Vec<String>,
    /// Transactions analysed (completed `ok` or `info`).
    #[serde(default)]
    pub txns: usize,
    /// Transactions that completed `fail` (their writes must never be seen).
    #[serde(default)]
    pub failed_txns: usize,
    /// Operations that are not `txn`s and were ignored.
    #[serde(default)]
    pub skipped_ops: usize,
    /// The size of the dependency graph and of its cycle search.
    #[serde(default)]
    pub graph: GraphStats,
    /// Wall-clock time of the analysis, in milliseconds.
    #[serde(default)]
    pub elapsed_ms: f64,
}

/// The size of the dependency graph and how the cycle search went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GraphStats {
    pub nodes: usize,
    /// Distinct (from, to) pairs; one pair may carry several kinds of dependency.
    pub edges: usize,
    /// Strongly connected components with more than one transaction.
    pub cyclic_components: usize,
    pub largest_component: usize,
    /// Components where the budget ran out before every class was searched
    /// exhaustively: their cycles are real, but a shorter one may exist.
    pub truncated_components: usize,
}

/// One anomaly, with what a person needs to verify it by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// `G0`, `G1c-process`, `G-single-realtime`, `G1a`, `incompatible-order`, ... (see
    /// [`models::ANOMALY_KINDS`]).
    pub kind: String,
    /// For cycle anomalies, the cycle: each step's transaction and the edge to the next
    /// step's (the last step's edge returns to the first). Empty otherwise.
    #[serde(default)]
    pub cycle: Vec<CycleStep>,
    /// The transactions involved (for cycles, the same as the cycle's).
    #[serde(default)]
    pub txns: Vec<TxnRef>,
    /// The key involved, for anomalies about one key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// The whole story in one paragraph.
    pub explanation: String,
    /// For rw-register: the model under which the version order this anomaly rests on
    /// was inferred (`read-committed`: a transaction's write follows its read;
    /// `strong-session-read-committed`: process order; `strong-read-committed`: real-time
    /// order). The anomaly rules out only models that imply it. Absent when the order
    /// was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assumes: Option<String>,
}

/// One transaction of a cycle, and the dependency leading to the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleStep {
    /// The transaction's [`crate::Operation::id`].
    pub txn: usize,
    pub process: u64,
    /// Event index of the transaction's invocation.
    pub invoke_index: u64,
    /// `ww`, `wr`, `rw`, `process` or `realtime`.
    pub edge_to_next: String,
    /// The key the edge is about (`ww`, `wr` and `rw` edges); absent for `process` and
    /// `realtime` edges, which are about no key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// Why the edge exists, e.g. "T1 read key 5 without 3; T2 appended 3, the next version".
    #[serde(default)]
    pub reason: String,
}

/// A transaction named in an anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnRef {
    /// [`crate::Operation::id`]: an index into `Operations::ops`, or into
    /// `Operations::failed` when `status` is `fail`.
    pub id: usize,
    pub process: u64,
    pub invoke_index: u64,
    /// `ok`, `info` or `fail`.
    pub status: String,
}

impl ElleResult {
    /// Valid exactly when no model of `consistency_models` is ruled out; the analysis
    /// has no budget that leaves it undecided.
    pub fn verdict(&self) -> Verdict {
        if self.valid {
            Verdict::Valid
        } else {
            Verdict::Invalid
        }
    }

    /// Every model ruled out: `ruled_out`, or `not` in results written before
    /// `ruled_out` existed (which put every ruled-out model there).
    pub fn all_ruled_out(&self) -> &[String] {
        if self.ruled_out.is_empty() {
            &self.not
        } else {
            &self.ruled_out
        }
    }

    /// One line of plain text: the anomalies found, the weakest models they rule out
    /// and the strongest models still possible.
    pub fn summary(&self) -> String {
        let strongest = if self.strongest_models.is_empty() {
            "none".to_string()
        } else {
            self.strongest_models.join(", ")
        };
        if self.valid {
            format!(
                "{} transactions ({}), checked against {}: {}; strongest models still possible: {strongest}",
                self.txns,
                self.analysis,
                self.consistency_models.join(", "),
                if self.anomalies.is_empty() { "no anomalies" } else { "no anomaly rules them out" }
            )
        } else {
            let first = self
                .anomalies
                .first()
                .map_or(String::new(), |a| format!("; first: {}", a.explanation));
            format!(
                "{} transactions ({}); anomalies {} rule out {} (and every stronger model); strongest models still possible: {strongest}{first}",
                self.txns,
                self.analysis,
                self.anomaly_types.join(", "),
                self.not.join(", "),
            )
        }
    }
}

/// Why a history cannot be analysed as list-append transactions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ElleError {
    #[error("txn operation {id} (process {process}, invoked at event {invoke_index}): {reason}")]
    MalformedTxn {
        id: usize,
        process: u64,
        invoke_index: u64,
        reason: String,
    },
    #[error("value {element} is {verb} to key {key} by two transactions (process {first_process} at event {first_invoke_index}, and process {second_process} at event {second_invoke_index}); the analysis needs every written value to be unique per key")]
    DuplicateAppend {
        /// `appended` (list-append) or `written` (rw-register).
        verb: &'static str,
        key: String,
        element: String,
        first_process: u64,
        first_invoke_index: u64,
        second_process: u64,
        second_invoke_index: u64,
    },
}

/// Checks a list-append history against strict serializability (see
/// [`check_list_append_with`] for other models and budgets).
pub fn check_list_append(ops: &Operations) -> Result<ElleResult, ElleError> {
    check_list_append_with(ops, &ElleOptions::default())
}

/// Checks a list-append history: `txn` operations whose value is a list of
/// `["append", key, value]` and `["r", key, list-or-null]` micro-operations. Other
/// operations are ignored (and counted in `skipped_ops`).
pub fn check_list_append_with(
    ops: &Operations,
    options: &ElleOptions,
) -> Result<ElleResult, ElleError> {
    let started = Instant::now();
    let models = checked_models(options);
    let parsed = txn::parse(ops, txn::Datatype::ListAppend)?;
    let mut found = list_append::Collector::new(options.max_examples_per_kind, &models);
    let orders = list_append::infer(&parsed, &mut found);
    let deps = graph::build(&parsed, &orders);
    let stats = cycles::search(&parsed, &deps, options, &mut found);
    Ok(finish(
        TxnAnalysis::ListAppend,
        &parsed,
        &models,
        found,
        stats,
        started,
    ))
}

/// Checks an rw-register history against strict serializability (see
/// [`check_rw_register_with`]).
pub fn check_rw_register(ops: &Operations) -> Result<ElleResult, ElleError> {
    check_rw_register_with(ops, &ElleOptions::default())
}

/// Checks an rw-register history: `txn` operations whose value is a list of
/// `["w", key, value]` and `["r", key, value-or-null]` micro-operations, every written
/// value unique per key, nil the initial state. Version orders are inferred as far as
/// the checked models allow (see the `rw_register` module); other operations are ignored.
pub fn check_rw_register_with(
    ops: &Operations,
    options: &ElleOptions,
) -> Result<ElleResult, ElleError> {
    let started = Instant::now();
    let models = checked_models(options);
    let parsed = txn::parse(ops, txn::Datatype::RwRegister)?;
    let mut found = list_append::Collector::new(options.max_examples_per_kind, &models);
    let deps = rw_register::analyse(
        &parsed,
        rw_register::Inference::for_models(&models),
        &mut found,
    );
    let stats = cycles::search(&parsed, &deps, options, &mut found);
    Ok(finish(
        TxnAnalysis::RwRegister,
        &parsed,
        &models,
        found,
        stats,
        started,
    ))
}

/// The checked models; none given means strict serializability.
fn checked_models(options: &ElleOptions) -> Vec<ConsistencyModel> {
    if options.models.is_empty() {
        vec![ConsistencyModel::StrictSerializable]
    } else {
        options.models.clone()
    }
}

/// Judges the models against what was found and assembles the result.
fn finish(
    analysis: TxnAnalysis,
    parsed: &txn::Parsed<'_>,
    checked: &[ConsistencyModel],
    found: list_append::Collector,
    stats: GraphStats,
    started: Instant,
) -> ElleResult {
    let (anomalies, counts, assumptions) = found.finish();
    let anomaly_types: Vec<String> = models::ANOMALY_KINDS
        .iter()
        .filter(|k| counts.contains_key(**k))
        .map(|k| k.to_string())
        .chain(
            counts
                .keys()
                .filter(|k| !models::ANOMALY_KINDS.contains(&k.as_str()))
                .cloned(),
        )
        .collect();
    let judged = models::judged(checked);
    let verdict = models::judge(assumptions.iter().map(|(k, a)| (k.as_str(), *a)), &judged);
    let valid = !checked.iter().any(|m| verdict.ruled_out.contains(m));
    let names = |ms: &[ConsistencyModel]| -> Vec<String> {
        ms.iter().map(|m| m.name().to_string()).collect()
    };
    ElleResult {
        analysis,
        valid,
        consistency_models: names(checked),
        checked_model: names(checked).join(", "),
        anomalies,
        anomaly_types,
        anomaly_counts: counts,
        not: names(&verdict.not),
        also_not: names(&verdict.also_not),
        ruled_out: names(&verdict.ruled_out),
        strongest_model: models::representative(&verdict.strongest).map(|m| m.name().to_string()),
        strongest_models: names(&verdict.strongest),
        judged_models: names(&judged),
        txns: parsed.txns.len(),
        failed_txns: parsed.failed.len(),
        skipped_ops: parsed.skipped,
        graph: stats,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}
