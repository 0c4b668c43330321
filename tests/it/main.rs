//! Integration tests against the real local stack started by `cargo xtask test`:
//! PostgreSQL accepting only TLS, and the S3/KMS emulator. Each test gets its
//! own database and buckets, so they run in parallel.

// Helpers outside `#[test]` functions may panic too: a broken stack fails the test.
#![allow(clippy::unwrap_used)]

mod api;
mod backups;
mod browser;
mod database;
mod docs;
mod drills;
mod faults;
mod lambda_runtime;
mod ledger;
mod operator;
mod processor;
mod retention_policy;
mod storage;
mod support;
mod terraform;
