//! The erasure ledger's I/O: the API and retention write sealed records, every
//! recovery path reads them back and proves each before acting on any (the
//! record's format is `archive::ledger`).

use crate::archive::ledger::{
    decode, ledger_key, seal_context, ErasureRecord, RecordError, Unsealed, LEDGER_LOCK,
    LEDGER_PREFIX,
};
use crate::aws::keys::{KeyError, Keys, KmsFailure};
use crate::aws::storage::{Lock, ObjectStore, StorageError};

/// The largest record a reader accepts.
const MAX_RECORD: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the erasure ledger could not be read or written: {0}")]
    Storage(#[from] StorageError),
    #[error("the erasure ledger's seal: {0}")]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl LedgerError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_retryable(),
            Self::Keys(e) => e.is_retryable(),
            Self::Record(_) => false,
        }
    }
}

/// The ledger in one bucket, sealed with one KMS key (the backups key, or its
/// replica in the recovery Region). Objects are written under `store`'s key.
#[derive(Clone, Debug)]
pub struct Ledger {
    pub store: ObjectStore,
    pub keys: Keys,
    pub bucket: String,
    pub key_id: String,
}

impl Ledger {
    /// The ledger in `bucket`, objects encrypted and records sealed with `key_id`.
    pub fn new(clients: &crate::aws::Clients, bucket: &str, key_id: &str) -> Self {
        Self {
            // Locked for as long as any backup the record guards can be restored.
            store: ObjectStore::new(clients, key_id)
                .locking(Lock { retain: LEDGER_LOCK, new_keys_only: false }),
            keys: Keys::new(clients.kms.clone()),
            bucket: bucket.to_owned(),
            key_id: key_id.to_owned(),
        }
    }

    /// Writes (or replaces) a record, sealed.
    pub async fn write(&self, record: &ErasureRecord) -> Result<(), LedgerError> {
        let unsealed = Unsealed::new(record);
        let seal =
            self.keys.seal(&self.key_id, &unsealed.digest(), &seal_context(record.id)).await?;
        let body = unsealed.seal(&seal);
        self.store.put(&self.bucket, &ledger_key(record.id), body, "application/json").await?;
        Ok(())
    }

    /// Every record, each proven, oldest request first. One record that is
    /// malformed, unsealed, misfiled or forged stops the read with its name:
    /// acting on the rest would let a tampered ledger choose who comes back.
    pub async fn read_all(&self) -> Result<Vec<ErasureRecord>, LedgerError> {
        let mut records = Vec::new();
        for key in self.store.list_keys(&self.bucket, LEDGER_PREFIX).await? {
            let bytes = self.store.get(&self.bucket, &key, MAX_RECORD).await?;
            let sealed = decode(&key, &bytes)?;
            let context = seal_context(sealed.record.id);
            let opened = match self.keys.unwrap(&sealed.seal, &context, Some(&self.key_id)).await {
                Ok(digest) => digest,
                Err(e) if e.failure() == Some(KmsFailure::WrongKeyOrContext) => {
                    return Err(RecordError::Forged { key }.into())
                }
                Err(e) => return Err(e.into()),
            };
            if *opened != sealed.digest {
                return Err(RecordError::Forged { key }.into());
            }
            records.push(sealed.record);
        }
        records.sort_by_key(|r| (r.requested_at, r.id));
        Ok(records)
    }
}
