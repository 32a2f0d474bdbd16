//! The `results.json` schema: what a run concluded, in a stable, documented shape that CI,
//! `splitbrain report` and `store/index.html` read back.
//!
//! This module owns the run-level schema ([`Results`], the convergence and statistics
//! objects) and [`compute_stats`], the statistics derived purely from a history. The
//! consistency checks' details are the checker's own types
//! ([`LinearizabilityResult`], [`ElleResult`], [`Verdict`]), which serialise both ways:
//! the reports render what the checker says, with no copy of its vocabulary. The one
//! difference on disk is spelled out in `schema_v1`: the per-key `info_dropped` /
//! `info_bounded` diagnostics of `check --json` are not part of schema version 1.
//!
//! # `results.json`, schema version 1
//!
//! Every field is always present unless marked *optional* (then it is `null`). Times in
//! the history are nanoseconds since the run started; in `stats` they are converted to
//! seconds (`*_s`) or milliseconds (`*_ms`) as the name says.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `schema_version` | integer | `1`. Bumped only on an incompatible change. |
//! | `name` | string | The test's name (`store/<name>/…`). |
//! | `verdict` | `"valid"` \| `"invalid"` \| `"unknown"` | The run's verdict: invalid beats unknown beats valid over all checkers. |
//! | `exit_code` | integer | The process exit code: 0 valid, 1 invalid, 2 unknown, 254 bad input, 255 internal error. |
//! | `started_at` | string | RFC 3339 start time of the run. |
//! | `duration_s` | number | Wall-clock duration of the whole run. |
//! | `partial` | bool | True when the run was interrupted (Ctrl-C, crash): the history is incomplete. |
//! | `seed` | integer, optional | The one seed everything random derives from. |
//! | `reproduce` | string, optional | A one-line command that reruns this test with the same seed. |
//! | `config` | object | The full configuration (`test.json`). |
//! | `checkers` | array of `{name, verdict, summary}` | One entry per checker that ran (`linearizability`, `convergence`, …); `summary` is one line of plain text. |
//! | `linearizability` | object, optional | Details of the linearizability check, below. |
//! | `list_append` | object, optional | Details of the transactional (Elle-style) check, list-append or rw-register, below. Absent from files written before it existed; read as `null`. |
//! | `convergence` | object, optional | Final replica states, below. |
//! | `stats` | object | Statistics computed from the history, below. |
//! | `notes` | array of strings | Anything a reader should know (faults that failed to heal, truncated history, …). |
//! | `node_logs` | array of strings | Paths of node logs relative to the run directory (`nodes/n1/node.log`). |
//!
//! `linearizability`: `{verdict, model, keys, elapsed_ms, operations}`; `keys` holds one
//! object per independent key: `{key (string, integer or null for a single register),
//! verdict, operations, ok, info, elapsed_ms, method, witness (optional), unknown_reason
//! (optional), explored}`. A `witness` (present for invalid keys) is `{key, prefix,
//! stuck, needed, reachable_states, concurrent, explanation}`: `prefix` is the longest
//! linearizable prefix as `[{op, state}]` (`op` an operation id, `state` the model state
//! after it), `stuck` the operation that cannot be placed after it, `needed` the state it
//! would have needed, `reachable_states` the states the prefix could end in, `concurrent`
//! the operations overlapping `stuck`. Operations are `{id, process, f, key (optional),
//! input, output, outcome ("ok"|"info"), invoke_index, complete_index (null: never
//! returned), invoke_time, complete_time, node (optional)}`; `id` indexes the run's paired
//! operations and `*_index` are history event indexes (the `#ev-<index>` anchors of the
//! report).
//!
//! `list_append`: `{analysis, valid, consistency_models, checked_model, anomalies,
//! anomaly_types, anomaly_counts, not, also_not, ruled_out, strongest_models,
//! strongest_model, judged_models, txns, failed_txns, skipped_ops, graph, elapsed_ms}`,
//! as `splitbrain check --model list-append --json` (or `rw-register`) prints it.
//! `analysis` is `list-append` or `rw-register`; `valid` says no model of
//! `consistency_models` (Elle's names, default `["strict-serializable"]`) is ruled out;
//! `checked_model` is them joined by ", ". `anomalies` holds examples
//! (at most 10 per kind) as `{kind, cycle, txns, key (optional), explanation, assumes
//! (optional: rw-register's inferred version order holds only in models implying this
//! one, so the anomaly rules out only those)}`: `cycle`
//! (empty for anomalies that are not cycles, such as `G1a` or `internal`) is the cycle's
//! transactions in order, each `{txn, process, invoke_index, edge_to_next, key
//! (optional), reason}`, where `edge_to_next` (`ww`, `wr`, `rw`, `process`, `realtime`)
//! leads to the next step's transaction (the last step's back to the first), `key` is
//! the key the edge is about and `reason` says in words why the edge exists; `txns` are
//! the transactions involved, `{id, process, invoke_index, status}`. `anomaly_counts`
//! maps each kind to how many were found. `not` lists the weakest consistency models
//! ruled out (Elle's `:not`), `also_not` the others ruled out (`:also-not`), `ruled_out`
//! both, weakest first; `strongest_models` the strongest models not ruled out among
//! `judged_models` (those none of whose anomalies went unsearched), and
//! `strongest_model` the one of them implying the most others. Files written before
//! `ruled_out` existed have every ruled-out model in `not` and lack the newer fields
//! (read as empty). `graph` is `{nodes, edges, cyclic_components, largest_component,
//! truncated_components}`.
//!
//! `convergence`: `{verdict, nodes, replicas_per_entry, explanation}`; `nodes` is
//! `[{name, applied_index, digest, last_index, reachable}]`; `replicas_per_entry` is
//! `[{from_index, to_index, term, replicas}]`: the committed log entries
//! `from_index..=to_index` (of `term`) are held by `replicas` nodes.
//!
//! `stats`: `{events, operations, duration_s, by_f, faults, outside_faults}`.
//! - `by_f`: per operation function, sorted by name: `{f, ok, fail, info, pending,
//!   latency_ms}` where `pending` counts invocations that never completed (they count as
//!   `info` for the checker, not here) and `latency_ms` is `{count, min, p50, p90, p99,
//!   max}` (nearest-rank quantiles over operations that completed, of any type; `null`
//!   when none did).
//! - `faults`: fault windows from nemesis events, in start order: `{kind, start_f,
//!   stop_f (optional), targets, start_index, stop_index (optional), start_s, end_s,
//!   closed, availability}`. A window opens at `start-X` (closed by `stop-X`), `kill`
//!   (`restart`/`start`), `pause` (`resume`), `clock-*` (`clock-reset`), `partition`
//!   (`heal`); the run's final `heal-all` closes every window; an unclosed window lasts
//!   to the end of the history.
//! - `availability` (per window, and `outside_faults` for operations invoked while no
//!   window was open): `{invoked, ok, fail, info, fraction}` where `fraction` is
//!   `ok / invoked` (`null` when nothing was invoked).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use splitbrain_checker::elle::{ElleResult, TxnAnalysis};
use splitbrain_checker::history::{Event, EventType, PairedHistory, Process};
use splitbrain_checker::linear::LinearizabilityResult;
use splitbrain_checker::Analysis;
use std::collections::BTreeMap;

