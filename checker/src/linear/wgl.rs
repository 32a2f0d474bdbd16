//! The Wing–Gong–Lowe linearizability search with Lowe's cache, as Porcupine and
//! Knossos' `wgl` do it, over one partition (one key) of a history.
//!
//! The history is a doubly linked list of call and return entries in event-index order.
//! The search walks it from the head: at a call entry it tries to linearize that
//! operation now (apply it to the model; if legal and the configuration (linearized set,
//! state) was never seen, *lift* the call and its return out of the list, push, restart
//! from the head); at a return entry it has hit an operation that must already have
//! taken effect but could not, so it backtracks. Indeterminate (`info`) operations have
//! no return entry — they return at infinity — so the search succeeds as soon as every
//! `ok` operation is linearized, whatever happened to the `info` ones.
//!
//! Why it is fast: the linearized set is a compact bitset whose hash is kept
//! incrementally (Zobrist: one random word per operation, XORed in and out), states are
//! interned `u32`s, and the cache is an open-addressing table of indices into one flat
//! arena of bitsets. Lifting and unlifting are O(1) (dancing links).
//!
//! Why cache entries are small: operations are numbered in invocation order, and the
//! search linearizes them roughly in that order, so a linearized set is almost always
//! "every operation below a *frontier* `f` (the first one not linearized), plus a few
//! just above it". An entry stores `f` and only the bitset words from `f`'s word up to
//! the word of the highest linearized operation, not all `n` bits: that window is a
//! function of the set, so comparing (`f`, window) is exact set equality. With a full
//! bitset per entry a 100 000-operation key cost 12.5 kB per entry and the search spent
//! its time copying and faulting in gigabytes of them; windows are a word or two. Both
//! `f` and the highest linearized operation are kept per stack frame, so push and pop
//! restore them in O(1) (advancing `f` scans words, amortised small).
//!
//! Why memory is bounded: the cache only prunes repeated work — correctness never
//! depends on it — so when it would outgrow its share of the memory budget the older half
//! is evicted. Only if the fixed structures themselves (or the model's interned states)
//! exceed the budget does the search give up with [`StopReason::Memory`]. Time is checked
//! every few thousand steps.

use hashbrown::HashTable;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const NIL: u32 = u32::MAX;
/// The cache must hold at least this many entries for the search to be worth running.
const MIN_CACHE_ENTRIES: usize = 256;
/// Budgets are checked every this many steps (a power of two).
const CHECK_EVERY: u64 = 4096;

/// A stop time that other threads can bring forward while searches run: once one key
/// proves the history invalid, the others get a bounded extra budget (verdict first).
#[derive(Debug)]
pub(crate) struct Stop {
    base: Instant,
    /// Nanoseconds after `base`; `u64::MAX`: not set.
    at: AtomicU64,
}

impl Stop {
    pub(crate) fn new() -> Stop {
        Stop {
            base: Instant::now(),
            at: AtomicU64::new(u64::MAX),
        }
    }

    /// Stops at `when`, unless an earlier stop is already set.
    pub(crate) fn stop_at(&self, when: Instant) {
        let nanos = when.saturating_duration_since(self.base).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1);
        self.at.fetch_min(nanos, Ordering::SeqCst);
    }

    /// Whether the stop time is set and has passed.
    pub(crate) fn reached(&self) -> bool {
        let at = self.at.load(Ordering::SeqCst);
        at != u64::MAX && self.base.elapsed().as_nanos() >= u128::from(at)
    }
}

/// The limits of one search.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pub(crate) deadline: Option<Instant>,
    pub(crate) memory_bytes: usize,
    /// Stop after this many explored steps (used to keep witness searches deterministic
    /// and short when the verdict is already known).
    pub(crate) max_steps: Option<u64>,
    /// Stop early (verdict first; see [`Stop`]).
    pub(crate) stop: Option<Arc<Stop>>,
    /// Where to count explored steps for progress displays (added every few thousand).
    pub(crate) steps: Option<Arc<AtomicU64>>,
}

