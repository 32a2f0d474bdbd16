//! Version orders, and the anomalies visible without a dependency graph.
//!
//! Appends to a list are totally ordered, and every read of a list shows a prefix of that
//! order. So the longest read of a key *is* its version order (as far as anyone saw it),
//! and every other read must be a prefix of it; a read that is not shows that no single
//! order explains what was read (`incompatible-order`). The same pass over the reads
//! finds what needs no order at all: a value read twice (`duplicate-elements`), a value
//! nobody appended (`garbage-read`), a value only a failed transaction appended (`G1a`),
//! a read ending in a transaction's non-final append to the key (`G1b`), a transaction
//! whose reads disagree with its own earlier reads and appends (`internal`), and one
//! that read a value it appended only later (`future-read`).
//!
//! Each read costs time linear in its length (element ids are dense integers; a stamp
//! array replaces a hash set for duplicate detection).

use super::models::ConsistencyModel;
use super::txn::{Mop, Parsed, Status, NONE};
use super::{Anomaly, TxnRef};
use std::collections::BTreeMap;

/// Every key's version order.
#[derive(Debug, Default)]
pub(crate) struct Orders {
    /// Key id -> element ids in version order (the longest read, without repeats).
    pub order: Vec<Vec<u32>>,
    /// Element id -> position in its key's order, or [`NONE`] if never read.
    pub position: Vec<u32>,
    /// Key id -> the longest read exactly as read (repeats included), as (node, mop).
    longest: Vec<Option<(u32, u32)>>,
}

impl Orders {
    /// The longest read of `key`, as read.
    pub(crate) fn longest<'p>(&self, parsed: &'p Parsed<'_>, key: u32) -> &'p [u32] {
        match self.longest[key as usize] {
            Some((node, mop)) => read_list(parsed, node, mop),
            None => &[],
        }
    }

    /// True if `list` (a read of `key`) is a prefix of the key's longest read.
    pub(crate) fn is_prefix(&self, parsed: &Parsed<'_>, key: u32, list: &[u32]) -> bool {
        let longest = self.longest(parsed, key);
        list.len() <= longest.len() && longest[..list.len()] == *list
    }
}

fn read_list<'p>(parsed: &'p Parsed<'_>, node: u32, mop: u32) -> &'p [u32] {
    match &parsed.txns[node as usize].mops[mop as usize] {
        Mop::Read {
            list: Some(list), ..
        } => list,
        _ => &[],
    }
}

/// Collects anomalies: counts all that are relevant to the checked models, keeps the
/// first few examples of each kind.
#[derive(Debug)]
pub(crate) struct Collector {
    max_examples: usize,
    /// The checked models: kinds that rule none of them out are neither counted nor kept.
    models: Vec<ConsistencyModel>,
    examples: BTreeMap<String, Vec<Anomaly>>,
    counts: BTreeMap<String, usize>,
    /// Per kind, the weakest assumption any of its anomalies was found under (`None`:
    /// some needed no assumption).
    assumptions: BTreeMap<String, Option<ConsistencyModel>>,
}

impl Collector {
    pub(crate) fn new(max_examples: usize, models: &[ConsistencyModel]) -> Collector {
        Collector {
            max_examples,
            models: models.to_vec(),
            examples: BTreeMap::new(),
            counts: BTreeMap::new(),
            assumptions: BTreeMap::new(),
        }
    }

    /// True when anomalies of `kind` are searched for and reported.
    pub(crate) fn wants(&self, kind: &str) -> bool {
        super::models::relevant(kind, &self.models)
    }

    /// Counts one anomaly of `kind`; `make` builds the example only if it is kept.
    pub(crate) fn add(&mut self, kind: &str, make: impl FnOnce() -> Anomaly) {
        self.add_assuming(kind, None, make);
    }

