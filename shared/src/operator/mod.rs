//! Operator tasks: what an operator does to the running gallery without an
//! admin host. The operator tool invokes a function with an
//! [`OperatorRequest`]; IAM decides who may invoke (only the operator role),
//! CloudTrail records the invocation, and the function proves who the caller is
//! ([`identity`]) before it runs the task and writes it to the audit log.
//!
//! Each task belongs to the function that owns its data: tokens to the API,
//! backups and drills to the backup function, sweeps to retention.
//!
//! This module is the protocol only (what travels, what is valid); the
//! audited runner every function uses is `runner`.

pub mod identity;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::fields::{
    HolderMismatch, NewArtistFields, TokenHolder, TokenLabel, TokenLifetime,
};
use crate::domain::{Invalid, Scope};
pub use identity::{IdentityError, IdentityProof, ProvenCaller};

/// The payload of an operator invocation. The `operator_task` field is what
/// tells it apart from the function's ordinary events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorRequest {
    pub operator_task: OperatorTask,
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
pub enum OperatorTask {
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
    /// The drill with the weekly check of the oldest backup the rotation
    /// keeps (restored into its own scratch database with erasure replay), now.
    RunOlderBackupDrill,
    /// Reads a backup end to end (manifest, key, every chunk, every table's
    /// checksum) and writes nothing.
    VerifyBackup {
        backup: BackupChoice,
    },
    /// Restores a backup into a chosen database (created if missing; refused
    /// if not empty unless `replace`). The gallery's own database only when
    /// `confirm_production` names it again and a `reason` is given.
    RestoreBackup {
        backup: BackupChoice,
        database: String,
        verify_first: bool,
        replace: bool,
        #[serde(default)]
        confirm_production: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
    /// Applies every erasure in the ledger to a database (the gallery's own
    /// unless named): the mandatory step after any restore that is not
    /// `RestoreBackup` (point-in-time, snapshot, region recovery). Idempotent.
    ReplayErasures {
        database: Option<String>,
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

/// Which backup a task means: the newest, or one by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupChoice {
    Latest,
    Id(Uuid),
}

impl std::str::FromStr for BackupChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "latest" {
            return Ok(Self::Latest);
        }
        s.parse().map(Self::Id).map_err(|_| format!("{s:?} is neither `latest` nor a backup id"))
    }
}

/// Database names operators may restore into: created if missing, never the
/// maintenance databases.
pub fn restorable_database(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !matches!(name, "postgres" | "template0" | "template1" | "rdsadmin");
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not a database name a restore may use (a-z, 0-9, _; not a system database)"))
    }
}

/// The deployed function that runs a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOwner {
    Api,
    Backup,
    Retention,
}

impl TaskOwner {
    /// The function's folder, binary and Lambda name suffix.
    pub fn function(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Backup => "backup",
            Self::Retention => "retention",
        }
    }
}

