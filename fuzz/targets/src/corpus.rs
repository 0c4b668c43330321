//! The seeds every target's corpus starts from: small valid inputs (an image
//! of each format, a sealed backup, a signed manifest, events, an operator
//! request, request bodies) that mutations grow from. `fuzz-run seed`
//! writes them; they are committed beside what fuzzing found.

use shared::archive::format::{Header, Sealer};
use shared::archive::frames::{TableStart, Writer};
use shared::archive::manifest::Manifest;

/// `(target, file name, bytes)` for every seed.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let png = png_rgb(4, 3);
    out.push(("sniff_probe", "png-rgb".into(), png.clone()));
    out.push(("render", "png-rgb".into(), png.clone()));
    // The pipeline's own outputs are the JPEG and WebP seeds.
    let limits = image_processor::imaging::Limits {
        max_pixels: 1_000_000,
        max_edge: 4_000,
        max_bytes: None,
    };
    let rights = image_processor::imaging::Rights { artist: "Seed".into(), title: "Seed".into() };
    if let Ok(renditions) = image_processor::imaging::render_with_threads(&png, &limits, &rights, 1)
    {
        for (i, r) in renditions.into_iter().enumerate().take(2) {
            out.push(("sniff_probe", format!("rendition-{i}"), r.bytes.clone()));
            out.push(("render", format!("rendition-{i}"), r.bytes));
        }
    }
    for (name, text) in [
        ("s3-object-created", include_str!("../../../events/s3-object-created.json")),
        ("sqs-rendition-withdrawn", include_str!("../../../events/sqs-rendition-withdrawn.json")),
    ] {
        out.push(("s3_event", name.into(), text.as_bytes().to_vec()));
    }
    out.push(("s3_event", "key".into(), b"originals/a%2Bb+c/%C3%A9.jpg".to_vec()));
    out.push(("backup_stream", "sealed".into(), sealed_archive()));
    let mut manifest = sample_manifest();
    manifest.sign(&crate::FUZZ_KEY);
    out.push((
        "backup_manifest",
        "signed".into(),
        serde_json::to_vec(&manifest).unwrap_or_default(),
    ));
    out.push((
        "backup_manifest",
        "ledger-record".into(),
        br#"{"id":"6f9619ff-8b86-d011-b42d-00cf4fc964ff","artist_id":"00000000-0000-0000-0000-000000000001","requested_at":"2026-11-20T10:00:00Z","requested_by":"operator:arn:aws:sts::1:assumed-role/o/alice","request_id":"r","completed_at":null,"rows_deleted":null,"objects_deleted":null,"backups_containing":null,"replayed_at":null}"#.to_vec(),
    ));
    let identity = shared::operator::IdentityProof {
        authorization: "AWS4-HMAC-SHA256 Credential=AKIA/20261203/eu-west-1/sts/aws4_request, \
                        SignedHeaders=host;x-amz-date;x-gallery-task;x-gallery-nonce, Signature=00"
            .into(),
        amz_date: "20261203T120000Z".into(),
        security_token: None,
        nonce: "0123456789abcdef0123456789abcdef".into(),
    };
    use shared::operator::{OperatorRequest, OperatorTask};
    for (i, task) in [
        OperatorTask::CreateArtist {
            name: "Ada".into(),
            email: "ada@example.com".into(),
            bio: None,
            website: Some("https://example.com".into()),
        },
        OperatorTask::ListTokens { include_dead: true },
        OperatorTask::RunRetention { dry_run: true },
        OperatorTask::EraseArtist { artist_id: uuid::Uuid::nil(), confirmed: true },
    ]
    .into_iter()
    .enumerate()
    {
        let request = OperatorRequest { operator_task: task, identity: identity.clone() };
        out.push((
            "operator_request",
            format!("task-{i}"),
            serde_json::to_vec(&request).unwrap_or_default(),
        ));
    }
    out.push((
        "identity_proof",
        "proof".into(),
        b"AWS4-HMAC-SHA256 Credential=AKIA/20261203/eu-west-1/sts/aws4_request, SignedHeaders=host;x-amz-date;x-gallery-task;x-gallery-nonce, Signature=00\n20261203T120000Z\n0123456789abcdef0123456789abcdef\n<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:assumed-role/gallery-operator/alice</Arn><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>".to_vec(),
    ));
    for (pick, body) in [
        (
            0u8,
            r#"{"title":"Foundry at Dusk","description":"Etching.","medium":"Etching","year":2026,"width_mm":420,"height_mm":297}"#,
        ),
        (1, r#"{"title":"New","slug":"new-title","year":null}"#),
        (2, r#"{"edition_size":30,"paper":"Cotton rag","price_minor":24000,"currency":"EUR"}"#),
        (3, r#"{"edition_size":40,"price_minor":1}"#),
        (4, r#"{"count":2,"external_ref":"order 17"}"#),
        (5, r#"{"reason":"returned"}"#),
        (6, r#"{"name":"Zoë Brûlé","bio":"Etcher","website":"https://example.com"}"#),
        (7, "eyJrIjoxfQ"),
        (8, "ada@copper-gallery.example"),
    ] {
        let mut bytes = vec![pick];
        bytes.extend_from_slice(body.as_bytes());
        out.push(("api_bodies", format!("body-{pick}"), bytes));
    }
    out
}

/// A tiny 8-bit RGB PNG.
fn png_rgb(width: u32, height: u32) -> Vec<u8> {
    let pixels: Vec<u8> = (0..height)
        .flat_map(|y| (0..width).flat_map(move |x| [(x * 60) as u8, (y * 80) as u8, 128]))
        .collect();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(&pixels);
    }
    out
}

/// A whole backup object: header, then the frames of one table, sealed.
fn sealed_archive() -> Vec<u8> {
    let header = Header::new(uuid::Uuid::nil(), "2026-12-03T00:00:00Z".into(), [1; 7]);
    let header_bytes = header.encode();
    let mut frames = Vec::new();
    let mut writer = Writer::default();
    writer.start(TableStart { name: "artists".into(), columns: vec!["id".into()] }, &mut frames);
    writer.data(b"1\n2\n", &mut frames);
    writer.end(&mut frames);
    writer.finish(&mut frames);
    let mut out = header_bytes.clone();
    if let Ok(mut sealer) = Sealer::new(&crate::FUZZ_KEY, &header, &header_bytes) {
        let sealed = sealer.push(&frames, &mut out).and_then(|()| sealer.finish(&mut out));
        sealed.expect("a small stream always seals");
    }
    out
}

fn sample_manifest() -> Manifest {
    Manifest {
        format_version: 1,
        backup_id: uuid::Uuid::nil(),
        started_at: "2026-12-03T00:00:00Z".into(),
        snapshot_at: "2026-12-03T00:00:00Z".into(),
        finished_at: "2026-12-03T00:00:05Z".into(),
        schema_version: 8,
        tables: Vec::new(),
        object_key: "backups/2026/12/03/x.cpgb".into(),
        object_version: Some("v1".into()),
        object_bytes: 10,
        object_sha256: "00".repeat(32),
        chunks: 1,
        archive_bytes: 10,
        kms_key_arn: "arn:aws:kms:eu-west-1:123456789012:key/mrk-1".into(),
        wrapped_key: "AAAA".into(),
        mac: String::new(),
    }
}
