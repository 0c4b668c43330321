//! The manifest: written last, beside the backup object, once the object is
//! complete. It is what `verify`, restore and the drill trust, so it is
//! authenticated with a key derived from the backup's data key: only someone
//! who can unwrap the data key through KMS can write a manifest that verifies.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::frames::TableSummary;

pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    pub backup_id: Uuid,
    pub started_at: String,
    /// When the snapshot was taken: the recovery point.
    pub snapshot_at: String,
    pub finished_at: String,
    /// The newest migration applied when the snapshot was taken.
    pub schema_version: i32,
    pub tables: Vec<TableSummary>,
    /// The stored object and its exact bytes.
    pub object_key: String,
    pub object_version: Option<String>,
    pub object_bytes: u64,
    pub object_sha256: String,
    pub chunks: u32,
    /// Bytes before compression (the archive's records).
    pub archive_bytes: u64,
    /// The KMS key that wrapped the data key; a multi-Region key, so its
    /// replica in the recovery region unwraps it too.
    pub kms_key_arn: String,
    /// The data key, wrapped by KMS under the backup's encryption context (base64).
    pub wrapped_key: String,
    /// HMAC-SHA256 of the manifest without this field, under a key derived
    /// from the data key (hex).
    pub mac: String,
}

type HmacSha256 = Hmac<Sha256>;

/// A key for one purpose, derived from the data key (HMAC as a PRF; the data
/// key is uniformly random, so no extraction step is needed).
pub fn subkey(data_key: &[u8; 32], purpose: &str) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(data_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(b"copper-gallery/backup/v2/");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

impl Manifest {
    /// Where the manifest of the object at `object_key` is stored.
    pub fn key_for(object_key: &str) -> String {
        format!("{}.manifest.json", object_key.trim_end_matches(".cpgbak"))
    }

    fn unsigned_bytes(&self) -> Vec<u8> {
        let unsigned = Self { mac: String::new(), ..self.clone() };
        serde_json::to_vec(&unsigned).unwrap_or_default()
    }

    pub fn sign(&mut self, data_key: &[u8; 32]) {
        let mut mac = HmacSha256::new_from_slice(&subkey(data_key, "manifest"))
            .unwrap_or_else(|_| unreachable!());
        mac.update(&self.unsigned_bytes());
        self.mac = hex::encode(mac.finalize().into_bytes());
    }

    /// Whether the manifest is exactly as the backup run wrote it.
    pub fn verify(&self, data_key: &[u8; 32]) -> bool {
        let Ok(expected) = hex::decode(&self.mac) else { return false };
        let mut mac = HmacSha256::new_from_slice(&subkey(data_key, "manifest"))
            .unwrap_or_else(|_| unreachable!());
        mac.update(&self.unsigned_bytes());
        mac.verify_slice(&expected).is_ok()
    }

    /// The wrapped data key, as KMS takes it.
    pub fn wrapped_key_bytes(&self) -> Option<Vec<u8>> {
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &self.wrapped_key).ok()
    }

    pub fn table(&self, name: &str) -> Option<&TableSummary> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn rows(&self) -> std::collections::BTreeMap<String, u64> {
        self.tables.iter().map(|t| (t.name.clone(), t.rows)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            backup_id: Uuid::nil(),
            started_at: "2026-12-02T03:00:00Z".into(),
            snapshot_at: "2026-12-02T03:00:01Z".into(),
            finished_at: "2026-12-02T03:00:09Z".into(),
            schema_version: 3,
            tables: vec![TableSummary {
                name: "artists".into(),
                columns: vec!["id".into()],
                rows: 2,
                bytes: 10,
                sha256: "00".into(),
            }],
            object_key: "backups/2026/12/02/x.cpgbak".into(),
            object_version: None,
            object_bytes: 100,
            object_sha256: "ab".into(),
            chunks: 1,
            archive_bytes: 50,
            kms_key_arn: "arn:aws:kms:eu-west-1:1:key/mrk-1".into(),
            wrapped_key: "AAAA".into(),
            mac: String::new(),
        }
    }

    #[test]
    fn a_signed_manifest_verifies_and_any_change_breaks_it() {
        let key = [5u8; 32];
        let mut m = sample();
        m.sign(&key);
        assert!(m.verify(&key));
        assert!(!m.verify(&[6u8; 32]));
        let mut rows = m.clone();
        rows.tables[0].rows = 3;
        assert!(!rows.verify(&key));
        let mut object = m.clone();
        object.object_sha256 = "cd".into();
        assert!(!object.verify(&key));
        assert_eq!(
            Manifest::key_for("backups/2026/12/02/x.cpgbak"),
            "backups/2026/12/02/x.manifest.json"
        );
        assert_ne!(subkey(&key, "manifest"), subkey(&key, "chunks"));
    }
}
