//! The retention policy (what is kept how long, rule by rule) and the backup
//! rotation it implies: pure, so the API, the sweep and restores agree on
//! them. The sweep that applies them is the retention function's.

pub mod policy;
pub mod rotation;

pub use policy::{Policy, Rule};
pub use rotation::Rotation;
