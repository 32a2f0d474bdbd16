//! The Redis example (`examples/redis/`) against a real primary and replica: both
//! started through the example's own `start.sh`, n1 on 127.0.0.1 and n2 on 127.0.0.2
//! with the same port (as in a run, where every node has its own address), and driven
//! through `adapter.py` by [`AdapterClient`]. What is asserted does not depend on timing:
//! outcomes (ok, fail, info), values, and that a replica catches up eventually. A stale
//! read right after a paused replica resumes is allowed, not required.
//!
//! Skipped, with a note on stderr, where `redis-server` is not installed.

use super::*;
use std::net::{TcpListener, TcpStream};
use std::process::Child;

const PRIMARY: &str = "127.0.0.1";
const REPLICA: &str = "127.0.0.2";

/// A file of the Redis example.
fn example(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/redis")
        .join(file)
        .display()
        .to_string()
}

fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(command).is_file()))
}

/// A port free on both loopback addresses (the nodes share the port number).
fn free_shared_port() -> u16 {
    for _ in 0..50 {
        let port = TcpListener::bind((PRIMARY, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if TcpListener::bind((REPLICA, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both {PRIMARY} and {REPLICA}");
}

/// A Redis primary (n1) and one replica (n2). Dropping it — also while a failed
/// assertion unwinds — kills and reaps both processes; the folder (data and logs) is
/// removed, or kept for a look after a panic.
struct Redis {
    /// `nodes[0]` is n1, `nodes[1]` n2; `None` while a node is down.
    nodes: [Option<Child>; 2],
    /// Holds `n1/`, `n2/` (data) and `n1.log`, `n2.log`.
    dir: PathBuf,
    /// Every node's Redis port.
    port: u16,
}

impl Redis {
    /// Starts both nodes and waits until they accept connections; `None` (after saying
    /// why on stderr) when redis-server is not installed.
    fn start(tag: &str) -> Option<Redis> {
        if !on_path("redis-server") {
            eprintln!(
                "skipping the Redis example test: redis-server is not installed \
                 (`apt-get install redis-server`)"
            );
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "splitbrain-redis-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut redis = Redis {
            nodes: [None, None],
            dir,
            port: free_shared_port(),
        };
        redis.launch(0);
        redis.launch(1);
        redis.wait_ready(0);
        redis.wait_ready(1);
        Some(redis)
    }

    fn name(i: usize) -> &'static str {
        ["n1", "n2"][i]
    }

    fn addr(i: usize) -> &'static str {
        [PRIMARY, REPLICA][i]
    }

    /// Starts node `i` as the description would: `sh start.sh NAME ADDR PORT DATA PEERS`.
    fn launch(&mut self, i: usize) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", Self::name(i))))
            .expect("log file");
        let err = log.try_clone().expect("log file");
        let child = std::process::Command::new("sh")
            .arg(example("start.sh"))
            .args([Self::name(i), Self::addr(i), &self.port.to_string()])
            .arg(self.dir.join(Self::name(i)))
            .arg(format!("n1={PRIMARY},n2={REPLICA}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("sh start.sh");
        self.nodes[i] = Some(child);
    }

    fn wait_ready(&self, i: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Self::addr(i), self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis {} did not accept connections within 10 s; see {}",
                Self::name(i),
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to node `i` (start.sh execs redis-server: the pid is Redis's).
    fn signal(&self, i: usize, signal: Signal) {
        let child = self.nodes[i].as_ref().expect("node is running");
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
        nix::sys::signal::kill(pid, signal).expect("signal redis");
    }

    /// SIGKILLs node `i` and reaps it.
    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            // SIGKILL ends a stopped process too: no SIGCONT needed.
            self.kill(i);
        }
        if std::thread::panicking() {
            eprintln!(
                "the Redis nodes' data and logs are kept in {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The example adapter bound to node `node` (0: n1, 1: n2). `cluster` lists the members
/// in order; the adapter takes the first for the primary.
fn redis_adapter(
    port: u16,
    node: usize,
    cluster: &[usize],
    workload: &str,
    timeout_ms: u64,
) -> AdapterClient {
    let script = example("adapter.py");
    let order: Vec<&str> = cluster.iter().map(|&i| Redis::name(i)).collect();
    let tag = format!(
        "redis-{port}-{}-{workload}-{timeout_ms}-{}",
        Redis::name(node),
        order.join("")
    );
    let mut spec = spec(&tag, &["python3", &script], timeout_ms);
    spec.handshake = Handshake {
        node: Redis::name(node).into(),
        addr: Redis::addr(node).into(),
        cluster: cluster
            .iter()
            .map(|&i| (Redis::name(i).to_string(), Redis::addr(i).to_string()))
            .collect(),
        workload: workload.into(),
        ports: BTreeMap::from([("redis".to_string(), port)]),
    };
    AdapterClient::new(spec)
}

fn on(key: Option<Key>, f: &str, value: Value) -> Op {
    Op::new(f, key, value)
}

fn read() -> Op {
    op("read", Value::Null)
}

/// Reads through `client` until it reads `expected` (every read must be `ok`), for at
/// most 10 s.
async fn eventually_reads(client: &mut AdapterClient, expected: Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done = client.invoke(&read()).await;
        assert_eq!(done.kind, EventType::Ok, "{done:?}");
        if done.value == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still read {} instead of {expected} after 10 s",
            done.value
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_adapter_writes_to_the_primary_and_reads_its_own_node() {
    let Some(mut redis) = Redis::start("adapter") else {
        return;
    };
    use serde_json::json;

    // On the primary: registers, values stored as JSON text, cas both ways.
    let mut primary = redis_adapter(redis.port, 0, &[0, 1], "register", 5000);
    primary.open().await.expect("handshake");
    assert_eq!(primary.invoke(&read()).await, Completion::ok(Value::Null));
    let steps = [
        (write(1), Completion::ok(json!(1))),
        (read(), Completion::ok(json!(1))),
        (op("cas", json!([1, 2])), Completion::ok(json!([1, 2]))),
        (
            op("cas", json!([1, 3])),
            Completion::fail(json!([1, 3]), "cas-mismatch"),
        ),
        (
            op("cas", json!([null, 4])),
            Completion::fail(json!([null, 4]), "cas-mismatch"),
        ),
        (read(), Completion::ok(json!(2))),
    ];
    for (op, expected) in steps {
        assert_eq!(primary.invoke(&op).await, expected, "{op:?}");
    }
    let nested = json!({"nested": [1, "twö"], "a": null});
    assert_eq!(
        primary.invoke(&op("write", nested.clone())).await.kind,
        EventType::Ok
    );
    assert_eq!(
        primary.invoke(&read()).await,
        Completion::ok(nested.clone())
    );
    let cas = op("cas", json!([nested, 5]));
    assert_eq!(primary.invoke(&cas).await.kind, EventType::Ok);

    // kv: named keys, an integer key and a string key apart from the register.
    let mut kv = redis_adapter(redis.port, 0, &[0, 1], "kv", 5000);
    for key in [Key::Int(3), Key::Str("k".into())] {
        let at = |f: &str, v: Value| on(Some(key.clone()), f, v);
        assert_eq!(
            kv.invoke(&at("read", Value::Null)).await,
            Completion::ok(Value::Null)
        );
        assert_eq!(
            kv.invoke(&at("cas", json!([null, 0]))).await.kind,
            EventType::Ok
        );
        assert_eq!(
            kv.invoke(&at("read", Value::Null)).await,
            Completion::ok(json!(0))
        );
    }
    assert_eq!(kv.invoke(&read()).await, Completion::ok(json!(5)));

    // Bound to the replica: a write goes to the primary, the replica's reads catch up.
    let mut replica = redis_adapter(redis.port, 1, &[0, 1], "register", 5000);
    assert_eq!(replica.invoke(&write(6)).await, Completion::ok(json!(6)));
    eventually_reads(&mut replica, json!(6)).await;

    // A paused replica: writes go on; its reads time out (the adapter's own `info`,
    // recorded `fail` for a read); once resumed it may serve the old value for a while.
    let mut replica_fast = redis_adapter(redis.port, 1, &[0, 1], "register", 1000);
    redis.signal(1, Signal::SIGSTOP);
    assert_eq!(primary.invoke(&write(7)).await, Completion::ok(json!(7)));
    let done = replica_fast.invoke(&read()).await;
    assert_eq!(done, Completion::fail(Value::Null, "timeout"));
    redis.signal(1, Signal::SIGCONT);
    let done = replica.invoke(&read()).await;
    assert_eq!(done.kind, EventType::Ok, "{done:?}");
    assert!(done.value == json!(6) || done.value == json!(7), "{done:?}");
    eventually_reads(&mut replica, json!(7)).await;

    // A paused primary: the write times out as `info` — and takes effect when the
    // primary resumes, which is why a timeout is never `fail`.
    let mut primary_fast = redis_adapter(redis.port, 0, &[0, 1], "register", 1000);
    redis.signal(0, Signal::SIGSTOP);
    let done = primary_fast.invoke(&write(8)).await;
    assert_eq!(done, Completion::info(json!(8), "timeout"));
    redis.signal(0, Signal::SIGCONT);
    eventually_reads(&mut primary, json!(8)).await;
    eventually_reads(&mut replica, json!(8)).await;

    // A write sent to a replica is refused by Redis (READONLY): definite.
    let mut misdirected = redis_adapter(redis.port, 1, &[1, 0], "register", 5000);
    let done = misdirected.invoke(&write(9)).await;
    assert_eq!(done.kind, EventType::Fail, "{done:?}");
    assert!(
        done.error
            .as_deref()
            .is_some_and(|e| e.starts_with("redis-error") && e.contains("READONLY")),
        "{done:?}"
    );

    // The primary killed: writes are refused (fail); the replica still serves its copy.
    redis.kill(0);
    let done = primary.invoke(&write(10)).await;
    assert_eq!(done.kind, EventType::Fail, "{done:?}");
    assert!(
        done.error
            .as_deref()
            .is_some_and(|e| e.starts_with("connection-refused")),
        "{done:?}"
    );
    assert_eq!(primary.invoke(&read()).await.kind, EventType::Fail);
    assert_eq!(replica.invoke(&read()).await, Completion::ok(json!(8)));

    // Restarted empty (nothing is persisted), the primary empties its replica: the
    // acknowledged write of 8 is lost.
    redis.launch(0);
    redis.wait_ready(0);
    eventually_reads(&mut replica, Value::Null).await;
    assert_eq!(primary.invoke(&read()).await, Completion::ok(Value::Null));

    for client in [
        &primary,
        &kv,
        &replica,
        &replica_fast,
        &primary_fast,
        &misdirected,
    ] {
        assert_eq!(
            client.adapter_errors(),
            0,
            "{}",
            client.spec.stderr.display()
        );
    }
    for client in [
        primary,
        kv,
        replica,
        replica_fast,
        primary_fast,
        misdirected,
    ] {
        finish(client);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_adapter_fails_on_a_refused_connection_and_refuses_other_workloads() {
    // No Redis needed: nothing listens on this port.
    let port = free_shared_port();
    let mut adapter = redis_adapter(port, 1, &[0, 1], "register", 1000);
    // The handshake does not contact Redis: an adapter starts while its node is down.
    adapter.open().await.expect("handshake");
    for op in [write(1), op("cas", serde_json::json!([1, 2])), read()] {
        let done = adapter.invoke(&op).await;
        assert_eq!(done.kind, EventType::Fail, "{done:?}");
        assert!(
            done.error
                .as_deref()
                .is_some_and(|e| e.starts_with("connection-refused")),
            "{done:?}"
        );
    }
    assert_eq!(adapter.adapter_errors(), 0);
    finish(adapter);

    let mut adapter = redis_adapter(port, 0, &[0, 1], "set", 1000);
    match adapter.open().await {
        Err(AdapterError::Refused { message, .. }) => {
            assert!(
                message.contains("set") && message.contains("register"),
                "{message}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    finish(adapter);
    let mut adapter = redis_adapter(port, 0, &[0, 1], "register", 1000);
    adapter.spec.handshake.ports = BTreeMap::from([("client".to_string(), port)]);
    assert!(matches!(
        adapter.open().await,
        Err(AdapterError::Refused { .. })
    ));
    finish(adapter);
}
