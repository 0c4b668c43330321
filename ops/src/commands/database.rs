use clap::Subcommand;
use shared::operator::OperatorTask;

#[derive(Debug, Subcommand)]
pub enum Database {
    /// Applies pending migrations as the schema owner, then gives the
    /// application role the login its secret holds (after every deploy, and
    /// after rotating the application password).
    Migrate,
}

impl Database {
    pub fn task(self) -> OperatorTask {
        match self {
            Self::Migrate => OperatorTask::MigrateDatabase,
        }
    }
}
