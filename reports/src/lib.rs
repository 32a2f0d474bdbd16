//! splitbrain-reports: turns a history and its verdicts into `report.html`,
//! `results.json`, `junit.xml` and the store index.
//!
//! Not yet written: see the reports issue.
