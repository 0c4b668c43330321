//! The retention policy as code: every kind of data the gallery keeps, for
//! how long, and why. One typed value with defaults, read from the
//! environment (Terraform sets every variable), printed by
//! `gallery-ops retention policy` and documented in `docs/retention.md`.

use chrono::Duration;
use serde::Serialize;

use super::rotation::Rotation;
use crate::config::Env;

/// How long each kind of data is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A soft-deleted artwork can be restored by its artist or support until this passes.
    pub deleted_artwork_grace: Duration,
    /// A failed upload's reason stays visible to the artist this long.
    pub failed_image_age: Duration,
    /// An upload slot never used is abandoned after this.
    pub abandoned_upload_age: Duration,
    /// An image still `processing` after this was lost by the processor: recorded as failed.
    pub stuck_processing_age: Duration,
    /// Expired or revoked tokens are kept this long for investigations.
    pub dead_token_age: Duration,
    /// Stored answers for retried POSTs.
    pub idempotency_key_age: Duration,
    /// Audit entries (erasure entries are kept: they are the proof).
    pub audit_age: Duration,
    /// Records of expired backups and of restore drills.
    pub backup_record_age: Duration,
    /// RDS automated backups (point-in-time recovery), kept by RDS itself:
    /// not deleted here, but an erasure lists until when they hold the artist.
    pub database_snapshot_age: Duration,
    /// The gallery's own encrypted backups.
    pub rotation: Rotation,
    /// How long the backup function locks each backup (S3 Object Lock,
    /// COMPLIANCE; `GALLERY_BACKUP_LOCK_DAYS`, which it reads too): the
    /// rotation expires nothing before that.
    pub backup_lock: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            deleted_artwork_grace: Duration::days(30),
            failed_image_age: Duration::days(30),
            abandoned_upload_age: Duration::days(2),
            stuck_processing_age: Duration::hours(24),
            dead_token_age: Duration::days(90),
            idempotency_key_age: Duration::hours(24),
            audit_age: Duration::days(731),
            backup_record_age: Duration::days(400),
            database_snapshot_age: Duration::days(14),
            backup_lock: Duration::days(7),
            rotation: Rotation::default(),
        }
    }
}

/// One line of the policy, for people: what, how long, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub rule: &'static str,
    pub data: &'static str,
    pub kept: String,
    pub then: &'static str,
    pub why: &'static str,
}

fn days(d: Duration) -> String {
    if d.num_hours() % 24 == 0 {
        format!("{} days", d.num_days())
    } else {
        format!("{} hours", d.num_hours())
    }
}

