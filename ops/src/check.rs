//! `gallery-ops check`: a smoke test of a deployed gallery, hop by hop, as a
//! visitor, an artist and an operator meet it. It proves what no offline
//! check can: that each hop actually answers in this account and region —
//! CloudFront to the API, the browser's presigned upload into S3, S3's event
//! to the image processor, the renditions through the CDN under the bucket
//! policy's tag rule, KMS for the backup and its drill, the DR region for the
//! erasure's purge.
//!
//! It creates one artist of its own and erases it at the end, on success or
//! failure, so it leaves nothing behind: the artist, its token, artwork,
//! edition, images and every object version go with the erasure. The backup
//! it takes is a real backup of the gallery and stays under the rotation like
//! any other (the erasure ledger keeps the check's artist out of its restores).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::operator::OperatorTask;

/// How the check reaches the gallery's operator tasks.
#[async_trait::async_trait]
pub trait Tasks {
    async fn run(&self, task: OperatorTask) -> Result<Value>;
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The gallery's public origin: the distribution's domain or the custom one (`terraform output api_url`).
    #[arg(long)]
    pub api_url: String,
    /// Where renditions are served, when `public_base_url` differs from the API's origin.
    #[arg(long)]
    pub media_url: Option<String>,
    /// How long to wait for renditions and for the CDN to serve a publication.
    #[arg(long, default_value_t = 180)]
    pub wait_seconds: u64,
}

/// Runs every hop in order, printing each as it passes; stops at the first
/// that fails, erases what it created, and returns the failure.
pub async fn run(tasks: &dyn Tasks, args: &CheckArgs) -> Result<Value> {
    let http = Http::new(&args.api_url)?;
    let media = args
        .media_url
        .clone()
        .unwrap_or_else(|| args.api_url.clone())
        .trim_end_matches('/')
        .to_owned();
    let mut check = Check {
        tasks,
        http,
        media,
        wait: Duration::from_secs(args.wait_seconds),
        artist: None,
        passed: Vec::new(),
    };
    let outcome = check.hops().await;
    let cleaned = check.clean_up().await;
    match (outcome, cleaned) {
        (Ok(()), Ok(())) => Ok(json!({ "passed": check.passed })),
        (Err(e), cleaned) => {
            if let Err(c) = cleaned {
                eprintln!("gallery-ops check: could not clean up: {c:#}");
            }
            Err(e)
        }
        (Ok(()), Err(c)) => {
            Err(c.context("every hop passed, but the check's artist could not be erased"))
        }
    }
}

struct Check<'a> {
    tasks: &'a dyn Tasks,
    http: Http,
    media: String,
    wait: Duration,
    artist: Option<String>,
    passed: Vec<String>,
}

