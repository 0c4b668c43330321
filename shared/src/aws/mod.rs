//! AWS clients, built once at cold start and shared by every invocation, and
//! what the gallery does with them: secrets (here), objects (`storage`), data
//! keys (`keys`), operator identity proofs (`sts`).

pub mod keys;
pub mod storage;
pub mod sts;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use secrecy::SecretString;

use crate::config::{AwsConfig, PasswordSource};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret {arn}: {source}")]
    Fetch {
        arn: String,
        #[source]
        source: Box<aws_sdk_secretsmanager::Error>,
    },
    #[error("secret {arn} has no JSON `password` field")]
    Shape { arn: String },
}

/// Fixed credentials (the local stack's per-role access keys).
pub fn static_credentials(
    access_key_id: &str,
    secret_access_key: &str,
) -> aws_credential_types::provider::SharedCredentialsProvider {
    let credentials = aws_credential_types::Credentials::new(
        access_key_id,
        secret_access_key,
        None,
        None,
        "gallery",
    );
    aws_credential_types::provider::SharedCredentialsProvider::new(credentials)
}

/// A password fetched on first use: the owner's, which most invocations
/// never need, so it is not read at every cold start. RDS rotates it (every
/// seven days by default): `refresh` reads it again when the server refuses it.
pub struct LazyPassword {
    clients: Clients,
    source: PasswordSource,
    cell: tokio::sync::RwLock<Option<SecretString>>,
}

impl LazyPassword {
    pub fn new(clients: Clients, source: PasswordSource) -> Self {
        Self { clients, source, cell: tokio::sync::RwLock::new(None) }
    }

    pub async fn get(&self) -> Result<SecretString, SecretError> {
        if let Some(p) = self.cell.read().await.as_ref() {
            return Ok(p.clone());
        }
        self.refresh().await
    }

    /// Reads the secret again and keeps what it holds now.
    pub async fn refresh(&self) -> Result<SecretString, SecretError> {
        let fresh = self.clients.database_password(&self.source).await?;
        *self.cell.write().await = Some(fresh.clone());
        Ok(fresh)
    }
}

/// The clients the functions use. Cloning is cheap (they share connections).
#[derive(Clone, Debug)]
pub struct Clients {
    pub sdk: SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    pub async fn new(cfg: &AwsConfig) -> Self {
        // Bounded everywhere: an unreachable endpoint is an error after seconds, not a hung invocation.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(60))
            .operation_timeout(Duration::from_secs(180))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
        if let Some(url) = &cfg.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = &cfg.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let sdk = loader.load().await;
        // The emulator serves buckets by path, not by virtual host name.
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(cfg.endpoint_url.is_some())
            .build();
        let mut kms_config = aws_sdk_kms::config::Builder::from(&sdk);
        if let Some(url) = &cfg.kms_endpoint_url {
            kms_config = kms_config.endpoint_url(url);
        }
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            kms: aws_sdk_kms::Client::from_conf(kms_config.build()),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sdk,
        }
    }

    /// The same clients signing as another identity (the local stack runs
    /// each function's code under the access key that names its role, so
    /// the requests it records can be evaluated against that role's policies).
    pub fn signing_as(&self, access_key_id: &str, secret_access_key: &str) -> Self {
        let provider = static_credentials(access_key_id, secret_access_key);
        let sdk = self.sdk.to_builder().credentials_provider(provider.clone()).build();
        let s3 = aws_sdk_s3::Client::from_conf(
            self.s3.config().to_builder().credentials_provider(provider.clone()).build(),
        );
        let kms = aws_sdk_kms::Client::from_conf(
            self.kms.config().to_builder().credentials_provider(provider).build(),
        );
        Self { s3, kms, secrets: aws_sdk_secretsmanager::Client::new(&sdk), sdk }
    }

    /// An S3 client for another region (the DR replicas), through `endpoint`
    /// when given (the cross-Region interface endpoint); the emulator's
    /// endpoint, when there is one, wins.
    pub fn s3_in(
        &self,
        cfg: &AwsConfig,
        region: &str,
        endpoint: Option<&str>,
    ) -> aws_sdk_s3::Client {
        let mut builder =
            aws_sdk_s3::config::Builder::from(&self.sdk).region(Region::new(region.to_owned()));
        match (&cfg.endpoint_url, endpoint) {
            (Some(emulator), _) => builder = builder.endpoint_url(emulator).force_path_style(true),
            (None, Some(endpoint)) => builder = builder.endpoint_url(endpoint),
            (None, None) => {}
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }

    /// KMS in another region (the DR copy's key replica): through `endpoint`
    /// when given (a cross-Region interface endpoint), else the SDK's own.
    pub fn kms_in(
        &self,
        cfg: &AwsConfig,
        region: &str,
        endpoint: Option<&str>,
    ) -> aws_sdk_kms::Client {
        let mut builder =
            aws_sdk_kms::config::Builder::from(&self.sdk).region(Region::new(region.to_owned()));
        if let Some(url) = cfg.endpoint_url.as_deref().or(endpoint) {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_kms::Client::from_conf(builder.build())
    }

    /// The database password: given, or read once from Secrets Manager.
    pub async fn database_password(
        &self,
        source: &PasswordSource,
    ) -> Result<SecretString, SecretError> {
        let arn = match source {
            PasswordSource::Plain(p) => return Ok(p.clone()),
            PasswordSource::SecretArn(arn) => arn,
        };
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| SecretError::Fetch { arn: arn.clone(), source: Box::new(e.into()) })?;
        let shape = || SecretError::Shape { arn: arn.clone() };
        let json: serde_json::Value =
            serde_json::from_str(out.secret_string().ok_or_else(shape)?).map_err(|_| shape())?;
        let password = json.get("password").and_then(|p| p.as_str()).ok_or_else(shape)?;
        Ok(SecretString::from(password.to_owned()))
    }
}
