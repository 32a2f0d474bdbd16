//! The linearizability checker: per-key, parallel, budgeted, tri-state.
//!
//! [`check_model`] checks a history against any [`Model`] ([`check`]: a built-in one by
//! name; `crate::check` is what callers use). It parses every operation against the
//! model (a bad operation is a [`ModelError`], never a verdict), splits the history into
//! independent partitions by key (P-compositionality; the multi-register is one
//! partition since its registers are named inside transactions), drops reads that did
//! not complete `ok` (they cannot change state) and Knossos-style `null` reads that
//! observed nothing ([`Model::unobserving`]), and decides each partition.
//!
//! A model without fast paths (a user's own) is decided by the search alone, on states
//! interned as it goes (`generic`). The built-in models name their fast paths
//! ([`crate::model::FastPaths`]): their partitions are reduced (`reduce`: indeterminate
//! updates nobody observed are dropped, observed ones that alone wrote their value get
//! a return), compiled to interned integers (`compiled`), and decided by:
//!
//! 1. polynomial decisions, both verdicts: the unique-values fast path ([`unique`]) for
//!    registers whose written values are unique; the version chains (`chains`) for
//!    register and cas-register keys with unique values and successful cas; for
//!    kv-append the append-order translation (`append`), which turns a key whose appends
//!    write framed tokens into a cas-register of versions and decides that with the
//!    version chains (or refutes an impossible get directly);
//! 2. sound O(n) pre-checks (`precheck`) that refute the commonest bugs immediately;
//! 3. the Wing–Gong–Lowe search (`wgl`) with Lowe's cache, bounded in time and memory.
//!
//! When the unique-values path or a pre-check says invalid the search still runs, for a
//! bounded number of steps, to produce a full witness; if it instead finds a
//! linearization, the two disagree and the partition is `unknown` ("checker
//! disagreement"), never silently one or the other. The version chains certify a valid
//! verdict by replaying the linearization they built, and give their own witness.
//!
//! Partitions run in parallel (rayon), cheapest first, each with its share of the time
//! and memory budget, so one hard key never keeps the others from being decided. A
//! partition that runs out is `unknown` with the reason; the overall verdict combines
//! the partitions' (invalid beats unknown beats valid).
//!
//! Verdict first ([`CheckOptions::after_invalid`]): one invalid partition decides the
//! history, so once one is found the others get a bounded extra time (running searches
//! are stopped through a shared stop time); partitions left undecided are `unknown`
//! with [`STOPPED_AFTER_INVALID`], listed like any other.

mod append;
mod chains;
mod compiled;
mod generic;
mod precheck;
mod reduce;
pub mod unique;
mod wgl;
mod witness;

pub use crate::model::ModelError;
pub use crate::verdict::Verdict;

use crate::history::{Key, Operation, Operations, Outcome};
use crate::model::{Decision, Model, ModelFn, ModelKind, ModelOp, StateSpace};
use compiled::CompiledModel;
use generic::GenericModel;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use unique::UniqueOutcome;
use wgl::Searchable;
use witness::Partition;

/// Most steps the append-order translation's search may take per operation (plus a
/// constant): a valid translated key takes a few per operation; past this the checker
/// stops trusting the shortcut and searches the strings.
const APPEND_ORDER_STEPS_PER_OP: u64 = 64;

/// Most steps a witness search may take once the verdict is already known (from the fast
/// path or a pre-check). A step bound rather than a time bound keeps the report the same
/// from run to run; it is roughly a second of search.
const WITNESS_MAX_STEPS: u64 = 5_000_000;

/// The reason a key left undecided by verdict-first checking is `unknown`.
pub const STOPPED_AFTER_INVALID: &str = "stopped after the history was proven invalid";

/// Called after each key is decided, with the key's result, the number of keys decided
/// so far and the total (for progress bars; the first `invalid` key decides the
/// history's verdict, so a caller can print it at once).
#[derive(Clone)]
pub struct ProgressFn(pub Arc<ProgressCallback>);

