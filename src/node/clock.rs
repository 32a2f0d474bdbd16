//! The node's clock: the only source of time for every time-dependent part of the node.
//!
//! The tick loop that drives the consensus core, client request deadlines and the
//! leader lease all read [`Clock::now`], never `Instant::now` directly. The admin API
//! can skew this clock (an offset added to elapsed time, and a rate multiplying the
//! passage of real time), which is how the harness injects clock faults into a node
//! without privileges or libfaketime: a forward bump produces a burst of ticks, a
//! backward bump stalls the timers, a rate of 2.0 runs every timer twice as fast.

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
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ClockSkew {
    /// Milliseconds added to elapsed time.
    pub offset_ms: i64,
    /// Multiplier applied to the passage of real time.
    pub rate: f64,
}

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
        let s = *self.lock();
        s.virtual_ms_at(Instant::now()) + s.offset_ms as f64
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

/// Turns clock time into whole ticks for the consensus core. A tick fires each time the
/// clock crosses a multiple of `tick_ms`; when the clock jumps forward, all the missed
/// ticks fire at once (bounded by `max_burst`), when it goes backwards no tick fires
/// until the clock is past the last tick again.
#[derive(Debug)]
pub struct TickSource {
    clock: Clock,
    tick_ms: f64,
    /// Clock time of the last tick that fired.
    last_tick_ms: f64,
    /// At most this many ticks per poll, so that a huge bump cannot freeze the node.
    max_burst: u64,
}

impl TickSource {
    pub fn new(clock: Clock, tick_ms: u64) -> Self {
        let tick_ms = tick_ms.max(1) as f64;
        let last_tick_ms = clock.now_ms();
        TickSource {
            clock,
            tick_ms,
            last_tick_ms,
            max_burst: 1000,
        }
    }

    /// The number of ticks due now (0 when the clock has not advanced a whole tick).
    pub fn due(&mut self) -> u64 {
        let now = self.clock.now_ms();
        if now < self.last_tick_ms + self.tick_ms {
            return 0;
        }
        let n = ((now - self.last_tick_ms) / self.tick_ms).floor() as u64;
        let fired = n.min(self.max_burst);
        if fired == n {
            self.last_tick_ms += n as f64 * self.tick_ms;
        } else {
            // Skip the ticks beyond the burst limit entirely.
            self.last_tick_ms = now;
        }
        fired
    }

    /// Real time until the next tick is due, for the tick loop's sleep.
    pub fn real_wait(&self) -> Duration {
        let remaining = self.last_tick_ms + self.tick_ms - self.clock.now_ms();
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
    fn forward_bump_produces_a_burst_of_ticks() {
        let clock = Clock::new();
        let mut ticks = TickSource::new(clock.clone(), 10);
        assert_eq!(ticks.due(), 0);
        clock.set(1000, 1.0).expect("valid skew");
        let burst = ticks.due();
        assert!((100..=101).contains(&burst), "burst {burst}");
        assert_eq!(ticks.due(), 0);
    }

    #[test]
    fn backward_bump_stalls_ticks_and_reset_does_not_jump_back() {
        let clock = Clock::new();
        let mut ticks = TickSource::new(clock.clone(), 10);
        clock.set(-60_000, 1.0).expect("valid skew");
        assert_eq!(ticks.due(), 0);
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
