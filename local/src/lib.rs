//! What AWS and Terraform provide in production, provided locally: buckets and
//! keys in the emulator, the schema and a demo artist, and S3 notifications
//! (by watching the originals bucket), and the CDN's media path (`edge`).

pub mod edge;
pub mod proxy;
pub mod runtime_api;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::s3::S3Event;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CreateBucketConfiguration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, VersioningConfiguration,
};
use image_processor::renditions::Processor;
use secrecy::SecretString;
use shared::config::DbConfig;

/// The keys and buckets as Terraform names them: the data and backups keys,
/// the three buckets, and the DR replicas (which replication fills in AWS, and
/// retention purges too). Returns the data key's ARN.
pub async fn provision(
    clients: &shared::aws::Clients,
    retention: &retention::RetentionConfig,
    region: &str,
) -> Result<String> {
    let storage = &retention.common.storage;
    let data_key = ensure_key(&clients.kms, &storage.data_key_id).await?;
    let backup_key = ensure_key(&clients.kms, &retention.backup_key_id).await?;
    for bucket in [&storage.originals_bucket, &storage.processed_bucket] {
        ensure_bucket(&clients.s3, bucket, region, &data_key).await?;
    }
    // Locked buckets with no default retention: what the gallery writes there
    // it locks itself (Terraform adds the default as a floor).
    ensure_locked_bucket(&clients.s3, &storage.backups_bucket, region, &backup_key, None).await?;
    let replica = &retention.replica;
    let replica_s3 = clients.s3_in(&retention.common.aws, &replica.region, None);
    ensure_bucket(&replica_s3, &replica.processed_bucket, &replica.region, &data_key).await?;
    ensure_locked_bucket(&replica_s3, &replica.backups_bucket, &replica.region, &backup_key, None)
        .await?;
    Ok(data_key)
}

/// The key behind `alias`, creating both if the alias does not exist yet.
pub async fn ensure_key(kms: &aws_sdk_kms::Client, alias: &str) -> Result<String> {
    if let Ok(found) = kms.describe_key().key_id(alias).send().await {
        if let Some(arn) = found.key_metadata().and_then(|m| m.arn()) {
            return Ok(arn.to_owned());
        }
    }
    let created = kms
        .create_key()
        .description(format!("copper gallery {alias}"))
        .send()
        .await
        .context("creating a KMS key")?;
    let meta = created.key_metadata().context("KMS returned no key metadata")?;
    kms.enable_key_rotation()
        .key_id(meta.key_id())
        .send()
        .await
        .context("enabling key rotation")?;
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(meta.key_id())
        .send()
        .await
        .context("creating the key alias")?;
    meta.arn().map(str::to_owned).context("KMS returned no key ARN")
}

/// A bucket configured as Terraform configures it: versioned, SSE-KMS with
/// our key by default, and no public access.
pub async fn ensure_bucket(
    s3: &aws_sdk_s3::Client,
    name: &str,
    region: &str,
    key_arn: &str,
) -> Result<()> {
    if s3.head_bucket().bucket(name).send().await.is_err() {
        let location =
            CreateBucketConfiguration::builder().location_constraint(region.into()).build();
        s3.create_bucket()
            .bucket(name)
            .create_bucket_configuration(location)
            .send()
            .await
            .with_context(|| format!("creating bucket {name}"))?;
    }
    s3.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(
            VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
        )
        .send()
        .await
        .with_context(|| format!("enabling versioning on {name}"))?;
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id(key_arn)
        .build()?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default)
        .bucket_key_enabled(true)
        .build();
    s3.put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder().rules(rule).build()?,
        )
        .send()
        .await
        .with_context(|| format!("setting default encryption on {name}"))?;
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .block_public_policy(true)
        .ignore_public_acls(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(block)
        .send()
        .await
        .with_context(|| format!("blocking public access on {name}"))?;
    Ok(())
}

/// A backups bucket as Terraform configures it: [`ensure_bucket`], and S3
/// Object Lock enabled, with a COMPLIANCE default retention of
/// `default_days` when given. The emulator applies a default retention to
/// single-part uploads only; the backup function locks what it writes
/// itself, as it does in AWS.
pub async fn ensure_locked_bucket(
    s3: &aws_sdk_s3::Client,
    name: &str,
    region: &str,
    key_arn: &str,
    default_days: Option<i32>,
) -> Result<()> {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
        ObjectLockRule,
    };
    ensure_bucket(s3, name, region, key_arn).await?;
    let rule = default_days.map(|days| {
        ObjectLockRule::builder()
            .default_retention(
                DefaultRetention::builder()
                    .mode(ObjectLockRetentionMode::Compliance)
                    .days(days)
                    .build(),
            )
            .build()
    });
    let config = ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .set_rule(rule)
        .build();
    s3.put_object_lock_configuration()
        .bucket(name)
        .object_lock_configuration(config)
        .send()
        .await
        .with_context(|| format!("enabling Object Lock on {name}"))?;
    Ok(())
}

/// A function's environment from the local stack's, which holds every
/// function's login as `DATABASE_<FUNCTION>_USER` and `_PASSWORD`: the
/// function's own becomes `DATABASE_USER` (and `DATABASE_PASSWORD`, unless
/// the password comes from a secret), so it runs as its role, as deployed.
pub fn log_in_as(env: &mut Vec<(String, String)>, function: &str) {
    fn replace(env: &mut Vec<(String, String)>, key: &str, from: &str) {
        if let Some(v) = env.iter().find(|(k, _)| k == from).map(|(_, v)| v.clone()) {
            env.retain(|(k, _)| k != key);
            env.push((key.to_owned(), v));
        }
    }
    replace(env, "DATABASE_USER", &format!("DATABASE_{function}_USER"));
    if env.iter().any(|(k, _)| k == "DATABASE_PASSWORD") {
        replace(env, "DATABASE_PASSWORD", &format!("DATABASE_{function}_PASSWORD"));
    }
}

