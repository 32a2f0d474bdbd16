//! Drawing a transactional anomaly's dependency cycle as an inline SVG.
//!
//! An Elle-style anomaly (G0, G1c, G-single, G2-item, ...) is a cycle of transactions
//! joined by dependency edges; a person verifies it by following the cycle edge by edge.
//! So the drawing puts the cycle's transactions on a circle, in cycle order, clockwise
//! from the top, and draws each edge as an arrow to the next transaction, labelled with
//! its kind (`ww`, `wr`, `rw`, `process`, `realtime`) and the key it is about. Hovering
//! an edge shows why it exists; a transaction links to its invocation in the raw
//! history (`#ev-<index>`).
//!
//! Edges bow outwards, away from the circle's centre, so that the two edges of a
//! two-transaction cycle (which would otherwise lie on top of each other) and the labels
//! stay apart. Kept apart from [`crate::charts`] because it draws a graph, not a chart
//! over time. Like every drawing here, all text from the history goes through
//! [`esc`], and output is deterministic.

use crate::charts::{clip, esc};
use splitbrain_checker::elle::CycleStep;
use std::f64::consts::PI;
use std::fmt::Write;

/// Cycles longer than this are listed, not drawn: a circle of more transactions has
/// labels too small to read.
pub(crate) const MAX_DRAWN: usize = 24;

/// Radius of a transaction's circle.
const NODE_R: f64 = 24.0;
/// Room around the circle of transactions for edge labels.
const PAD: f64 = 72.0;

/// The edge kinds with their colours (also used by the legend), in the checker's order.
pub(crate) const EDGE_KINDS: [(&str, &str); 5] = [
    ("ww", "#cf222e"),
    ("wr", "#0969da"),
    ("rw", "#bc4c00"),
    ("process", "#57606a"),
    ("realtime", "#8250df"),
];

fn colour(kind: &str) -> &'static str {
    EDGE_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("#57606a", |(_, c)| c)
}

/// The label of an edge: its kind and, for ww/wr/rw, the key (`rw 3`).
pub(crate) fn edge_label(step: &CycleStep) -> String {
    match &step.key {
        Some(k) => format!("{} {}", step.edge_to_next, clip(&k.to_string(), 24)),
        None => step.edge_to_next.clone(),
    }
}

