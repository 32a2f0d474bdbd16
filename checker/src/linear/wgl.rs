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
//! Why memory is bounded: the cache only prunes repeated work — correctness never
//! depends on it — so when it would outgrow its share of the memory budget the older half
//! is evicted. Only if the fixed structures themselves (or the model's interned states)
//! exceed the budget does the search give up with [`StopReason::Memory`]. Time is checked
//! every few thousand steps.

use super::compiled::CompiledModel;
use hashbrown::HashTable;
use std::time::Instant;

const NIL: u32 = u32::MAX;
/// The cache must hold at least this many entries for the search to be worth running.
const MIN_CACHE_ENTRIES: usize = 256;
/// Budgets are checked every this many steps (a power of two).
const CHECK_EVERY: u64 = 4096;

/// The limits of one search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub(crate) deadline: Option<Instant>,
    pub(crate) memory_bytes: usize,
    /// Stop after this many explored steps (used to keep witness searches deterministic
    /// and short when the verdict is already known).
    pub(crate) max_steps: Option<u64>,
}

/// Why a search stopped without a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    Time,
    Memory,
    Steps,
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
}

/// Searches for a linearization of `intervals[i]` ↦ `model.ops[i]`.
pub(crate) fn search(model: &mut CompiledModel, intervals: &[Interval], budget: &Budget) -> Report {
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
    let mut remaining_ok = is_ok.iter().filter(|&&ok| ok).count();
    let zobrist: Vec<u64> = (0..n as u64).map(splitmix64).collect();

    let fixed_bytes = nodes * (4 + 4 + 4 + 1 + 4) + n * (4 + 1 + 8 + 12 + 8) + words * 8;
    let mut cache = Cache::new(words);
    let mut report = Report {
        outcome: Outcome::Valid,
        explored: 0,
        evictions: 0,
    };
    let Some(entries) = cache_capacity(budget, fixed_bytes + model.bytes(), words) else {
        report.outcome = Outcome::Unknown(StopReason::Memory);
        return report;
    };
    cache.max_entries = entries;

    let mut bits = vec![0u64; words];
    let mut bits_hash = 0u64;
    let mut state = model.initial;
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
                if let Some(stop) = over_budget(budget, report.explored) {
                    report.outcome = Outcome::Unknown(stop);
                    return report;
                }
                let used = fixed_bytes + model.bytes();
                if used + cache.bytes() > budget.memory_bytes {
                    model.clear_memo();
                    let used = fixed_bytes + model.bytes();
                    match cache_capacity(budget, used, words) {
                        Some(entries) => {
                            cache.max_entries = entries;
                            while cache.len() > entries {
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
            if let Some(after) = model.step(state, op) {
                let word = (op / 64) as usize;
                let mask = 1u64 << (op % 64);
                bits[word] |= mask;
                let h = bits_hash ^ zobrist[op as usize];
                let (inserted, evicted) = cache.insert(h ^ mix(after), &bits, after);
                report.evictions += u64::from(evicted);
                if inserted {
                    stack.push(Frame {
                        node,
                        before: state,
                        after,
                    });
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
            }
            node = next[node as usize];
        } else {
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
            if is_ok[op as usize] {
                remaining_ok += 1;
            }
            low_water = low_water.min(stack.len());
            node = next[frame.node as usize];
        }
    }
}

fn over_budget(budget: &Budget, explored: u64) -> Option<StopReason> {
    if budget.max_steps.is_some_and(|max| explored >= max) {
        return Some(StopReason::Steps);
    }
    if budget.deadline.is_some_and(|d| Instant::now() >= d) {
        return Some(StopReason::Time);
    }
    None
}

/// How many cache entries fit beside `used` bytes, or `None` if too few to search.
fn cache_capacity(budget: &Budget, used: usize, words: usize) -> Option<usize> {
    let free = budget.memory_bytes.checked_sub(used)?;
    let entries = free / Cache::entry_bytes(words);
    (entries >= MIN_CACHE_ENTRIES).then_some(entries)
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

/// Lowe's cache: the set of (linearized bitset, state) configurations already explored.
/// Entries live in insertion order in flat arrays; the table holds their indices.
struct Cache {
    words: usize,
    arena: Vec<u64>,
    states: Vec<u32>,
    hashes: Vec<u64>,
    table: HashTable<u32>,
    max_entries: usize,
}

impl Cache {
    fn new(words: usize) -> Cache {
        Cache {
            words,
            arena: Vec::new(),
            states: Vec::new(),
            hashes: Vec::new(),
            table: HashTable::new(),
            max_entries: MIN_CACHE_ENTRIES,
        }
    }

    /// Bytes one entry may cost, counting the table's slack (load factor and doubling).
    fn entry_bytes(words: usize) -> usize {
        words * 8 + 4 + 8 + 12
    }

    fn len(&self) -> usize {
        self.states.len()
    }

    fn bytes(&self) -> usize {
        self.arena.capacity() * 8
            + self.states.capacity() * 4
            + self.hashes.capacity() * 8
            + self.table.capacity() * 5
    }

    /// Inserts the configuration; returns (was it new, was the cache halved first).
    fn insert(&mut self, hash: u64, bits: &[u64], state: u32) -> (bool, bool) {
        let words = self.words;
        let (arena, states) = (&self.arena, &self.states);
        let seen = self.table.find(hash, |&i| {
            let i = i as usize;
            states[i] == state && arena[i * words..(i + 1) * words] == *bits
        });
        if seen.is_some() {
            return (false, false);
        }
        let mut evicted = false;
        if self.len() >= self.max_entries {
            self.evict_older_half();
            evicted = true;
        }
        if self.states.len() == self.states.capacity() {
            // Grow by doubling, but never past the budgeted number of entries.
            let target = (self.states.capacity() * 2)
                .max(1024)
                .min(self.max_entries.max(1));
            let extra = target.saturating_sub(self.states.len()).max(1);
            self.states.reserve_exact(extra);
            self.hashes.reserve_exact(extra);
            self.arena.reserve_exact(extra * words);
        }
        let index = self.states.len() as u32;
        self.states.push(state);
        self.hashes.push(hash);
        self.arena.extend_from_slice(bits);
        let hashes = &self.hashes;
        self.table
            .insert_unique(hash, index, |&i| hashes[i as usize]);
        (true, evicted)
    }

    /// Forgets the older half of the entries (the search has most likely moved past
    /// them) and rebuilds the table over the rest.
    fn evict_older_half(&mut self) {
        let keep_from = self.len() / 2;
        self.arena.drain(..keep_from * self.words);
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
        self.states.shrink_to_fit();
        self.hashes.shrink_to_fit();
        let hashes = &self.hashes;
        self.table.shrink_to_fit(|&j| hashes[j as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> (u64, Vec<u64>, u32) {
        let bits = vec![i, i.rotate_left(7)];
        (splitmix64(i), bits, (i % 5) as u32)
    }

    #[test]
    fn cache_remembers_until_evicted_and_keeps_the_newer_half() {
        let mut cache = Cache::new(2);
        cache.max_entries = 1000;
        for i in 0..1000 {
            let (h, b, s) = key(i);
            assert_eq!(cache.insert(h, &b, s), (true, false));
        }
        for i in 0..1000 {
            let (h, b, s) = key(i);
            assert_eq!(
                cache.insert(h, &b, s),
                (false, false),
                "entry {i} forgotten"
            );
        }
        // the next new entry halves the cache: 0..500 are forgotten, 500.. remembered
        let (h, b, s) = key(5000);
        assert_eq!(cache.insert(h, &b, s), (true, true));
        assert_eq!(cache.len(), 501);
        let (h, b, s) = key(999);
        assert_eq!(cache.insert(h, &b, s), (false, false));
        let (h, b, s) = key(3);
        assert!(cache.insert(h, &b, s).0);
        assert!(cache.bytes() <= 1000 * Cache::entry_bytes(2) + 4096 * 5);
    }

    #[test]
    fn same_bits_different_state_are_different_configurations() {
        let mut cache = Cache::new(1);
        cache.max_entries = 10;
        assert!(cache.insert(1, &[3], 0).0);
        assert!(cache.insert(1, &[3], 1).0);
        assert!(!cache.insert(1, &[3], 1).0);
        assert!(cache.insert(1, &[4], 1).0);
    }
}