impl Policy {
    /// Reads the policy, every value optional with the default above; values
    /// that would break a promise (e.g. keeping no backup) are problems.
    pub fn read(env: &mut Env) -> Self {
        let d = Self::default();
        let days_of = |env: &mut Env, name: &str, default: Duration| {
            Duration::days(env.parse_or(name, default.num_days()))
        };
        let deleted_artwork_grace =
            days_of(env, "RETENTION_DELETED_ARTWORK_DAYS", d.deleted_artwork_grace);
        let failed_image_age = days_of(env, "RETENTION_FAILED_IMAGE_DAYS", d.failed_image_age);
        let abandoned_upload_age =
            days_of(env, "RETENTION_ABANDONED_UPLOAD_DAYS", d.abandoned_upload_age);
        let dead_token_age = days_of(env, "RETENTION_DEAD_TOKEN_DAYS", d.dead_token_age);
        let audit_age = days_of(env, "RETENTION_AUDIT_DAYS", d.audit_age);
        let backup_record_age = days_of(env, "RETENTION_BACKUP_RECORD_DAYS", d.backup_record_age);
        let database_snapshot_age =
            days_of(env, "RETENTION_DATABASE_SNAPSHOT_DAYS", d.database_snapshot_age);
        let failed_backup_age = days_of(env, "RETENTION_FAILED_BACKUP_DAYS", d.rotation.failed_age);
        let hours = |env: &mut Env, name: &str, default: Duration| {
            Duration::hours(env.parse_or(name, default.num_hours()))
        };
        let stuck_processing_age =
            hours(env, "RETENTION_STUCK_PROCESSING_HOURS", d.stuck_processing_age);
        let idempotency_key_age =
            hours(env, "RETENTION_IDEMPOTENCY_KEY_HOURS", d.idempotency_key_age);
        let r = &d.rotation;
        let rotation = Rotation {
            keep_last: env.parse_or("RETENTION_BACKUP_KEEP_LAST", r.keep_last),
            daily: env.parse_or("RETENTION_BACKUP_DAILY", r.daily),
            weekly: env.parse_or("RETENTION_BACKUP_WEEKLY", r.weekly),
            monthly: env.parse_or("RETENTION_BACKUP_MONTHLY", r.monthly),
            yearly: env.parse_or("RETENTION_BACKUP_YEARLY", r.yearly),
            failed_age: failed_backup_age,
        };
        let backup_lock = days_of(env, "GALLERY_BACKUP_LOCK_DAYS", d.backup_lock);
        let policy = Self {
            backup_lock,
            deleted_artwork_grace,
            failed_image_age,
            abandoned_upload_age,
            stuck_processing_age,
            dead_token_age,
            idempotency_key_age,
            audit_age,
            backup_record_age,
            database_snapshot_age,
            rotation,
        };
        for problem in policy.problems() {
            env.problem(problem);
        }
        policy
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.rotation.keep_last == 0 {
            problems.push("RETENTION_BACKUP_KEEP_LAST must be at least 1: the newest good backup is never deleted".to_owned());
        }
        let ages = [
            ("RETENTION_DELETED_ARTWORK_DAYS", self.deleted_artwork_grace),
            ("RETENTION_FAILED_IMAGE_DAYS", self.failed_image_age),
            ("RETENTION_ABANDONED_UPLOAD_DAYS", self.abandoned_upload_age),
            ("RETENTION_STUCK_PROCESSING_HOURS", self.stuck_processing_age),
            ("RETENTION_DEAD_TOKEN_DAYS", self.dead_token_age),
            ("RETENTION_IDEMPOTENCY_KEY_HOURS", self.idempotency_key_age),
            ("RETENTION_FAILED_BACKUP_DAYS", self.rotation.failed_age),
            ("RETENTION_BACKUP_RECORD_DAYS", self.backup_record_age),
            ("RETENTION_DATABASE_SNAPSHOT_DAYS", self.database_snapshot_age),
            ("GALLERY_BACKUP_LOCK_DAYS", self.backup_lock),
        ];
        problems.extend(
            ages.iter()
                .filter(|(_, d)| *d <= Duration::zero())
                .map(|(name, _)| format!("{name} must be positive")),
        );
        // The erasure ledger's records must outlive every backup they guard.
        let longest = Duration::days(366 * self.rotation.yearly as i64)
            .max(Duration::days(31 * self.rotation.monthly as i64));
        if longest >= crate::archive::ledger::LEDGER_LOCK {
            problems.push(format!(
                "RETENTION_BACKUP_YEARLY/MONTHLY keep backups longer than the erasure ledger's lock ({} days): an erased artist could come back",
                crate::archive::ledger::LEDGER_LOCK.num_days()
            ));
        }
        // An audit trail shorter than a year breaks the security decision's log retention.
        if self.audit_age < Duration::days(365) {
            problems.push("RETENTION_AUDIT_DAYS must be at least 365".to_owned());
        }
        problems
    }

