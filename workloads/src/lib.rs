//! splitbrain-workloads: seeded, pure generators of operations per workload, and the
//! async clients that turn an operation into a request to a system under test.
//!
//! Not yet written: see the test-driver issue.
