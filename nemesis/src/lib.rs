//! splitbrain-nemesis: faults — who drops whose packets, killed and paused processes,
//! skewed clocks — planned from a seed, injected into a live cluster, and always healed.
//!
//! # Layout
//! - [`grudge`]: the pure model of a network partition (node → nodes it drops) and the
//!   Jepsen shapes that generate one.
//! - [`net`]: backends that enforce a grudge — [`net::proxy::ProxyNet`] (userspace TCP
//!   proxies on loopback, any user) and [`net::netns::NetnsNet`] (a network namespace per
//!   node, iptables DROP rules, root).
//! - [`process`]: SIGKILL / SIGSTOP / SIGCONT by pid, idempotent.
//! - [`clock`]: clock faults as data and a seeded generator of values that matter.
//! - [`faults`]: one row per fault kind (name, lane, needs, in `all`) and the
//!   [`faults::Capabilities`] a database and its network offer; validation, the schedule
//!   and the refusals read these.
//! - [`schedule`]: the seeded plan of fault starts and stops (Jepsen's nemesis generator).
//! - [`control`]: the driver's [`control::ClusterControl`], the [`control::FaultState`]
//!   every fault is recorded in before it is attempted, and the primitive actions shared
//!   by the executor and the scripts.
//! - [`scenario`]: scripted faults (a split vote with a restarted voter, Figure 8, a slow
//!   isolated leader) built from message rules, clock freezes and restarts.
//! - [`executor`]: runs a plan against the driver's cluster and a network backend,
//!   dispatching scripted steps to [`scenario`], records [`executor::NemesisEvent`]s, and
//!   [`executor::heal_all`].
//!
//! # Example
//! ```no_run
//! # async fn demo(cluster: &impl splitbrain_nemesis::ClusterControl)
//! #     -> Result<(), splitbrain_nemesis::NemesisError> {
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//! use splitbrain_nemesis::{executor, schedule, NetBackend, ProxyNet, ScheduleConfig};
//!
//! let nodes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
//! let real = BTreeMap::from([
//!     ("n1".to_string(), "127.0.0.1:7101".parse().unwrap()),
//!     ("n2".to_string(), "127.0.0.1:7102".parse().unwrap()),
//!     ("n3".to_string(), "127.0.0.1:7103".parse().unwrap()),
//! ]);
//! let net = ProxyNet::start(real).await?;
//! // ... start each node, telling node `a` to dial `net.peer_addr(a, b)?` for peer `b` ...
//! let plan = schedule(&ScheduleConfig::new(nodes.clone(), 42), Duration::from_secs(60));
//! let mut state = splitbrain_nemesis::FaultState::new(nodes);
//! let outcome = executor::run(&plan, cluster, &net, &mut state, 42,
//!     |event| println!("{event:?}"), async { let _ = tokio::signal::ctrl_c().await; }).await;
//! executor::heal_all(cluster, &net, &mut state).await?;
//! net.teardown().await?;
//! # let _ = outcome; Ok(()) }
//! ```

pub mod clock;
pub mod control;
pub mod error;
pub mod executor;
pub mod faults;
pub mod grudge;
pub mod net;
pub mod process;
pub mod scenario;
pub mod schedule;

pub use clock::ClockFault;
pub use control::{ClusterControl, FaultState, RaftView, Role};
pub use error::NemesisError;
pub use executor::{heal_all, run, NemesisEvent, Phase, RunOutcome};
pub use faults::{Ability, Capabilities, FaultRow, Lane, Needs, FAULTS};
pub use grudge::{Grudge, NodeName, PartitionShape};
pub use net::messages::{FrameClassifier, MessageRules};
pub use net::netns::{NetnsConfig, NetnsNet};
pub use net::proxy::ProxyNet;
pub use net::{Net, NetBackend};
pub use scenario::SLOW_LEADER_RATE;
pub use schedule::{schedule, Action, FaultKind, ScheduleConfig, Step, TargetSpec};
