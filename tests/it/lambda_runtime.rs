//! Every function's real binary through a Lambda Runtime API, started with the
//! environment Terraform gives it (`infra/functions.tf`, read by
//! `terraform.rs`), its values pointed at this test's database, buckets and
//! keys, its passwords in Secrets Manager as in AWS. Each is fed the samples in
//! `events/` and judged by what it left in the database and the buckets.

use std::time::Duration;

use local::runtime_api::{binary, FunctionProcess, InvocationOutcome, RuntimeApi};
use serde_json::Value;

use crate::support::TestContext;
use crate::terraform::{functions, FunctionSettings};

/// The operator role's name as Terraform derives it for the default prefix.
pub const OPERATOR_ROLE: &str = "copper-gallery-operator";

/// A number Terraform renders as `tostring(N)` or `tostring(var.x)`.
fn terraform_number(expr: &str) -> String {
    let inner = expr.trim_start_matches("tostring(").trim_end_matches(')');
    match inner.strip_prefix("var.") {
        Some(var) => crate::terraform::numeric_defaults()[var].to_string(),
        None => inner.to_owned(),
    }
}

/// A secret named after the variable that points at it, so the recording of
/// AWS requests maps it to the secret Terraform gives that variable.
/// The database login Terraform gives a function (infra/functions.tf).
fn database_role(binary: &str) -> &'static str {
    match binary {
        "api" => crate::support::API,
        "image-processor" => crate::support::PROCESSOR,
        "retention" => crate::support::RETENTION,
        "backup" => crate::support::BACKUP_RECORDS,
        other => panic!("{other} has no database login"),
    }
}

async fn secret(ctx: &TestContext, variable: &str, password: &secrecy::SecretString) -> String {
    use secrecy::ExposeSecret;
    let out = ctx
        .clients
        .secrets
        .create_secret()
        .name(format!("t-{}-{variable}", uuid::Uuid::new_v4().simple()))
        .secret_string(
            serde_json::json!({ "username": "x", "password": password.expose_secret() })
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    out.arn().unwrap().to_owned()
}

/// Terraform's environment for `f`, every value pointed at `ctx`'s resources,
/// plus what points the AWS SDK at the emulator.
pub async fn lambda_env(ctx: &TestContext, f: &FunctionSettings) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (name, expr) in &f.env {
        let value = match name.as_str() {
            "GALLERY_ORIGINALS_BUCKET" => ctx.storage.originals_bucket.clone(),
            "GALLERY_PROCESSED_BUCKET" => ctx.storage.processed_bucket.clone(),
            "GALLERY_BACKUPS_BUCKET" => ctx.storage.backups_bucket.clone(),
            "GALLERY_KMS_KEY_ID" => ctx.storage.data_key_id.clone(),
            "GALLERY_DR_REGION" => ctx.replica.region.clone(),
            "GALLERY_PROCESSED_REPLICA_BUCKET" => ctx.replica.processed_bucket.clone(),
            "GALLERY_BACKUPS_REPLICA_BUCKET" => ctx.replica.backups_bucket.clone(),
            // The cross-Region interface endpoint; locally the emulator answers for every region.
            "GALLERY_DR_S3_ENDPOINT" | "GALLERY_DR_KMS_ENDPOINT" => String::new(),
            // The multi-Region key's replica: the same key id in the DR Region.
            "GALLERY_BACKUP_REPLICA_KMS_KEY_ID" => ctx
                .backup_key
                .replace(&format!(":{}:", ctx.region), &format!(":{}:", ctx.replica.region)),
            "GALLERY_BACKUP_KMS_KEY_ID" => ctx.backup_key.clone(),
            // max(1, backup_keep_daily) in Terraform: a day is enough here.
            "GALLERY_BACKUP_LOCK_DAYS" => "1".into(),
            "DATABASE_HOST" => ctx.db.host.clone(),
            "DATABASE_PORT" => ctx.db.port.to_string(),
            "DATABASE_NAME" => ctx.db.name.clone(),
            // Each function its own login (locally they share one password).
            "DATABASE_USER" => database_role(&f.binary).to_owned(),
            "DATABASE_API_USER" => database_role("api").to_owned(),
            "DATABASE_PROCESSOR_USER" => database_role("image-processor").to_owned(),
            "DATABASE_RETENTION_USER" => database_role("retention").to_owned(),
            "DATABASE_PASSWORD_SECRET_ARN"
            | "DATABASE_API_SECRET_ARN"
            | "DATABASE_PROCESSOR_SECRET_ARN"
            | "DATABASE_RETENTION_SECRET_ARN" => secret(ctx, name, &ctx.stack.app_password).await,
            "DATABASE_OWNER_USER" => ctx.stack.owner_user.clone(),
            "DATABASE_OWNER_SECRET_ARN" => secret(ctx, name, &ctx.stack.owner_password).await,
            "DATABASE_BACKUP_USER" => ctx.stack.backup_user.clone(),
            "DATABASE_BACKUP_SECRET_ARN" => secret(ctx, name, &ctx.stack.backup_password).await,
            // The zip ships the RDS bundle at this path; locally, the stack's CA.
            "DATABASE_CA_BUNDLE" => ctx.db.ca_bundle.display().to_string(),
            "GALLERY_OPERATOR_ROLE_NAME" => OPERATOR_ROLE.to_owned(),
            // The variable's default is no browser origin at all.
            "GALLERY_CORS_ORIGINS" => String::new(),
            // No custom domain or public_base_url: root-relative rendition URLs.
            "GALLERY_MEDIA_BASE_URL" => String::new(),
            "RUST_LOG" => expr.trim_matches('"').to_owned(),
            _ if expr.starts_with("tostring(") => terraform_number(expr),
            other => panic!("{}: no local value for {other} = {expr}; add one here", f.binary),
        };
        env.push((name.clone(), value));
    }
    let endpoint = ctx.stack.aws.endpoint_url.clone().expect("the emulator's endpoint");
    env.extend([
        ("AWS_ENDPOINT_URL".to_owned(), endpoint),
        // The access key names the function's role in the recording of AWS requests.
        ("AWS_ACCESS_KEY_ID".to_owned(), format!("gallery-{}", f.binary)),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
    ]);
    env
}

