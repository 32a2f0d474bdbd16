//! Renders the report of a synthetic register run with many operations, to measure
//! rendering time and page size and to try the timeline's responsiveness by hand:
//!
//! ```sh
//! cargo run --release -p splitbrain-reports --example large_report -- /tmp/large 100000
//! ```
//!
//! Writes `<dir>/report.html` (and the other run outputs) and prints the timings.

use splitbrain_checker::PairedHistory;
use splitbrain_reports::results::Results;
use splitbrain_reports::store::write_run_outputs;
use splitbrain_reports::testutil::{attach_linearizability, register_history};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "large-report".into()));
    let ops: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("{}: {e}", dir.display());
        std::process::exit(254);
    }
    let t = Instant::now();
    let history = register_history(1, ops, 20);
    let generated = t.elapsed();
    let t = Instant::now();
    let history = PairedHistory::new(history);
    let mut results = Results::new("large", "2026-11-26T15:00:00Z", &history);
    attach_linearizability(&mut results, &history);
    let checked = t.elapsed();
    let t = Instant::now();
    if let Err(e) = write_run_outputs(&dir, &results, &history, None) {
        eprintln!("{e}");
        std::process::exit(255);
    }
    let rendered = t.elapsed();
    let size = std::fs::metadata(dir.join("report.html")).map_or(0, |m| m.len());
    println!(
        "{} events, {ops} operations: generated in {generated:.2?}, stats+check in {checked:.2?}, outputs written in {rendered:.2?}; report.html is {:.1} MB ({} verdict)",
        history.events().len(),
        size as f64 / 1e6,
        results.verdict
    );
}
