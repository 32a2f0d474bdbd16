//! Clock faults as data, and a seeded generator of values that matter to our Raft.
//!
//! The bundled node reads time through a clock with an offset and a rate that its admin
//! API sets, so a clock fault is just a description here; the executor turns
//! it into `ClusterControl::set_clock` calls. Pure and seeded, like the grudge, so a
//! schedule is fully determined by its seed.
//!
//! # Why these ranges
//! The bundled Raft uses election timeouts of roughly 100–300 ms, and in `lease` read
//! mode a leader serves reads locally for a lease of about one minimum election timeout.
//! The values are chosen around those numbers:
//! - **Bumps** of 50 ms to 10 s, log-uniform, either sign. Below ~50 ms a jump is lost in
//!   scheduling noise; 100–300 ms straddles the lease and the election timeout, where a
//!   lease that "should" have expired is still believed valid (or a follower times out at
//!   once); seconds make every clock-based deadline fire immediately (forward) or not for
//!   many election periods (backward). Beyond ~10 s nothing new happens for a protocol
//!   with sub-second timers, but recovery after the fault gets slower.
//! - **Strobes** flip between the current offset and +delta, delta 50–500 ms (one to a few
//!   leases), every 10–100 ms (several flips per election timeout) for 1–5 s: time seen
//!   by the node jumps back and forth, so durations computed from two readings can be
//!   negative or far too long.
//! - **Rates** between 0.25× and 4×, at least 1.25× away from 1. A leader whose clock runs
//!   at 0.5× holds its 150 ms lease for 300 ms of real time — past the followers'
//!   election timeout, so a new leader can exist while the old one still serves lease
//!   reads. Drift closer to 1 than ~25 % stays inside the margins a lease implementation
//!   usually assumes, so it would test nothing.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::grudge::NodeName;

/// One clock fault, as recorded in the schedule and the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ClockFault {
    /// Jump the node's clock by `delta_ms` (negative: backwards), relative to its current
    /// offset.
    Bump { node: NodeName, delta_ms: i64 },
    /// Alternate the node's clock between its current offset and offset + `delta_ms`
    /// every `period_ms`, for `duration_ms`; then leave it at its current offset.
    Strobe {
        node: NodeName,
        delta_ms: i64,
        period_ms: u64,
        duration_ms: u64,
    },
    /// Make the node's clock run at `rate` times real time (keeping its current offset).
    Rate { node: NodeName, rate: f64 },
    /// Put every node's clock back to real time (offset 0, rate 1).
    Reset,
}

