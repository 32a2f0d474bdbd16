//! The splitbrain binary: flags in, libraries wired together.
//!
//! - `check`: offline linearizability checking of recorded histories ([`check`]).
//! - `node`, `cluster`, `bugs`, `bench-cluster`: the bundled Raft KV ([`node`], [`raft`]).
//!
//! Exit codes (as Jepsen): 0 valid, 1 invalid, 2 unknown, 254 bad arguments or input,
//! 255 internal error.

mod node;
mod raft;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code for bad arguments or input.
const EXIT_BAD_INPUT: u8 = 254;
/// Exit code for an internal error.
const EXIT_INTERNAL: u8 = 255;

#[derive(Debug, Parser)]
#[command(name = "splitbrain", version, about = "A Jepsen-style consistency tester")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
