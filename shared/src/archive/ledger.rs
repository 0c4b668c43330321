//! The erasure ledger's record: one JSON object per erasure at
//! `erasures/<id>.json` in the backups bucket, written when the erasure is
//! requested (before the request is answered) and again when it completes,
//! and read by every recovery path, so no restore brings an erased artist back.
//!
//! Records are sealed (version 2): the object holds the record's exact bytes
//! and a KMS ciphertext of their SHA-256 under the multi-Region backups key,
//! bound by encryption context to the ledger and the record's id. Only a
//! role the key policy lets `kms:Encrypt` with that context can make a seal;
//! any role that opens backups can check one, in either Region. We chose this
//! over an HMAC key (a second key to replicate and grant) and over Object Lock
//! alone (which stops deletion but not a forged record that would erase
//! someone on the next restore); the bucket's Object Lock keeps records from
//! being deleted.
//!
//! Version 1 records (no `version`, no seal) still parse, but are refused as
//! unauthenticated: a reader cannot tell them from a forgery.

use std::collections::HashMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Where the ledger keeps its records.
pub const LEDGER_PREFIX: &str = "erasures/";

/// How long every record version is locked (S3 Object Lock, COMPLIANCE):
/// longer than the rotation may keep any backup (`retention::policy` refuses
/// a longer one), so while a backup can bring an artist back, nobody can
/// delete the record that keeps them erased.
pub const LEDGER_LOCK: chrono::Duration = chrono::Duration::days(11 * 366);

/// The version records are written in.
pub const LEDGER_VERSION: u8 = 2;

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

/// Why a stored record is not one a restore may act on. Each names the object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("erasure ledger record {key} is malformed: {reason}")]
    Malformed { key: String, reason: String },
    #[error("erasure ledger record {key} is unsealed (version 1): it cannot be told from a forgery; re-seal it from the erasures table (docs/backup-restore.md)")]
    Unsealed { key: String },
    #[error("erasure ledger record {key} has version {version}, which this release does not know")]
    UnknownVersion { key: String, version: u64 },
    #[error("erasure ledger record {key} holds erasure {id}: records live under their own id")]
    Misfiled { key: String, id: Uuid },
    #[error("erasure ledger record {key} is not authentic: its seal does not match its bytes (modified, or not written by the gallery)")]
    Forged { key: String },
}

/// The encryption context a record's seal is bound to: a seal opens only for
/// the record it was made for, and no backup's data key context is like it.
pub fn seal_context(id: Uuid) -> HashMap<String, String> {
    HashMap::from([
        ("purpose".to_owned(), "gallery-erasure-ledger".to_owned()),
        ("record".to_owned(), id.to_string()),
    ])
}

/// A record about to be written: its exact bytes and the digest KMS seals.
pub struct Unsealed {
    pub id: Uuid,
    body: String,
}

impl Unsealed {
    pub fn new(record: &ErasureRecord) -> Self {
        // Serializing a struct of strings, ids, times and JSON values cannot fail.
        let body = serde_json::to_string(record).unwrap_or_default();
        Self { id: record.id, body }
    }

    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.body.as_bytes()).into()
    }

    /// The object to store, given KMS's ciphertext of `digest()`.
    pub fn seal(self, seal: &[u8]) -> Vec<u8> {
        let seal = base64::engine::general_purpose::STANDARD.encode(seal);
        format!("{{\"version\":{LEDGER_VERSION},\"record\":{},\"seal\":\"{seal}\"}}\n", self.body)
            .into_bytes()
    }
}

/// A stored record read back, not yet proven: the seal still has to open to `digest`.
#[derive(Debug)]
pub struct Sealed {
    pub key: String,
    pub record: ErasureRecord,
    pub digest: [u8; 32],
    pub seal: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored<'a> {
    /// Checked before this shape is read.
    #[serde(rename = "version")]
    _version: u64,
    #[serde(borrow)]
    record: &'a RawValue,
    seal: String,
}