/// The version written into every `results.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// The nemesis `f` with which a run records that it healed every fault at the end of
/// its workload (partitions, kills, pauses, clocks alike), before its final reads.
pub const FINAL_HEAL: &str = "heal-all";
/// The value of the final heal. Runs recorded before [`FINAL_HEAL`] existed wrote it
/// with the `f` `heal`, which otherwise ends only partitions.
pub const FINAL_HEAL_VALUE: &str = "all faults healed";

pub use splitbrain_checker::Verdict;

/// Everything a run concluded: the content of `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA_VERSION`] when written by this crate; readers check it.
    pub schema_version: u32,
    pub name: String,
    pub verdict: Verdict,
    pub exit_code: i32,
    /// RFC 3339; provided by the caller so rendering never reads the clock.
    pub started_at: String,
    pub duration_s: f64,
    /// The run was interrupted, so the history and the verdict cover only part of it.
    pub partial: bool,
    pub seed: Option<u64>,
    /// A single shell line that reruns the test with the same seed.
    pub reproduce: Option<String>,
    /// The whole `test.json`, so the report can show the configuration without it.
    pub config: Value,
    pub checkers: Vec<CheckerResult>,
    /// Written in schema version 1's shape (see `schema_v1`); elapsed times rounded by
    /// [`Results::set_linearizability`].
    #[serde(serialize_with = "schema_v1::linearizability")]
    pub linearizability: Option<LinearizabilityResult>,
    /// The transactional analysis (list-append or rw-register). Added after schema
    /// version 1 was first written; `default` keeps older files readable (an optional
    /// field, so the version did not change).
    #[serde(default)]
    pub list_append: Option<ElleResult>,
    pub convergence: Option<Convergence>,
    pub stats: Stats,
    pub notes: Vec<String>,
    /// Relative to the run directory, so links keep working when the store moves.
    pub node_logs: Vec<String>,
}

