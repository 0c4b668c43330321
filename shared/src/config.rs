//! Typed configuration read once at cold start.
//!
//! Every function composes its `Config` from the pieces here. Reading goes
//! through [`Env`], which collects *all* problems so a misconfigured function
//! fails at start-up with one message that lists each of them.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

/// What the log subscriber reads from the environment itself (`RUST_LOG`,
/// through `EnvFilter`): the one read that does not pass through [`Env`].
pub const TELEMETRY_VARS: &[&str] = &["RUST_LOG"];

/// Every problem found while reading the configuration.
#[derive(thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

// `main` prints a returned error with `Debug`: make that the readable list.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.problems.join("; "))
    }
}

/// A source of variables; the process environment in production, a map in tests.
///
/// It also remembers every name it was asked for, so a test can compare what a
/// function reads with what Terraform sets ([`Env::reads`]).
pub struct Env {
    vars: HashMap<String, String>,
    problems: Vec<String>,
    reads: EnvReads,
}

/// The variables a configuration asked for, by how it asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvReads {
    /// Must be set.
    pub required: BTreeSet<String>,
    /// Read when set (a default or another source applies otherwise).
    pub optional: BTreeSet<String>,
    /// Exactly one of each group must be set (e.g. a password or its secret's ARN).
    pub one_of: Vec<Vec<String>>,
}

impl EnvReads {
    /// Every name read, whichever way.
    pub fn all(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self.required.union(&self.optional).cloned().collect();
        all.extend(self.one_of.iter().flatten().cloned());
        all
    }

    /// Adds what another reader (e.g. the telemetry's `RUST_LOG`) reads.
    pub fn with_optional(mut self, names: &[&str]) -> Self {
        self.optional.extend(names.iter().map(|n| n.to_string()));
        self
    }
}

impl Env {
    /// The process environment. This is the only place the crate reads it.
    pub fn from_process() -> Self {
        Self::from_map(std::env::vars().collect())
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self { vars, problems: Vec::new(), reads: EnvReads::default() }
    }

    /// What `read` asks for, found by running it over an empty environment.
    pub fn reads_of<T>(read: impl FnOnce(&mut Env) -> T) -> EnvReads {
        let mut env = Self::from_map(HashMap::new());
        let _ = read(&mut env);
        env.reads
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A required value; records a problem and returns an empty string if absent.
    pub fn required(&mut self, name: &str) -> String {
        self.reads.required.insert(name.to_owned());
        match self.get(name) {
            Some(v) => v.to_owned(),
            None => {
                self.problems.push(format!("{name} is required"));
                String::new()
            }
        }
    }

    pub fn optional(&mut self, name: &str) -> Option<String> {
        self.reads.optional.insert(name.to_owned());
        self.get(name).map(str::to_owned)
    }

    /// Exactly one of `names` must be set: returns its index and value, or
    /// records a problem.
    pub fn one_of(&mut self, names: &[&str]) -> Option<(usize, String)> {
        self.reads.one_of.push(names.iter().map(|n| n.to_string()).collect());
        let set: Vec<(usize, String)> = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| self.get(n).map(|v| (i, v.to_owned())))
            .collect();
        match <[_; 1]>::try_from(set) {
            Ok([one]) => Some(one),
            Err(set) if set.is_empty() => {
                self.problems.push(format!("{} is required", names.join(" or ")));
                None
            }
            Err(_) => {
                self.problems.push(format!("set only one of {}", names.join(" and ")));
                None
            }
        }
    }

    /// A parsed value with a default; an unparsable value is a problem, not the default.
    pub fn parse_or<T: FromStr>(&mut self, name: &str, default: T) -> T
    where
        T::Err: fmt::Display,
    {
        self.reads.optional.insert(name.to_owned());
        match self.get(name) {
            None => default,
            Some(raw) => match raw.parse() {
                Ok(v) => v,
                Err(e) => {
                    self.problems.push(format!("{name}={raw:?} is invalid: {e}"));
                    default
                }
            },
        }
    }

    /// Records a problem found by a piece's own validation.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// Ends reading: `Ok` only if nothing was wrong.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError { problems: self.problems })
        }
    }
}