    /// The policy in words, one rule per kind of data.
    pub fn rules(&self) -> Vec<Rule> {
        let r = &self.rotation;
        vec![
            Rule {
                rule: "artist-personal-data",
                data: "an artist's name, email, bio, website, works, images and tokens",
                kept: "while the artist is active".into(),
                then: "erased on request (API or operator): rows removed, every object version removed in the primary and DR buckets, re-applied after any restore",
                why: "needed to show and sell their work; erasure is their right once they leave",
            },
            Rule {
                rule: "deleted-artworks",
                data: "a soft-deleted artwork, its editions, images and objects",
                kept: days(self.deleted_artwork_grace),
                then: "purged: every object version (primary and DR), then the rows",
                why: "an artist can undo a mistaken delete",
            },
            Rule {
                rule: "stale-images",
                data: "removed images; failed images; upload slots never used",
                kept: format!("removed: none; failed: {}; unused slots: {}", days(self.failed_image_age), days(self.abandoned_upload_age)),
                then: "purged: every object version (primary and DR), then the row",
                why: "an artist sees why an upload failed; nothing unpublished lingers",
            },
            Rule {
                rule: "stuck-processing",
                data: "images whose processing never finished",
                kept: days(self.stuck_processing_age),
                then: "recorded as failed (then the failed-image period applies)",
                why: "a lost processor run must not leave an image pending forever",
            },
            Rule {
                rule: "dead-tokens",
                data: "expired or revoked API tokens (digests only)",
                kept: days(self.dead_token_age),
                then: "deleted",
                why: "investigating misuse after a token dies",
            },
            Rule {
                rule: "idempotency-keys",
                data: "stored answers of POSTs, for retries",
                kept: days(self.idempotency_key_age),
                then: "deleted",
                why: "a client retries within minutes, not days",
            },
            Rule {
                rule: "audit-log",
                data: "who did what, when (no personal data beyond ids)",
                kept: days(self.audit_age),
                then: "deleted, except erasure entries",
                why: "security investigations and the accountability of admins and operators",
            },
            Rule {
                rule: "backups",
                data: "encrypted database backups and their manifests (primary and DR copies)",
                kept: format!(
                    "the newest {}; the newest of each of the last {} days, {} weeks, {} months{}; always the newest a restore drill proved; failed ones {}; none before its S3 Object Lock lapses ({}, COMPLIANCE)",
                    r.keep_last,
                    r.daily,
                    r.weekly,
                    r.monthly,
                    if r.yearly > 0 { format!(", {} years", r.yearly) } else { String::new() },
                    days(r.failed_age),
                    days(self.backup_lock)
                ),
                then: "every version deleted in the primary and DR buckets; the catalogue row records when",
                why: "recovery from loss or corruption found late, bounded so erased data does not live on",
            },
            Rule {
                rule: "backup-records",
                data: "catalogue rows of expired backups; restore drill results",
                kept: days(self.backup_record_age),
                then: "deleted",
                why: "evidence that backups and drills ran, for audits",
            },
            Rule {
                rule: "database-snapshots",
                data: "RDS automated backups (point-in-time recovery) and their replica in the DR region; no final snapshot is taken",
                kept: days(self.database_snapshot_age),
                then: "expired by RDS (after the instance is deleted too)",
                why: "recovery to any second of the last days, in either region",
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<Policy, crate::config::ConfigError> {
        let mut env = Env::from_map(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>(),
        );
        let policy = Policy::read(&mut env);
        env.finish(policy)
    }

    #[test]
    fn defaults_when_unset_and_values_when_set() {
        assert_eq!(read(&[]).unwrap(), Policy::default());
        let p =
            read(&[("RETENTION_BACKUP_MONTHLY", "24"), ("RETENTION_STUCK_PROCESSING_HOURS", "6")])
                .unwrap();
        assert_eq!(p.rotation.monthly, 24);
        let err = read(&[("RETENTION_BACKUP_YEARLY", "11")]).unwrap_err().to_string();
        assert!(err.contains("erasure ledger's lock"), "{err}");
        // The longest keeps Terraform allows (10 years, 120 months) are shorter.
        assert!(read(&[("RETENTION_BACKUP_YEARLY", "10")]).is_ok());
        assert!(read(&[("RETENTION_BACKUP_MONTHLY", "120")]).is_ok());
        assert_eq!(p.stuck_processing_age, Duration::hours(6));
    }

    #[test]
    fn a_policy_that_breaks_a_promise_is_refused() {
        let err = read(&[
            ("RETENTION_BACKUP_KEEP_LAST", "0"),
            ("RETENTION_AUDIT_DAYS", "30"),
            ("RETENTION_DEAD_TOKEN_DAYS", "0"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "KEEP_LAST must be at least 1",
            "AUDIT_DAYS must be at least 365",
            "DEAD_TOKEN_DAYS must be positive",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
    }

    #[test]
    fn every_rule_is_documented() {
        let doc = include_str!("../../../docs/retention.md");
        for rule in Policy::default().rules() {
            assert!(
                doc.contains(&format!("`{}`", rule.rule)),
                "docs/retention.md does not describe `{}`",
                rule.rule
            );
        }
    }
}
