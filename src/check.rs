//! `splitbrain check`: offline linearizability checking of recorded histories.
//!
//! Reads one or more histories (files, or directories searched recursively), detects
//! each one's format unless told, checks it against a model, and prints a human summary
//! (or JSON with `--json`). The exit code is the worst verdict: 0 valid, 1 invalid,
//! 2 unknown, 254 when any input could not be read or does not fit the model.

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::Value;
use splitbrain_checker::elle::{self, ElleResult};
use splitbrain_checker::formats::{self, Format};
use splitbrain_checker::linear::{
    CheckOptions, KeyResult, LinearizabilityResult, ProgressFn, Verdict,
};
use splitbrain_checker::model::ModelKind;
use splitbrain_checker::{
    Analysis, AnalysisKind, Operations, Options, PairedHistory, TxnAnalysis, What,
};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::{EXIT_BAD_INPUT, EXIT_INTERNAL};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// History files, or directories to search for histories (recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The sequential model, or a transactional analysis (list-append, rw-register).
    /// Default: kv-append for Porcupine kv logs, cas-register otherwise.
    #[arg(long, value_name = "M")]
    pub model: Option<ModelArg>,
    /// For list-append and rw-register: the consistency models to check against
    /// (comma-separated, Elle's names, e.g. serializable,snapshot-isolation). Only
    /// anomalies that rule one of them out are searched for. Default: strict-serializable.
    #[arg(long, value_name = "M,…")]
    pub consistency_models: Option<String>,
    /// History format (auto: detected per file).
    #[arg(long, value_name = "F", default_value = "auto", ignore_case = true)]
    pub format: FormatArg,
    /// The model's initial state as JSON (default: the model's empty state).
    #[arg(long, value_name = "JSON")]
    pub initial: Option<String>,
    /// Give up on a history after this many seconds; unfinished keys are `unknown`.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIME_LIMIT)]
    pub time_limit: f64,
    /// Once a key is proven invalid (which decides the history), give the other keys at
    /// most this many more seconds; keys still undecided are `unknown` ("stopped after
    /// the history was proven invalid").
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_AFTER_INVALID)]
    pub after_invalid: f64,
    /// Decide every key even after one is proven invalid (within --time-limit and
    /// --memory-limit).
    #[arg(long)]
    pub all_keys: bool,
    /// Memory the search may use for its caches, in MiB, before it evicts and finally
    /// gives up with `unknown`.
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    pub memory_limit: u64,
    /// Print results as JSON (schema in README.md) instead of a human summary.
    #[arg(long)]
    pub json: bool,
    /// Write a self-contained HTML report of the (single) history to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// `--model`: a built-in model or a transactional analysis, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelArg(pub AnalysisKind);

impl clap::ValueEnum for ModelArg {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: OnceLock<Vec<ModelArg>> = OnceLock::new();
        ALL.get_or_init(|| AnalysisKind::all().into_iter().map(ModelArg).collect())
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.0.name()))
    }
}

/// `--format`: `auto` (`None`: detected per file) or a history format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatArg(pub Option<Format>);

impl clap::ValueEnum for FormatArg {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: OnceLock<Vec<FormatArg>> = OnceLock::new();
        ALL.get_or_init(|| {
            std::iter::once(FormatArg(None))
                .chain(Format::ALL.iter().map(|f| FormatArg(Some(*f))))
                .collect()
        })
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(
            self.0.map_or("auto", Format::name),
        ))
    }
}

/// `check` never runs unbounded: the default `--time-limit`, in seconds.
const DEFAULT_TIME_LIMIT: f64 = 60.0;
/// The default `--after-invalid`, in seconds.
const DEFAULT_AFTER_INVALID: f64 = 1.0;

/// The outcome for one history file.
#[derive(Debug, Serialize)]
struct FileOutcome {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    /// The analysis' verdict; `None` (`error` in the output) when the file could not be
    /// checked.
    #[serde(serialize_with = "verdict_json")]
    verdict: Option<Verdict>,
    exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Printed as `result` (linearizability) or `list_append` (the transactional
    /// analysis, for `--model list-append` or `rw-register`).
    #[serde(flatten, serialize_with = "analysis_json")]
    analysis: Option<Analysis>,
    #[serde(skip)]
    checked: Option<(PairedHistory, Operations)>,
}

impl FileOutcome {
    /// `valid`, `invalid`, `unknown`, or `error` when the file could not be checked.
    fn verdict_name(&self) -> &'static str {
        self.verdict.map_or("error", Verdict::as_str)
    }

