//! What each fuzz target does with its bytes. Every target must return for any
//! input: a refusal is fine, a panic, a hang or an allocation sized by what
//! the input declares is a finding.
//!
//! The same functions run under cargo-fuzz (libFuzzer, coverage-guided;
//! `fuzz/`, nightly) and under `fuzz-run` (this crate's binary, stable:
//! the committed corpus, then random mutations of it for a bounded time).
//! Each target's corpus is `fuzz/corpus/<target>/`; an input that once
//! crashed is committed there and replays in every test run.

use image_processor::imaging::{self, sniff, ImagingError};
use shared::archive::format::{Header, Opener};
use shared::archive::frames::Reader;
use shared::archive::ledger::ErasureRecord;
use shared::archive::manifest::Manifest;
use shared::domain;
use shared::operator::identity;
use shared::operator::OperatorRequest;

pub mod corpus;

/// The key the backup targets (and their seeds) seal and open with, so that
/// mutations of a valid archive reach past the first authentication check.
pub const FUZZ_KEY: [u8; 32] = [7; 32];

/// A target: any bytes in, nothing out; a panic is a finding.
pub type Target = fn(&[u8]);

/// Every target, by name (the corpus directory and the cargo-fuzz binary).
pub const TARGETS: [(&str, Target); 8] = [
    ("sniff_probe", sniff_probe),
    ("render", render),
    ("s3_event", s3_event),
    ("backup_stream", backup_stream),
    ("backup_manifest", backup_manifest),
    ("operator_request", operator_request),
    ("identity_proof", identity_proof),
    ("api_bodies", api_bodies),
];

/// Sniffing and header probing: a probe always agrees with the sniff.
pub fn sniff_probe(data: &[u8]) {
    let sniffed = sniff::sniff(data);
    match sniff::probe(data) {
        Ok(p) => {
            assert_eq!(sniffed, Ok(p.format));
            assert!((1..=8).contains(&p.orientation));
            let (w, h) = (p.display_width(), p.display_height());
            assert_eq!(u64::from(w) * u64::from(h), u64::from(p.width) * u64::from(p.height));
        }
        Err(ImagingError::Empty) => assert!(data.is_empty()),
        Err(ImagingError::UnsupportedFormat { .. }) => assert!(sniffed.is_err()),
        Err(e) => {
            assert!(sniffed.is_ok());
            assert!(e.is_permanent());
        }
    }
    // The EXIF reader on the raw bytes too (it is also reached through APP1/eXIf/EXIF).
    assert!((1..=8).contains(&imaging::exif::orientation_from_exif(data)));
    let _ = imaging::exif::ascii_tags(data);
}

/// The whole rendition pipeline, with small limits so each run stays fast.
pub fn render(data: &[u8]) {
    let limits =
        imaging::Limits { max_pixels: 1_000_000, max_edge: 4_000, max_bytes: Some(1 << 20) };
    let rights = imaging::Rights { artist: "Fuzz".into(), title: "Target".into() };
    if let Ok(renditions) = imaging::render_with_threads(data, &limits, &rights, 1) {
        assert!(!renditions.is_empty());
        for r in renditions {
            assert!(r.width >= 1 && r.height >= 1 && r.width.max(r.height) <= r.long_edge);
            assert!(!r.bytes.is_empty());
        }
    }
}

/// S3 event notifications as the processor (Lambda's S3 event) and the edge
/// (an SQS message body) receive them, and the keys inside them.
pub fn s3_event(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(event) = serde_json::from_slice::<aws_lambda_events::s3::S3Event>(data) {
        for record in event.records {
            let key = domain::decode_event_key(record.s3.object.key.as_deref().unwrap_or_default());
            let _ = domain::image_id_from_original_key(&key);
        }
    }
    if let Ok(paths) = edge::withdrawal::paths_of_message(&text) {
        for batch in edge::withdrawal::plan(paths) {
            assert!(!batch.is_empty() && batch.len() <= 1_000);
        }
    }
    // A raw key, as decoded and mapped to the viewer's path.
    let key = domain::decode_event_key(&text);
    let _ = domain::image_id_from_original_key(&key);
    let path = edge::withdrawal::viewer_path(&key);
    assert!(path.starts_with('/'));
}

/// A backup object as a restore reads it: header, sealed chunks, records.
pub fn backup_stream(data: &[u8]) {
    // The frames alone (what the opener hands on), fed in two pieces.
    let mut reader = Reader::default();
    let split = data.len() / 2;
    for piece in [&data[..split], &data[split..]] {
        reader.push(piece);
        while let Ok(Some(_)) = reader.next_record() {}
    }
    let _ = reader.finish();
    // Header and chunks under a fixed key: almost everything is refused as
    // tampered, which is the point; nothing may panic on the way.
    if let Ok(Some((header, used))) = Header::decode(data) {
        if let Ok(mut opener) = Opener::new(&FUZZ_KEY, &header, &data[..used]) {
            let mut out = Vec::new();
            if opener.push(&data[used..], &mut out).is_ok() {
                let _ = opener.finish(&mut out);
            }
        }
    }
}

