//! The gallery's library, shared by every function. Its modules are layers;
//! a module imports only from its own layer or those below
//! (`cargo xtask layers` checks it, ARCHITECTURE.md lists the rules):
//!
//! - **L0, the vocabulary and pure rules** (no AWS SDK, no database driver):
//!   `domain`, `config` (imports nothing else of the crate), `operator` (the
//!   operator protocol), `retention` (the policy and rotation), `archive` (the
//!   persisted formats), `telemetry`.
//! - **L1, the adapters**, each on L0 only and never on each other: `db`
//!   (the pool and all SQL) and `aws` (clients, secrets, objects, keys, STS).
//! - **L2, what several functions do alike**: `connect` (cold start), `runner`
//!   (the audited operator runner), `media` (edge visibility), `ledger` (the
//!   erasure ledger's I/O).
//!
//! Logic only one function runs lives in that function's crate. This crate
//! knows nothing of Lambda event types; the functions translate their events
//! into calls on it.

// L0
pub mod archive;
pub mod config;
pub mod domain;
pub mod operator;
pub mod retention;
pub mod telemetry;

// L1
pub mod aws;
pub mod db;

// L2
pub mod connect;
pub mod ledger;
pub mod media;
pub mod runner;
