//! PostgreSQL: the pool, its TLS, the migrations, and all of the gallery's SQL.
//!
//! The pool can only make TLS connections that verify the server's certificate
//! chain against the configured CA bundle *and* its host name: there is no
//! setting that yields a plaintext or unverified connection.

mod artists;
mod artworks;
mod audit;
mod backups;
mod editions;
mod erasures;
mod idempotency;
mod images;
mod media;
mod operator_proofs;
mod retention;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use artists::*;
pub use artworks::*;
pub use audit::*;
pub use backups::*;
pub use editions::*;
pub use erasures::*;
pub use idempotency::*;
pub use images::*;
pub use media::*;
pub use operator_proofs::*;
pub use retention::*;
pub use tokens::*;

use crate::config::DbConfig;

pub type Client = deadpool_postgres::Object;

/// Transaction control on a pooled connection, for work that must hold one
/// transaction across calls that take the connection by reference (a
/// purge's row and its audit entry). `Transaction` needs `&mut`; these do not.
/// What the pool runs on a connection before handing it out again.
const RECYCLE: &str = "SET client_min_messages = error; ROLLBACK; RESET client_min_messages";

pub async fn begin(db: &Client) -> Result<(), DbError> {
    Ok(db.batch_execute("BEGIN").await?)
}

pub async fn commit(db: &Client) -> Result<(), DbError> {
    Ok(db.batch_execute("COMMIT").await?)
}

/// Rolls back whatever is open; a broken connection is dropped by the pool's recycling check.
pub async fn rollback(db: &Client) {
    let _ = db.batch_execute("ROLLBACK").await;
}

mod embedded {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot read the database CA bundle {path}: {reason}")]
    CaBundle { path: String, reason: String },
    #[error("database pool: {}", pool_error(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database pool could not be built: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    #[error("{}", postgres_error(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("migration failed: {}", error_chain(.0))]
    Migration(#[from] refinery::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// An error and its sources on one line: refinery's own message hides the
/// server's, which is the one an operator needs.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What the server said, without its DETAIL (which may quote row values,
/// personal data among them): tokio-postgres's own Display is just "db error".
fn postgres_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code()),
        None => error_chain(e),
    }
}

/// The pool's error, with the server's message when connecting failed
/// (deadpool's own Display ends in tokio-postgres's bare "db error").
fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => {
            format!("cannot connect: {}", postgres_error(e))
        }
        other => other.to_string(),
    }
}

impl DbError {
    /// Whether trying again later can succeed: the server, network or pool was
    /// unavailable, or a query was cancelled by its timeout or a deadlock.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Pool(_) => true,
            Self::Postgres(e) => match e.code() {
                None => true, // I/O, closed connection, TLS, timeout
                Some(code) => {
                    let c = code.code();
                    // 08: connection exception, 40: rollback (serialization, deadlock),
                    // 53: insufficient resources, 57: operator intervention (incl. statement timeout).
                    c.starts_with("08")
                        || c.starts_with("40")
                        || c.starts_with("53")
                        || c.starts_with("57")
                }
            },
            Self::CaBundle { .. } | Self::Build(_) | Self::Migration(_) | Self::Corrupt(_) => false,
        }
    }

    /// The server refused the role's password (SQLSTATE 28P01, or 28000 as
    /// some poolers answer): after a rotation, the secret holds a new one.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, Self::Postgres(e) if refused_password(e))
    }

    /// The SQLSTATE of a server-side error, if this is one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Postgres(e) => e.code().map(|c| c.code()),
            _ => None,
        }
    }

    /// The constraint a write broke (a CHECK or a unique index), when there is one.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            Self::Postgres(e) => e.as_db_error().and_then(|d| d.constraint()),
            _ => None,
        }
    }
}

/// rustls configuration trusting exactly the CA certificates in `pem`.
pub fn tls_config(pem: &[u8], source: &str) -> Result<rustls::ClientConfig, DbError> {
    let bad = |reason: String| DbError::CaBundle { path: source.to_owned(), reason };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificates found".into()));
    }
    // An explicit provider, so nothing depends on which process-wide default
    // another dependency may or may not have installed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The verifying TLS connector for `cfg`'s CA bundle.
fn connector(cfg: &DbConfig) -> Result<MakeRustlsConnect, DbError> {
    let path = cfg.ca_bundle.display().to_string();
    let pem = std::fs::read(&cfg.ca_bundle)
        .map_err(|e| DbError::CaBundle { path: path.clone(), reason: e.to_string() })?;
    Ok(MakeRustlsConnect::new(tls_config(&pem, &path)?))
}

/// The connection parameters: always `sslmode=require` with a verifying connector.
pub fn pg_config(cfg: &DbConfig, password: &SecretString) -> tokio_postgres::Config {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&cfg.host)
        .port(cfg.port)
        .dbname(&cfg.name)
        .user(&cfg.user)
        .password(password.expose_secret())
        .ssl_mode(SslMode::Require)
        .connect_timeout(cfg.connect_timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .application_name("copper-gallery")
        .options(format!(
            "-c statement_timeout={} -c idle_in_transaction_session_timeout={}",
            cfg.statement_timeout.as_millis(),
            cfg.statement_timeout.as_millis() * 3
        ));
    pg
}

/// Builds the pool. Connections are made lazily, so this succeeds without a
/// reachable server; the first `get` reports an unreachable one as retryable.
pub fn pool(cfg: &DbConfig, password: &SecretString) -> Result<Pool, DbError> {
    pool_rotating(cfg, password, None)
}

