//! External client adapters (`[client] exec`, the protocol of `examples/PROTOCOL.md`):
//! the Python etcd adapter reaches the built-in etcd client's verdicts, the Redis
//! example's asynchronous replication is caught, and adapters that break the protocol
//! (garbage, hangs, exits, a refused handshake) give `info` operations and a clear note
//! (or abort the run with the adapter's message), never a crash or a hang, and leave no
//! adapter process behind. Root only (the nodes run in network namespaces).

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn available(command: &str, package: &str) -> bool {
    if !is_root() {
        eprintln!("skipped: described databases run in network namespaces, which need root");
        return false;
    }
    if Command::new(command).arg("--version").output().is_err() {
        eprintln!("skipped: {command} is not installed (apt-get install {package})");
        return false;
    }
    true
}

fn described_run(store: &Path, db: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--db", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    short_test(store, &args)
}

/// A short register run under partitions on 3 nodes of `db`, with `seed`.
fn partitioned_register(store: &Path, db: &Path, secs: &str, seed: &str) -> std::process::Output {
    described_run(
        store,
        db,
        &[
            "--nodes",
            "3",
            "--workload",
            "register",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "2",
            "--time-limit",
            secs,
            "--seed",
            seed,
        ],
    )
}

fn assert_no_adapter_left(store: &Path, script: &str) {
    assert_nothing_left(store);
    let left = processes_mentioning(script);
    assert!(left.is_empty(), "adapters left behind: {left:?}");
}

