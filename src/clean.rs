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
    for (target, pid_file) in recorded_nodes(&store) {
        use crate::run::contain::signal_group;
        use nix::sys::signal::{kill, Signal};
        match target {
            Recorded::Group(pgid) => {
                let _ = signal_group(pgid, Signal::SIGCONT);
                if signal_group(pgid, Signal::SIGKILL).is_ok() {
                    removed.push(format!(
                        "node process group {pgid} ({})",
                        pid_file.display()
                    ));
                }
            }
            Recorded::Pids(pids) => {
                for pid in pids {
                    if !signalled.insert(pid) {
                        continue;
                    }
                    let p = nix::unistd::Pid::from_raw(pid);
                    let _ = kill(p, Signal::SIGCONT);
                    if kill(p, Signal::SIGKILL).is_ok() {
                        removed.push(format!("node process {pid} ({})", pid_file.display()));
                    }
                }
            }
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

/// What a pid file says is still to be stopped.
#[derive(Debug, PartialEq, Eq)]
enum Recorded {
    /// The recorded node still runs (same pid and start time) and leads this group.
    Group(i32),
    /// These processes: the recorded process itself (a pid file without a group), or,
    /// once it is gone, what remains of its group — members that started no earlier
    /// than it did, while no other process has taken the group's number (a group's
    /// number is not reused while any member lives).
    Pids(Vec<i32>),
}

/// What a pid file's record (`PID START [PGID]`) leaves to stop, if anything.
fn recorded_target(record: &str) -> Option<Recorded> {
    use crate::run::contain::{group_members, stat};
    let mut fields = record.split_whitespace().map(str::parse::<i32>);
    let pid = fields.next()?.ok().filter(|&p| p > 1)?;
    let started: u64 = record.split_whitespace().nth(1)?.parse().ok()?;
    let pgid = record
        .split_whitespace()
        .nth(2)
        .and_then(|g| g.parse::<i32>().ok())
        .filter(|&g| g > 1);
    if started == 0 {
        return None;
    }
    let same = stat(pid).is_some_and(|s| s.start == started);
    match pgid {
        None if same => Some(Recorded::Pids(vec![pid])),
        None => None,
        Some(pgid) if same && stat(pid).is_some_and(|s| s.pgrp == pgid) => {
            Some(Recorded::Group(pgid))
        }
        Some(pgid) => {
            if stat(pgid).is_some() {
                // The leader's number belongs to another process now (or the recorded
                // process left its group): nothing here is provably ours.
                return None;
            }
            let left: Vec<i32> = group_members(pgid)
                .into_iter()
                .filter(|s| s.start >= started && s.state != 'Z')
                .map(|s| s.pid)
                .collect();
            (!left.is_empty()).then_some(Recorded::Pids(left))
        }
    }
}

/// What the store's pid files (`RUN/nodes/<n>/pid`) leave to stop: the recorded
/// process's group while it is still the process that was recorded (same start time),
/// or what remains of that group. Stale pid files are removed.
fn recorded_nodes(store: &Path) -> Vec<(Recorded, PathBuf)> {
    use crate::run::db::processes::PID_FILE;
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
                match recorded_target(&record) {
                    Some(target) => out.push((target, path)),
                    None => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::contain::stat;
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_pid_file_leads_to_its_group_and_then_to_what_remains_of_it() {
        // A node wrapper that does not exec: `sh` in its own group, with a child.
        let mut wrapper = std::process::Command::new("sh")
            .args(["-c", "sleep 60 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(wrapper.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let child: i32 = first.trim().parse().unwrap();
        let pid = wrapper.id() as i32;
        let started = stat(pid).unwrap().start;
        let record = format!("{pid} {started} {pid}\n");
        assert_eq!(recorded_target(&record), Some(Recorded::Group(pid)));
        // Another start time: a reused pid, never signalled.
        assert_eq!(
            recorded_target(&format!("{pid} {} {pid}", started + 1)),
            None
        );
        // An old record without a group: the process alone.
        assert_eq!(
            recorded_target(&format!("{pid} {started}")),
            Some(Recorded::Pids(vec![pid]))
        );
        // The wrapper dies (as it does by PR_SET_PDEATHSIG with the harness); its child
        // lives on in the group.
        wrapper.kill().unwrap();
        wrapper.wait().unwrap();
        assert_eq!(recorded_target(&record), Some(Recorded::Pids(vec![child])));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child),
            nix::sys::signal::Signal::SIGKILL,
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while stat(child).is_some_and(|s| s.state != 'Z') && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(recorded_target(&record), None);
    }
}
