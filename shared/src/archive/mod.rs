//! What the gallery writes to last: the backup archive (its header and sealed
//! chunks, its table frames, its manifest) and the erasure ledger's record.
//! Restores must read every version of these for as long as a backup may be
//! restored, so they are types of their own that the database and S3 code
//! map into, never a database row serialized as it happens to be.

pub mod format;
pub mod frames;
pub mod ledger;
pub mod manifest;
