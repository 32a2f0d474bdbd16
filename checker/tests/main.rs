//! Integration tests for splitbrain-checker.
mod formats;
mod linear;
