//! The gallery's library: configuration, telemetry, the domain and its rules,
//! and the adapters to PostgreSQL, S3, KMS and Secrets Manager.
//!
//! This crate knows nothing of Lambda event types; the functions translate
//! their events into calls on it.

pub mod aws;
pub mod backup;
pub mod config;
pub mod db;
pub mod domain;
pub mod edge;
#[cfg(feature = "imaging")]
pub mod imaging;
pub mod keys;
pub mod media;
pub mod ops;
#[cfg(feature = "imaging")]
pub mod renditions;
pub mod retention;
pub mod storage;
pub mod telemetry;
