//! The etcd client against a fake gateway (every outcome class, deterministically) and
//! against a real single-member etcd on loopback (every workload's mapping).

use super::*;
use splitbrain_checker::EventType;
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the fake gateway does with every request.
#[derive(Clone, Copy)]
enum Fake {
    /// Answer with this status and JSON body.
    Answer(u16, &'static str),
    /// Read the request and never answer.
    Hang,
    /// Read the request and close the connection.
    Close,
}

/// A one-connection-at-a-time HTTP server on an ephemeral loopback port.
async fn fake_gateway(behaviour: Fake) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                // One request: headers and a small body arrive in one read on loopback.
                if socket.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                match behaviour {
                    Fake::Answer(status, body) => {
                        let response = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(response.as_bytes()).await;
                        let _ = socket.read(&mut buf).await;
                    }
                    Fake::Hang => {
                        let _ = socket.read(&mut buf).await;
                    }
                    Fake::Close => {}
                }
            });
        }
    });
    addr
}

fn client(addr: &str, kind: WorkloadKind, timeout_ms: u64) -> EtcdClient {
    EtcdClient::new(
        kind,
        addr,
        Duration::from_millis(timeout_ms),
        EtcdReads::Linearizable,
    )
}

fn write(v: i64) -> Op {
    Op::new("write", None, json!(v))
}

fn read() -> Op {
    Op::new("read", None, Value::Null)
}

