//! Drawing the consistency-model lattice as an inline SVG, with what a history did to it.
//!
//! A transactional check answers "which isolation levels does this history rule out?",
//! and the answer only makes sense against the lattice: ruling out repeatable read
//! also rules out serializable, yet leaves snapshot isolation standing. So the report
//! draws every model the checker knows (from `splitbrain_checker::elle::models`), in
//! layers by strength (a model sits above every model it implies; strict-serializable
//! on top), with an arrow down to each model it directly implies. Models the history
//! rules out are red (the weakest of them, Elle's `not`, darker and bold), the strongest
//! models still possible green, models the check could not judge (their anomalies were
//! not searched for) dashed; the checked models have a thick outline.
//!
//! Separate from [`crate::cycles`], which draws one anomaly's cycle. Deterministic, and
//! every name is escaped.

use crate::charts::esc;
use splitbrain_checker::elle::models::lattice_nodes;
use std::fmt::Write;

const BOX_W: f64 = 218.0;
const BOX_H: f64 = 26.0;
const GAP_X: f64 = 14.0;
const GAP_Y: f64 = 30.0;
const PAD: f64 = 10.0;

/// What the history says about each model, by name.
pub(crate) struct Marks<'a> {
    pub ruled_out: &'a [String],
    pub not: &'a [String],
    pub strongest: &'a [String],
    pub checked: &'a [String],
    /// Models the check judged; empty means all.
    pub judged: &'a [String],
}

