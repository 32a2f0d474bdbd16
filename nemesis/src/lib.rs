//! splitbrain-nemesis: faults — the grudge model, network backends, process and clock
//! faults — always able to heal.
//!
//! Not yet written: see the test-driver issue.
