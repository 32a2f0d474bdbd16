//! `splitbrain test` and `test-all`: one run of a workload against the bundled cluster
//! under faults, from set-up to verdict.
//!
//! Phases: store folder → network → nodes → workload + nemesis for the time limit →
//! heal → recovery → final reads from every node → convergence check → teardown →
//! check → reports. Cleanup is unconditional: Ctrl-C, an error or a panic still heals the
//! network, kills every node and tears the network down, and the history recorded so far
//! is kept, checked and reported as a partial run.

pub mod bench;
pub mod config;
pub mod contain;
pub mod db;
pub mod hosts;
pub mod net;
pub mod progress;
pub mod recorder;
pub mod store;
pub mod workers;

use anyhow::Context;
use serde_json::{json, Value};
use splitbrain_checker::elle::ElleOptions;
use splitbrain_checker::linear::CheckOptions;
use splitbrain_checker::{EventType, Options, Process, Verdict, What};
use splitbrain_nemesis as nemesis;
use splitbrain_reports::results::{self as rr, CheckerResult, Convergence, Results};
use splitbrain_reports::store as report_store;
use splitbrain_workloads::{Generator, WorkloadConfig};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

use config::TestConfig;
use recorder::{Record, Recorder};

/// What one run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub verdict: Verdict,
    pub run_dir: std::path::PathBuf,
    pub results: Results,
}

