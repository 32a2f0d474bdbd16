//! Short `splitbrain test` runs against the real bundled cluster (real processes, real
//! TCP, real SIGKILL/SIGSTOP, iptables in network namespaces when root): the correct
//! cluster is valid under every fault, a deliberate bug is caught, Ctrl-C still cleans
//! up, and nothing is ever left behind. Runs are serialised (two cores).

use crate::support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn test_run(store: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--nodes", "3"];
    args.extend_from_slice(extra);
    short_test(store, &args)
}

#[test]
fn correct_cluster_is_valid_under_every_fault_with_the_proxy_network() {
    let _guard = cluster_lock();
    let store = TempDir::new("proxy");
    let out = test_run(
        store.path(),
        &[
            "--nemesis",
            "all",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "8",
            "--seed",
            "11",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let run = latest_run(store.path());
    let results = results(&run);
    assert_eq!(results["verdict"], "valid");
    assert_eq!(results["partial"], false);
    for file in [
        "test.json",
        "history.jsonl",
        "report.html",
        "junit.xml",
        "summary.md",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    assert!(
        history.contains(r#""process":"nemesis""#),
        "faults are recorded"
    );
    assert!(history.contains(r#""type":"ok""#), "operations succeed");
    assert_check_agrees_with_the_run(&run, None);
    assert!(
        text(&out).contains("reproduce: splitbrain test"),
        "{}",
        text(&out)
    );
    assert_nothing_left(store.path());
}

#[test]
fn correct_cluster_is_valid_under_partitions_in_network_namespaces() {
    if !is_root() || Command::new("iptables").arg("--version").output().is_err() {
        eprintln!("skipped: the netns backend needs root and iptables (CI has both)");
        return;
    }
    let _guard = cluster_lock();
    let store = TempDir::new("netns");
    let out = test_run(
        store.path(),
        &[
            "--net",
            "netns",
            "--nemesis",
            "partition,kill",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "6",
            "--seed",
            "5",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let history = std::fs::read_to_string(latest_run(store.path()).join("history.jsonl")).unwrap();
    assert!(history.contains("start-partition"), "a partition happened");
    assert_nothing_left(store.path());
}

/// Runs `splitbrain test --bug BUG` with seeds 1, 2, … up to `seeds` until a run is
/// invalid (exit code 1); returns that run's directory. Never an internal error.
fn caught_within(
    store: &std::path::Path,
    bug: &str,
    workload: &str,
    nemesis: &str,
    interval: &str,
    seeds: u64,
) -> std::path::PathBuf {
    caught_within_seeds(seeds, bug, |seed| {
        test_run(
            store,
            &[
                "--bug",
                bug,
                "--workload",
                workload,
                "--nemesis",
                nemesis,
                "--nemesis-interval",
                interval,
                "--time-limit",
                "10",
                "--seed",
                seed,
            ],
        )
    });
    let run = latest_run(store);
    assert_eq!(results(&run)["verdict"], "invalid");
    run
}

/// `skip-fsync` acknowledges writes before they are durable; killing nodes loses them,
/// and later reads see older values. Detection depends on which nodes the nemesis kills
/// when, so up to three seeded runs may be needed.
#[test]
fn lost_writes_of_skip_fsync_are_caught_with_a_witness() {
    let _guard = cluster_lock();
    let store = TempDir::new("bug");
    let run = caught_within(store.path(), "skip-fsync", "register", "kill", "1", 3);
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.to_lowercase().contains("witness"));
    assert_nothing_left(store.path());
}

/// `no-truncate` keeps a deposed leader's conflicting entries: the replicas apply
/// different entries at one index. On a single register later writes make the data
/// equal again, so only the applied-history chains of the convergence check see it
/// (seen in 4 of 4 seeded runs like this one).
#[test]
fn diverged_replicas_of_no_truncate_are_caught_by_convergence() {
    let _guard = cluster_lock();
    let store = TempDir::new("no-truncate");
    let run = caught_within(store.path(), "no-truncate", "register", "partition", "1", 3);
    let convergence = &results(&run)["convergence"];
    assert_eq!(convergence["verdict"], "invalid", "{convergence}");
    assert!(
        convergence["explanation"]
            .as_str()
            .unwrap()
            .contains("history"),
        "{convergence}"
    );
    assert_nothing_left(store.path());
}

/// `stale-reads` lets a leader answer reads from its own state without confirming it
/// still leads, and keeps it leading while cut off: once a partition isolates it and
/// the majority elects another leader and takes writes, its reads are stale, and the
/// checker names the read that cannot be placed. Partitions of about 2 s give the new
/// leader time to be found; runs like this one caught it in 5 of 8 seeds (1–8).
#[test]
fn stale_reads_of_a_deposed_leader_are_caught_with_a_witness() {
    let _guard = cluster_lock();
    let store = TempDir::new("stale-reads");
    let run = caught_within(store.path(), "stale-reads", "register", "partition", "2", 3);
    let results = results(&run);
    let keys = results["linearizability"]["keys"].as_array().unwrap();
    let invalid: Vec<_> = keys.iter().filter(|k| k["verdict"] == "invalid").collect();
    assert!(!invalid.is_empty(), "{}", results["linearizability"]);
    // Every invalid key carries its witness: the operation that cannot be placed.
    assert!(
        invalid
            .iter()
            .all(|k| k["witness"]["stuck"]["f"].is_string()),
        "{}",
        results["linearizability"]
    );
    assert_nothing_left(store.path());
}

/// `forget-vote` drops a node's vote when it restarts. Only the scripted `split-vote`
/// nemesis reaches that: two candidates of one term, the voter they share restarted
/// between their requests (held in the proxy). The correct cluster's voter refuses the
/// second request and the run is valid; the buggy one grants it, two leaders share a
/// term, and their logs diverge — seen by linearizability and by convergence. Both were
/// the outcome of every seeded trial (3 nodes: 2 of 2 each way; 5 nodes: 3 of 3 valid, 2
/// of 2 caught), so one run each suffices.
#[test]
fn forget_vote_is_caught_by_a_scripted_split_vote_that_the_correct_cluster_survives() {
    let _guard = cluster_lock();
    let store = TempDir::new("split-vote");
    let (correct, buggy) = correct_then_buggy(
        store.path(),
        &[
            "--nodes",
            "3",
            "--rate",
            "100",
            "--concurrency",
            "6",
            "--nemesis",
            "split-vote",
            "--nemesis-interval",
            "2",
            "--time-limit",
            "8",
        ],
        "forget-vote",
    );
    assert!(
        log(&correct).contains("refused"),
        "the script did not reach the second request"
    );
    let buggy_log = log(&buggy);
    assert!(buggy_log.contains("two leaders in term"), "{buggy_log}");
    assert_eq!(results(&buggy)["convergence"]["verdict"], "invalid");
    assert_nothing_left(store.path());
}

/// `commit-old-terms` commits entries of an earlier term by counting replicas. The
/// scripted `figure-8` nemesis builds Raft's Figure 8 on five real nodes: a new leader's
/// old entries reach a majority before its own first entry does, and a node with a later
/// last term then wins and overwrites them. The correct leader waits for its own entry
/// and the run is valid; the buggy one has already applied the overwritten entries, so
/// the replicas' applied histories differ. Every seeded trial went this way (3 of 3 each
/// way), so one run each suffices.
#[test]
fn commit_old_terms_is_caught_by_a_scripted_figure_8_that_the_correct_cluster_survives() {
    let _guard = cluster_lock();
    let store = TempDir::new("figure-8");
    let (correct, buggy) = correct_then_buggy(
        store.path(),
        &[
            "--nodes",
            "5",
            "--nemesis",
            "figure-8",
            "--nemesis-interval",
            "4",
            "--time-limit",
            "14",
        ],
        "commit-old-terms",
    );
    let correct_log = log(&correct);
    assert!(
        correct_log.contains("including its own first entry"),
        "the script did not reach the commit: {correct_log}"
    );
    let buggy_log = log(&buggy);
    assert!(
        buggy_log.contains("before its own first entry"),
        "{buggy_log}"
    );
    assert_eq!(results(&buggy)["convergence"]["verdict"], "invalid");
    assert_nothing_left(store.path());
}

/// `lease-trusts-clock` times a lease read by the leader's own clock up to the election
/// timeout, with no margin. Under `slow-leader` (the leader's clock at 0.8× speed while
/// it is cut off from its peers, not from clients) that lease outlasts the election of
/// the next leader, and reads at the old one miss writes the new one acknowledged. The
/// short operation timeout lets writers that followed a hint to the old leader move on
/// while its lease still runs, and twice the default rate puts enough reads in the
/// short window after the next leader's first write. The correct lease (shorter than the
/// fastest election even at 0.8×) stays valid by construction. Both runs use the bug's
/// settings (`splitbrain bugs`); 30 s runs caught the bug in 10 of 10 seeds and the
/// correct lease was valid in 10 of 10.
#[test]
fn lease_trusts_clock_is_caught_with_a_slow_isolated_leader_that_the_correct_lease_survives() {
    let _guard = cluster_lock();
    let store = TempDir::new("slow-leader");
    let (_, buggy) = correct_then_buggy(
        store.path(),
        &[
            "--nodes",
            "5",
            "--read-mode",
            "lease",
            "--op-timeout",
            "0.25",
            "--rate",
            "400",
            "--nemesis",
            "slow-leader",
            "--nemesis-interval",
            "2",
            "--time-limit",
            "16",
        ],
        "lease-trusts-clock",
    );
    let results = results(&buggy);
    assert_eq!(
        results["linearizability"]["verdict"], "invalid",
        "{results}"
    );
    assert_nothing_left(store.path());
}

/// Runs `splitbrain test` (register workload, seed 1) with `args` on the correct cluster,
/// which must be valid, then with `--bug BUG`, which must be invalid; returns the two
/// run folders.
fn correct_then_buggy(
    store: &std::path::Path,
    args: &[&str],
    bug: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let store_arg = store.to_str().unwrap();
    let mut base = vec![
        "test",
        "--store",
        store_arg,
        "--recovery-time",
        "1",
        "--workload",
        "register",
        "--seed",
        "1",
    ];
    base.extend_from_slice(args);
    let correct = run(&base);
    assert_eq!(code(&correct), 0, "{}", text(&correct));
    let correct_run = latest_run(store);
    base.extend(["--bug", bug]);
    let buggy = run(&base);
    assert_eq!(code(&buggy), 1, "{}", text(&buggy));
    (correct_run, latest_run(store))
}

/// The run's `splitbrain.log` (where the nemesis says what its scripts did).
fn log(run: &std::path::Path) -> String {
    std::fs::read_to_string(run.join("splitbrain.log")).unwrap()
}

/// `splitbrain check` on a run's `history.jsonl` reaches what the run's `results.json`
/// says: the same verdict; for linearizability (`model` `None`: `check`'s default for
/// our JSONL, the cas-register the run uses too) the same verdict per key, and for the
/// transactional analysis (deterministic) the same analysis, all but its measured time.
/// `check` and `test` must never disagree about a history.
fn assert_check_agrees_with_the_run(run: &std::path::Path, model: Option<&str>) {
    let history = run.join("history.jsonl");
    let mut args = vec!["check", "--json"];
    if let Some(model) = model {
        args.extend(["--model", model]);
    }
    args.push(history.to_str().unwrap());
    let out = crate::support::run(&args);
    let checked: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check --json printed no JSON ({e}): {}", text(&out)));
    let checked = &checked["histories"][0];
    let stored = results(run);
    let (field, name) = match model {
        None => ("result", "linearizability"),
        Some(_) => ("list_append", "list-append"),
    };
    let stored_verdict = stored["checkers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .map(|c| c["verdict"].clone())
        .unwrap_or_default();
    assert_eq!(checked["verdict"], stored_verdict, "{}", text(&out));
    if model.is_none() {
        let verdicts = |l: &serde_json::Value| -> Vec<(serde_json::Value, serde_json::Value)> {
            l["keys"]
                .as_array()
                .expect("per-key results")
                .iter()
                .map(|k| (k["key"].clone(), k["verdict"].clone()))
                .collect()
        };
        assert_eq!(
            verdicts(&checked[field]),
            verdicts(&stored["linearizability"])
        );
        return;
    }
    let mut by_check = checked[field].clone();
    let mut by_run = stored["list_append"].clone();
    for analysis in [&mut by_check, &mut by_run] {
        analysis
            .as_object_mut()
            .expect("a transactional analysis")
            .remove("elapsed_ms");
    }
    assert_eq!(by_check, by_run);
}

/// The list-append workload, checked Elle-style: the correct cluster's transactions are
/// strict serializable, and `non-atomic-txn` (each micro-operation its own log entry) is
/// caught as dependency cycles, drawn in the report. No fault is needed: the bug shows
/// whenever transactions overlap. Seeded 10 s release runs caught it 10 of 10 times
/// (seeds 1–5 with `--nemesis none` and with the default `all`), each with G0, G1c and
/// G-single among the anomalies, so one short run suffices here.
#[test]
fn list_append_is_valid_and_a_non_atomic_txn_bug_is_caught() {
    let _guard = cluster_lock();
    let store = TempDir::new("list-append");
    let common = [
        "--workload",
        "list-append",
        "--nemesis",
        "none",
        "--time-limit",
        "3",
        "--seed",
        "21",
    ];
    let out = test_run(store.path(), &common);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let valid = results(&latest_run(store.path()));
    assert_eq!(valid["verdict"], "valid");
    let la = &valid["list_append"];
    assert_eq!(la["valid"], true, "{la}");
    assert_eq!(la["anomalies"], serde_json::json!([]), "{la}");
    assert!(
        la["txns"].as_u64().unwrap_or(0) > 50,
        "too few transactions: {la}"
    );
    assert_check_agrees_with_the_run(&latest_run(store.path()), Some("list-append"));
    assert_nothing_left(store.path());

    let mut args = common.to_vec();
    args.extend(["--bug", "non-atomic-txn"]);
    let out = test_run(store.path(), &args);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let run = latest_run(store.path());
    let invalid = results(&run);
    assert_eq!(invalid["verdict"], "invalid");
    let la = &invalid["list_append"];
    assert_eq!(la["valid"], false, "{la}");
    let anomalies = la["anomalies"].as_array().expect("anomalies");
    let cycle = anomalies
        .iter()
        .find_map(|a| a["cycle"].as_array().filter(|c| !c.is_empty()))
        .unwrap_or_else(|| panic!("no cycle among the anomalies: {la}"));
    for step in cycle {
        assert!(
            step["edge_to_next"].is_string() && step["reason"].is_string(),
            "{step}"
        );
    }
    assert_check_agrees_with_the_run(&run, Some("list-append"));
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains("class=\"cycle-svg\""),
        "the report draws no cycle"
    );
    assert_nothing_left(store.path());
}

/// The rw-register workload (register reads and writes in transactions, as a store
/// without lists is tested), checked Elle-style against the bundled cluster: the correct
/// cluster is valid, and `non-atomic-txn` is caught from register reads alone. The
/// lattice is drawn in the report, and `--consistency-models` reaches the checker.
#[test]
fn rw_register_is_valid_and_a_non_atomic_txn_bug_is_caught() {
    let _guard = cluster_lock();
    let store = TempDir::new("rw-register");
    let common = [
        "--workload",
        "rw-register",
        "--nemesis",
        "none",
        "--time-limit",
        "3",
        "--seed",
        "21",
    ];
    let out = test_run(store.path(), &common);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let valid = results(&latest_run(store.path()));
    let la = &valid["list_append"];
    assert_eq!(la["analysis"], "rw-register", "{la}");
    assert_eq!(la["valid"], true, "{la}");
    assert_eq!(
        la["strongest_models"],
        serde_json::json!(["strict-serializable"]),
        "{la}"
    );
    assert!(
        la["txns"].as_u64().unwrap_or(0) > 50,
        "too few transactions: {la}"
    );
    assert_nothing_left(store.path());

    let mut args = common.to_vec();
    args.extend([
        "--bug",
        "non-atomic-txn",
        "--consistency-models",
        "serializable",
    ]);
    let out = test_run(store.path(), &args);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let run = latest_run(store.path());
    let invalid = results(&run);
    let la = &invalid["list_append"];
    assert_eq!(la["valid"], false, "{la}");
    assert_eq!(
        la["consistency_models"],
        serde_json::json!(["serializable"]),
        "{la}"
    );
    assert!(
        la["ruled_out"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m == "serializable")),
        "{la}"
    );
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains("class=\"lattice\""),
        "the report draws no lattice"
    );
    assert_nothing_left(store.path());
}

#[test]
fn ctrl_c_heals_stops_nodes_and_keeps_the_partial_history() {
    let _guard = cluster_lock();
    let store = TempDir::new("sigint");
    let mut child = Command::new(bin())
        .args([
            "test",
            "--store",
            store.path().to_str().unwrap(),
            "--nodes",
            "3",
            "--nemesis",
            "pause,kill",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "120",
            "--seed",
            "3",
        ])
        .env("CI", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until operations are flowing, then interrupt.
    let started = Instant::now();
    loop {
        let histories: Vec<_> = walk(store.path())
            .into_iter()
            .filter(|p| p.ends_with("history.jsonl"))
            .collect();
        let lines = histories
            .first()
            .and_then(|h| std::fs::read_to_string(h).ok())
            .map_or(0, |s| s.lines().count());
        if lines > 50 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    nix_sigint(child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the harness did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(matches!(status.code(), Some(0..=2)), "{status:?}: {t}");
    let run = latest_run(store.path());
    let results = results(&run);
    assert_eq!(results["partial"], true, "{t}");
    assert!(run.join("report.html").is_file());
    assert_nothing_left(store.path());
}

fn nix_sigint(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// `test-all` repeats each combination `--test-count` times, prints a summary table with
/// a line per run, writes one JUnit test case per run, and exits with the worst verdict.
#[test]
fn test_all_runs_every_combination_and_writes_one_junit_case_per_run() {
    let _guard = cluster_lock();
    let store = TempDir::new("test-all");
    let out = run(&[
        "test-all",
        "--store",
        store.path().to_str().unwrap(),
        "--nodes",
        "3",
        "--rate",
        "100",
        "--concurrency",
        "4",
        "--recovery-time",
        "1",
        "--workload",
        "register",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "1",
        "--test-count",
        "2",
        "--time-limit",
        "2",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The summary table's rows: name, seed, verdict, run folder.
    let store_path = store.path().display().to_string();
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("register-partition ") && l.contains(&store_path))
        .collect();
    assert_eq!(summary.len(), 2, "{stdout}");
    assert!(summary.iter().all(|l| l.contains("valid")), "{stdout}");
    let junit = std::fs::read_to_string(store.path().join("test-all-junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), 2, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
    assert!(store.path().join("index.html").exists());
    assert_nothing_left(store.path());
}
