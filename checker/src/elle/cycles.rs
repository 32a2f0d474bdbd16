//! Finding, naming and explaining the cycles of the dependency graph.
//!
//! Only strongly connected components (Tarjan's algorithm over the petgraph graph, written
//! iteratively: petgraph 0.6's `tarjan_scc` recurses once per node on a path and
//! overflows the stack on the long real-time chains of big histories) can hold cycles, so the
//! search never leaves one. Within a component, each anomaly class is a constrained
//! cycle, searched as "an edge of the class's special kind, closed by the shortest path
//! back using only the kinds the class allows":
//!
//! | class    | special edge | path back may use | path must contain |
//! |----------|--------------|-------------------|-------------------|
//! | G0       | ww           | ww                |                   |
//! | G1c      | wr           | ww, wr            |                   |
//! | G-single | rw           | ww, wr            |                   |
//! | G-nonadjacent | rw      | ww, wr, rw        | an rw; no two rw in a row (cyclically) |
//! | G2-item  | rw           | ww, wr, rw        | an rw             |
//!
//! then again with `process` edges allowed (and required: `G0-process`, ...), then with
//! `process` and `realtime` allowed and `realtime` required (`G0-realtime`, ...). A
//! `-process`/`-realtime` variant is searched only when the plain class was not found in
//! that component: it would add nothing. "Must contain" is a breadth-first search over
//! (node, requirements met) states, so the path found is the shortest that qualifies.
//!
//! Before trying start edges, the component is split again into the components of the
//! class's own edge kinds (a cycle through an edge needs both ends in one of them), which
//! skips hopeless searches cheaply. Each class has a budget of edge visits per component;
//! the shortest cycle found before it runs out is reported, and a component that yields
//! nothing within budget still reports one cycle found by an unconstrained search, so a
//! cyclic component is never silently passed.

use super::graph::{kind_name, Deps, KINDS, PROCESS, REALTIME, RW, WR, WW};
use super::list_append::{refs, show_value, t, Collector};
use super::models::ConsistencyModel;
use super::txn::{Datatype, Parsed, NONE};
use super::{Anomaly, CycleStep, ElleOptions, GraphStats};
use crate::history::Key;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{EdgeFiltered, EdgeRef, IntoNeighbors, IntoNodeIdentifiers, NodeIndexable};

/// An anomaly class: how its cycles are searched.
struct Class {
    special: u8,
    path: u8,
    path_needs_rw: bool,
    /// No two rw edges may follow each other (cyclically): G-nonadjacent.
    nonadjacent: bool,
}

const CLASSES: [Class; 5] = [
    // G0
    Class {
        special: WW,
        path: WW,
        path_needs_rw: false,
        nonadjacent: false,
    },
    // G1c
    Class {
        special: WR,
        path: WW | WR,
        path_needs_rw: false,
        nonadjacent: false,
    },
    // G-single
    Class {
        special: RW,
        path: WW | WR,
        path_needs_rw: false,
        nonadjacent: false,
    },
    // G-nonadjacent
    Class {
        special: RW,
        path: WW | WR | RW,
        path_needs_rw: true,
        nonadjacent: true,
    },
    // G2-item
    Class {
        special: RW,
        path: WW | WR | RW,
        path_needs_rw: true,
        nonadjacent: false,
    },
];

/// (kinds allowed besides the class's own, kind required) per level: plain, process,
/// realtime.
const LEVELS: [(u8, u8); 3] = [(0, 0), (PROCESS, PROCESS), (PROCESS | REALTIME, REALTIME)];

/// The anomaly names of [`CLASSES`] and [`LEVELS`].
const CLASS_NAMES: [&str; 5] = ["G0", "G1c", "G-single", "G-nonadjacent", "G2-item"];
const LEVEL_SUFFIXES: [&str; 3] = ["", "-process", "-realtime"];

/// A cycle: each step's node and the kind of the edge to the next step's node.
type Cycle = Vec<(u32, u8)>;

