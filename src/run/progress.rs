//! What the user sees while a run goes on: a progress bar with elapsed time, ops/s and
//! the active fault on a terminal; plain, sparse log lines otherwise (CI, pipes).
//! Also the per-run `splitbrain.log` (tracing output of the harness).

use indicatif::{ProgressBar, ProgressStyle};
use std::fs::File;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    interactive: bool,
    quiet: bool,
}

impl Ui {
    /// A progress bar only when stderr is a terminal and `CI` is not set.
    pub fn detect(quiet: bool) -> Ui {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        Ui {
            interactive: std::io::stderr().is_terminal() && !ci,
            quiet,
        }
    }

    /// A phase line (stderr, so stdout stays for results).
    pub fn line(&self, msg: &str) {
        tracing::info!("{msg}");
        if !self.quiet {
            eprintln!("[splitbrain] {msg}");
        }
    }

    pub fn run_bar(&self, seconds: f64) -> RunBar {
        let bar = if self.interactive && !self.quiet {
            let bar = ProgressBar::new((seconds * 1000.0) as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Some(bar)
        } else {
            None
        };
        RunBar {
            bar,
            quiet: self.quiet,
            last_line: Instant::now(),
            last_ops: 0,
            last_at: Duration::ZERO,
        }
    }
}

/// Progress of the workload phase.
pub struct RunBar {
    bar: Option<ProgressBar>,
    quiet: bool,
    last_line: Instant,
    last_ops: u64,
    last_at: Duration,
}

impl RunBar {
    pub fn update(&mut self, elapsed: Duration, ok: u64, fail: u64, info: u64, fault: &str) {
        let total = ok + fail + info;
        let dt = (elapsed - self.last_at.min(elapsed)).as_secs_f64();
        let rate = if dt > 0.0 {
            (total - self.last_ops.min(total)) as f64 / dt
        } else {
            0.0
        };
        let msg = format!("{rate:>6.0} ops/s  ok {ok} fail {fail} info {info}  fault: {fault}");
        if let Some(bar) = &self.bar {
            bar.set_position(elapsed.as_millis() as u64);
            bar.set_message(msg);
            self.last_ops = total;
            self.last_at = elapsed;
        } else if self.last_line.elapsed() >= Duration::from_secs(10) {
            if !self.quiet {
                eprintln!("[splitbrain] {:>4.0} s  {msg}", elapsed.as_secs_f64());
            }
            self.last_line = Instant::now();
            self.last_ops = total;
            self.last_at = elapsed;
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The file the global tracing subscriber writes to; swapped per run.
fn log_sink() -> &'static Arc<Mutex<Option<File>>> {
    static SINK: OnceLock<Arc<Mutex<Option<File>>>> = OnceLock::new();
    SINK.get_or_init(|| Arc::new(Mutex::new(None)))
}

struct SinkWriter;

impl std::io::Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match log_sink()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match log_sink()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Installs the global subscriber (once); `RUST_LOG` adjusts the level.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| SinkWriter)
        .try_init();
}

/// Directs the harness log to `path` until the guard is dropped.
pub struct LogGuard;

impl Drop for LogGuard {
    fn drop(&mut self) {
        *log_sink().lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

pub fn log_to(path: &Path) -> std::io::Result<LogGuard> {
    let file = File::create(path)?;
    *log_sink().lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
    Ok(LogGuard)
}
