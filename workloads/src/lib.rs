//! splitbrain-workloads: seeded, pure generators of operations per workload, and the
//! async clients that turn an operation into a request to a system under test.
//!
//! Layout:
//! - [`op`]: [`Op`], what a worker is asked to invoke, and [`Completion`], how it ended
//!   (`ok`, `fail` or `info`) — the two halves of a history operation.
//! - [`generator`]: [`WorkloadKind`], [`WorkloadConfig`] and the [`Generator`] that hands
//!   each worker thread its next operation, deterministically from one seed, plus the
//!   final reads issued after healing.
//! - [`client`]: the [`Client`] trait the driver calls, and [`BundledClient`], which
//!   speaks the bundled Raft KV's JSON-lines protocol to one node and classifies every
//!   outcome (only definite rejections are `fail`; anything uncertain is `info`).
//! - [`etcd`]: [`EtcdClient`], the same for etcd through its v3 JSON gateway, and
//!   [`EtcdConnection`], the raw gateway calls (also used by the benchmarks).
//! - [`adapter`]: [`AdapterClient`], which tests any system through a user's adapter
//!   process speaking JSON lines on its stdin and stdout (the README's "The adapter protocol").
//!
//! A driver loop, in outline (the driver owns processes, timing and the history):
//!
//! ```no_run
//! use std::time::Duration;
//! use splitbrain_workloads::{BundledClient, Client, Generator, WorkloadConfig, WorkloadKind};
//!
//! # async fn worker() -> Result<(), Box<dyn std::error::Error>> {
//! let config = WorkloadConfig::new(WorkloadKind::Kv, 5, 42);
//! let mut generator = Generator::new(config)?;
//! let mut client = BundledClient::new(WorkloadKind::Kv, "127.0.0.1:7001", Duration::from_secs(1));
//! while let Some(op) = generator.next_op(0) {
//!     // record the invoke event for `op` here
//!     let completion = client.invoke(&op).await;
//!     // record `completion`; on `info`, continue under a new process number
//! #   let _ = completion;
//! }
//! # Ok(())
//! # }
//! ```

pub mod adapter;
pub mod child;
pub mod client;
pub mod etcd;
pub mod generator;
pub mod op;

pub use adapter::{AdapterClient, AdapterError, AdapterSpec, Handshake, PROTOCOL_VERSION};
pub use client::{BoxFuture, BundledClient, Client, Connection, RequestError};
pub use etcd::{EtcdClient, EtcdConnection, EtcdError, EtcdReads, MemberHash, MemberStatus};
pub use generator::{ConfigError, Generator, UnknownWorkload, WorkloadConfig, WorkloadKind};
pub use op::{Completion, Op};