    /// Counts one anomaly of `kind` found under an inferred version order valid only in
    /// models that imply `assumes`.
    pub(crate) fn add_assuming(
        &mut self,
        kind: &str,
        assumes: Option<ConsistencyModel>,
        make: impl FnOnce() -> Anomaly,
    ) {
        if !self.wants(kind) {
            return;
        }
        *self.counts.entry(kind.to_string()).or_default() += 1;
        match self.assumptions.get_mut(kind) {
            None => {
                self.assumptions.insert(kind.to_string(), assumes);
            }
            Some(old) => {
                *old = match (*old, assumes) {
                    (Some(o), Some(n)) if o.implies(n) => Some(n),
                    (Some(_), None) | (None, _) => None,
                    (o, _) => o,
                }
            }
        }
        let examples = self.examples.entry(kind.to_string()).or_default();
        if examples.len() < self.max_examples {
            let mut anomaly = make();
            anomaly.assumes = assumes.map(|m| m.name().to_string());
            examples.push(anomaly);
        }
    }

    /// The examples, ordered by kind as [`super::models::ANOMALY_KINDS`] lists them, the
    /// counts, and each kind's weakest assumption.
    #[allow(clippy::type_complexity)]
    pub(crate) fn finish(
        mut self,
    ) -> (
        Vec<Anomaly>,
        BTreeMap<String, usize>,
        BTreeMap<String, Option<ConsistencyModel>>,
    ) {
        let mut out = Vec::new();
        for kind in super::models::ANOMALY_KINDS {
            if let Some(list) = self.examples.remove(kind) {
                out.extend(list);
            }
        }
        // Kinds outside the list (none today) still appear, in name order.
        for (_, list) in self.examples {
            out.extend(list);
        }
        (out, self.counts, self.assumptions)
    }
}