/// Runs one test to completion (or interruption) and writes its run folder.
pub async fn run_test(
    cfg: &TestConfig,
    ui: &progress::Ui,
    interrupt: watch::Receiver<bool>,
) -> anyhow::Result<RunOutcome> {
    let started_at = time::OffsetDateTime::now_utc();
    let started = Instant::now();
    let run_dir = store::RunDir::create(&cfg.store, &cfg.name)?;
    let _log = progress::log_to(&run_dir.file(report_store::SPLITBRAIN_LOG))?;
    store::write_atomic(
        &run_dir.file(report_store::TEST_JSON),
        serde_json::to_string_pretty(cfg)?.as_bytes(),
    )?;
    ui.line(&format!(
        "run {} (seed {}) → {}",
        cfg.name,
        cfg.seed,
        run_dir.path.display()
    ));
    tracing::info!(config = ?cfg, "starting run");

    let recorder = Recorder::create(&run_dir.file(report_store::HISTORY_JSONL), started)
        .context("creating history.jsonl")?;
    let mut notes = Vec::new();
    let mut partial = false;

    // Set-up and the run proper. Whatever happens inside, teardown below runs.
    let env = net::Environment::setup(cfg, &run_dir).await;
    let mut faults = nemesis::FaultState::new(node_names(cfg.nodes));
    let phase_result = match &env {
        Ok(env) => {
            let result = run_phases(
                cfg,
                env,
                &recorder,
                ui,
                interrupt.clone(),
                &mut faults,
                &mut notes,
            )
            .await;
            if result.is_err() {
                // The phases stopped early: heal before teardown all the same.
                for problem in env.heal_all(&mut faults).await {
                    notes.push(format!("heal: {problem}"));
                }
            }
            result
        }
        Err(e) => Err(anyhow::anyhow!("{e:#}")),
    };
    if *interrupt.borrow() {
        partial = true;
        notes.push("interrupted (Ctrl-C): the history is partial".into());
    }
    let mut phase_info = PhaseInfo::default();
    let mut stopped_early = None;
    match phase_result {
        Ok(info) => phase_info = info,
        Err(e) => {
            partial = true;
            stopped_early = Some(format!("the run stopped early: {e:#}"));
            notes.push(format!("the run stopped early: {e:#}"));
            ui.line(&format!("error: {e:#}"));
        }
    }
    let mut node_logs = Vec::new();
    let mut crashes = None;
    if let Ok(env) = env {
        ui.line("tearing down");
        for problem in env.teardown().await {
            notes.push(format!("teardown: {problem}"));
        }
        contain::sweep_after_run();
        node_logs = env.log_files();
        crashes = env.db.crash_scan().map(|scan| {
            notes.extend(scan.notes);
            scan.lines
        });
        notes.extend(output_notes(&env.db.output_cuts(), &run_dir.path));
    }
    if let Some(e) = recorder.finish() {
        notes.push(format!(
            "writing history.jsonl failed: {e} (the in-memory history was checked)"
        ));
    }

    // Analysis.
    ui.line("checking");
    // Paired once: the checkers, the statistics and the page all use these pairs.
    let history = splitbrain_checker::PairedHistory::new(recorder.history());
    let ops = match history.operations() {
        Ok(ops) => Some(ops),
        Err(e) => {
            notes.push(format!("the history cannot be paired: {e}"));
            None
        }
    };
    let analysis = cfg.workload.analysis();
    let mut checked = None;
    if let Some(ops) = &ops {
        let options = Options {
            // Verdict first, as `splitbrain check`: once a key is invalid the others get
            // a bounded extra second.
            linear: CheckOptions {
                time_limit: Some(Duration::from_secs(120)),
                after_invalid: Some(Duration::from_secs(1)),
                ..CheckOptions::default()
            },
            // The transactional analyses, against the run's consistency models.
            elle: ElleOptions {
                models: if cfg.consistency_models.is_empty() {
                    ElleOptions::default().models
                } else {
                    cfg.consistency_models.clone()
                },
                ..ElleOptions::default()
            },
        };
        match splitbrain_checker::check(ops, &What::named(analysis, None), &options) {
            Ok(a) => checked = Some(a),
            Err(e) if cfg.workload.is_transactional() => notes.push(format!(
                "the {} checker rejected the history: {e}",
                cfg.workload
            )),
            Err(e) => notes.push(format!("the checker rejected the history: {e}")),
        }
    }
    let started_at = started_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut results = Results::new(&cfg.name, started_at, &history);
    match checked {
        Some(a) => results.set_analysis(&a),
        None => results.checkers.push(CheckerResult {
            name: analysis.checker_name().into(),
            verdict: Verdict::Unknown,
            summary: "not checked (see notes)".into(),
        }),
    }
    if let Some(conv) = phase_info.convergence {
        results.checkers.push(CheckerResult {
            name: "convergence".into(),
            verdict: conv.verdict,
            summary: conv.explanation.clone(),
        });
        results.convergence = Some(conv);
    }
    if let Some(why) = nothing_succeeded(history.history()) {
        results.checkers.push(CheckerResult {
            name: "run".into(),
            verdict: Verdict::Unknown,
            summary: why,
        });
    }
    if let Some(why) = stopped_early {
        // A run that failed before its time was up proves nothing valid: what it
        // recorded may still be invalid, but otherwise the verdict is unknown.
        results.checkers.push(CheckerResult {
            name: "run".into(),
            verdict: Verdict::Unknown,
            summary: why,
        });
    }
    if let Some(crashes) = crashes {
        results.checkers.push(crash_result(&crashes));
    }
    let run_path = std::path::absolute(&run_dir.path).unwrap_or_else(|_| run_dir.path.clone());
    // Regular files only: a link (say, downloaded from a host) is not the node's log.
    results.node_logs = node_logs
        .iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .filter_map(|p| {
            p.strip_prefix(&run_dir.path)
                .or_else(|_| p.strip_prefix(&run_path))
                .ok()
        })
        .map(|p| p.display().to_string())
        .collect();
    results.partial = partial;
    results.seed = Some(cfg.seed);
    results.reproduce = Some(cfg.reproduce_command());
    results.config = serde_json::to_value(cfg)?;
    results.notes = notes;
    results.duration_s = started.elapsed().as_secs_f64();
    results.settle_verdict();
    report_store::write_run_outputs(&run_dir.path, &results, &history, ops.as_ref())
        .context("writing the reports")?;
    store::update_latest(&cfg.store, &run_dir.path)?;
    if let Err(e) = report_store::update_index(&cfg.store) {
        tracing::warn!("updating the store index: {e}");
    }
    Ok(RunOutcome {
        verdict: results.verdict,
        run_dir: run_dir.path,
        results,
    })
}

