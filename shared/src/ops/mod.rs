//! Operator tasks: what an operator does to the running gallery without an
//! admin host. The operator tool invokes a function with an
//! [`OperatorRequest`]; IAM decides who may invoke (only the operator role),
//! CloudTrail records the invocation, and the function proves who the caller is
//! ([`identity`]) before it runs the task and writes it to the audit log.
//!
//! Each task belongs to the function that owns its data: tokens to the API,
//! backups and drills to the backup function, sweeps to retention.

pub mod artists;
pub mod identity;
pub mod tokens;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::DbError;
use crate::domain::Scope;
pub use identity::{Caller, IdentityError, IdentityProof};

/// The payload of an operator invocation. The `operator_task` field is what
/// tells it apart from the function's ordinary events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorRequest {
    pub operator_task: Task,
    pub identity: IdentityProof,
}

impl OperatorRequest {
    /// Whether a raw event is an operator invocation (so a function can route it).
    pub fn is_operator_event(event: &serde_json::Value) -> bool {
        event.get("operator_task").is_some()
    }
}

/// Every operator task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Task {
    /// The first admin token. Refused while a live admin token exists, unless
    /// forced with a reason (a lost token, a compromised one).
    BootstrapAdmin {
        label: String,
        expires_in_days: u32,
        force: bool,
        reason: Option<String>,
    },
    CreateToken {
        scope: Scope,
        artist_id: Option<Uuid>,
        label: String,
        expires_in_days: u32,
    },
    /// Tokens without their secrets; dead ones (expired, revoked) only when asked.
    ListTokens {
        include_dead: bool,
    },
    RevokeToken {
        token_id: Uuid,
        reason: String,
    },
    /// An artist, so an admin can issue their token (the API's admin routes
    /// manage artists from then on).
    CreateArtist {
        name: String,
        email: String,
        bio: Option<String>,
        website: Option<String>,
    },
    ListArtists {
        limit: u32,
    },
    /// Pending migrations, then the application role's login from its secret.
    MigrateDatabase,
    RunBackup,
    RunRestoreDrill,
    /// Reads a backup end to end (manifest, key, every chunk, every table's
    /// checksum) and writes nothing.
    VerifyBackup {
        backup: crate::backup::restore::Which,
    },
    /// Restores a backup into a chosen database (created if missing; refused
    /// if not empty unless `replace`).
    RestoreBackup {
        backup: crate::backup::restore::Which,
        database: String,
        verify_first: bool,
        replace: bool,
    },
    BackupHistory {
        limit: u32,
    },
    /// The retention sweep now; with `dry_run`, what it would delete (counts
    /// and sample keys) and nothing deleted.
    RunRetention {
        dry_run: bool,
    },
    /// The retention policy in force, rule by rule.
    RetentionPolicy,
    /// Erases an artist now: personal data, works, every object version
    /// (replicas too), tokens; keeps the record that proves it. Irreversible,
    /// so it must be confirmed.
    EraseArtist {
        artist_id: Uuid,
        confirmed: bool,
    },
    /// Erasure records, newest first.
    ListErasures {
        limit: u32,
    },
}

/// The deployed function that runs a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Api,
    Backup,
    Retention,
}

impl Owner {
    /// The function's folder, binary and Lambda name suffix.
    pub fn function(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Backup => "backup",
            Self::Retention => "retention",
        }
    }
}

impl Task {
    pub fn owner(&self) -> Owner {
        match self {
            Self::BootstrapAdmin { .. }
            | Self::CreateToken { .. }
            | Self::ListTokens { .. }
            | Self::RevokeToken { .. }
            | Self::CreateArtist { .. }
            | Self::ListArtists { .. } => Owner::Api,
            Self::MigrateDatabase
            | Self::RunBackup
            | Self::RunRestoreDrill
            | Self::BackupHistory { .. }
            | Self::VerifyBackup { .. }
            | Self::RestoreBackup { .. } => Owner::Backup,
            Self::RunRetention { .. } | Self::RetentionPolicy | Self::EraseArtist { .. } | Self::ListErasures { .. } => Owner::Retention,
        }
    }

