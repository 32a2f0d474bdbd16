//! The bundled Raft KV node: everything that wires the sans-IO consensus core
//! ([`splitbrain_raft`]) to disks, sockets and time.
//!
//! # Layout
//! - [`server`]: the driver task that owns the core, the WAL and the state machine, and
//!   the client/admin listeners; `run(config, listeners, clock, shutdown)`.
//! - [`wal`]: segment files with length + CRC32 records, group-committed fsync, torn
//!   tail repair, snapshots and compaction.
//! - [`kv`]: the JSON key-value state machine (get, put, cas, append, txn) and its digest.
//! - [`protocol`]: the JSON-lines client and admin protocol: the
//!   `splitbrain-node-protocol` crate, shared with the harness, the bench and the
//!   workloads' client.
//! - [`transport`]: one outgoing TCP connection per directed peer link.
//! - [`clock`]: the skewable clock every timer of the node reads.
//! - [`bugs`]: the deliberate-bug registry.
//! - [`launch`]: `NodeSpec` (how to start a node process) and small clients.
//! - [`cli`] and [`bench`]: the `node`, `cluster`, `bugs` and `bench-cluster` commands.
pub mod bench;
pub mod bugs;
pub mod cli;
pub mod clock;
pub mod kv;
pub mod launch;
pub use splitbrain_node_protocol as protocol;
pub mod server;
pub mod transport;
pub mod wal;