/// Why a history tested nothing: client operations were attempted but none completed
/// `ok` (a client that cannot reach the system, an adapter that misreads it). Such a
/// history is trivially linearizable; calling it valid would hide a broken set-up.
fn nothing_succeeded(history: &splitbrain_checker::History) -> Option<String> {
    let mut attempted = 0usize;
    // By shape (numbers blanked): the same failure names a different pid, port or
    // address each time. Each shape keeps when it was first seen, its count and that
    // first message as the example.
    let mut errors: std::collections::HashMap<String, (usize, usize, &str)> =
        std::collections::HashMap::new();
    for e in &history.events {
        if !matches!(e.process, Process::Client(_)) {
            continue;
        }
        match e.kind {
            EventType::Ok => return None,
            EventType::Invoke => attempted += 1,
            _ => {
                let message = e.error.as_deref().unwrap_or("-");
                let seen = errors.len();
                errors
                    .entry(error_shape(message))
                    .or_insert((seen, 0, message))
                    .1 += 1;
            }
        }
    }
    if attempted == 0 {
        return None;
    }
    // The most frequent shape wins; ties go to the shape seen first, so the note does
    // not depend on map order.
    let common = errors
        .values()
        .max_by_key(|(first, n, _)| (*n, std::cmp::Reverse(*first)))
        .map(|(_, n, example)| {
            let shown: String = example.chars().take(200).collect();
            let cut = if shown.len() < example.len() {
                "…"
            } else {
                ""
            };
            let times = if *n == 1 { "time" } else { "times" };
            format!("; the most common error ({n} {times}), e.g.: {shown}{cut}")
        })
        .unwrap_or_default();
    Some(format!(
        "none of {attempted} client operations completed ok, so nothing was tested{common}"
    ))
}

