//! The erasure ledger's I/O: retention writes records, every restore reads
//! them (the record's format is `archive::ledger`).

use tracing::warn;

use crate::archive::ledger::{ledger_key, ErasureRecord, LEDGER_PREFIX};
use crate::aws::storage::{ObjectStore, StorageError};

/// The largest record a reader accepts.
const MAX_RECORD: u64 = 1 << 20;

/// Every record in a bucket's erasure ledger, oldest request first.
pub async fn read_ledger(
    store: &ObjectStore,
    bucket: &str,
) -> Result<Vec<ErasureRecord>, StorageError> {
    let mut records = Vec::new();
    for key in store.list_keys(bucket, LEDGER_PREFIX).await? {
        let bytes = store.get(bucket, &key, MAX_RECORD).await?;
        match serde_json::from_slice::<ErasureRecord>(&bytes) {
            Ok(record) if ledger_key(record.id) == key => records.push(record),
            // A record that is not ours is not a reason to resurrect anyone, nor to stop.
            _ => warn!(%key, "not an erasure record; skipped"),
        }
    }
    records.sort_by_key(|r| (r.requested_at, r.id));
    Ok(records)
}

/// Writes (or replaces) a record, under the store's KMS key.
pub async fn write_record(
    store: &ObjectStore,
    bucket: &str,
    record: &ErasureRecord,
) -> Result<(), StorageError> {
    let body = serde_json::to_vec_pretty(record).unwrap_or_default();
    store.put(bucket, &ledger_key(record.id), body, "application/json").await.map(|_| ())
}
