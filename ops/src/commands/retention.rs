use clap::Subcommand;
use shared::operator::OperatorTask;

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// What the next sweep would delete: counts and sample keys; deletes nothing.
    Preview,
    /// Runs the sweep now (the daily schedule's run).
    Run {
        /// Report what would be deleted, delete nothing (the same as `preview`).
        #[arg(long)]
        dry_run: bool,
    },
    /// The policy in force: what is kept, how long, and why.
    Policy,
}

impl RetentionCommand {
    pub fn task(self) -> OperatorTask {
        match self {
            Self::Preview => OperatorTask::RunRetention { dry_run: true },
            Self::Run { dry_run } => OperatorTask::RunRetention { dry_run },
            Self::Policy => OperatorTask::RetentionPolicy,
        }
    }
}
