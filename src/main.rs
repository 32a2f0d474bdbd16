//! The splitbrain binary: flags in, libraries wired together.
//!
//! - `test`, `test-all`, `clean`: the test driver against the bundled cluster ([`run`],
//!   [`clean`]).
//! - `lab`: SSH hosts in network namespaces, to try `--hosts` on one machine
//!   ([`run::hosts::lab`]).
//! - `check`: offline linearizability checking of recorded histories ([`check`]).
//! - `report`, `serve`: re-render a stored run, browse the store ([`reporting`]).
//! - `node`, `cluster`, `bugs`, `bench-cluster`: the bundled Raft KV ([`node`], on the `splitbrain-raft` core).
//!
//! Exit codes (as Jepsen): 0 valid, 1 invalid, 2 unknown, 254 bad arguments or input,
//! 255 internal error.

mod check;
mod clean;
mod dbs;
mod node;
mod reporting;
mod run;
mod testcmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code for bad arguments or input.
pub const EXIT_BAD_INPUT: u8 = 254;
/// Exit code for an internal error.
pub const EXIT_INTERNAL: u8 = 255;

#[derive(Debug, Parser)]
#[command(
    name = "splitbrain",
    version,
    about = "A Jepsen-style consistency tester"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workload against the bundled Raft cluster under faults, check it, report.
    Test(run::config::TestArgs),
    /// Run every workload × fault combination and summarise.
    TestAll(run::config::TestArgs),
    /// Check recorded histories for linearizability.
    Check(check::CheckArgs),
    /// Re-render the reports of a stored run.
    Report(reporting::ReportArgs),
    /// Serve the store on 127.0.0.1 for browsing.
    Serve(reporting::ServeArgs),
    /// Remove node processes and network namespaces a killed harness left behind.
    Clean(clean::CleanArgs),
    /// Measure the test driver's own ceiling and its overhead per operation.
    BenchDriver(run::bench::BenchDriverArgs),
    /// Start or stop a lab: SSH hosts in network namespaces on this machine (root).
    Lab(run::hosts::lab::LabArgs),
    /// List the databases `--db` accepts (and `--show NAME` prints a description).
    Dbs(dbs::DbsArgs),
    #[command(flatten)]
    Node(node::cli::NodeCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BAD_INPUT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Test(args) => testcmd::test(args),
        Command::TestAll(args) => testcmd::test_all(args),
        Command::Check(args) => check::run(args),
        Command::Report(args) => reporting::report(args),
        Command::Serve(args) => reporting::serve(args),
        Command::Clean(args) => clean::run(args),
        Command::BenchDriver(args) => run::bench::run(args),
        Command::Dbs(args) => dbs::run(args),
        Command::Lab(args) => run::hosts::lab::cli(args),
        Command::Node(cmd) => node::cli::run(cmd),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(EXIT_INTERNAL)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}