/// A function's configuration: how it is parsed, and the three ways it is read.
pub trait FromEnv: Sized {
    /// Reads every variable, recording problems in `env` rather than stopping at the first.
    fn parse(env: &mut Env) -> Self;

    /// From the process environment, at cold start: every problem in one error.
    fn from_env() -> Result<Self, ConfigError> {
        Self::read(Env::from_process())
    }

    fn read(mut env: Env) -> Result<Self, ConfigError> {
        let config = Self::parse(&mut env);
        env.finish(config)
    }

    /// Every variable this configuration reads, for the Terraform drift check.
    fn variables() -> EnvReads {
        Env::reads_of(Self::parse).with_optional(TELEMETRY_VARS)
    }
}

/// What every function reads: its database, its AWS endpoints, the buckets and keys.
#[derive(Clone, Debug)]
pub struct Common {
    pub db: DbConfig,
    pub aws: AwsConfig,
    pub storage: StorageConfig,
}

impl Common {
    pub fn read(env: &mut Env) -> Self {
        Self {
            db: DbConfig::read(env),
            aws: AwsConfig::read(env),
            storage: StorageConfig::read(env),
        }
    }
}

/// Where the database password comes from.
#[derive(Clone)]
pub enum PasswordSource {
    /// Given directly (local stack and tests).
    Plain(SecretString),
    /// A Secrets Manager secret whose JSON has a `password` field (RDS-managed secrets do).
    SecretArn(String),
}

impl fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("Plain([redacted])"),
            Self::SecretArn(arn) => f.debug_tuple("SecretArn").field(arn).finish(),
        }
    }
}

/// PostgreSQL connection settings. There is deliberately no TLS switch: every
/// connection is TLS with full certificate and host-name verification against
/// `ca_bundle`.
#[derive(Clone, Debug)]
pub struct DbConfig {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    pub password: PasswordSource,
    pub ca_bundle: PathBuf,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    pub pool_size: usize,
}

impl DbConfig {
    /// The same database as `role`.
    pub fn log_in_as(&mut self, role: RoleConfig) {
        self.user = role.user;
        self.password = role.password;
    }

    pub fn read(env: &mut Env) -> Self {
        let host = env.required("DATABASE_HOST");
        let port = env.parse_or("DATABASE_PORT", 5432u16);
        let name = env.required("DATABASE_NAME");
        let user = env.required("DATABASE_USER");
        let password = password_source(env, "DATABASE_PASSWORD", "DATABASE_PASSWORD_SECRET_ARN");
        let ca_bundle = PathBuf::from(env.required("DATABASE_CA_BUNDLE"));
        let connect_timeout =
            Duration::from_millis(env.parse_or("DATABASE_CONNECT_TIMEOUT_MS", 5_000u64));
        let statement_timeout =
            Duration::from_millis(env.parse_or("DATABASE_STATEMENT_TIMEOUT_MS", 10_000u64));
        let pool_size = env.parse_or("DATABASE_POOL_SIZE", 4usize);
        if pool_size == 0 {
            env.problem("DATABASE_POOL_SIZE must be at least 1");
        }
        if connect_timeout.is_zero() || statement_timeout.is_zero() {
            env.problem("database timeouts must be greater than zero");
        }
        Self {
            host,
            port,
            name,
            user,
            password,
            ca_bundle,
            connect_timeout,
            statement_timeout,
            pool_size,
        }
    }
}

/// A database role other than the application's: its user and where its
/// password is.
#[derive(Clone, Debug)]
pub struct RoleConfig {
    pub user: String,
    pub password: PasswordSource,
}

impl RoleConfig {
    /// The schema owner: migrations, restores and drills need it; the
    /// application role deliberately cannot do any of them.
    pub fn owner(env: &mut Env) -> Self {
        Self::read(
            env,
            "DATABASE_OWNER_USER",
            "DATABASE_OWNER_PASSWORD",
            "DATABASE_OWNER_SECRET_ARN",
        )
    }

    /// The read-only role the daily backup reads its snapshot with.
    pub fn backup(env: &mut Env) -> Self {
        Self::read(
            env,
            "DATABASE_BACKUP_USER",
            "DATABASE_BACKUP_PASSWORD",
            "DATABASE_BACKUP_SECRET_ARN",
        )
    }

