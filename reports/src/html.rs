//! `report.html`: one self-contained page per run that a person can read without another
//! tool.
//!
//! The page holds everything inline: CSS, the timeline script, SVG charts drawn by
//! [`crate::charts`], and the data the script needs as one JSON blob. It opens from disk
//! and makes no network request. Layout, top to bottom: verdict banner (and what could
//! not be read), reproduction, timeline (canvas: one lane per process, zoom, pan, hover,
//! click a stuck operation to jump to its witness), latency and throughput charts,
//! witnesses drawn as Porcupine does, transactional anomalies (each dependency cycle
//! drawn by [`crate::cycles`] beside its explanation), per-key results, per-`f` statistics, availability
//! per fault window, convergence, configuration, node logs and the raw history lines the
//! witnesses point at (`#ev-<index>`), with any extra fields a client recorded (also in
//! the timeline's hover).
//!
//! Everything that comes from a history is untrusted: HTML goes through maud's escaping,
//! SVG through [`crate::charts::esc`], and the JSON blob has `<`, `>` and `&` escaped as
//! `\u003c` etc. so no value can close the `<script>` element. Rendering reads no clock
//! and iterates only ordered collections, so the same input gives the same bytes.

use crate::charts::{self, Completion, LatencyPoint};
use crate::results::{Results, Verdict};
use crate::{cycles, lattice};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Serialize;
use splitbrain_checker::elle::{Anomaly, ElleResult};
use splitbrain_checker::history::{Event, EventType, History, Key, Operations, PairedHistory};
use splitbrain_checker::linear::{KeyResult, Witness};
use splitbrain_checker::{EventPair, Operation};
use std::collections::{BTreeMap, BTreeSet};

const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");

/// Witness drawings show at most this many of the prefix's last steps...
const WITNESS_STEPS: usize = 12;
/// ...and at most this many operations in all.
const WITNESS_OPS: usize = 60;
/// Histories up to this many events list every raw event; longer ones list only those a
/// witness points at.
const RAW_ALL_LIMIT: usize = 2000;
/// Rows of the per-key table before it is cut.
const KEY_ROWS: usize = 200;
/// Transactional anomalies shown in full (drawing and edge list); the rest get one line.
const ANOMALIES_SHOWN: usize = 60;

/// What a report is rendered from.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    pub results: &'a Results,
    /// The history, paired once by the caller: the timeline and the charts use its lenient
    /// pairs, which exist even for a history the checkers reject.
    pub history: &'a PairedHistory,
    /// The operations the checkers saw (witness ids refer to them). When `None`, they are
    /// derived from `history`'s pairs; if the history cannot be checked, witnesses are
    /// drawn from what they carry.
    pub ops: Option<&'a Operations>,
    /// What could not be read, shown at the top ("history.jsonl truncated at line 812").
    pub missing: Vec<String>,
}

impl<'a> ReportInput<'a> {
    pub fn new(results: &'a Results, history: &'a PairedHistory) -> Self {
        ReportInput {
            results,
            history,
            ops: None,
            missing: Vec::new(),
        }
    }
}

/// Renders the whole page. Deterministic: the same input gives byte-identical output.
pub fn render_report(input: &ReportInput) -> String {
    let owned_ops;
    let mut missing = input.missing.clone();
    let ops: Option<&Operations> = match input.ops {
        Some(o) => Some(o),
        None => match input.history.operations() {
            Ok(o) => {
                owned_ops = o;
                Some(&owned_ops)
            }
            Err(e) if input.results.linearizability.is_some() => {
                missing.push(format!(
                    "the history could not be paired into operations ({e}); witnesses show only the operations they carry"
                ));
                None
            }
            Err(_) => None,
        },
    };
    let page = Page::new(input, ops, missing);
    page.render().into_string()
}

/// Everything derived from the input once, shared by the sections.
struct Page<'a> {
    results: &'a Results,
    history: &'a History,
    missing: Vec<String>,
    /// Operation id -> operation, from the paired history.
    ops_by_id: BTreeMap<usize, Operation>,
    /// Keys with a witness, each with its anchor.
    witnesses: Vec<(String, &'a KeyResult, &'a Witness)>,
    /// Event index -> event.
    events: BTreeMap<u64, &'a Event>,
    /// The history's lenient pairs, for the timeline and the charts (the checkers'
    /// strict pairing may have refused it).
    pairs: &'a [EventPair],
    end_ns: u64,
}

impl<'a> Page<'a> {
    fn new(input: &ReportInput<'a>, ops: Option<&Operations>, missing: Vec<String>) -> Self {
        let ops_by_id = ops
            .map(|o| o.ops.iter().map(|op| (op.id, op.clone())).collect())
            .unwrap_or_default();
        let witnesses = input
            .results
            .linearizability
            .iter()
            .flat_map(|l| l.keys.iter())
            .filter_map(|k| k.witness.as_ref().map(|w| (k, w)))
            .enumerate()
            .map(|(i, (k, w))| (format!("witness-{i}"), k, w))
            .collect();
        Page {
            results: input.results,
            history: input.history.history(),
            missing,
            ops_by_id,
            witnesses,
            events: input
                .history
                .events()
                .iter()
                .map(|e| (e.index, e))
                .collect(),
            pairs: &input.history.lenient().pairs,
            end_ns: input
                .history
                .events()
                .iter()
                .map(|e| e.time)
                .max()
                .unwrap_or(0),
        }
    }

