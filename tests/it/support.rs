//! Per-test resources on the shared local stack.

use std::sync::Arc;

use deadpool_postgres::Pool;
use image_processor::imaging::Limits;
use secrecy::SecretString;
use shared::aws::Clients;
use shared::config::{AwsConfig, Common, DbConfig, Env, ReplicaConfig, StorageConfig};
use uuid::Uuid;

/// The stack's coordinates, as `cargo xtask test` exports them.
pub struct StackEnv {
    pub db: DbConfig,
    pub aws: AwsConfig,
    pub owner_user: String,
    pub owner_password: SecretString,
    pub app_password: SecretString,
    pub backup_user: String,
    pub backup_password: SecretString,
}

pub fn stack_env() -> StackEnv {
    let mut env = Env::from_process();
    let db = DbConfig::read(&mut env);
    let aws = AwsConfig::read(&mut env);
    let owner_user = env.required("DATABASE_OWNER_USER");
    let owner_password = SecretString::from(env.required("DATABASE_OWNER_PASSWORD"));
    let app_password = SecretString::from(env.required("DATABASE_PASSWORD"));
    let backup_user = env.required("DATABASE_BACKUP_USER");
    let backup_password = SecretString::from(env.required("DATABASE_BACKUP_PASSWORD"));
    match env.finish(()) {
        Ok(()) => StackEnv {
            db,
            aws,
            owner_user,
            owner_password,
            app_password,
            backup_user,
            backup_password,
        },
        Err(e) => {
            panic!("integration tests need the local stack; run them with `cargo xtask test` ({e})")
        }
    }
}

/// A fresh, migrated database and its own buckets and key.
pub struct TestContext {
    pub stack: StackEnv,
    pub db: DbConfig,
    pub pool: Pool,
    pub clients: Clients,
    pub storage: StorageConfig,
    /// The DR replicas of the processed and backups buckets (in the DR region).
    pub replica: ReplicaConfig,
    pub region: String,
    /// The backups key (multi-Region in AWS): backups, and the erasure
    /// ledger's seals, which the API, retention and backup share.
    pub backup_key: String,
}

/// The functions' database logins (the API's is `TestContext::pool`'s).
pub const API: &str = "gallery_api";
pub const PROCESSOR: &str = "gallery_processor";
pub const RETENTION: &str = "gallery_retention";
pub const BACKUP_RECORDS: &str = "gallery_backup_records";

/// The DR region the tests' replica buckets live in.
pub const DR_REGION: &str = "eu-central-1";

impl TestContext {
    pub async fn new() -> Self {
        shared::telemetry::init();
        let stack = stack_env();
        let name = format!("t_{}", Uuid::new_v4().simple());
        let owner_admin = DbConfig {
            user: stack.owner_user.clone(),
            name: "postgres".into(),
            ..stack.db.clone()
        };
        let admin = shared::db::connect(&owner_admin, &stack.owner_password)
            .await
            .expect("owner connects over TLS");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        let db = DbConfig { name, ..stack.db.clone() };
        local::migrate(&db, &stack.owner_user, &stack.owner_password)
            .await
            .expect("migrations apply");
        // The API's login: most tests drive the API, and their fixtures are
        // writes the API may make. Other functions get their own (`pool_as`).
        let pool = shared::db::pool(&db, &stack.app_password).expect("pool");

        let clients = Clients::new(&stack.aws).await;
        let region = stack.aws.region.clone().unwrap_or_else(|| "eu-west-1".into());
        let tag = &Uuid::new_v4().simple().to_string()[..12];
        let key =
            local::ensure_key(&clients.kms, &format!("alias/t-{tag}")).await.expect("kms key");
        let storage = StorageConfig {
            originals_bucket: format!("t-{tag}-originals"),
            processed_bucket: format!("t-{tag}-processed"),
            backups_bucket: format!("t-{tag}-backups"),
            data_key_id: key.clone(),
        };
        for bucket in [&storage.originals_bucket, &storage.processed_bucket] {
            local::ensure_bucket(&clients.s3, bucket, &region, &key).await.expect("bucket");
        }
        local::ensure_locked_bucket(&clients.s3, &storage.backups_bucket, &region, &key, None)
            .await
            .expect("locked bucket");
        let replica = ReplicaConfig {
            region: DR_REGION.into(),
            processed_bucket: format!("{}-dr", storage.processed_bucket),
            backups_bucket: format!("{}-dr", storage.backups_bucket),
            s3_endpoint: None,
        };
        let replica_s3 = clients.s3_in(&stack.aws, DR_REGION, None);
        local::ensure_bucket(&replica_s3, &replica.processed_bucket, DR_REGION, &key)
            .await
            .expect("replica bucket");
        local::ensure_locked_bucket(&replica_s3, &replica.backups_bucket, DR_REGION, &key, None)
            .await
            .expect("locked replica bucket");
        let backup_key = local::ensure_key(&clients.kms, &format!("alias/t-{tag}-backups"))
            .await
            .expect("kms key");
        Self { stack, db, pool, clients, storage, replica, region, backup_key }
    }