#[tokio::test]
async fn outcomes_are_classified_definite_or_not() {
    // etcd without a quorum: "request timed out" may still commit.
    let addr = fake_gateway(Fake::Answer(
        503,
        r#"{"error":"etcdserver: request timed out","code":14}"#,
    ))
    .await;
    let done = client(&addr, WorkloadKind::Register, 2000)
        .invoke(&write(1))
        .await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    // The same for a read: nothing to be uncertain about.
    let done = client(&addr, WorkloadKind::Register, 2000)
        .invoke(&read())
        .await;
    assert_eq!(done.kind, EventType::Fail, "{done:?}");

    let addr = fake_gateway(Fake::Answer(400, r#"{"error":"bad key","code":3}"#)).await;
    let done = client(&addr, WorkloadKind::Register, 2000)
        .invoke(&write(1))
        .await;
    assert_eq!(done.kind, EventType::Fail, "{done:?}");

    let addr = fake_gateway(Fake::Hang).await;
    let done = client(&addr, WorkloadKind::Register, 200)
        .invoke(&write(1))
        .await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    assert_eq!(done.error.as_deref(), Some("timeout"));

    let addr = fake_gateway(Fake::Close).await;
    let done = client(&addr, WorkloadKind::Register, 2000)
        .invoke(&write(1))
        .await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");

    let addr = fake_gateway(Fake::Answer(200, "this is not json")).await;
    let done = client(&addr, WorkloadKind::Register, 2000)
        .invoke(&write(1))
        .await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");

    // Nobody listening: the request never left.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let done = client(&closed, WorkloadKind::Register, 2000)
        .invoke(&write(1))
        .await;
    assert_eq!(done.kind, EventType::Fail, "{done:?}");
    assert!(
        done.error
            .as_deref()
            .unwrap_or("")
            .starts_with("connection-refused"),
        "{done:?}"
    );
}

#[tokio::test]
async fn an_ok_answer_carries_its_revision() {
    let addr = fake_gateway(Fake::Answer(
        200,
        r#"{"header":{"cluster_id":"1","revision":"12"},"kvs":[{"key":"cg==","value":"NQ==","mod_revision":"11"}]}"#,
    ))
    .await;
    let done = client(&addr, WorkloadKind::Register, 2000)
        .invoke(&read())
        .await;
    assert_eq!(done, Completion::ok(json!(5)).with_extra("revision", 12));
    let done = client(&addr, WorkloadKind::Register, 2000)
        .invoke(&write(3))
        .await;
    assert_eq!(done, Completion::ok(json!(3)).with_extra("revision", 12));

    // No header, or a revision that is not a number: still ok, with no revision.
    for body in [r#"{}"#, r#"{"header":{"revision":"twelve"}}"#] {
        let addr = fake_gateway(Fake::Answer(200, body)).await;
        let done = client(&addr, WorkloadKind::Register, 2000)
            .invoke(&write(3))
            .await;
        assert_eq!(done, Completion::ok(json!(3)), "{body}");
    }
}

#[tokio::test]
async fn a_failed_compare_is_a_definite_fail() {
    // A txn whose compare failed answers without `succeeded` (defaults are omitted).
    let addr = fake_gateway(Fake::Answer(200, r#"{"header":{"revision":"7"}}"#)).await;
    let done = client(&addr, WorkloadKind::Register, 2000)
        .invoke(&Op::new("cas", None, json!([1, 2])))
        .await;
    assert_eq!(done.kind, EventType::Fail, "{done:?}");
    assert_eq!(done.error.as_deref(), Some("cas-mismatch"));
    assert!(
        done.extra.is_empty(),
        "only ok completions carry a revision"
    );
}

/// A single-member etcd on loopback ports in a temporary directory, stopped on drop.
pub(crate) struct Etcd {
    child: std::process::Child,
    dir: PathBuf,
    /// The member's client address, `127.0.0.1:port`.
    pub(crate) client: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts etcd, or says why it cannot (`.ci/run` installs Debian's `etcd-server`).
pub(crate) async fn start_etcd(tag: &str) -> Etcd {
    let dir = std::env::temp_dir().join(format!("splitbrain-etcd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (client_port, peer_port) = (free_port(), free_port());
    let client = format!("127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let log = std::fs::File::create(dir.join("etcd.log")).expect("log file");
    let child = std::process::Command::new("etcd")
        .args(["--name", "e1", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen-client-urls", &format!("http://{client}")])
        .args(["--advertise-client-urls", &format!("http://{client}")])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("e1={peer}")])
        .args(["--initial-cluster-state", "new", "--initial-cluster-token", tag])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start etcd ({e}): install Debian's etcd-server (`apt-get install etcd-server`)")
        });
    let etcd = Etcd { child, dir, client };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut probe = EtcdConnection::new(etcd.client.clone());
    loop {
        let soon = Instant::now() + Duration::from_millis(500);
        if probe
            .get("probe", EtcdReads::Linearizable, soon)
            .await
            .is_ok()
        {
            return etcd;
        }
        assert!(
            Instant::now() < deadline,
            "etcd did not answer within 20 s; see {}",
            etcd.dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Performs one operation. An `ok` must carry the revision it was answered at, which is
/// checked and then dropped, so the assertions compare the rest.
async fn run(client: &mut EtcdClient, f: &str, key: Option<i64>, value: Value) -> Completion {
    let mut done = client.invoke(&Op::new(f, key.map(Key::Int), value)).await;
    if done.kind == EventType::Ok {
        let revision = done.extra.remove("revision");
        assert!(
            revision
                .as_ref()
                .and_then(Value::as_i64)
                .is_some_and(|r| r > 0),
            "{f}: revision {revision:?}"
        );
    }
    assert!(done.extra.is_empty(), "{done:?}");
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_maps_onto_a_real_etcd() {
    let etcd = start_etcd("workloads").await;
    let timeout = Duration::from_secs(5);

    let mut c = EtcdClient::new(
        WorkloadKind::Kv,
        etcd.client.clone(),
        timeout,
        EtcdReads::Linearizable,
    );
    assert_eq!(
        run(&mut c, "read", Some(1), Value::Null).await,
        Completion::ok(Value::Null)
    );
    // A cas from null needs the key absent.
    assert_eq!(
        run(&mut c, "cas", Some(1), json!([null, 3])).await.kind,
        EventType::Ok
    );
    assert_eq!(
        run(&mut c, "write", Some(1), json!(4)).await,
        Completion::ok(json!(4))
    );
    assert_eq!(
        run(&mut c, "cas", Some(1), json!([4, 5])).await.kind,
        EventType::Ok
    );
    let mismatch = run(&mut c, "cas", Some(1), json!([4, 6])).await;
    assert_eq!(mismatch, Completion::fail(json!([4, 6]), "cas-mismatch"));
    assert_eq!(
        run(&mut c, "read", Some(1), Value::Null).await,
        Completion::ok(json!(5))
    );
    assert_eq!(
        run(&mut c, "cas", Some(1), json!([null, 9])).await.kind,
        EventType::Fail
    );
    let mut stale = EtcdClient::new(
        WorkloadKind::Kv,
        etcd.client.clone(),
        timeout,
        EtcdReads::Serializable,
    );
    assert_eq!(
        run(&mut stale, "read", Some(1), Value::Null).await,
        Completion::ok(json!(5))
    );

    let mut m = EtcdClient::new(
        WorkloadKind::Mutex,
        etcd.client.clone(),
        timeout,
        EtcdReads::Linearizable,
    );
    assert_eq!(
        run(&mut m, "acquire", None, json!("t1")).await.kind,
        EventType::Ok
    );
    assert_eq!(
        run(&mut m, "acquire", None, json!("t2")).await.kind,
        EventType::Fail
    );
    assert_eq!(
        run(&mut m, "release", None, json!("t2")).await.kind,
        EventType::Fail
    );
    assert_eq!(
        run(&mut m, "release", None, json!("t1")).await.kind,
        EventType::Ok
    );
    assert_eq!(
        run(&mut m, "acquire", None, json!("t2")).await.kind,
        EventType::Ok
    );

    let mut s = EtcdClient::new(
        WorkloadKind::Set,
        etcd.client.clone(),
        timeout,
        EtcdReads::Linearizable,
    );
    assert_eq!(
        run(&mut s, "read", None, Value::Null).await,
        Completion::ok(json!([]))
    );
    for v in [3, 1, 2, 1] {
        assert_eq!(run(&mut s, "add", None, json!(v)).await.kind, EventType::Ok);
    }
    // Elements come back in key order (`set/1` < `set/2` < `set/3`).
    assert_eq!(
        run(&mut s, "read", None, Value::Null).await,
        Completion::ok(json!([1, 2, 3]))
    );

    let mut l = EtcdClient::new(
        WorkloadKind::ListAppend,
        etcd.client.clone(),
        timeout,
        EtcdReads::Linearizable,
    );
    let done = run(
        &mut l,
        "txn",
        None,
        json!([["append", 7, 1], ["r", 7, null], ["r", 8, null]]),
    )
    .await;
    assert_eq!(
        done,
        Completion::ok(json!([["append", 7, 1], ["r", 7, [1]], ["r", 8, []]]))
    );
    let done = run(
        &mut l,
        "txn",
        None,
        json!([
            ["r", 7, null],
            ["append", 7, 2],
            ["append", 8, 1],
            ["r", 7, null]
        ]),
    )
    .await;
    assert_eq!(
        done,
        Completion::ok(json!([
            ["r", 7, [1]],
            ["append", 7, 2],
            ["append", 8, 1],
            ["r", 7, [1, 2]]
        ]))
    );
    let done = run(&mut l, "txn", None, json!([["r", 7, null], ["r", 8, null]])).await;
    assert_eq!(
        done,
        Completion::ok(json!([["r", 7, [1, 2]], ["r", 8, [1]]]))
    );
    // A key that does not hold a list cannot be appended to: the reply is not understood.
    let mut kv = EtcdClient::new(
        WorkloadKind::Kv,
        etcd.client.clone(),
        timeout,
        EtcdReads::Linearizable,
    );
    assert_eq!(
        run(&mut kv, "write", Some(9), json!(1)).await.kind,
        EventType::Ok
    );
    let done = run(&mut l, "txn", None, json!([["append", 9, 1]])).await;
    assert_eq!(done.kind, EventType::Fail, "nothing was written: {done:?}");
}

/// Two transactions that read the same snapshot: the second commit's guard fails and
/// it is a definite `fail`, never a lost update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_append_makes_the_guard_fail() {
    let etcd = start_etcd("guard").await;
    let deadline = || Instant::now() + Duration::from_secs(5);
    let mut raw = EtcdConnection::new(etcd.client.clone());
    raw.put("5", b"[1]", deadline()).await.expect("put");
    // Read the snapshot as the client would, then change the key behind its back.
    let snapshot = raw
        .call(
            "/v3/kv/txn",
            &json!({"success": [{"request_range": {"key": encode(b"5")}}]}),
            deadline(),
        )
        .await
        .expect("snapshot");
    let revision = int_field(
        snapshot
            .pointer("/responses/0/response_range/kvs/0")
            .expect("kv"),
        "mod_revision",
    )
    .expect("revision");
    raw.put("5", b"[1,2]", deadline())
        .await
        .expect("concurrent append");
    let guarded = json!({
        "compare": [{"key": encode(b"5"), "target": "MOD", "result": "EQUAL", "mod_revision": revision.to_string()}],
        "success": [{"request_put": {"key": encode(b"5"), "value": encode(b"[1,3]")}}],
    });
    let reply = raw
        .call("/v3/kv/txn", &guarded, deadline())
        .await
        .expect("txn");
    assert_eq!(reply.get("succeeded"), None, "the guard must fail: {reply}");
    assert_eq!(
        raw.get("5", EtcdReads::Linearizable, deadline())
            .await
            .expect("get"),
        Some(b"[1,2]".to_vec())
    );
}