    fn result(&self) -> Option<&LinearizabilityResult> {
        match &self.analysis {
            Some(Analysis::Linearizability(r)) => Some(r),
            _ => None,
        }
    }

    fn list_append(&self) -> Option<&ElleResult> {
        match &self.analysis {
            Some(Analysis::Transactional(r)) => Some(r),
            _ => None,
        }
    }
}

fn verdict_json<S: serde::Serializer>(v: &Option<Verdict>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.map_or("error", Verdict::as_str))
}

/// The analysis under the field name `check --json` has always used for it.
fn analysis_json<S: serde::Serializer>(a: &Option<Analysis>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(None)?;
    match a {
        Some(Analysis::Linearizability(r)) => map.serialize_entry("result", r)?,
        Some(Analysis::Transactional(r)) => map.serialize_entry("list_append", r)?,
        None => {}
    }
    map.end()
}

#[derive(Debug, Serialize)]
struct Summary<'a> {
    verdict: &'a str,
    exit_code: u8,
    histories: &'a [FileOutcome],
}

pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let format = args.format.0;
    let model = args.model.map(|m| m.0);
    let elle_options = match &args.consistency_models {
        None => elle::ElleOptions::default(),
        Some(list) => {
            if !matches!(model, Some(AnalysisKind::Transactional(_))) {
                return bad_input(format!(
                    "--consistency-models applies to --model {} or {}",
                    TxnAnalysis::ListAppend,
                    TxnAnalysis::RwRegister
                ));
            }
            match elle::models::parse_models(list) {
                Ok(models) => elle::ElleOptions {
                    models,
                    ..elle::ElleOptions::default()
                },
                Err(e) => return bad_input(format!("--consistency-models: {e}")),
            }
        }
    };
    let initial: Option<Value> = match &args.initial {
        None => None,
        Some(text) => match serde_json::from_str(text) {
            Ok(v) => Some(v),
            Err(e) => {
                return bad_input(format!(
                    "--initial {text:?} is not JSON ({e}); for a string write '\"x\"', for nothing write null"
                ))
            }
        },
    };
    let t = args.time_limit;
    if !(t.is_finite() && t > 0.0) {
        return bad_input(format!(
            "--time-limit {t} must be a positive number of seconds"
        ));
    }
    let a = args.after_invalid;
    if !(a.is_finite() && a >= 0.0) {
        return bad_input(format!(
            "--after-invalid {a} must be zero or a positive number of seconds"
        ));
    }
    if args.memory_limit == 0 {
        return bad_input("--memory-limit must be at least 1 MiB".into());
    }

    let files = match collect_files(&args.paths) {
        Ok(files) => files,
        Err(msg) => return bad_input(msg),
    };
    if files.is_empty() {
        return bad_input(format!(
            "no history files found under {}",
            display_paths(&args.paths)
        ));
    }
    if args.report.is_some() && files.len() != 1 {
        return bad_input(format!(
            "--report renders one history, but {} were given; check them one at a time",
            files.len()
        ));
    }

    if let Some(report) = &args.report {
        if report.exists() && !crate::reporting::is_generated_report(report) {
            return bad_input(format!(
                "--report {}: the file exists and is not a splitbrain report; refusing to overwrite it",
                report.display()
            ));
        }
    }

    let opts = CheckOptions {
        time_limit: Some(Duration::from_secs_f64(args.time_limit)),
        memory_limit_bytes: usize::try_from(args.memory_limit.saturating_mul(1 << 20))
            .unwrap_or(usize::MAX),
        threads: None,
        after_invalid: (!args.all_keys).then(|| Duration::from_secs_f64(args.after_invalid)),
        progress: None,
        search_steps: None,
    };
    let mut options = Options {
        linear: opts,
        elle: elle_options,
    };
    let started = Instant::now();
    let mut outcomes = Vec::with_capacity(files.len());
    for file in &files {
        let progress =
            KeyProgress::start(&file.display().to_string(), options.linear.after_invalid);
        options.linear.progress = progress.as_ref().map(|p| p.callback());
        options.linear.search_steps = progress.as_ref().map(|p| p.steps.clone());
        outcomes.push(check_file(file, format, model, initial.as_ref(), &options));
        if let Some(p) = progress {
            p.finish();
        }
    }
    let limits = Limits {
        time_limit: args.time_limit,
        after_invalid: options.linear.after_invalid.map(|d| d.as_secs_f64()),
    };
    let worst = outcomes.iter().map(|o| o.exit_code).fold(0u8, worse_exit);

    if let Some(report) = &args.report {
        if let Some(outcome) = outcomes.first() {
            if let Err(e) = crate::reporting::write_check_report(report, outcome_parts(outcome)) {
                eprintln!("error: writing the report {}: {e:#}", report.display());
                return Ok(i32::from(EXIT_INTERNAL));
            }
        }
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let summary = Summary {
            verdict: exit_name(worst),
            exit_code: worst,
            histories: &outcomes,
        };
        serde_json::to_writer_pretty(&mut out, &summary).context("writing JSON")?;
        writeln!(out)?;
    } else if outcomes.len() == 1 {
        print_detail(&mut out, &outcomes[0], &limits)?;
    } else {
        print_table(&mut out, &outcomes, started.elapsed(), &limits)?;
    }
    if let Some(report) = &args.report {
        if !args.json {
            writeln!(out, "report: {}", report.display())?;
        }
    }
    Ok(i32::from(worst))
}

