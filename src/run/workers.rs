//! Client workers: one tokio task per logical thread, bound to one node, turning the
//! generator's operations into invoke/complete events.
//!
//! A worker that sees an `info` completion continues under a new process number
//! (`process + concurrency`), as Jepsen does, so a process with an operation in doubt
//! never invokes again. Rate limiting is Jepsen's stagger: each worker waits a uniformly
//! random time with mean `concurrency / rate` before each operation, so the total rate
//! is about `rate` with jitter.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use splitbrain_checker::{EventType, Process};
use splitbrain_workloads::{Client, Generator, Op};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

use super::recorder::{Record, Recorder};

/// Counters the progress display reads.
#[derive(Default)]
pub struct Counters {
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
}

pub struct WorkerSetup {
    pub thread: usize,
    pub concurrency: usize,
    /// The node the worker's client is bound to (recorded with each invocation).
    pub node: String,
    /// Total operations per second over all workers.
    pub rate: f64,
    pub seed: u64,
}

/// Runs one worker until the generator has nothing more for it or `stop` turns true.
/// The worker only knows the system under test through `client`.
pub async fn run_worker<C: Client>(
    setup: WorkerSetup,
    mut client: C,
    generator: Arc<Mutex<Generator>>,
    recorder: Recorder,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(
        setup.seed ^ (setup.thread as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let mut process = setup.thread as u64;
    let mean_wait = setup.concurrency as f64 / setup.rate;
    loop {
        if *stop.borrow() {
            return;
        }
        let wait = if mean_wait > 0.0 {
            Duration::from_secs_f64(rng.gen_range(0.0..(2.0 * mean_wait)))
        } else {
            Duration::ZERO
        };
        // tokio's timer has millisecond granularity: a shorter sleep would round up to
        // a whole millisecond and cap each worker near 1,000 ops/s whatever the rate.
        if wait >= Duration::from_millis(1) {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        } else {
            tokio::task::yield_now().await;
        }
        if *stop.borrow() {
            return;
        }
        let op = {
            let mut g = generator.lock().unwrap_or_else(|p| p.into_inner());
            g.next_op(setup.thread)
        };
        let Some(op) = op else { return };
        let kind = perform(&mut client, &recorder, process, &setup.node, &op).await;
        match kind {
            EventType::Ok => counters.ok.fetch_add(1, Ordering::Relaxed),
            EventType::Fail => counters.fail.fetch_add(1, Ordering::Relaxed),
            _ => counters.info.fetch_add(1, Ordering::Relaxed),
        };
        if kind == EventType::Info {
            process += setup.concurrency as u64;
        }
    }
}

/// Invokes one operation and records both its events; returns how it ended.
pub async fn perform(
    client: &mut impl Client,
    recorder: &Recorder,
    process: u64,
    node: &str,
    op: &Op,
) -> EventType {
    recorder.record(Record {
        process: Process::Client(process),
        kind: EventType::Invoke,
        f: op.f.clone(),
        key: op.key.clone(),
        value: op.value.clone(),
        node: Some(node.to_string()),
        error: None,
    });
    let done = client.invoke(op).await;
    let kind = done.kind;
    recorder.record_with_extra(
        Record {
            process: Process::Client(process),
            kind,
            f: op.f.clone(),
            key: op.key.clone(),
            value: done.value,
            node: None,
            error: done.error,
        },
        done.extra,
    );
    kind
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use splitbrain_checker::formats::{read_path, Format};
    use splitbrain_workloads::Completion;

    /// A client whose every read answers 5 at etcd revision 12, with a `node` extra field
    /// that would collide with the event's own.
    struct AtRevision;

    impl Client for AtRevision {
        fn invoke<'a>(
            &'a mut self,
            _op: &'a Op,
        ) -> splitbrain_workloads::BoxFuture<'a, Completion> {
            Box::pin(async {
                Completion::ok(json!(5))
                    .with_extra("revision", 12)
                    .with_extra("node", "n2")
            })
        }
    }

    #[tokio::test]
    async fn a_completions_extra_fields_reach_the_history_and_its_file() {
        let dir = std::env::temp_dir().join(format!("sb-workers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let recorder = Recorder::create(&path, std::time::Instant::now()).unwrap();
        let op = Op::new("read", None, Value::Null);
        let kind = perform(&mut AtRevision, &recorder, 0, "n1", &op).await;
        assert_eq!(kind, EventType::Ok);
        assert_eq!(recorder.finish(), None);
        let events = recorder.history().events;
        assert!(events[0].extra.is_empty(), "the invocation has no extra");
        assert_eq!(
            Value::Object(events[1].extra.clone()),
            json!({"revision": 12})
        );
        let (read, _) = read_path(&path, Some(Format::Jsonl)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(read.events, events);
    }
}
