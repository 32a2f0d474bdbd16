//! The bundled Raft KV node: TCP transport, write-ahead log, client and admin APIs.
pub mod cli;
pub mod clock;
pub mod kv;
pub mod protocol;
pub mod wal;
