//! The report's static pictures, drawn as inline SVG by our own small code: latency over
//! time, throughput over time per `f`, and a witness drawn as Porcupine does.
//!
//! Kept apart from the page layout because the geometry (scales, ticks, downsampling,
//! linearization points) is the part worth testing on its own. Everything here is
//! deterministic: no randomness, fixed number formatting, and downsampling by stride.
//! Every piece of text that comes from a history is escaped with [`esc`].

use crate::results::{nearest_rank, ns_to_s, FaultWindow};
use serde_json::Value;
use splitbrain_checker::linear::Witness;
use splitbrain_checker::Operation;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for HTML or SVG content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Shortens `s` to at most `max` characters, marking the cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Colours by outcome, shared with the CSS and the timeline script.
pub(crate) const OK: &str = "#2da44e";
pub(crate) const FAIL: &str = "#cf222e";
pub(crate) const INFO: &str = "#d4a72c";
const PALETTE: [&str; 8] = [
    "#0969da", "#8250df", "#bf3989", "#1a7f37", "#bc4c00", "#57606a", "#0a7d85", "#9a6700",
];

/// At most this many points per scatter plot; beyond it we sample by stride.
pub(crate) const MAX_POINTS: usize = 4000;

/// A point of the latency chart: invoke time, latency, outcome (`ok`/`fail`/`info`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatencyPoint {
    pub t_ns: u64,
    pub latency_ms: f64,
    pub outcome: &'static str,
}

/// A completion for the throughput chart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Completion {
    pub t_ns: u64,
    pub f: String,
    pub ok: bool,
}

/// The plotting area and its scales.
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x_max: f64,
    y: YScale,
}

enum YScale {
    Linear {
        max: f64,
    },
    /// Powers of ten from `lo` to `hi`.
    Log {
        lo: i32,
        hi: i32,
    },
}

impl Frame {
    fn new(x_max: f64, y: YScale) -> Frame {
        Frame {
            width: 1100.0,
            height: 300.0,
            left: 64.0,
            right: 16.0,
            top: 26.0,
            bottom: 36.0,
            x_max: if x_max > 0.0 { x_max } else { 1.0 },
            y,
        }
    }

    fn px(&self, x: f64) -> f64 {
        self.left + (x / self.x_max) * (self.width - self.left - self.right)
    }

    fn py(&self, y: f64) -> f64 {
        let plot_h = self.height - self.top - self.bottom;
        let frac = match self.y {
            YScale::Linear { max } => y / max,
            YScale::Log { lo, hi } => {
                let v = y.max(10f64.powi(lo)).log10();
                (v - lo as f64) / (hi - lo) as f64
            }
        };
        self.top + plot_h * (1.0 - frac.clamp(0.0, 1.0))
    }

