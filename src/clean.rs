//! `splitbrain clean`: removes what a harness that was itself killed left behind — node
//! processes of runs in the store (any database: found by the pid files the harness
//! writes, checked against the process's start time so that a reused pid is never
//! signalled; bundled nodes also by their data directory), and the network namespaces,
//! bridges and veths of the netns backend; with `--hosts FILE`, instead, on each SSH
//! host the recorded node processes, the tagged iptables rules and the run folders. Nothing is
//! matched by process name.
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
    /// Clean these SSH hosts instead of this machine: node processes recorded by any
    /// run, iptables rules tagged `splitbrain-`, and `/tmp/splitbrain`.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
}

pub fn run(args: CleanArgs) -> anyhow::Result<i32> {
    let mut removed = Vec::new();
    if let Some(path) = &args.hosts {
        removed.extend(clean_hosts(path)?);
        report(&removed);
        return Ok(0);
    }
    let store = args.store.canonicalize().unwrap_or(args.store.clone());
    let mut signalled = std::collections::BTreeSet::new();
    for (pid, data_dir) in store_nodes(&store) {
        signalled.insert(pid);
        let p = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGCONT);
        if nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL).is_ok() {
            removed.push(format!("node process {pid} ({data_dir})"));
        }
    }
    for (pid, pid_file) in recorded_nodes(&store) {
        if !signalled.insert(pid) {
            let _ = std::fs::remove_file(&pid_file);
            continue;
        }
        let p = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGCONT);
        if nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL).is_ok() {
            removed.push(format!("node process {pid} ({})", pid_file.display()));
        }
        let _ = std::fs::remove_file(&pid_file);
    }
    for item in splitbrain_nemesis::net::netns::clean_leftovers() {
        removed.push(item);
    }
    report(&removed);
    Ok(0)
}

fn report(removed: &[String]) {
    if removed.is_empty() {
        println!("nothing to clean");
    } else {
        for r in removed {
            println!("removed {r}");
        }
    }
}

/// Runs [`crate::run::hosts::clean_script`] on every host of the hosts file.
fn clean_hosts(path: &Path) -> anyhow::Result<Vec<String>> {
    use crate::run::hosts::{self, Hosts, HostsFile};
    let file = HostsFile::load(path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let pool = std::sync::Arc::new(Hosts::connect(&file).await?);
        let script = hosts::clean_script();
        let scripts = pool
            .names()
            .into_iter()
            .map(|h| (h, script.clone()))
            .collect();
        let mut removed = Vec::new();
        let mut problems = Vec::new();
        for (host, out) in pool.run_each(scripts).await {
            match out {
                Ok(out) => {
                    removed.extend(
                        out.lines()
                            .filter_map(|l| l.strip_prefix("removed "))
                            .map(|l| format!("{l} on host {host}")),
                    );
                    // A `/tmp/splitbrain` that splitbrain did not make is left alone.
                    for refused in out.lines().filter_map(|l| l.strip_prefix("refused ")) {
                        eprintln!("not cleaned on host {host}: {refused}");
                    }
                }
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
        if problems.is_empty() {
            Ok(removed)
        } else {
            Err(anyhow::anyhow!(
                "cleaning the hosts: {}",
                problems.join("; ")
            ))
        }
    })
}

/// Processes recorded in the store's pid files (`RUN/nodes/<n>/pid`) that are still the
/// process that was recorded (same start time). Stale pid files are removed.
fn recorded_nodes(store: &Path) -> Vec<(i32, PathBuf)> {
    use crate::run::db::processes::{start_time, PID_FILE};
    let mut out = Vec::new();
    let mut pending = vec![(store.to_path_buf(), 0)];
    // The store holds TEST/RUN/nodes/<n>/pid; a bounded walk does not wander into
    // whatever else a user keeps there.
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && depth < 4 {
                pending.push((path, depth + 1));
            } else if kind.is_file()
                && entry.file_name() == PID_FILE
                && path
                    .parent()
                    .and_then(Path::parent)
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == "nodes")
            {
                let record = std::fs::read_to_string(&path).unwrap_or_default();
                let mut fields = record.split_whitespace().map(str::parse::<u64>);
                match (fields.next(), fields.next()) {
                    (Some(Ok(pid)), Some(Ok(started)))
                        if pid > 0
                            && pid < i32::MAX as u64
                            && started > 0
                            && start_time(pid as u32) == Some(started) =>
                    {
                        out.push((pid as i32, path))
                    }
                    _ => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
    }
    out
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
