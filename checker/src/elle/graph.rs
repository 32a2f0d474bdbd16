//! The dependency graph between transactions, on petgraph.
//!
//! Nodes are the transactions that completed `ok` or `info`. An edge `a -> b` says `a`
//! must come before `b` in any serial order, for one or more reasons (a bit set):
//! - `ww`: `b` appended the element right after `a`'s in some key's version order;
//! - `wr`: `b` read a list whose last element `a` appended;
//! - `rw`: `a` read a list missing the next element of the version order, which `b`
//!   appended (an anti-dependency);
//! - `process`: `a` and `b` are consecutive on one process;
//! - `realtime`: `a` completed before `b` was invoked.
//!
//! Each data edge keeps one witness (key and element) so that a cycle can explain itself
//! without a second pass. Real-time edges are the transitive reduction Elle uses: when a
//! transaction is invoked it gets an edge from every transaction on the current
//! "frontier" (completed, and not yet known to precede another completed transaction),
//! so their number stays near `transactions × concurrency`, not quadratic.

use super::list_append::Orders;
use super::models::ConsistencyModel;
use super::txn::{Mop, Parsed, Status, NONE};
use hashbrown::HashMap;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};

pub(crate) const WW: u8 = 1;
pub(crate) const WR: u8 = 2;
pub(crate) const RW: u8 = 4;
pub(crate) const PROCESS: u8 = 8;
pub(crate) const REALTIME: u8 = 16;
/// Every kind, in the order a cycle step prefers to be explained by.
pub(crate) const KINDS: [u8; 5] = [WW, WR, RW, PROCESS, REALTIME];

pub(crate) fn kind_name(kind: u8) -> &'static str {
    match kind {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        PROCESS => "process",
        _ => "realtime",
    }
}

/// The key and element that justify a data edge. For `ww` and `rw` the element is the
/// later version (appended by the edge's target); for `wr` it is the last element the
/// target read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Why {
    pub key: u32,
    pub elem: u32,
    /// `ww`: the source's element just before `elem`; `rw`: the last element the source
    /// read ([`NONE`] if it read an empty list); `wr`: unused.
    pub prev: u32,
    /// `elem` is a committed append that no read saw: it is ordered after every version
    /// read, but its exact place is unknown.
    pub unobserved: bool,
    /// The model under which the version order behind a `ww` or `rw` edge was inferred
    /// (rw-register: writes follow reads, process or real-time order); `None` when the
    /// order was observed (list-append) or holds under every model.
    pub assumes: Option<ConsistencyModel>,
}

/// What an edge carries: its kinds, and a witness per data kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct EdgeLabel {
    pub kinds: u8,
    pub ww: Option<Why>,
    pub wr: Option<Why>,
    pub rw: Option<Why>,
}

/// The graph, and the index to find the edge between two nodes.
#[derive(Debug, Default)]
pub(crate) struct Deps {
    pub graph: DiGraph<(), EdgeLabel, u32>,
    index: HashMap<(u32, u32), EdgeIndex<u32>>,
}

impl Deps {
    pub(crate) fn add(&mut self, from: u32, to: u32, kind: u8, why: Option<Why>) {
        debug_assert_ne!(from, to, "dependency graphs have no self-loops");
        let graph = &mut self.graph;
        let edge = *self.index.entry((from, to)).or_insert_with(|| {
            graph.add_edge(
                NodeIndex::new(from as usize),
                NodeIndex::new(to as usize),
                EdgeLabel::default(),
            )
        });
        let label = &mut self.graph[edge];
        label.kinds |= kind;
        let slot = match kind {
            WW => &mut label.ww,
            WR => &mut label.wr,
            RW => &mut label.rw,
            _ => return,
        };
        // Keep the witness that assumes least: it rules out the most models.
        let better = match (*slot, why) {
            (None, _) => true,
            (Some(old), Some(new)) => match (old.assumes, new.assumes) {
                (Some(_), None) => true,
                (Some(o), Some(n)) => o != n && o.implies(n),
                _ => false,
            },
            _ => false,
        };
        if better {
            *slot = why;
        }
    }

    /// A graph of `n` transactions and no edges yet.
    pub(crate) fn new(n: usize) -> Deps {
        let mut deps = Deps {
            graph: DiGraph::with_capacity(n, n * 4),
            index: HashMap::with_capacity(n * 4),
        };
        for _ in 0..n {
            deps.graph.add_node(());
        }
        deps
    }