/// The pieces of a file outcome the report needs.
fn outcome_parts(o: &FileOutcome) -> crate::reporting::CheckReport<'_> {
    crate::reporting::CheckReport {
        path: &o.path,
        error: o.error.as_deref(),
        analysis: o.analysis.as_ref(),
        history: o.checked.as_ref().map(|(h, _)| h),
        ops: o.checked.as_ref().map(|(_, ops)| ops),
    }
}

/// Progress of one history's check on a terminal: a bar of keys decided (shown only once
/// the check has taken a second, and only when stderr is a terminal and `CI` is unset),
/// and the verdict as soon as a key proves the history invalid.
struct KeyProgress {
    bar: ProgressBar,
    /// Set when the check is over, so the thread that reveals the bar stops.
    done: Arc<AtomicBool>,
    reveal: Option<std::thread::JoinHandle<()>>,
    after_invalid: Option<Duration>,
    started: Instant,
    /// Whether the early verdict was printed.
    told: Arc<AtomicBool>,
    /// Search steps explored so far, shown beside the keys so a long search visibly moves.
    steps: Arc<AtomicU64>,
}

impl KeyProgress {
    fn start(path: &str, after_invalid: Option<Duration>) -> Option<KeyProgress> {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        if ci || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::hidden();
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} checking {msg}: keys {pos}/{len} [{elapsed}] {prefix}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(path.to_string());
        let done = Arc::new(AtomicBool::new(false));
        let steps = Arc::new(AtomicU64::new(0));
        let reveal = {
            let (bar, done, steps) = (bar.clone(), done.clone(), steps.clone());
            std::thread::spawn(move || {
                let shown_after = Instant::now() + Duration::from_secs(1);
                let mut shown = false;
                while !done.load(Ordering::SeqCst) {
                    if !shown && Instant::now() >= shown_after {
                        bar.set_draw_target(ProgressDrawTarget::stderr());
                        bar.enable_steady_tick(Duration::from_millis(200));
                        shown = true;
                    }
                    let n = steps.load(Ordering::Relaxed);
                    if n > 0 {
                        bar.set_prefix(format!("search: {:.1}M steps", n as f64 / 1e6));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Some(KeyProgress {
            bar,
            done,
            reveal: Some(reveal),
            after_invalid,
            started: Instant::now(),
            told: Arc::new(AtomicBool::new(false)),
            steps,
        })
    }

    fn callback(&self) -> ProgressFn {
        let bar = self.bar.clone();
        let told = self.told.clone();
        let (started, after_invalid) = (self.started, self.after_invalid);
        ProgressFn(Arc::new(
            move |key: &KeyResult, done: usize, total: usize| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                if key.verdict == Verdict::Invalid && !told.swap(true, Ordering::SeqCst) {
                    let name = key
                        .key
                        .as_ref()
                        .map_or("(single)".to_string(), |k| k.to_string());
                    let rest = match after_invalid {
                    Some(a) => format!(
                        "the other keys get at most {} s more (--after-invalid; --all-keys decides them all)",
                        a.as_secs_f64()
                    ),
                    None => "deciding every key (--all-keys)".to_string(),
                };
                    bar.suspend(|| {
                        eprintln!(
                        "verdict: INVALID after {:.2} s (key {name} is not linearizable); {rest}",
                        started.elapsed().as_secs_f64()
                    )
                    });
                }
            },
        ))
    }

    fn finish(mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.reveal.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}

fn bad_input(msg: String) -> anyhow::Result<i32> {
    eprintln!("error: {msg}");
    Ok(i32::from(EXIT_BAD_INPUT))
}

fn check_file(
    path: &Path,
    format: Option<Format>,
    model: Option<AnalysisKind>,
    initial: Option<&Value>,
    options: &Options,
) -> FileOutcome {
    let mut outcome = FileOutcome {
        path: path.display().to_string(),
        format: None,
        model: None,
        verdict: None,
        exit_code: EXIT_BAD_INPUT,
        error: None,
        analysis: None,
        checked: None,
    };
    let (history, format) = match formats::read_path(path, format) {
        Ok(x) => x,
        Err(e) => {
            outcome.error = Some(e.to_string());
            return outcome;
        }
    };
    outcome.format = Some(format.to_string());
    let model = model.unwrap_or(AnalysisKind::Linearizability(match format {
        Format::PorcupineKv => ModelKind::KvAppend,
        _ => ModelKind::CasRegister,
    }));
    outcome.model = Some(model.to_string());
    let history = PairedHistory::new(history);
    let ops = match history.operations() {
        Ok(ops) => ops,
        Err(e) => {
            outcome.error = Some(format!("{}: {e}", path.display()));
            return outcome;
        }
    };
    match splitbrain_checker::check(&ops, &What::named(model, initial.cloned()), options) {
        Ok(analysis) => outcome.analysis = Some(analysis),
        Err(e) => outcome.error = Some(format!("{}: {e}", path.display())),
    }
    if let Some(analysis) = &outcome.analysis {
        let verdict = analysis.verdict();
        outcome.verdict = Some(verdict);
        outcome.exit_code = verdict.exit_code() as u8;
    }
    outcome.checked = Some((history, ops));
    outcome
}

/// Expands directories into the history files below them, sorted, so output is stable.
/// A directory entry is a history if its format can be detected; files named on the
/// command line are always checked (and fail clearly if they are not histories).
fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found).map_err(|e| format!("cannot list {}: {e}", path.display()))?;
            found.sort();
            out.extend(found.into_iter().filter(|p| looks_like_history(p)));
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether a file found inside a directory is a history: its start must be detectable
/// as one of the formats, or it is empty with a history-like extension.
fn looks_like_history(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut buf = vec![0u8; 64 * 1024];
    let n = std::io::Read::read(&mut file, &mut buf).unwrap_or(0);
    buf.truncate(n);
    let text = String::from_utf8_lossy(&buf);
    if text.trim().is_empty() {
        return matches!(ext, "jsonl" | "edn" | "log");
    }
    Format::detect(&text).is_some()
}

fn worse_exit(a: u8, b: u8) -> u8 {
    // 254/255 (could not check) beat invalid (1), which beats unknown (2), then valid.
    fn rank(c: u8) -> u8 {
        match c {
            0 => 0,
            2 => 1,
            1 => 2,
            _ => 3,
        }
    }
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn exit_name(code: u8) -> &'static str {
    match code {
        0 => "valid",
        1 => "invalid",
        2 => "unknown",
        _ => "error",
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The budgets a check ran under, printed with the results (the defaults included, so a
/// reader knows why a key may be `unknown`).
struct Limits {
    time_limit: f64,
    /// `None`: `--all-keys`.
    after_invalid: Option<f64>,
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "limits: {} s per history (--time-limit)",
            self.time_limit
        )?;
        match self.after_invalid {
            Some(a) => write!(
                f,
                ", {a} s for the other keys once one is invalid (--after-invalid; --all-keys decides every key)"
            ),
            None => write!(f, ", every key decided (--all-keys)"),
        }
    }
}

fn print_table(
    out: &mut impl Write,
    outcomes: &[FileOutcome],
    elapsed: Duration,
    limits: &Limits,
) -> std::io::Result<()> {
    let width = outcomes
        .iter()
        .map(|o| o.path.len())
        .max()
        .unwrap_or(7)
        .clamp(7, 80);
    writeln!(
        out,
        "{:<width$}  {:<14}  {:<14}  {:>8}  {:>5}  {:<8}  {:>9}",
        "history", "format", "model", "ops", "keys", "verdict", "time"
    )?;
    let mut counts = [0usize; 4];
    for o in outcomes {
        let (ops, keys, ms) = match o.result() {
            Some(r) => (
                r.operations.to_string(),
                r.keys.len().to_string(),
                format!("{:.1} ms", r.elapsed_ms),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        writeln!(
            out,
            "{:<width$}  {:<14}  {:<14}  {:>8}  {:>5}  {:<8}  {:>9}",
            o.path,
            o.format.as_deref().unwrap_or("-"),
            o.model.as_deref().unwrap_or("-"),
            ops,
            keys,
            o.verdict_name().to_uppercase(),
            ms
        )?;
        counts[match o.exit_code {
            0 => 0,
            1 => 1,
            2 => 2,
            _ => 3,
        }] += 1;
    }
    writeln!(
        out,
        "\n{} histories: {} valid, {} invalid, {} unknown, {} errors ({:.2} s)",
        outcomes.len(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        elapsed.as_secs_f64()
    )?;
    writeln!(out, "{limits}")?;
    for o in outcomes {
        if let Some(e) = &o.error {
            writeln!(out, "error: {e}")?;
        }
    }
    for o in outcomes.iter().filter(|o| o.exit_code == 1) {
        writeln!(out, "\n== {} ==", o.path)?;
        if let Some(r) = o.result() {
            print_witnesses(out, r, o.checked.as_ref().map(|(_, ops)| ops))?;
        }
    }
    Ok(())
}

fn print_detail(out: &mut impl Write, o: &FileOutcome, limits: &Limits) -> std::io::Result<()> {
    writeln!(out, "history: {}", o.path)?;
    if let Some(e) = &o.error {
        writeln!(out, "error: {e}")?;
        return Ok(());
    }
    writeln!(
        out,
        "format: {}   model: {}",
        o.format.as_deref().unwrap_or("-"),
        o.model.as_deref().unwrap_or("-")
    )?;
    if let Some(e) = o.list_append() {
        return print_list_append(out, e);
    }
    let Some(r) = o.result() else {
        return Ok(());
    };
    writeln!(
        out,
        "verdict: {}   ({} operations, {} keys, {:.1} ms)",
        r.verdict.to_string().to_uppercase(),
        r.operations,
        r.keys.len(),
        r.elapsed_ms
    )?;
    writeln!(out, "{limits}")?;
    if r.keys.len() > 1 || r.keys.iter().any(|k| k.verdict != Verdict::Valid) {
        writeln!(
            out,
            "\n{:<20}  {:<8}  {:>7}  {:>6}  {:>6}  {:<13}  {:>10}",
            "key", "verdict", "ops", "ok", "info", "method", "time"
        )?;
        let mut keys: Vec<_> = r.keys.iter().collect();
        // Undecided and invalid keys first: they are what the reader came for.
        keys.sort_by_key(|k| match k.verdict {
            Verdict::Invalid => 0,
            Verdict::Unknown => 1,
            Verdict::Valid => 2,
        });
        const MAX_ROWS: usize = 40;
        for k in keys.iter().take(MAX_ROWS) {
            let verdict = match &k.unknown_reason {
                Some(reason) if k.verdict == Verdict::Unknown => format!("unknown ({reason})"),
                _ => k.verdict.to_string(),
            };
            writeln!(
                out,
                "{:<20}  {:<8}  {:>7}  {:>6}  {:>6}  {:<13}  {:>7.1} ms",
                k.key
                    .as_ref()
                    .map_or("(single)".to_string(), |k| k.to_string()),
                verdict,
                k.operations,
                k.ok,
                k.info,
                k.method,
                k.elapsed_ms
            )?;
        }
        if keys.len() > MAX_ROWS {
            writeln!(out, "... and {} more valid keys", keys.len() - MAX_ROWS)?;
        }
    }
    print_witnesses(out, r, o.checked.as_ref().map(|(_, ops)| ops))
}

fn print_witnesses(
    out: &mut impl Write,
    r: &LinearizabilityResult,
    ops: Option<&Operations>,
) -> std::io::Result<()> {
    for k in r.keys.iter().filter(|k| k.verdict == Verdict::Invalid) {
        let Some(w) = &k.witness else { continue };
        let key = k
            .key
            .as_ref()
            .map_or("(single)".to_string(), |k| k.to_string());
        writeln!(out, "\nkey {key}: not linearizable")?;
        writeln!(out, "  {}", w.explanation)?;
        writeln!(
            out,
            "  cannot place: {} (event {}{})",
            w.stuck,
            w.stuck.invoke_index,
            w.stuck
                .complete_index
                .map_or(String::new(), |c| format!("..{c}"))
        )?;
        writeln!(out, "  it needed: {}", w.needed)?;
        if !w.reachable_states.is_empty() {
            let states: Vec<String> = w.reachable_states.iter().map(|s| s.to_string()).collect();
            writeln!(out, "  reachable states there: {}", states.join(", "))?;
        }
        writeln!(
            out,
            "  longest linearizable prefix ({} operations):",
            w.prefix.len()
        )?;
        const SHOWN: usize = 12;
        let skip = w.prefix.len().saturating_sub(SHOWN);
        if skip > 0 {
            writeln!(out, "    ... {skip} earlier operations")?;
        }
        for step in w.prefix.iter().skip(skip) {
            match ops.and_then(|o| o.ops.get(step.op)) {
                Some(op) => writeln!(out, "    {:<40} -> state {}", op.to_string(), step.state)?,
                None => writeln!(out, "    op {:<6} -> state {}", step.op, step.state)?,
            }
        }
        if !w.concurrent.is_empty() {
            writeln!(out, "  concurrent with it:")?;
            for op in w.concurrent.iter().take(SHOWN) {
                writeln!(out, "    {op}")?;
            }
            if w.concurrent.len() > SHOWN {
                writeln!(out, "    ... {} more", w.concurrent.len() - SHOWN)?;
            }
        }
    }
    Ok(())
}

fn print_list_append(out: &mut impl Write, e: &ElleResult) -> std::io::Result<()> {
    writeln!(
        out,
        "verdict: {}   ({} transactions, {:.1} ms; checked against {})",
        if e.valid { "VALID" } else { "INVALID" },
        e.txns,
        e.elapsed_ms,
        e.consistency_models.join(", ")
    )?;
    if !e.anomaly_types.is_empty() {
        writeln!(out, "anomalies: {}", e.anomaly_types.join(", "))?;
        writeln!(out, "not: {}", e.not.join(", "))?;
        if !e.also_not.is_empty() {
            writeln!(out, "also not: {}", e.also_not.join(", "))?;
        }
    }
    writeln!(
        out,
        "strongest models still possible: {}",
        if e.strongest_models.is_empty() {
            "none".to_string()
        } else {
            e.strongest_models.join(", ")
        }
    )?;
    const SHOWN: usize = 10;
    for a in e.anomalies.iter().take(SHOWN) {
        writeln!(out, "\n{}: {}", a.kind, a.explanation)?;
        if let Some(m) = &a.assumes {
            writeln!(out, "  (version order inferred assuming {m})")?;
        }
        for step in &a.cycle {
            writeln!(
                out,
                "  T{} -{}-> : {}",
                step.txn, step.edge_to_next, step.reason
            )?;
        }
    }
    if e.anomalies.len() > SHOWN {
        writeln!(
            out,
            "\n... {} more anomalies (--json lists all)",
            e.anomalies.len() - SHOWN
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use splitbrain_checker::model::ModelKind;
    use splitbrain_checker::{AnalysisKind, TxnAnalysis};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        check: CheckArgs,
    }

    fn parse(args: &[&str]) -> Result<CheckArgs, clap::Error> {
        Cli::try_parse_from(["check"].iter().chain(args)).map(|c| c.check)
    }

    #[test]
    fn check_model_and_format_are_value_enums() {
        let a = parse(&[
            "h.jsonl",
            "--model",
            "rw-register",
            "--format",
            "porcupine-kv",
        ])
        .unwrap();
        assert_eq!(
            a.model.map(|m| m.0),
            Some(AnalysisKind::Transactional(TxnAnalysis::RwRegister))
        );
        assert_eq!(a.format, FormatArg(Some(Format::PorcupineKv)));
        let a = parse(&["h.jsonl", "--model", "kv-append"]).unwrap();
        assert_eq!(
            a.model.map(|m| m.0),
            Some(AnalysisKind::Linearizability(ModelKind::KvAppend))
        );
        assert_eq!(a.format, FormatArg(None), "auto by default");

        let e = parse(&["h.jsonl", "--model", "queue"])
            .unwrap_err()
            .to_string();
        for name in ModelKind::NAMES
            .iter()
            .chain(&["list-append", "rw-register"])
        {
            assert!(e.contains(name), "{name} missing from: {e}");
        }
        let e = parse(&["h.jsonl", "--format", "yaml"])
            .unwrap_err()
            .to_string();
        for name in Format::NAMES.iter().chain(&["auto"]) {
            assert!(e.contains(name), "{name} missing from: {e}");
        }
    }
}
