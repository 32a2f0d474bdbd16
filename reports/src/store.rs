//! The run directory and the store: writing a run's report files, re-rendering a stored
//! run, and `store/index.html`.
//!
//! A run directory (`store/<test-name>/<YYYYmmddTHHMMSS>/`, README "Store layout") holds what the
//! harness recorded (`test.json`, `history.jsonl`, logs) and what this crate derives from
//! it (`results.json`, `report.html`, `junit.xml`, `summary.md`). This module writes only
//! the derived files, each atomically (a temporary file in the same directory, then a
//! rename), so a reader never sees half a report and a recorded file is never touched.
//!
//! Re-rendering is forgiving: a missing or truncated `history.jsonl` (a harness that was
//! killed mid-line) renders whatever is there, and the page says what is missing.

use crate::html::{render_report, ReportInput};
use crate::junit::junit_for_run;
use crate::results::{Results, Verdict, SCHEMA_VERSION};
use crate::summary::summary_markdown;
use crate::ReportError;
use maud::{html, PreEscaped, DOCTYPE};
use serde_json::Value;
use splitbrain_checker::formats;
use splitbrain_checker::history::{History, Operations, PairedHistory};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const RESULTS_JSON: &str = "results.json";
pub const REPORT_HTML: &str = "report.html";
pub const JUNIT_XML: &str = "junit.xml";
pub const SUMMARY_MD: &str = "summary.md";
pub const HISTORY_JSONL: &str = "history.jsonl";
pub const INDEX_HTML: &str = "index.html";
/// The harness's own files in a run directory (written by the driver, never here).
pub const TEST_JSON: &str = "test.json";
pub const SPLITBRAIN_LOG: &str = "splitbrain.log";
/// `test-all`'s JUnit file, in the store itself.
pub const TEST_ALL_JUNIT_XML: &str = "test-all-junit.xml";

/// The only files this module ever writes; anything else in a run directory belongs to
/// the user or the harness.
const DERIVED: [&str; 5] = [RESULTS_JSON, REPORT_HTML, JUNIT_XML, SUMMARY_MD, INDEX_HTML];

/// Writes `results.json`, `report.html`, `junit.xml` and `summary.md` into `run_dir`.
/// `history` is the run's history paired once (the one `results` was made from); `ops`
/// the operations the checkers saw, when it could be checked.
pub fn write_run_outputs(
    run_dir: &Path,
    results: &Results,
    history: &PairedHistory,
    ops: Option<&Operations>,
) -> Result<(), ReportError> {
    let json = serde_json::to_string_pretty(results)?;
    write_atomic(&run_dir.join(RESULTS_JSON), json.as_bytes())?;
    let input = ReportInput {
        results,
        history,
        ops,
        missing: Vec::new(),
    };
    write_derived(run_dir, &input)
}

/// Writes the files derived from `results.json`: the page, JUnit and the summary.
fn write_derived(run_dir: &Path, input: &ReportInput) -> Result<(), ReportError> {
    write_atomic(&run_dir.join(REPORT_HTML), render_report(input).as_bytes())?;
    write_atomic(
        &run_dir.join(JUNIT_XML),
        junit_for_run(input.results)?.as_bytes(),
    )?;
    write_atomic(
        &run_dir.join(SUMMARY_MD),
        summary_markdown(input.results).as_bytes(),
    )
}

/// What [`rerender`] rendered from.
#[derive(Debug, Clone)]
pub struct Rerendered {
    pub results: Results,
    /// What could not be read; also shown at the top of the page.
    pub missing: Vec<String>,
    pub events: usize,
}