    fn render(&self) -> Markup {
        let r = self.results;
        let title = format!("splitbrain: {} — {}", r.name, r.verdict);
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="generator" content="splitbrain";
                    title { (title) }
                    style { (PreEscaped(CSS)) }
                }
                body {
                    pre id="js-errors" hidden {}
                    script { (PreEscaped(ERROR_HOOK)) }
                    main {
                        header.top {
                            h1 { "splitbrain · " (r.name) }
                            span.meta {
                                "started " (r.started_at) " · ran " (fmt_secs(r.duration_s))
                                " · " (r.stats.events) " events, " (r.stats.operations) " operations"
                            }
                        }
                        (self.banner())
                        (self.notes())
                        nav.toc {
                            a href="#reproduce" { "reproduce" }
                            a href="#timeline-section" { "timeline" }
                            a href="#charts" { "latency & throughput" }
                            @if !self.witnesses.is_empty() { a href="#witnesses" { "witnesses (" (self.witnesses.len()) ")" } }
                            @if let Some(l) = &r.list_append { a href="#anomalies" { "anomalies (" (l.anomalies.len()) ")" } }
                            @if r.linearizability.is_some() { a href="#keys" { "keys" } }
                            a href="#stats" { "statistics" }
                            a href="#availability" { "availability" }
                            @if r.convergence.is_some() { a href="#convergence" { "convergence" } }
                            a href="#config" { "configuration" }
                            @if !r.node_logs.is_empty() { a href="#logs" { "node logs" } }
                            a href="#raw" { "raw history" }
                        }
                        (self.reproduce())
                        (self.timeline())
                        (self.charts())
                        (self.witness_section())
                        (self.anomaly_section())
                        (self.keys_table())
                        (self.stats_table())
                        (self.availability_table())
                        (self.convergence())
                        (self.config())
                        (self.logs())
                        (self.raw_events())
                    }
                    script type="application/json" id="sb-data" { (PreEscaped(self.timeline_json())) }
                    script { (PreEscaped(JS)) }
                }
            }
        }
    }

    fn banner(&self) -> Markup {
        let r = self.results;
        html! {
            div class={"banner " (r.verdict.as_str())} id="verdict" data-verdict=(r.verdict.as_str()) {
                div.word { (r.verdict.as_str()) }
                div.why {
                    div { (r.headline()) }
                    @if !r.checkers.is_empty() {
                        ul {
                            @for c in &r.checkers {
                                li { strong { (c.name) } ": " (c.verdict.as_str()) " — " (c.summary) }
                            }
                        }
                    }
                    @if let Some(l) = &r.linearizability {
                        @let unknown: Vec<&KeyResult> = l.keys.iter().filter(|k| k.verdict == Verdict::Unknown).collect();
                        @if !unknown.is_empty() {
                            div { "Undecided keys: "
                                @for (i, k) in unknown.iter().take(5).enumerate() {
                                    @if i > 0 { "; " }
                                    (key_name(&k.key)) " (" (k.unknown_reason.as_deref().unwrap_or("no reason given")) ")"
                                }
                                @if unknown.len() > 5 { " and " (unknown.len() - 5) " more" }
                            }
                        }
                    }
                }
            }
        }
    }

    fn notes(&self) -> Markup {
        let r = self.results;
        let any = !self.missing.is_empty() || !r.notes.is_empty() || r.partial;
        html! {
            @if any {
                div.warn id="notes" {
                    strong { "Please note" }
                    ul {
                        @if r.partial { li { "The run was interrupted: the history and the verdict cover only part of it." } }
                        @for m in &self.missing { li.missing { (m) } }
                        @for n in &r.notes { li { (n) } }
                    }
                }
            }
        }
    }

    fn reproduce(&self) -> Markup {
        let r = self.results;
        html! {
            section.card id="reproduce" {
                h2 { "Reproduce" }
                dl.kv {
                    dt { "seed" } dd { code { (r.seed.map_or("(none recorded)".to_string(), |s| s.to_string())) } }
                    dt { "exit code" } dd { (r.exit_code) }
                    @if let Some(l) = &r.linearizability {
                        dt { "model" } dd { (l.model) }
                        dt { "checked" } dd { (l.operations) " operations in " (l.keys.len()) " key(s), " (fmt_ms(l.elapsed_ms)) }
                    }
                }
                @if let Some(cmd) = &r.reproduce {
                    pre.cmd { code { (cmd) } }
                } @else {
                    p.muted { "No reproduction command was recorded (a history checked offline)." }
                }
            }
        }
    }

    fn timeline(&self) -> Markup {
        html! {
            section.card id="timeline-section" {
                h2 { "Timeline" }
                div.legend-row {
                    span { span.sw style={"background:" (charts::OK)} {} "ok" }
                    span { span.sw style={"background:" (charts::FAIL)} {} "fail" }
                    span { span.sw style={"background:" (charts::INFO)} {} "info (until the client gave up; the thin tail: it may still take effect, to the end)" }
                    span { span.sw style="background:rgba(207,34,46,.18)" {} "fault window" }
                    @if !self.witnesses.is_empty() { span { span.sw style="border:2px solid #82071e" {} "cannot be linearized (click)" } }
                }
                div.tools {
                    button type="button" id="zoom-in" { "zoom in" }
                    button type="button" id="zoom-out" { "zoom out" }
                    button type="button" id="zoom-reset" { "reset" }
                    span.hint { "wheel to zoom · drag to pan · hover for details · double-click to reset" }
                }
                div.timeline-wrap {
                    canvas id="timeline" {}
                    div id="timeline-tip" {}
                }
            }
        }
    }

    fn charts(&self) -> Markup {
        let mut points = Vec::new();
        let mut completions = Vec::new();
        for op in self.pairs {
            if let Some(c) = op.complete.map(|c| &self.history.events[c]) {
                let inv = &self.history.events[op.invoke];
                points.push(LatencyPoint {
                    t_ns: inv.time,
                    latency_ms: c.time.saturating_sub(inv.time) as f64 / 1e6,
                    outcome: c.kind.as_str(),
                });
                completions.push(Completion {
                    t_ns: c.time,
                    f: inv.f.clone(),
                    ok: c.kind == EventType::Ok,
                });
            }
        }
        let faults = &self.results.stats.faults;
        html! {
            section.card id="charts" {
                h2 { "Latency over time" }
                div.chart-box id="latency-chart" { (PreEscaped(charts::latency_svg(&points, self.end_ns, faults))) }
                h2 { "Throughput over time" }
                div.chart-box id="throughput-chart" { (PreEscaped(charts::throughput_svg(&completions, self.end_ns, faults))) }
            }
        }
    }

    fn witness_section(&self) -> Markup {
        html! {
            @if !self.witnesses.is_empty() {
                section.card id="witnesses" {
                    h2 { "Why it is not linearizable" }
                    p.muted {
                        "For each invalid key: the key's operations around the failure, one row per process, "
                        "ordered as they were recorded. Green operations form the longest linearizable prefix; "
                        "the numbered dots are their linearization points with the model state after each. "
                        "The red operation cannot be placed after them. Click an operation for its raw history lines."
                    }
                    @for (anchor, key, w) in &self.witnesses {
                        (self.witness(anchor, key, w))
                    }
                }
            }
        }
    }

    fn witness(&self, anchor: &str, key: &KeyResult, w: &Witness) -> Markup {
        let key_ops: BTreeMap<usize, Operation> = self
            .ops_by_id
            .iter()
            .filter(|(_, op)| op.key == w.key)
            .map(|(id, op)| (*id, op.clone()))
            .collect();
        let (drawn, lo) = charts::witness_ops(w, &key_ops, WITNESS_STEPS, WITNESS_OPS);
        let first_step = w.prefix.len().saturating_sub(WITNESS_STEPS);
        html! {
            div.witness id=(anchor) {
                h3 { "Key " (key_name(&w.key)) " — " span.pill.invalid { "invalid" } }
                p.muted { (key.operations) " operations (" (key.ok) " ok, " (key.info) " info), decided by " (key.method) " in " (fmt_ms(key.elapsed_ms)) ", " (key.explored) " states explored." }
                div.witness-draw { (PreEscaped(charts::witness_svg(&drawn, lo, anchor))) }
                div.stuck-box id={(anchor) "-detail"} {
                    div { "Cannot be linearized: " a.op href={"#ev-" (w.stuck.invoke_index)} { (w.stuck.to_string()) } }
                    div { "Why: " strong { (w.needed) } }
                    @if !w.reachable_states.is_empty() {
                        div { "States the prefix can end in: "
                            @for (i, s) in w.reachable_states.iter().enumerate() {
                                @if i > 0 { ", " }
                                code { (s.to_string()) }
                            }
                        }
                    }
                    @if !w.explanation.is_empty() { p { (w.explanation) } }
                }
                @if !w.concurrent.is_empty() {
                    h3 { "Concurrent with it" }
                    ul {
                        @for c in &w.concurrent {
                            li { a href={"#ev-" (c.invoke_index)} { (c.to_string()) } }
                        }
                    }
                }
                h3 { "Longest linearizable prefix (" (w.prefix.len()) " operations)" }
                @if first_step > 0 { p.muted { "The first " (first_step) " steps are omitted." } }
                table {
                    thead { tr { th.num { "#" } th { "operation" } th { "events" } th { "state after" } } }
                    tbody {
                        @for (i, step) in w.prefix.iter().enumerate().skip(first_step) {
                            tr {
                                td.num { (i + 1) }
                                @if let Some(op) = self.ops_by_id.get(&step.op) {
                                    td { (op.to_string()) }
                                    td {
                                        a href={"#ev-" (op.invoke_index)} { (op.invoke_index) }
                                        @if let Some(c) = op.complete_index { "–" a href={"#ev-" (c)} { (c) } }
                                    }
                                } @else {
                                    td { "operation #" (step.op) } td { "" }
                                }
                                td { code { (step.state.to_string()) } }
                            }
                        }
                        tr.bad {
                            td.num { "✗" }
                            td { (w.stuck.to_string()) }
                            td {
                                a href={"#ev-" (w.stuck.invoke_index)} { (w.stuck.invoke_index) }
                                @if let Some(c) = w.stuck.complete_index { "–" a href={"#ev-" (c)} { (c) } }
                            }
                            td { (w.needed) }
                        }
                    }
                }
            }
        }
    }

    /// The list-append analysis: what it concluded, then each anomaly with its cycle
    /// drawn beside its explanation and the reason for every edge.
    fn anomaly_section(&self) -> Markup {
        let Some(l) = &self.results.list_append else {
            return html! {};
        };
        html! {
            section.card id="anomalies" {
                h2 { "Transactional anomalies (" (l.analysis) ") " span class={"pill " (l.verdict().as_str())} { (l.verdict().as_str()) } }
                p {
                    (l.txns) " transactions analysed (" (l.failed_txns) " failed) in " (fmt_ms(l.elapsed_ms)) "; "
                    "dependency graph of " (l.graph.nodes) " transactions and " (l.graph.edges) " edges, "
                    (l.graph.cyclic_components) " cyclic component(s)."
                    @if l.skipped_ops > 0 { " " (l.skipped_ops) " operations that are not transactions were ignored." }
                }
                dl.kv {
                    dt { "checked against" } dd { (if l.consistency_models.is_empty() { l.checked_model.clone() } else { l.consistency_models.join(", ") }) }
                    dt { "strongest models still possible" } dd {
                        @if !l.strongest_models.is_empty() { (l.strongest_models.join(", ")) }
                        @else { (l.strongest_model.as_deref().unwrap_or("none (even read-uncommitted is ruled out)")) }
                    }
                    @if !l.ruled_out.is_empty() {
                        dt { "not (weakest violated)" } dd { (l.not.join(", ")) }
                        @if !l.also_not.is_empty() { dt { "also not" } dd { (l.also_not.join(", ")) } }
                    } @else if !l.not.is_empty() {
                        dt { "ruled out" } dd { (l.not.join(", ")) }
                    }
                }
                details.lattice-box open[!l.all_ruled_out().is_empty()] {
                    summary { "Consistency models: what this history rules out" }
                    p.muted {
                        "Every model the checker knows; an arrow leads from a model to each model it implies (strongest on top). "
                        span style="color:#82071e;font-weight:700" { "Dark red" } ": the weakest models violated; "
                        span style="color:#a40e26" { "red" } ": also ruled out; "
                        span style="color:#0f5323" { "green" } ": the strongest models still possible; "
                        "dashed: not judged (their anomalies were not searched for); thick outline: checked. "
                        "Not ruled out is not proven: the analysis finds anomalies, it cannot prove their absence."
                    }
                    div.lattice-draw {
                        (PreEscaped(lattice::lattice_svg(&lattice::Marks {
                            ruled_out: l.all_ruled_out(),
                            not: if l.ruled_out.is_empty() { &[] } else { &l.not },
                            strongest: &l.strongest_models,
                            checked: &l.consistency_models,
                            judged: &l.judged_models,
                        })))
                    }
                }
                @if l.graph.truncated_components > 0 {
                    p.muted { (l.graph.truncated_components) " component(s) ran out of search budget: their cycles are real, but shorter ones may exist." }
                }
                @if l.anomalies.is_empty() {
                    p.empty { "No anomalies: no dependency cycle, and every read is consistent with the inferred version orders." }
                } @else {
                    table.counts {
                        thead { tr { th { "anomaly" } th.num { "found" } th.num { "shown" } } }
                        tbody {
                            @for kind in &l.anomaly_types {
                                tr {
                                    td { (kind) }
                                    td.num { (l.anomaly_counts.get(kind).copied().unwrap_or(0)) }
                                    td.num { (l.anomalies.iter().filter(|a| &a.kind == kind).count()) }
                                }
                            }
                        }
                    }
                    p.muted {
                        "Each cycle is drawn with its transactions (T = operation id, p = process) on a circle; an arrow "
                        "T1 → T2 means T1 must precede T2: "
                        @for (i, (kind, c)) in cycles::EDGE_KINDS.iter().enumerate() {
                            @if i > 0 { ", " }
                            span style={"color:" (c) ";font-weight:600"} { (kind) }
                        }
                        " (ww: T2 wrote the version after T1's; wr: T2 read T1's write; rw: T1 read a version "
                        "before T2's write; process: same process, later; realtime: T1 completed before T2 began). "
                        "Hover an edge for its reason; click a transaction for its history lines."
                    }
                    @let order = display_order(l);
                    @for &i in order.iter().take(ANOMALIES_SHOWN) {
                        (self.anomaly(&format!("anomaly-{i}"), &l.anomalies[i]))
                    }
                    @if order.len() > ANOMALIES_SHOWN {
                        h3 { (order.len() - ANOMALIES_SHOWN) " more" }
                        ul {
                            @for &i in order.iter().skip(ANOMALIES_SHOWN) { li { strong { (l.anomalies[i].kind) } ": " (l.anomalies[i].explanation) } }
                        }
                    }
                }
            }
        }
    }

    fn anomaly(&self, anchor: &str, a: &Anomaly) -> Markup {
        let svg = cycles::cycle_svg(&a.cycle, anchor);
        html! {
            div.anomaly id=(anchor) data-kind=(a.kind) {
                h3 {
                    (a.kind)
                    @if let Some(k) = &a.key { " on key " (key_name(&Some(k.clone()))) }
                    @if !a.cycle.is_empty() { " — a cycle of " (a.cycle.len()) " transactions" }
                }
                div.anomaly-row {
                    @if !svg.is_empty() { div.cycle-draw { (PreEscaped(svg)) } }
                    div.anomaly-text {
                        p { (a.explanation) }
                        @if let Some(m) = &a.assumes { p.muted { "The version order this rests on was inferred assuming " (m) ": it rules out only models that imply " (m) "." } }
                        @if !a.cycle.is_empty() {
                            @if a.cycle.len() > cycles::MAX_DRAWN { p.muted { "Too long to draw; its edges:" } }
                            ol.edges {
                                @for (i, s) in a.cycle.iter().enumerate() {
                                    @let next = &a.cycle[(i + 1) % a.cycle.len()];
                                    li {
                                        a href={"#ev-" (s.invoke_index)} { "T" (s.txn) }
                                        " → "
                                        span.edge-kind style={"color:" (edge_colour(&s.edge_to_next))} { (cycles::edge_label(s)) }
                                        " → "
                                        a href={"#ev-" (next.invoke_index)} { "T" (next.txn) }
                                        ": " (s.reason)
                                    }
                                }
                            }
                        } @else if !a.txns.is_empty() {
                            p { "Transactions: "
                                @for (i, t) in a.txns.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    a href={"#ev-" (t.invoke_index)} { "T" (t.id) } " (p" (t.process) ", " (t.status) ")"
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn keys_table(&self) -> Markup {
        let Some(l) = &self.results.linearizability else {
            return html! {};
        };
        let rank = |v: Verdict| match v {
            Verdict::Invalid => 0,
            Verdict::Unknown => 1,
            Verdict::Valid => 2,
        };
        let mut keys: Vec<&KeyResult> = l.keys.iter().collect();
        keys.sort_by_key(|k| rank(k.verdict));
        let anchors: BTreeMap<Option<&Key>, &str> = self
            .witnesses
            .iter()
            .map(|(a, k, _)| (k.key.as_ref(), a.as_str()))
            .collect();
        html! {
            section.card id="keys" {
                h2 { "Linearizability per key (" (l.model) ")" }
                table {
                    thead { tr { th { "key" } th { "verdict" } th.num { "ops" } th.num { "ok" } th.num { "info" } th { "method" } th.num { "explored" } th.num { "time" } th { "" } } }
                    tbody {
                        @for k in keys.iter().take(KEY_ROWS) {
                            tr.bad[k.verdict == Verdict::Invalid].warnrow[k.verdict == Verdict::Unknown] {
                                td { (key_name(&k.key)) }
                                td { span class={"pill " (k.verdict.as_str())} { (k.verdict.as_str()) } }
                                td.num { (k.operations) } td.num { (k.ok) } td.num { (k.info) }
                                td { (k.method) } td.num { (k.explored) } td.num { (fmt_ms(k.elapsed_ms)) }
                                td {
                                    @if let Some(a) = anchors.get(&k.key.as_ref()) { a href={"#" (a)} { "witness" } }
                                    @else if let Some(reason) = &k.unknown_reason { (reason) }
                                }
                            }
                        }
                    }
                }
                @if keys.len() > KEY_ROWS { p.caption { (keys.len() - KEY_ROWS) " more keys, all " (keys[KEY_ROWS].verdict.as_str()) " or better, are not listed." } }
            }
        }
    }

    fn stats_table(&self) -> Markup {
        let s = &self.results.stats;
        html! {
            section.card id="stats" {
                h2 { "Operations" }
                @if s.by_f.is_empty() { p.empty { "No client operations." } } @else {
                    table {
                        thead { tr { th { "f" } th.num { "ok" } th.num { "fail" } th.num { "info" } th.num { "never completed" } th.num { "p50" } th.num { "p90" } th.num { "p99" } th.num { "max" } } }
                        tbody {
                            @for f in &s.by_f {
                                tr {
                                    td { (f.f) } td.num { (f.ok) } td.num { (f.fail) } td.num { (f.info) } td.num { (f.pending) }
                                    @if let Some(q) = &f.latency_ms {
                                        td.num { (fmt_ms(q.p50)) } td.num { (fmt_ms(q.p90)) } td.num { (fmt_ms(q.p99)) } td.num { (fmt_ms(q.max)) }
                                    } @else { td.num { "–" } td.num { "–" } td.num { "–" } td.num { "–" } }
                                }
                            }
                        }
                    }
                    p.caption { "Latency quantiles (nearest rank) over operations that completed with any outcome; an info completion's latency is how long the client waited." }
                }
            }
        }
    }

    fn availability_table(&self) -> Markup {
        let s = &self.results.stats;
        html! {
            section.card id="availability" {
                h2 { "Availability per fault window" }
                table {
                    thead { tr { th { "fault" } th { "targets" } th.num { "from" } th.num { "to" } th.num { "invoked" } th.num { "ok" } th.num { "fail" } th.num { "info" } th.num { "available" } } }
                    tbody {
                        @for w in &s.faults {
                            tr {
                                td { (w.kind) } td { (w.targets) }
                                td.num { (format!("{:.2}s", w.start_s)) }
                                td.num { (format!("{:.2}s", w.end_s)) @if !w.closed { " (never healed)" } }
                                td.num { (w.availability.invoked) } td.num { (w.availability.ok) } td.num { (w.availability.fail) } td.num { (w.availability.info) }
                                td.num { (fmt_fraction(w.availability.fraction)) }
                            }
                        }
                        tr {
                            td { strong { "no fault" } } td { "" } td { "" } td { "" }
                            td.num { (s.outside_faults.invoked) } td.num { (s.outside_faults.ok) } td.num { (s.outside_faults.fail) } td.num { (s.outside_faults.info) }
                            td.num { (fmt_fraction(s.outside_faults.fraction)) }
                        }
                    }
                }
                p.caption { "Availability: the fraction of operations invoked in the window that completed ok." }
            }
        }
    }

    fn convergence(&self) -> Markup {
        let Some(c) = &self.results.convergence else {
            return html! {};
        };
        // The most common (digest, history) is the majority's; others are highlighted.
        let mut digests: BTreeMap<(&str, Option<&str>), usize> = BTreeMap::new();
        for n in &c.nodes {
            if let Some(d) = &n.digest {
                *digests
                    .entry((d.as_str(), n.history.as_deref()))
                    .or_default() += 1;
            }
        }
        let majority = digests.iter().max_by_key(|(_, n)| **n).map(|(d, _)| *d);
        let with_history = c.nodes.iter().any(|n| n.history.is_some());
        html! {
            section.card id="convergence" {
                h2 { "Convergence " span class={"pill " (c.verdict.as_str())} { (c.verdict.as_str()) } }
                @if !c.explanation.is_empty() { p { (c.explanation) } }
                table {
                    thead { tr { th { "node" } th { "reachable" } th.num { "applied index" } th.num { "last index" } th { "digest" } @if with_history { th { "applied history" } } } }
                    tbody {
                        @for n in &c.nodes {
                            @let differs = n.digest.is_some()
                                && n.digest.as_deref().map(|d| (d, n.history.as_deref())) != majority;
                            tr.bad[!n.reachable || differs] {
                                td { (n.name) } td { (if n.reachable { "yes" } else { "no" }) }
                                td.num { (opt_num(n.applied_index)) } td.num { (opt_num(n.last_index)) }
                                td { code { (n.digest.as_deref().unwrap_or("–")) } }
                                @if with_history { td { code { (n.history.as_deref().unwrap_or("–")) } } }
                            }
                        }
                    }
                }
                @if !c.replicas_per_entry.is_empty() {
                    h3 { "Replicas per committed entry" }
                    table {
                        thead { tr { th.num { "entries" } th.num { "term" } th.num { "replicas" } } }
                        tbody {
                            @for rc in &c.replicas_per_entry {
                                tr.bad[rc.replicas * 2 <= c.nodes.len()] {
                                    td.num { (rc.from_index) "–" (rc.to_index) } td.num { (rc.term) } td.num { (rc.replicas) " of " (c.nodes.len()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn config(&self) -> Markup {
        let text = serde_json::to_string_pretty(&self.results.config).unwrap_or_default();
        html! {
            section.card id="config" {
                h2 { "Configuration" }
                pre { code { (text) } }
            }
        }
    }

    fn logs(&self) -> Markup {
        html! {
            @if !self.results.node_logs.is_empty() {
                section.card id="logs" {
                    h2 { "Node logs" }
                    ul {
                        @for l in &self.results.node_logs {
                            li {
                                @if is_safe_relative(l) { a href=(l) { (l) } } @else { (l) " (not linked: not a relative path)" }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Event indexes every witness points at.
    fn witness_events(&self) -> BTreeSet<u64> {
        let mut set = BTreeSet::new();
        let mut add = |op: &Operation| {
            set.insert(op.invoke_index);
            if let Some(c) = op.complete_index {
                set.insert(c);
            }
        };
        for (_, _, w) in &self.witnesses {
            let first = w.prefix.len().saturating_sub(WITNESS_STEPS);
            for step in w.prefix.iter().skip(first) {
                if let Some(op) = self.ops_by_id.get(&step.op) {
                    add(op);
                }
            }
            add(&w.stuck);
            w.concurrent.iter().for_each(&mut add);
        }
        let anomalies = self.results.list_append.iter().flat_map(anomaly_txns);
        for (id, invoke_index) in anomalies {
            set.insert(invoke_index);
            // An `ok`/`info` transaction's completion too (a failed one's id indexes the
            // failed list, so the invocation must match).
            if let Some(op) = self.ops_by_id.get(&id) {
                if op.invoke_index == invoke_index {
                    set.extend(op.complete_index);
                }
            }
        }
        set
    }

    fn raw_events(&self) -> Markup {
        let marked = self.witness_events();
        let all = self.events.len() <= RAW_ALL_LIMIT;
        let rows: Vec<&Event> = self
            .events
            .iter()
            .filter(|(i, _)| all || marked.contains(i))
            .map(|(_, e)| *e)
            .collect();
        // A column for the clients' extra fields only when some event has them.
        let with_extra = rows.iter().any(|e| !e.extra.is_empty());
        html! {
            section.card id="raw" {
                h2 { "Raw history" }
                @if all { p.muted { "Every event of the history, as recorded." @if !marked.is_empty() { " Events of the witnesses are highlighted." } } }
                @else { p.muted { "The history has " (self.events.len()) " events; listed here are the " (rows.len()) " that the witnesses refer to." } }
                @if rows.is_empty() { p.empty { "No events." } } @else {
                    table.raw {
                        thead { tr { th.num { "index" } th.num { "time (s)" } th { "process" } th { "type" } th { "f" } th { "key" } th { "value" } th { "node" } th { "error" } @if with_extra { th { "extra" } } } }
                        tbody {
                            @for e in rows {
                                tr id={"ev-" (e.index)} .hl[all && marked.contains(&e.index)] {
                                    td.num { (e.index) }
                                    td.num { (format!("{:.6}", e.time as f64 / 1e9)) }
                                    td { (e.process.to_string()) }
                                    td { span class={"pill " (pill_class(e.kind))} { (e.kind.as_str()) } }
                                    td { (e.f) }
                                    td { (e.key.as_ref().map(|k| k.to_string()).unwrap_or_default()) }
                                    td.v { (charts::clip(&e.value.to_string(), 300)) }
                                    td { (e.node.as_deref().unwrap_or("")) }
                                    td { (e.error.as_deref().unwrap_or("")) }
                                    @if with_extra { td.v { (extra_text(e)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The timeline's data, as JSON safe to embed in a `<script>` element.
    fn timeline_json(&self) -> String {
        #[derive(Serialize)]
        struct Data {
            end_us: u64,
            lanes: Vec<String>,
            /// [lane, invoke µs, completion µs or -1 (never completed), outcome 0 ok
            ///  1 fail 2 info 3 never completed, f index, invoke event index, description]
            ops: Vec<(usize, u64, i64, u8, usize, u64, String)>,
            fs: Vec<String>,
            /// [start µs, end µs, kind, targets, closed]
            faults: Vec<(u64, u64, String, String, bool)>,
            /// invoke event index -> witness anchor
            stuck: BTreeMap<u64, String>,
        }
        let raw = self.pairs;
        let (lane_of, lanes) = assign_lanes(raw);
        let fs: BTreeSet<&str> = raw
            .iter()
            .map(|o| self.history.events[o.invoke].f.as_str())
            .collect();
        let f_of: BTreeMap<&str, usize> = fs.iter().enumerate().map(|(i, f)| (*f, i)).collect();
        let ops = raw
            .iter()
            .map(|o| {
                let inv = &self.history.events[o.invoke];
                let comp = o.complete.map(|p| &self.history.events[p]);
                // For info the bar ends where the client gave up; the page draws a thin
                // tail from there to the end (it may take effect any time).
                let (t1, outcome) = match comp {
                    Some(c) if c.kind == EventType::Ok => (c.time as i64 / 1000, 0),
                    Some(c) if c.kind == EventType::Fail => (c.time as i64 / 1000, 1),
                    Some(c) => (c.time as i64 / 1000, 2),
                    None => (-1, 3),
                };
                (
                    lane_of.get(&o.process).copied().unwrap_or(0),
                    inv.time / 1000,
                    t1,
                    outcome,
                    f_of.get(inv.f.as_str()).copied().unwrap_or(0),
                    inv.index,
                    describe_op(inv, comp),
                )
            })
            .collect();
        let faults = self
            .results
            .stats
            .faults
            .iter()
            .map(|w| {
                (
                    (w.start_s * 1e6) as u64,
                    (w.end_s * 1e6) as u64,
                    charts::clip(&w.kind, 40),
                    charts::clip(&w.targets, 80),
                    w.closed,
                )
            })
            .collect();
        let stuck = self
            .witnesses
            .iter()
            .map(|(a, _, w)| (w.stuck.invoke_index, a.clone()))
            .collect();
        let data = Data {
            end_us: self.end_ns / 1000,
            lanes,
            ops,
            fs: fs.iter().map(|f| f.to_string()).collect(),
            faults,
            stuck,
        };
        let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".into());
        embed_json(&json)
    }
}

/// The order anomalies are shown in: cycles first (they are what a reader must follow
/// by hand, and what the drawings are for), then the others, each in the checker's order.
/// Anchors keep the checker's index (`anomaly-<i>`).
fn display_order(l: &ElleResult) -> Vec<usize> {
    let (mut cycles, others): (Vec<usize>, Vec<usize>) =
        (0..l.anomalies.len()).partition(|&i| !l.anomalies[i].cycle.is_empty());
    cycles.extend(others);
    cycles
}

/// (transaction id, invocation index) of every transaction the shown anomalies name.
fn anomaly_txns(l: &ElleResult) -> Vec<(usize, u64)> {
    let order = display_order(l);
    let shown = order.iter().take(ANOMALIES_SHOWN).map(|&i| &l.anomalies[i]);
    shown
        .flat_map(|a| {
            a.cycle
                .iter()
                .map(|s| (s.txn, s.invoke_index))
                .chain(a.txns.iter().map(|t| (t.id, t.invoke_index)))
        })
        .collect()
}

fn edge_colour(kind: &str) -> &'static str {
    cycles::EDGE_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("inherit", |(_, c)| c)
}

/// Packs processes into timeline lanes like client threads: a process takes the lowest
/// lane whose previous process has finished its last operation (after an `info`, a
/// thread continues under a new process number, as the history format requires). A process that never
/// completes keeps its lane. Returns each process's lane and each lane's label (its
/// first process, with `+` when it hosts more).
fn assign_lanes(raw: &[EventPair]) -> (BTreeMap<u64, usize>, Vec<String>) {
    // process -> (first invoke position, last end position; usize::MAX if open)
    let mut spans: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for o in raw {
        let end = o.complete.unwrap_or(usize::MAX);
        let span = spans.entry(o.process).or_insert((o.invoke, end));
        span.0 = span.0.min(o.invoke);
        span.1 = if span.1 == usize::MAX || end == usize::MAX {
            usize::MAX
        } else {
            span.1.max(end)
        };
    }
    let mut order: Vec<(usize, usize, u64)> =
        spans.iter().map(|(p, (a, b))| (*a, *b, *p)).collect();
    order.sort_unstable();
    let mut lane_end: Vec<usize> = Vec::new();
    let mut labels: Vec<(u64, usize)> = Vec::new();
    let mut lane_of = BTreeMap::new();
    for (start, end, process) in order {
        let lane = match lane_end.iter().position(|&e| e < start) {
            Some(l) => l,
            None => {
                lane_end.push(0);
                labels.push((process, 0));
                lane_end.len() - 1
            }
        };
        lane_end[lane] = end;
        labels[lane].1 += 1;
        lane_of.insert(process, lane);
    }
    let labels = labels
        .into_iter()
        .map(|(p, n)| {
            if n > 1 {
                format!("p{p}+")
            } else {
                format!("p{p}")
            }
        })
        .collect();
    (lane_of, labels)
}

/// Makes serialised JSON safe inside `<script>`: `<`, `>` and `&` can only occur inside
/// JSON strings, where their `\u` escapes mean the same.
pub(crate) fn embed_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Sets `data-ready` only in the main script; this hook records any script error into
/// `#js-errors` so tests (and people) can see it.
const ERROR_HOOK: &str = "window.onerror=function(m,s,l,c){var e=document.getElementById('js-errors');if(e){e.hidden=false;e.textContent+=String(m)+' (line '+l+':'+c+')\\n';}};";

fn describe_op(inv: &Event, comp: Option<&Event>) -> String {
    let mut s = format!("p{} {}", inv.process, inv.f);
    if let Some(k) = &inv.key {
        s.push_str(&format!(" [{k}]"));
    }
    if !inv.value.is_null() {
        s.push(' ');
        s.push_str(&charts::clip(&inv.value.to_string(), 120));
    }
    if let Some(c) = comp {
        s.push_str(&format!(" → {}", c.kind));
        if !c.value.is_null() && c.value != inv.value {
            s.push(' ');
            s.push_str(&charts::clip(&c.value.to_string(), 120));
        }
        if let Some(e) = &c.error {
            s.push_str(&format!(" ({})", charts::clip(e, 80)));
        }
        if !c.extra.is_empty() {
            s.push(' ');
            s.push_str(&extra_text(c));
        }
    }
    if let Some(n) = &inv.node {
        s.push_str(&format!(" @{n}"));
    }
    s
}

/// An event's extra fields as `name=value` pairs in name order, each clipped.
fn extra_text(e: &Event) -> String {
    e.extra
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                charts::clip(k, 40),
                charts::clip(&v.to_string(), 80)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn pill_class(kind: EventType) -> &'static str {
    match kind {
        EventType::Invoke => "",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

fn key_name(k: &Option<Key>) -> String {
    k.as_ref().map_or("(single register)".into(), |k| match k {
        Key::Int(i) => i.to_string(),
        Key::Str(s) => format!("{s:?}"),
    })
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn fmt_secs(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.0}m{:02.0}s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!("{s:.1}s")
    }
}

fn fmt_fraction(f: Option<f64>) -> String {
    f.map_or("–".into(), |f| format!("{:.1}%", f * 100.0))
}

fn opt_num(n: Option<u64>) -> String {
    n.map_or("–".into(), |n| n.to_string())
}

/// Node log links must stay inside the run directory: no scheme, no absolute path.
fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains(':')
        && !path.starts_with('/')
        && !path.starts_with('\\')
        && !path.split(['/', '\\']).any(|c| c == "..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{
        invalid_results, invalid_results_with, list_append_results, list_append_results_with,
        valid_results,
    };

    /// An rw-register check renders under its own name, says which anomalies rest on an
    /// inferred version order, and marks the lattice.
    #[test]
    fn rw_register_anomalies_show_their_assumptions() {
        use splitbrain_checker::history::Process;
        let mut events = Vec::new();
        let mut push = |p: u64, kind: EventType, value: serde_json::Value| {
            let index = events.len() as u64;
            events.push(Event {
                index,
                time: (index + 1) * 1_000_000,
                process: Process::Client(p),
                kind,
                f: "txn".into(),
                key: None,
                value,
                node: None,
                error: None,
                line: None,
                extra: Default::default(),
            });
        };
        // x = 1, then x = 2, then (another process) a read of 1: a stale read that only
        // real-time order shows.
        for (p, invoke, done) in [
            (
                0,
                serde_json::json!([["w", "x", 1]]),
                serde_json::json!([["w", "x", 1]]),
            ),
            (
                2,
                serde_json::json!([["w", "x", 2]]),
                serde_json::json!([["w", "x", 2]]),
            ),
            (
                1,
                serde_json::json!([["r", "x", null]]),
                serde_json::json!([["r", "x", 1]]),
            ),
        ] {
            push(p, EventType::Invoke, invoke);
            push(p, EventType::Ok, done);
        }
        let history = PairedHistory::new(History::new(events));
        let ops = history.operations().unwrap();
        let result = splitbrain_checker::elle::check_rw_register(&ops).unwrap();
        let (mut r, _) = valid_results();
        r.set_list_append(&result);
        let page = render_report(&ReportInput::new(&r, &history));
        assert!(page.contains("Transactional anomalies (rw-register)"));
        assert!(page.contains("inferred assuming strong-read-committed"));
        assert!(page
            .contains(r#"data-model="strong-snapshot-isolation" data-state="violated (weakest)""#));
        assert!(page.contains(r#"data-model="serializable" data-state="not ruled out""#));
    }

    #[test]
    fn rendering_is_deterministic() {
        let (r, h) = invalid_results();
        let a = render_report(&ReportInput::new(&r, &h));
        let b = render_report(&ReportInput::new(&r, &h));
        assert!(a == b, "two renders differ");
        let (r, h) = valid_results();
        assert!(
            render_report(&ReportInput::new(&r, &h)) == render_report(&ReportInput::new(&r, &h))
        );
    }

    #[test]
    fn history_values_cannot_break_out() {
        let evil = "</script><script>alert(1)</script>";
        let (mut r, h) = invalid_results_with(Some(evil));
        r.notes.push(evil.into());
        r.config["name"] = serde_json::json!(evil);
        r.node_logs.push("javascript:alert(1)".into());
        let page = render_report(&ReportInput::new(&r, &h));
        assert!(
            !page.contains("<script>alert(1)"),
            "raw markup from the history reached the page"
        );
        assert!(!page.contains("href=\"javascript:"));
        // The only script elements are ours: the error hook, the data blob and the code.
        assert_eq!(page.matches("<script").count(), 3);
        assert_eq!(page.matches("</script>").count(), 3);
        // The blob still carries the value, escaped for JSON.
        assert!(page.contains("\\u003c/script\\u003e"));
    }

    #[test]
    fn extra_fields_are_shown_with_their_event() {
        let (r, h) = valid_results();
        let plain = render_report(&ReportInput::new(&r, &h));
        assert!(!plain.contains("<th>extra</th>"));
        let mut events = h.into_history().events;
        let ok = events
            .iter()
            .position(|e| e.kind == EventType::Ok)
            .expect("an ok completion");
        events[ok]
            .extra
            .insert("revision".into(), serde_json::json!(12));
        events[ok]
            .extra
            .insert("<b>".into(), serde_json::json!("</script>"));
        let h = PairedHistory::new(History::new(events));
        let page = render_report(&ReportInput::new(&r, &h));
        // In the raw history (a column only when some event has extras)...
        assert!(page.contains("<th>extra</th>"));
        assert!(page.contains(r#"&lt;b&gt;=&quot;&lt;/script&gt;&quot; revision=12"#));
        // ...and in the timeline's description of the operation, escaped for the blob.
        assert!(page.contains(r#"\u003cb\u003e=\"\u003c/script\u003e\" revision=12"#));
    }

    #[test]
    fn witness_is_drawn_and_linked() {
        let (mut r, h) = invalid_results();
        let l = r.linearizability.as_mut().unwrap();
        assert_eq!(
            l.verdict,
            Verdict::Invalid,
            "the checker must find the stale read"
        );
        let mut undecided = l.keys[0].clone();
        undecided.verdict = Verdict::Unknown;
        undecided.witness = None;
        undecided.unknown_reason = Some("time budget of 1 s ran out".into());
        l.keys.push(undecided);
        let page = render_report(&ReportInput::new(&r, &h));
        let w = r
            .linearizability
            .as_ref()
            .unwrap()
            .keys
            .iter()
            .find_map(|k| k.witness.as_ref())
            .unwrap();
        assert!(page.contains("id=\"witness-0\""));
        assert!(page.contains("class=\"witness-svg\""));
        assert!(page.contains("class=\"linpoint\""));
        assert!(page.contains("wop stuck"));
        // From the witness to the raw history lines, which exist on the page.
        let link = format!("href=\"#ev-{}\"", w.stuck.invoke_index);
        assert!(page.contains(&link));
        assert!(page.contains(&format!("id=\"ev-{}\"", w.stuck.invoke_index)));
        // From the timeline to the witness.
        assert!(page.contains(&format!(
            "\"stuck\":{{\"{}\":\"witness-0\"}}",
            w.stuck.invoke_index
        )));
        assert!(page.contains("time budget of 1 s ran out"));
    }

    #[test]
    fn anomaly_cycles_are_drawn_beside_their_explanations() {
        let (r, h) = list_append_results();
        let l = r.list_append.as_ref().expect("the list-append check ran");
        assert!(!l.valid);
        assert!(l.anomaly_types.contains(&"G-single".to_string()), "{l:?}");
        assert!(l.anomaly_types.contains(&"G1c".to_string()), "{l:?}");
        let page = render_report(&ReportInput::new(&r, &h));
        assert!(page.contains("id=\"anomalies\""));
        assert!(page.contains("href=\"#anomalies\""));
        // The lattice is drawn beside the cycles, with the violated models marked.
        assert!(page.contains("class=\"lattice\""));
        assert!(page.contains("Consistency models: what this history rules out"));
        for m in &l.not {
            assert!(
                page.contains(&format!(
                    "data-model=\"{m}\" data-state=\"violated (weakest)\""
                )),
                "{m}"
            );
        }
        for m in &l.also_not {
            assert!(
                page.contains(&format!("data-model=\"{m}\" data-state=\"ruled out\"")),
                "{m}"
            );
        }
        for m in &l.strongest_models {
            assert!(
                page.contains(&format!(
                    "data-model=\"{m}\" data-state=\"strongest still possible\""
                )),
                "{m}"
            );
        }
        assert!(!l.strongest_models.is_empty() && !l.also_not.is_empty());
        for (i, a) in l.anomalies.iter().enumerate() {
            let anchor = format!("id=\"anomaly-{i}\" data-kind=\"{}\"", a.kind);
            assert!(page.contains(&anchor), "{anchor} missing");
            let explanation = maud::html! { (a.explanation) }.into_string();
            assert!(
                page.contains(&explanation),
                "explanation of {} missing",
                a.kind
            );
            for s in &a.cycle {
                // Every transaction is a node linked to its raw history line, which is
                // on the page, and every edge's reason is listed.
                assert!(page.contains(&format!(">T{}</text>", s.txn)));
                assert!(page.contains(&format!("id=\"ev-{}\"", s.invoke_index)));
                let reason = maud::html! { (s.reason) }.into_string();
                assert!(page.contains(&reason), "reason {reason} missing");
            }
        }
        let g_single = l.anomalies.iter().find(|a| a.kind == "G-single").unwrap();
        assert_eq!(g_single.cycle.len(), 2);
        let kinds: BTreeSet<&str> = g_single
            .cycle
            .iter()
            .map(|s| s.edge_to_next.as_str())
            .collect();
        assert_eq!(kinds, BTreeSet::from(["rw", "wr"]));
        assert!(g_single.cycle.iter().all(|s| s.key.is_some()));
        assert!(
            page.contains(">rw y</text>") && page.contains(">wr x</text>"),
            "edge labels name kind and key"
        );
        assert_eq!(
            page.matches("class=\"cycle-svg\"").count(),
            l.anomalies.iter().filter(|a| !a.cycle.is_empty()).count()
        );
        // Cycles are shown before anomalies without one, whatever the checker's order.
        let mut first = r.clone();
        let la = first.list_append.as_mut().unwrap();
        la.anomalies.insert(
            0,
            splitbrain_checker::elle::Anomaly {
                kind: "internal".into(),
                cycle: Vec::new(),
                txns: la.anomalies[0].txns.clone(),
                key: None,
                explanation: "T9 read its own append wrong".into(),
                assumes: None,
            },
        );
        let page = render_report(&ReportInput::new(&first, &h));
        let at = |anchor: &str| page.find(&format!("id=\"{anchor}\"")).unwrap();
        assert!(at("anomaly-1") < at("anomaly-0"));
        // A valid list-append run says so, with no drawings.
        let (mut v, vh) = valid_results();
        let mut valid = l.clone();
        valid.valid = true;
        valid.anomalies.clear();
        valid.anomaly_types.clear();
        v.list_append = Some(valid);
        let page = render_report(&ReportInput::new(&v, &vh));
        assert!(page.contains("No anomalies"));
        assert!(!page.contains("class=\"cycle-svg\""));
    }

    #[test]
    fn anomaly_text_cannot_break_out_and_survives_a_round_trip() {
        let evil = "</text><script>alert(1)</script>";
        let (r, h) = list_append_results_with(Some(evil));
        let page = render_report(&ReportInput::new(&r, &h));
        assert!(!page.contains("<script>alert(1)"));
        assert_eq!(page.matches("<script").count(), 3);
        let back: Results = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        // A results.json from before `list_append` existed still reads.
        let mut old = serde_json::to_value(&r).unwrap();
        old.as_object_mut().unwrap().remove("list_append");
        let back: Results = serde_json::from_value(old).unwrap();
        assert_eq!(back.list_append, None);
    }

    #[test]
    fn missing_input_is_reported() {
        let (r, h) = valid_results();
        let mut input = ReportInput::new(&r, &h);
        input
            .missing
            .push("history.jsonl truncated at line 812".into());
        let page = render_report(&input);
        assert!(page.contains("history.jsonl truncated at line 812"));
        let empty = PairedHistory::default();
        let page = render_report(&ReportInput::new(&r, &empty));
        assert!(page.contains("No completed operations to plot."));
    }

    #[test]
    fn lanes_are_reused_like_threads() {
        use splitbrain_checker::history::{Event, Process};
        let ev = |index: u64, p: u64, kind: EventType| Event {
            index,
            time: index,
            process: Process::Client(p),
            kind,
            f: "read".into(),
            key: None,
            value: serde_json::Value::Null,
            node: None,
            error: None,
            line: None,
            extra: Default::default(),
        };
        // p0 crashes (info) and its thread continues as p2; p1 stays open forever.
        let h = History::new(vec![
            ev(0, 0, EventType::Invoke),
            ev(1, 1, EventType::Invoke),
            ev(2, 0, EventType::Info),
            ev(3, 2, EventType::Invoke),
            ev(4, 2, EventType::Ok),
            ev(5, 3, EventType::Invoke),
        ]);
        let (lane_of, labels) = assign_lanes(&h.pair_lenient().pairs);
        assert_eq!(lane_of[&0], 0);
        assert_eq!(lane_of[&1], 1);
        assert_eq!(lane_of[&2], 0, "p2 reuses p0's lane after p0 gave up");
        assert_eq!(lane_of[&3], 0);
        assert_eq!(labels, vec!["p0+".to_string(), "p1".to_string()]);
    }

    #[test]
    fn large_histories_stay_bounded() {
        let h = PairedHistory::new(crate::testutil::register_history(3, 100_000, 20));
        let r = Results::new("big", "2026-11-26T15:00:00Z", &h);
        let page = render_report(&ReportInput::new(&r, &h));
        // Charts are downsampled and the raw table is omitted beyond the limit.
        assert!(page.matches("<circle").count() <= charts::MAX_POINTS + 10);
        assert!(!page.contains("id=\"ev-"));
        assert!(page.len() < 20_000_000, "{} bytes", page.len());
    }
}