/// The function behind a [`ProgressFn`]: (key result, keys decided, keys in total).
pub type ProgressCallback = dyn Fn(&KeyResult, usize, usize) + Send + Sync;

impl fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressFn")
    }
}

/// Budgets for one [`check`].
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Wall-clock limit for the whole check; `None`: no limit.
    pub time_limit: Option<Duration>,
    /// Memory the searches may use in total, split among the partitions searched at once.
    pub memory_limit_bytes: usize,
    /// Partitions searched in parallel; `None`: rayon's default (one per core).
    pub threads: Option<usize>,
    /// Verdict first: once a key is proven invalid (which decides the history), the
    /// other keys get at most this much more time; those still undecided then are
    /// `unknown` with [`STOPPED_AFTER_INVALID`]. `None`: decide every key (within
    /// `time_limit`).
    pub after_invalid: Option<Duration>,
    /// Called after each key is decided.
    pub progress: Option<ProgressFn>,
    /// Counts the steps the searches explore (roughly: in batches of a few thousand), so
    /// a progress display can show a long search moving.
    pub search_steps: Option<Arc<AtomicU64>>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            time_limit: None,
            memory_limit_bytes: 2 << 30,
            threads: None,
            after_invalid: None,
            progress: None,
            search_steps: None,
        }
    }
}

/// The result of checking a whole history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearizabilityResult {
    pub verdict: Verdict,
    pub model: String,
    /// One entry per partition, in key order (`null` key first).
    pub keys: Vec<KeyResult>,
    pub elapsed_ms: f64,
    /// Operations considered (failed operations excluded).
    pub operations: usize,
}

/// The verdict for one partition (one key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyResult {
    pub key: Option<Key>,
    pub verdict: Verdict,
    /// Operations in this partition, including dropped indeterminate reads.
    pub operations: usize,
    pub ok: usize,
    pub info: usize,
    pub elapsed_ms: f64,
    /// What decided the verdict: `unique-values` (the fast path), `version-chains`,
    /// `append-order` (the kv-append translation), `search`, or `none` (stopped before
    /// it started, verdict first).
    pub method: String,
    /// Why the partition is invalid, when it is.
    pub witness: Option<Witness>,
    /// Why the partition is unknown: `time limit`, `memory limit`, or a checker
    /// disagreement.
    pub unknown_reason: Option<String>,
    /// Search steps taken (model steps attempted).
    pub explored: u64,
    /// `info` updates set aside before deciding because nothing observed them, and
    /// `info` updates given the return of their first observer (see `reduce`).
    /// Diagnostics of `check --json` only: `results.json` (schema version 1) does not
    /// store them, so they read back as 0.
    #[serde(default)]
    pub info_dropped: usize,
    #[serde(default)]
    pub info_bounded: usize,
}

/// Why a partition is not linearizable, in the form a person (and the HTML report) needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Witness {
    pub key: Option<Key>,
    /// The longest linearizable prefix found: operations in linearization order with the
    /// model state after each.
    pub prefix: Vec<Step>,
    /// The earliest-returning operation that no extension of the prefix can linearize.
    pub stuck: Operation,
    /// What state it needed versus what states were reachable, in words.
    pub needed: String,
    /// The states the object could be in where `stuck` had to take effect.
    pub reachable_states: Vec<Value>,
    /// Operations overlapping `stuck`, and any that could have been linearized there.
    pub concurrent: Vec<Operation>,
    /// One or two sentences for humans.
    pub explanation: String,
}