    /// The frame, axes, ticks, fault shading and axis labels.
    fn open(&self, out: &mut String, label: &str, y_label: &str, faults: &[FaultWindow]) {
        let _ = write!(
            out,
            r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">"#,
            w = self.width,
            h = self.height,
            label = esc(label)
        );
        let (x0, x1) = (self.left, self.width - self.right);
        let (y0, y1) = (self.top, self.height - self.bottom);
        for w in faults {
            let a = self.px(w.start_s).clamp(x0, x1);
            let b = self.px(w.end_s).clamp(x0, x1).max(a + 1.0);
            let _ = write!(
                out,
                r#"<g class="fault"><rect x="{a:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}"/><text x="{:.1}" y="{:.1}">{}</text><title>{}</title></g>"#,
                b - a,
                y1 - y0,
                a + 3.0,
                y0 + 11.0,
                esc(&clip(&w.kind, 18)),
                esc(&format!(
                    "{} {} ({:.2}s–{:.2}s)",
                    w.kind, w.targets, w.start_s, w.end_s
                ))
            );
        }
        // y ticks
        match self.y {
            YScale::Linear { max } => {
                let step = nice_step(max / 5.0);
                let mut v = 0.0;
                // At most a few dozen ticks, whatever rounding does to `step`.
                for _ in 0..64 {
                    if v > max + step * 1e-9 {
                        break;
                    }
                    self.y_tick(out, v, &fmt_num(v));
                    v += step;
                }
            }
            YScale::Log { lo, hi } => {
                for e in lo..=hi {
                    self.y_tick(out, 10f64.powi(e), &fmt_num(10f64.powi(e)));
                }
            }
        }
        // x ticks (seconds)
        let step = nice_step(self.x_max / 8.0);
        let mut t = 0.0;
        for _ in 0..64 {
            if t > self.x_max + step * 1e-9 {
                break;
            }
            let x = self.px(t);
            let _ = write!(
                out,
                r#"<line class="grid" x1="{x:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{y1:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}s</text>"#,
                y1 + 14.0,
                fmt_num(t)
            );
            t += step;
        }
        let _ = write!(
            out,
            r#"<rect class="axes" x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}"/><text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">time since start (s)</text><text class="axis-label" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            x1 - x0,
            y1 - y0,
            (x0 + x1) / 2.0,
            self.height - 4.0,
            (y0 + y1) / 2.0,
            esc(y_label)
        );
    }

    fn y_tick(&self, out: &mut String, v: f64, label: &str) {
        let y = self.py(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            self.left,
            self.width - self.right,
            self.left - 5.0,
            y + 4.0,
            label
        );
    }

    fn legend(&self, out: &mut String, items: &[(String, &str, bool)]) {
        let mut x = self.left;
        for (name, colour, dashed) in items {
            let dash = if *dashed {
                r#" stroke-dasharray="5 3""#
            } else {
                ""
            };
            let _ = write!(
                out,
                r#"<line x1="{x:.1}" y1="12" x2="{:.1}" y2="12" stroke="{colour}" stroke-width="3"{dash}/><text class="legend" x="{:.1}" y="16">{}</text>"#,
                x + 16.0,
                x + 20.0,
                esc(&clip(name, 24))
            );
            x += 34.0 + 7.0 * clip(name, 24).chars().count() as f64;
        }
    }
}

/// A round step (1, 2 or 5 times a power of ten) near `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let m = if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Numbers for tick labels: short and stable.
pub(crate) fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.0e}")
    }
}

/// Keeps every k-th item so at most `max` remain; deterministic.
fn stride<T: Clone>(items: &[T], max: usize) -> Vec<T> {
    if items.len() <= max || max == 0 {
        return items.to_vec();
    }
    let k = items.len().div_ceil(max);
    items.iter().step_by(k).cloned().collect()
}

/// Shown instead of a chart when the history has no timestamps (EDN histories often
/// carry none): everything would sit at time zero.
const NO_TIMES: &str = r#"<p class="empty">The history carries no timestamps, so there is nothing to plot over time.</p>"#;

