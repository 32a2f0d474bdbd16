//! Elle's rw-register analysis: transactions of single-value reads and writes.
//!
//! Most stores have no lists, only registers, and a register read shows one version,
//! not the history before it. So the version order of each key has to be *inferred*,
//! and only what can be proven is used (Elle's `rw-register`, with unique written
//! values):
//! - the initial state (nil) precedes every written version (always true);
//! - writes follow reads: a transaction that read version `a` of a key and then wrote
//!   `b` installed `b` after `a` (true when reads see committed versions: under
//!   read-committed and every model that implies it);
//! - process order: a version a process wrote or read precedes one it writes later
//!   (forced by strong-session-read-committed: otherwise a G0-process or G1c-process
//!   cycle);
//! - real-time order: a version written or read by a transaction that completed
//!   precedes one written by a transaction invoked later (forced by
//!   strong-read-committed in the same way).
//!
//! Each inferred order is used only when one of the checked models implies the model it
//! assumes, and every edge remembers its assumption: an anomaly whose cycle rests on one
//! rules out only models that imply it (see [`super::models`]). A version order that
//! is itself cyclic is reported as `cyclic-versions`, under the weakest assumption that
//! closes the cycle.
//!
//! From the version graph (per key, versions as nodes) the dependency graph follows:
//! `ww` from the writer of a version to the writer of the next, `wr` from a writer to
//! each reader of its version, `rw` from each reader of a version to the writer of the
//! next. Only versions that were installed are nodes: final writes of transactions that
//! completed `ok`, or `info` ones somebody read. Anomalies visible without a graph
//! (`G1a`, `G1b`, `garbage-read`, `internal`, `future-read`) are found in one pass.
//! Process and real-time edges, the cycle search and the judgement are shared with
//! list-append.

use super::graph::{self, Deps, Why, RW, WR, WW};
use super::list_append::{show_value, t, Collector};
use super::models::ConsistencyModel;
use super::txn::{Mop, Parsed, Status, NONE};
use super::Anomaly;
use hashbrown::HashMap;
use petgraph::graph::{DiGraph, NodeIndex};

/// Which inferences of version order are in use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inference {
    pub writes_follow_reads: bool,
    pub process: bool,
    pub realtime: bool,
}

impl Inference {
    /// Everything that one of `models` allows.
    pub(crate) fn for_models(models: &[ConsistencyModel]) -> Inference {
        let any = |m: ConsistencyModel| models.iter().any(|c| c.implies(m));
        Inference {
            writes_follow_reads: any(ConsistencyModel::ReadCommitted),
            process: any(ConsistencyModel::StrongSessionReadCommitted),
            realtime: any(ConsistencyModel::StrongReadCommitted),
        }
    }
}

/// Assumption levels of version edges, weakest first.
const INITIAL: u8 = 0;
const WFR: u8 = 1;
const PROCESS_ORDER: u8 = 2;
const REALTIME_ORDER: u8 = 3;

fn assumption(level: u8) -> Option<ConsistencyModel> {
    match level {
        INITIAL => None,
        WFR => Some(ConsistencyModel::ReadCommitted),
        PROCESS_ORDER => Some(ConsistencyModel::StrongSessionReadCommitted),
        _ => Some(ConsistencyModel::StrongReadCommitted),
    }
}

/// One key's versions: what was installed, who read what, and the inferred order.
#[derive(Debug, Default)]
struct KeyVersions {
    /// Version edges (from, to) -> weakest assumption level; `NONE` is the initial state.
    edges: HashMap<(u32, u32), u8>,
    /// Version -> ok transactions whose external read returned it (`NONE`: nil).
    readers: HashMap<u32, Vec<u32>>,
}

impl KeyVersions {
    fn add(&mut self, from: u32, to: u32, level: u8) {
        if from == to {
            return;
        }
        let slot = self.edges.entry((from, to)).or_insert(level);
        *slot = (*slot).min(level);
    }
}