impl LinearizabilityResult {
    /// One line of plain text: how many operations and keys, and what was found.
    pub fn summary(&self) -> String {
        let count = |v: Verdict| self.keys.iter().filter(|k| k.verdict == v).count();
        match self.verdict {
            Verdict::Valid => format!(
                "{} operations in {} key(s) are linearizable ({})",
                self.operations,
                self.keys.len(),
                self.model
            ),
            Verdict::Invalid => {
                let first = self
                    .keys
                    .iter()
                    .find_map(|k| k.witness.as_ref())
                    .map_or(String::new(), |w| format!("; {}", w.summary()));
                format!(
                    "{} of {} key(s) not linearizable{first}",
                    count(Verdict::Invalid),
                    self.keys.len()
                )
            }
            Verdict::Unknown => format!(
                "{} of {} key(s) undecided (budget ran out)",
                count(Verdict::Unknown),
                self.keys.len()
            ),
        }
    }
}

impl Witness {
    /// One line naming the key, the stuck operation and what it needed.
    pub fn summary(&self) -> String {
        let key = self
            .key
            .as_ref()
            .map_or(String::new(), |k| format!("key {k}: "));
        format!(
            "{key}{} cannot be linearized after a prefix of {} operation(s): {}",
            self.stuck,
            self.prefix.len(),
            self.needed
        )
    }
}

/// One step of a linearization: an operation (its [`Operation::id`]) and the state after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub op: usize,
    pub state: Value,
}

/// One partition, ready to decide.
struct Job<'a, Op> {
    key: Option<Key>,
    /// Every operation of the partition.
    all: Vec<&'a Operation>,
    /// The operations searched: `all` without reads that observed nothing (did not
    /// complete ok, or returned Knossos' "no value" `null`) and without the `info`
    /// updates `reduce` dropped.
    kept: Vec<&'a Operation>,
    parsed: Vec<Op>,
    /// Per kept operation: the return `reduce` gave an `info` one, if any.
    returns: Vec<Option<u64>>,
    /// How many `info` updates `reduce` dropped and bounded.
    info_dropped: usize,
    info_bounded: usize,
}

/// Checks `ops` for linearizability against the built-in `model` (see [`check_model`]).
pub fn check(
    ops: &Operations,
    model: ModelKind,
    initial: Option<&Value>,
    opts: &CheckOptions,
) -> Result<LinearizabilityResult, ModelError> {
    struct Check<'a> {
        ops: &'a Operations,
        initial: Option<&'a Value>,
        opts: &'a CheckOptions,
    }
    impl ModelFn for Check<'_> {
        type Output = Result<LinearizabilityResult, ModelError>;
        fn call<M: Model>(self, model: &M) -> Self::Output {
            check_model(self.ops, model, self.initial, self.opts)
        }
    }
    model.visit(Check { ops, initial, opts })
}

