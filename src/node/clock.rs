//! The node's clock: the only source of time for every time-dependent part of the node.
//!
//! The tick loop that drives the consensus core, client request deadlines and the
//! leader lease all read [`Clock::now`], never `Instant::now` directly. The admin API
//! can skew this clock (an offset added to elapsed time, and a rate multiplying the
//! passage of real time), which is how the harness injects clock faults into a node
//! without privileges or libfaketime. What each fault does to the core's timers
//! ([`TickSource`]): a rate of 2.0 runs every timer twice as fast; a forward bump is
//! paid out as extra ticks no faster than time passes (timers run at most twice as fast
//! until it is spent), so a leader keeps hearing its followers' acknowledgements
//! instead of swallowing a second of ticks at once and deposing itself; a backward bump
//! cancels what is left of earlier forward bumps and otherwise leaves the timers running
//! (a clock that stood still for the length of the bump froze every election). Request
//! deadlines read the clock itself and see every jump.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Clock time as signed milliseconds-with-fraction since the node started.
pub type ClockMillis = f64;

#[derive(Debug, Clone, Copy)]
struct ClockState {
    /// Real instant at which the current rate took effect.
    anchor_real: Instant,
    /// Unskewed virtual time (ms) at `anchor_real`, before `offset_ms` is added.
    anchor_virtual_ms: f64,
    /// Multiplier applied to real time elapsed since `anchor_real`.
    rate: f64,
    /// Added to the virtual time; may be negative (a backward bump).
    offset_ms: i64,
    /// The sum of every jump of [`Clock::now_ms`] that a skew change caused (offset
    /// changes; a rate change or a reset does not jump), so a reader can tell time that
    /// passed from time that jumped.
    jumped_ms: f64,
}

impl ClockState {
    fn virtual_ms_at(&self, real: Instant) -> f64 {
        let elapsed = real
            .saturating_duration_since(self.anchor_real)
            .as_secs_f64()
            * 1000.0;
        self.anchor_virtual_ms + elapsed * self.rate
    }
}

/// A shareable, skewable clock. Cloning shares the same skew.
#[derive(Debug, Clone)]
pub struct Clock {
    state: Arc<Mutex<ClockState>>,
}