/// Re-renders `report.html`, `junit.xml` and `summary.md` of a stored run from its
/// `results.json` and `history.jsonl` (for `splitbrain report RUN_DIR`). `results.json`
/// is left as recorded. Whatever cannot be read is listed on the page.
pub fn rerender(run_dir: &Path) -> Result<Rerendered, ReportError> {
    let (history, mut missing) = read_history_lenient(&run_dir.join(HISTORY_JSONL));
    let history = PairedHistory::new(history);
    let results_path = run_dir.join(RESULTS_JSON);
    let results = match fs::read(&results_path) {
        Ok(bytes) => parse_results(&results_path, &bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if history.events().is_empty() {
                return Err(ReportError::NothingToRender {
                    path: run_dir.to_path_buf(),
                });
            }
            missing.push(
                "results.json is missing: no verdict was recorded, so the run shows as unknown"
                    .into(),
            );
            let name = run_dir
                .parent()
                .and_then(|p| p.file_name())
                .map_or("run".into(), |n| n.to_string_lossy().into_owned());
            let mut r = Results::new(name, "", &history);
            r.verdict = Verdict::Unknown;
            r.exit_code = Verdict::Unknown.exit_code();
            r
        }
        Err(e) => return Err(ReportError::io(results_path, e)),
    };
    let input = ReportInput {
        results: &results,
        history: &history,
        ops: None,
        missing: missing.clone(),
    };
    write_derived(run_dir, &input)?;
    Ok(Rerendered {
        events: history.events().len(),
        results,
        missing,
    })
}

/// Parses a `results.json`, checking its schema version first so an old or newer file
/// gets a clear message rather than a field error.
pub fn parse_results(path: &Path, bytes: &[u8]) -> Result<Results, ReportError> {
    let json = |source| ReportError::Json {
        path: path.to_path_buf(),
        source,
    };
    let value: Value = serde_json::from_slice(bytes).map_err(json)?;
    let found = value
        .get("schema_version")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if found != u64::from(SCHEMA_VERSION) {
        return Err(ReportError::SchemaVersion {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let mut results: Results = serde_json::from_value(value).map_err(json)?;
    results.upgrade_old_names();
    Ok(results)
}

/// Reads a JSONL history with the checker's one JSONL reader, in its lenient mode: it
/// stops at the first line that is not an event, returning the events before it and a
/// note saying what was left out.
pub fn read_history_lenient(path: &Path) -> (History, Vec<String>) {
    let name = path
        .file_name()
        .map_or("history.jsonl".into(), |n| n.to_string_lossy().into_owned());
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (
                History::default(),
                vec![format!(
                    "{name} is missing: there are no operations to show"
                )],
            )
        }
        Err(e) => {
            return (
                History::default(),
                vec![format!("{name} could not be read: {e}")],
            )
        }
    };
    let partial = formats::read_jsonl_until_error(std::io::BufReader::new(file), &name);
    let read = partial.history.events.len();
    let notes = match &partial.error {
        None => Vec::new(),
        Some(err) => {
            let number = err.line().unwrap_or(read + 1);
            vec![if partial.incomplete_last_line {
                format!(
                    "{name} truncated at line {number} (its last line is incomplete); showing the {read} events before it"
                )
            } else {
                format!(
                    "{name} line {number} is not a valid event ({}); reading stopped there, showing the {read} events before it",
                    err.reason()
                )
            }]
        }
    };
    (partial.history, notes)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
/// Refuses any file name this crate does not own.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !DERIVED.contains(&name) {
        return Err(ReportError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "refusing to write a file the reports do not own",
            ),
        ));
    }
    replace_file(path, bytes).map_err(|e| ReportError::io(path, e))
}

/// Replaces `path` with `bytes` atomically: a temporary file in the same directory,
/// fsync, rename; a reader sees the old file or the new one, never half of one. No
/// ownership check: for the harness's own files ([`TEST_JSON`], [`TEST_ALL_JUNIT_XML`]);
/// report files go through [`write_atomic`].
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// One run as listed in the index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// Relative to the store, with `/` separators: `<test-name>/<timestamp>`.
    pub dir: String,
    pub name: String,
    pub started_at: String,
    pub workload: String,
    pub faults: String,
    /// `valid`, `invalid`, `unknown`, or `unreadable`.
    pub verdict: String,
    pub operations: usize,
    pub duration_s: f64,
    pub error: Option<String>,
}

