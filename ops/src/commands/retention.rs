use clap::Subcommand;
use shared::ops::Task;

#[derive(Debug, Subcommand)]
pub enum Retention {
    /// What the next sweep would delete: counts and sample keys; deletes nothing.
    Preview,
}

impl Retention {
    pub fn task(self) -> Task {
        match self {
            Self::Preview => Task::PreviewRetention,
        }
    }
}