    /// Where one environment holds every function's login (the local stack:
    /// `DATABASE_<FUNCTION>_USER` and its password), `function`'s, so code
    /// run outside its Lambda still logs in as its own role.
    pub fn local_function(function: &str) -> Result<Self, ConfigError> {
        let mut env = Env::from_process();
        let role = Self::function(&mut env, function);
        env.finish(role)
    }

    /// `DATABASE_<FUNCTION>_USER` and its password or secret.
    pub fn function(env: &mut Env, function: &str) -> Self {
        Self::read(
            env,
            &format!("DATABASE_{function}_USER"),
            &format!("DATABASE_{function}_PASSWORD"),
            &format!("DATABASE_{function}_SECRET_ARN"),
        )
    }

    fn read(env: &mut Env, user: &str, plain: &str, secret_arn: &str) -> Self {
        Self { user: env.required(user), password: password_source(env, plain, secret_arn) }
    }
}

/// The logins of the functions other than the backup: the migrate task gives
/// each role its login from its secret, like the backup function's own and the
/// snapshot role's.
#[derive(Clone, Debug)]
pub struct FunctionLogins {
    pub api: RoleConfig,
    pub processor: RoleConfig,
    pub retention: RoleConfig,
}

impl FunctionLogins {
    pub fn read(env: &mut Env) -> Self {
        Self {
            api: RoleConfig::function(env, "API"),
            processor: RoleConfig::function(env, "PROCESSOR"),
            retention: RoleConfig::function(env, "RETENTION"),
        }
    }

    pub fn all(&self) -> [&RoleConfig; 3] {
        [&self.api, &self.processor, &self.retention]
    }
}

/// A password given directly (local stack, tests) or the ARN of the secret holding it.
fn password_source(env: &mut Env, plain: &str, secret_arn: &str) -> PasswordSource {
    match env.one_of(&[plain, secret_arn]) {
        Some((0, p)) => PasswordSource::Plain(SecretString::from(p)),
        Some((_, arn)) => PasswordSource::SecretArn(arn),
        None => PasswordSource::SecretArn(String::new()),
    }
}

/// AWS clients' settings. `endpoint_url` points every client at the local emulator.
#[derive(Clone, Debug, Default)]
pub struct AwsConfig {
    pub endpoint_url: Option<String>,
    /// The SDK's standard service-specific override for KMS alone (the
    /// endpoint set above would otherwise hide it); the fault tests point
    /// it at a KMS that refuses.
    pub kms_endpoint_url: Option<String>,
    pub region: Option<String>,
}

impl AwsConfig {
    pub fn read(env: &mut Env) -> Self {
        let mut url = |name: &str| {
            let value = env.optional(name);
            if let Some(url) = &value {
                if url::Url::parse(url).is_err() {
                    env.problem(format!("{name}={url:?} is not a URL"));
                }
            }
            value
        };
        let endpoint_url = url("AWS_ENDPOINT_URL");
        let kms_endpoint_url = url("AWS_ENDPOINT_URL_KMS");
        Self { endpoint_url, kms_endpoint_url, region: env.optional("AWS_REGION") }
    }
}

/// Who may run operator tasks, beyond what IAM already checks.
#[derive(Clone, Debug, Default)]
pub struct OperatorConfig {
    /// Only sessions of this IAM role are accepted (Terraform sets it; the
    /// local stack leaves it unset, its emulator's caller being a plain user).
    pub role_name: Option<String>,
}

impl OperatorConfig {
    pub fn read(env: &mut Env) -> Self {
        Self { role_name: env.optional("GALLERY_OPERATOR_ROLE_NAME") }
    }
}

/// The gallery's buckets and the KMS keys that encrypt them.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// Temporary originals, uploaded by artists and deleted once processed.
    pub originals_bucket: String,
    pub processed_bucket: String,
    pub backups_bucket: String,
    /// Key for SSE-KMS on the originals and processed buckets.
    pub data_key_id: String,
}