impl ClockFault {
    /// The history `f` of this fault: `clock-bump`, `clock-strobe`, `clock-rate`,
    /// `clock-reset`.
    pub fn f(&self) -> &'static str {
        match self {
            ClockFault::Bump { .. } => "clock-bump",
            ClockFault::Strobe { .. } => "clock-strobe",
            ClockFault::Rate { .. } => "clock-rate",
            ClockFault::Reset => "clock-reset",
        }
    }

    /// The node whose clock this fault changes (`None` for a reset of all nodes).
    pub fn node(&self) -> Option<&NodeName> {
        match self {
            ClockFault::Bump { node, .. }
            | ClockFault::Strobe { node, .. }
            | ClockFault::Rate { node, .. } => Some(node),
            ClockFault::Reset => None,
        }
    }

    /// The same fault on another node (a reset stays a reset).
    pub fn on_node(&self, node: NodeName) -> ClockFault {
        let mut fault = self.clone();
        match &mut fault {
            ClockFault::Bump { node: n, .. }
            | ClockFault::Strobe { node: n, .. }
            | ClockFault::Rate { node: n, .. } => *n = node,
            ClockFault::Reset => {}
        }
        fault
    }

    /// The history `value`: the fault's parameters, without the kind tag.
    pub fn value(&self) -> serde_json::Value {
        match self {
            ClockFault::Bump { node, delta_ms } => {
                serde_json::json!({"node": node, "delta_ms": delta_ms})
            }
            ClockFault::Strobe {
                node,
                delta_ms,
                period_ms,
                duration_ms,
            } => serde_json::json!({
                "node": node, "delta_ms": delta_ms,
                "period_ms": period_ms, "duration_ms": duration_ms,
            }),
            ClockFault::Rate { node, rate } => serde_json::json!({"node": node, "rate": rate}),
            ClockFault::Reset => serde_json::Value::Null,
        }
    }

    /// A random bump, strobe or rate change on `node`. A strobe lasts at most
    /// `max_duration` (so it ends before the schedule heals it).
    pub fn random(node: &NodeName, max_duration: Duration, rng: &mut impl Rng) -> ClockFault {
        let node = node.clone();
        match rng.gen_range(0..3) {
            0 => ClockFault::Bump {
                node,
                delta_ms: random_sign(rng) * log_uniform(rng, 50.0, 10_000.0).round() as i64,
            },
            1 => {
                let cap_ms = (max_duration.as_millis() as u64).max(1);
                let duration_ms = rng.gen_range(1_000..=5_000).min(cap_ms);
                ClockFault::Strobe {
                    node,
                    delta_ms: random_sign(rng) * rng.gen_range(50..=500),
                    period_ms: rng.gen_range(10..=100),
                    duration_ms,
                }
            }
            _ => {
                // |ln rate| in [ln 1.25, ln 4]: far enough from 1 to break lease margins.
                let magnitude = log_uniform(rng, 1.25, 4.0);
                let rate = if rng.gen_bool(0.5) {
                    magnitude
                } else {
                    1.0 / magnitude
                };
                // Two decimals keep recorded values readable and exactly reproducible.
                ClockFault::Rate {
                    node,
                    rate: (rate * 100.0).round() / 100.0,
                }
            }
        }
    }
}

fn random_sign(rng: &mut impl Rng) -> i64 {
    if rng.gen_bool(0.5) {
        1
    } else {
        -1
    }
}

/// A value between `low` and `high` whose logarithm is uniform: small and large
/// magnitudes are drawn equally often.
fn log_uniform(rng: &mut impl Rng, low: f64, high: f64) -> f64 {
    (rng.gen_range(low.ln()..=high.ln())).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn generated_faults_stay_in_the_documented_ranges() {
        let node = "n2".to_string();
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut seen = [0usize; 3];
        for _ in 0..2_000 {
            match ClockFault::random(&node, Duration::from_secs(3), &mut rng) {
                ClockFault::Bump { node: n, delta_ms } => {
                    seen[0] += 1;
                    assert_eq!(n, node);
                    assert!((50..=10_000).contains(&delta_ms.abs()), "{delta_ms}");
                }
                ClockFault::Strobe {
                    delta_ms,
                    period_ms,
                    duration_ms,
                    ..
                } => {
                    seen[1] += 1;
                    assert!((50..=500).contains(&delta_ms.abs()));
                    assert!((10..=100).contains(&period_ms));
                    assert!((1_000..=3_000).contains(&duration_ms), "{duration_ms}");
                }
                ClockFault::Rate { rate, .. } => {
                    seen[2] += 1;
                    assert!((0.25..=4.0).contains(&rate), "{rate}");
                    assert!(!(0.81..=1.24).contains(&rate), "{rate} too close to 1");
                }
                ClockFault::Reset => panic!("random never resets"),
            }
        }
        assert!(seen.iter().all(|&count| count > 400), "{seen:?}");
    }

    #[test]
    fn same_seed_same_faults() {
        let node = "n1".to_string();
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20)
                .map(|_| ClockFault::random(&node, Duration::from_secs(10), &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }

    #[test]
    fn names_and_values_for_the_history() {
        let bump = ClockFault::Bump {
            node: "n1".into(),
            delta_ms: -250,
        };
        assert_eq!(bump.f(), "clock-bump");
        assert_eq!(
            bump.value(),
            serde_json::json!({"node": "n1", "delta_ms": -250})
        );
        assert_eq!(ClockFault::Reset.f(), "clock-reset");
        assert_eq!(ClockFault::Reset.node(), None);
    }
}
