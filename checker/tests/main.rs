//! Integration tests for splitbrain-checker.
mod elle;
mod fixtures;
mod formats;
mod linear;
mod oracle;
mod rw_register;
mod txn_history;