/// Scans `store/<test-name>/<timestamp>/results.json`, newest first.
pub fn scan_store(store: &Path) -> Result<Vec<IndexEntry>, ReportError> {
    let mut entries = Vec::new();
    for test in sorted_dirs(store)? {
        for run in sorted_dirs(&test)? {
            let results_path = run.join(RESULTS_JSON);
            let bytes = match fs::read(&results_path) {
                Ok(b) => b,
                Err(_) => continue,
            };
            let dir = format!("{}/{}", file_name(&test), file_name(&run));
            entries.push(match parse_results(&results_path, &bytes) {
                Ok(r) => IndexEntry {
                    dir,
                    workload: config_text(&r.config, &["workload"]),
                    faults: config_text(&r.config, &["nemesis", "faults"]),
                    name: r.name,
                    started_at: r.started_at,
                    verdict: r.verdict.as_str().into(),
                    operations: r.stats.operations,
                    duration_s: r.duration_s,
                    error: None,
                },
                Err(e) => IndexEntry {
                    name: file_name(&test),
                    started_at: file_name(&run),
                    dir,
                    workload: String::new(),
                    faults: String::new(),
                    verdict: "unreadable".into(),
                    operations: 0,
                    duration_s: 0.0,
                    error: Some(e.to_string()),
                },
            });
        }
    }
    entries.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then_with(|| b.dir.cmp(&a.dir))
    });
    Ok(entries)
}

/// Writes `store/index.html` listing every run; returns how many runs it lists.
pub fn update_index(store: &Path) -> Result<usize, ReportError> {
    let entries = scan_store(store)?;
    let page = render_index(&entries);
    write_atomic(&store.join(INDEX_HTML), page.as_bytes())?;
    Ok(entries.len())
}

