//! The byte pipelines, each bounded by small channels so memory stays flat
//! whatever the database's size:
//!
//! - write: COPY streams (async) → archive records → zstd (its own worker
//!   threads) → STREAM chunks → parts (one blocking thread) → sink (async);
//! - read: object stream (async) → chunks opened → zstd → records (one
//!   blocking thread) → the caller (COPY into a database, or just checking).

use std::io::Write;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::format::{FormatError, Header, Opener, Sealer, CHUNK, TAG};
use super::frames::{self, Record, TableStart, TableSummary};
use super::sink::{Sink, PART};
use super::BackupError;

/// zstd level 3 on every core: pg_dump's compression ratio or better, at
/// several times its speed.
const ZSTD_LEVEL: i32 = 3;
/// Largest zstd window a restore accepts (16 MiB): the writer uses far less.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// What the archive writer is fed.
pub enum Input {
    Start(TableStart),
    Data(Bytes),
    End,
}

/// What a completed write produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub tables: Vec<TableSummary>,
    pub object_bytes: u64,
    pub object_sha256: String,
    pub chunks: u32,
    pub archive_bytes: u64,
    pub version_id: Option<String>,
}

/// Buffers sealed bytes into parts and hands each to the uploader.
struct PartWriter {
    sealer: Option<Sealer>,
    pending: Vec<u8>,
    out: mpsc::Sender<Bytes>,
    sha: Sha256,
    bytes: u64,
}