    pub fn api_state(&self) -> api::SharedState {
        self.api_state_at("https://media.copper-gallery.example")
    }

    /// The API with rendition URLs under `media_base_url` (a live edge server's origin).
    pub fn api_state_at(&self, media_base_url: &str) -> api::SharedState {
        let config = api::ApiConfig {
            common: self.common(),
            upload_max_bytes: 20 * 1024 * 1024,
            upload_url_ttl: std::time::Duration::from_secs(900),
            region: self.region.clone(),
            operator: Default::default(),
            media_base_url: media_base_url.into(),
            cors_origins: vec!["https://copper-gallery.example".into()],
            deleted_artwork_grace: chrono::Duration::days(30),
            writes_per_minute: 10_000,
            backup_key_id: self.backup_key.clone(),
        };
        Arc::new(api::AppState::new(&config, self.pool.clone(), &self.clients_as("api")))
    }

    /// This test's database as `role`, one of the functions' logins
    /// (locally they share one password).
    pub fn db_as(&self, role: &str) -> DbConfig {
        DbConfig { user: role.to_owned(), ..self.db.clone() }
    }

    /// A pool logged in as `role`.
    pub fn pool_as(&self, role: &str) -> Pool {
        shared::db::pool(&self.db_as(role), &self.stack.app_password).expect("pool")
    }

    /// A pool as the schema owner, for checks no function may make.
    pub fn owner_pool(&self) -> Pool {
        shared::db::pool(&self.owner_db(), &self.stack.owner_password).expect("pool")
    }

    /// This test's database as the schema owner.
    pub fn owner_db(&self) -> shared::config::DbConfig {
        shared::config::DbConfig { user: self.stack.owner_user.clone(), ..self.db.clone() }
    }

    /// The configuration pieces every function shares, for this test's resources.
    pub fn common(&self) -> Common {
        Common { db: self.db.clone(), aws: self.stack.aws.clone(), storage: self.storage.clone() }
    }

    pub fn processor(&self) -> image_processor::renditions::Processor {
        let max_bytes = 20 * 1024 * 1024;
        let config = image_processor::ProcessorConfig {
            common: self.common(),
            limits: Limits { max_bytes: Some(max_bytes), ..Limits::default() },
            max_bytes,
        };
        image_processor::processor_with(
            &config,
            self.pool_as(PROCESSOR),
            &self.clients_as("image-processor"),
        )
    }

    /// The retention function as Terraform configures it, on this test's resources.
    pub fn retention_config(
        &self,
        policy: shared::retention::Policy,
    ) -> retention::RetentionConfig {
        retention::RetentionConfig {
            common: Common { db: self.db_as(RETENTION), ..self.common() },
            policy,
            operator: Default::default(),
            replica: self.replica.clone(),
            backup_key_id: self.backup_key.clone(),
        }
    }