/// Checks `ops` for linearizability against `model`, starting from `initial` (or the
/// model's default initial value).
///
/// Errors only when an operation or the initial value does not fit the model; running
/// out of budget is a verdict ([`Verdict::Unknown`]), not an error.
pub fn check_model<M: Model>(
    ops: &Operations,
    model: &M,
    initial: Option<&Value>,
    opts: &CheckOptions,
) -> Result<LinearizabilityResult, ModelError> {
    let start = Instant::now();
    let deadline = opts.time_limit.map(|t| start + t);
    let initial = model.initial_state(initial)?;
    let fast = model.fast_paths();
    let parsed: Vec<M::Op> = ops
        .ops
        .iter()
        .map(|o| model.parse_op(o))
        .collect::<Result<_, _>>()?;

    let mut by_key: std::collections::BTreeMap<Option<Key>, Vec<usize>> = Default::default();
    for (i, op) in ops.ops.iter().enumerate() {
        let key = if model.uses_op_keys() {
            op.key.clone()
        } else {
            None
        };
        by_key.entry(key).or_default().push(i);
    }
    let mut jobs: Vec<Job<'_, M::Op>> = by_key
        .into_iter()
        .map(|(key, indices)| {
            let unobserving = model.unobserving(&initial, &mut indices.iter().map(|&i| &parsed[i]));
            let mut job = Job {
                key,
                all: Vec::with_capacity(indices.len()),
                kept: Vec::with_capacity(indices.len()),
                parsed: Vec::with_capacity(indices.len()),
                returns: Vec::new(),
                info_dropped: 0,
                info_bounded: 0,
            };
            for i in indices {
                let op = &ops.ops[i];
                job.all.push(op);
                let observed =
                    op.outcome == Outcome::Ok && !unobserving.is_some_and(|f| f(&parsed[i]));
                if observed || !model.is_read_only(&parsed[i]) {
                    job.kept.push(op);
                    job.parsed.push(parsed[i].clone());
                }
            }
            let r = match fast {
                Some(fast) => reduce::reduce(
                    fast.procedures.reduce,
                    &initial,
                    &job.kept,
                    (fast.shared)(&job.parsed),
                ),
                None => reduce::Reduction::none(job.kept.len()),
            };
            job.info_dropped = r.dropped;
            job.info_bounded = r.bounded;
            if r.dropped > 0 {
                let mut keep = r.keep.iter();
                job.kept.retain(|_| keep.next() == Some(&true));
                let mut keep = r.keep.iter();
                job.parsed.retain(|_| keep.next() == Some(&true));
            }
            job.returns = r
                .returns
                .into_iter()
                .zip(&r.keep)
                .filter_map(|(ret, &k)| k.then_some(ret))
                .collect();
            job
        })
        .collect();
    // Cheapest first: small partitions are decided before a hard one takes the time.
    jobs.sort_by(|a, b| (a.kept.len(), &a.key).cmp(&(b.kept.len(), &b.key)));

    let threads = opts
        .threads
        .unwrap_or_else(rayon::current_num_threads)
        .clamp(1, jobs.len().max(1));
    let shared = Shared {
        model,
        initial: &initial,
        deadline,
        threads,
        memory_per_job: opts.memory_limit_bytes / threads,
        started: AtomicUsize::new(0),
        total: jobs.len(),
        stop: opts.after_invalid.map(|_| Arc::new(wgl::Stop::new())),
        steps: opts.search_steps.clone(),
    };
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<KeyResult>>> = Mutex::new(vec![None; jobs.len()]);
    let worker = || loop {
        let i = shared.started.fetch_add(1, Ordering::SeqCst);
        let Some(job) = jobs.get(i) else { break };
        let r = if shared.stop.as_ref().is_some_and(|s| s.reached()) {
            stopped(job)
        } else {
            decide(job, &shared, i)
        };
        if let (Verdict::Invalid, Some(extra), Some(stop)) =
            (r.verdict, opts.after_invalid, &shared.stop)
        {
            stop.stop_at(Instant::now() + extra);
        }
        let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(progress) = &opts.progress {
            (progress.0)(&r, finished, shared.total);
        }
        if let Ok(mut slots) = results.lock() {
            slots[i] = Some(r);
        }
    };
    if threads <= 1 {
        worker();
    } else {
        let pool = match opts.threads {
            Some(n) => rayon::ThreadPoolBuilder::new().num_threads(n).build().ok(),
            None => None,
        };
        let run = || {
            rayon::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|_| worker());
                }
            })
        };
        match pool {
            Some(p) => p.install(run),
            None => run(),
        }
    }
    let mut keys: Vec<KeyResult> = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .into_iter()
        .flatten()
        .collect();
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    let verdict = keys
        .iter()
        .fold(Verdict::Valid, |v, k| v.combine(k.verdict));
    Ok(LinearizabilityResult {
        verdict,
        model: model.name().to_string(),
        keys,
        elapsed_ms: ms(start.elapsed()),
        operations: ops.ops.len(),
    })
}

