//! The stored backup object: a header, then the zstd-compressed archive sealed
//! in fixed-size chunks with AES-256-GCM in the STREAM construction (Hoang,
//! Reyhanitabar, Rogaway, Vizár: "Online authenticated-encryption and its
//! nonce-reuse misuse-resistance"). Each chunk's nonce is a per-backup random
//! prefix, the chunk's index and a final-chunk flag; its associated data is
//! the digest of the header, which names the backup. So a flipped byte, a
//! dropped, reordered or appended chunk, a truncation at a chunk boundary and
//! another backup's object in this one's place all fail authentication, and
//! neither side ever holds more than two chunks.
//!
//! ```text
//! "CPGBAK02" | u32 big-endian header length | header JSON | chunk 0 | … | chunk n-1
//! chunk i  = AES-256-GCM(key, nonce = prefix(7) ‖ i (u32 BE) ‖ final (u8), aad = sha256(header bytes))
//! ```
//!
//! Every chunk holds [`CHUNK`] plaintext bytes except the final one, which
//! holds fewer (possibly none), so a reader knows the final chunk only when the
//! stream ends: exactly the property that makes truncation detectable.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const MAGIC: &[u8; 8] = b"CPGBAK02";
/// Plaintext bytes per chunk: large enough that the tag overhead is noise,
/// small enough that memory stays flat.
pub const CHUNK: usize = 1 << 20;
pub const TAG: usize = 16;
const MAX_HEADER: usize = 16 * 1024;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What a reader needs before the first chunk. Authenticated by every chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    pub backup_id: Uuid,
    pub created_at: String,
    pub cipher: String,
    pub compression: String,
    pub chunk_bytes: u32,
    /// The 7-byte nonce prefix (base64), random per backup.
    pub nonce_prefix: String,
}

/// Why a sealed stream did not open. Each names what happened, for the
/// operator reading a refused restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a gallery backup (bad magic bytes)")]
    NotABackup,
    #[error("the backup header is malformed: {0}")]
    BadHeader(String),
    #[error("chunk {0} failed authentication: the object was modified")]
    Modified(u32),
    #[error("chunk {found} is in position {position}: chunks were reordered")]
    Reordered { position: u32, found: u32 },
    #[error("the object ends before its final chunk: it was truncated")]
    Truncated,
    /// Sealing failed (the cipher refused, or the chunk counter would wrap
    /// and reuse a nonce): nothing more is written, so the object stays
    /// incomplete and is never recorded as a backup.
    #[error("sealing chunk {0} failed: the stream is not written")]
    Seal(u32),
}

impl Header {
    pub fn new(backup_id: Uuid, created_at: String, nonce_prefix: [u8; 7]) -> Self {
        Self {
            format: 2,
            backup_id,
            created_at,
            cipher: "AES-256-GCM-STREAM".into(),
            compression: "zstd".into(),
            chunk_bytes: CHUNK as u32,
            nonce_prefix: B64.encode(nonce_prefix),
        }
    }

    /// The bytes that start the object.
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(12 + json.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(json.len() as u32).to_be_bytes());
        out.extend_from_slice(&json);
        out
    }

    /// Parses the header at the start of `buf`: `Ok(None)` while more bytes
    /// are needed, else the header and its length in bytes.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, FormatError> {
        if buf.len() < 12 {
            return if MAGIC.starts_with(&buf[..buf.len().min(8)]) {
                Ok(None)
            } else {
                Err(FormatError::NotABackup)
            };
        }
        if &buf[..8] != MAGIC {
            return Err(FormatError::NotABackup);
        }
        let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
        if len > MAX_HEADER {
            return Err(FormatError::BadHeader(format!("{len} bytes long")));
        }
        let Some(json) = buf.get(12..12 + len) else { return Ok(None) };
        let header: Self =
            serde_json::from_slice(json).map_err(|e| FormatError::BadHeader(e.to_string()))?;
        if header.format != 2
            || header.chunk_bytes as usize != CHUNK
            || header.cipher != "AES-256-GCM-STREAM"
        {
            return Err(FormatError::BadHeader(format!(
                "unsupported format {} / {}",
                header.format, header.cipher
            )));
        }
        header.prefix()?;
        Ok(Some((header, 12 + len)))
    }

    fn prefix(&self) -> Result<[u8; 7], FormatError> {
        let bytes = B64
            .decode(&self.nonce_prefix)
            .map_err(|_| FormatError::BadHeader("nonce prefix is not base64".into()))?;
        bytes.try_into().map_err(|_| FormatError::BadHeader("nonce prefix is not 7 bytes".into()))
    }
}