/// The names a transactional analysis' entry in `checkers` has had.
const TRANSACTIONAL_CHECKERS: [&str; 2] = ["list-append", "rw-register"];

impl Results {
    /// A result with everything empty but the name, start time and statistics; the caller
    /// fills in the checkers and then calls [`Results::settle_verdict`]. The statistics
    /// come from `history`'s pairs, paired once by the caller.
    pub fn new(
        name: impl Into<String>,
        started_at: impl Into<String>,
        history: &PairedHistory,
    ) -> Self {
        Results {
            schema_version: SCHEMA_VERSION,
            name: name.into(),
            verdict: Verdict::Valid,
            exit_code: 0,
            started_at: started_at.into(),
            duration_s: 0.0,
            partial: false,
            seed: None,
            reproduce: None,
            config: Value::Object(Default::default()),
            checkers: Vec::new(),
            linearizability: None,
            list_append: None,
            convergence: None,
            stats: compute_stats(history),
            notes: Vec::new(),
            node_logs: Vec::new(),
        }
    }

    /// Sets `verdict` and `exit_code` from the checkers (no checker: unknown, as nothing
    /// was verified).
    pub fn settle_verdict(&mut self) {
        self.verdict = self
            .checkers
            .iter()
            .map(|c| c.verdict)
            .reduce(Verdict::combine)
            .unwrap_or(Verdict::Unknown);
        self.exit_code = self.verdict.exit_code();
    }

    /// Records a consistency check: its details, and its entry in `checkers` (replacing
    /// an earlier one of the same checker; linearizability first, as it always was);
    /// then settles the verdict.
    pub fn set_analysis(&mut self, analysis: &Analysis) {
        let entry = CheckerResult {
            name: analysis.checker_name().into(),
            verdict: analysis.verdict(),
            summary: analysis.summary(),
        };
        self.checkers.retain(|c| c.name != entry.name);
        if let Analysis::Transactional(_) = analysis {
            // One transactional analysis per run: its entry replaces the other's, and an
            // rw-register entry written under the old name `list-append`.
            self.checkers
                .retain(|c| !TRANSACTIONAL_CHECKERS.contains(&c.name.as_str()));
        }
        match analysis {
            Analysis::Linearizability(r) => {
                self.checkers.insert(0, entry);
                let mut r = r.clone();
                // Measured times, rounded as every other time in the file (6 decimals
                // read back to the same numbers).
                r.elapsed_ms = round6(r.elapsed_ms);
                for k in &mut r.keys {
                    k.elapsed_ms = round6(k.elapsed_ms);
                    // Not in the schema (see `schema_v1`): cleared, so that a `Results`
                    // holds exactly what its `results.json` reads back to.
                    k.info_dropped = 0;
                    k.info_bounded = 0;
                }
                self.linearizability = Some(r);
            }
            Analysis::Transactional(r) => {
                self.checkers.push(entry);
                self.list_append = Some(r.clone());
            }
        }
        self.settle_verdict();
    }

    /// Brings names written by older versions up to date: an rw-register analysis' entry
    /// in `checkers` was called `list-append` before it had its own name.
    pub fn upgrade_old_names(&mut self) {
        let Some(analysis) = &self.list_append else {
            return;
        };
        if analysis.analysis == TxnAnalysis::RwRegister {
            for c in &mut self.checkers {
                if c.name == "list-append" {
                    c.name = "rw-register".into();
                }
            }
        }
    }

    /// [`Results::set_analysis`] for a linearizability check.
    pub fn set_linearizability(&mut self, result: &LinearizabilityResult) {
        self.set_analysis(&Analysis::Linearizability(result.clone()));
    }