/// Requirement bits of a search state.
const NEED_LEVEL: u8 = 1;
const NEED_RW: u8 = 2;
const ALL_MET: u8 = NEED_LEVEL | NEED_RW;
/// Not a requirement: the edge into this state was rw (tracked for G-nonadjacent).
const PREV_RW: u8 = 4;
/// Search states per node.
const STATES: u32 = 8;

/// One component as a small graph with local node ids.
struct Component {
    /// Local id -> global node id.
    nodes: Vec<u32>,
    /// petgraph copy with local ids, for the per-class sub-components.
    graph: DiGraph<(), u8, u32>,
    /// Local adjacency: (target, kinds).
    adj: Vec<Vec<(u32, u8)>>,
}

/// Reusable breadth-first search state over (local node, requirements met).
struct Search {
    stamp: Vec<u32>,
    parent: Vec<u32>,
    parent_kind: Vec<u8>,
    generation: u32,
}

/// Budget accounting for one class in one component.
struct Budget {
    left: u64,
    exhausted: bool,
}

pub(crate) fn search(
    parsed: &Parsed<'_>,
    deps: &Deps,
    options: &ElleOptions,
    found: &mut Collector,
) -> GraphStats {
    let mut stats = GraphStats {
        nodes: deps.graph.node_count(),
        edges: deps.graph.edge_count(),
        ..GraphStats::default()
    };
    let mut local_of: Vec<u32> = vec![u32::MAX; deps.graph.node_count()];
    let mut sccs = tarjan(&deps.graph);
    sccs.retain(|c| c.len() > 1);
    for scc in &mut sccs {
        scc.sort_unstable();
    }
    // Report components in history order.
    sccs.sort_unstable_by_key(|c| c[0]);
    // Only classes relevant to the checked models are searched.
    let mut wanted = [[false; CLASSES.len()]; LEVELS.len()];
    for (level, row) in wanted.iter_mut().enumerate() {
        for (ci, w) in row.iter_mut().enumerate() {
            *w = found.wants(&format!("{}{}", CLASS_NAMES[ci], LEVEL_SUFFIXES[level]));
        }
    }
    for scc in &sccs {
        stats.cyclic_components += 1;
        stats.largest_component = stats.largest_component.max(scc.len());
        let component = Component::new(deps, scc, &mut local_of);
        let (cycles, truncated) = component.cycles(options.search_budget_per_class, &wanted);
        if truncated {
            stats.truncated_components += 1;
        }
        for cycle in cycles {
            report(parsed, deps, &cycle, found);
        }
        for &n in scc {
            local_of[n.index()] = u32::MAX;
        }
    }
    stats
}

impl Component {
    fn new(deps: &Deps, scc: &[NodeIndex<u32>], local_of: &mut [u32]) -> Component {
        for (i, n) in scc.iter().enumerate() {
            local_of[n.index()] = i as u32;
        }
        let mut graph = DiGraph::with_capacity(scc.len(), scc.len() * 4);
        for _ in scc {
            graph.add_node(());
        }
        let mut adj = vec![Vec::new(); scc.len()];
        for (i, &n) in scc.iter().enumerate() {
            for e in deps.graph.edges(n) {
                let to = local_of[e.target().index()];
                if to != u32::MAX {
                    let kinds = e.weight().kinds;
                    adj[i].push((to, kinds));
                    graph.add_edge(NodeIndex::new(i), NodeIndex::new(to as usize), kinds);
                }
            }
        }
        // petgraph lists a node's edges newest first; keep insertion order for
        // deterministic, history-ordered searches.
        for list in &mut adj {
            list.reverse();
        }
        Component {
            nodes: scc.iter().map(|n| n.index() as u32).collect(),
            graph,
            adj,
        }
    }

