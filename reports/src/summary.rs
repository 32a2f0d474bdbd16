//! `summary.md`: a few Markdown lines for a CI job summary (GitHub's
//! `$GITHUB_STEP_SUMMARY` and the like): the verdict, each checker, the witness in one
//! line, the seed and the reproduction command, and operation counts.
//!
//! Values from the history go inside code spans or are escaped, so a history cannot
//! inject Markdown or HTML into a CI page.

use crate::results::{Results, Verdict};

/// The Markdown summary of one run.
pub fn summary_markdown(r: &Results) -> String {
    let icon = match r.verdict {
        Verdict::Valid => "✅",
        Verdict::Invalid => "❌",
        Verdict::Unknown => "⚠️",
    };
    let mut out = format!(
        "### {icon} {}: **{}**\n\n{}\n\n",
        md_escape(&r.name),
        r.verdict,
        md_escape(&r.headline())
    );
    if !r.checkers.is_empty() {
        out.push_str("| checker | verdict | summary |\n|---|---|---|\n");
        for c in &r.checkers {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                md_escape(&c.name),
                c.verdict,
                md_escape(&c.summary)
            ));
        }
        out.push('\n');
    }
    if let Some(l) = &r.linearizability {
        for k in l.keys.iter().filter_map(|k| k.witness.as_ref()).take(5) {
            out.push_str(&format!("- witness: {}\n", code(&k.summary())));
        }
        let invalid = l.keys.iter().filter(|k| k.witness.is_some()).count();
        if invalid > 5 {
            out.push_str(&format!("- … and {} more invalid keys\n", invalid - 5));
        }
    }
    let ok: usize = r.stats.by_f.iter().map(|f| f.ok).sum();
    let fail: usize = r.stats.by_f.iter().map(|f| f.fail).sum();
    let info: usize = r.stats.by_f.iter().map(|f| f.info + f.pending).sum();
    out.push_str(&format!(
        "- {} operations ({ok} ok, {fail} fail, {info} info) in {:.1}s, {} fault window(s)\n",
        r.stats.operations,
        r.duration_s,
        r.stats.faults.len()
    ));
    if let Some(seed) = r.seed {
        out.push_str(&format!("- seed: `{seed}`\n"));
    }
    if r.partial {
        out.push_str("- the run was interrupted: this covers only part of it\n");
    }
    if let Some(cmd) = &r.reproduce {
        out.push_str(&format!(
            "\nReproduce:\n\n```sh\n{}\n```\n",
            cmd.replace("```", "'''")
        ));
    }
    out
}

/// Escapes characters that Markdown or HTML would interpret.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code span that holds any text (a fence longer than any backtick run inside).
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    format!("{fence} {s} {fence}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::invalid_results;

    #[test]
    fn summary_has_verdict_witness_and_reproduction() {
        let (r, _) = invalid_results();
        let md = summary_markdown(&r);
        assert!(md.contains("**invalid**"), "{md}");
        assert!(md.contains("witness:"), "{md}");
        assert!(md.contains("```sh\nsplitbrain test"), "{md}");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(md_escape("<b>|x*"), "&lt;b&gt;\\|x\\*");
        assert_eq!(code("a`b"), "`` a`b ``");
    }
}
