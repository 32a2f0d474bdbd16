//! Timing of the linearizability checker (`cargo bench -p splitbrain-checker --bench
//! search`): every history of `shared/fixtures` (verdicts compared with EXPECTED.tsv),
//! then generated histories of growing size and concurrency. Prints a table; asserts
//! nothing about speed. Set `SEARCH_BENCH_FIXTURES` to point elsewhere.
//!
//! Each fixture is read once; its check is timed over `REPEATS` runs and the best run is
//! reported, so one-off noise on a shared machine does not dominate. Generated histories
//! are checked once each, with a 20 s time limit.

use serde_json::Value;
use splitbrain_checker::formats::{read_path, Format};
use splitbrain_checker::gen::{self, GenOptions, Values};
use splitbrain_checker::linear::{check, CheckOptions, Verdict};
use splitbrain_checker::model::ModelKind;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const REPEATS: usize = 3;

fn best_of<T>(mut f: impl FnMut() -> T) -> (T, Duration) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..REPEATS {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed());
        out = Some(r);
    }
    (out.expect("REPEATS > 0"), best)
}

fn fixtures_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var("SEARCH_BENCH_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_default(),
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures"
        )),
    ];
    candidates
        .into_iter()
        .find(|d| d.join("EXPECTED.tsv").is_file())
}

fn parse_initial(text: &str) -> Value {
    match text {
        "nil" => Value::Null,
        "free" => Value::String("free".into()),
        other => serde_json::from_str(other).unwrap_or(Value::String(other.into())),
    }
}

fn fixtures() {
    let Some(dir) = fixtures_dir() else {
        println!("fixtures: not found (set SEARCH_BENCH_FIXTURES)");
        return;
    };
    let Ok(tsv) = std::fs::read_to_string(dir.join("EXPECTED.tsv")) else {
        println!("fixtures: cannot read EXPECTED.tsv");
        return;
    };
    let mut total = Duration::ZERO;
    let mut by_group: std::collections::BTreeMap<String, (usize, Duration)> = Default::default();
    let (mut files, mut mismatches) = (0, 0);
    println!(
        "{:<58} {:>6} {:>9} {:>10} {:>10}",
        "fixture", "ops", "verdict", "check ms", "explored"
    );
    for row in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = row.split('\t').collect();
        let [path, format, model, initial, expected] = cols[..] else {
            println!("bad row: {row}");
            continue;
        };
        let format = Format::NAMES.iter().position(|n| *n == format).map(|i| {
            [
                Format::Jsonl,
                Format::Edn,
                Format::PorcupineEtcd,
                Format::PorcupineKv,
            ][i]
        });
        let (history, _) = match read_path(&dir.join(path), format) {
            Ok(h) => h,
            Err(e) => {
                println!("{path}: {e}");
                mismatches += 1;
                continue;
            }
        };
        let Ok(ops) = history.pair() else {
            println!("{path}: does not pair");
            mismatches += 1;
            continue;
        };
        let Ok(model) = model.parse::<ModelKind>() else {
            println!("{path}: unknown model {model}");
            continue;
        };
        let initial = parse_initial(initial);
        let (result, took) =
            best_of(|| check(&ops, model, Some(&initial), &CheckOptions::default()));
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                println!("{path}: {e}");
                mismatches += 1;
                continue;
            }
        };
        files += 1;
        total += took;
        let group = path.rsplit_once('/').map_or(path, |(g, _)| g).to_string();
        let g = by_group.entry(group).or_default();
        g.0 += 1;
        g.1 += took;
        let ok = result.verdict.to_string() == expected;
        mismatches += usize::from(!ok);
        let explored: u64 = result.keys.iter().map(|k| k.explored).sum();
        println!(
            "{:<58} {:>6} {:>9} {:>10.3} {:>10}{}",
            path,
            result.operations,
            result.verdict,
            took.as_secs_f64() * 1e3,
            explored,
            if ok {
                String::new()
            } else {
                format!("  MISMATCH: expected {expected}")
            }
        );
    }
    for (g, (n, t)) in &by_group {
        println!(
            "group {g:<40} {n:>3} files {:>10.3} ms",
            t.as_secs_f64() * 1e3
        );
    }
    println!(
        "fixtures: {files} files checked in {:.3} ms total (best of {REPEATS}), {mismatches} mismatches",
        total.as_secs_f64() * 1e3
    );
}

fn generated() {
    println!();
    println!(
        "{:<44} {:>7} {:>9} {:>10} {:>12}",
        "generated history", "ops", "verdict", "check ms", "explored"
    );
    for (model, ops, concurrency, keys, info_rate, values) in [
        ("cas-register", 2_000, 10, 0, 0.1, Values::Small(5)),
        ("cas-register", 20_000, 10, 0, 0.05, Values::Small(5)),
        ("cas-register", 100_000, 20, 100, 0.05, Values::Small(5)),
        ("register", 10_000, 30, 0, 0.05, Values::Unique),
        ("register", 10_000, 30, 0, 0.05, Values::Small(10)),
        ("set", 2_000, 8, 0, 0.05, Values::Small(1000)),
        ("kv-append", 5_000, 10, 10, 0.05, Values::Unique),
        ("multi-register", 2_000, 8, 0, 0.05, Values::Small(5)),
        ("mutex", 5_000, 10, 0, 0.05, Values::Small(2)),
    ] {
        let mut g = GenOptions::new(model, 7);
        g.ops = ops;
        g.concurrency = concurrency;
        g.keys = keys;
        g.info_rate = info_rate;
        g.values = values;
        let h = match gen::generate(&g) {
            Ok(h) => h,
            Err(e) => {
                println!("{model}: {e}");
                continue;
            }
        };
        let pairs = match h.pair() {
            Ok(p) => p,
            Err(e) => {
                println!("{model}: {e}");
                continue;
            }
        };
        let Ok(kind) = model.parse::<ModelKind>() else {
            continue;
        };
        let initial = gen::initial_value(model).ok();
        // One run each, bounded: a hard generated history is reported as unknown.
        let opts = CheckOptions {
            time_limit: Some(Duration::from_secs(20)),
            ..CheckOptions::default()
        };
        let started = Instant::now();
        let r = check(&pairs, kind, initial.as_ref(), &opts);
        let took = started.elapsed();
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                println!("{model}: {e}");
                continue;
            }
        };
        let label = format!("{model} c={concurrency} keys={keys} {values:?}");
        println!(
            "{:<44} {:>7} {:>9} {:>10.3} {:>12}",
            label,
            r.operations,
            r.verdict,
            took.as_secs_f64() * 1e3,
            r.keys.iter().map(|k| k.explored).sum::<u64>()
        );
        if r.verdict != Verdict::Valid {
            println!(
                "  (generated histories are linearizable; this one was judged {})",
                r.verdict
            );
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects one section.
    let section: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if section.as_deref().is_none_or(|s| "fixtures".contains(s)) {
        fixtures();
    }
    if section.as_deref().is_none_or(|s| "generated".contains(s)) {
        generated();
    }
}