/// Latency over time: one point per completed operation (coloured by outcome) and the
/// p50 / p99 of each time bucket as lines; fault windows shaded.
pub(crate) fn latency_svg(points: &[LatencyPoint], end_ns: u64, faults: &[FaultWindow]) -> String {
    if end_ns == 0 && !points.is_empty() {
        return NO_TIMES.to_string();
    }
    let mut out = String::new();
    if points.is_empty() {
        out.push_str(r#"<p class="empty">No completed operations to plot.</p>"#);
        return out;
    }
    let (lo, hi) = points.iter().fold((f64::MAX, 0f64), |(lo, hi), p| {
        (lo.min(p.latency_ms.max(1e-3)), hi.max(p.latency_ms))
    });
    let lo_e = lo.log10().floor() as i32;
    let hi_e = (hi.max(lo * 10.0).log10().ceil() as i32).max(lo_e + 1);
    let frame = Frame::new(ns_to_s(end_ns), YScale::Log { lo: lo_e, hi: hi_e });
    frame.open(&mut out, "latency over time", "latency (ms, log)", faults);

    // Sample each outcome separately so rare failures stay visible among many oks.
    let ok: Vec<LatencyPoint> = points
        .iter()
        .filter(|p| p.outcome == "ok")
        .cloned()
        .collect();
    let other: Vec<LatencyPoint> = points
        .iter()
        .filter(|p| p.outcome != "ok")
        .cloned()
        .collect();
    let shown_ok = stride(&ok, MAX_POINTS * 3 / 4);
    let shown_other = stride(&other, MAX_POINTS / 4);
    out.push_str(r#"<g class="points">"#);
    for p in shown_ok.iter().chain(shown_other.iter()) {
        let colour = match p.outcome {
            "ok" => OK,
            "fail" => FAIL,
            _ => INFO,
        };
        let _ = write!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="1.8" fill="{colour}"/>"#,
            frame.px(ns_to_s(p.t_ns)),
            frame.py(p.latency_ms)
        );
    }
    out.push_str("</g>");

    // Quantile lines over time buckets.
    let buckets = 40usize;
    let width_ns = (end_ns / buckets as u64).max(1);
    let mut per_bucket: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for p in points {
        per_bucket
            .entry((p.t_ns / width_ns).min(buckets as u64 - 1))
            .or_default()
            .push(p.latency_ms);
    }
    for (q, colour, dashed) in [(0.5, "#0969da", false), (0.99, "#8250df", true)] {
        let mut line = String::new();
        for (b, lat) in per_bucket.iter_mut() {
            lat.sort_by(f64::total_cmp);
            let x = frame.px(ns_to_s(b * width_ns + width_ns / 2));
            let _ = write!(line, "{x:.1},{:.1} ", frame.py(nearest_rank(lat, q)));
        }
        let dash = if dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<polyline class="quantile" fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
            line.trim_end()
        );
    }
    frame.legend(
        &mut out,
        &[
            ("ok".into(), OK, false),
            ("fail".into(), FAIL, false),
            ("info".into(), INFO, false),
            ("p50".into(), "#0969da", false),
            ("p99".into(), "#8250df", true),
        ],
    );
    out.push_str("</svg>");
    let shown = shown_ok.len() + shown_other.len();
    if shown < points.len() {
        let _ = write!(
            out,
            r#"<p class="caption">{shown} of {} points shown (every k-th, per outcome); quantile lines use all of them.</p>"#,
            points.len()
        );
    }
    out
}

/// Throughput over time: `ok` completions per second for each `f`.
pub(crate) fn throughput_svg(
    completions: &[Completion],
    end_ns: u64,
    faults: &[FaultWindow],
) -> String {
    let mut out = String::new();
    if completions.is_empty() {
        out.push_str(r#"<p class="empty">No completed operations to plot.</p>"#);
        return out;
    }
    if end_ns == 0 {
        out.push_str(NO_TIMES);
        return out;
    }
    let buckets = 60u64;
    let width_ns = (end_ns / buckets).max(1);
    let width_s = ns_to_s(width_ns);
    let mut per_f: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for c in completions {
        let counts = per_f
            .entry(c.f.as_str())
            .or_insert_with(|| vec![0; buckets as usize]);
        if c.ok {
            counts[(c.t_ns / width_ns).min(buckets - 1) as usize] += 1;
        }
    }
    let max_rate = per_f
        .values()
        .flat_map(|v| v.iter())
        .map(|&n| n as f64 / width_s)
        .fold(0.0, f64::max);
    let step = nice_step(max_rate.max(1.0) / 5.0);
    let frame = Frame::new(
        ns_to_s(end_ns),
        YScale::Linear {
            max: (max_rate.max(1.0) / step).ceil() * step,
        },
    );
    frame.open(&mut out, "throughput over time", "ok ops/s", faults);
    let mut legend = Vec::new();
    for (i, (f, counts)) in per_f.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut line = String::new();
        for (b, &n) in counts.iter().enumerate() {
            let x = frame.px(ns_to_s(b as u64 * width_ns + width_ns / 2));
            let _ = write!(line, "{x:.1},{:.1} ", frame.py(n as f64 / width_s));
        }
        let _ = write!(
            out,
            r#"<polyline class="rate" fill="none" stroke="{colour}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            line.trim_end(),
            esc(f)
        );
        legend.push((f.to_string(), colour, false));
    }
    frame.legend(&mut out, &legend);
    out.push_str("</svg>");
    out
}

