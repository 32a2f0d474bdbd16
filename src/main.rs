//! The splitbrain binary: CLI, run orchestration and the bundled Raft KV server.
fn main() {}