/// Why a search stopped without a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    Time,
    Memory,
    Steps,
    /// Another key proved the history invalid and the extra budget ran out.
    Stopped,
}

#[derive(Debug)]
pub(crate) enum Outcome {
    Valid,
    /// Not linearizable. `longest_prefix` is the longest linearization found, as
    /// (operation, state after it) pairs in linearization order.
    Invalid {
        longest_prefix: Vec<(u32, u32)>,
    },
    Unknown(StopReason),
}

#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) outcome: Outcome,
    /// Operations tried (model steps attempted).
    pub(crate) explored: u64,
    /// How many times the cache was halved to stay within memory.
    pub(crate) evictions: u64,
}

/// The real-time interval of one operation: invocation and completion event indices
/// (`None`: returns at infinity).
pub(crate) type Interval = (u64, Option<u64>);

#[derive(Debug, Clone, Copy)]
struct Frame {
    node: u32,
    before: u32,
    after: u32,
    /// The frontier and the highest linearized operation before this push.
    frontier: u32,
    highest: u32,
    /// A read-only operation linearized as soon as it was legal (see `search`): if it
    /// fails, so does the configuration it was pushed from.
    forced: bool,
}

/// The first operation at or after `from` whose bit is clear (`n` if none).
fn next_clear(bits: &[u64], from: u32, n: u32) -> u32 {
    let mut word = (from / 64) as usize;
    let mut w = bits.get(word).copied().unwrap_or(0) | ((1u64 << (from % 64)) - 1);
    loop {
        if w != u64::MAX {
            let at = word as u32 * 64 + w.trailing_ones();
            return at.min(n);
        }
        word += 1;
        match bits.get(word) {
            Some(&next) => w = next,
            None => return n,
        }
    }
}

/// The words of the cache window of a linearized set (see the module doc): from the
/// frontier's word to the highest linearized operation's word (at least one word).
#[inline]
fn window(bits: &[u64], frontier: u32, highest: u32, n: u32) -> &[u64] {
    let last = n.saturating_sub(1);
    let lo = (frontier.min(last) / 64) as usize;
    let hi = (highest.max(frontier).min(last) / 64) as usize;
    &bits[lo..=hi]
}

/// A model as the search runs it: states and operations are small integers (operation
/// `i` is `intervals[i]`'s), so the cache is keyed cheaply. The built-in models are
/// compiled (`compiled`); any other model is interned as it goes (`generic`).
pub(crate) trait Searchable {
    /// The initial state.
    fn initial(&self) -> u32;
    /// Whether operation `op` never changes the state.
    fn is_read_only(&self, op: u32) -> bool;
    /// Applies operation `op` to `state`: the new state, or `None` if illegal there.
    fn step(&mut self, state: u32, op: u32) -> Option<u32>;
    /// Approximate heap bytes of the model's tables; they count against the memory
    /// budget.
    fn bytes(&self) -> usize;
    /// Forgets memoised steps (only a speed-up) to give memory back.
    fn clear_memo(&mut self);
    /// The state as JSON, in the form the model's `step` uses.
    fn state_json(&self, state: u32) -> Value;
}