/// Manifests and erasure-ledger records as a restore reads them.
pub fn backup_manifest(data: &[u8]) {
    if let Ok(manifest) = serde_json::from_slice::<Manifest>(data) {
        assert!(!manifest.verify(&FUZZ_KEY) || manifest.mac.len() == 64);
        let _ = manifest.wrapped_key_bytes();
        let _ = manifest.rows();
        let _ = Manifest::key_for(&manifest.object_key);
    }
    if let Ok(record) = serde_json::from_slice::<ErasureRecord>(data) {
        let _ = shared::archive::ledger::ledger_key(record.id);
    }
}

/// An operator invocation's JSON, as every function's dispatcher decodes it.
pub fn operator_request(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if !OperatorRequest::is_operator_event(&value) {
        return;
    }
    if let Ok(request) = serde_json::from_value::<OperatorRequest>(value) {
        let _ = request.operator_task.validate();
        let json = request.operator_task.canonical_json();
        assert_eq!(identity::task_digest(&json).len(), 64);
        let _ = request.operator_task.owner();
        let _ = request.operator_task.action();
    }
}

/// The identity proof's checks: shape, the STS answer, the operator role.
pub fn identity_proof(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\n');
    let proof = identity::IdentityProof {
        authorization: parts.next().unwrap_or_default().to_owned(),
        amz_date: parts.next().unwrap_or_default().to_owned(),
        security_token: None,
        nonce: parts.next().unwrap_or_default().to_owned(),
    };
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default();
    let _ = identity::check_shape(&proof, now);
    let _ = identity::proof_digest(&proof);
    let rest = parts.next().unwrap_or_default();
    if let Ok(caller) = identity::parse_caller(rest) {
        let role = identity::OperatorRole::of_function(
            "arn:aws:lambda:eu-west-1:123456789012:function:gallery-api",
            "gallery-operator",
        );
        if let Ok(role) = role {
            let _ = role.check(&caller);
        }
        let _ = caller.actor();
    }
    let (arn, role) = rest.split_once(' ').unwrap_or((rest, ""));
    let _ = identity::OperatorRole::of_function(arn, role);
}

/// The API's request bodies and cursors: the first byte picks the body type,
/// the rest is its JSON; decoded and validated as the handlers do.
pub fn api_bodies(data: &[u8]) {
    use domain::*;
    let Some((&pick, body)) = data.split_first() else { return };
    match pick % 9 {
        0 => drop(serde_json::from_slice::<NewArtwork>(body).map(|a| a.validate())),
        1 => {
            if let Ok(patch) = serde_json::from_slice::<ArtworkPatch>(body) {
                if let Ok(current) = NewArtwork::titled("Current").validate() {
                    let _ = patch.apply(&current);
                }
            }
        }
        2 => drop(serde_json::from_slice::<NewEdition>(body).map(|e| e.validate())),
        3 => {
            if let (Ok(patch), Ok(current)) = (
                serde_json::from_slice::<EditionPatch>(body),
                NewEdition {
                    edition_size: 10,
                    paper: "Paper".into(),
                    price_minor: 100,
                    currency: "EUR".into(),
                }
                .validate(),
            ) {
                let _ = patch.apply(&current, 3);
            }
        }
        4 => drop(serde_json::from_slice::<Sale>(body).map(|s| s.validate())),
        5 => drop(serde_json::from_slice::<SaleVoid>(body).map(|v| v.validate())),
        6 => drop(serde_json::from_slice::<ProfilePatch>(body)),
        7 => {
            let text = String::from_utf8_lossy(body);
            for sort in Sort::ALL {
                if let Ok(cursor) = PageCursor::decode("cursor", &text, sort) {
                    assert_eq!(
                        PageCursor::decode("cursor", &cursor.encode(), sort).ok(),
                        Some(cursor)
                    );
                }
            }
            let _ = Cursor::decode("cursor", &text);
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let _ = text::text("title", &text, 1, 200, text::Lines::One);
            let _ = text::text("description", &text, 0, 5_000, text::Lines::Many);
            let _ = fields::Email::parse(&text);
            let _ = fields::Website::parse(Some(&text));
            let _ = fields::ArtistName::parse(&text);
            let _ = fields::TokenLabel::parse(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed input (the seeds and every crash ever found) runs
    /// through its target in every test run.
    #[test]
    fn every_committed_input_replays() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
        let mut replayed = 0;
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for entry in entries.flatten() {
                let bytes = std::fs::read(entry.path()).unwrap();
                target(&bytes);
                replayed += 1;
            }
        }
        assert!(replayed >= TARGETS.len());
    }
}