/// What every partition's decision shares.
struct Shared<'a, M> {
    model: &'a M,
    initial: &'a Value,
    deadline: Option<Instant>,
    threads: usize,
    memory_per_job: usize,
    /// Partitions started so far (also the work queue's cursor).
    started: AtomicUsize,
    total: usize,
    /// Brought forward when a key is proven invalid (verdict first).
    stop: Option<Arc<wgl::Stop>>,
    /// Counts explored search steps ([`CheckOptions::search_steps`]).
    steps: Option<Arc<AtomicU64>>,
}

impl<M> Shared<'_, M> {
    /// The deadline for the partition at queue position `position`: its fair share of the
    /// time left, given the partitions not yet started and the threads working on them.
    /// Time a cheap partition does not use flows to the later, harder ones.
    fn deadline_for(&self, position: usize) -> Option<Instant> {
        let deadline = self.deadline?;
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        let waiting = (self.total - position).max(1);
        let share = left.mul_f64((self.threads as f64 / waiting as f64).min(1.0));
        Some(now + share)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Where a refutation that came before the search came from.
struct Refuted {
    op: usize,
    needed: String,
    reachable: Vec<Value>,
    source: &'static str,
}

/// Search steps per operation (plus a constant, and at most a cap) of the short search
/// that cross-checks a refutation from the version chains.
const CROSS_CHECK_STEPS_PER_OP: u64 = 20;
const CROSS_CHECK_MAX_STEPS: u64 = 2_000_000;

/// A cheap cross-check of a refutation from the version chains: a short search of the
/// same operations. A history the chains wrongly refuted would almost always be
/// linearized quickly (valid histories are); if the search finds a linearization the
/// two disagree, and the partition is `unknown` rather than silently either.
fn search_disagrees<M>(
    space: StateSpace,
    initial: &Value,
    parsed: &[ModelOp],
    intervals: &[wgl::Interval],
    shared: &Shared<'_, M>,
    position: usize,
) -> bool {
    let mut model = CompiledModel::compile(space, initial, parsed);
    let steps = CROSS_CHECK_STEPS_PER_OP * parsed.len() as u64 + 10_000;
    let budget = wgl::Budget {
        deadline: shared.deadline_for(position),
        memory_bytes: shared.memory_per_job,
        max_steps: Some(steps.min(CROSS_CHECK_MAX_STEPS)),
        stop: shared.stop.clone(),
        steps: shared.steps.clone(),
    };
    matches!(
        wgl::search(&mut model, intervals, &budget).outcome,
        wgl::Outcome::Valid
    )
}

/// The result when the version chains refute operation `op` (a position) but a search
/// linearized the partition.
fn disagreement<Op>(
    mut result: KeyResult,
    job: &Job<'_, Op>,
    op: usize,
    reason: &str,
    started: Instant,
) -> KeyResult {
    debug_assert!(
        false,
        "checker disagreement on key {:?}: the version chains refute operation {} ({reason}) but the search linearized the partition",
        job.key, job.kept[op].id
    );
    result.verdict = Verdict::Unknown;
    result.unknown_reason = Some(format!(
        "checker disagreement: the version chains say operation {} cannot be linearized ({reason}), but the search found a linearization",
        job.kept[op].id
    ));
    result.elapsed_ms = ms(started.elapsed());
    result
}

/// A refutation by a decision procedure (the version chains, on versions or on the
/// values themselves): operation `op` cannot be placed, after the linearizable `prefix`.
struct Decided<'a> {
    /// The model, initial state and operations the procedure decided: a short search of
    /// them cross-checks the refutation.
    checked: (StateSpace, &'a Value, &'a [ModelOp]),
    op: usize,
    reason: String,
    prefix: Vec<usize>,
    /// How the procedure reasons, for the witness.
    source: &'static str,
}

