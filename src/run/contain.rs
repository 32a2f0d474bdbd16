//! Keeping the processes the harness starts contained: what `/proc` says about a
//! process ([`stat`]), the members of a process group ([`group_members`]), killing a
//! group and waiting until none of it remains ([`kill_group_and_wait`]), and the
//! harness as a child subreaper that kills, at the end of a run, every descendant that
//! escaped its process group ([`become_subreaper`], [`sweep_orphans`]).
//!
//! Node commands may be wrappers that do not `exec` their server (`sh -c "server; echo
//! exited"`), and adapters may start children of their own, even in a new session
//! (`setsid`). Signalling the pid that was started reaches none of those: nodes are
//! signalled by process group, and whatever leaves the group is caught by the subreaper
//! sweep, since an orphan is reparented to the nearest subreaper instead of init.
//!
//! Everything here signals processes found by their recorded group id or by being our
//! own (reparented) children, never by name.

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// The fields of `/proc/PID/stat` the harness uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// `R`, `S`, `T` (stopped), `Z` (zombie), ...
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    /// Clock ticks since boot: tells a process from a later one that reused its pid.
    pub start: u64,
}

/// What `/proc/PID/stat` says about `pid`, if it exists.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: the fields after
    // it start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Every process of the machine (of our pid namespace), as `/proc` lists them now.
pub fn all_processes() -> Vec<Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// The processes whose process group is `pgid`.
pub fn group_members(pgid: i32) -> Vec<Stat> {
    all_processes()
        .into_iter()
        .filter(|s| s.pgrp == pgid)
        .collect()
}

/// Reaps `pid` if it is a zombie child of ours (an orphan reparented to us as the
/// subreaper); only that pid is waited for, so no other owner's child is reaped.
fn reap_if_ours(s: &Stat) {
    if s.state == 'Z' && u32::try_from(s.ppid).ok() == Some(std::process::id()) {
        let _ = waitpid(Pid::from_raw(s.pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// Sends `sig` to the process group `pgid`; a group that no longer exists is no error.
pub fn signal_group(pgid: i32, sig: Signal) -> Result<(), Errno> {
    if pgid <= 1 {
        // 0 and 1 would mean our own group or every process: never a node's.
        return Err(Errno::EINVAL);
    }
    match signal::killpg(Pid::from_raw(pgid), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The live (non-zombie) members of `pgid`, reaping those zombies that are ours.
fn live_members(pgid: i32) -> Vec<i32> {
    group_members(pgid)
        .iter()
        .inspect(|s| reap_if_ours(s))
        .filter(|s| s.state != 'Z')
        .map(|s| s.pid)
        .collect()
}

/// SIGKILLs the process group `pgid` until no live process of it remains, for at most
/// `wait`; returns the pids that still remain (empty when the group is gone). The group
/// is signalled again on every round, so a member that forked meanwhile is caught too.
pub fn kill_group_and_wait(pgid: i32, wait: Duration) -> Vec<i32> {
    let deadline = Instant::now() + wait;
    loop {
        let _ = signal_group(pgid, Signal::SIGKILL);
        let live = live_members(pgid);
        if live.is_empty() || Instant::now() >= deadline {
            return live;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits up to `wait` until no live process of `pgid` remains (after a SIGTERM);
/// true when the group is gone.
pub fn wait_group_gone(pgid: i32, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if live_members(pgid).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Makes this process a child subreaper: orphaned descendants (an adapter's child that
/// called `setsid`, a node wrapper's server) are reparented to us instead of init, so
/// that [`sweep_orphans`] can find and kill them.
pub fn become_subreaper() -> anyhow::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| anyhow::anyhow!("becoming a child subreaper: {e}"))
}

/// At the end of a run of a harness that is a subreaper ([`become_subreaper`]): kills
/// and reaps what escaped (see [`sweep_orphans`]) and logs it. A process that is not a
/// subreaper (a unit test running a harness function) sweeps nothing: its children are
/// not all the harness's.
pub fn sweep_after_run() {
    if !nix::sys::prctl::get_child_subreaper().unwrap_or(false) {
        return;
    }
    let killed = sweep_orphans(&[], Duration::from_secs(5));
    if !killed.is_empty() {
        tracing::warn!(
            ?killed,
            "killed processes that outlived their node or adapter (they had left its \
             process group, or were SSH connection masters)"
        );
    }
}

/// Kills every descendant of this process except the children in `keep` (and their
/// descendants), and reaps the children it killed; returns the pids it killed. Called at
/// the end of a run, when every node and adapter has been stopped: what remains
/// escaped its group (and, with [`become_subreaper`], was reparented to us). The SSH
/// connection masters the `--hosts` runs leave behind are among these; the run no
/// longer needs them. Bounded: gives up after `wait`.
pub fn sweep_orphans(keep: &[i32], wait: Duration) -> Vec<i32> {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + wait;
    let mut killed = Vec::new();
    loop {
        let table = all_processes();
        let mut doomed: Vec<i32> = table
            .iter()
            .filter(|s| s.ppid == me && !keep.contains(&s.pid))
            .map(|s| s.pid)
            .collect();
        // Their descendants too: a killed orphan's children would be reparented to us
        // one round later anyway, but a stopped one must not stay stopped meanwhile.
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i];
            doomed.extend(table.iter().filter(|s| s.ppid == parent).map(|s| s.pid));
            i += 1;
        }
        let live: Vec<&Stat> = table.iter().filter(|s| doomed.contains(&s.pid)).collect();
        for s in &live {
            reap_if_ours(s);
        }
        let live: Vec<i32> = live
            .iter()
            .filter(|s| s.state != 'Z')
            .map(|s| s.pid)
            .collect();
        if live.is_empty() || Instant::now() >= deadline {
            return killed;
        }
        for &pid in &live {
            // Only our own children and their descendants, found a moment ago; a
            // descendant cannot be reaped (and its pid reused) while its parent lives.
            if signal::kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() && !killed.contains(&pid) {
                killed.push(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_reads_our_own_process() {
        let me = stat(std::process::id() as i32).expect("our own stat");
        assert_eq!(me.ppid as u32, std::os::unix::process::parent_id());
        assert!(me.start > 0);
        assert_eq!(stat(i32::MAX), None);
    }
}
