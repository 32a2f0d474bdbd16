//! Integration tests for splitbrain-checker.
mod elle;
mod entry;
mod fixtures;
mod formats;
mod linear;
mod oracle;
mod rw_register;
mod txn_history;