impl OperatorTask {
    pub fn owner(&self) -> TaskOwner {
        match self {
            Self::BootstrapAdmin { .. }
            | Self::CreateToken { .. }
            | Self::ListTokens { .. }
            | Self::RevokeToken { .. }
            | Self::CreateArtist { .. }
            | Self::ListArtists { .. } => TaskOwner::Api,
            Self::MigrateDatabase
            | Self::RunBackup
            | Self::RunRestoreDrill
            | Self::RunOlderBackupDrill
            | Self::BackupHistory { .. }
            | Self::VerifyBackup { .. }
            | Self::RestoreBackup { .. }
            | Self::ReplayErasures { .. } => TaskOwner::Backup,
            Self::RunRetention { .. }
            | Self::RetentionPolicy
            | Self::EraseArtist { .. }
            | Self::ListErasures { .. } => TaskOwner::Retention,
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
            Self::RunOlderBackupDrill => "ops.run_older_backup_drill",
            Self::VerifyBackup { .. } => "ops.verify_backup",
            Self::RestoreBackup { .. } => "ops.restore_backup",
            Self::ReplayErasures { .. } => "ops.replay_erasures",
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
    /// Names, addresses, labels and lifetimes go through the same domain
    /// types as the API's.
    pub fn validate(&self) -> Result<(), InvalidTask> {
        let invalid = |m: &str| Err(InvalidTask(m.to_owned()));
        match self {
            Self::BootstrapAdmin { label, expires_in_days, force, reason } => {
                TokenLabel::parse(label).map_err(InvalidTask::flag)?;
                TokenLifetime::parse(i64::from(*expires_in_days)).map_err(InvalidTask::flag)?;
                if *force && reason.as_deref().map(str::trim).unwrap_or("").is_empty() {
                    return invalid("--force needs a --reason");
                }
                Ok(())
            }
            Self::CreateToken { scope, artist_id, label, expires_in_days } => {
                TokenLabel::parse(label).map_err(InvalidTask::flag)?;
                TokenLifetime::parse(i64::from(*expires_in_days)).map_err(InvalidTask::flag)?;
                match TokenHolder::parse(*scope, *artist_id) {
                    Ok(_) => Ok(()),
                    Err(HolderMismatch::ArtistTokenWithoutArtist) => {
                        invalid("an artist token needs --artist")
                    }
                    Err(HolderMismatch::AdminTokenWithArtist) => {
                        invalid("an admin token belongs to no artist; drop --artist")
                    }
                }
            }
            Self::RevokeToken { reason, .. } if reason.trim().is_empty() || reason.len() > 500 => {
                invalid("--reason is required (at most 500 characters)")
            }
            Self::RestoreBackup { database, confirm_production, reason, .. } => {
                restorable_database(database)
                    .map_err(|e| InvalidTask(format!("--database: {e}")))?;
                match (confirm_production, reason) {
                    (Some(again), _) if again != database => invalid(
                        "--confirm-production must name the --database again, exactly",
                    ),
                    (Some(_), r) if r.as_deref().is_none_or(|r| r.trim().is_empty() || r.len() > 500) => {
                        invalid("--reason is required with --confirm-production (at most 500 characters)")
                    }
                    _ => Ok(()),
                }
            }
            Self::ReplayErasures { database: Some(database) } => {
                restorable_database(database).map_err(|e| InvalidTask(format!("--database: {e}")))
            }
            Self::CreateArtist { name, email, bio, website } => {
                NewArtistFields::parse(name, email, bio.as_deref(), website.as_deref())
                    .map(drop)
                    .map_err(|mut problems| InvalidTask::flag(problems.remove(0)))
            }
            Self::EraseArtist { confirmed: false, .. } => {
                invalid("erasing an artist cannot be undone: repeat the command with --confirm")
            }
            Self::BackupHistory { limit }
            | Self::ListArtists { limit }
            | Self::ListErasures { limit }
                if !(1..=200).contains(limit) =>
            {
                invalid("--limit must be between 1 and 200")
            }
            _ => Ok(()),
        }
    }
}

/// Why a task was refused before it ran, worded for the operator tool's flags.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTask(pub String);

impl InvalidTask {
    /// A domain field's refusal, named by the flag that carries it.
    fn flag(problem: Invalid) -> Self {
        Self(format!("--{} {}", problem.field.replace('_', "-"), problem.message))
    }
}

/// One operator invocation as Lambda delivered it.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    pub request_id: &'a str,
    /// The ARN Lambda invoked (`None` in-process, `gallery-ops --local`):
    /// the proof is bound to its account and partition.
    pub function_arn: Option<&'a str>,
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
        let task =
            OperatorTask::RevokeToken { token_id: Uuid::nil(), reason: "leaked in a log".into() };
        let json = serde_json::to_string(&task).unwrap();
        assert_eq!(serde_json::from_str::<OperatorTask>(&json).unwrap(), task);
        assert!(serde_json::from_str::<OperatorTask>(r#"{"kind":"drop-database"}"#).is_err());
        let identity = serde_json::json!({ "authorization": "", "amz_date": "", "nonce": "" });
        let event =
            serde_json::json!({ "operator_task": { "kind": "run-backup" }, "identity": identity });
        assert!(OperatorRequest::is_operator_event(&event));
        assert!(serde_json::from_value::<OperatorRequest>(event).is_ok());
        let extra = serde_json::json!({ "operator_task": { "kind": "run-backup" }, "identity": identity, "as": "root" });
        assert!(serde_json::from_value::<OperatorRequest>(extra).is_err());
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_runs() {
        let forced = OperatorTask::BootstrapAdmin {
            label: "first".into(),
            expires_in_days: 30,
            force: true,
            reason: None,
        };
        assert!(forced.validate().is_err());
        let artistless = OperatorTask::CreateToken {
            scope: Scope::Artist,
            artist_id: None,
            label: "x".into(),
            expires_in_days: 30,
        };
        assert!(artistless.validate().is_err());
        let forever = OperatorTask::CreateToken {
            scope: Scope::Admin,
            artist_id: None,
            label: "x".into(),
            expires_in_days: 5000,
        };
        assert!(forever.validate().is_err());
        assert!(OperatorTask::BackupHistory { limit: 0 }.validate().is_err());
        assert!(OperatorTask::RunBackup.validate().is_ok());
    }

    #[test]
    fn each_task_has_one_owner() {
        assert_eq!(OperatorTask::ListTokens { include_dead: false }.owner(), TaskOwner::Api);
        assert_eq!(OperatorTask::RunRestoreDrill.owner(), TaskOwner::Backup);
        assert_eq!(OperatorTask::RunRetention { dry_run: true }.owner(), TaskOwner::Retention);
        assert!(OperatorTask::EraseArtist { artist_id: Uuid::nil(), confirmed: false }
            .validate()
            .is_err());
    }
}