/// The anomalies visible without a graph, then the dependency graph.
pub(crate) fn analyse(parsed: &Parsed<'_>, inference: Inference, found: &mut Collector) -> Deps {
    let installed = installed(parsed);
    check_reads(parsed, found);
    check_internal(parsed, found);
    let mut keys: Vec<KeyVersions> = (0..parsed.keys.len())
        .map(|_| KeyVersions::default())
        .collect();
    collect_reads(parsed, &installed, &mut keys);
    if inference.writes_follow_reads {
        writes_follow_reads(parsed, &installed, &mut keys);
    }
    if inference.process {
        process_versions(parsed, &installed, &mut keys);
    }
    if inference.realtime {
        realtime_versions(parsed, &installed, &mut keys);
    }
    initial_versions(parsed, &installed, &mut keys);
    cyclic_versions(parsed, &keys, found);
    let mut deps = Deps::new(parsed.txns.len());
    for (key, versions) in keys.iter().enumerate() {
        dependencies(parsed, key as u32, versions, &mut deps);
    }
    graph::process_order(parsed, &mut deps);
    graph::real_time(parsed, &mut deps);
    deps
}

/// Element id -> true if it is a version: a transaction's final write of its key, by an
/// `ok` transaction, or by an `info` one whose write some `ok` read observed.
fn installed(parsed: &Parsed<'_>) -> Vec<bool> {
    let mut out = vec![false; parsed.elems.len()];
    for (e, slot) in out.iter_mut().enumerate() {
        let w = parsed.appender[e];
        if w != NONE && !parsed.intermediate[e] && parsed.txns[w as usize].status == Status::Ok {
            *slot = true;
        }
    }
    for (node, txn) in parsed.txns.iter().enumerate() {
        if txn.status != Status::Ok {
            continue;
        }
        for mop in &txn.mops {
            if let Mop::ReadValue {
                value: Some(v),
                external: true,
                ..
            } = *mop
            {
                if v != NONE {
                    let w = parsed.appender[v as usize];
                    if w != NONE && w != node as u32 && !parsed.intermediate[v as usize] {
                        out[v as usize] = true;
                    }
                }
            }
        }
    }
    out
}

/// Each transaction's external (first) read per key, as (key, value), for `ok` ones.
fn external_reads<'a>(txn: &'a super::txn::Txn<'_>) -> impl Iterator<Item = (u32, u32)> + 'a {
    txn.mops.iter().filter_map(|m| match *m {
        Mop::ReadValue {
            key,
            value: Some(v),
            external: true,
        } => Some((key, v)),
        _ => None,
    })
}

/// Each transaction's final write per key, as (key, element).
fn final_writes<'a>(
    parsed: &'a Parsed<'_>,
    txn: &'a super::txn::Txn<'_>,
) -> impl Iterator<Item = (u32, u32)> + 'a {
    txn.mops.iter().filter_map(|m| match *m {
        Mop::Write { key, elem } if !parsed.intermediate[elem as usize] => Some((key, elem)),
        _ => None,
    })
}

/// Readers of each version (only of versions that exist, and nil).
fn collect_reads(parsed: &Parsed<'_>, installed: &[bool], keys: &mut [KeyVersions]) {
    for (node, txn) in parsed.txns.iter().enumerate() {
        if txn.status != Status::Ok {
            continue;
        }
        for (key, v) in external_reads(txn) {
            if v == NONE || installed[v as usize] {
                keys[key as usize]
                    .readers
                    .entry(v)
                    .or_default()
                    .push(node as u32);
            }
        }
    }
}

/// A transaction that read `a` and then wrote `b` of the same key: `a` < `b`.
fn writes_follow_reads(parsed: &Parsed<'_>, installed: &[bool], keys: &mut [KeyVersions]) {
    for txn in &parsed.txns {
        if txn.status != Status::Ok {
            continue;
        }
        for (key, read) in external_reads(txn) {
            if read != NONE && !installed[read as usize] {
                continue;
            }
            for (wkey, written) in final_writes(parsed, txn) {
                if wkey == key && installed[written as usize] {
                    keys[key as usize].add(read, written, WFR);
                }
            }
        }
    }
}

/// The version a transaction leaves a key at, or saw it at: its final write, else its
/// external read.
fn touched_versions(parsed: &Parsed<'_>, txn: &super::txn::Txn<'_>) -> Vec<(u32, u32, bool)> {
    let mut out: Vec<(u32, u32, bool)> = final_writes(parsed, txn)
        .map(|(k, e)| (k, e, true))
        .collect();
    for (key, v) in external_reads(txn) {
        if !out.iter().any(|(k, _, _)| *k == key) {
            out.push((key, v, false));
        }
    }
    out
}

