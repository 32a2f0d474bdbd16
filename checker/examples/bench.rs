//! The checker's benchmark command: times every reference fixture, and large generated
//! histories end to end (read JSONL, pair, check), with peak memory.
//!
//! ```text
//! cargo run --release -p splitbrain-checker --example bench -- [all|fixtures|generated] [options]
//!   --fixtures DIR     the shared fixtures folder (default: beside the workspace)
//!   --ops N            one generated case with N operations instead of the standard matrix
//!   --keys K  --concurrency C  --info RATE  --model NAME  --small-values N  --seed S
//!   --repeat R         fixtures: best of R runs each (default 3)
//!   --stale-read       make the last read that can be one return a value overwritten
//!                      before it began (register / cas-register: never linearizable;
//!                      kv-append: in every key, a get returns an earlier get's string
//!                      although an update ran entirely in between)
//!   --out FILE         only write the generated case to FILE (JSONL) and stop
//! ```
//!
//! Each generated case is written to `/tmp` as JSONL, then checked in a child process
//! (this same binary, `child PATH MODEL`), so the peak memory reported (`VmHWM` from
//! `/proc/self/status`) is that of reading, pairing and checking alone, not of
//! generating. The file is removed afterwards.

use serde_json::Value;
use splitbrain_checker::formats::{read_path, write_jsonl, Format};
use splitbrain_checker::gen::{self, GenOptions, Values};
use splitbrain_checker::linear::{self, CheckOptions, Verdict};
use splitbrain_checker::model::ModelKind;
use splitbrain_checker::{EventType, History, Key, Process};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::str::FromStr;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Command-line options (hand-parsed: the example has no CLI dependency).
struct Args {
    mode: String,
    fixtures: Option<PathBuf>,
    one_case: Option<Case>,
    repeat: usize,
    /// Write the one generated case here instead of checking it.
    out: Option<PathBuf>,
}