    /// [`Results::set_analysis`] for a transactional (Elle-style) check.
    pub fn set_list_append(&mut self, result: &ElleResult) {
        self.set_analysis(&Analysis::Transactional(result.clone()));
    }

    /// A one-line explanation of the verdict, for banners, JUnit and summaries.
    pub fn headline(&self) -> String {
        let names: Vec<&str> = self
            .checkers
            .iter()
            .filter(|c| c.verdict == self.verdict)
            .map(|c| c.name.as_str())
            .collect();
        let mut s = match self.verdict {
            Verdict::Valid if self.checkers.is_empty() => "nothing was checked".to_string(),
            Verdict::Valid => "every checker found the history valid".to_string(),
            Verdict::Invalid => format!(
                "the history is not consistent: {} found a violation",
                names.join(", ")
            ),
            Verdict::Unknown if names.is_empty() => "no checker reached a verdict".to_string(),
            Verdict::Unknown => format!("{} could not decide within the budget", names.join(", ")),
        };
        if self.partial {
            s.push_str("; the run was interrupted, so this covers only part of it");
        }
        s
    }
}

/// One checker's verdict with a one-line summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckerResult {
    pub name: String,
    pub verdict: Verdict,
    pub summary: String,
}

/// Schema version 1's shape of the checker's results, where it differs from the
/// checker's own serialisation.
mod schema_v1 {
    use serde::{Serialize, Serializer};
    use splitbrain_checker::history::Key;
    use splitbrain_checker::linear::{KeyResult, LinearizabilityResult, Witness};
    use splitbrain_checker::Verdict;

    /// `linearizability` as schema version 1 has it: the checker's result without the
    /// per-key `info_dropped` / `info_bounded` diagnostics, which came later and which
    /// only `check --json` prints. Borrowed views rather than a copy of the types, so
    /// every other field is the checker's own, serialised by the checker's derive.
    pub(super) fn linearizability<S: Serializer>(
        l: &Option<LinearizabilityResult>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        l.as_ref().map(Stored::from).serialize(s)
    }

    #[derive(Serialize)]
    struct Stored<'a> {
        verdict: Verdict,
        model: &'a str,
        keys: Vec<StoredKey<'a>>,
        elapsed_ms: f64,
        operations: usize,
    }

    #[derive(Serialize)]
    struct StoredKey<'a> {
        key: &'a Option<Key>,
        verdict: Verdict,
        operations: usize,
        ok: usize,
        info: usize,
        elapsed_ms: f64,
        method: &'a str,
        witness: &'a Option<Witness>,
        unknown_reason: &'a Option<String>,
        explored: u64,
    }

    impl<'a> From<&'a LinearizabilityResult> for Stored<'a> {
        fn from(l: &'a LinearizabilityResult) -> Self {
            Stored {
                verdict: l.verdict,
                model: &l.model,
                keys: l.keys.iter().map(StoredKey::from).collect(),
                elapsed_ms: l.elapsed_ms,
                operations: l.operations,
            }
        }
    }

    impl<'a> From<&'a KeyResult> for StoredKey<'a> {
        fn from(k: &'a KeyResult) -> Self {
            StoredKey {
                key: &k.key,
                verdict: k.verdict,
                operations: k.operations,
                ok: k.ok,
                info: k.info,
                elapsed_ms: k.elapsed_ms,
                method: &k.method,
                witness: &k.witness,
                unknown_reason: &k.unknown_reason,
                explored: k.explored,
            }
        }
    }
}

/// The replicas' final states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    pub verdict: Verdict,
    pub nodes: Vec<NodeState>,
    pub replicas_per_entry: Vec<ReplicaCount>,
    pub explanation: String,
}

/// One node's final state, as read after the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub applied_index: Option<u64>,
    /// Digest of the applied state machine; equal digests at equal indexes mean converged.
    pub digest: Option<String>,
    /// Hash chain over every entry the node applied: equal data with different chains
    /// means the replicas applied different entries and later writes hid it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
    pub last_index: Option<u64>,
    pub reachable: bool,
}

/// Committed entries `from_index..=to_index` (of `term`) are held by `replicas` nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaCount {
    pub from_index: u64,
    pub to_index: u64,
    pub term: u64,
    pub replicas: usize,
}

/// Statistics computed purely from a history (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub events: usize,
    /// Client operations (invocations), whatever their outcome.
    pub operations: usize,
    /// Time of the last event.
    pub duration_s: f64,
    pub by_f: Vec<FStats>,
    pub faults: Vec<FaultWindow>,
    pub outside_faults: Availability,
}