impl Decided<'_> {
    /// The key's result: invalid with a witness, or `unknown` when a short search finds
    /// a linearization after all (a disagreement is never turned into a verdict).
    #[allow(clippy::too_many_arguments)]
    fn into_result<M: Model>(
        self,
        mut result: KeyResult,
        job: &Job<'_, M::Op>,
        shared: &Shared<'_, M>,
        part: &Partition<'_, M>,
        intervals: &[wgl::Interval],
        position: usize,
        started: Instant,
    ) -> KeyResult {
        let (kind, initial, parsed) = self.checked;
        if search_disagrees(kind, initial, parsed, intervals, shared, position) {
            return disagreement(result, job, self.op, &self.reason, started);
        }
        result.verdict = Verdict::Invalid;
        result.witness = Some(witness::from_decision(
            part,
            shared.initial,
            self.op,
            self.reason,
            &self.prefix,
            self.source,
        ));
        result.elapsed_ms = ms(started.elapsed());
        result
    }
}

/// The result for a partition not started because the history was already proven
/// invalid and the extra budget ran out.
fn stopped<Op>(job: &Job<'_, Op>) -> KeyResult {
    let mut r = blank(job);
    r.method = "none".into();
    r.verdict = Verdict::Unknown;
    r.unknown_reason = Some(STOPPED_AFTER_INVALID.into());
    r
}

fn blank<Op>(job: &Job<'_, Op>) -> KeyResult {
    KeyResult {
        key: job.key.clone(),
        verdict: Verdict::Valid,
        operations: job.all.len(),
        ok: job.all.iter().filter(|o| o.outcome == Outcome::Ok).count(),
        info: job
            .all
            .iter()
            .filter(|o| o.outcome == Outcome::Info)
            .count(),
        elapsed_ms: 0.0,
        method: "search".into(),
        witness: None,
        unknown_reason: None,
        explored: 0,
        info_dropped: job.info_dropped,
        info_bounded: job.info_bounded,
    }
}

