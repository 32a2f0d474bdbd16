//! The adapter client against small Python adapters (`workloads/tests/adapters/`): a
//! well-behaved register and one that breaks the protocol in each way we know, checking
//! the completions and that no adapter process survives; and the etcd example adapter
//! (`examples/etcd-python/adapter.py`) against a real single-member etcd, compared with
//! the built-in [`crate::EtcdClient`]. The Redis example adapter has its own module,
//! `tests/redis.rs`.

use super::*;
use nix::errno::Errno;
use splitbrain_checker::EventType;
use std::path::Path;

/// A completion with its extra fields checked and set aside, so that a test compares
/// the rest: the register fixture's `served_by` names the handshake's node, and etcd's
/// `revision` (from the adapter or the built-in client, which read at different
/// revisions) is a positive integer.
trait Plain {
    fn plain(self) -> Completion;
}

impl Plain for Completion {
    fn plain(mut self) -> Completion {
        for (name, value) in std::mem::take(&mut self.extra) {
            match name.as_str() {
                "served_by" => assert_eq!(value, "n1", "{self:?}"),
                "revision" => assert!(value.as_i64().is_some_and(|r| r > 0), "{value}"),
                other => panic!("unexpected extra field {other}: {value}"),
            }
        }
        self
    }
}

mod redis;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/adapters")
        .join(name)
        .display()
        .to_string()
}

