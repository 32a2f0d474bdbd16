//! The CLI's contracts: exit codes, error messages that say what to do, and `check` on
//! real histories from other tools.

use crate::support::*;

#[test]
fn bad_flags_exit_254_and_say_why() {
    let out = run(&["test", "--workload", "bank"]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(
        text(&out).contains("register, kv, mutex, set"),
        "{}",
        text(&out)
    );

    let out = run(&["test", "--nodes", "2", "--nemesis", "partition"]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(text(&out).contains("--nodes 2"), "{}", text(&out));

    let out = run(&["test", "--bug", "no-such-bug"]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(text(&out).contains("skip-fsync"), "{}", text(&out));

    let out = run(&[
        "test",
        "--bug",
        "lease-trusts-clock",
        "--read-mode",
        "read-index",
    ]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(text(&out).contains("--read-mode lease"), "{}", text(&out));

    let out = run(&["test", "--rate", "fast"]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(text(&out).contains("--rate"), "{}", text(&out));

    let out = run(&["check", "--model", "queue", "x.jsonl"]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(text(&out).contains("cas-register"), "{}", text(&out));

    let out = run(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(
        text(&out).contains("/nonexistent/history.jsonl"),
        "{}",
        text(&out)
    );
}

#[test]
fn malformed_history_names_file_line_and_reason() {
    let dir = TempDir::new("malformed");
    let file = dir.path().join("history.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#,
            "\n",
            r#"{"index":1,"time":2,"process":0,"type":"okay","f":"write","value":1}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = run(&["check", file.to_str().unwrap()]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("history.jsonl") && t.contains("line 2") && t.contains("okay"),
        "{t}"
    );

    // A completion without an invocation is a pairing error with its line.
    std::fs::write(
        &file,
        concat!(
            r#"{"index":0,"time":1,"process":3,"type":"ok","f":"read","value":1}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = run(&["check", file.to_str().unwrap()]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(text(&out).contains("line 1"), "{}", text(&out));
}

/// `check` over a folder reproduces every verdict Porcupine's own tests assert.
#[test]
fn check_porcupine_etcd_folder_matches_expected_verdicts() {
    let fixtures = fixtures();
    let expected: std::collections::BTreeMap<String, String> =
        std::fs::read_to_string(fixtures.join("EXPECTED.tsv"))
            .unwrap()
            .lines()
            .skip(1)
            .filter_map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                (cols.len() == 5 && cols[0].starts_with("porcupine/etcd/")).then(|| {
                    (
                        cols[0].rsplit('/').next().unwrap().to_string(),
                        cols[4].to_string(),
                    )
                })
            })
            .collect();
    assert!(expected.len() > 20);
    let out = run(&[
        "check",
        fixtures.join("porcupine/etcd").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        code(&out),
        1,
        "the folder holds invalid histories: {}",
        text(&out)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(json["verdict"], "invalid");
    let histories = json["histories"].as_array().unwrap();
    assert_eq!(histories.len(), expected.len());
    for h in histories {
        let name = h["path"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        assert_eq!(
            h["verdict"].as_str(),
            Some(expected[&name].as_str()),
            "{name}"
        );
    }
}

#[test]
fn check_writes_a_report_and_never_overwrites_foreign_files() {
    let fixtures = fixtures();
    let dir = TempDir::new("report");
    let report = dir.path().join("out.html");
    let history = fixtures.join("knossos/cas-register/bad/cas-failure.edn");
    let args = [
        "check",
        history.to_str().unwrap(),
        "--initial",
        "0",
        "--report",
        report.to_str().unwrap(),
    ];
    let out = run(&args);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("not linearizable"), "{}", text(&out));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<!DOCTYPE html>"));
    // Writing again over our own report is fine; over a foreign file it is refused.
    assert_eq!(code(&run(&args)), 1);
    std::fs::write(&report, "my notes").unwrap();
    let out = run(&args);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(text(&out).contains("refusing"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "my notes");
}

/// `check --model rw-register` on an Elle-style EDN history (no `:process`, keywords):
/// write skew rules out repeatable read and not snapshot isolation; `--consistency-models`
/// chooses what the verdict is about, and bad names are refused with the known ones.
#[test]
fn check_rw_register_with_consistency_models() {
    let dir = TempDir::new("rw-register");
    let file = dir.path().join("history.edn");
    // T0 and T1 each read the key the other writes, seeing nil, then write theirs;
    // then one client reads both (each invocation followed directly by its completion).
    let text_edn = "{:type :invoke, :f :txn, :value [[:r :x nil] [:w :y 1]], :process 0}\n\
{:type :invoke, :f :txn, :value [[:r :y nil] [:w :x 1]], :process 1}\n\
{:type :ok, :f :txn, :value [[:r :x nil] [:w :y 1]], :process 0}\n\
{:type :ok, :f :txn, :value [[:r :y nil] [:w :x 1]], :process 1}\n\
{:type :invoke, :f :txn, :value [[:r :x nil] [:r :y nil]]}\n\
{:type :ok, :f :txn, :value [[:r :x 1] [:r :y 1]]}\n";
    std::fs::write(&file, text_edn).unwrap();
    let path = file.to_str().unwrap();
    let out = run(&["check", path, "--model", "rw-register", "--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let la = &json["histories"][0]["list_append"];
    assert_eq!(la["analysis"], "rw-register", "{la}");
    assert_eq!(la["anomaly_types"], serde_json::json!(["G2-item"]), "{la}");
    assert_eq!(la["not"], serde_json::json!(["repeatable-read"]), "{la}");
    assert!(
        la["strongest_models"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m == "strong-snapshot-isolation")),
        "{la}"
    );

    let out = run(&[
        "check",
        path,
        "--model",
        "rw-register",
        "--consistency-models",
        "snapshot-isolation,PL-2",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("checked against snapshot-isolation, read-committed"),
        "{}",
        text(&out)
    );

    let out = run(&[
        "check",
        path,
        "--model",
        "rw-register",
        "--consistency-models",
        "acid",
    ]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(
        text(&out).contains("unknown consistency model `acid`"),
        "{}",
        text(&out)
    );
    let out = run(&["check", path, "--consistency-models", "serializable"]);
    assert_eq!(code(&out), 254, "{}", text(&out));
}

/// `check --model list-append`: `--json` carries each anomaly's cycle as data (edge
/// kinds and keys), and `--report` draws it.
#[test]
fn check_list_append_reports_cycles_as_data_and_drawings() {
    let dir = TempDir::new("list-append");
    let file = dir.path().join("history.jsonl");
    // T0 appends to x and y; T1, concurrent, sees the append to x but not the one to y
    // (G-single); T2 reads both afterwards.
    let lines = [
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"txn","value":[["append","x",1],["append","y",1]]}"#,
        r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r","x",null],["r","y",null]]}"#,
        r#"{"index":2,"time":3,"process":0,"type":"ok","f":"txn","value":[["append","x",1],["append","y",1]]}"#,
        r#"{"index":3,"time":4,"process":1,"type":"ok","f":"txn","value":[["r","x",[1]],["r","y",null]]}"#,
        r#"{"index":4,"time":5,"process":2,"type":"invoke","f":"txn","value":[["r","x",null],["r","y",null]]}"#,
        r#"{"index":5,"time":6,"process":2,"type":"ok","f":"txn","value":[["r","x",[1]],["r","y",[1]]]}"#,
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let path = file.to_str().unwrap();
    let out = run(&["check", path, "--model", "list-append", "--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let la = &json["histories"][0]["list_append"];
    let g_single = la["anomalies"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["kind"] == "G-single"))
        .unwrap_or_else(|| panic!("no G-single: {la}"));
    let edges: Vec<(&str, &str)> = g_single["cycle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["edge_to_next"].as_str().unwrap(),
                s["key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(edges, vec![("wr", "x"), ("rw", "y")], "{g_single}");

    let report = dir.path().join("report.html");
    let out = run(&[
        "check",
        path,
        "--model",
        "list-append",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("id=\"anomalies\"") && html.contains("class=\"cycle-svg\""));
    assert!(
        html.contains(">rw y</text>"),
        "edges are labelled with kind and key"
    );
}

/// `splitbrain bugs` names, for every bug, the whole command line that exposes it, and
/// that command line resolves to the settings the bug needs.
#[test]
fn bugs_print_their_whole_command_line_as_text_and_json() {
    let out = run(&["bugs", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let list: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("splitbrain bugs --json prints JSON");
    let list = list.as_array().expect("an array");
    assert!(list.len() >= 7);
    for bug in list {
        let name = bug["name"].as_str().expect("name");
        let command = bug["command"].as_str().expect("command");
        assert!(
            command.starts_with(&format!("splitbrain test --bug {name} --nemesis ")),
            "{command}"
        );
        assert!(command.contains(&format!("--workload {}", bug["workload"].as_str().unwrap())));
    }
    let lease = list
        .iter()
        .find(|b| b["name"] == "lease-trusts-clock")
        .expect("lease-trusts-clock is listed");
    assert_eq!(lease["read_mode"], "lease");
    let out = run(&["bugs"]);
    let t = text(&out);
    let line = t
        .lines()
        .find(|l| l.starts_with("lease-trusts-clock\t"))
        .expect("a line per bug");
    assert!(
        line.contains("--read-mode lease --op-timeout 0.25 --rate 400"),
        "{line}"
    );
}

/// Verdict first: one invalid key decides the history, a key that would search for ages
/// is stopped and listed as `unknown` with the reason; `--all-keys` keeps deciding it
/// (here until a short `--time-limit`). The limits in force are printed.
#[test]
fn check_gives_the_verdict_first_and_lists_stopped_keys() {
    let dir = TempDir::new("verdict-first");
    let file = dir.path().join("history.jsonl");
    let mut lines = Vec::new();
    let mut event = |process: u64, kind: &str, f: &str, key: &str, value: &str| {
        lines.push(format!(
            r#"{{"index":{i},"time":{i},"process":{process},"type":"{kind}","f":"{f}","key":"{key}","value":{value}}}"#,
            i = lines.len()
        ));
    };
    // 40 overlapping writes of 1, 2, 3 and two reads no order explains: a long search.
    for p in 0..40 {
        event(p, "invoke", "write", "hard", &(p % 3 + 1).to_string());
    }
    for p in 0..40 {
        event(p, "ok", "write", "hard", &(p % 3 + 1).to_string());
    }
    for v in ["1", "2"] {
        event(0, "invoke", "read", "hard", "null");
        event(0, "ok", "read", "hard", v);
    }
    // A read of a value nobody wrote: invalid at once.
    event(100, "invoke", "write", "bad", "1");
    event(100, "ok", "write", "bad", "1");
    event(101, "invoke", "read", "bad", "null");
    event(101, "ok", "read", "bad", "0");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let path = file.to_str().unwrap();

    let out = run(&["check", path, "--initial", "0", "--after-invalid", "0"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("stopped after the history was proven invalid"),
        "{t}"
    );
    assert!(t.contains("limits: 60 s per history (--time-limit)"), "{t}");

    let out = run(&[
        "check",
        path,
        "--initial",
        "0",
        "--all-keys",
        "--time-limit",
        "0.5",
    ]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("unknown (time limit)"), "{t}");
    assert!(t.contains("every key decided (--all-keys)"), "{t}");

    let out = run(&["check", path, "--after-invalid=-1"]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(text(&out).contains("--after-invalid"), "{}", text(&out));
}

/// `splitbrain clean` stops the processes recorded in a store's pid files (what a
/// SIGKILLed harness leaves of a database we did not write, etcd say), and only those:
/// a pid file whose start time does not match the live process (the pid was reused) is
/// removed without signalling anyone.
#[test]
fn clean_stops_recorded_node_processes_and_spares_reused_pids() {
    // `clean` also removes every splitbrain network namespace: never beside a live run.
    let _guard = cluster_lock();
    let store = TempDir::new("clean");
    let node_dir = store.path().join("etcd-register/20260101T000000/nodes/n1");
    std::fs::create_dir_all(&node_dir).unwrap();
    let mut orphan = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let mut bystander = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let start_time = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        rest.split_whitespace().nth(19).unwrap().parse().unwrap()
    };
    std::fs::write(
        node_dir.join("pid"),
        format!("{} {}\n", orphan.id(), start_time(orphan.id())),
    )
    .unwrap();
    let other_dir = store.path().join("etcd-register/20260101T000000/nodes/n2");
    std::fs::create_dir_all(&other_dir).unwrap();
    std::fs::write(
        other_dir.join("pid"),
        format!("{} {}\n", bystander.id(), start_time(bystander.id()) + 1),
    )
    .unwrap();
    let out = run(&["clean", "--store", store.path().to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains(&format!("node process {}", orphan.id())),
        "{}",
        text(&out)
    );
    let status = orphan.wait().unwrap();
    assert!(
        !status.success(),
        "the recorded process was killed: {status:?}"
    );
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "a reused pid is never signalled"
    );
    assert!(!node_dir.join("pid").exists() && !other_dir.join("pid").exists());
    let _ = bystander.kill();
    let _ = bystander.wait();
}