/// The clock's current skew, as reported by the admin API.
pub use splitbrain_node_protocol::ClockSkew;

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock that starts at zero now, with no skew.
    pub fn new() -> Self {
        Clock {
            state: Arc::new(Mutex::new(ClockState {
                anchor_real: Instant::now(),
                anchor_virtual_ms: 0.0,
                rate: 1.0,
                offset_ms: 0,
                jumped_ms: 0.0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        // A poisoned lock only means another thread panicked mid-update of plain
        // numbers; the state is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Milliseconds of (possibly skewed) clock time since the node started. May go
    /// backwards after a backward bump; callers must tolerate that.
    pub fn now_ms(&self) -> ClockMillis {
        self.reading().0
    }

    /// [`Self::now_ms`] and the clock's cumulative jumps, read together.
    fn reading(&self) -> (ClockMillis, f64) {
        let s = *self.lock();
        (
            s.virtual_ms_at(Instant::now()) + s.offset_ms as f64,
            s.jumped_ms,
        )
    }

    /// Sets the skew: `offset_ms` replaces the previous offset (it is not cumulative),
    /// and `rate` applies from now on (time already elapsed is not rescaled).
    /// A rate must be finite and positive.
    pub fn set(&self, offset_ms: i64, rate: f64) -> Result<(), String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!(
                "clock rate must be a positive finite number, got {rate}"
            ));
        }
        let mut s = self.lock();
        let now = Instant::now();
        s.anchor_virtual_ms = s.virtual_ms_at(now);
        s.anchor_real = now;
        s.rate = rate;
        s.jumped_ms += (offset_ms - s.offset_ms) as f64;
        s.offset_ms = offset_ms;
        Ok(())
    }

    /// Ends the fault: rate back to 1.0, offset back to 0. The current offset is folded
    /// into the base so that time continues from where it is instead of jumping back
    /// (a jump back would stall every timer of the node for the length of the offset).
    pub fn reset(&self) {
        let mut s = self.lock();
        let now = Instant::now();
        s.anchor_virtual_ms = s.virtual_ms_at(now) + s.offset_ms as f64;
        s.anchor_real = now;
        s.rate = 1.0;
        s.offset_ms = 0;
    }

    /// The current skew.
    pub fn skew(&self) -> ClockSkew {
        let s = *self.lock();
        ClockSkew {
            offset_ms: s.offset_ms,
            rate: s.rate,
        }
    }

    /// How much real time to wait until the clock has advanced by `ms` (assuming no
    /// further skew change); used to size sleeps, never to decide anything.
    pub fn real_wait_for(&self, ms: f64) -> Duration {
        let rate = self.lock().rate;
        Duration::from_secs_f64((ms.max(0.0) / rate / 1000.0).clamp(0.0, 3600.0))
    }
}

/// Turns clock time into whole ticks for the consensus core. Time that *passes* on the
/// clock (real time times the rate, stalls included) becomes ticks at once: a node that
/// was stopped for a second must know a second passed before it handles anything that
/// arrived meanwhile. Time that *jumps* (an offset change) is treated like a clock being
/// slewed: a forward jump is paid out as extra ticks no faster than time passes, a
/// backward jump cancels what is still owed and is otherwise ignored.
#[derive(Debug)]
pub struct TickSource {
    clock: Clock,
    tick_ms: f64,
    /// Clock reading at the last poll.
    last_now_ms: f64,
    /// The clock's cumulative jumps at the last poll.
    last_jumped_ms: f64,
    /// Clock time already counted that has not made a whole tick yet.
    pending_ms: f64,
    /// Forward jumps not yet paid out as ticks.
    owed_ms: f64,
    /// At most this many ticks per poll, so that a huge stall cannot freeze the node
    /// (beyond an election timeout more ticks change nothing).
    max_burst: u64,
}

impl TickSource {
    pub fn new(clock: Clock, tick_ms: u64) -> Self {
        let tick_ms = tick_ms.max(1) as f64;
        let (last_now_ms, last_jumped_ms) = clock.reading();
        TickSource {
            clock,
            tick_ms,
            last_now_ms,
            last_jumped_ms,
            pending_ms: 0.0,
            owed_ms: 0.0,
            max_burst: 1000,
        }
    }

    /// The number of ticks due now (0 when the clock has not advanced a whole tick).
    pub fn due(&mut self) -> u64 {
        let (now, jumped) = self.clock.reading();
        let jump = jumped - self.last_jumped_ms;
        let passed = (now - self.last_now_ms - jump).max(0.0);
        self.last_now_ms = now;
        self.last_jumped_ms = jumped;
        self.owed_ms = (self.owed_ms + jump).max(0.0);
        let paid = self.owed_ms.min(passed);
        self.owed_ms -= paid;
        self.pending_ms += passed + paid;
        let whole = (self.pending_ms / self.tick_ms).floor();
        let fired = (whole as u64).min(self.max_burst);
        if fired as f64 == whole {
            self.pending_ms -= whole * self.tick_ms;
        } else {
            // Skip the ticks beyond the burst limit entirely.
            self.pending_ms = 0.0;
        }
        fired
    }

    /// Real time until the next tick is due, for the tick loop's sleep.
    pub fn real_wait(&self) -> Duration {
        let mut remaining = self.tick_ms - self.pending_ms;
        if self.owed_ms > 0.0 {
            // Paying out a forward jump: ticks come twice as fast.
            remaining /= 2.0;
        }
        self.clock.real_wait_for(remaining).clamp(
            Duration::from_millis(1),
            Duration::from_millis(self.tick_ms as u64 * 4),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_bump_is_paid_out_no_faster_than_time_passes() {
        let clock = Clock::new();
        let mut ticks = TickSource::new(clock.clone(), 10);
        assert_eq!(ticks.due(), 0);
        clock.set(1000, 1.0).expect("valid skew");
        assert!(clock.now_ms() >= 1000.0, "the clock itself jumped");
        assert!(ticks.due() <= 1, "no burst: the jump is owed, not fired");
        std::thread::sleep(Duration::from_millis(100));
        let fired = ticks.due();
        // 100 ms passed (10 ticks) and as much of the jump was paid (10 more); a slow
        // machine may have slept longer, never paying more than what passed.
        assert!((19..=60).contains(&fired), "fired {fired}");
        assert!(ticks.owed_ms > 0.0 && ticks.owed_ms <= 900.0);
    }

    #[test]
    fn backward_bump_keeps_ticks_running_and_cancels_what_is_owed() {
        let clock = Clock::new();
        let mut ticks = TickSource::new(clock.clone(), 10);
        clock.set(500, 1.0).expect("valid skew");
        ticks.due();
        clock.set(-60_000, 1.0).expect("valid skew");
        ticks.due();
        assert_eq!(
            ticks.owed_ms, 0.0,
            "the backward jump cancels the forward one"
        );
        std::thread::sleep(Duration::from_millis(50));
        let fired = ticks.due();
        assert!(
            fired >= 4,
            "ticks keep coming after a backward jump: {fired}"
        );
        let before = clock.now_ms();
        clock.reset();
        // Reset folds the offset in: the clock continues from the skewed time.
        assert!(clock.now_ms() - before < 50.0);
        assert_eq!(
            clock.skew(),
            ClockSkew {
                offset_ms: 0,
                rate: 1.0
            }
        );
        assert!(ticks.due() <= 1, "a reset is no jump");
    }

    #[test]
    fn a_stall_fires_at_once() {
        let clock = Clock::new();
        let mut ticks = TickSource::new(clock.clone(), 10);
        std::thread::sleep(Duration::from_millis(120));
        assert!(ticks.due() >= 12, "time that passed is counted at once");
    }

    #[test]
    fn rate_scales_elapsed_time_and_rejects_nonsense() {
        let clock = Clock::new();
        clock.set(0, 1000.0).expect("valid skew");
        let a = clock.now_ms();
        std::thread::sleep(Duration::from_millis(5));
        let b = clock.now_ms();
        // 5 ms real at rate 1000 is at least 5 s of clock time.
        assert!(b - a >= 5000.0, "advanced {}", b - a);
        assert!(clock.set(0, 0.0).is_err());
        assert!(clock.set(0, f64::NAN).is_err());
        assert!(clock.real_wait_for(1000.0) <= Duration::from_millis(2));
    }
}
