//! The binary's side of the reports: `check --report`, `splitbrain report RUN_DIR`,
//! `splitbrain serve`, and the `test-all` JUnit file. Rendering itself lives in the
//! `splitbrain-reports` crate; this module only gathers inputs and maps errors.

use anyhow::Context;
use clap::Args;
use splitbrain_checker::{Analysis, Operations, PairedHistory};
use splitbrain_reports::{
    html, junit, results as rr, serve as report_serve, store as report_store,
};
use std::path::{Path, PathBuf};

use crate::run::config::TestConfig;
use crate::run::RunOutcome;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run folder (`store/<test>/<time>`), or `store/latest`.
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store to serve.
    #[arg(value_name = "STORE", default_value = "store")]
    pub store: PathBuf,
    /// Port on 127.0.0.1.
    #[arg(long, value_name = "P", default_value_t = 8080)]
    pub port: u16,
}

/// What `check --report` has for one history.
pub struct CheckReport<'a> {
    pub path: &'a str,
    pub error: Option<&'a str>,
    pub analysis: Option<&'a Analysis>,
    /// The history, paired once by `check`.
    pub history: Option<&'a PairedHistory>,
    pub ops: Option<&'a Operations>,
}

/// Writes the HTML report for a history checked offline.
pub fn write_check_report(out: &Path, c: CheckReport<'_>) -> anyhow::Result<()> {
    let empty = PairedHistory::default();
    let history = c.history.unwrap_or(&empty);
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut results = rr::Results::new(c.path, now, history);
    results.config = serde_json::json!({ "history": c.path });
    if let Some(analysis) = c.analysis {
        results.set_analysis(analysis);
    }
    if let Some(e) = c.error {
        results.notes.push(format!("could not check: {e}"));
    }
    results.settle_verdict();
    let html = html::render_report(&html::ReportInput {
        results: &results,
        history,
        ops: c.ops,
        missing: Vec::new(),
    });
    if out.exists() && !is_generated_report(out) {
        anyhow::bail!(
            "{} exists and is not a splitbrain report; refusing to overwrite it",
            out.display()
        );
    }
    std::fs::write(out, html).with_context(|| format!("writing {}", out.display()))
}

/// Only files we generated ourselves may be overwritten by `--report`.
pub fn is_generated_report(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .map(|s| s.contains("<meta name=\"generator\" content=\"splitbrain"))
        .unwrap_or(false)
}

pub fn report(args: ReportArgs) -> anyhow::Result<i32> {
    if !args.run_dir.is_dir() {
        eprintln!(
            "error: {} is not a run folder (expected store/<test>/<time>)",
            args.run_dir.display()
        );
        return Ok(i32::from(crate::EXIT_BAD_INPUT));
    }
    let outcome = report_store::rerender(&args.run_dir)
        .with_context(|| format!("re-rendering {}", args.run_dir.display()))?;
    println!(
        "{}",
        args.run_dir
            .join(splitbrain_reports::store::REPORT_HTML)
            .display()
    );
    for note in &outcome.missing {
        println!("note: {note}");
    }
    Ok(0)
}

pub fn serve(args: ServeArgs) -> anyhow::Result<i32> {
    if !args.store.is_dir() {
        eprintln!(
            "error: {} is not a folder; run `splitbrain test` first or name the store",
            args.store.display()
        );
        return Ok(i32::from(crate::EXIT_BAD_INPUT));
    }
    if let Err(e) = report_store::update_index(&args.store) {
        eprintln!("warning: updating the index: {e}");
    }
    println!(
        "serving {} on http://127.0.0.1:{}/ (Ctrl-C to stop)",
        args.store.display(),
        args.port
    );
    static SHUTDOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    report_serve::serve(&args.store, args.port, &SHUTDOWN)
        .with_context(|| format!("serving on 127.0.0.1:{}", args.port))?;
    Ok(0)
}

/// `store/test-all-junit.xml`: one test case per run.
pub fn write_test_all_junit(
    store: &Path,
    outcomes: &[(TestConfig, anyhow::Result<RunOutcome>)],
) -> anyhow::Result<()> {
    let results: Vec<&rr::Results> = outcomes
        .iter()
        .filter_map(|(_, o)| o.as_ref().ok().map(|o| &o.results))
        .collect();
    let xml = junit::junit_for_runs(&results)?;
    std::fs::create_dir_all(store)?;
    crate::run::store::write_atomic(
        &store.join(splitbrain_reports::store::TEST_ALL_JUNIT_XML),
        xml.as_bytes(),
    )
}
