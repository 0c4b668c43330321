//! The plaintext archive inside a backup: a JSON manifest line, then each
//! table's rows in PostgreSQL's COPY text format, back to back.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BackupError;

pub const FORMAT: &str = "copper-gallery-backup";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// The newest migration applied when the backup was taken.
    pub schema_version: i32,
    pub created_at: String,
    pub tables: Vec<TableEntry>,
}

/// Rows in COPY text data: one line each (embedded newlines are escaped).
pub fn count_rows(copy_text: &[u8]) -> u64 {
    copy_text.iter().filter(|&&b| b == b'\n').count() as u64
}

pub fn pack(schema_version: i32, created_at: &str, tables: &[(&str, Vec<u8>)]) -> Result<(Manifest, Vec<u8>), BackupError> {
    let manifest = Manifest {
        format: FORMAT.into(),
        version: 1,
        schema_version,
        created_at: created_at.into(),
        tables: tables
            .iter()
            .map(|(name, data)| TableEntry {
                name: (*name).into(),
                rows: count_rows(data),
                bytes: data.len() as u64,
                sha256: hex::encode(Sha256::digest(data)),
            })
            .collect(),
    };
    let mut out = serde_json::to_vec(&manifest).map_err(|e| BackupError::Malformed(e.to_string()))?;
    out.push(b'\n');
    for (_, data) in tables {
        out.extend_from_slice(data);
    }
    Ok((manifest, out))
}

/// A table's manifest entry and its rows, borrowed from the archive.
pub type TableData<'a> = (TableEntry, &'a [u8]);

/// Splits an archive back into its tables, checking every length and digest.
pub fn unpack(archive: &[u8]) -> Result<(Manifest, Vec<TableData<'_>>), BackupError> {
    let newline = archive.iter().position(|&b| b == b'\n').ok_or_else(|| BackupError::Malformed("archive has no manifest".into()))?;
    let manifest: Manifest = serde_json::from_slice(&archive[..newline]).map_err(|e| BackupError::Malformed(format!("manifest: {e}")))?;
    if manifest.format != FORMAT || manifest.version != 1 {
        return Err(BackupError::Malformed(format!("unsupported archive {} v{}", manifest.format, manifest.version)));
    }
    let mut offset = newline + 1;
    let mut tables = Vec::with_capacity(manifest.tables.len());
    for entry in &manifest.tables {
        let end = usize::try_from(entry.bytes)
            .ok()
            .and_then(|n| offset.checked_add(n))
            .filter(|&end| end <= archive.len())
            .ok_or_else(|| BackupError::Malformed(format!("table {} is truncated", entry.name)))?;
        let data = &archive[offset..end];
        if hex::encode(Sha256::digest(data)) != entry.sha256 || count_rows(data) != entry.rows {
            return Err(BackupError::Malformed(format!("table {} does not match its manifest", entry.name)));
        }
        tables.push((entry.clone(), data));
        offset = end;
    }
    if offset != archive.len() {
        return Err(BackupError::Malformed("archive has trailing bytes".into()));
    }
    Ok((manifest, tables))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_round_trip() {
        let tables = [("artists", b"1\tAda\n2\tBo\\nb\n".to_vec()), ("artworks", Vec::new())];
        let (manifest, bytes) = pack(1, "2026-11-24T03:00:00Z", &tables).unwrap();
        assert_eq!(manifest.tables[0].rows, 2);
        let (back, parts) = unpack(&bytes).unwrap();
        assert_eq!(back, manifest);
        assert_eq!(parts[0].1, tables[0].1.as_slice());
        assert!(parts[1].1.is_empty());
    }

    #[test]
    fn corrupt_archives_are_refused() {
        let (_, bytes) = pack(1, "t", &[("artists", b"1\tAda\n".to_vec())]).unwrap();
        let mut changed = bytes.clone();
        let last = changed.len() - 2;
        changed[last] = b'X';
        assert!(unpack(&changed).is_err());
        assert!(unpack(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(b'\n');
        assert!(unpack(&longer).is_err());
        assert!(unpack(b"no newline").is_err());
    }
}