impl PartWriter {
    fn ship(&mut self, at_least: usize) -> std::io::Result<()> {
        while self.pending.len() >= at_least.max(1) {
            let take = self.pending.len().min(PART);
            let part: Vec<u8> = self.pending.drain(..take).collect();
            self.sha.update(&part);
            self.bytes += part.len() as u64;
            self.out
                .blocking_send(Bytes::from(part))
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<(u32, String, u64)> {
        let sealer = self.sealer.take().ok_or_else(|| std::io::Error::other("finished twice"))?;
        let chunks = sealer.finish(&mut self.pending).map_err(std::io::Error::other)?;
        self.ship(1)?;
        Ok((chunks, hex::encode(self.sha.finalize()), self.bytes))
    }
}

impl Write for PartWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Some(sealer) = &mut self.sealer {
            sealer.push(data, &mut self.pending).map_err(std::io::Error::other)?;
        }
        self.ship(PART)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the worker thread produced: the tables, then the sealed object's
/// chunk count, sha256 and size, and the archive's size before compression.
type WorkerOutput = (Vec<TableSummary>, u32, String, u64, u64);

/// The write side, started: feed it with [`Writing::send`], then [`Writing::finish`].
pub struct Writing<S: Sink> {
    input: mpsc::Sender<Input>,
    worker: tokio::task::JoinHandle<Result<WorkerOutput, BackupError>>,
    uploader: tokio::task::JoinHandle<(S, Result<(), BackupError>)>,
}

impl<S: Sink> Writing<S> {
    pub fn start(header: &Header, key: &[u8; 32], sink: S) -> Result<Self, BackupError> {
        let header_bytes = header.encode();
        let sealer = Sealer::new(&super::manifest::subkey(key, "chunks"), header, &header_bytes)
            .map_err(BackupError::Format)?;
        let (input, mut inputs) = mpsc::channel::<Input>(16);
        let (parts_tx, mut parts) = mpsc::channel::<Bytes>(1);
        let worker = tokio::task::spawn_blocking(move || {
            let mut writer = PartWriter {
                sealer: Some(sealer),
                pending: header_bytes,
                out: parts_tx,
                sha: Sha256::new(),
                bytes: 0,
            };
            writer.ship(PART).map_err(io)?;
            let workers = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
            let mut zstd = zstd::stream::write::Encoder::new(writer, ZSTD_LEVEL).map_err(io)?;
            if workers > 1 {
                zstd.multithread(workers).map_err(io)?;
            }
            let mut archive = frames::Writer::default();
            let mut buf = Vec::with_capacity(256 * 1024);
            let mut archive_bytes = 0u64;
            while let Some(item) = inputs.blocking_recv() {
                match item {
                    Input::Start(table) => archive.start(table, &mut buf),
                    Input::Data(data) => archive.data(&data, &mut buf),
                    Input::End => {
                        archive.end(&mut buf);
                    }
                }
                zstd.write_all(&buf).map_err(io)?;
                archive_bytes += buf.len() as u64;
                buf.clear();
            }
            let tables = archive.finish(&mut buf);
            zstd.write_all(&buf).map_err(io)?;
            archive_bytes += buf.len() as u64;
            let (chunks, sha, bytes) = zstd.finish().map_err(io)?.finish().map_err(io)?;
            Ok((tables, chunks, sha, bytes, archive_bytes))
        });
        let uploader = tokio::spawn(async move {
            let mut sink = sink;
            let mut number = 0;
            while let Some(part) = parts.recv().await {
                number += 1;
                if let Err(e) = sink.part(number, part).await {
                    return (sink, Err(e));
                }
            }
            (sink, Ok(()))
        });
        Ok(Self { input, worker, uploader })
    }

    /// Feeds the archive; an error means the pipeline stopped (see `finish`).
    pub async fn send(&self, item: Input) -> Result<(), BackupError> {
        self.input
            .send(item)
            .await
            .map_err(|_| BackupError::Worker("the backup pipeline stopped".into()))
    }

    /// Completes the object, or aborts it and returns the first real failure.
    /// `fed` is the outcome of feeding: a failed feed aborts too.
    pub async fn finish(self, fed: Result<(), BackupError>) -> Result<Written, BackupError> {
        drop(self.input);
        let worked =
            self.worker.await.map_err(|e| BackupError::Worker(e.to_string())).and_then(|r| r);
        let (sink, uploaded) =
            self.uploader.await.map_err(|e| BackupError::Worker(e.to_string()))?;
        // The uploader's error explains a broken pipe in the worker, and the
        // worker's explains a failed feed.
        let outcome = match (fed, worked, uploaded) {
            (_, _, Err(e)) | (_, Err(e), Ok(())) | (Err(e), Ok(_), Ok(())) => Err(e),
            (Ok(()), Ok(done), Ok(())) => Ok(done),
        };
        match outcome {
            Ok((tables, chunks, object_sha256, object_bytes, archive_bytes)) => {
                let version_id = sink.complete().await?;
                Ok(Written {
                    tables,
                    object_bytes,
                    object_sha256,
                    chunks,
                    archive_bytes,
                    version_id,
                })
            }
            Err(e) => {
                sink.abort().await;
                Err(e)
            }
        }
    }
}

fn io(e: std::io::Error) -> BackupError {
    BackupError::Worker(e.to_string())
}

/// What the read side found, once its stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadTotals {
    pub object_sha256: String,
    pub object_bytes: u64,
    pub chunks: u32,
    pub backup_id: uuid::Uuid,
}

/// What the object must be, known before its first chunk is opened.
pub struct Expected {
    pub backup_id: uuid::Uuid,
    pub object_bytes: u64,
    /// The stored object's size (from a HEAD).
    pub actual_bytes: u64,
}

impl Expected {
    /// Once the header is read: the object is this backup's, and its size
    /// says whether anything is missing or was added.
    fn check(&self, found: uuid::Uuid) -> Result<(), BackupError> {
        if found != self.backup_id {
            return Err(BackupError::ObjectMismatch(format!(
                "the object is backup {found}'s, not {}'s: it was swapped",
                self.backup_id
            )));
        }
        let (want, got) = (self.object_bytes, self.actual_bytes);
        let sealed = (CHUNK + TAG) as u64;
        match got.cmp(&want) {
            std::cmp::Ordering::Less if (want - got) % sealed == 0 => {
                Err(BackupError::ObjectMismatch(format!(
                    "{} chunk(s) are missing",
                    (want - got) / sealed
                )))
            }
            std::cmp::Ordering::Less => {
                Err(BackupError::ObjectMismatch(format!("truncated: {got} of {want} bytes")))
            }
            std::cmp::Ordering::Greater => {
                Err(BackupError::ObjectMismatch(format!("{} bytes were appended", got - want)))
            }
            std::cmp::Ordering::Equal => Ok(()),
        }
    }
}

/// Decodes a sealed object into records as the object arrives.
pub struct Reading {
    /// Ends early when the stream fails: [`Reading::finish`] says why.
    pub records: mpsc::Receiver<Record>,
    worker: tokio::task::JoinHandle<Result<ReadTotals, BackupError>>,
    fetcher: tokio::task::JoinHandle<Result<(), BackupError>>,
}

/// Rows are joined up to this size before they go on, both ways: one
/// message, archive record and COPY write per 64 KiB rather than per row.
pub const JOINED: usize = 64 << 10;

/// Forwards decompressed bytes into the record parser and the records onward.
struct RecordWriter {
    reader: frames::Reader,
    out: mpsc::Sender<Record>,
    /// Rows parsed but not yet sent: whole COPY lines, in order.
    data: bytes::BytesMut,
}

impl RecordWriter {
    fn send(&self, record: Record) -> std::io::Result<()> {
        self.out
            .blocking_send(record)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }

