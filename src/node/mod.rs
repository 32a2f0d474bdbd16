//! The bundled Raft KV node: TCP transport, write-ahead log, client and admin APIs.
//! (being written)
pub mod cli;