impl StorageConfig {
    pub fn read(env: &mut Env) -> Self {
        let cfg = Self {
            originals_bucket: env.required("GALLERY_ORIGINALS_BUCKET"),
            processed_bucket: env.required("GALLERY_PROCESSED_BUCKET"),
            backups_bucket: env.required("GALLERY_BACKUPS_BUCKET"),
            data_key_id: env.required("GALLERY_KMS_KEY_ID"),
        };
        let names = [&cfg.originals_bucket, &cfg.processed_bucket, &cfg.backups_bucket];
        for name in names.iter().filter(|n| !n.is_empty()) {
            if !valid_bucket_name(name) {
                env.problem(format!("{name:?} is not a valid S3 bucket name"));
            }
        }
        // One bucket for two roles would let the image processor retrigger itself.
        if !cfg.originals_bucket.is_empty() && cfg.originals_bucket == cfg.processed_bucket {
            env.problem("GALLERY_ORIGINALS_BUCKET and GALLERY_PROCESSED_BUCKET must differ");
        }
        cfg
    }
}

/// The DR region's replicas of the processed and backups buckets. S3 does not
/// replicate the deletion of a version, so whoever purges must purge these too.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    pub region: String,
    pub processed_bucket: String,
    pub backups_bucket: String,
    /// The DR region's S3 as seen from the private subnets: the cross-Region
    /// interface endpoint's address (no NAT, and gateway endpoints serve only
    /// their own region). Unset: the SDK's regional endpoint (or the emulator's).
    pub s3_endpoint: Option<String>,
}

impl ReplicaConfig {
    pub fn read(env: &mut Env) -> Self {
        let cfg = Self {
            region: env.required("GALLERY_DR_REGION"),
            processed_bucket: env.required("GALLERY_PROCESSED_REPLICA_BUCKET"),
            backups_bucket: env.required("GALLERY_BACKUPS_REPLICA_BUCKET"),
            s3_endpoint: env.optional("GALLERY_DR_S3_ENDPOINT"),
        };
        for name in
            [&cfg.processed_bucket, &cfg.backups_bucket].into_iter().filter(|n| !n.is_empty())
        {
            if !valid_bucket_name(name) {
                env.problem(format!("{name:?} is not a valid S3 bucket name"));
            }
        }
        if let Some(url) = cfg.s3_endpoint.as_deref().filter(|u| url::Url::parse(u).is_err()) {
            env.problem(format!("GALLERY_DR_S3_ENDPOINT={url:?} is not a URL"));
        }
        cfg
    }
}

fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn lists_every_problem_at_once() {
        let mut e =
            env(&[("DATABASE_PORT", "not-a-port"), ("GALLERY_ORIGINALS_BUCKET", "Bad_Name")]);
        let _ = DbConfig::read(&mut e);
        let _ = StorageConfig::read(&mut e);
        let err = e.finish(()).unwrap_err();
        let text = err.to_string();
        for needle in [
            "DATABASE_HOST is required",
            "DATABASE_PORT=\"not-a-port\"",
            "DATABASE_PASSWORD or DATABASE_PASSWORD_SECRET_ARN is required",
            "\"Bad_Name\" is not a valid",
            "GALLERY_KMS_KEY_ID is required",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn complete_configuration_reads() {
        let mut e = env(&[
            ("DATABASE_HOST", "db.internal"),
            ("DATABASE_NAME", "gallery"),
            ("DATABASE_USER", "gallery_app"),
            ("DATABASE_PASSWORD_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:x"),
            ("DATABASE_CA_BUNDLE", "/var/task/ca.pem"),
        ]);
        let db = DbConfig::read(&mut e);
        let db = e.finish(db).unwrap();
        assert_eq!(db.port, 5432);
        assert!(matches!(db.password, PasswordSource::SecretArn(_)));
    }

    #[test]
    fn same_bucket_for_originals_and_renditions_is_refused() {
        let mut e = env(&[
            ("GALLERY_ORIGINALS_BUCKET", "gallery-a"),
            ("GALLERY_PROCESSED_BUCKET", "gallery-a"),
            ("GALLERY_BACKUPS_BUCKET", "gallery-b"),
            ("GALLERY_KMS_KEY_ID", "alias/x"),
        ]);
        let _ = StorageConfig::read(&mut e);
        assert!(e.finish(()).unwrap_err().to_string().contains("must differ"));
    }

    #[test]
    fn password_is_never_printed() {
        let p = PasswordSource::Plain(SecretString::from("hunter2"));
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