/// Counts and latency for one operation function.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FStats {
    pub f: String,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// Invoked but never completed.
    pub pending: usize,
    pub latency_ms: Option<Quantiles>,
}

/// Nearest-rank quantiles of a sample, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub count: usize,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Quantiles {
    /// Quantiles of `values` (sorted here); `None` for an empty sample.
    pub fn of(values: &mut [f64]) -> Option<Quantiles> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(Quantiles {
            count: values.len(),
            min: values[0],
            p50: nearest_rank(values, 0.50),
            p90: nearest_rank(values, 0.90),
            p99: nearest_rank(values, 0.99),
            max: values[values.len() - 1],
        })
    }
}

/// The nearest-rank quantile of a sorted, non-empty slice.
pub fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let rank = (q * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// A period during which one fault was in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// `partition`, `kill`, `pause`, `clock`, ...
    pub kind: String,
    pub start_f: String,
    pub stop_f: Option<String>,
    /// Who the fault hit, readable (`n1 ↛ n3,n4`, `n2`).
    pub targets: String,
    pub start_index: u64,
    pub stop_index: Option<u64>,
    pub start_s: f64,
    /// The stop event's time, or the end of the history for an unclosed window.
    pub end_s: f64,
    pub closed: bool,
    pub availability: Availability,
}

/// How many operations invoked in a period completed `ok`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    pub invoked: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// `ok / invoked`; `None` when nothing was invoked.
    pub fraction: Option<f64>,
}

impl Availability {
    fn count(&mut self, outcome: Option<EventType>) {
        self.invoked += 1;
        match outcome {
            Some(EventType::Ok) => self.ok += 1,
            Some(EventType::Fail) => self.fail += 1,
            // info, or never completed
            _ => self.info += 1,
        }
    }

    fn finish(&mut self) {
        self.fraction = (self.invoked > 0).then(|| round6(self.ok as f64 / self.invoked as f64));
    }
}

/// What kind of fault a nemesis `f` starts, if it starts one.
fn fault_start_kind(f: &str) -> Option<String> {
    if let Some(rest) = f.strip_prefix("start-") {
        return Some(rest.to_string());
    }
    match f {
        "kill" | "crash" => Some("kill".into()),
        "pause" => Some("pause".into()),
        "partition" => Some("partition".into()),
        "start" => Some("fault".into()),
        _ if f.starts_with("clock-") && f != "clock-reset" => Some("clock".into()),
        _ => None,
    }
}

/// Which fault kinds a nemesis `f` ends, if it ends any.
fn fault_stop_kinds(f: &str) -> Vec<String> {
    if let Some(rest) = f.strip_prefix("stop-") {
        return vec![rest.to_string()];
    }
    match f {
        "restart" | "start" => vec!["kill".into()],
        "resume" => vec!["pause".into()],
        "clock-reset" => vec!["clock".into()],
        "heal" => vec!["partition".into()],
        "stop" => vec!["fault".into()],
        _ => Vec::new(),
    }
}