#[derive(Clone)]
struct Case {
    model: String,
    ops: usize,
    keys: usize,
    concurrency: usize,
    info_rate: f64,
    values: Values,
    seed: u64,
    /// Break the history with one stale read (see [`stale_read`]).
    stale: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        mode: "all".into(),
        fixtures: None,
        one_case: None,
        repeat: 3,
        out: None,
    };
    let mut case = Case {
        model: "register".into(),
        ops: 0,
        keys: 100,
        concurrency: 20,
        info_rate: 0.02,
        values: Values::Unique,
        seed: 1,
        stale: false,
    };
    let mut i = 0;
    let value = |i: usize| -> Result<&String, String> {
        args.get(i + 1)
            .ok_or_else(|| format!("{} needs a value", args[i]))
    };
    let number = |i: usize| -> Result<f64, String> {
        value(i)?
            .parse::<f64>()
            .map_err(|e| format!("{}: {e}", args[i]))
    };
    while i < args.len() {
        match args[i].as_str() {
            "all" | "fixtures" | "generated" => {
                out.mode = args[i].clone();
                i += 1;
                continue;
            }
            "--fixtures" => out.fixtures = Some(PathBuf::from(value(i)?)),
            "--out" => out.out = Some(PathBuf::from(value(i)?)),
            "--ops" => case.ops = number(i)? as usize,
            "--keys" => case.keys = number(i)? as usize,
            "--concurrency" => case.concurrency = number(i)? as usize,
            "--info" => case.info_rate = number(i)?,
            "--model" => case.model = value(i)?.clone(),
            "--small-values" => case.values = Values::Small(number(i)? as u32),
            "--seed" => case.seed = number(i)? as u64,
            "--repeat" => out.repeat = (number(i)? as usize).max(1),
            "--stale-read" => {
                case.stale = true;
                i += 1;
                continue;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
        i += 2;
    }
    if case.ops > 0 {
        out.one_case = Some(case);
    }
    Ok(out)
}

fn run(args: &[String]) -> Result<(), String> {
    if args.first().map(String::as_str) == Some("child") {
        let (Some(path), Some(model)) = (args.get(1), args.get(2)) else {
            return Err("child PATH MODEL".into());
        };
        return child(Path::new(path), model);
    }
    let args = parse(args)?;
    if let Some(path) = &args.out {
        let case = args.one_case.as_ref().ok_or("--out needs --ops")?;
        let size = write_case(case, path)?;
        println!("{}: {} events", path.display(), size);
        return Ok(());
    }
    if args.mode == "all" || args.mode == "fixtures" {
        fixtures(&args)?;
    }
    if args.mode == "all" || args.mode == "generated" {
        let cases = match &args.one_case {
            Some(c) => vec![c.clone()],
            None => standard_matrix(),
        };
        generated(&cases)?;
    }
    Ok(())
}

fn fixtures_dir(explicit: &Option<PathBuf>) -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(dir) => vec![dir.clone()],
        None => vec![
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/fixtures"
            )),
            PathBuf::from("../shared/fixtures"),
        ],
    };
    candidates
        .iter()
        .find(|d| d.join("EXPECTED.tsv").is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "no EXPECTED.tsv in {}",
                candidates
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

fn initial_of(text: &str) -> Result<serde_json::Value, String> {
    Ok(match text {
        "nil" => serde_json::Value::Null,
        "free" => serde_json::json!("free"),
        "\"\"" => serde_json::json!(""),
        json => serde_json::from_str(json).map_err(|e| format!("initial `{json}`: {e}"))?,
    })
}

fn fixtures(args: &Args) -> Result<(), String> {
    let dir = fixtures_dir(&args.fixtures)?;
    let table = std::fs::read_to_string(dir.join("EXPECTED.tsv")).map_err(|e| e.to_string())?;
    println!(
        "## fixtures ({}; best of {} runs each)",
        dir.display(),
        args.repeat
    );
    println!(
        "{:<58} {:>7} {:>9} {:>9} {:>9}  verdict",
        "file", "ops", "read ms", "check ms", "total ms"
    );
    let (mut total, mut mismatches, mut files) = (0.0, 0, 0);
    for line in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [path, format, model, initial, expected] = cols.as_slice() else {
            return Err(format!("EXPECTED.tsv: bad line {line}"));
        };
        let format = Format::from_str(format).map_err(|e| e.to_string())?;
        let model = ModelKind::from_str(model).map_err(|e| e.to_string())?;
        let initial = initial_of(initial)?;
        let mut best: Option<(f64, f64, usize, Verdict)> = None;
        for _ in 0..args.repeat {
            let t0 = Instant::now();
            let (history, _) =
                read_path(&dir.join(path), Some(format)).map_err(|e| e.to_string())?;
            let ops = history.pair().map_err(|e| format!("{path}: {e}"))?;
            let t1 = Instant::now();
            let result = linear::check(&ops, model, Some(&initial), &CheckOptions::default())
                .map_err(|e| format!("{path}: {e}"))?;
            let t2 = Instant::now();
            let read_ms = (t1 - t0).as_secs_f64() * 1e3;
            let check_ms = (t2 - t1).as_secs_f64() * 1e3;
            let faster = match best {
                None => true,
                Some(b) => read_ms + check_ms < b.0 + b.1,
            };
            if faster {
                best = Some((read_ms, check_ms, ops.ops.len(), result.verdict));
            }
        }
        let Some((read_ms, check_ms, n, verdict)) = best else {
            continue;
        };
        let ok = verdict.as_str() == *expected;
        if !ok {
            mismatches += 1;
        }
        files += 1;
        total += read_ms + check_ms;
        println!(
            "{path:<58} {n:>7} {read_ms:>9.2} {check_ms:>9.2} {:>9.2}  {}{}",
            read_ms + check_ms,
            verdict.as_str(),
            if ok {
                String::new()
            } else {
                format!("  (EXPECTED {expected})")
            }
        );
    }
    println!(
        "total: {files} files in {total:.1} ms; {mismatches} verdict(s) differ from EXPECTED.tsv\n"
    );
    Ok(())
}