/// Reads the object stored at `key`: its record, and what proves it.
pub fn decode(key: &str, bytes: &[u8]) -> Result<Sealed, RecordError> {
    let malformed = |reason: String| RecordError::Malformed { key: key.to_owned(), reason };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let version = match value.get("version") {
        None if serde_json::from_slice::<ErasureRecord>(bytes).is_ok() => {
            return Err(RecordError::Unsealed { key: key.to_owned() })
        }
        None => return Err(malformed("neither a sealed record nor a version 1 record".into())),
        Some(v) => v.as_u64().ok_or_else(|| malformed("its version is not a number".into()))?,
    };
    if version != u64::from(LEDGER_VERSION) {
        return Err(RecordError::UnknownVersion { key: key.to_owned(), version });
    }
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let record: ErasureRecord =
        serde_json::from_str(stored.record.get()).map_err(|e| malformed(e.to_string()))?;
    if ledger_key(record.id) != key {
        return Err(RecordError::Misfiled { key: key.to_owned(), id: record.id });
    }
    let seal = base64::engine::general_purpose::STANDARD
        .decode(&stored.seal)
        .map_err(|_| malformed("its seal is not base64".into()))?;
    let digest = Sha256::digest(stored.record.get().as_bytes()).into();
    Ok(Sealed { key: key.to_owned(), record, digest, seal })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"id":"6f9619ff-8b86-d011-b42d-00cf4fc964ff","artist_id":"00000000-0000-0000-0000-000000000001",
            "requested_at":"2026-11-20T10:00:00Z","requested_by":"operator:arn:aws:sts::1:assumed-role/o/alice","request_id":"r",
            "completed_at":null,"rows_deleted":null,"objects_deleted":null,"backups_containing":null,"replayed_at":null}"#;

    fn record() -> ErasureRecord {
        serde_json::from_str(V1).unwrap()
    }

    fn key() -> String {
        ledger_key(record().id)
    }

    /// A record written by the first release still parses, and is refused as unsealed.
    #[test]
    fn version_one_records_parse_and_are_refused_as_unsealed() {
        let record = record();
        assert_eq!(ledger_key(record.id), "erasures/6f9619ff-8b86-d011-b42d-00cf4fc964ff.json");
        assert!(record.completed_at.is_none());
        assert_eq!(
            decode(&key(), V1.as_bytes()).unwrap_err(),
            RecordError::Unsealed { key: key() }
        );
    }

    #[test]
    fn a_sealed_record_reads_back_with_the_digest_of_its_exact_bytes() {
        let unsealed = Unsealed::new(&record());
        let digest = unsealed.digest();
        let bytes = unsealed.seal(b"kms ciphertext");
        let sealed = decode(&key(), &bytes).unwrap();
        assert_eq!(sealed.record, record());
        assert_eq!(sealed.digest, digest);
        assert_eq!(sealed.seal, b"kms ciphertext");
    }

    #[test]
    fn any_change_to_the_record_changes_its_digest() {
        let bytes = String::from_utf8(Unsealed::new(&record()).seal(b"s")).unwrap();
        let genuine = decode(&key(), bytes.as_bytes()).unwrap().digest;
        // Reformatting counts as a change too: the seal covers bytes, not meaning.
        for changed in [
            bytes.replace("operator:arn", "operator:ARN"),
            bytes.replace("\"request_id\":\"r\"", "\"request_id\": \"r\""),
            bytes.replace("2026-11-20T10:00:00Z", "2026-11-21T10:00:00Z"),
        ] {
            assert_ne!(changed, bytes);
            assert_ne!(decode(&key(), changed.as_bytes()).unwrap().digest, genuine, "{changed}");
        }
    }

    #[test]
    fn every_malformed_shape_is_named() {
        let sealed = String::from_utf8(Unsealed::new(&record()).seal(b"s")).unwrap();
        let cases = [
            ("not json", "not json".to_owned()),
            ("no record", r#"{"hello":1}"#.to_owned()),
            ("version text", sealed.replace("\"version\":2", "\"version\":\"2\"")),
            ("extra field", sealed.replace("\"version\":2", "\"version\":2,\"x\":1")),
            ("seal not base64", sealed.replace("\"seal\":\"cw==\"", "\"seal\":\"%%\"")),
            ("no seal", sealed.replace(",\"seal\":\"cw==\"", "")),
            ("record not a record", sealed.replace("\"artist_id\"", "\"artist\"")),
        ];
        for (what, bytes) in cases {
            assert_ne!(bytes, sealed, "{what}: the case must change something");
            match decode(&key(), bytes.as_bytes()) {
                Err(RecordError::Malformed { key: k, .. }) => assert_eq!(k, key(), "{what}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        let future = sealed.replace("\"version\":2", "\"version\":3");
        assert_eq!(
            decode(&key(), future.as_bytes()).unwrap_err(),
            RecordError::UnknownVersion { key: key(), version: 3 }
        );
        let elsewhere = ledger_key(Uuid::nil());
        assert_eq!(
            decode(&elsewhere, sealed.as_bytes()).unwrap_err(),
            RecordError::Misfiled { key: elsewhere.clone(), id: record().id }
        );
        let message = RecordError::Forged { key: key() }.to_string();
        assert!(message.contains(&key()) && message.contains("not authentic"), "{message}");
    }

    #[test]
    fn seals_are_bound_to_their_record() {
        let a = seal_context(Uuid::nil());
        let b = seal_context(record().id);
        assert_ne!(a, b);
        assert_eq!(a["purpose"], "gallery-erasure-ledger");
    }
}
