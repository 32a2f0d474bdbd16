//! Seeded, pure operation generators, one per workload: the same seed gives the same
//! operations, whatever the system under test answers.
//!
//! A [`Generator`] answers one question for the driver: "what should worker thread `t`
//! do next?" ([`Generator::next_op`]), and after the run "which reads prove what the
//! system ended up holding?" ([`Generator::final_ops`]). It performs no I/O and never
//! looks at completions, so the same [`WorkloadConfig`] (seed included) yields the same
//! sequence of operations for every worker thread, however the threads interleave: each
//! thread draws from its own ChaCha stream and every piece of per-thread state (value
//! counters, the current key) depends only on that thread's own past.
//!
//! Workloads:
//! - `register`: one cas-register (key `None`): 50% reads, 25% writes, 25% cas.
//! - `kv`: many independent registers, as Jepsen's independent generator: threads are
//!   split into groups of `group_size`; a group works on one key until its members have
//!   issued `ops_per_key` operations on it, then moves to a fresh key, so every key's
//!   history has bounded concurrency and length and stays checkable.
//! - `mutex`: every thread alternates `acquire` and `release` of one lock.
//! - `set`: adds of unique integers; the final read comes from [`Generator::final_ops`].
//! - `list-append`: transactions of 1–4 `append`/`r` micro-operations over a small
//!   window of keys that slides forward, so each list stays short.
//! - `rw-register`: the same transactions with `w` register writes instead of appends
//!   (Elle's rw-register workload, for stores without lists).
//!
//! Written values are unique per key (and never `null`), so the checker can tell every
//! write apart.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use splitbrain_checker::model::ModelKind;
use splitbrain_checker::{AnalysisKind, Key, TxnAnalysis};

use crate::op::Op;

/// The workloads a test can run. Serialized as its name (`"list-append"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    Register,
    Kv,
    Mutex,
    Set,
    ListAppend,
    RwRegister,
}

impl WorkloadKind {
    /// Every workload, in the order of [`WorkloadKind::NAMES`].
    pub const ALL: [WorkloadKind; 6] = [
        WorkloadKind::Register,
        WorkloadKind::Kv,
        WorkloadKind::Mutex,
        WorkloadKind::Set,
        WorkloadKind::ListAppend,
        WorkloadKind::RwRegister,
    ];