    fn send_data(&mut self) -> std::io::Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let joined = self.data.split().freeze();
        self.send(Record::Data(joined))
    }
}

impl Write for RecordWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.reader.push(data);
        loop {
            match self.reader.next_record() {
                Ok(Some(Record::Data(rows))) => {
                    self.data.extend_from_slice(&rows);
                    if self.data.len() >= JOINED {
                        self.send_data()?;
                    }
                }
                // A table's end (or the next start) follows its last rows.
                Ok(Some(record)) => {
                    self.send_data()?;
                    self.send(record)?;
                }
                Ok(None) => return Ok(data.len()),
                Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Reading {
    /// Starts reading `stream` (the object's bytes in order) with the data key.
    pub fn start<St>(mut stream: St, key: &[u8; 32], expected: Option<Expected>) -> Self
    where
        St: futures_util::Stream<Item = Result<Bytes, BackupError>> + Send + Unpin + 'static,
    {
        use futures_util::StreamExt;
        let chunk_key = super::manifest::subkey(key, "chunks");
        let (bytes_tx, mut bytes_rx) = mpsc::channel::<Bytes>(2);
        let (records_tx, records) = mpsc::channel(16);
        let fetcher = tokio::spawn(async move {
            while let Some(piece) = stream.next().await {
                if bytes_tx.send(piece?).await.is_err() {
                    break;
                }
            }
            Ok(())
        });
        let worker = tokio::task::spawn_blocking(move || {
            decode(&mut bytes_rx, &chunk_key, expected, records_tx)
        });
        Self { records, worker, fetcher }
    }

    /// Waits for the stream's end and its totals; call after the last record.
    pub async fn finish(self) -> Result<ReadTotals, BackupError> {
        drop(self.records);
        let fetched = self.fetcher.await.map_err(|e| BackupError::Worker(e.to_string()))?;
        let worked = self.worker.await.map_err(|e| BackupError::Worker(e.to_string()))?;
        fetched?;
        worked
    }
}

fn decode(
    bytes: &mut mpsc::Receiver<Bytes>,
    key: &[u8; 32],
    expected: Option<Expected>,
    out: mpsc::Sender<Record>,
) -> Result<ReadTotals, BackupError> {
    let mut sha = Sha256::new();
    let mut total = 0u64;
    let mut head = Vec::new();
    let (header, mut opener) = loop {
        let Some(piece) = bytes.blocking_recv() else {
            return Err(BackupError::Format(FormatError::Truncated));
        };
        sha.update(&piece);
        total += piece.len() as u64;
        head.extend_from_slice(&piece);
        if let Some((header, len)) = Header::decode(&head)? {
            if let Some(expected) = &expected {
                expected.check(header.backup_id)?;
            }
            let opener = Opener::new(key, &header, &head[..len])?;
            head.drain(..len);
            break (header, opener);
        }
    };
    let records =
        RecordWriter { reader: frames::Reader::default(), out, data: bytes::BytesMut::new() };
    let mut zstd = zstd::stream::write::Decoder::new(records).map_err(io)?;
    zstd.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(io)?;
    let mut plain = Vec::with_capacity(2 << 20);
    let mut feed = |opener: &mut Opener,
                    data: &[u8],
                    zstd: &mut zstd::stream::write::Decoder<'_, RecordWriter>| {
        opener.push(data, &mut plain)?;
        zstd.write_all(&plain).map_err(archive_error)?;
        plain.clear();
        Ok::<_, BackupError>(())
    };
    feed(&mut opener, &head, &mut zstd)?;
    while let Some(piece) = bytes.blocking_recv() {
        sha.update(&piece);
        total += piece.len() as u64;
        feed(&mut opener, &piece, &mut zstd)?;
    }
    let mut last = Vec::new();
    let chunks = opener.finish(&mut last)?;
    zstd.write_all(&last).map_err(archive_error)?;
    zstd.flush().map_err(archive_error)?;
    let records = zstd.into_inner();
    records.reader.finish().map_err(BackupError::Archive)?;
    Ok(ReadTotals {
        object_sha256: hex::encode(sha.finalize()),
        object_bytes: total,
        chunks,
        backup_id: header.backup_id,
    })
}

/// A decoder error is either the record parser's (bad archive) or zstd's
/// (bad compressed stream inside authentic chunks: never expected).
fn archive_error(e: std::io::Error) -> BackupError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return BackupError::Worker("the restore stopped reading".into());
    }
    match e.into_inner().map(|inner| inner.downcast::<frames::ArchiveError>()) {
        Some(Ok(archive)) => BackupError::Archive(*archive),
        Some(Err(other)) => {
            BackupError::Archive(frames::ArchiveError(format!("decompression: {other}")))
        }
        None => BackupError::Archive(frames::ArchiveError("decompression failed".into())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Parts kept in memory.
    #[derive(Clone, Default)]
    struct Parts(Arc<Mutex<Vec<Bytes>>>);

    impl Sink for Parts {
        async fn part(&mut self, _number: i32, bytes: Bytes) -> Result<(), BackupError> {
            self.0.lock().map_err(|e| BackupError::Worker(e.to_string()))?.push(bytes);
            Ok(())
        }
        async fn complete(self) -> Result<Option<String>, BackupError> {
            Ok(None)
        }
        async fn abort(self) {}
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_written_one_by_one_come_back_joined_and_whole() {
        let header = Header::new(uuid::Uuid::nil(), "2026-12-04T03:00:00Z".into(), [7; 7]);
        let key = [9u8; 32];
        let parts = Parts::default();
        let writing = Writing::start(&header, &key, parts.clone()).expect("start");
        let columns = vec!["id".to_owned(), "note".to_owned()];
        let start = TableStart { name: "audit_log".into(), columns };
        let fed = async {
            writing.send(Input::Start(start.clone())).await?;
            for i in 0..5_000 {
                let row = format!("{i}\tplate {i} pulled on copper\n");
                writing.send(Input::Data(Bytes::from(row))).await?;
            }
            writing.send(Input::End).await
        }
        .await;
        let written = writing.finish(fed).await.expect("written");
        let object: Vec<Bytes> = parts.0.lock().expect("parts").clone();
        let stream = futures_util::stream::iter(object.into_iter().map(Ok));
        let mut reading = Reading::start(stream, &key, None);
        let (mut data, mut messages, mut ends) = (Vec::new(), 0, Vec::new());
        while let Some(record) = reading.records.recv().await {
            match record {
                Record::Data(rows) => {
                    assert!(rows.len() < JOINED + 64, "joined up to about {JOINED} bytes");
                    assert!(rows.ends_with(b"\n"), "only whole rows");
                    data.extend_from_slice(&rows);
                    messages += 1;
                }
                Record::End(summary) => ends.push(summary),
                Record::Start(s) => assert_eq!(s, start),
                Record::Finished { tables } => assert_eq!(tables, 1),
            }
        }
        let totals = reading.finish().await.expect("read back");
        let expected: String =
            (0..5_000).map(|i| format!("{i}\tplate {i} pulled on copper\n")).collect();
        assert_eq!(data, expected.as_bytes());
        assert!(messages < 5, "{messages} messages for {} bytes", data.len());
        assert_eq!(ends, written.tables);
        assert_eq!(ends[0].rows, 5_000);
        assert_eq!(totals.object_sha256, written.object_sha256);
    }
}