/// Per process and key: every version the process wrote or read since (and including)
/// its last write precedes the next version it writes.
fn process_versions(parsed: &Parsed<'_>, installed: &[bool], keys: &mut [KeyVersions]) {
    let mut pending: HashMap<(u64, u32), Vec<u32>> = HashMap::new();
    for txn in &parsed.txns {
        if txn.status != Status::Ok {
            continue;
        }
        for (key, v, wrote) in touched_versions(parsed, txn) {
            if v != NONE && !installed[v as usize] {
                continue;
            }
            let list = pending.entry((txn.op.process, key)).or_default();
            if wrote {
                for &p in list.iter() {
                    keys[key as usize].add(p, v, PROCESS_ORDER);
                }
                list.clear();
            }
            if !list.contains(&v) {
                list.push(v);
            }
        }
    }
}

/// Per key: every version written or read by a transaction that completed before
/// another was invoked precedes what that one writes. Swept in event order with a
/// frontier per key (versions of completed transactions not yet followed by a
/// completed write that began after them), so edges stay near linear in number.
fn realtime_versions(parsed: &Parsed<'_>, installed: &[bool], keys: &mut [KeyVersions]) {
    // (event index, node, is completion); only `ok` transactions count.
    let mut events: Vec<(u64, u32, bool)> = Vec::with_capacity(parsed.txns.len() * 2);
    for (node, txn) in parsed.txns.iter().enumerate() {
        if let (Status::Ok, Some(done)) = (txn.status, txn.op.complete_index) {
            events.push((txn.op.invoke_index, node as u32, false));
            events.push((done, node as u32, true));
        }
    }
    events.sort_unstable();
    // Key -> version -> the latest completion index of a transaction that touched it.
    let mut frontier: Vec<HashMap<u32, u64>> = vec![HashMap::new(); parsed.keys.len()];
    for (index, node, completion) in events {
        let txn = &parsed.txns[node as usize];
        for (key, v, wrote) in touched_versions(parsed, txn) {
            if v != NONE && !installed[v as usize] {
                continue;
            }
            let f = &mut frontier[key as usize];
            if !completion {
                if wrote {
                    for &p in f.keys() {
                        keys[key as usize].add(p, v, REALTIME_ORDER);
                    }
                }
                continue;
            }
            if wrote {
                // Everything that completed before this write began now precedes it,
                // and through it whatever it precedes.
                let began = txn.op.invoke_index;
                f.retain(|_, done| *done > began);
            }
            let slot = f.entry(v).or_insert(index);
            *slot = (*slot).max(index);
        }
    }
}

/// nil precedes every version; edges only to versions with no other predecessor (the
/// rest follow through them).
fn initial_versions(parsed: &Parsed<'_>, installed: &[bool], keys: &mut [KeyVersions]) {
    let mut has_predecessor = vec![false; parsed.elems.len()];
    for k in keys.iter() {
        for &(from, to) in k.edges.keys() {
            if from != NONE {
                has_predecessor[to as usize] = true;
            }
        }
    }
    for (e, &(key, _)) in parsed.elems.iter().enumerate() {
        if installed[e] && !has_predecessor[e] {
            keys[key as usize].add(NONE, e as u32, INITIAL);
        }
    }
}

/// A cycle in a key's version order, reported once per key under the weakest
/// assumption whose edges close one.
fn cyclic_versions(parsed: &Parsed<'_>, keys: &[KeyVersions], found: &mut Collector) {
    if !found.wants("cyclic-versions") {
        return;
    }
    for (key, versions) in keys.iter().enumerate() {
        for level in [WFR, PROCESS_ORDER, REALTIME_ORDER] {
            if let Some(cycle) = version_cycle(versions, level) {
                let key = key as u32;
                let shown: Vec<String> = cycle.iter().map(|&v| show_value(parsed, v)).collect();
                let writers: Vec<u32> = cycle
                    .iter()
                    .map(|&v| parsed.appender[v as usize])
                    .filter(|&w| w != NONE)
                    .collect();
                let basis = basis(assumption(level));
                found.add_assuming("cyclic-versions", assumption(level), || Anomaly {
                    kind: "cyclic-versions".into(),
                    cycle: Vec::new(),
                    txns: super::list_append::refs(parsed, &writers),
                    key: Some(parsed.key(key).clone()),
                    explanation: format!(
                        "the versions of key {} must be installed in the order {} -> {}, a cycle ({basis})",
                        parsed.key(key),
                        shown.join(" -> "),
                        shown[0]
                    ),
                    assumes: None,
                });
                break;
            }
        }
    }
}

