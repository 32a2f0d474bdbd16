//! How the harness starts the processes it owns (nodes and adapters), shared by both so
//! that they are tied to the harness and capture their output the same way:
//!
//! - [`on_spawner_thread`] runs the spawn on one long-lived thread. `PR_SET_PDEATHSIG`
//!   fires when the *thread* that forked the child exits, not the process: a child forked
//!   by a tokio worker or blocking-pool thread would be killed when that thread retires
//!   (mid-run), and one forked by a thread that ends with the harness is killed only then.
//! - [`tie_to_harness`] sets `PR_SET_PDEATHSIG` = SIGKILL in the child.
//! - [`capture`] copies a child's stdout or stderr from a pipe into its file, keeping at
//!   most the first and the last [`OutputCap`] bytes of each stream and recording in an
//!   [`OutputCuts`] what was cut, so that a chatty process cannot fill the disk and the
//!   report can say that its log is incomplete.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A job for the spawner thread.
type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` on the harness's spawner thread and returns its result. The thread is
/// started on first use and never exits (it waits for jobs until the process ends), so a
/// child it forks with [`tie_to_harness`] dies with the harness, and only then.
pub fn on_spawner_thread<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("splitbrain-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .ok()
            .map(|_| tx)
    });
    let unavailable = || std::io::Error::other("the process spawner thread is not running");
    let sender = sender.as_ref().ok_or_else(unavailable)?;
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    sender
        .send(Box::new(move || {
            let _ = done_tx.send(job());
        }))
        .map_err(|_| unavailable())?;
    done_rx.recv().map_err(|_| unavailable())
}

/// Makes the child (of a command spawned on [`on_spawner_thread`]) receive SIGKILL when
/// the harness dies, and refuse to start if the harness died before that took effect.
pub fn tie_to_harness(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let harness = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only calls prctl and
    // getppid, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || pdeathsig(harness));
    }
}

/// The child's side of [`tie_to_harness`], for `tokio::process::Command` too.
pub fn pdeathsig(harness: u32) -> std::io::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(std::io::Error::from)?;
    // The harness may have died between the fork and the prctl: then the signal will
    // never come, and the child must not run unsupervised.
    if std::os::unix::process::parent_id() != harness {
        return Err(std::io::Error::other("the harness exited"));
    }
    Ok(())
}

/// How much of one output stream (per process start) is kept: its first `head` and last
/// `tail` bytes; what lies between is replaced by a line saying how much was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputCap {
    pub head: usize,
    pub tail: usize,
}

impl Default for OutputCap {
    /// 4 MiB + 4 MiB: enough for any start-up and crash message, and for a run's logs at
    /// ordinary verbosity; a runaway logger costs at most 8 MiB per stream.
    fn default() -> OutputCap {
        OutputCap {
            head: 4 << 20,
            tail: 4 << 20,
        }
    }
}

/// What was cut from which files (bytes, summed over process starts); shared by every
/// capture of one database or adapter set, read once the processes are gone.
#[derive(Debug, Clone, Default)]
pub struct OutputCuts(Arc<Mutex<BTreeMap<PathBuf, u64>>>);

impl OutputCuts {
    fn add(&self, path: &Path, bytes: u64) {
        let mut cuts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *cuts.entry(path.to_path_buf()).or_default() += bytes;
    }

    /// Every file that lost bytes, and how many.
    pub fn cuts(&self) -> Vec<(PathBuf, u64)> {
        let cuts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cuts.iter().map(|(p, n)| (p.clone(), *n)).collect()
    }
}

/// A pipe for one output stream: the read end for [`capture`], the write end for the
/// child (`Stdio::from`).
pub fn pipe() -> std::io::Result<(File, OwnedFd)> {
    // O_CLOEXEC: neither end may leak into another child spawned meanwhile, which would
    // keep the pipe open after this child's exit.
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((File::from(read), write))
}

/// The end of a capture: it has written everything it will write once this reports.
#[derive(Debug)]
pub struct Capture(mpsc::Receiver<()>);

impl Capture {
    /// Waits at most `wait` for the stream to end (all writers of the pipe exited) and
    /// its tail to be written; false if it is still open.
    pub fn wait(&self, wait: Duration) -> bool {
        !matches!(
            self.0.recv_timeout(wait),
            Err(mpsc::RecvTimeoutError::Timeout)
        )
    }
}

/// Copies `from` (a pipe's read end) into `to` (appended), keeping `cap` of it, on a
/// thread of its own; at the end of the stream, a cut is written as a marker line
/// between head and tail and recorded in `cuts`.
pub fn capture(
    from: File,
    to: &Path,
    cap: OutputCap,
    cuts: &OutputCuts,
) -> std::io::Result<Capture> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(to)?;
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let path = to.to_path_buf();
    let cuts = cuts.clone();
    std::thread::Builder::new()
        .name("splitbrain-output".into())
        .spawn(move || {
            let mut copier = Copier::new(file, cap);
            let mut from = from;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => copier.push(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let cut = copier.finish();
            if cut > 0 {
                cuts.add(&path, cut);
            }
            let _ = done_tx.send(());
        })?;
    Ok(Capture(done_rx))
}

/// Head written through, tail held in memory until the end.
struct Copier {
    file: File,
    cap: OutputCap,
    /// Bytes written of the head so far.
    head: usize,
    tail: VecDeque<u8>,
    cut: u64,
}

impl Copier {
    fn new(file: File, cap: OutputCap) -> Copier {
        Copier {
            file,
            cap,
            head: 0,
            tail: VecDeque::new(),
            cut: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        if self.head < self.cap.head {
            let n = bytes.len().min(self.cap.head - self.head);
            // A failed write loses output, which must not stop the copy (the child
            // would block on a full pipe).
            let _ = self.file.write_all(&bytes[..n]);
            self.head += n;
            bytes = &bytes[n..];
        }
        if bytes.len() >= self.cap.tail {
            self.cut += (self.tail.len() + bytes.len() - self.cap.tail) as u64;
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.cap.tail..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.cap.tail);
        self.tail.drain(..overflow);
        self.cut += overflow as u64;
        self.tail.extend(bytes);
    }

    /// Writes the marker (if anything was cut) and the tail; returns the bytes cut.
    fn finish(mut self) -> u64 {
        if self.cut > 0 {
            let marker = format!(
                "\n… {} bytes cut by splitbrain (each stream keeps its first {} and last {} bytes) …\n",
                self.cut, self.cap.head, self.cap.tail
            );
            let _ = self.file.write_all(marker.as_bytes());
        }
        let (a, b) = self.tail.as_slices();
        let _ = self.file.write_all(a);
        let _ = self.file.write_all(b);
        self.cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("splitbrain-child-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn a_long_stream_keeps_its_head_and_tail_and_says_what_was_cut() {
        let path = temp("long");
        let cuts = OutputCuts::default();
        let (read, write) = pipe().unwrap();
        let cap = OutputCap { head: 10, tail: 6 };
        let capture = capture(read, &path, cap, &cuts).unwrap();
        let mut write = File::from(write);
        write.write_all(b"0123456789").unwrap();
        for _ in 0..1000 {
            write.write_all(b"abcdefghij").unwrap();
        }
        write.write_all(b"uvwxyz").unwrap();
        drop(write);
        assert!(capture.wait(Duration::from_secs(5)));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("0123456789\n… 10000 bytes cut by splitbrain"));
        assert!(text.ends_with(" …\nuvwxyz"), "{text}");
        assert_eq!(cuts.cuts(), vec![(path.clone(), 10_000)]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_short_stream_is_kept_whole() {
        let path = temp("short");
        let cuts = OutputCuts::default();
        let (read, write) = pipe().unwrap();
        let capture = capture(read, &path, OutputCap { head: 4, tail: 4 }, &cuts).unwrap();
        let mut write = File::from(write);
        for chunk in [&b"abc"[..], b"defg", b"h"] {
            write.write_all(chunk).unwrap();
        }
        drop(write);
        assert!(capture.wait(Duration::from_secs(5)));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abcdefgh");
        assert!(cuts.cuts().is_empty());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn the_spawner_thread_outlives_the_callers() {
        let first = on_spawner_thread(|| std::thread::current().id()).unwrap();
        let second = std::thread::spawn(|| on_spawner_thread(|| std::thread::current().id()))
            .join()
            .unwrap()
            .unwrap();
        assert_eq!(first, second);
        assert_ne!(first, std::thread::current().id());
    }
}