/// Shows a list, eliding the middle of long ones.
pub(crate) fn show_list(parsed: &Parsed<'_>, list: &[u32]) -> String {
    const HEAD: usize = 6;
    const TAIL: usize = 4;
    let show = |s: &[u32]| {
        s.iter()
            .map(|&e| parsed.value(e).to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    if list.len() <= HEAD + TAIL + 1 {
        format!("[{}]", show(list))
    } else {
        format!(
            "[{} …({} more)… {}]",
            show(&list[..HEAD]),
            list.len() - HEAD - TAIL,
            show(&list[list.len() - TAIL..])
        )
    }
}

/// Shows one register value; [`NONE`] is nil, the initial state.
pub(crate) fn show_value(parsed: &Parsed<'_>, elem: u32) -> String {
    if elem == NONE {
        "nil".to_string()
    } else {
        parsed.value(elem).to_string()
    }
}

/// Names a transaction in explanations: `T<operation id>`.
pub(crate) fn t(id: usize) -> String {
    format!("T{id}")
}

/// Infers version orders and reports every anomaly that needs no graph.
pub(crate) fn infer(parsed: &Parsed<'_>, found: &mut Collector) -> Orders {
    let nkeys = parsed.keys.len();
    let mut longest: Vec<Option<(u32, u32)>> = vec![None; nkeys];
    let mut longest_len: Vec<usize> = vec![0; nkeys];
    for (node, txn) in parsed.txns.iter().enumerate() {
        for (m, mop) in txn.mops.iter().enumerate() {
            if let Mop::Read {
                key,
                list: Some(list),
                ..
            } = mop
            {
                let k = *key as usize;
                if longest[k].is_none() || list.len() > longest_len[k] {
                    longest[k] = Some((node as u32, m as u32));
                    longest_len[k] = list.len();
                }
            }
        }
    }
    let mut orders = Orders {
        order: vec![Vec::new(); nkeys],
        position: vec![NONE; parsed.elems.len()],
        longest,
    };
    for key in 0..nkeys {
        let mut order = Vec::new();
        for &e in orders.longest(parsed, key as u32) {
            if orders.position[e as usize] == NONE {
                orders.position[e as usize] = order.len() as u32;
                order.push(e);
            }
        }
        orders.order[key] = order;
    }
    check_reads(parsed, &orders, found);
    check_internal(parsed, found);
    orders
}

/// Per read: prefix of the version order, duplicates, garbage, aborted and intermediate
/// reads.
fn check_reads(parsed: &Parsed<'_>, orders: &Orders, found: &mut Collector) {
    let mut stamp: Vec<u32> = vec![0; parsed.elems.len()];
    let mut reported_elem: Vec<bool> = vec![false; parsed.elems.len()];
    let mut reported_key: Vec<bool> = vec![false; parsed.keys.len()];
    let mut read_no: u32 = 0;
    for (node, txn) in parsed.txns.iter().enumerate() {
        if txn.status != Status::Ok {
            continue;
        }
        for mop in &txn.mops {
            let Mop::Read {
                key,
                list: Some(list),
                external,
            } = mop
            else {
                continue;
            };
            let key = *key;
            read_no += 1;
            if !reported_key[key as usize] && !orders.is_prefix(parsed, key, list) {
                reported_key[key as usize] = true;
                let longest = orders.longest(parsed, key);
                let (other_node, _) = orders.longest[key as usize].unwrap_or((node as u32, 0));
                let other = &parsed.txns[other_node as usize];
                found.add("incompatible-order", || Anomaly {
                    assumes: None,
                    kind: "incompatible-order".into(),
                    cycle: Vec::new(),
                    txns: vec![txn.txn_ref(), other.txn_ref()],
                    key: Some(parsed.key(key).clone()),
                    explanation: format!(
                        "{} read key {} = {}, but {} read it as {}: the first is not a prefix of the second, so no single order of appends to key {} explains both",
                        t(txn.op.id), parsed.key(key), show_list(parsed, list),
                        t(other.op.id), show_list(parsed, longest), parsed.key(key)
                    ),
                });
            }
            let mut duplicate_reported = false;
            for &e in list {
                let ei = e as usize;
                if stamp[ei] == read_no && !duplicate_reported {
                    duplicate_reported = true;
                    found.add("duplicate-elements", || Anomaly {
                    assumes: None,
                        kind: "duplicate-elements".into(),
                        cycle: Vec::new(),
                        txns: vec![txn.txn_ref()],
                        key: Some(parsed.key(key).clone()),
                        explanation: format!(
                            "{} read key {} = {}, in which {} appears more than once, but every value is appended only once",
                            t(txn.op.id), parsed.key(key), show_list(parsed, list), parsed.value(e)
                        ),
                    });
                }
                stamp[ei] = read_no;
                if parsed.appender[ei] != NONE || reported_elem[ei] {
                    continue;
                }
                reported_elem[ei] = true;
                let failed = parsed.failed_appender[ei];
                if failed != NONE {
                    let writer = &parsed.failed[failed as usize];
                    found.add("G1a", || Anomaly {
                    assumes: None,
                        kind: "G1a".into(),
                        cycle: Vec::new(),
                        txns: vec![writer.txn_ref(), txn.txn_ref()],
                        key: Some(parsed.key(key).clone()),
                        explanation: format!(
                            "aborted read: {} (process {}) appended {} to key {} and failed, yet {} read key {} = {}",
                            t(writer.op.id), writer.op.process, parsed.value(e), parsed.key(key),
                            t(txn.op.id), parsed.key(key), show_list(parsed, list)
                        ),
                    });
                } else {
                    found.add("garbage-read", || Anomaly {
                        assumes: None,
                        kind: "garbage-read".into(),
                        cycle: Vec::new(),
                        txns: vec![txn.txn_ref()],
                        key: Some(parsed.key(key).clone()),
                        explanation: format!(
                            "{} read key {} = {}, but no transaction ever appended {} to key {}",
                            t(txn.op.id),
                            parsed.key(key),
                            show_list(parsed, list),
                            parsed.value(e),
                            parsed.key(key)
                        ),
                    });
                }
            }
            if let (true, Some(&last)) = (*external, list.last()) {
                let writer = parsed.appender[last as usize];
                if writer != NONE && writer != node as u32 && parsed.intermediate[last as usize] {
                    let w = &parsed.txns[writer as usize];
                    found.add("G1b", || Anomaly {
                    assumes: None,
                        kind: "G1b".into(),
                        cycle: Vec::new(),
                        txns: vec![w.txn_ref(), txn.txn_ref()],
                        key: Some(parsed.key(key).clone()),
                        explanation: format!(
                            "intermediate read: {} read key {} = {}, ending in {}, but {} appended {} and then appended again to key {}: {} saw a state {} never committed",
                            t(txn.op.id), parsed.key(key), show_list(parsed, list), parsed.value(last),
                            t(w.op.id), parsed.value(last), parsed.key(key), t(txn.op.id), t(w.op.id)
                        ),
                    });
                }
            }
        }
    }
}

/// What a transaction knows about a key from its own earlier micro-operations.
enum OwnView<'l> {
    /// It read `base` and then appended `appended`: a read now must be exactly that.
    Known { base: &'l [u32], appended: Vec<u32> },
    /// It appended `appended` without reading first: a read must end with them.
    Suffix { appended: Vec<u32> },
}

/// A transaction must see its own appends, and its reads must agree with its own
/// earlier reads.
fn check_internal(parsed: &Parsed<'_>, found: &mut Collector) {
    for (node, txn) in parsed.txns.iter().enumerate() {
        if txn.status != Status::Ok || txn.mops.len() < 2 {
            continue;
        }
        let mut views: Vec<(u32, OwnView<'_>)> = Vec::new();
        // Every element this transaction appended so far, for future reads.
        let mut own: Vec<u32> = Vec::new();
        for mop in &txn.mops {
            if let Mop::Read {
                key,
                list: Some(list),
                ..
            } = mop
            {
                let future = list
                    .iter()
                    .find(|&&e| parsed.appender[e as usize] == node as u32 && !own.contains(&e));
                if let Some(&e) = future {
                    found.add("future-read", || Anomaly {
                    assumes: None,
                        kind: "future-read".into(),
                        cycle: Vec::new(),
                        txns: vec![txn.txn_ref()],
                        key: Some(parsed.key(*key).clone()),
                        explanation: format!(
                            "{} read key {} = {}, which contains {}, a value {} itself appended only later",
                            t(txn.op.id), parsed.key(*key), show_list(parsed, list),
                            parsed.value(e), t(txn.op.id)
                        ),
                    });
                }
            }
            if let Mop::Append { elem, .. } = mop {
                own.push(*elem);
            }
            match mop {
                Mop::Append { key, elem } => match views.iter_mut().find(|(k, _)| k == key) {
                    Some((_, OwnView::Known { appended, .. }))
                    | Some((_, OwnView::Suffix { appended })) => appended.push(*elem),
                    None => views.push((
                        *key,
                        OwnView::Suffix {
                            appended: vec![*elem],
                        },
                    )),
                },
                Mop::Read {
                    key,
                    list: Some(list),
                    ..
                } => {
                    let slot = views.iter().position(|(k, _)| k == key);
                    if let Some(i) = slot {
                        let expected = match &views[i].1 {
                            OwnView::Known { base, appended } => {
                                let ok = list.len() == base.len() + appended.len()
                                    && list[..base.len()] == **base
                                    && list[base.len()..] == appended[..];
                                (!ok).then(|| {
                                    let mut e = base.to_vec();
                                    e.extend_from_slice(appended);
                                    format!("exactly {}", show_list(parsed, &e))
                                })
                            }
                            OwnView::Suffix { appended } => {
                                (!list.ends_with(appended)).then(|| {
                                    format!(
                                        "a list ending with its own appends {}",
                                        show_list(parsed, appended)
                                    )
                                })
                            }
                        };
                        if let Some(expected) = expected {
                            found.add("internal", || Anomaly {
                    assumes: None,
                                kind: "internal".into(),
                                cycle: Vec::new(),
                                txns: vec![txn.txn_ref()],
                                key: Some(parsed.key(*key).clone()),
                                explanation: format!(
                                    "internal inconsistency: {} read key {} = {}, but its own earlier reads and appends of key {} say it should have seen {}",
                                    t(txn.op.id), parsed.key(*key), show_list(parsed, list),
                                    parsed.key(*key), expected
                                ),
                            });
                        }
                        views[i].1 = OwnView::Known {
                            base: list,
                            appended: Vec::new(),
                        };
                    } else {
                        views.push((
                            *key,
                            OwnView::Known {
                                base: list,
                                appended: Vec::new(),
                            },
                        ));
                    }
                }
                Mop::Read { list: None, .. } | Mop::Write { .. } | Mop::ReadValue { .. } => {}
            }
        }
    }
}

/// The transactions a cycle or read names, for [`Anomaly::txns`].
pub(crate) fn refs(parsed: &Parsed<'_>, nodes: &[u32]) -> Vec<TxnRef> {
    nodes
        .iter()
        .map(|&n| parsed.txns[n as usize].txn_ref())
        .collect()
}