/// Searches for a linearization of `intervals[i]` ↦ operation `i` of `model`.
pub(crate) fn search<S: Searchable>(
    model: &mut S,
    intervals: &[Interval],
    budget: &Budget,
) -> Report {
    let n = intervals.len();
    let words = n.div_ceil(64).max(1);

    // The entry list: node 0 is the head sentinel, nodes 1.. are events by index.
    let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n);
    for (i, &(call, ret)) in intervals.iter().enumerate() {
        events.push((call, true, i as u32));
        if let Some(r) = ret {
            events.push((r, false, i as u32));
        }
    }
    events.sort_unstable_by_key(|e| (e.0, !e.1));
    let nodes = events.len() + 1;
    let mut next: Vec<u32> = (1..=nodes as u32).collect();
    next[nodes - 1] = NIL;
    let mut prev: Vec<u32> = (0..nodes as u32).map(|i| i.wrapping_sub(1)).collect();
    prev[0] = NIL;
    let mut node_op = vec![0u32; nodes];
    let mut is_call = vec![false; nodes];
    let mut return_node = vec![NIL; nodes];
    let mut call_node_of = vec![NIL; n];
    for (pos, &(_, call, op)) in events.iter().enumerate() {
        let node = pos + 1;
        node_op[node] = op;
        is_call[node] = call;
        if call {
            call_node_of[op as usize] = node as u32;
        } else {
            return_node[call_node_of[op as usize] as usize] = node as u32;
        }
    }
    let is_ok: Vec<bool> = intervals.iter().map(|iv| iv.1.is_some()).collect();
    let read_only: Vec<bool> = (0..n as u32).map(|op| model.is_read_only(op)).collect();
    let mut remaining_ok = is_ok.iter().filter(|&&ok| ok).count();
    let zobrist: Vec<u64> = (0..n as u64).map(splitmix64).collect();

    let fixed_bytes = nodes * (4 + 4 + 4 + 1 + 4) + n * (4 + 1 + 8 + 20 + 8) + words * 8;
    let mut cache = Cache::new();
    let mut report = Report {
        outcome: Outcome::Valid,
        explored: 0,
        evictions: 0,
    };
    let Some(cache_bytes) = cache_capacity(budget, fixed_bytes + model.bytes()) else {
        report.outcome = Outcome::Unknown(StopReason::Memory);
        return report;
    };
    cache.max_bytes = cache_bytes;

    let mut bits = vec![0u64; words];
    let mut bits_hash = 0u64;
    let n32 = n as u32;
    // The first operation not linearized, and the highest linearized one (0 when none:
    // the window then starts and ends at the frontier's word either way).
    let mut frontier = 0u32;
    let mut highest = 0u32;
    let mut state = model.initial();
    let mut stack: Vec<Frame> = Vec::with_capacity(n);
    let mut best: Vec<(u32, u32)> = Vec::with_capacity(n);
    // best[..low_water] == the ops/states of stack[..low_water]
    let mut low_water = 0usize;
    let mut node = next[0];

    let lift = |next: &mut [u32], prev: &mut [u32], node: u32| {
        let unlink = |next: &mut [u32], prev: &mut [u32], x: u32| {
            let (p, nx) = (prev[x as usize], next[x as usize]);
            next[p as usize] = nx;
            if nx != NIL {
                prev[nx as usize] = p;
            }
        };
        unlink(next, prev, node);
        let r = return_node[node as usize];
        if r != NIL {
            unlink(next, prev, r);
        }
    };
    let unlift = |next: &mut [u32], prev: &mut [u32], node: u32| {
        let relink = |next: &mut [u32], prev: &mut [u32], x: u32| {
            let (p, nx) = (prev[x as usize], next[x as usize]);
            next[p as usize] = x;
            if nx != NIL {
                prev[nx as usize] = x;
            }
        };
        let r = return_node[node as usize];
        if r != NIL {
            relink(next, prev, r);
        }
        relink(next, prev, node);
    };

    loop {
        if remaining_ok == 0 {
            report.outcome = Outcome::Valid;
            return report;
        }
        debug_assert!(
            node != NIL,
            "an ok operation's return entry is always ahead"
        );
        if node == NIL {
            // Unreachable while an ok operation remains; stay safe rather than index out.
            report.outcome = Outcome::Unknown(StopReason::Steps);
            return report;
        }
        if is_call[node as usize] {
            report.explored += 1;
            if report.explored & (CHECK_EVERY - 1) == 0 {
                if let Some(steps) = &budget.steps {
                    steps.fetch_add(CHECK_EVERY, Ordering::Relaxed);
                }
                if let Some(stop) = over_budget(budget, report.explored) {
                    report.outcome = Outcome::Unknown(stop);
                    return report;
                }
                let used = fixed_bytes + model.bytes();
                if used + cache.bytes() > budget.memory_bytes {
                    model.clear_memo();
                    let used = fixed_bytes + model.bytes();
                    match cache_capacity(budget, used) {
                        Some(cache_bytes) => {
                            cache.max_bytes = cache_bytes;
                            while cache.len() > 0 && cache.used_bytes() > cache_bytes {
                                cache.evict_older_half();
                                report.evictions += 1;
                            }
                            cache.shrink();
                        }
                        None => {
                            report.outcome = Outcome::Unknown(StopReason::Memory);
                            return report;
                        }
                    }
                }
            }
            let op = node_op[node as usize];
            let mut backtrack = false;
            if let Some(after) = model.step(state, op) {
                // Reads first (a partial-order reduction): a read-only operation that is
                // legal here is linearized here, and if that fails nothing else is tried
                // from this configuration. Sound and complete: in any linearization that
                // extends this configuration, the read can move to right here — the
                // state is the same, the read changes nothing after it, and every
                // operation not yet linearized returns after the read was invoked (the
                // read's call comes before the first return entry), so no real-time
                // order breaks. The longest prefix stays a dead end of maximal depth, as
                // the witness needs: a configuration with a legal candidate always
                // gets a child (or its child was explored before, one deeper).
                let forced = read_only[op as usize];
                let word = (op / 64) as usize;
                let mask = 1u64 << (op % 64);
                bits[word] |= mask;
                let h = bits_hash ^ zobrist[op as usize];
                let new_frontier = if op == frontier {
                    next_clear(&bits, op, n32)
                } else {
                    frontier
                };
                let new_highest = highest.max(op);
                let (inserted, evicted) = cache.insert(
                    h ^ mix(after),
                    new_frontier,
                    window(&bits, new_frontier, new_highest, n32),
                    after,
                );
                report.evictions += u64::from(evicted);
                if inserted {
                    stack.push(Frame {
                        node,
                        before: state,
                        after,
                        frontier,
                        highest,
                        forced,
                    });
                    frontier = new_frontier;
                    highest = new_highest;
                    state = after;
                    bits_hash = h;
                    lift(&mut next, &mut prev, node);
                    if is_ok[op as usize] {
                        remaining_ok -= 1;
                    }
                    if stack.len() > best.len() {
                        best.truncate(low_water);
                        best.extend(
                            stack[low_water..]
                                .iter()
                                .map(|f| (node_op[f.node as usize], f.after)),
                        );
                        low_water = stack.len();
                    }
                    node = next[0];
                    continue;
                }
                bits[word] &= !mask;
                // Explored before and failed: so does this configuration.
                backtrack = forced;
            }
            if !backtrack {
                node = next[node as usize];
                continue;
            }
        }
        // A return entry (or a forced read that failed): undo the last choice; undo a
        // forced read's parent too, since it fails with the read.
        loop {
            let Some(frame) = stack.pop() else {
                report.outcome = Outcome::Invalid {
                    longest_prefix: best,
                };
                return report;
            };
            let op = node_op[frame.node as usize];
            bits[(op / 64) as usize] &= !(1u64 << (op % 64));
            bits_hash ^= zobrist[op as usize];
            unlift(&mut next, &mut prev, frame.node);
            state = frame.before;
            frontier = frame.frontier;
            highest = frame.highest;
            if is_ok[op as usize] {
                remaining_ok += 1;
            }
            low_water = low_water.min(stack.len());
            node = next[frame.node as usize];
            if !frame.forced {
                break;
            }
        }
    }
}