/// How an operation takes part in a witness drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Linearized,
    Stuck,
    Concurrent,
    Other,
}

/// One bar of a witness drawing.
#[derive(Debug, Clone)]
pub(crate) struct WitnessOp {
    pub op: Operation,
    pub role: Role,
    /// 1-based position in the linearization, when linearized.
    pub step: Option<usize>,
    pub state_after: Option<Value>,
}

/// The operations to draw for a witness, and the first event index drawn. The window
/// runs from the invocation of the earliest of the prefix's last `max_steps` operations
/// (and the stuck one) to the stuck operation's completion; every operation of the key
/// overlapping it is drawn (at most `max_ops`), those invoked earlier clipped at the left.
pub(crate) fn witness_ops(
    w: &Witness,
    key_ops: &BTreeMap<usize, Operation>,
    max_steps: usize,
    max_ops: usize,
) -> (Vec<WitnessOp>, u64) {
    let step_of: BTreeMap<usize, (usize, &Value)> = w
        .prefix
        .iter()
        .enumerate()
        .map(|(i, s)| (s.op, (i + 1, &s.state)))
        .collect();
    let first_step = w.prefix.len().saturating_sub(max_steps);
    let lo = w.prefix[first_step..]
        .iter()
        .filter_map(|s| key_ops.get(&s.op))
        .map(|o| o.invoke_index)
        .chain([w.stuck.invoke_index])
        .min()
        .unwrap_or(w.stuck.invoke_index);
    let hi = w.stuck.complete_index.unwrap_or(u64::MAX);
    let overlaps = |op: &Operation| {
        let ends_after_lo = match op.complete_index {
            None => true,
            Some(c) => c >= lo,
        };
        op.invoke_index <= hi && ends_after_lo
    };
    let mut chosen: BTreeMap<usize, WitnessOp> = BTreeMap::new();
    let concurrent: BTreeMap<usize, &Operation> = w.concurrent.iter().map(|c| (c.id, c)).collect();
    let add = |op: &Operation, chosen: &mut BTreeMap<usize, WitnessOp>| {
        let (role, step, state_after) = if op.id == w.stuck.id {
            (Role::Stuck, None, None)
        } else if let Some((n, st)) = step_of.get(&op.id) {
            (Role::Linearized, Some(*n), Some((*st).clone()))
        } else if concurrent.contains_key(&op.id) {
            (Role::Concurrent, None, None)
        } else {
            (Role::Other, None, None)
        };
        chosen.entry(op.id).or_insert_with(|| WitnessOp {
            op: op.clone(),
            role,
            step,
            state_after,
        });
    };
    add(&w.stuck, &mut chosen);
    for c in &w.concurrent {
        add(c, &mut chosen);
    }
    for s in &w.prefix[first_step..] {
        if let Some(op) = key_ops.get(&s.op) {
            add(op, &mut chosen);
        }
    }
    for op in key_ops.values() {
        if chosen.len() >= max_ops {
            break;
        }
        if overlaps(op) {
            add(op, &mut chosen);
        }
    }
    (chosen.into_values().collect(), lo)
}

