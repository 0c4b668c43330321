//! The plaintext archive inside a backup, as a stream of records so neither
//! the backup nor the restore ever holds a table in memory:
//!
//! ```text
//! record = kind (u8) | u32 big-endian length | payload
//! 'T' table start  {name, columns}   'D' COPY text bytes
//! 'E' table end    {name, rows, bytes, sha256}   'Z' end of archive {tables}
//! ```
//!
//! The row count and sha256 of each table are computed on the COPY stream as
//! it is written, and checked again on the stream as it is read.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest record payload a reader accepts: COPY data is split well below it.
pub const MAX_RECORD: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableStart {
    pub name: String,
    pub columns: Vec<String>,
}

/// What a table's COPY stream held: recorded in the archive and the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSummary {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableEnd {
    name: String,
    rows: u64,
    bytes: u64,
    sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    tables: u32,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Start(TableStart),
    Data(bytes::Bytes),
    /// The table's stream was checked against its own end record.
    End(TableSummary),
    Finished {
        tables: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the archive inside the backup is malformed: {0}")]
pub struct ArchiveError(pub String);

/// Row count and digest of a COPY text stream, fed in pieces.
#[derive(Clone, Default)]
pub struct CopyDigest {
    sha: Sha256,
    rows: u64,
    bytes: u64,
}

impl CopyDigest {
    pub fn update(&mut self, data: &[u8]) {
        self.sha.update(data);
        // COPY text escapes embedded newlines: one line is one row.
        self.rows += memchr_count(data);
        self.bytes += data.len() as u64;
    }

    pub fn summary(self, start: &TableStart) -> TableSummary {
        TableSummary {
            name: start.name.clone(),
            columns: start.columns.clone(),
            rows: self.rows,
            bytes: self.bytes,
            sha256: hex::encode(self.sha.finalize()),
        }
    }
}

fn memchr_count(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

fn record(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

fn json_record<T: Serialize>(kind: u8, value: &T, out: &mut Vec<u8>) {
    record(kind, &serde_json::to_vec(value).unwrap_or_default(), out);
}

/// Writes records; the caller moves `out` onward whenever it likes.
#[derive(Default)]
pub struct Writer {
    current: Option<(TableStart, CopyDigest)>,
    tables: Vec<TableSummary>,
}

impl Writer {
    pub fn start(&mut self, table: TableStart, out: &mut Vec<u8>) {
        json_record(b'T', &table, out);
        self.current = Some((table, CopyDigest::default()));
    }

    pub fn data(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if let Some((_, digest)) = &mut self.current {
            digest.update(data);
        }
        for piece in data.chunks(MAX_RECORD) {
            record(b'D', piece, out);
        }
    }

    pub fn end(&mut self, out: &mut Vec<u8>) -> Option<&TableSummary> {
        let (start, digest) = self.current.take()?;
        let summary = digest.summary(&start);
        let end = TableEnd {
            name: summary.name.clone(),
            rows: summary.rows,
            bytes: summary.bytes,
            sha256: summary.sha256.clone(),
        };
        json_record(b'E', &end, out);
        self.tables.push(summary);
        self.tables.last()
    }

    pub fn finish(self, out: &mut Vec<u8>) -> Vec<TableSummary> {
        json_record(b'Z', &End { tables: self.tables.len() as u32 }, out);
        self.tables
    }
}

/// Parses records from bytes as they arrive, checking each table's stream
/// against its end record.
#[derive(Default)]
pub struct Reader {
    /// Unparsed bytes; records are split off its front without moving the rest.
    buf: bytes::BytesMut,
    current: Option<(TableStart, CopyDigest)>,
    tables: u32,
    finished: bool,
}

impl Reader {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete record, if one is buffered.
    pub fn next_record(&mut self) -> Result<Option<Record>, ArchiveError> {
        let bad = |m: String| Err(ArchiveError(m));
        if self.buf.len() < 5 {
            return Ok(None);
        }
        if self.finished {
            return bad("bytes after the end of the archive".into());
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_RECORD {
            return bad(format!("a record of {len} bytes"));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let mut payload = self.buf.split_to(5 + len);
        bytes::Buf::advance(&mut payload, 5);
        let payload = payload.freeze();
        let parsed = match (kind, &mut self.current) {
            (b'T', None) => {
                let start: TableStart = serde_json::from_slice(&payload)
                    .map_err(|e| ArchiveError(format!("table start: {e}")))?;
                self.current = Some((start.clone(), CopyDigest::default()));
                Record::Start(start)
            }
            (b'D', Some((_, digest))) => {
                digest.update(&payload);
                Record::Data(payload)
            }
            (b'E', Some(_)) => {
                let end: TableEnd = serde_json::from_slice(&payload)
                    .map_err(|e| ArchiveError(format!("table end: {e}")))?;
                let (start, digest) =
                    self.current.take().unwrap_or_else(|| unreachable!("matched Some"));
                let summary = digest.summary(&start);
                if end.name != summary.name
                    || end.rows != summary.rows
                    || end.bytes != summary.bytes
                    || end.sha256 != summary.sha256
                {
                    return bad(format!("table {} does not match its own checksum", summary.name));
                }
                self.tables += 1;
                Record::End(summary)
            }
            (b'Z', None) => {
                let end: End = serde_json::from_slice(&payload)
                    .map_err(|e| ArchiveError(format!("archive end: {e}")))?;
                if end.tables != self.tables {
                    return bad(format!(
                        "the archive ends after {} of {} tables",
                        self.tables, end.tables
                    ));
                }
                self.finished = true;
                Record::Finished { tables: end.tables }
            }
            (kind, _) => return bad(format!("unexpected record {:?}", kind as char)),
        };
        Ok(Some(parsed))
    }

    /// The input ended: it must have ended exactly at the end record.
    pub fn finish(&self) -> Result<(), ArchiveError> {
        if !self.finished || !self.buf.is_empty() {
            return Err(ArchiveError("the archive ends early".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record header: its kind and payload length.
    fn record_header(kind: u8, len: usize) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out
    }

    #[test]
    fn a_record_is_read_once_whole_and_an_oversized_one_refused_at_once() {
        let mut reader = Reader::default();
        let mut start = Vec::new();
        Writer::default()
            .start(TableStart { name: "artists".into(), columns: vec!["id".into()] }, &mut start);
        reader.push(&start);
        assert!(matches!(reader.next_record(), Ok(Some(Record::Start(_)))));
        // An empty data record is whole at five bytes.
        reader.push(&record_header(b'D', 0));
        assert!(matches!(reader.next_record(), Ok(Some(Record::Data(d))) if d.is_empty()));
        // The largest record allowed waits for its bytes; one byte more is refused.
        let mut reader = Reader::default();
        reader.push(&record_header(b'D', MAX_RECORD));
        assert!(matches!(reader.next_record(), Ok(None)));
        let mut reader = Reader::default();
        reader.push(&record_header(b'D', MAX_RECORD + 1));
        assert!(reader.next_record().is_err());
    }

    #[test]
    fn a_digest_counts_rows_and_bytes_across_pieces() {
        let start = TableStart { name: "artists".into(), columns: vec!["id".into()] };
        let mut digest = CopyDigest::default();
        digest.update(b"1\tAda\n2\t");
        digest.update(b"Bo\n");
        let summary = digest.summary(&start);
        assert_eq!((summary.rows, summary.bytes), (2, 11));
        assert_eq!(summary.sha256, hex::encode(Sha256::digest(b"1\tAda\n2\tBo\n")));
    }

    fn archive() -> Vec<u8> {
        let mut w = Writer::default();
        let mut out = Vec::new();
        w.start(
            TableStart { name: "artists".into(), columns: vec!["id".into(), "name".into()] },
            &mut out,
        );
        w.data(b"1\tAda\n2\tBo\\nb\n", &mut out);
        w.data(b"3\tCy\n", &mut out);
        w.end(&mut out);
        w.start(TableStart { name: "artworks".into(), columns: vec!["id".into()] }, &mut out);
        w.end(&mut out);
        let tables = w.finish(&mut out);
        assert_eq!(tables[0].rows, 3);
        assert_eq!(tables[1].rows, 0);
        out
    }

    fn read(bytes: &[u8], piece: usize) -> Result<Vec<Record>, ArchiveError> {
        let mut r = Reader::default();
        let mut records = Vec::new();
        for p in bytes.chunks(piece) {
            r.push(p);
            while let Some(rec) = r.next_record()? {
                records.push(rec);
            }
        }
        r.finish()?;
        Ok(records)
    }

    #[test]
    fn records_round_trip_in_any_split() {
        let bytes = archive();
        for piece in [1, 3, 7, bytes.len()] {
            let records = read(&bytes, piece).unwrap();
            let summaries: Vec<_> = records
                .iter()
                .filter_map(|r| if let Record::End(s) = r { Some(s.rows) } else { None })
                .collect();
            assert_eq!(summaries, [3, 0]);
            assert_eq!(records.last(), Some(&Record::Finished { tables: 2 }));
        }
    }

    #[test]
    fn a_changed_or_short_archive_is_refused() {
        let bytes = archive();
        let mut changed = bytes.clone();
        let at = bytes.windows(3).position(|w| w == b"Ada").unwrap();
        changed[at] = b'E';
        assert!(read(&changed, 5).unwrap_err().0.contains("does not match"));
        assert!(read(&bytes[..bytes.len() - 1], 5).is_err());
        let mut longer = bytes.clone();
        longer.extend_from_slice(&bytes[..5]);
        assert!(read(&longer, 5).is_err());
    }
}
