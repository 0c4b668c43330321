//! The commands, one file per resource; each turns its arguments into an
//! operator task, which [`crate::run`] delivers.

pub mod admin;
pub mod artists;
pub mod backups;
pub mod database;
pub mod retention;
pub mod tokens;

use clap::Subcommand;
use shared::operator::OperatorTask;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The first admin token (refused once an admin exists, unless forced).
    #[command(subcommand)]
    Admin(admin::Admin),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Tokens(tokens::Tokens),
    /// Add, list and erase artists.
    #[command(subcommand)]
    Artists(artists::Artists),
    /// Migrate the schema and give the application role its login.
    #[command(subcommand)]
    Database(database::Database),
    /// Run a backup or a restore drill now; show their history.
    #[command(subcommand)]
    Backup(backups::Backup),
    /// The retention sweep: run or preview it, print the policy, erase an artist.
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// Smoke-tests the deployed gallery hop by hop (upload, renditions, CDN,
    /// backup, drill, retention, erasure) and erases what it created.
    Check(crate::check::CheckArgs),
}

impl Command {
    /// The one operator task a command is; `None` for `check`, which runs many.
    pub fn task(self) -> Option<OperatorTask> {
        Some(match self {
            Self::Admin(c) => c.task(),
            Self::Tokens(c) => c.task(),
            Self::Artists(c) => c.task(),
            Self::Database(c) => c.task(),
            Self::Backup(c) => c.task(),
            Self::Retention(c) => c.task(),
            Self::Check(_) => return None,
        })
    }
}
