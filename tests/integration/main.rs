//! End-to-end tests of the splitbrain binary: the CLI's contracts (exit codes, error
//! messages), `check` on real histories, and short `splitbrain test` runs against the
//! bundled cluster under faults, asserting verdicts and that nothing is left behind.

mod adapters;
mod cli;
mod e2e;
mod etcd;
mod hosts;
mod support;
