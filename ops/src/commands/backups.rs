use clap::Subcommand;
use shared::operator::BackupChoice;
use shared::operator::OperatorTask;

#[derive(Debug, Subcommand)]
pub enum Backup {
    /// Takes a backup now (the same run as the daily schedule's).
    Run,
    /// Restores the newest backup into a scratch database and checks it, now
    /// (and proves the DR copy).
    Drill {
        /// Also restore the oldest backup the rotation keeps, as the Sunday
        /// drill does.
        #[arg(long)]
        older: bool,
    },
    /// Reads a backup end to end (manifest, data key, every chunk and table
    /// checksum) without writing anything.
    Verify {
        /// `latest` or a backup id.
        #[arg(default_value = "latest")]
        backup: BackupChoice,
    },
    /// Restores a backup into a database: the schema at the backup's version,
    /// its rows, then the newer migrations. Refuses a database that is not
    /// empty unless --replace.
    Restore {
        /// `latest` or a backup id.
        backup: BackupChoice,
        /// The target database on the gallery's instance (created if missing).
        #[arg(long)]
        database: String,
        /// Verify the whole backup before writing anything.
        #[arg(long)]
        verify_first: bool,
        /// Drop what the target database holds first.
        #[arg(long)]
        replace: bool,
        /// The gallery's own database is refused as a target unless named
        /// here a second time (with --reason); both are audited.
        #[arg(long, value_name = "DATABASE")]
        confirm_production: Option<String>,
        /// Why production itself is restored over (required with --confirm-production).
        #[arg(long)]
        reason: Option<String>,
    },
    /// The newest backups and restore drills with their outcomes.
    History {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

impl Backup {
    pub fn task(self) -> OperatorTask {
        match self {
            Self::Run => OperatorTask::RunBackup,
            Self::Drill { older: false } => OperatorTask::RunRestoreDrill,
            Self::Drill { older: true } => OperatorTask::RunOlderBackupDrill,
            Self::History { limit } => OperatorTask::BackupHistory { limit },
            Self::Verify { backup } => OperatorTask::VerifyBackup { backup },
            Self::Restore {
                backup,
                database,
                verify_first,
                replace,
                confirm_production,
                reason,
            } => OperatorTask::RestoreBackup {
                backup,
                database,
                verify_first,
                replace,
                confirm_production,
                reason,
            },
        }
    }
}