    /// The names `--workload` accepts.
    pub const NAMES: [&'static str; 6] = [
        "register",
        "kv",
        "mutex",
        "set",
        "list-append",
        "rw-register",
    ];

    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Kv => "kv",
            WorkloadKind::Mutex => "mutex",
            WorkloadKind::Set => "set",
            WorkloadKind::ListAppend => "list-append",
            WorkloadKind::RwRegister => "rw-register",
        }
    }

    /// The analysis that judges this workload's history (what `splitbrain test` hands
    /// the checker's entry point). `kv` histories are checked per key (each key is its
    /// own cas-register); `list-append` and `rw-register` go to the Elle-style
    /// transactional analyses rather than the linearizability search.
    pub fn analysis(self) -> AnalysisKind {
        match self {
            WorkloadKind::Register | WorkloadKind::Kv => {
                AnalysisKind::Linearizability(ModelKind::CasRegister)
            }
            WorkloadKind::Mutex => AnalysisKind::Linearizability(ModelKind::Mutex),
            WorkloadKind::Set => AnalysisKind::Linearizability(ModelKind::Set),
            WorkloadKind::ListAppend => AnalysisKind::Transactional(TxnAnalysis::ListAppend),
            WorkloadKind::RwRegister => AnalysisKind::Transactional(TxnAnalysis::RwRegister),
        }
    }

    /// True for the workloads of transactions, checked Elle-style rather than for
    /// linearizability.
    pub fn is_transactional(self) -> bool {
        matches!(self, WorkloadKind::ListAppend | WorkloadKind::RwRegister)
    }

    /// The default for [`WorkloadConfig::ops_per_key`]: how long one key's history grows.
    /// For `list-append` it is the number of appends per key (Elle's default of 32 keeps
    /// lists short); for the single-object workloads it is unused.
    pub fn default_ops_per_key(self) -> usize {
        match self {
            WorkloadKind::ListAppend | WorkloadKind::RwRegister => 32,
            _ => 200,
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A workload name that is not one of [`WorkloadKind::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload `{given}`; expected one of: {}", WorkloadKind::NAMES.join(", "))]
pub struct UnknownWorkload {
    pub given: String,
}

impl FromStr for WorkloadKind {
    type Err = UnknownWorkload;

    fn from_str(s: &str) -> Result<WorkloadKind, UnknownWorkload> {
        WorkloadKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| UnknownWorkload {
                given: s.to_string(),
            })
    }
}

/// Everything that determines a generator's sequences (serializable, for `test.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadConfig {
    pub kind: WorkloadKind,
    /// Number of worker threads; thread indices run from 0 to `concurrency - 1`.
    pub concurrency: usize,
    /// `kv` only: how many threads share one key at a time. `None` means
    /// `min(concurrency, 5)`, which keeps each key's linearizability search small.
    pub group_size: Option<usize>,
    /// `kv`: operations a group issues on one key before moving to the next.
    /// `list-append`: roughly how many appends each key receives before it leaves the
    /// window. Unused by the single-object workloads.
    pub ops_per_key: usize,
    /// `list-append` only: how many keys a transaction chooses from at a time.
    pub key_window: usize,
    /// Stop each thread after this many operations (`next_op` returns `None`); `None`
    /// runs until the driver's time limit.
    pub ops_per_thread: Option<usize>,
    /// The one seed every random choice derives from.
    pub seed: u64,
}

impl WorkloadConfig {
    /// A configuration with the defaults for `kind`.
    pub fn new(kind: WorkloadKind, concurrency: usize, seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            kind,
            concurrency,
            group_size: None,
            ops_per_key: kind.default_ops_per_key(),
            key_window: 8,
            ops_per_thread: None,
            seed,
        }
    }

    /// The `kv` group size actually used: `group_size`, or `min(concurrency, 5)`, never
    /// more than `concurrency`.
    pub fn effective_group_size(&self) -> usize {
        self.group_size
            .unwrap_or(5)
            .clamp(1, self.concurrency.max(1))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.concurrency == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        if self.group_size == Some(0) {
            return Err(ConfigError::ZeroGroupSize);
        }
        if self.ops_per_key == 0 {
            return Err(ConfigError::ZeroOpsPerKey);
        }
        if self.key_window == 0 {
            return Err(ConfigError::ZeroKeyWindow);
        }
        Ok(())
    }
}

/// A configuration no generator can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    #[error("the kv group size must be at least 1 (or left unset for min(concurrency, 5))")]
    ZeroGroupSize,
    #[error("operations per key must be at least 1")]
    ZeroOpsPerKey,
    #[error("the list-append key window must be at least 1")]
    ZeroKeyWindow,
}

/// The state one worker thread's sequence depends on. Nothing here is shared between
/// threads, which is what makes each thread's sequence independent of scheduling.
#[derive(Debug, Clone)]
struct ThreadState {
    /// This thread's own ChaCha stream (stream number = thread index).
    rng: ChaCha8Rng,
    /// Operations issued so far.
    issued: usize,
    /// Fresh values consumed so far, on the current key for `kv` (reset when the thread
    /// moves to a new key), overall for the other workloads.
    fresh: u64,
    /// `kv`: the round (the how-many-th key of this thread's group) `fresh` counts for.
    round: usize,
    /// `mutex`: whether the next operation is a release.
    release_next: bool,
}

/// A workload's operation generator. Thread-safe use: keep it behind the driver's mutex
/// and call [`Generator::next_op`] with `&mut`.
#[derive(Debug, Clone)]
pub struct Generator {
    config: WorkloadConfig,
    threads: Vec<ThreadState>,
    /// Keys handed out so far (`kv`, `list-append`), for the final reads.
    used_keys: BTreeSet<Key>,
}

impl Generator {
    pub fn new(config: WorkloadConfig) -> Result<Generator, ConfigError> {
        config.validate()?;
        let threads = (0..config.concurrency)
            .map(|thread| {
                let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
                rng.set_stream(thread as u64);
                ThreadState {
                    rng,
                    issued: 0,
                    fresh: 0,
                    round: 0,
                    release_next: false,
                }
            })
            .collect();
        Ok(Generator {
            config,
            threads,
            used_keys: BTreeSet::new(),
        })
    }

    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// The next operation for worker `thread`, or `None` when that thread is done (its
    /// `ops_per_thread` is used up, or `thread` is not below `concurrency`).
    pub fn next_op(&mut self, thread: usize) -> Option<Op> {
        let config = &self.config;
        let state = self.threads.get_mut(thread)?;
        if config
            .ops_per_thread
            .is_some_and(|limit| state.issued >= limit)
        {
            return None;
        }
        let op = match config.kind {
            WorkloadKind::Register => {
                let slot = Slot {
                    member: thread,
                    members: config.concurrency,
                };
                register_op(state, None, slot)
            }
            WorkloadKind::Kv => {
                let (key, slot) = kv_key(config, state, thread);
                self.used_keys.insert(key.clone());
                register_op(state, Some(key), slot)
            }
            WorkloadKind::Mutex => mutex_op(state, thread),
            WorkloadKind::Set => {
                let element = fresh_counter(state) * config.concurrency as u64 + thread as u64;
                Op::new("add", None, json!(element))
            }
            WorkloadKind::ListAppend => {
                txn_op(config, state, thread, &mut self.used_keys, "append")
            }
            WorkloadKind::RwRegister => txn_op(config, state, thread, &mut self.used_keys, "w"),
        };
        state.issued += 1;
        Some(op)
    }

    /// The reads to issue after healing (the driver issues each on every node): one read
    /// of every key used so far. `register` and `set` read their single object; `kv`
    /// reads each key; `list-append` reads every key in transactions of at most
    /// [`FINAL_TXN_KEYS`] reads. `mutex` has none: a lock has no read in its model.
    pub fn final_ops(&self) -> Vec<Op> {
        match self.config.kind {
            WorkloadKind::Register | WorkloadKind::Set => {
                vec![Op::new("read", None, Value::Null)]
            }
            WorkloadKind::Kv => self
                .used_keys
                .iter()
                .map(|key| Op::new("read", Some(key.clone()), Value::Null))
                .collect(),
            WorkloadKind::Mutex => Vec::new(),
            WorkloadKind::ListAppend | WorkloadKind::RwRegister => {
                let keys: Vec<&Key> = self.used_keys.iter().collect();
                keys.chunks(FINAL_TXN_KEYS)
                    .map(|chunk| {
                        let reads = chunk.iter().map(|k| json!(["r", k, null])).collect();
                        Op::new("txn", None, Value::Array(reads))
                    })
                    .collect()
            }
        }
    }

    /// Keys handed out so far by the multi-key workloads, in order.
    pub fn used_keys(&self) -> &BTreeSet<Key> {
        &self.used_keys
    }
}

/// The most reads one final `list-append` transaction carries.
pub const FINAL_TXN_KEYS: usize = 64;

/// Takes the next value of a thread's fresh counter.
fn fresh_counter(state: &mut ThreadState) -> u64 {
    let n = state.fresh;
    state.fresh += 1;
    n
}

/// A thread's place among the threads sharing a key: values it writes are
/// `n * members + member + 1` for its n-th fresh value, so they never collide with the
/// others' and are never 0 or `null`.
#[derive(Debug, Clone, Copy)]
struct Slot {
    member: usize,
    members: usize,
}

impl Slot {
    fn value(self, n: u64) -> u64 {
        n * self.members as u64 + self.member as u64 + 1
    }
}

/// The key a `kv` thread works on now, and its slot among the key's threads. Thread `t`
/// belongs to group `t / group_size`; each member issues `ceil(ops_per_key / members)`
/// operations per key, and the group's `r`-th key is `k{r * groups + group}`, so no two
/// groups ever share a key.
fn kv_key(config: &WorkloadConfig, state: &mut ThreadState, thread: usize) -> (Key, Slot) {
    let group_size = config.effective_group_size();
    let groups = config.concurrency.div_ceil(group_size);
    let group = thread / group_size;
    let members = group_size.min(config.concurrency - group * group_size);
    let quota = config.ops_per_key.div_ceil(members);
    let round = state.issued / quota;
    if round != state.round {
        state.round = round;
        state.fresh = 0;
    }
    let key = Key::Str(format!("k{}", round * groups + group));
    let slot = Slot {
        member: thread - group * group_size,
        members,
    };
    (key, slot)
}

/// A register operation: 50% reads, 25% writes of a fresh value, 25% cas from a guess of
/// a recently written value to a fresh one.
fn register_op(state: &mut ThreadState, key: Option<Key>, slot: Slot) -> Op {
    let roll = state.rng.gen_range(0..4);
    match roll {
        0 | 1 => Op::new("read", key, Value::Null),
        2 => {
            let n = fresh_counter(state);
            Op::new("write", key, json!(slot.value(n)))
        }
        _ => {
            let guess = cas_guess(state, slot);
            let n = fresh_counter(state);
            Op::new("cas", key, json!([guess, slot.value(n)]))
        }
    }
}

/// A guess of a value recently written to the key, without looking at completions (so
/// the sequence stays deterministic): half the time this thread's own latest value
/// (current whenever nobody wrote since), otherwise another member's value from about
/// the same point of its sequence, since threads advance at about the same pace. On a
/// key nobody has written yet, `null` (absent) is the current value.
fn cas_guess(state: &mut ThreadState, slot: Slot) -> Value {
    let made = state.fresh;
    if made == 0 && state.rng.gen_bool(0.5) {
        return Value::Null;
    }
    let latest = made.saturating_sub(1);
    if made > 0 && state.rng.gen_bool(0.5) {
        return json!(slot.value(latest));
    }
    let member = state.rng.gen_range(0..slot.members);
    let back = state.rng.gen_range(0..=1u64).min(latest);
    json!(Slot { member, ..slot }.value(latest - back))
}

/// Each thread alternates `acquire` and `release`. The value names the thread (`"t3"`):
/// the lock's owner token, so a release by a thread that does not hold the lock is
/// rejected by the system instead of freeing someone else's lock.
fn mutex_op(state: &mut ThreadState, thread: usize) -> Op {
    let f = if state.release_next {
        "release"
    } else {
        "acquire"
    };
    state.release_next = !state.release_next;
    Op::new(f, None, json!(format!("t{thread}")))
}

/// A list-append transaction of 1–4 micro-operations, each an append of a fresh value
/// (unique across the run) or a read, on a key from the thread's current window. The
/// window `[shift, shift + key_window)` moves forward by one key every `period`
/// transactions of this thread, where `period` is chosen so that a key collects about
/// `ops_per_key` appends from all threads while it is in their windows: a transaction
/// carries 2.5 micro-operations of which half are appends, spread over `key_window` keys,
/// so each thread appends about `1.25 * period` times to each key.
///
/// `rw-register` transactions are the same with `w` (a register write of a value unique
/// across the run) instead of `append`.
fn txn_op(
    config: &WorkloadConfig,
    state: &mut ThreadState,
    thread: usize,
    used_keys: &mut BTreeSet<Key>,
    write: &str,
) -> Op {
    let period = (4 * config.ops_per_key)
        .div_ceil(5 * config.concurrency)
        .max(1);
    let shift = state.issued / period;
    let len = state.rng.gen_range(1..=4);
    let micro_ops = (0..len)
        .map(|_| {
            let key = (shift + state.rng.gen_range(0..config.key_window)) as i64;
            used_keys.insert(Key::Int(key));
            if state.rng.gen_bool(0.5) {
                let n = fresh_counter(state);
                let value = n * config.concurrency as u64 + thread as u64 + 1;
                json!([write, key, value])
            } else {
                json!(["r", key, null])
            }
        })
        .collect();
    Op::new("txn", None, Value::Array(micro_ops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Runs `threads` for `per_thread` operations each, visiting threads in an order
    /// shuffled by `schedule_seed`, and returns each thread's sequence.
    fn run(config: &WorkloadConfig, per_thread: usize, schedule_seed: u64) -> Vec<Vec<Op>> {
        let mut generator = Generator::new(config.clone()).expect("valid config");
        let mut schedule: Vec<usize> = (0..config.concurrency)
            .flat_map(|t| (0..per_thread).map(move |_| t))
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(schedule_seed);
        for i in (1..schedule.len()).rev() {
            schedule.swap(i, rng.gen_range(0..=i));
        }
        let mut out = vec![Vec::new(); config.concurrency];
        for thread in schedule {
            out[thread].push(generator.next_op(thread).expect("no limit set"));
        }
        out
    }

    #[test]
    fn same_seed_same_sequence_per_thread_whatever_the_interleaving() {
        for kind in WorkloadKind::ALL {
            let config = WorkloadConfig::new(kind, 7, 42);
            let a = run(&config, 300, 1);
            let b = run(&config, 300, 2);
            assert_eq!(a, b, "{kind}: sequences depend on the interleaving");
            let other_seed = run(&WorkloadConfig { seed: 43, ..config }, 300, 1);
            // Mutex and set sequences involve no random choice at all.
            if !matches!(kind, WorkloadKind::Mutex | WorkloadKind::Set) {
                assert_ne!(a, other_seed, "{kind}: the seed changes nothing");
            }
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for (kind, name) in WorkloadKind::ALL.into_iter().zip(WorkloadKind::NAMES) {
            assert_eq!(name.parse::<WorkloadKind>(), Ok(kind));
            assert_eq!(kind.to_string(), name);
        }
        let err = "queue".parse::<WorkloadKind>().unwrap_err().to_string();
        assert!(
            err.contains("`queue`") && err.contains("list-append"),
            "{err}"
        );
        assert_eq!(WorkloadKind::Kv.analysis().name(), "cas-register");
        assert_eq!(WorkloadKind::Mutex.analysis().name(), "mutex");
        let serialized = serde_json::to_string(&WorkloadKind::ListAppend).expect("encodes");
        assert_eq!(serialized, r#""list-append""#);
    }

    #[test]
    fn rejects_impossible_configs() {
        let zero = WorkloadConfig::new(WorkloadKind::Kv, 0, 1);
        assert_eq!(
            Generator::new(zero).unwrap_err(),
            ConfigError::ZeroConcurrency
        );
        let config = WorkloadConfig {
            group_size: Some(0),
            ..WorkloadConfig::new(WorkloadKind::Kv, 3, 1)
        };
        assert_eq!(
            Generator::new(config).unwrap_err(),
            ConfigError::ZeroGroupSize
        );
    }

    #[test]
    fn register_mix_and_unique_written_values() {
        let config = WorkloadConfig::new(WorkloadKind::Register, 5, 9);
        let ops: Vec<Op> = run(&config, 2000, 3).into_iter().flatten().collect();
        let count = |f: &str| ops.iter().filter(|op| op.f == f).count() as f64;
        let total = ops.len() as f64;
        assert!((count("read") / total - 0.5).abs() < 0.05);
        assert!((count("write") / total - 0.25).abs() < 0.05);
        assert!((count("cas") / total - 0.25).abs() < 0.05);
        assert!(ops.iter().all(|op| op.key.is_none()));
        let written = written_values(&ops);
        let distinct: BTreeSet<String> = written.iter().map(Value::to_string).collect();
        assert_eq!(distinct.len(), written.len(), "written values repeat");
        // Most cas guesses name a value that is actually written during the run.
        let guesses: Vec<&Value> = ops
            .iter()
            .filter(|op| op.f == "cas")
            .map(|op| &op.value[0])
            .collect();
        let plausible = guesses
            .iter()
            .filter(|g| g.is_null() || distinct.contains(&g.to_string()))
            .count();
        assert!(
            plausible * 10 >= guesses.len() * 9,
            "{plausible}/{}",
            guesses.len()
        );
    }

    fn written_values(ops: &[Op]) -> Vec<Value> {
        ops.iter()
            .filter_map(|op| match op.f.as_str() {
                "write" => Some(op.value.clone()),
                "cas" => Some(op.value[1].clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn kv_keys_have_bounded_concurrency_and_length_and_unique_values() {
        let config = WorkloadConfig {
            ops_per_key: 50,
            ..WorkloadConfig::new(WorkloadKind::Kv, 12, 5)
        };
        assert_eq!(config.effective_group_size(), 5);
        let sequences = run(&config, 400, 8);
        let mut threads_of_key: BTreeMap<Key, BTreeSet<usize>> = BTreeMap::new();
        let mut ops_of_key: BTreeMap<Key, Vec<Op>> = BTreeMap::new();
        for (thread, ops) in sequences.iter().enumerate() {
            for op in ops {
                let key = op.key.clone().expect("kv ops carry a key");
                threads_of_key
                    .entry(key.clone())
                    .or_default()
                    .insert(thread);
                ops_of_key.entry(key).or_default().push(op.clone());
            }
        }
        // 12 threads in groups of 5, 5 and 2.
        for (key, threads) in &threads_of_key {
            assert!(threads.len() <= 5, "{key}: {threads:?}");
            let groups: BTreeSet<usize> = threads.iter().map(|t| t / 5).collect();
            assert_eq!(groups.len(), 1, "{key} shared by groups {groups:?}");
        }
        for (key, ops) in &ops_of_key {
            // Quota per member is ceil(50 / members): at most 50 + members - 1 ops.
            assert!(ops.len() <= 54, "{key}: {} ops", ops.len());
            let written = written_values(ops);
            let distinct: BTreeSet<String> = written.iter().map(Value::to_string).collect();
            assert_eq!(
                distinct.len(),
                written.len(),
                "{key}: written values repeat"
            );
        }
        // Every key is used until it is full, except each group's current one.
        let full = ops_of_key.values().filter(|ops| ops.len() >= 50).count();
        assert!(full + 3 >= ops_of_key.len());
    }

    #[test]
    fn final_ops_read_every_key_used() {
        let config = WorkloadConfig::new(WorkloadKind::Kv, 6, 11);
        let mut generator = Generator::new(config).expect("valid");
        let mut used = BTreeSet::new();
        for i in 0..3000 {
            if let Some(op) = generator.next_op(i % 6) {
                used.extend(op.key);
            }
        }
        assert!(used.len() > 10);
        let finals = generator.final_ops();
        assert!(finals.iter().all(|op| op.f == "read" && op.value.is_null()));
        let read: BTreeSet<Key> = finals.into_iter().filter_map(|op| op.key).collect();
        assert_eq!(read, used);

        let config = WorkloadConfig::new(WorkloadKind::ListAppend, 4, 11);
        let mut generator = Generator::new(config).expect("valid");
        let mut used = BTreeSet::new();
        for i in 0..2000 {
            if let Some(op) = generator.next_op(i % 4) {
                for micro in op.value.as_array().expect("txn value is a list") {
                    used.insert(micro[1].to_string());
                }
            }
        }
        let finals = generator.final_ops();
        assert!(finals.len() > 1, "{} keys in one txn", used.len());
        let mut read = BTreeSet::new();
        for op in &finals {
            assert!(op.is_read_only(), "{op:?}");
            let micro_ops = op.value.as_array().expect("txn");
            assert!(micro_ops.len() <= FINAL_TXN_KEYS);
            read.extend(micro_ops.iter().map(|m| m[1].to_string()));
        }
        assert_eq!(read, used);

        for kind in [WorkloadKind::Register, WorkloadKind::Set] {
            let generator = Generator::new(WorkloadConfig::new(kind, 2, 1)).expect("valid");
            assert_eq!(
                generator.final_ops(),
                vec![Op::new("read", None, Value::Null)]
            );
        }
        let mutex = Generator::new(WorkloadConfig::new(WorkloadKind::Mutex, 2, 1));
        assert!(mutex.expect("valid").final_ops().is_empty());
    }

    #[test]
    fn mutex_threads_alternate_with_their_owner_token() {
        let config = WorkloadConfig::new(WorkloadKind::Mutex, 3, 1);
        for (thread, ops) in run(&config, 6, 4).iter().enumerate() {
            let fs: Vec<&str> = ops.iter().map(|op| op.f.as_str()).collect();
            assert_eq!(fs, ["acquire", "release"].repeat(3));
            let token = json!(format!("t{thread}"));
            assert!(ops.iter().all(|op| op.value == token && op.key.is_none()));
        }
    }

    #[test]
    fn set_adds_unique_integers() {
        let config = WorkloadConfig::new(WorkloadKind::Set, 4, 2);
        let ops: Vec<Op> = run(&config, 100, 1).into_iter().flatten().collect();
        assert!(ops.iter().all(|op| op.f == "add" && op.value.is_u64()));
        let distinct: BTreeSet<String> = ops.iter().map(|op| op.value.to_string()).collect();
        assert_eq!(distinct.len(), 400);
    }

    #[test]
    fn list_append_txns_are_short_with_unique_appends_and_a_sliding_window() {
        let config = WorkloadConfig::new(WorkloadKind::ListAppend, 5, 3);
        let sequences = run(&config, 500, 6);
        let mut appends_per_key: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        for ops in &sequences {
            for op in ops {
                assert_eq!(op.f, "txn");
                let micro_ops = op.value.as_array().expect("txn value is a list");
                assert!((1..=4).contains(&micro_ops.len()));
                for micro in micro_ops {
                    let key = micro[1].as_i64().expect("integer key");
                    match micro[0].as_str() {
                        Some("append") => appends_per_key
                            .entry(key)
                            .or_default()
                            .push(micro[2].as_u64().expect("integer value")),
                        Some("r") => assert!(micro[2].is_null()),
                        other => panic!("unexpected micro-op {other:?}"),
                    }
                }
            }
        }
        let all: Vec<u64> = appends_per_key.values().flatten().copied().collect();
        let distinct: BTreeSet<u64> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "appended values repeat");
        assert!(appends_per_key.len() > 50, "the window never moved");
        // Keys that have left every window got about ops_per_key (32) appends.
        let full: Vec<usize> = appends_per_key
            .iter()
            .take(appends_per_key.len() - 16)
            .map(|(_, values)| values.len())
            .collect();
        let mean = full.iter().sum::<usize>() as f64 / full.len() as f64;
        assert!((20.0..=48.0).contains(&mean), "mean appends per key {mean}");
    }

    #[test]
    fn rw_register_txns_write_unique_values() {
        let config = WorkloadConfig::new(WorkloadKind::RwRegister, 5, 3);
        let sequences = run(&config, 300, 6);
        let mut written = Vec::new();
        for op in sequences.iter().flatten() {
            assert_eq!(op.f, "txn");
            for micro in op.value.as_array().expect("txn value is a list") {
                match micro[0].as_str() {
                    Some("w") => written.push(micro[2].as_u64().expect("integer value")),
                    Some("r") => assert!(micro[2].is_null()),
                    other => panic!("unexpected micro-op {other:?}"),
                }
            }
        }
        let distinct: BTreeSet<u64> = written.iter().copied().collect();
        assert_eq!(distinct.len(), written.len(), "written values repeat");
        assert!(written.len() > 500);
        assert_eq!(WorkloadKind::RwRegister.analysis().name(), "rw-register");
        let mut generator = Generator::new(config).expect("valid config");
        for _ in 0..50 {
            generator.next_op(0);
        }
        assert!(generator
            .final_ops()
            .iter()
            .all(|op| op.f == "txn" && op.value[0][0] == "r"));
    }

    #[test]
    fn ops_per_thread_ends_each_thread() {
        let config = WorkloadConfig {
            ops_per_thread: Some(3),
            ..WorkloadConfig::new(WorkloadKind::Register, 2, 1)
        };
        let mut generator = Generator::new(config).expect("valid");
        for _ in 0..3 {
            assert!(generator.next_op(0).is_some());
        }
        assert_eq!(generator.next_op(0), None);
        assert!(generator.next_op(1).is_some());
        assert_eq!(generator.next_op(2), None, "thread beyond concurrency");
    }
}