/// An error message with what varies between occurrences of the same failure blanked:
/// every run of digits becomes `N`, as does a hexadecimal number (`0x7f3a`, or a run of
/// eight or more hex digits holding a digit, such as a member id). Pids, ports,
/// addresses, counts and ids then compare equal.
fn error_shape(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_alphanumeric() {
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            let word = &rest[..end];
            let hex = word
                .strip_prefix("0x")
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
                || (word.len() >= 8
                    && word.chars().all(|c| c.is_ascii_hexdigit())
                    && word.chars().any(|c| c.is_ascii_digit()));
            if hex {
                out.push('N');
            } else {
                // Digit runs inside a word too (`n3`, `12ms`).
                let mut in_digits = false;
                for c in word.chars() {
                    if c.is_ascii_digit() {
                        if !in_digits {
                            out.push('N');
                        }
                        in_digits = true;
                    } else {
                        out.push(c);
                        in_digits = false;
                    }
                }
            }
            rest = &rest[end..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The log-pattern checker's result: any line of a node's log that matches one of the
/// database's crash patterns makes the run invalid (a node that panicked or hit a fatal
/// error may have done anything before it died).
fn crash_result(crashes: &[db::CrashLine]) -> CheckerResult {
    const SHOWN: usize = 10;
    let (verdict, summary) = if crashes.is_empty() {
        (
            Verdict::Valid,
            "no node log matched the database's crash patterns".to_string(),
        )
    } else {
        let mut lines: Vec<String> = crashes
            .iter()
            .take(SHOWN)
            .map(|c| {
                let at = match c.line {
                    Some(n) => n.to_string(),
                    None => "(past the unscanned middle)".into(),
                };
                format!("{}:{at}: {} (pattern {:?})", c.file, c.text, c.pattern)
            })
            .collect();
        if crashes.len() > SHOWN {
            lines.push(format!("… and {} more", crashes.len() - SHOWN));
        }
        (
            Verdict::Invalid,
            format!(
                "{} log line(s) match the crash patterns: {}",
                crashes.len(),
                lines.join("; ")
            ),
        )
    };
    CheckerResult {
        name: "log-patterns".into(),
        verdict,
        summary,
    }
}

/// The report's notes for output files whose middle was cut (paths relative to the run
/// folder when inside it).
pub(crate) fn output_notes(
    cuts: &[(std::path::PathBuf, u64)],
    run_dir: &std::path::Path,
) -> Vec<String> {
    let cap = splitbrain_workloads::child::OutputCap::default();
    let run_path = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
    cuts.iter()
        .map(|(path, bytes)| {
            let shown = path
                .strip_prefix(run_dir)
                .or_else(|_| path.strip_prefix(&run_path))
                .unwrap_or(path);
            format!(
                "output cut: {} lost {bytes} bytes from its middle (a process's stdout or \
                 stderr keeps its first {} MiB and last {} MiB per start; the file marks the cut)",
                shown.display(),
                cap.head >> 20,
                cap.tail >> 20
            )
        })
        .collect()
}

/// What the phases learned that the analysis needs.
#[derive(Default)]
struct PhaseInfo {
    convergence: Option<Convergence>,
}

async fn run_phases(
    cfg: &TestConfig,
    env: &net::Environment,
    recorder: &Recorder,
    ui: &progress::Ui,
    interrupt: watch::Receiver<bool>,
    faults: &mut nemesis::FaultState,
    notes: &mut Vec<String>,
) -> anyhow::Result<PhaseInfo> {
    let db = &*env.db;
    ui.line(&format!(
        "starting {} {} nodes ({} network)",
        cfg.nodes,
        db.name(),
        cfg.net
    ));
    db.start_all()?;
    let ready = db.await_ready(Duration::from_secs(30)).await?;
    ui.line(&ready);
    if let Some(first) = db.nodes().first() {
        db.check_client(first).await?;
    }

    // Workload and nemesis, until the time limit or Ctrl-C.
    let (stop_tx, stop_rx) = watch::channel(false);
    let workload = cfg.workload;
    let generator = Generator::new(WorkloadConfig::new(workload, cfg.concurrency, cfg.seed))
        .map_err(|e| anyhow::anyhow!("workload: {e}"))?;
    let generator = Arc::new(Mutex::new(generator));
    let counters = Arc::new(workers::Counters::default());
    let names = db.nodes();
    let mut tasks = Vec::new();
    for thread in 0..cfg.concurrency {
        let node = names[thread % names.len()].clone();
        let client = db.client(
            &node,
            db::ClientPurpose::Worker,
            Duration::from_secs_f64(cfg.op_timeout),
        )?;
        tasks.push(tokio::spawn(workers::run_worker(
            workers::WorkerSetup {
                thread,
                concurrency: cfg.concurrency,
                node,
                rate: cfg.rate,
                seed: cfg.seed,
            },
            client,
            generator.clone(),
            recorder.clone(),
            counters.clone(),
            stop_rx.clone(),
        )));
    }

    let mut schedule_cfg = nemesis::ScheduleConfig::new(names.clone(), cfg.seed);
    schedule_cfg.kinds = cfg.nemesis.iter().copied().collect();
    schedule_cfg.interval = Duration::from_secs_f64(cfg.nemesis_interval);
    schedule_cfg.targets = cfg.fault_targets.clone();
    let schedule = nemesis::schedule(&schedule_cfg, Duration::from_secs_f64(cfg.time_limit));
    tracing::info!(steps = schedule.len(), "nemesis schedule");
    let fault_state = Arc::new(Mutex::new(String::from("none")));
    // The nemesis future borrows the fault state; the block ends that borrow before
    // healing needs it.
    let control = db::Control(db);
    let nemesis_outcome = {
        let nemesis_run = {
            let recorder = recorder.clone();
            let fault_state = fault_state.clone();
            let mut stop = stop_rx.clone();
            nemesis::run(
                &schedule,
                &control,
                &*env.net,
                faults,
                cfg.seed,
                move |ev: nemesis::NemesisEvent| {
                    // The history keeps the README's nemesis event shape (f and value); what the
                    // executor resolved at run time (the shape, "leader n3") goes to
                    // splitbrain.log and the progress line.
                    let detail = ev.detail.as_deref().unwrap_or("");
                    tracing::info!(f = %ev.f, value = %ev.value, detail, "nemesis");
                    let label = match ev.phase {
                        nemesis::Phase::Start if detail.is_empty() => {
                            format!("{} {}", ev.f, ev.value)
                        }
                        nemesis::Phase::Start => format!("{} {} ({detail})", ev.f, ev.value),
                        nemesis::Phase::Stop => "none".to_string(),
                    };
                    *fault_state.lock().unwrap_or_else(|p| p.into_inner()) = label;
                    recorder.record(Record {
                        process: Process::Nemesis,
                        kind: EventType::Info,
                        f: ev.f.clone(),
                        key: None,
                        value: ev.value.clone(),
                        node: None,
                        error: ev.error.clone(),
                    });
                },
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )
        };
        tokio::pin!(nemesis_run);
        let mut nemesis_outcome = None;

        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(cfg.time_limit);
        let mut bar = ui.run_bar(cfg.time_limit);
        let mut interrupt_rx = interrupt.clone();
        let mut ticker = tokio::time::interval(Duration::from_millis(250));
        let run_start = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = interrupt_rx.wait_for(|i| *i) => break,
                out = &mut nemesis_run, if nemesis_outcome.is_none() => nemesis_outcome = Some(out),
                _ = ticker.tick() => {
                    let ok = counters.ok.load(std::sync::atomic::Ordering::Relaxed);
                    let fail = counters.fail.load(std::sync::atomic::Ordering::Relaxed);
                    let info = counters.info.load(std::sync::atomic::Ordering::Relaxed);
                    let fault = fault_state.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    bar.update(run_start.elapsed(), ok, fail, info, &fault);
                }
            }
        }
        let _ = stop_tx.send(true);
        bar.finish();
        match nemesis_outcome {
            Some(o) => o,
            None => nemesis_run.await,
        }
    };
    for e in nemesis_outcome.errors {
        notes.push(format!("nemesis: {e}"));
    }
    for t in tasks {
        let _ = t.await;
    }

    // Heal everything, even when interrupted: nothing may be left faulted.
    ui.line("healing");
    for problem in env.heal_all(faults).await {
        notes.push(format!("heal: {problem}"));
    }
    record_nemesis(recorder, rr::FINAL_HEAL, json!(rr::FINAL_HEAL_VALUE));
    if *interrupt.borrow() {
        return Ok(PhaseInfo::default());
    }

    ui.line(&format!("recovering for {} s", cfg.recovery_time));
    tokio::time::sleep(Duration::from_secs_f64(cfg.recovery_time)).await;
    if let Err(e) = db.await_ready(Duration::from_secs(20)).await {
        notes.push(format!("after healing: {e:#}"));
    }

    // Final reads of every key from every node.
    ui.line("final reads");
    let finals = generator
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .final_ops();
    let mut process = 1_000_000u64;
    for node in &names {
        if *interrupt.borrow() {
            break;
        }
        let mut client = db.client(
            node,
            db::ClientPurpose::FinalRead,
            Duration::from_secs_f64(cfg.op_timeout.max(2.0)),
        )?;
        for op in &finals {
            let kind = workers::perform(&mut client, recorder, process, node, op).await;
            if kind == EventType::Info {
                process += 1;
            }
        }
        process += 1;
    }

    notes.extend(db.client_notes());
    ui.line("checking convergence");
    let convergence = db.convergence(Duration::from_secs(10)).await;
    if convergence.is_none() {
        notes.push(format!(
            "convergence not checked: {} offers no state digest to compare across nodes",
            db.name()
        ));
    }
    Ok(PhaseInfo { convergence })
}

fn record_nemesis(recorder: &Recorder, f: &str, value: Value) {
    recorder.record(Record {
        process: Process::Nemesis,
        kind: EventType::Info,
        f: f.to_string(),
        key: None,
        value,
        node: None,
        error: None,
    });
}

/// Node names in order: n1..nN.
pub fn node_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitbrain_checker::{Event, History};

    fn event(index: u64, process: u64, kind: EventType, error: Option<&str>) -> Event {
        Event {
            index,
            time: index,
            process: Process::Client(process),
            kind,
            f: "read".into(),
            key: None,
            value: serde_json::Value::Null,
            node: None,
            error: error.map(str::to_string),
            extra: serde_json::Map::new(),
            line: None,
        }
    }

    /// A history of failed operations, one per error message.
    fn failed(errors: &[&str]) -> History {
        let mut events = Vec::new();
        for (i, e) in errors.iter().enumerate() {
            let i = i as u64;
            events.push(event(2 * i, i, EventType::Invoke, None));
            events.push(event(2 * i + 1, i, EventType::Fail, Some(e)));
        }
        History::new(events)
    }

    #[test]
    fn errors_that_differ_only_in_numbers_are_grouped() {
        let why = nothing_succeeded(&failed(&[
            "adapter (pid 4711) exited: connect 10.0.0.1:6379 refused",
            "adapter (pid 4712) exited: connect 10.0.0.2:6379 refused",
            "adapter (pid 815) exited: connect 10.0.0.3:6379 refused",
            "timeout",
        ]))
        .expect("nothing succeeded");
        assert!(
            why.contains("the most common error (3 times), e.g.: adapter (pid 4711) exited: connect 10.0.0.1:6379 refused"),
            "{why}"
        );
    }

    #[test]
    fn one_error_is_one_time() {
        let why = nothing_succeeded(&failed(&["refused"])).expect("nothing succeeded");
        assert!(why.contains("(1 time)"), "{why}");
        assert!(!why.contains("times"), "{why}");
    }

    #[test]
    fn shapes_blank_numbers_and_ids() {
        assert_eq!(
            error_shape(
                "pid 4711 at 10.0.0.1:2379, member 8e9e05c52164694d, ptr 0x7f3a, n3 took 12ms"
            ),
            "pid N at N.N.N.N:N, member N, ptr N, nN took Nms"
        );
        assert_eq!(error_shape("déjà vu 1"), "déjà vu N");
    }
}
