//! Process faults: SIGKILL, SIGSTOP and SIGCONT by pid.
//!
//! Kept apart from the executor because the driver (which owns the node processes) calls
//! these directly from its `ClusterControl` implementation. Every function is idempotent:
//! a process that is already gone counts as done, so heal paths (resume everything, kill
//! everything on teardown) never fail because an earlier fault got there first.

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::error::NemesisError;

/// What happened to a signal we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signalled {
    /// The signal was delivered to a live process.
    Delivered,
    /// No such process: it had already exited (and been reaped).
    AlreadyGone,
}

/// SIGKILL: the process dies without a chance to flush or say goodbye (`kill -9`).
pub fn kill(pid: u32) -> Result<Signalled, NemesisError> {
    send(pid, Signal::SIGKILL, "SIGKILL")
}

/// SIGSTOP: the process freezes mid-instruction; its sockets stay open but silent.
pub fn pause(pid: u32) -> Result<Signalled, NemesisError> {
    send(pid, Signal::SIGSTOP, "SIGSTOP")
}

/// SIGCONT: a paused process continues where it stopped (a no-op for a running one).
pub fn resume(pid: u32) -> Result<Signalled, NemesisError> {
    send(pid, Signal::SIGCONT, "SIGCONT")
}

fn send(pid: u32, signal: Signal, name: &'static str) -> Result<Signalled, NemesisError> {
    // pid 0 and negative pids address process groups (and -1 every process we may
    // signal): never let a bad number turn a node fault into killing the harness.
    let raw = i32::try_from(pid).map_err(|_| NemesisError::InvalidPid { pid })?;
    if raw <= 0 {
        return Err(NemesisError::InvalidPid { pid });
    }
    match signal::kill(Pid::from_raw(raw), signal) {
        Ok(()) => Ok(Signalled::Delivered),
        Err(Errno::ESRCH) => Ok(Signalled::AlreadyGone),
        Err(source) => Err(NemesisError::Signal {
            pid,
            signal: name,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Reads the process state letter from /proc (R, S, T for stopped, Z, ...).
    fn state(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The state follows the parenthesised command name, which may hold spaces.
        let after = stat.rsplit_once(')')?.1;
        after.trim_start().chars().next()
    }

    fn wait_for_state(pid: u32, wanted: char) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if state(pid) == Some(wanted) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn pause_resume_kill_a_real_process_and_tolerate_it_being_gone() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();

        assert_eq!(pause(pid).unwrap(), Signalled::Delivered);
        assert!(wait_for_state(pid, 'T'), "not stopped: {:?}", state(pid));
        assert_eq!(resume(pid).unwrap(), Signalled::Delivered);
        assert!(wait_for_state(pid, 'S'), "not resumed: {:?}", state(pid));
        assert_eq!(kill(pid).unwrap(), Signalled::Delivered);
        let status = child.wait().unwrap();
        assert!(!status.success());

        // Reaped: every heal-path call is now a harmless no-op.
        assert_eq!(resume(pid).unwrap(), Signalled::AlreadyGone);
        assert_eq!(kill(pid).unwrap(), Signalled::AlreadyGone);
    }

    #[test]
    fn group_addressing_pids_are_refused() {
        assert!(matches!(kill(0), Err(NemesisError::InvalidPid { pid: 0 })));
        assert!(matches!(
            pause(u32::MAX),
            Err(NemesisError::InvalidPid { .. })
        ));
    }
}