fn nonce(prefix: &[u8; 7], index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// What sealing and opening share: the cipher, the nonce prefix, the
/// header's digest, and the chunk about to be sealed or opened.
struct Stream {
    cipher: Aes256Gcm,
    prefix: [u8; 7],
    aad: [u8; 32],
    index: u32,
    buf: Vec<u8>,
}

impl Stream {
    fn new(
        key: &[u8; 32],
        header: &Header,
        header_bytes: &[u8],
        capacity: usize,
    ) -> Result<Self, FormatError> {
        Ok(Self {
            cipher: Aes256Gcm::new(key.into()),
            prefix: header.prefix()?,
            aad: Sha256::digest(header_bytes).into(),
            index: 0,
            buf: Vec::with_capacity(capacity),
        })
    }
}

/// Seals plaintext as it arrives into whole chunks.
pub struct Sealer(Stream);

impl Sealer {
    /// A sealer for the object that starts with `header_bytes`.
    pub fn new(key: &[u8; 32], header: &Header, header_bytes: &[u8]) -> Result<Self, FormatError> {
        Stream::new(key, header, header_bytes, CHUNK + TAG).map(Self)
    }

    /// Appends plaintext; every completed chunk is sealed onto `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
        while !data.is_empty() {
            let take = (CHUNK - self.0.buf.len()).min(data.len());
            self.0.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.0.buf.len() == CHUNK {
                self.seal(false, out)?;
            }
        }
        Ok(())
    }

    /// Seals the final chunk (what is buffered, possibly nothing); returns the chunk count.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<u32, FormatError> {
        self.seal(true, out)?;
        Ok(self.0.index)
    }

    /// Fails closed: a chunk that cannot be sealed is never written in the
    /// clear or with an empty tag, and no nonce is used twice.
    fn seal(&mut self, last: bool, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let index = self.0.index;
        let next = index.checked_add(1).ok_or(FormatError::Seal(index))?;
        let n = nonce(&self.0.prefix, index, last);
        // In place: no second copy of the chunk.
        let tag = self
            .0
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&n), &self.0.aad, &mut self.0.buf)
            .map_err(|_| FormatError::Seal(index))?;
        out.extend_from_slice(&self.0.buf);
        out.extend_from_slice(&tag);
        self.0.buf.clear();
        self.0.index = next;
        Ok(())
    }
}

/// Opens a sealed stream as it arrives, chunk by chunk.
pub struct Opener(Stream);

impl Opener {
    pub fn new(key: &[u8; 32], header: &Header, header_bytes: &[u8]) -> Result<Self, FormatError> {
        Stream::new(key, header, header_bytes, 2 * (CHUNK + TAG)).map(Self)
    }

