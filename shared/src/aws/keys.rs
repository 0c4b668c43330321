//! KMS for envelope encryption: a fresh data key per object, wrapped by a
//! customer-managed key that never leaves KMS.

use std::collections::HashMap;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use zeroize::Zeroizing;

/// What a KMS refusal means for the operator reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsFailure {
    /// Throttling, KMS's own 5xx, timeouts, no connection: try again.
    Unavailable,
    /// IAM or the key policy does not allow this caller.
    AccessDenied,
    /// The key is disabled, pending deletion or otherwise unusable.
    KeyUnusable,
    /// The wrapped key is not this key's, or the encryption context differs.
    WrongKeyOrContext,
    NotFound,
    Other,
}

impl KmsFailure {
    /// From the error code KMS answered with (or none: it did not answer).
    pub fn classify(code: Option<&str>, status: Option<u16>) -> Self {
        match code {
            Some(
                "ThrottlingException"
                | "KMSInternalException"
                | "DependencyTimeoutException"
                | "LimitExceededException",
            ) => Self::Unavailable,
            Some("AccessDeniedException" | "AccessDenied") => Self::AccessDenied,
            Some("DisabledException" | "KMSInvalidStateException" | "KeyUnavailableException") => {
                Self::KeyUnusable
            }
            Some("InvalidCiphertextException" | "IncorrectKeyException") => Self::WrongKeyOrContext,
            Some("NotFoundException") => Self::NotFound,
            _ if status.is_none_or(|s| s >= 500 || s == 429) => Self::Unavailable,
            _ => Self::Other,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Unavailable => "KMS is unavailable (retryable)",
            Self::AccessDenied => "access denied by IAM or the key policy",
            Self::KeyUnusable => "the key is disabled or pending deletion",
            Self::WrongKeyOrContext => {
                "the wrapped key belongs to another key or another encryption context"
            }
            Self::NotFound => "the key does not exist in this region",
            Self::Other => "refused",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("kms {operation}: {}: {message}", failure.describe())]
    Kms { operation: &'static str, failure: KmsFailure, message: String },
    #[error("kms returned an unusable data key")]
    BadKey,
}

impl KeyError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Kms { failure: KmsFailure::Unavailable, .. })
    }

    pub fn failure(&self) -> Option<KmsFailure> {
        match self {
            Self::Kms { failure, .. } => Some(*failure),
            Self::BadKey => None,
        }
    }
}

fn kms_error<E>(
    operation: &'static str,
    err: aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
) -> KeyError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    use aws_sdk_kms::error::SdkError;
    let failure = match &err {
        SdkError::ServiceError(service) => {
            KmsFailure::classify(service.err().code(), Some(service.raw().status().as_u16()))
        }
        // No answer from KMS: a timeout, a dropped connection, a bad response.
        _ => KmsFailure::Unavailable,
    };
    KeyError::Kms {
        operation,
        failure,
        message: aws_sdk_kms::error::DisplayErrorContext(&err).to_string(),
    }
}

/// A data key: the plaintext for local use, the wrapped copy to store.
pub struct DataKey {
    /// Wiped from memory when dropped.
    pub plaintext: Zeroizing<[u8; 32]>,
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
    pub async fn generate(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
    ) -> Result<DataKey, KeyError> {
        let out = self
            .kms
            .generate_data_key()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context.clone()))
            .send()
            .await
            .map_err(|e| kms_error("generate data key", e))?;
        let plaintext: Zeroizing<[u8; 32]> = out
            .plaintext()
            .map(|b| b.as_ref())
            .and_then(|b| b.try_into().ok())
            .map(Zeroizing::new)
            .ok_or(KeyError::BadKey)?;
        let wrapped = out.ciphertext_blob().map(|b| b.as_ref().to_vec()).ok_or(KeyError::BadKey)?;
        Ok(DataKey { plaintext, wrapped, key_arn: out.key_id().unwrap_or(key_id).to_owned() })
    }

    /// Encrypts 32 bytes (a digest) under `key_id` bound to `context`: the
    /// ciphertext is a seal only a caller allowed `kms:Encrypt` with that
    /// context can make, and `unwrap` (Decrypt) proves.
    pub async fn seal(
        &self,
        key_id: &str,
        digest: &[u8; 32],
        context: &HashMap<String, String>,
    ) -> Result<Vec<u8>, KeyError> {
        let out = self
            .kms
            .encrypt()
            .key_id(key_id)
            .plaintext(Blob::new(digest.as_slice()))
            .set_encryption_context(Some(context.clone()))
            .send()
            .await
            .map_err(|e| kms_error("encrypt", e))?;
        out.ciphertext_blob().map(|b| b.as_ref().to_vec()).ok_or(KeyError::BadKey)
    }

    /// Unwraps a data key; with `key_id`, KMS refuses one wrapped by any other
    /// key (for a multi-Region key, its replica in this region counts as the same key).
    pub async fn unwrap(
        &self,
        wrapped: &[u8],
        context: &HashMap<String, String>,
        key_id: Option<&str>,
    ) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let out = self
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(wrapped))
            .set_key_id(key_id.map(str::to_owned))
            .set_encryption_context(Some(context.clone()))
            .send()
            .await
            .map_err(|e| kms_error("decrypt", e))?;
        out.plaintext()
            .map(|b| b.as_ref())
            .and_then(|b| b.try_into().ok())
            .map(Zeroizing::new)
            .ok_or(KeyError::BadKey)
    }
}

impl Keys {
    /// The ARN behind an alias or id (one DescribeKey), to compare keys by identity.
    pub async fn arn_of(&self, key_id: &str) -> Result<String, KeyError> {
        if key_id.starts_with("arn:") && key_id.contains(":key/") {
            return Ok(key_id.to_owned());
        }
        let out = self
            .kms
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| kms_error("describe key", e))?;
        out.key_metadata().and_then(|m| m.arn()).map(str::to_owned).ok_or(KeyError::BadKey)
    }
}

/// A key's identity across Regions: the key id of its ARN (a multi-Region
/// key and its replicas share it, `mrk-…`).
pub fn key_identity(arn_or_id: &str) -> &str {
    arn_or_id.rsplit('/').next().unwrap_or(arn_or_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_refusals_are_named_and_only_transient_ones_retried() {
        assert_eq!(
            KmsFailure::classify(Some("ThrottlingException"), Some(400)),
            KmsFailure::Unavailable
        );
        assert_eq!(
            KmsFailure::classify(Some("KMSInternalException"), Some(500)),
            KmsFailure::Unavailable
        );
        assert_eq!(KmsFailure::classify(None, Some(503)), KmsFailure::Unavailable);
        assert_eq!(
            KmsFailure::classify(Some("AccessDeniedException"), Some(400)),
            KmsFailure::AccessDenied
        );
        assert_eq!(
            KmsFailure::classify(Some("DisabledException"), Some(400)),
            KmsFailure::KeyUnusable
        );
        assert_eq!(
            KmsFailure::classify(Some("InvalidCiphertextException"), Some(400)),
            KmsFailure::WrongKeyOrContext
        );
        assert_eq!(
            KmsFailure::classify(Some("IncorrectKeyException"), Some(400)),
            KmsFailure::WrongKeyOrContext
        );
        assert_eq!(KmsFailure::classify(Some("ValidationException"), Some(400)), KmsFailure::Other);
        assert_eq!(
            key_identity("arn:aws:kms:eu-west-1:1:key/mrk-abc"),
            key_identity("arn:aws:kms:eu-central-1:1:key/mrk-abc")
        );
    }
}
