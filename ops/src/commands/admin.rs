use clap::Subcommand;
use shared::operator::OperatorTask;

#[derive(Debug, Subcommand)]
pub enum Admin {
    /// Creates the first admin token and prints it once.
    Bootstrap {
        /// Who or what the token is for, e.g. "gallery owner".
        #[arg(long)]
        label: String,
        #[arg(long, default_value_t = 30)]
        expires_in_days: u32,
        /// Create one even though a live admin token exists (a lost or leaked token).
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why the bootstrap is forced; kept in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
}

impl Admin {
    pub fn task(self) -> OperatorTask {
        match self {
            Self::Bootstrap { label, expires_in_days, force, reason } => {
                OperatorTask::BootstrapAdmin { label, expires_in_days, force, reason }
            }
        }
    }
}
