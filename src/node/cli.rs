//! Subcommands that run the bundled cluster (being written).
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List the deliberate bugs of the bundled Raft node (being written).
    Bugs,
}

pub fn run(cmd: NodeCommand) -> anyhow::Result<i32> {
    match cmd {
        NodeCommand::Bugs => Ok(0),
    }
}