    pub fn retention(&self, policy: shared::retention::Policy) -> retention::Retention {
        retention::retention_with(
            &self.retention_config(policy),
            self.pool_as(RETENTION),
            &self.clients_as("retention"),
        )
    }

    /// The clients a function's code runs with: signed with the access key
    /// that names its role, so the suite's recording of every AWS request
    /// (`cargo xtask test`) is evaluated against that role's policies
    /// (infra/authz). The test's own set-up and checks use `clients`.
    pub fn clients_as(&self, function: &str) -> Clients {
        self.clients.signing_as(&format!("gallery-{function}"), "testing")
    }

    /// The erasure ledger as every function sees it (sealed with the backups key).
    pub fn ledger(&self) -> shared::ledger::Ledger {
        shared::ledger::Ledger::new(&self.clients, &self.storage.backups_bucket, &self.backup_key)
    }

    /// The S3 client of the DR region (the replicas).
    pub fn replica_s3(&self) -> aws_sdk_s3::Client {
        self.clients.s3_in(&self.stack.aws, DR_REGION, None)
    }

    /// An artist and a live token for them.
    pub async fn artist_with_token(&self, name: &str) -> (Uuid, String) {
        let client = self.pool.get().await.unwrap();
        let email = format!("{}@example.org", Uuid::new_v4().simple());
        let artist = shared::db::insert_artist(&client, name, &email, None, None).await.unwrap();
        let (secret, digest) = shared::domain::new_token();
        shared::db::insert_token(
            &client,
            Some(artist.id),
            shared::domain::Scope::Artist,
            &digest,
            "test",
            chrono::Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
        (artist.id, secret)
    }
}

impl TestContext {
    /// A live admin token.
    pub async fn admin_token(&self) -> String {
        let client = self.pool.get().await.unwrap();
        let (secret, digest) = shared::domain::new_token();
        shared::db::insert_token(
            &client,
            None,
            shared::domain::Scope::Admin,
            &digest,
            "test admin",
            chrono::Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
        secret
    }

    /// Another token for an existing artist, expiring at `expires_at`.
    pub async fn token_for(
        &self,
        artist: Uuid,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> (Uuid, String) {
        let client = self.pool.get().await.unwrap();
        let (secret, digest) = shared::domain::new_token();
        let id = shared::db::insert_token(
            &client,
            Some(artist),
            shared::domain::Scope::Artist,
            &digest,
            "test",
            expires_at,
        )
        .await
        .unwrap();
        (id, secret)
    }
}

/// Posts a presigned form to its URL as a browser would (multipart/form-data,
/// fields first, then the file) and returns the HTTP status.
pub async fn post_form(post: &shared::aws::storage::PresignedPost, file: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = url::Url::parse(&post.url).expect("post url");
    let boundary = format!("----gallery{}", Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, value) in &post.fields {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let host = url.host_str().expect("host");
    let port = url.port_or_known_default().expect("port");
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url.path(),
        body.len()
    );
    let mut stream =
        tokio::net::TcpStream::connect((host, port)).await.expect("connect to emulator");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// GETs a presigned URL as a browser would; returns the status code.
pub async fn get_url(url: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = url::Url::parse(url).expect("url");
    let host = url.host_str().expect("host");
    let port = url.port_or_known_default().expect("port");
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let head = format!("GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    let mut stream =
        tokio::net::TcpStream::connect((host, port)).await.expect("connect to emulator");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A loopback port nothing listens on: the way tests make a service unreachable.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The first column of every row of `sql`, as text.
pub async fn strings(client: &impl deadpool_postgres::GenericClient, sql: &str) -> Vec<String> {
    client.query(sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
}

/// Records how many cases a probe ran, for the reliability suite's table
/// (`cargo xtask test` sets `GALLERY_LOG_DIR`; elsewhere nothing is written).
pub fn record_cases(test: &str, cases: usize) {
    if let Some(dir) = std::env::var_os("GALLERY_LOG_DIR") {
        let dir = std::path::Path::new(&dir).join("cases");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{test}.txt")), cases.to_string());
    }
}