/// One function's binary, running.
pub struct Running {
    pub runtime: RuntimeApi,
    pub process: FunctionProcess,
}

impl Running {
    pub async fn start(ctx: &TestContext, binary_name: &str) -> Self {
        let f = functions().into_iter().find(|f| f.binary == binary_name).unwrap();
        let env = lambda_env(ctx, &f).await;
        Self::start_with(binary_name, &env, f.memory).await
    }

    pub async fn start_with(binary_name: &str, env: &[(String, String)], memory: u32) -> Self {
        let runtime = RuntimeApi::start(&format!("copper-gallery-{binary_name}"), &ctx_region())
            .await
            .unwrap();
        let path = binary(binary_name);
        assert!(
            path.is_file(),
            "{} is not built: `cargo xtask test` builds the binaries first",
            path.display()
        );
        let process = FunctionProcess::spawn(&path, env, &runtime, memory).unwrap();
        Self { runtime, process }
    }

    pub async fn invoke(&self, event: &Value) -> InvocationOutcome {
        match tokio::time::timeout(Duration::from_secs(120), self.runtime.invoke(event)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                panic!("no answer in 120 s; the function printed:\n{}", self.process.output())
            }
        }
    }

    pub async fn respond(&self, event: &Value) -> Value {
        match self.invoke(event).await {
            InvocationOutcome::Response(v) => v,
            InvocationOutcome::Error(e) => {
                panic!("{e:?}; the function printed:\n{}", self.process.output())
            }
        }
    }
}

fn ctx_region() -> String {
    crate::support::stack_env().aws.region.unwrap_or_else(|| "eu-west-1".into())
}

