//! Benchmark of the Elle-style checkers (list-append, rw-register): generates a history,
//! then times pairing and checking it.
//!
//! ```text
//! cargo run --release -p splitbrain-checker --example elle_bench -- [options]
//!   --txns N           transactions (default 100000)
//!   --concurrency C    client processes (default 10)
//!   --keys K           keys in play at once (default 10)
//!   --per-key W        appends before a key retires (default 32)
//!   --stale RATE       fault: probability a read returns a stale prefix (default 0)
//!   --info RATE        probability a transaction completes info (default 0.01)
//!   --seed S           (default 1)
//!   --repeat R         best of R checks (default 3)
//!   --rw-register      rw-register transactions (writes and single-value reads)
//!   --models M,…       consistency models to check against (default strict-serializable)
//! ```

use splitbrain_checker::elle::gen::{generate, ListAppendOptions};
use splitbrain_checker::elle::{
    check_list_append_with, check_rw_register_with, models::parse_models, ElleOptions,
};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("elle_bench: {e}");
            ExitCode::from(254)
        }
    }
}

fn run() -> Result<(), String> {
    let mut options = ListAppendOptions {
        seed: 1,
        txns: 100_000,
        concurrency: 10,
        active_keys: 10,
        max_appends_per_key: 32,
        info_rate: 0.01,
        fail_rate: 0.01,
        ..ListAppendOptions::default()
    };
    let mut repeat = 3;
    let mut elle = ElleOptions::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--rw-register" {
            options.rw_register = true;
            i += 1;
            continue;
        }
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{} needs a value", args[i]))?;
        let bad = || format!("{}: cannot parse {value:?}", args[i]);
        match args[i].as_str() {
            "--txns" => options.txns = value.parse().map_err(|_| bad())?,
            "--concurrency" => options.concurrency = value.parse().map_err(|_| bad())?,
            "--keys" => options.active_keys = value.parse().map_err(|_| bad())?,
            "--per-key" => options.max_appends_per_key = value.parse().map_err(|_| bad())?,
            "--seed" => options.seed = value.parse().map_err(|_| bad())?,
            "--repeat" => repeat = value.parse::<usize>().map_err(|_| bad())?.max(1),
            "--stale" => {
                options.stale_read_rate = value.parse().map_err(|_| bad())?;
            }
            "--info" => options.info_rate = value.parse().map_err(|_| bad())?,
            "--models" => elle.models = parse_models(value).map_err(|e| e.to_string())?,
            other => return Err(format!("unknown option {other}")),
        }
        i += 2;
    }

    let started = Instant::now();
    let history = generate(&options);
    let generated = started.elapsed();
    let started = Instant::now();
    let ops = history.pair().map_err(|e| e.to_string())?;
    let paired = started.elapsed();
    println!(
        "{} history: {} events, {} txns, concurrency {}, {} keys in play, {} writes per key, stale-read rate {}, seed {}",
        if options.rw_register { "rw-register" } else { "list-append" },
        history.events.len(),
        options.txns,
        options.concurrency,
        options.active_keys,
        options.max_appends_per_key,
        options.stale_read_rate,
        options.seed
    );
    println!(
        "generate {:.1} ms, pair {:.1} ms",
        generated.as_secs_f64() * 1e3,
        paired.as_secs_f64() * 1e3
    );
    let mut best = f64::INFINITY;
    for run in 1..=repeat {
        let started = Instant::now();
        let result = if options.rw_register {
            check_rw_register_with(&ops, &elle)
        } else {
            check_list_append_with(&ops, &elle)
        }
        .map_err(|e| e.to_string())?;
        let wall = started.elapsed().as_secs_f64() * 1e3;
        best = best.min(wall);
        println!(
            "check #{run}: {wall:.1} ms (reported {:.1} ms): valid {}, not {:?}, strongest {:?}, {} txns, graph {} nodes / {} edges, {} cyclic components (largest {}, {} truncated), anomalies {:?}",
            result.elapsed_ms,
            result.valid,
            result.not,
            result.strongest_models,
            result.txns,
            result.graph.nodes,
            result.graph.edges,
            result.graph.cyclic_components,
            result.graph.largest_component,
            result.graph.truncated_components,
            result.anomaly_counts,
        );
    }
    println!("best check: {best:.1} ms");
    Ok(())
}