impl Check<'_> {
    fn pass(&mut self, hop: &str, started: Instant) {
        eprintln!("✓ {hop} ({} ms)", started.elapsed().as_millis());
        self.passed.push(hop.to_owned());
    }

    async fn hops(&mut self) -> Result<()> {
        let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];

        let t = Instant::now();
        self.http
            .expect(200, "GET", "/v1/health", None, None, None)
            .await
            .context("the API through the CDN")?;
        self.pass("the API answers through the CDN", t);

        let t = Instant::now();
        let created = self
            .tasks
            .run(OperatorTask::CreateArtist {
                name: format!("Gallery check {run_id}"),
                email: format!("check-{run_id}@gallery-check.invalid"),
                bio: None,
                website: None,
            })
            .await
            .context("creating the check's artist")?;
        let artist = field(&created, "/result/artist_id")?;
        self.artist = Some(artist.clone());
        let artist_id = artist.parse().context("artist id")?;
        let issued = self
            .tasks
            .run(OperatorTask::CreateToken {
                scope: shared::domain::Scope::Artist,
                artist_id: Some(artist_id),
                label: "gallery check".into(),
                expires_in_days: 1,
            })
            .await
            .context("issuing the check's token")?;
        let token = field(&issued, "/result/token")?;
        self.pass("an operator creates an artist and their token (Lambda invoke, STS proof)", t);

        let t = Instant::now();
        let artwork = self
            .http
            .expect(
                201,
                "POST",
                "/v1/me/artworks",
                Some(&token),
                Some(&json!({ "title": format!("Gallery check {run_id}") })),
                None,
            )
            .await?;
        let artwork_id = field(&artwork.body, "/id")?;
        let slug = field(&artwork.body, "/slug")?;
        let edition =
            json!({ "edition_size": 1, "paper": "Check", "price_minor": 100, "currency": "EUR" });
        self.http
            .expect(
                201,
                "POST",
                &format!("/v1/manage/artworks/{artwork_id}/editions"),
                Some(&token),
                Some(&edition),
                None,
            )
            .await?;
        let upload = self
            .http
            .expect(
                201,
                "POST",
                &format!("/v1/manage/artworks/{artwork_id}/images"),
                Some(&token),
                Some(&json!({ "file_name": "check.png", "content_type": "image/png", "alt_text": "The gallery check's test pattern" })),
                None,
            )
            .await?;
        let image_id = field(&upload.body, "/image/id")?;
        let url = field(&upload.body, "/upload/url")?;
        let fields: Vec<(String, String)> = upload.body["upload"]["fields"]
            .as_object()
            .ok_or_else(|| anyhow!("the upload has no form fields"))?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let status = self
            .http
            .post_form(&url, &fields, &test_png(640, 480))
            .await
            .context("the presigned POST")?;
        if !(200..300).contains(&status) {
            bail!("the object store refused the presigned upload: HTTP {status}");
        }
        self.pass("an artist uploads through a presigned POST (S3, the data key)", t);

        let t = Instant::now();
        let image = self
            .poll(|| async {
                let image = self
                    .http
                    .expect(
                        200,
                        "GET",
                        &format!("/v1/manage/images/{image_id}"),
                        Some(&token),
                        None,
                        None,
                    )
                    .await?;
                Ok(match image.body["status"].as_str() {
                    Some("ready") => Some(image.body),
                    Some("failed") => {
                        bail!("the image processor failed the upload: {}", image.body["failure"])
                    }
                    _ => None,
                })
            })
            .await
            .context("waiting for the renditions")?;
        let renditions = image["renditions"].as_array().map(Vec::len).unwrap_or(0);
        self.pass(&format!("the image processor made {renditions} renditions (S3 event, processing, the processed bucket)"), t);

        let t = Instant::now();
        let preview = self
            .http
            .expect(
                200,
                "GET",
                &format!("/v1/manage/images/{image_id}/preview"),
                Some(&token),
                None,
                None,
            )
            .await?;
        let presigned = field(&preview.body, "/renditions/0/url")?;
        let key = url_path(&presigned)?
            .split("/renditions/")
            .nth(1)
            .map(|k| format!("renditions/{k}"))
            .ok_or_else(|| anyhow!("the preview names no rendition key"))?;
        let draft_url = format!("{}/{key}", self.media);
        let status = self.http.get_status(&draft_url).await?;
        if status != 403 {
            bail!("a draft's rendition answered HTTP {status} at {draft_url}: the CDN must refuse it (403)");
        }
        self.pass("a draft's rendition is refused by the CDN (bucket policy, untagged)", t);

        let t = Instant::now();
        let managed = self
            .http
            .expect(
                200,
                "GET",
                &format!("/v1/manage/artworks/{artwork_id}"),
                Some(&token),
                None,
                None,
            )
            .await?;
        let etag = managed.etag.ok_or_else(|| anyhow!("no ETag on the artwork"))?;
        self.http
            .expect(
                200,
                "POST",
                &format!("/v1/manage/artworks/{artwork_id}/status"),
                Some(&token),
                Some(&json!({ "action": "publish" })),
                Some(&etag),
            )
            .await
            .context("publishing")?;
        let public =
            self.http.expect(200, "GET", &format!("/v1/artworks/{slug}"), None, None, None).await?;
        let rendition = first_rendition_url(&public.body).ok_or_else(|| {
            anyhow!("the published artwork lists no rendition URL: {}", public.body)
        })?;
        let rendition = if rendition.starts_with('/') {
            format!("{}{rendition}", self.media)
        } else {
            rendition
        };
        self.poll(|| async {
            let status = self.http.get_status(&rendition).await?;
            Ok((status == 200).then_some(()))
        })
        .await
        .with_context(|| format!("waiting for the CDN to serve {rendition}"))?;
        self.pass("the published rendition is served through the media URL (tag, OAC, KMS)", t);

        let t = Instant::now();
        let backup = self.tasks.run(OperatorTask::RunBackup).await.context("the backup")?;
        let backup_id = field(&backup, "/result/backup_id")?;
        self.tasks
            .run(OperatorTask::VerifyBackup {
                backup: shared::operator::BackupChoice::Id(backup_id.parse()?),
            })
            .await
            .context("verifying the backup")?;
        self.pass("a backup is taken and verified (backups key, backups bucket)", t);

        let t = Instant::now();
        let drill =
            self.tasks.run(OperatorTask::RunRestoreDrill).await.context("the restore drill")?;
        if let Some(failed) = drill["result"]["drill_failed"].as_str() {
            bail!("the restore drill failed: {failed}");
        }
        self.pass("a restore drill proves the newest backup restores", t);

        let t = Instant::now();
        self.tasks
            .run(OperatorTask::RunRetention { dry_run: true })
            .await
            .context("the retention dry run")?;
        self.pass("a retention dry run sees every bucket (both regions)", t);

        let t = Instant::now();
        self.erase().await?;
        self.http
            .expect(404, "GET", &format!("/v1/artworks/{slug}"), None, None, None)
            .await
            .context("the erased artwork must be gone")?;
        self.pass("an erasure writes its ledger record, purges both regions and completes", t);
        Ok(())
    }

    /// Erases the check's artist (once) and checks the record completed.
    async fn erase(&mut self) -> Result<()> {
        let Some(artist) = self.artist.take() else { return Ok(()) };
        let artist_id: uuid::Uuid = artist.parse()?;
        let erased = self
            .tasks
            .run(OperatorTask::EraseArtist { artist_id, confirmed: true })
            .await
            .with_context(|| format!("erasing the check's artist {artist}"))?;
        if erased["result"]["erasure"]["completed_at"].is_null() {
            bail!("the erasure of {artist} did not complete: {}", erased["result"]);
        }
        let listed = self
            .tasks
            .run(OperatorTask::ListErasures { limit: 20 })
            .await
            .context("reading the erasure records")?;
        let found = listed["result"]["erasures"]
            .as_array()
            .is_some_and(|all| all.iter().any(|e| e["artist_id"].as_str() == Some(&artist)));
        if !found {
            bail!("the erasure record of {artist} is not listed");
        }
        Ok(())
    }

    async fn clean_up(&mut self) -> Result<()> {
        if self.artist.is_some() {
            eprintln!("gallery-ops check: erasing the check's artist");
        }
        self.erase().await
    }

    async fn poll<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let deadline = Instant::now() + self.wait;
        loop {
            if let Some(done) = attempt().await? {
                return Ok(done);
            }
            if Instant::now() > deadline {
                bail!("not done after {} s", self.wait.as_secs());
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

fn field(v: &Value, pointer: &str) -> Result<String> {
    match v.pointer(pointer) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) if !other.is_null() => Ok(other.to_string()),
        _ => Err(anyhow!("the answer has no {pointer}: {v}")),
    }
}