fn decide<M: Model>(job: &Job<'_, M::Op>, shared: &Shared<'_, M>, position: usize) -> KeyResult {
    let started = Instant::now();
    let mut result = blank(job);
    let part = Partition {
        model: shared.model,
        key: job.key.clone(),
        ops: &job.kept,
        parsed: &job.parsed,
    };
    let intervals: Vec<wgl::Interval> = job
        .kept
        .iter()
        .zip(&job.returns)
        .map(|(o, ret)| {
            (
                o.invoke_index,
                ret.or(o.complete_index.filter(|_| o.outcome == Outcome::Ok)),
            )
        })
        .collect();
    let Some(fast) = shared.model.fast_paths() else {
        // A model without fast paths: the search alone, on states interned as it goes.
        let mut model = GenericModel::new(shared.model, shared.initial, &job.parsed);
        return search_and_explain(
            &mut model, None, result, job, shared, &part, &intervals, position, started,
        );
    };
    let parsed = (fast.shared)(&job.parsed);
    let procedures = fast.procedures;
    let mut append_refuted: Option<Refuted> = None;
    if procedures.decide == Decision::AppendOrder {
        match append::translate(shared.initial, &job.kept, parsed) {
            append::Translation::Declined => {}
            append::Translation::Refuted { op, reason } => {
                result.method = "append-order".into();
                result.verdict = Verdict::Invalid;
                result.witness = Some(witness::from_decision(
                    &part,
                    shared.initial,
                    op,
                    reason,
                    &[],
                    "append-order: every state is a put's token or the initial value followed by appended tokens",
                ));
                result.elapsed_ms = ms(started.elapsed());
                return result;
            }
            append::Translation::Ops(alternatives) => {
                // Linearizable iff one alternative is (see `append`).
                let mut first_invalid = None;
                let mut undecided = None;
                let count = alternatives.len();
                for translated in alternatives {
                    match chains::decide(&Value::Null, &job.kept, &translated, &intervals) {
                        chains::ChainOutcome::Valid { order } => {
                            // Certified on versions; replaying the strings costs little
                            // and keeps the translation honest.
                            if witness::replays(shared.model, shared.initial, &job.parsed, &order) {
                                result.method = "append-order".into();
                                result.elapsed_ms = ms(started.elapsed());
                                return result;
                            }
                            debug_assert!(
                                false,
                                "append-order linearization does not replay on strings"
                            );
                            undecided.get_or_insert(translated);
                        }
                        chains::ChainOutcome::Invalid { op, reason, prefix } => {
                            first_invalid.get_or_insert((op, reason, prefix, translated));
                        }
                        chains::ChainOutcome::NotApplicable => {
                            undecided.get_or_insert(translated);
                        }
                    }
                }
                match (first_invalid, undecided) {
                    (Some((op, reason, prefix, translated)), None) if count == 1 => {
                        result.method = "append-order".into();
                        let decided = Decided {
                            checked: (StateSpace::Values, &Value::Null, &translated),
                            op,
                            reason,
                            prefix,
                            source:
                                "append-order: a version is named by the last token of the string",
                        };
                        return decided.into_result(
                            result, job, shared, &part, &intervals, position, started,
                        );
                    }
                    (Some((op, reason, _, _)), None) => {
                        // Every matching of the repeated tokens fails: invalid. The
                        // witness comes from a bounded search of the strings below, or
                        // from the first matching's reason.
                        result.method = "append-order".into();
                        append_refuted = Some(Refuted {
                            op,
                            needed: format!(
                                "{reason} (this is for the first of {count} ways to match the repeated tokens to their appends; every one fails)"
                            ),
                            reachable: Vec::new(),
                            source: "append-order translation",
                        });
                    }
                    (_, Some(translated)) => {
                        // Only "linearizable" is taken from a search of the translation
                        // here; anything else is searched on the strings.
                        let mut model =
                            CompiledModel::compile(StateSpace::Values, &Value::Null, &translated);
                        let budget = wgl::Budget {
                            deadline: shared.deadline_for(position),
                            memory_bytes: shared.memory_per_job,
                            max_steps: Some(
                                APPEND_ORDER_STEPS_PER_OP * job.kept.len() as u64
                                    + WITNESS_MAX_STEPS,
                            ),
                            stop: shared.stop.clone(),
                            steps: shared.steps.clone(),
                        };
                        let report = wgl::search(&mut model, &intervals, &budget);
                        result.explored = report.explored;
                        if matches!(report.outcome, wgl::Outcome::Valid) {
                            result.method = "append-order".into();
                            result.elapsed_ms = ms(started.elapsed());
                            return result;
                        }
                    }
                    (None, None) => {}
                }
            }
        }
    }
    let refuted = match append_refuted {
        Some(r) => Some(r),
        None if procedures.decide != Decision::VersionChains => None,
        None => match unique::check_parsed(shared.initial, &job.kept, parsed) {
            UniqueOutcome::Valid => {
                result.method = "unique-values".into();
                result.elapsed_ms = ms(started.elapsed());
                return result;
            }
            UniqueOutcome::Invalid { op, explanation } => {
                result.method = "unique-values".into();
                let Some(i) = job.kept.iter().position(|o| o.id == op) else {
                    debug_assert!(
                        false,
                        "unique-values fast path named operation {op}, not in the partition"
                    );
                    result.verdict = Verdict::Unknown;
                    result.unknown_reason = Some(format!(
                    "checker disagreement: the unique-values fast path refutes operation {op}, which is not in this partition ({explanation})"
                ));
                    result.elapsed_ms = ms(started.elapsed());
                    return result;
                };
                Some(Refuted {
                    op: i,
                    needed: explanation,
                    reachable: Vec::new(),
                    source: "unique-values fast path",
                })
            }
            UniqueOutcome::NotApplicable => {
                match chains::decide(shared.initial, &job.kept, parsed, &intervals) {
                    chains::ChainOutcome::Valid { .. } => {
                        result.method = "version-chains".into();
                        result.elapsed_ms = ms(started.elapsed());
                        return result;
                    }
                    chains::ChainOutcome::Invalid { op, reason, prefix } => {
                        result.method = "version-chains".into();
                        let decided = Decided {
                            checked: (procedures.space, shared.initial, parsed),
                            op,
                            reason,
                            prefix,
                            source: "version chains: every value is written once",
                        };
                        return decided.into_result(
                            result, job, shared, &part, &intervals, position, started,
                        );
                    }
                    chains::ChainOutcome::NotApplicable => None,
                }
            }
        },
    };
    let refuted = refuted.or_else(|| {
        precheck::refute(procedures.precheck, shared.initial, &job.kept, parsed).map(|r| Refuted {
            op: r.op,
            needed: r.needed,
            reachable: r.reachable,
            source: "pre-check",
        })
    });

    let mut model = CompiledModel::compile(procedures.space, shared.initial, parsed);
    search_and_explain(
        &mut model, refuted, result, job, shared, &part, &intervals, position, started,
    )
}