/// The cycle as an SVG, or an empty string when it is empty or longer than
/// [`MAX_DRAWN`]. `anchor` makes the arrow markers' ids unique on the page.
pub(crate) fn cycle_svg(steps: &[CycleStep], anchor: &str) -> String {
    let n = steps.len();
    let mut out = String::new();
    if n == 0 || n > MAX_DRAWN {
        return out;
    }
    let radius = (n as f64 * 20.0).clamp(70.0, 420.0);
    let size = 2.0 * (radius + PAD);
    let centre = radius + PAD;
    let pos = |i: usize| {
        let a = -PI / 2.0 + 2.0 * PI * i as f64 / n as f64;
        (centre + radius * a.cos(), centre + radius * a.sin())
    };
    let anchor = esc(anchor);
    let _ = write!(
        out,
        r#"<svg class="cycle-svg" viewBox="0 0 {size:.0} {size:.0}" width="{size:.0}" height="{size:.0}" role="img" aria-label="dependency cycle of {n} transactions" xmlns="http://www.w3.org/2000/svg"><defs>"#
    );
    for (kind, c) in EDGE_KINDS {
        let _ = write!(
            out,
            r#"<marker id="{anchor}-arr-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>"#
        );
    }
    out.push_str("</defs>");

    // Edges first, so transactions are drawn over their ends.
    for (i, step) in steps.iter().enumerate() {
        let (x1, y1) = pos(i);
        let (x2, y2) = pos((i + 1) % n);
        let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
        let chord = ((x2 - x1).powi(2) + (y2 - y1).powi(2)).sqrt().max(1.0);
        // Bow outwards; a two-cycle's chord runs through the centre, so there each edge
        // bows to its own left instead, which puts the two on opposite sides.
        let (nx, ny, bulge) = if n == 2 {
            ((y2 - y1) / chord, -(x2 - x1) / chord, 0.35 * chord)
        } else {
            let (ox, oy) = (mx - centre, my - centre);
            let len = (ox * ox + oy * oy).sqrt().max(1.0);
            (ox / len, oy / len, 0.2 * chord)
        };
        let (cx, cy) = (mx + nx * bulge, my + ny * bulge);
        let towards = |(px, py): (f64, f64), r: f64| {
            let (dx, dy) = (cx - px, cy - py);
            let d = (dx * dx + dy * dy).sqrt().max(1.0);
            (px + dx / d * r, py + dy / d * r)
        };
        let (sx, sy) = towards((x1, y1), NODE_R);
        let (ex, ey) = towards((x2, y2), NODE_R + 2.0);
        // The curve's midpoint, pushed a little further out for the label.
        let (lx, ly) = (
            0.25 * sx + 0.5 * cx + 0.25 * ex + nx * 12.0,
            0.25 * sy + 0.5 * cy + 0.25 * ey + ny * 12.0,
        );
        let kind = esc(&step.edge_to_next);
        let c = colour(&step.edge_to_next);
        let marker = if EDGE_KINDS.iter().any(|(k, _)| *k == step.edge_to_next) {
            format!(r#" marker-end="url(#{anchor}-arr-{kind})""#)
        } else {
            String::new()
        };
        let dash = if matches!(step.edge_to_next.as_str(), "process" | "realtime") {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<g class="cedge {kind}"><title>{title}</title><path d="M{sx:.1},{sy:.1} Q{cx:.1},{cy:.1} {ex:.1},{ey:.1}" fill="none" stroke="{c}" stroke-width="2"{dash}{marker}/><text class="elabel" x="{lx:.1}" y="{ly:.1}" text-anchor="middle" dominant-baseline="middle" style="fill:{c}">{label}</text></g>"#,
            title = esc(&clip(&step.reason, 400)),
            label = esc(&edge_label(step)),
        );
    }
    for (i, step) in steps.iter().enumerate() {
        let (x, y) = pos(i);
        let _ = write!(
            out,
            r##"<a href="#ev-{ev}"><g class="cnode"><title>T{t}: process {p}, invoked at event {ev}</title><circle cx="{x:.1}" cy="{y:.1}" r="{NODE_R}"/><text x="{x:.1}" y="{ty:.1}" text-anchor="middle">T{t}</text><text class="sub" x="{x:.1}" y="{sy:.1}" text-anchor="middle">p{p}</text></g></a>"##,
            ev = step.invoke_index,
            t = step.txn,
            p = step.process,
            ty = y - 1.0,
            sy = y + 12.0,
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitbrain_checker::history::Key;

    fn step(txn: usize, edge: &str, key: Option<Key>, reason: &str) -> CycleStep {
        CycleStep {
            txn,
            process: txn as u64 % 3,
            invoke_index: txn as u64 * 2,
            edge_to_next: edge.into(),
            key,
            reason: reason.into(),
        }
    }

    #[test]
    fn draws_every_transaction_and_labelled_edge() {
        let steps = vec![
            step(1, "rw", Some(Key::Int(3)), "T1 read key 3 without 7"),
            step(
                4,
                "wr",
                Some(Key::Str("x".into())),
                "T4 appended 2 to key x",
            ),
            step(9, "realtime", None, "T9 completed before T1 was invoked"),
        ];
        let svg = cycle_svg(&steps, "anomaly-0");
        assert_eq!(svg.matches("class=\"cnode\"").count(), 3);
        assert_eq!(svg.matches(" Q").count(), 3, "one curve per edge");
        for text in [">T1<", ">T4<", ">T9<", ">rw 3<", ">wr x<", ">realtime<"] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(svg.contains("href=\"#ev-8\""));
        assert!(svg.contains("marker-end=\"url(#anomaly-0-arr-rw)\""));
        assert!(svg.contains("<title>T1 read key 3 without 7</title>"));
        assert!(
            svg.contains("stroke-dasharray"),
            "realtime edges are dashed"
        );
    }

    #[test]
    fn two_cycles_bow_apart_and_text_is_escaped() {
        let steps = vec![
            step(1, "wr", Some(Key::Str("<b>".into())), "a <script>"),
            step(2, "wr", Some(Key::Int(1)), "b"),
        ];
        let svg = cycle_svg(&steps, "a\"x");
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("a&quot;x-arr-wr"));
        // The two edges' control points lie on opposite sides of the chord.
        let controls: Vec<f64> = svg
            .split(" Q")
            .skip(1)
            .map(|s| s.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(controls.len(), 2);
        assert!((controls[0] - controls[1]).abs() > 40.0, "{controls:?}");
        assert_eq!(svg, cycle_svg(&steps, "a\"x"), "deterministic");
    }

    #[test]
    fn empty_and_overlong_cycles_are_not_drawn() {
        assert!(cycle_svg(&[], "a").is_empty());
        let long: Vec<_> = (0..=MAX_DRAWN)
            .map(|i| step(i, "ww", Some(Key::Int(0)), ""))
            .collect();
        assert!(cycle_svg(&long, "a").is_empty());
        assert!(!cycle_svg(&long[..MAX_DRAWN], "a").is_empty());
    }
}