    /// The label of the edge `from -> to`, if any.
    pub(crate) fn label(&self, from: u32, to: u32) -> Option<&EdgeLabel> {
        self.index.get(&(from, to)).map(|&e| &self.graph[e])
    }
}

/// Builds every dependency edge.
pub(crate) fn build(parsed: &Parsed<'_>, orders: &Orders) -> Deps {
    let mut deps = Deps::new(parsed.txns.len());
    let unobserved = unobserved(parsed, orders);
    write_write(parsed, orders, &unobserved, &mut deps);
    reads(parsed, orders, &unobserved, &mut deps);
    process_order(parsed, &mut deps);
    real_time(parsed, &mut deps);
    deps
}

/// ww: consecutive versions of a key appended by different transactions, and from the
/// last version read to every committed append no read saw (it came later). Edges
/// between non-consecutive versions follow by transitivity.
fn write_write(parsed: &Parsed<'_>, orders: &Orders, unobserved: &[Vec<u32>], deps: &mut Deps) {
    for (key, order) in orders.order.iter().enumerate() {
        // Elements nobody committed (garbage, aborted reads: reported elsewhere) are
        // stepped over, so the versions around them stay ordered.
        let (mut previous, mut previous_elem) = (NONE, NONE);
        for &elem in order {
            let b = parsed.appender[elem as usize];
            if b == NONE {
                continue;
            }
            if previous != NONE && previous != b {
                let why = Why {
                    key: key as u32,
                    elem,
                    prev: previous_elem,
                    unobserved: false,
                    assumes: None,
                };
                deps.add(previous, b, WW, Some(why));
            }
            previous = b;
            previous_elem = elem;
        }
        if previous == NONE {
            continue;
        }
        for &u in unobserved[key].iter().take(MAX_UNOBSERVED) {
            let b = parsed.appender[u as usize];
            if b != previous {
                let why = Why {
                    key: key as u32,
                    elem: u,
                    prev: previous_elem,
                    unobserved: true,
                    assumes: None,
                };
                deps.add(previous, b, WW, Some(why));
            }
        }
    }
}

/// At most this many edges per read (and per key's last version) go to appends no read
/// saw. Dropping edges only ever hides anomalies, never invents them; the cap keeps a
/// key appended thousands of times but only ever read empty from costing
/// reads × appends.
const MAX_UNOBSERVED: usize = 64;

/// Key id -> elements appended by `ok` transactions that no read saw. (An unseen `info`
/// append may never have happened, so it orders nothing.)
fn unobserved(parsed: &Parsed<'_>, orders: &Orders) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); parsed.keys.len()];
    for (e, &(key, _)) in parsed.elems.iter().enumerate() {
        let writer = parsed.appender[e];
        if writer != NONE
            && orders.position[e] == NONE
            && parsed.txns[writer as usize].status == Status::Ok
        {
            out[key as usize].push(e as u32);
        }
    }
    out
}

/// wr and rw, from each `ok` transaction's external reads. A read misses the version
/// after its prefix; a read of the whole known order misses every committed append no
/// read saw.
fn reads(parsed: &Parsed<'_>, orders: &Orders, unobserved: &[Vec<u32>], deps: &mut Deps) {
    for (node, txn) in parsed.txns.iter().enumerate() {
        if txn.status != Status::Ok {
            continue;
        }
        let node = node as u32;
        for mop in &txn.mops {
            let Mop::Read {
                key,
                list: Some(list),
                external: true,
            } = mop
            else {
                continue;
            };
            let key = *key;
            if let Some(&last) = list.last() {
                let writer = parsed.appender[last as usize];
                if writer != NONE && writer != node {
                    let why = Why {
                        key,
                        elem: last,
                        prev: NONE,
                        unobserved: false,
                        assumes: None,
                    };
                    deps.add(writer, node, WR, Some(why));
                }
            }
            // The version this read missed is the one after its prefix; only a read
            // that is a prefix of the order says which one that is.
            if !orders.is_prefix(parsed, key, list) {
                continue;
            }
            let order = &orders.order[key as usize];
            let seen = match list.last() {
                Some(&last) => orders.position[last as usize] as usize + 1,
                None => 0,
            };
            let next = order
                .get(seen..)
                .unwrap_or_default()
                .iter()
                .find(|&&e| parsed.appender[e as usize] != NONE);
            if let Some(&next) = next {
                let writer = parsed.appender[next as usize];
                if writer != node {
                    let prev = list.last().copied().unwrap_or(NONE);
                    let why = Why {
                        key,
                        elem: next,
                        prev,
                        unobserved: false,
                        assumes: None,
                    };
                    deps.add(node, writer, RW, Some(why));
                }
            } else {
                // Nothing read follows this read: what it missed is the appends no read
                // saw (those that follow later versions are reached through ww).
                let prev = list.last().copied().unwrap_or(NONE);
                for &u in unobserved[key as usize].iter().take(MAX_UNOBSERVED) {
                    let writer = parsed.appender[u as usize];
                    if writer != node {
                        let why = Why {
                            key,
                            elem: u,
                            prev,
                            unobserved: true,
                            assumes: None,
                        };
                        deps.add(node, writer, RW, Some(why));
                    }
                }
            }
        }
    }
}

