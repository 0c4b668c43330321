//! The erasure ledger's record: one JSON object per erasure at
//! `erasures/<id>.json` in the backups bucket, written before anything is
//! deleted and read by every restore, so no backup brings an erased artist back.
//!
//! Version 1, the only one, has no version field: a later version must add
//! one, and readers must keep reading records without it as version 1.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where the ledger keeps its records.
pub const LEDGER_PREFIX: &str = "erasures/";

/// Where the ledger keeps an erasure's record.
pub fn ledger_key(id: Uuid) -> String {
    format!("{LEDGER_PREFIX}{id}.json")
}

/// An erasure as the ledger keeps it: what was asked, by whom, and what it
/// removed. No personal data: the artist is named by id only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErasureRecord {
    pub id: Uuid,
    pub artist_id: Uuid,
    pub requested_at: DateTime<Utc>,
    /// `token:<id>` (an admin through the API) or `operator:<IAM ARN>`.
    pub requested_by: String,
    pub request_id: Option<String>,
    /// `None` while the erasure is requested but not yet complete.
    pub completed_at: Option<DateTime<Utc>>,
    pub rows_deleted: Option<serde_json::Value>,
    pub objects_deleted: Option<serde_json::Value>,
    pub backups_containing: Option<serde_json::Value>,
    pub replayed_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record written by the first release must read forever.
    #[test]
    fn version_one_records_read() {
        let written = r#"{"id":"6f9619ff-8b86-d011-b42d-00cf4fc964ff","artist_id":"00000000-0000-0000-0000-000000000001",
            "requested_at":"2026-11-20T10:00:00Z","requested_by":"operator:arn:aws:sts::1:assumed-role/o/alice","request_id":"r",
            "completed_at":null,"rows_deleted":null,"objects_deleted":null,"backups_containing":null,"replayed_at":null}"#;
        let record: ErasureRecord = serde_json::from_str(written).unwrap();
        assert_eq!(ledger_key(record.id), "erasures/6f9619ff-8b86-d011-b42d-00cf4fc964ff.json");
        assert!(record.completed_at.is_none());
    }
}
