//! splitbrain-checker: the history data model, history readers and writers, sequential
//! models, and the consistency checkers.
//!
//! Layout:
//! - [`history`]: events, operations, and pairing invocations with completions.
//! - [`formats`]: readers for our JSONL, Jepsen EDN and Porcupine's logs, and the JSONL
//!   writer; every reader reports file, line and reason on malformed input.
//! - [`model`]: sequential specifications (register, cas-register, mutex, set,
//!   multi-register, kv-append).
//! - [`linear`]: the linearizability checker (per-key, parallel, budgeted) and its
//!   verdicts and witnesses.
//! - [`oracle`]: a brute-force checker for tiny histories, the independent reference the
//!   fast checker is tested against.
//! - [`elle`]: the Elle-style transactional (list-append) analysis.
//! - [`verdict`]: the result vocabulary every consumer shares: [`Verdict`] and
//!   [`Analysis`].
//!
//! This crate does no I/O beyond `Read`/`Write` and has no async runtime.

pub mod elle;
pub mod formats;
pub mod gen;
pub mod history;
pub mod linear;
pub mod model;
pub mod oracle;
pub mod verdict;

pub use history::{
    Event, EventPair, EventType, History, Key, LenientPairs, Operation, Operations, Outcome,
    PairedHistory, Process,
};
pub use verdict::{Analysis, Verdict};