/// A fresh stderr file for one test.
fn stderr_file(tag: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "splitbrain-adapter-{tag}-{}.log",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

fn spec(tag: &str, argv: &[&str], timeout_ms: u64) -> AdapterSpec {
    AdapterSpec {
        argv: argv.iter().map(|a| a.to_string()).collect(),
        env: Vec::new(),
        stderr: stderr_file(tag),
        handshake: Handshake {
            node: "n1".into(),
            addr: "127.0.0.1".into(),
            cluster: vec![("n1".into(), "127.0.0.1".into())],
            workload: "register".into(),
            ports: BTreeMap::from([("client".to_string(), 1)]),
        },
        timeout: Duration::from_millis(timeout_ms),
        // Starting a Python interpreter on a loaded 2-core machine: generous, but bounded.
        start_timeout: Duration::from_secs(5),
        stderr_cap: crate::child::OutputCap::default(),
    }
}

fn misbehaving(mode: &str, timeout_ms: u64) -> AdapterClient {
    let script = fixture("misbehave.py");
    AdapterClient::new(spec(mode, &["python3", &script, mode], timeout_ms))
}

fn op(f: &str, value: Value) -> Op {
    Op::new(f, None, value)
}

fn write(v: i64) -> Op {
    op("write", serde_json::json!(v))
}

/// True when no process has this pid any more (reaped, not a zombie).
fn gone(pid: u32) -> bool {
    let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits"));
    nix::sys::signal::kill(pid, None) == Err(Errno::ESRCH)
}

/// Waits (bounded) for `pid` to disappear: after a drop, tokio's orphan reaper reaps.
async fn eventually_gone(pid: u32) -> bool {
    for _ in 0..100 {
        if gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Drops `client` (killing its adapter) and removes its stderr file. A failing test
/// skips this and leaves the file for a look.
fn finish(client: AdapterClient) {
    let stderr = client.spec.stderr.clone();
    drop(client);
    let _ = std::fs::remove_file(stderr);
}

/// The pids of the processes the harness started for this spec (its marker lines).
fn started_pids(spec: &AdapterSpec) -> Vec<u32> {
    let log = std::fs::read_to_string(&spec.stderr).unwrap_or_default();
    log.lines()
        .filter_map(|l| l.split("(pid ").nth(1))
        .filter_map(|rest| rest.split(')').next())
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_adapter_reaches_every_outcome() {
    let script = fixture("register.py");
    let spec = spec("register", &["python3", &script], 1000);
    let stderr = spec.stderr.clone();
    let mut client = AdapterClient::new(spec);
    assert_eq!(client.name(), "register.py");
    client.open().await.expect("handshake");
    let pid = client.pid().expect("running");

    let done = client.invoke(&write(1)).await.plain();
    assert_eq!(done, Completion::ok(serde_json::json!(1)));
    let done = client.invoke(&op("read", Value::Null)).await.plain();
    assert_eq!(done, Completion::ok(serde_json::json!(1)));
    let done = client
        .invoke(&op("cas", serde_json::json!([1, 2])))
        .await
        .plain();
    assert_eq!(done, Completion::ok(serde_json::json!([1, 2])));
    let done = client
        .invoke(&op("cas", serde_json::json!([1, 3])))
        .await
        .plain();
    assert_eq!(
        done,
        Completion::fail(serde_json::json!([1, 3]), "cas-mismatch")
    );
    // Another key is another register: absent reads as null.
    let done = client
        .invoke(&Op::new("read", Some(Key::Int(3)), Value::Null))
        .await
        .plain();
    assert_eq!(done, Completion::ok(Value::Null));

    // The adapter's own info and fail.
    let done = client.invoke(&write(-1)).await.plain();
    assert_eq!(
        done,
        Completion::info(serde_json::json!(-1), "pretend-timeout")
    );
    let done = client.invoke(&write(-2)).await.plain();
    assert_eq!(
        done,
        Completion::fail(serde_json::json!(-2), "pretend-refused")
    );
    // Maelstrom codes: definite, indefinite, unknown; `text` is kept.
    let done = client.invoke(&write(-20)).await.plain();
    assert_eq!(
        done,
        Completion::fail(
            serde_json::json!(-20),
            "maelstrom-code-20 key-does-not-exist: no such key here"
        )
    );
    let done = client.invoke(&write(-13)).await.plain();
    assert_eq!(
        done,
        Completion::info(serde_json::json!(-13), "maelstrom-code-13 crash")
    );
    let done = client.invoke(&write(-99)).await.plain();
    assert_eq!(
        done,
        Completion::info(serde_json::json!(-99), "maelstrom-code-99")
    );
    // An unsupported operation: code 10, definite.
    let done = client
        .invoke(&op("acquire", serde_json::json!("t1")))
        .await
        .plain();
    assert_eq!(done.kind, EventType::Fail, "{done:?}");
    assert!(
        done.error
            .as_deref()
            .is_some_and(|e| e.starts_with("maelstrom-code-10 not-supported")),
        "{done:?}"
    );

    // One process served everything, without a single protocol failure.
    assert_eq!(client.pid(), Some(pid));
    assert_eq!(client.adapter_errors(), 0);
    client.close().await;
    assert!(gone(pid), "adapter {pid} survived close");
    let log = std::fs::read_to_string(&stderr).expect("stderr file");
    assert!(log.contains("register adapter for n1 ready"), "{log}");
    finish(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_info_and_the_adapter_is_replaced() {
    let mut client = misbehaving("garbage", 1000);
    client.open().await.expect("handshake");
    let first = client.pid().expect("running");
    let done = client.invoke(&write(1)).await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    let error = done.error.unwrap_or_default();
    assert!(
        error.starts_with("adapter-bad-line: misbehave.py"),
        "{error}"
    );
    assert!(
        error.contains("not a JSON object: \"this is not json xxx"),
        "{error}"
    );
    // The line is quoted, truncated.
    assert!(error.contains('…') && error.len() < 400, "{error}");
    assert!(gone(first), "the broken adapter {first} survived");
    assert_eq!(client.pid(), None);
    assert_eq!(client.adapter_errors(), 1);

    // The next operation gets a fresh adapter (which is just as broken).
    let done = client.invoke(&write(2)).await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    assert_eq!(client.adapter_errors(), 2);
    // A read in doubt had no effect: fail.
    let done = client.invoke(&op("read", Value::Null)).await;
    assert_eq!(done.kind, EventType::Fail, "{done:?}");
    assert_eq!(client.adapter_errors(), 3);
    finish(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_adapter_times_out_and_is_killed() {
    let mut client = misbehaving("hang", 300);
    client.open().await.expect("handshake");
    let pid = client.pid().expect("running");
    let started = Instant::now();
    let done = client.invoke(&write(1)).await;
    assert_eq!(done, Completion::info(serde_json::json!(1), "timeout"));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(gone(pid), "the hanging adapter {pid} survived");
    assert_eq!(client.adapter_errors(), 1);
    finish(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_that_exits_makes_the_operation_info() {
    let mut client = misbehaving("exit", 1000);
    client.open().await.expect("handshake");
    let pid = client.pid().expect("running");
    let done = client.invoke(&write(1)).await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    let error = done.error.unwrap_or_default();
    assert!(error.starts_with("adapter-exited: misbehave.py"), "{error}");
    assert!(error.contains("exit status: 3"), "{error}");
    assert!(gone(pid));
    // Replaced for the next operation.
    let done = client.invoke(&write(2)).await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    assert_eq!(client.adapter_errors(), 2);
    finish(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_id_or_type_makes_the_operation_info() {
    let mut client = misbehaving("wrong-id", 1000);
    let done = client.invoke(&write(1)).await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    let error = done.error.unwrap_or_default();
    assert!(error.contains("answered request 1 with id 2"), "{error}");
    // Ids are not reused by the replacement.
    let done = client.invoke(&write(1)).await;
    let error = done.error.unwrap_or_default();
    assert!(error.contains("answered request 2 with id 3"), "{error}");

    finish(client);
    let mut client = misbehaving("bad-type", 1000);
    let done = client.invoke(&write(1)).await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    let error = done.error.unwrap_or_default();
    assert!(error.contains("type \"\\\"okay\\\"\""), "{error}");
    assert_eq!(client.adapter_errors(), 1);
    finish(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_handshake_is_an_error_and_leaves_no_process() {
    let mut client = misbehaving("refuse", 1000);
    match client.open().await {
        Err(AdapterError::Refused { message, .. }) => {
            assert_eq!(message, "this adapter refuses to work")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    finish(client);
    let mut client = misbehaving("bad-handshake", 1000);
    match client.open().await {
        Err(e @ AdapterError::BadHandshake { .. }) => {
            assert!(e.to_string().contains("\"hello there\""), "{e}")
        }
        other => panic!("expected a bad handshake, got {other:?}"),
    }
    finish(client);
    let mut client = misbehaving("exit-handshake", 1000);
    match client.open().await {
        Err(e @ AdapterError::Exited { .. }) => {
            assert!(e.to_string().contains("exit status: 4"), "{e}")
        }
        other => panic!("expected an exit, got {other:?}"),
    }
    let script = fixture("misbehave.py");
    let mut hang = spec(
        "hang-handshake",
        &["python3", &script, "hang-handshake"],
        1000,
    );
    hang.start_timeout = Duration::from_secs(1);
    finish(client);
    let mut client = AdapterClient::new(hang);
    assert!(matches!(
        client.open().await,
        Err(AdapterError::HandshakeTimeout { .. })
    ));
    // Through invoke: the operation was never sent, so it is a definite fail.
    finish(client);
    let mut client = misbehaving("refuse", 1000);
    let done = client.invoke(&write(1)).await;
    assert_eq!(done.kind, EventType::Fail, "{done:?}");
    assert!(
        done.error.as_deref().is_some_and(|e| e.starts_with(
            "adapter-start: adapter misbehave.py refused the handshake: this adapter refuses"
        )),
        "{done:?}"
    );
    assert_eq!(client.adapter_errors(), 1);
    finish(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_failures_leave_no_process() {
    for mode in [
        "refuse",
        "bad-handshake",
        "exit-handshake",
        "hang-handshake",
    ] {
        let script = fixture("misbehave.py");
        let mut spec = spec(&format!("left-{mode}"), &["python3", &script, mode], 1000);
        spec.start_timeout = Duration::from_secs(1);
        let mut client = AdapterClient::new(spec.clone());
        assert!(client.open().await.is_err(), "{mode}");
        let pids = started_pids(&spec);
        assert_eq!(pids.len(), 1, "{mode}: {pids:?}");
        assert!(
            pids.iter().all(|&pid| gone(pid)),
            "{mode}: {pids:?} survived"
        );
        finish(client);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_or_empty_command_is_an_error() {
    let mut client = AdapterClient::new(spec("missing", &["/nonexistent/adapter"], 1000));
    match client.open().await {
        Err(e @ AdapterError::Spawn { .. }) => {
            assert!(e.to_string().contains("/nonexistent/adapter"), "{e}")
        }
        other => panic!("expected a spawn error, got {other:?}"),
    }
    finish(client);
    let mut client = AdapterClient::new(spec("empty", &[], 1000));
    assert!(matches!(client.open().await, Err(AdapterError::NoCommand)));
    let done = client.invoke(&write(1)).await;
    assert_eq!(done.kind, EventType::Fail, "{done:?}");
    finish(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_client_kills_the_adapter_and_its_children() {
    let script = fixture("misbehave.py");
    let mut spec = spec("spawn-child", &["python3", &script, "spawn-child"], 1000);
    let child_pid_file = stderr_file("spawn-child-pid");
    spec.env.push((
        "ADAPTER_CHILD_PID_FILE".into(),
        child_pid_file.display().to_string(),
    ));
    let mut client = AdapterClient::new(spec);
    client.open().await.expect("handshake");
    let pid = client.pid().expect("running");
    let grandchild: u32 = std::fs::read_to_string(&child_pid_file)
        .expect("the adapter wrote its child's pid")
        .trim()
        .parse()
        .expect("a pid");
    finish(client);
    assert!(
        eventually_gone(pid).await,
        "adapter {pid} survived the drop"
    );
    // The grandchild is not ours to reap: once killed, init reaps it.
    assert!(
        eventually_gone(grandchild).await,
        "the adapter's child {grandchild} survived"
    );
    let _ = std::fs::remove_file(child_pid_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_operation_gets_a_fresh_adapter() {
    let mut client = misbehaving("hang", 300);
    client.open().await.expect("handshake");
    let first = client.pid().expect("running");
    // The driver gives up on the invoke before the client's own timeout.
    let abandoned = tokio::time::timeout(Duration::from_millis(50), client.invoke(&write(1))).await;
    assert!(abandoned.is_err());
    let done = client.invoke(&write(2)).await;
    assert_eq!(done, Completion::info(serde_json::json!(2), "timeout"));
    assert!(gone(first), "the abandoned adapter {first} survived");
    finish(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_can_share_one_error_counter() {
    let counter = Arc::new(AtomicU64::new(0));
    let mut a = misbehaving("garbage", 1000).with_error_counter(Arc::clone(&counter));
    let mut b = misbehaving("wrong-id", 1000).with_error_counter(Arc::clone(&counter));
    let _ = a.invoke(&write(1)).await;
    let _ = b.invoke(&write(1)).await;
    assert_eq!(counter.load(Ordering::Relaxed), 2);
    assert_eq!(a.adapter_errors(), 2);
    finish(a);
    finish(b);
}

#[test]
fn extras_are_the_fields_beyond_the_protocol() {
    let mut client = AdapterClient::new(spec("extras", &["adapter"], 1));
    client.line =
        r#"{"id":4,"type":"ok","value":1,"error":null,"text":"t","revision":12,"served_by":"n1"}"#
            .to_string()
            + "\n";
    let (completion, extra) = match client.interpret(&write(1), 4) {
        Ok(answer) => answer,
        Err(_) => panic!("a good answer was refused"),
    };
    assert_eq!(completion, Completion::ok(serde_json::json!(1)));
    let names: Vec<&str> = extra.keys().map(String::as_str).collect();
    assert_eq!(names, ["revision", "served_by"]);
    assert_eq!(
        with_extras(completion, extra),
        Completion::ok(serde_json::json!(1))
            .with_extra("revision", 12)
            .with_extra("served_by", "n1")
    );
    // Maelstrom's reply field names the request as well.
    client.line = "{\"in_reply_to\":5,\"type\":\"write_ok\"}\n".to_string();
    assert!(client.interpret(&write(1), 5).is_ok());
    // A read must say what it read.
    client.line = "{\"id\":6,\"type\":\"ok\"}\n".to_string();
    assert!(client.interpret(&op("read", Value::Null), 6).is_err());
    finish(client);
}

#[test]
fn quotes_are_truncated_on_a_char_boundary() {
    assert_eq!(quote("abc"), "\"abc\"");
    let long = "é".repeat(300);
    let quoted = quote(&long);
    assert_eq!(quoted.chars().filter(|&c| c == 'é').count(), QUOTE_CHARS);
    assert!(quoted.ends_with('…'));
}

#[test]
fn the_adapter_is_named_by_its_script_or_program() {
    let named = |argv: &[&str]| AdapterClient::new(spec("name", argv, 1)).name().to_string();
    assert_eq!(named(&["python3", "/x/adapter.py"]), "adapter.py");
    assert_eq!(named(&["/usr/bin/my-adapter", "--flag"]), "my-adapter");
    assert_eq!(named(&["python3", "-u", "adapter.py"]), "python3");
    assert_eq!(named(&[]), "(no command)");
}

#[test]
fn maelstrom_codes_are_definite_or_not() {
    for code in [1, 10, 11, 12, 14, 20, 21, 22, 30] {
        assert!(
            maelstrom_code(code).is_some_and(|(_, definite)| definite),
            "{code}"
        );
    }
    for code in [0, 13] {
        assert!(
            maelstrom_code(code).is_some_and(|(_, definite)| !definite),
            "{code}"
        );
    }
    assert_eq!(maelstrom_code(99), None);
}

/// The etcd example adapter, bound to the member at `client` (`127.0.0.1:port`).
fn etcd_adapter(client: &str, workload: &str, extra_args: &[&str]) -> AdapterClient {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/etcd-python/adapter.py")
        .display()
        .to_string();
    let (host, port) = client.rsplit_once(':').expect("host:port");
    let mut argv = vec!["python3", script.as_str()];
    argv.extend_from_slice(extra_args);
    let mut spec = spec(&format!("etcd-{workload}{}", extra_args.len()), &argv, 5000);
    spec.handshake = Handshake {
        node: "e1".into(),
        addr: host.into(),
        cluster: vec![("e1".into(), host.into())],
        workload: workload.into(),
        ports: BTreeMap::from([("client".to_string(), port.parse().expect("a port"))]),
    };
    AdapterClient::new(spec)
}

/// Runs the same operations through both clients and asserts the same completions.
async fn agree(adapter: &mut AdapterClient, builtin: &mut crate::EtcdClient, ops: &[Op]) {
    for op in ops {
        let through_adapter = adapter.invoke(op).await.plain();
        let built_in = builtin.invoke(op).await.plain();
        assert_eq!(through_adapter, built_in, "{op:?}");
        assert_ne!(
            through_adapter.kind,
            EventType::Info,
            "{op:?}: {through_adapter:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_etcd_adapter_agrees_with_the_builtin_client() {
    use crate::{EtcdClient, EtcdReads, WorkloadKind};
    let etcd = crate::etcd::tests::start_etcd("adapter").await;
    let timeout = Duration::from_secs(5);
    let builtin =
        |kind| EtcdClient::new(kind, etcd.client.clone(), timeout, EtcdReads::Linearizable);

    // register: the same operations on two keys, then each reads the other's key.
    let mut adapter = etcd_adapter(&etcd.client, "register", &[]);
    adapter.open().await.expect("handshake");
    let mut ours = builtin(WorkloadKind::Register);
    let on = |key: i64, f: &str, value: Value| Op::new(f, Some(Key::Int(key)), value);
    let script = |k: i64| {
        vec![
            on(k, "read", Value::Null),
            on(k, "cas", serde_json::json!([null, 0])),
            on(k, "write", serde_json::json!(1)),
            on(k, "read", Value::Null),
            on(k, "cas", serde_json::json!([1, 2])),
            on(k, "cas", serde_json::json!([1, 3])),
            on(k, "cas", serde_json::json!([null, 4])),
            on(k, "read", Value::Null),
        ]
    };
    let mut outcomes = Vec::new();
    for (x, y) in script(1).iter().zip(script(2)) {
        let through_adapter = adapter.invoke(x).await.plain();
        let built_in = ours.invoke(&y).await.plain();
        assert_eq!(through_adapter, built_in, "{x:?}");
        outcomes.push(through_adapter.kind);
    }
    use EventType::{Fail, Ok};
    assert_eq!(outcomes, [Ok, Ok, Ok, Ok, Ok, Fail, Fail, Ok]);
    agree(
        &mut adapter,
        &mut ours,
        &[on(1, "read", Value::Null), on(2, "read", Value::Null)],
    )
    .await;
    // Values are stored alike: each client reads, and compares, what the other wrote.
    let nested = serde_json::json!({"nested": [1, "two"], "a": null});
    let done = adapter
        .invoke(&Op::new("write", None, nested.clone()))
        .await
        .plain();
    assert_eq!(done, Completion::ok(nested.clone()));
    let done = ours
        .invoke(&Op::new("read", None, Value::Null))
        .await
        .plain();
    assert_eq!(done, Completion::ok(nested.clone()));
    let cas = Op::new("cas", None, serde_json::json!([nested, 5]));
    assert_eq!(ours.invoke(&cas).await.plain().kind, EventType::Ok);
    let done = adapter
        .invoke(&Op::new("read", None, Value::Null))
        .await
        .plain();
    assert_eq!(done, Completion::ok(serde_json::json!(5)));
    let cas = Op::new("cas", None, serde_json::json!([5, nested]));
    assert_eq!(adapter.invoke(&cas).await.plain().kind, EventType::Ok);
    let cas = Op::new("cas", None, serde_json::json!([nested, 5]));
    assert_eq!(ours.invoke(&cas).await.plain().kind, EventType::Ok);
    assert_eq!(adapter.adapter_errors(), 0);

    // --serializable reads answer too.
    let mut serializable = etcd_adapter(&etcd.client, "register", &["--serializable"]);
    let done = serializable
        .invoke(&Op::new("read", None, Value::Null))
        .await
        .plain();
    assert_eq!(done, Completion::ok(serde_json::json!(5)));

    // list-append, set and mutex map onto the same keys as the built-in client.
    finish(adapter);
    let mut adapter = etcd_adapter(&etcd.client, "list-append", &[]);
    let mut ours = builtin(WorkloadKind::ListAppend);
    let txn = |v: Value| Op::new("txn", None, v);
    let done = adapter
        .invoke(&txn(serde_json::json!([
            ["append", 7, 1],
            ["r", 7, null],
            ["append", "s", 2]
        ])))
        .await
        .plain();
    assert_eq!(
        done,
        Completion::ok(serde_json::json!([
            ["append", 7, 1],
            ["r", 7, [1]],
            ["append", "s", 2]
        ]))
    );
    agree(
        &mut adapter,
        &mut ours,
        &[txn(serde_json::json!([
            ["r", 7, null],
            ["r", "s", null],
            ["r", 8, null]
        ]))],
    )
    .await;
    let appends = |key: i64| txn(serde_json::json!([["append", key, 3], ["r", key, null]]));
    let (through_adapter, built_in) = (
        adapter.invoke(&appends(8)).await.plain(),
        ours.invoke(&appends(9)).await.plain(),
    );
    assert_eq!(
        through_adapter,
        Completion::ok(serde_json::json!([["append", 8, 3], ["r", 8, [3]]]))
    );
    assert_eq!(
        built_in,
        Completion::ok(serde_json::json!([["append", 9, 3], ["r", 9, [3]]]))
    );
    // Each reads the other's appends.
    let read_both = txn(serde_json::json!([["r", 8, null], ["r", 9, null]]));
    agree(&mut adapter, &mut ours, &[read_both]).await;

    finish(adapter);
    let mut adapter = etcd_adapter(&etcd.client, "set", &[]);
    let mut ours = builtin(WorkloadKind::Set);
    let done = adapter
        .invoke(&Op::new("add", None, serde_json::json!(1)))
        .await
        .plain();
    assert_eq!(done.kind, EventType::Ok, "{done:?}");
    agree(
        &mut adapter,
        &mut ours,
        &[
            Op::new("add", None, serde_json::json!(2)),
            Op::new("read", None, Value::Null),
        ],
    )
    .await;

    finish(adapter);
    let mut adapter = etcd_adapter(&etcd.client, "mutex", &[]);
    let mut ours = builtin(WorkloadKind::Mutex);
    let lock = |f: &str, owner: &str| Op::new(f, None, serde_json::json!(owner));
    let done = adapter.invoke(&lock("acquire", "t1")).await.plain();
    assert_eq!(done.kind, EventType::Ok, "{done:?}");
    agree(
        &mut adapter,
        &mut ours,
        &[lock("acquire", "t2"), lock("release", "t2")],
    )
    .await;
    let done = ours.invoke(&lock("release", "t1")).await.plain();
    assert_eq!(done.kind, EventType::Ok, "{done:?}");
    finish(serializable);
    finish(adapter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_etcd_adapter_fails_on_a_refused_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let mut adapter = etcd_adapter(&closed, "register", &[]);
    // The handshake does not contact etcd: an adapter starts while its node is down.
    adapter.open().await.expect("handshake");
    let done = adapter.invoke(&write(1)).await;
    assert_eq!(done.kind, EventType::Fail, "{done:?}");
    assert!(
        done.error
            .as_deref()
            .is_some_and(|e| e.starts_with("connection-refused")),
        "{done:?}"
    );
    // A workload it does not serve is refused at the handshake.
    finish(adapter);
    let mut adapter = etcd_adapter(&closed, "rw-register", &[]);
    assert!(matches!(
        adapter.open().await,
        Err(AdapterError::Refused { .. })
    ));
    finish(adapter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_line_without_a_newline_is_parsed_not_called_too_long() {
    let mut client = misbehaving("no-newline", 2000);
    let done = client.invoke(&write(1)).await;
    assert_eq!(done, Completion::ok(serde_json::json!(1)), "{done:?}");
    // The adapter exited after answering: the next operation notices and replaces it.
    finish(client);

    let mut client = misbehaving("too-long", 5000);
    let done = client.invoke(&write(1)).await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    let error = done.error.unwrap_or_default();
    assert!(
        error.contains(&format!("printed a line longer than {MAX_LINE} bytes")),
        "{error}"
    );
    finish(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chatty_adapters_stderr_is_cut_to_its_head_and_tail() {
    let script = fixture("misbehave.py");
    let mut spec = spec("chatty", &["python3", &script, "chatty"], 1000);
    spec.stderr_cap = crate::child::OutputCap {
        head: 32 << 10,
        tail: 32 << 10,
    };
    let stderr = spec.stderr.clone();
    let mut client = AdapterClient::new(spec);
    client.open().await.expect("handshake");
    let cuts = client.output_cuts();
    client.close().await;
    // The copier writes the tail once the stream ends, just after the adapter is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while cuts.cuts().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = std::fs::read_to_string(&stderr).expect("stderr file");
    assert!(log.len() < (64 << 10) + 500, "{} bytes kept", log.len());
    assert!(
        log.contains("misbehaving adapter (chatty)"),
        "the head is kept"
    );
    assert!(log.contains(" bytes cut by splitbrain"), "no marker");
    assert!(log.trim_end().ends_with("chatty: done"), "the tail is kept");
    let cut = cuts.cuts();
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert!(cut[0].1 > 10_000_000, "{cut:?}");
    finish(client);
}
