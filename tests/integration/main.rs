//! End-to-end tests of the splitbrain binary.