fn over_budget(budget: &Budget, explored: u64) -> Option<StopReason> {
    if budget.max_steps.is_some_and(|max| explored >= max) {
        return Some(StopReason::Steps);
    }
    if budget.stop.as_ref().is_some_and(|s| s.reached()) {
        return Some(StopReason::Stopped);
    }
    if budget.deadline.is_some_and(|d| Instant::now() >= d) {
        return Some(StopReason::Time);
    }
    None
}

/// How many bytes of cache entries fit beside `used` bytes, or `None` if too few to
/// search. Half the free memory: the arrays grow by doubling, so their capacity may be
/// up to twice what the entries use.
fn cache_capacity(budget: &Budget, used: usize) -> Option<usize> {
    let free = budget.memory_bytes.checked_sub(used)?;
    let bytes = free / 2;
    (bytes >= MIN_CACHE_ENTRIES * Cache::entry_bytes(1)).then_some(bytes)
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed
        .wrapping_add(0x9E37_79B9_7F4A_7C15)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline]
fn mix(state: u32) -> u64 {
    (u64::from(state) + 1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29)
}

/// Lowe's cache: the set of (linearized set, state) configurations already explored.
/// Entries live in insertion order in flat arrays, each set as (frontier, window of
/// bitset words; see the module doc); the table holds their indices.
struct Cache {
    /// The window words of every entry, back to back.
    arena: Vec<u64>,
    /// Where each entry's window starts in `arena` (it ends where the next one starts).
    starts: Vec<u32>,
    frontiers: Vec<u32>,
    states: Vec<u32>,
    hashes: Vec<u64>,
    table: HashTable<u32>,
    /// Most bytes the entries may use (see [`Cache::used_bytes`]).
    max_bytes: usize,
}