/// The witness as Porcupine draws it: one row per process, each operation a bar over its
/// interval (in event order, compressed so every event gets one slot), linearization
/// points numbered in order with the state after each, and the stuck operation
/// highlighted. Operations invoked before `lo` are clipped at the left edge.
pub(crate) fn witness_svg(ops: &[WitnessOp], lo: u64, anchor: &str) -> String {
    let mut out = String::new();
    if ops.is_empty() {
        return out;
    }
    let mut slots: Vec<u64> = ops
        .iter()
        .flat_map(|o| [Some(o.op.invoke_index), o.op.complete_index])
        .flatten()
        .filter(|&i| i >= lo)
        .collect();
    slots.sort_unstable();
    slots.dedup();
    // Slot -1 is the clipped past; slots.len() is "never returned".
    let slot_of = |i: u64| {
        if i < lo {
            -1.0
        } else {
            slots.binary_search(&i).unwrap_or_else(|e| e) as f64
        }
    };
    let open_end = slots.len() as f64;
    let processes: Vec<u64> = {
        let mut p: Vec<u64> = ops.iter().map(|o| o.op.process).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    // Fit the report's column (about 1040 px) when possible; scroll beyond that.
    let slot_w = ((1040.0 - 56.0 - 190.0) / (slots.len() as f64 + 3.0)).clamp(16.0, 80.0);
    let left = 56.0;
    let row_h = 60.0;
    let top = 34.0;
    let x = |slot: f64| left + (slot + 1.5) * slot_w;
    // Room on the right for the stuck operation's full label.
    let width = x(open_end) + slot_w + 190.0;
    let height = top + processes.len() as f64 * row_h + 8.0;
    let _ = write!(
        out,
        r#"<svg class="witness-svg" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" xmlns="http://www.w3.org/2000/svg">"#
    );
    for (row, p) in processes.iter().enumerate() {
        let y = top + row as f64 * row_h;
        let _ = write!(
            out,
            r#"<text class="lane" x="{:.1}" y="{:.1}" text-anchor="end">p{p}</text><line class="grid" x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
            left - 8.0,
            y + 22.0,
            y + row_h - 2.0,
            width - 4.0,
            y + row_h - 2.0
        );
    }
    if ops.iter().any(|o| o.op.invoke_index < lo) {
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="14" text-anchor="middle">earlier</text>"#,
            x(-1.0)
        );
    }
    // Linearization points: in order, each inside its operation's interval and after the
    // previous point, which a valid linearization always allows.
    let mut steps: Vec<&WitnessOp> = ops.iter().filter(|o| o.step.is_some()).collect();
    steps.sort_by_key(|o| o.step);
    let mut points: BTreeMap<usize, f64> = BTreeMap::new();
    let mut prev = -2.0f64;
    for o in &steps {
        let a = slot_of(o.op.invoke_index);
        let b = o.op.complete_index.map_or(open_end, slot_of);
        let p = (prev + 0.3).max(a + 0.25).min(b - 0.2).max(a);
        points.insert(o.op.id, p);
        prev = p;
    }
    for o in ops {
        let row = processes.binary_search(&o.op.process).unwrap_or(0);
        let y = top + row as f64 * row_h + 14.0;
        let clipped = o.op.invoke_index < lo;
        let a = if clipped {
            x(-1.0) - slot_w * 0.45
        } else {
            x(slot_of(o.op.invoke_index)) - slot_w * 0.3
        };
        let b =
            o.op.complete_index
                .map_or(x(open_end) + slot_w * 0.45, |c| {
                    x(slot_of(c)) + slot_w * 0.3
                });
        let class = match o.role {
            Role::Linearized => "wop lin",
            Role::Stuck => "wop stuck",
            Role::Concurrent => "wop conc",
            Role::Other => "wop other",
        };
        let open = if o.op.complete_index.is_none() {
            " open"
        } else {
            ""
        };
        let title = match (&o.step, &o.state_after) {
            (Some(s), Some(st)) => format!("{} — linearized #{s}, state after: {st}", o.op),
            _ if o.role == Role::Stuck => format!("{} — cannot be linearized", o.op),
            _ => o.op.to_string(),
        };
        let label = op_label(&o.op);
        let _ = write!(
            out,
            r##"<a href="#ev-{inv}"><g class="{class}{open}"><title>{title}</title><rect x="{a:.1}" y="{y:.1}" width="{w:.1}" height="22" rx="4"/><text x="{tx:.1}" y="{ty:.1}">{text}</text></g></a>"##,
            inv = o.op.invoke_index,
            title = esc(&title),
            w = (b - a).max(4.0),
            tx = a + 4.0,
            ty = y + 15.0,
            text = esc(&clip(&label, ((b - a - 6.0) / 6.6).max(1.0) as usize)),
        );
        if let (Some(p), Some(step)) = (points.get(&o.op.id), o.step) {
            let px = x(*p);
            let state = o
                .state_after
                .as_ref()
                .map_or(String::new(), |s| s.to_string());
            let _ = write!(
                out,
                r#"<g class="linpoint"><title>{}</title><line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}"/><circle cx="{px:.1}" cy="{:.1}" r="9"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{step}</text><text class="state" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
                esc(&format!("#{step}: {} → state {state}", o.op)),
                y - 4.0,
                y + 24.0,
                y - 9.0,
                y - 5.5,
                y + 35.0,
                esc(&clip(&state, 12)),
            );
        }
        if o.role == Role::Stuck {
            let _ = write!(
                out,
                r##"<a href="#{anchor}-detail"><text class="stuck-label" x="{:.1}" y="{:.1}">✗ {}</text><text class="stuck-why" x="{:.1}" y="{:.1}">cannot be placed</text></a>"##,
                b + 8.0,
                y + 10.0,
                esc(&clip(&label, 26)),
                b + 8.0,
                y + 24.0
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A short label for an operation bar: `f input → output`.
pub(crate) fn op_label(op: &Operation) -> String {
    let short = |v: &Value| clip(&v.to_string(), 24);
    match (&op.input, &op.output) {
        (i, o) if i == o => format!("{} {}", op.f, short(i)),
        (Value::Null, o) => format!("{} → {}", op.f, short(o)),
        (i, o) => format!("{} {} → {}", op.f, short(i), short(o)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"</script><b a="x">'&"#),
            "&lt;/script&gt;&lt;b a=&quot;x&quot;&gt;&#39;&amp;"
        );
    }

    /// EDN histories often have no `:time`: every operation sits at t = 0. This used to
    /// send the throughput chart's tick loop into a spin that ate all memory.
    #[test]
    fn histories_without_timestamps_get_a_note_not_a_chart() {
        let completions: Vec<Completion> = (0..200)
            .map(|i| Completion {
                t_ns: 0,
                f: if i % 2 == 0 {
                    "read".into()
                } else {
                    "write".into()
                },
                ok: true,
            })
            .collect();
        let svg = throughput_svg(&completions, 0, &[]);
        assert!(svg.contains("no timestamps"), "{svg}");
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(13.0), 20.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn stride_caps_and_is_deterministic() {
        let v: Vec<u32> = (0..10_000).collect();
        let s = stride(&v, 4000);
        assert!(s.len() <= 4000);
        assert_eq!(s, stride(&v, 4000));
        assert_eq!(s[1], 3);
    }

    #[test]
    fn latency_chart_downsamples_and_draws_quantiles() {
        let points: Vec<LatencyPoint> = (0..10_000u64)
            .map(|i| LatencyPoint {
                t_ns: i * 1_000_000,
                latency_ms: 1.0 + (i % 97) as f64,
                outcome: if i % 50 == 0 { "info" } else { "ok" },
            })
            .collect();
        let svg = latency_svg(&points, 10_000_000_000, &[]);
        let circles = svg.matches("<circle").count();
        assert!(circles <= MAX_POINTS && circles > 1000, "{circles}");
        assert_eq!(svg.matches("class=\"quantile\"").count(), 2);
        assert!(svg.contains("of 10000 points shown"));
    }
}