    /// The shortest cycle found per class (plain, else process, else realtime variant),
    /// and whether any budget ran out.
    fn cycles(
        &self,
        budget_per_class: u64,
        wanted: &[[bool; CLASSES.len()]; LEVELS.len()],
    ) -> (Vec<Cycle>, bool) {
        let mut search = Search {
            stamp: vec![0; self.nodes.len() * STATES as usize],
            parent: vec![0; self.nodes.len() * STATES as usize],
            parent_kind: vec![0; self.nodes.len() * STATES as usize],
            generation: 0,
        };
        let mut out = Vec::new();
        let mut truncated = false;
        let mut found_class = [false; CLASSES.len()];
        let mut kinds: Vec<String> = Vec::new();
        for (level, (extra, required)) in LEVELS.into_iter().enumerate() {
            for (ci, class) in CLASSES.iter().enumerate() {
                if found_class[ci] || !wanted[level][ci] {
                    continue;
                }
                let mut budget = Budget {
                    left: budget_per_class,
                    exhausted: false,
                };
                let cycle = self.shortest(class, extra, required, &mut search, &mut budget);
                truncated |= budget.exhausted;
                if let Some(cycle) = cycle {
                    found_class[ci] = true;
                    // The G2-item search may find the G-nonadjacent cycle again.
                    let kind = classify(cycle.iter().map(|&(_, k)| k));
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                        out.push(cycle);
                    }
                }
            }
        }
        let everything_wanted = wanted.iter().flatten().all(|w| *w);
        if out.is_empty() && (truncated || everything_wanted) {
            // A strongly connected component always has a cycle: find one, whatever it
            // is made of, so it is reported even when every budget ran out. (When the
            // checked models leave some classes unsearched, an empty result is expected
            // and the cycle found here is reported only if it is relevant.)
            // Enough for one complete search, plus the usual budget to shorten it.
            let edges: usize = self.adj.iter().map(Vec::len).sum();
            let mut budget = Budget {
                left: budget_per_class.max(2 * edges as u64 + 16),
                exhausted: false,
            };
            let any = Class {
                special: WW | WR | RW | PROCESS | REALTIME,
                path: WW | WR | RW | PROCESS | REALTIME,
                path_needs_rw: false,
                nonadjacent: false,
            };
            if let Some(cycle) = self.shortest(&any, 0, 0, &mut search, &mut budget) {
                out.push(cycle);
            }
        }
        (out, truncated)
    }

    /// The shortest cycle of `class` at one level, within budget.
    fn shortest(
        &self,
        class: &Class,
        extra: u8,
        required: u8,
        search: &mut Search,
        budget: &mut Budget,
    ) -> Option<Cycle> {
        let allowed = class.path | extra;
        let all = allowed | class.special;
        // Sub-components of the kinds this class may use.
        let filtered = EdgeFiltered::from_fn(&self.graph, |e| *e.weight() & all != 0);
        let mut sub = vec![u32::MAX; self.nodes.len()];
        for (id, comp) in tarjan(&filtered).iter().enumerate() {
            if comp.len() > 1 {
                for n in comp {
                    sub[n.index()] = id as u32;
                }
            }
        }
        let mut best: Option<Cycle> = None;
        'edges: for (a, list) in self.adj.iter().enumerate() {
            if sub[a] == u32::MAX {
                continue;
            }
            for &(b, kinds) in list {
                if budget.exhausted {
                    break 'edges;
                }
                if sub[b as usize] != sub[a] {
                    continue;
                }
                for special in KINDS {
                    if kinds & special & class.special == 0 {
                        continue;
                    }
                    // The path back may be at most this long to beat the best so far.
                    let max_path = best.as_ref().map_or(u32::MAX, |c| c.len() as u32 - 2);
                    if max_path == 0 {
                        break 'edges;
                    }
                    let mut met = 0;
                    if required == 0 || special & required != 0 {
                        met |= NEED_LEVEL;
                    }
                    if !class.path_needs_rw {
                        met |= NEED_RW;
                    }
                    if class.nonadjacent {
                        met |= PREV_RW;
                    }
                    let path = self.path(
                        b,
                        a as u32,
                        allowed,
                        required,
                        class.path_needs_rw,
                        class.nonadjacent,
                        met,
                        max_path,
                        &sub,
                        search,
                        budget,
                    );
                    if let Some(path) = path {
                        let mut cycle = vec![(self.nodes[a], special)];
                        cycle.extend(path.into_iter().map(|(n, k)| (self.nodes[n as usize], k)));
                        // A search with requirements may revisit a node in another
                        // state (e.g. walk an rw edge twice to "contain two"): only a
                        // simple cycle demonstrates the anomaly.
                        let mut nodes: Vec<u32> = cycle.iter().map(|&(n, _)| n).collect();
                        nodes.sort_unstable();
                        nodes.dedup();
                        if nodes.len() == cycle.len() {
                            best = Some(cycle);
                        }
                    }
                }
            }
        }
        best
    }

    /// Shortest path `from -> to` over `allowed` kinds within `from`'s sub-component,
    /// ending with every requirement met; as (local node, kind of edge taken) steps.
    #[allow(clippy::too_many_arguments)]
    fn path(
        &self,
        from: u32,
        to: u32,
        allowed: u8,
        required: u8,
        needs_rw: bool,
        nonadjacent: bool,
        met: u8,
        max_edges: u32,
        sub: &[u32],
        search: &mut Search,
        budget: &mut Budget,
    ) -> Option<Vec<(u32, u8)>> {
        search.generation += 1;
        let generation = search.generation;
        let state = |node: u32, met: u8| node * STATES + met as u32;
        let start = state(from, met);
        search.stamp[start as usize] = generation;
        // Arriving by an rw edge would put it next to the starting rw edge.
        let target = state(to, ALL_MET);
        if start == target {
            return Some(Vec::new());
        }
        let scope = sub[from as usize];
        let mut frontier = vec![start];
        let mut next = Vec::new();
        let mut depth = 0;
        while !frontier.is_empty() && depth < max_edges {
            depth += 1;
            for &s in &frontier {
                let (node, met) = (s / STATES, (s % STATES) as u8);
                for &(to_node, kinds) in &self.adj[node as usize] {
                    if budget.left == 0 {
                        budget.exhausted = true;
                        return None;
                    }
                    budget.left -= 1;
                    if kinds & allowed == 0 || sub[to_node as usize] != scope {
                        continue;
                    }
                    for kind in KINDS {
                        if kinds & allowed & kind == 0 {
                            continue;
                        }
                        if nonadjacent && kind == RW && met & PREV_RW != 0 {
                            continue;
                        }
                        let mut now = met & ALL_MET;
                        if nonadjacent && kind == RW {
                            now |= PREV_RW;
                        }
                        if kind & required != 0 {
                            now |= NEED_LEVEL;
                        }
                        if needs_rw && kind == RW {
                            now |= NEED_RW;
                        }
                        let st = state(to_node, now);
                        if search.stamp[st as usize] == generation {
                            continue;
                        }
                        search.stamp[st as usize] = generation;
                        search.parent[st as usize] = s;
                        search.parent_kind[st as usize] = kind;
                        if st == target {
                            return Some(unwind(search, start, target));
                        }
                        next.push(st);
                    }
                }
            }
            std::mem::swap(&mut frontier, &mut next);
            next.clear();
        }
        None
    }
}

