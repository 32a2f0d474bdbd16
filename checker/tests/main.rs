//! Integration tests for splitbrain-checker.
mod formats;
mod oracle;
mod linear;
mod fixtures;
mod elle;
