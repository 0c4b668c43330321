use clap::Subcommand;
use shared::ops::Task;

#[derive(Debug, Subcommand)]
pub enum Backup {
    /// Takes a backup now (the same run as the daily schedule's).
    Run,
    /// Restores the newest backup into a scratch database and checks it, now.
    Drill,
    /// The newest backups and restore drills with their outcomes.
    History {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

impl Backup {
    pub fn task(self) -> Task {
        match self {
            Self::Run => Task::RunBackup,
            Self::Drill => Task::RunRestoreDrill,
            Self::History { limit } => Task::BackupHistory { limit },
        }
    }
}
