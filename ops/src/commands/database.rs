use clap::Subcommand;
use shared::operator::OperatorTask;

#[derive(Debug, Subcommand)]
pub enum Database {
    /// Applies pending migrations as the schema owner, then gives the
    /// application role the login its secret holds (after every deploy, and
    /// after rotating the application password).
    Migrate,
    /// Applies every erasure in the ledger (each record proven first) to a
    /// database: the mandatory step after a point-in-time restore, a snapshot
    /// restore or a region recovery, before traffic returns. Idempotent;
    /// `backup restore` runs it itself.
    ReplayErasures {
        /// Another database on the instance (default: the gallery's own).
        #[arg(long)]
        database: Option<String>,
    },
}

impl Database {
    pub fn task(self) -> OperatorTask {
        match self {
            Self::Migrate => OperatorTask::MigrateDatabase,
            Self::ReplayErasures { database } => OperatorTask::ReplayErasures { database },
        }
    }
}