fn sample(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn the_api_binary_answers_function_url_events() {
    let ctx = TestContext::new().await;
    let api = Running::start(&ctx, "api").await;
    let response = api.respond(&sample("function-url-get-artworks.json")).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert!(body["artworks"].is_array(), "{body}");

    // The write sample carries a token nobody issued: a problem+json 401, not a crash.
    let response = api.respond(&sample("function-url-create-artwork.json")).await;
    assert_eq!(response["statusCode"], 401, "{response}");
    assert_eq!(response["headers"]["content-type"], "application/problem+json");

    // A payload that is neither an HTTP request nor an operator task is a typed error.
    match api.invoke(&serde_json::json!({ "hello": "world" })).await {
        InvocationOutcome::Error(e) => assert_eq!(e.error_type, "InvalidEvent"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_processor_binary_renders_an_upload() {
    let ctx = TestContext::new().await;
    let (image_id, post) = crate::processor::upload_slot(&ctx, "Copper Sunrise + 1.png").await;
    let file = crate::processor::png(2100, 1400);
    assert_eq!(crate::support::post_form(&post, &file).await, 201);

    // The sample event, addressed to this test's bucket and object.
    let key = &post.fields.iter().find(|(k, _)| k == "key").unwrap().1;
    let built = serde_json::to_value(
        local::object_created_event(&ctx.storage.originals_bucket, key, file.len() as i64).unwrap(),
    )
    .unwrap();
    let mut event = sample("s3-object-created.json");
    let record = &mut event["Records"][0];
    record["s3"]["bucket"]["name"] = ctx.storage.originals_bucket.clone().into();
    record["s3"]["object"]["key"] = built["Records"][0]["s3"]["object"]["key"].clone();
    record["s3"]["object"]["size"] = file.len().into();
    event["Records"].as_array_mut().unwrap().truncate(1);

    let processor = Running::start(&ctx, "image-processor").await;
    processor.respond(&event).await;
    let image = crate::processor::image_row(&ctx, &image_id).await;
    assert_eq!(image.status, shared::domain::ImageStatus::Ready, "{image:?}");
    assert_eq!(image.renditions.len(), 6);
}

#[tokio::test]
async fn the_backup_binary_stores_a_backup_and_its_drill_restores_it() {
    let ctx = TestContext::new().await;
    ctx.artist_with_token("Ada Copper").await;
    let backup = Running::start(&ctx, "backup").await;
    let out = backup.respond(&sample("scheduled-backup.json")).await;
    let key = out["key"].as_str().unwrap_or_else(|| panic!("{out}"));
    let head = ctx
        .clients
        .s3
        .head_object()
        .bucket(&ctx.storage.backups_bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert!(head.content_length().unwrap_or(0) > 0);
    let client = ctx.pool_as(crate::support::BACKUP_RECORDS).get().await.unwrap();
    let status: String = client.query_one("SELECT status FROM backups", &[]).await.unwrap().get(0);
    assert_eq!(status, "succeeded");

    let out = backup.respond(&sample("scheduled-restore-drill.json")).await;
    assert_eq!(out["restored"]["artists"], 1, "{out}");
}

#[tokio::test]
async fn the_retention_binary_sweeps() {
    let ctx = TestContext::new().await;
    let retention = Running::start(&ctx, "retention").await;
    let report = retention.respond(&sample("scheduled-retention.json")).await;
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(report["dry_run"], false, "{report}");
    assert_eq!(report["failures_total"], 0, "{report}");
    // The reconcile ran with the single connection Terraform gives the function.
    assert_eq!(report["edge"]["settle_failures"], 0, "{report}");
    let mut dry = sample("scheduled-retention.json");
    dry["detail"]["dry_run"] = serde_json::json!(true);
    assert_eq!(retention.respond(&dry).await["dry_run"], true);
}

#[tokio::test]
async fn a_broken_environment_fails_the_cold_start_with_every_problem() {
    let ctx = TestContext::new().await;
    let f = functions().into_iter().find(|f| f.binary == "api").unwrap();
    let mut env: Vec<(String, String)> =
        lambda_env(&ctx, &f).await.into_iter().filter(|(k, _)| k != "DATABASE_HOST").collect();
    for (k, v) in env.iter_mut() {
        if k == "GALLERY_PROCESSED_BUCKET" {
            *v = "Not_A_Bucket".into();
        }
    }
    let mut api = Running::start_with("api", &env, f.memory).await;
    // The process exits before polling for work; Lambda reports Runtime.ExitError
    // and CloudWatch has what it printed: one line listing every problem.
    let exit =
        api.process.wait_exit(Duration::from_secs(30)).await.expect("the process stops on its own");
    assert!(!exit.success());
    let printed = api.process.output();
    let line = printed
        .lines()
        .find(|l| l.contains("invalid configuration"))
        .unwrap_or_else(|| panic!("printed:\n{printed}"));
    for needle in ["DATABASE_HOST is required", "\"Not_A_Bucket\" is not a valid S3 bucket name"] {
        assert!(line.contains(needle), "{needle} missing from {line}");
    }
    assert!(!printed.contains("panicked"), "{printed}");
}