    /// The audit log's action name.
    pub fn action(&self) -> &'static str {
        match self {
            Self::BootstrapAdmin { .. } => "ops.bootstrap_admin",
            Self::CreateToken { .. } => "ops.create_token",
            Self::ListTokens { .. } => "ops.list_tokens",
            Self::RevokeToken { .. } => "ops.revoke_token",
            Self::CreateArtist { .. } => "ops.create_artist",
            Self::ListArtists { .. } => "ops.list_artists",
            Self::MigrateDatabase => "ops.migrate_database",
            Self::RunBackup => "ops.run_backup",
            Self::RunRestoreDrill => "ops.run_restore_drill",
            Self::VerifyBackup { .. } => "ops.verify_backup",
            Self::RestoreBackup { .. } => "ops.restore_backup",
            Self::BackupHistory { .. } => "ops.backup_history",
            Self::RunRetention { dry_run: true } => "ops.preview_retention",
            Self::RunRetention { dry_run: false } => "ops.run_retention",
            Self::RetentionPolicy => "ops.retention_policy",
            Self::EraseArtist { .. } => "ops.erase_artist",
            Self::ListErasures { .. } => "ops.list_erasures",
        }
    }

    /// The bytes the identity proof is bound to.
    pub fn canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Argument checks that need no database: a bad task changes nothing.
    pub fn validate(&self) -> Result<(), OpsError> {
        let invalid = |m: &str| Err(OpsError::Invalid(m.to_owned()));
        match self {
            Self::BootstrapAdmin { label, expires_in_days, force, reason } => {
                check_label(label)?;
                check_days(*expires_in_days)?;
                if *force && reason.as_deref().map(str::trim).unwrap_or("").is_empty() {
                    return invalid("--force needs a --reason");
                }
                Ok(())
            }
            Self::CreateToken { scope, artist_id, label, expires_in_days } => {
                check_label(label)?;
                check_days(*expires_in_days)?;
                match (scope, artist_id) {
                    (Scope::Artist, None) => invalid("an artist token needs --artist"),
                    (Scope::Admin, Some(_)) => invalid("an admin token belongs to no artist; drop --artist"),
                    _ => Ok(()),
                }
            }
            Self::RevokeToken { reason, .. } if reason.trim().is_empty() || reason.len() > 500 => {
                invalid("--reason is required (at most 500 characters)")
            }
            Self::RestoreBackup { database, .. } => {
                crate::backup::restore::check_database_name(database).map_err(|e| OpsError::Invalid(format!("--database: {e}")))
            }
            Self::CreateArtist { name, email, bio, website } => artists::validate(name, email, bio.as_deref(), website.as_deref()),
            Self::EraseArtist { confirmed: false, .. } => invalid("erasing an artist cannot be undone: repeat the command with --confirm"),
            Self::BackupHistory { limit } | Self::ListArtists { limit } | Self::ListErasures { limit } if !(1..=200).contains(limit) => {
                invalid("--limit must be between 1 and 200")
            }
            _ => Ok(()),
        }
    }
}

fn check_label(label: &str) -> Result<(), OpsError> {
    if label.trim().is_empty() || label.chars().count() > 200 || label.chars().any(char::is_control) {
        return Err(OpsError::Invalid("--label must be 1 to 200 printable characters".into()));
    }
    Ok(())
}

fn check_days(days: u32) -> Result<(), OpsError> {
    if !(1..=366).contains(&days) {
        return Err(OpsError::Invalid("--expires-in-days must be between 1 and 366".into()));
    }
    Ok(())
}

/// Why an operator task did not run (or did not finish).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("invalid task: {0}")]
    Invalid(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("refused: {0}")]
    Refused(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("this function does not run {0}")]
    WrongFunction(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Task(String),
}

impl OpsError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Identity(e) => e.is_retryable(),
            Self::Db(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// The error type an invocation reports, read by the operator tool.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "InvalidTask",
            Self::Identity(IdentityError::NotOperator { .. } | IdentityError::Refused { .. } | IdentityError::Replayed) => "AccessDenied",
            Self::Identity(_) => "IdentityUnverified",
            Self::Refused(_) => "Refused",
            Self::NotFound(_) => "NotFound",
            Self::WrongFunction(_) => "WrongFunction",
            Self::Db(_) | Self::Task(_) => "TaskFailed",
        }
    }
}

/// Where a function checks operator identities.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub sts_endpoint: String,
    /// Only sessions of this role are accepted (`None` locally, where the
    /// emulator's caller is a plain user).
    pub operator_role: Option<String>,
}

/// One operator invocation as Lambda delivered it.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    pub request_id: &'a str,
    /// The ARN Lambda invoked (`None` in-process, `gallery-ops --local`):
    /// the proof is bound to its account and partition.
    pub function_arn: Option<&'a str>,
}

