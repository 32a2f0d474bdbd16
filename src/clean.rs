//! `splitbrain clean`: removes what a harness that was itself killed left behind — node
//! processes whose data lives in the store, and the network namespaces, bridges and veths
//! of the netns backend.
//!
//! Normal runs never need this (they clean up on every exit path and their nodes die with
//! the harness through `PR_SET_PDEATHSIG`); it exists for `kill -9` of the harness under a
//! debugger, a machine that lost power mid-run, and the like.

use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// The store whose nodes to stop (default ./store).
    #[arg(long, value_name = "DIR", default_value = "store")]
    pub store: PathBuf,
}

pub fn run(args: CleanArgs) -> anyhow::Result<i32> {
    let mut removed = Vec::new();
    let store = args.store.canonicalize().unwrap_or(args.store.clone());
    for (pid, data_dir) in store_nodes(&store) {
        let p = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGCONT);
        if nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL).is_ok() {
            removed.push(format!("node process {pid} ({data_dir})"));
        }
    }
    for item in splitbrain_nemesis::net::netns::clean_leftovers() {
        removed.push(item);
    }
    if removed.is_empty() {
        println!("nothing to clean");
    } else {
        for r in &removed {
            println!("removed {r}");
        }
    }
    Ok(0)
}

/// Node processes (`… node … --data-dir DIR`) whose data dir is inside `store`.
fn store_nodes(store: &Path) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    let me = std::process::id() as i32;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !args.iter().any(|a| a == "node") {
            continue;
        }
        let data_dir = args
            .iter()
            .position(|a| a == "--data-dir")
            .and_then(|i| args.get(i + 1))
            .cloned();
        let Some(dir) = data_dir else { continue };
        let dir_path = PathBuf::from(&dir);
        let resolved = if dir_path.is_absolute() {
            dir_path
        } else {
            // Relative to the process's working directory.
            match std::fs::read_link(entry.path().join("cwd")) {
                Ok(cwd) => cwd.join(dir_path),
                Err(_) => continue,
            }
        };
        let resolved = resolved.canonicalize().unwrap_or(resolved);
        if resolved.starts_with(store) {
            out.push((pid, dir));
        }
    }
    out
}