/// The index page for `entries` (already sorted).
pub fn render_index(entries: &[IndexEntry]) -> String {
    let count = |v: &str| entries.iter().filter(|e| e.verdict == v).count();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "splitbrain runs" }
                style { (PreEscaped(include_str!("assets/report.css"))) }
            }
            body {
                main {
                    header.top {
                        h1 { "splitbrain runs" }
                        span.meta { (entries.len()) " runs · " (count("valid")) " valid · " (count("invalid")) " invalid · " (count("unknown")) " unknown" }
                    }
                    section.card {
                        @if entries.is_empty() { p.empty { "No runs yet." } } @else {
                            table id="runs" {
                                thead { tr { th { "test" } th { "started" } th { "workload" } th { "faults" } th { "verdict" } th.num { "ops" } th.num { "duration" } th { "files" } } }
                                tbody {
                                    @for e in entries {
                                        tr.bad[e.verdict == "invalid" || e.verdict == "unreadable"].warnrow[e.verdict == "unknown"] {
                                            td { a href={(e.dir) "/report.html"} { (e.name) } }
                                            td { (e.started_at) }
                                            td { (e.workload) }
                                            td { (e.faults) }
                                            td {
                                                span class={"pill " (e.verdict)} { (e.verdict) }
                                                @if let Some(err) = &e.error { " " span.muted { (err) } }
                                            }
                                            td.num { (e.operations) }
                                            td.num { (format!("{:.1}s", e.duration_s)) }
                                            td {
                                                a href={(e.dir) "/report.html"} { "report" } " · "
                                                a href={(e.dir) "/results.json"} { "results" } " · "
                                                a href={(e.dir) "/history.jsonl"} { "history" } " · "
                                                a href={(e.dir) "/"} { "files" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

/// Directories directly under `dir` (not symlinks such as `store/latest`), sorted.
fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let read = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ReportError::io(dir, e)),
    };
    let mut out: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

/// The first of `fields` present in the configuration, as short text: a string, a list
/// joined with commas, or an object's `name`.
fn config_text(config: &Value, fields: &[&str]) -> String {
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
            Value::Object(m) => m
                .get("name")
                .map_or_else(|| m.keys().cloned().collect::<Vec<_>>().join(", "), text),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    fields
        .iter()
        .find_map(|f| config.get(*f))
        .map_or(String::new(), text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{invalid_results, valid_results};

    /// A fresh directory, removed when dropped (also when a test fails).
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    impl std::ops::Deref for TempDir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    fn temp_dir(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("splitbrain-reports-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write_history(dir: &Path, history: &PairedHistory) -> String {
        let text: String = history
            .events()
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        fs::write(dir.join(HISTORY_JSONL), &text).unwrap();
        text
    }

    #[test]
    fn writes_outputs_and_never_touches_the_history() {
        let dir = temp_dir("outputs");
        let (r, h) = invalid_results();
        let text = write_history(&dir, &h);
        write_run_outputs(&dir, &r, &h, None).unwrap();
        for f in [RESULTS_JSON, REPORT_HTML, JUNIT_XML, SUMMARY_MD] {
            assert!(dir.join(f).is_file(), "{f}");
        }
        assert_eq!(fs::read_to_string(dir.join(HISTORY_JSONL)).unwrap(), text);
        assert!(write_atomic(&dir.join(HISTORY_JSONL), b"x").is_err());
        let back = parse_results(
            &dir.join(RESULTS_JSON),
            &fs::read(dir.join(RESULTS_JSON)).unwrap(),
        )
        .unwrap();
        assert_eq!(back, r);
        // No temporary files are left behind.
        let names: Vec<String> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    }

    #[test]
    fn rerender_of_a_truncated_history_says_what_is_missing() {
        let dir = temp_dir("truncated");
        let (r, h) = valid_results();
        write_run_outputs(&dir, &r, &h, None).unwrap();
        let text = write_history(&dir, &h);
        // Cut the file in the middle of line 101.
        let cut: usize = text.lines().take(100).map(|l| l.len() + 1).sum::<usize>() + 20;
        fs::write(dir.join(HISTORY_JSONL), &text[..cut]).unwrap();
        let out = rerender(&dir).unwrap();
        assert_eq!(out.events, 100);
        assert_eq!(out.missing.len(), 1);
        assert!(
            out.missing[0].contains("truncated at line 101"),
            "{:?}",
            out.missing
        );
        let page = fs::read_to_string(dir.join(REPORT_HTML)).unwrap();
        assert!(page.contains("history.jsonl truncated at line 101"));
        // A bad line in the middle stops reading there, too.
        let mut lines: Vec<&str> = text.lines().collect();
        lines[5] = "{\"index\": oops";
        fs::write(dir.join(HISTORY_JSONL), lines.join("\n") + "\n").unwrap();
        let out = rerender(&dir).unwrap();
        assert_eq!(out.events, 5);
        assert!(
            out.missing[0].contains("line 6 is not a valid event"),
            "{:?}",
            out.missing
        );
    }

    #[test]
    fn rerender_without_history_or_results() {
        let dir = temp_dir("missing");
        let (r, h) = valid_results();
        write_run_outputs(&dir, &r, &h, None).unwrap();
        let out = rerender(&dir).unwrap();
        assert!(
            out.missing[0].contains("history.jsonl is missing"),
            "{:?}",
            out.missing
        );
        let page = fs::read_to_string(dir.join(REPORT_HTML)).unwrap();
        assert!(page.contains("history.jsonl is missing"));
        fs::remove_file(dir.join(RESULTS_JSON)).unwrap();
        assert!(matches!(
            rerender(&dir),
            Err(ReportError::NothingToRender { .. })
        ));
        write_history(&dir, &h);
        let out = rerender(&dir).unwrap();
        assert_eq!(out.results.verdict, Verdict::Unknown);
    }

    #[test]
    fn rejects_other_schema_versions() {
        let err = parse_results(Path::new("r.json"), br#"{"schema_version": 7}"#).unwrap_err();
        assert!(err.to_string().contains("schema_version 7"), "{err}");
    }

    #[test]
    fn index_lists_runs_newest_first() {
        let store = temp_dir("index");
        let (mut v, h) = valid_results();
        let (i, _) = invalid_results();
        v.started_at = "2026-11-26T16:00:00Z".into();
        let a = store.join("register/20261126T150000");
        let b = store.join("register/20261126T160000");
        let c = store.join("broken/20261126T170000");
        for d in [&a, &b, &c] {
            fs::create_dir_all(d).unwrap();
        }
        write_run_outputs(&a, &i, &h, None).unwrap();
        write_run_outputs(&b, &v, &h, None).unwrap();
        fs::write(c.join(RESULTS_JSON), "{not json").unwrap();
        assert_eq!(update_index(&store).unwrap(), 3);
        let entries = scan_store(&store).unwrap();
        assert_eq!(entries[0].dir, "broken/20261126T170000");
        assert_eq!(entries[0].verdict, "unreadable");
        assert_eq!(entries[1].dir, "register/20261126T160000");
        assert_eq!(entries[1].workload, "register");
        assert_eq!(entries[1].faults, "partition, kill, clock");
        let page = fs::read_to_string(store.join(INDEX_HTML)).unwrap();
        assert!(page.contains("register/20261126T150000/report.html"));
    }
}
