//! `splitbrain test --db etcd`: a real etcd cluster (Debian's `etcd-server`), one member
//! per network namespace, under partitions, kills and pauses. Linearizable reads are
//! valid; serializable reads (answered from a member's local state) are caught stale
//! under partitions, with a witness; Ctrl-C leaves no member, namespace or rule; and the
//! faults etcd cannot take are refused before anything starts. Root and etcd only (CI
//! has both); each test says so when it skips.

use crate::support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn etcd_available() -> bool {
    if !is_root() {
        eprintln!("skipped: etcd runs in network namespaces, which need root (CI is root)");
        return false;
    }
    if Command::new("etcd").arg("--version").output().is_err() {
        eprintln!("skipped: etcd is not installed (apt-get install etcd-server; CI installs it)");
        return false;
    }
    true
}

fn etcd_run(store: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--db", "etcd", "--nodes", "3"];
    args.extend_from_slice(extra);
    short_test(store, &args)
}

/// Processes started for this store: etcd's data directories live in it.
fn assert_no_etcd_left(store: &std::path::Path) {
    assert_nothing_left(store);
    let pid_files: Vec<_> = walk(store)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "pid"))
        .collect();
    assert!(pid_files.is_empty(), "pid files left: {pid_files:?}");
}

#[test]
fn etcd_with_linearizable_reads_is_valid_and_serializable_reads_are_caught_stale() {
    if !etcd_available() {
        return;
    }
    let _guard = cluster_lock();
    let store = TempDir::new("etcd");
    let out = etcd_run(
        store.path(),
        &[
            "--workload",
            "register",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "2",
            "--time-limit",
            "10",
            "--seed",
            "1",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let run = latest_run(store.path());
    let valid = results(&run);
    assert_eq!(valid["verdict"], "valid");
    let checkers: Vec<&str> = valid["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(checkers.contains(&"convergence"), "{checkers:?}");
    assert!(checkers.contains(&"log-patterns"), "{checkers:?}");
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    assert!(history.contains("start-partition"), "a partition happened");
    assert!(
        history.contains(r#""revision":"#),
        "answers carry their revision"
    );
    assert!(
        run.join("nodes/n1/stderr.log").is_file(),
        "etcd's log is kept"
    );
    assert!(!run.join("nodes/n1/data").exists(), "etcd's data is wiped");
    assert_no_etcd_left(store.path());

    // Serializable reads: a member cut off from the majority keeps answering from its
    // own, older state.
    caught_within_seeds(3, "etcd's serializable reads", |seed| {
        etcd_run(
            store.path(),
            &[
                "--workload",
                "register",
                "--read-mode",
                "serializable",
                "--nemesis",
                "partition",
                "--nemesis-interval",
                "2",
                "--time-limit",
                "10",
                "--seed",
                seed,
            ],
        )
    });
    let run = latest_run(store.path());
    let caught = results(&run);
    assert_eq!(caught["verdict"], "invalid");
    let witness = caught["linearizability"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["verdict"] == "invalid")
        .expect("an invalid key");
    assert!(
        !witness["witness"].is_null() || !witness["counterexample"].is_null(),
        "a witness: {witness}"
    );
    assert_no_etcd_left(store.path());
}

#[test]
fn etcd_refuses_what_it_cannot_take_before_starting() {
    let store = TempDir::new("etcd-refusals");
    let s = store.path().to_str().unwrap();
    for (args, expected) in [
        (
            vec!["--db", "etcd", "--net", "proxy"],
            "one peer address per member",
        ),
        (
            vec!["--db", "etcd", "--nemesis", "clock"],
            "share this machine's clock",
        ),
        (
            vec!["--db", "etcd", "--nemesis", "split-vote"],
            "Raft state",
        ),
        (
            vec!["--db", "etcd", "--bug", "skip-fsync"],
            "bundled cluster",
        ),
        (
            vec!["--db", "etcd", "--read-mode", "lease"],
            "linearizable and serializable",
        ),
        (
            vec!["--db", "etcd", "--workload", "rw-register"],
            "rw-register",
        ),
        (vec!["--db", "nosuchdb"], "nosuchdb"),
    ] {
        let mut all = vec!["test", "--store", s];
        all.extend(args.iter());
        let out = run(&all);
        if !is_root() && !args.contains(&"proxy") {
            // Without root, the netns refusal may come first; either way it is 254.
            assert_eq!(code(&out), 254, "{args:?}: {}", text(&out));
            continue;
        }
        assert_eq!(code(&out), 254, "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(expected),
            "{args:?} should say {expected:?}: {}",
            text(&out)
        );
    }
    assert!(
        std::fs::read_dir(store.path()).unwrap().next().is_none(),
        "a refused run creates nothing"
    );
}

#[test]
fn etcd_not_installed_names_the_debian_package() {
    let store = TempDir::new("etcd-missing");
    let out = Command::new(bin())
        .args([
            "test",
            "--db",
            "etcd",
            "--store",
            store.path().to_str().unwrap(),
        ])
        .env("CI", "true")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(text(&out).contains("etcd-server"), "{}", text(&out));
}

#[test]
fn a_malformed_description_names_file_line_and_key() {
    let dir = TempDir::new("bad-description");
    let file = dir.path().join("mydb.toml");
    let text_of = |extra: &str| {
        format!(
            "name = \"mydb\"\nabout = \"x\"\n[node]\nports = {{ client = 1 }}\nstart = [\"mydb\", \"{{name}}\"]\npeer = \"{{name}}\"\npeer_separator = \",\"\n{extra}[ready]\ntcp = \"{{addr}}:{{port.client}}\"\ntimeout = 5.0\n[client]\nkind = \"etcd\"\nport = \"client\"\n"
        )
    };
    std::fs::write(&file, text_of("strat = [\"oops\"]\n")).unwrap();
    let out = run(&[
        "test",
        "--db",
        file.to_str().unwrap(),
        "--store",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("mydb.toml:8"), "{said}");
    assert!(said.contains("strat"), "{said}");
}

#[test]
fn ctrl_c_during_an_etcd_run_leaves_no_member_namespace_or_rule() {
    if !etcd_available() {
        return;
    }
    let _guard = cluster_lock();
    let store = TempDir::new("etcd-sigint");
    let child = Command::new(bin())
        .args([
            "test",
            "--db",
            "etcd",
            "--store",
            store.path().to_str().unwrap(),
            "--nodes",
            "3",
            "--workload",
            "register",
            "--nemesis",
            "partition,pause",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "120",
            "--seed",
            "4",
        ])
        .env("CI", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let lines = walk(store.path())
            .into_iter()
            .find(|p| p.ends_with("history.jsonl"))
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
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "{:?}: {}",
        out.status,
        text(&out)
    );
    let run = latest_run(store.path());
    assert_eq!(results(&run)["partial"], true);
    assert_no_etcd_left(store.path());
    let rules = Command::new("iptables").args(["-S"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains("sb"),
        "no rule of ours on the host"
    );
}