/// The lattice as an SVG.
pub(crate) fn lattice_svg(marks: &Marks<'_>) -> String {
    let nodes = lattice_nodes();
    let index = |name: &str| nodes.iter().position(|n| n.name == name);
    // Layer = the longest chain of implications below a model (the table lists a model
    // after everything it implies, so one pass suffices).
    let mut layer = vec![0usize; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for m in &n.implies {
            if let Some(j) = index(m) {
                layer[i] = layer[i].max(layer[j] + 1);
            }
        }
    }
    let top = layer.iter().copied().max().unwrap_or(0);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); top + 1];
    for (i, &l) in layer.iter().enumerate() {
        rows[l].push(i);
    }
    let widest = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let width = PAD * 2.0 + widest as f64 * BOX_W + (widest - 1) as f64 * GAP_X;
    let height = PAD * 2.0 + (top + 1) as f64 * BOX_H + top as f64 * GAP_Y;
    let mut pos = vec![(0.0, 0.0); nodes.len()];
    for (l, row) in rows.iter_mut().enumerate() {
        // Fewer crossings: each model sits near the middle of the models it implies
        // (placed already, below it); ties keep the table's order.
        if l > 0 {
            let centre = |i: usize| {
                let xs: Vec<f64> = nodes[i]
                    .implies
                    .iter()
                    .filter_map(|m| index(m))
                    .map(|j| pos[j].0)
                    .collect();
                if xs.is_empty() {
                    0.0
                } else {
                    xs.iter().sum::<f64>() / xs.len() as f64
                }
            };
            let mut keyed: Vec<(f64, usize)> = row.iter().map(|&i| (centre(i), i)).collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            *row = keyed.into_iter().map(|(_, i)| i).collect();
        }
        let row_w = row.len() as f64 * BOX_W + row.len().saturating_sub(1) as f64 * GAP_X;
        let x0 = (width - row_w) / 2.0;
        // Strongest on top.
        let y = PAD + (top - l) as f64 * (BOX_H + GAP_Y);
        for (k, &i) in row.iter().enumerate() {
            pos[i] = (x0 + k as f64 * (BOX_W + GAP_X), y);
        }
    }
    let has = |list: &[String], name: &str| list.iter().any(|m| m == name);
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg class="lattice" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="consistency model lattice"><defs><marker id="lattice-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker></defs>"##
    );
    for (i, n) in nodes.iter().enumerate() {
        for m in &n.implies {
            let Some(j) = index(m) else { continue };
            let (x1, y1) = (pos[i].0 + BOX_W / 2.0, pos[i].1 + BOX_H);
            let (x2, y2) = (pos[j].0 + BOX_W / 2.0, pos[j].1);
            let _ = write!(
                out,
                r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="#c8ccd1" stroke-width="1" marker-end="url(#lattice-arrow)"/>"##
            );
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        let (x, y) = pos[i];
        let name = n.name.as_str();
        let judged = marks.judged.is_empty() || has(marks.judged, name);
        let (fill, stroke, text, state) = if has(marks.not, name) {
            ("#ffd8d3", "#cf222e", "#82071e", "violated (weakest)")
        } else if has(marks.ruled_out, name) {
            ("#ffebe9", "#e5534b", "#a40e26", "ruled out")
        } else if has(marks.strongest, name) {
            ("#dafbe1", "#1a7f37", "#0f5323", "strongest still possible")
        } else if judged {
            ("#f6f8fa", "#afb8c1", "#24292f", "not ruled out")
        } else {
            (
                "#ffffff",
                "#afb8c1",
                "#57606a",
                "not judged (its anomalies were not searched for)",
            )
        };
        let width = if has(marks.checked, name) { 3.0 } else { 1.0 };
        let dash = if judged {
            ""
        } else {
            r#" stroke-dasharray="4 3""#
        };
        let weight = if has(marks.not, name) || has(marks.checked, name) {
            "700"
        } else {
            "400"
        };
        let aliases = if n.aliases.is_empty() {
            String::new()
        } else {
            format!(" ({})", n.aliases.join(", "))
        };
        let checked = if has(marks.checked, name) {
            "; checked"
        } else {
            ""
        };
        let _ = write!(
            out,
            r##"<g class="model" data-model="{m}" data-state="{state}"><title>{m}{a}: {state}{checked}</title><rect x="{x:.1}" y="{y:.1}" width="{BOX_W}" height="{BOX_H}" rx="5" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/><text x="{tx:.1}" y="{ty:.1}" text-anchor="middle" font-size="12" font-weight="{weight}" fill="{text}">{m}</text></g>"##,
            m = esc(name),
            a = esc(&aliases),
            tx = x + BOX_W / 2.0,
            ty = y + BOX_H / 2.0 + 4.0,
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_every_model_once_and_is_deterministic() {
        let ruled = vec![
            "repeatable-read".to_string(),
            "serializable".to_string(),
            "strong-session-serializable".to_string(),
            "strict-serializable".to_string(),
        ];
        let not = vec!["repeatable-read".to_string()];
        let strongest = vec![
            "update-serializable".to_string(),
            "strong-snapshot-isolation".to_string(),
        ];
        let checked = vec!["strict-serializable".to_string()];
        let marks = Marks {
            ruled_out: &ruled,
            not: &not,
            strongest: &strongest,
            checked: &checked,
            judged: &[],
        };
        let svg = lattice_svg(&marks);
        assert_eq!(svg, lattice_svg(&marks));
        assert_eq!(
            svg.matches("<g class=\"model\"").count(),
            lattice_nodes().len()
        );
        assert!(svg.contains(r#"data-model="repeatable-read" data-state="violated (weakest)""#));
        assert!(svg.contains(r#"data-model="serializable" data-state="ruled out""#));
        assert!(svg.contains(
            r#"data-model="strong-snapshot-isolation" data-state="strongest still possible""#
        ));
        assert!(svg.contains(r#"data-model="snapshot-isolation" data-state="not ruled out""#));
        // Strict serializability is drawn above everything (smallest y).
        let y_of = |m: &str| {
            let at = svg.find(&format!("data-model=\"{m}\"")).unwrap();
            let rest = &svg[at..];
            let y = rest.split("y=\"").nth(1).unwrap();
            y.split('"').next().unwrap().parse::<f64>().unwrap()
        };
        assert!(y_of("strict-serializable") < y_of("serializable"));
        assert!(y_of("serializable") < y_of("read-committed"));
        assert!(y_of("read-committed") < y_of("read-uncommitted"));
    }
}