/// process: each transaction follows its process's previous `ok` one (`ops` is in
/// invocation order, and a process runs one transaction at a time). An `info`
/// transaction precedes nothing: it may take effect at any later time. (Jepsen gives a
/// process a new number after `info`; this also holds for histories that do not.)
pub(crate) fn process_order(parsed: &Parsed<'_>, deps: &mut Deps) {
    let mut last_ok: HashMap<u64, u32> = HashMap::new();
    for (node, txn) in parsed.txns.iter().enumerate() {
        let process = txn.op.process;
        if let Some(&prev) = last_ok.get(&process) {
            deps.add(prev, node as u32, PROCESS, None);
        }
        if txn.status == Status::Ok {
            last_ok.insert(process, node as u32);
        }
    }
}

/// realtime: `a` completed before `b` was invoked, as a transitive reduction.
pub(crate) fn real_time(parsed: &Parsed<'_>, deps: &mut Deps) {
    // (event index, node, is completion); only `ok` transactions complete.
    let mut events: Vec<(u64, u32, bool)> = Vec::with_capacity(parsed.txns.len() * 2);
    for (node, txn) in parsed.txns.iter().enumerate() {
        events.push((txn.op.invoke_index, node as u32, false));
        if let (Status::Ok, Some(done)) = (txn.status, txn.op.complete_index) {
            events.push((done, node as u32, true));
        }
    }
    events.sort_unstable();
    let mut frontier: Vec<u32> = Vec::new();
    for (_, node, completion) in events {
        let txn = &parsed.txns[node as usize];
        if completion {
            // Everything that completed before `node` began precedes it, and so
            // precedes whatever `node` precedes: it leaves the frontier.
            frontier.retain(|&f| parsed.txns[f as usize].op.return_index() > txn.op.invoke_index);
            frontier.push(node);
        } else {
            for &f in &frontier {
                deps.add(f, node, REALTIME, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elle::gen::{generate, ListAppendOptions};
    use crate::elle::{list_append, txn};
    use petgraph::visit::EdgeRef;

    /// Real-time edges must imply exactly the real-time order (no more, no less), with
    /// at most `concurrency` edges into each transaction.
    #[test]
    fn real_time_edges_reduce_real_time_order() {
        for seed in 0..20 {
            let options = ListAppendOptions {
                seed,
                txns: 60,
                concurrency: 1 + seed as usize % 5,
                info_rate: 0.1,
                fail_rate: 0.05,
                ..ListAppendOptions::default()
            };
            let ops = generate(&options).pair().unwrap();
            let parsed = txn::parse(&ops, txn::Datatype::ListAppend).unwrap();
            let orders = list_append::infer(
                &parsed,
                &mut list_append::Collector::new(1, &[ConsistencyModel::StrictSerializable]),
            );
            let deps = build(&parsed, &orders);
            let n = parsed.txns.len();
            for a in 0..n {
                let mut reached = vec![false; n];
                let mut stack = vec![a];
                while let Some(x) = stack.pop() {
                    for e in deps.graph.edges(NodeIndex::new(x)) {
                        let to = e.target().index();
                        if e.weight().kinds & REALTIME != 0 && !reached[to] {
                            reached[to] = true;
                            stack.push(to);
                        }
                    }
                }
                for (b, reached) in reached.iter().enumerate() {
                    let precedes = parsed.txns[a].op.precedes(parsed.txns[b].op);
                    assert_eq!(*reached, precedes, "seed {seed}: T{a} before T{b}");
                }
            }
            let realtime = deps
                .graph
                .edge_weights()
                .filter(|w| w.kinds & REALTIME != 0)
                .count();
            assert!(
                realtime <= n * options.concurrency,
                "seed {seed}: {realtime} edges"
            );
        }
    }
}