/// The search of a partition (given any earlier refutation, which bounds it to a
/// witness search), and the key's result from what it found.
#[allow(clippy::too_many_arguments)]
fn search_and_explain<M: Model>(
    model: &mut impl Searchable,
    refuted: Option<Refuted>,
    mut result: KeyResult,
    job: &Job<'_, M::Op>,
    shared: &Shared<'_, M>,
    part: &Partition<'_, M>,
    intervals: &[wgl::Interval],
    position: usize,
    started: Instant,
) -> KeyResult {
    let budget = wgl::Budget {
        deadline: shared.deadline_for(position),
        memory_bytes: shared.memory_per_job,
        max_steps: refuted.as_ref().map(|_| WITNESS_MAX_STEPS),
        stop: shared.stop.clone(),
        steps: shared.steps.clone(),
    };
    let report = wgl::search(model, intervals, &budget);
    result.explored += report.explored;
    match (report.outcome, refuted) {
        (wgl::Outcome::Valid, None) => {}
        (wgl::Outcome::Valid, Some(r)) => {
            debug_assert!(
                false,
                "checker disagreement on key {:?}: {} refutes operation {} ({}) but the search linearized the partition",
                job.key, r.source, job.kept[r.op].id, r.needed
            );
            result.verdict = Verdict::Unknown;
            result.unknown_reason = Some(format!(
                "checker disagreement: the {} says operation {} cannot be linearized ({}), but the search found a linearization",
                r.source, job.kept[r.op].id, r.needed
            ));
        }
        (wgl::Outcome::Invalid { longest_prefix }, refuted) => {
            result.verdict = Verdict::Invalid;
            let searched = witness::from_search(part, model, &longest_prefix);
            result.witness = match (searched, refuted) {
                (Some(mut w), Some(r)) => {
                    // The earlier refutation often says it more directly; keep both.
                    w.explanation
                        .push_str(&format!(" The {} adds: {}.", r.source, r.needed));
                    Some(w)
                }
                (Some(w), None) => Some(w),
                (None, Some(r)) => Some(witness::from_refutation(
                    part,
                    r.op,
                    r.needed,
                    r.reachable,
                    r.source,
                )),
                (None, None) => None,
            };
        }
        (wgl::Outcome::Unknown(_), Some(r)) => {
            result.verdict = Verdict::Invalid;
            result.witness = Some(witness::from_refutation(
                part,
                r.op,
                r.needed,
                r.reachable,
                r.source,
            ));
        }
        (wgl::Outcome::Unknown(reason), None) => {
            result.verdict = Verdict::Unknown;
            result.unknown_reason = Some(
                match reason {
                    wgl::StopReason::Time => "time limit",
                    wgl::StopReason::Memory => "memory limit",
                    wgl::StopReason::Steps => "step limit",
                    wgl::StopReason::Stopped => STOPPED_AFTER_INVALID,
                }
                .into(),
            );
        }
    }
    result.elapsed_ms = ms(started.elapsed());
    result
}