/// 100k and 1M operations over 10, 100 and 1000 keys, concurrency 10–50, 1–5% info,
/// unique values; register (the unique-values fast path), cas-register and kv-append
/// (info reductions, then the search).
fn standard_matrix() -> Vec<Case> {
    let mut cases = Vec::new();
    for model in ["register", "cas-register", "kv-append"] {
        for ops in [100_000, 1_000_000] {
            for (keys, concurrency, info_rate) in [
                (10, 10, 0.01),
                (10, 50, 0.05),
                (100, 30, 0.03),
                (1000, 10, 0.01),
                (1000, 50, 0.05),
            ] {
                cases.push(Case {
                    model: model.into(),
                    ops,
                    keys,
                    concurrency,
                    info_rate,
                    values: Values::Unique,
                    seed: 1,
                    stale: false,
                });
            }
        }
    }
    cases
}

fn generated(cases: &[Case]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!("## generated histories (JSONL in /tmp, checked in a child process)");
    println!(
        "{:<13} {:>9} {:>5} {:>4} {:>5} {:>6} {:>8} {:>9} {:>8} {:>9} {:>9} {:>9} {:>8}  verdict / methods",
        "model", "ops", "keys", "conc", "info", "values", "MB", "read ms", "pair ms", "check ms", "(keys ms)", "total ms", "peak MiB"
    );
    for case in cases {
        let path = std::env::temp_dir().join(format!(
            "splitbrain-bench-{}-{}-{}-{}-{}.jsonl",
            std::process::id(),
            case.model,
            case.ops,
            case.keys,
            case.concurrency
        ));
        write_case(case, &path)?;
        let size_mb = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        let output = Command::new(&exe)
            .arg("child")
            .arg(&path)
            .arg(&case.model)
            .output()
            .map_err(|e| e.to_string());
        let _ = std::fs::remove_file(&path);
        let output = output?;
        let report = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "child failed on {}: {}{}",
                path.display(),
                report,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let values = match case.values {
            Values::Unique => "unique".to_string(),
            Values::Small(n) => format!("0..{n}"),
        };
        println!(
            "{}{:<13} {:>9} {:>5} {:>4} {:>4.0}% {:>6} {:>8.1} {}",
            if case.stale { "(stale read) " } else { "" },
            case.model,
            case.ops,
            case.keys,
            case.concurrency,
            case.info_rate * 100.0,
            values,
            size_mb,
            report.trim_end()
        );
    }
    Ok(())
}

/// Generates `case` and writes it to `path` as JSONL; returns the number of events.
fn write_case(case: &Case, path: &Path) -> Result<u64, String> {
    let opts = GenOptions {
        model: case.model.clone(),
        keys: case.keys,
        concurrency: case.concurrency,
        ops: case.ops,
        info_rate: case.info_rate,
        values: case.values,
        seed: case.seed,
    };
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let events = if case.stale {
        let mut history = gen::generate(&opts).map_err(|e| e.to_string())?;
        let changed = if case.model == "kv-append" {
            stale_get(&mut history)
        } else {
            stale_read(&mut history)
        };
        if !changed {
            return Err("--stale-read: no read can be made stale".into());
        }
        write_jsonl(&mut out, &history).map_err(|e| e.to_string())?;
        history.events.len() as u64
    } else {
        gen::write_jsonl(&opts, &mut out).map_err(|e| e.to_string())?
    };
    std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
    Ok(events)
}

/// In every key, makes the last `ok` get that can be stale return the string of the
/// latest `ok` get of its key that completed before an `ok` put or append of that key was invoked, that
/// update having completed before this get was invoked. With unique tokens the string
/// never comes back, so no linearization can explain it. Returns whether a get changed.
fn stale_get(h: &mut History) -> bool {
    #[derive(Default)]
    struct KeyState {
        /// The latest completed `ok` get: its string and completion index.
        last_get: Option<(Value, u64)>,
        /// The earliest completion of an `ok` update invoked after `last_get` completed.
        update_done: Option<u64>,
    }
    let mut open: HashMap<Process, usize> = HashMap::new();
    let mut keys: HashMap<Option<Key>, KeyState> = HashMap::new();
    let mut targets: BTreeMap<Option<Key>, (usize, Value)> = BTreeMap::new();
    for (pos, e) in h.events.iter().enumerate() {
        if e.kind == EventType::Invoke {
            open.insert(e.process, pos);
            continue;
        }
        let Some(inv) = open.remove(&e.process) else {
            continue;
        };
        if e.kind != EventType::Ok {
            continue;
        }
        let invoked = h.events[inv].index;
        let k = keys.entry(e.key.clone()).or_default();
        if e.f == "get" {
            if let (Some((value, _)), Some(done)) = (&k.last_get, k.update_done) {
                if invoked > done && e.value != *value {
                    targets.insert(e.key.clone(), (pos, value.clone()));
                }
            }
            k.last_get = Some((e.value.clone(), e.index));
            k.update_done = None;
        } else if let Some((_, got)) = &k.last_get {
            if invoked > *got && k.update_done.is_none() {
                k.update_done = Some(e.index);
            }
        }
    }
    let changed = !targets.is_empty();
    for (_, (pos, value)) in targets {
        h.events[pos].value = value;
    }
    changed
}

