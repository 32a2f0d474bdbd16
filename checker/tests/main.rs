//! Integration tests for splitbrain-checker.
