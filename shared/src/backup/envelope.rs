//! The sealed backup file: a small header, then the AES-256-GCM ciphertext of
//! the zstd-compressed archive. The header is authenticated as GCM's
//! associated data, so changing any byte of the file makes it refuse to open.
//!
//! ```text
//! "CPGBAK01" | u32 big-endian header length | header JSON | ciphertext+tag
//! ```

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::BackupError;

pub const MAGIC: &[u8; 8] = b"CPGBAK01";
const MAX_HEADER: usize = 64 * 1024;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub backup_id: String,
    pub created_at: String,
    pub cipher: String,
    pub compression: String,
    /// The KMS key that wrapped the data key.
    pub kms_key_arn: String,
    /// The data key, wrapped by KMS (base64).
    pub wrapped_key: String,
    /// The 96-bit GCM nonce (base64); unique because each backup has its own key.
    pub nonce: String,
}

impl Header {
    pub fn wrapped_key_bytes(&self) -> Result<Vec<u8>, BackupError> {
        B64.decode(&self.wrapped_key).map_err(|_| BackupError::Malformed("wrapped key is not base64".into()))
    }
}

/// Seals compressed archive bytes with `key`.
pub fn seal(compressed: &[u8], key: &[u8; 32], nonce: [u8; 12], mut header: Header, wrapped_key: &[u8]) -> Result<Vec<u8>, BackupError> {
    header.cipher = "AES-256-GCM".into();
    header.compression = "zstd".into();
    header.wrapped_key = B64.encode(wrapped_key);
    header.nonce = B64.encode(nonce);
    let header_json = serde_json::to_vec(&header).map_err(|e| BackupError::Malformed(e.to_string()))?;
    let mut out = Vec::with_capacity(compressed.len() + header_json.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header_json.len() as u32).to_be_bytes());
    out.extend_from_slice(&header_json);
    let aad = out.clone();
    let cipher = Aes256Gcm::new(key.into());
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: compressed, aad: &aad })
        .map_err(|_| BackupError::Malformed("encryption failed".into()))?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Splits a sealed file into its header and the rest, checking the framing.
pub fn parse(file: &[u8]) -> Result<(Header, usize), BackupError> {
    if file.len() < MAGIC.len() + 4 || &file[..MAGIC.len()] != MAGIC {
        return Err(BackupError::Malformed("not a gallery backup file".into()));
    }
    let len_bytes: [u8; 4] = file[8..12].try_into().map_err(|_| BackupError::Malformed("truncated header".into()))?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    if len > MAX_HEADER || file.len() < 12 + len + 16 {
        return Err(BackupError::Malformed("truncated or oversized header".into()));
    }
    let header: Header = serde_json::from_slice(&file[12..12 + len]).map_err(|e| BackupError::Malformed(format!("header: {e}")))?;
    if header.cipher != "AES-256-GCM" || header.compression != "zstd" {
        return Err(BackupError::Malformed(format!("unsupported cipher {} / compression {}", header.cipher, header.compression)));
    }
    Ok((header, 12 + len))
}

/// Decrypts and authenticates; any change to the file fails here.
pub fn open(file: &[u8], body_start: usize, header: &Header, key: &[u8; 32]) -> Result<Vec<u8>, BackupError> {
    let nonce: [u8; 12] =
        B64.decode(&header.nonce).ok().and_then(|n| n.try_into().ok()).ok_or_else(|| BackupError::Malformed("bad nonce".into()))?;
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &file[body_start..], aad: &file[..body_start] })
        .map_err(|_| BackupError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            backup_id: "b1".into(),
            created_at: "2026-11-24T03:00:00Z".into(),
            cipher: String::new(),
            compression: String::new(),
            kms_key_arn: "arn:k".into(),
            wrapped_key: String::new(),
            nonce: String::new(),
        }
    }

    #[test]
    fn seal_then_open_round_trips() {
        let key = [7u8; 32];
        let file = seal(b"archive bytes", &key, [1; 12], header(), b"wrapped").unwrap();
        let (h, start) = parse(&file).unwrap();
        assert_eq!(h.wrapped_key_bytes().unwrap(), b"wrapped");
        assert_eq!(open(&file, start, &h, &key).unwrap(), b"archive bytes");
    }

    #[test]
    fn any_changed_byte_is_detected() {
        let key = [7u8; 32];
        let file = seal(b"archive bytes that matter", &key, [1; 12], header(), b"wrapped").unwrap();
        for i in 0..file.len() {
            let mut tampered = file.clone();
            tampered[i] ^= 0x01;
            let opened = parse(&tampered).and_then(|(h, start)| open(&tampered, start, &h, &key));
            assert!(opened.is_err(), "flipping byte {i} went unnoticed");
        }
    }

    #[test]
    fn wrong_key_and_truncation_fail() {
        let file = seal(b"data", &[7u8; 32], [1; 12], header(), b"w").unwrap();
        let (h, start) = parse(&file).unwrap();
        assert!(matches!(open(&file, start, &h, &[8u8; 32]), Err(BackupError::Tampered)));
        for cut in [0, 5, 12, file.len() - 1] {
            let r = parse(&file[..cut]).and_then(|(h, s)| open(&file[..cut], s, &h, &[7u8; 32]));
            assert!(r.is_err(), "cut at {cut}");
        }
    }
}