/// Makes the last `ok` read that can be stale return the value of its key's first `ok`
/// write: one that completed before a second `ok` write of the key was invoked, which in
/// turn completed before the read was invoked. With unique values no linearization can
/// explain it. (`gen::stale_read` picks among all such triples and is too slow for
/// millions of operations.) Returns whether a read was changed.
fn stale_read(h: &mut History) -> bool {
    #[derive(Default)]
    struct KeyState {
        first: Option<(Value, u64)>,
        second_done: Option<u64>,
    }
    let mut open: HashMap<Process, usize> = HashMap::new();
    let mut keys: HashMap<Option<Key>, KeyState> = HashMap::new();
    let mut target: Option<(usize, Value)> = None;
    for (pos, e) in h.events.iter().enumerate() {
        if e.kind == EventType::Invoke {
            open.insert(e.process, pos);
            continue;
        }
        let Some(inv) = open.remove(&e.process) else {
            continue;
        };
        if e.kind != EventType::Ok {
            continue;
        }
        let invoked = h.events[inv].index;
        let k = keys.entry(e.key.clone()).or_default();
        match (e.f.as_str(), &k.first) {
            ("write", None) => k.first = Some((e.value.clone(), e.index)),
            ("write", Some((_, done))) if k.second_done.is_none() && invoked > *done => {
                k.second_done = Some(e.index)
            }
            ("read", Some((value, _)))
                if k.second_done.is_some_and(|t| invoked > t) && e.value != *value =>
            {
                target = Some((pos, value.clone()))
            }
            _ => {}
        }
    }
    match target {
        Some((pos, value)) => {
            h.events[pos].value = value;
            true
        }
        None => false,
    }
}

/// Reads, pairs and checks one file; prints one line of timings, peak memory, verdict.
fn child(path: &Path, model: &str) -> Result<(), String> {
    let model = ModelKind::from_str(model).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let (history, _) = read_path(path, Some(Format::Jsonl)).map_err(|e| e.to_string())?;
    let t1 = Instant::now();
    let ops = history.pair().map_err(|e| e.to_string())?;
    drop(history);
    let t2 = Instant::now();
    let initial = gen::initial_value(model.name()).map_err(|e| e.to_string())?;
    let result = linear::check(&ops, model, Some(&initial), &CheckOptions::default())
        .map_err(|e| e.to_string())?;
    let t3 = Instant::now();
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
    let mut methods: BTreeMap<String, usize> = BTreeMap::new();
    for k in &result.keys {
        *methods
            .entry(format!("{}:{}", k.method, k.verdict.as_str()))
            .or_default() += 1;
    }
    // Time spent deciding partitions (summed over keys; partitions run in parallel).
    let keys_ms: f64 = result.keys.iter().map(|k| k.elapsed_ms).sum();
    let dropped: usize = result.keys.iter().map(|k| k.info_dropped).sum();
    let bounded: usize = result.keys.iter().map(|k| k.info_bounded).sum();
    println!(
        "{:>9.0} {:>8.0} {:>9.0} {:>9.0} {:>9.0} {:>8.0}  {} {:?} info dropped {dropped}, bounded {bounded}",
        ms(t0, t1),
        ms(t1, t2),
        ms(t2, t3),
        keys_ms,
        ms(t0, t3),
        peak_mib().unwrap_or(f64::NAN),
        result.verdict.as_str(),
        methods
    );
    Ok(())
}

/// Peak resident memory of this process (`VmHWM`), in MiB.
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