/// Applies migrations as the owning role (the application role cannot).
pub async fn migrate(
    db: &DbConfig,
    owner_user: &str,
    owner_password: &SecretString,
) -> Result<Vec<i32>> {
    let owner = DbConfig { user: owner_user.to_owned(), ..db.clone() };
    let mut client = shared::db::connect(&owner, owner_password).await?;
    Ok(shared::db::migrate(&mut client).await?)
}

/// A demo artist with one published artwork and edition; returns a token secret for the artist.
pub async fn seed(pool: &deadpool_postgres::Pool) -> Result<String> {
    use shared::domain::{ArtworkStatus, NewArtwork, NewEdition, Scope};
    let client = pool.get().await?;
    let artist = shared::db::insert_artist(
        &client,
        "Ada Copper",
        "ada@copper-gallery.example",
        Some("Etcher of rivers and foundries."),
        Some("https://copper-gallery.example/ada"),
    )
    .await?;
    let artwork = NewArtwork {
        title: "Foundry at Dusk".into(),
        slug: None,
        description: Some("Copper etching, aquatint.".into()),
        medium: Some("Etching".into()),
        year: Some(2026),
        width_mm: Some(420),
        height_mm: Some(297),
    };
    let fields = artwork.validate().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let created = shared::db::insert_artwork(&client, artist.id, &fields).await?;
    shared::db::set_artwork_status(&client, created.id, ArtworkStatus::Published).await?;
    shared::db::insert_edition(
        &client,
        created.id,
        &NewEdition {
            edition_size: 30,
            paper: "Hahnemühle Copperplate".into(),
            price_minor: 24_000,
            currency: "EUR".into(),
        }
        .validate()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?,
    )
    .await?;
    let (secret, digest) = shared::domain::new_token();
    shared::db::insert_token(
        &client,
        Some(artist.id),
        Scope::Artist,
        &digest,
        "local demo",
        chrono::Utc::now() + chrono::Duration::days(30),
    )
    .await?;
    Ok(secret)
}

/// What an attacking client gets to work with (`cargo xtask reliability`):
/// an artist's and an admin's token, and the ids the run must never reach
/// (its own artist and tokens: a run that revokes its own token tests
/// nothing after that).
#[derive(serde::Serialize)]
pub struct Credentials {
    pub artist_token: String,
    pub admin_token: String,
    pub protected_ids: Vec<uuid::Uuid>,
}

pub async fn credentials(pool: &deadpool_postgres::Pool) -> Result<Credentials> {
    use shared::domain::Scope;
    let client = pool.get().await?;
    let artist = shared::db::insert_artist(
        &client,
        "Test Artist",
        &format!("artist-{}@copper-gallery.example", uuid::Uuid::new_v4().simple()),
        None,
        None,
    )
    .await?;
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    let (artist_token, digest) = shared::domain::new_token();
    let artist_token_id = shared::db::insert_token(
        &client,
        Some(artist.id),
        Scope::Artist,
        &digest,
        "attack run",
        expires,
    )
    .await?;
    let (admin_token, digest) = shared::domain::new_token();
    let admin_token_id =
        shared::db::insert_token(&client, None, Scope::Admin, &digest, "attack run", expires)
            .await?;
    Ok(Credentials {
        artist_token,
        admin_token,
        protected_ids: vec![artist.id, artist_token_id, admin_token_id],
    })
}

/// The S3 event AWS would send for one new object (keys encoded as S3 encodes them).
pub fn object_created_event(
    bucket: &str,
    key: &str,
    size: i64,
) -> Result<S3Event, serde_json::Error> {
    let encoded: String = key
        .split(' ')
        .map(|part| percent_encoding::utf8_percent_encode(part, S3_KEY_ESCAPES).to_string())
        .collect::<Vec<_>>()
        .join("+");
    // Built as JSON, the way Lambda delivers it, then parsed by the same type.
    let payload = serde_json::json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Post",
        "eventTime": chrono::Utc::now(),
        "awsRegion": "local",
        "userIdentity": { "principalId": "local" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": {},
        "s3": { "s3SchemaVersion": "1.0", "bucket": { "name": bucket }, "object": { "key": encoded, "size": size } },
    }]});
    serde_json::from_value(payload)
}

/// Everything but unreserved characters and `/` is escaped, as in real S3 events.
const S3_KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Stands in for the bucket notification: every new original is handed to the
/// image processor's handler, exactly as Lambda would, until `stop` resolves.
pub async fn watch_uploads(
    processor: &Processor,
    s3: &aws_sdk_s3::Client,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut seen: HashSet<(String, Option<String>)> = HashSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let listed = match s3.list_objects_v2().bucket(&processor.originals_bucket).send().await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "cannot list originals");
                continue;
            }
        };
        for object in listed.contents() {
            let (Some(key), etag) = (object.key(), object.e_tag().map(str::to_owned)) else {
                continue;
            };
            if !seen.insert((key.to_owned(), etag)) {
                continue;
            }
            let event = match object_created_event(
                &processor.originals_bucket,
                key,
                object.size().unwrap_or(0),
            ) {
                Ok(event) => event,
                Err(e) => {
                    tracing::error!(key, error = %e, "cannot build the S3 event");
                    continue;
                }
            };
            match image_processor::handle(event, processor).await {
                Ok(outcomes) => tracing::info!(key, ?outcomes, "upload processed"),
                Err(e) => {
                    tracing::error!(key, error = %e, "upload processing failed; will retry");
                    seen.retain(|(k, _)| k != key);
                }
            }
        }
    }
}
