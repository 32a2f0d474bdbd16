//! The node's integration tests: in-process clusters and child-process nodes over real
//! TCP and real disks.

use super::test_cluster::TestCluster;
use super::*;
use crate::node::launch::{admin, LineClient};
use crate::node::protocol::{
    AdminOp, ClockSkew, Command, Digest, ErrorKind, LogTerms, MicroFn, MicroOp, Reply, Role, Status,
};
use crate::node::wal::tests::TempDir;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Election time under clock faults: a measurement, not a check (it asserts nothing
/// about timing). `cargo test -p splitbrain --bin splitbrain
/// node::server::tests::measure_elections_under_clock_faults -- --ignored --nocapture`
///
/// - *backward*: both followers' clocks jump back 2 s, then the leader stops; how
///   long until one of them leads?
/// - *forward*: the leader's clock jumps forward 1 s; is it still the leader of the
///   same term 1 s later?
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_elections_under_clock_faults() {
    let trials = 5;
    let mut backward = Vec::new();
    let mut forward_kept = 0;
    for _ in 0..trials {
        let mut c = TestCluster::start(3, ReadMode::ReadIndex).await;
        let leader = c.leader().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (i, clock) in c.clocks.iter().enumerate() {
            if i != leader {
                clock.set(-2000, 1.0).expect("skew");
            }
        }
        c.stop_node(leader);
        let start = std::time::Instant::now();
        let elected = loop {
            let roles = c.roles().await;
            if roles.iter().enumerate().any(|(i, r)| {
                i != leader && r.as_ref().is_some_and(|(role, _)| *role == Role::Leader)
            }) {
                break Some(start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(10) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        backward.push(elected);
        c.stop().await;

        let c = TestCluster::start(3, ReadMode::ReadIndex).await;
        let leader = c.leader().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let term = c.roles().await[leader].map(|(_, t)| t);
        c.clocks[leader].set(1000, 1.0).expect("skew");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = c.roles().await[leader];
        if after.is_some_and(|(role, t)| role == Role::Leader && Some(t) == term) {
            forward_kept += 1;
        }
        c.stop().await;
    }
    eprintln!("backward 2 s on both followers, leader stopped: new leader after {backward:?}");
    eprintln!(
        "forward 1 s on the leader: still leading the same term in {forward_kept} of {trials}"
    );
}

async fn send_raw(addr: &str, line: &str) -> Reply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(line.as_bytes()).await.expect("write");
    let mut lines = BufReader::new(s).lines();
    let reply = lines
        .next_line()
        .await
        .expect("read")
        .expect("a reply line");
    serde_json::from_str(&reply).expect("a reply line")
}

/// One admin request to a test node, within 5 s.
async fn admin_of<R: serde::de::DeserializeOwned>(addr: &str, op: AdminOp) -> anyhow::Result<R> {
    admin(addr, op, Duration::from_secs(5)).await
}

fn put(key: &str, value: Value) -> Command {
    Command::Put {
        key: key.into(),
        value,
    }
}

fn append(key: &str, value: Value) -> Command {
    Command::Append {
        key: key.into(),
        value,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_serves_every_operation_and_followers_redirect() {
    let cluster = TestCluster::start(3, ReadMode::ReadIndex).await;
    let leader = cluster.leader().await;
    let mut c = LineClient::connect(&cluster.client[leader])
        .await
        .expect("connect");
    let r = c.request(put("x", json!(1))).await.expect("put");
    assert!(r.ok, "{r:?}");
    let r = c
        .request(Command::Get { key: "x".into() })
        .await
        .expect("get");
    assert_eq!(r.value, Some(json!(1)), "{r:?}");
    let cas = |from: i64, to: i64| Command::Cas {
        key: "x".into(),
        from: json!(from),
        to: json!(to),
    };
    let r = c.request(cas(5, 6)).await.expect("cas");
    assert_eq!(
        (r.error, r.definite, r.value),
        (Some(ErrorKind::CasMismatch), Some(true), Some(json!(1)))
    );
    let r = c.request(cas(1, 2)).await.expect("cas");
    assert!(r.ok, "{r:?}");
    let r = c.request(append("l", json!("a"))).await.expect("append");
    assert_eq!(r.value, Some(json!(["a"])), "{r:?}");
    let r = c.request(append("x", json!("a"))).await.expect("append");
    assert_eq!(
        (r.error, r.definite),
        (Some(ErrorKind::TypeMismatch), Some(true)),
        "{r:?}"
    );
    let micro = |f, k: &str, v| MicroOp(f, k.into(), v);
    let ops = vec![
        micro(MicroFn::Read, "x", Value::Null),
        micro(MicroFn::Write, "y", json!(3)),
        micro(MicroFn::Append, "l", json!("b")),
        micro(MicroFn::Read, "l", Value::Null),
    ];
    let r = c.request(Command::Txn { ops }).await.expect("txn");
    assert_eq!(
        r.value,
        Some(json!([
            ["r", "x", 2],
            ["w", "y", 3],
            ["append", "l", "b"],
            ["r", "l", ["a", "b"]]
        ])),
        "{r:?}"
    );

    // Pipelined requests on one connection all get answered.
    let mut raw = TcpStream::connect(&cluster.client[leader])
        .await
        .expect("connect");
    let mut batch = String::new();
    for i in 0..20 {
        batch.push_str(&format!(
            "{{\"id\":{i},\"op\":\"append\",\"key\":\"p\",\"value\":{i}}}\n"
        ));
    }
    batch.push_str("this is not json\n{\"id\":99,\"op\":\"get\",\"key\":\"p\"}\n");
    raw.write_all(batch.as_bytes()).await.expect("write");
    let mut lines = BufReader::new(raw).lines();
    let mut seen = std::collections::BTreeSet::new();
    let mut bad = 0;
    while seen.len() < 21 {
        let line = lines.next_line().await.expect("read").expect("line");
        let r: Reply = serde_json::from_str(&line).expect("a reply line");
        match r.id {
            Some(id) => {
                assert!(r.ok, "{r:?}");
                seen.insert(id);
            }
            None => {
                assert_eq!(r.error, Some(ErrorKind::BadRequest));
                bad += 1;
            }
        }
    }
    assert_eq!(bad, 1);

    // A follower answers not-leader with the leader's client address.
    let follower = (leader + 1) % 3;
    let r = send_raw(
        &cluster.client[follower],
        "{\"id\":7,\"op\":\"put\",\"key\":\"x\",\"value\":9}\n",
    )
    .await;
    assert_eq!(r.error, Some(ErrorKind::NotLeader), "{r:?}");
    assert_eq!(r.definite, Some(true));
    assert_eq!(r.leader, Some(Some(cluster.client[leader].clone())));

    // Every replica converges to the same digest.
    let want: Digest = admin_of(&cluster.admin[leader], AdminOp::Digest { at: None })
        .await
        .expect("digest");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for admin in &cluster.admin {
        loop {
            let got: Digest = admin_of(admin, AdminOp::Digest { at: None })
                .await
                .expect("digest");
            if got == want {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "replica {admin} stuck at {got:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The history chain at an index every replica applied is the same everywhere; one
    // that no node remembers is null.
    let at = want.applied_index;
    let mut chains = std::collections::BTreeSet::new();
    for admin in &cluster.admin {
        let d: Digest = admin_of(admin, AdminOp::Digest { at: Some(at) })
            .await
            .expect("digest at");
        let h = d.history_at.flatten().expect("the chain at a shared index");
        assert_eq!(h.index, at);
        chains.insert(h.history);
    }
    assert_eq!(chains.len(), 1, "{chains:?}");
    let forgotten: Digest = admin_of(
        &cluster.admin[leader],
        AdminOp::Digest {
            at: Some(at + 1_000_000),
        },
    )
    .await
    .expect("digest at");
    assert_eq!(forgotten.history_at, Some(None));
    let status: Status = admin_of(&cluster.admin[leader], AdminOp::Status)
        .await
        .expect("status");
    assert_eq!(
        (status.role, status.leader, status.read_mode),
        (Role::Leader, Some(status.id), ReadMode::ReadIndex)
    );
    let terms: LogTerms = admin_of(&cluster.admin[leader], AdminOp::LogTerms)
        .await
        .expect("log-terms");
    // More than `snapshot_every` (20) entries were applied: the log was compacted.
    assert!(terms.snapshot_index >= 20, "{terms:?}");
    let clock: ClockSkew = admin_of(
        &cluster.admin[leader],
        AdminOp::Clock {
            offset_ms: 5,
            rate: 2.0,
        },
    )
    .await
    .expect("clock");
    assert_eq!(
        clock,
        ClockSkew {
            offset_ms: 5,
            rate: 2.0
        }
    );
    let reset: ClockSkew = admin_of(&cluster.admin[leader], AdminOp::ClockReset)
        .await
        .expect("clock-reset");
    assert_eq!(reset.rate, 1.0);
    cluster.stop().await;
}

/// Environment variable carrying a child node's `splitbrain node` arguments (JSON
/// array) when the test binary re-executes itself as a node process.
const CHILD_ARGS_ENV: &str = "SPLITBRAIN_TEST_CHILD_NODE_ARGS";

/// Entry point of child node processes for the kill test: the test binary re-runs
/// itself with `--ignored --exact` on this function, so a real process can be
/// SIGKILLed. Ignored in normal runs.
#[test]
#[ignore = "entry point for the child node processes of the kill test"]
fn child_node_entry() {
    use clap::Parser;
    #[derive(Debug, clap::Parser)]
    struct Top {
        #[command(subcommand)]
        cmd: crate::node::cli::NodeCommand,
    }
    let Ok(args) = std::env::var(CHILD_ARGS_ENV) else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&args).expect("child args are a JSON array");
    let top = Top::try_parse_from(std::iter::once("splitbrain".to_string()).chain(args))
        .expect("child args");
    let code = crate::node::cli::run(top.cmd).expect("child node runs");
    std::process::exit(code);
}

fn spawn_child(spec: &crate::node::launch::NodeSpec) -> std::process::Child {
    let exe = std::env::current_exe().expect("test binary path");
    std::process::Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "node::server::tests::child_node_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ARGS_ENV,
            serde_json::to_string(&spec.args()).expect("args json"),
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn child node")
}

async fn digest_of(admin: &str) -> Option<Digest> {
    admin_of(admin, AdminOp::Digest { at: None }).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_with_a_torn_wal_tail_restarts_and_catches_up() {
    let dir = TempDir::new("kill");
    let base = crate::node::launch::free_port_base(9, &mut crate::node::launch::port_rng(7))
        .expect("free ports");
    let mut specs =
        crate::node::launch::NodeSpec::local_cluster(3, base, &dir.0, ReadMode::ReadIndex, 7);
    for s in &mut specs {
        s.tick_ms = 10;
    }
    let mut children = crate::node::launch::Children {
        children: Vec::new(),
        grace: Duration::from_secs(5),
    };
    for s in &specs {
        children.children.push(spawn_child(s));
    }
    let admin: Vec<String> = specs.iter().map(|s| s.admin_listen.clone()).collect();
    let leader = crate::node::launch::wait_for_leader(&admin, Duration::from_secs(20))
        .await
        .expect("leader");
    let mut c = LineClient::connect(&specs[leader].client_listen)
        .await
        .expect("connect");
    for i in 0..30 {
        let r = c.request(append("log", json!(i))).await.expect("append");
        assert!(r.ok, "{r:?}");
    }
    // SIGKILL a follower, keep writing, tear its WAL tail, restart it.
    let victim = (leader + 1) % 3;
    children.children[victim].kill().expect("kill");
    children.children[victim].wait().expect("reap");
    for i in 30..60 {
        let r = c.request(append("log", json!(i))).await.expect("append");
        assert!(r.ok, "{r:?}");
    }
    let wal_dir = specs[victim].data_dir.join("wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal_dir)
        .expect("wal dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    segments.sort();
    let last = segments.last().expect("a segment");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(last)
        .expect("open segment");
    std::io::Write::write_all(&mut f, &[200, 0, 0, 0, 1, 2, 3]).expect("tear");
    drop(f);
    children.children[victim] = spawn_child(&specs[victim]);

    let want = digest_of(&specs[leader].admin_listen)
        .await
        .expect("leader digest");
    assert!(want.applied_index >= 61, "{want:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if digest_of(&specs[victim].admin_listen).await.as_ref() == Some(&want) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "restarted node never caught up to {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(specs[victim].log_file.as_ref().expect("log file"))
        .expect("victim log");
    assert!(
        log.contains("torn tail"),
        "recovery must warn about the torn tail"
    );
    children.stop_all();
}