/// A readable rendering of a nemesis value: grudges as `a ↛ b,c`, lists joined.
pub fn describe_targets(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(describe_targets)
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::Array(_) => format!("{k} ↛ {}", describe_targets(v)),
                _ => format!("{k}: {}", describe_targets(v)),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

struct OpenWindow {
    window: FaultWindow,
    value: Value,
}

/// Fault windows from the nemesis events. A nemesis `invoke` followed by an `info` of the
/// same `f` (Jepsen's style) counts once, at the invocation.
fn fault_windows(events: &[Event], end_ns: u64) -> Vec<FaultWindow> {
    let mut open: Vec<OpenWindow> = Vec::new();
    let mut done: Vec<FaultWindow> = Vec::new();
    let mut invoked: BTreeMap<String, ()> = BTreeMap::new();
    for e in events.iter().filter(|e| e.process == Process::Nemesis) {
        if e.kind == EventType::Invoke {
            invoked.insert(e.f.clone(), ());
        } else if invoked.remove(&e.f).is_some() {
            // The completion of a nemesis invocation already counted; it may carry the
            // targets the fault actually chose.
            if let Some(w) = open
                .iter_mut()
                .rev()
                .find(|w| w.window.start_f == e.f && w.window.targets.is_empty())
            {
                w.window.targets = describe_targets(&e.value);
                w.value = e.value.clone();
            }
            continue;
        }
        let heals_all =
            e.f == FINAL_HEAL || (e.f == "heal" && e.value.as_str() == Some(FINAL_HEAL_VALUE));
        let stops = fault_stop_kinds(&e.f);
        if heals_all || !stops.is_empty() {
            let matching: Vec<usize> = open
                .iter()
                .enumerate()
                .filter(|(_, w)| heals_all || stops.contains(&w.window.kind))
                .map(|(i, _)| i)
                .collect();
            // A stop naming exactly one open window's targets closes only that one.
            let exact: Vec<usize> = matching
                .iter()
                .copied()
                .filter(|&i| !e.value.is_null() && open[i].value == e.value)
                .collect();
            let closing = if exact.len() == 1 { exact } else { matching };
            for i in closing.into_iter().rev() {
                let mut w = open.remove(i).window;
                w.stop_f = Some(e.f.clone());
                w.stop_index = Some(e.index);
                w.end_s = ns_to_s(e.time);
                w.closed = true;
                done.push(w);
            }
            // `start` both ends a kill (restart) and starts a Jepsen-style fault.
            if e.f != "start" {
                continue;
            }
        }
        if let Some(kind) = fault_start_kind(&e.f) {
            open.push(OpenWindow {
                window: FaultWindow {
                    kind,
                    start_f: e.f.clone(),
                    stop_f: None,
                    targets: describe_targets(&e.value),
                    start_index: e.index,
                    stop_index: None,
                    start_s: ns_to_s(e.time),
                    end_s: ns_to_s(end_ns),
                    closed: false,
                    availability: Availability::default(),
                },
                value: e.value.clone(),
            });
        }
    }
    done.extend(open.into_iter().map(|w| w.window));
    done.sort_by(|a, b| a.start_index.cmp(&b.start_index).then(a.kind.cmp(&b.kind)));
    done
}

pub(crate) fn ns_to_s(ns: u64) -> f64 {
    round6(ns as f64 / 1e9)
}

/// Rounds to 6 decimals: enough for microseconds in seconds and nanoseconds in
/// milliseconds, and short enough that `results.json` reads back to the same numbers.
pub(crate) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Statistics of a history: per-`f` counts and latencies, fault windows and availability.
/// Pure: the same history always gives the same statistics.
pub fn compute_stats(paired: &PairedHistory) -> Stats {
    let history = paired.history();
    let end_ns = history.events.iter().map(|e| e.time).max().unwrap_or(0);
    // The lenient pairs, so that statistics exist for any history, even one the checkers
    // reject.
    let pairs = &paired.lenient().pairs;
    let event = |pos: usize| &history.events[pos];
    let mut by_f: BTreeMap<String, (FStats, Vec<f64>)> = BTreeMap::new();
    for op in pairs {
        let inv = event(op.invoke);
        let (s, lat) = by_f.entry(inv.f.clone()).or_insert_with(|| {
            (
                FStats {
                    f: inv.f.clone(),
                    ..Default::default()
                },
                Vec::new(),
            )
        });
        match op.complete.map(event) {
            Some(c) => {
                match c.kind {
                    EventType::Ok => s.ok += 1,
                    EventType::Fail => s.fail += 1,
                    _ => s.info += 1,
                }
                lat.push(round6(c.time.saturating_sub(inv.time) as f64 / 1e6));
            }
            None => s.pending += 1,
        }
    }
    let by_f = by_f
        .into_values()
        .map(|(mut s, mut lat)| {
            s.latency_ms = Quantiles::of(&mut lat);
            s
        })
        .collect();

    let mut faults = fault_windows(&history.events, end_ns);
    let mut outside = Availability::default();
    for op in pairs {
        let outcome = op.complete.map(|c| event(c).kind);
        let invoke_index = event(op.invoke).index;
        let mut inside = false;
        for w in faults.iter_mut() {
            let ends = w.stop_index.unwrap_or(u64::MAX);
            if invoke_index > w.start_index && invoke_index < ends {
                w.availability.count(outcome);
                inside = true;
            }
        }
        if !inside {
            outside.count(outcome);
        }
    }
    faults.iter_mut().for_each(|w| w.availability.finish());
    outside.finish();

    Stats {
        events: history.events.len(),
        operations: pairs.len(),
        duration_s: ns_to_s(end_ns),
        by_f,
        faults,
        outside_faults: outside,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn ev(
        index: u64,
        process: Process,
        kind: EventType,
        f: &str,
        value: Value,
    ) -> Event {
        Event {
            index,
            time: index * 1_000_000,
            process,
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

    use EventType::*;
    use Process::{Client as C, Nemesis as N};

    use splitbrain_checker::history::History;

    fn sample() -> History {
        History::new(vec![
            ev(0, C(0), Invoke, "write", json!(1)),
            ev(1, C(0), Ok, "write", json!(1)),
            ev(2, N, Info, "start-partition", json!({"n1": ["n2", "n3"]})),
            ev(3, C(1), Invoke, "read", Value::Null),
            ev(4, C(0), Invoke, "write", json!(2)),
            ev(5, C(1), Info, "read", Value::Null),
            ev(6, C(0), Fail, "write", json!(2)),
            ev(7, N, Info, "stop-partition", Value::Null),
            ev(8, C(0), Invoke, "read", Value::Null),
            ev(9, C(0), Ok, "read", json!(1)),
            ev(10, N, Info, "kill", json!("n2")),
            ev(11, C(2), Invoke, "write", json!(3)),
        ])
    }

    #[test]
    fn counts_and_latency_per_f() {
        let s = compute_stats(&sample().into());
        assert_eq!(s.events, 12);
        assert_eq!(s.operations, 5);
        let read = &s.by_f[0];
        assert_eq!(
            (read.f.as_str(), read.ok, read.fail, read.info),
            ("read", 1, 0, 1)
        );
        let write = &s.by_f[1];
        assert_eq!(
            (write.ok, write.fail, write.info, write.pending),
            (1, 1, 0, 1)
        );
        let q = write.latency_ms.as_ref().unwrap();
        assert_eq!((q.count, q.min, q.max), (2, 1.0, 2.0));
    }

    #[test]
    fn fault_windows_and_availability() {
        let s = compute_stats(&sample().into());
        assert_eq!(s.faults.len(), 2);
        let p = &s.faults[0];
        assert_eq!(p.kind, "partition");
        assert_eq!(p.targets, "n1 ↛ n2,n3");
        assert!(p.closed);
        assert_eq!((p.start_s, p.end_s), (0.002, 0.007));
        assert_eq!((p.availability.invoked, p.availability.ok), (2, 0));
        assert_eq!(p.availability.fraction, Some(0.0));
        let k = &s.faults[1];
        assert_eq!((k.kind.as_str(), k.closed, k.end_s), ("kill", false, 0.011));
        assert_eq!(k.availability.invoked, 1);
        assert_eq!(s.outside_faults.invoked, 2);
        assert_eq!(s.outside_faults.fraction, Some(1.0));
    }

    #[test]
    fn the_final_heal_ends_every_fault() {
        // A kill, a pause and a clock fault still open when the run heals everything:
        // none of them lasted to the end, and the final reads after the heal happened
        // outside any fault.
        for (f, value) in [
            (FINAL_HEAL, json!("all faults healed")),
            // Runs recorded before the final heal had its own name.
            ("heal", json!("all faults healed")),
        ] {
            let h = History::new(vec![
                ev(0, N, Info, "kill", json!(["n1"])),
                ev(1, N, Info, "pause", json!(["n2"])),
                ev(2, N, Info, "clock-bump", json!({"n3": 100})),
                ev(3, N, Info, "start-partition", json!({"n1": ["n2"]})),
                ev(4, N, Info, f, value),
                ev(5, C(0), Invoke, "read", Value::Null),
                ev(6, C(0), Ok, "read", json!(1)),
            ]);
            let s = compute_stats(&h.into());
            assert_eq!(s.faults.len(), 4, "{f}: {:?}", s.faults);
            for w in &s.faults {
                assert!(w.closed, "{f}: {} never healed: {w:?}", w.kind);
                assert_eq!(w.stop_index, Some(4), "{f}: {w:?}");
                assert_eq!(w.availability.invoked, 0, "{f}: {w:?}");
            }
            assert_eq!(s.outside_faults.invoked, 1, "{f}");
        }
        // A plain `heal` (a partition's end in Jepsen's vocabulary) still ends only
        // partitions.
        let h = History::new(vec![
            ev(0, N, Info, "kill", json!(["n1"])),
            ev(1, N, Info, "start-partition", json!({"n1": ["n2"]})),
            ev(2, N, Info, "heal", Value::Null),
        ]);
        let s = compute_stats(&h.into());
        let open: Vec<&str> = s
            .faults
            .iter()
            .filter(|w| !w.closed)
            .map(|w| w.kind.as_str())
            .collect();
        assert_eq!(open, ["kill"]);
    }

    #[test]
    fn jepsen_style_nemesis_pairs_count_once() {
        let h = History::new(vec![
            ev(0, N, Invoke, "start", Value::Null),
            ev(1, N, Info, "start", json!("Cut off {:n1 #{:n2}}")),
            ev(2, N, Invoke, "stop", Value::Null),
            ev(3, N, Info, "stop", json!("fully connected")),
        ]);
        let s = compute_stats(&h.into());
        assert_eq!(s.faults.len(), 1, "{:?}", s.faults);
        assert_eq!(s.faults[0].targets, "Cut off {:n1 #{:n2}}");
        assert_eq!(s.faults[0].stop_index, Some(2));
    }

    #[test]
    fn quantiles_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let q = Quantiles::of(&mut v).unwrap();
        assert_eq!((q.p50, q.p90, q.p99, q.max), (50.0, 90.0, 99.0, 100.0));
        assert!(Quantiles::of(&mut []).is_none());
    }

    #[test]
    fn verdict_composition_and_round_trip() {
        assert_eq!(Verdict::Valid.combine(Verdict::Unknown), Verdict::Unknown);
        assert_eq!(Verdict::Unknown.combine(Verdict::Invalid), Verdict::Invalid);
        let mut r = Results::new("t", "2026-01-01T00:00:00Z", &sample().into());
        r.checkers.push(CheckerResult {
            name: "linearizability".into(),
            verdict: Verdict::Invalid,
            summary: "key k1".into(),
        });
        r.settle_verdict();
        assert_eq!((r.verdict, r.exit_code), (Verdict::Invalid, 1));
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"verdict\":\"invalid\""));
        let back: Results = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
    /// An rw-register result as the checker gives it, with no anomalies.
    fn rw_register_result(valid: bool) -> splitbrain_checker::elle::ElleResult {
        serde_json::from_value(json!({"analysis": "rw-register", "valid": valid}))
            .expect("an ElleResult with only the required fields")
    }

    #[test]
    fn rw_register_runs_are_named_rw_register() {
        let mut r = Results::new("t", "2026-01-01T00:00:00Z", &sample().into());
        r.set_analysis(&Analysis::Transactional(rw_register_result(true)));
        let names: Vec<&str> = r.checkers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["rw-register"]);
    }

    #[test]
    fn old_results_naming_an_rw_register_run_list_append_still_read() {
        // Written before the analysis had its own name: the rw-register result's checker
        // entry says `list-append`.
        let mut r = Results::new("t", "2026-01-01T00:00:00Z", &sample().into());
        r.list_append = Some(rw_register_result(false));
        r.checkers.push(CheckerResult {
            name: "list-append".into(),
            verdict: Verdict::Invalid,
            summary: "1 transactions (rw-register); anomalies G1a".into(),
        });
        r.settle_verdict();
        let old = serde_json::to_vec(&r).unwrap();
        let back = crate::store::parse_results(std::path::Path::new("results.json"), &old)
            .expect("an old results.json reads");
        let names: Vec<&str> = back.checkers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["rw-register"]);
        assert_eq!(back.verdict, Verdict::Invalid);
        // Checking again replaces the old entry rather than adding a second one.
        let mut again = back.clone();
        again.checkers[0].name = "list-append".into();
        again.set_analysis(&Analysis::Transactional(rw_register_result(true)));
        let names: Vec<&str> = again.checkers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["rw-register"]);
        // A list-append run keeps its name.
        let mut la = r.clone();
        la.list_append.as_mut().unwrap().analysis = TxnAnalysis::ListAppend;
        let back = crate::store::parse_results(
            std::path::Path::new("results.json"),
            &serde_json::to_vec(&la).unwrap(),
        )
        .unwrap();
        assert_eq!(back.checkers[0].name, "list-append");
    }
}
