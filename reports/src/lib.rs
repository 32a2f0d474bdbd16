//! splitbrain-reports: turns a history and its verdicts into the files a person and a CI
//! system read after a run.
//!
//! Layout:
//! - [`results`]: the stable `results.json` schema and the statistics computed from a
//!   paired history ([`results::compute_stats`]). The checks' verdicts and details in it are
//!   the checker's own types (`splitbrain_checker::Verdict`, `Analysis` and the results
//!   inside): this crate renders what the checker says.
//! - [`html`]: `report.html`, one self-contained page (inline CSS, JS, SVG and data):
//!   verdict, configuration, a zoomable timeline, latency and throughput charts,
//!   witnesses drawn as Porcupine does, transactional anomalies with their dependency
//!   cycles drawn as graphs beside the consistency-model lattice with the models the
//!   history rules out marked, convergence and availability tables.
//! - [`junit`]: `junit.xml`, one test case per checker (or per run for `test-all`).
//! - [`summary`]: `summary.md`, a few lines for a CI job summary.
//! - [`store`]: writing all of the above into a run directory atomically, re-rendering a
//!   stored run, and `store/index.html`.
//! - [`serve`]: a small static file server for the store, on 127.0.0.1 only.
//!
//! Rendering is deterministic: the same inputs give byte-identical files, so reports can
//! be diffed and cached. Nothing here reads the clock.
//!
//! ```
//! use splitbrain_checker::history::{History, PairedHistory};
//! use splitbrain_reports::{html, results::{Results, CheckerResult, Verdict}};
//! // Paired once; the statistics and the page both use these pairs.
//! let history = PairedHistory::new(History::default());
//! let mut results = Results::new("demo", "2026-01-01T00:00:00Z", &history);
//! results.checkers.push(CheckerResult {
//!     name: "linearizability".into(),
//!     verdict: Verdict::Valid,
//!     summary: "no operations".into(),
//! });
//! results.settle_verdict();
//! let page = html::render_report(&html::ReportInput::new(&results, &history));
//! assert!(page.starts_with("<!DOCTYPE html>"));
//! ```

mod charts;
mod cycles;
#[cfg(test)]
mod golden_tests;
pub mod html;
pub mod junit;
mod lattice;
pub mod results;
pub mod serve;
pub mod store;
pub mod summary;

use std::path::PathBuf;

/// Why a report could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid results.json: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: results.json has schema_version {found}; this splitbrain reads version {supported}")]
    SchemaVersion {
        path: PathBuf,
        found: u64,
        supported: u32,
    },
    #[error("{path}: nothing to render: neither results.json nor history.jsonl could be read")]
    NothingToRender { path: PathBuf },
    #[error("could not serialise junit.xml: {0}")]
    Junit(String),
    #[error("{0}")]
    Serialize(#[from] serde_json::Error),
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.into(),
            source,
        }
    }
}

#[doc(hidden)]
pub mod testutil;