/// Reads a role's password again from where it is kept (its secret).
pub type PasswordRefresh = Arc<dyn Fn() -> BoxFuture<Result<SecretString, String>> + Send + Sync>;
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// [`pool`], for a password that rotates (RDS and the runbook rotate them
/// while functions stay warm): when the server refuses the password in hand,
/// the pool reads the secret once more and retries that connection with the
/// new password, which every later connection then uses.
pub fn pool_rotating(
    cfg: &DbConfig,
    password: &SecretString,
    source: Option<PasswordRefresh>,
) -> Result<Pool, DbError> {
    let connect = RotatingConnect {
        tls: connector(cfg)?,
        password: Arc::new(std::sync::RwLock::new(password.clone())),
        source,
    };
    let manager = Manager::from_connect(
        pg_config(cfg, password),
        connect,
        // A connection comes back mid-transaction when the task using it was
        // cancelled (a timeout, an aborted request): its locks, the audit
        // log's ordering lock among them, must not outlive it. Outside a
        // transaction ROLLBACK only warns; the warning is not worth a log line
        // per request. (In an aborted transaction the SET fails, and the pool
        // replaces the connection.)
        ManagerConfig { recycling_method: RecyclingMethod::Custom(RECYCLE.into()) },
    );
    let wait = cfg.connect_timeout + Duration::from_secs(1);
    Ok(Pool::builder(manager)
        .max_size(cfg.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(cfg.connect_timeout))
        .recycle_timeout(Some(cfg.connect_timeout))
        .build()?)
}

fn refused_password(e: &tokio_postgres::Error) -> bool {
    matches!(e.code().map(|c| c.code()), Some("28P01" | "28000"))
}

/// Drives a connection in the background until it ends.
fn spawn_connection<S, T>(
    connection: tokio_postgres::Connection<S, T>,
) -> tokio::task::JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection ended");
        }
    })
}

struct RotatingConnect {
    tls: MakeRustlsConnect,
    password: Arc<std::sync::RwLock<SecretString>>,
    source: Option<PasswordRefresh>,
}

impl RotatingConnect {
    fn current(&self) -> SecretString {
        self.password
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }
}

impl deadpool_postgres::Connect for RotatingConnect {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> BoxFuture<
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let (tls, base, source, cell) =
            (self.tls.clone(), pg_config.clone(), self.source.clone(), self.password.clone());
        let password = self.current();
        Box::pin(async move {
            let attempt = |password: SecretString| {
                let (mut cfg, tls) = (base.clone(), tls.clone());
                async move {
                    cfg.password(password.expose_secret());
                    let (client, connection) = cfg.connect(tls).await?;
                    Ok::<_, tokio_postgres::Error>((client, spawn_connection(connection)))
                }
            };
            let refused = match attempt(password.clone()).await {
                Err(e) if refused_password(&e) => e,
                other => return other,
            };
            let Some(source) = source else { return Err(refused) };
            match source().await {
                Ok(fresh) if fresh.expose_secret() != password.expose_secret() => {
                    tracing::info!("the database refused the password in hand; using the rotated one from its secret");
                    if let Ok(mut held) = cell.write() {
                        *held = fresh.clone();
                    }
                    attempt(fresh).await
                }
                Ok(_) => Err(refused),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the rotated database password");
                    Err(refused)
                }
            }
        })
    }
}

/// Applies pending migrations; a no-op when the schema is current. Returns the
/// versions applied by this call.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<Vec<i32>, DbError> {
    let report = embedded::migrations::runner().run_async(client).await?;
    Ok(report.applied_migrations().iter().map(|m| m.version()).collect())
}

/// Gives a role its login with the password the functions read from their
/// secret. Sent as a SCRAM verifier, so the password itself never reaches the
/// server (or its statement log); the owner needs CREATEROLE, as RDS's master
/// user has.
pub async fn set_login_password(
    client: &tokio_postgres::Client,
    role: &str,
    password: &SecretString,
) -> Result<(), DbError> {
    let verifier = postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
    let role = role.replace('"', "\"\"");
    // The verifier is base64 plus `$` and `:`: nothing to escape in a literal.
    client
        .batch_execute(&format!("ALTER ROLE \"{role}\" WITH LOGIN PASSWORD '{verifier}'"))
        .await?;
    Ok(())
}

/// Applies migrations up to and including `version` only: a restore recreates
/// the schema a backup was taken with before loading its rows.
pub async fn migrate_to(
    client: &mut tokio_postgres::Client,
    version: i32,
) -> Result<Vec<i32>, DbError> {
    let target = refinery::Target::Version(version);
    let report = embedded::migrations::runner().set_target(target).run_async(client).await?;
    Ok(report.applied_migrations().iter().map(|m| m.version()).collect())
}

/// The newest migration this build knows.
pub fn latest_known_version() -> i32 {
    embedded::migrations::runner().get_migrations().iter().map(|m| m.version()).max().unwrap_or(0)
}

/// Cheapest round trip that proves the pool and server work.
pub async fn ping(pool: &Pool) -> Result<(), DbError> {
    pool.get().await?.simple_query("SELECT 1").await?;
    Ok(())
}

/// One connection outside the pool, with the same TLS rules (migrations, admin tasks).
pub async fn connect(
    cfg: &DbConfig,
    password: &SecretString,
) -> Result<tokio_postgres::Client, DbError> {
    let tls = connector(cfg)?;
    let (client, connection) = pg_config(cfg, password).connect(tls).await?;
    spawn_connection(connection);
    Ok(client)
}
