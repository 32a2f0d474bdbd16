//! splitbrain-checker: the history data model, history readers and writers, sequential
//! models, and the consistency checkers.
//!
//! Layout:
//! - [`history`]: events, operations, and pairing invocations with completions.
//! - [`formats`]: readers for our JSONL, Jepsen EDN and Porcupine's logs, and the JSONL
//!   writer; every reader reports file, line and reason on malformed input.
//! - [`model`]: the [`model::Model`] trait, and the built-in sequential specifications
//!   (register, cas-register, mutex, set, multi-register, kv-append) in one table.
//! - [`linear`]: the linearizability checker (per-key, parallel, budgeted) and its
//!   verdicts and witnesses.
//! - [`oracle`]: a brute-force checker for tiny histories, the independent reference the
//!   fast checker is tested against.
//! - [`elle`]: the Elle-style transactional analyses (list-append, rw-register).
//! - [`verdict`]: the result vocabulary every analysis shares: [`Verdict`].
//! - [`check`](mod@check): the one entry point, [`check()`]: what to check ([`What`]) in,
//!   an [`Analysis`] out.
//!
//! Modules depend one way: `check` → `linear`, `elle` → `model`, `history`, `verdict`.
//!
//! This crate does no I/O beyond `Read`/`Write` and has no async runtime.

pub mod check;
pub mod elle;
pub mod formats;
pub mod gen;
pub mod history;
pub mod linear;
pub mod model;
pub mod oracle;
pub mod verdict;

pub use check::{
    check, Analysis, AnalysisKind, CheckError, DynModel, Options, UnknownAnalysis, What,
};
pub use elle::TxnAnalysis;
pub use history::{
    Event, EventPair, EventType, History, Key, LenientPairs, Operation, Operations, Outcome,
    PairedHistory, Process,
};
pub use verdict::Verdict;