impl Cache {
    fn new() -> Cache {
        Cache {
            arena: Vec::new(),
            starts: Vec::new(),
            frontiers: Vec::new(),
            states: Vec::new(),
            hashes: Vec::new(),
            table: HashTable::new(),
            max_bytes: MIN_CACHE_ENTRIES * Cache::entry_bytes(1),
        }
    }

    /// Bytes one entry with a window of `words` words costs, counting the table's slot.
    fn entry_bytes(words: usize) -> usize {
        words * 8 + 4 + 4 + 4 + 8 + 5
    }

    fn len(&self) -> usize {
        self.states.len()
    }

    /// Bytes the entries use (not the arrays' spare capacity).
    fn used_bytes(&self) -> usize {
        self.arena.len() * 8 + self.len() * Cache::entry_bytes(0)
    }

    fn bytes(&self) -> usize {
        self.arena.capacity() * 8
            + self.starts.capacity() * 4
            + self.frontiers.capacity() * 4
            + self.states.capacity() * 4
            + self.hashes.capacity() * 8
            + self.table.capacity() * 5
    }

    fn window_of(&self, i: usize) -> &[u64] {
        let start = self.starts[i] as usize;
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.arena.len(), |&e| e as usize);
        &self.arena[start..end]
    }

    /// Inserts the configuration; returns (was it new, was the cache halved first).
    fn insert(&mut self, hash: u64, frontier: u32, window: &[u64], state: u32) -> (bool, bool) {
        let seen = self.table.find(hash, |&i| {
            let i = i as usize;
            self.states[i] == state && self.frontiers[i] == frontier && self.window_of(i) == window
        });
        if seen.is_some() {
            return (false, false);
        }
        let mut evicted = false;
        while self.len() > 0
            && self.used_bytes() + Cache::entry_bytes(window.len()) > self.max_bytes
        {
            self.evict_older_half();
            evicted = true;
        }
        let index = self.states.len() as u32;
        self.starts.push(self.arena.len() as u32);
        self.arena.extend_from_slice(window);
        self.frontiers.push(frontier);
        self.states.push(state);
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.table
            .insert_unique(hash, index, |&i| hashes[i as usize]);
        (true, evicted)
    }

    /// Forgets the older half of the entries (the search has most likely moved past
    /// them) and rebuilds the table over the rest.
    fn evict_older_half(&mut self) {
        // Rounded up, so that a single entry is evicted too.
        let keep_from = self.len().div_ceil(2);
        let base = self
            .starts
            .get(keep_from)
            .map_or(self.arena.len(), |&s| s as usize);
        self.arena.drain(..base);
        self.starts.drain(..keep_from);
        for s in &mut self.starts {
            *s -= base as u32;
        }
        self.frontiers.drain(..keep_from);
        self.states.drain(..keep_from);
        self.hashes.drain(..keep_from);
        self.table.clear();
        let hashes = &self.hashes;
        for i in 0..hashes.len() {
            self.table
                .insert_unique(hashes[i], i as u32, |&j| hashes[j as usize]);
        }
    }

    fn shrink(&mut self) {
        self.arena.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.frontiers.shrink_to_fit();
        self.states.shrink_to_fit();
        self.hashes.shrink_to_fit();
        let hashes = &self.hashes;
        self.table.shrink_to_fit(|&j| hashes[j as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> (u64, u32, Vec<u64>, u32) {
        let bits = vec![i, i.rotate_left(7)];
        (splitmix64(i), (i % 3) as u32, bits, (i % 5) as u32)
    }

    #[test]
    fn cache_remembers_until_evicted_and_keeps_the_newer_half() {
        let mut cache = Cache::new();
        cache.max_bytes = 1000 * Cache::entry_bytes(2);
        for i in 0..1000 {
            let (h, f, b, s) = key(i);
            assert_eq!(cache.insert(h, f, &b, s), (true, false));
        }
        for i in 0..1000 {
            let (h, f, b, s) = key(i);
            assert_eq!(
                cache.insert(h, f, &b, s),
                (false, false),
                "entry {i} forgotten"
            );
        }
        // the next new entry halves the cache: 0..500 are forgotten, 500.. remembered
        let (h, f, b, s) = key(5000);
        assert_eq!(cache.insert(h, f, &b, s), (true, true));
        assert_eq!(cache.len(), 501);
        let (h, f, b, s) = key(999);
        assert_eq!(cache.insert(h, f, &b, s), (false, false));
        let (h, f, b, s) = key(3);
        assert!(cache.insert(h, f, &b, s).0);
        assert!(cache.used_bytes() <= cache.max_bytes);
    }

    #[test]
    fn state_frontier_and_window_all_distinguish_configurations() {
        let mut cache = Cache::new();
        cache.max_bytes = 10 * Cache::entry_bytes(2);
        assert!(cache.insert(1, 0, &[3], 0).0);
        assert!(cache.insert(1, 0, &[3], 1).0);
        assert!(!cache.insert(1, 0, &[3], 1).0);
        assert!(cache.insert(1, 0, &[4], 1).0);
        assert!(cache.insert(1, 64, &[4], 1).0);
        assert!(cache.insert(1, 64, &[4, 1], 1).0);
        assert!(!cache.insert(1, 64, &[4, 1], 1).0);
        // an entry too big for the budget still goes in, alone
        cache.max_bytes = Cache::entry_bytes(1);
        assert_eq!(cache.insert(2, 0, &[7, 7, 7], 0), (true, true));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn frontier_and_window_are_functions_of_the_set() {
        let n = 200;
        let mut bits = vec![0u64; 4];
        let set = |bits: &mut Vec<u64>, i: u32| bits[(i / 64) as usize] |= 1 << (i % 64);
        assert_eq!(next_clear(&bits, 0, n), 0);
        for i in 0..70 {
            set(&mut bits, i);
        }
        assert_eq!(next_clear(&bits, 0, n), 70);
        assert_eq!(next_clear(&bits, 65, n), 70);
        set(&mut bits, 150);
        assert_eq!(window(&bits, 70, 150, n), &bits[1..=2]);
        // nothing above the frontier: one word, the frontier's
        assert_eq!(window(&bits, 70, 69, n), &bits[1..=1]);
        for i in 70..n {
            set(&mut bits, i);
        }
        assert_eq!(next_clear(&bits, 0, n), n);
        assert_eq!(window(&bits, n, n - 1, n), &bits[3..=3]);
        assert_eq!(next_clear(&[u64::MAX], 0, 64), 64);
        assert_eq!(next_clear(&[0], 0, 0), 0);
        assert_eq!(window(&[0], 0, 0, 0), &[0]);
    }
}