/// A cycle of versions using edges of at most `level`, if there is one.
fn version_cycle(versions: &KeyVersions, level: u8) -> Option<Vec<u32>> {
    let mut ids: HashMap<u32, u32> = HashMap::new();
    let mut names: Vec<u32> = Vec::new();
    let mut g: DiGraph<(), (), u32> = DiGraph::new();
    let mut node = |v: u32, g: &mut DiGraph<(), (), u32>| {
        *ids.entry(v).or_insert_with(|| {
            names.push(v);
            g.add_node(()).index() as u32
        })
    };
    let mut edges: Vec<(u32, u32)> = versions
        .edges
        .iter()
        .filter(|(_, &l)| l <= level)
        .map(|(&e, _)| e)
        .collect();
    // Deterministic node numbering, whatever the hash order.
    edges.sort_unstable();
    for (a, b) in edges {
        let (x, y) = (node(a, &mut g), node(b, &mut g));
        g.add_edge(NodeIndex::new(x as usize), NodeIndex::new(y as usize), ());
    }
    let scc = super::cycles::tarjan(&g)
        .into_iter()
        .filter(|c| c.len() > 1)
        .min_by_key(|c| c.iter().map(|n| n.index()).min())?;
    // Walk inside the component until a node repeats: that loop is a cycle.
    let inside: Vec<bool> = {
        let mut v = vec![false; g.node_count()];
        for n in &scc {
            v[n.index()] = true;
        }
        v
    };
    let start = scc.iter().min_by_key(|n| n.index())?;
    let mut path: Vec<NodeIndex<u32>> = vec![*start];
    let mut at = *start;
    loop {
        let next = g
            .neighbors(at)
            .filter(|n| inside[n.index()])
            .min_by_key(|n| n.index())?;
        if let Some(i) = path.iter().position(|&p| p == next) {
            return Some(path[i..].iter().map(|n| names[n.index()]).collect());
        }
        path.push(next);
        at = next;
    }
}

/// Why a version edge holds, in words.
pub(crate) fn basis(assumes: Option<ConsistencyModel>) -> &'static str {
    match assumes {
        None => "the initial state precedes every write",
        Some(ConsistencyModel::ReadCommitted) => {
            "a transaction that read one version wrote the next: writes follow reads, as read-committed requires"
        }
        Some(ConsistencyModel::StrongSessionReadCommitted) => {
            "one process saw or wrote one version before writing the other, and strong-session-read-committed keeps process order"
        }
        Some(_) => {
            "one version was seen or written by a transaction that completed before the other's writer began, and strong-read-committed keeps real-time order"
        }
    }
}

/// ww, wr and rw edges of one key.
fn dependencies(parsed: &Parsed<'_>, key: u32, versions: &KeyVersions, deps: &mut Deps) {
    let mut edges: Vec<((u32, u32), u8)> = versions.edges.iter().map(|(&e, &l)| (e, l)).collect();
    // Stable edge insertion order: the cycle search is deterministic.
    edges.sort_unstable();
    for ((a, b), level) in edges {
        let assumes = assumption(level);
        let wb = parsed.appender[b as usize];
        if a != NONE {
            let wa = parsed.appender[a as usize];
            if wa != NONE && wa != wb {
                let why = Why {
                    key,
                    elem: b,
                    prev: a,
                    unobserved: false,
                    assumes,
                };
                deps.add(wa, wb, WW, Some(why));
            }
        }
        for &r in versions
            .readers
            .get(&a)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if r != wb {
                let why = Why {
                    key,
                    elem: b,
                    prev: a,
                    unobserved: false,
                    assumes,
                };
                deps.add(r, wb, RW, Some(why));
            }
        }
    }
    let mut read: Vec<(&u32, &Vec<u32>)> = versions.readers.iter().collect();
    read.sort_unstable();
    for (&v, readers) in read {
        if v == NONE {
            continue;
        }
        let w = parsed.appender[v as usize];
        for &r in readers {
            if w != NONE && w != r {
                let why = Why {
                    key,
                    elem: v,
                    prev: NONE,
                    unobserved: false,
                    assumes: None,
                };
                deps.add(w, r, WR, Some(why));
            }
        }
    }
}

