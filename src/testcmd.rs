//! `splitbrain test` and `splitbrain test-all`: resolve the configuration, run each test
//! on a tokio runtime with Ctrl-C handling, print verdicts, run folders and reproduction
//! commands, and turn the worst verdict into the exit code.

use splitbrain_checker::Verdict;
use tokio::sync::watch;

use crate::run::config::{self, TestArgs, TestConfig};
use crate::run::{self, progress::Ui};
use crate::EXIT_BAD_INPUT;
use splitbrain_nemesis::FaultKind;
use splitbrain_workloads::WorkloadKind;

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn resolve(args: TestArgs) -> Result<TestConfig, i32> {
    TestConfig::resolve(args, crate::node::bugs::BUGS, is_root()).map_err(|e| {
        eprintln!("error: {e}");
        i32::from(EXIT_BAD_INPUT)
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Turns the first Ctrl-C into a graceful stop; later ones only remind the user that
/// cleanup is under way (quitting now would leave nodes and namespaces behind).
fn watch_interrupts() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut first = true;
        while tokio::signal::ctrl_c().await.is_ok() {
            if first {
                eprintln!("\n[splitbrain] interrupted: healing, stopping nodes and checking the history so far");
                let _ = tx.send(true);
                first = false;
            } else {
                eprintln!("[splitbrain] still cleaning up, please wait");
            }
        }
    });
    rx
}

/// One configuration, `test_count` times with consecutive seeds.
async fn run_configs(
    configs: Vec<TestConfig>,
    ui: &Ui,
    interrupt: watch::Receiver<bool>,
) -> Vec<(TestConfig, anyhow::Result<run::RunOutcome>)> {
    let mut outcomes = Vec::new();
    for cfg in configs {
        if *interrupt.borrow() {
            break;
        }
        let outcome = run::run_test(&cfg, ui, interrupt.clone()).await;
        print_outcome(&cfg, &outcome);
        outcomes.push((cfg, outcome));
    }
    outcomes
}

fn print_outcome(cfg: &TestConfig, outcome: &anyhow::Result<run::RunOutcome>) {
    match outcome {
        Ok(o) => {
            let report = o.run_dir.join(splitbrain_reports::store::REPORT_HTML);
            println!(
                "{}: {}{}",
                cfg.name,
                o.verdict.to_string().to_uppercase(),
                if o.results.partial {
                    " (partial run)"
                } else {
                    ""
                }
            );
            for c in &o.results.checkers {
                println!(
                    "  {:<16} {:<8} {}",
                    c.name,
                    c.verdict.to_string(),
                    c.summary
                );
            }
            for n in &o.results.notes {
                println!("  note: {n}");
            }
            println!("  run:       {}", o.run_dir.display());
            println!("  report:    {}", report.display());
            println!("  reproduce: {}", cfg.reproduce_command());
        }
        Err(e) => {
            println!("{}: ERROR {e:#}", cfg.name);
            println!("  reproduce: {}", cfg.reproduce_command());
        }
    }
}

fn exit_code(outcomes: &[(TestConfig, anyhow::Result<run::RunOutcome>)]) -> i32 {
    let mut verdict = Verdict::Valid;
    let mut errored = false;
    for (_, o) in outcomes {
        match o {
            Ok(o) => verdict = verdict.combine(o.verdict),
            Err(_) => errored = true,
        }
    }
    if errored && verdict != Verdict::Invalid {
        return i32::from(crate::EXIT_INTERNAL);
    }
    verdict.exit_code()
}

fn repeated(cfg: TestConfig) -> Vec<TestConfig> {
    (0..cfg.test_count)
        .map(|i| TestConfig {
            seed: cfg.seed.wrapping_add(i as u64),
            ..cfg.clone()
        })
        .collect()
}

/// Makes this harness a child subreaper, so that the end of each run can kill what its
/// nodes and adapters left behind outside their process groups (`run::contain`).
fn contain_descendants() {
    if let Err(e) = run::contain::become_subreaper() {
        tracing::warn!("{e:#}: processes that leave their group may outlive the run");
    }
}

pub fn test(args: TestArgs) -> anyhow::Result<i32> {
    let cfg = match resolve(args) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    run::progress::init_tracing();
    contain_descendants();
    let ui = Ui::detect(false);
    let rt = runtime()?;
    let outcomes = rt.block_on(async {
        let interrupt = watch_interrupts();
        run_configs(repeated(cfg), &ui, interrupt).await
    });
    if outcomes.len() > 1 {
        print_summary(&outcomes);
    }
    Ok(exit_code(&outcomes))
}

pub fn test_all(args: TestArgs) -> anyhow::Result<i32> {
    let base = match resolve(args.clone()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let workloads: Vec<WorkloadKind> = match &args.workload {
        Some(_) => vec![base.workload],
        None => WorkloadKind::ALL.to_vec(),
    };
    // Each fault alone, then all of them together (`all`: every fault the database
    // can take).
    let nemeses: Vec<String> = match &args.nemesis {
        Some(spec) => vec![spec.clone()],
        None => FaultKind::ALL
            .iter()
            .map(|f| f.name().to_string())
            .chain(std::iter::once("all".to_string()))
            .collect(),
    };
    let mut configs = Vec::new();
    for &w in &workloads {
        for n in &nemeses {
            // Each combination is resolved like a `test` of its own, so a database's
            // refusals apply (etcd takes no clock faults, no rw-register).
            let mut per = args.clone();
            per.workload = Some(w.name().to_string());
            per.nemesis = Some(n.clone());
            per.seed = Some(base.seed);
            per.name = None;
            match TestConfig::resolve(per, crate::node::bugs::BUGS, is_root()) {
                Ok(mut cfg) => {
                    if args.name.is_some() {
                        cfg.name = format!(
                            "{}-{w}-{}",
                            base.name,
                            config::fault_names(&cfg.nemesis, "+")
                        );
                    }
                    configs.extend(repeated(cfg));
                }
                Err(e) => println!("skipping {w} with --nemesis {n}: {e}"),
            }
        }
    }
    run::progress::init_tracing();
    contain_descendants();
    let ui = Ui::detect(false);
    let rt = runtime()?;
    let outcomes = rt.block_on(async {
        let interrupt = watch_interrupts();
        run_configs(configs, &ui, interrupt).await
    });
    print_summary(&outcomes);
    if let Err(e) = crate::reporting::write_test_all_junit(&base.store, &outcomes) {
        eprintln!("warning: writing the test-all junit.xml: {e:#}");
    }
    Ok(exit_code(&outcomes))
}

fn print_summary(outcomes: &[(TestConfig, anyhow::Result<run::RunOutcome>)]) {
    println!("\n{:<40} {:>20}  {:<9} run", "test", "seed", "verdict");
    for (cfg, o) in outcomes {
        let (verdict, dir) = match o {
            Ok(o) => (o.verdict.to_string(), o.run_dir.display().to_string()),
            Err(_) => ("error".to_string(), "-".to_string()),
        };
        println!("{:<40} {:>20}  {:<9} {dir}", cfg.name, cfg.seed, verdict);
    }
}