fn first_rendition_url(artwork: &Value) -> Option<String> {
    let images = artwork["images"].as_array()?;
    images.iter().find_map(|i| {
        i["renditions"].as_array()?.iter().find_map(|r| r["url"].as_str().map(str::to_owned))
    })
}

fn url_path(url: &str) -> Result<String> {
    Ok(url::Url::parse(url).context("a presigned URL")?.path().to_owned())
}

struct Reply {
    body: Value,
    etag: Option<String>,
}

/// HTTP to the gallery as a browser sends it: the token in
/// `x-gallery-token`, the body's SHA-256 in `x-amz-content-sha256`.
struct Http {
    base: String,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<bytes::Bytes>,
    >,
}

impl Http {
    fn new(base: &str) -> Result<Self> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .context("the system's CA certificates")?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(Self { base: base.trim_end_matches('/').to_owned(), client })
    }

    async fn send(
        &self,
        request: http::Request<http_body_util::Full<bytes::Bytes>>,
    ) -> Result<(u16, http::HeaderMap, bytes::Bytes)> {
        use http_body_util::BodyExt;
        let uri = request.uri().to_string();
        let response = tokio::time::timeout(Duration::from_secs(60), self.client.request(request))
            .await
            .map_err(|_| anyhow!("{uri}: no answer in 60 s"))?
            .with_context(|| format!("{uri}: unreachable"))?;
        let (parts, body) = response.into_parts();
        let bytes =
            body.collect().await.with_context(|| format!("{uri}: reading the answer"))?.to_bytes();
        Ok((parts.status.as_u16(), parts.headers, bytes))
    }

    async fn expect(
        &self,
        status: u16,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Reply> {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request =
            http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("x-gallery-token", token);
        }
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        if body.is_some() {
            request = request
                .header("content-type", "application/json")
                .header("x-amz-content-sha256", hex::encode(Sha256::digest(bytes.as_bytes())));
        }
        let request = request.body(http_body_util::Full::new(bytes::Bytes::from(bytes)))?;
        let (got, headers, answer) = self.send(request).await?;
        let body: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        if got != status {
            bail!("{method} {path}: HTTP {got}, expected {status}: {body}");
        }
        let etag = headers.get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Reply { body, etag })
    }

    async fn get_status(&self, url: &str) -> Result<u16> {
        let request = http::Request::get(url).body(http_body_util::Full::default())?;
        Ok(self.send(request).await?.0)
    }

    /// A browser's form upload: the signed fields, then the file.
    async fn post_form(&self, url: &str, fields: &[(String, String)], file: &[u8]) -> Result<u16> {
        let boundary = format!("----gallery-check-{}", uuid::Uuid::new_v4().simple());
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"check.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let request = http::Request::post(url)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
        Ok(self.send(request).await?.0)
    }
}

/// A PNG of a colour gradient, written without an image library (stored,
/// uncompressed deflate blocks): the operator tool links no codecs.
pub fn test_png(width: u32, height: u32) -> Vec<u8> {
    let mut raw = Vec::with_capacity(((width * 3 + 1) * height) as usize);
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            raw.extend_from_slice(&[
                (x * 255 / width.max(1)) as u8,
                (y * 255 / height.max(1)) as u8,
                0x80,
            ]);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    for (kind, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &zlib), (b"IEND", &[])] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_test_image_is_a_valid_png() {
        let png = super::test_png(300, 200);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        // Known CRC-32 of "IEND".
        assert_eq!(super::crc32(b"IEND"), 0xAE42_6082);
    }
}