impl Verifier {
    /// Validates the task, proves the caller with STS, checks that the caller
    /// is the operator role of this function's own account, and spends the
    /// proof (each proof runs one task: a captured invocation replayed within
    /// STS's window is refused). Nothing runs before all of that passes.
    pub async fn authorize(
        &self,
        request: &OperatorRequest,
        owner: Owner,
        invocation: &Invocation<'_>,
        pool: &deadpool_postgres::Pool,
    ) -> Result<Caller, OpsError> {
        if request.operator_task.owner() != owner {
            return Err(OpsError::WrongFunction(request.operator_task.action()));
        }
        request.operator_task.validate()?;
        let role = match (&self.operator_role, invocation.function_arn) {
            (Some(role), Some(arn)) => Some(identity::OperatorRole::of_function(arn, role)?),
            (Some(_), None) => return Err(IdentityError::Unbound("no invoked function ARN".into()).into()),
            (None, _) => None,
        };
        let caller = identity::verify(&request.identity, &self.sts_endpoint, &request.operator_task.canonical_json()).await?;
        if let Some(role) = &role {
            role.check(&caller)?;
        }
        let client = pool.get().await.map_err(DbError::from)?;
        if !crate::db::spend_operator_proof(&client, &identity::proof_digest(&request.identity), &caller.arn).await? {
            return Err(IdentityError::Replayed.into());
        }
        Ok(caller)
    }
}

/// Runs one of the API function's tasks (tokens, artists) for a verified
/// caller: its changes and its audit entry commit together, and a refused
/// task writes nothing.
pub async fn run_api_task(
    pool: &deadpool_postgres::Pool,
    task: &Task,
    caller: &Caller,
    request_id: &str,
) -> Result<serde_json::Value, OpsError> {
    let mut client = pool.get().await.map_err(DbError::from)?;
    let tx = client.transaction().await.map_err(DbError::from)?;
    let audit = Audit { actor: caller.actor(), action: task.action(), request_id };
    let result = match task {
        Task::CreateArtist { .. } | Task::ListArtists { .. } => artists::apply(&tx, task, &audit).await?,
        _ => tokens::apply(&tx, task, &audit).await?,
    };
    tx.commit().await.map_err(DbError::from)?;
    Ok(result)
}

/// Who ran which task in which request: every entry a task writes says so.
pub struct Audit<'a> {
    actor: String,
    action: &'static str,
    request_id: &'a str,
}

impl Audit<'_> {
    pub async fn record(
        &self,
        db: &impl deadpool_postgres::GenericClient,
        target: String,
        detail: serde_json::Value,
    ) -> Result<(), DbError> {
        let entry =
            crate::db::AuditEntry { actor: &self.actor, action: self.action, target: &target, request_id: Some(self.request_id), detail };
        crate::db::append_audit(db, &entry).await
    }
}

/// What a function answers to an operator invocation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OperatorResponse {
    pub action: String,
    pub caller: String,
    pub result: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_round_trip_and_unknown_ones_are_refused() {
        let task = Task::RevokeToken { token_id: Uuid::nil(), reason: "leaked in a log".into() };
        let json = serde_json::to_string(&task).unwrap();
        assert_eq!(serde_json::from_str::<Task>(&json).unwrap(), task);
        assert!(serde_json::from_str::<Task>(r#"{"kind":"drop-database"}"#).is_err());
        let identity = serde_json::json!({ "authorization": "", "amz_date": "", "nonce": "" });
        let event = serde_json::json!({ "operator_task": { "kind": "run-backup" }, "identity": identity });
        assert!(OperatorRequest::is_operator_event(&event));
        assert!(serde_json::from_value::<OperatorRequest>(event).is_ok());
        let extra = serde_json::json!({ "operator_task": { "kind": "run-backup" }, "identity": identity, "as": "root" });
        assert!(serde_json::from_value::<OperatorRequest>(extra).is_err());
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_runs() {
        let forced = Task::BootstrapAdmin { label: "first".into(), expires_in_days: 30, force: true, reason: None };
        assert!(matches!(forced.validate(), Err(OpsError::Invalid(_))));
        let artistless = Task::CreateToken { scope: Scope::Artist, artist_id: None, label: "x".into(), expires_in_days: 30 };
        assert!(artistless.validate().is_err());
        let forever = Task::CreateToken { scope: Scope::Admin, artist_id: None, label: "x".into(), expires_in_days: 5000 };
        assert!(forever.validate().is_err());
        assert!(Task::BackupHistory { limit: 0 }.validate().is_err());
        assert!(Task::RunBackup.validate().is_ok());
    }

    #[test]
    fn each_task_has_one_owner() {
        assert_eq!(Task::ListTokens { include_dead: false }.owner(), Owner::Api);
        assert_eq!(Task::RunRestoreDrill.owner(), Owner::Backup);
        assert_eq!(Task::RunRetention { dry_run: true }.owner(), Owner::Retention);
        assert!(Task::EraseArtist { artist_id: Uuid::nil(), confirmed: false }.validate().is_err());
    }
}