    /// Appends sealed bytes; plaintext of every chunk known not to be the
    /// final one goes onto `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
        const SEALED: usize = CHUNK + TAG;
        while !data.is_empty() {
            // Keep one whole chunk plus at least a byte before deciding that
            // the first chunk is not the final one.
            let take = (SEALED + 1 - self.0.buf.len().min(SEALED)).min(data.len());
            self.0.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.0.buf.len() > SEALED {
                self.open_front(SEALED, false, out)?;
            }
        }
        Ok(())
    }

    /// The stream ended: what is buffered must be the final chunk.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<u32, FormatError> {
        if self.0.buf.len() < TAG {
            return Err(FormatError::Truncated);
        }
        let len = self.0.buf.len();
        self.open_front(len, true, out)?;
        Ok(self.0.index)
    }

    fn open_front(&mut self, len: usize, last: bool, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let (body, tag) = self.0.buf[..len].split_at(len - TAG);
        let start = out.len();
        out.extend_from_slice(body);
        let tag = Tag::clone_from_slice(tag);
        let n = nonce(&self.0.prefix, self.0.index, last);
        if self
            .0
            .cipher
            .decrypt_in_place_detached(Nonce::from_slice(&n), &self.0.aad, &mut out[start..], &tag)
            .is_err()
        {
            out.truncate(start);
            return Err(self.diagnose(len, last, &tag));
        }
        self.0.buf.drain(..len);
        self.0.index += 1;
        Ok(())
    }

    /// A chunk failed: say what most likely happened. Only runs on failure.
    fn diagnose(&self, len: usize, last: bool, tag: &Tag) -> FormatError {
        let body = &self.0.buf[..len - TAG];
        let opens = |index: u32, final_flag: bool| {
            let mut scratch = body.to_vec();
            let n = nonce(&self.0.prefix, index, final_flag);
            self.0
                .cipher
                .decrypt_in_place_detached(Nonce::from_slice(&n), &self.0.aad, &mut scratch, tag)
                .is_ok()
        };
        // A middle chunk where the stream ends: the rest was cut off.
        if last && opens(self.0.index, false) {
            return FormatError::Truncated;
        }
        // Reordering moves chunks a few places; a wider search only costs time on failure.
        let window = self.0.index.saturating_sub(4)..self.0.index.saturating_add(5);
        for candidate in window.filter(|&i| i != self.0.index) {
            if opens(candidate, false) || opens(candidate, true) {
                return FormatError::Reordered { position: self.0.index, found: candidate };
            }
        }
        FormatError::Modified(self.0.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seal_all(plain: &[u8], key: &[u8; 32]) -> (Header, Vec<u8>) {
        let header = Header::new(Uuid::nil(), "2026-12-02T03:00:00Z".into(), [7; 7]);
        let mut out = header.encode();
        let mut sealer = Sealer::new(key, &header, &out.clone()).unwrap();
        let mut body = Vec::new();
        for piece in plain.chunks(333_333) {
            sealer.push(piece, &mut body).unwrap();
        }
        sealer.finish(&mut body).unwrap();
        out.extend_from_slice(&body);
        (header, out)
    }

    fn open_all(object: &[u8], key: &[u8; 32], piece: usize) -> Result<Vec<u8>, FormatError> {
        let (header, start) = Header::decode(object)?.ok_or(FormatError::Truncated)?;
        let mut opener = Opener::new(key, &header, &object[..start])?;
        let mut out = Vec::new();
        for p in object[start..].chunks(piece.max(1)) {
            opener.push(p, &mut out)?;
        }
        opener.finish(&mut out)?;
        Ok(out)
    }

    fn plain(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// A header's own bytes, length prefix and all, around `json`.
    fn framed(json: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(json.len() as u32).to_be_bytes());
        out.extend_from_slice(json);
        out
    }

    #[test]
    fn a_header_is_read_only_when_whole_and_ours() {
        let header = Header::new(Uuid::nil(), "2026-12-02T03:00:00Z".into(), [7; 7]);
        let bytes = header.encode();
        // Too short to tell: more is needed, unless it is already not ours.
        assert!(matches!(Header::decode(&bytes[..5]), Ok(None)));
        assert!(matches!(Header::decode(&bytes[..11]), Ok(None)));
        assert!(matches!(Header::decode(b"PK\x03"), Err(FormatError::NotABackup)));
        assert!(matches!(Header::decode(&bytes[..bytes.len() - 1]), Ok(None)));
        assert_eq!(Header::decode(&bytes).unwrap(), Some((header.clone(), bytes.len())));
        // A length of nothing is no header.
        assert!(matches!(Header::decode(&framed(b"")), Err(FormatError::BadHeader(_))));
        // Headers up to the limit are read; past it refused before waiting for them.
        let long = Header { created_at: "x".repeat(4000), ..header.clone() };
        assert_eq!(Header::decode(&long.encode()).unwrap().map(|(h, _)| h), Some(long));
        let mut past = MAGIC.to_vec();
        past.extend_from_slice(&((MAX_HEADER + 1) as u32).to_be_bytes());
        assert!(matches!(Header::decode(&past), Err(FormatError::BadHeader(_))));
    }

    #[test]
    fn each_unsupported_header_field_is_refused_alone() {
        let good = Header::new(Uuid::nil(), "2026-12-02T03:00:00Z".into(), [7; 7]);
        for bad in [
            Header { format: 3, ..good.clone() },
            Header { chunk_bytes: 4096, ..good.clone() },
            Header { cipher: "AES-128-GCM".into(), ..good.clone() },
            Header { nonce_prefix: "not base64!".into(), ..good.clone() },
            Header { nonce_prefix: B64.encode([1u8; 6]), ..good.clone() },
        ] {
            let found = Header::decode(&bad.encode());
            assert!(matches!(found, Err(FormatError::BadHeader(_))), "{bad:?}: {found:?}");
        }
    }

    #[test]
    fn the_nonce_prefix_in_the_header_is_the_one_used() {
        let key = [3u8; 32];
        let data = plain(100);
        let seal = |prefix: [u8; 7]| {
            let header = Header::new(Uuid::nil(), "2026-12-02T03:00:00Z".into(), prefix);
            let bytes = header.encode();
            let mut sealer = Sealer::new(&key, &header, &bytes).unwrap();
            let mut body = Vec::new();
            sealer.push(&data, &mut body).unwrap();
            sealer.finish(&mut body).unwrap();
            (header, bytes, body)
        };
        let (header, bytes, body) = seal([7; 7]);
        let (_, _, other) = seal([9; 7]);
        assert_ne!(body[..data.len()], other[..data.len()], "the prefix must change the stream");
        // And the opener uses it: a stream sealed under another prefix fails.
        let mut opener = Opener::new(&key, &header, &bytes).unwrap();
        let mut out = Vec::new();
        opener.push(&other, &mut out).unwrap();
        assert!(opener.finish(&mut out).is_err());
    }

    #[test]
    fn a_header_of_exactly_the_limit_is_read() {
        let header = Header::new(Uuid::nil(), String::new(), [7; 7]);
        let base = serde_json::to_vec(&header).unwrap().len();
        let largest = Header { created_at: "x".repeat(MAX_HEADER - base), ..header };
        let bytes = largest.encode();
        assert_eq!(bytes.len(), 12 + MAX_HEADER);
        assert!(matches!(Header::decode(&bytes), Ok(Some(_))));
    }

    /// A reader handed many chunks in one push opens them one by one and
    /// never mistakes a buffer of several for the final chunk.
    #[test]
    fn many_chunks_pushed_at_once_open() {
        let key = [3u8; 32];
        let data = plain(24 * CHUNK + 17);
        let (_, object) = seal_all(&data, &key);
        assert_eq!(open_all(&object, &key, object.len()).unwrap(), data);
    }

    #[test]
    fn a_chunk_counter_that_would_wrap_fails_closed() {
        let header = Header::new(Uuid::nil(), "2026-12-02T03:00:00Z".into(), [7; 7]);
        let mut sealer = Sealer::new(&[3u8; 32], &header, &header.encode()).unwrap();
        sealer.0.index = u32::MAX;
        let mut out = Vec::new();
        assert_eq!(sealer.push(&plain(CHUNK), &mut out), Err(FormatError::Seal(u32::MAX)));
        assert!(out.is_empty(), "nothing is written for a chunk that was not sealed");
    }

    #[test]
    fn round_trips_at_every_chunk_boundary() {
        let key = [3u8; 32];
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 5] {
            let data = plain(len);
            let (_, object) = seal_all(&data, &key);
            assert_eq!(open_all(&object, &key, 65_536).unwrap(), data, "len {len}");
        }
    }

    #[test]
    fn every_kind_of_tampering_is_named() {
        let key = [3u8; 32];
        let data = plain(3 * CHUNK + 10);
        let (header, object) = seal_all(&data, &key);
        let start = header.encode().len();
        let sealed = CHUNK + TAG;
        let chunk = |i: usize| start + i * sealed..(start + (i + 1) * sealed).min(object.len());

        let mut flipped = object.clone();
        flipped[start + sealed + 10] ^= 1;
        assert_eq!(open_all(&flipped, &key, 4096), Err(FormatError::Modified(1)));

        let cut = &object[..chunk(2).end];
        assert_eq!(open_all(cut, &key, 4096), Err(FormatError::Truncated));
        assert_eq!(
            open_all(&object[..object.len() - 3], &key, 4096),
            Err(FormatError::Modified(3))
        );

        let mut dropped = object[..chunk(1).start].to_vec();
        dropped.extend_from_slice(&object[chunk(2).start..]);
        assert_eq!(
            open_all(&dropped, &key, 4096),
            Err(FormatError::Reordered { position: 1, found: 2 })
        );

        let mut swapped = object[..chunk(0).end].to_vec();
        swapped.extend_from_slice(&object[chunk(2)]);
        swapped.extend_from_slice(&object[chunk(1)]);
        swapped.extend_from_slice(&object[chunk(3)]);
        assert_eq!(
            open_all(&swapped, &key, 4096),
            Err(FormatError::Reordered { position: 1, found: 2 })
        );

        // Bytes after the short final chunk shift every boundary after it:
        // refused here, and named by the size check against the manifest.
        let mut appended = object.clone();
        appended.extend_from_slice(&object[chunk(1)]);
        assert!(open_all(&appended, &key, 4096).is_err());

        // Another backup's header (a different id) breaks every chunk's associated data.
        let other = Header { backup_id: Uuid::from_u128(1), ..header.clone() };
        let mut foreign = other.encode();
        foreign.extend_from_slice(&object[start..]);
        assert_eq!(open_all(&foreign, &[3u8; 32], 4096), Err(FormatError::Modified(0)));
        assert_eq!(open_all(&object, &[4u8; 32], 4096), Err(FormatError::Modified(0)));
        assert_eq!(open_all(b"PK\x03\x04 not a backup", &key, 4096), Err(FormatError::NotABackup));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn any_split_of_the_stream_opens_the_same(len in 0usize..(2 * CHUNK + 100), piece in 1usize..300_000) {
            let key = [9u8; 32];
            let data = plain(len);
            let (_, object) = seal_all(&data, &key);
            prop_assert_eq!(open_all(&object, &key, piece).unwrap(), data);
        }

        #[test]
        fn any_flipped_bit_is_refused(len in 1usize..(2 * CHUNK), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let key = [9u8; 32];
            let (_, mut object) = seal_all(&plain(len), &key);
            let i = at.index(object.len());
            object[i] ^= 1 << bit;
            prop_assert!(open_all(&object, &key, 100_000).is_err());
        }
    }
}
