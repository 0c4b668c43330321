//! A real browser (Debian's Chromium, headless) does what an artist's page and
//! a visitor's page do: it uploads a file through the presigned POST form
//! straight to the originals bucket, and, once the work is published, loads
//! its images from the API's `<picture>`/`srcset` answer through the edge, the
//! same URL shape as CloudFront's. The screenshot is kept under
//! target/test-artefacts/.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::{json, Value};

use crate::api::{Gallery, Req};
use crate::support::TestContext;

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(args: &[&str]) -> String {
    assert!(Path::new(CHROMIUM).exists(), "Chromium is missing: `cargo xtask test` installs it");
    let profile = tempdir();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("running chromium");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gallery-chromium-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A photograph-like PNG: gradients, so every rendition has real content.
fn fixture_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(1600, 1000, |x, y| {
        image::Rgb([(x / 7) as u8, (y / 4) as u8, ((x + y) / 11) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The artist's page: the API's form, the file added as a user would pick it,
/// submitted into a frame; the title says when S3 answered.
fn upload_page(form: &Value) -> String {
    let fields: String = form["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(k),
                escape(v.as_str().unwrap())
            )
        })
        .collect();
    format!(
        r#"<!doctype html><title>uploading</title>
<form id="f" method="post" enctype="multipart/form-data" action="{action}" target="sink">{fields}<input type="file" name="file" id="file"></form>
<iframe name="sink" id="sink"></iframe>
<script>
(async () => {{
  const blob = await (await fetch('/fixture.png')).blob();
  const picked = new DataTransfer();
  picked.items.add(new File([blob], 'etching.png', {{ type: 'image/png' }}));
  document.getElementById('file').files = picked.files;
  document.getElementById('sink').addEventListener('load', () => {{ document.title = 'uploaded'; }});
  document.getElementById('f').submit();
}})();
</script>"#,
        action = escape(form["url"].as_str().unwrap()),
    )
}

/// A visitor's page built from the public API answer, as a front end would.
fn gallery_page(artwork: &Value) -> String {
    let image = &artwork["images"][0];
    let renditions = image["renditions"].as_array().unwrap();
    let srcset = |format: &str| {
        renditions
            .iter()
            .filter(|r| r["format"] == format)
            .map(|r| format!("{} {}w", r["url"].as_str().unwrap(), r["width"]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fallback = renditions
        .iter()
        .filter(|r| r["format"] == "jpg")
        .min_by_key(|r| r["long_edge"].as_u64())
        .unwrap();
    format!(
        r#"<!doctype html><title>{title}</title>
<style>body{{font-family:sans-serif;margin:24px}} img{{max-width:100%;height:auto}}</style>
<h1>{title}</h1><p>{artist}</p>
<picture>
  <source type="image/webp" srcset="{webp}" sizes="(max-width: 1200px) 100vw, 1200px">
  <img id="art" src="{src}" srcset="{jpeg}" sizes="(max-width: 1200px) 100vw, 1200px" alt="{title}">
</picture>
<pre id="result">pending</pre>
<script>
window.addEventListener('load', () => {{
  const imgs = [...document.images];
  document.getElementById('result').textContent = JSON.stringify(imgs.map(i => ({{ w: i.naturalWidth, h: i.naturalHeight, src: i.currentSrc, complete: i.complete }})));
}});
</script>"#,
        title = escape(artwork["title"].as_str().unwrap()),
        artist = escape(artwork["artist"]["name"].as_str().unwrap()),
        webp = escape(&srcset("webp")),
        jpeg = escape(&srcset("jpg")),
        src = escape(fallback["url"].as_str().unwrap()),
    )
}

#[tokio::test]
async fn a_browser_uploads_through_the_form_and_shows_the_published_images() {
    let ctx = TestContext::new().await;
    // One origin for pages, the API's renditions and the fixture, as the
    // distribution serves the API and the renditions from one host.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let state = ctx.api_state_at(&origin);
    let gallery = Gallery::with_state(state.clone());
    let pages: Arc<Mutex<(String, String)>> = Arc::default();
    let png = fixture_png();
    let app = {
        let (up, gal) = (pages.clone(), pages.clone());
        axum::Router::new()
            .route("/upload.html", get(move || async move { Html(up.lock().unwrap().0.clone()) }))
            .route("/gallery.html", get(move || async move { Html(gal.lock().unwrap().1.clone()) }))
            .route(
                "/fixture.png",
                get(move || async move {
                    ([("content-type", "image/png")], png.clone()).into_response()
                }),
            )
            .merge(local::edge::router(state.media.clone()))
    };
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let (_, token) = ctx.artist_with_token("Flora Mezzotint").await;
    let edition = json!({ "edition_size": 20, "paper": "Hahnemühle", "price_minor": 24000, "currency": "EUR" });
    let (artwork, slug) =
        crate::api::draft_with_edition(&gallery, &token, "Harbour at Dusk", edition).await;
    let slot = gallery
        .expect(
            201,
            Req::new("POST", &format!("/v1/manage/artworks/{artwork}/images"))
                .token(&token)
                .json(&json!({ "file_name": "etching.png", "content_type": "image/png", "alt_text": "A copper etching of a harbour" })),
        )
        .await;
    let image = slot.body["image"]["id"].as_str().unwrap().to_owned();
    let key = slot.body["upload"]["fields"]["key"].as_str().unwrap().to_owned();
    pages.lock().unwrap().0 = upload_page(&slot.body["upload"]);

    // The browser posts the form to the bucket.
    let url = format!("{origin}/upload.html");
    let dom = tokio::task::spawn_blocking(move || {
        chromium(&["--virtual-time-budget=20000", "--dump-dom", &url])
    })
    .await
    .unwrap();
    assert!(dom.contains("<title>uploaded</title>"), "the form was not answered:\n{dom}");
    let stored = ctx
        .clients
        .s3
        .head_object()
        .bucket(&ctx.storage.originals_bucket)
        .key(&key)
        .send()
        .await
        .expect("the browser's upload");
    assert_eq!(stored.content_type(), Some("image/png"), "the form's pinned type");

    // S3's notification, then the artist waits for the renditions.
    ctx.processor().process(&ctx.storage.originals_bucket, &key).await.unwrap();
    let mut ready = Value::Null;
    for _ in 0..50 {
        ready = gallery
            .expect(200, Req::get(&format!("/v1/manage/images/{image}")).token(&token))
            .await
            .body;
        if ready["status"] != "pending" && ready["status"] != "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ready["status"], "ready", "{ready}");

    assert_eq!(crate::api::change_status(&gallery, &token, &artwork, "publish").await.status, 200);
    let public = gallery.expect(200, Req::get(&format!("/v1/artworks/{slug}"))).await.body;
    pages.lock().unwrap().1 = gallery_page(&public);

    let url = format!("{origin}/gallery.html");
    let shot = artefacts().join("gallery.png");
    let shot_arg = format!("--screenshot={}", shot.display());
    let (dom, _) = tokio::task::spawn_blocking(move || {
        let dom = chromium(&[
            "--virtual-time-budget=20000",
            "--window-size=1280,1000",
            "--dump-dom",
            &url,
        ]);
        (
            dom,
            chromium(&["--virtual-time-budget=20000", "--window-size=1280,1000", &shot_arg, &url]),
        )
    })
    .await
    .unwrap();
    let result = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .expect("result block");
    let loaded: Vec<Value> =
        serde_json::from_str(&result.replace("&quot;", "\"").replace("&amp;", "&"))
            .unwrap_or_else(|e| panic!("{e}: {result}"));
    assert_eq!(loaded.len(), 1);
    let img = &loaded[0];
    assert!(
        img["w"].as_u64().unwrap() > 0 && img["h"].as_u64().unwrap() > 0,
        "the image decoded: {img}"
    );
    assert!(img["src"].as_str().unwrap().starts_with(&format!("{origin}/renditions/")), "{img}");
    assert!(img["src"].as_str().unwrap().ends_with(".webp"), "the browser chose WebP: {img}");
    assert!(
        std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false),
        "screenshot saved at {}",
        shot.display()
    );

    // Unpublished, the same page shows nothing.
    let unpublished = crate::api::change_status(&gallery, &token, &artwork, "unpublish").await;
    assert_eq!(unpublished.status, 200);
    let url = format!("{origin}/gallery.html");
    let dom = tokio::task::spawn_blocking(move || {
        chromium(&["--virtual-time-budget=20000", "--dump-dom", &url])
    })
    .await
    .unwrap();
    assert!(
        dom.contains("\"w\":0") || dom.contains("&quot;w&quot;:0"),
        "a withdrawn image does not load: {dom}"
    );
    server.abort();
}