#[test]
fn the_python_etcd_adapter_reaches_the_built_in_clients_verdicts() {
    if !available("etcd", "etcd-server") || !available("python3", "python3") {
        return;
    }
    let _guard = cluster_lock();
    let store = TempDir::new("etcd-python");
    let example = repo().join("examples/etcd-python/etcd.toml");
    let out = described_run(
        store.path(),
        &example,
        &[
            "--nodes",
            "3",
            "--workload",
            "register",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "2",
            "--time-limit",
            "8",
            "--seed",
            "1",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("adapter errors: 0"), "{}", text(&out));
    let history = std::fs::read_to_string(latest_run(store.path()).join("history.jsonl")).unwrap();
    assert!(
        history.contains(r#""revision":"#),
        "the adapter's extra field is kept"
    );
    assert_no_adapter_left(store.path(), "adapter.py");

    // The same adapter with serializable reads: stale under partitions, as the built-in
    // client's serializable reads are (tests/integration/etcd.rs).
    let described = std::fs::read_to_string(&example).unwrap().replace(
        r#"exec = ["python3", "{description_dir}/adapter.py"]"#,
        &format!(
            r#"exec = ["python3", "{}", "--serializable"]"#,
            repo().join("examples/etcd-python/adapter.py").display()
        ),
    );
    assert!(
        described.contains("--serializable"),
        "the exec line was found"
    );
    let serializable = store.path().join("etcd-python-serializable.toml");
    std::fs::write(&serializable, described).unwrap();
    caught_within_seeds(3, "the adapter's serializable reads", |seed| {
        partitioned_register(store.path(), &serializable, "10", seed)
    });
    assert_no_adapter_left(store.path(), "adapter.py");
}

#[test]
fn redis_replicas_are_caught_serving_stale_reads() {
    if !available("redis-server", "redis-server") || !available("python3", "python3") {
        return;
    }
    let _guard = cluster_lock();
    let store = TempDir::new("redis");
    let example = repo().join("examples/redis/redis.toml");
    let out = caught_within_seeds(3, "redis's stale reads", |seed| {
        partitioned_register(store.path(), &example, "8", seed)
    });
    let said = text(&out);
    assert!(said.contains("convergence not checked"), "{said}");
    assert_no_adapter_left(store.path(), "adapter.py");
}

/// A description whose "database" is Python's HTTP server (cheap to start, ready at
/// once) and whose client is the misbehaving test adapter in `mode`.
fn broken_adapter_db(dir: &Path, mode: &str) -> PathBuf {
    let script = repo().join("workloads/tests/adapters/misbehave.py");
    let text = format!(
        r#"name = "broken-{mode}"
about = "an HTTP server with an adapter that breaks the protocol ({mode})"
[node]
ports = {{ http = 8000 }}
start = ["python3", "-m", "http.server", "{{port.http}}", "--bind", "{{addr}}"]
[ready]
tcp = "{{addr}}:{{port.http}}"
timeout = 10.0
[client]
exec = ["python3", "{}", "{mode}"]
"#,
        script.display()
    );
    let path = dir.join(format!("broken-{mode}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn broken_adapters_give_info_operations_and_a_note_never_a_crash() {
    if !available("python3", "python3") {
        return;
    }
    let _guard = cluster_lock();
    let store = TempDir::new("broken-adapters");
    for mode in ["garbage", "hang", "exit", "wrong-id"] {
        let db = broken_adapter_db(store.path(), mode);
        let out = described_run(
            store.path(),
            &db,
            &[
                "--nodes",
                "1",
                "--nemesis",
                "none",
                "--workload",
                "register",
                "--op-timeout",
                "0.5",
                "--time-limit",
                "3",
                "--seed",
                "1",
            ],
        );
        let said = text(&out);
        assert!(matches!(code(&out), 0..=2), "{mode}: {said}");
        let errors: u64 = said
            .split("adapter errors: ")
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{mode}: no adapter note: {said}"));
        assert!(errors > 0, "{mode}: {said}");
        let history =
            std::fs::read_to_string(latest_run(store.path()).join("history.jsonl")).unwrap();
        // A timeout is an info (a read in doubt a fail: it changed nothing); every
        // other breach names the adapter and quotes what it did.
        let named = |l: &&str| match mode {
            "hang" => l.contains(r#""error":"timeout""#),
            _ => l.contains("misbehave.py"),
        };
        assert!(
            history
                .lines()
                .filter(named)
                .any(|l| l.contains(r#""type":"info""#)),
            "{mode}: an info operation from the broken adapter"
        );
        assert_no_adapter_left(store.path(), "misbehave.py");
    }

    // A refused handshake aborts the run with the adapter's own message.
    let db = broken_adapter_db(store.path(), "refuse");
    let out = described_run(
        store.path(),
        &db,
        &[
            "--nodes",
            "1",
            "--nemesis",
            "none",
            "--workload",
            "register",
            "--time-limit",
            "3",
        ],
    );
    let said = text(&out);
    assert_eq!(code(&out), 2, "{said}");
    assert!(said.contains("this adapter refuses to work"), "{said}");
    assert_no_adapter_left(store.path(), "misbehave.py");
}

/// A node whose `start` is a shell wrapper that does not `exec` its server, and that
/// first writes 12 MB to stdout; the client is the in-memory register adapter.
fn wrapper_db(dir: &Path) -> PathBuf {
    let adapter = repo().join("workloads/tests/adapters/register.py");
    let text = format!(
        r#"name = "wrapped-http"
about = "Python's HTTP server behind a shell that does not exec it"
[node]
ports = {{ http = 8000 }}
start = ["sh", "-c", "head -c 12000000 /dev/zero | tr '\\0' x; python3 -m http.server {{port.http}} --bind {{addr}} --directory {{node_dir}}; echo exited"]
[ready]
tcp = "{{addr}}:{{port.http}}"
timeout = 10.0
[client]
exec = ["python3", "{}"]
"#,
        adapter.display()
    );
    let path = dir.join("wrapped-http.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_wrapper_that_does_not_exec_is_killed_and_paused_and_its_output_is_bounded() {
    if !available("python3", "python3") {
        return;
    }
    let _guard = cluster_lock();
    let store = TempDir::new("wrapped-node");
    let db = wrapper_db(store.path());
    let out = described_run(
        store.path(),
        &db,
        &[
            "--nodes",
            "1",
            "--nemesis",
            "kill,pause",
            "--nemesis-interval",
            "1",
            "--workload",
            "register",
            "--time-limit",
            "6",
            "--seed",
            "1",
        ],
    );
    let said = text(&out);
    assert!(matches!(code(&out), 0..=2), "{said}");
    let run = latest_run(store.path());
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    assert!(
        history.contains(r#""f":"kill""#) && history.contains(r#""f":"pause""#),
        "the nemesis killed and paused: {history}"
    );
    // Had the kill reached only the shell, the restarted server would find its port
    // still taken.
    let stderr = std::fs::read_to_string(run.join("nodes/n1/stderr.log")).unwrap();
    assert!(!stderr.contains("Address already in use"), "{stderr}");
    let results = results(&run);
    let notes: Vec<&str> = results["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        !notes
            .iter()
            .any(|n| n.starts_with("nemesis:") || n.starts_with("heal:")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("output cut: nodes/n1/stdout.log lost")),
        "{notes:?}"
    );
    let stdout = std::fs::metadata(run.join("nodes/n1/stdout.log"))
        .unwrap()
        .len();
    // At most 8 MiB and a marker per start: the first, and one after each kill (by the
    // nemesis's restart or, at the end, by healing).
    let starts = 1 + history.matches(r#""f":"kill""#).count() as u64;
    assert!(
        stdout <= starts * ((8 << 20) + 200),
        "{stdout} bytes for {starts} starts"
    );
    assert_nothing_left(store.path());
}

#[test]
fn an_adapters_child_that_left_its_group_is_gone_after_the_run() {
    if !available("python3", "python3") {
        return;
    }
    let _guard = cluster_lock();
    let store = TempDir::new("setsid-adapter");
    let db = broken_adapter_db(store.path(), "setsid-child");
    let out = described_run(
        store.path(),
        &db,
        &[
            "--nodes",
            "1",
            "--nemesis",
            "none",
            "--workload",
            "register",
            "--time-limit",
            "2",
            "--seed",
            "1",
        ],
    );
    let said = text(&out);
    assert!(matches!(code(&out), 0..=2), "{said}");
    let log =
        std::fs::read_to_string(latest_run(store.path()).join("adapters/n1.stderr.log")).unwrap();
    let pids: Vec<u32> = log
        .lines()
        .filter_map(|l| l.strip_prefix("setsid child pid "))
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    assert!(!pids.is_empty(), "no adapter reported its child: {log}");
    for pid in pids {
        // Gone (or the pid reused by something else: not our `sleep 600`).
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert_ne!(
            cmdline, b"sleep\x00600\x00",
            "the adapter's child {pid} survived"
        );
    }
    assert_no_adapter_left(store.path(), "misbehave.py");
}

/// A node that links its data folder and logs out of its folder, and writes a log far
/// larger than the scan reads: the wipe leaves the outside alone, each odd log is named
/// in the notes, and the run still writes its results.
#[test]
fn a_node_cannot_lead_the_wipe_or_the_log_scan_out_of_its_folder() {
    if !available("redis-server", "redis-server") || !available("python3", "python3") {
        return;
    }
    let _guard = cluster_lock();
    let store = TempDir::new("confined");
    let outside = store.path().join("outside");
    std::fs::create_dir_all(outside.join("member")).unwrap();
    std::fs::write(outside.join("member/precious"), "keep").unwrap();
    std::fs::write(outside.join("secret.log"), "=== REDIS BUG REPORT START\n").unwrap();
    let example = repo().join("examples/redis");
    // The node's folder is its working directory; it makes the links and the huge
    // (sparse) log, then starts Redis as the example does.
    let prepare = format!(
        "ln -s {o} linked; ln -s /dev/zero zero.log; ln -s {o}/secret.log out.log; \
         truncate -s 2G huge.log; exec sh {ex}/start.sh \"$@\"",
        o = outside.display(),
        ex = example.display()
    );
    let description = std::fs::read_to_string(example.join("redis.toml"))
        .unwrap()
        .replace(
            "start = [\"sh\", \"{description_dir}/start.sh\",",
            &format!("start = [\"sh\", \"-c\", {prepare:?}, \"start\","),
        )
        .replace(
            "stop_grace = 2.0",
            "stop_grace = 2.0\nlogs = [\"{node_dir}/zero.log\", \"{node_dir}/out.log\", \"{node_dir}/huge.log\"]",
        )
        .replace(
            "paths = [\"{data_dir}\"]",
            "paths = [\"{data_dir}\", \"{node_dir}/linked/member\"]",
        )
        .replace(
            "{description_dir}/adapter.py",
            &example.join("adapter.py").display().to_string(),
        );
    assert!(
        description.contains("truncate"),
        "the start line was replaced"
    );
    let db = store.path().join("confined.toml");
    std::fs::write(&db, description).unwrap();
    let out = described_run(
        store.path(),
        &db,
        &[
            "--nodes",
            "1",
            "--nemesis",
            "none",
            "--workload",
            "register",
            "--time-limit",
            "2",
        ],
    );
    let said = text(&out);
    assert!(code(&out) == 0 || code(&out) == 1, "{said}");
    assert!(
        outside.join("member/precious").exists(),
        "the wipe went outside"
    );
    let results = results(&latest_run(store.path()));
    let notes = results["notes"].to_string();
    for expected in [
        "zero.log is a symbolic link",
        "out.log is a symbolic link",
        "huge.log is 2147483648 bytes: only its first 64 MiB and last 64 MiB",
        "linked is a symbolic link",
    ] {
        assert!(notes.contains(expected), "{expected:?} not in {notes}");
    }
    let crash = results["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "log-patterns")
        .cloned()
        .unwrap();
    assert_eq!(
        crash["verdict"], "valid",
        "the outside log was not read: {crash}"
    );
    assert_no_adapter_left(store.path(), "adapter.py");
}
