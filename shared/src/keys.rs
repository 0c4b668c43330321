//! KMS for envelope encryption: a fresh data key per object, wrapped by a
//! customer-managed key that never leaves KMS.

use std::collections::HashMap;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("kms {operation}: {message}")]
    Kms { operation: &'static str, message: String, retryable: bool },
    #[error("kms returned an unusable data key")]
    BadKey,
}

impl KeyError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Kms { retryable: true, .. })
    }
}

fn kms_error<E, R>(operation: &'static str, err: aws_sdk_kms::error::SdkError<E, R>) -> KeyError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    // A definite refusal (disabled key, wrong context, access denied) will not
    // change on retry; transport failures may.
    let retryable = !matches!(err, aws_sdk_kms::error::SdkError::ServiceError(_));
    KeyError::Kms { operation, message: aws_sdk_kms::error::DisplayErrorContext(&err).to_string(), retryable }
}

/// A data key: the plaintext for local use, the wrapped copy to store.
pub struct DataKey {
    pub plaintext: [u8; 32],
    pub wrapped: Vec<u8>,
    /// The ARN of the KMS key that wrapped it.
    pub key_arn: String,
}

#[derive(Clone, Debug)]
pub struct Keys {
    kms: aws_sdk_kms::Client,
}

impl Keys {
    pub fn new(kms: aws_sdk_kms::Client) -> Self {
        Self { kms }
    }

    /// A new AES-256 data key bound to `context`: KMS will only unwrap it again
    /// when given the same context, so a wrapped key cannot be replayed elsewhere.
    pub async fn generate(&self, key_id: &str, context: &HashMap<String, String>) -> Result<DataKey, KeyError> {
        let out = self
            .kms
            .generate_data_key()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context.clone()))
            .send()
            .await
            .map_err(|e| kms_error("generate data key", e))?;
        let plaintext: [u8; 32] = out.plaintext().map(|b| b.as_ref()).and_then(|b| b.try_into().ok()).ok_or(KeyError::BadKey)?;
        let wrapped = out.ciphertext_blob().map(|b| b.as_ref().to_vec()).ok_or(KeyError::BadKey)?;
        Ok(DataKey { plaintext, wrapped, key_arn: out.key_id().unwrap_or(key_id).to_owned() })
    }

    pub async fn unwrap(&self, wrapped: &[u8], context: &HashMap<String, String>) -> Result<[u8; 32], KeyError> {
        let out = self
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(context.clone()))
            .send()
            .await
            .map_err(|e| kms_error("decrypt", e))?;
        out.plaintext().map(|b| b.as_ref()).and_then(|b| b.try_into().ok()).ok_or(KeyError::BadKey)
    }
}