/// Reads of values that were never installed: written by a failed transaction (`G1a`),
/// by nobody (`garbage-read`), or only as an intermediate write (`G1b`); and a first
/// read of a value the transaction itself writes only later (`future-read`).
fn check_reads(parsed: &Parsed<'_>, found: &mut Collector) {
    for (node, txn) in parsed.txns.iter().enumerate() {
        if txn.status != Status::Ok {
            continue;
        }
        for (key, v) in external_reads(txn) {
            if v == NONE {
                continue;
            }
            let e = v as usize;
            let writer = parsed.appender[e];
            let shown = || {
                format!(
                    "{} read key {} = {}",
                    t(txn.op.id),
                    parsed.key(key),
                    parsed.value(v)
                )
            };
            if writer == NONE {
                let failed = parsed.failed_appender[e];
                if failed != NONE {
                    let w = &parsed.failed[failed as usize];
                    found.add("G1a", || Anomaly {
                        kind: "G1a".into(),
                        cycle: Vec::new(),
                        txns: vec![w.txn_ref(), txn.txn_ref()],
                        key: Some(parsed.key(key).clone()),
                        explanation: format!(
                            "aborted read: {}, but {} (process {}) wrote it and failed",
                            shown(),
                            t(w.op.id),
                            w.op.process
                        ),
                        assumes: None,
                    });
                } else {
                    found.add("garbage-read", || Anomaly {
                        kind: "garbage-read".into(),
                        cycle: Vec::new(),
                        txns: vec![txn.txn_ref()],
                        key: Some(parsed.key(key).clone()),
                        explanation: format!(
                            "{}, but no transaction ever wrote that value",
                            shown()
                        ),
                        assumes: None,
                    });
                }
            } else if writer == node as u32 {
                found.add("future-read", || Anomaly {
                    kind: "future-read".into(),
                    cycle: Vec::new(),
                    txns: vec![txn.txn_ref()],
                    key: Some(parsed.key(key).clone()),
                    explanation: format!("{}, a value it wrote itself only later", shown()),
                    assumes: None,
                });
            } else if parsed.intermediate[e] {
                let w = &parsed.txns[writer as usize];
                found.add("G1b", || Anomaly {
                    kind: "G1b".into(),
                    cycle: Vec::new(),
                    txns: vec![w.txn_ref(), txn.txn_ref()],
                    key: Some(parsed.key(key).clone()),
                    explanation: format!(
                        "intermediate read: {}, but {} wrote that value and then wrote key {} again: a state it never committed",
                        shown(), t(w.op.id), parsed.key(key)
                    ),
                    assumes: None,
                });
            }
        }
    }
}

/// Within a transaction, a read must return what the transaction last wrote or read
/// of that key.
fn check_internal(parsed: &Parsed<'_>, found: &mut Collector) {
    for txn in &parsed.txns {
        if txn.status != Status::Ok || txn.mops.len() < 2 {
            continue;
        }
        let mut known: Vec<(u32, u32, bool)> = Vec::new();
        for mop in &txn.mops {
            let (key, value, wrote) = match *mop {
                Mop::Write { key, elem } => (key, elem, true),
                Mop::ReadValue {
                    key,
                    value: Some(v),
                    ..
                } => (key, v, false),
                _ => continue,
            };
            match known.iter_mut().find(|(k, _, _)| *k == key) {
                Some(slot) => {
                    if !wrote && slot.1 != value {
                        let (expected, how) = (slot.1, if slot.2 { "wrote" } else { "read" });
                        found.add("internal", || Anomaly {
                            kind: "internal".into(),
                            cycle: Vec::new(),
                            txns: vec![txn.txn_ref()],
                            key: Some(parsed.key(key).clone()),
                            explanation: format!(
                                "internal inconsistency: {} read key {} = {}, but it last {how} {} there itself",
                                t(txn.op.id),
                                parsed.key(key),
                                show_value(parsed, value),
                                show_value(parsed, expected)
                            ),
                            assumes: None,
                        });
                    }
                    *slot = (key, value, wrote);
                }
                None => known.push((key, value, wrote)),
            }
        }
    }
}