/// Tarjan's strongly connected components, with an explicit stack instead of recursion.
/// Components come out in reverse topological order, as petgraph's do.
pub(crate) fn tarjan<G>(g: G) -> Vec<Vec<G::NodeId>>
where
    G: IntoNeighbors + IntoNodeIdentifiers + NodeIndexable,
{
    const UNVISITED: u32 = u32::MAX;
    let n = g.node_bound();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<G::NodeId> = Vec::new();
    let mut calls: Vec<(G::NodeId, G::Neighbors)> = Vec::new();
    let mut next_index = 0u32;
    let mut out = Vec::new();
    for root in g.node_identifiers() {
        if index[g.to_index(root)] != UNVISITED {
            continue;
        }
        let r = g.to_index(root);
        index[r] = next_index;
        low[r] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[r] = true;
        calls.push((root, g.neighbors(root)));
        while let Some((v, neighbors)) = calls.last_mut() {
            let v = *v;
            let vi = g.to_index(v);
            if let Some(w) = neighbors.next() {
                let wi = g.to_index(w);
                if index[wi] == UNVISITED {
                    index[wi] = next_index;
                    low[wi] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[wi] = true;
                    calls.push((w, g.neighbors(w)));
                } else if on_stack[wi] {
                    low[vi] = low[vi].min(index[wi]);
                }
                continue;
            }
            calls.pop();
            if let Some((parent, _)) = calls.last() {
                let pi = g.to_index(*parent);
                low[pi] = low[pi].min(low[vi]);
            }
            if low[vi] == index[vi] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[g.to_index(w)] = false;
                    component.push(w);
                    if g.to_index(w) == vi {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

/// The path from `start` to `target` as (node, kind of the edge leaving it).
fn unwind(search: &Search, start: u32, target: u32) -> Vec<(u32, u8)> {
    let mut steps = Vec::new();
    let mut s = target;
    while s != start {
        let parent = search.parent[s as usize];
        steps.push((parent / STATES, search.parent_kind[s as usize]));
        s = parent;
    }
    steps.reverse();
    steps
}

/// The anomaly a cycle demonstrates, from the kinds of its edges.
pub(crate) fn classify(kinds: impl IntoIterator<Item = u8>) -> String {
    let kinds: Vec<u8> = kinds.into_iter().collect();
    let rw_adjacent =
        (0..kinds.len()).any(|i| kinds[i] == RW && kinds[(i + 1) % kinds.len()] == RW);
    let (mut rw, mut wr, mut process, mut realtime) = (0, false, false, false);
    for &k in &kinds {
        match k {
            RW => rw += 1,
            WR => wr = true,
            PROCESS => process = true,
            REALTIME => realtime = true,
            _ => {}
        }
    }
    let base = match (rw, wr) {
        (0, false) => "G0",
        (0, true) => "G1c",
        (1, _) => "G-single",
        _ if rw_adjacent => "G2-item",
        _ => "G-nonadjacent",
    };
    let suffix = if realtime {
        "-realtime"
    } else if process {
        "-process"
    } else {
        ""
    };
    format!("{base}{suffix}")
}

/// What each class means, for explanations.
fn meaning(kind: &str) -> &'static str {
    let base = kind
        .trim_end_matches("-realtime")
        .trim_end_matches("-process");
    match base {
        "G0" => "a cycle of write-write dependencies (dirty write): no order of these transactions explains the order of their writes",
        "G1c" => "a cycle of write-write and write-read dependencies (circular information flow): each transaction saw or overwrote the effects of the one before it",
        "G-single" => "a cycle with exactly one read-write anti-dependency (read skew): one transaction missed a write that, through the other dependencies, happened before it",
        "G-nonadjacent" => "a cycle with two or more read-write anti-dependencies, no two of them adjacent (e.g. a long fork): transactions saw each other's effects in incompatible orders, which snapshot isolation forbids",
        _ => "a cycle with two or more read-write anti-dependencies (write skew / G2-item): each transaction missed a write of another",
    }
}

/// Turns a cycle into an explained anomaly.
fn report(parsed: &Parsed<'_>, deps: &Deps, cycle: &[(u32, u8)], found: &mut Collector) {
    // Start at the transaction with the smallest id, for a stable, readable listing.
    let start = (0..cycle.len())
        .min_by_key(|&i| parsed.txns[cycle[i].0 as usize].op.id)
        .unwrap_or(0);
    let cycle: Vec<(u32, u8)> = cycle[start..]
        .iter()
        .chain(&cycle[..start])
        .copied()
        .collect();
    let kind = classify(cycle.iter().map(|&(_, k)| k));
    // The cycle holds in models that imply every assumption its edges rest on; the
    // assumptions (read-committed, then strong-session-, then strong-read-committed)
    // form a chain, so that is the strongest of them.
    let mut assumes: Option<ConsistencyModel> = None;
    for (i, &(node, k)) in cycle.iter().enumerate() {
        let to = cycle[(i + 1) % cycle.len()].0;
        let why = deps.label(node, to).and_then(|l| match k {
            WW => l.ww,
            RW => l.rw,
            _ => None,
        });
        if let Some(a) = why.and_then(|w| w.assumes) {
            assumes = match assumes {
                Some(b) if b.implies(a) => Some(b),
                _ => Some(a),
            };
        }
    }
    found.add_assuming(&kind, assumes, || {
        let steps: Vec<CycleStep> = cycle
            .iter()
            .enumerate()
            .map(|(i, &(node, k))| {
                let to = cycle[(i + 1) % cycle.len()].0;
                let txn = &parsed.txns[node as usize];
                let (reason, key) = reason(parsed, deps, node, to, k);
                CycleStep {
                    txn: txn.op.id,
                    process: txn.op.process,
                    invoke_index: txn.op.invoke_index,
                    edge_to_next: kind_name(k).to_string(),
                    key,
                    reason,
                }
            })
            .collect();
        let mut path = String::new();
        for s in &steps {
            path.push_str(&format!("{} -{}-> ", t(s.txn), s.edge_to_next));
        }
        path.push_str(&t(steps[0].txn));
        let reasons: Vec<&str> = steps.iter().map(|s| s.reason.as_str()).collect();
        let nodes: Vec<u32> = cycle.iter().map(|&(n, _)| n).collect();
        Anomaly {
            explanation: format!(
                "{kind}: {path}; {}. {}.",
                meaning(&kind),
                reasons.join("; ")
            ),
            kind: kind.clone(),
            cycle: steps,
            txns: refs(parsed, &nodes),
            key: None,
            assumes: None,
        }
    });
}

/// Why the edge `from -> to` of `kind` exists, in words, and the key it is about (none
/// for process and real-time edges).
fn reason(parsed: &Parsed<'_>, deps: &Deps, from: u32, to: u32, kind: u8) -> (String, Option<Key>) {
    let (a, b) = (&parsed.txns[from as usize], &parsed.txns[to as usize]);
    let (ta, tb) = (t(a.op.id), t(b.op.id));
    let label = deps.label(from, to);
    let why = label.and_then(|l| match kind {
        WW => l.ww,
        WR => l.wr,
        RW => l.rw,
        _ => None,
    });
    let value_or = |elem: u32, otherwise: &str| {
        if elem == NONE {
            otherwise.to_string()
        } else {
            parsed.value(elem).to_string()
        }
    };
    let key = why.map(|w| parsed.key(w.key).clone());
    if parsed.datatype == Datatype::RwRegister {
        if let Some(text) = register_reason(parsed, &ta, &tb, kind, why) {
            return (text, key);
        }
    }
    let text = match (kind, why) {
        (WW, Some(w)) if w.unobserved => format!(
            "{ta} appended {prev} to key {k}, the last version any read saw, and {tb} appended {v}, which no read saw, so later",
            prev = value_or(w.prev, "an earlier version"),
            k = parsed.key(w.key),
            v = parsed.value(w.elem)
        ),
        (WW, Some(w)) => format!(
            "{ta} appended {prev} to key {k}, and {tb} appended {v} right after it",
            prev = value_or(w.prev, "an earlier version"),
            k = parsed.key(w.key),
            v = parsed.value(w.elem)
        ),
        (WR, Some(w)) => format!(
            "{ta} appended {v} to key {k}, and {tb} read key {k} ending with {v}",
            k = parsed.key(w.key),
            v = parsed.value(w.elem)
        ),
        (RW, Some(w)) => {
            let saw = if w.prev == NONE {
                "an empty list".to_string()
            } else {
                format!("a list ending with {}", parsed.value(w.prev))
            };
            let next = if w.unobserved {
                "a version no read saw, so later than any read"
            } else {
                "the next version"
            };
            format!(
                "{ta} read key {k} as {saw}, without {v}, and {tb} appended {v}, {next}",
                k = parsed.key(w.key),
                v = parsed.value(w.elem)
            )
        }
        (PROCESS, _) => format!("{ta} and then {tb} ran on process {p}", p = a.op.process),
        (REALTIME, _) => format!(
            "{ta} completed (event {c}) before {tb} was invoked (event {i})",
            c = a.op.return_index(),
            i = b.op.invoke_index
        ),
        _ => format!("{ta} -{}-> {tb}", kind_name(kind)),
    };
    (text, key)
}

/// Why a data edge between rw-register transactions exists, in words.
fn register_reason(
    parsed: &Parsed<'_>,
    ta: &str,
    tb: &str,
    kind: u8,
    why: Option<super::graph::Why>,
) -> Option<String> {
    let w = why?;
    let k = parsed.key(w.key);
    let basis = super::rw_register::basis(w.assumes);
    Some(match kind {
        WW => format!(
            "{ta} wrote key {k} = {prev}, and {tb} wrote {v}, a later version ({basis})",
            prev = show_value(parsed, w.prev),
            v = parsed.value(w.elem)
        ),
        WR => format!(
            "{ta} wrote key {k} = {v}, and {tb} read it",
            v = parsed.value(w.elem)
        ),
        RW => format!(
            "{ta} read key {k} = {prev}, and {tb} wrote {v}, a later version ({basis})",
            prev = show_value(parsed, w.prev),
            v = parsed.value(w.elem)
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterative_tarjan_matches_petgraph() {
        use rand::{Rng, SeedableRng};
        for seed in 0..200u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let n = rng.gen_range(1..30);
            let mut g: DiGraph<(), (), u32> = DiGraph::new();
            for _ in 0..n {
                g.add_node(());
            }
            for _ in 0..rng.gen_range(0..3 * n) {
                let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
                g.add_edge(NodeIndex::new(a), NodeIndex::new(b), ());
            }
            let normalise = |mut sccs: Vec<Vec<NodeIndex<u32>>>| {
                for c in &mut sccs {
                    c.sort_unstable();
                }
                sccs.sort_unstable();
                sccs
            };
            let ours = normalise(tarjan(&g));
            assert_eq!(
                ours,
                normalise(petgraph::algo::tarjan_scc(&g)),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn iterative_tarjan_survives_a_long_chain() {
        let mut g: DiGraph<(), (), u32> = DiGraph::new();
        let n = 1_000_000;
        for _ in 0..n {
            g.add_node(());
        }
        for i in 1..n {
            g.add_edge(NodeIndex::new(i - 1), NodeIndex::new(i), ());
        }
        g.add_edge(NodeIndex::new(n - 1), NodeIndex::new(0), ());
        let sccs = tarjan(&g);
        assert_eq!(sccs.len(), 1);
        assert_eq!(sccs[0].len(), n);
    }

    #[test]
    fn classify_names_every_class_and_variant() {
        assert_eq!(classify([WW, WW]), "G0");
        assert_eq!(classify([WW, WR]), "G1c");
        assert_eq!(classify([RW, WR]), "G-single");
        assert_eq!(classify([RW, RW]), "G2-item");
        assert_eq!(classify([RW, RW, WW]), "G2-item");
        assert_eq!(classify([RW, WW, RW]), "G2-item");
        assert_eq!(classify([RW, WR, RW, WR]), "G-nonadjacent");
        assert_eq!(classify([RW, WR, RW, PROCESS]), "G-nonadjacent-process");
        assert_eq!(classify([WW, PROCESS]), "G0-process");
        assert_eq!(classify([RW, PROCESS, REALTIME]), "G-single-realtime");
        assert_eq!(classify([WR, REALTIME]), "G1c-realtime");
    }
}
